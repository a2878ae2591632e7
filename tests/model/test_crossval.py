"""Cross-validation by cell and the `xsomo train` command."""

from __future__ import annotations

import numpy as np
import pytest

from xsomo import testing
from xsomo.cli import main
from xsomo.exceptions import XsomoValueError
from xsomo.model import TrainedModel, crossval

TINY = {
    "layers": (1,), "ensemble": 1, "lookback": 20, "seq_length": 10, "epochs": 1, "steps_per_epoch": 2,
    "batch_size": 8, "progress": False, "device": "cpu", "val_fraction": 0.0, "forget_tolerance": 0.0,
}  # fmt: skip



def test_fold_cells_partition():
    folds = crossval.fold_cells(11, 3, seed=2)
    allc = np.concatenate(folds)
    np.testing.assert_array_equal(np.sort(allc), np.arange(11))
    assert sorted(len(f) for f in folds) == [3, 4, 4]
    with pytest.raises(XsomoValueError):
        crossval.fold_cells(3, 5)


def test_cross_validate_table_and_best():
    drivers, targets, _ = testing.synthetic_case(seed=4, nlat=3, nlon=3, ndays=120, cells=6)
    scores, best = crossval.cross_validate(drivers, targets, k=2, grid={"hidden": [2, 4]}, **TINY)
    assert len(scores) == 2 * 2 * 1
    assert set(scores.columns) >= {"hidden", "fold", "layer", "pearson_r", "urmsd", "rmse", "n_cells"}
    assert set(scores["fold"]) == {0, 1} and set(scores["hidden"]) == {2, 4}
    mean = scores.groupby("hidden")["pearson_r"].mean()
    assert best == {"hidden": int(mean.idxmax())}


def test_train_command(tmp_path, capsys):
    drivers, targets, _ = testing.synthetic_case(seed=5, nlat=3, nlon=3, ndays=100, cells=4)
    drivers.to_netcdf(tmp_path / "drivers.nc")
    targets.drop_vars("station_ids").to_netcdf(tmp_path / "targets.nc")
    with pytest.warns(RuntimeWarning, match="split by time"):  # 4 cells: too few to hold some out
        rc = main([
        "train", "--drivers", str(tmp_path), "--targets", str(tmp_path / "targets.nc"), "--out", str(tmp_path / "m"),
        "--layers", "1", "2", "--ensemble", "2", "--hidden", "3", "--epochs", "1", "--lookback", "20",
        "--seq-length", "10", "--steps-per-epoch", "1", "--batch-size", "4", "--no-progress", "--device", "cpu",
        "--consistency", "5", "--consistency-cells", "2", "--forget-tolerance", "0",
        ])  # fmt: skip
    assert rc == 0
    model = TrainedModel.load(tmp_path / "m")
    assert model.config.layers == (1, 2) and model.config.ensemble == 2 and model.config.hidden == 3
    assert model.config.training["consistency"] == 5.0 and model.config.training["consistency_cells"] == 2
    assert len(model.history["layer1_member0"]["consistency"]) == 1  # the penalty ran
    assert "model saved" in capsys.readouterr().out
    assert main(["train", "--drivers", str(tmp_path / "nope.nc"), "--targets", str(tmp_path), "--out", "x"]) == 1
