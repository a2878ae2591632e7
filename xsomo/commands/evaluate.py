"""``xsomo evaluate``: skill of predicted soil moisture against stations or a gridded reference.

Examples::

    xsomo evaluate --pred demo_out/sm --cosmos world/cosmos --out demo_out/metrics.nc --csv metrics.csv
    xsomo evaluate --pred demo_out/sm --cosmos world/cosmos --targets demo_out/prepared/targets.nc \\
        --out metrics.nc --gpkg metrics.gpkg
    xsomo evaluate --pred demo_out/sm --grid world/truth.nc --out truth_metrics.nc

Station metrics: per station and layer (layer 0: the footprint-weighted mix of the
layers that a cosmic-ray probe sees); stations in cells that held training targets
(``--targets`` or ``--model``) are flagged and left out of the printed medians.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from xsomo.exceptions import XsomoValueError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="metrics (r, uRMSD, bias, RMSE, NSE, KGE, anomaly r) against stations or a gridded reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pred", required=True, type=pathlib.Path, help="folder of SoMo.ml-EU files or a netCDF with sm(layer, time, lat, lon)")
    ref = p.add_mutually_exclusive_group(required=True)
    ref.add_argument("--cosmos", type=pathlib.Path, help="COSMOS folder (stations.csv + *-CRNS.csv)")
    ref.add_argument("--ismn", type=pathlib.Path, help="ISMN download folder (each sensor against its layer)")
    ref.add_argument("--grid", type=pathlib.Path, help="gridded reference netCDF (sm with layer, or layer1..3)")
    p.add_argument("--out", required=True, type=pathlib.Path, help="metrics netCDF to write")
    p.add_argument("--csv", type=pathlib.Path, help="also write the metrics as a CSV table")
    p.add_argument("--gpkg", type=pathlib.Path, help="also write station metrics as a GeoPackage (points, EPSG:4326)")
    p.add_argument("--targets", type=pathlib.Path, help="targets netCDF: its cells are flagged as training cells")
    p.add_argument("--model", type=pathlib.Path, help="trained model folder: its training cells are flagged")
    p.add_argument("--layers", type=int, nargs="+", choices=(1, 2, 3), help="layers (default: all)")
    p.add_argument("--min-days", type=int, default=30, help="minimum common valid days per metric (default 30)")
    p.set_defaults(command="evaluate")
    return p


def run(args: argparse.Namespace) -> int:
    from xsomo import evaluation
    from xsomo.commands import common
    from xsomo.io.atomic import atomic_path, atomic_write_text

    # every path is checked before the inputs are read
    common.output_file(args.out, "--out")
    if args.csv:
        common.output_file(args.csv, "--csv")
    if args.gpkg:
        common.output_file(args.gpkg, "--gpkg")
    pred = common.prediction_arg(args.pred, "--pred")
    for option, value, what in (
        ("--cosmos", args.cosmos, "COSMOS folder or file"),
        ("--ismn", args.ismn, "ISMN folder or zip"),
        ("--model", args.model, "model folder"),
    ):
        if value is not None:
            common.input_path(value, option, what)
    sm = evaluation.open_prediction(pred)
    training: Any = None
    if args.targets:
        training = common.open_targets_arg(args.targets, "--targets")
    elif args.model:
        from xsomo.model import TrainedModel

        training = TrainedModel.load(args.model)
    if args.cosmos:
        from xsomo.io import open_cosmos

        reference = open_cosmos(args.cosmos)
    elif args.ismn:
        from xsomo.targets.stations import open_ismn

        reference = open_ismn(args.ismn)
    else:
        reference = common.open_netcdf(args.grid, "--grid", chunks={})
    metrics = evaluation.evaluate(sm, reference, layers=args.layers, min_days=args.min_days, training_cells=training)
    if args.gpkg and "station" not in metrics.dims:
        raise XsomoValueError("--gpkg needs station metrics (--cosmos or --ismn), not a gridded reference")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        metrics.to_netcdf(tmp)
    if args.csv:
        if "station" in metrics.dims:
            df = evaluation.metrics_table(metrics)
        else:
            df = metrics.drop_vars("spatial_ref", errors="ignore").to_dataframe().reset_index()
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        from xsomo.io.tables import csv_text

        # every number as written (%.5g had cut a station at 12.345678 deg to 12.346, ~100 m)
        atomic_write_text(args.csv, csv_text(df))
    if args.gpkg:
        from xsomo.gis import metrics_to_gpkg

        args.gpkg.parent.mkdir(parents=True, exist_ok=True)
        metrics_to_gpkg(metrics, args.gpkg)
    summary = evaluation.summarize(metrics)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"metrics written to {args.out}")
    return 0
