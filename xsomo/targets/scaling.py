"""Station-to-reference scaling: the SoMo.ml targets (DESIGN.md step 1).

Every station series is rescaled so that its mean and standard deviation over the
days it overlaps the reference (ERA5-Land soil moisture of its cell and layer) equal
those of the reference; several scaled series in one cell and layer are averaged.
The numbers that do the work are plain numpy on ``(station, time)`` arrays; the
functions here label them.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.conventions import GridSpec
from xsomo.exceptions import (
    GridMismatchError,
    MissingVariableError,
    XsomoExceptionGroup,
    XsomoValueError,
)
from xsomo.regrid import check_longitudes, normalise_latlon
from xsomo.units import MIN_M3M3, in_m3m3

__all__ = [
    "ScalingParams",
    "apply_scaling",
    "fit_scaling",
    "reference_at_points",
    "scale_to",
    "target_grid_for",
    "targets_grid",
]


@dataclass(frozen=True)
class ScalingParams:
    """Per-station moments over the overlap with the reference (arrays over stations)."""

    mean_x: np.ndarray
    std_x: np.ndarray
    mean_ref: np.ndarray
    std_ref: np.ndarray
    n_overlap: np.ndarray


def fit_scaling(x: np.ndarray, ref: np.ndarray) -> ScalingParams:
    """Mean and std (ddof 1) of ``x`` and ``ref`` over the days where both are valid.

    Parameters
    ----------
    x, ref
        Arrays ``(station, time)`` aligned on time; NaN marks missing days.

    Examples
    --------
    >>> p = fit_scaling(np.array([[1.0, 2.0, np.nan, 4.0]]), np.array([[2.0, 4.0, 5.0, np.nan]]))
    >>> p.n_overlap.tolist(), p.mean_x.tolist(), p.mean_ref.tolist()
    ([2], [1.5], [3.0])
    """
    x = np.asarray(x, dtype="float64")
    ref = np.asarray(ref, dtype="float64")
    both = ~np.isnan(x) & ~np.isnan(ref)
    n = both.sum(axis=-1)
    xm = np.where(both, x, 0.0)
    rm = np.where(both, ref, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = xm.sum(-1) / n
        mean_r = rm.sum(-1) / n
        var_x = (np.where(both, x - mean_x[..., None], 0.0) ** 2).sum(-1) / (n - 1)
        var_r = (np.where(both, ref - mean_r[..., None], 0.0) ** 2).sum(-1) / (n - 1)
    return ScalingParams(mean_x, np.sqrt(var_x), mean_r, np.sqrt(var_r), n)


def apply_scaling(x: np.ndarray, params: ScalingParams) -> np.ndarray:
    """:math:`x' = \\mu_{ref} + (x - \\mu_x)\\,\\sigma_{ref}/\\sigma_x`; negative results become NaN."""
    x = np.asarray(x, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (
            params.mean_ref[..., None]
            + (x - params.mean_x[..., None]) * (params.std_ref / params.std_x)[..., None]
        )
    out[out < 0] = np.nan
    return out


def _on_multiples(values: np.ndarray, res: float) -> bool:
    # within 1 % of a cell: float32 coordinates of ERA5-Land's grid are up to 9e-5° off
    # (1e-4 of a cell read them as centres, and every target moved half a cell)
    k = np.asarray(values, float) / res
    return bool(np.all(np.abs(k - np.round(k)) < 1e-2))


def target_grid_for(
    reference: xr.Dataset | xr.DataArray, *, resolution: float = cv.RESOLUTION
) -> GridSpec:
    """The target grid (centres on x.x5) that a reference grid implies.

    A reference whose points lie on multiples of the resolution (ERA5-Land's own grid)
    implies the grid whose cell corners are those points; a reference already on
    x.x5 centres is its own target grid.
    """
    ref = normalise_latlon(reference)
    lat, lon = ref["lat"].values.astype(float), ref["lon"].values.astype(float)
    if _on_multiples(lat, resolution) and _on_multiples(lon, resolution):
        return GridSpec(
            west=float(np.round(lon.min(), 6)),
            east=float(np.round(lon.max(), 6)),
            south=float(np.round(lat.min(), 6)),
            north=float(np.round(lat.max(), 6)),
            resolution=resolution,
        )
    return GridSpec.from_coords(lat, lon)


def targets_grid(targets: xr.Dataset) -> GridSpec:
    """The target grid that :func:`scale_to` wrote into ``targets.attrs["grid"]``.

    With it, a target's ``row``/``col`` (and its ``lat``/``lon``, the cell centre) are
    those of ``GridSpec.snap`` on this grid: training and evaluation reuse the targets'
    cells instead of matching stations again.

    >>> t = xr.Dataset(attrs={"grid": "west=0.0 east=1.0 south=40.0 north=42.0 resolution=0.1"})
    >>> targets_grid(t)
    GridSpec(west=0.0, east=1.0, south=40.0, north=42.0, resolution=0.1)

    Raises
    ------
    XsomoValueError
        No or an unreadable ``grid`` attribute (targets not written by :func:`scale_to`).
    """
    text = str(targets.attrs.get("grid", ""))
    try:
        parts = dict(item.split("=", 1) for item in text.split())
        return GridSpec(
            float(parts["west"]), float(parts["east"]), float(parts["south"]), float(parts["north"]),
            float(parts["resolution"]),
        )  # fmt: skip
    except (KeyError, ValueError):
        raise XsomoValueError(
            f"the targets carry no readable grid attribute ({text!r}); build them with xsomo.scale_to "
            "(or xsomo prepare)."
        ) from None


def reference_at_points(ref: xr.DataArray, lat: np.ndarray, lon: np.ndarray) -> xr.DataArray:
    """Bilinear interpolation of ``ref(..., lat, lon)`` at points, ignoring NaN corners.

    At points whose four surrounding grid points are all valid this is exactly the
    bilinear regridding of :func:`xsomo.regrid.regrid` evaluated at those points; where
    some corners are missing (coasts, sparse cell files) the weights of the valid corners
    are renormalised; a point exactly on a grid point takes that point's value. Returns
    ``(..., point)``.
    """
    ref = normalise_latlon(ref)
    glat, glon = ref["lat"].values.astype(float), ref["lon"].values.astype(float)

    def locate(grid: np.ndarray, x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        if grid.size == 1:
            return np.zeros(x.shape, int), np.zeros(x.shape)
        i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
        w = (x - grid[i]) / (grid[i + 1] - grid[i])
        bad = (w < -1e-9) | (w > 1 + 1e-9)
        if bad.any():
            raise GridMismatchError(
                f"{bad.sum()} station cell(s) lie outside the reference's {name} range "
                f"{grid[0]:g}..{grid[-1]:g} (first at {name}={x[bad][0]:g}). Use a reference that covers the stations."
            )
        return i, np.clip(w, 0.0, 1.0)

    i, wy = locate(glat, np.asarray(lat, float), "lat")
    j, wx = locate(glon, np.asarray(lon, float), "lon")
    i1 = np.minimum(i + 1, glat.size - 1)
    j1 = np.minimum(j + 1, glon.size - 1)
    corners = [
        (i, j, (1 - wy) * (1 - wx)),
        (i, j1, (1 - wy) * wx),
        (i1, j, wy * (1 - wx)),
        (i1, j1, wy * wx),
    ]
    num = None
    den = None
    for ci, cj, w in corners:
        vals = ref.isel(lat=xr.DataArray(ci, dims="point"), lon=xr.DataArray(cj, dims="point"))
        vals = vals.drop_vars(["lat", "lon"], errors="ignore")
        wda = xr.DataArray(w, dims="point")
        valid = vals.notnull() & (wda > 0)
        term = (vals.fillna(0.0) * wda).where(valid, 0.0)
        wt = wda.where(valid, 0.0)
        num = term if num is None else num + term
        den = wt if den is None else den + wt
    assert num is not None and den is not None
    return (num / den).where(den > 1e-12)


def _daily_index(time: xr.DataArray, what: str) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(time.values).floor("D")
    if idx.has_duplicates:
        raise XsomoValueError(
            f"the {what} has several values on one day (e.g. {idx[idx.duplicated()][0].date()}); "
            "pass daily data (aggregate sub-daily values first)."
        )
    return idx


@overload
def scale_to(
    stations: xr.Dataset,
    reference: xr.Dataset | xr.DataArray,
    *,
    grid: GridSpec | None = ...,
    min_overlap: int = ...,
    variable: str = ...,
    outside: str = ...,
    report: Literal[False] = ...,
) -> xr.Dataset: ...


@overload
def scale_to(
    stations: xr.Dataset,
    reference: xr.Dataset | xr.DataArray,
    *,
    grid: GridSpec | None = ...,
    min_overlap: int = ...,
    variable: str = ...,
    outside: str = ...,
    report: Literal[True],
) -> tuple[xr.Dataset, pd.DataFrame]: ...


def scale_to(
    stations: xr.Dataset,
    reference: xr.Dataset | xr.DataArray,
    *,
    grid: GridSpec | None = None,
    min_overlap: int = 90,
    variable: str = cv.SM,
    outside: str = "raise",
    report: bool = False,
) -> xr.Dataset | tuple[xr.Dataset, pd.DataFrame]:
    """Scale station series to the reference's mean and std per cell and layer.

    Parameters
    ----------
    stations
        Station Dataset as returned by :func:`xsomo.open_ismn`: ``sm(station, time)``
        with per-station coords ``lat``, ``lon`` and ``layer``.
    reference
        ``sm(layer, time, lat, lon)`` (e.g. :func:`xsomo.open_era5land`), daily; on
        ERA5-Land's own grid (points on multiples of 0.1°) or on the target grid.
    grid
        Target grid (centres on x.x5). Default: implied by the reference
        (:func:`target_grid_for`).
    min_overlap
        Minimum number of days on which station and reference are both valid.
    variable
        Name of the station and reference variable.
    outside
        ``"raise"`` (default) or ``"skip"``: what to do with stations outside the grid.
    report
        Also return a per-station table (cell, layer, overlap, moments, kept, reason).

    Returns
    -------
    targets : xarray.Dataset
        ``sm(cell, layer, time)`` float32 with coords ``lat(cell)``, ``lon(cell)``,
        ``row(cell)``, ``col(cell)`` (indices on the ascending target grid),
        ``n_stations(cell, layer)`` and ``station_ids(cell, layer)`` (comma-joined);
        ``cell`` is the flat index ``row * nlon + col``. Provenance in ``attrs``.
    report : pandas.DataFrame
        Only with ``report=True``.

    Raises
    ------
    GridMismatchError
        A station outside the grid (``outside="raise"``) or outside the reference.
    XsomoValueError
        A station series that is all NaN, or no station left after scaling.
    MissingVariableError
        ``variable`` missing.

    Notes
    -----
    Over the days :math:`O` on which both are valid,

    .. math:: x' = \\mu_{ref,O} + (x - \\mu_{x,O})\\,\\sigma_{ref,O}/\\sigma_{x,O}

    (standard deviations with ddof 1) is applied to the whole station series; negative
    results become NaN. Reference values at a cell centre are bilinear interpolations
    of the reference grid points (:func:`reference_at_points`).

    References
    ----------
    O, S. & Orth, R. (2021): Global soil moisture data derived through machine learning
    trained with in-situ measurements, Sci. Data 8, 170, doi:10.1038/s41597-021-00964-1.
    """
    if outside not in ("raise", "skip"):
        raise XsomoValueError(f"outside={outside!r}: use 'raise' or 'skip'.")
    if variable not in stations:
        raise MissingVariableError(
            f"stations have no variable {variable!r}; variables: {list(stations.data_vars)}"
        )
    cv.check_time_zone(stations, "stations")
    cv.check_time_zone(reference, "reference")
    ref = reference[variable] if isinstance(reference, xr.Dataset) else reference
    if isinstance(reference, xr.Dataset) and variable not in reference:
        raise MissingVariableError(
            f"reference has no variable {variable!r}; variables: {list(reference.data_vars)}"
        )
    # in its units (a reference in percent made targets 100x too large, labelled m3 m-3)
    ref = in_m3m3(normalise_latlon(ref), f"reference {variable!r}", check_lazy=True)
    if cv.LAYER not in ref.dims:
        raise XsomoValueError(
            f"reference {variable!r} has no 'layer' dimension (dims {ref.dims}); use xsomo.open_era5land, "
            "which maps swvl1-3 to layers 1-3."
        )
    for need in ("lat", "lon", "layer"):
        if need not in stations.coords:
            raise MissingVariableError(
                f"stations need a per-station coordinate {need!r} (see xsomo.open_ismn)."
            )
    grid = grid or target_grid_for(ref)
    check_longitudes(ref, grid, f"reference {variable!r}")

    st = stations[variable].transpose(cv.STATION, cv.TIME)
    ids = [str(s) for s in st[cv.STATION].values]
    x = st.values.astype("float64")
    with np.errstate(invalid="ignore"):
        filled = np.flatnonzero((x < MIN_M3M3).any(axis=1))
    if filled.size:
        # the scaling is blind to a station's units (a linear change cancels) but not to fill
        # values: -9999 on some days made a station's mean -391 and its targets off by 0.19 (QA)
        raise XsomoValueError(
            f"{filled.size} station series hold values below {MIN_M3M3:g} ("
            + ", ".join(f"{ids[k]!r}: down to {np.nanmin(x[k]):g}" for k in filled[:5])
            + f"{', ...' if filled.size > 5 else ''}): fill values or sentinels left unmasked (e.g. -9999, -1). "
            f"Mask them first: stations.where(stations[{variable!r}] >= 0)."
        )
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN series: refused below
        median = np.nanmedian(x, axis=1)
        top = np.nanmax(x, axis=1)
        # a series of fractions (median <= 1) cannot exceed 1 m3 m-3; one in percent (the scaling
        # is blind to a linear change of units) cannot exceed 100: above that, fill values left
        # unmasked (QA: 10 days of 9999 in 925 made a station's std 1034 and flattened its cell's
        # targets to 0.19, off by up to 0.45, without a word)
        high = np.flatnonzero(np.where(median <= 1.0, top > 1.0, top > 100.0))
    if high.size:
        raise XsomoValueError(
            f"{high.size} station series hold values too high for soil moisture ("
            + ", ".join(f"{ids[k]!r}: up to {top[k]:g}, median {median[k]:g}" for k in high[:5])
            + f"{', ...' if high.size > 5 else ''}): above 1 m3 m-3 in a series of fractions, or above 100 % in "
            "one of percent, are fill values or sentinels left unmasked (e.g. 9999, 999), or days in percent "
            f"among days in m3 m-3. Mask them first: stations.where(stations[{variable!r}] <= 1) (fractions)."
        )
    empty = np.isnan(x).all(axis=1)
    if empty.any():
        errs = [
            XsomoValueError(f"station {ids[k]!r} has no valid value") for k in np.flatnonzero(empty)
        ]
        raise XsomoExceptionGroup(
            f"{int(empty.sum())} station series are all NaN; drop them first "
            "(stations.dropna('station', how='all')).",
            errs,
        )
    slat = stations["lat"].values.astype(float)
    # in the grid's longitude convention (stations in 0..360 were "outside the target grid")
    slon = cv.lon_like_grid(stations["lon"].values.astype(float), grid.lon)
    slayer = stations["layer"].values.astype(int)
    row, col = grid.snap(slat, slon)
    out_mask = row < 0
    reasons = np.array([""] * len(ids), dtype=object)
    if out_mask.any():
        if outside == "raise":
            k = int(np.flatnonzero(out_mask)[0])
            raise GridMismatchError(
                f"{int(out_mask.sum())} station(s) lie outside the target grid {grid}: first {ids[k]!r} at "
                f"lat {slat[k]:g}, lon {slon[k]:g}. Pass outside='skip' to leave them out, or a larger grid."
            )
        reasons[out_mask] = "outside the target grid"
    ref_layers = [int(v) for v in ref[cv.LAYER].values]
    no_layer = ~np.isin(slayer, ref_layers) & (reasons == "")
    reasons[no_layer] = [f"reference has no layer {lay}" for lay in slayer[no_layer]]

    # reference on the station time axis, at each station's cell centre and layer
    st_days = _daily_index(st[cv.TIME], "station data")
    ref_days = _daily_index(ref[cv.TIME], f"reference {variable!r}")
    ref = ref.assign_coords({cv.TIME: ref_days})
    common = st_days.intersection(ref_days)
    ok = reasons == ""
    ref_x = np.full(x.shape, np.nan)
    if ok.any() and len(common):
        clat = grid.lat[row[ok]]
        clon = grid.lon[col[ok]]
        pts = reference_at_points(ref.sel({cv.TIME: common}), clat, clon)
        pts = pts.sel({cv.LAYER: xr.DataArray(slayer[ok], dims="point")}).transpose(
            "point", cv.TIME
        )
        pos = st_days.get_indexer(common)
        ref_x[np.ix_(np.flatnonzero(ok), pos)] = np.asarray(pts.values, dtype="float64")

    params = fit_scaling(x, ref_x)
    short = ok & (params.n_overlap < min_overlap)
    ref_empty = ~np.isfinite(ref_x).any(axis=1)
    reasons[short] = [
        "the reference has no value at this cell (sea, or missing points around it)"
        if empty
        else f"{n} days of overlap with the reference < min_overlap={min_overlap}"
        for n, empty in zip(params.n_overlap[short], ref_empty[short], strict=True)
    ]
    flat = ok & ~short & ~(params.std_x > 0)
    reasons[flat] = "station series is constant over the overlap"
    flat_ref = ok & ~short & ~flat & ~(params.std_ref > 0)
    reasons[flat_ref] = "the reference is constant over the overlap at this cell"
    keep = reasons == ""
    scaled = apply_scaling(x, params)

    rep = pd.DataFrame(
        {
            "station": ids,
            "lat": slat,
            "lon": slon,
            "layer": slayer,
            "row": row,
            "col": col,
            "n_overlap": params.n_overlap,
            "mean_station": params.mean_x,
            "std_station": params.std_x,
            "mean_reference": params.mean_ref,
            "std_reference": params.std_ref,
            "kept": keep,
            "reason": np.where(keep, "", reasons).astype(str),
        }
    )
    if not keep.any():
        raise XsomoValueError(
            f"no station could be scaled to the reference (reasons: {sorted(set(reasons[~keep]))}). "
            "Check that the reference covers the stations' period, cells and layers."
        )

    # average stations per (cell, layer)
    kidx = np.flatnonzero(keep)
    flat_cell = row[kidx] * grid.nlon + col[kidx]
    cells, cell_pos = np.unique(flat_cell, return_inverse=True)
    layers = np.array(sorted(set(slayer[kidx].tolist())), dtype=int)
    lay_pos = np.searchsorted(layers, slayer[kidx])
    vals = scaled[kidx]
    valid = ~np.isnan(vals)
    sums = np.zeros((cells.size, layers.size, x.shape[1]))
    cnts = np.zeros_like(sums)
    np.add.at(sums, (cell_pos, lay_pos), np.where(valid, vals, 0.0))
    np.add.at(cnts, (cell_pos, lay_pos), valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums / cnts).astype("float32")
    n_st = np.zeros((cells.size, layers.size), dtype="int32")
    np.add.at(n_st, (cell_pos, lay_pos), 1)
    sid = np.full((cells.size, layers.size), "", dtype=object)
    order = np.argsort(
        np.array(ids, dtype=object)[kidx], kind="stable"
    )  # ids sorted: order-invariant
    for k, c, lay in zip(
        kidx[order], cell_pos[order], lay_pos[order], strict=True
    ):  # per station, not per day
        sid[c, lay] = ids[k] if not sid[c, lay] else f"{sid[c, lay]},{ids[k]}"
    crow, ccol = cells // grid.nlon, cells % grid.nlon
    lc = cv.layer_coords(tuple(layers.tolist()))
    targets = xr.Dataset(
        {cv.SM: ((cv.CELL, cv.LAYER, cv.TIME), mean, dict(cv.SM_ATTRS))},
        coords={
            cv.CELL: (
                cv.CELL,
                cells.astype("int64"),
                {"long_name": "flat cell index row * nlon + col on the target grid"},
            ),
            **lc,
            cv.TIME: (cv.TIME, st_days.values, cv.TIME_ATTRS),
            "lat": (cv.CELL, grid.lat[crow], cv.LAT_ATTRS),
            "lon": (cv.CELL, grid.lon[ccol], cv.LON_ATTRS),
            "row": (
                cv.CELL,
                crow.astype("int32"),
                {"long_name": "row on the ascending target grid"},
            ),
            "col": (
                cv.CELL,
                ccol.astype("int32"),
                {"long_name": "column on the ascending target grid"},
            ),
            "n_stations": ((cv.CELL, cv.LAYER), n_st, {"long_name": "number of stations averaged"}),
            "station_ids": (
                (cv.CELL, cv.LAYER),
                sid.astype(str),
                {"long_name": "comma-joined station ids"},
            ),
        },
    )
    any_valid = np.flatnonzero(~np.isnan(mean).all(axis=(0, 1)))
    targets = targets.isel(
        {cv.TIME: slice(int(any_valid[0]), int(any_valid[-1]) + 1)}
    )  # trim empty ends
    from xsomo._version import __version__

    targets.attrs = {
        "title": "xsomo targets: station soil moisture scaled to the reference per cell and layer",
        "source": f"xsomo {__version__} xsomo.targets.scaling.scale_to",
        "reference": str(
            reference.attrs.get("title") or reference.attrs.get("source") or "reference"
        )
        if hasattr(reference, "attrs")
        else "reference",
        "scaling": "x' = mean_ref + (x - mean_x) * std_ref / std_x over the overlap (ddof 1); negatives -> NaN",
        "min_overlap_days": int(min_overlap),
        "grid": f"west={grid.west} east={grid.east} south={grid.south} north={grid.north} resolution={grid.resolution}",
        "n_stations_in": len(ids),
        "n_stations_used": int(keep.sum()),
        "n_stations_skipped": int((~keep).sum()),
        "history": f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')} scale_to",
    }
    return (targets, rep) if report else targets
