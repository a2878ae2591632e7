"""Permutation importance of the model's inputs (O & Orth 2021, Fig. 4 style; issue 18).

:func:`input_importance` runs a trained model at the target cells (grid cells or point
stations) with its inputs intact, then with one input shuffled at a time -- a dynamic
input across time (one random permutation of the days, the same at every cell: the
input keeps its distribution and its differences between cells, but loses its timing), a
static input across cells (one random derangement of the cells: every cell takes another
cell's value) -- and reports, per
layer, the drop of the median (over cells) Pearson r and NSE against the targets, for
each of ``repeats`` shuffles. A large drop: the model leans on that input. An input the
model ignores (or a constant one) drops nothing.

The model runs as a continuous roll-out after a spin-up of ``lookback`` days (the first
``spinup`` days of the drivers are not scored); the cascade runs whole, so shuffling an
input of layer 1 reaches the deeper layers through the simulated layer 1 as well.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation.scores import metrics
from xsomo.exceptions import XsomoValueError
from xsomo.model import rollout
from xsomo.model.training import prepare_training_data

__all__ = ["importance_table", "input_importance"]

_MIN_STATIC_CELLS = 3  # fewest scored cells for a static input's drop (a shuffle across 1 or 2 cells says nothing)


def _cell_scores(sim: np.ndarray, target: np.ndarray, first: int, min_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and NSE ``(layer, cell)`` of ``sim`` ``(layer, cell, time)`` against
    ``target`` ``(cell, layer, time)`` after the first ``first`` days (NaN below ``min_days``)."""
    s = xr.DataArray(sim[..., first:], dims=(cv.LAYER, "cell", cv.TIME))
    o = xr.DataArray(np.moveaxis(target, 0, 1)[..., first:], dims=(cv.LAYER, "cell", cv.TIME))
    m = metrics(s, o, min_days=min_days, anomaly=False)
    return m["pearson_r"].values, m["nse"].values


def _medians(r: np.ndarray, nse: np.ndarray, scored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over the ``scored`` cells ``(layer, cell)`` of r and NSE per layer: the same cells
    for the intact and every shuffled run (a cell that drops out of one run is NaN there)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a layer without a scored cell: NaN
        return np.nanmedian(np.where(scored, r, np.nan), axis=1), np.nanmedian(np.where(scored, nse, np.nan), axis=1)


def _training_overlap(model: Any, lat: np.ndarray, lon: np.ndarray) -> str:
    """What the cells scored are to the model (``attrs["scored_against"]``, printed by the
    report): its training (and validation) cells, which rank what the model uses where it was
    fitted, or independent cells, which rank what carries its skill elsewhere."""
    from xsomo.evaluation.skill import training_latlon

    known = training_latlon(model) if getattr(model, "training_cells", None) is not None else None
    if known is None or not len(known):
        return "target cells (the model does not record its training cells)"
    tol = 1e-6
    same = (np.abs(lat[:, None] - known[None, :, 0]) < tol) & (np.abs(lon[:, None] - known[None, :, 1]) < tol)
    k = int(same.any(axis=1).sum())
    if k:
        return f"{k} of {lat.size} cells that trained the model (training or validation cells)"
    return f"{lat.size} cells independent of the model's training"


def _derangement(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random permutation of ``range(n)`` that moves every element (``n >= 2``).

    Drawn by rejection (uniform over the derangements; about e draws on average): a static
    input shuffled with a permutation that leaves a cell in place keeps that cell's value,
    and with few cells the drop would read as "the model ignores this input".
    """
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def _check_scored_days(n_days: int, first: int, min_days: int, lookback: int, spinup: int | None) -> None:
    why = f"the model's lookback of {lookback} days" if spinup is None else f"spinup={spinup}"
    if first >= n_days:
        raise XsomoValueError(
            f"the spin-up of {first} days ({why}) leaves no day to score: the drivers hold "
            f"{n_days} days. Give a longer period or a shorter spinup= (at least {min_days} days must remain)."
        )
    if n_days - first < min_days:
        raise XsomoValueError(
            f"only {n_days - first} days are scored ({n_days} days of the drivers minus a "
            f"spin-up of {first} days, {why}), but a cell's score needs min_days={min_days}: give a period "
            f"of at least {first + min_days} days, a shorter spinup= or a smaller min_days="
        )


def input_importance(
    model: Any,
    drivers: xr.Dataset,
    targets: xr.Dataset,
    *,
    inputs: Sequence[str] | None = None,
    repeats: int = 5,
    seed: int = 0,
    spinup: int | None = None,
    mode: str = "continuous",
    device: str = "cpu",
    min_days: int = 30,
) -> xr.Dataset:
    """Drop of median r and NSE per layer when one input is shuffled.

    Parameters
    ----------
    model
        A :class:`~xsomo.model.TrainedModel`.
    drivers
        Gridded or point drivers holding the model's inputs.
    targets
        What the model is scored against: ``sm(cell, layer, time)`` target cells (e.g. held
        out ones, or the world's truth sampled at cells) or station series (point mode).
    inputs
        Inputs to shuffle (default: every dynamic and static input of the model).
    repeats
        Shuffles per input (the spread over them is the uncertainty of the drop).
    seed
        Seed of the shuffles.
    spinup
        Days not scored at the start (default the model's lookback).
    mode
        Roll-out mode (:func:`xsomo.model.rollout.predict_block`).
    device
        Torch device.
    min_days
        Fewest common days for a cell's score.

    Returns
    -------
    xarray.Dataset
        ``r_drop``, ``nse_drop`` ``(input, layer, repeat)`` (intact minus shuffled median),
        ``r``, ``nse`` ``(layer,)`` of the intact inputs, ``kind(input)`` (``dynamic`` or
        ``static``), ``n_scored(layer)`` (the number of scored cells). A static input's drop
        is NaN in a layer with fewer than 3 scored cells (a shuffle across 1 or 2 cells
        cannot tell an ignored input from a used one), with a ``RuntimeWarning``.

    Raises
    ------
    XsomoValueError
        If an input is not one of the model's, ``repeats < 1``, the spin-up leaves fewer than
        ``min_days`` days to score, or no cell has ``min_days`` scored days in any layer.

    Examples
    --------
    >>> res = input_importance(model, drivers, targets, repeats=3)  # doctest: +SKIP
    >>> res.r_drop.median("repeat").sel(layer=1).to_pandas().sort_values()  # doctest: +SKIP
    """
    cfg = model.config
    dynamic, static = list(cfg.dynamic), list(cfg.static)
    names = list(inputs) if inputs is not None else [*dynamic, *static]
    unknown = [v for v in names if v not in dynamic and v not in static]
    if unknown:
        raise XsomoValueError(f"inputs={unknown} are not inputs of the model (dynamic {dynamic}, static {static})")
    twice = sorted({v for v in names if names.count(v) > 1})
    if twice:
        raise XsomoValueError(f"inputs={names}: {twice} given more than once")
    if int(repeats) < 1:
        raise XsomoValueError(f"repeats={repeats}: give at least 1")
    data = prepare_training_data(drivers, targets, layers=cfg.layers, dynamic=dynamic, static=static)
    first = int(cfg.lookback if spinup is None else spinup)
    if first < 0:
        raise XsomoValueError(f"spinup={spinup}: give 0 or more days")
    _check_scored_days(data.dynamic.shape[1], first, int(min_days), int(cfg.lookback), spinup)

    def run(dyn: np.ndarray, sta: np.ndarray) -> np.ndarray:
        out = rollout.predict_block(model, dyn, sta, mode=mode, spinup=max(first, 1), device=device)
        return out.mean(axis=1)  # (layer, cell, time)

    finite = np.isfinite(data.static).all(axis=1)
    if not finite.all():
        # the roll-out is NaN there: a static shuffle moved the NaN to another cell, so every run
        # had scored a different set of cells (an input the model ignores showed NSE drops of 0.04)
        warnings.warn(
            f"{int((~finite).sum())} of {finite.size} target cells have a NaN static input and are left out of "
            "the importance (the model predicts nothing there)",
            RuntimeWarning,
            stacklevel=2,
        )
        if not finite.any():
            raise XsomoValueError("no target cell has finite values of every static input of the model")
        data = dataclasses.replace(
            data, dynamic=data.dynamic[finite], static=data.static[finite], target=data.target[finite],
            lat=data.lat[finite], lon=data.lon[finite],
        )
    scored_against = _training_overlap(model, data.lat, data.lon)
    base_cells_r, base_cells_nse = _cell_scores(run(data.dynamic, data.static), data.target, first, min_days)
    scored = np.isfinite(base_cells_r)
    n_scored = scored.sum(axis=1)
    base_r, base_nse = _medians(base_cells_r, base_cells_nse, scored)
    if not n_scored.any():
        raise XsomoValueError(
            f"no target cell has {min_days} days (min_days) with both a target and a simulated value after "
            f"the spin-up of {first} days in any layer {list(cfg.layers)}: check that the targets cover the "
            "drivers' period, or give a smaller min_days="
        )
    few = n_scored < _MIN_STATIC_CELLS  # per layer: a static input shuffled across < 3 cells says nothing
    n_cells = data.static.shape[0]
    static_names = [v for v in names if v in static]
    if static_names and few.any():
        warnings.warn(
            f"static inputs {static_names} are shuffled across cells, but only {n_scored.tolist()} cells are "
            f"scored in layers {list(cfg.layers)} (fewer than {_MIN_STATIC_CELLS}): their drops are NaN where "
            "so few cells are scored. Score the model at more target cells to rank static inputs.",
            RuntimeWarning,
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    n_layers = len(cfg.layers)
    r_drop = np.full((len(names), n_layers, int(repeats)), np.nan)
    nse_drop = np.full_like(r_drop, np.nan)
    for i, name in enumerate(names):
        if name in static and (few.all() or n_cells < 2):
            continue  # nothing to shuffle with: NaN (warned above)
        for k in range(int(repeats)):
            dyn, sta = data.dynamic, data.static
            if name in dynamic:
                j = dynamic.index(name)
                dyn = dyn.copy()
                dyn[:, :, j] = dyn[:, rng.permutation(dyn.shape[1]), j]
            else:
                j = static.index(name)
                sta = sta.copy()
                sta[:, j] = sta[_derangement(rng, sta.shape[0]), j]
            r, nse = _medians(*_cell_scores(run(dyn, sta), data.target, first, min_days), scored)
            r_drop[i, :, k] = base_r - r
            nse_drop[i, :, k] = base_nse - nse
            if name in static:
                r_drop[i, few, k] = np.nan
                nse_drop[i, few, k] = np.nan
    coords = {"input": names, cv.LAYER: list(cfg.layers), "repeat": np.arange(int(repeats))}
    return xr.Dataset(
        {
            "r_drop": (("input", cv.LAYER, "repeat"), r_drop, {"long_name": "drop of the median Pearson r when the input is shuffled"}),
            "nse_drop": (("input", cv.LAYER, "repeat"), nse_drop, {"long_name": "drop of the median NSE when the input is shuffled"}),
            "r": ((cv.LAYER,), base_r, {"long_name": "median Pearson r with intact inputs"}),
            "nse": ((cv.LAYER,), base_nse, {"long_name": "median NSE with intact inputs"}),
            "kind": (("input",), np.array(["dynamic" if v in dynamic else "static" for v in names])),
            "n_scored": ((cv.LAYER,), n_scored.astype("int32"), {"long_name": f"target cells with at least {min_days} scored days"}),
        },
        coords=coords,
        attrs={
            "title": "xsomo input importance (permutation)",
            "method": "dynamic inputs shuffled across time, static inputs across cells; drop = intact - shuffled",
            "n_cells": int(data.target.shape[0]),
            "scored_against": scored_against,
            "n_scored": ", ".join(f"layer {lay}: {int(k)}" for lay, k in zip(cfg.layers, n_scored, strict=True)),

            "spinup_days": first,
            "seed": int(seed),
            "references": "O, S. & Orth, R. (2021): Global soil moisture data derived through machine learning "
            "trained with in-situ measurements. Sci. Data 8, 170, doi:10.1038/s41597-021-00964-1",
        },
    )


def importance_table(result: xr.Dataset) -> pd.DataFrame:
    """One row per input and layer: the median drop over the repeats and its range.

    The numbers the report's importance figure (:func:`xsomo.report.plotting.importance_bars`)
    draws and its table lists: ``input``, ``kind``, ``layer``, ``r_drop`` / ``nse_drop``
    (median over repeats), ``r_drop_min``, ``r_drop_max``, ``nse_drop_min``,
    ``nse_drop_max`` (the spread over the repeats), ``r``, ``nse`` (intact scores) and
    ``repeats``. Inputs keep their order in ``result`` (dynamic before static as
    :func:`input_importance` writes them).

    Parameters
    ----------
    result
        The Dataset of :func:`input_importance` (or its netCDF, opened).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    XsomoValueError
        If ``result`` lacks a variable of :func:`input_importance`'s result.

    Examples
    --------
    >>> res = xr.Dataset(
    ...     {"r_drop": (("input", "layer", "repeat"), [[[0.1, 0.3, 0.2]], [[0.0, 0.0, 0.0]]]),
    ...      "nse_drop": (("input", "layer", "repeat"), [[[0.2, 0.4, 0.3]], [[0.0, 0.1, 0.0]]]),
    ...      "r": (("layer",), [0.9]), "nse": (("layer",), [0.8]),
    ...      "kind": (("input",), ["dynamic", "static"])},
    ...     coords={"input": ["precipitation", "sand_top"], "layer": [1], "repeat": [0, 1, 2]})
    >>> importance_table(res)[["input", "kind", "layer", "r_drop", "r_drop_min", "r_drop_max"]]
               input     kind  layer  r_drop  r_drop_min  r_drop_max
    0  precipitation  dynamic      1     0.2         0.1         0.3
    1       sand_top   static      1     0.0         0.0         0.0
    """
    missing = [v for v in ("r_drop", "nse_drop", "r", "nse", "kind") if v not in result]
    if missing:
        raise XsomoValueError(
            f"the importance result lacks {missing}: give the Dataset (or netCDF) of "
            "xsomo.evaluation.importance.input_importance / xsomo experiment importance"
        )
    rows = []
    names = [str(v) for v in result["input"].values]
    kinds = [str(v) for v in result["kind"].values]
    for lay in result[cv.LAYER].values:
        per = {}
        for m in ("r_drop", "nse_drop"):
            d = np.asarray(result[m].sel({cv.LAYER: lay}).transpose("input", "repeat").values, float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an input never scored: NaN
                per[m] = (np.nanmedian(d, axis=1), np.nanmin(d, axis=1), np.nanmax(d, axis=1))
        for i, name in enumerate(names):
            rows.append(
                {
                    "input": name,
                    "kind": kinds[i],
                    cv.LAYER: int(lay),
                    "r_drop": per["r_drop"][0][i],
                    "r_drop_min": per["r_drop"][1][i],
                    "r_drop_max": per["r_drop"][2][i],
                    "nse_drop": per["nse_drop"][0][i],
                    "nse_drop_min": per["nse_drop"][1][i],
                    "nse_drop_max": per["nse_drop"][2][i],
                    "r": float(result["r"].sel({cv.LAYER: lay})),
                    "nse": float(result["nse"].sel({cv.LAYER: lay})),
                    "repeats": int(result.sizes["repeat"]),
                }
            )
    return pd.DataFrame(rows)
