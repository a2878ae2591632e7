"""Metric kernels against scipy/numpy references, NaN handling, dask equality and laziness."""

from __future__ import annotations

import contextlib

import dask
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr

from xsomo import evaluation as ev
from xsomo.exceptions import XsomoValueError


class _CountingScheduler:
    """A dask scheduler that raises once more than ``max_computes`` computes happen (xarray tests)."""

    def __init__(self, max_computes: int = 0) -> None:
        self.total = 0
        self.max_computes = max_computes

    def __call__(self, dsk, keys, **kwargs):
        self.total += 1
        if self.total > self.max_computes:
            raise RuntimeError(f"too many dask computations: {self.total} > {self.max_computes}")
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0):
    with dask.config.set(scheduler=_CountingScheduler(max_computes)):
        yield


def _pair(seed: int = 0, ncell: int = 6, ntime: int = 3 * 365, gaps: float = 0.2):
    rng = np.random.default_rng(seed)
    time = pd.date_range("2001-01-01", periods=ntime, freq="D")
    season = np.sin(2 * np.pi * np.arange(ntime) / 365.25)
    obs = 0.25 + 0.08 * season[None, :] + 0.03 * rng.standard_normal((ncell, ntime))
    sim = 0.8 * obs + 0.07 + 0.02 * rng.standard_normal((ncell, ntime))
    obs[rng.random(obs.shape) < gaps] = np.nan
    sim[rng.random(sim.shape) < gaps] = np.nan
    coords = {"cell": np.arange(ncell), "time": time}
    return (
        xr.DataArray(sim, dims=("cell", "time"), coords=coords),
        xr.DataArray(obs, dims=("cell", "time"), coords=coords),
    )


def _reference(s: np.ndarray, o: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(s) & np.isfinite(o)
    s, o = s[ok], o[ok]
    r = scipy.stats.pearsonr(s, o).statistic
    b = np.mean(s - o)
    rmse = np.sqrt(np.mean((s - o) ** 2))
    urmsd = np.std((s - np.mean(s)) - (o - np.mean(o)))
    nse = 1 - np.sum((s - o) ** 2) / np.sum((o - np.mean(o)) ** 2)
    kge = 1 - np.sqrt((r - 1) ** 2 + (np.std(s) / np.std(o) - 1) ** 2 + (np.mean(s) / np.mean(o) - 1) ** 2)
    return {"pearson_r": r, "bias": b, "rmse": rmse, "urmsd": urmsd, "nse": nse, "kge": kge, "n": ok.sum()}


def test_metrics_match_scipy_numpy_references():
    sim, obs = _pair()
    out = ev.metrics(sim, obs, anomaly=False)
    for c in range(sim.sizes["cell"]):
        ref = _reference(sim.values[c], obs.values[c])
        for name, val in ref.items():
            np.testing.assert_allclose(float(out[name][c]), val, rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("name", ["pearson_r", "rmse", "bias", "urmsd", "nse", "kge"])
def test_single_metric_functions_agree_with_fused_kernel(name):
    sim, obs = _pair(seed=1)
    fused = ev.metrics(sim, obs, anomaly=False)[name]
    single = getattr(ev, name)(sim, obs)
    np.testing.assert_allclose(single.values, fused.values, rtol=1e-10)


def test_xskillscore_agrees_on_complete_data():
    import xskillscore as xs

    sim, obs = _pair(seed=2, gaps=0.0)
    out = ev.metrics(sim, obs, anomaly=False)
    np.testing.assert_allclose(out["pearson_r"], xs.pearson_r(sim, obs, dim="time"), rtol=1e-10)
    np.testing.assert_allclose(out["rmse"], xs.rmse(sim, obs, dim="time"), rtol=1e-10)
    np.testing.assert_allclose(out["bias"], xs.me(sim, obs, dim="time"), rtol=1e-10)


def test_min_days_gives_nan_below_threshold():
    sim, obs = _pair(seed=3, ncell=2, ntime=100, gaps=0.0)
    obs = obs.copy()
    obs[0, 10:] = np.nan  # cell 0 keeps 10 common days
    out = ev.metrics(sim, obs, min_days=20, anomaly=False)
    assert int(out["n"][0]) == 10
    assert all(np.isnan(float(out[m][0])) for m in ("pearson_r", "urmsd", "bias", "rmse", "nse", "kge"))
    assert np.isfinite(float(out["pearson_r"][1]))
    assert np.isnan(float(ev.pearson_r(sim, obs, min_days=20)[0]))
    assert np.isfinite(float(ev.pearson_r(sim, obs, min_days=5)[0]))


def test_perfect_and_shifted_series():
    _sim, obs = _pair(seed=4, gaps=0.1)
    same = ev.metrics(obs, obs, anomaly=False)
    np.testing.assert_allclose(same["pearson_r"], 1.0)
    np.testing.assert_allclose(same["nse"], 1.0)
    np.testing.assert_allclose(same["kge"], 1.0)
    shifted = ev.metrics(obs + 0.05, obs, anomaly=False)
    np.testing.assert_allclose(shifted["bias"], 0.05, rtol=1e-9)
    np.testing.assert_allclose(shifted["urmsd"], 0.0, atol=1e-12)
    np.testing.assert_allclose(shifted["rmse"], 0.05, rtol=1e-9)


def _anomaly_reference(x: pd.Series, window: int = 31) -> pd.Series:
    """Per-date loop: mean over all dates within window//2 calendar days (leap-year calendar)."""
    doy = np.array([pd.Timestamp(2000, t.month, t.day).day_of_year - 1 for t in x.index])
    out = np.full(len(x), np.nan)
    vals = x.to_numpy()
    for k, d in enumerate(doy):
        dist = np.abs(doy - d)
        dist = np.minimum(dist, 366 - dist)
        sel = (dist <= window // 2) & np.isfinite(vals)
        out[k] = vals[k] - vals[sel].mean()
    return pd.Series(out, index=x.index)


def test_anomaly_r_against_loop_reference():
    sim, obs = _pair(seed=5, ncell=2, ntime=2 * 365 + 40, gaps=0.15)
    got = ev.anomaly_r(sim, obs, min_days=30)
    for c in range(2):
        s = sim.isel(cell=c).to_series()
        o = obs.isel(cell=c).to_series()
        both = s.notna() & o.notna()
        a_s = _anomaly_reference(s.where(both))
        a_o = _anomaly_reference(o.where(both))
        ok = a_s.notna() & a_o.notna()
        ref = scipy.stats.pearsonr(a_s[ok], a_o[ok]).statistic
        np.testing.assert_allclose(float(got[c]), ref, rtol=1e-8)


def test_anomaly_r_removes_the_seasonal_cycle():
    # two series sharing only a seasonal cycle: high r, anomaly r near zero
    rng = np.random.default_rng(6)
    t = pd.date_range("2001-01-01", periods=6 * 365, freq="D")
    season = np.sin(2 * np.pi * np.arange(t.size) / 365.25)
    a = xr.DataArray(season + 0.2 * rng.standard_normal(t.size), coords={"time": t})
    b = xr.DataArray(season + 0.2 * rng.standard_normal(t.size), coords={"time": t})
    assert float(ev.pearson_r(a, b)) > 0.9
    assert abs(float(ev.anomaly_r(a, b))) < 0.1


def test_anomalies_zscores_against_loop_reference():
    rng = np.random.default_rng(7)
    t = pd.date_range("2001-01-01", periods=3 * 365, freq="D")
    x = 0.2 + 0.05 * np.sin(2 * np.pi * np.arange(t.size) / 365.25) + 0.01 * rng.standard_normal(t.size)
    x[rng.random(t.size) < 0.1] = np.nan
    da = xr.DataArray(x, coords={"time": t}, name="sm")
    z = ev.anomalies(da.to_dataset())["sm_anomaly"].values
    doy = np.array([pd.Timestamp(2000, d.month, d.day).day_of_year - 1 for d in t])
    ref = np.full(t.size, np.nan)
    for k, d in enumerate(doy):
        dist = np.minimum(np.abs(doy - d), 366 - np.abs(doy - d))
        sel = (dist <= 15) & np.isfinite(x)
        ref[k] = (x[k] - x[sel].mean()) / x[sel].std(ddof=1)
    np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-5)


def test_anomalies_baseline_and_plain():
    t = pd.date_range("2001-01-01", periods=4 * 365, freq="D")
    x = np.where(t.year >= 2003, 0.3, 0.2) + 0.0 * np.arange(t.size)
    x = x + 0.001 * np.random.default_rng(0).standard_normal(t.size)
    da = xr.DataArray(x, coords={"time": t}, name="sm")
    with pytest.warns(RuntimeWarning, match="2 years of data"):
        plain = ev.anomalies(da, baseline=("2001", "2002"), standardise=False)["sm_anomaly"]
    # against the wet-free baseline, the later years sit 0.1 above
    np.testing.assert_allclose(float(plain.sel(time="2004").mean()), 0.1, atol=0.002)
    with pytest.raises(XsomoValueError):
        ev.anomalies(da, baseline=("1990", "1991"))


def test_anomalies_baseline_years_and_months_are_whole():
    """baseline=("2001", "2002") ended on 2002-01-01 (the end read as a day, not a year)."""
    from xsomo.evaluation.climatology import _baseline_mask

    t = pd.date_range("2001-01-01", periods=4 * 365, freq="D")
    da = xr.DataArray(np.zeros(t.size), coords={"time": t})
    for base in (("2001", "2002"), ("2001-06", "2002-06"), slice("2001-03-02", "2002-02-28")):
        sl = base if isinstance(base, slice) else slice(*base)
        np.testing.assert_array_equal(_baseline_mask(da.time, base), np.isin(t, da.sel(time=sl).time.values))
    x = np.where(t.year == 2002, 0.3, 0.2) + 0.001 * np.random.default_rng(0).standard_normal(t.size)
    with pytest.warns(RuntimeWarning, match="2 years of data"):
        plain = ev.anomalies(xr.DataArray(x, coords={"time": t}), baseline=("2001", "2002"), standardise=False)
    # the baseline holds both years: 2002's values sit half the step above its mean
    np.testing.assert_allclose(float(plain["sm_anomaly"].sel(time="2002").mean()), 0.05, atol=0.003)


def test_a_baseline_or_climatology_beyond_the_data_warns_and_long_periods_are_refused():
    """A 1991-2020 baseline on data of 2014-2020 gave the whole record's anomalies, and a
    period anomaly was tagged 1991-2020, without a word; a 2-year period was scored against
    windows overlapping it (hostile-input QA)."""
    from xsomo.evaluation.climatology import period_anomaly

    t = pd.date_range("2014-01-01", "2020-12-31", freq="D")
    x = 0.2 + 0.05 * np.sin(np.arange(t.size) * 2 * np.pi / 365.25) + 0.01 * np.random.default_rng(2).standard_normal(t.size)
    da = xr.DataArray(x, coords={"time": t}, name="sm")
    with pytest.warns(RuntimeWarning, match=r"baseline \('1991', '2020'\): the data cover only 2014-01-01 .. 2020-12-31"):
        z = ev.anomalies(da, baseline=("1991", "2020"))["sm_anomaly"]
    assert z.attrs["climatology_days"] == "2014-01-01/2020-12-31"
    with pytest.warns(RuntimeWarning, match=r"climatology 1991-2020: .* in 7 of its years only \(2014-2020\)"):
        p = period_anomaly(da, ("2016-06-01", "2016-08-31"), climatology=(1991, 2020))
    assert p.attrs["reference_years"] == "2014-2020" and p.attrs["n_years"] == 7
    with pytest.raises(XsomoValueError, match=r"longer than a year.*stat='mean'"):
        period_anomaly(da, ("2015-01-01", "2016-12-31"))


def test_daily_climatology_names_its_calendar_days():
    """dayofyear counts on a leap-year calendar (60 = 29 February): xarray's dt.dayofyear was
    one day off from March in common years (hostile-input QA); month/day name each row, and the
    documented lookup gives xsomo's own anomalies."""
    from xsomo.evaluation import anomaly_kernels as ak
    from xsomo.evaluation.climatology import daily_climatology

    t = pd.date_range("2014-01-01", "2020-12-31", freq="D")
    da = xr.DataArray(0.2 + 0.05 * np.sin(np.arange(t.size) / 58.0) + 0.01 * np.random.default_rng(0).standard_normal(t.size),
                      coords={"time": t}, name="sm")  # fmt: skip
    clim = daily_climatology(da)
    assert (int(clim.month.sel(dayofyear=60)), int(clim.day.sel(dayofyear=60))) == (2, 29)
    assert (int(clim.month.sel(dayofyear=61)), int(clim.day.sel(dayofyear=61))) == (3, 1)
    doy = xr.DataArray(ak.clim_doy(da.time.values) + 1, dims="time")
    z = (da - clim["mean"].sel(dayofyear=doy).values) / clim["std"].sel(dayofyear=doy).values
    np.testing.assert_allclose(z.values, ev.anomalies(da)["sm_anomaly"].values, atol=1e-5)


def test_dask_equals_numpy_and_stays_lazy():
    sim, obs = _pair(seed=8, ncell=8)
    expected = ev.metrics(sim, obs)
    dsim = sim.chunk({"cell": 3, "time": 200})
    dobs = obs.chunk({"cell": 3, "time": 200})
    with raise_if_dask_computes():
        lazy = ev.metrics(dsim, dobs)
        lazy_r = ev.pearson_r(dsim, dobs)
        lazy_z = ev.anomalies(dsim.rename("sm"))
    assert lazy["kge"].chunks is not None and lazy_r.chunks is not None
    assert lazy_z["sm_anomaly"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), expected)
    xr.testing.assert_allclose(lazy_r.compute(), ev.pearson_r(sim, obs))
    xr.testing.assert_allclose(lazy_z.compute(), ev.anomalies(sim.rename("sm")))


def test_summer_mean():
    t = pd.date_range("2001-01-01", periods=2 * 365, freq="D")
    da = xr.DataArray(t.month.to_numpy().astype(float), coords={"time": t}, name="sm")
    assert float(ev.summer_mean(da)) == pytest.approx((6 * 30 + 7 * 31 + 8 * 31) / 92)
    per_year = ev.summer_mean(da, by_year=True)
    assert per_year.sizes["year"] == 2
