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
