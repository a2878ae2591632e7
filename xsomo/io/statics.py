"""Static inputs in the layouts users download: DEM tiles, categorical land cover, SoilGrids.

The readers return the same variables as the sample world's ``static/`` netCDF files
(:data:`xsomo.io.gridded.STATIC_FILES`) on the product's own fine grid, ascending
``lat``/``lon``, so :mod:`xsomo.drivers.features` aggregates them alike:

* :func:`open_dem` - ``elevation`` (m) from GeoTIFF tiles (or a VRT, or netCDF),
  mosaicked lazily; a box no tile covers is no data, with a warning naming it; tiles of
  several pixel sizes (the Copernicus DEM north of 50 deg N) give one map per size.
* :func:`open_landcover` / :func:`landcover_fractions` - ``forest_fraction`` and
  ``shortveg_fraction`` (0-1) from the classes of ESA CCI Land Cover or Copernicus
  CGLS-LC100 (:data:`LANDCOVER_CLASSES`, documented per class).
* :func:`open_soilgrids` - ``sand_top``, ``clay_top`` (0-30 cm) and ``sand_sub``,
  ``clay_sub`` (30-100 cm) as fractions, depth-weighted from SoilGrids' intervals
  (0-5, 5-15, 15-30, 30-60, 60-100 cm) in g/kg (or percent).
"""

from __future__ import annotations

import glob
import itertools
import os
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from xsomo import units as xu
from xsomo.exceptions import DataFormatError, MissingVariableError, XsomoValueError

__all__ = [
    "LANDCOVER_CLASSES",
    "SOIL_LAYERS",
    "landcover_fractions",
    "open_dem",
    "open_landcover",
    "open_raster",
    "open_soilgrids",
]

PathLike = str | os.PathLike[str]

#: (forest, short vegetation) fraction of each land-cover class, per product.
#:
#: ESA CCI Land Cover (LCCS legend, 300 m, v2.0.7 / C3S v2.1): tree classes 50-90 and the
#: flooded tree classes 160/170 are forest; croplands 10-20, shrubland 120-122, grassland
#: 130, lichens and mosses 140 and flooded shrub/herbaceous 180 are short vegetation; the
#: mosaics split by their stated shares (30: cropland > 50 % -> 0.15/0.85, 40: natural
#: vegetation > 50 % -> 0.25/0.75, 100: tree and shrub > 50 % -> 0.6/0.4, 110: herbaceous
#: > 50 % -> 0.25/0.75); sparse vegetation 150-153 (< 15 % cover) counts 0.1 short;
#: urban 190, bare 200-202, water 210 and snow/ice 220 are neither; 0 is no data.
#:
#: Copernicus Global Land Cover CGLS-LC100 (discrete classification, 100 m): closed forest
#: 111-116 (> 70 % tree cover) is forest; open forest 121-126 (15-70 % trees, the rest
#: shrubs or herbaceous) counts 0.45 forest and 0.55 short; shrubs 20, herbaceous 30,
#: cultivated 40, herbaceous wetland 90 and moss/lichen 100 are short; urban 50, bare or
#: sparse 60, snow/ice 70, water 80 and open sea 200 are neither; 0 is no data.
# fmt: off
LANDCOVER_CLASSES: dict[str, dict[int, tuple[float, float]]] = {
    "esa_cci": {
        10: (0.0, 1.0), 11: (0.0, 1.0), 12: (0.0, 1.0), 20: (0.0, 1.0),
        30: (0.15, 0.85), 40: (0.25, 0.75),
        50: (1.0, 0.0), 60: (1.0, 0.0), 61: (1.0, 0.0), 62: (1.0, 0.0),
        70: (1.0, 0.0), 71: (1.0, 0.0), 72: (1.0, 0.0),
        80: (1.0, 0.0), 81: (1.0, 0.0), 82: (1.0, 0.0), 90: (1.0, 0.0),
        100: (0.6, 0.4), 110: (0.25, 0.75),
        120: (0.0, 1.0), 121: (0.0, 1.0), 122: (0.0, 1.0), 130: (0.0, 1.0), 140: (0.0, 1.0),
        150: (0.0, 0.1), 151: (0.0, 0.1), 152: (0.0, 0.1), 153: (0.0, 0.1),
        160: (1.0, 0.0), 170: (1.0, 0.0), 180: (0.0, 1.0),
        190: (0.0, 0.0), 200: (0.0, 0.0), 201: (0.0, 0.0), 202: (0.0, 0.0),
        210: (0.0, 0.0), 220: (0.0, 0.0),
    },
    "cgls_lc100": {
        20: (0.0, 1.0), 30: (0.0, 1.0), 40: (0.0, 1.0), 50: (0.0, 0.0), 60: (0.0, 0.0),
        70: (0.0, 0.0), 80: (0.0, 0.0), 90: (0.0, 1.0), 100: (0.0, 1.0),
        111: (1.0, 0.0), 112: (1.0, 0.0), 113: (1.0, 0.0), 114: (1.0, 0.0), 115: (1.0, 0.0),
        116: (1.0, 0.0),
        121: (0.45, 0.55), 122: (0.45, 0.55), 123: (0.45, 0.55), 124: (0.45, 0.55),
        125: (0.45, 0.55), 126: (0.45, 0.55),
        200: (0.0, 0.0),
    },
}
# fmt: on
#: the no-data class of both products
_NODATA_CLASS = 0

#: target soil layers of the static features (cm): name suffix -> (top, bottom)
SOIL_LAYERS = {"top": (0.0, 30.0), "sub": (30.0, 100.0)}


# ---------------------------------------------------------------------- rasters
def _paths(path: PathLike | Sequence[PathLike], what: str) -> list[pathlib.Path]:
    if isinstance(path, (str, os.PathLike)):
        p = pathlib.Path(path).expanduser()
        if p.is_dir():
            files = sorted(
                f for f in p.iterdir() if f.suffix.lower() in (".tif", ".tiff", ".vrt", ".nc")
            )
        elif p.exists():
            files = [p]
        else:
            files = sorted(pathlib.Path(f) for f in glob.glob(str(p)))
    else:
        files = [pathlib.Path(f).expanduser() for f in path]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise MissingVariableError(f"{what}: file(s) not found: {missing}.")
    if not files:
        raise MissingVariableError(
            f"{what}: no GeoTIFF, VRT or netCDF file found at {str(path)!r}; pass a file, a folder or a glob."
        )
    return files


_SPATIAL = {"lat", "lon", "latitude", "longitude", "y", "x"}


def _netcdf_layer(f: pathlib.Path, ds: xr.Dataset, variable: str | None, prefer: Sequence[str]) -> xr.DataArray:
    """The one map of a netCDF file: ``variable``, else the first of ``prefer`` it holds, else its
    only variable on a lat/lon (or y/x) grid (a grid-mapping ``crs`` and flag layers beside it are
    why products such as ESA CCI land cover hold several); size-1 dimensions such as the
    product's ``time`` are dropped."""
    names = list(ds.data_vars)
    if variable is not None:
        if variable not in ds:
            raise MissingVariableError(f"{f}: no variable {variable!r}; it holds {names}.")
        name = variable
    else:
        preferred = [n for n in prefer if n in ds]
        maps = [n for n in names if len(_SPATIAL & set(ds[n].dims)) >= 2]
        if preferred:
            name = preferred[0]
        elif len(maps) == 1:
            name = maps[0]
        else:
            raise DataFormatError(
                f"{f}: {len(maps)} map variables {maps} (of {names}); pass a file per variable or name "
                "the one to read (variable=)."
            )
    da = ds[name]
    other = [d for d in da.dims if d not in _SPATIAL]
    if any(da.sizes[d] != 1 for d in other):
        raise DataFormatError(
            f"{f}: {name} has dimensions {dict(da.sizes)}; a map needs lat/lon only (select one "
            f"{', '.join(d for d in other if da.sizes[d] != 1)} first)."
        )
    return da.squeeze(other, drop=True) if other else da


def open_raster(
    path: PathLike, *, chunks: int | dict | None = 2048, variable: str | None = None, prefer: Sequence[str] = ()
) -> xr.DataArray:
    """One single-band raster (GeoTIFF, VRT or netCDF) as ``(lat, lon)``, ascending, nodata NaN.

    GeoTIFF and VRT files are read lazily with rioxarray (dask chunks of ``chunks``
    pixels), with the band's scale and offset applied and its units (if any) in
    ``attrs['units']``; a geographic CRS (degrees) is required. Of a netCDF file the map is
    ``variable``, else the first of ``prefer`` it holds, else its only lat/lon variable.
    """
    f = pathlib.Path(path)
    if f.suffix.lower() == ".nc":
        ds = xr.open_dataset(f, chunks={} if chunks else None)
        da = _netcdf_layer(f, ds, variable, prefer)
    else:
        import rioxarray

        try:
            # scale and offset applied (a DEM in int16 decimetres with scale 0.1 had read 10x high)
            da = rioxarray.open_rasterio(f, chunks=chunks, mask_and_scale=True)
        except OverflowError:
            # rioxarray casts the nodata of an _Unsigned band to the unsigned type and fails
            # on a negative one (int16 nodata -1 is 65535); xarray's CF decoding converts it
            da = _decode_unsigned_band(f, chunks)
        except Exception as err:
            raise DataFormatError(f"{f}: cannot open as a raster ({err}).") from err
        crs = da.rio.crs
        if crs is not None and not crs.is_geographic:
            raise DataFormatError(
                f"{f}: CRS {crs.to_string()} is projected; reproject to EPSG:4326 (degrees) first "
                "(e.g. gdalwarp -t_srs EPSG:4326)."
            )
        x, y = (np.asarray(da[c].values, float) for c in ("x", "y"))
        if crs is None and x.size and y.size and (np.abs(x).max() > 360 or np.abs(y).max() > 90):
            raise DataFormatError(
                f"{f}: no CRS, and its coordinates (x {x.min():.6g} .. {x.max():.6g}, y {y.min():.6g} .. "
                f"{y.max():.6g}) are not degrees; set the file's CRS and reproject to EPSG:4326 "
                "(e.g. gdalwarp -s_srs <its CRS> -t_srs EPSG:4326)."
            )
        if "band" in da.dims:
            if da.sizes["band"] != 1:
                raise DataFormatError(f"{f}: {da.sizes['band']} bands; pass a single-band raster.")
            da = da.isel(band=0, drop=True)
        da = da.drop_vars([c for c in ("spatial_ref", "band") if c in da.coords])
    rename = {a: b for a, b in (("y", "lat"), ("x", "lon"), ("latitude", "lat"), ("longitude", "lon")) if a in da.dims}
    da = da.rename(rename)
    if da.sizes["lat"] > 1 and da["lat"].values[0] > da["lat"].values[-1]:
        da = da.isel(lat=slice(None, None, -1))
    da.attrs.setdefault("source_file", str(f))
    return da


def _decode_unsigned_band(f: pathlib.Path, chunks: int | dict | None) -> xr.DataArray:
    """A GeoTIFF band tagged ``_Unsigned = "true"`` whose nodata is negative (the signed
    spelling of a large unsigned value), decoded by xarray's CF rules as float32."""
    import rioxarray

    try:
        raw = rioxarray.open_rasterio(f, chunks=chunks, mask_and_scale=False)
        if str(raw.attrs.get("_Unsigned", "")).lower() != "true":
            raise ValueError("its nodata does not fit its data type")
        name = "band_data"
        decoded = xr.decode_cf(raw.to_dataset(name=name))[name]
    except Exception as err:
        raise DataFormatError(f"{f}: cannot open as a raster ({err}).") from err
    return decoded.astype(np.float32) if decoded.dtype == np.float64 and raw.dtype.itemsize <= 2 else decoded


def _tile_info(f: pathlib.Path) -> tuple[float, float, float, float, float, float]:
    """``(west, south, east, north, dx, dy)`` of a raster file."""
    import rasterio

    with rasterio.open(f) as src:
        b = src.bounds
        return b.left, b.bottom, b.right, b.top, abs(src.transform.a), abs(src.transform.e)


#: a box ``(west, east, south, north)`` of a tile layout, in degrees
Box = tuple[float, float, float, float]


def _pixel_groups(info: np.ndarray) -> list[list[int]]:
    """Indices of the tiles of each pixel size ``(dx, dy)`` (equal to 1e-9 relative), finest first."""
    groups: list[tuple[float, float, list[int]]] = []
    for k, (dx, dy) in enumerate(info[:, 4:6]):
        for gdx, gdy, members in groups:
            if abs(dx - gdx) <= 1e-9 * gdx and abs(dy - gdy) <= 1e-9 * gdy:
                members.append(k)
                break
        else:
            groups.append((float(dx), float(dy), [k]))
    groups.sort(key=lambda g: (g[0] * g[1], g[0]))
    return [members for _, _, members in groups]


def _layout_gaps(info: np.ndarray, min_width: float = 0.0, min_height: float = 0.0) -> list[Box]:
    """The boxes of the tiles' layout (the grid of all their edges) that no tile covers; boxes
    narrower than ``min_width`` or lower than ``min_height`` (the slivers between tiles of
    different pixel sizes, whose edges differ by part of a pixel) are left out."""
    xs = sorted({round(v, 9) for v in (*info[:, 0], *info[:, 2])})
    ys = sorted({round(v, 9) for v in (*info[:, 1], *info[:, 3])})
    gaps = []
    for x0, x1 in itertools.pairwise(xs):
        if x1 - x0 < min_width:
            continue
        for y0, y1 in itertools.pairwise(ys):
            if y1 - y0 < min_height:
                continue
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            if not ((info[:, 0] < cx) & (cx < info[:, 2]) & (info[:, 1] < cy) & (cy < info[:, 3])).any():
                gaps.append((x0, x1, y0, y1))
    return gaps


def _check_tiles(
    files: list[pathlib.Path], what: str, *, mixed_sizes: bool = False
) -> tuple[list[list[int]], list[Box], list[list[Box]]]:
    """Check tiles and group them by pixel size.

    Tiles of one pixel size must lie on one pixel lattice, and no two tiles may overlap
    (SRTM-style tiles of one pixel size may share their edge row and column). Tiles of
    several pixel sizes (the Copernicus DEM's widen in longitude north of 50 deg N) are
    refused unless ``mixed_sizes``.

    Returns
    -------
    groups
        Indices into ``files`` of the tiles of each pixel size, finest first.
    gaps
        The boxes ``(west, east, south, north)`` of the whole layout that no tile covers
        (open sea: the Copernicus DEM has no tiles there), for the warning.
    group_gaps
        The same boxes of each group's own layout, to fill with no data in its mosaic.
    """
    info = np.array([_tile_info(f) for f in files], dtype=float)  # west, south, east, north, dx, dy
    groups = _pixel_groups(info)
    if len(groups) > 1 and not mixed_sizes:
        sizes = "; ".join(f"{info[g[0], 4]:.9g} x {info[g[0], 5]:.9g} ({files[g[0]].name})" for g in groups)
        dx, dy = info[groups[0][0], 4:6]
        raise DataFormatError(
            f"{what}: tiles with different pixel sizes (degrees: {sizes}); resample them to one grid "
            f"first, e.g. `gdalwarp -tr {dx:.9g} {dy:.9g} -r mode tiles/*.tif out.tif` (mode for classes), "
            "and give that file."
        )
    for g in groups:
        # on one pixel lattice (tiles offset by half a pixel had been reported as a gap)
        ref = g[0]
        off_x = (info[g, 0] - info[ref, 0]) / info[ref, 4]
        off_y = (info[g, 3] - info[ref, 3]) / info[ref, 5]
        bad = np.flatnonzero((np.abs(off_x - off_x.round()) > 1e-3) | (np.abs(off_y - off_y.round()) > 1e-3))
        if bad.size:
            k = int(bad[0])
            raise DataFormatError(
                f"{what}: {files[g[k]].name} is not on the pixel grid of {files[ref].name} (offset by "
                f"{round(off_x[k] - off_x[k].round(), 3):+g} x {round(off_y[k] - off_y[k].round(), 3):+g} pixels of "
                f"{info[ref, 4]:.9g} x {info[ref, 5]:.9g} degrees); give the tiles of each pixel size on one "
                "grid (resample with gdalwarp -tap, or build a VRT)."
            )
    # SRTM-style tiles of one pixel size share their edge row and column (one pixel): more is an
    # overlap; tiles of different pixel sizes may only touch
    group_of = np.empty(len(files), int)
    for n, g in enumerate(groups):
        group_of[g] = n
    for i in range(len(files) - 1):
        w, s_, e, n, dx, dy = info[i]
        o = info[i + 1 :]
        same = group_of[i + 1 :] == group_of[i]
        eps_x = np.where(same, 1.001 * dx, 1e-3 * np.minimum(dx, o[:, 4]))
        eps_y = np.where(same, 1.001 * dy, 1e-3 * np.minimum(dy, o[:, 5]))
        hit = np.flatnonzero((o[:, 0] < e - eps_x) & (o[:, 2] > w + eps_x) & (o[:, 1] < n - eps_y) & (o[:, 3] > s_ + eps_y))
        if hit.size:
            j = i + 1 + int(hit[0])
            raise DataFormatError(
                f"{what}: {files[i].name} and {files[j].name} overlap (lon {max(w, info[j, 0]):g}..{min(e, info[j, 2]):g}, "
                f"lat {max(s_, info[j, 1]):g}..{min(n, info[j, 3]):g}): a tile given twice, or a VRT together with "
                "its tiles. Give each area once."
            )
    if len(groups) == 1:
        gaps = _layout_gaps(info)
        return groups, gaps, [gaps]
    gaps = _layout_gaps(info, 1.001 * info[:, 4].max(), 1.001 * info[:, 5].max())
    return groups, gaps, [_layout_gaps(info[g]) for g in groups]


def _warn_gaps(what: str, gaps: list[Box], stacklevel: int) -> None:
    import warnings

    if not gaps:
        return
    listed = "; ".join(f"lon {x0:g}..{x1:g}, lat {y0:g}..{y1:g}" for x0, x1, y0, y1 in gaps[:4])
    warnings.warn(
        f"{what}: no tile covers {len(gaps)} box(es) of the tiles' layout ({listed}"
        f"{'; ...' if len(gaps) > 4 else ''}): read as no data (NaN), as over open sea, where the Copernicus "
        "DEM has no tiles. Add the tiles if there is land there.",
        RuntimeWarning,
        stacklevel=stacklevel + 1,
    )


def _mosaic(
    tiles: list[xr.DataArray], files: list[pathlib.Path], what: str, gaps: list[Box], *, warn: bool = True
) -> xr.DataArray:
    """The tiles (of one pixel grid) as one lazy map; the boxes of ``gaps`` are no data (NaN),
    with a warning naming them unless ``warn`` is false."""
    import dask.array as dsk

    if len(tiles) == 1:
        return tiles[0]
    name = tiles[0].name
    if warn:
        _warn_gaps(what, gaps, stacklevel=3)
    filled = [t.astype("float32") for t in tiles] if gaps else list(tiles)
    for x0, x1, y0, y1 in gaps:
        # the coordinates of the tiles in the same column / row (the same floats), else the lattice's
        def along(dim: str, lo: float, hi: float) -> np.ndarray:
            for t in tiles:
                v = t[dim].values
                step = abs(float(v[1] - v[0])) if v.size > 1 else 0.0
                if v.size > 1 and abs(v.min() - step / 2 - lo) < step / 2 and abs(v.max() + step / 2 - hi) < step / 2:
                    return v
            v = tiles[0][dim].values
            step = abs(float(v[1] - v[0]))
            return lo + step * (np.arange(round((hi - lo) / step)) + 0.5)

        lat, lon = along("lat", y0, y1), along("lon", x0, x1)
        data = dsk.full((lat.size, lon.size), np.nan, dtype=np.float32, chunks=2048)
        filled.append(xr.DataArray(data, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"), name=name))
    try:
        out = xr.combine_by_coords([t.to_dataset(name=name) for t in filled], combine_attrs="drop_conflicts")[name]
        return out.drop_duplicates(["lat", "lon"])  # (the shared edge row and column of SRTM-style tiles)
    except Exception as err:
        raise DataFormatError(f"{what}: cannot mosaic the tiles {[f.name for f in files][:6]} ({err}).") from err


def open_dem(
    path: PathLike | Sequence[PathLike], *, chunks: int | None = 2048
) -> xr.DataArray | tuple[xr.DataArray, ...]:
    """A DEM as ``elevation (lat, lon)`` in metres, from GeoTIFF tiles, a VRT or netCDF.

    Several tiles are mosaicked lazily (``xarray.combine_by_coords`` of dask-backed
    tiles); tiles of one pixel size must share one pixel grid, and no two tiles may
    overlap. A box of their layout that no tile covers (open sea, where the Copernicus
    DEM has no tiles) is no data (NaN), with a warning naming it.

    Tiles of several pixel sizes - the Copernicus DEM's (GLO-30, GLO-90) widen in
    longitude north of 50 deg N - are grouped by pixel size and each group is
    mosaicked alone: the result is then a tuple of such maps, one per pixel size
    (finest first), each covering its own tiles (NaN in the boxes of its layout no tile
    of its size covers). :func:`xsomo.drivers.features.subgrid_moments` and
    :func:`~xsomo.drivers.features.static_features` take that tuple and pool the
    groups' moments in each target cell, as the moments of all the fine pixels there.

    Parameters
    ----------
    path
        A file, a folder (its ``.tif``, ``.tiff``, ``.vrt`` and ``.nc`` files), a glob, or
        a list of files.
    chunks
        Dask chunk size (pixels) of the tiles.

    Returns
    -------
    xarray.DataArray or tuple of xarray.DataArray
        ``elevation`` (float32, m), ascending ``lat``/``lon``: one map when all tiles have
        one pixel size, else one map per pixel size, finest first.

    Raises
    ------
    MissingVariableError
        No file at ``path``.
    DataFormatError
        Tiles that overlap or, of one pixel size, are not on one pixel grid (named); a
        netCDF DEM given together with tiles of several pixel sizes; a projected CRS; or
        unreadable files.
    UnitError
        Elevations outside -500..9000 m (e.g. a DEM in feet or centimetres).
    """
    files = _paths(path, "DEM")
    tifs = [f for f in files if f.suffix.lower() in (".tif", ".tiff", ".vrt")]
    if len(tifs) > 1:
        groups, gaps, group_gaps = _check_tiles(tifs, "DEM", mixed_sizes=True)
    else:
        groups, gaps, group_gaps = [list(range(len(tifs)))], [], [[]]
    if len(groups) > 1 and len(tifs) < len(files):
        others = [f.name for f in files if f not in tifs]
        raise DataFormatError(
            f"DEM: netCDF file(s) {others[:3]} given with GeoTIFF tiles of {len(groups)} pixel sizes; give the "
            "netCDF DEM alone, or its area as GeoTIFF tiles."
        )
    tiles = [open_raster(f, chunks=chunks).rename("elevation") for f in files]
    label = _one_label([t.attrs.get("units") for t in tiles], files, "DEM")
    if len(groups) == 1:
        dem = _mosaic(tiles, files, "DEM", gaps)
        return _dem_in_metres(dem, label, ", ".join(f.name for f in files[:3]))
    # tiles of several pixel sizes: a map per size (resampling them to one grid would change
    # the sub-grid std); the gaps of the whole layout are named once
    _warn_gaps("DEM", gaps, stacklevel=2)
    return tuple(
        _dem_in_metres(
            _mosaic([tiles[k] for k in g], [tifs[k] for k in g], "DEM", fill, warn=False),
            label,
            ", ".join(tifs[k].name for k in g[:3]),
        )
        for g, fill in zip(groups, group_gaps, strict=True)
    )


def _dem_in_metres(dem: xr.DataArray, label: str | None, source: str) -> xr.DataArray:
    """A mosaic as float32 metres with CF attributes, its pixels checked for plausibility."""
    dem = dem.astype("float32")
    if label is not None:  # band units (a DEM in feet had been read as metres)
        dem = xu.convert(dem.assign_attrs(units=label), "m", name="elevation", source=source).astype("float32")
    dem.attrs = {"units": "m", "long_name": "surface elevation above sea level", "standard_name": "surface_altitude"}
    step = max(1, int(np.ceil(np.sqrt(dem.size / 1e6))))
    xu.check_plausible(dem.isel(lat=slice(None, None, step), lon=slice(None, None, step)), "elevation_mean", source=source, label=label)
    # every pixel too, when it is read (voids of -32768 without a nodata tag between the
    # sampled pixels had passed: cell means 3 m low, sub-grid std 314 m instead of 0)
    return _checked_pixels(dem, "elevation_mean", source=source)


def _one_label(labels: Sequence[str | None], files: Sequence[pathlib.Path], what: str) -> str | None:
    """The one units label of several files (``None`` when none has one); different ones are refused."""
    have = {str(u) for u in labels if u not in (None, "")}
    if len(have) > 1 or (have and len(have) != len({str(u) for u in labels})):
        listed = ", ".join(f"{f.name}: {u!r}" for f, u in zip(files, labels, strict=True))
        raise DataFormatError(f"{what}: the files are in different units ({listed}); give them in one unit.")
    return have.pop() if have else None


def _checked_pixels(da: xr.DataArray, name: str, *, source: str) -> xr.DataArray:
    """``da`` whose blocks raise :class:`~xsomo.exceptions.UnitError` when read if a pixel leaves the
    physical range of ``name`` (numpy data are checked at once)."""
    import dask.array as dsk

    def check(block: np.ndarray) -> np.ndarray:
        sample = xr.DataArray(block.reshape(-1), dims="pixel")
        xu.check_plausible(sample, name, source=source)
        return block

    if isinstance(da.data, dsk.Array):
        return da.copy(data=da.data.map_blocks(check, dtype=da.dtype))
    check(np.asarray(da.values))
    return da


# ---------------------------------------------------------------------- land cover
def landcover_fractions(classes: xr.DataArray, kind: str) -> xr.Dataset:
    """Forest and short-vegetation fractions (0-1) of every pixel of a class map.

    Parameters
    ----------
    classes
        Integer class codes of ``kind``.
    kind
        ``"esa_cci"`` or ``"cgls_lc100"`` (:data:`LANDCOVER_CLASSES`).

    Returns
    -------
    xarray.Dataset
        ``forest_fraction`` and ``shortveg_fraction`` (float32; NaN where no data).

    Raises
    ------
    XsomoValueError
        Unknown ``kind``, or codes that are not classes of ``kind`` (the wrong product).

    Examples
    --------
    >>> da = xr.DataArray([[50, 130], [100, 0]], dims=("lat", "lon"))
    >>> f = landcover_fractions(da, "esa_cci")
    >>> f["forest_fraction"].values.tolist()
    [[1.0, 0.0], [0.6000000238418579, nan]]
    """
    if kind not in LANDCOVER_CLASSES:
        raise XsomoValueError(f"land-cover kind {kind!r}: use one of {sorted(LANDCOVER_CLASSES)}.")
    table = LANDCOVER_CLASSES[kind]
    codes = np.array(sorted(table), dtype=np.int64)
    forest = np.array([table[c][0] for c in codes], np.float32)
    short = np.array([table[c][1] for c in codes], np.float32)

    def lookup(values: np.ndarray, col: np.ndarray) -> np.ndarray:
        v = np.asarray(values)
        finite = np.isfinite(v) if v.dtype.kind == "f" else np.ones(v.shape, bool)
        if v.dtype.kind == "f" and (finite & (v != np.round(v))).any():
            # (a fraction map or a bilinearly resampled class map had been truncated to codes)
            odd = np.unique(v[finite & (v != np.round(v))])[:5]
            raise XsomoValueError(
                f"land-cover values such as {', '.join(f'{x:g}' for x in odd)} are not whole class codes of {kind}: "
                "a continuous map (e.g. fractions) or classes resampled bilinearly. Give the product's class "
                "map (resampled by nearest neighbour or mode), or fractions as landcover kind 'fractions'."
            )
        iv = np.where(finite, v, _NODATA_CLASS).astype(np.int64)
        idx = np.clip(np.searchsorted(codes, iv), 0, codes.size - 1)
        known = codes[idx] == iv
        unknown = finite & ~known & (iv != _NODATA_CLASS)
        if unknown.any():
            bad = sorted({int(x) for x in np.unique(iv[unknown])[:10]})
            signed = all(x < 0 and (x + 256) in table for x in bad)
            raise XsomoValueError(
                f"land-cover codes {bad} are not {kind} classes (known: {codes.min()}..{codes.max()}); "
                + (
                    f"they look like unsigned bytes read as signed ({bad[0]} is {bad[0] + 256}): set the "
                    "variable's _Unsigned = 'true' attribute (as ESA CCI's files do) or convert it to uint8."
                    if signed else "check kind= (esa_cci or cgls_lc100) or the file."
                )
            )  # fmt: skip
        return np.where(known & finite, col[idx], np.float32(np.nan)).astype(np.float32)

    # the wrong product shows on a sample at once (the lazy lookup checks every pixel later)
    dims = [d for d in classes.dims if classes.sizes[d] > 1]
    step = max(1, int(np.ceil((classes.size / 1e6) ** (1.0 / max(len(dims), 1)))))
    sample = np.asarray(classes.isel({d: slice(None, None, step) for d in dims}).values)
    lookup(sample, forest)
    if not (np.isfinite(sample) & (sample != _NODATA_CLASS)).any():
        raise XsomoValueError(
            f"the land-cover map holds no {kind} class on {sample.size} sampled pixels (all no data, "
            f"class {_NODATA_CLASS}): every fraction would be missing. Check the file and kind=."
        )
    out = {}
    for name, col, long_name in (
        ("forest_fraction", forest, "forest cover fraction"),
        ("shortveg_fraction", short, "short vegetation cover fraction"),
    ):
        da = xr.apply_ufunc(lookup, classes, kwargs={"col": col}, dask="parallelized", output_dtypes=[np.float32])
        da.attrs = {"units": "1", "long_name": long_name, "standard_name": "area_fraction", "landcover_kind": kind}
        out[name] = da
    return xr.Dataset(out)


#: The class layer of a land-cover product's netCDF files (beside flags and a grid mapping).
LANDCOVER_VARIABLES: dict[str, tuple[str, ...]] = {"esa_cci": ("lccs_class",)}


def open_landcover(
    path: PathLike | Sequence[PathLike], kind: str, *, chunks: int | None = 2048
) -> xr.Dataset:
    """A categorical land-cover map (GeoTIFF tiles, VRT or netCDF) as fractions.

    See :func:`landcover_fractions` for ``kind`` and :data:`LANDCOVER_CLASSES` for the tables.
    """
    files = _paths(path, "land cover")
    tifs = [f for f in files if f.suffix.lower() in (".tif", ".tiff", ".vrt")]
    gaps = _check_tiles(tifs, "land cover")[1] if len(tifs) > 1 else []
    tiles = [open_raster(f, chunks=chunks, prefer=LANDCOVER_VARIABLES.get(kind, ())).rename("classes") for f in files]
    classes = _mosaic(tiles, files, "land cover", gaps)
    try:
        return landcover_fractions(classes, kind)
    except XsomoValueError as err:
        raise XsomoValueError(f"{', '.join(f.name for f in files[:3])}: {err}") from err


# ---------------------------------------------------------------------- SoilGrids
def _check_soil_labels(prop: str, by_depth: Mapping[tuple[float, float], pathlib.Path], units: str) -> None:
    """GeoTIFF band units that contradict the declared ``units`` (percent tagged '%' declared
    g/kg had been read 10x too small)."""
    import rasterio

    declared = {"g/kg": "g/kg", "g kg-1": "g/kg", "percent": "percent", "%": "percent", "1": "1"}[units]
    for f in by_depth.values():
        if f.suffix.lower() not in (".tif", ".tiff", ".vrt"):
            continue
        try:
            with rasterio.open(f) as src:
                label = (src.units or (None,))[0]
        except Exception:  # unreadable: open_raster names it
            continue
        if not label:
            continue
        if not xu.same_unit(label, declared):  # (declared chooses the factor: the unit, not only its factor)
            raise DataFormatError(
                f"SoilGrids {prop}: {f.name} is tagged in {label!r} but units={units!r} was given; "
                "give the units of the files (soil: units: in the sources file)."
            )


_SOIL_NAME = re.compile(r"(sand|clay)[_-](\d+)-(\d+)\s*cm(?:[_-]([A-Za-z][\w.]*?))?(?:\.[A-Za-z]+)?$", re.IGNORECASE)
#: The statistic of SoilGrids' maps xsomo reads (ISRIC also ships Q0.05, Q0.5, Q0.95, uncertainty).
SOIL_STATISTIC = "mean"


def _axis(da: xr.DataArray, dim: str, f: pathlib.Path, what: str) -> tuple[float, float, int]:
    """``(first centre, step, size)`` of a regular axis (a single pixel has step 0)."""
    v = np.asarray(da[dim].values, float)
    if v.size < 2:
        return (float(v[0]) if v.size else np.nan), 0.0, int(v.size)
    step = (v[-1] - v[0]) / (v.size - 1)
    if np.abs(v - (v[0] + step * np.arange(v.size))).max() > 0.01 * abs(step):
        raise DataFormatError(f"{what}: {f.name} is not on a regular {dim} grid; resample it to one (gdalwarp).")
    return float(v[0]), float(step), int(v.size)


def _on_one_grid(maps: list[xr.DataArray], files: list[pathlib.Path], what: str) -> list[xr.DataArray]:
    """``maps`` on the pixel grid of the first, cropped to the area all of them cover.

    Only an exact match is put on one grid: the same pixel size, and pixel edges on the first
    map's (both to 1/100 of a pixel), as files of one product downloaded with different boxes.
    A map of another pixel size, or offset by part of a pixel, would need resampling: it is
    refused, naming it.
    """
    if len(maps) < 2:
        return maps
    ref, ref_file = maps[0], files[0]
    crop: list[dict[str, slice]] = [{} for _ in maps]
    coords: dict[str, np.ndarray] = {}
    axes = {dim: _axis(ref, dim, ref_file, what) for dim in ("lat", "lon")}
    (y0, dy, ny), (x0, dx, nx) = axes["lat"], axes["lon"]
    warp = (
        f"gdalwarp -te {x0 - dx / 2:.9g} {y0 - dy / 2:.9g} {x0 + dx * (nx - 0.5):.9g} {y0 + dy * (ny - 0.5):.9g} "
        f"-tr {abs(dx):.9g} {abs(dy):.9g} -r average"
    )
    for dim in ("lat", "lon"):
        r0, rs, rn = axes[dim]
        offsets = []
        for da, f in zip(maps, files, strict=True):
            v0, vs, vn = _axis(da, dim, f, what)
            if rs == 0 or vs == 0:  # a single row or column: only the same one
                if rn != vn or not np.allclose(da[dim].values, ref[dim].values, rtol=0, atol=1e-9):
                    raise DataFormatError(
                        f"{what}: {f.name} and {ref_file.name} hold different {dim} coordinates; give every "
                        "depth on one grid (the same download box)."
                    )
                offsets.append(0)
                continue
            off = (v0 - r0) / rs
            if abs(vs - rs) * max(vn, rn) > 0.01 * abs(rs) or abs(off - round(off)) > 0.01:
                also = (
                    f"pixels of {abs(vs):.9g} degrees, not {abs(rs):.9g}" if abs(vs - rs) * max(vn, rn) > 0.01 * abs(rs)
                    else f"its {dim} pixel edges offset by {off - round(off):+.3g} pixels"
                )  # fmt: skip
                raise DataFormatError(
                    f"{what}: {f.name} is not on the pixel grid of {ref_file.name} ({also}): adding the depths "
                    "would need resampling. Download every depth with the same box and resolution, or resample "
                    f"{f.name} onto {ref_file.name}'s grid (e.g. `{warp} {f.name} out.tif`)."
                )
            offsets.append(round(off))
        lo = max(offsets)
        hi = min(k + da.sizes[dim] for k, da in zip(offsets, maps, strict=True))
        if hi <= lo:
            raise DataFormatError(
                f"{what}: the files {[f.name for f in files[:4]]} have no {dim} in common; give every depth "
                "over the same area."
            )
        for c, k in zip(crop, offsets, strict=True):
            c[dim] = slice(lo - k, hi - k)
        coords[dim] = ref[dim].values[lo:hi]
    # the same coordinates exactly (xarray aligns floats by equality)
    return [da.isel(c).assign_coords(coords) for da, c in zip(maps, crop, strict=True)]


def _depth_weights(intervals: list[tuple[float, float]], top: float, bottom: float) -> np.ndarray:
    w = np.array([max(0.0, min(b, bottom) - max(t, top)) for t, b in intervals])
    return w / (bottom - top)


def open_soilgrids(
    path: PathLike | Sequence[PathLike] | Mapping[str, PathLike],
    *,
    units: str = "g/kg",
    chunks: int | None = 2048,
) -> xr.Dataset:
    """SoilGrids sand and clay by depth interval, weighted to the top and sub layers, as fractions.

    Parameters
    ----------
    path
        Files named like SoilGrids' (``sand_0-5cm_mean.tif``, ``clay_15-30cm_mean.tif``):
        a folder, a glob or a list; all on one grid.
    units
        Units of the values: ``"g/kg"`` (SoilGrids' mapped units), ``"percent"`` or ``"1"``.

    Returns
    -------
    xarray.Dataset
        ``sand_top``, ``clay_top`` (0-30 cm) and ``sand_sub``, ``clay_sub`` (30-100 cm):
        the thickness-weighted means of the intervals overlapping each layer, in 0-1.

    Raises
    ------
    MissingVariableError
        An interval needed to cover 0-100 cm is missing (the gap is named).
    UnitError
        Values outside 0-1 after conversion (e.g. g/kg passed as percent).
    """
    factor = {"g/kg": 1e-3, "g kg-1": 1e-3, "percent": 1e-2, "%": 1e-2, "1": 1.0}.get(units)
    if factor is None:
        raise XsomoValueError(f"soil units {units!r}: use 'g/kg', 'percent' or '1'.")
    files = _paths(list(path.values()) if isinstance(path, Mapping) else path, "SoilGrids")
    found: dict[str, dict[tuple[float, float], pathlib.Path]] = {"sand": {}, "clay": {}}
    others: dict[tuple[str, float, float], list[str]] = {}
    for f in files:
        m = _SOIL_NAME.search(f.name)
        if not m:
            continue
        prop, key, stat = m.group(1).lower(), (float(m.group(2)), float(m.group(3))), m.group(4)
        if stat is not None and stat.split("_")[0].lower() != SOIL_STATISTIC:  # (mean_1000: the aggregated maps)
            # the quantile and uncertainty maps beside the means (the last name in sort order,
            # '_uncertainty', had been read as the mean: sand 0.012 instead of 0.233)
            others.setdefault((prop, *key), []).append(f.name)
            continue
        if key in found[prop]:
            raise DataFormatError(
                f"SoilGrids {prop} {key[0]:g}-{key[1]:g} cm: two files, {found[prop][key].name} and {f.name}; "
                f"give one ({prop}_{key[0]:g}-{key[1]:g}cm_{SOIL_STATISTIC}.tif)."
            )
        found[prop][key] = f
    layers: list[tuple[str, str, float, float, list[tuple[pathlib.Path, float]]]] = []
    for prop, by_depth in found.items():
        intervals = sorted(by_depth)
        for (t0, b0), (t1, b1) in itertools.pairwise(intervals):
            if t1 < b0:  # (0-30 cm beside 0-5, 5-15, 15-30 had been counted twice: sand 0.60 for 0.30)
                raise DataFormatError(
                    f"SoilGrids {prop}: the intervals {t0:g}-{b0:g} cm ({by_depth[(t0, b0)].name}) and "
                    f"{t1:g}-{b1:g} cm ({by_depth[(t1, b1)].name}) overlap; give intervals that do not "
                    "(SoilGrids' own: 0-5, 5-15, 15-30, 30-60, 60-100 cm)."
                )
        _check_soil_labels(prop, by_depth, units)
        for layer, (top, bottom) in SOIL_LAYERS.items():
            covered = sum(max(0.0, min(b, bottom) - max(t, top)) for t, b in intervals)
            if covered < bottom - top - 1e-9:
                have = ", ".join(f"{t:g}-{b:g}" for t, b in intervals) or "none"
                skipped = sorted(n for (pr, *_), names in others.items() if pr == prop for n in names)
                also = (
                    f" (read: the {SOIL_STATISTIC} maps only; skipped {skipped[:4]}{' ...' if len(skipped) > 4 else ''})"
                    if skipped else ""
                )  # fmt: skip
                raise MissingVariableError(
                    f"SoilGrids {prop}: the intervals ({have} cm) do not cover {top:g}-{bottom:g} cm{also}; "
                    f"add the missing {prop}_<top>-<bottom>cm_{SOIL_STATISTIC} files."
                )
            w = _depth_weights(intervals, top, bottom)
            parts = [(by_depth[k], float(wk)) for k, wk in zip(intervals, w, strict=True) if wk != 0]
            layers.append((prop, layer, top, bottom, parts))
    # every depth (and both properties) on one pixel grid: depth files from WCS requests of
    # different boxes had been added by their float coordinates, NaN wherever they differed
    # (a box 3 pixels off: 334 NaN columns; half a pixel off: all NaN; QA)
    needed = list(dict.fromkeys(f for *_, parts in layers for f, _ in parts))
    maps = dict(zip(needed, _on_one_grid([open_raster(f, chunks=chunks) for f in needed], needed, "SoilGrids"), strict=True))
    out = {}
    for prop, layer, top, bottom, parts in layers:
        acc = None
        for f, wk in parts:
            da = maps[f].astype("float32") * np.float32(wk * factor)
            acc = da if acc is None else acc + da
        name = f"{prop}_{layer}"
        acc = acc.astype("float32")
        acc.attrs = {"units": "1", "long_name": f"{prop} fraction of the {'topsoil' if layer == 'top' else 'subsoil'} ({top:g}-{bottom:g} cm)"}
        out[name] = acc
    ds = xr.Dataset(out)
    sources = {f"{prop}_{layer}": [f.name for f, _ in parts] for prop, layer, _, _, parts in layers}
    for name in ds.data_vars:
        da = ds[name]
        step = max(1, int(np.ceil(np.sqrt(da.size / 1e6))))
        xu.check_plausible(  # (named the first three files of the folder, of either property)
            da.isel(lat=slice(None, None, step), lon=slice(None, None, step)),
            name, source=", ".join(sources[str(name)]), label=units,
        )
    return ds
