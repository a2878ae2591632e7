"""``xsomo prepare``: targets and drivers of a world folder (DESIGN.md steps 1-2).

Writes ``targets.nc``, ``drivers.nc``, ``ismn_qc_report.csv`` and ``scaling_report.csv``
into ``--out``. Everything is computed first and written to temporary files beside
the outputs, which then replace them; a failure leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pathlib
import tempfile

import xarray as xr

log = logging.getLogger(__name__)

OUTPUTS = ("targets.nc", "drivers.nc", "ismn_qc_report.csv", "scaling_report.csv")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "prepare",
        help="build scaled targets and drivers from a world folder",
        description="Read ISMN stations, scale them to ERA5-Land (targets) and assemble the drivers on the 0.1° grid.",
    )
    p.add_argument(
        "--world", required=True, type=pathlib.Path, help="world folder (xsomo sample layout)"
    )
    p.add_argument("--out", required=True, type=pathlib.Path, help="output folder")
    p.add_argument(
        "--min-overlap",
        type=int,
        default=90,
        help="minimum days of overlap with ERA5-Land (default 90)",
    )
    p.add_argument(
        "--min-days", type=int, default=90, help="minimum valid days per sensor (default 90)"
    )
    p.add_argument(
        "--min-hourly", type=int, default=6, help="minimum good hourly values per day (default 6)"
    )
    p.add_argument(
        "--outside", choices=("raise", "skip"), default="raise", help="stations outside the grid"
    )
    p.set_defaults(command="prepare")
    return p


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, da in ds.data_vars.items():
        if da.dtype.kind == "f":
            enc[name] = {"zlib": True, "complevel": 4}
    return enc


def prepare(
    world: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    min_overlap: int = 90,
    min_days: int = 90,
    min_hourly: int = 6,
    outside: str = "raise",
) -> dict[str, pathlib.Path]:
    """Build and write targets and drivers of ``world`` into ``out``; returns the paths written."""
    from xsomo.drivers import build_targets, open_drivers

    out = pathlib.Path(out)
    drivers = open_drivers(world)  # lazy and quick: input problems surface before the long steps
    targets, qc, rep = build_targets(
        world, min_overlap=min_overlap, min_days=min_days, min_hourly=min_hourly, outside=outside
    )
    out.mkdir(parents=True, exist_ok=True)
    tmps: dict[str, pathlib.Path] = {}
    try:
        for name in OUTPUTS:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
            os.close(fd)
            tmps[name] = pathlib.Path(tmp)
        targets.to_netcdf(tmps["targets.nc"], encoding=_encoding(targets))
        drivers.to_netcdf(tmps["drivers.nc"], encoding=_encoding(drivers))
        qc.to_csv(tmps["ismn_qc_report.csv"], index=False)
        rep.to_csv(tmps["scaling_report.csv"], index=False)
        paths = {}
        for name, tmp in tmps.items():
            os.replace(tmp, out / name)
            paths[name] = out / name
        return paths
    finally:
        for tmp in tmps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def run(args: argparse.Namespace) -> int:
    paths = prepare(
        args.world,
        args.out,
        min_overlap=args.min_overlap,
        min_days=args.min_days,
        min_hourly=args.min_hourly,
        outside=args.outside,
    )
    for p in paths.values():
        print(f"wrote {p}")
    return 0
