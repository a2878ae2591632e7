"""``xsomo demo``: the whole pipeline on the built-in sample world.

sample → prepare (targets + drivers) → train → predict → files → evaluate → report.
Each step's output is kept in ``--out``; rerunning the command skips finished steps.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the built-in sample world")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument(
        "--preset", default="demo",
        help="tiny, demo (default) or europe: the sample world and the training settings of that name; paper: "
        "the demo world trained with the paper's settings (5 members, 128 hidden units; see the README)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="sample-world seed (default: 0)")
    p.add_argument("--ensemble", type=int, default=None, help="ensemble members (default: the demo preset's)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the demo preset's)")
    p.add_argument("--fresh", action="store_true", help="ignore finished steps and redo everything")
    p.set_defaults(command="demo")


def _step(name: str) -> float:
    print(f"\n== {name}", flush=True)
    return time.perf_counter()


def _done(t0: float, what: str) -> None:
    print(f"   {what} ({time.perf_counter() - t0:.1f} s)", flush=True)


def run(args: argparse.Namespace) -> int:
    from xsomo import demo as pipeline
    from xsomo.commands import common

    common.output_dir(args.out, "--out")  # before the long pipeline
    world, training = pipeline.demo_presets(args.preset)
    summary = pipeline.run_demo(
        Path(args.out),
        preset=world,
        training_preset=training,
        seed=args.seed,
        ensemble=args.ensemble,
        epochs=args.epochs,
        fresh=args.fresh,
        step=_step,
        done=_done,
    )
    print("\n== done. Outputs:")
    for key, value in summary.items():
        print(f"   {key:<10} {value}")
    return 0
