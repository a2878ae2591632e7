"""Training of the EA-LSTM cascade: ``drivers.somo.train_lstm(targets)``.

Design (DESIGN.md, issue 4):

- The targets' cells are located on the drivers' grid with the one cell rule,
  :meth:`xsomo.conventions.GridSpec.snap` (a target cell off the grid is an error); their
  inputs are read once, in canonical units and the config's order
  (:func:`xsomo.model.inputs.inputs_at_cells`), into contiguous float32 arrays
  ``(cell, time, feature)``. The drivers' time axis must be daily without gaps
  (:func:`xsomo.model.inputs.check_daily_axis`, as for prediction).
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
- Validation cells are drawn per layer among the cells that have targets of that layer
  after the spin-up; with fewer than :data:`MIN_VAL_CELLS` such cells the layer is
  validated on its last days instead (a time split, with a warning), and with no
  validation possible the training loss picks the epoch (with a warning). A layer never
  keeps its initial weights.
- Before returning, the convergence distance of each trained layer is measured on the
  penalty's probe cells (:func:`xsomo.model.rollout.convergence_distance` after
  ``lookback`` days); the members above ``forget_tolerance`` are trained again with a doubled
  penalty (``forget_retries`` times; the others keep their weights), then a warning names the
  members that still do not forget and says the model needs a longer spin-up. On the paper
  preset's demo world one member of five failed (3.2e-3 against 2-8e-5 for the others,
  2026-12-03), and the retry trained all five again (the layer's first training: 31 min on 2 cores).
- Speed on the CPU (bench/bench_training.py; CPU time of one thread): large activations
  come from the heap while training (:func:`heap_allocations`; system time per demo-size
  step 0.44-0.60 s -> 0.02 s), dropout and the head run on the supervised days only, the
  probe pairs run the warm-up + 30 days in their own LSTM call, the EA-LSTM's loops through
  time run in C (:mod:`xsomo.model._ckernel`; three recurrent gates, no dispatcher cost per
  day), and the members of a layer train side by side in worker processes
  (:func:`member_workers`). Measured on a 2-core AMD EPYC with AVX-512 (2026-12-02): a
  demo-preset step (batch 64 + 32 probe windows, 365 + 365 days, 32 hidden) takes 0.028-0.035 CPU-s,
  0.85-1.00x a bare ``nn.LSTM`` step on the same windows timed in turn, penalty included (ten
  runs, median 0.88; 0.71x with oneDNN's fused LSTM before, the probe windows being 27 % more
  LSTM work); a paper-size step (batch 256, 128 hidden) 1.22-1.48x the bare step.
- Layers are trained in cascade order; a deeper layer gets the *simulated* soil moisture
  of the upper layers (continuous roll-out of the already trained members, same member),
  exactly as at inference.
- Early stopping on a validation split of cells (continuous roll-out, loss after the
  spin-up); members differ by seed; with ``run_dir`` each epoch is checkpointed
  atomically and an interrupted call resumes from the last finished epoch.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import logging
import math
import os
import pathlib
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from xsomo import conventions as cv
from xsomo.drivers import points
from xsomo.exceptions import (
    CheckpointError,
    GridMismatchError,
    MissingVariableError,
    XsomoValueError,
)
from xsomo.io.atomic import atomic_write_text
from xsomo.io.checkpoint import load_torch_file, save_torch_file
from xsomo.io.stations import refuse_duplicate_ids
from xsomo.model import rollout
from xsomo.model.config import PRESETS, ModelConfig, NormStats, TrainingConfig
from xsomo.model.ealstm import EALSTM
from xsomo.model.inputs import (
    check_daily_axis,
    input_units,
    inputs_at_cells,
    trailing_gaps,
    transform_inputs,
)
from xsomo.model.trained import TrainedModel
from xsomo.runtime import cpu_cores, exit_with_parent, resolve_device, user_stacklevel
from xsomo.targets.points import point_targets
from xsomo.targets.scaling import targets_grid
from xsomo.units import in_m3m3

__all__ = [
    "DEMO_DEFAULTS",
    "PRESETS",
    "LayerSplit",
    "TrainingConfig",
    "TrainingData",
    "compute_stats",
    "mask_unforced_targets",
    "prepare_training_data",
    "probe_grid_cells",
    "split_validation",
    "target_cells",
    "train_lstm",
    "training_config",
]

logger = logging.getLogger(__name__)

#: Consistency penalty: pairs of probe windows added to a batch, as a fraction of ``batch_size``.
CONSISTENCY_PAIRS = 0.25

#: Days after the warm-up that the penalty's probe windows run (those the convergence check of
#: :func:`xsomo.model.rollout.convergence_distance` compares).
PROBE_EXTRA_DAYS = rollout.CHECK_EXTRA_DAYS

#: Fewest batches in an epoch (small data sets would otherwise get a step or two).
MIN_BATCHES = 25

#: Fewest cells with targets of a layer for a validation split by cells (else by time).
MIN_VAL_CELLS = 5

#: The ``demo`` preset's settings that differ from the defaults (kept for callers of the
#: old dict; the preset itself is ``PRESETS["demo"]``).
DEMO_DEFAULTS: dict[str, Any] = {
    k: v for k, v in PRESETS["demo"].to_dict().items() if v != TrainingConfig().to_dict()[k]
}

#: Options of :func:`train_lstm` that are not training settings (where and how it runs).
RUN_OPTIONS = ("cells", "run_dir", "progress", "device", "threads", "workers", "client")


# ----------------------------------------------------------------------------- settings
def training_config(
    config: TrainingConfig | Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    **options: Any,
) -> TrainingConfig:
    """The :class:`TrainingConfig` of a :func:`train_lstm` call.

    ``options`` override ``config``, which overrides the ``preset`` (default: the
    defaults, i.e. the paper's settings). Unknown names are errors.

    >>> training_config(preset="demo", hidden=32).hidden
    32
    >>> training_config(preset="demo").ensemble
    2
    """
    if preset is not None and preset not in PRESETS:
        raise XsomoValueError(f"unknown training preset {preset!r}; known: {sorted(PRESETS)}")
    base = PRESETS[preset] if preset is not None else TrainingConfig()
    if config is not None:
        given = config.to_dict() if isinstance(config, TrainingConfig) else dict(config)
        if isinstance(config, TrainingConfig) and preset is not None:
            # only the settings of the config that differ from the defaults override the preset
            default = TrainingConfig().to_dict()
            given = {k: v for k, v in given.items() if v != default[k]}
        base = base.replace(**given)
    return base.replace(**options) if options else base


# ----------------------------------------------------------------------------- data
@dataclass
class TrainingData:
    """Contiguous arrays of the target cells (raw, canonical units, un-normalised).

    ``dynamic`` ``(cells, time, n_dynamic)``, ``static`` ``(cells, n_static)``,
    ``target`` ``(cells, n_layers, time)`` (NaN = no target), ``lat``/``lon`` ``(cells,)``
    the targets' coordinates, ``rows``/``cols`` ``(cells,)`` their cells on the drivers' grid.
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
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, int))
    cols: np.ndarray = field(default_factory=lambda: np.empty(0, int))


def _grid_of(drivers: xr.Dataset) -> cv.GridSpec:
    """The regular grid of the drivers' ``lat``/``lon`` (either order), or an error naming the problem."""
    lat = np.asarray(drivers[cv.LAT].values, float)
    lon = np.asarray(drivers[cv.LON].values, float)
    if lat.size == 0 or lon.size == 0:
        raise GridMismatchError("the drivers have an empty lat/lon grid")
    grid = cv.GridSpec.from_coords(lat, lon)
    tol = 1e-6 + 1e-3 * grid.resolution
    if grid.nlat != lat.size or grid.nlon != lon.size or not (
        np.allclose(grid.lat, np.sort(lat), atol=tol) and np.allclose(grid.lon, np.sort(lon), atol=tol)
    ):
        hint = cv.lon_wrap_hint(lon)
        raise GridMismatchError(
            f"the drivers' lat/lon ({lat.size} x {lon.size}) are not a regular grid of {grid.resolution:g}°."
            + (hint or " Regrid them (xsomo.regrid) before training.")
        )
    return grid


def _check_target_grid(targets: xr.Dataset, drivers: xr.Dataset) -> None:
    """Refuse targets scaled on another grid than the drivers' (:func:`xsomo.scale_to` writes its grid).

    Targets scaled to a 0.25° reference (ERA5 instead of ERA5-Land) are 0.25° cells; snapped
    onto 0.1° drivers, 74 of 83 landed in a cell holding none of their stations.
    """
    tg, dg = targets_grid(targets), _grid_of(drivers)
    step = dg.resolution
    off = (tg.west - dg.west) / step
    if abs(tg.resolution - step) > 1e-3 * step or abs(off - round(off)) > 1e-2:
        raise GridMismatchError(
            f"the targets were scaled on a grid of {tg.resolution:g}° (west edge {tg.west:g}°) but the drivers' "
            f"grid is {step:g}° (west edge {dg.west:g}°): each target would train a cell that need not hold its "
            "stations. Scale the stations to a reference on the drivers' grid (e.g. ERA5-Land at 0.1°, not ERA5 "
            "at 0.25°), or pass scale_to(..., grid=<the drivers' GridSpec>)"
        )


def _check_target_lattice(lat: np.ndarray, lon: np.ndarray, drivers: xr.Dataset) -> None:
    """Refuse target cells (without a ``grid`` attribute) lying on a finer lattice than the drivers' grid.

    Targets of 0.1° cells had been snapped onto 0.2° drivers without a word (two targets in
    one cell, and the model recorded the targets' coordinates as its training cells). Targets
    on the drivers' lattice are apart by whole cells (a shift of the whole set by less than
    half a cell is matched, as before).
    """
    step = _grid_of(drivers).resolution
    for name, values in ((cv.LAT, lat), (cv.LON, lon)):
        v = np.unique(np.round(np.asarray(values, float), 9))
        gaps = np.diff(v) / step
        bad = np.flatnonzero(np.abs(gaps - np.round(gaps)) > 0.05)
        if bad.size:
            k = bad[0]
            raise GridMismatchError(
                f"target cells at {name} {v[k]:.4f} and {v[k + 1]:.4f} are {v[k + 1] - v[k]:g}° apart, not a whole "
                f"number of the drivers' {step:g}° cells: the targets were made on another grid (their cells "
                "would be snapped onto the drivers' cells, several into one). Scale the stations on the "
                "drivers' grid (scale_to(..., grid=<the drivers' GridSpec>), which also records it in the "
                "targets' 'grid' attribute), or give drivers on the targets' grid"
            )


def target_cells(
    drivers: xr.Dataset, lat: np.ndarray, lon: np.ndarray, keys: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column on the drivers' grid of every target cell (:meth:`GridSpec.snap`).

    With point drivers the station at each target (``keys``: the targets'
    ``network.station_name``, which tells stations at the same place apart;
    :func:`xsomo.drivers.points.match_points`), column 0.

    Raises
    ------
    GridMismatchError
        If a target cell lies off the drivers' grid (naming the cells and the grid).
    """
    if points.is_points(drivers):  # point drivers (issue 18): the station at the target, column 0
        idx = points.match_points(drivers, lat, lon, keys=keys)
        return idx, np.zeros_like(idx)
    grid = _grid_of(drivers)
    lat = np.asarray(lat, float).reshape(-1)
    # in the drivers' longitude convention (targets in 0..360 on a -180..180 grid were "off the grid")
    lon = cv.lon_like_grid(np.asarray(lon, float).reshape(-1), drivers[cv.LON].values)
    i, j = grid.snap(lat, lon)
    off = np.flatnonzero((i < 0) | (j < 0))
    if off.size:
        shown = ", ".join(f"cell {k} ({lat[k]:.4f}, {lon[k]:.4f})" for k in off[:5])
        more = f" and {off.size - 5} more" if off.size > 5 else ""
        raise GridMismatchError(
            f"{off.size} of {lat.size} target cells lie off the drivers' grid ({grid.south:g}-{grid.north:g}°N, "
            f"{grid.west:g}-{grid.east:g}°E): {shown}{more}. Give drivers covering every target cell, or "
            "select the targets inside them (e.g. targets.where(inside, drop=True))"
        )
    # snap indexes the ascending axes: map to the drivers' own order
    if drivers[cv.LAT].size > 1 and float(drivers[cv.LAT][0]) > float(drivers[cv.LAT][-1]):
        i = grid.nlat - 1 - i
    if drivers[cv.LON].size > 1 and float(drivers[cv.LON][0]) > float(drivers[cv.LON][-1]):
        j = grid.nlon - 1 - j
    return i, j


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
    GridMismatchError
        If a target cell lies off the drivers' grid, or the drivers' time axis is not daily.
    XsomoValueError
        If the periods of targets and drivers do not overlap.
    """
    missing = [v for v in (*dynamic, *static) if v not in drivers]
    if missing:
        raise MissingVariableError(
            f"drivers lack the model inputs {missing}; have {sorted(map(str, drivers.data_vars))}"
        )
    if cv.SM not in targets:
        raise MissingVariableError(f"targets have no {cv.SM!r} variable; have {sorted(map(str, targets.data_vars))}")
    cv.check_time_zone(drivers, "drivers")
    cv.check_time_zone(targets, "targets")
    check_daily_axis(drivers.indexes[cv.TIME], source="drivers")
    if cv.STATION in targets[cv.SM].dims and not points.is_points(drivers):
        # raw station series on gridded drivers had trained without a word: unscaled sensors, several
        # per cell each as its own target (domain mean 0.03 m3 m-3 lower; hostile-input QA)
        raise XsomoValueError(
            "the targets are station series (dimension 'station') but the drivers are gridded: scale the stations "
            "to the grid first (targets = stations.somo.scale_to(era5land)), which gives one target per cell, or "
            "train on point drivers made from the stations' own forcing (xsomo.point_drivers)."
        )
    for c in (cv.LAT, cv.LON):
        if c not in targets.coords and c not in targets[cv.SM].dims:
            raise MissingVariableError(f"targets lack the {c!r} coordinate (one per station or cell): add it")
    targets = point_targets(targets)  # station series with a layer per sensor (issue 18); others unchanged
    sm = in_m3m3(targets[cv.SM], "targets", check_lazy=True)  # (scaled to a reference in percent, they were 100x too large)
    have_layers = [int(v) for v in targets[cv.LAYER].values] if cv.LAYER in targets.coords else []
    lacking = [lay for lay in layers if lay not in have_layers]
    if lacking:
        raise MissingVariableError(f"targets lack layers {lacking}; have {have_layers}")
    lat = np.asarray(targets[cv.LAT].values, dtype=float).reshape(-1)
    lon = np.asarray(targets[cv.LON].values, dtype=float).reshape(-1)
    if not points.is_points(drivers) and "grid" in targets.attrs:
        _check_target_grid(targets, drivers)
    try:
        rows, cols = target_cells(drivers, lat, lon, points.site_keys(targets) if points.is_points(drivers) else None)
    except GridMismatchError as err:
        if points.is_points(drivers) and ("grid" in targets.attrs or cv.STATION not in targets[cv.SM].dims):
            # (the message had not said that the targets are grid cells, nor what to train instead)
            raise GridMismatchError(
                f"{err}. The targets are grid cells (as scale_to gives): point drivers made at stations train on "
                "the station series themselves (sm(station, time) with a 'layer' per sensor, as xsomo.open_ismn "
                "reads them); gridded targets train on gridded drivers, or on point drivers sampled at the "
                "targets' cells (xsomo.point_drivers(targets, gridded_drivers))."
            ) from err
        raise
    if not points.is_points(drivers) and "grid" not in targets.attrs and "cell" in sm.dims:
        _check_target_lattice(lat, lon, drivers)
    if not points.is_points(drivers):
        pairs = pd.Index(list(zip(np.asarray(rows).tolist(), np.asarray(cols).tolist(), strict=True)))
        if pairs.has_duplicates:
            # (two target sets concatenated: a cell listed twice counted twice and could fall in both
            # the training and the validation cells; hostile-input QA)
            k = int(np.flatnonzero(pairs.duplicated())[0])
            raise XsomoValueError(
                f"targets hold {int(pairs.duplicated().sum())} cell(s) more than once (first at lat {lat[k]:g}, "
                f"lon {lon[k]:g}): give each cell once (merge the target sets, e.g. with xr.merge, or average them)."
            )
    else:
        sensor_dim = next(d for d in sm.dims if d not in (cv.LAYER, cv.TIME))
        if sensor_dim in targets.coords:
            # (one target set concatenated twice trained, and validated, on the same series)
            refuse_duplicate_ids(
                targets[sensor_dim].values,
                "targets give {n} sensor id(s) more than once ({ids}): give each sensor once, with its own id.",
            )
    time_index = drivers.indexes[cv.TIME]
    cell_dim = "cell" if "cell" in sm.dims else next(d for d in sm.dims if d not in (cv.LAYER, cv.TIME))
    # matched by day: drivers stamped at noon (CF daily means) and targets at midnight are the
    # same days (they had shared "no period with data")
    t_days = pd.DatetimeIndex(sm[cv.TIME].values).normalize()
    if t_days.has_duplicates:
        raise XsomoValueError(
            "targets hold more than one value on a day (sub-daily data): give daily means (e.g. "
            "targets.resample(time='1D').mean())"
        )
    sm = sm.assign_coords({cv.TIME: t_days}).sel({cv.LAYER: list(layers)}).reindex({cv.TIME: time_index.normalize()})
    tgt = sm.transpose(cell_dim, cv.LAYER, cv.TIME).values.astype("float32")
    if not np.isfinite(tgt).any():
        raise XsomoValueError("targets and drivers share no period with data; check their time axes")
    dyn, sta = inputs_at_cells(drivers, rows, cols, dynamic=dynamic, static=static)
    return TrainingData(
        dynamic=np.ascontiguousarray(dyn),
        static=sta,
        target=np.ascontiguousarray(tgt),
        lat=lat,
        lon=lon,
        time=time_index.values,
        dynamic_names=tuple(dynamic),
        static_names=tuple(static),
        layers=tuple(int(v) for v in layers),
        rows=rows,
        cols=cols,
    )


def probe_grid_cells(drivers: xr.Dataset, data: TrainingData, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of ``n`` random grid cells without targets but with finite statics.

    The cells :func:`train_lstm` adds for the consistency penalty (same ``seed``).
    """
    if points.is_points(drivers):
        idx = points.probe_points(drivers, data.static_names, data.rows, n, seed)
        return idx, np.zeros_like(idx)
    static_ok = None
    for v in data.static_names:
        ok = np.isfinite(np.asarray(drivers[v].transpose(cv.LAT, cv.LON).values, dtype=float))
        static_ok = ok if static_ok is None else static_ok & ok
    if static_ok is None:
        return np.empty(0, int), np.empty(0, int)
    rows, cols = (data.rows, data.cols) if data.rows.size == data.lat.size else target_cells(drivers, data.lat, data.lon)
    static_ok[rows, cols] = False  # target cells are in the training data already (or held out)
    r, c = np.nonzero(static_ok)
    take = np.sort(np.random.default_rng([int(seed), 8]).choice(r.size, min(int(n), r.size), replace=False))
    return r[take], c[take]


# ----------------------------------------------------------------------------- validation split
@dataclass(frozen=True)
class LayerSplit:
    """How one layer's targets are split into training and validation.

    ``train``: cells whose targets train the layer; ``val``: cells whose targets validate
    it; ``val_from``: first day whose targets validate (0 for a split by cells; the
    training targets end the day before for a split by time); ``how``: ``"cells"``,
    ``"time"`` or ``"none"`` (no validation: the training loss picks the epoch).
    """

    train: np.ndarray
    val: np.ndarray
    val_from: int
    how: str


def split_validation(
    target: np.ndarray, usable: np.ndarray, settings: TrainingConfig, layer: int, *, groups: np.ndarray | None = None
) -> LayerSplit:
    """Validation cells of one layer, drawn among the usable cells that have its targets.

    Parameters
    ----------
    target
        ``(cells, time)`` targets of the layer (NaN: none).
    usable
        Indices of the cells that may train (finite statics, at least one target).
    settings
        ``val_fraction``, ``lookback``, ``seq_length``, ``seed``.
    layer
        The layer (for the seed and the messages).
    groups
        Per target row, what is held out together (point mode: the driver point, so that
        the sensors of one station validate or train together); default: every row alone.
    """
    lb, total = settings.lookback, settings.lookback + settings.seq_length
    has = np.isfinite(target[usable])
    trains = usable[has.any(axis=1)]
    if settings.val_fraction <= 0:
        return LayerSplit(trains, np.empty(0, int), 0, "none")
    # validation scores the continuous roll-out after the spin-up: cells with targets there
    eligible = usable[has[:, lb:].any(axis=1)] if target.shape[1] > lb else np.empty(0, int)
    group = np.arange(target.shape[0]) if groups is None else np.asarray(groups)
    held = np.unique(group[eligible])  # (the cells themselves on a grid: usable is sorted)
    what = "cells" if groups is None else "stations"
    if held.size >= MIN_VAL_CELLS:
        n_val = min(held.size - 1, max(1, round(settings.val_fraction * held.size)))
        chosen = np.random.default_rng([settings.seed, layer]).choice(held, n_val, replace=False)
        val = eligible[np.isin(group[eligible], chosen)]
        return LayerSplit(trains[~np.isin(group[trains], chosen)], val, 0, "cells")
    n_time = target.shape[1]
    val_from = n_time - math.ceil(settings.val_fraction * max(0, n_time - lb))
    later = np.isfinite(target[trains, val_from:]).any(axis=1) if val_from < n_time else np.zeros(trains.size, bool)
    earlier = np.isfinite(target[trains, lb:val_from]).any(axis=1) if val_from > lb else np.zeros(trains.size, bool)
    if val_from >= total and later.any() and earlier.any():
        warnings.warn(
            f"layer {layer}: only {held.size} {what} have targets after the {lb}-day spin-up (fewer than "
            f"{MIN_VAL_CELLS}), too few to hold some out; early stopping validates on the last "
            f"{n_time - val_from} days of every cell instead (a split by time)",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
        return LayerSplit(trains, trains[later], val_from, "time")
    warnings.warn(
        f"layer {layer}: its targets allow no validation split (by {what}: {held.size} {what} with targets "
        f"after the {lb}-day spin-up; by time: too short a record); the training loss picks the epoch instead. "
        "Give more target cells or longer records, or pass val_fraction=0 to silence this",
        RuntimeWarning,
        stacklevel=user_stacklevel(),
    )
    return LayerSplit(trains, np.empty(0, int), 0, "none")


def mask_unforced_targets(data: TrainingData, lookback: int, *, trailing: bool) -> TrainingData:
    """``data`` without the targets of days that ``predict`` gives no value for: their forcing is missing.

    Training read those days' inputs filled with the mean, so a station whose forcing
    begins years after its soil moisture (or lacks its forcing files) trained on made-up
    inputs. With point drivers (``trailing``) every day whose trailing ``lookback`` days
    lack a day of forcing is dropped (:func:`xsomo.predict` masks those days in point
    mode), on a grid the days without forcing themselves (as the gridded roll-out masks).
    A warning names the stations that lose targets; an error says when none is left.
    """
    miss = ~np.isfinite(data.dynamic).all(axis=2)  # (cells, time)
    if not miss.any():
        return data
    bad = trailing_gaps(miss, max(int(lookback), 1)) if trailing else miss
    had = np.isfinite(data.target)
    target = np.where(bad[:, None, :], np.float32(np.nan), data.target)
    lost = (had & ~np.isfinite(target)).sum(axis=(1, 2))
    if not np.isfinite(target).any():
        raise XsomoValueError(
            f"no target day has forcing{' over its ' + str(lookback) + '-day window' if trailing else ''}: the "
            "drivers' dynamic inputs are missing where the targets are. Give the stations their forcing (e.g. "
            "xsomo.open_ismn(..., variables=['soil_moisture', 'precipitation', 'air_temperature'])) or drivers "
            "covering the targets' period"
        )
    if lost.any():
        worst = np.argsort(-lost)[: min(5, int((lost > 0).sum()))]
        shown = ", ".join(f"({data.lat[k]:.4f}, {data.lon[k]:.4f}): {lost[k]} of {had[k].sum()}" for k in worst)
        warnings.warn(
            f"{int(lost.sum())} of {int(had.sum())} target values are not trained on: "
            f"{'the ' + str(lookback) + '-day window up to their day lacks' if trailing else 'their day lacks'} "
            f"forcing, so predict gives no value there ({int((lost > 0).sum())} target cells; most at {shown})",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return replace(data, target=np.ascontiguousarray(target))


def training_targets(data: TrainingData, splits: Sequence[LayerSplit]) -> np.ndarray:
    """``data.target`` with every value that does not train its layer set to NaN."""
    out = np.full_like(data.target, np.nan)
    for k, split in enumerate(splits):
        stop = split.val_from if split.how == "time" else data.target.shape[-1]
        out[split.train, k, :stop] = data.target[split.train, k, :stop]
    return out


def _nan_stats(values: np.ndarray, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns get (0, 1)
        mean = np.nanmean(values.astype("float64"), axis=axis)
        std = np.nanstd(values.astype("float64"), axis=axis)
    std = np.where(~np.isfinite(std) | (std < 1e-8), 1.0, std)
    return np.nan_to_num(mean), std


def compute_stats(
    config: ModelConfig, data: TrainingData, train_cells: np.ndarray, target: np.ndarray | None = None
) -> NormStats:
    """z-score statistics from the training cells only (inputs after their transforms).

    ``target`` (default ``data.target``): the training targets, NaN where a value does
    not train (validation cells and days).
    """
    dyn = transform_inputs(data.dynamic[train_cells], config.dynamic, config.transforms)
    sta = transform_inputs(data.static[train_cells], config.static, config.transforms)
    dm, ds = _nan_stats(dyn, (0, 1))
    sm_, ss = _nan_stats(sta, (0,))
    tgt = data.target if target is None else target
    tm, ts = _nan_stats(tgt[train_cells], (0, 2))
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


class _Bar:
    """One progress bar (epochs) with an ETA for the whole cascade: layers x members x epochs."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="epoch", desc="training", dynamic_ncols=True)

    def describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description(text, refresh=False)

    def update(self, n: int = 1, **postfix: str) -> None:
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)

    def grow(self, n: int) -> None:
        if self.bar is not None:
            self.bar.total += n
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- one member
@dataclass
class _Member:
    """What one member's training carries from epoch to epoch (and through a checkpoint)."""

    net: EALSTM
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    best_state: dict[str, torch.Tensor]
    history: dict[str, Any]
    best_val: float = math.inf
    best_epoch: int = -1
    start_epoch: int = 0
    finished: bool = False
    #: final ``(h, c)`` of the previous step's supervised windows: states the network itself
    #: reaches, which the probes start from (reset every epoch, so a resumed run is the same)
    reached: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass
class _LayerData:
    """Tensors of one layer: inputs (cascade included), training and validation targets."""

    x_dyn: torch.Tensor
    x_stat: torch.Tensor
    y: torch.Tensor
    y_val: torch.Tensor
    split: LayerSplit
    probe_cells: np.ndarray


def _new_member(settings: TrainingConfig, config: ModelConfig, layer: int, seed: int, device: torch.device) -> _Member:
    """A fresh network (seeded), its Adam optimiser and cosine schedule."""
    _seed_all(seed)
    net = EALSTM(
        config.n_inputs(layer), config.n_static, config.hidden,
        dropout=config.dropout, initial_forget_bias=config.initial_forget_bias,
    ).to(device)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.epochs, eta_min=settings.lr * 0.05)
    best = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return _Member(net, opt, sched, best, {"train_loss": [], "val_loss": [], "seconds": []})


def _resume(run: _Member, checkpoint: pathlib.Path | None) -> None:
    """Load the last finished epoch of ``checkpoint`` into ``run`` (if there is one)."""
    if checkpoint is None or not checkpoint.is_file():
        return
    ck = load_torch_file(checkpoint)
    run.net.load_state_dict(ck["net"])
    run.opt.load_state_dict(ck["opt"])
    run.sched.load_state_dict(ck["sched"])
    run.best_state = ck["best_state"]
    run.best_val = float(ck["best_val"])
    run.best_epoch = int(ck["best_epoch"])
    run.start_epoch = int(ck["epoch"]) + 1
    run.history = json.loads(bytes(ck["history"].tolist()).decode())
    run.finished = bool(ck["finished"])


def _save_epoch(run: _Member, checkpoint: pathlib.Path, epoch: int) -> None:
    save_torch_file(checkpoint, {
        "net": run.net.state_dict(), "opt": run.opt.state_dict(), "sched": run.sched.state_dict(),
        "best_state": run.best_state, "best_val": torch.tensor(run.best_val, dtype=torch.float64),
        "best_epoch": torch.tensor(run.best_epoch), "epoch": torch.tensor(epoch),
        "finished": torch.tensor(run.finished),
        "history": torch.tensor(list(json.dumps(run.history).encode()), dtype=torch.uint8),
    })  # fmt: skip


def _batch_windows(
    rng: np.random.Generator, cand: tuple[np.ndarray, np.ndarray], probes: np.ndarray, pairs: int,
    n_starts: int, settings: TrainingConfig,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cells and start days of a batch (supervised windows, then the probe pairs) and its warm-up skip."""
    pick = rng.integers(0, cand[0].size, settings.batch_size)
    cells, starts = cand[0][pick], cand[1][pick]
    if pairs:
        pc = probes[rng.integers(0, probes.size, pairs)]
        ps = rng.integers(0, n_starts, pairs)
        cells = np.concatenate([cells, pc, pc])
        starts = np.concatenate([starts, ps, ps])
    lb, floor = settings.lookback, settings.warmup_floor
    # a shorter warm-up for this batch (same supervised days): forget sooner
    skip = int(rng.integers(0, lb - floor + 1)) if floor < lb else 0
    return cells, starts, skip


def _initial_states(
    n_win: int, pairs: int, hidden: int, scale: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Initial ``(h, c)`` of a batch: random states, and coherent extreme ones for the second probe copies."""
    if scale <= 0 and not pairs:
        return None
    # (a zero state for the first copies when scale is 0)
    h, c = _random_states(n_win, hidden, scale or 1.0, device)
    if scale <= 0:
        keep = torch.arange(n_win, device=device)[:, None] >= n_win - pairs
        h, c = h * keep, c * keep
    if pairs:
        # second copies: coherent extreme states, every unit near +-[0.5, 1]
        sign = torch.where(torch.rand(pairs, 1, device=device) < 0.5, -1.0, 1.0)
        level = sign * (0.5 + 0.5 * torch.rand(pairs, 1, device=device))
        noise = 0.1 * torch.randn(pairs, hidden, device=device)
        h = torch.cat([h[:-pairs], (level + noise).clamp(-1.0, 1.0)])
        c = torch.cat([c[:-pairs], level + noise])
    return h, c


def _with_reached(
    state: tuple[torch.Tensor, torch.Tensor], reached: tuple[torch.Tensor, torch.Tensor], nb: int, pairs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe pairs' first copies start, every other one, from a state the network reached.

    Random states keep ``h`` in [-1, 1] and ``c`` near N(0, 1), but a network's own cell
    state can lie far outside (units that integrate for months): the convergence check
    (:func:`xsomo.model.rollout.convergence_distance`) starts one roll-out from such a
    state, so the penalty must teach forgetting it too. The states are the final ones of
    the previous step's supervised windows (other cells and days: a realistic magnitude,
    not the window's own history); which copies take one and which state is drawn with
    torch's generator, as the rest of the batch.
    """
    h, c = state  # fresh tensors of this batch (:func:`_initial_states`): filled in place
    pick = torch.randint(0, reached[0].shape[0], (pairs,), device=h.device)[::2]
    rows = nb + torch.arange(0, pairs, 2, device=h.device)
    h[rows] = reached[0][pick].to(h.dtype)
    c[rows] = reached[1][pick].to(c.dtype)
    return h, c


def _train_step(
    run: _Member, data: _LayerData, cells_np: np.ndarray, starts_np: np.ndarray, skip: int, pairs: int,
    settings: TrainingConfig, consistency: float, arange: torch.Tensor, autocast: bool,
) -> tuple[float, float]:
    """One optimiser step on a batch: masked MSE + consistency x the probes' penalty.

    The supervised windows (``lookback - skip`` warm-up + ``seq_length`` days) and the
    probe pairs (the warm-up + :data:`PROBE_EXTRA_DAYS`, what the convergence check
    looks at) run as two LSTM calls: probes of the full window length cost 50 % more
    LSTM work per step, these 27 % (demo shape).
    """
    device = data.x_dyn.device
    lb = settings.lookback
    nb = settings.batch_size
    cells = torch.from_numpy(cells_np).to(device)
    starts = torch.from_numpy(starts_np).to(device)
    idx = starts[:nb, None] + arange[None, skip:]
    state = _initial_states(cells.shape[0], pairs, run.net.hidden, settings.init_state_scale, device)
    if pairs and run.reached is not None and state is not None:
        state = _with_reached(state, run.reached, nb, pairs)
    net = run.net
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        # outputs, dropout and head of the supervised days only: dropout's random mask over
        # the whole window took 14 % of a demo-size step on the CPU, for outputs no loss used
        hidden_seq, (h_n, c_n) = net.lstm(
            data.x_dyn[cells[:nb, None], idx], data.x_stat[cells[:nb]],
            None if state is None else (state[0][:nb], state[1][:nb]), first=lb - skip,
        )  # fmt: skip
        out = net.head(net.dropout(hidden_seq))
    if pairs:
        run.reached = (h_n.detach().float(), c_n.detach().float())
    loss = _masked_mse(out[..., 0].float(), data.y[cells[:nb, None], idx[:, lb - skip :]])
    penalty = 0.0
    if pairs:
        # dropout-free outputs of the probe pairs over the second half of the warm-up and
        # the days after it
        stop = min(lb + PROBE_EXTRA_DAYS, arange.numel())
        p_idx = starts[nb:, None] + arange[None, skip:stop]
        assert state is not None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            p_seq, _ = net.lstm(
                data.x_dyn[cells[nb:, None], p_idx], data.x_stat[cells[nb:]], (state[0][nb:], state[1][nb:]),
                first=max(0, lb // 2 - skip),
            )  # fmt: skip
            clean = net.head(p_seq)[..., 0].float()
        pen = _consistency_penalty(clean, pairs)
        loss = loss + consistency * pen
        penalty = float(pen.detach())
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    run.opt.step()
    return float(loss.detach()), penalty


def _train_member(
    *,
    data: _LayerData,
    config: ModelConfig,
    settings: TrainingConfig,
    layer: int,
    member: int,
    consistency: float,
    checkpoint: pathlib.Path | None,
    bar: _Bar,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train one network; returns the best state dict and its history."""
    lb, n_sup = config.lookback, config.seq_length
    total = lb + n_sup
    device = data.x_dyn.device
    mask = torch.isfinite(data.y).cpu().numpy()[data.split.train]
    cand_c, cand_s = _window_starts(mask, lb, n_sup)
    if cand_c.size == 0:
        raise XsomoValueError(
            f"layer {layer}: no training window of {lb} + {n_sup} days holds a target; "
            "shorten lookback/seq_length or provide longer records"
        )
    cand = (data.split.train[cand_c], cand_s)
    batches = settings.steps_per_epoch or max(MIN_BATCHES, math.ceil(int(mask.sum()) / n_sup / settings.batch_size))
    member_seed = int(settings.seed) * 1000 + layer * 100 + member
    run = _new_member(settings, config, layer, member_seed, device)
    # consistency: `2 * pairs` probe windows follow the batch's windows: `pairs` windows (any
    # probe cell, any start), then the same again from other states
    pairs = max(1, round(settings.batch_size * CONSISTENCY_PAIRS)) if consistency > 0 else 0
    probes = data.probe_cells if data.probe_cells.size else data.split.train
    n_starts = int(data.y.shape[-1]) - total + 1
    if pairs:
        run.history["consistency"] = []
    _resume(run, checkpoint)
    if run.start_epoch:
        logger.info("layer %d member %d: resumed after epoch %d", layer, member, run.start_epoch - 1)
        bar.update(run.start_epoch)
    arange = torch.arange(total, device=device)
    autocast = settings.mixed_precision and device.type == "cuda"
    if run.finished:  # a finished member of an interrupted run
        bar.update(settings.epochs - run.start_epoch)
    for epoch in range(run.start_epoch, settings.epochs if not run.finished else 0):
        t0 = time.perf_counter()
        rng = np.random.default_rng([member_seed, epoch])
        torch.manual_seed(member_seed * 7919 + epoch)
        run.reached = None
        run.net.train()
        losses, penalties = [], []
        for _ in range(batches):
            cells_np, starts_np, skip = _batch_windows(rng, cand, probes, pairs, n_starts, settings)
            loss, pen = _train_step(run, data, cells_np, starts_np, skip, pairs, settings, consistency, arange, autocast)
            losses.append(loss)
            penalties.append(pen)
        run.sched.step()
        train_loss = float(np.mean(losses))
        run.history["train_loss"].append(train_loss)
        if pairs:
            run.history["consistency"].append(float(np.mean(penalties)))
        val = _validate(run.net, data.x_dyn, data.x_stat, data.y_val, data.split.val, lb, device) if data.split.val.size else train_loss
        if not math.isfinite(val):
            raise XsomoValueError(
                f"layer {layer} member {member}: the {'validation' if data.split.val.size else 'training'} loss is "
                f"{val} after epoch {epoch + 1}: training diverged. Lower lr (now {settings.lr:g}) or check the "
                "inputs for extreme values"
            )
        run.history["val_loss"].append(val)
        run.history["seconds"].append(time.perf_counter() - t0)
        if val < run.best_val:
            run.best_val, run.best_epoch = val, epoch
            run.best_state = {k: v.detach().cpu().clone() for k, v in run.net.state_dict().items()}
        run.finished = epoch + 1 >= settings.epochs or (
            settings.patience > 0 and epoch - run.best_epoch >= settings.patience
        )
        if checkpoint is not None:
            _save_epoch(run, checkpoint, epoch)
        bar.update(1 + (settings.epochs - epoch - 1 if run.finished else 0), train=f"{train_loss:.3f}", val=f"{val:.3f}")
        if run.finished:
            break
    if run.best_epoch < 0:
        raise XsomoValueError(
            f"layer {layer} member {member}: no epoch was trained (epochs={settings.epochs}); the layer would keep "
            "its initial weights"
        )
    run.history["best_epoch"] = run.best_epoch
    run.history["best_val_loss"] = run.best_val
    run.history["validation"] = data.split.how
    return {k: v.cpu() for k, v in run.best_state.items()}, run.history


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
    config: TrainingConfig | Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    cells: np.ndarray | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    device: str | torch.device = "auto",
    threads: int | None = None,
    workers: int | None = None,
    client: Any = None,
    **options: Any,
) -> TrainedModel:
    """Train the EA-LSTM cascade on the cells that have targets.

    Parameters
    ----------
    drivers
        Drivers Dataset (docs/internals.md §2): dynamic ``(time, lat, lon)`` and static
        ``(lat, lon)`` inputs on a daily axis without gaps; may be dask-backed (only target
        cells and the probe cells are read). Canonical variables are converted to
        canonical units (as for prediction).
    targets
        Targets Dataset ``sm(cell, layer, time)`` with ``lat(cell)``, ``lon(cell)`` on the
        drivers' grid.
    config
        A :class:`~xsomo.model.config.TrainingConfig` (or a dict of its fields).
    preset
        A named config of :data:`~xsomo.model.config.PRESETS`: ``"paper"`` (the defaults:
        5 members, 128 hidden), ``"demo"``, ``"tiny"``. ``config`` and ``options`` override it.
    **options
        Any field of :class:`~xsomo.model.config.TrainingConfig` (``layers``, ``ensemble``,
        ``hidden``, ``epochs``, ``lr``, ``consistency``, ...; see there), overriding
        ``config`` and ``preset``. An unknown name is an error.
    cells
        Optional indices of target cells to train on (cross-validation folds).
    run_dir
        Folder for per-epoch checkpoints; a rerun with the same arguments resumes.
    progress
        Show one progress bar (with an ETA) for the whole cascade.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
    threads
        torch intra-op threads while training on the CPU (restored afterwards); default
        :func:`training_threads`. Shared among the ``workers``.
    workers
        Processes that train the members of a layer side by side on the CPU (same weights
        as one after the other); default :func:`member_workers`.
    client
        A ``dask.distributed`` client: the members of each layer train as tasks on its
        workers, side by side (same weights as one after the other; ``workers`` is then
        ignored). Layers stay in cascade order. ``run_dir`` must then be on a file system
        the workers share. ``xsomo train --scheduler ADDRESS``.

    Returns
    -------
    TrainedModel
        With ``config.training`` = the settings used (``model.training_config``).

    Examples
    --------
    >>> from xsomo import testing
    >>> drivers, targets, _ = testing.synthetic_case(seed=0, nlat=3, nlon=3, ndays=120, cells=4)
    >>> model = train_lstm(drivers, targets, preset="tiny", layers=(1,), lookback=20, seq_length=10,
    ...                    epochs=1, steps_per_epoch=1, val_fraction=0.0, forget_tolerance=0.0,
    ...                    progress=False, device="cpu")
    >>> model.training_config.hidden, model.config.lookback
    (16, 20)
    """
    settings = training_config(config, preset=preset, **options)
    dev = torch.device(resolve_device(device))
    threads = training_threads(settings, dev, threads)
    old_threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(threads)
    try:
        with heap_allocations():
            return _train(
                settings, drivers, targets, dev=dev, cells=cells, run_dir=run_dir, progress=progress,
                threads=threads, workers=workers, client=client,
            )  # fmt: skip
    finally:
        torch.set_num_threads(old_threads)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


@contextlib.contextmanager
def heap_allocations() -> Iterator[None]:
    """Serve large allocations from the heap and keep freed memory while training (glibc only).

    Each training step allocates and frees tens of MB of activations (the LSTM's gates
    for every day of every window). glibc serves blocks above 32 MB with ``mmap`` and
    returns them with ``munmap``, so every step faulted its memory in again: measured on
    the demo shape (batch 64 + 32 probe windows, 730 days, 64 hidden, one thread) 0.44-0.60 s
    of system time per step next to 0.46 s of user time. With ``M_MMAP_MAX = 0`` and no
    trimming it took 0.024 s. The settings are restored (and the heap trimmed) on exit;
    elsewhere than glibc this does nothing.
    """
    libc = None
    with contextlib.suppress(OSError, AttributeError, TypeError):
        name = ctypes.util.find_library("c")
        lib = ctypes.CDLL(name) if name else None
        if lib is not None and hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):
            libc = lib
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_MAX, 65536)  # glibc's defaults
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
        libc.malloc_trim(0)


#: Largest hidden size trained on one thread by default (see :func:`training_threads`).
SMALL_HIDDEN = 64


def training_threads(settings: TrainingConfig, device: torch.device, threads: int | None = None) -> int:
    """torch intra-op threads for training: ``threads`` if given, else 1 for small networks
    (``hidden <= SMALL_HIDDEN``: their recurrent matrices are too small for threads to pay
    off -- on a busy machine spinning OpenMP threads made a step 20-80 times slower), else
    :func:`xsomo.runtime.cpu_cores`."""
    if threads is not None:
        if int(threads) < 1:
            raise XsomoValueError(f"threads must be >= 1, got {threads!r}")
        return int(threads)
    if device.type != "cpu":
        return torch.get_num_threads()
    return 1 if settings.hidden <= SMALL_HIDDEN else cpu_cores()


def _model_config(settings: TrainingConfig) -> ModelConfig:
    dynamic = tuple(settings.dynamic or cv.DYNAMIC_NAMES)
    static = tuple(settings.static or cv.STATIC_NAMES)
    transforms = {"precipitation": "log1p"} if settings.log_precip and "precipitation" in dynamic else {}
    record = settings.to_dict()
    if settings.consistency <= 0:
        record["consistency_cells"] = 0
    return ModelConfig(
        dynamic=dynamic, static=static, layers=settings.layers, ensemble=settings.ensemble,
        lookback=settings.lookback, seq_length=settings.seq_length, hidden=settings.hidden,
        dropout=settings.dropout, initial_forget_bias=settings.initial_forget_bias, transforms=transforms,
        clip_negative=settings.clip_negative, training=record,
    )  # fmt: skip


def _usable_cells(data: TrainingData, cells: np.ndarray | None) -> np.ndarray:
    has_target = np.isfinite(data.target).any(axis=(1, 2))
    finite_static = np.isfinite(data.static).all(axis=1)
    usable = finite_static & has_target
    if cells is not None:
        keep = np.zeros(usable.size, bool)
        keep[np.asarray(cells, dtype=int)] = True
        usable &= keep
        has_target &= keep
    lost = np.flatnonzero(has_target & ~finite_static)
    if lost.size:
        # they were left out without a word (a station without elevation in its ISMN metadata),
        # and their prediction came back all NaN with nothing to say why
        names = [
            name for name, col in zip(data.static_names, np.isfinite(data.static[lost]).T, strict=True)
            if not col.all()
        ]  # fmt: skip
        where = ", ".join(f"({data.lat[k]:.4f}, {data.lon[k]:.4f})" for k in lost[:5])
        warnings.warn(
            f"{lost.size} target cells or stations with targets have no value of the static input(s) {names} "
            f"and are left out of training ({where}{', ...' if lost.size > 5 else ''}); their prediction is NaN "
            "too. Fill those statics or choose other static= inputs",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        raise XsomoValueError("no target cell has both finite statics and at least one target value")
    return idx


def _with_probes(
    drivers: xr.Dataset, data: TrainingData, settings: TrainingConfig, train_cells: np.ndarray
) -> tuple[TrainingData, np.ndarray]:
    """The data with the penalty's probe cells appended (targets NaN), and the probe cell indices."""
    if settings.consistency <= 0 or settings.consistency_cells <= 0:
        return data, train_cells
    rows, cols = probe_grid_cells(drivers, data, settings.consistency_cells, settings.seed)
    p_dyn, p_sta = inputs_at_cells(drivers, rows, cols, dynamic=data.dynamic_names, static=data.static_names)
    n0 = data.dynamic.shape[0]
    nan_t = np.full((p_dyn.shape[0], *data.target.shape[1:]), np.nan, dtype=data.target.dtype)
    merged = TrainingData(
        dynamic=np.concatenate([data.dynamic, p_dyn]), static=np.concatenate([data.static, p_sta]),
        target=np.concatenate([data.target, nan_t]), lat=data.lat, lon=data.lon, time=data.time,
        dynamic_names=data.dynamic_names, static_names=data.static_names, layers=data.layers,
        rows=np.concatenate([data.rows, rows]), cols=np.concatenate([data.cols, cols]),
    )  # fmt: skip
    return merged, np.concatenate([train_cells, n0 + np.arange(p_dyn.shape[0])])


def _cascade_inputs(
    xd: np.ndarray, partial: TrainedModel | None, sim: np.ndarray | None, member: int
) -> np.ndarray:
    """Normalised dynamic inputs of a member: forcings, then the upper layers' simulations (z-scored)."""
    if sim is None or partial is None:
        return xd
    cas = [
        np.nan_to_num(partial.normalise_target(sim[j, member], up))[..., None]
        for j, up in enumerate(partial.config.layers)
    ]
    return np.concatenate([xd, *cas], axis=-1).astype("float32")


def _forgetting_distance(model: TrainedModel, data: TrainingData, cells: np.ndarray, device: torch.device) -> np.ndarray:
    """Largest convergence distance after ``lookback`` days per (layer, member) on ``cells``
    (blocks starting on the first day and, where the record allows, in its middle).

    Each block holds :data:`~xsomo.model.rollout.CHECK_WINDOW_SPAN` days more than the
    spin-up and the compared days, so that the check includes the zero-state windows started
    in other seasons, as ``predict``'s check of a block does: without them a model passed
    here at 5e-4 and measured 1.37e-3 on the same world's land cells in ``predict``'s check
    (tests/e2e/test_forgetting.py).
    """
    cfg = model.config
    n = cfg.lookback + rollout.CHECK_EXTRA_DAYS + rollout.CHECK_WINDOW_SPAN
    n_time = data.dynamic.shape[1]
    if n_time < cfg.lookback or cells.size == 0:
        return np.zeros((len(cfg.layers), cfg.ensemble))
    n = min(n, n_time)
    starts = sorted({0, max(0, (n_time - n) // 2)})
    dyn = np.concatenate([data.dynamic[cells, s : s + n] for s in starts])
    sta = np.concatenate([data.static[cells]] * len(starts))
    dist = rollout.convergence_distance(model, dyn, sta, steps=cfg.lookback, device=device)
    return np.nan_to_num(np.nanmax(dist, axis=-1)) if dist.size else np.zeros(dist.shape[:2])


class _QueueBar:
    """The progress bar of a member trained in a worker process: epochs go to the parent's queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def update(self, n: int = 1, **postfix: str) -> None:
        self.queue.put(n)

    def describe(self, text: str) -> None:
        pass


_WORKER_QUEUE: Any = None


def _init_worker(queue: Any, threads: int, parent: int) -> None:
    global _WORKER_QUEUE
    _WORKER_QUEUE = queue
    torch.set_num_threads(threads)
    # a parent killed without a chance to shut the pool down (SIGKILL, or SIGTERM to it
    # alone) would leave this worker training on for minutes: it leaves when the parent does
    exit_with_parent(parent)


def _member_job(job: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    with heap_allocations():
        return _train_member(**job, bar=_QueueBar(_WORKER_QUEUE))  # type: ignore[arg-type]


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Hide ``__main__``'s file and spec, so that spawned processes do not import it."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if main is not None and hasattr(main, k)}
    try:
        if main is not None:
            if "__file__" in saved:
                delattr(main, "__file__")
            main.__spec__ = None
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


class _MemberPool:
    """Worker processes that train the members of a layer side by side (CPU only).

    Each member is trained exactly as in the serial loop (same seeds, same weights); a
    worker gets the layer's tensors once per member (pickled) and runs ``threads`` torch
    threads. Spawned, not forked: a fork of a process whose OpenMP pool is running can hang.
    """

    def __init__(self, workers: int, threads: int) -> None:
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.queue = ctx.Queue()
        self.executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(self.queue, threads, os.getpid())
        )
        # start the workers now, without re-running the caller's script in them (spawn would
        # import an unguarded __main__ again, which trains again): they need xsomo only
        with _main_hidden():
            for f in [self.executor.submit(int, 0) for _ in range(workers)]:
                f.result()

    def run(self, jobs: list[dict[str, Any]], bar: _Bar) -> list[tuple[dict[str, torch.Tensor], dict[str, Any]]]:
        import concurrent.futures
        import queue as queue_mod

        futures = [self.executor.submit(_member_job, job) for job in jobs]
        pending = set(futures)
        while pending:
            _, pending = concurrent.futures.wait(pending, timeout=0.5)
            with contextlib.suppress(queue_mod.Empty):
                while True:
                    bar.update(self.queue.get_nowait())
        with contextlib.suppress(queue_mod.Empty):
            while True:
                bar.update(self.queue.get(timeout=0.1))
        return [f.result() for f in futures]

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


#: One member at a time per process: torch's random generator (initial weights, dropout,
#: initial states) is global to the process, so two members training in threads of one
#: worker would draw from it in turn and neither would get the weights of a serial run.
_MEMBER_LOCK = threading.Lock()


def _member_task(job: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One member on a dask worker (the same function as in the serial loop, so the same weights)."""
    with _MEMBER_LOCK, heap_allocations():
        return _train_member(**job, bar=_Bar(0, enabled=False))


class _ClientPool:
    """The members of a layer as tasks of a ``dask.distributed`` client (one task per member).

    Same interface as :class:`_MemberPool`; the progress bar advances by a member's epochs
    when its task finishes. The layer's tensors travel once per member with the task; a
    ``run_dir`` must be a folder the workers can write (a shared file system). A worker
    process trains one member at a time (:data:`_MEMBER_LOCK`): members train side by side
    on a cluster of worker *processes* (``dask-worker --nthreads 1``, ``LocalCluster(processes=True)``).
    """

    def __init__(self, client: Any, epochs: int) -> None:
        self.client = client
        self.epochs = epochs

    def run(self, jobs: list[dict[str, Any]], bar: _Bar) -> list[tuple[dict[str, torch.Tensor], dict[str, Any]]]:
        from distributed import as_completed

        futures = [self.client.submit(_member_task, job, pure=False) for job in jobs]
        try:
            for _ in as_completed(futures):
                bar.update(self.epochs)
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.release()

    def close(self) -> None:
        pass


def member_workers(settings: TrainingConfig, device: torch.device, workers: int | None, n_cells: int) -> int:
    """Processes that train a layer's members side by side: ``workers`` if given, else
    ``min(ensemble, cpu_cores())`` on the CPU when a member's training is large enough
    to pay for starting them (about 3 s each; :data:`PARALLEL_MIN_CELL_DAYS`), else 1."""
    if workers is not None:
        if int(workers) < 1:
            raise XsomoValueError(f"workers must be >= 1, got {workers!r}")
        return min(int(workers), settings.ensemble)
    if device.type != "cpu" or settings.ensemble < 2:
        return 1
    steps = settings.steps_per_epoch or MIN_BATCHES
    work = settings.epochs * steps * settings.batch_size * (settings.lookback + settings.seq_length)
    return min(settings.ensemble, cpu_cores()) if work >= PARALLEL_MIN_CELL_DAYS else 1


#: Smallest training of a member (epochs x steps x batch x window days) trained in a worker process.
PARALLEL_MIN_CELL_DAYS = 5_000_000


def _train(
    settings: TrainingConfig,
    drivers: xr.Dataset,
    targets: xr.Dataset,
    *,
    dev: torch.device,
    cells: np.ndarray | None,
    run_dir: str | os.PathLike[str] | None,
    progress: bool,
    threads: int = 1,
    workers: int | None = None,
    client: Any = None,
) -> TrainedModel:
    config = _model_config(settings)
    data = prepare_training_data(drivers, targets, layers=config.layers, dynamic=config.dynamic, static=config.static)
    empty = [layer for k, layer in enumerate(config.layers) if not np.isfinite(data.target[:, k]).any()]
    if empty:
        rest = [layer for layer in config.layers if layer not in empty]
        raise XsomoValueError(
            f"the targets hold no value of layer{'s' if len(empty) > 1 else ''} {empty} (all NaN in "
            f"targets['sm'] over the drivers' period): give targets of {'these layers' if len(empty) > 1 else 'this layer'}"
            + (f", or train the other layers only: layers={tuple(rest)}" if rest else "")
        )
    data = mask_unforced_targets(data, config.lookback, trailing=points.is_points(drivers))
    usable = _usable_cells(data, cells)
    # the sensors of one station are held out together (one held out, another of the same station
    # training, the station's forcing and statics had validated on data they trained on)
    groups = data.rows if points.is_points(drivers) else None
    splits = [
        split_validation(data.target[:, k], usable, settings, layer, groups=groups) for k, layer in enumerate(config.layers)
    ]
    train_target = training_targets(data, splits)
    train_cells = np.unique(np.concatenate([s.train for s in splits]))
    stats = compute_stats(config, data, train_cells, train_target)
    data, probe_cells = _with_probes(drivers, data, settings, train_cells)
    _check_run_dir(run_dir, config, stats, splits, data)
    pad = data.target.shape[0] - train_target.shape[0]
    train_target = np.concatenate([train_target, np.full((pad, *train_target.shape[1:]), np.nan, "float32")])
    # normalised tensors, NaN inputs filled with the mean (as in the continuous roll-out)
    shell = TrainedModel.__new__(TrainedModel)
    shell.config, shell.stats = config, stats
    xd = np.nan_to_num(shell.prepare_dynamic(data.dynamic))
    xs = torch.from_numpy(np.nan_to_num(shell.prepare_static(data.static))).to(dev)
    weights: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    history: dict[str, Any] = {}
    t_start = time.perf_counter()
    bar = _Bar(len(config.layers) * config.ensemble * settings.epochs, progress)
    pool: _MemberPool | _ClientPool | None
    if client is not None:
        pool = _ClientPool(client, settings.epochs)
    else:
        n_workers = member_workers(settings, dev, workers, data.dynamic.shape[0])
        pool = _MemberPool(n_workers, max(1, threads // n_workers)) if n_workers > 1 else None
    try:
        for k, layer in enumerate(config.layers):
            y = (train_target[:, k] - stats.target_mean[k]) / stats.target_std[k]
            y_val = (data.target[:, k] - stats.target_mean[k]) / stats.target_std[k]
            y_val[:, : splits[k].val_from] = np.nan
            upper = config.upper_layers(layer)
            partial = sim = None
            if upper:
                partial = _partial_model(config, stats, weights, upper)
                sim = rollout.predict_block(
                    partial, data.dynamic, data.static, mode="continuous", spinup=1, device=dev
                )  # (n_upper, members, cells, time) m3 m-3
            layer_weights = _train_layer(
                k, layer, config=config, settings=settings, xd=xd, xs=xs, y=y, y_val=y_val, split=splits[k],
                probe_cells=probe_cells, partial=partial, sim=sim, data=data, stats=stats, weights=weights,
                run_dir=run_dir, history=history, bar=bar, device=dev, pool=pool,
            )  # fmt: skip
            weights.update(layer_weights)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
    history["seconds"] = time.perf_counter() - t_start
    history["validation_cells"] = {
        f"layer{layer}": np.column_stack([data.lat[s.val], data.lon[s.val]]).tolist()
        for layer, s in zip(config.layers, splits, strict=True)
    }
    return TrainedModel(
        config,
        stats,
        weights,
        history=history,
        training_cells=np.column_stack([data.lat[train_cells], data.lon[train_cells]]),
        metadata={
            "trained_with": "xsomo.model.training.train_lstm",
            "device": str(dev),
            # statics such as elevation_std mean something else at another resolution
            "grid_resolution": None if points.is_points(drivers) else _grid_of(drivers).resolution,
            # the labels of the inputs that reach the network unconverted (check_input_units)
            "input_units": input_units(drivers, (*config.dynamic, *config.static)),
        },
    )


def _train_layer(
    k: int,
    layer: int,
    *,
    config: ModelConfig,
    settings: TrainingConfig,
    xd: np.ndarray,
    xs: torch.Tensor,
    y: np.ndarray,
    y_val: np.ndarray,
    split: LayerSplit,
    probe_cells: np.ndarray,
    partial: TrainedModel | None,
    sim: np.ndarray | None,
    data: TrainingData,
    stats: NormStats,
    weights: dict[tuple[int, int], dict[str, torch.Tensor]],
    run_dir: str | os.PathLike[str] | None,
    history: dict[str, Any],
    bar: _Bar,
    device: torch.device,
    pool: _MemberPool | _ClientPool | None = None,
) -> dict[tuple[int, int], dict[str, torch.Tensor]]:
    """Train every member of one layer (in ``pool``'s processes when given); check that the cascade so far forgets its initial
    state on the probe cells, training again with a doubled penalty where it does not."""
    y_t = torch.from_numpy(y.astype("float32")).to(device)
    yv_t = torch.from_numpy(y_val.astype("float32")).to(device)
    consistency = settings.consistency
    record: dict[str, Any] = {"distance": [], "consistency": [], "members": [], "member_distance": []}
    layer_weights: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    members = list(range(config.ensemble))
    for attempt in range(settings.forget_retries + 1):
        jobs = []
        for m in members:
            x = _cascade_inputs(xd, partial, sim, m)
            ld = _LayerData(torch.from_numpy(np.ascontiguousarray(x)).to(device), xs, y_t, yv_t, split, probe_cells)
            suffix = f"_retry{attempt}" if attempt else ""
            ckpt = pathlib.Path(run_dir) / f"layer{layer}_member{m}{suffix}.pt" if run_dir is not None else None
            jobs.append({
                "data": ld, "config": config, "settings": settings, "layer": layer, "member": m,
                "consistency": consistency, "checkpoint": ckpt,
            })  # fmt: skip
        retry = f" (retry {attempt}: {_members_label(members)})" if attempt else ""
        if pool is not None:
            # a lone member (a retry) also trains in a worker: in the parent with 2 threads an
            # epoch of the paper preset's layer 3 took 33-34 s, against 20.5 s for a lone member
            # in a worker on 1 thread earlier in the same run (2026-12-03, 2-core Intel Xeon)
            alone = f" member {members[0] + 1}/{config.ensemble}" if len(jobs) == 1 else f", {len(jobs)} members in parallel"
            bar.describe(f"layer {layer}{alone}{retry}")
            results = pool.run(jobs, bar)
        else:
            results = []
            for job in jobs:
                bar.describe(f"layer {layer} member {job['member'] + 1}/{config.ensemble}{retry}")
                results.append(_train_member(**job, bar=bar))
        for m, (state, hist) in zip(members, results, strict=True):
            layer_weights[(layer, m)] = state
            history[f"layer{layer}_member{m}"] = hist
            logger.info("layer %d member %d: best val loss %.4f at epoch %d", layer, m, hist["best_val_loss"], hist["best_epoch"])
        if settings.forget_tolerance <= 0:
            return layer_weights
        upto = config.layers[: k + 1]
        model = _partial_model(config, stats, {**weights, **layer_weights}, upto)
        check_cells = probe_cells[probe_cells >= 0]
        per_member = _forgetting_distance(model, data, check_cells, device)[k]
        dist = float(per_member.max())
        record["distance"].append(dist)
        record["consistency"].append(consistency)
        record["members"].append(members)
        record["member_distance"].append([float(d) for d in per_member])
        history[f"layer{layer}_forgetting"] = record
        logger.info("layer %d: convergence distance %.2g m3 m-3 after %d days (weight %g)", layer, dist, config.lookback, consistency)
        if dist <= settings.forget_tolerance:
            return layer_weights
        slow = [m for m in range(config.ensemble) if per_member[m] > settings.forget_tolerance]
        if attempt < settings.forget_retries and consistency > 0:
            # only the members that do not forget train again: the others keep their weights
            consistency *= 2
            members = slow
            bar.grow(len(members) * settings.epochs)
            continue
        why = "the penalty is off (consistency=0)" if consistency <= 0 else f"after {attempt + 1} trainings"
        warnings.warn(
            f"layer {layer}: the trained networks ({_members_label(slow)} "
            f"of {config.ensemble}) do not forget their initial state within the {config.lookback}-day "
            f"lookback on the {check_cells.size} probe cells: roll-outs from different states still differ by "
            f"{dist:.3g} m3 m-3 (tolerance {settings.forget_tolerance:g}) {why}. Prediction will need a longer "
            "spin-up (predict() lengthens it where the drivers allow, else predicts window by window, much slower). "
            "Train with a larger consistency= weight or more forget_retries= to avoid this",
            RuntimeWarning,
            stacklevel=4,
        )
        return layer_weights
    return layer_weights


def _members_label(members: Sequence[int]) -> str:
    """``"member 2"`` / ``"members 1, 5"`` (1-based) for the progress bar and the warnings."""
    return f"member{'s' if len(members) > 1 else ''} {', '.join(str(m + 1) for m in members)}"


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
    run_dir: str | os.PathLike[str] | None,
    config: ModelConfig,
    stats: NormStats,
    splits: Sequence[LayerSplit],
    data: TrainingData,
) -> None:
    """Create ``run_dir`` with a run description, or check that it describes this run.

    The description holds a digest of every array training reads (the target cells' and the
    penalty's probe cells' inputs, the targets): with only the statistics of the training cells,
    drivers changed at other cells (the probe cells) had resumed the old checkpoints and
    returned the old model, bit for bit (hostile-input QA).
    """
    if run_dir is None:
        return
    path = pathlib.Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for arr in (data.dynamic, data.static, data.target, np.asarray(data.rows), np.asarray(data.cols)):
        digest.update(np.ascontiguousarray(arr).tobytes())
    desc = json.dumps(
        {
            "config": config.to_dict(), "stats": stats.to_dict(),
            "splits": [{"train": s.train.tolist(), "val": s.val.tolist(), "val_from": s.val_from} for s in splits],
            "inputs_sha256": digest.hexdigest(),
        },
        sort_keys=True,
    )  # fmt: skip
    run_file = path / "run.json"
    if run_file.is_file():
        if run_file.read_text() != desc:
            raise CheckpointError(
                f"{path} holds checkpoints of a different training run (other data or settings); "
                "use another run_dir (--run-dir) or delete this one"
            )
    else:
        atomic_write_text(run_file, desc)
