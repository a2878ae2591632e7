"""``xsomo extend``: add new days to a SoMo.ml-EU folder from a saved roll-out state.

Examples::

    xsomo predict --drivers drivers.nc --model model/ --out sm/ --end 2016-12-31 --save-state sm/state.nc
    xsomo extend --drivers drivers.nc --model model/ --state sm/state.nc --out sm/
    xsomo predict --drivers drivers.nc --model model/ --format zarr --out sm.zarr --end 2016-12-31 --save-state state.nc
    xsomo extend --drivers drivers.nc --model model/ --state state.nc --out sm.zarr

The drivers may hold the old and the new days; only the days after the state's last day
are computed, continuing the roll-out from the state (no spin-up). The current year's
file is rewritten with the new days appended (to a temporary file, then renamed), later
years get new files, and the state file is updated last: a run killed anywhere leaves a
consistent folder, and the same command again completes it. A state of another model,
another grid, or drivers that do not join on (a gap) are refused with the fix. Only the
continuous roll-out keeps a state: ``--mode windowed`` is refused. Drivers (or ``--end``) with no
day after the state's last one leave everything as it is: "nothing to do", exit status 0 (a
monthly job run again before new forcing arrived).

A Zarr store (``--out`` a store of ``xsomo predict --format zarr``, or a ``*.zarr`` path) is
extended along time in place: the new days are written after the state's last day, the
consolidated metadata is rewritten, then the state (the same guarantees as for files).
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "extend",
        help="add new days to SoMo.ml-EU files from a saved state (xsomo predict --save-state)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--drivers", required=True, type=pathlib.Path,
        help="drivers netCDF (or folder) holding the new days (old days may be there too)",
    )  # fmt: skip
    p.add_argument("--model", required=True, type=pathlib.Path, help="the model the state was saved with")
    p.add_argument("--state", required=True, type=pathlib.Path, help="state file (xsomo predict --save-state)")
    p.add_argument("--out", required=True, type=pathlib.Path, help="the folder of the files, or the Zarr store, to extend")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="last day to add (default: the drivers' end)")
    p.add_argument(
        "--mode", choices=("auto", "continuous", "windowed"), default="auto",
        help="auto/continuous continue the roll-out; windowed is refused (it has no state)",
    )  # fmt: skip
    p.add_argument("--chunks", default=None, metavar="N|lat=NY,lon=NX", help="block size (as predict)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda[:N]")
    p.add_argument("--scheduler", metavar="ADDRESS", help="dask.distributed scheduler to run the blocks on")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(command="extend")
    return p


def run(args: argparse.Namespace) -> int:
    from xsomo.commands import common
    from xsomo.commands.predict import parse_chunks
    from xsomo.io.somo import is_zarr_store, read_state
    from xsomo.model import TrainedModel
    from xsomo.prediction import inference, output

    if args.mode == "windowed":  # (refused after the files were read, as "return_state=True: ... mode='continuous'")
        raise common.CliError(
            "--mode windowed: window-by-window prediction has no roll-out state to continue from; extend with "
            "--mode auto or --mode continuous, or predict the new days with `xsomo predict --mode windowed`."
        )
    chunks = parse_chunks(args.chunks)
    end = common.parse_date(args.end, "--end")
    device = common.check_device(args.device)
    # the same checks and the same --drivers as `xsomo predict`, before any computing
    common.output_dir(args.out, "--out")
    zarr = is_zarr_store(args.out) or args.out.suffix == ".zarr"
    if zarr and not is_zarr_store(args.out):
        raise common.CliError(
            f"--out {args.out}: no Zarr store there. Give the store written by `xsomo predict "
            "--format zarr --save-state` with this state (or a folder of SoMo.ml-EU files)."
        )
    output.check_writable(args.out)
    common.output_file(args.state, "--state")  # replaced last: an unwritable one must fail before computing
    state = read_state(common.input_path(args.state, "--state", "state file"))
    model = TrainedModel.load(common.input_path(args.model, "--model", "model folder"))
    drivers = common.open_drivers_arg(args.drivers, "--drivers")
    if args.mode != "windowed":  # (refused by predict, with its reason)
        import pandas as pd

        last = pd.Timestamp(state.attrs["state_last_day"])
        drivers_end = pd.Timestamp(drivers.indexes["time"][-1])
        if min(drivers_end, pd.Timestamp(end) if end else drivers_end) <= last:
            # a monthly job run again before new forcing arrived: nothing to add is not an error
            until = f" and --end is {end}" if end and pd.Timestamp(end) < drivers_end else ""
            print(
                f"nothing to do: {args.out} already reaches {last.date()} (the last day of --state {args.state}); "
                f"the drivers end on {drivers_end.date()}{until}. Give drivers with later days to extend it."
            )
            return 0
    files: list[pathlib.Path] = []
    with common.scheduler_client(args.scheduler) as client:
        time = None
        if end:
            import pandas as pd

            start = pd.Timestamp(state.attrs["state_last_day"]) + pd.Timedelta(days=1)
            time = (str(start.date()), end)
        sm = inference.predict(
            drivers, model, mode=args.mode, chunks=chunks, device=device, time=time,
            client=client, state=state, return_state=True,
            dtype=state.attrs.get("inference_dtype", "float32"),
        )  # fmt: skip
        if zarr:
            output.extend_zarr(
                sm, args.out, state_file=args.state, progress=not args.no_progress, client=client
            )
        else:
            files = output.extend_files(
                sm, args.out, state_file=args.state, progress=not args.no_progress, client=client
            )
    days = sm.sizes["time"]
    written = "the Zarr store extended" if zarr else f"{len(files)} files written"
    print(
        f"added {days} days ({sm['time'].values[0].astype('datetime64[D]')} to "
        f"{sm['time'].values[-1].astype('datetime64[D]')}) to {args.out}: {written}; "
        f"state updated in {args.state}"
    )
    return 0
