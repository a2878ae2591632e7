"""Names, grids, layers, units and CF attributes shared by every part of xsomo.

Everything that other modules must agree on lives here: the 0.1° grid, the three
target layers, the canonical variable names of targets, dynamic forcings and static
features, and their CF attributes. File-format names (``swvl1``, ``layer1`` ...) only
appear in :mod:`xsomo.io` and the sample-world writers.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr

XArray = xr.Dataset | xr.DataArray

# ----------------------------------------------------------------------------- grid

#: Resolution of the output grid in degrees.
RESOLUTION = 0.1
#: CRS of every gridded output.
CRS = "EPSG:4326"


def decimal_coords(values: Any) -> np.ndarray:
    """Centre coordinates as float64; float32 ones as the shortest decimals that give them back.

    A netCDF file's float32 ``71.45`` is 71.44999694824219: edges and steps taken from such
    values were off by up to ~1e-5 (north 71.499997, a step of 0.100006 at 170°E) even after
    rounding to 1e-6. The decimal the file's writer meant is the shortest one that rounds to
    the same float32. Used wherever float32 coordinates become numbers (grids, edges, steps):
    :meth:`GridSpec.from_coords`, :func:`xsomo.regrid.normalise_latlon`, the GIS exports.

    >>> decimal_coords(np.array([71.45, 170.05, -179.95], dtype="float32")).tolist()
    [71.45, 170.05, -179.95]
    """
    v = np.asarray(values)
    out = v.astype(float)
    if v.dtype != np.float32 or v.size == 0:
        return out
    todo = np.isfinite(out)
    for digits in range(10):
        r = np.round(out, digits)
        hit = todo & (r.astype(np.float32) == v)
        out = np.where(hit, r, out)
        todo &= ~hit
        if not todo.any():
            break
    return out


def file_coords(values: Any) -> np.ndarray:
    """Coordinates as written to files: float32 ones, and float64 ones that are float32 values
    (every value survives a float32 round trip), as the decimals they stand for
    (:func:`decimal_coords`); other float64 values unchanged. A prediction from float32
    drivers holds their float32 numbers, to line up with them in xarray; its files hold the
    grid's decimals (40.05, not 40.04999923706055).

    >>> file_coords(np.array([40.05, 40.15], dtype="float32").astype(float)).tolist()
    [40.05, 40.15]
    >>> file_coords(np.array([40.05, 40.15])).tolist()
    [40.05, 40.15]
    """
    v = np.asarray(values)
    if v.dtype == np.float64 and v.size and np.array_equal(v.astype(np.float32).astype(np.float64), v, equal_nan=True):
        return decimal_coords(v.astype(np.float32))
    return decimal_coords(v)


@dataclass(frozen=True)
class GridSpec:
    """A regular lat/lon grid given by its outer edges and resolution.

    Cell centres lie half a cell inside the edges, so the Europe grid with edges
    on whole tenths has centres on x.x5 degrees.
    """

    west: float
    east: float
    south: float
    north: float
    resolution: float = RESOLUTION

    @property
    def nlon(self) -> int:
        return round((self.east - self.west) / self.resolution)

    @property
    def nlat(self) -> int:
        return round((self.north - self.south) / self.resolution)

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes, ascending."""
        return np.round(self.west + self.resolution * (np.arange(self.nlon) + 0.5), 6)

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes, ascending (writers flip to descending)."""
        return np.round(self.south + self.resolution * (np.arange(self.nlat) + 0.5), 6)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nlat, self.nlon)

    def coords(self) -> dict[str, xr.DataArray]:
        """``lat``/``lon`` coordinates with CF attributes."""
        return {
            "lat": xr.DataArray(self.lat, dims="lat", attrs=LAT_ATTRS),
            "lon": xr.DataArray(self.lon, dims="lon", attrs=LON_ATTRS),
        }

    def contains(self, lat: np.ndarray | float, lon: np.ndarray | float) -> np.ndarray:
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        return (lat >= self.south) & (lat < self.north) & (lon >= self.west) & (lon < self.east)

    def snap(
        self, lat: np.ndarray | float, lon: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the cells holding the given points.

        Points on a cell edge go to the cell to their north-east. Points outside the
        grid get index -1.
        """
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        # a tiny epsilon keeps points exactly on an edge stable against round-off
        i = np.floor((lat - self.south) / self.resolution + 1e-9).astype(int)
        j = np.floor((lon - self.west) / self.resolution + 1e-9).astype(int)
        # inside from the same indices, so a point within round-off of an edge is never
        # "inside" with an index past the last cell (the outer north/east edge is outside)
        inside = (i >= 0) & (i < self.nlat) & (j >= 0) & (j < self.nlon) & np.isfinite(lat) & np.isfinite(lon)
        return np.where(inside, i, -1), np.where(inside, j, -1)

    def cell_centre(
        self, lat: np.ndarray | float, lon: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Centre coordinates of the cells holding the given points (NaN outside)."""
        i, j = self.snap(lat, lon)
        clat = np.where(i >= 0, self.lat[np.clip(i, 0, self.nlat - 1)], np.nan)
        clon = np.where(j >= 0, self.lon[np.clip(j, 0, self.nlon - 1)], np.nan)
        return clat, clon

    @classmethod
    def from_coords(cls, lat: np.ndarray, lon: np.ndarray) -> GridSpec:
        """Infer the grid of regular centre coordinates (either order)."""
        lat = np.sort(decimal_coords(lat))  # float32 71.45 is 71.44999695: its edge was 2e-6 off
        lon = np.sort(decimal_coords(lon))
        res = axis_step(lon) if lon.size > 1 else RESOLUTION
        return cls(
            west=float(np.round(lon[0] - res / 2, 6)),
            east=float(np.round(lon[-1] + res / 2, 6)),
            south=float(np.round(lat[0] - res / 2, 6)),
            north=float(np.round(lat[-1] + res / 2, 6)),
            resolution=res,
        )


def axis_step(c: np.ndarray) -> float:
    """The step of sorted centre coordinates ``c``: 0.1 for 0.1° centres, 1/120 (not 0.008333) for
    30-arc-second ones. Used by :meth:`GridSpec.from_coords` and the GIS exports' transforms.

    The median difference, rounded to 6 decimals, had made a 1/120° axis of 3 600 cells end
    0.14 of a cell off, and a 1/1200° one (0.000833) 14 cells too long. The step of a regular axis
    is its span over the cell count (float32 noise averaged out); the nearer of its 6-decimal
    rounding and 1/k degree (k whole), when within 1e-4 of it, is taken.

    >>> axis_step(np.array([0.05, 0.15, 0.25])), axis_step(np.arange(3600) / 120 + 1 / 240) == 1 / 120
    (0.1, True)
    """
    d = np.diff(c)
    med = float(np.median(d))
    regular = med > 0 and bool(np.all(np.abs(d - med) <= 1e-3 * med))
    est = float(c[-1] - c[0]) / (c.size - 1) if regular else med
    if not est:
        return est
    k = round(1.0 / est)  # either sign; 0 for a step over 2 (degrees, or metres of a projected grid)
    nice = min((round(est, 6), 1.0 / k if k else est), key=lambda v: abs(v - est))
    return float(nice) if abs(nice - est) <= 1e-4 * abs(est) else est


#: The SoMo.ml-EU grid: 12.0°W–45.0°E, 36.0°N–71.5°N, 0.1°, centres on x.x5 (355 × 570).
EUROPE = GridSpec(west=-12.0, east=45.0, south=36.0, north=71.5)


def snap_to_cell(
    lat: np.ndarray | float, lon: np.ndarray | float, grid: GridSpec = EUROPE
) -> tuple[np.ndarray, np.ndarray]:
    """Centre lat/lon of the 0.1° cell that holds each point (NaN outside ``grid``)."""
    return grid.cell_centre(lat, lon)


# ----------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Layer:
    number: int
    name: str
    top: float  # metres
    bottom: float  # metres

    @property
    def thickness(self) -> float:
        return self.bottom - self.top


LAYERS: tuple[Layer, ...] = (
    Layer(1, "layer1", 0.00, 0.10),
    Layer(2, "layer2", 0.10, 0.30),
    Layer(3, "layer3", 0.30, 0.50),
)
LAYER_NUMBERS: tuple[int, ...] = tuple(lay.number for lay in LAYERS)
LAYER_NAMES: tuple[str, ...] = tuple(lay.name for lay in LAYERS)

#: ERA5-Land soil layers (m): swvl1 0-7 cm, swvl2 7-28 cm, swvl3 28-100 cm, swvl4 100-289 cm.
ERA5_LAYERS: tuple[tuple[float, float], ...] = ((0.0, 0.07), (0.07, 0.28), (0.28, 1.00), (1.00, 2.89))


def layer_by_number(number: int) -> Layer:
    for lay in LAYERS:
        if lay.number == number:
            return lay
    raise KeyError(f"no layer {number!r}; layers are {LAYER_NUMBERS}")


def layer_coords(layers: tuple[int, ...] | list[int] = LAYER_NUMBERS) -> dict[str, xr.DataArray]:
    """``layer`` coordinate (1, 2, 3) with ``depth_top``/``depth_bottom`` in metres."""
    lays = [layer_by_number(int(n)) for n in layers]
    return {
        "layer": xr.DataArray(
            [lay.number for lay in lays], dims="layer", attrs={"long_name": "soil layer"}
        ),
        "depth_top": xr.DataArray(
            [lay.top for lay in lays],
            dims="layer",
            attrs={"units": "m", "long_name": "depth of the layer top", "positive": "down"},
        ),
        "depth_bottom": xr.DataArray(
            [lay.bottom for lay in lays],
            dims="layer",
            attrs={"units": "m", "long_name": "depth of the layer bottom", "positive": "down"},
        ),
    }


def with_layer_dim(arr: xr.DataArray) -> xr.DataArray:
    """``arr`` with a ``layer`` dimension: a scalar ``layer`` coordinate (``sm.sel(layer=2)``)
    becomes a dimension of that one layer; without any, the data are layer 1.

    (A selected layer 2 had been relabelled layer 1 and scored against layer 1's sensors.)
    """
    if LAYER in arr.dims:
        return arr
    if LAYER in arr.coords:
        return arr.expand_dims(LAYER)
    return arr.expand_dims({LAYER: [1]})


def assign_layer(depth_top: float, depth_bottom: float) -> int | None:
    """Layer number of a sensor whose whole depth interval lies inside one layer.

    Point sensors at exactly 0.10 or 0.30 m go to the shallower layer. Sensors that
    span two layers or lie below 0.50 m get ``None``.
    """
    top, bottom = float(depth_top), float(depth_bottom)
    if bottom < top:
        top, bottom = bottom, top
    eps = 1e-6
    for lay in LAYERS:
        # layers are tested top-down, so a point sensor on a boundary goes to the upper one
        if top >= lay.top - eps and bottom <= lay.bottom + eps:
            return lay.number
    return None


def depth_weights(
    top: float, bottom: float, source_layers: tuple[tuple[float, float], ...] = ERA5_LAYERS
) -> np.ndarray:
    """Weights of ``source_layers`` for the depth-weighted average over ``top``-``bottom``."""
    w = np.array(
        [max(0.0, min(bottom, b) - max(top, t)) for t, b in source_layers], dtype=float
    )
    if w.sum() <= 0:
        raise ValueError(f"interval {top}-{bottom} m overlaps none of {source_layers}")
    return w / w.sum()


# ----------------------------------------------------------------------------- variables

#: Dims
TIME, LAT, LON, LAYER, STATION, CELL = "time", "lat", "lon", "layer", "station", "cell"

LAT_ATTRS = {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"}
LON_ATTRS = {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"}
TIME_ATTRS = {"standard_name": "time", "long_name": "time", "axis": "T"}

#: Canonical name of the target variable (volumetric soil moisture).
SM = "sm"
SM_SPREAD = "sm_spread"
SM_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "long_name": "volumetric soil moisture",
    "units": "m3 m-3",
}


@dataclass(frozen=True)
class Variable:
    """A canonical variable: name, units, CF names and its physical range.

    ``valid_range`` bounds every single value in ``units`` (a daily value of a dynamic
    forcing, a cell value of a static feature); :func:`xsomo.units.check_plausible`
    refuses data outside it and guesses the cause (a wrong units label, mostly).
    """

    name: str
    units: str
    long_name: str
    standard_name: str | None = None
    kind: Literal["dynamic", "static", "target"] = "dynamic"
    valid_range: tuple[float, float] | None = None

    @property
    def attrs(self) -> dict[str, str]:
        out = {"long_name": self.long_name, "units": self.units}
        if self.standard_name:
            out["standard_name"] = self.standard_name
        return out


# Physical ranges (``valid_range``, in the canonical units), documented:
#
# ==================  ===============  ===================================================
# variable            range            why
# ==================  ===============  ===================================================
# air_temperature     183 .. 333 K     -90 .. +60 degC: beyond the records of a daily mean
# skin_temperature    173 .. 353 K     -100 .. +80 degC: land-surface extremes
# precipitation       0 .. 2000 mm/d   the daily world record is 1825 mm
# net_radiation       -400 .. 600 W/m2 daily means lie within about -150 .. 350
# sm                  0 .. 1 m3/m3     a volume fraction (porosity < 0.7 in practice)
# precipitation_mean  0 .. 40 mm/d     wettest places ~ 32 mm/d
# air_temperature_mean 183 .. 333 K    as air_temperature (a station's climate mean)
# aridity             0 .. 1000        net radiation as water over precipitation
# elevation_mean      -500 .. 9000 m   Dead Sea shore .. Everest
# elevation_std       0 .. 3000 m      sub-grid relief of a 0.1 degree cell
# fractions, texture  0 .. 1           area or mass fractions
# ==================  ===============  ===================================================
#
# A value outside by more than 0.1 % of the range width is refused (packing noise of
# int16 files stays well inside that).
DYNAMIC: tuple[Variable, ...] = (
    Variable(
        "air_temperature", "K", "2 m air temperature, daily mean", "air_temperature",
        valid_range=(183.0, 333.0),
    ),
    Variable(
        "precipitation", "mm d-1", "precipitation, daily total", "lwe_precipitation_rate",
        valid_range=(0.0, 2000.0),
    ),
    Variable(
        "net_radiation",
        "W m-2",
        "net surface radiation (shortwave + longwave), daily mean",
        "surface_net_downward_radiative_flux",
        valid_range=(-400.0, 600.0),
    ),
    Variable(
        "skin_temperature", "K", "land-surface (skin) temperature, daily mean",
        "surface_temperature", valid_range=(173.0, 353.0),
    ),
)

STATIC: tuple[Variable, ...] = (
    Variable(
        "precipitation_mean", "mm d-1", "long-term mean precipitation", kind="static",
        valid_range=(0.0, 40.0),
    ),
    Variable(
        "aridity",
        "1",
        "aridity index: net radiation as mm of water over precipitation",
        kind="static",
        valid_range=(0.0, 1000.0),
    ),
    Variable(
        "elevation_mean", "m", "mean elevation of the cell", "surface_altitude", kind="static",
        valid_range=(-500.0, 9000.0),
    ),
    Variable(
        "elevation_std", "m", "standard deviation of sub-grid elevation", kind="static",
        valid_range=(0.0, 3000.0),
    ),
    Variable(
        "forest_fraction", "1", "forest cover fraction", "area_fraction", kind="static",
        valid_range=(0.0, 1.0),
    ),
    Variable(
        "shortveg_fraction", "1", "short-vegetation cover fraction", "area_fraction",
        kind="static", valid_range=(0.0, 1.0),
    ),
    Variable("sand_top", "1", "sand fraction of the topsoil (0-30 cm)", kind="static", valid_range=(0.0, 1.0)),
    Variable("clay_top", "1", "clay fraction of the topsoil (0-30 cm)", kind="static", valid_range=(0.0, 1.0)),
    Variable("sand_sub", "1", "sand fraction of the subsoil (30-100 cm)", kind="static", valid_range=(0.0, 1.0)),
    Variable("clay_sub", "1", "clay fraction of the subsoil (30-100 cm)", kind="static", valid_range=(0.0, 1.0)),
)

#: Inputs with canonical units that are not among the default model inputs (``STATIC_NAMES``):
#: ``point_drivers`` makes them from a station's own forcing (a user may label them in degC).
OPTIONAL: tuple[Variable, ...] = (
    Variable(
        "air_temperature_mean", "K", "long-term mean 2 m air temperature", "air_temperature", kind="static",
        valid_range=(183.0, 333.0),
    ),
)

DYNAMIC_NAMES: tuple[str, ...] = tuple(v.name for v in DYNAMIC)
STATIC_NAMES: tuple[str, ...] = tuple(v.name for v in STATIC)
VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        *DYNAMIC,
        *STATIC,
        *OPTIONAL,
        Variable(SM, "m3 m-3", SM_ATTRS["long_name"], SM_ATTRS["standard_name"], "target", (0.0, 1.0)),
        # read as a land fraction (a percent map labelled '1' had made every coast with 1-50 % of
        # land into land: nothing checked its range)
        Variable("land_mask", "1", "land fraction (a cell is land above 0.5)", "land_area_fraction", "static", (0.0, 1.0)),
    )
}

#: Land mask variable carried by drivers (bool, lat/lon).
LAND_MASK = "land_mask"

#: Physical constants
LATENT_HEAT_VAPORISATION = 2.45e6  # J kg-1
SECONDS_PER_DAY = 86400.0


def check_time_zone(obj: xr.Dataset | xr.DataArray, what: str) -> None:
    """Refuse a time axis with a time zone: which calendar day a stamp belongs to would be a guess.

    xarray keeps a pandas time zone on the coordinate, but ``.values`` turns local midnight
    east of UTC into 23:00 of the day before, so daily values moved back by a day without a
    word (targets and references stamped in Europe/Berlin: r 0.91-0.94 for a perfect match);
    even UTC stamps failed later in xarray's alignment with naive ones.

    >>> import pandas as pd
    >>> t = pd.date_range("2001-01-01", periods=2, tz="Europe/Berlin")
    >>> check_time_zone(xr.DataArray([1.0, 2.0], coords={"time": t}, dims="time"), "targets")
    Traceback (most recent call last):
    ...
    xsomo.exceptions.XsomoValueError: targets: 'time' carries the time zone Europe/Berlin; xsomo reads naive daily dates. Drop it: for local calendar days obj.assign_coords(time=obj.indexes['time'].tz_localize(None)), for UTC ones obj.assign_coords(time=obj.indexes['time'].tz_convert('UTC').tz_localize(None))
    """
    index = obj.indexes.get(TIME) if TIME in obj.dims else None
    tz = getattr(index, "tz", None)
    if tz is not None:
        from xsomo.exceptions import XsomoValueError

        raise XsomoValueError(
            f"{what}: 'time' carries the time zone {tz}; xsomo reads naive daily dates. Drop it: for local "
            "calendar days obj.assign_coords(time=obj.indexes['time'].tz_localize(None)), for UTC ones "
            "obj.assign_coords(time=obj.indexes['time'].tz_convert('UTC').tz_localize(None))"
        )


def cf_attrs(name: Hashable) -> dict[str, str]:
    """CF attributes of a canonical variable."""
    try:
        return dict(VARIABLES[str(name)].attrs)
    except KeyError as err:
        raise KeyError(
            f"{name!r} is not a canonical xsomo variable; known: {sorted(VARIABLES)}"
        ) from err


def valid_range(name: Hashable) -> tuple[float, float] | None:
    """The physical range of a canonical variable in its canonical units (``None``: unbounded).

    >>> valid_range("air_temperature")
    (183.0, 333.0)
    """
    var = VARIABLES.get(str(name))
    return None if var is None else var.valid_range


def layer_var_name(number: int) -> str:
    """File-level variable name of a layer, as in the published SoMo.ml files."""
    return f"layer{int(number)}"


def output_filename(layer: int, year: int) -> str:
    """``SoMo.ml-EU_layer{N}_{YYYY}.nc``."""
    return f"SoMo.ml-EU_layer{int(layer)}_{int(year)}.nc"


def lon_wrap_hint(lon: Any) -> str:
    """A sentence for an irregular-grid error whose longitudes are a regular grid across 0° in
    0..360 (a region stored as 350..359.95, 0.05..10), else "".

    >>> lon_wrap_hint(np.r_[np.arange(355.05, 360, 0.1), np.arange(0.05, 5, 0.1)])[:40]
    ' Its longitudes run 0..360 across 0°: co'
    >>> lon_wrap_hint(np.arange(0.05, 5, 0.1))
    ''
    """
    lon = np.asarray(lon, float)
    if lon.size < 3 or lon.min() < 0 or lon.max() <= 180:
        return ""
    wrapped = np.sort(np.where(lon > 180, lon - 360, lon))
    step = np.diff(wrapped)
    if np.allclose(step, step[0], rtol=0, atol=1e-6 * max(1.0, abs(step[0]) * 1e3)):
        return (
            " Its longitudes run 0..360 across 0°: convert them to -180..180 first "
            "(drivers = xsomo.regrid.normalise_latlon(drivers))."
        )
    return ""


def lon_like_grid(lon: Any, grid_lon: Any) -> np.ndarray:
    """Station longitudes in the grid's convention (0..360 or -180..180): a grid in 0..360 put
    every station given in -180..180 west of 0° outside, without a word (and the reverse).

    >>> lon_like_grid(np.array([-5.0, 10.0]), np.arange(0.05, 360, 0.1)).round(2).tolist()
    [355.0, 10.0]
    >>> lon_like_grid(np.array([204.7]), np.arange(-179.95, 180, 0.1)).round(2).tolist()
    [-155.3]
    >>> lon_like_grid(np.array([0.0]), np.arange(0.05, 6, 0.1)).tolist()  # the western edge is inside
    [0.0]
    """
    lon = np.asarray(lon, float)
    grid_lon = np.asarray(grid_lon, float)
    if grid_lon.size < 2:
        return lon
    step = abs(float(grid_lon[1] - grid_lon[0]))
    # rounded as the wrapping below is: 0.05 - 0.1 / 2 is 6.9e-18, which had moved a station on the
    # grid's western edge (lon 0.0) to 360, outside (hostile-input QA)
    west = round(float(np.min(grid_lon)) - step / 2, 9)
    # only the longitudes outside the convention move, by whole turns rounded to 1e-9° (359.35 - 360
    # is -0.6500000000000341, which a bilinear regrid or a label join no longer takes for -0.65)
    inside = (lon >= west) & (lon < west + 360.0)
    return np.where(inside, lon, np.round(west + np.mod(lon - west, 360.0), 9))
