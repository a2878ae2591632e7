"""Input importance on the demo sample world (docs/importance.md, issue 18 item 3).

The demo's model (``--model demo_out/model``, what ``make demo`` trained), or one trained here
with the demo preset on the prepared demo world's station targets (``xsomo prepare`` output:
``drivers.nc``, ``targets.nc``); then each input is shuffled (``repeats`` times) and the drop of
the median r and NSE per layer is measured against the world's TRUTH at random land cells that
hold no training target (the truth is what the physics makes; the scaled station targets would
add the stations' errors). Run::

    nice -n 10 env PYTHONPATH=. python bench/importance_demo_world.py \\
        --world demo_out/world --prepared demo_out/prepared --model demo_out/model \\
        --work /tmp/imp_demo --figure docs/img/importance_demo_world.png

Without ``--model`` the model is trained (:data:`TRAINING`), saved in ``WORK/model`` and reused
by a rerun; the result is ``WORK/importance.nc`` (the same file ``xsomo experiment importance``
writes, which ``xsomo report --importance`` shows).
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import xarray as xr

import xsomo
from xsomo import conventions as cv
from xsomo.evaluation.importance import input_importance
from xsomo.io.atomic import atomic_path
from xsomo.model import TrainedModel
from xsomo.report import plotting

#: The model trained without ``--model``: the demo preset, as ``make demo`` trains it (seed 0).
TRAINING = {"preset": "demo", "layers": (1, 2, 3), "seed": 0}


def truth_targets(world: pathlib.Path, drivers: xr.Dataset, exclude: xr.Dataset, *, cells: int, seed: int) -> xr.Dataset:
    """The truth ``sm(cell, layer, time)`` at ``cells`` random land cells holding no cell of ``exclude``."""
    # loaded first: point-wise indexing of the lazily read file is very slow
    truth = xr.open_dataset(world / "truth.nc")[cv.SM].load().sel({cv.TIME: drivers[cv.TIME]})
    truth = truth.sel({cv.LAT: drivers[cv.LAT], cv.LON: drivers[cv.LON]}, method="nearest")
    truth = truth.assign_coords({cv.LAT: drivers[cv.LAT], cv.LON: drivers[cv.LON]}).transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON)
    land = np.argwhere(truth.isel({cv.LAYER: 0, cv.TIME: 0}).notnull().values)
    taken = {(round(float(a), 4), round(float(b), 4)) for a, b in zip(exclude[cv.LAT].values, exclude[cv.LON].values, strict=True)}
    lat, lon = drivers[cv.LAT].values, drivers[cv.LON].values
    free = np.array([(i, j) for i, j in land if (round(float(lat[i]), 4), round(float(lon[j]), 4)) not in taken])
    pick = free[np.sort(np.random.default_rng(seed).choice(len(free), size=min(cells, len(free)), replace=False))]
    ii, jj = xr.DataArray(pick[:, 0], dims="cell"), xr.DataArray(pick[:, 1], dims="cell")
    sm = truth.isel({cv.LAT: ii, cv.LON: jj})
    return xr.Dataset(
        {cv.SM: (("cell", cv.LAYER, cv.TIME), sm.transpose("cell", cv.LAYER, cv.TIME).values.astype("float32"))},
        coords={"cell": np.arange(len(pick)), cv.LAT: ("cell", lat[pick[:, 0]]), cv.LON: ("cell", lon[pick[:, 1]]),
                cv.LAYER: truth[cv.LAYER].values, cv.TIME: truth[cv.TIME].values},
    )  # fmt: skip


def main(argv: list[str] | None = None) -> xr.Dataset:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", type=pathlib.Path, required=True)
    p.add_argument("--prepared", type=pathlib.Path, required=True)
    p.add_argument("--work", type=pathlib.Path, required=True, help="folder for the model and the result")
    p.add_argument("--model", type=pathlib.Path, help="a trained model folder (e.g. demo_out/model) instead of training one")
    p.add_argument("--figure", type=pathlib.Path)
    p.add_argument("--cells", type=int, default=150, help="truth cells scored (default 150)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-only", action="store_true")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    a.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    drivers = xr.open_dataset(a.prepared / "drivers.nc")
    targets = xr.open_dataset(a.prepared / "targets.nc")
    folder = a.model or a.work / "model"
    if folder.exists():
        model = TrainedModel.load(folder)
        print("model loaded from", folder)
    else:
        model = xsomo.train_lstm(drivers, targets, progress=False, device="cpu", **TRAINING)
        model.save(folder)
        print(f"trained in {time.time() - t0:.0f} s: {TRAINING}")
    if a.train_only:
        return xr.Dataset()
    t1 = time.time()
    test = truth_targets(a.world, drivers, targets, cells=a.cells, seed=0)
    print(f"truth at {test.sizes['cell']} cells in {time.time() - t1:.0f} s", flush=True)
    res = input_importance(model, drivers.load(), test, repeats=a.repeats, seed=0)
    res.attrs["model"] = str(folder.resolve()) if a.model else str(TRAINING)
    res.attrs["scored_against"] = f"the world's truth at {test.sizes['cell']} random land cells without training targets"
    with atomic_path(a.work / "importance.nc") as tmp:
        res.to_netcdf(tmp)
    print(f"importance in {time.time() - t1:.0f} s")
    print("median r / NSE intact:", res.r.values.round(3), res.nse.values.round(3))
    for m in ("r_drop", "nse_drop"):
        print(m)
        print(res[m].median("repeat").to_pandas().round(3).to_string())
        print("spread (max - min over repeats)")
        print((res[m].max("repeat") - res[m].min("repeat")).to_pandas().round(3).to_string())
    if a.figure:
        plotting.save(plotting.importance_bars(res), a.figure, dpi=110)
    return res


if __name__ == "__main__":
    main()
