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
    # a yearly climate mean labelled mm d-1 had been called "mm labelled m"
    with pytest.raises(UnitError, match=r"365x too large: looks like yearly totals"):
        check_plausible(_daily(np.linspace(500.0, 1400.0, 50), "mm d-1"), "precipitation_mean")
    # daily totals labelled mm h-1 (x24 after conversion) had been called "mm labelled m"
    hourly = convert(_daily(mm * 8, "mm h-1"), "mm d-1")
    with pytest.raises(UnitError, match=r"24x too large: looks like daily totals \(mm d-1\) labelled 'mm h-1'"):
        check_plausible(hourly, "precipitation", label="mm h-1")


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


@pytest.mark.parametrize(
    ("units", "value", "kelvin"),
    [
        ("degrees Celsius", 10.0, 283.15),
        ("Degrees Celsius", 10.0, 283.15),
        ("degrees C", 10.0, 283.15),
        ("degree C", 10.0, 283.15),
        ("deg C", 10.0, 283.15),
        ("deg. C", 10.0, 283.15),
        ("degrees_C", 10.0, 283.15),
        ("degrees_celsius", 10.0, 283.15),
        ("DEGREES CELSIUS", 10.0, 283.15),
        ("ºC", 10.0, 283.15),  # the masculine ordinal sign, written for the degree sign
        ("° C", 10.0, 283.15),
        ("Celsius", 10.0, 283.15),
        ("centigrade", 10.0, 283.15),
        ("Kelvin", 280.0, 280.0),
        ("kelvin", 280.0, 280.0),
        ("degrees K", 280.0, 280.0),
        ("deg K", 280.0, 280.0),
        ("degrees Kelvin", 280.0, 280.0),
        ("degK", 280.0, 280.0),
        ("degrees F", 50.0, 283.15),
    ],
)
def test_celsius_and_kelvin_spellings_are_temperatures_not_angles(units, value, kelvin):
    """pint read "degrees Celsius" as degree (an angle) x degC: 10 became 0.1745 K; "Kelvin",
    "Degrees Celsius", "degrees_C" and "ºC" could not be parsed (QA)."""
    da = xr.DataArray(np.array([value]), dims="t", attrs={"units": units})
    assert float(convert(da, "K")[0]) == pytest.approx(kelvin, rel=1e-9)
    assert str(parse_units(units).dimensionality) == "[temperature]"


@pytest.mark.parametrize("units", ["degrees C d-1", "degree * K", "deg. Celsius per day", "degrees kelvin / h", "radian K"])
def test_a_degree_next_to_a_temperature_is_never_an_angle(units):
    """An unknown spelling with "degree" / "deg" next to C, K or F is refused, never parsed as an
    angle times a temperature; spellings of degC inside a compound that pint reads right pass."""
    with pytest.raises(UnitError, match=r"'t'.*(degree' next to a temperature|an angle times a temperature)"):
        parse_units(units, name="t")
    for fine in ("degC d-1", "deg_C d-1", "K d-1", "degrees_north", "degrees"):
        parse_units(fine)


def test_a_declared_label_is_not_said_to_be_in_the_file():
    """check_plausible gets the file's label or the units declared for a file without one
    (sources.yml): the message said "(labelled 'percent' in the file)" for a file with no label."""
    with pytest.raises(UnitError, match=r"\(labelled 'percent'\) lie outside") as info:
        check_plausible(xr.DataArray([4.0, 4.0], dims="x"), "sand_top", label="percent")
    assert "in the file" not in str(info.value)
