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
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.drivers.points import is_points
from xsomo.drivers.regions import land_cells
from xsomo.exceptions import GridMismatchError, MissingVariableError, UnitError
from xsomo.model.config import apply_transform
from xsomo.units import check_plausible, convert, same_unit

__all__ = [
    "check_daily_axis",
    "check_grid_resolution",
    "check_input_statistics",
    "check_input_units",
    "driver_variable",
    "input_statistics_problems",
    "input_units",
    "inputs_at_cells",
    "trailing_gaps",
    "transform_inputs",
]

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


def daily_at_midnight(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its daily ``time`` stamps at midnight, the days they stand for (CF daily means
    are often stamped at 12:00). Drivers stamped at noon had lost their last day to
    ``--end`` (a midnight bound) and made ``xsomo extend`` fail on a KeyError; every output
    day is stamped at midnight, as in the files.

    >>> t = pd.date_range("2020-01-01 12:00", periods=2, freq="D")
    >>> daily_at_midnight(xr.Dataset(coords={"time": t})).time.dt.hour.values.tolist()
    [0, 0]
    """
    index = pd.DatetimeIndex(ds.indexes[cv.TIME])
    if index.size == 0 or (index == index.normalize()).all():
        return ds
    days = index.normalize()
    if days.has_duplicates:
        return ds  # sub-daily stamps: the daily-axis check names them
    return ds.assign_coords({cv.TIME: (cv.TIME, days, ds[cv.TIME].attrs)})


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


# ----------------------------------------------------------------------------- statistics check
#: Thresholds of :func:`input_statistics_problems` (calibrated in its Notes).
MEAN_Z_DYNAMIC = 6.0
STD_RATIO_LOW = 0.05
STD_RATIO_HIGH = 20.0
SCALED_STD_RATIO = 0.3
MIN_STATIC_CELLS = 10
MEAN_Z_STATIC = 100.0
STATIC_STD_RATIO_HIGH = 50.0
#: Usual unit mix-ups: the factor by which the values are too small, the guess, and whether it
#: is looked for in static inputs (a static input is judged by a scale only for large factors:
#: a forest-free region has a forest fraction 50x below the training mean, scaled spread and all).
_UNIT_GUESSES: tuple[tuple[float, str, bool], ...] = (
    (1000.0, "m where mm are labelled, or km where m are?", True),
    (1e-3, "mm where m are labelled, or m where km are?", True),
    (1e6 / 86400.0, "MJ m-2 d-1 where W m-2 are labelled?", False),
    (86400.0 / 1e6, "W m-2 where MJ m-2 d-1 are labelled?", False),
    (86400.0, "a rate per second where one per day is labelled (kg m-2 s-1 as mm d-1)?", True),
    (1 / 86400.0, "a rate per day where one per second is labelled?", True),
    (365.0, "a rate per day where one per year is labelled?", True),
    (1 / 365.0, "a rate per year where one per day is labelled?", True),
    (24.0, "hourly values where daily ones are labelled?", False),
    (1 / 24.0, "daily sums where hourly values are labelled?", False),
    (100.0, "a fraction where percent is labelled?", False),
    (0.01, "percent where a fraction is labelled?", False),
)
_STATIC_SCALE = 300.0  # smallest factor (or 1 / factor) a static input is judged by


def _matching_factor(raw: np.ndarray, transform: str, target_mean: float) -> float:
    """The factor ``f`` with ``mean(transform(f * raw)) == target_mean`` (NaN where none is found):
    how much larger the values would have to be to have the training mean."""
    x = raw[np.isfinite(raw)].astype("float64")
    if x.size == 0:
        return float("nan")
    if transform == "identity":
        m = float(x.mean())
        return target_mean / m if m != 0 and target_mean / m > 0 else float("nan")
    lo, hi = -8.0, 8.0  # log10 f; the transformed mean grows with f (log1p of values >= 0)

    def mean_at(logf: float) -> float:
        return float(np.mean(apply_transform(x * 10.0**logf, transform)))

    if not mean_at(lo) <= target_mean <= mean_at(hi):
        return float("nan")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_at(mid) < target_mean else (lo, mid)
    return float(10.0 ** (0.5 * (lo + hi)))


def _unit_guess(factor: float, *, static: bool) -> tuple[float, str] | None:
    """The usual mix-up within a factor 1.6 of ``factor`` (values ``factor`` x too small)."""
    if not np.isfinite(factor) or factor <= 0:
        return None
    near = [(f, text) for f, text, st in _UNIT_GUESSES if (st or not static) and abs(np.log10(factor / f)) < 0.2]
    return near[0] if near else None


def _describe(factor: float) -> str:
    if not np.isfinite(factor) or factor <= 0:
        return ""
    size = f"{factor:.3g}x too small" if factor >= 1 else f"{1 / factor:.3g}x too large"
    guess = _unit_guess(factor, static=False)
    return f"; the values look {size}" + (f" ({guess[1]})" if guess else "")


def input_statistics_problems(
    dynamic: np.ndarray,
    static: np.ndarray,
    config: Any,
    stats: Any,
    *,
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    """What is suspicious about raw inputs compared with the model's training statistics.

    Values in other units under the canonical label (precipitation in m d-1 labelled
    ``mm d-1``, net radiation in MJ m-2 d-1 labelled ``W m-2``, elevation in km labelled
    ``m``) pass the physical range check (:func:`driver_variable`) and changed soil moisture
    by up to 0.06 m3 m-3 without a sign. The model keeps each input's training mean and std
    (after its transform, :class:`~xsomo.model.config.NormStats`); a unit mislabel moves the
    sample far from them or scales its spread by the unit factor, while another region or
    period moves them much less.

    A unit mix-up scales mean and spread by one factor: the factor that would bring the
    sample's mean to the training mean (through the input's transform), times the ratio of
    the sample's std to the training std, is then about 1 (within 2x), and the factor lies
    within 1.6x of a usual mix-up (1000, 1e6 / 86400, 86400, 365, 24, 100, their inverses).

    A dynamic input is suspicious when its sample mean lies more than :data:`MEAN_Z_DYNAMIC`
    training stds from the training mean, its std is outside [:data:`STD_RATIO_LOW`,
    :data:`STD_RATIO_HIGH`] x the training std, or it is scaled like a mix-up with a std
    outside [:data:`SCALED_STD_RATIO`, 1 / :data:`SCALED_STD_RATIO`] x the training std. A
    static input is judged only over at least :data:`MIN_STATIC_CELLS` cells (a cell's
    static inputs have no spread; a small region legitimately varies less): its mean more
    than :data:`MEAN_Z_STATIC` training stds off, its std above
    :data:`STATIC_STD_RATIO_HIGH` x the training std, or scaled like a mix-up by a factor
    beyond 300 (1000: km for m; 365; 86400; a forest-free region has a forest fraction 50x
    below the training mean with its spread scaled alike, so smaller factors are not judged).

    Parameters
    ----------
    dynamic, static
        Raw inputs in canonical units, ``(cell, time, n_dynamic)`` and ``(cell, n_static)``
        in the config's order (:func:`inputs_at_cells`).
    config, stats
        The model's :class:`~xsomo.model.config.ModelConfig` and
        :class:`~xsomo.model.config.NormStats`.
    labels
        ``{input: units label}`` of the drivers, named in the messages.

    Returns
    -------
    list of str
        One message per suspicious input (empty when all look like the training inputs).

    Notes
    -----
    Calibrated on the seed-0 demo sample world (60 x 60 cells, 2013-2020, 100 target cells):
    training statistics from all target cells, from the 65 of region 1 only and from the 35
    of region 2 only, each against 2 568 legitimate samples (750 single cells x 100, 365 and
    730 days starting in winter, summer and other years; every 6 x 6 block over 365 and 730
    days; random 3 x 3 to 30 x 30 regions; each whole region): none was flagged. Their
    extremes: dynamic means up to 3.3 training stds off, dynamic std ratios 0.167 to 1.59
    (precipitation over 100 days at one cell the lowest), static means up to 30 stds off
    (aridity, statistics of region 2 against region 1), static std ratios 0 to 7.2. On the
    same samples, precipitation in m d-1 was flagged in all, net radiation in MJ m-2 d-1 in
    82-99.5 % of the 100-day single cells and in all of 365 days or more (std ratio 0.086);
    elevation in km over regions of 20 x 20 cells or more in about 60 %, over smaller ones
    rarely (a region's mean elevation differs from the training mean by more than the 1.6x the
    guess allows).

    Examples
    --------
    >>> from xsomo.model.config import ModelConfig, NormStats
    >>> cfg = ModelConfig(dynamic=["precipitation"], static=["elevation_mean"])
    >>> st = NormStats([2.5], [4.0], [420.0], [230.0], [0.2], [0.05])
    >>> rain = np.random.default_rng(0).gamma(0.5, 5.0, (4, 400, 1))
    >>> input_statistics_problems(rain, np.array([[400.0]] * 4), cfg, st)
    []
    >>> print(input_statistics_problems(rain / 1000, np.array([[400.0]] * 4), cfg, st)[0])  # doctest: +ELLIPSIS
    'precipitation' (units 'mm d-1'): sample std 0.00081x the training std, ... too small (m where mm are labelled, or km where m are?)
    """
    labels = dict(labels or {})
    problems = []
    for kind, raw, names, means, stds in (
        ("dynamic", np.asarray(dynamic), config.dynamic, stats.dynamic_mean, stats.dynamic_std),
        ("static", np.asarray(static), config.static, stats.static_mean, stats.static_std),
    ):
        for j, name in enumerate(names):
            col = raw[..., j].astype("float64")
            transform = config.transforms.get(name, "identity")
            values = apply_transform(col, transform)
            finite = np.isfinite(values)
            n_cells = int(finite.reshape(finite.shape[0], -1).any(axis=1).sum()) if finite.ndim else 0
            if (kind == "dynamic" and finite.sum() < 30) or n_cells == 0:
                continue
            mean, std = float(values[finite].mean()), float(values[finite].std())
            t_mean, t_std = float(means[j]), float(stds[j])
            z = abs(mean - t_mean) / t_std
            ratio = std / t_std
            factor = _matching_factor(col, transform, t_mean)
            # a unit mix-up scales mean and spread alike (spread x mean-matching factor ~ 1)
            guess = _unit_guess(factor, static=kind == "static")
            scaled = guess is not None and ratio > 0 and abs(np.log10(factor * ratio)) < 0.3
            if kind == "dynamic":
                bad = (
                    z > MEAN_Z_DYNAMIC
                    or not STD_RATIO_LOW <= ratio <= STD_RATIO_HIGH
                    or (scaled and not SCALED_STD_RATIO <= ratio <= 1 / SCALED_STD_RATIO)
                )
            else:
                # a static without spread in training (a model of one cell: its std was set to 1)
                # says nothing about units (it had been called "1.25x too large"; QA)
                bad = n_cells >= MIN_STATIC_CELLS and t_std != 1.0 and (
                    z > MEAN_Z_STATIC
                    or ratio > STATIC_STD_RATIO_HIGH
                    or (scaled and not 1 / _STATIC_SCALE <= factor <= _STATIC_SCALE)
                )
            if bad:
                label = labels.get(name) or getattr(cv.VARIABLES.get(name), "units", "?")
                tr = f" after {transform}" if transform != "identity" else ""
                problems.append(
                    f"{name!r} (units {label!r}): sample std {ratio:.2g}x the training std, mean "
                    f"{mean:.4g} against the training {t_mean:.4g} ({z:.1f} training stds off{tr}; "
                    f"{n_cells} cells){_describe(factor)}"
                )
    return problems


def _sample_cells(drivers: xr.Dataset, name: str, max_cells: int, max_chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of up to ``max_cells`` land cells spread over at most
    ``max_chunks`` of the dask chunks of ``drivers[name]`` (all of a numpy-backed grid)."""
    if is_points(drivers):
        idx = np.unique(np.linspace(0, drivers.sizes[cv.STATION] - 1, max_cells).round().astype(int))
        return idx, np.zeros_like(idx)
    nlat, nlon = drivers.sizes[cv.LAT], drivers.sizes[cv.LON]
    land = np.ones((nlat, nlon), bool)
    if cv.LAND_MASK in drivers and set(drivers[cv.LAND_MASK].dims) == {cv.LAT, cv.LON}:
        land = np.asarray(land_cells(drivers[cv.LAND_MASK].transpose(cv.LAT, cv.LON)).values, bool)
    rows, cols = np.nonzero(land)
    arr = drivers[name]
    if arr.chunks is not None and rows.size:
        edges = {d: np.cumsum((0, *c)) for d, c in zip(arr.dims, arr.chunks, strict=True)}
        key = np.searchsorted(edges[cv.LAT], rows, side="right") * (len(edges[cv.LON]) + 1) + np.searchsorted(
            edges[cv.LON], cols, side="right"
        )
        ids, counts = np.unique(key, return_counts=True)
        keep = np.isin(key, ids[np.argsort(-counts, kind="stable")[:max_chunks]])
        rows, cols = rows[keep], cols[keep]
    pick = np.unique(np.linspace(0, rows.size - 1, min(max_cells, rows.size)).round().astype(int)) if rows.size else []
    return rows[pick], cols[pick]


def check_input_statistics(
    drivers: xr.Dataset,
    model: Any,
    *,
    source: str = "drivers",
    max_cells: int = 64,
    max_days: int = 730,
    max_chunks: int = 2,
    stacklevel: int = 2,
) -> list[str]:
    """Warn when the drivers' inputs look unlike the model's training inputs (a unit mislabel).

    Reads a cheap sample -- up to ``max_cells`` land cells (from at most ``max_chunks`` dask
    chunks of dask-backed drivers) over the first ``max_days`` days -- through
    :func:`inputs_at_cells` (canonical units, range check) and compares it with the model's
    training statistics (:func:`input_statistics_problems`). Prediction calls it once per
    call, before the roll-out.

    Parameters
    ----------
    drivers
        Gridded or point drivers holding the model's inputs.
    model
        A :class:`~xsomo.model.trained.TrainedModel` (its ``config`` and ``stats``).
    source
        Name of the drivers in the message.

    Returns
    -------
    list of str
        The messages (also warned, as one ``RuntimeWarning``); empty when nothing is off.

    Raises
    ------
    MissingVariableError, UnitError
        As :func:`inputs_at_cells`.
    """
    config, stats = model.config, model.stats
    rows, cols = _sample_cells(drivers, str(config.dynamic[0]), int(max_cells), int(max_chunks))
    if len(rows) == 0:
        return []
    ntime = drivers.sizes.get(cv.TIME, 0)
    dyn, sta = inputs_at_cells(
        drivers, rows, cols, config, time=slice(0, min(int(max_days), ntime)), dtype="float64", source=source
    )
    labels = {str(v): str(drivers[v].attrs.get("units", "")) for v in (*config.dynamic, *config.static)}
    with np.errstate(all="ignore"):
        problems = input_statistics_problems(dyn, sta, config, stats, labels=labels)
    if problems:
        warnings.warn(
            f"{source}: inputs unlike the model's training inputs (sampled at {len(rows)} cells over "
            f"{dyn.shape[1]} days): " + "; ".join(problems) + ". Check their units (a mislabelled unit "
            "passes the range check but changes the predictions); if the values are right, this region "
            "or period lies outside what the model was trained on.",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
    return problems


def input_units(drivers: xr.Dataset, names: Sequence[str]) -> dict[str, str | None]:
    """The ``units`` labels of the inputs without canonical units (recorded with a model).

    Canonical inputs are converted to their units whatever the label; any other input reaches
    the network as it is, so its label is what :func:`check_input_units` compares.
    """
    return {str(n): drivers[n].attrs.get("units") for n in names if str(n) not in cv.VARIABLES and n in drivers}


def check_input_units(drivers: xr.Dataset, model: Any, *, source: str = "drivers") -> None:
    """Refuse an input without canonical units whose ``units`` label differs from training's.

    Such an input (a user's own static, ``air_temperature_range``) is passed to the network
    as it is: a label changed between training and prediction (``units='banana'``, or degC
    data for a model trained on K) went through without a word. Nothing is checked for a
    model that does not record the labels (imported, or saved before they were recorded).

    >>> import types
    >>> m = types.SimpleNamespace(metadata={"input_units": {"my_index": "1"}})
    >>> check_input_units(xr.Dataset({"my_index": ("x", [0.5], {"units": "1"})}), m)
    >>> check_input_units(xr.Dataset({"my_index": ("x", [50.0], {"units": "%"})}), m)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xsomo.exceptions.UnitError: drivers: the input 'my_index' has units '%', but the model was trained on it in '1'; ...

    Spellings of one unit are the same unit (:func:`xsomo.units.same_unit`; ``'W/m2'`` had been
    refused for a model trained on ``'W m-2'``):

    >>> w = types.SimpleNamespace(metadata={"input_units": {"flux": "W m-2"}})
    >>> check_input_units(xr.Dataset({"flux": ("x", [120.0], {"units": "W/m2"})}), w)
    """
    recorded = (getattr(model, "metadata", None) or {}).get("input_units") or {}

    def same(have: Any, want: Any) -> bool:
        if have is None or want is None:  # a label dropped (or added) since training
            return have is None and want is None
        return same_unit(str(have), str(want))

    for name, want in recorded.items():
        if name not in drivers:
            continue
        have = drivers[name].attrs.get("units")
        if not same(have, want):
            raise UnitError(
                f"{source}: the input {name!r} has units {have!r}, but the model was trained on it in {want!r}; "
                "xsomo converts only its canonical variables, so this one would reach the network as it is. "
                f"Give it in {want!r} (and label it so)."
            )


def check_grid_resolution(drivers: xr.Dataset, model: Any, *, source: str = "drivers") -> None:
    """Refuse gridded drivers at another resolution than the model's training grid.

    A model trained at 0.1° had predicted 0.2° drivers without a word; its static inputs
    (``elevation_std``: the sub-grid spread of elevation; the fractions, the soil texture)
    mean something else at another resolution. Nothing is checked for point drivers, for a
    grid of a single cell (no spacing to read), or for a model that does not record its grid
    (:attr:`~xsomo.model.trained.TrainedModel.grid_resolution` None: imported, or saved before
    it was recorded).

    Raises
    ------
    GridMismatchError
        If the drivers' spacing differs from the training grid's by more than 0.1 %.

    Examples
    --------
    >>> import types
    >>> ds = xr.Dataset(coords={"lat": [45.1, 45.3], "lon": [5.1, 5.3, 5.5]})
    >>> check_grid_resolution(ds, types.SimpleNamespace(grid_resolution=0.2))
    >>> check_grid_resolution(ds, types.SimpleNamespace(grid_resolution=0.1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xsomo.exceptions.GridMismatchError: drivers are on a 0.2° grid, but the model was trained on 0.1° drivers: ...
    """
    want = getattr(model, "grid_resolution", None)
    if want is None or is_points(drivers) or cv.LAT not in drivers.coords or cv.LON not in drivers.coords:
        return
    steps = [
        float(np.median(np.abs(np.diff(np.asarray(drivers[d].values, float)))))
        for d in (cv.LON, cv.LAT)
        if drivers[d].size > 1
    ]
    if not steps:
        return
    have = steps[0]
    if abs(have - want) > 1e-3 * want:
        raise GridMismatchError(
            f"{source} are on a {have:g}° grid, but the model was trained on {want:g}° drivers: static inputs "
            "such as elevation_std (the sub-grid spread of elevation), the land-cover fractions and the soil "
            f"texture mean something else at another resolution. Give drivers on a {want:g}° grid (regrid "
            "the sources to it, e.g. xsomo prepare), or train a model on this grid."
        )
