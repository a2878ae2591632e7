"""SoMo.ml-EU files: one CF-1.8 netCDF4 file per layer and year, written in a stream; or one Zarr store.

:func:`to_files` computes the lazy prediction of :func:`xsomo.prediction.inference.predict` ONE
spatial block at a time, for every layer and year at once (the roll-out is the
expensive part and runs exactly once per block), and writes each block into all of the
run's files with netCDF4 region writes. The files are written to temporary names and
renamed only when all are complete (:mod:`xsomo.io.atomic`), so a final name never holds a
partial file. A killed run restarted with the same call skips the files that are already
final, if they carry the same model identity and drivers (global attributes
``xsomo_model_id``, ``xsomo_drivers_period``, ``xsomo_drivers_id``); files of another model are refused.

File layout (as the published SoMo.ml-EU dataset, :mod:`xsomo.io.somo` owns it):
``SoMo.ml-EU_layer{N}_{YYYY}.nc`` holding the variable ``layer{N}`` ``(time, lat, lon)``,
latitude descending, longitude ascending, float32 in m3 m-3, zlib-compressed, with a
``spatial_ref`` grid mapping (EPSG:4326) that GDAL, QGIS and rioxarray read.

Chunking: ``time`` 32 days × ``lat`` × ``lon`` equal to the prediction's spatial block
(32 × 32 cells by default), i.e. 128 KiB per chunk before compression. A daily map of
the Europe grid (355 × 570) touches 12 × 18 chunks, a one-year series of one cell 12
chunks; per-day chunks (the netCDF default for record variables) would make that series
365 chunk reads, and whole-year columns would make a map read the full file. Spatial
chunks equal to the compute blocks mean every chunk is written once, whole, by one block.

:func:`to_zarr` writes the same prediction as one Zarr store (chunks of :data:`ZARR_CHUNK_DAYS`
days x :data:`ZARR_CHUNK_CELLS` x :data:`ZARR_CHUNK_CELLS` cells, measured by bench/bench_zarr.py);
:func:`extend_files` and :func:`extend_zarr` append a prediction continued from a saved
state to the files or the store.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import pathlib
import shutil
import time as _time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.utils import format_bytes

from xsomo import conventions as cv
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoError, XsomoValueError
from xsomo.io import somo as somo_io
from xsomo.io.atomic import atomic_path, fsync_path, remove_stale_temporaries
from xsomo.io.somo import STATE_STATIC_VAR, ForeignOutputError, OutputWriteError
from xsomo.prediction.inference import (
    CONTINUED,
    CONTINUED_FROM_DRIVERS,
    GAP_DAYS,
    SPINUP_DAYS,
    STATE,
    STATE_COMPLETE,
)
from xsomo.runtime import cpu_cores

__all__ = [
    "FILE_CHUNK_DAYS",
    "ForeignOutputError",
    "OutputWriteError",
    "check_store_target",
    "check_writable",
    "extend_files",
    "extend_zarr",
    "rollout_summary",
    "to_files",
    "to_zarr",
]

log = logging.getLogger(__name__)

#: Days per chunk along time in the files.
FILE_CHUNK_DAYS = 32
#: Largest spatial chunk side in the files.
FILE_CHUNK_CELLS = 64
#: zlib level (4: ~the size of level 9 at a third of the time for these fields).
COMPLEVEL = 4


@dataclass
class _Target:
    layer: int
    year: int
    path: pathlib.Path
    t0: int  # first index in the prediction's time axis
    t1: int
    tmp: pathlib.Path | None = None
    ds: Any = None
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


def _time_ascending(arr: xr.DataArray, writer: str) -> xr.DataArray:
    """``arr`` with its days in ascending order; repeated days are refused.

    A prediction reversed or concatenated out of order (``sm.isel(time=slice(None, None, -1))``)
    was written with its days in that order, files that ``open_somo`` then refused ("time is
    not strictly increasing"), and a day repeated was written twice into a year's file (QA).
    """
    times = pd.DatetimeIndex(arr.indexes[cv.TIME])
    if times.has_duplicates:
        twice = times[times.duplicated()].unique()
        raise XsomoValueError(
            f"{writer}: the prediction holds {twice.size} days more than once (first {twice[0].date()}); a file "
            "holds each day once. Drop the repeated days (e.g. sm.drop_duplicates('time'))."
        )
    if not times.is_monotonic_increasing:
        arr = arr.isel({cv.TIME: np.argsort(times.values, kind="stable")})
    return arr


def _refuse_continued(ds: xr.Dataset, writer: str, extender: str) -> None:
    """A prediction continued from a saved state holds the new days only: written as a
    dataset of its own it replaced the year's file (``overwrite=True``, which the grid
    error suggested) and the days before were lost, with the state moved on."""
    if "continued_from_state" in ds.attrs:
        raise XsomoValueError(
            f"this prediction continues a saved state (from {ds.attrs['continued_from_state']}) and holds only the "
            f"days after it: {writer} would write them as a dataset of their own (replacing a year's file drops "
            f"its earlier days). Append them with {extender}(sm, ..., state_file=...) (`xsomo extend`)."
        )


def check_writable(directory: str | os.PathLike[str]) -> pathlib.Path:
    """Create ``directory`` if needed and check that files can be written there.

    Called before any long computation, so an unwritable ``--out`` fails at once.

    Raises
    ------
    OutputWriteError
        The folder cannot be created or written to (names the folder and the fix).
    """
    directory = pathlib.Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputWriteError(
            f"cannot create the output folder {directory}: {err.strerror or err}. Choose a folder you can write to."
        ) from err
    probe = directory / f".xsomo-write-test-{os.getpid()}.tmp"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"0")
        probe.unlink()
    except OSError as err:
        raise OutputWriteError(
            f"the output folder {directory} is not writable: {err.strerror or err}. Choose another "
            "folder (--out) or fix its permissions."
        ) from err
    return directory


def check_store_target(store: str | os.PathLike[str], *, overwrite: bool = False) -> pathlib.Path:
    """Check that :func:`to_zarr` may write a store at ``store``; creates nothing.

    A store is written whole and replaces what is under its name (``overwrite=True``), so
    the path must be new, an empty folder, or a Zarr store. A folder of anything else (the
    netCDF files of ``xsomo predict``, a user's own files) is refused even with
    ``overwrite``: replacing it would delete them (QA: ``--format zarr --out sm/
    --overwrite`` on a folder of SoMo.ml-EU files removed them all).

    Raises
    ------
    OutputWriteError
        ``store`` is a file, a folder that is not a Zarr store and not empty, or a store
        that exists without ``overwrite``.
    """
    store = pathlib.Path(store).expanduser()
    if not store.exists():
        return store
    if not store.is_dir():
        raise OutputWriteError(
            f"{store} is a file, not a Zarr store: give a new path for the store (e.g. sm.zarr)."
        )
    if not somo_io.is_zarr_store(store):
        held = sorted(p.name for p in store.iterdir())
        if held:
            raise OutputWriteError(
                f"{store} is a folder that is not a Zarr store (it holds {', '.join(held[:4])}"
                f"{', ...' if len(held) > 4 else ''}): a store is written whole and replaces the folder, which would "
                "delete those files, so it is not replaced even with overwrite=True (--overwrite). Give a new path "
                "for the store (e.g. sm.zarr), or write netCDF files into this folder (--format netcdf)."
            )
        return store
    if not overwrite:
        raise OutputWriteError(f"{store} exists; pass overwrite=True (--overwrite) to replace the store")
    return store


def _refuse_store_as_folder(directory: pathlib.Path) -> None:
    """netCDF files written into a Zarr store were hidden from its readers (``open_somo`` opens
    the store) and made zarr warn about every file."""
    if somo_io.is_zarr_store(directory):
        raise XsomoValueError(
            f"{directory} is a Zarr store: the netCDF files go into a folder of their own. Write the store "
            "with to_zarr (xsomo predict --format zarr), or give another folder for the files."
        )


def _check_state_target(path: pathlib.Path) -> None:
    """The state file can be written (before anything is computed: it is written last)."""
    if path.is_dir():
        raise OutputWriteError(
            f"state_file={path} is a folder; give the state file's name (e.g. {path / 'state.nc'})."
        )
    anc = path.absolute().parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise OutputWriteError(
            f"state_file={path}: cannot be created, {anc} is a file and not a folder. Give a path in a folder."
        )
    if not os.access(anc, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputWriteError(
            f"state_file={path}: cannot be written ({anc} is not writable). Give a path you can write to."
        )


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
    state_file: str | os.PathLike[str] | None = None,
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
        Rewrite final files that exist. Without it, existing final files of the same model
        and drivers (their ``xsomo_model_id``, ``xsomo_drivers_period`` and ``xsomo_drivers_id`` attributes) and
        shape are kept and skipped, so rerunning a killed job resumes it; a file of another
        grid, period, model or drivers is an error.
    progress
        Show a progress bar over blocks.
    client
        A :class:`dask.distributed.Client` (default: the active one, if any) that
        computes the blocks on its workers; the files are written here.
    complevel
        zlib level (0 = uncompressed).
    concurrency
        Blocks computed at once (default: the client's threads, else the CPU cores);
        memory is about this many blocks. Each block runs on the torch threads
        :func:`~xsomo.prediction.inference.predict` was given (``threads=``; its default
        shares the cores among the blocks that run at once with this default).
    state_file
        Also write the roll-out's state after the last day to this file (the prediction
        must hold ``lstm_state``: ``predict(..., return_state=True)``), after the files, so
        a run killed before never leaves a state ahead of its files. Its blocks are
        computed with the files' (the roll-out runs once). A state file of the same model,
        drivers and last day is kept; when every file exists, only the state is computed.

    Returns
    -------
    list of pathlib.Path
        The final files of the requested layers and years (written or found), sorted.

    Raises
    ------
    OutputWriteError
        When the folder is not writable (checked before computing) or writing fails
        (e.g. the disk fills: names the file); temporary files are removed and no final
        file is touched.
    GridMismatchError
        When a final file that exists belongs to another grid or period.
    ForeignOutputError
        When a final file that exists was computed by another model or from other drivers.
    """
    from xsomo._version import __version__

    if isinstance(complevel, bool) or not isinstance(complevel, (int, np.integer)) or not 0 <= complevel <= 9:
        raise XsomoValueError(f"complevel must be a zlib level 0-9 (0: uncompressed), got {complevel!r}")
    ds = _as_dataset(sm)
    _refuse_continued(ds, "to_files", "extend_files")
    arr = ds[cv.SM]
    for dim in (cv.TIME, cv.LAT, cv.LON):
        if dim not in arr.dims:
            raise GridMismatchError(
                f"{cv.SM!r} has dims {arr.dims}; expected (layer, time, lat, lon)"
            )
    arr = _time_ascending(cv.with_layer_dim(arr).transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON), "to_files")
    if arr.indexes[cv.LAT].is_monotonic_decreasing:
        arr = arr.isel({cv.LAT: slice(None, None, -1)})
    if arr.indexes[cv.LON].is_monotonic_decreasing:
        arr = arr.isel({cv.LON: slice(None, None, -1)})
    want_layers, want_years = _selection(arr, layers, years)
    _refuse_store_as_folder(pathlib.Path(directory).expanduser())
    directory = check_writable(directory)
    times = pd.DatetimeIndex(arr.indexes[cv.TIME])
    # (the decimals the grid stands for: float32 drivers had put 40.04999923706055 in the files)
    lat = cv.file_coords(arr[cv.LAT].values)
    lon = cv.file_coords(arr[cv.LON].values)
    identity = {k: (str(ds.attrs[k]) if k in ds.attrs else None) for k in somo_io.IDENTITY_ATTRS}
    settings = {k: str(ds.attrs[k]) for k in RUN_SETTING_ATTRS if k in ds.attrs}

    targets: list[_Target] = []
    finals: list[pathlib.Path] = []
    for n in want_layers:
        for year in want_years:
            idx = np.nonzero(times.year == year)[0]
            path = directory / somo_io.output_filename(n, year)
            finals.append(path)
            if path.exists() and not overwrite:
                _check_resumable(path, n, (idx.size, lat.size, lon.size), identity, settings)
                log.info("%s exists (same model, drivers, grid and settings): skipped", path)
                continue
            targets.append(_Target(n, year, path, int(idx[0]), int(idx[-1]) + 1))
    _refuse_other_models(directory, set(finals), identity.get("xsomo_model_id"))
    state_path = None if state_file is None else pathlib.Path(state_file).expanduser()
    if state_path is not None:
        if STATE not in ds.variables:
            raise MissingVariableError(
                f"state_file={state_path}: the prediction holds no {STATE!r}; predict with "
                "return_state=True (xsomo predict --save-state)"
            )
        _check_state_target(state_path)
        if _state_is_current(state_path, ds):
            state_path = None
    if not targets and state_path is None:
        if progress:
            print(f"xsomo: all {len(finals)} files already in {directory}; nothing to do")
        return sorted(finals)
    for tg in targets:
        remove_stale_temporaries(directory / tg.path.name, legacy=True)
    _warn_space(directory, targets, lat.size * lon.size)

    lat_blocks = _spatial_blocks(arr, cv.LAT, lat.size)
    lon_blocks = _spatial_blocks(arr, cv.LON, lon.size)
    chunks = (
        FILE_CHUNK_DAYS,
        _file_chunk(lat_blocks, lat.size, descending=True),
        _file_chunk(lon_blocks, lon.size, descending=False),
    )
    global_attrs = somo_io.clean_attrs(dict(ds.attrs))
    global_attrs["xsomo_version"] = __version__
    global_attrs["history"] = f"written by xsomo {__version__} (xsomo.prediction.output.to_files)"
    global_attrs = {k: v for k, v in global_attrs.items() if v != ""}

    # only the layers and the time span the pending files need
    need_layers = sorted({tg.layer for tg in targets}) or want_layers[:1]
    t_lo = min((tg.t0 for tg in targets), default=0)
    t_hi = max((tg.t1 for tg in targets), default=1)
    sub = arr.sel({cv.LAYER: need_layers}).isel({cv.TIME: slice(t_lo, t_hi)})
    layer_pos = {n: i for i, n in enumerate(need_layers)}
    gaps = ds.get(GAP_DAYS)
    spins = ds.get(SPINUP_DAYS)
    blocks = [(ys, xs) for ys in _offsets(lat_blocks) for xs in _offsets(lon_blocks)]
    saved = saved_complete = None
    if state_path is not None:
        saved = _oriented(ds[STATE], ds)
        state_values = np.full(saved.shape, np.nan, dtype=saved.dtype)
        if STATE_COMPLETE in ds.variables:
            saved_complete = _oriented(ds[STATE_COMPLETE], ds)
            complete_values = np.zeros(saved_complete.shape, dtype=np.int32)

    def lazy_block(block: tuple[tuple[int, int], tuple[int, int]]) -> tuple[Any, ...]:
        (y0, y1), (x0, x1) = block
        window = {cv.LAT: slice(y0, y1), cv.LON: slice(x0, x1)}
        piece = sub.isel(window).data if targets else np.zeros(1, np.float32)
        g = gaps.isel(window).data if gaps is not None else np.zeros(1, np.int32)
        sp = spins.isel(window).data if spins is not None else np.zeros(1, np.int32)
        st = saved.isel(window).data if saved is not None else np.zeros(1, np.float32)
        sc = saved_complete.isel(window).data if saved_complete is not None else np.zeros(1, np.int32)
        return piece, g, sp, st, sc  # computed together: the roll-out runs once

    t_start = _time.perf_counter()
    n_written = 0
    gap_total = 0
    chosen: collections.Counter[int] = collections.Counter()
    nlat = lat.size
    bar = _progress(len(blocks), progress, f"xsomo: {len(targets)} files")
    try:
        # every file goes to a temporary name (xsomo.io.atomic) and is renamed onto its
        # final name only when all files are complete; an error or a kill removes them
        with contextlib.ExitStack() as stack:
            try:
                for tg in targets:
                    tg.tmp = stack.enter_context(atomic_path(tg.path, create=False))
                    with _file_errors(tg, n_written, len(blocks)):
                        tg.ds, tg.var = somo_io.create_layer_file(
                            tg.tmp, layer=tg.layer, year=tg.year, times=times[tg.t0 : tg.t1],
                            lat_desc=lat[::-1], lon=lon, chunks=chunks,
                            global_attrs=global_attrs, complevel=complevel,
                        )  # fmt: skip
                for block, (values, g, sp, st, sc) in _iter_blocks(
                    lazy_block, blocks, client, concurrency
                ):
                    (y0, y1), (x0, x1) = block
                    r0, r1 = nlat - y1, nlat - y0  # rows in the descending file
                    values = np.asarray(values, dtype=np.float32)
                    if saved is not None:
                        state_values[..., y0:y1, x0:x1, :] = st
                    if saved_complete is not None:
                        complete_values[y0:y1, x0:x1] = sc
                    for tg in targets:
                        part = values[layer_pos[tg.layer], tg.t0 - t_lo : tg.t1 - t_lo, ::-1, :]
                        with _file_errors(tg, n_written, len(blocks)):
                            _write_region(tg, part, (r0, r1), (x0, x1))
                    gap_total += int(np.asarray(g).sum())
                    chosen.update(int(v) for v in np.unique(np.asarray(sp)) if v != 0)
                    n_written += 1
                    bar.update(1)
                summary = rollout_summary(chosen)
                for tg in targets:
                    with _file_errors(tg, n_written, len(blocks)):
                        if summary:
                            with somo_io.NC_LOCK:
                                tg.ds.setncattr("rollout_per_block", summary)
                        _close(tg)
            except BaseException:
                for tg in targets:
                    with contextlib.suppress(Exception):
                        _close(tg)
                raise
    except OSError as err:
        if isinstance(err, XsomoError):
            raise
        raise OutputWriteError(
            f"writing the files in {directory} failed after {n_written} of {len(blocks)} blocks: {err}. "
            "No final file was changed; temporary files were removed. Free space (or fix the folder) "
            "and rerun the same command to resume."
        ) from err
    finally:
        bar.close()
    fsync_path(directory)
    if saved is not None and state_path is not None:
        # last: a run killed before this leaves the old state, which a rerun continues from
        lazy, values_of = xr.Dataset({STATE: saved}), [state_values]
        if saved_complete is not None:
            lazy[STATE_COMPLETE], values_of = saved_complete, [state_values, complete_values]
        if STATE_STATIC_VAR in ds.variables:  # a small 2-D field per static input: computed here
            statics = _oriented(ds[STATE_STATIC_VAR], ds)
            lazy[STATE_STATIC_VAR], values_of = statics, [*values_of, np.asarray(statics.values)]
        _write_saved_state(lazy, values_of, dict(ds.attrs), state_path)
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
            + (f" and the state to {state_path}" if state_path is not None else "")
        )
    return sorted(finals)


def _oriented(var: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """``var`` with lat and lon ascending, as the blocks are cut."""
    for dim in (cv.LAT, cv.LON):
        if var.indexes[dim].is_monotonic_decreasing:
            var = var.isel({dim: slice(None, None, -1)})
    return var


def _state_is_current(path: pathlib.Path, ds: xr.Dataset) -> bool:
    """Whether ``path`` holds the state this prediction ends with (same model, drivers, last day)."""
    if not path.exists():
        return False
    try:
        old = somo_io.read_state(path)
    except XsomoError:
        return False
    keys = (*somo_io.IDENTITY_ATTRS, "state_last_day")
    return all(str(old.attrs.get(k)) == str(ds.attrs.get(k)) for k in keys)


def rollout_summary(chosen: collections.Counter[int]) -> str:
    """What ran in how many blocks, e.g. ``"continuous, 365-day spin-up: 3 blocks; windowed: 1 block"``.

    >>> import collections
    >>> rollout_summary(collections.Counter({365: 3, -1: 1}))
    'continuous, 365-day spin-up: 3 blocks; windowed: 1 block'
    """

    def n(k: int) -> str:
        return f"{k} block" + ("s" if k != 1 else "")

    parts = [f"continuous, {d}-day spin-up: {n(chosen[d])}" for d in sorted(chosen) if d > 0]
    if chosen.get(-1):
        parts.append(f"windowed: {n(chosen[-1])}")
    if chosen.get(CONTINUED):
        parts.append(f"continued from a saved state: {n(chosen[CONTINUED])}")
    return "; ".join(parts)


def _selection(
    arr: xr.DataArray, layers: Sequence[int] | int | None, years: Sequence[int] | int | None
) -> tuple[list[int], list[int]]:
    """The layers and years to write, checked against what the prediction holds."""
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
    all_years = sorted(set(pd.DatetimeIndex(arr.indexes[cv.TIME]).year.tolist()))
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
    return want_layers, want_years


#: Global attributes of the prediction's settings that a final file must share to be skipped on
#: resume (those it lacks, as files of older versions, are not compared): a rerun with another
#: ``--spinup``, ``--mode``, ``--dtype`` or tolerance would otherwise keep the earlier run's files
#: beside its own and report them as done.
RUN_SETTING_ATTRS = ("inference_mode", "spinup_days", "inference_dtype", "convergence_tolerance")


def _refuse_other_models(directory: pathlib.Path, finals: set[pathlib.Path], model_id: str | None) -> None:
    """Refuse a folder whose other SoMo.ml-EU files (years or layers this call does not write)
    are another model's: ``--overwrite`` with a shorter period left them beside the new files
    ("a folder never mixes two runs"), and ``xsomo stac`` catalogued the mixed folder."""
    if model_id is None:
        return
    other = []
    named = ((p, somo_io.FILE_PATTERN.match(p.name)) for p in sorted(directory.iterdir()) if p not in finals)
    for path, m in named:
        if not m or m["product"] != somo_io.OUTPUT_PRODUCT:
            continue
        try:
            theirs = somo_io.file_identity(path, int(m["layer"])).attrs.get("xsomo_model_id")
        except XsomoError:
            continue  # unreadable: not a file of ours to judge, left alone
        if theirs is not None and theirs != model_id:
            other.append(path.name)
    if other:
        raise ForeignOutputError(
            f"{directory} holds {len(other)} SoMo.ml-EU files of another model outside the years and layers "
            f"written now ({', '.join(other[:4])}{', ...' if len(other) > 4 else ''}): the folder would mix two "
            "models. Remove them, or write to another folder."
        )


def _check_resumable(
    path: pathlib.Path, layer: int, shape: tuple[int, int, int], identity: dict[str, str | None],
    settings: dict[str, str] | None = None,
) -> None:
    """A final file may be skipped only when it is this run's: same shape, model, drivers and settings."""
    found = somo_io.file_identity(path, layer)
    if found.shape != shape:
        raise GridMismatchError(
            f"{path} exists with shape {found.shape}, but this prediction gives {shape} "
            "(another grid or period). Write to another folder or pass overwrite=True (--overwrite)."
        )
    if None in identity.values() or found.attrs != identity:

        def say(ident: dict[str, str | None]) -> str:
            return ", ".join(f"{k}={v if v is not None else 'unknown'}" for k, v in ident.items())

        raise ForeignOutputError(
            f"{path} exists but was not computed by this model from these drivers ({say(found.attrs)}; "
            f"this prediction: {say(identity)}): skipping it would mix the files of two runs. Pass "
            "overwrite=True (--overwrite) to replace the folder's files, or write to another folder."
        )
    if settings:
        theirs = somo_io.global_attrs(path, list(settings))
        differ = {k: (theirs[k], v) for k, v in settings.items() if theirs[k] is not None and theirs[k] != v}
        if differ:
            said = ", ".join(f"{k}={a} (this run: {b})" for k, (a, b) in differ.items())
            raise ForeignOutputError(
                f"{path} exists, computed by this model from these drivers but with other settings: {said}. "
                "Skipping it would mix two runs' settings in one dataset. Rerun with the settings it was "
                "written with to resume, pass overwrite=True (--overwrite) to replace the folder's files, "
                "or write to another folder."
            )


def _warn_space(directory: pathlib.Path, targets: list[_Target], cells: int) -> None:
    free = shutil.disk_usage(directory).free
    estimate = sum((tg.t1 - tg.t0) for tg in targets) * cells * 4 // 3  # ~3x compression
    if estimate > free:
        warnings.warn(
            f"the files need roughly {format_bytes(estimate)}, but only {format_bytes(free)} are free "
            f"in {directory}",
            RuntimeWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def _file_errors(tg: _Target, done: int, total: int) -> Iterator[None]:
    """netCDF-C's errors while writing ``tg`` (a full disk is ``RuntimeError: NetCDF: HDF error``
    or ``OSError`` ENOSPC) as an :class:`OutputWriteError` naming the file."""
    try:
        yield
    except XsomoError:
        raise
    except (OSError, RuntimeError) as err:
        raise OutputWriteError(
            f"writing {tg.path} failed after {done} of {total} blocks: {err}. A full disk is the usual "
            "cause. No final file was changed; temporary files were removed. Free space (or fix the "
            "folder) and rerun the same command to resume."
        ) from err


def _close(tg: _Target) -> None:
    if tg.ds is not None:
        ds, tg.ds, tg.var = tg.ds, None, None
        with somo_io.NC_LOCK:
            ds.close()


def _write_region(
    tg: _Target, part: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]
) -> None:
    with somo_io.NC_LOCK:
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
    synchronous scheduler (on the torch threads the prediction's graph was built with).
    """
    client = _active_client(client)
    if client is not None:
        from distributed import wait as dwait

        limit = max(1, concurrency or sum(client.nthreads().values()) or 1)
        it = iter(blocks)
        pending: dict[Any, Any] = {}

        def submit(block: Any) -> None:
            items = list(lazy(block))  # dask collections, and numpy placeholders
            lazy_at = [i for i, x in enumerate(items) if dask.is_dask_collection(x)]
            # optimize_graph=False: each block's graph is optimised on its own, and fusing the
            # slices of the shared upstream gave one key two different tasks in two blocks'
            # graphs; the scheduler kept one and a worker then ran it without the other's
            # inputs ("RuntimeError: ... missing keys ('concatenate-from-value-getitem-...')",
            # about 1 run in 4 of test_distributed_local_cluster). Unoptimised keys name the
            # same task in every graph.
            futs = client.compute([items[i] for i in lazy_at], optimize_graph=False) if lazy_at else []
            for i, fut in zip(lazy_at, futs, strict=True):
                items[i] = fut
            key = futs[0] if futs else client.submit(lambda: None, pure=False)
            pending[key] = (block, items)

        for block in it:
            submit(block)
            if len(pending) >= limit:
                break
        while pending:
            done, _ = dwait(list(pending), return_when="FIRST_COMPLETED")
            for fut in done:
                block, items = pending.pop(fut)
                result = tuple(x.result() if hasattr(x, "result") else x for x in items)
                nxt = next(it, None)
                if nxt is not None:
                    submit(nxt)
                yield block, result
        return

    def compute(block: Any) -> tuple[Any, ...]:
        return tuple(dask.compute(*lazy(block), scheduler="sync"))

    limit = max(1, min(concurrency or cpu_cores(), len(blocks)))
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


def extend_files(
    sm: xr.Dataset,
    directory: str | os.PathLike[str],
    *,
    state_file: str | os.PathLike[str],
    progress: bool = True,
    client: Any = None,
    complevel: int = COMPLEVEL,
    concurrency: int | None = None,
) -> list[pathlib.Path]:
    """Append a continued prediction (``predict(..., state=..., return_state=True)``) to the files.

    The current year's ``SoMo.ml-EU_layer{N}_{YYYY}.nc`` (the year of the state's last
    day) is rewritten to a temporary file holding its days up to the state's last day plus
    the new ones, and renamed; later years get new files; the state file is replaced last.
    A run killed anywhere leaves files whose days up to the state's last day are
    unchanged, and the same call again completes the extension (days after the state's
    last day that a killed run left in a file are recomputed and replaced).

    Returns
    -------
    list of pathlib.Path
        The files written (the current year's and the new ones), sorted.

    Raises
    ------
    XsomoValueError
        ``sm`` is not a continued prediction with its state.
    ForeignOutputError
        The current year's file is of another model.
    GridMismatchError
        The current year's file ends before the state's last day (the files are behind the
        state: predict again) or lies on another grid.
    """
    if "continued_from_state" not in sm.attrs or STATE not in sm.variables:
        raise XsomoValueError(
            "extend_files needs a prediction continued from a saved state with its new state: "
            "predict(drivers, model, state=..., return_state=True)"
        )
    directory = check_writable(directory)
    last = pd.Timestamp(sm.attrs["continued_from_state"])
    new = sm[cv.SM]
    old_parts = []
    start_period = None
    for n in (int(v) for v in new[cv.LAYER].values):
        path = directory / somo_io.output_filename(n, last.year)
        if pd.Timestamp(new[cv.TIME].values[0]).year == last.year:
            old, period_start = _days_until(path, n, last, sm)
            start_period = start_period or period_start
            old_parts.append(old)
        else:  # the state ends a year: its file is checked all the same (model, grid, last day)
            _check_extendable(path, n, last, sm)
    combined = new
    if old_parts:
        old = xr.concat(old_parts, dim=cv.LAYER).sortby(cv.LAT)
        old = old.assign_coords(
            {cv.LAT: new[cv.LAT].values, cv.LON: new[cv.LON].values}
        ).assign_coords({c: new[c] for c in new.coords if cv.TIME not in new[c].dims
                         and c not in (cv.LAT, cv.LON)})  # fmt: skip
        if new.chunks:  # the old days in the blocks of the new ones: one roll-out per block
            chunks = dict(zip(new.dims, new.chunks, strict=True))
            old = old.chunk({cv.LAT: chunks[cv.LAT], cv.LON: chunks[cv.LON]})
        combined = xr.concat([old.astype(new.dtype), new], dim=cv.TIME)
        combined.attrs = new.attrs
    _refuse_dropped_days(directory, [int(v) for v in new[cv.LAYER].values], last, pd.Timestamp(new[cv.TIME].values[-1]))
    attrs = dict(sm.attrs)
    attrs["extended_from_state"] = attrs.pop("continued_from_state")  # (to_files refuses continued_from_state)
    kept = (GAP_DAYS, SPINUP_DAYS, STATE, STATE_COMPLETE, STATE_STATIC_VAR)
    out = xr.Dataset({cv.SM: combined, **{v: sm[v] for v in kept if v in sm.variables}}, attrs=attrs)
    if start_period is not None:
        end = str(sm.attrs["xsomo_drivers_period"]).split("/")[-1]
        out.attrs["xsomo_drivers_period"] = f"{start_period}/{end}"
    return to_files(
        out, directory, overwrite=True, progress=progress, client=client, complevel=complevel,
        concurrency=concurrency, state_file=state_file,
    )  # fmt: skip


def _refuse_dropped_days(directory: pathlib.Path, layers: list[int], last: pd.Timestamp, end: pd.Timestamp) -> None:
    """Refuse files that hold days after the extension's end: an extension killed before it
    saved its state and rerun to an earlier end, or a state older than the files (a copy kept
    from before a completed extension) would drop them. (A stale state had cut a folder ending
    on 31 August back to 31 July, reporting "added 31 days".)"""
    named = ((p, somo_io.FILE_PATTERN.match(p.name)) for p in sorted(directory.iterdir()))
    stale = []
    for p, m in named:
        if not m or m["product"] != somo_io.OUTPUT_PRODUCT or int(m["layer"]) not in layers or int(m["year"]) < last.year:
            continue
        if int(m["year"]) > end.year:
            stale.append(p.name)
            continue
        try:
            day = somo_io.file_identity(p, int(m["layer"])).last_day
        except XsomoError:
            continue  # unreadable: the checks of the file itself name it
        if day is not None and pd.Timestamp(day) > end:
            stale.append(f"{p.name} (to {pd.Timestamp(day).date()})")
    if stale:
        raise GridMismatchError(
            f"{directory} holds days after this extension's end {end.date()} ({', '.join(stale[:4])}"
            f"{', ...' if len(stale) > 4 else ''}), and the state's last day is {last.date()}: extending would drop "
            "them. The state is older than the files (a copy kept from before a later extension, or an extension "
            "killed before it saved its state): give the state saved last, extend to their end (--end), or remove "
            "those days' files."
        )


def _drivers_of_state(found: dict[str, Any], sm: xr.Dataset, where: str) -> None:
    """The output the state continues must be the one the state was saved with: the same
    run's drivers identity (``found``: the output's attributes), or an extension of that
    state killed before it saved its own."""
    want = sm.attrs.get(CONTINUED_FROM_DRIVERS)
    have = found.get("xsomo_drivers_id")
    if not want or not have:
        return  # (outputs or states of versions before the identity)
    if have != want and found.get(CONTINUED_FROM_DRIVERS) != want:
        raise ForeignOutputError(
            f"{where} was not written by the run that saved this state (its drivers {have}, the state's "
            f"{want}): the state belongs to another folder or run of the model, and continuing from it would "
            "join two runs. Give the state saved with this output (--state), or predict the whole period again."
        )


def _check_extendable(path: pathlib.Path, layer: int, last: pd.Timestamp, sm: xr.Dataset) -> Any:
    """The file of ``layer`` holding the state's last day: there, of this model, not behind the
    state, on this grid (its identity, :func:`xsomo.io.somo.file_identity`)."""
    if not path.exists():
        raise GridMismatchError(
            f"{path} is missing: the state continues from {last.date()}, which that file should "
            "hold. Extend the folder the state was saved with, or predict the whole period again."
        )
    found = somo_io.file_identity(path, layer)
    mine = str(sm.attrs.get("xsomo_model_id"))
    if found.attrs.get("xsomo_model_id") != mine:
        raise ForeignOutputError(
            f"{path} was written by model {found.attrs.get('xsomo_model_id')}, the extension is of "
            f"model {mine}: appending would mix two models. Give the model and folder the state "
            "belongs to."
        )
    if found.last_day is None or pd.Timestamp(found.last_day) < last:
        raise GridMismatchError(
            f"{path} ends on {found.last_day}, before the state's last day {last.date()}: the files "
            "are behind the state. Rerun the `xsomo predict ... --save-state` that wrote them."
        )
    _drivers_of_state(somo_io.global_attrs(path, ("xsomo_drivers_id", CONTINUED_FROM_DRIVERS)), sm, str(path))
    if tuple(found.shape[1:]) != (sm.sizes[cv.LAT], sm.sizes[cv.LON]):
        raise GridMismatchError(
            f"{path} lies on {found.shape[1]} x {found.shape[2]} cells, the extension on "
            f"{sm.sizes[cv.LAT]} x {sm.sizes[cv.LON]}: another grid."
        )
    return found


def _days_until(
    path: pathlib.Path, layer: int, last: pd.Timestamp, sm: xr.Dataset
) -> tuple[xr.DataArray, str | None]:
    """The current year's file of ``layer`` up to ``last`` (lat descending, loaded), checked."""
    found = _check_extendable(path, layer, last, sm)
    with xr.open_dataset(path, engine="netcdf4") as ds:
        var = ds[cv.layer_var_name(layer)].sel({cv.TIME: slice(None, last)}).load()
    period = found.attrs.get("xsomo_drivers_period")
    var = var.drop_vars([c for c in var.coords if c not in var.dims]).expand_dims({cv.LAYER: [layer]})
    return var.rename(cv.SM), (period.split("/")[0] if period else None)


#: Chunks of the Zarr store: one layer x ``ZARR_CHUNK_DAYS`` days x ``ZARR_CHUNK_CELLS`` x
#: ``ZARR_CHUNK_CELLS`` cells (1 MiB of float32 before compression). Chosen by
#: bench/bench_zarr.py (2026-11-30, shared 2-core box, load 5-6; raw zarr reads, page cache
#: dropped; docs/prediction.md): a daily Europe map (355 x 570) reads 6 x 9 chunks in
#: ~120 ms and one cell's 19-year series 109 chunks in ~250 ms. Against 96 d x 32^2 (map
#: 240-310 ms, series 115-125 ms), 32 d x 64^2 (80-90 / 330 ms), 365 d x 16^2 (1 050 /
#: 24 ms) and the netCDF files (210 / 1 270 ms) it has the smallest worst case, and 2.5x
#: fewer chunk files than 32^2. Cost: a chunk gathers the roll-outs of the compute blocks it
#: covers (4 blocks of 32^2 for an 18-year Europe run), so the writer holds ~2.4x the
#: blocks in memory that 32^2 chunks need (measured 490 vs 210 MiB over the baseline).
ZARR_CHUNK_DAYS = 64
ZARR_CHUNK_CELLS = 64
#: Days per chunk of the store's ``time`` coordinate (about 11 years of int64 in one chunk).
ZARR_TIME_COORD_CHUNK = 4096


def _store_variable(ds: xr.Dataset) -> xr.DataArray:
    """``sm`` as the store holds it: (layer, time, lat, lon), lat descending, float32, CF attributes."""
    arr = ds[cv.SM]
    arr = _time_ascending(cv.with_layer_dim(arr).transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON), "to_zarr")
    if arr.indexes[cv.LAT].is_monotonic_increasing:
        arr = arr.isel({cv.LAT: slice(None, None, -1)})
    if arr.indexes[cv.LON].is_monotonic_decreasing:
        arr = arr.isel({cv.LON: slice(None, None, -1)})
    arr = arr.drop_vars([c for c in arr.coords if c not in arr.dims and c not in ("depth_top", "depth_bottom")])
    arr = arr.assign_coords({c: (c, cv.file_coords(arr[c].values), arr[c].attrs) for c in (cv.LAT, cv.LON)})
    var = arr.astype(np.float32)
    var.attrs = {**cv.SM_ATTRS, "grid_mapping": "spatial_ref"}
    return var


def _store_state(ds: xr.Dataset, state_file: str | os.PathLike[str] | None) -> tuple[pathlib.Path | None, Any]:
    """The state file to write and the lazy state (checked; :data:`STATE` with
    :data:`STATE_COMPLETE` where the prediction has it), or ``(None, None)``."""
    if state_file is None:
        return None, None
    path = pathlib.Path(state_file).expanduser()
    if STATE not in ds.variables:
        raise MissingVariableError(
            f"state_file={path}: the prediction holds no {STATE!r}; predict with "
            "return_state=True (xsomo predict --save-state)"
        )
    _check_state_target(path)
    names = [STATE] + [v for v in (STATE_COMPLETE, STATE_STATIC_VAR) if v in ds.variables]
    return path, xr.Dataset({n: _oriented(ds[n], ds) for n in names})


def _compute(*lazy: Any, client: Any) -> tuple[Any, ...]:
    """Compute dask collections together (shared roll-outs run once), on ``client`` if given."""
    client = _active_client(client)
    if client is not None:
        return tuple(client.gather(client.compute(list(lazy))))
    return tuple(dask.compute(*lazy))


def _write_saved_state(
    saved: xr.Dataset, values: Sequence[Any], attrs: dict[str, Any], path: pathlib.Path
) -> None:
    """Write the computed ``values`` of the lazy state variables ``saved`` (:func:`_store_state`,
    in its order) with ``attrs`` to the state file ``path``."""
    state = xr.Dataset(
        {n: saved[n].copy(data=np.asarray(v)) for n, v in zip(saved.data_vars, values, strict=True)}
    )
    somo_io.write_state(state.assign_attrs(attrs), path)


def to_zarr(
    sm: xr.Dataset | xr.DataArray,
    store: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = True,
    client: Any = None,
    state_file: str | os.PathLike[str] | None = None,
) -> pathlib.Path:
    """Write a prediction as one Zarr store (``sm(layer, time, lat, lon)``), beside or instead of files.

    The store holds ``sm`` float32 m3 m-3 (lat descending, as the files), CF attributes, the
    CRS as the grid mapping ``spatial_ref`` and the prediction's provenance and identity
    attributes, with consolidated metadata (Zarr format 2, which GDAL and other readers
    open). Chunks: one layer x :data:`ZARR_CHUNK_DAYS` days x :data:`ZARR_CHUNK_CELLS` x
    :data:`ZARR_CHUNK_CELLS` cells. Dask computes the blocks (on a distributed client's
    workers if one is active) and writes the chunks of each in parallel; the store is
    written to a temporary folder and renamed when complete
    (:func:`xsomo.io.atomic.atomic_dir`). :func:`xsomo.open_somo` (``engine="somo"``) opens it;
    :func:`extend_zarr` appends new days to it.

    Parameters
    ----------
    sm
        A prediction (:func:`xsomo.prediction.inference.predict`).
    store
        The store's folder (``*.zarr``).
    overwrite
        Replace a store that exists.
    progress
        Print what was written.
    client
        A :class:`dask.distributed.Client` (default: the active one, if any).
    state_file
        Also write the roll-out's state after the last day to this file (the prediction
        must hold ``lstm_state``: ``predict(..., return_state=True)``), after the store is
        complete, so that :func:`extend_zarr` can continue it. The state is computed with
        the store's chunks (the roll-out runs once).

    Raises
    ------
    OutputWriteError
        ``store`` exists (without ``overwrite``) or cannot be written.
    MissingVariableError
        ``state_file`` is given but the prediction holds no state.
    """
    import zarr

    from xsomo._version import __version__
    from xsomo.io.atomic import atomic_dir

    ds = _as_dataset(sm)
    _refuse_continued(ds, "to_zarr", "extend_zarr")
    state_path, saved = _store_state(ds, state_file)
    attrs = somo_io.clean_attrs(dict(ds.attrs))
    attrs.update(
        Conventions="CF-1.8", xsomo_version=__version__,
        history=f"written by xsomo {__version__} (xsomo.prediction.output.to_zarr)",
    )  # fmt: skip
    out = xr.Dataset({cv.SM: _store_variable(ds)}, attrs=attrs)
    out = out.assign_coords(spatial_ref=xr.Variable((), np.int32(0), somo_io.grid_mapping_attrs()))
    out = out.chunk(
        {cv.LAYER: 1, cv.TIME: ZARR_CHUNK_DAYS, cv.LAT: ZARR_CHUNK_CELLS, cv.LON: ZARR_CHUNK_CELLS}
    )
    for name in out.variables:
        out[name].encoding = {}
    out[cv.TIME].encoding = {"chunks": (ZARR_TIME_COORD_CHUNK,)}  # extensions rewrite one small chunk
    store = check_store_target(store, overwrite=overwrite)
    t0 = _time.perf_counter()
    try:
        with atomic_dir(store, overwrite=True) as tmp:  # (check_store_target decided)
            # xarray writes the metadata and the coordinates; sm's chunks are stored here with
            # the state in ONE graph (xarray's delayed write optimises its graph apart, and the
            # state's roll-outs would then run a second time)
            out.to_zarr(tmp, mode="w", consolidated=False, zarr_format=2, compute=False)
            target = zarr.open_group(os.fspath(tmp), mode="r+")[cv.SM]
            # GDAL before 3.9 reads a Zarr array's CRS only from its own `_CRS` attribute (not the CF
            # grid mapping): without it GDAL 3.6 / QGIS 3.28 showed the store without a CRS (QA)
            target.attrs[somo_io.GDAL_ZARR_CRS] = somo_io.gdal_zarr_crs()
            stored = _store_chunks(out[cv.SM].data, target, offset=0)
            lazy_state = [] if saved is None else [saved[n].data for n in saved.data_vars]
            computed = _compute(stored, *lazy_state, client=client)
            zarr.consolidate_metadata(os.fspath(tmp))
    except OSError as err:
        if isinstance(err, XsomoError):
            raise
        raise OutputWriteError(
            f"writing the Zarr store {store} failed: {err}. Nothing was left under that name; free "
            "space (or fix the folder) and rerun."
        ) from err
    if state_path is not None:
        # last: a run killed before this leaves no state ahead of its store
        _write_saved_state(saved, computed[1:], dict(ds.attrs), state_path)
    if progress:
        print(
            f"xsomo: wrote the Zarr store {store} in {_time.perf_counter() - t0:.1f} s"
            + (f" and the state to {state_path}" if state_path is not None else "")
        )
    return store


def _store_chunks(data: da.Array, target: Any, *, offset: int) -> da.Array:
    """The lazy write of ``data`` into the zarr array ``target`` from time index ``offset``.

    Every store chunk must be written by one task only (parallel tasks writing one chunk
    would lose each other's data): the dask chunks' inner edges must lie on store chunk edges.
    """
    for axis, (dask_chunks, size) in enumerate(zip(data.chunks, target.chunks, strict=True)):
        start = offset if axis == 1 else 0
        edges = start + np.cumsum(dask_chunks)[:-1]
        if (edges % size).any():
            raise XsomoValueError(
                f"internal: dask chunks {dask_chunks} (from index {start}) do not tile the store's "
                f"chunks of {size} along axis {axis}"
            )
    region = (slice(None), slice(offset, offset + data.shape[1]), slice(None), slice(None))
    return da.store(data, target, regions=region, lock=False, compute=False)


def _time_chunks(start: int, n: int, size: int) -> tuple[int, ...]:
    """Dask chunks of ``n`` days written from index ``start`` that align with ``size``-day store chunks.

    >>> _time_chunks(731, 200, 96)  # 731 = 7 x 96 + 59: 37 days fill the partial chunk
    (37, 96, 67)
    """
    first = min(n, size - start % size)
    rest = n - first
    return (first,) + (size,) * (rest // size) + ((rest % size,) if rest % size else ())


def extend_zarr(
    sm: xr.Dataset,
    store: str | os.PathLike[str],
    *,
    state_file: str | os.PathLike[str],
    progress: bool = True,
    client: Any = None,
) -> pathlib.Path:
    """Append a continued prediction (``predict(..., state=..., return_state=True)``) to a Zarr store.

    The store (written by :func:`to_zarr` with ``state_file``, or extended before) must hold
    the state's last day; the new days are written after it along ``time``, in parallel by
    dask (each store chunk by one task: the first dask chunk fills the store's partial last
    time chunk), the consolidated metadata is rewritten and the state file is replaced
    last. Order of the writes: the arrays are resized, the new days written, the
    consolidated metadata (the arrays' shapes readers see) rewritten, the group attributes
    (``xsomo_drivers_period``, ``history``) updated and consolidated again, then the
    state. Each write of a chunk or metadata file is atomic (zarr >= 3.1.3 writes to a
    temporary name and renames), so a run killed anywhere leaves the days up to the
    state's last day unchanged and readers see the old length until the metadata is
    consolidated; the same call again completes the extension (days after the state's last
    day that a killed run left in the store are recomputed and overwritten). An extension
    that ends before the store's last day is refused: it would drop days (a state older
    than the store).

    Parameters
    ----------
    sm
        The continued prediction with its new state.
    store
        The store to extend.
    state_file
        The state file the prediction continued from; replaced by the new state last.
    progress
        Print what was written.
    client
        A :class:`dask.distributed.Client` (default: the active one, if any).

    Returns
    -------
    pathlib.Path
        The store.

    Raises
    ------
    XsomoValueError
        ``sm`` is not a continued prediction with its state.
    ForeignOutputError
        The store was written by another model.
    GridMismatchError
        No store at ``store``, another grid or other layers, or a store that does not hold
        the state's last day (behind the state, or starting after it).
    """
    import zarr
    from xarray.coding.times import encode_cf_datetime

    from xsomo._version import __version__

    if "continued_from_state" not in sm.attrs or STATE not in sm.variables:
        raise XsomoValueError(
            "extend_zarr needs a prediction continued from a saved state with its new state: "
            "predict(drivers, model, state=..., return_state=True)"
        )
    store = pathlib.Path(store).expanduser()
    last = pd.Timestamp(sm.attrs["continued_from_state"])
    new = _store_variable(sm)
    new_times = pd.DatetimeIndex(new.indexes[cv.TIME])
    if new_times[0] != last + pd.Timedelta(days=1):
        raise XsomoValueError(
            f"the prediction starts on {new_times[0].date()}, not on the day after the state's last "
            f"day {last.date()}: predict with state=... and no time= that skips days"
        )
    start, n_old = _check_extensible(store, new, sm, last)
    k = start + 1  # index of the first new day in the store
    size = k + new_times.size

    group = zarr.open_group(os.fspath(store), mode="r+", use_consolidated=False)
    arr, tarr = group[cv.SM], group[cv.TIME]
    day_chunk, lat_chunk, lon_chunk = arr.chunks[1:]
    extra = n_old - k
    if extra > 0 and progress:
        print(
            f"xsomo: {store} holds {extra} days after the state's last day {last.date()} (a killed "
            "extension?): they are recomputed and overwritten"
        )
    for stale in store.rglob("*.partial"):  # a killed zarr write's temporary file
        stale.unlink(missing_ok=True)
    state_path, saved = _store_state(sm, state_file)
    if state_path is None or saved is None:
        raise XsomoValueError("extend_zarr needs state_file=: the state the prediction continued from")
    t0 = _time.perf_counter()
    try:
        tarr.resize((size,))
        arr.resize((arr.shape[0], size, *arr.shape[2:]))
        units = tarr.attrs.get("units", "days since 1970-01-01")
        calendar = tarr.attrs.get("calendar", "proleptic_gregorian")
        encoded, _, _ = encode_cf_datetime(new_times, units=units, calendar=calendar, dtype=tarr.dtype)
        tarr[k:size] = np.asarray(encoded, dtype=tarr.dtype)
        part = new.chunk(
            {cv.LAYER: 1, cv.TIME: _time_chunks(k, new_times.size, day_chunk),
             cv.LAT: lat_chunk, cv.LON: lon_chunk}
        ).data  # fmt: skip
        # the first dask chunk along time fills the store's partial last chunk (its old days
        # are read and written back unchanged, by that one task): no two tasks share a chunk
        stored = _store_chunks(part, arr, offset=k)
        _, *values = _compute(stored, *(saved[n].data for n in saved.data_vars), client=client)
        # readers see the new days from here (zarr-python reads a group's own attributes from
        # its .zattrs, the arrays' shapes from the consolidated metadata)
        zarr.consolidate_metadata(os.fspath(store))
        old_period = str(group.attrs.get("xsomo_drivers_period", ""))
        new_period = str(sm.attrs.get("xsomo_drivers_period", ""))
        updates = {
            "xsomo_version": __version__,
            "history": f"{group.attrs.get('history', '')}; extended to {new_times[-1].date()} by xsomo "
            f"{__version__} (xsomo.prediction.output.extend_zarr)".lstrip("; "),
        }
        if old_period and new_period:
            updates["xsomo_drivers_period"] = f"{old_period.split('/')[0]}/{new_period.split('/')[-1]}"
        for key in ("state_last_day", "xsomo_drivers_id", CONTINUED_FROM_DRIVERS):  # (a stale one described the old store)
            if key in sm.attrs:
                updates[key] = str(sm.attrs[key])
        group.attrs.update(updates)
        zarr.consolidate_metadata(os.fspath(store))
    except OSError as err:
        if isinstance(err, XsomoError):
            raise
        raise OutputWriteError(
            f"extending the Zarr store {store} failed: {err}. Its days up to {last.date()} are "
            "unchanged; free space (or fix the folder) and rerun the same command to complete it."
        ) from err
    fsync_path(store)
    state_attrs = dict(sm.attrs)
    if "xsomo_drivers_period" in updates:
        state_attrs["xsomo_drivers_period"] = updates["xsomo_drivers_period"]
    # last: a run killed before this leaves the old state, which a rerun continues from
    _write_saved_state(saved, values, state_attrs, state_path)
    if progress:
        print(
            f"xsomo: appended {new_times.size} days ({new_times[0].date()} to {new_times[-1].date()}) "
            f"to {store} in {_time.perf_counter() - t0:.1f} s; state in {state_path}"
        )
    return store


def _check_extensible(
    store: pathlib.Path, new: xr.DataArray, sm: xr.Dataset, last: pd.Timestamp
) -> tuple[int, int]:
    """The index of the state's last day in ``store`` and the store's length as readers see it."""
    if not somo_io.is_zarr_store(store):
        raise GridMismatchError(
            f"no Zarr store at {store}: the state continues from {last.date()}, which that store "
            "should hold. Extend the store the state was saved with (xsomo predict --format zarr "
            "--save-state), or predict the whole period again."
        )
    with xr.open_zarr(os.fspath(store), chunks=None, decode_coords="all") as old:
        if cv.SM not in old.data_vars:
            raise GridMismatchError(f"{store} holds no {cv.SM!r}: not a store of xsomo predict --format zarr")
        theirs, mine = old.attrs.get("xsomo_model_id"), str(sm.attrs.get("xsomo_model_id"))
        if theirs != mine:
            raise ForeignOutputError(
                f"{store} was written by model {theirs}, the extension is of model {mine}: appending "
                "would mix two models. Give the model and store the state belongs to."
            )
        ident = {k: old.attrs.get(k) for k in ("xsomo_drivers_id", CONTINUED_FROM_DRIVERS)}
        if [int(v) for v in old[cv.LAYER].values] != [int(v) for v in new[cv.LAYER].values]:
            raise GridMismatchError(
                f"{store} holds layers {[int(v) for v in old[cv.LAYER].values]}, the extension "
                f"{[int(v) for v in new[cv.LAYER].values]}: predict the layers of the store."
            )
        same_grid = all(
            old.sizes[d] == new.sizes[d]
            and np.allclose(old[d].values, new[d].values, rtol=0, atol=1e-6)
            for d in (cv.LAT, cv.LON)
        )
        if not same_grid:
            raise GridMismatchError(
                f"{store} lies on {old.sizes[cv.LAT]} x {old.sizes[cv.LON]} cells, the extension on "
                f"{new.sizes[cv.LAT]} x {new.sizes[cv.LON]} (or other coordinates): another grid. "
                "Give the drivers of the store's grid."
            )
        times = pd.DatetimeIndex(old.indexes[cv.TIME])
    if times.size == 0 or times[-1] < last:
        end = times[-1].date() if times.size else "no day"
        raise GridMismatchError(
            f"{store} ends on {end}, before the state's last day {last.date()}: the store is behind "
            "the state (a gap). Rerun the `xsomo predict --format zarr --save-state` that wrote it, "
            "or give the state saved with this store."
        )
    if last not in times:
        raise GridMismatchError(
            f"{store} starts on {times[0].date()}, after the state's last day {last.date()}: the "
            "state is not this store's. Give the state saved with this store."
        )
    end = pd.Timestamp(new[cv.TIME].values[-1])
    if times[-1] > end:
        # (a state older than the store had trimmed it back to this extension's end, without a word)
        raise GridMismatchError(
            f"{store} holds days up to {times[-1].date()}, after this extension's end {end.date()}, and the state's "
            f"last day is {last.date()}: extending would drop them. The state is older than the store (a copy kept "
            "from before a later extension, or an extension killed before it saved its state): give the state "
            "saved last, or extend to the store's end (--end)."
        )
    _drivers_of_state(ident, sm, str(store))
    return int(times.get_loc(last)), int(times.size)
