"""The metric and anomaly kernels (in-place temporaries) against their plain numpy expressions."""

from __future__ import annotations

import numpy as np
import pytest

from xsomo.evaluation import anomaly_kernels as ak
from xsomo.evaluation import scores as mt


def _ref_moments(sim, obs):
    sim = np.asarray(sim, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    mask = np.isfinite(sim) & np.isfinite(obs)
    n = mask.sum(axis=-1)
    s, o = np.where(mask, sim, 0.0), np.where(mask, obs, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(n > 0, n, np.nan)
        ms, mo = s.sum(-1) / nn, o.sum(-1) / nn
        ds = np.where(mask, s - ms[..., None], 0.0)
        do = np.where(mask, o - mo[..., None], 0.0)
        return {
            "n": n,
            "ms": ms,
            "mo": mo,
            "vs": (ds * ds).sum(-1) / nn,
            "vo": (do * do).sum(-1) / nn,
            "cov": (ds * do).sum(-1) / nn,
            "mse": ((s - o) ** 2).sum(-1) / nn,
            "vd": ((ds - do) ** 2).sum(-1) / nn,
        }


def _ref_metrics(sim, obs, min_days):
    m = _ref_moments(sim, obs)
    with np.errstate(invalid="ignore", divide="ignore"):
        ss, so = np.sqrt(m["vs"]), np.sqrt(m["vo"])
        r = m["cov"] / (ss * so)
        kge = 1.0 - np.sqrt((r - 1) ** 2 + (ss / so - 1) ** 2 + (m["ms"] / m["mo"] - 1) ** 2)
        out = np.stack(
            [
                r,
                np.sqrt(m["vd"]),
                m["ms"] - m["mo"],
                np.sqrt(m["mse"]),
                1.0 - m["mse"] / m["vo"],
                kge,
            ],
            axis=-1,
        )
    out = np.where(np.isfinite(out), out, np.nan)
    out = np.where(m["n"][..., None] >= max(min_days, 2), out, np.nan)
    return np.concatenate([m["n"][..., None].astype(np.float64), out], axis=-1)


def _ref_daily_anomalies(x, doy, window, standardise, min_count):
    x = np.asarray(x, np.float64)
    x2 = x.reshape(-1, x.shape[-1])
    valid = np.isfinite(x2)
    x0 = np.where(valid, x2, 0.0)
    cnt = ak.circular_window_sum(ak.doy_sums(valid.astype(np.float64), doy), window)
    s1 = ak.circular_window_sum(ak.doy_sums(x0, doy), window)
    s2 = ak.circular_window_sum(ak.doy_sums(x0 * x0, doy), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        std = np.sqrt(np.maximum(s2 / cnt - mean * mean, 0.0) * cnt / (cnt - 1))
    mean = np.where(cnt >= min_count, mean, np.nan).reshape((*x.shape[:-1], 366))
    std = std.reshape((*x.shape[:-1], 366))
    anom = x - mean[..., doy]
    if standardise:
        with np.errstate(invalid="ignore", divide="ignore"):
            s = std[..., doy]
            anom = np.where(s > 0, anom / s, np.nan)
    return anom


def _series(rng, shape, dtype):
    obs = (0.3 + 0.05 * rng.standard_normal(shape)).astype(dtype)
    sim = (0.8 * obs + 0.06 + 0.02 * rng.standard_normal(shape)).astype(dtype)
    sim[..., rng.uniform(size=shape[-1]) < 0.1] = np.nan
    obs[rng.uniform(size=shape) < 0.05] = np.nan
    sim[0, 0] = np.nan  # a cell without data
    obs[1, 1, 5:] = np.nan  # a cell below min_days
    return sim, obs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_metrics_equal_plain_expressions_and_inputs_untouched(dtype):
    rng = np.random.default_rng(3)
    sim, obs = _series(rng, (2, 5, 800), dtype)
    sim0, obs0 = sim.copy(), obs.copy()
    np.testing.assert_array_equal(mt.np_metrics(sim, obs, min_days=30), _ref_metrics(sim, obs, 30))
    np.testing.assert_array_equal(
        mt.np_pearson_r(sim, obs, min_days=30), _ref_metrics(sim, obs, 30)[..., 1]
    )
    # broadcasting: one reference series against several simulations
    np.testing.assert_array_equal(
        mt.np_metrics(sim, obs[0], min_days=30), _ref_metrics(sim, obs[0], 30)
    )
    np.testing.assert_array_equal(sim, sim0)
    np.testing.assert_array_equal(obs, obs0)


@pytest.mark.parametrize("standardise", [True, False])
def test_daily_anomalies_and_anomaly_r_equal_plain_expressions(standardise):
    rng = np.random.default_rng(4)
    time = np.arange(np.datetime64("2015-01-01"), np.datetime64("2018-12-31"))
    doy = ak.clim_doy(time)
    sim, obs = _series(rng, (2, 3, time.size), np.float32)
    obs += (0.05 * np.sin(2 * np.pi * doy / 365.0)).astype(np.float32)
    obs0 = obs.copy()
    got = ak.daily_anomalies(obs, doy, standardise=standardise, min_count=10)
    np.testing.assert_array_equal(got, _ref_daily_anomalies(obs, doy, 31, standardise, 10))
    np.testing.assert_array_equal(obs, obs0)
    mask = np.isfinite(sim) & np.isfinite(obs)
    a_s = _ref_daily_anomalies(np.where(mask, sim, np.nan), doy, 31, False, 2)
    a_o = _ref_daily_anomalies(np.where(mask, obs, np.nan), doy, 31, False, 2)
    want = _ref_metrics(a_s, a_o, 30)[..., 1]
    np.testing.assert_array_equal(mt.np_anomaly_r(sim, obs, doy, min_days=30), want)
    assert np.isfinite(want).sum() >= 4 and np.isnan(want).any()
