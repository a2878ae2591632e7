"""The one anomaly definition (xsomo.evaluation.anomaly_kernels), shared as one file with the QGIS plugin."""

from __future__ import annotations

import ast
import calendar
import datetime as dt
import pathlib

import numpy as np
import pandas as pd
import pytest

from xsomo.evaluation import anomaly_kernels as ak

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_plugin_shares_the_one_file_and_it_imports_no_xsomo():
    plugin_copy = ROOT / "plugins" / "qgis" / "xsomo_qgis" / "anomaly_kernels.py"
    assert plugin_copy.is_symlink()
    assert plugin_copy.resolve() == pathlib.Path(ak.__file__).resolve()
    tree = ast.parse(pathlib.Path(ak.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "datetime", "numpy"}, imported


def test_clim_doy_is_the_leap_year_calendar():
    t = pd.date_range("2013-01-01", "2017-12-31", freq="D")
    want = np.array([pd.Timestamp(2000, d.month, d.day).day_of_year - 1 for d in t])  # 2000 is a leap year
    np.testing.assert_array_equal(ak.clim_doy(t.to_numpy()), want)


def test_year_windows_move_29_february_to_the_last_day_of_february():
    wins = ak.year_windows(dt.date(2015, 12, 1), dt.date(2016, 2, 29), dt.date(2013, 1, 1), dt.date(2020, 12, 31))
    assert [k for k, _, _ in wins] == [-2, -1, 0, 1, 2, 3, 4]
    for k, s, e in wins:
        assert s == dt.date(2015 + k, 12, 1)
        assert e == dt.date(2016 + k, 2, calendar.monthrange(2016 + k, 2)[1])
    # only windows inside the data, and only those starting in the climatology years
    assert [k for k, _, _ in ak.year_windows(dt.date(2015, 12, 1), dt.date(2016, 2, 29), dt.date(2014, 12, 1),
                                              dt.date(2017, 2, 27))] == [-1, 0]
    assert [k for k, _, _ in ak.year_windows(dt.date(2015, 12, 1), dt.date(2016, 2, 29), dt.date(2013, 1, 1),
                                              dt.date(2020, 12, 31), climatology=(2014, 2016))] == [-1, 0, 1]


def test_period_zscore_needs_three_finite_windows_per_cell():
    rng = np.random.default_rng(0)
    means = rng.random((4, 3))
    means[1:, 2] = np.nan  # one finite window in the last cell
    means[0, 1] = np.nan  # three in the middle one
    m0 = rng.random(3)
    z = ak.period_zscore(m0, means)
    want0 = (m0[0] - means[:, 0].mean()) / means[:, 0].std(ddof=1)
    want1 = (m0[1] - means[1:, 1].mean()) / means[1:, 1].std(ddof=1)
    np.testing.assert_allclose(z[:2], [want0, want1])
    assert np.isnan(z[2])
    assert np.isnan(ak.period_zscore(np.array([1.0]), np.ones((3, 1))))[0]  # no spread


@pytest.mark.parametrize("window", [31, 5])
def test_daily_anomalies_against_a_loop(window):
    rng = np.random.default_rng(1)
    t = pd.date_range("2011-01-01", "2014-12-31", freq="D")
    x = np.sin(2 * np.pi * t.day_of_year.to_numpy() / 365.25) + 0.3 * rng.standard_normal(t.size)
    x[rng.random(t.size) < 0.1] = np.nan
    doy = ak.clim_doy(t.to_numpy())
    z = ak.daily_anomalies(x, doy, window=window)
    half = window // 2
    for k in rng.choice(t.size, 25, replace=False):
        d = doy[k]
        circ = np.minimum(np.abs(doy - d), 366 - np.abs(doy - d))
        vals = x[(circ <= half) & np.isfinite(x)]
        want = (x[k] - vals.mean()) / vals.std(ddof=1) if np.isfinite(x[k]) else np.nan
        np.testing.assert_allclose(z[k], want, rtol=1e-9, atol=1e-12)
