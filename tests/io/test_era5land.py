"""open_era5land: de-accumulation vs a hand computation, missing hours, units, layer mapping, real files."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import DataFormatError, UnitError
from xsomo.io import open_era5land
from xsomo.io.era5land import deaccumulate

LAT = np.array([46.0, 45.9])  # ERA5 order: descending
LON = np.array([5.0, 5.1])


def hourly_file(path, *, start="2020-01-01 00:00", days=3, drop_hour=None, seed=0):
    """An ERA5-Land-like hourly file; returns (path, hourly increments of tp, ssr, str, t2m)."""
    rng = np.random.default_rng(seed)
    t = pd.date_range(start, periods=days * 24 + 1, freq="h")
    shape = (t.size, LAT.size, LON.size)
    inc = {
        "tp": rng.gamma(0.3, 2e-4, shape),
        "ssr": rng.uniform(0, 2e6, shape),
        "str": -rng.uniform(0, 3e5, shape),
    }
    acc = {}
    label = (t - pd.Timedelta("1h")).floor("D")  # the day each hour belongs to (hour ending at t)
    for k, v in inc.items():
        a = np.empty_like(v)
        for d in np.unique(label):  # hand computation: cumulative sum within each day
            sel = label == d
            a[sel] = np.cumsum(v[sel], axis=0)
        acc[k] = a
    acc["tp"][acc["tp"] < 1e-7] -= 1.5e-8  # packing noise: tiny negatives
    t2m = 280 + rng.normal(size=shape)
    sw = {f"swvl{k}": 0.1 * k + 0.01 * rng.random(shape) for k in (1, 2, 3)}
    ds = xr.Dataset(
        {
            "tp": (("time", "latitude", "longitude"), acc["tp"], {"units": "m"}),
            "ssr": (("time", "latitude", "longitude"), acc["ssr"], {"units": "J m**-2"}),
            "str": (("time", "latitude", "longitude"), acc["str"], {"units": "J m**-2"}),
            "t2m": (("time", "latitude", "longitude"), t2m, {"units": "K"}),
            "skt": (("time", "latitude", "longitude"), t2m + 1, {"units": "K"}),
            **{
                k: (("time", "latitude", "longitude"), v, {"units": "m**3 m**-3"})
                for k, v in sw.items()
            },
        },
        coords={"time": t, "latitude": LAT, "longitude": LON},
    )
    if drop_hour is not None:
        ds = ds.drop_sel(time=pd.Timestamp(drop_hour))
    ds.to_netcdf(path)
    return path, inc, label, ds


def test_deaccumulation_matches_hand_computation(tmp_path):
    path, inc, label, raw = hourly_file(tmp_path / "h.nc")
    out = open_era5land(path)
    # first 00 UTC value closes 2019-12-31 (incomplete, dropped); the last day ends at 00 UTC of day 4
    assert list(out.time.dt.strftime("%Y-%m-%d").values) == [
        "2020-01-01",
        "2020-01-02",
        "2020-01-03",
    ]
    for k, day in enumerate(out.time.values):
        sel = label == pd.Timestamp(day)
        tp = inc["tp"][sel].sum(0) * 1000.0
        rn = (inc["ssr"][sel].sum(0) + inc["str"][sel].sum(0)) / 86400.0
        got_tp = out["precipitation"].isel(time=k).sel(lat=LAT[::-1]).values
        np.testing.assert_allclose(got_tp, tp[::-1], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(out["net_radiation"].isel(time=k).values, rn[::-1], rtol=1e-5)
        # the daily total equals the 00 UTC value of the next day
        next00 = raw["tp"].sel(time=pd.Timestamp(day) + pd.Timedelta("1D")).values[::-1] * 1000
        np.testing.assert_allclose(got_tp, np.clip(next00, 0, None), rtol=1e-5, atol=1e-4)
        t_day = pd.DatetimeIndex(raw.time.values).floor("D") == pd.Timestamp(day)
        np.testing.assert_allclose(
            out["air_temperature"].isel(time=k).values,
            raw["t2m"].values[t_day].mean(0)[::-1],
            rtol=1e-6,
        )
    assert (out["precipitation"] >= 0).all()
    assert (
        out["precipitation"].attrs["units"] == "mm d-1"
        and out["net_radiation"].attrs["units"] == "W m-2"
    )
    assert (np.diff(out.lat.values) > 0).all()


def test_depth_weighted_layers(tmp_path):
    path, _, _, raw = hourly_file(tmp_path / "h.nc")
    out = open_era5land(path)
    day = pd.DatetimeIndex(raw.time.values).floor("D") == pd.Timestamp("2020-01-02")
    s = {k: raw[k].values[day].mean(0)[::-1] for k in ("swvl1", "swvl2", "swvl3")}
    # by hand: layer 1 = (7 cm of swvl1 + 3 cm of swvl2) / 10; layer 2 = (18 swvl2 + 2 swvl3) / 20; layer 3 = swvl3
    expected = [
        (7 * s["swvl1"] + 3 * s["swvl2"]) / 10,
        (18 * s["swvl2"] + 2 * s["swvl3"]) / 20,
        s["swvl3"],
    ]
    for lay in (1, 2, 3):
        np.testing.assert_allclose(
            out["sm"].sel(layer=lay, time="2020-01-02").values, expected[lay - 1], rtol=1e-6
        )
    assert out["sm"].dims == ("layer", "time", "lat", "lon")
    assert out["depth_bottom"].values.tolist() == [0.1, 0.3, 0.5]


def test_missing_hour_raises(tmp_path):
    path, *_ = hourly_file(tmp_path / "h.nc", drop_hour="2020-01-02 07:00")
    with pytest.raises(DataFormatError, match=r"missing hour.*2020-01-02 07:00"):
        open_era5land(path)


def test_missing_units_raise_naming_variable(tmp_path):
    path, *_ = hourly_file(tmp_path / "h.nc")
    ds = xr.open_dataset(path).load()
    del ds["ssr"].attrs["units"]
    ds.to_netcdf(tmp_path / "nounits.nc")
    with pytest.raises(UnitError, match="'ssr'"):
        open_era5land(tmp_path / "nounits.nc")
    ds["ssr"].attrs["units"] = "furlongs"
    ds.to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(UnitError, match="ssr"):
        open_era5land(tmp_path / "bad.nc")


def test_daily_files_multiple_years(tmp_path):
    t1 = pd.date_range("2019-12-30", periods=2, freq="D")
    t2 = pd.date_range("2020-01-01", periods=3, freq="D")
    for t, name in ((t1, "era5land_2019.nc"), (t2, "era5land_2020.nc")):
        shape = (t.size, LAT.size, LON.size)
        xr.Dataset(
            {
                "tp": (("time", "latitude", "longitude"), np.full(shape, 0.002), {"units": "m"}),
                "t2m": (("time", "latitude", "longitude"), np.full(shape, 10.0), {"units": "degC"}),
                "swvl1": (
                    ("time", "latitude", "longitude"),
                    np.full(shape, 0.3),
                    {"units": "m3 m-3"},
                ),
            },
            coords={"time": t, "latitude": LAT, "longitude": LON},
        ).to_netcdf(tmp_path / name)
    out = open_era5land(tmp_path)
    assert out.sizes["time"] == 5
    np.testing.assert_allclose(out["precipitation"].values, 2.0)
    np.testing.assert_allclose(out["air_temperature"].values, 283.15, rtol=1e-6)
    assert out["sm"].layer.values.tolist() == [1]


@pytest.mark.real
def test_crspy_accumulation_trap(real_data):
    f = real_data / "crspy/example/example_era5land.nc"
    with pytest.raises(UnitError, match="'precipitation'"):
        open_era5land(f, units={"temperature": "K"})
    sw = {f"soil_moisture_{k}": "m3 m-3" for k in range(1, 5)}
    out = open_era5land(f, units={"precipitation": "m", "temperature": "K", **sw})
    raw = xr.open_dataset(f)
    years = (pd.Timestamp(raw.time.values[-1]) - pd.Timestamp(raw.time.values[0])).days / 365.25
    per_year = float(out["precipitation"].sum()) / 1000 / years
    naive = float(raw["precipitation"].sum()) / years
    assert 0.30 < per_year < 0.38, per_year  # about 0.34 m/yr
    assert naive > 8 * per_year  # a plain sum of the raw hours: about 3.37 m/yr
    # independent check: the 00 UTC values are the previous days' totals
    zero = raw["precipitation"].where(raw.time.dt.hour == 0, drop=True).isel(time=slice(1, None))
    np.testing.assert_allclose(
        out["precipitation"].values,
        np.clip(zero.values[: out.sizes["time"]], 0, None) * 1000,
        rtol=1e-4,
        atol=1e-4,
    )
    assert out["sm"].sizes["layer"] == 3


@pytest.mark.real
def test_qa4sm_cell_files(real_data):
    out = open_era5land(real_data / "qa4sm-testdata/input_data/ERA5_LAND/ERA5_LAND_V20190904")
    assert out["sm"].layer.values.tolist() == [1]
    raw = xr.open_dataset(
        real_data / "qa4sm-testdata/input_data/ERA5_LAND/ERA5_LAND_V20190904/0165.nc"
    )
    # one snapshot a day (06 UTC in these files), labelled with its day: every raw day, no more
    hours = np.unique(raw.time.dt.hour.values).tolist()
    assert out.sizes["time"] == raw.sizes["time"] == 730
    np.testing.assert_array_equal(out.time.values, raw.time.dt.floor("D").values)
    assert str(hours) in out.attrs["time_sampling"], (hours, out.attrs["time_sampling"])
    k = int(
        np.flatnonzero(raw.location_id.values == 2540041)[0]
    )  # Kainaliu's grid point (PROVENANCE.md)
    got = out["sm"].sel(layer=1, lat=float(raw.lat[k]), lon=float(raw.lon[k]), method="nearest")
    np.testing.assert_allclose(got.values, raw["swvl1"].values[k], rtol=1e-6)
    assert round(float(got.mean()), 3) == 0.417
    assert cv.SM_ATTRS["units"] == out["sm"].attrs["units"]


def test_era5_cell_files_keep_their_own_025_degree_grid(real_data):
    """ERA5's pynetcf cell files lie on a 0.25 degree grid: every point keeps its coordinates and
    values (a fixed 0.1 degree grid had moved half of them by 0.05 degrees), even with the file
    open in the session (reading it a second time had crashed netCDF4 / HDF5)."""
    f = _real(real_data, "qa4sm-testdata/input_data/ERA5/ERA5_20190613/0165.nc")
    raw = xr.open_dataset(f)
    raw.lat.values  # noqa: B018 - the user's handle, open while xsomo reads the file
    out = open_era5land(f)
    assert np.diff(out.lat.values).tolist() == [0.25] * (out.sizes["lat"] - 1)
    for k in range(raw.sizes["locations"]):
        got = out["sm"].sel(layer=1, lat=float(raw.lat[k]), lon=float(raw.lon[k]))  # exact coordinates
        np.testing.assert_array_equal(got.values, raw["swvl1"].values[k])
    assert int(out["sm"].isel(time=0).notnull().sum()) == raw.sizes["locations"]
    raw.close()


def test_cell_points_off_any_regular_grid_are_refused():
    from xsomo.io.era5land import _cells_to_grid

    def cells(lat, lon):
        n = len(lat)
        return xr.Dataset(
            {"swvl1": (("locations", "time"), np.ones((n, 2)))},
            coords={"lat": ("locations", lat), "lon": ("locations", lon), "time": pd.date_range("2020", periods=2)},
        )

    grid = _cells_to_grid(cells([50.0, 50.1, 50.3], [10.0, 10.1, 10.3]))  # ERA5-Land points, some missing
    assert grid.lat.values.tolist() == [50.0, 50.1, 50.2, 50.3] and grid.lon.values.tolist() == [10.0, 10.1, 10.2, 10.3]
    assert int(grid["swvl1"].isel(time=0).notnull().sum()) == 3
    with pytest.raises(DataFormatError, match="not on a regular lat grid"):
        _cells_to_grid(cells([50.0, 50.1, 50.1234], [10.0, 10.1, 10.2]))


def test_deaccumulate_str_not_clipped():
    t = pd.date_range("2020-01-01 01:00", periods=5, freq="h")
    acc = xr.DataArray(-np.arange(1.0, 6.0), coords={"time": t}, dims="time")
    np.testing.assert_allclose(deaccumulate(acc, clip_negative=False).values, -1.0)


def test_sample_world_hourly_agrees_with_daily(tiny_world):
    """The world's hourly files, de-accumulated, give its daily totals and means."""
    daily = open_era5land(tiny_world / "era5land")
    hourly = open_era5land(tiny_world / "era5land_hourly")
    assert "land_fraction" in daily and daily["sm"].sizes["layer"] == 3
    d = daily.sel(time=hourly.time)
    for name, tol in (("precipitation", 0.01), ("net_radiation", 0.01), ("air_temperature", 0.01)):
        a, b = hourly[name].values, d[name].values
        ok = np.isfinite(a) & np.isfinite(b)
        assert ok.sum() > 100
        np.testing.assert_allclose(a[ok], b[ok], atol=tol)


# ----------------------------------------------------------------------------- issue 14 items 3 and 4
def _daily_file(path, t, *, swvl_units="m3 m-3", swvl_scale=1.0, t2m=285.0, t2m_units="K", tp=0.002):
    shape = (t.size, LAT.size, LON.size)
    rng = np.random.default_rng(3)
    sw = {k: 0.1 * k + 0.02 * rng.random(shape) for k in (1, 2, 3)}
    xr.Dataset(
        {
            "tp": (("time", "latitude", "longitude"), np.full(shape, tp), {"units": "m"}),
            "t2m": (("time", "latitude", "longitude"), np.full(shape, t2m), {"units": t2m_units}),
            **{
                f"swvl{k}": (("time", "latitude", "longitude"), v * swvl_scale, {"units": swvl_units})
                for k, v in sw.items()
            },
        },
        coords={"time": t, "latitude": LAT, "longitude": LON},
    ).to_netcdf(path)
    return sw


def test_item3_swvl_in_percent_converted_to_m3_m3(tmp_path):
    t = pd.date_range("2020-01-01", periods=4)
    sw = _daily_file(tmp_path / "pct.nc", t, swvl_units="%", swvl_scale=100.0)
    out = open_era5land(tmp_path / "pct.nc")
    # independent: layer 1 (0-10 cm) = 0.7 swvl1 + 0.3 swvl2, as fractions
    expected = 0.7 * sw[1] + 0.3 * sw[2]
    np.testing.assert_allclose(out["sm"].sel(layer=1).values, expected[:, ::-1], rtol=1e-5)
    assert float(out["sm"].max()) < 1.0
    _daily_file(tmp_path / "frac.nc", t)
    np.testing.assert_allclose(out["sm"].values, open_era5land(tmp_path / "frac.nc")["sm"].values, rtol=1e-5)


def test_item3_swvl_percent_labelled_as_fraction_refused(tmp_path):
    t = pd.date_range("2020-01-01", periods=4)
    _daily_file(tmp_path / "bad.nc", t, swvl_scale=100.0)  # percent values labelled m3 m-3
    with pytest.raises(UnitError, match="percent labelled m3 m-3"):
        open_era5land(tmp_path / "bad.nc")


def test_item3_era5land_degc_labelled_k_and_mm_labelled_m_refused(tmp_path):
    t = pd.date_range("2020-01-01", periods=4)
    _daily_file(tmp_path / "t.nc", t, t2m=8.6)
    with pytest.raises(UnitError, match=r"air_temperature.*t\.nc.*looks like degC labelled K"):
        open_era5land(tmp_path / "t.nc")
    _daily_file(tmp_path / "p.nc", t, tp=6.0)  # 6 mm a day written as 6 "m"
    with pytest.raises(UnitError, match="looks like mm labelled m"):
        open_era5land(tmp_path / "p.nc")


def test_item4_missing_day_in_daily_files_raises(tmp_path):
    t = pd.date_range("2020-01-01", periods=10).delete(4)
    _daily_file(tmp_path / "gap.nc", t)
    with pytest.raises(DataFormatError, match=r"1 missing day\(s\) from 2020-01-05 to 2020-01-05"):
        open_era5land(tmp_path / "gap.nc")
    # a missing file in a folder of yearly files: the whole gap is named
    (tmp_path / "y").mkdir()
    _daily_file(tmp_path / "y" / "a.nc", pd.date_range("2018-12-25", "2018-12-31"))
    _daily_file(tmp_path / "y" / "c.nc", pd.date_range("2020-01-01", "2020-01-05"))
    with pytest.raises(DataFormatError, match=r"365 missing day\(s\) from 2019-01-01 to 2019-12-31"):
        open_era5land(tmp_path / "y")
    # the complete record opens
    _daily_file(tmp_path / "ok.nc", pd.date_range("2020-01-01", periods=10))
    assert open_era5land(tmp_path / "ok.nc").sizes["time"] == 10


# ----------------------------------------------------------------------------- issue 15 item 2: real layouts
GRIB_UK = "xarray-data/era5-2mt-2019-03-uk.grib"
GRIB_SOIL = "cfgrib/tests/sample-data/soil-surface-level-mix.grib"
GRIB_TWO_GRIDS = "cfgrib/tests/sample-data/tp_on_different_grid_resolutions.grib"
XCLIM_DAILY = "xclim-testdata/data/ERA5/daily_surface_cancities_1990-1993.nc"


def _real(real_data, rel):
    f = real_data / rel
    if not f.exists():
        pytest.skip(f"{f} not found (real test file missing from XSOMO_REAL_DATA)")
    return f


def _grib_fields(path, **keys):
    """Independent reading: eccodes message by message (no cfgrib, no xsomo)."""
    import eccodes

    out = []
    with open(path, "rb") as fh:
        while (gid := eccodes.codes_grib_new_from_file(fh)) is not None:
            try:
                if all(eccodes.codes_get(gid, k) == v for k, v in keys.items()):
                    nx, ny = eccodes.codes_get(gid, "Ni"), eccodes.codes_get(gid, "Nj")
                    vals = eccodes.codes_get_values(gid).reshape(ny, nx)
                    out.append((eccodes.codes_get(gid, "validityDate"), eccodes.codes_get(gid, "validityTime"), vals))
            finally:
                eccodes.codes_release(gid)
    return out


@pytest.mark.real
def test_item2_era5_hourly_grib_real_daily_means(real_data):
    f = _real(real_data, GRIB_UK)
    out = open_era5land(f)
    fields = _grib_fields(f, shortName="2t")
    assert len(fields) == 744
    hourly = np.stack([v for _, _, v in fields])[:, ::-1]  # north-to-south rows -> ascending lat
    expected = hourly.reshape(31, 24, *hourly.shape[1:]).mean(axis=1)
    assert out.sizes["time"] == 31 and str(out.time.values[0])[:10] == "2019-03-01"
    np.testing.assert_allclose(out["air_temperature"].values, expected, rtol=1e-6)
    assert out["air_temperature"].attrs["units"] == "K"


@pytest.mark.real
def test_item2_era5_grib_soil_levels_real(real_data):
    f = _real(real_data, GRIB_SOIL)
    out = open_era5land(f)
    sw = {
        lev: _grib_fields(f, shortName=f"swvl{k}")[0][2][::-1]
        for k, lev in ((1, 0), (2, 7), (3, 28))
    }
    w = cv.depth_weights(0.0, 0.1)  # layer 1 from the ERA5-Land layers 0-7, 7-28 cm
    expected = w[0] * sw[0] + w[1] * sw[7]
    np.testing.assert_allclose(out["sm"].sel(layer=1).values[0], expected, rtol=1e-5, atol=1e-7)
    assert out["sm"].layer.values.tolist() == [1, 2, 3]
    assert out.sizes["time"] == 1


@pytest.mark.real
def test_item2_grib_on_two_grids_refused(real_data):
    f = _real(real_data, GRIB_TWO_GRIDS)
    with pytest.raises(DataFormatError, match="different grids"):
        open_era5land(f)


@pytest.mark.real
def test_item2_era5_daily_cf_netcdf_real(real_data):
    """xclim's ERA5 daily file: CF names, fluxes in kg m-2 s-1 and W m-2, points along `location`."""
    f = _real(real_data, XCLIM_DAILY)
    out = open_era5land(f)
    raw = xr.open_dataset(f)
    np.testing.assert_allclose(out["air_temperature"].values, raw["tas"].values, rtol=1e-6)
    np.testing.assert_allclose(out["precipitation"].values, raw["pr"].values * 86400.0, rtol=1e-5)
    rn = raw["rss"].values.astype(float) + raw["rls"].values.astype(float)
    np.testing.assert_allclose(out["net_radiation"].values, rn, rtol=1e-5, atol=1e-3)


def _cds_new(path, t, *, expver_dim=False):
    """The CDS's 2024+ netCDF layout: valid_time, a scalar `number`, `expver` per time."""
    shape = (t.size, LAT.size, LON.size)
    base = 280.0 + np.arange(t.size, dtype=float)[:, None, None] + np.zeros(shape)
    ds = xr.Dataset(
        {
            "t2m": (("valid_time", "latitude", "longitude"), base, {"units": "K"}),
            "tp": (("valid_time", "latitude", "longitude"), np.full(shape, 0.003), {"units": "m"}),
        },
        coords={
            "valid_time": t,
            "latitude": LAT,
            "longitude": LON,
            "number": 0,
            "expver": ("valid_time", np.array(["0001"] * t.size)),
        },
    )
    if expver_dim:  # the older ERA5/ERA5T split: the recent days in expver 5, NaN in expver 1
        a = ds.where(ds.valid_time < t[-2]).drop_vars("expver")
        b = ds.where(ds.valid_time >= t[-2]).drop_vars("expver")
        ds = xr.concat([a, b], dim=xr.DataArray([1, 5], dims="expver", name="expver"))
    ds.to_netcdf(path)
    return base


@pytest.mark.parametrize("expver_dim", [False, True])
def test_item2_cds_new_netcdf_layout(tmp_path, expver_dim):
    t = pd.date_range("2020-01-01", periods=5)
    base = _cds_new(tmp_path / "new.nc", t, expver_dim=expver_dim)
    out = open_era5land(tmp_path / "new.nc")
    assert "number" not in out.coords and "expver" not in out.coords and "expver" not in out.dims
    np.testing.assert_allclose(out["air_temperature"].values, base[:, ::-1], rtol=1e-6)
    np.testing.assert_allclose(out["precipitation"].values, 3.0, rtol=1e-6)
    assert pd.DatetimeIndex(out.time.values).equals(t)


@pytest.mark.real
@pytest.mark.parametrize(
    ("rel", "short", "name"),
    [
        ("cfgrib/tests/sample-data/era5-single-level-scalar-time.grib", "2t", "air_temperature"),
        ("cfgrib/tests/sample-data/regular_ll_sfc.grib", "skt", "skin_temperature"),
    ],
)
def test_item2_single_time_gribs_real(real_data, rel, short, name):
    f = _real(real_data, rel)
    out = open_era5land(f)
    ((date, _hhmm, vals),) = _grib_fields(f, shortName=short)
    assert out.sizes["time"] == 1
    assert str(out.time.values[0])[:10] == f"{str(date)[:4]}-{str(date)[4:6]}-{str(date)[6:]}"
    np.testing.assert_allclose(out[name].values[0], vals[::-1], rtol=1e-6)



def _step_block_coords(init: pd.DatetimeIndex, step: pd.TimedeltaIndex) -> dict:
    """Coordinates of cfgrib's (reference time, step) block of an accumulated field."""
    return {
        "time": init,
        "step": step,
        "latitude": LAT,
        "longitude": LON,
        "valid_time": (("time", "step"), init.values[:, None] + step.values[None, :]),
    }

def test_item2_grib_forecast_steps_become_valid_times():
    """cfgrib opens accumulated fields as (time, step): they become one valid-time axis."""
    from xsomo.io.era5land import grib_valid_time

    init = pd.DatetimeIndex(["2020-01-01 06:00", "2020-01-01 18:00"])
    step = pd.to_timedelta(np.arange(1, 13), "h")
    vals = np.arange(2 * 12 * 2 * 2, dtype=float).reshape(2, 12, 2, 2)
    ds = xr.Dataset(
        {"tp": (("time", "step", "latitude", "longitude"), vals, {"units": "m"})},
        coords={**_step_block_coords(init, step), "number": 0, "surface": 0.0},
    )
    out = grib_valid_time(ds, pathlib.Path("x.grib"))
    expected_t = pd.date_range("2020-01-01 07:00", periods=24, freq="h")
    assert pd.DatetimeIndex(out.time.values).equals(expected_t)
    np.testing.assert_array_equal(out["tp"].values, vals.reshape(24, 2, 2))
    assert "number" not in out.coords and "step" not in out.coords


def test_hourly_amounts_that_are_not_accumulated_are_refused(tmp_path):
    """ERA5 single-level hourly tp holds each hour's amount; de-accumulated as if it were ERA5-Land's
    accumulation from 00 UTC it gave 1-10 % of the daily totals without a sign: refused, naming it."""
    t = pd.date_range("2020-06-01", "2020-06-04 00:00", freq="h")
    rng = np.random.default_rng(1)
    amounts = rng.gamma(0.5, 4e-4, (t.size, 3, 3)).astype("f4")  # m per hour
    coords = {"valid_time": t, "latitude": [41.0, 40.9, 40.8], "longitude": [0.0, 0.1, 0.2]}
    per_hour = xr.Dataset({"tp": (("valid_time", "latitude", "longitude"), amounts, {"units": "m"})}, coords=coords)
    per_hour.to_netcdf(tmp_path / "era5_tp.nc")
    with pytest.raises(DataFormatError, match=r"era5_tp.nc: hourly tp falls within the day.*not accumulated"):
        open_era5land(tmp_path / "era5_tp.nc")
    # the same as a rate under a CF name: summing its hours, as the advice for amounts said, gave
    # totals 24 times too large (hostile-input QA); it is to be averaged
    rate = xr.Dataset({"pr": (per_hour.tp.dims, amounts * 1000 / 3600, {"units": "kg m-2 s-1"})}, coords=coords)
    rate.rename(pr="tp").to_netcdf(tmp_path / "era5_rate.nc")
    with pytest.raises(DataFormatError, match=r"era5_rate.nc: hourly tp in 'kg m-2 s-1' is a rate.*resample\(time='1D'\).mean\(\).*do not sum"):
        open_era5land(tmp_path / "era5_rate.nc")
    # the same amounts accumulated from 00 UTC (01 UTC restarts), with GRIB-like noise: read, exact totals
    day = pd.DatetimeIndex(t - pd.Timedelta("1h")).floor("D")
    acc = pd.DataFrame(amounts.reshape(t.size, -1)).groupby(day).cumsum().to_numpy().reshape(amounts.shape)
    acc = acc + rng.normal(0, 1e-8, acc.shape).astype("f4")
    per_hour.assign(tp=(per_hour.tp.dims, acc, {"units": "m"})).to_netcdf(tmp_path / "era5land_tp.nc")
    got = open_era5land(tmp_path / "era5land_tp.nc")["precipitation"]
    want = pd.Series(amounts[:, 0, 0].astype(float) * 1000, index=day).groupby(level=0).sum()
    np.testing.assert_allclose(got.sel(lat=41.0, lon=0.0).values, want.loc[got.time.values].values, rtol=1e-4, atol=1e-4)
    # a short single-cell file with one shower of three hours (two falls): was read, 1.0
    # instead of 7.2 mm (QA; the refusal needed at least 3 falls)
    week = pd.date_range("2010-02-17", "2010-02-24 00:00", freq="h")
    shower = np.zeros((week.size, 1, 1), "f4")
    shower[(week >= "2010-02-20 18:00") & (week <= "2010-02-20 20:00"), 0, 0] = [1.9e-3, 4.3e-3, 1.0e-3]
    one = {"valid_time": week, "latitude": [41.0], "longitude": [0.0]}
    xr.Dataset({"tp": (("valid_time", "latitude", "longitude"), shower, {"units": "m"})}, coords=one).to_netcdf(
        tmp_path / "era5_shower.nc"
    )
    with pytest.raises(DataFormatError, match=r"era5_shower.nc: hourly tp falls within the day at 2 of"):
        open_era5land(tmp_path / "era5_shower.nc")
    # the same shower in a dry month over 20 x 20 cells (2 falls in 285 200 cell-hours, under
    # 0.1 %): de-accumulated, July's rain had become a fraction of its total (hostile-input QA)
    month = pd.date_range("2010-07-01", "2010-08-01 00:00", freq="h")
    dry = np.zeros((month.size, 20, 20), "f4")
    dry[(month >= "2010-07-20 18:00") & (month <= "2010-07-20 20:00"), 3, 4] = [1.9e-3, 4.3e-3, 1.0e-3]
    grid = {"valid_time": month, "latitude": 41.0 - 0.1 * np.arange(20), "longitude": 0.1 * np.arange(20)}
    xr.Dataset({"tp": (("valid_time", "latitude", "longitude"), dry, {"units": "m"})}, coords=grid).to_netcdf(
        tmp_path / "era5_dry.nc"
    )
    with pytest.raises(DataFormatError, match=r"era5_dry.nc: hourly tp falls within the day at 2 of 285200 "):
        open_era5land(tmp_path / "era5_dry.nc")


def test_a_variable_missing_on_a_day_inside_the_record_is_refused(tmp_path):
    """ERA5-Land in one file per group of variables (the CDS splits accumulated and
    instantaneous ones) with one instantaneous file missing a day: the files' hours are
    complete together, and that day had been dropped without a word (QA)."""
    _p, _inc, _label, raw = hourly_file(tmp_path / "h.nc", days=4)
    d = tmp_path / "split"
    d.mkdir()
    raw[["tp", "ssr", "str"]].to_netcdf(d / "accum.nc")
    inst = raw[["t2m", "skt", "swvl1", "swvl2", "swvl3"]]
    inst.sel(time=slice(None, "2020-01-01T23")).to_netcdf(d / "instant_a.nc")
    inst.sel(time=slice("2020-01-03", None)).to_netcdf(d / "instant_c.nc")
    with pytest.raises(DataFormatError, match=r"t2m has no value on 1 day\(s\) inside the record \(2020-01-02\)"):
        open_era5land(d)
    # the complete split download reads as the single file does
    inst.sel(time=slice("2020-01-02", "2020-01-02T23")).to_netcdf(d / "instant_b.nc")
    xr.testing.assert_allclose(open_era5land(d), open_era5land(tmp_path / "h.nc"))


def test_a_cell_missing_on_some_days_only_is_refused(tmp_path):
    """One missing cell-hour made that cell's day NaN, and the regridding then filled it from
    its neighbours (+51 % on a real-sized case, QA). A cell missing on every day (sea) is fine."""
    _p, _inc, _label, raw = hourly_file(tmp_path / "h.nc", days=3)
    sea = raw.copy(deep=True)
    for v in sea.data_vars:
        sea[v][:, 1, 1] = np.nan  # a sea cell: no value ever
    sea.to_netcdf(tmp_path / "sea.nc")
    out = open_era5land(tmp_path / "sea.nc")
    assert out.sizes["time"] == 3 and bool(out["precipitation"].sel(lat=45.9, lon=5.1).isnull().all())
    hole = sea.copy(deep=True)
    hole["tp"][30, 0, 0] = np.nan  # 2020-01-02 06 UTC at 46.0 N, 5.0 E
    hole.to_netcdf(tmp_path / "hole.nc")
    with pytest.raises(DataFormatError, match=r"tp is missing at 1 cell\(s\) on some days only \(first at .*46.*5 on 2020-01-02"):
        open_era5land(tmp_path / "hole.nc")


def test_the_00_utc_values_of_the_hourly_product_are_refused(tmp_path):
    """An hourly ERA5-Land request at 00 UTC only (a common way to get daily totals) looks
    daily; its tp closes the previous day and its t2m is a snapshot. It was read as the stamped
    day's totals and means: precipitation one day late, 5 K off (QA). The hourly product's
    accumulations say so (GRIB stepType 'accum'); a daily file without that is read as before."""
    _p, _inc, _label, raw = hourly_file(tmp_path / "h.nc", days=4)
    midnight = raw.sel(time=raw.time.dt.hour == 0)
    for v in ("tp", "ssr", "str"):
        midnight[v].attrs["GRIB_stepType"] = "accum"
    midnight["t2m"].attrs["GRIB_stepType"] = "instant"
    midnight.to_netcdf(tmp_path / "00utc.nc")
    with pytest.raises(DataFormatError, match=r"00utc.nc: one value a day \(at 00 UTC\) of the hourly ERA5-Land product.*previous day"):
        open_era5land(tmp_path / "00utc.nc")
    plain = midnight.copy()
    for v in plain.data_vars:
        plain[v].attrs.pop("GRIB_stepType", None)
    plain.to_netcdf(tmp_path / "daily.nc")
    out = open_era5land(tmp_path / "daily.nc")
    assert out.sizes["time"] == midnight.sizes["time"]
    assert "the day they are stamped with" in out.attrs["time_sampling"]


@pytest.mark.parametrize("stamp", ["2020-01-01T05", "2019-06-01T00"], ids=["inside", "outside"])
def test_a_land_sea_mask_downloaded_once_beside_the_hourly_files(tmp_path, stamp):
    """The docs say to add `land_sea_mask` once; its own file in the folder (one time stamp)
    made every day NaN (a raw IndexError) or, stamped outside the record, 1 415 'missing hours' (QA)."""
    d = tmp_path / "era5land"
    d.mkdir()
    hourly_file(d / "h.nc", days=3)
    mask = np.array([[1.0, 0.6], [0.0, 1.0]], "f4")[None]
    xr.Dataset(
        {"lsm": (("time", "latitude", "longitude"), mask, {"units": "(0 - 1)"})},
        coords={"time": [pd.Timestamp(stamp)], "latitude": LAT, "longitude": LON},
    ).to_netcdf(d / "lsm.nc")
    out = open_era5land(d)
    alone = open_era5land(d / "h.nc")
    xr.testing.assert_allclose(out.drop_vars("land_fraction"), alone)
    np.testing.assert_array_equal(out["land_fraction"].values, mask[0][::-1])  # lat ascending


def test_a_land_sea_mask_over_a_wider_box_than_the_data_is_refused(tmp_path):
    """A mask downloaded on its own over a wider box padded the variables with NaN to its box:
    the target grid seemed covered, and regridding filled or left NaN the land beyond the data
    without an error (hostile-input QA). A mask over the same box, or sea beyond it, passes."""
    d = tmp_path / "era5land"
    d.mkdir()
    hourly_file(d / "h.nc", days=3)
    wider = np.append(LON, LON[-1] + (LON[-1] - LON[0]))
    for name, value in (("sea", 0.0), ("land", 1.0)):
        mask = np.array([[1.0, 0.6, value], [0.0, 1.0, value]], "f4")[None]
        xr.Dataset(
            {"lsm": (("time", "latitude", "longitude"), mask, {"units": "(0 - 1)"})},
            coords={"time": [pd.Timestamp("2020-01-01T05")], "latitude": LAT, "longitude": wider},
        ).to_netcdf(d / "lsm.nc")
        if name == "sea":
            assert open_era5land(d)["land_fraction"].sizes["lon"] == 3
        else:
            with pytest.raises(DataFormatError, match=rf"2 land cell\(s\) of the land-sea mask.*lon {wider[-1]:g}\.\.{wider[-1]:g}\) "
                               r"have no ERA5-Land value.*wider box"):
                open_era5land(d)


def test_overlapping_hourly_files_are_named(tmp_path):
    """Two hourly files sharing days failed with xarray's 'does not have monotonic global
    indexes'; the error names the files and the days they share (QA)."""
    d = tmp_path / "era5land"
    d.mkdir()
    hourly_file(d / "a.nc", start="2020-01-01 00:00", days=3)
    hourly_file(d / "b.nc", start="2020-01-03 00:00", days=3)
    with pytest.raises(DataFormatError, match=r"a.nc \(2020-01-01 00:00:00 .. 2020-01-04 00:00:00\) and b.nc .* overlap in time from 2020-01-03"):
        open_era5land(d)


# ----------------------------------------------------------------------------- GRIB in several requests
GRIB_LAT = np.array([41.0, 40.9, 40.8])  # north to south, as the CDS writes them
GRIB_LON = np.array([0.0, 0.1, 0.2])


def _cds_grib_messages(days, seed=3):
    """ERA5-Land hourly GRIB1 as the CDS delivers it for ``days`` (00-23 UTC) plus 00 UTC of the
    day after: instantaneous 2t/skt at step 0; tp/ssr/str accumulated from 00 UTC, as dataDate D
    00 UTC with steps 1..24 (00 UTC of D+1 is step 24 of D, so the first hour is step 24 of the day
    before). Returns [(valid time, (short name, dataDate, step, accum, values))] and the hourly
    increments {short name: (time, lat, lon)} on the valid times ending each hour."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(days[0], days[-1] + pd.Timedelta("1D"), freq="h")
    shape = (hours.size, GRIB_LAT.size, GRIB_LON.size)
    inc = {
        "tp": rng.gamma(0.4, 3e-4, shape),
        "ssr": rng.uniform(0, 2.5e6, shape),
        "str": -rng.uniform(0, 3e5, shape),
    }
    ref = (hours - pd.Timedelta("1h")).floor("D")
    acc = {k: np.empty_like(v) for k, v in inc.items()}
    for d in np.unique(ref):
        sel = np.asarray(ref == d)
        for k, v in inc.items():
            acc[k][sel] = np.cumsum(v[sel], axis=0)
    msgs = []
    for i, t in enumerate(hours):
        if t < hours[-1]:
            t2m = 280.0 + 3 * np.sin(2 * np.pi * t.hour / 24) + rng.normal(size=shape[1:])
            msgs.append((t, ("2t", t.strftime("%Y%m%d"), t.hour * 100, 0, False, t2m)))
        step = int((t - ref[i]) / pd.Timedelta("1h"))
        msgs.extend((t, (k, ref[i].strftime("%Y%m%d"), 0, step, True, acc[k][i])) for k in ("tp", "ssr", "str"))
    return msgs, inc, hours


def _write_grib(path, msgs):
    eccodes = pytest.importorskip("eccodes")
    sample = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib1")
    try:
        with open(path, "wb") as fh:
            for _t, (short, date, hhmm, step, accum, values) in msgs:
                h = eccodes.codes_clone(sample)
                for key, val in (
                    ("centre", "ecmf"), ("table2Version", 128), ("Ni", GRIB_LON.size), ("Nj", GRIB_LAT.size),
                    ("latitudeOfFirstGridPointInDegrees", float(GRIB_LAT[0])),
                    ("latitudeOfLastGridPointInDegrees", float(GRIB_LAT[-1])),
                    ("longitudeOfFirstGridPointInDegrees", float(GRIB_LON[0])),
                    ("longitudeOfLastGridPointInDegrees", float(GRIB_LON[-1])),
                    ("iDirectionIncrementInDegrees", 0.1), ("jDirectionIncrementInDegrees", 0.1),
                    ("shortName", short), ("dataDate", int(date)), ("dataTime", int(hhmm)),
                ):
                    eccodes.codes_set(h, key, val)
                if accum:
                    eccodes.codes_set(h, "stepType", "accum")
                    eccodes.codes_set(h, "startStep", 0)
                    eccodes.codes_set(h, "endStep", int(step))
                else:
                    eccodes.codes_set(h, "stepType", "instant")
                    eccodes.codes_set(h, "step", 0)
                eccodes.codes_set(h, "bitsPerValue", 24)
                eccodes.codes_set_values(h, np.asarray(values, float).ravel())
                eccodes.codes_write(h, fh)
                eccodes.codes_release(h)
    finally:
        eccodes.codes_release(sample)
    return path


def test_grib_placeholder_hours_of_the_step_block_are_dropped():
    """cfgrib fills the (reference time x step) pairs without a message with NaN: the 00 UTC
    value of a request is step 24 of the day before, which brought that day's 01-23 UTC as
    all-NaN hours. They are dropped; hours with data in any variable are kept."""
    from xsomo.io.era5land import grib_valid_time

    init = pd.DatetimeIndex(["2019-12-31", "2020-01-01"])
    step = pd.to_timedelta(np.arange(1, 25), "h")
    vals = np.arange(2 * 24 * 2 * 2, dtype=float).reshape(2, 24, 2, 2)
    vals[0, :23] = np.nan  # 2019-12-31 01..23 UTC: no message
    other = vals.copy()
    other[1, 5] = np.nan  # a hour missing in one variable only is kept (the other has it)
    ds = xr.Dataset(
        {
            "tp": (("time", "step", "latitude", "longitude"), vals, {"units": "m"}),
            "ssr": (("time", "step", "latitude", "longitude"), other, {"units": "J m**-2"}),
        },
        coords=_step_block_coords(init, step),
    )
    out = grib_valid_time(ds, pathlib.Path("x.grib"))
    assert pd.DatetimeIndex(out.time.values).equals(pd.date_range("2020-01-01 00:00", periods=25, freq="h"))
    np.testing.assert_array_equal(out["tp"].values, vals.reshape(48, 2, 2)[23:])
    assert int(out["ssr"].isnull().all(["latitude", "longitude"]).sum()) == 1


def test_grib_in_one_request_per_period_reads_as_one_file(tmp_path):
    """ERA5-Land GRIB downloaded in consecutive requests (docs/own_data.md: one per period) was
    refused as 'time stamps not increasing ... 24 gap(s)': each file's first reference day brought
    23 all-NaN placeholder hours, which the previous file holds with data (QA). The files now read
    as the single file of the same hours, with the same de-accumulated totals to the last bit."""
    days = pd.date_range("2020-01-01", periods=6)
    msgs, inc, hours = _cds_grib_messages(days)
    one = _write_grib(tmp_path / "all.grib", msgs)
    d = tmp_path / "requests"
    d.mkdir()
    split = days[3]  # requests of days 1-3 and 4-6 (+ 00 UTC of day 7)
    _write_grib(d / "era5land_a.grib", [m for m in msgs if m[0] < split])
    _write_grib(d / "era5land_b.grib", [m for m in msgs if m[0] >= split])
    whole, parts = open_era5land(one), open_era5land(d)
    assert pd.DatetimeIndex(parts.time.values).equals(days)
    for name in ("precipitation", "net_radiation", "air_temperature"):
        np.testing.assert_array_equal(parts[name].values, whole[name].values)
    # and they are the hand totals of the hours ending 01 UTC .. 00 UTC next day (24-bit packing)
    day = (hours - pd.Timedelta("1h")).floor("D")
    tp = pd.DataFrame(inc["tp"].reshape(hours.size, -1)).groupby(day).sum().loc[days].to_numpy()
    np.testing.assert_allclose(parts["precipitation"].values, 1000 * tp.reshape(-1, 3, 3)[:, ::-1], rtol=1e-4, atol=1e-5)
    rn = pd.DataFrame((inc["ssr"] + inc["str"]).reshape(hours.size, -1)).groupby(day).sum().loc[days].to_numpy()
    np.testing.assert_allclose(parts["net_radiation"].values, rn.reshape(-1, 3, 3)[:, ::-1] / 86400, rtol=1e-4, atol=0.05)


def test_grib_requests_holding_the_same_hour_are_refused(tmp_path):
    """Two GRIB files with data for the same hour (overlapping requests) are still refused,
    naming the hour and the files; a land-sea mask downloaded once in its own file is not such
    an hour: it is read as the time-invariant land fraction."""
    days = pd.date_range("2020-01-01", periods=4)
    msgs, _inc, _hours = _cds_grib_messages(days)
    d = tmp_path / "overlap"
    d.mkdir()
    _write_grib(d / "era5land_a.grib", [m for m in msgs if m[0] < days[2] + pd.Timedelta("6h")])
    _write_grib(d / "era5land_b.grib", [m for m in msgs if m[0] >= days[2]])
    with pytest.raises(
        DataFormatError,
        match=r"the hour 2020-01-03 00:00:00 comes from more than one GRIB file \(era5land_a.grib, era5land_b.grib; 6 such",
    ):
        open_era5land(d)
    m = tmp_path / "mask"
    m.mkdir()
    _write_grib(m / "era5land.grib", msgs)
    _write_grib(m / "lsm.grib", [(days[0], ("lsm", days[0].strftime("%Y%m%d"), 0, 0, False, np.ones((3, 3))))])
    out = open_era5land(m)
    assert out.sizes["time"] == 4 and float(out["land_fraction"].min()) == 1.0


def test_a_grib_box_without_values_says_so():
    """A box wholly over the sea (or an empty download) had left no valid time and a message about "one
    value a day (at  UTC)" with the hour blank (QA)."""
    from xsomo.io.era5land import grib_valid_time

    init = pd.DatetimeIndex(["2020-01-01 00:00", "2020-01-02 00:00"])
    step = pd.to_timedelta(np.arange(1, 25), "h")
    ds = xr.Dataset(
        {"tp": (("time", "step", "latitude", "longitude"), np.full((2, 24, 2, 2), np.nan), {"units": "m"})},
        coords=_step_block_coords(init, step),
    )
    with pytest.raises(DataFormatError, match=r"sea.grib: holds no values .*over the sea"):
        grib_valid_time(ds, pathlib.Path("sea.grib"))


def test_a_file_open_elsewhere_in_the_session_does_not_crash_the_reader(tmp_path):
    """open_era5land opened the first file with xarray to look, closed it and opened it again:
    with another handle of the file open (a notebook's, or an earlier lazy call's, as prepare makes
    for the land mask), netCDF4/HDF5 crashed the process (SIGSEGV) on a file with a scalar string
    coordinate, as the real crspy extract has. Run in a subprocess: a crash is its exit code."""
    import subprocess
    import sys

    path, *_ = hourly_file(tmp_path / "e.nc")
    with xr.open_dataset(path) as ds:
        ds.assign_coords(site="USA_SITE_011").load().to_netcdf(tmp_path / "site.nc")
    code = (
        "import xarray as xr, xsomo\n"
        f"raw = xr.open_dataset({str(tmp_path / 'site.nc')!r})\n"
        f"a = xsomo.open_era5land({str(tmp_path / 'site.nc')!r}, chunks={{}})\n"
        f"b = xsomo.open_era5land({str(tmp_path / 'site.nc')!r}, chunks={{}})\n"
        "print(float(a['air_temperature'].mean()) == float(b['air_temperature'].mean()), float(raw['t2m'].mean()) > 0)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert run.stdout.split() == ["True", "True"]


def test_a_daily_series_of_grib_snapshots_is_refused(tmp_path):
    """t2m requested at 00 UTC only (a common shortcut) was read as daily means: up to 6.8 K off,
    -0.5 K on average, on the real UK March 2019 file. One snapshot per day of an instantaneous GRIB
    field is refused; the CDS's daily statistics come as netCDF."""
    days = pd.date_range("2020-01-01", periods=4)
    vals = np.full((GRIB_LAT.size, GRIB_LON.size), 280.0)
    msgs = [(t, ("2t", t.strftime("%Y%m%d"), 0, 0, False, vals + k)) for k, t in enumerate(days)]
    f = _write_grib(tmp_path / "t2m_00utc.grib", msgs)
    with pytest.raises(DataFormatError, match=r"one value a day \(at 00 UTC\) of the hourly ERA5-Land product \(t2m: GRIB stepType .instant."):
        open_era5land(f)
    one = _write_grib(tmp_path / "one.grib", msgs[:1])  # a single field: read, and said to be a snapshot
    assert "snapshot" in open_era5land(one).attrs["time_sampling"]


def test_files_on_grids_of_other_steps_are_named(tmp_path, monkeypatch):
    """0.25° and 0.5° files: "Resulting object does not have monotonic global indexes along
    dimension lon" (netCDF); GRIB files of two grids were joined into one irregular grid."""
    for name, step in (("a.nc", 0.25), ("b.nc", 0.5)):
        lat, lon = np.arange(46.0, 44.9, -step), np.arange(5.0, 6.01, step)
        t = pd.date_range("2020-01-01" if name == "a.nc" else "2020-01-03", periods=2)
        xr.Dataset({"t2m": (("time", "latitude", "longitude"), np.full((2, lat.size, lon.size), 280.0), {"units": "K"})},
                   coords={"time": t, "latitude": lat, "longitude": lon}).to_netcdf(tmp_path / name)  # fmt: skip
    with pytest.raises(DataFormatError, match=r"grids of different steps \(a.nc: 0.25 x 0.25°, b.nc: 0.5 x 0.5°\)"):
        open_era5land(tmp_path)
    vals = np.full((GRIB_LAT.size, GRIB_LON.size), 280.0)
    (tmp_path / "g").mkdir()
    _write_grib(tmp_path / "g" / "a.grib", [(None, ("2t", "20200101", 0, 0, False, vals))])
    monkeypatch.setitem(globals(), "GRIB_LAT", np.array([41.0, 40.8]))  # a coarser grid for _write_grib
    monkeypatch.setitem(globals(), "GRIB_LON", np.array([0.0, 0.2]))
    _write_grib(tmp_path / "g" / "b.grib", [(None, ("2t", "20200102", 0, 0, False, vals[:2, :2]))])
    monkeypatch.undo()
    with pytest.raises(DataFormatError, match=r"a.grib and b.grib lie on different grids"):
        open_era5land(tmp_path / "g")
