"""COG and GeoPackage export (:mod:`xsomo.gis.export`)."""

from __future__ import annotations

import itertools
import pathlib
import sqlite3
import struct

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from somo_files import expected_value, write_somo_files

import xsomo
from xsomo import conventions as cv
from xsomo.exceptions import MissingVariableError, XsomoKeyError, XsomoValueError
from xsomo.gis import export as gis

#: 6.4° x 4.8° at 0.1°: big enough for two overview levels with 16-pixel tiles
COG_GRID = cv.GridSpec(west=10.0, east=16.4, south=50.0, north=54.8)
YEARS = (2010, 2011, 2012)


@pytest.fixture(scope="module")
def somo(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    d = tmp_path_factory.mktemp("somo_cog")
    write_somo_files(d, layers=(1, 2), years=YEARS, grid=COG_GRID, writer="xsomo")
    return xsomo.open_somo(d)


def _tiff_layout(path: pathlib.Path) -> list[dict[str, int]]:
    """Each IFD of a little-endian classic TIFF: its offset, size and first/last tile offsets.

    An independent reading of the file bytes for the COG rules GDAL's validator checks:
    all IFDs before the image data, and overview tiles (coarsest first) before the full image.
    """
    b = path.read_bytes()
    assert b[:4] == b"II*\x00", "not a little-endian classic TIFF"
    (off,) = struct.unpack_from("<I", b, 4)
    ifds = []
    types = {3: ("H", 2), 4: ("I", 4)}
    while off:
        (n,) = struct.unpack_from("<H", b, off)
        tags: dict[int, list[int]] = {}
        for i in range(n):
            tag, typ, count, value = struct.unpack_from("<HHII", b, off + 2 + 12 * i)
            if typ not in types:
                continue
            fmt, size = types[typ]
            if count * size <= 4:
                vals = list(struct.unpack_from(f"<{count}{fmt}", b, off + 2 + 12 * i + 8))
            else:
                vals = list(struct.unpack_from(f"<{count}{fmt}", b, value))
            tags[tag] = vals
        tile_offsets = tags[324]
        ifds.append(
            {
                "offset": off,
                "width": tags[256][0],
                "height": tags[257][0],
                "tiled": int(322 in tags),
                "first_tile": min(tile_offsets),
                "last_tile": max(tile_offsets),
                "compression": tags[259][0],
                "predictor": tags.get(317, [1])[0],
            }
        )
        (off,) = struct.unpack_from("<I", b, off + 2 + 12 * n)
    return ifds


def _assert_cog(path: pathlib.Path) -> None:
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 4326
        assert src.transform.e < 0 and src.transform.b == 0 and src.transform.d == 0  # north-up
        assert src.profile["tiled"]
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.compression.name.upper() == "DEFLATE"
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
        assert len(src.overviews(1)) >= 1
    head = path.read_bytes()[:200]
    assert b"LAYOUT=IFDS_BEFORE_DATA" in head
    ifds = _tiff_layout(path)
    assert len(ifds) >= 2
    assert all(i["tiled"] and i["compression"] == 8 and i["predictor"] == 3 for i in ifds)
    # IFDs first, in increasing order, all before any tile data
    offsets = [i["offset"] for i in ifds]
    assert offsets == sorted(offsets)
    assert max(offsets) < min(i["first_tile"] for i in ifds)
    # full resolution first in the IFD chain, then ever smaller overviews ...
    widths = [i["width"] for i in ifds]
    assert widths == sorted(widths, reverse=True)
    # ... whose data come in the reverse order: coarsest overview first, full image last
    for finer, coarser in itertools.pairwise(ifds):
        assert coarser["last_tile"] < finer["first_tile"]


def test_day_cog_places_values_at_the_right_coordinates(
    somo: xr.Dataset, tmp_path: pathlib.Path
) -> None:
    path = gis.to_cog(somo, tmp_path / "day.tif", layer=2, time="2011-07-14", blocksize=16)
    _assert_cog(path)
    with rasterio.open(path) as src:
        assert src.bounds.left == pytest.approx(COG_GRID.west)
        assert src.bounds.right == pytest.approx(COG_GRID.east)
        assert src.bounds.top == pytest.approx(COG_GRID.north)
        assert src.bounds.bottom == pytest.approx(COG_GRID.south)
        assert src.res == pytest.approx((0.1, 0.1))
        # sample at a few points (cell centres and off-centre) through GDAL's geotransform
        pts = [(10.05, 54.75), (12.33, 51.07), (16.35, 50.05), (11.0 + 0.04, 53.0 - 0.06)]
        got = np.array([v[0] for v in src.sample(pts)])
        assert src.tags()["date"] == "2011-07-14" and src.tags()["layer"] == "2"
        assert src.nodata is not None and np.isnan(src.nodata)
    lat_c, lon_c = COG_GRID.cell_centre(
        np.array([p[1] for p in pts]), np.array([p[0] for p in pts])
    )
    want = np.array(
        [
            expected_value(2, np.array(["2011-07-14"], dtype="datetime64[ns]"), [la], [lo])[0, 0, 0]
            for la, lo in zip(lat_c, lon_c, strict=True)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def test_accessor_mean_and_overviews_for_europe_size(
    somo: xr.Dataset, tmp_path: pathlib.Path
) -> None:
    path = somo.somo.to_cog(
        tmp_path / "mean.tif", layer=1, stat="mean", period=("2010-06-01", "2010-08-31")
    )
    with rasterio.open(path) as src:
        data = src.read(1)
        assert src.tags()["period"] == "2010-06-01/2010-08-31"
    t = pd.date_range("2010-06-01", "2010-08-31").to_numpy()
    want = expected_value(1, t, COG_GRID.lat[::-1], COG_GRID.lon).mean(axis=0)
    np.testing.assert_allclose(data, want, rtol=0, atol=1e-6)
    assert gis._overview_count(570, 355, 256) == 2  # the Europe grid gets 285x178 and 143x89
    assert gis._overview_count(64, 48, 16) == 2


def test_anomaly_is_the_z_score_of_the_period_mean(
    somo: xr.Dataset, tmp_path: pathlib.Path
) -> None:
    period = ("2012-12-01", "2012-12-20")
    path = gis.to_cog(
        somo, tmp_path / "anom.tif", layer=1, stat="anomaly", period=period, blocksize=16
    )
    _assert_cog(path)
    with rasterio.open(path) as src:
        z = src.read(1)
        assert src.tags()["n_years"] == "3"
    # independent: the window mean in each of the three years, then the z-score
    lat, lon = COG_GRID.lat[::-1], COG_GRID.lon
    means = np.stack(
        [
            expected_value(1, pd.date_range(f"{y}-12-01", f"{y}-12-20").to_numpy(), lat, lon).mean(
                axis=0
            )
            for y in YEARS
        ]
    )
    want = (means[2] - means.mean(axis=0)) / means.std(axis=0, ddof=1)
    np.testing.assert_allclose(z, want, rtol=1e-4, atol=1e-4)
    assert np.isnan(z).sum() == np.isnan(means[0]).sum() > 0  # sea stays nodata
    # a climatology of two years is too short
    with pytest.raises(XsomoValueError, match="at least 3 years"):
        gis.select_map(somo, stat="anomaly", period=period, climatology=(2011, 2012))


def test_bad_requests(somo: xr.Dataset, tmp_path: pathlib.Path) -> None:
    with pytest.raises(XsomoKeyError, match="2013-01-01 is not in the data"):
        gis.to_cog(somo, tmp_path / "x.tif", time="2013-01-01")
    with pytest.raises(XsomoKeyError, match="layer 3"):
        gis.to_cog(somo, tmp_path / "x.tif", layer=3, time="2010-01-01")
    with pytest.raises(XsomoValueError, match="pass time="):
        gis.to_cog(somo, tmp_path / "x.tif")
    with pytest.raises(XsomoValueError, match="not inside the data"):
        gis.to_cog(somo, tmp_path / "x.tif", stat="mean", period=("2012-12-01", "2013-01-31"))
    with pytest.raises(XsomoValueError, match="period="):
        gis.to_cog(somo, tmp_path / "x.tif", stat="mean")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        gis.to_cog(somo, tmp_path / "absent" / "x.tif", time="2010-01-01")
    assert not list(tmp_path.iterdir())  # nothing half-written
    (tmp_path / "keep.tif").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        gis.to_cog(somo, tmp_path / "keep.tif", time="2010-01-01", overwrite=False)
    assert (tmp_path / "keep.tif").read_bytes() == b"old"


def _metrics() -> xr.Dataset:
    rng = np.random.default_rng(3)
    n = 5
    ds = xr.Dataset(
        {
            m: (("station", "layer"), rng.uniform(0, 1, (n, 3)))
            for m in ("pearson_r", "urmsd", "bias")
        },
        coords={
            "station": [f"NET_S{i}" for i in range(n)],
            "layer": [1, 2, 3],
            "lat": ("station", np.linspace(45.1, 55.3, n)),
            "lon": ("station", np.linspace(-3.2, 20.7, n)),
            "network": ("station", ["NET"] * n),
            "training_cell": ("station", [True, False, True, False, True]),
        },
    )
    ds["n"] = (("station", "layer"), rng.integers(100, 900, (n, 3)))
    return ds


def test_metrics_to_gpkg_points_version_and_values(tmp_path: pathlib.Path) -> None:
    import pyogrio

    metrics = _metrics()
    path = gis.metrics_to_gpkg(metrics, tmp_path / "m.gpkg")
    head = path.read_bytes()[:100]
    # GeoPackage header: application_id 'GPKG' at byte 68, user_version 10300 (1.3) at byte 60
    assert head[68:72] == b"GPKG"
    assert struct.unpack(">I", head[60:64])[0] == 10300
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10300
    info = pyogrio.read_info(path)
    assert info["geometry_type"] == "Point"
    assert info["crs"] == "EPSG:4326"
    gdf = pyogrio.read_dataframe(path)
    assert len(gdf) == 5 * 3
    for _, row in gdf.iterrows():
        ref = metrics.sel(station=row["station"], layer=row["layer"])
        assert row.geometry.x == pytest.approx(float(ref.lon))
        assert row.geometry.y == pytest.approx(float(ref.lat))
        assert row["pearson_r"] == pytest.approx(float(ref.pearson_r))
        assert row["n"] == int(ref.n)
        assert row["training_cell"] == int(ref.training_cell)
    assert not [p for p in tmp_path.iterdir() if p.name != "m.gpkg"]  # no temporary left


def test_metrics_need_coordinates(tmp_path: pathlib.Path) -> None:
    with pytest.raises(MissingVariableError, match="'lat'"):
        gis.metrics_to_gpkg(_metrics().drop_vars("lat"), tmp_path / "m.gpkg")


def test_prediction_with_ascending_lat_is_written_north_up(tmp_path: pathlib.Path) -> None:
    """A prediction as predict returns it (lat ascending, dask, sm_spread beside sm)."""
    grid = cv.GridSpec(west=-1.0, east=0.6, south=40.0, north=41.2)
    time = pd.date_range("2015-03-01", periods=3)
    data = np.stack([expected_value(n, time.to_numpy(), grid.lat, grid.lon) for n in (1, 2, 3)])
    pred = xr.Dataset(
        {
            "sm": (("layer", "time", "lat", "lon"), data),
            "sm_spread": (("layer", "time", "lat", "lon"), data * 0),
        },
        coords={"time": time, **grid.coords(), **cv.layer_coords()},
    ).chunk({"lat": 6, "lon": 8})
    path = pred.somo.to_cog(tmp_path / "p.tif", layer=3, time="2015-03-02", blocksize=16)
    with rasterio.open(path) as src:
        assert src.transform.e == pytest.approx(-0.1) and src.transform.f == pytest.approx(41.2)
        assert src.transform.c == pytest.approx(-1.0)
        got = src.read(1)
    want = data[2, 1][::-1]  # row 0 is the northernmost
    np.testing.assert_array_equal(got, want)


def test_one_published_file_opened_with_xarray(tmp_path: pathlib.Path) -> None:
    """A single SoMo.ml file opened plainly (variable ``layer2``, no layer dim) exports too."""
    (path,) = write_somo_files(tmp_path, layers=(2,), years=(2014,), days=5, writer="xsomo")
    with xr.open_dataset(path, decode_coords="all") as ds:
        out = ds.somo.to_cog(tmp_path / "one.tif", layer=2, time="2014-01-04", blocksize=16)
    with rasterio.open(out) as src:
        got = src.read(1)
        assert src.crs.to_epsg() == 4326
    lat = cv.GridSpec(west=10.0, east=11.6, south=50.0, north=51.2).lat[::-1]
    lon = cv.GridSpec(west=10.0, east=11.6, south=50.0, north=51.2).lon
    want = expected_value(2, np.array(["2014-01-04"], dtype="datetime64[ns]"), lat, lon)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


@pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofyear:DeprecationWarning")
def test_metrics_from_evaluate_to_gpkg(tmp_path: pathlib.Path) -> None:
    """The metrics Dataset that xsomo.evaluation.evaluate returns goes to the GeoPackage as it is."""
    import pyogrio

    testing = pytest.importorskip("xsomo.testing")
    _, _, truth = testing.synthetic_case(seed=3, nlat=3, nlon=3, ndays=120, cells=2)
    rng = np.random.default_rng(1)
    cells = [(0, 0), (2, 1)]
    st = xr.Dataset(
        {
            "sm": (
                ("station", "time"),
                np.array(
                    [truth.isel(lat=i, lon=j).sel(layer=1).values for i, j in cells], "float32"
                )
                + 0.01 * rng.standard_normal((2, truth.sizes["time"])).astype("float32"),
                {"units": "m3 m-3"},
            )
        },
        coords={
            "station": ["A", "B"],
            "time": truth.time.values,
            "lat": ("station", [float(truth.lat[i]) for i, _ in cells]),
            "lon": ("station", [float(truth.lon[j]) for _, j in cells]),
            "layer": ("station", [1, 1]),
        },
    )
    metrics = truth.to_dataset(name="sm").somo.evaluate(st)
    path = gis.metrics_to_gpkg(metrics, tmp_path / "eval.gpkg")
    gdf = pyogrio.read_dataframe(path)
    assert len(gdf) == metrics.sizes["station"] * metrics.sizes.get("layer", 1)
    assert {"pearson_r", "station"} <= set(gdf.columns)
    n_finite = 0
    for _, row in gdf.iterrows():
        ref = metrics.sel(station=row["station"], layer=row["layer"])
        assert row.geometry.x == pytest.approx(float(ref.lon))
        want = float(ref.pearson_r)
        if np.isfinite(want):
            assert row["pearson_r"] == pytest.approx(want)
            n_finite += 1
        else:  # a sensor is scored against its own layer only: NaN elsewhere, NaN in the file too
            assert np.isnan(row["pearson_r"])
    assert n_finite == metrics.sizes["station"]  # each station has its own layer's r


def test_metrics_gpkg_carries_a_default_style_from_the_data(tmp_path: pathlib.Path) -> None:
    """Issue 19 item 6: the GeoPackage's layer_styles holds QGIS's default style for the points:
    graduated colours of pearson_r over quantile classes of the data (r 0.90-0.99 -> 5 colours)."""
    import xml.etree.ElementTree as ET

    rs = [0.90, 0.92, 0.94, 0.95, 0.97, 0.99, np.nan]
    m = xr.Dataset(
        {"pearson_r": ("station", rs)},
        coords={"station": list("abcdefg"), "lat": ("station", np.linspace(40, 41, 7)),
                "lon": ("station", np.linspace(0, 1, 7))},
    )
    path = gis.metrics_to_gpkg(m, tmp_path / "m.gpkg", style=True)
    con = sqlite3.connect(path)
    (table, geom, default, qml), = con.execute(
        "SELECT f_table_name, f_geometry_column, useAsDefault, styleQML FROM layer_styles"
    ).fetchall()
    assert (table, default) == ("station_metrics", 1)
    assert geom == con.execute("SELECT column_name FROM gpkg_geometry_columns").fetchone()[0]
    con.close()
    r = ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2")
    assert (r.get("type"), r.get("attr")) == ("graduatedSymbol", "pearson_r")
    ranges = r.findall("ranges/range")
    assert len(ranges) == 5
    assert float(ranges[0].get("lower")) == pytest.approx(0.90) and float(ranges[-1].get("upper")) == pytest.approx(0.99)
    assert len({s.find(".//Option[@name='color']").get("value") for s in r.findall("symbols/symbol")}) == 5
    assert len(gis.metrics_to_gpkg(m, tmp_path / "plain.gpkg").read_bytes()) > 0  # default: no style table
    con = sqlite3.connect(tmp_path / "plain.gpkg")
    assert not con.execute("SELECT name FROM sqlite_master WHERE name='layer_styles'").fetchall()
    con.close()
