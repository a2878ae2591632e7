"""Quality control of in-situ soil moisture (DESIGN.md step 1, SoMo.ml rules).

Pure pandas/numpy functions on one sensor's hourly series, and the assembly of the
station Dataset of docs/internals.md §2. :func:`open_ismn` reads an ISMN download with
:func:`xsomo.io.ismn.read_ismn`, which applies :func:`qc_sensor` to each sensor as it reads it.

Rules (SoMo.ml): keep only values flagged ``G``; drop negative values; a daily mean
needs at least ``min_hourly`` good hourly values; the sensor's whole depth interval
must lie in one layer (:func:`xsomo.conventions.assign_layer`); at least ``min_days``
valid days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.io.stations import REPORT_COLUMNS, daily_mean, station_id

__all__ = [
    "REPORT_COLUMNS",
    "SensorQC",
    "build_stations",
    "daily_mean",
    "open_ismn",
    "qc_sensor",
    "station_id",
]

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


def open_ismn(path: Any, **kwargs: Any) -> xr.Dataset | tuple[xr.Dataset, pd.DataFrame]:
    """Read an ISMN download (folder, zip, or a list of them) into a QC'd station Dataset.

    :func:`xsomo.io.ismn.read_ismn` reads the files; each sensor's hourly record passes
    :func:`qc_sensor` (the SoMo.ml rules above) and the kept sensors are assembled by
    :func:`build_stations`. Keywords (``min_hourly``, ``min_days``, ``good_flags``,
    ``errors``, ``report``, ``meta_path``, ``parallel``, ``variables``) are those of
    :func:`~xsomo.io.ismn.read_ismn`.
    """
    from xsomo.io.ismn import read_ismn

    return read_ismn(path, sensor_qc=qc_sensor, build=build_stations, **kwargs)
