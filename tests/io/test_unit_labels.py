"""Units labels of real downloads: per-month rates on daily axes (refused), ecCodes' and DEMs' spellings
(parsed), and the two rules of "same units" (one home in xsomo.units)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import units as xu
from xsomo.exceptions import DataFormatError, UnitError
from xsomo.io import open_era5land, open_gridded, open_mswep

LAT = np.array([45.15, 45.05])
LON = np.array([5.05, 5.15])


def _grid(path, name, values, time, units, *, lat="lat", lon="lon"):
    attrs = {} if units is None else {"units": units}
    dims = ("time", lat, lon) if time is not None else (lat, lon)
    coords = {lat: LAT, lon: LON, **({"time": time} if time is not None else {})}
    xr.Dataset({name: (dims, values, attrs)}, coords=coords).to_netcdf(path)
    return path


# ------------------------------------------------------------------ item 1: per-month rates on daily axes
@pytest.mark.parametrize("label", ["mm/month", "mm month-1", "kg m-2 month-1", "mm a-1", "mm/(30 d)"])
def test_a_daily_file_labelled_per_month_is_refused_not_divided_by_30(tmp_path, label):
    """Daily totals labelled 'mm/month' were read as monthly rates: 60 mm a day became 1.97 mm d-1."""
    days = pd.date_range("2020-01-01", periods=5)
    f = _grid(tmp_path / "p.nc", "precipitation", np.full((5, 2, 2), 6.0, "float32"), days, label)
    lab = re.escape(label)
    with pytest.raises(UnitError, match=rf"p\.nc: 'precipitation' is labelled '{lab}'.*a rate per .*daily time axis"
                                        rf".*units=\{{'precipitation': '{lab}'\}}") as err:
        open_mswep(f)
    assert "divided by" in str(err.value)


def test_a_per_month_label_declared_by_the_user_is_read_as_labelled(tmp_path):
    days = pd.date_range("2020-01-01", periods=5)
    f = _grid(tmp_path / "p.nc", "precipitation", np.full((5, 2, 2), 60.0, "float32"), days, "mm/month")
    out = open_mswep(f, units="mm/month")
    np.testing.assert_allclose(out["precipitation"].values, 60.0 / 30.4375, rtol=1e-6)
    out = open_gridded(f, {"precipitation": "mm d-1"}, units={"precipitation": "mm month-1"})
    np.testing.assert_allclose(out["precipitation"].values, 60.0 / 30.4375, rtol=1e-6)


def test_sub_daily_steps_labelled_per_month_are_refused_and_monthly_products_stay_named(tmp_path):
    hours = pd.date_range("2020-01-01", periods=16, freq="3h")
    f = _grid(tmp_path / "p3.nc", "precipitation", np.ones((16, 2, 2), "float32"), hours, "mm/month")
    with pytest.raises(UnitError, match=r"p3\.nc: 'precipitation' is labelled 'mm/month'.*sub-daily time axis"):
        open_mswep(f)
    # a monthly product keeps its own message (not daily), labelled per month or not
    (tmp_path / "m").mkdir()
    months = pd.date_range("2019-01-01", periods=3, freq="MS")
    _grid(tmp_path / "m" / "m.nc", "precipitation", np.full((3, 2, 2), 60.0, "float32"), months, "mm/month")
    with pytest.raises(DataFormatError, match="time step of precipitation is monthly"):
        open_mswep(tmp_path / "m")


def test_month_files_of_daily_values_are_still_read(tmp_path):
    """MSWEP's month files (YYYYMM.nc) hold daily values: no per-month label, read as before."""
    days = pd.date_range("2020-01-25", "2020-02-05")
    rain = np.arange(days.size, dtype="float32")[:, None, None] * np.ones((1, 2, 2), "float32")
    for key in ("202001", "202002"):
        sel = np.flatnonzero(days.strftime("%Y%m") == key)
        _grid(tmp_path / f"{key}.nc", "precipitation", rain[sel], days[sel], "mm d-1")
    out = open_mswep(tmp_path)
    np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], rain[:, 0, 0])


def test_era5land_daily_tp_labelled_per_month_is_refused_unless_declared(tmp_path):
    days = pd.date_range("2020-01-01", periods=4)
    f = _grid(tmp_path / "e.nc", "tp", np.full((4, 2, 2), 60.0), days, "mm/month", lat="latitude", lon="longitude")
    with pytest.raises(UnitError, match=r"e\.nc: 'tp' is labelled 'mm/month'.*open_era5land\(\.\.\., units=\{'tp': 'mm/month'\}\)"):
        open_era5land(f)
    out = open_era5land(f, units={"tp": "mm/month"})
    np.testing.assert_allclose(out["precipitation"].values, 60.0 / 30.4375, rtol=1e-6)


def test_rate_period_days():
    assert xu.rate_period_days("mm/month") == pytest.approx(30.4375)
    assert xu.rate_period_days("mm/3h") == pytest.approx(0.125)
    assert xu.rate_period_days("kg m-2 s-1") == pytest.approx(1 / 86400)
    assert [xu.rate_period_days(u) for u in ("mm", "W m-2", "K", "not a unit")] == [None] * 4


# ------------------------------------------------------------------ item 3: spellings of real downloads
@pytest.mark.parametrize(
    ("label", "same_as"),
    [
        ("m of water equivalent", "m"),  # ecCodes: ERA5 sd, sf, e, src
        ("mm of water equivalent", "mm"),
        ("mm w.e.", "mm"),
        ("m of water equivalent day-1", "m d-1"),
        ("(0 - 1)", "1"),  # ecCodes: ERA5 lsm, cvh, tcc, fal
        ("(0-1)", "1"),
        ("m a.s.l.", "m"),  # pint had read it as metre x annum x second x litre
        ("m asl", "m"),
        ("masl", "m"),
        ("m amsl", "m"),
        ("m above MSL", "m"),
        ("m MSL", "m"),
        ("metres above mean sea level", "m"),
        ("ft a.s.l.", "ft"),
    ],
)
def test_spellings_of_real_downloads_parse_to_their_quantity(label, same_as):
    assert xu.parse_units(label) == xu.parse_units(same_as)
    assert xu.same_quantity(label, same_as)


@pytest.mark.parametrize(("label", "says"), [("MSL", "datum"), ("a.s.l.", "datum"), ("m of water", "pressure")])
def test_ambiguous_spellings_are_refused_naming_the_variable(label, says):
    with pytest.raises(UnitError, match=rf"'elevation' in dem\.nc: units '{label}' .*{says}"):
        xu.parse_units(label, name="elevation", source="dem.nc")


def test_the_spellings_in_files_read_end_to_end(tmp_path):
    days = pd.date_range("2020-01-01", periods=3)
    lsm = _grid(tmp_path / "lsm.nc", "land_mask", np.array([[1.0, 0.4], [0.0, 1.0]]), None, "(0 - 1)")
    np.testing.assert_allclose(open_gridded(lsm, {"land_mask": "1"})["land_mask"].values, [[0.0, 1.0], [1.0, 0.4]])
    dem = _grid(tmp_path / "dem.nc", "elevation", np.array([[120.0, 300.0], [5.0, 80.0]]), None, "m a.s.l.")
    np.testing.assert_allclose(open_gridded(dem, {"elevation": "m"})["elevation"].values, [[5.0, 80.0], [120.0, 300.0]])
    tp = _grid(tmp_path / "tp.nc", "tp", np.full((3, 2, 2), 0.004), days, "m of water equivalent",
               lat="latitude", lon="longitude")
    np.testing.assert_allclose(open_era5land(tp)["precipitation"].values, 4.0, rtol=1e-6)


def test_the_units_eccodes_gives_era5_parameters_parse():
    """The labels come from ecCodes' own parameter tables (what cfgrib puts into GRIB_units / units)."""
    eccodes = pytest.importorskip("eccodes", reason="eccodes is needed to read its parameter tables")
    want = {"lsm": "1", "tcc": "1", "cvh": "1", "sd": "m", "sf": "m", "e": "m", "tp": "m", "2t": "K",
            "swvl1": "m3 m-3", "ssr": "J m-2", "str": "J m-2", "orog": "m"}
    gid = eccodes.codes_grib_new_from_samples("GRIB1")
    try:
        for short, quantity in want.items():
            eccodes.codes_set(gid, "shortName", short)
            label = eccodes.codes_get(gid, "units")
            assert xu.same_quantity(label, quantity), (short, label)
    finally:
        eccodes.codes_release(gid)


# ------------------------------------------------------------------ item 5: the rules of "same units"
def test_same_quantity_and_same_unit_answer_different_questions():
    """same_quantity: labels that give the same numbers (files combined, units= against a label).
    same_unit: a label against a declared unit, which also says what the files hold (soil.units)."""
    assert xu.same_quantity("mm/24h", "mm d-1") and xu.same_quantity("mm/3h", "mm/(3 h)")
    assert xu.same_quantity("g/kg", "permille") and xu.same_quantity("g/kg", "cm3 dm-3")
    assert not xu.same_quantity("percent", "1") and not xu.same_quantity("mm", "mm d-1")
    assert xu.same_unit("g kg-1", "g/kg") and xu.same_unit("%", "percent") and xu.same_unit("1", "dimensionless")
    # the same factor in another unit: a volume fraction is not the declared mass fraction
    assert not xu.same_unit("permille", "g/kg") and not xu.same_unit("cm3 dm-3", "g/kg")
    assert not xu.same_unit("percent", "1")
    # labels pint cannot read: the same text, case aside (a GeoTIFF tag 'Percent')
    assert xu.same_unit("Percent", "percent") and xu.same_quantity("Percent", "percent")
    assert not xu.same_unit("MSL", "m") and xu.same_quantity(None, None) and not xu.same_quantity("m", None)


def test_a_soil_file_in_permille_declared_g_per_kg_is_still_refused(tmp_path):
    """The declared unit is checked as a unit: the refactor kept the sources check's strictness."""
    from xsomo.drivers.sources import _declared_units

    for name, label in (("permille.nc", "permille"), ("volume.nc", "cm3 dm-3"), ("spelled.nc", "g kg-1")):
        _grid(tmp_path / name, "sand_top", np.full((2, 2), 400.0), None, label)
    with pytest.raises(UnitError, match=r"'sand_top' is labelled 'permille' but the sources file says units: g/kg"):
        _declared_units(str(tmp_path / "permille.nc"), ("sand_top", "clay_top"), "g/kg")
    with pytest.raises(UnitError, match=r"'sand_top' is labelled 'cm3 dm-3' but the sources file says units: g/kg"):
        _declared_units(str(tmp_path / "volume.nc"), ("sand_top", "clay_top"), "g/kg")
    _declared_units(str(tmp_path / "spelled.nc"), ("sand_top", "clay_top"), "g/kg")
