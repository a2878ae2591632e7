"""Issue 14 item 9: the command line never ends in a traceback.

Every case of the issue: the exit status is 1, stderr holds ``xsomo <cmd>: error:`` with
the option and the path, no traceback (unless ``--debug``), and nothing is left behind.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from xsomo import cli
from xsomo.commands import common
from xsomo.exceptions import DataFormatError, GridMismatchError, XsomoError, XsomoExceptionGroup


@pytest.fixture(scope="module")
def prepared(tiny_world, tmp_path_factory) -> pathlib.Path:
    from xsomo.drivers.assemble import prepare_world

    out = tmp_path_factory.mktemp("prepared")
    prepare_world(tiny_world, out)
    return out


def fails(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI, expect exit 1 and an error line naming every needle; no traceback."""
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 1, err
    first = err.splitlines()[0]
    assert first.startswith(f"xsomo {argv[0]}") and ": error: " in first, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_train_out_below_a_file_fails_before_training(prepared, tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    from xsomo.model import training

    def no_training(*a, **k):  # the check must come before any training
        raise AssertionError("training started although --out cannot be written")

    monkeypatch.setattr(training, "train_lstm", no_training)
    fails(capsys, ["train", "--drivers", str(prepared), "--targets", str(prepared), "--out", str(afile / "model")],
          "--out", str(afile), "not a folder")
    assert afile.read_text() == "keep"


def test_drivers_pointing_at_a_csv(prepared, tmp_path, capsys):
    csv = tmp_path / "drivers.csv"
    csv.write_text("a,b\n1,2\n")
    fails(capsys, ["train", "--drivers", str(csv), "--targets", str(prepared), "--out", str(tmp_path / "m")],
          "--drivers", str(csv), "CSV")
    assert not (tmp_path / "m").exists()


def test_predict_unknown_device(prepared, tmp_path, capsys):
    out = tmp_path / "sm"
    fails(capsys, ["predict", "--drivers", str(prepared), "--model", str(tmp_path), "--out", str(out),
                   "--device", "tpu"], "--device", "tpu", "cpu")
    assert not out.exists()


@pytest.mark.parametrize("day", ["2016-02-30", "2016-13-01", "20160201"])
def test_impossible_dates(prepared, tmp_path, capsys, day):
    out = tmp_path / "sm"
    fails(capsys, ["predict", "--drivers", str(prepared), "--model", str(tmp_path), "--out", str(out),
                   "--start", day], "--start", day)
    assert not out.exists()
    fails(capsys, ["sample", "--preset", "tiny", "--out", str(tmp_path / "w"), "--end", day], "--end", day)
    assert not (tmp_path / "w").exists()


def test_start_after_end_names_the_options(prepared, tmp_path, capsys):
    out = tmp_path / "sm"
    fails(capsys, ["predict", "--drivers", str(prepared), "--model", str(tmp_path), "--out", str(out),
                   "--start", "2016-06-01", "--end", "2016-01-01"], "--start 2016-06-01 is after --end 2016-01-01")
    assert not out.exists()


def test_parse_date_keeps_real_days():
    assert common.parse_date("2016-02-29", "--start") == "2016-02-29"
    assert common.parse_date(None, "--start") is None
    with pytest.raises(XsomoError, match="2015-02-29"):
        common.parse_date("2015-02-29", "--start")


@pytest.mark.parametrize("command", ["sample", "prepare", "stac"])
def test_out_is_an_existing_file(tiny_world, tmp_path, capsys, command):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    extra = {"prepare": ["--world", str(tiny_world)], "sample": ["--preset", "tiny"], "stac": [str(tiny_world)]}
    argv = [command, "--out", str(afile), *extra[command]]
    fails(capsys, argv, "--out", str(afile), "existing file")
    assert afile.read_text() == "keep"


def test_nonexistent_inputs(prepared, tiny_world, tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    pred = tmp_path / "pred.nc"
    xr.Dataset({"sm": (("layer", "time", "lat", "lon"), np.zeros((1, 1, 1, 1)))}).to_netcdf(pred)
    cases = [
        (["evaluate", "--pred", str(pred), "--grid", str(missing), "--out", str(tmp_path / "m.nc")], "--grid"),
        (["evaluate", "--pred", str(missing), "--cosmos", str(tiny_world / "cosmos"),
          "--out", str(tmp_path / "m.nc")], "--pred"),
        (["evaluate", "--pred", str(pred), "--cosmos", str(tiny_world / "cosmos"), "--targets", str(missing),
          "--out", str(tmp_path / "m.nc")], "--targets"),
        (["train", "--drivers", str(prepared), "--targets", str(missing), "--out", str(tmp_path / "m")], "--targets"),
        (["prepare", "--world", str(missing), "--out", str(tmp_path / "p")], "--world"),
        (["report", "--world", str(missing), "--pred", str(pred), "--out", str(tmp_path / "r")], "--world"),
        (["experiment", "memory", "--world", str(missing), "--model", str(tmp_path), "--out", str(tmp_path / "e")],
         "--world"),
        # predict makes its output folder early (a write probe): the failed run removes it again
        (["predict", "--drivers", str(prepared), "--model", str(missing), "--out", str(tmp_path / "sm" / "a"),
          "--device", "cpu"], "--model"),
    ]
    for argv, option in cases:
        fails(capsys, argv, option, str(missing))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["pred.nc"], left  # no output file or folder of the failed runs


def test_evaluate_pred_empty_folder(tiny_world, tmp_path, capsys):
    empty = tmp_path / "sm"
    empty.mkdir()
    fails(capsys, ["evaluate", "--pred", str(empty), "--cosmos", str(tiny_world / "cosmos"),
                   "--out", str(tmp_path / "m.nc")], "--pred", str(empty), "SoMo.ml")


def test_evaluate_cosmos_nonexistent(tmp_path, capsys):
    pred = tmp_path / "pred.nc"
    xr.Dataset({"sm": (("layer", "time", "lat", "lon"), np.zeros((1, 1, 1, 1)))}).to_netcdf(pred)
    err = fails(capsys, ["evaluate", "--pred", str(pred), "--cosmos", "/nonexistent", "--out", str(tmp_path / "m.nc")],
                "--cosmos", "/nonexistent")
    assert "/stations.csv" not in err
    from xsomo.io import open_cosmos

    with pytest.raises(DataFormatError, match=r"/nonexistent.*does not exist"):
        open_cosmos("/nonexistent")


def test_empty_ismn_folder_message(tmp_path):
    from xsomo.targets.stations import open_ismn

    with pytest.raises(DataFormatError) as info:
        open_ismn(tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "NoneType" not in msg and "*.stm" in msg


def test_longitudes_0_360_named(tmp_path):
    from xsomo.conventions import GridSpec
    from xsomo.drivers.assemble import on_grid
    from xsomo.targets.scaling import scale_to

    grid = GridSpec(-1.0, 1.0, 40.0, 42.0)
    lon = np.round(np.arange(0, 360, 0.1), 2)
    lat = np.round(np.arange(39.5, 42.6, 0.1), 2)
    field = xr.DataArray(np.ones((lat.size, lon.size)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    for method in ("bilinear", "conservative"):
        with pytest.raises(GridMismatchError, match=r"0\.\.360.*-180\.\.180.*% 360"):
            on_grid(field, grid, method=method, what="ERA5-Land skin temperature (x.nc)")
    # the same field on a grid east of 0 is fine: nothing to convert there
    assert on_grid(field, GridSpec(0.0, 1.0, 40.0, 42.0), method="bilinear", what="x").shape == (20, 10)
    time = np.arange("2015-01-01", "2015-04-11", dtype="datetime64[D]").astype("datetime64[ns]")
    ref = xr.Dataset({"sm": (("layer", "time", "lat", "lon"), np.full((1, time.size, lat.size, 20), 0.2))},
                     coords={"layer": [1], "time": time, "lat": lat, "lon": np.round(np.arange(359.0, 361.0, 0.1)[:20], 2)})
    stations = xr.Dataset({"sm": (("station", "time"), np.random.default_rng(0).uniform(0.1, 0.3, (1, time.size)))},
                          coords={"station": ["a"], "time": time, "lat": ("station", [41.0]),
                                  "lon": ("station", [-0.5]), "layer": ("station", [1])})
    with pytest.raises(GridMismatchError, match=r"0\.\.360"):
        scale_to(stations, ref, grid=grid)


def test_cropped_soil_file_is_named(tiny_world, tmp_path):
    from xsomo.drivers.assemble import open_drivers

    world = tmp_path / "world"
    shutil.copytree(tiny_world, world, ignore=shutil.ignore_patterns("ismn", "products", "truth.nc", "era5land_hourly"))
    soil = world / "static" / "soil.nc"
    with xr.open_dataset(soil) as ds:
        cropped = ds.isel(lat=slice(0, ds.sizes["lat"] // 2)).load()
    soil.unlink()
    cropped.to_netcdf(soil)
    with pytest.raises(GridMismatchError) as info:
        open_drivers(world)
    assert str(soil) in str(info.value) and "soil" in str(info.value)


def test_exception_group_lists_every_sub_error(monkeypatch, capsys, tmp_path):
    from xsomo.commands import train

    inner = XsomoExceptionGroup("2 files are damaged", [DataFormatError("a.stm: cut"), DataFormatError("b.stm: NUL")])
    group = XsomoExceptionGroup("3 problems in the inputs", [inner, ValueError("strange value 7")])

    def boom(args):
        raise group

    monkeypatch.setattr(train, "run", boom)
    argv = ["train", "--drivers", "d", "--targets", "t", "--out", str(tmp_path / "m")]
    err = fails(capsys, argv, "3 problems in the inputs", "2 files are damaged", "a.stm: cut", "b.stm: NUL",
                "strange value 7")
    lines = err.splitlines()
    assert sum(line.lstrip().startswith("- ") for line in lines) == 4, err
    # nested errors are indented deeper than their group
    assert lines[next(i for i, x in enumerate(lines) if "a.stm" in x)].index("-") > lines[1].index("-")


def test_debug_shows_the_traceback_and_unexpected_errors_say_so(monkeypatch, capsys, tmp_path):
    from xsomo.commands import train

    def boom(args):
        raise ZeroDivisionError("division by zero in step 3")

    monkeypatch.setattr(train, "run", boom)
    argv = ["train", "--drivers", "d", "--targets", "t", "--out", str(tmp_path / "m")]
    err = fails(capsys, argv, "ZeroDivisionError", "division by zero in step 3", "--debug")
    for where in ([*argv, "--debug"], ["--debug", *argv]):
        assert cli.main(where) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and "xsomo train: error:" in err


def test_failed_run_removes_the_empty_folders_it_created(monkeypatch, capsys, tmp_path):
    from xsomo.commands import train

    def boom(args):
        (args.out / "ckpt" / "deeper").mkdir(parents=True)
        raise DataFormatError("bad input")

    monkeypatch.setattr(train, "run", boom)
    out = tmp_path / "new" / "model"
    fails(capsys, ["train", "--drivers", "d", "--targets", "t", "--out", str(out)], "bad input")
    assert not (tmp_path / "new").exists()
    # a folder that was there before stays, and so does a created folder holding a file
    kept = tmp_path / "kept"
    kept.mkdir()
    fails(capsys, ["train", "--drivers", "d", "--targets", "t", "--out", str(kept)], "bad input")
    assert kept.is_dir()

    def leaves_a_file(args):
        args.out.mkdir(parents=True)
        (args.out / "log.txt").write_text("x")
        raise DataFormatError("bad input")

    monkeypatch.setattr(train, "run", leaves_a_file)
    fails(capsys, ["train", "--drivers", "d", "--targets", "t", "--out", str(tmp_path / "withfile")], "bad input")
    assert (tmp_path / "withfile" / "log.txt").exists()


def test_drivers_option_means_the_same_in_every_command(prepared, monkeypatch, capsys, tmp_path):
    """``--drivers prepared/`` goes through one resolver in train, predict and experiment."""
    with xr.open_dataset(prepared / "drivers.nc") as want:
        got = common.open_drivers_arg(prepared)
        xr.testing.assert_identical(got.load(), want.load())
    seen = []

    class Stop(XsomoError):
        pass

    def spy(path, option="--drivers"):
        seen.append(pathlib.Path(path))
        raise Stop("stop here")

    monkeypatch.setattr(common, "open_drivers_arg", spy)
    model = tmp_path / "model"
    model.mkdir()
    for argv in (
        ["train", "--drivers", str(prepared), "--targets", str(prepared), "--out", str(tmp_path / "m"), "--device", "cpu"],
        ["predict", "--drivers", str(prepared), "--model", str(model), "--out", str(tmp_path / "sm"), "--device", "cpu"],
    ):
        if argv[0] == "predict":
            from xsomo.model import TrainedModel

            monkeypatch.setattr(TrainedModel, "load", classmethod(lambda cls, path: None))
        fails(capsys, argv, "stop here")
    assert seen == [prepared, prepared]


def test_drivers_folder_without_drivers_nc(tmp_path):
    with pytest.raises(XsomoError, match=r"drivers\.nc"):
        common.open_drivers_arg(tmp_path)


def test_ismn_info_lines_hidden_by_default():
    """The ``ismn`` package raises its logger to INFO; the CLI's handler still shows WARNING and up only."""
    code = (
        "import logging, xsomo.cli as c; c.configure_logging({v}); lg = logging.getLogger('ismn_meta_collector'); "
        "lg.setLevel('INFO'); lg.info('Processed file X'); lg.warning('a warning')"
    )
    env = {**os.environ}
    for verbose, shown in ((False, False), (True, True)):
        out = subprocess.run([sys.executable, "-c", code.format(v=verbose)], capture_output=True, text=True, env=env,
                             check=True)
        assert ("Processed file X" in out.stderr) is shown, out.stderr
        assert "a warning" in out.stderr


@pytest.mark.slow
def test_prepare_prints_no_ismn_info_lines(tiny_world, tmp_path):
    out = subprocess.run([sys.executable, "-m", "xsomo.cli", "prepare", "--world", str(tiny_world),
                          "--out", str(tmp_path / "p")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Processed file" not in out.stderr and "INFO" not in out.stderr, out.stderr


def test_demo_out_is_an_existing_file(tmp_path, capsys, monkeypatch):
    from xsomo import demo

    def no_pipeline(*a, **k):
        raise AssertionError("the demo started although --out cannot be written")

    monkeypatch.setattr(demo, "run_demo", no_pipeline)
    afile = tmp_path / "afile"
    afile.write_text("keep")
    fails(capsys, ["demo", "--out", str(afile)], "--out", str(afile), "existing file")
    fails(capsys, ["demo", "--out", str(afile / "sub")], "--out", "not a folder")
    assert afile.read_text() == "keep"


def test_export_impossible_date(tmp_path, capsys):
    pred = tmp_path / "somo"
    pred.mkdir()
    fails(capsys, ["export", "--input", str(pred), "--date", "2016-02-30", "--out", str(tmp_path / "x.tif")],
          "--date", "2016-02-30")


def test_warnings_print_as_one_line_naming_the_command(tmp_path):
    """A warning during a command reads ``xsomo <cmd>: warning: ...``, without Python's file and source line;
    one pointing into another package names its category and package; ``--debug`` keeps Python's format."""
    code = (
        "import os, sys, warnings, xsomo.cli as c, xsomo.commands.sample as s\n"
        "def run(args):\n"
        "    warnings.warn_explicit('12 stations have no forcing', UserWarning, os.path.join(os.path.dirname(s.__file__), 'sample.py'), 40)\n"
        "    warnings.warn_explicit('a third-party note', FutureWarning, '/x/site-packages/regionmask/core/mask.py', 10)\n"
        "    return 0\n"
        "s.run = run\n"
        "sys.exit(c.main(sys.argv[1:]))\n"
    )  # fmt: skip
    argv = [sys.executable, "-c", code, "sample", "--out", str(tmp_path / "w")]
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        "xsomo sample: warning: 12 stations have no forcing",
        "xsomo sample: warning (FutureWarning from regionmask): a third-party note",
    ]
    out = subprocess.run([*argv, "--debug"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "sample.py:40: UserWarning: 12 stations have no forcing" in out.stderr
    assert "xsomo sample: warning" not in out.stderr


def test_train_refuses_to_replace_a_model_before_training(tmp_path, capsys, monkeypatch):
    """A typo in --out replaced a model that took hours to train, after the new training (QA)."""
    from xsomo.model import training

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(training, "train_lstm", never)
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.json").write_text("{}")
    fails(capsys, ["train", "--drivers", "d", "--targets", "t", "--out", str(out)], "holds a trained model", "--overwrite")
    assert (out / "model.json").read_text() == "{}"


def test_point_mode_on_the_command_line(tmp_path, capsys):
    """`xsomo train` had no --dynamic/--static (station forcing was refused for lacking net_radiation),
    and `xsomo predict` of point drivers predicted every station, then failed on the file layout."""
    from xsomo import testing
    from xsomo.drivers.points import point_drivers
    from xsomo.model import TrainedModel
    from xsomo.prediction.inference import predict

    drv, tgt, _ = testing.synthetic_case(seed=0, nlat=3, nlon=3, ndays=200, cells=4)
    pts = point_drivers(tgt, drv)
    sensors = tgt.sm.sel(layer=1, drop=True).to_dataset().assign_coords(layer=("cell", [1] * 4)).rename(cell="station")
    pts.to_netcdf(tmp_path / "points.nc")
    sensors[["sm"]].to_netcdf(tmp_path / "stations.nc")
    argv = ["train", "--drivers", str(tmp_path / "points.nc"), "--targets", str(tmp_path / "stations.nc"),
            "--out", str(tmp_path / "model"), "--preset", "tiny", "--layers", "1", "--epochs", "1",
            "--steps-per-epoch", "2", "--lookback", "20", "--seq-length", "20", "--forget-tolerance", "0",
            "--val-fraction", "0", "--no-progress", "--dynamic", "precipitation", "air_temperature",
            "--static", "elevation_mean", "precipitation_mean"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    model = TrainedModel.load(tmp_path / "model")
    assert model.config.dynamic == ("precipitation", "air_temperature")
    out = tmp_path / "pred"
    base = ["predict", "--drivers", str(tmp_path / "points.nc"), "--model", str(tmp_path / "model"), "--out", str(out),
            "--mode", "windowed"]  # fmt: skip
    assert cli.main(base) == 0, capsys.readouterr().err
    with xr.open_dataset(out / "SoMo.ml-EU_points.nc") as got:
        want = predict(pts, model, mode="windowed")
        np.testing.assert_array_equal(got.sm.values, want.sm.values)
    fails(capsys, base, "exists", "--overwrite")
    fails(capsys, [*base, "--overwrite", "--years", "2014"], "point drivers", "--years")
