"""Unit checks and conversions with pint-xarray and cf_xarray's unit registry.

The default pint registry cannot parse CF strings such as ``m3 m-3``, ``W m-2`` or
``mm d-1``; cf_xarray's registry can. Units are never guessed: a variable without a
``units`` attribute is an error that names the variable.
"""

from __future__ import annotations

import re
from collections.abc import Hashable

import numpy as np
import pint
import pint_xarray  # registers .pint
import xarray as xr
from cf_xarray.units import units as ureg

from xsomo import conventions as cv
from xsomo.exceptions import UnitError

pint.set_application_registry(ureg)
pint_xarray.unit_registry = ureg  # type: ignore[attr-defined]

#: kg m-3 of liquid water: a water flux in kg m-2 s-1 is this many kg per mm per m2 x 1000.
WATER_DENSITY = 1000.0

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


#: "degree(s)" / "deg" as a word, or a degree sign (°, the masculine ordinal º files write for it, ˚)
_DEGREE = r"(?:deg(?:ree)?s?\.?|°|º|˚)"
#: a whole units string that names a temperature scale, case-insensitively: "degrees Celsius",
#: "deg. C", "degrees_C", "ºC", "Kelvin", "degrees K", "degree F" ... (a bare letter needs the
#: degree: "c" alone is the speed of light, "F" the farad)
_TEMPERATURE = re.compile(
    rf"^(?:{_DEGREE}[\s_]*(?P<letter>c|k|f)|(?:{_DEGREE}[\s_]*)?(?P<word>celsius|centigrade|kelvins?|fahrenheit))$",
    re.IGNORECASE,
)
_TEMPERATURE_UNITS = {"c": "degC", "celsius": "degC", "centigrade": "degC", "k": "K", "kelvin": "K",
                      "kelvins": "K", "f": "degF", "fahrenheit": "degF"}
#: "degree(s)" / "deg" as a word of its own, then C, K or F (or a scale's name) as another, inside a
#: longer string: pint reads such a pair as an angle times a temperature (or a farad), never guessed
_DEGREE_WORD_SCALE = re.compile(
    r"(?<![A-Za-z_])deg(?:ree)?s?(?:\s*[.*·]\s*|\s+)(?:[CKF]|celsius|centigrade|kelvins?|fahrenheit)(?![A-Za-z_])",
    re.IGNORECASE,
)


#: a range written as the units of a fraction, as ecCodes labels ERA5's lsm, cvh, tcc, fal: "(0 - 1)"
_ZERO_TO_ONE = re.compile(r"^\(?\s*0(?:\.0*)?\s*(?:-|–|to)\s*1(?:\.0*)?\s*\)?$", re.IGNORECASE)
#: a depth of liquid water that stands for a mass of water or snow, as ecCodes labels ERA5's sd, sf, e, src
#: ("m of water equivalent"), and glaciology's "mm w.e.": the length of liquid water it names (then any rate)
_WATER_EQUIVALENT = re.compile(
    r"^(?P<length>mm|cm|m|millimet(?:er|re)s?|met(?:er|re)s?)\s+(?:of\s+)?(?:water[\s_]+equivalent|w\.\s?e\.)"
    r"(?P<rest>\s.*)?$",
    re.IGNORECASE,
)
#: a height above the sea ("m a.s.l.", "m asl", "masl", "m amsl", "m MSL", "m above mean sea level",
#: "ft AMSL"): the length (pint read "m a.s.l." as metre x annum x second x litre)
_ABOVE_SEA = re.compile(
    r"^(?P<length>m|met(?:er|re)s?|ft|feet|foot)\.?\s*"
    r"(?:a\.?\s?s\.?\s?l\.?|a\.?\s?m\.?\s?s\.?\s?l\.?|(?:above\s+)?m\.?\s?s\.?\s?l\.?|(?:above\s+)?(?:mean\s+)?sea[\s_]+level)$",
    re.IGNORECASE,
)
#: labels that do not say what they measure: never guessed (pattern, what it is, how to write it)
_AMBIGUOUS = (
    (
        re.compile(r"^(?:above\s+)?(?:a\.?\s?s\.?\s?l\.?|a\.?\s?m\.?\s?s\.?\s?l\.?|m\.?\s?s\.?\s?l\.?|(?:mean\s+)?sea[\s_]+level)$", re.I),
        "names a datum (mean sea level), not a unit: the height could be in metres or feet",
        "write the length unit, e.g. 'm' (or 'm a.s.l.')",
    ),
    (
        re.compile(r"^(?:mm|cm|m|met(?:er|re)s?)\s+(?:of\s+)?water$", re.I),
        "may be a depth of water or a pressure (a metre of water column is 9.8 kPa)",
        "write 'm' (or 'm of water equivalent') for a depth of water, 'Pa' for a pressure",
    ),
)


def normalise_units_string(units: str) -> str:
    """``units`` stripped, with the synonyms seen in real files replaced by units the registry
    reads: ``"m3/m3"`` -> ``"m3 m-3"``, ``"degrees Celsius"`` / ``"ºC"`` -> ``"degC"``,
    ``"Kelvin"`` -> ``"K"``, ecCodes' ``"(0 - 1)"`` -> ``"1"`` and ``"m of water equivalent"``
    -> ``"m"`` (a depth of liquid water, as xsomo reads ``m`` of precipitation: 1 m is
    1000 kg m-2), and heights ``"m a.s.l."`` / ``"m above MSL"`` -> ``"m"``.

    >>> [normalise_units_string(u) for u in ("degrees C", "deg. C", "Degrees Celsius", "ºC", "deg K", "Kelvin")]
    ['degC', 'degC', 'degC', 'degC', 'K', 'K']
    >>> [normalise_units_string(u) for u in ("(0 - 1)", "m of water equivalent", "mm w.e. d-1", "m a.s.l.", "masl")]
    ['1', 'm', 'mm d-1', 'm', 'm']
    """
    u = units.strip()
    if u in _ALIASES:
        return _ALIASES[u]
    m = _TEMPERATURE.match(u)
    if m is not None:
        return _TEMPERATURE_UNITS[(m["letter"] or m["word"]).lower()]
    if _ZERO_TO_ONE.match(u):
        return "1"
    m = _WATER_EQUIVALENT.match(u)
    if m is not None:
        return normalise_units_string(m["length"] + (m["rest"] or ""))
    m = _ABOVE_SEA.match(u)
    if m is not None:
        return m["length"]
    return u


def _angle_times_temperature(unit: pint.Unit) -> bool:
    """Whether ``unit`` holds an angle (degree, radian ...) and a temperature: pint's reading of
    "degrees C" as degree x delta_degC, never what a file meant."""
    if "[temperature]" not in unit.dimensionality:
        return False
    return any("radian" in str(ureg.get_root_units(k)[1]) for k in unit._units)


def parse_units(units: str, *, name: Hashable = None, source: str | None = None) -> pint.Unit:
    """Parse a CF units string, raising :class:`UnitError` naming ``name`` (and ``source``) on failure.

    A spelling that puts "degree(s)" / "deg" next to C, K or F and is not a known one of
    Celsius, kelvin or Fahrenheit is refused, never read as an angle (pint read "degrees
    Celsius" as degree x degC: 10 became 0.17 K).
    """
    where = f" in {source}" if source else ""
    plain = normalise_units_string(units)
    for pattern, what, fix in _AMBIGUOUS:
        if pattern.match(plain):
            raise UnitError(f"variable {name!r}{where}: units {units!r} {what}; xsomo does not guess. Fix the units "
                            f"attribute: {fix}.")
    if _DEGREE_WORD_SCALE.search(plain):
        raise UnitError(
            f"variable {name!r}{where}: units {units!r} put 'degree' next to a temperature scale in a way "
            "xsomo does not read (it would be parsed as an angle times a temperature). Write the temperature "
            "as 'degC' or 'K' (e.g. 'degC d-1')."
        )
    try:
        unit = ureg.Unit(plain)
    except Exception as err:  # pint raises several unrelated types
        raise UnitError(
            f"variable {name!r}{where}: cannot parse units {units!r}. Set a CF units attribute "
            "such as 'm3 m-3', 'K', 'mm d-1' or 'W m-2' (an amount per N hours may be written "
            "'mm/3h'; do not relabel it 'mm d-1', which reads it as a daily total)."
        ) from err
    if _angle_times_temperature(unit):
        raise UnitError(
            f"variable {name!r}{where}: units {units!r} read as {unit} (an angle times a temperature): "
            "not a temperature xsomo can convert. Write it as 'degC' or 'K'."
        )
    return unit


#: An amount per a multiple of a time unit, as MSWEP's and MSWX's sub-daily files write it
#: ("mm/3h", "mm/(3 h)", "mm / 3hr"): pint units carry no such factor.
_PER_INTERVAL = re.compile(
    r"^(?P<amount>[^/]+?)\s*/\s*\(?\s*(?P<n>\d+(?:\.\d+)?)\s*\*?\s*(?P<unit>h|hr|hrs|hour|hours|d|day|days)\s*\)?$"
)


def per_interval(units: str) -> tuple[float, str]:
    """``(factor, units)``: an amount per N time units as ``factor`` x an amount per time unit.

    >>> per_interval("mm/3h")
    (0.3333333333333333, 'mm h-1')
    >>> per_interval("mm d-1")
    (1.0, 'mm d-1')
    """
    m = _PER_INTERVAL.match(units.strip())
    if m is None or float(m["n"]) <= 0:
        return 1.0, units
    unit = "h" if m["unit"].startswith("h") else "d"
    return 1.0 / float(m["n"]), f"{m['amount'].strip()} {unit}-1"


def rate_period_days(units: str) -> float | None:
    """The length in days of the time a rate label is per: ``'mm/month'`` -> 30.44,
    ``'mm/3h'`` -> 0.125, ``'kg m-2 s-1'`` -> 1/86400; ``None`` for a label that is no rate per
    one time unit (``'mm'``, ``'W m-2'``, ``'K'``) or cannot be parsed.

    >>> [round(rate_period_days(u), 3) for u in ("mm/month", "mm a-1", "mm/3h", "mm d-1")]
    [30.438, 365.25, 0.125, 1.0]
    """
    try:
        factor, plain = per_interval(str(units))
        unit = parse_units(plain)
    except UnitError:
        return None
    second = ureg.Unit("s").dimensionality
    per = [(k, e) for k, e in unit._units.items() if ureg.Unit(k).dimensionality == second]
    if len(per) != 1 or per[0][1] != -1:
        return None
    return float(ureg.Quantity(1.0, per[0][0]).to("day").magnitude) / factor


def _period_words(days: float) -> str:
    """``"month"``, ``"year"`` or ``"N days"`` (per what a rate is)."""
    if 28 <= days <= 31.5:
        return "month" if np.isclose(days, 30.4375, atol=0.01) else f"{days:.4g} days (a month)"
    if 365 <= days <= 366.5:
        return "year" if np.isclose(days, 365.25, atol=0.01) else f"{days:.4g} days (a year)"
    return f"{days:.4g} days"


def is_long_rate(units: object) -> bool:
    """Whether ``units`` is a rate per more than one day (``'mm/month'``, ``'mm a-1'``, ``'mm/(30 d)'``).

    >>> is_long_rate("mm month-1"), is_long_rate("mm/24h"), is_long_rate("mm"), is_long_rate(None)
    (True, False, False, False)
    """
    if units is None:
        return False
    days = rate_period_days(str(units))
    return days is not None and days > 1.0 + 1e-9


def refuse_long_rate(units: object, *, name: Hashable, source: str, axis: str, fix: str) -> None:
    """Raise :class:`UnitError` when ``units`` is a rate per more than one day (``'mm/month'``,
    ``'mm month-1'``, ``'mm a-1'``, ``'mm/(30 d)'``) on a daily or sub-daily time axis.

    Read as labelled, daily totals labelled per month became ~30 times too small without a
    word: on such an axis the label is almost surely wrong. Callers skip variables whose
    units the user declared (``units=``) and axes of a month or more (refused as not daily).

    Parameters
    ----------
    units
        The file's units label.
    name, source
        The variable and the file, for the message.
    axis
        The time axis in words (``"daily"``, ``"3-hourly"``).
    fix
        How to declare the unit in the reader that raises (e.g. ``"open_mswep(..., units='mm/month')"``).
    """
    if not is_long_rate(units):
        return
    days = float(rate_period_days(str(units)) or 0.0)
    per = _period_words(days)
    raise UnitError(
        f"{source}: {name!r} is labelled {units!r}, a rate per {per}, on a {axis} time axis: read as labelled, "
        f"every value would be divided by {days:.4g}. A per-month or per-year label on {axis} data is almost always "
        "a mislabel (e.g. daily precipitation totals labelled 'mm/month'). Fix the file's units attribute (daily "
        f"totals in mm: 'mm d-1'), or, if the values really are rates per {per}, declare that unit: {fix}."
    )


def _same_text(a: str, b: str) -> bool:
    """Two labels pint cannot read are the same when they are the same text (case aside)."""
    return a.strip().casefold() == b.strip().casefold()


def same_quantity(a: str | None, b: str | None) -> bool:
    """Whether two units labels give the same numbers: the same quantity, however spelled
    (``'mm/24h'`` is ``'mm d-1'``, ``'mm/3h'`` is ``'mm/(3 h)'``, ``'g/kg'`` is ``'permille'``).

    For labels xsomo converts *from*: files of one variable combined under one conversion, a
    ``units=`` that must agree with a file's own label. Unparseable labels are the same only as
    the same text. Not for a declared unit that chooses a conversion itself: see
    :func:`same_unit`.

    >>> same_quantity("mm/24h", "mm d-1"), same_quantity("g/kg", "permille"), same_quantity("mm", "m")
    (True, True, False)
    """
    if a is None or b is None:
        return a is b
    try:
        (fa, ua), (fb, ub) = per_interval(a), per_interval(b)
        ratio = (fa * parse_units(ua)) / (fb * parse_units(ub))
        return bool(ratio.dimensionless and np.isclose(float(ratio.to("dimensionless").magnitude), 1.0, rtol=1e-9))
    except UnitError:
        return _same_text(a, b)


def same_unit(a: str, b: str) -> bool:
    """Whether two units labels name the same unit, not merely the same factor.

    For a file's label checked against a unit the user declared from a fixed list (the
    sources file's ``soil.units``: ``g/kg``, ``percent``, ``1``), which says what the files
    hold and, for GeoTIFFs, chooses the conversion. A label of the same factor but another
    unit (``'permille'``, ``'mg/g'``, a volume fraction ``'cm3 dm-3'`` for ``'g/kg'``) is
    refused: the declaration or the file is about another quantity. Spellings of one unit pass
    (``'%'`` is ``'percent'``, ``'g kg-1'`` is ``'g/kg'``); unparseable labels are the same
    only as the same text (case aside).

    >>> same_unit("g kg-1", "g/kg"), same_unit("%", "percent"), same_unit("permille", "g/kg")
    (True, True, False)
    """
    try:
        return bool(parse_units(str(a)) == parse_units(str(b)))
    except UnitError:
        return _same_text(str(a), str(b))


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
    scale, plain = per_interval(str(units))
    src = parse_units(plain, name=label, source=source)
    dst = parse_units(to, name=label, source=source)
    if src == dst and scale == 1.0:
        out = da.copy()
        out.attrs["units"] = to
        return out
    offset = False
    try:
        factor_or_q = ureg.Quantity(scale, src).to(dst)
        offset = scale == 1.0 and ureg.Quantity(0.0, src).to(dst).magnitude != 0.0  # degC -> K
    except pint.DimensionalityError as err:
        water = ureg.Quantity(WATER_DENSITY, "kg m-3")
        if (ureg.Quantity(1.0, src) / water).dimensionality != ureg.Quantity(1.0, dst).dimensionality:
            raise UnitError(
                f"variable {label!r}{where} has units {units!r}, which cannot be converted to "
                f"{to!r}. Check the variable or convert it before passing it to xsomo."
            ) from err
        # a water flux as mass (kg m-2 s-1, CF's precipitation_flux) to a depth (mm d-1): 1 kg m-2 is 1 mm
        factor_or_q = (ureg.Quantity(scale, src) / water).to(dst)
    attrs = dict(da.attrs)
    encoding = dict(da.encoding)
    if offset:
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


#: at most this many values are read by :func:`check_plausible` from a large array
PLAUSIBILITY_SAMPLE = 2_000_000
#: fill values seen unmasked in real files
_FILL_VALUES = (-9999.0, -999.0, -32767.0, -32768.0, 9999.0, -99.0)


def _sample(da: xr.DataArray) -> np.ndarray:
    """The values to check: all of them, or evenly spread time steps of a large array."""
    if da.size > PLAUSIBILITY_SAMPLE and "time" in da.dims and da.sizes["time"] > 1:
        per_step = max(1, da.size // da.sizes["time"])
        n = max(1, min(da.sizes["time"], PLAUSIBILITY_SAMPLE // per_step))
        idx = np.unique(np.linspace(0, da.sizes["time"] - 1, n).round().astype(int))
        da = da.isel(time=idx)
    return np.asarray(da.values, dtype=np.float64)


def _guess(
    name: str, units: str, lo: float, hi: float, vmin: float, vmax: float, mean: float, label: str | None = None
) -> str:
    """The likely cause of values outside ``lo .. hi`` (``label``: the units the data came with)."""
    if any(np.isclose(v, f) for v in (vmin, vmax) for f in _FILL_VALUES) or abs(vmax) > 1e30:
        return "looks like unmasked fill values; set the variable's _FillValue or missing_value attribute"

    def fits(f: float, off: float = 0.0) -> bool:
        return lo <= (mean - off) / f <= hi and lo - 0.01 * (hi - lo) <= (vmax - off) / f <= hi * 1.01 + 0.01 * (hi - lo)

    if units == "K":
        if -90.0 <= mean <= 60.0:
            return "looks like degC labelled K"
        if fits(1.0, 273.15):
            return "looks like values already in K labelled degC (273.15 added twice)"
    if name == "precipitation" or name == "precipitation_mean":
        if vmin < lo and vmax <= hi:
            return "negative precipitation: check the sign and the packing (scale_factor, add_offset)"
        period = rate_period_days(label) if label else None
        if period is not None and period < 1.0 and fits(1.0 / period):
            # (daily mm d-1 labelled mm h-1 had been called "mm labelled m")
            return f"{1.0 / period:g}x too large: looks like daily totals (mm d-1) labelled {label!r}"
        if name == "precipitation_mean" and fits(365.25):
            # (a climate mean in mm per year labelled mm d-1 had been called "mm labelled m")
            return "365x too large: looks like yearly totals (mm a-1) labelled mm d-1"
        if fits(1000.0):
            return "1000x too large: looks like mm labelled m"
        if fits(24.0):
            return "24x too large: looks like hourly rates (mm h-1) labelled mm d-1"
        if fits(86400.0):
            return "86400x too large: looks like kg m-2 s-1 converted twice"
    if units == "W m-2":
        if fits(86400.0):
            return "86400x too large: looks like daily sums in J m-2 labelled W m-2"
        if fits(3600.0):
            return "3600x too large: looks like hourly sums in J m-2 labelled W m-2"
    if units in ("1", "m3 m-3"):
        if fits(100.0):
            return f"100x too large: looks like percent labelled {units}"
        if fits(1000.0):
            return f"1000x too large: looks like g/kg (or per mille) labelled {units}"
    if units == "m":
        if fits(100.0):
            return "looks like cm labelled m"
        if fits(3.28084):
            return "looks like feet labelled m"
    return "check the units attribute and the data"


def check_plausible(
    da: xr.DataArray,
    name: Hashable | None = None,
    *,
    source: str | None = None,
    label: str | None = None,
) -> None:
    """Raise :class:`UnitError` when ``da`` leaves the physical range of its canonical variable.

    ``da`` must already be in the canonical units of ``name`` (``conventions.VARIABLES``);
    the range is ``conventions.valid_range(name)``, widened by 0.1 % of its width. Large
    arrays are checked on evenly spread time steps (:data:`PLAUSIBILITY_SAMPLE` values).
    The message names the variable, the file and the likely cause, e.g. "looks like degC
    labelled K" for temperatures with a mean of 8.6 K.

    Parameters
    ----------
    da
        Data in canonical units.
    name
        Canonical name (default ``da.name``); names without a range pass.
    source
        File names for the message.
    label
        The units label the data came with (for the message).

    Examples
    --------
    >>> t = xr.DataArray([5.2, 8.6, 12.0], dims="time", attrs={"units": "K"})
    >>> check_plausible(t, "air_temperature")
    Traceback (most recent call last):
    ...
    xsomo.exceptions.UnitError: variable 'air_temperature': values 5.2 .. 12 K (mean 8.6 K) lie outside its physical range 183 .. 333 K: looks like degC labelled K. Fix the units attribute (or the data) and retry.
    """
    key = str(name if name is not None else da.name)
    rng = cv.valid_range(key)
    if rng is None:
        return
    lo, hi = rng
    vals = _sample(da)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return
    vmin, vmax = float(vals.min()), float(vals.max())
    tol = 0.001 * (hi - lo)
    if vmin >= lo - tol and vmax <= hi + tol:
        return
    units = cv.VARIABLES[key].units
    mean = float(vals.mean())
    where = f" in {source}" if source else ""
    # (the label of the file or the units a sources file declared for it: callers pass either)
    given = f" (labelled {label!r})" if label and label != units else ""
    raise UnitError(
        f"variable {key!r}{where}: values {vmin:.4g} .. {vmax:.4g} {units} (mean {mean:.4g} {units})"
        f"{given} lie outside its physical range {lo:g} .. {hi:g} {units}: "
        f"{_guess(key, units, lo, hi, vmin, vmax, mean, label)}. Fix the units attribute (or the data) and retry."
    )


#: Largest soil moisture (m3 m-3) :func:`in_m3m3` takes (porosity stays below ~0.9; percent is 1-100).
MAX_M3M3 = 1.5


def in_m3m3(da: xr.DataArray, what: str, *, check_lazy: bool = False) -> xr.DataArray:
    """Soil moisture in m3 m-3 (for scaling, training and scoring): converted from its ``units``
    (``%`` too), percent refused.

    A reference in percent was scored against a prediction in m3 m-3 (bias -40, ubRMSD
    7.5 reported as m3 m-3). Values above :data:`MAX_M3M3` (read on a sample) are refused
    as percent; slightly negative or wet values pass (a network's output, a sensor's noise).
    A lazy array that says it is in m3 m-3 (xsomo's own prediction) is taken at its word,
    since sampling it would run the model; ``check_lazy=True`` (references, targets: files
    opened lazily) samples a few time steps of it too (a lazy ERA5-Land reference in percent
    labelled m3 m-3 had made targets up to 39.7).

    >>> in_m3m3(xr.DataArray([20.0, 30.0], attrs={"units": "%"}), "reference").values.tolist()
    [0.2, 0.3]
    """
    units = da.attrs.get("units")
    if units is not None:
        try:
            dims = parse_units(str(units)).dimensionality
        except UnitError:
            dims = None
        if dims is not None and dims in (ureg.Unit("kg m-2").dimensionality, ureg.Unit("m").dimensionality):
            # a layer's water storage (GLDAS/Noah SoilMoi*, LSM outputs): a water column, not a
            # gravimetric content (which the message below had called it, advising bulk density)
            raise UnitError(
                f"{what}: soil moisture in {units!r} is a layer's water storage (a water column; 1 kg m-2 of water = "
                "1 mm), not a volumetric content. xsomo compares m3 m-3: divide each layer's storage by its "
                "thickness (theta = storage in kg m-2 / (1000 kg m-3 x thickness in m), e.g. 25 kg m-2 over 0-10 cm = "
                "0.25 m3 m-3) and set units='m3 m-3'."
            )
        mass = set(re.findall(r"[A-Za-z]+", str(units))) & _MASS_WORDS
        if mass:
            raise UnitError(
                f"{what}: soil moisture in {units!r} is gravimetric (mass of water per mass of soil); xsomo compares "
                "volumetric m3 m-3, which needs the soil's bulk density (theta_v = w x rho_b / rho_w, rho_b ~1.1-1.6 "
                "g cm-3). Convert it with the station's bulk density first."
            )
        try:
            da = convert(da, "m3 m-3", name="sm", source=what)
        except UnitError as err:
            raise UnitError(f"{what}: {err}") from None
        if da.chunks is not None and not check_lazy:
            return da
    values = np.asarray(_sample(da), dtype=float)
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
    if top > MAX_M3M3:
        label = f"labelled {units!r}" if units is not None else "without a units attribute (read as m3 m-3)"
        raise UnitError(
            f"{what}: soil moisture up to {top:g} {label} cannot be m3 m-3: it looks like percent. Give it "
            "units='%' (da.attrs['units'] = '%') or divide it by 100"
        )
    if units is not None and normalise_units_string(str(units)) == "percent" and 0.0 < top <= MAX_M3M3 / 100:
        # fractions labelled percent became 100x too small (0.4 -> 0.004; QA: bias +0.399)
        raise UnitError(
            f"{what}: soil moisture labelled {units!r} never exceeds {100 * top:g}: these look like m3 m-3 "
            "fractions, not percent. Label them 'm3 m-3' (da.attrs['units'] = 'm3 m-3')"
        )
    low = float(np.nanmin(values)) if np.isfinite(values).any() else 0.0
    if low < MIN_M3M3:
        n = int(np.sum(values < MIN_M3M3))
        raise UnitError(
            f"{what}: soil moisture down to {low:g} m3 m-3 ({n} of the {int(np.isfinite(values).sum())} values read "
            f"are below {MIN_M3M3:g}): fill values or a sentinel left unmasked (e.g. -9999, -999, -1), which would be "
            "scored as soil moisture. Mask them first, e.g. da.where(da >= 0)."
        )
    return da


#: Below this (m3 m-3) a value is a fill value or sentinel, not a sensor's noise or a network's
#: slightly negative output (QA: -9999 on 5 % of days gave a bias of 507 m3 m-3 without a word).
MIN_M3M3 = -0.5
#: Unit words of a gravimetric water content (g g-1, kg kg-1, g/g), which is not volumetric.
_MASS_WORDS = frozenset({"g", "kg", "gram", "grams", "kilogram", "kilograms"})


__all__ = [
    "MAX_M3M3",
    "MIN_M3M3",
    "PLAUSIBILITY_SAMPLE",
    "check_plausible",
    "check_units",
    "convert",
    "in_m3m3",
    "is_long_rate",
    "normalise_units_string",
    "parse_units",
    "rate_period_days",
    "refuse_long_rate",
    "same_quantity",
    "same_unit",
    "ureg",
]
