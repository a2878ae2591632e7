"""The EA-LSTM training loops in C (``_ealstm_kernel.c``), compiled on first use.

:class:`~xsomo.model._ealstm_cpu.EALSTMFunction` runs its loops through time with one PyTorch
operation per step; at small shapes (the demo preset: 64 sequences x 32 hidden units) the
dispatcher's cost per operation exceeds the arithmetic. The same loops in C, with the hidden
size and the number of dynamic inputs as compile-time constants, are compiled here with the
system's C compiler into a shared library under the user's cache folder
(``$XDG_CACHE_HOME/xsomo/kernels``, else ``~/.cache/xsomo/kernels``; ``XSOMO_KERNEL_DIR``
overrides it) and called through :mod:`ctypes`. The library's name holds a hash of the
source, the flags, the compiler's version and this CPU's instruction-set flags, so that a
home folder shared by machines of different CPUs never hands one machine another's
``-march=native`` code. It is written to a temporary name and renamed into place: worker
processes that compile it at the same time each leave a complete file.

Where no compiler is found, compiling fails or ``XSOMO_C_KERNEL=0`` is set, :func:`kernel`
returns None and the PyTorch loops (or oneDNN's fused LSTM) run instead -- the same
arithmetic, slower at small shapes; nothing else changes.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import sysconfig
import tempfile

log = logging.getLogger(__name__)

SOURCE = pathlib.Path(__file__).with_name("_ealstm_kernel.c")
#: Compiled with these, then linked without ``-ffast-math``: linking with it adds GCC's
#: ``crtfastmath.o`` (before GCC 13, shared libraries too), whose constructor turns on
#: flush-to-zero for the whole process when the library loads.
FLAGS = ("-O3", "-ffast-math", "-march=native", "-fPIC", "-std=c99")
LIBS = ("-lm",)

_P = ctypes.c_void_p
_I = ctypes.c_int


def enabled() -> bool:
    """False where ``XSOMO_C_KERNEL`` is ``0`` (the PyTorch loops then run)."""
    return os.environ.get("XSOMO_C_KERNEL", "1").strip() not in ("0", "false", "no", "off")


def cache_dir() -> pathlib.Path:
    if os.environ.get("XSOMO_KERNEL_DIR"):
        return pathlib.Path(os.environ["XSOMO_KERNEL_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "xsomo" / "kernels"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name.split()[0]):
            return name.split()[0]
    return None


def _cpu_flags() -> str:
    """This CPU's instruction-set flags (Linux), else the machine and processor names."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


@functools.cache
def _toolchain() -> tuple[str, str] | None:
    cc = _compiler()
    if cc is None:
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return cc, version


@functools.cache
def kernel(hidden: int, n_dynamic: int) -> ctypes.CDLL | None:
    """The compiled loops for ``hidden`` units and ``n_dynamic`` inputs, or None (see the module)."""
    if not enabled() or platform.system() == "Windows":
        return None
    tool = _toolchain()
    if tool is None:
        log.debug("no C compiler: the EA-LSTM trains with the PyTorch loops")
        return None
    cc, version = tool
    defines = (f"-DHD={int(hidden)}", f"-DDD={int(n_dynamic)}")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS + defines + LIBS).encode(), version.encode(),
                                     _cpu_flags().encode()])).hexdigest()[:16]  # fmt: skip
    folder = cache_dir()
    path = folder / f"ealstm-h{hidden}-d{n_dynamic}-{key}.so"
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
            os.close(fd)
            try:
                obj = tmp[:-3] + ".o"
                for command in (
                    [cc, "-c", *FLAGS, *defines, str(SOURCE), "-o", obj],
                    [cc, "-shared", obj, "-o", tmp, *LIBS],
                ):
                    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
                    if done.returncode != 0:
                        log.debug("compiling the EA-LSTM kernel failed: %s", done.stderr.strip())
                        return None
                os.replace(tmp, path)
            finally:
                for leftover in (tmp, tmp[:-3] + ".o"):
                    if os.path.exists(leftover):
                        os.unlink(leftover)
        except (OSError, subprocess.SubprocessError) as err:
            log.debug("compiling the EA-LSTM kernel failed: %s", err)
            return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        log.debug("loading %s failed: %s", path, err)
        return None
    lib.ealstm_forward.argtypes = [_I, _I, _P, _P, _P, _P, _P, _P, _P]
    lib.ealstm_forward.restype = None
    lib.ealstm_backward.argtypes = [_I, _I, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P]
    lib.ealstm_backward.restype = None
    return lib
