"""Gridded daily forcing and static inputs: MSWEP-style precipitation, MSWX-style air
temperature, and the static files of the sample-world layout (docs/internals.md §1).

Every reader renames ``latitude``/``longitude`` to ``lat``/``lon`` (ascending), checks
and converts units with :mod:`xsomo.units` (never guessed) and, for dynamic variables,
aggregates sub-daily steps to UTC days (rates are averaged after conversion to the
canonical per-day units, so amounts per step and rates are both handled).
"""

from __future__ import annotations

import itertools
import os
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo import units as xu
from xsomo.exceptions import DataFormatError, MissingVariableError
from xsomo.regrid import normalise_latlon

__all__ = ["STATIC_FILES", "open_gridded", "open_mswep", "open_mswx", "open_static"]

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

    def record(ds: xr.Dataset) -> xr.Dataset:
        ds = _day_from_name(ds)
        name = str(ds.encoding.get("source", "?"))
        t = next((ds[n].values for n in ("time", "valid_time") if n in ds.coords), np.array([]))
        seen.append((name, {str(v): ds[v].attrs.get("units") for v in ds.data_vars}, np.atleast_1d(t)))
        return ds

    try:
        if len(files) == 1:
            return _day_from_name(xr.open_dataset(files[0], chunks=chunks))
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
    except Exception as err:
        raise DataFormatError(f"{what}: {_overlap(files) or err}") from err
    try:
        _refuse_mixed_files(seen)
    except DataFormatError as err:
        ds.close()
        raise DataFormatError(f"{what}: {err}") from None
    return ds


def _same_units(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return bool(xu.parse_units(a) == xu.parse_units(b))
    except Exception:  # unparseable: only the same text is the same
        return a.strip() == b.strip()


def _refuse_mixed_files(seen: Sequence[tuple[str, dict[str, str | None], np.ndarray]]) -> None:
    """Files of one variable in different units, or two files holding the same time stamp."""
    first: dict[str, tuple[str | None, str]] = {}
    for name, units, _ in seen:
        for var, u in units.items():
            if var not in first:
                first[var] = (u, name)
            elif not _same_units(first[var][0], u):
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
        dup = np.flatnonzero(values[order][1:] == values[order][:-1])
        if dup.size:
            i, j = order[dup[0]], order[dup[0] + 1]
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
        Units for variables that lack a ``units`` attribute (by file or canonical name).

    Raises
    ------
    MissingVariableError, UnitError, DataFormatError
    """
    files = _nc_files(path)
    src = files[0].name if len(files) == 1 else f"{files[0].parent}/{{{files[0].name}, ...}}"
    ds = open_nc_files(files, chunks=chunks, what=f"cannot open {src}")
    if rename:
        ds = ds.rename({k: v for k, v in rename.items() if k in ds and v not in ds})
    if units:
        for k, u in units.items():
            key = (rename or {}).get(k, k)
            if key in ds:
                ds[key].attrs["units"] = u
    missing = [v for v in variables if v not in ds]
    if missing:
        raise MissingVariableError(
            f"{src}: variable(s) {missing} missing (found {list(ds.data_vars)}). Check the file (in a sources file: "
            "its kind, e.g. a land-cover class map is kind esa_cci or cgls_lc100, fractions need a netCDF file "
            "holding them), or in Python pass rename={...}."
        )
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
        res = _to_daily(res, src)
    return res


def _to_daily(ds: xr.Dataset, src: str) -> xr.Dataset:
    time = pd.DatetimeIndex(ds["time"].values)
    if time.size > 1:
        d = np.diff(time.values)
        if (d <= np.timedelta64(0, "s")).any():
            raise DataFormatError(f"{src}: time stamps are not increasing.")
        step = pd.Timedelta(np.min(d))
    else:
        step = pd.Timedelta("1D")
    if step >= pd.Timedelta("1D"):
        if step != pd.Timedelta("1D") or np.any(
            np.diff(time.floor("D").values) != np.timedelta64(1, "D")
        ):
            gaps = np.flatnonzero(np.diff(time.floor("D").values) != np.timedelta64(1, "D"))
            first = time[gaps[0]] if gaps.size else time[0]
            raise DataFormatError(
                f"{src}: daily time axis has gaps (first after {first.date()}); fill the missing days."
            )
        return ds.assign_coords(time=time.floor("D"))
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
