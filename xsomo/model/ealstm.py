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

On the CPU two kernels of its own use the structure the fused LSTM ignores (three gates
with recurrent weights, not four; ``tanh`` through the cheaper sigmoid):
:meth:`EALSTM.rollout` for inference (~2.5x the fused kernel) and
:class:`~xsomo.model._ealstm_cpu.EALSTMFunction` for training (forward and backward through
time by hand) -- its loops through time in C (:mod:`xsomo.model._ckernel`, compiled on first
use) for float32 on one thread, else in PyTorch operations for large enough batches
(:data:`CPU_TRAINING_MIN`). Both are tested against the loop reference, gradients included.

References
----------
Kratzert, F. et al. (2019): Towards learning universal, regional, and local
hydrological behaviors via machine learning applied to large-sample datasets.
HESS 23, 5089-5110, doi:10.5194/hess-23-5089-2019.
"""

from __future__ import annotations

import concurrent.futures
import warnings

import torch
from torch import nn

from xsomo.model import _ckernel, _ealstm_gpu
from xsomo.model._ealstm_cpu import EALSTMFunction, _c_loops, step_weights

# The masked weights are computed in every forward pass, so they never sit in the one flat
# buffer cuDNN prefers; it copies them into one (a few hundred kB) at each call and warns.
# Measured on an H200: a training step as fast as nn.LSTM's on flat weights (0.94-0.99x).
warnings.filterwarnings(
    "ignore", message="RNN module weights are not part of single contiguous chunk", category=UserWarning,
    module=__name__,
)  # fmt: skip

State = tuple[torch.Tensor, torch.Tensor]

__all__ = ["CPU_TRAINING_MIN", "EALSTM", "ROLLOUT_BLOCK", "State"]

#: Where the C loops are missing (no compiler, ``XSOMO_C_KERNEL=0``, float64): sequences x days x
#: hidden units of a call from which :meth:`EALSTM.lstm` trains on the CPU
#: with :class:`~xsomo.model._ealstm_cpu.EALSTMFunction` instead of oneDNN's fused LSTM (about the
#: size of the fused kernel's workspace: it slows down once that leaves the cache, while ours
#: pays Python's per-operation cost per day). Forward + backward, one thread, glibc heap kept
#: (:func:`xsomo.model.training.heap_allocations`, as training runs), Xeon with AVX-512 (CPU s,
#: fused / ours), 730 days: 256 x 32 units 0.57, 512 x 32 0.73, 1024 x 32 1.97, 128 x 64 0.64,
#: 256 x 64 1.03, 512 x 64 0.92, 1024 x 64 1.13, 128 x 128 0.89, 256 x 128 1.55, 512 x 128 2.03;
#: 180 days: 1024 x 32 0.91, 4096 x 32 1.32, 2048 x 64 1.82, 256 x 128 1.1, 1024 x 128 1.53.
#: (Sequences x hidden >= 8192 before: 256 x 32 units took 1.75x the fused kernel's time.)
CPU_TRAINING_MIN = 1 << 24

#: Cells x hidden units per block in :meth:`EALSTM.rollout`: 512 cells at 128 units, 2048 at
#: 32 (fewer, larger operations where they are small). One thread, 2048 cells x 730 days, CPU s
#: by cells per block: 32 units 0.97 / 0.68 / 0.65 / 0.54 at 256 / 512 / 1024 / 2048 (the fused
#: kernel 1.68); 64 units 1.83 / 1.56 / 1.37 / 1.45 (fused 3.28).
ROLLOUT_BLOCK = 65536

#: Bytes of the ``[h, x_t, 1]`` buffer of a chunk of days in :meth:`EALSTM.rollout` on the CPU
#: (per block of cells; 15 days at 512 cells x 128 units). 1024 cells x 730 days, 128 units,
#: Xeon with AVX-512, GFLOP per CPU-s (two runs, noisy): one day at a time 110 / 99 (two
#: threads), 1 MB 117-122 / 102-112, 4 MB 122-128 / 117-119, 16 MB 110-115.
ROLLOUT_CHUNK_BYTES = 1 << 22


def cpu_tanh_is_cheap() -> bool:
    """Whether this CPU evaluates ``tanh`` at most as dear as a sigmoid (PyTorch's AVX-512 kernels).

    Per float32 element, one thread (512 x 128): AMD EPYC with AVX2, ``tanh`` 3.4 ns against
    ``sigmoid`` 0.93 ns; Intel Xeon (Sapphire Rapids class) with AVX-512, 0.26 ns against
    0.34 ns. Decided by the vector instruction set PyTorch dispatches to
    (``torch.backends.cpu.get_cpu_capability``), so the same machine always takes the same
    arithmetic (a timing would make two runs differ in the last bits).
    """
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def _cell_update(
    gates: torch.Tensor, fo: torch.Tensor, f: torch.Tensor, o: torch.Tensor, g: torch.Tensor, c: torch.Tensor,
    tc: torch.Tensor, i: tuple[torch.Tensor, torch.Tensor, torch.Tensor], h_out: torch.Tensor, exact_tanh: bool,
) -> None:
    """One step's update in place: the gates' activations, ``c`` and ``h`` (:meth:`EALSTM.rollout`).

    ``gates`` holds the pre-activations of f, o, g (views ``fo``, ``f``, ``o``, ``g``); ``i`` is the
    input gate, 2x and 4x it. Exact: ``c = f c + i tanh(g)``, ``h = o tanh(c)``. Otherwise the
    sigmoid form: g's pre-activation is 2x, ``c`` is carried as 2c and ``h`` written as h / 2.
    """
    if exact_tanh:
        fo.sigmoid_()
        g.tanh_()
        c.mul_(f).addcmul_(i[0], g)
        torch.tanh(c, out=tc)
    else:
        gates.sigmoid_()
        c.mul_(f).addcmul_(i[2], g).sub_(i[1])  # 2c = f 2c + 2 i (2 sigmoid(2g) - 1)
        torch.sigmoid(c, out=tc)
        tc.sub_(0.5)  # tanh(c) / 2
    torch.mul(o, tc, out=h_out)


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` whose keep mask is drawn as 15-bit integers on the CPU.

    ``torch.bernoulli`` draws one double per element; comparing 15-bit integers (four per
    64-bit draw) with ``round(p * 32768)`` is several times cheaper (on a demo-size training
    step, 64 windows x 365 days x 32 units, one thread: forward + backward 13.8 ms with
    ``nn.Dropout``, 5.3 ms with one ``randint`` per element, less with four). ``p``
    is thereby rounded to a multiple of 1/32768 (0.4 -> 0.399994); kept values are
    scaled by the inverse of the rounded keep probability, so expectations stay exact.
    On other devices, :class:`torch.nn.Dropout` itself.

    For float32, the keep factors come from the compiled training loops' library
    (:mod:`xsomo.model._ckernel`, ``kernel`` = its ``(hidden, n_dynamic)``, set by
    :class:`EALSTM`) in one pass instead of four PyTorch operations: the same mask and
    factors, bit for bit (tested).
    """

    #: ``(hidden, n_dynamic)`` of the compiled library that computes the keep factors (None: PyTorch)
    kernel: tuple[int, int] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        drop = round(self.p * 32768)
        if drop >= 32768:
            return x * 0.0
        # 4 masks per 63-bit draw of torch's generator (15 bits each: the top bit of every
        # 16-bit lane cleared; the top lane's is 0 already): 3x cheaper than randint(int16)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_().view(torch.int16)[:n]
        scale = 32768 / (32768 - drop)
        lib = _ckernel.kernel(*self.kernel) if self.kernel is not None and x.dtype == torch.float32 else None
        if lib is not None:
            factors = torch.empty(x.shape, dtype=x.dtype)
            lib.dropout_keep(n, bits.data_ptr(), drop, scale, factors.data_ptr())
            return x * factors
        keep = bits.bitwise_and_(0x7FFF).view(x.shape) >= drop
        return x * keep.to(x.dtype).mul_(scale)


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
        self.dropout = Dropout(p=float(dropout))
        self.dropout.kernel = (h, d)
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

    def lstm(
        self, x_d: torch.Tensor, x_s: torch.Tensor, state: State | None = None, *, first: int = 0
    ) -> tuple[torch.Tensor, State]:
        """Hidden states ``(batch, time - first, hidden)`` of the steps from ``first`` on, and the final state.

        Training reads no output of a window's warm-up days: with ``first`` the CPU kernel
        neither writes them nor runs their (zero) gradient back.
        """
        if not 0 <= first <= x_d.shape[1]:
            raise ValueError(f"first output day {first} is outside the {x_d.shape[1]} days of x_d")
        h0, c0 = self._initial_state(x_d, state)
        if (
            x_d.device.type == "cpu"
            and torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")
            and torch.get_num_threads() == 1  # many small operations: OpenMP barriers stall under load
            and (
                x_d.shape[0] * x_d.shape[1] * self.hidden >= CPU_TRAINING_MIN
                or _c_loops((x_d, x_s, self.weight_ih), self.hidden, self.n_dynamic) is not None
            )
        ):
            # training on the CPU: three gates and sigmoids, backward by hand
            self._concat(x_d[:, :1], x_s)  # validates shapes
            out, h_n, c_n = EALSTMFunction.apply(x_d, x_s, h0, c0, self.weight_ih, self.weight_hh, self.bias, first)
            return out, (h_n, c_n)
        x = self._concat(x_d, x_s)
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
        return out[:, first:], (h_n[0], c_n[0])

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

    @torch.no_grad()
    def rollout(
        self,
        x_d: torch.Tensor,
        x_s: torch.Tensor,
        state: State | None = None,
        *,
        outputs: bool = True,
        exact_tanh: bool | None = None,
        block: int | None = None,
    ) -> tuple[torch.Tensor | None, State]:
        """Inference: the same numbers as :meth:`forward` in eval mode, ~2.5x faster on the CPU.

        The fused LSTM kernel computes all four gates with recurrent weights, though the
        EA-LSTM's input gate has none, and evaluates ``tanh`` (4x dearer than a sigmoid on
        a CPU). This loop computes the input gate once per cell, and per step one GEMM
        ``[h, x_t] @ W`` for the forget, output and cell gates (input projection included)
        and one in-place sigmoid over them, using ``tanh(x) = 2 sigmoid(2x) - 1``: the
        cell-gate rows are scaled by 2, the cell state is carried as ``2c`` and the hidden
        state as ``h / 2`` (the factors folded into the recurrent and head weights; powers
        of two, so no rounding is added). Cells go in blocks of ``block`` so a step's
        buffers stay in cache (:data:`ROLLOUT_BLOCK`). Agrees with :meth:`forward_loop` to float rounding (tested).

        The sigmoid form rounds to ~1e-7 *absolute* where ``tanh`` rounds to ~1e-7 of its
        value; a network that forgets its state within days does not notice, one that
        carries it for a year may (the published SoMo.ml v1 model: up to 2e-4 m3 m-3 on
        its ill-conditioned days in float32, against 1e-4 with ``tanh``). ``exact_tanh``
        evaluates ``tanh`` (~1.3x the time with AVX2; windowed prediction uses it). Where
        PyTorch's ``tanh`` is no dearer than its sigmoid (AVX-512, :func:`cpu_tanh_is_cheap`)
        the exact form is the default: fewer operations per step, measured 5-10 % faster
        (Xeon, 1024 cells x 730 days, 128 units).

        On a GPU all cells go in one block and ``tanh`` is always exact: each step is then
        one GEMM and the element-wise update, one Triton kernel in float32 where Triton
        imports (:mod:`xsomo.model._ealstm_gpu`), six PyTorch kernels otherwise; 3.8-4.5x
        cuDNN's four-gate LSTM on an H200 (docs/prediction.md, "On a GPU").

        Parameters
        ----------
        x_d, x_s, state
            As in :meth:`forward`.
        outputs
            Compute the head's output every day (else only the final state: windows).
        exact_tanh
            ``tanh`` itself for the cell gate and the cell state (see above); ``None``
            (default): on a GPU and where :func:`cpu_tanh_is_cheap`, the sigmoid form otherwise.
        block
            Cells per block (default :data:`ROLLOUT_BLOCK` / hidden units, at least 64).

        Returns
        -------
        y, (h, c)
            Outputs ``(batch, time, n_outputs)`` (``None`` without ``outputs``) and the
            final state.
        """
        self._concat(x_d[:, :1], x_s)  # validates shapes
        h_dim, d = self.hidden, self.n_dynamic
        n, n_time = x_d.shape[0], x_d.shape[1]
        dt = x_d.dtype
        gpu = x_d.device.type != "cpu"
        # on a GPU every element-wise op is memory-bound: tanh costs what a sigmoid does, and
        # the exact form needs one op fewer per step
        if exact_tanh is None:
            exact_tanh = gpu or cpu_tanh_is_cheap()
        exact_tanh = exact_tanh or gpu
        w_ih, b = self.weight_ih, self.bias
        h_in = 1.0 if exact_tanh else 2.0  # the hidden state is carried as h / h_in
        weight, bias = step_weights(  # (H + D, 3H) for f, o, g; (3H,)
            w_ih, self.weight_hh, b, d, g_scale=1.0 if exact_tanh else 2.0, h_scale=h_in
        )
        gate_i = torch.sigmoid(x_s @ w_ih[:h_dim, d:].t() + b[:h_dim])  # (batch, H), once
        head_w = (self.head.weight.t() * h_in).contiguous()  # (H, n_outputs), reads h / h_in
        n_out = head_w.shape[1]
        y = torch.empty(n, n_time, n_out, dtype=dt, device=x_d.device) if outputs else None
        h_n = torch.empty(n, h_dim, dtype=dt, device=x_d.device)
        c_n = torch.empty(n, h_dim, dtype=dt, device=x_d.device)

        @torch.no_grad()  # (grad mode is per thread)
        def run_block(b0: int, b1: int) -> None:
            if not gpu:
                torch.set_num_threads(1)  # this thread's OpenMP setting
            m = b1 - b0
            i1 = gate_i[b0:b1]
            i2 = 2.0 * i1
            i4 = 2.0 * i2
            hx = torch.empty(m, h_dim + d, dtype=dt, device=x_d.device)  # [h / h_in, x_t]
            c2 = torch.empty(m, h_dim, dtype=dt, device=x_d.device)  # 2 c (c with exact_tanh)
            if state is None:
                hx[:, :h_dim] = 0.0
                c2.zero_()
            else:
                torch.mul(state[0][b0:b1], 1.0 / h_in, out=hx[:, :h_dim])
                torch.mul(state[1][b0:b1], h_in, out=c2)
            if gpu:
                x_t = x_d[b0:b1].transpose(0, 1).contiguous()  # (time, m, D): each day contiguous
                gates = torch.empty(m, 3 * h_dim, dtype=dt, device=x_d.device)
                sig_c = torch.empty(m, h_dim, dtype=dt, device=x_d.device)
                ys = torch.empty(n_time, m, n_out, dtype=dt, device=x_d.device) if outputs else None
                f, o, g = gates[:, :h_dim], gates[:, h_dim : 2 * h_dim], gates[:, 2 * h_dim :]
                fo = gates[:, : 2 * h_dim]
                h_half = hx[:, :h_dim]
                fused = _ealstm_gpu.available(x_d, n_out)  # one Triton kernel per step
                w_head, i1_c = head_w[:, 0].contiguous(), i1.contiguous()
                for t in range(n_time):
                    hx[:, h_dim:].copy_(x_t[t])
                    torch.addmm(bias, hx, weight, out=gates)
                    if fused:
                        _ealstm_gpu.cell_step(gates, c2, i1_c, hx, w_head, None if ys is None else ys[t, :, 0])
                        continue
                    _cell_update(gates, fo, f, o, g, c2, sig_c, (i1, i2, i4), h_half, exact_tanh)
                    if ys is not None:
                        torch.mm(h_half, head_w, out=ys[t])
                if y is not None and ys is not None:
                    y[b0:b1] = ys.transpose(0, 1) + self.head.bias
                torch.mul(h_half, h_in, out=h_n[b0:b1])
                torch.mul(c2, 1.0 / h_in, out=c_n[b0:b1])
                return
            # The CPU: units along rows, cells along columns (every gate a contiguous block, so
            # each element-wise operation runs on contiguous memory), days in chunks:
            # ``buf[k] = [h_{k-1} / h_in; x_k; 1]`` (H + D + 1, m), the chunk's inputs copied in
            # once, the bias a column of the GEMM's weight (no broadcast pass) and the head one
            # batched GEMM per chunk: a step is one GEMM and the update.
            k_in = h_dim + d + 1
            w_t = torch.cat([weight, bias[None]]).t().contiguous()  # (3H, H + D + 1)
            chunk = max(1, min(n_time, ROLLOUT_CHUNK_BYTES // (m * k_in * hx.element_size())))
            buf = torch.empty(chunk + 1, k_in, m, dtype=dt)
            buf[:, -1] = 1.0
            buf[0, :h_dim] = hx[:, :h_dim].t()
            c_t = c2.t().contiguous()
            i_t = tuple(v.t().contiguous() for v in (i1, i2, i4))
            gates = torch.empty(3 * h_dim, m, dtype=dt)
            sig_c = torch.empty(h_dim, m, dtype=dt)
            f, o, g = gates[:h_dim], gates[h_dim : 2 * h_dim], gates[2 * h_dim :]
            head_t = head_w.t().contiguous()  # (n_out, H)
            ys = torch.empty(n_time, n_out, m, dtype=dt) if outputs else None
            for t0 in range(0, n_time, chunk):
                k1 = min(chunk, n_time - t0)
                buf[:k1, h_dim:-1] = x_d[b0:b1, t0 : t0 + k1].permute(1, 2, 0)
                for k in range(k1):
                    torch.mm(w_t, buf[k], out=gates)
                    _cell_update(gates, gates[: 2 * h_dim], f, o, g, c_t, sig_c, i_t, buf[k + 1, :h_dim], exact_tanh)
                if ys is not None:
                    torch.matmul(head_t, buf[1 : k1 + 1, :h_dim], out=ys[t0 : t0 + k1])
                buf[0, :h_dim] = buf[k1, :h_dim]
            if y is not None and ys is not None:
                y[b0:b1] = ys.permute(2, 0, 1) + self.head.bias
            torch.mul(buf[0, :h_dim].t(), h_in, out=h_n[b0:b1])
            torch.mul(c_t.t(), 1.0 / h_in, out=c_n[b0:b1])

        # One torch thread per block, blocks in parallel threads: every step is a dozen small
        # operations, and an OpenMP barrier in each stalls for a time slice whenever another
        # process holds a core (measured: 30x slower under load with two OpenMP threads).
        if gpu:  # one block: a wide GEMM per step is what keeps a GPU busy
            run_block(0, n)
            return y, (h_n, c_n)
        threads = torch.get_num_threads()
        block = block or max(64, ROLLOUT_BLOCK // h_dim)
        block = max(1, min(block, -(-n // threads)))  # every thread gets work
        blocks = [(b0, min(b0 + block, n)) for b0 in range(0, n, block)]
        try:
            if threads > 1 and len(blocks) > 1:
                with concurrent.futures.ThreadPoolExecutor(min(threads, len(blocks))) as pool:
                    for fut in [pool.submit(run_block, *b) for b in blocks]:
                        fut.result()
            else:
                for b in blocks:
                    run_block(*b)
        finally:
            torch.set_num_threads(threads)
        return y, (h_n, c_n)

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
