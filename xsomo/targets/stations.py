"""Quality control of in-situ soil moisture (DESIGN.md step 1, SoMo.ml rules).

Pure pandas/numpy functions on one sensor's hourly series, and the assembly of the
station Dataset of docs/internals.md §2. The readers in :mod:`xsomo.io` call these.

Rules (SoMo.ml): keep only values flagged ``G``; drop negative values; a daily mean
needs at least ``min_hourly`` good hourly values; the sensor's whole depth interval
must lie in one layer (:func:`xsomo.conventions.assign_layer`); at least ``min_days``
valid days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv

__all__ = ["SensorQC", "build_stations", "daily_mean", "qc_sensor", "station_id"]

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


@dataclass
class SensorQC:
    """Result of :func:`qc_sensor`: the daily series and the counts for the report."""

    daily: pd.Series
    n_records: int
    n_flag_good: int
    n_negative: int
    n_days: int
    layer: int | None
    reason: str = ""
    info: dict = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        return not self.reason


def qc_sensor(
    values: pd.Series,
    flags: pd.Series | None,
    *,
    depth_top: float,
    depth_bottom: float,
    good_flags: Sequence[str] = ("G",),
    min_hourly: int = 6,
    min_days: int = 90,
) -> SensorQC:
    """Apply the SoMo.ml QC to one sensor's sub-daily series.

    Parameters
    ----------
    values
        Soil moisture (m3 m-3) indexed by UTC timestamps.
    flags
        ISMN quality flags aligned with ``values`` (``None``: all good).
    depth_top, depth_bottom
        Sensor depth interval in metres.

    Returns
    -------
    SensorQC
        ``reason`` is empty when the sensor is kept, otherwise why it was dropped.
    """
    values = pd.to_numeric(values, errors="coerce").astype("float64")
    n_records = int(values.notna().sum())
    if flags is None:
        good = pd.Series(True, index=values.index)
    else:
        codes, uniques = pd.factorize(flags, use_na_sentinel=True)  # a handful of distinct flags
        ok = np.array([str(u).strip() in good_flags for u in uniques] + [False], dtype=bool)
        good = pd.Series(ok[codes], index=values.index)
    n_good = int((good & values.notna()).sum())
    negative = values < 0
    n_neg = int((good & negative).sum())
    kept = values.where(good & ~negative)
    layer = cv.assign_layer(depth_top, depth_bottom)
    daily, _ = daily_mean(kept, min_hourly=min_hourly)
    daily = daily.dropna()
    n_days = int(daily.size)
    reason = ""
    if layer is None:
        reason = f"depth {depth_top:g}-{depth_bottom:g} m lies in no single layer (0-0.1, 0.1-0.3, 0.3-0.5 m)"
    elif n_records == 0:
        reason = "no values"
    elif n_good == 0:
        reason = f"no value flagged {'/'.join(good_flags)}"
    elif n_days < min_days:
        reason = f"{n_days} valid days < min_days={min_days} (days need >= {min_hourly} good hourly values)"
    return SensorQC(daily, n_records, n_good, n_neg, n_days, layer, reason)


def build_stations(records: Sequence[dict], *, attrs: dict | None = None) -> xr.Dataset:
    """Stack kept sensors into the station Dataset of docs/internals.md §2.

    Parameters
    ----------
    records
        One dict per sensor with keys ``station_id``, ``daily`` (pd.Series of daily
        means), ``lat``, ``lon``, ``network``, ``station``, ``sensor``, ``depth_top``,
        ``depth_bottom``, ``layer``.
    """
    if not records:
        raise ValueError("no sensor records")
    start = min(r["daily"].index.min() for r in records)
    end = max(r["daily"].index.max() for r in records)
    days = pd.date_range(start, end, freq="D")
    data = np.full((len(records), days.size), np.nan, dtype="float32")
    for k, r in enumerate(records):  # one vectorised assignment per sensor
        data[k, days.get_indexer(r["daily"].index)] = r["daily"].to_numpy(dtype="float32")

    def coord(key: str, dtype: str | type, attrs: dict | None = None) -> tuple:
        return (cv.STATION, np.array([r[key] for r in records], dtype=dtype), attrs or {})

    ds = xr.Dataset(
        {cv.SM: ((cv.STATION, cv.TIME), data, dict(cv.SM_ATTRS))},
        coords={
            cv.STATION: (cv.STATION, np.array([r["station_id"] for r in records], dtype=str)),
            cv.TIME: (cv.TIME, days.values, cv.TIME_ATTRS),
            "lat": coord("lat", "float64", cv.LAT_ATTRS),
            "lon": coord("lon", "float64", cv.LON_ATTRS),
            "network": coord("network", str),
            "station_name": coord("station", str),
            "sensor": coord("sensor", str),
            "depth_top": coord(
                "depth_top",
                "float64",
                {"units": "m", "positive": "down", "long_name": "sensor depth top"},
            ),
            "depth_bottom": coord(
                "depth_bottom",
                "float64",
                {"units": "m", "positive": "down", "long_name": "sensor depth bottom"},
            ),
            "layer": coord("layer", "int64", {"long_name": "target layer of the sensor (1-3)"}),
        },
        attrs=attrs or {},
    )
    return ds
