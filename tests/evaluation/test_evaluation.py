"""evaluate(): station matching, footprint mix, training-cell flags, grids, GIS table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xsomo
from xsomo import evaluation as ev
from xsomo.exceptions import UnitError, XsomoValueError
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


def test_footprint_mix_ignores_a_layer_it_does_not_reach(case):
    """A layer with weight 0 (deeper than the footprint) still removed days where it was NaN
    (NaN x 0), and all of them where it was NaN everywhere; `layers=` with the mix raised a
    raw KeyError (QA on COSMOS SilverSword)."""
    _, _targets, truth = case
    st = _stations(truth, [(1, 3)], [0.17])
    holey = truth.copy()
    holey.loc[{"layer": 3}] = holey.sel(layer=3).where(holey.time.dt.day != 5)  # layer 3 missing on the 5th
    full = ev.evaluate(truth.to_dataset(name="sm"), st)
    out = ev.evaluate(holey.to_dataset(name="sm"), st)
    assert float(out["footprint_weights"].sel(station="S0").values[2]) == 0.0
    assert int(out["n"].sel(station="S0", layer=0)) == int(full["n"].sel(station="S0", layer=0)) == truth.sizes["time"]
    assert int(out["n"].sel(station="S0", layer=3)) < truth.sizes["time"]
    np.testing.assert_allclose(float(out["pearson_r"].sel(station="S0", layer=0)), float(full["pearson_r"].sel(station="S0", layer=0)))
    gone = truth.copy()
    gone.loc[{"layer": 3}] = np.nan  # a product without its third layer at the station
    out = ev.evaluate(gone.to_dataset(name="sm"), st)
    assert int(out["n"].sel(station="S0", layer=0)) == truth.sizes["time"]
    two = ev.evaluate(truth.to_dataset(name="sm"), st, layers=[1, 2])
    assert two.layer.values.tolist() == [0, 1, 2]
    np.testing.assert_allclose(float(two["pearson_r"].sel(station="S0", layer=0)), float(full["pearson_r"].sel(station="S0", layer=0)))


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


def test_one_selected_layer_is_scored_as_that_layer(case):
    """``sm.sel(layer=2)`` keeps ``layer`` as a scalar coordinate: it is scored as layer 2 against
    stations and grids (it had been relabelled layer 1, scored against layer 1's sensors, and
    a gridded reference's every layer)."""
    _, _, truth = case
    vals = np.stack([truth.isel(lat=0, lon=0).sel(layer=k).values for k in (1, 2)])
    st = xr.Dataset(
        {"sm": (("station", "time"), vals)},
        coords={
            "station": ["l1", "l2"], "time": truth.time.values,
            "lat": ("station", truth.lat.values[[0, 0]]), "lon": ("station", truth.lon.values[[0, 0]]),
            "layer": ("station", [1, 2]),
        },
    )  # fmt: skip
    sm = truth.to_dataset(name="sm")
    for one in (sm.sel(layer=2), sm["sm"].sel(layer=2)):
        out = ev.evaluate(one, st, anomaly=False)
        assert out["layer"].values.tolist() == [2]
        assert float(out["pearson_r"].sel(station="l2", layer=2)) == pytest.approx(1.0)
        assert out["pearson_r"].sel(station="l1").isnull().all()
    # the prediction's dims named latitude/longitude (a bare KeyError 'lon' before)
    renamed = ev.evaluate(sm.rename(lat="latitude", lon="longitude"), st, anomaly=False)
    xr.testing.assert_identical(renamed["pearson_r"], ev.evaluate(sm, st, anomaly=False)["pearson_r"])
    grid = ev.evaluate(sm.sel(layer=2), truth.to_dataset(name="sm") + 0.01, anomaly=False)
    assert grid["layer"].values.tolist() == [2]
    np.testing.assert_allclose(float(grid["bias"].mean()), -0.01, rtol=1e-4)


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
    with pytest.warns(RuntimeWarning, match="comes from 2 years of data"):  # (a short test record)
        z = truth.to_dataset(name="sm").chunk({"lat": 2}).somo.anomalies()
    assert z["sm_anomaly"].chunks is not None
    assert z["sm_anomaly"].dims == truth.dims
    assert abs(float(z["sm_anomaly"].mean())) < 0.1


def _edge_oracle(x: np.ndarray, first_edge_hundredths: int, n: int) -> np.ndarray:
    """Cell index of points on a 0.05° lattice by integer arithmetic (half-open cells, 0.1° wide)."""
    k = np.round(np.asarray(x) * 100).astype(int) - first_edge_hundredths
    idx = np.floor_divide(k, 10)
    return np.where((k >= 0) & (idx < n), idx, -1)


@pytest.mark.parametrize("descending", [False, True])
def test_match_stations_on_inner_and_outer_edges(descending):
    """Issue 14 item 2: one cell rule (GridSpec.snap). Every point of a 0.05° lattice over a
    4 x 5 grid, edges included: inner edge -> north-east cell, outer north/east edge -> outside,
    outer south/west edge -> inside; checked against integer arithmetic, in the grid's own order."""
    lat_c = np.round(40.05 + 0.1 * np.arange(4), 6)  # edges 40.0 ... 40.4
    lon_c = np.round(0.05 + 0.1 * np.arange(5), 6)  # edges 0.0 ... 0.5
    grid = xr.Dataset(coords={"lat": lat_c[::-1] if descending else lat_c, "lon": lon_c})
    plat, plon = np.meshgrid(np.round(np.arange(39.95, 40.46, 0.05), 6), np.round(np.arange(-0.05, 0.56, 0.05), 6))
    plat, plon = plat.ravel(), plon.ravel()
    rows, cols, inside = ev.match_stations(grid, plat, plon)
    ilat = _edge_oracle(plat, 4000, 4)
    jlon = _edge_oracle(plon, 0, 5)
    want_inside = (ilat >= 0) & (jlon >= 0)
    np.testing.assert_array_equal(inside, want_inside)
    got_lat = grid.lat.values[rows[inside]]
    got_lon = grid.lon.values[cols[inside]]
    np.testing.assert_allclose(got_lat, lat_c[ilat[want_inside]])
    np.testing.assert_allclose(got_lon, lon_c[jlon[want_inside]])
    # the same cells as conventions.GridSpec.snap, the rule training uses
    spec = xsomo.conventions.GridSpec(west=0.0, east=0.5, south=40.0, north=40.4)
    si, sj = spec.snap(plat, plon)
    np.testing.assert_array_equal((si >= 0) & (sj >= 0), inside)
    np.testing.assert_allclose(spec.lat[si[inside]], got_lat)
    np.testing.assert_allclose(spec.lon[sj[inside]], got_lon)
    # the named cases: inner edges go north-east; the outer north/east edges are outside
    r, c, ok = ev.match_stations(grid, [40.25, 40.2, 40.4, 40.3, 40.0], [0.30, 0.2, 0.3, 0.5, 0.0])
    assert ok.tolist() == [True, True, False, False, True]
    assert grid.lat.values[r[:2]].tolist() == [40.25, 40.25]
    assert grid.lon.values[c[:2]].tolist() == [0.35, 0.25]
    assert (grid.lat.values[r[4]], grid.lon.values[c[4]]) == (40.05, 0.05)


def test_a_station_on_a_cell_edge_that_trained_is_never_independent():
    """Issue 14 item 2: a station at (40.45, 0.30) lies on the edge between the cells centred at
    0.25 and 0.35; training (GridSpec.snap) puts its targets into the 0.35 cell, evaluation must
    score it in that cell and flag it as a training cell, not as independent in the 0.25 cell."""
    spec = xsomo.conventions.GridSpec(west=0.0, east=0.6, south=40.0, north=40.6)
    t = xr.date_range("2010-01-01", periods=120, freq="D")
    rng = np.random.default_rng(0)
    data = rng.random((1, t.size, spec.nlat, spec.nlon)).astype("float32")
    sm = xr.DataArray(data, dims=("layer", "time", "lat", "lon"), coords={"layer": [1], "time": t, **spec.coords()})
    st_lat, st_lon = 40.45, 0.30
    clat, clon = spec.cell_centre(st_lat, st_lon)  # where the targets of this station went
    assert (float(clat), float(clon)) == (40.45, 0.35)
    obs = sm.sel(layer=1, lat=float(clat), lon=float(clon), drop=True).values
    stations = xr.Dataset(
        {"sm": (("station", "time"), obs[None, :])},
        coords={"station": ["edge"], "time": t, "lat": ("station", [st_lat]), "lon": ("station", [st_lon]),
                "layer": ("station", [1])},
    )
    targets = xr.Dataset(coords={"lat": ("cell", [float(clat)]), "lon": ("cell", [float(clon)])})
    out = ev.evaluate(sm.to_dataset(name="sm"), stations, training_cells=targets, anomaly=False)
    assert float(out["cell_lon"].item()) == pytest.approx(0.35)
    assert bool(out["training_cell"].item()) is True
    assert float(out["pearson_r"].sel(layer=1).item()) == pytest.approx(1.0)
    assert ev.summarize(out).loc[0, "n_stations"] == 0  # left out of the independent medians
    # the intercomparison uses the same cell
    from xsomo.evaluation import intercomparison

    comp = intercomparison.compare_stations({"xsomo": sm}, stations, training_cells=targets)
    assert float(comp["cell_lon"].item()) == pytest.approx(0.35)
    assert bool(comp["training_cell"].item()) is True


def test_units_of_reference_and_footprint_depth_are_read_not_assumed(case):
    """A reference in percent was scored as m3 m-3 (bias -40); a depth in 'centimeters' or
    without units was clipped to 0.5 m; a grid in 0..360 put western stations outside."""
    from xsomo.exceptions import UnitError

    _, _targets, truth = case
    sm = truth.to_dataset(name="sm")
    st = _stations(truth, [(0, 0), (1, 3), (2, 1)], [0.15, 0.2, 0.22])
    want = sm.somo.evaluate(st)
    pct = st.copy()
    pct["sm"] = (st["sm"] * 100).assign_attrs(units="%")
    np.testing.assert_allclose(sm.somo.evaluate(pct)["bias"], want["bias"], rtol=1e-5, atol=1e-7)
    unlabelled = st.copy()
    unlabelled["sm"] = (st["sm"] * 100).assign_attrs({})
    with pytest.raises(UnitError, match=r"station reference.*looks like percent.*units='%'"):
        sm.somo.evaluate(unlabelled)
    cm = st.assign_coords(footprint_depth=("station", [15.0, 20.0, 22.0], {"units": "centimeters"}))
    np.testing.assert_allclose(sm.somo.evaluate(cm)["footprint_weights"], want["footprint_weights"], rtol=1e-6)
    bare = st.assign_coords(footprint_depth=("station", [15.0, 20.0, 22.0]))
    with pytest.raises(UnitError, match=r"no sensing depth in metres.*units"):
        sm.somo.evaluate(bare)
    # two stations with one id were both scored and counted, and metrics_table failed (QA)
    with pytest.raises(XsomoValueError, match=r"1 station id\(s\) given more than once \('1'\)"):
        sm.somo.evaluate(st.isel(station=[0, 1]).assign_coords(station=["1", "1"]))
    # a station without a depth of its own (NaN, as open_cosmos writes it) takes footprint_depth=
    # (it was scored NaN and silently left out of the footprint median)
    gap = st.assign_coords(footprint_depth=("station", [0.15, np.nan, 0.22], {"units": "m"}))
    assert np.isnan(sm.somo.evaluate(gap)["footprint_weights"].values[1]).all()
    np.testing.assert_allclose(
        sm.somo.evaluate(gap, footprint_depth=0.2)["pearson_r"].values, want["pearson_r"].values, rtol=1e-6
    )
    # the same grid with longitudes in 0..360 and stations in -180..180 (shifted west of 0)
    shift = float(truth.lon.max()) + 1.0
    west = sm.assign_coords(lon=sm.lon - shift)  # grid in -180..180 straddling 0
    wrapped = west.assign_coords(lon=np.mod(west.lon, 360.0)).sortby("lon")
    st_w = st.assign_coords(lon=st.lon - shift)
    got = wrapped.somo.evaluate(st_w)
    assert bool(got["in_grid"].all())
    np.testing.assert_allclose(got["pearson_r"], west.somo.evaluate(st_w)["pearson_r"], rtol=1e-6)
    # training cells given in -180..180 flag the same stations on the 0..360 grid (none was
    # found there, so every station counted as independent)
    cells = np.column_stack([st_w.lat.values[:2], st_w.lon.values[:2]])
    flags = wrapped.somo.evaluate(st_w, training_cells=cells)["training_cell"].values.tolist()
    assert flags == west.somo.evaluate(st_w, training_cells=cells)["training_cell"].values.tolist() == [True, True, False]


def test_a_lazy_reference_in_percent_labelled_m3m3_is_refused(case):
    """A lazy array labelled m3 m-3 was taken at its word: a lazy ERA5-Land in percent made
    targets up to 39.7 and scores with a bias of -26 "m3 m-3"."""
    from xsomo.exceptions import UnitError

    _, _targets, truth = case
    sm = truth.to_dataset(name="sm")
    st = _stations(truth, [(1, 3)], [0.17])
    lazy_pct = (sm * 100).assign_attrs().chunk({"time": 100})
    lazy_pct["sm"].attrs["units"] = "m3 m-3"
    with pytest.raises(UnitError, match=r"gridded reference.*looks like percent"):
        ev.evaluate(sm, lazy_pct)
    st_pct = (st * 100).assign_coords(st.coords).chunk({"time": 100})
    st_pct["sm"].attrs["units"] = "m3 m-3"
    with pytest.raises(UnitError, match=r"station reference.*looks like percent"):
        ev.evaluate(sm, st_pct)
    # the prediction itself stays lazy and unsampled (sampling it would run the model)
    out = ev.evaluate(sm.chunk({"time": 100}), st)
    assert np.isfinite(out["pearson_r"].values).any()


def test_a_models_validation_cells_are_not_independent():
    """training_cells=model left out the early-stopping validation cells that targets= flags."""
    from xsomo.model.training import MIN_VAL_CELLS, train_lstm

    drivers, targets, truth = synthetic_case(seed=3, nlat=4, nlon=5, ndays=2 * 365, cells=MIN_VAL_CELLS + 2)
    model = train_lstm(drivers, targets, preset="tiny", epochs=1, layers=(1,), ensemble=1, seed=0)
    val = np.asarray(model.history["validation_cells"]["layer1"], float)
    assert len(val) >= 1 and len(model.training_cells) + len(val) == targets.sizes["cell"]
    n = targets.sizes["cell"]
    series = np.tile(truth.sel(layer=1).isel(lat=0, lon=0).values, (n, 1))
    st = xr.Dataset(
        {"sm": (("station", "time"), series, {"units": "m3 m-3"})},
        coords={"station": np.arange(n), "time": truth.time.values,
                "lat": ("station", targets.lat.values), "lon": ("station", targets.lon.values)},
    )  # fmt: skip
    sm = truth.to_dataset(name="sm")
    by_model = ev.evaluate(sm, st, training_cells=model)["training_cell"].values
    by_targets = ev.evaluate(sm, st, training_cells=targets)["training_cell"].values
    assert by_model.all() and by_targets.all()


def test_a_regional_or_0_360_gridded_reference_is_scored_where_it_covers(case):
    """A reference smaller than the prediction was refused ("does not cover the target grid"),
    and a 0..360 reference of the same cells as a -180..180 prediction failed with "20 x 0 points"."""
    _, _targets, truth = case
    sm = truth.to_dataset(name="sm")
    ref = sm.isel(lat=slice(1, 3), lon=slice(1, 4))
    got = ev.evaluate(sm, ref)
    assert got["pearson_r"].sizes == {"layer": 3, "lat": 4, "lon": 5}
    inside = got["pearson_r"].sel(lat=ref.lat, lon=ref.lon)
    np.testing.assert_allclose(inside, ev.evaluate(sm.sel(lat=ref.lat, lon=ref.lon), ref)["pearson_r"])
    assert int(got["pearson_r"].notnull().sum()) == inside.size and got.attrs["cells_covered_by_reference"] == 6
    west = sm.assign_coords(lon=sm.lon - float(sm.lon.max()) - 0.25)  # straddles 0 in -180..180
    wrapped = west.assign_coords(lon=np.mod(west.lon, 360.0)).sortby("lon")
    np.testing.assert_allclose(ev.evaluate(west, wrapped)["pearson_r"], ev.evaluate(west, west)["pearson_r"], rtol=1e-6)
    with pytest.raises(XsomoValueError, match="covers no cell"):
        ev.evaluate(sm, sm.assign_coords(lat=sm.lat + 10))


def test_sub_daily_or_non_standard_calendars_get_a_clear_error(case):
    """An hourly reference ended in xarray's 'cannot reindex ... duplicate values', a noleap
    prediction in 'is not convertible to datetime'."""
    _, _targets, truth = case
    sm = truth.to_dataset(name="sm")
    st = _stations(truth, [(0, 0)], [0.15])
    hourly = st.isel(time=np.repeat(np.arange(40), 2))
    hourly = hourly.assign_coords(time=st.time.values[np.repeat(np.arange(40), 2)] + np.tile([0, 12], 40).astype("timedelta64[h]"))
    with pytest.raises(XsomoValueError, match=r"sub-daily data.*resample"):
        sm.somo.evaluate(hourly)
    with pytest.raises(XsomoValueError, match=r"'noleap' calendar"):
        sm.convert_calendar("noleap").somo.evaluate(st)


@pytest.mark.parametrize("fill", [-9999.0, -99.0, -1.0])
def test_fill_values_and_gravimetric_references_are_refused(case, fill):
    """Unmasked fill values were scored (Sheepdrove2 with -9999 on 5 % of days: bias 507, r
    -0.003) and g g-1 was read as m3 m-3 (20-60 % off without the bulk density; QA)."""
    _, _targets, truth = case
    sm = truth.to_dataset(name="sm")
    st = _stations(truth, [(1, 3)], [0.17])
    bad = st.copy(deep=True)
    bad["sm"][0, ::20] = fill
    with pytest.raises(UnitError, match=rf"the station reference: soil moisture down to {fill:g} m3 m-3.*Mask them"):
        ev.evaluate(sm, bad)
    pred = sm.copy(deep=True)
    pred["sm"][{"time": 4}] = fill
    with pytest.raises(UnitError, match="the evaluated data: soil moisture down to"):
        ev.evaluate(pred, st)
    for units in ("g g-1", "kg kg-1", "g/g"):
        grav = st.copy()
        grav["sm"].attrs["units"] = units
        with pytest.raises(UnitError, match="gravimetric"):
            ev.evaluate(sm, grav)
    for units in ("kg m-2", "kg/m2", "mm"):  # a layer's water storage (GLDAS SoilMoi*): not gravimetric
        storage = st.copy()
        storage["sm"].attrs["units"] = units
        with pytest.raises(UnitError, match=r"water storage.*divide each layer's storage by its\s+thickness"):
            ev.evaluate(sm, storage)
    ev.evaluate(sm, st.assign(sm=st["sm"] - 0.02))  # a sensor's slightly negative noise passes
    fractions = st.copy()
    fractions["sm"].attrs["units"] = "%"  # 0.2-0.4 labelled percent became 0.002-0.004 (bias +0.4)
    with pytest.raises(UnitError, match="look like m3 m-3 fractions, not percent"):
        ev.evaluate(sm, fractions)
    percent = (st * 100).assign_coords(st.coords)
    percent["sm"].attrs["units"] = "%"
    ev.evaluate(sm, percent)  # real percent is converted


def test_duplicated_and_zoned_reference_days_say_what_to_do(case):
    """A reference day given twice raised xarray's 'cannot reindex ... duplicate values', and
    time-zone-aware stamps were reported as "the '?' calendar" (QA)."""
    _, _targets, truth = case
    sm = truth.to_dataset(name="sm")
    st = _stations(truth, [(1, 3)], [0.17])
    twice = xr.concat([st.isel(time=slice(0, 10)), st.isel(time=slice(9, None))], dim="time")
    with pytest.raises(XsomoValueError, match=r"1 stamp\(s\) twice .*drop_duplicates"):
        ev.evaluate(sm, twice)
    zoned = st.assign_coords(time=np.array(list(pd.DatetimeIndex(st.time.values).tz_localize("UTC")), dtype=object))
    with pytest.raises(XsomoValueError, match=r"time-zone-aware stamps.*UTC"):
        ev.evaluate(sm, zoned)


def test_a_reference_in_a_zone_east_of_utc_is_refused_not_shifted(case):
    """xarray keeps a pandas zone on the coordinate but its values are UTC: local midnight in
    Berlin became 23:00 of the day before, and a perfect reference scored r 0.91-0.94."""
    from xsomo.model.training import prepare_training_data

    drivers, targets, truth = case
    sm = truth.to_dataset(name="sm")
    st = _stations(truth, [(1, 3)], [0.17])
    local = pd.DatetimeIndex(st.time.values)
    with pytest.raises(XsomoValueError, match="time zone Europe/Berlin"):
        ev.evaluate(sm, st.assign_coords(time=local.tz_localize("Europe/Berlin")))
    with pytest.raises(XsomoValueError, match="time zone Europe/Berlin"):
        prepare_training_data(
            drivers, targets.assign_coords(time=pd.DatetimeIndex(targets.time.values).tz_localize("Europe/Berlin"))
        )
    # UTC stamps too (they failed inside xarray's alignment), with how to drop the zone
    with pytest.raises(XsomoValueError, match=r"time zone UTC.*tz_localize\(None\)"):
        ev.evaluate(sm, st.assign_coords(time=local.tz_localize("UTC")))


def test_a_constant_series_has_no_correlation_nse_or_kge():
    """Round-off left a constant 0.3 over 365 days a variance of ~1e-33: it scored r = NSE =
    KGE = 1 against itself and NSE = -8e29 against a varying series."""
    from xsomo.evaluation import scores

    t = pd.date_range("2001-01-01", periods=365)
    flat = xr.DataArray(np.full(365, 0.3), coords={"time": t}, dims="time")
    wave = xr.DataArray(0.3 + 0.05 * np.sin(np.arange(365) / 20.0), coords={"time": t}, dims="time")
    same = ev.metrics(flat, flat)
    for name in ("pearson_r", "nse", "kge", "anomaly_r"):
        assert np.isnan(float(same[name])), name
    vs = ev.metrics(wave, flat)
    assert np.isnan(float(vs["nse"])) and np.isnan(float(vs["pearson_r"]))
    assert float(vs["urmsd"]) > 0.03  # the error metrics stay
    assert np.isnan(float(scores.pearson_r(flat, flat))) and np.isnan(float(scores.pearson_r(wave, flat)))
    z = scores.ak.daily_anomalies(np.full(5 * 365, 0.3), (np.arange(5 * 365) % 365).astype(int))
    assert np.isnan(z).all()


def test_summarize_takes_every_median_over_the_stations_it_counts():
    """A station with a constant reference has no r but a finite bias: the bias median took it
    in while n_stations left it out."""
    t = pd.date_range("2001-01-01", periods=100)
    wave = 0.3 + 0.05 * np.sin(np.arange(100) / 10.0)
    obs = np.stack([wave, wave + 0.01 * np.cos(np.arange(100)), np.full(100, 0.3)])
    sim = np.stack([wave + 0.001, wave + 0.002, wave + 0.2])
    coords = {"station": ["a", "b", "c"], "time": t, "lat": ("station", [45.0, 45.1, 45.2]),
              "lon": ("station", [5.0, 5.1, 5.2])}  # fmt: skip
    m = ev.metrics(xr.DataArray(sim, coords=coords, dims=("station", "time")),
                   xr.DataArray(obs, coords=coords, dims=("station", "time")))  # fmt: skip
    m = m.expand_dims(layer=[1])
    row = ev.summarize(m).iloc[0]
    assert row["n_stations"] == 2
    assert row["bias"] == pytest.approx(float(np.median(m["bias"].sel(layer=1).values[:2])))
