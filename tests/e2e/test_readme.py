"""The README's "In a notebook" snippet runs as written (on the tiny world, with tiny training).

The code block is read from README.md, so a README change that breaks the snippet fails here.
Two substitutions make it run in minutes instead of hours; each must match exactly once, so a
README edit of those lines fails loudly and this list must be updated with it:

- the ``demo`` sample world becomes the ``tiny`` one (same call, smaller world);
- ``train_lstm(targets)`` gets small explicit settings (the paper's defaults train 5 members of
  128 units for 30 epochs: hours on a CPU).

Everything else (imports, readers, accessor calls, paths, the files and the metrics) runs verbatim
in a fresh folder.
"""

from __future__ import annotations

import os
import pathlib
import re
import warnings

import numpy as np
import pytest
import xarray as xr

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"

#: train_lstm settings for the tiny world (a minute on 2 cores).
TINY_TRAINING = (
    'ensemble=1, hidden=16, lookback=90, seq_length=90, epochs=3, steps_per_epoch=10, batch_size=16, '
    'lr=1e-2, progress=False'
)
SUBSTITUTIONS = (
    ('xsomo.sample.generate("demo", seed=0, out="world")', 'xsomo.sample.generate("tiny", seed=0, out="world")'),
    ("drivers.somo.train_lstm(targets)", f"drivers.somo.train_lstm(targets, {TINY_TRAINING})"),
)


def notebook_snippet(text: str) -> str:
    """The first ```python block after the "## In a notebook" heading."""
    head = text.index("## In a notebook")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, head)
    assert match, "README: no ```python block after '## In a notebook'"
    return match.group(1)


def test_snippet_is_found_and_substitutions_apply():
    code = notebook_snippet(README.read_text(encoding="utf-8"))
    for old, _ in SUBSTITUTIONS:
        assert code.count(old) == 1, f"README snippet changed: {old!r} not found exactly once; update {__file__}"
    compile(code, "README.md", "exec")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_readme_notebook_snippet_runs(tmp_path, monkeypatch):
    code = notebook_snippet(README.read_text(encoding="utf-8"))
    for old, new in SUBSTITUTIONS:
        assert code.count(old) == 1, f"README snippet changed: {old!r} not found exactly once; update {__file__}"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    ns: dict = {"__name__": "__readme__"}
    # as in a notebook, warnings are shown, not raised (the suite turns xsomo's warnings into errors)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, "README.md (In a notebook)", "exec"), ns)
    for w in caught:
        print(f"README snippet warned: {w.category.__name__}: {w.message}")

    import xsomo
    from xsomo.model import TrainedModel

    world = ns["world"]
    assert pathlib.Path(world).resolve() == (tmp_path / "world").resolve()
    assert isinstance(ns["model"], TrainedModel)
    sm = ns["sm"]
    assert set(sm["sm"].dims) == {"layer", "time", "lat", "lon"}
    assert sm["layer"].values.tolist() == [1, 2, 3]
    # the files the snippet wrote: one per layer and year of the prediction, readable back
    files = sorted(p.name for p in (tmp_path / "out").glob("*.nc"))
    years = sorted(set(sm["time"].dt.year.values.tolist()))
    assert files == sorted(f"SoMo.ml-EU_layer{n}_{y}.nc" for n in (1, 2, 3) for y in years)
    back = xsomo.open_somo(tmp_path / "out")
    assert back["time"].values.tolist() == sm["time"].values.tolist()
    assert np.isfinite(back["sm"].isel(time=-1).values).any()
    # metrics at every COSMOS-like station of the world, finite where the station has data
    metrics = ns["metrics"]
    cosmos = xsomo.open_cosmos(world / "cosmos")
    assert sorted(metrics["station"].values.tolist()) == sorted(cosmos["station"].values.tolist())
    r = metrics["pearson_r"]
    assert np.isfinite(r.values).any()
    assert ((r > -1.0 - 1e-12) & (r < 1.0 + 1e-12)).where(np.isfinite(r), True).all()
    assert isinstance(metrics, xr.Dataset) and "n" in metrics
    assert os.listdir(tmp_path)  # ran in the temp folder, not the checkout
