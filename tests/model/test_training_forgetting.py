"""Training option ``consistency``: the networks learn to forget their initial state (issue 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xsomo import testing
from xsomo.exceptions import XsomoValueError
from xsomo.model import EALSTM, rollout, training


def test_penalty_compares_the_two_halves_and_is_differentiable():
    torch.manual_seed(0)
    net = EALSTM(3, 2, 5, dropout=0.0)
    x_d = torch.randn(4, 12, 3).repeat(2, 1, 1)  # 4 windows, each twice
    x_s = torch.randn(4, 2).repeat(2, 1)
    same = torch.zeros(8, 5)
    h0 = torch.cat([torch.zeros(4, 5), torch.full((4, 5), 0.9)])
    out_same, _ = net(x_d, x_s, (same, same))
    zero = training._consistency_penalty(out_same[..., 0], 4)
    # same windows, same state: nothing to penalise but float32 rounding (the fused kernel may
    # round a row differently by its place in the batch: 2.4e-16 seen, i.e. 1.5e-8 apart)
    assert float(zero.detach()) < 1e-12
    out, _ = net(x_d, x_s, (h0, h0))
    pen = training._consistency_penalty(out[..., 0], 4)
    want = ((out[:4, :, 0] - out[4:, :, 0]) ** 2).max(dim=1).values.mean()  # worst day, mean over windows
    torch.testing.assert_close(pen, want)
    assert float(pen.detach()) > 0
    pen.backward()
    assert float(net.weight_hh.grad.abs().sum()) > 0 and float(net.bias.grad.abs().sum()) > 0
    assert float(training._consistency_penalty(out[..., 0], 0)) == 0.0


def test_consistency_option_is_checked_and_recorded():
    drivers, targets, _ = testing.synthetic_case(seed=3, nlat=3, nlon=4, ndays=120, cells=6)
    kw = {"layers": (1,), "ensemble": 1, "hidden": 4, "lookback": 20, "seq_length": 10, "epochs": 2,
          "steps_per_epoch": 2, "batch_size": 8, "progress": False, "device": "cpu", "forget_tolerance": 0.0}  # fmt: skip
    with pytest.raises(XsomoValueError, match="consistency"):
        training.train_lstm(drivers, targets, consistency=-1.0, **kw)
    with pytest.raises(XsomoValueError, match="consistency_cells"):
        training.train_lstm(drivers, targets, consistency=1.0, consistency_cells=-1, **kw)
    assert training.TrainingConfig().consistency > 0  # on by default
    plain = training.train_lstm(drivers, targets, consistency=0.0, **kw)
    with_pen = training.train_lstm(drivers, targets, consistency=1.0, **kw)
    hist = with_pen.history["layer1_member0"]
    assert len(hist["consistency"]) == 2 and all(v > 0 for v in hist["consistency"])
    assert "consistency" not in plain.history["layer1_member0"]
    assert with_pen.config.training["consistency"] == 1.0
    assert not torch.equal(plain.weights[(1, 0)]["weight_hh"], with_pen.weights[(1, 0)]["weight_hh"])


def test_consistency_makes_the_network_forget_sooner():
    """Same data, seed and compute: the penalty shrinks the convergence distance after the warm-up."""
    drivers, targets, _ = testing.synthetic_case(seed=2, nlat=3, nlon=4, ndays=400, cells=8)
    kw = {"layers": (1,), "ensemble": 1, "hidden": 8, "lookback": 40, "seq_length": 40, "epochs": 4,
          "steps_per_epoch": 10, "batch_size": 16, "lr": 1e-2, "dropout": 0.0, "initial_forget_bias": 5.0,
          "val_fraction": 0.0, "progress": False, "device": "cpu", "forget_tolerance": 0.0}  # fmt: skip
    stack = drivers.stack(cell=("lat", "lon"))
    dist = {}
    for w in (0.0, 10.0):
        model = training.train_lstm(drivers, targets, consistency=w, **kw)
        dyn = np.stack([stack[v].transpose("cell", "time").values for v in model.config.dynamic], -1)
        sta = np.stack([stack[v].values for v in model.config.static], -1)
        # the initial states the penalty's probes start from (not the check's later windows)
        dist[w] = float(
            np.nanmax(rollout.convergence_distance(model, dyn, sta, steps=40, extra_days=10, windows=0))
        )
    assert dist[10.0] < 0.25 * dist[0.0], dist  # measured: 15-20 times smaller (seeds 2, 3, 5)


def test_probe_cells_have_statics_and_no_targets():
    drivers, targets, _ = testing.synthetic_case(seed=4, nlat=5, nlon=6, ndays=30, cells=7)
    drivers["aridity"][0, :] = np.nan  # a row without statics (sea)
    data = training.prepare_training_data(drivers, targets, layers=(1,))
    rows, cols = training.probe_grid_cells(drivers, data, 1000, seed=0)
    grid_cells = 5 * 6 - 6  # all cells with statics
    station = {(int(np.abs(drivers.lat.values - a).argmin()), int(np.abs(drivers.lon.values - b).argmin()))
               for a, b in zip(targets.lat.values, targets.lon.values, strict=True)}  # fmt: skip
    got = set(zip(rows.tolist(), cols.tolist(), strict=True))
    assert len(got) == rows.size == grid_cells - len(station - {(0, c) for c in range(6)})
    assert not got & station and all(r != 0 for r in rows)
    few = training.probe_grid_cells(drivers, data, 5, seed=1)
    again = training.probe_grid_cells(drivers, data, 5, seed=1)
    assert few[0].size == 5 and np.array_equal(few[0], again[0]) and np.array_equal(few[1], again[1])
    assert set(zip(*few, strict=True)) <= got


def test_training_check_includes_the_season_windows_of_predicts_check():
    """The check after training measures what ``predict``'s check of a block measures: blocks of
    lookback + 30 + CHECK_WINDOW_SPAN days (from the first day and the middle of the record),
    with the zero-state windows started in other seasons."""
    drivers, targets, _ = testing.synthetic_case(seed=5, nlat=3, nlon=4, ndays=1200, cells=6)
    kw = {"layers": (1,), "ensemble": 1, "hidden": 6, "lookback": 60, "seq_length": 30, "epochs": 1,
          "steps_per_epoch": 2, "batch_size": 8, "progress": False, "device": "cpu", "forget_tolerance": 0.0,
          "initial_forget_bias": 6.0}  # fmt: skip  # (a slowly forgetting net: the windows matter)
    model = training.train_lstm(drivers, targets, **kw)
    data = training.prepare_training_data(drivers, targets, layers=(1,))
    cells = np.arange(data.dynamic.shape[0])
    got = training._forgetting_distance(model, data, cells, torch.device("cpu"))
    n = 60 + rollout.CHECK_EXTRA_DAYS + rollout.CHECK_WINDOW_SPAN
    mid = (data.dynamic.shape[1] - n) // 2

    def on_blocks(**kw):  # the check on the blocks from day 0 and the middle, largest of the two
        dist = [rollout.convergence_distance(model, data.dynamic[cells, s : s + n], data.static[cells], steps=60, **kw)
                for s in (0, mid)]  # fmt: skip
        return np.fmax(*(np.nanmax(d, -1) for d in dist))

    np.testing.assert_array_equal(got, on_blocks())
    # the windows change the answer here: without them the check would see less
    no_windows = on_blocks(windows=0)
    assert (got > no_windows).any(), (got, no_windows)
