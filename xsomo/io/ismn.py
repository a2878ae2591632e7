"""ISMN station data (https://ismn.earth) read with TU Wien's ``ismn`` package.

The ``ismn`` package writes a ``python_metadata/`` folder into the data folder on
first use; :func:`open_ismn` points it at a temporary (or user-given cache) folder
instead, so the user's data folder is never written to.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pathlib
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo import units as xu
from xsomo.exceptions import DataFormatError, XsomoExceptionGroup, XsomoValueError
from xsomo.io.ismn_ceop import SENSOR, ceop_combined_files, read_ceop_combined
from xsomo.io.ismn_forcing import attach_forcing, read_forcing
from xsomo.io.stations import REPORT_COLUMNS, station_id
from xsomo.runtime import user_stacklevel

__all__ = ["read_ismn"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _quiet():
    """Silence the ``ismn`` package's prints, progress bars and log records."""
    loggers = [logging.getLogger(name) for name in ("ismn", "ismn_meta_collector")]
    root_handlers = logging.getLogger().handlers[:]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)
        # ismn may add file handlers to the root logger; remove any it added
        for h in logging.getLogger().handlers[:]:
            if h not in root_handlers:
                logging.getLogger().removeHandler(h)
                h.close()


def _interface(path: pathlib.Path, meta_dir: pathlib.Path, parallel: bool):
    from ismn.interface import ISMN_Interface

    with _quiet():
        return ISMN_Interface(
            str(path), meta_path=str(meta_dir), parallel=parallel, temp_root=str(meta_dir)
        )


def _network_one_up(parts: tuple[str, ...]) -> bool:
    """Whether an ``.stm`` file (its path's parts) lies right in its network's folder: the folder
    above it, not the one above that, is named as the network the file name starts with
    (``SMOSMANIA/SMOSMANIA_SMOSMANIA_Narbonne_sm_...stm``; ``-`` and ``_`` alike, any case).

    >>> _network_one_up(("N", "S", "N_N_S_sm_0.05_0.05_Probe_20200101_20200131.stm"))
    False
    >>> _network_one_up(("x", "SMOSMANIA", "SMOSMANIA_SMOSMANIA_Narbonne_sm_0.05_0.05_T_20070101_20070131.stm"))
    True
    """
    def norm(name: str) -> str:
        return name.replace("-", "_").casefold()

    network = norm(parts[-1].split("_")[0])
    return len(parts) >= 2 and norm(parts[-2]) == network and (len(parts) < 3 or norm(parts[-3]) != network)


def _check_layout(path: pathlib.Path) -> None:
    """Refuse ``.stm`` files that do not lie in ``<NETWORK>/<STATION>/`` folders below ``path``.

    The ismn package takes the network and station from those folders; a flattened download, a
    network folder passed instead of the download's root or a folder of loose files had ended
    in its "'NoneType' object is not iterable"."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            parts = [pathlib.PurePosixPath(n).parts for n in zf.namelist() if n.lower().endswith(".stm")]
    elif path.is_dir():
        parts = [p.relative_to(path).parts for p in path.rglob("*.stm")]
    else:
        return
    if parts and min(len(p) for p in parts) > 3:
        # one folder around the network folders (a zip made of the unpacked folder): the ismn package
        # took that folder for the network ('ismn.Bersel...' ids), or found nothing in a folder
        inner = "/".join(min(parts, key=len)[:-3])
        raise DataFormatError(
            f"ISMN {'zip' if path.is_file() else 'folder'} {str(path)!r}: the data files lie one or more folders "
            f"deeper than <NETWORK>/<STATION>/*.stm (e.g. below {inner!r}), so the network would be read from the "
            f"wrong folder. Pass the folder holding the network folders ({inner!r} "
            f"{'once unzipped' if path.is_file() else 'inside it'}), or zip the network folders themselves."
        )
    # (checked for zips too: a zip of loose files or of a network folder without station folders had
    # failed with the ismn package's "'NoneType' object is not iterable", or read the folder around
    # the network folder as the network: 'format_header_values.Narbonne')
    shallow = sorted(pathlib.PurePosixPath(*p) for p in parts if len(p) < 3 or _network_one_up(p))
    if shallow:
        first = shallow[0].as_posix()
        if len(shallow[0].parts) == 1:
            where = f"in the {'zip' if path.is_file() else 'folder'} passed itself ({first!r})"
        elif _network_one_up(shallow[0].parts):
            where = f"right in their network's folder ({first!r}: a network folder without station folders)"
        else:
            where = f"one folder below it ({first!r}: a network folder without station folders, or the network folder passed)"
        raise DataFormatError(
            f"ISMN {'zip' if path.is_file() else 'folder'} {str(path)!r}: {len(shallow)} data file(s) lie {where}; "
            "the ismn package reads <NETWORK>/<STATION>/*.stm. Pass the folder the ISMN download unpacks to (the "
            "one holding the network folders), or the zip itself; do not flatten the download."
        )


def read_ismn(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    sensor_qc: Callable[..., Any],
    build: Callable[..., xr.Dataset],
    min_hourly: int = 6,
    min_days: int = 90,
    good_flags: Sequence[str] = ("G",),
    errors: str = "raise",
    report: bool = False,
    meta_path: str | os.PathLike[str] | None = None,
    parallel: bool = False,
    variables: Sequence[str] = ("soil_moisture",),
) -> xr.Dataset | tuple[xr.Dataset, pd.DataFrame]:
    """Read an ISMN download (folder or zip, any ISMN format) into a QC'd station Dataset.

    The files are read here; the quality control is the caller's: each soil-moisture
    sensor's hourly record goes through ``sensor_qc`` as it is read (so memory holds one
    sensor's hourly data at a time) and the kept sensors are assembled by ``build``.
    :func:`xsomo.open_ismn` (:func:`xsomo.targets.stations.open_ismn`) passes the
    method's rules, :func:`~xsomo.targets.stations.qc_sensor` and
    :func:`~xsomo.targets.stations.build_stations`.

    Parameters
    ----------
    path
        ISMN data folder (``<NETWORK>/<STATION>/*.stm``) or the zip archive as downloaded,
        or a list of them (stacked along ``station``; ``meta_path`` gets one sub-folder each).
    min_hourly
        Minimum number of good hourly values for a daily mean.
    min_days
        Minimum number of valid days for a sensor to be kept.
    good_flags
        ISMN quality flags kept (SoMo.ml: ``G`` only).
    errors
        ``"raise"`` (default): a corrupt or truncated file, or a sensor whose daily values leave
        0..1 m3 m-3 (percent, fill values flagged good), raises :class:`DataFormatError`;
        ``"report"``: such files and sensors are dropped and listed in the report.
    report
        Also return the QC report (see Returns).
    meta_path
        Folder for the ``ismn`` package's metadata cache (default: a temporary folder,
        deleted afterwards). Never the data folder.
    parallel
        Let ``ismn`` collect metadata with several processes.
    variables
        ``soil_moisture`` (always read) and any of ``precipitation``, ``air_temperature``,
        ``air_temperature_range`` (daily max - min of the hourly air temperature):
        each sensor also gets its station's daily forcing as ``(station, time)`` variables
        and the station's ``elevation_mean``, ``sand_top``/``clay_top``/``sand_sub``/``clay_sub``
        as coordinates (:mod:`xsomo.io.ismn_forcing`; input to :func:`xsomo.point_drivers`).

    Returns
    -------
    stations : xarray.Dataset
        ``sm(station, time)`` float32 m3 m-3, daily (UTC) means; one ``station`` entry per
        sensor, with coords ``lat``, ``lon``, ``network``, ``station_name``, ``sensor``,
        ``depth_top``, ``depth_bottom`` (m) and ``layer`` (1-3).
    report : pandas.DataFrame
        Only with ``report=True``: one row per sensor file found (all variables), with
        ``n_records``, ``n_flag_good``, ``n_negative``, ``n_days``, ``layer``, ``kept`` and
        the ``reason`` a sensor was dropped. When no sensor is kept, the
        :class:`DataFormatError` raised carries the table as ``.report``.

    Raises
    ------
    DataFormatError
        Corrupt or truncated files (``errors="raise"``), or no soil-moisture sensor left.

    Examples
    --------
    >>> stations, rep = xsomo.open_ismn("world/ismn", report=True)  # doctest: +SKIP
    >>> rep[~rep.kept][["station_id", "reason"]]  # doctest: +SKIP
    """
    if isinstance(path, (list, tuple)):
        return _open_many(
            path,
            sensor_qc=sensor_qc,
            build=build,
            min_hourly=min_hourly,
            min_days=min_days,
            good_flags=good_flags,
            errors=errors,
            report=report,
            meta_path=meta_path,
            parallel=parallel,
            variables=variables,
        )
    forcing_vars = [str(v) for v in variables if str(v) != "soil_moisture"]
    if errors not in ("raise", "report"):
        raise XsomoValueError(f"errors={errors!r}: use 'raise' or 'report'.")
    path = pathlib.Path(cast("str | os.PathLike[str]", path)).expanduser()
    if not path.exists():
        raise DataFormatError(
            f"ISMN path {str(path)!r} does not exist. Pass the ISMN download folder or zip."
        )
    if path.is_dir() and not any(path.rglob("*.stm")) and not any(path.rglob("*.csv")):
        raise DataFormatError(
            f"ISMN folder {str(path)!r} holds no ISMN data files (<NETWORK>/<STATION>/*.stm). "
            "Pass the folder the ISMN download unpacks to, or the zip itself."
        )
    with contextlib.ExitStack() as stack:
        if meta_path is None:
            meta_dir = pathlib.Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="xsomo-ismn-"))
            )
        else:
            meta_dir = pathlib.Path(meta_path)
            meta_dir.mkdir(parents=True, exist_ok=True)
            if path.is_dir() and meta_dir.resolve().is_relative_to(path.resolve()):
                raise XsomoValueError(
                    f"meta_path {str(meta_dir)!r} lies inside the data folder; use a cache folder."
                )
        qc = {"sensor_qc": sensor_qc, "good_flags": good_flags, "min_hourly": min_hourly, "min_days": min_days}
        old_ceop, others, blank = ceop_combined_files(path)
        if old_ceop:
            _refuse_mixed_formats(path, old_ceop, others, blank, forcing_vars)
            rows, records, problems = _collect(
                path, _ceop_sensors(path, old_ceop), strict=_per_sensor_spans(old_ceop), checked=True, **qc
            )
            forcing = None
        else:
            _check_layout(path)
            try:
                iface = _interface(path, meta_dir, parallel)
            except Exception as err:
                raise DataFormatError(
                    f"the ismn package cannot read {str(path)!r}: {err}. Pass an ISMN download folder or zip."
                ) from err
            names = [str(sen.filehandler.file_path) for net in iface.collection.iter_networks()
                     for stn in net.iter_stations() for sen in stn.iter_sensors()]  # fmt: skip
            rows, records, problems = _collect(
                path, _ismn_sensors(iface, path), strict=_per_sensor_spans(names), **qc
            )
            forcing = read_forcing(iface, path, forcing_vars, good_flags=good_flags) if forcing_vars else None
    rep = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    if problems and errors == "raise":
        raise XsomoExceptionGroup(
            f"{len(problems)} ISMN file(s) in {str(path)!r} are corrupt, truncated or hold implausible values (each "
            "named below). Re-download them, fix or remove them, or pass errors='report' to skip them (they are then "
            "listed in the report).",
            problems,
        )
    if not records:
        counts = rep["reason"].value_counts().to_dict() if len(rep) else {}
        exc = DataFormatError(
            f"no soil-moisture sensor in {str(path)!r} passed quality control (dropped: {counts}). "
            "Check the folder, or relax min_days / min_hourly, or accept more quality flags (an older download "
            f"whose values are all flagged 'U', not checked, needs good_flags=('G', 'U'); now {tuple(good_flags)}); "
            "the report is in the error's .report."
        )
        exc.report = rep  # type: ignore[attr-defined]
        raise exc
    ds = build(
        records,
        attrs={
            "title": "ISMN soil moisture, daily means after quality control",
            "source": f"ISMN download {path.name}, "
            + ("ISMN's old CEOP combined format, read by xsomo" if old_ceop else "read with the ismn package"),
            "qc": f"flags {'/'.join(good_flags)} only; no negatives; daily mean from >= {min_hourly} good hourly "
            f"values; depth interval inside one layer; >= {min_days} valid days",
            "n_sensors_found": len(rep),
            "n_sensors_kept": len(records),
            "references": "Dorigo et al. (2021), HESS 25, 5749, doi:10.5194/hess-25-5749-2021",
        },
    )
    xu.check_plausible(ds[cv.SM], cv.SM, source=f"ISMN download {path}")
    if forcing is not None:
        ds = attach_forcing(ds, forcing, forcing_vars)
    return (ds, rep) if report else ds


def _refuse_mixed_formats(
    path: pathlib.Path, old_ceop: Sequence[str], others: Sequence[str], blank: Sequence[str], forcing_vars: Sequence[str]
) -> None:
    """Old CEOP combined files are read by xsomo, the others by the ismn package: one format per
    path. A blank ``.stm`` file among them is named as such (it had been taken for a newer format)."""
    if blank:
        raise DataFormatError(
            f"{str(path)!r}: {blank[0]!r} is empty" + (f" (and {len(blank) - 1} more .stm files)" if len(blank) > 1 else "")
            + f", beside ISMN's old CEOP combined files (e.g. {old_ceop[0]!r}): a failed download or extraction. "
            + "Download the file again, or delete it."
        )
    if others:
        raise DataFormatError(
            f"{str(path)!r} mixes ISMN's old CEOP combined files (one file per station, e.g. {old_ceop[0]!r}) "
            f"with files of a newer ISMN format (e.g. {others[0]!r}). Put each format in its own folder and "
            "pass both: open_ismn([old_folder, new_folder])."
        )
    if forcing_vars:
        raise DataFormatError(
            f"{str(path)!r} holds ISMN's old CEOP combined files, which carry soil temperature and soil "
            f"moisture only: no {', '.join(forcing_vars)}. Read the forcing from a newer download."
        )


def _open_many(
    paths: Sequence[str | os.PathLike[str]],
    *,
    report: bool,
    meta_path: str | os.PathLike[str] | None,
    **kwargs: Any,
) -> xr.Dataset | tuple[xr.Dataset, pd.DataFrame]:
    parts: list[xr.Dataset] = []
    reps: list[pd.DataFrame] = []
    for k, p in enumerate(paths):
        mp = None if meta_path is None else pathlib.Path(meta_path) / f"{k:03d}"
        ds, rep = read_ismn(p, report=True, meta_path=mp, **kwargs)
        parts.append(ds)
        reps.append(rep.assign(source=str(p)))
    ds = xr.concat(parts, dim=cv.STATION, join="outer", combine_attrs="drop_conflicts")
    if ds.indexes[cv.STATION].has_duplicates:
        raise DataFormatError(
            f"the same sensor appears in several of {[str(p) for p in paths]}; pass each download once."
        )
    rep = pd.concat(reps, ignore_index=True)
    return (ds, rep) if report else ds


def _stm_files(path: pathlib.Path) -> set[str]:
    if not path.is_dir():
        return set()
    return {p.relative_to(path).as_posix() for p in path.rglob("*.stm")}


def _ismn_sensors(iface, path: pathlib.Path) -> Iterator[tuple[str, dict | None, Any]]:
    """``(file, base row, table)`` of each sensor the ``ismn`` package finds; the table is a
    ``(problem, reason)`` pair where it cannot be read, a reason string for a sensor of another
    variable; then ``(file, None, (problem, reason))`` for each ``.stm`` file the package skipped."""
    seen: set[str] = set()
    for net in iface.collection.iter_networks():
        for stn in net.iter_stations():
            for sen in stn.iter_sensors():
                rel = str(sen.filehandler.file_path)
                seen.add(pathlib.PurePath(rel).as_posix())
                top, bottom = float(sen.depth.start), float(sen.depth.end)
                base = {
                    "station_id": station_id(net.name, stn.name, sen.instrument, top, bottom),
                    "network": net.name,
                    "station": stn.name,
                    "sensor": sen.instrument,
                    "variable": sen.variable,
                    "depth_top": top,
                    "depth_bottom": bottom,
                    "lat": float(stn.lat),
                    "lon": float(stn.lon),
                    "file": rel,
                }
                if sen.variable != "soil_moisture":
                    yield rel, base, f"variable {sen.variable!r} is not soil moisture"
                    continue
                try:
                    with _quiet():
                        df = sen.read_data()
                except Exception as err:
                    yield rel, base, (DataFormatError(f"{path / rel}: the ismn package cannot read it ({err})"),
                                      f"unreadable: {err}")  # fmt: skip
                    continue
                yield rel, base, df
    for rel in sorted(_stm_files(path) - seen):
        problem = DataFormatError(f"{path / rel}: not a readable ISMN file (the ismn package skipped it)")
        yield rel, None, (problem, "unreadable file")


def _per_sensor_spans(names: Iterable[str]) -> bool:
    """ISMN names every file of a download by the requested period; different end dates in the
    names mean each name carries its sensor's own span (then a file that ends early may have
    been cut), or that the folder merges several downloads."""
    return len({m.group(2) for n in names if (m := _NAME_SPAN.search(pathlib.PurePath(n).name))}) > 1


def _collect(
    path: pathlib.Path,
    sensors: Iterable[tuple[str, dict | None, Any]],
    *,
    strict: bool,
    checked: bool = False,
    **qc: Any,
) -> tuple[list[dict], list[dict], list[Exception]]:
    """Report rows, kept records and problems of ``sensors`` (as :func:`_ismn_sensors` yields
    them); ``checked``: the files' bytes were checked already; ``qc``: :func:`_check_and_qc`'s."""
    rows: list[dict] = []
    records: list[dict] = []
    problems: list[Exception] = []
    short: list[str] = []
    for rel, base, table in sensors:
        if isinstance(table, str):  # not soil moisture
            rows.append({**base, "layer": None, "n_records": np.nan, "n_flag_good": np.nan, "n_negative": np.nan,
                         "n_days": np.nan, "kept": False, "reason": table})  # fmt: skip
            continue
        if isinstance(table, tuple):  # unreadable
            problem, reason = table
            problems.append(problem)
            rows.append(_unreadable_row(rel, reason, base))
            continue
        row, record, problem = _check_and_qc(path, rel, base, table, raw_check=not checked, **qc)
        rows.append(row)
        if problem is not None:
            problems.append(problem)
        if record is not None:
            records.append(record)
            if strict and (ends := _span_problem(table, rel, short=True)):
                short.append(f"{rel} ({ends})")
    if short:
        # (refused as "truncated" before: a folder merging two real downloads, named by their
        # request periods, lost 4 of its 5 good sensors)
        warnings.warn(
            f"{len(short)} ISMN file(s) end before the date in their names, e.g. {short[0]}. ISMN names the files "
            "of a download by the period requested, so a folder merging several downloads looks so; a file cut "
            "at a line end looks the same: if one should reach its named date, download it again.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    # duplicate ids (same sensor name and depth in two files): keep both, make ids unique
    ids = pd.Series([r["station_id"] for r in records])
    dup = ids.duplicated(keep=False)
    if dup.any():
        counter: dict[str, int] = {}
        for k in np.flatnonzero(dup):
            sid = records[k]["station_id"]
            counter[sid] = counter.get(sid, 0) + 1
            records[k]["station_id"] = f"{sid}.{counter[sid]}"
    return rows, records, problems


def _check_and_qc(
    path: pathlib.Path,
    rel: str,
    base: dict,
    df: pd.DataFrame,
    *,
    sensor_qc: Callable[..., Any],
    good_flags: Sequence[str],
    min_hourly: int,
    min_days: int,
    raw_check: bool = True,
) -> tuple[dict, dict | None, Exception | None]:
    """One sensor's table read from ``rel``: its report row, its record (when kept) and the
    damage found (``None`` when none). ``raw_check=False`` skips the file's byte check (done
    once per file by the caller)."""
    bad = (
        (_truncated(path, rel) if raw_check else "")
        or _format_problem(df)
        or _span_problem(df, rel)
    )
    if bad:
        row = {**base, "layer": None, "n_records": len(df), "n_flag_good": 0, "n_negative": 0,
               "n_days": 0, "kept": False, "reason": f"corrupt: {bad}"}  # fmt: skip
        return row, None, DataFormatError(f"{path / rel}: {bad}")
    res = sensor_qc(
        df["soil_moisture"],
        df.get("soil_moisture_flag"),
        depth_top=base["depth_top"],
        depth_bottom=base["depth_bottom"],
        good_flags=good_flags,
        min_hourly=min_hourly,
        min_days=min_days,
    )
    row = {**base, "layer": res.layer, "n_records": res.n_records, "n_flag_good": res.n_flag_good,
           "n_negative": res.n_negative, "n_days": res.n_days, "kept": res.kept, "reason": res.reason}  # fmt: skip
    if res.kept and (implausible := _implausible(res.daily)):
        # checked per sensor (the whole download had been refused for one sensor in percent or with
        # 9999 left in, naming no file, and errors='report' could not drop it)
        row |= {"kept": False, "reason": f"implausible: {implausible}"}
        return row, None, DataFormatError(f"{path / rel}: {implausible}")
    return row, ({**base, "daily": res.daily, "layer": res.layer} if res.kept else None), None


def _implausible(daily: pd.Series) -> str:
    """Why a sensor's daily soil moisture (ISMN's m3 m-3) cannot be one, or ``""``."""
    lo, hi = cv.valid_range(cv.SM) or (0.0, 1.0)
    values = daily.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0 or values.max() <= hi + 0.001 * (hi - lo):
        return ""
    top, median = float(values.max()), float(np.median(values))
    cause = (
        "it looks like percent (ISMN files hold m3 m-3): divide the file's values by 100"
        if median > 1.5 and top <= 100.0
        else f"{int((values > hi).sum())} day(s) above {hi:g}: fill values (e.g. 9999) flagged good; mask them in "
        "the file or drop the sensor"
    )
    return f"daily soil moisture up to {top:g} m3 m-3 (median {median:g}) beyond the physical range {lo:g} .. {hi:g}: {cause}"


def _unreadable_row(rel: str, reason: str, base: dict | None = None) -> dict:
    """The report row of a sensor (``base``) or a file (no ``base``) that could not be read."""
    where = base or dict.fromkeys(("station_id", "network", "station", "sensor", "variable"), "") | {
        "depth_top": np.nan, "depth_bottom": np.nan, "lat": np.nan, "lon": np.nan, "file": rel,
    }  # fmt: skip
    return where | {"layer": None, "n_records": 0, "n_flag_good": 0, "n_negative": 0, "n_days": 0, "kept": False,
                    "reason": reason}  # fmt: skip


def _ceop_sensors(path: pathlib.Path, files: Sequence[str]) -> Iterator[tuple[str, dict | None, Any]]:
    """As :func:`_ismn_sensors`, for ISMN's old CEOP combined files (:mod:`xsomo.io.ismn_ceop`),
    one sensor per depth; each file's bytes are checked here."""
    for rel in files:
        raw = _raw_bytes(path, rel) or b""  # read once: checked, then parsed
        try:
            if damage := _damage(raw):
                raise DataFormatError(f"{path / rel}: {damage}")
            meta, tables = read_ceop_combined(raw, str(path / rel))
        except DataFormatError as err:
            yield rel, None, (err, f"unreadable: {err}")
            continue
        for depth, df in tables.items():
            base = {
                "station_id": station_id(meta["network"], meta["station"], SENSOR, depth, depth),
                "network": meta["network"],
                "station": meta["station"],
                "sensor": SENSOR,
                "variable": "soil_moisture",
                "depth_top": depth,
                "depth_bottom": depth,
                "lat": meta["lat"],
                "lon": meta["lon"],
                "file": rel,
            }
            yield rel, base, df


def _raw_bytes(root: pathlib.Path, rel: str) -> bytes | None:
    """The bytes of ``rel`` in a download folder or zip (``None`` when it cannot be found)."""
    f = root / rel
    if f.is_file():
        return f.read_bytes()
    if root.is_file() and zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as zf:
            names = {pathlib.PurePath(n).as_posix(): n for n in zf.namelist()}
            key = pathlib.PurePath(rel).as_posix()
            if key not in names:  # the ismn package may prefix the extraction folder
                match = [n for n in names if n.endswith("/" + key) or key.endswith("/" + n)]
                if len(match) != 1:
                    return None
                key = match[0]
            return zf.read(names[key])
    return None


#: bytes that never occur in an ISMN text file: NUL and the C0 controls but tab, LF, CR
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _truncated(root: pathlib.Path, rel: str) -> str:
    """Damage seen in the raw bytes of ``rel`` (:func:`_damage`; "" when the file cannot be found)."""
    raw = _raw_bytes(root, rel)
    return "" if raw is None else _damage(raw)


def _damage(raw: bytes) -> str:
    """Damage seen in a file's bytes: NUL or control bytes, or an incomplete last line."""
    m = _CONTROL.search(raw)
    if m:
        line = raw.count(b"\n", 0, m.start()) + raw.count(b"\r", 0, m.start()) - raw.count(
            b"\r\n", 0, m.start()
        )
        what = "NUL byte" if raw[m.start()] == 0 else f"control byte 0x{raw[m.start()]:02x}"
        return f"a {what} at line {line + 1} (byte {m.start()}): the file is corrupt"
    tail = raw[-4096:].decode("latin-1")
    lines = [ln for ln in re.split(r"\r\n|\r|\n", tail) if ln.strip()]
    if len(lines) >= 3 and len(lines[-1].split()) < len(lines[-2].split()):
        return f"the last line {lines[-1].strip()!r} is incomplete (truncated file)"
    return ""


_NAME_SPAN = re.compile(r"_(\d{8})_(\d{8})\.stm$", re.IGNORECASE)


def _span_problem(df: pd.DataFrame, rel: str, *, short: bool = False) -> str:
    """Compare the data with the dates in the file name (``..._<start>_<end>.stm``).

    Records outside the named span are damage. ISMN names all files of a download by the
    requested period (``19500101_20230521``, or ``20170101_20181231`` for sensors that stop
    in November), so the data may end before the named end. With ``short``: also say when
    the last record falls before the named end day (a file cut at a line end looks so; so
    does a file of another download merged into the folder, whose name carries another
    request period), which :func:`_collect` warns about, never refuses.
    """
    m = _NAME_SPAN.search(pathlib.PurePath(rel).name)
    idx = df.index
    if not m or not isinstance(idx, pd.DatetimeIndex) or len(idx) == 0:
        return ""
    try:
        start, end = (pd.Timestamp(g) for g in m.groups())
    except ValueError:
        return ""
    first, last = idx.min().normalize(), idx.max().normalize()
    if first < start or last > end:
        return (
            f"records from {first.date()} to {last.date()} lie outside the span "
            f"{start.date()}..{end.date()} of the file name (corrupt time stamps)"
        )
    if short and last != end:
        return f"the data end on {last.date()}, the file name says {end.date()}"
    return ""


def _format_problem(df: pd.DataFrame) -> str:
    if "soil_moisture" not in df:
        return f"no soil_moisture column (columns {list(df.columns)})"
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex):
        return "time stamps could not be parsed"
    if idx.isna().any():
        n = int(idx.isna().sum())
        return f"{n} line(s) without a valid time stamp (truncated or corrupt file)"
    if not (idx.is_monotonic_increasing and idx.is_unique):
        t = idx.to_numpy()
        k = int(np.flatnonzero(t[1:] <= t[:-1])[0]) + 1
        return f"time stamps not increasing at {idx[k]} (duplicated or shuffled lines)"
    raw = df["soil_moisture"]
    vals = pd.to_numeric(raw, errors="coerce")
    if vals.isna().all() and len(df):
        return "no numeric soil-moisture value"
    # a value that is there but no number (a damaged line such as "0.201/18") is damage, not a gap
    # (a column the reader already parsed as numbers cannot hold one)
    bad = None if raw.dtype.kind in "fiub" else _not_numbers(raw, vals)
    if bad is not None and bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        return (
            f"{int(bad.sum())} soil-moisture value(s) are not numbers, the first {str(raw.iloc[k])!r} "
            f"at {idx[k]} (corrupt line)"
        )
    if "soil_moisture_flag" in df:
        flags = df["soil_moisture_flag"]
        odd = _odd_flags(flags) if _odd_flags(_distinct(flags)).any() else None
        if odd is not None and odd.any():
            k = int(np.flatnonzero(odd.to_numpy())[0])
            return (
                f"{int(odd.sum())} ISMN quality flag(s) are not ISMN flags (G, M, U, Cnn, Dnn), the "
                f"first {str(flags.iloc[k])!r} at {idx[k]} (corrupt line)"
            )
    return ""


#: an ISMN quality flag: G, M, U or Cnn/Dnn, comma-joined
_FLAG = r"(?:[GMU]|[CD]\d{2})(?:,(?:[GMU]|[CD]\d{2}))*"


def _distinct(values: pd.Series) -> pd.Series:
    """The distinct values of ``values`` (a file's few flags: the string checks run on these first)."""
    return pd.Series(pd.unique(values.to_numpy()), dtype=values.dtype)


def _not_numbers(raw: pd.Series, vals: pd.Series) -> pd.Series:
    """Values that are there but did not parse as numbers (not blank, not "nan"/"na")."""
    text = raw.astype("string").str.strip()
    return vals.isna() & raw.notna() & (text != "") & ~text.str.lower().isin(["nan", "na"])


def _odd_flags(flags: pd.Series) -> pd.Series:
    """Flags that are there (not blank) but are no ISMN quality flags."""
    ftext = flags.astype("string").str.strip()
    return flags.notna() & (ftext != "") & ~ftext.str.fullmatch(_FLAG).fillna(False)


_ = cv
