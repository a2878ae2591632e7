"""The model's inputs, read one way everywhere: units, order, transforms, the daily axis.

Training, its consistency probes, cross-validation, prediction and the experiments all
read the drivers through this module, so that a model never sees numbers in other units
or another column order than the ones it was trained on (issue 14, items 1 and 4):

- :func:`driver_variable` is one driver variable in its canonical units
  (:data:`xsomo.conventions.VARIABLES`, converted with :func:`xsomo.units.convert`:
  ``air_temperature`` in ``degC`` becomes kelvin); lazy when the drivers are.
- :func:`inputs_at_cells` pulls the raw (canonical-unit) dynamic and static inputs of
  grid cells into ``(cell, time, feature)`` / ``(cell, feature)`` arrays in the config's
  order.
- :func:`transform_inputs` applies the config's input transforms (``log1p`` of
  precipitation) before the z-score; :class:`~xsomo.model.trained.TrainedModel` and the
  training statistics both use it.
- :func:`check_daily_axis` refuses a time axis with a missing day or another step.

>>> import numpy as np, pandas as pd, xarray as xr
>>> t = xr.DataArray([[[10.0]], [[20.0]]], dims=("time", "lat", "lon"), attrs={"units": "degC"})
>>> ar = xr.DataArray([[1.5]], dims=("lat", "lon"), attrs={"units": "1"})  # units are never guessed
>>> ds = xr.Dataset({"air_temperature": t, "aridity": ar},
...                 coords={"time": pd.date_range("2020-01-01", periods=2), "lat": [45.05], "lon": [5.05]})
>>> dyn, sta = inputs_at_cells(ds, [0], [0], dynamic=["air_temperature"], static=["aridity"], dtype="float64")
>>> dyn[0, :, 0].round(2).tolist(), sta.tolist()
([283.15, 293.15], [[1.5]])
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.drivers.points import is_points
from xsomo.exceptions import GridMismatchError, MissingVariableError, UnitError
from xsomo.model.config import apply_transform
from xsomo.units import check_plausible, convert

__all__ = ["check_daily_axis", "driver_variable", "inputs_at_cells", "trailing_gaps", "transform_inputs"]

_DAY = np.timedelta64(86400, "s")


def _plausible_block(block: np.ndarray, *, name: str, source: str, label: str | None) -> np.ndarray:
    """A block of a canonical input, checked against its physical range (as it is computed)."""
    check_plausible(xr.DataArray(block), name, source=source, label=label)
    return block


def driver_variable(drivers: xr.Dataset, name: Hashable, *, source: str = "drivers") -> xr.DataArray:
    """``drivers[name]`` in its canonical units, checked against its physical range (lazy when
    the drivers are).

    A canonical variable (:data:`xsomo.conventions.VARIABLES`) needs a ``units`` attribute
    (units are never guessed: one without it is refused) and is converted to the canonical
    units; then its values must lie in the variable's physical range
    (:func:`xsomo.units.check_plausible`: air temperature in degC labelled K, or without a
    label, had moved soil moisture by 0.05 m3 m-3 without a sign). Dask-backed drivers are
    checked block by block as they are computed, numpy ones on a sample at once. Any other
    variable (an imported model's own inputs) is returned as it is.

    Raises
    ------
    MissingVariableError
        If the drivers lack ``name``.
    UnitError
        If a canonical variable has no units, units that cannot be converted to the
        canonical ones, or values outside its physical range.
    """
    if name not in drivers.variables:
        raise MissingVariableError(
            f"{source} lack the model input {name!r}; have {sorted(map(str, drivers.data_vars))}"
        )
    arr = drivers[name]
    canonical = cv.VARIABLES.get(str(name))
    if canonical is None:
        return arr
    label = arr.attrs.get("units")
    if label is None:
        raise UnitError(
            f"{source}: the model input {name!r} has no 'units' attribute, and xsomo never guesses units. "
            f"Set it to the units the values are in, e.g. drivers[{str(name)!r}].attrs['units'] = "
            f"{canonical.units!r} (xsomo's own), and retry."
        )
    try:
        arr = convert(arr, canonical.units, name=name, source=source)
    except UnitError as err:
        raise UnitError(f"{err} {_units_hint(str(label), canonical.units)}".rstrip()) from None
    if canonical.valid_range is not None:
        if arr.chunks is not None:
            checked = arr.data.map_blocks(
                functools.partial(_plausible_block, name=str(name), source=source, label=str(label)),
                dtype=arr.dtype,
            )
            arr = arr.copy(data=checked)
        else:
            check_plausible(arr, name, source=source, label=str(label))
    return arr


def _config_names(
    config: Any, dynamic: Sequence[str] | None, static: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if config is not None:
        dynamic = config.dynamic if dynamic is None else dynamic
        static = config.static if static is None else static
    if dynamic is None or static is None:
        raise TypeError("inputs_at_cells needs a config or both dynamic= and static= names")
    return tuple(map(str, dynamic)), tuple(map(str, static))


def inputs_at_cells(
    drivers: xr.Dataset,
    rows: Sequence[int] | np.ndarray,
    cols: Sequence[int] | np.ndarray,
    config: Any = None,
    *,
    dynamic: Sequence[str] | None = None,
    static: Sequence[str] | None = None,
    time: slice | None = None,
    dtype: str = "float32",
    source: str = "drivers",
) -> tuple[np.ndarray, np.ndarray]:
    """Raw model inputs of grid cells, in canonical units and the model's column order.

    Parameters
    ----------
    drivers
        Drivers Dataset with ``(time, lat, lon)`` dynamic and ``(lat, lon)`` static
        variables (numpy- or dask-backed: only the cells asked for are read, in one go).
    rows, cols
        Row (``lat``) and column (``lon``) indices of the cells on the drivers' grid; for
        point drivers (``station`` dim, :mod:`xsomo.drivers.points`) ``rows`` are station
        indices and ``cols`` are ignored.
    config
        A :class:`~xsomo.model.config.ModelConfig` (or anything with ``dynamic`` and
        ``static`` names) giving the inputs and their order; ``dynamic=``/``static=``
        override it.
    time
        Positional slice of the time axis (default: all days).
    dtype
        Floating type of the arrays.
    source
        Name of the drivers in error messages.

    Returns
    -------
    dynamic : numpy.ndarray
        ``(cell, time, n_dynamic)`` in canonical units, untransformed.
    static : numpy.ndarray
        ``(cell, n_static)``.

    Raises
    ------
    MissingVariableError
        If an input is missing (all missing inputs are named).
    UnitError
        If an input's units cannot be converted to its canonical units.
    """
    dynamic, static = _config_names(config, dynamic, static)
    missing = [v for v in (*dynamic, *static) if v not in drivers.variables]
    if missing:
        raise MissingVariableError(
            f"{source} lack the model inputs {missing}; have {sorted(map(str, drivers.data_vars))}"
        )
    rows = np.asarray(rows, dtype=int).reshape(-1)
    cols = np.asarray(cols, dtype=int).reshape(-1)
    sel: dict[str, Any] = {cv.LAT: xr.DataArray(rows, dims="cell"), cv.LON: xr.DataArray(cols, dims="cell")}
    if is_points(drivers):  # point drivers (issue 18): a cell is a station index, ``rows``
        sel = {cv.STATION: xr.DataArray(rows, dims="cell")}
    sub = drivers[list(dict.fromkeys((*dynamic, *static)))]
    if time is not None:
        sub = sub.isel({cv.TIME: time})
    sub = sub.isel(sel).compute()  # one read of every input at these cells
    ntime = sub.sizes.get(cv.TIME, 0)
    dyn = np.empty((rows.size, ntime, len(dynamic)), dtype=dtype)
    for k, name in enumerate(dynamic):
        arr = driver_variable(sub, name, source=source)
        if cv.TIME not in arr.dims:
            raise MissingVariableError(f"{source}: the dynamic input {name!r} has no 'time' dimension ({arr.dims})")
        dyn[..., k] = arr.transpose("cell", cv.TIME).values
    sta = np.empty((rows.size, len(static)), dtype=dtype)
    for k, name in enumerate(static):
        arr = driver_variable(sub, name, source=source)
        if cv.TIME in arr.dims:
            raise MissingVariableError(f"{source}: the static input {name!r} has a 'time' dimension ({arr.dims})")
        sta[:, k] = arr.values
    return dyn, sta


def transform_inputs(
    raw: np.ndarray, names: Sequence[str], transforms: Mapping[str, str], *, dtype: str = "float64"
) -> np.ndarray:
    """``raw`` ``(..., len(names))`` with each column's transform applied (a float64 copy).

    >>> transform_inputs(np.array([[0.0, 5.0]]), ["precipitation", "t"], {"precipitation": "log1p"}).tolist()
    [[0.0, 5.0]]
    """
    out = np.array(raw, dtype=dtype, copy=True)
    for j, name in enumerate(names):
        tr = transforms.get(name, "identity")
        if tr != "identity":
            out[..., j] = apply_transform(out[..., j], tr)
    return out


def check_daily_axis(time: Any, *, source: str = "drivers") -> None:
    """Raise :class:`~xsomo.exceptions.GridMismatchError` unless ``time`` is daily without gaps.

    Training and prediction both call this: a model trained across a missing day would
    learn a day that does not follow its predecessor, and a model fed every second day
    would run at half its time scale.

    >>> check_daily_axis(pd.date_range("2020-01-01", periods=3))
    >>> check_daily_axis(pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-05"]))
    Traceback (most recent call last):
    ...
    xsomo.exceptions.GridMismatchError: drivers: 'time' must be daily without gaps, but 2020-01-02 is followed by 2020-01-05 (2 missing days). Reindex to a daily axis (missing days as NaN): ds.reindex(time=pd.date_range(start, end, freq='D')).
    """
    raw = np.asarray(time)
    if raw.dtype == object and raw.size and not isinstance(raw.flat[0], (pd.Timestamp, np.datetime64)):
        raise GridMismatchError(
            f"{source}: 'time' is on a {getattr(raw.flat[0], 'calendar', 'non-standard')!r} calendar (cftime dates); "
            "xsomo reads the standard calendar. Convert it: ds.convert_calendar('standard', align_on='date', "
            "missing=np.nan) (the missing days become NaN), or decode the file without use_cftime."
        )
    index = pd.DatetimeIndex(raw)
    if index.size < 2:
        return
    values = index.values.astype("datetime64[s]")
    step = np.diff(values)
    if (step == _DAY).all():
        return
    if (step <= np.timedelta64(0, "s")).any():
        bad = int(np.argmax(step <= np.timedelta64(0, "s")))
        raise GridMismatchError(
            f"{source}: 'time' must be daily and increasing, but {index[bad]} is followed by {index[bad + 1]}. "
            f"Sort the days and drop duplicates: ds.sortby('time').drop_duplicates('time')."
        )
    days = step / _DAY
    if np.allclose(days, days[0]) and days[0] != 1:
        raise GridMismatchError(
            f"{source}: 'time' must be daily, but every step is {days[0]:g} days ({index[0].date()}, "
            f"{index[1].date()}, ...). xsomo models run on daily drivers: give daily data (e.g. aggregate "
            f"hourly data with ds.resample(time='1D').mean(), or interpolate coarser data to days)."
        )
    bad = int(np.argmax(step != _DAY))
    if days[bad] != int(days[bad]):
        raise GridMismatchError(
            f"{source}: 'time' must be daily at a fixed hour, but {index[bad]} is followed by {index[bad + 1]}. "
            f"Put each day on one time stamp: ds.resample(time='1D').mean()."
        )
    n_missing = int(days[bad]) - 1
    raise GridMismatchError(
        f"{source}: 'time' must be daily without gaps, but {index[bad].date()} is followed by "
        f"{index[bad + 1].date()} ({n_missing} missing day{'s' if n_missing != 1 else ''}). Reindex to a daily "
        f"axis (missing days as NaN): ds.reindex(time=pd.date_range(start, end, freq='D'))."
    )


def _units_hint(label: str, canonical: str) -> str:
    """What to do with the usual daily-total units that are not rates per day (water fluxes in
    kg m-2 s-1 convert: :func:`xsomo.units.convert`)."""
    if canonical == "mm d-1" and label.replace(" ", "") in ("mm", "m", "kgm-2", "kgm**-2", "kg/m2", "kgm^-2"):
        return f"A daily total in {label!r}: label it as a total per day (e.g. '{label} d-1')."
    if canonical == "W m-2" and label.replace(" ", "").replace("**", "") in ("Jm-2", "MJm-2", "J/m2"):
        return f"A daily sum in {label!r}: label it as a sum per day (e.g. '{label} d-1'), which xsomo converts to W m-2."
    return ""


def trailing_gaps(missing: np.ndarray, window: int) -> np.ndarray:
    """``(cells, time)``: days whose trailing ``window`` days (the day included) hold a ``missing`` day.

    >>> trailing_gaps(np.array([[False, True, False, False, False]]), 2).astype(int).tolist()
    [[0, 1, 1, 0, 0]]
    """
    cs = np.cumsum(missing, axis=1, dtype=np.int64)
    lagged = np.zeros_like(cs)
    if window < cs.shape[1]:
        lagged[:, window:] = cs[:, :-window]
    return (cs - lagged) > 0
