"""``xsomo prepare``: targets and drivers of a world folder (DESIGN.md steps 1-2).

Calls :func:`xsomo.drivers.assemble.prepare_world`, which writes ``targets.nc``, ``drivers.nc``, ``ismn_qc_report.csv`` and ``scaling_report.csv``
into ``--out``. Everything is computed first and written to temporary files beside
the outputs, which then replace them; a failure leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import logging
import pathlib

log = logging.getLogger(__name__)


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


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.drivers.assemble import prepare_world

    common.output_dir(args.out, "--out")
    common.input_path(args.world, "--world", "world folder")
    paths = prepare_world(
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
