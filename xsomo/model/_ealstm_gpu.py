"""The EA-LSTM's per-step cell update on a GPU as one Triton kernel (inference, float32).

:meth:`xsomo.model.EALSTM.rollout` computes, per day, one GEMM ``[h, x_t] @ W`` for the
forget, output and cell gates and then the element-wise update. With PyTorch operations
that update is six memory-bound kernels (sigmoid, tanh, two for ``c``, tanh, the product
for ``h``) plus a matrix-vector product for the head: on an H200, at 65 536 cells and 128
hidden units, a third of each step's time. :func:`cell_step` does all of it in one
pass over the gates: it reads ``f, o, g``, the static input gate and ``c``, writes ``c``
and ``h`` (into the GEMM's input buffer) and the head's output. Measured on an H200 (65 536
cells x 730 days, 128 units, float32): 159 M cell-days/s with the PyTorch operations, 248 M
with this kernel, 66 % of the GPU's float32 matmul rate (docs/prediction.md, "On a GPU").

Used where Triton imports and the tensors are float32 on CUDA (:func:`available`); the
PyTorch operations otherwise. ``tanh`` is libdevice's, so the numbers are those of the
PyTorch path to float32 rounding (``tests/gpu``).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import torch

#: Set to False to use the PyTorch operations on a GPU too (e.g. to compare them).
ENABLED = True


@functools.cache
def _kernel() -> Any:
    """The Triton module (:mod:`xsomo.model._ealstm_triton`), or None where Triton is missing;
    imported on first use only, so that CPU runs never pay for it."""
    try:
        from xsomo.model import _ealstm_triton
    except ImportError:
        return None
    return _ealstm_triton


def available(x: torch.Tensor, n_outputs: int) -> bool:
    """Whether :func:`cell_step` runs for inputs like ``x`` (float32 on CUDA, one output, and
    the kernel compiled and agreed with the PyTorch operations on that GPU: :func:`self_test`)."""
    return (
        ENABLED and x.is_cuda and x.dtype == torch.float32 and n_outputs == 1 and _kernel() is not None
        and self_test(x.device)
    )  # fmt: skip


@functools.cache
def self_test(device: torch.device) -> bool:
    """Run :func:`cell_step` once on ``device`` against the PyTorch operations; on any failure
    (a GPU Triton cannot compile for, a Triton without libdevice) warn and say False, so that
    the roll-out takes the PyTorch operations instead of stopping."""
    try:
        gen = torch.Generator().manual_seed(0)
        m, h, d = 5, 8, 3
        gates, c, gate_i = torch.randn(m, 3 * h, generator=gen), torch.randn(m, h, generator=gen), torch.rand(m, h, generator=gen)
        hx, w = torch.randn(m, h + d, generator=gen), torch.randn(h, generator=gen)
        c_ref = torch.sigmoid(gates[:, :h]) * c + gate_i * torch.tanh(gates[:, 2 * h :])
        y_ref = (torch.sigmoid(gates[:, h : 2 * h]) * torch.tanh(c_ref)) @ w
        on = [t.to(device) for t in (gates, c, gate_i, hx, w)]
        y = torch.empty(m, device=device)
        cell_step(*on, y)
        ok = bool(torch.allclose(on[1].cpu(), c_ref, atol=1e-5)) and bool(torch.allclose(y.cpu(), y_ref, atol=1e-4))
        if not ok:
            raise ArithmeticError("its numbers differ from the PyTorch operations'")
        return True
    except Exception as err:  # any failure means: use the PyTorch operations
        warnings.warn(
            f"xsomo: the Triton cell update of the GPU roll-out does not work on {device} ({err}); "
            "using PyTorch operations (same numbers, slower)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False


def cell_step(
    gates: torch.Tensor,
    c: torch.Tensor,
    gate_i: torch.Tensor,
    hx: torch.Tensor,
    head_w: torch.Tensor,
    y: torch.Tensor | None,
) -> None:
    """One day's update, in place: ``c = s(f) c + i tanh(g)``, ``h = s(o) tanh(c)`` into
    ``hx[:, :H]``, and ``y = h @ head_w`` (no bias) when ``y`` is given.

    ``gates`` ``(m, 3H)`` (f, o, g; contiguous), ``c`` and ``gate_i`` ``(m, H)``
    (contiguous), ``hx`` ``(m, H + D)`` (contiguous), ``head_w`` ``(H,)``, ``y`` ``(m,)``.
    """
    mod = _kernel()
    m, h3 = gates.shape
    h = h3 // 3
    hp = mod.triton.next_power_of_2(h)
    rows = max(1, 4096 // hp)
    with torch.cuda.device(gates.device) if gates.is_cuda else contextlib.nullcontext():  # launch on its GPU
        mod.cell_step_kernel[(mod.triton.cdiv(m, rows),)](
            gates, c, gate_i, hx, head_w, gates if y is None else y, m,
            H=h, HP=hp, HX_STRIDE=hx.shape[1], ROWS=rows, OUT=y is not None, LIBDEVICE=not mod.INTERPRETED,
        )  # fmt: skip
