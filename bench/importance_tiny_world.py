"""Input importance on the tiny sample world (docs/hawaii.md).

A ``tiny`` model trained on the world's truth at 60 land cells, scored against the truth at
40 other land cells (3 shuffles per input). Generate the world first, then run::

    python -c 'import xsomo; xsomo.sample.generate("tiny", seed=7, out="/tmp/tw")'
    PYTHONPATH=. python bench/importance_tiny_world.py /tmp/tw docs/img/importance_tiny_world.png
"""

from __future__ import annotations

import sys
import time

import xarray as xr

import xsomo
from xsomo import testing
from xsomo.evaluation.importance import input_importance
from xsomo.report import plotting


def main(world: str, figure: str | None = None) -> xr.Dataset:
    t0 = time.time()
    drivers = xsomo.open_drivers(world).load()
    truth = xr.open_dataset(f"{world}/truth.nc")["sm"]
    sm = truth.sel(lat=drivers.lat, lon=drivers.lon, method="nearest").assign_coords(lat=drivers.lat, lon=drivers.lon)
    cells = testing.synthetic_targets(sm, cells=100, seed=1, noise=0.0, gap_fraction=0.0)
    train, test = cells.isel(cell=slice(0, 60)), cells.isel(cell=slice(60, 100))
    model = xsomo.train_lstm(
        drivers, train, preset="tiny", epochs=6, steps_per_epoch=20, progress=False, device="cpu",
        forget_tolerance=0.0, lookback=90, seq_length=90,
    )  # fmt: skip
    print(f"trained in {time.time() - t0:.0f} s")
    res = input_importance(model, drivers, test, repeats=3, seed=0)
    print("median r / NSE intact:", res.r.values.round(3), res.nse.values.round(3))
    print(res.r_drop.median("repeat").to_pandas().round(3).to_string())
    print(res.nse_drop.median("repeat").to_pandas().round(3).to_string())
    if figure:
        plotting.save(plotting.importance_bars(res), figure, dpi=110)
    print(f"total {time.time() - t0:.0f} s")
    return res


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
