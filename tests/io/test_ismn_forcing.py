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


def test_daily_air_temperature_range_from_a_synthetic_hourly_series():
    from xsomo.io.ismn_forcing import daily_forcing

    rng = np.random.default_rng(3)
    idx = pd.date_range("2020-03-01", periods=24 * 4, freq="h")
    v = pd.Series(rng.normal(15.0, 4.0, idx.size), index=idx)
    flags = np.array(["G"] * idx.size, dtype=object)
    flags[24 + 5] = "D01"  # day 2: one bad hour (23 good: kept), and it is the day's extreme
    v.iloc[24 + 5] = 99.0
    flags[48 : 48 + 5] = "C03"  # day 3: 19 good hours: a gap
    v.iloc[72 + 7] = np.nan  # day 4: 23 good hours (a missing value is not good)
    f = pd.Series(flags, index=idx)
    got, _ = daily_forcing(v, f, "range")
    # oracle: a plain loop over the days
    expect = []
    for d in range(4):
        vals = [v.iloc[24 * d + h] for h in range(24) if flags[24 * d + h] == "G" and np.isfinite(v.iloc[24 * d + h])]
        expect.append(max(vals) - min(vals) if len(vals) >= 20 else np.nan)
    assert np.isnan(expect[2]) and expect[1] < 50.0
    np.testing.assert_allclose(got.to_numpy(), expect, rtol=1e-12)
    # the mean of the same series is unchanged by the new option
    mean, _ = daily_forcing(v, f, "mean")
    assert mean.to_numpy()[0] == pytest.approx(v.iloc[:24].mean())


def test_open_ismn_reads_the_air_temperature_range(hawaii):
    path, ds = hawaii
    assert "air_temperature_range" not in ds  # only when asked
    rng = xsomo.open_ismn(path, variables=[*VARS, "air_temperature_range"])
    np.testing.assert_array_equal(rng["air_temperature"].values, ds["air_temperature"].sel(time=rng.time).values)
    raw = _raw(next((path / "SCAN" / "PuaAkala").glob("*_ta_*.stm")))
    good = raw[raw["f"] == "G"]
    per_day = good.groupby(good.index.normalize())["v"]
    expect = (per_day.max() - per_day.min()).where(per_day.count() >= 20)
    got = rng["air_temperature_range"].where(rng.station_name == "PuaAkala", drop=True).isel(station=0).to_series()
    common = expect.index.intersection(got.index)
    assert len(common) > 4000
    np.testing.assert_allclose(got[common].to_numpy(), expect[common].to_numpy(), rtol=1e-5, atol=1e-5, equal_nan=True)
    pts = xsomo.point_drivers(rng)
    assert pts["air_temperature_range"].dims == ("station", "time")
    assert float(pts["air_temperature_range"].sel(station="SCAN.PuaAkala").mean()) > 1.0
    assert "air_temperature_range" not in xsomo.point_drivers(ds)


def test_a_download_without_forcing_files_says_so(real_data):
    """Forcing asked of a download without those files was all NaN without a word."""
    z = real_data / "ismn/tests/test_data/zip_archives/multinetwork/header_values/Data_header_values.zip"
    if not z.is_file():
        pytest.skip("the ismn package's test archive is not in the real-data folder")
    with pytest.warns(RuntimeWarning, match=r"no file of precipitation at 8 of 8 stations.*air_temperature"):
        st = xsomo.open_ismn(z, variables=VARS, good_flags=("G", "U"))
    assert not np.isfinite(st["precipitation"]).any()


def test_fill_gaps_on_the_hawaii_forcing(hawaii):
    """PuaAkala's forcing misses single days (e.g. 10 in 2013-14): ``fill_gaps=2`` fills those
    runs and no longer one, and leaves every measured day as it was."""
    _path, ds = hawaii
    plain = xsomo.point_drivers(ds)
    pts = xsomo.point_drivers(ds, fill_gaps=2)
    for v in ("precipitation", "air_temperature"):
        before = plain[v].values
        after = pts[v].values
        measured = np.isfinite(before)
        np.testing.assert_array_equal(after[measured], before[measured])
        newly = np.isfinite(after) & ~measured
        assert newly.sum() > 0
        # every filled day lies in a gap of at most 2 days with measured days on both sides
        for k, t in zip(*np.nonzero(newly), strict=True):
            lo, hi = t, t
            while not measured[k, lo - 1]:
                lo -= 1
            while not measured[k, hi + 1]:
                hi += 1
            assert hi - lo + 1 <= 2
    flag = pts["forcing_filled"].values.astype(bool)
    changed = np.zeros_like(flag)
    for v in ("precipitation", "air_temperature"):
        changed |= np.isfinite(pts[v].values) & ~np.isfinite(plain[v].values)
    np.testing.assert_array_equal(flag, changed)
    pua = list(pts.station.values).index("SCAN.PuaAkala")
    assert int(flag[pua].sum()) >= 10


def test_sub_hourly_precipitation_adds_up_within_the_hour():
    """15-minute amounts were averaged within each hour and the day taken as 24 x the hourly
    mean: 24 mm for 96 mm of rain; 3-hourly records gave NaN days without a word."""
    from xsomo.exceptions import XsomoValueError
    from xsomo.io.ismn_forcing import daily_forcing

    idx = pd.date_range("2020-01-01", periods=96 * 2, freq="15min")
    v = pd.Series(1.0, index=idx)
    assert daily_forcing(v, None, "sum")[0].tolist() == [96.0, 96.0]
    assert daily_forcing(v * 4, None, "mean")[0].tolist() == [4.0, 4.0]  # a state: averaged
    # an hour short of a record is not a whole hour of rain
    short = v.drop(idx[[1, 5, 9, 13, 17]])
    daily = daily_forcing(short, None, "sum", min_hours=20)[0]
    assert np.isnan(daily.iloc[0]) and daily.iloc[1] == 96.0  # 19 whole hours on day 1
    assert daily_forcing(short, None, "sum", min_hours=19)[0].tolist() == [96.0, 96.0]
    with pytest.raises(XsomoValueError, match="records every 0 days 03:00:00"):
        daily_forcing(pd.Series(3.0, index=pd.date_range("2020-01-01", periods=16, freq="3h")), None, "sum")


def test_a_logger_changing_its_step_and_records_given_twice_keep_the_daily_sum():
    """A gauge going from hourly to 10-minute records had its 10-minute hours averaged (the
    series' median step was an hour: 4 mm on a day of 24); 10-minute records given twice were
    summed twice (48 mm)."""
    from xsomo.io.ismn_forcing import daily_forcing

    hourly = pd.Series(1.0, index=pd.date_range("2020-01-01", periods=24 * 20, freq="h"))
    ten = pd.Series(1 / 6, index=pd.date_range("2020-01-21", periods=144 * 2, freq="10min"))
    got = daily_forcing(pd.concat([hourly, ten]), None, "sum")[0]
    np.testing.assert_allclose(got.to_numpy(), 24.0)
    assert got.size == 22
    twice = pd.concat([ten, ten.iloc[:144]]).sort_index()
    np.testing.assert_allclose(daily_forcing(twice, None, "sum")[0].to_numpy(), [24.0, 24.0])
    # an hour of 10-minute records missing one (its neighbour 20 minutes away) is not complete
    short = ten.drop(ten.index[[3, 9, 15, 21, 27]])
    assert np.isnan(daily_forcing(short, None, "sum", min_hours=20)[0].iloc[0])
