"""The Processing algorithms of the ``xsomo`` provider.

- ``xsomo:loadday``: one layer and day of the SoMo.ml-EU files as a raster layer.
- ``xsomo:anomalymap``: the normalised anomaly of a period mean (z-score against the same
  window in the other years of the files).
- ``xsomo:sampleatstations``: raster values at station points (e.g. the station-metrics
  GeoPackage written by ``xsomo export --metrics``), as a new point layer.
- ``xsomo:series``: the daily series at each point (its cell) or averaged over each polygon
  (area-weighted), as a CSV table.
- ``xsomo:zonalstats``: per polygon, the area-weighted mean of a period and its anomaly.
- ``xsomo:timelayer``: one layer's whole period as a VRT (one band per day) and a layer
  definition (.qlr) that the Temporal Controller steps through; loaded into the project.
"""

import csv
import os

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsPointXY,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProject,
    QgsRasterLayer,
    QgsUnitTypes,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from xsomo_qgis.somo_files import (
    STYLES,
    SUBDATASET,
    LayerFiles,
    SomoFileError,
    area_weighted_series,
    cell_of,
    lon_like_grid,
    parse_day,
    polygon_mask,
    series_period_stats,
    snap_geotransform,
    write_geotiff,
    write_style,
)
from xsomo_qgis.time_stack import qlr_xml, vrt_xml

_HELP_FILES = (
    "FOLDER holds the SoMo.ml-EU files SoMo.ml-EU_layer{N}_{YYYY}.nc written by `xsomo predict` "
    "(or the published SoMo.ml v1 files SoMo.ml_v1_layer{N}_{YYYY}.nc, also in sub-folders). "
    "LAYER: 1 = 0-10 cm, 2 = 10-30 cm, 3 = 30-50 cm. Days are YYYY-MM-DD."
)


def raster_layer(alg, parameters, name, context):
    """The raster of parameter ``name``; GDAL names such as ``NETCDF:"file.nc":layer1`` are accepted too."""
    layer = alg.parameterAsRasterLayer(parameters, name, context)
    if layer is not None and layer.isValid():
        return layer
    raw = parameters.get(name)
    text = raw if isinstance(raw, str) else alg.parameterAsString(parameters, name, context)
    if text:
        m = SUBDATASET.match(text.strip())
        path = m["path"] if m else text
        if m and not os.path.isfile(path):
            raise QgsProcessingException(f"{name}: the file {path} is missing")
        layer = _store_raster(text.strip(), context)
        if layer is not None:
            return layer
        if not m and not os.path.exists(text):
            raise QgsProcessingException(f"{name}: the raster {text} is missing (no such file)")
    raise QgsProcessingException(
        f"{name}: {text!r} could not be opened as a raster (a GeoTIFF, or a netCDF variable "
        'as NETCDF:"file.nc":layer1)'
    )


def _store_raster(text, context):
    """The raster layer of the GDAL name ``text`` (e.g. ``NETCDF:"file.nc":layer1``), owned by the
    context's temporary layer store and named ``text`` (so that QGIS's parameterAsRasterLayer finds it);
    None when GDAL cannot open it.

    The store (C++) deletes the layer with the context. A QgsRasterLayer owned by Python and handed to
    QGIS (in the parameters, or kept alive on the algorithm) was deleted twice: qgis_process aborted
    ("double free or corruption") and python3 segfaulted at exit.
    """
    layer = QgsRasterLayer(text, text, "gdal")
    if not layer.isValid():
        return None
    if context is None:
        return layer
    context.temporaryLayerStore().addMapLayer(layer)  # the store takes ownership
    return layer


class _Base(QgsProcessingAlgorithm):
    def group(self):
        return "Soil moisture"

    def groupId(self):
        return "soilmoisture"

    def createInstance(self):
        return type(self)()

    def _files(self, parameters, context):
        folder = self.parameterAsFile(parameters, "FOLDER", context)
        layer = self.parameterAsInt(parameters, "LAYER", context)
        try:
            return LayerFiles(folder, layer)
        except SomoFileError as err:
            raise QgsProcessingException(str(err)) from err

    def _add_folder_layer(self):
        self.addParameter(
            QgsProcessingParameterFile(
                "FOLDER", "Folder of SoMo.ml-EU files", behavior=QgsProcessingParameterFile.Folder
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "LAYER",
                "Soil layer (1: 0-10 cm, 2: 10-30 cm, 3: 30-50 cm)",
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=1,
                minValue=1,
                maxValue=3,
            )
        )

    def _day(self, parameters, name, context):
        try:
            return parse_day(self.parameterAsString(parameters, name, context))
        except SomoFileError as err:
            raise QgsProcessingException(str(err)) from err


class LoadDay(_Base):
    def name(self):
        return "loadday"

    def displayName(self):
        return "Load a soil-moisture day"

    def shortHelpString(self):
        return (
            "One layer and day of the SoMo.ml-EU files as a GeoTIFF raster layer (m3 m-3). "
            + _HELP_FILES
        )

    def initAlgorithm(self, config=None):
        self._add_folder_layer()
        self.addParameter(QgsProcessingParameterString("DATE", "Day (YYYY-MM-DD)"))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Soil moisture"))

    def processAlgorithm(self, parameters, context, feedback):
        files = self._files(parameters, context)
        day = self._day(parameters, "DATE", context)
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        try:
            name, band = files.band(day)
        except SomoFileError as err:
            raise QgsProcessingException(str(err)) from err
        feedback.pushInfo(f"reading {name} band {band} ({day})")
        f = files.file_of(day)
        write_geotiff(
            out,
            files.read(day),
            f.geotransform,  # snapped to the grid; EPSG:4326 without a grid mapping (as xsomo)
            f.projection,
            tags={
                "layer": files.layer,
                "date": day.isoformat(),
                "units": "m3 m-3",
                "statistic": "day",
            },
        )
        write_style(out, "soil_moisture")
        return {"OUTPUT": out}


class AnomalyMap(_Base):
    def name(self):
        return "anomalymap"

    def displayName(self):
        return "Soil-moisture anomaly map of a period"

    def shortHelpString(self):
        return (
            "The normalised anomaly (z-score) of the mean over START..END: z = (m0 - mean(m)) / std(m), "
            "where m are the means over the same calendar window in every year the files cover "
            "(the period's own year included; at least 3 years). " + _HELP_FILES
        )

    def initAlgorithm(self, config=None):
        self._add_folder_layer()
        self.addParameter(QgsProcessingParameterString("START", "First day (YYYY-MM-DD)"))
        self.addParameter(QgsProcessingParameterString("END", "Last day (YYYY-MM-DD)"))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Anomaly (z-score)"))

    def processAlgorithm(self, parameters, context, feedback):
        files = self._files(parameters, context)
        start = self._day(parameters, "START", context)
        end = self._day(parameters, "END", context)
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        try:
            z, n_years = files.anomaly(start, end)
        except SomoFileError as err:
            raise QgsProcessingException(str(err)) from err
        feedback.pushInfo(f"anomaly of {start} ... {end} against {n_years} years")
        f = files.first
        write_geotiff(
            out,
            z,
            f.geotransform,
            f.projection,
            tags={
                "layer": files.layer,
                "period": f"{start}/{end}",
                "units": "1",
                "statistic": "anomaly",
                "n_years": n_years,
            },
        )
        write_style(out, "zscore")
        return {"OUTPUT": out, "N_YEARS": n_years}


class SampleAtStations(_Base):
    def name(self):
        return "sampleatstations"

    def displayName(self):
        return "Sample a soil-moisture raster at stations"

    def shortHelpString(self):
        return (
            "Adds the raster value under each point (e.g. the stations of the metrics GeoPackage written by "
            "`xsomo export --metrics`) as a new field; points outside the raster or on nodata get NULL."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "INPUT", "Stations", [QgsProcessing.TypeVectorPoint]
            )
        )
        self.addParameter(QgsProcessingParameterRasterLayer("RASTER", "Soil-moisture raster"))
        self.addParameter(
            QgsProcessingParameterBand(
                "BAND", "Band", defaultValue=1, parentLayerParameterName="RASTER"
            )
        )
        self.addParameter(
            QgsProcessingParameterString("FIELD", "Field name", defaultValue="sm_map")
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink("OUTPUT", "Stations with raster values")
        )

    def checkParameterValues(self, parameters, context):
        # QGIS refuses GDAL names such as NETCDF:"file.nc":layer1 (not a file path) before the
        # algorithm runs. Open those here and hand the layer to the context's temporary layer store,
        # as QGIS does with a raster given as a file path: the store (C++) owns it and deletes it with
        # the context, and QGIS then finds it by its name, here and in processAlgorithm. (A layer kept
        # by Python -- put into the parameters, held on the algorithm -- was deleted twice at exit:
        # qgis_process aborted with "double free or corruption", python3 segfaulted at exit.)
        raw = parameters.get("RASTER")
        m = SUBDATASET.match(raw.strip()) if isinstance(raw, str) else None
        if m is not None and context is not None:
            text = raw.strip()
            if not os.path.isfile(m["path"]):
                return False, f"RASTER: the file {m['path']} is missing"
            if not self.parameterAsRasterLayer(parameters, "RASTER", context):
                layer = _store_raster(text, context)
                if layer is None:
                    return False, f"RASTER: {raw} could not be opened by GDAL"
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, "INPUT", context)
        raster = raster_layer(self, parameters, "RASTER", context)
        band = self.parameterAsInt(parameters, "BAND", context) or 1
        field = self.parameterAsString(parameters, "FIELD", context) or "sm_map"
        if source is None:
            raise QgsProcessingException(
                f"the stations {parameters.get('INPUT')!r} could not be opened as a point layer"
            )
        n_bands = raster.bandCount()
        if not 1 <= band <= n_bands:
            raise QgsProcessingException(
                f"band {band} does not exist in {raster.source()}: the raster has {n_bands} band(s) (1..{n_bands})"
            )
        fields = QgsFields(source.fields())
        if fields.indexFromName(field) >= 0:
            raise QgsProcessingException(
                f"the stations already have a field {field!r}; choose another FIELD"
            )
        fields.append(QgsField(field, QVariant.Double))
        # the stations' coordinates in their CRS (refused without one unless they are degrees), moved
        # into the raster's: without a CRS they had been passed through as the raster's coordinates
        station_crs = _source_crs(source, "INPUT", "stations", feedback)
        raster_crs = _raster_crs(raster)
        if not raster_crs.isValid():
            e = raster.extent()
            raise QgsProcessingException(
                f"RASTER: {raster.source()} has no CRS and its extent is not degrees (x {e.xMinimum():.6g}.."
                f"{e.xMaximum():.6g}, y {e.yMinimum():.6g}..{e.yMaximum():.6g}): the stations cannot be placed "
                "on it; set its CRS (Layer Properties > Source > Assigned CRS, or gdal_edit.py -a_srs EPSG:...)"
            )
        sink, dest = self.parameterAsSink(
            parameters, "OUTPUT", context, fields, source.wkbType(), station_crs
        )
        xform = QgsCoordinateTransform(
            station_crs,
            raster_crs,
            context.transformContext() if context else QgsProject.instance(),
        )
        n_failed = 0
        # the cell holding each station by xsomo's cell rule (cell_of: a station on an inner edge is in the
        # cell to its north-east) on the raster's grid snapped as xsomo places it, then that cell's value;
        # GDAL's own pick on an edge is the float rounding of either side
        ext = raster.extent()
        shape = (raster.height(), raster.width())
        gt = snap_geotransform(
            (ext.xMinimum(), ext.width() / shape[1], 0.0, ext.yMaximum(), 0.0, -ext.height() / shape[0]), shape
        )
        # a raster in degrees takes the stations in its longitudes (xsomo's lon_like_grid): a station at
        # -179.55 lies in the cell at 180.45 of a raster over 179..181, one at 359.45 in that at -0.55
        geographic = raster_crs.isValid() and raster_crs.isGeographic()
        provider = raster.dataProvider()
        total = max(source.featureCount(), 1)
        for i, feat in enumerate(source.getFeatures()):
            if feedback.isCanceled():
                break
            value = None
            geom = feat.geometry()
            if not geom.isEmpty():
                try:
                    pt = xform.transform(_single_point(geom, f"station {feat.id()}", "a station is one point"))
                except QgsCsException:  # outside where the raster's CRS is defined: no value
                    n_failed += 1
                    pt = None
                cell = None
                if pt is not None:
                    x = lon_like_grid(pt.x(), gt, shape[1]) if geographic else pt.x()
                    cell = cell_of(gt, shape, x, pt.y())
                if cell is not None:
                    row, col = cell
                    centre = QgsPointXY(gt[0] + gt[1] * (col + 0.5), gt[3] + gt[5] * (row + 0.5))
                    v, ok = provider.sample(centre, band)
                    if ok and v == v:  # v == v: not NaN
                        value = float(v)
            out = QgsFeature(fields)
            out.setGeometry(geom)
            out.setAttributes([*feat.attributes(), value])
            sink.addFeature(out, QgsFeatureSink.FastInsert)
            feedback.setProgress(100.0 * (i + 1) / total)
        if n_failed:
            feedback.pushWarning(
                f"{n_failed} stations could not be transformed from {station_crs.authid() or 'their CRS'} to the "
                f"raster's {raster_crs.authid() or 'CRS'}; their {field} is NULL"
            )
        return {"OUTPUT": dest}


def _single_point(geom, what: str, one: str):
    """The point of ``geom``; a MultiPoint of one point is that point, of several refused.

    ``what`` names the feature in the message, ``one`` says why one point is needed.
    """
    if geom.isMultipart():
        points = geom.asMultiPoint()
        if len(points) != 1:
            raise QgsProcessingException(
                f"{what} is a MultiPoint of {len(points)} points: {one}; split it "
                "into single points first (Vector > Geometry Tools > Multipart to Singleparts)"
            )
        return points[0]
    return geom.asPoint()


def _in_degrees(x_min, x_max, y_min, y_max):
    """Whether a layer's extent can be longitudes and latitudes (xsomo's test for a layer without CRS)."""
    return not (x_min < -180.0 or x_max > 540.0 or y_min < -90.0 or y_max > 90.0)


def _raster_crs(raster):
    """The raster's CRS; EPSG:4326 for one without a CRS whose extent is degrees (a SoMo.ml file without a
    grid mapping, read as NETCDF:"file.nc":layer1: xsomo gives those EPSG:4326)."""
    crs = raster.crs()
    if not crs.isValid():
        e = raster.extent()
        if _in_degrees(e.xMinimum(), e.xMaximum(), e.yMinimum(), e.yMaximum()):
            return QgsCoordinateReferenceSystem("EPSG:4326")
    return crs


def _source_crs(source, name, kind, feedback=None):
    """The CRS of a vector layer's coordinates, by xsomo's rule (``drivers.regions._in_degrees``).

    Its own CRS when it has a valid one; for a layer without a CRS (a shapefile without its .prj)
    or with one QGIS cannot read, EPSG:4326 when its coordinates can be degrees (said in the
    feedback), and a QgsProcessingException naming the layer when they cannot (metres of a
    projection: their points had been taken as degrees, and sampled NULL or on another cell).
    """
    crs = source.sourceCrs()
    if crs.isValid():
        return crs
    e = source.sourceExtent()
    if not e.isEmpty() and not _in_degrees(e.xMinimum(), e.xMaximum(), e.yMinimum(), e.yMaximum()):
        raise QgsProcessingException(
            f"{name}: the {kind} have no CRS and their coordinates are not degrees (x {e.xMinimum():.6g}.."
            f"{e.xMaximum():.6g}, y {e.yMinimum():.6g}..{e.yMaximum():.6g}: metres of a projection?): set "
            "their CRS (a shapefile needs its .prj; in QGIS Layer Properties > Source > Assigned CRS, or "
            "Processing > Vector general > Assign projection)"
        )
    if feedback is not None:
        feedback.pushWarning(
            f"{name}: the {kind} have no CRS; their coordinates are degrees, so they are taken as EPSG:4326 "
            "(longitude, latitude), as xsomo takes them. If they are not, set their CRS first "
            "(Layer Properties > Source > Assigned CRS)"
        )
    return QgsCoordinateReferenceSystem("EPSG:4326")


def _features_in_4326(alg, parameters, context, name, feedback=None):
    """``[(label, QgsGeometry in EPSG:4326)]`` of a vector parameter, labelled by the FIELD parameter.

    As xsomo's ``drivers.regions`` (``_in_degrees``, ``_regions``): a layer without CRS is taken as
    degrees, and refused when its coordinates cannot be degrees (metres of a projection: every
    polygon had silently selected no cell); a polygon wider than 180 deg in EPSG:4326 is refused
    (one drawn across the antimeridian in a projected CRS comes back wrapped around the globe, and
    its mask took the cells outside it).
    """
    source = alg.parameterAsSource(parameters, name, context)
    if source is None:
        raise QgsProcessingException(f"{name}: the layer {parameters.get(name)!r} could not be opened")
    field = alg.parameterAsString(parameters, "FIELD", context)
    if field and source.fields().lookupField(field) < 0:
        names = ", ".join(repr(f.name()) for f in source.fields()) or "none"
        raise QgsProcessingException(
            f"FIELD: the layer {name} has no field {field!r}; its fields are: {names} "
            "(leave FIELD empty to label the features by their ids)"
        )
    kind = "points" if QgsWkbTypes.geometryType(source.wkbType()) == QgsWkbTypes.PointGeometry else "polygons"
    xform = None
    densify = None
    crs = _source_crs(source, name, kind, feedback)
    if crs.authid() != "EPSG:4326":
        xform = QgsCoordinateTransform(crs, QgsCoordinateReferenceSystem("EPSG:4326"), context.transformContext())
        if not crs.isGeographic():
            # a straight edge in a projection is a curve in degrees: 1 km segments first, as xsomo
            # (drivers.regions._in_degrees: gdf.segmentize(1000 m)), a tenth of a 0.1-degree cell
            to_m = QgsUnitTypes.fromUnitToUnitFactor(crs.mapUnits(), QgsUnitTypes.DistanceMeters)
            densify = 1000.0 / (to_m or 1.0)
    out = []
    for k, feat in enumerate(source.getFeatures()):
        geom = feat.geometry()
        if geom.isEmpty():
            continue
        if densify is not None and geom.type() == QgsWkbTypes.PolygonGeometry:
            geom = geom.densifyByDistance(densify)
        if xform is not None:
            geom.transform(xform)
        label = str(feat[field]) if field else str(feat.id() if feat.id() >= 0 else k)
        if geom.type() == QgsWkbTypes.PolygonGeometry:
            for part in geom.asGeometryCollection() if geom.isMultipart() else [geom]:
                box = part.boundingBox()
                if box.xMaximum() - box.xMinimum() > 180.0:
                    raise QgsProcessingException(
                        f"polygon {label!r} spans more than 180° of longitude in EPSG:4326 ({box.xMinimum():g} to "
                        f"{box.xMaximum():g}): it crosses the antimeridian (in its own CRS it wraps around), and "
                        "masking it would take every cell outside it. Split it at 180° first (e.g. draw it as "
                        "two polygons, one on each side)"
                    )
        out.append((label, geom, feat))
    return source, out


def _regional_series(files, geom, label=""):
    """Series of one feature: its cell (points) or the area-weighted mean over it (polygons).

    ``n_cells`` counts the cells that hold data on some day (as ``xsomo zonal``): 1 or 0 at a
    point (outside the grid or on the sea), the data cells whose centres lie inside a polygon.
    """
    f = files.first
    shape = (f.ds.RasterYSize, f.ds.RasterXSize)
    if geom.type() == QgsWkbTypes.PointGeometry:
        pt = _single_point(geom, f"feature {label!r}", "a series is one cell's")
        # in the grid's longitudes, as xsomo's point_series: -179.55 is the cell at 180.45 of a 0..360 grid
        x = lon_like_grid(pt.x(), f.geotransform, shape[1])
        cell = cell_of(f.geotransform, shape, x, pt.y())
        days = sorted(files._where)
        if cell is None:
            return days, [float("nan")] * len(days), 0
        values = [float(files.read(d)[cell]) for d in days]
        return days, values, int(any(v == v for v in values))
    try:  # in the grid's longitudes: a polygon over 355..365 deg covers the cells of -5..5 deg
        mask = polygon_mask(f.geotransform, shape, geom.asWkt())
    except SomoFileError as err:
        raise QgsProcessingException(str(err)) from err
    days, values, n_cells = area_weighted_series(files, mask)
    return days, list(values), n_cells


class Series(_Base):
    def name(self):
        return "series"

    def displayName(self):
        return "Soil-moisture series at points or over polygons"

    def shortHelpString(self):
        return (
            "The daily soil moisture of every feature of INPUT as a CSV table (name, date, sm): at a point, "
            "the value of the 0.1-degree cell holding it (a point on a cell edge belongs to the cell to its "
            "north-east); over a polygon, the area-weighted mean (cell areas proportional to cos latitude) of "
            "the cells whose centres lie inside, cells without data ignored. " + _HELP_FILES
        )

    def initAlgorithm(self, config=None):
        self._add_folder_layer()
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "INPUT", "Points or polygons", [QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon]
            )
        )
        self.addParameter(
            QgsProcessingParameterField("FIELD", "Name field", parentLayerParameterName="INPUT", optional=True)
        )
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Series (CSV)", "CSV files (*.csv)"))

    def processAlgorithm(self, parameters, context, feedback):
        files = self._files(parameters, context)
        _, feats = _features_in_4326(self, parameters, context, "INPUT", feedback)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        rows = [("name", "date", "sm", "n_cells")]
        for k, (label, geom, _) in enumerate(feats):
            days, values, n = _regional_series(files, geom, label)
            rows += [(label, d.isoformat(), "" if v != v else repr(float(v)), n) for d, v in zip(days, values, strict=True)]
            feedback.setProgress(100.0 * (k + 1) / max(len(feats), 1))
        tmp = out + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)  # quotes labels with commas or quotes
        os.replace(tmp, out)
        return {"OUTPUT": out}


class ZonalStats(_Base):
    def name(self):
        return "zonalstats"

    def displayName(self):
        return "Soil-moisture mean and anomaly of a period per polygon"

    def shortHelpString(self):
        return (
            "For every polygon: n_cells, mean_sm (the area-weighted mean over START..END of the cells whose "
            "centres lie inside) and anomaly_z (the period anomaly of the polygon's mean series: its mean over "
            "START..END against the same calendar window in every year of the files, as `xsomo zonal`; NULL "
            "with fewer than 3 years). " + _HELP_FILES
        )

    def initAlgorithm(self, config=None):
        self._add_folder_layer()
        self.addParameter(
            QgsProcessingParameterFeatureSource("INPUT", "Polygons", [QgsProcessing.TypeVectorPolygon])
        )
        self.addParameter(
            QgsProcessingParameterField("FIELD", "Name field", parentLayerParameterName="INPUT", optional=True)
        )
        self.addParameter(QgsProcessingParameterString("START", "First day (YYYY-MM-DD)"))
        self.addParameter(QgsProcessingParameterString("END", "Last day (YYYY-MM-DD)"))
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT", "Polygons with statistics"))

    def processAlgorithm(self, parameters, context, feedback):
        files = self._files(parameters, context)
        start = self._day(parameters, "START", context)
        end = self._day(parameters, "END", context)
        source, feats = _features_in_4326(self, parameters, context, "INPUT", feedback)
        fields = QgsFields(source.fields())
        for name in ("n_cells", "mean_sm", "anomaly_z", "n_years"):
            if fields.indexFromName(name) >= 0:
                raise QgsProcessingException(f"the polygons already have a field {name!r}; rename it first")
        fields.append(QgsField("n_cells", QVariant.Int))
        fields.append(QgsField("mean_sm", QVariant.Double))
        fields.append(QgsField("anomaly_z", QVariant.Double))
        fields.append(QgsField("n_years", QVariant.Int))
        sink, dest = self.parameterAsSink(
            parameters, "OUTPUT", context, fields, source.wkbType(), source.sourceCrs()
        )
        for k, (label, geom, feat) in enumerate(feats):
            days, values, n = _regional_series(files, geom, label)
            try:
                mean, z, n_years = series_period_stats(days, np.asarray(values, float), start, end)
            except SomoFileError as err:
                raise QgsProcessingException(str(err)) from err
            if n == 0:  # no cell with data: no statistics, no years (as xsomo zonal)
                mean, z, n_years = float("nan"), float("nan"), 0
            out = QgsFeature(fields)
            out.setGeometry(feat.geometry())
            out.setAttributes([
                *feat.attributes(),
                n,
                None if mean != mean else float(mean),
                None if z != z else float(z),
                n_years,
            ])
            sink.addFeature(out, QgsFeatureSink.FastInsert)
            feedback.setProgress(100.0 * (k + 1) / max(len(feats), 1))
        return {"OUTPUT": dest}


class TimeLayer(_Base):
    def name(self):
        return "timelayer"

    def displayName(self):
        return "Load a layer's whole period as a time-aware group"

    def shortHelpString(self):
        return (
            "Writes OUTPUT.vrt (one band per day of the files, band descriptions are the dates, unit m3 m-3) and "
            "OUTPUT.qlr (a group of one layer per day, each with a fixed temporal range on its day and the "
            "soil-moisture style) and adds the group to the project: turn on the Temporal Controller "
            "(View > Panels > Temporal Controller) and step through the days. " + _HELP_FILES
        )

    def flags(self):
        return super().flags() | QgsProcessingAlgorithm.FlagNoThreading

    def initAlgorithm(self, config=None):
        self._add_folder_layer()
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Time stack (VRT)", "GDAL VRT (*.vrt)"))
        self.addParameter(QgsProcessingParameterBoolean("LOAD", "Add the group to the project", defaultValue=True))

    def processAlgorithm(self, parameters, context, feedback):
        files = self._files(parameters, context)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        if not out.lower().endswith(".vrt"):
            out += ".vrt"
        sources = []
        for year in sorted(files.files):
            f = files.files[year]
            packing = f.packing  # a packed or filled file is unpacked by the VRT (values in m3 m-3, fill NaN)
            sources += [(f.name, f.band_of[d], d) if packing is None else (f.name, f.band_of[d], d, packing) for d in f.days]
        sources.sort(key=lambda s: s[2])
        first = files.first
        text = vrt_xml(
            sources,
            nx=first.ds.RasterXSize,
            ny=first.ds.RasterYSize,
            geotransform=first.geotransform,
            srs_wkt=first.projection,
            layer=files.layer,
        )
        with open(os.path.join(STYLES, "soil_moisture.qml"), encoding="utf-8") as fh:
            style = fh.read()
        days = [s[2] for s in sources]
        group = f"soil moisture layer {files.layer} ({days[0]} ... {days[-1]})"
        qlr = os.path.splitext(out)[0] + ".qlr"
        for path, content in ((out, text), (qlr, qlr_xml(out, days, group=group, style_qml=style))):
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(content)
            os.replace(path + ".tmp", path)
        feedback.pushInfo(f"{len(days)} days in {out}; layer definition {qlr}")
        if self.parameterAsBoolean(parameters, "LOAD", context) and context.project() is not None:
            from qgis.core import QgsLayerDefinition

            QgsLayerDefinition.loadLayerDefinition(qlr, context.project(), context.project().layerTreeRoot())
        return {"OUTPUT": out, "QLR": qlr, "N_DAYS": len(days)}
