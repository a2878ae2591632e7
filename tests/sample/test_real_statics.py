"""The sample world's statics in real layouts (issue 15 item 3): the readers of xsomo.io end to end."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import xarray as xr

import xsomo
from xsomo.io import open_dem, open_landcover, open_soilgrids
from xsomo.io.world import WorldLayout


@pytest.fixture(scope="module")
def real_world(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return xsomo.sample.generate(
        "tiny",
        seed=3,
        out=tmp_path_factory.mktemp("real_statics"),
        real_statics=True,
        start="2016-01-01",
        end="2016-12-31",
        hourly_start="2016-07-01",
        hourly_end="2016-07-02",
    )


def test_default_world_writes_no_real_statics(tiny_world: pathlib.Path) -> None:
    assert not WorldLayout(tiny_world).real_static.exists()


def test_item3_dem_tiles_read_back_as_the_netcdf_dem(real_world: pathlib.Path) -> None:
    lay = WorldLayout(real_world)
    tiles = sorted((lay.real_static / "dem").glob("*.tif"))
    assert len(tiles) == 2  # 1 x 2 degrees in 1-degree tiles
    dem = open_dem(lay.real_static / "dem")
    with xr.open_dataset(lay.dem) as ref:
        np.testing.assert_allclose(dem.lat, ref.lat, atol=1e-9)
        np.testing.assert_allclose(dem.lon, ref.lon, atol=1e-9)
        np.testing.assert_array_equal(dem.values, ref["elevation"].values)


def test_item3_landcover_classes_read_back_as_the_fractions(real_world: pathlib.Path) -> None:
    lay = WorldLayout(real_world)
    out = open_landcover(lay.real_static / "landcover_esa_cci.tif", "esa_cci")
    with xr.open_dataset(lay.landcover) as ref:
        for name in ("forest_fraction", "shortveg_fraction"):
            np.testing.assert_array_equal(out[name].values, ref[name].values)
        assert float(ref["forest_fraction"].mean()) > 0.01  # both classes occur


def test_item3_soilgrids_rasters_read_back_as_the_texture(real_world: pathlib.Path) -> None:
    lay = WorldLayout(real_world)
    files = sorted((lay.real_static / "soilgrids").glob("*.tif"))
    assert len(files) == 12
    out = open_soilgrids(lay.real_static / "soilgrids", units="g/kg")
    with xr.open_dataset(lay.soil) as ref:
        for name in ("sand_top", "clay_top", "sand_sub", "clay_sub"):
            # g/kg integers against percent with two decimals: within half a g/kg
            np.testing.assert_allclose(out[name].values, ref[name].values / 100.0, atol=5.1e-4)
