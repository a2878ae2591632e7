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
    with pytest.raises(XsomoValueError, match=r"\['precipitation'\] given more than once"):
        input_importance(model, drivers, targets, inputs=["precipitation", "precipitation"])


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


def test_cli_importance_figure_draws_the_written_result(trained, tmp_path):
    """``--figure`` writes importance.png; its bars are the medians of the written importance.nc."""
    from xsomo.cli import main
    from xsomo.report import plotting

    model, drivers, targets = trained
    model.save(tmp_path / "model")
    drivers.to_netcdf(tmp_path / "drivers.nc")
    targets.drop_vars("station_ids").to_netcdf(tmp_path / "targets.nc")
    rc = main([
        "experiment", "importance", "--model", str(tmp_path / "model"), "--drivers", str(tmp_path / "drivers.nc"),
        "--targets", str(tmp_path / "targets.nc"), "--out", str(tmp_path / "exp"), "--inputs", "precipitation",
        "sand_top", "--repeats", "2", "--figure",
    ])  # fmt: skip
    assert rc == 0
    png = tmp_path / "exp" / "importance.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    res = xr.open_dataset(tmp_path / "exp" / "importance.nc")
    fig = plotting.importance_bars(res, metrics=("r_drop",))
    (bars,) = [c for c in fig.axes[0].containers if c.get_label() == "r_drop layer 1"]
    np.testing.assert_allclose([b.get_width() for b in bars.patches], np.median(res.r_drop.sel(layer=1).values, axis=1))
    assert float(np.median(res.r_drop.sel(layer=1, input="precipitation"))) > 0.1


def test_importance_table_is_median_and_range_over_repeats(trained):
    from xsomo.evaluation.importance import importance_table

    model, drivers, targets = trained
    res = input_importance(model, drivers, targets, inputs=["precipitation", "constant"], repeats=3, seed=1)
    tab = importance_table(res)
    assert list(tab["input"]) == ["precipitation", "constant"] and list(tab["kind"]) == ["dynamic", "static"]
    for m in ("r_drop", "nse_drop"):
        raw = res[m].sel(layer=1).values
        np.testing.assert_allclose(tab[m], np.median(raw, axis=1))
        np.testing.assert_allclose(tab[f"{m}_min"], raw.min(axis=1))
        np.testing.assert_allclose(tab[f"{m}_max"], raw.max(axis=1))
    assert (tab["r"] == float(res.r.sel(layer=1))).all()
    with pytest.raises(XsomoValueError, match="lacks"):
        importance_table(res.drop_vars("kind"))


def test_cli_importance_names_a_missing_path(tmp_path, capsys):
    from xsomo.cli import main

    rc = main([
        "experiment", "importance", "--model", str(tmp_path / "nomodel"), "--drivers", str(tmp_path / "d.nc"),
        "--targets", str(tmp_path / "t.nc"), "--out", str(tmp_path / "exp"),
    ])  # fmt: skip
    assert rc != 0
    assert "--model" in capsys.readouterr().err
    assert not (tmp_path / "exp").exists()


def test_static_inputs_are_moved_at_every_cell():
    """A static input's shuffle is a derangement: no cell keeps its own value (with 2 cells a
    plain permutation was the identity half the time: a drop of exactly 0)."""
    from xsomo.evaluation.importance import _derangement

    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 12):
        for _ in range(50):
            perm = _derangement(rng, n)
            assert sorted(perm) == list(range(n)) and not np.any(perm == np.arange(n))


@pytest.mark.parametrize("cells", [[0], [0, 3]])
def test_static_importance_with_fewer_than_3_cells_is_nan_not_zero(trained, cells):
    model, drivers, targets = trained
    with pytest.warns(RuntimeWarning, match=r"static inputs \['sand_top'\].*fewer than 3"):
        res = input_importance(model, drivers, targets.isel(cell=cells), inputs=["sand_top", "precipitation"], repeats=3)
    assert np.isnan(res.r_drop.sel(input="sand_top")).all() and np.isnan(res.nse_drop.sel(input="sand_top")).all()
    assert np.isfinite(res.r_drop.sel(input="precipitation")).all()
    assert res.n_scored.values.tolist() == [len(cells)]


def test_static_importance_with_3_cells_is_scored(trained):
    model, drivers, targets = trained
    res = input_importance(model, drivers, targets.isel(cell=[0, 3, 5]), inputs=["sand_top"], repeats=4)
    assert np.isfinite(res.r_drop).all()
    assert (res.r_drop.sel(input="sand_top") != 0).all()  # every cell takes another's sand


def test_importance_refuses_too_few_scored_days(trained):
    model, drivers, targets = trained  # lookback 60
    with pytest.raises(XsomoValueError, match=r"only 20 days are scored \(80 days of the drivers minus a spin-up of 60"):
        input_importance(model, drivers.isel(time=slice(0, 80)), targets, inputs=["precipitation"], repeats=1)
    with pytest.raises(XsomoValueError, match=r"spin-up of 5000 days \(spinup=5000\) leaves no day to score"):
        input_importance(model, drivers, targets, inputs=["precipitation"], repeats=1, spinup=5000)


def test_a_nan_static_value_leaves_the_cell_out_of_every_run(trained):
    """The roll-out is NaN at a cell whose static is NaN; a shuffle moved the NaN to another
    cell, so each run was scored on other cells: the constant input the model cannot use
    showed drops of a few hundredths."""
    model, drivers, targets = trained
    row = int(np.argmin(np.abs(drivers.lat.values - float(targets.lat[0]))))
    col = int(np.argmin(np.abs(drivers.lon.values - float(targets.lon[0]))))
    holed = drivers.copy(deep=True)
    holed["constant"][row, col] = np.nan  # the shuffled input itself: its NaN moved between cells
    with pytest.warns(RuntimeWarning, match="1 of 12 target cells have a NaN static input"):
        res = input_importance(model, holed, targets, inputs=["constant"], repeats=3, seed=1)
    assert float(np.abs(res.r_drop).max()) == 0.0 and float(np.abs(res.nse_drop).max()) == 0.0
    assert int(res.n_scored.sel(layer=1)) == 11 and res.attrs["n_cells"] == 11


def test_importance_says_whether_it_scored_training_cells(trained):
    model, drivers, targets = trained
    res = input_importance(model, drivers, targets, inputs=["constant"], repeats=1)
    assert res.attrs["scored_against"] == "12 of 12 cells that trained the model (training or validation cells)"
    assert res.attrs["n_scored"] == "layer 1: 12"
