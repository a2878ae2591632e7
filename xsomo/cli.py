"""The ``xsomo`` command line. One module per subcommand in :mod:`xsomo.commands`.

The command line never ends in a traceback: every error is printed as
``xsomo <command>: error: <what, where, the fix>`` and the exit status is 1 (``--debug``
prints the traceback as well); the errors of an exception group are listed one per line.
Output folders that a failed run created and left empty are removed.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pathlib
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence

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
    "stac": "stac",
    "series": "series",
    "zonal": "zonal",
    "demo": "demo",
}

#: options whose value is an output folder or file: folders a failed run created for them
#: and left empty are removed
OUTPUT_OPTIONS = ("out", "run_dir", "csv", "gpkg")


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug`` after the subcommand too (``xsomo train ... --debug``), at every level."""
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error"
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_debug(child)


def build_parser() -> argparse.ArgumentParser:
    from xsomo._version import __version__

    parser = argparse.ArgumentParser(
        prog="xsomo",
        description="High-resolution daily soil moisture with an Entity-Aware LSTM (SoMo.ml-EU method).",
    )
    parser.add_argument("--version", action="version", version=f"xsomo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f"xsomo.commands.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"xsomo.commands.{module}":
                raise
            continue
        mod.add_parser(sub)
    for child in sub.choices.values():
        _add_debug(child)
    return parser


def configure_logging(verbose: bool = False) -> None:
    """Log WARNING and above to stderr (INFO with ``verbose``).

    The level sits on the handler, not only on the root logger: third-party packages that
    raise their own loggers' level (the ``ismn`` package sets INFO on its metadata
    collector) would otherwise print through the root handler.
    """
    level = logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    if root.handlers:  # embedded (tests, notebooks): leave the host's logging alone
        return
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


#: errno values of a storage that cannot take the output (full, over quota, read-only)
_STORAGE_ERRNO = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "the file system is read-only"}  # fmt: skip


def _storage_problem(err: BaseException) -> str | None:
    """What is wrong with the storage, if ``err`` (or an error it was raised from) says so."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _STORAGE_ERRNO:
            return _STORAGE_ERRNO[cur.errno]
        if "No space left on device" in str(cur):  # (torch / safetensors wrap it in a RuntimeError)
            return _STORAGE_ERRNO[errno.ENOSPC]
        cur = cur.__cause__ or cur.__context__
    return None


def describe_error(err: BaseException, indent: str = "") -> list[str]:
    """Lines that explain ``err``: its message, then the sub-errors of a group, nested."""
    if isinstance(err, XsomoError):
        text = str(err)
        if isinstance(err, BaseExceptionGroup):
            text = err.message
    elif isinstance(err, BaseExceptionGroup):
        text = err.message
    elif (storage := _storage_problem(err)) is not None:
        # a full disk while saving a model or a state file had been called a bug in xsomo (QA)
        text = (
            f"{storage} while writing ({type(err).__name__}: {err}). Free space (or write elsewhere) and rerun: "
            "outputs are written atomically, so nothing half-written is left (xsomo predict and xsomo train --run-dir "
            "resume where they stopped)."
        )
    elif isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.strerror}: {os.fspath(err.filename)!r}. Check the path and its permissions."
    elif isinstance(err, OSError) and not err.strerror and str(err):
        text = f"{err}. Check the path."
    elif isinstance(err, MemoryError):
        text = "out of memory. Use smaller blocks (--chunks) or a smaller period or region."
    else:
        msg = str(err) or "(no message)"
        text = (
            f"unexpected {type(err).__name__}: {msg}. This is a bug in xsomo or an input it does not "
            "check yet: rerun with --debug and report the traceback."
        )
    lines = [indent + line for line in text.splitlines() or [""]]
    if isinstance(err, BaseExceptionGroup):
        for sub in err.exceptions:
            sub_lines = describe_error(sub, indent + "    ")
            sub_lines[0] = indent + "  - " + sub_lines[0].lstrip()
            lines += sub_lines
    return lines


def _output_paths(args: argparse.Namespace) -> list[pathlib.Path]:
    out = []
    for name in OUTPUT_OPTIONS:
        value = getattr(args, name, None)
        if value:
            out.append(pathlib.Path(value))
    return out


def _missing_ancestors(path: pathlib.Path) -> list[pathlib.Path]:
    """The folders from ``path`` upwards that do not exist yet (deepest first)."""
    out = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def _remove_if_empty(folders: list[pathlib.Path]) -> None:
    """Remove folders (deepest first) that exist now and hold nothing but empty folders."""
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():
            continue
        for dirpath, _dirnames, filenames in os.walk(folder, topdown=False):
            if filenames:
                break
            try:
                os.rmdir(dirpath)
            except OSError:
                break


def _warning_format(name: str) -> Callable[..., str]:
    """``warnings.formatwarning`` for a command: ``xsomo <command>: warning: <message>``.

    Python's default shows the warning's file, line number and source line, which mean
    nothing to a user of the command line (``--debug`` keeps them). A warning that points
    into another installed package names its category and package. Only the format
    changes: filters, and hosts that record warnings (``pytest.warns``), see them as before.
    """

    def fmt(message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
        path = filename.replace(os.sep, "/")
        package = path.split("-packages/", 1)[1].split("/", 1)[0] if "-packages/" in path else "xsomo"
        origin = f" ({category.__name__} from {package})" if package != "xsomo" else ""
        return f"xsomo {name}: warning{origin}: {message}\n"

    return fmt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    name = args.command
    if name == "experiment" and getattr(args, "experiment", None):
        name = f"experiment {args.experiment}"
    created = [p for out in _output_paths(args) for p in _missing_ancestors(out)]
    mod = importlib.import_module(f"xsomo.commands.{COMMANDS[args.command]}")
    formatwarning = warnings.formatwarning
    if not getattr(args, "debug", False):
        warnings.formatwarning = _warning_format(name)
    try:
        return int(mod.run(args) or 0)
    except KeyboardInterrupt:
        _remove_if_empty(created)
        print(f"xsomo {name}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as err:  # the command line never ends in a traceback (issue 14)
        _remove_if_empty(created)
        if getattr(args, "debug", False):
            traceback.print_exception(err, file=sys.stderr)
        lines = describe_error(err)
        print(f"xsomo {name}: error: " + "\n".join(lines), file=sys.stderr)
        if not getattr(args, "debug", False) and not isinstance(err, XsomoError):
            print(f"xsomo {name}: (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = formatwarning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
