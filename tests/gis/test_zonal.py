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
    assert gdf.crs.to_epsg() == 4326 and gdf["mean_sm"].item() == df["mean_sm"].item()  # the CSV is exact


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
    with pytest.warns(RuntimeWarning) as caught:
        assert main(argv) == 0
    said = " | ".join(str(w.message) for w in caught)
    # (away was said to lie "partly outside", and tiny got only regionmask's own warning)
    assert "1 polygons lie wholly outside the data's grid (away)" in said
    assert "1 polygons hold no cell centre of the grid (tiny)" in said
    assert "partly outside" not in said
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
    # a NULL geometry had been called "['nan'] geometries: give polygons, not points or lines"
    null = gpd.GeoDataFrame({"NAME": ["a", "b"]}, geometry=[shapely.box(0.2, 40.2, 1.0, 41.0), None], crs=4326)
    with pytest.raises(XsomoValueError, match=r"1 feature\(s\) have no geometry \(NULL: 'b'\)"):
        mask(null, grid)


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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_zonal_coverage_lies_on_the_grid_of_the_mask(dtype):
    """The coverage (and its warning) came from the data's raw coordinates, the mask from the
    normalised ones (xsomo.regrid.normalise_latlon, the one rule): on a region across 0° in 0..360
    (0..1 and 359..360 deg) the outline became 0..360, and a polygon half outside the data had
    coverage 1.0 and no warning. Float32 and float64 coordinates give the same table: cells on a
    polygon's edge count the same, and a polygon whose edge is the grid's outer edge is whole."""
    import geopandas as gpd
    import shapely

    from xsomo.gis.zonal import zonal_statistics

    lon = np.round(np.r_[np.arange(0.05, 1.0, 0.1), np.arange(359.05, 360.0, 0.1)], 6).astype(dtype)
    lat = np.round(40.95 - 0.1 * np.arange(10), 6).astype(dtype)  # north to south, as the files
    t = pd.date_range("2016-01-01", periods=4)
    vals = np.broadcast_to(np.arange(lon.size, dtype="float32") / 100 + 0.1, (1, t.size, lat.size, lon.size))
    sm = xr.DataArray(vals.copy(), dims=("layer", "time", "lat", "lon"),
                      coords={"layer": [1], "time": t, "lat": lat, "lon": lon})  # fmt: skip
    boxes = {
        "centres": (-0.45, 40.25, 0.45, 40.65),  # every edge through cell centres (east/north ones in)
        "outline": (-1.0, 40.0, 1.0, 41.0),  # the grid's outer edges
        "wrapped": (359.5, 40.2, 360.5, 40.8),  # in 0..360, across 0 deg
        "half_out": (0.5, 40.2, 1.5, 40.8),  # its east half lies east of the data (east edge 1.0)
    }
    polys = gpd.GeoDataFrame({"NAME": list(boxes)}, geometry=[shapely.box(*b) for b in boxes.values()], crs=4326)
    with pytest.warns(RuntimeWarning, match=r"1 polygons lie partly outside the data's grid \(half_out\)"):
        z = zonal_statistics(sm, polys, ("2016-01-02", "2016-01-03"), layer=1).set_index("NAME")
    np.testing.assert_allclose(z["coverage"].to_numpy(), [1.0, 1.0, 1.0, 0.5])
    # cells by xsomo's mask rule on the grid in -180..180 (centres -0.95..0.95): inside, or on the east/north edge
    clon, clat = cv.decimal_coords(lon), cv.decimal_coords(lat)
    clon = np.round(np.where(clon > 180, clon - 360, clon), 9)
    for name, (w, s, e, n) in boxes.items():
        w, e = (w - 360, e - 360) if w > 180 else (w, e)
        want = int(((clon > w) & (clon <= e))[None, :].repeat(lat.size, 0)[((clat > s) & (clat <= n))].sum())
        assert z.loc[name, "n_cells"] == want, (name, z.loc[name, "n_cells"], want)


def test_series_and_zonal_csv_numbers_read_back_exactly(tmp_path):
    """QA: the CSVs of xsomo series / zonal were written with float_format='%.5g': a cell centre at
    123.455 came back as 123.46 (another cell of a 0.01-degree grid) and soil moisture lost its
    sixth and seventh digits. Every number now reads back as the value written (float32 exact)."""
    import geopandas as gpd
    import shapely

    from xsomo.cli import main as cli
    from xsomo.gis.zonal import zonal_statistics
    from xsomo.prediction.output import to_files

    lon = np.round(123.405 + 0.01 * np.arange(10), 6)
    lat = np.round(45.005 + 0.01 * np.arange(8), 6)
    t = pd.date_range("2015-01-01", "2015-01-20", freq="D")
    vals = (0.1 + 0.3 * np.random.default_rng(1).random((1, t.size, lat.size, lon.size))).astype("float32")
    sm = xr.DataArray(vals, dims=("layer", "time", "lat", "lon"),
                      coords={"layer": [1], "time": t, "lat": lat, "lon": lon, **cv.layer_coords([1])})  # fmt: skip
    to_files(sm.to_dataset(name="sm"), tmp_path / "sm", progress=False)
    out = tmp_path / "p.csv"
    assert cli(["series", "--input", str(tmp_path / "sm"), "--layer", "1", "--point", "123.4551", "45.0312",
                "--out", str(out)]) == 0  # fmt: skip
    df = pd.read_csv(out)
    assert set(df["cell_lon"]) == {123.455} and set(df["cell_lat"]) == {45.035}
    want = sm.sel(layer=1, lon=123.455, lat=45.035).values
    np.testing.assert_array_equal(df["sm"].to_numpy().astype("float32"), want)
    polys = gpd.GeoDataFrame({"NAME": ["a"]}, geometry=[shapely.box(123.41, 45.01, 123.48, 45.06)], crs=4326)
    polys.to_file(tmp_path / "p.gpkg", driver="GPKG")
    zout = tmp_path / "z.csv"
    assert cli(["zonal", "--input", str(tmp_path / "sm"), "--polygons", str(tmp_path / "p.gpkg"),
                "--start", "2015-01-03", "--end", "2015-01-09", "--out", str(zout)]) == 0  # fmt: skip
    got = pd.read_csv(zout, float_precision="round_trip")
    direct = zonal_statistics(sm, polys, ("2015-01-03", "2015-01-09"), layer=1)
    # the command reads the files back in dask chunks, so its float64 sum can differ in the last
    # bit from the in-memory one; '%.5g' was off by up to 5e-6 relative
    np.testing.assert_allclose(got["mean_sm"], direct["mean_sm"], rtol=1e-13, atol=0)


def test_series_over_a_folder_missing_a_year_warns_and_breaks_the_line(data, tmp_path):
    """H2 finding 5: a folder missing its middle year gave a series and a plot that drew a straight
    line across the missing year, without a word."""
    import shutil

    from xsomo.gis.zonal import _series_figure, point_series, time_gaps

    d, sm = data
    gap = tmp_path / "gap"
    gap.mkdir()
    for f in d.glob("*.nc"):
        if "_2016" not in f.name:
            shutil.copy(f, gap / f.name)
    out = tmp_path / "p.csv"
    with pytest.warns(UserWarning, match=r"no days from 2016-01-01 to 2016-12-31 \(366 days: the whole year 2016\)"):
        assert main(["series", "--input", str(gap), "--point", "-2.45", "39.95", "--out", str(out),
                     "--plot", str(tmp_path / "p.png")]) == 0
    df = pd.read_csv(out, parse_dates=["time"])
    assert not (df["time"].dt.year == 2016).any() and df["sm"].notnull().all()
    # the plotted line holds NaN on the missing days: matplotlib breaks it there
    cut = sm.sel(time=~(sm.time.dt.year == 2016))
    assert time_gaps(cut.time) == [(pd.Timestamp("2016-01-01"), pd.Timestamp("2016-12-31"))]
    assert time_gaps(sm.time) == []
    with pytest.warns(UserWarning, match="whole year 2016"):
        s = point_series(cut.expand_dims(layer=[1]), -2.45, 39.95)
    ax = _series_figure(s).axes[0]
    y = np.asarray(ax.lines[0].get_ydata(), float)
    assert y.size == sm.sizes["time"] and int(np.isnan(y).sum()) == 366
    assert np.isnan(y[(sm.time.dt.year == 2016).values]).all()
    # several lines (region x layer) break too
    two = xr.concat([s, s + 0.1], dim=pd.Index(["a", "b"], name="region"))
    lines = _series_figure(two).axes[0].lines
    assert len(lines) == 2 and all(int(np.isnan(np.asarray(ln.get_ydata(), float)).sum()) == 366 for ln in lines)
    # a few missing days are named as days
    few = sm.drop_sel(time=pd.date_range("2015-03-02", "2015-03-04"))
    with pytest.warns(UserWarning, match=r"2015-03-02 to 2015-03-04 \(3 days\)"):
        point_series(few.expand_dims(layer=[1]), -2.45, 39.95)
