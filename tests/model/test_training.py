"""Training: data pipeline, masked loss, statistics from training cells, determinism, resume, skill."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import xarray as xr

from xsomo import testing
from xsomo.exceptions import (
    CheckpointError,
    ConfigError,
    GridMismatchError,
    MissingVariableError,
    XsomoValueError,
)
from xsomo.model import EALSTM, TrainedModel, rollout, training
from xsomo.runtime import cpu_cores

TINY = {
    "layers": (1, 2), "ensemble": 1, "hidden": 4, "lookback": 20, "seq_length": 10, "epochs": 2, "steps_per_epoch": 2,
    "batch_size": 8, "progress": False, "device": "cpu", "forget_tolerance": 0.0,
}  # fmt: skip



@pytest.fixture(scope="module")
def case():
    return testing.synthetic_case(seed=3, nlat=3, nlon=4, ndays=200, cells=6)


def test_masked_loss_ignores_gaps():
    pred = torch.randn(3, 7, requires_grad=True)
    tgt = torch.randn(3, 7)
    tgt[0, 2] = tgt[1, :4] = float("nan")
    loss = training._masked_mse(pred, tgt)
    m = torch.isfinite(tgt)
    torch.testing.assert_close(loss, ((pred - tgt)[m] ** 2).mean())
    loss.backward()
    assert (pred.grad[~m] == 0).all() and (pred.grad[m] != 0).all()


def test_windows_need_a_target_in_the_supervised_part():
    mask = np.zeros((2, 30), bool)
    mask[0, 25] = True
    c, s = training._window_starts(mask, lookback=10, seq_length=5)
    assert (c == 0).all()
    np.testing.assert_array_equal(s, [11, 12, 13, 14, 15])  # day 25 in [s+10, s+15)


def test_cells_matched_within_half_a_cell(case):
    drivers, targets, _ = case
    moved = targets.assign_coords(lat=targets.lat + 0.03, lon=targets.lon - 0.04)
    data = training.prepare_training_data(drivers, moved, layers=(1, 2))
    assert data.dynamic.shape == (6, 200, 4) and data.target.shape == (6, 2, 200)
    ilat = np.abs(drivers.lat.values[None] - targets.lat.values[:, None]).argmin(1)
    ilon = np.abs(drivers.lon.values[None] - targets.lon.values[:, None]).argmin(1)
    want = drivers["precipitation"].values[:, ilat, ilon].T
    np.testing.assert_array_equal(data.dynamic[..., 1], want)
    far = targets.assign_coords(lat=targets.lat + 5.0)
    with pytest.raises(GridMismatchError, match="off the drivers' grid"):
        training.prepare_training_data(drivers, far)
    # a cell listed twice (two target sets concatenated) counted twice and could fall in both
    # the training and the validation cells; station series on gridded drivers trained unscaled (QA)
    twice = xr.concat([targets, targets.isel(cell=[1])], dim="cell")
    with pytest.raises(XsomoValueError, match=r"targets hold 1 cell\(s\) more than once"):
        training.prepare_training_data(drivers, twice)
    stations = targets.rename(cell="station")
    with pytest.raises(XsomoValueError, match=r"station series.*drivers are gridded.*scale_to"):
        training.prepare_training_data(drivers, stations)
    with pytest.raises(MissingVariableError, match="air_temperature"):
        training.prepare_training_data(drivers.drop_vars("air_temperature"), targets)


def test_normalisation_from_training_cells_only(case):
    drivers, targets, _ = case
    model = training.train_lstm(drivers, targets, cells=np.array([0, 2, 3]), val_fraction=0.0, **TINY)
    data = training.prepare_training_data(drivers, targets, layers=(1, 2))
    use = [0, 2, 3]
    dyn = data.dynamic[use].astype(float)
    dyn[..., 1] = np.log1p(dyn[..., 1])
    np.testing.assert_allclose(model.stats.dynamic_mean, np.nanmean(dyn, axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(model.stats.static_std, np.std(data.static[use].astype(float), axis=0), rtol=1e-5)
    np.testing.assert_allclose(model.stats.target_mean, np.nanmean(data.target[use], axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(
        np.sort(model.training_cells[:, 0]), np.sort(data.lat[use]), atol=1e-9
    )


def test_same_seed_same_weights(case):
    drivers, targets, _ = case
    a = training.train_lstm(drivers, targets, seed=5, **TINY)
    b = training.train_lstm(drivers, targets, seed=5, **TINY)
    c = training.train_lstm(drivers, targets, seed=6, **TINY)
    for key in a.weights:
        for name in a.weights[key]:
            torch.testing.assert_close(a.weights[key][name], b.weights[key][name], atol=0, rtol=0)
    assert any(not torch.equal(a.weights[k]["weight_hh"], c.weights[k]["weight_hh"]) for k in a.weights)


def test_interrupted_training_resumes_to_the_same_model(case, tmp_path, monkeypatch):
    drivers, targets, _ = case
    kw = {**TINY, "layers": (1,), "epochs": 3, "patience": 0, "seed": 1}
    whole = training.train_lstm(drivers, targets, **kw)
    calls = {"n": 0}
    real = training._validate

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "_validate", flaky)
    with pytest.raises(KeyboardInterrupt):
        training.train_lstm(drivers, targets, run_dir=tmp_path / "run", **kw)
    monkeypatch.setattr(training, "_validate", real)
    assert (tmp_path / "run" / "layer1_member0.pt").is_file()
    resumed = training.train_lstm(drivers, targets, run_dir=tmp_path / "run", **kw)
    for name, t in whole.weights[(1, 0)].items():
        torch.testing.assert_close(resumed.weights[(1, 0)][name], t, atol=0, rtol=0)
    assert len(resumed.history["layer1_member0"]["val_loss"]) == 3
    with pytest.raises(CheckpointError, match="different training run"):
        training.train_lstm(drivers, targets, run_dir=tmp_path / "run", **{**kw, "hidden": 5})
    # drivers changed at a cell without targets (a probe cell of the penalty): the run had resumed
    # the old checkpoints and returned the old model bit for bit (hostile-input QA)
    data = training.prepare_training_data(drivers, targets, layers=(1,))
    free = [(i, j) for i in range(drivers.sizes["lat"]) for j in range(drivers.sizes["lon"])
            if (i, j) not in set(zip(data.rows.tolist(), data.cols.tolist(), strict=True))]  # fmt: skip
    assert free
    wetter = drivers.copy(deep=True)
    wetter["precipitation"][:, free[0][0], free[0][1]] *= 3
    with pytest.raises(CheckpointError, match="different training run"):
        training.train_lstm(wetter, targets, run_dir=tmp_path / "run", **kw)


@pytest.mark.parametrize(
    ("device", "mixed_precision"),
    [
        ("cpu", False),
        # the same on a GPU (tests/gpu has the other CUDA checks), with and without bf16 autocast
        pytest.param("cuda", False, marks=pytest.mark.gpu),
        pytest.param("cuda", True, marks=pytest.mark.gpu),
    ],
)
def test_tiny_training_beats_climatology_at_unseen_cells(tmp_path, device, mixed_precision):
    drivers, targets, truth = testing.synthetic_case(seed=1, nlat=4, nlon=5, ndays=3 * 365, cells=8)
    model = training.train_lstm(
        drivers, targets, layers=(1,), ensemble=1, hidden=16, lookback=60, seq_length=60, epochs=6,
        steps_per_epoch=15, batch_size=16, lr=1e-2, dropout=0.0, progress=False, device=device, forget_tolerance=0.0,
        mixed_precision=mixed_precision,
    )  # fmt: skip
    assert model.metadata["device"].startswith(device)
    model = TrainedModel.load(model.save(tmp_path / "m"))  # loads on the CPU
    stacked = truth.sel(layer=1).stack(cell=("lat", "lon")).dropna("cell", how="all")
    trained = {(round(a, 4), round(b, 4)) for a, b in zip(targets.lat.values, targets.lon.values, strict=True)}
    unseen = [i for i, (a, b) in enumerate(zip(stacked.lat.values, stacked.lon.values, strict=True))
              if (round(a, 4), round(b, 4)) not in trained]  # fmt: skip
    assert len(unseen) >= 5
    cell_index = stacked.cell[unseen]
    dyn = np.stack(
        [drivers[v].stack(cell=("lat", "lon")).sel(cell=cell_index).transpose("cell", "time").values
         for v in model.config.dynamic], -1,
    )  # fmt: skip
    sta = np.stack([drivers[v].stack(cell=("lat", "lon")).sel(cell=cell_index).values for v in model.config.static], -1)
    pred = rollout.predict_block(model, dyn, sta, mode="continuous", spinup=60, device=device)[0, 0]
    obs = stacked.isel(cell=unseen).transpose("cell", "time").values
    doy = drivers.time.dt.dayofyear.values
    tgt = targets.sm.sel(layer=1).values
    clim_by_doy = {d: np.nanmean(tgt[:, doy == d]) for d in np.unique(doy)}
    clim = np.array([clim_by_doy[d] for d in doy])
    r_model = np.median([np.corrcoef(p[60:], o[60:])[0, 1] for p, o in zip(pred, obs, strict=True)])
    r_clim = np.median([np.corrcoef(clim[60:], o[60:])[0, 1] for o in obs])
    assert r_model > r_clim + 0.05, (r_model, r_clim)
    assert r_model > 0.7


def test_demo_preset_fills_only_options_not_given(case, monkeypatch):
    drivers, targets, _ = case
    tiny_demo = {**TINY, "hidden": 5, "lookback": 15}
    for key in ("device", "progress"):
        tiny_demo.pop(key)
    monkeypatch.setitem(training.PRESETS, "demo", training.TrainingConfig(**tiny_demo))
    model = training.train_lstm(drivers, targets, preset="demo", hidden=3, device="cpu", progress=False)
    assert model.config.hidden == 3 and model.config.lookback == 15 and model.config.layers == (1, 2)
    with pytest.raises(Exception, match="preset"):
        training.train_lstm(drivers, targets, preset="europe")


# ----------------------------------------------------------------------------- issue 14, item 5
def test_item5_validation_cells_are_chosen_per_layer_among_cells_with_its_targets():
    drivers, targets, _ = testing.synthetic_case(seed=6, nlat=4, nlon=5, ndays=120, cells=14)
    sm = targets.sm.values.copy()
    sm[6:, 1] = np.nan  # layer 2: targets at the first 6 cells only
    targets = targets.copy(data={"sm": sm})
    model = training.train_lstm(drivers, targets, val_fraction=0.3, seed=1, **TINY)
    val = model.history["validation_cells"]
    have2 = {(float(a), float(b)) for a, b in zip(targets.lat.values[:6], targets.lon.values[:6], strict=True)}
    assert len(val["layer2"]) == round(0.3 * 6) and {tuple(c) for c in val["layer2"]} <= have2
    assert len(val["layer1"]) == round(0.3 * 14)
    for layer in (1, 2):
        hist = model.history[f"layer{layer}_member0"]
        assert hist["validation"] == "cells" and hist["best_epoch"] >= 0
        assert np.isfinite(hist["best_val_loss"])


def test_item5_too_few_cells_fall_back_to_a_time_split_and_say_so():
    drivers, targets, _ = testing.synthetic_case(seed=6, nlat=4, nlon=5, ndays=120, cells=8)
    sm = targets.sm.values.copy()
    sm[3:, 1] = np.nan  # layer 2: 3 cells, too few to hold some out
    targets = targets.copy(data={"sm": sm})
    with pytest.warns(RuntimeWarning, match="layer 2.*split by time"):
        model = training.train_lstm(drivers, targets, **TINY)
    assert model.history["layer2_member0"]["validation"] == "time"
    assert model.history["layer1_member0"]["validation"] == "cells"
    assert model.history["layer2_member0"]["best_epoch"] >= 0
    # the split by time: the layer's training targets end where validation starts
    data = training.prepare_training_data(drivers, targets, layers=(1, 2))
    usable = np.arange(8)
    settings = training.TrainingConfig(**{k: v for k, v in TINY.items() if k not in training.RUN_OPTIONS})
    with pytest.warns(RuntimeWarning, match="split by time"):
        split = training.split_validation(data.target[:, 1], usable, settings, 2)
    assert split.how == "time" and 30 <= split.val_from < 120
    train_t = training.training_targets(data, [training.LayerSplit(usable, usable[:0], 0, "cells"), split])
    assert np.isnan(train_t[:, 1, split.val_from :]).all()
    np.testing.assert_array_equal(train_t[:3, 1, : split.val_from], data.target[:3, 1, : split.val_from])


def test_item5_no_validation_possible_warns_and_the_layer_is_still_trained():
    drivers, targets, _ = testing.synthetic_case(seed=6, nlat=4, nlon=5, ndays=60, cells=3)
    kw = {**TINY, "layers": (1,), "lookback": 20, "seq_length": 35}
    with pytest.warns(RuntimeWarning, match="no validation split"):
        model = training.train_lstm(drivers, targets, **kw)
    hist = model.history["layer1_member0"]
    assert hist["validation"] == "none" and hist["best_epoch"] >= 0
    init = EALSTM(model.config.n_inputs(1), model.config.n_static, 4)
    assert not torch.equal(model.weights[(1, 0)]["weight_hh"], init.weight_hh)


def test_item5_epochs_below_one_is_an_error(case):
    drivers, targets, _ = case
    for bad in (0, -1):
        with pytest.raises(ConfigError, match="'epochs' must be an integer >= 1"):
            training.train_lstm(drivers, targets, **{**TINY, "epochs": bad})


def test_item5_a_diverged_layer_is_an_error_not_its_initial_weights(case, monkeypatch):
    drivers, targets, _ = case
    monkeypatch.setattr(training, "_validate", lambda *a, **k: float("nan"))
    with pytest.raises(XsomoValueError, match="diverged"):
        training.train_lstm(drivers, targets, **TINY)


# ----------------------------------------------------------------------------- issue 14, item 2
def test_item2_training_locates_target_cells_with_the_one_cell_rule(case):
    drivers, targets, _ = case
    lat, lon = drivers.lat.values, drivers.lon.values
    res = float(lat[1] - lat[0])
    # on the inner edges between cells: the cell to the north-east (GridSpec.snap's rule)
    edge = targets.assign_coords(lat=("cell", lat[[0, 1, 0, 1, 1, 0]] + res / 2),
                                 lon=("cell", lon[[0, 1, 2, 2, 0, 1]] + res / 2))  # fmt: skip
    data = training.prepare_training_data(drivers, edge, layers=(1,))
    south, west = lat[0] - res / 2, lon[0] - res / 2
    want_i = np.floor((edge.lat.values - south) / res + 1e-6).astype(int)
    want_j = np.floor((edge.lon.values - west) / res + 1e-6).astype(int)
    np.testing.assert_array_equal(data.rows, want_i)
    np.testing.assert_array_equal(data.cols, want_j)
    np.testing.assert_array_equal(data.dynamic[:, :, 0], drivers.air_temperature.values[:, want_i, want_j].T)
    # drivers stored north to south: the same cells
    flipped = training.prepare_training_data(drivers.isel(lat=slice(None, None, -1)), edge, layers=(1,))
    np.testing.assert_array_equal(flipped.dynamic, data.dynamic)
    # a target cell off the grid (the outer north edge is outside) is an error naming it
    off = targets.assign_coords(lat=("cell", np.r_[targets.lat.values[:5], lat[-1] + res / 2]))
    with pytest.raises(GridMismatchError, match=r"1 of 6 target cells.*cell 5 \("):
        training.prepare_training_data(drivers, off)


# ----------------------------------------------------------------------------- issue 13: the config
def test_training_config_is_strict_saved_with_the_model_and_presets_are_configs(case, tmp_path):
    drivers, targets, _ = case
    with pytest.raises(ConfigError, match=r"unknown keys.*hiden"):
        training.train_lstm(drivers, targets, hiden=5, **TINY)
    with pytest.raises(ConfigError, match="unknown keys"):
        training.TrainingConfig.from_dict({"epochs": 2, "lr_decay": 1})
    with pytest.raises(ConfigError, match="'lr' must be finite and > 0"):
        training.TrainingConfig(lr=0)
    paper = training.PRESETS["paper"]
    assert (paper.ensemble, paper.hidden, paper.lookback, paper.seq_length) == (5, 128, 365, 365)
    assert training.training_config(preset="paper") == training.TrainingConfig()
    assert training.training_config(preset="demo", hidden=8).hidden == 8
    model = training.train_lstm(drivers, targets, **TINY)
    back = TrainedModel.load(model.save(tmp_path / "m"))
    assert back.training_config == model.training_config
    assert back.training_config.hidden == TINY["hidden"] and back.training_config.epochs == TINY["epochs"]
    # the same settings as one config object give the same model
    again = training.train_lstm(drivers, targets, back.training_config, progress=False, device="cpu")
    for key in model.weights:
        torch.testing.assert_close(again.weights[key]["weight_hh"], model.weights[key]["weight_hh"], atol=0, rtol=0)


# ----------------------------------------------------------------------------- issue 21, item 2
def test_training_checks_that_the_cascade_forgets_on_its_probe_cells():
    drivers, targets, _ = testing.synthetic_case(seed=2, nlat=3, nlon=4, ndays=200, cells=6)
    kw = {**TINY, "layers": (1,), "initial_forget_bias": 6.0, "consistency": 1.0, "forget_retries": 1,
          "forget_tolerance": 1e-9, "val_fraction": 0.0}  # fmt: skip
    with pytest.warns(RuntimeWarning, match="do not forget.*longer spin-up"):
        model = training.train_lstm(drivers, targets, **kw)
    record = model.history["layer1_forgetting"]
    assert record["consistency"] == [1.0, 2.0]  # trained again with a doubled penalty
    # the recorded distance is the roll-out's own convergence distance on the probe cells
    data = training.prepare_training_data(drivers, targets, layers=(1,))
    data, probes = training._with_probes(drivers, data, model.training_config, np.arange(6))
    # (blocks of the lookback + 30 days + the season windows' span: here the whole 200-day record)
    n = min(200, 20 + rollout.CHECK_EXTRA_DAYS + rollout.CHECK_WINDOW_SPAN)
    assert n == 200
    want = float(np.nanmax(rollout.convergence_distance(model, data.dynamic[probes], data.static[probes], steps=20)))
    assert record["distance"][-1] == pytest.approx(want, rel=1e-6)
    # a tolerance the model meets: no second training, no warning
    ok = training.train_lstm(drivers, targets, **{**kw, "forget_tolerance": 10 * max(record["distance"])})
    assert ok.history["layer1_forgetting"]["consistency"] == [1.0]


def test_only_the_members_that_do_not_forget_are_trained_again():
    """A retry trains again only the members above the tolerance; the others keep their weights, bit for bit."""
    drivers, targets, _ = testing.synthetic_case(seed=2, nlat=3, nlon=4, ndays=200, cells=6)
    kw = {**TINY, "layers": (1,), "ensemble": 2, "initial_forget_bias": 6.0, "consistency": 1.0,
          "val_fraction": 0.0, "workers": 1}  # fmt: skip
    with pytest.warns(RuntimeWarning, match=r"members 1, 2 of 2\) do not forget"):
        first = training.train_lstm(drivers, targets, **{**kw, "forget_retries": 0, "forget_tolerance": 1e-9})
    d = first.history["layer1_forgetting"]["member_distance"][0]
    assert len(d) == 2 and d[0] != d[1]
    slow = int(np.argmax(d))
    with warnings.catch_warnings():  # the slow member may still fail: the record says which trained again
        warnings.simplefilter("ignore", RuntimeWarning)
        model = training.train_lstm(drivers, targets, **{**kw, "forget_retries": 1, "forget_tolerance": float(np.mean(d))})
    record = model.history["layer1_forgetting"]
    assert record["members"] == [[0, 1], [slow]] and record["consistency"] == [1.0, 2.0]
    assert record["member_distance"][0] == d
    fast = 1 - slow
    for name, t in first.weights[(1, fast)].items():
        torch.testing.assert_close(model.weights[(1, fast)][name], t, atol=0, rtol=0)
    assert not torch.equal(model.weights[(1, slow)]["weight_hh"], first.weights[(1, slow)]["weight_hh"])
    assert model.history[f"layer1_member{slow}"]["train_loss"] != first.history[f"layer1_member{slow}"]["train_loss"]


@pytest.mark.slow
def test_members_trained_in_worker_processes_equal_the_serial_ones(case):
    """Issue 16: members side by side in spawned processes, same weights and histories as one after the other."""
    drivers, targets, _ = case
    kw = {**TINY, "ensemble": 2, "val_fraction": 0.0}
    serial = training.train_lstm(drivers, targets, workers=1, **kw)
    parallel = training.train_lstm(drivers, targets, workers=2, **kw)
    for key in serial.weights:
        for name, t in serial.weights[key].items():
            torch.testing.assert_close(parallel.weights[key][name], t, atol=0, rtol=0)
    for key in ("layer1_member1", "layer2_member0"):
        a, b = serial.history[key], parallel.history[key]
        assert a["train_loss"] == b["train_loss"] and a["best_epoch"] == b["best_epoch"]
    assert training.member_workers(training.PRESETS["demo"], torch.device("cpu"), None, 100) == min(2, cpu_cores())
    assert training.member_workers(training.TrainingConfig(**{k: v for k, v in kw.items() if k not in training.RUN_OPTIONS}),
                                   torch.device("cpu"), None, 100) == 1  # too small to pay for the processes


def test_members_trained_on_a_dask_cluster_equal_the_serial_ones(case, tmp_path):
    """Issue 16 item 4: ``train_lstm(client=...)`` and ``xsomo train --scheduler`` train the members of
    each layer as tasks on the cluster's workers: same weights and histories as one after the other."""
    distributed = pytest.importorskip("distributed")
    from xsomo import cli

    drivers, targets, _ = case
    kw = {**TINY, "ensemble": 2, "val_fraction": 0.0}
    serial = training.train_lstm(drivers, targets, workers=1, **kw)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_cluster = training.train_lstm(drivers, targets, client=client, **kw)
        assert "member_task" in cluster.scheduler.task_prefixes  # trained on the workers
        drivers.to_netcdf(tmp_path / "drivers.nc")
        targets.to_netcdf(tmp_path / "targets.nc")
        args = ["train", "--drivers", str(tmp_path / "drivers.nc"), "--targets", str(tmp_path / "targets.nc"),
                "--out", str(tmp_path / "model"), "--scheduler", cluster.scheduler_address, "--no-progress",
                "--layers", "1", "2", "--ensemble", "2", "--hidden", "4", "--lookback", "20", "--seq-length", "10",
                "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "8", "--val-fraction", "0",
                "--forget-tolerance", "0", "--device", "cpu"]  # fmt: skip
        assert cli.main(args) == 0
    from_cli = TrainedModel.load(tmp_path / "model")
    for got in (on_cluster, from_cli):
        for key in serial.weights:
            for name, t in serial.weights[key].items():
                torch.testing.assert_close(got.weights[key][name], t, atol=0, rtol=0)
    assert on_cluster.history["layer2_member1"]["train_loss"] == serial.history["layer2_member1"]["train_loss"]


@pytest.mark.slow  # spawning a worker (torch import) takes 10-100 s on a busy 2-core machine
def test_member_workers_leave_when_their_parent_is_killed(tmp_path):
    """A training killed with SIGKILL (or SIGTERM to the parent alone) leaves no worker training on."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from xsomo.model import training\n"
        "if __name__ == '__main__':\n"
        "    pool = training._MemberPool(1, 1)\n"
        "    pool.executor.submit(time.sleep, 600)  # a worker busy training\n"
        "    time.sleep(1)\n"
        "    print(*pool.executor._processes, flush=True)\n"
        "    time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert workers and all(_alive(p) for p in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "a worker outlived its killed parent"
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie of a reaped-by-init process counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_cli_train_refuses_layers_out_of_cascade_order(tmp_path, capsys):
    """``--layers 2 1`` trained a reversed cascade (layer 1 fed by layer 2's simulation): refused
    before the drivers are opened."""
    from xsomo import cli

    args = ["train", "--drivers", str(tmp_path / "none.nc"), "--targets", str(tmp_path / "none.nc"),
            "--out", str(tmp_path / "model"), "--layers", "2", "1", "--device", "cpu"]  # fmt: skip
    assert cli.main(args) != 0
    err = capsys.readouterr().err
    assert "ascending" in err and "[2, 1]" in err and "[1, 2]" in err
    assert not (tmp_path / "model").exists()


def test_a_layer_without_targets_is_named(case):
    """A layer with all-NaN targets had been blamed on the window lengths ("no training window
    of 20 + 10 days holds a target; shorten lookback...")."""
    drivers, targets, _ = case
    t = targets.copy()
    t["sm"] = targets.sm.where(targets.layer != 2)
    with pytest.raises(XsomoValueError, match=r"no value of layer \[2\].*layers=\(1,\)"):
        training.train_lstm(drivers, t, **TINY)


def test_targets_on_a_finer_lattice_than_the_drivers_are_refused(case):
    """0.1° target cells without a 'grid' attribute had been snapped onto 0.2° drivers silently."""
    drivers, targets, _ = case
    coarse = drivers.isel(lat=[0, 2], lon=[0, 2])  # 0.2° spacing
    assert "grid" not in targets.attrs
    with pytest.raises(GridMismatchError, match=r"0\.1° apart, not a whole number of the drivers' 0\.2° cells"):
        training.prepare_training_data(coarse, targets, layers=(1,))


def test_the_model_records_its_grid_and_refuses_drivers_of_another(case, tmp_path):
    from xsomo.model.inputs import check_grid_resolution

    drivers, targets, _ = case
    model = training.train_lstm(drivers, targets, **{**TINY, "layers": (1,), "epochs": 1})
    assert model.grid_resolution == pytest.approx(0.1)
    back = TrainedModel.load(model.save(tmp_path / "m"))
    assert back.grid_resolution == pytest.approx(0.1)
    check_grid_resolution(drivers, back)
    check_grid_resolution(drivers.isel(lat=[1], lon=[2]), back)  # one cell: no spacing to compare
    with pytest.raises(GridMismatchError, match=r"0\.2° grid, but the model was trained on 0\.1° drivers"):
        check_grid_resolution(drivers.isel(lat=[0, 2], lon=[0, 2]), back)


def test_a_target_cell_without_a_static_value_is_named_not_dropped_silently(case):
    """A station without elevation in its metadata was left out of training without a word,
    and its prediction was NaN with nothing to say why."""
    drivers, targets, _ = case
    row = int(np.argmin(np.abs(drivers.lat.values - float(targets.lat[0]))))
    col = int(np.argmin(np.abs(drivers.lon.values - float(targets.lon[0]))))
    drivers = drivers.copy(deep=True)
    drivers["elevation_mean"][row, col] = np.nan
    data = training.prepare_training_data(drivers, targets, layers=(1,))
    with pytest.warns(RuntimeWarning, match=r"1 target cells or stations .*\['elevation_mean'\].*left out"):
        used = training._usable_cells(data, None)
    assert used.size == targets.sizes["cell"] - 1


def test_targets_and_stations_in_0_360_longitudes_find_their_cells_and_wrapped_drivers_say_what_to_do():
    """Targets (and point_drivers' stations) in 0..360 on a -180..180 grid were "off the grid";
    drivers across 0° stored in 0..360 were told to regrid."""
    from xsomo.drivers.points import point_drivers
    from xsomo.exceptions import GridMismatchError

    drv, tgt, _ = testing.synthetic_case(seed=0, nlat=3, nlon=6, ndays=60, cells=4, west=-0.3, sea_cells=0)
    assert (drv.lon.values < 0).any() and (drv.lon.values > 0).any()
    east = tgt.assign_coords(lon=tgt.lon % 360)
    assert (east.lon.values > 180).any()
    kw = {"layers": (1,), "dynamic": ("precipitation",), "static": ("elevation_mean",)}
    a, b = training.prepare_training_data(drv, tgt, **kw), training.prepare_training_data(drv, east, **kw)
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.cols, b.cols)
    np.testing.assert_array_equal(point_drivers(east, drv).precipitation.values, point_drivers(tgt, drv).precipitation.values)
    wrapped = drv.assign_coords(lon=drv.lon % 360)
    with pytest.raises(GridMismatchError, match=r"run 0\.\.360 across 0°.*normalise_latlon"):
        training.prepare_training_data(wrapped, tgt, **kw)
