"""The Hawaii SCAN case (issue 18): xsomo learning real surface soil moisture from station forcing.

Train layer 1 on SCAN PuaAkala 2005-2014 and SilverSword 2010-2019 (point drivers from the
stations' own precipitation and air temperature), predict PuaAkala 2015-2018 and SilverSword
2020-2025, and score Pearson r, anomaly r and ubRMSD per station on the test days against
two baselines on the same days: the day-of-year climatology of the training years and an
antecedent precipitation index fitted on the training years.

    PYTHONPATH=. python bench/hawaii_scan.py /work/shared/data/real docs/img/hawaii.png
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import xsomo
from xsomo.evaluation.baselines import api_baseline, climatology_baseline
from xsomo.evaluation.scores import metrics

SITES = ("PuaAkala", "SilverSword")
TRAIN = {"PuaAkala": ("2005-01-01", "2014-12-31"), "SilverSword": ("2010-01-01", "2019-12-31")}
TEST = {"PuaAkala": ("2015-01-01", "2018-12-31"), "SilverSword": ("2020-01-01", "2025-12-31")}
#: Chosen before looking at any test year (small: the data are two stations).
SETTINGS: dict[str, Any] = {
    "layers": (1,), "ensemble": 3, "hidden": 32, "lookback": 90, "seq_length": 90, "epochs": 15,
    "steps_per_epoch": 30, "batch_size": 32, "lr": 3e-3, "patience": 5, "dropout": 0.2,
    "dynamic": ("precipitation", "air_temperature"),
    "static": ("elevation_mean", "precipitation_mean", "air_temperature_mean"),
    "forget_tolerance": 1e-3, "consistency_cells": 0,
}  # fmt: skip


def _period_mask(time: pd.DatetimeIndex, names: np.ndarray, periods: dict[str, tuple[str, str]]) -> np.ndarray:
    out = np.zeros((names.size, time.size), bool)
    for k, n in enumerate(names):
        a, b = periods[str(n)]
        out[k] = (time >= pd.Timestamp(a)) & (time <= pd.Timestamp(b))
    return out


def run(real: str | pathlib.Path, figure: str | pathlib.Path | None = None, *, seed: int = 0, **overrides: Any) -> dict:
    """Run the case; returns the metrics table (dict) and writes the figure if asked."""
    t0 = time.perf_counter()
    ds = xsomo.open_ismn(
        pathlib.Path(real) / "hawaii-scan-forcing", variables=["soil_moisture", "precipitation", "air_temperature"]
    )
    ds = ds.isel(station=np.flatnonzero(np.isin(ds.station_name.values, SITES)))
    days = ds.indexes["time"]
    # climate statics from years that train at both stations
    pts = xsomo.point_drivers(ds, climate=("2005-01-01", "2014-12-31"))
    train_mask = _period_mask(days, ds.station_name.values, TRAIN)
    targets = ds[["sm"]].where(xr.DataArray(train_mask, dims=("station", "time")))
    end = "2019-12-31"
    settings = {**SETTINGS, "seed": seed, **overrides}
    n_train_days = pts.sel(time=slice(None, end)).sizes["time"] - settings["lookback"]
    settings.setdefault("val_fraction", 365.0 / n_train_days)  # the last training year validates
    model = xsomo.train_lstm(
        pts.sel(time=slice(None, end)), targets.sel(time=slice(None, end)), progress=False, device="cpu", **settings
    )
    t_train = time.perf_counter() - t0
    pred = xsomo.predict(pts, model, mode="auto")
    # one observed series per station: the mean of its sensors (they do not overlap in time)
    site = np.array([f"SCAN.{n}" for n in ds.station_name.values])
    obs = ds["sm"].groupby(xr.DataArray(site, dims="station", name="site")).mean().rename(site="station")
    obs = obs.sel(station=pred.station.values)
    names = np.array([s.split(".", 1)[1] for s in obs.station.values])
    sim = pred["sm"].sel(layer=1).transpose("station", "time").reindex(time=obs.time)
    tmask = xr.DataArray(_period_mask(obs.indexes["time"], names, TRAIN), dims=("station", "time"))
    clim = climatology_baseline(obs, tmask)
    precip = pts["precipitation"].reindex(time=obs.time)
    api, params = api_baseline(obs, precip, tmask)
    test = xr.DataArray(_period_mask(obs.indexes["time"], names, TEST), dims=("station", "time"))
    same = test & obs.notnull() & sim.notnull() & clim.notnull() & api.notnull()
    table: dict[str, Any] = {}
    for label, series in (("xsomo", sim), ("climatology", clim), ("api", api)):
        m = metrics(series.where(same), obs.where(same))
        for k, st in enumerate(names):
            table.setdefault(str(st), {})[label] = {
                "r": round(float(m.pearson_r[k]), 3), "anomaly_r": round(float(m.anomaly_r[k]), 3),
                "ubrmsd": round(float(m.urmsd[k]), 4), "n": int(m.n[k]),
            }  # fmt: skip
    table["_info"] = {
        "train_seconds": round(t_train, 1), "total_seconds": round(time.perf_counter() - t0, 1),
        "rollout_mode": pred.attrs.get("rollout_mode"), "spinup_days": pred.attrs.get("spinup_days"),
        "api_k": params["k"].round(4).tolist(), "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "forgetting": {k: v for k, v in model.history.items() if k.endswith("forgetting")},
    }  # fmt: skip
    if figure is not None:
        _figure(figure, names, obs, sim, clim, api, test, table)
    return table


def _figure(path, names, obs, sim, clim, api, test, table) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(names), 1, figsize=(12, 3.2 * len(names)), constrained_layout=True)
    for k, (ax, st) in enumerate(zip(np.atleast_1d(axes), names, strict=True)):
        t = test.isel(station=k)
        sel = {"time": obs.time[t.values]}
        ax.plot(sel["time"], obs.isel(station=k).sel(sel), color="k", lw=1.2, label="observed (SCAN, 5 cm)")
        ax.plot(sel["time"], sim.isel(station=k).sel(sel), color="tab:blue", lw=1, label=f"xsomo (r {table[st]['xsomo']['r']:.2f})")
        ax.plot(sel["time"], clim.isel(station=k).sel(sel), color="tab:orange", lw=1, label=f"climatology (r {table[st]['climatology']['r']:.2f})")
        ax.plot(sel["time"], api.isel(station=k).sel(sel), color="tab:green", lw=0.8, alpha=0.8, label=f"API (r {table[st]['api']['r']:.2f})")
        ax.set_title(f"SCAN {st}: test years (trained on {TRAIN[st][0][:4]}-{TRAIN[st][1][:4]})")
        ax.set_ylabel("soil moisture (m3 m-3)")
        ax.legend(loc="upper left", fontsize=8, ncol=4)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    res = run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    print(json.dumps(res, indent=1, default=str))
