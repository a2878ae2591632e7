"""The Triton cell update of GPU inference (xsomo/model/_ealstm_triton.py) in Triton's CPU
interpreter, against the PyTorch operations it replaces.

Runs where Triton is installed (it comes with CUDA builds of PyTorch; CPU-only installs skip
this, and tests/gpu runs the kernel itself on a GPU). The interpreter has no libdevice, so
its ``tanh`` is the sigmoid form: the bound here is float32 rounding, 1e-6.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="Triton not installed (CPU-only PyTorch)"
)

SCRIPT = textwrap.dedent(
    """
    import torch
    from xsomo.model import _ealstm_gpu

    torch.manual_seed(0)
    for m, H, D, with_y in [(37, 24, 5, True), (300, 128, 4, True), (70, 128, 6, False), (5, 3, 2, True)]:
        gates, c, i = torch.randn(m, 3 * H), torch.randn(m, H), torch.rand(m, H)
        hx, w = torch.randn(m, H + D), torch.randn(H)
        y = torch.full((m,), float("nan")) if with_y else None
        c_ref = torch.sigmoid(gates[:, :H]) * c + i * torch.tanh(gates[:, 2 * H :])
        h_ref = torch.sigmoid(gates[:, H : 2 * H]) * torch.tanh(c_ref)
        x_before = hx[:, H:].clone()
        _ealstm_gpu.cell_step(gates, c, i, hx, w, y)
        assert float((c - c_ref).abs().max()) < 1e-6, (m, H)
        assert float((hx[:, :H] - h_ref).abs().max()) < 1e-6, (m, H)
        assert torch.equal(hx[:, H:], x_before)  # the day's inputs untouched
        if with_y:
            assert float((y - h_ref @ w).abs().max()) < 1e-5 * max(1.0, float(w.abs().sum())), (m, H)
    # the check that available() runs once per GPU passes where the kernel works ...
    assert _ealstm_gpu.self_test(torch.device("cpu"))
    # ... and warns and falls back where it does not
    import warnings
    _ealstm_gpu.self_test.cache_clear()
    real = _ealstm_gpu.cell_step
    _ealstm_gpu.cell_step = lambda *a: (_ for _ in ()).throw(RuntimeError("no kernel image for this GPU"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not _ealstm_gpu.self_test(torch.device("cpu"))
    assert "no kernel image" in str(caught[-1].message) and "PyTorch operations" in str(caught[-1].message)
    _ealstm_gpu.cell_step = real
    print("ok")
    """
)


def test_triton_cell_step_matches_the_torch_operations():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
