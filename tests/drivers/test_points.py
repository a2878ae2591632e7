"""Point mode (issue 18): drivers and targets indexed by station."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xsomo
from xsomo import conventions as cv
from xsomo import testing
from xsomo.drivers.points import fill_forcing_gaps, match_points, point_drivers
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError
from xsomo.targets.points import point_targets

TINY = {
    "preset": "tiny", "layers": (1,), "lookback": 30, "seq_length": 30, "epochs": 2, "steps_per_epoch": 4,
    "val_fraction": 0.0, "forget_tolerance": 0.0, "progress": False, "device": "cpu", "ensemble": 1,
    "consistency": 0.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def case():
    return testing.synthetic_case(seed=0, nlat=3, nlon=3, ndays=400, cells=5)


def test_point_drivers_sample_the_cells_of_the_stations(case):
    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    assert pts["precipitation"].dims == ("station", "time")
    assert pts["sand_top"].dims == ("station",)
    for k in range(tgt.sizes["cell"]):
        lat, lon = float(tgt.lat[k]), float(tgt.lon[k])
        cell = drv.sel(lat=lat, lon=lon, method="nearest")
        np.testing.assert_array_equal(pts["precipitation"].values[k], cell["precipitation"].values)
        assert float(pts["sand_top"][k]) == float(cell["sand_top"])
        assert float(pts.lat[k]) == lat  # the station keeps its own location
        # the grid's own climate statics (what a gridded prediction at that cell sees)
        assert float(pts["precipitation_mean"][k]) == float(cell["precipitation_mean"])


def test_point_statics_do_not_depend_on_the_days_asked_for(case):
    """A summer window had replaced the gridded precipitation_mean by the summer's mean (a
    different model input than the grid's at that cell); statics never change with ``time``."""
    drv, tgt, _ = case
    whole = point_drivers(tgt, drv)
    window = point_drivers(tgt, drv, time=("2014-06-01", "2014-08-31"))
    assert window.sizes["time"] == 92
    static = [v for v in whole.data_vars if "time" not in whole[v].dims]
    assert {"precipitation_mean", "aridity", "sand_top"} <= set(static)
    xr.testing.assert_identical(window[static], whole[static])
    # an explicit climate period: the means of those days (of the whole forcing, not the window)
    own = point_drivers(tgt, drv, time=("2014-06-01", "2014-08-31"), climate=("2014-01-01", "2014-12-31"))
    k = 0
    cell = drv.sel(lat=float(tgt.lat[k]), lon=float(tgt.lon[k]))
    want = float(cell["precipitation"].sel(time=slice("2014-01-01", "2014-12-31")).mean())
    np.testing.assert_allclose(float(own["precipitation_mean"][k]), want, rtol=1e-5)


def test_point_drivers_station_off_the_grid_is_an_error(case):
    drv, tgt, _ = case
    far = tgt.assign_coords(lat=("cell", tgt.lat.values + 5.0))
    with pytest.raises(GridMismatchError, match="off the drivers' grid"):
        point_drivers(far, drv)


def test_point_drivers_without_forcing_or_grid_is_an_error(case):
    _, tgt, _ = case
    with pytest.raises(MissingVariableError, match="variables="):
        point_drivers(tgt)


def test_match_points_names_a_target_without_a_point():
    d = xr.Dataset(coords={"station": ["a", "b"], "lat": ("station", [1.0, 2.0]), "lon": ("station", [5.0, 6.0])})
    assert match_points(d, np.array([2.0, 1.0]), np.array([6.0, 5.0])).tolist() == [1, 0]
    with pytest.raises(GridMismatchError, match=r"\(1\.50000, 5\.00000\)"):
        match_points(d, np.array([1.5]), np.array([5.0]))


def test_training_and_prediction_at_points_equal_the_grid_at_those_cells(case):
    """Same targets, same seed, no probe cells: the point model is the grid model, and its
    point prediction is the grid prediction at the stations' cells."""
    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    m_grid = xsomo.train_lstm(drv, tgt, **TINY)
    m_pts = xsomo.train_lstm(pts, tgt, **TINY)
    for key, w in m_grid.weights.items():
        for name, tensor in w.items():
            # equal up to float32 summation order (measured: 1e-8)
            np.testing.assert_allclose(tensor.numpy(), m_pts.weights[key][name].numpy(), atol=1e-6, err_msg=str(key))
    p = xsomo.predict(pts, m_pts, mode="continuous")
    assert p["sm"].dims == ("layer", "time", "station")
    g = xsomo.predict(drv, m_grid, mode="continuous", check_convergence=False).compute()
    at = g["sm"].sel(
        lat=xr.DataArray(tgt.lat.values, dims="station"), lon=xr.DataArray(tgt.lon.values, dims="station"),
        method="nearest",
    )  # fmt: skip
    np.testing.assert_allclose(p["sm"].values, at.values, atol=1e-5)
    assert np.isfinite(p["sm"].values).mean() > 0.9


def test_point_prediction_masks_days_after_a_forcing_gap(case):
    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    model = xsomo.train_lstm(pts, tgt, **{**TINY, "epochs": 1, "steps_per_epoch": 1})
    gap = pts.copy(deep=True)
    gap["precipitation"][0, 200] = np.nan
    p = xsomo.predict(gap, model, mode="continuous")
    sm = p["sm"].isel(layer=0).to_pandas()  # time x station
    day = pts.indexes["time"][200]
    lb = model.config.lookback
    masked = sm.index[sm.iloc[:, 0].isna()]
    assert masked.min() == day and masked.max() == day + pd.Timedelta(days=lb - 1)
    assert int(p["missing_forcing_days"][0]) == lb and int(p["missing_forcing_days"][1]) == 0
    assert sm.iloc[:, 1].notna().all()
    with pytest.raises(xsomo.exceptions.XsomoValueError, match="each layer once"):
        xsomo.predict(pts, model, layers=[1, 1])


def test_evaluate_point_prediction_against_sensors(case):
    """Two sensors at one station, each with its own layer: each is scored against its
    point and its layer only; r equals numpy's on the common days."""
    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    time = pts.indexes["time"]
    lay = [1, 1]
    rng = np.random.default_rng(1)
    obs = rng.normal(0.3, 0.05, (2, time.size))
    obs[1, :50] = np.nan
    sensors = xr.Dataset(
        {"sm": (("station", "time"), obs)},
        coords={"station": ["s1", "s2"], "time": time, "lat": ("station", [float(tgt.lat[2])] * 2),
                "lon": ("station", [float(tgt.lon[2])] * 2), "layer": ("station", lay)},
    )  # fmt: skip
    sim = rng.normal(0.3, 0.05, (1, time.size, pts.sizes["station"]))
    pred = xr.Dataset(
        {"sm": (("layer", "time", "station"), sim)},
        coords={"layer": [1], "time": time, "station": pts.station.values, "lat": ("station", pts.lat.values),
                "lon": ("station", pts.lon.values)},
    )  # fmt: skip
    ev = xsomo.evaluate(pred, sensors)
    for k in range(2):
        ok = np.isfinite(obs[k])
        expect = np.corrcoef(sim[0, ok, 2], obs[k, ok])[0, 1]
        np.testing.assert_allclose(float(ev.pearson_r.sel(station=f"s{k + 1}", layer=1)), expect, rtol=1e-6)
    assert list(ev.point.values) == [str(pts.station.values[2])] * 2
    # two sensors of one site: two entries in the medians, one site
    summ = xsomo.evaluation.summarize(ev)
    assert summ["n_stations"].item() == 2 and summ["n_sites"].item() == 1


def test_evaluate_points_refuses_a_sensor_given_twice_and_keeps_a_selected_layer(case):
    """A sensor listed twice was scored, and counted in the medians, twice; ``pred.sel(layer=2)``
    was relabelled layer 1 and scored against layer 1's sensors."""
    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    time = pts.indexes["time"]
    sim = np.random.default_rng(3).normal(0.3, 0.05, (2, time.size, pts.sizes["station"]))
    pred = xr.Dataset(
        {"sm": (("layer", "time", "station"), sim)},
        coords={"layer": [1, 2], "time": time, "station": pts.station.values, "lat": ("station", pts.lat.values),
                "lon": ("station", pts.lon.values)},
    )  # fmt: skip
    sensors = xr.Dataset(
        {"sm": (("station", "time"), sim[:, :, 0])},
        coords={"station": ["l1", "l2"], "time": time, "lat": ("station", [float(pts.lat[0])] * 2),
                "lon": ("station", [float(pts.lon[0])] * 2), "layer": ("station", [1, 2])},
    )  # fmt: skip
    one = xsomo.evaluate(pred.sel(layer=2), sensors)
    assert one.layer.values.tolist() == [2]
    assert float(one.pearson_r.sel(station="l2", layer=2)) == pytest.approx(1.0)
    assert one.pearson_r.sel(station="l1").isnull().all()
    twice = xr.concat([sensors, sensors.isel(station=[1])], "station")
    with pytest.raises(XsomoValueError, match=r"1 station id\(s\) given more than once \('l2'\)"):
        xsomo.evaluate(pred, twice)


def test_point_targets_put_each_sensor_in_its_layer():
    st = xr.Dataset(
        {"sm": (("station", "time"), [[0.2, 0.3], [0.1, np.nan], [0.4, 0.5]])},
        coords={"station": list("abc"), "lat": ("station", [1.0] * 3), "lon": ("station", [2.0] * 3),
                "layer": ("station", [1, 3, 1]), "time": pd.date_range("2020-01-01", periods=2)},
    )  # fmt: skip
    t = point_targets(st)
    assert t["sm"].dims == ("station", "layer", "time")
    assert t.layer.values.tolist() == [1, 3]
    np.testing.assert_array_equal(t["sm"].sel(layer=3).values[1], np.float32([0.1, np.nan]))
    assert np.isnan(t["sm"].sel(layer=3).values[[0, 2]]).all()
    with pytest.raises(MissingVariableError, match="layer"):
        point_targets(st.drop_vars("layer"))


def test_tiny_world_stations_with_drivers_extracted_at_them(tiny_world):
    """The sample world's ISMN folder has soil moisture only: point drivers are its
    gridded drivers sampled at the stations; the sensors train and score at their point."""
    stations = xsomo.open_ismn(tiny_world / "ismn", min_days=30)
    drivers = xsomo.open_drivers(tiny_world).load()
    pts = point_drivers(stations, drivers)
    assert pts.sizes["station"] == len(set(zip(stations.lat.values, stations.lon.values, strict=True)))
    layers = tuple(sorted({int(v) for v in stations.layer.values}))
    model = xsomo.train_lstm(pts, stations, **{**TINY, "layers": layers, "epochs": 1})
    pred = xsomo.predict(pts, model)
    assert pred["sm"].dims == ("layer", "time", "station")
    ev = xsomo.evaluate(pred, stations)
    own = ev.pearson_r.where(ev.n > 0)
    # each sensor is scored with its own layer only, at its own point
    assert int(np.isfinite(own).sum()) == stations.sizes["station"]
    assert set(ev.point.values) == set(pts.station.values)


def _forcing_stations(extra):
    t = pd.date_range("2020-01-01", periods=5, freq="D")
    rng = np.random.default_rng(1)
    data = {
        "precipitation": (("station", "time"), rng.random((2, 5)), {"units": "mm d-1"}),
        "air_temperature": (("station", "time"), 280 + rng.random((2, 5)), {"units": "K"}),
    }
    if extra:
        data["air_temperature_range"] = (("station", "time"), 5 + rng.random((2, 5)))
    return xr.Dataset(data, coords={"time": t, "lat": ("station", [19.7, 20.7]), "lon": ("station", [-155.4, -156.2])})


def test_point_drivers_pass_the_air_temperature_range_only_when_read():
    plain = point_drivers(_forcing_stations(False))
    assert set(plain.data_vars) == {"precipitation", "air_temperature", "precipitation_mean", "air_temperature_mean"}
    st = _forcing_stations(True)
    pts = point_drivers(st)
    assert set(pts.data_vars) == set(plain.data_vars) | {"air_temperature_range"}
    np.testing.assert_allclose(pts["air_temperature_range"].values, st["air_temperature_range"].values, rtol=1e-6)
    for v in plain.data_vars:
        np.testing.assert_array_equal(pts[v].values, plain[v].values)


def _two_stations_at_one_place():
    """Two stations sharing their coordinates (as 83 of 2651 ISMN stations do), each with its own forcing."""
    t = pd.date_range("2020-01-01", periods=5, freq="D")
    return xr.Dataset(
        {"precipitation": (("station", "time"), [[1.0] * 5, [9.0] * 5], {"units": "mm d-1"})},
        coords={"station": ["N.a", "N.b"], "time": t, "lat": ("station", [45.0, 45.0]),
                "lon": ("station", [5.0, 5.0]), "network": ("station", ["N", "N"]),
                "station_name": ("station", ["a", "b"])},
    )  # fmt: skip


def test_stations_at_one_place_each_find_their_own_point():
    """The nearest point was the first one at the place: station b trained and was scored with a's forcing."""
    drv = _two_stations_at_one_place()
    keys = np.array(["N.b", "N.a", "N.b"])
    idx = match_points(drv, np.full(3, 45.0), np.full(3, 5.0), keys=keys)
    assert drv.station.values[idx].tolist() == ["N.b", "N.a", "N.b"]
    # without names on both sides the place is ambiguous: refused, naming both points
    with pytest.raises(GridMismatchError, match=r"more than one point.*N\.a.*N\.b.*network"):
        match_points(drv, np.array([45.0]), np.array([5.0]))
    with pytest.raises(GridMismatchError, match="no driver point of the same network/station_name"):
        match_points(drv, np.array([45.0]), np.array([5.0]), keys=np.array(["N.c"]))


def test_point_drivers_refuse_two_stations_at_one_place_without_names():
    """Without network/station_name, entries at one place make one point: two gauges there had
    become one point with the first one's forcing. Sensors of one station (same forcing) still merge;
    named stations stay apart."""
    two = _two_stations_at_one_place()
    two["sm"] = (("station", "time"), np.full((2, 5), 0.2), {"units": "m3 m-3"})
    bare = two.drop_vars(["network", "station_name"])
    with pytest.raises(XsomoValueError, match=r"'N\.a' and 'N\.b' are at one place.*'precipitation' differs \(1 against 9 on 2020-01-01\).*network"):
        point_drivers(bare)
    same = np.array([[1.0] * 5, [np.nan] + [1.0] * 4])  # a gap in one sensor's copy is not a difference
    sensors = bare.assign(precipitation=(("station", "time"), same, {"units": "mm d-1"}))
    assert point_drivers(sensors).sizes["station"] == 1
    assert point_drivers(two).station.values.tolist() == ["N.a", "N.b"]


def test_a_lone_point_of_another_name_at_the_place_is_not_the_station():
    """Drivers holding only N.a: target N.b (same coordinates) trained on N.a's forcing and was
    scored against N.a's prediction, because names were compared only between several points."""
    from xsomo.evaluation import evaluate

    drv = _two_stations_at_one_place().isel(station=[0])
    with pytest.raises(GridMismatchError, match=r"1 of 2 targets have no driver point of the same network"):
        match_points(drv, np.full(2, 45.0), np.full(2, 5.0), keys=np.array(["N.a", "N.b"]))
    pred = xr.Dataset(
        {"sm": (("station", "time"), [[0.2] * 5], {"units": "m3 m-3"})},
        coords={"station": ["N.a"], "time": drv.time, "lat": ("station", [45.0]), "lon": ("station", [5.0]),
                "network": ("station", ["N"]), "station_name": ("station", ["a"])},
    )  # fmt: skip
    ref = xr.Dataset(
        {"sm": (("station", "time"), np.random.default_rng(0).random((2, 5)), {"units": "m3 m-3"})},
        coords={"station": ["a", "b"], "time": drv.time, "lat": ("station", [45.0, 45.0]),
                "lon": ("station", [5.0, 5.0]), "network": ("station", ["N", "N"]),
                "station_name": ("station", ["a", "b"])},
    )  # fmt: skip
    out = evaluate(pred, ref, min_days=3)
    assert out["in_grid"].values.tolist() == [True, False]
    assert out["point"].values.tolist() == ["N.a", ""]


def test_a_point_without_coordinates_is_refused():
    """argmin over distances with a NaN returned that point for every location: both targets
    trained on the middle station's statics."""
    drv = _two_stations_at_one_place()
    drv = drv.assign_coords(lat=("station", [45.0, np.nan]))
    with pytest.raises(GridMismatchError, match=r"no finite lat/lon \(N\.b\)"):
        match_points(drv, np.array([45.0]), np.array([5.0]))


def test_training_and_evaluation_use_the_station_at_the_same_place():
    from xsomo.model.training import prepare_training_data

    drv = _two_stations_at_one_place()
    drv["precipitation"].attrs["units"] = "mm day-1"
    drv["elevation_mean"] = ("station", [100.0, 900.0], {"units": "m"})
    sensors = xr.Dataset(
        {"sm": (("station", "time"), [[0.1] * 5, [0.3] * 5])},
        coords={"station": ["b-sensor", "a-sensor"], "time": drv.time, "lat": ("station", [45.0, 45.0]),
                "lon": ("station", [5.0, 5.0]), "network": ("station", ["N", "N"]),
                "station_name": ("station", ["b", "a"]), "layer": ("station", [1, 1])},
    )  # fmt: skip
    data = prepare_training_data(drv, sensors, layers=(1,), dynamic=("precipitation",), static=("elevation_mean",))
    assert data.static[:, 0].tolist() == [900.0, 100.0]
    assert data.dynamic[:, 0, 0].tolist() == [9.0, 1.0]
    pred = xr.Dataset(
        {"sm": (("layer", "time", "station"), np.random.default_rng(0).random((1, 5, 2)))},
        coords={"layer": [1], "time": drv.time, "station": drv.station.values, "lat": drv.lat, "lon": drv.lon,
                "network": drv.network, "station_name": drv.station_name},
    )  # fmt: skip
    ev = xsomo.evaluate(pred, sensors, min_days=3)
    assert ev.point.values.tolist() == ["N.b", "N.a"]


def test_evaluate_point_prediction_flags_training_stations(case):
    """training_cells was ignored for point predictions: every station counted as independent."""
    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    time = pts.indexes["time"]
    rng = np.random.default_rng(2)
    sensors = xr.Dataset(
        {"sm": (("station", "time"), rng.normal(0.3, 0.05, (2, time.size)))},
        coords={"station": ["s1", "s2"], "time": time, "lat": ("station", tgt.lat.values[:2]),
                "lon": ("station", tgt.lon.values[:2]), "layer": ("station", [1, 1])},
    )  # fmt: skip
    pred = xr.Dataset(
        {"sm": (("layer", "time", "station"), rng.normal(0.3, 0.05, (1, time.size, pts.sizes["station"])))},
        coords={"layer": [1], "time": time, "station": pts.station.values, "lat": ("station", pts.lat.values),
                "lon": ("station", pts.lon.values)},
    )  # fmt: skip
    training = np.column_stack([tgt.lat.values[1:2], tgt.lon.values[1:2]])
    ev = xsomo.evaluate(pred, sensors, training_cells=training)
    assert ev.training_cell.values.tolist() == [False, True]
    assert xsomo.evaluate(pred, sensors).training_cell.values.tolist() == [False, False]


def test_training_skips_targets_whose_window_lacks_forcing(case):
    """Training filled missing forcing with the mean while predict gives NaN there: a station
    whose forcing starts late trained on made-up inputs. Now those targets are not trained on."""
    from xsomo.model.training import mask_unforced_targets, prepare_training_data

    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    gap = pts.copy(deep=True)
    gap["precipitation"][0, :100] = np.nan  # station 0's forcing starts on day 100
    data = prepare_training_data(gap, tgt, layers=(1,), dynamic=("precipitation", "air_temperature"),
                                 static=("elevation_mean",))  # fmt: skip
    with pytest.warns(RuntimeWarning, match=r"not trained on: the 30-day window"):
        masked = mask_unforced_targets(data, 30, trailing=True)
    row = int(np.flatnonzero(data.rows == 0)[0])
    assert not np.isfinite(masked.target[row, 0, :129]).any()  # days 0-99 and the 29 after
    np.testing.assert_array_equal(masked.target[row, 0, 129:], data.target[row, 0, 129:])
    others = np.arange(data.rows.size) != row
    np.testing.assert_array_equal(masked.target[others], data.target[others])
    # on a grid only the days without forcing themselves (as the gridded roll-out masks them)
    with pytest.warns(RuntimeWarning, match="their day lacks forcing"):
        grid_like = mask_unforced_targets(data, 30, trailing=False)
    assert np.isfinite(grid_like.target[row, 0, 100:129]).any()
    # no forcing anywhere: refused
    none = pts.copy(deep=True)
    none["precipitation"][:] = np.nan
    with pytest.raises(xsomo.exceptions.XsomoValueError, match="no target day has forcing"):
        xsomo.train_lstm(none, tgt, **TINY)


def test_drivers_stamped_at_noon_meet_targets_at_midnight(case):
    """CF daily means stamped at 12:00 'shared no period with data' with midnight targets."""
    from xsomo.model.training import prepare_training_data

    drv, tgt, _ = case
    kw = {"layers": (1,), "dynamic": ("precipitation",), "static": ("elevation_mean",)}
    want = prepare_training_data(drv, tgt, **kw)
    noon = drv.assign_coords(time=drv.time + np.timedelta64(12, "h"))
    got = prepare_training_data(noon, tgt, **kw)
    np.testing.assert_array_equal(got.target, want.target)
    hourly = tgt.isel(time=np.repeat(np.arange(5), 2))
    hourly = hourly.assign_coords(time=tgt.time.values[np.repeat(np.arange(5), 2)] + np.tile([0, 6], 5).astype("timedelta64[h]"))
    with pytest.raises(xsomo.exceptions.XsomoValueError, match="sub-daily"):
        prepare_training_data(drv, hourly, **kw)


def _gappy_stations():
    """Two stations, 2020-01-01..2020-03-31, with gaps of 1, 2 and 3 days and gaps at the ends."""
    t = pd.date_range("2020-01-01", "2020-03-31", freq="D")
    rng = np.random.default_rng(3)
    p = rng.gamma(0.5, 4.0, (2, t.size))
    ta = 280.0 + 5 * np.sin(np.arange(t.size) / 9.0)[None, :] + np.array([[0.0], [3.0]])
    for arr in (p, ta):
        arr[0, 10] = np.nan  # 1 day
        arr[0, 40:42] = np.nan  # 2 days (February)
        arr[1, 20:23] = np.nan  # 3 days
        arr[1, :2] = np.nan  # at the start: no day before
        arr[0, -1] = np.nan  # at the end: no day after
    return xr.Dataset(
        {"precipitation": (("station", "time"), p, {"units": "mm d-1"}),
         "air_temperature": (("station", "time"), ta, {"units": "K"})},
        coords={"time": t, "lat": ("station", [19.7, 20.7]), "lon": ("station", [-155.4, -156.2])},
    )


def test_fill_gaps_fills_short_gaps_inside_the_record_only():
    st = _gappy_stations()
    plain = point_drivers(st)
    assert "forcing_filled" not in plain  # off by default: gaps stay gaps
    pts = point_drivers(st, fill_gaps=2)
    p, ta = st["precipitation"].values, st["air_temperature"].values
    fp, fta = pts["precipitation"].values, pts["air_temperature"].values
    # temperature: linear between the days around the gap
    np.testing.assert_allclose(fta[0, 10], (ta[0, 9] + ta[0, 11]) / 2, rtol=1e-6)
    np.testing.assert_allclose(fta[0, 40:42], ta[0, 39] + np.array([1, 2]) / 3 * (ta[0, 42] - ta[0, 39]), rtol=1e-6)
    # precipitation: the station's mean of that calendar month (not the neighbours, not 0)
    jan = np.nanmean(p[0, :31])
    feb = np.nanmean(p[0, 31:60])
    np.testing.assert_allclose(fp[0, 10], jan, rtol=1e-5)
    np.testing.assert_allclose(fp[0, 40:42], feb, rtol=1e-5)
    # longer than fill_gaps, or at an end of the record: left missing
    assert np.isnan(fp[1, 20:23]).all() and np.isnan(fta[1, 20:23]).all()
    assert np.isnan(fp[1, :2]).all() and np.isnan(fp[0, -1])
    # measured days are untouched, and the flag marks exactly the filled days
    measured = np.isfinite(p)
    np.testing.assert_array_equal(fp[measured], p[measured].astype("float32"))
    flag = pts["forcing_filled"].values
    assert flag.dtype == np.int8
    np.testing.assert_array_equal(np.flatnonzero(flag[0]), [10, 40, 41])
    assert not flag[1].any()
    # a 3-day limit reaches the 3-day gap too
    assert np.isfinite(point_drivers(st, fill_gaps=3)["precipitation"].values[1, 20:23]).all()


def test_fill_gaps_uses_the_climate_period_and_days_outside_the_window():
    st = _gappy_stations()
    # precipitation's month means from `climate` only (January 2020 without its 20 first days)
    pts = point_drivers(st, fill_gaps=1, climate=("2020-01-21", "2020-03-31"))
    p = st["precipitation"].values
    np.testing.assert_allclose(pts["precipitation"].values[0, 10], np.nanmean(p[0, 20:31]), rtol=1e-5)
    # a window starting on the gap's day still gets the value from the day before it
    win = point_drivers(st, fill_gaps=1, time=("2020-01-11", "2020-01-31"))
    whole = point_drivers(st, fill_gaps=1)
    np.testing.assert_array_equal(
        win["air_temperature"].values, whole["air_temperature"].sel(time=slice("2020-01-11", "2020-01-31")).values
    )
    assert int(win["forcing_filled"].values[0, 0]) == 1
    with pytest.raises(xsomo.XsomoError, match="fill_gaps"):
        point_drivers(st, fill_gaps=-1)
    # a climate period without forcing days is refused (its statics would be NaN)
    with pytest.raises(xsomo.XsomoError, match="holds no day of the forcing"):
        point_drivers(st, climate=("1990-01-01", "1990-12-31"))


def test_fill_gaps_is_not_a_model_input_and_gives_more_predicted_days(case):
    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    model = xsomo.train_lstm(pts, tgt, **{**TINY, "epochs": 1, "steps_per_epoch": 1})
    gappy = pts.copy(deep=True)
    gappy["precipitation"][:, 200] = np.nan
    grid = drv.copy(deep=True)
    grid["precipitation"][{"time": 200}] = np.nan
    filled = point_drivers(tgt, grid, fill_gaps=1)  # gridded drivers sampled at the stations, then filled
    assert int(filled["forcing_filled"].sum()) == gappy.sizes["station"]
    # every input but the filled precipitation is as sampled
    for v in pts.data_vars:
        if v != "precipitation":
            np.testing.assert_array_equal(filled[v].values, pts[v].values)
    lost = xsomo.predict(gappy, model, mode="continuous")
    kept = xsomo.predict(filled, model, mode="continuous")
    assert int(lost["missing_forcing_days"].sum()) == model.config.lookback * gappy.sizes["station"]
    assert int(kept["missing_forcing_days"].sum()) == 0
    assert np.isfinite(kept["sm"].values).all()
    # the flag is not an input: the model reads the same inputs as from the unfilled drivers
    assert "forcing_filled" not in model.config.dynamic + model.config.static
    gap_day = pts.indexes["time"][200]
    early = slice(None, gap_day - pd.Timedelta(days=1))
    before = xsomo.predict(pts, model, mode="continuous")["sm"].sel(time=early)
    np.testing.assert_allclose(kept["sm"].sel(time=early).values, before.values, atol=1e-5)


def test_fill_gaps_pairs_the_climate_stations_by_label():
    """The climate's stations were taken by position: in another order each station got the
    other's monthly rain."""
    pts = _two_stations_at_one_place()
    pts["precipitation"][:, 2] = np.nan
    filled = fill_forcing_gaps(pts, 1, climate=pts.isel(station=[1, 0]))
    assert filled["precipitation"][:, 2].values.tolist() == [1.0, 9.0]
    with pytest.raises(XsomoValueError, match=r"climate= lacks 1 of the 2 stations \(N\.a\)"):
        fill_forcing_gaps(pts, 1, climate=pts.isel(station=[1]))


def test_a_second_fill_keeps_the_first_fills_flags():
    pts = _two_stations_at_one_place()
    pts["precipitation"][0, 1] = np.nan
    once = fill_forcing_gaps(pts, 1)
    once["precipitation"][0, 3] = np.nan
    twice = fill_forcing_gaps(once, 1)
    assert np.flatnonzero(twice["forcing_filled"][0].values).tolist() == [1, 3]


def test_climate_statics_are_in_their_labelled_units_whatever_the_forcings_units():
    """The means were taken in the forcing's units and labelled mm d-1 / K: 0.003 'mm d-1'
    for rain in m d-1 and 9.1 'K' for degC."""
    st = _forcing_stations(False)
    ref = point_drivers(st)
    other = st.copy()
    other["precipitation"] = (st["precipitation"] / 1000).assign_attrs(units="m d-1")
    other["air_temperature"] = (st["air_temperature"] - 273.15).assign_attrs(units="degC")
    got = point_drivers(other)
    for v in ("precipitation_mean", "air_temperature_mean"):
        assert got[v].attrs["units"] == ref[v].attrs["units"]
        np.testing.assert_allclose(got[v].values, ref[v].values, rtol=1e-5)


def test_air_temperature_mean_in_degc_is_converted_for_the_model():
    """A non-canonical static was passed on as it was: degC read as K (and units='banana' taken)."""
    from xsomo.exceptions import UnitError
    from xsomo.model.inputs import driver_variable

    pts = point_drivers(_forcing_stations(False))
    in_c = pts.assign(air_temperature_mean=(pts["air_temperature_mean"] - 273.15).assign_attrs(units="degC"))
    np.testing.assert_allclose(
        driver_variable(in_c, "air_temperature_mean").values, pts["air_temperature_mean"].values, rtol=1e-6
    )
    with pytest.raises(UnitError, match="banana"):
        driver_variable(pts.assign(air_temperature_mean=pts["air_temperature_mean"].assign_attrs(units="banana")),
                        "air_temperature_mean")  # fmt: skip


def test_point_drivers_take_one_year_as_the_period():
    st = _forcing_stations(False)
    np.testing.assert_array_equal(
        point_drivers(st, time="2020")["precipitation"].values,
        point_drivers(st, time=("2020-01-01", "2020-12-31"))["precipitation"].values,
    )
    with pytest.raises(XsomoValueError, match="one date such as '2001'"):
        point_drivers(st, climate=5)


def test_an_input_without_canonical_units_keeps_the_label_it_was_trained_with(case, tmp_path):
    """A non-canonical input reaches the network unconverted: predicting with another label
    (degC data for a model trained on K, or units='banana') went through without a word."""
    from xsomo.exceptions import UnitError
    from xsomo.model import TrainedModel

    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    pts["my_index"] = ("station", np.linspace(0.2, 0.8, pts.sizes["station"]), {"units": "1"})
    kw = {**TINY, "epochs": 1, "steps_per_epoch": 1}
    model = xsomo.train_lstm(pts, tgt, static=(*cv.STATIC_NAMES, "my_index"), **kw)
    assert model.metadata["input_units"] == {"my_index": "1"}
    model.save(tmp_path / "m")
    back = TrainedModel.load(tmp_path / "m")
    xsomo.predict(pts, back, mode="continuous")  # the same label: fine
    pct = pts.assign(my_index=(pts["my_index"] * 100).assign_attrs(units="%"))
    with pytest.raises(UnitError, match=r"'my_index' has units '%', but the model was trained on it in '1'"):
        xsomo.predict(pct, back, mode="continuous")


def test_point_drivers_keep_the_users_station_ids():
    """Without ISMN names the stations were relabelled with lat/lon strings ('19.700000,-155.400000')."""
    st = _forcing_stations(False).assign_coords(station=[101, 102])
    assert point_drivers(st)["station"].values.tolist() == [101, 102]
    # two sensors at one place still make one point, labelled by the place
    two = st.assign_coords(lat=("station", [19.7, 19.7]), lon=("station", [-155.4, -155.4]))
    two = two.copy(data={v: np.repeat(two[v].values[:1], 2, axis=0) for v in two.data_vars})  # one forcing
    assert point_drivers(two)["station"].values.tolist() == ["19.700000,-155.400000"]


def test_climate_statics_from_some_seasons_only_are_warned_about():
    """One November-February of a nine-year climate period gave a precipitation mean 47 % too
    high at PuaAkala, without a word."""
    t = pd.date_range("2001-01-01", "2004-12-31", freq="D")
    rain = 1.0 + 4.0 * np.isin(t.month, [11, 12, 1, 2])  # a wet winter
    st = xr.Dataset(
        {"precipitation": (("station", "time"), np.stack([rain, rain]), {"units": "mm d-1"}),
         "air_temperature": (("station", "time"), np.full((2, t.size), 290.0), {"units": "K"})},
        coords={"station": ["whole", "winters"], "time": t, "lat": ("station", [19.7, 20.7]),
                "lon": ("station", [-155.4, -156.2])},
    )  # fmt: skip
    st["precipitation"][1, ~np.isin(t.month, [11, 12, 1, 2])] = np.nan
    st["air_temperature"][1, ~np.isin(t.month, [11, 12, 1, 2])] = np.nan
    with pytest.warns(RuntimeWarning, match=r"precipitation_mean of 1 station\(s\) \(winters\).*weigh the calendar months unevenly \(Mar 0x"):
        pts = point_drivers(st)
    assert pts.precipitation_mean.values.tolist() == pytest.approx([1 + 4 * 120 / 365.25, 5.0], rel=2e-3)
    with pytest.warns(RuntimeWarning, match=r"\(whole, winters\).*unevenly"):
        point_drivers(st, climate=("2001-01-01", "2001-06-30"))
    with pytest.warns(RuntimeWarning, match=r"\(whole, winters\).*Jan 1.6x"):  # 15 months: January-March twice
        point_drivers(st, climate=("2001-01-01", "2002-03-31"))
    import warnings

    gaps = st.isel(station=[0]).copy(deep=True)
    gaps["precipitation"][0, [40, 200, 300]] = np.nan  # a year with a few failed days is fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        point_drivers(st.isel(station=[0]))  # four whole years: no warning
        point_drivers(gaps, climate=("2002-01-01", "2002-12-31"))


def test_point_validation_holds_out_whole_stations_and_refuses_a_sensor_given_twice(case):
    """The split drew sensors: a held-out sensor's station (forcing, statics) trained through its
    other sensor. A target set concatenated twice trained and validated on the same series."""
    from xsomo.model.training import TrainingConfig, prepare_training_data, split_validation

    drv, tgt, _ = case
    pts = point_drivers(tgt, drv)
    sm1 = tgt.sm.sel(layer=1).values

    def sensors(tag):
        return xr.Dataset(
            {"sm": (("station", "time"), sm1, {"units": "m3 m-3"})},
            coords={"station": [f"st{c}.{tag}" for c in range(5)], "time": tgt.time.values,
                    "lat": ("station", tgt.lat.values), "lon": ("station", tgt.lon.values), "layer": ("station", [1] * 5)},
        )  # fmt: skip

    two = xr.concat([sensors("A"), sensors("B")], "station")
    data = prepare_training_data(pts, two, layers=(1,), dynamic=("precipitation",), static=("elevation_mean",))
    settings = TrainingConfig(val_fraction=0.4, lookback=30, seq_length=30)
    usable = np.arange(10)
    for seed in range(6):
        split = split_validation(data.target[:, 0], usable, settings.replace(seed=seed), 1, groups=data.rows)
        assert split.how == "cells" and split.val.size == 4  # two stations, both their sensors
        assert not set(data.rows[split.val]) & set(data.rows[split.train])
        assert set(split.val) | set(split.train) == set(usable)
    with pytest.raises(XsomoValueError, match=r"targets give 5 sensor id\(s\) more than once \('st0\.A'"):
        prepare_training_data(pts, xr.concat([sensors("A"), sensors("A")], "station"), layers=(1,),
                              dynamic=("precipitation",), static=("elevation_mean",))  # fmt: skip


def test_evaluate_points_says_which_reference_stations_found_no_point():
    """Another download of a station, its coordinates rounded 0.007° away, came back all NaN and
    0 stations without a word."""
    t = pd.date_range("2020-01-01", periods=40, freq="D")
    vals = np.random.default_rng(0).random((1, 40))
    pred = xr.Dataset(
        {"sm": (("station", "time"), vals, {"units": "m3 m-3"})},
        coords={"station": ["N.a"], "time": t, "lat": ("station", [19.79264]), "lon": ("station", [-155.33183]),
                "network": ("station", ["N"]), "station_name": ("station", ["a"])},
    )  # fmt: skip
    ref = pred.assign_coords(lat=("station", [19.8]), lon=("station", [-155.333]))
    with pytest.warns(RuntimeWarning, match=r"same network/station_name farther than 0.0001° away: N\.a \(0\.0074° away\)"):
        out = xsomo.evaluate(pred, ref, min_days=3)
    assert out.pearson_r.isnull().all()
    other = ref.drop_vars(["network", "station_name"])
    with pytest.warns(RuntimeWarning, match="none of the 1 reference stations has a predicted point"):
        xsomo.evaluate(pred, other, min_days=3)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(xsomo.evaluate(pred, pred, min_days=3).pearson_r.squeeze()) == pytest.approx(1.0)


def test_point_mode_errors_name_what_is_missing_and_what_to_do(case):
    """Bare KeyErrors 'lat' (predict, after the whole roll-out; training), a point-drivers and
    grid-cell-targets mismatch that did not say the targets were cells, and drivers shorter than
    the spin-up told "no output day" only."""
    from xsomo.model.training import prepare_training_data

    drv, tgt, _ = case
    sites = xr.Dataset(coords={"station": ["a", "b"], "lat": ("station", tgt.lat.values[:2] + 0.03),
                               "lon": ("station", tgt.lon.values[:2] + 0.03)})  # fmt: skip
    pts = point_drivers(sites, drv)
    model = testing.random_model(layers=(1,), lookback=30, ensemble=1)
    with pytest.raises(MissingVariableError, match="point drivers need a 'lat' coordinate"):
        xsomo.predict(pts.drop_vars(["lat", "lon"]), model)
    kw = {"layers": (1,), "dynamic": ("precipitation",), "static": ("elevation_mean",)}
    with pytest.raises(MissingVariableError, match="targets lack the 'lat' coordinate"):
        prepare_training_data(pts, tgt.drop_vars("lat"), **kw)
    with pytest.raises(GridMismatchError, match=r"The targets are grid cells.*station series themselves"):
        prepare_training_data(pts, tgt, **kw)
    with pytest.raises(GridMismatchError, match=r"after the 30-day spin-up \(the drivers hold 20 days\)"):
        xsomo.predict(pts.isel(time=slice(0, 20)), model)
