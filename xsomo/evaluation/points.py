"""Skill of a point prediction ``sm(layer, time, station)`` against station series (issue 18).

:func:`xsomo.evaluate` routes a prediction indexed by ``station`` (from point drivers)
here. Each reference station (sensor) is compared with the predicted point at its
location (:func:`xsomo.drivers.points.nearest_points`: the nearest within ~10 m; stations at
the same place told apart by ``network``/``station_name``), with its
own layer when it has a ``layer`` coordinate (as :func:`xsomo.open_ismn` gives), else
with every layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xsomo import conventions as cv
from xsomo.drivers.points import POINT_TOLERANCE, nearest_points, site_keys
from xsomo.evaluation.arrays import refuse_duplicate_stations
from xsomo.evaluation.scores import MIN_DAYS, metrics
from xsomo.exceptions import MissingVariableError, XsomoValueError
from xsomo.units import in_m3m3

__all__ = ["evaluate_points"]


def _training_flag(lat: np.ndarray, lon: np.ndarray, training: Any) -> np.ndarray:
    """Stations at the location of a training target (within :data:`POINT_TOLERANCE`)."""
    from xsomo.evaluation.skill import training_latlon

    latlon = training_latlon(training)
    if latlon is None or latlon.size == 0:
        return np.zeros(lat.size, bool)
    dist = np.maximum(np.abs(lat[:, None] - latlon[None, :, 0]), np.abs(lon[:, None] - latlon[None, :, 1]))
    return (dist <= POINT_TOLERANCE).any(axis=1)


def _warn_unmatched(pred: xr.DataArray, ref: xr.DataArray, lat: np.ndarray, lon: np.ndarray, inside: np.ndarray) -> None:
    """Say which reference stations found no predicted point, where a point of the same
    ``network.station_name`` lies farther than the tolerance (another download of the station,
    with rounded coordinates, had come back all NaN and 0 stations without a word), or where
    none matched at all."""
    if inside.all():
        return
    theirs, ours = site_keys(ref), site_keys(pred)
    plat, plon = np.asarray(pred[cv.LAT].values, float), np.asarray(pred[cv.LON].values, float)
    moved = []
    if theirs is not None and ours is not None:
        for k in np.flatnonzero(~inside):
            same = np.flatnonzero(ours == theirs[k])
            if same.size:
                d = float(np.max([abs(lat[k] - plat[same[0]]), abs(lon[k] - plon[same[0]])]))
                moved.append(f"{theirs[k]} ({d:.4f}° away)")
    if moved:
        warnings.warn(
            f"{len(moved)} reference station(s) have a predicted point of the same network/station_name farther than "
            f"{POINT_TOLERANCE:g}° away: {', '.join(moved[:4])}{', ...' if len(moved) > 4 else ''}; they are not scored "
            "(NaN). If they are the same stations with other coordinates (another download, rounded), give the "
            "reference the prediction's lat/lon.",
            RuntimeWarning,
            stacklevel=4,
        )
    elif not inside.any():
        warnings.warn(
            f"none of the {inside.size} reference stations has a predicted point within {POINT_TOLERANCE:g}° (~10 m): "
            "every metric is NaN. Predict at the reference's stations (xsomo.point_drivers of the reference).",
            RuntimeWarning,
            stacklevel=4,
        )


def evaluate_points(
    sm: xr.Dataset | xr.DataArray,
    reference: xr.Dataset | xr.DataArray,
    *,
    layers: Sequence[int] | None = None,
    min_days: int = MIN_DAYS,
    variable: Hashable = cv.SM,
    anomaly: bool = True,
    training_cells: Any = None,
) -> xr.Dataset:
    """Metrics per reference station and layer of a point prediction (see :func:`xsomo.evaluate`).

    ``training_cells`` (the model, the training targets, ...; see :func:`xsomo.evaluate`)
    flags the stations at a training target's location (``training_cell``), which
    :func:`xsomo.evaluation.summarize` leaves out of its medians.

    Returns
    -------
    xarray.Dataset
        The metrics of :func:`xsomo.evaluation.scores.metrics` per ``station`` (of the
        reference) and ``layer``, with ``lat``/``lon``, ``point`` (the predicted point
        used) and ``in_grid`` (a point within ~10 m exists).
    """
    cv.check_time_zone(sm, "the evaluated data")
    cv.check_time_zone(reference, "the station reference")
    pred = in_m3m3(sm[variable] if isinstance(sm, xr.Dataset) else sm, "the evaluated data")
    ref = in_m3m3(reference[variable] if isinstance(reference, xr.Dataset) else reference, "the station reference", check_lazy=True)
    if cv.STATION not in ref.dims:
        raise XsomoValueError(f"a point prediction is evaluated against stations (dims station, time), got {ref.dims}")
    refuse_duplicate_stations(ref)  # (a sensor given twice was scored, and counted in the medians, twice)
    for c in (cv.LAT, cv.LON):
        if c not in ref.coords or c not in pred.coords:
            raise MissingVariableError(f"prediction and reference both need {c!r} per station")
    pred = cv.with_layer_dim(pred)
    avail = [int(v) for v in pred[cv.LAYER].values]
    layers = avail if layers is None else [int(v) for v in layers]
    if set(layers) - set(avail):
        raise XsomoValueError(f"layers {sorted(set(layers) - set(avail))} not in the prediction (layers {avail})")
    pred = pred.sel({cv.LAYER: layers})
    lat = np.asarray(ref[cv.LAT].values, float)
    lon = np.asarray(ref[cv.LON].values, float)
    idx, inside = nearest_points(pred, lat, lon, keys=site_keys(ref), what="station")
    _warn_unmatched(pred, ref, lat, lon, inside)
    keep_coords = [c for c in pred.coords if c in (cv.LAYER, cv.TIME)]
    pts = pred.isel({cv.STATION: xr.DataArray(idx, dims=cv.STATION)}).reset_coords(drop=True)
    pts = pts.assign_coords({cv.STATION: ref[cv.STATION].values, **{c: pred[c] for c in keep_coords}})
    pts = pts.where(xr.DataArray(inside, dims=cv.STATION))
    obs = ref.reset_coords(drop=True)
    time = np.intersect1d(pts[cv.TIME].values.astype("datetime64[D]"), obs[cv.TIME].values.astype("datetime64[D]"))
    pts = pts.assign_coords({cv.TIME: pts[cv.TIME].values.astype("datetime64[D]").astype("datetime64[ns]")})
    obs = obs.assign_coords({cv.TIME: obs[cv.TIME].values.astype("datetime64[D]").astype("datetime64[ns]")})
    t = time.astype("datetime64[ns]")
    out = metrics(pts.sel({cv.TIME: t}), obs.sel({cv.TIME: t}), min_days=min_days, anomaly=anomaly)
    out = out.transpose(cv.STATION, cv.LAYER, ...)
    if cv.LAYER in ref.coords and ref[cv.LAYER].dims == (cv.STATION,):
        own = np.asarray(ref[cv.LAYER].values, int)
        keep = xr.DataArray(own[:, None] == np.asarray(layers)[None, :], dims=(cv.STATION, cv.LAYER))
        out = out.where(keep)
        if "n" in out:
            out["n"] = out["n"].fillna(0).astype("int32")
    coords = {
        cv.LAT: (cv.STATION, lat, cv.LAT_ATTRS),
        cv.LON: (cv.STATION, lon, cv.LON_ATTRS),
        "point": (cv.STATION, np.where(inside, np.asarray(pred[cv.STATION].values)[idx], "")),
        "in_grid": (cv.STATION, inside, {"long_name": "a predicted point lies within ~10 m of the station"}),
        "training_cell": (cv.STATION, _training_flag(lat, lon, training_cells)),
    }
    for extra in ("network", "station_name", "sensor"):
        if extra in ref.coords and ref[extra].dims == (cv.STATION,):
            coords[extra] = (cv.STATION, ref[extra].values)
    out = out.assign_coords(coords)
    out.attrs = {"title": "xsomo evaluation of a point prediction against stations", "min_days": int(min_days)}
    return out
