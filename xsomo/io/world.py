"""The sample-world folder: its layout, read and written in one place.

A world folder (written by :func:`xsomo.sample.generate`, described in
``docs/internals.md`` section 1) holds::

    world.json                      manifest (grid, period, stations, products)
    truth.nc                        true soil moisture sm(time, layer, lat, lon)
    static/land_mask.nc             land-sea mask on the target grid
    static/{soil,dem,landcover}.nc  static fine grids
    static_real/                    the statics as DEM tiles, land-cover classes and
                                    SoilGrids rasters (only with real_statics=True)
    mswep/<YYYY>.nc                 MSWEP-style daily precipitation
    mswx/Temp/<YYYY>.nc             MSWX-style daily mean air temperature
    era5land/era5land_<YYYY>.nc     ERA5-Land-style daily fields
    era5land_hourly/era5land_hourly_<YYYY>_<MM>.nc
    ismn/<network>/<station>/*.stm  ISMN station files
    cosmos/stations.csv, *-CRNS.csv COSMOS-style stations
    products/<name>/<name>_<YYYY>.nc stand-in gridded products

:class:`WorldLayout` names every path; the readers (:func:`read_manifest`,
:func:`world_grid`, :func:`open_truth`, :func:`open_land_mask`,
:func:`product_files`, :func:`world_paths`) and the writer side
(:func:`write_manifest`, :func:`clear_world`) use it, so no other module spells a
file name of the world.

>>> lay = WorldLayout("w")
>>> str(lay.mswep_year(2016)), str(lay.era5land_hourly_month(2016, 7))
('w/mswep/2016.nc', 'w/era5land_hourly/era5land_hourly_2016_07.nc')
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import xarray as xr

from xsomo import conventions as cv
from xsomo.conventions import GridSpec
from xsomo.exceptions import DataFormatError, MissingVariableError
from xsomo.io.atomic import atomic_write_text
from xsomo.regrid import grid_of

__all__ = [
    "FORMAT_VERSION",
    "WorldLayout",
    "clear_world",
    "is_world",
    "open_land_mask",
    "open_truth",
    "product_files",
    "read_manifest",
    "world_grid",
    "world_paths",
    "write_manifest",
]

PathLike = str | os.PathLike[str]

#: version of the world folder layout written into ``world.json``
FORMAT_VERSION = 1


@dataclass(frozen=True)
class WorldLayout:
    """Every path of a world folder (the folder need not exist)."""

    root: pathlib.Path

    def __init__(self, root: PathLike) -> None:
        object.__setattr__(self, "root", pathlib.Path(root).expanduser())

    # ---------------------------------------------------------------- top level
    @property
    def manifest(self) -> pathlib.Path:
        """``world.json``."""
        return self.root / "world.json"

    @property
    def truth(self) -> pathlib.Path:
        """``truth.nc``."""
        return self.root / "truth.nc"

    @property
    def sources(self) -> pathlib.Path:
        """``sources.yml`` (the inputs of the world as a sources file)."""
        return self.root / "sources.yml"

    # ---------------------------------------------------------------- statics
    @property
    def static(self) -> pathlib.Path:
        """``static/``."""
        return self.root / "static"

    @property
    def land_mask(self) -> pathlib.Path:
        """``static/land_mask.nc``."""
        return self.static / self.LAND_MASK

    @property
    def soil(self) -> pathlib.Path:
        """``static/soil.nc``."""
        return self.static / "soil.nc"

    @property
    def dem(self) -> pathlib.Path:
        """``static/dem.nc``."""
        return self.static / "dem.nc"

    @property
    def landcover(self) -> pathlib.Path:
        """``static/landcover.nc``."""
        return self.static / "landcover.nc"

    @property
    def real_static(self) -> pathlib.Path:
        """``static_real/``: the statics in real layouts (DEM tiles, land-cover classes, SoilGrids)."""
        return self.root / "static_real"

    # ---------------------------------------------------------------- forcing
    @property
    def mswep(self) -> pathlib.Path:
        """``mswep/`` (precipitation)."""
        return self.root / "mswep"

    def mswep_year(self, year: int) -> pathlib.Path:
        """The MSWEP-style file of one year."""
        return self.mswep / f"{int(year)}.nc"

    @property
    def mswx(self) -> pathlib.Path:
        """``mswx/``."""
        return self.root / "mswx"

    @property
    def mswx_temp(self) -> pathlib.Path:
        """``mswx/Temp/`` (daily mean air temperature)."""
        return self.mswx / "Temp"

    def mswx_temp_year(self, year: int) -> pathlib.Path:
        """The MSWX-style air-temperature file of one year."""
        return self.mswx_temp / f"{int(year)}.nc"

    @property
    def era5land(self) -> pathlib.Path:
        """``era5land/`` (daily files)."""
        return self.root / "era5land"

    def era5land_year(self, year: int) -> pathlib.Path:
        """The ERA5-Land-style daily file of one year."""
        return self.era5land / f"era5land_{int(year)}.nc"

    @property
    def era5land_hourly(self) -> pathlib.Path:
        """``era5land_hourly/``."""
        return self.root / "era5land_hourly"

    def era5land_hourly_month(self, year: int, month: int) -> pathlib.Path:
        """The ERA5-Land-style hourly file of one month."""
        return self.era5land_hourly / f"era5land_hourly_{int(year)}_{int(month):02d}.nc"

    # ---------------------------------------------------------------- stations, products
    @property
    def ismn(self) -> pathlib.Path:
        """``ismn/`` (ISMN's folder layout)."""
        return self.root / "ismn"

    @property
    def cosmos(self) -> pathlib.Path:
        """``cosmos/``."""
        return self.root / "cosmos"

    @property
    def cosmos_catalogue(self) -> pathlib.Path:
        """``cosmos/stations.csv``."""
        return self.cosmos / "stations.csv"

    @property
    def products(self) -> pathlib.Path:
        """``products/``."""
        return self.root / "products"

    def product_dir(self, name: str) -> pathlib.Path:
        """The folder of one stand-in product."""
        return self.products / name

    def product_year(self, name: str, year: int) -> pathlib.Path:
        """The file of one product and year."""
        return self.product_dir(name) / f"{name}_{int(year)}.nc"

    #: file name of the land-sea mask in a static folder
    LAND_MASK = "land_mask.nc"
    #: the folders a world writes (removed by :func:`clear_world`)
    FOLDERS = (
        "cosmos", "era5land", "era5land_hourly", "ismn", "mswep", "mswx", "products", "static",
        "static_real",
    )
    #: the files a world writes at its top level
    FILES = ("truth.nc", "world.json", "sources.yml")


def is_world(path: PathLike) -> bool:
    """Whether ``path`` is a sample-world folder (holds ``world.json``)."""
    return WorldLayout(path).manifest.is_file()


# ---------------------------------------------------------------------- readers
def read_manifest(world: PathLike) -> dict[str, Any]:
    """The parsed ``world.json`` of a world folder.

    Raises
    ------
    MissingVariableError
        No ``world.json`` in ``world``.
    DataFormatError
        ``world.json`` is not valid JSON.
    """
    path = WorldLayout(world).manifest
    if not path.is_file():
        raise MissingVariableError(
            f"{path} not found: {world} is not a sample world; pass the folder `xsomo sample` wrote."
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path} is not valid JSON ({err}); regenerate the world.") from err


def _grid_from(mapping: Mapping[str, Any]) -> GridSpec:
    return GridSpec(
        float(mapping["west"]),
        float(mapping["east"]),
        float(mapping["south"]),
        float(mapping["north"]),
        float(mapping.get("resolution", cv.RESOLUTION)),
    )


def world_grid(world: PathLike) -> GridSpec:
    """The target grid of a world folder: from ``world.json``, else ``static/land_mask.nc``.

    Raises
    ------
    MissingVariableError
        Neither file is there.
    """
    lay = WorldLayout(world)
    if lay.manifest.is_file():
        return _grid_from(read_manifest(world)["grid"])
    if lay.land_mask.is_file():
        with xr.open_dataset(lay.land_mask) as ds:
            return grid_of(ds)
    raise MissingVariableError(
        f"{lay.root}: neither world.json nor static/land_mask.nc found; pass grid=GridSpec(...)."
    )


def world_paths(world: PathLike) -> dict[str, pathlib.Path]:
    """Input paths of a world folder, keyed like :func:`xsomo.drivers.open_drivers`'s mapping."""
    lay = WorldLayout(world)
    return {
        "precipitation": lay.mswep,
        "air_temperature": lay.mswx_temp,
        "era5land": lay.era5land,
        "static": lay.static,
        "ismn": lay.ismn,
        "cosmos": lay.cosmos,
    }


def open_truth(world: PathLike, **kwargs: Any) -> xr.Dataset:
    """The world's ``truth.nc`` (lazy; ``kwargs`` go to :func:`xarray.open_dataset`).

    Raises
    ------
    DataFormatError
        No ``truth.nc`` in ``world``.
    """
    path = WorldLayout(world).truth
    if not path.is_file():
        raise DataFormatError(
            f"{world} is not a sample world (no truth.nc); pass the folder `xsomo sample` wrote."
        )
    return xr.open_dataset(path, **kwargs)


def open_land_mask(world: PathLike) -> xr.DataArray:
    """The land-sea mask ``(lat, lon)`` of ``static/land_mask.nc`` (loaded, 1 land, 0 sea)."""
    path = WorldLayout(world).land_mask
    if not path.is_file():
        raise MissingVariableError(f"{path} not found; pass the folder `xsomo sample` wrote.")
    with xr.open_dataset(path) as ds:
        return ds["land_mask"].load()


def product_files(world: PathLike) -> dict[str, list[pathlib.Path]]:
    """The stand-in products of a world: name -> its yearly files, sorted.

    Raises
    ------
    DataFormatError
        No ``products/`` folder.
    """
    root = WorldLayout(world).products
    if not root.is_dir():
        raise DataFormatError(
            f"no products folder in {str(world)!r}; generate the world with xsomo.sample."
        )
    return {
        p.name: sorted(p.glob(f"{p.name}_*.nc")) for p in sorted(root.iterdir()) if p.is_dir()
    }


# ---------------------------------------------------------------------- writers
def write_manifest(world: PathLike, manifest: Mapping[str, Any]) -> pathlib.Path:
    """Write ``world.json`` atomically (indented JSON, one trailing newline)."""
    path = WorldLayout(world).manifest
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(manifest, indent=1) + "\n")
    return path


def clear_world(world: PathLike) -> None:
    """Remove the files of an existing world (only those a world writes) from ``world``."""
    lay = WorldLayout(world)
    for name in WorldLayout.FOLDERS:
        shutil.rmtree(lay.root / name, ignore_errors=True)
    for name in WorldLayout.FILES:
        (lay.root / name).unlink(missing_ok=True)
