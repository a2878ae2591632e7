"""Write a complete sample world folder (see docs/internals.md, section 1).

:func:`generate` places the stations and runs one writer per format
(:mod:`xsomo.sample.writers`) in order: statics, truth with the MSWEP/MSWX-style forcing,
ERA5-Land, products, ISMN, COSMOS, and the ``world.json`` manifest. The folder layout is
:class:`xsomo.io.world.WorldLayout`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import signal
import time
import warnings
from collections.abc import Iterator
from typing import Any

from xsomo.io import world as io_world
from xsomo.io.world import FORMAT_VERSION
from xsomo.runtime import cpu_cores, exit_with_parent
from xsomo.sample.config import make_config
from xsomo.sample.writers import cosmos as w_cosmos
from xsomo.sample.writers import era5land as w_era5land
from xsomo.sample.writers import ismn as w_ismn
from xsomo.sample.writers import products as w_products
from xsomo.sample.writers import real_static as w_real_static
from xsomo.sample.writers import static as w_static
from xsomo.sample.writers import truth as w_truth
from xsomo.sample.writers.common import Bands, WorldContext
from xsomo.sample.writers.era5land import ERA5_THICKNESS_MM
from xsomo.sample.writers.products import PRODUCTS

log = logging.getLogger(__name__)


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, disable=not enabled if enabled is not None else True, unit="step"
    )


def generate(
    preset: str = "demo",
    *,
    seed: int = 0,
    out: str | os.PathLike[str],
    progress: bool | None = None,
    overwrite: bool = True,
    real_statics: bool = False,
    **overrides: Any,
) -> pathlib.Path:
    """Write a synthetic sample world into ``out`` and return the folder.

    Parameters
    ----------
    preset
        ``"tiny"`` (unit tests, seconds), ``"demo"`` (a few thousand land cells,
        2011-2020) or ``"europe"`` (the full 355 x 570 grid, band by band).
    seed
        Any integer. The same seed writes byte-identical files; another seed a
        different world.
    out
        Folder to write (created; existing world files are replaced).
    progress
        Show a progress bar (default: off).
    overwrite
        Remove an existing world (a folder with ``world.json``) first.
    real_statics
        Also write the statics in the layouts users download (``static_real/``: DEM
        GeoTIFF tiles, ESA CCI land-cover classes, SoilGrids-like rasters in g/kg), see
        :mod:`xsomo.sample.writers.real_static`. Off by default (the world stays as it was).
    **overrides
        :class:`~xsomo.sample.config.WorldConfig` fields, e.g. ``start``, ``end``,
        ``bbox=(west, south, east, north)``, ``n_ismn_stations``.

    Returns
    -------
    pathlib.Path
        The world folder, laid out as in ``docs/internals.md`` section 1.

    Examples
    --------
    >>> path = xsomo.sample.generate("tiny", seed=3, out=tmp_path / "w")  # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
    ['cosmos', 'era5land', 'era5land_hourly', 'ismn', 'mswep', 'mswx', 'products', 'sources.yml', 'static', 'truth.nc', 'world.json']
    """
    cfg = make_config(preset, **overrides)
    out = pathlib.Path(out).expanduser()
    if overwrite and io_world.is_world(out):
        io_world.clear_world(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = WorldContext(cfg, seed, out)
    ctx.place_stations()
    n_era5_bands = len(
        Bands(cfg.grid.nlat + 1, ctx.bands.size if cfg.band_rows else cfg.grid.nlat + 1)
    )
    total = 1 + len(ctx.bands) + n_era5_bands + len(PRODUCTS) + len(ctx.ismn) + 1
    clock = _Clock()
    with _progress(total, progress, f"sample world {preset!r}") as bar:
        with clock("statics"):
            w_static.write_statics(ctx)
            if real_statics:
                w_real_static.write_real_statics(ctx)
        bar.update(1)
        with clock("truth, mswep, mswx | era5land, products"):
            products = _truth_beside_era5_and_products(ctx, bar, n_era5_bands + len(PRODUCTS))
        with clock("ismn"):
            w_ismn.write_ismn(ctx, bar)
        with clock("cosmos"):
            w_cosmos.write_cosmos(ctx)
        w_truth.write_manifest(ctx, products)
        # the world's sources file: `xsomo prepare --sources world/sources.yml` (docs/own_data.md)
        from xsomo.io.sources import SOURCES_FILE, sources_for_world, write_sources

        write_sources(sources_for_world(out, io_world.read_manifest(out)), out / SOURCES_FILE)
        bar.update(1)
    log.info("sample world %r written to %s; CPU seconds per step: %s", preset, out, clock.report())
    return out


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


def _era5_and_products(ctx: WorldContext, bar: Any) -> dict[str, Any]:
    w_era5land.write_era5(ctx, bar)
    return w_products.write_products(ctx, bar)


def _child_era5_and_products(ctx: WorldContext, send: Any, parent: int) -> None:
    """Worker process of :func:`_truth_beside_era5_and_products`: writes, then sends
    ``("ok", products)`` or ``("error", message)``."""
    exit_with_parent(parent)
    try:
        send.send(("ok", _era5_and_products(ctx, _NoBar())))
    except BaseException as err:  # the writers removed their half-written files
        send.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        send.close()


def _truth_beside_era5_and_products(ctx: WorldContext, bar: Any, n_other: int) -> dict[str, Any]:
    """The truth (with MSWEP/MSWX) and, beside it in a forked process, ERA5-Land and the products.

    The writers are independent (each simulates what it writes from the world's seed and
    writes its own files), so the files are the same as one after the other (tested). On a
    quiet 2-core machine the demo world took 29.8 s instead of 35.2 s (this step 22.3 s
    instead of 29.8 s; 2026-12-01, ``xsomo.sample.generate("demo", seed=0)`` with and
    without ``cpu_cores`` patched to 1). One process off Linux or on one core.
    """
    import multiprocessing
    import sys

    if sys.platform != "linux" or cpu_cores() < 2:
        w_truth.write_target_grid(ctx, bar)
        return _era5_and_products(ctx, bar)
    mp = multiprocessing.get_context("fork")
    recv, send = mp.Pipe(duplex=False)
    proc = mp.Process(target=_child_era5_and_products, args=(ctx, send, os.getpid()), name="xsomo-sample-era5")
    with warnings.catch_warnings():
        # Python >= 3.12 warns about fork in a process with threads (here: a progress bar's
        # monitor); the child takes no lock another thread may hold (numpy and netCDF only, its
        # own files; logging re-creates its locks after a fork)
        warnings.simplefilter("ignore", DeprecationWarning)
        proc.start()
    send.close()
    try:
        w_truth.write_target_grid(ctx, bar)
        try:
            status, result = recv.recv()
        except EOFError:
            status, result = "error", f"the process died (exit code {proc.exitcode})"
    except BaseException:
        # an interrupt, not a kill: the worker's writers remove their temporary files
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        raise
    finally:
        recv.close()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"sample world: writing ERA5-Land and the products failed in a worker process: {result}")
    bar.update(n_other)
    return result


class _Clock:
    """CPU and wall time per step (logged at INFO level)."""

    def __init__(self) -> None:
        self.steps: dict[str, tuple[float, float]] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = (time.process_time() - c0, time.perf_counter() - w0)

    def report(self) -> str:
        return ", ".join(f"{k} {c:.1f} (wall {w:.1f})" for k, (c, w) in self.steps.items())


def summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Counts and size of a written world (cells, stations, sensors, period, bytes on disk)."""
    path = pathlib.Path(path)
    man = io_world.read_manifest(path)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {
        "path": str(path),
        "preset": man["preset"],
        "seed": man["seed"],
        "grid": f"{man['shape']['lat']} x {man['shape']['lon']} cells of {man['grid']['resolution']} deg",
        "land_cells": man["n_land_cells"],
        "land_cells_by_region": man["n_land_cells_by_region"],
        "ismn_stations": len(man["ismn_stations"]),
        "ismn_sensors": sum(len(s["sensors"]) for s in man["ismn_stations"]),
        "cosmos_stations": len(man["cosmos_stations"]),
        "period": f"{man['period']['start']} .. {man['period']['end']}",
        "hourly_period": f"{man['hourly_period']['start']} .. {man['hourly_period']['end']}",
        "bytes": size,
    }


__all__ = ["ERA5_THICKNESS_MM", "FORMAT_VERSION", "PRODUCTS", "generate", "summary"]
