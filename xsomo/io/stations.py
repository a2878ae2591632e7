"""Station records as the readers deliver them: sensor identifiers, the QC report's
columns, and the daily mean of an hourly series with a completeness rule.

The quality-control rules of the method (flags, negatives, layers, minimum days) are
step 1 and live in :mod:`xsomo.targets.stations`; the ISMN reader applies them through
the per-sensor function it is given (:func:`xsomo.io.ismn.read_ismn`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xsomo.exceptions import XsomoValueError

__all__ = ["REPORT_COLUMNS", "daily_mean", "refuse_duplicate_ids", "station_id"]

#: Columns of the QC report returned by the readers.
REPORT_COLUMNS = (
    "station_id",
    "network",
    "station",
    "sensor",
    "variable",
    "depth_top",
    "depth_bottom",
    "layer",
    "lat",
    "lon",
    "file",
    "n_records",
    "n_flag_good",
    "n_negative",
    "n_days",
    "kept",
    "reason",
)


def station_id(network: str, station: str, sensor: str, top: float, bottom: float) -> str:
    """Identifier of one sensor: ``NETWORK.STATION.SENSOR.TOP-BOTTOM`` (depths in m, no commas)."""
    raw = f"{network}.{station}.{sensor}.{top:.4f}-{bottom:.4f}"
    return raw.replace(",", ";").replace(" ", "_")


def daily_mean(values: pd.Series, *, min_hourly: int = 6) -> tuple[pd.Series, pd.Series]:
    """Daily (UTC) mean of hourly means, from days with at least ``min_hourly`` valid hours.

    Sub-hourly records are first averaged to hours. Returns ``(daily mean, hours per day)``,
    with NaN on days with too few valid hours. Vectorised with numpy (``bincount``).

    Examples
    --------
    >>> idx = pd.date_range("2020-01-01", periods=48, freq="h")
    >>> s = pd.Series(np.r_[np.ones(24), np.full(24, np.nan)], index=idx)
    >>> s.iloc[24:29] = 3.0  # only 5 valid hours on day 2
    >>> m, n = daily_mean(s, min_hourly=6)
    >>> m.tolist(), n.tolist()
    ([1.0, nan], [24, 5])
    """
    s = values.dropna()
    if s.empty:
        empty = pd.Series([], index=pd.DatetimeIndex([]), dtype="float64")
        return empty, empty.astype("int64")
    ns = pd.DatetimeIndex(s.index).as_unit("ns").asi8
    vals = s.to_numpy(dtype="float64")
    hour = ns // 3_600_000_000_000
    if hour.size > 1 and not np.all(
        np.diff(hour) > 0
    ):  # sub-hourly or unsorted: hourly means first
        order = np.argsort(hour, kind="stable")
        hour, vals = hour[order], vals[order]
        uh, start = np.unique(hour, return_index=True)
        sums = np.add.reduceat(vals, start)
        counts = np.diff(np.r_[start, hour.size])
        hour, vals = uh, sums / counts
    day = hour // 24
    d0 = day[0]
    k = day - d0
    n = np.bincount(k)
    tot = np.bincount(k, weights=vals)
    present = np.flatnonzero(n)
    idx = pd.DatetimeIndex((d0 + present) * 86_400_000_000_000).as_unit("ns")
    mean = np.where(n[present] >= min_hourly, tot[present] / np.maximum(n[present], 1), np.nan)
    return pd.Series(mean, index=idx), pd.Series(n[present].astype("int64"), index=idx)


def refuse_duplicate_ids(ids: Any, message: str) -> None:
    """Raise :class:`XsomoValueError` with ``message`` (``{n}``: how many ids, ``{ids}``: the first
    five, quoted) when an id appears more than once (a sensor given twice was trained, validated or
    scored twice).

    >>> refuse_duplicate_ids(["a", "b", "a"], "{n} id(s) twice ({ids})")
    Traceback (most recent call last):
    ...
    xsomo.exceptions.XsomoValueError: 1 id(s) twice ('a')
    """
    index = pd.Index(np.asarray(ids))
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()
        listed = ", ".join(map(repr, dup[:5].tolist())) + (", ..." if dup.size > 5 else "")
        raise XsomoValueError(message.format(n=dup.size, ids=listed))
