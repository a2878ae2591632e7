"""xsomo.drivers.features: aridity, sub-grid elevation moments, fraction upscaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import conventions as cv
from xsomo.conventions import GridSpec
from xsomo.drivers.features import aridity, static_features, subgrid_moments, upscale_fraction
from xsomo.exceptions import MissingVariableError
from xsomo.regrid import cell_area

FINE = GridSpec(0.0, 1.0, 50.0, 51.0, 0.01)
TARGET = GridSpec(0.2, 0.8, 50.2, 50.8, 0.1)


def fine(values, units, name="x"):
    return xr.DataArray(
        values, coords=FINE.coords(), dims=("lat", "lon"), name=name, attrs={"units": units}
    )


def test_aridity_by_hand():
    rng = np.random.default_rng(0)
    t = pd.date_range("2000-01-01", periods=30)
    rn = xr.DataArray(
        rng.uniform(50, 150, (30, 2, 2)),
        dims=("time", "lat", "lon"),
        coords={"time": t},
        attrs={"units": "W m-2"},
    )
    p = xr.DataArray(
        rng.uniform(0, 5, (30, 2, 2)),
        dims=("time", "lat", "lon"),
        coords={"time": t},
        attrs={"units": "mm d-1"},
    )
    expected = rn.values.mean(0) * 86400 / cv.LATENT_HEAT_VAPORISATION / p.values.mean(0)
    np.testing.assert_allclose(aridity(rn, p).values, expected, rtol=1e-6)
    # precipitation in m d-1 is converted, not misread
    p_m = (p / 1000).assign_attrs(units="m d-1")
    np.testing.assert_allclose(aridity(rn, p_m).values, expected, rtol=1e-6)


def test_subgrid_moments_match_numpy():
    rng = np.random.default_rng(1)
    dem = fine(rng.gamma(3, 200, FINE.shape), "m")
    mean, std = subgrid_moments(dem, TARGET)
    sub = dem.sel(lat=slice(50.2, 50.8), lon=slice(0.2, 0.8)).values
    w = cell_area(GridSpec(0.2, 0.8, 50.2, 50.8, 0.01)).values.reshape(6, 10, 6, 10)
    blocks = sub.reshape(6, 10, 6, 10)
    m = (blocks * w).sum((1, 3)) / w.sum((1, 3))
    v = (w * (blocks - m[:, None, :, None]) ** 2).sum((1, 3)) / w.sum((1, 3))
    np.testing.assert_allclose(mean.values, m, rtol=1e-5)
    np.testing.assert_allclose(std.values, np.sqrt(v), rtol=1e-3)


def test_percent_to_fraction():
    sand = fine(np.full(FINE.shape, 40.0), "percent", "sand_top")
    out = upscale_fraction(sand, TARGET, name="sand_top")
    np.testing.assert_allclose(out.values, 0.4, rtol=1e-6)
    assert out.attrs["units"] == "1"


def test_static_features_missing_variable():
    t = pd.date_range("2000-01-01", periods=3)
    dyn = xr.DataArray(
        np.ones((3, *TARGET.shape)),
        dims=("time", "lat", "lon"),
        coords={"time": t, **TARGET.coords()},
    )
    lc = xr.Dataset({"forest_fraction": fine(np.full(FINE.shape, 0.5), "1")})
    soil = xr.Dataset(
        {
            k: fine(np.full(FINE.shape, 20.0), "percent")
            for k in ("sand_top", "clay_top", "sand_sub", "clay_sub")
        }
    )
    with pytest.raises(MissingVariableError, match="shortveg_fraction"):
        static_features(
            precipitation=dyn.assign_attrs(units="mm d-1"),
            net_radiation=dyn.assign_attrs(units="W m-2"),
            elevation=fine(np.zeros(FINE.shape), "m"),
            landcover=lc,
            soil=soil,
            grid=TARGET,
        )
    lc["shortveg_fraction"] = fine(np.full(FINE.shape, 0.25), "1")
    out = static_features(
        precipitation=dyn.assign_attrs(units="mm d-1"),
        net_radiation=dyn.assign_attrs(units="W m-2"),
        elevation=fine(np.zeros(FINE.shape), "m"),
        landcover=lc,
        soil=soil,
        grid=TARGET,
    )
    assert list(out.data_vars) == list(cv.STATIC_NAMES)
    np.testing.assert_allclose(out["clay_sub"].values, 0.2, rtol=1e-6)
    np.testing.assert_allclose(out["elevation_std"].values, 0.0, atol=1e-6)
