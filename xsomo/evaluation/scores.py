"""Skill metrics: numpy kernels and their xarray wrappers.

Layering (STYLE.md §1, as in xskillscore): ``np_*`` functions are numpy kernels over
the last axis (time), vectorised over every leading axis (cells, stations, layers);
the public metric functions wrap them once with ``xr.apply_ufunc(...,
dask="parallelized")`` and stay lazy on dask input. Pearson r, RMSE and the bias are
delegated to xskillscore (the field's library) after the pairwise-complete masking and
the minimum-days rule; the fused kernel :func:`np_metrics` used by :func:`metrics`
is checked against them in the tests.

Every metric is *pairwise complete*: only days on which both series are finite count,
and a series pair with fewer than ``min_days`` common days gives NaN.

Conventions: ``sim`` is the evaluated data (the prediction, a product), ``obs`` the
reference (stations, another product). ``bias = mean(sim - obs)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation import anomaly_kernels as ak
from xsomo.exceptions import GridMismatchError, XsomoValueError

__all__ = [
    "CLIM_WINDOW",
    "METRICS",
    "METRIC_ATTRS",
    "METRIC_COLUMNS",
    "MIN_DAYS",
    "anomaly_r",
    "bias",
    "kge",
    "metrics",
    "np_anomaly_r",
    "np_metrics",
    "np_pearson_r",
    "nse",
    "pearson_r",
    "rmse",
    "urmsd",
]

#: Default minimum number of common valid days for a metric (else NaN).
MIN_DAYS = 30
#: Width of the moving window of the daily climatology (days).
CLIM_WINDOW = ak.CLIM_WINDOW
#: Metrics computed by :func:`metrics` / :func:`xsomo.evaluation.evaluate`, in this order.
METRICS: tuple[str, ...] = ("pearson_r", "urmsd", "bias", "rmse", "nse", "kge", "anomaly_r")
#: What the last axis of :func:`np_metrics` holds, in this order.
METRIC_COLUMNS: tuple[str, ...] = ("n", "pearson_r", "urmsd", "bias", "rmse", "nse", "kge")

#: Attributes (long name, units) of every metric variable.
METRIC_ATTRS: dict[str, dict[str, str]] = {
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
    sim_in, obs_in = sim, obs
    sim = np.asarray(sim, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    mask = np.isfinite(sim) & np.isfinite(obs)
    n = mask.sum(axis=-1)
    missing = ~mask
    return _zeroed(sim, sim_in, mask, missing), _zeroed(obs, obs_in, mask, missing), mask, n


def _zeroed(converted: np.ndarray, given: Any, mask: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``where(mask, converted, 0.0)``: in place when ``converted`` is a fresh full-shape array."""
    if converted.shape != mask.shape:  # broadcast against the other input
        return np.where(mask, converted, 0.0)
    if isinstance(given, np.ndarray) and np.may_share_memory(converted, given):
        converted = converted.copy()  # never change the caller's array
    np.copyto(converted, 0.0, where=missing)
    return converted


def _moments(sim: np.ndarray, obs: np.ndarray, *, errors: bool = True) -> dict[str, np.ndarray]:
    """Pairwise-complete means, (population) variances and covariance over the last axis.

    With ``errors``, also the mean squared difference ``mse`` and the variance of the
    differences ``vd``. The full-size temporaries are reused in place (the arithmetic,
    and so every number, is that of the plain expressions in the comments).
    """
    s, o, mask, n = _common(sim, obs)
    missing = ~mask
    out: dict[str, np.ndarray] = {"n": n}
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(n > 0, n, np.nan)
        ms = s.sum(-1) / nn
        mo = o.sum(-1) / nn
        buf = np.empty_like(s)
        if errors:  # mse = ((s - o) ** 2).sum(-1) / nn
            np.subtract(s, o, out=buf)
            np.multiply(buf, buf, out=buf)
            out["mse"] = buf.sum(-1) / nn
        # ds = where(mask, s - ms, 0), do = where(mask, o - mo, 0), in place of s and o
        ds = np.subtract(s, ms[..., None], out=s)
        np.copyto(ds, 0.0, where=missing)
        do = np.subtract(o, mo[..., None], out=o)
        np.copyto(do, 0.0, where=missing)
        vs = np.multiply(ds, ds, out=buf).sum(-1) / nn
        vo = np.multiply(do, do, out=buf).sum(-1) / nn
        # round-off of a constant series is no variance (r, NSE, KGE then NaN)
        vs = np.where(ak.is_flat(vs, ms), 0.0, vs)
        vo = np.where(ak.is_flat(vo, mo), 0.0, vo)
        cov = np.multiply(ds, do, out=buf).sum(-1) / nn
        if errors:  # vd = ((ds - do) ** 2).sum(-1) / nn
            np.subtract(ds, do, out=buf)
            out["vd"] = np.multiply(buf, buf, out=buf).sum(-1) / nn
    out.update(ms=ms, mo=mo, vs=vs, vo=vo, cov=cov)
    return out


def _apply_min(values: np.ndarray, n: np.ndarray, min_days: int) -> np.ndarray:
    return np.where(n >= max(int(min_days), 2), values, np.nan)


def np_metrics(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    """All metrics but ``anomaly_r`` at once over the last axis: ``(..., 7)`` in :data:`METRIC_COLUMNS` order.

    The one kernel behind :func:`metrics`, the experiments and the single-metric
    functions: n, r, urmsd, bias, rmse, nse, kge, pairwise complete, NaN below ``min_days``.

    Examples
    --------
    >>> t = np.arange(40.0)
    >>> np_metrics(t, t + 1.0)[[0, 1, 3]].tolist()
    [40.0, 1.0, -1.0]
    """
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


def _np_urmsd(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    return np_metrics(sim, obs, min_days=min_days)[..., 2]


def _np_nse(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    return np_metrics(sim, obs, min_days=min_days)[..., 5]


def _np_kge(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    return np_metrics(sim, obs, min_days=min_days)[..., 6]


def np_anomaly_r(
    sim: np.ndarray, obs: np.ndarray, doy: np.ndarray, *, window: int = CLIM_WINDOW, min_days: int = MIN_DAYS
) -> np.ndarray:
    """Correlation of the daily anomalies of ``sim`` and ``obs`` on their common days.

    Each series keeps only the common valid days, loses its moving daily climatology
    (:func:`xsomo.evaluation.anomaly_kernels.daily_anomalies`, not standardised) and the
    anomalies are correlated.
    """
    m = _moments(sim, obs, errors=False)
    flat = (m["vs"] == 0.0) | (m["vo"] == 0.0)  # a constant series has no anomalies to correlate
    del m
    s, o, mask, _ = _common(sim, obs)
    missing = ~mask
    np.copyto(s, np.nan, where=missing)  # s = where(mask, s, nan), in place
    np.copyto(o, np.nan, where=missing)
    del mask, missing
    a_s = ak.daily_anomalies(s, doy, window=window, standardise=False, min_count=2)
    del s
    a_o = ak.daily_anomalies(o, doy, window=window, standardise=False, min_count=2)
    del o
    return np.where(flat, np.nan, np_pearson_r(a_s, a_o, min_days=min_days))


def np_pearson_r(sim: np.ndarray, obs: np.ndarray, *, min_days: int = MIN_DAYS) -> np.ndarray:
    """Pairwise-complete Pearson r over the last axis: :func:`np_metrics`'s ``r`` without the other metrics.

    Examples
    --------
    >>> t = np.arange(40.0)
    >>> float(np_pearson_r(t, 2.0 * t + 1.0))
    1.0
    """
    m = _moments(sim, obs, errors=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = m["cov"] / (np.sqrt(m["vs"]) * np.sqrt(m["vo"]))
    r = np.where(np.isfinite(r), r, np.nan)
    return _apply_min(r, m["n"], min_days)




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
    return out.rename(name).assign_attrs(METRIC_ATTRS[name])


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
    for x in (s, o):  # a constant series (round-off variance) has no correlation
        ok = ok & ~ak.is_flat(x.var(dim, skipna=True), x.mean(dim, skipna=True))
    return xs.pearson_r(s, o, dim=dim, skipna=True).where(ok).rename("pearson_r").assign_attrs(
        METRIC_ATTRS["pearson_r"]
    )


def rmse(sim: xr.DataArray, obs: xr.DataArray, *, dim: str = cv.TIME, min_days: int = MIN_DAYS) -> xr.DataArray:
    """Root-mean-square difference on the common valid days (xskillscore ``rmse``)."""
    import xskillscore as xs

    s, o, ok = _masked_pair(sim, obs, dim, min_days)
    return xs.rmse(s, o, dim=dim, skipna=True).where(ok).rename("rmse").assign_attrs(METRIC_ATTRS["rmse"])


def bias(sim: xr.DataArray, obs: xr.DataArray, *, dim: str = cv.TIME, min_days: int = MIN_DAYS) -> xr.DataArray:
    """Mean difference ``mean(sim - obs)`` on the common valid days (xskillscore ``me``)."""
    import xskillscore as xs

    s, o, ok = _masked_pair(sim, obs, dim, min_days)
    return xs.me(s, o, dim=dim, skipna=True).where(ok).rename("bias").assign_attrs(METRIC_ATTRS["bias"])


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
    doy = ak.clim_doy(sim[dim].values)
    return _wrap(_np_anomaly_r_t, sim, obs, dim, "anomaly_r", doy=doy, window=window, min_days=min_days)


def _np_anomaly_r_t(sim: np.ndarray, obs: np.ndarray, *, doy: np.ndarray, window: int, min_days: int) -> np.ndarray:
    return np_anomaly_r(sim, obs, doy, window=window, min_days=min_days)


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
        np_metrics,
        sim,
        obs,
        input_core_dims=[[dim], [dim]],
        output_core_dims=[["metric"]],
        kwargs={"min_days": min_days},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"metric": 7}},
    )
    ds = xr.Dataset({name: out.isel(metric=i, drop=True) for i, name in enumerate(METRIC_COLUMNS)})
    ds["n"] = ds["n"].fillna(0).astype("int32")
    if anomaly:
        ds["anomaly_r"] = anomaly_r(sim, obs, dim=dim, min_days=min_days, window=window)
    for name in ds.data_vars:
        ds[name].attrs = dict(METRIC_ATTRS[str(name)])
    return ds
