"""``xsomo series`` and ``xsomo zonal`` against numpy (issue 19 item 5)."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pyogrio
import pytest
import xarray as xr

from xsomo import conventions as cv
from xsomo.cli import main

GRID = cv.GridSpec(west=-3.0, east=-1.0, south=39.0, north=41.0)  # inside Spain
YEARS = range(2014, 2018)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, xr.DataArray]:
    from xsomo.prediction.output import to_files

    t = pd.date_range(f"{YEARS[0]}-01-01", f"{YEARS[-1]}-12-31", freq="D")
    rng = np.random.default_rng(5)
    vals = (0.15 + 0.2 * rng.random((1, t.size, GRID.nlat, GRID.nlon))).astype("float32")
    vals[:, :, 3, 4] = np.nan  # a cell without data
    sm = xr.DataArray(vals, dims=("layer", "time", "lat", "lon"),
                      coords={"time": t, **GRID.coords(), **cv.layer_coords([1])})
    d = tmp_path_factory.mktemp("zonal")
    to_files(sm.to_dataset(name="sm"), d, progress=False)
    return d, sm.isel(layer=0)


def _weighted(sm: xr.DataArray, cells: np.ndarray) -> np.ndarray:
    """cos-latitude weighted mean over the (lat, lon) cells, NaN ignored, per day (numpy)."""
    x = sm.transpose("time", "lat", "lon").values.astype(float)[:, cells]
    w = np.cos(np.deg2rad(sm.lat.values))[:, None].repeat(sm.sizes["lon"], 1)[cells]
    ww = np.where(np.isfinite(x), w[None, :], 0.0)
    return np.nansum(np.nan_to_num(x) * ww, axis=1) / ww.sum(axis=1)


def test_series_at_a_point_on_a_cell_edge(data, tmp_path, capsys):
    d, sm = data
    out = tmp_path / "p.csv"
    # lon -2.5 is the edge between the cells centred at -2.55 and -2.45: the north-east one counts
    assert main(["series", "--input", str(d), "--point", "-2.5", "39.95", "--out", str(out),
                 "--plot", str(tmp_path / "p.png")]) == 0
    df = pd.read_csv(out, parse_dates=["time"])
    want = sm.sel(lat=39.95, lon=-2.45).values
    np.testing.assert_allclose(df["sm"].values, want, rtol=1e-4)
    # the CSV says which cell it is
    assert set(df["cell_lon"]) == {-2.45} and set(df["cell_lat"]) == {39.95}
    assert (tmp_path / "p.png").stat().st_size > 5000
    # the outer east edge is outside
    assert main(["series", "--input", str(d), "--point", "-1.0", "40.0", "--out", str(tmp_path / "q.csv")]) == 1
    assert "outside the grid" in capsys.readouterr().err


def test_series_over_polygons_is_area_weighted(data, tmp_path):
    import geopandas as gpd
    import shapely

    d, sm = data
    polys = gpd.GeoDataFrame(
        {"NAME": ["north", "south"]},
        geometry=[shapely.box(-2.9, 40.3, -1.2, 40.92), shapely.box(-3.0, 39.0, -2.0, 39.5)],
        crs="EPSG:4326",
    )
    polys.to_file(tmp_path / "p.gpkg", driver="GPKG")
    out = tmp_path / "s.csv"
    assert main(["series", "--input", str(d), "--polygons", str(tmp_path / "p.gpkg"), "--out", str(out)]) == 0
    df = pd.read_csv(out, parse_dates=["time"])
    lat2, lon2 = np.meshgrid(sm.lat.values, sm.lon.values, indexing="ij")
    for name, (w, s, e, n) in {"north": (-2.9, 40.3, -1.2, 40.92), "south": (-3.0, 39.0, -2.0, 39.5)}.items():
        cells = (lon2 > w) & (lon2 < e) & (lat2 > s) & (lat2 < n)
        got = df[df.region == name].sort_values("time")
        np.testing.assert_allclose(got["sm"].values, _weighted(sm, cells), rtol=1e-4)
        assert (got["n_cells"] == (cells & np.isfinite(sm.values).any(axis=0)).sum()).all()  # cells with data


def test_zonal_statistics_of_a_country_and_polygons(data, tmp_path, capsys):
    d, sm = data
    out = tmp_path / "z.csv"
    argv = ["zonal", "--input", str(d), "--countries", "Spain", "--start", "2016-06-01", "--end", "2016-08-31"]
    with pytest.warns(RuntimeWarning, match=r"partly outside the data's grid \(Spain\)"):
        assert main([*argv, "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert 0.0 < df["coverage"].item() < 0.2  # a small piece of Spain
    assert df["NAME"].tolist() == ["Spain"] and df["n_cells"].item() == GRID.nlat * GRID.nlon - 1  # one without data
    daily = _weighted(sm, np.ones((GRID.nlat, GRID.nlon), bool))
    t = pd.DatetimeIndex(sm.time.values)
    means = [daily[(t >= f"{y}-06-01") & (t <= f"{y}-08-31")].mean() for y in YEARS]
    assert df["mean_sm"].item() == pytest.approx(means[2], rel=1e-4)
    z = (means[2] - np.mean(means)) / np.std(means, ddof=1)
    assert df["anomaly_z"].item() == pytest.approx(z, rel=1e-3, abs=1e-3)
    assert df["n_years"].item() == len(YEARS)
    # a month for a day, or no such day: refused, not read as the first of the month or a traceback
    for bad, says in ((["--start", "2016-06"], "not a date"), (["--end", "2016-13-45"], "no such day")):
        assert main([*argv, *bad, "--out", str(tmp_path / "bad.csv")]) == 1
        assert says in capsys.readouterr().err and "bug" not in capsys.readouterr().err
        assert not (tmp_path / "bad.csv").exists()
    gp = tmp_path / "z.gpkg"
    with pytest.warns(RuntimeWarning, match="partly outside"):
        assert main([*argv, "--out", str(gp)]) == 0
    gdf = pyogrio.read_dataframe(gp)
    assert gdf.crs.to_epsg() == 4326 and gdf["mean_sm"].item() == pytest.approx(df["mean_sm"].item(), rel=1e-4)  # CSV: 5 digits


def test_zonal_statistics_of_nested_and_empty_polygons(data, tmp_path):
    """A polygon inside another keeps its cells in both (regionmask's exclusive masks had taken
    them from the outer one), and a polygon without a cell centre gets a row (0 cells, NaN),
    not silence."""
    import geopandas as gpd
    import shapely

    d, sm = data
    boxes = {
        "outer": (-3.0, 39.0, -1.0, 41.0),
        "inner": (-2.6, 39.6, -2.0, 40.2),
        "tiny": (-2.97, 39.51, -2.96, 39.52),  # no cell centre inside
        "away": (10.0, 50.0, 11.0, 51.0),  # off the grid
    }
    polys = gpd.GeoDataFrame({"NAME": list(boxes)}, geometry=[shapely.box(*b) for b in boxes.values()], crs=4326)
    polys.to_file(tmp_path / "p.gpkg", driver="GPKG")
    out = tmp_path / "z.csv"
    argv = ["zonal", "--input", str(d), "--polygons", str(tmp_path / "p.gpkg"), "--start", "2016-06-01",
            "--end", "2016-08-31", "--out", str(out)]  # fmt: skip
    with pytest.warns(RuntimeWarning, match=r"1 polygons lie partly outside the data's grid \(away\)"):
        assert main(argv) == 0
    df = pd.read_csv(out).set_index("NAME")
    assert df.index.tolist() == list(boxes)
    # the share of each polygon inside the grid: whole, whole, whole, none; n_years only with cells
    assert df["coverage"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert df.loc["away", "n_years"] == 0 and df.loc["tiny", "n_years"] == 0
    lat2, lon2 = np.meshgrid(sm.lat.values, sm.lon.values, indexing="ij")
    t = pd.DatetimeIndex(sm.time.values)
    summer = (t >= "2016-06-01") & (t <= "2016-08-31")
    for name in ("outer", "inner"):
        w, s, e, n = boxes[name]
        cells = (lon2 > w) & (lon2 < e) & (lat2 > s) & (lat2 < n)
        assert df.loc[name, "n_cells"] == (cells & np.isfinite(sm.values).any(axis=0)).sum()
        assert df.loc[name, "mean_sm"] == pytest.approx(_weighted(sm, cells)[summer].mean(), rel=1e-4)
    assert df.loc["outer", "n_cells"] == GRID.nlat * GRID.nlon - 1  # the inner cells count in both
    for name in ("tiny", "away"):
        assert df.loc[name, "n_cells"] == 0 and np.isnan(df.loc[name, "mean_sm"])


def test_series_refuses_a_sea_point_and_hints_at_swapped_coordinates(data, tmp_path, capsys):
    """QA: a point whose cell holds no data gave a CSV of empty values (rc 0); LAT LON for LON LAT
    said only 'outside the grid'."""
    d, sm = data
    out = tmp_path / "sea.csv"
    lat, lon = float(sm.lat[3]), float(sm.lon[4])  # the cell without data
    assert main(["series", "--input", str(d), "--point", str(lon), str(lat), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "holds no data on any day" in err and f"lat {lat:g}: give a point in it" in err, err
    assert not out.exists()
    assert main(["series", "--input", str(d), "--point", "39.95", "-2.5", "--out", str(out)]) == 1
    assert "the order is LON LAT" in capsys.readouterr().err


def test_zonal_refuses_a_climatology_outside_the_data(data, tmp_path, capsys):
    """QA: --climatology 1990 2000 wrote NaN anomalies with rc 0 (export refused the same request)."""
    import geopandas as gpd
    import shapely

    d, _ = data
    gpd.GeoDataFrame({"NAME": ["p"]}, geometry=[shapely.box(-2.9, 39.1, -1.1, 40.9)], crs=4326).to_file(
        tmp_path / "p.gpkg", driver="GPKG"
    )
    out = tmp_path / "z.csv"
    argv = ["zonal", "--input", str(d), "--polygons", str(tmp_path / "p.gpkg"), "--start", "2016-06-01",
            "--end", "2016-08-31", "--climatology", "1990", "2000", "--out", str(out)]  # fmt: skip
    assert main(argv) == 1
    assert "climatology=(1990, 2000)" in capsys.readouterr().err and not out.exists()


def test_zonal_gpkg_keeps_the_polygons_attributes_and_types(data, tmp_path):
    """QA: an integer key came back as text and every other attribute was dropped."""
    import geopandas as gpd
    import shapely

    d, _ = data
    polys = gpd.GeoDataFrame(
        {"ID": [101, 102], "NAME": ["a", "b"], "AREA_KM2": [12.5, 3.0]},
        geometry=[shapely.box(-2.9, 39.1, -2.0, 40.0), shapely.box(-2.0, 40.0, -1.1, 40.9)],
        crs=4326,
    )
    polys.to_file(tmp_path / "p.gpkg", driver="GPKG")
    out = tmp_path / "z.gpkg"
    assert main(["zonal", "--input", str(d), "--polygons", str(tmp_path / "p.gpkg"), "--key", "ID",
                 "--start", "2016-06-01", "--end", "2016-08-31", "--out", str(out)]) == 0  # fmt: skip
    info = pyogrio.read_info(out)
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types["ID"] == "int64" and types["AREA_KM2"] == "float64" and types["NAME"] == "object"
    got = pyogrio.read_dataframe(out)
    assert got["ID"].tolist() == [101, 102] and got["AREA_KM2"].tolist() == [12.5, 3.0]
    assert (got["n_cells"] > 0).all() and got["mean_sm"].notna().all()
    csv = tmp_path / "z.csv"
    assert main(["zonal", "--input", str(d), "--polygons", str(tmp_path / "p.gpkg"), "--key", "ID",
                 "--start", "2016-06-01", "--end", "2016-08-31", "--out", str(csv)]) == 0  # fmt: skip
    assert pd.read_csv(csv)["ID"].tolist() == [101, 102]


def test_a_polygon_in_a_projection_is_masked_by_its_straight_edges():
    """A rectangle drawn in EPSG:3035 was reprojected by its corners only: its edges became
    straight lines in degrees, and 400 cells near them were wrong (up to 20 km off)."""
    import geopandas as gpd
    import shapely

    from xsomo.drivers.regions import mask

    grid = cv.GridSpec(west=-5.0, east=25.0, south=40.0, north=56.0, resolution=0.1)
    rect = shapely.box(3.5e6, 2.6e6, 4.5e6, 3.4e6)  # 1000 x 800 km in ETRS89-LAEA
    gdf = gpd.GeoDataFrame({"NAME": ["box"]}, geometry=[rect], crs=3035)
    got = mask(gdf, grid).notnull().values
    lon2, lat2 = np.meshgrid(grid.lon, grid.lat)
    pts = gpd.GeoSeries(gpd.points_from_xy(lon2.ravel(), lat2.ravel()), crs=4326).to_crs(3035)
    want = pts.within(rect).to_numpy().reshape(lat2.shape)
    assert got.sum() > 9000 and (got == want).all(), int((got != want).sum())


def test_a_self_intersecting_polygon_is_refused():
    import geopandas as gpd
    import shapely

    from xsomo.drivers.regions import mask
    from xsomo.exceptions import XsomoValueError

    grid = cv.GridSpec(west=0.0, east=2.0, south=40.0, north=42.0, resolution=0.1)
    bowtie = shapely.Polygon([(0.2, 40.2), (1.8, 41.8), (1.8, 40.2), (0.2, 41.8)])
    gdf = gpd.GeoDataFrame({"NAME": ["tie"]}, geometry=[bowtie], crs=4326)
    with pytest.raises(XsomoValueError, match=r"1 of 1 polygons are not valid geometries .*Self-intersection"):
        mask(gdf, grid)


def test_a_point_is_found_in_the_grids_longitude_convention():
    """--point -179.95 41 on a 178..182 grid (0..360) was 'outside the grid'; polygons were wrapped."""
    from xsomo.gis.zonal import point_series

    lon = np.round(np.arange(178.05, 182.0, 0.1), 2)
    lat = np.round(np.arange(40.05, 42.0, 0.1), 2)
    t = pd.date_range("2016-01-01", periods=3)
    values = np.arange(t.size * lat.size * lon.size, dtype="float32").reshape(1, t.size, lat.size, lon.size)
    sm = xr.DataArray(values, coords={"layer": [1], "time": t, "lat": lat, "lon": lon}, dims=("layer", "time", "lat", "lon"))
    got = point_series(sm, -179.95, 41.0, layer=1)
    want = sm.sel(layer=1, lat=41.05, lon=180.05)
    np.testing.assert_array_equal(got.values, want.values)


def test_zonal_counts_cells_on_float32_coordinates():
    """QA: on files with float32 lat/lon (north to south, as many published netCDFs), the mask
    (on the grid's clean float64 decimals) and the cells with data (on the float32 values) were
    combined by label: n_cells came out 1, 0, 1, 0 for 20, 4, 4, 6, and n_years 0 beside a mean."""
    import geopandas as gpd
    import shapely

    from xsomo.gis.zonal import polygon_series, zonal_statistics

    lat = np.round(50.75 - 0.1 * np.arange(8), 6).astype("float32")
    lon = np.round(10.05 + 0.1 * np.arange(12), 6).astype("float32")
    t = pd.date_range("2012-01-01", "2015-12-31", freq="D")
    rng = np.random.default_rng(3)
    vals = (0.2 + 0.1 * rng.random((1, t.size, lat.size, lon.size))).astype("float32")
    vals[:, :, 0, 0] = np.nan  # a sea cell inside "nw"
    sm = xr.DataArray(vals, dims=("layer", "time", "lat", "lon"), coords={"layer": [1], "time": t, "lat": lat, "lon": lon})
    boxes = {"all": (10.0, 50.0, 11.2, 50.8), "nw": (10.0, 50.6, 10.2, 50.8), "mid": (10.3, 50.2, 10.6, 50.4)}
    polys = gpd.GeoDataFrame({"NAME": list(boxes)}, geometry=[shapely.box(*b) for b in boxes.values()], crs=4326)
    lat2, lon2 = np.meshgrid(lat.astype(float), lon.astype(float), indexing="ij")
    held = np.isfinite(vals[0]).any(axis=0)
    want = [int(((lon2 > w) & (lon2 < e) & (lat2 > s) & (lat2 < n) & held).sum()) for w, s, e, n in boxes.values()]
    assert want == [95, 3, 6]
    assert polygon_series(sm, polys, layer=1)["n_cells"].values.tolist() == want
    z = zonal_statistics(sm, polys, ("2014-06-01", "2014-08-31"), layer=1)
    assert z["n_cells"].tolist() == want and z["n_years"].tolist() == [4, 4, 4]
    assert np.isfinite(z["anomaly_z"]).all()
