"""``xsomo experiment memory|transfer|importance``: the paper's lookback-permutation and transfer experiments.

Examples::

    xsomo experiment memory --world demo_out/world --model demo_out/model --out exp/
    xsomo experiment transfer --world demo_out/world --out exp/ --epochs 5

``memory`` first measures how long the world's truth remembers (autocorrelation of
daily anomalies per layer), then permutes all but the last n days of every input window
of the model (n = 1 … 365) and scores NSE and r against the truth. ``transfer`` trains
on the "us" region's target cells only and scores on "europe" cells (and on held-out
"us" cells). Results are netCDF files that ``xsomo report --memory/--transfer`` shows.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

from xsomo.commands import importance


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "experiment",
        help="run the lookback-permutation (memory) or transfer experiment on a sample world",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    m = sub.add_parser("memory", help="memory of the truth and lookback permutation of a trained model")
    m.add_argument("--world", required=True, type=pathlib.Path)
    m.add_argument("--model", required=True, type=pathlib.Path, help="trained model folder")
    m.add_argument("--drivers", type=pathlib.Path, help="drivers netCDF (default: built from the world)")
    m.add_argument("--out", required=True, type=pathlib.Path, help="output folder")
    m.add_argument("--cells", type=int, default=40, help="random land cells (default 40)")
    m.add_argument("--days", type=int, default=60, help="random target days per cell (default 60)")
    m.add_argument("--ns", type=int, nargs="+", help="days kept unpermuted (default 1 2 5 10 20 30 60 90 180 365)")
    m.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("transfer", help="train on region 'us', validate on region 'europe'")
    t.add_argument("--world", required=True, type=pathlib.Path)
    t.add_argument("--out", required=True, type=pathlib.Path, help="output folder")
    t.add_argument("--drivers", type=pathlib.Path, help="drivers netCDF (default: built from the world)")
    t.add_argument("--targets", type=pathlib.Path, help="targets netCDF (default: built from the world's ISMN files)")
    t.add_argument("--train-region", default="us")
    t.add_argument("--test-region", default="europe")
    t.add_argument("--test-cells", type=int, default=200)
    t.add_argument("--epochs", type=int, help="training epochs (default: the demo's)")
    t.add_argument("--ensemble", type=int, help="members per layer (default: the demo's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--spinup", type=int,
        help="days before the first scored day (default: the model's lookback); a model that has not "
        "forgotten its initial state by then is run window by window (exact, much slower)",
    )
    t.add_argument(
        "--tolerance", type=float,
        help="bound (m3 m-3) on the initial-state dependence under which the continuous roll-out is used (default 1e-3)",
    )
    t.add_argument("--model", type=pathlib.Path, help="a model trained on the training region (skips training)")
    importance.add_parser(sub)
    p.set_defaults(command="experiment")
    return p


def _drivers(path: pathlib.Path | None) -> Any:
    if path is None:
        return None
    from xsomo.commands import common

    return common.open_drivers_arg(path, "--drivers")


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.evaluation import experiments
    from xsomo.model import TrainedModel

    if args.experiment == "importance":
        return importance.run(args)
    common.output_dir(args.out, "--out")
    common.input_path(args.world, "--world", "world folder")
    if getattr(args, "model", None) is not None:
        common.input_path(args.model, "--model", "model folder")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.experiment == "memory":
        model = TrainedModel.load(args.model)
        scales, perm = experiments.memory_experiment(
            args.world, model, drivers=_drivers(args.drivers), cells=args.cells, days_per_cell=args.days,
            ns=tuple(args.ns) if args.ns else experiments.LOOKBACK_NS, seed=args.seed,
        )
        _write(scales, args.out / "memory_truth.nc")
        _write(perm, args.out / "memory.nc")
        print("e-folding time of the truth's daily anomalies (days):",
              json.dumps({int(k): int(v) for k, v in zip(scales.layer.values, scales.efold_days.values, strict=True)}))
        print(perm[["nse", "pearson_r"]].to_dataframe().unstack("layer").to_string(float_format=lambda v: f"{v:.3f}"))
        # (NaN: the whole window adds no skill over the shortest one; int() of it had crashed the command)
        need = {
            m: {int(k): (int(v) if v == v else "no gain") for k, v in experiments.days_needed(perm, metric=m).to_pandas().items()}
            for m in ("pearson_r", "nse")
        }
        print("days kept in order for 95 % of the skill the whole window adds:", json.dumps(need))
        print(f"written {args.out / 'memory.nc'}")
        return 0
    kw: dict[str, Any] = {}
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    if args.ensemble is not None:
        kw["ensemble"] = args.ensemble
    targets = common.open_targets_arg(args.targets, "--targets") if args.targets else None
    result, model = experiments.transfer_experiment(
        args.world, targets=targets, drivers=_drivers(args.drivers), train_region=args.train_region,
        test_region=args.test_region, test_cells=args.test_cells, seed=args.seed, train_kwargs=kw,
        spinup=args.spinup, tolerance=args.tolerance, model=TrainedModel.load(args.model) if args.model else None,
    )
    _write(result, args.out / "transfer.nc")
    if args.model is None:
        model.save(args.out / "transfer_model")
    print(experiments.transfer_summary(result).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"written {args.out / 'transfer.nc'}")
    return 0


def _write(ds: Any, path: pathlib.Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    ds.to_netcdf(tmp)
    tmp.replace(path)
