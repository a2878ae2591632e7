"""ERA5-Land readers: daily and hourly grids, pynetcf cell files and point series.

Returns daily data under canonical names (``conventions.DYNAMIC``) and soil moisture
``sm(layer, time, lat, lon)`` on the target layers, the depth-weighted average of
ERA5-Land's 0-7, 7-28 and 28-100 cm layers (``conventions.depth_weights``).

Hourly ERA5-Land ``tp``, ``ssr`` and ``str`` are accumulated since 00 UTC: the value
at hour *h* is the sum from 00 UTC to *h*, and the 00 UTC value closes the previous
day. They are de-accumulated to hourly increments, assigned to the day that holds the
start of each hour, and summed; a plain daily sum of the raw hours overstates the total
about tenfold. A day's total is the sum of its 24 increments, i.e. the 00 UTC value
of the next day.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo import units as xu
from xsomo.exceptions import DataFormatError, MissingVariableError, UnitError, XsomoValueError
from xsomo.io.gridded import daily_dates, open_nc_files, utc_offset, zone_name

__all__ = ["daily_from_hourly", "deaccumulate", "grib_valid_time", "layer_sm", "open_era5land"]

#: names seen in real files -> ERA5 short names
ALIASES: dict[str, str] = {
    "2t": "t2m",
    "temperature": "t2m",
    "air_temperature": "t2m",
    "precipitation": "tp",
    "total_precipitation": "tp",
    "skin_temperature": "skt",
    "surface_net_solar_radiation": "ssr",
    "surface_net_thermal_radiation": "str",
    "volumetric_soil_water_layer_1": "swvl1",
    "volumetric_soil_water_layer_2": "swvl2",
    "volumetric_soil_water_layer_3": "swvl3",
    "volumetric_soil_water_layer_4": "swvl4",
    **{f"soil_moisture_{k}": f"swvl{k}" for k in range(1, 5)},
    # CF names of ERA5 daily files (e.g. xclim's): fluxes in kg m-2 s-1 and W m-2
    "tas": "t2m",
    "pr": "tp",
    "rss": "ssr",
    "rls": "str",
    "ts": "skt",
}
ACCUMULATED = ("tp", "ssr", "str")
#: accumulated quantities that cannot be negative (packing noise is clipped)
NON_NEGATIVE = ("tp", "ssr")
SWVL = ("swvl1", "swvl2", "swvl3", "swvl4")


#: file name endings of GRIB files (read with cfgrib)
GRIB_SUFFIXES = (".grib", ".grb", ".grib1", ".grib2", ".grb2")


def _is_grib(f: pathlib.Path) -> bool:
    return f.suffix.lower() in GRIB_SUFFIXES


def _files(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[pathlib.Path]:
    if isinstance(path, (str, os.PathLike)):
        p = pathlib.Path(path).expanduser()
        if p.is_dir():
            files = sorted(
                f
                for f in p.iterdir()
                if (f.suffix == ".nc" and f.name != "grid.nc") or _is_grib(f)
            )
        elif p.exists():
            files = [p]
        else:
            files = sorted(pathlib.Path(p.parent).glob(p.name))
    else:
        files = [pathlib.Path(f) for f in path]
    if not files:
        raise DataFormatError(
            f"no ERA5-Land netCDF or GRIB file found at {str(path)!r}. Pass a file, a list or a "
            "folder of .nc / .grib files."
        )
    return files


def _is_cell_file(ds: xr.Dataset) -> bool:
    return "locations" in ds.dims and ds.attrs.get("featureType") == "timeSeries"


def _is_cell_netcdf(path: pathlib.Path) -> bool:
    """:func:`_is_cell_file` of a file, read with netCDF4 directly (no xarray handle to close);
    True where netCDF4 cannot tell, so that xarray's reading names the problem."""
    try:
        import netCDF4

        with netCDF4.Dataset(path) as nc:
            return "locations" in nc.dimensions and getattr(nc, "featureType", None) == "timeSeries"
    except Exception:
        return True


def _lattice_step(values: np.ndarray) -> float | None:
    """The step of the regular lattice that holds every coordinate in ``values`` (rounded to
    1e-4 degrees): the greatest common divisor of their distances; None for a single value."""
    units = np.unique(np.round(values * 1e4).astype(np.int64))
    if units.size < 2:
        return None
    return float(np.gcd.reduce(np.diff(units))) / 1e4


def _cells_to_grid(ds: xr.Dataset) -> xr.Dataset:
    """pynetcf cell file(s) ``(locations, time)`` -> ``(time, lat, lon)`` on their regular grid.

    The grid step is that of the points (ERA5-Land's 0.1 degree, ERA5's 0.25, ...: the
    largest step that holds every point's latitude, and longitude). Points that do not lie
    on such a grid are refused, never moved."""
    lat = np.round(ds["lat"].values.astype(float), 4)
    lon = np.round(ds["lon"].values.astype(float), 4)
    steps = {"lat": _lattice_step(lat), "lon": _lattice_step(lon)}
    known = [v for v in steps.values() if v is not None]
    default = known[0] if len(known) == 1 else cv.RESOLUTION  # one row or column: square cells
    steps = {k: default if v is None else v for k, v in steps.items()}
    for name, values in (("lat", lat), ("lon", lon)):
        step = steps[name]
        size = (values.max() - values.min()) / step + 1
        off = (values - values.min()) / step
        if step < 0.01 or size > 100 * max(1, values.size) or np.abs(off - np.round(off)).max() > 1e-3:
            raise DataFormatError(
                f"the cell file's points are not on a regular {name} grid (step {step:g} degrees from "
                f"their {name} values {np.unique(values)[:6].tolist()}...); pass the points of one regular "
                "grid (ERA5-Land 0.1 degree, ERA5 0.25 degree)"
            )
    glat = np.round(np.arange(lat.min(), lat.max() + steps["lat"] / 2, steps["lat"]), 4)
    glon = np.round(np.arange(lon.min(), lon.max() + steps["lon"] / 2, steps["lon"]), 4)
    i = np.round((lat - glat[0]) / steps["lat"]).astype(int)
    j = np.round((lon - glon[0]) / steps["lon"]).astype(int)
    out = {}
    for name, da in ds.data_vars.items():
        if da.dims != ("locations", "time") or da.dtype.kind not in "fiu":
            continue
        arr = np.full(
            (ds.sizes["time"], glat.size, glon.size),
            np.nan,
            dtype=da.dtype if da.dtype.kind == "f" else "f8",
        )
        arr[:, i, j] = da.values.T
        out[name] = (("time", "lat", "lon"), arr, da.attrs)
    return xr.Dataset(
        out, coords={"time": ds["time"].values, "lat": glat, "lon": glon}, attrs=ds.attrs
    )


def _steps_with_data(ds: xr.Dataset) -> np.ndarray:
    """``(time, step)`` booleans of a cfgrib hypercube: whether any variable has a value there.

    Read one reference time at a time (a slice of the file in memory, never all of it)."""
    names = [v for v in ds.data_vars if {"time", "step"} <= set(ds[v].dims)]
    has = np.zeros((ds.sizes["time"], ds.sizes["step"]), dtype=bool)
    if not names:
        return ~has
    for i in range(ds.sizes["time"]):
        for v in names:
            da = ds[v].isel(time=i).transpose("step", ...)
            other = [d for d in da.dims if d != "step"]
            ok = da.notnull().any(other) if other else da.notnull()
            has[i] |= np.asarray(ok.values, dtype=bool)
    return has


def grib_valid_time(ds: xr.Dataset, f: pathlib.Path) -> xr.Dataset:
    """One time axis ``time`` = cfgrib's ``valid_time`` (forecast ``time`` x ``step`` stacked).

    cfgrib opens accumulations as a full (reference time x step) block and fills the pairs
    without a GRIB message with NaN: a CDS request's 00 UTC value is step 24 of the day
    before, so that day brings 23 placeholder hours (01-23 UTC) without data, and the last
    day's step 24 another. Those valid times, with no value in any variable of the block,
    are dropped: kept, they appeared twice when files of consecutive requests were joined
    (once with data, once all NaN) and the record was refused.
    """
    drop = [c for c in ("number", "surface", "depthBelowLandLayer", "heightAboveGround") if c in ds.coords]
    ds = ds.drop_vars(drop)
    if "step" in ds.dims:
        if "time" not in ds.dims:
            ds = ds.expand_dims("time")
        ds = ds.transpose("time", "step", ...)
        has = _steps_with_data(ds)
        ds = ds.stack(_t=("time", "step"))
        vt = ds["valid_time"].values
        ds = ds.drop_vars(["_t", "time", "step", "valid_time"]).assign_coords(_t=vt).rename(_t="time")
        keep = ~pd.isna(ds["time"].values) & has.ravel()
        if not keep.any():
            raise DataFormatError(
                f"{f}: holds no values (every field is missing): a box wholly over the sea (ERA5-Land has no "
                "values there) or an empty download. Download a box over land."
            )
        ds = ds.isel(time=np.flatnonzero(keep)).transpose("time", ...)
    else:
        vt = ds["valid_time"].values
        ds = ds.drop_vars([c for c in ("time", "step", "valid_time") if c in ds.coords])
        if "time" in ds.dims:
            ds = ds.assign_coords(time=vt)
        else:
            ds = ds.expand_dims(time=np.atleast_1d(vt))
    if ds.indexes["time"].has_duplicates:
        raise DataFormatError(f"{f}: the same valid time appears twice; pass each field once.")
    return ds


def _open_grib(f: pathlib.Path) -> xr.Dataset:
    """A GRIB file as one Dataset (cfgrib; every hypercube, e.g. the soil levels, merged)."""
    try:
        import cfgrib
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise DataFormatError(f"{f}: reading GRIB needs cfgrib and eccodes (pip install cfgrib eccodes).") from err
    try:
        parts = cfgrib.open_datasets(str(f), backend_kwargs={"indexpath": ""})
    except Exception as err:
        raise DataFormatError(f"{f}: cannot open as GRIB ({err}). Check the file.") from err
    if not parts:
        raise DataFormatError(f"{f}: no GRIB message cfgrib can read.")
    parts = [grib_valid_time(d, f) for d in parts]
    grids = {(d.sizes.get("latitude"), d.sizes.get("longitude"), float(d["latitude"].values[0]) if "latitude" in d.coords else None) for d in parts}
    if len(grids) > 1:
        raise DataFormatError(
            f"{f}: the GRIB messages lie on {len(grids)} different grids "
            f"({sorted(map(str, grids))}); split the file by grid (e.g. grib_copy) and pass one grid."
        )
    try:
        return xr.merge(parts, compat="override", join="outer", combine_attrs="drop_conflicts")
    except Exception as err:
        raise DataFormatError(f"{f}: cannot merge the GRIB fields ({err}).") from err


def _refuse_shared_hours(parts: list[xr.Dataset], files: list[pathlib.Path]) -> None:
    """Refuse GRIB files that hold the same valid time (after :func:`grib_valid_time` dropped
    cfgrib's placeholders, every time left carries data): joined, the hour came twice."""
    if len(parts) < 2:
        return
    stamps = pd.DatetimeIndex(np.concatenate([p["time"].values for p in parts]))
    owner = np.repeat(np.arange(len(parts)), [p.sizes["time"] for p in parts])
    dup = stamps.duplicated(keep=False)
    if not dup.any():
        return
    first = stamps[dup].min()
    holders = sorted({files[k].name for k in owner[np.asarray(stamps == first)]})
    n = int(stamps[dup].nunique())
    raise DataFormatError(
        f"{[f.name for f in files]}: the hour {first} comes from more than one GRIB file ({', '.join(holders)}; "
        f"{n} such hour(s) in all). Pass each hour once: requests that overlap hold the same hours (remove the "
        "overlap); GRIB files of separate groups of variables for the same hours cannot be joined (request "
        "all variables together)."
    )


def _refuse_other_grids(parts: list[xr.Dataset], files: list[pathlib.Path]) -> None:
    """Refuse GRIB files on different grids: joined, they made one irregular grid with NaN between
    the cells of each (5° and 4° files: 73 x 144 cells), or an hour "missing at 1192 cells"."""
    axes = [[np.asarray(d[c].values, float) if c in d.coords else np.empty(0) for c in ("latitude", "longitude")]
            for d in parts]  # fmt: skip
    for (lat, lon), f in zip(axes[1:], files[1:], strict=True):
        if any(a.shape != b.shape or not np.allclose(a, b, atol=1e-6) for a, b in zip(axes[0], (lat, lon), strict=True)):
            (lat0, lon0) = axes[0]
            raise DataFormatError(
                f"{files[0].name} and {f.name} lie on different grids ({lat0.size} x {lon0.size} cells from "
                f"{lat0[:1]} {lon0[:1]}; {lat.size} x {lon.size} cells from {lat[:1]} {lon[:1]}): pass files of "
                "one grid (request every period with the same area and grid), or regrid them first."
            )


def _open(files: list[pathlib.Path], chunks: dict | str | None) -> xr.Dataset:
    if any(_is_grib(f) for f in files):
        if not all(_is_grib(f) for f in files):
            raise DataFormatError(
                f"{[f.name for f in files]}: do not mix GRIB and netCDF files; pass one format."
            )
        parts = [_open_grib(f) for f in files]
        _refuse_other_grids(parts, files)
        # a land-sea mask downloaded once (a file of lsm alone): time-invariant, joined after the hours
        alone = [set(p.data_vars) == {"lsm"} for p in parts]
        masks = [p for p, a in zip(parts, alone, strict=True) if a] if not all(alone) else []
        if masks:
            files = [f for f, a in zip(files, alone, strict=True) if not a]
            parts = [p for p, a in zip(parts, alone, strict=True) if not a]
        _refuse_shared_hours(parts, files)
        try:
            ds = parts[0] if len(parts) == 1 else xr.concat(
                parts, dim="time", data_vars="minimal", coords="minimal", compat="override", join="outer"
            ).sortby("time")
            if masks and "lsm" not in ds:
                lsm = masks[0]["lsm"]
                lsm = lsm.max("time", skipna=True).assign_attrs(lsm.attrs) if "time" in lsm.dims else lsm
                ds = xr.merge([ds, lsm.to_dataset()], compat="override", join="outer", combine_attrs="override")
        except Exception as err:
            raise DataFormatError(f"cannot combine the GRIB files {[f.name for f in files]}: {err}") from err
        ds.attrs["era5land_source_format"] = "GRIB (cfgrib)"
        return ds
    if not _is_cell_netcdf(files[0]):
        # (the first file had been opened with xarray to look, closed and opened again: closing an
        # xarray handle of a file that another handle in the session holds open - the user's
        # notebook, an earlier lazy call - crashed the process in netCDF4 / HDF5 (SIGSEGV) with
        # xarray 2026.9 and a scalar string coordinate, as the real crspy extract has)
        return open_nc_files(
            files, chunks=chunks, what=f"cannot combine the ERA5-Land files {[f.name for f in files]}"
        )
    try:
        first = xr.open_dataset(files[0])
    except Exception as err:
        raise DataFormatError(
            f"{files[0]}: cannot open as netCDF ({err}). Check the file."
        ) from err
    if _is_cell_file(first):
        # each file opened once (the first is not closed and opened again: with another handle
        # of the same file open in the session, netCDF4 / HDF5 crashed the process on that)
        with first:
            parts = [first.load()]
        for f in files[1:]:
            with xr.open_dataset(f) as d:
                if not _is_cell_file(d):
                    raise DataFormatError(
                        f"{f}: not a pynetcf cell file like {files[0].name}; do not mix formats."
                    )
                parts.append(d.load())
        cat = xr.concat(
            parts,
            dim="locations",
            data_vars="minimal",
            coords="minimal",
            compat="override",
            join="outer",
        )
        ds = _cells_to_grid(cat)
        if "units" in parts[0]["time"].encoding:  # (its zone, read by utc_offset)
            ds["time"].encoding["units"] = parts[0]["time"].encoding["units"]
        ds.attrs["era5land_source_format"] = "pynetcf cell files"
        return ds
    first.close()
    return open_nc_files(
        files, chunks=chunks, what=f"cannot combine the ERA5-Land files {[f.name for f in files]}"
    )


def _normalise(ds: xr.Dataset) -> xr.Dataset:
    # the CDS's newer netCDF layout: valid_time, an ensemble "number" and "expver" (ERA5 / ERA5T)
    if "expver" in ds.dims:  # older layout: one slice per experiment version, NaN in the other
        parts = [ds.isel(expver=k, drop=True) for k in range(ds.sizes["expver"])]
        ds = parts[0]
        for part in parts[1:]:
            ds = ds.combine_first(part)
    if "number" in ds.dims:
        if ds.sizes["number"] != 1:
            raise DataFormatError(
                f"the data hold {ds.sizes['number']} ensemble members ('number'); pass one member."
            )
        ds = ds.isel(number=0, drop=True)
    ds = ds.drop_vars([c for c in ("number", "expver") if c in ds.coords])
    rename = {}
    if "valid_time" in ds.dims and "time" not in ds.dims:
        rename["valid_time"] = "time"
    rename.update(
        {
            a: b
            for a, b in (("latitude", "lat"), ("longitude", "lon"))
            if a in ds.dims or a in ds.coords
        }
    )
    rename.update({n: ALIASES[n] for n in ds.data_vars if n in ALIASES and ALIASES[n] not in ds})
    ds = ds.rename(rename)
    for old, new in rename.items():
        if new in ds.data_vars:
            ds[new].attrs.setdefault("xsomo_file_name", old)
    for dim in ("lat", "lon"):
        if dim in ds.dims and ds.sizes[dim] > 1 and not np.all(np.diff(ds[dim].values) > 0):
            ds = ds.sortby(dim)
    if "time" not in ds.dims:
        raise DataFormatError("the ERA5-Land data has no 'time' (or 'valid_time') dimension.")
    return ds


def deaccumulate(acc: xr.DataArray, *, clip_negative: bool = True) -> xr.DataArray:
    """Hourly increments of an ERA5-Land quantity accumulated since 00 UTC.

    The value stamped *t* covers the hour ending at *t*. At 01 UTC the accumulation
    restarts, so the increment is the value itself; at every other hour (00 UTC, which
    closes the previous day, included) it is the difference to the previous hour.

    Parameters
    ----------
    acc
        Hourly data with a regular ``time`` axis.
    clip_negative
        Set negative increments (GRIB packing noise) to 0; use for non-negative
        quantities only (not for ``str``, which is negative).

    Examples
    --------
    >>> t = pd.date_range("2020-01-01 01:00", periods=24, freq="h")
    >>> acc = xr.DataArray(np.arange(1.0, 25.0), coords={"time": t}, dims="time")
    >>> bool((deaccumulate(acc) == 1.0).all())
    True
    """
    hour = acc["time"].dt.hour
    prev = acc.shift(time=1)
    inc = xr.where(hour == 1, acc, acc - prev)
    if clip_negative:
        inc = inc.clip(min=0.0)
    inc.attrs = dict(acc.attrs)
    return inc


def _check_hourly(time: pd.DatetimeIndex, source: str) -> None:
    step = pd.Timedelta("1h")
    d = np.diff(time.values).astype("timedelta64[s]")
    bad = np.flatnonzero(d != np.timedelta64(3600, "s"))
    if bad.size:
        k = int(bad[0])
        if d[k] <= np.timedelta64(0, "s"):
            what = f"time stamps not increasing at {time[k + 1]}"
        else:
            missing = pd.date_range(time[k] + step, time[k + 1] - step, freq="h")
            what = f"{len(missing)} missing hour(s) from {missing[0]} to {missing[-1]}"
        raise DataFormatError(
            f"{source}: hourly ERA5-Land data has {what} ({bad.size} gap(s) in all). Download the missing "
            "hours; daily values from incomplete days would be wrong."
        )


def _check_daily(time: pd.DatetimeIndex, source: str) -> None:
    """Daily data must hold every day once, in order: a missing day is an error, as for hours."""
    days = time.floor("D")
    d = np.diff(days.values).astype("timedelta64[D]")
    bad = np.flatnonzero(d != np.timedelta64(1, "D"))
    if bad.size:
        k = int(bad[0])
        if d[k] <= np.timedelta64(0, "D"):
            what = f"time stamps not increasing at {days[k + 1].date()} (a day twice, or files out of order)"
        else:
            missing = pd.date_range(days[k] + pd.Timedelta("1D"), days[k + 1] - pd.Timedelta("1D"))
            what = (
                f"{len(missing)} missing day(s) from {missing[0].date()} to {missing[-1].date()}"
            )
        raise DataFormatError(
            f"{source}: daily ERA5-Land data has {what} ({bad.size} gap(s) in all). Download the "
            "missing days (or the missing file of a year); a model fed across a gap learns wrong dynamics."
        )


#: A fall of an accumulated non-negative variable within a day larger than this share of its
#: largest value is no packing noise (ERA5-Land GRIB: ~1e-8 m of tp).
ACCUMULATION_FALL = 1e-3
#: A fall within a day by this share of the largest value refuses the file even where falls are
#: rarer than 0.1 % of the cell-hours (a dry record of per-hour amounts).
BIG_FALL = 0.1


def _is_rate(label: str) -> bool:
    """Whether a units label is per unit of time (``kg m-2 s-1``, ``mm h-1``, ``W m-2``)."""
    if xu.rate_period_days(label) is not None:
        return True
    try:
        return xu.parse_units(label).dimensionality == xu.ureg.Unit("W m-2").dimensionality
    except Exception:
        return False


def _check_accumulated(acc: xr.DataArray, inc: xr.DataArray, name: str, source: str) -> None:
    """Refuse hourly ``tp`` / ``ssr`` that are not accumulated from 00 UTC.

    ERA5-Land's accumulations never fall within a day (bar packing noise); ERA5's single-level
    hourly data holds each hour's own amount instead, which de-accumulating turned into 1-10 %
    of the true daily totals without a sign. Falls by more than :data:`ACCUMULATION_FALL` of
    the largest value at more than 0.1 % of the cell-hours (at least one), or any fall by more
    than :data:`BIG_FALL` of it, say it is such data.
    """
    later = inc.where(inc["time"].dt.hour != 1)  # 01 UTC: the accumulation restarts
    scale = float(np.abs(acc).max())
    if not np.isfinite(scale) or scale <= 0:
        return
    falls = later < -ACCUMULATION_FALL * scale
    n_falls, n_hours = int(falls.sum()), int(later.notnull().sum())
    # a fall by a tenth of the record's largest value is no packing noise however rare: per-hour
    # amounts of a dry month (rain in 0.08 % of cell-hours) had passed as accumulations, and
    # July's mean rain became 0.27 mm instead of 5.04 (hostile-input QA)
    big = bool((later < -BIG_FALL * scale).any())
    if big or n_falls > 0.001 * n_hours:  # (a short file of one shower has 1-2 falls: no floor of 2)
        when = falls.any([d for d in falls.dims if d != "time"])
        first = pd.Timestamp(when["time"].values[int(when.values.argmax())])
        fname = acc.attrs.get("xsomo_file_name", name)
        label = acc.attrs.get("units")
        if label is not None and _is_rate(str(label)):
            # a rate (kg m-2 s-1, mm h-1): summing its hours, as the advice for amounts says, had
            # given daily totals 24 times too large, accepted (hostile-input QA)
            raise DataFormatError(
                f"{source}: hourly {fname} in {label!r} is a rate, not an accumulation from 00 UTC as ERA5-Land's "
                f"{name} is (it falls within the day at {n_falls} of {n_hours} cell-hours, first at {first}). "
                f"Average the hours of each day to a daily mean rate, units unchanged (e.g. da = ds['{fname}']; "
                "da.resample(time='1D').mean(), for a rate stamped at the start of its hour), and pass daily "
                "files; do not sum them."
            )
        raise DataFormatError(
            f"{source}: hourly {fname} falls within the day at {n_falls} of {n_hours} cell-hours (first at "
            f"{first}): it is not accumulated from 00 UTC as ERA5-Land's {name} is. ERA5 single-level hourly "
            f"data holds each hour's own amount; sum the hours ending 01..00 UTC to daily totals yourself "
            f"(e.g. da = ds['{fname}']; da.assign_coords(time=da.time - pd.Timedelta('1h')).resample(time='1D')"
            ".sum()) and pass daily files, or use ERA5-Land."
        )


def _time_invariant_lsm(ds: xr.Dataset) -> tuple[xr.Dataset, xr.DataArray | None]:
    """``ds`` without a land-sea mask downloaded once (its own file in the folder, one time
    stamp) and that mask, time-invariant; ``(ds, None)`` where ``lsm`` is absent or holds
    every time step.

    Merged with hourly files, a one-time ``lsm`` was NaN at every other hour: every day was
    dropped (a raw IndexError followed), or its time stamp outside the record read as 1 415
    missing hours (QA).
    """
    if "lsm" not in ds or "time" not in ds["lsm"].dims or ds.sizes["time"] < 2:
        return ds, None
    lsm = ds["lsm"]
    other = [d for d in lsm.dims if d != "time"]
    has = np.asarray(lsm.notnull().any(other).values) if other else np.asarray(lsm.notnull().values)
    if has.all():
        return ds, None
    stamps = np.flatnonzero(has)
    static = lsm.isel(time=stamps).max("time", skipna=True)
    rest = ds.drop_vars("lsm")
    names = [v for v in rest.data_vars if "time" in rest[v].dims]
    if names:  # time stamps that only the mask's file brought in
        probe = rest[names].isel(time=stamps)
        alone = np.array([not any(bool(probe[v].isel(time=k).notnull().any()) for v in names) for k in range(stamps.size)])
        rest = rest.drop_isel(time=stamps[alone])
    return rest, static.assign_attrs(lsm.attrs)


def _refuse_hourly_extract(ds: xr.Dataset, hours: set[int], source: str) -> None:
    """Daily data of accumulated variables that the hourly product delivered (its GRIB
    ``stepType`` is ``accum``): one value a day taken from the hourly ERA5-Land product.

    A request of the hourly product at 00 UTC only is a common way to get daily totals, but
    its 00 UTC ``tp`` closes the *previous* day and its ``t2m`` is a snapshot: read as the
    values of the day they are stamped with, precipitation came one day late (QA: 24 mm/day
    off) and air temperature 5 K from the daily mean. The CDS's ERA5-Land daily statistics
    have no accumulated variables, so such a file is this extract.
    """
    accum = [str(v) for v in ACCUMULATED if v in ds and str(ds[v].attrs.get("GRIB_stepType", "")).lower() == "accum"]
    instant = [
        str(v) for v, da in ds.data_vars.items()
        if "time" in da.dims and str(da.attrs.get("GRIB_stepType", "")).lower() == "instant"
    ]  # fmt: skip
    # (also instantaneous fields alone: a 00 UTC-only request of t2m was read as daily means, up to
    # 6.8 K off, -0.5 K on average, on the real UK March 2019 file; the CDS's daily statistics come as
    # netCDF, never GRIB)
    if accum or (instant and ds.sizes.get("time", 0) > 1):
        what = (
            f"{', '.join(accum)} are its accumulations, GRIB stepType 'accum'" if accum
            else f"{', '.join(instant)}: GRIB stepType 'instant'"
        )
        raise DataFormatError(
            f"{source}: one value a day (at {', '.join(f'{h:02d}' for h in sorted(hours))} UTC) of the hourly "
            f"ERA5-Land product ({what}): the 00 UTC value of an accumulation is the total of the previous day, "
            "and instantaneous variables (t2m, skt, swvl) are one snapshot, not a daily mean (a 00 UTC temperature "
            "is several K off). Download all 24 hours of each day (plus 00 UTC of the day after the last); xsomo "
            "de-accumulates and aggregates them."
        )


def daily_from_hourly(ds: xr.Dataset, *, source: str = "ERA5-Land data") -> xr.Dataset:
    """Aggregate hourly ERA5-Land variables (ERA5 short names) to UTC days.

    Accumulated ``tp``, ``ssr``, ``str`` are de-accumulated (:func:`deaccumulate`) and
    summed over the hours ending 01 UTC .. 00 UTC next day (so the sum equals the
    00 UTC value that closes the day); negative daily totals of ``tp`` and ``ssr``
    (GRIB packing noise, ~1e-8) are set to 0. Other variables are averaged over
    00..23 UTC. Days without all 24 hours (the ends of the record) are dropped. Raises
    :class:`DataFormatError` on missing hours inside the record.
    """
    time = pd.DatetimeIndex(ds["time"].values)
    _check_hourly(time, source)
    out = {}
    start_label = xr.DataArray(
        (time - pd.Timedelta("1h")).floor("D"), coords={"time": ds["time"]}, dims="time"
    )
    inst_label = xr.DataArray(time.floor("D"), coords={"time": ds["time"]}, dims="time")
    for name, da in ds.data_vars.items():
        if "time" not in da.dims:
            out[name] = da
            continue
        if name in ACCUMULATED:
            # unclipped increments telescope to the 00 UTC value closing each day; the
            # daily total is clipped instead (packing noise), so no noise is added up
            inc = deaccumulate(da, clip_negative=False)
            # the first hour of the record has no previous value unless it is 01 UTC
            inc = inc.where(~((inc["time"] == inc["time"][0]) & (inc["time"].dt.hour != 1)))
            if name in NON_NEGATIVE:
                _check_accumulated(da, inc, name, source)
            grp = inc.assign_coords(day=start_label).groupby("day")
            total = grp.sum(skipna=False)
            n = inc.notnull().assign_coords(day=start_label).groupby("day").sum()
            daily = total.where(n == 24)
            if name in NON_NEGATIVE:
                daily = daily.clip(min=0.0)
            daily.attrs = {**da.attrs, "cell_methods": "time: sum (de-accumulated)"}
        else:
            grp = da.assign_coords(day=inst_label).groupby("day")
            n = da.notnull().assign_coords(day=inst_label).groupby("day").sum()
            daily = grp.mean(skipna=False).where(n == 24)
            daily.attrs = {**da.attrs, "cell_methods": "time: mean"}
        out[name] = daily.rename(day="time")
    res = xr.Dataset(out, attrs=ds.attrs)
    return _complete_days(res, source)


def _complete_days(res: xr.Dataset, source: str) -> xr.Dataset:
    """``res`` without the incomplete days at the ends of the record (a record starting or
    ending within a day); refuses a day without a variable inside the record and a cell
    missing on some days only.

    Per variable, one pass over the daily values gives the days with any value and the
    days with a value per cell. A day inside the record on which a variable has no value
    at all had been dropped without a word (ERA5-Land downloaded in one file per group of
    variables, one file missing: the other files kept the hours complete); a cell with a
    value on some days only had been filled from its neighbours by the regridding.
    """
    import dask

    names = [n for n in res.data_vars if "time" in res[n].dims]
    if not names:
        return res
    per_day, per_cell = {}, {}
    for name in names:
        ok = res[name].notnull()
        other = [d for d in ok.dims if d != "time"]
        per_day[name] = ok.any(other) if other else ok
        per_cell[name] = ok.sum("time") if other else None
    days_any, cells_n = dask.compute(per_day, per_cell)
    full = np.logical_and.reduce([np.asarray(days_any[n].values) for n in names])
    kept = np.flatnonzero(full)
    if kept.size == 0:
        return res.isel(time=kept)
    first, last = int(kept[0]), int(kept[-1])
    times = pd.DatetimeIndex(res["time"].values)
    for name in names:
        inside = np.asarray(days_any[name].values)[first : last + 1]
        if not inside.all():
            gone = times[first:last + 1][~inside]
            raise DataFormatError(
                f"{source}: {name} has no value on {gone.size} day(s) inside the record ({', '.join(str(t.date()) for t in gone[:5])}"
                f"{', ...' if gone.size > 5 else ''}) while the other variables have them: a file of that "
                f"variable is missing (the CDS delivers accumulated and instantaneous variables in separate files). "
                "Download it; a day left out would break the daily axis."
            )
    whole, res = res, res.isel(time=slice(first, last + 1))
    n_days = last - first + 1
    dropped = [k for k in range(times.size) if k < first or k > last]  # the incomplete end days
    for name in names:
        counts = cells_n[name]
        if counts is None:
            continue
        # a cell's count over the kept days: its count minus its values on the dropped end days
        n = np.asarray(counts.values, float)
        if dropped:
            n = n - np.asarray(whole[name].isel(time=dropped).notnull().sum("time").values, float)
        partial = (n > 0) & (n < n_days)
        if partial.any():
            k = np.unravel_index(int(np.flatnonzero(partial.ravel())[0]), partial.shape)
            cell = {d: float(counts[d].values[i]) for d, i in zip(counts.dims, k, strict=True) if d in counts.coords}
            series = res[name].isel(dict(zip(counts.dims, k, strict=True))).load()
            day = pd.Timestamp(series["time"].values[int(np.flatnonzero(series.isnull().values)[0])]).date()
            raise DataFormatError(
                f"{source}: {name} is missing at {int(partial.sum())} cell(s) on some days only (first at "
                f"{', '.join(f'{d} {v:g}' for d, v in cell.items())} on {day}: an hour of that day is missing "
                "or masked there). Regridding would fill such a cell from its neighbours without a word; "
                "download the file again or fill the gap yourself."
            )
    return res


def layer_sm(ds: xr.Dataset, layers: Iterable[int] = cv.LAYER_NUMBERS) -> xr.DataArray | None:
    """Depth-weighted ``sm(layer, ...)`` from ``swvl1``-``swvl3`` (ERA5 short names).

    A layer is computed only when every ERA5-Land layer it overlaps is present; with
    ``swvl1`` alone (pynetcf cell files) layer 1 is ``swvl1`` (0-7 cm stands for 0-10 cm),
    which is noted in the ``comment`` attribute.
    """
    have = [n for n in SWVL if n in ds]
    if not have:
        return None
    parts, numbers, notes = [], [], []
    for number in layers:
        lay = cv.layer_by_number(int(number))
        w = cv.depth_weights(lay.top, lay.bottom)
        need = [SWVL[k] for k in np.flatnonzero(w > 0)]
        if all(n in ds for n in need):
            terms = [ds[SWVL[k]] * float(w[k]) for k in np.flatnonzero(w > 0)]
            acc = terms[0]
            for term in terms[1:]:
                acc = acc + term
        elif number == 1 and "swvl1" in ds and "swvl2" not in ds:
            acc = ds["swvl1"]
            notes.append("layer 1 is swvl1 (0-7 cm) alone: the data has no swvl2")
        else:
            continue
        parts.append(acc)
        numbers.append(int(number))
    if not parts:
        return None
    sm = xr.concat(parts, dim=cv.LAYER, coords="minimal", compat="override").assign_coords(
        cv.layer_coords(tuple(numbers))
    )
    sm = sm.transpose(cv.LAYER, "time", ...).astype("float32")
    sm.attrs = dict(cv.SM_ATTRS)
    sm.attrs["comment"] = "; ".join(
        [
            "depth-weighted average of ERA5-Land layers 0-7, 7-28, 28-100 cm over each target layer",
            *notes,
        ]
    )
    return sm.rename(cv.SM)


def open_era5land(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    units: Mapping[str, str] | None = None,
    layers: Iterable[int] = cv.LAYER_NUMBERS,
    chunks: dict | str | None = None,
) -> xr.Dataset:
    """Open ERA5-Land files as daily data under canonical names.

    Parameters
    ----------
    path
        A netCDF file, a list of files or a folder of ``*.nc`` files: daily grids, hourly
        grids (accumulated ``tp``/``ssr``/``str``), pynetcf cell files (``locations`` x
        ``time``; ``grid.nc`` is skipped) or a point series (only ``time``).
    units
        Units of variables that have no ``units`` attribute, by file name or ERA5 short
        name, e.g. ``{"precipitation": "m", "temperature": "K"}``. Never guessed.
    layers
        Target layers to compute (those the data supports).
    chunks
        dask chunks for :func:`xarray.open_mfdataset` (lazy reading); ``None`` reads
        lazily without dask.

    Returns
    -------
    xarray.Dataset
        Daily (``time`` at 00 UTC), ascending ``lat``/``lon`` on ERA5-Land's own grid
        (where the data is gridded): ``air_temperature`` (K), ``skin_temperature`` (K),
        ``precipitation`` (mm d-1), ``net_radiation`` (W m-2, ``(ssr + str) / 86400`` of
        daily sums in J m-2), ``sm(layer, time, lat, lon)`` (m3 m-3), and ``land_fraction``
        where ``lsm`` exists; only the variables the files hold.

    Raises
    ------
    UnitError
        A needed variable without units (name it in ``units=``) or with wrong units.
    DataFormatError
        Unreadable files, missing hours in hourly data, irregular time steps.

    Notes
    -----
    Daily values stamped 06 UTC (QA4SM cell files hold one 06 UTC value a day) are
    snapshots, labelled with their day; ``attrs['time_sampling']`` says so. Daily values
    whose time units are in a zone off UTC keep their local date
    (:func:`xsomo.io.gridded.daily_dates`). A variable labelled as a rate per month or year
    (``"mm/month"``) on a daily or hourly axis is refused unless ``units=`` names it.
    """
    files = _files(path)
    source = ", ".join(f.name for f in files[:3]) + (" ..." if len(files) > 3 else "")
    raw = _open(files, chunks)
    stamps = next((raw[n] for n in ("time", "valid_time") if n in raw.coords), None)
    offset = utc_offset(stamps, source) if stamps is not None else pd.Timedelta(0)
    ds = _normalise(raw)
    if units:
        for name, u in units.items():
            key = name if name in ds else ALIASES.get(name, name)
            if key not in ds:
                raise MissingVariableError(
                    f"units given for {name!r}, which is not in {source}; variables: {list(ds.data_vars)}"
                )
            ds[key].attrs["units"] = u
    known = {"t2m", "skt", "tp", "ssr", "str", *SWVL, "lsm"}
    ds = ds[[v for v in ds.data_vars if v in known]]
    if not ds.data_vars:
        raise MissingVariableError(
            f"{source}: none of the ERA5-Land variables {sorted(known)} found."
        )
    ds, lsm_static = _time_invariant_lsm(ds)
    # units: never guessed
    for vname, da in ds.data_vars.items():
        if "units" not in da.attrs:
            fname = da.attrs.get("xsomo_file_name", vname)
            raise UnitError(
                f"variable {fname!r} in {source} has no 'units' attribute (xsomo never guesses units). State its "
                f"units, e.g. open_era5land(..., units={{{fname!r}: {_EXPECTED.get(str(vname), 'units')!r}}})"
                + (
                    " -- ERA5-Land hourly precipitation is in m, accumulated since 00 UTC."
                    if vname == "tp"
                    else "."
                )
            )
    time = pd.DatetimeIndex(ds["time"].values)
    step = pd.Timedelta(np.median(np.diff(time.values))) if time.size > 1 else pd.Timedelta("1D")
    if step <= pd.Timedelta("1D"):  # (longer steps are refused below)
        declared = {name if name in ds else ALIASES.get(name, name) for name in (units or {})}
        for vname, da in ds.data_vars.items():
            if "time" in da.dims and vname not in declared:
                fname = da.attrs.get("xsomo_file_name", vname)
                label = da.attrs.get("units")
                xu.refuse_long_rate(
                    label, name=fname, source=source, axis="daily" if step == pd.Timedelta("1D") else "hourly",
                    fix=f"open_era5land(..., units={{{fname!r}: {label!r}}})",
                )
    attrs: dict[str, str] = {"source": f"ERA5-Land ({source})", "title": "ERA5-Land, daily"}
    if step < pd.Timedelta("1D"):
        if step != pd.Timedelta("1h"):
            raise DataFormatError(f"{source}: time step {step} is neither hourly nor daily.")
        ds = daily_from_hourly(ds, source=source)
        attrs["time_sampling"] = "daily from hourly (de-accumulated sums; means of 00-23 UTC)"
    elif step == pd.Timedelta("1D"):
        # (stamps in a zone off UTC: each value on its local date, see daily_dates)
        days = daily_dates(time, offset, source)
        local = time + offset
        zone = "UTC" if offset == pd.Timedelta(0) else f"local time ({zone_name(offset)})"
        hours = set(local.hour.tolist())
        _check_daily(local, source)
        _refuse_hourly_extract(ds, hours, source)
        ds = ds.assign_coords(time=days)
        snapshot = any(str(da.attrs.get("GRIB_stepType", "")).lower() == "instant" for da in ds.data_vars.values())
        attrs["time_sampling"] = (
            "daily values, read as the means/totals of the day they are stamped with"
            if hours == {0} and not snapshot
            else f"one value a day at {sorted(hours)} {zone} (snapshot)"
        )
    else:
        raise DataFormatError(f"{source}: time step {step} is neither hourly nor daily.")
    out = {}
    if "t2m" in ds:
        out["air_temperature"] = _canon(ds["t2m"], "air_temperature", source)
    if "skt" in ds:
        out["skin_temperature"] = _canon(ds["skt"], "skin_temperature", source)
    if "tp" in ds:
        tp = _amount(ds["tp"], "tp", "mm", source)
        out["precipitation"] = tp.assign_attrs(cv.cf_attrs("precipitation"))
        xu.check_plausible(
            out["precipitation"], "precipitation", source=source, label=ds["tp"].attrs.get("units")
        )
    if "ssr" in ds and "str" in ds:
        ssr = _amount(ds["ssr"], "ssr", "J m-2", source)
        strd = _amount(ds["str"], "str", "J m-2", source)
        rn = (ssr + strd) / cv.SECONDS_PER_DAY
        out["net_radiation"] = rn.astype("float32").assign_attrs(cv.cf_attrs("net_radiation"))
        xu.check_plausible(
            out["net_radiation"], "net_radiation", source=source,
            label=f"{ds['ssr'].attrs.get('units')} (ssr, str)",
        )
    # swvl in any volume-fraction units (m3 m-3, percent ...) -> m3 m-3 before weighting
    ds = ds.assign(
        {
            name: xu.convert(ds[name], "m3 m-3", name=name, source=source)
            for name in SWVL
            if name in ds and xu.normalise_units_string(str(ds[name].attrs["units"])) != "m3 m-3"
        }
    )
    sm = layer_sm(ds, layers)
    if sm is not None:
        xu.check_plausible(sm, cv.SM, source=source)
        out[cv.SM] = sm
    if "lsm" in ds or lsm_static is not None:
        lsm = ds.get("lsm", lsm_static)
        if "time" in lsm.dims:
            lsm = lsm.isel(time=0, drop=True)
        out["land_fraction"] = lsm.astype("float32").assign_attrs(
            units="1", long_name="land-sea fraction (ERA5-Land lsm)"
        )
        _refuse_land_without_data(out, source)
    res = xr.Dataset(out, attrs=attrs)
    res["time"].attrs.update(cv.TIME_ATTRS)
    if "lat" in res.coords:
        res["lat"].attrs.update(cv.LAT_ATTRS)
        res["lon"].attrs.update(cv.LON_ATTRS)
    return res


def _refuse_land_without_data(out: dict[str, xr.DataArray], source: str) -> None:
    """Refuse land cells of the mask (``lsm`` > 0.5) where no variable has a value on the first day.

    ERA5-Land has every variable at every land cell. A mask downloaded on its own over a wider
    box than the variables had padded them with NaN to the mask's box (the files are joined on
    their coordinates): the target grid then seemed covered, the regridding filled the first
    missing column from one side (net radiation off by 57 W m-2) and left the next ones NaN on
    land, without an error (hostile-input QA).
    """
    land = out["land_fraction"] > 0.5
    dynamic = [v for k, v in out.items() if k != "land_fraction" and "time" in v.dims and v.sizes["time"]]
    if not dynamic:
        return
    has = None
    for v in dynamic:
        day = v.isel(time=0)
        day = day.notnull().any([d for d in day.dims if d not in ("lat", "lon")]) if day.ndim > 2 else day.notnull()
        has = day if has is None else has | day
    empty = (land & ~has).load()
    if bool(empty.any()):
        n = int(empty.sum())
        lat_has = has["lat"].values[np.asarray(has.any("lon").values, bool)]
        lon_has = has["lon"].values[np.asarray(has.any("lat").values, bool)]
        lat_e = empty["lat"].values[np.asarray(empty.any("lon").values, bool)]
        lon_e = empty["lon"].values[np.asarray(empty.any("lat").values, bool)]
        box = (f"lat {lat_has.min():g}..{lat_has.max():g}, lon {lon_has.min():g}..{lon_has.max():g}"
               if lat_has.size and lon_has.size else "no cell")  # fmt: skip
        raise DataFormatError(
            f"{source}: {n} land cell(s) of the land-sea mask (lsm > 0.5; within lat {lat_e.min():g}..{lat_e.max():g}, "
            f"lon {lon_e.min():g}..{lon_e.max():g}) have no ERA5-Land value on the first day; the variables cover "
            f"{box}. The mask's file covers a wider box than the data files, or a file of a region is missing: "
            "download the variables over the mask's box (or cut the mask to theirs)."
        )


_EXPECTED = {
    "t2m": "K",
    "skt": "K",
    "tp": "m",
    "ssr": "J m-2",
    "str": "J m-2",
    "lsm": "1",
    **dict.fromkeys(SWVL, "m3 m-3"),
}


def _canon(da: xr.DataArray, name: str, source: str) -> xr.DataArray:
    out = xu.convert(da, cv.VARIABLES[name].units, name=da.name, source=source)
    out = out.astype("float32").assign_attrs(cv.cf_attrs(name))
    xu.check_plausible(out, name, source=source, label=da.attrs.get("units"))
    return out


def _amount(da: xr.DataArray, name: str, to: str, source: str) -> xr.DataArray:
    """A daily total (amount per day) in ``to`` units; rates per day are accepted too."""
    u = str(da.attrs.get("units", ""))
    try:
        return xu.convert(da, to, name=name, source=source)
    except UnitError:
        pass
    try:  # already a daily rate such as "mm d-1" or "W m-2"
        per_day = to + " d-1" if to != "J m-2" else "J m-2 d-1"
        return xu.convert(da, per_day, name=name, source=source).assign_attrs(units=to)
    except UnitError:
        pass
    try:  # a water flux in kg m-2 s-1 (CF precipitation_flux): 1 kg m-2 of water is 1 mm
        if to != "mm":
            raise UnitError(u)
        return xu.convert(da, "kg m-2 d-1", name=name, source=source).assign_attrs(units=to)
    except UnitError as err:
        raise UnitError(
            f"variable {name!r} in {source} has units {u!r}; expected a daily amount convertible to {to!r}."
        ) from err


_ = XsomoValueError
