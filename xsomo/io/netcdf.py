"""xsomo's one netCDF writer: fills variables block by block, deterministically and atomically.

Large files are written in spatial bands (the sample world's ``europe`` preset never
holds a whole field in memory), so this uses netCDF4 directly: a file is created with
all dimensions, coordinates and attributes, filled slice by slice, and moved into
place (:func:`xsomo.io.atomic.atomic_path`) only when it is complete. No attribute
holds a timestamp, so the same data write byte-identical files.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.nc"
>>> with NcWriter(path, dims={"lat": 2}, coords={"lat": lat_coord(np.array([0.05, 0.15]))},
...               variables={"v": Var(("lat",), "f4", {"units": "1"})}) as f:
...     f.write("v", slice(None), np.array([1.0, np.nan]))
>>> import xarray as xr
>>> xr.open_dataset(path)["v"].values.tolist()
[1.0, nan]
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import netCDF4
import numpy as np

from xsomo.conventions import LAT_ATTRS, LON_ATTRS, TIME_ATTRS
from xsomo.io.atomic import atomic_path


@dataclass
class Var:
    """Specification of one netCDF variable."""

    dims: tuple[str, ...]
    dtype: str = "f4"
    attrs: dict[str, Any] = field(default_factory=dict)
    chunks: tuple[int, ...] | None = None
    #: (scale_factor, add_offset) to pack floats into int16, as ECMWF's netCDF files do
    packing: tuple[float, float] | None = None
    fill: float | int | None = None


class NcWriter:
    """Create a netCDF4 file, fill it piecewise with :meth:`write`, then :meth:`close`.

    Parameters
    ----------
    path
        Final file path (its folder is created); data go to a hidden temporary file
        beside it until :meth:`close` renames it onto ``path``.
    dims
        Dimension sizes.
    coords
        Coordinate variables: name -> (values, attrs, dtype).
    variables
        Data variables.
    attrs
        Global attributes.
    complevel
        zlib level (0 disables compression).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        dims: Mapping[str, int],
        coords: Mapping[str, tuple[np.ndarray, Mapping[str, Any], str]],
        variables: Mapping[str, Var],
        attrs: Mapping[str, Any] | None = None,
        complevel: int = 4,
    ) -> None:
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._done = False
        self._atomic: contextlib.AbstractContextManager[pathlib.Path] = atomic_path(self.path)
        self.tmp = self._atomic.__enter__()
        try:
            self.ds = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        try:
            self._define(dims, coords, variables, attrs, complevel)
        except BaseException:
            self.abort()
            raise

    def _define(
        self,
        dims: Mapping[str, int],
        coords: Mapping[str, tuple[np.ndarray, Mapping[str, Any], str]],
        variables: Mapping[str, Var],
        attrs: Mapping[str, Any] | None,
        complevel: int,
    ) -> None:
        self.ds.set_auto_maskandscale(True)
        for name, size in dims.items():
            self.ds.createDimension(name, size)
        for name, (values, cattrs, dtype) in coords.items():
            v = self.ds.createVariable(name, dtype, (name,))
            v.setncatts(dict(cattrs))
            v[:] = np.asarray(values)
        self.vars = dict(variables)
        for name, spec in variables.items():
            dtype = "i2" if spec.packing else spec.dtype
            fill = spec.fill
            if fill is None:
                # floats: NaN; packed: -32767; integers: no fill value (masks and flags stay integers)
                fill = -32767 if spec.packing else (np.float32(np.nan) if dtype == "f4" else False)
            kwargs: dict[str, Any] = {"fill_value": fill}
            if complevel:
                kwargs.update(zlib=True, complevel=complevel, shuffle=True)
            if spec.chunks:
                kwargs["chunksizes"] = tuple(
                    min(c, dims[d]) for c, d in zip(spec.chunks, spec.dims, strict=True)
                )
            v = self.ds.createVariable(name, dtype, spec.dims, **kwargs)
            if spec.packing:
                v.setncattr("scale_factor", np.float64(spec.packing[0]))
                v.setncattr("add_offset", np.float64(spec.packing[1]))
            v.setncatts(dict(spec.attrs))
        if attrs:
            self.ds.setncatts(dict(attrs))

    def write(self, name: str, index: tuple[Any, ...] | slice, data: np.ndarray) -> None:
        """Write ``data`` into ``name[index]`` (NaN becomes the fill value; packed variables are packed here)."""
        var = self.ds.variables[name]
        arr = np.asarray(data)
        spec = self.vars.get(name)
        if spec is not None and spec.packing:
            scale, offset = spec.packing
            packed = np.round((arr.astype(np.float64) - offset) / scale)
            bad = ~np.isfinite(packed)
            packed = np.clip(np.where(bad, 0, packed), -32766, 32767).astype(np.int16)
            packed[bad] = -32767
            var.set_auto_maskandscale(False)
            var[index] = packed
            return
        if arr.dtype.kind == "f" and spec is not None and spec.dtype == "f4":
            var.set_auto_maskandscale(False)
            var[index] = arr.astype(np.float32)  # NaN is the fill value
            return
        if arr.dtype.kind == "f":
            arr = np.ma.masked_invalid(arr)
        var[index] = arr

    def close(self) -> pathlib.Path:
        """Close the file and move it into place (atomic on one file system)."""
        self._done = True
        try:
            self.ds.close()
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Close and remove the temporary file; ``path`` is left as it was (no-op after close)."""
        if self._done:
            return
        self._done = True
        err = RuntimeError(f"writing {self.path} aborted")
        try:
            if self.ds.isopen():
                self.ds.close()
        finally:
            self._atomic.__exit__(RuntimeError, err, None)

    def __enter__(self) -> NcWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def trim_mantissa(x: np.ndarray, bits: int = 12) -> np.ndarray:
    """Round float32 values to ``bits`` explicit mantissa bits (relative precision ``2**-bits``).

    Zeroed low bits make the data compress well; rounding is deterministic and NaN stays NaN.
    """
    a = np.ascontiguousarray(x, dtype=np.float32)
    drop = 23 - int(bits)
    if drop <= 0:
        return a.copy()
    u = a.view(np.uint32)
    half = np.uint32(1 << (drop - 1))
    mask = np.uint32((0xFFFFFFFF >> drop) << drop)
    out = ((u + half) & mask).view(np.float32)
    return np.where(np.isfinite(a), out, a)


def time_coord(
    times: Sequence[Any] | np.ndarray, *, units: str = "days since 1970-01-01 00:00:00"
) -> tuple[np.ndarray, dict[str, Any], str]:
    """A CF time coordinate ``(values, attrs, dtype)`` for datetime-like ``times``."""
    t = np.asarray(times, dtype="datetime64[s]")
    step, _, origin = units.partition(" since ")
    origin_dt = np.datetime64(origin.strip().replace(" ", "T").split(".")[0], "s")
    seconds = {"days": 86400, "hours": 3600, "seconds": 1}[step.strip()]
    values = (t - origin_dt).astype(np.int64) / seconds
    dtype = (
        "i4" if np.all(values == np.round(values)) and abs(values).max(initial=0) < 2**31 else "f8"
    )
    return (
        values.astype(dtype),
        {**TIME_ATTRS, "units": units, "calendar": "proleptic_gregorian"},
        dtype,
    )


def lat_coord(values: np.ndarray) -> tuple[np.ndarray, dict[str, Any], str]:
    """A CF latitude coordinate ``(values, attrs, dtype)``."""
    return np.asarray(values, float), dict(LAT_ATTRS), "f8"


def lon_coord(values: np.ndarray) -> tuple[np.ndarray, dict[str, Any], str]:
    """A CF longitude coordinate ``(values, attrs, dtype)``."""
    return np.asarray(values, float), dict(LON_ATTRS), "f8"


__all__ = ["NcWriter", "Var", "lat_coord", "lon_coord", "time_coord", "trim_mantissa"]
