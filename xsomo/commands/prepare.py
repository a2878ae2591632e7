"""``xsomo prepare``: targets and drivers from a sources file or a world folder (DESIGN.md steps 1-2).

Examples::

    xsomo prepare --sources sources.yml --out prepared/
    xsomo prepare --world demo_out/world --out prepared/      # shorthand for world/sources.yml

The sources file names every input (ISMN, ERA5-Land, precipitation, air temperature,
static maps; docs/own_data.md). Writes ``targets.nc``, ``drivers.nc``,
``ismn_qc_report.csv`` and ``scaling_report.csv`` into ``--out``. Everything is computed
first and written to temporary files beside the outputs, which then replace them; a
failure leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import logging
import pathlib

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "prepare",
        help="build scaled targets and drivers from a sources file or a world folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--sources", type=pathlib.Path, help="sources file (YAML) naming the inputs (docs/own_data.md)"
    )
    src.add_argument(
        "--world", type=pathlib.Path, help="world folder (xsomo sample layout)"
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

    common.output_dir(args.out, "--out")
    opts = {
        "min_overlap": args.min_overlap,
        "min_days": args.min_days,
        "min_hourly": args.min_hourly,
        "outside": args.outside,
    }
    if args.sources is not None:
        from xsomo.drivers.sources import prepare

        common.input_path(args.sources, "--sources", "sources file")
        paths = prepare(args.sources, args.out, **opts).paths
    else:
        from xsomo.drivers.assemble import prepare_world

        common.input_path(args.world, "--world", "world folder")
        paths = prepare_world(args.world, args.out, **opts)
    for p in paths.values():
        print(f"wrote {p}")
    return 0
