"""Entity-Aware LSTM (Kratzert et al. 2019) on PyTorch's fused LSTM kernel.

The EA-LSTM's input gate reads only the static features and has no recurrent weights;
its forget, cell and output gates read only the dynamic inputs and the hidden state:

.. math::

    i &= \\sigma(W_s x_s + b_s) \\\\
    f_t, g_t, o_t &= \\sigma/\\tanh(W_d x_{d,t} + W_h h_{t-1} + b) \\\\
    c_t &= f_t \\odot c_{t-1} + i \\odot g_t, \\quad h_t = o_t \\odot \\tanh(c_t)

This is a standard LSTM over the concatenated input ``[x_d, x_s]`` whose weights are
masked: the input-gate rows of ``weight_ih`` see only the static columns, the other
rows only the dynamic columns, and the input-gate rows of ``weight_hh`` are zero.
:class:`EALSTM` stores full LSTM-shaped parameters and fixed masks, multiplies them
in every forward pass (so masked weights get exactly zero gradient) and runs the
fused oneDNN / cuDNN kernel. :meth:`EALSTM.forward_loop` is the plain time loop in
the EA-LSTM's own formulation, the reference the fused path is tested against.

References
----------
Kratzert, F. et al. (2019): Towards learning universal, regional, and local
hydrological behaviors via machine learning applied to large-sample datasets.
HESS 23, 5089-5110, doi:10.5194/hess-23-5089-2019.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# The masked weights are computed in every forward pass, so they never sit in the one flat
# buffer cuDNN prefers; it copies them into one (a few hundred kB) at each call and warns.
# Measured on an H200: a training step as fast as nn.LSTM's on flat weights (0.94-0.99x).
warnings.filterwarnings(
    "ignore", message="RNN module weights are not part of single contiguous chunk", category=UserWarning,
    module=__name__,
)  # fmt: skip

State = tuple[torch.Tensor, torch.Tensor]

__all__ = ["EALSTM", "State"]


class EALSTM(nn.Module):
    """Entity-Aware LSTM with a dense head.

    Parameters
    ----------
    n_dynamic
        Number of dynamic (time-varying) inputs.
    n_static
        Number of static inputs.
    hidden
        Hidden units (128 in SoMo.ml).
    dropout
        Dropout on the hidden state before the dense head (0.4 in SoMo.ml).
    initial_forget_bias
        Initial value of the forget-gate bias.

    Notes
    -----
    Parameter layout follows ``torch.nn.LSTM`` (gate order i, f, g, o):
    ``weight_ih`` (4H, D+S) with the D dynamic columns first, ``weight_hh`` (4H, H),
    ``bias`` (4H). The effective weights are ``weight * mask``.
    """

    mask_ih: torch.Tensor
    mask_hh: torch.Tensor
    _zero_bias: torch.Tensor

    def __init__(
        self,
        n_dynamic: int,
        n_static: int,
        hidden: int = 128,
        *,
        dropout: float = 0.4,
        initial_forget_bias: float = 3.0,
        n_outputs: int = 1,
    ) -> None:
        super().__init__()
        if n_dynamic < 1 or n_static < 1:
            raise ValueError(f"need at least one dynamic and one static input, got {n_dynamic}, {n_static}")
        self.n_dynamic = int(n_dynamic)
        self.n_static = int(n_static)
        self.hidden = int(hidden)
        h, d, s = self.hidden, self.n_dynamic, self.n_static
        self.weight_ih = nn.Parameter(torch.empty(4 * h, d + s))
        self.weight_hh = nn.Parameter(torch.empty(4 * h, h))
        self.bias = nn.Parameter(torch.empty(4 * h))
        mask_ih = torch.zeros(4 * h, d + s)
        mask_ih[:h, d:] = 1.0  # input gate <- static only
        mask_ih[h:, :d] = 1.0  # f, g, o <- dynamic only
        mask_hh = torch.ones(4 * h, h)
        mask_hh[:h] = 0.0  # input gate has no recurrent weights
        self.register_buffer("mask_ih", mask_ih, persistent=False)
        self.register_buffer("mask_hh", mask_hh, persistent=False)
        self.register_buffer("_zero_bias", torch.zeros(4 * h), persistent=False)
        self.dropout = nn.Dropout(p=float(dropout))
        self.head = nn.Linear(h, int(n_outputs))
        self.initial_forget_bias = float(initial_forget_bias)
        self.reset_parameters()

    # ------------------------------------------------------------------ weights
    def reset_parameters(self) -> None:
        h = self.hidden
        nn.init.xavier_uniform_(self.weight_ih)
        with torch.no_grad():
            w = torch.empty(h, 4 * h)
            nn.init.orthogonal_(w)
            self.weight_hh.copy_(w.t())
            self.bias.zero_()
            self.bias[h : 2 * h] = self.initial_forget_bias
        self.head.reset_parameters()

    def effective_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight_ih * mask_ih, weight_hh * mask_hh)``."""
        return self.weight_ih * self.mask_ih, self.weight_hh * self.mask_hh

    # ------------------------------------------------------------------ forward
    def _concat(self, x_d: torch.Tensor, x_s: torch.Tensor) -> torch.Tensor:
        if x_d.dim() != 3 or x_d.shape[-1] != self.n_dynamic:
            raise ValueError(f"x_d must be (batch, time, {self.n_dynamic}), got {tuple(x_d.shape)}")
        if x_s.dim() != 2 or x_s.shape[-1] != self.n_static or x_s.shape[0] != x_d.shape[0]:
            raise ValueError(f"x_s must be ({x_d.shape[0]}, {self.n_static}), got {tuple(x_s.shape)}")
        return torch.cat([x_d, x_s.unsqueeze(1).expand(-1, x_d.shape[1], -1)], dim=-1)

    def _initial_state(self, x_d: torch.Tensor, state: State | None) -> State:
        if state is None:
            z = x_d.new_zeros(x_d.shape[0], self.hidden)
            return z, z
        return state

    def lstm(self, x_d: torch.Tensor, x_s: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Hidden states of every step ``(batch, time, hidden)`` and the final state."""
        x = self._concat(x_d, x_s)
        h0, c0 = self._initial_state(x_d, state)
        w_ih, w_hh = self.effective_weights()
        out, h_n, c_n = torch._VF.lstm(
            x,
            (h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()),
            [w_ih, w_hh, self.bias, self._zero_bias],
            True,  # has_biases
            1,  # num_layers
            0.0,  # dropout between layers (one layer: none)
            self.training,
            False,  # bidirectional
            True,  # batch_first
        )
        return out, (h_n[0], c_n[0])

    def forward(
        self, x_d: torch.Tensor, x_s: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Run the model.

        Parameters
        ----------
        x_d
            Dynamic inputs, ``(batch, time, n_dynamic)``.
        x_s
            Static inputs, ``(batch, n_static)``.
        state
            Optional initial ``(h, c)``, each ``(batch, hidden)``.

        Returns
        -------
        y, (h, c)
            Outputs of every step ``(batch, time, n_outputs)`` and the final state.
        """
        out, state_n = self.lstm(x_d, x_s, state)
        return self.head(self.dropout(out)), state_n

    def forward_loop(
        self, x_d: torch.Tensor, x_s: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Reference implementation: a Python loop in the EA-LSTM formulation."""
        self._concat(x_d, x_s)  # validates shapes
        h_dim, d = self.hidden, self.n_dynamic
        h, c = self._initial_state(x_d, state)
        w_s = self.weight_ih[:h_dim, d:]
        b_s = self.bias[:h_dim]
        w_d = self.weight_ih[h_dim:, :d]
        w_h = self.weight_hh[h_dim:]
        b = self.bias[h_dim:]
        i = torch.sigmoid(x_s @ w_s.T + b_s)  # once per entity
        xw = x_d @ w_d.T + b  # all days in one product
        outs = []
        for t in range(x_d.shape[1]):
            gates = xw[:, t] + h @ w_h.T
            f, g, o = gates.chunk(3, dim=1)
            c = torch.sigmoid(f) * c + i * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        out = torch.stack(outs, dim=1)
        return self.head(self.dropout(out)), (h, c)
