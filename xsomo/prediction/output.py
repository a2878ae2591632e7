"""SoMo.ml-EU files: one CF-1.8 netCDF4 file per layer and year, written in a stream.

:func:`to_files` computes the lazy prediction of :func:`xsomo.prediction.inference.predict` ONE
spatial block at a time, for every layer and year at once (the roll-out is the
expensive part and runs exactly once per block), and writes each block into all of the
run's files with netCDF4 region writes. The files are written as ``*.tmp`` and renamed
(``os.replace``) only when complete, so a final name never holds a partial file. A
killed run restarted with the same call skips the files that are already final.

File layout (as the published SoMo.ml-EU dataset): ``SoMo.ml-EU_layer{N}_{YYYY}.nc``
holding the variable ``layer{N}`` ``(time, lat, lon)``, latitude descending, longitude
ascending, float32 in m3 m-3, zlib-compressed, with a ``spatial_ref`` grid mapping
(EPSG:4326) that GDAL, QGIS and rioxarray read.

Chunking: ``time`` 32 days × ``lat`` × ``lon`` equal to the prediction's spatial block
(32 × 32 cells by default), i.e. 128 KiB per chunk before compression. A daily map of
the Europe grid (355 × 570) touches 12 × 18 chunks, a one-year series of one cell 12
chunks; per-day chunks (the netCDF default for record variables) would make that series
365 chunk reads, and whole-year columns would make a map read the full file. Spatial
chunks equal to the compute blocks mean every chunk is written once, whole, by one block.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pathlib
import shutil
import time as _time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import netCDF4
import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends.locks import HDF5_LOCK, NETCDFC_LOCK, combine_locks

from xsomo import conventions as cv
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoError, XsomoValueError

__all__ = ["FILE_CHUNK_DAYS", "OutputWriteError", "to_files"]

log = logging.getLogger(__name__)

#: Days per chunk along time in the files.
FILE_CHUNK_DAYS = 32
#: Largest spatial chunk side in the files.
FILE_CHUNK_CELLS = 64
#: zlib level (4: ~the size of level 9 at a third of the time for these fields).
COMPLEVEL = 4
TIME_UNITS = "days since 1970-01-01 00:00:00"
#: Temporary suffix; a final name only ever holds a complete file.
TMP_SUFFIX = ".tmp"

# indirections the tests use to inject failures (disk full, a kill between renames)
_replace = os.replace

#: netCDF-C/HDF5 are not thread-safe: every netCDF4 call here holds the locks xarray's
#: readers hold, so writing the output never races a dask thread reading the drivers.
_NC_LOCK = combine_locks([NETCDFC_LOCK, HDF5_LOCK])


class OutputWriteError(XsomoError, OSError):
    """Writing the output files failed (unwritable folder, disk full, ...)."""


@dataclass
class _Target:
    layer: int
    year: int
    path: pathlib.Path
    tmp: pathlib.Path
    t0: int  # first index in the prediction's time axis
    t1: int
    ds: netCDF4.Dataset | None = None
    var: Any = None


# ----------------------------------------------------------------------------- helpers


def _as_dataset(sm: xr.Dataset | xr.DataArray) -> xr.Dataset:
    if isinstance(sm, xr.DataArray):
        return sm.to_dataset(name=cv.SM)
    if cv.SM not in sm.data_vars:
        raise MissingVariableError(
            f"the dataset has no {cv.SM!r} variable (variables: {list(sm.data_vars)}); give the result "
            "of xsomo.prediction.inference.predict / drivers.somo.predict"
        )
    return sm


def _check_writable(directory: pathlib.Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputWriteError(
            f"cannot create the output folder {directory}: {err.strerror or err}. Choose a folder you can write to."
        ) from err
    probe = directory / f".xsomo-write-test-{os.getpid()}{TMP_SUFFIX}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"0")
        probe.unlink()
    except OSError as err:
        raise OutputWriteError(
            f"the output folder {directory} is not writable: {err.strerror or err}. Choose another "
            "folder (--out) or fix its permissions."
        ) from err


def _spatial_blocks(arr: xr.DataArray, dim: str, n: int) -> tuple[int, ...]:
    data = arr.data
    if isinstance(data, da.Array):
        return data.chunks[arr.get_axis_num(dim)]
    size = min(n, FILE_CHUNK_CELLS)
    return (size,) * (n // size) + ((n % size,) if n % size else ())


def _file_chunk(blocks: tuple[int, ...], n: int, *, descending: bool) -> int:
    """A chunk side that tiles the compute blocks (so every chunk is written whole once)."""
    regular = blocks[1:] if descending else blocks[:-1]  # the partial block is at the far end
    size = max(regular or blocks)
    if all(b == size for b in regular) and size <= 2 * FILE_CHUNK_CELLS:
        return min(size, n)
    return min(FILE_CHUNK_CELLS, n)


def _offsets(blocks: tuple[int, ...]) -> list[tuple[int, int]]:
    edges = np.concatenate([[0], np.cumsum(blocks)]).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _grid_mapping_attrs() -> dict[str, Any]:
    from pyproj import CRS

    crs = CRS.from_user_input(cv.CRS)
    attrs = dict(crs.to_cf())
    wkt = crs.to_wkt()
    attrs["crs_wkt"] = wkt
    attrs["spatial_ref"] = wkt  # what GDAL reads
    return attrs


def _clean_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str | int | float | np.integer | np.floating):
            out[str(key)] = value
        elif isinstance(value, (list, tuple)) and all(
            isinstance(v, str | int | float) for v in value
        ):
            out[str(key)] = ", ".join(str(v) for v in value)
    return out


def _create(target: _Target, **kwargs: Any) -> None:
    with _NC_LOCK:
        _create_unlocked(target, **kwargs)


def _create_unlocked(
    target: _Target,
    *,
    times: pd.DatetimeIndex,
    lat_desc: np.ndarray,
    lon: np.ndarray,
    chunks: tuple[int, int, int],
    global_attrs: dict[str, Any],
    complevel: int,
) -> None:
    lay = cv.layer_by_number(target.layer)
    ds = netCDF4.Dataset(target.tmp, "w", format="NETCDF4")
    try:
        ds.set_fill_off()
        ds.createDimension(cv.TIME, len(times))
        ds.createDimension(cv.LAT, lat_desc.size)
        ds.createDimension(cv.LON, lon.size)
        t = ds.createVariable(cv.TIME, "i4", (cv.TIME,))
        t.setncatts({**cv.TIME_ATTRS, "units": TIME_UNITS, "calendar": "proleptic_gregorian"})
        epoch = np.datetime64("1970-01-01", "D")
        t[:] = (times.values.astype("datetime64[D]") - epoch).astype(np.int32)
        y = ds.createVariable(cv.LAT, "f8", (cv.LAT,))
        y.setncatts(cv.LAT_ATTRS)
        y[:] = lat_desc
        x = ds.createVariable(cv.LON, "f8", (cv.LON,))
        x.setncatts(cv.LON_ATTRS)
        x[:] = lon
        gm = ds.createVariable("spatial_ref", "i4", ())
        gm.setncatts(_grid_mapping_attrs())
        gm.assignValue(0)
        name = cv.layer_var_name(target.layer)
        var = ds.createVariable(
            name,
            "f4",
            (cv.TIME, cv.LAT, cv.LON),
            zlib=complevel > 0,
            complevel=max(1, complevel),
            shuffle=True,
            chunksizes=(min(chunks[0], len(times)), chunks[1], chunks[2]),
            fill_value=np.float32(np.nan),
        )
        var.setncatts(
            {
                "standard_name": cv.SM_ATTRS["standard_name"],
                "long_name": f"volumetric soil moisture {lay.top * 100:g}-{lay.bottom * 100:g} cm (ensemble mean)",
                "units": cv.SM_ATTRS["units"],
                "grid_mapping": "spatial_ref",
                "valid_min": np.float32(0.0),
                "valid_max": np.float32(1.0),
                "depth_top": np.float32(lay.top),
                "depth_bottom": np.float32(lay.bottom),
                "depth_units": "m",
            }
        )
        # blocks write every chunk once and whole: a small cache per file is enough
        var.set_var_chunk_cache(size=4 * 1024 * 1024, nelems=521, preemption=1.0)
        ds.setncatts(
            {
                **global_attrs,
                "Conventions": "CF-1.8",
                "layer": lay.name,
                "layer_depth": f"{lay.top:g}-{lay.bottom:g} m",
                "year": np.int32(target.year),
                "geospatial_lat_min": float(lat_desc.min()),
                "geospatial_lat_max": float(lat_desc.max()),
                "geospatial_lon_min": float(lon.min()),
                "geospatial_lon_max": float(lon.max()),
            }
        )
    except BaseException:
        ds.close()
        raise
    target.ds = ds
    target.var = var


def _fsync(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _close_all(targets: Iterable[_Target]) -> None:
    for tg in targets:
        if tg.ds is not None:
            with _NC_LOCK, contextlib.suppress(Exception):
                tg.ds.close()
            tg.ds = None
            tg.var = None


def _remove_tmp(targets: Iterable[_Target]) -> None:
    for tg in targets:
        with contextlib.suppress(FileNotFoundError):
            tg.tmp.unlink()


def _existing_ok(path: pathlib.Path, layer: int, ntime: int, nlat: int, nlon: int) -> bool:
    """Whether a final file looks like this run's (shape); raises if it is another run's."""
    try:
        with _NC_LOCK, netCDF4.Dataset(path) as ds:
            var = ds.variables[cv.layer_var_name(layer)]
            shape = tuple(var.shape)
    except (OSError, KeyError) as err:
        raise OutputWriteError(
            f"{path} exists but is not a readable SoMo.ml-EU file ({err}). Remove it or pass overwrite=True."
        ) from err
    if shape != (ntime, nlat, nlon):
        raise GridMismatchError(
            f"{path} exists with shape {shape}, but this prediction gives {(ntime, nlat, nlon)} "
            "(another grid or period). Write to another folder or pass overwrite=True."
        )
    return True


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, disable=not enabled, desc=desc, unit="block", leave=True, mininterval=0.5
    )


def _active_client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


# ----------------------------------------------------------------------------- public


def to_files(
    sm: xr.Dataset | xr.DataArray,
    directory: str | os.PathLike[str],
    *,
    layers: Sequence[int] | int | None = None,
    years: Sequence[int] | int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    client: Any = None,
    complevel: int = COMPLEVEL,
    concurrency: int | None = None,
) -> list[pathlib.Path]:
    """Write ``SoMo.ml-EU_layer{N}_{YYYY}.nc`` files, one per layer and year.

    Parameters
    ----------
    sm
        A prediction (:func:`xsomo.prediction.inference.predict`): ``sm(layer, time, lat, lon)``,
        lazy or in memory. Its spatial dask chunks are the blocks computed one at a time.
    directory
        Output folder (created if missing).
    layers, years
        Subsets to write (default: all in ``sm``).
    overwrite
        Rewrite final files that exist. Without it, existing final files are kept and
        skipped (so rerunning a killed job resumes it); a file of another grid or
        period is an error.
    progress
        Show a progress bar over blocks.
    client
        A :class:`dask.distributed.Client` (default: the active one, if any) that
        computes the blocks on its workers; the files are written here.
    complevel
        zlib level (0 = uncompressed).
    concurrency
        Blocks computed at once (default: the client's threads, else the CPU cores);
        memory is about this many blocks.

    Returns
    -------
    list of pathlib.Path
        The final files of the requested layers and years (written or found), sorted.

    Raises
    ------
    OutputWriteError
        When the folder is not writable (checked before computing) or writing fails
        (e.g. the disk fills); temporary files are removed and no final file is touched.
    GridMismatchError
        When a final file that exists belongs to another grid or period.
    """
    from xsomo._version import __version__
    from xsomo.prediction import inference

    ds = _as_dataset(sm)
    arr = ds[cv.SM]
    for dim in (cv.TIME, cv.LAT, cv.LON):
        if dim not in arr.dims:
            raise GridMismatchError(
                f"{cv.SM!r} has dims {arr.dims}; expected (layer, time, lat, lon)"
            )
    if cv.LAYER not in arr.dims:
        layer_value = int(arr.coords[cv.LAYER]) if cv.LAYER in arr.coords else 1
        arr = arr.expand_dims({cv.LAYER: [layer_value]})
    arr = arr.transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON)
    if arr.indexes[cv.LAT].is_monotonic_decreasing:
        arr = arr.isel({cv.LAT: slice(None, None, -1)})
    if arr.indexes[cv.LON].is_monotonic_decreasing:
        arr = arr.isel({cv.LON: slice(None, None, -1)})
    all_layers = [int(v) for v in arr[cv.LAYER].values]
    want_layers = (
        all_layers
        if layers is None
        else ([int(layers)] if isinstance(layers, int) else [int(v) for v in layers])
    )
    bad = [n for n in want_layers if n not in all_layers]
    if bad:
        raise XsomoValueError(
            f"layers={want_layers}: the prediction holds layers {all_layers}, not {bad}"
        )
    times = pd.DatetimeIndex(arr.indexes[cv.TIME])
    all_years = sorted(set(times.year.tolist()))
    want_years = (
        all_years
        if years is None
        else ([int(years)] if isinstance(years, int) else [int(v) for v in years])
    )
    bad = [y for y in want_years if y not in all_years]
    if bad:
        raise XsomoValueError(
            f"years={want_years}: the prediction covers {all_years[0]}-{all_years[-1]}, not {bad}"
        )
    directory = pathlib.Path(directory)
    _check_writable(directory)

    lat = arr[cv.LAT].values.astype(float)
    lon = arr[cv.LON].values.astype(float)
    nlat, nlon = lat.size, lon.size
    targets: list[_Target] = []
    finals: list[pathlib.Path] = []
    for n in want_layers:
        for year in want_years:
            idx = np.nonzero(times.year == year)[0]
            path = directory / cv.output_filename(n, year)
            finals.append(path)
            if path.exists() and not overwrite and _existing_ok(path, n, idx.size, nlat, nlon):
                log.info("%s exists: skipped", path)
                continue
            targets.append(
                _Target(
                    n,
                    year,
                    path,
                    path.with_name(path.name + TMP_SUFFIX),
                    int(idx[0]),
                    int(idx[-1]) + 1,
                )
            )
    if not targets:
        if progress:
            print(f"xsomo: all {len(finals)} files already in {directory}; nothing to do")
        return sorted(finals)

    # a stale temporary file from a killed run is never trusted
    _remove_tmp(targets)
    free = shutil.disk_usage(directory).free
    estimate = sum((tg.t1 - tg.t0) for tg in targets) * nlat * nlon * 4 // 3  # ~3x compression
    if estimate > free:
        warnings.warn(
            f"the files need roughly {estimate / 2**30:.1f} GiB, but only {free / 2**30:.1f} GiB are free in {directory}",
            RuntimeWarning,
            stacklevel=2,
        )

    lat_blocks = _spatial_blocks(arr, cv.LAT, nlat)
    lon_blocks = _spatial_blocks(arr, cv.LON, nlon)
    chunks = (
        FILE_CHUNK_DAYS,
        _file_chunk(lat_blocks, nlat, descending=True),
        _file_chunk(lon_blocks, nlon, descending=False),
    )
    global_attrs = _clean_attrs(dict(ds.attrs))
    global_attrs["xsomo_version"] = __version__
    global_attrs["history"] = f"written by xsomo {__version__} (xsomo.prediction.output.to_files)"
    for k in ("title", "institution", "source", "references"):
        global_attrs.setdefault(k, "")
    global_attrs = {k: v for k, v in global_attrs.items() if v != ""}

    # only the layers and the time span the pending files need
    need_layers = sorted({tg.layer for tg in targets})
    t_lo = min(tg.t0 for tg in targets)
    t_hi = max(tg.t1 for tg in targets)
    sub = arr.sel({cv.LAYER: need_layers}).isel({cv.TIME: slice(t_lo, t_hi)})
    layer_pos = {n: i for i, n in enumerate(need_layers)}
    gaps = ds.get(inference.GAP_DAYS)

    blocks = [
        (ys, xs) for ys in _offsets(lat_blocks) for xs in _offsets(lon_blocks)
    ]  # lat-major: ascending lat

    def lazy_block(block: tuple[tuple[int, int], tuple[int, int]]) -> tuple[Any, Any]:
        (y0, y1), (x0, x1) = block
        window = {cv.LAT: slice(y0, y1), cv.LON: slice(x0, x1)}
        piece = sub.isel(window).data
        g = gaps.isel(window).data if gaps is not None else np.zeros(1, np.int32)
        return piece, g

    t_start = _time.perf_counter()
    n_written = 0
    gap_total = 0
    bar = _progress(len(blocks), progress, f"xsomo: {len(targets)} files")
    try:
        for tg in targets:
            _create(
                tg,
                times=times[tg.t0 : tg.t1],
                lat_desc=lat[::-1],
                lon=lon,
                chunks=chunks,
                global_attrs=global_attrs,
                complevel=complevel,
            )
        for block, (values, g) in _iter_blocks(lazy_block, blocks, client, concurrency):
            (y0, y1), (x0, x1) = block
            r0, r1 = nlat - y1, nlat - y0  # rows in the descending file
            for tg in targets:
                part = np.asarray(values, dtype=np.float32)[
                    layer_pos[tg.layer], tg.t0 - t_lo : tg.t1 - t_lo, ::-1, :
                ]
                _write_region(tg, part, (r0, r1), (x0, x1))
            gap_total += int(np.asarray(g).sum())
            n_written += 1
            bar.update(1)
        for tg in targets:
            with _NC_LOCK:
                tg.ds.close()  # type: ignore[union-attr]
            tg.ds = None
            _fsync(tg.tmp)
    except BaseException as err:
        _close_all(targets)
        _remove_tmp(targets)
        bar.close()
        if isinstance(err, OSError) and not isinstance(err, XsomoError):
            raise OutputWriteError(
                f"writing the files in {directory} failed after {n_written} of {len(blocks)} blocks: {err}. "
                "No final file was changed; temporary files were removed. Free space (or fix the folder) "
                "and rerun the same command to resume."
            ) from err
        raise
    bar.close()
    for tg in targets:
        _replace(tg.tmp, tg.path)
    with contextlib.suppress(OSError):
        _fsync(directory)
    elapsed = _time.perf_counter() - t_start
    if gap_total:
        warnings.warn(
            f"forcing has gaps: {gap_total} output cell-days (per layer) have a lookback window lacking data "
            "and are missing (NaN) in the files",
            RuntimeWarning,
            stacklevel=2,
        )
    if progress:
        print(
            f"xsomo: wrote {len(targets)} files to {directory} in {elapsed:.1f} s ({len(blocks)} blocks)"
        )
    return sorted(finals)


def _write_region(
    tg: _Target, part: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]
) -> None:
    with _NC_LOCK:
        tg.var[:, rows[0] : rows[1], cols[0] : cols[1]] = part


def _iter_blocks(
    lazy: Callable[[Any], tuple[Any, ...]],
    blocks: list[Any],
    client: Any,
    concurrency: int | None,
) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Yield ``(block, computed)`` as blocks finish, at most ``concurrency`` in flight (bounded memory).

    ``lazy(block)`` returns the block's dask collections. With a distributed client they
    run on its workers (the model was scattered once by :func:`~xsomo.prediction.inference.predict`
    or travels in the graph); otherwise in a pool of threads here, each block on dask's
    synchronous scheduler with ``cores // concurrency`` torch threads.
    """
    from xsomo.prediction import inference

    client = _active_client(client)
    if client is not None:
        from distributed import wait as dwait

        limit = max(1, concurrency or sum(client.nthreads().values()) or 1)
        it = iter(blocks)
        pending: dict[Any, Any] = {}

        def submit(block: Any) -> None:
            futs = client.compute(list(lazy(block)))
            pending[futs[0]] = (block, futs)

        for block in it:
            submit(block)
            if len(pending) >= limit:
                break
        while pending:
            done, _ = dwait(list(pending), return_when="FIRST_COMPLETED")
            for fut in done:
                block, futs = pending.pop(fut)
                result = tuple(f.result() for f in futs)
                nxt = next(it, None)
                if nxt is not None:
                    submit(nxt)
                yield block, result
        return

    def compute(block: Any) -> tuple[Any, ...]:
        return tuple(dask.compute(*lazy(block), scheduler="sync"))

    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    limit = max(1, min(concurrency or cores, len(blocks)))
    old = inference._LOCAL_THREADS
    inference._LOCAL_THREADS = max(1, cores // limit)
    try:
        if limit == 1:
            for block in blocks:
                yield block, compute(block)
            return
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="xsomo-block") as pool:
            running: dict[Future[Any], Any] = {}
            it = iter(blocks)
            for block in it:
                running[pool.submit(compute, block)] = block
                if len(running) >= limit:
                    break
            try:
                while running:
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in done:
                        block = running.pop(fut)
                        result = fut.result()
                        nxt = next(it, None)
                        if nxt is not None:
                            running[pool.submit(compute, nxt)] = nxt
                        yield block, result
            finally:
                for fut in running:
                    fut.cancel()
    finally:
        inference._LOCAL_THREADS = old
