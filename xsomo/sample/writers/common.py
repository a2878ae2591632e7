"""Shared state and helpers of the sample-world writers."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xsomo.io.world import WorldLayout
from xsomo.sample import physics as ph
from xsomo.sample import stations as stn
from xsomo.sample.climate import World
from xsomo.sample.config import WorldConfig
from xsomo.sample.fields import rng_for

__all__ = [
    "Bands",
    "WorldContext",
    "global_attrs",
    "koeppen",
    "row_random",
    "year_slices",
    "zlib_hash",
]

#: random streams of the writers (see :func:`xsomo.sample.fields.rng_for`)
S_ERA5_HOURLY, S_PRODUCT, S_MSW, S_SENSORS, S_COSMOS, S_COSMOS_PLACE = 60, 61, 62, 63, 64, 65
S_PRODUCT_FORCING = 66


@dataclass
class Bands:
    """Row bands of a grid (for bounded memory)."""

    n_rows: int
    size: int

    def __iter__(self) -> Iterator[slice]:
        for r0 in range(0, self.n_rows, self.size):
            yield slice(r0, min(self.n_rows, r0 + self.size))

    def __len__(self) -> int:
        return -(-self.n_rows // self.size)


def global_attrs(cfg: WorldConfig, seed: int, title: str) -> dict[str, str]:
    """The global attributes of every netCDF file of the world."""
    from xsomo._version import __version__

    return {
        "Conventions": "CF-1.8",
        "title": title,
        "source": f"xsomo {__version__} synthetic sample world (preset {cfg.preset!r}, seed {seed})",
        "institution": "xsomo sample world (synthetic data, not observations)",
    }


def year_slices(time: pd.DatetimeIndex) -> list[tuple[int, slice]]:
    """``(year, slice of time)`` for each calendar year of ``time``."""
    years = time.year.to_numpy()
    out = []
    for y in np.unique(years):
        idx = np.flatnonzero(years == y)
        out.append((int(y), slice(int(idx[0]), int(idx[-1]) + 1)))
    return out


class WorldContext:
    """What every writer of one world shares: config, seed, layout, geography, bands, stations.

    Parameters
    ----------
    cfg, seed
        The world's configuration and seed.
    out
        The world folder.
    """

    def __init__(self, cfg: WorldConfig, seed: int, out: Any) -> None:
        self.cfg = cfg
        self.seed = int(seed)
        self.layout = WorldLayout(out)
        self.out = self.layout.root
        self.world = World(cfg, seed)
        self.grid = cfg.grid
        g = cfg.grid
        self.lat2d, self.lon2d = np.meshgrid(g.lat, g.lon, indexing="ij")
        geo = self.world.geography(self.lat2d, self.lon2d)
        self.land = geo["land"]
        self.region = geo["region"]
        self.time = cfg.time
        self.spin = self.world.spinup
        n_band = cfg.band_rows or g.nlat
        if cfg.band_rows:
            # bound the (time x cell) arrays of a band to ~6 million values (about 1 GB in all)
            n_ext = self.world.time_ext.size
            n_band = max(1, min(cfg.band_rows, int(6e6 // (g.nlon * n_ext))))
        self.bands = Bands(g.nlat, n_band)
        self.complevel = cfg.complevel
        #: daily series at the station cells, filled by the truth pass, read by ISMN and COSMOS
        self.station_series: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        self.ismn: list[stn.Station] = []
        self.cosmos: list[dict[str, Any]] = []
        self.keep_cells: set[tuple[int, int]] = set()

    def attrs(self, title: str) -> dict[str, str]:
        """Global attributes of a file titled ``title``."""
        return global_attrs(self.cfg, self.seed, title)

    # ------------------------------------------------------------------ stations
    def place_stations(self) -> None:
        """Place the ISMN and COSMOS stations (fills ``ismn``, ``cosmos``, ``keep_cells``)."""
        cfg = self.cfg
        self.ismn = stn.place_ismn(
            seed=self.seed,
            grid_lat=self.grid.lat,
            grid_lon=self.grid.lon,
            region=self.region,
            n_stations=cfg.n_ismn_stations,
            us_share=cfg.us_station_share,
            time=self.time,
            record_years=cfg.record_years,
        )
        for st in self.ismn:
            st.elevation = float(self.world.dem(np.array([st.lat]), np.array([st.lon]))[0])
        taken = {(s.row, s.col) for s in self.ismn}
        rng = rng_for(self.seed, S_COSMOS_PLACE)
        rows, cols = np.nonzero(self.land)
        free = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if (r, c) not in taken]
        n = min(cfg.n_cosmos_stations, len(free))
        picks = rng.choice(len(free), n, replace=False) if n else []
        self.cosmos = []
        res = self.grid.resolution
        for k, i in enumerate(sorted(int(p) for p in picks)):
            r, c = free[i]
            lat = float(np.round(self.grid.lat[r] + rng.uniform(-0.4, 0.4) * res, 3))
            lon = float(np.round(self.grid.lon[c] + rng.uniform(-0.4, 0.4) * res, 3))
            letters = "".join(rng.choice(list("ABCDEFGHKLMNPRSTUVWZ"), 3))
            self.cosmos.append(
                {
                    "station_id": f"{letters}{k + 1:03d}",
                    "station": stn.station_name(rng, set()),
                    "lat": lat,
                    "lon": lon,
                    "row": r,
                    "col": c,
                    "region": int(self.region[r, c]),
                    "n0": float(np.round(rng.uniform(1500, 3000))),
                    "bulk_density": float(np.round(rng.uniform(1.1, 1.6), 2)),
                    "elevation": float(self.world.dem(np.array([lat]), np.array([lon]))[0]),
                }
            )
        self.keep_cells = taken | {(c["row"], c["col"]) for c in self.cosmos}

    # ------------------------------------------------------------------ model runs
    def truth_statics(
        self, lat: np.ndarray, lon: np.ndarray
    ) -> tuple[ph.SoilParameters, np.ndarray, np.ndarray]:
        """The true soil parameters, forest and vegetation fractions at points."""
        tex = self.world.texture(lat, lon)
        veg = self.world.vegetation(lat, lon)
        sand = np.stack([tex["sand_top"], tex["sand_top"], tex["sand_sub"]])
        clay = np.stack([tex["clay_top"], tex["clay_top"], tex["clay_sub"]])
        return ph.soil_parameters(sand, clay), veg["forest"], veg["forest"] + veg["shortveg"]

    def run_truth(
        self, lat: np.ndarray, lon: np.ndarray, t0: int = 0
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], ph.SoilParameters]:
        """Weather and the true soil water balance at points (spin-up included in ``wx``)."""
        wx = self.world.weather(lat, lon, t0)
        soil, forest, veg = self.truth_statics(lat, lon)
        res = ph.water_balance_kernel(
            wx["precip"],
            wx["tair"],
            wx["rnet"],
            soil=soil,
            thickness_mm=ph.TRUTH_THICKNESS_MM,
            forest=forest,
            veg=veg,
            spinup_days=self.spin - t0 if t0 < self.spin else 0,
            keep_fluxes=("swe",),
        )
        return wx, res, soil

    def coarse_texture(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sand and clay ``(layer, point)`` of a coarse soil map: shrunk half-way towards "medium"."""
        tex = self.world.texture(lat, lon)
        sand_t = 0.5 * tex["sand_top"] + 0.5 * 0.40
        clay_t = 0.5 * tex["clay_top"] + 0.5 * 0.20
        sand_s = 0.5 * tex["sand_sub"] + 0.5 * 0.40
        clay_s = 0.5 * tex["clay_sub"] + 0.5 * 0.22
        return np.stack([sand_t, sand_t, sand_s]), np.stack([clay_t, clay_t, clay_s])

    def gleam_texture(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sand and clay ``(layer, point)`` of GLEAM's one-texture profile."""
        tex = self.world.texture(lat, lon)
        sand = np.stack([tex["sand_top"]] * 3) * 0.6 + 0.4 * 0.45
        clay = np.stack([tex["clay_top"]] * 3) * 0.6 + 0.4 * 0.18
        return sand, clay


def row_random(
    seed: int,
    stream: tuple[int, ...],
    rows: np.ndarray,
    cols: np.ndarray,
    lead: tuple[int, ...],
    ncols: int,
    draw: str = "normal",
) -> np.ndarray:
    """Random numbers ``lead + (point,)`` for grid points ``(rows, cols)`` drawn per global row.

    Each grid row has its own generator and draws for all its columns, so the numbers
    of a point do not depend on how the grid is cut into bands.
    """
    out = np.empty((*lead, rows.size))
    for r in np.unique(rows):
        rng = rng_for(seed, *stream, int(r))
        z = (
            rng.standard_normal((*lead, ncols))
            if draw == "normal"
            else rng.gamma(0.3, 1.0, (*lead, ncols))
        )
        sel = np.flatnonzero(rows == r)
        out[..., sel] = z[..., cols[sel]]
    return out


def zlib_hash(text: str) -> int:
    """CRC-32 of ``text`` (a stable per-name random stream)."""
    return zlib.crc32(text.encode("utf-8"))


def koeppen(t_mean_c: float, p_mean: float, region: int) -> str:
    """A rough Koeppen-Geiger class for the ISMN static-variables file."""
    if p_mean < 1.0:
        return "BSh" if t_mean_c > 18 else "BSk"
    if region == 1:
        return "Csa"
    if t_mean_c < 3:
        return "Dfc"
    if t_mean_c < 7:
        return "Dfb"
    return "Cfb"


