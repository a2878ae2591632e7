"""The sample world's physics kernels against straightforward per-cell reference loops."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xsomo.sample import physics as ph
from xsomo.sample.writers.cosmos import frame_csv


def _reference_exchange(w, w_min, w_max, psi_s, b, k_s, dz, substeps):
    """The Darcy exchange cell by cell with ``exp`` of the mean ``log K`` (the textbook form)."""
    w = w.copy()
    n_lay, n_cell = w.shape
    drain = np.zeros(n_cell)
    dt = 1.0 / substeps
    for c in range(n_cell):
        for _ in range(substeps):
            log_k, psi = [], []
            for i in range(n_lay):
                s = min(max(w[i, c] / w_max[i, c], 1e-3), 1.0)
                log_k.append(math.log(k_s[i, c]) + (2.0 * b[i, c] + 3.0) * math.log(s))
                psi.append(min(psi_s[i, c] * s ** (-b[i, c]), 1.0e7))
            avail = [w[i, c] - w_min[i, c] for i in range(n_lay)]
            space = [w_max[i, c] - w[i, c] for i in range(n_lay)]
            flows = []
            for i in range(n_lay - 1):
                kbar = math.exp(0.5 * (log_k[i] + log_k[i + 1]))
                q = kbar * ((psi[i + 1] - psi[i]) / dz[i] + 1.0) * dt
                down = min(max(q, 0.0), 0.5 * min(avail[i], space[i + 1]))
                up = min(max(-q, 0.0), 0.5 * min(avail[i + 1], space[i]))
                flows.append(down - up)
            q_bot = min(math.exp(log_k[-1]) * dt, 0.5 * avail[-1])
            for i, fl in enumerate(flows):
                w[i, c] -= fl
                w[i + 1, c] += fl
            w[-1, c] -= q_bot
            drain[c] += q_bot
    return w, drain


def test_vertical_exchange_matches_reference_loop() -> None:
    rng = np.random.default_rng(5)
    n = 60
    sand = rng.uniform(0.05, 0.9, (3, n))
    clay = rng.uniform(0.02, 0.6, (3, n)) * (1.0 - sand)
    soil = ph.soil_parameters(sand, clay)
    d = ph.TRUTH_THICKNESS_MM[:, None] * np.ones((1, n))
    w_min, w_max = soil.residual * d, soil.porosity * d
    # dry, wet and saturated layers; a frozen top layer in some cells
    w = w_min + rng.uniform(0.0, 1.0, (3, n)) ** 0.5 * (w_max - w_min)
    w[:, :5] = w_max[:, :5]
    w[0, 5:10] = w_min[0, 5:10]
    k_s = soil.k_sat * np.where(rng.uniform(size=(3, n)) < 0.2, 0.05, 1.0)
    centres = np.cumsum(ph.TRUTH_THICKNESS_MM) - ph.TRUTH_THICKNESS_MM / 2.0
    dz = np.diff(centres)
    for substeps in (1, 4):
        want_w, want_drain = _reference_exchange(
            w, w_min, w_max, soil.psi_s, soil.b, k_s, dz, substeps
        )
        got_w = w.copy()
        got_drain = ph.vertical_exchange(
            got_w,
            w_min=w_min,
            w_max=w_max,
            psi_s=soil.psi_s,
            b=soil.b,
            k_s=k_s,
            dz=dz,
            substeps=substeps,
        )
        np.testing.assert_allclose(got_w, want_w, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(got_drain, want_drain, rtol=1e-12, atol=1e-9)
        # water is conserved and moved: the test would not pass on a no-op
        np.testing.assert_allclose(got_w.sum(0) + got_drain, w.sum(0), rtol=1e-13)
        assert np.abs(got_w - w).max() > 1.0


def test_frame_csv_equals_pandas() -> None:
    rng = np.random.default_rng(1)
    n = 500
    values = rng.lognormal(0.0, 3.0, n)
    values[rng.uniform(size=n) < 0.2] = np.nan
    frame = pd.DataFrame(
        {
            "time": [f"2020-01-01 {h % 24:02d}:00:00+00:00" for h in range(n)],
            "x": values,
            "neg": -values * 1e-7,
            "f32": values.astype(np.float32),
            "flag": rng.integers(0, 2, n),
            "all_nan": np.nan,
            "whole": np.round(values),
        }
    )[rng.uniform(size=n) > 0.1]
    want = frame.to_csv(index=False, float_format="%.5g", lineterminator="\n")
    assert frame_csv(frame) == want
    assert frame_csv(frame, "%.3f") == frame.to_csv(
        index=False, float_format="%.3f", lineterminator="\n"
    )
