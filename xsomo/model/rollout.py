"""Numerical roll-out of a trained EA-LSTM cascade on one block of cells (numpy in, numpy out).

This is the kernel under :func:`xsomo.prediction.inference.predict`: no xarray, no dask. It takes
RAW inputs ordered as ``model.config.dynamic`` / ``model.config.static``, runs all
ensemble members and the layer cascade (layer 2 gets the simulated layer-1 soil moisture
of the same member, layer 3 gets layers 1 and 2, normalised with the target statistics
exactly as in training) and returns soil moisture in m3 m-3.

Modes
-----
``continuous``
    One stateful roll-out along the whole time axis from a zero state, chunked in time
    (the state ``(h, c)`` is carried across chunks) and in cells, so memory is bounded
    by ``batch_size × time_chunk``. Hundreds of times cheaper than windows.
``windowed``
    Each day ``t`` from its own window of ``lookback`` days (``t-lookback+1 … t``) with a
    zero initial state, sequence-to-one, as Kratzert et al. (2019) and SoMo.ml v1 did.
    Windows are gathered in batches and run as one batch each (no loop per window).

Kernels: both modes run :meth:`EALSTM.rollout <xsomo.model.ealstm.EALSTM.rollout>` (one GEMM
over three gates per step: ~2.5x PyTorch's fused LSTM on the CPU; on a GPU all cells of a
block at once with a Triton cell update). On a GPU the continuous cascade also keeps the
z-scored forcing, the upper layers' inputs, the states and the de-normalisation on the
device (:func:`_cascade_on_device`).
``auto``
    A ladder (:func:`choose_rollout`): runs :func:`convergence_distance` on the block;
    if every member of every layer forgets its initial state within ``spinup`` days
    (outputs from very different initial states closer than ``tolerance`` m3 m-3), runs
    ``continuous``. Otherwise it tries the continuous roll-out with a longer spin-up,
    2x and then 3x the lookback (:data:`LADDER`), on forcing before the block (the
    ``history`` argument) or, where there is too little, on the block's first 365 days
    cycled (:func:`spinup_forcing`); only when no rung passes it runs ``windowed``. It
    says which (``return_info=True`` and a log line).

Validity: a day gets a value when ``spinup`` days of forcing end on it (indices
``< spinup - 1`` are NaN; in ``windowed`` mode ``spinup`` is the lookback). Days whose
forcing is NaN give NaN (a window with a NaN day gives NaN; the continuous roll-out
carries its state through such a day with the inputs at their mean). Cells with NaN
statics give NaN throughout.

Precision: ``dtype="float32"`` (default) z-scores the raw inputs in float64 and runs the
networks in float32; ``dtype="float64"`` keeps the inputs float64 through the z-score and
runs a float64 copy of every network (the model is not changed). float64 costs ~2-3x the
time on a CPU; it is needed where a window is ill-conditioned (float32 rounding of the
inputs alone moves the output by more than 1e-5 m3 m-3; one of the 36 525 published
SoMo.ml v1 cell-days, see docs/somoml_v1.md).

In ``windowed`` mode the cascade inputs of deeper layers are the windowed upper-layer
outputs; for the first ``lookback - 1`` days, which have no full window, they come
from the partial window starting on day 0.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import numpy as np
import torch

from xsomo.exceptions import XsomoValueError
from xsomo.model.config import apply_transform
from xsomo.runtime import resolve_device as _resolve_device

if TYPE_CHECKING:
    from xsomo.model.ealstm import EALSTM
    from xsomo.model.trained import TrainedModel

__all__ = [
    "CYCLE_DAYS",
    "DEFAULT_TOLERANCE",
    "DTYPES",
    "LADDER",
    "RolloutInfo",
    "check_dtype",
    "choose_rollout",
    "convergence_distance",
    "ladder_spinups",
    "predict_block",
    "spinup_forcing",
    "torch_device",
]

logger = logging.getLogger(__name__)

#: Largest output difference (m3 m-3) between roll-outs from different initial states
#: after the spin-up for which ``auto`` trusts the continuous roll-out.
DEFAULT_TOLERANCE = 1e-3
#: Days beyond the spin-up over which the convergence distance is taken (max).
CHECK_EXTRA_DAYS = 30
#: Zero-state roll-outs started later in the block that the convergence check compares with
#: the roll-out from its first day (:func:`convergence_distance`'s ``windows``), spread over
#: up to :data:`CHECK_WINDOW_SPAN` days: windows in other seasons.
CHECK_WINDOWS = 4
CHECK_WINDOW_SPAN = 365
#: Longer spin-ups ``auto`` tries, in lookbacks, before it falls back to windows.
LADDER = (2, 3)
#: Days cycled as spin-up forcing where the drivers hold too little history (a year keeps
#: the seasonal phase: the cycled days end the day before the block's first day of a year).
CYCLE_DAYS = 365

Mode = Literal["continuous", "windowed", "auto"]
Dtype = Literal["float32", "float64"]
#: Floating-point precisions the roll-out runs in.
DTYPES = ("float32", "float64")


@dataclass
class RolloutInfo:
    """What :func:`predict_block` did.

    Attributes
    ----------
    requested, mode
        The mode asked for and the mode that ran (``continuous`` or ``windowed``).
    spinup
        Days of history a valid output needs.
    distance
        Per layer, the largest convergence distance (m3 m-3) over members and cells,
        when the check ran (``auto``), else ``None``.
    tolerance
        Tolerance of the check.
    nan_forcing_days
        Cell-days whose dynamic forcing has a NaN.
    dtype
        Precision the networks ran in (``"float32"`` or ``"float64"``).
    """

    requested: str
    mode: str
    spinup: int
    distance: dict[int, float] | None = None
    tolerance: float = DEFAULT_TOLERANCE
    nan_forcing_days: int = 0
    dtype: str = "float32"
    notes: list[str] = field(default_factory=list)
    #: The spin-up (days) of the continuous roll-out that ran; ``None`` when windowed.
    rollout_spinup: int | None = None
    #: Per rung of ``auto``'s ladder: spin-up days -> largest distance (m3 m-3).
    ladder: dict[int, float] = field(default_factory=dict)
    #: With ``return_state=True``: the LSTM state after the last day,
    #: ``(layers, members, 2, cells, hidden)`` (``h`` then ``c``).
    state: np.ndarray | None = None


def torch_device(device: str | torch.device | None) -> torch.device:
    """A :class:`torch.device` (``"auto"`` resolved by :func:`xsomo.runtime.resolve_device`)."""
    return torch.device(_resolve_device(device))


def check_dtype(dtype: object) -> Dtype:
    """``"float32"`` or ``"float64"`` from a name, numpy or torch dtype; else :class:`XsomoValueError`."""
    if isinstance(dtype, torch.dtype):
        name = {torch.float32: "float32", torch.float64: "float64"}.get(dtype)
    else:
        try:
            name = np.dtype(dtype).name if dtype is not None else None  # type: ignore[call-overload]
        except TypeError:
            name = None
    if name not in DTYPES:
        raise XsomoValueError(
            f"dtype={dtype!r}: the roll-out runs in 'float32' (default, fast) or 'float64' "
            "(exact to ~1e-7 m3 m-3 where float32 rounding matters, ~2-3x slower on a CPU)"
        )
    return cast("Dtype", name)


def _net_dtype(net: torch.nn.Module) -> np.dtype:
    """numpy dtype of the network's parameters."""
    return np.dtype(str(next(net.parameters()).dtype).removeprefix("torch."))


def _networks(model: TrainedModel, layer: int, device: torch.device, dtype: str) -> list[EALSTM]:
    """The members of ``layer``; in float64 deep copies converted with ``.double()`` (the
    model's own cached float32 networks are never changed)."""
    nets = model.networks(layer, device=device)
    if dtype == "float64":
        nets = [copy.deepcopy(net).double() for net in nets]
    return nets


# ---------------------------------------------------------------------------- kernels
_TF32_LOCK = threading.Lock()
_TF32_USERS = 0
_TF32_SAVED: tuple[bool, bool] = (False, False)


@contextlib.contextmanager
def full_float32(device: torch.device) -> Iterator[None]:
    """Full-precision float32 on CUDA inside the block (TF32 tensor cores off).

    PyTorch lets cuDNN's LSTM use TF32 (a 10-bit mantissa) by default on Ampere and
    newer GPUs, which moves soil moisture by far more than the 1e-5 m3 m-3 that
    float32 inference reproduces on the CPU. The flags are process-wide, so concurrent
    blocks (dask threads) share one reference count and the caller's settings come
    back when the last block leaves. No-op on the CPU.
    """
    global _TF32_USERS, _TF32_SAVED
    if device.type != "cuda":
        yield
        return
    with _TF32_LOCK:
        if _TF32_USERS == 0:
            _TF32_SAVED = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        _TF32_USERS += 1
    try:
        yield
    finally:
        with _TF32_LOCK:
            _TF32_USERS -= 1
            if _TF32_USERS == 0:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = _TF32_SAVED


#: GPU memory one sequence takes in cuDNN's LSTM forward, in bytes per (step, hidden unit,
#: byte of the dtype): on an H200 (cuDNN 9.19) a batch of 32 768 windows of 365 steps x 128
#: units in float32 asked for 120.5 GiB at once, 21 such bytes; 24 leaves a margin.
GPU_BYTES_PER_STEP_UNIT = 24
#: Share of the GPU's free memory one kernel call may take.
GPU_MEMORY_SHARE = 0.5


def _default_batch(
    device: torch.device,
    windowed: bool,
    *,
    steps: int = 365,
    hidden: int = 128,
    itemsize: int = 4,
    n_in: int | None = None,
) -> int:
    """Sequences per kernel call: fixed on the CPU; on a GPU as many as fit in half its free memory
    (at least 64, at most 65 536; cuDNN's LSTM at most 8192 windows).

    With ``n_in`` (the inputs per day) the memory is that of :meth:`EALSTM.rollout`
    (inputs, their day-major copy and the outputs per step, a dozen state-sized buffers),
    else that of cuDNN's LSTM (:data:`GPU_BYTES_PER_STEP_UNIT`)."""
    if device.type != "cuda":
        return 512 if windowed else 4096
    free, _total = torch.cuda.mem_get_info(device)
    if n_in is None:
        cap = 8192 if windowed else 65536
        per_sequence = GPU_BYTES_PER_STEP_UNIT * max(1, steps) * max(1, hidden) * itemsize
    else:
        cap = 65536
        per_sequence = itemsize * (max(1, steps) * (2 * n_in + 2) + 12 * max(1, hidden))
    return int(max(64, min(cap, GPU_MEMORY_SHARE * free // per_sequence)))


def _gpu_time_chunk(device: torch.device, time_chunk: int, cells: int, hidden: int, itemsize: int) -> int:
    """Days per kernel call on a GPU: short enough that ``cells`` sequences fit in one call
    (a wide batch is what keeps the GPU busy; the state carries over between chunks), at
    least 32 days and at most ``time_chunk``."""
    free, _total = torch.cuda.mem_get_info(device)
    fit = int(GPU_MEMORY_SHARE * free // (GPU_BYTES_PER_STEP_UNIT * max(1, hidden) * itemsize * max(1, cells)))
    return max(32, min(time_chunk, fit))


@torch.no_grad()
def run_continuous(
    net: EALSTM,
    x_d: np.ndarray,
    x_s: np.ndarray,
    *,
    state: tuple[np.ndarray, np.ndarray] | None = None,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
    time_chunk: int = 2048,
    return_state: bool = False,
) -> np.ndarray | tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Normalised outputs ``(cells, time)`` of one network rolled out along the time axis.

    ``x_d`` ``(cells, time, n_in)`` and ``x_s`` ``(cells, n_static)`` are normalised and
    finite; the optional initial ``state`` is ``(h, c)``, each ``(cells, hidden)``.
    Inputs are cast to the network's precision; the output has that precision too.
    With ``return_state``, also the state ``(h, c)`` after the last day.
    """
    device = torch.device(device)
    dt = _net_dtype(net)
    n_cells, n_time, n_in = x_d.shape
    own = not net.training  # EALSTM.rollout: ~2.5x the fused kernel on the CPU, faster than cuDNN's on a GPU
    if batch_size is None and device.type == "cuda" and not own:
        time_chunk = _gpu_time_chunk(device, time_chunk, min(n_cells, 65536), net.hidden, dt.itemsize)
    batch = batch_size or _default_batch(
        device, windowed=False, steps=min(time_chunk, n_time), hidden=net.hidden, itemsize=dt.itemsize,
        n_in=n_in if own else None,
    )  # fmt: skip
    out = np.empty((n_cells, n_time), dtype=dt)
    final = (
        (np.empty((n_cells, net.hidden), dt), np.empty((n_cells, net.hidden), dt))
        if return_state
        else None
    )
    with full_float32(device):
        for c0 in range(0, n_cells, batch):
            c1 = min(c0 + batch, n_cells)
            xs = torch.from_numpy(np.ascontiguousarray(x_s[c0:c1], dtype=dt)).to(device)
            st = None
            if state is not None:
                st = (
                    torch.from_numpy(np.ascontiguousarray(state[0][c0:c1], dtype=dt)).to(device),
                    torch.from_numpy(np.ascontiguousarray(state[1][c0:c1], dtype=dt)).to(device),
                )
            for t0 in range(0, n_time, time_chunk):
                t1 = min(t0 + time_chunk, n_time)
                xd = torch.from_numpy(np.ascontiguousarray(x_d[c0:c1, t0:t1], dtype=dt)).to(device)
                y, st = net.rollout(xd, xs, st) if own else net(xd, xs, st)
                out[c0:c1, t0:t1] = y[..., 0].cpu().numpy()
            if final is not None and st is not None:
                final[0][c0:c1] = st[0].reshape(c1 - c0, -1).cpu().numpy()
                final[1][c0:c1] = st[1].reshape(c1 - c0, -1).cpu().numpy()
    return (out, final) if final is not None else out


@torch.no_grad()
def run_windowed(
    net: EALSTM,
    x_d: np.ndarray,
    x_s: np.ndarray,
    lookback: int,
    *,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
) -> np.ndarray:
    """Sequence-to-one outputs ``(cells, time)``: day ``t`` from the window ``t-lookback+1 … t``.

    Days ``< lookback - 1`` are NaN. NaN inside a window gives NaN. Inputs are cast to
    the network's precision; the output has that precision too.
    """
    device = torch.device(device)
    dt = _net_dtype(net)
    n_cells, n_time, n_in = x_d.shape
    out = np.full((n_cells, n_time), np.nan, dtype=dt)
    n_win = n_time - lookback + 1
    if n_win <= 0:
        return out
    batch = batch_size or _default_batch(
        device, windowed=True, steps=lookback, hidden=net.hidden, itemsize=dt.itemsize,
        n_in=None if net.training else n_in,
    )  # fmt: skip
    # on a GPU the forcing goes over once and the windows are gathered there
    xd_all = torch.from_numpy(np.ascontiguousarray(x_d, dtype=dt)).to(device)
    windows = xd_all.unfold(1, lookback, 1)  # view (cells, n_win, n_in, lookback)
    xs_all = torch.from_numpy(np.ascontiguousarray(x_s, dtype=dt)).to(device)
    total = n_cells * n_win
    flat = out[:, lookback - 1 :]  # view (cells, n_win)
    with full_float32(device):
        for w0 in range(0, total, batch):
            idx = torch.arange(w0, min(w0 + batch, total))
            cells, starts = idx // n_win, idx % n_win
            cd, sd = cells.to(device), starts.to(device)
            xd = windows[cd, sd].transpose(1, 2).contiguous()  # (B, lookback, n_in)
            if not net.training:
                _, (h, _) = net.rollout(xd, xs_all[cd], outputs=False, exact_tanh=True)
            else:
                _, (h, _) = net.lstm(xd, xs_all[cd])
            flat[cells.numpy(), starts.numpy()] = net.head(h)[:, 0].cpu().numpy()
    return out


# ---------------------------------------------------------------------------- inputs
def _host_tensor(a: np.ndarray, dtype: str | None = None) -> torch.Tensor:
    """A CPU tensor of ``a`` (C-contiguous, in ``dtype``), sharing its memory where it can: a
    read-only array is copied (``torch.from_numpy`` warns about those)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _gap_days(xd: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(cells, time)``: days with a NaN input (``np.isnan(xd).any(axis=-1)``; torch's reduction
    over the short last axis is ~3x numpy's; a tensor is reduced on its device)."""
    if isinstance(xd, torch.Tensor):
        return xd.isnan().any(dim=-1).cpu().numpy()
    return _host_tensor(xd).isnan().any(dim=-1).numpy()


#: Values per piece of the z-score on a GPU (float64 temporaries of 1 GiB at most).
GPU_PREPARE_PIECE = 1 << 27
#: Share of the GPU's free memory the normalised forcing of a block may keep there (else it
#: comes back to the host, and the cascade sends it over again in pieces).
GPU_FORCING_SHARE = 0.25


def _prepare_dynamic_on(
    model: TrainedModel, raw: np.ndarray, dtype: str, device: torch.device, *, keep: bool = False
) -> np.ndarray | torch.Tensor:
    """:meth:`TrainedModel.prepare_dynamic` computed on ``device`` (a GPU): the transforms and
    the z-score in float64 there, rounded once to ``dtype``; back on the host, or with ``keep``
    a tensor on ``device`` (where it fits in :data:`GPU_FORCING_SHARE` of the free memory).
    On an H200 numpy's float64 z-score took 1.6 s for 65 536 cells x 730 days x 4 inputs, 3x
    the roll-out of one network, and bringing the result back 0.5 s more."""
    cfg = model.config
    raw = np.asarray(raw)
    transforms = [cfg.transforms.get(name, "identity") for name in cfg.dynamic]
    tdt = getattr(torch, dtype)
    if keep and device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        keep = raw.size * np.dtype(dtype).itemsize <= GPU_FORCING_SHARE * free
    out: np.ndarray | torch.Tensor = (
        torch.empty(raw.shape, dtype=tdt, device=device) if keep else np.empty(raw.shape, dtype=dtype)
    )
    mean = _host_tensor(model.stats.dynamic_mean, "float64").to(device)
    std = _host_tensor(model.stats.dynamic_std, "float64").to(device)
    step = max(1, GPU_PREPARE_PIECE // max(1, int(np.prod(raw.shape[1:], dtype=np.int64))))
    for s0 in range(0, max(1, raw.shape[0]), step):
        # (a copy on the device: the transforms below work in place, never on the caller's array)
        x = _host_tensor(raw[s0 : s0 + step]).to(device, torch.float64, copy=True)
        for j, tr in enumerate(transforms):  # as TrainedModel.prepare_dynamic (NaN stays NaN)
            if tr != "identity":
                x[..., j] = apply_transform(x[..., j], tr)
        z = ((x - mean) / std).to(tdt)
        if isinstance(out, torch.Tensor):
            out[s0 : s0 + step] = z
        else:
            out[s0 : s0 + step] = z.cpu().numpy()
    return out


def _check_inputs(
    model: TrainedModel,
    dynamic: np.ndarray,
    static: np.ndarray,
    dtype: str = "float32",
    device: torch.device | None = None,
    *,
    keep: bool = False,
) -> tuple[Any, np.ndarray]:
    """Normalised ``(dynamic, static)`` in ``dtype``; the z-score is taken in float64 either way
    (on ``device`` where it is a GPU; with ``keep`` the dynamic inputs may stay there as a
    tensor, see :func:`_prepare_dynamic_on`)."""
    dynamic = np.asarray(dynamic)
    static = np.asarray(static)
    cfg = model.config
    if dynamic.ndim != 3 or dynamic.shape[-1] != cfg.n_dynamic:
        raise XsomoValueError(
            f"dynamic inputs must be (cells, time, {cfg.n_dynamic}) ordered as {list(cfg.dynamic)}, "
            f"got shape {dynamic.shape}"
        )
    if static.ndim != 2 or static.shape != (dynamic.shape[0], cfg.n_static):
        raise XsomoValueError(
            f"static inputs must be ({dynamic.shape[0]}, {cfg.n_static}) ordered as {list(cfg.static)}, "
            f"got shape {static.shape}"
        )
    if device is not None and device.type == "cuda":
        return _prepare_dynamic_on(model, dynamic, dtype, device, keep=keep), model.prepare_static(static, dtype=dtype)
    return model.prepare_dynamic(dynamic, dtype=dtype), model.prepare_static(static, dtype=dtype)


def _cascade(
    model: TrainedModel,
    xd: np.ndarray | torch.Tensor,
    xs: np.ndarray,
    run: str,
    *,
    device: torch.device,
    batch_size: int | None,
    time_chunk: int,
    state: tuple[float, float] | None = None,
    dtype: str = "float32",
    init_states: np.ndarray | None = None,
    final_states: np.ndarray | None = None,
    on_device: bool | None = None,
) -> np.ndarray:
    """sm ``(layers, members, cells, time)`` in m3 m-3 (``dtype``) from normalised inputs (NaN allowed).

    Continuous runs start from ``state`` (every unit at the given ``(h, c)``), or from
    ``init_states`` ``(layers, members, 2, cells, hidden)``, or from zero; the state after
    the last day is written into ``final_states`` (same shape) when given. On a GPU (or
    with ``on_device``) continuous runs keep the whole cascade on the device
    (:func:`_cascade_on_device`)."""
    if run != "windowed" and (device.type == "cuda" if on_device is None else on_device):
        return _cascade_on_device(
            model, xd, xs, device=device, batch_size=batch_size, time_chunk=time_chunk, state=state, dtype=dtype,
            init_states=init_states, final_states=final_states,
        )  # fmt: skip
    if isinstance(xd, torch.Tensor):  # (normalised forcing kept on a GPU; the host path needs it here)
        xd = xd.cpu().numpy()
    cfg = model.config
    n_cells, n_time, _ = xd.shape
    out = np.empty((len(cfg.layers), cfg.ensemble, n_cells, n_time), dtype=dtype)
    nan_day = _gap_days(xd)
    xd0 = None  # the forcing with NaN as 0 for the roll-out, made once for every network
    for k, layer in enumerate(cfg.layers):
        nets = _networks(model, layer, device, dtype)
        for m, net in enumerate(nets):
            parts = []
            for upper in cfg.upper_layers(layer):
                j = cfg.layer_index(upper)
                parts.append(model.normalise_target(out[j, m], upper)[..., None].astype(dtype))
            if run == "windowed":
                x = np.concatenate([xd, *parts], axis=-1) if parts else xd
                y = run_windowed(net, x, xs, cfg.lookback, device=device, batch_size=batch_size)
                if cfg.cascade and k + 1 < len(cfg.layers):
                    # days without a full window: from the partial window starting on day 0
                    head = cfg.lookback - 1
                    if head > 0:
                        part = np.where(np.isnan(x[:, :head]), 0.0, x[:, :head]).astype(dtype)
                        yp = run_continuous(
                            net,
                            part,
                            xs,
                            device=device,
                            batch_size=batch_size,
                            time_chunk=time_chunk,
                        )
                        yp[nan_day[:, :head]] = np.nan
                        y[:, :head] = yp
            else:
                init = None
                if state is not None:
                    h0 = np.full((n_cells, cfg.hidden), state[0], dtype=dtype)
                    c0 = np.full((n_cells, cfg.hidden), state[1], dtype=dtype)
                    init = (h0, c0)
                elif init_states is not None:
                    init = (init_states[k, m, 0], init_states[k, m, 1])
                if xd0 is None:
                    xd0 = np.where(np.isnan(xd), 0.0, xd).astype(dtype, copy=False)
                xf = (
                    np.concatenate([xd0, *(np.where(np.isnan(p), 0.0, p) for p in parts)], axis=-1).astype(dtype, copy=False)
                    if parts
                    else xd0
                )
                res = run_continuous(
                    net,
                    xf,
                    xs,
                    state=init,
                    device=device,
                    batch_size=batch_size,
                    time_chunk=time_chunk,
                    return_state=final_states is not None,
                )
                if final_states is not None:
                    y, (h1, c1) = res
                    final_states[k, m, 0] = h1
                    final_states[k, m, 1] = c1
                else:
                    y = res
                y[nan_day] = np.nan
            model.denormalise(y, layer, out=out[k, m])
    return out


def _device_cells(device: torch.device, per_cell: int, n_cells: int) -> int:
    """Cells per batch of :func:`_cascade_on_device`: what fits in half the GPU's free memory
    (:data:`GPU_MEMORY_SHARE`; 1 GiB on other devices), at least one."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        budget = GPU_MEMORY_SHARE * free
    else:
        budget = float(1 << 30)
    return int(max(1, min(n_cells, budget // max(1, per_cell))))


def _cascade_on_device(
    model: TrainedModel,
    xd: np.ndarray | torch.Tensor,
    xs: np.ndarray,
    *,
    device: torch.device,
    batch_size: int | None,
    time_chunk: int,
    state: tuple[float, float] | None,
    dtype: str,
    init_states: np.ndarray | None,
    final_states: np.ndarray | None,
) -> np.ndarray:
    """The continuous cascade of :func:`_cascade` with everything between the networks on ``device``.

    Per batch of cells and chunk of ``time_chunk`` days the normalised forcing goes to the
    device once; the gap mask, the upper layers' soil moisture as the next layer's inputs,
    the de-normalisation and every network's state stay there (the states carried from
    chunk to chunk), and the chunk's soil moisture of every layer and member comes back
    once. On a GPU the host copy of the forcing per network (with the upper layers
    appended), its pageable transfers and the NaN passes had cost ~20x the kernel (an
    H200: 3.9 s from numpy for 0.19 s of roll-out, 65 536 cells x 730 days). The
    arithmetic is :func:`_cascade`'s, operation for operation (tested against it on the CPU)."""
    cfg = model.config
    n_cells, n_time, n_dyn = xd.shape
    n_lay, n_mem, hidden = len(cfg.layers), cfg.ensemble, cfg.hidden
    tdt = getattr(torch, dtype)
    item = np.dtype(dtype).itemsize
    out = np.empty((n_lay, n_mem, n_cells, n_time), dtype=dtype)
    nets = [_networks(model, layer, device, dtype) for layer in cfg.layers]
    n_in = max(cfg.n_inputs(layer) for layer in cfg.layers)
    chunk = max(1, min(int(time_chunk), n_time))
    # per cell: a chunk of the forcing, of one network's inputs and their day-major copy in
    # EALSTM.rollout, its outputs (twice), every network's soil moisture and the gap mask;
    # every network's state and a dozen state-sized buffers
    per_cell = item * (chunk * (n_dyn + 2 * n_in + 2 + n_lay * n_mem) + hidden * (2 * n_lay * n_mem + 12)) + chunk
    batch = batch_size or min(65536, _device_cells(device, per_cell, n_cells))
    with full_float32(device), torch.no_grad():
        for c0 in range(0, n_cells, batch):
            c1 = min(c0 + batch, n_cells)
            m_cells = c1 - c0
            s = _host_tensor(xs[c0:c1], dtype).to(device)
            states: list[list[tuple[torch.Tensor, torch.Tensor] | None]] = [[None] * n_mem for _ in range(n_lay)]
            for k in range(n_lay):
                for m in range(n_mem):
                    if state is not None:
                        states[k][m] = (
                            torch.full((m_cells, hidden), state[0], dtype=tdt, device=device),
                            torch.full((m_cells, hidden), state[1], dtype=tdt, device=device),
                        )
                    elif init_states is not None:
                        states[k][m] = (
                            _host_tensor(init_states[k, m, 0, c0:c1], dtype).to(device),
                            _host_tensor(init_states[k, m, 1, c0:c1], dtype).to(device),
                        )
            for t0 in range(0, n_time, chunk):
                t1 = min(t0 + chunk, n_time)
                x = xd[c0:c1, t0:t1] if isinstance(xd, torch.Tensor) else _host_tensor(xd[c0:c1, t0:t1], dtype).to(device)
                nan = x.isnan()
                gap = nan.any(dim=-1)
                x = x.masked_fill(nan, 0.0)  # (not in place: on the CPU `x` is the caller's array)
                del nan
                sm = torch.empty((n_lay, n_mem, m_cells, t1 - t0), dtype=tdt, device=device)
                for k, layer in enumerate(cfg.layers):
                    for m, net in enumerate(nets[k]):
                        parts = []
                        for upper in cfg.upper_layers(layer):
                            p = model.normalise_target(sm[cfg.layer_index(upper), m], upper)
                            parts.append(p.masked_fill_(p.isnan(), 0.0)[..., None])
                        inp = torch.cat([x, *parts], dim=-1) if parts else x
                        y, states[k][m] = net.rollout(inp, s, states[k][m])
                        del inp, parts
                        assert y is not None
                        y = y[..., 0].masked_fill_(gap, float("nan"))
                        model.denormalise(y, layer, out=sm[k, m])
                        del y
                out[:, :, c0:c1, t0:t1] = sm.cpu().numpy()
                del x, sm, gap
            if final_states is not None:
                for k in range(n_lay):
                    for m in range(n_mem):
                        st = states[k][m]
                        assert st is not None
                        final_states[k, m, 0, c0:c1] = st[0].cpu().numpy()
                        final_states[k, m, 1, c0:c1] = st[1].cpu().numpy()
            del s, states
    return out


# ---------------------------------------------------------------------------- public
def convergence_distance(
    model: TrainedModel,
    dynamic: np.ndarray,
    static: np.ndarray,
    *,
    steps: int | None = None,
    states: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 1.0), (-1.0, -1.0)),
    rolled_out: bool = True,
    extra_days: int = CHECK_EXTRA_DAYS,
    windows: int = CHECK_WINDOWS,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    dtype: Dtype = "float32",
) -> np.ndarray:
    """How far roll-outs from different initial states are apart after ``steps`` days.

    The cascade is rolled out from each initial state ``(h, c)`` (every hidden unit set
    to the given values; default zero, +1 and -1) over the first ``steps + extra_days``
    days of the block, and the largest absolute difference of the outputs (m3 m-3)
    between any two states on days ``steps - 1`` onwards is returned.

    With ``rolled_out`` (default) one more roll-out starts from a state the model itself
    reaches: the state of every network and cell after the first roll-out's last day.
    A continuous roll-out carries such states, and the LSTM's cell state ``c`` is not
    bounded by 1: on a trained tiny model the uniform states 0 and +-1 measured 0.0018
    where the roll-out's own state gave 0.020 from window-by-window prediction (whose
    windows start from zero). The check compares what the roll-out and windows do.

    ``windows`` more roll-outs start from zero later in the block, on days spread over
    up to :data:`CHECK_WINDOW_SPAN` days (where the block has them), and are compared
    with the zero-state roll-out from the first day over the same days from ``steps``
    days on: that is exactly a window's value against the roll-out's, in other seasons
    (how fast a network forgets depends on the season it starts in: on the trained tiny
    model of the tests, starts on the block's first day alone measured 0.0029 where the
    windows of the files differed by 0.0091).

    Parameters
    ----------
    model
        The model.
    dynamic, static
        RAW inputs ``(cells, time, n_dynamic)``, ``(cells, n_static)``; ``time >= steps``.
    steps
        Spin-up days (default ``model.config.lookback``).
    states
        Initial ``(h, c)`` values to compare.
    extra_days
        Days after the spin-up included in the maximum (if the block has them).
    windows
        Zero-state roll-outs started later in the block (0: none).
    dtype
        Precision of the roll-outs, ``"float32"`` or ``"float64"``.

    Returns
    -------
    numpy.ndarray
        ``(n_layers, n_members, n_cells)``; NaN for cells with NaN statics.
    """
    steps = int(model.config.lookback if steps is None else steps)
    dtype = check_dtype(dtype)
    dynamic = np.asarray(dynamic)
    if steps < 1 or dynamic.shape[1] < steps:
        raise XsomoValueError(
            f"convergence check needs at least steps={steps} days of forcing, the block has {dynamic.shape[1]}"
        )
    if len(states) < 2:
        raise XsomoValueError("convergence check needs at least two initial states")
    extra = max(0, int(extra_days))
    n = min(dynamic.shape[1], steps + extra)
    span = min(CHECK_WINDOW_SPAN, dynamic.shape[1] - steps)
    offsets = (
        sorted({int(k) for k in np.rint(np.linspace(span / windows, span, int(windows)))} - {0})
        if windows > 0 and span > 0
        else []
    )
    n_long = min(dynamic.shape[1], steps + (offsets[-1] if offsets else 0) + extra)
    dev = torch_device(device)
    xd, xs = _check_inputs(model, dynamic[:, :n_long], static, dtype, dev)
    xd = np.where(np.isnan(xd), 0.0, xd).astype(dtype)  # the check is about the state, not gaps
    bad = np.isnan(xs).any(axis=1)
    xs = np.where(np.isnan(xs), 0.0, xs).astype(dtype)
    cfg = model.config
    reached = (
        np.zeros((len(cfg.layers), cfg.ensemble, 2, xd.shape[0], cfg.hidden), dtype=dtype) if rolled_out else None
    )
    first = _cascade(
        model, xd, xs, "continuous", device=dev, batch_size=batch_size, time_chunk=4096,
        state=states[0], dtype=dtype, final_states=reached,
    )  # fmt: skip
    runs = [first[..., steps - 1 : n]] + [
        _cascade(
            model, xd[:, :n], xs, "continuous", device=dev, batch_size=batch_size, time_chunk=4096,
            state=s, dtype=dtype,
        )[..., steps - 1 :]
        for s in states[1:]
    ]  # fmt: skip
    if reached is not None:
        runs.append(
            _cascade(
                model, xd[:, :n], xs, "continuous", device=dev, batch_size=batch_size, time_chunk=4096,
                dtype=dtype, init_states=reached,
            )[..., steps - 1 :]
        )  # fmt: skip
    stack = np.stack(runs)
    dist = (np.nanmax(stack, axis=0) - np.nanmin(stack, axis=0)).max(axis=-1)
    for k in offsets:  # windows: from zero on day k (the roll-out from day 0 is `first`)
        stop = min(n_long, k + steps + extra)
        late = _cascade(
            model, xd[:, k:stop], xs, "continuous", device=dev, batch_size=batch_size, time_chunk=4096,
            dtype=dtype,
        )[..., steps - 1 :]  # fmt: skip
        dist = np.fmax(dist, np.abs(late - first[..., k + steps - 1 : stop]).max(axis=-1))
    dist[:, :, bad] = np.nan
    return dist


def ladder_spinups(spinup: int, lookback: int) -> list[int]:
    """The spin-ups ``auto`` tries in turn: ``spinup``, then :data:`LADDER` lookbacks longer than it.

    >>> ladder_spinups(365, 365)
    [365, 730, 1095]
    >>> ladder_spinups(800, 365)
    [800, 1095]
    """
    rungs = [int(spinup)]
    rungs += [k * int(lookback) for k in LADDER if k * int(lookback) > rungs[0]]
    return rungs


def spinup_forcing(
    dynamic: np.ndarray, history: np.ndarray | None, steps: int, spinup: int
) -> np.ndarray:
    """Forcing for a spin-up of ``steps`` days before the same first output day as ``spinup``.

    ``dynamic`` ``(cells, time, n)`` holds ``spinup`` days before its first output day;
    ``history`` ``(cells, h, n)`` the days before ``dynamic`` (may be empty or ``None``). The
    ``steps - spinup`` days more come from the end of ``history``; where it holds fewer,
    the first :data:`CYCLE_DAYS` days of ``history`` + ``dynamic`` are cycled before them
    (ending the day before, so a whole year keeps the season's phase).

    >>> d = np.arange(6.0).reshape(1, 6, 1)
    >>> spinup_forcing(d, np.full((1, 2, 1), -1.0), 5, 2)[0, :, 0].tolist()  # 1 day cycled
    [5.0, -1.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    extra = int(steps) - int(spinup)
    if extra <= 0:
        return dynamic
    if history is None:
        history = dynamic[:, :0]
    base = np.concatenate([history, dynamic], axis=1) if history.shape[1] else dynamic
    take = min(extra, history.shape[1])
    need = extra - take
    start = history.shape[1] - take
    parts = []
    if need > 0:
        cycle = base[:, : min(CYCLE_DAYS, base.shape[1])]
        reps = -(-need // cycle.shape[1])
        parts.append(np.concatenate([cycle] * reps, axis=1)[:, cycle.shape[1] * reps - need :])
    parts.append(base[:, start:])
    return np.concatenate(parts, axis=1)


def choose_rollout(
    model: TrainedModel,
    dynamic: np.ndarray,
    static: np.ndarray,
    *,
    spinup: int,
    history: np.ndarray | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    dtype: Dtype = "float32",
) -> tuple[int | None, dict[int, np.ndarray]]:
    """``auto``'s ladder on RAW inputs: the shortest spin-up of :func:`ladder_spinups` whose
    :func:`convergence_distance` is below ``tolerance``, or ``None`` (windows) if none is.

    ``dynamic`` holds ``spinup`` days before the first output day and ``history`` the days
    before it (see :func:`spinup_forcing`). Returns the spin-up and, per rung tried, the
    largest distance (m3 m-3) per layer over members and cells.
    """
    tried: dict[int, np.ndarray] = {}
    for steps in ladder_spinups(spinup, model.config.lookback):
        forcing = spinup_forcing(dynamic, history, steps, spinup)
        if forcing.shape[1] < steps:
            break
        dist = convergence_distance(
            model, forcing, static, steps=steps, device=device, batch_size=batch_size, dtype=dtype
        )
        flat = dist.reshape(dist.shape[0], -1)
        tried[steps] = np.array(
            [float(np.nanmax(d)) if np.isfinite(d).any() else 0.0 for d in flat]
        )
        if tried[steps].max() < tolerance:
            return steps, tried
    return None, tried


def describe_choice(
    steps: int | None, tried: dict[int, np.ndarray], tolerance: float, cells: int
) -> str:
    """One line saying which roll-out ``auto`` chose for a block and why."""
    rungs = ", ".join(f"{d.max():.3g} after {k} d" for k, d in tried.items()) or "no check possible"
    what = f"continuous roll-out with a {steps}-day spin-up" if steps else "windowed prediction"
    return (
        f"convergence check on {cells} cells: max distance {rungs} (tolerance {tolerance:g} m3 m-3) "
        f"-> {what} for this block"
    )


@overload
def predict_block(
    model: TrainedModel,
    dynamic: np.ndarray,
    static: np.ndarray,
    *,
    mode: Mode = ...,
    spinup: int | None = ...,
    device: str | torch.device = ...,
    batch_size: int | None = ...,
    time_chunk: int = ...,
    tolerance: float = ...,
    dtype: Dtype = ...,
    history: np.ndarray | None = ...,
    state: np.ndarray | None = ...,
    return_state: bool = ...,
    return_info: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def predict_block(
    model: TrainedModel,
    dynamic: np.ndarray,
    static: np.ndarray,
    *,
    mode: Mode = ...,
    spinup: int | None = ...,
    device: str | torch.device = ...,
    batch_size: int | None = ...,
    time_chunk: int = ...,
    tolerance: float = ...,
    dtype: Dtype = ...,
    history: np.ndarray | None = ...,
    state: np.ndarray | None = ...,
    return_state: bool = ...,
    return_info: Literal[True],
) -> tuple[np.ndarray, RolloutInfo]: ...


def predict_block(
    model: TrainedModel,
    dynamic: np.ndarray,
    static: np.ndarray,
    *,
    mode: Mode = "auto",
    spinup: int | None = None,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    time_chunk: int = 2048,
    tolerance: float = DEFAULT_TOLERANCE,
    dtype: Dtype = "float32",
    history: np.ndarray | None = None,
    state: np.ndarray | None = None,
    return_state: bool = False,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, RolloutInfo]:
    """Soil moisture of every layer and member for one block of cells.

    Parameters
    ----------
    model
        A :class:`~xsomo.model.TrainedModel`.
    dynamic
        RAW dynamic inputs ``(cells, time, n_dynamic)`` in the order of
        ``model.config.dynamic`` (transforms and z-scores are applied here).
    static
        RAW static inputs ``(cells, n_static)`` in the order of ``model.config.static``.
    mode
        ``"continuous"``, ``"windowed"`` or ``"auto"`` (see the module docstring).
    spinup
        Days of history a valid output needs (default ``model.config.lookback``);
        earlier days are NaN. Also the spin-up of the convergence check.
    device
        Torch device, or ``"auto"`` (CUDA when present).
    batch_size
        Cells (continuous) or windows (windowed) per kernel call.
    time_chunk
        Days per kernel call in the continuous roll-out (the state is carried).
    tolerance
        Convergence tolerance of ``auto`` in m3 m-3.
    dtype
        ``"float32"`` (default) or ``"float64"``: precision of the networks (a float64
        copy of each; the model is not changed) and of the normalised inputs, which are
        z-scored in float64 either way. The convergence check of ``auto`` runs in it too.
    history
        RAW dynamic inputs ``(cells, h, n_dynamic)`` of the days before ``dynamic``, which
        ``auto``'s ladder uses for spin-ups longer than ``spinup`` (cycled days where
        there are too few; see :func:`spinup_forcing`). Not part of the output.
    state
        Initial LSTM state ``(layers, members, 2, cells, hidden)`` (``h``, ``c``) of a
        previous roll-out that ended the day before ``dynamic`` starts: the roll-out
        continues from it (``continuous``; ``auto`` runs continuous; ``windowed`` is
        refused) and every day is valid (no spin-up).
    return_state
        Keep the state after the last day in ``info.state`` (continuous roll-outs only;
        ask for ``return_info=True`` too).
    return_info
        Also return a :class:`RolloutInfo`.

    Returns
    -------
    numpy.ndarray
        ``(n_layers, n_members, n_cells, n_time)`` in m3 m-3 of ``dtype`` (layers in the
        order of ``model.config.layers``), and the :class:`RolloutInfo` if asked.
    """
    if mode not in ("continuous", "windowed", "auto"):
        raise XsomoValueError(f"mode must be 'continuous', 'windowed' or 'auto', got {mode!r}")
    dtype = check_dtype(dtype)
    cfg = model.config
    spinup = int(cfg.lookback if spinup is None else spinup)
    if spinup < 1:
        raise XsomoValueError(f"spinup must be >= 1 day, got {spinup}")
    dev = torch_device(device)
    # on a GPU the normalised forcing of a continuous roll-out stays there (where it fits)
    xd, xs = _check_inputs(model, dynamic, static, dtype, dev, keep=mode != "windowed")
    n_cells, n_time, _ = xd.shape
    if state is not None:
        return _continue(model, xd, xs, mode, np.asarray(state), dev, batch_size, time_chunk, dtype,
                         return_state, return_info)  # fmt: skip
    bad_cell = np.isnan(xs).any(axis=1)
    xs = np.where(np.isnan(xs), 0.0, xs).astype(dtype)
    nan_days = int(_gap_days(xd)[~bad_cell].sum())
    info = RolloutInfo(
        requested=mode,
        mode=mode,
        spinup=spinup,
        tolerance=tolerance,
        nan_forcing_days=nan_days,
        dtype=dtype,
    )
    run = mode
    if mode == "auto":
        if n_time < spinup:
            run = "windowed"
            info.notes.append(
                f"block has {n_time} days, fewer than the spin-up {spinup}: no check possible"
            )
        else:
            steps, tried = choose_rollout(
                model, np.asarray(dynamic), np.asarray(static), spinup=spinup, history=history,
                tolerance=tolerance, device=dev, batch_size=batch_size, dtype=dtype,
            )  # fmt: skip
            info.ladder = {k: float(d.max()) for k, d in tried.items()}
            first = tried.get(spinup)
            if first is not None:
                info.distance = {lay: float(d) for lay, d in zip(cfg.layers, first, strict=True)}
            run = "windowed" if steps is None else "continuous"
            msg = describe_choice(steps, tried, tolerance, n_cells)
            info.notes.append(msg)
            (logger.info if steps == spinup else logger.warning)(msg)
            if steps is not None and steps > spinup:
                return _finish(
                    predict_block(
                        model, spinup_forcing(np.asarray(dynamic), history, steps, spinup), static,
                        mode="continuous", spinup=steps, device=device, batch_size=batch_size,
                        time_chunk=time_chunk, tolerance=tolerance, dtype=dtype, return_info=True,
                    ),
                    steps - spinup, spinup, info, return_info,
                )  # fmt: skip
    info.mode = run
    if run == "windowed":
        info.spinup = spinup = cfg.lookback
        if return_state:
            raise XsomoValueError(
                "return_state=True (--save-state): the convergence check found that a block does not forget "
                "its initial state within the spin-ups tried, so mode='auto' predicts it window by window, which "
                "has no state to continue from (each day starts from zero). Nothing was written. Predict with "
                "mode='continuous' (--mode continuous: within about the tolerance of windowed prediction), "
                "with a larger tolerance= (--tolerance), or without saving a state"
            )
    else:
        info.rollout_spinup = spinup
    final = _state_array(model, n_cells, dtype) if return_state else None
    lead = min(windowed_history(cfg), 0 if history is None else np.asarray(history).shape[1]) if run == "windowed" else 0
    if lead:
        # the upper layers' windows of the first days read from the history too: their inputs
        # otherwise come from partial windows on the block's first days, and a day's layers 2-3
        # had depended on where the output started (up to 9.5e-4 m3 m-3; hostile-input QA)
        xd, _ = _check_inputs(model, np.concatenate([np.asarray(history)[:, -lead:], np.asarray(dynamic)], axis=1),
                              np.asarray(static), dtype, dev)  # fmt: skip
    out = _cascade(
        model, xd, xs, run, device=dev, batch_size=batch_size, time_chunk=time_chunk, dtype=dtype,
        final_states=final,
    )[..., lead:]  # fmt: skip
    if final is not None:
        final[:, :, :, bad_cell] = np.nan
    info.state = final
    out[..., : spinup - 1] = np.nan
    out[:, :, bad_cell] = np.nan
    return (out, info) if return_info else out


def windowed_history(cfg: Any) -> int:
    """Days before a windowed output's first window that its cascade reads: a layer's inputs
    include the layer above on each day of its window, itself a window of ``lookback`` days,
    so layer ``k`` of a cascade reaches back ``k x (lookback - 1)`` days (0 without a cascade).

    >>> from types import SimpleNamespace
    >>> windowed_history(SimpleNamespace(layers=(1, 2, 3), cascade=True, lookback=90))
    178
    """
    if not getattr(cfg, "cascade", True):
        return 0
    return (len(cfg.layers) - 1) * max(int(cfg.lookback) - 1, 0)


def _finish(
    result: tuple[np.ndarray, RolloutInfo], skip: int, spinup: int, info: RolloutInfo, return_info: bool
) -> np.ndarray | tuple[np.ndarray, RolloutInfo]:
    """The roll-out over a longer spin-up, cut back to the block's days (``skip`` days earlier)."""
    out, inner = result
    out = out[..., skip:]
    info.mode = "continuous"
    info.spinup = spinup
    info.rollout_spinup = inner.spinup
    info.state = inner.state
    return (out, info) if return_info else out


def _state_array(model: TrainedModel, n_cells: int, dtype: str) -> np.ndarray:
    cfg = model.config
    return np.zeros((len(cfg.layers), cfg.ensemble, 2, n_cells, cfg.hidden), dtype=dtype)


def _continue(
    model: TrainedModel,
    xd: np.ndarray | torch.Tensor,
    xs: np.ndarray,
    mode: str,
    state: np.ndarray,
    dev: torch.device,
    batch_size: int | None,
    time_chunk: int,
    dtype: str,
    return_state: bool,
    return_info: bool,
) -> np.ndarray | tuple[np.ndarray, RolloutInfo]:
    """The continuous roll-out from a saved state (no spin-up, every day valid)."""
    cfg = model.config
    n_cells = xd.shape[0]
    want = (len(cfg.layers), cfg.ensemble, 2, n_cells, cfg.hidden)
    if mode == "windowed":
        raise XsomoValueError(
            "a saved state continues the continuous roll-out; window-by-window prediction starts "
            "every day from zero and has no state to continue (predict the period with "
            "mode='windowed' and drivers holding the lookback before it instead)"
        )
    if state.shape != want:
        raise XsomoValueError(
            f"state has shape {state.shape}, the model and block need {want} "
            "(layers, members, h/c, cells, hidden)"
        )
    bad_cell = np.isnan(xs).any(axis=1) | ~np.isfinite(state).all(axis=(0, 1, 2, 4))
    xs = np.where(np.isnan(xs), 0.0, xs).astype(dtype)
    init = np.where(np.isfinite(state), state, 0.0).astype(dtype)
    final = _state_array(model, n_cells, dtype) if return_state else None
    out = _cascade(
        model, xd, xs, "continuous", device=dev, batch_size=batch_size, time_chunk=time_chunk,
        dtype=dtype, init_states=init, final_states=final,
    )  # fmt: skip
    out[:, :, bad_cell] = np.nan
    if final is not None:
        final[:, :, :, bad_cell] = np.nan
    info = RolloutInfo(requested=mode, mode="continuous", spinup=0, dtype=dtype, state=final)
    info.nan_forcing_days = int(_gap_days(xd)[~bad_cell].sum())
    return (out, info) if return_info else out
