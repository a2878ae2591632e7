"""Getting the soil-moisture DataArray out of what users pass to the evaluation functions."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Hashable

import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import MissingVariableError, XsomoValueError
from xsomo.io.stations import refuse_duplicate_ids

__all__ = ["as_dataarray", "layered", "normalise_time", "open_prediction", "refuse_duplicate_stations"]


def as_dataarray(obj: xr.Dataset | xr.DataArray, variable: Hashable = cv.SM) -> xr.DataArray:
    """``obj`` itself if a DataArray, else its ``variable`` (or its only variable).

    Raises
    ------
    MissingVariableError
        A Dataset without ``variable`` and with more than one variable.
    """
    if isinstance(obj, xr.DataArray):
        return obj
    if variable in obj.data_vars:
        return obj[variable]
    if len(obj.data_vars) == 1:
        return next(iter(obj.data_vars.values()))
    raise MissingVariableError(
        f"variable {variable!r} not found in the Dataset (variables {sorted(map(str, obj.data_vars))}); "
        f"pass the DataArray or a Dataset holding {variable!r}."
    )


def refuse_duplicate_stations(ref: xr.DataArray) -> None:
    """Refuse a station reference that gives one station id twice (it was scored, and counted
    in the medians, twice)."""
    if cv.STATION in ref.coords:
        refuse_duplicate_ids(
            ref[cv.STATION].values, "station reference: {n} station id(s) given more than once ({ids}); give each "
            "station its own id."
        )


def layered(obj: xr.Dataset | xr.DataArray, variable: Hashable = cv.SM) -> xr.DataArray:
    """A ``layer``-dimensioned DataArray from ``sm`` or from per-layer variables ``layer1..3``."""
    if isinstance(obj, xr.Dataset) and variable not in obj.data_vars:
        names = [cv.layer_var_name(n) for n in cv.LAYER_NUMBERS if cv.layer_var_name(n) in obj.data_vars]
        if names:
            nums = [int(n.removeprefix("layer")) for n in names]
            da = xr.concat([obj[n] for n in names], dim=xr.DataArray(nums, dims=cv.LAYER, name=cv.LAYER))
            return da.rename(cv.SM)
    return as_dataarray(obj, variable)


def normalise_time(obj: xr.DataArray) -> xr.DataArray:
    """``obj`` with its ``time`` values at midnight (daily values stamped at noon are the same day).

    Raises
    ------
    XsomoValueError
        For sub-daily data (two values on one day: aggregate them to daily means first) and
        for calendars without the standard days (``noleap``, ``360_day``).
    """
    cv.check_time_zone(obj, "the evaluated data or reference")
    values = obj[cv.TIME].values
    if values.dtype == object and values.size:
        first = values.flat[0]
        if isinstance(first, pd.Timestamp | dt.datetime) and getattr(first, "tzinfo", None) is not None:
            raise XsomoValueError(
                f"time holds time-zone-aware stamps ({first}): give UTC times without a zone, e.g. "
                "obj.assign_coords(time=pd.DatetimeIndex(obj.time.values).tz_convert('UTC').tz_localize(None))"
            )
        cal = getattr(first, "calendar", None)
        if cal is not None:  # cftime dates
            raise XsomoValueError(
                f"time uses the {cal!r} calendar: scores pair real days, so give standard dates "
                "(obj.convert_calendar('standard', align_on='date'), which leaves the missing days NaN)"
            )
    t = pd.DatetimeIndex(values)
    if t.has_duplicates:
        twice = t[t.duplicated()].unique()
        raise XsomoValueError(
            f"time holds {twice.size} stamp(s) twice ({', '.join(str(d) for d in twice[:3])}"
            f"{', ...' if twice.size > 3 else ''}): keep one value per day, e.g. obj.drop_duplicates('time') or "
            "obj.groupby('time').mean()"
        )
    if (t != t.normalize()).any():
        days = t.normalize()
        if days.has_duplicates:
            raise XsomoValueError(
                f"time holds {t.size} values on {days.nunique()} days: sub-daily data. Scores pair daily "
                "values: aggregate to daily means first (obj.resample(time='1D').mean())"
            )
        obj = obj.assign_coords({cv.TIME: days})
    return obj


def open_prediction(prediction: str | os.PathLike[str] | xr.Dataset | xr.DataArray) -> xr.DataArray:
    """``sm(layer, time, lat, lon)`` with ascending lat/lon from a Dataset, a DataArray or SoMo files.

    Parameters
    ----------
    prediction
        A Dataset holding ``sm`` (or ``layer1..3``), a DataArray, a folder of
        ``SoMo.ml-EU_layer{N}_{YYYY}.nc`` files or one netCDF file; paths are read with
        :func:`xsomo.io.somo.open_somo` (lazy).
    """
    from xsomo.regrid import normalise_latlon

    if isinstance(prediction, xr.Dataset | xr.DataArray):
        da = layered(prediction)
    else:
        from xsomo.io.somo import open_somo

        da = open_somo(prediction)[cv.SM]
    da = normalise_latlon(da)
    return da.transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON)
