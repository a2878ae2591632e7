"""``xsomo predict``: SoMo.ml-EU files (one per layer and year) from drivers and a trained model.

Examples::

    xsomo predict --drivers demo_out/drivers.nc --model demo_out/model --out demo_out/sm
    xsomo predict --drivers world/ --model model/ --out sm/ --start 2004-01-01 --end 2020-12-31 --chunks 32
    xsomo predict --drivers drivers.nc --model model/ --out sm/ --scheduler tcp://10.0.0.5:8786
    xsomo predict --drivers drivers.nc --model somoml_v1/ --out sm/ --mode windowed --dtype float64
    xsomo predict --drivers D --model M --out DIR --end 2016-12-31 --save-state state.nc
    xsomo predict --drivers D --model M --format zarr --out sm.zarr
    xsomo predict --drivers D --model M --format zarr --out sm.zarr --end 2016-12-31 --save-state state.nc

The first ``spinup`` days (default: the model's lookback) before ``--start`` spin the
roll-out up; the drivers must hold them. Rerunning the same command after an
interruption skips the files already written (of the same model and drivers; files of
another run are refused: --overwrite). ``--save-state`` keeps the roll-out's state after
the last day, written after the files (or the Zarr store), so ``xsomo extend`` can add
new days later without recomputing.

Point drivers (``station`` instead of lat/lon, from ``xsomo.point_drivers``) give one file,
``SoMo.ml-EU_points.nc``: ``sm`` and ``sm_spread`` (layer, time, station).
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from xsomo.exceptions import XsomoValueError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="predict soil moisture with a trained model and write SoMo.ml-EU_layer{N}_{YYYY}.nc files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--drivers",
        required=True,
        type=pathlib.Path,
        help="drivers netCDF, a folder holding drivers.nc (xsomo prepare), a sources file or a world folder",
    )
    p.add_argument(
        "--model", required=True, type=pathlib.Path, help="trained model folder (xsomo train)"
    )
    p.add_argument("--out", required=True, type=pathlib.Path, help="output folder for the files")
    p.add_argument(
        "--start", metavar="YYYY-MM-DD", help="first output day (default: drivers start + spin-up)"
    )
    p.add_argument("--end", metavar="YYYY-MM-DD", help="last output day (default: drivers end)")
    p.add_argument(
        "--spinup",
        type=int,
        default=None,
        help="spin-up days before --start (default: the model's lookback)",
    )
    p.add_argument(
        "--chunks", default=None, metavar="N|lat=NY,lon=NX",
        help="block size: cells per block or lat=NY,lon=NX (default: chosen from the period length)",
    )  # fmt: skip
    p.add_argument(
        "--mode",
        choices=("auto", "continuous", "windowed"),
        default="auto",
        help="inference mode (default auto)",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="precision of the roll-out (default float32; float64 is ~2-3x slower on a CPU and "
        "exact where float32 rounding matters, e.g. to reproduce a published model to 1e-5)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        help="largest measured dependence on the initial state (m3 m-3) at which auto uses the "
        "continuous roll-out (default 1e-3)",
    )
    p.add_argument(
        "--device", default="auto", help="auto (GPU if present), cpu or cuda[:N] (default auto)"
    )
    p.add_argument(
        "--layers", type=int, nargs="+", choices=(1, 2, 3), help="layers to write (default: all)"
    )
    p.add_argument("--years", type=int, nargs="+", help="years to write (default: all)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="rewrite files that exist (default: skip them, i.e. resume)",
    )
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="dask.distributed scheduler to run the blocks on"
    )
    p.add_argument(
        "--save-state", type=pathlib.Path, metavar="FILE",
        help="also write the roll-out's state after the last day (for xsomo extend)",
    )  # fmt: skip
    p.add_argument(
        "--format", choices=("netcdf", "zarr"), default="netcdf",
        help="netcdf: SoMo.ml-EU_layer{N}_{YYYY}.nc files in --out (default); zarr: one Zarr store --out",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(command="predict")
    return p


def parse_chunks(text: str | None) -> int | dict[str, int] | None:
    """``"32"`` → 32 cells per block; ``"lat=32,lon=64"`` → a dict."""
    if text is None:
        return None
    text = text.strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    out: dict[str, int] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("lat", "lon") or not value.strip().isdigit() or int(value) < 1:
            # (lat=0 had been taken)
            raise XsomoValueError(f"--chunks {text!r}: give a number of cells (at least 1) or lat=NY,lon=NX")
        out[key.strip()] = int(value)
    return out


#: The file ``xsomo predict`` writes for point drivers (stations instead of a grid).
POINTS_FILE = "SoMo.ml-EU_points.nc"


def _predict_points(args: argparse.Namespace, drivers: Any, model: Any, device: str, start: Any, end: Any, zarr: bool) -> int:
    """Point drivers (``station``, ``time``): one netCDF file of every station, layer and day."""
    from xsomo.io.atomic import atomic_path
    from xsomo.prediction import inference

    given = [o for o, v in (("--format zarr", zarr), ("--years", getattr(args, "years", None)),
                            ("--save-state", args.save_state), ("--scheduler", args.scheduler),
                            ("--chunks", args.chunks)) if v]  # fmt: skip
    if given:
        raise XsomoValueError(
            f"--drivers {args.drivers} holds point drivers (dimension 'station'): their prediction is one netCDF "
            f"file ({POINTS_FILE}) computed in one piece, so {', '.join(given)} do(es) not apply. Drop them."
        )
    path = args.out / POINTS_FILE
    if path.exists() and not args.overwrite:
        raise XsomoValueError(f"{path} exists; pass --overwrite to replace it, or choose another --out")
    sm = inference.predict(
        drivers, model, layers=args.layers, mode=args.mode, device=device, spinup=args.spinup,
        time=(start, end) if (start or end) else None, dtype=args.dtype, tolerance=args.tolerance,
    )  # fmt: skip
    with atomic_path(path) as tmp:
        sm.to_netcdf(tmp)
    print(f"{path} written: {sm.sizes['station']} stations, layers {sm['layer'].values.tolist()}, {sm.sizes['time']} days")
    return 0


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.io.somo import find_somo_files, is_zarr_store
    from xsomo.model import TrainedModel
    from xsomo.prediction import inference, output

    chunks = parse_chunks(args.chunks)
    start = common.parse_date(args.start, "--start")
    end = common.parse_date(args.end, "--end")
    if start and end and start > end:  # (said as "time=(2016-06-01, 2016-01-01)", after the model was read)
        raise XsomoValueError(f"--start {start} is after --end {end}: give the first day first")
    device = common.check_device(args.device)
    zarr = getattr(args, "format", "netcdf") == "zarr"
    # fail on an unwritable folder before loading or computing anything
    if zarr and getattr(args, "years", None):
        # (a store holds the whole period: --years was ignored and every year written; QA)
        raise XsomoValueError(
            "--years selects the netCDF files to write; a Zarr store holds the whole period. Give the period "
            "with --start/--end, or write files (--format netcdf)."
        )
    if zarr:
        output.check_store_target(args.out, overwrite=args.overwrite)
    elif is_zarr_store(args.out):
        raise XsomoValueError(
            f"--out {args.out} is a Zarr store: pass --format zarr (with --overwrite to replace it), or give "
            "another folder for the netCDF files."
        )
    common.output_dir(args.out, "--out")
    output.check_writable(args.out.parent if zarr else args.out)
    if args.save_state is not None:  # written last: a bad path must not cost the whole run
        common.output_file(args.save_state, "--save-state")
    model = TrainedModel.load(common.input_path(args.model, "--model", "model folder"))
    subset = getattr(args, "years", None) or (args.layers and sorted(set(args.layers)) != sorted(model.config.layers))
    if args.save_state is not None and subset:
        # the state continues the whole output: `xsomo extend` appends to every layer's file of the
        # state's last day, so a subset left a state that no extension could use (QA)
        raise XsomoValueError(
            "--save-state continues every layer up to the last day: it cannot be saved with --years or a subset of "
            f"the model's layers {list(model.config.layers)} in --layers (`xsomo extend` appends to all of them). "
            "Drop those options, or omit --save-state."
        )
    drivers = common.open_drivers_arg(args.drivers, "--drivers")
    from xsomo.drivers.points import is_points

    if is_points(drivers):  # (it had predicted every station, then failed on "expected (layer, time, lat, lon)")
        return _predict_points(args, drivers, model, device, start, end, zarr)
    try:
        # this folder's own files (find_somo_files also looks one folder down: files of a sub-folder
        # of the same names were counted as "already there and skipped")
        before = {f.path.name for f in find_somo_files(args.out) if f.path.parent.resolve() == args.out.resolve()}
    except FileNotFoundError:
        before = set()
    with common.scheduler_client(args.scheduler) as client:
        period = (start, end) if (start or end) else None
        sm = inference.predict(
            drivers,
            model,
            layers=args.layers,
            mode=args.mode,
            chunks=chunks,
            device=device,
            spinup=args.spinup,
            time=period,
            client=client,
            dtype=args.dtype,
            tolerance=args.tolerance,
            return_state=args.save_state is not None,
        )
        if zarr:
            output.to_zarr(
                sm, args.out, overwrite=args.overwrite, progress=not args.no_progress,
                client=client, state_file=args.save_state,
            )  # fmt: skip
            print(
                f"Zarr store {args.out} written ({sm.sizes['time']} days)"
                + (f"; state after the last day in {args.save_state}" if args.save_state else "")
            )
            return 0
        files = output.to_files(
            sm,
            args.out,
            layers=args.layers,
            years=args.years,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            client=client,
            state_file=args.save_state,
        )
    kept = sum(p.name in before for p in files) if not args.overwrite else 0
    print(
        f"{len(files)} files in {args.out} ({len(files) - kept} written, {kept} already there and skipped)"
        + (f"; state after the last day in {args.save_state}" if args.save_state else "")
    )
    return 0
