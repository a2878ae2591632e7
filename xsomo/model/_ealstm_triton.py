"""The Triton kernel behind :func:`xsomo.model._ealstm_gpu.cell_step` (imported only there,
and only where Triton is installed)."""

from __future__ import annotations

import os

import triton
import triton.language as tl
from triton.language.extra import libdevice

__all__ = ["INTERPRETED", "cell_step_kernel", "triton"]

#: Triton's CPU interpreter (``TRITON_INTERPRET=1``, the tests without a GPU) has no
#: libdevice: there ``tanh`` is ``2 sigmoid(2x) - 1`` (float32 rounding of ~1e-7 absolute).
INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@triton.jit
def _tanh(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.tanh(x)
    else:
        return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def cell_step_kernel(
    gates_ptr, c_ptr, i_ptr, hx_ptr, w_ptr, y_ptr, n_rows,
    H: tl.constexpr, HP: tl.constexpr, HX_STRIDE: tl.constexpr, ROWS: tl.constexpr, OUT: tl.constexpr,
    LIBDEVICE: tl.constexpr,
):  # fmt: skip
    """ROWS cells per program, all H units of each: the gates f, o, g of a row are
    contiguous in ``gates`` (m, 3H); h goes into the first H columns of ``hx``."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, HP)
    rmask = rows < n_rows
    cmask = cols < H
    mask = rmask[:, None] & cmask[None, :]
    r = rows[:, None].to(tl.int64)
    k = cols[None, :]
    g_off = r * (3 * H) + k
    f = tl.load(gates_ptr + g_off, mask=mask, other=0.0)
    o = tl.load(gates_ptr + g_off + H, mask=mask, other=0.0)
    g = tl.load(gates_ptr + g_off + 2 * H, mask=mask, other=0.0)
    s_off = r * H + k
    gate_i = tl.load(i_ptr + s_off, mask=mask, other=0.0)
    c = tl.load(c_ptr + s_off, mask=mask, other=0.0)
    c = tl.sigmoid(f) * c + gate_i * _tanh(g, LIBDEVICE)
    h = tl.sigmoid(o) * _tanh(c, LIBDEVICE)
    tl.store(c_ptr + s_off, c, mask=mask)
    tl.store(hx_ptr + r * HX_STRIDE + k, h, mask=mask)
    if OUT:
        w = tl.load(w_ptr + cols, mask=cmask, other=0.0)
        tl.store(y_ptr + rows, tl.sum(h * w[None, :], axis=1), mask=rmask)
