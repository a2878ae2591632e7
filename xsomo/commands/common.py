"""Checks and resolvers shared by the subcommands, so an option means the same everywhere.

Every check runs before any long work and raises an :class:`~xsomo.exceptions.XsomoError`
whose message names the option, the path and the fix; none of them creates anything.

- :func:`output_dir` / :func:`output_file`: ``--out`` and friends can be written;
- :func:`input_path`: an input file or folder exists;
- :func:`resolve_file`: a netCDF file, or a folder holding the default file name
  (``--drivers prepared/`` is ``prepared/drivers.nc`` in every command);
- :func:`open_netcdf`: opens a netCDF file with a clear error for anything else (a CSV);
- :func:`open_drivers_arg`: ``--drivers`` as a netCDF file, a folder holding
  ``drivers.nc``, a sources file or a world folder;
- :func:`parse_date`, :func:`check_device`: ``--start 2016-02-30`` and ``--device tpu``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import pathlib
import re
from collections.abc import Iterator
from typing import Any

from xsomo.exceptions import XsomoValueError

__all__ = [
    "check_device",
    "input_path",
    "open_drivers_arg",
    "open_netcdf",
    "open_targets_arg",
    "output_dir",
    "output_file",
    "parse_date",
    "prediction_arg",
    "resolve_file",
]

PathLike = str | os.PathLike[str]


class CliError(XsomoValueError):
    """A command-line option has a value that cannot work (path, date, device)."""


def _existing_parent(path: pathlib.Path) -> pathlib.Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_creatable(path: pathlib.Path, option: str, what: str) -> None:
    """The nearest existing ancestor of ``path`` is a writable folder."""
    anc = _existing_parent(path.parent if path.name else path)
    if not anc.is_dir():
        raise CliError(
            f"{option} {path}: cannot create the {what}: {anc} is a file, not a folder. "
            "Choose a path whose parent folders are folders."
        )
    if not os.access(anc, os.W_OK | os.X_OK):
        raise CliError(
            f"{option} {path}: cannot create the {what}: the folder {anc} is not writable. "
            "Choose a folder you can write to or fix its permissions."
        )


def output_dir(path: PathLike, option: str = "--out") -> pathlib.Path:
    """Check that ``path`` can be (or is) a writable output folder; creates nothing.

    Raises
    ------
    CliError
        ``path`` is an existing file, lies below a file, or in a folder that is not writable.
    """
    p = pathlib.Path(path)
    if p.exists() and not p.is_dir():
        raise CliError(
            f"{option} {p}: this is an existing file, and the output folder must be a folder. "
            "Choose a new folder name (or remove the file)."
        )
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise CliError(
                f"{option} {p}: the output folder is not writable. Choose another folder or fix its permissions."
            )
        return p
    _check_creatable(p, option, "output folder")
    return p


def output_file(path: PathLike, option: str = "--out") -> pathlib.Path:
    """Check that ``path`` can be written as a file (not a folder, its parents creatable)."""
    p = pathlib.Path(path)
    if p.is_dir():
        raise CliError(f"{option} {p}: this is a folder; the output is a file. Give a file name.")
    if p.exists() and not os.access(p, os.W_OK):
        raise CliError(f"{option} {p}: the file exists and is not writable. Choose another name.")
    _check_creatable(p, option, "output file")
    return p


def input_path(path: PathLike, option: str, what: str = "file or folder") -> pathlib.Path:
    """``path`` if it exists, else a :class:`CliError` naming the option and the path."""
    p = pathlib.Path(path)
    if not p.exists():
        raise CliError(f"{option} {p}: no such {what}. Check the path.")
    return p


def resolve_file(path: PathLike, default_name: str, option: str) -> pathlib.Path:
    """A file, or the ``default_name`` inside a folder (``prepared/`` -> ``prepared/drivers.nc``)."""
    p = input_path(path, option)
    if p.is_dir():
        f = p / default_name
        if not f.is_file():
            raise CliError(
                f"{option} {p}: the folder holds no {default_name}. Pass the netCDF file itself or the "
                f"folder `xsomo prepare` wrote."
            )
        return f
    return p


def open_netcdf(path: PathLike, option: str, *, chunks: Any = None) -> Any:
    """Open a netCDF file; anything else (a CSV, a damaged file) gives a :class:`CliError`."""
    import xarray as xr

    p = input_path(path, option, "file")
    try:
        return xr.open_dataset(p, chunks=chunks)
    except (OSError, ValueError, RuntimeError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0]
        kind = "a CSV table" if p.suffix.lower() in (".csv", ".txt") else "not a readable netCDF file"
        raise CliError(
            f"{option} {p}: {kind}, not a netCDF file xsomo can read ({first}). "
            "Pass the netCDF file xsomo wrote (or the folder holding it)."
        ) from err


def _is_sources_file(p: pathlib.Path) -> bool:
    return p.is_file() and p.suffix.lower() in (".yml", ".yaml")


def open_drivers_arg(path: PathLike, option: str = "--drivers") -> Any:
    """``--drivers`` in every command: the lazy drivers Dataset.

    Accepts, in this order: a netCDF file; a folder holding ``drivers.nc`` (what
    ``xsomo prepare`` writes); a sources file (``*.yml``); a world folder (assembled
    on the fly with :func:`xsomo.drivers.assemble.open_drivers`).
    """
    p = input_path(path, option)
    if p.is_dir():
        if (p / "drivers.nc").is_file():
            return open_netcdf(p / "drivers.nc", option, chunks={})
        if (p / "world.json").is_file() or (p / "static" / "land_mask.nc").is_file():
            from xsomo.drivers.assemble import open_drivers

            return open_drivers(p)
        if (p / "sources.yml").is_file():
            from xsomo.drivers.assemble import open_drivers

            return open_drivers(p / "sources.yml")
        raise CliError(
            f"{option} {p}: the folder holds neither drivers.nc (xsomo prepare's output), a sources.yml "
            "nor a sample world. Pass the drivers netCDF or the folder `xsomo prepare` wrote."
        )
    if _is_sources_file(p):
        from xsomo.drivers.assemble import open_drivers

        return open_drivers(p)
    return open_netcdf(p, option, chunks={})


def open_targets_arg(path: PathLike, option: str = "--targets") -> Any:
    """``--targets`` in every command: a netCDF file or a folder holding ``targets.nc``."""
    return open_netcdf(resolve_file(path, "targets.nc", option), option)


def prediction_arg(path: PathLike, option: str = "--pred") -> Any:
    """``--pred``: a folder of SoMo.ml files (returned as the path) or a netCDF file (opened)."""
    p = input_path(path, option)
    if p.is_dir():
        from xsomo.io.somo import find_somo_files

        try:
            find_somo_files(p)
        except FileNotFoundError as err:
            raise CliError(
                f"{option} {p}: the folder holds no SoMo.ml files (SoMo.ml-EU_layer<N>_<YYYY>.nc). "
                "Pass the folder `xsomo predict --out` wrote, or a netCDF file with sm."
            ) from err
        return p
    return open_netcdf(p, option, chunks={})


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text: str | None, option: str) -> str | None:
    """Check a ``YYYY-MM-DD`` day (``2016-02-30`` is refused); returns it unchanged."""
    if text is None:
        return None
    if not _DATE.match(text.strip()):
        raise CliError(f"{option} {text!r}: not a date; write it as YYYY-MM-DD (e.g. 2016-02-29).")
    try:
        _dt.date.fromisoformat(text.strip())
    except ValueError as err:
        raise CliError(f"{option} {text!r}: no such day ({err}). Give a real calendar day, YYYY-MM-DD.") from err
    return text.strip()


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def check_device(text: str, option: str = "--device") -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; a CUDA device must be present."""
    value = str(text).strip().lower()
    if not _DEVICE.match(value):
        raise CliError(f"{option} {text!r}: unknown device; use auto (GPU when present), cpu, cuda or cuda:N.")
    if value.startswith("cuda"):
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        idx = int(value.split(":")[1]) if ":" in value else 0
        if idx >= n:
            raise CliError(
                f"{option} {text}: no such CUDA device here ({n} visible). Use --device cpu or auto."
            )
    return value


@contextlib.contextmanager
def scheduler_client(address: str | None) -> Iterator[Any]:
    """A ``dask.distributed`` client of ``--scheduler ADDRESS`` (``None`` without one), closed afterwards."""
    if not address:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as err:
        raise CliError(
            f"--scheduler {address}: dask.distributed is not installed here ({err}). Install it "
            "(pip install distributed) or leave out --scheduler."
        ) from err
    try:
        client = Client(address)
    except (OSError, ValueError, TypeError) as err:
        # (an address without a port was "unexpected ValueError ... a bug in xsomo", a scheduler
        # that does not answer "Timed out ... Check the path"; QA)
        raise CliError(
            f"--scheduler {address}: no dask scheduler could be reached there ({err}). Give the address "
            "the scheduler prints (tcp://HOST:8786), check that it runs, or leave out --scheduler to compute here."
        ) from err
    try:
        yield client
    finally:
        client.close()
