"""EA-LSTM on the fused kernel vs its loop reference; masks; state hand-over."""

from __future__ import annotations

import os

import pytest
import torch

from xsomo.model import EALSTM
from xsomo.model.ealstm import Dropout


def _net(seed=0, d=3, s=4, h=16, **kw):
    torch.manual_seed(seed)
    return EALSTM(d, s, h, dropout=0.0, **kw).double()


def test_fused_equals_loop_reference():
    net = _net()
    x_d = torch.randn(5, 40, 3, dtype=torch.float64)
    x_s = torch.randn(5, 4, dtype=torch.float64)
    h0 = (0.5 * torch.randn(5, 16, dtype=torch.float64), torch.randn(5, 16, dtype=torch.float64))
    y1, (h1, c1) = net(x_d, x_s, h0)
    y2, (h2, c2) = net.forward_loop(x_d, x_s, h0)
    torch.testing.assert_close(y1, y2, atol=1e-10, rtol=0)
    torch.testing.assert_close(c1, c2, atol=1e-10, rtol=0)
    torch.testing.assert_close(h1, h2, atol=1e-10, rtol=0)
    net32 = net.float()
    y3, _ = net32(x_d.float(), x_s.float())
    y4, _ = net32.forward_loop(x_d.float(), x_s.float())
    assert (y3 - y4).abs().max() < 1e-5


def test_input_gate_reads_only_statics():
    net = _net()
    x_d = torch.randn(2, 10, 3, dtype=torch.float64)
    x_s = torch.randn(2, 4, dtype=torch.float64)
    y, _ = net(x_d, x_s)
    y.sum().backward()
    h = net.hidden
    g_ih, g_hh = net.weight_ih.grad, net.weight_hh.grad
    assert (g_ih[:h, :3] == 0).all()  # input gate <- dynamic: masked
    assert (g_ih[h:, 3:] == 0).all()  # f, g, o <- static: masked
    assert (g_hh[:h] == 0).all()  # no recurrent input gate
    assert g_ih[:h, 3:].abs().sum() > 0 and g_ih[h:, :3].abs().sum() > 0


def test_input_gate_independent_of_dynamic_inputs():
    """The forward pass's input gate depends on the statics only.

    From a zero state one step gives ``c_1 = i * tanh(g_1)`` with ``g_1 = W_g x_d + b_g``, so
    the gate the fused kernel used is ``c_1 / tanh(g_1)``: it must be the same for different
    dynamic inputs, equal ``sigmoid(W_s x_s + b_s)``, and change with the statics.
    """
    net = _net()
    h = net.hidden
    x_s = torch.randn(3, 4, dtype=torch.float64)

    def gate_used(x_d, x_s):
        _, (_, c1) = net(x_d, x_s)  # one day from the zero state
        g1 = x_d[:, 0] @ net.weight_ih[2 * h : 3 * h, :3].T + net.bias[2 * h : 3 * h]
        return c1 / torch.tanh(g1)

    with torch.no_grad():
        gates = [gate_used(torch.randn(3, 1, 3, dtype=torch.float64), x_s) for _ in range(3)]
        want = torch.sigmoid(x_s @ net.weight_ih[:h, 3:].T + net.bias[:h])
        for got in gates:
            torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
        other = gate_used(torch.randn(3, 1, 3, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64))
    assert (other - want).abs().max() > 1e-3  # the statics do move it
    # the masked dynamic -> input-gate weights play no part in the forward pass
    x_d = torch.randn(3, 20, 3, dtype=torch.float64)
    with torch.no_grad():
        y0, _ = net(x_d, x_s)
        net.weight_ih[:h, :3] += 10.0
        y1, _ = net(x_d, x_s)
    torch.testing.assert_close(y1, y0, atol=0, rtol=0)


def test_state_hand_over_two_halves_equal_one_run():
    net = _net()
    x_d = torch.randn(4, 50, 3, dtype=torch.float64)
    x_s = torch.randn(4, 4, dtype=torch.float64)
    y, (h, c) = net(x_d, x_s)
    ya, st = net(x_d[:, :23], x_s)
    yb, (hb, cb) = net(x_d[:, 23:], x_s, st)
    torch.testing.assert_close(torch.cat([ya, yb], 1), y, atol=1e-12, rtol=0)
    torch.testing.assert_close(hb, h, atol=1e-12, rtol=0)
    torch.testing.assert_close(cb, c, atol=1e-12, rtol=0)


@pytest.mark.parametrize("exact_tanh", [False, True])
def test_cpu_rollout_kernel_equals_loop_reference(exact_tanh, monkeypatch):
    """EALSTM.rollout (3-gate GEMM, units along rows, days in chunks; tanh exact or via sigmoid
    with 2c / h/2 carried) = the loop reference, across blocks of cells and chunks of days."""
    from xsomo.model import ealstm

    net = _net(h=16, n_outputs=2).eval()
    x_d = torch.randn(11, 60, 3, dtype=torch.float64)
    x_s = torch.randn(11, 4, dtype=torch.float64)
    h0 = (0.5 * torch.randn(11, 16, dtype=torch.float64), 3.0 * torch.randn(11, 16, dtype=torch.float64))
    row = 4 * 8 * (16 + 3 + 1)  # bytes of one day's [h; x; 1] for 4 cells in float64
    for state in (None, h0):
        want, (wh, wc) = net.forward_loop(x_d, x_s, state)
        # one day per chunk, 7 days (the last chunk short), every day in one chunk
        for chunk_bytes in (1, 7 * row, 1 << 22):
            monkeypatch.setattr(ealstm, "ROLLOUT_CHUNK_BYTES", chunk_bytes)
            for block in (4, 11, 512):  # blocks of cells, the last one short
                y, (h, c) = net.rollout(x_d, x_s, state, block=block, exact_tanh=exact_tanh)
                torch.testing.assert_close(y, want, atol=1e-12, rtol=0)
                torch.testing.assert_close(h, wh, atol=1e-12, rtol=0)
                torch.testing.assert_close(c, wc, atol=1e-12, rtol=0)
        none, (h2, c2) = net.rollout(x_d, x_s, state, outputs=False, exact_tanh=exact_tanh)
        assert none is None
        torch.testing.assert_close(h2, wh, atol=1e-12, rtol=0)
        torch.testing.assert_close(c2, wc, atol=1e-12, rtol=0)
    net32 = net.float()
    y32, _ = net32.rollout(x_d.float(), x_s.float(), (h0[0].float(), h0[1].float()), exact_tanh=exact_tanh)
    assert (y32.double() - want).abs().max() < 1e-5
    # the fused kernel is what training runs: same numbers in float32 too
    fused, _ = net32(x_d.float(), x_s.float(), (h0[0].float(), h0[1].float()))
    assert (y32 - fused).abs().max() < 1e-5


def test_cpu_rollout_default_form_follows_the_cpu(monkeypatch):
    """exact_tanh=None takes tanh itself where this CPU's tanh is cheap, the sigmoid form elsewhere."""
    from xsomo.model import ealstm

    net = _net(h=16).eval().float()
    x_d, x_s = torch.randn(6, 40, 3), torch.randn(6, 4)
    forms = {flag: net.rollout(x_d, x_s, exact_tanh=flag)[0] for flag in (False, True)}
    assert not torch.equal(forms[False], forms[True])  # float32: the two forms round differently
    for cheap in (False, True):
        monkeypatch.setattr(ealstm, "cpu_tanh_is_cheap", lambda cheap=cheap: cheap)
        assert torch.equal(net.rollout(x_d, x_s)[0], forms[cheap])


def test_cpu_training_kernel_gradients_equal_the_fused_lstm(monkeypatch):
    """EALSTMFunction (backward through time by hand) = autograd through oneDNN's fused LSTM."""
    from xsomo.model import ealstm

    net = _net(h=8)
    x_d = torch.randn(5, 30, 3, dtype=torch.float64, requires_grad=True)
    x_s = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)

    def run():
        for t in (x_d, x_s, h0, c0):
            t.grad = None
        net.zero_grad()
        out, (h, c) = net.lstm(x_d, x_s, (h0, c0))
        w = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
        ((out * w).sum() + (h**2).sum() + 0.3 * c.sum()).backward()
        grads = [t.grad.clone() for t in (x_d, x_s, h0, c0)]
        grads += [p.grad.clone() for p in (net.weight_ih, net.weight_hh, net.bias)]
        return [out.detach(), h.detach(), c.detach(), *grads]

    def kernel():
        return type(net.lstm(x_d, x_s)[0].grad_fn).__name__

    monkeypatch.setattr(ealstm, "CPU_TRAINING_MIN", 0)
    assert kernel() == "EALSTMFunctionBackward"
    custom = run()
    monkeypatch.setattr(ealstm, "CPU_TRAINING_MIN", 10**9)
    assert kernel() != "EALSTMFunctionBackward"  # oneDNN's
    fused = run()
    names = ["y", "h_n", "c_n", "x_d", "x_s", "h0", "c0", "weight_ih", "weight_hh", "bias"]
    for name, a, b in zip(names, custom, fused, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0, msg=name)
    g_ih = custom[7]
    assert (g_ih[:8, :3] == 0).all() and (g_ih[8:, 3:] == 0).all() and (custom[8][:8] == 0).all()


@pytest.mark.parametrize("p", [0.4, 0.1, 0.75])
def test_dropout_drops_p_and_keeps_the_expectation(p):
    """xsomo's CPU dropout (15-bit integer mask): the dropped fraction is p (to 1/32768),
    the kept values are scaled so the mean is unchanged, and the gradient is the mask."""
    torch.manual_seed(0)
    drop = Dropout(p)
    x = torch.rand(200, 365, 32, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    y = drop(x)
    kept = y != 0
    n = kept.numel()
    # binomial standard error of the kept fraction: sqrt(p (1 - p) / n) ~ 5e-4 at n = 2.3 M
    assert abs(1 - kept.double().mean().item() - p) < 5 * (p * (1 - p) / n) ** 0.5 + 1 / 32768
    scale = 32768 / (32768 - round(p * 32768))
    torch.testing.assert_close(y[kept], x.detach()[kept] * scale, rtol=1e-15, atol=0)
    assert abs(y.mean().item() / x.mean().item() - 1) < 0.01
    y.sum().backward()  # the gradient: the scaled mask
    assert torch.equal(x.grad, torch.where(kept, torch.tensor(scale, dtype=x.dtype), torch.zeros((), dtype=x.dtype)))
    # masks differ between calls and follow torch's seed
    torch.manual_seed(1)
    a = drop(x.detach()) != 0
    torch.manual_seed(1)
    assert torch.equal(drop(x.detach()) != 0, a)
    assert not torch.equal(drop(x.detach()) != 0, a)


def test_dropout_keep_factors_from_the_compiled_library_equal_torchs(monkeypatch):
    """The EA-LSTM's dropout takes its keep factors from the C library where it is at hand:
    the same mask and factors as the PyTorch operations, bit for bit, for the same seed."""
    from xsomo.model import ealstm

    _compiled(16, 3)
    net = EALSTM(3, 4, 16, dropout=0.4).train()
    assert net.dropout.kernel == (16, 3)
    x = torch.randn(5, 70, 16).transpose(0, 1)[:, 1:]  # a strided view, as the training's slices are
    torch.manual_seed(7)
    compiled = net.dropout(x)
    monkeypatch.setattr(ealstm._ckernel, "kernel", lambda *a: None)
    torch.manual_seed(7)
    assert torch.equal(net.dropout(x), compiled)
    assert 0.3 < (compiled == 0).double().mean().item() < 0.5


def test_dropout_is_identity_in_eval_mode_and_at_zero():
    x = torch.randn(4, 10, 8)
    assert torch.equal(Dropout(0.4).eval()(x), x)
    assert torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
    assert isinstance(EALSTM(2, 3, 8).dropout, Dropout)


def _compiled(hidden, n_dynamic):
    from xsomo.model import _ckernel

    lib = _ckernel.kernel(hidden, n_dynamic)
    if lib is None:
        pytest.skip("no C compiler here: the EA-LSTM trains with the PyTorch loops (tested above)")
    return lib


@pytest.mark.parametrize(
    ("h", "d", "scale", "first", "input_grad"),
    [
        (8, 3, 1.0, 0, True),
        (17, 1, 1.0, 0, True),
        (32, 4, 1.0, 0, True),
        (8, 3, 300.0, 0, True),
        (32, 4, 1.0, 25, False),  # training's call: outputs from day 25 on, no gradient for the data
        (40, 3, 1.0, 39, False),  # one block of 96 gate columns and 24 more; K = 43, odd
        (17, 2, 1.0, 40, True),  # no output at all (first = every day): h_n and c_n carry the loss
    ],
)
def test_compiled_training_loops_equal_the_torch_loops(monkeypatch, h, d, scale, first, input_grad):
    """The C loops (float32) = EALSTMFunction's PyTorch loops, outputs and every gradient;
    ``scale``: inputs and cell states so large that the gates saturate (were NaN unclamped);
    ``first``: outputs from that day on; ``input_grad``: the dynamic inputs need a gradient
    (the C loops then keep every day's pre-activation gradient, else only one day's)."""
    from xsomo.model import _ealstm_cpu

    _compiled(h, d)
    net = _net(d=d, h=h).float()
    torch.manual_seed(1)
    n, t = 7, 40
    leaves = [scale * torch.randn(n, t, d), torch.randn(n, 4), 0.5 * torch.randn(n, h), scale * torch.randn(n, h)]
    for leaf in leaves[int(not input_grad) :]:
        leaf.requires_grad_(True)

    def run():
        for leaf in leaves:
            leaf.grad = None
        net.zero_grad()
        out, h_n, c_n = _ealstm_cpu.EALSTMFunction.apply(*leaves, net.weight_ih, net.weight_hh, net.bias, first)
        assert out.shape == (n, t - first, h)
        w = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
        ((out * w).sum() + (h_n**2).sum() + 0.3 * c_n.sum()).backward()
        grads = [leaf.grad.clone() for leaf in leaves if leaf.requires_grad]
        grads += [p.grad.clone() for p in (net.weight_ih, net.weight_hh, net.bias)]
        return [out.detach(), h_n.detach(), c_n.detach(), *grads]

    compiled = run()
    monkeypatch.setattr(_ealstm_cpu, "_c_loops", lambda *a: None)
    torch_loops = run()
    names = ["y", "h_n", "c_n", *(["x_d"] if input_grad else []), "x_s", "h0", "c0", "weight_ih", "weight_hh", "bias"]
    for name, a, b in zip(names, compiled, torch_loops, strict=True):
        assert torch.isfinite(a).all(), name
        largest = float(b.abs().max()) if b.numel() else 0.0
        torch.testing.assert_close(a, b, atol=2e-6 * max(largest, 1.0), rtol=0, msg=name)
    assert not torch.equal(compiled[-3], torch_loops[-3])  # two different codes ran


@pytest.mark.parametrize("path", ["compiled", "torch loops", "oneDNN"])
def test_outputs_from_a_later_day_are_the_tail_of_the_whole_run(monkeypatch, path):
    """``EALSTM.lstm(first=k)`` returns the days from ``k`` on, equal to the whole run's, and its
    gradients are the whole run's when the loss reads only those days -- on every CPU path."""
    from xsomo.model import _ealstm_cpu, ealstm

    torch.manual_seed(2)
    net = _net(d=3, h=8).float()
    x_d, x_s = torch.randn(6, 50, 3), torch.randn(6, 4)
    state = (0.5 * torch.randn(6, 8), torch.randn(6, 8))
    if path == "compiled":
        _compiled(8, 3)
    else:
        monkeypatch.setattr(_ealstm_cpu, "_c_loops", lambda *a: None)
        monkeypatch.setattr(ealstm, "CPU_TRAINING_MIN", 0 if path == "torch loops" else 10**9)
    w = torch.linspace(-1, 1, 6 * 30 * 8).reshape(6, 30, 8)

    def run(first):
        net.zero_grad()
        out, (h_n, _c_n) = net.lstm(x_d, x_s, state, first=first)
        tail = out[:, out.shape[1] - 30 :]
        ((tail * w).sum() + h_n.sum()).backward()
        return [out.detach()[:, out.shape[1] - 30 :], h_n.detach(), *(p.grad.clone() for p in net.parameters() if p.grad is not None)]

    whole, later = run(0), run(20)
    assert net.lstm(x_d, x_s, state, first=20)[0].shape == (6, 30, 8)
    for a, b in zip(whole, later, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="first output day 51"):
        net.lstm(x_d, x_s, state, first=51)


def test_float32_training_takes_the_compiled_loops_and_falls_back_without_them(monkeypatch, tmp_path):
    """Small float32 batches train on the C loops; without a compiler (or XSOMO_C_KERNEL=0) on oneDNN."""
    from xsomo.model import _ckernel

    _compiled(16, 3)
    net = _net(h=16).float()
    x_d, x_s = torch.randn(4, 20, 3), torch.randn(4, 4)

    def kernel():
        return type(net.lstm(x_d, x_s)[0].grad_fn).__name__

    assert kernel() == "EALSTMFunctionBackward"
    for env in ({"XSOMO_C_KERNEL": "0"}, {"CC": "false", "XSOMO_KERNEL_DIR": str(tmp_path / "k")}):
        _ckernel.kernel.cache_clear()
        _ckernel._toolchain.cache_clear()
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            if "CC" in env:  # a "compiler" that fails: nothing is left in the folder
                m.setattr(_ckernel.sysconfig, "get_config_var", lambda name: None)
            assert _ckernel.kernel(16, 3) is None
            assert kernel() != "EALSTMFunctionBackward"
        if "CC" in env:
            assert not list((tmp_path / "k").glob("*"))
    _ckernel.kernel.cache_clear()
    _ckernel._toolchain.cache_clear()


def test_compiled_loops_leave_the_floating_point_environment_alone():
    """Loading the library must not turn on flush-to-zero for the process (GCC's crtfastmath.o)."""
    import subprocess
    import sys

    _compiled(16, 3)
    code = (
        "import numpy as np; from xsomo.model import _ckernel; tiny = np.float32(1e-38); "
        "before = tiny / np.float32(100); assert _ckernel.kernel(16, 3) is not None; "
        "after = tiny / np.float32(100); print(before != 0, after != 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True"]


def test_compiled_loops_carry_nan_and_refuse_mixed_dtypes():
    """A NaN input gives a NaN output and loss (a saturated gate would hide a diverged training), and a
    float64 model on float32 inputs raises PyTorch's dtype error instead of reading float64 as float32."""
    _compiled(8, 3)
    net = _net(h=8).float()
    x_d, x_s = torch.randn(4, 20, 3), torch.randn(4, 4)
    x_d[1, 5, 0] = float("nan")
    out, _ = net.lstm(x_d, x_s)
    assert type(out.grad_fn).__name__ == "EALSTMFunctionBackward"
    assert torch.isnan(out[1, 5:]).all() and torch.isfinite(out[[0, 2, 3]]).all() and torch.isfinite(out[1, :5]).all()
    with pytest.raises(RuntimeError, match="dtype"):
        _net(h=8).lstm(torch.randn(4, 20, 3), torch.randn(4, 4))  # float64 weights


def test_a_damaged_library_in_the_cache_is_compiled_again(monkeypatch, tmp_path):
    """A truncated library (a crash while it was written) is never loaded (dlopen can kill the
    process): its checksum does not match, so it is compiled again."""
    import subprocess
    import sys

    from xsomo.model import _ckernel

    _compiled(8, 3)
    env = {**os.environ, "XSOMO_KERNEL_DIR": str(tmp_path)}
    code = "from xsomo.model import _ckernel; assert _ckernel.kernel(8, 3) is not None"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    (lib,) = tmp_path.glob("*.so")
    good = lib.read_bytes()
    assert (tmp_path / (lib.stem + ".sha256")).read_text().strip() == _ckernel._digest(lib)
    for damaged in (good[: len(good) // 2], b"", b"garbage" * 100):
        lib.write_bytes(damaged)
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        assert lib.read_bytes() == good
