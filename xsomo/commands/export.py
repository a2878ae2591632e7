"""``xsomo export``: soil-moisture maps to Cloud-Optimized GeoTIFF, station metrics to GeoPackage.

Examples::

    xsomo export --input out/ --layer 1 --date 2010-07-01 --out sm_20100701.tif
    xsomo export --input "out/SoMo.ml-EU_layer2_*.nc" --layer 2 --stat mean --start 2018-06-01 --end 2018-08-31 --out mean.tif
    xsomo export --input out/ --layer 1 --stat anomaly --start 2018-06-01 --end 2018-08-31 --out anomaly.tif
    xsomo export --metrics metrics.nc --out metrics.gpkg
    xsomo export --input out/ --layer 1 --out layer1.vrt        # + layer1.qlr for the Temporal Controller

Maps get a QGIS style beside them (``<name>.qml``; ``--no-style`` leaves it out). The
GeoPackage of station metrics has one feature per station and layer: filter on the field
``layer`` (0: footprint mix of layers 1-3; 1-3: one layer) or ``layer_label``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from xsomo.exceptions import XsomoValueError

#: The smallest tile GDAL's COG driver accepts without a warning (``BLOCKSIZE`` should be >= 128).
MIN_COG_BLOCKSIZE = 128


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="write a map (day, period mean or anomaly) as a Cloud-Optimized GeoTIFF, or station metrics as a GeoPackage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--input",
        metavar="DIR_OR_GLOB",
        help="SoMo.ml-EU (or SoMo.ml v1) files: a folder or a glob",
    )
    src.add_argument(
        "--metrics", metavar="METRICS.nc", help="station metrics (netCDF from `xsomo evaluate`)"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output .tif (maps), .gpkg (metrics) or .vrt (the whole period, one band per day, "
        "with a .qlr that QGIS's Temporal Controller steps through)",
    )
    p.add_argument(
        "--layer", type=int, default=1, choices=(1, 2, 3), help="soil layer (default 1: 0-10 cm)"
    )
    p.add_argument("--date", metavar="YYYY-MM-DD", help="the day to export")
    p.add_argument(
        "--stat", choices=("mean", "anomaly"), help="a period statistic instead of one day"
    )
    p.add_argument("--start", metavar="YYYY-MM-DD", help="first day of the period (with --stat)")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="last day of the period (with --stat)")
    p.add_argument(
        "--climatology",
        nargs=2,
        type=int,
        metavar=("FIRST_YEAR", "LAST_YEAR"),
        help="years of the anomaly's reference windows (default: all years in the data)",
    )
    p.add_argument(
        "--blocksize", type=int, default=256, help="COG tile size in pixels (default 256)"
    )
    p.add_argument("--no-overwrite", action="store_true", help="fail if --out exists")
    p.add_argument(
        "--gpkg-style",
        action="store_true",
        help="with --metrics: store a QGIS default style (points coloured by pearson_r, classes from the data) "
        "in the GeoPackage's layer_styles table",
    )
    p.add_argument(
        "--no-style",
        action="store_true",
        help="do not write the QGIS style (<out>.qml: soil-moisture ramp, or z-score ramp centred on 0)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (FileNotFoundError, FileExistsError, PermissionError) as err:
        print(f"xsomo export: error: {err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from xsomo.commands import common

    out = common.output_file(args.out, "--out")
    for option in ("date", "start", "end"):
        common.parse_date(getattr(args, option), f"--{option}")
    if args.metrics:
        common.input_path(args.metrics, "--metrics", "file")
        import xarray as xr

        from xsomo.gis import export as gis

        if out.suffix.lower() != ".gpkg":
            raise XsomoValueError(
                f"--out {out}: station metrics are written as a GeoPackage; use a .gpkg name"
            )
        try:
            opened = xr.open_dataset(args.metrics)
        except (ValueError, OSError) as err:
            raise XsomoValueError(
                f"--metrics {args.metrics}: not a metrics netCDF ({err}); give the file `xsomo evaluate` wrote"
            ) from None
        with opened as metrics:
            path = gis.metrics_to_gpkg(
                metrics.load(), out, overwrite=not args.no_overwrite, style=args.gpkg_style
            )
        print(path)
        return 0

    if out.suffix.lower() == ".vrt":
        if args.date or args.stat or args.start or args.end:
            raise XsomoValueError("--out *.vrt stacks the whole period; leave out --date, --stat, --start and --end")
        from xsomo.gis import export as gis

        vrt, qlr = gis.to_time_stack(args.input, out, layer=args.layer, overwrite=not args.no_overwrite)
        print(vrt)
        print(qlr)
        return 0

    if args.stat is None and args.date is None:
        raise XsomoValueError(
            "give --date YYYY-MM-DD, or --stat mean|anomaly with --start and --end"
        )
    if args.stat is not None and (args.start is None or args.end is None):
        raise XsomoValueError(f"--stat {args.stat} needs --start and --end")
    if args.stat is not None and args.date is not None:
        raise XsomoValueError("give either --date or --stat with --start/--end, not both")
    if args.date is not None and (args.start is not None or args.end is not None):
        raise XsomoValueError(
            "--date exports one day; --start/--end are the period of --stat mean|anomaly. Give one of them, "
            "not both (the period was ignored)"
        )
    if args.blocksize < MIN_COG_BLOCKSIZE or args.blocksize % 16:
        raise XsomoValueError(
            f"--blocksize {args.blocksize}: GDAL's COG driver needs tiles of at least {MIN_COG_BLOCKSIZE} pixels, "
            "a multiple of 16 (e.g. 256, the default, or 512)"
        )
    if out.suffix.lower() not in {".tif", ".tiff"}:
        raise XsomoValueError(
            f"--out {out}: maps are written as Cloud-Optimized GeoTIFF; use a .tif name"
        )

    from xsomo.gis import export as gis
    from xsomo.io.somo import open_somo

    with open_somo(args.input, layers=[args.layer]) as ds:
        path = gis.to_cog(
            ds,
            out,
            layer=args.layer,
            time=args.date,
            stat=args.stat,
            period=(args.start, args.end) if args.stat else None,
            climatology=tuple(args.climatology) if args.climatology else None,
            blocksize=args.blocksize,
            overwrite=not args.no_overwrite,
            style=not args.no_style,
        )
    print(path)
    return 0
