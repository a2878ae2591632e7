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
