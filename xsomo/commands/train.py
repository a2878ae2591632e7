"""``xsomo train``: train the EA-LSTM cascade on prepared drivers and targets.

Examples::

    xsomo train --drivers prepared/drivers.nc --targets prepared/targets.nc --out model/
    xsomo train --drivers prepared/ --targets prepared/ --out model/ --preset demo --ensemble 3
    xsomo train --drivers prepared/ --targets prepared/ --out model/ --epochs 40 --hidden 128 --run-dir runs/a
    xsomo train --drivers prepared/ --targets prepared/ --out model/ --consistency 100
    xsomo train --drivers points.nc --targets stations.nc --out model/ --layers 1 \
        --dynamic precipitation air_temperature --static elevation_mean precipitation_mean

``--drivers``/``--targets`` take a netCDF file or a folder holding ``drivers.nc`` /
``targets.nc`` (what ``xsomo prepare`` writes); ``--drivers`` also takes a sources file or a
world folder, as in ``xsomo predict``. With ``--run-dir`` every epoch is
checkpointed and rerunning the same command resumes an interrupted training.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train the EA-LSTM cascade (layers 1 -> 2 -> 3, seed ensemble) and save the model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--drivers", required=True, type=pathlib.Path, help="drivers netCDF (or folder with drivers.nc)")
    p.add_argument("--targets", required=True, type=pathlib.Path, help="targets netCDF (or folder with targets.nc)")
    p.add_argument("--out", required=True, type=pathlib.Path, help="model directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    p.add_argument(
        "--preset", choices=("tiny", "demo", "paper"),
        help="named settings: paper (SoMo.ml-EU: 5 members, 128 hidden; the defaults), demo (a demo-size world "
        "in minutes on 2 cores), tiny (the tiny sample world)",
    )  # fmt: skip
    p.add_argument("--layers", type=int, nargs="+", choices=(1, 2, 3), help="layers in cascade order, ascending (default 1 2 3)")
    p.add_argument(
        "--dynamic", nargs="+", metavar="NAME",
        help="the model's daily inputs (default: the method's eight; point drivers from station forcing: e.g. "
        "precipitation air_temperature)",
    )  # fmt: skip
    p.add_argument(
        "--static", nargs="+", metavar="NAME",
        help="the model's static inputs (default: the method's twelve; e.g. elevation_mean precipitation_mean "
        "air_temperature_mean for point drivers)",
    )  # fmt: skip
    for name, typ, hlp in (
        ("ensemble", int, "members per layer (default 5)"),
        ("epochs", int, "maximum epochs (default 30)"),
        ("hidden", int, "hidden units (default 128)"),
        ("lookback", int, "warm-up days of a training window (default 365)"),
        ("seq-length", int, "supervised days of a training window (default 365)"),
        ("batch-size", int, "windows per batch (default 256)"),
        ("lr", float, "Adam learning rate (default 1e-3)"),
        ("dropout", float, "dropout before the head (default 0.4)"),
        ("patience", int, "early-stopping patience in epochs (default 5)"),
        ("val-fraction", float, "fraction of cells for early stopping (default 0.2)"),
        ("seed", int, "random seed (default 0)"),
        ("steps-per-epoch", int, "batches per epoch (default: about one pass over the targets, at least 25)"),
        ("consistency", float, "weight of the penalty that makes the networks forget their initial state "
         "(0: off; see docs/prediction.md)"),
        ("consistency-cells", int, "grid cells without targets that the penalty also sees (default 512)"),
        ("forget-tolerance", float, "largest convergence distance (m3 m-3) after the lookback that training accepts "
         "before training the members above it again with a doubled penalty (default 1e-3; 0: no check)"),
        ("forget-retries", int, "times the members of a layer that do not forget are trained again (default 1)"),
    ):
        p.add_argument(f"--{name}", type=typ, help=hlp)
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument("--run-dir", type=pathlib.Path, help="checkpoint folder; rerun to resume")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="dask.distributed scheduler: the members of each layer train as tasks on its workers",
    )  # fmt: skip
    return p


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.model import training

    # every option is checked before the (long) training
    common.output_dir(args.out, "--out")
    if (args.out / "model.json").exists() and not args.overwrite:
        # (a typo in --out had replaced a model that took hours to train, after the new training)
        from xsomo.exceptions import XsomoValueError

        raise XsomoValueError(
            f"--out {args.out} holds a trained model; choose another folder, or pass --overwrite to replace it"
        )
    if args.run_dir is not None:
        common.output_dir(args.run_dir, "--run-dir")
    device = common.check_device(args.device)
    if args.layers:
        from xsomo.model.config import TrainingConfig

        TrainingConfig(layers=tuple(args.layers))  # --layers 2 1: refused before the files are opened
    drivers = common.open_drivers_arg(args.drivers, "--drivers")
    targets = common.open_targets_arg(args.targets, "--targets")
    kwargs: dict[str, Any] = {}
    for name in (
        "ensemble", "epochs", "hidden", "lookback", "seq_length", "batch_size", "lr", "dropout",
        "patience", "val_fraction", "seed", "steps_per_epoch", "consistency", "consistency_cells",
        "forget_tolerance", "forget_retries",
    ):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    if args.layers:
        kwargs["layers"] = tuple(args.layers)
    for name in ("dynamic", "static"):
        if getattr(args, name):
            kwargs[name] = tuple(getattr(args, name))
    with common.scheduler_client(args.scheduler) as client:
        model = training.train_lstm(
            drivers, targets, device=device, run_dir=args.run_dir, progress=not args.no_progress,
            preset=args.preset, client=client, **kwargs,
        )  # fmt: skip
    out = model.save(args.out)
    hist = model.history
    print(f"model saved to {out} ({hist.get('seconds', 0):.0f} s of training)")
    for key, h in hist.items():
        if key.startswith("layer") and isinstance(h, dict) and "best_val_loss" in h:
            print(f"  {key}: best validation MSE (z-scored) {h['best_val_loss']:.4f} at epoch {h['best_epoch'] + 1}")
        elif key.endswith("_forgetting") and isinstance(h, dict) and h.get("distance"):
            print(
                f"  {key.removesuffix('_forgetting')}: roll-outs from different initial states differ by "
                f"{h['distance'][-1]:.2g} m3 m-3 after the lookback on the probe cells"
            )
    return 0
