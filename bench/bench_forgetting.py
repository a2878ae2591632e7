"""Does training make the EA-LSTM forget its initial state? Before/after the consistency penalty.

Trains the demo cascade on a prepared demo world once per ``--consistency`` weight (same seed,
same data, everything else from :data:`xsomo.model.training.DEMO_DEFAULTS`), then reports per layer:

- the convergence distance (:func:`xsomo.model.rollout.convergence_distance`, m3 m-3, roll-outs from
  the initial states 0, +1 and -1 compared over the 30 days after the spin-up) after 365 and
  730 days, max and median over ``--conv-cells`` random land cells and over every member;
- the median Pearson r of the ensemble mean (continuous roll-out, first 365 days dropped)
  against the world's ``truth.nc`` at ``--eval-cells`` random land cells without stations;
- the training CPU time of this process (one torch thread).

The world folder is the one ``xsomo demo`` leaves (``world/truth.nc``, ``prepared/drivers.nc``,
``prepared/targets.nc``). Trained models are saved under ``--out`` and reused on a rerun.

Run::

    .venv/bin/python bench/bench_forgetting.py --world /tmp/demo1 --out /tmp/forget \\
        --consistency 0 100           # demo preset (2 members per layer)
    .venv/bin/python bench/bench_forgetting.py --world /tmp/demo1 --out /tmp/forget1 \\
        --ensemble 1 --consistency 0 100  # one member per layer (half the time)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
import torch
import xarray as xr

from xsomo.model import TrainedModel, rollout, training
from xsomo.model.inputs import inputs_at_cells


def _cells(world: pathlib.Path, drivers: xr.Dataset, targets: xr.Dataset, n_conv: int, n_eval: int, seed: int):
    """Random land cells for the convergence check, and random station-free land cells for r."""
    land = drivers["land_mask"].values.astype(bool) if "land_mask" in drivers else np.isfinite(
        drivers["aridity"].values
    )
    rows, cols = np.nonzero(land)
    rng = np.random.default_rng(seed)
    conv = np.sort(rng.choice(rows.size, n_conv, replace=False)) if 0 < n_conv < rows.size else np.arange(rows.size)
    stations = {(round(float(a), 3), round(float(b), 3)) for a, b in zip(targets.lat.values, targets.lon.values, strict=True)}
    lat, lon = drivers.lat.values[rows], drivers.lon.values[cols]
    free = np.flatnonzero([(round(float(a), 3), round(float(b), 3)) not in stations for a, b in zip(lat, lon, strict=True)])
    ev = rng.choice(free, min(n_eval, free.size), replace=False)
    return (rows[conv], cols[conv]), (rows[ev], cols[ev])


def _inputs(model: TrainedModel, drivers: xr.Dataset, rows: np.ndarray, cols: np.ndarray):
    return inputs_at_cells(drivers, rows, cols, model.config)


def evaluate(model: TrainedModel, world: pathlib.Path, drivers: xr.Dataset, targets: xr.Dataset, args) -> dict:
    (crow, ccol), (erow, ecol) = _cells(world, drivers, targets, args.conv_cells, args.eval_cells, args.cell_seed)
    res: dict = {"layers": list(model.config.layers)}
    dyn, sta = _inputs(model, drivers, crow, ccol)
    # cells whose inputs the consistency penalty saw in training (no targets there)
    seen = np.zeros(crow.size, bool)
    n_probe = int(model.config.training.get("consistency_cells") or 0) if model.config.training.get("consistency") else 0
    if n_probe:
        data = training.prepare_training_data(drivers, targets, layers=model.config.layers)
        pr, pc = training.probe_grid_cells(drivers, data, n_probe, int(model.config.training["seed"]))
        seen = np.isin(crow * 100000 + ccol, pr * 100000 + pc)
    res["conv_cells"], res["conv_cells_unseen"] = int(crow.size), int((~seen).sum())
    for steps in (365, 730):
        dist = rollout.convergence_distance(model, dyn, sta, steps=steps)  # (layers, members, cells)
        flat = dist.reshape(dist.shape[0], -1)
        res[f"dist{steps}_max"] = np.nanmax(flat, axis=1).tolist()
        res[f"dist{steps}_median"] = np.nanmedian(flat, axis=1).tolist()
        res[f"dist{steps}_max_unseen"] = np.nanmax(dist[:, :, ~seen].reshape(dist.shape[0], -1), axis=1).tolist()
    dyn, sta = _inputs(model, drivers, erow, ecol)
    pred = rollout.predict_block(model, dyn, sta, mode="continuous", spinup=model.config.lookback)
    truth = xr.open_dataset(world / "world" / "truth.nc")
    tv = (
        truth["sm"].isel(lat=xr.DataArray(erow, dims="c"), lon=xr.DataArray(ecol, dims="c"))
        .sel(time=drivers.time).transpose("layer", "c", "time").values
    )  # fmt: skip
    sl = slice(model.config.lookback, None)
    rs = []
    for k, layer in enumerate(model.config.layers):
        k_truth = list(truth.layer.values).index(layer)
        ens = pred[k].mean(0)
        r = [np.corrcoef(ens[c, sl], tv[k_truth, c, sl])[0, 1] for c in range(ens.shape[0])]
        rs.append(float(np.nanmedian(r)))
    res["median_r"] = rs
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", type=pathlib.Path, default=pathlib.Path("/tmp/demo1"))
    p.add_argument("--out", type=pathlib.Path, required=True, help="folder for the trained models and results.json")
    p.add_argument("--consistency", type=float, nargs="+", default=[0.0, 100.0])
    p.add_argument("--ensemble", type=int, help="members per layer (default: the demo preset's)")
    p.add_argument("--epochs", type=int, help="epochs (default: the demo preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conv-cells", type=int, default=0, help="random land cells of the check (0: all)")
    p.add_argument("--eval-cells", type=int, default=300)
    p.add_argument("--cell-seed", type=int, default=0)
    p.add_argument("--extra", type=json.loads, default={}, help="more train_lstm options as JSON")
    args = p.parse_args()
    torch.set_num_threads(1)
    drivers = xr.open_dataset(args.world / "prepared" / "drivers.nc").load()
    targets = xr.open_dataset(args.world / "prepared" / "targets.nc").load()
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    for w in args.consistency:
        kw = {"preset": "demo", "progress": False, "seed": args.seed, "consistency": w, "threads": 1, **args.extra}
        if args.ensemble:
            kw["ensemble"] = args.ensemble
        if args.epochs:
            kw["epochs"] = args.epochs
        name = "_".join(f"{k}={v}" for k, v in sorted(kw.items()) if k not in ("preset", "progress", "threads"))
        folder = args.out / name
        if (folder / "model.json").is_file():
            model = TrainedModel.load(folder)
            cpu = results.get(name, {}).get("train_cpu_s")
        else:
            t0 = time.process_time()
            model = training.train_lstm(drivers, targets, **kw)
            cpu = time.process_time() - t0
            model.save(folder)
        res = {"options": kw, "train_cpu_s": cpu, **evaluate(model, args.world, drivers, targets, args)}
        best = {k: (v["best_epoch"], round(v["best_val_loss"], 4)) for k, v in model.history.items() if isinstance(v, dict) and "best_epoch" in v}
        res["best_epoch_val"] = best
        results[name] = res
        tmp = results_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(results_file)
        print(f"\n{name}: train CPU {cpu if cpu is None else round(cpu)} s", flush=True)
        print("  layer              " + "  ".join(f"{lay:>8d}" for lay in res["layers"]))
        print(f"  convergence distance over {res['conv_cells']} land cells ({res['conv_cells_unseen']} not probed)")
        for key in ("dist365_max", "dist365_max_unseen", "dist365_median", "dist730_max", "dist730_median"):
            print(f"  {key:<18} " + "  ".join(f"{v:8.1e}" for v in res[key]))
        print("  median r           " + "  ".join(f"{v:8.3f}" for v in res["median_r"]))
        print("  best epoch/val  ", best, flush=True)
    print(f"\ntolerance of the inference check: {rollout.DEFAULT_TOLERANCE:g} m3 m-3; results in {results_file}")


if __name__ == "__main__":
    main()
