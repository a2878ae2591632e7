"""Regridding between regular lat/lon grids behind one interface.

Two backends: `xarray-regrid <https://github.com/xarray-contrib/xarray-regrid>`_
(the default, pure xarray/numpy) and `xESMF <https://xesmf.readthedocs.io>`_ when
``esmpy`` imports. Both are called through :func:`regrid`, which

- accepts ``lat``/``lon`` or ``latitude``/``longitude`` in any order (descending
  ERA5 latitudes included) and returns ascending ``lat``/``lon``;
- cuts the source to the target box plus a margin of source cells, so that border
  cells see all the source cells they overlap and are not NaN;
- returns dense numpy/dask arrays (xarray-regrid returns ``sparse`` arrays when
  ``opt_einsum`` is missing) and keeps the source float dtype (float32 stays float32).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, cast

import numpy as np
import xarray as xr

from xsomo import conventions as cv
from xsomo.conventions import GridSpec, XArray
from xsomo.exceptions import GridMismatchError, XsomoError, XsomoValueError

Method = Literal["conservative", "bilinear"]
Backend = Literal["xarray-regrid", "xesmf"]
T = TypeVar("T", bound="xr.Dataset | xr.DataArray")

_LAT_NAMES = ("lat", "latitude", "y")
_LON_NAMES = ("lon", "longitude", "x")


class BackendUnavailableError(XsomoError, ImportError):
    """The requested regridding backend cannot be imported."""


def normalise_latlon(obj: T) -> T:
    """Rename ``latitude``/``longitude`` to ``lat``/``lon`` and sort both ascending; a region
    that crosses 0° in 0..360 longitudes gets them in -180..180 (one block).

    Raises
    ------
    GridMismatchError
        When no latitude or longitude dimension is found.
    """
    out: XArray = obj
    rename = {}
    for canon, names in (("lat", _LAT_NAMES), ("lon", _LON_NAMES)):
        if canon in out.dims:
            continue
        found = [n for n in names if n in out.dims]
        if not found:
            raise GridMismatchError(
                f"no {canon!r} dimension in {getattr(out, 'name', None) or 'the data'} "
                f"(dims {tuple(out.dims)}); expected one of {names}. Rename the spatial dims."
            )
        rename[found[0]] = canon
    if rename:
        out = out.rename(rename)
    for dim in ("lat", "lon"):
        # float32 coords (40.1 -> 40.099998): back to the decimals they were written from (rounding
        # to 5 decimals had made 128.15 into 128.14999, float32's step there being 7.6e-6)
        if out[dim].dtype == np.float32:
            out = out.assign_coords({dim: cv.decimal_coords(out[dim].values)})
    lon = np.sort(np.asarray(out["lon"].values, dtype=float))
    if lon.size > 2 and lon[0] >= 0.0 and lon[-1] > 180.0 and lon[-1] - lon[0] < 360.0:
        gaps = np.diff(lon)
        k = int(np.argmax(gaps))
        if gaps[k] > 180.0 and gaps[k] > 10 * float(np.median(gaps)):
            # a region across 0° in 0..360 (0..0.5 and 359.5..359.9, as cut from a global
            # ERA5-Land download) is one block in -180..180; it had become a grid of 3600
            # columns, and stations west of 0° fell outside it
            values = np.asarray(out["lon"].values, dtype=float)
            out = out.assign_coords(lon=np.where(values > 180.0, np.round(values - 360.0, 9), values))
    for dim in ("lat", "lon"):
        vals = out[dim].values
        if vals.size > 1 and not np.all(np.diff(vals) > 0):
            out = out.sortby(dim)
    return cast(T, out)


def grid_of(obj: XArray | GridSpec) -> GridSpec:
    """The :class:`~xsomo.conventions.GridSpec` of a grid spec or a lat/lon object."""
    if isinstance(obj, GridSpec):
        return obj
    obj = normalise_latlon(obj)
    return GridSpec.from_coords(obj["lat"].values, obj["lon"].values)


def target_dataset(grid: GridSpec) -> xr.Dataset:
    """An empty Dataset holding the ``lat``/``lon`` centre coordinates of ``grid``."""
    return xr.Dataset(coords=grid.coords())


def check_longitudes(source: XArray, grid: GridSpec, what: str = "the source") -> None:
    """Refuse longitudes in 0..360 when the target grid lies (partly) west of 0° (-180..180).

    ERA5 on the CDS, MSWEP and many global products run from 0 to 360; xsomo's grids run
    from -180 to 180. Cutting a 0..360 field to a box west of 0 finds nothing there, so
    the mismatch is named instead of a misleading coverage message.

    Raises
    ------
    GridMismatchError
        Longitudes above 180 while the target grid's west edge is below 0.
    """
    lon = np.asarray(normalise_latlon(source)["lon"].values, dtype=float)
    if lon.size and float(np.nanmax(lon)) > 180.0 and grid.west < 0:
        raise GridMismatchError(
            f"{what}: longitudes run 0..360 ({np.nanmin(lon):g}..{np.nanmax(lon):g}, the ECMWF/CDS convention), "
            f"but the target grid uses -180..180 (west {grid.west:g}). Convert them first, e.g. "
            "ds = ds.assign_coords(lon=((ds.lon + 180) % 360) - 180).sortby('lon') "
            "(use 'longitude' if that is the name), or `cdo sellonlatbox,-180,180,-90,90 in.nc out.nc`."
        )


def _cut(source: XArray, grid: GridSpec, margin: int) -> XArray:
    res_lat = (
        float(np.abs(np.median(np.diff(source["lat"].values)))) if source.sizes["lat"] > 1 else 1.0
    )
    res_lon = (
        float(np.abs(np.median(np.diff(source["lon"].values)))) if source.sizes["lon"] > 1 else 1.0
    )
    pad_lat, pad_lon = margin * res_lat, margin * res_lon
    return source.sel(
        lat=slice(grid.south - pad_lat, grid.north + pad_lat),
        lon=slice(grid.west - pad_lon, grid.east + pad_lon),
    )


def _check_cover(source: XArray, grid: GridSpec, method: Method) -> None:
    lat, lon = source["lat"].values, source["lon"].values
    if lat.size < 2 or lon.size < 2:
        raise GridMismatchError(
            f"the source grid has {lat.size} x {lon.size} points; regridding needs at least 2 x 2."
        )
    rlat, rlon = abs(lat[1] - lat[0]), abs(lon[1] - lon[0])
    tol = 1e-6
    if method == "bilinear":
        # bilinear needs source points around every target centre
        south, north = lat[0], lat[-1]
        west, east = lon[0], lon[-1]
        t_south, t_north = grid.lat[0], grid.lat[-1]
        t_west, t_east = grid.lon[0], grid.lon[-1]
    else:
        south, north = lat[0] - rlat / 2, lat[-1] + rlat / 2
        west, east = lon[0] - rlon / 2, lon[-1] + rlon / 2
        t_south, t_north, t_west, t_east = grid.south, grid.north, grid.west, grid.east
    if t_south < south - tol or t_north > north + tol or t_west < west - tol or t_east > east + tol:
        raise GridMismatchError(
            f"the source covers lat {south:g}..{north:g}, lon {west:g}..{east:g}, which does not "
            f"cover the target grid (lat {t_south:g}..{t_north:g}, lon {t_west:g}..{t_east:g}) for "
            f"{method} regridding. Provide a source that extends beyond the target grid."
        )


def _densify(obj: XArray, dtypes: dict) -> XArray:
    def fix(da: xr.DataArray, dtype: np.dtype | None) -> xr.DataArray:
        data = da.data
        if hasattr(data, "todense") and not hasattr(data, "dask"):
            da = da.copy(data=data.todense())
        elif hasattr(data, "dask"):
            meta = getattr(data, "_meta", None)
            if meta is not None and hasattr(meta, "todense"):
                da = da.copy(
                    data=data.map_blocks(
                        lambda b: b.todense(), dtype=data.dtype, meta=np.array((), dtype=data.dtype)
                    )
                )
        if dtype is not None and dtype.kind == "f" and hasattr(da.data, "dask"):
            # xarray's interp declares the source's dtype for a dask array but computes float64
            # chunks: a lazy bilinear regrid of float32 gave float64 values (and features computed
            # from them differed from those of the same data in memory)
            da = da.copy(
                data=da.data.map_blocks(
                    lambda b, t=dtype: b.astype(t, copy=False), dtype=dtype, meta=np.array((), dtype=dtype)
                )
            )
        elif dtype is not None and dtype.kind == "f" and da.dtype != dtype:
            da = da.astype(dtype)
        return da

    if isinstance(obj, xr.DataArray):
        return fix(obj, dtypes.get(None))
    return obj.assign({k: fix(v, dtypes.get(k)) for k, v in obj.data_vars.items()})


def regrid(
    source: T,
    target: XArray | GridSpec,
    *,
    method: Method = "conservative",
    backend: Backend = "xarray-regrid",
    margin: int = 2,
    skipna: bool = True,
) -> T:
    """Regrid a lat/lon field onto a regular target grid.

    Parameters
    ----------
    source
        DataArray or Dataset with ``lat``/``lon`` (or ``latitude``/``longitude``) dims,
        regularly spaced, any order; other dims (``time``, ``layer``) are carried along.
    target
        A :class:`~xsomo.conventions.GridSpec` or any object with ``lat``/``lon`` centres.
    method
        ``"conservative"`` (area-weighted, for upscaling finer inputs) or ``"bilinear"``.
    backend
        ``"xarray-regrid"`` (default) or ``"xesmf"`` (needs ``esmpy``).
    margin
        Source cells kept beyond the target box on each side.
    skipna
        Ignore NaN source cells and renormalise the weights of the valid ones
        (conservative: cells with any valid source cell get a value; bilinear: the valid
        corners of the four around each target centre). Without NaN both are exact.

    Returns
    -------
    Same type as ``source`` on the target grid, ascending ``lat``/``lon`` with CF
    attributes, dense arrays, float dtypes kept.

    Raises
    ------
    GridMismatchError
        When the source does not cover the target grid.
    BackendUnavailableError
        When ``backend="xesmf"`` and xESMF/esmpy cannot be imported.

    Notes
    -----
    Conservative regridding preserves the area-weighted integral
    :math:`\\sum_j A_j y_j = \\sum_i A_i x_i` (cell areas on the sphere) where the
    source covers the target cells completely.

    Examples
    --------
    >>> from xsomo.conventions import GridSpec
    >>> fine = GridSpec(0, 1, 50, 51, 0.05)
    >>> src = xr.DataArray(
    ...     np.ones(fine.shape, "float32"), coords=fine.coords(), dims=("lat", "lon")
    ... )
    >>> out = regrid(src, GridSpec(0, 1, 50, 51, 0.1))
    >>> out.shape, out.dtype.name, float(out.mean())
    ((10, 10), 'float32', 1.0)
    """
    if method not in ("conservative", "bilinear"):
        raise XsomoValueError(f"method={method!r}: use 'conservative' or 'bilinear'.")
    if backend not in ("xarray-regrid", "xesmf"):
        raise XsomoValueError(f"backend={backend!r}: use 'xarray-regrid' or 'xesmf'.")
    grid = target if isinstance(target, GridSpec) else grid_of(target)
    src: XArray = normalise_latlon(source)
    check_longitudes(src, grid)
    if grid.nlat == 1 or grid.nlon == 1:
        _check_cover(_cut(src, grid, margin), grid, method)
        return cast(T, _one_line(src, grid, method=method, backend=backend, margin=margin, skipna=skipna))
    src = _cut(src, grid, margin)
    _check_cover(src, grid, method)
    if isinstance(src, xr.DataArray):
        dtypes: dict = {None: src.dtype}
    else:
        dtypes = {k: v.dtype for k, v in src.data_vars.items()}
    if backend == "xesmf":
        out = _regrid_xesmf(src, grid, method)
    else:
        out = _regrid_xarray_regrid(src, grid, method, skipna=skipna)
    out = _densify(out, dtypes)
    return cast(T, out.assign_coords(grid.coords()))


def _one_line(src: XArray, grid: GridSpec, **kw: Any) -> XArray:
    """:func:`regrid` onto a grid of one row or one column (a single cell, a strip).

    xarray-regrid takes a target's cell size from its neighbours: a lone row got a latitude
    band wider than its cell in conservative regridding (509.348 for 509.375 on a linear
    field), and a lone column failed (``zero-size array to reduction``). The grid is
    widened by a cell on a side the source covers, regridded, and cut back.
    """
    res = grid.resolution
    steps_lat = (res, -res) if grid.nlat == 1 else (0.0,)
    steps_lon = (res, -res) if grid.nlon == 1 else (0.0,)
    for dn in steps_lat:
        for de in steps_lon:
            wide = GridSpec(
                grid.west + min(de, 0.0), grid.east + max(de, 0.0),
                grid.south + min(dn, 0.0), grid.north + max(dn, 0.0), res,
            )  # fmt: skip
            try:
                out = regrid(src, wide, **kw)
            except GridMismatchError:
                continue
            return out.isel(
                lat=slice(1, None) if dn < 0 else slice(0, grid.nlat),
                lon=slice(1, None) if de < 0 else slice(0, grid.nlon),
            ).assign_coords(grid.coords())
    raise GridMismatchError(
        f"the target grid has {grid.nlat} x {grid.nlon} cells; regridding onto a single row or column needs the "
        "source to reach one cell beyond it on some side. Provide a source that extends beyond the target grid."
    )


def _regrid_xarray_regrid(src: XArray, grid: GridSpec, method: Method, *, skipna: bool) -> XArray:
    import xarray_regrid  # noqa: F401  (registers .regrid)

    tgt = target_dataset(grid)
    # xarray-regrid needs float coordinates of the same dtype
    src = src.assign_coords(lat=src["lat"].astype("float64"), lon=src["lon"].astype("float64"))
    if method == "conservative":
        return src.regrid.conservative(tgt, latitude_coord="lat", skipna=skipna)
    if not skipna:
        return _linear(src, tgt)
    # NaN-aware bilinear: weights of missing corners (sea points of a land-only field)
    # are renormalised over the valid ones, so coastal cells are not lost
    if isinstance(src, xr.DataArray):
        return _linear_skipna(src, tgt)
    return src.map(lambda da: _linear_skipna(da, tgt) if {"lat", "lon"} <= set(da.dims) else da)


def _linear(src: XArray, tgt: xr.Dataset) -> XArray:
    """xarray-regrid's ``.regrid.linear`` with the axes interpolated in a fixed order, lat then lon.

    xarray-regrid 0.4 passes the coordinates to ``interp`` from a ``set`` of their names,
    whose order follows Python's string hashing, which differs from process to process: lat
    then lon in some runs, lon then lat in others, results that differ in the last bit
    (18,752 of 1.3 million values of the demo world's net radiation). The prepared drivers,
    and so every trained model, differed between two runs of the same command.
    """
    from xarray_regrid.regrid import validate_input
    from xarray_regrid.utils import format_for_regrid

    tgt = validate_input(src, tgt, "time")
    formatted = format_for_regrid(src, tgt)
    out = formatted.interp({cv.LAT: tgt[cv.LAT], cv.LON: tgt[cv.LON]}, method="linear")
    for dim in (cv.LAT, cv.LON):  # interp drops some of the coordinates' attributes
        out[dim].attrs = dict(src[dim].attrs)
    return out


def _linear_skipna(da: xr.DataArray, tgt: xr.Dataset) -> xr.DataArray:
    valid = da.notnull()
    num = _linear(da.fillna(0), tgt)
    den = _linear(valid.astype(da.dtype if da.dtype.kind == "f" else "float64"), tgt)
    out = num / den.where(den > 1e-6)  # NaN where no valid corner (no 0/0 warnings)
    out.attrs = dict(da.attrs)
    return out


def _bounds(centres: np.ndarray) -> np.ndarray:
    step = np.diff(centres)
    edges = np.concatenate(
        [[centres[0] - step[0] / 2], centres[:-1] + step / 2, [centres[-1] + step[-1] / 2]]
    )
    return edges


def _regrid_xesmf(src: XArray, grid: GridSpec, method: Method) -> XArray:
    try:
        import xesmf
    except Exception as err:  # ImportError, or esmpy failing to load its library
        raise BackendUnavailableError(
            f"backend='xesmf' needs xESMF and esmpy, which cannot be imported here ({err}). "
            "Install them (conda install -c conda-forge xesmf) or use backend='xarray-regrid'."
        ) from err
    tgt = target_dataset(grid)
    if method == "conservative":
        src = src.assign_coords(
            lat_b=("lat_b", _bounds(src["lat"].values)), lon_b=("lon_b", _bounds(src["lon"].values))
        )
        tgt = tgt.assign_coords(
            lat_b=("lat_b", _bounds(grid.lat)), lon_b=("lon_b", _bounds(grid.lon))
        )
    regridder = xesmf.Regridder(src, tgt, method=method, unmapped_to_nan=True)
    out = regridder(src, keep_attrs=True)
    if isinstance(out, xr.Dataset):
        out = out.drop_vars(["lat_b", "lon_b"], errors="ignore")
    return out


def cell_area(grid: GridSpec) -> xr.DataArray:
    """Area of each grid cell on the unit sphere (steradians), ``(lat, lon)``."""
    lat_edges = np.deg2rad(grid.south + grid.resolution * np.arange(grid.nlat + 1))
    band = np.diff(np.sin(lat_edges)) * np.deg2rad(grid.resolution)
    area = np.broadcast_to(band[:, None], grid.shape)
    return xr.DataArray(area.copy(), coords=grid.coords(), dims=("lat", "lon"), name="cell_area")


__all__ = [
    "BackendUnavailableError",
    "cell_area",
    "check_longitudes",
    "grid_of",
    "normalise_latlon",
    "regrid",
    "target_dataset",
]

_ = cv  # conventions imported for type references in docs
