"""``xsomo sample``: write a synthetic sample world.

Examples::

    xsomo sample --preset demo --seed 0 --out world
    xsomo sample --preset tiny --out /tmp/tiny --start 2015-01-01 --end 2016-12-31
    xsomo sample --preset europe --out /data/europe --start 2018-01-01 --end 2018-12-31
"""

from __future__ import annotations

import argparse
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="write a synthetic sample world (ISMN, ERA5-Land, COSMOS, products, truth)",
        description="Write a deterministic synthetic sample world in the real file formats "
        "(layout: docs/internals.md, section 1).",
    )
    p.add_argument(
        "--preset",
        default="demo",
        choices=["tiny", "demo", "europe"],
        help="world size (default: demo)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed; any integer (default: 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--start", default=None, help="first day, YYYY-MM-DD (default: the preset's)")
    p.add_argument("--end", default=None, help="last day, YYYY-MM-DD (default: the preset's)")
    p.add_argument(
        "--hourly-start",
        dest="hourly_start",
        default=None,
        help="first day of the hourly ERA5-Land files",
    )
    p.add_argument(
        "--hourly-end",
        dest="hourly_end",
        default=None,
        help="last day of the hourly ERA5-Land files",
    )
    p.add_argument(
        "--bbox",
        nargs=4,
        type=float,
        metavar=("WEST", "SOUTH", "EAST", "NORTH"),
        default=None,
        help="grid edges in degrees (default: the preset's)",
    )
    p.add_argument(
        "--stations", dest="n_ismn_stations", type=int, default=None, help="number of ISMN stations"
    )
    p.add_argument(
        "--cosmos",
        dest="n_cosmos_stations",
        type=int,
        default=None,
        help="number of COSMOS stations",
    )
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bar"
    )
    p.set_defaults(command="sample")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return f"{n:.1f} GB"  # pragma: no cover


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.sample import generate, summary

    common.output_dir(args.out, "--out")
    for option in ("start", "end", "hourly_start", "hourly_end"):
        common.parse_date(getattr(args, option), "--" + option.replace("_", "-"))

    overrides = {
        key: getattr(args, key)
        for key in (
            "start",
            "end",
            "hourly_start",
            "hourly_end",
            "n_ismn_stations",
            "n_cosmos_stations",
        )
        if getattr(args, key, None) is not None
    }
    if args.bbox is not None:
        overrides["bbox"] = tuple(args.bbox)
    t0 = time.perf_counter()
    path = generate(args.preset, seed=args.seed, out=args.out, progress=args.progress, **overrides)
    info = summary(path)
    took = time.perf_counter() - t0
    print(f"sample world written to {info['path']} in {took:.1f} s")
    print(f"  preset        {info['preset']} (seed {info['seed']})")
    print(f"  grid          {info['grid']}")
    regions = ", ".join(f"{k} {v}" for k, v in info["land_cells_by_region"].items())
    print(f"  land cells    {info['land_cells']} ({regions})")
    print(f"  ISMN          {info['ismn_stations']} stations, {info['ismn_sensors']} sensors")
    print(f"  COSMOS        {info['cosmos_stations']} stations")
    print(f"  period        {info['period']} (hourly ERA5-Land {info['hourly_period']})")
    print(f"  size on disk  {_size(info['bytes'])}")
    return 0
