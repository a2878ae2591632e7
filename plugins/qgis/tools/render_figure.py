"""Render the docs figure headless: the plugin's anomaly map with stations sampled on it.

Runs under the python that has QGIS (Debian: /usr/bin/python3, QT_QPA_PLATFORM=offscreen)::

    python3 plugins/qgis/tools/render_figure.py SOMO_FOLDER STATIONS.gpkg START END OUT.png

It calls ``xsomo:anomalymap`` and ``xsomo:sampleatstations`` through ``processing.run``,
styles the anomaly with a diverging ramp (-2 ... +2) and labels each station with the
sampled z-score, then renders the map to a PNG (no GUI).
"""

import os
import pathlib
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.append("/usr/share/qgis/python/plugins")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsColorRampShader,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsPalLayerSettings,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor, QFont  # noqa: E402


def main(folder, stations, start, end, out_png):
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    from xsomo_qgis.provider import XsomoProvider

    provider = XsomoProvider()  # keep a reference: python would delete it
    QgsApplication.processingRegistry().addProvider(provider)
    tmp = tempfile.mkdtemp()
    anom = processing.run(
        "xsomo:anomalymap",
        {
            "FOLDER": folder,
            "LAYER": 1,
            "START": start,
            "END": end,
            "OUTPUT": os.path.join(tmp, "anomaly.tif"),
        },
    )
    sampled = processing.run(
        "xsomo:sampleatstations",
        {
            "INPUT": stations,
            "RASTER": anom["OUTPUT"],
            "BAND": 1,
            "FIELD": "z",
            "OUTPUT": os.path.join(tmp, "sampled.gpkg"),
        },
    )
    raster = QgsRasterLayer(anom["OUTPUT"], "anomaly")
    ramp = QgsColorRampShader(-2.0, 2.0)
    ramp.setColorRampType(QgsColorRampShader.Interpolated)
    ramp.setColorRampItemList(
        [
            QgsColorRampShader.ColorRampItem(-2.0, QColor("#8c510a"), "-2"),
            QgsColorRampShader.ColorRampItem(-1.0, QColor("#d8b365"), "-1"),
            QgsColorRampShader.ColorRampItem(0.0, QColor("#f5f5f5"), "0"),
            QgsColorRampShader.ColorRampItem(1.0, QColor("#5ab4ac"), "1"),
            QgsColorRampShader.ColorRampItem(2.0, QColor("#01665e"), "2"),
        ]
    )
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    raster.setRenderer(QgsSingleBandPseudoColorRenderer(raster.dataProvider(), 1, shader))
    points = QgsVectorLayer(sampled["OUTPUT"], "stations", "ogr")
    points.renderer().symbol().setColor(QColor("black"))
    points.renderer().symbol().setSize(1.6)
    label = QgsPalLayerSettings()
    label.fieldName = 'format_number("z", 1)'
    label.isExpression = True
    fmt = QgsTextFormat()
    fmt.setFont(QFont("DejaVu Sans"))
    fmt.setSize(7)
    label.setFormat(fmt)
    points.setLabeling(QgsVectorLayerSimpleLabeling(label))
    points.setLabelsEnabled(True)
    settings = QgsMapSettings()
    settings.setLayers([points, raster])
    settings.setDestinationCrs(raster.crs())
    settings.setExtent(raster.extent())
    settings.setOutputSize(QSize(700, int(700 * raster.height() / raster.width())))
    settings.setBackgroundColor(QColor("#dddddd"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(out_png, "png")
    print(out_png)


if __name__ == "__main__":
    main(*sys.argv[1:6])
