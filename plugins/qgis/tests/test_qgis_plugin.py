"""The xsomo QGIS plugin in real (headless) QGIS: placement, values, CRS, processing.run, qgis_process."""

import configparser
import datetime as dt
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from make_test_data import EUROPE_DAY, STATIONS, grid, value

pytestmark = pytest.mark.qgis
HERE = pathlib.Path(__file__).resolve().parent


def _sample(layer, x, y, band=1):
    from qgis.core import QgsPointXY

    v, ok = layer.dataProvider().sample(QgsPointXY(x, y), band)
    return v if ok else None


def _cell(x, y):
    """Centre of the test-grid cell holding (x, y)."""
    lat, lon = grid()
    return lat[np.argmin(abs(lat - y))], lon[np.argmin(abs(lon - x))]


def _raster(path):
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(path), "r")
    assert layer.isValid(), path
    return layer


POINTS = [
    (10.05, 51.15),
    (10.73, 50.42),
    (11.59, 50.01),
    (10.26, 50.87),
    (11.0 + 0.04, 50.5 - 0.03),
]


def test_plugin_metadata_and_provider(qgis_app):
    cfg = configparser.ConfigParser()
    cfg.read(HERE.parent / "xsomo_qgis" / "metadata.txt")
    assert cfg["general"]["hasProcessingProvider"] == "yes"
    import xsomo_qgis
    from qgis.core import QgsApplication

    assert callable(xsomo_qgis.classFactory)
    plugin = xsomo_qgis.classFactory(None)
    assert plugin.provider is None
    reg = QgsApplication.processingRegistry()
    provider = reg.providerById("xsomo")
    assert provider is not None
    ids = sorted(a.id() for a in provider.algorithms())
    assert ids == [
        "xsomo:anomalymap", "xsomo:loadday", "xsomo:sampleatstations", "xsomo:series", "xsomo:timelayer",
        "xsomo:zonalstats",
    ]


def test_loadday_places_values_and_crs(qgis_app, data_dir, tmp_path):
    import processing

    d, _ = data_dir
    out = tmp_path / "day.tif"
    res = processing.run(
        "xsomo:loadday",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "DATE": "2011-01-20", "OUTPUT": str(out)},
    )
    layer = _raster(res["OUTPUT"])
    assert layer.crs().authid() == "EPSG:4326"
    ext = layer.extent()
    assert (ext.xMinimum(), ext.xMaximum(), ext.yMinimum(), ext.yMaximum()) == pytest.approx(
        (10.0, 11.6, 50.0, 51.2)
    )
    assert (layer.width(), layer.height()) == (16, 12)
    day = dt.date(2011, 1, 20)
    for x, y in POINTS:
        la, lo = _cell(x, y)
        assert _sample(layer, x, y) == pytest.approx(float(value(1, day, la, lo)), abs=1e-7)
    # the 'sea' is nodata, not a number
    assert _sample(layer, 11.45, 51.15) is None or np.isnan(_sample(layer, 11.45, 51.15))
    # layer 2 has only 2010
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="not in the layer-2 files"):
        processing.run(
            "xsomo:loadday",
            {
                "FOLDER": str(d / "somo"),
                "LAYER": 2,
                "DATE": "2011-01-20",
                "OUTPUT": str(tmp_path / "x.tif"),
            },
        )


def test_loadday_v1_names_in_folders_with_ascending_lat(qgis_app, data_dir, tmp_path):
    import processing

    d, _ = data_dir
    res = processing.run(
        "xsomo:loadday",
        {
            "FOLDER": str(d / "somo_v1"),
            "LAYER": 3,
            "DATE": "2011-02-01",
            "OUTPUT": str(tmp_path / "v1.tif"),
        },
    )
    layer = _raster(res["OUTPUT"])
    assert layer.crs().authid() == "EPSG:4326"
    ext = layer.extent()
    assert (ext.xMinimum(), ext.xMaximum(), ext.yMinimum(), ext.yMaximum()) == pytest.approx(
        (10.0, 11.6, 50.0, 51.2)
    )
    for x, y in POINTS:
        la, lo = _cell(x, y)
        assert _sample(layer, x, y) == pytest.approx(
            float(value(3, dt.date(2011, 2, 1), la, lo)), abs=1e-7
        )


def _expected_anomaly(start, end, target_year):
    lat, lon = grid()
    means = []
    for year in (2010, 2011, 2012):
        s, e = start.replace(year=year), end.replace(year=year)
        days = [s + dt.timedelta(days=i) for i in range((e - s).days + 1)]
        means.append(np.mean([value(1, dd, lat[:, None], lon[None, :]) for dd in days], axis=0))
    means = np.array(means, dtype=float)
    return (means[target_year - 2010] - means.mean(0)) / means.std(0, ddof=1)


def test_anomalymap_matches_the_definition(qgis_app, data_dir, tmp_path):
    import processing

    d, _ = data_dir
    res = processing.run(
        "xsomo:anomalymap",
        {
            "FOLDER": str(d / "somo"),
            "LAYER": 1,
            "START": "2012-01-05",
            "END": "2012-01-25",
            "OUTPUT": str(tmp_path / "anom.tif"),
        },
    )
    assert res["N_YEARS"] == 3
    layer = _raster(res["OUTPUT"])
    assert layer.crs().authid() == "EPSG:4326"
    z = _expected_anomaly(dt.date(2012, 1, 5), dt.date(2012, 1, 25), 2012)
    lat, lon = grid()
    for x, y in POINTS:
        i, j = int(np.argmin(abs(lat - y))), int(np.argmin(abs(lon - x)))
        assert _sample(layer, x, y) == pytest.approx(z[i, j], rel=1e-4, abs=1e-4)


def test_xsomo_cog_is_valid_and_agrees_with_the_plugin(qgis_app, data_dir, tmp_path):
    """The COG written by xsomo (venv) passes GDAL's validator and holds the same numbers QGIS computes."""
    import processing
    from osgeo_utils.samples.validate_cloud_optimized_geotiff import validate

    d, made = data_dir
    if not made["xsomo"]:
        pytest.skip("test data made without the xsomo venv")
    for name in ("xsomo_day.tif", "xsomo_anomaly.tif"):
        warnings, errors, _ = validate(str(d / name), full_check=True)
        assert errors == [] and warnings == [], (name, errors, warnings)
    # the Europe grid: GDAL's validator, placement of the corners and values
    warnings, errors, _ = validate(str(d / "xsomo_europe.tif"), full_check=True)
    assert errors == [] and warnings == [], ("xsomo_europe.tif", errors, warnings)
    eu = _raster(d / "xsomo_europe.tif")
    assert eu.crs().authid() == "EPSG:4326"
    assert (eu.width(), eu.height()) == (570, 355)
    assert eu.dataProvider().hasPyramids() or eu.dataProvider().buildPyramidList()[0].exists
    ext = eu.extent()
    assert (ext.xMinimum(), ext.xMaximum(), ext.yMinimum(), ext.yMaximum()) == pytest.approx(
        (-12.0, 45.0, 36.0, 71.5), abs=1e-9
    )
    # (points off the cells' edges: -3.7 lies on one, where GDAL and a float floor() pick different cells)
    for x, y in [(-11.95, 71.45), (44.95, 36.05), (13.4, 52.52), (-3.71, 40.42), (24.94, 60.17)]:
        lon_c = -12.0 + 0.1 * (np.floor((x + 12.0) / 0.1) + 0.5)
        lat_c = 36.0 + 0.1 * (np.floor((y - 36.0) / 0.1) + 0.5)
        want = float(value(1, EUROPE_DAY, lat_c, lon_c))
        got = _sample(eu, x, y)
        if np.isnan(want):
            assert got is None or np.isnan(got)
        else:
            assert got == pytest.approx(want, abs=1e-6), (x, y)
    day = _raster(d / "xsomo_day.tif")
    assert day.crs().authid() == "EPSG:4326"
    for x, y in POINTS:
        la, lo = _cell(x, y)
        assert _sample(day, x, y) == pytest.approx(
            float(value(1, dt.date(2011, 1, 20), la, lo)), abs=1e-7
        )
    res = processing.run(
        "xsomo:anomalymap",
        {
            "FOLDER": str(d / "somo"),
            "LAYER": 1,
            "START": "2012-01-05",
            "END": "2012-01-25",
            "OUTPUT": str(tmp_path / "anom.tif"),
        },
    )
    ours, theirs = _raster(res["OUTPUT"]), _raster(d / "xsomo_anomaly.tif")
    for x, y in POINTS:
        assert _sample(ours, x, y) == pytest.approx(_sample(theirs, x, y), rel=1e-4, abs=1e-4)


def test_plugin_geotiff_is_a_valid_cog(qgis_app, data_dir, tmp_path):
    import processing
    from osgeo_utils.samples.validate_cloud_optimized_geotiff import validate

    d, _ = data_dir
    out = processing.run(
        "xsomo:loadday",
        {
            "FOLDER": str(d / "somo"),
            "LAYER": 1,
            "DATE": "2010-02-01",
            "OUTPUT": str(tmp_path / "day.tif"),
        },
    )["OUTPUT"]
    _, errors, _ = validate(out)
    assert errors == []


def test_station_gpkg_opens_without_warnings_and_sampling(qgis_app, data_dir, tmp_path):
    import processing
    from osgeo import gdal
    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    messages = []

    def handler(level, no, msg):
        messages.append((level, msg))

    gdal.PushErrorHandler(handler)
    try:
        ds = gdal.OpenEx(str(d / "stations.gpkg"), gdal.OF_VECTOR)
        assert ds.GetLayerCount() == 1
        ds = None
    finally:
        gdal.PopErrorHandler()
    assert [m for m in messages if m[0] >= gdal.CE_Warning] == []
    stations = QgsVectorLayer(str(d / "stations.gpkg"), "stations", "ogr")
    assert stations.isValid() and stations.featureCount() == len(STATIONS)
    assert stations.crs().authid() == "EPSG:4326"

    day_tif = processing.run(
        "xsomo:loadday",
        {
            "FOLDER": str(d / "somo"),
            "LAYER": 1,
            "DATE": "2012-02-09",
            "OUTPUT": str(tmp_path / "day.tif"),
        },
    )["OUTPUT"]
    res = processing.run(
        "xsomo:sampleatstations",
        {
            "INPUT": str(d / "stations.gpkg"),
            "RASTER": day_tif,
            "BAND": 1,
            "FIELD": "sm_map",
            "OUTPUT": str(tmp_path / "sampled.gpkg"),
        },
    )
    out = QgsVectorLayer(res["OUTPUT"], "sampled", "ogr")
    assert out.isValid() and out.featureCount() == len(STATIONS)
    got = {f["station"]: f["sm_map"] for f in out.getFeatures()}
    for sid, x, y in STATIONS:
        _lat, _lon = grid()
        inside = 10.0 <= x < 11.6 and 50.0 <= y < 51.2
        want = value(1, dt.date(2012, 2, 9), *_cell(x, y)) if inside else np.nan
        if np.isnan(want):
            assert got[sid] is None or got[sid] != got[sid] or str(got[sid]) == "NULL", (
                sid,
                got[sid],
            )
        else:
            assert got[sid] == pytest.approx(float(want), abs=1e-7), sid


def test_qgis_process_runs_an_algorithm_from_the_zip(qgis_app, data_dir, tmp_path):
    """Build the plugin zip, unpack it as QGIS would install it, run an algorithm with qgis_process."""
    import sys
    import zipfile

    exe = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
    if not os.path.exists(exe):
        pytest.skip("qgis_process.bin not installed (apt install qgis)")
    d, _ = data_dir
    built = subprocess.run(
        [sys.executable, str(HERE.parent / "build_zip.py"), str(tmp_path / "dist")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(built) as zf:
        names = zf.namelist()
        assert "xsomo_qgis/metadata.txt" in names and "xsomo_qgis/__init__.py" in names
        assert not [n for n in names if "__pycache__" in n]
        zf.extractall(plugins)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(
        os.environ,
        HOME=str(home),
        QGIS_PLUGINPATH=str(plugins),
        QT_QPA_PLATFORM="offscreen",
        XDG_RUNTIME_DIR=str(tmp_path),
    )
    subprocess.run(
        [exe, "plugins", "enable", "xsomo_qgis"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = tmp_path / "cli.tif"
    proc = subprocess.run(
        [
            exe,
            "--json",
            "run",
            "xsomo:loadday",
            "--",
            "FOLDER=%s" % (d / "somo"),
            "LAYER=1",
            "DATE=2010-01-15",
            f"OUTPUT={out}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert pathlib.Path(result["results"]["OUTPUT"]) == out
    layer = _raster(out)
    la, lo = _cell(10.73, 50.42)
    assert _sample(layer, 10.73, 50.42) == pytest.approx(
        float(value(1, dt.date(2010, 1, 15), la, lo)), abs=1e-7
    )


def _render(layers, extent_layer, name, tmp_path, width=520):
    """Render ``layers`` headless to a PNG (in tmp_path; also in $XSOMO_DOCS_IMG for docs/gis.md)."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(extent_layer.crs())
    settings.setExtent(extent_layer.extent())
    ext = extent_layer.extent()
    settings.setOutputSize(QSize(width, int(width * ext.height() / ext.width())))
    settings.setBackgroundColor(QColor("#d4e6f1"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    path = tmp_path / f"{name}.png"
    assert image.save(str(path), "png")
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 5, "the rendered map is (nearly) one colour"
    docs = os.environ.get("XSOMO_DOCS_IMG")
    if docs:
        shutil.copyfile(path, pathlib.Path(docs) / f"{name}.png")
    return path


def _run_expecting_error(alg_id, params):
    """Run an algorithm that must fail; the text of its error (exception and feedback) in one string."""
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.errors = []

        def reportError(self, error, fatalError=False):
            self.errors.append(error)

    fb = Feedback()
    with pytest.raises(QgsProcessingException) as info:
        processing.run(alg_id, params, feedback=fb)
    return " | ".join([str(info.value), *fb.errors])


def _all_cells(layer):
    """The raster's band 1 as an array (GDAL), NaN for nodata."""
    from osgeo import gdal

    ds = gdal.Open(layer.source())
    band = ds.GetRasterBand(1)
    a = band.ReadAsArray().astype(float)
    nd = band.GetNoDataValue()
    if nd is not None and not np.isnan(nd):
        a[a == nd] = np.nan
    return a


def test_leap_day_anomaly_equals_the_export(qgis_app, data_dir, tmp_path):
    """Issue 19 bug 2: xsomo:anomalymap 2015-12-01 ... 2016-02-29 equals `xsomo export --stat anomaly`
    (both from anomaly_kernels) and a numpy oracle whose windows end on the last day of February."""
    import calendar

    import processing
    from make_test_data import LEAP_YEARS, leap_value

    d, made = data_dir
    if not made.get("leap"):
        pytest.skip("test data made without the xsomo venv")
    res = processing.run(
        "xsomo:anomalymap",
        {"FOLDER": made["leap"], "LAYER": 1, "START": "2015-12-01", "END": "2016-02-29",
         "OUTPUT": str(tmp_path / "leap.tif")},
    )
    assert res["N_YEARS"] == len(LEAP_YEARS) - 1
    ours = _all_cells(_raster(res["OUTPUT"]))
    theirs = _all_cells(_raster(d / "xsomo_leap_anomaly.tif"))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    lat, lon = grid()
    means = {}
    for y in LEAP_YEARS[:-1]:
        end = dt.date(y + 1, 2, calendar.monthrange(y + 1, 2)[1])
        n = (end - dt.date(y, 12, 1)).days + 1
        means[y] = np.mean(
            [leap_value(dt.date(y, 12, 1) + dt.timedelta(days=i), lat[:, None], lon[None, :]) for i in range(n)],
            axis=0,
            dtype=np.float64,
        )
    stack = np.stack(list(means.values()))
    want = (means[2015] - stack.mean(axis=0)) / stack.std(axis=0, ddof=1)
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4)
    assert np.isfinite(ours).sum() > 0.8 * ours.size


def test_plugin_messages_name_the_problem(qgis_app, data_dir, tmp_path):
    """Issue 19 bug 3: a non-SoMo file, a missing folder and a band that does not exist say so."""
    d, _ = data_dir
    msg = _run_expecting_error(
        "xsomo:loadday",
        {"FOLDER": str(d / "not_somo"), "LAYER": 1, "DATE": "2010-01-05", "OUTPUT": str(tmp_path / "a.tif")},
    )
    assert "not a SoMo.ml netCDF file" in msg and "SoMo.ml-EU_layer1_2010.nc" in msg, msg
    assert "No such file or directory" not in msg, msg
    missing = tmp_path / "no_such_folder"
    msg = _run_expecting_error(
        "xsomo:anomalymap",
        {"FOLDER": str(missing), "LAYER": 1, "START": "2010-01-01", "END": "2010-01-05",
         "OUTPUT": str(tmp_path / "b.tif")},
    )
    assert "missing" in msg and str(missing) in msg, msg
    msg = _run_expecting_error(
        "xsomo:sampleatstations",
        {"INPUT": str(d / "stations.gpkg"), "RASTER": str(d / "somo" / "SoMo.ml-EU_layer2_2010.nc"),
         "BAND": 41, "FIELD": "sm_map", "OUTPUT": str(tmp_path / "c.gpkg")},
    )
    assert "band 41 does not exist" in msg and "40 band" in msg, msg


def test_sampleatstations_accepts_a_netcdf_variable_name(qgis_app, data_dir, tmp_path):
    """Issue 19 bug 3: RASTER = NETCDF:"file":layer1 is accepted; band k is day k of the file."""
    import processing
    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    path = d / "somo" / "SoMo.ml-EU_layer1_2011.nc"
    res = processing.run(
        "xsomo:sampleatstations",
        {"INPUT": str(d / "stations.gpkg"), "RASTER": f'NETCDF:"{path}":layer1', "BAND": 20,
         "FIELD": "sm_day20", "OUTPUT": str(tmp_path / "s.gpkg")},
    )
    out = QgsVectorLayer(res["OUTPUT"], "sampled", "ogr")
    _assert_layer1_2011_day20({f["station"]: f["sm_day20"] for f in out.getFeatures()})


def _assert_layer1_2011_day20(got):
    """``got`` (station -> value) holds layer 1 on 2011-01-20 at each station's cell, NULL outside the grid."""
    day = dt.date(2011, 1, 20)
    checked = 0
    for sid, x, y in STATIONS:
        inside = 10.0 <= x < 11.6 and 50.0 <= y < 51.2
        want = float(value(1, day, *_cell(x, y))) if inside else float("nan")
        if np.isnan(want):
            assert got[sid] is None or got[sid] != got[sid] or str(got[sid]) == "NULL", (sid, got[sid])
        else:
            assert got[sid] == pytest.approx(want, abs=1e-7), sid
            checked += 1
    assert checked >= 3


_INPROCESS_NETCDF_RUN = r"""
import json, sys
sys.path.insert(0, sys.argv[1]); sys.path.append("/usr/share/qgis/python/plugins")
from qgis.core import QgsApplication, QgsVectorLayer
QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], False)
app.initQgis()
import processing
from processing.core.Processing import Processing
Processing.initialize()
from xsomo_qgis.provider import XsomoProvider
provider = XsomoProvider()
QgsApplication.processingRegistry().addProvider(provider)
res = processing.run("xsomo:sampleatstations", json.loads(sys.argv[2]))
layer = QgsVectorLayer(res["OUTPUT"], "sampled", "ogr")
got = {f["station"]: (None if f["sm_day20"] is None or str(f["sm_day20"]) == "NULL" else f["sm_day20"])
       for f in layer.getFeatures()}
del layer  # a layer of the script's own must not outlive exitQgis
print("RESULT " + json.dumps(got), flush=True)
QgsApplication.processingRegistry().removeProvider(provider)
app.exitQgis()
"""


def test_netcdf_variable_name_runs_and_exits_cleanly(qgis_app, data_dir, tmp_path):
    """Hostile test F5: RASTER = NETCDF:"file":layer1 (the form docs/gis.md documents) aborted qgis_process
    ("double free or corruption", rc 134/139) on every run, after the right values: checkParameterValues
    handed QGIS a QgsRasterLayer owned by Python (and kept it on the algorithm). An in-process test cannot
    see a crash at exit, so both runs go to a subprocess here and their exit status is checked."""
    import sys

    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    nc = f'NETCDF:"{d / "somo" / "SoMo.ml-EU_layer1_2011.nc"}":layer1'
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    env.pop("PYTHONPATH", None)

    # processing.run in a python3 of its own, which then leaves QGIS and exits
    params = {"INPUT": str(d / "stations.gpkg"), "RASTER": nc, "BAND": 20, "FIELD": "sm_day20",
              "OUTPUT": str(tmp_path / "inproc.gpkg")}
    proc = subprocess.run(
        [sys.executable, "-c", _INPROCESS_NETCDF_RUN, str(HERE.parent), json.dumps(params)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:])
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    _assert_layer1_2011_day20(json.loads(line[len("RESULT "):]))

    # qgis_process, with the plugin from this checkout
    exe = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
    if not os.path.exists(exe):
        pytest.skip("qgis_process.bin not installed (apt install qgis)")
    env["QGIS_PLUGINPATH"] = str(HERE.parent)
    subprocess.run([exe, "plugins", "enable", "xsomo_qgis"], env=env, check=True, capture_output=True, timeout=120)
    out = tmp_path / "cli.gpkg"
    for band, field, raster in ((20, "sm_day20", nc), (41, "sm", nc), (1, "sm", nc.replace(":layer1", ":layer3"))):
        proc = subprocess.run(
            [exe, "--json", "run", "xsomo:sampleatstations", "--", f"INPUT={d / 'stations.gpkg'}", f"RASTER={raster}",
             f"BAND={band}", f"FIELD={field}", f"OUTPUT={out}"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        text = proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "double free" not in text and proc.returncode in (0, 1), (band, proc.returncode, text)
        if band == 20:
            assert proc.returncode == 0, text
            layer = QgsVectorLayer(str(out), "cli", "ogr")
            _assert_layer1_2011_day20({f["station"]: f["sm_day20"] for f in layer.getFeatures()})
            del layer
        elif band == 41:  # a band the file lacks: an error naming it, and a clean exit
            assert proc.returncode == 1 and "band 41 does not exist" in text, text
        else:  # a variable the file lacks
            assert proc.returncode == 1 and "could not be opened by GDAL" in text and "layer3" in text, text


def _shader(layer):
    r = layer.renderer()
    assert r.type() == "singlebandpseudocolor", r.type()
    sh = r.shader().rasterShaderFunction()
    return sh.minimumValue(), sh.maximumValue(), {round(i.value, 6): i.color.name() for i in sh.colorRampItemList()}


def test_outputs_open_with_the_shipped_styles(qgis_app, data_dir, tmp_path):
    """Issue 19 item 6: loadday opens with the sequential soil-moisture ramp, anomalymap (and
    xsomo's anomaly COG) with the diverging z-score ramp centred on 0."""
    import processing

    d, made = data_dir
    day = processing.run(
        "xsomo:loadday",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "DATE": "2010-01-10", "OUTPUT": str(tmp_path / "day.tif")},
    )["OUTPUT"]
    lo, hi, items = _shader(_raster(day))
    assert (lo, hi) == pytest.approx((0.05, 0.5))
    anom = processing.run(
        "xsomo:anomalymap",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "START": "2012-01-05", "END": "2012-01-25",
         "OUTPUT": str(tmp_path / "anom.tif")},
    )["OUTPUT"]
    lo, hi, items = _shader(_raster(anom))
    assert (lo, hi) == pytest.approx((-3.0, 3.0))
    assert items[0.0] == "#f5f5f5"
    if made["xsomo"]:
        lo, hi, items = _shader(_raster(d / "xsomo_anomaly.tif"))
        assert (lo, hi) == pytest.approx((-3.0, 3.0)) and items[0.0] == "#f5f5f5"
        # the station GeoPackage written with style=True opens with its default style from layer_styles
        from qgis.core import QgsVectorLayer

        pts = QgsVectorLayer(f"{d / 'stations_styled.gpkg'}|layername=station_metrics", "st", "ogr")
        assert pts.isValid()
        r = pts.renderer()
        assert r.type() == "graduatedSymbol" and r.classAttribute() == "pearson_r"
        ranges = r.ranges()
        assert len(ranges) == 5
        assert ranges[0].lowerValue() == pytest.approx(0.5) and ranges[-1].upperValue() == pytest.approx(0.9)


BOXES = {"north": (10.12, 50.63, 10.78, 51.17), "east": (10.93, 50.02, 11.58, 50.57)}


def _polygons(path, boxes=BOXES):
    from osgeo import ogr, osr

    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lyr = ds.CreateLayer("zones", srs, ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn("zone", ogr.OFTString))
    for name, (w, s, e, n) in boxes.items():
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("zone", name)
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON (({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"))
        lyr.CreateFeature(f)
    ds = None
    return path


def _box_mean(day, box):
    """cos-latitude weighted mean of value() over the cells whose centres lie in the box (numpy), and
    the number of those cells that hold data (the test files' 'sea' is the same every day), as
    ``xsomo zonal`` counts them. A centre on the box's east or north edge is inside, on its west or
    south edge outside (xsomo's masks: regionmask's rule). No cell: (NaN, 0)."""
    lat, lon = grid()
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    w_, s_, e_, n_ = box
    x, y = lo - 1e-8, la - 1e-10
    inside = (x > w_) & (x < e_) & (y > s_) & (y < n_)
    v = value(1, day, la, lo)
    ok = inside & np.isfinite(v)
    if not ok.any():
        return float("nan"), 0
    wts = np.cos(np.deg2rad(la))
    return float((v[ok] * wts[ok]).sum() / wts[ok].sum()), int(ok.sum())


def test_series_at_points_and_over_polygons(qgis_app, data_dir, tmp_path):
    """Issue 19 item 5: series at each station's cell and the area-weighted mean over polygons."""
    import csv

    import processing

    d, _ = data_dir
    out = processing.run(
        "xsomo:series",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(d / "stations.gpkg"), "FIELD": "station",
         "OUTPUT": str(tmp_path / "points.csv")},
    )["OUTPUT"]
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(STATIONS) * 3 * 40
    for r in rows[:: 7]:
        sid = r["name"]
        x, y = next((sx, sy) for s_, sx, sy in STATIONS if s_ == sid)
        inside = 10.0 <= x < 11.6 and 50.0 <= y < 51.2
        want = float(value(1, dt.date.fromisoformat(r["date"]), *_cell(x, y))) if inside else float("nan")
        if np.isnan(want):
            assert r["sm"] == ""
        else:
            assert float(r["sm"]) == pytest.approx(want, abs=1e-6)
    out = processing.run(
        "xsomo:series",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(_polygons(tmp_path / "zones.gpkg")), "FIELD": "zone",
         "OUTPUT": str(tmp_path / "zones.csv")},
    )["OUTPUT"]
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["name"] for r in rows} == set(BOXES)
    for r in rows[:: 5]:
        want, n = _box_mean(dt.date.fromisoformat(r["date"]), BOXES[r["name"]])
        assert float(r["sm"]) == pytest.approx(want, rel=1e-6)
        assert int(r["n_cells"]) == n


def test_a_missing_name_field_is_named_with_the_fields_there_are(qgis_app, data_dir, tmp_path):
    """Hostile test F6: a FIELD the layer lacks was a raw traceback (KeyError: 'NOPE') in series and
    zonalstats; now an error naming the field and the layer's fields."""
    d, _ = data_dir
    zones = str(_polygons(tmp_path / "zones.gpkg"))
    for alg, inp, extra in (
        ("xsomo:series", str(d / "stations.gpkg"), {"OUTPUT": str(tmp_path / "s.csv")}),
        ("xsomo:series", zones, {"OUTPUT": str(tmp_path / "z.csv")}),
        ("xsomo:zonalstats", zones, {"START": "2012-01-05", "END": "2012-01-25", "OUTPUT": str(tmp_path / "z.gpkg")}),
    ):
        msg = _run_expecting_error(alg, {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": inp, "FIELD": "NOPE", **extra})
        assert "KeyError" not in msg and "'NOPE'" in msg and "no field" in msg, (alg, msg)
        assert ("'station'" if inp.endswith("stations.gpkg") else "'zone'") in msg, (alg, msg)


def test_zonal_statistics_of_a_period(qgis_app, data_dir, tmp_path):
    """Issue 19 item 5: per polygon the area-weighted period mean and the period anomaly (numpy oracle)."""
    import processing
    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    res = processing.run(
        "xsomo:zonalstats",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(_polygons(tmp_path / "zones.gpkg")), "FIELD": "zone",
         "START": "2012-01-05", "END": "2012-01-25", "OUTPUT": str(tmp_path / "zonal.gpkg")},
    )
    layer = QgsVectorLayer(res["OUTPUT"], "zonal", "ogr")
    got = {f["zone"]: (f["mean_sm"], f["anomaly_z"], f["n_years"], f["n_cells"]) for f in layer.getFeatures()}
    from qgis.core import QgsPalLayerSettings, QgsVectorLayerSimpleLabeling

    label = QgsPalLayerSettings()
    label.fieldName = "\"zone\" || ': z ' || format_number(\"anomaly_z\", 2)"
    label.isExpression = True
    layer.setLabeling(QgsVectorLayerSimpleLabeling(label))
    layer.setLabelsEnabled(True)
    layer.renderer().symbol().setOpacity(0.35)
    anom = processing.run(
        "xsomo:anomalymap",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "START": "2012-01-05", "END": "2012-01-25",
         "OUTPUT": str(tmp_path / "anom.tif")},
    )["OUTPUT"]
    raster = _raster(anom)
    _render([layer, raster], raster, "qgis_zonalstats", tmp_path)
    assert set(got) == set(BOXES)
    for name, box in BOXES.items():
        means = []
        for y in (2010, 2011, 2012):
            days = [dt.date(y, 1, 5) + dt.timedelta(days=i) for i in range(21)]
            means.append(np.mean([_box_mean(day, box)[0] for day in days]))
        z = (means[2] - np.mean(means)) / np.std(means, ddof=1)
        mean_sm, anomaly_z, n_years, n_cells = got[name]
        assert mean_sm == pytest.approx(means[2], rel=1e-6)
        assert anomaly_z == pytest.approx(z, rel=1e-4, abs=1e-6)
        assert n_years == 3 and n_cells == _box_mean(dt.date(2010, 1, 1), box)[1]


#: polygons whose cells the counts disagreed on: 6 of the 20 'coast' cells are sea, 'tiny' holds no
#: cell centre, the edges of 'on centres' pass through cell centres (GDAL alone took 20 cells, xsomo 16)
HOSTILE_BOXES = {
    "coast": (11.12, 50.82, 11.58, 51.18),
    "tiny": (10.51, 50.51, 10.54, 50.54),
    "on centres, edges": (10.25, 50.25, 10.65, 50.65),
}


def test_cells_without_data_and_edges_count_as_in_xsomo_zonal(qgis_app, data_dir, tmp_path):
    """QA: n_cells counts only the cells holding data (sea cells not), a polygon without a cell has
    n_cells 0, n_years 0 and no statistics, and edges through centres pick xsomo's cells."""
    import csv

    import processing
    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    zones = _polygons(tmp_path / "hostile.gpkg", HOSTILE_BOXES)
    assert _box_mean(dt.date(2010, 1, 1), HOSTILE_BOXES["coast"])[1] == 14
    assert _box_mean(dt.date(2010, 1, 1), HOSTILE_BOXES["on centres, edges"])[1] == 16
    res = processing.run(
        "xsomo:zonalstats",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(zones), "FIELD": "zone",
         "START": "2012-01-05", "END": "2012-01-25", "OUTPUT": str(tmp_path / "zonal.gpkg")},
    )
    layer = QgsVectorLayer(res["OUTPUT"], "zonal", "ogr")
    got = {f["zone"]: (f["mean_sm"], f["n_years"], f["n_cells"]) for f in layer.getFeatures()}
    for name, box in HOSTILE_BOXES.items():
        days = [dt.date(2012, 1, 5) + dt.timedelta(days=i) for i in range(21)]
        n = _box_mean(days[0], box)[1]
        mean_sm, n_years, n_cells = got[name]
        assert n_cells == n, name
        if n == 0:
            assert mean_sm is None or getattr(mean_sm, "isNull", lambda: False)() or mean_sm != mean_sm, name  # NULL
            assert n_years == 0, name
        else:
            assert mean_sm == pytest.approx(np.mean([_box_mean(day, box)[0] for day in days]), rel=1e-6), name
            assert n_years == 3, name
    out = processing.run(
        "xsomo:series",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(zones), "FIELD": "zone",
         "OUTPUT": str(tmp_path / "hostile.csv")},
    )["OUTPUT"]
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["name"] for r in rows} == set(HOSTILE_BOXES)  # the label with a comma is quoted
    for r in rows:
        assert int(r["n_cells"]) == _box_mean(dt.date(2010, 1, 1), HOSTILE_BOXES[r["name"]])[1]


def _zones(path, zones):
    """A GeoPackage of ``{name: WKT}`` (EPSG:4326, coordinates kept as written: 0..360 too)."""
    from osgeo import ogr, osr

    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lyr = ds.CreateLayer("zones", srs, ogr.wkbMultiPolygon)
    lyr.CreateField(ogr.FieldDefn("zone", ogr.OFTString))
    for name, wkt in zones.items():
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("zone", name)
        f.SetGeometry(ogr.ForceToMultiPolygon(ogr.CreateGeometryFromWkt(wkt)))
        lyr.CreateFeature(f)
    ds = None
    return path


def _wrapped_box_cells(bounds, wkt):
    """Cells of the grid ``bounds`` whose centres lie in one of the boxes of ``wkt`` moved by any multiple
    of 360 deg (longitudes are periodic), with xsomo's edge rule (numpy)."""
    from osgeo import ogr

    lat, lon = grid(*bounds)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    geom = ogr.CreateGeometryFromWkt(wkt)
    parts = [geom.GetGeometryRef(i) for i in range(geom.GetGeometryCount())] if geom.GetGeometryCount() > 1 else [geom]
    inside = np.zeros(la.shape, dtype=bool)
    for part in parts:
        w_, e_, s_, n_ = part.GetEnvelope()
        for k in (-1, 0, 1):
            x, y = lo + 360.0 * k - 1e-8, la - 1e-10
            inside |= (x > w_) & (x < e_) & (y > s_) & (y < n_)
    return la, lo, inside


def test_polygons_in_the_other_longitude_convention_cover_their_cells(qgis_app, data_dir, tmp_path):
    """QA: polygons are taken in the grid's longitudes, as xsomo does (in_grid_longitudes): a polygon
    over 355..365 deg on a grid from -10 to 10 deg covers the cells of -5..5 deg (GDAL alone: none),
    one in -180..180 over a grid of 170..190 deg the cells of 180..190 (GDAL alone: half or none)."""
    import csv

    import processing
    from make_test_data import WRAP_GRIDS, WRAP_ZONES
    from xsomo_qgis.somo_files import SomoFileError, grid_longitude_range, longitude_shifts

    assert grid_longitude_range(-9.95, 9.95) == (-180.0, 180.0)
    assert grid_longitude_range(170.05, 189.95) == (0.0, 360.0)
    with pytest.raises(SomoFileError, match="mixing"):
        grid_longitude_range(-9.95, 189.95)
    assert longitude_shifts(-5, 5, -180, 180) == [0]
    assert longitude_shifts(355, 365, -180, 180) == [1]
    assert longitude_shifts(170, 190, -180, 180) == [0, 1]
    assert longitude_shifts(-179, -172, 0, 360) == [-1]

    d, made = data_dir
    for folder, zones in WRAP_ZONES.items():
        out = processing.run(
            "xsomo:series",
            {"FOLDER": str(d / folder), "LAYER": 1, "INPUT": str(_zones(tmp_path / f"{folder}.gpkg", zones)),
             "FIELD": "zone", "OUTPUT": str(tmp_path / f"{folder}.csv")},
        )["OUTPUT"]
        with open(out, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert {r["name"] for r in rows} == set(zones)
        for name, wkt in zones.items():
            la, lo, inside = _wrapped_box_cells(WRAP_GRIDS[folder], wkt)
            got = [r for r in rows if r["name"] == name]
            assert {int(r["n_cells"]) for r in got} == {int(inside.sum())}, (folder, name)
            assert inside.sum() in (120, 210, 300)
            wts = np.cos(np.deg2rad(la))
            for r in got:
                v = value(1, dt.date.fromisoformat(r["date"]), la, lo)
                want = float((v[inside] * wts[inside]).sum() / wts[inside].sum())
                assert float(r["sm"]) == pytest.approx(want, rel=1e-6), (folder, name, r["date"])
            if made.get("wrap_xsomo"):  # xsomo's own masks (make_test_data.py ran xsomo.gis.zonal)
                n_xsomo, sm_xsomo = made["wrap_xsomo"][folder][name]
                assert int(got[0]["n_cells"]) == n_xsomo, (folder, name)
                assert [float(r["sm"]) for r in got] == pytest.approx(sm_xsomo, rel=1e-6), (folder, name)


def test_multipoints_and_files_on_another_grid_are_refused(qgis_app, data_dir, tmp_path):
    """QA: a MultiPoint of several points is refused (not its first point only); a folder whose
    files lie on different grids is refused naming the file (not drawn on the first file's grid)."""
    from osgeo import ogr, osr

    d, _ = data_dir
    path = tmp_path / "multi.gpkg"
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lyr = ds.CreateLayer("pts", srs, ogr.wkbMultiPoint)
    lyr.CreateField(ogr.FieldDefn("station", ogr.OFTString))
    f = ogr.Feature(lyr.GetLayerDefn())
    f.SetField("station", "two")
    f.SetGeometry(ogr.CreateGeometryFromWkt("MULTIPOINT ((10.05 51.15), (10.73 50.42))"))
    lyr.CreateFeature(f)
    ds = None
    msg = _run_expecting_error(
        "xsomo:series",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(path), "FIELD": "station",
         "OUTPUT": str(tmp_path / "multi.csv")},
    )
    assert "MultiPoint of 2 points" in msg and "two" in msg, msg

    mixed = d / "somo_mixed"  # (make_test_data.py: the 2011 file shifted 0.5 deg east)
    for alg, extra in (("xsomo:timelayer", {"OUTPUT": str(tmp_path / "m.vrt"), "LOAD": False}),
                       ("xsomo:loadday", {"DATE": "2010-01-05", "OUTPUT": str(tmp_path / "m.tif")})):
        msg = _run_expecting_error(alg, {"FOLDER": str(mixed), "LAYER": 1, **extra})
        assert "SoMo.ml-EU_layer1_2011.nc" in msg and "grid differs" in msg, msg
    assert not (tmp_path / "m.vrt").exists()


def _day_layer(layers, day):
    """The one layer of a time group that the Temporal Controller shows on ``day``."""
    from qgis.core import QgsDateTimeRange
    from qgis.PyQt.QtCore import QDate, QDateTime, Qt, QTime

    noon = QDateTime(QDate(day.year, day.month, day.day), QTime(12, 0), Qt.UTC)
    rng = QgsDateTimeRange(noon, noon)
    hits = [lay for lay in layers if lay.temporalProperties().isVisibleInTemporalRange(rng)]
    assert len(hits) == 1, [h.name() for h in hits]
    return hits[0]


def test_time_layer_steps_to_the_right_day(qgis_app, data_dir, tmp_path):
    """Issue 19 item 4: the VRT has one band per day (descriptions = dates, unit m3 m-3); the .qlr group
    loads with one temporal layer per day; the layer shown on a day samples that day's value."""
    import processing
    from osgeo import gdal
    from qgis.core import QgsLayerDefinition, QgsProject

    d, made = data_dir
    project = QgsProject()
    res = processing.run(
        "xsomo:timelayer",
        {"FOLDER": str(d / "somo"), "LAYER": 1, "OUTPUT": str(tmp_path / "stack.vrt"), "LOAD": False},
    )
    assert res["N_DAYS"] == 3 * 40
    ds = gdal.Open(res["OUTPUT"])
    assert ds.RasterCount == 120
    assert ds.GetRasterBand(1).GetDescription() == "2010-01-01"
    assert ds.GetRasterBand(120).GetDescription() == "2012-02-09"
    assert ds.GetRasterBand(41).GetUnitType() == "m3 m-3"
    assert QgsLayerDefinition.loadLayerDefinition(res["QLR"], project, project.layerTreeRoot())[0]
    layers = list(project.mapLayers().values())
    assert len(layers) == 120 and all(lay.isValid() for lay in layers)
    for day in (dt.date(2010, 1, 1), dt.date(2011, 1, 20), dt.date(2012, 2, 9)):
        lay = _day_layer(layers, day)
        assert lay.name() == day.isoformat()
        assert lay.temporalProperties().isActive()
        band = lay.renderer().band()
        for x, y in POINTS[:3]:
            la, lo = _cell(x, y)
            assert _sample(lay, x, y, band) == pytest.approx(float(value(1, day, la, lo)), abs=1e-7)
    _render([_day_layer(layers, dt.date(2011, 1, 20))], layers[0], "qgis_timelayer_2011-01-20", tmp_path)
    # the stack `xsomo export --out *.vrt` writes loads and steps the same way
    if made["xsomo"]:
        other = QgsProject()
        assert QgsLayerDefinition.loadLayerDefinition(str(d / "xsomo_stack.qlr"), other, other.layerTreeRoot())[0]
        layers = list(other.mapLayers().values())
        assert len(layers) == 120 and all(lay.isValid() for lay in layers)
        lay = _day_layer(layers, dt.date(2011, 1, 20))
        la, lo = _cell(*POINTS[1])
        assert _sample(lay, *POINTS[1], lay.renderer().band()) == pytest.approx(
            float(value(1, dt.date(2011, 1, 20), la, lo)), abs=1e-7
        )


# --------------------------------------------------------------------------- QA pass 2: xsomo's rules in the plugin


def _vector(path, kind, features, epsg=4326, driver="GPKG"):
    """A vector file of ``{name: WKT}`` (``kind``: ogr.wkbPoint / wkbPolygon) in ``epsg`` (None: no CRS)."""
    from osgeo import ogr, osr

    ds = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    srs = None
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lyr = ds.CreateLayer("features", srs, kind)
    lyr.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for name, wkt in features.items():
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("name", name)
        f.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        lyr.CreateFeature(f)
    ds = None
    return path


def _to_crs(points, epsg):
    """``[(x, y)]`` in EPSG:4326 lon/lat to ``epsg``."""
    from osgeo import osr

    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromEPSG(4326)
    b.ImportFromEPSG(epsg)
    for s in (a, b):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    t = osr.CoordinateTransformation(a, b)
    return [t.TransformPoint(x, y)[:2] for x, y in points]


def _box_wkt(corners):
    ring = [*corners, corners[0]]
    return "POLYGON ((" + ", ".join(f"{x!r} {y!r}" for x, y in ring) + "))"


def _series_rows(path):
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_polygon_across_the_antimeridian_in_a_projected_crs_is_refused(qgis_app, data_dir, tmp_path):
    """QA 2 defect 1: a box over 179.5E..179.5W drawn in EPSG:3832 (Pacific-centred) comes back in
    EPSG:4326 from -179.5 to 179.5, and its mask took the 30 cells outside it (179.05..179.45 and
    180.55..180.95 of a 0..360 grid). Refused as xsomo refuses it (drivers.regions: 'Split it at 180°')."""
    import processing
    from osgeo import ogr

    d, _ = data_dir
    corners = _to_crs([(179.5, 50.1), (-179.5, 50.1), (-179.5, 50.4), (179.5, 50.4)], 3832)
    path = _vector(tmp_path / "pacific.gpkg", ogr.wkbPolygon, {"pacific": _box_wkt(corners)}, 3832)
    for alg, extra in (
        ("xsomo:zonalstats", {"START": "2010-01-01", "END": "2010-01-05", "OUTPUT": str(tmp_path / "z.gpkg")}),
        ("xsomo:series", {"OUTPUT": str(tmp_path / "s.csv")}),
    ):
        msg = _run_expecting_error(
            alg, {"FOLDER": str(d / "somo_360"), "LAYER": 1, "INPUT": str(path), "FIELD": "name", **extra}
        )
        assert "'pacific' spans more than 180° of longitude" in msg and "Split it at 180°" in msg, (alg, msg)
    # the same box split at 180 (drawn in EPSG:4326 on both sides) selects its 10 x 3 cells around 180
    halves = {
        "pacific": "MULTIPOLYGON (((179.5 50.1, 180 50.1, 180 50.4, 179.5 50.4, 179.5 50.1)),"
        "((-180 50.1, -179.5 50.1, -179.5 50.4, -180 50.4, -180 50.1)))"
    }
    out = processing.run(
        "xsomo:series",
        {"FOLDER": str(d / "somo_360"), "LAYER": 1, "INPUT": str(_vector(tmp_path / "halves.gpkg", ogr.wkbMultiPolygon, halves)),
         "FIELD": "name", "OUTPUT": str(tmp_path / "halves.csv")},
    )["OUTPUT"]
    assert {int(r["n_cells"]) for r in _series_rows(out)} == {30}


#: points on cell edges (a point on an inner edge belongs to the cell to its north-east), and the centre
#: of that cell; stations given to 1-2 decimals lie on the edges of a 0.1-degree grid
EDGE_POINTS = {
    "10.3 50.2": ((10.3, 50.2), (10.35, 50.25)),
    "10.7 50.5": ((10.7, 50.5), (10.75, 50.55)),
    "11.0 51.1": ((11.0, 51.1), (11.05, 51.15)),
    "10.1 50.9": ((10.1, 50.9), (10.15, 50.95)),
    "11.5 50.0": ((11.5, 50.0), (11.55, 50.05)),
    "10.0 50.4": ((10.0, 50.4), (10.05, 50.45)),
}


def test_float32_coordinates_are_snapped_to_the_grid(qgis_app, data_dir, tmp_path):
    """QA 2 defect 2: over files with float32 lat/lon, GDAL's geotransform is x0 = 10.00000019,
    dy = -0.1000002: points on cell edges went to the cell west of them and polygon edges through
    centres took xsomo's outside cells. The grid is snapped as xsomo places it (edges and steps
    rounded to 1e-6), so series, sampleatstations, zonalstats and the outputs' placement agree with
    xsomo's cell rule and masks."""
    import processing
    from osgeo import gdal, ogr
    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    folder = str(d / "somo_f32")
    day = dt.date(2011, 1, 20)
    raw = gdal.Open(f'NETCDF:"{d}/somo_f32/SoMo.ml-EU_layer1_2011.nc":layer1').GetGeoTransform()
    assert raw[0] != 10.0  # the files are as hostile as the published ones
    tif = processing.run(
        "xsomo:loadday", {"FOLDER": folder, "LAYER": 1, "DATE": day.isoformat(), "OUTPUT": str(tmp_path / "d.tif")}
    )["OUTPUT"]
    assert gdal.Open(tif).GetGeoTransform() == (10.0, 0.1, 0.0, 51.2, 0.0, -0.1)
    pts = _vector(tmp_path / "edges.gpkg", ogr.wkbPoint, {n: f"POINT ({x!r} {y!r})" for n, ((x, y), _) in EDGE_POINTS.items()})
    rows = _series_rows(processing.run(
        "xsomo:series", {"FOLDER": folder, "LAYER": 1, "INPUT": str(pts), "FIELD": "name", "OUTPUT": str(tmp_path / "e.csv")}
    )["OUTPUT"])
    got = {r["name"]: float(r["sm"] or "nan") for r in rows if r["date"] == day.isoformat()}
    sampled = processing.run(
        "xsomo:sampleatstations",
        {"INPUT": str(pts), "RASTER": tif, "BAND": 1, "FIELD": "sm", "OUTPUT": str(tmp_path / "s.gpkg")},
    )["OUTPUT"]
    sampled = {f["name"]: f["sm"] for f in QgsVectorLayer(sampled, "s", "ogr").getFeatures()}
    for name, (_, (lon_c, lat_c)) in EDGE_POINTS.items():
        want = float(value(1, day, lat_c, lon_c))
        assert got[name] == pytest.approx(want, abs=1e-7), name
        assert sampled[name] == pytest.approx(want, abs=1e-7), name
    # polygons whose edges run through cell centres: xsomo's cells (east/north edges in, west/south out)
    zones = _polygons(tmp_path / "hostile.gpkg", HOSTILE_BOXES)
    res = processing.run(
        "xsomo:zonalstats",
        {"FOLDER": folder, "LAYER": 1, "INPUT": str(zones), "FIELD": "zone",
         "START": "2012-01-05", "END": "2012-01-25", "OUTPUT": str(tmp_path / "z.gpkg")},
    )
    got = {f["zone"]: (f["n_cells"], f["mean_sm"]) for f in QgsVectorLayer(res["OUTPUT"], "z", "ogr").getFeatures()}
    for name, box in HOSTILE_BOXES.items():
        n = _box_mean(dt.date(2012, 1, 5), box)[1]
        assert got[name][0] == n, name
        if n:
            days = [dt.date(2012, 1, 5) + dt.timedelta(days=i) for i in range(21)]
            assert got[name][1] == pytest.approx(np.mean([_box_mean(dd, box)[0] for dd in days]), rel=1e-6), name
    # a grid whose step is not a whole 1e-6 degree (1/120) keeps its exact step (xsomo's axis_step)
    from xsomo_qgis.somo_files import snap_geotransform

    odd = (10.0, 1 / 120, 0.0, 51.0, 0.0, -1 / 120)
    assert snap_geotransform(odd, (4320, 4320)) == odd
    assert snap_geotransform((10.000000190734863, 0.1, 0.0, 51.2000016299161, 0.0, -0.1000002080743963), (12, 16)) == (
        10.0, 0.1, 0.0, 51.2, 0.0, -0.1
    )
    # float32 50.35 is 50.3499985: rounding GDAL's edge to 1e-6 alone gave 50.399998 (QA's file)
    assert snap_geotransform(
        (10.000000238418579, 0.09999990463256836, 0.0, 50.399998346964516, 0.0, -0.09999974568684895), (4, 5)
    ) == (10.0, 0.1, 0.0, 50.4, 0.0, -0.1)


def test_points_in_the_other_longitude_convention_get_their_cell(qgis_app, data_dir, tmp_path):
    """QA 2 defect 3: a station at -179.55 over a grid in 0..360 (170..190) is the cell at 180.45, one at
    359.45 over a grid across 0 deg the cell at -0.55 (xsomo's lon_like_grid); both had no data, in
    series and in sampleatstations."""
    import processing
    from make_test_data import WRAP_GRIDS
    from osgeo import ogr
    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    day = dt.date(2010, 1, 3)
    for folder, same in (("somo_360", {"-179.55": (180.45, 50.25), "180.45": (180.45, 50.25), "-170.03": (189.95, 50.05)}),
                         ("somo_zero", {"359.45": (-0.55, 50.25), "-0.55": (-0.55, 50.25), "369.03": (9.05, 50.45)})):
        pts = {name: f"POINT ({float(name)!r} {lat_c + 0.01!r})" for name, (_, lat_c) in same.items()}
        path = _vector(tmp_path / f"{folder}.gpkg", ogr.wkbPoint, pts)
        rows = _series_rows(processing.run(
            "xsomo:series",
            {"FOLDER": str(d / folder), "LAYER": 1, "INPUT": str(path), "FIELD": "name", "OUTPUT": str(tmp_path / f"{folder}.csv")},
        )["OUTPUT"])
        got = {r["name"]: (r["sm"], int(r["n_cells"])) for r in rows if r["date"] == day.isoformat()}
        tif = processing.run(
            "xsomo:loadday", {"FOLDER": str(d / folder), "LAYER": 1, "DATE": day.isoformat(), "OUTPUT": str(tmp_path / f"{folder}.tif")}
        )["OUTPUT"]
        out = processing.run(
            "xsomo:sampleatstations",
            {"INPUT": str(path), "RASTER": tif, "BAND": 1, "FIELD": "sm", "OUTPUT": str(tmp_path / f"{folder}_s.gpkg")},
        )["OUTPUT"]
        sampled = {f["name"]: f["sm"] for f in QgsVectorLayer(out, "s", "ogr").getFeatures()}
        for name, (lon_c, lat_c) in same.items():
            want = float(value(1, day, lat_c, lon_c))
            assert got[name][1] == 1 and float(got[name][0]) == pytest.approx(want, abs=1e-7), (folder, name, got[name])
            assert sampled[name] == pytest.approx(want, abs=1e-7), (folder, name, sampled[name])
        assert WRAP_GRIDS[folder]


def test_packed_files_are_unpacked(qgis_app, data_dir, tmp_path):
    """QA 2 defect 4: int16 files with scale_factor/add_offset and a _FillValue (as other producers write
    netCDF) were read as the raw integers (2548 for 0.2598 m3 m-3): loadday, series, zonalstats and the
    time layer now give m3 m-3 (as xarray decodes them for xsomo), the fill value NaN; the anomaly
    (scale-invariant) keeps the fill value out."""
    import processing
    from make_test_data import PACKING
    from osgeo import gdal, ogr
    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    folder = str(d / "somo_packed")
    tol = PACKING[0] / 2 + 1e-7
    day = dt.date(2011, 1, 20)
    layer = _raster(processing.run(
        "xsomo:loadday", {"FOLDER": folder, "LAYER": 1, "DATE": day.isoformat(), "OUTPUT": str(tmp_path / "p.tif")}
    )["OUTPUT"])
    lat, lon = grid()
    want = value(1, day, lat[:, None], lon[None, :])
    got = _all_cells(layer)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], atol=tol)
    pts = _vector(tmp_path / "pts.gpkg", ogr.wkbPoint, {f"p{i}": f"POINT ({x!r} {y!r})" for i, (x, y) in enumerate(POINTS)})
    rows = _series_rows(processing.run(
        "xsomo:series", {"FOLDER": folder, "LAYER": 1, "INPUT": str(pts), "FIELD": "name", "OUTPUT": str(tmp_path / "p.csv")}
    )["OUTPUT"])
    for r in rows[::11]:
        x, y = POINTS[int(r["name"][1:])]
        assert float(r["sm"]) == pytest.approx(float(value(1, dt.date.fromisoformat(r["date"]), *_cell(x, y))), abs=tol)
    res = processing.run(
        "xsomo:zonalstats",
        {"FOLDER": folder, "LAYER": 1, "INPUT": str(_polygons(tmp_path / "zones.gpkg", HOSTILE_BOXES)), "FIELD": "zone",
         "START": "2012-01-05", "END": "2012-01-25", "OUTPUT": str(tmp_path / "z.gpkg")},
    )
    for f in QgsVectorLayer(res["OUTPUT"], "z", "ogr").getFeatures():
        box = HOSTILE_BOXES[f["zone"]]
        n = _box_mean(dt.date(2012, 1, 5), box)[1]
        assert f["n_cells"] == n  # the fill value (the 'sea') holds no data
        if n:
            days = [dt.date(2012, 1, 5) + dt.timedelta(days=i) for i in range(21)]
            assert f["mean_sm"] == pytest.approx(np.mean([_box_mean(dd, box)[0] for dd in days]), abs=tol)
    anom = _all_cells(_raster(processing.run(
        "xsomo:anomalymap",
        {"FOLDER": folder, "LAYER": 1, "START": "2012-01-05", "END": "2012-01-25", "OUTPUT": str(tmp_path / "a.tif")},
    )["OUTPUT"]))
    z = _expected_anomaly(dt.date(2012, 1, 5), dt.date(2012, 1, 25), 2012)
    assert np.array_equal(np.isnan(anom), np.isnan(z))
    res = processing.run("xsomo:timelayer", {"FOLDER": folder, "LAYER": 1, "OUTPUT": str(tmp_path / "t.vrt"), "LOAD": False})
    vrt = gdal.Open(res["OUTPUT"])  # (kept: a band outliving its dataset crashes GDAL's bindings)
    band = vrt.GetRasterBand(40 + 20)  # 2011-01-20
    assert band.GetDescription() == day.isoformat()
    got = band.ReadAsArray().astype(float)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], atol=tol)


def test_files_without_a_grid_mapping_are_epsg_4326(qgis_app, data_dir, tmp_path):
    """QA 2 defect 5: files without a grid mapping (older SoMo.ml v1 files) gave outputs without a CRS,
    and stations in EPSG:3035 sampled NULL on them; they are EPSG:4326, as xsomo reads them."""
    import processing
    from osgeo import gdal, ogr
    from qgis.core import QgsVectorLayer

    d, _ = data_dir
    folder = str(d / "somo_nogm")
    src = f'NETCDF:"{d}/somo_nogm/SoMo.ml-EU_layer1_2011.nc":layer1'
    assert gdal.Open(src).GetProjection() == ""
    day = dt.date(2011, 1, 20)
    tif = processing.run(
        "xsomo:loadday", {"FOLDER": folder, "LAYER": 1, "DATE": day.isoformat(), "OUTPUT": str(tmp_path / "d.tif")}
    )["OUTPUT"]
    anom = processing.run(
        "xsomo:anomalymap",
        {"FOLDER": folder, "LAYER": 1, "START": "2012-01-05", "END": "2012-01-25", "OUTPUT": str(tmp_path / "a.tif")},
    )["OUTPUT"]
    vrt = processing.run("xsomo:timelayer", {"FOLDER": folder, "LAYER": 1, "OUTPUT": str(tmp_path / "t.vrt"), "LOAD": False})["OUTPUT"]
    for path in (tif, anom, vrt):
        assert _raster(path).crs().authid() == "EPSG:4326", path
    inside = [(sid, x, y) for sid, x, y in STATIONS if 10.0 <= x < 11.6 and 50.0 <= y < 51.2]
    xy = _to_crs([(x, y) for _, x, y in inside], 3035)
    path = _vector(tmp_path / "st3035.gpkg", ogr.wkbPoint, {sid: f"POINT ({x!r} {y!r})" for (sid, _, _), (x, y) in zip(inside, xy, strict=True)}, 3035)
    for raster, band in ((tif, 1), (src, 20)):
        out = processing.run(
            "xsomo:sampleatstations",
            {"INPUT": str(path), "RASTER": raster, "BAND": band, "FIELD": "sm", "OUTPUT": str(tmp_path / f"s{band}.gpkg")},
        )["OUTPUT"]
        got = {f["name"]: f["sm"] for f in QgsVectorLayer(out, "s", "ogr").getFeatures()}
        for sid, x, y in inside:
            want = float(value(1, day, *_cell(x, y)))
            if np.isnan(want):
                assert got[sid] is None or got[sid] != got[sid] or str(got[sid]) == "NULL", (raster, sid)
            else:
                assert got[sid] == pytest.approx(want, abs=1e-7), (raster, sid, got[sid])


def test_polygons_without_crs_in_metres_are_refused(qgis_app, data_dir, tmp_path):
    """QA 2 defect 6: a shapefile without its .prj whose coordinates are metres (EPSG:3035) gave n_cells 0
    and NULL for every polygon; refused as xsomo refuses it ('set their CRS'). Without a CRS, coordinates
    that can be degrees are taken as EPSG:4326 (as xsomo)."""
    import processing
    from osgeo import ogr

    d, _ = data_dir
    box = HOSTILE_BOXES["on centres, edges"]
    w, s, e, n = box
    corners = [(w, s), (e, s), (e, n), (w, n)]
    metres = _vector(tmp_path / "metres.shp", ogr.wkbPolygon, {"m": _box_wkt(_to_crs(corners, 3035))}, None, "ESRI Shapefile")
    assert not (tmp_path / "metres.prj").exists()
    for alg, extra in (
        ("xsomo:zonalstats", {"START": "2012-01-05", "END": "2012-01-25", "OUTPUT": str(tmp_path / "z.gpkg")}),
        ("xsomo:series", {"OUTPUT": str(tmp_path / "s.csv")}),
    ):
        msg = _run_expecting_error(alg, {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(metres), "FIELD": "name", **extra})
        assert "have no CRS and their coordinates are not degrees" in msg and "set their CRS" in msg, (alg, msg)
    degrees = _vector(tmp_path / "degrees.shp", ogr.wkbPolygon, {"deg": _box_wkt(corners)}, None, "ESRI Shapefile")
    rows = _series_rows(processing.run(
        "xsomo:series", {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(degrees), "FIELD": "name", "OUTPUT": str(tmp_path / "d.csv")}
    )["OUTPUT"])
    assert {int(r["n_cells"]) for r in rows} == {_box_mean(dt.date(2010, 1, 1), box)[1]}


def test_a_folder_of_two_products_is_refused(qgis_app, data_dir, tmp_path):
    """QA 2 defect 7: SoMo.ml-EU and SoMo.ml v1 files in one folder were stacked as one series; refused as
    xsomo.open_somo refuses it (one product at a time)."""
    d, _ = data_dir
    for alg, extra in (
        ("xsomo:loadday", {"DATE": "2010-01-05", "OUTPUT": str(tmp_path / "a.tif")}),
        ("xsomo:anomalymap", {"START": "2011-01-05", "END": "2011-01-09", "OUTPUT": str(tmp_path / "b.tif")}),
    ):
        msg = _run_expecting_error(alg, {"FOLDER": str(d / "somo_products"), "LAYER": 1, **extra})
        assert "several products" in msg and "SoMo.ml-EU" in msg and "SoMo.ml_v1" in msg, msg


def test_a_missing_middle_year_is_named(qgis_app, data_dir, tmp_path):
    """QA 2 defect 9: a day of a year whose file is missing from the folder said only that it is not in the
    files (2010-01-01 ... 2012-02-09); the message names the file that is probably missing."""
    d, _ = data_dir
    for alg, extra in (
        ("xsomo:loadday", {"DATE": "2011-01-05", "OUTPUT": str(tmp_path / "a.tif")}),
        ("xsomo:anomalymap", {"START": "2011-01-05", "END": "2011-01-09", "OUTPUT": str(tmp_path / "b.tif")}),
    ):
        msg = _run_expecting_error(alg, {"FOLDER": str(d / "somo_gap"), "LAYER": 1, **extra})
        assert "file for 2011 is probably missing from the folder" in msg and "SoMo.ml-EU_layer1_2011.nc" in msg, msg
    # a day beyond the files is not blamed on a missing file
    msg = _run_expecting_error(
        "xsomo:loadday", {"FOLDER": str(d / "somo_gap"), "LAYER": 1, "DATE": "2013-01-05", "OUTPUT": str(tmp_path / "c.tif")}
    )
    assert "not in the layer-1 files" in msg and "missing from the folder" not in msg, msg


def _cells_in(geom_4326):
    """Cells of the test grid whose centres (tested 1e-8 deg west and 1e-10 deg south, as xsomo's masks)
    lie in an OGR geometry in EPSG:4326 lon/lat."""
    from osgeo import ogr

    lat, lon = grid()
    inside = np.zeros((lat.size, lon.size), dtype=bool)
    for i, la in enumerate(lat):
        for j, lo in enumerate(lon):
            inside[i, j] = geom_4326.Contains(ogr.CreateGeometryFromWkt(f"POINT ({lo - 1e-8!r} {la - 1e-10!r})"))
    return inside


def test_projected_polygons_are_densified_before_they_go_to_degrees(qgis_app, data_dir, tmp_path):
    """QA 2 (t6): a polygon drawn in EPSG:3035 has straight edges there, curves in degrees. xsomo
    segmentizes it at 1 km before EPSG:4326 (drivers.regions._in_degrees); the plugin took the chords
    between its corners, and a box whose corners lie on cell centres counted other cells (3 for 4)."""
    import processing
    from osgeo import ogr, osr

    d, _ = data_dir
    w, s, e, n = 10.05, 50.05, 11.55, 51.15  # corners on cell centres, edges 100+ km long
    corners = _to_crs([(w, s), (e, s), (e, n), (w, n)], 3035)
    path = _vector(tmp_path / "box3035.gpkg", ogr.wkbPolygon, {"box": _box_wkt(corners)}, 3035)
    geom = ogr.CreateGeometryFromWkt(_box_wkt(corners))
    geom.Segmentize(1000.0)
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromEPSG(3035)
    b.ImportFromEPSG(4326)
    for srs in (a, b):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    geom.Transform(osr.CoordinateTransformation(a, b))
    inside = _cells_in(geom)
    lat, lon = grid()
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    day = dt.date(2010, 1, 3)
    v = value(1, day, la, lo)
    ok = inside & np.isfinite(v)
    wts = np.cos(np.deg2rad(la))
    rows = _series_rows(processing.run(
        "xsomo:series", {"FOLDER": str(d / "somo"), "LAYER": 1, "INPUT": str(path), "FIELD": "name", "OUTPUT": str(tmp_path / "b.csv")}
    )["OUTPUT"])
    got = next(r for r in rows if r["date"] == day.isoformat())
    assert int(got["n_cells"]) == int(ok.sum())
    assert float(got["sm"]) == pytest.approx(float((v[ok] * wts[ok]).sum() / wts[ok].sum()), rel=1e-6)


# --------------------------------------------------------------------------- QA pass 3: station CRSs


def _assert_sampled(got, want, what):
    """A sampled field: NULL where the raster holds NaN (sea), else the value."""
    if np.isnan(want):
        assert got is None or got != got or str(got) == "NULL", (what, got)
    else:
        assert got == pytest.approx(want, abs=1e-7), (what, got, want)


def test_sampleatstations_places_stations_by_their_crs(qgis_app, data_dir, tmp_path):
    """QA 3 item 1: a station layer without a CRS was passed to the raster unchecked, its coordinates
    taken as the raster's: metres of EPSG:3035 (a shapefile without its .prj) sampled NULL everywhere
    without a word. As xsomo (and series/zonalstats): refused unless the coordinates can be degrees,
    which are taken as EPSG:4326 with a warning; stations in any valid CRS are moved into the
    raster's (stations in EPSG:4326 on a raster in EPSG:3035); a raster without a CRS whose extent is
    not degrees is refused."""
    import processing
    from osgeo import gdal, ogr
    from qgis.core import QgsProcessingFeedback, QgsVectorLayer

    d, _ = data_dir
    day = dt.date(2012, 2, 9)
    tif = processing.run(
        "xsomo:loadday", {"FOLDER": str(d / "somo"), "LAYER": 1, "DATE": day.isoformat(), "OUTPUT": str(tmp_path / "d.tif")}
    )["OUTPUT"]
    inside = [(sid, x, y) for sid, x, y in STATIONS if 10.0 <= x < 11.6 and 50.0 <= y < 51.2]
    xy = _to_crs([(x, y) for _, x, y in inside], 3035)
    metres = _vector(tmp_path / "st_m.shp", ogr.wkbPoint,
                     {sid: f"POINT ({x!r} {y!r})" for (sid, _, _), (x, y) in zip(inside, xy, strict=True)}, None,
                     "ESRI Shapefile")  # fmt: skip
    msg = _run_expecting_error(
        "xsomo:sampleatstations", {"INPUT": str(metres), "RASTER": tif, "BAND": 1, "FIELD": "sm", "OUTPUT": str(tmp_path / "m.gpkg")}
    )
    assert "INPUT: the stations have no CRS and their coordinates are not degrees" in msg and "set their CRS" in msg, msg

    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings = []

        def pushWarning(self, warning):
            self.warnings.append(warning)

    degrees = _vector(tmp_path / "st_deg.shp", ogr.wkbPoint,
                      {sid: f"POINT ({x!r} {y!r})" for sid, x, y in inside}, None, "ESRI Shapefile")  # fmt: skip
    fb = Feedback()
    out = processing.run(
        "xsomo:sampleatstations",
        {"INPUT": str(degrees), "RASTER": tif, "BAND": 1, "FIELD": "sm", "OUTPUT": str(tmp_path / "deg.gpkg")},
        feedback=fb,
    )["OUTPUT"]
    layer = QgsVectorLayer(out, "s", "ogr")
    assert layer.crs().authid() == "EPSG:4326"
    assert any("no CRS" in w and "taken as EPSG:4326" in w for w in fb.warnings), fb.warnings
    got = {f["name"]: f["sm"] for f in layer.getFeatures()}
    for sid, x, y in inside:
        _assert_sampled(got[sid], float(value(1, day, *_cell(x, y))), sid)

    # stations in EPSG:4326 on a raster in EPSG:3035 (1 km pixels): the value of the pixel holding each
    warped = gdal.Warp(str(tmp_path / "d3035.tif"), tif, dstSRS="EPSG:3035", xRes=1000.0, yRes=1000.0,
                       resampleAlg="near", targetAlignedPixels=True)  # fmt: skip
    gt, arr = warped.GetGeoTransform(), warped.GetRasterBand(1).ReadAsArray()
    warped = None
    stations = _vector(tmp_path / "st4326.gpkg", ogr.wkbPoint, {sid: f"POINT ({x!r} {y!r})" for sid, x, y in inside})
    out = processing.run(
        "xsomo:sampleatstations",
        {"INPUT": str(stations), "RASTER": str(tmp_path / "d3035.tif"), "BAND": 1, "FIELD": "sm", "OUTPUT": str(tmp_path / "p.gpkg")},
    )["OUTPUT"]
    got = {f["name"]: f["sm"] for f in QgsVectorLayer(out, "s", "ogr").getFeatures()}
    for (sid, _, _), (x, y) in zip(inside, xy, strict=True):
        _assert_sampled(got[sid], float(arr[int((y - gt[3]) // gt[5]), int((x - gt[0]) // gt[1])]), sid)
    assert sum(v is not None and v == v for v in got.values()) >= 3

    # that raster without its CRS: its extent is metres, the stations cannot be placed on it
    src = gdal.Open(str(tmp_path / "d3035.tif"))
    bare = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "bare.tif"), src.RasterXSize, src.RasterYSize, 1, gdal.GDT_Float32)
    bare.SetGeoTransform(src.GetGeoTransform())
    bare.GetRasterBand(1).WriteArray(src.GetRasterBand(1).ReadAsArray())
    bare = src = None
    msg = _run_expecting_error(
        "xsomo:sampleatstations",
        {"INPUT": str(stations), "RASTER": str(tmp_path / "bare.tif"), "BAND": 1, "FIELD": "sm", "OUTPUT": str(tmp_path / "b.gpkg")},
    )
    assert "has no CRS and its extent is not degrees" in msg and "set its CRS" in msg, msg


def _gdal_geotransform(lon, lat):
    """The geotransform GDAL's netCDF driver derives from float32 centre coordinates (first, last, n)."""
    lon = np.asarray(lon, np.float32).astype(float)
    lat = np.asarray(lat, np.float32).astype(float)
    dx, dy = (lon[-1] - lon[0]) / (lon.size - 1), (lat[-1] - lat[0]) / (lat.size - 1)
    return (lon[0] - dx / 2, dx, 0.0, lat[0] - dy / 2, 0.0, dy)


def test_fine_float32_grids_are_snapped_as_xsomo_snaps_them(qgis_app):
    """QA 3 item 5: GDAL's geotransform was kept wherever snapping moved an edge by more than 1e-3 of a
    cell. Float32 noise alone is ~1e-5 deg near 180 deg, more than 1e-3 of a 0.001-degree cell: such a
    grid kept x0 = 170.0000035, dx = 0.00099999 (xsomo snaps it to 170, 0.001), and a point on a cell
    edge fell in the cell west of xsomo's. Snapped now within two float32 steps of the coordinates;
    a 1/120-deg grid to its exact step and edges, as xsomo's axis_step does (its 1e-6 rounding had
    misplaced such grids by up to 0.17 cell, so they had been kept as GDAL gives them); a rotated
    raster is kept."""
    from xsomo_qgis.somo_files import cell_of, snap_geotransform

    for res, west, north, n in ((0.001, 170.0, 61.0, 1000), (0.001, -179.5, -30.0, 3000), (0.01, 170.0, 61.0, 100)):
        lon = np.round(west + res * (np.arange(n) + 0.5), 6)
        lat = np.round(north - res * (np.arange(n) + 0.5), 6)
        gt = _gdal_geotransform(lon, lat)
        assert gt[0] != west  # as noisy as GDAL reads them
        assert snap_geotransform(gt, (n, n)) == (west, res, 0.0, north, 0.0, -res), (res, west)
    gt = snap_geotransform(_gdal_geotransform(170.0005 + 0.001 * np.arange(1000), 60.9995 - 0.001 * np.arange(1000)), (1000, 1000))
    for k in (1, 123, 500, 999):  # a point on the west edge of column k is in column k (xsomo's rule)
        assert cell_of(gt, (1000, 1000), round(170.0 + 0.001 * k, 6), 60.5)[1] == k
    # 1/120 deg: exact from float64 centres, snapped from float32 ones; a rotated raster is kept
    assert snap_geotransform((10.0, 1 / 120, 0.0, 51.0, 0.0, -1 / 120), (4320, 4320)) == (10.0, 1 / 120, 0.0, 51.0, 0.0, -1 / 120)
    gt120 = _gdal_geotransform(170 + (np.arange(4320) + 0.5) / 120, 60 - (np.arange(4320) + 0.5) / 120)
    assert gt120[0] != 170.0 and gt120[1] != 1 / 120  # float32 noise
    snapped = snap_geotransform(gt120, (4320, 4320))
    assert (snapped[1], snapped[5]) == (1 / 120, -1 / 120)
    # the edges as xsomo's GridSpec.from_coords gives them: round(first centre - step / 2, 6), where
    # the first centre is float32's shortest decimal (170.00417: 3e-6 deg, 4e-4 of a cell, off 170)
    assert snapped[0] == pytest.approx(170.0, abs=5e-6) and snapped[3] == pytest.approx(60.0, abs=5e-6)
    assert abs(snapped[0] + 4320 * snapped[1] - (gt120[0] + 4320 * gt120[1])) < 1e-3 / 120
    rotated = (10.0, 0.1, 0.01, 51.0, 0.01, -0.1)
    assert snap_geotransform(rotated, (10, 10)) == rotated


def test_a_file_across_0_in_0_360_longitudes_is_refused_not_misplaced(qgis_app, data_dir, tmp_path):
    """QA 3 (beside item 4): a file whose longitudes are a region across 0 deg in 0..360 (0.05..9.95 and
    350.05..359.95, stored in that order) was drawn by GDAL over 0..360 with 1.8-degree pixels (200 columns): loadday,
    the time layer and the series placed it wrongly without a word. Refused, naming the file and the fix."""
    from osgeo import gdal

    d, _ = data_dir
    path = d / "somo_split" / "SoMo.ml-EU_layer1_2010.nc"
    assert gdal.Open(f'NETCDF:"{path}":layer1').GetGeoTransform()[1] > 1.0  # 1.8-degree pixels over 0..360
    for alg, extra in (
        ("xsomo:loadday", {"DATE": "2010-01-02", "OUTPUT": str(tmp_path / "d.tif")}),
        ("xsomo:timelayer", {"OUTPUT": str(tmp_path / "t.vrt"), "LOAD": False}),
    ):
        msg = _run_expecting_error(alg, {"FOLDER": str(d / "somo_split"), "LAYER": 1, **extra})
        assert str(path) in msg and "lon coordinates are not one regular grid" in msg, (alg, msg)
        assert "region across 0 deg in 0..360" in msg and "-180..180" in msg, msg
    assert not (tmp_path / "d.tif").exists() and not (tmp_path / "t.vrt").exists()
    # the regular files (float32, packed, ascending lat, 0..360 beyond 180) are not refused: see the tests above
