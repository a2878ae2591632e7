"""A model trained with train_lstm's default forgetting settings forgets its initial state (issue 20 item 2).

On a tiny sample world, train the cascade with train_lstm's defaults for everything that decides
whether the networks forget (the consistency penalty at its default weight and probe cells, the
default lookback and sequence length, dropout, forget-gate bias, initial-state scale) and the
``demo`` preset's network size (64 units, batches of 64, lr 3e-3: the paper's 128 units and batches
of 256 took more than 10 minutes for a few steps on a busy 2-core machine), one member and few
steps; then check on land cells that

- the convergence distance after the default lookback is below ``rollout.DEFAULT_TOLERANCE``;
- ``mode="auto"`` takes the continuous roll-out (and gives its numbers);
- the continuous roll-out equals the windowed one (each day from its own lookback window, the
  method of the paper) within 1e-4 m3 m-3.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import numpy as np
import pytest

import xsomo
from xsomo.model import rollout, training

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

#: Not train_lstm's defaults: the demo preset's size, one member, few steps (see the docstring).
#: 5 epochs, not 3: with 3 the largest land-cell distance was 5.0e-4 to 6.5e-4 on this machine
#: (seeds 0-3; seed 0 only after the training's own retry) and 1.24e-3 in one clean-clone CI run
#: (training is not bit-reproducible across processes), too near the 1e-3 tolerance; with 5,
#: 3.8e-4 (seed 0) and 2.7e-4 (seed 3), no retry. 8, not 5, since xsomo's own dropout mask
#: (another random stream): with 5 epochs the largest |continuous - windowed| over the layers was
#: 1.6e-4 / 5.3e-5 / 2.9e-6 / 2.8e-5 (seeds 0-3; seed 0 above this test's 1e-4), with 8 epochs
#: 2.4e-5 / 3.0e-5 (seeds 0, 1); with torch's dropout and 5 epochs seed 0 gave 8e-6 to 2.5e-5.
#: 12, not 8, since training runs its loops in C (xsomo.model._ckernel: other rounding, another
#: training path): with 8 epochs seed 0 gave 7.7e-6 in one checkout and 1.04e-4 (layer 3) in a
#: clean clone's CI run, where the oneDNN path gave 7.9e-5; with 12, 1.0e-5 in both (seed 0) and
#: 7.1e-5 with seed 1 (2026-12-02, AMD EPYC).
SHORTER = {
    "ensemble": 1, "hidden": 64, "batch_size": 64, "lr": 3e-3, "epochs": 12, "steps_per_epoch": 20,
    "progress": False, "device": "cpu", "seed": 0,
}  # fmt: skip
#: Defaults the test relies on (checked against the model's saved settings).
FORGETTING_DEFAULTS = ("consistency", "consistency_cells", "lookback", "seq_length", "dropout",
                       "initial_forget_bias", "init_state_scale")  # fmt: skip
#: Cells compared window by window (the windowed roll-out costs a lookback per day and cell).
N_CELLS = 12
#: Days after the first valid day compared window by window.
N_DAYS = 60


@pytest.fixture(scope="module")
def trained(tiny_world):
    stations = xsomo.open_ismn(tiny_world / "ismn")
    era5land = xsomo.open_era5land(tiny_world / "era5land")
    targets = stations.somo.scale_to(era5land)
    drivers = xsomo.open_drivers(tiny_world).load()
    # the tiny world's warnings (e.g. too few cells to hold out for validation) are expected:
    # recorded, not turned into errors by the suite's filterwarnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = drivers.somo.train_lstm(targets, **SHORTER)
    for w in caught:
        print(f"train_lstm warned: {w.category.__name__}: {w.message}")
    return drivers, model


def raw_inputs(drivers, model, cells=None):
    land = drivers["land_mask"].values.astype(bool)
    rows, cols = np.nonzero(land)
    if cells is not None:
        pick = np.linspace(0, rows.size - 1, cells).round().astype(int)
        rows, cols = rows[pick], cols[pick]
    dyn = np.stack(
        [drivers[v].transpose("time", "lat", "lon").values[:, rows, cols].T for v in model.config.dynamic], -1
    )
    sta = np.stack([drivers[v].values[rows, cols] for v in model.config.static], -1)
    return dyn, sta


def default_settings() -> dict:
    """train_lstm's defaults: the TrainingConfig dataclass where there is one, else the signature."""
    from xsomo.model import config

    cls = getattr(config, "TrainingConfig", None) or getattr(training, "TrainingConfig", None)
    if cls is not None:
        return dataclasses.asdict(cls())
    return {
        k: p.default
        for k, p in inspect.signature(training.train_lstm).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_defaults_are_used(trained):
    _, model = trained
    defaults = default_settings()
    used = model.config.training
    checked = [k for k in FORGETTING_DEFAULTS if k in defaults and k in used]
    assert {"consistency", "lookback", "seq_length"} <= set(checked), (sorted(defaults), sorted(used))
    for key in checked:
        assert used[key] == defaults[key], key
    assert defaults["consistency"] > 0 and model.config.lookback == defaults["lookback"]


def test_default_model_forgets_and_auto_runs_continuous(trained):
    drivers, model = trained
    lookback = model.config.lookback
    dyn, sta = raw_inputs(drivers, model)
    dist = rollout.convergence_distance(model, dyn, sta, steps=lookback)
    worst = float(np.nanmax(dist))
    assert worst < rollout.DEFAULT_TOLERANCE, f"largest convergence distance {worst:.3g} m3 m-3 after {lookback} d"

    dyn, sta = raw_inputs(drivers, model, cells=N_CELLS)
    n = lookback + N_DAYS
    dyn = dyn[:, :n]
    auto, info = rollout.predict_block(model, dyn, sta, mode="auto", return_info=True)
    assert info.mode == "continuous", info.notes
    cont = rollout.predict_block(model, dyn, sta, mode="continuous")
    np.testing.assert_array_equal(auto, cont)
    win = rollout.predict_block(model, dyn, sta, mode="windowed")
    valid = np.isfinite(win)
    assert valid[..., lookback - 1 :].all() and not valid[..., : lookback - 1].any()
    diff = np.abs(cont[..., lookback - 1 :] - win[..., lookback - 1 :])  # (layer, member, cell, day)
    worst_by_layer = {lay: float(diff[k].max()) for k, lay in enumerate(model.config.layers)}
    share = {lay: float((diff[k] > 1e-4).mean()) for k, lay in enumerate(model.config.layers)}
    print(f"convergence distance {worst:.3g}; |continuous - windowed| max by layer {worst_by_layer}, "
          f"share of cell-days above 1e-4 {share}")  # fmt: skip
    # what auto promises: the continuous roll-out is as good as the windows within the tolerance
    assert max(worst_by_layer.values()) < rollout.DEFAULT_TOLERANCE, worst_by_layer
    # issue 20 item 2: 1e-4 in every layer. Measured (seed 0, this short training): before the
    # penalty's probes started from states the network reached, 8.3e-5 / 1.1e-4 / 3.0e-4 in layers
    # 1 / 2 / 3 (1e-4 held in layer 1 only); after, 1.9e-5 / 3.4e-6 / 1.2e-5 (distance 1.5e-4 with
    # the check's reached-state probe)
    for layer, worst_layer in worst_by_layer.items():
        assert worst_layer < 1e-4, (layer, worst_by_layer)
