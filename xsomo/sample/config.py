"""Presets and the configuration of a synthetic sample world."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from xsomo.conventions import EUROPE, GridSpec
from xsomo.exceptions import ConfigError

#: Region codes written into ``truth.nc`` (``region``) and ``world.json``.
REGIONS: dict[int, str] = {1: "us", 2: "europe"}


@dataclass(frozen=True)
class WorldConfig:
    """Everything that decides a sample world (together with the seed).

    The grid holds two land regions split by a sea strip: region 1 ("us", the
    southern part, warm and mostly arid, most ISMN stations) and region 2
    ("europe", the northern part, moderate to humid and cold, with snow and
    frozen soil in its northern half). Climate depends on the position inside a
    region, so any bounding box gets both climates.
    """

    preset: str
    grid: GridSpec
    start: str
    end: str
    #: short period of hourly ERA5-Land files (inclusive dates)
    hourly_start: str
    hourly_end: str
    n_ismn_stations: int
    #: fraction of the ISMN stations in region 1 ("us")
    us_station_share: float = 0.65
    #: record length of ISMN stations in years (min, max)
    record_years: tuple[float, float] = (2.0, 8.0)
    n_cosmos_stations: int = 4
    cosmos_years: tuple[float, float] = (1.5, 3.0)
    #: period of the 0.0275° CLM-DA-like product (it covers a box inside region 2)
    clmda_years: int = 2
    #: largest side (degrees) of the CLM-DA-like product's box
    clmda_box: float = 1.0
    #: fraction of the grid's height taken by the sea strip between the regions
    sea_strip: float = 0.1
    #: rows of target cells computed together (bounds memory; the europe preset is band-wise)
    band_rows: int = 0
    #: spin-up days run before ``start`` (the truth starts in equilibrium with its climate)
    spinup_days: int = 365
    #: zlib level of the netCDF files
    complevel: int = 1

    def __post_init__(self) -> None:
        start, end = pd.Timestamp(self.start), pd.Timestamp(self.end)
        if end < start:
            raise ConfigError(f"sample world period: end {self.end} is before start {self.start}")
        hs, he = pd.Timestamp(self.hourly_start), pd.Timestamp(self.hourly_end)
        if he < hs:
            raise ConfigError(
                f"hourly_end {self.hourly_end} is before hourly_start {self.hourly_start}"
            )
        if hs <= start or he > end:
            raise ConfigError(
                f"hourly period {self.hourly_start}..{self.hourly_end} must lie inside the daily period "
                f"{self.start}..{self.end} and start after its first day (the 00 UTC value closes the "
                "previous day); change hourly_start/hourly_end."
            )
        if self.grid.nlat < 8 or self.grid.nlon < 4:
            raise ConfigError(
                f"grid {self.grid} is too small for two regions and a sea strip; use at least 8 x 4 cells"
            )
        if not 0.0 <= self.us_station_share <= 1.0:
            raise ConfigError(f"us_station_share must lie in [0, 1], got {self.us_station_share}")

    @property
    def time(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, self.end, freq="D")

    @property
    def years(self) -> list[int]:
        return sorted(set(self.time.year))


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "grid": GridSpec(west=0.0, east=1.0, south=40.0, north=42.0),
        "start": "2015-01-01",
        "end": "2017-12-31",
        "hourly_start": "2016-07-01",
        "hourly_end": "2016-07-31",
        "n_ismn_stations": 8,
        "record_years": (1.5, 3.0),
        "n_cosmos_stations": 2,
        "cosmos_years": (1.0, 2.0),
        "clmda_years": 1,
        "spinup_days": 365,
    },
    "demo": {
        "grid": GridSpec(west=0.0, east=6.0, south=40.0, north=46.0),
        "start": "2013-01-01",
        "end": "2020-12-31",
        "hourly_start": "2018-06-01",
        "hourly_end": "2018-06-30",
        "n_ismn_stations": 100,
        "record_years": (2.0, 4.0),
        "n_cosmos_stations": 8,
        "cosmos_years": (1.5, 2.5),
        "clmda_years": 2,
        "spinup_days": 365,
    },
    "europe": {
        "grid": EUROPE,
        "start": "2003-01-01",
        "end": "2020-12-31",
        "hourly_start": "2018-06-01",
        "hourly_end": "2018-06-30",
        "n_ismn_stations": 600,
        "record_years": (2.0, 10.0),
        "n_cosmos_stations": 40,
        "cosmos_years": (1.5, 4.0),
        "clmda_years": 1,
        "band_rows": 6,
        "spinup_days": 365,
    },
}

_FIELDS = {f.name for f in dataclasses.fields(WorldConfig)}
_GRID_KEYS = {"west", "east", "south", "north", "resolution", "bbox"}


def make_config(preset: str = "demo", **overrides: Any) -> WorldConfig:
    """Configuration of a preset with ``overrides`` applied.

    Parameters
    ----------
    preset
        ``"tiny"``, ``"demo"`` or ``"europe"``.
    **overrides
        Any :class:`WorldConfig` field (``start``, ``end``, ``hourly_start``,
        ``n_ismn_stations`` ...), a ``grid`` (:class:`~xsomo.conventions.GridSpec`),
        ``bbox=(west, south, east, north)``, or single grid edges ``west``/``east``/
        ``south``/``north``/``resolution``.

    Raises
    ------
    ConfigError
        For an unknown preset, an unknown key or inconsistent values.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown sample preset {preset!r}; choose one of {sorted(PRESETS)}")
    values: dict[str, Any] = {"preset": preset, **PRESETS[preset]}
    unknown = set(overrides) - _FIELDS - _GRID_KEYS
    if unknown:
        raise ConfigError(
            f"unknown sample-world option(s) {sorted(unknown)}; known: {sorted(_FIELDS | _GRID_KEYS)}"
        )
    overrides = {k: v for k, v in overrides.items() if v is not None}
    grid: GridSpec = overrides.pop("grid", values["grid"])
    if "bbox" in overrides:
        w, s, e, n = (float(x) for x in overrides.pop("bbox"))
        grid = GridSpec(west=w, east=e, south=s, north=n, resolution=grid.resolution)
    edges = {
        k: float(overrides.pop(k))
        for k in ("west", "east", "south", "north", "resolution")
        if k in overrides
    }
    if edges:
        grid = dataclasses.replace(grid, **edges)
    values["grid"] = grid
    values.update(overrides)
    for key in ("start", "end", "hourly_start", "hourly_end"):
        values[key] = str(pd.Timestamp(values[key]).date())
    # keep the hourly period inside a shortened daily period
    start, end = pd.Timestamp(values["start"]), pd.Timestamp(values["end"])
    hs, he = pd.Timestamp(values["hourly_start"]), pd.Timestamp(values["hourly_end"])
    if ("hourly_start" not in overrides and "hourly_end" not in overrides) and (
        hs <= start or he > end
    ):
        hs = max(start + pd.Timedelta(days=1), min(hs, end))
        he = min(end, hs + (he - hs))
        values["hourly_start"], values["hourly_end"] = str(hs.date()), str(he.date())
    return WorldConfig(**values)


__all__ = ["PRESETS", "REGIONS", "WorldConfig", "make_config"]
