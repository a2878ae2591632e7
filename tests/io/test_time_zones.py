"""Daily values in files whose time units carry a UTC offset ("days since 2000-01-01 00:00:00 +03:00").

xarray decodes such stamps to UTC (local midnight of +03:00 is 21:00 UTC of the day before) and the
offset is gone after decoding; floored to UTC days, every value had moved to the day before.
"""

from __future__ import annotations

import re

import netCDF4
import numpy as np
import pandas as pd
import pytest

from xsomo.exceptions import DataFormatError
from xsomo.io import open_era5land, open_mswep

DAYS = pd.date_range("2000-01-01", periods=4)


def _daily(path, units, *, values=None, step=1.0, name="precipitation", label="mm d-1", bounds=False, lat="lat"):
    """Daily values 0, 1, 2, ... stamped at local midnight of the zone in ``units`` (raw netCDF4: the
    time units are written as given)."""
    n = DAYS.size if values is None else len(values)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", n)
        nc.createDimension(lat, 2)
        nc.createDimension("lon", 2)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar = units, "standard"
        t[:] = np.arange(n) * step
        if bounds:
            nc.createDimension("nv", 2)
            t.bounds = "time_bnds"
            nc.createVariable("time_bnds", "f8", ("time", "nv"))[:] = np.stack([t[:], t[:] + step], axis=1)
        nc.createVariable(lat, "f8", (lat,))[:] = [45.05, 45.15]
        nc.createVariable("lon", "f8", ("lon",))[:] = [5.05, 5.15]
        v = nc.createVariable(name, "f4", ("time", lat, "lon"))
        v.units = label
        v[:] = (np.arange(n) if values is None else np.asarray(values))[:, None, None] * np.ones((1, 2, 2))
    return path


@pytest.mark.parametrize(
    "units",
    [
        "days since 2000-01-01 00:00:00 +03:00",
        "days since 2000-01-01T00:00:00+0300",
        "days since 2000-01-01 00:00 +05:45",
        "days since 2000-01-01 00:00:00 -05:00",
        "days since 2000-01-01 00:00:00 +11:00",
        "days since 2000-01-01 00:00:00 UTC",
    ],
)
def test_daily_values_in_local_time_stay_on_their_local_date(tmp_path, units):
    out = open_mswep(_daily(tmp_path / "p.nc", units))
    assert pd.DatetimeIndex(out.time.values).equals(DAYS)
    np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], [0, 1, 2, 3])


def test_hours_since_a_local_midnight(tmp_path):
    out = open_mswep(_daily(tmp_path / "p.nc", "hours since 2000-01-01 00:00:00 +03:00", step=24.0))
    assert pd.DatetimeIndex(out.time.values).equals(DAYS)
    np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], [0, 1, 2, 3])


def test_local_days_with_bounds_go_to_their_local_date_too(tmp_path):
    out = open_mswep(_daily(tmp_path / "p.nc", "days since 2000-01-01 00:00:00 +03:00", bounds=True))
    assert pd.DatetimeIndex(out.time.values).equals(DAYS)
    np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], [0, 1, 2, 3])


@pytest.mark.parametrize("zone", ["+13:00", "-12:00", "+12:00"])
def test_a_zone_12_hours_or_more_from_utc_is_refused_for_daily_values(tmp_path, zone):
    """A local day of UTC+13 lies mostly in the UTC day before its date: no day can be given."""
    f = _daily(tmp_path / "p.nc", f"days since 2000-01-01 00:00:00 {zone}")
    with pytest.raises(DataFormatError, match=rf"p\.nc: daily values stamped in the time zone UTC\{zone}.*cannot be decided"):
        open_mswep(f)


@pytest.mark.parametrize("zone", ["UTC+3", "GMT-5", "CET"])
def test_a_zone_that_cannot_be_read_without_doubt_is_refused(tmp_path, zone):
    """pandas reads 'UTC+3' as a POSIX zone (3 h west): the stamps were 6 h from what the writer meant."""
    f = _daily(tmp_path / "p.nc", f"days since 2000-01-01 00:00:00 {zone}")
    with pytest.raises(DataFormatError, match=rf"p\.nc.*time zone '{re.escape(zone)}'.*\+03:00"):
        open_mswep(f)


def test_sub_daily_values_in_local_time_are_averaged_over_utc_days(tmp_path):
    """Hourly stamps decoded to UTC are right as they are: 21:00-20:00 local is one UTC day."""
    values = np.repeat([1.0, 2.0, 3.0], 24)
    f = _daily(tmp_path / "h.nc", "hours since 2000-01-01 03:00:00 +03:00", values=values, step=1.0, label="mm h-1")
    out = open_mswep(f)
    assert pd.DatetimeIndex(out.time.values).equals(DAYS[:3])
    np.testing.assert_allclose(out["precipitation"].values[:, 0, 0], [24.0, 48.0, 72.0])


def test_files_in_two_time_zones_are_refused(tmp_path):
    (tmp_path / "two").mkdir()
    _daily(tmp_path / "two" / "a.nc", "days since 2000-01-01 00:00:00 +03:00")
    _daily(tmp_path / "two" / "b.nc", "days since 2000-01-05 00:00:00 +00:00")
    with pytest.raises(DataFormatError, match=r"a\.nc \('days since .*\+03:00'\) and .*b\.nc .*different time zones"):
        open_mswep(tmp_path / "two")


def test_era5land_daily_values_in_local_time_stay_on_their_local_date(tmp_path):
    f = _daily(tmp_path / "e.nc", "days since 2000-01-01 00:00:00 +03:00", name="t2m", label="K",
               values=[280.0, 281.0, 282.0, 283.0], lat="latitude")
    out = open_era5land(f)
    assert pd.DatetimeIndex(out.time.values).equals(DAYS)
    np.testing.assert_allclose(out["air_temperature"].values[:, 0, 0], [280, 281, 282, 283])
    assert out.attrs["time_sampling"].startswith("daily values, read as the means/totals of the day")
