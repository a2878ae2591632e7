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

__all__ = ["countries", "in_grid_longitudes", "land_cells", "mask", "mask_3d", "regional_mean"]

COUNTRIES_FILE = "ne_110m_europe_countries.gpkg"


def land_cells(land_mask: xr.DataArray, source: str = "drivers") -> xr.DataArray:
    """The drivers' ``land_mask`` as a bool ``(lat, lon)`` DataArray: a bool mask as it is, numbers
    as a land fraction (0..1, a cell is land above 0.5, as :data:`xsomo.conventions.VARIABLES`
    defines it; NaN is sea).

    A fraction had been read as land wherever it was above 0 (cells of 20 % land got a
    prediction; hostile-input QA).

    Raises
    ------
    XsomoValueError
        If the values leave 0..1 (a percentage, a categorical land cover).

    >>> land_cells(xr.DataArray([[0.0, 0.2, 0.6, 1.0, np.nan]], dims=("lat", "lon"))).values.tolist()
    [[False, False, True, True, False]]
    """
    if land_mask.dtype == bool:
        return land_mask
    lo, hi = float(land_mask.min(skipna=True)), float(land_mask.max(skipna=True))
    if lo < -1e-6 or hi > 1 + 1e-6:  # (float32 rounding of a fraction may pass 1 by a step)
        raise XsomoValueError(
            f"{source}: 'land_mask' ranges {lo:.7g}..{hi:.7g}; it must be a 0/1 mask or a land fraction 0..1 (a cell is "
            "land above 0.5). A percentage: divide by 100; a land-cover class map: make a mask of its land classes."
        )
    return land_mask.fillna(0) > 0.5


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


def _in_degrees(gdf):
    """``gdf`` in EPSG:4326 (a GeoDataFrame without CRS is taken as degrees if its coordinates can be)."""
    if gdf.crs is None:
        b = gdf.total_bounds
        if len(gdf) and np.isfinite(b).all() and (b[0] < -180.0 or b[2] > 540.0 or b[1] < -90.0 or b[3] > 90.0):
            raise XsomoValueError(
                f"the polygons have no CRS and their coordinates are not degrees (x {b[0]:.6g}..{b[2]:.6g}, "
                f"y {b[1]:.6g}..{b[3]:.6g}: metres of a projection?): set their CRS (a shapefile needs its "
                ".prj; in Python gdf.set_crs(EPSG) or in QGIS Layer Properties > Source > Assigned CRS)"
            )
        return gdf.set_crs(4326)
    if gdf.crs.to_epsg() == 4326:
        return gdf
    if not gdf.crs.is_geographic:
        # a straight edge in a projection is a curve in degrees: densified first (a 1000 x 800 km
        # rectangle in EPSG:3035 had been masked between its corners, 400 cells wrong by up to
        # 20 km); 1 km segments, a tenth of a 0.1 degree cell
        unit = gdf.crs.axis_info[0].unit_conversion_factor if gdf.crs.axis_info else 1.0
        gdf = gdf.set_geometry(gdf.geometry.segmentize(1000.0 / (unit or 1.0)))
    return gdf.to_crs(4326)


def _valid(gdf):
    """``gdf`` when every geometry is valid; a self-intersecting polygon (a bow tie) is refused:
    its mask and its area disagree (one command averaged 80 cells, another failed in GEOS)."""
    bad = np.flatnonzero(~gdf.geometry.is_valid.to_numpy() & gdf.geometry.notna().to_numpy())
    if bad.size:
        import shapely

        why = shapely.is_valid_reason(gdf.geometry.iloc[int(bad[0])])
        raise XsomoValueError(
            f"{bad.size} of {len(gdf)} polygons are not valid geometries (row {int(bad[0])}: {why}): fix them first "
            "(shapely.make_valid, geopandas gdf.make_valid(), or QGIS Vector > Geometry Tools > Fix Geometries)"
        )
    return gdf


def in_grid_longitudes(gdf, lon: np.ndarray):
    """``gdf`` in EPSG:4326 with its longitudes in the convention of the grid's ``lon`` (cell centres).

    A grid within -180..180 gets polygons within -180..180 (parts beyond 180° are shifted by
    -360°, a polygon crossing 180° or 360° is split there), a grid beyond 180° polygons within
    0..360 (parts west of 0° shifted by +360°). Longitudes are periodic, so a polygon drawn
    over 359..361 covers the cells of -1..1: without this, half of it was masked.
    """
    import shapely
    from shapely import affinity

    gdf = _in_degrees(gdf)
    lon = np.asarray(lon, dtype=float)
    if lon.size == 0 or len(gdf) == 0:
        return gdf
    if lon.min() < 0.0 and lon.max() > 180.0:
        raise XsomoValueError(
            f"the grid's longitudes run from {lon.min():g} to {lon.max():g}, mixing -180..180 and 0..360: "
            "sort the data onto one convention first (e.g. ds.assign_coords(lon=((ds.lon + 180) % 360) - 180).sortby('lon'))"
        )
    lo, hi = (0.0, 360.0) if lon.max() > 180.0 else (-180.0, 180.0)
    b = gdf.geometry.bounds
    if (b["minx"] >= lo).all() and (b["maxx"] <= hi).all():
        return gdf

    def wrap(geom):
        if geom is None or geom.is_empty:
            return geom
        parts = []
        x0, _, x1, _ = geom.bounds
        for k in range(int(np.floor((x0 - lo) / 360.0)), int(np.floor((x1 - lo) / 360.0)) + 1):
            piece = geom.intersection(shapely.box(lo + 360.0 * k, -90.0, hi + 360.0 * k, 90.0))
            if not piece.is_empty:
                parts.append(affinity.translate(piece, xoff=-360.0 * k))
        polys = [p for p in shapely.get_parts(shapely.union_all(parts)) if p.geom_type == "Polygon"]
        return shapely.MultiPolygon(polys) if len(polys) > 1 else (polys[0] if polys else shapely.Polygon())

    out = gdf.copy()
    out[out.geometry.name] = [wrap(g) for g in gdf.geometry]
    return out


def _regions(gdf, key: str, *, overlap: bool = False, lon: np.ndarray | None = None):
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
    null = [names[k] for k, g in enumerate(gdf.geometry) if g is None]
    if null:
        # (a NULL geometry had been called "['nan'] geometries: give polygons, not points or lines")
        raise XsomoValueError(
            f"{len(null)} feature(s) have no geometry (NULL: {', '.join(map(repr, null[:5]))}"
            f"{', ...' if len(null) > 5 else ''}): drop them first (gdf[gdf.geometry.notna()])."
        )
    kinds = {str(t) for t, e in zip(gdf.geom_type, gdf.geometry.is_empty, strict=True) if not e and t is not None}
    if kinds - {"Polygon", "MultiPolygon"}:
        raise XsomoValueError(
            f"the polygons hold {sorted(kinds - {'Polygon', 'MultiPolygon'})} geometries: give polygons "
            "(regions with an area), not points or lines"
        )
    gdf = _in_degrees(gdf)
    # one part of a polygon wider than 180° wraps (countries such as Russia or Fiji come as
    # parts on both sides of 180°, each narrower)
    parts = gdf.geometry.reset_index(drop=True).explode(index_parts=True).bounds
    wide = ((parts["maxx"] - parts["minx"]) > 180.0).groupby(level=0).any()
    if wide.any():
        name = names[int(np.flatnonzero(wide.to_numpy())[0])]
        raise XsomoValueError(
            f"polygon {name!r} spans more than 180° of longitude in EPSG:4326: it crosses the antimeridian (in "
            "its own CRS it wraps around), and masking it would take every cell outside it. Split it at 180° "
            "first (e.g. with the antimeridian package)"
        )
    gdf = _valid(gdf)
    if lon is not None:
        gdf = in_grid_longitudes(gdf, lon)
    bounds = gdf.geometry.bounds
    if (bounds["maxx"] > 180.0 + 1e-6).any() and (bounds["minx"] < 0.0).any():
        raise XsomoValueError(
            f"the polygons' longitudes run from {bounds['minx'].min():g} to {bounds['maxx'].max():g}: some are in "
            "0..360, others in -180..180. Give them in one convention (e.g. shift those beyond 180° by -360°)"
        )
    return regionmask.from_geopandas(
        gdf.reset_index(drop=True).assign(**{key: names}),  # regionmask names are strings (IDs may be integers)
        names=key,
        abbrevs="_from_name",
        name="regions",
        overlap=overlap,
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
    lon, lat = _lonlat(target)
    regs = _regions(gdf, key, lon=lon)
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
    lon, lat = _lonlat(target)
    regs = _regions(gdf, key, overlap=True, lon=lon)
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
