"""``xsomo series``: the daily soil-moisture series at a point or averaged over polygons (CSV + plot).

Examples::

    xsomo series --input demo_out/sm --point 0.35 41.2 --out point.csv --plot point.png
    xsomo series --input sm/ --polygons basins.gpkg --key NAME --layer 1 --out basins.csv
    xsomo series --input sm/ --countries France Spain --out countries.csv

At a point: the values of the 0.1° cell holding it (a point on a cell edge belongs to the
cell to its north-east); the CSV's ``cell_lon``/``cell_lat`` give that cell's centre. Over polygons: the area-weighted mean (cell areas ∝ cos latitude)
of the cells whose centres lie inside, NaN cells ignored.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from xsomo.exceptions import XsomoValueError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "series",
        help="soil-moisture series at a point or averaged over polygons (CSV and a plot)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="SoMo.ml-EU files: a folder or a glob")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--point", nargs=2, type=float, metavar=("LON", "LAT"), help="a point (degrees east, north)")
    where.add_argument("--polygons", type=pathlib.Path, help="polygons (GeoPackage, shapefile, GeoJSON)")
    where.add_argument("--countries", nargs="+", metavar="NAME", help="Natural Earth countries (NAME or ADM0_A3)")
    p.add_argument("--key", default="NAME", help="field naming the polygons (default NAME)")
    p.add_argument("--layer", type=int, choices=(1, 2, 3), help="one layer (default: all)")
    p.add_argument("--out", required=True, type=pathlib.Path, help="CSV to write")
    p.add_argument("--plot", type=pathlib.Path, help="also a plot (.png, .pdf or .svg)")
    p.set_defaults(command="series")
    return p


def run(args: argparse.Namespace) -> int:
    from xsomo.gis import zonal
    from xsomo.io.atomic import atomic_write_text
    from xsomo.io.somo import open_somo
    from xsomo.io.tables import csv_text

    if args.out.suffix.lower() != ".csv":
        raise XsomoValueError(f"--out {args.out}: the series is written as CSV; use a .csv name")
    if args.plot and pathlib.Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        # checked first: the CSV had been written before matplotlib refused the format
        raise XsomoValueError(f"--plot {args.plot}: the plot is written as PNG, PDF or SVG; use one of those suffixes")
    ds = open_somo(args.input, layers=[args.layer] if args.layer else None)
    if args.point:
        lon, lat = args.point
        s = zonal.point_series(ds, lon, lat, layer=args.layer)
        centre = (round(float(s["lon"]), 6), round(float(s["lat"]), 6))
        title = f"cell centred at lon {centre[0]:g}, lat {centre[1]:g} (holding lon {lon:g}, lat {lat:g})"
    else:
        polys = zonal.read_polygons(args.polygons, key=args.key) if args.polygons else zonal.read_polygons(None, names=args.countries)
        s = zonal.polygon_series(ds, polys, layer=args.layer, key=args.key)
        title = "area-weighted mean over polygons"
    s = s.load()
    if args.point and not bool(s.notnull().any()):  # a CSV of empty values said nothing
        near = zonal.nearest_cell_with_data(ds, lon, lat, layer=args.layer)
        raise XsomoValueError(
            f"--point {lon:g} {lat:g}: its cell (centred at lon {centre[0]:g}, lat {centre[1]:g}) holds no data on any "
            "day (sea, or no land in the model's mask); "
            + (
                f"the nearest cell with data is centred at lon {near[0]:g}, lat {near[1]:g}: give a point in it"
                if near is not None
                else "no cell within 1° holds data: check the point (LON LAT)"
            )
        )
    df = s.to_dataframe(name="sm").reset_index()
    if args.point:  # which cell the point fell in: its centre, beside the point asked for
        df["cell_lon"], df["cell_lat"] = centre
    keep = [c for c in ("region", "layer", "time", "sm", "n_cells", "cell_lon", "cell_lat") if c in df.columns]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, csv_text(df[keep]))  # numbers exact, not cut to 5 digits
    if args.plot:
        zonal.plot_series(s.drop_vars("n_cells", errors="ignore"), args.plot, title=title)
    print(args.out)
    return 0
