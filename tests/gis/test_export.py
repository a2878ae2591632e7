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


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="xsomo")
    sub = parser.add_subparsers(dest="command")
    export.add_parser(sub)
    return export.run(parser.parse_args(["export", *argv]))


@pytest.fixture(scope="module")
def somo_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("somo_cli")
    write_somo_files(d, layers=(1, 3), years=(2010, 2011, 2012), days=40)
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
    assert out.exists()
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
