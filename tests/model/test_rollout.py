"""Roll-out kernel: continuous vs windowed vs loop reference, chunked state hand-over, auto mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xsomo.exceptions import XsomoValueError
from xsomo.model import EALSTM, ModelConfig, NormStats, TrainedModel, rollout


def _model(
    *, forget_bias: float, layers=(1, 2, 3), ensemble=2, hidden=8, lookback=16, seed=0, clip=False
):
    torch.manual_seed(seed)
    cfg = ModelConfig(
        dynamic=["p", "t"], static=["a", "b", "c"], layers=layers, ensemble=ensemble,
        hidden=hidden, lookback=lookback, transforms={"p": "log1p"}, clip_negative=clip,
    )  # fmt: skip
    stats = NormStats(
        [0.5, 280.0], [0.8, 10.0], [0, 0, 0], [1, 1, 1], [0.25] * len(layers), [0.1] * len(layers)
    )
    weights = {}
    for lay in layers:
        for m in range(ensemble):
            net = EALSTM(cfg.n_inputs(lay), 3, hidden, initial_forget_bias=forget_bias)
            weights[(lay, m)] = net.state_dict()
    return TrainedModel(cfg, stats, weights)


def _inputs(cells=6, days=90, seed=1):
    rng = np.random.default_rng(seed)
    dyn = np.stack(
        [rng.gamma(0.7, 4.0, (cells, days)), 280 + 10 * rng.standard_normal((cells, days))], axis=-1
    )
    return dyn, rng.standard_normal((cells, 3))


def _forgetful():
    """Forget gate ~ sigmoid(-4): the state decays by ~50x a day, so 16 days erase it."""
    return _model(forget_bias=-4.0)


def test_continuous_matches_loop_reference():
    model = _model(forget_bias=3.0, layers=(1,), ensemble=1)
    dyn, stat = _inputs()
    got = rollout.predict_block(model, dyn, stat, mode="continuous", spinup=1)[0, 0]
    net = model.networks(1)[0]
    xd = torch.from_numpy(model.prepare_dynamic(dyn))
    xs = torch.from_numpy(model.prepare_static(stat))
    with torch.no_grad():
        y, _ = net.forward_loop(xd, xs)
    want = model.denormalise(y[..., 0].numpy(), 1)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_time_chunks_and_cell_batches_equal_one_run():
    model = _model(forget_bias=3.0)
    dyn, stat = _inputs(cells=7, days=70)
    one = rollout.predict_block(model, dyn, stat, mode="continuous", spinup=1, time_chunk=10_000)
    chunked = rollout.predict_block(
        model, dyn, stat, mode="continuous", spinup=1, time_chunk=9, batch_size=3
    )
    np.testing.assert_allclose(chunked, one, atol=1e-6)


def test_windowed_matches_explicit_windows():
    model = _model(forget_bias=3.0, layers=(1,), ensemble=1)
    dyn, stat = _inputs(cells=3, days=40)
    lb = model.config.lookback
    got = rollout.predict_block(model, dyn, stat, mode="windowed", batch_size=7)[0, 0]
    assert np.isnan(got[:, : lb - 1]).all() and np.isfinite(got[:, lb - 1 :]).all()
    for t in (lb - 1, 25, 39):
        win = rollout.predict_block(
            model, dyn[:, t - lb + 1 : t + 1], stat, mode="continuous", spinup=1
        )
        np.testing.assert_allclose(got[:, t], win[0, 0, :, -1], atol=1e-6)


def test_continuous_and_windowed_agree_for_a_model_that_forgets():
    model = _forgetful()
    dyn, stat = _inputs()
    cont = rollout.predict_block(model, dyn, stat, mode="continuous")
    wind = rollout.predict_block(model, dyn, stat, mode="windowed")
    valid = np.isfinite(wind)
    # deeper layers' windows need 2-3 lookbacks of upper-layer windowed output
    assert valid[..., 3 * model.config.lookback :].all()
    assert np.nanmax(np.abs(cont - wind)) < 1e-4


def test_cascade_uses_upper_layer_of_same_member():
    model = _model(forget_bias=3.0, layers=(1, 2), ensemble=2)
    dyn, stat = _inputs(cells=4, days=30)
    out = rollout.predict_block(model, dyn, stat, mode="continuous", spinup=1)
    for m in range(2):
        x = model.prepare_dynamic(dyn)
        up = model.normalise_target(out[0, m], 1)[..., None].astype("float32")
        net = model.networks(2)[m]
        with torch.no_grad():
            y, _ = net(
                torch.from_numpy(np.concatenate([x, up], -1)),
                torch.from_numpy(model.prepare_static(stat)),
            )
        np.testing.assert_allclose(out[1, m], model.denormalise(y[..., 0].numpy(), 2), atol=1e-5)


def test_auto_picks_continuous_when_the_model_forgets():
    model = _forgetful()
    dyn, stat = _inputs()
    out, info = rollout.predict_block(model, dyn, stat, mode="auto", return_info=True)
    assert info.mode == "continuous" and max(info.distance.values()) < info.tolerance
    np.testing.assert_array_equal(out, rollout.predict_block(model, dyn, stat, mode="continuous"))


def test_auto_falls_back_to_windowed_when_the_model_remembers():
    model = _model(forget_bias=8.0)  # f ~ 1: the state persists far beyond 16 days
    dyn, stat = _inputs()
    dist = rollout.convergence_distance(model, dyn, stat, steps=16)
    assert dist.shape == (3, 2, 6) and dist.max() > 1e-2
    out, info = rollout.predict_block(model, dyn, stat, mode="auto", return_info=True)
    assert info.mode == "windowed"
    np.testing.assert_array_equal(out, rollout.predict_block(model, dyn, stat, mode="windowed"))


def test_nan_forcing_and_statics():
    model = _model(forget_bias=-4.0, layers=(1,), ensemble=1)
    dyn, stat = _inputs(cells=3, days=60)
    dyn[0, 30, 1] = np.nan
    stat[2, 0] = np.nan
    out, info = rollout.predict_block(model, dyn, stat, mode="continuous", return_info=True)
    assert info.nan_forcing_days == 1
    assert np.isnan(out[0, 0, 0, 30]) and np.isfinite(out[0, 0, 0, 31:]).all()
    assert np.isnan(out[0, 0, 2]).all()
    win = rollout.predict_block(model, dyn, stat, mode="windowed")
    assert np.isnan(win[0, 0, 0, 30 : 30 + model.config.lookback]).all()
    assert np.isfinite(win[0, 0, 0, 30 + model.config.lookback :]).all()


def test_clip_negative_and_bad_arguments():
    model = _model(forget_bias=0.0, layers=(1,), ensemble=1, clip=True)
    model.stats.target_mean[:] = -0.5  # force negatives
    dyn, stat = _inputs(cells=2, days=20)
    out = rollout.predict_block(model, dyn, stat, mode="continuous", spinup=1)
    assert (out == 0).all()
    with pytest.raises(XsomoValueError, match="mode"):
        rollout.predict_block(model, dyn, stat, mode="fast")  # type: ignore[arg-type]
    with pytest.raises(XsomoValueError, match="dynamic inputs"):
        rollout.predict_block(model, dyn[..., :1], stat)


def _float64_reference(model: TrainedModel, dyn: np.ndarray, stat: np.ndarray) -> np.ndarray:
    """Layer 1 of a one-layer model in float64, computed independently: numpy z-score, loop kernel."""
    st = model.stats
    x = dyn.astype("float64").copy()
    x[..., 0] = np.log1p(x[..., 0])  # the model's transform of "p"
    xd = (x - st.dynamic_mean) / st.dynamic_std
    xs = (stat - st.static_mean) / st.static_std
    net = EALSTM(2, 3, model.config.hidden).double().eval()
    net.load_state_dict({k: v.double() for k, v in model.weights[(1, 0)].items()})
    with torch.no_grad():
        y, _ = net.forward_loop(torch.from_numpy(xd), torch.from_numpy(xs))
    return y[..., 0].numpy() * st.target_std[0] + st.target_mean[0]


def test_float64_is_float64_agrees_with_float32_and_leaves_the_model_alone():
    model = _model(forget_bias=3.0, layers=(1,), ensemble=1)
    dyn, stat = _inputs(cells=4, days=40)
    before = {k: v.clone() for k, v in model.weights[(1, 0)].items()}
    cached = model.networks(1)[0]
    want = _float64_reference(model, dyn, stat)
    lb = model.config.lookback
    for mode in ("continuous", "windowed"):
        f32 = rollout.predict_block(model, dyn, stat, mode=mode, spinup=1)
        f64, info = rollout.predict_block(
            model, dyn, stat, mode=mode, spinup=1, dtype="float64", return_info=True
        )
        assert f32.dtype == np.float32 and f64.dtype == np.float64 and info.dtype == "float64"
        valid = np.isfinite(f32)
        np.testing.assert_array_equal(valid, np.isfinite(f64))
        np.testing.assert_allclose(f64[valid], f32[valid], atol=1e-5, rtol=0)
        if mode == "continuous":  # float64 end to end: the independent float64 loop to ~1e-12
            np.testing.assert_allclose(f64[0, 0], want, atol=1e-10, rtol=0)
            assert np.abs(f32[0, 0] - want).max() > 1e-10  # ... which float32 is not
    # windowed day t from the window t-lb+1..t in float64 equals the float64 roll-out of that window
    win = rollout.predict_block(model, dyn, stat, mode="windowed", dtype="float64")
    t = 30
    part = _float64_reference(model, dyn[:, t - lb + 1 : t + 1], stat)
    np.testing.assert_allclose(win[0, 0, :, t], part[:, -1], atol=1e-10, rtol=0)
    # the model is untouched: same weights, same cached float32 network
    assert model.networks(1)[0] is cached
    assert all(p.dtype == torch.float32 for p in cached.parameters())
    for k, v in model.weights[(1, 0)].items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k])


def test_float64_cascade_auto_and_convergence_check():
    model = _forgetful()  # three layers, two members
    dyn, stat = _inputs()
    f32 = rollout.predict_block(model, dyn, stat, mode="auto")
    f64, info = rollout.predict_block(
        model, dyn, stat, mode="auto", dtype="float64", return_info=True
    )
    assert info.mode == "continuous" and f64.dtype == np.float64
    np.testing.assert_allclose(f64, f32, atol=1e-5, rtol=0, equal_nan=True)
    d32 = rollout.convergence_distance(model, dyn, stat, steps=16)
    d64 = rollout.convergence_distance(model, dyn, stat, steps=16, dtype="float64")
    assert d64.dtype == np.float64 and d64.shape == d32.shape
    np.testing.assert_allclose(d64, d32, atol=1e-5)


def test_float64_zscore_matches_the_models_own_normalisation():
    model = _model(forget_bias=3.0, layers=(1,), ensemble=1)
    dyn, stat = _inputs(cells=3, days=20)
    xd, xs = rollout._check_inputs(model, dyn, stat, "float64")
    assert xd.dtype == np.float64 and xs.dtype == np.float64
    np.testing.assert_allclose(xd, model.prepare_dynamic(dyn), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(xs, model.prepare_static(stat), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(xd.astype("float32"), model.prepare_dynamic(dyn))


@pytest.mark.parametrize("bad", ["float16", "double precision", None, torch.int64])
def test_bad_dtype_is_refused(bad):
    model = _model(forget_bias=3.0, layers=(1,), ensemble=1)
    dyn, stat = _inputs(cells=2, days=20)
    with pytest.raises(XsomoValueError, match=r"float32.*float64"):
        rollout.predict_block(model, dyn, stat, dtype=bad)
    with pytest.raises(XsomoValueError, match="dtype"):
        rollout.convergence_distance(model, dyn, stat, steps=5, dtype=bad)
    assert rollout.check_dtype(np.float64) == rollout.check_dtype(torch.float64) == "float64"


def test_full_float32_switches_tf32_off_on_cuda_and_restores_it_across_threads():
    """The flags are process-wide: nested and concurrent blocks share one count (no GPU needed)."""
    import threading

    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        with rollout.full_float32(torch.device("cpu")):
            assert torch.backends.cudnn.allow_tf32  # no-op on the CPU
        inside: list[bool] = []
        entered, release = threading.Barrier(3), threading.Event()

        def block() -> None:
            with rollout.full_float32(torch.device("cuda")):
                entered.wait()
                release.wait()
                inside.append(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)

        threads = [threading.Thread(target=block) for _ in range(2)]
        for t in threads:
            t.start()
        entered.wait()
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        release.set()
        for t in threads:
            t.join()
        assert inside == [False, False]
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_gpu_batch_fits_the_free_memory(monkeypatch):
    """The GPU batch follows free memory (no GPU needed: mem_get_info is stubbed)."""
    gib = 2**30
    cuda = torch.device("cuda")
    # measured on an H200: 32 768 windows of 365 steps x 128 float32 units asked for 120.5 GiB
    measured_per_window = 120.5 * gib / 32768
    for free in (8 * gib, 16 * gib, 40 * gib):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None, f=free: (f, 141 * gib))
        b = rollout._default_batch(cuda, windowed=True, steps=365, hidden=128, itemsize=4)
        assert 64 <= b <= 8192
        assert b * measured_per_window <= rollout.GPU_MEMORY_SHARE * free
        assert b >= 0.7 * rollout.GPU_MEMORY_SHARE * free / measured_per_window  # not needlessly small
        # float64 and longer sequences take proportionally fewer
        b64 = rollout._default_batch(cuda, windowed=True, steps=365, hidden=128, itemsize=8)
        assert b64 == max(64, b // 2) or abs(b64 - b / 2) <= 1
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (141 * gib, 141 * gib))
    assert rollout._default_batch(cuda, windowed=True, steps=365, hidden=128) == 8192
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (gib // 4, 141 * gib))
    assert rollout._default_batch(cuda, windowed=False, steps=2048, hidden=256) == 64
    assert rollout._default_batch(torch.device("cpu"), windowed=True) == 512
    # EALSTM.rollout (n_in given) holds inputs and outputs per step, not cuDNN's per-unit
    # workspace: all 65 536 cells (or windows) in one call, fewer only where memory is short
    for windowed in (True, False):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (141 * gib, 141 * gib))
        assert rollout._default_batch(cuda, windowed=windowed, steps=2048, hidden=128, n_in=7) == 65536
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (gib, 141 * gib))
        b = rollout._default_batch(cuda, windowed=windowed, steps=2048, hidden=128, n_in=7)
        inputs_and_outputs = b * 2048 * (2 * 7 + 2) * 4
        assert 0.5 * rollout.GPU_MEMORY_SHARE * gib < inputs_and_outputs <= rollout.GPU_MEMORY_SHARE * gib


def test_a_roll_out_continued_from_its_returned_state_is_the_single_roll_out():
    """Issue 17: the state after day k, fed back, continues the cascade bit for bit."""
    model = _model(forget_bias=3.0, ensemble=2)
    dyn, stat = _inputs(cells=5, days=120)
    stat[2] = np.nan  # a cell without statics stays NaN in the output and the state
    whole = rollout.predict_block(model, dyn, stat, mode="continuous", spinup=16)
    head, info = rollout.predict_block(
        model, dyn[:, :70], stat, mode="continuous", spinup=16, return_state=True, return_info=True
    )
    assert info.state.shape == (3, 2, 2, 5, 8)
    assert np.isnan(info.state[:, :, :, 2]).all() and np.isfinite(np.delete(info.state, 2, axis=3)).all()
    tail = rollout.predict_block(model, dyn[:, 70:], stat, mode="continuous", state=info.state)
    np.testing.assert_array_equal(np.concatenate([head, tail], axis=-1), whole)
    with pytest.raises(XsomoValueError, match="window-by-window"):
        rollout.predict_block(model, dyn[:, 70:], stat, mode="windowed", state=info.state)
    with pytest.raises(XsomoValueError, match="shape"):
        rollout.predict_block(model, dyn[:, 70:], stat[:4], mode="continuous", state=info.state)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_device_resident_cascade_is_the_host_cascade(dtype):
    """What a GPU runs (:func:`rollout._cascade_on_device`: gaps, upper layers, states and the
    de-normalisation on the device), run on the CPU: the host cascade's numbers, bit for bit, from
    every kind of initial state; the caller's inputs are left alone."""
    model = _model(forget_bias=1.0, ensemble=2, clip=True)
    dyn, stat = _inputs(cells=9, days=80)
    dyn[1, 20:24, 0] = np.nan  # gaps: NaN output on those days, zero inputs to the state
    dyn[4, 50, :] = np.nan
    xd, xs = rollout._check_inputs(model, dyn, stat, dtype)
    before = xd.copy()
    cpu = torch.device("cpu")
    kw = {"device": cpu, "batch_size": None, "time_chunk": 2048, "dtype": dtype}
    for start in ({}, {"state": (0.5, -0.5)}):
        host_final, dev_final = rollout._state_array(model, 9, dtype), rollout._state_array(model, 9, dtype)
        host = rollout._cascade(model, xd, xs, "continuous", final_states=host_final, **start, **kw)
        dev = rollout._cascade(model, xd, xs, "continuous", final_states=dev_final, on_device=True, **start, **kw)
        np.testing.assert_array_equal(dev, host)
        np.testing.assert_array_equal(dev_final, host_final)
        np.testing.assert_array_equal(xd, before)
        assert np.isnan(dev[:, :, 1, 20:24]).all() and np.isfinite(dev[:, :, 1, 24:]).all()
        assert (dev[np.isfinite(dev)] >= 0).all()  # clip_negative
    host = rollout._cascade(model, xd, xs, "continuous", init_states=host_final, **kw)
    dev = rollout._cascade(model, xd, xs, "continuous", init_states=host_final, on_device=True, **kw)
    np.testing.assert_array_equal(dev, host)
    # the normalised forcing kept on the device (a tensor, as predict_block keeps it on a GPU)
    kept = rollout._prepare_dynamic_on(model, dyn, dtype, cpu, keep=True)
    assert isinstance(kept, torch.Tensor)
    np.testing.assert_array_equal(rollout._gap_days(kept), rollout._gap_days(xd))
    kept_before = kept.clone()
    dev = rollout._cascade(model, kept, xs, "continuous", init_states=host_final, on_device=True, **kw)
    # (float64: torch's log1p and numpy's may differ in the last bit)
    np.testing.assert_allclose(dev, host, rtol=0, atol=0 if dtype == "float32" else 1e-12)
    np.testing.assert_array_equal(kept.numpy(), kept_before.numpy())  # the kept forcing is left alone too
    # cells in batches and days in chunks (states carried): the same to float rounding (GEMMs of other sizes)
    kw["batch_size"], kw["time_chunk"] = 4, 30
    batched = rollout._cascade(model, xd, xs, "continuous", init_states=host_final, on_device=True, **kw)
    np.testing.assert_allclose(batched, host, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_device_zscore_is_the_models_own(dtype):
    """The z-score a GPU computes (:func:`rollout._prepare_dynamic_on`, here on the CPU) is the
    model's float64 normalisation rounded once: equal in float32, to an ulp of log1p in float64."""
    model = _model(forget_bias=1.0)
    dyn, _stat = _inputs(cells=9, days=80)
    dyn[1, 20:24, 0] = np.nan
    dyn[2, 3, 0] = -1e-7  # de-accumulation round-off: clipped before log1p
    want = model.prepare_dynamic(dyn, dtype=dtype)
    before = dyn.copy()
    dyn.flags.writeable = False  # e.g. a memory-mapped file: read without a warning
    got = rollout._prepare_dynamic_on(model, dyn, dtype, torch.device("cpu"))
    np.testing.assert_array_equal(dyn, before)  # the transforms never work on the caller's array
    dyn.flags.writeable = True
    np.testing.assert_array_equal(rollout._prepare_dynamic_on(model, dyn, dtype, torch.device("cpu")), got)
    np.testing.assert_array_equal(dyn, before)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=0 if dtype == "float32" else 1e-15)
