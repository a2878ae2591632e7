"""Forcing files of an ISMN download: precipitation and air temperature at the stations.

ISMN downloads hold, beside soil moisture, the other variables a station measures, one
``.stm`` file per sensor with the variable in the file name (``_p_`` precipitation,
``_ta_`` air temperature). :func:`daily_forcing` turns their hourly records into daily
values with the soil-moisture rules of quality control: only flags in ``good_flags``
(``G``), and a day is a gap unless it has at least ``min_hours`` good hours (20 by
default). Precipitation is the daily total (the mean of the good hours times 24, which
is the plain sum on a day with all 24 hours), air temperature the daily mean (converted
from the ISMN's degC to kelvin, the canonical unit). On request,
``air_temperature_range`` (K) is derived from the same air-temperature files: the
day's maximum minus its minimum of the good hourly values (a Hargreaves-style proxy of
radiation and cloudiness, i.e. of evaporative demand), with the same gap rule.

:func:`xsomo.open_ismn` calls :func:`attach_forcing` when asked for these variables
(``variables=[...]``); the result is input to :func:`xsomo.point_drivers`.
"""

from __future__ import annotations

import contextlib
import math
import pathlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import DataFormatError, XsomoValueError
from xsomo.runtime import user_stacklevel

__all__ = ["FORCING_SOURCE", "FORCING_VARIABLES", "MIN_FORCING_HOURS", "attach_forcing", "daily_forcing", "read_forcing"]

#: ISMN forcing variables xsomo reads, with how an hourly series becomes a daily value.
FORCING_VARIABLES: dict[str, str] = {
    "precipitation": "sum", "air_temperature": "mean", "air_temperature_range": "range",
}  # fmt: skip

#: The ISMN variable (file) each forcing variable is computed from.
FORCING_SOURCE: dict[str, str] = {
    "precipitation": "precipitation", "air_temperature": "air_temperature", "air_temperature_range": "air_temperature",
}  # fmt: skip

#: Attributes of the forcing variables that are not canonical xsomo variables.
EXTRA_ATTRS: dict[str, dict[str, str]] = {
    "air_temperature_range": {
        "units": "K",
        "long_name": "daily range of 2 m air temperature (maximum - minimum of the good hourly values)",
    },
}

#: A day needs at least this many good hourly values (issue 18: fewer is a gap).
MIN_FORCING_HOURS = 20

#: Static information of a station, from its ISMN metadata (``static_variables.csv``):
#: xsomo name -> (ISMN name, top of the depth interval in m, bottom in m, scale).
STATIC_FROM_ISMN: dict[str, tuple[str, float | None, float | None, float]] = {
    "elevation_mean": ("elevation", None, None, 1.0),
    "sand_top": ("sand_fraction", 0.0, 0.3, 0.01),
    "clay_top": ("clay_fraction", 0.0, 0.3, 0.01),
    "sand_sub": ("sand_fraction", 0.3, 1.0, 0.01),
    "clay_sub": ("clay_fraction", 0.3, 1.0, 0.01),
}


def _records_per_hour(index: pd.DatetimeIndex) -> pd.Series:
    """Records that make a complete hour, per hour, from the spacing of the records (all
    records, good or not): 1 for hourly records, 6 for 10-minute ones. The spacing is the
    shorter of the day's median and the hour's shortest distance between records, so a
    missing record makes its hour incomplete, never a short sum; on a day that changes from
    hourly to finer records the hourly hours count as incomplete. (A logger that changed
    from hourly to 10-minute records had had its 10-minute hours averaged, as the series'
    median step was an hour: 4 mm on a day of 24.)

    >>> hourly = pd.date_range("2020-01-01 00:00", periods=24, freq="h")
    >>> idx = hourly.append(pd.date_range("2020-01-02 00:00", periods=144, freq="10min")).delete(30)
    >>> per = _records_per_hour(idx)
    >>> per.iloc[[0, 23, 24, 25, 47]].tolist()
    [1, 1, 6, 6, 6]
    """
    t = pd.DatetimeIndex(index).sort_values().unique()
    if len(t) < 2:
        return pd.Series(1, index=t.floor("h"), dtype="int64")
    gaps = (t[1:] - t[:-1]).total_seconds().to_numpy()
    gap = pd.Series(np.concatenate([gaps[:1], gaps]), index=t)  # each record's distance to the one before
    hour = t.floor("h")
    in_day = gap.groupby(t.normalize()).transform("median").groupby(hour).first()
    spacing = np.minimum(in_day, gap.groupby(hour).min())
    return (3600.0 / spacing).round().clip(lower=1).astype("int64")


def daily_forcing(
    values: pd.Series,
    flags: pd.Series | None,
    how: str,
    *,
    good_flags: Sequence[str] = ("G",),
    min_hours: int = MIN_FORCING_HOURS,
) -> tuple[pd.Series, int]:
    """Daily (UTC) values of one hourly forcing series after quality control.

    Parameters
    ----------
    values, flags
        Hourly values and their ISMN quality flags (``None``: all good).
    how
        ``"sum"`` (mean of the good hours times 24; records finer than hourly are
        amounts summed within each complete hour first), ``"mean"`` or ``"range"`` (maximum
        minus minimum of the good hourly values). Records coarser than hourly are refused.
    good_flags
        Flags kept.
    min_hours
        Good hours a day needs; other days are NaN.

    Returns
    -------
    daily : pandas.Series
        One value per calendar day between the first and last record.
    n_good : int
        Good hourly values used.

    Examples
    --------
    >>> idx = pd.date_range("2020-01-01", periods=48, freq="h")
    >>> v = pd.Series(1.0, index=idx)
    >>> f = pd.Series(["G"] * 24 + ["G"] * 19 + ["D01"] * 5, index=idx)
    >>> daily_forcing(v, f, "sum")[0].tolist()
    [24.0, nan]
    """
    if how not in ("sum", "mean", "range"):
        raise XsomoValueError(f"how={how!r}: use 'sum', 'mean' or 'range'")
    vals = pd.to_numeric(values, errors="coerce").astype("float64")
    good = vals.notna()
    if flags is not None:
        good &= flags.astype(str).str.strip().isin([str(f) for f in good_flags])
    s = vals[good]
    index = pd.DatetimeIndex(values.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
        s.index = pd.DatetimeIndex(s.index).tz_convert("UTC").tz_localize(None)
    if len(index) == 0:
        return pd.Series([], index=pd.DatetimeIndex([]), dtype="float64"), 0
    days = pd.date_range(index.min().normalize(), index.max().normalize(), freq="D")
    step = pd.Series(index.sort_values().unique()).diff().median() if len(index) > 1 else pd.Timedelta("1h")
    if step > pd.Timedelta("1h"):
        raise XsomoValueError(
            f"records every {step} (median step): the daily forcing needs hourly or finer records "
            f"({min_hours} good hours make a day); aggregate such data to days yourself"
        )
    # a record given twice counts once (sub-hourly amounts given twice had been summed twice)
    s = s.groupby(level=0).mean()
    # hourly values first (sub-hourly records), then the day: a precipitation amount per
    # record adds up within the hour (a complete hour only), a state such as temperature is averaged
    by_hour = s.groupby(pd.DatetimeIndex(s.index).floor("h"))
    if how == "sum":
        amount = by_hour.sum()
        hourly = amount.where(by_hour.count() >= _records_per_hour(index).reindex(amount.index)).dropna()
    else:
        hourly = by_hour.mean()
    by_day = hourly.groupby(pd.DatetimeIndex(hourly.index).normalize())
    if how == "range":
        value = (by_day.max() - by_day.min()).reindex(days)
    else:
        value = by_day.mean().reindex(days)
    count = by_day.count().reindex(days).fillna(0)
    daily = value.where(count >= int(min_hours))
    if how == "sum":
        daily = daily * 24.0
    return daily, int(good.sum())


def read_forcing(
    iface: Any,
    root: Any,
    variables: Sequence[str],
    *,
    good_flags: Sequence[str] = ("G",),
    min_hours: int = MIN_FORCING_HOURS,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Daily forcing and static metadata of every station of an ``ismn`` interface.

    Returns ``{(network, station): {"precipitation": Series, ..., "static": {...}}}``;
    a station with several sensors of one variable gets the mean of their daily values.
    ``air_temperature_range`` is computed from the air-temperature files.
    """
    unknown = [v for v in variables if v not in FORCING_VARIABLES]
    if unknown:
        raise XsomoValueError(
            f"variables={list(variables)}: xsomo reads {['soil_moisture', *FORCING_VARIABLES]} from ISMN "
            f"downloads, not {unknown}"
        )
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for net in iface.collection.iter_networks():
        for stn in net.iter_stations():
            entry: dict[str, Any] = {"static": _station_static(stn, root)}
            for sen in stn.iter_sensors():
                src = str(sen.variable)
                wanted = [v for v in variables if FORCING_SOURCE[v] == src]
                if not wanted:
                    continue
                try:
                    df = sen.read_data()
                except Exception as err:
                    raise DataFormatError(
                        f"{root}/{sen.filehandler.file_path}: the ismn package cannot read this {src} file ({err})"
                    ) from err
                if src not in df:
                    raise DataFormatError(
                        f"{root}/{sen.filehandler.file_path}: no {src!r} column (columns {list(df.columns)})"
                    )
                for var in wanted:
                    try:
                        daily, _ = daily_forcing(
                            df[src], df.get(f"{src}_flag"), FORCING_VARIABLES[var], good_flags=good_flags,
                            min_hours=min_hours,
                        )
                    except XsomoValueError as err:
                        raise DataFormatError(f"{root}/{sen.filehandler.file_path}: {err}") from None
                    if var == "air_temperature":
                        daily = daily + 273.15  # ISMN: degC (a range is the same in K)
                    entry.setdefault(var, []).append(daily)
            for var in variables:
                if var in entry:
                    parts = entry[var]
                    entry[var] = parts[0] if len(parts) == 1 else pd.concat(parts, axis=1).mean(axis=1)
            out[(str(net.name), str(stn.name))] = entry
    lacking = {v: [f"{n}.{s}" for (n, s), e in out.items() if v not in e] for v in variables}
    lacking = {v: names for v, names in lacking.items() if names}
    if lacking:  # their forcing is NaN: training drops their days, prediction gives none
        warnings.warn(
            f"{root}: no file of "
            + "; ".join(
                f"{v} at {len(n)} of {len(out)} stations ({', '.join(n[:3])}{', ...' if len(n) > 3 else ''})"
                for v, n in lacking.items()
            )
            + ": their forcing is NaN (a download without those variables?)",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return out


def _station_static(stn: Any, root: Any) -> dict[str, float]:
    """Elevation and topsoil/subsoil sand and clay of a station (NaN where ISMN has none).

    Sand and clay come from the station's ``*_static_variables.csv`` (ISMN: HWSD, % weight,
    0-0.3 m and 0.3-1 m), read from the folder of the station's files (NaN in a zip).
    """
    static = dict.fromkeys(STATIC_FROM_ISMN, math.nan)
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        static["elevation_mean"] = float(stn.elev)
    sensors = list(stn.iter_sensors())
    if not sensors:
        return static
    folder = pathlib.Path(str(root)) / pathlib.PurePath(str(sensors[0].filehandler.file_path)).parent
    files = sorted(folder.glob("*static_variables.csv")) if folder.is_dir() else []
    if not files:
        return static
    try:
        table = pd.read_csv(files[0], sep=";", index_col=False)
    except Exception as err:
        raise DataFormatError(f"{files[0]}: not a readable ISMN static_variables.csv ({err})") from err
    need = {"quantity_name", "depth_from[m]", "depth_to[m]", "value"}
    if not need <= set(table.columns):
        raise DataFormatError(f"{files[0]}: lacks the columns {sorted(need - set(table.columns))}")
    for name, (key, top, bottom, scale) in STATIC_FROM_ISMN.items():
        if top is None:
            continue
        quantity = key.replace("_", " ")
        depth_from = pd.to_numeric(table["depth_from[m]"], errors="coerce")
        depth_to = pd.to_numeric(table["depth_to[m]"], errors="coerce")
        rows = table[
            (table["quantity_name"].astype(str).str.strip() == quantity)
            & ((depth_from - top).abs() < 1e-6)
            & ((depth_to - bottom).abs() < 1e-6)
        ]
        vals = pd.to_numeric(rows["value"], errors="coerce").dropna()
        if len(vals):
            static[name] = float(vals.iloc[0]) * scale
    return static


def attach_forcing(ds: xr.Dataset, forcing: dict[tuple[str, str], dict[str, Any]], variables: Sequence[str]) -> xr.Dataset:
    """``ds`` (one entry per soil-moisture sensor) with each sensor's station forcing and statics.

    The forcing variables become ``(station, time)`` variables (the time axis grows to hold
    the forcing's period); the statics become ``(station,)`` coordinates.
    """
    keys = list(zip(ds["network"].values.tolist(), ds["station_name"].values.tolist(), strict=True))
    start = min([pd.Timestamp(ds[cv.TIME].values[0])] + [s.index.min() for f in forcing.values() for v, s in f.items() if v in variables and len(s)])
    end = max([pd.Timestamp(ds[cv.TIME].values[-1])] + [s.index.max() for f in forcing.values() for v, s in f.items() if v in variables and len(s)])
    days = pd.date_range(start, end, freq="D")
    ds = ds.reindex({cv.TIME: days})
    for var in variables:
        data = np.full((len(keys), days.size), np.nan, dtype="float32")
        for k, key in enumerate(keys):
            series = forcing.get(key, {}).get(var)
            if series is not None and len(series):
                data[k] = series.reindex(days).to_numpy(dtype="float32")
        attrs = dict(EXTRA_ATTRS[var]) if var in EXTRA_ATTRS else cv.cf_attrs(var)
        attrs["qc"] = f"hourly values flagged G only; a day with fewer than {MIN_FORCING_HOURS} good hours is NaN"
        ds[var] = ((cv.STATION, cv.TIME), data, attrs)
    for name in STATIC_FROM_ISMN:
        vals = np.array([forcing.get(key, {}).get("static", {}).get(name, math.nan) for key in keys], dtype="float64")
        ds = ds.assign_coords({name: (cv.STATION, vals, cv.cf_attrs(name))})
    return ds
