"""Write a complete sample world folder (see docs/internals.md, section 1)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import map_coordinates
from scipy.signal import lfilter
from scipy.special import ndtr

from xsomo.conventions import LAYERS, SM_ATTRS, GridSpec
from xsomo.sample import physics as ph
from xsomo.sample import stations as stn
from xsomo.sample.climate import World
from xsomo.sample.config import REGIONS, WorldConfig, make_config
from xsomo.sample.fields import rng_for
from xsomo.sample.ncfile import NcWriter, Var, lat_coord, lon_coord, time_coord, trim_mantissa

FORMAT_VERSION = 1
log = logging.getLogger(__name__)
_S_ERA5_HOURLY, _S_PRODUCT, _S_MSW, _S_SENSORS, _S_COSMOS, _S_COSMOS_PLACE = 60, 61, 62, 63, 64, 65
_S_PRODUCT_FORCING = 66

#: ERA5-Land soil layer thicknesses (mm): 0-7, 7-28, 28-100 cm.
ERA5_THICKNESS_MM = np.array([70.0, 210.0, 720.0])

#: stand-in gridded products: resolution (degrees), which region, how many years, the
#: precipitation they are driven by (no real product sees the true rain: ``("reanalysis", s)``
#: is the reanalysis' smooth multiplicative error scaled by ``s`` - SoMo.ml v1 was driven by
#: ERA5, CLM-DA by a regional reanalysis whose error the assimilation partly removes;
#: ``("gauge", s)`` a daily lognormal error of ``s`` as in the MSWEP-style files - GLEAM is
#: driven by MSWEP), the soil map they know (``"truth"``, ``"coarse"``: the few soil classes of a
#: 0.25° map, as ERA5-Land and SoMo.ml v1 use; ``"gleam"``: one texture for the whole profile),
#: their own layers (mm; GLEAM's are 0-10, 10-100, 100-250 cm under tall vegetation, and its
#: 10-100 cm layer stands for both our 10-30 and 30-50 cm layers), the exponent of their
#: saturation-excess runoff and the error model of the result
PRODUCTS: dict[str, dict[str, Any]] = {
    "somoml_v1_like": {
        "resolution": 0.25,
        "region": None,
        "years": None,
        "forcing": ("reanalysis", 0.35),
        "soil": "coarse",
        "thickness_mm": (100.0, 200.0, 200.0),
        "runoff_shape": 10.0,
        "bias": 0.015,
        "gain": 0.9,
        "noise": 0.012,
        "phi": 0.9,
    },
    "gleam_like": {
        "resolution": 0.25,
        "region": None,
        "years": None,
        "forcing": ("gauge", 0.12),
        "soil": "gleam",
        "thickness_mm": (100.0, 900.0, 1500.0),
        "runoff_shape": 6.0,
        "bias": -0.03,
        "gain": 0.75,
        "noise": 0.015,
        "phi": 0.7,
    },
    "clmda_like": {
        "resolution": 0.0275,
        "region": 2,
        "years": "clmda",
        "forcing": ("reanalysis", 0.2),
        "soil": "truth",
        "thickness_mm": (100.0, 200.0, 200.0),
        "runoff_shape": 10.0,
        "bias": 0.01,
        "gain": 1.1,
        "noise": 0.015,
        "phi": 0.8,
    },
}

#: correlation between the error series of a product's layers
PRODUCT_NOISE_LAYER_CORRELATION = 0.8

_ERA5_ATTRS = {
    "t2m": {"units": "K", "long_name": "2 metre temperature", "standard_name": "air_temperature"},
    "skt": {"units": "K", "long_name": "Skin temperature", "standard_name": "surface_temperature"},
    "tp": {
        "units": "m",
        "long_name": "Total precipitation",
        "standard_name": "lwe_thickness_of_precipitation_amount",
    },
    "ssr": {
        "units": "J m**-2",
        "long_name": "Surface net short-wave (solar) radiation",
        "standard_name": "surface_net_downward_shortwave_flux",
    },
    "str": {
        "units": "J m**-2",
        "long_name": "Surface net long-wave (thermal) radiation",
        "standard_name": "surface_net_upward_longwave_flux",
    },
    "swvl1": {
        "units": "m**3 m**-3",
        "long_name": "Volumetric soil water layer 1",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
    },
    "swvl2": {
        "units": "m**3 m**-3",
        "long_name": "Volumetric soil water layer 2",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
    },
    "swvl3": {
        "units": "m**3 m**-3",
        "long_name": "Volumetric soil water layer 3",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
    },
}
# int16 packing (scale_factor, add_offset), fixed so every band and seed packs alike
_ERA5_PACK = {
    "t2m": (0.01, 260.0),
    "skt": (0.01, 260.0),
    "tp": (1.0e-5, 0.32),
    "ssr": (2000.0, 15.0e6),
    "str": (1000.0, -4.5e6),
    "swvl1": (1.0e-4, 0.4),
    "swvl2": (1.0e-4, 0.4),
    "swvl3": (1.0e-4, 0.4),
}
_ERA5_PACK_HOURLY = {**_ERA5_PACK, "tp": (2.0e-6, 0.06)}


@dataclass
class _Bands:
    """Row bands of a grid (for bounded memory)."""

    n_rows: int
    size: int

    def __iter__(self) -> Iterator[slice]:
        for r0 in range(0, self.n_rows, self.size):
            yield slice(r0, min(self.n_rows, r0 + self.size))

    def __len__(self) -> int:
        return -(-self.n_rows // self.size)


def _global_attrs(cfg: WorldConfig, seed: int, title: str) -> dict[str, str]:
    from xsomo._version import __version__

    return {
        "Conventions": "CF-1.8",
        "title": title,
        "source": f"xsomo {__version__} synthetic sample world (preset {cfg.preset!r}, seed {seed})",
        "institution": "xsomo sample world (synthetic data, not observations)",
    }


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, disable=not enabled if enabled is not None else True, unit="step"
    )


class _WorldWriter:
    def __init__(
        self, cfg: WorldConfig, seed: int, out: pathlib.Path, progress: bool | None
    ) -> None:
        self.cfg = cfg
        self.seed = int(seed)
        self.out = out
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
        self.bands = _Bands(g.nlat, n_band)
        self.progress_enabled = progress
        self.complevel = cfg.complevel
        self.station_series: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    # ------------------------------------------------------------------ helpers
    def _attrs(self, title: str) -> dict[str, str]:
        return _global_attrs(self.cfg, self.seed, title)

    def _year_slices(self, time: pd.DatetimeIndex) -> list[tuple[int, slice]]:
        years = time.year.to_numpy()
        out = []
        for y in np.unique(years):
            idx = np.flatnonzero(years == y)
            out.append((int(y), slice(int(idx[0]), int(idx[-1]) + 1)))
        return out

    # ------------------------------------------------------------------ stations
    def place_stations(self) -> None:
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
        rng = rng_for(self.seed, _S_COSMOS_PLACE)
        rows, cols = np.nonzero(self.land)
        free = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if (r, c) not in taken]
        n = min(cfg.n_cosmos_stations, len(free))
        picks = rng.choice(len(free), n, replace=False) if n else []
        self.cosmos: list[dict[str, Any]] = []
        res = self.grid.resolution
        for k, i in enumerate(sorted(int(p) for p in picks)):
            r, c = free[i]
            lat = float(np.round(self.grid.lat[r] + rng.uniform(-0.4, 0.4) * res, 3))
            lon = float(np.round(self.grid.lon[c] + rng.uniform(-0.4, 0.4) * res, 3))
            letters = "".join(rng.choice(list("ABCDEFGHKLMNPRSTUVWZ"), 3))
            self.cosmos.append(
                {
                    "station_id": f"{letters}{k + 1:03d}",
                    "station": stn._station_name(rng, set()),
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

    # ------------------------------------------------------------------ statics
    def write_statics(self) -> None:
        g = self.grid
        w = self.world
        attrs = self._attrs
        # land mask on the target grid
        with NcWriter(
            self.out / "static" / "land_mask.nc",
            dims={"lat": g.nlat, "lon": g.nlon},
            coords={"lat": lat_coord(g.lat), "lon": lon_coord(g.lon)},
            variables={
                "land_mask": Var(
                    ("lat", "lon"),
                    "i1",
                    {
                        "long_name": "land-sea mask (1 land, 0 sea)",
                        "units": "1",
                        "flag_values": np.array([0, 1], np.int8),
                        "flag_meanings": "sea land",
                    },
                )
            },
            attrs=attrs("land-sea mask"),
            complevel=self.complevel,
        ) as f:
            f.write("land_mask", slice(None), self.land.astype(np.int8))
        # soil texture at 0.05 degrees
        fg = GridSpec(g.west, g.east, g.south, g.north, 0.05)
        tex_attrs = {
            "sand_top": "sand content of the topsoil (0-30 cm)",
            "clay_top": "clay content of the topsoil (0-30 cm)",
            "sand_sub": "sand content of the subsoil (30-100 cm)",
            "clay_sub": "clay content of the subsoil (30-100 cm)",
        }
        with NcWriter(
            self.out / "static" / "soil.nc",
            dims={"lat": fg.nlat, "lon": fg.nlon},
            coords={"lat": lat_coord(fg.lat), "lon": lon_coord(fg.lon)},
            variables={
                k: Var(
                    ("lat", "lon"), "f4", {"units": "percent", "long_name": v}, chunks=(500, 500)
                )
                for k, v in tex_attrs.items()
            },
            attrs=attrs("soil texture (HWSD/SoilGrids-like)"),
            complevel=self.complevel,
        ) as f:
            for band in _Bands(fg.nlat, 200):
                la, lo = np.meshgrid(fg.lat[band], fg.lon, indexing="ij")
                tex = w.texture(la, lo)
                for k in tex_attrs:
                    f.write(k, (band, slice(None)), np.round(100.0 * tex[k], 2).astype(np.float32))
        # fine DEM and land cover at 0.01 degrees, band by band
        fine = GridSpec(g.west, g.east, g.south, g.north, 0.01)
        factor = round(g.resolution / 0.01)
        veg = w.vegetation(self.lat2d, self.lon2d)
        elev_large = w.elevation_large(self.lat2d, self.lon2d)
        rugged = w.ruggedness(self.lat2d, self.lon2d)
        dem = NcWriter(
            self.out / "static" / "dem.nc",
            dims={"lat": fine.nlat, "lon": fine.nlon},
            coords={"lat": lat_coord(fine.lat), "lon": lon_coord(fine.lon)},
            variables={
                "elevation": Var(
                    ("lat", "lon"),
                    "f4",
                    {
                        "units": "m",
                        "long_name": "surface elevation above sea level",
                        "standard_name": "surface_altitude",
                    },
                    chunks=(500, 500),
                )
            },
            attrs=attrs("digital elevation model (0.01 degree)"),
            complevel=self.complevel,
        )
        lc = NcWriter(
            self.out / "static" / "landcover.nc",
            dims={"lat": fine.nlat, "lon": fine.nlon},
            coords={"lat": lat_coord(fine.lat), "lon": lon_coord(fine.lon)},
            variables={
                "forest_fraction": Var(
                    ("lat", "lon"),
                    "f4",
                    {
                        "units": "1",
                        "long_name": "forest cover fraction",
                        "standard_name": "area_fraction",
                    },
                    chunks=(500, 500),
                ),
                "shortveg_fraction": Var(
                    ("lat", "lon"),
                    "f4",
                    {
                        "units": "1",
                        "long_name": "short vegetation cover fraction",
                        "standard_name": "area_fraction",
                    },
                    chunks=(500, 500),
                ),
            },
            attrs=attrs("land cover (0.01 degree)"),
            complevel=self.complevel,
        )
        try:
            for band in _Bands(g.nlat, max(1, 200 // factor)):
                rows = slice(band.start * factor, band.stop * factor)
                land_f = np.repeat(np.repeat(self.land[band], factor, 0), factor, 1)
                # large-scale relief interpolated from the cell centres, sub-grid relief evaluated finely
                fy = (fine.lat[rows] - g.lat[0]) / g.resolution
                fx = (fine.lon - g.lon[0]) / g.resolution
                yy, xx = np.meshgrid(fy, fx, indexing="ij")
                large = map_coordinates(elev_large, [yy, xx], order=1, mode="nearest")
                rough = map_coordinates(rugged, [yy, xx], order=1, mode="nearest")
                elev = np.maximum(large + rough * w.f_rough.grid(fine.lat[rows], fine.lon), 0.0)
                dem.write(
                    "elevation",
                    (rows, slice(None)),
                    np.where(land_f, np.round(elev, 1), 0.0).astype(np.float32),
                )
                forest_c = np.repeat(np.repeat(veg["forest"][band], factor, 0), factor, 1)
                short_c = np.repeat(np.repeat(veg["shortveg"][band], factor, 0), factor, 1)
                q = ndtr(w.f_lc.grid(fine.lat[rows], fine.lon))
                is_forest = (q < forest_c) & land_f
                is_short = (~is_forest) & (q < forest_c + short_c) & land_f
                lc.write("forest_fraction", (rows, slice(None)), is_forest.astype(np.float32))
                lc.write("shortveg_fraction", (rows, slice(None)), is_short.astype(np.float32))
            dem.close()
            lc.close()
        except BaseException:
            dem.abort()
            lc.abort()
            raise

    # ------------------------------------------------------------------ model runs
    def _truth_statics(
        self, lat: np.ndarray, lon: np.ndarray
    ) -> tuple[ph.SoilParameters, np.ndarray, np.ndarray]:
        tex = self.world.texture(lat, lon)
        veg = self.world.vegetation(lat, lon)
        sand = np.stack([tex["sand_top"], tex["sand_top"], tex["sand_sub"]])
        clay = np.stack([tex["clay_top"], tex["clay_top"], tex["clay_sub"]])
        return ph.soil_parameters(sand, clay), veg["forest"], veg["forest"] + veg["shortveg"]

    def _run_truth(
        self, lat: np.ndarray, lon: np.ndarray, t0: int = 0
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], ph.SoilParameters]:
        wx = self.world.weather(lat, lon, t0)
        soil, forest, veg = self._truth_statics(lat, lon)
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

    def write_target_grid(self, bar: Any) -> None:
        g = self.grid
        time = self.time
        nt = time.size
        lay = len(LAYERS)
        tcoord = time_coord(time)
        truth = NcWriter(
            self.out / "truth.nc",
            dims={"time": nt, "layer": lay, "lat": g.nlat, "lon": g.nlon},
            coords={
                "time": tcoord,
                "layer": (
                    np.array([la.number for la in LAYERS], np.int32),
                    {"long_name": "soil layer", "units": "1"},
                    "i4",
                ),
                "lat": lat_coord(g.lat),
                "lon": lon_coord(g.lon),
            },
            variables={
                "sm": Var(
                    ("time", "layer", "lat", "lon"),
                    "f4",
                    {
                        **SM_ATTRS,
                        "long_name": "true volumetric soil moisture",
                        "coordinates": "depth_top depth_bottom",
                    },
                    chunks=(366, 1, self.bands.size, min(g.nlon, 200)),
                ),
                "depth_top": Var(
                    ("layer",),
                    "f8",
                    {"units": "m", "long_name": "depth of the layer top", "positive": "down"},
                ),
                "depth_bottom": Var(
                    ("layer",),
                    "f8",
                    {"units": "m", "long_name": "depth of the layer bottom", "positive": "down"},
                ),
                "land_mask": Var(
                    ("lat", "lon"),
                    "i1",
                    {"units": "1", "long_name": "land-sea mask (1 land, 0 sea)"},
                ),
                "region": Var(
                    ("lat", "lon"),
                    "i1",
                    {
                        "units": "1",
                        "long_name": "region (0 sea, 1 us, 2 europe)",
                        "flag_values": np.array([0, 1, 2], np.int8),
                        "flag_meanings": "sea us europe",
                    },
                ),
                "porosity": Var(
                    ("layer", "lat", "lon"),
                    "f4",
                    {"units": "m3 m-3", "long_name": "porosity (upper bound of sm)"},
                ),
                "residual": Var(
                    ("layer", "lat", "lon"),
                    "f4",
                    {"units": "m3 m-3", "long_name": "residual water content (lower bound of sm)"},
                ),
            },
            attrs=self._attrs("sample world truth: soil moisture of three layers"),
            complevel=self.complevel,
        )
        years = self._year_slices(time)
        msw_attrs = lambda t: self._attrs(t)  # noqa: E731
        lat_desc = g.lat[::-1]
        mswep = {
            y: NcWriter(
                self.out / "mswep" / f"{y}.nc",
                dims={"time": s.stop - s.start, "lat": g.nlat, "lon": g.nlon},
                coords={
                    "time": time_coord(time[s]),
                    "lat": lat_coord(lat_desc),
                    "lon": lon_coord(g.lon),
                },
                variables={
                    "precipitation": Var(
                        ("time", "lat", "lon"),
                        "f4",
                        {
                            "units": "mm d-1",
                            "long_name": "precipitation",
                            "standard_name": "lwe_precipitation_rate",
                        },
                        chunks=(366, self.bands.size, g.nlon),
                    )
                },
                attrs=msw_attrs("MSWEP-style daily precipitation"),
                complevel=self.complevel,
            )
            for y, s in years
        }
        mswx = {
            y: NcWriter(
                self.out / "mswx" / "Temp" / f"{y}.nc",
                dims={"time": s.stop - s.start, "lat": g.nlat, "lon": g.nlon},
                coords={
                    "time": time_coord(time[s]),
                    "lat": lat_coord(lat_desc),
                    "lon": lon_coord(g.lon),
                },
                variables={
                    "air_temperature": Var(
                        ("time", "lat", "lon"),
                        "f4",
                        {
                            "units": "degC",
                            "long_name": "daily mean air temperature",
                            "standard_name": "air_temperature",
                        },
                        chunks=(366, self.bands.size, g.nlon),
                    )
                },
                attrs=msw_attrs("MSWX-style daily mean air temperature"),
                complevel=self.complevel,
            )
            for y, s in years
        }
        writers = [truth, *mswep.values(), *mswx.values()]
        try:
            truth.write("depth_top", slice(None), np.array([la.top for la in LAYERS]))
            truth.write("depth_bottom", slice(None), np.array([la.bottom for la in LAYERS]))
            truth.write("land_mask", slice(None), self.land.astype(np.int8))
            truth.write("region", slice(None), self.region)
            for band in self.bands:
                rows, cols = np.nonzero(self.land[band])
                rows_g = rows + band.start
                n_rows = band.stop - band.start
                if rows.size:
                    lat = g.lat[rows_g]
                    lon = g.lon[cols]
                    wx, res, soil = self._run_truth(lat, lon)
                    # stored with 12 mantissa bits (relative 2.4e-4) inside the stored bounds
                    por_q = trim_mantissa(soil.porosity)
                    res_q = trim_mantissa(soil.residual)
                    theta = np.clip(trim_mantissa(res["theta"]), res_q[None], por_q[None])
                    # precipitation and temperature products with their own small errors
                    wxs = {k: v[self.spin :] for k, v in wx.items() if k in ("precip", "tair")}
                    z = _row_random(self.seed, (_S_MSW,), rows_g, cols, (2, nt), g.nlon).astype(
                        np.float32
                    )
                    p_err = np.exp(np.float32(0.12) * z[0])
                    mswep_p = trim_mantissa(wxs["precip"] * 0.97 * p_err, 10)
                    mswx_t = trim_mantissa(
                        wxs["tair"]
                        - np.float32(273.15)
                        + np.float32(0.25) * z[1]
                        - np.float32(0.2),
                        12,
                    )
                    for r, c, k in zip(rows_g, cols, range(rows.size), strict=True):
                        if (int(r), int(c)) in self.keep_cells:
                            self.station_series[(int(r), int(c))] = {
                                "theta": theta[:, :, k].astype(np.float64),
                                "tair": wxs["tair"][:, k].astype(np.float64),
                                "swe": res["swe"][:, k],
                                "porosity": soil.porosity[:, k],
                            }
                    full = np.full((lay, n_rows, g.nlon), np.nan, np.float32)
                    for name, arr in (("porosity", por_q), ("residual", res_q)):
                        full[:] = np.nan
                        full[:, rows, cols] = arr
                        truth.write(name, (slice(None), band, slice(None)), full)
                    for y, s in years:
                        blk = np.full((s.stop - s.start, lay, n_rows, g.nlon), np.nan, np.float32)
                        blk[:, :, rows, cols] = theta[s]
                        truth.write("sm", (s, slice(None), band, slice(None)), blk)
                        # descending latitude: band rows map to reversed file rows
                        frows = slice(g.nlat - band.stop, g.nlat - band.start)
                        p2 = np.full((s.stop - s.start, n_rows, g.nlon), np.nan, np.float32)
                        p2[:, rows, cols] = mswep_p[s]
                        mswep[y].write(
                            "precipitation", (slice(None), frows, slice(None)), p2[:, ::-1]
                        )
                        p2[:] = np.nan
                        p2[:, rows, cols] = mswx_t[s]
                        mswx[y].write(
                            "air_temperature", (slice(None), frows, slice(None)), p2[:, ::-1]
                        )
                bar.update(1)
            for wtr in writers:
                wtr.close()
        except BaseException:
            for wtr in writers:
                wtr.abort()
            raise

    # ------------------------------------------------------------------ ERA5-Land
    def era5_grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ERA5-Land points (multiples of 0.1°) around the target grid and their land-sea mask."""
        g = self.grid
        lat_e = np.round(g.south + g.resolution * np.arange(g.nlat + 1), 6)
        lon_e = np.round(g.west + g.resolution * np.arange(g.nlon + 1), 6)
        land = self.land
        pad = np.zeros((g.nlat + 2, g.nlon + 2), bool)
        pad[1:-1, 1:-1] = land
        # point (i, j) touches target cells (i-1..i, j-1..j)
        lsm = pad[:-1, :-1] | pad[1:, :-1] | pad[:-1, 1:] | pad[1:, 1:]
        return lat_e, lon_e, lsm

    def _run_era5(
        self, lat: np.ndarray, lon: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """ERA5-Land's own land model: its layers, a coarse soil map and its own precipitation bias."""
        w = self.world
        wx = w.weather(lat, lon)
        veg = w.vegetation(lat, lon)
        soil = ph.soil_parameters(*self._coarse_texture(lat, lon))
        # its own precipitation: +6 % bias, a smooth multiplicative error (~35 %) and drizzle under clouds
        err = np.exp(np.float32(0.35) * w.w_reanalysis(lat, lon) - np.float32(0.06))
        precip = wx["precip"] * np.float32(1.06) * err + np.where(
            wx["cloud"] > 0.6, np.float32(0.15), np.float32(0.0)
        )
        res = ph.water_balance_kernel(
            precip,
            wx["tair"],
            wx["rnet"],
            soil=soil,
            thickness_mm=ERA5_THICKNESS_MM,
            forest=veg["forest"],
            veg=np.clip(veg["forest"] + veg["shortveg"], 0, 1),
            spinup_days=self.spin,
            keep_fluxes=("et", "swe"),
            runoff_shape=6.0,
            interception_mm=0.5,
        )
        sl = slice(self.spin, None)
        # snow brightens the surface (less so under forest): albedo 0.2 -> up to 0.65
        cover = np.clip(res["swe"] / 10.0, 0.0, 1.0).astype(np.float32)
        albedo = (
            np.float32(0.2)
            + np.float32(0.45) * cover * (1.0 - 0.5 * veg["forest"]).astype(np.float32)[None, :]
        )
        sw_net = wx["sw_net"][sl] * (1.0 - albedo) / np.float32(0.8)
        rnet = sw_net + wx["lw_net"][sl]
        skt = ph.skin_temperature(wx["tair"][sl], rnet, res["et"], res["swe"], veg["forest"])
        out = {
            "t2m": wx["tair"][sl] + np.float32(0.3),
            "skt": skt,
            "tp": precip[sl] / np.float32(1000.0),
            "ssr": sw_net * np.float32(86400.0),
            "str": wx["lw_net"][sl] * np.float32(86400.0),
            "swvl1": res["theta"][:, 0],
            "swvl2": res["theta"][:, 1],
            "swvl3": res["theta"][:, 2],
        }
        return out, {"cloud": wx["cloud"][sl], "tair": wx["tair"][sl]}

    def write_era5(self, bar: Any) -> None:
        lat_e, lon_e, lsm = self.era5_grid()
        ny, nx = lat_e.size, lon_e.size
        time = self.time
        years = self._year_slices(time)
        names = list(_ERA5_ATTRS)
        hours_units = "hours since 1900-01-01 00:00:00.0"
        daily = {
            y: NcWriter(
                self.out / "era5land" / f"era5land_{y}.nc",
                dims={"time": s.stop - s.start, "latitude": ny, "longitude": nx},
                coords={
                    "time": time_coord(time[s], units=hours_units),
                    "latitude": (
                        lat_e[::-1],
                        {
                            "units": "degrees_north",
                            "long_name": "latitude",
                            "standard_name": "latitude",
                            "axis": "Y",
                        },
                        "f4",
                    ),
                    "longitude": (
                        lon_e,
                        {
                            "units": "degrees_east",
                            "long_name": "longitude",
                            "standard_name": "longitude",
                            "axis": "X",
                        },
                        "f4",
                    ),
                },
                variables={
                    **{
                        k: Var(
                            ("time", "latitude", "longitude"),
                            "f4",
                            dict(_ERA5_ATTRS[k]),
                            packing=_ERA5_PACK[k],
                            chunks=(366, min(ny, 100), min(nx, 200)),
                        )
                        for k in names
                    },
                    "lsm": Var(
                        ("latitude", "longitude"),
                        "f4",
                        {
                            "units": "1",
                            "long_name": "Land-sea mask",
                            "standard_name": "land_binary_mask",
                        },
                    ),
                },
                attrs={
                    **self._attrs("ERA5-Land-style daily fields"),
                    "history": "daily means (t2m, skt, swvl*) and daily sums (tp, ssr, str) of ERA5-Land-style hourly data",
                },
                complevel=self.complevel,
            )
            for y, s in years
        }
        hourly_days = pd.date_range(self.cfg.hourly_start, self.cfg.hourly_end, freq="D")
        months = sorted({(d.year, d.month) for d in hourly_days})
        hourly: dict[tuple[int, int], tuple[NcWriter, pd.DatetimeIndex]] = {}
        for ym in months:
            days = hourly_days[(hourly_days.year == ym[0]) & (hourly_days.month == ym[1])]
            hrs = pd.date_range(days[0], days[-1] + pd.Timedelta(hours=23), freq="h")
            hourly[ym] = (
                NcWriter(
                    self.out / "era5land_hourly" / f"era5land_hourly_{ym[0]}_{ym[1]:02d}.nc",
                    dims={"time": hrs.size, "latitude": ny, "longitude": nx},
                    coords={
                        "time": time_coord(hrs, units=hours_units),
                        "latitude": (
                            lat_e[::-1],
                            {
                                "units": "degrees_north",
                                "long_name": "latitude",
                                "standard_name": "latitude",
                                "axis": "Y",
                            },
                            "f4",
                        ),
                        "longitude": (
                            lon_e,
                            {
                                "units": "degrees_east",
                                "long_name": "longitude",
                                "standard_name": "longitude",
                                "axis": "X",
                            },
                            "f4",
                        ),
                    },
                    variables={
                        k: Var(
                            ("time", "latitude", "longitude"),
                            "f4",
                            dict(_ERA5_ATTRS[k]),
                            packing=_ERA5_PACK_HOURLY[k],
                            chunks=(24, min(ny, 100), min(nx, 200)),
                        )
                        for k in names
                    },
                    attrs={
                        **self._attrs("ERA5-Land-style hourly fields"),
                        "history": "tp, ssr, str are accumulated since 00 UTC; the 00 UTC value holds the previous day's total",
                    },
                    complevel=self.complevel,
                ),
                hrs,
            )
        writers = [*daily.values(), *(h[0] for h in hourly.values())]
        try:
            for wtr in daily.values():
                wtr.write("lsm", slice(None), lsm[::-1].astype(np.float32))
            for band in _Bands(ny, self.bands.size if self.cfg.band_rows else ny):
                rows, cols = np.nonzero(lsm[band])
                n_rows = band.stop - band.start
                frows = slice(ny - band.stop, ny - band.start)
                if rows.size:
                    lat = lat_e[rows + band.start]
                    lon = lon_e[cols]
                    fields, aux = self._run_era5(lat, lon)
                    for y, s in years:
                        for k in names:
                            blk = np.full((s.stop - s.start, n_rows, nx), np.nan, np.float32)
                            blk[:, rows, cols] = fields[k][s]
                            daily[y].write(k, (slice(None), frows, slice(None)), blk[:, ::-1])
                    self._write_era5_hourly(
                        hourly, fields, aux, lat, lon, rows, cols, n_rows, nx, frows, band.start
                    )
                bar.update(1)
            for wtr in writers:
                wtr.close()
        except BaseException:
            for wtr in writers:
                wtr.abort()
            raise

    def _write_era5_hourly(
        self,
        hourly: dict[tuple[int, int], tuple[NcWriter, pd.DatetimeIndex]],
        fields: dict[str, np.ndarray],
        aux: dict[str, np.ndarray],
        lat: np.ndarray,
        lon: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        n_rows: int,
        nx: int,
        frows: slice,
        band_start: int,
    ) -> None:
        """Disaggregate the daily fields to hours for the hourly months of this band."""
        time = self.time
        for wtr, hrs in hourly.values():
            days = pd.date_range(hrs[0], hrs[-1], freq="D")
            d_idx = time.get_indexer(days)
            prev = d_idx[0] - 1  # the 00 UTC value of the first day closes the previous day
            n_d = days.size
            n_p = lat.size
            hod = np.arange(24)
            # diurnal shapes in local solar time
            local = (hod[None, :] + lon[:, None] / 15.0) % 24.0  # (point, hour)
            cyc_t = np.cos(2 * np.pi * (local - 15.0) / 24.0)
            cyc_t -= cyc_t.mean(1, keepdims=True)
            sun = (
                np.maximum(np.cos(2 * np.pi * (local - 0.5 - 12.0) / 24.0), 0.0) ** 1.5
            )  # hour ending at h
            sun /= sun.sum(1, keepdims=True)
            out: dict[str, np.ndarray] = {}
            for k in ("t2m", "skt"):
                amp = (6.0 if k == "skt" else 4.0) * (
                    1.0 - 0.7 * aux["cloud"][d_idx]
                )  # (day, point)
                inst = fields[k][d_idx][:, :, None] + amp[:, :, None] * cyc_t.T[
                    None, :, :
                ].transpose(0, 2, 1)
                out[k] = inst.transpose(0, 2, 1).reshape(n_d * 24, n_p)
            for k in ("swvl1", "swvl2", "swvl3"):
                ser = (
                    fields[k][prev : d_idx[-1] + 2]
                    if d_idx[-1] + 2 <= time.size
                    else fields[k][prev:]
                )
                x_day = (np.arange(ser.shape[0]) - 1) * 24.0 + 12.0
                x_h = np.arange(n_d * 24, dtype=float)
                out[k] = np.stack([np.interp(x_h, x_day, ser[:, j]) for j in range(n_p)], axis=1)

            # accumulations since 00 UTC: hour h of day d holds the sum over hours 1..h; 00 UTC closes day d-1
            def accumulate(
                total: np.ndarray, shape: np.ndarray, n_d: int = n_d, n_p: int = n_p
            ) -> np.ndarray:
                # total (day incl. previous, point); shape (day incl. previous, point, 24) summing to 1 over hours 1..24
                cum = np.cumsum(shape, axis=2) * total[:, :, None]
                acc = np.empty((n_d, 24, n_p))
                acc[:, 0, :] = cum[:-1, :, 23]  # 00 UTC = total of the previous day
                acc[:, 1:, :] = cum[1:, :, :23].transpose(0, 2, 1)
                return acc.reshape(n_d * 24, n_p)

            all_days = np.concatenate([[prev], d_idx])
            w_tp = (
                _row_random(
                    self.seed,
                    (_S_ERA5_HOURLY, int(d_idx[0])),
                    rows + band_start,
                    cols,
                    (all_days.size, 24),
                    nx,
                    "gamma",
                ).transpose(0, 2, 1)
                + 1e-9
            )
            w_tp /= w_tp.sum(2, keepdims=True)
            out["tp"] = accumulate(fields["tp"][all_days], w_tp)
            sun_shape = np.broadcast_to(np.roll(sun, -1, axis=1)[None], (all_days.size, n_p, 24))
            out["ssr"] = accumulate(fields["ssr"][all_days], sun_shape)
            flat = np.full((all_days.size, n_p, 24), 1.0 / 24.0)
            out["str"] = accumulate(fields["str"][all_days], flat)
            for k, arr in out.items():
                blk = np.full((arr.shape[0], n_rows, nx), np.nan, np.float32)
                blk[:, rows, cols] = arr
                wtr.write(k, (slice(None), frows, slice(None)), blk[:, ::-1])

    # ------------------------------------------------------------------ products
    def product_grid(self, name: str) -> tuple[GridSpec, pd.DatetimeIndex]:
        spec = PRODUCTS[name]
        g = self.grid
        res = spec["resolution"]
        south, north = g.south, g.north
        west, east = g.west, g.east
        if spec["region"] is not None:
            # a box of at most clmda_box degrees around the middle of the region
            rows, cols = np.nonzero(self.region == spec["region"])
            half = round(self.cfg.clmda_box / 2 / g.resolution)
            r_mid, c_mid = int(np.median(rows)), int(np.median(cols))
            r0, r1 = max(rows.min(), r_mid - half), min(rows.max() + 1, r_mid + half)
            c0, c1 = max(cols.min(), c_mid - half), min(cols.max() + 1, c_mid + half)
            south, north = g.south + r0 * g.resolution, g.south + r1 * g.resolution
            west, east = g.west + c0 * g.resolution, g.west + c1 * g.resolution
        nlon = int(np.ceil((east - west) / res - 1e-9))
        nlat = int(np.ceil((north - south) / res - 1e-9))
        grid = GridSpec(
            round(west, 6),
            round(west + nlon * res, 6),
            round(south, 6),
            round(south + nlat * res, 6),
            res,
        )
        time = self.time
        if spec["years"] == "clmda":
            years = self.cfg.years[-self.cfg.clmda_years :]
            time = time[time.year >= years[0]]
        return grid, time

    def write_products(self, bar: Any) -> dict[str, Any]:
        info = {}
        for name, spec in PRODUCTS.items():
            grid, time = self.product_grid(name)
            geo = self.world.geography(*np.meshgrid(grid.lat, grid.lon, indexing="ij"))
            land = geo["land"] if spec["region"] is None else geo["region"] == spec["region"]
            t_first = self.world.time_ext.get_loc(time[0])
            t0 = max(0, t_first - self.spin)
            years = self._year_slices(time)
            writers = {
                y: NcWriter(
                    self.out / "products" / name / f"{name}_{y}.nc",
                    dims={"time": s.stop - s.start, "lat": grid.nlat, "lon": grid.nlon},
                    coords={
                        "time": time_coord(time[s]),
                        "lat": lat_coord(grid.lat),
                        "lon": lon_coord(grid.lon),
                    },
                    variables={
                        f"layer{la.number}": Var(
                            ("time", "lat", "lon"),
                            "f4",
                            {
                                **SM_ATTRS,
                                "long_name": f"volumetric soil moisture {la.top:.2f}-{la.bottom:.2f} m",
                            },
                            chunks=(366, min(grid.nlat, 100), min(grid.nlon, 200)),
                        )
                        for la in LAYERS
                    },
                    attrs={
                        **self._attrs(f"{name}: stand-in gridded soil-moisture product"),
                        "resolution": f"{grid.resolution} degree",
                    },
                    complevel=self.complevel,
                )
                for y, s in years
            }
            try:
                rows_per_band = max(
                    1, round(self.bands.size * self.grid.resolution / grid.resolution)
                )
                if name == "clmda_like":
                    rows_per_band = max(1, 40_000 // max(grid.nlon, 1))
                for band in _Bands(grid.nlat, rows_per_band):
                    rows, cols = np.nonzero(land[band])
                    if rows.size:
                        lat = grid.lat[rows + band.start]
                        lon = grid.lon[cols]
                        wx = self.world.weather(lat, lon, t0, t_first + time.size)
                        precip = self._product_precip(
                            name, wx["precip"], lat, lon, rows + band.start, cols, t0, grid.nlon
                        )
                        soil, forest, veg = self._truth_statics(lat, lon)
                        if spec["soil"] == "gleam":
                            soil = ph.soil_parameters(*self._gleam_texture(lat, lon))
                        elif spec["soil"] == "coarse":
                            soil = ph.soil_parameters(*self._coarse_texture(lat, lon))
                        res = ph.water_balance_kernel(
                            precip,
                            wx["tair"],
                            wx["rnet"],
                            soil=soil,
                            thickness_mm=np.asarray(spec["thickness_mm"]),
                            forest=forest,
                            veg=veg,
                            spinup_days=t_first - t0,
                            keep_fluxes=False,
                            runoff_shape=spec["runoff_shape"],
                        )
                        theta = res["theta"].astype(np.float64)
                        if spec["thickness_mm"][1] > ph.TRUTH_THICKNESS_MM[1] + ph.TRUTH_THICKNESS_MM[2]:
                            # one deep model layer covers both our 10-30 and 30-50 cm layers
                            theta[:, 2] = theta[:, 1]
                        mean = theta.mean(0, keepdims=True)
                        z = _row_random(
                            self.seed,
                            (_S_PRODUCT, list(PRODUCTS).index(name)),
                            rows + band.start,
                            cols,
                            (theta.shape[0], theta.shape[1] + 1),
                            grid.nlon,
                        )
                        # a product's errors come mostly from its forcing and model, which all
                        # its layers share: correlated across layers, not independent per layer
                        rho = PRODUCT_NOISE_LAYER_CORRELATION
                        eps = np.sqrt(rho) * z[:, :1] + np.sqrt(1.0 - rho) * z[:, 1:]
                        noise = (
                            lfilter(
                                [np.sqrt(1 - spec["phi"] ** 2)], [1.0, -spec["phi"]], eps, axis=0
                            )
                            * spec["noise"]
                        )
                        val = mean + spec["gain"] * (theta - mean) + spec["bias"] + noise
                        lo = soil.residual[None] * 0.8
                        hi = soil.porosity[None] * 1.05
                        val = trim_mantissa(np.clip(val, lo, hi), 10)
                        n_rows = band.stop - band.start
                        for y, s in years:
                            for k in range(3):
                                blk = np.full(
                                    (s.stop - s.start, n_rows, grid.nlon), np.nan, np.float32
                                )
                                blk[:, rows, cols] = val[s, k]
                                writers[y].write(
                                    f"layer{k + 1}", (slice(None), band, slice(None)), blk
                                )
                for wtr in writers.values():
                    wtr.close()
            except BaseException:
                for wtr in writers.values():
                    wtr.abort()
                raise
            info[name] = {
                "path": f"products/{name}",
                "resolution": grid.resolution,
                "grid": {
                    "west": grid.west,
                    "east": grid.east,
                    "south": grid.south,
                    "north": grid.north,
                    "resolution": grid.resolution,
                },
                "period": {"start": str(time[0].date()), "end": str(time[-1].date())},
                "region": REGIONS.get(spec["region"], "all") if spec["region"] else "all",
                "variables": [f"layer{la.number}" for la in LAYERS],
                "error_model": {
                    **{k: spec[k] for k in ("bias", "gain", "noise", "phi")},
                    "layer_correlation": PRODUCT_NOISE_LAYER_CORRELATION,
                },
                "forcing": {"precipitation": spec["forcing"][0], "error": spec["forcing"][1]},
                "soil_map": spec["soil"],
                "model_layers_mm": list(spec["thickness_mm"]),
            }
            bar.update(1)
        return info

    def _product_precip(
        self,
        name: str,
        precip: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        t0: int,
        nlon: int,
    ) -> np.ndarray:
        """The precipitation a stand-in product is driven by: the true rain with the error of its source."""
        kind, scale = PRODUCTS[name]["forcing"]
        if kind == "reanalysis":
            w = self.world.w_reanalysis(lat, lon, slice(t0, t0 + precip.shape[0]))
            err = np.exp(np.float32(scale) * w - np.float32(scale**2 / 2))
            return (precip * err).astype(np.float32)
        if kind == "gauge":
            z = _row_random(
                self.seed,
                (_S_PRODUCT_FORCING, list(PRODUCTS).index(name)),
                rows,
                cols,
                precip.shape[:1],
                nlon,
            )
            return (precip * np.exp(np.float32(scale) * z - np.float32(scale**2 / 2))).astype(
                np.float32
            )
        raise ValueError(f"unknown product forcing {kind!r} of {name}")

    def _coarse_texture(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sand and clay ``(layer, point)`` of a coarse soil map: shrunk half-way towards "medium"."""
        tex = self.world.texture(lat, lon)
        sand_t = 0.5 * tex["sand_top"] + 0.5 * 0.40
        clay_t = 0.5 * tex["clay_top"] + 0.5 * 0.20
        sand_s = 0.5 * tex["sand_sub"] + 0.5 * 0.40
        clay_s = 0.5 * tex["clay_sub"] + 0.5 * 0.22
        return np.stack([sand_t, sand_t, sand_s]), np.stack([clay_t, clay_t, clay_s])

    def _gleam_texture(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tex = self.world.texture(lat, lon)
        sand = np.stack([tex["sand_top"]] * 3) * 0.6 + 0.4 * 0.45
        clay = np.stack([tex["clay_top"]] * 3) * 0.6 + 0.4 * 0.18
        return sand, clay

    # ------------------------------------------------------------------ ISMN and COSMOS files
    def write_ismn(self, bar: Any) -> None:
        root = self.out / "ismn"
        root.mkdir(parents=True, exist_ok=True)
        (root / "Readme.txt").write_text(stn.README_ISMN)
        (root / "ISMN_qualityflags_description.txt").write_text(stn.FLAGS_DESCRIPTION)
        time = self.time
        for st in self.ismn:
            series = self.station_series[(st.row, st.col)]
            rng = rng_for(self.seed, _S_SENSORS, st.row, st.col, zlib_hash(st.station))
            # station-scale representativeness error: slow AR(1) per layer, shared by the sensors
            eps = rng.standard_normal((time.size, 3))
            st_err = lfilter([np.sqrt(1 - 0.98**2)], [1.0, -0.98], eps, axis=0) * 0.012
            folder = root / st.network / st.station
            folder.mkdir(parents=True, exist_ok=True)
            for sensor in st.sensors:
                frame = stn.simulate_sensor(
                    rng,
                    truth=series["theta"],
                    tair=series["tair"],
                    time=time,
                    sensor=sensor,
                    porosity=float(series["porosity"][0]),
                    station_error=st_err,
                )
                sensor.file = stn.ismn_filename(st, sensor)
                body = stn.format_ismn_lines(
                    frame.index, frame["value"].to_numpy(), frame["flag"].to_numpy()
                )
                stn.write_atomic(
                    folder / sensor.file, stn.ismn_header(st, sensor).encode("ascii") + body
                )
            tex = self.world.texture(np.array([st.lat]), np.array([st.lon]))
            tex1 = {k: float(v[0]) for k, v in tex.items()}
            por = ph.soil_parameters(
                np.array([tex1["sand_top"], tex1["sand_sub"]]),
                np.array([tex1["clay_top"], tex1["clay_sub"]]),
            ).porosity
            veg = self.world.vegetation(np.array([st.lat]), np.array([st.lon]))
            lc = 70 if veg["forest"][0] > 0.5 else (130 if veg["shortveg"][0] > 0.4 else 150)
            clim = self.world.climate(np.array([st.lat]), np.array([st.lon]))
            kg = _koeppen(
                float(clim["t_mean"][0]) - 273.15, float(clim["p_mean"][0]), int(clim["region"][0])
            )
            csv = stn.static_variables_csv(tex1, float(por[0]), float(por[1]), lc, kg)
            stn.write_atomic(
                folder / f"{st.network}_{st.network}_{st.station}_static_variables.csv",
                csv.encode("utf-8"),
            )
            bar.update(1)

    def write_cosmos(self) -> None:
        root = self.out / "cosmos"
        root.mkdir(parents=True, exist_ok=True)
        rows = []
        for c in self.cosmos:
            series = self.station_series[(c["row"], c["col"])]
            rng = rng_for(self.seed, _S_COSMOS, c["row"], c["col"])
            start, end = stn._record(rng, self.time, self.cfg.cosmos_years)
            frame, depth = stn.simulate_cosmos(
                rng,
                truth=series["theta"],
                swe=series["swe"],
                time=self.time,
                start=start,
                end=end,
                n0=c["n0"],
                bulk_density=c["bulk_density"],
                elevation=c["elevation"],
            )
            c["start"], c["end"] = str(start.date()), str(end.date())
            c["footprint_depth_m"] = round(depth, 4)
            c["file"] = f"{c['station_id']}-CRNS.csv"
            tmp = root / (c["file"] + ".tmp")
            frame.to_csv(tmp, index=False, float_format="%.5g", lineterminator="\n")
            os.replace(tmp, root / c["file"])
            rows.append(
                {
                    "station_id": c["station_id"],
                    "station": c["station"],
                    "country": "Synthetica" if c["region"] == 2 else "Synthetic States",
                    "detector_type": "CRS2000/B",
                    "latitude": c["lat"],
                    "longitude": c["lon"],
                    "elevation_m": round(c["elevation"], 1),
                    "processing_status": "full",
                    "N0_cph": c["n0"],
                    "porosity": round(float(series["porosity"][0]), 3),
                    "raw_rows": len(frame),
                    "datetime_column": "DateTime_utc",
                    "datetime_format": "%Y-%m-%d %H:%M:%S%z",
                    "epithermal_column": "NeutronCount_Epithermal_Cum1h",
                    "thermal_column": "",
                    "pressure_columns": "AirPressure",
                    "temperature_columns": "AirTemperature",
                    "relative_humidity_columns": "AirHumidity_Relative",
                    "absolute_humidity_column": "",
                    "wizard_detected_datetime": "DateTime_utc",
                    "notes": "synthetic (xsomo sample world)",
                }
            )
        cat = pd.DataFrame(rows, columns=stn.COSMOS_CATALOGUE_COLUMNS)
        tmp = root / "stations.csv.tmp"
        cat.to_csv(tmp, index=False, lineterminator="\n")
        os.replace(tmp, root / "stations.csv")

    # ------------------------------------------------------------------ manifest
    def write_manifest(self, products: dict[str, Any]) -> None:
        from xsomo._version import __version__

        g = self.grid
        man = {
            "format_version": FORMAT_VERSION,
            "xsomo_version": __version__,
            "preset": self.cfg.preset,
            "seed": self.seed,
            "grid": {
                "west": g.west,
                "east": g.east,
                "south": g.south,
                "north": g.north,
                "resolution": g.resolution,
            },
            "shape": {"lat": g.nlat, "lon": g.nlon},
            "period": {"start": self.cfg.start, "end": self.cfg.end},
            "hourly_period": {"start": self.cfg.hourly_start, "end": self.cfg.hourly_end},
            "regions": {str(k): v for k, v in REGIONS.items()},
            "n_land_cells": int(self.land.sum()),
            "n_land_cells_by_region": {REGIONS[k]: int((self.region == k).sum()) for k in REGIONS},
            "layers": [
                {"layer": la.number, "depth_top": la.top, "depth_bottom": la.bottom}
                for la in LAYERS
            ],
            "era5land": {
                "layers": [[0.0, 0.07], [0.07, 0.28], [0.28, 1.0]],
                "grid": "points on multiples of the resolution, latitude descending",
            },
            "ismn_stations": [st.manifest() for st in self.ismn],
            "cosmos_stations": [
                {
                    k: c[k]
                    for k in (
                        "station_id",
                        "station",
                        "lat",
                        "lon",
                        "row",
                        "col",
                        "region",
                        "footprint_depth_m",
                        "start",
                        "end",
                        "file",
                    )
                }
                for c in self.cosmos
            ],
            "products": products,
        }
        tmp = self.out / "world.json.tmp"
        tmp.write_text(json.dumps(man, indent=1) + "\n")
        os.replace(tmp, self.out / "world.json")


def _row_random(
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
    import zlib

    return zlib.crc32(text.encode("utf-8"))


def _koeppen(t_mean_c: float, p_mean: float, region: int) -> str:
    if p_mean < 1.0:
        return "BSh" if t_mean_c > 18 else "BSk"
    if region == 1:
        return "Csa"
    if t_mean_c < 3:
        return "Dfc"
    if t_mean_c < 7:
        return "Dfb"
    return "Cfb"


def generate(
    preset: str = "demo",
    *,
    seed: int = 0,
    out: str | os.PathLike[str],
    progress: bool | None = None,
    overwrite: bool = True,
    **overrides: Any,
) -> pathlib.Path:
    """Write a synthetic sample world into ``out`` and return the folder.

    Parameters
    ----------
    preset
        ``"tiny"`` (unit tests, seconds), ``"demo"`` (a few thousand land cells,
        2011-2020) or ``"europe"`` (the full 355 x 570 grid, band by band).
    seed
        Any integer. The same seed writes byte-identical files; another seed a
        different world.
    out
        Folder to write (created; existing world files are replaced).
    progress
        Show a progress bar (default: off).
    overwrite
        Remove an existing world (a folder with ``world.json``) first.
    **overrides
        :class:`~xsomo.sample.config.WorldConfig` fields, e.g. ``start``, ``end``,
        ``bbox=(west, south, east, north)``, ``n_ismn_stations``.

    Returns
    -------
    pathlib.Path
        The world folder, laid out as in ``docs/internals.md`` section 1.

    Examples
    --------
    >>> path = xsomo.sample.generate("tiny", seed=3, out=tmp_path / "w")  # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
    ['cosmos', 'era5land', 'era5land_hourly', 'ismn', 'mswep', 'mswx', 'products', 'sources.yml', 'static', 'truth.nc', 'world.json']
    """
    cfg = make_config(preset, **overrides)
    out = pathlib.Path(out).expanduser()
    if overwrite and (out / "world.json").exists():
        for name in (
            "cosmos",
            "era5land",
            "era5land_hourly",
            "ismn",
            "mswep",
            "mswx",
            "products",
            "static",
        ):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("truth.nc", "world.json", "sources.yml"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    ww = _WorldWriter(cfg, seed, out, progress)
    ww.place_stations()
    n_era5_bands = len(
        _Bands(cfg.grid.nlat + 1, ww.bands.size if cfg.band_rows else cfg.grid.nlat + 1)
    )
    total = 1 + len(ww.bands) + n_era5_bands + len(PRODUCTS) + len(ww.ismn) + 1
    clock = _Clock()
    with _progress(total, progress, f"sample world {preset!r}") as bar:
        with clock("statics"):
            ww.write_statics()
        bar.update(1)
        with clock("truth, mswep, mswx"):
            ww.write_target_grid(bar)
        with clock("era5land"):
            ww.write_era5(bar)
        with clock("products"):
            products = ww.write_products(bar)
        with clock("ismn"):
            ww.write_ismn(bar)
        with clock("cosmos"):
            ww.write_cosmos()
        ww.write_manifest(products)
        # the world's sources file: `xsomo prepare --sources world/sources.yml` (docs/own_data.md)
        from xsomo.io.sources import SOURCES_FILE, sources_for_world, write_sources

        write_sources(sources_for_world(out, json.loads((out / "world.json").read_text())), out / SOURCES_FILE)
        bar.update(1)
    log.info("sample world %r written to %s; CPU seconds per step: %s", preset, out, clock.report())
    return out


class _Clock:
    """CPU and wall time per step (logged at INFO level)."""

    def __init__(self) -> None:
        self.steps: dict[str, tuple[float, float]] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = (time.process_time() - c0, time.perf_counter() - w0)

    def report(self) -> str:
        return ", ".join(f"{k} {c:.1f} (wall {w:.1f})" for k, (c, w) in self.steps.items())


def summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Counts and size of a written world (cells, stations, sensors, period, bytes on disk)."""
    path = pathlib.Path(path)
    man = json.loads((path / "world.json").read_text())
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {
        "path": str(path),
        "preset": man["preset"],
        "seed": man["seed"],
        "grid": f"{man['shape']['lat']} x {man['shape']['lon']} cells of {man['grid']['resolution']} deg",
        "land_cells": man["n_land_cells"],
        "land_cells_by_region": man["n_land_cells_by_region"],
        "ismn_stations": len(man["ismn_stations"]),
        "ismn_sensors": sum(len(s["sensors"]) for s in man["ismn_stations"]),
        "cosmos_stations": len(man["cosmos_stations"]),
        "period": f"{man['period']['start']} .. {man['period']['end']}",
        "hourly_period": f"{man['hourly_period']['start']} .. {man['hourly_period']['end']}",
        "bytes": size,
    }


__all__ = ["ERA5_THICKNESS_MM", "FORMAT_VERSION", "PRODUCTS", "generate", "summary"]
