"""The drivers builder (DESIGN.md step 2) and a one-call targets builder for a world folder.

:func:`open_drivers` assembles one lazy Dataset on the 0.1° target grid with the four
dynamic forcings ``(time, lat, lon)``, the ten static features ``(lat, lon)`` and
``land_mask``: precipitation from the MSWEP-style files, air temperature from the
MSWX-style files, net radiation and skin temperature from ERA5-Land regridded
bilinearly, static features from :mod:`xsomo.drivers.features`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import pathlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.conventions import GridSpec
from xsomo.drivers.features import static_features
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError
from xsomo.io.era5land import open_era5land
from xsomo.io.gridded import open_mswep, open_mswx, open_static
from xsomo.io.sources import Sources
from xsomo.io.world import WorldLayout, world_grid, world_paths
from xsomo.regrid import check_longitudes, grid_of, regrid

__all__ = [
    "assemble_drivers",
    "build_targets",
    "is_sources",
    "on_grid",
    "open_drivers",
    "prepare_world",
    "world_grid",
    "world_paths",
    "write_prepared",
]

#: files written by :func:`prepare_world`
OUTPUTS = ("targets.nc", "drivers.nc", "ismn_qc_report.csv", "scaling_report.csv")

PathLike = str | os.PathLike[str]

#: keys of the paths mapping accepted by :func:`open_drivers`
PATH_KEYS = ("precipitation", "air_temperature", "era5land", "static")


def on_grid(ds: xr.Dataset | xr.DataArray, grid: GridSpec, *, method: str, what: str):
    """Put ``ds`` on ``grid``: select when already aligned to it, else regrid with ``method``."""
    check_longitudes(ds, grid, what)
    g = grid_of(ds)
    def on_lattice(dim: str, origin: float) -> bool:  # (lon too: a source shifted in lon only was "not covering")
        steps = (np.asarray(ds[dim].values, float) - origin) / grid.resolution
        return bool(np.allclose(steps, np.round(steps), rtol=0, atol=1e-4))

    aligned = (
        abs(g.resolution - grid.resolution) < 1e-9 and on_lattice("lat", grid.lat[0]) and on_lattice("lon", grid.lon[0])
        if "lat" in ds.dims and "lon" in ds.dims
        else False
    )
    if aligned:
        lat_ok = np.isin(np.round(grid.lat, 4), np.round(ds["lat"].values, 4)).all()
        lon_ok = np.isin(np.round(grid.lon, 4), np.round(ds["lon"].values, 4)).all()
        if not (lat_ok and lon_ok):
            raise GridMismatchError(
                f"{what} covers lat {g.south:g}..{g.north:g}, lon {g.west:g}..{g.east:g}, not the whole target grid "
                f"(lat {grid.south:g}..{grid.north:g}, lon {grid.west:g}..{grid.east:g}). Provide inputs covering the grid."
            )
        out = ds.sel(lat=grid.lat, lon=grid.lon, method="nearest", tolerance=grid.resolution / 100)
        return out.assign_coords(grid.coords())
    try:
        return regrid(ds, grid, method=method)  # type: ignore[arg-type]
    except GridMismatchError as err:
        raise GridMismatchError(f"{what}: {err}") from err


def _period(ds: xr.Dataset, what: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    t = pd.DatetimeIndex(ds["time"].values)
    return t[0], t[-1]


def open_drivers(
    world_or_paths: PathLike | Mapping[str, PathLike] | Sources,
    *,
    grid: GridSpec | None = None,
    chunks: Mapping[str, int] | None = None,
    period: tuple[str, str] | None = None,
) -> xr.Dataset:
    """Assemble the drivers Dataset on the target grid (lazy, dask-backed).

    Parameters
    ----------
    world_or_paths
        A sources file (``sources.yml``, docs/own_data.md) or a read
        :class:`~xsomo.io.sources.Sources`; a world folder (``mswep/``, ``mswx/Temp/``,
        ``era5land/``, ``static/``); or a mapping with keys ``precipitation``,
        ``air_temperature``, ``era5land`` and ``static``.
    grid
        Target grid (default: the world's ``world.json`` or ``static/land_mask.nc``).
    chunks
        dask chunks of the result (default ``{"time": -1, "lat": 64, "lon": 64}``; time
        whole, as LSTM inference needs).
    period
        ``(start, end)`` to cut all dynamic inputs to; default: they must agree.

    Returns
    -------
    xarray.Dataset
        ``air_temperature`` (K), ``precipitation`` (mm d-1), ``net_radiation`` (W m-2),
        ``skin_temperature`` (K) on ``(time, lat, lon)``; the ten static features and
        ``land_mask`` (bool) on ``(lat, lon)``; ascending x.x5 centres.

    Raises
    ------
    GridMismatchError
        Inputs that do not cover the grid, or periods that differ.
    MissingVariableError, UnitError, DataFormatError
        From the readers: missing files or variables, bad units, gaps.
    """
    if isinstance(world_or_paths, Sources) or (
        isinstance(world_or_paths, str | os.PathLike) and is_sources(world_or_paths)
    ):
        from xsomo.drivers.sources import open_sources_drivers

        return open_sources_drivers(world_or_paths, grid=grid, chunks=chunks, period=period)
    if isinstance(world_or_paths, Mapping):
        paths = {k: pathlib.Path(v) for k, v in world_or_paths.items()}
        missing = [k for k in PATH_KEYS if k not in paths]
        if missing:
            raise MissingVariableError(f"paths lack key(s) {missing}; give all of {PATH_KEYS}.")
        if grid is None:
            lm = paths["static"] / WorldLayout.LAND_MASK
            if not lm.exists():
                raise MissingVariableError(f"{lm} missing; pass grid=GridSpec(...).")
            with xr.open_dataset(lm) as d:
                grid = grid_of(d)
        source = ", ".join(f"{k}={v}" for k, v in paths.items())
    else:
        paths = world_paths(world_or_paths)
        grid = grid or world_grid(world_or_paths)
        source = str(world_or_paths)
    read_chunks: dict = {}  # the files' own chunks; rechunked at the end
    static = open_static(paths["static"], chunks={})
    return assemble_drivers(
        precipitation=open_mswep(paths["precipitation"], chunks=read_chunks)["precipitation"],
        air_temperature=open_mswx(paths["air_temperature"], chunks=read_chunks)["air_temperature"],
        era5land=open_era5land(paths["era5land"], chunks=read_chunks, layers=()),
        elevation=static["dem.nc"]["elevation"],
        landcover=static["landcover.nc"],
        soil=static["soil.nc"],
        land_mask=static["land_mask.nc"]["land_mask"],
        grid=grid,
        period=period,
        chunks=chunks,
        source=source,
        where={
            "precipitation": str(paths["precipitation"]),
            "air_temperature": str(paths["air_temperature"]),
            "era5land": str(paths["era5land"]),
            **{k: str(paths["static"] / f"{f}.nc") for k, f in
               (("elevation", "dem"), ("landcover", "landcover"), ("soil", "soil"), ("land_mask", "land_mask"))},
        },
    )  # fmt: skip


def is_sources(path: PathLike) -> bool:
    """Whether ``path`` names a sources file (``*.yml`` / ``*.yaml``)."""
    return pathlib.Path(path).suffix.lower() in (".yml", ".yaml")


def assemble_drivers(
    *,
    precipitation: xr.DataArray,
    air_temperature: xr.DataArray,
    era5land: xr.Dataset,
    elevation: xr.DataArray | Sequence[xr.DataArray],
    landcover: xr.Dataset,
    soil: xr.Dataset,
    land_mask: xr.DataArray,
    grid: GridSpec,
    period: tuple[str, str] | None = None,
    chunks: Mapping[str, int] | None = None,
    source: str = "",
    where: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """The drivers Dataset from inputs already read with canonical names and units.

    Dynamic inputs go onto ``grid`` (precipitation and the land mask conservatively,
    the rest bilinearly), are cut to ``period`` (or must agree), and the static features
    are computed (:func:`xsomo.drivers.features.static_features`; ``elevation`` may be the
    tuple of mosaics :func:`xsomo.io.statics.open_dem` returns for tiles of several pixel sizes).
    ``where`` names each
    input's files in error messages (keys ``precipitation``, ``air_temperature``,
    ``era5land``, ``elevation``, ``landcover``, ``soil``, ``land_mask``).
    """
    where = dict(where or {})
    era = era5land
    for need in ("net_radiation", "skin_temperature"):
        if need not in era:
            raise MissingVariableError(
                f"ERA5-Land at {where.get('era5land', '?')} lacks {need!r} (needs ssr+str for net radiation, skt for skin temperature)."
            )
    dyn = {
        "precipitation": on_grid(
            precipitation,
            grid,
            method="conservative",
            what=f"precipitation ({where.get('precipitation', '?')})",
        ),
        "air_temperature": on_grid(
            air_temperature,
            grid,
            method="bilinear",
            what=f"air temperature ({where.get('air_temperature', '?')})",
        ),
        "net_radiation": on_grid(
            era["net_radiation"],
            grid,
            method="bilinear",
            what=f"ERA5-Land net radiation ({where.get('era5land', '?')})",
        ),
        "skin_temperature": on_grid(
            era["skin_temperature"],
            grid,
            method="bilinear",
            what=f"ERA5-Land skin temperature ({where.get('era5land', '?')})",
        ),
    }
    periods = {k: _period(v.to_dataset(), k) for k, v in dyn.items()}
    if period is not None:
        start, end = pd.Timestamp(period[0]), pd.Timestamp(period[1])
        for k, (s, e) in periods.items():
            if s > start or e < end:
                from_era = k == "net_radiation" or where.get(k, "?") == where.get("era5land")
                hourly = from_era and "hourly" in str(era.attrs.get("time_sampling", ""))
                raise GridMismatchError(
                    f"{k} covers {s.date()}..{e.date()}, not the requested period {start.date()}..{end.date()}"
                    + (f" (from {where.get('era5land', 'the ERA5-Land files')}: an hourly day is complete only with "
                       "00 UTC of the next day, which closes its accumulations; download one more day or month)"
                       if hourly and e < end else "")
                    + "."
                )  # fmt: skip
        dyn = {k: v.sel(time=slice(start, end)) for k, v in dyn.items()}
    else:
        if len(set(periods.values())) > 1:
            txt = "; ".join(f"{k} {s.date()}..{e.date()}" for k, (s, e) in periods.items())
            raise GridMismatchError(
                f"the dynamic inputs cover different periods ({txt}). Pass period=(start, end) inside all of them."
            )
    times = {k: pd.DatetimeIndex(v["time"].values) for k, v in dyn.items()}
    ref_t = times["precipitation"]
    for k, t in times.items():
        if not t.equals(ref_t):
            raise GridMismatchError(
                f"{k} has {t.size} days, precipitation {ref_t.size}: the daily time axes differ (gaps?)."
            )
    lm = on_grid(land_mask, grid, method="conservative", what=f"land mask ({where.get('land_mask', '?')})")
    feats = static_features(
        precipitation=dyn["precipitation"],
        net_radiation=dyn["net_radiation"],
        elevation=elevation,
        landcover=landcover,
        soil=soil,
        grid=grid,
        where={k: where[k] for k in ("elevation", "landcover", "soil") if k in where},
    )
    vars_ = {k: dyn[k].astype("float32").assign_attrs(cv.cf_attrs(k)) for k in cv.DYNAMIC_NAMES}
    ds = xr.Dataset(
        {
            **{
                k: v.transpose("time", "lat", "lon").drop_vars(
                    [c for c in v.coords if c not in ("time", "lat", "lon")]
                )
                for k, v in vars_.items()
            },
            **{k: feats[k] for k in cv.STATIC_NAMES},
            cv.LAND_MASK: (lm > 0.5)
            .drop_vars([c for c in lm.coords if c not in ("lat", "lon")])
            .assign_attrs(long_name="land mask (True on land)"),
        },
    )
    ds = ds.assign_coords(grid.coords())
    ds["time"].attrs.update(cv.TIME_ATTRS)
    chunks = dict(chunks or {"time": -1, "lat": 64, "lon": 64})
    ds = ds.chunk({k: v for k, v in chunks.items() if k in ds.dims})
    from xsomo._version import __version__

    ds.attrs = {
        "title": "xsomo drivers: daily forcings and static features on the target grid",
        "source": f"xsomo {__version__} xsomo.drivers.assemble.open_drivers from {source}",
        "grid": f"west={grid.west} east={grid.east} south={grid.south} north={grid.north} resolution={grid.resolution}",
        "history": f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')} open_drivers",
        "Conventions": "CF-1.8",
    }
    return ds


def build_targets(
    world: PathLike,
    *,
    grid: GridSpec | None = None,
    min_overlap: int = 90,
    min_days: int = 90,
    min_hourly: int = 6,
    outside: str = "raise",
) -> tuple[xr.Dataset, pd.DataFrame, pd.DataFrame]:
    """Targets of a world folder in one call: ISMN -> QC -> scale to ERA5-Land.

    Returns
    -------
    targets, qc_report, scaling_report
        See :func:`xsomo.targets.scaling.scale_to` and :func:`xsomo.open_ismn`.
    """
    from xsomo.targets.scaling import scale_to
    from xsomo.targets.stations import open_ismn

    paths = world_paths(world)
    grid = grid or world_grid(world)
    stations, qc = open_ismn(paths["ismn"], min_days=min_days, min_hourly=min_hourly, report=True)
    era = open_era5land(paths["era5land"], chunks={})
    if cv.SM not in era:
        raise MissingVariableError(
            f"ERA5-Land at {paths['era5land']} has no swvl1-3: cannot build targets."
        )
    targets, rep = scale_to(
        stations, era, grid=grid, min_overlap=min_overlap, outside=outside, report=True
    )
    return targets, qc, rep


_ = XsomoValueError


def _encoding(ds: xr.Dataset) -> dict[Hashable, dict[str, Any]]:
    """zlib level 4; (time, lat, lon) chunks of a year by 64 x 64 cells, for map and series reads."""
    enc: dict[Hashable, dict[str, Any]] = {}
    for name, da in ds.data_vars.items():
        if da.dtype.kind != "f":
            continue
        enc[name] = {"zlib": True, "complevel": 4}
        if da.dims == ("time", "lat", "lon"):
            enc[name]["chunksizes"] = (
                min(365, da.shape[0]),
                min(64, da.shape[1]),
                min(64, da.shape[2]),
            )
    return enc


def prepare_world(
    world: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    min_overlap: int = 90,
    min_days: int = 90,
    min_hourly: int = 6,
    outside: str = "raise",
) -> dict[str, pathlib.Path]:
    """Build the targets and drivers of a world folder and write them into ``out``.

    Writes ``targets.nc`` (:func:`build_targets`), ``drivers.nc`` (:func:`open_drivers`),
    ``ismn_qc_report.csv`` and ``scaling_report.csv``. Everything goes to temporary files
    in ``out`` first, which replace the outputs only when all are written, so a failure
    leaves nothing half-written (``xsomo prepare`` and ``xsomo demo`` call this).

    Parameters
    ----------
    world
        World folder (docs/internals.md §1).
    out
        Output folder (created).
    min_overlap, min_days, min_hourly, outside
        See :func:`xsomo.targets.scaling.scale_to` and :func:`xsomo.open_ismn`.

    Returns
    -------
    dict
        Output name -> path.
    """
    drivers = open_drivers(world)  # lazy and quick: input problems surface before the long steps
    targets, qc, rep = build_targets(
        world, min_overlap=min_overlap, min_days=min_days, min_hourly=min_hourly, outside=outside
    )
    return write_prepared(out, targets=targets, drivers=drivers, qc_report=qc, scaling_report=rep)


def write_prepared(
    out: PathLike,
    *,
    targets: xr.Dataset,
    drivers: xr.Dataset,
    qc_report: pd.DataFrame,
    scaling_report: pd.DataFrame,
) -> dict[str, pathlib.Path]:
    """Write :data:`OUTPUTS` into ``out``: temporary files first, renamed when all are written.

    The temporary files a killed earlier run left are removed first (they had stayed for good:
    a Europe drivers file is gigabytes; hostile-input QA)."""
    from xsomo.io.atomic import atomic_path, remove_stale_temporaries

    outdir = pathlib.Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # (atomic_path removes its own; these add the names of versions before it)
        remove_stale_temporaries(outdir / name, legacy=True)
    with contextlib.ExitStack() as stack:  # every file renamed in place only when all are written
        tmps = {name: stack.enter_context(atomic_path(outdir / name)) for name in OUTPUTS}
        targets.to_netcdf(tmps["targets.nc"], encoding=_encoding(targets))
        drivers.to_netcdf(tmps["drivers.nc"], encoding=_encoding(drivers))
        qc_report.to_csv(tmps["ismn_qc_report.csv"], index=False)
        scaling_report.to_csv(tmps["scaling_report.csv"], index=False)
    return {name: outdir / name for name in OUTPUTS}
