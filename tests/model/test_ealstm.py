"""EA-LSTM on the fused kernel vs its loop reference; masks; state hand-over."""

from __future__ import annotations

import torch

from xsomo.model import EALSTM


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
    """Changing the dynamic inputs does not change the input gate (loop formulation)."""
    net = _net()
    x_s = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    x_d = torch.randn(3, 12, 3, dtype=torch.float64, requires_grad=True)
    w_ih, _ = net.effective_weights()
    i = torch.sigmoid(torch.cat([x_d[:, 0], x_s], -1) @ w_ih[: net.hidden].T + net.bias[: net.hidden])
    (gd,) = torch.autograd.grad(i.sum(), x_d, allow_unused=True, materialize_grads=True)
    assert (gd == 0).all()


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
