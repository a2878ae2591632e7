"""Region masks and area-weighted regional means from polygons (GeoDataFrames).

The package ships a small Natural Earth 1:110m country layer (public domain) for
Europe and its neighbours (``xsomo/data/ne_110m_europe_countries.gpkg``), so no
download is needed. Countries are keyed by ``NAME`` or ``ADM0_A3`` (``ISO_A3`` is -99
for France and Norway at 1:110m, so it is not a usable key).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib import resources

import numpy as np
import xarray as xr

from xsomo.conventions import GridSpec, XArray
from xsomo.exceptions import XsomoKeyError, XsomoValueError
from xsomo.regrid import normalise_latlon

__all__ = ["countries", "mask", "mask_3d", "regional_mean"]

COUNTRIES_FILE = "ne_110m_europe_countries.gpkg"


def countries(names: Sequence[str] | None = None):
    """Natural Earth 1:110m countries of Europe and neighbours as a GeoDataFrame (EPSG:4326).

    Parameters
    ----------
    names
        Countries to keep, by ``NAME`` ("France") or ``ADM0_A3`` ("FRA"); all if ``None``.

    Raises
    ------
    XsomoKeyError
        Unknown country names.
    """
    import geopandas as gpd

    with resources.as_file(resources.files("xsomo.data") / COUNTRIES_FILE) as path:
        gdf = gpd.read_file(path)
    if names is None:
        return gdf
    wanted = list(names)
    hit = gdf["NAME"].isin(wanted) | gdf["ADM0_A3"].isin(wanted)
    known = set(gdf["NAME"]) | set(gdf["ADM0_A3"])
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise XsomoKeyError(
            f"unknown countr(y/ies) {unknown}; use NAME or ADM0_A3, e.g. {sorted(gdf['ADM0_A3'])[:8]} ..."
        )
    return gdf[hit].reset_index(drop=True)


def _lonlat(target: XArray | GridSpec) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(target, GridSpec):
        return target.lon, target.lat
    t = normalise_latlon(target)
    return np.asarray(t["lon"].values), np.asarray(t["lat"].values)


def _regions(gdf, key: str, *, overlap: bool = False):
    import regionmask

    if key not in gdf.columns:
        raise XsomoKeyError(f"no column {key!r} in the polygons; columns: {list(gdf.columns)}")
    names = [str(v) for v in gdf[key]]
    if len(set(names)) != len(names):
        raise XsomoValueError(
            f"column {key!r} has duplicate values; dissolve the polygons first (gdf.dissolve({key!r}))."
        )
    if len(gdf) == 0:
        raise XsomoValueError("the polygons are empty (no feature): give at least one polygon")
    kinds = {str(t) for t, e in zip(gdf.geom_type, gdf.geometry.is_empty, strict=True) if not e and t is not None}
    if kinds - {"Polygon", "MultiPolygon"}:
        raise XsomoValueError(
            f"the polygons hold {sorted(kinds - {'Polygon', 'MultiPolygon'})} geometries: give polygons "
            "(regions with an area), not points or lines"
        )
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    # one part of a polygon wider than 180° wraps (countries such as Russia or Fiji come as
    # parts on both sides of 180°, each narrower)
    parts = gdf.geometry.reset_index(drop=True).explode(index_parts=True).bounds
    wide = ((parts["maxx"] - parts["minx"]) > 180.0).groupby(level=0).any()
    bounds = gdf.geometry.bounds
    if wide.any():
        name = names[int(np.flatnonzero(wide.to_numpy())[0])]
        raise XsomoValueError(
            f"polygon {name!r} spans more than 180° of longitude in EPSG:4326: it crosses the antimeridian (in "
            "its own CRS it wraps around), and masking it would take every cell outside it. Split it at 180° "
            "first (e.g. with the antimeridian package)"
        )
    if (bounds["maxx"] > 180.0 + 1e-6).any() and (bounds["minx"] < 0.0).any():
        raise XsomoValueError(
            f"the polygons' longitudes run from {bounds['minx'].min():g} to {bounds['maxx'].max():g}: some are in "
            "0..360, others in -180..180. Give them in one convention (e.g. shift those beyond 180° by -360°)"
        )
    return regionmask.from_geopandas(
        gdf.reset_index(drop=True), names=key, abbrevs="_from_name", name="regions", overlap=overlap
    )


def mask(gdf, target: XArray | GridSpec, *, key: str = "NAME") -> xr.DataArray:
    """Region number of every cell centre (NaN outside every polygon), ``(lat, lon)``.

    The ``names`` attribute maps numbers (the row order of ``gdf``) to ``gdf[key]``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> sq = gpd.GeoDataFrame({"NAME": ["sq"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    >>> m = mask(sq, GridSpec(-1, 2, -1, 2, 0.5))
    >>> int(m.notnull().sum())
    4
    """
    regs = _regions(gdf, key)
    lon, lat = _lonlat(target)
    with warnings.catch_warnings():  # regionmask's own use of a shapely operator
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        m = regs.mask(lon, lat)
    m = m.rename({d: n for d, n in (("latitude", "lat"), ("longitude", "lon")) if d in m.dims})
    m.attrs["names"] = ",".join(regs.names)
    return m


def mask_3d(gdf, target: XArray | GridSpec, *, key: str = "NAME") -> xr.DataArray:
    """Boolean mask ``(region, lat, lon)``, ``region`` labelled by ``gdf[key]``, one entry per
    polygon in the order of ``gdf``.

    Each polygon holds every cell whose centre lies inside it, also where polygons overlap
    or nest (a basin and its sub-basins, a country and its regions: with regionmask's
    non-overlapping masks a nested polygon's cells had been taken from the outer one); a
    polygon without a cell centre is kept, all False (its statistics are NaN over 0 cells).
    """
    regs = _regions(gdf, key, overlap=True)
    lon, lat = _lonlat(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        m = regs.mask_3D(lon, lat, drop=False)
    m = m.rename({d: n for d, n in (("latitude", "lat"), ("longitude", "lon")) if d in m.dims})
    return m.assign_coords(region=[str(n) for n in m["names"].values]).drop_vars(
        ["names", "abbrevs"], errors="ignore"
    )


def regional_mean(data: XArray, gdf, *, key: str = "NAME") -> XArray:
    """Area-weighted mean over each polygon, ignoring NaN cells; adds a ``region`` dim.

    Weights are the cells' areas on the sphere (proportional to :math:`\\cos\\varphi` on a
    regular grid). Lazy inputs stay lazy.
    """
    data = normalise_latlon(data)
    m = mask_3d(gdf, data, key=key)
    coslat = xr.DataArray(
        np.cos(np.deg2rad(data["lat"].values)), coords={"lat": data["lat"]}, dims="lat"
    )
    w = coslat * m
    return data.weighted(w.fillna(0)).mean(("lat", "lon"))
