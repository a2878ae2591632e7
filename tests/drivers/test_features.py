"""xsomo.drivers.features: aridity, sub-grid elevation moments, fraction upscaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import conventions as cv
from xsomo.conventions import GridSpec
from xsomo.drivers.features import aridity, static_features, subgrid_moments, upscale_fraction
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError
from xsomo.regrid import cell_area

FINE = GridSpec(0.0, 1.0, 50.0, 51.0, 0.01)
TARGET = GridSpec(0.2, 0.8, 50.2, 50.8, 0.1)


def fine(values, units, name="x"):
    return xr.DataArray(
        values, coords=FINE.coords(), dims=("lat", "lon"), name=name, attrs={"units": units}
    )


def test_aridity_by_hand():
    rng = np.random.default_rng(0)
    t = pd.date_range("2000-01-01", periods=30)
    rn = xr.DataArray(
        rng.uniform(50, 150, (30, 2, 2)),
        dims=("time", "lat", "lon"),
        coords={"time": t},
        attrs={"units": "W m-2"},
    )
    p = xr.DataArray(
        rng.uniform(0, 5, (30, 2, 2)),
        dims=("time", "lat", "lon"),
        coords={"time": t},
        attrs={"units": "mm d-1"},
    )
    expected = rn.values.mean(0) * 86400 / cv.LATENT_HEAT_VAPORISATION / p.values.mean(0)
    np.testing.assert_allclose(aridity(rn, p).values, expected, rtol=1e-6)
    # precipitation in m d-1 is converted, not misread
    p_m = (p / 1000).assign_attrs(units="m d-1")
    np.testing.assert_allclose(aridity(rn, p_m).values, expected, rtol=1e-6)


def test_subgrid_moments_match_numpy():
    rng = np.random.default_rng(1)
    dem = fine(rng.gamma(3, 200, FINE.shape), "m")
    mean, std = subgrid_moments(dem, TARGET)
    sub = dem.sel(lat=slice(50.2, 50.8), lon=slice(0.2, 0.8)).values
    w = cell_area(GridSpec(0.2, 0.8, 50.2, 50.8, 0.01)).values.reshape(6, 10, 6, 10)
    blocks = sub.reshape(6, 10, 6, 10)
    m = (blocks * w).sum((1, 3)) / w.sum((1, 3))
    v = (w * (blocks - m[:, None, :, None]) ** 2).sum((1, 3)) / w.sum((1, 3))
    np.testing.assert_allclose(mean.values, m, rtol=1e-5)
    np.testing.assert_allclose(std.values, np.sqrt(v), rtol=1e-3)
    # one field given as a sequence (open_dem's maps per pixel size) is the same field
    for got, want in zip(subgrid_moments([dem], TARGET), (mean, std), strict=True):
        xr.testing.assert_identical(got, want)
    # two fields that split it (by latitude, as the Copernicus DEM's pixel sizes) give its moments
    halves = [dem.sel(lat=slice(None, 50.45)), dem.sel(lat=slice(50.45, None))]
    for got, want in zip(subgrid_moments(halves, TARGET), (mean, std), strict=True):
        np.testing.assert_allclose(got.values, want.values, rtol=1e-5)
    with pytest.raises(XsomoValueError, match="no fine field"):
        subgrid_moments([], TARGET)


def test_percent_to_fraction():
    sand = fine(np.full(FINE.shape, 40.0), "percent", "sand_top")
    out = upscale_fraction(sand, TARGET, name="sand_top")
    np.testing.assert_allclose(out.values, 0.4, rtol=1e-6)
    assert out.attrs["units"] == "1"


def test_static_features_missing_variable():
    t = pd.date_range("2000-01-01", periods=3)
    dyn = xr.DataArray(
        np.ones((3, *TARGET.shape)),
        dims=("time", "lat", "lon"),
        coords={"time": t, **TARGET.coords()},
    )
    lc = xr.Dataset({"forest_fraction": fine(np.full(FINE.shape, 0.5), "1")})
    soil = xr.Dataset(
        {
            k: fine(np.full(FINE.shape, 20.0), "percent")
            for k in ("sand_top", "clay_top", "sand_sub", "clay_sub")
        }
    )
    with pytest.raises(MissingVariableError, match="shortveg_fraction"):
        static_features(
            precipitation=dyn.assign_attrs(units="mm d-1"),
            net_radiation=dyn.assign_attrs(units="W m-2"),
            elevation=fine(np.zeros(FINE.shape), "m"),
            landcover=lc,
            soil=soil,
            grid=TARGET,
        )
    lc["shortveg_fraction"] = fine(np.full(FINE.shape, 0.25), "1")
    out = static_features(
        precipitation=dyn.assign_attrs(units="mm d-1"),
        net_radiation=dyn.assign_attrs(units="W m-2"),
        elevation=fine(np.zeros(FINE.shape), "m"),
        landcover=lc,
        soil=soil,
        grid=TARGET,
    )
    assert list(out.data_vars) == list(cv.STATIC_NAMES)
    np.testing.assert_allclose(out["clay_sub"].values, 0.2, rtol=1e-6)
    np.testing.assert_allclose(out["elevation_std"].values, 0.0, atol=1e-6)


def test_dem_tiles_of_two_pixel_sizes_through_the_sources_file(tiny_world, tmp_path):
    """A folder of DEM tiles whose pixels widen north of a latitude (the Copernicus DEM's, north
    of 50 deg N; here 0.01 x 0.01 deg south of 41.05 N, 0.02 x 0.01 deg north of it) named in a
    sources file gives the elevation features of the same relief on one 0.01 deg grid (each wide
    pixel as two), also in the cells that straddle 41.05 N."""
    import rasterio
    import yaml
    from rasterio.transform import from_origin

    from xsomo.drivers.sources import open_sources_drivers
    from xsomo.io.sources import read_sources

    def relief(lat, lon):
        return (
            600.0
            + 250.0 * np.sin(lat * 8.0)
            + 120.0 * np.cos(lon * 6.0)
            + 50.0 * np.sin(lat * 150.0) * np.cos(lon * 120.0)
        )

    dem = tmp_path / "dem"
    dem.mkdir()
    rows = []  # (north-to-south values on the common 0.01 deg grid) per band
    for south, north, dx in ((40.0, 41.05, 0.01), (41.05, 42.0, 0.02)):
        lat = north - 0.01 * (np.arange(round((north - south) / 0.01)) + 0.5)
        band = []
        for west in (0.0, 0.5):
            lon = west + dx * (np.arange(round(0.5 / dx)) + 0.5)
            z = relief(lat[:, None], lon[None, :]).astype(np.float32)
            with rasterio.open(
                dem / f"tile_{south:g}_{west:g}.tif", "w", driver="GTiff", height=z.shape[0], width=z.shape[1],
                count=1, dtype="float32", crs="EPSG:4326", transform=from_origin(west, north, dx, 0.01),
            ) as dst:  # fmt: skip
                dst.write(z, 1)
            band.append(np.repeat(z, round(dx / 0.01), axis=1))
        rows.append(np.hstack(band))
    common_grid = GridSpec(0.0, 1.0, 40.0, 42.0, 0.01)
    common = xr.DataArray(
        np.vstack(rows[::-1])[::-1].astype(np.float64), coords=common_grid.coords(), dims=("lat", "lon"),
        attrs={"units": "m"},
    )  # fmt: skip
    world = tmp_path / "w"
    world.mkdir()
    for p in tiny_world.iterdir():
        if p.name != "sources.yml":
            (world / p.name).symlink_to(p)
    data = yaml.safe_load((tiny_world / "sources.yml").read_text())
    data["static"]["dem"] = str(dem)
    (world / "sources.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    src = read_sources(world / "sources.yml")
    ds = open_sources_drivers(src)
    grid = GridSpec(**{k: float(v) for k, v in data["grid"].items()})
    want_mean, want_std = subgrid_moments(common, grid)
    got = ds[["elevation_mean", "elevation_std"]].compute()
    np.testing.assert_allclose(got["elevation_mean"].values, want_mean.values, rtol=1e-5)
    np.testing.assert_allclose(got["elevation_std"].values, want_std.values, rtol=1e-4)
    assert float(got["elevation_std"].min()) > 1.0  # (sub-grid relief in every cell)


def _overlaps(edges_cells: np.ndarray, edges_px: np.ndarray, sine: bool) -> np.ndarray:
    """(cells, pixels) overlap of 1-D intervals: lengths, or differences of sin(lat) (area)."""
    lo = np.maximum(edges_cells[:-1, None], edges_px[None, :-1])
    hi = np.minimum(edges_cells[1:, None], edges_px[None, 1:])
    hi = np.maximum(hi, lo)
    return np.sin(np.radians(hi)) - np.sin(np.radians(lo)) if sine else hi - lo


def test_dem_tiles_half_a_pixel_off_whole_degrees_cover_a_whole_degree_grid(tmp_path):
    """The Copernicus DEM's tiles (AWS COGs) put their pixels half a pixel north and west of
    whole degrees (origin -172.000138..., -12.999861... for S14 W172), so the tiles of a whole-degree
    box end half a pixel short of its south and east edges: the grid is read, the edge cells
    get the area-weighted moments of the pixels they hold (numpy oracle); a grid a cell wider is
    still refused."""
    import rasterio
    from rasterio.transform import from_origin

    from xsomo.io.statics import open_dem

    px = 1 / 120
    tiles = {}
    for west in (5, 6):
        z = np.random.default_rng(west).normal(500.0, 50.0, (120, 120)).astype(np.float32)
        tiles[west] = z
        with rasterio.open(
            tmp_path / f"Copernicus_N49_E00{west}.tif", "w", driver="GTiff", height=120, width=120, count=1,
            dtype="float32", crs="EPSG:4326", transform=from_origin(west - px / 2, 50 + px / 2, px, px),
        ) as dst:  # fmt: skip
            dst.write(z, 1)
    dem = open_dem(sorted(tmp_path.glob("*.tif")))
    grid = GridSpec(5.0, 7.0, 49.0, 50.0, 0.1)
    mean, std = subgrid_moments(dem, grid)
    # oracle: exact spherical overlaps of pixel and cell edges (south to north, west to east)
    z = np.hstack([tiles[5], tiles[6]])[::-1].astype(np.float64)
    lat_px = 49 + px / 2 + px * np.arange(121)
    lon_px = 5 - px / 2 + px * np.arange(241)
    wy = _overlaps(49 + 0.1 * np.arange(11), lat_px, sine=True)
    wx = _overlaps(5 + 0.1 * np.arange(21), lon_px, sine=False)
    area = wy @ np.ones_like(z) @ wx.T
    m1 = wy @ z @ wx.T / area
    m2 = wy @ (z * z) @ wx.T / area
    np.testing.assert_allclose(mean.values, m1, rtol=1e-5)
    np.testing.assert_allclose(std.values, np.sqrt(m2 - m1**2), rtol=1e-3)
    with pytest.raises(GridMismatchError, match="the fine field covers"):
        subgrid_moments(dem, GridSpec(5.0, 7.1, 49.0, 50.0, 0.1))


def test_a_dem_not_finer_than_the_grid_is_refused():
    """A 0.25 deg DEM on the 0.1 deg grid gave an elevation_std of 0 in most cells, meaningless
    elsewhere, without a word (QA): the fine field must be finer than the target grid."""
    coarse = GridSpec(0.0, 1.0, 50.0, 51.0, 0.25)
    dem = xr.DataArray(
        np.random.default_rng(2).gamma(3, 200, coarse.shape), coords=coarse.coords(), dims=("lat", "lon"),
        attrs={"units": "m", "source_file": "era5_orography.nc"},
    )  # fmt: skip
    with pytest.raises(GridMismatchError, match=r"era5_orography.nc has pixels of 0.25 x 0.25 degrees.*not finer than the target grid's 0.1"):
        subgrid_moments(dem, TARGET)
    with pytest.raises(GridMismatchError, match=r"pixels of 0.25 x 0.25"):
        subgrid_moments([fine(np.ones(FINE.shape), "m"), dem], TARGET)
    equal = GridSpec(0.0, 1.0, 50.0, 51.0, 0.1)
    with pytest.raises(GridMismatchError, match=r"pixels of 0.1 x 0.1 degrees"):
        subgrid_moments(xr.DataArray(np.ones(equal.shape), coords=equal.coords(), dims=("lat", "lon")), TARGET)
    with pytest.raises(GridMismatchError, match=r"the DEM \(dem.nc\): era5_orography.nc has pixels of 0.25"):
        static_features(
            precipitation=xr.DataArray(np.ones((2, 6, 6)), dims=("time", "lat", "lon"), attrs={"units": "mm d-1"}),
            net_radiation=xr.DataArray(np.ones((2, 6, 6)), dims=("time", "lat", "lon"), attrs={"units": "W m-2"}),
            elevation=dem, grid=TARGET, where={"elevation": "dem.nc"},
            landcover=xr.Dataset({n: fine(np.full(FINE.shape, 0.5), "1") for n in ("forest_fraction", "shortveg_fraction")}),
            soil=xr.Dataset({n: fine(np.full(FINE.shape, 0.3), "1") for n in ("sand_top", "clay_top", "sand_sub", "clay_sub")}),
        )  # fmt: skip
