"""Simple baselines a learned soil-moisture model must beat (issue 18).

- :func:`climatology_baseline`: the day-of-year climatology of the training years
  (31-day circular moving mean of the daily means of each calendar day).
- :func:`api_baseline`: an antecedent precipitation index ``API_t = k API_{t-1} + P_t``
  mapped linearly to soil moisture, ``a + b API``; ``k`` (grid search) and ``a``, ``b``
  (least squares) are fitted per station on the training days only.

Both take ``(station, time)`` DataArrays and return ``(station, time)`` predictions on the
whole time axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv

__all__ = ["antecedent_precipitation_index", "api_baseline", "climatology_baseline"]

#: Decay factors tried by :func:`api_baseline` (e-folding times of ~1 day to ~100 days).
API_DECAYS = tuple(np.round(np.exp(-1.0 / np.geomspace(1.0, 100.0, 40)), 5))


def _mask(obs: xr.DataArray, train: Any) -> xr.DataArray:
    """``obs`` where ``train`` (a bool DataArray, a slice of time, or None: all) holds."""
    if train is None:
        return obs
    if isinstance(train, slice):
        keep = xr.zeros_like(obs[cv.TIME], dtype=bool)
        keep.loc[{cv.TIME: train}] = True
        return obs.where(keep)
    return obs.where(train)


def climatology_baseline(obs: xr.DataArray, train: Any = None, *, window: int = 31) -> xr.DataArray:
    """Day-of-year climatology of ``obs`` on the training days, on ``obs``'s time axis.

    >>> t = pd.date_range("2001-01-01", "2002-12-31")
    >>> obs = xr.DataArray(np.r_[np.full(365, 0.2), np.full(365, 0.4)][None], dims=("station", "time"),
    ...                    coords={"time": t})
    >>> round(float(climatology_baseline(obs, slice("2001", "2001")).isel(station=0, time=-1)), 6)
    0.2
    """
    fit = _mask(obs, train)
    doy = np.minimum(pd.DatetimeIndex(obs[cv.TIME].values).day_of_year.to_numpy(), 365) - 1
    vals = fit.transpose(..., cv.TIME).values.astype(float)
    flat = vals.reshape(-1, vals.shape[-1])
    sums = np.zeros((flat.shape[0], 365))
    counts = np.zeros((flat.shape[0], 365))
    ok = np.isfinite(flat)
    for d in range(365):
        sel = (doy == d)[None, :] & ok
        sums[:, d] = np.where(sel, flat, 0.0).sum(axis=1)
        counts[:, d] = sel.sum(axis=1)
    half = window // 2
    kernel = np.ones(window)
    pad = lambda a: np.concatenate([a[:, -half:], a, a[:, :half]], axis=1)  # noqa: E731
    s = np.stack([np.convolve(r, kernel, "valid") for r in pad(sums)])
    c = np.stack([np.convolve(r, kernel, "valid") for r in pad(counts)])
    with np.errstate(invalid="ignore", divide="ignore"):
        clim = np.where(c > 0, s / c, np.nan)
    out = clim[:, doy].reshape(vals.shape)
    return xr.DataArray(out, dims=fit.transpose(..., cv.TIME).dims, coords=fit.transpose(..., cv.TIME).coords, name="climatology")


def antecedent_precipitation_index(precip: np.ndarray, k: float) -> np.ndarray:
    """``API_t = k API_{t-1} + P_t`` along the last axis (a missing day counts as no rain).

    >>> antecedent_precipitation_index(np.array([1.0, 0.0, 2.0]), 0.5).tolist()
    [1.0, 0.5, 2.25]
    """
    p = np.nan_to_num(np.asarray(precip, float))
    out = np.empty_like(p)
    acc = np.zeros(p.shape[:-1])
    for t in range(p.shape[-1]):
        acc = k * acc + p[..., t]
        out[..., t] = acc
    return out


def api_baseline(
    obs: xr.DataArray, precip: xr.DataArray, train: Any = None, *, decays: tuple[float, ...] = API_DECAYS
) -> tuple[xr.DataArray, dict[str, np.ndarray]]:
    """Antecedent precipitation index fitted per station on the training days.

    Parameters
    ----------
    obs
        Observed soil moisture ``(station, time)``.
    precip
        Daily precipitation ``(station, time)`` on the same axes (mm d-1).
    train
        Training days: a bool ``(station, time)`` DataArray, a time slice, or None (all).
    decays
        Decay factors ``k`` tried; the one with the smallest training MSE is kept.

    Returns
    -------
    prediction : xarray.DataArray
        ``a + b API`` on every day.
    params : dict
        ``k``, ``a``, ``b`` per station.
    """
    fit = _mask(obs, train).transpose(cv.STATION, cv.TIME).values.astype(float)
    p = precip.transpose(cv.STATION, cv.TIME).values.astype(float)
    out = np.full(p.shape, np.nan)
    params = {"k": np.full(p.shape[0], np.nan), "a": np.full(p.shape[0], np.nan), "b": np.full(p.shape[0], np.nan)}
    for s in range(p.shape[0]):
        ok = np.isfinite(fit[s])
        if ok.sum() < 3:
            continue
        best = None
        for k in decays:
            api = antecedent_precipitation_index(p[s], k)
            x, y = api[ok], fit[s][ok]
            b, a = np.polyfit(x, y, 1)
            mse = float(np.mean((a + b * x - y) ** 2))
            if best is None or mse < best[0]:
                best = (mse, k, a, b, api)
        _, k, a, b, api = best
        out[s] = a + b * api
        params["k"][s], params["a"][s], params["b"][s] = k, a, b
    da = xr.DataArray(out, dims=(cv.STATION, cv.TIME), coords={cv.STATION: obs[cv.STATION], cv.TIME: obs[cv.TIME]}, name="api")
    return da, params
