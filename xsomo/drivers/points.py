"""Point drivers: the model's inputs at stations instead of on a grid (issue 18).

A *point* drivers Dataset holds dynamic inputs ``(station, time)`` and static inputs
``(station,)`` with ``lat(station)``/``lon(station)`` coordinates, for forcing measured at
stations (SCAN, FLUXNET/ICOS-style sites) or grid cells extracted at stations.
:func:`xsomo.train_lstm`, :func:`xsomo.predict` and :func:`xsomo.evaluate` accept it as
they accept gridded drivers (``predict`` then returns ``sm(layer, time, station)``).

A target (a sensor, a target cell) belongs to the point at the same place: the nearest
point within :data:`POINT_TOLERANCE` degrees (:func:`match_points`); several sensors of
one station share its point.

:func:`point_drivers` builds such a Dataset, either from an ISMN download read with its
forcing (``xsomo.open_ismn(path, variables=["soil_moisture", "precipitation",
"air_temperature"])``) or by sampling gridded drivers at the stations.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError
from xsomo.units import convert

__all__ = [
    "FILLED",
    "POINT_TOLERANCE",
    "fill_forcing_gaps",
    "is_points",
    "location_keys",
    "match_points",
    "nearest_points",
    "point_drivers",
    "probe_points",
    "site_keys",
]

#: Largest distance (degrees, in lat and in lon) between a target and its driver point (~10 m).
POINT_TOLERANCE = 1e-4

#: Daily forcing variables :func:`point_drivers` takes from stations read with their forcing
#: (``air_temperature_range`` only where it was read: ``open_ismn(..., variables=[...,
#: "air_temperature_range"])``).
FORCING_DYNAMIC = ("precipitation", "air_temperature", "air_temperature_range")

#: Statics :func:`point_drivers` can give a station, beside those of the gridded drivers.
CLIMATE_STATICS = ("precipitation_mean", "air_temperature_mean")


def is_points(ds: xr.Dataset | xr.DataArray) -> bool:
    """Whether ``ds`` is indexed by station (point mode) rather than by lat/lon.

    >>> is_points(xr.Dataset(coords={"station": ["a"], "lat": ("station", [1.0]), "lon": ("station", [2.0])}))
    True
    """
    return cv.STATION in ds.dims and cv.LAT not in ds.dims and cv.LON not in ds.dims


def point_latlon(drivers: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The ``lat``/``lon`` of every point, or a :class:`MissingVariableError` naming the one missing."""
    for c in (cv.LAT, cv.LON):
        if c not in drivers.coords or drivers[c].dims != (cv.STATION,):
            raise MissingVariableError(
                f"point drivers need a {c!r} coordinate along 'station' (have coords {sorted(map(str, drivers.coords))})"
            )
    return np.asarray(drivers[cv.LAT].values, float), np.asarray(drivers[cv.LON].values, float)


def site_keys(ds: xr.Dataset | xr.DataArray) -> np.ndarray | None:
    """``network.station_name`` of every entry along ``station``, or None where either coordinate is missing.

    >>> site_keys(xr.Dataset(coords={"station": [0, 1], "network": ("station", ["N", "N"]),
    ...                              "station_name": ("station", ["a", "b"])})).tolist()
    ['N.a', 'N.b']
    """
    names = ("network", "station_name")
    if not all(c in ds.coords and ds[c].dims == (cv.STATION,) for c in names):
        return None
    return np.array([f"{n}.{s}" for n, s in zip(ds["network"].values, ds["station_name"].values, strict=True)])


def nearest_points(
    points: xr.Dataset | xr.DataArray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    keys: np.ndarray | None = None,
    tolerance: float = POINT_TOLERANCE,
    what: str = "target",
) -> tuple[np.ndarray, np.ndarray]:
    """Index along ``station`` of the point at each (``lat``, ``lon``), and whether one lies within ``tolerance``.

    The nearest point (largest of the lat and lon differences). Where several points lie
    within the tolerance (stations that share coordinates: 83 of 2651 ISMN stations share
    them exactly with another), the one with the same ``network.station_name`` as ``keys``
    (:func:`site_keys`) is taken; without such names on both sides the location is refused,
    since the nearest would give one station the other's forcing without a word. Where both
    sides carry names, only a point of the same name matches (a lone point of another name
    within the tolerance is a co-located station, not this one).

    Raises
    ------
    GridMismatchError
        If several points lie within the tolerance of a location and no name tells them apart.
    """
    plat, plon = point_latlon(points)
    lat = np.asarray(lat, float).reshape(-1)
    lon = np.asarray(lon, float).reshape(-1)
    if plat.size == 0:
        return np.zeros(lat.size, int), np.zeros(lat.size, bool)
    nowhere = np.flatnonzero(~(np.isfinite(plat) & np.isfinite(plon)))
    if nowhere.size:
        # argmin returns the first NaN: every location took that point's data
        names = [str(v) for v in np.asarray(points[cv.STATION].values)[nowhere[:5]]]
        raise GridMismatchError(
            f"{nowhere.size} points have no finite lat/lon ({', '.join(names)}): give every point its "
            "coordinates, or drop those points (points.where(points.lat.notnull() & points.lon.notnull(), drop=True))"
        )
    dist = np.maximum(np.abs(lat[:, None] - plat[None, :]), np.abs(lon[:, None] - plon[None, :]))
    idx = np.argmin(dist, axis=1)
    near = dist <= tolerance
    pkeys = site_keys(points)
    if keys is not None and pkeys is not None:
        # names on both sides decide, even for a lone point within the tolerance: a station
        # whose own point is missing must not take a co-located station's data
        keys = np.asarray(keys).astype(str)
        near &= pkeys.astype(str)[None, :] == keys[:, None]
    count = near.sum(axis=1)
    inside = count > 0
    one = count == 1
    idx[one] = near[one].argmax(axis=1)  # the one point left within the tolerance
    unresolved = np.flatnonzero(count > 1)
    if unresolved.size:
        k = unresolved[0]
        cand = np.asarray(points[cv.STATION].values)[np.flatnonzero(near[k])]
        named = (
            "those points share its network/station_name"
            if keys is not None and pkeys is not None
            else "give both sides 'network' and 'station_name' coordinates along 'station' (as xsomo.open_ismn does) "
            "so that each finds its own station"
        )
        raise GridMismatchError(
            f"{unresolved.size} {what}s lie within {tolerance:g}° of more than one point: {what} {k} "
            f"({lat[k]:.5f}, {lon[k]:.5f}) is at points {[str(c) for c in cand]}; {named}, or keep one point per "
            "location (stations read by xsomo.open_ismn hold one entry per sensor: xsomo.point_drivers(stations) "
            "makes the drivers, one point per station)"
        )
    return idx.astype(int), inside


def match_points(
    drivers: xr.Dataset,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    keys: np.ndarray | None = None,
    tolerance: float = POINT_TOLERANCE,
    what: str = "target",
) -> np.ndarray:
    """Index along ``station`` of the driver point at each (``lat``, ``lon``) (:func:`nearest_points`).

    Raises
    ------
    GridMismatchError
        If a location has no driver point within the tolerance (naming it), or several
        that no ``network.station_name`` tells apart.

    >>> d = xr.Dataset(coords={"station": ["a", "b"], "lat": ("station", [1.0, 2.0]), "lon": ("station", [5.0, 6.0])})
    >>> match_points(d, np.array([2.0, 1.00001]), np.array([6.0, 5.0])).tolist()
    [1, 0]
    """
    lat = np.asarray(lat, float).reshape(-1)
    lon = np.asarray(lon, float).reshape(-1)
    idx, ok = nearest_points(drivers, lat, lon, keys=keys, tolerance=tolerance, what=what)
    bad = np.flatnonzero(~ok)
    if bad.size:
        shown = ", ".join(f"{what} {k} ({lat[k]:.5f}, {lon[k]:.5f})" for k in bad[:5])
        named = (
            " of the same network/station_name (both sides carry names: a co-located point of another name is "
            "another station)" if keys is not None and site_keys(drivers) is not None else ""
        )
        raise GridMismatchError(
            f"{bad.size} of {lat.size} {what}s have no driver point{named} within {tolerance:g}° ({shown}); the point "
            f"drivers hold {drivers.sizes[cv.STATION]} stations. Give drivers at every {what}'s location (xsomo.point_drivers), "
            f"or select the {what}s that have one"
        )
    return idx


def probe_points(drivers: xr.Dataset, static: Sequence[str], used: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of up to ``n`` driver points without targets but with finite statics (random, seeded).

    The point-mode counterpart of the training's random probe grid cells.
    """
    ok = np.ones(drivers.sizes[cv.STATION], bool)
    for v in static:
        ok &= np.isfinite(np.asarray(drivers[v].values, float)).reshape(-1)
    ok[np.asarray(used, int)] = False
    idx = np.flatnonzero(ok)
    take = np.sort(np.random.default_rng([int(seed), 8]).choice(idx.size, min(int(n), idx.size), replace=False))
    return idx[take]


def location_keys(ds: xr.Dataset | xr.DataArray) -> np.ndarray:
    """One key per site of every entry along ``station``: ``network.station_name`` (:func:`site_keys`), else lat/lon.

    >>> location_keys(xr.Dataset(coords={"lat": ("station", [1.0, 1.0]), "lon": ("station", [2.0, 2.0])})).tolist()
    ['1.000000,2.000000', '1.000000,2.000000']
    """
    keys = site_keys(ds)
    if keys is None:
        lat, lon = point_latlon(ds)
        keys = np.array([f"{a:.6f},{b:.6f}" for a, b in zip(lat, lon, strict=True)])
    return keys


def _site_keys(points: xr.Dataset) -> tuple[np.ndarray, list[int]]:
    """One key per station location (:func:`location_keys`): (key per entry, first entry of each)."""
    keys = location_keys(points)
    _, first = np.unique(keys, return_index=True)
    return keys, sorted(first.tolist())


def point_drivers(
    points: xr.Dataset,
    drivers: xr.Dataset | None = None,
    *,
    climate: slice | tuple[Any, Any] | None = None,
    time: slice | tuple[Any, Any] | None = None,
    fill_gaps: int = 0,
) -> xr.Dataset:
    """Daily model inputs at stations: ``(station, time)`` dynamic, ``(station,)`` static.

    Parameters
    ----------
    points
        Stations with ``lat``/``lon`` along ``station``, e.g. :func:`xsomo.open_ismn` read
        with ``variables=["soil_moisture", "precipitation", "air_temperature"]`` (the daily
        forcing after QC: flags ``G`` only, a day with fewer than 20 good hours is NaN) or
        any targets/stations Dataset when ``drivers`` is given. Several sensors of one
        station (same ISMN network and station, else same lat/lon) give one point.
    drivers
        Gridded drivers to sample at the stations instead: each station takes every
        input of the cell holding it (:meth:`xsomo.conventions.GridSpec.snap`) and keeps
        its own lat/lon, so its sensors match it. A station off the grid is an error.
    climate
        Period of the climate statics (default: every day of the forcing, whatever
        ``time`` is). Give the training years to keep test years out of the inputs
        entirely. With ``drivers`` the default keeps the drivers' own climate statics
        where they have them (those of the cell, as a gridded prediction sees them).
    time
        Period of the result (default: all days); the axis is daily without gaps. It
        does not change the statics.
    fill_gaps
        Fill runs of at most this many missing days that have data on both sides (default 0:
        none): ``precipitation`` with the station's mean of that calendar month over
        ``climate`` (unbiased on average; the day's own rain is unknown), every other
        dynamic input linearly in time between the days around the gap. Longer gaps and
        gaps at either end stay NaN. A single missing day otherwise costs every prediction
        whose ``lookback`` window holds it (a 90-day lookback: 90 days) and those days'
        targets in training. ``forcing_filled`` ``(station, time)`` is 1 on a day where any
        input was filled (not a model input).

    Returns
    -------
    xarray.Dataset
        ``station`` = one entry per location (labelled ``network.station_name``, else the
        points' own labels where each location has one entry, else ``"lat,lon"``), with
        ``lat``, ``lon`` (and ``network``, ``station_name`` where known). From forcing: ``precipitation`` (mm d-1),
        ``air_temperature`` (K), ``air_temperature_range`` (K, the daily maximum minus
        minimum of the good hourly values; only when read, see :data:`FORCING_DYNAMIC`) and
        the statics the stations have: ``elevation_mean``,
        ``sand_top``, ``clay_top``, ``sand_sub``, ``clay_sub`` (ISMN metadata) and the
        climate means ``precipitation_mean`` (mm d-1) and ``air_temperature_mean`` (K).
        From gridded drivers: every variable of the drivers at the station's cell, plus the
        climate means. Choose the model's inputs with ``train_lstm(..., dynamic=, static=)``.

    Raises
    ------
    MissingVariableError
        If ``points`` has no forcing and no ``drivers`` are given.
    GridMismatchError
        If a station lies off the drivers' grid.

    Examples
    --------
    >>> from xsomo import testing
    >>> drv, tgt, _ = testing.synthetic_case(seed=0, nlat=3, nlon=3, ndays=365, cells=2)
    >>> pts = point_drivers(tgt, drv)
    >>> pts["precipitation"].dims, pts.sizes["station"]
    (('station', 'time'), 2)
    """
    if cv.LAT not in points.coords or cv.LON not in points.coords:
        raise MissingVariableError("points need lat and lon coordinates (one per station)")
    dim = cv.STATION if cv.STATION in points.dims else points[cv.LAT].dims[0]
    points = points.rename({dim: cv.STATION}) if dim != cv.STATION else points
    keys, first = _site_keys(points)
    lat = np.asarray(points[cv.LAT].values, float)[first]
    lon = np.asarray(points[cv.LON].values, float)[first]
    labels = keys[first]
    if site_keys(points) is None and len(first) == points.sizes[cv.STATION] and cv.STATION in points.coords:
        # one entry per location and no ISMN names: the user's own station ids (they had become
        # "40.000000,5.000000" strings in the drivers and every prediction)
        labels = np.asarray(points[cv.STATION].values)[first]
    coords: dict[str, Any] = {
        cv.STATION: (cv.STATION, labels),
        cv.LAT: (cv.STATION, lat, cv.LAT_ATTRS),
        cv.LON: (cv.STATION, lon, cv.LON_ATTRS),
    }
    for extra in ("network", "station_name"):
        if extra in points.coords and points[extra].dims == (cv.STATION,):
            coords[extra] = (cv.STATION, np.asarray(points[extra].values)[first])
    if drivers is not None:
        out = _sample_grid(drivers, lat, lon).assign_coords(coords)
    else:
        out = _from_forcing(points, keys, first, coords)
    # climate statics from the whole forcing (or `climate`), never from the `time` window: a
    # static must not change with the days asked for (a summer window had halved
    # precipitation_mean, and a point prediction left the gridded one at that cell)
    period = out if climate is None else out.sel({cv.TIME: _period(climate, "climate")})
    if period.sizes[cv.TIME] == 0:
        t = out.indexes[cv.TIME]
        raise XsomoValueError(
            f"climate={climate!r} holds no day of the forcing ({t.min().date()} .. {t.max().date()}): the climate "
            "statics (and fill_gaps' monthly precipitation) need days inside it"
        )
    # gridded drivers bring their own climate statics (those the model saw on the grid): kept
    # unless another `climate` period is asked for
    keep = set(drivers.data_vars) if drivers is not None and climate is None else set()
    means = {}
    for name, source in (("precipitation_mean", "precipitation"), ("air_temperature_mean", "air_temperature")):
        if source in out and name not in keep:
            # in the canonical units the statics are labelled with (the forcing's own units
            # had given 0.003 "mm d-1" for precipitation in m d-1, 9.1 "K" for degC)
            _warn_uneven_climate(period[source], name)
            mean = period[source].mean(cv.TIME, skipna=True, keep_attrs=True)
            unit = cv.VARIABLES[name].units
            means[name] = convert(mean, unit, name=source, source="the point forcing").astype("float32")
            means[name].attrs = cv.cf_attrs(name)
    if fill_gaps:
        if int(fill_gaps) < 0 or int(fill_gaps) != fill_gaps:
            raise XsomoValueError(f"fill_gaps must be a whole number of days >= 0, got {fill_gaps}")
        whole = pd.date_range(out.indexes[cv.TIME].min(), out.indexes[cv.TIME].max(), freq="D")
        out = fill_forcing_gaps(out.reindex({cv.TIME: whole}), int(fill_gaps), period)
    if time is not None:
        out = out.sel({cv.TIME: _period(time, "time")})
    days = pd.date_range(out.indexes[cv.TIME].min(), out.indexes[cv.TIME].max(), freq="D")
    out = out.reindex({cv.TIME: days})
    if FILLED in out:
        out[FILLED] = out[FILLED].fillna(0).astype("int8")
    for name, value in means.items():
        out[name] = value
    for v in out.data_vars:
        if cv.TIME in out[v].dims:
            out[v] = out[v].transpose(cv.STATION, cv.TIME)
    out.attrs = {
        "title": "xsomo point drivers",
        "source": "sampled from gridded drivers at the stations" if drivers is not None else "station forcing",
    }
    return out


#: A climate mean is warned about when a calendar month weighs in it this fraction less or more
#: than the month's share of a year (weight: its valid days / all valid days; share: its days / 365.25).
CLIMATE_MONTH_BALANCE = 0.5
#: Days of the calendar months in an average year.
_MONTH_DAYS = np.array([31, 28.2425, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _warn_uneven_climate(series: xr.DataArray, name: str) -> None:
    """Warn about climate means that weigh the calendar months unevenly: one November-February
    of a nine-year period had given a precipitation mean 47 % too high, without a word. A year
    with a few failed days is fine; 15 whole months count January-March twice (1.6 K on a
    seasonal temperature) and are warned about."""
    valid = np.isfinite(series.transpose(cv.STATION, cv.TIME).values)
    months = pd.DatetimeIndex(series.indexes[cv.TIME]).month.to_numpy()
    count = np.stack([valid[:, months == m].sum(axis=1) for m in range(1, 13)], axis=1).astype(float)
    days = count.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (count / days[:, None]) / (_MONTH_DAYS / _MONTH_DAYS.sum())
    low, high = ratio.min(axis=1), ratio.max(axis=1)
    bad = (days > 0) & ((low < 1 - CLIMATE_MONTH_BALANCE) | (high > 1 + CLIMATE_MONTH_BALANCE))
    if bad.any():
        ids = series[cv.STATION].values[bad].tolist()
        k = int(np.flatnonzero(bad)[0])
        t = series.indexes[cv.TIME]
        names = pd.date_range("2001-01-01", periods=12, freq="MS").strftime("%b")
        lo, hi = int(np.argmin(ratio[k])), int(np.argmax(ratio[k]))
        warnings.warn(
            f"{name} of {bad.sum()} station(s) ({', '.join(map(str, ids[:4]))}{', ...' if len(ids) > 4 else ''}) "
            f"averages {series.name!r} over {int(days[k])} valid days of {t.min().date()}..{t.max().date()} that weigh "
            f"the calendar months unevenly ({names[lo]} {ratio[k, lo]:.2g}x, {names[hi]} {ratio[k, hi]:.2g}x its "
            "share of a year): a mean of some seasons is biased. Give climate= whole years the forcing covers.",
            RuntimeWarning,
            stacklevel=3,
        )


def _period(value: Any, what: str) -> slice:
    """A time selection as a slice: a slice, a ``(start, end)`` pair or one date/year/month ("2001").

    >>> _period("2001", "time"), _period(("2001", "2002-06"), "time")
    (slice('2001', '2001', None), slice('2001', '2002-06', None))
    """
    if isinstance(value, slice):
        return value
    if isinstance(value, str | pd.Timestamp | np.datetime64):
        return slice(value, value)
    try:
        start, end = value
    except (TypeError, ValueError):
        raise XsomoValueError(
            f"{what}={value!r}: give a slice, a (start, end) pair or one date such as '2001'"
        ) from None
    return slice(start, end)


#: ``point_drivers(fill_gaps=)``'s flag: 1 on a day where any dynamic input was filled.
FILLED = "forcing_filled"


def _gap_runs(missing: np.ndarray, longest: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of ``True`` in ``missing`` no longer than ``longest``
    with a ``False`` on both sides.

    >>> _gap_runs(np.array([True, False, True, False, True, True, False, True]), 1)
    [(2, 3)]
    """
    edges = np.diff(np.r_[0, missing.astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = (stops - starts <= longest) & (starts > 0) & (stops < missing.size)
    return list(zip(starts[keep].tolist(), stops[keep].tolist(), strict=True))


def fill_forcing_gaps(points: xr.Dataset, longest: int, climate: xr.Dataset | None = None) -> xr.Dataset:
    """Short gaps of point drivers filled, with the ``forcing_filled`` flag (see :func:`point_drivers`).

    Parameters
    ----------
    points
        Point drivers: ``(station, time)`` inputs on a daily ``time`` axis without missing
        dates (statics are passed through).
    longest
        Longest run of missing days filled; a run needs a measured day on both sides.
    climate
        Days whose calendar-month means fill ``precipitation`` (default: ``points``).

    Returns
    -------
    xarray.Dataset
        ``points`` with ``precipitation`` filled by its station's month mean, every other
        ``(station, time)`` input linearly between the days around the gap, and
        ``forcing_filled`` (int8, 1 where any input was filled).

    Raises
    ------
    XsomoValueError
        If the time axis is not daily without gaps.

    Examples
    --------
    >>> t = pd.date_range("2001-01-01", periods=5)
    >>> ds = xr.Dataset({"air_temperature": (("station", "time"), [[280.0, np.nan, 284.0, np.nan, np.nan]]),
    ...                  "precipitation": (("station", "time"), [[1.0, np.nan, 3.0, 4.0, 5.0]])},
    ...                 coords={"time": t})
    >>> out = fill_forcing_gaps(ds, 1)
    >>> out["air_temperature"].values.tolist(), out["precipitation"].values.tolist()
    ([[280.0, 282.0, 284.0, nan, nan]], [[1.0, 3.25, 3.0, 4.0, 5.0]])
    >>> out["forcing_filled"].values.tolist()
    [[0, 1, 0, 0, 0]]
    """
    times = points.indexes[cv.TIME]
    if times.size > 1 and not (np.diff(times.values) == np.timedelta64(1, "D")).all():
        raise XsomoValueError("fill_gaps needs a daily time axis without missing dates")
    climate = points if climate is None else _same_stations(climate, points)
    out = points.copy()
    filled = np.zeros((points.sizes[cv.STATION], times.size), bool)
    if FILLED in points:  # a second call adds to the days an earlier one filled
        filled |= np.asarray(points[FILLED].transpose(cv.STATION, cv.TIME).fillna(0).values) > 0
    months = np.asarray(times.month) - 1
    for name, var in points.data_vars.items():
        if set(var.dims) != {cv.STATION, cv.TIME} or name == FILLED:
            continue
        var = var.transpose(cv.STATION, cv.TIME)
        arr = np.array(var.values, dtype=float)
        monthly = None
        if name == "precipitation":
            clim = climate[name].transpose(cv.STATION, cv.TIME)
            by_month = clim.groupby(f"{cv.TIME}.month").mean(skipna=True)
            monthly = by_month.reindex(month=np.arange(1, 13)).transpose(cv.STATION, "month").values
        for k in range(arr.shape[0]):
            for a, b in _gap_runs(np.isnan(arr[k]), longest):
                if monthly is not None:
                    arr[k, a:b] = monthly[k, months[a:b]]
                else:
                    w = np.arange(1, b - a + 1) / (b - a + 1)
                    arr[k, a:b] = arr[k, a - 1] + w * (arr[k, b] - arr[k, a - 1])
                filled[k, a:b] |= np.isfinite(arr[k, a:b])
        out[name] = var.copy(data=arr.astype(var.dtype))
    out[FILLED] = ((cv.STATION, cv.TIME), filled.astype("int8"), {
        "long_name": "day with a dynamic input filled by point_drivers(fill_gaps=)",
        "flag_values": np.array([0, 1], "int8"), "flag_meanings": "measured filled",
    })  # fmt: skip
    return out


def _same_stations(climate: xr.Dataset, points: xr.Dataset) -> xr.Dataset:
    """``climate`` with its stations in the order of ``points`` (by ``station`` label; it had
    been paired by position, so a climate in another order filled each station with another's rain)."""
    if cv.STATION not in climate.dims or cv.STATION not in points.dims:
        return climate
    have = pd.Index(climate.indexes[cv.STATION])
    want = np.asarray(points[cv.STATION].values)
    missing = [str(v) for v in want if v not in have]
    if missing:
        raise XsomoValueError(
            f"climate= lacks {len(missing)} of the {want.size} stations ({', '.join(missing[:5])}): give the same "
            "stations (the same 'station' labels) as the points"
        )
    return climate.sel({cv.STATION: want})


def _sample_grid(drivers: xr.Dataset, lat: np.ndarray, lon: np.ndarray) -> xr.Dataset:
    glat = np.asarray(drivers[cv.LAT].values, float)
    glon = np.asarray(drivers[cv.LON].values, float)
    grid = cv.GridSpec.from_coords(glat, glon)
    # stations in the grid's longitude convention (0..360 stations on a -180..180 grid were "off the grid")
    i, j = grid.snap(lat, cv.lon_like_grid(lon, glon))
    off = np.flatnonzero((i < 0) | (j < 0))
    if off.size:
        raise GridMismatchError(
            f"{off.size} stations lie off the drivers' grid ({grid}): "
            + ", ".join(f"({lat[k]:.4f}, {lon[k]:.4f})" for k in off[:5])
        )
    # snap indexes the ascending axes: find those centres in the drivers' own order
    sel = {
        cv.LAT: xr.DataArray(np.abs(glat[None, :] - grid.lat[i][:, None]).argmin(axis=1), dims=cv.STATION),
        cv.LON: xr.DataArray(np.abs(glon[None, :] - grid.lon[j][:, None]).argmin(axis=1), dims=cv.STATION),
    }
    out = drivers.isel(sel).drop_vars([cv.LAT, cv.LON, "spatial_ref"], errors="ignore")
    if cv.LAND_MASK in out:
        out = out.drop_vars(cv.LAND_MASK)
    return out.compute()


def _refuse_other_forcing_at_a_place(
    points: xr.Dataset, places: Mapping[str, np.ndarray], values: np.ndarray, name: str
) -> None:
    """Entries that make one point (``places``: the rows of each place with several, by
    :func:`location_keys`) must carry the same forcing: the sensors of one station do. Two
    stations at one place without names had become one point with the first one's forcing, and
    the second one's soil moisture trained and was scored on the other gauge."""
    for key, rows in places.items():
        ref = values[rows[0]]
        for r in rows[1:]:
            differ = ~np.isclose(ref, values[r], rtol=1e-6, atol=1e-6) & np.isfinite(ref) & np.isfinite(values[r])
            if differ.any():
                t = int(np.argmax(differ))
                ids = points[cv.STATION].values[[rows[0], r]].tolist() if cv.STATION in points.coords else [rows[0], r]
                day = f" on {pd.Timestamp(points[cv.TIME].values[t]).date()}" if cv.TIME in points.coords else ""
                raise XsomoValueError(
                    f"points {ids[0]!r} and {ids[1]!r} are at one place ({key}) and would make one point, but "
                    f"their {name!r} differs ({ref[t]:g} against {values[r][t]:g}{day}): they look like two "
                    "stations. Give every entry 'network' and 'station_name' coordinates (the sensors of one "
                    "station share them, two stations differ)."
                )


def _from_forcing(points: xr.Dataset, keys: np.ndarray, first: list[int], coords: dict[str, Any]) -> xr.Dataset:
    dynamic = [v for v in FORCING_DYNAMIC if v in points.data_vars]
    if not dynamic:
        raise MissingVariableError(
            "the points carry no forcing (precipitation, air_temperature): read the ISMN download with "
            "xsomo.open_ismn(path, variables=['soil_moisture', 'precipitation', 'air_temperature']), or pass "
            "gridded drivers= to sample at the stations"
        )
    data: dict[str, Any] = {}
    places = {k: rows for k, rows in pd.Series(np.arange(keys.size)).groupby(keys).indices.items() if rows.size > 1}
    for v in dynamic:
        every = points[v].transpose(cv.STATION, cv.TIME).values
        _refuse_other_forcing_at_a_place(points, places, every, v)
        data[v] = ((cv.STATION, cv.TIME), every[first].astype("float32"), dict(points[v].attrs))
    for name in ("elevation_mean", "sand_top", "clay_top", "sand_sub", "clay_sub"):
        if name in points.coords or name in points.data_vars:
            vals = np.asarray(points[name].values, float)[first]
            if np.isfinite(vals).any():
                data[name] = ((cv.STATION,), vals.astype("float32"), cv.cf_attrs(name))
    return xr.Dataset(data, coords={**coords, cv.TIME: points[cv.TIME].values})
