"""The sources file: where a run's inputs lie (``sources.yml``), read and written strictly.

One YAML file names every input of ``xsomo prepare --sources`` (and of
``xsomo.prepare`` / ``xsomo.open_drivers`` in Python)::

    grid: {west: -12, south: 36, east: 45, north: 71.5, resolution: 0.1}  # or region: [France, Germany]
    period: {start: 2003-01-01, end: 2020-12-31}
    ismn: ISMN_download.zip                          # folder or the zip ISMN delivers
    era5land: era5land/*.nc                          # a folder, a file or a glob
    precipitation: {source: mswep, path: mswep/}     # or {source: era5land}; optional units: (below)
    air_temperature: {source: mswx, path: mswx/Temp/}  # or {source: era5land}
    static:
      dem: static/dem.nc                             # netCDF, or GeoTIFF tiles / a VRT
      landcover: {path: static/landcover.nc, kind: fractions}  # esa_cci | cgls_lc100 | fractions
      soil: {path_or_glob: static/soil.nc, units: percent}     # g/kg | percent | 1
      land_mask: static/land_mask.nc                 # optional: else ERA5-Land's lsm
    cosmos: cosmos/                                  # optional, for evaluation

``precipitation`` and ``air_temperature`` from files of their own (``mswep``, ``mswx``) take an
optional ``units:`` for files without a units label, or to declare the unit a reader refuses
as a likely mislabel (``units: mm/month`` for values that really are rates per month); it
never replaces a label of another quantity (see :func:`xsomo.io.gridded.open_gridded`).
ERA5-Land files carry their own units.

Like :class:`xsomo.model.config.ModelConfig` the reader is strict: an unknown key (with
the closest known one), a missing key, a wrong value or a path that matches no file is a
:class:`~xsomo.exceptions.ConfigError` naming the file and the key. Relative paths
resolve against the folder of the YAML file. This module only knows the format; the
readers behind each ``source``/``kind`` are dispatched in :mod:`xsomo.drivers.sources`.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import glob as _glob
import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xsomo.exceptions import ConfigError

__all__ = [
    "KINDS",
    "LAYOUTS",
    "SOURCES_FILE",
    "Sources",
    "expand",
    "read_sources",
    "sources_for_world",
    "write_sources",
]

#: the name ``xsomo sample`` gives the sources file of a world
SOURCES_FILE = "sources.yml"

#: the products/kinds each input accepts (a reader is registered per kind in
#: :data:`xsomo.drivers.sources.READERS`; a kind without a reader is refused as "not supported yet")
KINDS: dict[str, tuple[str, ...]] = {
    "precipitation": ("mswep", "era5land"),
    "air_temperature": ("mswx", "era5land"),
    "dem": ("netcdf", "geotiff"),
    "landcover": ("esa_cci", "cgls_lc100", "fractions"),
    "soil": ("g/kg", "percent", "1"),
}

#: raster layouts of the static inputs whose kind is their file type (``dem``, ``soil``)
LAYOUTS = ("netcdf", "geotiff")

_TOP = ("grid", "region", "period", "ismn", "era5land", "precipitation", "air_temperature", "static", "cosmos")
_GRID = ("west", "south", "east", "north", "resolution")
_STATIC = ("dem", "landcover", "soil", "land_mask")


@dataclass(frozen=True)
class Sources:
    """A validated sources file: absolute paths (or globs) and plain values.

    Attributes
    ----------
    grid
        ``{west, south, east, north, resolution}`` or None (then ``region`` gives the box).
    region
        Country names (Natural Earth) or a polygon file, or None.
    period
        ``(start, end)`` as ``YYYY-MM-DD`` strings, or None (the inputs must then agree).
    ismn, cosmos
        Paths or None.
    era5land
        Path or glob of the ERA5-Land files.
    precipitation, air_temperature
        ``{"source": kind, "path": path or glob}``.
    static
        ``{"dem": {"path", "kind"}, "landcover": {"path", "kind"}, "soil": {"path", "units"},
        "land_mask": path or None}``.
    file
        The YAML file read (None when built in Python).
    """

    era5land: str
    precipitation: dict[str, str]
    air_temperature: dict[str, str]
    static: dict[str, Any]
    grid: dict[str, float] | None = None
    region: list[str] | str | None = None
    period: tuple[str, str] | None = None
    ismn: str | None = None
    cosmos: str | None = None
    file: pathlib.Path | None = field(default=None, compare=False)

    def where(self) -> str:
        """For messages: ``'sources.yml'`` or ``'the sources'``."""
        return str(self.file) if self.file else "the sources"


def _err(where: str, key: str, text: str) -> ConfigError:
    return ConfigError(f"{where}: {key}: {text}")


def _check_keys(d: Any, allowed: tuple[str, ...], where: str, key: str) -> dict[str, Any]:
    if not isinstance(d, Mapping):
        raise _err(where, key, f"expected a mapping with keys {list(allowed)}, got {d!r}.")
    unknown = [k for k in d if k not in allowed]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise _err(where, key, f"unknown key(s) {', '.join(hints)}; known keys: {list(allowed)}.")
    return dict(d)


def expand(pattern: str) -> list[pathlib.Path]:
    """The files a path, folder or glob names (a folder: itself)."""
    p = pathlib.Path(pattern)
    if p.exists():
        return [p]
    return [pathlib.Path(f) for f in sorted(_glob.glob(pattern, recursive=True))]


def _path(value: Any, base: pathlib.Path, where: str, key: str, *, glob: bool = True) -> str:
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise _err(where, key, f"expected a path{' or glob' if glob else ''}, got {value!r}.")
    p = pathlib.Path(os.path.expanduser(str(value)))
    full = p if p.is_absolute() else base / p
    text = os.path.normpath(str(full))
    found = bool(expand(text)) if glob else full.exists()
    if not found:
        raise _err(
            where, key,
            f"{value!r} ({text}) matches no file. Check the path (relative paths start at the folder of the "
            "sources file).",
        )  # fmt: skip
    return text


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(where, key, f"expected a number, got {value!r}.")
    return float(value)


def _date(value: Any, where: str, key: str) -> str:
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return value.isoformat()
    try:
        return _dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise _err(where, key, f"{value!r} is not a day; write YYYY-MM-DD.") from None


def _kind(value: Any, input_: str, where: str, key: str) -> str:
    allowed = KINDS[input_]
    if value not in allowed:
        what = "units of the soil files" if input_ == "soil" else f"{input_} product"
        raise _err(where, key, f"{value!r} is not a known {what}; use one of {list(allowed)}.")
    return str(value)


def file_layout(path: str) -> str:
    """``"geotiff"`` for GeoTIFF tiles or a VRT, else ``"netcdf"`` (the layout of a raster input)."""
    return _dem_kind(path)


def _dem_kind(path: str) -> str:
    files = [pathlib.Path(f) for f in expand(path)]
    # a folder: the files in it (a folder of GeoTIFF tiles had been read as netCDF files; QA)
    files = [g for f in files for g in (sorted(f.iterdir()) if f.is_dir() else [f])]
    suffixes = {f.suffix.lower() for f in files if f.is_file()}
    suffixes |= {pathlib.Path(path).suffix.lower()}
    return "geotiff" if suffixes & {".tif", ".tiff", ".vrt"} else "netcdf"


def parse_sources(data: Any, *, base: pathlib.Path, where: str = "sources") -> Sources:
    """Validate a sources mapping (the parsed YAML); paths resolve against ``base``."""
    d = _check_keys(data, _TOP, where, "top level")
    for need in ("era5land", "precipitation", "air_temperature", "static"):
        if need not in d:
            raise _err(where, need, f"missing; a sources file needs {need!r} (see docs/own_data.md).")
    if "grid" not in d and "region" not in d:
        raise _err(where, "grid", "missing; give grid {west, south, east, north, resolution} or region.")
    grid = None
    if "grid" in d:
        g = _check_keys(d["grid"], _GRID, where, "grid")
        missing = [k for k in _GRID[:4] if k not in g]
        if missing:
            raise _err(where, "grid", f"missing {missing}; give west, south, east, north (resolution: 0.1 by default).")
        grid = {k: _number(g[k], where, f"grid.{k}") for k in _GRID if k in g}
        grid.setdefault("resolution", 0.1)
        if not (grid["west"] < grid["east"] and grid["south"] < grid["north"] and grid["resolution"] > 0):
            raise _err(where, "grid", f"{grid}: needs west < east, south < north and resolution > 0.")
        if not (grid["west"] >= -180 and grid["east"] <= 180 and grid["south"] >= -90 and grid["north"] <= 90):
            raise _err(where, "grid", f"{grid}: longitudes run -180..180 and latitudes -90..90.")
        for a, b in (("west", "east"), ("south", "north")):
            n = (grid[b] - grid[a]) / grid["resolution"]
            if abs(n - round(n)) > 1e-6:
                raise _err(where, "grid", f"{b} - {a} = {grid[b] - grid[a]:g} is not a whole number of cells of "
                           f"{grid['resolution']:g}.")
    region: list[str] | str | None = None
    if "region" in d:
        r = d["region"]
        if isinstance(r, list) and r and all(isinstance(x, str) for x in r):
            region = [str(x) for x in r]
        elif isinstance(r, str) and r.strip():
            region = _path(r, base, where, "region", glob=False)
        else:
            raise _err(where, "region", f"expected a list of country names or a polygon file, got {r!r}.")
    period = None
    if "period" in d:
        p = _check_keys(d["period"], ("start", "end"), where, "period")
        if set(p) != {"start", "end"}:
            raise _err(where, "period", "give both start and end (YYYY-MM-DD).")
        period = (_date(p["start"], where, "period.start"), _date(p["end"], where, "period.end"))
        if period[0] > period[1]:
            raise _err(where, "period", f"start {period[0]} is after end {period[1]}.")
    era5land = _path(d["era5land"], base, where, "era5land")
    dyn: dict[str, dict[str, str]] = {}
    for key in ("precipitation", "air_temperature"):
        v = _check_keys(d[key], ("source", "path", "units"), where, key)
        if "source" not in v:
            raise _err(where, key, f"missing 'source' ({' | '.join(KINDS[key])}).")
        kind = _kind(v["source"], key, where, f"{key}.source")
        if kind == "era5land":
            path = _path(v["path"], base, where, f"{key}.path") if "path" in v else era5land
        else:
            if "path" not in v:
                raise _err(where, key, f"missing 'path' of the {kind} files.")
            path = _path(v["path"], base, where, f"{key}.path")
        dyn[key] = {"source": kind, "path": path}
        if "units" in v:
            if kind == "era5land":
                raise _err(where, f"{key}.units", "ERA5-Land files carry their own units: leave 'units' out.")
            if not isinstance(v["units"], str) or not v["units"].strip():
                raise _err(where, f"{key}.units", f"{v['units']!r}: give the unit as text, e.g. 'mm d-1' or 'K'.")
            dyn[key]["units"] = v["units"].strip()
    s = _check_keys(d["static"], _STATIC, where, "static")
    for need in ("dem", "landcover", "soil"):
        if need not in s:
            raise _err(where, f"static.{need}", "missing.")
    dem = s["dem"]
    if isinstance(dem, Mapping):
        dm = _check_keys(dem, ("path", "kind"), where, "static.dem")
        if "path" not in dm:
            raise _err(where, "static.dem", "missing 'path'.")
        dem_path = _path(dm["path"], base, where, "static.dem.path")
        dem_kind = _kind(dm["kind"], "dem", where, "static.dem.kind") if "kind" in dm else _dem_kind(dem_path)
    else:
        dem_path = _path(dem, base, where, "static.dem")
        dem_kind = _dem_kind(dem_path)
    lc = _check_keys(s["landcover"], ("path", "kind"), where, "static.landcover")
    if set(lc) != {"path", "kind"}:
        raise _err(where, "static.landcover", f"give path and kind ({' | '.join(KINDS['landcover'])}).")
    so = _check_keys(s["soil"], ("path_or_glob", "units"), where, "static.soil")
    if set(so) != {"path_or_glob", "units"}:
        raise _err(where, "static.soil", f"give path_or_glob and units ({' | '.join(KINDS['soil'])}).")
    static: dict[str, Any] = {
        "dem": {"path": dem_path, "kind": dem_kind},
        "landcover": {
            "path": _path(lc["path"], base, where, "static.landcover.path"),
            "kind": _kind(lc["kind"], "landcover", where, "static.landcover.kind"),
        },
        "soil": {
            "path": _path(so["path_or_glob"], base, where, "static.soil.path_or_glob"),
            "units": _kind(str(so["units"]), "soil", where, "static.soil.units"),
        },
        "land_mask": _path(s["land_mask"], base, where, "static.land_mask") if "land_mask" in s else None,
    }
    return Sources(
        era5land=era5land,
        precipitation=dyn["precipitation"],
        air_temperature=dyn["air_temperature"],
        static=static,
        grid=grid,
        region=region,
        period=period,
        ismn=_path(d["ismn"], base, where, "ismn", glob=False) if "ismn" in d else None,
        cosmos=_path(d["cosmos"], base, where, "cosmos", glob=False) if "cosmos" in d else None,
    )


def _strict_loader() -> type:
    """yaml's SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last:
    a second ``precipitation:`` had replaced MSWEP by ERA5-Land, and a second ``resolution:``
    built a 0.2° grid, without a word)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # (`<<: *anchor`: the keys it brings may be overridden, as YAML allows)
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ConfigError(
                        f"the key {key!r} is given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); "
                        "name each key once: remove one of them"
                    )
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def read_sources(path: str | os.PathLike[str]) -> Sources:
    """Read and validate a sources file (strict; see the module docstring).

    Raises
    ------
    ConfigError
        The file is missing, not YAML, or has an unknown/missing key, a wrong value or a
        path that matches no file (the message names the file and the key).
    """
    import yaml

    file = pathlib.Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"sources file {str(file)!r} not found. Check the path.")
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_strict_loader())  # (a SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file}: not a valid YAML file ({err}).") from err
    except ConfigError as err:
        raise ConfigError(f"{file}: {err}") from err
    src = parse_sources(data, base=file.absolute().parent, where=str(file))
    return Sources(**{**src.__dict__, "file": file})


def _rel(path: str | None, base: pathlib.Path) -> str | None:
    if path is None:
        return None
    p = pathlib.Path(path)
    try:
        return p.relative_to(base).as_posix() or "."
    except ValueError:
        return str(p)


def to_mapping(src: Sources, base: pathlib.Path) -> dict[str, Any]:
    """The YAML mapping of ``src`` with paths relative to ``base`` where they lie below it."""
    out: dict[str, Any] = {}
    if src.grid is not None:
        out["grid"] = dict(src.grid)
    if src.region is not None:
        out["region"] = list(src.region) if isinstance(src.region, list) else _rel(src.region, base)
    if src.period is not None:
        out["period"] = {"start": src.period[0], "end": src.period[1]}
    if src.ismn is not None:
        out["ismn"] = _rel(src.ismn, base)
    out["era5land"] = _rel(src.era5land, base)
    for key in ("precipitation", "air_temperature"):
        v = getattr(src, key)
        out[key] = {"source": v["source"], "path": _rel(v["path"], base)}
        if "units" in v:
            out[key]["units"] = v["units"]
    st = src.static
    out["static"] = {
        "dem": {"path": _rel(st["dem"]["path"], base), "kind": st["dem"]["kind"]},
        "landcover": {"path": _rel(st["landcover"]["path"], base), "kind": st["landcover"]["kind"]},
        "soil": {"path_or_glob": _rel(st["soil"]["path"], base), "units": st["soil"]["units"]},
    }
    if st.get("land_mask"):
        out["static"]["land_mask"] = _rel(st["land_mask"], base)
    if src.cosmos is not None:
        out["cosmos"] = _rel(src.cosmos, base)
    return out


def write_sources(src: Sources, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``src`` as a sources file (atomically); paths below its folder are written relative."""
    import yaml

    from xsomo.io.atomic import atomic_write_text

    file = pathlib.Path(path)
    text = yaml.safe_dump(to_mapping(src, file.absolute().parent), sort_keys=False, default_flow_style=None)
    header = "# xsomo sources file: where the inputs lie (docs/own_data.md). Relative paths start here.\n"
    atomic_write_text(file, header + text)
    return file


def sources_for_world(world: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Sources:
    """The sources of a sample world folder (its ``world.json`` as ``manifest``)."""
    w = pathlib.Path(world).absolute()
    g = manifest["grid"]
    return Sources(
        grid={k: float(g[k]) for k in ("west", "south", "east", "north", "resolution")},
        period=(str(manifest["period"]["start"]), str(manifest["period"]["end"])),
        ismn=str(w / "ismn"),
        era5land=str(w / "era5land"),
        precipitation={"source": "mswep", "path": str(w / "mswep")},
        air_temperature={"source": "mswx", "path": str(w / "mswx" / "Temp")},
        static={
            "dem": {"path": str(w / "static" / "dem.nc"), "kind": "netcdf"},
            "landcover": {"path": str(w / "static" / "landcover.nc"), "kind": "fractions"},
            "soil": {"path": str(w / "static" / "soil.nc"), "units": "percent"},
            "land_mask": str(w / "static" / "land_mask.nc"),
        },
        cosmos=str(w / "cosmos"),
    )
