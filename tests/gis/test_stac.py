"""``xsomo stac``: one STAC item per SoMo.ml file (period, layer, bbox, CRS, asset roles)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import conventions as cv

pystac = pytest.importorskip("pystac")


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    from xsomo.prediction.output import to_files

    g = cv.GridSpec(west=10.0, east=11.0, south=50.0, north=50.5)
    t = pd.date_range("2015-06-01", "2016-03-31", freq="D")
    vals = np.full((2, t.size, g.nlat, g.nlon), 0.25, "float32")
    sm = xr.DataArray(vals, dims=("layer", "time", "lat", "lon"),
                      coords={"time": t, **g.coords(), **cv.layer_coords([1, 3])})
    d = tmp_path_factory.mktemp("stac_src")
    to_files(sm.to_dataset(name="sm"), d, progress=False)
    return d


def test_stac_catalogue_of_an_output_folder(out_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    from xsomo.cli import main

    cat_dir = tmp_path / "stac"
    assert main(["stac", str(out_dir), "--out", str(cat_dir)]) == 0
    cat = pystac.Catalog.from_file(str(cat_dir / "catalog.json"))
    items = {i.id: i for i in cat.get_items(recursive=True)}
    assert sorted(items) == [f"SoMo.ml-EU_layer{n}_{y}" for n in (1, 3) for y in (2015, 2016)]
    it = items["SoMo.ml-EU_layer3_2016"]
    assert it.properties["start_datetime"] == "2016-01-01T00:00:00Z"
    assert it.properties["end_datetime"] == "2016-03-31T23:59:59Z"
    assert it.properties["xsomo:layer"] == 3
    assert (it.properties["xsomo:depth_top_m"], it.properties["xsomo:depth_bottom_m"]) == (0.3, 0.5)
    assert it.bbox == pytest.approx([10.0, 50.0, 11.0, 50.5])
    assert it.properties["proj:code"] == "EPSG:4326" and it.properties["proj:shape"] == [5, 10]
    assert items["SoMo.ml-EU_layer1_2015"].properties["start_datetime"] == "2015-06-01T00:00:00Z"
    asset = it.assets["data"]
    assert asset.roles == ["data"] and asset.media_type == "application/netcdf"
    # the link is relative inside the catalogue and resolves to the file
    raw = json.loads((cat_dir / it.id / f"{it.id}.json").read_text())
    assert not raw["assets"]["data"]["href"].startswith("/")
    assert pathlib.Path(asset.get_absolute_href()).resolve() == (out_dir / f"{it.id}.nc").resolve()
    # the same --out for a folder of 2016 only: the 2015 items go (they had stayed, unlinked); a user's
    # folder is kept
    only = tmp_path / "only2016"
    only.mkdir()
    for f in out_dir.glob("*_2016.nc"):
        (only / f.name).symlink_to(f)
    (cat_dir / "notes").mkdir()
    (cat_dir / "notes" / "notes.json").write_text("{}")
    assert main(["stac", str(only), "--out", str(cat_dir)]) == 0
    left = sorted(p.name for p in cat_dir.iterdir() if p.is_dir())
    assert left == ["SoMo.ml-EU_layer1_2016", "SoMo.ml-EU_layer3_2016", "notes"]


def test_stac_of_nothing_is_an_error(tmp_path: pathlib.Path) -> None:
    from xsomo.exceptions import DataFormatError
    from xsomo.gis.stac import stac_catalog

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match=r"no SoMo\.ml files"):
        stac_catalog(tmp_path / "empty", tmp_path / "cat2")


def _zarr_store(tmp_path: pathlib.Path, *, days: int) -> pathlib.Path:
    """A store of zeros on a -1..1 E, 40..41 N grid from 2010-01-01, as xsomo writes its stores."""
    g = cv.GridSpec(west=-1.0, east=1.0, south=40.0, north=41.0)
    t = pd.date_range("2010-01-01", periods=days, freq="D")
    sm = xr.DataArray(np.zeros((3, t.size, g.nlat, g.nlon), "float32"), dims=("layer", "time", "lat", "lon"),
                      coords={"time": t, **g.coords(), **cv.layer_coords()})
    store = tmp_path / "sm.zarr"
    sm.to_dataset(name="sm").to_zarr(store, zarr_format=2)
    return store


def test_stac_of_a_zarr_store(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("zarr")
    from xsomo.gis.stac import stac_catalog

    store = _zarr_store(tmp_path, days=10)
    path = stac_catalog(store, tmp_path / "cat")
    items = list(pystac.Catalog.from_file(str(path)).get_items(recursive=True))
    assert len(items) == 1 and items[0].properties["xsomo:layers"] == [1, 2, 3]
    assert items[0].bbox == pytest.approx([-1.0, 40.0, 1.0, 41.0])
    assert items[0].assets["data"].media_type == "application/vnd+zarr"


def test_a_time_stack_of_a_zarr_store_says_it_needs_the_netcdf_files(tmp_path: pathlib.Path) -> None:
    """It said "no SoMo.ml files named like 'SoMo.ml-EU_layer1_...'" for any --layer."""
    pytest.importorskip("zarr")
    from xsomo.exceptions import XsomoValueError
    from xsomo.gis.export import to_time_stack

    store = _zarr_store(tmp_path, days=3)
    with pytest.raises(XsomoValueError, match=r"is a Zarr store: a VRT time stack points GDAL at the yearly netCDF"):
        to_time_stack(store, tmp_path / "x.vrt", layer=2)
