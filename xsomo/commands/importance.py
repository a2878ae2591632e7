"""``xsomo experiment importance``: permutation importance of a model's inputs (issue 18).

Example::

    xsomo experiment importance --model out/model --drivers drivers.nc --targets targets.nc --out exp/

Shuffles each dynamic input across time and each static input across cells (``--repeats``
times) and writes the drop of the median r and NSE per layer to ``importance.nc``
(:func:`xsomo.evaluation.importance.input_importance`). Drivers may be gridded or point
drivers; targets are target cells ``sm(cell, layer, time)`` or station series. ``--figure``
also draws ``importance.png`` (:func:`xsomo.report.plotting.importance_bars`); ``xsomo report
--importance importance.nc`` adds the same figure and table to a report.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``importance`` sub-command of ``xsomo experiment``."""
    p = sub.add_parser("importance", help="permutation importance of the model's inputs (drop of r and NSE)")
    p.add_argument("--model", required=True, type=pathlib.Path, help="trained model folder")
    p.add_argument("--drivers", required=True, type=pathlib.Path,
                   help="drivers: netCDF (gridded or point), prepared folder, sources file or world folder")
    p.add_argument("--targets", required=True, type=pathlib.Path,
                   help="targets netCDF or a folder holding targets.nc (target cells or stations)")
    p.add_argument("--out", required=True, type=pathlib.Path, help="output folder")
    p.add_argument("--inputs", nargs="+", help="inputs to shuffle (default: all of the model's)")
    p.add_argument("--repeats", type=int, default=5, help="shuffles per input (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", action="store_true", help="also write importance.png (drop of r and NSE per input and layer)")
    return p


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.evaluation.importance import input_importance
    from xsomo.io.atomic import atomic_path
    from xsomo.model import TrainedModel

    # every path is checked before the long work (a roll-out per input and repeat)
    common.output_dir(args.out, "--out")
    common.input_path(args.model, "--model", "model folder")
    drivers = common.open_drivers_arg(args.drivers, "--drivers")
    targets = common.open_targets_arg(args.targets, "--targets")
    model = TrainedModel.load(args.model)
    res = input_importance(model, drivers.load(), targets.load(), inputs=args.inputs, repeats=args.repeats, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "importance.nc"
    with atomic_path(path) as tmp:
        res.to_netcdf(tmp)
    table = res[["r_drop", "nse_drop"]].median("repeat").to_dataframe().unstack("layer")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"written {path}")
    if args.figure:
        from xsomo.report import plotting

        fig = plotting.save(plotting.importance_bars(res), args.out / "importance.png")
        print(f"written {fig}")
    return 0
