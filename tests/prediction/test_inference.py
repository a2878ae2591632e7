"""inference.predict: lazy blocks, agreement with the kernel and with windows, gaps, checks, distributed."""

from __future__ import annotations

import contextlib
import warnings

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import conventions as cv
from xsomo import testing
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError
from xsomo.model import TrainedModel, rollout
from xsomo.prediction import inference


def synthetic_drivers(**kwargs) -> xr.Dataset:
    """xsomo.testing.synthetic_drivers without pandas' dayofyear deprecation warning (fixed upstream later)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        with contextlib.suppress(AttributeError):
            warnings.simplefilter("ignore", pd.errors.Pandas4Warning)
        return testing.synthetic_drivers(**kwargs)


#: a random cascade (also imported by test_output and test_predict_cli)
make_model = testing.random_model


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return make_model()


@pytest.fixture(scope="module")
def drivers() -> xr.Dataset:
    return synthetic_drivers(nlat=5, nlon=6, ndays=150, seed=3, sea_cells=2)


def _direct(
    model: TrainedModel, drivers: xr.Dataset, mode: str = "continuous", spinup: int | None = None
):
    """Independent reference: every land cell through rollout.predict_block in one call."""
    spinup = model.config.lookback if spinup is None else spinup
    stacked = drivers.stack(cell=("lat", "lon"))
    land = stacked[cv.LAND_MASK].values.astype(bool)
    dyn = np.stack([stacked[v].values.T for v in model.config.dynamic], axis=-1)[land]
    stat = np.stack([stacked[v].values for v in model.config.static], axis=-1)[land]
    pred = rollout.predict_block(model, dyn, stat, mode=mode, spinup=spinup)[..., spinup:]
    nlay, _, _, nt = pred.shape
    full = np.full((2, nlay, land.size, nt), np.nan, np.float32)
    full[0][:, land] = pred.mean(axis=1)
    full[1][:, land] = pred.std(axis=1)
    full = np.moveaxis(full, 2, 3)
    return full.reshape(2, nlay, nt, drivers.sizes["lat"], drivers.sizes["lon"])


def _no_compute():
    def fail(*args, **kwargs):
        raise AssertionError("predict() computed something; it must stay lazy")

    return dask.config.set(scheduler=fail)


def test_lazy_values_attrs_and_crs(model, drivers):
    chunked = drivers.chunk({"time": 50, "lat": 3, "lon": 4})
    with _no_compute():
        sm = inference.predict(
            chunked, model, chunks={"lat": 2, "lon": 4}, mode="continuous", check_convergence=False
        )
    assert isinstance(sm["sm"].data, dask.array.Array)
    assert sm["sm"].dims == ("layer", "time", "lat", "lon")
    assert sm["sm"].dtype == np.float32 and sm["sm_spread"].dtype == np.float32
    spin = model.config.lookback
    np.testing.assert_array_equal(sm["time"].values, drivers["time"].values[spin:])
    np.testing.assert_array_equal(sm["layer"].values, [1, 2, 3])
    np.testing.assert_allclose(sm["depth_top"].values, [0.0, 0.1, 0.3])
    np.testing.assert_allclose(sm["depth_bottom"].values, [0.1, 0.3, 0.5])
    assert sm["sm"].attrs["units"] == "m3 m-3"
    assert sm["sm"].attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert sm.rio.crs.to_epsg() == 4326
    assert sm.attrs["Conventions"] == "CF-1.8" and sm.attrs["spinup_days"] == spin
    testing.assert_cf_attrs(sm)
    got = sm.compute()
    want = _direct(model, drivers)
    np.testing.assert_allclose(got["sm"].values, want[0], atol=2e-6)
    np.testing.assert_allclose(got["sm_spread"].values, want[1], atol=2e-6)
    sea = ~drivers[cv.LAND_MASK].values
    assert np.isnan(got["sm"].values[..., sea]).all()
    assert np.isfinite(got["sm"].values[..., ~sea]).all()


def test_block_size_does_not_change_the_result(model, drivers):
    one = inference.predict(
        drivers, model, chunks={"lat": 5, "lon": 6}, mode="continuous"
    ).compute()
    many = inference.predict(drivers, model, chunks=4, mode="continuous").compute()
    assert many["sm"].chunks is None
    np.testing.assert_allclose(many["sm"].values, one["sm"].values, atol=2e-6)


def test_layers_subset_and_accessor(model, drivers):
    full = drivers.somo.predict(model, mode="continuous").compute()
    two = drivers.somo.predict(model, mode="continuous", layers=[2]).compute()
    np.testing.assert_array_equal(two["layer"].values, [2])
    np.testing.assert_allclose(
        two["sm"].sel(layer=2).values, full["sm"].sel(layer=2).values, atol=2e-6
    )
    with pytest.raises(XsomoValueError, match="layers"):
        inference.predict(drivers, model, layers=[4])


#: Agreement of two ways to compute the same days (measured: continuous vs windowed 6e-8,
#: a later output start 2.4e-7 m3 m-3; a one-day shift moves them by ~5e-3, see below).
AGREE = 1e-5


def test_a_windowed_day_does_not_depend_on_where_the_output_starts():
    """Layers 2-3 of a window read layer 1 on each of its days, from partial windows on the first
    days read: a day's value depended on the output's start (9.5e-4 m3 m-3 in layer 3 on the tiny
    world). Grid and points alike."""
    from xsomo.drivers.points import point_drivers

    model = make_model(forget_bias=2.0, lookback=30)  # a partial window is not the whole one

    drv = synthetic_drivers(nlat=3, nlon=4, ndays=200, seed=7)
    full = inference.predict(drv, model, mode="windowed")["sm"]
    later = inference.predict(drv, model, mode="windowed", time=(drv.time.values[120], None))["sm"]
    a, b = xr.align(later, full, join="inner")
    assert a.sizes["time"] == 80
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-6)
    sites = xr.Dataset(coords={"station": ["p", "q"], "lat": ("station", drv.lat.values[[0, 2]]),
                               "lon": ("station", drv.lon.values[[1, 3]])})  # fmt: skip
    pts = point_drivers(sites, drv)
    p_full = inference.predict(pts, model, mode="windowed")["sm"]
    p_late = inference.predict(pts, model, mode="windowed", time=(drv.time.values[120], None))["sm"]
    a, b = xr.align(p_late, p_full, join="inner")
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-6)
    np.testing.assert_allclose(p_full.values, full.isel(lat=[0, 2], lon=[1, 3]).values[..., [0, 1], [0, 1]], atol=1e-6)


def test_continuous_agrees_with_windowed_after_spinup():
    """The issue's acceptance test: max |continuous - windowed| < 1e-5 m3 m-3 for a model that forgets."""
    model = make_model(lookback=40, ensemble=2, hidden=16, seed=1)
    drv = synthetic_drivers(nlat=4, nlon=5, ndays=160, seed=5)
    dist = rollout.convergence_distance(
        model,
        np.stack([drv[v].values[:, 0, :].T for v in model.config.dynamic], axis=-1),
        np.stack([drv[v].values[0] for v in model.config.static], axis=-1),
    )
    assert np.nanmax(dist) < 1e-3  # it forgets within the lookback
    cont = inference.predict(drv, model, mode="continuous").compute()["sm"].values
    win = inference.predict(drv, model, mode="windowed").compute()["sm"].values
    diff = np.abs(cont - win)[np.isfinite(cont)]
    assert np.isfinite(win[np.isfinite(cont)]).all()
    q = np.quantile(diff, [0.5, 0.99, 1.0])
    print(
        f"|continuous - windowed| median {q[0]:.2e}, p99 {q[1]:.2e}, max {q[2]:.2e} m3 m-3 over {diff.size} values"
    )
    assert q[2] < AGREE
    auto = inference.predict(drv, model, mode="auto").compute()["sm"].values
    np.testing.assert_allclose(auto, cont, atol=1e-6)  # auto picked the roll-out


def test_spinup_is_lengthened_when_the_model_forgets_slowly():
    slow = make_model(forget_bias=2.0, lookback=20)  # forgets within ~80 days, not 20
    drv = synthetic_drivers(nlat=3, nlon=3, ndays=300, seed=3, sea_cells=0)
    t = pd.DatetimeIndex(drv["time"].values)
    with pytest.warns(RuntimeWarning, match="lengthened to 80 days"):
        sm = inference.predict(drv, slow, mode="continuous", time=(t[100], t[-1]))
    assert sm.attrs["spinup_days"] == 80
    got = sm.compute()["sm"].values

    def rollout_with(spinup):
        return (
            inference.predict(
                drv,
                slow,
                mode="continuous",
                time=(t[100], t[-1]),
                spinup=spinup,
                check_convergence=False,
            )
            .compute()["sm"]
            .values
        )

    all_history = rollout_with(100)
    short = rollout_with(20)
    assert np.nanmax(np.abs(got - all_history)) < 2e-3  # the state has converged
    assert np.nanmax(np.abs(short - all_history)) > 5e-3  # it had not after 20 days
    # spinup=0 skipped the check: the first days came from a zero state without a word (QA)
    with pytest.warns(RuntimeWarning, match="within the 0-day spin-up.*lengthened to 80 days"):
        none = inference.predict(drv, slow, mode="continuous", time=(t[100], t[-1]), spinup=0)
    assert none.attrs["spinup_days"] == 80
    np.testing.assert_array_equal(none.compute()["sm"].values, got)
    with pytest.warns(RuntimeWarning, match="spinup=0 and the drivers hold no day before the output period"):
        inference.predict(drv, slow, mode="continuous", spinup=0)


def test_a_model_that_never_forgets_is_flagged_and_auto_falls_back():
    stubborn = make_model(forget_bias=10.0, lookback=20)
    drv = synthetic_drivers(nlat=2, nlon=3, ndays=120, seed=3, sea_cells=0)
    with pytest.warns(RuntimeWarning, match="does not forget"):
        auto = inference.predict(drv, stubborn, mode="auto")
    win = inference.predict(drv, stubborn, mode="windowed")
    np.testing.assert_allclose(auto.compute()["sm"].values, win.compute()["sm"].values, atol=1e-6)


def test_gaps_mask_windows_lacking_data_and_are_counted(model):
    drv = synthetic_drivers(nlat=3, nlon=4, ndays=120, seed=2, sea_cells=0)
    gap_day = 70
    drv["precipitation"][gap_day, 1, 2] = np.nan
    with pytest.warns(RuntimeWarning, match="gaps"):
        sm = inference.predict(drv, model, mode="continuous")
    got = sm.compute()
    lb = model.config.lookback
    first = lb  # output index 0 is drivers day lb
    cell = got["sm"].values[:, :, 1, 2]
    bad = np.zeros(got.sizes["time"], bool)
    bad[gap_day - first : gap_day - first + lb] = True  # days whose window holds the gap
    assert np.isnan(cell[:, bad]).all()
    assert np.isfinite(cell[:, ~bad]).all()
    assert int(got[inference.GAP_DAYS].values[1, 2]) == bad.sum()
    assert int(got[inference.GAP_DAYS].sum()) == bad.sum()
    others = np.delete(got["sm"].values.reshape(3, got.sizes["time"], -1), 1 * 4 + 2, axis=-1)
    assert np.isfinite(others).all()


def test_units_are_converted(model, drivers):
    celsius = drivers.copy()
    celsius["air_temperature"] = drivers["air_temperature"] - 273.15
    celsius["air_temperature"].attrs = {**drivers["air_temperature"].attrs, "units": "degC"}
    a = inference.predict(drivers, model, mode="continuous").compute()["sm"].values
    b = inference.predict(celsius, model, mode="continuous").compute()["sm"].values
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_missing_inputs_are_listed(model, drivers):
    with pytest.raises(MissingVariableError, match="precipitation") as err:
        inference.predict(drivers.drop_vars(["precipitation", "clay_sub"]), model)
    assert "clay_sub" in str(err.value)


def test_period_and_spinup(model, drivers):
    t = pd.DatetimeIndex(drivers["time"].values)
    sm = inference.predict(drivers, model, time=(t[60], t[99]), mode="continuous")
    assert sm.sizes["time"] == 40 and sm["time"].values[0] == t[60]
    full = inference.predict(drivers, model, mode="continuous").compute()
    sub = sm.compute()
    # the spin-up before day 60 starts on day 30: the roll-out sees different history, same forgotten state
    np.testing.assert_allclose(sub["sm"].values, full["sm"].sel(time=sub["time"]).values, atol=AGREE)
    with pytest.raises(GridMismatchError, match="spin-up"):
        inference.predict(drivers, model, time=(t[10], t[50]))
    with pytest.raises(GridMismatchError, match="not covered"):
        inference.predict(drivers, model, time=(t[40], t[-1] + pd.Timedelta(days=5)))
    with pytest.raises(GridMismatchError, match="daily"):
        inference.predict(drivers.isel(time=np.r_[0:50, 51:150]), model)
    with pytest.raises(GridMismatchError, match="spin-up"):
        inference.predict(drivers.isel(time=slice(0, 20)), model)


def test_partial_dates_stand_for_their_month_or_year(model):
    """time="2016-07" gave 1 day, ("2016", "2017") 367 days, slice("2016-07", "2016-08") 32 (QA):
    a partial date is its whole month or year, as in xarray's .sel."""
    drv = synthetic_drivers(nlat=2, nlon=2, ndays=1200, seed=5, start="2015-06-01")
    want = drv.sel(time=slice("2016-07", "2016-08"))["time"].values
    cases = [("2016-07", 31), (("2016", "2017"), 731), (slice("2016", "2016"), 366), (slice("2016-07", "2016-08"), 62)]
    for time, n in cases:
        sm = inference.predict(drv, model, time=time, mode="continuous", check_convergence=False)
        assert sm.sizes["time"] == n, time
    sm = inference.predict(drv, model, time=slice("2016-07", "2016-08"), mode="continuous", check_convergence=False)
    np.testing.assert_array_equal(sm["time"].values, want)
    with pytest.raises(XsomoValueError, match="not a date"):
        inference.predict(drv, model, time=("2016-13", None))


def test_the_model_argument_is_checked(drivers, tmp_path):
    """drivers.somo.predict("model_dir") raised AttributeError: 'str' object has no attribute 'config'."""
    with pytest.raises(XsomoValueError, match=r"got str; load the folder first: xsomo.TrainedModel.load\('model_dir'\)"):
        inference.predict(drivers, "model_dir")
    with pytest.raises(XsomoValueError, match="got NoneType"):
        drivers.somo.predict(None)


def test_a_one_day_misalignment_fails_the_agreement_checks(model, drivers):
    """Issue 20 item 3: the tolerances above catch a one-day shift of the output."""
    t = pd.DatetimeIndex(drivers["time"].values)
    sub = inference.predict(drivers, model, time=(t[60], t[99]), mode="continuous").compute()
    full = inference.predict(drivers, model, mode="continuous").compute()
    shifted = full["sm"].sel(time=slice(t[59], t[98])).values  # one day early
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(sub["sm"].values, shifted, atol=AGREE)
    drv = synthetic_drivers(nlat=4, nlon=5, ndays=160, seed=5)
    slow = make_model(lookback=40, ensemble=2, hidden=16, seed=1)
    cont = inference.predict(drv, slow, mode="continuous").compute()["sm"].values
    win = inference.predict(drv, slow, mode="windowed").compute()["sm"].values
    shift = np.abs(cont[:, 1:] - win[:, :-1])
    assert np.nanmax(shift) > 10 * AGREE, np.nanmax(shift)


def test_grid_mismatch(model, drivers):
    grid = cv.GridSpec.from_coords(drivers["lat"].values, drivers["lon"].values)
    inference.predict(drivers, model, grid=grid)
    other = cv.GridSpec(grid.west, grid.east + 0.1, grid.south, grid.north)
    with pytest.raises(GridMismatchError, match="grid"):
        inference.predict(drivers, model, grid=other)


def test_default_chunks_bound_block_memory():
    c = inference.default_chunks(355, 570, 6940 + 365)
    assert c["lat"] * c["lon"] * (6940 + 365) <= inference.BLOCK_CELL_DAYS
    assert c["lat"] & (c["lat"] - 1) == 0  # power of two: tiles the file chunks


def test_distributed_local_cluster(model, drivers, tmp_path):
    """Blocks on 2 worker processes: the model travels as a pickled object, results equal local ones."""
    distributed = pytest.importorskip("distributed")
    from xsomo.prediction import output

    local = inference.predict(
        drivers, model, chunks={"lat": 3, "lon": 3}, mode="continuous"
    ).compute()
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        sm = inference.predict(
            drivers, model, chunks={"lat": 3, "lon": 3}, mode="continuous", client=client
        )
        got = sm.compute()
        files = output.to_files(sm, tmp_path, layers=[1], progress=False, client=client)
        # workers lost (restarted) between two computes: the model was scattered data, lost for
        # good, and every later compute failed with "lost dependencies"
        client.restart()
        again = sm.compute()
    np.testing.assert_allclose(got["sm"].values, local["sm"].values, atol=2e-6)
    np.testing.assert_array_equal(again["sm"].values, got["sm"].values)
    # the client closed: the result computes on the local scheduler ("Missing dependency TrainedModel-...")
    np.testing.assert_allclose(sm.compute()["sm"].values, local["sm"].values, atol=2e-6)
    with xr.open_dataset(files[0]) as f:
        year = int(f["time"].dt.year[0])
        want = local["sm"].sel(layer=1).sel(time=str(year)).isel(lat=slice(None, None, -1))
        np.testing.assert_allclose(f["layer1"].values, want.values, atol=2e-6)


def test_auto_decides_per_block_on_a_sample_of_cells(model):
    drv = synthetic_drivers(nlat=3, nlon=4, ndays=90, seed=8, sea_cells=0)
    cont = inference.predict(drv, model, mode="continuous").compute()["sm"].values
    auto = inference.predict(drv, model, mode="auto", check_cells=3).compute()["sm"].values
    np.testing.assert_allclose(auto, cont, atol=1e-6)
    stubborn = make_model(forget_bias=10.0, lookback=20)
    win = inference.predict(drv, stubborn, mode="windowed").compute()["sm"].values
    with pytest.warns(RuntimeWarning, match="does not forget"):
        sampled = inference.predict(drv, stubborn, mode="auto", check_cells=3)
    np.testing.assert_allclose(sampled.compute()["sm"].values, win, atol=1e-6)


def test_float64_prediction_agrees_and_keeps_float64_drivers(model, drivers, monkeypatch):
    f32 = inference.predict(drivers, model, mode="continuous").compute()
    f64 = drivers.somo.predict(model, mode="continuous", dtype="float64").compute()
    assert f64.attrs["inference_dtype"] == "float64" and f32.attrs["inference_dtype"] == "float32"
    assert f64["sm"].dtype == np.float32  # stored as float32 either way
    np.testing.assert_allclose(f64["sm"].values, f32["sm"].values, atol=1e-5, rtol=0)
    np.testing.assert_allclose(f64["sm"].values, _direct(model, drivers)[0], atol=1e-5, rtol=0)

    seen: list[tuple[np.dtype, np.dtype, str]] = []
    real = inference._predictor()

    def spy(*args, **kwargs):
        seen.append((args[1].dtype, args[2].dtype, kwargs["dtype"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "_predictor", lambda: spy)
    wide = drivers.copy()
    for v in drivers.data_vars:
        if v != cv.LAND_MASK:
            wide[v] = drivers[v].astype("float64")
    cases = [
        (drivers, "float32", np.float32),
        (drivers, "float64", np.float64),
        (wide, "float32", np.float64),
    ]
    for drv, dtype, raw in cases:
        seen.clear()
        drv.somo.predict(model, mode="continuous", dtype=dtype, check_convergence=False).compute()
        # raw drivers are never rounded to float32 before the z-score; float32 ones are not widened
        assert seen and all(s == (raw, raw, dtype) for s in seen), (dtype, seen)


def test_bad_dtype_and_cli_flag(model, drivers):
    from xsomo.cli import build_parser

    with pytest.raises(XsomoValueError, match="float64"):
        inference.predict(drivers, model, dtype="float16")
    with pytest.raises(XsomoValueError, match="dtype"):
        drivers.somo.predict(model, dtype="half")
    args = ["predict", "--drivers", "d.nc", "--model", "m", "--out", "o"]
    parser = build_parser()
    assert parser.parse_args(args).dtype == "float32"
    assert parser.parse_args([*args, "--dtype", "float64"]).dtype == "float64"
    with pytest.raises(SystemExit):
        parser.parse_args([*args, "--dtype", "float16"])


def test_tolerance_lets_auto_take_the_rollout_where_the_measured_bound_allows(recwarn):
    from xsomo.model import rollout

    stubborn = make_model(forget_bias=10.0, lookback=20)
    drv = synthetic_drivers(nlat=3, nlon=4, ndays=90, seed=8, sea_cells=0)
    cont = inference.predict(drv, stubborn, mode="continuous", check_convergence=False).compute()
    # the bound the check measures on these cells: every roll-out pair lies within it
    land = np.asarray(drv[cv.LAND_MASK].values, bool)
    iy, ix = np.nonzero(land)
    dyn = np.stack([drv[v].values[:, iy, ix].T for v in stubborn.config.dynamic], -1)
    stat = np.stack([drv[v].values[iy, ix] for v in stubborn.config.static], -1)
    bound = float(np.nanmax(rollout.convergence_distance(stubborn, dyn, stat, steps=20)))
    assert bound > rollout.DEFAULT_TOLERANCE  # the default check sends this model to windows
    loose = drv.somo.predict(stubborn, mode="auto", tolerance=2 * bound, check_cells=3).compute()
    assert not [w for w in recwarn if "does not forget" in str(w.message)]
    np.testing.assert_allclose(loose["sm"].values, cont["sm"].values, atol=1e-6)
    assert loose.attrs["convergence_tolerance"] == pytest.approx(2 * bound)
    with pytest.raises(XsomoValueError, match="tolerance"):
        inference.predict(drv, stubborn, tolerance=0.0)


def _cycled(drv: xr.Dataset, days: int) -> xr.Dataset:
    """The drivers with their last ``days`` days put in front of them (a one-period cycle)."""
    t = pd.DatetimeIndex(drv["time"].values)
    tail = drv.isel(time=slice(-days, None))
    tail = tail.assign_coords(time=pd.date_range(end=t[0] - pd.Timedelta(days=1), periods=days))
    dyn = [v for v in drv.data_vars if "time" in drv[v].dims]
    return xr.concat([tail[dyn], drv[dyn]], dim="time", join="exact").merge(drv.drop_vars(dyn), join="outer")


@pytest.mark.parametrize(("forget_bias", "rung"), [(0.9, 2), (1.0, 3)])
def test_auto_ladder_takes_a_longer_spinup_before_windows(forget_bias, rung, caplog):
    """Issue 21 item 1: a block that fails the check at the spin-up runs continuously with 2x or
    3x the lookback (forcing cycled where the drivers hold no earlier days), not window by window.
    Measured distances on these drivers (lookback 20; the check's windows in four seasons
    included): bias 0.9: 2.1e-3 after 20 d, 3.2e-4 after 40; bias 1.0: 3.5e-3, 7.8e-4, 2.3e-5
    after 20, 40, 60 d; the tolerance 5e-4 sits between."""
    import logging

    model = make_model(forget_bias=forget_bias, lookback=20)
    drv = synthetic_drivers(nlat=3, nlon=3, ndays=200, seed=3, sea_cells=0)
    t = pd.DatetimeIndex(drv["time"].values)
    with (
        caplog.at_level(logging.WARNING, logger="xsomo.prediction.inference"),
        pytest.warns(RuntimeWarning, match="2x and 3x the lookback"),
    ):
        auto = inference.predict(drv, model, mode="auto", tolerance=5e-4, chunks=9).compute()
    assert (auto[inference.SPINUP_DAYS].values == rung * 20).all()
    assert f"continuous roll-out with a {rung * 20}-day spin-up" in caplog.text
    assert auto.attrs["auto_spinup_ladder_days"] == "20, 40, 60"
    # oracle: the same days cycled as real history, a plain continuous roll-out with that spin-up
    need = (rung - 1) * 20
    want = inference.predict(
        _cycled(drv, need), model, mode="continuous", spinup=rung * 20, time=(t[20], t[-1]),
        check_convergence=False,
    ).compute()  # fmt: skip
    np.testing.assert_allclose(auto["sm"].values, want["sm"].values, atol=1e-6, rtol=0)
    win = inference.predict(drv, model, mode="windowed").compute()["sm"].values
    assert np.nanmax(np.abs(auto["sm"].values - win)) > 1e-5  # not the windowed fallback


def test_auto_ladder_reads_earlier_forcing_where_the_drivers_hold_it():
    model = make_model(forget_bias=1.0, lookback=20)
    drv = synthetic_drivers(nlat=3, nlon=3, ndays=200, seed=3, sea_cells=0)
    t = pd.DatetimeIndex(drv["time"].values)
    period = (t[60], t[-1])
    auto = inference.predict(
        drv, model, mode="auto", tolerance=5e-4, time=period, check_convergence=False
    ).compute()
    assert (auto[inference.SPINUP_DAYS].values == 40).all()  # rung 2, on the 40 days before
    want = inference.predict(
        drv, model, mode="continuous", spinup=40, time=period, check_convergence=False
    ).compute()
    np.testing.assert_allclose(auto["sm"].values, want["sm"].values, atol=1e-6, rtol=0)


def test_land_cells_without_a_static_value_are_reported(model, drivers):
    """A static input NaN on land blanked those cells' predictions without a word (QA)."""
    static = model.config.static[0]
    part = drivers.copy()
    part[static] = drivers[static].where(drivers.lat > float(drivers.lat[1]))
    land = drivers[cv.LAND_MASK].values.astype(bool) if cv.LAND_MASK in drivers else np.ones(part[static].shape, bool)
    lost = int((land & part[static].isnull().values).sum())
    assert lost > 0
    with pytest.warns(RuntimeWarning, match=rf"static input\(s\) \{{'{static}': {lost}\}}.*get no prediction"):
        sm = inference.predict(part, model, mode="continuous")
    assert sm["sm"].isel(time=-1, layer=0).where(xr.DataArray(land, dims=("lat", "lon"))).isnull().sum() >= lost
    with pytest.raises(XsomoValueError, match=rf"no land cell has a value of the static input\(s\) \['{static}'\]"):
        inference.predict(drivers.assign({static: drivers[static] * np.nan}), model, mode="continuous")


def test_auto_ladder_with_spinup_zero_reads_earlier_forcing_too():
    """spinup=0 had cycled the output period's own forcing as the ladder's spin-up though the
    drivers held real days before it (0.075 m3 m-3 off on the demo world)."""
    model = make_model(forget_bias=1.0, lookback=20)
    drv = synthetic_drivers(nlat=3, nlon=3, ndays=200, seed=3, sea_cells=0)
    t = pd.DatetimeIndex(drv["time"].values)
    period = (t[100], t[-1])
    auto = inference.predict(drv, model, mode="auto", tolerance=5e-4, time=period, spinup=0).compute()
    steps = int(auto[inference.SPINUP_DAYS].values.max())
    assert steps >= 40
    want = inference.predict(
        drv, model, mode="continuous", spinup=steps, time=period, check_convergence=False
    ).compute()
    np.testing.assert_allclose(auto["sm"].values, want["sm"].values, atol=1e-6, rtol=0)


def test_auto_ladder_falls_back_to_windows_only_when_no_rung_passes(tmp_path):
    from xsomo.prediction import output

    stubborn = make_model(forget_bias=10.0, lookback=20)
    drv = synthetic_drivers(nlat=2, nlon=3, ndays=120, seed=3, sea_cells=0)
    with pytest.warns(RuntimeWarning, match="does not forget"):
        auto = inference.predict(drv, stubborn, mode="auto", chunks=3)
    assert (auto[inference.SPINUP_DAYS].values == -1).all()
    files = output.to_files(auto, tmp_path, layers=[1], progress=False)
    with xr.open_dataset(files[0]) as ds:
        assert ds.attrs["rollout_per_block"] == "windowed: 2 blocks"


@pytest.mark.slow
# the tiny world has too few target cells to hold some out: training says so and splits by time
@pytest.mark.filterwarnings("ignore:.*too few to hold some out:RuntimeWarning")
def test_tolerance_bound_on_a_trained_tiny_model(tiny_world, tmp_path):
    """Issue 21 item 3 (and 20 item 2): a cascade trained on the tiny world (default penalty,
    tiny settings); per block, what auto chose holds the documented bound (docs/prediction.md):
    continuous at the lookback -> |files - windowed| within a small multiple of the tolerance (3x);
    a longer spin-up S -> within about the tolerance (1.5x) of a roll-out spun up 5 lookbacks;
    windowed -> the windowed values. Run at the default tolerance and at 1.5x the distance measured on every land cell
    (so that the roll-out at the lookback is taken and its bound is checked). ~5 min on 2 busy cores."""
    from xsomo.drivers.assemble import build_targets, open_drivers
    from xsomo.model import training
    from xsomo.prediction import output

    targets, _, _ = build_targets(tiny_world)
    drivers = open_drivers(tiny_world).load()
    lb = 60
    model = training.train_lstm(
        drivers, targets, ensemble=1, hidden=16, lookback=lb, seq_length=lb, epochs=8,
        steps_per_epoch=20, lr=3e-3, dropout=0.0, progress=False, device="cpu", seed=0,
    )  # fmt: skip
    sub = drivers.isel(lat=slice(0, 8), lon=slice(0, 10))
    t = pd.DatetimeIndex(sub["time"].values)
    period = (t[5 * lb], t[-1])  # history before the spin-up: the ladder reads real forcing
    land = np.asarray(sub[cv.LAND_MASK].values, bool)
    iy, ix = np.nonzero(land)
    dyn = np.stack([sub[v].values[4 * lb :, iy, ix].T for v in model.config.dynamic], -1)
    stat = np.stack([sub[v].values[iy, ix] for v in model.config.static], -1)
    measured = float(np.nanmax(rollout.convergence_distance(model, dyn, stat, steps=lb)))
    win = inference.predict(sub, model, mode="windowed", time=period).compute()["sm"].values
    longer = inference.predict(  # spun up longer than any choice of auto (max_spinup 4 lookbacks)
        sub, model, mode="continuous", time=period, spinup=5 * lb, check_convergence=False
    ).compute()["sm"].values
    seen: dict[float, dict[int, float]] = {}
    for tol in (rollout.DEFAULT_TOLERANCE, 1.5 * measured):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "does not forget": the ladder's job
            lazy = inference.predict(
                sub, model, mode="auto", time=period, chunks={"lat": 4, "lon": 5}, tolerance=tol
            )
            files = output.to_files(lazy, tmp_path / f"{tol:g}", layers=[1], progress=False)
            auto = lazy.compute()
        got, chosen = auto["sm"].values, auto[inference.SPINUP_DAYS].values
        assert set(np.unique(chosen[land])) <= {-1, lb, 2 * lb, 3 * lb, 4 * lb}
        seen[tol] = {}
        for code in np.unique(chosen[land]):
            cells = chosen == code
            a = got[..., cells]
            if code == -1:
                np.testing.assert_allclose(a, win[..., cells], atol=1e-6, rtol=0)
                seen[tol][-1] = 0.0
                continue
            ref = win if code == auto.attrs["spinup_days"] == lb else longer
            seen[tol][int(code)] = float(np.nanmax(np.abs(a - ref[..., cells])))
            # the lookback: within a small multiple of the tolerance of the windows; a longer
            # spin-up: within about the tolerance of a roll-out spun up longer. The check samples
            # states, window starts and cells, the files hold every day: at the lookback measured
            # 1.25x and 1.84x the tolerance in two trainings (training is not bit-reproducible
            # across processes), 3.1x before the check started windows in four seasons, 7x with
            # uniform states only; longer spin-ups 0.9e-3, 1.095e-3 and 1.8e-4 at 1e-3. 1.5x still
            # fails a one-day shift (5.6e-3) and any wrong reference
            factor = 3.0 if code == lb else 1.5
            assert seen[tol][int(code)] <= factor * tol, (tol, code, seen)
        with xr.open_dataset(files[0]) as ds:
            assert "block" in ds.attrs["rollout_per_block"]
    print(f"trained tiny model, lookback {lb}, distance at the lookback {measured:.3g}: "
          f"per tolerance, per spin-up chosen, the largest difference to its reference: {seen}")
    assert lb in seen[1.5 * measured]  # the bound at the lookback was checked


def test_layers_are_checked(model, drivers):
    """layers=[1, 1] returned a duplicated layer coordinate."""
    with pytest.raises(XsomoValueError, match="each layer once"):
        inference.predict(drivers, model, layers=[1, 1], mode="continuous")
    with pytest.raises(XsomoValueError, match="not \\[7\\]"):
        inference.predict(drivers, model, layers=[7], mode="continuous")


def test_a_land_fraction_is_land_above_one_half_and_a_percentage_is_refused(model, drivers):
    """conventions define land_mask as a land fraction (land above 0.5), but predict read it with
    astype(bool): cells of 20 % land got a prediction."""
    land = drivers["land_mask"].astype(bool)
    frac = xr.where(land, 1.0, 0.0)
    frac[0, :] = xr.where(land[0, :], 0.2, 0.0)  # a coastal row of 20 % land
    frac[1, :] = xr.where(land[1, :], 0.7, 0.0)
    out = inference.predict(drivers.assign(land_mask=frac), model, mode="continuous")["sm"].isel(layer=0, time=-1)
    assert out[0].isnull().all()
    np.testing.assert_array_equal(out[1:].notnull().values, land[1:].values)
    with pytest.raises(XsomoValueError, match=r"'land_mask' ranges 0\.\.100.*divide by 100"):
        inference.predict(drivers.assign(land_mask=frac * 100), model)


def test_float32_driver_coordinates_line_up_in_memory_and_give_decimal_files(model, drivers, tmp_path):
    """lat 40.04999923706055 reached the files (a float64 run of the same grid then shared 8 of
    200 cells with them); in memory the prediction keeps the drivers' numbers, so that
    sm.where(drivers.land_mask) keeps every cell."""
    from xsomo.prediction import output

    f32 = drivers.assign_coords(lat=drivers.lat.astype("float32"), lon=drivers.lon.astype("float32"))
    a = inference.predict(f32, model, mode="continuous")
    b = inference.predict(drivers, model, mode="continuous")
    assert a["sm"].isel(layer=0, time=0).where(f32.land_mask).notnull().sum() == f32.land_mask.sum()
    np.testing.assert_allclose((a["sm"].values - b["sm"].values)[np.isfinite(b["sm"].values)], 0, atol=1e-7)
    for sm, name in ((a, "f32"), (b, "f64")):
        output.to_files(sm, tmp_path / name, layers=[1], progress=False)
        output.to_zarr(sm, tmp_path / f"{name}.zarr", progress=False)
    for name in ("SoMo.ml-EU_layer1_2014.nc",):
        with xr.open_dataset(tmp_path / "f32" / name) as x, xr.open_dataset(tmp_path / "f64" / name) as y:
            np.testing.assert_array_equal(x.lat.values, y.lat.values)
            np.testing.assert_array_equal(x.lon.values, y.lon.values)
    with xr.open_zarr(tmp_path / "f32.zarr") as x, xr.open_zarr(tmp_path / "f64.zarr") as y:
        np.testing.assert_array_equal(x.lat.values, y.lat.values)


def test_drivers_stamped_at_noon_give_the_days_asked_for(model, drivers):
    """Daily means stamped at 12:00: an end bound at midnight dropped the last day, the output kept
    12:00 stamps (its files 00:00), and extending from a state failed on a KeyError."""
    noon = drivers.assign_coords(time=drivers.time + np.timedelta64(12, "h"))
    last = str(drivers.time.values[-1])[:10]
    got = inference.predict(noon, model, mode="continuous", time=(str(drivers.time.values[60])[:10], last))
    want = inference.predict(drivers, model, mode="continuous", time=(str(drivers.time.values[60])[:10], last))
    np.testing.assert_array_equal(got.time.values, want.time.values)
    assert str(got.time.values[-1])[:10] == last
    np.testing.assert_allclose(got["sm"].values, want["sm"].values, atol=1e-6)
