"""Skill of gridded soil moisture at stations and against gridded references.

:func:`evaluate` dispatches to :func:`evaluate_stations` (point stations, footprint mix,
training-cell flags) or :func:`evaluate_grid` (maps against a regridded product);
:func:`summarize` gives the headline medians, :func:`to_geodataframe` the points for GIS.

A station belongs to the grid cell that :meth:`xsomo.conventions.GridSpec.snap` gives
(:func:`match_stations`): cells are half-open, a station on an inner edge goes to the
cell to its north-east, one on the outer north or east edge is outside. Training uses
the same rule, so a station in a cell that held targets is never scored as independent.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.drivers.points import location_keys
from xsomo.evaluation.arrays import as_dataarray, layered, normalise_time, refuse_duplicate_stations
from xsomo.evaluation.scores import METRICS, MIN_DAYS, metrics
from xsomo.exceptions import GridMismatchError, MissingVariableError, UnitError, XsomoValueError
from xsomo.units import convert, in_m3m3

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "FOOTPRINT_LAYER",
    "evaluate",
    "evaluate_grid",
    "evaluate_stations",
    "footprint_weights",
    "match_stations",
    "metrics_table",
    "summarize",
    "to_geodataframe",
    "training_latlon",
]

#: Layer label of the footprint-weighted mix of the three layers in station metrics.
FOOTPRINT_LAYER = 0

_FOOTPRINT_NAMES = ("footprint_depth", "footprint_depth_m", "Footprint_Depth_m", "depth")


def footprint_weights(depth: float, layers: Sequence[int] = cv.LAYER_NUMBERS) -> np.ndarray:
    """Weights of ``layers`` in what a sensor with effective sensing depth ``depth`` (m) sees.

    The rule: the sensor averages the soil uniformly from the surface down to its
    effective depth (for a cosmic-ray probe the depth above which 86 % of the detected
    neutrons originate, 0.15-0.22 m at typical wetness), so each layer weighs by its
    overlap with ``0..depth``. A depth of 0.15 m gives layer 1 two thirds and layer 2
    one third; a depth beyond 0.50 m weighs the three layers by thickness.

    Examples
    --------
    >>> footprint_weights(0.15).round(3).tolist()
    [0.667, 0.333, 0.0]
    """
    depth = float(depth)
    if not np.isfinite(depth) or depth <= 0:
        raise XsomoValueError(f"footprint depth {depth!r} m: expected a positive depth in metres.")
    depth = min(depth, max(cv.layer_by_number(n).bottom for n in layers))
    intervals = tuple((cv.layer_by_number(n).top, cv.layer_by_number(n).bottom) for n in layers)
    return cv.depth_weights(0.0, depth, intervals)


#: Largest sensing depth (m) a station's footprint depth may give (a cosmic-ray probe's D86 is
#: 0.1-0.7 m; 17.5 without units was a depth in cm read as m).
MAX_FOOTPRINT_DEPTH = 2.0


def _station_depths(ref: xr.Dataset | xr.DataArray, default: float | None) -> np.ndarray | None:
    for name in _FOOTPRINT_NAMES:
        if name in ref.coords or (isinstance(ref, xr.Dataset) and name in ref.data_vars):
            d = ref[name]
            if cv.TIME in d.dims:
                d = d.median(cv.TIME, skipna=True)
            if d.attrs.get("units") is not None:  # cm, centimeters, mm, m, ...
                d = convert(d, "m", name=name, source="the station reference")
            vals = np.asarray(d.values, dtype=float)
            if default is not None:
                # a station without a depth of its own (NaN: open_cosmos writes the coordinate for
                # every station) takes the default; it had been scored NaN and left out of the medians
                vals = np.where(np.isfinite(vals), vals, float(default))
            if np.nanmax(vals, initial=0.0) > MAX_FOOTPRINT_DEPTH:
                raise UnitError(
                    f"station reference: {name} up to {np.nanmax(vals):g} is no sensing depth in metres (a cosmic-ray "
                    f"probe's is 0.1-0.7 m){'' if d.attrs.get('units') else '; without a units attribute it is read as m'}"
                    ": give it units (e.g. 'cm') or convert it to m"
                )
            return np.broadcast_to(vals, (ref.sizes[cv.STATION],)).copy()
    if default is not None:
        return np.full(ref.sizes[cv.STATION], float(default))
    return None


def match_stations(
    grid: xr.Dataset | xr.DataArray, lat: np.ndarray, lon: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row/column of the grid cell holding each point, and a bool ``inside``.

    The one cell rule of xsomo, :meth:`xsomo.conventions.GridSpec.snap`: cells are
    half-open ``[south, north) x [west, east)``, a point on an inner edge goes to the
    cell to its north-east, a point on the outer north or east edge (or beyond any
    edge) is outside (``inside=False``, index 0). Rows and columns index the grid's own
    ``lat``/``lon`` order (descending latitudes too).

    Raises
    ------
    GridMismatchError
        The grid's centres are not regular.

    Examples
    --------
    >>> g = xr.Dataset(coords={"lat": [40.45, 40.35], "lon": [0.25, 0.35]})
    >>> rows, cols, inside = match_stations(g, [40.45, 40.5, 40.3], [0.30, 0.3, 0.2])
    >>> rows.tolist(), cols.tolist(), inside.tolist()
    ([0, 0, 1], [1, 0, 0], [True, False, True])
    """
    glat = np.asarray(grid[cv.LAT].values, float)
    glon = np.asarray(grid[cv.LON].values, float)
    spec = cv.GridSpec.from_coords(glat, glon)
    tol = spec.resolution * 1e-3
    if (
        spec.nlat != glat.size
        or spec.nlon != glon.size
        or not np.allclose(np.sort(glat), spec.lat, atol=tol)
        or not np.allclose(np.sort(glon), spec.lon, atol=tol)
    ):
        raise GridMismatchError(
            f"the grid's lat/lon centres are not regular at {spec.resolution:g} degrees "
            f"(lat {glat.min():g}..{glat.max():g}, lon {glon.min():g}..{glon.max():g}); "
            "stations are placed on regular grids only: regrid first (xsomo.regrid)."
        )
    i, j = spec.snap(np.asarray(lat, float), np.asarray(lon, float))
    inside = (i >= 0) & (j >= 0)
    rows = np.argsort(glat, kind="stable")[np.where(inside, i, 0)]
    cols = np.argsort(glon, kind="stable")[np.where(inside, j, 0)]
    return np.where(inside, rows, 0), np.where(inside, cols, 0), inside


def training_latlon(training: Any) -> np.ndarray | None:
    """``(n, 2)`` lat/lon of training cells from targets, a model (its training and validation
    cells), a DataFrame or an array (None: none given)."""
    if training is None:
        return None
    if isinstance(training, xr.Dataset | xr.DataArray):
        if cv.LAT in training.coords and cv.LON in training.coords and cv.LAT not in training.dims:
            return np.column_stack([np.asarray(training[cv.LAT].values, float), np.asarray(training[cv.LON].values, float)])
        raise XsomoValueError("training_cells: a Dataset needs per-cell lat/lon coordinates (the targets' layout).")
    val = getattr(training, "history", None)
    val = val.get("validation_cells") if isinstance(val, dict) else None
    if getattr(training, "training_cells", None) is not None and isinstance(val, dict):
        # a model: its early-stopping validation cells chose the epoch, so their stations are
        # not independent either (they were counted as such with the model, not with the targets)
        cells = [np.asarray(training.training_cells, float).reshape(-1, 2)]
        cells += [np.asarray(v, float).reshape(-1, 2) for v in val.values()]
        return np.unique(np.concatenate(cells), axis=0)
    for attr in ("training_cells", "cells"):
        if hasattr(training, attr) and not isinstance(training, np.ndarray | pd.DataFrame):
            return training_latlon(getattr(training, attr))
    if isinstance(training, pd.DataFrame):
        return training[[cv.LAT, cv.LON]].to_numpy(float)
    if isinstance(training, dict) and cv.LAT in training:
        return np.column_stack([np.asarray(training[cv.LAT], float), np.asarray(training[cv.LON], float)])
    arr = np.asarray(training, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 2:
        return arr
    raise XsomoValueError(
        f"training_cells: cannot read training cells from {type(training).__name__}; pass the targets "
        "Dataset, the TrainedModel, a DataFrame with lat/lon columns or an (n, 2) lat/lon array."
    )


def _flag_training(
    grid: xr.Dataset | xr.DataArray, rows: np.ndarray, cols: np.ndarray, inside: np.ndarray, training: Any
) -> np.ndarray:
    latlon = training_latlon(training)
    flag = np.zeros(rows.shape, bool)
    if latlon is None or latlon.size == 0:
        return flag
    # in the grid's longitude convention, as the stations are (a 0..360 grid had found no
    # training cell given in -180..180, and every station counted as independent)
    ti, tj, tin = match_stations(grid, latlon[:, 0], cv.lon_like_grid(latlon[:, 1], grid[cv.LON].values))
    cells = set(zip(ti[tin].tolist(), tj[tin].tolist(), strict=True))
    for k, (i, j) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        flag[k] = bool(inside[k]) and (i, j) in cells
    return flag


def evaluate_stations(
    sm: xr.Dataset | xr.DataArray,
    stations: xr.Dataset | xr.DataArray,
    *,
    layers: Sequence[int] | None = None,
    min_days: int = MIN_DAYS,
    training_cells: Any = None,
    footprint_depth: float | None = None,
    variable: Hashable = cv.SM,
    anomaly: bool = True,
) -> xr.Dataset:
    """Metrics of a gridded prediction at point stations, per station and layer.

    See :func:`evaluate` for the rules; this is its station branch.
    """
    from xsomo.regrid import normalise_latlon

    # (a prediction with latitude/longitude dims had failed with a bare KeyError 'lon')
    da = in_m3m3(normalise_latlon(normalise_time(as_dataarray(sm, variable))), "the evaluated data")
    ref = in_m3m3(normalise_time(as_dataarray(stations, variable)), "the station reference", check_lazy=True)
    if cv.STATION not in ref.dims:
        raise XsomoValueError(f"station reference needs a {cv.STATION!r} dimension (got {ref.dims}).")
    # (two stations '1' were scored, counted twice in the medians, and the metrics table failed)
    refuse_duplicate_stations(ref)
    for c in (cv.LAT, cv.LON):
        if c not in ref.coords:
            raise MissingVariableError(f"station reference lacks the {c!r} coordinate per station.")
    da = cv.with_layer_dim(da)
    avail = [int(v) for v in da[cv.LAYER].values]
    layers = avail if layers is None else [int(v) for v in layers]
    missing = sorted(set(layers) - set(avail))
    if missing:
        raise XsomoValueError(f"layers {missing} not in the evaluated data (layers {avail}).")
    whole, da = da, da.sel({cv.LAYER: layers})  # (the footprint mix reads every layer whatever `layers` is)
    lat = np.asarray(ref[cv.LAT].values, float)
    lon = np.asarray(ref[cv.LON].values, float)
    rows, cols, inside = match_stations(da, lat, cv.lon_like_grid(lon, da[cv.LON].values))
    pts = da.isel(
        {cv.LAT: xr.DataArray(rows, dims=cv.STATION), cv.LON: xr.DataArray(cols, dims=cv.STATION)}
    ).drop_vars([cv.LAT, cv.LON], errors="ignore")
    pts = pts.where(xr.DataArray(inside, dims=cv.STATION))
    pts = pts.assign_coords({cv.STATION: ref[cv.STATION].values})
    depths = _station_depths(stations if isinstance(stations, xr.Dataset) else ref, footprint_depth)
    per_layer = pts  # (layer, time, station)
    label_layers = list(layers)
    weights = None
    station_layer = None
    if cv.LAYER in ref.coords and ref[cv.LAYER].dims == (cv.STATION,):
        # in-situ sensors that already belong to one layer: compare each with its layer only
        station_layer = np.asarray(ref[cv.LAYER].values, int)
    elif depths is not None and set(cv.LAYER_NUMBERS) <= set(avail):
        weights = np.stack([footprint_weights(d, cv.LAYER_NUMBERS) if np.isfinite(d) else np.full(3, np.nan) for d in depths])
        w = xr.DataArray(weights, dims=(cv.STATION, cv.LAYER), coords={cv.LAYER: list(cv.LAYER_NUMBERS)})
        full = whole.sel({cv.LAYER: list(cv.LAYER_NUMBERS)})
        fpts = full.isel(
            {cv.LAT: xr.DataArray(rows, dims=cv.STATION), cv.LON: xr.DataArray(cols, dims=cv.STATION)}
        ).drop_vars([cv.LAT, cv.LON], errors="ignore").assign_coords({cv.STATION: ref[cv.STATION].values})
        # a layer the footprint does not reach (weight 0) must not remove days where it is missing
        # (NaN x 0 = NaN had cost days, and every day where that layer was all NaN); unknown
        # depths (NaN weights) leave the mix NaN
        terms = (fpts * w).where(w > 0, 0.0).where(w.notnull())
        mix = terms.sum(cv.LAYER, skipna=False).where(xr.DataArray(inside, dims=cv.STATION))
        mix = mix.expand_dims({cv.LAYER: [FOOTPRINT_LAYER]})
        per_layer = xr.concat([mix, pts.drop_vars(["depth_top", "depth_bottom"], errors="ignore")], dim=cv.LAYER)
        label_layers = [FOOTPRINT_LAYER, *layers]
    per_layer = per_layer.drop_vars(["depth_top", "depth_bottom"], errors="ignore")
    obs = ref.drop_vars([c for c in ref.coords if c not in (cv.STATION, cv.TIME)])
    out = metrics(per_layer, obs, min_days=min_days, anomaly=anomaly)
    out = out.transpose(cv.STATION, cv.LAYER, ...)
    if station_layer is not None:
        keep = xr.DataArray(station_layer[:, None] == np.asarray(label_layers)[None, :], dims=(cv.STATION, cv.LAYER))
        out = out.where(keep)
        out["n"] = out["n"].fillna(0).astype("int32")
    flag = _flag_training(da, rows, cols, inside, training_cells)
    glat = np.asarray(da[cv.LAT].values, float)
    glon = np.asarray(da[cv.LON].values, float)
    coords: dict[str, Any] = {
        cv.LAT: (cv.STATION, lat, cv.LAT_ATTRS),
        cv.LON: (cv.STATION, lon, cv.LON_ATTRS),
        "cell_lat": (cv.STATION, np.where(inside, glat[rows], np.nan), {"long_name": "latitude of the matched cell centre", "units": "degrees_north"}),
        "cell_lon": (cv.STATION, np.where(inside, glon[cols], np.nan), {"long_name": "longitude of the matched cell centre", "units": "degrees_east"}),
        "in_grid": (cv.STATION, inside, {"long_name": "station lies inside a grid cell (half-open cells, conventions.GridSpec.snap)"}),
        "training_cell": (cv.STATION, flag, {"long_name": "station cell held training targets (not independent)"}),
        "layer_label": (cv.LAYER, [("footprint" if v == FOOTPRINT_LAYER else f"layer{v}") for v in label_layers]),
    }
    if depths is not None:
        coords["footprint_depth"] = (cv.STATION, depths, {"units": "m", "long_name": "effective sensing depth"})
    if weights is not None:
        coords["footprint_weights"] = (
            (cv.STATION, "weight_layer"),
            weights,
            {"long_name": "weights of layers 1-3 in the footprint mix (layer 0)", "units": "1"},
        )
    for extra in ("network", "station_name", "sensor", "depth_top", "depth_bottom"):
        if extra in ref.coords and ref[extra].dims == (cv.STATION,):
            coords[extra] = (cv.STATION, ref[extra].values, ref[extra].attrs)
    out = out.assign_coords(coords)
    if weights is not None:
        out = out.assign_coords(weight_layer=list(cv.LAYER_NUMBERS))
    out[cv.LAYER].attrs = {
        "long_name": "soil layer (0: footprint-weighted mix of layers 1-3)",
    }
    out.attrs = {
        "title": "xsomo evaluation against stations",
        "min_days": int(min_days),
        "footprint_rule": "layer 0 = depth-weighted mix: each layer weighs by its overlap with 0..footprint depth",
    }
    return out


def evaluate_grid(
    sm: xr.Dataset | xr.DataArray,
    reference: xr.Dataset | xr.DataArray,
    *,
    layers: Sequence[int] | None = None,
    min_days: int = MIN_DAYS,
    variable: Hashable = cv.SM,
    regrid_method: str = "bilinear",
    anomaly: bool = True,
) -> xr.Dataset:
    """Per-cell metrics maps of ``sm`` against a gridded reference (regridded bilinearly if needed)."""
    from xsomo.regrid import normalise_latlon

    da = in_m3m3(normalise_latlon(normalise_time(as_dataarray(sm, variable))), "the evaluated data")
    if cv.LAYER in da.coords:  # a selected layer (sm.sel(layer=2)) is scored against that layer only
        da = cv.with_layer_dim(da)
    ref = in_m3m3(normalise_latlon(normalise_time(layered(reference, variable))), "the gridded reference", check_lazy=True)
    same = (
        ref.sizes.get(cv.LAT) == da.sizes.get(cv.LAT)
        and ref.sizes.get(cv.LON) == da.sizes.get(cv.LON)
        and np.allclose(ref[cv.LAT].values, da[cv.LAT].values, atol=1e-6)
        and np.allclose(ref[cv.LON].values, da[cv.LON].values, atol=1e-6)
    )
    full = None
    if not same:
        from xsomo import regrid as rg

        # the reference in the prediction's longitude convention (a 0..360 reference of the same
        # cells as a -180..180 prediction had found "20 x 0 points")
        ref = ref.assign_coords({cv.LON: cv.lon_like_grid(ref[cv.LON].values, da[cv.LON].values)}).sortby(cv.LON)
        # only the cells the reference covers are scored (a regional reference inside a larger
        # prediction was refused); the others come back NaN
        full = da[cv.LAT].values, da[cv.LON].values
        da = _covered_cells(da, ref, regrid_method)
        ref = rg.regrid(ref, da, method=regrid_method)  # type: ignore[arg-type]
    # the regridded reference on the prediction's own coordinate values: the grid's centres
    # rebuilt from its edges differ in the last bits (-0.65 against -0.6500000000000341), and
    # the metrics align by label, so cells had dropped out of the scores
    ref = ref.assign_coords({cv.LAT: da[cv.LAT].values, cv.LON: da[cv.LON].values})
    if layers is not None:
        da = da.sel({cv.LAYER: list(layers)})
    if cv.LAYER in da.dims and cv.LAYER in ref.dims:
        ref = ref.sel({cv.LAYER: da[cv.LAYER].values})
    out = metrics(da, ref, min_days=min_days, anomaly=anomaly)
    n_cells = out.sizes[cv.LAT] * out.sizes[cv.LON]
    if full is not None:
        out = out.reindex({cv.LAT: full[0], cv.LON: full[1]})
        if "n" in out:
            out["n"] = out["n"].fillna(0).astype("int32")
    out.attrs = {
        "title": "xsomo evaluation against a gridded reference", "min_days": int(min_days),
        "cells_covered_by_reference": int(n_cells),
    }  # fmt: skip
    return out


def _covered_cells(da: xr.DataArray, ref: xr.DataArray, method: str) -> xr.DataArray:
    """The cells of ``da`` inside the reference: between its outermost centres (bilinear) or
    its outer cell edges (conservative).

    Raises
    ------
    GridMismatchError
        If the reference covers no cell of ``da``.
    """
    rlat, rlon = np.asarray(ref[cv.LAT].values, float), np.asarray(ref[cv.LON].values, float)
    half_lat = abs(float(np.median(np.diff(rlat)))) / 2 if rlat.size > 1 and method != "bilinear" else 0.0
    half_lon = abs(float(np.median(np.diff(rlon)))) / 2 if rlon.size > 1 and method != "bilinear" else 0.0
    lat, lon = np.asarray(da[cv.LAT].values, float), np.asarray(da[cv.LON].values, float)
    tol = 1e-6
    in_lat = (lat >= rlat.min() - half_lat - tol) & (lat <= rlat.max() + half_lat + tol)
    in_lon = (lon >= rlon.min() - half_lon - tol) & (lon <= rlon.max() + half_lon + tol)
    if not in_lat.any() or not in_lon.any():
        raise GridMismatchError(
            f"the gridded reference (lat {rlat.min():g}..{rlat.max():g}, lon {rlon.min():g}..{rlon.max():g}) covers "
            f"no cell of the evaluated data (lat {lat.min():g}..{lat.max():g}, lon {lon.min():g}..{lon.max():g})"
        )
    if in_lat.all() and in_lon.all():
        return da
    return da.isel({cv.LAT: np.flatnonzero(in_lat), cv.LON: np.flatnonzero(in_lon)})


def evaluate(
    sm: xr.Dataset | xr.DataArray,
    reference: xr.Dataset | xr.DataArray,
    *,
    layers: Sequence[int] | None = None,
    min_days: int = MIN_DAYS,
    training_cells: Any = None,
    footprint_depth: float | None = None,
    variable: Hashable = cv.SM,
    anomaly: bool = True,
) -> xr.Dataset:
    """Skill of gridded soil moisture against stations (``station``, ``time``) or a gridded reference.

    Parameters
    ----------
    sm
        Prediction: Dataset with ``sm(layer, time, lat, lon)`` (or a DataArray).
    reference
        Either stations (dims ``station``, ``time``; ``lat``/``lon`` per station), such as
        :func:`xsomo.open_cosmos` (with a footprint depth) or :func:`xsomo.open_ismn`
        (with a ``layer`` per sensor); or a gridded product (``lat``, ``lon``, ``time``,
        with ``layer`` or variables ``layer1..3``), regridded bilinearly when its grid differs.
    layers
        Layers to evaluate (default: all of ``sm``).
    min_days
        Minimum number of common valid days per metric.
    training_cells
        What held training targets: the targets Dataset, the :class:`~xsomo.model.TrainedModel`
        (``training_cells``), a DataFrame with lat/lon or an ``(n, 2)`` array. Stations in
        those cells get ``training_cell=True``; :func:`summarize` leaves them out.
    footprint_depth
        Effective sensing depth (m) for stations without one.
    variable
        Soil-moisture variable of ``sm`` and of the reference.
    anomaly
        Also compute ``anomaly_r`` (31-day moving climatology).

    Returns
    -------
    xarray.Dataset
        Stations: metrics per ``station`` and ``layer`` with coords ``lat``, ``lon``,
        ``cell_lat``, ``cell_lon``, ``training_cell``, ``in_grid``. Grids: metrics per
        ``layer``, ``lat``, ``lon``.

    Notes
    -----
    Station to cell: :func:`match_stations` (``conventions.GridSpec.snap``: half-open
    cells, a station on an inner edge goes to the north-east cell; outside the grid,
    also on its outer north/east edge: ``in_grid=False`` and NaN metrics).

    Station depth to layers: a station with a ``layer`` per sensor is compared with
    that layer only. A station with an effective sensing depth :math:`D` (a cosmic-ray
    probe's footprint depth, coordinate or variable ``footprint_depth``; its median over
    time) is compared with each layer and with the depth-weighted mix, stored as
    ``layer=0``: each layer weighs by its overlap with :math:`0..D`
    (:func:`footprint_weights`); :math:`D` = 0.15-0.22 m sees layer 1 and part of layer 2.
    """
    ref_da = reference if isinstance(reference, xr.DataArray) else None
    dims = (ref_da if ref_da is not None else reference).dims
    if cv.STATION in sm.dims and cv.LAT not in sm.dims:  # a point prediction (issue 18)
        from xsomo.evaluation.points import evaluate_points

        return evaluate_points(
            sm, reference, layers=layers, min_days=min_days, variable=variable, anomaly=anomaly,
            training_cells=training_cells,
        )  # fmt: skip
    if cv.STATION in dims:
        return evaluate_stations(
            sm,
            reference,
            layers=layers,
            min_days=min_days,
            training_cells=training_cells,
            footprint_depth=footprint_depth,
            variable=variable,
            anomaly=anomaly,
        )
    if cv.LAT in dims or "latitude" in dims:
        return evaluate_grid(sm, reference, layers=layers, min_days=min_days, variable=variable, anomaly=anomaly)
    raise XsomoValueError(
        f"reference has dims {tuple(dims)}: expected stations (station, time) or a grid (time, lat, lon)."
    )


def summarize(
    metrics: xr.Dataset,
    *,
    independent_only: bool = True,
    stat: str = "median",
) -> pd.DataFrame:
    """Headline numbers: the median (or ``stat``) of every metric per layer over stations.

    Every metric is summarised over the same stations, those with a Pearson r (counted in
    ``n_stations``).

    Stations in training cells are left out unless ``independent_only=False``; stations
    outside the grid are always left out. The ``n_stations`` column says how many count:
    each entry along ``station`` (an ISMN sensor) counts once, so a site with four sensors
    weighs four times; ``n_sites`` says how many distinct sites they are (``network`` and
    ``station_name``, else the location).
    """
    ds = metrics
    if cv.STATION in ds.dims:
        keep = np.ones(ds.sizes[cv.STATION], bool)
        if "in_grid" in ds.coords:
            keep &= ds["in_grid"].values.astype(bool)
        if independent_only and "training_cell" in ds.coords:
            keep &= ~ds["training_cell"].values.astype(bool)
        ds = ds.isel({cv.STATION: keep})
        dims = [cv.STATION]
    else:
        dims = [d for d in ds.dims if d != cv.LAYER]
    rows = []
    for lay in ds[cv.LAYER].values:
        sub = ds.sel({cv.LAYER: lay})
        row: dict[str, Any] = {"layer": int(lay)}
        if "layer_label" in sub.coords:
            row["layer_label"] = str(sub["layer_label"].values)
        valid = sub["pearson_r"].notnull()
        row["n_stations" if cv.STATION in dims else "n_cells"] = int(valid.sum())
        if cv.STATION in dims:
            row["n_sites"] = _n_sites(sub, np.asarray(valid.values, bool))
        counted = np.asarray(valid.values, bool)
        for name in METRICS:
            if name in sub:
                # over the stations counted (those with an r): a flat-lined station's finite bias
                # had entered the bias median while n_stations left it out
                v = np.asarray(sub[name].values, float)
                v = v[np.isfinite(v) & np.broadcast_to(counted, v.shape)]
                row[name] = float(getattr(np, stat)(v)) if v.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _n_sites(ds: xr.Dataset, valid: np.ndarray) -> int:
    """Distinct sites among the valid station entries (:func:`xsomo.drivers.points.location_keys`)."""
    return int(np.unique(location_keys(ds)[valid]).size)


def metrics_table(metrics: xr.Dataset) -> pd.DataFrame:
    """Station metrics as a flat table: one row per station and layer, every coordinate a column.

    The footprint weights (dims ``station``, ``weight_layer``) become the columns
    ``footprint_weight_layer1..3``; the grid mapping ``spatial_ref`` is left out.
    """
    if cv.STATION not in metrics.dims:
        raise XsomoValueError(
            f"station metrics need a 'station' dimension (got dims {dict(metrics.sizes)}); "
            "metrics maps of a gridded reference are rasters: write them with to_cog."
        )
    ds = metrics.drop_vars(["spatial_ref"], errors="ignore")
    weights = None
    if "footprint_weights" in ds.variables:
        w = ds["footprint_weights"]
        wdim = next(d for d in w.dims if d != cv.STATION)
        labels = ds[wdim].values if wdim in ds.coords else np.arange(1, w.sizes[wdim] + 1)
        weights = {
            f"footprint_weight_layer{int(k)}": w.isel({wdim: n}).values for n, k in enumerate(labels)
        }
        ds = ds.drop_vars(["footprint_weights", wdim], errors="ignore")
    other = set(ds.dims) - {cv.STATION, cv.LAYER}
    if other:
        raise XsomoValueError(
            f"station metrics have extra dims {sorted(map(str, other))}; select one value of each first "
            "(e.g. metrics.sel(product='xsomo'))"
        )
    df = ds.reset_coords().to_dataframe().reset_index()
    if weights is not None:
        station_pos = pd.Index(ds[cv.STATION].values).get_indexer(df[cv.STATION])
        for name, vals in weights.items():
            df[name] = np.asarray(vals, float)[station_pos]
    if cv.LAYER in df and "layer_label" not in df:
        df["layer_label"] = [
            "footprint" if int(v) == FOOTPRINT_LAYER else f"layer{int(v)}" for v in df[cv.LAYER]
        ]
    return df


def to_geodataframe(metrics: xr.Dataset | pd.DataFrame, *, wide: bool = False) -> gpd.GeoDataFrame:
    """Station metrics as points (EPSG:4326) for GIS: one row per station and layer.

    The one conversion of metrics to features, used by ``xsomo evaluate`` and
    :func:`xsomo.gis.metrics_to_gpkg`.

    Parameters
    ----------
    metrics
        The station metrics of :func:`evaluate` (dims ``station``, ``layer``), or a
        (Geo)DataFrame with ``lat``/``lon`` columns (a GeoDataFrame is put in EPSG:4326).
    wide
        One row per station with columns ``<metric>_<layer_label>`` (``_footprint`` for
        the mix, ``_layer1`` ...) instead of one row per station and layer.

    Returns
    -------
    geopandas.GeoDataFrame
        Points in EPSG:4326. Long form: the field ``layer`` (0: footprint mix of layers
        1-3, 1-3: one layer) and ``layer_label`` say which layer a row scores; filter on
        them in GIS. Booleans are stored as 0/1 integers (GeoPackage has none), text as
        str; stations without coordinates are left out; no ``spatial_ref`` column.
    """
    import geopandas as gpd

    if isinstance(metrics, gpd.GeoDataFrame):
        gdf = metrics if metrics.crs is not None else metrics.set_crs(cv.CRS)
        return gdf.to_crs(cv.CRS)
    if isinstance(metrics, pd.DataFrame):
        named_index = metrics.index.name is not None or isinstance(metrics.index, pd.MultiIndex)
        df = metrics.reset_index() if named_index else metrics.copy()
    elif isinstance(metrics, xr.Dataset):
        df = metrics_table(metrics)
    else:
        raise XsomoValueError(
            f"metrics must be an xarray Dataset or a (Geo)DataFrame, not {type(metrics).__name__}"
        )
    for c in (cv.LAT, cv.LON):
        if c not in df.columns:
            raise MissingVariableError(
                f"metrics have no {c!r} coordinate; the station points need lat and lon"
            )
    if wide:
        if cv.STATION not in df or "layer_label" not in df:
            raise XsomoValueError("wide=True needs station metrics with a 'station' and a 'layer'")
        vals = [c for c in (*METRICS, "n") if c in df]
        station_cols = [c for c in df.columns if c not in (*vals, cv.LAYER, "layer_label", cv.STATION)]
        piv = df.pivot_table(index=cv.STATION, columns="layer_label", values=vals, aggfunc="first", dropna=False)
        piv.columns = [f"{m}_{lab}" for m, lab in piv.columns]
        base = df.drop_duplicates(cv.STATION).set_index(cv.STATION)[station_cols]
        df = base.join(piv).reset_index()
    df = df[np.isfinite(df[cv.LAT].astype(float)) & np.isfinite(df[cv.LON].astype(float))].copy()
    for c in df.columns:
        col = df[c]
        if col.dtype == bool:
            df[c] = col.astype(np.int8)  # GeoPackage booleans are integers
        elif col.dtype == object or str(col.dtype).startswith(("string", "str")):
            df[c] = col.astype(str)
    geom = gpd.points_from_xy(df[cv.LON].astype(float), df[cv.LAT].astype(float))
    return gpd.GeoDataFrame(df.reset_index(drop=True), geometry=geom, crs=cv.CRS)
