"""Throughput of the inference modes: windowed vs continuous vs auto (cell-days per second).

Two models, same size (128 hidden units, one layer, one member):

* the published SoMo.ml v1 layer-1 model (Kratzert-layout weights imported with
  :func:`xsomo.model.importers.load_somoml_v1`) on its own 5 cells of real ERA5 forcing
  (needs ../shared/data/real/somo-ml-v1; skipped if absent);
* an xsomo model: a fresh (untrained) :class:`~xsomo.model.TrainedModel` with xsomo's own
  four dynamic and ten static inputs and the default forget-gate bias, on synthetic
  inputs (or a trained model directory given with ``--model``).

For each: ``windowed`` (one 365-day window per day, zero state), ``continuous`` (one
roll-out) and ``auto`` (convergence check, then whichever is right), all through
:func:`xsomo.model.rollout.predict_block`, in float32 and float64 (``dtype=``); the windowed
kernel is also timed at several batch sizes (float32). A cell-day is one (cell, day)
output value.

Run::

    .venv/bin/python bench/bench_inference_modes.py              # ~1-3 min on 2 cores
    .venv/bin/python bench/bench_inference_modes.py --days 730 --ours-cells 64
    .venv/bin/python bench/bench_inference_modes.py --threads 1 --dtypes float32,float64 --no-strided
    .venv/bin/python bench/bench_inference_modes.py --ladder 256 --days 1096 --threads 1   # auto's rungs
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
import time

import numpy as np
import torch

from xsomo.model import rollout

HERE = pathlib.Path(__file__).resolve().parent
REAL = pathlib.Path(
    os.environ.get("XSOMO_REAL_DATA", HERE.parent.parent / "shared" / "data" / "real")
)


def _time(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def bench_model(
    name: str,
    model,
    dyn: np.ndarray,
    sta: np.ndarray,
    *,
    device: str,
    batches: list[int],
    dtypes: tuple[str, ...] = ("float32",),
) -> list[tuple[str, str, float, float, float, str]]:
    """Rows (model, mode, wall s, CPU s, valid cell-days per wall second, note)."""
    rows = []
    lookback = model.config.lookback
    valid = dyn.shape[0] * (dyn.shape[1] - lookback + 1)  # outputs with a full window / spin-up
    for dtype in dtypes:
        for mode in ("continuous", "windowed", "auto"):
            info_box: dict[str, object] = {}

            def go(mode: str = mode, box: dict = info_box, dtype: str = dtype) -> None:
                _, box["info"] = rollout.predict_block(
                    model, dyn, sta, mode=mode, device=device, dtype=dtype, return_info=True
                )

            dt, cpu = _time(go)
            info = info_box["info"]
            note = f"ran {info.mode}"  # type: ignore[attr-defined]
            if info.distance is not None:  # type: ignore[attr-defined]
                note += f"; convergence distance {max(info.distance.values()):.3g} m3 m-3"  # type: ignore[attr-defined]
            rows.append((name, f"{mode} ({dtype})", dt, cpu, valid / cpu, note))
    # the windowed kernel alone at several batch sizes (normalised inputs, one network)
    xd, xs = model.prepare_dynamic(dyn), model.prepare_static(sta)
    (net,) = model.networks(model.config.layers[0], device=device)
    for b in batches:
        dt, cpu = _time(
            lambda b=b: rollout.run_windowed(net, xd, xs, lookback, device=device, batch_size=b)
        )
        rows.append(
            (name, f"windowed kernel, batch {b}", dt, cpu, valid / cpu, "rollout.run_windowed")
        )
    return rows


def strided_error(model, dyn: np.ndarray, sta: np.ndarray, *, n: int = 20) -> None:
    """How much j extra days of history change a windowed output (the error of reusing windows)."""
    lookback = model.config.lookback
    xd = torch.from_numpy(model.prepare_dynamic(dyn))
    xs = torch.from_numpy(model.prepare_static(sta))
    (net,) = model.networks(model.config.layers[0])
    std = float(model.stats.target_std[0])
    rng = np.random.default_rng(1)
    ends = rng.integers(lookback + 40, dyn.shape[1], n)
    print(
        f"\nextra history vs the exact {lookback}-day window ({len(ends)} days x {dyn.shape[0]} cells):"
    )
    for j in (1, 3, 7, 30):
        errs = []
        with torch.no_grad():
            for c in range(dyn.shape[0]):
                s = xs[c].expand(len(ends), -1).contiguous()
                a = torch.stack([xd[c, e - lookback + 1 : e + 1] for e in ends])
                b = torch.stack([xd[c, e - lookback + 1 - j : e + 1] for e in ends])
                ya = net.head(net.lstm(a, s)[1][0])[:, 0]
                yb = net.head(net.lstm(b, s)[1][0])[:, 0]
                errs.append((ya - yb).abs().numpy() * std)
        e = np.concatenate(errs)
        print(
            f"  window {lookback}+{j:<3d} |sm diff| median {np.median(e):.2e}, "
            f"95% {np.quantile(e, 0.95):.2e}, max {e.max():.2e} m3 m-3"
        )


def published(days: int) -> tuple[object, np.ndarray, np.ndarray] | None:
    folder = REAL / "somo-ml-v1"
    if not folder.is_dir():
        print(f"[skip] published SoMo.ml v1 model: {folder} not found", file=sys.stderr)
        return None
    from xsomo.io.somoml import open_somoml_v1_run
    from xsomo.model.importers import load_somoml_v1

    run = open_somoml_v1_run(folder)
    model = load_somoml_v1(run.folder)
    dyn = run.dynamic_array(model.config.dynamic)[:, -days:]
    sta = run.static_array(model.config.static)
    return model, dyn, sta


def ours(cells: int, days: int, model_dir: str | None) -> tuple[object, np.ndarray, np.ndarray]:
    from xsomo import conventions as cv
    from xsomo.model.config import ModelConfig, NormStats
    from xsomo.model.ealstm import EALSTM
    from xsomo.model.trained import TrainedModel

    rng = np.random.default_rng(0)
    if model_dir:
        model = TrainedModel.load(model_dir)
        cfg = model.config
        # inputs drawn around the model's own normalisation statistics
        dyn = (
            rng.standard_normal((cells, days, cfg.n_dynamic)) * model.stats.dynamic_std
            + model.stats.dynamic_mean
        )
        sta = (
            rng.standard_normal((cells, cfg.n_static)) * model.stats.static_std
            + model.stats.static_mean
        )
        return model, dyn, sta
    cfg = ModelConfig(
        dynamic=cv.DYNAMIC_NAMES,
        static=cv.STATIC_NAMES,
        layers=(1,),
        ensemble=1,
        hidden=128,
        cascade=False,
    )
    stats = NormStats(
        np.zeros(cfg.n_dynamic),
        np.ones(cfg.n_dynamic),
        np.zeros(cfg.n_static),
        np.ones(cfg.n_static),
        [0.25],
        [0.1],
    )
    torch.manual_seed(0)
    net = EALSTM(
        cfg.n_dynamic, cfg.n_static, cfg.hidden, initial_forget_bias=cfg.initial_forget_bias
    )
    model = TrainedModel.from_weights(cfg, stats, {1: [net.state_dict()]})
    # AR(1) dynamic inputs (daily persistence ~0.8), one static vector per cell
    e = rng.standard_normal((cells, days, cfg.n_dynamic))
    dyn = np.empty_like(e)
    dyn[:, 0] = e[:, 0]
    for t in range(1, days):
        dyn[:, t] = 0.8 * dyn[:, t - 1] + 0.6 * e[:, t]
    sta = rng.standard_normal((cells, cfg.n_static))
    return model, dyn, sta


def ladder_costs(
    model, dyn: np.ndarray, sta: np.ndarray, *, check_cells: int = 64, window_cells: int = 8
) -> list[tuple[str, float, float]]:
    """Cost of each rung of ``auto``'s ladder on one block (issue 21): the convergence check on
    ``check_cells`` cells (as ``predict``'s default ``check_cells``) plus the continuous roll-out
    of every cell with that spin-up, against window-by-window prediction of the block
    (timed on ``window_cells`` cells, scaled). Rows: (what, check s, roll-out s)."""
    lookback = model.config.lookback
    n = dyn.shape[0]
    pick = np.linspace(0, n - 1, min(check_cells, n)).round().astype(int)
    rows = []
    for steps in rollout.ladder_spinups(lookback, lookback):
        forcing = rollout.spinup_forcing(dyn, None, steps, lookback)
        chk, _ = _time(
            lambda f=forcing, s=steps: rollout.convergence_distance(model, f[pick], sta[pick], steps=s)
        )
        run, _ = _time(
            lambda f=forcing, s=steps: rollout.predict_block(model, f, sta, mode="continuous", spinup=s)
        )
        rows.append((f"continuous, {steps}-day spin-up", chk, run))
    sub = slice(0, min(window_cells, n))
    win, _ = _time(lambda: rollout.predict_block(model, dyn[sub], sta[sub], mode="windowed"))
    rows.append(("windowed", 0.0, win * n / (sub.stop - sub.start)))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=730, help="days per cell (>= 365; default 730)")
    p.add_argument(
        "--ours-cells", type=int, default=5, help="cells for the xsomo model (default 5)"
    )
    p.add_argument("--model", default=None, help="a trained xsomo model directory to use as 'ours'")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batches", default="512,2048", help="windowed kernel batch sizes to time")
    p.add_argument(
        "--no-strided", action="store_true", help="skip the extra-history (strided windows) error"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--dtypes",
        default="float32,float64",
        help="precisions to time, comma-separated (default float32,float64)",
    )
    p.add_argument(
        "--ladder", type=int, default=0, metavar="CELLS",
        help="only time auto's ladder rungs on a block of CELLS cells x --days days (e.g. 256 --days 1096)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.ladder:
        if args.threads:
            torch.set_num_threads(args.threads)
        model, dyn, sta = ours(args.ladder, args.days, args.model)
        print(
            f"auto's ladder on one block of {dyn.shape[0]} cells x {dyn.shape[1]} days "
            f"(lookback {model.config.lookback}, hidden {model.config.hidden}; check on 64 cells), "
            f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'rung':<32} {'check s':>8} {'roll-out s':>11} {'total s':>8}")
        for what, chk, run in ladder_costs(model, dyn, sta):
            print(f"{what:<32} {chk:8.2f} {run:11.2f} {chk + run:8.2f}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("xsomo.model.rollout").setLevel(
        logging.ERROR
    )  # auto's warning is reported in the table
    batches = [int(b) for b in args.batches.split(",") if b]
    dtypes = tuple(rollout.check_dtype(d.strip()) for d in args.dtypes.split(",") if d.strip())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    rows = []
    pub = published(args.days)
    if pub is not None:
        model, dyn, sta = pub
        print(f"published SoMo.ml v1: {dyn.shape[0]} cells x {dyn.shape[1]} days")
        rows += bench_model(
            "SoMo.ml v1 (published)",
            model,
            dyn,
            sta,
            device=args.device,
            batches=batches,
            dtypes=dtypes,
        )
    if pub is not None and not args.no_strided:
        full = published(8400)
        assert full is not None
        strided_error(*full)
    model, dyn, sta = ours(args.ours_cells, args.days, args.model)
    print(f"xsomo model: {dyn.shape[0]} cells x {dyn.shape[1]} days")
    rows += bench_model(
        "xsomo (untrained)" if not args.model else "xsomo",
        model,
        dyn,
        sta,
        device=args.device,
        batches=batches,
        dtypes=dtypes,
    )
    print(
        f"\n{'model':<24} {'mode':<28} {'wall s':>8} {'CPU s':>8} {'cell-days/s':>12} "
        f"{'per CPU s':>15}  note"
    )
    for name, mode, dt, cpu, rate, note in rows:
        print(
            f"{name:<24} {mode:<28} {dt:8.2f} {cpu:8.2f} {rate * cpu / dt:12.0f} {rate:15.0f}  {note}"
        )
    print(
        f"(cell-days/s = valid output cell-days / wall seconds; per CPU s = / CPU seconds of this "
        f"process, which a busy machine disturbs less; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
