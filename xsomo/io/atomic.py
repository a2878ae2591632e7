"""Atomic writes: a final name only ever holds a complete file (or folder).

Every writer of xsomo goes through these helpers: the data go to a temporary name in
the same folder, are flushed to disk, and are renamed onto the final name with
``os.replace`` only when complete. A crash, a full disk or SIGKILL leaves the final
name as it was (absent or the previous version) and at most a hidden ``.*.tmp*``
file behind, which the next run removes or overwrites.

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_path(d / "out.txt") as tmp:
...     _ = tmp.write_text("hello")
>>> (d / "out.txt").read_text()
'hello'
>>> sorted(p.name for p in d.iterdir())
['out.txt']
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

__all__ = [
    "DIR_MODE",
    "FILE_MODE", "atomic_dir", "atomic_path", "atomic_write_bytes", "atomic_write_text",
    "fsync_path", "remove_stale_temporaries", "stale_temporaries",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Permissions of written files and folders: what the umask allows for ``open``/``mkdir``.
FILE_MODE = 0o666 & ~_umask()
DIR_MODE = 0o777 & ~_umask()


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a closed file's data to disk (best effort on file systems that refuse it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tmp_name(path: pathlib.Path) -> pathlib.Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    return pathlib.Path(tmp)


def stale_temporaries(path: str | os.PathLike[str], *, legacy: bool = False) -> list[pathlib.Path]:
    """Temporary files that a killed writer of ``path`` left beside it, sorted.

    :func:`atomic_path` writes ``.{stem}.XXXXXXXX.tmp{suffix}`` (8 random characters), and a
    writer may add sidecars to that name (GDAL's ``….tmp.tif.ovr.tmp`` while it builds
    overviews); only names of exactly that pattern for this target match, not those of
    another target sharing its first characters (``.m.x.XXXXXXXX.tmp.tif`` is ``m.x.tif``'s).
    ``legacy=True`` adds the older names of writers before :func:`atomic_path`: ``{name}.tmp``
    and ``.{name}.XXXXXXXX.tmp`` (``xsomo prepare``'s).

    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for n in (".m.ab12cd_9.tmp.nc", ".m.ab12cd_9.tmp.nc.aux", ".m.x.ab12cd_9.tmp.nc", "m.nc.tmp", ".m.nc.ab12cd_9.tmp"):
    ...     _ = (d / n).write_bytes(b"partial")
    >>> [p.name for p in stale_temporaries(d / "m.nc")]
    ['.m.ab12cd_9.tmp.nc', '.m.ab12cd_9.tmp.nc.aux']
    >>> [p.name for p in stale_temporaries(d / "m.nc", legacy=True)]
    ['.m.ab12cd_9.tmp.nc', '.m.ab12cd_9.tmp.nc.aux', '.m.nc.ab12cd_9.tmp', 'm.nc.tmp']
    """
    import re

    target = pathlib.Path(path).expanduser()
    if not target.parent.is_dir():
        return []
    pattern = re.compile(
        rf"^\.{re.escape(target.stem)}\.[A-Za-z0-9_]{{8}}\.tmp{re.escape(target.suffix)}(\..+)?$"
    )
    found = [p for p in target.parent.glob(".*.tmp*") if pattern.match(p.name) and p.is_file()]
    if legacy:
        old = re.compile(rf"^\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}\.tmp$")
        found += [p for p in target.parent.glob(".*.tmp") if old.match(p.name) and p.is_file()]
        if (target.parent / f"{target.name}.tmp").is_file():
            found.append(target.parent / f"{target.name}.tmp")
    return sorted(found)


def stale_folders(path: str | os.PathLike[str]) -> list[pathlib.Path]:
    """Temporary folders that a killed :func:`atomic_dir` writer of ``path`` left beside it
    (``.{name}.XXXXXXXX.tmp`` being written, ``.{name}.XXXXXXXX.old`` being replaced), sorted.

    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for n in (".sm.zarr.ab12cd_9.tmp", ".sm.zarr.ab12cd_9.old", ".sm.zarr.x.ab12cd_9.tmp"):
    ...     (d / n).mkdir()
    >>> [p.name for p in stale_folders(d / "sm.zarr")]
    ['.sm.zarr.ab12cd_9.old', '.sm.zarr.ab12cd_9.tmp']
    """
    import re

    target = pathlib.Path(path).expanduser()
    if not target.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}\.(tmp|old)$")
    return sorted(p for p in target.parent.glob(f".{glob.escape(target.name)}.*") if pattern.match(p.name) and p.is_dir())


def remove_stale_temporaries(path: str | os.PathLike[str], *, legacy: bool = False) -> None:
    """Remove :func:`stale_temporaries` of ``path`` (before writing it anew; they are never trusted).

    Two processes writing the same file at once are not supported: the later one removes
    the earlier one's temporary file.
    """
    for p in stale_temporaries(path, legacy=legacy):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, overwrite: bool = True, create: bool = False
) -> Iterator[pathlib.Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The caller writes the temporary path with any library (netCDF4, rasterio, pyogrio,
    matplotlib ...). ``create=False`` removes the empty placeholder first, for libraries
    that refuse to open an existing file. On any exception the temporary file is removed
    and ``path`` is left untouched. The temporary files of ``path`` that a killed earlier
    writer left (:func:`stale_temporaries`) are removed first (a state file's or a prepared
    drivers file's had stayed for good).
    """
    path = pathlib.Path(path).expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; remove it, choose another name, or pass overwrite=True to replace it (on the command line: --overwrite, or leave out --no-overwrite)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder for {path.name}; create it first")
    remove_stale_temporaries(path)
    tmp = _tmp_name(path)
    if not create:
        tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the writer created no file for {path}")
        os.chmod(tmp, FILE_MODE)
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, create=True) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[pathlib.Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    An existing ``path`` is moved aside first and removed only after the new folder is in
    place, so a crash leaves either the old or the new folder under the final name.
    """
    path = pathlib.Path(path).expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; remove it, choose another name, or pass overwrite=True to replace it (on the command line: --overwrite, or leave out --no-overwrite)")
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a folder; choose another output path")
    path.parent.mkdir(parents=True, exist_ok=True)
    # folders a killed writer of this path left (a killed `xsomo predict --format zarr` had left its
    # partial store beside the store forever, gigabytes at Europe's size; QA): never trusted
    for stale in stale_folders(path):
        # an .old folder is the only copy where a kill fell between moving the old folder aside and
        # moving the new one in: kept unless the folder is in place
        if stale.suffix == ".tmp" or path.exists():
            shutil.rmtree(stale, ignore_errors=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        old.rmdir()
        os.replace(path, old)
    os.chmod(tmp, DIR_MODE)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
