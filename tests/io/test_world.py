"""The sample-world folder layout (xsomo.io.world): one place that names every path."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest
import xarray as xr

from xsomo.conventions import GridSpec
from xsomo.exceptions import DataFormatError, MissingVariableError, XsomoError
from xsomo.io import world as io_world
from xsomo.io.world import WorldLayout


def _files(root: pathlib.Path) -> set[pathlib.Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_layout_names_every_file_of_the_world(tiny_world: pathlib.Path) -> None:
    """Every file a world holds lies under a path of the layout, and every named file exists."""
    lay = WorldLayout(tiny_world)
    man = io_world.read_manifest(tiny_world)
    years = range(int(man["period"]["start"][:4]), int(man["period"]["end"][:4]) + 1)
    named = {lay.manifest, lay.truth, lay.sources, lay.land_mask, lay.soil, lay.dem, lay.landcover}
    named |= {lay.mswep_year(y) for y in years} | {lay.mswx_temp_year(y) for y in years}
    named |= {lay.era5land_year(y) for y in years}
    named.add(lay.cosmos_catalogue)
    for name, info in man["products"].items():
        y0, y1 = int(info["period"]["start"][:4]), int(info["period"]["end"][:4])
        named |= {lay.product_year(name, y) for y in range(y0, y1 + 1)}
    hourly = {lay.era5land_hourly_month(int(p.stem[-7:-3]), int(p.stem[-2:]))
              for p in lay.era5land_hourly.glob("*.nc")}
    assert hourly, "no hourly file"
    named |= hourly
    assert named <= _files(tiny_world), sorted(map(str, named - _files(tiny_world)))
    # what is not named one by one lies in the station folders of the layout
    rest = _files(tiny_world) - named
    assert all(p.is_relative_to(lay.ismn) or p.is_relative_to(lay.cosmos) for p in rest), rest
    # every top-level entry is a folder or file the layout knows (clear_world removes them)
    top = {p.name for p in tiny_world.iterdir()}
    assert top <= set(WorldLayout.FOLDERS) | set(WorldLayout.FILES)


def test_world_grid_from_manifest_and_from_land_mask(tiny_world: pathlib.Path, tmp_path) -> None:
    man = json.loads((tiny_world / "world.json").read_text())
    g = io_world.world_grid(tiny_world)
    assert (g.west, g.east, g.south, g.north) == tuple(
        man["grid"][k] for k in ("west", "east", "south", "north")
    )
    assert (g.nlat, g.nlon) == (man["shape"]["lat"], man["shape"]["lon"])
    # without world.json: the land mask's coordinates give the same grid
    bare = tmp_path / "bare"
    (bare / "static").mkdir(parents=True)
    shutil.copy(tiny_world / "static" / "land_mask.nc", bare / "static" / "land_mask.nc")
    g2 = io_world.world_grid(bare)
    assert isinstance(g2, GridSpec)
    np.testing.assert_allclose(g2.lat, g.lat, atol=1e-9)
    np.testing.assert_allclose(g2.lon, g.lon, atol=1e-9)
    with pytest.raises(MissingVariableError, match=r"neither world\.json nor static/land_mask\.nc"):
        io_world.world_grid(tmp_path / "nothing")


def test_manifest_round_trip_and_errors(tmp_path: pathlib.Path) -> None:
    man = {"format_version": 1, "grid": {"west": 0, "east": 1, "south": 40, "north": 41}}
    path = io_world.write_manifest(tmp_path / "w", man)
    assert path == tmp_path / "w" / "world.json"
    assert io_world.read_manifest(tmp_path / "w") == man
    assert io_world.is_world(tmp_path / "w")
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["world.json"]  # no temp file left
    g = io_world.world_grid(tmp_path / "w")
    assert (g.nlat, g.nlon) == (10, 10)
    (tmp_path / "w" / "world.json").write_text("{not json")
    with pytest.raises(DataFormatError, match=r"world.json is not valid JSON"):
        io_world.read_manifest(tmp_path / "w")
    with pytest.raises(MissingVariableError, match="not a sample world"):
        io_world.read_manifest(tmp_path / "absent")


def test_truth_land_mask_and_products(tiny_world: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with io_world.open_truth(tiny_world) as truth:
        assert "sm" in truth
        mask = io_world.open_land_mask(tiny_world)
        np.testing.assert_array_equal(mask.values, truth["land_mask"].values)
    files = io_world.product_files(tiny_world)
    man = io_world.read_manifest(tiny_world)
    assert sorted(files) == sorted(man["products"])
    for name, paths in files.items():
        assert paths and all(p.parent == WorldLayout(tiny_world).product_dir(name) for p in paths)
        with xr.open_dataset(paths[0]) as ds:
            assert {"layer1", "layer2", "layer3"} <= set(ds.data_vars)
    for fn in (io_world.open_truth, io_world.product_files, io_world.open_land_mask):
        with pytest.raises(XsomoError, match=str(tmp_path.name)):
            fn(tmp_path)


def test_clear_world_removes_only_world_files(tmp_path: pathlib.Path) -> None:
    lay = WorldLayout(tmp_path)
    lay.static.mkdir()
    lay.land_mask.write_bytes(b"x")
    lay.truth.write_bytes(b"x")
    (tmp_path / "mine.txt").write_text("keep")
    (tmp_path / "notes").mkdir()
    io_world.clear_world(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt", "notes"]


def test_world_paths_match_the_layout(tmp_path: pathlib.Path) -> None:
    paths = io_world.world_paths(tmp_path)
    lay = WorldLayout(tmp_path)
    assert paths["precipitation"] == lay.mswep
    assert paths["air_temperature"] == lay.mswx_temp
    assert paths["static"] == lay.static
    assert set(paths) >= {"precipitation", "air_temperature", "era5land", "static", "ismn", "cosmos"}
