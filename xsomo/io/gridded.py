"""Gridded daily forcing and static inputs: MSWEP-style precipitation, MSWX-style air
temperature, and the static files of the sample-world layout (docs/internals.md §1).

Every reader renames ``latitude``/``longitude`` to ``lat``/``lon`` (ascending), checks
and converts units with :mod:`xsomo.units` (never guessed) and, for dynamic variables,
aggregates sub-daily steps to UTC days (rates are averaged after conversion to the
canonical per-day units, so amounts per step and rates are both handled).
"""

from __future__ import annotations

import functools
import itertools
import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo import units as xu
from xsomo.exceptions import DataFormatError, MissingVariableError, UnitError
from xsomo.regrid import normalise_latlon

__all__ = ["STATIC_FILES", "daily_dates", "open_gridded", "open_mswep", "open_mswx", "open_static", "utc_offset"]

#: static file -> variables and the units they must be convertible to
STATIC_FILES: dict[str, dict[str, str]] = {
    "dem.nc": {"elevation": "m"},
    "landcover.nc": {"forest_fraction": "1", "shortveg_fraction": "1"},
    "soil.nc": {"sand_top": "1", "clay_top": "1", "sand_sub": "1", "clay_sub": "1"},
    "land_mask.nc": {"land_mask": "1"},
}

#: file variables checked against the range of a canonical variable of another name
PLAUSIBLE_AS = {"elevation": "elevation_mean"}


def open_nc_files(files: Sequence[pathlib.Path], *, chunks: object, what: str) -> xr.Dataset:
    """Open one netCDF file, or combine several by coordinates (lazy with ``chunks``).

    Several files must agree on each variable's ``units`` (one conversion is applied to the
    combined data) and may not share a time stamp (the combine kept one of them without a
    word); both are refused naming two files. Any failure becomes a :class:`DataFormatError`
    whose message starts with ``what``.
    """
    seen: list[tuple[str, dict[str, str | None], np.ndarray]] = []
    zones: list[tuple[str, pd.Timedelta, object]] = []
    spaces: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def record(ds: xr.Dataset) -> xr.Dataset:
        ds = _day_from_name(ds)
        name = str(ds.encoding.get("source", "?"))
        t = next((ds[n] for n in ("time", "valid_time") if n in ds.coords), None)
        seen.append((name, {str(v): ds[v].attrs.get("units") for v in ds.data_vars},
                     np.atleast_1d(t.values) if t is not None else np.array([])))
        lat = next((ds[n].values for n in ("lat", "latitude") if n in ds.coords and ds[n].ndim == 1), None)
        lon = next((ds[n].values for n in ("lon", "longitude") if n in ds.coords and ds[n].ndim == 1), None)
        if lat is not None and lon is not None:
            spaces[name] = (np.round(np.asarray(lat, float), 6), np.round(np.asarray(lon, float), 6))
        if t is not None:
            zones.append((name, utc_offset(t, name), t.encoding.get("units")))
        return ds

    try:
        if len(files) == 1:
            one = _day_from_name(xr.open_dataset(files[0], chunks=chunks))
            _refuse_model_calendar(one, files[0].name)
            return one
        ds = xr.open_mfdataset(
            files,
            combine="by_coords",
            chunks=chunks,
            data_vars="minimal",
            coords="minimal",
            compat="override",
            join="outer",
            preprocess=record,
        )
    except DataFormatError as err:
        raise DataFormatError(f"{what}: {err}") from None
    except Exception as err:
        raise DataFormatError(f"{what}: {_overlap(files) or _other_steps(spaces) or err}") from err
    try:
        if steps := _other_steps(spaces):  # (nested grids combined without an error: NaN between the coarse cells)
            raise DataFormatError(steps)
        _refuse_mixed_files(seen, spaces)
        _refuse_mixed_zones(zones)
        _refuse_model_calendar(ds, ", ".join(f.name for f in files[:3]) + (" ..." if len(files) > 3 else ""))
    except DataFormatError as err:
        ds.close()
        raise DataFormatError(f"{what}: {err}") from None
    return ds


def _other_steps(spaces: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """Files whose grids have different steps, named (combined, xarray said "Resulting object does not
    have monotonic global indexes along dimension lon"), or ""."""
    def step(v: np.ndarray) -> float:
        return round(float(np.median(np.abs(np.diff(v)))), 6) if v.size > 1 else 0.0

    steps = {name: (step(la), step(lo)) for name, (la, lo) in spaces.items()}
    if len(set(steps.values())) < 2:
        return ""
    items = sorted(steps.items())
    a, sa = items[0]
    b, sb = next((n, s) for n, s in items if s != sa)
    return (
        f"the files lie on grids of different steps ({pathlib.Path(a).name}: {sa[0]:g} x {sa[1]:g}°, "
        f"{pathlib.Path(b).name}: {sb[0]:g} x {sb[1]:g}°): pass files of one grid, or regrid them first"
    )


def _refuse_model_calendar(ds: xr.Dataset, src: str) -> None:
    """Refuse a time axis that xarray decoded to cftime dates (a climate model's ``noleap``,
    ``360_day`` or ``julian`` calendar): it ended in "DatetimeNoLeap is not convertible to
    datetime" (the CLI called it a bug in xsomo)."""
    for name in ("time", "valid_time"):
        if name in ds.coords and ds[name].dtype == object and ds[name].size:
            first = ds[name].values.ravel()[0]
            calendar = getattr(first, "calendar", None) or ds[name].encoding.get("calendar", "?")
            raise DataFormatError(
                f"{src}: the time axis {name!r} is in the {calendar!r} calendar (a climate model's): xsomo "
                "works on real dates (the standard, proleptic Gregorian calendar). Convert it first, e.g. "
                "ds.convert_calendar('standard', missing=np.nan) (with align_on='date' for 360_day), and fill the "
                "days that come out NaN (29 February), e.g. with ds.interpolate_na('time')."
            )


#: a CF time reference's date and clock time, then whatever follows them (the zone)
_TIME_REFERENCE = re.compile(
    r"^\s*\w+\s+since\s+(?P<date>[-+]?\d+-\d{1,2}-\d{1,2}(?:[T\s]+\d{1,2}(?::\d{1,2}(?::\d{1,2}(?:\.\d*)?)?)?)?)"
    r"\s*(?P<zone>.*?)\s*$",
    re.IGNORECASE,
)
#: zones that are UTC
_UTC = {"", "z", "utc", "gmt", "ut"}
#: an ISO 8601 / UDUNITS offset from UTC: +03:00, +0300, +03, +3, -5:30
_OFFSET = re.compile(r"^[+-]\d{1,2}(?::?\d{2})?$")


def utc_offset(time: xr.DataArray, src: str) -> pd.Timedelta:
    """The offset from UTC of the time zone of ``time``'s CF units (``"days since 2000-01-01
    00:00:00 +03:00"`` -> 3 h; 0 without a zone, or in UTC).

    xarray decodes such stamps to UTC (local midnight of +03:00 becomes 21:00 UTC of the day
    before); the offset is lost after decoding, so it is read from ``time.encoding['units']``
    (or the raw ``units`` attribute). A zone that cannot be read without doubt is refused:
    ``"UTC+3"`` is 3 h east in common usage but 3 h west as a POSIX zone, which is how pandas
    (and so xarray) decodes it; named zones (``"CET"``, ``"EST"``) are ignored by the decoding.
    Accepted: none, ``Z``/``UTC``/``GMT``, and ISO 8601 / UDUNITS offsets (``+03:00``, ``+0300``,
    ``+3``, ``-05:30``), for which the offset pandas applied is returned.
    """
    units = time.encoding.get("units") or time.attrs.get("units")
    if not isinstance(units, str):
        return pd.Timedelta(0)
    m = _TIME_REFERENCE.match(units)
    if m is None:
        return pd.Timedelta(0)
    zone = m["zone"].strip()
    if zone.casefold() in _UTC:
        return pd.Timedelta(0)
    try:
        stamp = pd.Timestamp(f"{m['date']} {zone}")
    except Exception:  # pandas cannot read it: what xarray made of it is unknown
        stamp = None
    if _OFFSET.match(zone) and stamp is not None and stamp.tzinfo is not None:
        return pd.Timedelta(stamp.utcoffset())
    if stamp is not None and stamp.tzinfo is not None and stamp.utcoffset() == pd.Timedelta(0):
        return pd.Timedelta(0)  # "UTC+00:00", "GMT-0"
    raise DataFormatError(
        f"{src}: the time units {units!r} end in the time zone {zone!r}, which xsomo cannot read without doubt "
        "('UTC+3' is 3 h east of UTC as people write it but 3 h west as a POSIX zone, which is how xarray "
        "decodes it; a named zone such as 'CET' is ignored by the decoding). Write the offset as ISO 8601 does, e.g. "
        "'days since 2000-01-01 00:00:00 +03:00', or give the times in UTC."
    )


def _refuse_mixed_zones(zones: Sequence[tuple[str, pd.Timedelta, object]]) -> None:
    """Files whose time units have different offsets from UTC: one rule gives their days."""
    for (name0, off0, units0), (name, off, units) in itertools.pairwise(zones):
        if off != off0:
            raise DataFormatError(
                f"the time units of {name0} ({units0!r}) and {name} ({units!r}) are in different time zones: "
                "daily values of one record are stamped in one zone. Give the files in one zone (or in UTC)."
            )


def zone_name(offset: pd.Timedelta) -> str:
    """``"UTC"``, ``"UTC+03:00"``, ``"UTC-05:30"``."""
    if offset == pd.Timedelta(0):
        return "UTC"
    h, rest = divmod(abs(offset), pd.Timedelta("1h"))
    return f"UTC{'+' if offset > pd.Timedelta(0) else '-'}{h:02d}:{rest // pd.Timedelta('1min'):02d}"


def daily_dates(time: pd.DatetimeIndex, offset: pd.Timedelta, src: str) -> pd.DatetimeIndex:
    """The day of each daily value stamped ``time`` (UTC, as decoded) in a file whose time units
    are in a zone ``offset`` from UTC: the date of the stamp in that zone.

    A daily value of a file in local time belongs to a local day; its stamp (00:00 local, or
    any time of that day) is kept on its own local date. A local day of a zone less than 12 h
    from UTC overlaps the UTC day of its date by more than half, so the date is also the UTC day
    that holds most of it (the day that holds its middle, as with CF bounds). At 12 h or more,
    the local day lies mostly in the UTC day before (east) or after (west) its date: which day
    it is cannot be decided, and it is refused. Without an offset this is the UTC date.
    """
    if offset == pd.Timedelta(0):
        return time.floor("D")
    _refuse_far_zone(offset, src)
    return (time + offset).floor("D")


def _refuse_far_zone(offset: pd.Timedelta, src: str) -> None:
    """Daily values in a zone 12 h or more from UTC: their days cannot be decided (:func:`daily_dates`)."""
    if abs(offset) >= pd.Timedelta("12h"):
        raise DataFormatError(
            f"{src}: daily values stamped in the time zone {zone_name(offset)}: a "
            "local day there lies mostly in another UTC day than its date, so the day of each value cannot be "
            "decided (xsomo's days are UTC days). Give daily values of UTC days (or in a zone less than 12 h "
            "from UTC)."
        )


def _daily_amount(have: str, given: str, time: Any) -> bool:
    """Whether ``given`` is the file's amount label ``have`` per day (``'mm'`` -> ``'mm d-1'``) on a daily
    axis: a daily total labelled as an amount (E-OBS, CPC), read as that amount per day. Not on other
    axes: hourly amounts labelled ``'mm'`` are not millimetres a day."""
    try:
        if not xu.same_quantity(f"{have} d-1", given) or _same_dimension(have, given):
            return False
        if time is None or time.size < 2:
            return False
        return bool((np.diff(pd.DatetimeIndex(time.values).values) == np.timedelta64(1, "D")).all())
    except Exception:
        return False


def _refuse_mixed_files(
    seen: Sequence[tuple[str, dict[str, str | None], np.ndarray]],
    spaces: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> None:
    """Files of one variable in different units, or two files holding the same time stamp at
    the same cells (files of the same days on cells apart, ``spaces``, are spatial tiles: the
    west and east halves of a large request had been refused as a repeated download)."""
    spaces = spaces or {}

    @functools.cache  # (each pair of files checked once)
    def apart(a: str, b: str) -> bool:
        if a not in spaces or b not in spaces:
            return False
        (lat_a, lon_a), (lat_b, lon_b) = spaces[a], spaces[b]
        return not (np.isin(lat_a, lat_b).any() and np.isin(lon_a, lon_b).any())

    first: dict[str, tuple[str | None, str]] = {}
    for name, units, _ in seen:
        for var, u in units.items():
            if var not in first:
                first[var] = (u, name)
            elif not xu.same_quantity(first[var][0], u):
                (u0, name0) = first[var]
                raise DataFormatError(
                    f"{var!r} is in {u0!r} in {name0} but in {u!r} in {name}: files of several products or "
                    "downloads (e.g. MSWEP's Daily/ and Monthly/ folders under the path given) cannot be "
                    "combined with one unit conversion. Give the files of one product in one unit."
                )
    for var in first:  # per variable: the CDS splits one request into files of other variables
        stamps = [(t, name) for name, units, times in seen if var in units for t in times]
        if not stamps:
            continue
        values = np.array([t for t, _ in stamps])
        order = np.argsort(values, kind="stable")
        same = np.flatnonzero(values[order][1:] == values[order][:-1])
        # a stamp in two tiles is no duplicate
        dup = np.array([k for k in same if not apart(stamps[order[k]][1], stamps[order[k + 1]][1])], int)
        if dup.size:
            i, j = order[dup[0]], order[dup[0] + 1]
            a, b = stamps[i][1], stamps[j][1]
            if a in spaces and b in spaces:
                raise DataFormatError(
                    f"{a} and {b} both hold {var!r} on {pd.Timestamp(values[i])} at the same cells ({dup.size} time "
                    "stamp(s) given twice): a download repeated, files of two products under one folder, or "
                    "spatial tiles that share an edge row or column (the CDS includes both edges of an area). "
                    "Keep one file for each period and area; cut a shared edge from one of the tiles."
                )
            raise DataFormatError(
                f"{stamps[i][1]} and {stamps[j][1]} both hold {var!r} on {pd.Timestamp(values[i])} "
                f"({dup.size} time stamp(s) given twice): a download repeated, or files of two products "
                "under one folder. Keep one file for each period."
            )


def _overlap(files: Sequence[pathlib.Path]) -> str | None:
    """Which files overlap in time, as a reason for a failed combine (``None`` if none do)."""
    spans = []
    for f in files:
        try:
            with xr.open_dataset(f) as ds:
                t = next((ds[n] for n in ("time", "valid_time") if n in ds.coords), None)
                if t is None or t.size == 0:
                    continue
                spans.append((pd.Timestamp(t.values.min()), pd.Timestamp(t.values.max()), f.name))
        except Exception:  # only an explanation: the combine error stands otherwise
            return None
    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in itertools.pairwise(spans):
        if b0 <= a1:
            return (
                f"{an} ({a0} .. {a1}) and {bn} ({b0} .. {b1}) overlap in time from {b0} to {min(a1, b1)}: "
                "a download repeated or two requests sharing days. Keep one file for each period."
            )
    return None


#: MSWEP/MSWX day files are named ``YYYYDDD.nc`` (year and day of year)
_DAY_FILE = re.compile(r"(?<!\d)(\d{4})(\d{3})\.nc$")


def _day_from_name(ds: xr.Dataset) -> xr.Dataset:
    """A day file without a ``time`` axis gets the day its name (``YYYYDDD.nc``) says."""
    if "time" in ds.dims:
        return ds
    m = _DAY_FILE.search(str(ds.encoding.get("source", "")))
    if not m:
        return ds
    day = pd.Timestamp(f"{m.group(1)}-01-01") + pd.Timedelta(days=int(m.group(2)) - 1)
    if "time" in ds.coords:
        ds = ds.drop_vars("time")
    return ds.expand_dims(time=[day.to_datetime64()])

def _nc_files(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[pathlib.Path]:
    if isinstance(path, (str, os.PathLike)):
        p = pathlib.Path(path).expanduser()
        files = (
            sorted(p.rglob("*.nc"))
            if p.is_dir()
            else ([p] if p.exists() else sorted(p.parent.glob(p.name)))
        )
    else:
        files = [pathlib.Path(f) for f in path]
    if not files:
        raise DataFormatError(f"no netCDF file found at {str(path)!r}.")
    return files


def _same_dimension(a: str, b: str) -> bool:
    """Whether two units labels measure the same kind of quantity (``'mm d-1'`` and ``'m s-1'``)."""
    try:
        return bool(xu.parse_units(a).dimensionality == xu.parse_units(b).dimensionality)
    except Exception:
        return False


def open_gridded(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    variables: Mapping[str, str],
    *,
    rename: Mapping[str, str] | None = None,
    chunks: dict | str | None = None,
    units: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Open daily or sub-daily gridded files as daily canonical variables.

    Parameters
    ----------
    path
        File, list of files or folder (searched recursively for ``*.nc``).
    variables
        Canonical name -> canonical units of the variables to return.
    rename
        File variable name -> canonical name.
    chunks
        dask chunks (``None``: lazy without dask).
    units
        Units for variables that lack a ``units`` attribute (by file or canonical name). A
        file's own label is never replaced: one that differs from ``units`` is refused,
        naming the file (a mislabelled file is refused, not relabelled).

    Raises
    ------
    MissingVariableError, UnitError, DataFormatError

    Notes
    -----
    Where ``time`` names CF bounds (``time:bounds``), each value belongs to the interval
    they give, not to its stamp: daily values go to the day their interval starts (a daily
    total stamped at the end of its day, 00:00 of the next, had been read a day late), and
    bounds not one day long on a daily axis are refused.

    Time units in a zone off UTC (``"days since 2000-01-01 00:00:00 +03:00"``): daily values
    keep the date of their stamp in that zone (:func:`daily_dates`; floored to UTC days, they
    had moved to the day before); a zone 12 h or more from UTC, a zone written ambiguously
    (``"UTC+3"``, ``"CET"``: :func:`utc_offset`) and files in different zones are refused.
    Sub-daily stamps, decoded to UTC, are averaged over UTC days.

    A daily or sub-daily variable labelled as a rate per month or year (``"mm/month"``,
    ``"mm a-1"``) is refused unless ``units=`` declares that unit: read as labelled, daily totals
    so labelled were divided by ~30 without a word.
    """
    files = _nc_files(path)
    src = files[0].name if len(files) == 1 else f"{files[0].parent}/{{{files[0].name}, ...}}"
    ds = open_nc_files(files, chunks=chunks, what=f"cannot open {src}")
    if rename:
        ds = ds.rename({k: v for k, v in rename.items() if k in ds and v not in ds})
    if units:
        for k, u in units.items():
            key = (rename or {}).get(k, k)
            if key not in ds:
                continue
            have = ds[key].attrs.get("units")
            if have is None or str(have).strip() == "" or _daily_amount(str(have), u, ds.get("time")):
                ds[key].attrs["units"] = u
            elif not xu.same_quantity(str(have), u):
                # (units= had overwritten the label: 'mm/3h' relabelled 'mm d-1' read 8x too low,
                # clay labelled '1' relabelled 'percent' 100x too small; QA)
                where = _file_labelled(files, {k, key, *(o for o, n in (rename or {}).items() if n == key)}, have)
                per_day = f"{have} d-1"
                # (the example had been offered for any label: "units='degC d-1'" for a file in K; and
                # for hourly amounts, which the same message then refused again)
                time = next((ds[c] for c in ("time", "valid_time") if c in ds.coords), None)
                daily = time is None or time.size < 2 or bool(
                    (np.diff(pd.DatetimeIndex(time.values).values) >= np.timedelta64(1, "D")).all()
                )
                hint = ""
                if _same_dimension(per_day, u):
                    hint = (
                        f" (daily totals labelled as an amount take that amount per day: {per_day!r})" if daily
                        else " (the file's time steps are shorter than a day: amounts per step, not per day; "
                        "ERA5-Land's hourly accumulations are read by open_era5land, source: era5land)"
                    )
                raise UnitError(
                    f"{where}: {key!r} is labelled {have!r} but units {u!r} were given: a file's own units "
                    "label is never replaced (a mislabelled file is refused, not relabelled): leave the units "
                    f"out for this variable (units= in Python, units: in a sources file){hint}, or fix the "
                    "file's units attribute if it is wrong."
                )
    bounds = _time_bounds(ds, src)
    offset = utc_offset(ds["time"], src) if "time" in ds.coords else pd.Timedelta(0)
    missing = [v for v in variables if v not in ds]
    if missing:
        raise MissingVariableError(
            f"{src}: variable(s) {missing} missing (found {list(ds.data_vars)}). Check the file (in a sources file: "
            "its kind, e.g. a land-cover class map is kind esa_cci or cgls_lc100, fractions need a netCDF file "
            "holding them), or in Python pass rename={...}."
        )
    axis = _axis_words(ds, bounds)
    declared = {(rename or {}).get(k, k) for k in (units or {})}
    for name in variables:  # a per-month label on daily data, unless units= declared it
        label = ds[name].attrs.get("units")
        if axis is not None and name not in declared and xu.is_long_rate(label):
            where = _file_labelled(files, {name, *(o for o, n in (rename or {}).items() if n == name)}, label)
            xu.refuse_long_rate(label, name=name, source=where, axis=axis, fix=f"units={{{name!r}: {label!r}}} (in a sources file: units: {label} under {name})")
    ds = normalise_latlon(ds[list(variables)])
    out = {}
    for name, to in variables.items():
        da = xu.convert(ds[name], to, name=name, source=src)
        if da.dtype.kind == "f" and da.dtype != np.float32:
            da = da.astype("float32")
        attrs = cv.cf_attrs(name) if name in cv.VARIABLES else {**ds[name].attrs, "units": to}
        out[name] = da.assign_attrs(attrs)
        xu.check_plausible(
            out[name], PLAUSIBLE_AS.get(name, name), source=src, label=ds[name].attrs.get("units")
        )
    res = xr.Dataset(out, attrs={"source": src})
    if "time" in res.dims:
        res = _to_daily(res, src, bounds, offset)
    return res


def _axis_words(ds: xr.Dataset, bounds: tuple[np.ndarray, np.ndarray, str] | None) -> str | None:
    """``"daily"`` or ``"sub-daily"`` for a time axis of steps (and CF bounds) of at most a day;
    ``None`` without a time axis or for longer steps (refused as not daily, e.g. a monthly product)."""
    if "time" not in ds.dims:
        return None
    t = np.asarray(ds["time"].values)
    steps = np.diff(t) if t.size > 1 else np.array([np.timedelta64(1, "D")])
    if bounds is not None:
        steps = np.concatenate([steps, bounds[1] - bounds[0]])
    longest = steps.max()
    if longest > np.timedelta64(1, "D"):
        return None
    return "daily" if longest == np.timedelta64(1, "D") else "sub-daily"


def _file_labelled(files: Sequence[pathlib.Path], names: set[str], label: object) -> str:
    """The first of ``files`` whose variable (any of ``names``) carries ``label`` (for a message)."""
    if len(files) > 1:
        for f in files:
            try:
                with xr.open_dataset(f, decode_cf=False) as one:
                    if any(n in one and one[n].attrs.get("units") == label for n in names):
                        return str(f)
            except Exception:  # only for the message
                break
    return str(files[0]) if len(files) == 1 else f"{files[0].parent}/{{{files[0].name}, ...}}"


def _time_bounds(ds: xr.Dataset, src: str) -> tuple[np.ndarray, np.ndarray, str] | None:
    """``(start, end, name)`` of the CF bounds ``time`` names (``time:bounds``), else ``None``."""
    if "time" not in ds.coords:
        return None
    name = ds["time"].attrs.get("bounds") or ds["time"].encoding.get("bounds")
    if not name:
        return None
    if name not in ds.variables:
        raise DataFormatError(
            f"{src}: time names its bounds {name!r}, which the file(s) lack: without them the day each value "
            "belongs to is unknown (a total stamped at the end of its day is read a day late). Give the "
            f"files with {name!r}, or drop the time:bounds attribute if the stamps are the days' starts."
        )
    b = ds[name]
    if b.ndim != 2 or b.dims[0] != "time" or b.shape[1] != 2 or b.dtype.kind != "M":
        raise DataFormatError(
            f"{src}: the time bounds {name!r} ({dict(b.sizes)}, {b.dtype}) are not (time, 2) dates; fix them "
            "(CF: the start and end of each step, in the units of time)."
        )
    v = np.asarray(b.values)
    start, end = v.min(axis=1), v.max(axis=1)
    if np.isnat(start).any():
        raise DataFormatError(f"{src}: the time bounds {name!r} hold missing dates; fix them.")
    return start, end, str(name)


def _describe_step(d: np.ndarray) -> str:
    """A time step (the differences ``d`` between stamps) in words: monthly, yearly, N days."""
    days = np.asarray(d / np.timedelta64(1, "D"), float)
    if ((days >= 28) & (days <= 31)).all():
        return "monthly"
    if ((days >= 365) & (days <= 366)).all():
        return "yearly"
    if np.allclose(days, days[0]):
        return f"{days[0]:g} days"
    return f"{days.min():g} to {days.max():g} days"


def _not_daily(src: str, names: Sequence[object], step: str, stamps: str) -> DataFormatError:
    return DataFormatError(
        f"{src}: the time step of {', '.join(map(str, names))} is {step} ({stamps}), not one day: xsomo needs "
        "daily or sub-daily files (e.g. MSWEP's or MSWX's Daily product, not its Monthly one)."
    )


def _to_daily(
    ds: xr.Dataset,
    src: str,
    bounds: tuple[np.ndarray, np.ndarray, str] | None = None,
    offset: pd.Timedelta | None = None,
) -> xr.Dataset:
    """Daily values on UTC days: daily data labelled with its day (:func:`daily_dates`: the
    date of its stamp in the zone of the time units, or of the middle of its CF bounds), sub-daily
    data averaged over UTC days (stamps decoded to UTC, whatever the zone of the file)."""
    offset = pd.Timedelta(0) if offset is None else offset
    time = pd.DatetimeIndex(ds["time"].values)
    if time.size > 1:
        d = np.diff(time.values)
        if (d <= np.timedelta64(0, "s")).any():
            raise DataFormatError(f"{src}: time stamps are not increasing.")
        step = pd.Timedelta(np.min(d))
    else:
        step = pd.Timedelta("1D")
    names = list(ds.data_vars)
    if step >= pd.Timedelta("1D"):
        _refuse_far_zone(offset, src)  # bounds or not
    if bounds is not None:
        start, end, bname = bounds
        length = end - start
        if step >= pd.Timedelta("1D"):
            # daily: each value goes to the day that holds the middle of its interval (a daily
            # total stamped at the end of its interval, 00:00 of the next day, had been read a day
            # late; QA). Intervals of up to a day: CDO's daymean/daysum write [00:00, 23:00] for
            # hourly input, E-OBS-like 06-06 UTC days go to the day of their first 18 hours
            odd = np.flatnonzero((length > np.timedelta64(1, "D")) | (length < np.timedelta64(0, "s")))
            if odd.size:
                k = int(odd[0])
                what = f"{pd.Timestamp(start[k])} .. {pd.Timestamp(end[k])}"
                described = _describe_step(length)
                if described in ("monthly", "yearly"):
                    raise _not_daily(src, names, described, f"time bounds {bname!r}: {what}, ...")
                raise DataFormatError(
                    f"{src}: the time bounds {bname!r} of a daily axis are longer than one day ({odd.size} of "
                    f"{length.size}, first {what}); give daily values with bounds of at most one day (or "
                    "without bounds, stamped at the start of each day)."
                )
            time = pd.DatetimeIndex(start + length // 2)
        else:
            # sub-daily: each value at the start of its interval, which must lie within one day
            across = np.flatnonzero(
                pd.DatetimeIndex(start).floor("D") != pd.DatetimeIndex(end - np.timedelta64(1, "ns")).floor("D")
            )
            if across.size:
                k = int(across[0])
                raise DataFormatError(
                    f"{src}: the time bounds {bname!r} hold steps across midnight (first "
                    f"{pd.Timestamp(start[k])} .. {pd.Timestamp(end[k])}): they cannot be given to one UTC day. "
                    "Give steps within UTC days."
                )
            if time.size > 1 and (np.diff(start) <= np.timedelta64(0, "s")).any():
                raise DataFormatError(f"{src}: the time bounds {bname!r} do not increase.")
            ds = ds.assign_coords(time=pd.DatetimeIndex(start))
    if step >= pd.Timedelta("1D"):
        if time.size > 1 and step > pd.Timedelta("1D"):
            # (the MSWEP Monthly product had been called a daily axis with gaps)
            raise _not_daily(src, names, _describe_step(np.diff(time.values)), f"time stamps {time[0].date()}, {time[1].date()}, ...")
        # (with bounds: the UTC day of each interval's middle, already; the zone only names dates)
        days = time.floor("D") if bounds is not None else daily_dates(time, offset, src)
        gaps = np.flatnonzero(np.diff(days.values) != np.timedelta64(1, "D"))
        if gaps.size:
            raise DataFormatError(
                f"{src}: daily time axis has gaps (first after {days[gaps[0]].date()}); fill the missing days."
            )
        return ds.assign_coords(time=days)
    per_day = int(pd.Timedelta("1D") / step)
    counts = ds["time"].resample(time="1D").count()
    full = np.asarray((counts == per_day).values, bool)
    ok = np.flatnonzero(full)
    if ok.size:
        # a record may start or end within a day (dropped); a day short of steps inside it is a
        # missing step, which had dropped the day without a word (QA: "the time axes differ" later)
        inside = ~full[ok[0] : ok[-1] + 1]
        if inside.any():
            days = pd.DatetimeIndex(counts["time"].values)[ok[0] : ok[-1] + 1][inside]
            have = np.asarray(counts.values)[ok[0] : ok[-1] + 1][inside]
            raise DataFormatError(
                f"{src}: {days.size} day(s) inside the record lack time steps ("
                + ", ".join(f"{d.date()}: {n} of {per_day}" for d, n in zip(days[:5], have[:5], strict=True))
                + f"{', ...' if days.size > 5 else ''}; {step} steps). Download the missing steps; a daily mean "
                "from part of a day would be wrong."
            )
    for name in names:
        # a cell missing some of a day's steps (NaN in one 3-hourly field) had been given the mean of
        # the others (a 24 mm shower in the missing step: 0 mm that day), without a word
        n = ds[name].notnull().resample(time="1D").sum().sel(time=full)
        partial = ((n > 0) & (n < per_day)).load()
        if partial.any():
            first = np.argwhere(partial.transpose("time", ...).values)[0]
            cell = partial.transpose("time", ...).isel(dict(zip(("time", *partial.dims[1:]), first, strict=False)))
            at = ", ".join(f"{d} {float(cell[d]):g}" for d in cell.coords if d != "time" and cell[d].ndim == 0)
            have = int(n.transpose("time", ...).values[tuple(first)])
            raise DataFormatError(
                f"{src}: {name} lacks some of a day's {per_day} steps ({step / pd.Timedelta('1h'):g} h each) at "
                f"{int(partial.any('time').sum())} cell(s) (first at {at} on {pd.Timestamp(cell['time'].values).date()}: "
                f"{have} of {per_day}). A daily mean from part of a day would be wrong: fill or re-download the "
                "missing steps."
            )
    daily = ds.resample(time="1D").mean()
    daily = daily.sel(time=full)
    for name in daily.data_vars:
        daily[name].attrs = {**ds[name].attrs, "cell_methods": "time: mean (daily from sub-daily)"}
    return daily


def open_mswep(
    path: str | os.PathLike[str], *, chunks: dict | str | None = None, units: str | None = None
) -> xr.Dataset:
    """MSWEP-style precipitation (``precipitation``) as ``precipitation`` in mm d-1, daily."""
    return open_gridded(
        path,
        {"precipitation": "mm d-1"},
        rename={"tp": "precipitation", "pr": "precipitation"},
        chunks=chunks,
        units={"precipitation": units} if units else None,
    )


def open_mswx(
    path: str | os.PathLike[str], *, chunks: dict | str | None = None, units: str | None = None
) -> xr.Dataset:
    """MSWX-style daily mean air temperature (``air_temperature``, degC) as K, daily."""
    return open_gridded(
        path,
        {"air_temperature": "K"},
        rename={"Temp": "air_temperature", "tas": "air_temperature", "t2m": "air_temperature"},
        chunks=chunks,
        units={"air_temperature": units} if units else None,
    )


def open_static(
    path: str | os.PathLike[str], *, chunks: dict | str | None = None
) -> dict[str, xr.Dataset]:
    """Read the static inputs folder (``dem.nc``, ``landcover.nc``, ``soil.nc``, ``land_mask.nc``).

    Returns a dict file name -> Dataset; fractions are converted to 1 (percent -> fraction).

    Raises
    ------
    MissingVariableError
        A file or one of its variables is missing.
    """
    root = pathlib.Path(path)
    out = {}
    for fname, variables in STATIC_FILES.items():
        f = root / fname
        if not f.exists():
            raise MissingVariableError(
                f"static input {str(f)!r} is missing (it should hold {sorted(variables)}). Add the file."
            )
        out[fname] = open_gridded(f, variables, chunks=chunks)
    return out
