"""GIS export: Cloud-Optimized GeoTIFFs of soil-moisture maps and GeoPackages of station metrics.

- :func:`to_cog` (``ds.somo.to_cog``, ``xsomo export ... --out map.tif``): one day, or a
  period statistic (``"mean"``, ``"anomaly"``) of one layer, as a north-up EPSG:4326
  Cloud-Optimized GeoTIFF (DEFLATE with the floating-point predictor, internal
  overviews), written through rioxarray/GDAL's COG driver.
- :func:`metrics_to_gpkg` (``xsomo export --metrics metrics.nc --out metrics.gpkg``):
  station skill metrics as points in EPSG:4326, GeoPackage 1.3.

Both write atomically: a temporary file in the target folder, renamed on success.

The anomaly
-----------
``stat="anomaly"`` over a period ``P = [start, end]`` (for example the summer of 2018) is the
normalised anomaly (z-score) of the period mean against the same calendar window in the
other years of the data set:

.. math::

    z = \\frac{m_0 - \\bar m}{s}, \\qquad m_k = \\operatorname{mean}_{t \\in P + k\\,\\mathrm{years}} \\theta(t)

where :math:`m_0` is the mean over ``P`` itself, :math:`\\bar m` and :math:`s` (ddof = 1)
the mean and standard deviation of :math:`m_k` over every year shift ``k`` whose window
lies completely inside the data (``P`` itself included), optionally restricted to the
``climatology=(first_year, last_year)`` windows. At least three windows are needed. A cell
whose window means do not vary (``s = 0``) gets NaN.
"""

from __future__ import annotations

import math
import os
import pathlib
import tempfile
import warnings
from collections.abc import Hashable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import MissingVariableError, XsomoKeyError, XsomoValueError

__all__ = ["metrics_to_gpkg", "period_anomaly", "select_map", "to_cog"]

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


def _window(da: xr.DataArray, start: pd.Timestamp, end: pd.Timestamp) -> xr.DataArray | None:
    """The days of ``[start, end]`` if the data cover all of them, else None."""
    t = pd.DatetimeIndex(da[cv.TIME].values)
    if t.size == 0 or start < t[0].normalize() or end > t[-1].normalize():
        return None
    sub = da.sel({cv.TIME: slice(start, end + pd.Timedelta(hours=23, minutes=59, seconds=59))})
    return sub if sub.sizes[cv.TIME] else None


def _nanmean_time(da: xr.DataArray) -> xr.DataArray:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        return da.mean(cv.TIME, skipna=True)


def _parse_period(period: Sequence[DateLike] | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    if period is None or len(period) != 2:
        raise XsomoValueError(
            "a period statistic needs period=(start, end), e.g. ('2018-06-01', '2018-08-31')"
        )
    start, end = (pd.Timestamp(p).normalize() for p in period)
    if end < start:
        raise XsomoValueError(f"period ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d})")
    return start, end


def period_anomaly(
    da: xr.DataArray,
    period: Sequence[DateLike],
    *,
    climatology: tuple[int, int] | None = None,
) -> xr.DataArray:
    """Normalised anomaly of the mean over ``period`` against the same window in other years.

    Parameters
    ----------
    da
        Daily data with a ``time`` dimension.
    period
        ``(start, end)``, both days included.
    climatology
        ``(first_year, last_year)``: only windows starting in these years form the
        reference (default: every window that the data cover completely).

    Returns
    -------
    xarray.DataArray
        The z-score (dimensionless), with the attribute ``n_years`` (windows in the reference).

    Raises
    ------
    XsomoValueError
        The period is not covered by the data, or fewer than three windows are.

    Notes
    -----
    See the module docstring: :math:`z = (m_0 - \\bar m) / s` over year-shifted windows.
    """
    start, end = _parse_period(period)
    t = pd.DatetimeIndex(da[cv.TIME].values)
    target = _window(da, start, end)
    if target is None:
        raise XsomoValueError(
            f"period {start:%Y-%m-%d} … {end:%Y-%m-%d} is not inside the data ({_time_range(da)})"
        )
    means: list[xr.DataArray] = []
    shifts: list[int] = []
    for k in range(t[0].year - start.year - 1, t[-1].year - start.year + 2):
        s, e = start + pd.DateOffset(years=k), end + pd.DateOffset(years=k)
        if climatology is not None and not (climatology[0] <= s.year <= climatology[1]):
            continue
        w = _window(da, s, e)
        if w is None:
            continue
        means.append(_nanmean_time(w).drop_vars(cv.TIME, errors="ignore"))
        shifts.append(k)
    if len(means) < 3:
        raise XsomoValueError(
            f"an anomaly needs the window {start:%m-%d} … {end:%m-%d} in at least 3 years of the data "
            f"({_time_range(da)}, climatology={climatology}); found {len(means)}"
        )
    stack = xr.concat(means, dim="window")
    m0 = _nanmean_time(target).drop_vars(cv.TIME, errors="ignore")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Degrees of freedom", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value", RuntimeWarning)
        clim_mean = stack.mean("window")
        clim_std = stack.std("window", ddof=1)
        z = (m0 - clim_mean) / clim_std.where(clim_std > 0)
    z.attrs = {
        "long_name": "normalised soil-moisture anomaly of the period mean",
        "units": "1",
        "n_years": len(means),
    }
    return z


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
                day = pd.Timestamp(time).normalize()
                days = pd.DatetimeIndex(da[cv.TIME].values).normalize()
                hit = np.flatnonzero(days == day)
                if hit.size == 0:
                    raise XsomoKeyError(
                        f"day {day:%Y-%m-%d} is not in the data ({_time_range(da)})"
                    )
                da = da.isel({cv.TIME: int(hit[0])})
        when = pd.Timestamp(da[cv.TIME].values) if cv.TIME in da.coords else None
        out = da
        attrs = {
            **cv.SM_ATTRS,
            "units": units,
            "date": f"{when:%Y-%m-%d}" if when is not None else "",
        }
    elif stat == "mean":
        start, end = _parse_period(period)
        w = _window(da, start, end)
        if w is None:
            raise XsomoValueError(
                f"period {start:%Y-%m-%d} … {end:%Y-%m-%d} is not inside the data ({_time_range(da)})"
            )
        out = _nanmean_time(w)
        attrs = {
            **cv.SM_ATTRS,
            "units": units,
            "long_name": "mean volumetric soil moisture over the period",
        }
        attrs["period"] = f"{start:%Y-%m-%d}/{end:%Y-%m-%d}"
    elif stat == "anomaly":
        out = period_anomaly(da, period, climatology=climatology)  # type: ignore[arg-type]
        start, end = _parse_period(period)
        attrs = {**out.attrs, "period": f"{start:%Y-%m-%d}/{end:%Y-%m-%d}"}
        if climatology is not None:
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
    out.attrs = attrs
    out.name = f"{cv.layer_var_name(layer)}_{stat or 'day'}"
    return out


# ----------------------------------------------------------------------------- writing


def _atomic_target(
    path: str | os.PathLike[str], *, overwrite: bool
) -> tuple[pathlib.Path, pathlib.Path]:
    path = pathlib.Path(path).expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (or --overwrite) to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder for {path.name}; create it first")
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"{path.parent}: folder is not writable; choose another --out")
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    os.unlink(tmp)  # the drivers create the file themselves
    return path, pathlib.Path(tmp)


def _overview_count(nx: int, ny: int, blocksize: int) -> int:
    """Halvings until the coarsest overview fits one tile (at least one; never below 1 pixel)."""
    biggest, smallest = max(nx, ny), min(nx, ny)
    if smallest < 2:
        return 0
    n = max(1, math.ceil(math.log2(biggest / blocksize))) if biggest > blocksize else 1
    return min(n, int(math.log2(smallest)))


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
        Missing or uncovered period, unknown ``stat``.

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
    # north-up: rows from north to south
    if field[cv.LAT].size > 1 and field[cv.LAT].values[0] < field[cv.LAT].values[-1]:
        field = field.isel({cv.LAT: slice(None, None, -1)})
    field = field.transpose(cv.LAT, cv.LON).astype(np.float32)
    tags = {str(k): str(v) for k, v in field.attrs.items()}
    field.attrs = {}
    field.encoding = {}
    field = (
        field.drop_vars("spatial_ref", errors="ignore")
        .rio.set_spatial_dims(x_dim=cv.LON, y_dim=cv.LAT)
        .rio.write_crs(cv.CRS)
        .rio.write_nodata(np.nan, encoded=False)
    )
    if field.sizes[cv.LAT] > 1 and field.sizes[cv.LON] > 1:
        # the exact grid (edges on whole tenths), not one accumulated from float centres
        from affine import Affine

        g = cv.GridSpec.from_coords(field[cv.LAT].values, field[cv.LON].values)
        field = field.rio.write_transform(
            Affine(g.resolution, 0.0, g.west, 0.0, -g.resolution, g.north)
        )
    n_ov = (
        _overview_count(field.sizes[cv.LON], field.sizes[cv.LAT], blocksize)
        if overview_count is None
        else overview_count
    )
    target, tmp = _atomic_target(path, overwrite=overwrite)
    try:
        with warnings.catch_warnings():
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
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


# ----------------------------------------------------------------------------- station metrics


def _metrics_frame(metrics: Any) -> Any:
    """A GeoDataFrame of points (EPSG:4326) from a metrics Dataset or (Geo)DataFrame."""
    import geopandas as gpd

    if isinstance(metrics, gpd.GeoDataFrame):
        gdf = metrics if metrics.crs is not None else metrics.set_crs(cv.CRS)
        return gdf.to_crs(cv.CRS)
    if isinstance(metrics, pd.DataFrame):
        df = (
            metrics.reset_index()
            if metrics.index.name or isinstance(metrics.index, pd.MultiIndex)
            else metrics
        )
    elif isinstance(metrics, xr.Dataset):
        if cv.STATION not in metrics.dims:
            raise XsomoValueError(
                f"metrics have dims {dict(metrics.sizes)}; a 'station' dimension is needed"
            )
        dims = [d for d in (cv.STATION, cv.LAYER) if d in metrics.dims]
        other = set(metrics.dims) - set(dims)
        if other:
            raise XsomoValueError(
                f"metrics have extra dims {sorted(map(str, other))}; select one value of each first"
            )
        df = metrics.reset_coords().to_dataframe().reset_index()
    else:
        raise XsomoValueError(
            f"metrics must be an xarray Dataset or a (Geo)DataFrame, not {type(metrics).__name__}"
        )
    for c in (cv.LAT, cv.LON):
        if c not in df.columns:
            raise MissingVariableError(
                f"metrics have no {c!r} coordinate; the station points need lat and lon"
            )
    df = df[np.isfinite(df[cv.LAT].astype(float)) & np.isfinite(df[cv.LON].astype(float))].copy()
    for c in df.columns:
        col = df[c]
        if col.dtype == bool:
            df[c] = col.astype(np.int8)  # GeoPackage booleans are integers
        elif col.dtype == object or str(col.dtype).startswith(("string", "str")):
            df[c] = col.astype(str)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df[cv.LON], df[cv.LAT]), crs=cv.CRS)


def metrics_to_gpkg(
    metrics: Any,
    path: str | os.PathLike[str],
    *,
    layer_name: str = "station_metrics",
    overwrite: bool = True,
) -> pathlib.Path:
    """Write station metrics as points to a GeoPackage 1.3 (EPSG:4326).

    Parameters
    ----------
    metrics
        The metrics Dataset of :func:`xsomo.evaluation.scores.evaluate` (dims ``station`` and
        optionally ``layer``; coords ``lat``, ``lon``), or a (Geo)DataFrame with ``lat``/``lon``.
        One feature per station and layer; every variable and coordinate becomes a field.
    path
        The ``.gpkg`` to write (replaced atomically).
    layer_name
        Name of the vector layer inside the GeoPackage.
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import pyogrio

    gdf = _metrics_frame(metrics)
    target, tmp = _atomic_target(path, overwrite=overwrite)
    try:
        pyogrio.write_dataframe(
            gdf,
            tmp,
            layer=layer_name,
            driver="GPKG",
            dataset_options={"VERSION": GPKG_VERSION},
            layer_options={"SPATIAL_INDEX": "YES"},
        )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
