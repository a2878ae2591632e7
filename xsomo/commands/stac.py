"""``xsomo stac``: a STAC catalogue of an output folder (SoMo.ml files) or a Zarr store.

Examples::

    xsomo stac demo_out/sm --out demo_out/stac
    xsomo stac europe.zarr --out stac/ --title "SoMo.ml-EU 2003-2020"

One STAC Item per file with its period (start/end datetime), soil layer and depths,
bounding box, CRS (EPSG:4326, projection extension) and a ``data`` asset; the catalogue is
self-contained (``catalog.json`` and one folder per item, links relative), so it can be
moved with the data or served as static files.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "stac",
        help="write a STAC catalogue (one item per SoMo.ml file, or one for a Zarr store)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", type=pathlib.Path, help="folder of SoMo.ml files, one file, or a .zarr store")
    p.add_argument("--out", required=True, type=pathlib.Path, help="catalogue folder (catalog.json is written there)")
    p.add_argument("--title", default="xsomo soil moisture", help="catalogue title")
    p.add_argument("--id", dest="catalog_id", default="xsomo", help="catalogue id (default xsomo)")
    p.set_defaults(command="stac")
    return p


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.gis.stac import stac_catalog

    common.output_dir(args.out, "--out")  # (an existing file had given "File exists: ... rerun with --debug")
    path = stac_catalog(args.source, args.out, title=args.title, catalog_id=args.catalog_id)
    print(path)
    return 0
