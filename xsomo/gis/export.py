"""GIS export: Cloud-Optimized GeoTIFFs of soil-moisture maps and GeoPackages of station metrics.

- :func:`to_cog` (``ds.somo.to_cog``, ``xsomo export ... --out map.tif``): one day, or a
  period statistic (``"mean"``, ``"anomaly"``) of one layer, as a north-up EPSG:4326
  Cloud-Optimized GeoTIFF (DEFLATE with the floating-point predictor, internal
  overviews), written through rioxarray/GDAL's COG driver.
- :func:`metrics_to_gpkg` (``xsomo export --metrics metrics.nc --out metrics.gpkg``):
  station skill metrics as points in EPSG:4326, GeoPackage 1.3.

Both write atomically (:func:`xsomo.io.atomic.atomic_path`): a temporary file in the
target folder, renamed on success.

The anomaly
-----------
``stat="anomaly"`` over a period ``P = [start, end]`` is the period anomaly of
:func:`xsomo.evaluation.period_anomaly` (re-exported here as :func:`period_anomaly`): the
z-score of the mean over ``P`` against the means over the same calendar window in every
year the data cover completely (``P`` itself included, at least three), optionally
restricted to ``climatology=(first_year, last_year)``. Its numbers come from
:mod:`xsomo.evaluation.anomaly_kernels`, the file the QGIS plugin shares.
"""

from __future__ import annotations

import math
import os
import pathlib
import warnings
from collections.abc import Hashable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation.climatology import (
    coarse_period,
    missing_days_message,
    parse_period,
    period_anomaly,
    window_mean,
)
from xsomo.evaluation.skill import to_geodataframe
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoKeyError, XsomoValueError
from xsomo.io.atomic import atomic_path, atomic_write_text

# the one definition lives in io.atomic; xsomo.gis.export.stale_temporaries stays importable (docs/gis.md)
from xsomo.io.atomic import remove_stale_temporaries as remove_stale_temporaries
from xsomo.io.atomic import stale_temporaries as stale_temporaries

__all__ = ["metrics_to_gpkg", "period_anomaly", "select_map", "to_cog", "to_time_stack", "write_style"]

Stat: TypeAlias = Literal["mean", "anomaly"]
DateLike: TypeAlias = str | np.datetime64 | pd.Timestamp

#: GeoPackage version written (QGIS 3.22's GDAL 3.6 reads 1.3 without warnings)
GPKG_VERSION = "1.3"


# ----------------------------------------------------------------------------- selecting a map


def _layer_array(obj: xr.Dataset | xr.DataArray, *, layer: int, variable: Hashable) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        if variable in obj.data_vars:
            da = obj[variable]
        elif cv.layer_var_name(layer) in obj.data_vars:
            da = obj[cv.layer_var_name(layer)]  # one SoMo.ml file opened as it is
        else:
            raise MissingVariableError(
                f"no variable {variable!r} or {cv.layer_var_name(layer)!r} in the dataset (found "
                f"{sorted(map(str, obj.data_vars))}); pass variable=NAME"
            )
    else:
        da = obj
    if cv.LAYER in da.dims:
        if layer not in da[cv.LAYER].values:
            raise XsomoKeyError(
                f"layer {layer} is not in the data; layers are {da[cv.LAYER].values.tolist()}"
            )
        da = da.sel({cv.LAYER: layer})
    missing = {cv.LAT, cv.LON} - set(da.dims)
    if missing:
        raise XsomoValueError(f"{da.name!r} has dims {da.dims}; a map needs 'lat' and 'lon'")
    return da


def _time_range(da: xr.DataArray) -> str:
    t = pd.DatetimeIndex(da[cv.TIME].values)
    return f"{t[0]:%Y-%m-%d} … {t[-1]:%Y-%m-%d}" if t.size else "(empty)"


def select_map(
    obj: xr.Dataset | xr.DataArray,
    *,
    layer: int = 1,
    time: DateLike | None = None,
    stat: Stat | None = None,
    period: Sequence[DateLike] | None = None,
    climatology: tuple[int, int] | None = None,
    variable: Hashable = cv.SM,
) -> xr.DataArray:
    """The 2-D ``(lat, lon)`` map that :func:`to_cog` writes (computed), with descriptive attrs.

    Parameters are those of :func:`to_cog`.
    """
    da = _layer_array(obj, layer=layer, variable=variable)
    units = da.attrs.get("units", cv.SM_ATTRS["units"])
    if stat is None:
        if period is not None:
            raise XsomoValueError(
                "period= is for stat='mean' or 'anomaly'; for one day pass time='YYYY-MM-DD'"
            )
        if cv.TIME in da.dims:
            if time is None:
                if da.sizes[cv.TIME] != 1:
                    raise XsomoValueError(
                        f"the data hold {da.sizes[cv.TIME]} days ({_time_range(da)}); pass time='YYYY-MM-DD' "
                        "or stat='mean'/'anomaly' with period=(start, end)"
                    )
                da = da.isel({cv.TIME: 0})
            else:
                if coarse_period(time) is not None:
                    # ('2016-07' had written 1 July without a word)
                    raise XsomoValueError(
                        f"time={time!r} is not one day: pass time='YYYY-MM-DD', or stat='mean' with "
                        f"period=({time!r}, {time!r}) for the mean over it"
                    )
                day = pd.Timestamp(time).normalize()
                days = pd.DatetimeIndex(da[cv.TIME].values).normalize()
                hit = np.flatnonzero(days == day)
                if hit.size == 0:
                    inside = bool(days.size) and days[0] <= day <= days[-1]
                    around = ""
                    if inside:
                        k = int(np.searchsorted(days, day))
                        around = (
                            f"; the day lies inside that range, between the days {days[k - 1]:%Y-%m-%d} and "
                            f"{days[k]:%Y-%m-%d} that the data hold: is the file of layer {layer}, {day.year} missing "
                            "from the folder? Add it (or write it with xsomo predict) or choose a day the data hold"
                        )
                    raise XsomoKeyError(f"day {day:%Y-%m-%d} is not in the data ({_time_range(da)}){around}")
                da = da.isel({cv.TIME: int(hit[0])})
        when = pd.Timestamp(da[cv.TIME].values) if cv.TIME in da.coords else None
        out = da
        attrs = {
            **cv.SM_ATTRS,
            "units": units,
            "date": f"{when:%Y-%m-%d}" if when is not None else "",
        }
    elif stat == "mean":
        start, end = parse_period(period)
        out = window_mean(da, start, end)
        if out is None:
            raise XsomoValueError(missing_days_message(da, start, end))
        attrs = {
            **cv.SM_ATTRS,
            "units": units,
            "long_name": "mean volumetric soil moisture over the period",
        }
        attrs["period"] = f"{start:%Y-%m-%d}/{end:%Y-%m-%d}"
    elif stat == "anomaly":
        out = period_anomaly(da, period, climatology=climatology)  # type: ignore[arg-type]
        start, end = parse_period(period)
        attrs = {**out.attrs, "period": f"{start:%Y-%m-%d}/{end:%Y-%m-%d}"}
        if climatology is not None:
            # the years asked for; reference_years (from period_anomaly) are those the data held
            attrs["climatology"] = f"{climatology[0]}-{climatology[1]}"
    else:
        raise XsomoValueError(f"stat={stat!r}; use None (one day), 'mean' or 'anomaly'")
    attrs["layer"] = int(layer)
    attrs["statistic"] = stat or "day"
    keep = {cv.LAT, cv.LON, "spatial_ref"}
    with warnings.catch_warnings():
        # all-NaN (sea) cells: their mean/std are NaN, as they should be
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Degrees of freedom", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        out = out.drop_vars([c for c in out.coords if c not in keep]).compute()
    if not bool(np.isfinite(out.values).any()):
        what = f"on {attrs['date']}" if stat is None and attrs.get("date") else f"over the period {period}"
        raise XsomoValueError(
            f"layer {layer} holds no value {what} (every cell NaN): is its file of that year missing from the "
            "folder? An empty map is not written"
        )
    out.attrs = attrs
    out.name = f"{cv.layer_var_name(layer)}_{stat or 'day'}"
    return out


# ----------------------------------------------------------------------------- writing


def _overview_count(nx: int, ny: int, blocksize: int) -> int:
    """Halvings until the coarsest overview fits one tile (at least one; never below 1 pixel)."""
    biggest, smallest = max(nx, ny), min(nx, ny)
    if smallest < 2:
        return 0
    n = max(1, math.ceil(math.log2(biggest / blocksize))) if biggest > blocksize else 1
    return min(n, int(math.log2(smallest)))


#: Relative tolerance on the spacing of centre coordinates (float32 coordinates of the
#: files differ from the exact tenths by ~1e-5 of a step; a dropped cell is a whole step).
_STEP_RTOL = 1e-3


def _one_block(lon: np.ndarray) -> np.ndarray | None:
    """Ascending centre longitudes ``lon`` as one block, when they are a regular block of cells cut
    in two by the longitude convention (None otherwise).

    ``0.05..0.95, 359.05..359.95`` (a region across 0° in 0..360) is ``-0.95..0.95`` (the block in
    -180..180, as :func:`xsomo.regrid.normalise_latlon` takes it); ``-179.95..-179.05,
    179.05..179.95`` (a region across the antimeridian in -180..180) is ``179.05..180.95`` (the
    block in 0..360, as xsomo takes grids beyond 180°). Same order as ``lon``; shifts rounded to
    1e-9°.
    """
    v = np.asarray(lon, dtype=float)
    if v.size < 3:
        return None
    d = np.diff(v)
    k = int(np.argmax(d))
    rest = np.delete(d, k)
    step = float(np.median(rest))
    regular = step > 0 and bool(np.all(np.abs(rest - step) <= _STEP_RTOL * step))
    if not regular or d[k] <= 180.0 or abs(v[0] + 360.0 - v[-1] - step) > _STEP_RTOL * step:
        return None
    if v[k + 1] - 360.0 >= -180.0:  # across 0° in 0..360: the east part moves west, into -180..180
        return np.where(v > v[k], np.round(v - 360.0, 9), v)
    return np.where(v <= v[k], np.round(v + 360.0, 9), v)  # across 180° in -180..180: into 0..360


def _regular_step(values: np.ndarray, dim: str, what: str = "the map's") -> float | None:
    """The spacing of ascending centre coordinates ``values`` (None for a single one).

    Raises an :class:`XsomoValueError` naming ``dim`` unless they are evenly spaced.
    """
    if values.size < 2:
        return None
    d = np.diff(values)
    step = float(np.min(d))
    if np.all(np.abs(d - step) <= _STEP_RTOL * step):
        return cv.axis_step(values)  # 1/120°, not 0.008333 (which misplaced the far pixels)
    k = int(np.flatnonzero(np.abs(d - step) > _STEP_RTOL * step)[0])
    multiples = np.abs(d / step - np.round(d / step)) <= _STEP_RTOL * np.round(d / step)
    hint = (
        f" (missing cells become NaN), e.g. da.reindex({dim}=np.round(np.arange({values[0]:g}, "
        f"{values[-1] + step / 2:g}, {step:g}), 6), method='nearest', tolerance={step / 10:g})"
        if multiples.all()
        else ""
    )
    raise XsomoValueError(
        f"{what} {dim} coordinates are not a regular grid: centres {values[k]:g} and {values[k + 1]:g} are "
        f"{d[k]:g}° apart where others are {step:g}° (cells dropped or a varying step). A GeoTIFF has one pixel "
        f"size, so writing it would misplace pixels: reindex {dim} onto the full grid first{hint}"
    )


def _north_up(field: xr.DataArray) -> xr.DataArray:
    """``field`` as ``(lat, lon)`` with rows north to south and columns west to east, on a regular grid.

    Unsorted coordinates are sorted (each value keeps its coordinates); duplicated,
    missing, non-finite or unevenly spaced ones are an :class:`XsomoValueError`. A region cut
    in two by the longitude convention is written as one block (:func:`_one_block`): across
    0° in -180..180, across the antimeridian in 0..360.
    """
    for dim in (cv.LAT, cv.LON):
        if dim not in field.coords:
            raise XsomoValueError(
                f"{field.name!r} has a {dim!r} dimension without coordinates: the map cannot be placed; "
                f"assign the cell-centre {dim} in degrees (da.assign_coords({dim}=...))"
            )
        v = np.asarray(field[dim].values, dtype=float)
        if not np.isfinite(v).all() or np.unique(v).size != v.size:
            raise XsomoValueError(
                f"{field.name!r}: its {dim} coordinates hold duplicated or non-finite values; one value per row "
                "or column of cell centres is needed"
            )
    from xsomo.regrid import normalise_latlon

    # the one rule for coordinates: float32 ones as their decimals, a region across 0° in 0..360
    # as one block in -180..180 (it had been refused, with the hint to reindex onto 0..360)
    field = normalise_latlon(field)
    lon = np.asarray(field[cv.LON].values, dtype=float)
    block = _one_block(lon)
    if block is not None:  # across the antimeridian in -180..180: one block in 0..360
        field = field.assign_coords({cv.LON: block})
    lat = np.asarray(field[cv.LAT].values, dtype=float)
    lon = np.asarray(field[cv.LON].values, dtype=float)
    field = field.isel({cv.LAT: np.argsort(-lat, kind="stable"), cv.LON: np.argsort(lon, kind="stable")})
    _regular_step(np.sort(lat), cv.LAT)
    _regular_step(np.sort(lon), cv.LON)
    return field.transpose(cv.LAT, cv.LON).astype(np.float32)


def _exact_transform(field: xr.DataArray) -> Any:
    """The north-up affine transform of a :func:`_north_up` map, its edges and steps rounded to 1e-6°.

    Not one accumulated from float centres (0.1 stays 0.1). A single row or column takes
    the step of the other axis, a single cell the product's 0.1° (rioxarray cannot infer a
    transform there: the map landed at 0°N 0°E with 1° pixels).
    """
    from affine import Affine

    lat = np.sort(cv.decimal_coords(field[cv.LAT].values))
    lon = cv.decimal_coords(field[cv.LON].values)
    dy, dx = _regular_step(lat, cv.LAT), _regular_step(lon, cv.LON)
    dx = dx if dx is not None else (dy if dy is not None else cv.RESOLUTION)
    dy = dy if dy is not None else dx
    west = float(np.round(lon[0] - dx / 2, 6))
    north = float(np.round(lat[-1] + dy / 2, 6))
    return Affine(dx, 0.0, west, 0.0, -dy, north)


def to_cog(
    obj: xr.Dataset | xr.DataArray,
    path: str | os.PathLike[str],
    *,
    layer: int = 1,
    time: DateLike | None = None,
    stat: Stat | None = None,
    period: Sequence[DateLike] | None = None,
    climatology: tuple[int, int] | None = None,
    variable: Hashable = cv.SM,
    blocksize: int = 256,
    overview_count: int | None = None,
    overwrite: bool = True,
    style: bool = True,
) -> pathlib.Path:
    """Write one day or a period statistic of one layer as a Cloud-Optimized GeoTIFF.

    Parameters
    ----------
    obj
        ``sm(layer, time, lat, lon)`` as from :func:`xsomo.open_somo` or
        :func:`xsomo.predict`, one SoMo.ml file (variable ``layer{N}``), or a DataArray.
    path
        The ``.tif`` to write (replaced atomically).
    layer
        Layer number (1: 0-10 cm, 2: 10-30 cm, 3: 30-50 cm).
    time
        The day to write (``"2010-07-01"``) when ``stat`` is None.
    stat
        ``None`` (one day), ``"mean"`` (mean over ``period``) or ``"anomaly"``
        (normalised anomaly of the period mean, see the module docstring).
    period
        ``(start, end)`` for ``stat``, both days included.
    climatology
        ``(first_year, last_year)`` of the anomaly's reference windows.
    variable
        Variable of a Dataset (default ``"sm"``).
    blocksize
        Tile size in pixels (multiple of 16).
    overview_count
        Number of internal overviews (default: halvings until one tile holds the coarsest).
    overwrite
        Replace an existing file.
    style
        Also write the QGIS style ``<name>.qml`` beside the file (QGIS opens the map with
        it): the sequential soil-moisture ramp, or the diverging z-score ramp centred on 0
        for ``stat="anomaly"`` (:func:`write_style`).

    Returns
    -------
    pathlib.Path
        The file written: float32, NaN as nodata, EPSG:4326, north-up, tiled, DEFLATE
        with the floating-point predictor, overviews averaged; the layer, date or period
        and statistic as GeoTIFF metadata tags.

    Raises
    ------
    XsomoKeyError
        The layer or day is not in the data.
    XsomoValueError
        Missing or uncovered period, unknown ``stat``; lat/lon that are not a regular grid
        (rows or columns missing: reindex onto the full grid first). Unsorted lat/lon are
        sorted, not refused: every value is written at its own coordinates.

    Examples
    --------
    >>> ds = xsomo.open_somo("out/")  # doctest: +SKIP
    >>> ds.somo.to_cog(
    ...     "summer2018.tif", layer=1, stat="anomaly", period=("2018-06-01", "2018-08-31")
    ... )  # doctest: +SKIP
    """
    import rioxarray  # noqa: F401  (registers .rio)

    if blocksize % 16 or blocksize <= 0:
        raise XsomoValueError(
            f"blocksize={blocksize}; GeoTIFF tiles need a positive multiple of 16"
        )
    field = select_map(
        obj,
        layer=layer,
        time=time,
        stat=stat,
        period=period,
        climatology=climatology,
        variable=variable,
    )
    field = _north_up(field)
    tags = {str(k): str(v) for k, v in field.attrs.items()}
    field.attrs = {}
    field.encoding = {}
    transform = _exact_transform(field)
    # without its lat/lon coordinates (the map is north-up and regular: the transform says
    # it all) rioxarray writes this transform as it is, instead of edges computed from the
    # float centres (46.099999999999994 for 46.1)
    field = (
        field.drop_vars(["spatial_ref", cv.LAT, cv.LON], errors="ignore")
        .rio.set_spatial_dims(x_dim=cv.LON, y_dim=cv.LAT)
        .rio.write_crs(cv.CRS)
        .rio.write_nodata(np.nan, encoded=False)
        .rio.write_transform(transform)
    )
    n_ov = (
        _overview_count(field.sizes[cv.LON], field.sizes[cv.LAT], blocksize)
        if overview_count is None
        else overview_count
    )
    with atomic_path(path, overwrite=overwrite) as tmp, warnings.catch_warnings():
        # rioxarray 0.19 + affine 2.4 warn about their own `*` operator; not the user's business
        warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
        field.rio.to_raster(
            tmp,
            driver="COG",
            compress="DEFLATE",
            predictor="FLOATING_POINT",
            blocksize=blocksize,
            overviews="FORCE_USE_EXISTING" if n_ov == 0 else "IGNORE_EXISTING",
            overview_count=n_ov if n_ov else None,
            overview_resampling="AVERAGE",
            tags=tags,
            # the exact transform above; rioxarray would recompute it from the float centres
            recalc_transform=False,
        )
    target = pathlib.Path(path).expanduser()
    if style:
        write_style(target, "zscore" if stat == "anomaly" else "soil_moisture")
    else:  # an earlier export's style beside this name would draw this map with the wrong ramp
        pathlib.Path(target).with_suffix(".qml").unlink(missing_ok=True)
    return target


#: QGIS styles shipped in ``xsomo/data`` (the QGIS plugin links the same files)
STYLES = {"soil_moisture": "soil_moisture.qml", "zscore": "zscore.qml"}


def write_style(raster: str | os.PathLike[str], kind: str) -> pathlib.Path:
    """Write the shipped QGIS style ``kind`` beside ``raster`` as ``<name>.qml`` (QGIS's default style).

    ``"soil_moisture"``: sequential YlGnBu ramp 0.05-0.50 m3 m-3; ``"zscore"``: diverging
    BrBG ramp -3..3 centred on 0.
    """
    from importlib import resources

    if kind not in STYLES:
        raise XsomoValueError(f"style {kind!r} unknown; use one of {sorted(STYLES)}")
    text = (resources.files("xsomo.data") / STYLES[kind]).read_text(encoding="utf-8")
    target = pathlib.Path(raster).expanduser().with_suffix(".qml")
    atomic_write_text(target, text)
    return target


# ----------------------------------------------------------------------------- time in QGIS


def _vrt_packing(encoding: Any, path: Any) -> tuple[float, float, float | None] | None:
    """How GDAL is to unpack a file's band into what :func:`xsomo.open_somo` reads (xarray's
    CF decoding): ``(scale_factor, add_offset, fill value)``, or None for a plain float band
    with NaN (or no) fill.

    Packed files (int16 with scale_factor/add_offset and _FillValue -32768) and filled ones
    (_FillValue -9999) had shown raw integers and the fill value as data in the VRT.
    """

    def scalar(key: str, default: float) -> float:
        value = np.asarray(encoding.get(key, default), dtype=float).ravel()
        return float(value[0]) if value.size else default

    fills: list[float] = []
    for key in ("_FillValue", "missing_value"):
        if encoding.get(key) is not None:
            fills += [float(v) for v in np.asarray(encoding[key], dtype=float).ravel()]
    distinct: list[float] = []
    for v in fills:
        if not any(v == d or (np.isnan(v) and np.isnan(d)) for d in distinct):
            distinct.append(v)
    if len(distinct) > 1:
        warnings.warn(
            f"{path}: the band has several fill values {distinct}; the VRT leaves only {distinct[0]} out "
            "(a GDAL source has one nodata value), the others show as data",
            RuntimeWarning,
            stacklevel=3,
        )
    scale, offset = scalar("scale_factor", 1.0), scalar("add_offset", 0.0)
    nodata = distinct[0] if distinct else None
    if (scale, offset) == (1.0, 0.0) and (nodata is None or np.isnan(nodata)):
        return None
    return scale, offset, nodata


def to_time_stack(
    source: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    layer: int = 1,
    overwrite: bool = True,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write one layer's whole period as a VRT (one band per day) and a QGIS layer definition beside it.

    Parameters
    ----------
    source
        SoMo.ml files: a folder or a glob (as :func:`xsomo.open_somo`).
    path
        The ``.vrt`` to write; ``<name>.qlr`` is written beside it.
    layer
        Soil layer.
    overwrite
        Replace existing files.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The VRT (band descriptions are the dates, unit m3 m-3, NaN nodata; the bands read
        the netCDF files in place, packed ones unpacked and their fill value NaN, so that
        GDAL reads what :func:`xsomo.open_somo` does) and the ``.qlr``: a group of one
        layer per day with temporal mode "fixed range" on its day and the soil-moisture style, which QGIS's
        Temporal Controller steps through (QGIS 3.22 and later). See
        :mod:`xsomo.gis.time_stack`.
    """
    from importlib import resources

    from pyproj import CRS

    from xsomo.gis import time_stack
    from xsomo.io.somo import find_somo_files

    path = pathlib.Path(path).expanduser()
    if path.suffix.lower() != ".vrt":
        raise XsomoValueError(f"{path}: the time stack is a GDAL VRT; use a .vrt name")
    from xsomo.io.somo import is_zarr_store

    if is_zarr_store(source):
        # it said "no SoMo.ml files named like 'SoMo.ml-EU_layer1_...'", naming layer 1 for any --layer
        raise XsomoValueError(
            f"{source} is a Zarr store: a VRT time stack points GDAL at the yearly netCDF files "
            "(SoMo.ml-EU_layer{N}_{YYYY}.nc, xsomo predict --format netcdf). Export single days or periods "
            "from the store as GeoTIFFs instead (xsomo export --date, or --stat mean/anomaly --start --end)"
        )
    files = find_somo_files(source, layers=[layer])
    var = cv.layer_var_name(layer)
    sources: list[tuple[str, int, Any, Any]] = []
    grid = None
    first: tuple[Any, np.ndarray, np.ndarray] | None = None
    for f in files:
        with xr.open_dataset(f.path) as ds:
            days = pd.DatetimeIndex(ds[cv.TIME].values)
            # GDAL reads each file north-up; the VRT gives all bands one geotransform, so every
            # file must hold the first one's cells (a shifted grid was placed on the first's)
            # float32 coordinates as their decimals: edges and step exact, as to_cog's
            lat, lon = np.sort(cv.decimal_coords(ds[cv.LAT].values)), np.sort(cv.decimal_coords(ds[cv.LON].values))
            packing = _vrt_packing(ds[var].encoding, f.path) if var in ds.data_vars else None
        if first is None:
            first = (f.path, lat, lon)
            block = _one_block(lon)
            if block is not None:
                # GDAL reads a file's columns in their stored order: one geotransform cannot place a
                # region cut in two by the longitude convention (the hint had been to reindex onto 0..360)
                raise XsomoValueError(
                    f"{f.path}: its longitudes are one block of cells cut in two by the longitude convention "
                    f"({lon[0]:g}..{lon[-1]:g} with a gap; one block at {float(block.min()):g}.."
                    f"{float(block.max()):g}), and a VRT shows the file's columns in their stored order. "
                    "Export days and periods as GeoTIFFs instead (xsomo export --date, or --stat with --start/--end: "
                    "they are written as one block), or write the files with their longitudes in one convention "
                    "first (ds.assign_coords(lon=((ds.lon + 180) % 360) - 180).sortby('lon') for a region across 0°, "
                    "ds.assign_coords(lon=ds.lon % 360).sortby('lon') for one across 180°)"
                )
            _regular_step(lat, cv.LAT, f"{f.path}:")
            _regular_step(lon, cv.LON, f"{f.path}:")
            grid = cv.GridSpec.from_coords(lat, lon)
        elif lat.shape != first[1].shape or lon.shape != first[2].shape or not (
            np.allclose(lat, first[1]) and np.allclose(lon, first[2])
        ):
            raise GridMismatchError(
                f"{f.path}: its lat/lon grid differs from that of {first[0]} (lat {lat[0]:g}..{lat[-1]:g}, "
                f"lon {lon[0]:g}..{lon[-1]:g} against lat {first[1][0]:g}..{first[1][-1]:g}, lon "
                f"{first[2][0]:g}..{first[2][-1]:g}); one VRT holds files of one grid: stack them separately"
            )
        name = f'NETCDF:"{f.path.resolve()}":{cv.layer_var_name(layer)}'
        sources += [(name, k + 1, d.date(), packing) for k, d in enumerate(days)]
    sources.sort(key=lambda s: s[2])
    dates = [s[2] for s in sources]
    if len(set(dates)) != len(dates):
        raise XsomoValueError(f"{source}: a day appears in two files of layer {layer}")
    if grid is None:  # find_somo_files raises before this; kept for type checkers
        raise XsomoValueError(f"{source}: no SoMo.ml files of layer {layer}")
    text = time_stack.vrt_xml(
        sources,
        nx=grid.nlon,
        ny=grid.nlat,
        geotransform=(grid.west, grid.resolution, 0.0, grid.north, 0.0, -grid.resolution),
        srs_wkt=CRS.from_user_input(cv.CRS).to_wkt(),
        layer=layer,
    )
    qlr = path.with_suffix(".qlr")
    if not overwrite:
        for p in (path, qlr):
            if p.exists():
                raise FileExistsError(f"{p} exists; pass overwrite=True (or leave out --no-overwrite)")
    atomic_write_text(path, text)
    style = (resources.files("xsomo.data") / STYLES["soil_moisture"]).read_text(encoding="utf-8")
    group = f"soil moisture layer {layer} ({dates[0]:%Y-%m-%d} … {dates[-1]:%Y-%m-%d})"
    atomic_write_text(qlr, time_stack.qlr_xml(str(path), dates, group=group, style_qml=style))
    return path, qlr


# ----------------------------------------------------------------------------- station metrics


def metrics_to_gpkg(
    metrics: Any,
    path: str | os.PathLike[str],
    *,
    layer_name: str = "station_metrics",
    overwrite: bool = True,
    style: bool = False,
) -> pathlib.Path:
    """Write station metrics as points to a GeoPackage 1.3 (EPSG:4326).

    Parameters
    ----------
    metrics
        The metrics Dataset of :func:`xsomo.evaluation.evaluate` (dims ``station`` and
        optionally ``layer``; coords ``lat``, ``lon``), or a (Geo)DataFrame with ``lat``/``lon``.
        One feature per station and layer (:func:`xsomo.evaluation.to_geodataframe`): every
        variable and coordinate becomes a field; the field ``layer`` (0: footprint mix of
        layers 1-3; 1, 2, 3: one layer) and ``layer_label`` say which layer a feature
        scores (filter on them in GIS); the footprint weights are the fields
        ``footprint_weight_layer1..3``.
    path
        The ``.gpkg`` to write (replaced atomically).
    layer_name
        Name of the vector layer inside the GeoPackage.
    overwrite
        Replace an existing file.
    style
        Store a default QGIS style in the GeoPackage's ``layer_styles`` table: points in
        graduated colours of ``pearson_r`` over quantile classes of the data
        (:func:`metric_points_qml`). Off by default: GDAL then lists ``layer_styles`` as a
        second layer, and readers such as ``geopandas.read_file`` warn unless given
        ``layer="station_metrics"``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import pyogrio

    gdf = to_geodataframe(metrics)
    with atomic_path(path, overwrite=overwrite) as tmp:
        pyogrio.write_dataframe(
            gdf,
            tmp,
            layer=layer_name,
            driver="GPKG",
            dataset_options={"VERSION": GPKG_VERSION},
            layer_options={"SPATIAL_INDEX": "YES"},
        )
        if style and "pearson_r" in gdf.columns:
            write_gpkg_style(tmp, layer_name, metric_points_qml(gdf["pearson_r"].to_numpy(float), "pearson_r"))
    return pathlib.Path(path).expanduser()


_VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


def metric_points_qml(values: np.ndarray, field: str, *, classes: int = 5) -> str:
    """A QGIS style (QML) for station points: graduated colours of ``field`` over classes from the data.

    The classes are equal-count (quantile) ranges of the finite values, so stations whose r
    lies between 0.90 and 0.99 get five colours instead of one on a 0..1 scale.
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    edges = np.unique(np.quantile(v, np.linspace(0, 1, classes + 1))) if v.size else np.array([0.0, 1.0])
    if edges.size < 2:
        edges = np.array([edges[0] - 0.01, edges[0] + 0.01])
    n = edges.size - 1
    colours = [_VIRIDIS[round(k * (len(_VIRIDIS) - 1) / max(n - 1, 1))] for k in range(n)]
    ranges = "\n".join(
        f'      <range lower="{edges[k]:.6g}" upper="{edges[k + 1]:.6g}" symbol="{k}" '
        f'label="{edges[k]:.3f} - {edges[k + 1]:.3f}" render="true"/>'
        for k in range(n)
    )
    symbols = "\n".join(
        f'      <symbol type="marker" name="{k}" alpha="1" clip_to_extent="1" force_rhr="0">\n'
        '        <layer class="SimpleMarker" enabled="1" locked="0" pass="0">\n'
        f'          <Option type="Map"><Option type="QString" name="color" value="{int(c[1:3], 16)},{int(c[3:5], 16)},{int(c[5:7], 16)},255"/>'
        '<Option type="QString" name="name" value="circle"/><Option type="QString" name="outline_color" value="35,35,35,255"/>'
        '<Option type="QString" name="size" value="3"/></Option>\n'
        "        </layer>\n      </symbol>"
        for k, c in enumerate(colours)
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.22.0" styleCategories="Symbology">\n'
        f'  <renderer-v2 type="graduatedSymbol" attr="{field}" graduatedMethod="GraduatedColor" '
        'symbollevels="0" enableorderby="0" forceraster="0">\n'
        f"    <ranges>\n{ranges}\n    </ranges>\n    <symbols>\n{symbols}\n    </symbols>\n"
        "  </renderer-v2>\n</qgis>\n"
    )


def write_gpkg_style(gpkg: str | os.PathLike[str], layer: str, qml: str, *, name: str = "xsomo") -> None:
    """Store ``qml`` as the default style of ``layer`` in the GeoPackage's ``layer_styles`` table (QGIS's)."""
    import sqlite3

    con = sqlite3.connect(os.fspath(gpkg))
    try:
        row = con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
        geom = row[0] if row else "geom"
        con.execute(
            """CREATE TABLE IF NOT EXISTS layer_styles (
                id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
                f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
                styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
                update_time DATETIME DEFAULT CURRENT_TIMESTAMP)"""
        )
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
            "styleName, styleQML, styleSLD, useAsDefault, description, owner) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '')",
            (layer, geom, name, qml, "xsomo: stations coloured by pearson_r (quantile classes)"),
        )
        con.commit()
    finally:
        con.close()
