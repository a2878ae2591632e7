"""QGIS test session: a headless QgsApplication with Processing and the xsomo provider.

Run under Debian's system python with QGIS (see run_qgis_tests.sh); skipped where qgis is absent.
"""

import json
import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
PLUGIN_DIR = HERE.parent  # holds xsomo_qgis/
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(PLUGIN_DIR))
sys.path.insert(0, str(HERE))
sys.path.append("/usr/share/qgis/python/plugins")  # Debian's place for the processing plugin

qgis_core = pytest.importorskip(
    "qgis.core", reason="QGIS python bindings not installed (apt install python3-qgis)"
)


@pytest.fixture(scope="session")
def qgis_app():
    from qgis.core import QgsApplication

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from xsomo_qgis.provider import XsomoProvider

    provider = XsomoProvider()
    assert QgsApplication.processingRegistry().addProvider(provider)
    yield app
    QgsApplication.processingRegistry().removeProvider(provider)


@pytest.fixture(scope="session")
def data_dir():
    """Folder made by make_test_data.py (run_qgis_tests.sh sets XSOMO_QGIS_TEST_DATA)."""
    d = os.environ.get("XSOMO_QGIS_TEST_DATA")
    if not d:
        import tempfile

        import make_test_data

        d = tempfile.mkdtemp(prefix="xsomo_qgis_")
        make_test_data.main(d)
    d = pathlib.Path(d)
    made = json.loads((d / "made.json").read_text())
    return d, made
