"""The sample world's statics in the layouts users download (optional, ``real_statics=True``).

Written beside the netCDF statics, from the same fields, into ``static_real/``:

* ``dem/dem_<lat>_<lon>.tif`` - the 0.01° DEM as 1° x 1° GeoTIFF tiles (metres);
* ``landcover_esa_cci.tif`` - the 0.01° land cover as ESA CCI classes (70 needle-leaved
  forest, 130 grassland, 200 bare areas, 210 water), so that
  :func:`xsomo.io.open_landcover` returns the fractions of ``static/landcover.nc``;
* ``soilgrids/{sand,clay}_<top>-<bottom>cm_mean.tif`` - the 0.05° texture as SoilGrids'
  depth intervals in g/kg (0-5, 5-15, 15-30 cm hold the topsoil, 30-60, 60-100,
  100-200 cm the subsoil).

All rasters are north-up EPSG:4326 GeoTIFFs (rasterio). The default world does not
write them, so it stays byte-identical.
"""

from __future__ import annotations

import numpy as np

from xsomo.io.atomic import atomic_path
from xsomo.sample.writers.common import WorldContext
from xsomo.sample.writers.static import fine_bands, fine_grid, soil_bands, soil_grid

__all__ = ["ESA_CODES", "SOILGRIDS_DEPTHS", "write_real_statics"]

#: ESA CCI class written for (forest, short vegetation, other land, sea)
ESA_CODES = {"forest": 70, "short": 130, "bare": 200, "water": 210}
#: SoilGrids depth intervals (cm) and the layer whose texture they hold
SOILGRIDS_DEPTHS = {(0, 5): "top", (5, 15): "top", (15, 30): "top", (30, 60): "sub", (60, 100): "sub", (100, 200): "sub"}


def _write_tif(path, data_south_up: np.ndarray, west: float, north: float, res: float, nodata=None) -> None:
    import rasterio
    from rasterio.transform import from_origin

    data = np.ascontiguousarray(data_south_up[::-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, rasterio.open(
        tmp, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
        dtype=data.dtype, crs="EPSG:4326", transform=from_origin(west, north, res, res),
        nodata=nodata, compress="deflate",
    ) as dst:
        dst.write(data, 1)


def write_real_statics(ctx: WorldContext, tile_degrees: float = 1.0) -> None:
    """Write ``static_real/`` (DEM tiles, ESA CCI land cover, SoilGrids-like texture)."""
    root = ctx.layout.real_static
    fine = fine_grid(ctx)
    elev = np.empty((fine.nlat, fine.nlon), np.float32)
    lc = np.empty((fine.nlat, fine.nlon), np.uint8)
    land = np.repeat(np.repeat(ctx.land, round(ctx.grid.resolution / fine.resolution), 0), round(ctx.grid.resolution / fine.resolution), 1)
    for rows, e, is_forest, is_short in fine_bands(ctx):
        elev[rows] = e
        code = np.where(land[rows], ESA_CODES["bare"], ESA_CODES["water"])
        code = np.where(is_short, ESA_CODES["short"], code)
        lc[rows] = np.where(is_forest, ESA_CODES["forest"], code)
    n = max(1, round(tile_degrees / fine.resolution))
    for r0 in range(0, fine.nlat, n):
        for c0 in range(0, fine.nlon, n):
            south = round(fine.south + r0 * fine.resolution, 6)
            west = round(fine.west + c0 * fine.resolution, 6)
            tile = elev[r0 : r0 + n, c0 : c0 + n]
            north = round(south + tile.shape[0] * fine.resolution, 6)
            _write_tif(root / "dem" / f"dem_{south:+07.2f}_{west:+08.2f}.tif", tile, west, north, fine.resolution)
    _write_tif(root / "landcover_esa_cci.tif", lc, fine.west, fine.north, fine.resolution, nodata=0)
    sg = soil_grid(ctx)
    tex = {k: np.empty((sg.nlat, sg.nlon), np.int16) for k in ("sand_top", "clay_top", "sand_sub", "clay_sub")}
    for band, t in soil_bands(ctx):
        for k in tex:
            tex[k][band] = np.round(1000.0 * t[k]).astype(np.int16)  # g/kg
    for (top, bottom), layer in SOILGRIDS_DEPTHS.items():
        for prop in ("sand", "clay"):
            _write_tif(
                root / "soilgrids" / f"{prop}_{top}-{bottom}cm_mean.tif",
                tex[f"{prop}_{layer}"], sg.west, sg.north, sg.resolution, nodata=-32768,
            )
