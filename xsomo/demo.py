"""The demo pipeline: every step of the method on a generated sample world.

This is what ``xsomo demo`` (and ``make demo``) runs. It uses only the public API, in
the order a user would:

.. code-block:: python

    stations = xsomo.open_ismn(world / "ismn")
    era5land = xsomo.open_era5land(world / "era5land")
    targets = stations.somo.scale_to(era5land)
    drivers = xsomo.open_drivers(world)
    model = drivers.somo.train_lstm(targets)
    sm = drivers.somo.predict(model)
    sm.somo.to_files(out / "sm")
    metrics = sm.somo.evaluate(xsomo.open_cosmos(world / "cosmos"))

Finished steps are kept in the output folder and skipped when the command is rerun.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xarray as xr

import xsomo
from xsomo.exceptions import XsomoValueError
from xsomo.io.world import WorldLayout, is_world


def _default_step(name: str) -> float:
    print(f"\n== {name}", flush=True)
    return time.perf_counter()


def _default_done(t0: float, what: str) -> None:
    print(f"   {what} ({time.perf_counter() - t0:.1f} s)", flush=True)


#: Cells and days per cell of the demo report's lookback permutation (memory experiment).
DEMO_MEMORY_CELLS, DEMO_MEMORY_DAYS = 16, 30

#: ``xsomo demo --preset NAME``: (sample-world preset, training preset).
DEMO_PRESETS: dict[str, tuple[str, str]] = {
    "tiny": ("tiny", "tiny"),
    "demo": ("demo", "demo"),
    "paper": ("demo", "paper"),
    "europe": ("europe", "paper"),
}


def demo_presets(name: str) -> tuple[str, str]:
    """The sample-world and training presets of ``xsomo demo --preset name``.

    >>> demo_presets("paper")
    ('demo', 'paper')
    """
    if name not in DEMO_PRESETS:
        raise XsomoValueError(f"unknown demo preset {name!r}; choose one of {sorted(DEMO_PRESETS)}")
    return DEMO_PRESETS[name]


def run_demo(
    out: Path,
    *,
    preset: str = "demo",
    seed: int = 0,
    ensemble: int | None = None,
    epochs: int | None = None,
    fresh: bool = False,
    training_preset: str = "demo",
    step: Callable[[str], float] = _default_step,
    done: Callable[[float, str], None] = _default_done,
) -> dict[str, Any]:
    """Run sample → prepare → train → predict → files → evaluate → report in ``out``.

    ``preset`` names the sample world, ``training_preset`` the training settings
    (:data:`xsomo.model.config.PRESETS`).

    Returns
    -------
    dict
        Paths of the outputs and headline numbers.
    """
    from xsomo.model import TrainedModel
    from xsomo.report import report as report_mod

    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    world = out / "world"
    prepared = out / "prepared"
    model_dir = out / "model"
    sm_dir = out / "sm"
    report_dir = out / "report"

    t0 = step(f"1/6 sample world (preset {preset!r}, seed {seed})")
    if not is_world(world):
        xsomo.sample.generate(preset, seed=seed, out=world)
        done(t0, f"written to {world}")
    else:
        done(t0, f"kept {world}")

    t0 = step("2/6 prepare: ISMN stations scaled to ERA5-Land, drivers on the 0.1° grid")
    targets_path = prepared / "targets.nc"
    drivers_path = prepared / "drivers.nc"
    if not (targets_path.exists() and drivers_path.exists()):
        from xsomo.drivers.sources import prepare

        # through the sources file the world wrote, as a user's own downloads would go
        # (`xsomo prepare --sources world/sources.yml`; docs/own_data.md)
        sources = WorldLayout(world).sources
        if not sources.exists():  # a world written before worlds carried their sources file
            from xsomo.io.sources import sources_for_world, write_sources
            from xsomo.io.world import read_manifest

            write_sources(sources_for_world(world, read_manifest(world)), sources)
        prepare(sources, prepared)
        done(t0, f"targets and drivers from {WorldLayout(world).sources} in {prepared}")
    else:
        done(t0, f"kept {prepared}")
    targets = xr.open_dataset(targets_path)
    drivers = xr.open_dataset(drivers_path, chunks={})

    t0 = step("3/6 train the EA-LSTM cascade (layers 1 → 2 → 3)")
    if (model_dir / "config.json").exists() or (model_dir / "config.yml").exists():
        model = TrainedModel.load(model_dir)
        done(t0, f"kept {model_dir}")
    else:
        kwargs: dict[str, Any] = {}
        if ensemble is not None:
            kwargs["ensemble"] = ensemble
        if epochs is not None:
            kwargs["epochs"] = epochs
        model = drivers.somo.train_lstm(targets, preset=training_preset, run_dir=out / "training", **kwargs)
        model.save(model_dir)
        done(t0, f"model saved to {model_dir}")

    t0 = step("4/6 predict every land cell and write SoMo.ml-EU files")
    # xsomo's models are trained to forget their initial state within the lookback
    # (train_lstm's consistency penalty), so predict()'s per-block convergence check lets the
    # fast continuous roll-out run after the default one-lookback spin-up; a block that did
    # not forget would be predicted window by window instead (exact, ~100x slower), with a warning.
    sm = drivers.somo.predict(model)
    files = sm.somo.to_files(sm_dir)
    done(t0, f"{len(files)} files in {sm_dir}")

    t0 = step("5/6 evaluate against independent COSMOS-like stations")
    cosmos = xsomo.open_cosmos(WorldLayout(world).cosmos)
    sm_files = xsomo.open_somo(sm_dir)
    metrics = sm_files.somo.evaluate(cosmos, training_cells=targets)
    metrics.to_netcdf(out / "metrics.nc")
    done(t0, f"metrics in {out / 'metrics.nc'}")

    t0 = step("6/6 report (with the lookback permutation of the model)")
    from xsomo.evaluation import experiments

    # a smaller sample than the experiment's default (40 cells x 60 days): the curves keep
    # their shape and the demo's report costs 5x less model work
    _, memory = experiments.memory_experiment(
        world, model, drivers=drivers, seed=seed, cells=DEMO_MEMORY_CELLS, days_per_cell=DEMO_MEMORY_DAYS
    )
    index = report_mod.write_report(
        world=world, prediction=sm_dir, out=report_dir, model=model, targets=targets, memory=memory
    )
    done(t0, f"report at {index}")
    return {"world": world, "model": model_dir, "files": sm_dir, "metrics": out / "metrics.nc", "report": index}
