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
``-march=native`` code. It is compiled to a temporary name, loaded once, synced and renamed
into place, then its SHA-256 beside it: worker processes that compile it at the same time
each leave complete files, and a library whose checksum does not match (a crash while it was
written) is compiled again rather than loaded (``dlopen`` of a truncated file can kill the
process).

Where no compiler is found, compiling fails or ``XSOMO_C_KERNEL=0`` is set, :func:`kernel`
returns None (and logs why at INFO) and the PyTorch loops (or oneDNN's fused LSTM) run
instead -- the same arithmetic up to float32 rounding, slower at small shapes.
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

from xsomo.io.atomic import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

SOURCE = pathlib.Path(__file__).with_name("_ealstm_kernel.c")
#: No ``-ffast-math``: it assumes no NaN and no infinity (a NaN input gave a finite, saturated
#: gate, so a diverged training showed a finite loss) and, when linking, GCC 12 adds
#: ``crtfastmath.o``, whose constructor turns on flush-to-zero for the whole process.
#: ``-fno-math-errno`` and ``-fopenmp-simd`` let the sigmoid's ``expf`` vectorise (glibc's libmvec).
#: ``-mprefer-vector-width=512``: GCC 12 tunes Intel's AVX-512 cores for 256-bit vectors; the loops
#: are register-blocked for full-width ones (27-30 % less time on a Xeon, the same bits; GCC and
#: clang take the flag, and it changes nothing where there is no 512-bit register).
FLAGS = (
    "-O3", "-march=native", "-mprefer-vector-width=512", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast",
    "-fopenmp-simd", "-fPIC", "-std=c99",
)  # fmt: skip
LIBS = ("-lm",)

_P = ctypes.c_void_p
_I = ctypes.c_int


def enabled() -> bool:
    """False where ``XSOMO_C_KERNEL`` is ``0`` (the PyTorch loops then run)."""
    return os.environ.get("XSOMO_C_KERNEL", "1").strip() not in ("0", "false", "no", "off")


def cache_dir() -> pathlib.Path:
    """Where the compiled libraries are kept (absolute: ``dlopen`` searches the system's
    library path for a name without a slash)."""
    if os.environ.get("XSOMO_KERNEL_DIR"):
        return pathlib.Path(os.environ["XSOMO_KERNEL_DIR"]).absolute()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return (pathlib.Path(base) / "xsomo" / "kernels").absolute()


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


def _digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(path: pathlib.Path) -> bool:
    """Whether ``path`` is the library as it was written: its SHA-256 is in the file beside it,
    written after it. ``dlopen`` of a truncated library can kill the process (SIGBUS), so a
    library is never loaded unchecked."""
    try:
        return path.with_suffix(".sha256").read_text().strip() == _digest(path)
    except OSError:
        return False


class _BuildFailed(Exception):
    """Compiling or linking failed: :func:`xsomo.io.atomic.atomic_path` then installs nothing."""


def _build(cc: str, defines: tuple[str, ...], path: pathlib.Path) -> bool:
    """Compile, load once, and install the library and then its checksum, each through
    :mod:`xsomo.io.atomic` (a temporary name beside it, synced, renamed; concurrent builders
    each leave complete files)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as work, atomic_path(path) as tmp:
            obj = os.path.join(work, "ealstm.o")
            for command in (
                [cc, "-c", *FLAGS, *defines, str(SOURCE), "-o", obj],
                [cc, "-shared", obj, "-o", str(tmp), *LIBS],
            ):
                done = subprocess.run(command, capture_output=True, text=True, timeout=120)
                if done.returncode != 0:
                    raise _BuildFailed(f"{' '.join(command)}: {done.stderr.strip()}")
            if not tmp.exists() or tmp.stat().st_size == 0:
                raise _BuildFailed(f"{cc} wrote nothing")
            ctypes.CDLL(str(tmp))  # loads (symbols, libmvec) before it is installed
        atomic_write_text(path.with_suffix(".sha256"), _digest(path) + "\n")
        return True
    except (_BuildFailed, OSError, subprocess.SubprocessError) as err:
        log.info("compiling the EA-LSTM training loops failed: %s", err)
        return False


@functools.cache
def kernel(hidden: int, n_dynamic: int) -> ctypes.CDLL | None:
    """The compiled loops for ``hidden`` units and ``n_dynamic`` inputs, or None (see the module)."""
    if not enabled() or platform.system() == "Windows":
        return None
    tool = _toolchain()
    if tool is None:
        log.info("no C compiler found: the EA-LSTM trains with the PyTorch loops (slower at small sizes)")
        return None
    cc, version = tool
    defines = (f"-DHD={int(hidden)}", f"-DDD={int(n_dynamic)}")
    try:
        source = SOURCE.read_bytes()
    except OSError as err:
        log.info("the EA-LSTM kernel's source is missing (%s): the PyTorch loops run", err)
        return None
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS + defines + LIBS).encode(), version.encode(),
                                     _cpu_flags().encode()])).hexdigest()[:16]  # fmt: skip
    path = cache_dir() / f"ealstm-h{hidden}-d{n_dynamic}-{key}.so"
    if not _intact(path) and not _build(cc, defines, path):
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        log.info("loading %s failed: %s", path, err)
        return None
    lib.ealstm_forward.argtypes = [_I, _I, _I, _P, _P, _P, _P, _P, _P, _P]
    lib.ealstm_forward.restype = None
    lib.ealstm_backward.argtypes = [_I, _I, _I, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P]
    lib.ealstm_backward.restype = None
    lib.dropout_keep.argtypes = [ctypes.c_long, _P, _I, ctypes.c_float, _P]
    lib.dropout_keep.restype = None
    return lib
