"""Reading SoMo.ml-EU / SoMo.ml v1 files with GDAL and numpy only (what ships with QGIS).

One netCDF per layer and year (``SoMo.ml-EU_layer{N}_{YYYY}.nc`` or
``SoMo.ml_v1_layer{N}_{YYYY}.nc``, also in one level of sub-folders) holding the variable
``layer{N}(time, lat, lon)``. GDAL's netCDF driver gives one band per day, north-up, with
the CRS from the file's grid mapping; the band's day comes from ``NETCDF_DIM_time`` and
the ``time#units`` metadata.

The anomaly is xsomo's period anomaly, from the one file that defines it
(``anomaly_kernels.py``, a git symlink to ``xsomo/evaluation/anomaly_kernels.py``, copied
into the plugin zip): the z-score of the period mean against the same calendar window in
every year that the files cover completely, ``z = (m_0 - mean_k m_k) / std_k(m_k, ddof=1)``,
at least three years; an end on 29 February moves to 28 February in common years.
"""

import datetime as dt
import glob
import os
import re

import numpy as np
from osgeo import gdal

from xsomo_qgis.anomaly_kernels import MIN_WINDOWS, period_zscore, year_windows

gdal.UseExceptions()

FILE_PATTERN = re.compile(
    r"^(?P<product>SoMo\.ml[-_.\w]*?)_layer(?P<layer>\d+)_(?P<year>\d{4})\.nc$"
)
#: ``NETCDF:"path":layerN`` (GDAL's name of one variable of a netCDF file)
SUBDATASET = re.compile(r'^NETCDF:"?(?P<path>.+?)"?:(?P<var>layer(?P<layer>\d+))$')
_UNITS = {
    "day": 86400.0,
    "days": 86400.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "minute": 60.0,
    "minutes": 60.0,
    "second": 1.0,
    "seconds": 1.0,
}


class SomoFileError(Exception):
    """A SoMo.ml file is missing or not as expected (the message names it)."""


def find_layer_files(folder, layer):
    """``{year: path}`` of one layer's files in ``folder`` (and its direct sub-folders)."""
    if not folder:
        raise SomoFileError("no folder given: choose the folder of the SoMo.ml-EU files")
    if not os.path.exists(folder):
        raise SomoFileError(f"the folder {folder} is missing (no such folder); check the path")
    if not os.path.isdir(folder):
        raise SomoFileError(
            f"{folder} is a file, not a folder; choose the folder that holds the SoMo.ml-EU files"
        )
    out = {}
    matched = [
        (path, m)
        for path in sorted(
            glob.glob(os.path.join(folder, "*.nc")) + glob.glob(os.path.join(folder, "*", "*.nc"))
        )
        if (m := FILE_PATTERN.match(os.path.basename(path)))
    ]
    # one product at a time, as xsomo.open_somo: SoMo.ml-EU and SoMo.ml v1 days were stacked as one series
    products = sorted({m["product"] for _, m in matched})
    if len(products) > 1:
        raise SomoFileError(
            f"files of several products found in {folder}: {products}; use a folder that holds the files of "
            f"one product only (e.g. only the {products[0]}_layer*_*.nc files)"
        )
    for path, m in matched:
        if int(m["layer"]) == int(layer):
            year = int(m["year"])
            if year in out:
                raise SomoFileError(
                    f"two files for layer {layer}, year {year}: {out[year]} and {path}"
                )
            out[year] = path
    if not out:
        raise SomoFileError(
            f"no SoMo.ml files of layer {layer} in {folder} (names like SoMo.ml-EU_layer{layer}_2010.nc)"
        )
    return out


def _parse_units(units):
    m = re.match(
        r"^\s*(\w+)\s+since\s+(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?",
        units,
    )
    if not m or m.group(1).lower() not in _UNITS:
        raise SomoFileError(f"time units {units!r} are not 'days|hours|... since YYYY-MM-DD'")
    parts = [int(g) if g else 0 for g in m.groups()[1:]]
    return _UNITS[m.group(1).lower()], dt.datetime(*parts)


class LayerFile:
    """One file's variable ``layer{N}`` opened with GDAL: days, geotransform, reading."""

    def __init__(self, path, layer):
        self.path = path
        self.name = f'NETCDF:"{path}":layer{int(layer)}'
        if not os.path.isfile(path):
            raise SomoFileError(f"{path}: the file is missing")
        try:
            self.ds = gdal.Open(self.name)
        except RuntimeError as err:
            # GDAL says "No such file or directory" for a file that exists but is not netCDF
            raise SomoFileError(
                f"{path}: not a SoMo.ml netCDF file with a variable layer{layer}; the name matches "
                "the SoMo pattern but the content does not: re-download or re-write it with xsomo predict"
            ) from err
        md = self.ds.GetMetadata()
        units = md.get("time#units")
        if units is None:
            raise SomoFileError(f"{path}: the time variable has no units")
        scale, origin = _parse_units(units)
        days = []
        for b in range(1, self.ds.RasterCount + 1):
            v = self.ds.GetRasterBand(b).GetMetadataItem("NETCDF_DIM_time")
            if v is None:
                raise SomoFileError(f"{path}: band {b} has no time")
            days.append((origin + dt.timedelta(seconds=float(v) * scale)).date())
        self.days = days
        self.band_of = {d: i + 1 for i, d in enumerate(days)}
        check_coordinates(self)

    @property
    def geotransform(self):
        """GDAL's geotransform snapped to the grid (:func:`snap_geotransform`)."""
        return snap_geotransform(self.ds.GetGeoTransform(), (self.ds.RasterYSize, self.ds.RasterXSize))

    @property
    def projection(self):
        """The file's CRS (WKT); EPSG:4326 for a file without a grid mapping (older SoMo.ml v1 files), as xsomo."""
        return self.ds.GetProjection() or wkt_4326()

    @property
    def packing(self):
        """``(scale, offset, nodata)`` of a packed or filled file (int16 with ``scale_factor``/``add_offset``,
        a ``_FillValue`` such as -9999), as ``time_stack.vrt_xml`` unpacks it; None for float values
        with NaN as the missing ones."""
        band = self.ds.GetRasterBand(1)
        scale, offset, nodata = band.GetScale(), band.GetOffset(), band.GetNoDataValue()
        scale = 1.0 if scale is None else float(scale)
        offset = 0.0 if offset is None else float(offset)
        if nodata is not None and np.isnan(nodata):
            nodata = None
        if (scale, offset, nodata) == (1.0, 0.0, None):
            return None
        return scale, offset, nodata

    def read(self, day):
        """One day in m3 m-3 (float64): the file's nodata (``_FillValue``) NaN, packed integers unpacked
        (``value * scale_factor + add_offset``, as xarray decodes them for xsomo)."""
        band = self.ds.GetRasterBand(self.band_of[day])
        a = band.ReadAsArray().astype(np.float64)
        nodata = band.GetNoDataValue()
        if nodata is not None and not np.isnan(nodata):
            a[a == nodata] = np.nan
        scale, offset = band.GetScale(), band.GetOffset()
        if scale not in (None, 1.0):
            a *= scale
        if offset not in (None, 0.0):
            a += offset
        return a


class LayerFiles:
    """All files of one layer in a folder, read by day."""

    def __init__(self, folder, layer):
        self.layer = int(layer)
        self.files = {y: LayerFile(p, layer) for y, p in find_layer_files(folder, layer).items()}
        self.first = self.files[min(self.files)]
        for year in sorted(self.files):
            check_same_grid(self.first, self.files[year])
        self._where = {}
        for f in self.files.values():
            for d in f.days:
                self._where[d] = f

    def has(self, day):
        return day in self._where

    def _missing_file(self, years):
        """``"; the layer-N file for YYYY is probably missing from the folder ..."`` for the years within
        the files' range that have no file (as xsomo: "is a year's file missing from the folder?"), or ``""``."""
        gone = sorted(y for y in set(years) if min(self.files) < y < max(self.files) and y not in self.files)
        if not gone:
            return ""
        product = FILE_PATTERN.match(os.path.basename(self.first.path))["product"]
        which = ", ".join(str(y) for y in gone)
        names = ", ".join(f"{product}_layer{self.layer}_{y}.nc" for y in gone)
        return (
            f": the layer-{self.layer} file for {which} is probably missing from the folder ({names}); "
            "add it (or choose days of the years that have files)"
        )

    def _not_held(self, day):
        days = sorted(self._where)
        return SomoFileError(
            f"day {day} is not in the layer-{self.layer} files ({days[0]} ... {days[-1]})"
            + self._missing_file([day.year])
        )

    def file_of(self, day):
        """The :class:`LayerFile` holding ``day``."""
        if day not in self._where:
            raise self._not_held(day)
        return self._where[day]

    def read(self, day):
        return self.file_of(day).read(day)

    def band(self, day):
        """``(gdal dataset name, band number)`` of one day."""
        f = self._where.get(day)
        if f is None:
            raise self._not_held(day)
        return f.name, f.band_of[day]

    def window_mean(self, start, end):
        """Mean over the days ``start..end``; None unless the files hold every one of them."""
        n = (end - start).days + 1
        days = [start + dt.timedelta(days=i) for i in range(n)]
        if not all(self.has(d) for d in days):
            return None
        total = np.zeros_like(self.read(days[0]))
        count = np.zeros(total.shape)
        for d in days:
            a = self.read(d)
            ok = np.isfinite(a)
            total[ok] += a[ok]
            count[ok] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def anomaly(self, start, end):
        """``(z, n_years)``: the normalised anomaly of the mean over ``start..end``.

        The windows and the z-score come from ``anomaly_kernels`` (xsomo's own definition).
        """
        if end < start:
            raise SomoFileError(f"the period ends ({end}) before it starts ({start})")
        m0 = self.window_mean(start, end)
        if m0 is None:
            raise SomoFileError(
                f"the period {start} ... {end} is not covered by the layer-{self.layer} files"
                + self._missing_file(range(start.year, end.year + 1))
            )
        days = sorted(self._where)
        means = []
        try:
            windows = year_windows(start, end, days[0], days[-1])
        except ValueError as err:  # a period longer than a year
            raise SomoFileError(str(err)) from None
        for _, s, e in windows:
            m = self.window_mean(s, e)
            if m is not None:
                means.append(m)
        if len(means) < MIN_WINDOWS:
            raise SomoFileError(
                f"an anomaly needs the window in at least {MIN_WINDOWS} years of the files; found {len(means)}"
            )
        return period_zscore(m0, np.stack(means)), len(means)


def wkt_4326():
    """EPSG:4326 as WKT (the CRS xsomo gives SoMo.ml files without a grid mapping)."""
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    return srs.ExportToWkt()


def decimal_centre(c):
    """A cell-centre coordinate as xsomo reads it (``xsomo.conventions.decimal_coords``): a float32 value
    (``50.35`` stored as 50.349998474) as the shortest decimal that gives it back; others as they are."""
    c32 = np.float32(c)
    if not np.isfinite(c32) or abs(float(c32) - c) > 1e-9 * max(1.0, abs(c)):
        return float(c)  # not a float32 coordinate (GDAL's own arithmetic is within 1e-15 of it)
    v = float(c32)
    for digits in range(10):
        r = float(np.round(v, digits))
        if np.float32(r) == c32:
            return r
    return v


def _is_float32(c):
    """Whether ``c`` is (within GDAL's float64 arithmetic of 1e-9) a float32 value."""
    c32 = np.float32(c)
    return bool(np.isfinite(c32)) and abs(float(c32) - c) <= 1e-9 * max(1.0, abs(c))


def snap_geotransform(geotransform, shape):
    """``geotransform`` placed as xsomo places the grid: edges and steps exact from the centres.

    GDAL derives the geotransform from the files' first and last centre coordinates; float32
    coordinates give e.g. ``x0 = 10.000000217, dx = 0.099999948``, so a point on a cell edge (10.3)
    fell in the cell west of it and a polygon's edge through centres picked other cells than
    ``xsomo series``/``zonal``. As xsomo (``gis.export._exact_transform``, ``decimal_coords``,
    ``conventions.GridSpec.from_coords``): the first and last centres of each axis (float32 ones as
    their shortest decimals, :func:`decimal_centre`), the step ``(last - first) / (n - 1)`` taken as the
    nearer of its 6-decimal rounding and 1/k deg when within 1e-4 of it (:func:`axis_step`), the edge
    ``round(first - step / 2, 6)``.

    Kept as GDAL gives it (it is the files' coordinates as stored) where that would move an edge of
    the grid by more than the coordinates can be off: 1e-3 of a cell, or, for float32 centres, two
    float32 steps (ulps) of the coordinates, whichever is larger (float32 noise alone is 1e-5 deg
    near 180 deg, 1.5e-2 of a 0.001-degree cell: such fine grids had kept GDAL's noisy edges where
    xsomo snaps them). A rotated raster is kept.
    """
    x0, dx, rx, y0, ry, dy = (float(v) for v in geotransform)
    ny, nx = shape
    if rx or ry or not dx or not dy:
        return tuple(geotransform)

    def axis(origin, step, n):
        """``(edge, step, moved)``: the snapped axis, and how far it moves GDAL's edges over what
        the coordinates can be off (> 1: keep GDAL's)."""
        c0, c1 = origin + step / 2, origin + step * (n - 0.5)
        first, last = decimal_centre(c0), decimal_centre(c1)
        s = axis_step(first, last, n) if n > 1 else round(step, 6)
        if not s:
            return origin, step, float("inf")
        o = round(first - s / 2, 6)
        tol = 1e-3 * abs(s)
        if _is_float32(c0) and _is_float32(c1):
            ulp = float(np.spacing(np.float32(max(abs(c0), abs(c1), abs(origin), abs(origin + step * n)))))
            tol = max(tol, 2.0 * ulp)
        moved = max(abs(o - origin), abs(o + s * n - (origin + step * n)))
        return o, s, moved / tol

    ox, sx, mx = axis(x0, dx, nx)
    oy, sy, my = axis(y0, dy, ny)
    if max(mx, my) > 1.0:
        return tuple(geotransform)
    return (ox, sx, 0.0, oy, 0.0, sy)


def axis_step(first, last, n):
    """The step of ``n`` regular centres from ``first`` to ``last``: xsomo's ``conventions.axis_step``
    (1/120 deg stays 1/120, 0.1 stays 0.1: the nearer of the 6-decimal rounding and 1/k deg, when
    within 1e-4 of the step)."""
    est = (last - first) / (n - 1)
    if not est:
        return est
    k = round(1.0 / est)  # either sign; 0 for a step over 2 (degrees, or metres of a projected grid)
    nice = min((round(est, 6), 1.0 / k if k else est), key=lambda v: abs(v - est))
    return float(nice) if abs(nice - est) <= 1e-4 * abs(est) else est


def lon_like_grid(x, geotransform, nx):
    """Longitude ``x`` in the grid's convention (0..360 or -180..180): xsomo's
    ``conventions.lon_like_grid``. Only a longitude outside ``west .. west + 360`` moves, by whole
    turns (rounded to 1e-9 deg); a point at -179.55 on a grid of 179..181 deg is the cell at 180.45."""
    x0, dx = geotransform[0], geotransform[1]
    west = min(x0, x0 + dx * nx)
    if west <= x < west + 360.0:
        return x
    return round(west + (x - west) % 360.0, 9)


def _stored_coordinates(path, var):
    """``(lat, lon)``: the centre coordinates of ``var``'s last two dimensions as stored in the file
    (GDAL's multidimensional API), each None where the file has no coordinate variable for it."""
    try:
        ds = gdal.OpenEx(path, gdal.OF_MULTIDIM_RASTER)
        arr = ds.GetRootGroup().OpenMDArray(var)
        out = []
        for dim in arr.GetDimensions()[-2:]:
            iv = dim.GetIndexingVariable()
            out.append(None if iv is None else np.asarray(iv.ReadAsArray(), dtype=float).ravel())
        return tuple(out)
    except (RuntimeError, AttributeError):  # a GDAL without the multidimensional netCDF reader
        return None, None


def check_coordinates(f):
    """Raise a SomoFileError naming the file unless its lat/lon centres are the cells GDAL places it on.

    GDAL's netCDF driver takes the first and last centre and the count: a file whose longitudes
    are a region across 0 deg in 0..360 (0.05..9.95 and 350.05..359.95, stored in that order)
    became a raster 360 deg wide (1.8-deg pixels for 200 columns), without a word. xsomo reads
    such a file as one block in -180..180 (``xsomo.regrid.normalise_latlon``); GDAL reads its
    columns in their stored order.
    """
    stored = _stored_coordinates(f.path, f.name.rsplit(":", 1)[1])
    gt = f.geotransform
    for name, c, origin, step, n in (
        ("lat", stored[0], gt[3], gt[5], f.ds.RasterYSize),
        ("lon", stored[1], gt[0], gt[1], f.ds.RasterXSize),
    ):
        if c is None or c.size != n or n < 2:
            continue
        want = np.sort(origin + step * (np.arange(n) + 0.5))
        got = np.sort(c)
        tol = max(1e-3 * abs(step), 4.0 * float(np.spacing(np.float32(np.max(np.abs(got))))))
        if np.all(np.abs(got - want) <= tol):
            continue
        gaps = np.diff(got)
        k = int(np.argmax(gaps))
        split = name == "lon" and got[0] >= 0.0 and got[-1] > 180.0 and gaps[k] > 180.0
        raise SomoFileError(
            f"{f.path}: its {name} coordinates are not one regular grid ({got[0]:g}..{got[-1]:g}, with a gap of "
            f"{gaps[k]:g} deg after {got[k]:g}), so GDAL would place it wrongly ({n} cells of {abs(step):g} deg). "
            + (
                "It is a region across 0 deg in 0..360 longitudes: write the files with longitudes in -180..180 "
                "(xarray: ds.assign_coords(lon=((ds.lon + 180) % 360) - 180).sortby('lon')), where they are one "
                "block, or export its days with xsomo (xsomo export --date / --stat), which reads them as one block"
                if split
                else f"Write the files on a regular {name} grid (every cell, one step)"
            )
        )


def check_same_grid(first, other):
    """Raise a SomoFileError naming ``other`` unless it holds the cells of ``first`` (size and geotransform).

    The outputs take the first file's geotransform for every day: a file on a shifted grid
    would be drawn (and averaged) at the wrong place. As xsomo's GridMismatchError.
    """
    a, b = first.geotransform, other.geotransform
    size_a = (first.ds.RasterXSize, first.ds.RasterYSize)
    size_b = (other.ds.RasterXSize, other.ds.RasterYSize)
    tol = 1e-3 * max(abs(a[1]), abs(a[5]), 1e-12)  # float32 coordinates differ by ~1e-5 of a cell
    if size_a != size_b or any(abs(x - y) > tol for x, y in zip(a, b, strict=True)):
        raise SomoFileError(
            f"{other.path}: its lat/lon grid differs from that of {first.path} ({size_b[0]} x {size_b[1]} cells "
            f"from {b[0]:g}E {b[3]:g}N, step {b[1]:g}, against {size_a[0]} x {size_a[1]} from {a[0]:g}E {a[3]:g}N, "
            f"step {a[1]:g}); use a folder of files on one grid"
        )


def cell_of(geotransform, shape, x, y):
    """``(row, col)`` of the cell holding ``(x, y)``, or None outside: xsomo's cell rule.

    Half-open cells; a point on an inner edge goes to the cell to its north-east; the outer
    north and east edges are outside (as ``xsomo.conventions.GridSpec.snap``).
    """
    x0, dx, _, y0, _, dy = geotransform
    ny, nx = shape
    col = int(np.floor((x - x0) / dx + 1e-9))
    south = y0 + dy * ny if dy < 0 else y0
    from_south = int(np.floor((y - south) / abs(dy) + 1e-9))
    if not (0 <= col < nx and 0 <= from_south < ny):
        return None
    row = ny - 1 - from_south if dy < 0 else from_south
    return row, col


def cell_latitudes(geotransform, shape):
    """Latitude of each row's cell centres."""
    _, _, _, y0, _, dy = geotransform
    return y0 + dy * (np.arange(shape[0]) + 0.5)


#: The centres are tested a tiny step south-west of where they are, as xsomo's masks
#: (regionmask) do: a centre exactly on an edge of the polygon belongs to it on the east and
#: north edges, not on the west and south ones (GDAL alone took some edges both ways).
EDGE_OFFSET = (1e-8, 1e-10)


def grid_longitude_range(lon_min, lon_max):
    """``(lo, hi)``: the longitude convention of a grid whose cell centres run ``lon_min..lon_max``,
    ``(-180, 180)``, or ``(0, 360)`` for a grid beyond 180 deg; a grid mixing both is a SomoFileError.

    The rule of ``xsomo.drivers.regions.in_grid_longitudes`` (which needs shapely; QGIS's python
    has only GDAL), so the plugin and ``xsomo zonal`` mask the same cells.
    """
    if lon_min < 0.0 and lon_max > 180.0:
        raise SomoFileError(
            f"the grid's longitudes run from {lon_min:g} to {lon_max:g}, mixing -180..180 and 0..360: "
            "write the files on one convention first"
        )
    return (0.0, 360.0) if lon_max > 180.0 else (-180.0, 180.0)


def longitude_shifts(west, east, lo, hi):
    """The ``k`` for which the part of ``west..east`` inside ``lo + 360 k .. hi + 360 k`` lies on the
    grid once moved by ``-360 k`` (``[0]`` for a polygon already within ``lo..hi``), as
    ``xsomo.drivers.regions.in_grid_longitudes`` splits and moves polygons: longitudes are
    periodic, so a polygon over 355..365 deg covers the cells of -5..5 deg."""
    if west >= lo and east <= hi:
        return [0]
    return list(range(int(np.floor((west - lo) / 360.0)), int(np.floor((east - lo) / 360.0)) + 1))


def polygon_mask(geotransform, shape, wkt):
    """Cells whose centres lie inside the polygon ``wkt`` (EPSG:4326), rasterised by GDAL.

    A centre on the polygon's edge is inside on its east or north edge, outside on its west
    or south edge (:data:`EDGE_OFFSET`; as ``xsomo zonal``). The polygon is taken in the
    grid's longitudes (:func:`grid_longitude_range`): a polygon in 0..360 over a grid across
    0 deg, or in -180..180 over a grid beyond 180 deg, covers the cells it covers on the globe
    (each 360-degree shift of :func:`longitude_shifts` is rasterised with the grid moved by it,
    and kept where it falls inside the grid's convention: the polygon's parts of xsomo's split).
    """
    from osgeo import ogr, osr

    ny, nx = shape
    x0, dx, rx, y0, ry, dy = geotransform
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    vec = ogr.GetDriverByName("Memory").CreateDataSource("")
    lyr = vec.CreateLayer("p", srs, ogr.wkbUnknown)
    feat = ogr.Feature(lyr.GetLayerDefn())
    geom = ogr.CreateGeometryFromWkt(wkt)
    feat.SetGeometry(geom)
    lyr.CreateFeature(feat)
    lon = x0 + dx * (np.arange(nx) + 0.5)
    lo, hi = grid_longitude_range(float(lon.min()), float(lon.max()))
    west, east = geom.GetEnvelope()[:2] if not geom.IsEmpty() else (lo, lo)
    shifts = longitude_shifts(west, east, lo, hi)
    mask = np.zeros(shape, dtype=bool)
    for k in shifts:
        mem = gdal.GetDriverByName("MEM").Create("", nx, ny, 1, gdal.GDT_Byte)
        # the grid moved by +360 k under the polygon is the polygon moved by -360 k over the grid
        mem.SetGeoTransform((x0 + 360.0 * k - EDGE_OFFSET[0], dx, rx, y0 - EDGE_OFFSET[1], ry, dy))
        mem.SetProjection(srs.ExportToWkt())
        gdal.RasterizeLayer(mem, [1], lyr, burn_values=[1])
        mask |= mem.GetRasterBand(1).ReadAsArray().astype(bool)
    if shifts != [0]:  # the polygon's parts inside lo..hi only (edge rule of the split: east edge in)
        mask &= ((lon - EDGE_OFFSET[0] > lo) & (lon - EDGE_OFFSET[0] < hi))[None, :]
    return mask


def area_weighted_series(files, mask):
    """``(days, values, n_cells)``: the cos-latitude weighted mean over the ``mask`` cells of every
    day (NaN ignored), and the number of those cells that hold data on some day (as ``xsomo zonal``:
    sea cells are not counted)."""
    f = files.first
    lat = cell_latitudes(f.geotransform, mask.shape)
    w = np.cos(np.deg2rad(lat))[:, None] * np.ones(mask.shape[1])[None, :]
    w = np.where(mask, w, 0.0)
    days = sorted(files._where)
    out = np.full(len(days), np.nan)
    held = np.zeros(mask.shape, dtype=bool)
    for k, d in enumerate(days):
        a = files.read(d)
        ok = np.isfinite(a) & (w > 0)
        held |= ok
        if ok.any():
            out[k] = float((a[ok] * w[ok]).sum() / w[ok].sum())
    return days, out, int((held & mask).sum())


def series_period_stats(days, values, start, end):
    """``(mean, z, n_years)`` of a daily series over ``start..end``: its mean and period anomaly.

    The same definition as xsomo's zonal statistics: the period mean of the series, and
    its z-score against the same calendar window in the other years (``anomaly_kernels``);
    z is NaN with fewer than three windows.
    """
    pos = {d: i for i, d in enumerate(days)}

    def mean(s, e):
        n = (e - s).days + 1
        idx = [pos.get(s + dt.timedelta(days=i)) for i in range(n)]
        if any(i is None for i in idx):
            return None
        v = values[idx]
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    m0 = mean(start, end)
    if m0 is None:
        raise SomoFileError(f"the period {start} ... {end} is not covered by the files")
    try:
        windows = year_windows(start, end, days[0], days[-1])
    except ValueError as err:  # a period longer than a year
        raise SomoFileError(str(err)) from None
    means = [m for _, s, e in windows if (m := mean(s, e)) is not None]
    if len(means) < MIN_WINDOWS:
        return m0, float("nan"), len(means)
    return m0, float(period_zscore(np.array(m0), np.array(means))), len(means)


def write_geotiff(path, array, geotransform, projection, tags=None):
    """A float32 Cloud-Optimized GeoTIFF (DEFLATE, predictor, NaN nodata) through an in-memory raster."""
    ny, nx = array.shape
    mem = gdal.GetDriverByName("MEM").Create("", nx, ny, 1, gdal.GDT_Float32)
    mem.SetGeoTransform(geotransform)
    mem.SetProjection(projection)
    band = mem.GetRasterBand(1)
    band.SetNoDataValue(float("nan"))
    band.WriteArray(np.asarray(array, dtype=np.float32))
    if tags:
        mem.SetMetadata({str(k): str(v) for k, v in tags.items()})
    tmp = path + ".tmp.tif"
    gdal.Translate(tmp, mem, format="COG", creationOptions=["COMPRESS=DEFLATE", "PREDICTOR=YES"])
    os.replace(tmp, path)
    return path


STYLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "styles")


def write_style(raster_path, kind):
    """Put the shipped style ``kind`` ("soil_moisture" or "zscore") beside a raster as ``<name>.qml``.

    QGIS loads a ``.qml`` of the same name as the layer's default style, so the output opens
    with the sequential soil-moisture ramp or the diverging z-score ramp centred on 0.
    """
    with open(os.path.join(STYLES, f"{kind}.qml"), encoding="utf-8") as f:
        text = f.read()
    target = os.path.splitext(raster_path)[0] + ".qml"
    tmp = target + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)
    return target


def parse_day(text):
    """``YYYY-MM-DD`` (or a QDate/QDateTime/date) to a ``datetime.date``."""
    if hasattr(text, "toPyDate"):
        return text.toPyDate()
    if hasattr(text, "date") and hasattr(text, "toPyDateTime"):
        return text.toPyDateTime().date()
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text).strip()[:10])
    except ValueError as err:
        raise SomoFileError(f"{text!r} is not a day YYYY-MM-DD") from err
