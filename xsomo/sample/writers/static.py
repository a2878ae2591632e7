"""Static files of the sample world: land mask, soil texture, DEM and land cover (netCDF).

The fields are computed band by band (:func:`soil_bands`, :func:`fine_bands`) and
written by the format functions; the same bands feed the real-layout writers of
:mod:`xsomo.sample.writers.real_static`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.special import ndtr

from xsomo.conventions import GridSpec
from xsomo.io.netcdf import NcWriter, Var, lat_coord, lon_coord
from xsomo.sample.writers.common import Bands, WorldContext

__all__ = [
    "FINE_RESOLUTION",
    "SOIL_RESOLUTION",
    "TEXTURE_NAMES",
    "fine_bands",
    "soil_bands",
    "write_dem_landcover",
    "write_land_mask",
    "write_soil",
    "write_statics",
]

#: resolution (degrees) of the soil-texture grid and of the DEM / land-cover grid
SOIL_RESOLUTION = 0.05
FINE_RESOLUTION = 0.01

#: soil texture variables and their long names
TEXTURE_NAMES = {
    "sand_top": "sand content of the topsoil (0-30 cm)",
    "clay_top": "clay content of the topsoil (0-30 cm)",
    "sand_sub": "sand content of the subsoil (30-100 cm)",
    "clay_sub": "clay content of the subsoil (30-100 cm)",
}


def write_statics(ctx: WorldContext) -> None:
    """Write ``static/``: land mask, soil texture, DEM and land cover."""
    write_land_mask(ctx)
    write_soil(ctx)
    write_dem_landcover(ctx)


def write_land_mask(ctx: WorldContext) -> None:
    """``static/land_mask.nc``: the land-sea mask on the target grid."""
    g = ctx.grid
    with NcWriter(
        ctx.layout.land_mask,
        dims={"lat": g.nlat, "lon": g.nlon},
        coords={"lat": lat_coord(g.lat), "lon": lon_coord(g.lon)},
        variables={
            "land_mask": Var(
                ("lat", "lon"),
                "i1",
                {
                    "long_name": "land-sea mask (1 land, 0 sea)",
                    "units": "1",
                    "flag_values": np.array([0, 1], np.int8),
                    "flag_meanings": "sea land",
                },
            )
        },
        attrs=ctx.attrs("land-sea mask"),
        complevel=ctx.complevel,
    ) as f:
        f.write("land_mask", slice(None), ctx.land.astype(np.int8))


def soil_grid(ctx: WorldContext) -> GridSpec:
    """The 0.05° grid of the soil texture."""
    g = ctx.grid
    return GridSpec(g.west, g.east, g.south, g.north, SOIL_RESOLUTION)


def soil_bands(ctx: WorldContext) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """``(rows, texture fractions)`` of the soil grid, 200 rows at a time (south to north)."""
    fg = soil_grid(ctx)
    for band in Bands(fg.nlat, 200):
        la, lo = np.meshgrid(fg.lat[band], fg.lon, indexing="ij")
        yield band, ctx.world.texture(la, lo)


def write_soil(ctx: WorldContext) -> None:
    """``static/soil.nc``: sand and clay of top- and subsoil in percent at 0.05°."""
    fg = soil_grid(ctx)
    with NcWriter(
        ctx.layout.soil,
        dims={"lat": fg.nlat, "lon": fg.nlon},
        coords={"lat": lat_coord(fg.lat), "lon": lon_coord(fg.lon)},
        variables={
            k: Var(("lat", "lon"), "f4", {"units": "percent", "long_name": v}, chunks=(500, 500))
            for k, v in TEXTURE_NAMES.items()
        },
        attrs=ctx.attrs("soil texture (HWSD/SoilGrids-like)"),
        complevel=ctx.complevel,
    ) as f:
        for band, tex in soil_bands(ctx):
            for k in TEXTURE_NAMES:
                f.write(k, (band, slice(None)), np.round(100.0 * tex[k], 2).astype(np.float32))


def fine_grid(ctx: WorldContext) -> GridSpec:
    """The 0.01° grid of the DEM and the land cover."""
    g = ctx.grid
    return GridSpec(g.west, g.east, g.south, g.north, FINE_RESOLUTION)


def fine_bands(
    ctx: WorldContext,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray]]:
    """``(rows, elevation, is_forest, is_short)`` of the fine grid, band by band (south to north).

    Elevation is in metres (0 on sea, 0.1 m steps); ``is_forest`` and ``is_short`` are the
    boolean land-cover classes of each fine cell (neither: bare land or sea).
    """
    g = ctx.grid
    w = ctx.world
    fine = fine_grid(ctx)
    factor = round(g.resolution / FINE_RESOLUTION)
    veg = w.vegetation(ctx.lat2d, ctx.lon2d)
    elev_large = w.elevation_large(ctx.lat2d, ctx.lon2d)
    rugged = w.ruggedness(ctx.lat2d, ctx.lon2d)
    for band in Bands(g.nlat, max(1, 200 // factor)):
        rows = slice(band.start * factor, band.stop * factor)
        land_f = np.repeat(np.repeat(ctx.land[band], factor, 0), factor, 1)
        # large-scale relief interpolated from the cell centres, sub-grid relief evaluated finely
        fy = (fine.lat[rows] - g.lat[0]) / g.resolution
        fx = (fine.lon - g.lon[0]) / g.resolution
        yy, xx = np.meshgrid(fy, fx, indexing="ij")
        large = map_coordinates(elev_large, [yy, xx], order=1, mode="nearest")
        rough = map_coordinates(rugged, [yy, xx], order=1, mode="nearest")
        elev = np.maximum(large + rough * w.f_rough.grid(fine.lat[rows], fine.lon), 0.0)
        elev = np.where(land_f, np.round(elev, 1), 0.0).astype(np.float32)
        forest_c = np.repeat(np.repeat(veg["forest"][band], factor, 0), factor, 1)
        short_c = np.repeat(np.repeat(veg["shortveg"][band], factor, 0), factor, 1)
        q = ndtr(w.f_lc.grid(fine.lat[rows], fine.lon))
        is_forest = (q < forest_c) & land_f
        is_short = (~is_forest) & (q < forest_c + short_c) & land_f
        yield rows, elev, is_forest, is_short


def _fraction_var(long_name: str) -> Var:
    return Var(
        ("lat", "lon"),
        "f4",
        {"units": "1", "long_name": long_name, "standard_name": "area_fraction"},
        chunks=(500, 500),
    )


def write_dem_landcover(ctx: WorldContext) -> None:
    """``static/dem.nc`` (metres) and ``static/landcover.nc`` (0/1 fractions) at 0.01°."""
    fine = fine_grid(ctx)
    dims = {"lat": fine.nlat, "lon": fine.nlon}
    coords = {"lat": lat_coord(fine.lat), "lon": lon_coord(fine.lon)}
    dem = NcWriter(
        ctx.layout.dem,
        dims=dims,
        coords=coords,
        variables={
            "elevation": Var(
                ("lat", "lon"),
                "f4",
                {
                    "units": "m",
                    "long_name": "surface elevation above sea level",
                    "standard_name": "surface_altitude",
                },
                chunks=(500, 500),
            )
        },
        attrs=ctx.attrs("digital elevation model (0.01 degree)"),
        complevel=ctx.complevel,
    )
    try:
        lc = NcWriter(
            ctx.layout.landcover,
            dims=dims,
            coords=coords,
            variables={
                "forest_fraction": _fraction_var("forest cover fraction"),
                "shortveg_fraction": _fraction_var("short vegetation cover fraction"),
            },
            attrs=ctx.attrs("land cover (0.01 degree)"),
            complevel=ctx.complevel,
        )
    except BaseException:
        dem.abort()
        raise
    try:
        for rows, elev, is_forest, is_short in fine_bands(ctx):
            dem.write("elevation", (rows, slice(None)), elev)
            lc.write("forest_fraction", (rows, slice(None)), is_forest.astype(np.float32))
            lc.write("shortveg_fraction", (rows, slice(None)), is_short.astype(np.float32))
        dem.close()
        lc.close()
    except BaseException:
        dem.abort()
        lc.abort()
        raise
