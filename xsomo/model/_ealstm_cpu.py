"""The EA-LSTM's training kernel on the CPU: forward and backward through time by hand.

PyTorch's fused LSTM (oneDNN) computes four gates with recurrent weights and ``tanh`` (4x
dearer than a sigmoid on a CPU); the EA-LSTM's input gate has no recurrent weights and
reads the statics once per sequence. :class:`EALSTMFunction` does per step one GEMM
``[h, x_t] @ W`` (3 gates, input projection included) and one sigmoid over the gates
(``tanh(x) = 2 sigmoid(2x) - 1``), saves the gate values, and in the backward pass one GEMM
per step for the recurrent gradient; the weight gradients of all steps are one large GEMM
at the end. Gradients equal autograd's through :meth:`EALSTM.forward_loop` (tested in
float64, :mod:`tests.model.test_ealstm`).

For float32 the loops through time run in C (:mod:`xsomo.model._ckernel`; one call per pass
instead of about ten PyTorch operations per day) where a C compiler is at hand. There the
weight gradients are summed day by day inside the backward loop, while that day's
pre-activation gradients are in cache (a rank-``batch`` update per day, summed over the days
in double), instead of one GEMM over all days that reads them back from memory: at the demo
shape (64 windows x 730 days, 32 units) the backward pass with the weight gradients took
8.2-8.6 ms instead of 10.4-10.9 ms, and the (days, batch, 3H) gradient is not stored unless
the dynamic inputs need a gradient. Equal to the PyTorch loops within float32 rounding (tested).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from xsomo.model import _ckernel


def gate_rows(h: int) -> tuple[slice, slice, slice]:
    """Rows of torch's i, f, g, o layout taken in the kernels' order f, o, g."""
    return slice(h, 2 * h), slice(3 * h, 4 * h), slice(2 * h, 3 * h)


def step_weights(
    weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias: torch.Tensor, n_dynamic: int, *,
    g_scale: float = 2.0, h_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, b)`` of one step's GEMM ``[h / h_scale, x_t] @ W + b`` for the gates f, o, g.

    ``W`` is ``(H + D, 3H)``; the cell-gate rows are multiplied by ``g_scale`` (2: its
    ``tanh`` through ``2 sigmoid(2x) - 1``), the recurrent columns by ``h_scale`` (the
    hidden state carried divided by it).
    """
    hd, d = weight_hh.shape[1], n_dynamic
    rows = gate_rows(hd)
    scale = torch.ones(3 * hd, 1, dtype=weight_hh.dtype, device=weight_hh.device)
    scale[2 * hd :] = g_scale
    w_h = torch.cat([weight_hh[r] for r in rows]) * h_scale
    w_x = torch.cat([weight_ih[r, :d] for r in rows])
    weight = (torch.cat([w_h, w_x], dim=1) * scale).t().contiguous()
    return weight, torch.cat([bias[r] for r in rows]) * scale[:, 0]


class EALSTMFunction(torch.autograd.Function):
    """``(x_d, x_s, h0, c0, weight_ih, weight_hh, bias, first) -> (hidden_seq, h_n, c_n)``, batch first.

    ``weight_ih`` (4H, D+S), ``weight_hh`` (4H, H), ``bias`` (4H) in :class:`EALSTM`'s layout;
    the masked entries (input gate <- dynamic, f/g/o <- static, recurrent input gate) are
    not read and get zero gradient. ``hidden_seq`` holds the days from ``first`` on
    ``(batch, time - first, H)``: training reads no output of the warm-up days, so they
    are neither written nor given a (zero) gradient.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x_d: torch.Tensor,
        x_s: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor,
        weight_ih: torch.Tensor,
        weight_hh: torch.Tensor,
        bias: torch.Tensor,
        first: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, n_time, d = x_d.shape
        first = int(first)
        if not 0 <= first <= n_time:
            raise ValueError(f"first output day {first} is outside the {n_time} days")
        ctx.first = first
        hd = weight_hh.shape[1]
        dt, dev = x_d.dtype, x_d.device
        weight, b_scaled = step_weights(weight_ih, weight_hh, bias, d)  # (H + D, 3H), (3H,)
        gate_i = torch.sigmoid(x_s @ weight_ih[:hd, d:].t() + bias[:hd])  # (n, H)
        hx = torch.empty(n_time + 1, n, hd + d, dtype=dt, device=dev)  # hx[t] = [h_{t-1}, x_t]
        hx[:n_time, :, hd:] = x_d.transpose(0, 1)
        hx[n_time, :, hd:] = 0.0
        hx[0, :, :hd] = h0
        gates = torch.empty(n_time, n, 3 * hd, dtype=dt, device=dev)  # f, o, g after activation
        cs = torch.empty(n_time + 1, n, hd, dtype=dt, device=dev)  # c_{t-1} at t
        cs[0] = c0
        lib = _c_loops((x_d, x_s, h0, c0, weight_ih, weight_hh, bias), hd, d)
        if lib is not None:
            # the output written batch first by the loops (no copy of hx's h afterwards), and
            # tanh(c_t) not stored (the backward loops compute it again): less memory traffic
            hidden_seq = torch.empty(n, n_time - first, hd, dtype=dt, device=dev)
            lib.ealstm_forward(
                n_time, first, n, hx.data_ptr(), weight.data_ptr(), b_scaled.data_ptr(), gate_i.data_ptr(), gates.data_ptr(),
                cs.data_ptr(), hidden_seq.data_ptr(),
            )  # fmt: skip
            ctx.save_for_backward(x_s, weight_ih, weight_hh, gate_i, hx, gates, cs, cs[:0])
            return hidden_seq, hx[n_time, :, :hd].clone(), cs[n_time].clone()
        tcs = torch.empty(n_time, n, hd, dtype=dt, device=dev)  # tanh(c_t)
        two = torch.full((), 2.0, dtype=dt, device=dev)
        minus_one = torch.full((), -1.0, dtype=dt, device=dev)
        for t in range(n_time):
            gt = gates[t]
            torch.addmm(b_scaled, hx[t], weight, out=gt)
            gt.sigmoid_()
            g = gt[:, 2 * hd :]
            torch.addcmul(minus_one, g, two, out=g)  # tanh of the cell gate: 2 sigmoid(2x) - 1
            c = cs[t + 1]
            torch.mul(gt[:, :hd], cs[t], out=c)
            c.addcmul_(gate_i, g)
            tc = tcs[t]
            torch.mul(c, two, out=tc)
            tc.sigmoid_()
            torch.addcmul(minus_one, tc, two, out=tc)  # tanh(c)
            torch.mul(gt[:, hd : 2 * hd], tc, out=hx[t + 1, :, :hd])
        ctx.save_for_backward(x_s, weight_ih, weight_hh, gate_i, hx, gates, cs, tcs)
        hidden_seq = hx[1 + first :, :, :hd].transpose(0, 1).contiguous()
        return hidden_seq, hx[n_time, :, :hd].clone(), cs[n_time].clone()

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any, g_seq: torch.Tensor | None, g_hn: torch.Tensor | None, g_cn: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        x_s, weight_ih, weight_hh, gate_i, hx, gates, cs, tcs = ctx.saved_tensors
        n_time, n, three_h = gates.shape
        hd = three_h // 3
        d = hx.shape[-1] - hd
        dt, dev = gates.dtype, gates.device
        rows = gate_rows(hd)
        w_h = torch.cat([weight_hh[r] for r in rows])  # (3H, H), unscaled
        dh = g_hn.clone(memory_format=torch.contiguous_format) if g_hn is not None else torch.zeros(n, hd, dtype=dt, device=dev)
        dc = g_cn.clone(memory_format=torch.contiguous_format) if g_cn is not None else torch.zeros(n, hd, dtype=dt, device=dev)
        d_i = torch.zeros(n, hd, dtype=dt, device=dev)  # d loss / d input gate
        lib = _c_loops((gates, x_s, weight_ih, weight_hh, gate_i), hd, d)
        if lib is not None:
            w_h = w_h.contiguous()
            g_seq_c = g_seq.contiguous() if g_seq is not None else None  # (n, time, H)
            # the pre-activations' gradient of every day is kept only for the inputs' gradient
            dpre_all = torch.empty(n_time, n, three_h, dtype=dt, device=dev) if ctx.needs_input_grad[0] else None
            day = torch.empty(n, three_h, dtype=dt, device=dev)
            part = torch.empty(hd + d, three_h, dtype=dt, device=dev)
            d_w = torch.zeros(hd + d, three_h, dtype=torch.float64, device=dev)  # summed over days in double
            d_b = torch.zeros(three_h, dtype=torch.float64, device=dev)
            lib.ealstm_backward(
                n_time, ctx.first, n, None if g_seq_c is None else g_seq_c.data_ptr(), gates.data_ptr(), cs.data_ptr(),
                gate_i.data_ptr(), w_h.data_ptr(), dh.data_ptr(), dc.data_ptr(), d_i.data_ptr(),
                None if dpre_all is None else dpre_all.data_ptr(), hx.data_ptr(), day.data_ptr(), part.data_ptr(),
                d_w.data_ptr(), d_b.data_ptr(),
            )  # fmt: skip
            return _weight_grads(
                ctx, d_w.t().to(dt), d_b.to(dt), dpre_all, d_i, dh, dc, x_s, weight_ih, weight_hh, gate_i
            )  # fmt: skip
        dpre = torch.empty(n_time, n, three_h, dtype=dt, device=dev)  # d loss / d pre-activation
        g_seq_t = g_seq.transpose(0, 1) if g_seq is not None else None  # (time, n, H) view
        tmp = torch.empty(n, hd, dtype=dt, device=dev)
        one = torch.ones((), dtype=dt, device=dev)
        for t in range(n_time - 1, -1, -1):
            if g_seq_t is not None and t >= ctx.first:
                dh.add_(g_seq_t[t - ctx.first])
            gt = gates[t]
            f, o, g = gt[:, :hd], gt[:, hd : 2 * hd], gt[:, 2 * hd :]
            tc = tcs[t]
            dp = dpre[t]
            df, do, dg = dp[:, :hd], dp[:, hd : 2 * hd], dp[:, 2 * hd :]
            # output gate: do = dh tanh(c) o (1 - o)
            torch.addcmul(o, o, o, value=-1.0, out=do)
            do.mul_(tc).mul_(dh)
            # cell state: dc += dh o (1 - tanh(c)^2)
            torch.addcmul(one, tc, tc, value=-1.0, out=tmp)
            tmp.mul_(o)
            dc.addcmul_(tmp, dh)
            # input gate (static): d_i += dc g
            d_i.addcmul_(dc, g)
            # cell gate: dg = dc i (1 - g^2)
            torch.addcmul(one, g, g, value=-1.0, out=dg)
            dg.mul_(gate_i).mul_(dc)
            # forget gate: df = dc c_{t-1} f (1 - f)
            torch.addcmul(f, f, f, value=-1.0, out=df)
            df.mul_(cs[t]).mul_(dc)
            dc.mul_(f)
            torch.mm(dp, w_h, out=dh)  # to h_{t-1}
        flat = dpre.reshape(n_time * n, three_h)
        d_w = torch.mm(hx[:n_time].reshape(n_time * n, hd + d).t(), flat).t()  # (3H, H + D): one GEMM for all days
        return _weight_grads(ctx, d_w, flat.sum(0), dpre, d_i, dh, dc, x_s, weight_ih, weight_hh, gate_i)


def _c_loops(tensors: tuple[torch.Tensor, ...], hidden: int, n_dynamic: int) -> Any:
    """The compiled loops (:mod:`xsomo.model._ckernel`) where every tensor is float32 on the CPU,
    else None: the PyTorch loops then run (and raise PyTorch's error for mixed dtypes or devices)."""
    if any(t.dtype != torch.float32 or t.device.type != "cpu" for t in tensors):
        return None
    return _ckernel.kernel(hidden, n_dynamic)


def _weight_grads(
    ctx: Any, d_w: torch.Tensor, d_b: torch.Tensor, dpre: torch.Tensor | None, d_i: torch.Tensor, dh: torch.Tensor,
    dc: torch.Tensor, x_s: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, gate_i: torch.Tensor,
) -> tuple[torch.Tensor | None, ...]:
    """The gradients of :meth:`EALSTMFunction.backward` from the step GEMM's weight and bias
    gradients ``d_w`` (3H, H + D) and ``d_b`` (3H), the pre-activations' gradients ``dpre``
    (time, n, 3H; needed only for the dynamic inputs' gradient) and the input gate's ``d_i``."""
    three_h, k = d_w.shape
    hd = three_h // 3
    d = k - hd
    dt, dev = d_w.dtype, d_w.device
    rows = gate_rows(hd)
    d_ipre = d_i * gate_i * (1.0 - gate_i)
    g_wih = torch.zeros_like(weight_ih)
    g_whh = torch.zeros_like(weight_hh)
    g_bias = torch.zeros(4 * hd, dtype=dt, device=dev)
    for j, r in enumerate(rows):
        part = slice(j * hd, (j + 1) * hd)
        g_whh[r] = d_w[part, :hd]
        g_wih[r, :d] = d_w[part, hd:]
        g_bias[r] = d_b[part]
    g_wih[:hd, d:] = d_ipre.t() @ x_s
    g_bias[:hd] = d_ipre.sum(0)
    g_xd = g_xs = None
    if ctx.needs_input_grad[0]:
        assert dpre is not None
        w_x = torch.cat([weight_ih[r, :d] for r in rows])
        g_xd = (dpre @ w_x).transpose(0, 1)
    if ctx.needs_input_grad[1]:
        g_xs = d_ipre @ weight_ih[:hd, d:]
    return g_xd, g_xs, dh, dc, g_wih, g_whh, g_bias, None
