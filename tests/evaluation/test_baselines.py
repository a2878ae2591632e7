"""Baselines of the Hawaii case (issue 18 item 2): day-of-year climatology and a fitted API."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo.evaluation.baselines import (
    API_DECAYS,
    antecedent_precipitation_index,
    api_baseline,
    climatology_baseline,
)

TIME = pd.date_range("2001-01-01", "2004-12-31")


def _da(values):
    return xr.DataArray(np.atleast_2d(values), dims=("station", "time"), coords={"station": ["a"], "time": TIME})


def test_api_recovers_the_decay_and_mapping_it_was_made_with():
    rng = np.random.default_rng(0)
    p = np.where(rng.random(TIME.size) < 0.3, rng.gamma(0.8, 8.0, TIME.size), 0.0)
    k = API_DECAYS[25]
    api = np.zeros(TIME.size)
    for t in range(TIME.size):  # written out here, not with the function under test
        api[t] = (api[t - 1] * k if t else 0.0) + p[t]
    obs = 0.1 + 0.004 * api + rng.normal(0, 0.002, TIME.size)
    train = xr.DataArray((TIME.year <= 2002)[None], dims=("station", "time"))
    pred, params = api_baseline(_da(obs), _da(p), train)
    assert params["k"][0] == k
    assert params["a"][0] == pytest.approx(0.1, abs=0.002) and params["b"][0] == pytest.approx(0.004, rel=0.02)
    test = TIME.year > 2002
    assert np.corrcoef(pred.values[0, test], obs[test])[0, 1] > 0.95
    np.testing.assert_allclose(antecedent_precipitation_index(p, k), api)


def test_climatology_uses_only_the_training_days():
    doy = TIME.day_of_year.to_numpy()
    seasonal = 0.25 + 0.1 * np.sin(2 * np.pi * doy / 365.25)
    obs = np.where(TIME.year <= 2002, seasonal, 0.9)  # the test years are far off
    clim = climatology_baseline(_da(obs), slice("2001-01-01", "2002-12-31"))
    assert float(np.nanmax(clim.values)) < 0.36
    test = TIME.year > 2002
    assert np.corrcoef(clim.values[0, test], seasonal[test])[0, 1] > 0.99


@pytest.mark.slow
def test_hawaii_case_beats_both_baselines(real_data):
    """The Hawaii SCAN case end to end (bench/hawaii_scan.py, ~10 min on a busy 2-core machine)."""
    if not (real_data / "hawaii-scan-forcing").is_dir():
        pytest.skip("hawaii-scan-forcing not in the real-data folder")
    path = pathlib.Path(__file__).resolve().parents[2] / "bench" / "hawaii_scan.py"
    spec = importlib.util.spec_from_file_location("hawaii_scan", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table = mod.run(real_data, None, select=os.environ.get("XSOMO_HAWAII_SELECT", "1") == "1", importance=False)
    for st in ("PuaAkala", "SilverSword"):
        row = table[st]
        assert row["xsomo"]["n"] > 300
        assert row["xsomo"]["r"] > row["climatology"]["r"], (st, row)
        assert row["xsomo"]["r"] > row["api"]["r"], (st, row)
    assert table["PuaAkala"]["xsomo"]["r"] >= 0.5, table["PuaAkala"]
