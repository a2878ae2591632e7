"""The synthetic sample world: layout, determinism, physics, real formats."""

from __future__ import annotations

import filecmp
import json
import pathlib
import shutil
import sys

import cf_xarray  # noqa: F401  (registers .cf)
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xsomo
from xsomo.conventions import EUROPE, LAYERS, assign_layer
from xsomo.exceptions import ConfigError
from xsomo.sample import physics as ph
from xsomo.sample import stations as stn
from xsomo.sample.climate import World
from xsomo.sample.config import make_config

CONTRACT_FILES = [
    "world.json",
    "truth.nc",
    "static/dem.nc",
    "static/landcover.nc",
    "static/soil.nc",
    "static/land_mask.nc",
    "cosmos/stations.csv",
]


def _files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def manifest(tiny_world: pathlib.Path) -> dict:
    return json.loads((tiny_world / "world.json").read_text())


@pytest.fixture(scope="module")
def truth(tiny_world: pathlib.Path) -> xr.Dataset:
    with xr.open_dataset(tiny_world / "truth.nc") as ds:
        return ds.load()


@pytest.fixture(scope="module")
def other_seed_world(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The tiny world with another seed, written through the CLI (a shorter period keeps it quick)."""
    out = tmp_path_factory.mktemp("tiny_seed8")
    from xsomo import cli

    rc = cli.main(
        [
            "sample",
            "--preset",
            "tiny",
            "--seed",
            "8",
            "--out",
            str(out),
            "--no-progress",
            "--start",
            "2015-01-01",
            "--end",
            "2015-12-31",
            "--hourly-start",
            "2015-07-01",
            "--hourly-end",
            "2015-07-10",
        ]
    )
    assert rc == 0
    return out


# ----------------------------------------------------------------------------- layout


def test_contract_layout(tiny_world: pathlib.Path, manifest: dict) -> None:
    for rel in CONTRACT_FILES:
        assert (tiny_world / rel).is_file(), rel
    years = range(int(manifest["period"]["start"][:4]), int(manifest["period"]["end"][:4]) + 1)
    for y in years:
        assert (tiny_world / "era5land" / f"era5land_{y}.nc").is_file()
        assert (tiny_world / "mswep" / f"{y}.nc").is_file()
        assert (tiny_world / "mswx" / "Temp" / f"{y}.nc").is_file()
    assert list((tiny_world / "era5land_hourly").glob("era5land_hourly_????_??.nc"))
    for name, info in manifest["products"].items():
        files = sorted((tiny_world / info["path"]).glob(f"{name}_????.nc"))
        assert files, name
    assert set(manifest["products"]) == {"somoml_v1_like", "gleam_like", "clmda_like"}
    for key in (
        "format_version",
        "xsomo_version",
        "preset",
        "seed",
        "grid",
        "period",
        "hourly_period",
        "regions",
        "ismn_stations",
        "cosmos_stations",
        "products",
    ):
        assert key in manifest
    assert manifest["regions"] == {"1": "us", "2": "europe"}
    assert manifest["seed"] == 7 and manifest["preset"] == "tiny"


def test_manifest_matches_files(
    tiny_world: pathlib.Path, manifest: dict, truth: xr.Dataset
) -> None:
    g = manifest["grid"]
    assert truth.lat.size == round((g["north"] - g["south"]) / g["resolution"])
    for st in manifest["ismn_stations"]:
        # rows/cols index the ascending lat/lon of truth.nc and hold the station
        assert abs(float(truth.lat[st["row"]]) - st["lat"]) <= g["resolution"] / 2 + 1e-9
        assert abs(float(truth.lon[st["col"]]) - st["lon"]) <= g["resolution"] / 2 + 1e-9
        assert int(truth.land_mask[st["row"], st["col"]]) == 1
        assert int(truth.region[st["row"], st["col"]]) == st["region"]
        for s in st["sensors"]:
            assert (tiny_world / "ismn" / st["network"] / st["station"] / s["file"]).is_file()
    ismn_cells = {(s["row"], s["col"]) for s in manifest["ismn_stations"]}
    for c in manifest["cosmos_stations"]:
        assert (c["row"], c["col"]) not in ismn_cells
        assert 0.15 <= c["footprint_depth_m"] <= 0.22
        assert (tiny_world / "cosmos" / c["file"]).is_file()
    # both regions exist, with stations in each
    assert {s["region"] for s in manifest["ismn_stations"]} == {1, 2}


def test_grids_and_units(tiny_world: pathlib.Path, truth: xr.Dataset) -> None:
    assert np.all(np.diff(truth.lat) > 0) and np.all(np.diff(truth.lon) > 0)
    # target centres on x.x5, ERA5-Land points on multiples of 0.1 (latitude descending)
    assert np.allclose((truth.lat.values * 10) % 1, 0.5, atol=1e-6)
    with xr.open_dataset(tiny_world / "era5land" / "era5land_2016.nc") as era:
        assert np.all(np.diff(era.latitude) < 0)
        assert np.allclose(np.round(era.latitude.values * 10), era.latitude.values * 10, atol=1e-4)
        assert np.allclose(
            np.round(era.longitude.values * 10), era.longitude.values * 10, atol=1e-4
        )
        assert era.t2m.attrs["units"] == "K" and era.tp.attrs["units"] == "m"
        assert era.ssr.attrs["units"] == "J m**-2" and era.swvl1.attrs["units"] == "m**3 m**-3"
        assert float(era.t2m.mean()) > 250 and 0 < float(era.swvl1.mean()) < 0.6
        # daily sums of radiation in J m-2: net shortwave positive, net longwave negative
        assert float(era.ssr.mean()) > 1e6 and float(era.str.mean()) < 0
    with xr.open_dataset(tiny_world / "mswep" / "2016.nc") as p:
        assert p.precipitation.attrs["units"] == "mm d-1" and np.all(np.diff(p.lat) < 0)
    with xr.open_dataset(tiny_world / "mswx" / "Temp" / "2016.nc") as t:
        assert t.air_temperature.attrs["units"] == "degC"
    with xr.open_dataset(tiny_world / "static" / "dem.nc") as dem:
        assert np.isclose(float(dem.lat[1] - dem.lat[0]), 0.01)
    with xr.open_dataset(tiny_world / "static" / "soil.nc") as soil:
        assert (
            np.isclose(float(soil.lat[1] - soil.lat[0]), 0.05)
            and soil.sand_top.attrs["units"] == "percent"
        )


def test_every_netcdf_is_cf(tiny_world: pathlib.Path) -> None:
    files = sorted(tiny_world.rglob("*.nc"))
    assert len(files) >= 15
    for path in files:
        with xr.open_dataset(path) as ds:
            coords = ds.cf.coordinates
            assert coords.get("latitude") and coords.get("longitude"), path
            if "time" in ds.dims:
                assert coords.get("time"), path
            for name, var in ds.data_vars.items():
                assert "units" in var.attrs, f"{path}:{name}"


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes(tiny_world: pathlib.Path, tmp_path: pathlib.Path) -> None:
    again = xsomo.sample.generate("tiny", seed=7, out=tmp_path / "again")
    a, b = _files(tiny_world), _files(again)
    assert a == b
    _same, diff, errors = filecmp.cmpfiles(tiny_world, again, [str(p) for p in a], shallow=False)
    assert not diff and not errors


def test_one_process_writes_the_same_bytes(
    tiny_world: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ERA5-Land and the products are written in a forked process beside the truth (on Linux
    with two cores or more): the files are those of one process writing them in turn."""
    from xsomo.sample import world

    monkeypatch.setattr(world, "cpu_cores", lambda: 1)
    serial = xsomo.sample.generate("tiny", seed=7, out=tmp_path / "serial")
    a, b = _files(tiny_world), _files(serial)
    assert a == b
    _same, diff, errors = filecmp.cmpfiles(tiny_world, serial, [str(p) for p in a], shallow=False)
    assert not diff and not errors


@pytest.mark.skipif(sys.platform != "linux", reason="the forked writer runs on Linux only")
def test_a_failing_worker_process_is_named_and_leaves_no_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xsomo.sample import world

    monkeypatch.setattr(world, "cpu_cores", lambda: 2)

    def broken(ctx, bar):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(world.w_products, "write_products", broken)
    with pytest.raises(RuntimeError, match=r"ERA5-Land and the products failed.*OSError: disk full \(simulated\)"):
        xsomo.sample.generate("tiny", seed=7, out=tmp_path / "w")
    left = sorted(p.relative_to(tmp_path / "w").as_posix() for p in (tmp_path / "w").rglob("*") if p.is_file())
    assert not [p for p in left if "tmp" in p.lower() or p.startswith(".")], left  # no temporary file left
    assert not (tmp_path / "w" / "world.json").exists()  # not a world: no manifest


def test_other_seed_other_world(
    tiny_world: pathlib.Path, other_seed_world: pathlib.Path, capsys: pytest.CaptureFixture
) -> None:
    with (
        xr.open_dataset(tiny_world / "truth.nc") as a,
        xr.open_dataset(other_seed_world / "truth.nc") as b,
    ):
        a1 = a.sm.sel(time=slice("2015-01-01", "2015-12-31")).values
        assert a1.shape == b.sm.shape
        assert not np.array_equal(np.nan_to_num(a1), np.nan_to_num(b.sm.values))
    assert (
        filecmp.cmp(
            tiny_world / "static" / "dem.nc", other_seed_world / "static" / "dem.nc", shallow=False
        )
        is False
    )


def test_cli_prints_summary(other_seed_world: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    man = json.loads((other_seed_world / "world.json").read_text())
    assert man["seed"] == 8 and man["period"] == {"start": "2015-01-01", "end": "2015-12-31"}
    info = xsomo.sample.summary(other_seed_world)
    assert info["land_cells"] > 100 and info["bytes"] > 0


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown sample preset"):
        make_config("huge")
    with pytest.raises(ConfigError, match="unknown sample-world option"):
        make_config("tiny", colour="blue")
    with pytest.raises(ConfigError, match="before start"):
        make_config("tiny", start="2016-01-01", end="2015-01-01")
    cfg = make_config("tiny", bbox=(5.0, 50.0, 6.0, 52.0))
    assert cfg.grid.west == 5.0 and cfg.grid.nlat == 20
    assert make_config("europe").grid == EUROPE


# ----------------------------------------------------------------------------- physics


def test_truth_within_bounds(truth: xr.Dataset) -> None:
    land = truth.land_mask.values == 1
    sm = truth.sm.values  # (time, layer, lat, lon)
    assert np.isnan(sm[:, :, ~land]).all()
    assert np.isfinite(sm[:, :, land]).all()
    lo = truth.residual.values[None]
    hi = truth.porosity.values[None]
    assert np.all(sm[:, :, land] >= lo[:, :, land]) and np.all(sm[:, :, land] <= hi[:, :, land])
    assert 0.2 < float(np.nanmax(hi)) < 0.55 and float(np.nanmin(lo)) >= 0.0
    assert truth.sm.attrs["units"] == "m3 m-3"


def test_regions_differ(truth: xr.Dataset) -> None:
    sm1 = truth.sm.sel(layer=1)
    us = float(sm1.where(truth.region == 1).mean())
    eu = float(sm1.where(truth.region == 2).mean())
    assert eu > us + 0.03  # humid "europe" is wetter than arid "us"
    assert int((truth.region == 0).sum()) > 0  # a sea strip separates them


def test_deeper_layers_have_longer_memory(truth: xr.Dataset) -> None:
    land = truth.land_mask.values == 1
    x = truth.sm.values[:, :, land].astype(float)  # (time, layer, cell)
    x = x - x.mean(0)
    ac = (x[1:] * x[:-1]).sum(0) / (x * x).sum(0)  # lag-1 autocorrelation per layer and cell
    ac = ac.mean(1)
    assert ac[2] > ac[1] > ac[0]
    assert (x.std(0).mean(1)[0]) > 0.01  # and the top layer varies


@pytest.fixture(scope="module")
def column_run() -> dict:
    """The world's weather and water balance at its land cells (tiny world, seed 7)."""
    cfg = make_config("tiny")
    world = World(cfg, 7)
    la, lo = np.meshgrid(cfg.grid.lat, cfg.grid.lon, indexing="ij")
    land = world.geography(la, lo)["land"]
    lat, lon = la[land], lo[land]
    wx = world.weather(lat, lon)
    tex = world.texture(lat, lon)
    veg = world.vegetation(lat, lon)
    soil = ph.soil_parameters(
        np.stack([tex["sand_top"], tex["sand_top"], tex["sand_sub"]]),
        np.stack([tex["clay_top"], tex["clay_top"], tex["clay_sub"]]),
    )
    res = ph.water_balance_kernel(
        wx["precip"],
        wx["tair"],
        wx["rnet"],
        soil=soil,
        thickness_mm=ph.TRUTH_THICKNESS_MM,
        forest=veg["forest"],
        veg=veg["forest"] + veg["shortveg"],
        spinup_days=0,
    )
    return {"wx": wx, "res": res, "soil": soil}


def test_water_balance_closes(column_run: dict) -> None:
    r = column_run["res"]
    p, q, et, d = (r[k].sum(0) for k in ("precip", "runoff", "et", "drainage"))
    d_storage = r["storage"][-1] - r["storage_start"] + r["swe"][-1] - r["swe_start"]
    resid = p - q - et - d - d_storage
    assert np.all(np.abs(resid) <= 1e-6 * p)
    # every day closes too
    s_prev = np.concatenate([[r["storage_start"] + r["swe_start"]], (r["storage"] + r["swe"])[:-1]])
    daily = r["precip"] - r["runoff"] - r["et"] - r["drainage"] - (r["storage"] + r["swe"] - s_prev)
    assert np.abs(daily).max() <= 1e-6 * max(1.0, float(r["precip"].max()))
    # all terms are real fluxes: runoff, ET and drainage happen and are non-negative
    for k in ("runoff", "et", "drainage"):
        assert r[k].min() >= 0 and r[k].sum() > 0


def test_state_within_bounds(column_run: dict) -> None:
    th = column_run["res"]["theta"]
    soil = column_run["soil"]
    assert np.all(th >= soil.residual[None] - 1e-7) and np.all(th <= soil.porosity[None] + 1e-7)


def test_storms_wet_and_droughts_dry(column_run: dict) -> None:
    wx, th = column_run["wx"], column_run["res"]["theta"]
    dtheta = np.diff(th[:, 0, :].astype(float), axis=0)  # change of layer 1 into day t+1
    p = wx["precip"][1:]
    heavy = p > max(20.0, float(np.percentile(p[p > 0], 95)))
    assert heavy.sum() > 10
    assert dtheta[heavy].mean() > 0.02
    dry_days = (wx["drought"][1:] > 0.7) & (p == 0)
    assert dry_days.sum() > 50
    assert dtheta[dry_days].mean() < 0
    # in a drought the soil is drier than on the same cells in the same season otherwise
    doy = pd.date_range("2014-01-01", periods=th.shape[0]).day_of_year.to_numpy()[1:]
    summer = (doy > 150) & (doy < 260)
    in_drought = (wx["drought"][1:] > 0.7) & summer[:, None]
    normal = (wx["drought"][1:] == 0) & summer[:, None]
    s1 = th[1:, 0, :]
    cells = in_drought.any(0) & normal.any(0)
    wet = np.array([s1[normal[:, c], c].mean() for c in np.flatnonzero(cells)])
    dry = np.array([s1[in_drought[:, c], c].mean() for c in np.flatnonzero(cells)])
    assert dry.mean() < wet.mean()


def test_run_water_balance_xarray(column_run: dict) -> None:
    wx = column_run["wx"]
    n = 5
    forcing = xr.Dataset(
        {
            "precipitation": (("time", "cell"), wx["precip"][:400, :n], {"units": "mm d-1"}),
            "air_temperature": (("time", "cell"), wx["tair"][:400, :n] - 273.15, {"units": "degC"}),
            "net_radiation": (("time", "cell"), wx["rnet"][:400, :n], {"units": "W m-2"}),
        },
        coords={"time": pd.date_range("2014-01-01", periods=400)},
    )
    statics = xr.Dataset(
        {
            "sand_top": ("cell", np.full(n, 40.0), {"units": "percent"}),
            "clay_top": ("cell", np.full(n, 0.2), {"units": "1"}),
            "sand_sub": ("cell", np.full(n, 0.4), {"units": "1"}),
            "clay_sub": ("cell", np.full(n, 0.25), {"units": "1"}),
            "forest_fraction": ("cell", np.linspace(0, 1, n), {"units": "1"}),
            "shortveg_fraction": ("cell", np.linspace(1, 0, n), {"units": "1"}),
        }
    )
    out = xsomo.sample.run_water_balance(forcing, statics, spinup_days=30)
    assert out.sm.dims == ("time", "layer", "cell") and out.sizes["time"] == 370
    assert out.sm.attrs["units"] == "m3 m-3"
    resid = (out.precipitation - out.runoff - out.evapotranspiration - out.drainage).sum("time") - (
        out.soil_water.isel(time=-1)
        + out.snow_water_equivalent.isel(time=-1)
        - out.soil_water_start
        - out.snow_water_equivalent_start
    )
    assert float(abs(resid).max()) <= 1e-6 * float(out.precipitation.sum("time").min())
    assert bool((out.sm >= out.residual).all()) and bool((out.sm <= out.porosity).all())
    with pytest.raises(xsomo.exceptions.MissingVariableError, match="net_radiation"):
        xsomo.sample.run_water_balance(forcing.drop_vars("net_radiation"), statics)


def test_soil_parameters_order() -> None:
    p = ph.soil_parameters(np.array([0.9, 0.4, 0.1]), np.array([0.05, 0.2, 0.6]))
    assert np.all(p.residual < p.wilting_point) and np.all(p.wilting_point < p.field_capacity)
    assert np.all(p.field_capacity < p.porosity)
    assert np.all(np.diff(p.k_sat) < 0) and np.all(np.diff(p.b) > 0)  # sand drains fastest
    roots = ph.root_fractions(np.array([0.0, 1.0]))
    assert np.allclose(roots.sum(0), 1.0) and roots[2, 1] > roots[2, 0]  # forests root deeper


def test_skin_temperature_tracks_drying() -> None:
    ta = np.full((1, 2), 295.0)
    rn = np.full((1, 2), 150.0)
    et = np.array([[4.0, 0.5]])  # a wet and a dry cell
    ts = ph.skin_temperature(ta, rn, et, np.zeros((1, 2)), np.zeros(2))
    assert ts[0, 1] > ts[0, 0] > ta[0, 0] - 5


# ----------------------------------------------------------------------------- ERA5-Land


def test_era5_hourly_accumulation(tiny_world: pathlib.Path, manifest: dict) -> None:
    start = pd.Timestamp(manifest["hourly_period"]["start"])
    path = tiny_world / "era5land_hourly" / f"era5land_hourly_{start:%Y_%m}.nc"
    with (
        xr.open_dataset(path) as h,
        xr.open_dataset(tiny_world / "era5land" / f"era5land_{start:%Y}.nc") as d,
    ):
        h = h.load()
        assert h.time.values[0] == np.datetime64(start) and (h.time.dt.minute == 0).all()
        days = pd.date_range(start, pd.Timestamp(h.time.values[-1]).normalize(), freq="D")
        for var, tol in (("tp", 1e-4), ("ssr", 5e4), ("str", 5e4)):
            # the 00 UTC value of day d+1 closes day d
            for day in days[:-1]:
                acc = h[var].sel(time=day + pd.Timedelta(days=1))
                total = d[var].sel(time=day)
                assert float(abs(acc - total).max()) < tol, (var, day)
            # accumulations grow through the day (tp, ssr) from the first hour
            one = h[var].sel(
                time=slice(days[1] + pd.Timedelta(hours=1), days[1] + pd.Timedelta(hours=23))
            )
            if var != "str":
                assert float(one.diff("time").min()) > -tol
        # instantaneous temperature averages to the daily mean
        t_mean = h.t2m.sel(time=slice(days[1], days[1] + pd.Timedelta(hours=23))).mean("time")
        assert float(abs(t_mean - d.t2m.sel(time=days[1])).max()) < 0.05
        # ssr is zero at local midnight and positive at noon
        noon = h.ssr.sel(time=days[1] + pd.Timedelta(hours=13)) - h.ssr.sel(
            time=days[1] + pd.Timedelta(hours=11)
        )
        assert float(noon.min()) > 0


def test_era5_soil_moisture_is_a_biased_relative(
    tiny_world: pathlib.Path, truth: xr.Dataset
) -> None:
    with xr.open_dataset(tiny_world / "era5land" / "era5land_2016.nc") as era:
        e1 = era.swvl1.interp(latitude=truth.lat, longitude=truth.lon)
        t1 = truth.sm.sel(layer=1, time="2016")
        land = (truth.land_mask == 1) & e1.notnull().all("time")
        r = xr.corr(e1.where(land), t1.where(land), dim="time")
        assert float(r.median()) > 0.6  # related ...
        assert float(abs(e1 - t1).where(land).mean()) > 0.005  # ... but not the same


# ----------------------------------------------------------------------------- stations


def test_ismn_opens_every_station(
    tiny_world: pathlib.Path, manifest: dict, tmp_path: pathlib.Path
) -> None:
    from ismn.interface import ISMN_Interface

    root = tmp_path / "ismn"
    shutil.copytree(tiny_world / "ismn", root)
    ds = ISMN_Interface(str(root), parallel=False)
    n_sensors = 0
    flags_seen: set[str] = set()
    for st in manifest["ismn_stations"]:
        station = ds[st["network"]][st["station"]]
        assert station.lat == pytest.approx(st["lat"]) and station.lon == pytest.approx(st["lon"])
        for s in st["sensors"]:
            text = (root / st["network"] / st["station"] / s["file"]).read_text().splitlines()
            rows = [line.split() for line in text[1:]]
            values = np.array([float(r[2]) for r in rows])
            flags = [r[3] for r in rows]
            stamps = pd.to_datetime([f"{r[0]} {r[1]}" for r in rows], format="%Y/%m/%d %H:%M")
            found = [
                x
                for x in station.sensors.values()
                if x.instrument == s["sensor"]
                and x.depth.start == pytest.approx(s["depth_top"])
                and x.depth.end == pytest.approx(s["depth_bottom"])
            ]
            assert len(found) == 1, s["file"]
            data = found[0].read_data()
            np.testing.assert_array_equal(data["soil_moisture"].to_numpy(), values)
            assert list(data["soil_moisture_flag"]) == flags
            assert (data.index == stamps).all()
            assert stamps[0] == pd.Timestamp(s["start"]) and stamps[-1].normalize() == pd.Timestamp(
                s["end"]
            )
            flags_seen |= set(flags)
            n_sensors += 1
    assert n_sensors == sum(len(s["sensors"]) for s in manifest["ismn_stations"])
    assert "G" in flags_seen and flags_seen - {"G"}  # some C/D flags


def test_ismn_sensors_follow_their_layer(
    tiny_world: pathlib.Path, manifest: dict, truth: xr.Dataset
) -> None:
    """A sensor's daily means correlate with the truth of its layer; some sensors span two layers."""
    depths = set()
    for st in manifest["ismn_stations"]:
        for s in st["sensors"]:
            depths.add((s["depth_top"], s["depth_bottom"]))
            layer = assign_layer(s["depth_top"], s["depth_bottom"])
            if layer is None:
                continue
            path = tiny_world / "ismn" / st["network"] / st["station"] / s["file"]
            frame = pd.read_csv(
                path, sep=r"\s+", skiprows=1, header=None, names=["d", "t", "v", "f", "o"]
            )
            frame.index = pd.to_datetime(frame.d + " " + frame.t, format="%Y/%m/%d %H:%M")
            daily = frame.v[frame.f == "G"].resample("D").mean()
            ref = truth.sm.sel(layer=layer).isel(lat=st["row"], lon=st["col"]).to_series()
            both = pd.concat([daily, ref], axis=1, sort=True).dropna()
            assert len(both) > 90
            assert both.corr().iloc[0, 1] > 0.5, s["file"]


def test_station_design() -> None:
    """Networks cluster in their regions; depths include ones the layer rule drops; records differ."""
    region = np.zeros((40, 30), np.int8)
    region[:18] = 1
    region[22:] = 2
    grid = make_config("tiny", bbox=(0.0, 40.0, 3.0, 44.0)).grid
    time = pd.date_range("2011-01-01", "2020-12-31")
    sts = stn.place_ismn(
        seed=3,
        grid_lat=grid.lat,
        grid_lon=grid.lon,
        region=region,
        n_stations=120,
        us_share=0.65,
        time=time,
        record_years=(2.0, 8.0),
    )
    assert len(sts) == 120
    assert sum(s.region == 1 for s in sts) == 78
    for s in sts:
        assert region[s.row, s.col] == s.region
        assert grid.snap(s.lat, s.lon) == (s.row, s.col)
    sensors = [x for s in sts for x in s.sensors]
    depths = {(x.depth_top, x.depth_bottom) for x in sensors}
    assert {(0.05, 0.05), (0.2, 0.5), (0.3, 0.3), (0.4, 0.4)} <= depths
    assert assign_layer(0.2, 0.5) is None  # spans layers 2 and 3: dropped downstream
    counts = pd.Series([len(s.sensors) for s in sts]).value_counts()
    assert set(counts.index) >= {1, 2, 3, 4}
    years = np.array([(x.end - x.start).days / 365.25 for x in sensors])
    assert (
        years.min() > 0.3
        and years.max() > 6
        and np.unique([x.start.year for x in sensors]).size > 4
    )
    names = [(s.network, s.station) for s in sts]
    assert len(set(names)) == len(names) and all("_" not in n and " " not in n for _, n in names)


def test_sensor_weights() -> None:
    assert np.allclose(stn.sensor_weights(0.05, 0.05), [1, 0, 0])
    assert np.allclose(stn.sensor_weights(0.40, 0.40), [0, 0, 1])
    assert np.allclose(stn.sensor_weights(0.20, 0.50), [0, 1 / 3, 2 / 3])
    assert np.allclose(stn.sensor_weights(0.30, 0.30), [0, 0.5, 0.5])
    w = stn.crns_layer_weights(np.array([0.15, 0.22]))
    assert np.allclose(w.sum(-1), 1) and w[1, 2] > w[0, 2]  # deeper sensing sees more of layer 3


def test_ismn_line_format() -> None:
    times = pd.date_range("2015-01-01", periods=4, freq="h")
    text = stn.format_ismn_lines(
        times, np.array([0.22, 0.2, -0.013, 0.123]), np.array([0, 1, 5, 3])
    ).decode()
    assert text.splitlines() == [
        "2015/01/01 00:00 0.22 G M",
        "2015/01/01 01:00 0.2 C01 M",
        "2015/01/01 02:00 -0.013 D06 M",
        "2015/01/01 03:00 0.123 C03 M",
    ]


def test_cosmos_files(tiny_world: pathlib.Path, manifest: dict) -> None:
    cat = pd.read_csv(tiny_world / "cosmos" / "stations.csv")
    assert list(cat.columns) == stn.COSMOS_CATALOGUE_COLUMNS
    assert len(cat) == len(manifest["cosmos_stations"]) > 0
    for c in manifest["cosmos_stations"]:
        frame = pd.read_csv(tiny_world / "cosmos" / c["file"])
        assert list(frame.columns) == stn.COSMOS_COLUMNS
        t = pd.to_datetime(frame.DateTime_utc)
        assert str(t.dt.tz) == "UTC" and (t.diff().dropna() >= pd.Timedelta(hours=1)).all()
        sm = frame.SoilMoisture_volumetric_MovAvg24h.dropna()
        assert len(sm) > 1000 and 0.0 < sm.mean() < 0.6
        assert frame.Footprint_Depth_m.between(0.15, 0.22).all()


@pytest.mark.real
def test_cosmos_layout_matches_real(real_data: pathlib.Path) -> None:
    cat = real_data / "neptoon" / "examples" / "cosmos_europe" / "stations.csv"
    crns = real_data / "neptoon" / "neptoon" / "interface" / "example_data" / "Sheepdrove2-CRNS.csv"
    if not (cat.is_file() and crns.is_file()):
        pytest.skip("neptoon example files not found")
    assert list(pd.read_csv(cat, nrows=1).columns) == stn.COSMOS_CATALOGUE_COLUMNS
    assert list(pd.read_csv(crns, nrows=1).columns) == stn.COSMOS_COLUMNS


@pytest.mark.real
def test_real_ismn_files_open(real_data: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Real ISMN downloads open with the ismn package; record counts match the reference reader."""
    from ismn.interface import ISMN_Interface

    src = real_data / "qa4sm-testdata" / "input_data" / "ISMN" / "ISMN_V20250617"
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    root = tmp_path / "ISMN_V20250617"
    shutil.copytree(src, root)
    ds = ISMN_Interface(str(root), parallel=False)
    counts = {}
    for sensor in ds["SCAN"]["Kainaliu"].sensors.values():
        if sensor.variable == "soil_moisture":
            counts[(round(sensor.depth.start, 4), sensor.instrument[-1])] = len(sensor.read_data())
    # oracle values from ../shared/data/real/README.md
    assert counts[(0.0508, "D")] == 53196
    assert counts[(0.1016, "B")] == 42471
    assert counts[(0.3048, "B")] == 93060
    header = (
        real_data / "ismn" / "tests" / "test_data" / "Data_seperate_files_header_20170810_20180809"
    )
    if header.is_dir():
        root2 = tmp_path / "header"
        shutil.copytree(header, root2)
        ds2 = ISMN_Interface(str(root2), parallel=False)
        arm = [s for s in ds2["COSMOS"]["ARM-1"].sensors.values() if s.variable == "soil_moisture"]
        assert len(arm[0].read_data()) == 6865


# ----------------------------------------------------------------------------- bigger presets


def test_europe_preset_is_lazy_and_banded() -> None:
    cfg = make_config("europe")
    assert cfg.grid.shape == (355, 570) and 0 < cfg.band_rows < 355
    world = World(
        make_config("europe", end="2003-03-31", hourly_start="2003-02-01", hourly_end="2003-02-02"),
        0,
    )
    # any block of the big grid is computed on its own and agrees with a larger block
    g = cfg.grid
    la, lo = np.meshgrid(g.lat[100:104], g.lon[200:210], indexing="ij")
    small = world.weather(la.ravel()[:5], lo.ravel()[:5], 0, 60)
    big = world.weather(la.ravel(), lo.ravel(), 0, 60)
    np.testing.assert_allclose(small["tair"], big["tair"][:, :5], rtol=1e-6)
    # precipitation occurrence is a threshold: allow a rare flip from round-off
    assert np.mean(small["precip"] != big["precip"][:, :5]) < 1e-3


def test_banded_world_equals_whole(tmp_path: pathlib.Path) -> None:
    """Writing band by band (as the europe preset does) gives the same world as one block."""
    kw = {
        "seed": 5,
        "start": "2015-01-01",
        "end": "2015-06-30",
        "hourly_start": "2015-06-01",
        "hourly_end": "2015-06-02",
        "spinup_days": 60,
    }
    whole = xsomo.sample.generate("tiny", out=tmp_path / "whole", **kw)
    banded = xsomo.sample.generate("tiny", out=tmp_path / "banded", band_rows=3, **kw)
    for rel, var in (
        ("truth.nc", "sm"),
        ("era5land/era5land_2015.nc", "swvl1"),
        ("mswep/2015.nc", "precipitation"),
        ("era5land_hourly/era5land_hourly_2015_06.nc", "tp"),
        ("products/somoml_v1_like/somoml_v1_like_2015.nc", "layer2"),
    ):
        with xr.open_dataset(whole / rel) as a, xr.open_dataset(banded / rel) as b:
            x, y = a[var].values, b[var].values
            assert np.array_equal(np.isnan(x), np.isnan(y)), rel
            ok = np.isfinite(x)
            assert np.mean(x[ok] == y[ok]) > 0.999, rel
            np.testing.assert_allclose(x[ok], y[ok], atol=1e-3, err_msg=rel)
    assert (
        json.loads((whole / "world.json").read_text())["ismn_stations"]
        == json.loads((banded / "world.json").read_text())["ismn_stations"]
    )


@pytest.mark.slow
def test_demo_world(tmp_path: pathlib.Path) -> None:
    # its time is measured by bench/bench_sample.py (a timing assert fails on a busy machine)
    path = xsomo.sample.generate("demo", seed=0, out=tmp_path / "demo")
    info = xsomo.sample.summary(path)
    assert 2000 < info["land_cells"] < 6000
    assert 90 <= info["ismn_stations"] <= 150
    assert info["bytes"] < 420e6
    with netCDF4.Dataset(path / "truth.nc") as nc:
        assert nc["sm"].shape[1] == len(LAYERS)
