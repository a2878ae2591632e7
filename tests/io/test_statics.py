"""Static inputs in the layouts users download (issue 15 item 2): DEM tiles, land cover, SoilGrids."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from xsomo.exceptions import DataFormatError, MissingVariableError, UnitError, XsomoValueError
from xsomo.io.statics import (
    LANDCOVER_CLASSES,
    landcover_fractions,
    open_dem,
    open_landcover,
    open_soilgrids,
)

RES = 0.01


def write_tif(path: pathlib.Path, data: np.ndarray, west: float, north: float, *, nodata=None, dtype=None):
    """A north-up EPSG:4326 GeoTIFF; ``data`` rows run north to south."""
    data = np.asarray(data)
    with rasterio.open(
        path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
        dtype=dtype or data.dtype, crs="EPSG:4326", transform=from_origin(west, north, RES, RES),
        nodata=nodata,
    ) as dst:
        dst.write(data.astype(dtype or data.dtype), 1)
    return path


def _elev(lat, lon):
    return (100.0 + 50.0 * np.sin(lat * 7.0) + 30.0 * np.cos(lon * 5.0)).astype(np.float32)


def _tiles(root: pathlib.Path, skip=None):
    """2 x 2 tiles of 0.2 degrees (20 x 20 pixels) over 10.0-10.4 E, 45.0-45.4 N."""
    root.mkdir(exist_ok=True)
    for i, west in enumerate((10.0, 10.2)):
        for j, north in enumerate((45.4, 45.2)):
            if skip == (i, j):
                continue
            lat = north - RES * (np.arange(20) + 0.5)
            lon = west + RES * (np.arange(20) + 0.5)
            write_tif(root / f"dem_{i}{j}.tif", _elev(lat[:, None], lon[None, :]), west, north)
    return root


def test_item2_dem_tiles_mosaic_lazily_against_the_formula(tmp_path):
    dem = open_dem(_tiles(tmp_path / "dem"))
    assert dem.chunks is not None  # lazy (dask)
    assert dem.sizes == {"lat": 40, "lon": 40} and (np.diff(dem.lat) > 0).all()
    expected = _elev(dem.lat.values[:, None], dem.lon.values[None, :])
    np.testing.assert_allclose(dem.values, expected, rtol=1e-6)
    assert dem.attrs["units"] == "m"
    # the same through a glob and a list
    assert open_dem(str(tmp_path / "dem" / "dem_*.tif")).equals(dem)


def test_item2_dem_tile_gap_named(tmp_path):
    with pytest.raises(DataFormatError, match=r"gap at lon 10\.2\.\.10\.4, lat 45\.2\.\.45\.4"):
        open_dem(_tiles(tmp_path / "dem", skip=(1, 0)))
    with pytest.raises(MissingVariableError, match="no GeoTIFF"):
        open_dem(tmp_path / "nothing_*.tif")


def test_item2_dem_in_feet_refused(tmp_path):
    lat = 45.2 - RES * (np.arange(20) + 0.5)
    write_tif(tmp_path / "ft.tif", np.full((20, 20), 12000.0, np.float32), 10.0, 45.2)
    assert lat.size == 20
    with pytest.raises(UnitError, match="elevation"):
        open_dem(tmp_path / "ft.tif")


@pytest.mark.parametrize("kind", ["esa_cci", "cgls_lc100"])
def test_item2_landcover_classes_to_fractions(tmp_path, kind):
    table = LANDCOVER_CLASSES[kind]
    codes = np.resize(np.array([*sorted(table), 0], dtype=np.uint8), (6, 6))
    write_tif(tmp_path / "lc.tif", codes, 10.0, 45.06)
    out = open_landcover(tmp_path / "lc.tif", kind)
    flat = codes[::-1].ravel()  # ascending latitude
    exp_f = np.array([table[c][0] if c else np.nan for c in flat]).reshape(6, 6)
    exp_s = np.array([table[c][1] if c else np.nan for c in flat]).reshape(6, 6)
    np.testing.assert_allclose(out["forest_fraction"].values, exp_f, rtol=1e-6)
    np.testing.assert_allclose(out["shortveg_fraction"].values, exp_s, rtol=1e-6)
    assert np.nanmax(out["forest_fraction"] + out["shortveg_fraction"]) <= 1.0


def test_item2_landcover_wrong_kind_refused(tmp_path):
    write_tif(tmp_path / "lc.tif", np.full((4, 4), 111, np.uint8), 10.0, 45.04)  # CGLS closed forest
    with pytest.raises(XsomoValueError, match=r"\[111\] are not esa_cci classes"):
        open_landcover(tmp_path / "lc.tif", "esa_cci")
    with pytest.raises(XsomoValueError, match="kind 'modis'"):
        landcover_fractions(open_landcover(tmp_path / "lc.tif", "cgls_lc100")["forest_fraction"], "modis")


DEPTHS = [(0, 5), (5, 15), (15, 30), (30, 60), (60, 100), (100, 200)]


def _soil(root: pathlib.Path, skip=()):
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(4)
    vals = {}
    for prop, base in (("sand", 450), ("clay", 200)):
        for t, b in DEPTHS:
            if (prop, t) in skip:
                continue
            v = (base + rng.integers(-100, 100, (8, 8))).astype(np.int16)  # g/kg
            vals[(prop, t, b)] = v.astype(float)
            write_tif(root / f"{prop}_{t}-{b}cm_mean.tif", v, 10.0, 45.08, nodata=-32768)
    return vals


def test_item2_soilgrids_depth_weighted_fractions(tmp_path):
    vals = _soil(tmp_path / "sg")
    out = open_soilgrids(tmp_path / "sg")
    for prop in ("sand", "clay"):
        top = (5 * vals[(prop, 0, 5)] + 10 * vals[(prop, 5, 15)] + 15 * vals[(prop, 15, 30)]) / 30 / 1000
        sub = (30 * vals[(prop, 30, 60)] + 40 * vals[(prop, 60, 100)]) / 70 / 1000
        np.testing.assert_allclose(out[f"{prop}_top"].values, top[::-1], rtol=1e-5)
        np.testing.assert_allclose(out[f"{prop}_sub"].values, sub[::-1], rtol=1e-5)
        assert out[f"{prop}_top"].attrs["units"] == "1"


def test_item2_soilgrids_missing_interval_and_wrong_units(tmp_path):
    _soil(tmp_path / "gap", skip={("clay", 30)})
    with pytest.raises(MissingVariableError, match=r"clay: the intervals .* do not cover 30-100 cm"):
        open_soilgrids(tmp_path / "gap")
    _soil(tmp_path / "sg")
    with pytest.raises(UnitError, match="sand_top"):
        open_soilgrids(tmp_path / "sg", units="percent")  # g/kg values read as percent


def test_esa_cci_landcover_in_the_cds_netcdf_layout(tmp_path):
    """The CDS's satellite-land-cover netCDF: lccs_class beside processed_flag and a 0-d crs, a
    size-1 time axis and descending latitude; read as the same fractions as the one-band file."""
    import pandas as pd
    import xarray as xr

    table = LANDCOVER_CLASSES["esa_cci"]
    codes = np.resize(np.array(sorted(table), dtype=np.uint8), (6, 6))
    lat = 45.06 - RES * (np.arange(6) + 0.5)  # north to south, as the product
    lon = 10.0 + RES * (np.arange(6) + 0.5)
    ds = xr.Dataset(
        {
            "lccs_class": (("time", "lat", "lon"), codes[None]),
            "processed_flag": (("time", "lat", "lon"), np.ones((1, 6, 6), np.uint8)),
            "crs": ((), np.int32(0)),
        },
        coords={"time": [pd.Timestamp("2015-01-01")], "lat": lat, "lon": lon},
    )
    ds.to_netcdf(tmp_path / "C3S-LC-L4-LCCS-Map-300m-P1Y-2015-v2.1.1.nc")
    write_tif(tmp_path / "lc.tif", codes, 10.0, 45.06)
    got = open_landcover(tmp_path / "C3S-LC-L4-LCCS-Map-300m-P1Y-2015-v2.1.1.nc", "esa_cci").compute()
    want = open_landcover(tmp_path / "lc.tif", "esa_cci").compute()
    assert got.sizes == {"lat": 6, "lon": 6} and "time" not in got.coords
    np.testing.assert_allclose(got["lat"].values, want["lat"].values, atol=1e-9)
    np.testing.assert_array_equal(got["forest_fraction"].values, want["forest_fraction"].values)
    np.testing.assert_array_equal(got["shortveg_fraction"].values, want["shortveg_fraction"].values)
    # without a known class layer: two maps are ambiguous, and several years are refused
    ds.rename(lccs_class="classes").to_netcdf(tmp_path / "two.nc")
    with pytest.raises(DataFormatError, match=r"2 map variables \['classes', 'processed_flag'\].*variable="):
        open_landcover(tmp_path / "two.nc", "esa_cci")
    years = xr.concat([ds, ds.assign_coords(time=[pd.Timestamp("2016-01-01")])], "time", data_vars="minimal")
    years.to_netcdf(tmp_path / "years.nc")
    with pytest.raises(DataFormatError, match="select one time first"):
        open_landcover(tmp_path / "years.nc", "esa_cci")
