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
