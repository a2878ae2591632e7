"""Experiments: memory timescales, lookback permutation (known predictors, a tiny model), transfer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation import experiments as ex
from xsomo.exceptions import XsomoValueError

pytestmark = pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofyear:DeprecationWarning")


def _ar1(phi: float, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    e = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = e[:, 0]
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + np.sqrt(1 - phi**2) * e[:, t]
    return out


def test_memory_timescales_of_ar1_layers():
    rng = np.random.default_rng(0)
    ncell, ntime = 30, 12 * 365
    phis = (0.5, 0.9, 0.97)
    data = np.stack([_ar1(p, (ncell, ntime), rng) for p in phis])
    t = pd.date_range("2001-01-01", periods=ntime, freq="D")
    da = xr.DataArray(data, dims=("layer", "cell", "time"), coords={"layer": [1, 2, 3], "time": t})
    out = ex.memory_timescales(da, max_lag=200)
    expected = [int(np.ceil(-1 / np.log(p))) for p in phis]  # first lag with phi**lag < 1/e
    got = out["efold_days"].values.tolist()
    assert got[0] == expected[0]
    for g, e in zip(got[1:], expected[1:], strict=True):
        assert abs(g - e) <= 0.25 * e
    assert got[0] < got[1] < got[2]


def test_permute_windows_keeps_the_tail_and_shuffles_the_head():
    rng = np.random.default_rng(1)
    w = np.arange(4 * 50 * 2, dtype=float).reshape(4, 50, 2)
    out = ex.permute_windows(w, 10, rng=rng)
    np.testing.assert_array_equal(out[:, -10:], w[:, -10:])
    for k in range(4):
        # same days, other order; the two variables of a day move together
        np.testing.assert_array_equal(np.sort(out[k, :40, 0]), w[k, :40, 0])
        np.testing.assert_array_equal(out[k, :40, 1] - out[k, :40, 0], 1.0)
        assert not np.array_equal(out[k, :40], w[k, :40])
    assert not np.array_equal(out[0, :40, 0] - w[0, 0, 0], out[1, :40, 0] - w[1, 0, 0])
    np.testing.assert_array_equal(ex.permute_windows(w, 50, rng=rng), w)


def _filter(x: np.ndarray, tau: float) -> np.ndarray:
    """Exponential memory along axis 1 from a zero state: y_t = a y_{t-1} + (1-a) x_t."""
    a = np.exp(-1 / tau)
    y = np.zeros(x.shape[:2])
    acc = np.zeros(x.shape[0])
    for t in range(x.shape[1]):
        acc = a * acc + (1 - a) * x[:, t]
        y[:, t] = acc
    return y


def test_lookback_permutation_with_known_memory():
    taus = (2.0, 30.0)
    rng = np.random.default_rng(2)
    ncell, ntime, lookback = 6, 600, 150
    dyn = rng.standard_normal((ncell, ntime, 1)).astype(np.float32)
    truth = np.stack([_filter(dyn[..., 0], tau) for tau in taus])  # (layer, cell, time)

    def predictor(windows: np.ndarray, static: np.ndarray) -> np.ndarray:
        return np.stack([_filter(windows[..., 0], tau)[:, -1] for tau in taus])

    ns = (1, 2, 5, 10, 30, 60, 150)
    out = ex.lookback_permutation(
        predictor, dyn, np.zeros((ncell, 1)), truth, lookback=lookback, ns=ns, days_per_cell=80, layers=(1, 2)
    )
    nse = out["nse"]
    # no permutation: the predictor reproduces the truth (memory << window)
    assert float(nse.sel(n_kept=150).min()) > 0.999
    # the short-memory layer keeps its skill with 10 days, the long-memory layer does not
    assert float(nse.sel(n_kept=10, layer=1)) > 0.99
    assert float(nse.sel(n_kept=10, layer=2)) < 0.8
    assert float(nse.sel(n_kept=60, layer=2)) > float(nse.sel(n_kept=10, layer=2))
    # days needed to reach NSE 0.95: more for the deeper (slower) layer
    need = [int(nse.sel(layer=k).where(nse.sel(layer=k) > 0.95, drop=True).n_kept.min()) for k in (1, 2)]
    assert need[0] < need[1]
    # days_needed: the same ordering, from the share of the whole window's gain
    days = ex.days_needed(out, metric="nse")
    assert int(days.sel(layer=1)) < int(days.sel(layer=2))
    # by hand for layer 2: the first n whose NSE gain reaches 95 % of the full gain
    s2 = nse.sel(layer=2).values
    gain = s2 - s2[0]
    assert int(days.sel(layer=2)) == ns[int(np.argmax(gain >= 0.95 * gain[-1] - 1e-12))]
    with pytest.raises(Exception, match="fraction"):
        ex.days_needed(out, fraction=0.0)


def _tiny_model(hidden: int = 4, lookback: int = 30, seed: int = 0):
    from xsomo.model import EALSTM, ModelConfig, NormStats, TrainedModel

    torch.manual_seed(seed)
    cfg = ModelConfig(
        dynamic=list(cv.DYNAMIC_NAMES), static=list(cv.STATIC_NAMES), layers=[1, 2], ensemble=2,
        hidden=hidden, lookback=lookback, seq_length=lookback,
    )
    nd, ns = len(cv.DYNAMIC_NAMES), len(cv.STATIC_NAMES)
    st = NormStats([280, 2, 100, 285], [10, 4, 80, 10], [2] * ns, [1] * ns, [0.25, 0.25], [0.05, 0.05])
    weights = {lay: [EALSTM(nd + k, ns, hidden, dropout=0.0).state_dict() for _ in range(2)] for k, lay in enumerate((1, 2))}
    return TrainedModel.from_weights(cfg, st, weights)


def test_model_predictor_matches_windowed_rollout():
    from xsomo.model.rollout import predict_block
    from xsomo.testing import synthetic_drivers

    model = _tiny_model()
    drivers = synthetic_drivers(nlat=2, nlon=2, ndays=80, sea_cells=0)
    dyn, stat = ex.extract_cells(drivers, np.array([0, 1]), np.array([1, 0]), dynamic=cv.DYNAMIC_NAMES, static=cv.STATIC_NAMES)
    full = predict_block(model, dyn, stat, mode="windowed").mean(axis=1)  # (layer, cell, time)
    ends = np.array([40, 79])
    windows = np.concatenate([dyn[:, e - 29 : e + 1] for e in ends])  # cells 0,1 at day 40 then day 79
    stat2 = np.concatenate([stat, stat])
    got = ex.model_predictor(model)(windows, stat2)
    expected = np.concatenate([full[:, :, 40], full[:, :, 79]], axis=1)
    np.testing.assert_allclose(got, expected, atol=2e-5)


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")  # the spin-up days are NaN
def test_model_predictor_small_model_one_thread_same_numbers(monkeypatch):
    """A small model predicts on one torch thread (restored after), with the numbers of two threads."""
    from xsomo.model.rollout import predict_block
    from xsomo.prediction.inference import SMALL_HIDDEN
    from xsomo.testing import synthetic_drivers

    drivers = synthetic_drivers(nlat=2, nlon=3, ndays=60, sea_cells=0)
    dyn, stat = ex.extract_cells(
        drivers, np.array([0, 1, 1]), np.array([1, 0, 2]), dynamic=cv.DYNAMIC_NAMES, static=cv.STATIC_NAMES
    )
    windows = np.concatenate([dyn[:, e - 29 : e + 1] for e in (35, 59)])
    stat2 = np.concatenate([stat, stat])
    old = torch.get_num_threads()
    real = torch.set_num_threads
    seen: list[int] = []
    try:
        real(2)
        small, big = _tiny_model(hidden=8), _tiny_model(hidden=SMALL_HIDDEN + 8)
        want = np.nanmean(predict_block(small, windows, stat2, mode="continuous", spinup=30), axis=1)[..., -1]
        monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n))[1])
        got = ex.model_predictor(small)(windows, stat2)
        # one thread first, two restored last (the CPU kernel sets one per block in between)
        assert seen[0] == 1 and seen[-1] == 2 and torch.get_num_threads() == 2, seen
        np.testing.assert_array_equal(got, want)  # want: on two threads
        ex.model_predictor(big)(windows, stat2)
        assert torch.get_num_threads() == 2
    finally:
        real(old)


def test_lookback_permutation_runs_on_a_model():
    from xsomo.testing import synthetic_drivers, synthetic_truth

    model = _tiny_model()
    drivers = synthetic_drivers(nlat=2, nlon=2, ndays=120, sea_cells=0)
    truth = synthetic_truth(drivers)
    rows, cols = np.array([0, 1, 1]), np.array([0, 0, 1])
    dyn, stat = ex.extract_cells(drivers, rows, cols, dynamic=cv.DYNAMIC_NAMES, static=cv.STATIC_NAMES)
    obs = ex.truth_at(truth.sel(layer=[1, 2]), rows, cols, drivers.time.values)
    out = ex.lookback_permutation(model, dyn, stat, obs, ns=(1, 5, 30), days_per_cell=40, min_days=10)
    assert out["nse"].dims == ("n_kept", "layer")
    assert out.n_kept.values.tolist() == [1, 5, 30] and out.layer.values.tolist() == [1, 2]
    # an untrained network may give a constant deeper layer (r undefined); layer 1 varies
    assert np.isfinite(out["pearson_r"].sel(layer=1).values).all()
    # fewer scored days than min_days made every score NaN and days_needed said 1 day (QA)
    with pytest.raises(XsomoValueError, match=r"10 scored days per cell .* fewer than min_days=20"):
        ex.lookback_permutation(model, dyn, stat, obs, ns=(1, 30), days_per_cell=10, min_days=20)
    with pytest.raises(XsomoValueError, match=r"must be >= 1 \(got \[-1\]\)"):
        ex.lookback_permutation(model, dyn, stat, obs, ns=(-1, 30), days_per_cell=40, min_days=10)
    nan = out.copy(deep=True)
    nan["pearson_r"][:] = np.nan
    assert np.isnan(ex.days_needed(nan)).all()
    # every possible day (days_per_cell >= 120 - 30 + 1): the unpermuted reference is the model's
    # windowed roll-out against the truth, scored here with numpy
    from xsomo.model.rollout import predict_block

    full = ex.lookback_permutation(model, dyn, stat, obs, ns=(1, 30), days_per_cell=500, min_days=10)
    pred = predict_block(model, dyn, stat, mode="windowed").mean(axis=1)[:, :, 29:]  # (layer, cell, day)
    o = obs[:, :, 29:]
    for c in range(3):
        p1, o1 = pred[0, c].astype(float), o[0, c].astype(float)
        r = np.corrcoef(p1, o1)[0, 1]
        nse = 1 - np.sum((p1 - o1) ** 2) / np.sum((o1 - o1.mean()) ** 2)
        assert float(full["pearson_r_cells"].sel(n_kept=30, layer=1, cell=c)) == pytest.approx(r, abs=1e-4)
        assert float(full["nse_cells"].sel(n_kept=30, layer=1, cell=c)) == pytest.approx(nse, abs=1e-3)
    assert float(full["pearson_r"].sel(n_kept=30, layer=1)) == pytest.approx(
        float(np.median(full["pearson_r_cells"].sel(n_kept=30, layer=1)))
    )
    # shuffling all but the last day changes the predictions
    assert not np.allclose(full["pearson_r_cells"].sel(n_kept=1, layer=1), full["pearson_r_cells"].sel(n_kept=30, layer=1))


def test_transfer_envelope_flags():
    from xsomo.testing import synthetic_drivers, synthetic_truth

    drivers = synthetic_drivers(nlat=3, nlon=4, ndays=90, sea_cells=0, seed=4)
    truth = synthetic_truth(drivers)
    model = _tiny_model(lookback=20)
    # train cells: the first row; make one test cell's aridity far outside their range
    model.training_cells = np.column_stack([np.full(4, drivers.lat.values[0]), drivers.lon.values])
    drivers = drivers.copy()
    drivers["aridity"] = drivers["aridity"].copy()
    drivers["aridity"][2, 3] = 1e3
    groups = {"same": (np.array([0, 0]), np.array([1, 2])), "other": (np.array([2, 2]), np.array([0, 3]))}
    out = ex.transfer(model, drivers, truth, groups, min_days=10)
    assert out.sizes["cell"] == 4
    assert out["group"].values.tolist() == ["same", "same", "other", "other"]
    np.testing.assert_allclose(out["novelty"].values[:2], 0.0, atol=1e-6)
    assert out["outside_envelope"].values.tolist()[:2] == [False, False]
    assert bool(out["outside_envelope"].values[3])
    assert out["novelty"].values[3] > out["novelty"].values[2]
    summary = ex.transfer_summary(out)
    assert set(summary["group"]) == {"same", "other"}


@pytest.mark.slow
# the tiny world has too few target cells to hold some out: training says so and splits by time
@pytest.mark.filterwarnings("ignore:.*too few to hold some out:RuntimeWarning")
def test_experiments_end_to_end_on_the_tiny_world(tiny_world, tmp_path):
    """Real runs: train on region 'us' targets only (tiny settings), transfer and permutation."""
    from xsomo.drivers.assemble import build_targets, open_drivers

    targets, _, _ = build_targets(tiny_world)
    drivers = open_drivers(tiny_world).load()
    # two epochs of an 8-unit network do not learn to forget: the forgetting check (its own tests in
    # tests/model) is off here, the experiments are what this test runs
    kw = {"ensemble": 1, "hidden": 8, "lookback": 60, "seq_length": 60, "epochs": 2, "steps_per_epoch": 5, "progress": False,
          "forget_tolerance": 0.0}
    result, model = ex.transfer_experiment(tiny_world, targets=targets, drivers=drivers, train_kwargs=kw, test_cells=20)
    assert set(result["group"].values) == {"europe", "us_holdout"}
    assert result.attrs["n_train_cells"] >= 1
    truth = xr.open_dataset(tiny_world / "truth.nc")
    region = truth["region"].values
    rows, cols, _ = __import__("xsomo").evaluation.match_stations(truth, model.training_cells[:, 0], model.training_cells[:, 1])
    assert (region[rows, cols] == 1).all()  # trained on "us" cells only
    # a given model's own training cells are never scored as held out (targets naming fewer cells)
    again, _ = ex.transfer_experiment(
        tiny_world, targets=targets.isel(cell=[0]), drivers=drivers, model=model, test_cells=20
    )  # fmt: skip
    trained_at = {(round(a, 4), round(b, 4)) for a, b in model.training_cells}
    scored_at = {(round(a, 4), round(b, 4)) for a, b in zip(again.lat.values, again.lon.values, strict=True)}
    assert not trained_at & scored_at
    assert again.attrs["n_train_cells"] >= len(trained_at)
    summary = ex.transfer_summary(result)
    assert {"europe", "us_holdout"} <= set(summary.group)
    scales, perm = ex.memory_experiment(tiny_world, model, drivers=drivers, cells=5, days_per_cell=30, ns=(1, 10, 60))
    assert perm["nse"].shape == (3, 3)
    assert (scales["efold_days"] > 0).all()


def test_days_needed_is_nan_where_the_window_adds_no_skill():
    """H2 finding 4: a score that falls (or stays flat) with the days kept in order gave 1 day."""
    ns = [1, 2, 5, 10, 20, 30, 60, 90]
    falling = [0.5 - 0.01 * k for k in range(len(ns))]
    rising = [0.1, 0.2, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9]
    flat = [0.4] * len(ns)
    perm = xr.Dataset(
        {"nse": (("n_kept", "layer"), np.array([falling, rising, flat]).T)}, coords={"n_kept": ns, "layer": [1, 2, 3]}
    )
    out = ex.days_needed(perm, metric="nse")
    assert np.isnan(out.sel(layer=1)) and np.isnan(out.sel(layer=3))
    assert float(out.sel(layer=2)) == 20.0  # n=10 gains 0.7 of 0.8 (87.5 %), n=20 all of it


def test_memory_timescales_warns_on_a_short_record():
    """H2 finding 1: the 31-day moving climatology of one year is the year's running mean, which
    removes the slow part of the anomalies (AR(1) with phi 0.97: e-folding 33 days)."""
    rng = np.random.default_rng(3)
    ntime = 6 * 365
    data = _ar1(0.97, (20, ntime), rng)[None]
    t = pd.date_range("2001-01-01", periods=ntime, freq="D")
    da = xr.DataArray(data, dims=("layer", "cell", "time"), coords={"layer": [1], "time": t})
    long = ex.memory_timescales(da, max_lag=120)
    assert not long.attrs["short_record"] and long.attrs["n_years"] == pytest.approx(6, abs=0.01)
    with pytest.warns(UserWarning, match=r"covers 1.0 years .* fewer than min_years=3"):
        short = ex.memory_timescales(da.isel(time=slice(0, 365)), max_lag=120)
    assert short.attrs["short_record"]
    assert int(short["efold_days"].sel(layer=1)) < 0.7 * int(long["efold_days"].sel(layer=1))
    # three calendar years without a leap day are enough
    ex.memory_timescales(da.isel(time=slice(0, 3 * 365)), max_lag=120)


def test_memory_experiment_refuses_zero_cells():
    """H2 finding 6: --cells 0 gave an unexpected ValueError 'need at least one array to stack'."""
    with pytest.raises(XsomoValueError, match=r"cells=0: .* at least one cell"):
        ex.memory_experiment("no/world/needed", None, cells=0)
    with pytest.raises(XsomoValueError, match="no cell given"):
        ex.lookback_permutation(lambda w, s: w[..., 0], np.zeros((0, 50, 1)), np.zeros((0, 1)), np.zeros((1, 0, 50)),
                                lookback=10, days_per_cell=20, layers=(1,))
