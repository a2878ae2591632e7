"""evaluate(): station matching, footprint mix, training-cell flags, grids, GIS table."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xsomo  # noqa: F401  (registers .somo)
from xsomo import evaluation as ev
from xsomo.exceptions import XsomoValueError
from xsomo.testing import synthetic_case

# xsomo.testing still uses the deprecated DatetimeIndex.dayofyear (pandas 3); not ours to fix here
pytestmark = pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofyear:DeprecationWarning")


@pytest.fixture(scope="module")
def case():
    drivers, targets, truth = synthetic_case(seed=3, nlat=4, nlon=5, ndays=2 * 365, cells=3)
    return drivers, targets, truth


def _stations(truth: xr.DataArray, cells: list[tuple[int, int]], depths: list[float], *, seed: int = 0):
    """Stations seeing the footprint mix of the truth at given cells, offset inside the cell, plus noise."""
    rng = np.random.default_rng(seed)
    series, lats, lons = [], [], []
    for (i, j), d in zip(cells, depths, strict=True):
        w = ev.footprint_weights(d)
        col = truth.isel(lat=i, lon=j)
        mix = sum(w[k] * col.sel(layer=k + 1).values for k in range(3))
        series.append(mix + 0.01 * rng.standard_normal(mix.shape))
        lats.append(float(truth.lat[i]) + rng.uniform(-0.04, 0.04))
        lons.append(float(truth.lon[j]) + rng.uniform(-0.04, 0.04))
    return xr.Dataset(
        {"sm": (("station", "time"), np.array(series, "float32"), {"units": "m3 m-3"})},
        coords={
            "station": [f"S{k}" for k in range(len(cells))],
            "time": truth.time.values,
            "lat": ("station", lats),
            "lon": ("station", lons),
            "footprint_depth": ("station", depths, {"units": "m"}),
        },
    )


def test_footprint_weights_rule():
    np.testing.assert_allclose(ev.footprint_weights(0.15), [2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(ev.footprint_weights(0.22), [0.1 / 0.22, 0.12 / 0.22, 0.0])
    np.testing.assert_allclose(ev.footprint_weights(0.05), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(ev.footprint_weights(2.0), [0.2, 0.4, 0.4])
    with pytest.raises(XsomoValueError):
        ev.footprint_weights(-1)


def test_match_stations_half_cell_rule(case):
    _, _, truth = case
    lat = np.array([truth.lat.values[1] + 0.049, truth.lat.values[0] - 0.06, truth.lat.values[3]])
    lon = np.array([truth.lon.values[2] - 0.049, truth.lon.values[0], truth.lon.values[4] + 0.2])
    i, j, inside = ev.match_stations(truth, lat, lon)
    assert inside.tolist() == [True, False, False]
    assert (i[0], j[0]) == (1, 2)


def test_station_evaluation_footprint_mix_is_best(case):
    _, _targets, truth = case
    sm = truth.to_dataset(name="sm")
    cells = [(0, 0), (1, 3), (2, 1), (3, 2)]
    st = _stations(truth, cells, [0.15, 0.2, 0.22, 0.18])
    out = sm.somo.evaluate(st)
    assert out["pearson_r"].dims == ("station", "layer")
    assert out.layer.values.tolist() == [0, 1, 2, 3]
    assert out.layer_label.values.tolist() == ["footprint", "layer1", "layer2", "layer3"]
    # the stations see the footprint mix by construction: its r beats every single layer
    assert (out["pearson_r"].sel(layer=0) > out["pearson_r"].sel(layer=[1, 2, 3]).max("layer")).all()
    # independent recomputation for one station
    w = ev.footprint_weights(0.2)
    col = truth.isel(lat=1, lon=3)
    mix = sum(w[k] * col.sel(layer=k + 1) for k in range(3))
    ref = ev.metrics(mix, st["sm"].sel(station="S1"), anomaly=False)
    for m in ("pearson_r", "urmsd", "bias", "nse", "kge"):
        np.testing.assert_allclose(float(out[m].sel(station="S1", layer=0)), float(ref[m]), rtol=1e-5)
    np.testing.assert_allclose(out["footprint_weights"].sel(station="S1"), w)
    assert np.isclose(float(out["cell_lat"].sel(station="S1")), float(truth.lat[1]))
    assert "anomaly_r" in out


def test_training_cell_flag_and_summary(case):
    _, targets, truth = case
    sm = truth.to_dataset(name="sm")
    # put one station into the first training cell
    ti = int(np.argmin(np.abs(truth.lat.values - float(targets.lat[0]))))
    tj = int(np.argmin(np.abs(truth.lon.values - float(targets.lon[0]))))
    others = [(i, j) for i in range(4) for j in range(4) if (i, j) != (ti, tj)][:2]
    st = _stations(truth, [(ti, tj), *others], [0.15, 0.15, 0.15])
    out = ev.evaluate(sm, st, training_cells=targets)
    assert out["training_cell"].values.tolist() == [True, False, False]
    summary = ev.summarize(out)
    assert summary.loc[summary.layer == 0, "n_stations"].item() == 2
    med = float(np.median(out["pearson_r"].sel(layer=0, station=["S1", "S2"])))
    assert summary.loc[summary.layer == 0, "pearson_r"].item() == pytest.approx(med)
    assert ev.summarize(out, independent_only=False).loc[0, "n_stations"] == 3
    # the same flags from an (n, 2) array of training-cell centres
    arr = np.column_stack([targets.lat.values, targets.lon.values])
    assert ev.evaluate(sm, st, training_cells=arr)["training_cell"].values.tolist() == [True, False, False]


def test_station_outside_grid_gets_nan(case):
    _, _, truth = case
    st = _stations(truth, [(0, 0), (1, 1)], [0.15, 0.15])
    st = st.assign_coords(lat=("station", [st.lat.values[0], 10.0]))
    out = ev.evaluate(truth.to_dataset(name="sm"), st, anomaly=False)
    assert out["in_grid"].values.tolist() == [True, False]
    assert out["pearson_r"].sel(station="S1").isnull().all()
    assert int(out["n"].sel(station="S1").max()) == 0


def test_in_situ_sensors_with_a_layer_compare_that_layer_only(case):
    _, _, truth = case
    vals = np.stack([truth.isel(lat=0, lon=0).sel(layer=1).values, truth.isel(lat=2, lon=2).sel(layer=3).values])
    st = xr.Dataset(
        {"sm": (("station", "time"), vals)},
        coords={
            "station": ["a", "b"],
            "time": truth.time.values,
            "lat": ("station", truth.lat.values[[0, 2]]),
            "lon": ("station", truth.lon.values[[0, 2]]),
            "layer": ("station", [1, 3]),
        },
    )
    out = ev.evaluate(truth.to_dataset(name="sm"), st, anomaly=False)
    assert float(out["pearson_r"].sel(station="a", layer=1)) == pytest.approx(1.0)
    assert float(out["pearson_r"].sel(station="b", layer=3)) == pytest.approx(1.0)
    assert out["pearson_r"].sel(station="a", layer=2).isnull()


def test_grid_evaluation_maps(case):
    _, _, truth = case
    sm = (truth + 0.01).to_dataset(name="sm")
    out = sm.somo.evaluate(truth.to_dataset(name="sm"), anomaly=False)
    assert set(out["bias"].dims) == {"layer", "lat", "lon"}
    land = truth.isel(layer=0, time=0).notnull()
    np.testing.assert_allclose(out["bias"].where(land).mean().item(), 0.01, rtol=1e-4)
    # per-layer variables layer1..3 are understood as well
    per_var = xr.Dataset({f"layer{k}": truth.sel(layer=k, drop=True) for k in (1, 2, 3)})
    out2 = ev.evaluate(sm, per_var, anomaly=False)
    xr.testing.assert_allclose(out2["bias"], out["bias"])
    # a reference with descending latitudes (as files store them) is matched by coordinate
    flipped = truth.isel(lat=slice(None, None, -1)).to_dataset(name="sm")
    xr.testing.assert_allclose(ev.evaluate(sm, flipped, anomaly=False)["bias"], out["bias"])


def test_to_geodataframe(case):
    _, _, truth = case
    st = _stations(truth, [(0, 0), (1, 3)], [0.15, 0.2])
    out = ev.evaluate(truth.to_dataset(name="sm"), st, anomaly=False)
    gdf = ev.to_geodataframe(out)
    assert gdf.crs.to_epsg() == 4326
    assert len(gdf) == 2 * 4
    assert np.allclose(gdf.geometry.x.values[:1], out.lon.values[:1])
    wide = ev.to_geodataframe(out, wide=True)
    assert len(wide) == 2 and "pearson_r_footprint" in wide.columns


def test_anomalies_accessor(case):
    _, _, truth = case
    z = truth.to_dataset(name="sm").chunk({"lat": 2}).somo.anomalies()
    assert z["sm_anomaly"].chunks is not None
    assert z["sm_anomaly"].dims == truth.dims
    assert abs(float(z["sm_anomaly"].mean())) < 0.1
