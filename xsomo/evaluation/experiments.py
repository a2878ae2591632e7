"""The paper's experiments: memory of the truth, lookback permutation (Fig. 2), transfer (Fig. 3).

- :func:`memory_timescales` checks first that the data really has a memory: the lagged
  autocorrelation of daily soil-moisture anomalies per layer and its e-folding time.
- :func:`lookback_permutation` measures how many recent days a model needs: every
  input window (``lookback`` days ending on the predicted day) is shuffled in time
  except its last ``n`` days, and NSE and r against the truth are reported per layer
  for ``n`` in :data:`LOOKBACK_NS` (O & Orth 2021, Fig. 2).
- :func:`transfer` trains on the cells of one region ("us") and validates on the
  cells of another ("europe"), and says where the model extrapolates: test cells whose
  static features lie outside the training cells' range.

All work on numpy windows and a *predictor*: a callable ``f(dynamic (N, L, D),
static (N, S)) -> (layer, N)`` giving each window's last-day soil moisture. A
:class:`~xsomo.model.TrainedModel` becomes one through :func:`model_predictor`
(sequence-to-one through :func:`xsomo.model.rollout.predict_block`, ensemble mean).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation import anomaly_kernels as ak
from xsomo.evaluation import scores as mt
from xsomo.evaluation.arrays import layered
from xsomo.evaluation.skill import match_stations, training_latlon
from xsomo.exceptions import XsomoValueError
from xsomo.io.world import open_truth, read_manifest
from xsomo.runtime import user_stacklevel

if TYPE_CHECKING:
    from xsomo.model import TrainedModel

__all__ = [
    "LOOKBACK_NS",
    "MEMORY_MIN_YEARS",
    "days_needed",
    "extract_cells",
    "lookback_permutation",
    "memory_experiment",
    "memory_timescales",
    "model_predictor",
    "permute_windows",
    "transfer",
    "transfer_experiment",
    "truth_at",
]

logger = logging.getLogger(__name__)

#: Unpermuted days kept at the end of each window (the paper's Fig. 2).
LOOKBACK_NS: tuple[int, ...] = (1, 2, 5, 10, 20, 30, 60, 90, 180, 365)

#: Fewest years of record for :func:`memory_timescales` to trust its moving climatology.
MEMORY_MIN_YEARS: float = 3.0
DAYS_PER_YEAR = 365.25

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _member_mean(sm: np.ndarray) -> np.ndarray:
    """Ensemble mean over axis 1 of ``(layer, member, ...)``; all-NaN entries stay NaN silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(sm, axis=1)


# ============================================================================ memory of the truth


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation ``(cells, max_lag + 1)`` of ``x (cells, time)`` (NaN-free, demeaned here) by FFT."""
    x = x - x.mean(axis=-1, keepdims=True)
    n = x.shape[-1]
    nfft = 1 << int(np.ceil(np.log2(2 * n - 1)))
    f = np.fft.rfft(x, nfft, axis=-1)
    ac = np.fft.irfft(f * np.conj(f), nfft, axis=-1)[..., : max_lag + 1]
    ac = ac / (n - np.arange(max_lag + 1))  # unbiased lag sums
    with np.errstate(invalid="ignore", divide="ignore"):
        return ac / ac[..., :1]


def memory_timescales(
    sm: xr.Dataset | xr.DataArray,
    *,
    max_lag: int = 365,
    cells: int | None = 500,
    seed: int = 0,
    window: int = ak.CLIM_WINDOW,
    min_years: float = MEMORY_MIN_YEARS,
) -> xr.Dataset:
    r"""How long each layer remembers: autocorrelation of daily anomalies and its e-folding time.

    Parameters
    ----------
    sm
        ``sm(layer, time, lat, lon)`` (e.g. a sample world's ``truth.nc``) or
        ``sm(layer, cell, time)``.
    max_lag
        Longest lag in days.
    cells
        Random land cells used (all when None).
    min_years
        Fewest years of record for a trustworthy answer; a shorter record gives a
        warning (the result carries ``n_years`` and ``short_record`` in its attrs).

    Returns
    -------
    xarray.Dataset
        ``acf(layer, lag)`` (median over cells), ``efold_days(layer)`` (first lag at which
        the median autocorrelation falls below :math:`1/e`; ``max_lag + 1`` if never),
        ``efold_days_cells(layer, cell)``.

    Notes
    -----
    Anomalies are taken from the 31-day moving daily climatology, so the seasonal cycle
    does not count as memory. The climatology of a short record is close to the record's
    own 31-day running mean, which then acts as a high-pass filter and removes the slow
    part of the anomalies: on the tiny sample world the truth's e-folding times are
    10 / 13 / 16 days from its 3 years and 4 / 4 / 4 days from one of them. Hence the
    warning below ``min_years``.
    """
    da = layered(sm)
    if cv.LAT in da.dims:
        da = da.stack(cell=(cv.LAT, cv.LON)).transpose(cv.LAYER, cv.CELL, cv.TIME)
    da = da.transpose(cv.LAYER, cv.CELL, cv.TIME)
    valid = np.asarray(da.notnull().all((cv.LAYER, cv.TIME)).values)
    idx = np.nonzero(valid)[0]
    if idx.size == 0:
        raise XsomoValueError("memory_timescales: no cell has a complete record in every layer.")
    n_years = da.sizes[cv.TIME] / DAYS_PER_YEAR
    short = da.sizes[cv.TIME] < min_years * 365  # three calendar years without a leap day pass
    if short:
        t = pd.DatetimeIndex(da[cv.TIME].values)
        warnings.warn(
            f"memory_timescales: the record covers {n_years:.1f} years ({t[0]:%Y-%m-%d} to {t[-1]:%Y-%m-%d}), "
            f"fewer than min_years={min_years:g}: its {window}-day moving climatology follows the record itself "
            "and removes the slow part of the anomalies, so the e-folding times come out too short. "
            "Give the whole record (e.g. the world's whole truth.nc), not a cut of it.",
            stacklevel=user_stacklevel(),
        )
    if cells is not None and idx.size > cells:
        idx = np.sort(np.random.default_rng(seed).choice(idx, cells, replace=False))
    x = np.asarray(da.isel({cv.CELL: idx}).values, np.float64)
    doy = ak.clim_doy(da[cv.TIME].values)
    anom = ak.daily_anomalies(x, doy, window=window, standardise=False)
    anom = np.nan_to_num(anom)
    max_lag = min(max_lag, x.shape[-1] // 2)
    acf = np.stack([_acf(anom[k], max_lag) for k in range(anom.shape[0])])  # (layer, cell, lag)
    thresh = np.exp(-1.0)

    def efold(a: np.ndarray) -> np.ndarray:
        below = a < thresh
        first = np.argmax(below, axis=-1)
        return np.where(below.any(axis=-1), first, max_lag + 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(acf, axis=1)
    return xr.Dataset(
        {
            "acf": ((cv.LAYER, "lag"), med, {"long_name": "median autocorrelation of daily anomalies", "units": "1"}),
            "efold_days": ((cv.LAYER,), efold(med), {"long_name": "e-folding time of the median autocorrelation", "units": "d"}),
            "efold_days_cells": ((cv.LAYER, cv.CELL), efold(acf), {"long_name": "e-folding time per cell", "units": "d"}),
        },
        coords={cv.LAYER: da[cv.LAYER].values, "lag": np.arange(max_lag + 1)},
        attrs={
            "n_cells": int(idx.size),
            "climatology_window_days": window,
            "n_years": round(float(n_years), 2),
            "short_record": int(short),
        },
    )


# ============================================================================ lookback permutation


def permute_windows(windows: np.ndarray, keep: int, *, rng: np.random.Generator) -> np.ndarray:
    """Shuffle the days of each window ``(N, L, D)`` in time, except its last ``keep`` days.

    Every window gets its own permutation; all variables of a day move together (a day's
    weather stays intact, its position in time does not).
    """
    windows = np.asarray(windows)
    n_win, length = windows.shape[:2]
    head = length - int(keep)
    if head <= 1:
        return windows.copy()
    order = np.argsort(rng.random((n_win, head)), axis=1)
    out = windows.copy()
    out[:, :head] = np.take_along_axis(windows[:, :head], order[..., None], axis=1)
    return out


def model_predictor(model: TrainedModel, *, device: str = "cpu", batch: int = 2048) -> Predictor:
    """A predictor of the last day of each window from a trained model (ensemble mean).

    Each window is rolled out from a zero state (sequence-to-one, as in the windowed
    mode of :func:`xsomo.model.rollout.predict_block`); deeper layers get the upper layers'
    simulations of the same (possibly permuted) window.

    A small model (``hidden`` up to :data:`xsomo.prediction.inference.SMALL_HIDDEN`) runs
    on one torch thread, as :func:`xsomo.prediction.predict` runs it: its LSTM steps are
    too small to share, and on a busy machine the threads' waits cost 10x the CPU time
    (the same numbers either way).
    """
    from xsomo.model.rollout import predict_block
    from xsomo.prediction.inference import SMALL_HIDDEN

    one_thread = str(device) == "cpu" and int(model.config.hidden) <= SMALL_HIDDEN

    def predict(dynamic: np.ndarray, static: np.ndarray) -> np.ndarray:
        length = dynamic.shape[1]
        outs = []
        with _torch_threads(1 if one_thread else None):
            for b0 in range(0, dynamic.shape[0], batch):
                sm = predict_block(
                    model,
                    dynamic[b0 : b0 + batch],
                    static[b0 : b0 + batch],
                    mode="continuous",
                    spinup=length,
                    device=device,
                )
                outs.append(_member_mean(sm[..., -1]))  # (layer, N)
        return np.concatenate(outs, axis=1)

    return predict


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to ``n`` inside the context (``None``: unchanged)."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def lookback_permutation(
    predictor: Predictor | TrainedModel,
    dynamic: np.ndarray,
    static: np.ndarray,
    truth: np.ndarray,
    *,
    lookback: int | None = None,
    ns: Sequence[int] = LOOKBACK_NS,
    days_per_cell: int = 60,
    seed: int = 0,
    layers: Sequence[int] = cv.LAYER_NUMBERS,
    min_days: int = 20,
) -> xr.Dataset:
    """The lookback permutation experiment on a set of cells.

    Parameters
    ----------
    predictor
        A :data:`Predictor` or a :class:`~xsomo.model.TrainedModel` (:func:`model_predictor`).
    dynamic
        Raw dynamic inputs ``(cells, time, D)`` (the model's input order).
    static
        Raw static inputs ``(cells, S)``.
    truth
        Soil moisture to score against, ``(layer, cells, time)``.
    lookback
        Window length ``L`` (default the model's lookback, else 365).
    ns
        Days kept unpermuted at the end of each window; ``n >= L`` is the unpermuted run.
    days_per_cell
        Random target days per cell (with a full window before them).

    Returns
    -------
    xarray.Dataset
        ``nse(n_kept, layer)`` and ``pearson_r(n_kept, layer)``: medians over cells of
        the per-cell scores over the sampled days; per-cell values as ``nse_cells``,
        ``pearson_r_cells``; ``n_kept = L`` is the reference without permutation.
    """
    from xsomo.model import TrainedModel

    if isinstance(predictor, TrainedModel):
        lookback = lookback or predictor.config.lookback
        layers = tuple(predictor.config.layers)
        predictor = model_predictor(predictor)
    lookback = int(lookback or 365)
    dynamic = np.asarray(dynamic, np.float32)
    static = np.asarray(static, np.float32)
    truth = np.asarray(truth, np.float64)
    n_cells, n_time, _ = dynamic.shape
    if n_cells == 0:
        raise XsomoValueError("lookback_permutation: no cell given (dynamic has 0 cells); give at least one.")
    if n_time < lookback:
        raise XsomoValueError(f"the period ({n_time} days) is shorter than the lookback ({lookback} days).")
    k = min(days_per_cell, n_time - lookback + 1)
    if k < min_days:
        raise XsomoValueError(
            f"{k} scored days per cell (days_per_cell={days_per_cell}, {n_time - lookback + 1} days after the "
            f"lookback) is fewer than min_days={min_days}: every score would be NaN. Give --days / days_per_cell "
            f">= {min_days}"
        )
    bad_ns = [int(n) for n in ns if int(n) < 1]
    if bad_ns:
        raise XsomoValueError(f"ns={list(ns)}: the days kept in order must be >= 1 (got {bad_ns})")
    rng = np.random.default_rng(seed)
    ends = np.stack([np.sort(rng.choice(np.arange(lookback - 1, n_time), k, replace=False)) for _ in range(n_cells)])
    cell_idx = np.repeat(np.arange(n_cells), k)
    end_idx = ends.reshape(-1)
    offs = np.arange(-lookback + 1, 1)
    windows = dynamic[cell_idx[:, None], end_idx[:, None] + offs[None, :]]  # (N, L, D)
    stat = static[cell_idx]
    obs = truth[:, cell_idx, end_idx].reshape(truth.shape[0], n_cells, k)
    kept = sorted({min(int(n), lookback) for n in ns} | {lookback})
    nse_c = np.full((len(kept), len(layers), n_cells), np.nan)
    r_c = np.full_like(nse_c, np.nan)
    for a, n in enumerate(kept):
        win = windows if n >= lookback else permute_windows(windows, n, rng=rng)
        pred = np.asarray(predictor(win, stat), np.float64).reshape(len(layers), n_cells, k)
        m = mt.np_metrics(pred, obs, min_days=min_days)
        r_c[a], nse_c[a] = m[..., 1], m[..., 5]
        logger.info("lookback permutation: n=%d done", n)
    coords = {"n_kept": kept, cv.LAYER: list(layers), cv.CELL: np.arange(n_cells)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells (constant output) give NaN medians
        med_nse, med_r = np.nanmedian(nse_c, axis=-1), np.nanmedian(r_c, axis=-1)
    out = xr.Dataset(
        {
            "nse": (("n_kept", cv.LAYER), med_nse, {"long_name": "median NSE over cells", "units": "1"}),
            "pearson_r": (("n_kept", cv.LAYER), med_r, {"long_name": "median r over cells", "units": "1"}),
            "nse_cells": (("n_kept", cv.LAYER, cv.CELL), nse_c, {"units": "1"}),
            "pearson_r_cells": (("n_kept", cv.LAYER, cv.CELL), r_c, {"units": "1"}),
        },
        coords=coords,
        attrs={"lookback": lookback, "days_per_cell": int(k), "seed": seed, "title": "lookback permutation experiment"},
    )
    out["n_kept"].attrs = {"long_name": "days at the end of each window kept in order", "units": "d"}
    return out


def days_needed(perm: xr.Dataset, *, metric: str = "pearson_r", fraction: float = 0.95) -> xr.DataArray:
    """Fewest days kept in order that give ``fraction`` of the skill the whole window adds.

    With ``s(n)`` the median skill when only the last ``n`` days stay in order, the
    answer per layer is the smallest ``n`` with
    ``s(n) - s(n_min) >= fraction * (s(L) - s(n_min))``: how much recent history the
    model needs to get (nearly) all it gets from its lookback ``L``.

    Parameters
    ----------
    perm
        Result of :func:`lookback_permutation`.
    metric
        ``"pearson_r"`` or ``"nse"``.
    fraction
        Share of the skill gained between ``n_min`` and ``L``.

    Returns
    -------
    xarray.DataArray
        ``(layer,)`` days (float: whole days, or NaN). NaN where the whole window adds
        no skill (``s(L) <= s(n_min)``: "no gain", no number of days is needed) and where
        either end has no finite score.

    Examples
    --------
    >>> perm = xr.Dataset({"pearson_r": (("n_kept", "layer"), [[0.2, 0.5], [0.8, 0.4], [0.9, 0.3], [0.9, 0.3]])},
    ...                   coords={"n_kept": [1, 10, 30, 365], "layer": [1, 2]})
    >>> days_needed(perm).values.tolist()  # layer 2 loses skill with a longer window: no gain
    [30.0, nan]
    """
    if metric not in perm:
        raise XsomoValueError(f"the permutation result has no {metric!r}; expected 'pearson_r' or 'nse'.")
    if not 0 < fraction <= 1:
        raise XsomoValueError(f"fraction={fraction!r}: expected a share in (0, 1].")
    s = perm[metric].transpose("n_kept", ...)
    first, last = s.isel(n_kept=0), s.isel(n_kept=-1)
    reached = (s - first) >= fraction * (last - first) - 1e-12
    # the first n_kept where the share is reached (the last n_kept always reaches it)
    idx = reached.argmax("n_kept")
    out = s["n_kept"].isel(n_kept=idx).drop_vars("n_kept", errors="ignore")
    # no finite score at either end: nothing was reached (argmax of all-False said the first n_kept);
    # no gain from the whole window (every n "reached" 95 % of a zero or negative gain): said 1 day
    out = out.where(first.notnull() & last.notnull() & (last > first)).astype(float)
    return out.rename(f"days_needed_{metric}").assign_attrs(
        long_name=f"fewest days kept in order for {fraction:.0%} of the lookback's gain in {metric}", units="d"
    )


# ============================================================================ cell extraction


def extract_cells(
    drivers: xr.Dataset, rows: np.ndarray, cols: np.ndarray, *, dynamic: Sequence[str], static: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``dynamic (cells, time, D)`` and ``static (cells, S)`` numpy arrays at grid cells
    (canonical units: :func:`xsomo.model.inputs.inputs_at_cells`)."""
    from xsomo.model.inputs import inputs_at_cells

    return inputs_at_cells(drivers, rows, cols, dynamic=dynamic, static=static)


def truth_at(truth: xr.DataArray, rows: np.ndarray, cols: np.ndarray, time: Any) -> np.ndarray:
    """``(layer, cell, time)`` float64 at grid cells.

    Read as slices (the box around the cells, a run of days at a time, about 80 MB each)
    and indexed in memory: an index array on a netCDF-backed variable (the days, or the
    cells pointwise) goes through netCDF4's list indexing, which took over 2 minutes for
    40 cells of the demo world's truth, against seconds this way.
    """
    rows, cols = np.asarray(rows, int), np.asarray(cols, int)
    days = truth.indexes[cv.TIME].get_indexer(pd.DatetimeIndex(np.atleast_1d(time)))
    if (days < 0).any():
        raise XsomoValueError(f"the truth has no values on {int((days < 0).sum())} of the requested days")
    if rows.size == 0 or days.size == 0:
        return np.empty((truth.sizes[cv.LAYER], rows.size, days.size))
    r0, c0, d0 = int(rows.min()), int(cols.min()), int(days.min())
    box = truth.isel(
        {cv.LAT: slice(r0, int(rows.max()) + 1), cv.LON: slice(c0, int(cols.max()) + 1),
         cv.TIME: slice(d0, int(days.max()) + 1)}
    )  # fmt: skip
    order = (cv.LAYER, cv.TIME, cv.LAT, cv.LON)
    n_layer, n_time, n_lat, n_lon = (box.sizes[d] for d in order)
    step = max(1, int(2e7 // max(1, n_layer * n_lat * n_lon)))
    out = np.empty((n_layer, rows.size, days.size))
    for t0 in range(0, n_time, step):
        want = np.flatnonzero((days - d0 >= t0) & (days - d0 < t0 + step))
        if want.size:
            # loaded in the file's order, transposed in memory (a lazy transpose of a
            # backend array turns the slices into index arrays, the slow path again)
            part = box.isel({cv.TIME: slice(t0, t0 + step)})
            block = np.transpose(part.values, [part.dims.index(d) for d in order])
            out[:, :, want] = block[:, days[want] - d0 - t0][:, :, rows - r0, cols - c0].transpose(0, 2, 1)
    return out


def _open_world(world: str | os.PathLike[str], drivers: xr.Dataset | None) -> tuple[xr.Dataset, xr.Dataset, dict]:
    meta = read_manifest(world)
    truth = open_truth(world)
    if drivers is None:
        from xsomo.drivers.assemble import open_drivers

        drivers = open_drivers(world)
    return truth, drivers, meta


def _region_code(meta: Mapping[str, Any], region: str | int) -> int:
    if isinstance(region, int | np.integer):
        return int(region)
    names = {str(v): int(k) for k, v in meta.get("regions", {"1": "us", "2": "europe"}).items()}
    if region not in names:
        raise XsomoValueError(f"region {region!r} not in the world's regions {sorted(names)}.")
    return names[region]


def memory_experiment(
    world: str | os.PathLike[str],
    model: TrainedModel,
    *,
    drivers: xr.Dataset | None = None,
    cells: int = 40,
    days_per_cell: int = 60,
    ns: Sequence[int] = LOOKBACK_NS,
    seed: int = 0,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Memory of a sample world's truth and the lookback permutation of ``model`` on random land cells.

    Returns ``(timescales, permutation)`` (see :func:`memory_timescales`, :func:`lookback_permutation`).
    """
    if int(cells) < 1:
        raise XsomoValueError(f"cells={cells}: the lookback permutation needs at least one cell; give --cells >= 1.")
    truth, drivers, _ = _open_world(world, drivers)
    sm = truth[cv.SM].transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON)
    scales = memory_timescales(sm, seed=seed)
    # from the file's own axis order: a lazily transposed variable indexed on netCDF took 8.4 s
    # for the demo world's first layer, against 0.3 s this way
    first = truth[cv.SM].isel({cv.LAYER: 0})
    valid = np.isfinite(first.values).all(axis=first.dims.index(cv.TIME))
    if first.dims.index(cv.LAT) > first.dims.index(cv.LON):
        valid = valid.T
    land = np.asarray(truth["land_mask"].values, bool) & valid
    ii, jj = np.nonzero(land)
    pick = np.random.default_rng(seed).choice(ii.size, min(cells, ii.size), replace=False)
    rows, cols = ii[pick], jj[pick]
    dyn, stat = extract_cells(drivers, rows, cols, dynamic=model.config.dynamic, static=model.config.static)
    obs = truth_at(truth[cv.SM].sel({cv.LAYER: list(model.config.layers)}), rows, cols, drivers[cv.TIME].values)
    perm = lookback_permutation(model, dyn, stat, obs, ns=ns, days_per_cell=days_per_cell, seed=seed)
    perm = perm.assign_coords(
        cell_lat=(cv.CELL, sm[cv.LAT].values[rows]), cell_lon=(cv.CELL, sm[cv.LON].values[cols])
    )
    return scales, perm


# ============================================================================ transfer


def transfer(
    model: TrainedModel,
    drivers: xr.Dataset,
    truth: xr.DataArray,
    test_cells: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    min_days: int = mt.MIN_DAYS,
    spinup: int | None = None,
    tolerance: float | None = None,
) -> xr.Dataset:
    """Score ``model`` against the truth on groups of cells; flag cells outside the training envelope.

    Parameters
    ----------
    model
        A trained model (its ``training_cells`` define the training envelope).
    drivers
        Drivers on the grid.
    truth
        ``sm(layer, time, lat, lon)``.
    test_cells
        ``{group name: (rows, cols)}``, e.g. ``{"europe": ..., "us_holdout": ...}``.
    spinup
        Days before the first scored day (default the model's lookback); ``mode="auto"``
        checks that the model forgets its initial state within them and otherwise
        predicts window by window (exact, much slower).
    tolerance
        The bound (m3 m-3) on the initial-state dependence that ``auto`` accepts (default
        :data:`xsomo.model.rollout.DEFAULT_TOLERANCE`); stored in the result's attributes.

    Returns
    -------
    xarray.Dataset
        Per-cell metrics (``cell``, ``layer``) and the cells' raw static inputs
        (``static_inputs (cell, feature)``) with coords ``group``, ``lat``, ``lon``,
        ``outside_envelope`` (a static feature outside the training cells' range),
        ``n_features_outside`` and ``novelty`` (distance in standardised static-feature
        space to the nearest training cell).
    """
    from xsomo.model.rollout import DEFAULT_TOLERANCE, predict_block

    tolerance = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    cfg = model.config
    sm = truth.sel({cv.LAYER: list(cfg.layers)})  # no lazy transpose: see truth_at
    glat, glon = drivers[cv.LAT].values, drivers[cv.LON].values
    parts = []
    tr_rows = tr_cols = None
    if model.training_cells is not None and len(model.training_cells):
        tr_rows, tr_cols, inside = match_stations(
            drivers, model.training_cells[:, 0], cv.lon_like_grid(model.training_cells[:, 1], glon)
        )
        tr_rows, tr_cols = tr_rows[inside], tr_cols[inside]
    train_static = None
    if tr_rows is not None and tr_rows.size:
        _, train_static = extract_cells(drivers.isel({cv.TIME: [0]}), tr_rows, tr_cols, dynamic=cfg.dynamic[:1], static=cfg.static)
    for group, (rows, cols) in test_cells.items():
        rows, cols = np.asarray(rows), np.asarray(cols)
        dyn, stat = extract_cells(drivers, rows, cols, dynamic=cfg.dynamic, static=cfg.static)
        pred = _member_mean(predict_block(model, dyn, stat, mode="auto", spinup=spinup, tolerance=tolerance))  # (layer, cell, time)
        obs = truth_at(sm, rows, cols, drivers[cv.TIME].values)
        m = mt.np_metrics(pred, obs, min_days=min_days)  # (layer, cell, 7)
        ds = xr.Dataset(
            {name: ((cv.LAYER, cv.CELL), m[..., i]) for i, name in enumerate(("n", "pearson_r", "urmsd", "bias", "rmse", "nse", "kge"))},
            coords={cv.LAYER: list(cfg.layers)},
        )
        n_out = np.zeros(rows.size, int)
        novelty = np.full(rows.size, np.nan)
        if train_static is not None:
            lo, hi = np.nanmin(train_static, 0), np.nanmax(train_static, 0)
            n_out = ((stat < lo) | (stat > hi)).sum(-1)
            mu, sd = np.nanmean(train_static, 0), np.nanstd(train_static, 0)
            sd = np.where(sd > 0, sd, 1.0)
            z_test, z_train = (stat - mu) / sd, (train_static - mu) / sd
            novelty = np.sqrt(((z_test[:, None, :] - z_train[None, :, :]) ** 2).sum(-1)).min(1)
        ds["static_inputs"] = ((cv.CELL, "feature"), np.asarray(stat, np.float64))
        ds = ds.assign_coords(
            feature=list(cfg.static),
            group=(cv.CELL, [group] * rows.size),
            lat=(cv.CELL, glat[rows]),
            lon=(cv.CELL, glon[cols]),
            n_features_outside=(cv.CELL, n_out),
            outside_envelope=(cv.CELL, n_out > 0),
            novelty=(cv.CELL, novelty),
        )
        parts.append(ds)
    out = xr.concat(parts, dim=cv.CELL)
    out = out.assign_coords({cv.CELL: np.arange(out.sizes[cv.CELL])})
    out["n"] = out["n"].fillna(0).astype("int32")
    if train_static is not None:
        lo, hi = np.nanmin(train_static, 0), np.nanmax(train_static, 0)
        out.attrs["training_envelope"] = json.dumps({n: [float(a), float(b)] for n, a, b in zip(cfg.static, lo, hi, strict=True)})
    out.attrs["title"] = "transfer experiment"
    out.attrs["convergence_tolerance"] = tolerance
    return out


def transfer_summary(result: xr.Dataset) -> pd.DataFrame:
    """Median r, NSE and uRMSD per group and layer, and inside/outside the training envelope."""
    rows = []
    groups = pd.unique(result["group"].values)
    for g in groups:
        sub = result.isel({cv.CELL: np.asarray(result["group"].values == g)})
        for env, mask in (("all", np.ones(sub.sizes[cv.CELL], bool)), ("inside", ~sub["outside_envelope"].values), ("outside", sub["outside_envelope"].values)):
            if not mask.any():
                continue
            s = sub.isel({cv.CELL: mask})
            for lay in s[cv.LAYER].values:
                row = {"group": g, "envelope": env, "layer": int(lay), "n_cells": int(mask.sum())}
                for name in ("pearson_r", "nse", "urmsd", "kge"):
                    row[name] = float(s[name].sel({cv.LAYER: lay}).median())
                rows.append(row)
    return pd.DataFrame(rows)


def transfer_experiment(
    world: str | os.PathLike[str],
    *,
    targets: xr.Dataset | None = None,
    drivers: xr.Dataset | None = None,
    train_region: str | int = "us",
    test_region: str | int = "europe",
    test_cells: int = 200,
    seed: int = 0,
    train_kwargs: Mapping[str, Any] | None = None,
    model: TrainedModel | None = None,
    spinup: int | None = None,
    tolerance: float | None = None,
) -> tuple[xr.Dataset, TrainedModel]:
    """Train on ``train_region`` target cells only, score on random ``test_region`` and held-out ``train_region`` cells.

    ``targets`` default: :func:`xsomo.drivers.assemble.build_targets` of the world (scaled ISMN
    stations); ``spinup`` and ``tolerance`` as in :func:`transfer`. Returns ``(result of transfer(), model)``.
    """
    from xsomo.model import training

    truth, drivers, meta = _open_world(world, drivers)
    if targets is None:
        from xsomo.drivers.assemble import build_targets

        targets, _, _ = build_targets(world)
    region = truth["region"]
    code_train, code_test = _region_code(meta, train_region), _region_code(meta, test_region)
    ti, tj, tin = match_stations(region, targets[cv.LAT].values, targets[cv.LON].values)
    in_train = tin & (np.asarray(region.values)[ti, tj] == code_train)
    if not in_train.any():
        raise XsomoValueError(f"no target cell lies in region {train_region!r}.")
    if model is None:
        kw = dict(getattr(training, "DEMO_DEFAULTS", {}))
        kw.update(train_kwargs or {})
        model = training.train_lstm(drivers, targets.isel({cv.CELL: np.nonzero(in_train)[0]}), **kw)
    rng = np.random.default_rng(seed)
    land = np.asarray(truth["land_mask"].values, bool) & np.asarray(truth[cv.SM].isel({cv.LAYER: 0}).notnull().any(cv.TIME).values)
    used = set(zip(ti[in_train].tolist(), tj[in_train].tolist(), strict=True))
    n_train = int(in_train.sum())
    known = training_latlon(model) if model.training_cells is not None else None
    if known is not None and len(known):
        # a given model's own training and validation cells are not held out either (38 of 78
        # "held-out" cells had trained the model; the attrs said 4 training cells for its 40)
        mi, mj, min_ = match_stations(region, known[:, 0], cv.lon_like_grid(known[:, 1], region[cv.LON].values))
        used |= set(zip(mi[min_].tolist(), mj[min_].tolist(), strict=True))
        n_train = int(np.sum(min_))
    groups = {}
    for name, code in ((str(test_region), code_test), (f"{train_region}_holdout", code_train)):
        ii, jj = np.nonzero(land & (np.asarray(region.values) == code))
        keep = np.array([(i, j) not in used for i, j in zip(ii.tolist(), jj.tolist(), strict=True)], bool)
        ii, jj = ii[keep], jj[keep]
        pick = rng.choice(ii.size, min(test_cells, ii.size), replace=False)
        groups[name] = (ii[pick], jj[pick])
    result = transfer(model, drivers, truth[cv.SM], groups, spinup=spinup, tolerance=tolerance)
    result.attrs.update({"train_region": str(train_region), "test_region": str(test_region), "n_train_cells": n_train})
    return result, model
