"""A STAC catalogue of xsomo outputs, so that catalogue tools (STAC browsers, QGIS's STAC
data source, pystac-client) find the files.

:func:`stac_catalog` (``xsomo stac OUTPUT --out catalog/``) makes one STAC Item per SoMo.ml
file -- its period (``start_datetime``/``end_datetime``), soil layer and depths, bounding box
and footprint, CRS (projection extension v2: ``proj:code`` EPSG:4326, shape, transform) and one asset with
the roles ``data`` -- or one Item for a Zarr store, and writes a self-contained catalogue
(``catalog.json`` and ``<item>/<item>.json``, asset links relative).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo._version import __version__
from xsomo.exceptions import DataFormatError

__all__ = ["PROJECTION_EXTENSION", "stac_catalog", "stac_item"]

#: The STAC projection extension the items declare.
PROJECTION_EXTENSION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
_MEDIA = {".nc": "application/netcdf", ".zarr": "application/vnd+zarr"}


def _extent(ds: xr.Dataset) -> tuple[list[float], cv.GridSpec, pd.Timestamp, pd.Timestamp]:
    # float32 coordinates as their decimals (north 71.499997, a step of 0.100006 otherwise)
    lat = cv.decimal_coords(ds[cv.LAT].values)
    lon = cv.decimal_coords(ds[cv.LON].values)
    g = cv.GridSpec.from_coords(lat, lon)
    t = pd.DatetimeIndex(ds[cv.TIME].values)
    if t.size == 0:
        raise DataFormatError("no time steps: an empty file cannot be catalogued")
    return [g.west, g.south, g.east, g.north], g, t.min(), t.max()


def _wgs84(bbox: list[float]) -> tuple[list[float], dict[str, Any]]:
    """The bbox and footprint in GeoJSON's -180..180 longitudes (RFC 7946): a grid in 0..360
    crossing 180° gets west > east and a MultiPolygon split at 180° (a bbox of 178..182 was out
    of the specification, and STAC searches misplaced the item).

    >>> _wgs84([178.0, 40.0, 182.0, 42.0])[0]
    [178.0, 40.0, -178.0, 42.0]
    >>> _wgs84([10.0, 40.0, 20.0, 42.0])[1]["type"]
    'Polygon'
    """
    import shapely

    west, south, east, north = bbox
    if east - west >= 360.0:
        return [-180.0, south, 180.0, north], shapely.geometry.mapping(shapely.box(-180.0, south, 180.0, north))

    def wrap(x: float) -> float:
        return float(round((x + 180.0) % 360.0 - 180.0, 9))

    w, e = wrap(west), wrap(east)
    if e == -180.0:
        e = 180.0
    if w < e:
        return [w, south, e, north], shapely.geometry.mapping(shapely.box(w, south, e, north))
    parts = shapely.MultiPolygon([shapely.box(w, south, 180.0, north), shapely.box(-180.0, south, e, north)])
    return [w, south, e, north], shapely.geometry.mapping(parts)


def stac_item(path: str | os.PathLike[str], ds: xr.Dataset, *, layer: int | None, item_id: str) -> Any:
    """One STAC Item for a file or store ``path`` holding ``ds`` (already open, lazily)."""
    import pystac

    grid_bbox, g, t0, t1 = _extent(ds)
    bbox, footprint = _wgs84(grid_bbox)
    props: dict[str, Any] = {
        "start_datetime": f"{t0:%Y-%m-%d}T00:00:00Z",
        "end_datetime": f"{t1:%Y-%m-%d}T23:59:59Z",
        "proj:code": cv.CRS,
        "proj:shape": [g.nlat, g.nlon],
        "proj:transform": [g.resolution, 0.0, g.west, 0.0, -g.resolution, g.north],
        "xsomo:variable": "volumetric soil moisture (m3 m-3)",
        "xsomo:days": int(ds.sizes[cv.TIME]),
        "created_by": f"xsomo {__version__}",
    }
    if layer is not None:
        lay = cv.layer_by_number(layer)
        props.update({"xsomo:layer": layer, "xsomo:depth_top_m": lay.top, "xsomo:depth_bottom_m": lay.bottom})
    else:
        layers = [int(v) for v in np.atleast_1d(ds[cv.LAYER].values)] if cv.LAYER in ds.coords else []
        props["xsomo:layers"] = layers
    item = pystac.Item(
        id=item_id,
        geometry=footprint,
        bbox=bbox,
        datetime=None,
        properties=props,
        stac_extensions=[PROJECTION_EXTENSION],
    )
    path = pathlib.Path(path).resolve()
    suffix = ".zarr" if path.is_dir() else path.suffix
    item.add_asset(
        "data",
        pystac.Asset(
            href=str(path),
            media_type=_MEDIA.get(suffix, "application/octet-stream"),
            roles=["data"],
            title=f"soil moisture{f', layer {layer}' if layer is not None else ''}, {t0:%Y-%m-%d} to {t1:%Y-%m-%d}",
        ),
    )
    return item


def _remove_old_items(out: pathlib.Path, keep: set[str]) -> None:
    """Remove the item folders of an earlier catalogue in ``out`` that this one does not hold
    (a folder holding nothing but its ``<name>.json`` STAC Item): they had stayed beside the
    new catalogue, unlinked, still pointing at the earlier files."""
    import json

    for folder in out.iterdir():
        item = folder / f"{folder.name}.json"
        if folder.name in keep or not folder.is_dir() or [p.name for p in folder.iterdir()] != [item.name]:
            continue
        try:
            doc = json.loads(item.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("type") == "Feature" and "stac_version" in doc:
            item.unlink()
            folder.rmdir()


def stac_catalog(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    title: str = "xsomo soil moisture",
    catalog_id: str = "xsomo",
) -> pathlib.Path:
    """Write a STAC catalogue of a folder of SoMo.ml files or of a Zarr store.

    Parameters
    ----------
    source
        A folder of ``SoMo.ml-EU_layer{N}_{YYYY}.nc`` files (as :func:`xsomo.open_somo`
        reads them), one such file, or a ``.zarr`` store with ``sm(layer, time, lat, lon)``.
    out
        Folder of the catalogue (``catalog.json``; created).
    title, catalog_id
        The catalogue's title and id.

    Returns
    -------
    pathlib.Path
        ``out/catalog.json``.

    Raises
    ------
    DataFormatError
        ``source`` holds no SoMo.ml file and is no Zarr store.
    """
    import pystac

    from xsomo.io.somo import find_somo_files

    source = pathlib.Path(source).expanduser()
    out = pathlib.Path(out).expanduser()
    items = []
    if source.is_dir() and (source.suffix == ".zarr" or (source / ".zgroup").exists() or (source / "zarr.json").exists()):
        with xr.open_zarr(source) as ds:
            items.append(stac_item(source, ds, layer=None, item_id=source.stem))
    else:
        try:
            files = find_somo_files(source)
        except FileNotFoundError as err:
            raise DataFormatError(
                f"{source}: no SoMo.ml files (names like SoMo.ml-EU_layer1_2010.nc) and no Zarr store ({err})"
            ) from err
        for f in files:
            with xr.open_dataset(f.path, decode_times=True) as ds:
                items.append(stac_item(f.path, ds, layer=f.layer, item_id=f.path.stem))
    cat = pystac.Catalog(id=catalog_id, description=f"{title}: {len(items)} item(s) from {source}", title=title)
    cat.add_items(items)
    out.mkdir(parents=True, exist_ok=True)
    _remove_old_items(out, {it.id for it in items})
    cat.normalize_hrefs(str(out.resolve()))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out / "catalog.json"
