"""ISMN forcing files (issue 18): precipitation and air temperature beside soil moisture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import xsomo

VARS = ["soil_moisture", "precipitation", "air_temperature"]


@pytest.fixture(scope="module")
def hawaii(real_data):
    path = real_data / "hawaii-scan-forcing"
    if not path.is_dir():
        pytest.skip("hawaii-scan-forcing not in the real-data folder")
    return path, xsomo.open_ismn(path, variables=VARS)


def _raw(path):
    """The .stm file read independently: date, time, value, flag."""
    df = pd.read_csv(path, sep=r"\s+", skiprows=1, header=None, usecols=[0, 1, 2, 3], names=["d", "t", "v", "f"])
    df.index = pd.to_datetime(df["d"] + " " + df["t"], format="%Y/%m/%d %H:%M")
    return df


def test_daily_forcing_follows_the_qc_rules(hawaii):
    path, ds = hawaii
    stn = path / "SCAN" / "PuaAkala"
    for var, tag, how in (("precipitation", "_p_", "sum"), ("air_temperature", "_ta_", "mean")):
        raw = _raw(next(stn.glob(f"*{tag}*.stm")))
        good = raw[raw["f"] == "G"]
        per_day = good.groupby(good.index.normalize())["v"]
        n, mean = per_day.count(), per_day.mean()
        expect = (mean * 24 if how == "sum" else mean + 273.15).where(n >= 20)
        got = ds[var].where(ds.station_name == "PuaAkala", drop=True).isel(station=0).to_series()
        common = expect.index.intersection(got.index)
        assert len(common) > 4000
        np.testing.assert_allclose(got[common].to_numpy(), expect[common].to_numpy(), rtol=1e-5, equal_nan=True)
        # a day with 1..19 good hours is a gap
        few = n[(n > 0) & (n < 20)].index.intersection(got.index)
        assert got[few].isna().all()


def test_open_ismn_without_variables_is_unchanged(hawaii):
    path, ds = hawaii
    plain = xsomo.open_ismn(path)
    assert set(plain.data_vars) == {"sm"}
    np.testing.assert_array_equal(ds["sm"].sel(time=plain.time).values, plain["sm"].values)


def test_point_drivers_from_ismn_forcing(hawaii):
    _path, ds = hawaii
    pts = xsomo.point_drivers(ds)
    assert pts.sizes["station"] == 3  # one point per ISMN station, not per sensor
    pua = pts.sel(station="SCAN.PuaAkala")
    assert float(pua.elevation_mean) == 1949.0  # the .stm header
    assert float(pua.sand_top) == pytest.approx(0.31) and float(pua.clay_sub) == pytest.approx(0.22)
    assert float(pua.precipitation_mean) == pytest.approx(float(pua.precipitation.mean()), rel=1e-5)
    assert pts["precipitation"].dims == ("station", "time")
    with pytest.raises(xsomo.XsomoError, match="variables="):
        xsomo.open_ismn(_path, variables=["soil_moisture", "wind"])
