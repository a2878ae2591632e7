"""``xsomo zonal``: per-region statistics of a period — area-weighted mean and anomaly (CSV or GeoPackage).

Examples::

    xsomo zonal --input sm/ --countries --start 2018-06-01 --end 2018-08-31 --out summer2018.csv
    xsomo zonal --input sm/ --polygons basins.gpkg --key NAME --start 2018-06-01 --end 2018-08-31 \\
        --layer 3 --out basins.gpkg

Per polygon (or Natural Earth country): ``mean_sm``, the area-weighted mean over the
period (cells whose centres lie inside, weights ∝ cos latitude), and ``anomaly_z``, the
period anomaly of the polygon's mean series (z-score against the same calendar window
in the other years; NaN with fewer than three).
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from xsomo.exceptions import XsomoValueError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "zonal",
        help="per-region mean and anomaly of a period over polygons or countries (CSV or GeoPackage)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="SoMo.ml-EU files: a folder or a glob")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--polygons", type=pathlib.Path, help="polygons (GeoPackage, shapefile, GeoJSON)")
    where.add_argument("--countries", nargs="*", metavar="NAME", help="Natural Earth countries (all if no name)")
    p.add_argument("--key", default="NAME", help="field naming the polygons (default NAME)")
    p.add_argument("--layer", type=int, default=1, choices=(1, 2, 3), help="soil layer (default 1)")
    p.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first day of the period")
    p.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="last day of the period")
    p.add_argument("--climatology", nargs=2, type=int, metavar=("FIRST_YEAR", "LAST_YEAR"),
                   help="years of the anomaly's reference windows (default: all)")
    p.add_argument("--out", required=True, type=pathlib.Path, help=".csv table or .gpkg polygons with the statistics")
    p.set_defaults(command="zonal")
    return p


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.gis import zonal
    from xsomo.io.atomic import atomic_path, atomic_write_text
    from xsomo.io.somo import open_somo
    from xsomo.io.tables import csv_text

    for option in ("start", "end"):  # "2018-06" was read as 2018-06-01; "2018-13-45" ended in a traceback
        common.parse_date(getattr(args, option), f"--{option}")
    suffix = args.out.suffix.lower()
    if suffix not in (".csv", ".gpkg"):
        raise XsomoValueError(f"--out {args.out}: write a .csv table or a .gpkg GeoPackage")
    polys = (
        zonal.read_polygons(args.polygons, key=args.key)
        if args.polygons
        else zonal.read_polygons(None, names=args.countries or None)
    )
    key = args.key
    ds = open_somo(args.input, layers=[args.layer])
    df = zonal.zonal_statistics(
        ds, polys, (args.start, args.end), layer=args.layer, key=key,
        climatology=tuple(args.climatology) if args.climatology else None,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        atomic_write_text(args.out, csv_text(df))  # numbers exact, not cut to 5 digits
    else:
        import pyogrio

        # every attribute of the polygons with its type, then the statistics (rows in the polygons' order)
        gdf = polys.reset_index(drop=True).copy()
        clash = [c for c in df.columns if c != key and c in gdf.columns]
        if clash:
            raise XsomoValueError(
                f"--polygons {args.polygons}: fields {clash} would be overwritten by the statistics; rename them "
                "or write --out as .csv"
            )
        for c in df.columns:
            if c != key:
                gdf[c] = df[c].to_numpy()
        with atomic_path(args.out) as tmp:
            pyogrio.write_dataframe(gdf, tmp, layer="zonal_statistics", driver="GPKG")
    print(args.out)
    return 0
