"""The ``xsomo`` command line. One module per subcommand in :mod:`xsomo.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from xsomo.exceptions import XsomoError

#: subcommand -> module in xsomo.commands (loaded lazily so `xsomo --help` stays fast)
COMMANDS: dict[str, str] = {
    "sample": "sample",
    "prepare": "prepare",
    "train": "train",
    "predict": "predict",
    "extend": "extend",
    "evaluate": "evaluate",
    "report": "report",
    "experiment": "experiment",
    "export": "export",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    from xsomo._version import __version__

    parser = argparse.ArgumentParser(
        prog="xsomo",
        description="High-resolution daily soil moisture with an Entity-Aware LSTM (SoMo.ml-EU method).",
    )
    parser.add_argument("--version", action="version", version=f"xsomo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f"xsomo.commands.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"xsomo.commands.{module}":
                raise
            continue
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    mod = importlib.import_module(f"xsomo.commands.{COMMANDS[args.command]}")
    try:
        return int(mod.run(args) or 0)
    except XsomoError as err:
        print(f"xsomo {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"xsomo {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
