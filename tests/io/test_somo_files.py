"""The helper SoMo files carry EPSG:4326 for GDAL."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from somo_files import GRID, expected_value, write_somo_files


def test_helper_files_carry_epsg4326_for_gdal(tmp_path: pathlib.Path) -> None:
    """rasterio (GDAL's netCDF driver) reads the helper's grid mapping as EPSG:4326, north-up."""
    import rasterio

    (p,) = write_somo_files(tmp_path, layers=(1,), years=(2010,), days=3)
    with rasterio.open(f"netcdf:{p}:layer1") as src:
        assert src.crs.to_epsg() == 4326
        assert src.transform.e < 0  # north-up
        assert src.bounds.left == pytest.approx(GRID.west)
        assert src.bounds.top == pytest.approx(GRID.north)
        first = src.read(1)
    expected = expected_value(
        1, np.array(["2010-01-01"], dtype="datetime64[ns]"), GRID.lat[::-1], GRID.lon
    )[0]
    np.testing.assert_allclose(first, expected, rtol=0, atol=1e-7)


def test_a_layer_or_year_without_files_is_named(tmp_path: pathlib.Path) -> None:
    """Files of layers 1-2 only, asked for layer 3: it said "no SoMo.ml files named like
    'SoMo.ml-EU_layer1_2010.nc'" (hostile-input QA)."""
    from xsomo.io.somo import find_somo_files

    write_somo_files(tmp_path, layers=(1, 2), years=(2010, 2011), days=3)
    assert len(find_somo_files(tmp_path, layers=[2])) == 2
    with pytest.raises(FileNotFoundError, match=r"no SoMo.ml file of layer\(s\) \[3\] among its 4 files \(layers \[1, 2\], years 2010-2011\)"):
        find_somo_files(tmp_path, layers=[3])
    with pytest.raises(FileNotFoundError, match=r"no SoMo.ml file of year\(s\) \[2015\] among its 4 files"):
        find_somo_files(tmp_path, years=[2015])
