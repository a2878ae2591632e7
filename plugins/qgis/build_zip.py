"""Build the installable QGIS plugin zip: ``python plugins/qgis/build_zip.py [OUTDIR]``.

The zip holds the folder ``xsomo_qgis/`` (QGIS: Plugins > Manage and Install Plugins >
Install from ZIP). Standard library only, so any python builds it.
"""

import configparser
import pathlib
import sys
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
PACKAGE = HERE / "xsomo_qgis"


def build(outdir=None):
    cfg = configparser.ConfigParser()
    cfg.read(PACKAGE / "metadata.txt")
    version = cfg["general"]["version"]
    outdir = pathlib.Path(outdir) if outdir else HERE / "dist"
    outdir.mkdir(parents=True, exist_ok=True)
    target = outdir / (f"xsomo_qgis-{version}.zip")
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
                continue
            zf.write(path, pathlib.Path("xsomo_qgis") / path.relative_to(PACKAGE))
    tmp.replace(target)
    return target


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else None))
