"""Independent station scores for the end-to-end tests (numpy only, no xsomo.evaluation).

At a COSMOS-like station a gridded dataset is read at the grid cell whose centre is nearest
to the station (the cell that holds it), its three layers (0-10, 10-30, 30-50 cm, the
README's layers) are mixed by their overlap with ``0..footprint depth`` (what a cosmic-ray
probe sees), and Pearson's r is taken over the days where both are finite.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Layer bounds in metres, written down from the README (not read from xsomo.conventions).
LAYER_BOUNDS = ((0.0, 0.1), (0.1, 0.3), (0.3, 0.5))


def footprint_weights(depth: float) -> np.ndarray:
    """Overlap of each layer with ``0..depth`` (m), normalised to sum to 1."""
    depth = min(float(depth), LAYER_BOUNDS[-1][1])
    over = np.array([max(0.0, min(bottom, depth) - top) for top, bottom in LAYER_BOUNDS])
    return over / over.sum()


def series_at(layers: list[xr.DataArray], lat: float, lon: float, depth: float) -> xr.DataArray:
    """Footprint mix of three ``(time, lat, lon)`` layer fields at the cell nearest to (lat, lon)."""
    w = footprint_weights(depth)
    out = None
    for k, da in enumerate(layers):
        i = int(np.argmin(np.abs(da["lat"].values - lat)))
        j = int(np.argmin(np.abs(da["lon"].values - lon)))
        # the nearest centre must hold the station: within half a cell in both directions
        dlat = float(np.abs(np.diff(da["lat"].values)).min())
        dlon = float(np.abs(np.diff(da["lon"].values)).min())
        assert abs(float(da["lat"][i]) - lat) <= dlat / 2 + 1e-9, (lat, float(da["lat"][i]))
        assert abs(float(da["lon"][j]) - lon) <= dlon / 2 + 1e-9, (lon, float(da["lon"][j]))
        part = da.isel(lat=i, lon=j).astype("float64") * w[k]
        out = part if out is None else out + part
    return out.drop_vars([c for c in out.coords if c != "time"])


def pearson(a: xr.DataArray, b: xr.DataArray) -> tuple[float, int]:
    """Pearson r of two daily series over their common finite days, and the number of days."""
    a, b = xr.align(a, b, join="inner")
    x, y = np.asarray(a.values, float), np.asarray(b.values, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan"), int(ok.sum())
    return float(np.corrcoef(x[ok], y[ok])[0, 1]), int(ok.sum())
