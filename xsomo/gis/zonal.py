"""Series at a point or over polygons, and per-region statistics of a period.

- :func:`point_series`: the daily series of the cell holding a point (the one cell rule,
  :meth:`xsomo.conventions.GridSpec.snap`).
- :func:`polygon_series`: the area-weighted mean over each polygon
  (:func:`xsomo.drivers.regions.regional_mean`: cell centres inside, weights ∝ cos latitude,
  NaN cells ignored).
- :func:`zonal_statistics`: per polygon, the area-weighted mean over a period and the
  period anomaly of the polygon's mean series (:func:`xsomo.evaluation.period_anomaly`).

``xsomo series`` and ``xsomo zonal`` write them as CSV (and a plot).
"""

from __future__ import annotations

import os
import pathlib
import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation import layered, match_stations, parse_period, period_anomaly, window_mean
from xsomo.evaluation.climatology import missing_days_message
from xsomo.exceptions import XsomoKeyError, XsomoValueError
from xsomo.io.tables import csv_text  # re-exported: xsomo.gis.zonal.csv_text
from xsomo.runtime import user_stacklevel

__all__ = [
    "csv_text",
    "nearest_cell_with_data",
    "plot_series",
    "point_series",
    "polygon_series",
    "read_polygons",
    "time_gaps",
    "zonal_statistics",
]


def _sm(obj: xr.Dataset | xr.DataArray, layer: int | None, variable: Hashable = cv.SM) -> xr.DataArray:
    da = layered(obj, variable)
    if layer is not None and cv.LAYER in da.dims:
        if layer not in da[cv.LAYER].values:
            raise XsomoKeyError(f"layer {layer} is not in the data; layers are {da[cv.LAYER].values.tolist()}")
        da = da.sel({cv.LAYER: layer})
    return da.drop_vars(["spatial_ref"], errors="ignore")


def point_series(obj: xr.Dataset | xr.DataArray, lon: float, lat: float, *, layer: int | None = None) -> xr.DataArray:
    """Daily values of the cell holding ``(lon, lat)`` (all layers, or ``layer``).

    Raises
    ------
    XsomoValueError
        The point lies outside the grid (the outer north/east edge is outside).
    """
    da = _sm(obj, layer)
    # in the grid's longitude convention, as polygons are (-179.95 on a 178..182 grid was "outside")
    glon = cv.lon_like_grid(np.array([lon]), da[cv.LON].values)
    rows, cols, inside = match_stations(da, np.array([lat]), glon)
    if not inside[0]:
        swapped = bool(match_stations(da, np.array([lon]), np.array([lat]))[2][0])
        raise XsomoValueError(
            f"point lon={lon}, lat={lat} is outside the grid (lon {float(da[cv.LON].min()):g}..{float(da[cv.LON].max()):g}, "
            f"lat {float(da[cv.LAT].min()):g}..{float(da[cv.LAT].max()):g} are cell centres)"
            + (
                f"; lon={lat}, lat={lon} would be inside: the order is LON LAT (x first), did you swap them?"
                if swapped
                else ""
            )
        )
    out = da.isel({cv.LAT: int(rows[0]), cv.LON: int(cols[0])})
    _warn_time_gaps(out, "the series")
    return out.assign_attrs(point_lon=float(lon), point_lat=float(lat))


def time_gaps(time: Any) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``(first, last)`` missing day of each gap in a daily ``time`` axis (a folder missing a year's files)."""
    t = pd.DatetimeIndex(np.asarray(time)).normalize()
    if t.size < 2:
        return []
    step = np.diff(t.values).astype("timedelta64[D]").astype(int)
    return [(t[k] + pd.Timedelta(days=1), t[k + 1] - pd.Timedelta(days=1)) for k in np.nonzero(step > 1)[0]]


def _gap_text(first: pd.Timestamp, last: pd.Timestamp) -> str:
    n = (last - first).days + 1
    whole = [y for y in range(first.year, last.year + 1)
             if first <= pd.Timestamp(y, 1, 1) and pd.Timestamp(y, 12, 31) <= last]
    years = f": the whole year{'s' if len(whole) > 1 else ''} {', '.join(map(str, whole))}" if whole else ""
    return f"{first:%Y-%m-%d} to {last:%Y-%m-%d} ({n} day{'s' if n > 1 else ''}{years})"


def _warn_time_gaps(da: xr.DataArray, what: str) -> None:
    gaps = time_gaps(da[cv.TIME].values) if cv.TIME in da.dims else []
    if gaps:
        warnings.warn(
            f"{what} has no days from " + "; ".join(_gap_text(a, b) for a, b in gaps)
            + ": the input holds no data for them (a missing file?). The CSV skips those days and the plot "
            "leaves a gap there.",
            stacklevel=user_stacklevel(),
        )


def nearest_cell_with_data(
    obj: xr.Dataset | xr.DataArray, lon: float, lat: float, *, layer: int | None = None, radius: float = 1.0
) -> tuple[float, float] | None:
    """Centre ``(lon, lat)`` of the nearest cell within ``radius`` degrees of the point that holds data
    in the first year of the data (None if there is none): where to look when the point's own cell is sea."""
    da = _sm(obj, layer)
    near = da.where(
        (abs(da[cv.LON] - lon) <= radius) & (abs(da[cv.LAT] - lat) <= radius), drop=True
    )
    if cv.TIME in near.dims:
        near = near.isel({cv.TIME: slice(0, 366)})
    held = near.notnull().any([d for d in near.dims if d not in (cv.LAT, cv.LON)]).transpose(cv.LAT, cv.LON)
    rows, cols = np.nonzero(np.asarray(held.values))
    if rows.size == 0:
        return None
    clat, clon = near[cv.LAT].values[rows], near[cv.LON].values[cols]
    k = int(np.argmin((clon - lon) ** 2 * np.cos(np.deg2rad(lat)) ** 2 + (clat - lat) ** 2))
    return float(clon[k]), float(clat[k])


def read_polygons(path: str | os.PathLike[str] | None, *, key: str = "NAME", names: Sequence[str] | None = None) -> Any:
    """Polygons from a vector file (GeoPackage, shapefile, GeoJSON), or Natural Earth countries when ``path`` is None.

    ``names`` keeps only those features (values of ``key``).
    """
    import geopandas as gpd

    from xsomo.drivers import regions

    if path is None:
        return regions.countries(names)
    try:
        gdf = gpd.read_file(path)
    except Exception as err:  # pyogrio's DataSourceError: a missing file, or not a vector format
        raise XsomoValueError(
            f"{path}: cannot read polygons from it ({type(err).__name__}: {err}); give a GeoPackage, shapefile "
            "or GeoJSON file"
        ) from None
    if key not in gdf.columns:
        raise XsomoKeyError(f"{path}: no field {key!r}; fields are {[c for c in gdf.columns if c != 'geometry']} (pass --key)")
    # the key keeps its type (an integer ID stays an integer in a GeoPackage written from these);
    # the masks and tables name the polygons by str(value)
    if names is not None:
        labels = gdf[key].astype(str)
        missing = sorted(set(names) - set(labels))
        if missing:
            raise XsomoKeyError(f"{path}: no feature with {key} in {missing}")
        gdf = gdf[labels.isin(list(names)).to_numpy()]
    return gdf.reset_index(drop=True)


def polygon_series(
    obj: xr.Dataset | xr.DataArray, polygons: Any, *, layer: int | None = None, key: str = "NAME"
) -> xr.DataArray:
    """Area-weighted mean series over each polygon: dims ``region`` (``polygons[key]``, every
    polygon, overlapping ones included) and ``time`` (and ``layer``); coordinate ``n_cells``:
    the cells whose centres lie inside and that hold data on some day (sea cells do not)."""
    from xsomo.drivers import regions
    from xsomo.regrid import normalise_latlon

    da = _sm(obj, layer)
    out = regions.regional_mean(da, polygons, key=key)
    # the mask lies on the grid's normalised coordinates (ascending; float32 ones rounded to
    # clean decimals): the cells with data are taken on the same ones. With the files' own
    # float32 coordinates, `m & has_data` had kept only the few labels equal in both (n_cells
    # 1, 0, 1, 0 for 20, 4, 4, 6); join="exact" refuses any other mismatch rather than miscount
    grid = normalise_latlon(da)
    m = regions.mask_3d(polygons, grid, key=key)
    has_data = grid.notnull().any([d for d in grid.dims if d not in (cv.LAT, cv.LON)])
    m, has_data = xr.align(m, has_data, join="exact")
    cells = (m & has_data).sum((cv.LAT, cv.LON))
    _warn_time_gaps(da, "the series")
    return out.assign_coords(n_cells=("region", np.asarray(cells.values).astype(int)))


def zonal_statistics(
    obj: xr.Dataset | xr.DataArray,
    polygons: Any,
    period: Sequence[Any],
    *,
    layer: int = 1,
    key: str = "NAME",
    climatology: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Per polygon: cells, the area-weighted mean over ``period`` and its period anomaly (z-score).

    ``anomaly`` is :func:`xsomo.evaluation.period_anomaly` of the polygon's area-weighted
    mean series: the period mean against the same calendar window in the other years
    (NaN when the data hold fewer than three such windows).
    """
    start, end = parse_period(period)
    series = polygon_series(obj, polygons, layer=layer, key=key).load()
    mean = window_mean(series, start, end)
    if mean is None:
        raise XsomoValueError(missing_days_message(series, start, end))
    try:
        za = period_anomaly(series, (start, end), climatology=climatology)
        z, n_years = za.values, int(za.attrs["n_years"])
    except XsomoValueError:
        if climatology is not None:  # asked for explicitly: refuse, as xsomo export does (not empty anomalies)
            raise
        z, n_years = np.full(series.sizes["region"], np.nan), 0
    n_cells = np.asarray(series["n_cells"].values)
    coverage = _coverage(polygons, _sm(obj, layer), key)
    names = [str(r) for r in series["region"].values]
    outside = [r for r, c in zip(names, coverage, strict=True) if c == 0]
    if outside:  # (it was said to lie "partly outside")
        warnings.warn(
            f"{len(outside)} polygons lie wholly outside the data's grid ({', '.join(outside[:5])}"
            f"{', ...' if len(outside) > 5 else ''}): no mean (NaN). Check their coordinates and CRS.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    small = [r for r, c, n in zip(names, coverage, n_cells, strict=True) if c > 0 and n == 0]
    if small:  # (only regionmask's "No gridpoint belongs to any region" was said, and a NaN row with coverage 1)
        warnings.warn(
            f"{len(small)} polygons hold no cell centre of the grid ({', '.join(small[:5])}"
            f"{', ...' if len(small) > 5 else ''}): no mean (NaN). A polygon smaller than a cell gets none: use "
            "xsomo series at a point inside it instead.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    partial = [r for r, c in zip(names, coverage, strict=True) if 0 < c < COVERAGE_WARN]
    if partial:
        warnings.warn(
            f"{len(partial)} polygons lie partly outside the data's grid ({', '.join(partial[:5])}"
            f"{', ...' if len(partial) > 5 else ''}): their mean is that of the part inside (column 'coverage': "
            "the share of each polygon's area inside the grid)",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return pd.DataFrame(
        {
            key: [str(v) for v in series["region"].values],
            "n_cells": n_cells,
            "coverage": np.round(coverage, 4),
            "layer": layer,
            "start": f"{start:%Y-%m-%d}",
            "end": f"{end:%Y-%m-%d}",
            "mean_sm": np.asarray(mean.values, float),
            "anomaly_z": np.asarray(z, float),
            "n_years": np.where(n_cells > 0, n_years, 0),
        }
    )


#: Share of a polygon's area inside the grid below which :func:`zonal_statistics` warns.
COVERAGE_WARN = 0.99


def _coverage(polygons: Any, da: xr.DataArray, key: str) -> np.ndarray:
    """Share of each polygon's area inside the grid's outline (equal-area, EPSG:6933).

    The outline is that of the grid the mask lies on (:func:`polygon_series`): the data's
    coordinates normalised by the one rule (:func:`xsomo.regrid.normalise_latlon`: float32
    values as their decimals, a region across 0° in 0..360 as one block in -180..180). The
    polygons are first brought to the grid's longitudes, as for the mask
    (:func:`xsomo.drivers.regions.in_grid_longitudes`).
    """
    import shapely

    from xsomo.drivers.regions import in_grid_longitudes
    from xsomo.regrid import normalise_latlon

    # on the raw coordinates, a region across 0° in 0..360 (0..1 and 359..360) had the outline
    # 0..360: a polygon half outside it had coverage 1 and no warning
    grid = normalise_latlon(da)
    lat, lon = np.asarray(grid[cv.LAT].values, float), np.asarray(grid[cv.LON].values, float)
    g = cv.GridSpec.from_coords(lat, lon)
    gdf = in_grid_longitudes(polygons, lon)
    inside = gdf.geometry.intersection(shapely.box(g.west, g.south, g.east, g.north))
    whole = gdf.geometry.to_crs(6933).area.to_numpy()
    part = inside.set_crs(4326, allow_override=True).to_crs(6933).area.to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole > 0, part / np.where(whole > 0, whole, 1.0), 0.0)


def plot_series(series: xr.DataArray, path: str | os.PathLike[str], *, title: str = "") -> pathlib.Path:
    """A line plot of ``series`` (``time`` and optionally ``region``/``layer``) as PNG (or PDF/SVG by suffix).

    Days missing from ``time`` (a folder without a year's files) break the lines.
    """
    from xsomo.io.atomic import atomic_path

    fig = _series_figure(series, title=title)
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=300, format=path.suffix.lstrip(".") or "png")
    return path


def _series_figure(series: xr.DataArray, *, title: str = "") -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    others = [d for d in series.dims if d != cv.TIME]
    flat = series.stack(line=others) if others else series.expand_dims(line=[""])
    # missing days as NaN: the line breaks at a gap instead of joining its two ends
    t = pd.DatetimeIndex(series[cv.TIME].values)
    if time_gaps(t):
        t = pd.date_range(t[0].normalize(), t[-1].normalize(), freq="D")
        flat = flat.assign_coords({cv.TIME: pd.DatetimeIndex(flat[cv.TIME].values).normalize()}).reindex({cv.TIME: t})
    for k in range(flat.sizes["line"]):
        label = flat["line"].values[k]
        label = " ".join(f"{d} {v}" for d, v in zip(others, label if isinstance(label, tuple) else (label,), strict=False))
        ax.plot(t, flat.isel(line=k).transpose(cv.TIME, ...).values, lw=1.0, label=label or None)
    ax.set_ylabel("soil moisture (m³ m⁻³)")
    ax.grid(alpha=0.3)
    if others:
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return fig
