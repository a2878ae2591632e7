"""The SoMo.ml file format: the xarray backend ``engine="somo"`` that reads a folder or glob of
SoMo.ml files as one lazy Dataset, and the file-level parts of the writer.

This module is the one place that knows the format: the file-name pattern
(:data:`OUTPUT_NAME`, :func:`output_filename`, :data:`FILE_PATTERN`), the CF/grid-mapping
attributes (:func:`grid_mapping_attrs`), how one layer-year file is created and encoded
(:func:`create_layer_file`) and which identity attributes a file carries
(:func:`file_identity`). The streaming of a prediction into the files (blocks, threads,
atomic renames) is :func:`xsomo.prediction.output.to_files`.

The published products store one netCDF file per layer and year with one variable named
after the layer: SoMo.ml-EU (``SoMo.ml-EU_layer{N}_{YYYY}.nc``, written by
:func:`xsomo.prediction.output.to_files`) and SoMo.ml v1 (``SoMo.ml_v1_layer{N}_{YYYY}.nc``, usually
in folders ``SoMo.ml_v1_layer{N}/``). This backend stacks them into one Dataset
``sm(layer, time, lat, lon)`` with the ``layer`` coordinate of :mod:`xsomo.conventions`
and the CRS as a CF grid mapping variable ``spatial_ref`` (``ds.rio.crs`` works).

Nothing is read but the coordinates: ``sm`` is a lazily indexed array that reads only
the files and the parts of them that an index touches, so ``.sel`` of one day reads one
field of one file. ``open_somo`` (and ``xr.open_dataset(..., chunks={})``) turns it into a
dask array chunked like the files.

This module imports nothing heavy (no torch, no rasterio): xarray imports every
installed backend the first time anyone calls ``open_dataset``.
"""

from __future__ import annotations

import glob
import os
import pathlib
import re
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.backends.locks import HDF5_LOCK, NETCDFC_LOCK, combine_locks
from xarray.core import indexing

from xsomo import conventions as cv
from xsomo.exceptions import DataFormatError, GridMismatchError, XsomoError, XsomoValueError
from xsomo.runtime import user_stacklevel

__all__ = [
    "FILE_PATTERN",
    "GDAL_ZARR_CRS",
    "IDENTITY_ATTRS",
    "NC_LOCK",
    "OUTPUT_NAME",
    "OUTPUT_PRODUCT",
    "STATE_COMPLETE_VAR",
    "STATE_VAR",
    "TIME_UNITS",
    "FileIdentity",
    "ForeignOutputError",
    "OutputWriteError",
    "SomoBackendEntrypoint",
    "clean_attrs",
    "create_layer_file",
    "file_identity",
    "find_somo_files",
    "gdal_zarr_crs",
    "global_attrs",
    "grid_mapping_attrs",
    "is_zarr_store",
    "open_somo",
    "output_filename",
    "read_state",
    "write_state",
]

#: The product prefix of the files xsomo writes.
OUTPUT_PRODUCT = "SoMo.ml-EU"
#: Name of one output file (layer number, year), as the published SoMo.ml-EU dataset.
OUTPUT_NAME = OUTPUT_PRODUCT + "_layer{layer}_{year}.nc"

#: File names the backend recognises: ``SoMo.ml-EU_layer1_2010.nc``, ``SoMo.ml_v1_layer1_2010.nc``
#: (any ``SoMo.ml<product>_layer<N>_<YYYY>.nc``). The product prefix must be the same for all files.
FILE_PATTERN = re.compile(
    r"^(?P<product>SoMo\.ml[-_.\w]*?)_layer(?P<layer>\d+)_(?P<year>\d{4})\.nc$"
)

_GLOB_CHARS = re.compile(r"[*?\[]")


def output_filename(layer: int, year: int) -> str:
    """The file name of one layer and year, ``SoMo.ml-EU_layer{N}_{YYYY}.nc``.

    >>> output_filename(2, 2015)
    'SoMo.ml-EU_layer2_2015.nc'
    >>> FILE_PATTERN.match(output_filename(2, 2015))["layer"]
    '2'
    """
    return OUTPUT_NAME.format(layer=int(layer), year=int(year))


@dataclass(frozen=True)
class SomoFile:
    """One recognised file: its path, product prefix, layer number and year."""

    path: pathlib.Path
    product: str
    layer: int
    year: int


def _candidates(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[pathlib.Path]:
    if isinstance(path, (str, os.PathLike)):
        text = os.fspath(path)
        if _GLOB_CHARS.search(text) and not os.path.exists(text):
            return [pathlib.Path(p) for p in sorted(glob.glob(os.path.expanduser(text)))]
        p = pathlib.Path(text).expanduser()
        if p.is_dir():
            # the folder itself and one level of sub-folders (SoMo.ml v1 ships SoMo.ml_v1_layer{N}/)
            return sorted([*p.glob("*.nc"), *p.glob("*/*.nc")])
        if p.is_file():
            return [p]
        raise FileNotFoundError(
            f"{text}: no such file or folder (give a folder, a glob or a list of SoMo.ml files)"
        )
    return [pathlib.Path(os.fspath(p)).expanduser() for p in path]


def find_somo_files(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    layers: Iterable[int] | None = None,
    years: Iterable[int] | None = None,
) -> list[SomoFile]:
    """Recognise the SoMo.ml files in a folder, a glob pattern or a list of paths.

    Parameters
    ----------
    path
        A folder (searched with one level of sub-folders), a glob such as
        ``"out/SoMo.ml-EU_layer1_*.nc"``, one file, or a list of files.
    layers, years
        Keep only these layer numbers / years.

    Returns
    -------
    list of SomoFile
        Sorted by layer, then year.

    Raises
    ------
    FileNotFoundError
        No file matches :data:`FILE_PATTERN`.
    XsomoValueError
        Files of two products (e.g. SoMo.ml-EU and SoMo.ml v1) or two files for the same
        layer and year.
    """
    found: list[SomoFile] = []
    for p in _candidates(path):
        m = FILE_PATTERN.match(p.name)
        if m is None:
            continue
        found.append(SomoFile(p, m["product"], int(m["layer"]), int(m["year"])))
    every = list(found)
    if layers is not None:
        keep = {int(n) for n in layers}
        found = [f for f in found if f.layer in keep]
    if years is not None:
        keep_y = {int(y) for y in years}
        found = [f for f in found if f.year in keep_y]
    where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else list(path)
    if not found and every:
        # (files of other layers or years: it had said "no SoMo.ml files named like ...layer1...")
        have_l = sorted({f.layer for f in every})
        have_y = sorted({f.year for f in every})
        raise FileNotFoundError(
            f"{where!r}: no SoMo.ml file of "
            + (f"layer(s) {sorted(keep)} " if layers is not None else "")
            + (f"year(s) {sorted(keep_y)} " if years is not None else "")
            + f"among its {len(every)} files (layers {have_l}, years {have_y[0]}-{have_y[-1]})"
        )
    if not found:
        raise FileNotFoundError(
            f"{where!r}: no SoMo.ml files "
            "named like 'SoMo.ml-EU_layer1_2010.nc' or 'SoMo.ml_v1_layer1_2010.nc' (check the path, the "
            "layers and years asked for)"
        )
    products = sorted({f.product for f in found})
    if len(products) > 1:
        raise XsomoValueError(
            f"files of several products found: {products}; open one product at a time with a glob "
            f"such as '{products[0]}_layer*_*.nc'"
        )
    seen: dict[tuple[int, int], pathlib.Path] = {}
    for f in found:
        key = (f.layer, f.year)
        if key in seen:
            raise XsomoValueError(
                f"two files for layer {f.layer}, year {f.year}: {seen[key]} and {f.path}; remove one"
            )
        seen[key] = f.path
    return sorted(found, key=lambda f: (f.layer, f.year))


# ----------------------------------------------------------------------------- lazy array


class _StackedArray(BackendArray):
    """Lazy ``(layer, time, lat, lon)`` view over per-file lazy ``(time, lat, lon)`` variables.

    ``pieces[i]`` lists ``(positions, variable)`` for layer ``i``: ``positions`` are the
    indices of the file's days on the stacked time axis. Days without a file are NaN.
    """

    def __init__(
        self,
        pieces: list[list[tuple[np.ndarray, xr.Variable]]],
        shape: tuple[int, int, int, int],
        dtype: np.dtype,
    ) -> None:
        self.pieces = pieces
        self.shape = shape
        self.dtype = dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._raw_indexing_method
        )

    def _raw_indexing_method(self, key: tuple[Any, ...]) -> np.ndarray:
        k_layer, k_time, k_lat, k_lon = key
        layer_idx = np.arange(self.shape[0])[k_layer]
        time_idx = np.arange(self.shape[1])[k_time]
        # shape of one layer's result after lat/lon indexing (ints drop the dim)
        lat_n = np.arange(self.shape[2])[k_lat]
        lon_n = np.arange(self.shape[3])[k_lon]
        out_t = np.atleast_1d(time_idx)
        out = np.full(
            (np.atleast_1d(layer_idx).size, out_t.size, *np.shape(lat_n), *np.shape(lon_n)),
            np.nan,
            dtype=self.dtype,
        )
        for i, li in enumerate(np.atleast_1d(layer_idx)):
            for positions, var in self.pieces[int(li)]:
                # where each requested day sits inside this file (-1: not in it)
                local = np.searchsorted(positions, out_t)
                local = np.clip(local, 0, positions.size - 1)
                hit = positions[local] == out_t
                if not hit.any():
                    continue
                rows = local[hit]
                if rows.size > 1 and np.all(np.diff(rows) == 1):
                    t_key: Any = slice(int(rows[0]), int(rows[-1]) + 1)
                else:
                    t_key = rows
                out[i, hit] = np.asarray(var[(t_key, k_lat, k_lon)].values, dtype=self.dtype)
        if np.ndim(time_idx) == 0:
            out = out[:, 0]
        if np.ndim(layer_idx) == 0:
            out = out[0]
        return out


# ----------------------------------------------------------------------------- opening


#: xarray's standard decoding keywords, passed on to the single files.
DECODERS = (
    "mask_and_scale",
    "decode_times",
    "concat_characters",
    "decode_coords",
    "use_cftime",
    "decode_timedelta",
)


def _open_one(
    f: SomoFile, engine: str | None, decoders: Mapping[str, Any] | None = None
) -> tuple[xr.Dataset, xr.Variable]:
    name = cv.layer_var_name(f.layer)
    opts = {"decode_coords": "all", **{k: v for k, v in (decoders or {}).items() if v is not None}}
    try:
        # an explicit netCDF engine: with engine=None xarray would pick "somo" again by the
        # file name for a file netCDF cannot read
        ds = xr.open_dataset(f.path, engine=engine or "netcdf4", chunks=None, **opts)
    except (OSError, ValueError, RuntimeError) as err:
        raise DataFormatError(
            f"{f.path}: has a SoMo.ml file name but cannot be read as netCDF ({err}). Is the file "
            "complete (a download or a run that was cut off)? Remove it or fetch it again."
        ) from err
    if name not in ds.data_vars:
        ds.close()
        raise DataFormatError(
            f"{f.path}: no variable {name!r} (found {sorted(map(str, ds.data_vars))}); SoMo.ml files "
            f"hold one variable named after their layer"
        )
    var = ds[name].variable
    if tuple(var.dims) != (cv.TIME, cv.LAT, cv.LON):
        var = var.transpose(cv.TIME, cv.LAT, cv.LON)
    return ds, var


_OPEN_LOCK = threading.Lock()


def _shared_attrs(all_attrs: list[dict[str, Any]]) -> dict[str, Any]:
    """The attributes (in the first's order) that every dict holds with the same value."""

    def same(a: Any, b: Any) -> bool:
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except Exception:
            return False

    first = all_attrs[0]
    return {k: v for k, v in first.items() if all(k in o and same(v, o[k]) for o in all_attrs[1:])}


#: Coordinate ``(layer, time)`` that :func:`open_somo` adds where a layer's files lack days
#: that another layer's hold: True where the layer's files hold the day.
IN_FILES = "in_files"


def _check_one_model(opened: list[tuple[SomoFile, xr.Dataset, xr.Variable]]) -> None:
    """Refuse files of different models (``xsomo_model_id``) in one Dataset.

    A folder holding a year predicted by another model (an earlier run, a retrained
    model) opened as one series, its anomalies computed against the other model's years.
    Files without the attribute (the published SoMo.ml v1 output) are not compared;
    ``xsomo_drivers_id`` may differ (``xsomo extend`` adds months from new drivers).
    """
    seen: dict[str, SomoFile] = {}
    for f, ds, var in opened:
        mid = ds.attrs.get("xsomo_model_id", var.attrs.get("xsomo_model_id"))
        if mid is not None:
            seen.setdefault(str(mid), f)
    if len(seen) > 1:
        (a, fa), (b, fb) = list(seen.items())[:2]
        raise DataFormatError(
            f"the files are from {len(seen)} different models: {fa.path} (xsomo_model_id {a}) and {fb.path} "
            f"({b}); a series mixing them would compare one model's years with another's. Open the files of one "
            "run (a list of files, or years=/layers=), or predict the missing years again with one model"
        )


def _warn_uneven_layers(in_files: np.ndarray, layer_numbers: list[int], files: list[SomoFile]) -> None:
    """Warn where a layer lacks days that another layer's files hold (``in_files`` ``(layer, time)``)."""
    short = [lay for lay, held in zip(layer_numbers, in_files, strict=True) if not held.all()]
    lay = short[0]
    years = {f.year for f in files}
    gone = sorted(years - {f.year for f in files if f.layer == lay})
    warnings.warn(
        f"layer {lay} lacks {int((~in_files[layer_numbers.index(lay)]).sum())} days that other layers' files hold"
        + (f" (no file of {', '.join(map(str, gone))})" if gone else "")
        + "; its values there are NaN, and means or anomalies over them would use part of their window. "
        f"Layers short of days: {short}. Open complete years (years=) or predict the missing ones",
        RuntimeWarning,
        stacklevel=user_stacklevel(),
    )


def _open_stacked(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    layers: Iterable[int] | None,
    years: Iterable[int] | None,
    engine: str | None,
    drop_variables: Iterable[str] | str | None = None,
    decoders: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    files = find_somo_files(path, layers=layers, years=years)
    opened: list[tuple[SomoFile, xr.Dataset, xr.Variable]] = []
    if isinstance(drop_variables, str):
        drop_variables = [drop_variables]
    try:
        for f in files:
            ds, var = _open_one(f, engine, decoders)
            opened.append((f, ds, var))
        first_f, first, _ = opened[0]
        lat = first[cv.LAT].values
        lon = first[cv.LON].values
        for f, ds, _ in opened[1:]:
            if (
                ds.sizes.get(cv.LAT) != lat.size
                or ds.sizes.get(cv.LON) != lon.size
                or not (np.allclose(ds[cv.LAT].values, lat) and np.allclose(ds[cv.LON].values, lon))
            ):
                flipped = (
                    ds.sizes.get(cv.LAT) == lat.size
                    and np.allclose(ds[cv.LAT].values[::-1], lat)
                    and np.allclose(ds[cv.LON].values, lon)
                )
                raise GridMismatchError(
                    f"{f.path}: its lat/lon grid differs from that of {first_f.path}"
                    + (
                        " (the same cells, latitudes in the other order: write the files with one order)"
                        if flipped
                        else ""
                    )
                    + "; open files of one grid together"
                )
        _check_one_model(opened)
        # the stacked time axis: the union of all files' days, sorted
        times = [ds[cv.TIME].values for _, ds, _ in opened]
        all_times = np.unique(np.concatenate(times))
        for (f, _, _), t in zip(opened, times, strict=True):
            if t.size > 1 and not np.all(t[1:] > t[:-1]):
                raise DataFormatError(f"{f.path}: time is not strictly increasing")
        layer_numbers = sorted({f.layer for f, _, _ in opened})
        pieces: list[list[tuple[np.ndarray, xr.Variable]]] = [[] for _ in layer_numbers]
        for (f, _, var), t in zip(opened, times, strict=True):
            pieces[layer_numbers.index(f.layer)].append((np.searchsorted(all_times, t), var))
        in_files = np.zeros((len(layer_numbers), all_times.size), bool)
        for k, lay_pieces in enumerate(pieces):
            for pos, _ in lay_pieces:
                in_files[k, pos] = True
        uneven = not in_files.all()
        if uneven:
            _warn_uneven_layers(in_files, layer_numbers, [f for f, _, _ in opened])
        for lay, lay_pieces in zip(layer_numbers, pieces, strict=True):
            pos = np.concatenate([p for p, _ in lay_pieces])
            if np.unique(pos).size != pos.size:
                mine = [(f, np.searchsorted(all_times, t)) for (f, _, _), t in zip(opened, times, strict=True) if f.layer == lay]
                pair = next(
                    (a.path, b.path)
                    for i, (a, pa) in enumerate(mine)
                    for b, pb in mine[i + 1 :]
                    if np.intersect1d(pa, pb).size
                )
                raise DataFormatError(
                    f"two files of layer {lay} share days: {pair[0]} and {pair[1]} (a file renamed to another "
                    "year?); each layer needs one file per year"
                )
        dtype = np.result_type(np.float32, *(v.dtype for _, _, v in opened))
        shape = (len(layer_numbers), all_times.size, lat.size, lon.size)
        data = indexing.LazilyIndexedArray(_StackedArray(pieces, shape, dtype))

        first_var = opened[0][2]
        # grid_mapping goes to encoding, as xarray's decode_coords="all" does
        # attributes every file shares (per-file ones such as layer, layer_depth, year would
        # describe the first file only)
        attrs = _shared_attrs([var.attrs for _, _, var in opened])
        attrs = {k: v for k, v in attrs.items() if k != "grid_mapping"}
        attrs = {**attrs, **cv.SM_ATTRS}
        sm = xr.Variable((cv.LAYER, cv.TIME, cv.LAT, cv.LON), data, attrs=attrs)
        enc_chunks = first_var.encoding.get("chunksizes")
        preferred = {cv.LAYER: 1}
        if enc_chunks and len(enc_chunks) == 3:
            order = first[cv.layer_var_name(first_f.layer)].dims
            preferred.update({str(d): int(c) for d, c in zip(order, enc_chunks, strict=True)})
        sm.encoding = {
            "grid_mapping": "spatial_ref",
            "preferred_chunks": preferred,
            "dtype": first_var.dtype,
        }

        if "spatial_ref" in first.coords or "spatial_ref" in first.variables:
            crs_attrs = dict(first["spatial_ref"].attrs)
        else:
            gm = first_var.encoding.get("grid_mapping") or first_var.attrs.get("grid_mapping")
            crs_attrs = dict(first[gm].attrs) if gm and gm in first.variables else grid_mapping_attrs()

        coords: dict[str, Any] = {
            cv.TIME: xr.Variable(cv.TIME, all_times, attrs=dict(first[cv.TIME].attrs)),
            cv.LAT: xr.Variable(cv.LAT, lat, attrs={**cv.LAT_ATTRS, **first[cv.LAT].attrs}),
            cv.LON: xr.Variable(cv.LON, lon, attrs={**cv.LON_ATTRS, **first[cv.LON].attrs}),
            "spatial_ref": xr.Variable((), np.int32(0), attrs=crs_attrs),
            **cv.layer_coords(layer_numbers),
        }
        if uneven:  # which days each layer's files hold (period means and anomalies need every day)
            coords[IN_FILES] = xr.Variable(
                (cv.LAYER, cv.TIME), in_files, attrs={"long_name": "the layer's files hold this day"}
            )
        out = xr.Dataset({cv.SM: sm}, coords=coords, attrs=_shared_attrs([ds.attrs for _, ds, _ in opened]))
        out.attrs["source_files"] = len(opened)
        if drop_variables:
            out = out.drop_vars([v for v in drop_variables if v in out.variables])
    except BaseException:
        for _, ds, _ in opened:
            ds.close()
        raise

    out.set_close(_Closer([ds for _, ds, _ in opened]))
    return out


class _Closer:
    """Closes the single files (a class, not a closure, so the Dataset pickles for dask workers)."""

    def __init__(self, datasets: list[xr.Dataset]) -> None:
        self.datasets = datasets

    def __call__(self) -> None:
        for ds in self.datasets:
            ds.close()


def open_somo(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    layers: Iterable[int] | None = None,
    years: Iterable[int] | None = None,
    chunks: Mapping[str, int] | str | None = "auto",
    engine: str | None = None,
) -> xr.Dataset:
    """Open SoMo.ml-EU (or SoMo.ml v1) output files as one Dataset ``sm(layer, time, lat, lon)``.

    Parameters
    ----------
    path
        A folder (with one level of sub-folders), a glob such as
        ``"out/SoMo.ml-EU_layer*_201[0-5].nc"``, one file, a list of files, or a Zarr store
        written by :func:`xsomo.prediction.output.to_zarr` (``xsomo predict --format zarr``).
    layers, years
        Open only these layers / years.
    chunks
        ``"auto"`` (default): dask chunks of about dask's ``array.chunk-size`` (128 MiB),
        multiples of the files' netCDF chunks (or the store's chunks) and one layer each;
        ``{}``: the files' (store's) own chunks; a mapping as in :func:`xarray.open_dataset`; ``None``: a lazily indexed
        array without dask.
    engine
        netCDF engine for the single files (``"netcdf4"``, ``"h5netcdf"``; default: xarray's choice).

    Returns
    -------
    xarray.Dataset
        ``sm`` float32 m3 m-3 with coords ``layer`` (``depth_top``/``depth_bottom``),
        ``time``, ``lat``, ``lon`` (as in the files) and the grid mapping ``spatial_ref``
        (EPSG:4326). Days that a layer's files lack are NaN.

    Raises
    ------
    FileNotFoundError
        No SoMo.ml file at ``path``.
    GridMismatchError
        Files on different grids.
    DataFormatError
        A file without its ``layer{N}`` variable, or unreadable.

    Examples
    --------
    >>> ds = xsomo.open_somo("out/")  # doctest: +SKIP
    >>> ds.sm.sel(layer=1, time="2010-07-01").plot()  # doctest: +SKIP
    """
    if chunks == "auto":
        # multiples of the stored chunks, one layer each: for a store, one dask task per
        # stored chunk ({}) made a daily Europe map 3-4x slower than the raw read (bench_zarr)
        chunks = {cv.LAYER: 1, cv.TIME: "auto", cv.LAT: "auto", cv.LON: "auto"}  # type: ignore[dict-item]
    if is_zarr_store(path):
        return _open_store(path, layers=layers, years=years, chunks=chunks)  # type: ignore[arg-type]
    return xr.open_dataset(
        path if isinstance(path, (str, os.PathLike)) else [os.fspath(p) for p in path],  # type: ignore[arg-type]
        engine=SomoBackendEntrypoint,
        chunks=chunks,
        layers=layers,
        years=years,
        netcdf_engine=engine,
    )


class SomoBackendEntrypoint(BackendEntrypoint):
    """``xr.open_dataset(path, engine="somo")`` for folders and globs of SoMo.ml files.

    Extra keywords: ``layers``, ``years`` (subsets) and ``netcdf_engine`` (engine of the
    single files). Pass ``chunks={}`` for dask chunks as stored in the files.
    """

    description = (
        "SoMo.ml / SoMo.ml-EU yearly layer files (folder or glob) as one sm(layer, time, lat, lon)"
    )
    url = "https://github.com/xsomo/xsomo/blob/main/docs/gis.md"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        *DECODERS,
        "layers",
        "years",
        "netcdf_engine",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Iterable[str] | str | None = None,
        mask_and_scale: bool | None = None,
        decode_times: bool | None = None,
        concat_characters: bool | None = None,
        decode_coords: bool | str | None = None,
        use_cftime: bool | None = None,
        decode_timedelta: bool | None = None,
        layers: Iterable[int] | None = None,
        years: Iterable[int] | None = None,
        netcdf_engine: str | None = None,
    ) -> xr.Dataset:
        """Open the files; xarray's decoding keywords apply to every single file.

        ``decode_coords`` defaults to ``"all"`` (the grid mapping becomes the coordinate
        ``spatial_ref``); the stacked ``sm`` carries the grid mapping in either case.
        """
        decoders = {
            "mask_and_scale": mask_and_scale,
            "decode_times": decode_times,
            "concat_characters": concat_characters,
            "decode_coords": decode_coords,
            "use_cftime": use_cftime,
            "decode_timedelta": decode_timedelta,
        }
        if is_zarr_store(filename_or_obj):
            return _open_store(filename_or_obj, layers=layers, years=years, chunks=None)
        with _OPEN_LOCK:
            return _open_stacked(
                filename_or_obj,
                layers=layers,
                years=years,
                engine=netcdf_engine,
                drop_variables=drop_variables,
                decoders=decoders,
            )

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        name = os.path.basename(os.fspath(filename_or_obj).rstrip("/"))
        if FILE_PATTERN.match(name):
            return True
        return "SoMo.ml" in name and bool(_GLOB_CHARS.search(name))


def is_zarr_store(path: Any) -> bool:
    """Whether ``path`` is a folder holding a Zarr store (format 2 or 3)."""
    if not isinstance(path, str | os.PathLike):
        return False
    p = pathlib.Path(os.fspath(path)).expanduser()
    return p.is_dir() and any((p / n).exists() for n in (".zmetadata", ".zgroup", "zarr.json"))


def _open_store(
    path: str | os.PathLike[str],
    *,
    layers: Iterable[int] | None,
    years: Iterable[int] | None,
    chunks: Mapping[str, int] | None,
) -> xr.Dataset:
    try:
        ds = xr.open_zarr(os.fspath(path), chunks=chunks, decode_coords="all")
    except (OSError, ValueError, KeyError) as err:
        raise DataFormatError(f"{path}: cannot be read as a Zarr store ({err})") from err
    if cv.SM not in ds.data_vars:
        raise DataFormatError(
            f"{path}: a Zarr store without {cv.SM!r} (found {sorted(map(str, ds.data_vars))}); "
            "give a store written by xsomo predict --format zarr"
        )
    ds[cv.SM].attrs.pop(GDAL_ZARR_CRS, None)  # (GDAL's; the grid mapping is spatial_ref)
    # (as for files: asking for what the store lacks is an error naming what it holds, not
    # pandas' KeyError, which `xsomo export --layer 2` printed as a bug; nor an empty Dataset)
    if layers is not None:
        held = [int(n) for n in ds[cv.LAYER].values]
        want = [int(n) for n in layers]
        if not set(want) & set(held):
            ds.close()
            raise FileNotFoundError(f"{path}: the store holds layers {held}, not {want}")
        ds = ds.sel({cv.LAYER: [n for n in want if n in held]})
    if years is not None:
        keep = np.isin(ds[cv.TIME].dt.year.values, [int(y) for y in years])
        if not keep.any():
            held_years = sorted(set(ds[cv.TIME].dt.year.values.tolist()))
            ds.close()
            span = f"{held_years[0]}-{held_years[-1]}" if held_years else "no day"
            raise FileNotFoundError(f"{path}: the store holds the years {span}, none of {sorted(set(years))}")
        ds = ds.isel({cv.TIME: np.nonzero(keep)[0]})
    return ds


# ----------------------------------------------------------------------------- writing


class OutputWriteError(XsomoError, OSError):
    """Writing the output files failed (unwritable folder, disk full, ...)."""


class ForeignOutputError(XsomoValueError):
    """An output file that exists was written by another model or from other drivers."""


#: netCDF-C/HDF5 are not thread-safe: every netCDF4 call of the writer holds the locks
#: xarray's readers hold, so writing the output never races a dask thread reading drivers.
NC_LOCK = combine_locks([NETCDFC_LOCK, HDF5_LOCK])
#: Units of the files' time axis.
TIME_UNITS = "days since 1970-01-01 00:00:00"
#: Global attributes that say which model and which drivers a file was computed from (the
#: drivers' days and a hash of their metadata, source files and sampled values).
IDENTITY_ATTRS = ("xsomo_model_id", "xsomo_drivers_period", "xsomo_drivers_id")


def grid_mapping_attrs() -> dict[str, Any]:
    """CF grid-mapping attributes of EPSG:4326, with ``crs_wkt`` and GDAL's ``spatial_ref``.

    >>> attrs = grid_mapping_attrs()
    >>> attrs["grid_mapping_name"], attrs["spatial_ref"] == attrs["crs_wkt"]
    ('latitude_longitude', True)
    """
    import pyproj

    crs = pyproj.CRS.from_user_input(cv.CRS)
    attrs = dict(crs.to_cf())
    wkt = crs.to_wkt()
    attrs["crs_wkt"] = wkt
    attrs["spatial_ref"] = wkt  # what GDAL reads
    return attrs


#: The attribute of a Zarr array from which GDAL's Zarr driver reads its CRS (GDAL 3.4-3.8 read no
#: other; 3.9 and later also read the CF ``grid_mapping``). :func:`open_somo` drops it (a dict
#: attribute, which netCDF cannot store).
GDAL_ZARR_CRS = "_CRS"


def gdal_zarr_crs() -> dict[str, str]:
    """The value of :data:`GDAL_ZARR_CRS` for EPSG:4326: ``{"wkt": ..., "url": ...}``."""
    return {"wkt": grid_mapping_attrs()["crs_wkt"], "url": "http://www.opengis.net/def/crs/EPSG/0/4326"}


def clean_attrs(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    """The attributes netCDF can store: numbers and strings; lists become ``"a, b"``; others dropped.

    >>> clean_attrs({"a": 1, "b": ["x", "y"], "c": None})
    {'a': 1, 'b': 'x, y'}
    """
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str | int | float | np.integer | np.floating):
            out[str(key)] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
            out[str(key)] = ", ".join(str(v) for v in value)
    return out


def create_layer_file(
    path: str | os.PathLike[str],
    *,
    layer: int,
    year: int,
    times: Any,
    lat_desc: np.ndarray,
    lon: np.ndarray,
    chunks: tuple[int, int, int],
    global_attrs: Mapping[str, Any],
    complevel: int = 4,
) -> tuple[Any, Any]:
    """Create one SoMo.ml-EU file, every value missing: ``(netCDF4.Dataset, variable)``, open for writing.

    The variable ``layer{N}`` ``(time, lat, lon)`` is float32 in m3 m-3 (NaN fill),
    zlib-compressed with shuffle, chunked as ``chunks`` (days, lat cells, lon cells),
    with the grid mapping ``spatial_ref`` (EPSG:4326) that GDAL, QGIS and rioxarray read;
    ``lat_desc`` is descending as in the published files. The caller writes regions into
    the variable and closes the dataset, holding :data:`NC_LOCK` for every netCDF4 call.
    """
    import netCDF4

    times = np.asarray(times, dtype="datetime64[ns]")
    lay = cv.layer_by_number(layer)
    with NC_LOCK:
        ds = netCDF4.Dataset(path, "w", format="NETCDF4")
        try:
            ds.set_fill_off()
            ds.createDimension(cv.TIME, times.size)
            ds.createDimension(cv.LAT, lat_desc.size)
            ds.createDimension(cv.LON, lon.size)
            t = ds.createVariable(cv.TIME, "i4", (cv.TIME,))
            t.setncatts({**cv.TIME_ATTRS, "units": TIME_UNITS, "calendar": "proleptic_gregorian"})
            epoch = np.datetime64("1970-01-01", "D")
            t[:] = (times.astype("datetime64[D]") - epoch).astype(np.int32)
            y = ds.createVariable(cv.LAT, "f8", (cv.LAT,))
            y.setncatts(cv.LAT_ATTRS)
            y[:] = lat_desc
            x = ds.createVariable(cv.LON, "f8", (cv.LON,))
            x.setncatts(cv.LON_ATTRS)
            x[:] = lon
            gm = ds.createVariable("spatial_ref", "i4", ())
            gm.setncatts(grid_mapping_attrs())
            gm.assignValue(0)
            var = ds.createVariable(
                cv.layer_var_name(layer),
                "f4",
                (cv.TIME, cv.LAT, cv.LON),
                zlib=complevel > 0,
                complevel=max(1, complevel),
                shuffle=True,
                chunksizes=(min(chunks[0], times.size), chunks[1], chunks[2]),
                fill_value=np.float32(np.nan),
            )
            var.setncatts(
                {
                    "standard_name": cv.SM_ATTRS["standard_name"],
                    "long_name": f"volumetric soil moisture {lay.top * 100:g}-{lay.bottom * 100:g} cm "
                    "(ensemble mean)",
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
                    "year": np.int32(year),
                    "geospatial_lat_min": float(lat_desc.min()),
                    "geospatial_lat_max": float(lat_desc.max()),
                    "geospatial_lon_min": float(lon.min()),
                    "geospatial_lon_max": float(lon.max()),
                }
            )
        except BaseException:
            ds.close()
            raise
    return ds, var


@dataclass(frozen=True)
class FileIdentity:
    """What an existing output file holds: the shape of its layer variable, its first and
    last day, and its identity attributes (:data:`IDENTITY_ATTRS`, ``None`` where absent)."""

    shape: tuple[int, ...]
    first_day: np.datetime64 | None
    last_day: np.datetime64 | None
    attrs: dict[str, str | None]


def file_identity(path: str | os.PathLike[str], layer: int) -> FileIdentity:
    """Read the shape, period and identity attributes of an existing SoMo.ml-EU file.

    Raises
    ------
    OutputWriteError
        The file is not a readable SoMo.ml-EU file of ``layer``.
    """
    import netCDF4

    try:
        with NC_LOCK, netCDF4.Dataset(path) as ds:
            var = ds.variables[cv.layer_var_name(layer)]
            shape = tuple(int(n) for n in var.shape)
            attrs = {k: (str(ds.getncattr(k)) if k in ds.ncattrs() else None) for k in IDENTITY_ATTRS}
            t = ds.variables[cv.TIME]
            days = np.asarray(t[:], dtype=np.int64)
            epoch = np.datetime64("1970-01-01", "D")
            first = epoch + days[0] if days.size else None
            last = epoch + days[-1] if days.size else None
    except (OSError, KeyError, RuntimeError) as err:
        raise OutputWriteError(
            f"{path} exists but is not a readable SoMo.ml-EU file of layer {layer} ({err}). "
            "Remove it or pass overwrite=True (--overwrite)."
        ) from err
    return FileIdentity(shape, first, last, attrs)


def global_attrs(path: str | os.PathLike[str], names: Sequence[str]) -> dict[str, str | None]:
    """Global attributes ``names`` of a netCDF file (``None`` where absent)."""
    import netCDF4

    try:
        with NC_LOCK, netCDF4.Dataset(path) as ds:
            return {k: (str(ds.getncattr(k)) if k in ds.ncattrs() else None) for k in names}
    except OSError as err:
        raise OutputWriteError(f"{path}: cannot read its attributes ({err})") from err


# ----------------------------------------------------------------------------- saved states

#: The variable of a state file: the LSTM state ``(h, c)`` after the last day,
#: ``(state_layer, member, hc, lat, lon, unit)``, NaN off land.
STATE_VAR = "lstm_state"
#: Beside :data:`STATE_VAR`: per cell, the days of complete forcing that ended with the state's last
#: day (at most lookback - 1); a continued prediction masks the new days whose window reaches a gap.
STATE_COMPLETE_VAR = "lstm_state_complete_forcing_days"
#: The model's static inputs (canonical units) the state was computed with, ``(static_input,
#: lat, lon)``: a continuation uses them, so that the new days follow the old ones whatever
#: the new drivers' statics (climate means re-computed over a longer period drift by 10 %).
STATE_STATIC_VAR = "lstm_state_static_inputs"
#: Global attributes a state file must carry.
STATE_ATTRS = ("xsomo_model_id", "state_last_day", "xsomo_drivers_period")


def write_state(state: xr.Dataset, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write a saved roll-out state (:data:`STATE_VAR` and its attributes) to a netCDF file, atomically.

    ``state`` is a prediction made with ``return_state=True`` (only :data:`STATE_VAR` and
    :data:`STATE_COMPLETE_VAR`, their coordinates and the global attributes are kept; lazy data are computed). The file is
    written to a temporary name and renamed (:mod:`xsomo.io.atomic`).

    Raises
    ------
    DataFormatError
        ``state`` lacks :data:`STATE_VAR` or the attributes of :data:`STATE_ATTRS`.
    OutputWriteError
        The file cannot be written.
    """
    from xsomo.io.atomic import atomic_path

    missing = [a for a in STATE_ATTRS if a not in state.attrs]
    if STATE_VAR not in state.variables or missing:
        raise DataFormatError(
            f"no saved state to write: {STATE_VAR!r} in {sorted(map(str, state.variables))}, "
            f"attributes missing: {missing}; predict with return_state=True"
        )
    names = [STATE_VAR] + [v for v in (STATE_COMPLETE_VAR, STATE_STATIC_VAR) if v in state.variables]
    dims = {d for n in names for d in state[n].dims}
    out = state[names].drop_vars([c for c in state[names].coords if c not in dims], errors="ignore")
    out.attrs = clean_attrs(state.attrs)
    out.attrs["Conventions"] = "CF-1.8"
    out.attrs["title"] = "xsomo roll-out state: continue the prediction with `xsomo extend`"
    path = pathlib.Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        out = out.load()
        with atomic_path(path) as tmp:  # xarray holds the netCDF/HDF5 locks itself
            out.to_netcdf(tmp, engine="netcdf4", encoding={STATE_VAR: {"zlib": True, "complevel": 1}})
    except OSError as err:
        raise OutputWriteError(f"writing the state file {path} failed: {err}") from err
    return path


def read_state(path: str | os.PathLike[str]) -> xr.Dataset:
    """Read a state file written by :func:`write_state` (in memory).

    Raises
    ------
    FileNotFoundError
        No such file.
    DataFormatError
        Not a readable state file (names the file).
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such state file (written by `xsomo predict --save-state`)")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            state = ds.load()
    except (OSError, ValueError, RuntimeError) as err:
        raise DataFormatError(f"{path}: not a readable state file ({err})") from err
    missing = [a for a in STATE_ATTRS if a not in state.attrs]
    if STATE_VAR not in state.variables or missing:
        raise DataFormatError(
            f"{path}: not an xsomo state file (needs the variable {STATE_VAR!r} and the attributes "
            f"{list(STATE_ATTRS)}; missing {missing or [STATE_VAR]}). Give the file of "
            "`xsomo predict --save-state`."
        )
    return state
