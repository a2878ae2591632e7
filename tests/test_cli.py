from __future__ import annotations

import subprocess
import sys

import xarray as xr

import xsomo
from xsomo.cli import COMMANDS, build_parser


def test_import_registers_accessor_and_stays_light():
    assert hasattr(xr.Dataset(), "somo")
    # importing xsomo must not import torch (the xarray backend and CLI help stay fast)
    code = "import sys, xsomo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_lists_every_subcommand():
    parser = build_parser()
    helptext = parser.format_help()
    missing = [name for name in COMMANDS if name not in helptext]
    assert not missing, f"subcommands not registered: {missing}"


def test_cli_version():
    out = subprocess.run([sys.executable, "-m", "xsomo.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and xsomo.__version__ in out.stdout


def test_a_full_disk_is_named_not_called_a_bug():
    """A full disk while saving a model (torch wraps the OSError in a RuntimeError) or a state
    file had been reported as "unexpected ... This is a bug in xsomo" (hostile-input QA)."""
    import errno

    from xsomo.cli import describe_error

    full = OSError(errno.ENOSPC, "No space left on device")
    (line,) = describe_error(full)
    assert line.startswith("no space left on the device while writing") and "bug" not in line
    try:
        try:
            raise full
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0") from inner
    except RuntimeError as wrapped:
        assert describe_error(wrapped)[0].startswith("no space left on the device while writing (RuntimeError")
    assert "bug in xsomo" in describe_error(RuntimeError("something else"))[0]
