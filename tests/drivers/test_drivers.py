"""open_drivers and build_targets on the tiny sample world; grid/period/static errors."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import conventions as cv
from xsomo.conventions import GridSpec
from xsomo.drivers.assemble import build_targets, open_drivers, world_grid
from xsomo.exceptions import GridMismatchError, MissingVariableError

MF = {"data_vars": "minimal", "coords": "minimal", "compat": "override", "join": "outer"}


@pytest.fixture(scope="module")
def drivers(tiny_world):
    return open_drivers(tiny_world)


@pytest.fixture(scope="module")
def targets(tiny_world):
    return build_targets(tiny_world)


def test_drivers_layout_lazy_units(drivers, tiny_world):
    g = world_grid(tiny_world)
    assert set(cv.DYNAMIC_NAMES) | set(cv.STATIC_NAMES) | {cv.LAND_MASK} == set(drivers.data_vars)
    np.testing.assert_allclose(drivers.lat.values, g.lat)
    np.testing.assert_allclose(drivers.lon.values, g.lon)
    for name in cv.DYNAMIC_NAMES:
        da = drivers[name]
        assert da.dims == ("time", "lat", "lon") and da.chunks is not None
        assert da.dtype == np.float32 and da.attrs["units"] == cv.VARIABLES[name].units
    for name in cv.STATIC_NAMES:
        assert drivers[name].dims == ("lat", "lon")
    assert drivers[cv.LAND_MASK].dtype == bool


def test_drivers_values_against_raw_files(drivers, tiny_world):
    land = drivers[cv.LAND_MASK].values
    # precipitation: the MSWEP-style file values at the same cells
    raw = xr.open_mfdataset(sorted((tiny_world / "mswep").glob("*.nc")), **MF).sortby("lat")
    day = drivers.time.values[40]
    np.testing.assert_allclose(
        drivers["precipitation"].sel(time=day).values[land],
        raw["precipitation"].sel(time=day).values[land],
        rtol=1e-6,
    )
    # net radiation: ERA5-Land (ssr + str) / 86400 bilinearly interpolated to the cell centres (xarray interp)
    era = xr.open_mfdataset(sorted((tiny_world / "era5land").glob("era5land_2*.nc")), **MF).sortby(
        "latitude"
    )
    rn = (era["ssr"] + era["str"]).sel(time=day) / 86400.0
    rn = rn.assign_coords(
        latitude=np.round(rn.latitude.values.astype(float), 5),
        longitude=np.round(rn.longitude.values.astype(float), 5),
    )
    interp = rn.interp(latitude=drivers.lat.values, longitude=drivers.lon.values).values
    ok = land & np.isfinite(interp)
    assert ok.sum() > 0.5 * land.sum()
    np.testing.assert_allclose(
        drivers["net_radiation"].sel(time=day).values[ok], interp[ok], rtol=1e-4, atol=1e-3
    )
    assert np.isfinite(
        drivers["net_radiation"].sel(time=day).values[land]
    ).all()  # coastal land cells too
    static = drivers[list(cv.STATIC_NAMES)].compute()
    for name in ("forest_fraction", "sand_top", "clay_sub"):
        v = static[name].values[land]
        assert np.nanmin(v) >= 0 and np.nanmax(v) <= 1


def test_targets_recover_reference_moments_and_truth(targets, tiny_world):
    tg, qc, rep = targets
    man = json.loads((tiny_world / "world.json").read_text())
    g = world_grid(tiny_world)
    cells = {(s["row"], s["col"]) for s in man["ismn_stations"]}
    assert {(int(r), int(c)) for r, c in zip(tg.row.values, tg.col.values, strict=True)} <= cells
    assert (rep.kept | (rep.reason != "")).all() and len(qc) >= rep.shape[0]
    era = xr.open_mfdataset(sorted((tiny_world / "era5land").glob("era5land_2*.nc")), **MF).sortby(
        "latitude"
    )
    era = era.assign_coords(
        latitude=np.round(era.latitude.values.astype(float), 5),
        longitude=np.round(era.longitude.values.astype(float), 5),
    )
    era = era.assign_coords(time=pd.DatetimeIndex(era.time.values).floor("D"))
    truth = xr.open_dataset(tiny_world / "truth.nc")
    w = {1: (0.7, 0.3, 0.0), 2: (0.0, 0.9, 0.1), 3: (0.0, 0.0, 1.0)}  # depth weights by hand
    checked = 0
    for cell in tg.cell.values:
        t = tg.sel(cell=cell)
        lat, lon = float(t.lat), float(t.lon)
        pt = era[["swvl1", "swvl2", "swvl3"]].interp(latitude=lat, longitude=lon).load()
        for lay in tg.layer.values:
            y = t["sm"].sel(layer=lay).to_series().dropna()
            if (
                y.empty or t["n_stations"].sel(layer=lay).item() != 1
            ):  # averages match only on average
                continue
            a, b, c = w[int(lay)]
            ref = (a * pt.swvl1 + b * pt.swvl2 + c * pt.swvl3).to_series()
            both = y.index.intersection(ref.dropna().index)
            if len(both) < 90 or ref[both].isna().any():
                continue
            np.testing.assert_allclose(y[both].mean(), ref[both].mean(), rtol=1e-4)
            np.testing.assert_allclose(y[both].std(ddof=1), ref[both].std(ddof=1), rtol=1e-3)
            tr = (
                truth["sm"]
                .sel(layer=lay, lat=lat, lon=lon, method="nearest")
                .to_series()
                .reindex(both)
            )
            assert (
                np.corrcoef(y[both], tr)[0, 1] > 0.6
            )  # the sensors' daily variation is the truth's
            checked += 1
    assert checked >= 3
    assert int(tg["n_stations"].sum()) == int(rep.kept.sum())
    assert g.contains(tg.lat.values, tg.lon.values).all()


def _partial_world(src: pathlib.Path, dst: pathlib.Path, *, drop: str) -> pathlib.Path:
    dst.mkdir()
    for p in src.iterdir():
        if p.name != "static":
            (dst / p.name).symlink_to(p)
    (dst / "static").mkdir()
    for p in (src / "static").iterdir():
        if p.name != drop:
            (dst / "static" / p.name).symlink_to(p)
    return dst


def test_missing_static_feature(tiny_world, tmp_path):
    w = _partial_world(tiny_world, tmp_path / "w", drop="soil.nc")
    with pytest.raises(MissingVariableError, match=r"soil\.nc"):
        open_drivers(w)


def test_periods_and_grids_must_agree(tiny_world, tmp_path):
    years = sorted((tiny_world / "mswep").glob("*.nc"))
    short = tmp_path / "mswep"
    short.mkdir()
    for f in years[1:]:
        shutil.copy(f, short / f.name)
    paths = {
        "precipitation": short,
        "air_temperature": tiny_world / "mswx" / "Temp",
        "era5land": tiny_world / "era5land",
        "static": tiny_world / "static",
    }
    with pytest.raises(GridMismatchError, match="different periods"):
        open_drivers(paths)
    g = world_grid(tiny_world)
    big = GridSpec(g.west - 1.0, g.east, g.south, g.north)
    with pytest.raises(GridMismatchError):
        open_drivers(tiny_world, grid=big)
