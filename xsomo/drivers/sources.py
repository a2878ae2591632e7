"""Drivers and targets from a sources file (``sources.yml``; format in :mod:`xsomo.io.sources`).

Each input is read by the reader registered for its ``source``/``kind`` in
:data:`READERS`, one table: ERA5-Land (netCDF or GRIB, daily or hourly), MSWEP/MSWX
(day, month or year files), the DEM (netCDF, or GeoTIFF tiles / a VRT), land cover
(ESA CCI or CGLS-LC100 classes, or ready fractions), soil texture (netCDF, or SoilGrids
GeoTIFFs by depth) and a land mask. Other readers plug in with :func:`register_reader`;
a kind without a reader is refused with a clear "not supported yet".

>>> sorted(k for k in READERS if k[0] == "precipitation")
[('precipitation', 'era5land'), ('precipitation', 'mswep')]
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo import units as xu
from xsomo.conventions import GridSpec
from xsomo.drivers.assemble import assemble_drivers, on_grid, write_prepared
from xsomo.exceptions import ConfigError, MissingVariableError, UnitError, XsomoValueError
from xsomo.io.era5land import open_era5land
from xsomo.io.gridded import open_gridded, open_mswep, open_mswx
from xsomo.io.sources import KINDS, LAYOUTS, Sources, expand, file_layout, read_sources
from xsomo.io.statics import open_dem, open_landcover, open_soilgrids

__all__ = [
    "READERS",
    "Prepared",
    "open_sources_drivers",
    "prepare",
    "register_reader",
    "sources_grid",
    "sources_targets",
]

PathLike = str | os.PathLike[str]

#: a reader: (path or glob, sources, chunks) -> the input with canonical names and units
Reader = Callable[[str, Sources, Any], xr.Dataset | xr.DataArray]

LANDCOVER = ("forest_fraction", "shortveg_fraction")
SOIL = ("sand_top", "clay_top", "sand_sub", "clay_sub")


def files_of(path: str) -> str | list[str]:
    """What a reader gets: the path itself when it exists (a file or a folder), else the files
    its glob matches (``*`` and ``**`` anywhere in the path, sorted)."""
    return path if pathlib.Path(path).exists() else [str(f) for f in expand(path)]


def _era5(path: str, src: Sources, chunks: Any) -> xr.Dataset:
    return open_era5land(files_of(path), chunks=chunks, layers=())


def _era5_variable(name: str) -> Reader:
    def read(path: str, src: Sources, chunks: Any) -> xr.DataArray:
        era = _era5(path, src, chunks)
        if name not in era:
            raise MissingVariableError(
                f"ERA5-Land at {path} has no {name!r} (needs {'tp' if name == 'precipitation' else 't2m'}); "
                f"add it to the download or choose another source for {name}."
            )
        return era[name]

    return read


def _mswep(path: str, src: Sources, chunks: Any) -> xr.DataArray:
    return open_mswep(files_of(path), chunks=chunks, units=src.precipitation.get("units"))["precipitation"]


def _mswx(path: str, src: Sources, chunks: Any) -> xr.DataArray:
    return open_mswx(files_of(path), chunks=chunks, units=src.air_temperature.get("units"))["air_temperature"]


def _netcdf_files(path: str) -> list[pathlib.Path]:
    """The files a netCDF reader gets for ``path`` (a file, a folder's ``*.nc`` or a glob)."""
    p = pathlib.Path(path)
    if p.is_dir():
        return sorted(p.rglob("*.nc"))
    return [p] if p.is_file() else [f for f in expand(path) if f.is_file()]


_RASTER_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _raster_file(f: pathlib.Path) -> bool:
    """Whether ``f`` is a GeoTIFF (or a GDAL VRT), by its first bytes or its name."""
    if f.suffix.lower() in (".tif", ".tiff", ".vrt"):
        return True
    try:
        with open(f, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[:4] in _RASTER_MAGIC or head.lstrip().startswith(b"<VRTDataset")


def _not_raster(path: str, src: Sources, input_: str, kind: str, fix: str) -> None:
    """A GeoTIFF given to a netCDF reader: say which kind reads it (a DEM GeoTIFF declared
    ``kind: netcdf`` had been told about land-cover kinds)."""
    p = pathlib.Path(path)
    if p.is_dir():  # (a folder's GeoTIFFs, where it holds no netCDF file)
        files = [] if next(p.rglob("*.nc"), None) else sorted(f for f in p.rglob("*") if f.is_file())
    else:
        files = _netcdf_files(path)
    tifs = [f for f in files if _raster_file(f)]
    if tifs:
        raise ConfigError(
            f"{src.where()}: static.{input_} has kind {kind} but {tifs[0]} is a GeoTIFF"
            f"{f' (and {len(tifs) - 1} more)' if len(tifs) > 1 else ''}; {fix}"
        )


def _dem_netcdf(path: str, src: Sources, chunks: Any) -> xr.DataArray:
    _not_raster(path, src, "dem", "netcdf", "set its kind: geotiff (or leave kind out: it follows the files).")
    return open_gridded(files_of(path), {"elevation": "m"}, chunks=chunks)["elevation"]


def _landcover_fractions(path: str, src: Sources, chunks: Any) -> xr.Dataset:
    _not_raster(
        path, src, "landcover", "fractions",
        "a class map is kind esa_cci or cgls_lc100; fractions need a netCDF file holding "
        f"{' and '.join(LANDCOVER)}.",
    )  # fmt: skip
    return open_gridded(files_of(path), dict.fromkeys(LANDCOVER, "1"), chunks=chunks)


def _declared_units(path: str, names: tuple[str, ...], declared: str) -> None:
    """Every file's own ``units`` attributes must agree with the declared units (never relabel;
    only the first file had been checked: clay labelled '1' in a second file was relabelled
    'percent' and read 100x too small)."""
    for f in _netcdf_files(path):
        with xr.open_dataset(f, decode_cf=False) as ds:
            for n in names:
                have = ds[n].attrs.get("units") if n in ds else None
                if have is None:
                    continue
                if not xu.same_unit(str(have), declared):  # the unit declared, not merely its factor
                    raise UnitError(
                        f"{f}: {n!r} is labelled {have!r} but the sources file says units: {declared}. "
                        "A mislabelled file is refused, not relabelled: fix the sources file (or the file's "
                        "units attribute); files in different units cannot share one units: declaration."
                    )


def _soil(path: str, src: Sources, chunks: Any) -> xr.Dataset:
    declared = src.static["soil"]["units"]
    _declared_units(path, SOIL, declared)
    return open_gridded(files_of(path), dict.fromkeys(SOIL, "1"), chunks=chunks, units=dict.fromkeys(SOIL, declared))


def _land_mask(path: str, src: Sources, chunks: Any) -> xr.DataArray:
    return open_gridded(files_of(path), {cv.LAND_MASK: "1"}, chunks=chunks)[cv.LAND_MASK]


def _dem_geotiff(path: str, src: Sources, chunks: Any) -> xr.DataArray | tuple[xr.DataArray, ...]:
    return open_dem(files_of(path))


def _landcover_classes(kind: str) -> Reader:
    def read(path: str, src: Sources, chunks: Any) -> xr.Dataset:
        return open_landcover(files_of(path), kind)

    return read


def _soilgrids(path: str, src: Sources, chunks: Any) -> xr.Dataset:
    return open_soilgrids(files_of(path), units=src.static["soil"]["units"])


#: (input, kind) -> reader; kinds are those of :data:`xsomo.io.sources.KINDS`
READERS: dict[tuple[str, str], Reader] = {
    ("dem", "geotiff"): _dem_geotiff,
    ("landcover", "esa_cci"): _landcover_classes("esa_cci"),
    ("landcover", "cgls_lc100"): _landcover_classes("cgls_lc100"),
    ("soil", "geotiff"): _soilgrids,
    ("precipitation", "mswep"): _mswep,
    ("precipitation", "era5land"): _era5_variable("precipitation"),
    ("air_temperature", "mswx"): _mswx,
    ("air_temperature", "era5land"): _era5_variable("air_temperature"),
    ("dem", "netcdf"): _dem_netcdf,
    ("landcover", "fractions"): _landcover_fractions,
    ("soil", "netcdf"): _soil,
    ("land_mask", "netcdf"): _land_mask,
}


def register_reader(input_: str, kind: str, reader: Reader) -> None:
    """Plug a reader in for ``input_`` (e.g. ``"landcover"``) and ``kind`` (e.g. ``"esa_cci"``)."""
    allowed = LAYOUTS if input_ in ("dem", "soil") else KINDS.get(input_, (kind,))
    if kind not in allowed:
        raise XsomoValueError(f"{kind!r} is not a {input_} kind of the sources format {list(allowed)}.")
    READERS[(input_, kind)] = reader


def read_input(src: Sources, input_: str, kind: str, path: str, *, chunks: Any = None) -> Any:
    """Dispatch to the reader of ``(input_, kind)``; a kind without a reader is refused."""
    reader = READERS.get((input_, kind))
    if reader is None:
        have = sorted(k for i, k in READERS if i == input_)
        raise ConfigError(
            f"{src.where()}: {input_} kind {kind!r} is not supported yet by this xsomo "
            f"(readers for: {have}). Convert the input to one of those or update xsomo."
        )
    return reader(path, src, chunks)


def _load(sources: PathLike | Sources) -> Sources:
    return sources if isinstance(sources, Sources) else read_sources(sources)


def sources_grid(src: Sources) -> tuple[GridSpec, xr.DataArray | None]:
    """The target grid and, with ``region``, the region mask on it (True inside)."""
    res = float(src.grid["resolution"]) if src.grid else cv.RESOLUTION
    region_mask = None
    gdf = None
    if src.region is not None:
        from xsomo.drivers import regions

        if isinstance(src.region, list):
            gdf = regions.countries(src.region)
        else:
            import geopandas as gpd

            try:
                gdf = gpd.read_file(src.region)
            except Exception as err:
                raise ConfigError(f"{src.where()}: region: cannot read the polygon file {src.region} ({err}).") from err
            if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
                gdf = gdf.to_crs(4326)
            if "NAME" not in gdf.columns:
                gdf = gdf.assign(NAME=[f"region {i}" for i in range(len(gdf))])
    if src.grid is not None:
        g = src.grid
        grid = GridSpec(g["west"], g["east"], g["south"], g["north"], res)
    else:
        assert gdf is not None
        minx, miny, maxx, maxy = (float(v) for v in gdf.total_bounds)

        def out(v: float, up: bool) -> float:
            k = v / res
            return round((math.ceil(k - 1e-9) if up else math.floor(k + 1e-9)) * res, 6)

        grid = GridSpec(out(minx, False), out(maxx, True), out(miny, False), out(maxy, True), res)
    if gdf is not None:
        from xsomo.drivers import regions

        region_mask = regions.mask(gdf, grid).notnull().assign_coords(grid.coords())
        if not bool(region_mask.any()):
            raise ConfigError(f"{src.where()}: region {src.region!r} covers no cell centre of the grid {grid}.")
    return grid, region_mask


def open_sources_drivers(
    sources: PathLike | Sources,
    *,
    grid: GridSpec | None = None,
    chunks: Mapping[str, int] | None = None,
    period: tuple[str, str] | None = None,
) -> xr.Dataset:
    """The drivers of a sources file (see :func:`xsomo.drivers.assemble.open_drivers`).

    ``grid`` and ``period`` override the file's. With ``region``, cells outside it are
    not land (``land_mask`` False), so nothing is predicted there.
    """
    src = _load(sources)
    own_grid, region_mask = sources_grid(src)
    grid = grid or own_grid
    read_chunks: dict = {}
    st = src.static
    era = _era5(src.era5land, src, read_chunks)
    if st.get("land_mask"):
        land_mask = read_input(src, "land_mask", "netcdf", st["land_mask"], chunks={})
        lm_where = st["land_mask"]
    elif "land_fraction" in era:  # ERA5-Land lsm
        land_mask, lm_where = era["land_fraction"].astype("float32"), f"ERA5-Land lsm ({src.era5land})"
    else:
        raise MissingVariableError(
            f"{src.where()}: no static.land_mask given and the ERA5-Land files ({src.era5land}) hold no lsm. "
            "Add lsm to the ERA5-Land download or give static.land_mask."
        )
    if region_mask is not None:
        lm = on_grid(land_mask, grid, method="conservative", what=f"land mask ({lm_where})")
        land_mask = (lm > 0.5) & region_mask.reindex_like(lm, method="nearest", tolerance=grid.resolution / 100)
        land_mask = land_mask.astype("float32")
    pr, ta = src.precipitation, src.air_temperature
    return assemble_drivers(
        precipitation=read_input(src, "precipitation", pr["source"], pr["path"], chunks=read_chunks),
        air_temperature=read_input(src, "air_temperature", ta["source"], ta["path"], chunks=read_chunks),
        era5land=era,
        elevation=read_input(src, "dem", st["dem"]["kind"], st["dem"]["path"], chunks={}),
        landcover=read_input(src, "landcover", st["landcover"]["kind"], st["landcover"]["path"], chunks={}),
        soil=read_input(src, "soil", file_layout(st["soil"]["path"]), st["soil"]["path"], chunks={}),
        land_mask=land_mask,
        grid=grid,
        period=period or src.period,
        chunks=chunks,
        source=src.where(),
        where={
            "precipitation": pr["path"],
            "air_temperature": ta["path"],
            "era5land": src.era5land,
            "elevation": st["dem"]["path"],
            "landcover": st["landcover"]["path"],
            "soil": st["soil"]["path"],
            "land_mask": lm_where,
        },
    )


def sources_targets(
    sources: PathLike | Sources,
    *,
    min_overlap: int = 90,
    min_days: int = 90,
    min_hourly: int = 6,
    outside: str = "raise",
) -> tuple[xr.Dataset, pd.DataFrame, pd.DataFrame]:
    """Targets of a sources file: ISMN -> QC -> scaled to ERA5-Land on the sources' grid.

    The reference is cut to the sources' period. With ``region``, cells outside it are
    dropped (and reported as such).

    Returns
    -------
    targets, qc_report, scaling_report
        See :func:`xsomo.targets.scaling.scale_to` and :func:`xsomo.open_ismn`.
    """
    from xsomo.targets.scaling import scale_to
    from xsomo.targets.stations import open_ismn

    src = _load(sources)
    if src.ismn is None:
        raise ConfigError(f"{src.where()}: ismn: missing; targets need the ISMN download (folder or zip).")
    grid, region_mask = sources_grid(src)
    stations, qc = open_ismn(src.ismn, min_days=min_days, min_hourly=min_hourly, report=True)
    era = open_era5land(files_of(src.era5land), chunks={})
    if cv.SM not in era:
        raise MissingVariableError(f"ERA5-Land at {src.era5land} has no swvl1-3: cannot build targets.")
    if src.period is not None:
        era = era.sel(time=slice(*src.period))
        stations = stations.sel(time=slice(*src.period)).dropna(cv.STATION, how="all")
    targets, rep = scale_to(stations, era, grid=grid, min_overlap=min_overlap, outside=outside, report=True)
    if region_mask is not None:
        inside = region_mask.values[targets["row"].values, targets["col"].values]
        dropped = set(targets["cell"].values[~inside].tolist())
        targets = targets.isel(cell=np.flatnonzero(inside))
        if targets.sizes["cell"] == 0:
            raise XsomoValueError(f"{src.where()}: no target cell lies inside the region {src.region!r}.")
        flat = rep["row"] * grid.nlon + rep["col"]
        out = rep["kept"] & flat.isin(dropped)
        rep.loc[out, "kept"] = False
        rep.loc[out, "reason"] = "outside the region"
    return targets, qc, rep


@dataclass
class Prepared:
    """What :func:`prepare` returns: the drivers (lazy), targets and the two reports."""

    drivers: xr.Dataset
    targets: xr.Dataset
    qc_report: pd.DataFrame
    scaling_report: pd.DataFrame
    paths: dict[str, pathlib.Path] = field(default_factory=dict)

    def write(self, out: PathLike) -> dict[str, pathlib.Path]:
        """Write ``targets.nc``, ``drivers.nc`` and the two reports into ``out`` (atomically)."""
        self.paths = write_prepared(
            out, targets=self.targets, drivers=self.drivers, qc_report=self.qc_report,
            scaling_report=self.scaling_report,
        )  # fmt: skip
        return self.paths


def prepare(
    sources: PathLike | Sources,
    out: PathLike | None = None,
    *,
    min_overlap: int = 90,
    min_days: int = 90,
    min_hourly: int = 6,
    outside: str = "raise",
) -> Prepared:
    """Drivers and targets of a sources file; written into ``out`` when given.

    Parameters
    ----------
    sources
        A sources file (``sources.yml``, docs/own_data.md) or a read
        :class:`~xsomo.io.sources.Sources`.
    out
        Folder to write ``targets.nc``, ``drivers.nc``, ``ismn_qc_report.csv`` and
        ``scaling_report.csv`` into (as ``xsomo prepare --sources`` does).
    min_overlap, min_days, min_hourly, outside
        See :func:`xsomo.targets.scaling.scale_to` and :func:`xsomo.open_ismn`.

    Returns
    -------
    Prepared
        ``.drivers``, ``.targets``, ``.qc_report``, ``.scaling_report`` and ``.paths``.
    """
    src = _load(sources)
    drivers = open_sources_drivers(src)  # lazy and quick: input problems surface first
    targets, qc, rep = sources_targets(
        src, min_overlap=min_overlap, min_days=min_days, min_hourly=min_hourly, outside=outside
    )
    result = Prepared(drivers, targets, qc, rep)
    if out is not None:
        result.write(out)
    return result
