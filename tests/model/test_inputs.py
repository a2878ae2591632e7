"""One input path for training and prediction: units, order, the daily axis (issue 14, items 1 and 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import xsomo
from xsomo import testing
from xsomo.exceptions import GridMismatchError, MissingVariableError, UnitError
from xsomo.model import inputs, training
from xsomo.prediction import inference

TINY = {
    "layers": (1, 2), "ensemble": 1, "hidden": 4, "lookback": 20, "seq_length": 10, "epochs": 2,
    "steps_per_epoch": 3, "batch_size": 8, "progress": False, "device": "cpu", "forget_tolerance": 0.0,
    "consistency_cells": 4,
}  # fmt: skip


def _kelvin_and_celsius(drivers: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """The same physical drivers with both temperatures in K and in degC.

    The degC values lie on a 1/8-degree grid (exact in binary) and the kelvin values are
    computed from them here, independently of xsomo.units.
    """
    kelvin, celsius = drivers.copy(), drivers.copy()
    for name in ("air_temperature", "skin_temperature"):
        c = np.round((drivers[name].values.astype("float64") - 273.15) * 8) / 8
        celsius[name] = xr.DataArray(c, dims=drivers[name].dims, attrs={**drivers[name].attrs, "units": "degC"})
        kelvin[name] = xr.DataArray(c + 273.15, dims=drivers[name].dims, attrs={**drivers[name].attrs, "units": "K"})
    return kelvin, celsius


def test_item1_same_drivers_in_kelvin_and_celsius_train_identical_models_and_predictions():
    drivers, targets, _ = testing.synthetic_case(seed=3, nlat=3, nlon=4, ndays=150, cells=6)
    kelvin, celsius = _kelvin_and_celsius(drivers)
    a = training.train_lstm(kelvin, targets, seed=2, **TINY)
    b = training.train_lstm(celsius, targets, seed=2, **TINY)
    np.testing.assert_array_equal(a.stats.dynamic_mean, b.stats.dynamic_mean)
    assert 270 < a.stats.dynamic_mean[0] < 300  # kelvin, as the canonical units say
    for key in a.weights:
        for name in a.weights[key]:
            torch.testing.assert_close(a.weights[key][name], b.weights[key][name], atol=0, rtol=0)
    pa = inference.predict(kelvin, a, mode="continuous", spinup=20, check_convergence=False).compute()
    pb = inference.predict(celsius, a, mode="continuous", spinup=20, check_convergence=False).compute()
    np.testing.assert_array_equal(pa["sm"].values, pb["sm"].values)
    assert np.isfinite(pa["sm"].values).any()


def test_degC_labelled_kelvin_or_unlabelled_is_refused_by_training_and_prediction():
    """degC numbers said to be kelvin, or without a units attribute, gave another model (and
    predictions 0.05 m3 m-3 off) without a sign: training and prediction refuse them, naming
    the variable and the likely cause; numpy and dask drivers alike."""
    drivers, targets, _ = testing.synthetic_case(seed=3, nlat=3, nlon=4, ndays=150, cells=6)
    _kelvin, celsius = _kelvin_and_celsius(drivers)
    mislabelled = celsius.copy()
    mislabelled["air_temperature"] = celsius["air_temperature"].assign_attrs(units="K")
    unlabelled = drivers.copy()
    unlabelled["air_temperature"] = drivers["air_temperature"].copy()
    del unlabelled["air_temperature"].attrs["units"]
    with pytest.raises(UnitError, match=r"'air_temperature'.*looks like degC labelled K"):
        training.train_lstm(mislabelled, targets, seed=2, **TINY)
    with pytest.raises(UnitError, match=r"'air_temperature' has no 'units' attribute.*never guesses"):
        training.train_lstm(unlabelled, targets, seed=2, **TINY)
    model = testing.random_model(layers=(1,), lookback=30, ensemble=1)
    kw = {"mode": "continuous", "check_convergence": False}
    with pytest.raises(UnitError, match="looks like degC labelled K"):
        xsomo.predict(mislabelled, model, **kw).compute()
    with pytest.raises(UnitError, match="looks like degC labelled K"):  # checked as the blocks compute
        xsomo.predict(mislabelled.chunk({"lat": 2}), model, **kw).compute()
    with pytest.raises(UnitError, match="no 'units' attribute"):
        xsomo.predict(unlabelled, model, **kw)


def test_inputs_at_cells_units_order_and_errors():
    drivers, _, _ = testing.synthetic_case(seed=1, nlat=3, nlon=4, ndays=20, cells=3)
    _, celsius = _kelvin_and_celsius(drivers)
    celsius["precipitation"] = celsius["precipitation"] / 1000.0
    celsius["precipitation"].attrs["units"] = "m d-1"
    rows, cols = np.array([0, 2, 1]), np.array([3, 0, 1])
    dyn, sta = inputs.inputs_at_cells(
        celsius, rows, cols, dynamic=["precipitation", "air_temperature"], static=["aridity"], dtype="float64"
    )
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        np.testing.assert_allclose(dyn[k, :, 0], celsius["precipitation"].values[:, r, c] * 1000.0, rtol=1e-12)
        np.testing.assert_allclose(dyn[k, :, 1], celsius["air_temperature"].values[:, r, c] + 273.15, rtol=1e-12)
        assert sta[k, 0] == pytest.approx(float(drivers["aridity"].values[r, c]))
    with pytest.raises(MissingVariableError, match="snow"):
        inputs.inputs_at_cells(drivers, rows, cols, dynamic=["snow"], static=["aridity"])
    bad = drivers.copy()
    bad["air_temperature"].attrs["units"] = "m"
    with pytest.raises(UnitError, match="air_temperature"):
        inputs.inputs_at_cells(bad, rows, cols, dynamic=["air_temperature"], static=["aridity"])


@pytest.mark.parametrize(
    ("days", "match"),
    [
        (np.r_[0:50, 51:150], r"2014-02-19 is followed by 2014-02-21 \(1 missing day\).*reindex"),
        (np.arange(0, 150, 2), r"every step is 2 days.*daily"),
    ],
    ids=["a missing day", "every second day"],
)
def test_item4_the_daily_axis_is_checked_in_training_and_in_prediction(days, match):
    drivers, targets, _ = testing.synthetic_case(seed=3, nlat=3, nlon=4, ndays=150, cells=6)
    assert str(pd.Timestamp(drivers.time.values[0]).date()) == "2014-01-01"
    model = training.train_lstm(drivers, targets, **TINY)
    gappy = drivers.isel(time=days)
    with pytest.raises(GridMismatchError, match=match):
        training.train_lstm(gappy, targets, **TINY)
    with pytest.raises(GridMismatchError, match=match):
        inference.predict(gappy, model, spinup=20)
    with pytest.raises(GridMismatchError, match="increasing"):
        inputs.check_daily_axis(drivers.time.values[::-1])


def test_daily_totals_in_amount_units_get_a_hint():
    """'mm', 'm' and 'J m-2' are refused (not per day) with what to write instead; a water flux in
    'kg m-2 s-1' (1 kg m-2 is 1 mm) is converted."""
    import xarray as xr

    from xsomo.exceptions import UnitError
    from xsomo.model.inputs import driver_variable

    for name, units, says in (
        ("precipitation", "mm", "label it as a total per day"),
        ("net_radiation", "J m-2", "label it as a sum per day"),
    ):
        ds = xr.Dataset({name: (("time",), [1.0, 2.0], {"units": units})})
        with pytest.raises(UnitError, match=says):
            driver_variable(ds, name)
    flux = xr.Dataset({"precipitation": (("time",), [2.5e-5, 5e-5], {"units": "kg m-2 s-1"})})
    np.testing.assert_allclose(driver_variable(flux, "precipitation").values, [2.16, 4.32], rtol=1e-6)


def test_drivers_on_a_cftime_calendar_are_refused_with_the_conversion():
    """Drivers decoded on a noleap calendar ended in 'unexpected TypeError ... is not convertible
    to datetime' (QA); training and prediction say which calendar and how to convert it."""
    drv, tgt, _ = testing.synthetic_case(seed=0, nlat=3, nlon=3, ndays=400, cells=2)
    noleap = drv.convert_calendar("noleap")
    with pytest.raises(GridMismatchError, match=r"'noleap' calendar .*convert_calendar\('standard'"):
        xsomo.train_lstm(noleap, tgt, preset="tiny", layers=(1,), epochs=1, steps_per_epoch=1, progress=False)
    model = xsomo.train_lstm(drv, tgt, preset="tiny", layers=(1,), epochs=1, steps_per_epoch=1, progress=False,
                             val_fraction=0.0, forget_tolerance=0.0)  # fmt: skip
    with pytest.raises(GridMismatchError, match="'noleap' calendar"):
        inference.predict(noleap, model)


def _stats_model(dyn, sta, cfg):
    """A stand-in model: the config and the training statistics of ``dyn``/``sta``."""
    import types

    data = types.SimpleNamespace(dynamic=dyn, static=sta, target=np.ones((dyn.shape[0], len(cfg.layers), 1)))
    return types.SimpleNamespace(config=cfg, stats=training.compute_stats(cfg, data, np.arange(dyn.shape[0])))


def _realistic_inputs(seed=0, cells=40, days=800):
    rng = np.random.default_rng(seed)
    doy = np.arange(days) * 2 * np.pi / 365.25
    t = 283 + 10 * np.sin(doy)[None, :] + rng.normal(0, 3, (cells, days)) - rng.uniform(0, 8, (cells, 1))
    p = rng.gamma(0.4, 6.0, (cells, days)) * (rng.random((cells, days)) < 0.5)
    rn = 80 + 70 * np.sin(doy)[None, :] + rng.normal(0, 20, (cells, days))
    dyn = np.stack([t, p, rn], axis=-1)
    elev = rng.gamma(2.0, 200.0, cells)
    sta = np.stack([elev, rng.uniform(0.1, 0.6, cells)], axis=-1)
    cfg = xsomo.model.ModelConfig(dynamic=["air_temperature", "precipitation", "net_radiation"],
                                  static=["elevation_mean", "sand_top"], layers=(1,),
                                  transforms={"precipitation": "log1p"})  # fmt: skip
    return dyn, sta, cfg


def test_input_statistics_flag_mislabelled_units_and_name_the_cause():
    """Values in other units under the canonical label pass the range check (precipitation in
    m d-1 as 'mm d-1', net radiation in MJ m-2 d-1 as 'W m-2', elevation in km as 'm') and had
    changed soil moisture by up to 0.06 m3 m-3 without a word."""
    dyn, sta, cfg = _realistic_inputs()
    model = _stats_model(dyn, sta, cfg)
    other_dyn, other_sta, _ = _realistic_inputs(seed=1, cells=20, days=400)  # another region and period
    labels = {"precipitation": "mm d-1", "net_radiation": "W m-2", "elevation_mean": "m"}
    assert inputs.input_statistics_problems(other_dyn, other_sta, cfg, model.stats) == []
    for k in range(20):  # single cells (static spread 0) over 120 days: no alarm either
        assert inputs.input_statistics_problems(other_dyn[k:k + 1, :120], other_sta[k:k + 1], cfg, model.stats) == []
    for name, factor, cause in (
        ("precipitation", 1e-3, "m where mm are labelled"),
        ("net_radiation", 86400 / 1e6, "MJ m-2 d-1 where W m-2 are labelled"),
        ("elevation_mean", 1e-3, "km where m are"),
    ):
        d, s = other_dyn.copy(), other_sta.copy()
        if name in cfg.dynamic:
            d[..., cfg.dynamic.index(name)] *= factor
        else:
            s[:, cfg.static.index(name)] *= factor
        (msg,) = inputs.input_statistics_problems(d, s, cfg, model.stats, labels=labels)
        assert msg.startswith(f"{name!r} (units {labels[name]!r})") and cause in msg and "training std" in msg
    # a model trained on one cell (static spread 0, its std set to 1) says nothing about the units
    # of statics elsewhere: it had called elevation '1.25x too large' (QA)
    one = _stats_model(dyn[:1], sta[:1], cfg)
    flagged = inputs.input_statistics_problems(other_dyn, other_sta, cfg, one.stats)
    assert not [m for m in flagged if m.startswith(("'elevation_mean'", "'sand_top'"))], flagged


def test_check_input_statistics_warns_on_a_dataset_sample():
    drivers, _, _ = testing.synthetic_case(seed=3, nlat=6, nlon=6, ndays=400, cells=12)
    cfg = xsomo.model.ModelConfig(dynamic=["air_temperature", "precipitation"], static=["aridity"], layers=(1,),
                                  transforms={"precipitation": "log1p"})  # fmt: skip
    rows, cols = np.nonzero(drivers.land_mask.values)
    model = _stats_model(*inputs.inputs_at_cells(drivers, rows, cols, cfg, dtype="float64"), cfg)
    assert inputs.check_input_statistics(drivers, model) == []
    assert inputs.check_input_statistics(drivers.isel(lat=[2], lon=[3]), model) == []
    bad = drivers.copy()
    bad["precipitation"] = (drivers.precipitation / 1000).assign_attrs(drivers.precipitation.attrs)
    with pytest.warns(RuntimeWarning, match=r"'precipitation' \(units 'mm d-1'\).*too small \(m where mm"):
        inputs.check_input_statistics(bad, model)
