"""Training of the EA-LSTM cascade: ``drivers.somo.train_lstm(targets)``.

Design (DESIGN.md, issue 4):

- Target cells are matched to the drivers' grid by lat/lon (within half a cell); the
  inputs of those cells are read once into contiguous float32 arrays
  ``(cell, time, feature)``.
- A training sample is a window of ``lookback`` warm-up days followed by ``seq_length``
  supervised days (sequence-to-sequence); the loss is the MSE of z-scored soil moisture
  on the supervised days where a target exists (gaps are masked). Batches are built by
  vectorised gathers of (cell, start) pairs drawn at random with a fixed seed.
- Each window starts from a random initial state ``(h, c)`` (``init_state_scale``), and a
  consistency penalty (``consistency``) makes the network forget its initial state within
  the warm-up, so that it earns the fast continuous roll-out at inference
  (:func:`xsomo.model.rollout.convergence_distance`): every batch gets probe windows -- at
  training cells and at ``consistency_cells`` random grid cells without targets, where the
  model will be run too -- each run twice, from a random and from a coherent extreme
  state, and the largest squared difference of the two runs' outputs over the second half
  of the warm-up and the supervised days is added to the loss. Random states alone left
  differences of up to 4e-2 m3 m-3 after 365 days at arid cells of the demo world. On by
  default (``consistency=30``): measured on the seed-0 demo world with the demo preset
  (bench/bench_forgetting.py, all 3259 land cells, both members), the largest difference
  after 365 days fell from 1.4-2.3e-2 / 3.2-3.8e-2 / 2.9-4.8e-2 (layers 1-3, seeds 0-2)
  to at most 5.3e-4 with weight 30 (seeds 0, 1) and 3.7e-4 with 100 (seeds 0-2); the
  median r against the truth changed by +0.000 / +0.002 / +0.006 with 30 (mean of seeds 0
  and 1) and by -0.005 / +0.000 / +0.005 with 100 (mean of seeds 0-2). ``consistency=0``
  turns it off (about half the training time).
- Normalisation statistics come from the training cells only and are stored in the model.
- Layers are trained in cascade order; a deeper layer gets the *simulated* soil moisture
  of the upper layers (continuous roll-out of the already trained members, same member),
  exactly as at inference.
- Early stopping on a validation split of cells (continuous roll-out, loss after the
  spin-up); members differ by seed; with ``run_dir`` each epoch is checkpointed
  atomically and an interrupted call resumes from the last finished epoch.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import pathlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from xsomo import conventions as cv
from xsomo.model import rollout
from xsomo.exceptions import CheckpointError, MissingVariableError, XsomoValueError
from xsomo.model import EALSTM, ModelConfig, NormStats, TrainedModel
from xsomo.model.trained import atomic_write_bytes, load_torch_file

__all__ = ["DEMO_DEFAULTS", "TrainingData", "prepare_training_data", "train_lstm"]

logger = logging.getLogger(__name__)

#: Consistency penalty: pairs of probe windows added to a batch, as a fraction of ``batch_size``.
CONSISTENCY_PAIRS = 0.25

#: Fewest batches in an epoch (small data sets would otherwise get a step or two).
MIN_BATCHES = 25

#: Settings for a demo-size world that train a 3-layer cascade in about nine minutes on 2 CPU
#: cores without the consistency penalty (1.7-1.9x the CPU time with train_lstm's default).
#: Measured on demo worlds (one member per layer, median r against the truth at 300 random land
#: cells): hidden 32 x 120 steps 0.909 / 0.881 / 0.891; hidden 64 x 240 steps
#: 0.926 / 0.892 / 0.897; hidden 64 x 600 steps 0.939 / 0.914 / 0.911 (layers 1-3).
DEMO_DEFAULTS: dict[str, Any] = {
    "ensemble": 2,
    "hidden": 64,
    "lookback": 365,
    "seq_length": 365,
    "epochs": 10,
    "steps_per_epoch": 40,
    "batch_size": 64,
    "lr": 3e-3,
    "patience": 4,
}


# ----------------------------------------------------------------------------- data
@dataclass
class TrainingData:
    """Contiguous arrays of the target cells (raw, un-normalised).

    ``dynamic`` ``(cells, time, n_dynamic)``, ``static`` ``(cells, n_static)``,
    ``target`` ``(cells, n_layers, time)`` (NaN = no target), ``lat``/``lon`` ``(cells,)``.
    """

    dynamic: np.ndarray
    static: np.ndarray
    target: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    time: np.ndarray
    dynamic_names: tuple[str, ...]
    static_names: tuple[str, ...]
    layers: tuple[int, ...]


def _match_cells(drivers: xr.Dataset, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row/column of each target cell on the drivers grid, and which matched (half-cell tolerance)."""
    glat = drivers[cv.LAT].values.astype(float)
    glon = drivers[cv.LON].values.astype(float)
    res_lat = float(np.median(np.abs(np.diff(glat)))) if glat.size > 1 else cv.RESOLUTION
    res_lon = float(np.median(np.abs(np.diff(glon)))) if glon.size > 1 else cv.RESOLUTION
    i = np.abs(glat[None, :] - lat[:, None]).argmin(axis=1)
    j = np.abs(glon[None, :] - lon[:, None]).argmin(axis=1)
    ok = (np.abs(glat[i] - lat) <= res_lat / 2 + 1e-9) & (np.abs(glon[j] - lon) <= res_lon / 2 + 1e-9)
    return i, j, ok


def prepare_training_data(
    drivers: xr.Dataset,
    targets: xr.Dataset,
    *,
    layers: Sequence[int] = cv.LAYER_NUMBERS,
    dynamic: Sequence[str] = cv.DYNAMIC_NAMES,
    static: Sequence[str] = cv.STATIC_NAMES,
) -> TrainingData:
    """Read the inputs and targets of the target cells into contiguous arrays.

    Raises
    ------
    MissingVariableError
        If the drivers lack an input or the targets lack ``sm`` or a layer.
    XsomoValueError
        If no target cell lies on the drivers' grid or the periods do not overlap.
    """
    missing = [v for v in (*dynamic, *static) if v not in drivers]
    if missing:
        raise MissingVariableError(
            f"drivers lack the model inputs {missing}; have {sorted(map(str, drivers.data_vars))}"
        )
    if cv.SM not in targets:
        raise MissingVariableError(f"targets have no {cv.SM!r} variable; have {sorted(map(str, targets.data_vars))}")
    sm = targets[cv.SM]
    have_layers = [int(v) for v in targets[cv.LAYER].values] if cv.LAYER in targets.coords else []
    lacking = [lay for lay in layers if lay not in have_layers]
    if lacking:
        raise MissingVariableError(f"targets lack layers {lacking}; have {have_layers}")
    lat = np.asarray(targets[cv.LAT].values, dtype=float).reshape(-1)
    lon = np.asarray(targets[cv.LON].values, dtype=float).reshape(-1)
    i, j, ok = _match_cells(drivers, lat, lon)
    if not ok.any():
        raise XsomoValueError(
            "no target cell lies on the drivers' grid (matched by lat/lon within half a cell); "
            "check that targets and drivers cover the same region"
        )
    if not ok.all():
        logger.warning("%d of %d target cells lie outside the drivers' grid and are ignored", (~ok).sum(), ok.size)
    cells = np.flatnonzero(ok)
    time_index = drivers.indexes[cv.TIME]
    sm = sm.sel({cv.LAYER: list(layers)}).isel({sm.dims[0] if "cell" not in sm.dims else "cell": cells})
    sm = sm.reindex({cv.TIME: time_index})
    tgt = sm.transpose("cell", cv.LAYER, cv.TIME).values.astype("float32")
    if not np.isfinite(tgt).any():
        raise XsomoValueError("targets and drivers share no period with data; check their time axes")
    sel = {cv.LAT: xr.DataArray(i[cells], dims="cell"), cv.LON: xr.DataArray(j[cells], dims="cell")}
    sub = drivers[[*dynamic, *static]].isel(sel).compute()
    dyn = np.stack([sub[v].transpose("cell", cv.TIME).values for v in dynamic], axis=-1).astype("float32")
    sta = np.stack([sub[v].values for v in static], axis=-1).astype("float32")
    return TrainingData(
        dynamic=np.ascontiguousarray(dyn),
        static=sta,
        target=np.ascontiguousarray(tgt),
        lat=lat[cells],
        lon=lon[cells],
        time=time_index.values,
        dynamic_names=tuple(dynamic),
        static_names=tuple(static),
        layers=tuple(int(v) for v in layers),
    )


def probe_grid_cells(drivers: xr.Dataset, data: TrainingData, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of ``n`` random grid cells without targets but with finite statics.

    The cells :func:`train_lstm` adds for the consistency penalty (same ``seed``).
    """
    static_ok = None
    for v in data.static_names:
        ok = np.isfinite(np.asarray(drivers[v].transpose(cv.LAT, cv.LON).values, dtype=float))
        static_ok = ok if static_ok is None else static_ok & ok
    if static_ok is None:
        return np.empty(0, int), np.empty(0, int)
    i, j, _ = _match_cells(drivers, data.lat, data.lon)
    static_ok[i, j] = False  # target cells are in the training data already (or held out)
    rows, cols = np.nonzero(static_ok)
    take = np.sort(np.random.default_rng([int(seed), 8]).choice(rows.size, min(int(n), rows.size), replace=False))
    return rows[take], cols[take]


def _probe_inputs(
    drivers: xr.Dataset, data: TrainingData, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs of the :func:`probe_grid_cells`: ``dynamic (n, time, n_dynamic)``, ``static (n, n_static)``.

    These cells have no soil-moisture target; the consistency penalty uses them to teach
    the network to forget its initial state wherever it will be run, not only at stations.
    """
    rows, cols = probe_grid_cells(drivers, data, n, seed)
    sel = {cv.LAT: xr.DataArray(rows, dims="cell"), cv.LON: xr.DataArray(cols, dims="cell")}
    sub = drivers[[*data.dynamic_names, *data.static_names]].isel(sel).compute()
    dyn = np.stack([sub[v].transpose("cell", cv.TIME).values for v in data.dynamic_names], axis=-1)
    sta = np.stack([sub[v].values for v in data.static_names], axis=-1)
    return np.ascontiguousarray(dyn, dtype="float32"), sta.astype("float32")


def _nan_stats(values: np.ndarray, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    mean = np.nanmean(values.astype("float64"), axis=axis)
    std = np.nanstd(values.astype("float64"), axis=axis)
    std = np.where(~np.isfinite(std) | (std < 1e-8), 1.0, std)
    return np.nan_to_num(mean), std


def compute_stats(config: ModelConfig, data: TrainingData, train_cells: np.ndarray) -> NormStats:
    """z-score statistics from the training cells only (after the input transforms)."""
    from xsomo.model.config import apply_transform

    dyn = data.dynamic[train_cells].astype("float64")
    for k, name in enumerate(config.dynamic):
        if name in config.transforms:
            dyn[..., k] = apply_transform(dyn[..., k], config.transforms[name])
    sta = data.static[train_cells].astype("float64")
    for k, name in enumerate(config.static):
        if name in config.transforms:
            sta[..., k] = apply_transform(sta[..., k], config.transforms[name])
    dm, ds = _nan_stats(dyn, (0, 1))
    sm_, ss = _nan_stats(sta, (0,))
    tm, ts = _nan_stats(data.target[train_cells], (0, 2))
    return NormStats(dm, ds, sm_, ss, tm, ts)


# ----------------------------------------------------------------------------- helpers
def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _window_starts(mask: np.ndarray, lookback: int, seq_length: int) -> tuple[np.ndarray, np.ndarray]:
    """All (cell, start) whose supervised days hold at least one target."""
    n_cells, n_time = mask.shape
    total = lookback + seq_length
    if n_time < total:
        return np.empty(0, int), np.empty(0, int)
    cs = np.concatenate([np.zeros((n_cells, 1), np.int64), np.cumsum(mask, axis=1)], axis=1)
    starts = np.arange(n_time - total + 1)
    counts = cs[:, starts + total] - cs[:, starts + lookback]
    c, s = np.nonzero(counts > 0)
    return c, s


def _random_states(batch: int, hidden: int, scale: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random initial ``(h, c)`` for training windows.

    Half the windows get independent per-unit states (h uniform in [-1, 1], c normal),
    half get coherent states (every unit near one random level ``a`` in [-1, 1], the
    kind of extreme state :func:`xsomo.model.rollout.convergence_distance` starts from), all
    scaled by ``scale`` (h clipped to [-1, 1]).
    """
    h = torch.rand(batch, hidden, device=device) * 2 - 1
    c = torch.randn(batch, hidden, device=device)
    level = (torch.rand(batch, 1, device=device) * 2 - 1).expand(-1, hidden)
    coherent = torch.rand(batch, 1, device=device) < 0.5
    h = torch.where(coherent, level + 0.1 * h, h)
    c = torch.where(coherent, level + 0.1 * c, c)
    return (h * scale).clamp(-1.0, 1.0), c * scale


def _consistency_penalty(clean: torch.Tensor, pairs: int) -> torch.Tensor:
    """Largest squared difference (over days) between two runs of a window, mean over windows.

    ``clean`` ``(batch, days)`` holds dropout-free outputs; its first ``pairs`` rows and its
    last ``pairs`` rows are the same windows started from different initial states. The
    worst day, not the mean over days, is penalised: the convergence check is a maximum,
    and on the demo world the mean let a few dry-season days at arid cells keep
    differences of 5e-3 m3 m-3 after 365 days.
    """
    if pairs <= 0:
        return clean.new_zeros(())
    return ((clean[:pairs] - clean[-pairs:]) ** 2).amax(dim=-1).mean()


def _masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mask = torch.isfinite(target)
    diff = torch.where(mask, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return (diff**2).sum() / mask.sum().clamp(min=1)


def _state_bytes(obj: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _progress(iterable: Any, *, enabled: bool, **kw: Any) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


# ----------------------------------------------------------------------------- one member
def _train_member(
    *,
    x_dyn: torch.Tensor,
    x_stat: torch.Tensor,
    y: torch.Tensor,
    train_cells: np.ndarray,
    val_cells: np.ndarray,
    config: ModelConfig,
    layer: int,
    member: int,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int,
    init_state_scale: float,
    min_warmup: int,
    consistency: float,
    probe_cells: np.ndarray | None,
    steps_per_epoch: int | None,
    device: torch.device,
    mixed_precision: bool,
    checkpoint: pathlib.Path | None,
    progress: bool,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train one network; returns the best state dict and its history."""
    lb, n_sup = config.lookback, config.seq_length
    total = lb + n_sup
    mask = torch.isfinite(y).cpu().numpy()
    cand_c, cand_s = _window_starts(mask[train_cells], lb, n_sup)
    if cand_c.size == 0:
        raise XsomoValueError(
            f"layer {layer}: no training window of {lb} + {n_sup} days holds a target; "
            "shorten lookback/seq_length or provide longer records"
        )
    cand_c = train_cells[cand_c]
    n_sup_days = int(mask[train_cells].sum())
    batches = steps_per_epoch or max(MIN_BATCHES, math.ceil(n_sup_days / n_sup / batch_size))
    member_seed = int(seed) * 1000 + layer * 100 + member
    _seed_all(member_seed)
    net = EALSTM(
        config.n_inputs(layer), config.n_static, config.hidden,
        dropout=config.dropout, initial_forget_bias=config.initial_forget_bias,
    ).to(device)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs), eta_min=lr * 0.05)
    history: dict[str, Any] = {"train_loss": [], "val_loss": [], "seconds": []}
    # consistency: `2 * pairs` probe windows follow the batch's `batch_size` windows: `pairs`
    # windows (any cell of `probe_cells`, any start), then the same again from other states
    pairs = max(1, round(batch_size * CONSISTENCY_PAIRS)) if consistency > 0 else 0
    if probe_cells is None or probe_cells.size == 0:
        probe_cells = train_cells
    n_starts = int(y.shape[-1]) - total + 1
    if pairs:
        history["consistency"] = []
    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    best_val, best_epoch, start_epoch = math.inf, -1, 0
    if checkpoint is not None and checkpoint.is_file():
        ck = load_torch_file(checkpoint)
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        best_state = ck["best_state"]
        best_val = float(ck["best_val"])
        best_epoch = int(ck["best_epoch"])
        start_epoch = int(ck["epoch"]) + 1
        history = json.loads(bytes(ck["history"].tolist()).decode())
        logger.info("layer %d member %d: resumed after epoch %d", layer, member, start_epoch - 1)
        if bool(ck["finished"]):
            return best_state, history
    arange = torch.arange(total, device=device)
    autocast = mixed_precision and device.type == "cuda"
    bar = _progress(
        range(start_epoch, epochs), enabled=progress, desc=f"layer {layer} member {member}",
        unit="epoch", initial=start_epoch, total=epochs, leave=False,
    )  # fmt: skip
    finished = False
    for epoch in bar:
        t0 = time.perf_counter()
        rng = np.random.default_rng([member_seed, epoch])
        torch.manual_seed(member_seed * 7919 + epoch)
        net.train()
        losses, penalties = [], []
        for _ in range(batches):
            pick = rng.integers(0, cand_c.size, batch_size)
            cells_np, starts_np = cand_c[pick], cand_s[pick]
            if pairs:
                pc = probe_cells[rng.integers(0, probe_cells.size, pairs)]
                ps = rng.integers(0, n_starts, pairs)
                cells_np = np.concatenate([cells_np, pc, pc])
                starts_np = np.concatenate([starts_np, ps, ps])
            cells = torch.from_numpy(cells_np).to(device)
            starts = torch.from_numpy(starts_np).to(device)
            # a shorter warm-up for this batch (same supervised days): forget sooner
            skip = int(rng.integers(0, lb - min_warmup + 1)) if min_warmup < lb else 0
            idx = starts[:, None] + arange[None, skip:]
            xd = x_dyn[cells[:, None], idx]
            xs = x_stat[cells]
            yt = y[cells[:, None], idx[:, lb - skip :]]
            state = None
            if init_state_scale > 0 or pairs:
                # (a zero state for the first copies when init_state_scale is 0)
                n_win = cells.shape[0]
                state = _random_states(n_win, config.hidden, init_state_scale or 1.0, device)
                if init_state_scale <= 0:
                    keep = torch.arange(n_win, device=device)[:, None] >= n_win - pairs
                    state = (state[0] * keep, state[1] * keep)
                if pairs:
                    # second copies: coherent extreme states, every unit near +-[0.5, 1]
                    sign = torch.where(torch.rand(pairs, 1, device=device) < 0.5, -1.0, 1.0)
                    level = sign * (0.5 + 0.5 * torch.rand(pairs, 1, device=device))
                    noise = 0.1 * torch.randn(pairs, config.hidden, device=device)
                    hb = (level + noise).clamp(-1.0, 1.0)
                    cb = level + noise
                    state = (torch.cat([state[0][:-pairs], hb]), torch.cat([state[1][:-pairs], cb]))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                hidden_seq, _ = net.lstm(xd, xs, state)
                out = net.head(net.dropout(hidden_seq))
            loss = _masked_mse(out[:, lb - skip :, 0].float(), yt)
            if pairs:
                # dropout-free outputs of the probe pairs over the second half of the
                # warm-up and the supervised days
                p0 = max(0, lb // 2 - skip)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    clean = net.head(hidden_seq[-2 * pairs :, p0:])[..., 0].float()
                penalty = _consistency_penalty(clean, pairs)
                loss = loss + consistency * penalty
                penalties.append(float(penalty.detach()))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
        sched.step()
        history["train_loss"].append(float(np.mean(losses)))
        if pairs:
            history["consistency"].append(float(np.mean(penalties)))
        val = _validate(net, x_dyn, x_stat, y, val_cells, lb, device) if val_cells.size else float(np.mean(losses))
        history["val_loss"].append(val)
        history["seconds"].append(time.perf_counter() - t0)
        if val < best_val:
            best_val, best_epoch = val, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        if progress and hasattr(bar, "set_postfix"):
            bar.set_postfix(train=f"{history['train_loss'][-1]:.3f}", val=f"{val:.3f}")
        finished = epoch + 1 >= epochs or (patience > 0 and epoch - best_epoch >= patience)
        if checkpoint is not None:
            ck = {
                "net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "best_state": best_state, "best_val": torch.tensor(best_val, dtype=torch.float64),
                "best_epoch": torch.tensor(best_epoch), "epoch": torch.tensor(epoch),
                "finished": torch.tensor(finished),
                "history": torch.tensor(list(json.dumps(history).encode()), dtype=torch.uint8),
            }  # fmt: skip
            atomic_write_bytes(checkpoint, _state_bytes(ck))
        if finished:
            break
    history["best_epoch"] = best_epoch
    history["best_val_loss"] = best_val
    return {k: v.cpu() for k, v in best_state.items()}, history


@torch.no_grad()
def _validate(
    net: EALSTM,
    x_dyn: torch.Tensor,
    x_stat: torch.Tensor,
    y: torch.Tensor,
    cells: np.ndarray,
    lookback: int,
    device: torch.device,
    chunk: int = 256,
) -> float:
    """MSE of z-scored sm on validation cells from a continuous roll-out, after the spin-up."""
    net.eval()
    num, den = 0.0, 0
    for c0 in range(0, cells.size, chunk):
        c = torch.from_numpy(cells[c0 : c0 + chunk]).to(device)
        out, _ = net(x_dyn[c], x_stat[c])
        pred = out[:, lookback:, 0]
        tgt = y[c][:, lookback:]
        m = torch.isfinite(tgt)
        num += float(((pred - torch.nan_to_num(tgt)) ** 2)[m].sum())
        den += int(m.sum())
    net.train()
    return num / den if den else math.inf


# ----------------------------------------------------------------------------- public
def train_lstm(
    drivers: xr.Dataset,
    targets: xr.Dataset,
    *,
    layers: Sequence[int] = (1, 2, 3),
    ensemble: int = 5,
    lookback: int = 365,
    seq_length: int = 365,
    hidden: int = 128,
    dropout: float = 0.4,
    initial_forget_bias: float = 3.0,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-3,
    patience: int = 5,
    val_fraction: float = 0.2,
    device: str | torch.device = "auto",
    seed: int = 0,
    log_precip: bool = True,
    clip_negative: bool = False,
    init_state_scale: float = 1.0,
    min_warmup: int | None = None,
    consistency: float = 30.0,
    consistency_cells: int = 512,
    steps_per_epoch: int | None = None,
    mixed_precision: bool = False,
    dynamic: Sequence[str] | None = None,
    static: Sequence[str] | None = None,
    cells: np.ndarray | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    threads: int | None = None,
    preset: str | None = None,
) -> TrainedModel:
    """Train the EA-LSTM cascade on the cells that have targets.

    Parameters
    ----------
    drivers
        Drivers Dataset (docs/internals.md §2): dynamic ``(time, lat, lon)`` and static
        ``(lat, lon)`` inputs; may be dask-backed (only target cells are read).
    targets
        Targets Dataset ``sm(cell, layer, time)`` with ``lat(cell)``, ``lon(cell)``.
    layers
        Layers to model, in cascade order.
    ensemble
        Members per layer (seeds ``seed``-derived, different per member).
    lookback, seq_length
        Warm-up days and supervised days of a training window.
    hidden, dropout, initial_forget_bias
        Network settings.
    epochs, batch_size, lr, patience
        Optimisation: epochs, windows per batch, Adam learning rate (cosine decay),
        early-stopping patience in epochs.
    min_warmup
        Shortest warm-up of a training batch: each batch draws its warm-up length from
        ``min_warmup … lookback`` days, to make the network forget its initial state sooner.
        Default ``lookback`` (off): on the demo world ``lookback // 2`` gave larger, not
        smaller, convergence distances in one trial (issue-8 notes).
    steps_per_epoch
        Batches per epoch (default: enough to supervise every target day about once, at
        least :data:`MIN_BATCHES`).
    val_fraction
        Fraction of target cells held out for early stopping (0 disables).
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
    seed
        Seed of the cell split, window sampling and initial weights.
    log_precip
        Feed ``log1p(precipitation)``.
    clip_negative
        Set negative outputs to 0.
    init_state_scale
        Scale of the random initial state of every training window (0: zero state).
        Random states teach the network to forget its initial state (issue 8).
    consistency
        Weight of the consistency penalty (0: off; default 30). Each batch gets
        ``batch_size * CONSISTENCY_PAIRS`` probe windows (training cells and
        ``consistency_cells``, any start), each run twice -- from a random initial state and
        from a coherent extreme one -- and ``consistency`` times the largest squared
        difference of the z-scored, dropout-free outputs over the second half of the
        warm-up and the supervised days (mean over the pairs) is added to the loss
        (training takes about 1.7-1.9 times the CPU time). The network learns to forget its
        initial state within the warm-up, so that its continuous roll-out passes the
        convergence check of :func:`xsomo.model.rollout.convergence_distance` after ``lookback``
        days. Measured on the seed-0 demo world with :data:`DEMO_DEFAULTS` (3259 land
        cells, both members; median r at 300 random cells without stations):

        ============  ====  ===============================  ======================
        weight        seed  largest distance after 365 d     median r (layers 1-3)
        ============  ====  ===============================  ======================
        0             0     2.3e-2 / 3.2e-2 / 3.1e-2         0.941 / 0.913 / 0.904
        0             1     2.0e-2 / 3.8e-2 / 2.9e-2         0.940 / 0.910 / 0.902
        0             2     1.4e-2 / 3.7e-2 / 4.8e-2         0.940 / 0.906 / 0.908
        30            0     5.7e-5 / 5.1e-4 / 5.3e-4         0.939 / 0.910 / 0.905
        30            1     8.0e-5 / 1.4e-4 / 5.2e-4         0.943 / 0.917 / 0.913
        100           0     1.3e-5 / 1.5e-4 / 3.7e-4         0.934 / 0.908 / 0.904
        100           1     3.5e-5 / 2.3e-4 / 2.2e-4         0.938 / 0.914 / 0.911
        100           2     6.4e-5 / 9.6e-5 / 2.4e-4         0.933 / 0.908 / 0.913
        ============  ====  ===============================  ======================

        After 730 days every weighted model is below 5e-6 (unweighted: up to 2.4e-2).
    consistency_cells
        With ``consistency > 0``: random grid cells without targets (finite statics) whose
        inputs join the training data for the penalty only, so that the network learns to
        forget wherever it will be run, not only at the stations (0: training cells only).
    mixed_precision
        bfloat16 autocast on CUDA.
    dynamic, static
        Input names (default: the canonical ones, docs/internals.md).
    cells
        Optional indices of target cells to train on (cross-validation folds).
    run_dir
        Folder for per-epoch checkpoints; a rerun with the same arguments resumes.
    progress
        Show tqdm progress bars.
    threads
        torch intra-op threads while training on the CPU (restored afterwards). Default:
        1 for ``hidden <= 64`` -- the recurrent matrices are then too small for threads to
        pay off, and on a busy machine spinning OpenMP threads were measured to make a
        training step 20-80 times slower -- else torch's setting.
    preset
        ``"demo"``: :data:`DEMO_DEFAULTS` for any option not given explicitly.

    Returns
    -------
    TrainedModel
    """
    if preset is not None:
        if preset != "demo":
            raise XsomoValueError(f"unknown training preset {preset!r}; known: 'demo'")
        return train_lstm(
            drivers, targets,
            **{**DEMO_DEFAULTS, **_explicit(locals())},
        )  # fmt: skip
    if not (consistency >= 0 and math.isfinite(consistency)):
        raise XsomoValueError(f"consistency must be a finite weight >= 0, got {consistency!r}")
    if int(consistency_cells) < 0:
        raise XsomoValueError(f"consistency_cells must be >= 0, got {consistency_cells!r}")
    dynamic = tuple(dynamic or cv.DYNAMIC_NAMES)
    static = tuple(static or cv.STATIC_NAMES)
    transforms = {"precipitation": "log1p"} if log_precip and "precipitation" in dynamic else {}
    config = ModelConfig(
        dynamic=dynamic, static=static, layers=tuple(layers), ensemble=ensemble, lookback=lookback,
        seq_length=seq_length, hidden=hidden, dropout=dropout, initial_forget_bias=initial_forget_bias,
        transforms=transforms, clip_negative=clip_negative,
        training={
            "epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience,
            "val_fraction": val_fraction, "seed": seed, "init_state_scale": init_state_scale,
            "min_warmup": min_warmup, "consistency": consistency,
            "consistency_cells": consistency_cells if consistency > 0 else 0, "mixed_precision": mixed_precision,
        },
    )  # fmt: skip
    dev = rollout.torch_device(device)
    if threads is None and dev.type == "cpu" and hidden <= 64:
        threads = 1
    old_threads = torch.get_num_threads()
    if threads is not None and dev.type == "cpu":
        torch.set_num_threads(int(threads))
    try:
        return _train(
            config, drivers, targets, dev=dev, cells=cells, val_fraction=val_fraction, seed=seed,
            run_dir=run_dir, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
            init_state_scale=init_state_scale, steps_per_epoch=steps_per_epoch, consistency=float(consistency),
            consistency_cells=int(consistency_cells),
            min_warmup=lookback if min_warmup is None else min(int(min_warmup), lookback),
            mixed_precision=mixed_precision, progress=progress,
        )  # fmt: skip
    finally:
        torch.set_num_threads(old_threads)


def _train(
    config: ModelConfig,
    drivers: xr.Dataset,
    targets: xr.Dataset,
    *,
    dev: torch.device,
    cells: np.ndarray | None,
    val_fraction: float,
    seed: int,
    run_dir: str | os.PathLike[str] | None,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int,
    init_state_scale: float,
    steps_per_epoch: int | None,
    min_warmup: int,
    consistency: float,
    consistency_cells: int,
    mixed_precision: bool,
    progress: bool,
) -> TrainedModel:
    dynamic, static = config.dynamic, config.static
    data = prepare_training_data(drivers, targets, layers=config.layers, dynamic=dynamic, static=static)
    usable = np.isfinite(data.static).all(axis=1) & np.isfinite(data.target).any(axis=(1, 2))
    if cells is not None:
        keep = np.zeros(usable.size, bool)
        keep[np.asarray(cells, dtype=int)] = True
        usable &= keep
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        raise XsomoValueError("no target cell has both finite statics and at least one target value")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(idx)
    n_val = round(val_fraction * idx.size) if idx.size >= 5 else 0
    val_cells, train_cells = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    stats = compute_stats(config, data, train_cells)
    _check_run_dir(run_dir, config, stats, train_cells)
    probe_cells = None
    if consistency > 0 and consistency_cells > 0:
        # cells without targets join the data (targets NaN) for the consistency penalty only
        p_dyn, p_sta = _probe_inputs(drivers, data, consistency_cells, seed)
        n0 = data.dynamic.shape[0]
        probe_cells = np.concatenate([train_cells, n0 + np.arange(p_dyn.shape[0])])
        nan_t = np.full((p_dyn.shape[0], *data.target.shape[1:]), np.nan, dtype=data.target.dtype)
        data = TrainingData(
            dynamic=np.concatenate([data.dynamic, p_dyn]), static=np.concatenate([data.static, p_sta]),
            target=np.concatenate([data.target, nan_t]), lat=data.lat, lon=data.lon, time=data.time,
            dynamic_names=data.dynamic_names, static_names=data.static_names, layers=data.layers,
        )  # fmt: skip
    # normalised tensors, NaN inputs filled with the mean (as in the continuous roll-out)
    shell = TrainedModel.__new__(TrainedModel)
    shell.config, shell.stats = config, stats
    xd = np.nan_to_num(shell.prepare_dynamic(data.dynamic))
    xs = torch.from_numpy(np.nan_to_num(shell.prepare_static(data.static))).to(dev)
    weights: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    history: dict[str, Any] = {}
    t_start = time.perf_counter()
    for k, layer in enumerate(config.layers):
        y = (data.target[:, k] - stats.target_mean[k]) / stats.target_std[k]
        y_t = torch.from_numpy(y.astype("float32")).to(dev)
        upper = config.upper_layers(layer)
        sim = None
        if upper:
            partial = _partial_model(config, stats, weights, upper)
            sim = rollout.predict_block(
                partial, data.dynamic, data.static, mode="continuous", spinup=1, device=dev
            )  # (n_upper, members, cells, time) m3 m-3
        for m in range(config.ensemble):
            x = xd
            if sim is not None:
                cas = [
                    np.nan_to_num(partial.normalise_target(sim[j, m], up))[..., None]
                    for j, up in enumerate(upper)
                ]
                x = np.concatenate([xd, *cas], axis=-1).astype("float32")
            ckpt = pathlib.Path(run_dir) / f"layer{layer}_member{m}.pt" if run_dir is not None else None
            state, hist = _train_member(
                x_dyn=torch.from_numpy(np.ascontiguousarray(x)).to(dev), x_stat=xs, y=y_t,
                train_cells=train_cells, val_cells=val_cells, config=config, layer=layer, member=m,
                seed=seed, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                init_state_scale=init_state_scale, min_warmup=min_warmup, consistency=consistency, probe_cells=probe_cells, steps_per_epoch=steps_per_epoch, device=dev,
                mixed_precision=mixed_precision, checkpoint=ckpt, progress=progress,
            )  # fmt: skip
            weights[(layer, m)] = state
            history[f"layer{layer}_member{m}"] = hist
            logger.info(
                "layer %d member %d: best val loss %.4f at epoch %d",
                layer, m, hist["best_val_loss"], hist["best_epoch"],
            )  # fmt: skip
    history["seconds"] = time.perf_counter() - t_start
    history["validation_cells"] = np.column_stack([data.lat[val_cells], data.lon[val_cells]]).tolist()
    return TrainedModel(
        config,
        stats,
        weights,
        history=history,
        training_cells=np.column_stack([data.lat[train_cells], data.lon[train_cells]]),
        metadata={"trained_with": "xsomo.model.training.train_lstm", "device": str(dev)},
    )


def _explicit(local: dict[str, Any]) -> dict[str, Any]:
    """Options of a ``train_lstm`` call that differ from the function defaults."""
    import inspect

    sig = inspect.signature(train_lstm)
    out = {}
    for name, p in sig.parameters.items():
        if p.kind is not p.KEYWORD_ONLY or name == "preset":
            continue
        value = local[name]
        if value is not p.default and not (isinstance(value, int | float | str | tuple) and value == p.default):
            out[name] = value
    return out


def _partial_model(
    config: ModelConfig, stats: NormStats, weights: dict[tuple[int, int], dict[str, torch.Tensor]], upper: tuple[int, ...]
) -> TrainedModel:
    idx = [config.layer_index(u) for u in upper]
    cfg = config.replace(layers=tuple(upper))
    st = NormStats(
        stats.dynamic_mean, stats.dynamic_std, stats.static_mean, stats.static_std,
        stats.target_mean[idx], stats.target_std[idx],
    )  # fmt: skip
    return TrainedModel(cfg, st, {k: v for k, v in weights.items() if k[0] in upper})


def _check_run_dir(
    run_dir: str | os.PathLike[str] | None, config: ModelConfig, stats: NormStats, train_cells: np.ndarray
) -> None:
    """Create ``run_dir`` with a run description, or check that it describes this run."""
    if run_dir is None:
        return
    path = pathlib.Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    desc = json.dumps(
        {"config": config.to_dict(), "stats": stats.to_dict(), "train_cells": train_cells.tolist()},
        sort_keys=True,
    )
    run_file = path / "run.json"
    if run_file.is_file():
        if run_file.read_text() != desc:
            raise CheckpointError(
                f"{path} holds checkpoints of a different training run (other data or settings); "
                "use another run_dir or delete this one"
            )
    else:
        atomic_write_bytes(run_file, desc.encode())
