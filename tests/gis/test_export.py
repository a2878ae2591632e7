"""``xsomo export`` on the command line."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import xarray as xr
from somo_files import GRID, expected_value, write_somo_files

from xsomo.commands import export
from xsomo.exceptions import XsomoValueError


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="xsomo")
    sub = parser.add_subparsers(dest="command")
    export.add_parser(sub)
    return export.run(parser.parse_args(["export", *argv]))


@pytest.fixture(scope="module")
def somo_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("somo_cli")
    write_somo_files(d, layers=(1, 3), years=(2010, 2011, 2012), days=40, writer="xsomo")
    return d


def test_export_day_mean_anomaly(
    somo_dir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "day.tif"
    assert (
        _main(
            [
                "--input",
                str(somo_dir / "SoMo.ml-EU_layer*_*.nc"),
                "--layer",
                "3",
                "--date",
                "2011-02-03",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert str(out) in capsys.readouterr().out
    with rasterio.open(out) as src:
        got = src.read(1)
        assert src.crs.to_epsg() == 4326
    want = expected_value(
        3, np.array(["2011-02-03"], dtype="datetime64[ns]"), GRID.lat[::-1], GRID.lon
    )[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)

    out = tmp_path / "mean.tif"
    assert (
        _main(
            [
                "--input",
                str(somo_dir),
                "--layer",
                "1",
                "--stat",
                "mean",
                "--start",
                "2012-01-10",
                "--end",
                "2012-01-19",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with rasterio.open(out) as src:
        got = src.read(1)
    want = expected_value(
        1, pd.date_range("2012-01-10", "2012-01-19").to_numpy(), GRID.lat[::-1], GRID.lon
    ).mean(0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)

    out = tmp_path / "anom.tif"
    assert (
        _main(
            [
                "--input",
                str(somo_dir),
                "--layer",
                "1",
                "--stat",
                "anomaly",
                "--start",
                "2010-01-01",
                "--end",
                "2010-01-31",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with rasterio.open(out) as src:
        assert src.tags()["statistic"] == "anomaly"
        assert src.crs.to_epsg() == 4326
        z = src.read(1)
    # numpy: the January means of 2010, 2011, 2012 (40 days a year: every January is covered)
    means = np.stack(
        [
            expected_value(1, pd.date_range(f"{y}-01-01", f"{y}-01-31").to_numpy(), GRID.lat[::-1], GRID.lon)
            .astype(float)
            .mean(0)
            for y in (2010, 2011, 2012)
        ]
    )
    want = (means[0] - means.mean(0)) / means.std(0, ddof=1)
    np.testing.assert_allclose(z, want, rtol=1e-4, atol=1e-4)
    assert np.isnan(z).sum() == np.isnan(want).sum() > 0


def test_export_metrics_and_errors(
    somo_dir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = xr.Dataset(
        {"pearson_r": (("station", "layer"), [[0.5, 0.6], [0.7, 0.8]])},
        coords={
            "station": ["A", "B"],
            "layer": [1, 2],
            "lat": ("station", [50.0, 51.0]),
            "lon": ("station", [10.0, 11.0]),
        },
    )
    m.to_netcdf(tmp_path / "metrics.nc")
    assert (
        _main(["--metrics", str(tmp_path / "metrics.nc"), "--out", str(tmp_path / "m.gpkg")]) == 0
    )
    gdf = pyogrio.read_dataframe(tmp_path / "m.gpkg")
    assert sorted(gdf["pearson_r"]) == [0.5, 0.6, 0.7, 0.8]

    from xsomo.exceptions import XsomoValueError

    with pytest.raises(XsomoValueError, match="--date"):
        _main(["--input", str(somo_dir), "--out", str(tmp_path / "x.tif")])
    with pytest.raises(XsomoValueError, match="--start and --end"):
        _main(["--input", str(somo_dir), "--stat", "mean", "--out", str(tmp_path / "x.tif")])
    with pytest.raises(XsomoValueError, match=r"\.tif"):
        _main(["--input", str(somo_dir), "--date", "2010-01-01", "--out", str(tmp_path / "x.png")])
    assert (
        _main(
            [
                "--input",
                str(tmp_path / "nothing"),
                "--date",
                "2010-01-01",
                "--out",
                str(tmp_path / "x.tif"),
            ]
        )
        == 1
    )
    assert "no such file or folder" in capsys.readouterr().err


def test_export_through_the_xsomo_command(somo_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    from xsomo.cli import main

    out = tmp_path / "cli.tif"
    assert (
        main(
            [
                "export",
                "--input",
                str(somo_dir),
                "--layer",
                "1",
                "--date",
                "2010-01-02",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 4326
        got = src.read(1)
    want = expected_value(1, np.array(["2010-01-02"], dtype="datetime64[ns]"), GRID.lat[::-1], GRID.lon)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
    assert (
        main(
            [
                "export",
                "--input",
                str(somo_dir),
                "--layer",
                "2",
                "--date",
                "2010-01-02",
                "--out",
                str(out),
            ]
        )
        == 1
    )


@pytest.fixture(scope="module")
def leap_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, xr.DataArray]:
    """Six years of random daily layer-1 maps (2013-2018, two 29 Februaries) written by xsomo's own writer."""
    from xsomo import conventions as cv
    from xsomo.prediction.output import to_files

    g = cv.GridSpec(west=10.0, east=10.8, south=50.0, north=50.6)
    t = pd.date_range("2013-01-01", "2018-12-31", freq="D")
    rng = np.random.default_rng(42)
    vals = (0.2 + 0.1 * rng.random((1, t.size, g.nlat, g.nlon))).astype("float32")
    vals[:, :, -1, -1] = np.nan  # a 'sea' cell
    sm = xr.DataArray(
        vals, dims=("layer", "time", "lat", "lon"), coords={"time": t, **g.coords(), **cv.layer_coords([1])}
    )
    d = tmp_path_factory.mktemp("leap")
    to_files(sm.to_dataset(name="sm"), d, progress=False)
    return d, sm.isel(layer=0)


def test_leap_day_anomaly_export(leap_dir: tuple[pathlib.Path, xr.DataArray], tmp_path: pathlib.Path) -> None:
    """Issue 19 bug 2: START=2015-12-01 END=2016-02-29 compares with every December-February,
    each ending on the last day of February (numpy oracle over explicit windows)."""
    import calendar

    d, sm = leap_dir
    out = tmp_path / "leap.tif"
    argv = ["--input", str(d), "--stat", "anomaly", "--start", "2015-12-01", "--end", "2016-02-29", "--out", str(out)]
    assert _main(argv) == 0
    with rasterio.open(out) as src:
        z = src.read(1)
        assert src.crs.to_epsg() == 4326
        assert src.tags()["n_years"] == "5"
    x = sm.transpose("time", "lat", "lon")
    t = pd.DatetimeIndex(x.time.values)
    means = {}
    for y in range(2013, 2018):
        end = pd.Timestamp(y + 1, 2, calendar.monthrange(y + 1, 2)[1])
        sel = (t >= pd.Timestamp(y, 12, 1)) & (t <= end)
        assert sel.sum() == 31 + 31 + end.day
        means[y] = x.values[sel].astype(float).mean(axis=0)
    stack = np.stack(list(means.values()))
    want = (means[2015] - stack.mean(axis=0)) / stack.std(axis=0, ddof=1)
    want = want[::-1]  # the COG is north-up
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-5)
    assert np.isnan(z[0, -1]) and np.isfinite(z).sum() == z.size - 1
    # the plugin's old rule (windows moved to start on the 28th) gives other numbers: the test can tell
    wrong = {y: x.values[(t >= pd.Timestamp(y, 12, 28)) & (t <= pd.Timestamp(y + 1, 2, 28))].astype(float).mean(axis=0)
             for y in (2013, 2014, 2016, 2017)}
    wrong_stack = np.stack([*wrong.values(), means[2015]])
    wrong_z = ((means[2015] - wrong_stack.mean(axis=0)) / wrong_stack.std(axis=0, ddof=1))[::-1]
    assert np.nanmax(np.abs(wrong_z - z)) > 0.1


def test_export_metrics_of_evaluate_with_footprint_weights(tmp_path: pathlib.Path) -> None:
    """Issue 19 bug 1: the metrics that `xsomo evaluate` writes for COSMOS-like stations (with
    footprint weights, from SoMo files carrying spatial_ref) export to a GeoPackage: one feature
    per station and layer, the `layer` field, the weights as fields, no spatial_ref column."""
    import xsomo
    from xsomo import conventions as cv
    from xsomo import evaluation
    from xsomo.prediction.output import to_files

    g = cv.GridSpec(west=10.0, east=11.6, south=50.0, north=51.2)
    t = pd.date_range("2010-01-01", "2010-12-31", freq="D")
    x = expected_value(1, t.to_numpy(), g.lat, g.lon)
    sm = xr.DataArray(
        np.stack([x, 0.9 * x + 0.02, 0.8 * x + 0.05]),
        dims=("layer", "time", "lat", "lon"),
        coords={"time": t, **g.coords(), **cv.layer_coords()},
    )
    to_files(sm.to_dataset(name="sm"), tmp_path / "somo", progress=False)
    ds = xsomo.open_somo(tmp_path / "somo")
    assert "spatial_ref" in ds.coords
    lat = np.array([50.05, 50.45, 51.15])
    lon = np.array([10.05, 10.75, 11.45])
    rows = [int(np.argmin(np.abs(ds.lat.values - v))) for v in lat]
    cols = [int(np.argmin(np.abs(ds.lon.values - v))) for v in lon]
    rng = np.random.default_rng(3)
    obs = np.stack([ds["sm"].isel(layer=0, lat=i, lon=j).values for i, j in zip(rows, cols, strict=True)])
    obs = obs + 0.005 * rng.standard_normal(obs.shape)
    stations = xr.Dataset(
        {"sm": (("station", "time"), obs.astype("float32"))},
        coords={
            "station": ["A", "B", "C"],
            "time": ds.time.values,
            "lat": ("station", lat),
            "lon": ("station", lon),
            "footprint_depth": ("station", [0.15, 0.2, 0.3], {"units": "m"}),
        },
    )
    metrics = evaluation.evaluate(ds, stations, min_days=20, anomaly=False)
    assert "footprint_weights" in metrics.coords
    nc = tmp_path / "metrics.nc"
    metrics.to_netcdf(nc)
    out = tmp_path / "metrics.gpkg"
    assert _main(["--metrics", str(nc), "--out", str(out)]) == 0
    gdf = pyogrio.read_dataframe(out)
    assert "spatial_ref" not in gdf.columns and "weight_layer" not in gdf.columns
    assert len(gdf) == metrics.sizes["station"] * metrics.sizes["layer"]
    assert sorted(set(gdf["layer"])) == [0, 1, 2, 3]
    assert set(gdf["layer_label"]) == {"footprint", "layer1", "layer2", "layer3"}
    assert pyogrio.read_info(out)["crs"] == "EPSG:4326"
    for _, row in gdf.iterrows():
        ref = metrics.sel(station=row["station"], layer=row["layer"])
        assert (row.geometry.x, row.geometry.y) == (float(ref.lon), float(ref.lat))
        for name in ("pearson_r", "urmsd", "bias", "rmse", "nse", "kge"):
            want = float(ref[name])
            assert (np.isnan(want) and np.isnan(row[name])) or row[name] == pytest.approx(want, rel=1e-12), name
        assert row["n"] == int(ref["n"])
        for k in (1, 2, 3):
            w = float(metrics["footprint_weights"].sel(station=row["station"], weight_layer=k))
            assert row[f"footprint_weight_layer{k}"] == pytest.approx(w)
    # stations A and B are on land (4 scored layers each), C on the "sea": the comparison means something
    assert np.isfinite(gdf["pearson_r"]).sum() == 8 and gdf.loc[gdf.station == "C", "pearson_r"].isna().all()


def test_export_writes_the_qgis_style_beside_the_map(somo_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Issue 19 item 6: a sequential soil-moisture ramp for days and means, a diverging z-score ramp
    centred on 0 for anomalies, as <name>.qml (QGIS's default style); --no-style leaves it out."""
    import xml.etree.ElementTree as ET

    def ramp(qml: pathlib.Path) -> tuple[float, float, dict[float, str]]:
        shader = ET.parse(qml).getroot().find(".//colorrampshader")
        items = {float(i.get("value")): i.get("color") for i in shader.findall("item")}
        return float(shader.get("minimumValue")), float(shader.get("maximumValue")), items

    day = tmp_path / "day.tif"
    assert _main(["--input", str(somo_dir), "--date", "2010-01-05", "--out", str(day)]) == 0
    lo, hi, items = ramp(day.with_suffix(".qml"))
    assert (lo, hi) == (0.05, 0.5)
    lum = [sum(int(c[k : k + 2], 16) for k in (1, 3, 5)) for _, c in sorted(items.items())]
    assert lum == sorted(lum, reverse=True)  # sequential: light (dry) to dark (wet)
    anom = tmp_path / "anom.tif"
    argv = ["--input", str(somo_dir), "--stat", "anomaly", "--start", "2010-01-01", "--end", "2010-01-31"]
    assert _main([*argv, "--out", str(anom)]) == 0
    lo, hi, items = ramp(anom.with_suffix(".qml"))
    assert lo == -hi == -3.0
    assert items[0.0] == "#f5f5f5"  # the neutral colour sits on 0
    assert items[-3.0] != items[3.0]
    plain = tmp_path / "plain.tif"
    assert _main(["--input", str(somo_dir), "--date", "2010-01-05", "--out", str(plain), "--no-style"]) == 0
    assert not plain.with_suffix(".qml").exists()


def test_export_time_stack_vrt_and_qlr(leap_dir: tuple[pathlib.Path, xr.DataArray], tmp_path: pathlib.Path) -> None:
    """Issue 19 item 4: the whole period as one VRT (band k = day k, description = date, unit m3 m-3)
    and a .qlr with one temporal layer per day."""
    import xml.etree.ElementTree as ET

    d, sm = leap_dir
    out = tmp_path / "stack.vrt"
    assert _main(["--input", str(d), "--layer", "1", "--out", str(out)]) == 0
    with rasterio.open(out) as src:
        assert src.count == sm.sizes["time"] and src.crs.to_epsg() == 4326
        assert src.descriptions[0] == "2013-01-01" and src.descriptions[-1] == "2018-12-31"
        assert set(src.units) == {"m3 m-3"}
        k = list(src.descriptions).index("2016-02-29") + 1
        np.testing.assert_array_equal(src.read(k), sm.sel(time="2016-02-29").values[::-1], strict=False)
        assert src.bounds == pytest.approx((10.0, 50.0, 10.8, 50.6))
    root = ET.parse(out.with_suffix(".qlr")).getroot()
    layers = root.findall(".//maplayer")
    assert len(layers) == sm.sizes["time"]
    lay = next(m for m in layers if m.findtext("layername") == "2016-02-29")
    assert lay.find("temporal").get("mode") == "0"
    assert lay.findtext("temporal/fixedRange/start") == "2016-02-29T00:00:00Z"
    assert lay.find(".//rasterrenderer").get("band") == str(k)
    assert pathlib.Path(lay.findtext("datasource")) == out.resolve()



def test_period_mean_and_anomaly_need_every_day(tmp_path: pathlib.Path) -> None:
    """With a year's file missing a DJF window held December alone and still counted
    (mean of a month written as the season's; n_years one too many)."""
    import xsomo
    from xsomo.gis.export import select_map

    write_somo_files(tmp_path, layers=(1, 3), years=(2010, 2011, 2013, 2014, 2015), writer="xsomo")
    write_somo_files(tmp_path, layers=(1,), years=(2012,), writer="xsomo")
    with pytest.warns(RuntimeWarning, match=r"layer 3 lacks 366 days .*no file of 2012"):
        ds = xsomo.open_somo(tmp_path)
    one = ds.sel(layer=[3])
    with pytest.raises(XsomoValueError, match=r"lack 366 of its 366 days .* missing"):
        select_map(one, layer=3, stat="mean", period=("2012-01-01", "2012-12-31"))
    with pytest.raises(XsomoValueError, match=r"lack 366 of its 366 days .* missing"):  # opened without 2012
        select_map(xsomo.open_somo(tmp_path, layers=[3]), layer=3, stat="mean", period=("2012-01-01", "2012-12-31"))
    with pytest.raises(XsomoValueError, match="holds no value on 2012-07-01"):
        select_map(ds, layer=3, time="2012-07-01")
    # partial dates (hostile-input QA): a month is no day; a period's partial end covers its
    # month or year (('2015', '2015') had been the mean of 2015-01-01 alone)
    with pytest.raises(XsomoValueError, match=r"time='2015-07' is not one day.*period=\('2015-07', '2015-07'\)"):
        select_map(one, layer=3, time="2015-07")
    whole = select_map(one, layer=3, stat="mean", period=("2015", "2015"))
    np.testing.assert_allclose(whole.values, one.sm.sel(layer=3, time="2015").mean("time").values, rtol=1e-6)
    z = select_map(one, layer=3, stat="anomaly", period=("2014-12-01", "2015-02-28"))
    # complete DJF windows of layer 3: 2010/11, 2013/14, 2014/15 (2011/12 and 2012/13 lack days)
    assert z.attrs["n_years"] == 3
    sm = one.sm.sel(layer=3).load().astype("float64")
    wins = [("2010-12-01", "2011-02-28"), ("2013-12-01", "2014-02-28"), ("2014-12-01", "2015-02-28")]
    means = np.stack([sm.sel(time=slice(a, b)).mean("time").values for a, b in wins])
    want = (means[-1] - means.mean(0)) / means.std(0, ddof=1)
    np.testing.assert_allclose(z.values, want, rtol=1e-4, atol=1e-4)


def test_cog_of_one_row_column_or_cell_is_in_place(somo_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """A 1-row, 1-column or 1-cell selection was written with an identity transform (at 0°N 0°E, 1° pixels)."""
    import xsomo
    from xsomo.gis.export import to_cog

    ds = xsomo.open_somo(somo_dir)
    for name, sel in (("row", {"lat": slice(3, 4)}), ("col", {"lon": slice(5, 6)}), ("cell", {"lat": slice(3, 4), "lon": slice(5, 6)})):
        sub = ds.isel(sel)
        path = to_cog(sub, tmp_path / f"{name}.tif", layer=1, time="2010-01-05")
        with rasterio.open(path) as r:
            t = r.transform
            assert (t.a, -t.e) == pytest.approx((0.1, 0.1)), name
            assert t.c == pytest.approx(float(sub.lon.min()) - 0.05) and t.f == pytest.approx(float(sub.lat.max()) + 0.05), name
            np.testing.assert_allclose(r.read(1), sub.sm.sel(layer=1, time="2010-01-05").sortby("lat", ascending=False).values)


def test_export_without_style_removes_an_earlier_style(somo_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    import xsomo
    from xsomo.gis.export import to_cog

    ds = xsomo.open_somo(somo_dir)
    out = tmp_path / "map.tif"
    to_cog(ds, out, layer=1, stat="anomaly", period=("2011-01-05", "2011-01-20"))
    assert out.with_suffix(".qml").is_file()  # the z-score ramp
    to_cog(ds, out, layer=1, time="2011-01-05", style=False, overwrite=True)
    assert not out.with_suffix(".qml").exists()  # QGIS would draw the day with the z-score ramp


def test_export_refuses_ignored_or_unsupported_options(somo_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """QA: --date with --start/--end silently ignored the period; --blocksize 16 made GDAL warn."""
    day = ["--input", str(somo_dir), "--layer", "1", "--date", "2011-02-03"]
    with pytest.raises(XsomoValueError, match=r"--date exports one day.*not both"):
        _main([*day, "--start", "2011-01-01", "--end", "2011-01-31", "--out", str(tmp_path / "a.tif")])
    with pytest.raises(XsomoValueError, match=r"--blocksize 16: .* at least 128"):
        _main([*day, "--blocksize", "16", "--out", str(tmp_path / "b.tif")])
    with pytest.raises(XsomoValueError, match=r"leave out --date, --stat, --start and --end"):
        _main(["--input", str(somo_dir), "--start", "2011-01-01", "--out", str(tmp_path / "s.vrt")])
    assert not list(tmp_path.iterdir())


def test_the_documented_module_paths_work_after_import_xsomo():
    """docs/gis.md's xsomo.gis.to_time_stack(...) raised AttributeError after `import xsomo`."""
    import subprocess
    import sys

    code = "import xsomo; xsomo.gis.to_time_stack; xsomo.gis.metrics_to_gpkg; xsomo.evaluation.to_geodataframe"
    subprocess.run([sys.executable, "-c", code], check=True)
