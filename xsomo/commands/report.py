"""``xsomo report``: an evaluation report (CSV tables, PNG figures, index.md/index.html) of a prediction.

Examples::

    xsomo report --world demo_out/world --pred demo_out/sm --out demo_out/report
    xsomo report --world world --pred sm --targets prepared/targets.nc --memory exp/memory.nc \\
        --transfer exp/transfer.nc --out report

``--memory``, ``--transfer`` and ``--importance`` take the netCDF results of ``xsomo experiment``
(``--importance exp/importance.nc`` adds the input-importance figure).
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="write an evaluation report (tables, figures, index page) of a prediction on a sample world",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--world", required=True, type=pathlib.Path, help="sample-world folder (xsomo sample)")
    p.add_argument("--pred", required=True, type=pathlib.Path, help="folder of SoMo.ml-EU files or a netCDF with sm")
    p.add_argument("--out", required=True, type=pathlib.Path, help="report folder")
    p.add_argument("--targets", type=pathlib.Path, help="targets netCDF (training cells)")
    p.add_argument("--model", type=pathlib.Path, help="trained model folder (training cells)")
    p.add_argument("--memory", type=pathlib.Path, help="lookback-permutation result (xsomo experiment memory)")
    p.add_argument("--transfer", type=pathlib.Path, help="transfer result (xsomo experiment transfer)")
    p.add_argument("--importance", type=pathlib.Path, help="input-importance result (xsomo experiment importance)")
    p.add_argument("--year", type=int, help="year of the anomaly maps (default 2015 or the driest summer)")
    p.add_argument("--no-products", action="store_true", help="leave the stand-in products out")
    p.add_argument("--dpi", type=int, default=300, help="resolution of the PNG figures (default 300)")
    p.add_argument(
        "--vector",
        metavar="FORMATS",
        default="",
        help="also write every figure as vector graphics: pdf, svg or pdf,svg",
    )
    p.set_defaults(command="report")
    return p


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.report.report import write_report

    # every path is checked before the report's long work
    common.output_dir(args.out, "--out")
    common.input_path(args.world, "--world", "world folder")
    for option, value in (("--model", args.model), ("--memory", args.memory), ("--transfer", args.transfer),
                          ("--importance", args.importance)):
        if value is not None:
            common.input_path(value, option)
    pred: Any = common.prediction_arg(args.pred, "--pred")
    targets = common.open_targets_arg(args.targets, "--targets") if args.targets else None
    model = None
    if args.model:
        from xsomo.model import TrainedModel

        model = TrainedModel.load(args.model)
    index = write_report(
        world=args.world,
        prediction=pred,
        out=args.out,
        model=model,
        targets=targets,
        memory=args.memory,
        transfer=args.transfer,
        importance=args.importance,
        year=args.year,
        products=not args.no_products,
        dpi=args.dpi,
        vector=args.vector,
    )
    print(f"report: {index} (and {index.with_suffix('.html')})")
    return 0
