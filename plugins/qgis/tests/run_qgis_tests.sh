#!/usr/bin/env bash
# The QGIS plugin tests in real, headless QGIS (Debian 12: QGIS 3.22, GDAL 3.6).
#
# Installs QGIS from Debian if it is missing (needs root; about 1 GB), makes the test data
# (with the project's venv when it exists -- $XSOMO_VENV, default ROOT/.venv -- and this
# checkout's xsomo on PYTHONPATH, so the SoMo files, COGs and GeoPackage come from xsomo's own
# writers; otherwise with the system python's numpy/netCDF4/GDAL) and runs pytest under Debian's
# /usr/bin/python3 -- never inside the project's numpy-2 venv, where Debian's GDAL bindings fail.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
SYS_PY=/usr/bin/python3

need=()
$SYS_PY -c "import qgis.core" 2>/dev/null || need+=(python3-qgis qgis-providers)
[ -x /usr/bin/qgis_process.bin ] || need+=(qgis)
$SYS_PY -c "import pytest" 2>/dev/null || need+=(python3-pytest)
$SYS_PY -c "import osgeo_utils.samples.validate_cloud_optimized_geotiff" 2>/dev/null || need+=(python3-gdal)
command -v gdalinfo >/dev/null || need+=(gdal-bin)
USE_VENV=0
VENV="${XSOMO_VENV:-$ROOT/.venv}"
if [ -x "$VENV/bin/python" ] && PYTHONPATH="$ROOT" "$VENV/bin/python" -c "import xsomo.gis.export" 2>/dev/null; then
    USE_VENV=1
else
    $SYS_PY -c "import netCDF4" 2>/dev/null || need+=(python3-netcdf4)
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing from Debian: ${need[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

DATA="$(mktemp -d -t xsomo_qgis_data.XXXXXX)"
trap 'rm -rf "$DATA"' EXIT
if [ "$USE_VENV" = 1 ]; then
    echo "== test data with the project venv (xsomo writes the SoMo files, the COGs and the GeoPackage)"
    PYTHONPATH="$ROOT" "$VENV/bin/python" "$HERE/make_test_data.py" "$DATA"
else
    echo "== test data with the system python (no .venv: the xsomo-COG test will skip)"
    $SYS_PY "$HERE/make_test_data.py" "$DATA"
fi

echo "== pytest in QGIS ($($SYS_PY -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)'))"
cd "$HERE"
# a clean environment: no venv on PATH/PYTHONPATH, a throwaway HOME for QGIS settings
env -u VIRTUAL_ENV -u PYTHONPATH -u PYTHONHOME \
    PATH="/usr/local/bin:/usr/bin:/bin" HOME="$DATA/home" QT_QPA_PLATFORM=offscreen \
    XSOMO_QGIS_TEST_DATA="$DATA" \
    $SYS_PY -m pytest -q -c "$HERE/pytest.ini" --rootdir "$HERE" "$HERE" "$@"
