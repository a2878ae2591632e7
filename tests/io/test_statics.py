"""Static inputs in the layouts users download (issue 15 item 2): DEM tiles, land cover, SoilGrids."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from xsomo.conventions import GridSpec
from xsomo.drivers.features import subgrid_moments
from xsomo.exceptions import (
    DataFormatError,
    GridMismatchError,
    MissingVariableError,
    UnitError,
    XsomoValueError,
)
from xsomo.io.statics import (
    LANDCOVER_CLASSES,
    landcover_fractions,
    open_dem,
    open_landcover,
    open_soilgrids,
)

RES = 0.01


def write_tif(path: pathlib.Path, data: np.ndarray, west: float, north: float, *, nodata=None, dtype=None, res=(RES, RES)):
    """A north-up EPSG:4326 GeoTIFF of ``res`` = (dx, dy) degree pixels; ``data`` rows run north to south."""
    data = np.asarray(data)
    with rasterio.open(
        path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
        dtype=dtype or data.dtype, crs="EPSG:4326", transform=from_origin(west, north, *res),
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


def test_item2_dem_tile_gap_is_no_data_with_a_warning(tmp_path):
    """The Copernicus DEM has no tiles over open sea: a box no tile covers was an error ("add the
    missing tile", which does not exist; QA); it is NaN now, with a warning naming it."""
    with pytest.warns(RuntimeWarning, match=r"no tile covers 1 box\(es\) .*lon 10\.2\.\.10\.4, lat 45\.2\.\.45\.4"):
        dem = open_dem(_tiles(tmp_path / "dem", skip=(1, 0)))
    assert dem.sizes == {"lat": 40, "lon": 40}
    gap = (dem.lat > 45.2) & (dem.lon > 10.2)
    assert bool(dem.where(gap).isnull().all())
    expected = _elev(dem.lat.values[:, None], dem.lon.values[None, :])
    np.testing.assert_allclose(dem.where(~gap).values, np.where(gap, np.nan, expected), rtol=1e-6)
    with pytest.raises(MissingVariableError, match="no GeoTIFF"):
        open_dem(tmp_path / "nothing_*.tif")


def test_dem_tiles_overlapping_or_off_the_pixel_grid_are_named(tmp_path):
    """Overlapping tiles gave "Resulting object does not have monotonic global indexes", tiles
    offset by half a pixel "a gap ... add the missing tile" (QA). SRTM-style tiles sharing their
    edge row (one pixel) still mosaic, the row once."""
    root = _tiles(tmp_path / "dem")
    write_tif(root / "zz_copy.tif", np.zeros((20, 20), np.float32), 10.1, 45.3)
    with pytest.raises(DataFormatError, match=r"overlap .*a tile given twice"):
        open_dem(root)
    (root / "zz_copy.tif").unlink()
    write_tif(root / "zz_half.tif", np.zeros((20, 20), np.float32), 10.4 + RES / 2, 45.4)
    with pytest.raises(DataFormatError, match=r"zz_half.tif is not on the pixel grid of dem_00.tif \(offset by [+-]0.5"):
        open_dem(root)
    srtm = tmp_path / "srtm"
    srtm.mkdir()
    for south in (45.0, 45.2):  # 21 rows each: the row at 45.2 in both
        lat = south + 0.2 + RES / 2 - RES * (np.arange(21) + 0.5)
        write_tif(srtm / f"N{south}.tif", np.repeat(lat[:, None], 10, axis=1).astype(np.float32), 10.0, south + 0.2 + RES / 2)
    dem = open_dem(srtm)
    assert dem.sizes["lat"] == 41 and bool(dem.indexes["lat"].is_unique)
    np.testing.assert_allclose(dem.values[:, 0], dem.lat.values, atol=1e-4)


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


def test_soilgrids_depths_downloaded_with_other_boxes_share_one_grid_or_are_refused(tmp_path):
    """Depth files from WCS requests of different boxes were added by their float coordinates:
    a box 3 pixels off gave NaN in 3 columns of every pixel row, half a pixel off all NaN, without
    a word (QA). On the same pixel lattice they are cropped to the area all cover; off it (part of
    a pixel, another pixel size) the file is refused, named."""
    sg = tmp_path / "sg"
    vals = _soil(sg)
    v = vals[("sand", 5, 15)].astype(np.int16)
    write_tif(sg / "sand_5-15cm_mean.tif", v, 10.0 + 3 * RES, 45.08, nodata=-32768)  # 3 pixels east
    out = open_soilgrids(sg)
    a, b, c = vals[("sand", 0, 5)][:, 3:], vals[("sand", 5, 15)][:, :5], vals[("sand", 15, 30)][:, 3:]
    np.testing.assert_allclose(out["sand_top"].values, ((5 * a + 10 * b + 15 * c) / 30 / 1000)[::-1], rtol=1e-5)
    assert out["sand_top"].shape == (8, 5) and not out["sand_top"].isnull().any()
    np.testing.assert_allclose(out["lon"].values, 10.0 + RES * (np.arange(3, 8) + 0.5))
    for name in ("clay_top", "sand_sub", "clay_sub"):  # one grid for every variable
        assert not out[name].isnull().any() and out[name].shape == (8, 5)
    write_tif(sg / "sand_5-15cm_mean.tif", v, 10.0 + RES / 2, 45.08, nodata=-32768)  # half a pixel
    with pytest.raises(DataFormatError, match=r"sand_5-15cm_mean.tif is not on the pixel grid of .*offset by [+-]0\.5 pixels.*gdalwarp"):
        open_soilgrids(sg)
    write_tif(sg / "sand_5-15cm_mean.tif", v, 10.0, 45.08, nodata=-32768, res=(RES / 2, RES / 2))
    with pytest.raises(DataFormatError, match=r"sand_5-15cm_mean.tif is not on the pixel grid .*pixels of 0.005 degrees, not 0.01"):
        open_soilgrids(sg)
    write_tif(sg / "sand_5-15cm_mean.tif", v, 11.0, 45.08, nodata=-32768)
    with pytest.raises(DataFormatError, match=r"no lon in common"):
        open_soilgrids(sg)


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


def _tagged_tif(path, data, *, scale=None, offset=None, units=None, nodata=None):
    write_tif(path, data, 10.0, 45.0 + RES * data.shape[0], nodata=nodata)
    with rasterio.open(path, "r+") as dst:
        if scale is not None:
            dst.scales = (scale,)
        if offset is not None:
            dst.offsets = (offset,)
        if units is not None:
            dst.units = (units,)
    return path


def test_geotiff_scale_offset_and_band_units_are_applied(tmp_path):
    """A DEM in int16 decimetres with scale 0.1, one with an offset of 500 m and one tagged in
    feet had been read as 5000 m, 0 m and 500 m; SoilGrids in percent tagged '%' but declared
    g/kg had been read 10x too small (QA)."""
    z = np.full((10, 10), 5000, np.int16)
    assert float(open_dem(_tagged_tif(tmp_path / "dm.tif", z, scale=0.1, nodata=-32768)).mean()) == pytest.approx(500.0)
    zero = np.zeros((10, 10), np.int16)
    assert float(open_dem(_tagged_tif(tmp_path / "off.tif", zero, offset=500.0)).mean()) == pytest.approx(500.0)
    ft = np.full((10, 10), 500.0, np.float32)
    dem = open_dem(_tagged_tif(tmp_path / "ft.tif", ft, units="ft"))
    assert float(dem.mean()) == pytest.approx(152.4, rel=1e-6) and dem.attrs["units"] == "m"
    (tmp_path / "two").mkdir()
    _tagged_tif(tmp_path / "two" / "a.tif", ft, units="ft")
    write_tif(tmp_path / "two" / "b.tif", ft, 10.1, 45.1)
    with pytest.raises(DataFormatError, match=r"different units \(a.tif: 'ft', b.tif: None\)"):
        open_dem(tmp_path / "two")
    sg = tmp_path / "sg"
    _soil(sg)
    for f in sg.glob("sand_0-5cm_mean.tif"):
        with rasterio.open(f, "r+") as dst:
            dst.units = ("%",)
    with pytest.raises(DataFormatError, match=r"sand_0-5cm_mean.tif is tagged in '%' but units='g/kg'"):
        open_soilgrids(sg)


def test_dem_voids_without_nodata_are_found_on_every_pixel(tmp_path):
    """Voids of -32768 without a nodata tag between the sampled pixels had passed the strided
    check (cell means 3 m low, sub-grid std 314 m; QA): every pixel is checked when read."""
    n = 1500
    z = np.full((2 * n, n), 500, np.int16)
    z[1001, 1001] = -32768  # off the sample's stride of 3
    path = tmp_path / "void.tif"
    with rasterio.open(path, "w", driver="GTiff", height=z.shape[0], width=z.shape[1], count=1, dtype="int16",
                       crs="EPSG:4326", transform=from_origin(0.0, 2.0, 1 / n, 1 / n)) as dst:  # fmt: skip
        dst.write(z, 1)
    dem = open_dem(path)  # the sample passes
    with pytest.raises(UnitError, match="fill values"):
        dem.mean().compute()


def test_continuous_or_resampled_maps_are_not_read_as_classes(tmp_path):
    """A 0-1 forest-fraction map given as esa_cci became class 0 everywhere (all NaN, and prepare
    wrote it); bilinearly resampled codes (50.4, 70.2) were truncated to classes (QA)."""
    frac = np.linspace(0.0, 1.0, 36, dtype=np.float32).reshape(6, 6)
    write_tif(tmp_path / "frac.tif", frac, 10.0, 45.06)
    with pytest.raises(XsomoValueError, match="not whole class codes of esa_cci"):
        open_landcover(tmp_path / "frac.tif", "esa_cci")
    write_tif(tmp_path / "bilinear.tif", np.full((6, 6), 50.4, np.float32), 10.0, 45.06)
    with pytest.raises(XsomoValueError, match=r"50\.4.* resampled bilinearly"):
        open_landcover(tmp_path / "bilinear.tif", "esa_cci")
    write_tif(tmp_path / "empty.tif", np.zeros((6, 6), np.uint8), 10.0, 45.06)
    with pytest.raises(XsomoValueError, match="holds no cgls_lc100 class"):
        open_landcover(tmp_path / "empty.tif", "cgls_lc100")


def test_soilgrids_reads_the_means_and_refuses_overlaps(tmp_path):
    """The ISRIC folder holds Q0.05, Q0.5, Q0.95 and uncertainty maps beside the means: the last
    in sort order, '_uncertainty', was read (sand 0.012 for 0.233); a 0-30 cm map beside 0-5, 5-15
    and 15-30 cm was counted twice (0.60 for 0.30; QA)."""
    sg = tmp_path / "sg"
    vals = _soil(sg)
    want = open_soilgrids(sg)
    for t, b in DEPTHS:
        for stat in ("Q0.05", "Q0.5", "Q0.95", "uncertainty"):
            write_tif(sg / f"sand_{t}-{b}cm_{stat}.tif", np.full((8, 8), 3, np.int16), 10.0, 45.08)
    got = open_soilgrids(sg)
    np.testing.assert_array_equal(got["sand_top"].values, want["sand_top"].values)
    assert vals  # (the means are _soil's values)
    write_tif(sg / "sand_0-30cm_mean.tif", np.full((8, 8), 300, np.int16), 10.0, 45.08)
    with pytest.raises(DataFormatError, match=r"0-5 cm \(sand_0-5cm_mean.tif\) and 0-30 cm \(sand_0-30cm_mean.tif\) overlap"):
        open_soilgrids(sg)
    (sg / "sand_0-30cm_mean.tif").unlink()
    write_tif(sg / "sand_0-5cm.tif", np.full((8, 8), 300, np.int16), 10.0, 45.08)
    with pytest.raises(DataFormatError, match=r"two files, sand_0-5cm\.tif and sand_0-5cm_mean\.tif"):
        open_soilgrids(sg)
    only_q = tmp_path / "q"
    only_q.mkdir()
    for prop in ("sand", "clay"):
        for t, b in DEPTHS:
            write_tif(only_q / f"{prop}_{t}-{b}cm_Q0.5.tif", np.full((8, 8), 300, np.int16), 10.0, 45.08)
    with pytest.raises(MissingVariableError, match=r"the mean maps only; skipped \['sand_0-5cm_Q0.5.tif'"):
        open_soilgrids(only_q)


def test_signed_byte_classes_get_a_hint():
    """An ESA CCI class layer stored as signed bytes without _Unsigned read 190 as -66 (QA)."""
    import xarray as xr

    da = xr.DataArray(np.array([[50, -66], [10, 120]], np.int8), dims=("lat", "lon"))
    with pytest.raises(XsomoValueError, match=r"unsigned bytes read as signed \(-66 is 190\)"):
        landcover_fractions(da, "esa_cci")


# ------------------------------------------------------------ DEM tiles of several pixel sizes
#: The Copernicus DEM's tiles widen in longitude north of 50 deg N (GLO-90: 3" x 3" south of it,
#: 4.5" x 3" at 50-60 deg N); here at 100x scale: 0.01 x 0.01 deg south of 45.3 N, 0.015 x 0.01 north.
SOUTH_PX, NORTH_PX = (0.01, 0.01), (0.015, 0.01)
COLUMNS = (10.0, 10.3, 10.6)  # tiles of 0.3 x 0.3 deg: 30 x 30 and 20 x 30 pixels


def _relief(lat, lon):
    """Elevation (m) with sub-grid relief at the scale of the pixels."""
    return 800.0 + 300.0 * np.sin(lat * 9.0) + 200.0 * np.cos(lon * 7.0) + 60.0 * np.sin(lat * 140.0) * np.cos(lon * 110.0)


def _mixed_tiles(root: pathlib.Path, skip=(), half_pixel=False):
    """Two rows of three tiles, the northern of wider pixels; ``skip`` holds (row, column) pairs
    left out. ``half_pixel``: the Copernicus DEM's layout, each tile half a pixel west and north
    of the whole degrees (its pixel centres on them), so the rows' edges differ by a quarter pixel.
    Returns the tiles as (west, north, (dx, dy), data) for the oracle."""
    root.mkdir(exist_ok=True)
    tiles = []
    for row, (south, (dx, dy)) in enumerate(((45.0, SOUTH_PX), (45.3, NORTH_PX))):
        for col, west in enumerate(COLUMNS):
            if (row, col) in skip:
                continue
            if half_pixel:
                west, north = west - dx / 2, south + 0.3 + dy / 2
            else:
                north = south + 0.3
            lat = north - dy * (np.arange(round(0.3 / dy)) + 0.5)
            lon = west + dx * (np.arange(round(0.3 / dx)) + 0.5)
            data = _relief(lat[:, None], lon[None, :]).astype(np.float32)
            write_tif(root / f"dem_{row}{col}.tif", data, west, north, res=(dx, dy))
            tiles.append((west, north, (dx, dy), data.astype(np.float64)))
    return root, tiles


def _overlap(lo, hi, cell_lo, cell_hi):
    """Overlap lengths of the intervals [lo, hi] (pixels) with [cell_lo, cell_hi] (cells), (cells, pixels)."""
    return np.clip(np.minimum(hi[None, :], cell_hi[:, None]) - np.maximum(lo[None, :], cell_lo[:, None]), 0.0, None)


def _oracle(tiles, grid):
    """Mean and std of all fine pixels in each cell of ``grid``, weighted by the area (on the
    sphere) each pixel has in the cell; NaN pixels skipped, NaN where a cell has none."""
    edges_lat = grid.south + grid.resolution * np.arange(grid.nlat + 1)
    edges_lon = grid.west + grid.resolution * np.arange(grid.nlon + 1)
    s0, s1, s2 = (np.zeros(grid.shape) for _ in range(3))
    for west, north, (dx, dy), data in tiles:
        z = data[::-1]  # south to north
        lat_lo = north - dy * data.shape[0] + dy * np.arange(data.shape[0])
        lon_lo = west + dx * np.arange(data.shape[1])
        # the area on the sphere: the overlap in sin(latitude) times the overlap in longitude
        w_lat = np.clip(
            np.sin(np.deg2rad(np.minimum(lat_lo[None, :] + dy, edges_lat[1:, None])))
            - np.sin(np.deg2rad(np.maximum(lat_lo[None, :], edges_lat[:-1, None]))),
            0.0, None,
        )  # fmt: skip
        w_lon = _overlap(lon_lo, lon_lo + dx, edges_lon[:-1], edges_lon[1:])
        valid = np.isfinite(z)
        zz = np.where(valid, z, 0.0)
        s0 += w_lat @ valid.astype(float) @ w_lon.T
        s1 += w_lat @ zz @ w_lon.T
        s2 += w_lat @ (zz * zz) @ w_lon.T
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(s0 > 0, s1 / s0, np.nan)
        std = np.sqrt(np.clip(np.where(s0 > 0, s2 / s0, np.nan) - mean**2, 0.0, None))
    return mean, std


#: aligned with the tiles; offset by half a cell (the row at 45.25-45.35 straddles the two pixel
#: sizes); 0.25 deg cells (45.25-45.5 straddles them too)
MIXED_GRIDS = [
    GridSpec(10.0, 10.9, 45.0, 45.6, 0.1),
    GridSpec(10.05, 10.85, 45.05, 45.55, 0.1),
    GridSpec(10.0, 10.75, 45.0, 45.5, 0.25),
]


def test_dem_tiles_of_two_pixel_sizes_give_the_moments_of_all_fine_pixels(tmp_path):
    """The Copernicus DEM's tiles widen north of 50 deg N: tiles of several pixel sizes had been
    refused (resample with gdalwarp first, which also changes the sub-grid std). Each pixel size
    is mosaicked alone and the moments are pooled per cell, exactly as the moments of all the
    fine pixels in it, also in cells that straddle the two sizes."""
    root, tiles = _mixed_tiles(tmp_path / "dem")
    dem = open_dem(root)
    assert isinstance(dem, tuple) and len(dem) == 2
    fine, wide = dem
    assert fine.chunks is not None and wide.chunks is not None  # lazy (dask)
    assert fine.sizes == {"lat": 30, "lon": 90} and wide.sizes == {"lat": 30, "lon": 60}
    np.testing.assert_allclose(np.diff(wide.lon), 0.015, rtol=1e-9)
    np.testing.assert_allclose(wide.values, _relief(wide.lat.values[:, None], wide.lon.values[None, :]), rtol=1e-6)
    assert wide.attrs["units"] == "m"
    for grid in MIXED_GRIDS:
        mean, std = subgrid_moments(dem, grid)
        want_mean, want_std = _oracle(tiles, grid)
        assert mean.shape == grid.shape and mean.dtype == np.float32
        np.testing.assert_allclose(mean.values, want_mean, rtol=1e-5, err_msg=str(grid))
        np.testing.assert_allclose(std.values, want_std, rtol=1e-4, err_msg=str(grid))
    # the pooling matters where a cell straddles the sizes: the std of all its pixels is not
    # the area-weighted mean of the two parts' stds
    grid = MIXED_GRIDS[1]
    south = _oracle([t for t in tiles if t[2] == SOUTH_PX], grid)[1][2]
    north = _oracle([t for t in tiles if t[2] == NORTH_PX], grid)[1][2]
    pooled = subgrid_moments(dem, grid)[1].values[2]
    assert np.abs(pooled - (south + north) / 2).max() > 0.01 * pooled.max()


def test_mixed_pixel_sizes_in_the_copernicus_layout(tmp_path):
    """The Copernicus DEM's tiles sit half a pixel west and north of the whole degrees, so the
    rows of two pixel sizes end a fraction of a pixel apart: those slivers are no gap (no
    warning), and the moments still match the oracle."""
    import warnings

    root, tiles = _mixed_tiles(tmp_path / "dem", half_pixel=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dem = open_dem(root)
    assert not [w for w in caught if "no tile covers" in str(w.message)]
    for grid in (MIXED_GRIDS[1], GridSpec(10.1, 10.8, 45.1, 45.6, 0.1)):  # (the tiles start at 45.005 N)
        mean, std = subgrid_moments(dem, grid)
        want_mean, want_std = _oracle(tiles, grid)
        np.testing.assert_allclose(mean.values, want_mean, rtol=1e-5)
        np.testing.assert_allclose(std.values, want_std, rtol=1e-4)


def test_mixed_pixel_sizes_with_gaps(tmp_path):
    """A box of the layout no tile covers (open sea) is no data, named in one warning: inside one
    pixel size's rows (filled in its mosaic) and at the edge; cells no tile reaches are NaN,
    cells partly covered get the moments of their pixels; a grid beyond all tiles is refused."""
    root, tiles = _mixed_tiles(tmp_path / "dem", skip={(1, 1), (0, 2)})
    with pytest.warns(RuntimeWarning, match=r"no tile covers 2 box\(es\) .*lon 10\.3\.\.10\.6, lat 45\.3\.\.45\.6"):
        dem = open_dem(root)
    _, wide = dem
    assert wide.sizes == {"lat": 30, "lon": 60}  # the middle filled with no data
    assert bool(wide.sel(lon=slice(10.3, 10.6)).isnull().all())
    for grid in MIXED_GRIDS:
        mean, std = subgrid_moments(dem, grid)
        want_mean, want_std = _oracle(tiles, grid)
        np.testing.assert_array_equal(np.isnan(mean.values), np.isnan(want_mean))
        np.testing.assert_allclose(mean.values, want_mean, rtol=1e-5)
        np.testing.assert_allclose(std.values, want_std, rtol=1e-4)
    mean = subgrid_moments(dem, MIXED_GRIDS[0])[0]
    assert bool(mean.sel(lat=45.45, lon=10.45).isnull()) and bool(mean.sel(lat=45.15, lon=10.75).isnull())
    with pytest.raises(GridMismatchError, match=r"cover lat 45\.\.45\.6, lon 10\.\.10\.9, which does not cover the target grid"):
        subgrid_moments(dem, GridSpec(10.0, 11.0, 45.0, 45.6, 0.1))


def test_mixed_pixel_sizes_still_refuse_off_lattice_and_overlapping_tiles(tmp_path):
    root, _ = _mixed_tiles(tmp_path / "dem")
    write_tif(root / "zz_half.tif", np.zeros((30, 20), np.float32), 10.9 + NORTH_PX[0] / 2, 45.6, res=NORTH_PX)
    with pytest.raises(DataFormatError, match=r"zz_half.tif is not on the pixel grid of dem_10.tif \(offset by [+-]0.5 x \+0 pixels of 0.015 x 0.01 degrees"):
        open_dem(root)
    (root / "zz_half.tif").unlink()
    write_tif(root / "zz_over.tif", np.zeros((30, 30), np.float32), 10.6, 45.45)  # fine pixels over the wide row
    with pytest.raises(DataFormatError, match=r"dem_\d\d.tif and zz_over.tif overlap"):
        open_dem(root)
    (root / "zz_over.tif").unlink()
    # land-cover classes of several pixel sizes are refused (resample them by mode)
    write_tif(root / "lc_a.tif", np.full((30, 30), 50, np.uint8), 10.0, 45.3)
    write_tif(root / "lc_b.tif", np.full((30, 20), 50, np.uint8), 10.0, 45.6, res=NORTH_PX)
    with pytest.raises(DataFormatError, match=r"different pixel sizes .*-r mode"):
        open_landcover([root / "lc_a.tif", root / "lc_b.tif"], "esa_cci")
