"""Unit checks and conversions with pint-xarray and cf_xarray's unit registry.

The default pint registry cannot parse CF strings such as ``m3 m-3``, ``W m-2`` or
``mm d-1``; cf_xarray's registry can. Units are never guessed: a variable without a
``units`` attribute is an error that names the variable.
"""

from __future__ import annotations

from collections.abc import Hashable

import pint
import pint_xarray  # registers .pint
import xarray as xr
from cf_xarray.units import units as ureg

from xsomo.exceptions import UnitError

pint.set_application_registry(ureg)
pint_xarray.unit_registry = ureg  # type: ignore[attr-defined]

#: Synonyms seen in real files that cf_xarray's registry does not know.
_ALIASES = {
    "m**3 m**-3": "m3 m-3",
    "m^3/m^3": "m3 m-3",
    "m3/m3": "m3 m-3",
    "m³/m³": "m3 m-3",
    "m3 m**-3": "m3 m-3",
    "fraction": "1",
    "-": "1",
    "degC": "degC",
    "deg C": "degC",
    "°C": "degC",
    "Celsius": "degC",
    "celsius": "degC",
    "mm/day": "mm d-1",
    "mm/d": "mm d-1",
    "mm day-1": "mm d-1",
    "mm day**-1": "mm d-1",
    "J m**-2": "J m-2",
    "W m**-2": "W m-2",
    "%": "percent",
}


def normalise_units_string(units: str) -> str:
    u = units.strip()
    return _ALIASES.get(u, u)


def parse_units(units: str, *, name: Hashable = None) -> pint.Unit:
    """Parse a CF units string, raising :class:`UnitError` naming ``name`` on failure."""
    try:
        return ureg.Unit(normalise_units_string(units))
    except Exception as err:  # pint raises several unrelated types
        raise UnitError(
            f"variable {name!r}: cannot parse units {units!r}. Set a CF units attribute "
            "such as 'm3 m-3', 'K', 'mm d-1' or 'W m-2'."
        ) from err


def convert(
    da: xr.DataArray,
    to: str,
    *,
    name: Hashable | None = None,
    source: str | None = None,
) -> xr.DataArray:
    """Return ``da`` in units ``to`` (lazy if ``da`` is), with ``attrs['units'] = to``.

    Parameters
    ----------
    da
        Data with a ``units`` attribute.
    to
        Target units (CF string).
    name, source
        Variable and file names used in error messages.

    Raises
    ------
    UnitError
        When the units attribute is missing, unparseable or not convertible.
    """
    label = name if name is not None else da.name
    where = f" in {source}" if source else ""
    units = da.attrs.get("units")
    if units is None:
        raise UnitError(
            f"variable {label!r}{where} has no 'units' attribute; expected units "
            f"convertible to {to!r}. Add one (e.g. ds[{label!r}].attrs['units'] = {to!r})."
        )
    src = parse_units(str(units), name=label)
    dst = parse_units(to, name=label)
    if src == dst:
        out = da.copy()
        out.attrs["units"] = to
        return out
    try:
        factor_or_q = ureg.Quantity(1.0, src).to(dst)
    except pint.DimensionalityError as err:
        raise UnitError(
            f"variable {label!r}{where} has units {units!r}, which cannot be converted to "
            f"{to!r}. Check the variable or convert it before passing it to xsomo."
        ) from err
    attrs = dict(da.attrs)
    encoding = dict(da.encoding)
    if ureg.Quantity(0.0, src).to(dst).magnitude != 0.0:  # offset units (degC -> K)
        quantified = da.pint.quantify(src, unit_registry=ureg)
        out = quantified.pint.to(dst).pint.dequantify()
    else:
        out = da * factor_or_q.magnitude
    out = out.astype(da.dtype) if da.dtype.kind == "f" else out
    out.attrs = {**attrs, "units": to}
    out.encoding = encoding
    return out


def check_units(da: xr.DataArray, expected: str, *, name: Hashable | None = None, source: str | None = None) -> None:
    """Raise :class:`UnitError` unless ``da`` has units equal (or convertible) to ``expected``."""
    convert(da.isel({d: slice(0, 1) for d in da.dims}), expected, name=name, source=source)


__all__ = ["check_units", "convert", "normalise_units_string", "parse_units", "ureg"]
