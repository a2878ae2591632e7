"""Prediction at points: ``predict(point_drivers, model)`` -> ``sm(layer, time, station)`` (issue 18).

:func:`xsomo.predict` routes drivers indexed by ``station`` (:mod:`xsomo.drivers.points`)
here. The inputs are read with :func:`xsomo.model.inputs.inputs_at_cells` (canonical units,
the model's order) and run with :func:`xsomo.model.rollout.predict_block` (its ``auto``
mode runs the convergence check on the stations' own forcing and rolls out continuously
where the model forgets its initial state within the spin-up, window by window
elsewhere). As for gridded drivers, a day whose trailing ``lookback``-day window lacks
forcing is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo._version import __version__
from xsomo.drivers.points import is_points, point_latlon
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError
from xsomo.model import rollout
from xsomo.model.inputs import check_daily_axis, inputs_at_cells, trailing_gaps

__all__ = ["predict_points", "wanted_layers"]


def wanted_layers(layers: Sequence[int] | int | None, model_layers: list[int]) -> list[int]:
    """The layers ``predict`` is asked for (default: the model's), each one the model predicts, each once.

    >>> wanted_layers(2, [1, 2, 3]), wanted_layers(None, [1, 2])
    ([2], [1, 2])
    """
    if layers is None:
        return list(model_layers)
    want = [int(layers)] if isinstance(layers, int | np.integer) else [int(n) for n in layers]
    unknown = [n for n in want if n not in model_layers]
    if unknown:
        raise XsomoValueError(f"layers={want}: the model predicts layers {model_layers}, not {unknown}")
    if len(set(want)) != len(want):
        raise XsomoValueError(f"layers={want}: each layer once (a repeated layer made a duplicated coordinate)")
    return want


def predict_points(
    drivers: xr.Dataset,
    model: Any,
    *,
    layers: Sequence[int] | int | None = None,
    mode: str = "auto",
    device: str = "cpu",
    spinup: int | None = None,
    time: slice | tuple[Any, Any] | str | None = None,
    dtype: str = "float32",
    tolerance: float | None = None,
) -> xr.Dataset:
    """Soil moisture at every station of point drivers (the point branch of :func:`xsomo.predict`).

    Parameters are those of :func:`xsomo.predict` (no chunks, grid or client: the stations
    are one block). ``time`` selects the output days; the drivers must hold ``spinup``
    days (default the model's lookback) before them.

    Returns
    -------
    xarray.Dataset
        ``sm`` and ``sm_spread`` ``(layer, time, station)`` float32 m3 m-3 (ensemble mean
        and std) with the stations' ``lat``/``lon``; ``missing_forcing_days(station)``;
        the roll-out mode and spin-up used in the attributes.
    """
    if not is_points(drivers):
        raise GridMismatchError(f"point drivers need a 'station' dimension and no lat/lon dims (dims {dict(drivers.sizes)})")
    point_latlon(drivers)  # (without them it had failed on a bare KeyError 'lat' after the whole roll-out)
    cfg = model.config
    dynamic, static = list(cfg.dynamic), list(cfg.static)
    missing = [v for v in (*dynamic, *static) if v not in drivers.variables]
    if missing:
        raise MissingVariableError(
            f"point drivers lack {len(missing)} input(s) the model needs: {missing}. The model was trained on "
            f"dynamic={dynamic} and static={static}; build them with xsomo.point_drivers or add the variables."
        )
    for name in dynamic:
        if set(drivers[name].dims) != {cv.STATION, cv.TIME}:
            raise GridMismatchError(f"point drivers[{name!r}] has dims {drivers[name].dims}; a dynamic input needs (station, time)")
    for name in static:
        if drivers[name].dims != (cv.STATION,):
            raise GridMismatchError(f"point drivers[{name!r}] has dims {drivers[name].dims}; a static input needs (station,)")
    model_layers = [int(v) for v in cfg.layers]
    want = wanted_layers(layers, model_layers)
    if getattr(model, "stats", None) is not None:  # a unit mislabel shows against the training statistics
        from xsomo.model.inputs import check_input_statistics, check_input_units
        from xsomo.runtime import user_stacklevel

        check_input_units(drivers, model, source="point drivers")
        check_input_statistics(drivers, model, source="point drivers", stacklevel=user_stacklevel())
    times = pd.DatetimeIndex(drivers.indexes[cv.TIME])
    check_daily_axis(times, source="point drivers")
    spinup = int(cfg.lookback if spinup is None else spinup)
    if spinup < 1:
        raise XsomoValueError(f"spinup={spinup}: give a number of days >= 1")
    if time is None:
        first, stop = spinup, times.size
    else:
        sl = slice(time, time) if isinstance(time, str) else (time if isinstance(time, slice) else slice(*time))
        pos = times.slice_indexer(sl.start, sl.stop)
        first, stop = int(pos.start), int(pos.stop)
        if first < spinup:
            raise GridMismatchError(
                f"time={time!r}: the point drivers hold {first} days before it, fewer than the {spinup}-day "
                "spin-up; give drivers that start earlier or a later period (or a shorter spinup=, --spinup)"
            )
    if stop <= first:
        short = f" after the {spinup}-day spin-up (the drivers hold {times.size} days)" if time is None else ""
        raise GridMismatchError(
            f"time={time!r}: no output day in the drivers' period {times[0].date()}..{times[-1].date()}{short}; "
            "give drivers that reach further, or a shorter spinup= (--spinup)"
        )
    begin = first - spinup
    # windows of the cascade's lower layers read the upper layers' windows before theirs
    lead = min(begin, rollout.windowed_history(cfg)) if mode in ("windowed", "auto") else 0
    n = drivers.sizes[cv.STATION]
    dyn, sta = inputs_at_cells(
        drivers, np.arange(n), np.zeros(n, int), cfg, time=slice(begin - lead, stop), dtype="float64",
        source="point drivers",
    )  # fmt: skip
    before, dyn = dyn[:, :lead], dyn[:, lead:]
    pred, info = rollout.predict_block(
        model, dyn, sta, mode=mode, spinup=max(1, spinup), device=device, dtype=dtype, return_info=True,
        tolerance=rollout.DEFAULT_TOLERANCE if tolerance is None else float(tolerance), history=before if lead else None,
    )  # fmt: skip
    pred = pred[[model_layers.index(v) for v in want]][..., spinup:]  # (layer, member, station, time)
    miss = ~np.isfinite(dyn).all(axis=2)
    bad = trailing_gaps(miss, max(int(cfg.lookback), 1))[:, spinup:]
    mean = pred.mean(axis=1)
    std = pred.std(axis=1)
    mean[:, bad] = np.nan
    std[:, bad] = np.nan
    mean[:, ~np.isfinite(sta).all(axis=1)] = np.nan
    out_time = times[first:stop]
    coords: dict[str, Any] = {
        **cv.layer_coords(want),
        cv.TIME: (cv.TIME, out_time.values, cv.TIME_ATTRS),
        cv.STATION: drivers[cv.STATION].values,
        cv.LAT: (cv.STATION, np.asarray(drivers[cv.LAT].values, float), cv.LAT_ATTRS),
        cv.LON: (cv.STATION, np.asarray(drivers[cv.LON].values, float), cv.LON_ATTRS),
    }
    for extra in ("network", "station_name"):
        if extra in drivers.coords and drivers[extra].dims == (cv.STATION,):
            coords[extra] = (cv.STATION, drivers[extra].values)
    dims = (cv.LAYER, cv.TIME, cv.STATION)
    ds = xr.Dataset(
        {
            cv.SM: (dims, np.moveaxis(mean, 1, 2).astype("float32"), dict(cv.SM_ATTRS)),
            "sm_spread": (dims, np.moveaxis(std, 1, 2).astype("float32"), {"units": "m3 m-3", "long_name": "ensemble standard deviation of soil moisture"}),
            "missing_forcing_days": ((cv.STATION,), bad.sum(axis=1).astype("int32"), {"long_name": "output days masked because their lookback window lacks forcing"}),
        },
        coords=coords,
        attrs={
            "title": "xsomo soil moisture at points",
            "source": f"xsomo {__version__} EA-LSTM ensemble ({cfg.ensemble} members) at point drivers",
            "rollout_mode": str(info.mode),
            "spinup_days": int(info.spinup),
            "convergence_distance": str(info.distance),
        },
    )
    return ds
