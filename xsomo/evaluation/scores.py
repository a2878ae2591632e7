"""Skill metrics, station and gridded evaluation, anomalies.

Layering (STYLE.md §1, as in xskillscore): ``_np_*`` functions are numpy kernels over
the last axis (time), vectorised over every leading axis (cells, stations, layers);
the public metric functions wrap them once with ``xr.apply_ufunc(...,
dask="parallelized")`` and stay lazy on dask input. Pearson r, RMSE and the bias are
delegated to xskillscore (the field's library) after the pairwise-complete masking and
the minimum-days rule; the fused kernel :func:`_np_metrics` used by :func:`evaluate`
is checked against them in the tests.

Every metric is *pairwise complete*: only days on which both series are finite count,
and a series pair with fewer than ``min_days`` common days gives NaN.

Conventions: ``sim`` is the evaluated data (the prediction, a product), ``obs`` the
reference (stations, another product). ``bias = mean(sim - obs)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "METRICS",
    "anomalies",
    "anomaly_r",
    "bias",
    "daily_climatology",
    "evaluate",
    "evaluate_grid",
    "evaluate_stations",
    "footprint_weights",
    "kge",
    "match_stations",
    "metrics",
    "nse",
    "pearson_r",
    "rmse",
    "summarize",
    "summer_mean",
    "to_geodataframe",
    "urmsd",
]

#: Default minimum number of common valid days for a metric (else NaN).
MIN_DAYS = 30
#: Width of the moving window of the daily climatology (days).
CLIM_WINDOW = 31
#: Metrics computed by :func:`metrics` / :func:`evaluate`, in this order.
METRICS: tuple[str, ...] = ("pearson_r", "urmsd", "bias", "rmse", "nse", "kge", "anomaly_r")
#: Layer label of the footprint-weighted mix of the three layers in station metrics.
FOOTPRINT_LAYER = 0

_METRIC_ATTRS: dict[str, dict[str, str]] = {
    "pearson_r": {"long_name": "Pearson correlation coefficient", "units": "1"},
    "urmsd": {"long_name": "unbiased root-mean-square difference", "units": "m3 m-3"},
    "bias": {"long_name": "mean difference (evaluated minus reference)", "units": "m3 m-3"},
    "rmse": {"long_name": "root-mean-square difference", "units": "m3 m-3"},
    "nse": {"long_name": "Nash-Sutcliffe efficiency", "units": "1"},
    "kge": {"long_name": "Kling-Gupta efficiency", "units": "1"},
    "anomaly_r": {
        "long_name": "correlation of anomalies from the 31-day moving daily climatology",
        "units": "1",
    },
    "n": {"long_name": "number of common valid days", "units": "1"},
}

_REFS = """
    References
    ----------
    Entekhabi, D., Reichle, R. H., Koster, R. D. & Crow, W. T. (2010): Performance metrics
    for soil moisture retrievals and application requirements. J. Hydrometeor. 11, 832-840,
    https://doi.org/10.1175/2010JHM1223.1.
    Gupta, H. V., Kling, H., Yilmaz, K. K. & Martinez, G. F. (2009): Decomposition of the mean
    squared error and NSE performance criteria. J. Hydrol. 377, 80-91,
    https://doi.org/10.1016/j.jhydrol.2009.08.003.
"""

# ============================================================================ numpy kernels


def _common(sim: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Float64 copies with zeros where either is missing, the common mask and its count."""
    sim = np.asarray(sim, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    mask = np.isfinite(sim) & np.isfinite(obs)
    n = mask.sum(axis=-1)
    return np.where(mask, sim, 0.0), np.where(mask, obs, 0.0), mask, n


def _moments(sim: np.ndarray, obs: np.ndarray) -> dict[str, np.ndarray]:
    """Pairwise-complete means, (population) variances and covariance over the last axis."""
    s, o, mask, n = _common(sim, obs)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(n > 0, n, np.nan)
        ms = s.sum(-1) / nn
        mo = o.sum(-1) / nn
        ds = np.where(mask, s - ms[..., None], 0.0)
        do = np.where(mask, o - mo[..., None], 0.0)
        vs = (ds * ds).sum(-1) / nn
        vo = (do * do).sum(-1) / nn
        cov = (ds * do).sum(-1) / nn
        mse = ((s - o) ** 2).sum(-1) / nn
        vd = ((ds - do) ** 2).sum(-1) / nn
    return {"n": n, "ms": ms, "mo": mo, "vs": vs, "vo": vo, "cov": cov, "mse": mse, "vd": vd}


def _apply_min(values: np.ndarray, n: np.ndarray, min_days: int) -> np.ndarray:
    return np.where(n >= max(int(min_days), 2), values, np.nan)


def _np_metrics(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    """All metrics but ``anomaly_r`` at once: ``(..., 7)`` = n, r, urmsd, bias, rmse, nse, kge."""
    m = _moments(sim, obs)
    with np.errstate(invalid="ignore", divide="ignore"):
        ss, so = np.sqrt(m["vs"]), np.sqrt(m["vo"])
        r = m["cov"] / (ss * so)
        b = m["ms"] - m["mo"]
        rmse_ = np.sqrt(m["mse"])
        urmsd_ = np.sqrt(m["vd"])
        nse_ = 1.0 - m["mse"] / m["vo"]
        kge_ = 1.0 - np.sqrt((r - 1) ** 2 + (ss / so - 1) ** 2 + (m["ms"] / m["mo"] - 1) ** 2)
    out = np.stack([r, urmsd_, b, rmse_, nse_, kge_], axis=-1)
    out = np.where(np.isfinite(out), out, np.nan)
    out = _apply_min(out, m["n"][..., None], min_days)
    return np.concatenate([m["n"][..., None].astype(np.float64), out], axis=-1)


def _np_pearson_r(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    return _np_metrics(sim, obs, min_days=min_days)[..., 1]


def _np_urmsd(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    return _np_metrics(sim, obs, min_days=min_days)[..., 2]


def _np_nse(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    return _np_metrics(sim, obs, min_days=min_days)[..., 5]


def _np_kge(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    return _np_metrics(sim, obs, min_days=min_days)[..., 6]


def _np_count(sim: np.ndarray, obs: np.ndarray) -> np.ndarray:
    return (np.isfinite(np.asarray(sim, float)) & np.isfinite(np.asarray(obs, float))).sum(-1)


def _clim_doy(time: Any) -> np.ndarray:
    """Day of year 0..365 on a leap-year calendar (29 Feb = 59), so that dates align across years."""
    t = pd.DatetimeIndex(np.asarray(time))
    # cumulative days before each month in a leap year
    before = np.array([0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])
    return before[t.month.to_numpy() - 1] + t.day.to_numpy() - 1


def _doy_sums(x2d: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Sums of ``x2d (N, time)`` per calendar day: ``(N, 366)`` (O(N·time), no dense one-hot)."""
    order = np.argsort(doy, kind="stable")
    d = doy[order]
    starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
    out = np.zeros((x2d.shape[0], 366))
    if x2d.shape[1]:
        out[:, d[starts]] = np.add.reduceat(x2d[:, order], starts, axis=1)
    return out


def _circular_window_sum(a: np.ndarray, window: int) -> np.ndarray:
    """Sum over the ``window`` days centred on each calendar day, wrapping around the year (last axis 366)."""
    half = window // 2
    padded = np.concatenate([a[:, -half:], a, a[:, :half]], axis=1) if half else a
    c = np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(padded, axis=1)], axis=1)
    return c[:, 2 * half + 1 :] - c[:, : -(2 * half + 1)]


def _np_climatology(
    x: np.ndarray, doy: np.ndarray, *, window: int = CLIM_WINDOW, use: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moving-window daily climatology of ``x`` (..., time): mean, std, count per day of year (..., 366).

    ``use`` (time,) bool selects the days that enter the climatology (a baseline period).
    """
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    valid = np.isfinite(x2)
    if use is not None:
        valid &= np.asarray(use, bool)[None, :]
    x0 = np.where(valid, x2, 0.0)
    cnt = _circular_window_sum(_doy_sums(valid.astype(np.float64), doy), window)
    s1 = _circular_window_sum(_doy_sums(x0, doy), window)
    s2 = _circular_window_sum(_doy_sums(x0 * x0, doy), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        var = np.maximum(s2 / cnt - mean * mean, 0.0) * cnt / (cnt - 1)
    shape = (*lead, 366)
    return mean.reshape(shape), np.sqrt(var).reshape(shape), cnt.reshape(shape)


def _np_anomalies(
    x: np.ndarray,
    doy: np.ndarray,
    *,
    window: int = CLIM_WINDOW,
    use: np.ndarray | None = None,
    standardise: bool = True,
    min_count: int = 10,
) -> np.ndarray:
    """Anomalies of ``x`` (..., time) from its moving daily climatology; z-scores if ``standardise``."""
    mean, std, cnt = _np_climatology(x, doy, window=window, use=use)
    mean = np.where(cnt >= min_count, mean, np.nan)
    anom = np.asarray(x, np.float64) - mean[..., doy]
    if standardise:
        with np.errstate(invalid="ignore", divide="ignore"):
            s = std[..., doy]
            anom = np.where(s > 0, anom / s, np.nan)
    return anom


def _np_anomaly_r(
    sim: np.ndarray, obs: np.ndarray, doy: np.ndarray, *, window: int = CLIM_WINDOW, min_days: int = MIN_DAYS
) -> np.ndarray:
    """Correlation of the anomalies of ``sim`` and ``obs`` on their common days."""
    s, o, mask, _ = _common(sim, obs)
    s = np.where(mask, s, np.nan)
    o = np.where(mask, o, np.nan)
    a_s = _np_anomalies(s, doy, window=window, standardise=False, min_count=2)
    a_o = _np_anomalies(o, doy, window=window, standardise=False, min_count=2)
    return _np_metrics(a_s, a_o, min_days=min_days)[..., 1]


# ============================================================================ xarray wrappers


def _as_da(obj: xr.Dataset | xr.DataArray, var: Hashable = cv.SM) -> xr.DataArray:
    if isinstance(obj, xr.DataArray):
        return obj
    if var in obj.data_vars:
        return obj[var]
    if len(obj.data_vars) == 1:
        return next(iter(obj.data_vars.values()))
    raise MissingVariableError(
        f"variable {var!r} not found in the Dataset (variables {sorted(map(str, obj.data_vars))}); "
        f"pass the DataArray or a Dataset holding {var!r}."
    )


def _prepare(sim: xr.DataArray, obs: xr.DataArray, dim: str) -> tuple[xr.DataArray, xr.DataArray]:
    if dim not in sim.dims or dim not in obs.dims:
        raise XsomoValueError(f"both inputs need the dimension {dim!r} (got {sim.dims} and {obs.dims}).")
    sim, obs = xr.align(sim, obs, join="inner")
    if sim.sizes[dim] == 0:
        raise GridMismatchError(f"the two inputs share no {dim!r} values; check their periods and coordinates.")
    if sim.chunks is not None:
        sim = sim.chunk({dim: -1})
    if obs.chunks is not None:
        obs = obs.chunk({dim: -1})
    return sim, obs


def _wrap(kernel: Any, sim: xr.DataArray, obs: xr.DataArray, dim: str, name: str, **kwargs: Any) -> xr.DataArray:
    sim, obs = _prepare(sim, obs, dim)
    out = xr.apply_ufunc(
        kernel,
        sim,
        obs,
        input_core_dims=[[dim], [dim]],
        kwargs=kwargs,
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    return out.rename(name).assign_attrs(_METRIC_ATTRS[name])


def _masked_pair(
    sim: xr.DataArray, obs: xr.DataArray, dim: str, min_days: int
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    sim, obs = _prepare(sim, obs, dim)
    both = sim.notnull() & obs.notnull()
    return sim.where(both), obs.where(both), both.sum(dim) >= max(int(min_days), 2)


_SHARED = """
    Parameters
    ----------
    sim
        Evaluated data (prediction, product), DataArray with dimension ``dim``.
    obs
        Reference data, broadcastable against ``sim``; aligned on shared coordinates (inner join).
    dim
        Dimension along which the metric is computed (``time``); kept whole in one dask chunk.
    min_days
        Minimum number of days on which both are valid; fewer gives NaN.

    Returns
    -------
    xarray.DataArray
        ``sim``'s dimensions without ``dim``; lazy (dask) when an input is.
"""


def pearson_r(sim: xr.DataArray, obs: xr.DataArray, *, dim: str = cv.TIME, min_days: int = MIN_DAYS) -> xr.DataArray:
    """Pearson correlation on the common valid days (xskillscore ``pearson_r``, ``skipna=True``)."""
    import xskillscore as xs

    s, o, ok = _masked_pair(sim, obs, dim, min_days)
    return xs.pearson_r(s, o, dim=dim, skipna=True).where(ok).rename("pearson_r").assign_attrs(
        _METRIC_ATTRS["pearson_r"]
    )


def rmse(sim: xr.DataArray, obs: xr.DataArray, *, dim: str = cv.TIME, min_days: int = MIN_DAYS) -> xr.DataArray:
    """Root-mean-square difference on the common valid days (xskillscore ``rmse``)."""
    import xskillscore as xs

    s, o, ok = _masked_pair(sim, obs, dim, min_days)
    return xs.rmse(s, o, dim=dim, skipna=True).where(ok).rename("rmse").assign_attrs(_METRIC_ATTRS["rmse"])


def bias(sim: xr.DataArray, obs: xr.DataArray, *, dim: str = cv.TIME, min_days: int = MIN_DAYS) -> xr.DataArray:
    """Mean difference ``mean(sim - obs)`` on the common valid days (xskillscore ``me``)."""
    import xskillscore as xs

    s, o, ok = _masked_pair(sim, obs, dim, min_days)
    return xs.me(s, o, dim=dim, skipna=True).where(ok).rename("bias").assign_attrs(_METRIC_ATTRS["bias"])


def urmsd(sim: xr.DataArray, obs: xr.DataArray, *, dim: str = cv.TIME, min_days: int = MIN_DAYS) -> xr.DataArray:
    r"""Unbiased RMSD: the RMSD after removing the mean bias (Entekhabi et al. 2010).

    .. math:: \mathrm{uRMSD} = \sqrt{\overline{\left[(s-\bar s)-(o-\bar o)\right]^2}} = \sqrt{\mathrm{RMSD}^2 - \mathrm{bias}^2}
    """
    return _wrap(_np_urmsd, sim, obs, dim, "urmsd", min_days=min_days)


def nse(sim: xr.DataArray, obs: xr.DataArray, *, dim: str = cv.TIME, min_days: int = MIN_DAYS) -> xr.DataArray:
    r"""Nash-Sutcliffe efficiency.

    .. math:: \mathrm{NSE} = 1 - \frac{\sum_t (s_t-o_t)^2}{\sum_t (o_t-\bar o)^2}
    """
    return _wrap(_np_nse, sim, obs, dim, "nse", min_days=min_days)


def kge(sim: xr.DataArray, obs: xr.DataArray, *, dim: str = cv.TIME, min_days: int = MIN_DAYS) -> xr.DataArray:
    r"""Kling-Gupta efficiency (Gupta et al. 2009).

    .. math:: \mathrm{KGE} = 1 - \sqrt{(r-1)^2 + (\sigma_s/\sigma_o-1)^2 + (\mu_s/\mu_o-1)^2}
    """
    return _wrap(_np_kge, sim, obs, dim, "kge", min_days=min_days)


def anomaly_r(
    sim: xr.DataArray,
    obs: xr.DataArray,
    *,
    dim: str = cv.TIME,
    min_days: int = MIN_DAYS,
    window: int = CLIM_WINDOW,
) -> xr.DataArray:
    """Correlation of anomalies from each series' ``window``-day moving daily climatology.

    Both series are first reduced to their common valid days; each one's climatology
    (mean per calendar day over all years of the values within ``window`` days around
    it) is removed; the anomalies are correlated.
    """
    sim, obs = _prepare(sim, obs, dim)
    doy = _clim_doy(sim[dim].values)
    return _wrap(_np_anomaly_r_t, sim, obs, dim, "anomaly_r", doy=doy, window=window, min_days=min_days)


def _np_anomaly_r_t(sim: np.ndarray, obs: np.ndarray, *, doy: np.ndarray, window: int, min_days: int) -> np.ndarray:
    return _np_anomaly_r(sim, obs, doy, window=window, min_days=min_days)


for _f in (pearson_r, rmse, bias, urmsd, nse, kge, anomaly_r):
    _f.__doc__ = (_f.__doc__ or "") + "\n" + _SHARED + _REFS


def metrics(
    sim: xr.DataArray,
    obs: xr.DataArray,
    *,
    dim: str = cv.TIME,
    min_days: int = MIN_DAYS,
    anomaly: bool = True,
    window: int = CLIM_WINDOW,
) -> xr.Dataset:
    """All metrics of :data:`METRICS` and the count ``n`` in one pass (one fused kernel).

    Returns a Dataset with one variable per metric over ``sim``'s dims without ``dim``.
    """
    sim, obs = _prepare(sim, obs, dim)
    out = xr.apply_ufunc(
        _np_metrics,
        sim,
        obs,
        input_core_dims=[[dim], [dim]],
        output_core_dims=[["metric"]],
        kwargs={"min_days": min_days},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"metric": 7}},
    )
    names = ("n", "pearson_r", "urmsd", "bias", "rmse", "nse", "kge")
    ds = xr.Dataset({name: out.isel(metric=i, drop=True) for i, name in enumerate(names)})
    ds["n"] = ds["n"].fillna(0).astype("int32")
    if anomaly:
        ds["anomaly_r"] = anomaly_r(sim, obs, dim=dim, min_days=min_days, window=window)
    for name in ds.data_vars:
        ds[name].attrs = dict(_METRIC_ATTRS[str(name)])
    return ds


# ============================================================================ climatology, anomalies


def daily_climatology(
    sm: xr.Dataset | xr.DataArray,
    *,
    window: int = CLIM_WINDOW,
    baseline: tuple[str, str] | slice | None = None,
) -> xr.Dataset:
    """Moving-window daily climatology: ``mean`` and ``std`` per calendar day (``dayofyear`` 1-366).

    Each calendar day's statistics use every value within ``window`` days around it in
    all years (of the ``baseline`` period when given).
    """
    da = _as_da(sm)
    da = da.chunk({cv.TIME: -1}) if da.chunks is not None else da
    doy = _clim_doy(da[cv.TIME].values)
    use = _baseline_mask(da[cv.TIME], baseline)

    def kern(x: np.ndarray) -> np.ndarray:
        mean, std, _ = _np_climatology(x, doy, window=window, use=use)
        return np.stack([mean, std], axis=-1)

    out = xr.apply_ufunc(
        kern,
        da,
        input_core_dims=[[cv.TIME]],
        output_core_dims=[["dayofyear", "stat"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"dayofyear": 366, "stat": 2}},
    ).assign_coords(dayofyear=np.arange(1, 367))
    units = da.attrs.get("units", "")
    return xr.Dataset(
        {
            "mean": out.isel(stat=0, drop=True).assign_attrs(long_name="climatological mean", units=units),
            "std": out.isel(stat=1, drop=True).assign_attrs(long_name="climatological standard deviation", units=units),
        },
        attrs={"window_days": window},
    )


def _baseline_mask(time: xr.DataArray, baseline: tuple[str, str] | slice | None) -> np.ndarray | None:
    if baseline is None:
        return None
    sl = baseline if isinstance(baseline, slice) else slice(str(baseline[0]), str(baseline[1]))
    t = pd.DatetimeIndex(time.values)
    lo = pd.Timestamp(sl.start) if sl.start is not None else t.min()
    hi = pd.Timestamp(sl.stop) + pd.Timedelta(days=1) - pd.Timedelta(seconds=1) if sl.stop is not None else t.max()
    use = np.asarray((t >= lo) & (t <= hi))
    if not use.any():
        raise XsomoValueError(f"baseline {baseline!r} selects no days of the period {t.min().date()}..{t.max().date()}.")
    return use


def anomalies(
    sm: xr.Dataset | xr.DataArray,
    *,
    window: int = CLIM_WINDOW,
    baseline: tuple[str, str] | slice | None = None,
    standardise: bool = True,
    variable: Hashable = cv.SM,
) -> xr.Dataset:
    r"""Normalised soil-moisture anomalies (z-scores) against the moving daily climatology.

    Parameters
    ----------
    sm
        Dataset holding ``variable`` (or a DataArray) with a daily ``time`` dimension;
        may be dask-backed (``time`` is put in one chunk; the result stays lazy).
    window
        Width in days of the moving window of the climatology (31: ±15 days).
    baseline
        ``(start, end)`` or a ``slice`` of the period the climatology is computed from
        (default: the whole period).
    standardise
        Divide by the climatological standard deviation (z-score); ``False`` gives plain
        anomalies in m3 m-3.
    variable
        Variable of a Dataset.

    Returns
    -------
    xarray.Dataset
        ``sm_anomaly`` with the input's dims.

    Notes
    -----
    .. math:: z_t = \frac{x_t - \mu_{d(t)}}{\sigma_{d(t)}}

    where :math:`\mu_d, \sigma_d` are the mean and standard deviation of all values
    within ``window`` days of calendar day :math:`d` (leap-year calendar) in the baseline.

    Examples
    --------
    >>> t = xr.date_range("2001-01-01", periods=4 * 365, freq="D")
    >>> x = xr.DataArray(np.sin(np.arange(t.size) * 2 * np.pi / 365.25), coords={"time": t}, name="sm")
    >>> z = anomalies(x.to_dataset())["sm_anomaly"]
    >>> bool(abs(float(z.mean())) < 0.1)
    True
    """
    da = _as_da(sm, variable)
    lazy = da.chunks is not None
    if lazy:
        da = da.chunk({cv.TIME: -1})
    doy = _clim_doy(da[cv.TIME].values)
    use = _baseline_mask(da[cv.TIME], baseline)
    out = xr.apply_ufunc(
        _np_anomalies,
        da,
        input_core_dims=[[cv.TIME]],
        output_core_dims=[[cv.TIME]],
        kwargs={"doy": doy, "window": window, "use": use, "standardise": standardise},
        dask="parallelized",
        output_dtypes=[np.float32],
    )
    out = out.astype(np.float32).transpose(*da.dims)
    attrs = (
        {"long_name": "normalised soil-moisture anomaly (z-score)", "units": "1"}
        if standardise
        else {"long_name": "soil-moisture anomaly", "units": da.attrs.get("units", "m3 m-3")}
    )
    out.attrs = {**attrs, "climatology_window_days": window}
    return xr.Dataset({"sm_anomaly": out})


def summer_mean(
    sm: xr.Dataset | xr.DataArray,
    *,
    months: Sequence[int] = (6, 7, 8),
    by_year: bool = False,
    variable: Hashable = cv.SM,
) -> xr.DataArray:
    """Mean over the summer months (JJA by default), over all years or per year (``by_year``)."""
    da = _as_da(sm, variable)
    summer = da.sel({cv.TIME: da[cv.TIME].dt.month.isin(list(months))})
    if summer.sizes[cv.TIME] == 0:
        raise XsomoValueError(f"no days of months {list(months)} in the period of {da.name!r}.")
    out = summer.groupby(f"{cv.TIME}.year").mean(cv.TIME) if by_year else summer.mean(cv.TIME)
    return out.assign_attrs({**da.attrs, "cell_methods": "time: mean (JJA)"})


# ============================================================================ station evaluation

_FOOTPRINT_NAMES = ("footprint_depth", "footprint_depth_m", "Footprint_Depth_m", "depth")


def footprint_weights(depth: float, layers: Sequence[int] = cv.LAYER_NUMBERS) -> np.ndarray:
    """Weights of ``layers`` in what a sensor with effective sensing depth ``depth`` (m) sees.

    The rule: the sensor averages the soil uniformly from the surface down to its
    effective depth (for a cosmic-ray probe the depth above which 86 % of the detected
    neutrons originate, 0.15-0.22 m at typical wetness), so each layer weighs by its
    overlap with ``0..depth``. A depth of 0.15 m gives layer 1 two thirds and layer 2
    one third; a depth beyond 0.50 m weighs the three layers by thickness.

    Examples
    --------
    >>> footprint_weights(0.15).round(3).tolist()
    [0.667, 0.333, 0.0]
    """
    depth = float(depth)
    if not np.isfinite(depth) or depth <= 0:
        raise XsomoValueError(f"footprint depth {depth!r} m: expected a positive depth in metres.")
    depth = min(depth, max(cv.layer_by_number(n).bottom for n in layers))
    intervals = tuple((cv.layer_by_number(n).top, cv.layer_by_number(n).bottom) for n in layers)
    return cv.depth_weights(0.0, depth, intervals)


def _station_depths(ref: xr.Dataset | xr.DataArray, default: float | None) -> np.ndarray | None:
    for name in _FOOTPRINT_NAMES:
        if name in ref.coords or (isinstance(ref, xr.Dataset) and name in ref.data_vars):
            d = ref[name]
            if cv.TIME in d.dims:
                d = d.median(cv.TIME, skipna=True)
            vals = np.asarray(d.values, dtype=float)
            if d.attrs.get("units") in ("cm",):
                vals = vals / 100.0
            return np.broadcast_to(vals, (ref.sizes[cv.STATION],)).copy()
    if default is not None:
        return np.full(ref.sizes[cv.STATION], float(default))
    return None


def match_stations(
    grid: xr.Dataset | xr.DataArray, lat: np.ndarray, lon: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row/column of the grid cell holding each point, and a bool ``inside``.

    A point matches the nearest cell centre if it lies within half a cell of it
    (both directions); other points get ``inside=False`` (index 0).
    """
    glat = np.asarray(grid[cv.LAT].values, float)
    glon = np.asarray(grid[cv.LON].values, float)
    lat = np.asarray(lat, float)
    lon = np.asarray(lon, float)

    def nearest(centres: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(centres)
        c = centres[order]
        res = float(np.median(np.diff(c))) if c.size > 1 else cv.RESOLUTION
        k = np.clip(np.searchsorted(c, x), 1, max(c.size - 1, 1))
        left = c[k - 1] if c.size > 1 else c[np.zeros_like(k)]
        right = c[np.minimum(k, c.size - 1)]
        pick = np.where(np.abs(x - left) <= np.abs(x - right), k - 1, np.minimum(k, c.size - 1))
        ok = np.abs(c[pick] - x) <= res / 2 + 1e-9
        return order[pick], ok & np.isfinite(x)

    i, oki = nearest(glat, lat)
    j, okj = nearest(glon, lon)
    inside = oki & okj
    return np.where(inside, i, 0), np.where(inside, j, 0), inside


def _training_latlon(training: Any) -> np.ndarray | None:
    """``(n, 2)`` lat/lon of training cells from targets, a model, a DataFrame or an array."""
    if training is None:
        return None
    if isinstance(training, xr.Dataset | xr.DataArray):
        if cv.LAT in training.coords and cv.LON in training.coords and cv.LAT not in training.dims:
            return np.column_stack([np.asarray(training[cv.LAT].values, float), np.asarray(training[cv.LON].values, float)])
        raise XsomoValueError("training_cells: a Dataset needs per-cell lat/lon coordinates (the targets' layout).")
    for attr in ("training_cells", "cells"):
        if hasattr(training, attr) and not isinstance(training, np.ndarray | pd.DataFrame):
            return _training_latlon(getattr(training, attr))
    if isinstance(training, pd.DataFrame):
        return training[[cv.LAT, cv.LON]].to_numpy(float)
    if isinstance(training, dict) and cv.LAT in training:
        return np.column_stack([np.asarray(training[cv.LAT], float), np.asarray(training[cv.LON], float)])
    arr = np.asarray(training, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 2:
        return arr
    raise XsomoValueError(
        f"training_cells: cannot read training cells from {type(training).__name__}; pass the targets "
        "Dataset, the TrainedModel, a DataFrame with lat/lon columns or an (n, 2) lat/lon array."
    )


def _flag_training(
    grid: xr.Dataset | xr.DataArray, rows: np.ndarray, cols: np.ndarray, inside: np.ndarray, training: Any
) -> np.ndarray:
    latlon = _training_latlon(training)
    flag = np.zeros(rows.shape, bool)
    if latlon is None or latlon.size == 0:
        return flag
    ti, tj, tin = match_stations(grid, latlon[:, 0], latlon[:, 1])
    cells = set(zip(ti[tin].tolist(), tj[tin].tolist(), strict=True))
    for k, (i, j) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        flag[k] = bool(inside[k]) and (i, j) in cells
    return flag


def _normalise_time(obj: xr.DataArray) -> xr.DataArray:
    t = pd.DatetimeIndex(obj[cv.TIME].values)
    if (t != t.normalize()).any():
        obj = obj.assign_coords({cv.TIME: t.normalize()})
    return obj


def evaluate_stations(
    sm: xr.Dataset | xr.DataArray,
    stations: xr.Dataset | xr.DataArray,
    *,
    layers: Sequence[int] | None = None,
    min_days: int = MIN_DAYS,
    training_cells: Any = None,
    footprint_depth: float | None = None,
    variable: Hashable = cv.SM,
    anomaly: bool = True,
) -> xr.Dataset:
    """Metrics of a gridded prediction at point stations, per station and layer.

    See :func:`evaluate` for the rules; this is its station branch.
    """
    da = _normalise_time(_as_da(sm, variable))
    ref = _normalise_time(_as_da(stations, variable))
    if cv.STATION not in ref.dims:
        raise XsomoValueError(f"station reference needs a {cv.STATION!r} dimension (got {ref.dims}).")
    for c in (cv.LAT, cv.LON):
        if c not in ref.coords:
            raise MissingVariableError(f"station reference lacks the {c!r} coordinate per station.")
    if cv.LAYER not in da.dims:
        da = da.expand_dims({cv.LAYER: [1]})
    avail = [int(v) for v in da[cv.LAYER].values]
    layers = avail if layers is None else [int(v) for v in layers]
    missing = sorted(set(layers) - set(avail))
    if missing:
        raise XsomoValueError(f"layers {missing} not in the evaluated data (layers {avail}).")
    da = da.sel({cv.LAYER: layers})
    lat = np.asarray(ref[cv.LAT].values, float)
    lon = np.asarray(ref[cv.LON].values, float)
    rows, cols, inside = match_stations(da, lat, lon)
    pts = da.isel(
        {cv.LAT: xr.DataArray(rows, dims=cv.STATION), cv.LON: xr.DataArray(cols, dims=cv.STATION)}
    ).drop_vars([cv.LAT, cv.LON], errors="ignore")
    pts = pts.where(xr.DataArray(inside, dims=cv.STATION))
    pts = pts.assign_coords({cv.STATION: ref[cv.STATION].values})
    depths = _station_depths(stations if isinstance(stations, xr.Dataset) else ref, footprint_depth)
    per_layer = pts  # (layer, time, station)
    label_layers = list(layers)
    weights = None
    station_layer = None
    if cv.LAYER in ref.coords and ref[cv.LAYER].dims == (cv.STATION,):
        # in-situ sensors that already belong to one layer: compare each with its layer only
        station_layer = np.asarray(ref[cv.LAYER].values, int)
    elif depths is not None and set(cv.LAYER_NUMBERS) <= set(avail):
        weights = np.stack([footprint_weights(d, cv.LAYER_NUMBERS) if np.isfinite(d) else np.full(3, np.nan) for d in depths])
        w = xr.DataArray(weights, dims=(cv.STATION, cv.LAYER), coords={cv.LAYER: list(cv.LAYER_NUMBERS)})
        full = da.sel({cv.LAYER: list(cv.LAYER_NUMBERS)})
        fpts = full.isel(
            {cv.LAT: xr.DataArray(rows, dims=cv.STATION), cv.LON: xr.DataArray(cols, dims=cv.STATION)}
        ).drop_vars([cv.LAT, cv.LON], errors="ignore").assign_coords({cv.STATION: ref[cv.STATION].values})
        mix = (fpts * w).sum(cv.LAYER, skipna=False).where(xr.DataArray(inside, dims=cv.STATION))
        mix = mix.expand_dims({cv.LAYER: [FOOTPRINT_LAYER]})
        per_layer = xr.concat([mix, pts.drop_vars(["depth_top", "depth_bottom"], errors="ignore")], dim=cv.LAYER)
        label_layers = [FOOTPRINT_LAYER, *layers]
    per_layer = per_layer.drop_vars(["depth_top", "depth_bottom"], errors="ignore")
    obs = ref.drop_vars([c for c in ref.coords if c not in (cv.STATION, cv.TIME)])
    out = metrics(per_layer, obs, min_days=min_days, anomaly=anomaly)
    out = out.transpose(cv.STATION, cv.LAYER, ...)
    if station_layer is not None:
        keep = xr.DataArray(station_layer[:, None] == np.asarray(label_layers)[None, :], dims=(cv.STATION, cv.LAYER))
        out = out.where(keep)
        out["n"] = out["n"].fillna(0).astype("int32")
    flag = _flag_training(da, rows, cols, inside, training_cells)
    glat = np.asarray(da[cv.LAT].values, float)
    glon = np.asarray(da[cv.LON].values, float)
    coords: dict[str, Any] = {
        cv.LAT: (cv.STATION, lat, cv.LAT_ATTRS),
        cv.LON: (cv.STATION, lon, cv.LON_ATTRS),
        "cell_lat": (cv.STATION, np.where(inside, glat[rows], np.nan), {"long_name": "latitude of the matched cell centre", "units": "degrees_north"}),
        "cell_lon": (cv.STATION, np.where(inside, glon[cols], np.nan), {"long_name": "longitude of the matched cell centre", "units": "degrees_east"}),
        "in_grid": (cv.STATION, inside, {"long_name": "station lies within half a cell of a grid cell centre"}),
        "training_cell": (cv.STATION, flag, {"long_name": "station cell held training targets (not independent)"}),
        "layer_label": (cv.LAYER, [("footprint" if v == FOOTPRINT_LAYER else f"layer{v}") for v in label_layers]),
    }
    if depths is not None:
        coords["footprint_depth"] = (cv.STATION, depths, {"units": "m", "long_name": "effective sensing depth"})
    if weights is not None:
        coords["footprint_weights"] = (
            (cv.STATION, "weight_layer"),
            weights,
            {"long_name": "weights of layers 1-3 in the footprint mix (layer 0)", "units": "1"},
        )
    for extra in ("network", "station_name", "sensor", "depth_top", "depth_bottom"):
        if extra in ref.coords and ref[extra].dims == (cv.STATION,):
            coords[extra] = (cv.STATION, ref[extra].values, ref[extra].attrs)
    out = out.assign_coords(coords)
    if weights is not None:
        out = out.assign_coords(weight_layer=list(cv.LAYER_NUMBERS))
    out[cv.LAYER].attrs = {
        "long_name": "soil layer (0: footprint-weighted mix of layers 1-3)",
    }
    out.attrs = {
        "title": "xsomo evaluation against stations",
        "min_days": int(min_days),
        "footprint_rule": "layer 0 = depth-weighted mix: each layer weighs by its overlap with 0..footprint depth",
    }
    return out


def evaluate_grid(
    sm: xr.Dataset | xr.DataArray,
    reference: xr.Dataset | xr.DataArray,
    *,
    layers: Sequence[int] | None = None,
    min_days: int = MIN_DAYS,
    variable: Hashable = cv.SM,
    regrid_method: str = "bilinear",
    anomaly: bool = True,
) -> xr.Dataset:
    """Per-cell metrics maps of ``sm`` against a gridded reference (regridded bilinearly if needed)."""
    from xsomo.regrid import normalise_latlon

    da = normalise_latlon(_normalise_time(_as_da(sm, variable)))
    ref = normalise_latlon(_normalise_time(_layered(reference, variable)))
    same = (
        ref.sizes.get(cv.LAT) == da.sizes.get(cv.LAT)
        and ref.sizes.get(cv.LON) == da.sizes.get(cv.LON)
        and np.allclose(ref[cv.LAT].values, da[cv.LAT].values, atol=1e-6)
        and np.allclose(ref[cv.LON].values, da[cv.LON].values, atol=1e-6)
    )
    if not same:
        from xsomo import regrid as rg

        ref = rg.regrid(ref, da, method=regrid_method)  # type: ignore[arg-type]
    ref = ref.assign_coords({cv.LAT: da[cv.LAT].values, cv.LON: da[cv.LON].values}) if same else ref
    if layers is not None:
        da = da.sel({cv.LAYER: list(layers)})
    if cv.LAYER in da.dims and cv.LAYER in ref.dims:
        ref = ref.sel({cv.LAYER: da[cv.LAYER].values})
    out = metrics(da, ref, min_days=min_days, anomaly=anomaly)
    out.attrs = {"title": "xsomo evaluation against a gridded reference", "min_days": int(min_days)}
    return out


def _layered(obj: xr.Dataset | xr.DataArray, variable: Hashable = cv.SM) -> xr.DataArray:
    """A ``layer``-dimensioned DataArray from ``sm`` or from per-layer variables ``layer1..3``."""
    if isinstance(obj, xr.Dataset) and variable not in obj.data_vars:
        names = [cv.layer_var_name(n) for n in cv.LAYER_NUMBERS if cv.layer_var_name(n) in obj.data_vars]
        if names:
            nums = [int(n.removeprefix("layer")) for n in names]
            da = xr.concat([obj[n] for n in names], dim=xr.DataArray(nums, dims=cv.LAYER, name=cv.LAYER))
            return da.rename(cv.SM)
    return _as_da(obj, variable)


def evaluate(
    sm: xr.Dataset | xr.DataArray,
    reference: xr.Dataset | xr.DataArray,
    *,
    layers: Sequence[int] | None = None,
    min_days: int = MIN_DAYS,
    training_cells: Any = None,
    footprint_depth: float | None = None,
    variable: Hashable = cv.SM,
    anomaly: bool = True,
) -> xr.Dataset:
    """Skill of gridded soil moisture against stations (``station``, ``time``) or a gridded reference.

    Parameters
    ----------
    sm
        Prediction: Dataset with ``sm(layer, time, lat, lon)`` (or a DataArray).
    reference
        Either stations (dims ``station``, ``time``; ``lat``/``lon`` per station), such as
        :func:`xsomo.open_cosmos` (with a footprint depth) or :func:`xsomo.open_ismn`
        (with a ``layer`` per sensor); or a gridded product (``lat``, ``lon``, ``time``,
        with ``layer`` or variables ``layer1..3``), regridded bilinearly when its grid differs.
    layers
        Layers to evaluate (default: all of ``sm``).
    min_days
        Minimum number of common valid days per metric.
    training_cells
        What held training targets: the targets Dataset, the :class:`~xsomo.model.TrainedModel`
        (``training_cells``), a DataFrame with lat/lon or an ``(n, 2)`` array. Stations in
        those cells get ``training_cell=True``; :func:`summarize` leaves them out.
    footprint_depth
        Effective sensing depth (m) for stations without one.
    variable
        Soil-moisture variable of ``sm`` and of the reference.
    anomaly
        Also compute ``anomaly_r`` (31-day moving climatology).

    Returns
    -------
    xarray.Dataset
        Stations: metrics per ``station`` and ``layer`` with coords ``lat``, ``lon``,
        ``cell_lat``, ``cell_lon``, ``training_cell``, ``in_grid``. Grids: metrics per
        ``layer``, ``lat``, ``lon``.

    Notes
    -----
    Station to cell: each station goes to the nearest cell centre if it lies within
    half a cell of it (else ``in_grid=False`` and NaN metrics).

    Station depth to layers: a station with a ``layer`` per sensor is compared with
    that layer only. A station with an effective sensing depth :math:`D` (a cosmic-ray
    probe's footprint depth, coordinate or variable ``footprint_depth``; its median over
    time) is compared with each layer and with the depth-weighted mix, stored as
    ``layer=0``: each layer weighs by its overlap with :math:`0..D`
    (:func:`footprint_weights`); :math:`D` = 0.15-0.22 m sees layer 1 and part of layer 2.
    """
    ref_da = reference if isinstance(reference, xr.DataArray) else None
    dims = (ref_da if ref_da is not None else reference).dims
    if cv.STATION in sm.dims and cv.LAT not in sm.dims:  # a point prediction (issue 18)
        from xsomo.evaluation.points import evaluate_points

        return evaluate_points(sm, reference, layers=layers, min_days=min_days, variable=variable, anomaly=anomaly)
    if cv.STATION in dims:
        return evaluate_stations(
            sm,
            reference,
            layers=layers,
            min_days=min_days,
            training_cells=training_cells,
            footprint_depth=footprint_depth,
            variable=variable,
            anomaly=anomaly,
        )
    if cv.LAT in dims or "latitude" in dims:
        return evaluate_grid(sm, reference, layers=layers, min_days=min_days, variable=variable, anomaly=anomaly)
    raise XsomoValueError(
        f"reference has dims {tuple(dims)}: expected stations (station, time) or a grid (time, lat, lon)."
    )


def summarize(
    metrics: xr.Dataset,
    *,
    independent_only: bool = True,
    stat: str = "median",
) -> pd.DataFrame:
    """Headline numbers: the median (or ``stat``) of every metric per layer over stations.

    Stations in training cells are left out unless ``independent_only=False``; stations
    outside the grid are always left out. The ``n_stations`` column says how many count.
    """
    ds = metrics
    if cv.STATION in ds.dims:
        keep = np.ones(ds.sizes[cv.STATION], bool)
        if "in_grid" in ds.coords:
            keep &= ds["in_grid"].values.astype(bool)
        if independent_only and "training_cell" in ds.coords:
            keep &= ~ds["training_cell"].values.astype(bool)
        ds = ds.isel({cv.STATION: keep})
        dims = [cv.STATION]
    else:
        dims = [d for d in ds.dims if d != cv.LAYER]
    rows = []
    for lay in ds[cv.LAYER].values:
        sub = ds.sel({cv.LAYER: lay})
        row: dict[str, Any] = {"layer": int(lay)}
        if "layer_label" in sub.coords:
            row["layer_label"] = str(sub["layer_label"].values)
        valid = sub["pearson_r"].notnull()
        row["n_stations" if cv.STATION in dims else "n_cells"] = int(valid.sum())
        for name in METRICS:
            if name in sub:
                v = np.asarray(sub[name].values, float)
                v = v[np.isfinite(v)]
                row[name] = float(getattr(np, stat)(v)) if v.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def to_geodataframe(metrics: xr.Dataset, *, wide: bool = False) -> gpd.GeoDataFrame:
    """Station metrics as points (EPSG:4326) for GIS: one row per station and layer.

    With ``wide=True``: one row per station, columns ``<metric>_layer<N>``
    (``_footprint`` for the mix).
    """
    import geopandas as gpd

    if cv.STATION not in metrics.dims:
        raise XsomoValueError("to_geodataframe needs station metrics (dims station, layer); map metrics are rasters.")
    df = metrics.drop_vars(["footprint_weights", "weight_layer"], errors="ignore").to_dataframe().reset_index()
    if "layer_label" not in df:
        df["layer_label"] = [f"layer{v}" for v in df[cv.LAYER]]
    station_cols = [c for c in df.columns if c not in (*METRICS, "n", cv.LAYER, "layer_label")]
    if wide:
        vals = [c for c in (*METRICS, "n") if c in df]
        piv = df.pivot_table(index=cv.STATION, columns="layer_label", values=vals, aggfunc="first")
        piv.columns = [f"{m}_{lab}" for m, lab in piv.columns]
        base = df.drop_duplicates(cv.STATION).set_index(cv.STATION)[[c for c in station_cols if c != cv.STATION]]
        df = base.join(piv).reset_index()
    df[cv.STATION] = df[cv.STATION].astype(str)
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].astype(str)
        elif df[c].dtype == bool:
            df[c] = df[c].astype("int8")
    geom = gpd.points_from_xy(df[cv.LON], df[cv.LAT])
    return gpd.GeoDataFrame(df, geometry=geom, crs=cv.CRS)
