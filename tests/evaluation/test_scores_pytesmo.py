"""Station metrics of ``evaluate`` against pytesmo, an independent implementation (issue 20 item 8).

pytesmo (TU Wien's soil-moisture validation package, used by QA4SM) computes Pearson's r,
the unbiased RMSD, the bias, the RMSD and the Nash-Sutcliffe efficiency from paired series.
Here the pairs are built by hand (numpy: the grid cell whose centre is nearest to the station,
the days where both are finite) and pytesmo scores them; ``evaluate`` must give the same numbers
for every station and its layer. pytesmo has no KGE, so KGE is not checked here.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pytesmo import metrics as pm

import xsomo

#: (xsomo's name, pytesmo's function of (prediction, station)); pytesmo's bias is mean(x) - mean(y)
PYTESMO = {
    "pearson_r": lambda p, o: pm.pearson_r(p, o),
    "urmsd": lambda p, o: pm.ubrmsd(p, o),
    "bias": lambda p, o: pm.bias(p, o),
    "rmse": lambda p, o: pm.rmsd(p, o),
    "nse": lambda p, o: pm.nash_sutcliffe(o, p),
}


@pytest.fixture(scope="module")
def case(tiny_world):
    truth = xr.open_dataset(tiny_world / "truth.nc")["sm"].transpose("layer", "time", "lat", "lon").load()
    rng = np.random.default_rng(20)
    # a prediction with an error that differs by layer: noise, a bias and a damped amplitude
    noisy = 0.9 * truth + 0.01 * truth["layer"] + 0.015 * rng.standard_normal(truth.shape)
    pred = noisy.astype("float32").where(np.isfinite(truth)).to_dataset(name="sm")
    stations = xsomo.open_ismn(tiny_world / "ismn")
    return pred, stations, pred.somo.evaluate(stations)


def test_station_metrics_equal_pytesmo(case):
    pred, stations, metrics = case
    lat, lon = pred["lat"].values, pred["lon"].values
    checked = 0
    for sid in stations["station"].values:
        st = stations.sel(station=sid)
        layer = int(st["layer"])
        i, j = int(np.argmin(np.abs(lat - float(st["lat"])))), int(np.argmin(np.abs(lon - float(st["lon"]))))
        series = pred["sm"].sel(layer=layer).isel(lat=i, lon=j)
        p, o = xr.align(series, st["sm"], join="inner")
        p, o = p.values.astype("float64"), o.values.astype("float64")
        ok = np.isfinite(p) & np.isfinite(o)
        got = metrics.sel(station=sid, layer=layer)
        assert int(got["n"]) == int(ok.sum()), sid
        if ok.sum() < int(metrics.attrs.get("min_days", 30)):
            continue
        for name, fn in PYTESMO.items():
            want = float(fn(p[ok], o[ok]))
            assert float(got[name]) == pytest.approx(want, rel=1e-6, abs=1e-9), (sid, name)
        checked += 1
    assert checked >= 5, f"only {checked} stations with enough days"
