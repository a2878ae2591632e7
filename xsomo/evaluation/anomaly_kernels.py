"""The one definition of xsomo's anomalies, in numpy and the standard library alone.

xsomo has two anomalies, each defined here once:

- the **daily anomaly** (:func:`daily_anomalies`): each day minus the moving-window
  daily climatology of its calendar day (31 days, all years), optionally divided by the
  climatological standard deviation (a z-score). Used by ``anomaly_r``,
  :func:`xsomo.evaluation.anomalies`, the memory experiment and the report's maps.
- the **period anomaly** (:func:`period_zscore` over :func:`year_windows`): the z-score
  of the mean over a period ``P = [start, end]`` against the means over the same calendar
  window in every year the data cover completely,
  ``z = (m_0 - mean_k m_k) / std_k(m_k, ddof=1)``. Used by the COG export
  (``xsomo export --stat anomaly``, :func:`xsomo.gis.period_anomaly`) and the QGIS
  plugin's ``xsomo:anomalymap``.

The QGIS plugin runs under QGIS's own python, without xsomo, so this module imports
nothing of xsomo (and no pandas/xarray): ``plugins/qgis/xsomo_qgis/anomaly_kernels.py``
is a git symlink to this file, and ``plugins/qgis/build_zip.py`` copies its content into
the plugin zip. Edit it here only.

Calendar rules
--------------
Days of year are counted on a leap-year calendar (29 February = day 59, 1 March = 60 in
every year), so that a calendar day aligns across years. A year-shifted window moves
both ends by whole years; an end on 29 February moves to 28 February in a year without
one (``2016-02-29`` + 1 year = ``2017-02-28``), as :class:`pandas.DateOffset` does.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

__all__ = [
    "CLIM_WINDOW",
    "FLAT_VARIANCE",
    "MIN_WINDOWS",
    "circular_window_sum",
    "clim_doy",
    "climatology",
    "daily_anomalies",
    "doy_sums",
    "is_flat",
    "period_zscore",
    "shift_years",
    "year_windows",
]

#: Width of the moving window of the daily climatology (days).
CLIM_WINDOW = 31
#: Fewest year-shifted windows a period anomaly needs.
MIN_WINDOWS = 3

# days before each month in a leap year
_BEFORE = np.array([0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])


# ----------------------------------------------------------------------------- daily anomaly


def clim_doy(time: np.ndarray) -> np.ndarray:
    """Day of year 0..365 on a leap-year calendar (29 Feb = 59) of datetime64 values.

    Examples
    --------
    >>> clim_doy(np.array(["2015-03-01", "2016-02-29", "2016-03-01"], dtype="datetime64[D]")).tolist()
    [60, 59, 60]
    """
    t = np.asarray(time).astype("datetime64[D]")
    months = t.astype("datetime64[M]")
    month = months.astype(np.int64) % 12
    day = (t - months.astype("datetime64[D]")).astype(np.int64)
    return _BEFORE[month] + day


def doy_sums(x2d: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Sums of ``x2d (N, time)`` per calendar day: ``(N, 366)`` (O(N·time), no dense one-hot).

    A boolean ``x2d`` gives counts (added slice by slice as 0/1, without a float64 copy).

    A daily series is a few runs of consecutive calendar days (a year, or its parts around
    the 29 February slot): each run is added as one slice, without gathering the array
    (a sort-and-reduce over the days took 5x longer on the demo world's 3 x 3600 cells).
    """
    doy = np.asarray(doy)
    out = np.zeros((x2d.shape[0], 366))
    if not x2d.shape[1]:
        return out
    breaks = np.flatnonzero(np.diff(doy) != 1) + 1
    if breaks.size > x2d.shape[1] // 8:  # not runs of days (unsorted, sparse): sort and reduce
        x2d = np.asarray(x2d, np.float64)  # counts of a boolean mask
        order = np.argsort(doy, kind="stable")
        d = doy[order]
        starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
        out[:, d[starts]] = np.add.reduceat(x2d[:, order], starts, axis=1)
        return out
    for a, b in zip(np.r_[0, breaks], np.r_[breaks, doy.size], strict=True):
        out[:, doy[a] : doy[a] + (b - a)] += x2d[:, a:b]
    return out


#: A variance below this fraction of the mean square is round-off of a constant series: zero.
#: A constant 0.3 over 365 days left variances of ~1e-33 (the mean ``sum / n`` is not exactly
#: 0.3), and such a series scored r = NSE = KGE = 1 against itself and NSE = -8e29 against
#: a varying one (std / RMS below 1e-5 is far below any sensor's resolution).
FLAT_VARIANCE = 1e-10


def is_flat(var: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Whether a (population) variance is round-off of a constant series: at most
    :data:`FLAT_VARIANCE` of the mean square ``var + mean**2`` (numpy arrays, or xarray ones alike)."""
    return var <= FLAT_VARIANCE * (var + mean * mean)


def circular_window_sum(a: np.ndarray, window: int) -> np.ndarray:
    """Sum over the ``window`` days centred on each calendar day, wrapping around the year (last axis 366)."""
    half = window // 2
    padded = np.concatenate([a[:, -half:], a, a[:, :half]], axis=1) if half else a
    c = np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(padded, axis=1)], axis=1)
    return c[:, 2 * half + 1 :] - c[:, : -(2 * half + 1)]


def climatology(
    x: np.ndarray, doy: np.ndarray, *, window: int = CLIM_WINDOW, use: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moving-window daily climatology of ``x (..., time)``: mean, std (ddof 1), count per day of year ``(..., 366)``.

    ``use`` (time,) bool selects the days that enter the climatology (a baseline period).
    """
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    valid = np.isfinite(x2)
    if use is not None:
        valid &= np.asarray(use, bool)[None, :]
    x0 = np.where(valid, x2, 0.0)
    cnt = circular_window_sum(doy_sums(valid, doy), window)
    s1 = circular_window_sum(doy_sums(x0, doy), window)
    s2 = circular_window_sum(doy_sums(np.multiply(x0, x0, out=x0), doy), window)  # x0 * x0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        var = np.maximum(s2 / cnt - mean * mean, 0.0) * cnt / (cnt - 1)
        var[is_flat(var, mean)] = 0.0  # a constant window: no spread (z-scores NaN)
    shape = (*lead, 366)
    return mean.reshape(shape), np.sqrt(var).reshape(shape), cnt.reshape(shape)


def daily_anomalies(
    x: np.ndarray,
    doy: np.ndarray,
    *,
    window: int = CLIM_WINDOW,
    use: np.ndarray | None = None,
    standardise: bool = True,
    min_count: int = 10,
) -> np.ndarray:
    """Anomalies of ``x (..., time)`` from its moving daily climatology; z-scores if ``standardise``.

    A calendar day whose window holds fewer than ``min_count`` values gives NaN.
    """
    mean, std, cnt = climatology(x, doy, window=window, use=use)
    mean = np.where(cnt >= min_count, mean, np.nan)
    # anom = x - mean[..., doy], then where(s > 0, anom / s, nan): in place of the gathered arrays
    gathered = mean[..., doy]
    anom = np.subtract(np.asarray(x, np.float64), gathered, out=gathered)
    if standardise:
        with np.errstate(invalid="ignore", divide="ignore"):
            s = std[..., doy]
            ok = s > 0
            np.divide(anom, s, out=anom, where=ok)
            np.copyto(anom, np.nan, where=~ok)
    return anom


# ----------------------------------------------------------------------------- period anomaly


def shift_years(day: dt.date, k: int) -> dt.date:
    """``day`` moved by ``k`` years; 29 February goes to 28 February in a year without one.

    Examples
    --------
    >>> shift_years(dt.date(2016, 2, 29), 1), shift_years(dt.date(2015, 12, 1), 1)
    (datetime.date(2017, 2, 28), datetime.date(2016, 12, 1))
    """
    try:
        return day.replace(year=day.year + k)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + k, day=28)


def year_windows(
    start: dt.date,
    end: dt.date,
    first: dt.date,
    last: dt.date,
    *,
    climatology: tuple[int, int] | None = None,
) -> list[tuple[int, dt.date, dt.date]]:
    """The year-shifted windows ``(k, start + k years, end + k years)`` inside ``first..last``.

    ``k = 0`` (the period itself) is among them when it lies inside. ``climatology =
    (first_year, last_year)`` keeps only windows that start in those years. A period longer
    than a year raises ``ValueError`` (its windows would overlap it).

    Examples
    --------
    >>> [(k, str(s), str(e)) for k, s, e in year_windows(
    ...     dt.date(2015, 12, 1), dt.date(2016, 2, 29), dt.date(2014, 1, 1), dt.date(2017, 12, 31))]
    [(-1, '2014-12-01', '2015-02-28'), (0, '2015-12-01', '2016-02-29'), (1, '2016-12-01', '2017-02-28')]
    """
    if shift_years(start, 1) <= end:
        # its year-shifted windows would overlap it and each other (a 2-year period against
        # windows shifted by one year had given a z-score without a word)
        raise ValueError(
            f"period {start} .. {end} is longer than a year: the same window in other years would overlap it; "
            "an anomaly needs a period of at most a year"
        )
    out = []
    for k in range(first.year - start.year - 1, last.year - start.year + 2):
        s, e = shift_years(start, k), shift_years(end, k)
        if climatology is not None and not (climatology[0] <= s.year <= climatology[1]):
            continue
        if s >= first and e <= last:
            out.append((k, s, e))
    return out


def period_zscore(m0: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``(m0 - mean_k m_k) / std_k(m_k, ddof=1)`` over the window means ``means (k, ...)``.

    NaN where fewer than :data:`MIN_WINDOWS` window means are finite or where they do not
    vary (``std = 0``).

    Examples
    --------
    >>> period_zscore(np.array([3.0]), np.array([[1.0], [2.0], [3.0]])).tolist()
    [1.0]
    """
    stack = np.asarray(means, dtype=np.float64)
    ok = np.isfinite(stack)
    n = ok.sum(axis=0)
    x0 = np.where(ok, stack, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = x0.sum(axis=0) / n
        d = np.where(ok, stack - mu, 0.0)
        sd = np.sqrt((d * d).sum(axis=0) / (n - 1))
        z = (np.asarray(m0, np.float64) - mu) / sd
    return np.where((n >= MIN_WINDOWS) & (sd > 0) & np.isfinite(z), z, np.nan)
