"""k-fold cross-validation by cell for the EA-LSTM's hyper-parameters (SoMo.ml-EU method).

Folds split the target *cells* (never days), so each score measures skill at cells the
model has not seen, as for the ungauged cells the product is made for.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import XsomoValueError
from xsomo.model import rollout, training

__all__ = ["cross_validate", "fold_cells"]

logger = logging.getLogger(__name__)


def fold_cells(n_cells: int, k: int, *, seed: int = 0) -> list[np.ndarray]:
    """Split ``range(n_cells)`` into ``k`` random folds of near-equal size."""
    if k < 2 or k > n_cells:
        raise XsomoValueError(f"k must be between 2 and the number of cells ({n_cells}), got {k}")
    perm = np.random.default_rng(seed).permutation(n_cells)
    return [np.sort(f) for f in np.array_split(perm, k)]


def _scores(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """Median per-cell Pearson r, unbiased RMSD and overall RMSE of one layer (cells, time)."""
    rs, ur = [], []
    for p, o in zip(pred, obs, strict=True):
        m = np.isfinite(p) & np.isfinite(o)
        if m.sum() < 10:
            continue
        a, b = p[m] - p[m].mean(), o[m] - o[m].mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        if den > 0:
            rs.append(float((a * b).sum() / den))
        ur.append(float(np.sqrt(np.mean((a - b) ** 2))))
    m = np.isfinite(pred) & np.isfinite(obs)
    rmse = float(np.sqrt(np.mean((pred[m] - obs[m]) ** 2))) if m.any() else np.nan
    return {
        "pearson_r": float(np.median(rs)) if rs else np.nan,
        "urmsd": float(np.median(ur)) if ur else np.nan,
        "rmse": rmse,
        "n_cells": len(rs),
    }


def cross_validate(
    drivers: xr.Dataset,
    targets: xr.Dataset,
    *,
    k: int = 5,
    grid: Mapping[str, Sequence[Any]] | None = None,
    seed: int = 0,
    metric: str = "pearson_r",
    **train_kwargs: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score every setting of ``grid`` by ``k``-fold cross-validation over target cells.

    Parameters
    ----------
    drivers, targets
        As for :func:`xsomo.model.training.train_lstm`.
    k
        Number of folds (cells are split, not days).
    grid
        ``{option: [values]}`` of :func:`~xsomo.model.training.train_lstm` options; every
        combination is a setting (default: ``{"hidden": [64, 128]}``).
    seed
        Seed of the folds and of training.
    metric
        Column that picks the best setting (``pearson_r``, higher is better; ``urmsd`` or
        ``rmse``, lower is better), averaged over folds and layers.
    **train_kwargs
        Fixed options for :func:`~xsomo.model.training.train_lstm`.

    Returns
    -------
    scores : pandas.DataFrame
        Tidy table, one row per setting, fold and layer: the grid options, ``fold``,
        ``layer``, ``pearson_r``, ``urmsd``, ``rmse``, ``n_cells`` (scores on the held-out
        cells after the spin-up, continuous roll-out of the ensemble mean).
    best : dict
        The best setting.
    """
    grid = dict(grid or {"hidden": [64, 128]})
    if metric not in ("pearson_r", "urmsd", "rmse"):
        raise XsomoValueError(f"metric must be 'pearson_r', 'urmsd' or 'rmse', got {metric!r}")
    bad = sorted(set(grid) & {"cells", "run_dir"})
    if bad:
        raise XsomoValueError(f"grid cannot vary {bad}")
    run_options = {k: train_kwargs[k] for k in training.RUN_OPTIONS if k in train_kwargs}
    settings = training.training_config(**{k: v for k, v in train_kwargs.items() if k not in run_options})
    data = training.prepare_training_data(
        drivers, targets, layers=settings.layers,
        dynamic=settings.dynamic or cv.DYNAMIC_NAMES,
        static=settings.static or cv.STATIC_NAMES,
    )  # fmt: skip
    usable = np.flatnonzero(np.isfinite(data.static).all(axis=1) & np.isfinite(data.target).any(axis=(1, 2)))
    folds = fold_cells(usable.size, k, seed=seed)
    names = list(grid)
    rows: list[dict[str, Any]] = []
    for values in itertools.product(*(grid[n] for n in names)):
        setting = dict(zip(names, values, strict=True))
        for f, test_pos in enumerate(folds):
            test = usable[test_pos]
            train = np.setdiff1d(usable, test)
            kw = {**train_kwargs, **setting, "seed": seed, "cells": train}
            kw.setdefault("progress", False)
            model = training.train_lstm(drivers, targets, **kw)
            out = rollout.predict_block(
                model, data.dynamic[test], data.static[test], mode="continuous",
                device=kw.get("device", "auto"),
            )  # fmt: skip
            ens = out.mean(axis=1)  # members share their NaN days (spin-up, gaps)
            for j, layer in enumerate(model.config.layers):
                score = _scores(ens[j], data.target[test, data.layers.index(layer)])
                rows.append({**setting, "fold": f, "layer": layer, **score})
            logger.info("setting %s fold %d done", setting, f)
    scores = pd.DataFrame(rows)
    mean = scores.groupby(names, dropna=False)[metric].mean()
    best_key = mean.idxmax() if metric == "pearson_r" else mean.idxmin()
    best_values = best_key if isinstance(best_key, tuple) else (best_key,)
    best = dict(zip(names, best_values, strict=True))
    best = {n: (v.item() if hasattr(v, "item") else v) for n, v in best.items()}
    return scores, best
