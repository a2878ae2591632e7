"""MSWEP/MSWX-style and static gridded readers: units, sub-daily aggregation, gaps, missing variables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo.exceptions import DataFormatError, MissingVariableError, UnitError
from xsomo.io import open_gridded, open_mswep, open_mswx

LAT = np.array([45.15, 45.05])  # descending, as MSWEP writes it
LON = np.array([5.05, 5.15])


def write(path, name, values, time, units):
    attrs = {} if units is None else {"units": units}
    xr.Dataset(
        {name: (("time", "lat", "lon"), values, attrs)},
        coords={"time": time, "lat": LAT, "lon": LON},
    ).to_netcdf(path)
    return path


def test_mswx_subdaily_degc_to_daily_kelvin(tmp_path):
    t = pd.date_range("2020-01-01", periods=4 * 3, freq="6h")
    vals = np.arange(t.size, dtype="float32")[:, None, None] * np.ones((1, 2, 2), "float32")
    out = open_mswx(write(tmp_path / "t.nc", "air_temperature", vals, t, "degC"))
    assert out.sizes["time"] == 3 and out["air_temperature"].attrs["units"] == "K"
    np.testing.assert_allclose(
        out["air_temperature"].values[:, 0, 0],
        [1.5 + 273.15, 5.5 + 273.15, 9.5 + 273.15],
        rtol=1e-6,
    )
    assert (np.diff(out.lat.values) > 0).all() and out["air_temperature"].dtype == np.float32


def test_mswep_units_converted_and_required(tmp_path):
    t = pd.date_range("2020-01-01", periods=3)
    vals = np.full((3, 2, 2), 0.004, "float32")
    out = open_mswep(write(tmp_path / "p.nc", "precipitation", vals, t, "m d-1"))
    np.testing.assert_allclose(out["precipitation"].values, 4.0, rtol=1e-6)
    with pytest.raises(UnitError, match="'precipitation'"):
        open_mswep(write(tmp_path / "nounits.nc", "precipitation", vals, t, None))
    ok = open_mswep(tmp_path / "nounits.nc", units="mm d-1")
    np.testing.assert_allclose(ok["precipitation"].values, 0.004, rtol=1e-6)


def test_daily_gap_and_missing_variable(tmp_path):
    t = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-04"])
    f = write(tmp_path / "gap.nc", "precipitation", np.ones((3, 2, 2), "float32"), t, "mm d-1")
    with pytest.raises(DataFormatError, match="gaps"):
        open_mswep(f)
    with pytest.raises(MissingVariableError, match="air_temperature"):
        open_gridded(f, {"air_temperature": "K"})


def test_item3_mswep_x1000_and_mswx_kelvin_labelled_degc_refused(tmp_path):
    t = pd.date_range("2020-01-01", periods=5)
    rain = np.random.default_rng(0).gamma(0.6, 4.0, (t.size, 2, 2)).astype("float32")
    ok = open_mswep(write(tmp_path / "p.nc", "precipitation", rain, t, "mm d-1"))
    np.testing.assert_allclose(ok["precipitation"].values, rain[:, ::-1], rtol=1e-6)
    with pytest.raises(UnitError, match=r"p_m\.nc.*1000x too large: looks like mm labelled m"):
        open_mswep(write(tmp_path / "p_m.nc", "precipitation", rain, t, "m d-1"))
    temp = np.full((t.size, 2, 2), 284.0, "float32")  # kelvin values labelled degC
    with pytest.raises(UnitError, match=r"273\.15 added twice"):
        open_mswx(write(tmp_path / "t.nc", "air_temperature", temp, t, "degC"))


# ----------------------------------------------------------------------------- issue 15 item 2: MSWEP/MSWX layouts
def _rain(t):
    rng = np.random.default_rng(5)
    return rng.gamma(0.6, 4.0, (t.size, 2, 2)).astype("float32")


@pytest.mark.parametrize("layout", ["day", "month", "year"])
def test_item2_mswep_day_monthly_yearly_files(tmp_path, layout):
    """MSWEP ships day files YYYYDDD.nc (or monthly YYYYMM.nc, yearly YYYY.nc): all read the same."""
    t = pd.date_range("2019-12-20", "2020-02-10")
    rain = _rain(t)
    root = tmp_path / layout
    root.mkdir()
    if layout == "day":
        for k, d in enumerate(t):
            write(root / f"{d.year}{d.day_of_year:03d}.nc", "precipitation", rain[k : k + 1], t[k : k + 1], "mm d-1")
    else:
        key = t.strftime("%Y%m") if layout == "month" else t.strftime("%Y")
        for name in sorted(set(key)):
            sel = np.flatnonzero(key == name)
            write(root / f"{name}.nc", "precipitation", rain[sel], t[sel], "mm d-1")
    out = open_mswep(root)
    assert pd.DatetimeIndex(out.time.values).equals(t)
    np.testing.assert_allclose(out["precipitation"].values, rain[:, ::-1], rtol=1e-6)


def test_item2_day_files_without_time_axis_and_a_missing_day(tmp_path):
    t = pd.date_range("2020-02-27", "2020-03-02")  # a leap year: day 60 is Feb 29
    rain = _rain(t)
    for k, d in enumerate(t):
        xr.Dataset(
            {"precipitation": (("lat", "lon"), rain[k], {"units": "mm d-1"})},
            coords={"lat": LAT, "lon": LON},
        ).to_netcdf(tmp_path / f"{d.year}{d.day_of_year:03d}.nc")
    out = open_mswep(tmp_path)
    assert pd.DatetimeIndex(out.time.values).equals(t)
    np.testing.assert_allclose(out["precipitation"].values, rain[:, ::-1], rtol=1e-6)
    (tmp_path / "2020060.nc").unlink()
    with pytest.raises(DataFormatError, match="gaps"):
        open_mswep(tmp_path)


@pytest.mark.parametrize("units", ["mm/3h", "mm/(3 h)", "mm / 3hr"])
def test_mswep_three_hourly_amounts_are_daily_totals(tmp_path, units):
    """MSWEP's 3-hourly files give each step's amount in 'mm/3h', which could not be parsed, and
    the error's example ('mm d-1') read the amounts as daily totals: 8x too small (QA)."""
    t = pd.date_range("2020-01-01", periods=8 * 2, freq="3h")
    amounts = np.arange(t.size, dtype="float32")[:, None, None] * np.ones((1, 2, 2), "float32")
    out = open_mswep(write(tmp_path / "p3.nc", "precipitation", amounts, t, units))
    np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], [amounts[:8, 0, 0].sum(), amounts[8:, 0, 0].sum()], rtol=1e-6)
    assert out["precipitation"].attrs["units"] == "mm d-1"
    with pytest.raises(UnitError, match=r"in .*bad.nc: cannot parse units 'mm per 3h'.*do not relabel"):
        open_mswep(write(tmp_path / "bad.nc", "precipitation", amounts, t, "mm per 3h"))


def test_a_missing_sub_daily_step_inside_the_record_is_refused(tmp_path):
    """A 3-hourly file missing one step dropped that day without a word; prepare then said only
    that the time axes differ (QA). Days cut at the record's ends are still dropped."""
    t = pd.date_range("2020-01-01 03:00", "2020-01-05 00:00", freq="3h")  # starts and ends within a day
    keep = t != pd.Timestamp("2020-01-03 12:00")
    vals = np.ones((t.size, 2, 2), "float32")
    out = open_mswx(write(tmp_path / "ok.nc", "air_temperature", vals + 280.0, t, "K"))
    assert [str(d)[:10] for d in out.time.values] == ["2020-01-02", "2020-01-03", "2020-01-04"]
    with pytest.raises(DataFormatError, match=r"gap.nc: 1 day\(s\) inside the record lack time steps \(2020-01-03: 7 of 8"):
        open_mswx(write(tmp_path / "gap.nc", "air_temperature", vals[keep] + 280.0, t[keep], "K"))


def test_a_cell_missing_one_sub_daily_step_is_refused(tmp_path):
    """One 3-hourly field NaN at one cell gave that cell the mean of the other 7 steps (a 24 mm
    shower in the missing step: 0 mm that day) without a word (hostile-input QA); a cell NaN at
    every step (the sea) stays NaN."""
    t = pd.date_range("2020-01-01", periods=8 * 3, freq="3h")
    vals = np.zeros((t.size, 2, 2), "float32")
    vals[:, 1, 1] = np.nan  # the sea
    vals[12, 0, 1] = 24.0 * 8  # 24 mm in one step, as a rate in mm d-1
    out = open_mswep(write(tmp_path / "ok.nc", "precipitation", vals, t, "mm d-1"))
    assert out["precipitation"].sel(lat=45.15, lon=5.15).values.tolist() == [0.0, 24.0, 0.0]
    assert out["precipitation"].sel(lat=45.05, lon=5.15).isnull().all()
    vals[12, 0, 1] = np.nan
    with pytest.raises(DataFormatError, match=r"gap.nc: precipitation lacks some of a day's 8 steps \(3 h each\) at 1 "
                       r"cell\(s\) \(first at lat 45.15, lon 5.15 on 2020-01-02: 7 of 8\)"):
        open_mswep(write(tmp_path / "gap.nc", "precipitation", vals, t, "mm d-1"))


def test_a_land_mask_in_percent_labelled_1_is_refused(tmp_path):
    """A land fraction in percent labelled '1' made every cell with 1-50 % of land into land
    (nothing checked its range; hostile-input QA); labelled percent it is converted."""
    frac = np.array([[100.0, 30.0], [0.0, 60.0]], "float32")
    for name, units in (("one", "1"), ("percent", "%")):
        xr.Dataset({"land_mask": (("lat", "lon"), frac, {"units": units})}, coords={"lat": LAT, "lon": LON}).to_netcdf(
            tmp_path / f"{name}.nc"
        )
    with pytest.raises(UnitError, match=r"land_mask.*100x too large: looks like percent labelled 1"):
        open_gridded(tmp_path / "one.nc", {"land_mask": "1"})
    got = open_gridded(tmp_path / "percent.nc", {"land_mask": "1"})["land_mask"]
    np.testing.assert_allclose(got.sel(lat=45.15).values, [1.0, 0.3], rtol=1e-6)


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_a_climate_models_calendar_is_refused_with_the_conversion(tmp_path, calendar):
    """A noleap or 360_day time axis ended in "DatetimeNoLeap is not convertible to datetime"
    (the CLI called it a bug in xsomo; hostile-input QA)."""
    t = xr.date_range("2020-02-27", periods=8, freq="D", calendar=calendar, use_cftime=True)
    vals = np.full((4, 2, 2), 280.0, "float32")
    write(tmp_path / "t1.nc", "air_temperature", vals, t[:4], "K")
    with pytest.raises(DataFormatError, match=rf"t1.nc: the time axis 'time' is in the '{calendar}' calendar.*convert_calendar"):
        open_mswx(tmp_path / "t1.nc")
    write(tmp_path / "t2.nc", "air_temperature", vals, t[4:], "K")  # two files: combined first
    with pytest.raises(DataFormatError, match=rf"t1.nc, t2.nc: the time axis 'time' is in the '{calendar}' calendar"):
        open_mswx(tmp_path)


def test_spatial_tiles_of_the_same_days_are_combined(tmp_path):
    """The west and east halves of a large request (same days) were refused as a repeated
    download, and keeping one of them, as the message said, failed the coverage (hostile-input
    QA); tiles that share an edge column are refused, naming it."""
    t = pd.date_range("2020-01-01", periods=3)
    lon = np.array([5.05, 5.15, 5.25, 5.35])
    vals = np.arange(3 * 2 * 4, dtype="float32").reshape(3, 2, 4)

    def tile(path, cols):
        xr.Dataset({"precipitation": (("time", "lat", "lon"), vals[:, :, cols], {"units": "mm d-1"})},
                   coords={"time": t, "lat": LAT, "lon": lon[cols]}).to_netcdf(path)  # fmt: skip

    (tmp_path / "whole").mkdir()
    tile(tmp_path / "whole" / "all.nc", slice(0, 4))
    (tmp_path / "tiles").mkdir()
    tile(tmp_path / "tiles" / "west.nc", slice(0, 2))
    tile(tmp_path / "tiles" / "east.nc", slice(2, 4))
    xr.testing.assert_identical(open_mswep(tmp_path / "tiles").load(), open_mswep(tmp_path / "whole").load().assign_attrs(
        source=open_mswep(tmp_path / "tiles").attrs["source"]))
    (tmp_path / "edge").mkdir()
    tile(tmp_path / "edge" / "west.nc", slice(0, 3))
    tile(tmp_path / "edge" / "east.nc", slice(2, 4))
    with pytest.raises(DataFormatError, match=r"east.nc and .*west.nc both hold 'precipitation' on 2020-01-01.* at the same cells.*share an edge"):
        open_mswep(tmp_path / "edge")


def test_mswep_precipitation_flux_in_kg_per_m2_per_s(tmp_path):
    """CF's precipitation_flux (kg m-2 s-1) was refused by open_mswep though the ERA5-Land path
    converted it (QA): 1 kg m-2 of water is 1 mm."""
    t = pd.date_range("2020-01-01", periods=3)
    flux = np.full((3, 2, 2), 2.5e-5, "float32")  # kg m-2 s-1
    out = open_mswep(write(tmp_path / "pr.nc", "precipitation", flux, t, "kg m-2 s-1"))
    np.testing.assert_allclose(out["precipitation"].values, 2.5e-5 * 86400, rtol=1e-6)
    with pytest.raises(UnitError, match="cannot be converted"):
        open_mswep(write(tmp_path / "depth.nc", "precipitation", flux, t, "kg m-2"))  # an amount without time


def test_files_in_different_units_are_refused_not_converted_as_one(tmp_path):
    """Year files in mm d-1 and kg m-2 s-1, or MSWEP's Daily/ beside Monthly/ under the folder
    given: one file's units were applied to all (QA: 4.0 then 4.6e-05 mm d-1; days 1-5 read
    as [3.06, 0.07, 0.10, 0.13, 0.16] against [1 .. 5]). Equivalent spellings still combine."""
    t = pd.date_range("2016-12-30", "2017-01-02")
    write(tmp_path / "2016.nc", "precipitation", np.full((2, 2, 2), 4.0), t[:2], "mm d-1")
    write(tmp_path / "2017.nc", "precipitation", np.full((2, 2, 2), 4.0 / 86400), t[2:], "kg m-2 s-1")
    with pytest.raises(DataFormatError, match=r"'precipitation' is in 'mm d-1' in .*2016.nc but in 'kg m-2 s-1' in .*2017.nc"):
        open_mswep(tmp_path)
    write(tmp_path / "2017.nc", "precipitation", np.full((2, 2, 2), 4.0), t[2:], "mm/d")
    np.testing.assert_allclose(open_mswep(tmp_path)["precipitation"].values, 4.0)
    mswep = tmp_path / "mswep"
    days = pd.date_range("2016-01-01", "2016-01-05")
    (mswep / "Daily").mkdir(parents=True)
    (mswep / "Monthly").mkdir()
    for k in range(days.size):
        write(mswep / "Daily" / f"2016{k + 1:03d}.nc", "precipitation", np.full((1, 2, 2), k + 1.0), days[k : k + 1], "mm/d")
    write(mswep / "Monthly" / "201601.nc", "precipitation", np.full((1, 2, 2), 93.0), days[:1], "mm/month")
    with pytest.raises(DataFormatError, match=r"Daily/ and Monthly/"):
        open_mswep(mswep)


def test_the_same_day_in_two_files_is_refused(tmp_path):
    """A re-download 2016003_1.nc beside 2016003.nc: the combine kept one of them silently (QA:
    day 3 read as 30.0, the other file held 3.0)."""
    days = pd.date_range("2016-01-01", "2016-01-05")
    for k in range(days.size):
        write(tmp_path / f"2016{k + 1:03d}.nc", "precipitation", np.full((1, 2, 2), k + 1.0), days[k : k + 1], "mm d-1")
    write(tmp_path / "2016003_1.nc", "precipitation", np.full((1, 2, 2), 30.0), days[2:3], "mm d-1")
    with pytest.raises(DataFormatError, match=r"2016003.nc and .*2016003_1.nc both hold 'precipitation' on 2016-01-03"):
        open_mswep(tmp_path)
    (tmp_path / "2016003_1.nc").unlink()
    np.testing.assert_allclose(open_mswep(tmp_path)["precipitation"].values[:, 0, 0], [1, 2, 3, 4, 5])


def test_units_given_never_replace_a_files_own_label(tmp_path):
    """units= is for variables without a label: it had overwritten one, so 3-hourly amounts in
    'mm/3h' given units='mm d-1' were read 8x too low (QA). A different label is refused, naming
    the file; the same units spelled otherwise are kept."""
    t = pd.date_range("2020-01-01", periods=16, freq="3h")
    f = write(tmp_path / "p3.nc", "precipitation", np.ones((t.size, 2, 2), "float32"), t, "mm/3h")
    with pytest.raises(UnitError, match=r"p3.nc: 'precipitation' is labelled 'mm/3h' but units 'mm d-1' were given.*refused, not relabelled"):
        open_mswep(f, units="mm d-1")
    np.testing.assert_allclose(open_mswep(f, units="mm/(3 h)")["precipitation"].values, 8.0)
    np.testing.assert_allclose(open_mswep(f)["precipitation"].values, 8.0)
    days = pd.date_range("2020-01-01", periods=3)
    write(tmp_path / "d.nc", "precipitation", np.full((3, 2, 2), 2.0, "float32"), days, "mm d-1")
    np.testing.assert_allclose(open_mswep(tmp_path / "d.nc", units="mm/d")["precipitation"].values, 2.0)
    # several files: the one whose label differs is named
    (tmp_path / "y").mkdir()
    write(tmp_path / "y" / "2016.nc", "precipitation", np.full((2, 2, 2), 4.0), days[:2], "m d-1")
    write(tmp_path / "y" / "2017.nc", "precipitation", np.full((1, 2, 2), 4.0), days[2:], "m d-1")
    with pytest.raises(UnitError, match=r"2016.nc: 'precipitation' is labelled 'm d-1' but units 'mm d-1'") as info:
        open_mswep(tmp_path / "y", units="mm d-1")
    assert "per day" not in str(info.value)  # ('m d-1 d-1' had been offered as an example)
    write(tmp_path / "amount.nc", "precipitation", np.full((3, 2, 2), 2.0, "float32"), days, "m")
    with pytest.raises(UnitError, match=r"take that amount per day: 'm d-1'"):
        open_mswep(tmp_path / "amount.nc", units="mm h-1")
    # hourly amounts: not offered the per-day label (which the same message then refused again)
    hours = pd.date_range("2020-01-01", periods=3, freq="h")
    write(tmp_path / "hourly.nc", "precipitation", np.full((3, 2, 2), 2.0, "float32"), hours, "m")
    with pytest.raises(UnitError, match=r"time steps are shorter than a day.*source: era5land") as info:
        open_mswep(tmp_path / "hourly.nc", units="m d-1")
    assert "take that amount per day" not in str(info.value)


def _with_bounds(path, values, start, length, stamp_at_end=True, units="mm d-1"):
    end = start + length
    ds = xr.Dataset(
        {"precipitation": (("time", "lat", "lon"), values, {"units": units})},
        coords={"time": end if stamp_at_end else start, "lat": LAT, "lon": LON},
    )
    ds["time_bnds"] = (("time", "nv"), np.stack([start.values, end.values], 1))
    ds["time"].attrs["bounds"] = "time_bnds"
    ds["time"].encoding["units"] = "hours since 2000-01-01"
    ds.to_netcdf(path)
    return path


def test_cf_time_bounds_give_the_day_of_each_value(tmp_path):
    """Daily totals stamped at the end of their interval ([D, D+1], stamp D+1 00:00) were read a
    day late: the stamp was floored and the bounds ignored (QA). Each value goes to the day its
    interval mostly covers (the day of its middle); bounds longer than a day on a daily axis are refused,
    bounds shorter than a day within it are read (CDO's daymean/daysum write [00:00, 23:00]; a second
    QA had found those refused)."""
    days = pd.date_range("2020-01-01", periods=5)
    vals = np.arange(5, dtype="float32")[:, None, None] * np.ones((1, 2, 2), "float32")
    out = open_mswep(_with_bounds(tmp_path / "end.nc", vals, days, pd.Timedelta("1D")))
    assert pd.DatetimeIndex(out.time.values).equals(days)
    np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], [0, 1, 2, 3, 4])
    out = open_mswep(_with_bounds(tmp_path / "start.nc", vals, days, pd.Timedelta("1D"), stamp_at_end=False))
    assert pd.DatetimeIndex(out.time.values).equals(days)
    with pytest.raises(DataFormatError, match=r"two.nc: the time bounds 'time_bnds' of a daily axis are longer than one day"):
        open_mswep(_with_bounds(tmp_path / "two.nc", vals, days, pd.Timedelta("2D") - pd.Timedelta("1h")))
    # CDO: [00:00, 23:00] stamped 11:30; E-OBS-like 06-06 UTC days: the day of their first 18 hours
    cdo = _with_bounds(tmp_path / "cdo.nc", vals, days, pd.Timedelta("23h"), stamp_at_end=False)
    with xr.open_dataset(cdo) as ds:
        ds = ds.load().assign_coords(time=days + pd.Timedelta("11h30min"))
    ds["time"].attrs["bounds"] = "time_bnds"
    ds.to_netcdf(tmp_path / "cdo2.nc")
    for f in (tmp_path / "cdo2.nc", _with_bounds(tmp_path / "e.nc", vals, days + pd.Timedelta("6h"), pd.Timedelta("1D"))):
        out = open_mswep(f)
        assert pd.DatetimeIndex(out.time.values).equals(days), f
        np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], [0, 1, 2, 3, 4])
    # sub-daily: 3-hourly amounts stamped at the end of each step are summed into the right day
    t = pd.date_range("2020-01-01", periods=16, freq="3h")
    amounts = np.repeat([1.0, 2.0], 8).astype("float32")[:, None, None] * np.ones((1, 2, 2), "float32")
    out = open_mswep(_with_bounds(tmp_path / "p3.nc", amounts, t, pd.Timedelta("3h"), units="mm/3h"))
    assert pd.DatetimeIndex(out.time.values).equals(pd.date_range("2020-01-01", periods=2))
    np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], [8.0, 16.0])


def test_a_daily_total_labelled_as_an_amount_takes_units_per_day_and_equal_units_are_equal(tmp_path):
    """E-OBS/CPC-style daily totals labelled 'mm' (or 'kg m-2') are read with units='mm d-1' ('kg m-2 d-1') on a
    daily axis, not on an hourly one; 'mm/24h' is 'mm d-1' (both had been refused after units= stopped relabelling)."""
    days = pd.date_range("2020-01-01", periods=3)
    for label, given in (("mm", "mm d-1"), ("kg m-2", "kg m-2 d-1"), ("mm/24h", "mm d-1")):
        sub = tmp_path / label.replace("/", "_").replace(" ", "_")
        sub.mkdir()
        write(sub / "p.nc", "precipitation", np.full((3, 2, 2), 2.0, "float32"), days, label)
        out = open_mswep(sub, units=given)
        np.testing.assert_allclose(out["precipitation"].values, 2.0)
    hours = pd.date_range("2020-01-01", periods=48, freq="h")
    write(tmp_path / "h.nc", "precipitation", np.full((48, 2, 2), 0.5, "float32"), hours, "mm")
    with pytest.raises(UnitError, match=r"labelled 'mm' but units 'mm d-1' were given"):
        open_mswep(tmp_path / "h.nc", units="mm d-1")  # hourly amounts are not millimetres a day


def test_a_monthly_product_is_named_as_monthly(tmp_path):
    """MSWEP's Monthly product given as daily precipitation was called a daily axis with gaps (QA)."""
    months = pd.date_range("2019-01-01", "2019-06-01", freq="MS")
    for m in months:
        write(tmp_path / f"{m:%Y%m}.nc", "precipitation", np.full((1, 2, 2), 60.0, "float32"), pd.DatetimeIndex([m]), "mm/month")
    with pytest.raises(DataFormatError, match=r"time step of precipitation is monthly .*not one day.*Daily product"):
        open_mswep(tmp_path)
    # with CF bounds of a month on one stamp
    (tmp_path / "one").mkdir()
    f = _with_bounds(tmp_path / "one" / "m.nc", np.ones((1, 2, 2), "float32"), months[:1], pd.Timedelta("31D"), False)
    with pytest.raises(DataFormatError, match=r"m.nc: the time step of precipitation is monthly"):
        open_mswep(f)
