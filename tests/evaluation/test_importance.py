"""Permutation input importance (issue 18 item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xsomo
from xsomo import testing
from xsomo.evaluation.importance import input_importance
from xsomo.exceptions import XsomoValueError


@pytest.fixture(scope="module")
def trained():
    drivers, targets, _ = testing.synthetic_case(seed=3, nlat=4, nlon=4, ndays=730, cells=12)
    drivers["constant"] = xr.full_like(drivers["sand_top"], 1.0)
    drivers["constant"].attrs = {"units": "1"}
    model = xsomo.train_lstm(
        drivers, targets, preset="tiny", layers=(1,), dynamic=("precipitation", "net_radiation", "air_temperature"),
        static=("sand_top", "constant"), lookback=60, seq_length=60, epochs=6, steps_per_epoch=15, hidden=16,
        val_fraction=0.0, forget_tolerance=0.0, consistency=0.0, progress=False, device="cpu",
    )  # fmt: skip
    return model, drivers, targets


def test_shuffling_what_the_truth_needs_costs_more_than_a_constant(trained):
    model, drivers, targets = trained
    res = input_importance(model, drivers, targets, repeats=2, seed=0)
    assert res.r_drop.dims == ("input", "layer", "repeat")
    assert float(res.r.sel(layer=1)) > 0.6  # the model has learned something to lose
    drop = res.r_drop.sel(layer=1).median("repeat")
    # a constant input shuffled across cells is the same input: exactly no drop
    assert float(np.abs(res.r_drop.sel(input="constant")).max()) == 0.0
    # layer 1 of the truth is driven by rain: losing its timing costs the most
    assert float(drop.sel(input="precipitation")) > 0.2
    assert drop.idxmax().item() == "precipitation"
    assert list(res.kind.values) == ["dynamic"] * 3 + ["static"] * 2


def test_importance_rejects_unknown_inputs(trained):
    model, drivers, targets = trained
    with pytest.raises(XsomoValueError, match="not inputs of the model"):
        input_importance(model, drivers, targets, inputs=["wind"])


def test_importance_at_points_equals_the_grid(trained):
    """Point mode: the same model scored at point drivers sampled at the target cells
    gives the same importances (same shuffles)."""
    model, drivers, targets = trained
    pts = xsomo.point_drivers(targets, drivers)
    a = input_importance(model, drivers, targets, inputs=["precipitation", "sand_top"], repeats=1, seed=4)
    b = input_importance(model, pts, targets, inputs=["precipitation", "sand_top"], repeats=1, seed=4)
    np.testing.assert_allclose(a.r_drop.values, b.r_drop.values, atol=1e-5)


def test_cli_experiment_importance(trained, tmp_path, capsys):
    from xsomo.cli import main

    model, drivers, targets = trained
    model.save(tmp_path / "model")
    drivers.to_netcdf(tmp_path / "drivers.nc")
    targets.drop_vars("station_ids").to_netcdf(tmp_path / "targets.nc")
    rc = main([
        "experiment", "importance", "--model", str(tmp_path / "model"), "--drivers", str(tmp_path / "drivers.nc"),
        "--targets", str(tmp_path / "targets.nc"), "--out", str(tmp_path / "exp"), "--inputs", "precipitation",
        "constant", "--repeats", "1",
    ])  # fmt: skip
    assert rc == 0
    res = xr.open_dataset(tmp_path / "exp" / "importance.nc")
    assert list(res.input.values) == ["precipitation", "constant"]
    assert float(res.r_drop.sel(input="constant").max()) == 0.0
    assert "precipitation" in capsys.readouterr().out


def test_plot_importance_writes_a_figure(trained, tmp_path):
    from xsomo.evaluation.importance import plot_importance

    model, drivers, targets = trained
    res = input_importance(model, drivers, targets, inputs=["precipitation", "constant"], repeats=2, seed=1)
    fig = plot_importance(res, tmp_path / "imp.png")
    assert (tmp_path / "imp.png").stat().st_size > 1000
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["precipitation", "constant"]
