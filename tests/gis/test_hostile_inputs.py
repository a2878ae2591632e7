"""GIS functions against hostile inputs (the QA pass of /tmp/qa_gis): each would otherwise
write a misplaced pixel or a silently wrong number, or leave debris behind."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import XsomoValueError
from xsomo.gis.export import stale_temporaries, to_cog

LAT = np.round(np.arange(46.45, 44.99, -0.1), 2)  # 15 rows, north to south
LON = np.round(np.arange(5.05, 7.0, 0.1), 2)  # 20 columns


@pytest.fixture
def day() -> xr.DataArray:
    """A map whose value encodes its own cell: 100 * lat + lon."""
    return xr.DataArray(
        np.add.outer(LAT * 100, LON).astype("f4"), coords={"lat": LAT, "lon": LON}, dims=("lat", "lon"), name="sm"
    )


def _misplaced(path: pathlib.Path, da: xr.DataArray) -> int:
    with rasterio.open(path) as r:
        pts = [(float(lo), float(la)) for la in da.lat.values for lo in da.lon.values]
        got = np.array([v[0] for v in r.sample(pts)])
    want = np.array([float(da.sel(lat=la, lon=lo)) for lo, la in pts], dtype="f4")
    return int((got != want).sum())


@pytest.mark.parametrize(
    "pick",
    [
        {"lon": slice(None, None, -1)},  # descending longitude
        {"lat": [3, 1, 2, 0, 4]},  # rows in arbitrary order
        {"lat": slice(None, None, -1)},  # ascending latitude
    ],
)
def test_cog_of_unsorted_coordinates_places_every_cell(day: xr.DataArray, pick: dict, tmp_path: pathlib.Path) -> None:
    sub = day.isel(pick)
    path = to_cog(sub, tmp_path / "m.tif", style=False)
    assert _misplaced(path, sub) == 0
    with rasterio.open(path) as r:
        assert r.transform.a > 0 and r.transform.e < 0  # north-up, west to east


@pytest.mark.parametrize("pick", [{"lon": [0, 1, 2, 7, 8, 9]}, {"lat": [0, 1, 5, 6, 7]}])
def test_cog_refuses_a_grid_with_missing_rows_or_columns(day: xr.DataArray, pick: dict, tmp_path: pathlib.Path) -> None:
    dim = next(iter(pick))
    with pytest.raises(XsomoValueError, match=rf"{dim} coordinates are not a regular grid.*reindex {dim}"):
        to_cog(day.isel(pick), tmp_path / "m.tif", style=False)
    assert not (tmp_path / "m.tif").exists()


def test_cog_of_different_steps_in_lat_and_lon(day: xr.DataArray, tmp_path: pathlib.Path) -> None:
    coarse = day.coarsen(lat=3, lon=4).mean()  # 0.3° rows, 0.4° columns
    path = to_cog(coarse, tmp_path / "c.tif", style=False)
    assert _misplaced(path, coarse) == 0
    with rasterio.open(path) as r:
        assert (r.transform.a, r.transform.e) == pytest.approx((0.4, -0.3), abs=1e-9)


def test_cog_geotransform_is_the_exact_tenth(day: xr.DataArray, tmp_path: pathlib.Path) -> None:
    from affine import Affine

    for sub in (day, day.isel(lat=[4]), day.isel(lat=[4], lon=[4])):
        with rasterio.open(to_cog(sub, tmp_path / "m.tif", style=False)) as r:
            west = float(np.round(sub.lon.values.min() - 0.05, 6))
            north = float(np.round(sub.lat.values.max() + 0.05, 6))
            assert r.transform == Affine(0.1, 0.0, west, 0.0, -0.1, north)  # bit for bit, not 0.0999…


def test_cog_of_a_30_arc_second_map_places_the_far_pixels(tmp_path: pathlib.Path) -> None:
    """A 1/120° map: the step had been rounded to 0.008333, so the last of 3 000 columns lay 0.12 of
    a pixel west of its centre in the GeoTIFF (sampled at its centre it was still right, so the
    transform is checked)."""
    n = 3000
    lon = 5 + (np.arange(n) + 0.5) / 120
    lat = 45 + (np.arange(3) + 0.5)[::-1] / 120
    da = xr.DataArray(np.tile(np.arange(n, dtype="f4"), (3, 1)), coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    with rasterio.open(to_cog(da, tmp_path / "f.tif", style=False)) as r:
        assert r.transform.a == 1 / 120 and r.transform.c == 5.0
        x_last = r.transform.c + r.transform.a * (n - 0.5)
        assert abs(x_last - lon[-1]) < 1e-3 / 120
        assert [v[0] for v in r.sample([(float(lon[-1]), float(lat[1])), (float(lon[0]), float(lat[1]))])] == [n - 1, 0]


def test_cog_removes_the_temporaries_of_a_killed_run(day: xr.DataArray, tmp_path: pathlib.Path) -> None:
    stale = [tmp_path / ".m.ab12cd_9.tmp.tif", tmp_path / ".m.ab12cd_9.tmp.tif.ovr.tmp"]
    others = [tmp_path / ".m.x.ab12cd_9.tmp.tif", tmp_path / ".mm.ab12cd_9.tmp.tif", tmp_path / "m.tif.tmp"]
    for p in stale + others:
        p.write_bytes(b"partial")
    assert stale_temporaries(tmp_path / "m.tif") == sorted(stale)
    to_cog(day, tmp_path / "m.tif", style=False)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in others)  # another target's (m.x.tif, mm.tif) or not ours


def test_stale_temporaries_have_one_definition() -> None:
    import xsomo.gis.export
    import xsomo.io.atomic

    assert xsomo.gis.export.stale_temporaries is xsomo.io.atomic.stale_temporaries
    assert xsomo.gis.export.remove_stale_temporaries is xsomo.io.atomic.remove_stale_temporaries


def test_time_stack_refuses_files_on_another_grid(tmp_path: pathlib.Path) -> None:
    from xsomo.exceptions import GridMismatchError
    from xsomo.gis.export import to_time_stack
    from xsomo.prediction.output import to_files

    grid = cv.GridSpec(west=0.0, east=1.0, south=40.0, north=41.0)
    for year, shift in ((2015, 0.0), (2016, 0.5)):
        t = pd.date_range(f"{year}-01-01", f"{year}-01-05")
        coords = {**grid.coords(), **cv.layer_coords([1])}
        coords["lon"] = coords["lon"] + shift
        sm = xr.DataArray(np.full((1, t.size, grid.nlat, grid.nlon), 0.2, "f4"), dims=("layer", "time", "lat", "lon"),
                          coords={"time": t, **coords})
        to_files(sm.to_dataset(name="sm"), tmp_path / "in", progress=False)
    with pytest.raises(GridMismatchError, match=r"SoMo.ml-EU_layer1_2016.nc.*grid differs"):
        to_time_stack(tmp_path / "in", tmp_path / "s.vrt", layer=1)
    assert not (tmp_path / "s.vrt").exists()


# ----------------------------------------------------------------------------- polygons


def _wet_east() -> xr.DataArray:
    """Four years on a grid across 0°E: 0.2 west of 0°, 0.3 east of it, plus 0.01 (year - 2015)²."""
    g = cv.GridSpec(west=-2.0, east=2.0, south=40.0, north=42.0)
    t = pd.date_range("2015-01-01", "2018-12-31")
    x = np.where(g.lon > 0, 0.3, 0.2)[None, None, :] + 0.01 * (t.year.to_numpy() - 2015)[:, None, None] ** 2
    x = np.broadcast_to(x, (t.size, g.nlat, g.nlon)).astype("f4")
    return xr.DataArray(x, coords={"time": t, "lat": g.lat, "lon": g.lon}, dims=("time", "lat", "lon"), name="sm")


def test_polygons_in_0_360_over_a_grid_across_0_are_masked_whole() -> None:
    import geopandas as gpd
    from shapely.geometry import box

    from xsomo.gis.zonal import zonal_statistics

    da = _wet_east()
    polys = gpd.GeoDataFrame(
        {"NAME": ["across 0, 0..360", "across 0, -180..180", "west, 0..360", "west, -180..180"]},
        geometry=[box(359, 40.5, 361, 41.5), box(-1, 40.5, 1, 41.5), box(358.5, 40.5, 359.5, 41.5),
                  box(-1.5, 40.5, -0.5, 41.5)],
        crs=4326,
    )
    df = zonal_statistics(da, polys, ("2016-06-01", "2016-08-31")).set_index("NAME")
    for a, b in (("across 0, 0..360", "across 0, -180..180"), ("west, 0..360", "west, -180..180")):
        assert df.loc[a, ["n_cells", "coverage", "mean_sm", "anomaly_z"]].tolist() == pytest.approx(
            df.loc[b, ["n_cells", "coverage", "mean_sm", "anomaly_z"]].tolist(), nan_ok=True
        )
    assert df.loc["across 0, 0..360", "n_cells"] == 200 and df.loc["across 0, 0..360", "coverage"] == 1.0
    assert df.loc["across 0, 0..360", "mean_sm"] == pytest.approx(0.26, abs=1e-6)  # half wet


def test_polygons_in_minus_180_180_over_a_grid_beyond_180() -> None:
    import geopandas as gpd
    from shapely.geometry import box

    from xsomo.drivers.regions import mask_3d

    g = cv.GridSpec(west=170.0, east=190.0, south=-20.0, north=-10.0, resolution=1.0)  # Fiji, 0..360
    polys = gpd.GeoDataFrame({"NAME": ["east of 180", "across 180"]},
                             geometry=[box(-175, -15, -170, -12), box(175, -15, 180, -12).union(box(-180, -15, -175, -12))],
                             crs=4326)
    m = mask_3d(polys, g)
    lon2 = np.broadcast_to(g.lon, g.shape)
    assert sorted(np.unique(lon2[m.sel(region="east of 180").values])) == [185.5, 186.5, 187.5, 188.5, 189.5]
    assert m.sel(region="across 180").values.sum() == 10 * 3


def test_polygons_in_metres_without_a_crs_are_refused_as_such() -> None:
    import geopandas as gpd
    from shapely.geometry import box

    from xsomo.drivers.regions import mask_3d

    polys = gpd.GeoDataFrame({"NAME": ["p"]}, geometry=[box(3.46e6, 1.92e6, 3.62e6, 2.2e6)])  # EPSG:3035 metres
    with pytest.raises(XsomoValueError, match=r"no CRS and their coordinates are not degrees.*set their CRS") as info:
        mask_3d(polys, cv.GridSpec(west=-2.0, east=2.0, south=40.0, north=42.0))
    assert "antimeridian" not in str(info.value)


def test_a_day_of_a_missing_year_names_the_file(tmp_path: pathlib.Path) -> None:
    from xsomo.exceptions import XsomoKeyError

    da = _wet_east()
    gap = da.sel(time=da.time.dt.year != 2016)
    with pytest.raises(XsomoKeyError, match=r"between the days 2015-12-31 and 2017-01-01.*file of layer 1, 2016 missing"):
        to_cog(gap, tmp_path / "d.tif", time="2016-07-15", style=False)


# ----------------------------------------------------------------------------- files of other producers


def _write_somo_like(folder: pathlib.Path, years: range, lat: np.ndarray, lon: np.ndarray, encoding: dict) -> None:
    """SoMo-named yearly files as other producers write them (``encoding`` of ``layer1``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for year in years:
        t = pd.date_range(f"{year}-01-01", f"{year}-12-31")
        rng = np.random.default_rng(year)
        vals = (0.25 + 0.05 * rng.standard_normal((t.size, lat.size, lon.size))).astype("f4")
        vals[:, 0, 0] = np.nan  # a sea cell
        vals[::7, -1, -1] = np.nan  # and a cell missing now and then
        da = xr.DataArray(vals, dims=("time", "lat", "lon"), coords={"time": t, "lat": lat, "lon": lon},
                          attrs={"units": "m3 m-3"})
        da.to_dataset(name="layer1").to_netcdf(
            folder / f"SoMo.ml-EU_layer1_{year}.nc",
            encoding={"layer1": encoding, "lat": {"dtype": lat.dtype}, "lon": {"dtype": lon.dtype}},
        )


@pytest.mark.parametrize(
    "encoding",
    [
        {"dtype": "int16", "scale_factor": np.float32(1e-4), "add_offset": np.float32(0.1), "_FillValue": np.int16(-32768)},
        {"dtype": "float32", "_FillValue": np.float32(-9999.0)},
    ],
    ids=["int16-packed", "fill-9999"],
)
def test_time_stack_of_packed_or_filled_files_reads_as_open_somo(encoding: dict, tmp_path: pathlib.Path) -> None:
    """QA: the VRT's sources carried no scale, offset or nodata: packed files showed raw integers
    (2548 for 0.2548) and the fill value (-32768, -9999) as data under a NaN nodata."""
    import xsomo
    from xsomo.gis.export import to_time_stack

    lat, lon = np.round(50.35 - 0.1 * np.arange(4), 2), np.round(10.05 + 0.1 * np.arange(5), 2)
    _write_somo_like(tmp_path / "in", range(2012, 2014), lat, lon, encoding)
    vrt, _ = to_time_stack(tmp_path / "in", tmp_path / "s.vrt", layer=1)
    want = xsomo.open_somo(tmp_path / "in").sm.sel(layer=1).sortby("lat", ascending=False).sortby("lon").load()
    with rasterio.open(vrt) as r:
        assert list(r.descriptions) == [f"{d:%Y-%m-%d}" for d in pd.DatetimeIndex(want.time.values)]
        got = r.read()
        assert np.isnan(r.nodata) and r.dtypes[0] == "float32"
    assert np.isnan(want.values).sum() > 100
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want.values))  # the fill value is NaN, nothing else
    np.testing.assert_allclose(got, want.values, rtol=1e-6, atol=0)  # unpacked as xarray does


def test_float32_coordinates_give_exact_edges_in_cog_vrt_and_stac(tmp_path: pathlib.Path) -> None:
    """float32 centres (170.05 stored as 170.0500030517578) put the edges ~1e-5 off and the VRT's
    and STAC's step at 0.100006 (rounding to 1e-6 is not enough far from 0°): the grid's
    edges and step are its decimals, in all three."""
    pytest.importorskip("pystac")
    import json

    from affine import Affine

    import xsomo
    from xsomo.gis.export import to_time_stack
    from xsomo.gis.stac import stac_catalog

    lat = np.round(71.45 - 0.1 * np.arange(30), 2).astype("f4")
    lon = np.round(170.05 + 0.1 * np.arange(40), 2).astype("f4")
    assert float(lat[0]) != 71.45 and float(lon[0]) != 170.05
    _write_somo_like(tmp_path / "in", range(2013, 2014), lat, lon, {"dtype": "float32"})
    exact = Affine(0.1, 0.0, 170.0, 0.0, -0.1, 71.5)
    with rasterio.open(to_cog(xsomo.open_somo(tmp_path / "in"), tmp_path / "d.tif", time="2013-03-01", style=False)) as r:
        assert r.transform == exact
    with rasterio.open(to_time_stack(tmp_path / "in", tmp_path / "s.vrt", layer=1)[0]) as r:
        assert r.transform == exact and (r.width, r.height) == (40, 30)
    stac_catalog(tmp_path / "in", tmp_path / "cat")
    item = json.loads(next((tmp_path / "cat").glob("*/*.json")).read_text())
    assert item["properties"]["proj:transform"] == list(exact)[:6]
    assert item["bbox"] == [170.0, 68.5, 174.0, 71.5]


# ----------------------------------------------------------------------------- longitude conventions


@pytest.mark.parametrize(
    ("lon", "west"),
    [
        (np.r_[np.arange(0.05, 1.0, 0.1), np.arange(359.05, 360.0, 0.1)], -1.0),  # across 0° in 0..360
        (np.r_[np.arange(-179.95, -179.0, 0.1), np.arange(179.05, 180.0, 0.1)], 179.0),  # across 180° in -180..180
    ],
    ids=["0_in_0..360", "180_in_-180..180"],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cog_of_a_region_cut_by_the_longitude_convention_is_one_block(
    lon: np.ndarray, west: float, dtype: str, tmp_path: pathlib.Path
) -> None:
    """QA: a map across 0° in 0..360 (0..1 and 359..360) was refused with the hint to reindex it
    onto np.arange(0.05, 360, 0.1): a GeoTIFF 3600 columns wide, 99% empty. It is one block of
    20 columns: written over -1..1 (as xsomo.regrid.normalise_latlon takes it), and the mirror case
    (across 180° in -180..180) over 179..181 (as xsomo takes grids beyond 180°)."""
    from affine import Affine

    lon = np.round(lon, 6).astype(dtype)
    lat = np.round(np.arange(40.45, 39.99, -0.1), 2).astype(dtype)
    glon = cv.decimal_coords(lon)
    values = np.add.outer(cv.decimal_coords(lat) * 100, glon).astype("f4")  # each cell's own number
    da = xr.DataArray(values, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"), name="sm")
    path = to_cog(da, tmp_path / "m.tif", style=False)
    with rasterio.open(path) as r:
        assert r.transform == Affine(0.1, 0.0, west, 0.0, -0.1, 40.5) and r.width == 20
        block = np.where(glon - west >= 360.0, glon - 360.0, np.where(glon < west, glon + 360.0, glon))
        pts = [(float(x), float(y)) for y in cv.decimal_coords(lat) for x in block]
        got = np.array([v[0] for v in r.sample(pts)])
    np.testing.assert_array_equal(got, values.ravel())


def test_time_stack_of_files_cut_by_the_longitude_convention_is_refused(tmp_path: pathlib.Path) -> None:
    """A VRT shows a file's columns in their stored order, so files across 0° in 0..360 cannot be one
    block there: refused with what to do (GeoTIFFs, or files in one convention), not the hint to
    reindex onto a 0..360 grid."""
    from xsomo.gis.export import to_time_stack
    from xsomo.prediction.output import to_files

    lon = np.round(np.r_[np.arange(0.05, 1.0, 0.1), np.arange(359.05, 360.0, 0.1)], 6)
    lat = np.round(np.arange(40.05, 40.5, 0.1), 2)
    t = pd.date_range("2015-01-01", "2015-01-03")
    sm = xr.DataArray(np.full((1, t.size, lat.size, lon.size), 0.2, "f4"), dims=("layer", "time", "lat", "lon"),
                      coords={"time": t, "lat": lat, "lon": lon, **cv.layer_coords([1])})  # fmt: skip
    to_files(sm.to_dataset(name="sm"), tmp_path / "in", progress=False)
    with pytest.raises(XsomoValueError, match=r"one block at -0.95..0.95\).*GeoTIFFs instead") as info:
        to_time_stack(tmp_path / "in", tmp_path / "s.vrt", layer=1)
    assert "reindex" not in str(info.value)
    assert not (tmp_path / "s.vrt").exists()
