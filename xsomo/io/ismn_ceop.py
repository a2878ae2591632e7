"""ISMN's old *CEOP combined* format: one file per station, every depth in it.

Downloads from the ISMN's first years (and pytesmo's test data) hold one ``.stm`` file per
station, ``<CSE>_<NETWORK>_<STATION>_<start>_<end>.stm``, whose lines carry soil temperature
and soil moisture for one depth and time (16 whitespace-separated fields)::

    2010/10/21 01:00 2010/10/21 01:00 SMOSMANIA SMOSMANIA Narbonne 43.15000 2.95670 112.00 - 0.10 12.20 U 0.2913 U

nominal date and time (UTC), actual date and time, CSE, network, station, latitude,
longitude, elevation, ``-`` (no upper depth), depth (m), soil temperature (deg C), its ISMN
flag, soil moisture (m3 m-3), its ISMN flag; ``-999.99`` marks a missing value. The
``ismn`` package (1.x) no longer reads it ("Ceop (old) format is no longer supported") and
fails on such a folder with an unrelated error, so xsomo reads these files here, one sensor
per depth, with the nominal time as ``ismn`` does for the CEOP format it still reads
(*CEOP separated*, 15 fields per line), and passes each through the same checks and QC as
the files the ``ismn`` package reads (:func:`xsomo.io.ismn.read_ismn`).
"""

from __future__ import annotations

import pathlib
import re
import zipfile
from collections.abc import Iterator

import numpy as np
import pandas as pd

from xsomo.exceptions import DataFormatError

__all__ = ["SENSOR", "ceop_combined_files", "is_ceop_combined", "read_ceop_combined"]

#: the sensor name of these files' sensors (the format names none)
SENSOR = "unknown"

_DATE = re.compile(r"\d{4}/\d{2}/\d{2}$")
_TIME = re.compile(r"\d{2}:\d{2}$")
_LINES = re.compile(r"\r\n|\r|\n")
#: the fields used: nominal date, time, CSE .. elevation, depth, soil moisture and its flag
_FIELDS = 16
_MISSING = "-999.99"


def is_ceop_combined(first_line: str) -> bool:
    """Whether a file's first line is a line of the old CEOP combined format.

    >>> is_ceop_combined("2010/10/21 01:00 2010/10/21 01:00 S S Narbonne 43.1 2.9 112.00 - 0.10 "
    ...                  "12.20 U 0.2913 U")
    True
    >>> is_ceop_combined("2003/12/11 00:30 2003/12/11 00:40 OZNET OZNET Widgiewa -35.09 146.30 "
    ...                  "121.00 0.15 0.15 28.30 U M")  # CEOP separated: the ismn package reads it
    False
    """
    f = first_line.split()
    return (
        len(f) == _FIELDS
        and all(_DATE.match(f[k]) for k in (0, 2))
        and all(_TIME.match(f[k]) for k in (1, 3))
    )


def _first_lines(path: pathlib.Path) -> Iterator[tuple[str, str]]:
    """``(relative path, first line)`` of each ``.stm`` file of a download folder or zip (the
    first line is all the format detection needs: a large download's files are not held)."""
    if path.is_dir():
        for f in sorted(path.rglob("*.stm")):
            with open(f, "rb") as fh:
                yield f.relative_to(path).as_posix(), _first_line(fh.read(4096))
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in sorted(zf.namelist()):
                if name.lower().endswith(".stm") and not name.endswith("/"):
                    with zf.open(name) as fh:
                        yield pathlib.PurePath(name).as_posix(), _first_line(fh.read(4096))


def _first_line(head: bytes) -> str:
    return next((ln for ln in _LINES.split(head.decode("latin-1")) if ln.strip()), "")


def ceop_combined_files(path: pathlib.Path) -> tuple[list[str], list[str], list[str]]:
    """``(old CEOP combined files, other .stm files, blank .stm files)`` of a download folder
    or zip (relative paths; a blank file has no text in its first 4 KiB)."""
    old, other, blank = [], [], []
    for rel, line in _first_lines(path):
        (blank if not line else old if is_ceop_combined(line) else other).append(rel)
    return old, other, blank


def read_ceop_combined(raw: bytes, rel: str) -> tuple[dict, dict[float, pd.DataFrame]]:
    """Station metadata and one hourly table per depth of an old CEOP combined file.

    Returns ``(meta, tables)``: ``meta`` has ``network``, ``station``, ``lat``, ``lon`` and
    ``elevation``; ``tables`` maps each depth (m) to a DataFrame indexed by the nominal UTC
    time with the columns ``soil_moisture`` (text, as in the file, ``-999.99`` blank) and
    ``soil_moisture_flag``, in file order. A line with another number of fields, or a file whose
    lines name several stations or positions, raises :class:`DataFormatError` naming ``rel``.
    """
    text = raw.decode("latin-1")
    lines = [ln for ln in _LINES.split(text) if ln.strip()]
    if not lines:
        raise DataFormatError(f"{rel}: empty file")
    fields = [ln.split() for ln in lines]  # split once: checked, then tabled
    k = next((i for i, f in enumerate(fields) if len(f) != _FIELDS), None)
    if k is not None:
        raise DataFormatError(
            f"{rel}: line {k + 1} has {len(fields[k])} fields, not the {_FIELDS} of the old CEOP combined format "
            f"({lines[k].strip()[:80]!r}); the file is damaged (re-download it) or not in that format"
        )
    df = pd.DataFrame(fields)
    where = df[[5, 6, 7, 8, 9]].drop_duplicates()
    if len(where) != 1:
        raise DataFormatError(
            f"{rel}: its lines name {len(where)} different stations or positions "
            f"(network, station, lat, lon, elevation: {where.head(3).to_numpy().tolist()}); an old CEOP "
            "combined file holds one station"
        )
    net, stn, lat, lon, elev = where.iloc[0]
    try:
        meta = {"network": net, "station": stn, "lat": float(lat), "lon": float(lon), "elevation": float(elev)}
        depth = pd.to_numeric(df[11], errors="raise").to_numpy(float)
    except ValueError as err:
        raise DataFormatError(f"{rel}: a position or depth is not a number ({err})") from err
    time = pd.to_datetime(df[0] + " " + df[1], format="%Y/%m/%d %H:%M", errors="coerce")
    sm = df[14].where(df[14] != _MISSING)
    tables = {}
    for d in np.unique(depth):
        sel = depth == d
        tables[float(d)] = pd.DataFrame(
            {"soil_moisture": sm[sel].to_numpy(), "soil_moisture_flag": df[15][sel].to_numpy()},
            index=pd.DatetimeIndex(time[sel].to_numpy(), name="date_time"),
        )
    return meta, tables
