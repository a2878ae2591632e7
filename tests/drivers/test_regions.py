"""xsomo.drivers.regions: masks against a hand-drawn polygon, regional means, the packaged countries."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr

from xsomo.conventions import EUROPE, GridSpec
from xsomo.drivers import regions
from xsomo.exceptions import XsomoKeyError

GRID = GridSpec(0.0, 4.0, 40.0, 44.0, 0.1)
# a hand-drawn concave polygon (an "L") and a triangle
L_SHAPE = shapely.Polygon(
    [(0.5, 40.5), (3.0, 40.5), (3.0, 41.5), (1.5, 41.5), (1.5, 43.5), (0.5, 43.5)]
)
TRIANGLE = shapely.Polygon([(2.02, 42.0), (3.9, 42.0), (3.9, 43.87)])


@pytest.fixture
def gdf():
    return gpd.GeoDataFrame({"NAME": ["ell", "tri"]}, geometry=[L_SHAPE, TRIANGLE], crs=4326)


def test_mask_matches_point_in_polygon(gdf):
    m = regions.mask(gdf, GRID)
    yy, xx = np.meshgrid(GRID.lat, GRID.lon, indexing="ij")
    pts = shapely.points(xx, yy)
    inside_l = shapely.contains(L_SHAPE, pts)
    inside_t = shapely.contains(TRIANGLE, pts)
    np.testing.assert_array_equal(m.values == 0, inside_l)
    np.testing.assert_array_equal(m.values == 1, inside_t)
    assert m.attrs["names"] == "ell,tri" and m.dims == ("lat", "lon")


def test_regional_mean_area_weighted(gdf):
    rng = np.random.default_rng(0)
    da = xr.DataArray(
        rng.random((2, *GRID.shape)),
        coords={"time": [0, 1], **GRID.coords()},
        dims=("time", "lat", "lon"),
    )
    out = regions.regional_mean(da, gdf)
    yy, xx = np.meshgrid(GRID.lat, GRID.lon, indexing="ij")
    inside = shapely.contains(L_SHAPE, shapely.points(xx, yy))
    w = np.cos(np.deg2rad(yy)) * inside
    expected = (da.values * w).sum((1, 2)) / w.sum()
    np.testing.assert_allclose(out.sel(region="ell").values, expected, rtol=1e-10)


def test_packaged_countries_keys():
    g = regions.countries()
    assert {"NAME", "ADM0_A3"} <= set(g.columns) and g.crs.to_epsg() == 4326
    fr = regions.countries(["France", "NOR"])
    assert sorted(fr["ADM0_A3"]) == ["FRA", "NOR"]
    assert set(fr["ISO_A3"]) == {"-99"}  # why ISO codes are not a key at 1:110m
    m = regions.mask(fr, EUROPE, key="ADM0_A3")
    paris = m.sel(lat=48.85, lon=2.35, method="nearest").item()
    oslo = m.sel(lat=59.91, lon=10.75, method="nearest").item()
    assert m.attrs["names"].split(",")[int(paris)] == "FRA"
    assert m.attrs["names"].split(",")[int(oslo)] == "NOR"
    with pytest.raises(XsomoKeyError, match="Atlantis"):
        regions.countries(["Atlantis"])


def test_polygons_that_cannot_mask_are_refused_with_the_reason():
    """Points, an empty layer, mixed 0..360 / -180..180 longitudes ended in regionmask's or
    numpy's errors; a polygon crossing the antimeridian in a projected CRS took every cell."""
    import geopandas as gpd
    import shapely

    from xsomo.drivers.regions import mask_3d
    from xsomo.exceptions import XsomoValueError

    grid = GridSpec(-10, 10, 40, 50, 1.0)
    cases = {
        "not points": gpd.GeoDataFrame({"NAME": ["p"]}, geometry=[shapely.Point(0, 45)], crs=4326),
        "empty": gpd.GeoDataFrame({"NAME": []}, geometry=[], crs=4326),
    }
    # a Pacific box 175°E-175°W drawn in a projected CRS: in EPSG:4326 it spans -175..175
    pacific = gpd.GeoDataFrame({"NAME": ["pac"]}, geometry=[shapely.box(175, -10, 185, 10)], crs=4326)
    cases["antimeridian"] = gpd.GeoDataFrame(
        {"NAME": ["pac"]}, geometry=[shapely.box(*pacific.to_crs(3832).total_bounds)], crs=3832
    )
    for says, gdf in cases.items():
        with pytest.raises(XsomoValueError, match=says.split()[-1]):
            mask_3d(gdf, grid)
    # longitudes are periodic: polygons in 0..360 and -180..180 are brought to the grid's (they were
    # refused; one drawn over 359..361 had been half masked)
    mixed = gpd.GeoDataFrame(
        {"NAME": ["a", "b", "c"]},
        geometry=[shapely.box(-5, 41, -1, 44), shapely.box(355, 41, 359, 44), shapely.box(359, 41, 361, 44)],
        crs=4326,
    )
    m = mask_3d(mixed, grid)
    assert (m.sel(region="a") == m.sel(region="b")).all() and int(m.sel(region="a").sum()) == 4 * 3
    assert int(m.sel(region="c").sum()) == 2 * 3  # centres -0.5 and 0.5
    # a country in parts on both sides of 180° (Russia, Fiji) is not such a polygon
    parts = shapely.MultiPolygon([shapely.box(170, 60, 180, 70), shapely.box(-180, 60, -170, 70), shapely.box(0, 42, 5, 48)])
    m = mask_3d(gpd.GeoDataFrame({"NAME": ["r"]}, geometry=[parts], crs=4326), grid)
    assert int(m.sum()) == 30  # the 5 x 6 cells of its European part
