"""``xsomo predict`` end to end on a saved model and a drivers file; bad input gives a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from test_inference import make_model, synthetic_drivers

from xsomo import cli
from xsomo import conventions as cv
from xsomo.commands.predict import parse_chunks
from xsomo.exceptions import XsomoValueError
from xsomo.model import TrainedModel
from xsomo.prediction import inference


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model = make_model(lookback=20)
    model.save(root / "model")
    drivers = synthetic_drivers(nlat=4, nlon=5, ndays=120, seed=6, start="2015-11-01")
    drivers.to_netcdf(root / "drivers.nc")
    return root, drivers


def test_predict_command_writes_the_files(run_inputs, capsys):
    root, drivers = run_inputs
    out = root / "sm"
    argv = [
        "predict", "--drivers", str(root / "drivers.nc"), "--model", str(root / "model"), "--out", str(out),
        "--start", "2016-01-01", "--end", "2016-02-15", "--chunks", "lat=2,lon=5", "--mode", "continuous",
        "--no-progress",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    assert "3 written, 0 already there" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        cv.output_filename(n, 2016) for n in (1, 2, 3)
    )
    model = TrainedModel.load(root / "model")
    want = inference.predict(
        drivers, model, time=("2016-01-01", "2016-02-15"), mode="continuous"
    ).compute()
    with xr.open_dataset(out / cv.output_filename(2, 2016)) as ds:
        assert ds.sizes["time"] == 46
        np.testing.assert_allclose(
            ds["layer2"].values,
            want["sm"].sel(layer=2).isel(lat=slice(None, None, -1)).values,
            atol=2e-6,
        )
    # the same command again resumes: nothing left to do
    assert cli.main(argv) == 0
    assert "0 written, 3 already there and skipped" in capsys.readouterr().out
    # the same files in a sub-folder of --out are not this folder's (they were counted as skipped)
    nest = root / "nest"
    import shutil

    shutil.copytree(out, nest / "old_run")
    assert cli.main([*argv[:6], str(nest), *argv[7:]]) == 0
    assert "3 written, 0 already there" in capsys.readouterr().out


def test_predict_command_errors(run_inputs, capsys):
    root, _ = run_inputs
    blocker = root / "plain_file"
    blocker.write_text("x")
    rc = cli.main(["predict", "--drivers", str(root / "drivers.nc"), "--model", str(root / "model"),
                   "--out", str(blocker / "sm")])  # fmt: skip
    assert rc == 1
    assert "output folder" in capsys.readouterr().err
    rc = cli.main(["predict", "--drivers", str(root / "drivers.nc"), "--model", str(root / "model"),
                   "--out", str(root / "sm2"), "--start", "2015-11-05"])  # fmt: skip
    assert rc == 1
    assert "spin-up" in capsys.readouterr().err


def test_parse_chunks():
    assert parse_chunks("64") == 64
    assert parse_chunks("lat=16, lon=32") == {"lat": 16, "lon": 32}
    assert parse_chunks(None) is None
    with pytest.raises(XsomoValueError):
        parse_chunks("time=3")
    for zero in ("0", "lat=0,lon=5"):  # (lat=0 had been taken; QA)
        with pytest.raises(XsomoValueError, match="at least 1"):
            parse_chunks(zero)


def test_item6_predict_into_a_folder_of_another_model_refuses_with_the_fix(run_inputs, capsys):
    root, _ = run_inputs
    make_model(lookback=20, seed=7).save(root / "other_model")
    common = ["--drivers", str(root / "drivers.nc"), "--out", str(root / "mixed"), "--start", "2016-01-01",
              "--end", "2016-01-31", "--mode", "continuous", "--no-progress"]  # fmt: skip
    assert cli.main(["predict", "--model", str(root / "model"), *common]) == 0
    capsys.readouterr()
    assert cli.main(["predict", "--model", str(root / "other_model"), *common]) == 1
    err = capsys.readouterr().err
    assert "xsomo predict: error:" in err and "--overwrite" in err and "Traceback" not in err
    assert cli.main(["predict", "--model", str(root / "other_model"), *common, "--overwrite"]) == 0
    assert "3 written, 0 already there" in capsys.readouterr().out
