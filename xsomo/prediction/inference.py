"""Prediction at scale: the EA-LSTM cascade over every land cell of a lazy (dask) grid.

:func:`predict` turns a drivers Dataset and a :class:`~xsomo.model.TrainedModel` into a
lazy soil-moisture Dataset ``sm(layer, time, lat, lon)`` (ensemble mean) and
``sm_spread`` (ensemble standard deviation). The grid is cut into blocks over
``lat``/``lon`` with ``time`` whole; one dask task per block gathers the block's land
cells and runs :func:`xsomo.model.rollout.predict_block` on them, so every ensemble member
and the whole layer cascade (1 → 2 → 3) run inside the block and the upper layers'
predictions never go through disk. The first ``spinup`` days of the drivers are the
spin-up of the roll-out and are not part of the output.

Blocks run on the GPU when one is present (``device="auto"``), otherwise on CPU
threads; under a :class:`dask.distributed.Client` they run on its workers (the model
travels to them once, as a pickled object holding state dicts, never as open files).

References
----------
O, S., Orth, R. (2021): Global soil moisture data derived through machine learning
trained with in-situ measurements. Sci. Data 8, 170, doi:10.1038/s41597-021-00964-1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import dask
import dask.array as da
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from xsomo import conventions as cv
from xsomo.drivers.points import is_points
from xsomo.drivers.regions import land_cells
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError
from xsomo.io.somo import STATE_COMPLETE_VAR, STATE_STATIC_VAR, STATE_VAR
from xsomo.model.inputs import daily_at_midnight
from xsomo.prediction.points import predict_points, wanted_layers
from xsomo.runtime import cpu_cores, resolve_device, user_stacklevel

if TYPE_CHECKING:
    from xsomo.model import TrainedModel

__all__ = ["GAP_DAYS", "SPINUP_DAYS", "STATE", "STATE_COMPLETE", "default_chunks", "model_identity", "predict"]

log = logging.getLogger(__name__)

Mode = Literal["continuous", "windowed", "auto"]
Dtype = Literal["float32", "float64"]

#: Upper bound of cell-days per dask block used to pick default chunks (bounds memory).
BLOCK_CELL_DAYS = 8_000_000
#: Cells per kernel call of the roll-out inside a block (with TIME_CHUNK, bounds its memory).
CELLS_PER_CALL = 2048
#: Days per kernel call of the continuous roll-out (the state is carried across).
TIME_CHUNK = 256

#: Networks this small run each block on one torch thread (the step is too small to split).
SMALL_HIDDEN = 64

#: Land cells sampled by the up-front convergence check.
CHECK_SAMPLE = 32

#: The variable that counts, per cell, the output days masked for lack of forcing.
GAP_DAYS = "missing_forcing_days"
#: The variable that says, per cell, which roll-out its block ran: the continuous
#: roll-out's spin-up in days, -1 for window-by-window prediction, 0 for a block without land.
SPINUP_DAYS = "rollout_spinup_days"
#: Attribute of a prediction continued from a saved state (and of the files an extension writes):
#: the ``xsomo_drivers_id`` of the run that saved the state, which the output it extends must carry.
CONTINUED_FROM_DRIVERS = "continued_from_drivers_id"
#: The variable holding the LSTM state after the last day (``return_state=True``):
#: ``(state_layer, member, hc, lat, lon, unit)``, ``hc`` = ``["h", "c"]``, NaN off land.
STATE = STATE_VAR
#: The variable beside :data:`STATE`: per cell, the days of complete forcing that ended with the
#: state's last day (at most ``lookback - 1``), so that a continued prediction masks the first new
#: days whose lookback window reaches back to a forcing gap, as one prediction over the whole period.
STATE_COMPLETE = STATE_COMPLETE_VAR
#: :data:`SPINUP_DAYS` of a block continued from a saved state.
CONTINUED = -2


# ----------------------------------------------------------------------------- helpers


def _cfg(model: Any, name: str, default: Any = None) -> Any:
    cfg = getattr(model, "config", None)
    return getattr(cfg, name, default) if cfg is not None else default


def _model_layers(model: Any) -> list[int]:
    layers = _cfg(model, "layers", cv.LAYER_NUMBERS)
    return [int(n) for n in layers]


def default_chunks(
    nlat: int, nlon: int, ndays: int, *, device: str = "cpu", min_blocks: int | None = None
) -> dict[str, int]:
    """Block size (cells in lat and lon) so a block holds at most ~``BLOCK_CELL_DAYS`` cell-days.

    The side is a power of two between 8 and 128 (a GPU gets four times more cells), so
    blocks tile the output files' chunks. On the CPU the side is halved (down to 8) until
    there are at least ``min_blocks`` blocks (default: the CPU cores), so small grids keep
    every core busy with one single-threaded block each.
    """
    gpu = device.startswith("cuda")
    budget = BLOCK_CELL_DAYS * (4 if gpu else 1)
    side = math.sqrt(budget / max(ndays, 1))
    side = int(2 ** math.floor(math.log2(max(side, 1.0))))
    side = min(max(side, 8), 128)
    want = 1 if gpu else (cpu_cores() if min_blocks is None else min_blocks)
    while side > 8 and math.ceil(nlat / side) * math.ceil(nlon / side) < want:
        side //= 2
    return {cv.LAT: min(side, nlat), cv.LON: min(side, nlon)}


def _normalise_chunks(
    chunks: int | Mapping[str, int] | None, nlat: int, nlon: int, ndays: int, device: str
) -> dict[str, int]:
    if chunks is None:
        return default_chunks(nlat, nlon, ndays, device=device)
    if isinstance(chunks, int | np.integer):
        if chunks < 1:
            raise XsomoValueError(f"chunks={chunks!r}: give a positive number of cells per block")
        side = max(1, round(math.sqrt(int(chunks))))
        return {cv.LAT: min(side, nlat), cv.LON: min(side, nlon)}
    unknown = set(chunks) - {cv.LAT, cv.LON}
    if unknown:
        raise XsomoValueError(
            f"chunks={dict(chunks)!r}: blocks are cut over 'lat' and 'lon' only (time stays whole); "
            f"unknown dims {sorted(unknown)}"
        )
    out = {
        cv.LAT: int(chunks.get(cv.LAT, nlat)),
        cv.LON: int(chunks.get(cv.LON, nlon)),
    }
    out = {k: (v if v > 0 else (nlat if k == cv.LAT else nlon)) for k, v in out.items()}
    return {cv.LAT: min(out[cv.LAT], nlat), cv.LON: min(out[cv.LON], nlon)}


def _lat_chunks(nlat: int, size: int) -> tuple[int, ...]:
    """Chunks of an ASCENDING lat axis whose boundaries sit on multiples of ``size`` from the NORTH.

    Output files store lat descending; this keeps the blocks aligned with the files' chunks.
    """
    rest = nlat % size
    full = (size,) * (nlat // size)
    return ((rest,) if rest else ()) + full


def _lon_chunks(nlon: int, size: int) -> tuple[int, ...]:
    rest = nlon % size
    return (size,) * (nlon // size) + ((rest,) if rest else ())


def _check_daily(time: Any, *, source: str) -> None:
    from xsomo.model.inputs import check_daily_axis

    check_daily_axis(time, source=source)


def _output_period(times: pd.DatetimeIndex, spinup: int, time: Any) -> tuple[int, int]:
    """Indices ``(first, stop)`` of the output period in ``times`` (spin-up before ``first``)."""
    if time is None:
        if times.size <= spinup:
            raise GridMismatchError(
                f"drivers cover {times.size} days ({times[0].date()} to {times[-1].date()}), "
                f"not more than the spin-up of {spinup} days: nothing is left to predict. "
                "Give longer drivers or a shorter spinup= (--spinup)."
            )
        return spinup, times.size
    if isinstance(time, slice):
        start, end = time.start, time.stop
    elif isinstance(time, str):
        start = end = time
    else:
        start, end = time
    # a partial date stands for its whole month or year, as in xarray's .sel (the end of
    # "2016-07" had been its first day: one day of output for July; QA)
    start = _period_bound(start, "start") if start is not None else times[spinup]
    end = _period_bound(end, "end") if end is not None else times[-1]
    if end < start:
        raise XsomoValueError(f"time=({start.date()}, {end.date()}): the end is before the start")
    if start < times[0] or end > times[-1]:
        raise GridMismatchError(
            f"output period {start.date()} to {end.date()} is not covered by the drivers, which run "
            f"from {times[0].date()} to {times[-1].date()}. Give drivers covering the period plus "
            f"{spinup} spin-up days before it, or change time=."
        )
    first = int(times.searchsorted(start))
    stop = int(times.searchsorted(end, side="right"))
    if first < spinup:
        need = (start - pd.Timedelta(days=spinup)).date()
        raise GridMismatchError(
            f"output from {start.date()} needs {spinup} spin-up days of drivers before it (from {need}), "
            f"but the drivers start on {times[0].date()} ({first} days before). Give earlier drivers, "
            f"start the output on {times[min(spinup, times.size - 1)].date()} or later, or pass a shorter spinup= (--spinup)."
        )
    return first, stop


def _period_bound(value: Any, side: str) -> pd.Timestamp:
    """The first (``side="start"``) or last day of a period bound: a date string with a year
    or month only is the whole year or month, as in xarray's ``.sel``.

    >>> _period_bound("2016-07", "end"), _period_bound("2016", "start"), _period_bound("2016-02-10", "end")
    (Timestamp('2016-07-31 00:00:00'), Timestamp('2016-01-01 00:00:00'), Timestamp('2016-02-10 00:00:00'))
    """
    if isinstance(value, str):
        try:
            period = pd.Period(value.strip())
        except (ValueError, TypeError) as err:
            raise XsomoValueError(f"time=: {value!r} is not a date (give e.g. '2016', '2016-07' or '2016-07-15')") from err
        if period.freqstr[:1] in ("Y", "A", "Q", "M"):
            return (period.start_time if side == "start" else period.end_time).normalize()
        return pd.Timestamp(value.strip())
    return pd.Timestamp(value)


def _driver_array(drivers: xr.Dataset, name: str) -> xr.DataArray:
    from xsomo.model.inputs import driver_variable

    return driver_variable(drivers, name, source="drivers")


def _gap_mask(missing: np.ndarray, window: int) -> np.ndarray:
    """``True`` at (cell, day) whose trailing ``window``-day window holds a missing input."""
    cs = np.cumsum(missing, axis=1, dtype=np.int32)
    lagged = np.zeros_like(cs)
    if window < cs.shape[1]:
        lagged[:, window:] = cs[:, :-window]
    return (cs - lagged) > 0


def _missing_after_state(
    missing: np.ndarray, history: int, complete: np.ndarray | None, window: int
) -> tuple[np.ndarray, int]:
    """``missing (cells, history + T)`` of a block continued from a saved state, extended to the
    ``window - 1`` days before the new ones: those the drivers hold (``history``) and the saved
    state's record of them (``complete``: the days of complete forcing that ended with the
    state's last day, :data:`STATE_COMPLETE`; ``None`` for a state saved without it). Returns
    the array and the index of the first new day in it.

    >>> m = np.zeros((2, 5), bool)  # no history, 5 new days, all complete
    >>> ext, first = _missing_after_state(m, 0, np.array([1, 9]), window=4)
    >>> first, ext[0, :first].tolist(), ext[1, :first].tolist()
    (3, [False, True, False], [False, False, False])
    >>> _gap_mask(ext, 4)[:, first:].sum(axis=1).tolist()  # the gap 2 days back: 2 new days
    [2, 0]
    """
    before = max(window, 1) - 1
    pre = np.zeros((missing.shape[0], before), bool)
    if complete is not None and before:
        run = np.asarray(complete, dtype=np.int64)
        hit = run < before
        pre[np.nonzero(hit)[0], before - 1 - run[hit]] = True
    h = min(history, before)
    if h:
        pre[:, before - h :] |= missing[:, history - h : history]
    return np.concatenate([pre, missing[:, history:]], axis=1), before


def _trailing_complete(missing: np.ndarray, window: int) -> np.ndarray:
    """Days of complete forcing that end with the last day, per cell, at most ``window - 1``
    (all a later gap mask reads; a cell without a missing day gets ``window - 1``).

    >>> _trailing_complete(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]], bool), 10).tolist()
    [2, 9, 0]
    """
    cap = max(window, 1) - 1
    if missing.shape[1] == 0:
        return np.full(missing.shape[0], cap, np.int32)
    run = np.where(missing.any(axis=1), np.argmax(missing[:, ::-1], axis=1), cap)
    return np.minimum(run, cap).astype(np.int32)


def _warn_static_gaps(drivers: xr.Dataset, static: Sequence[str], dynamic: Sequence[str]) -> None:
    """Warn about land cells without a value of a static input: their prediction is NaN.

    Land is the ``land_mask``, or else the cells with every dynamic input on the first day. A
    static input NaN on land (a map that does not reach the coast, a failed download) had
    blanked those cells' predictions without a word (hostile-input QA).
    """
    if not static:
        return
    land = _land(drivers)
    if cv.LAND_MASK not in drivers.variables:
        for name in dynamic:
            land &= np.isfinite(np.asarray(drivers[name].isel({cv.TIME: 0}).transpose(cv.LAT, cv.LON).values, float))
    n_land = int(land.sum())
    gaps = {}
    for name in static:
        bad = land & ~np.isfinite(np.asarray(drivers[name].transpose(cv.LAT, cv.LON).values, float))
        if bad.any():
            gaps[str(name)] = int(bad.sum())
    if gaps and n_land and max(gaps.values()) == n_land:
        raise XsomoValueError(
            f"no land cell has a value of the static input(s) {[k for k, v in gaps.items() if v == n_land]}: every "
            "prediction would be NaN. Give those statics (the drivers' file or the sources file) and retry."
        )
    if gaps:
        warnings.warn(
            f"land cells without a value of the static input(s) {gaps} (of {n_land} land cells) get no prediction "
            "(NaN). Fill those statics (e.g. from the nearest cell) or choose other static= inputs when training.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


def _land(drivers: xr.Dataset) -> np.ndarray:
    """The ``land_mask`` as a ``(lat, lon)`` bool array (NaN: sea); every cell without one."""
    if cv.LAND_MASK in drivers.variables:
        return np.asarray(land_cells(drivers[cv.LAND_MASK].transpose(cv.LAT, cv.LON)).values, bool)
    return np.ones((drivers.sizes[cv.LAT], drivers.sizes[cv.LON]), bool)


def _land_with_statics(drivers: xr.Dataset, static: Sequence[str]) -> np.ndarray:
    """Land cells (:func:`_land`) where every static input in ``static`` has a value."""
    ok = _land(drivers)
    for name in static:
        ok &= np.isfinite(np.asarray(drivers[name].transpose(cv.LAT, cv.LON).values, float))
    return ok


def _sample_cells(drivers: xr.Dataset, static: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` land cells with finite statics, spread evenly over the grid (row-major)."""
    iy, ix = np.nonzero(_land_with_statics(drivers, static))
    if iy.size > n:
        pick = np.linspace(0, iy.size - 1, n).round().astype(int)
        iy, ix = iy[pick], ix[pick]
    return iy, ix


def _is_small(model: Any) -> bool:
    """An LSTM step this small runs faster on one torch thread (measured)."""
    return int(_cfg(model, "hidden", 128) or 128) <= SMALL_HIDDEN


def _small_threads(model: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on one torch thread when the model is small (restored afterwards)."""
    import torch

    if not _is_small(model):
        return fn(*args, **kwargs)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(old)


def _checked_spinup(
    drivers: xr.Dataset,
    model: Any,
    dynamic: list[str],
    static: list[str],
    *,
    first: int,
    spinup: int,
    mode: str,
    max_spinup: int,
    sample: int,
    tolerance: float,
    dtype: Dtype = "float32",
    strict: bool = False,
) -> int:
    """The shortest spin-up (``spinup``, doubled while history allows) after which the
    roll-outs from different initial states meet on a sample of cells; warns if none does."""
    from xsomo.model import rollout

    iy, ix = _sample_cells(drivers, static, sample)
    if iy.size == 0:
        return spinup
    cells = {cv.LAT: xr.DataArray(iy, dims="cell"), cv.LON: xr.DataArray(ix, dims="cell")}
    stat = np.stack(
        [np.asarray(_driver_array(drivers, v).isel(cells).values, np.float64) for v in static],
        axis=-1,
    )
    limit = max(spinup, min(first, max_spinup))
    candidates = [spinup]
    # from no spin-up (spinup=0), the next try is the lookback (max_spinup is 4 lookbacks)
    while (nxt := candidates[-1] * 2 if candidates[-1] > 0 else max(1, max_spinup // 4)) <= limit:
        candidates.append(nxt)
    if candidates[-1] < limit:
        candidates.append(limit)
    worst = np.nan
    for steps in candidates:
        if steps == 0:  # no spin-up: the first day is the initial state's, which never agrees
            continue
        t0 = first - steps
        t1 = min(first + rollout.CHECK_EXTRA_DAYS, drivers.sizes[cv.TIME])
        window = {**cells, cv.TIME: slice(t0, t1)}
        dyn = np.stack(
            [
                np.asarray(
                    _driver_array(drivers, v).isel(window).transpose("cell", cv.TIME).values,
                    np.float64,
                )
                for v in dynamic
            ],
            axis=-1,
        )
        dist = _small_threads(
            model, rollout.convergence_distance, model, dyn, stat, steps=steps, dtype=dtype
        )
        worst = float(np.nanmax(dist)) if np.isfinite(dist).any() else 0.0
        if worst < tolerance:
            if steps > spinup:
                warnings.warn(
                    f"the model does not forget its initial state within the {spinup}-day spin-up "
                    f"(roll-outs from different states differ by more than {tolerance:g} m3 m-3 on {iy.size} "
                    f"sample cells); the spin-up is lengthened to {steps} days, which the drivers hold.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            log.info("convergence check: distance %.2g m3 m-3 after %d days", worst, steps)
            return steps
    if strict:
        # return_state in auto: blocks would go window by window, which has no state, and the
        # run failed only after computing them (hours on a large grid; QA)
        raise XsomoValueError(
            f"return_state=True (--save-state): the model does not forget its initial state within {candidates[-1]} "
            f"days (roll-outs from different initial states still differ by {worst:.3g} m3 m-3, tolerance "
            f"{tolerance:g}, on {iy.size} sample cells), so mode='auto' would predict window by window, which has no "
            "state to continue from. Nothing was computed. Predict with mode='continuous' (--mode continuous: within "
            "about that distance of windowed prediction), with a larger tolerance= (--tolerance), with drivers "
            "holding more history before the period, or without saving a state"
        )
    if candidates[-1] == 0:
        warnings.warn(
            "spinup=0 and the drivers hold no day before the output period: the roll-out starts from its initial "
            "state on the first day, and the first weeks depend on that state (up to ~0.04 m3 m-3 on day 1 in "
            "xsomo's tests). Give drivers with history before the period (the lookback, "
            f"{max(1, max_spinup // 4)} days) or predict from a later start.",
            RuntimeWarning,
            stacklevel=3,
        )
        return spinup
    fallback = (
        "mode='auto' tries, per block, the continuous roll-out with a spin-up of 2x and 3x the lookback "
        "(on earlier forcing, or the first year of forcing cycled where the drivers hold none) and runs "
        "window-by-window prediction (exact but ~300x slower) only in blocks where none passes"
        if mode == "auto"
        else "the continuous roll-out may differ from window-by-window prediction by about that much; "
        "use mode='auto' or 'windowed'"
    )
    warnings.warn(
        f"the model does not forget its initial state within {candidates[-1]} days: roll-outs from "
        f"different initial states still differ by {worst:.3g} m3 m-3 (tolerance {tolerance:g}) on {iy.size} "
        f"sample cells; {fallback}. Drivers with more history before the output period allow a longer "
        "spin-up (max_spinup=).",
        RuntimeWarning,
        stacklevel=3,
    )
    return spinup


def _predictor() -> Callable[..., np.ndarray]:
    """The block kernel, :func:`xsomo.model.rollout.predict_block` (a hook tests can replace)."""
    from xsomo.model.rollout import predict_block

    return predict_block


def _portable(model: Any) -> Any:
    """A shallow copy without cached networks (which may sit on a GPU), cheap to pickle."""
    import copy

    if not hasattr(model, "_cache"):
        return model
    out = copy.copy(model)
    out._cache = {}
    return out


def _in_distributed_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _set_threads(threads: int | None) -> None:
    """Run this block on ``threads`` torch threads (left to the worker under dask.distributed)."""
    if not threads or _in_distributed_worker():
        return  # the worker's nanny sets OMP/torch threads (dask config); leave it
    import torch

    if torch.get_num_threads() != int(threads):
        torch.set_num_threads(int(threads))


def model_identity(model: Any) -> str:
    """A short hash of a model's weights, configuration and normalisation statistics.

    Two models give the same identity exactly when their networks compute the same
    numbers; written into every output file (``xsomo_model_id``) so that a resumed or
    extended run never mixes the files of two models. A model's own ``identity`` string
    attribute is used when it has one.
    """
    own = getattr(model, "identity", None)
    if isinstance(own, str) and own:
        return own
    h = hashlib.sha256()

    def plain(obj: Any) -> Any:
        return np.asarray(obj).tolist() if not isinstance(obj, str | int | float) else obj

    for part in ("config", "stats"):
        obj = getattr(model, part, None)
        if obj is not None and hasattr(obj, "to_dict"):
            h.update(json.dumps(obj.to_dict(), sort_keys=True, default=plain).encode())
    weights = getattr(model, "weights", None)
    if isinstance(weights, Mapping) and weights:
        for key in sorted(weights, key=str):
            for name in sorted(weights[key]):
                tensor = weights[key][name]
                h.update(f"{key}.{name}".encode())
                h.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
    else:
        h.update(f"{type(model).__module__}.{type(model).__qualname__}:{id(model)}".encode())
    return "sha256:" + h.hexdigest()[:32]


#: Days of each dynamic input held in memory whose values go into :func:`drivers_identity`
#: (first, middle, last).
IDENTITY_SAMPLE_DAYS = 3


def drivers_identity(drivers: xr.Dataset, names: Sequence[str]) -> str:
    """A short hash of the drivers a prediction reads, for its files' ``xsomo_drivers_id``.

    Per input in ``names``: its dimensions, shape, dtype and attributes (units included), the
    file it was read from (path, size and modification time, where xarray recorded it), and
    its data: the name of its dask graph (dask derives it from the files and their times, or
    from a hash of the array it chunked), or where it is a numpy array in memory its values
    (all of a static input, :data:`IDENTITY_SAMPLE_DAYS` days of a dynamic one); the grid or
    stations and the days. Nothing is computed or read. A rerun on drivers prepared again
    (another soil map, corrected units or precipitation) does not skip the files of the
    first run: the period alone had let it keep files 0.05 m3 m-3 off. Not seen: a few
    values changed in place in numpy drivers between two runs into one folder (pass
    ``overwrite=True`` then).
    """
    h = hashlib.sha256()

    def add(*parts: Any) -> None:
        for part in parts:
            h.update(part if isinstance(part, bytes) else repr(part).encode())
            h.update(b"\0")

    for name in names:
        if name not in drivers.variables:
            continue
        var = drivers[name]
        add(name, var.dims, var.shape, str(var.dtype), sorted((str(k), str(v)) for k, v in var.attrs.items()))
        source = var.encoding.get("source")
        if isinstance(source, str) and os.path.exists(source):
            st = os.stat(source)
            add(source, st.st_size, st.st_mtime_ns)
        if var.chunks is not None:
            add(str(getattr(var.data, "name", "")))
        elif isinstance(getattr(var.variable, "_data", None), np.ndarray):  # in memory: no read
            if cv.TIME in var.dims and var.sizes[cv.TIME] > 0:
                n = var.sizes[cv.TIME]
                k = IDENTITY_SAMPLE_DAYS
                var = var.isel({cv.TIME: sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(k)})})
            add(np.ascontiguousarray(np.asarray(var.values, dtype="float64")).tobytes())
    for coord in (cv.LAT, cv.LON, cv.STATION):
        if coord in drivers.coords:
            add(coord, np.ascontiguousarray(np.asarray(drivers[coord].values, dtype="float64")).tobytes())
    if cv.TIME in drivers.indexes:
        t = pd.DatetimeIndex(drivers.indexes[cv.TIME])
        add(str(t[0]), str(t[-1]), t.size)
    return "sha256:" + h.hexdigest()[:32]


# ----------------------------------------------------------------------------- block kernels


def _land_cells(mask: np.ndarray, stat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    land = np.asarray(mask, bool) & np.isfinite(stat).all(axis=0)
    return np.nonzero(land)


def _run_block(
    dyn: np.ndarray,
    stat: np.ndarray,
    mask: np.ndarray,
    model: Any,
    predictor: Callable[..., np.ndarray],
    *,
    layer_index: Sequence[int],
    first: int,
    mode: str,
    spinup: int,
    device: str,
    window: int,
    threads: int | None,
    cells_per_call: int,
    tolerance: float,
    check_cells: int | None = None,
    dtype: Dtype = "float32",
    history: int = 0,
    state: np.ndarray | None = None,
    complete: np.ndarray | None = None,
    return_state: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One block: ``dyn (V, H + T, ny, nx)``, ``stat (S, ny, nx)``, ``mask (ny, nx)`` →
    ``(2, n_layers, T - first, ny, nx)`` float32 holding ensemble mean and std, and the
    ``(ny, nx)`` int32 map of the roll-out that ran (:data:`SPINUP_DAYS`).

    The first ``history`` days of ``dyn`` precede the roll-out's start; only ``auto``'s
    ladder reads them, for spin-ups longer than ``spinup``. The raw inputs keep their own
    floating precision here (float64 in ``dtype="float64"``); the roll-out z-scores them
    in float64 and runs in ``dtype``; mean and std are taken in ``dtype`` and stored as
    float32 (~3e-8 m3 m-3 resolution at 0.3 m3 m-3).

    ``state`` ``(layers, members, 2, ny, nx, hidden)`` continues a saved roll-out from the
    first day after ``history`` (no spin-up), ``complete (ny, nx)`` its record of the forcing
    before (:data:`STATE_COMPLETE`, for the gap mask of the first new days); with
    ``return_state`` the third output is the state after the last day in that layout (NaN off
    land) and the fourth the new record (``(ny, nx)`` int32), else empty arrays."""
    from xsomo.model import rollout

    _n_dyn, ntime, ny, nx = dyn.shape
    n_out = ntime - history - first
    out = np.full((2, len(layer_index), n_out, ny, nx), np.nan, dtype=np.float32)
    chosen = np.zeros((ny, nx), np.int32)
    cfg = model.config
    state_out = (
        np.full((len(cfg.layers), cfg.ensemble, 2, ny, nx, cfg.hidden), np.nan, dtype=dtype)
        if return_state
        else np.zeros(0, np.float32)
    )
    complete_out = np.full((ny, nx), max(window, 1) - 1, np.int32) if return_state else np.zeros(0, np.int32)
    iy, ix = _land_cells(mask, stat)
    if iy.size == 0:
        return out, chosen, state_out, complete_out
    _set_threads(threads)
    device = resolve_device(device)
    x_all = np.ascontiguousarray(np.moveaxis(dyn[:, :, iy, ix], (0, 1, 2), (2, 1, 0)))
    hist, x = x_all[:, :history], x_all[:, history:]
    s = np.ascontiguousarray(stat[:, iy, ix].T)
    # NaN forcing goes through: the roll-out carries its state over such a day (inputs at
    # their training mean); every output day whose window reads one is masked below
    missing = ~np.isfinite(x_all).all(axis=2)  # (cells, time), the history included
    new_from = history
    if state is not None:  # the days before the new ones: the drivers' and the state's record
        cells_complete = None if complete is None else np.asarray(complete)[iy, ix]
        missing, new_from = _missing_after_state(missing, history, cells_complete, window)
    if return_state:
        complete_out[iy, ix] = _trailing_complete(missing, window)
    spinup = max(1, spinup)
    steps: int | None = spinup
    extra: dict[str, Any] = {}
    if return_state:
        extra = {"return_state": True, "return_info": True}
    if state is not None:
        extra["state"] = state[:, :, :, iy, ix, :]  # (layers, members, 2, cells, hidden)
        mode = "continuous"
    if mode == "auto":
        steps = _block_rollout(
            model, x, s, hist, spinup=spinup, device=device, n=check_cells, dtype=dtype,
            tolerance=tolerance,
        )  # fmt: skip
    if state is not None:
        run, forcing, skip, chosen[iy, ix] = "continuous", x, 0, CONTINUED
    elif mode == "windowed" or steps is None:
        run, forcing, skip, chosen[iy, ix] = "windowed", x, 0, -1
        extra["history"] = hist  # (the cascade's upper layers read their windows' days from it)
    else:
        forcing = rollout.spinup_forcing(x, hist, steps, spinup)
        run, skip, chosen[iy, ix] = "continuous", steps - spinup, steps
    del x_all
    result = predictor(
        model,
        forcing,
        s,
        mode=run,
        spinup=spinup + skip,
        device=device,
        # the GPU takes the whole block at once (rollout's default batch); the CPU goes in
        # batches that keep the LSTM's (batch, time_chunk, hidden) activations small
        batch_size=None if device.startswith("cuda") else min(cells_per_call, iy.size),
        time_chunk=TIME_CHUNK,
        dtype=dtype,
        tolerance=tolerance,
        **extra,
    )
    if return_state:
        result, info = result
        state_out[:, :, :, iy, ix, :] = info.state
    pred = np.asarray(result)  # (layers, members, cells, time)
    del forcing, result
    pred = pred[list(layer_index)][..., skip + first :]
    mean = pred.mean(axis=1)
    std = pred.std(axis=1)
    del pred
    if missing.any():
        bad = _gap_mask(missing, window)[:, new_from + first :]
        mean[:, bad] = np.nan
        std[:, bad] = np.nan
    out[0][:, :, iy, ix] = np.moveaxis(mean, 1, 2)
    out[1][:, :, iy, ix] = np.moveaxis(std, 1, 2)
    return out, chosen, state_out, complete_out


def _block_rollout(
    model: Any,
    x: np.ndarray,
    s: np.ndarray,
    hist: np.ndarray,
    *,
    spinup: int,
    device: str,
    n: int | None,
    tolerance: float,
    dtype: Dtype = "float32",
) -> int | None:
    """``auto``'s decision for a block: the spin-up of the continuous roll-out, or ``None``
    for windows (:func:`xsomo.model.rollout.choose_rollout`, the ladder), from the
    convergence check on ``n`` of its cells (all when ``None``).

    The check costs ``3 * (spinup + 30)`` cell-days per checked cell and rung, i.e. 40 %
    of an 8-year roll-out if every cell were checked at the first rung; a sample of the
    block's cells, evenly spread, keeps it small.
    """
    from xsomo.model import rollout

    if x.shape[1] < spinup:
        log.warning("block has %d days, fewer than the spin-up %d: windowed", x.shape[1], spinup)
        return None
    pick = np.arange(x.shape[0])
    if n and x.shape[0] > n:
        pick = np.linspace(0, x.shape[0] - 1, n).round().astype(int)
    steps, tried = rollout.choose_rollout(
        model, x[pick], s[pick], spinup=spinup, history=hist[pick], tolerance=tolerance,
        device=device, dtype=dtype,
    )  # fmt: skip
    msg = rollout.describe_choice(steps, tried, tolerance, pick.size) + f" of {x.shape[0]} cells"
    (log.info if steps == spinup else log.warning)(msg)
    return steps


def _gap_days(
    dyn: np.ndarray,
    stat: np.ndarray,
    mask: np.ndarray,
    complete: np.ndarray | None = None,
    *,
    first: int,
    window: int,
    continued: bool = False,
) -> np.ndarray:
    """Output days per cell masked because their window lacks forcing (``int32 (ny, nx)``);
    ``continued``: the block continues a saved state (``first`` days of history, the state's
    record ``complete`` of the days before, as in :func:`_run_block`)."""
    _, _, ny, nx = dyn.shape
    out = np.zeros((ny, nx), np.int32)
    iy, ix = _land_cells(mask, stat)
    if iy.size == 0:
        return out
    missing = ~np.isfinite(dyn[:, :, iy, ix]).all(axis=0).T  # (cells, time)
    if continued:
        cells_complete = None if complete is None else np.asarray(complete)[iy, ix]
        missing, first = _missing_after_state(missing, first, cells_complete, window)
    if missing.any():
        out[iy, ix] = _gap_mask(missing, window)[:, first:].sum(axis=1)
    return out


# ----------------------------------------------------------------------------- public


def predict(
    drivers: xr.Dataset,
    model: TrainedModel,
    *,
    layers: Sequence[int] | int | None = None,
    mode: Mode = "auto",
    chunks: int | Mapping[str, int] | None = None,
    device: str = "auto",
    spinup: int | None = None,
    time: slice | tuple[Any, Any] | str | None = None,
    grid: cv.GridSpec | None = None,
    client: Any = None,
    check_convergence: bool = True,
    max_spinup: int | None = None,
    check_cells: int | None = 64,
    dtype: Dtype = "float32",
    tolerance: float | None = None,
    threads: int | None = None,
    state: xr.Dataset | str | os.PathLike[str] | None = None,
    return_state: bool = False,
) -> xr.Dataset:
    """Lazy soil-moisture prediction for every land cell of ``drivers``.

    Parameters
    ----------
    drivers
        Dynamic forcings ``(time, lat, lon)``, static features ``(lat, lon)`` and
        ``land_mask`` (docs/internals.md §2); numpy- or dask-backed, daily, regular grid.
        Point drivers (``station`` instead of ``lat``/``lon``, :func:`xsomo.point_drivers`)
        go to :func:`xsomo.prediction.points.predict_points` and give ``sm(layer, time, station)``.
        Variables with canonical names are converted to canonical units.
    model
        The trained cascade; its ``config.dynamic`` / ``config.static`` name the inputs.
    layers
        Layers to return (default: all the model predicts). The cascade always runs
        from layer 1, so upper layers are computed even when not returned.
    mode
        ``"continuous"`` (one stateful roll-out per block), ``"windowed"`` (each day
        from its own lookback window; in a cascade the layer above on each day of a window
        comes from that day's own window, so layers 2 and 3 read up to 1x and 2x
        ``lookback - 1`` days more before the spin-up, where the drivers hold them, and a
        day's value does not depend on where the output starts; on the first days after
        the drivers' start they come from partial windows) or ``"auto"`` (per block: continuous where the model
        provably forgets its initial state within the spin-up; else continuous with a
        spin-up of 2x, then 3x the lookback where that passes the check, on forcing before
        the spin-up or the first 365 days of the drivers cycled where they hold none;
        windowed only where no rung passes; :func:`xsomo.model.rollout.choose_rollout`).
    chunks
        Block size: cells per block (int, a square block) or ``{"lat": ny, "lon": nx}``;
        default: a power-of-two side bounding a block to ~8 M cell-days.
    device
        ``"auto"`` (GPU when present, else CPU), ``"cpu"`` or ``"cuda[:N]"``; resolved
        where the block runs.
    spinup
        Spin-up days before the output period (default ``model.config.lookback``).
    time
        Output period ``(start, end)``, a slice or a year ``"YYYY"``; the drivers must
        hold ``spinup`` days before it. Default: the drivers' period minus the spin-up.
    grid
        If given, the drivers must lie on exactly this grid.
    client
        A :class:`dask.distributed.Client` (kept for the API; the result is a plain dask graph
        with the model as one key). Whether given or not, an active client (if any) runs the
        blocks when the result is computed; a worker lost on the way is recomputed as dask
        does, and the result computes on any scheduler.
    check_convergence
        For ``continuous``/``auto``: check now, on a sample of land cells, that roll-outs
        from different initial states meet within the spin-up; if not, lengthen the
        spin-up (doubling it, up to ``max_spinup`` and the history the drivers hold
        before the output period) and warn when even that is not enough. Also (and for
        in-memory drivers always) compare a sample of the inputs with the model's training
        statistics and warn when one looks mislabelled (e.g. precipitation in m labelled mm).
    max_spinup
        Longest spin-up the check may choose (default four lookbacks).
    check_cells
        ``auto`` decides per block from the convergence check on this many of the block's
        cells (evenly spread); ``None`` checks every cell (costs ~40 % of an 8-year roll-out).
    dtype
        Precision of the roll-out: ``"float32"`` (default) or ``"float64"`` (a float64
        copy of each network; the model is not changed; ~2-3x slower on a CPU). The
        drivers keep their own precision up to the z-score, which is taken in float64
        (float64 drivers are not rounded to float32 first). float64 is what reproduces
        the published SoMo.ml v1 output to 1e-5 m3 m-3 on every day (docs/somoml_v1.md).
        The returned ``sm``/``sm_spread`` are float32 either way.
    tolerance
        Largest difference (m3 m-3) between roll-outs from different initial states after
        the spin-up that lets ``auto`` use the continuous roll-out (default
        :data:`xsomo.model.rollout.DEFAULT_TOLERANCE`, 1e-3). The check measures this bound on
        the block's own forcing: with a looser tolerance the fast roll-out runs where its
        measured dependence on the initial state is below it, instead of window by window.
    threads
        Torch threads each block runs on (CPU). Default: the cores shared among the blocks
        that run at once (dask's threads, or :func:`~xsomo.prediction.output.to_files`'
        default concurrency), one for small networks (hidden <= 64, faster measured).
    state
        A saved state (a state file, :func:`xsomo.io.somo.read_state`, or a prediction made
        with ``return_state=True``): continue that roll-out over the days after its last
        day only, without spin-up (the drivers may hold earlier days; they are not
        recomputed). The state must be of the same model and grid, and the days must join
        on (``time=``, if given, starts the day after the state's last day); ``windowed``
        mode is refused (it has no state; ``auto`` continues the roll-out).
    return_state
        Add the LSTM state after the last day, per layer, member and land cell, as the
        variable ``lstm_state`` (written by :func:`~xsomo.prediction.output.to_files` with
        ``state_file=``, or :func:`xsomo.io.somo.write_state`), to continue the dataset
        later (``xsomo extend``). Needs the continuous roll-out (refused in ``windowed``
        mode; a block that ``auto`` sends to windows raises when computed).

    Returns
    -------
    xarray.Dataset
        ``sm`` and ``sm_spread`` ``(layer, time, lat, lon)`` float32 in m3 m-3, NaN
        off land and on days whose lookback window lacks forcing; ``missing_forcing_days``
        ``(lat, lon)`` counts those days; ``rollout_spinup_days`` ``(lat, lon)`` says which
        roll-out each block ran (spin-up days, -1 windowed); ``spatial_ref`` (EPSG:4326);
        provenance attributes, among them ``xsomo_model_id`` (:func:`model_identity`) and
        ``xsomo_drivers_period`` (the days read).

    Raises
    ------
    MissingVariableError
        When the drivers lack inputs the model needs (all are listed).
    GridMismatchError
        When the drivers' grid or period does not match what is asked.

    Notes
    -----
    With a continuous roll-out, a day's prediction depends on the whole past; a window
    of ``lookback`` days lacking forcing makes a windowed prediction impossible, so those
    days are NaN here too (gaps are filled with the cell mean only to keep the roll-out's
    state finite, and every output day reading a filled value is masked).

    Examples
    --------
    >>> sm = drivers.somo.predict(model, chunks={"lat": 32, "lon": 32})  # doctest: +SKIP
    >>> sm.somo.to_files("out/")  # doctest: +SKIP
    """
    if isinstance(drivers, xr.Dataset) and cv.TIME in drivers.indexes:
        # daily without gaps (first: names a cftime calendar), stamped at midnight
        _check_daily(drivers[cv.TIME].values, source="drivers")
        drivers = daily_at_midnight(drivers)
    if isinstance(drivers, xr.Dataset) and is_points(drivers):
        # drivers indexed by station (issue 18): sm(layer, time, station)
        if state is not None or return_state:
            raise XsomoValueError(
                "state= / return_state=True: saved states are written per grid cell; point (station) "
                "drivers are predicted in one go - predict the whole period again"
            )
        return predict_points(
            drivers, model, layers=layers, mode=mode, device=device,
            spinup=spinup, time=time, dtype=dtype, tolerance=tolerance,
        )  # fmt: skip
    spec = _validate(drivers, model, layers=layers, grid=grid, dtype=dtype, tolerance=tolerance)
    in_memory = not any(isinstance(spec.drivers[v].data, da.Array) for v in spec.dynamic)
    if check_convergence or in_memory:  # (it reads the statics: lazy drivers with check_convergence=False stay unread)
        _warn_static_gaps(spec.drivers, spec.static, spec.dynamic)
    if getattr(model, "stats", None) is not None and (check_convergence or in_memory):
        # a unit mislabel within the physical ranges shows against the training statistics (it
        # reads a sample: with check_convergence=False, dask-backed drivers stay unread)
        from xsomo.model.inputs import check_input_statistics

        check_input_statistics(spec.drivers, model, stacklevel=user_stacklevel())
    if return_state and mode == "windowed":
        raise XsomoValueError(
            "return_state=True: window-by-window prediction has no state to continue from (each day "
            "starts from zero); use mode='continuous' or 'auto'"
        )
    saved = None if state is None else _check_state(state, model, spec)
    plan = _plan(
        spec, model, mode=mode, spinup=spinup, time=time, chunks=chunks, device=device,
        threads=threads, check_convergence=check_convergence, max_spinup=max_spinup, state=saved,
        strict=bool(return_state) and mode == "auto",
    )  # fmt: skip
    plan.return_state = bool(return_state)
    return _build(spec, plan, model, client=client, check_cells=check_cells)


# ----------------------------------------------------------------------------- predict's steps


@dataclass
class _Spec:
    """What :func:`_validate` found: the drivers (ascending grid) and the model's inputs."""

    drivers: xr.Dataset
    dynamic: list[str]
    static: list[str]
    lookback: int
    layers: list[int]  # returned
    layer_index: list[int]  # their positions in the model's layers
    lat: np.ndarray
    lon: np.ndarray
    dtype: Dtype
    tolerance: float


@dataclass
class _Plan:
    """What :func:`_plan` decided: the days read, the spin-up and the blocks."""

    drivers: xr.Dataset  # the days read: history + spin-up + output
    history: int  # days before the roll-out's start (auto's longer spin-ups)
    spinup: int
    mode: str
    out_time: pd.DatetimeIndex
    lat_chunks: tuple[int, ...]
    lon_chunks: tuple[int, ...]
    device: str
    threads: int
    state: xr.Dataset | None = None
    return_state: bool = False


def _static_inputs(spec: _Spec, plan: Any) -> Any:
    """``(static_input, lat, lon)`` float32 (dask) of the model's static inputs in canonical units:
    those of a continued state where there is one (the prediction used them), else the drivers'."""
    from xsomo.model.inputs import driver_variable

    if plan.state is not None and STATE_STATIC_VAR in plan.state.variables:
        saved = plan.state[STATE_STATIC_VAR].transpose("static_input", cv.LAT, cv.LON)
        return da.from_array(np.asarray(saved.sel(static_input=list(spec.static)).values, np.float32))
    parts = [driver_variable(spec.drivers, n).transpose(cv.LAT, cv.LON).astype("float32").data for n in spec.static]
    return da.stack([p if isinstance(p, da.Array) else da.from_array(p) for p in parts])


def _with_state_statics(drivers: xr.Dataset, state: xr.Dataset, static: Sequence[str]) -> xr.Dataset:
    """``drivers`` with the static inputs the state was computed with (warned where they differ).

    A month's drivers prepared again hold climate means over another period (QA: aridity
    moved by up to 12 %, and over January alone by 100 %): with them the new days left the
    prediction over the whole period by up to 2.4e-3 m3 m-3 without a word.
    """
    from xsomo.model.inputs import driver_variable

    if STATE_STATIC_VAR not in state.variables:
        return drivers
    saved = state[STATE_STATIC_VAR].transpose("static_input", cv.LAT, cv.LON)
    names = [str(v) for v in saved["static_input"].values]
    lacking = [n for n in static if n not in names]
    if lacking:
        raise XsomoValueError(
            f"the state holds the static inputs {names}, not {lacking} of this model: it was saved by another model"
        )
    out = drivers.copy()
    moved = []
    for name in static:
        old = np.asarray(saved.sel(static_input=name).values, np.float64)
        new = np.asarray(driver_variable(drivers, name).transpose(cv.LAT, cv.LON).values, np.float64)
        both = np.isfinite(old) & np.isfinite(new)
        diff = np.abs(new - old)[both]
        tol = 1e-5 * np.maximum(np.abs(old[both]), 1.0)
        if (diff > tol).any() or (np.isfinite(old) != np.isfinite(new)).any():
            # relative to the field's own range (a cell of 0 had made it "185893115234375008.0%")
            scale = float(np.nanmax(np.abs(old[both]))) if both.any() else 0.0
            rel = f", {diff.max() / scale:.1%} of the field's largest value" if diff.size and scale > 0 else ""
            moved.append(f"{name} (max difference {diff.max() if diff.size else 0.0:.3g}{rel})")
        out[name] = xr.DataArray(
            old.astype(np.float32), dims=(cv.LAT, cv.LON),
            coords={cv.LAT: drivers[cv.LAT].values, cv.LON: drivers[cv.LON].values},
            attrs=cv.cf_attrs(name) if name in cv.VARIABLES else dict(drivers[name].attrs),
        )  # fmt: skip
    if moved:
        warnings.warn(
            f"the drivers' static inputs differ from those the state was computed with: {', '.join(moved)}. "
            "The state's are used, so that the new days continue the days already predicted (climate means "
            "prepared over another period drift); predict the whole period again to use the new ones.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return out


def _check_state(
    state: xr.Dataset | str | os.PathLike[str], model: Any, spec: _Spec
) -> xr.Dataset:
    """A saved state of this model on this grid (:data:`STATE`, with its last day), or an error."""
    from xsomo.io.somo import read_state

    if not isinstance(state, xr.Dataset):
        state = read_state(state)
    if STATE not in state.variables or "state_last_day" not in state.attrs:
        raise XsomoValueError(
            f"state= holds no {STATE!r} variable with a 'state_last_day' attribute (variables: "
            f"{sorted(map(str, state.variables))}); give a state file written by "
            "`xsomo predict --save-state` or a prediction made with return_state=True"
        )
    mine = model_identity(model)
    theirs = state.attrs.get("xsomo_model_id")
    if theirs != mine:
        raise XsomoValueError(
            f"the state was saved by another model (xsomo_model_id {theirs}, this model {mine}): "
            "continuing it would mix two models. Give the model the state was saved with, or "
            "predict the whole period with this model (xsomo predict)."
        )
    lat = state[cv.LAT].values.astype(float)
    lon = state[cv.LON].values.astype(float)
    if (
        lat.size != spec.lat.size
        or lon.size != spec.lon.size
        or not np.allclose(np.sort(lat), spec.lat, atol=1e-6)
        or not np.allclose(np.sort(lon), spec.lon, atol=1e-6)
    ):
        have = cv.GridSpec.from_coords(np.sort(lat), np.sort(lon))
        want = cv.GridSpec.from_coords(spec.lat, spec.lon)
        raise GridMismatchError(
            f"the state lies on {have} ({lat.size} x {lon.size} cells), the drivers on {want} "
            f"({spec.lat.size} x {spec.lon.size}): give drivers on the grid of the state, or predict "
            "the new grid from the start (xsomo predict)."
        )
    return state.sortby([cv.LAT, cv.LON])


def _validate(
    drivers: xr.Dataset,
    model: Any,
    *,
    layers: Sequence[int] | int | None,
    grid: cv.GridSpec | None,
    dtype: Any,
    tolerance: float | None,
) -> _Spec:
    """Check the arguments, the inputs the model needs, their dims and the grid."""
    if not isinstance(drivers, xr.Dataset):
        raise XsomoValueError(f"drivers must be an xarray.Dataset, got {type(drivers).__name__}")
    if getattr(model, "config", None) is None or not hasattr(model, "networks"):
        hint = (
            f"; load the folder first: xsomo.TrainedModel.load({str(model)!r})"
            if isinstance(model, (str, os.PathLike)) else ""
        )  # fmt: skip
        raise XsomoValueError(
            f"model must be a trained model (train_lstm's result or xsomo.TrainedModel.load(folder)), "
            f"got {type(model).__name__}{hint}"
        )
    from xsomo.model.rollout import DEFAULT_TOLERANCE, check_dtype

    dtype = check_dtype(dtype)
    tolerance = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise XsomoValueError(f"tolerance={tolerance!r}: give a positive number of m3 m-3 (default 1e-3).")
    dynamic = [str(v) for v in (_cfg(model, "dynamic") or cv.DYNAMIC_NAMES)]
    static = [str(v) for v in (_cfg(model, "static") or cv.STATIC_NAMES)]
    lookback = int(_cfg(model, "lookback", 365) or 365)
    model_layers = _model_layers(model)
    _check_inputs(drivers, dynamic, static)
    want = wanted_layers(layers, model_layers)
    drivers, lat, lon = _check_grid(drivers, grid)
    if getattr(model, "stats", None) is not None:  # (a TrainedModel: the grid it was trained on)
        from xsomo.model.inputs import check_grid_resolution, check_input_units

        check_grid_resolution(drivers, model)
        check_input_units(drivers, model)
    return _Spec(
        drivers, dynamic, static, lookback, want, [model_layers.index(n) for n in want],
        lat, lon, dtype, tolerance,
    )  # fmt: skip


def _check_inputs(drivers: xr.Dataset, dynamic: list[str], static: list[str]) -> None:
    missing = [v for v in (*dynamic, *static) if v not in drivers.variables]
    if missing:
        raise MissingVariableError(
            f"drivers lack {len(missing)} input(s) the model needs: {missing}. The model was trained on "
            f"dynamic={dynamic} and static={static}; build the drivers with xsomo.open_drivers or "
            "add the variables under these names."
        )
    for dim in (cv.TIME, cv.LAT, cv.LON):
        if dim not in drivers.dims:
            raise GridMismatchError(
                f"drivers have no {dim!r} dimension (dims: {dict(drivers.sizes)}); rename e.g. "
                "drivers.rename(latitude='lat', longitude='lon')."
            )
    for name in dynamic:
        if set(drivers[name].dims) != {cv.TIME, cv.LAT, cv.LON}:
            raise GridMismatchError(
                f"drivers[{name!r}] has dims {drivers[name].dims}; a dynamic input needs (time, lat, lon)"
            )
    for name in static:
        if set(drivers[name].dims) != {cv.LAT, cv.LON}:
            raise GridMismatchError(
                f"drivers[{name!r}] has dims {drivers[name].dims}; a static input needs (lat, lon)"
            )


def _check_grid(
    drivers: xr.Dataset, grid: cv.GridSpec | None
) -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    """The drivers on an ascending, regular grid (``grid`` if given) and its coordinates."""
    if (
        drivers.indexes[cv.LAT].is_monotonic_decreasing
        or drivers.indexes[cv.LON].is_monotonic_decreasing
    ):
        drivers = drivers.sortby([cv.LAT, cv.LON])
    # the drivers' own values (float32 ones as float64 of the same numbers): the prediction lines
    # up with them in xarray (sm.where(drivers.land_mask)); the files get the decimals they
    # stand for (output.file_coords)
    lat = drivers[cv.LAT].values.astype(float)
    lon = drivers[cv.LON].values.astype(float)
    for name, values in ((cv.LAT, lat), (cv.LON, lon)):
        if values.size > 2:
            step = np.diff(values)
            if not np.allclose(step, step[0], rtol=0, atol=1e-6 * max(1.0, abs(step[0]) * 1e3)):
                raise GridMismatchError(
                    f"drivers' {name!r} is not a regular grid (steps {np.unique(step.round(6))[:5]})."
                    + (cv.lon_wrap_hint(values) if name == cv.LON else "")
                )
    if grid is not None and (
        lat.size != grid.nlat
        or lon.size != grid.nlon
        or not np.allclose(lat, grid.lat, atol=1e-6)
        or not np.allclose(lon, grid.lon, atol=1e-6)
    ):
        have = cv.GridSpec.from_coords(lat, lon) if lat.size and lon.size else None
        raise GridMismatchError(
            f"drivers lie on {have} ({lat.size} × {lon.size}), not on the grid asked for, {grid} "
            f"({grid.nlat} × {grid.nlon}). Regrid the drivers (xsomo.regrid) or pass the right grid=."
        )
    return drivers, lat, lon


def _plan(
    spec: _Spec,
    model: Any,
    *,
    mode: str,
    spinup: int | None,
    time: Any,
    chunks: int | Mapping[str, int] | None,
    device: str,
    threads: int | None,
    check_convergence: bool,
    max_spinup: int | None,
    state: xr.Dataset | None = None,
    strict: bool = False,
) -> _Plan:
    """The output period, the spin-up (checked), the days to read and the blocks; ``strict``:
    a failed convergence check is an error (a saved state needs the continuous roll-out)."""
    from xsomo.model.rollout import ladder_spinups, windowed_history

    if mode not in ("continuous", "windowed", "auto"):
        raise XsomoValueError(f"mode must be 'continuous', 'windowed' or 'auto', got {mode!r}")
    drivers = spec.drivers
    cv.check_time_zone(drivers, "drivers")  # (the daily axis was checked by predict, first)
    times = pd.DatetimeIndex(drivers.indexes[cv.TIME])
    if state is not None:
        if mode == "windowed":
            raise XsomoValueError(
                "state=: a saved state continues the continuous roll-out; window-by-window prediction "
                "has no state (each day starts from zero). Extend with mode='auto' or 'continuous', or "
                "predict the new days with mode='windowed' from drivers holding the lookback before them."
            )
        first, stop = _joining_period(times, state, time)
        spinup, mode = 0, "continuous"
        history = min(first, max(spec.lookback, 1) - 1)  # the gap mask's look back
        if history < max(spec.lookback, 1) - 1 and STATE_COMPLETE not in state.variables:
            # a state saved before xsomo recorded the forcing gaps (QA: 83 days of 176 cells after
            # a December gap had values that one prediction over the whole period leaves NaN)
            need = max(spec.lookback, 1) - 1
            warnings.warn(
                f"the state holds no {STATE_COMPLETE!r} (saved by an older xsomo) and the drivers hold "
                f"{history} of the {need} days before {times[first].date()} that the gap mask looks back on: "
                "a forcing gap among the others is not seen, and the first new days after it get values where "
                f"one prediction over the whole period gives none. Give the drivers the {need} days before the "
                "new ones too (old and new days together are fine).",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        drivers = _with_state_statics(drivers, state, spec.static)
        spec = replace(spec, drivers=drivers)
        return _blocks(spec, model, drivers.isel({cv.TIME: slice(first - history, stop)}), history,
                       spinup, mode, chunks, device, threads, state)  # fmt: skip
    spinup = spec.lookback if spinup is None else int(spinup)
    if spinup < 0:
        raise XsomoValueError(f"spinup={spinup}: give a number of days >= 0")
    first, stop = _output_period(times, spinup, time)
    if check_convergence and (mode == "continuous" or (mode == "auto" and spinup > 0)):
        # a continuous roll-out with spinup=0 too: from a zero state it had been written without a
        # word (its first days off by up to 0.036 m3 m-3 on the tiny world; hostile-input QA);
        # mode='auto' with spinup=0 leaves it to the per-block ladder, as before
        spinup = _checked_spinup(
            drivers, model, spec.dynamic, spec.static, first=first, spinup=spinup, mode=mode,
            max_spinup=max_spinup if max_spinup is not None else 4 * max(spec.lookback, 1),
            sample=CHECK_SAMPLE, dtype=spec.dtype, tolerance=spec.tolerance, strict=strict,
        )  # fmt: skip
    begin = first - spinup
    history = 0
    if mode in ("auto", "windowed"):
        # the ladder's longer spin-ups read real forcing before the roll-out where there is some
        # (with spinup=0 too: it had cycled the output period's own forcing though the drivers
        # held years before it); windows of the cascade's lower layers read the upper layers'
        # windows before theirs (rollout.windowed_history)
        ladder = ladder_spinups(spinup, spec.lookback)[-1] - spinup if mode == "auto" else 0
        cascade = windowed_history(model.config) if getattr(model, "config", None) is not None else 0
        history = min(begin, max(ladder, cascade))
    drivers = drivers.isel({cv.TIME: slice(begin - history, stop)})
    return _blocks(spec, model, drivers, history, spinup, mode, chunks, device, threads, None)


def _joining_period(times: pd.DatetimeIndex, state: xr.Dataset, time: Any) -> tuple[int, int]:
    """Indices ``(first, stop)`` of the days after the state's last day (they must join on)."""
    last = pd.Timestamp(state.attrs["state_last_day"])
    start = last + pd.Timedelta(days=1)
    if time is not None:
        first, stop = _output_period(times, 0, time)
        if times[first] != start:
            what = "a gap after" if times[first] > start else "an overlap with"
            raise GridMismatchError(
                f"time= starts on {times[first].date()}: {what} the state, whose last day is "
                f"{last.date()}. An extension starts on {start.date()} (omit the start)."
            )
        return first, stop
    if times[0] > start:
        raise GridMismatchError(
            f"the drivers start on {times[0].date()}, after the day the state continues on "
            f"({start.date()}; its last day is {last.date()}): the days between are missing. Give "
            "drivers holding those days (old and new days together are fine)."
        )
    if times[-1] < start:
        raise GridMismatchError(
            f"the drivers end on {times[-1].date()}, but the state already reaches {last.date()}: "
            "there are no new days to add. Give drivers with days after the state's last day."
        )
    return int(times.get_loc(start)), times.size


def _blocks(
    spec: _Spec,
    model: Any,
    drivers: xr.Dataset,
    history: int,
    spinup: int,
    mode: str,
    chunks: int | Mapping[str, int] | None,
    device: str,
    threads: int | None,
    state: xr.Dataset | None,
) -> _Plan:
    """The blocks over lat/lon and the torch threads of each."""
    ntime = drivers.sizes[cv.TIME]
    nlat, nlon = spec.lat.size, spec.lon.size
    device_hint = resolve_device(device) if device in (None, "auto") else str(device)
    blocks = _normalise_chunks(chunks, nlat, nlon, ntime, device_hint)
    lat_chunks = _lat_chunks(nlat, blocks[cv.LAT])
    lon_chunks = _lon_chunks(nlon, blocks[cv.LON])
    if threads is None:
        # the blocks that run at once (dask's threads or to_files' pool: one per core, at most
        # one per block) share the cores; small LSTM steps run best on one thread (measured)
        n_blocks = len(lat_chunks) * len(lon_chunks)
        cores = cpu_cores()
        threads = 1 if _is_small(model) else max(1, cores // max(1, min(n_blocks, cores)))
    elif int(threads) < 1:
        raise XsomoValueError(f"threads={threads!r}: give a number of torch threads >= 1 per block")
    out_time = pd.DatetimeIndex(drivers.indexes[cv.TIME][history + spinup :])
    return _Plan(
        drivers, history, spinup, mode, out_time, lat_chunks, lon_chunks, str(device), int(threads),
        state,
    )  # fmt: skip


def _as_dask(arr: xr.DataArray, dims: tuple[str, ...]) -> da.Array:
    arr = arr.transpose(*dims)
    return arr.data if isinstance(arr.data, da.Array) else da.from_array(np.asarray(arr.data))


def _build(spec: _Spec, plan: _Plan, model: Any, *, client: Any, check_cells: int | None) -> xr.Dataset:
    """The lazy Dataset: one dask task per block (:func:`_run_block`), coordinates, attributes."""
    drivers = plan.drivers
    ntime = drivers.sizes[cv.TIME]
    lat_chunks, lon_chunks = plan.lat_chunks, plan.lon_chunks

    # the drivers keep their own floating precision (float64 in float64 mode) up to the z-score,
    # which the roll-out takes in float64: rounding float64 drivers to float32 first moved an
    # ill-conditioned SoMo.ml v1 day by 1.5e-4 m3 m-3
    def _float(arr: da.Array) -> da.Array:
        want = np.float64 if spec.dtype == "float64" else np.result_type(arr.dtype, np.float32)
        return arr.astype(want)

    dyn = da.stack(
        [_float(_as_dask(_driver_array(drivers, v), (cv.TIME, cv.LAT, cv.LON))) for v in spec.dynamic]
    ).rechunk((len(spec.dynamic), ntime, lat_chunks, lon_chunks))
    stat = da.stack(
        [_float(_as_dask(_driver_array(drivers, v), (cv.LAT, cv.LON))) for v in spec.static]
    ).rechunk((len(spec.static), lat_chunks, lon_chunks))
    if cv.LAND_MASK in drivers.variables:
        mask_da = land_cells(drivers[cv.LAND_MASK].transpose(cv.LAT, cv.LON))
        mask = _as_dask(mask_da, (cv.LAT, cv.LON)).rechunk((lat_chunks, lon_chunks))
    else:
        mask = da.ones((spec.lat.size, spec.lon.size), dtype=bool, chunks=(lat_chunks, lon_chunks))

    # the model travels once: one key in the graph, whatever runs it. (It had been scattered to a
    # client's workers: a lost worker lost it for good, every later compute failed with "lost
    # dependencies", and the result computed nowhere but on that client; hostile-input QA)
    model_node = dask.delayed(_portable(model), pure=True, traverse=False)
    window = max(spec.lookback, 1)
    kwargs = {
        "layer_index": spec.layer_index,
        "first": plan.spinup,
        "history": plan.history,
        "mode": plan.mode,
        "spinup": plan.spinup,
        "device": plan.device,
        "window": window,
        "threads": plan.threads,
        "cells_per_call": CELLS_PER_CALL,
        "check_cells": check_cells,
        "dtype": spec.dtype,
        "tolerance": spec.tolerance,
    }
    kwargs["return_state"] = plan.return_state
    saved = saved_complete = None
    if plan.state is not None:
        saved = _as_dask(plan.state[STATE], ("state_layer", "member", "hc", cv.LAT, cv.LON, "unit"))
        saved = saved.rechunk((-1, -1, -1, lat_chunks, lon_chunks, -1))
        if STATE_COMPLETE in plan.state.variables:
            saved_complete = _as_dask(plan.state[STATE_COMPLETE], (cv.LAT, cv.LON))
            saved_complete = saved_complete.rechunk((lat_chunks, lon_chunks))
    n_out = plan.out_time.size
    n_layers, members, hidden = len(_model_layers(model)), _cfg(model, "ensemble", 1), _cfg(model, "hidden")
    run = dask.delayed(_run_block, pure=True, nout=4)
    gaps = dask.delayed(_gap_days, pure=True)
    predictor = _predictor()
    rows, gap_rows, spin_rows, state_rows, complete_rows = [], [], [], [], []
    for i, ny in enumerate(lat_chunks):
        row, gap_row, spin_row, state_row, complete_row = [], [], [], [], []
        for j, nx in enumerate(lon_chunks):
            d_blk = dyn.blocks[0, 0, i, j]
            s_blk = stat.blocks[0, i, j]
            m_blk = mask.blocks[i, j]
            st_blk = None if saved is None else saved.blocks[0, 0, 0, i, j, 0]
            c_blk = None if saved_complete is None else saved_complete.blocks[i, j]
            values, chosen, st_out, c_out = run(
                d_blk, s_blk, m_blk, model_node, predictor, state=st_blk, complete=c_blk, **kwargs
            )
            shape = (2, len(spec.layers), n_out, ny, nx)
            row.append(da.from_delayed(values, shape=shape, dtype=np.float32))
            spin_row.append(da.from_delayed(chosen, shape=(ny, nx), dtype=np.int32))
            if plan.return_state:
                st_shape = (n_layers, members, 2, ny, nx, hidden)
                state_row.append(da.from_delayed(st_out, shape=st_shape, dtype=spec.dtype))
                complete_row.append(da.from_delayed(c_out, shape=(ny, nx), dtype=np.int32))
            g = gaps(d_blk, s_blk, m_blk, c_blk, first=plan.history + plan.spinup, window=window,
                     continued=plan.state is not None)  # fmt: skip
            gap_row.append(da.from_delayed(g, shape=(ny, nx), dtype=np.int32))
        rows.append(row)
        gap_rows.append(gap_row)
        spin_rows.append(spin_row)
        state_rows.append(state_row)
        complete_rows.append(complete_row)
    stacked = da.block(rows)

    coords: dict[Hashable, Any] = {
        **cv.layer_coords(spec.layers),
        cv.TIME: xr.DataArray(plan.out_time, dims=cv.TIME, attrs=dict(cv.TIME_ATTRS)),
        cv.LAT: xr.DataArray(spec.lat, dims=cv.LAT, attrs=dict(cv.LAT_ATTRS)),
        cv.LON: xr.DataArray(spec.lon, dims=cv.LON, attrs=dict(cv.LON_ATTRS)),
    }
    dims = (cv.LAYER, cv.TIME, cv.LAT, cv.LON)
    sm_attrs = {
        **cv.SM_ATTRS,
        "long_name": "volumetric soil moisture, ensemble mean",
        "cell_methods": "time: mean realization: mean",
    }
    spread_attrs = {
        "long_name": "volumetric soil moisture, ensemble standard deviation",
        "units": cv.SM_ATTRS["units"],
        "cell_methods": "time: mean realization: standard_deviation",
    }
    gap_attrs = {
        "long_name": "output days set missing because their lookback window lacks forcing",
        "units": "1",
    }
    spin_attrs = {
        "long_name": "spin-up of the continuous roll-out of the cell's block (days); "
        f"-1: window-by-window prediction; {CONTINUED}: continued from a saved state; "
        "0: no land in the block",
        "units": "d",
    }
    data_vars: dict[Hashable, Any] = {
        cv.SM: (dims, stacked[0], sm_attrs),
        cv.SM_SPREAD: (dims, stacked[1], spread_attrs),
        GAP_DAYS: ((cv.LAT, cv.LON), da.block(gap_rows), gap_attrs),
        SPINUP_DAYS: ((cv.LAT, cv.LON), da.block(spin_rows), spin_attrs),
    }
    if plan.return_state:
        data_vars[STATE] = (
            ("state_layer", "member", "hc", cv.LAT, cv.LON, "unit"),
            da.concatenate([da.concatenate(r, axis=4) for r in state_rows], axis=3),
            {"long_name": "LSTM state (h, c) after the last day, per layer, member and land cell"},
        )
        data_vars[STATE_COMPLETE] = (
            (cv.LAT, cv.LON),
            da.block(complete_rows),
            {
                "long_name": "days of complete forcing that ended with the state's last day "
                f"(at most lookback - 1 = {window - 1})",
                "units": "d",
            },
        )
        data_vars[STATE_STATIC_VAR] = (
            ("static_input", cv.LAT, cv.LON),
            _static_inputs(spec, plan),
            {"long_name": "the model's static inputs (canonical units) the state was computed with"},
        )
        coords["static_input"] = ("static_input", np.array(spec.static, dtype=str))
        coords["state_layer"] = ("state_layer", np.array(_model_layers(model), np.int32))
        coords["member"] = ("member", np.arange(members, dtype=np.int32))
        coords["hc"] = ("hc", np.array(["h", "c"]))
    ds = xr.Dataset(data_vars, coords=coords, attrs=_provenance(model, spec, plan))
    if plan.return_state:
        ds.attrs["state_last_day"] = str(plan.out_time[-1].date())
    ds = ds.rio.set_spatial_dims(x_dim=cv.LON, y_dim=cv.LAT).rio.write_crs(cv.CRS)
    if not isinstance(drivers[spec.dynamic[0]].data, da.Array):
        complete = None
        if plan.state is not None and STATE_COMPLETE in plan.state.variables:
            complete = np.asarray(plan.state[STATE_COMPLETE].transpose(cv.LAT, cv.LON).values)
        _warn_gaps(
            drivers, spec.dynamic, spec.static, first=plan.history + plan.spinup, window=window,
            continued=plan.state is not None, complete=complete,
        )  # fmt: skip
    return ds


def _warn_gaps(
    drivers: xr.Dataset,
    dynamic: list[str],
    static: list[str],
    *,
    first: int,
    window: int,
    continued: bool = False,
    complete: np.ndarray | None = None,
) -> None:
    """Count forcing gaps of in-memory drivers now (numpy, cheap) and warn (``continued``: from
    a saved state, with its record ``complete`` of the days before, as :func:`_gap_days`)."""
    missing = None
    for name in dynamic:
        bad = ~np.isfinite(
            np.asarray(drivers[name].transpose(cv.TIME, cv.LAT, cv.LON).values, float)
        )
        missing = bad if missing is None else (missing | bad)
    if missing is None:
        return
    ok = _land_with_statics(drivers, static)
    suspect = missing.any(axis=0)
    if complete is not None:
        suspect |= complete < max(window, 1) - 1
    iy, ix = np.nonzero(ok & suspect)
    if iy.size == 0:
        return
    cells = missing[:, iy, ix].T
    if continued:
        cells, first = _missing_after_state(cells, first, None if complete is None else complete[iy, ix], window)
    n = int(_gap_mask(cells, window)[:, first:].sum())
    if n:
        warnings.warn(
            f"forcing has gaps: {n} output cell-days in {iy.size} cell(s) have a lookback window lacking "
            f"data and are NaN in the prediction (see the {GAP_DAYS!r} variable).",
            RuntimeWarning,
            stacklevel=3,
        )


def _provenance(model: Any, spec: _Spec, plan: _Plan) -> dict[str, Any]:
    from xsomo._version import __version__
    from xsomo.model.rollout import ladder_spinups

    drivers, dynamic, static, mode = plan.drivers, spec.dynamic, spec.static, plan.mode
    spinup, lookback, dtype, tolerance = plan.spinup, spec.lookback, spec.dtype, spec.tolerance
    read = pd.DatetimeIndex(drivers.indexes[cv.TIME])
    attrs: dict[str, Any] = {
        "Conventions": "CF-1.8",
        "title": "SoMo.ml-EU-style daily soil moisture predicted by an EA-LSTM cascade",
        "institution": "computed with xsomo",
        "source": f"xsomo {__version__} EA-LSTM (Kratzert et al. 2019) cascade, SoMo.ml-EU method",
        "references": "O & Orth (2021) doi:10.1038/s41597-021-00964-1; Kratzert et al. (2019) doi:10.5194/hess-23-5089-2019",
        "xsomo_version": __version__,
        "model_inputs_dynamic": ", ".join(dynamic),
        "model_inputs_static": ", ".join(static),
        "model_lookback_days": int(lookback),
        "model_ensemble_members": int(_cfg(model, "ensemble", 1) or 1),
        "model_layers": ", ".join(str(n) for n in _model_layers(model)),
        "inference_mode": str(mode),
        "spinup_days": int(spinup),
        "inference_dtype": str(dtype),
        "xsomo_model_id": model_identity(model),
        "xsomo_drivers_period": f"{read[0].date()}/{read[-1].date()}",
        "xsomo_drivers_id": drivers_identity(drivers, [*dynamic, *static]),
    }
    if plan.state is not None:
        attrs["continued_from_state"] = str(plan.state.attrs["state_last_day"])
        if "xsomo_drivers_id" in plan.state.attrs:  # the run the state was saved by (extend checks it)
            attrs[CONTINUED_FROM_DRIVERS] = str(plan.state.attrs["xsomo_drivers_id"])
    if mode in ("auto", "continuous"):
        attrs["convergence_tolerance"] = float(tolerance)
    if mode == "auto":
        rungs = ladder_spinups(spinup, lookback)
        attrs["auto_spinup_ladder_days"] = ", ".join(str(r) for r in rungs)
        attrs["auto_note"] = (
            f"per block: the continuous roll-out with the first spin-up of the ladder after which "
            f"roll-outs from different initial states differ by less than {tolerance:g} m3 m-3, else "
            f"window by window (see the {SPINUP_DAYS!r} variable)"
        )
    hidden = _cfg(model, "hidden")
    if hidden is not None:
        attrs["model_hidden_units"] = int(hidden)
    for key in ("path", "source", "name"):
        val = getattr(model, key, None)
        if isinstance(val, str | os.PathLike):
            attrs["model"] = str(val)
            break
    else:
        attrs["model"] = type(model).__name__
    for key in ("source", "title"):
        if key in drivers.attrs:
            attrs["drivers_" + key] = str(drivers.attrs[key])
    return attrs
