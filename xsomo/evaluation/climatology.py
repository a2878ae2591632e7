"""Climatology, anomalies and summer means on xarray objects: the one anomaly of each kind.

The numbers come from :mod:`xsomo.evaluation.anomaly_kernels` (numpy only, shared with
the QGIS plugin as one file):

- :func:`anomalies` / :func:`daily_climatology`: the **daily anomaly**, each day against
  the 31-day moving daily climatology of all years (the report's anomaly maps, the
  memory experiment and ``anomaly_r``);
- :func:`period_anomaly`: the **period anomaly**, the z-score of the mean over a period
  against the same calendar window in the other years (``xsomo export --stat anomaly``,
  the QGIS plugin's ``xsomo:anomalymap``).

A report's "JJA 2018 daily-anomaly map" is the mean over June-August 2018 of the daily
z-scores; the exported period anomaly of 2018-06-01..2018-08-31 is the z-score of the
JJA 2018 mean among the JJA means of all years. Both have the sign of the deviation, not the same scale: the
first divides by the day-to-day spread of single days, the second by the year-to-year
spread of period means, which is smaller. For soil moisture that persists over the
whole period the two are close; for days that vary independently the period z-score
is larger by up to the square root of the number of days.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation import anomaly_kernels as ak
from xsomo.evaluation.arrays import as_dataarray
from xsomo.exceptions import XsomoValueError
from xsomo.runtime import user_stacklevel

__all__ = [
    "CLIM_WINDOW",
    "anomalies",
    "coarse_period",
    "daily_climatology",
    "missing_days_message",
    "parse_period",
    "period_anomaly",
    "summer_mean",
    "window_mean",
]

CLIM_WINDOW = ak.CLIM_WINDOW
DateLike: TypeAlias = str | np.datetime64 | pd.Timestamp

def daily_climatology(
    sm: xr.Dataset | xr.DataArray,
    *,
    window: int = CLIM_WINDOW,
    baseline: tuple[str, str] | slice | None = None,
) -> xr.Dataset:
    """Moving-window daily climatology: ``mean`` and ``std`` per calendar day (``dayofyear`` 1-366).

    Each calendar day's statistics use every value within ``window`` days around it in
    all years (of the ``baseline`` period when given).

    ``dayofyear`` counts on a **leap-year calendar**: 60 is 29 February and 61 is 1 March in
    every year, so xarray's ``time.dt.dayofyear`` (60 is 1 March in a common year) is one day
    off from March on in common years; the coordinates ``month`` and ``day`` on ``dayofyear``
    name each calendar day. To look up dates, use the same count as xsomo::

        doy = anomaly_kernels.clim_doy(da.time.values) + 1
        clim["mean"].sel(dayofyear=xr.DataArray(doy, dims="time"))
    """
    da = as_dataarray(sm)
    da = da.chunk({cv.TIME: -1}) if da.chunks is not None else da
    doy = ak.clim_doy(da[cv.TIME].values)
    use = _baseline_mask(da[cv.TIME], baseline)

    def kern(x: np.ndarray) -> np.ndarray:
        mean, std, _ = ak.climatology(x, doy, window=window, use=use)
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
    calendar = pd.date_range("2000-01-01", "2000-12-31", freq="D")  # a leap year: the dayofyear count
    out = out.assign_coords(month=("dayofyear", calendar.month.to_numpy()), day=("dayofyear", calendar.day.to_numpy()))
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
    # as xarray's .sel(time=slice(...)): a partial date covers its whole year or month
    # ("2016" ends on 2016-12-31; the end had been read as 2016-01-01)
    day = pd.Series(np.arange(t.size), index=t.normalize())
    if not day.index.is_monotonic_increasing:
        day = day.sort_index()
    try:
        picked = day.loc[sl.start : sl.stop].to_numpy()
    except (KeyError, ValueError, TypeError) as err:
        raise XsomoValueError(f"baseline {baseline!r}: not a pair of dates ({err})") from None
    use = np.zeros(t.size, bool)
    use[picked] = True
    if not use.any():
        raise XsomoValueError(f"baseline {baseline!r} selects no days of the period {t.min().date()}..{t.max().date()}.")
    first, last = (_day(sl.start, "start") if sl.start is not None else None), (_day(sl.stop, "end") if sl.stop is not None else None)
    if (first is not None and first < t.min().normalize()) or (last is not None and last > t.max().normalize()):
        # (a 1991-2020 baseline on data of 2014-2020 had given the whole record's anomalies without a word)
        days = t[use]
        warnings.warn(
            f"baseline {baseline!r}: the data cover only {days.min().date()} .. {days.max().date()} of it; the "
            "climatology comes from those days.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
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
    da = as_dataarray(sm, variable)
    lazy = da.chunks is not None
    if lazy:
        da = da.chunk({cv.TIME: -1})
    doy = ak.clim_doy(da[cv.TIME].values)
    use = _baseline_mask(da[cv.TIME], baseline)
    t = pd.DatetimeIndex(da[cv.TIME].values)
    n_years = round((t if use is None else t[use]).normalize().nunique() / 365.25)  # years of days, not calendar years
    if n_years < ak.MIN_WINDOWS:
        warnings.warn(
            f"the climatology of these anomalies comes from {n_years} year{'s' if n_years != 1 else ''} of data "
            f"({'the baseline' if use is not None else 'the whole record'}): each day is compared with the same "
            f"season of so few years that the z-scores say little; at least {ak.MIN_WINDOWS} years are advised",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    out = xr.apply_ufunc(
        ak.daily_anomalies,
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
    base = t if use is None else t[use]
    out.attrs = {**attrs, "climatology_window_days": window,
                 "climatology_days": f"{base.min():%Y-%m-%d}/{base.max():%Y-%m-%d}"}  # fmt: skip
    return xr.Dataset({"sm_anomaly": out})


def summer_mean(
    sm: xr.Dataset | xr.DataArray,
    *,
    months: Sequence[int] = (6, 7, 8),
    by_year: bool = False,
    variable: Hashable = cv.SM,
) -> xr.DataArray:
    """Mean over the summer months (JJA by default), over all years or per year (``by_year``)."""
    da = as_dataarray(sm, variable)
    summer = da.sel({cv.TIME: da[cv.TIME].dt.month.isin(list(months))})
    if summer.sizes[cv.TIME] == 0:
        raise XsomoValueError(f"no days of months {list(months)} in the period of {da.name!r}.")
    out = summer.groupby(f"{cv.TIME}.year").mean(cv.TIME) if by_year else summer.mean(cv.TIME)
    return out.assign_attrs({**da.attrs, "cell_methods": "time: mean (JJA)"})


# ----------------------------------------------------------------------------- period anomaly


def _time_range(da: xr.DataArray) -> str:
    t = pd.DatetimeIndex(da[cv.TIME].values)
    return f"{t[0]:%Y-%m-%d} … {t[-1]:%Y-%m-%d}" if t.size else "(empty)"


def missing_days_message(da: xr.DataArray, start: pd.Timestamp, end: pd.Timestamp) -> str:
    """Why the data do not cover ``start..end``: outside their range, or days absent inside it."""
    where = f"period {start:%Y-%m-%d} … {end:%Y-%m-%d}"
    t = pd.DatetimeIndex(da[cv.TIME].values).normalize()
    if t.size == 0 or start < t[0] or end > t[-1]:
        return f"{where} is not inside the data ({_time_range(da)})"
    want = pd.date_range(start.normalize(), end.normalize(), freq="D")
    gone = want.difference(t)
    if "in_files" in da.coords and not gone.size:  # days on the axis that this layer's files lack
        held = da["in_files"]
        held = held.all([d for d in held.dims if d != cv.TIME]) if held.ndim > 1 else held
        gone = want.difference(t[np.asarray(held.values, bool)])
    return (
        f"{where}: the data ({_time_range(da)}) lack {gone.size} of its {want.size} days ({gone[0]:%Y-%m-%d} … "
        f"{gone[-1]:%Y-%m-%d}); is a year's file missing from the folder?"
    )


def coarse_period(value: object) -> pd.Period | None:
    """The year, quarter or month a date string names (``'2016'``, ``'2016Q3'``, ``'2016-08'``);
    ``None`` for a day (or finer) and for anything that is not such a string.

    >>> str(coarse_period("2016-08")), coarse_period("2016-08-05")
    ('2016-08', None)
    """
    if not isinstance(value, str):
        return None
    try:
        per = pd.Period(value)
    except (ValueError, TypeError):
        return None
    return per if per.freqstr[:1] in ("Y", "A", "Q", "M") else None


def _day(value: DateLike, side: str) -> pd.Timestamp:
    """A period's first or last day; a partial date (``'2016'``, ``'2016-08'``) covers its whole
    year or month, as in xarray's ``sel(time=slice(...))`` (the end ``'2016-08'`` had been read as
    2016-08-01, and ``('2016', '2016')`` as one day)."""
    if (per := coarse_period(value)) is not None:
        return (per.start_time if side == "start" else per.end_time).normalize()
    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError) as err:
        raise XsomoValueError(f"period {side} {value!r} is not a date ({err})") from None


def parse_period(period: Sequence[DateLike] | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(start, end)`` as midnight timestamps (a partial date covers its whole year or month);
    a clear error for a missing or reversed period.

    >>> [f"{d:%Y-%m-%d}" for d in parse_period(("2016-06", "2016-08"))]
    ['2016-06-01', '2016-08-31']
    >>> [f"{d:%Y-%m-%d}" for d in parse_period(("2016", "2016"))]
    ['2016-01-01', '2016-12-31']
    """
    if period is None or len(period) != 2:
        raise XsomoValueError(
            "a period statistic needs period=(start, end), e.g. ('2018-06-01', '2018-08-31')"
        )
    start, end = _day(period[0], "start"), _day(period[1], "end")
    if end < start:
        raise XsomoValueError(f"period ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d})")
    return start, end


def window_mean(da: xr.DataArray, start: pd.Timestamp, end: pd.Timestamp) -> xr.DataArray | None:
    """Mean over the days ``start..end`` (NaN days skipped, summed in float64); None unless the data hold every day.

    A day absent from the time axis (a year's file missing from a folder of files) makes
    the window incomplete: its mean would be that of part of the window (a DJF window of
    December alone), so it is not a window.
    """
    t = pd.DatetimeIndex(da[cv.TIME].values)
    if t.size == 0 or start < t[0].normalize() or end > t[-1].normalize():
        return None
    sub = da.sel({cv.TIME: slice(start, end + pd.Timedelta(hours=23, minutes=59, seconds=59))})
    days = pd.DatetimeIndex(sub[cv.TIME].values).normalize().unique()
    if days.size < (end.normalize() - start.normalize()).days + 1:
        return None
    if "in_files" in sub.coords and not bool(sub["in_files"].all()):  # a layer's file of those days missing
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        return sub.mean(cv.TIME, skipna=True, dtype=np.float64).drop_vars(cv.TIME, errors="ignore")


def period_anomaly(
    da: xr.DataArray,
    period: Sequence[DateLike],
    *,
    climatology: tuple[int, int] | None = None,
) -> xr.DataArray:
    r"""Normalised anomaly of the mean over ``period`` against the same window in other years.

    Parameters
    ----------
    da
        Daily data with a ``time`` dimension.
    period
        ``(start, end)``, both days included.
    climatology
        ``(first_year, last_year)``: only windows starting in these years form the
        reference (default: every window that the data cover completely).

    Returns
    -------
    xarray.DataArray
        The z-score (dimensionless), with the attribute ``n_years`` (windows in the reference).

    Raises
    ------
    XsomoValueError
        The period is not covered by the data, or fewer than three windows are.

    Notes
    -----
    .. math:: z = \frac{m_0 - \bar m}{s}, \qquad m_k = \operatorname{mean}_{t \in P + k\,\mathrm{years}} \theta(t)

    :math:`m_0` is the mean over ``P`` itself, :math:`\bar m` and :math:`s` (ddof = 1)
    the mean and standard deviation of :math:`m_k` over every year shift ``k`` whose window
    lies completely inside the data (``P`` itself included). At least three windows are
    needed, per cell too; a cell whose window means do not vary gets NaN. An end on
    29 February moves to 28 February in common years
    (:func:`xsomo.evaluation.anomaly_kernels.year_windows`, the rule the QGIS plugin uses).
    """
    start, end = parse_period(period)
    t = pd.DatetimeIndex(da[cv.TIME].values)
    m0 = window_mean(da, start, end)
    if m0 is None:
        raise XsomoValueError(missing_days_message(da, start, end))
    try:
        windows = ak.year_windows(start.date(), end.date(), t[0].date(), t[-1].date(), climatology=climatology)
    except ValueError as err:  # a period longer than a year
        raise XsomoValueError(f"{err}. For the mean over it use stat='mean'.") from None
    found = [(k, window_mean(da, pd.Timestamp(s), pd.Timestamp(e))) for k, s, e in windows]
    means = [m for _, m in found if m is not None]
    if len(means) < ak.MIN_WINDOWS:
        raise XsomoValueError(
            f"an anomaly needs the window {start:%m-%d} … {end:%m-%d} in at least {ak.MIN_WINDOWS} years "
            f"of the data ({_time_range(da)}, climatology={climatology}); found {len(means)}"
        )
    # the period's own window is one of them unless the climatology leaves it out: read it once
    own = [n for n, (k, m) in enumerate((k, m) for k, m in found if m is not None) if k == 0]
    stack = xr.concat(means if own else [*means, m0], dim="window")
    if stack.chunks is not None:
        stack = stack.compute()  # one pass over the files for every window
    m0 = stack.isel(window=own[0] if own else -1)
    if not own:
        stack = stack.isel(window=slice(0, -1))
    z = _period_z(m0, stack)
    years = [windows[n][1].year for n, (_, m) in enumerate(found) if m is not None]
    z.attrs = {
        "long_name": "normalised soil-moisture anomaly of the period mean",
        "units": "1",
        "n_years": len(means),
        "reference_years": f"{min(years)}-{max(years)}",
    }
    if climatology is not None and (min(years) > climatology[0] or max(years) < climatology[1]):
        # (a 1991-2020 climatology on files of 2014-2020 had been tagged 1991-2020 without a word)
        warnings.warn(
            f"climatology {climatology[0]}-{climatology[1]}: the data ({_time_range(da)}) hold the window "
            f"{start:%m-%d} .. {end:%m-%d} in {len(means)} of its years only ({min(years)}-{max(years)}); the "
            "anomaly is against those.",
            RuntimeWarning,
            stacklevel=2,
        )
    return z


def _period_z(m0: xr.DataArray, stack: xr.DataArray) -> xr.DataArray:
    """:func:`~xsomo.evaluation.anomaly_kernels.period_zscore` on xarray objects (computes)."""
    stack = stack.transpose("window", *m0.dims)
    z = ak.period_zscore(np.asarray(m0.values), np.asarray(stack.values))
    return m0.copy(data=z)
