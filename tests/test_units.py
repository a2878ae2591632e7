from __future__ import annotations

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from xsomo.exceptions import UnitError, XsomoError
from xsomo.units import convert, parse_units


@pytest.mark.parametrize(
    ("units", "dimensionality", "si_value_of_one"),
    [
        ("m3 m-3", "dimensionless", 1.0),
        ("W m-2", "[mass] / [time] ** 3", 1.0),
        ("mm d-1", "[length] / [time]", 1e-3 / 86400.0),
        ("J m-2", "[mass] / [time] ** 2", 1.0),
        ("K", "[temperature]", 1.0),
        ("degC", "[temperature]", 274.15),  # 1 degC is 274.15 K (an offset unit)
        ("m**3 m**-3", "dimensionless", 1.0),
        ("1", "dimensionless", 1.0),
    ],
)
def test_cf_registry_parses_cf_strings(units, dimensionality, si_value_of_one):
    unit = parse_units(units)
    assert str(unit.dimensionality) == dimensionality
    one = (1.0 * unit).to_base_units()  # SI base units: kg, m, s, K
    assert one.magnitude == pytest.approx(si_value_of_one, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (10.0, "degC", "K", 283.15),
        (0.001, "m d-1", "mm d-1", 1.0),
        (86400.0, "J m-2 d-1", "W m-2", 1.0),
        (25.0, "percent", "1", 0.25),
        (0.3, "m**3 m**-3", "m3 m-3", 0.3),
    ],
)
def test_convert(value, src, dst, expected):
    da = xr.DataArray(np.array([value], dtype="float32"), dims="t", attrs={"units": src, "long_name": "x"})
    out = convert(da, dst)
    assert out.dtype == np.float32
    assert float(out[0]) == pytest.approx(expected, rel=1e-6)
    assert out.attrs["units"] == dst and out.attrs["long_name"] == "x"


def test_convert_is_lazy():
    da = xr.DataArray(dsa.ones(4, chunks=2), dims="t", attrs={"units": "degC"})
    out = convert(da, "K")
    assert isinstance(out.data, dsa.Array)
    np.testing.assert_allclose(out.compute(), 274.15)


def test_missing_and_incompatible_units_name_the_variable():
    with pytest.raises(UnitError, match=r"'precip'.*no 'units'"):
        convert(xr.DataArray([1.0], dims="t", name="precip"), "mm d-1")
    with pytest.raises(XsomoError, match="cannot be converted"):
        convert(xr.DataArray([1.0], dims="t", name="t2m", attrs={"units": "K"}), "m3 m-3")
    with pytest.raises(ValueError, match="cannot parse"):
        convert(xr.DataArray([1.0], dims="t", name="x", attrs={"units": "furlongs per bogus"}), "K")


# ----------------------------------------------------------------------------- issue 14 item 3: plausibility
from xsomo import conventions as cv  # noqa: E402
from xsomo.units import PLAUSIBILITY_SAMPLE, check_plausible  # noqa: E402


def test_item3_every_canonical_variable_has_a_physical_range():
    for name, var in cv.VARIABLES.items():
        assert var.valid_range is not None, name
        lo, hi = var.valid_range
        assert lo < hi
        assert cv.valid_range(name) == var.valid_range
    assert cv.valid_range("not_a_variable") is None


def _daily(values, units):
    return xr.DataArray(np.asarray(values, float), dims="time", attrs={"units": units})


def test_item3_degc_labelled_k_refused_with_the_cause():
    rng = np.random.default_rng(0)
    t = _daily(8.6 + 6 * rng.standard_normal(365), "K")
    mean = float(t.mean())
    with pytest.raises(UnitError, match="looks like degC labelled K") as info:
        check_plausible(t, "air_temperature", source="f.nc")
    assert f"mean {mean:.4g} K" in str(info.value) and "f.nc" in str(info.value)
    check_plausible(t + 273.15, "air_temperature")  # the same data in kelvin pass


def test_item3_skin_temperature_557_k_refused():
    t = convert(_daily([283.0, 284.5, 286.0], "degC"), "K")  # kelvin values labelled degC
    assert abs(float(t.mean()) - 557.65) < 0.1
    with pytest.raises(UnitError, match=r"557.*labelled 'degC'.*273.15 added twice"):
        check_plausible(t, "skin_temperature", label="degC")


def test_item3_precipitation_x1000_refused():
    mm = np.random.default_rng(1).gamma(0.5, 5.0, 400)  # daily totals in mm
    p = convert(_daily(mm, "m"), "mm d-1".replace(" d-1", ""))  # mm values labelled m: x1000
    p = p.assign_attrs(units="mm d-1")
    with pytest.raises(UnitError, match="1000x too large: looks like mm labelled m"):
        check_plausible(p, "precipitation")
    check_plausible(_daily(mm, "mm d-1"), "precipitation")
    with pytest.raises(UnitError, match="negative precipitation"):
        check_plausible(_daily([-5.0, 1.0, 2.0], "mm d-1"), "precipitation")


@pytest.mark.parametrize(
    ("name", "values", "cause"),
    [
        ("sm", [25.0, 31.0, 40.0], "percent labelled m3 m-3"),
        ("sand_top", [450.0, 600.0, 120.0], "g/kg"),
        ("net_radiation", [86400 * 80.0, 86400 * 120.0], "J m-2 labelled W m-2"),
        ("elevation_mean", [-9999.0, 300.0], "fill values"),
    ],
)
def test_item3_other_causes_guessed(name, values, cause):
    with pytest.raises(UnitError, match=cause):
        check_plausible(_daily(values, cv.VARIABLES[name].units), name)


def test_item3_large_arrays_checked_on_spread_time_steps():
    n_t = 50
    cells = PLAUSIBILITY_SAMPLE // 10  # 10 time steps fit the sample
    data = dsa.full((n_t, cells), 290.0, chunks=(1, cells))
    da = xr.DataArray(data, dims=("time", "cell"), attrs={"units": "K"})
    check_plausible(da, "air_temperature")
    bad = da.copy(data=dsa.concatenate([data[:-1], dsa.full((1, cells), 9.0, chunks=(1, cells))]))
    with pytest.raises(UnitError, match="air_temperature"):
        check_plausible(bad, "air_temperature")  # the last step is always in the sample
