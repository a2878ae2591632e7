"""Geography, static fields and daily weather of a sample world, evaluable at any points.

:class:`World` holds the random draws of one seed (field modes, AR amplitudes, storm
and drought events). Every quantity is a function of position and day, so the target
grid, ERA5-Land's shifted grid, the product grids and the fine static grids are all
views of one world.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from xsomo.sample.config import WorldConfig
from xsomo.sample.fields import DynamicField, Events, SmoothField, rng_for

_FREEZE_K = 273.15
SIGMA_SB = 5.670374419e-8

# stream ids of the random generator, one per purpose (never reuse a number)
_S_GEO, _S_ELEV, _S_ROUGH, _S_SOIL, _S_VEG, _S_LC, _S_CLIM = range(1, 8)
_S_WT, _S_WP, _S_WA, _S_WC, _S_STORM, _S_DROUGHT, _S_REANALYSIS = range(20, 27)


def toa_radiation(lat: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily mean extraterrestrial radiation (W m-2), FAO-56 eq. 21, ``(time, point)``."""
    phi = np.radians(np.asarray(lat, float))[None, :]
    j = np.asarray(doy, float)[:, None]
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    decl = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1.0, 1.0))
    gsc = 1367.0
    return (
        gsc
        / np.pi
        * dr
        * (ws * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(ws))
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class World:
    """The random state of one sample world (config + seed).

    Parameters
    ----------
    config
        World configuration (grid, period, ...).
    seed
        Any integer; the same seed gives the same world.
    """

    def __init__(self, config: WorldConfig, seed: int) -> None:
        self.config = config
        self.seed = int(seed)
        g = config.grid
        self.grid = g
        self.time = config.time
        self.spinup = int(config.spinup_days)
        #: extended daily axis: spin-up days, then the world's period
        self.time_ext = pd.date_range(
            self.time[0] - pd.Timedelta(days=self.spinup), self.time[-1], freq="D"
        )
        n_ext = self.time_ext.size
        span = max(g.east - g.west, g.north - g.south)
        # wavelengths scale with the domain, so a small world still has structure
        big = max(span, 2.0)
        r = lambda s: rng_for(self.seed, s)  # noqa: E731
        self.f_coast = SmoothField(r(_S_GEO), n_modes=24, wavelength=(0.3 * big / 4, big))
        self.f_elev = SmoothField(r(_S_ELEV), n_modes=48, wavelength=(0.4, 1.5 * big), slope=1.2)
        self.f_mount = SmoothField(r(_S_ELEV + 100), n_modes=24, wavelength=(1.0, 2.0 * big))
        self.f_rough = SmoothField(r(_S_ROUGH), n_modes=64, wavelength=(0.015, 0.25), slope=0.6)
        rs = r(_S_SOIL)
        self.f_sand = SmoothField(rs, n_modes=48, wavelength=(0.3, big), slope=0.8)
        self.f_clay = SmoothField(rs, n_modes=48, wavelength=(0.3, big), slope=0.8)
        self.f_sub = SmoothField(rs, n_modes=32, wavelength=(0.3, big), slope=0.8)
        rv = r(_S_VEG)
        self.f_forest = SmoothField(rv, n_modes=48, wavelength=(0.2, big), slope=0.8)
        self.f_short = SmoothField(rv, n_modes=32, wavelength=(0.2, big), slope=0.8)
        self.f_lc = SmoothField(r(_S_LC), n_modes=96, wavelength=(0.01, 0.08), slope=0.3)
        rc = r(_S_CLIM)
        self.f_pclim = SmoothField(rc, n_modes=32, wavelength=(0.8, 2 * big))
        self.f_tclim = SmoothField(rc, n_modes=32, wavelength=(0.8, 2 * big))
        # weather: temperature, precipitation occurrence, amount, cloud (AR(1) per mode)
        self.w_t = DynamicField(r(_S_WT), n_ext, n_modes=24, wavelength=(1.0, 4 * big), phi=0.8)
        self.w_p = DynamicField(
            r(_S_WP), n_ext, n_modes=48, wavelength=(0.3, 2 * big), phi=0.45, slope=0.7
        )
        self.w_a = DynamicField(
            r(_S_WA), n_ext, n_modes=32, wavelength=(0.2, big), phi=0.3, slope=0.6
        )
        self.w_c = DynamicField(r(_S_WC), n_ext, n_modes=24, wavelength=(0.5, 2 * big), phi=0.5)
        self.storms = self._draw_storms(r(_S_STORM), n_ext)
        self.droughts = self._draw_droughts(r(_S_DROUGHT), n_ext)
        #: the reanalysis' own precipitation error (ERA5-Land does not see the true rain exactly)
        self.w_reanalysis = DynamicField(
            r(_S_REANALYSIS), n_ext, n_modes=24, wavelength=(0.4, 2 * big), phi=0.3
        )

    # ------------------------------------------------------------------ events
    def _area(self) -> float:
        g = self.grid
        return (g.east - g.west) * (g.north - g.south)

    def _draw_storms(self, rng: np.random.Generator, n_ext: int) -> Events:
        g = self.grid
        years = n_ext / 365.25
        n = rng.poisson(max(self._area() * 0.5, 10.0) * years)
        # summer-heavy seasonality (convective storms) by rejection
        day = rng.integers(0, n_ext, size=4 * n + 8)
        doy = self.time_ext[day].day_of_year.to_numpy()
        keep = rng.uniform(0, 1, day.size) < 0.5 * (
            1 + 0.7 * np.cos(2 * np.pi * (doy - 215) / 365.25)
        )
        day = day[keep][:n]
        n = day.size
        return Events(
            day=day,
            duration=rng.integers(1, 3, n),
            lat=rng.uniform(g.south - 0.5, g.north + 0.5, n),
            lon=rng.uniform(g.west - 0.5, g.east + 0.5, n),
            radius=rng.uniform(0.15, 0.7, n),
            intensity=rng.lognormal(np.log(35.0), 0.5, n),
        )

    def _draw_droughts(self, rng: np.random.Generator, n_ext: int) -> Events:
        g = self.grid
        years = int(np.ceil(n_ext / 365.25))
        per_year = max(self._area() * 0.02, 0.7)
        days, durs = [], []
        for y in range(years):
            for _ in range(rng.poisson(per_year)):
                days.append(int(y * 365.25 + rng.uniform(100, 230)))
                durs.append(int(rng.uniform(21, 70)))
        n = len(days)
        span = max(g.east - g.west, g.north - g.south)
        return Events(
            day=np.array(days, int),
            duration=np.array(durs, int),
            lat=rng.uniform(g.south, g.north, n),
            lon=rng.uniform(g.west, g.east, n),
            radius=rng.uniform(0.25, 0.6, n) * max(span, 3.0),
            intensity=rng.uniform(0.6, 1.0, n),
            ramp=7,
        )

    # ------------------------------------------------------------------ geography
    def _rel(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = self.grid
        u = (np.asarray(lon, float) - g.west) / (g.east - g.west)
        v = (np.asarray(lat, float) - g.south) / (g.north - g.south)
        return u, v

    def geography(self, lat: np.ndarray, lon: np.ndarray) -> dict[str, np.ndarray]:
        """Land mask, region (0 sea, 1 "us", 2 "europe") and region-relative coordinates.

        ``u`` runs west to east over the grid (0-1), ``vr`` south to north inside each
        region (0-1); ``coast`` is the distance-like land margin (positive on land).
        """
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float)
        u, v = self._rel(lat, lon)
        half = self.config.sea_strip / 2.0
        wiggle = 0.25 * self.config.sea_strip * self.f_coast(lat, lon)
        centre = 0.47 + wiggle
        south_top = centre - half
        north_bottom = centre + half
        region = np.where(v < south_top, 1, np.where(v > north_bottom, 2, 0)).astype(np.int8)
        # a few bays and lakes
        bays = self.f_coast(lat + 17.3, lon - 5.1) < -2.3
        region = np.where(bays, 0, region).astype(np.int8)
        vr = np.where(
            region == 1,
            v / np.maximum(south_top, 1e-6),
            (v - north_bottom) / np.maximum(1 - north_bottom, 1e-6),
        )
        return {"land": region > 0, "region": region, "u": u, "vr": np.clip(vr, 0.0, 1.0)}

    # ------------------------------------------------------------------ statics
    def elevation_large(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Large-scale elevation (m): the cell-mean part of the DEM."""
        geo = self.geography(lat, lon)
        base = np.where(geo["region"] == 1, 450.0, 250.0)
        mount = np.tanh(0.6 * np.clip(self.f_mount(lat, lon), 0.0, None) ** 1.5)
        relief = 200.0 * self.f_elev(lat, lon) + 1100.0 * mount
        return np.maximum(base + relief, 2.0)

    def ruggedness(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Amplitude (m) of the sub-grid relief: larger in mountains."""
        mount = np.clip(self.f_mount(lat, lon), 0.0, None)
        return 15.0 + 220.0 * mount

    def dem(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Fine DEM (m): large-scale elevation plus sub-grid relief."""
        return np.maximum(
            self.elevation_large(lat, lon) + self.ruggedness(lat, lon) * self.f_rough(lat, lon), 0.0
        )

    def texture(self, lat: np.ndarray, lon: np.ndarray) -> dict[str, np.ndarray]:
        """Sand and clay fractions (0-1) of topsoil (0-30 cm) and subsoil (30-100 cm)."""
        geo = self.geography(lat, lon)
        arid = geo["region"] == 1
        s = self.f_sand(lat, lon)
        sand_top = np.clip(np.where(arid, 0.50, 0.35) + 0.17 * s, 0.05, 0.92)
        clay_share = _sigmoid(0.9 * self.f_clay(lat, lon) - np.where(arid, 0.6, 0.1))
        clay_top = np.clip((1.0 - sand_top) * (0.15 + 0.55 * clay_share), 0.03, 0.6)
        sub = self.f_sub(lat, lon)
        sand_sub = np.clip(sand_top - 0.04 + 0.06 * sub, 0.03, 0.93)
        clay_sub = np.clip(np.minimum(clay_top + 0.05 - 0.04 * sub, 0.95 - sand_sub), 0.03, 0.65)
        return {
            "sand_top": sand_top,
            "clay_top": clay_top,
            "sand_sub": sand_sub,
            "clay_sub": clay_sub,
        }

    def vegetation(self, lat: np.ndarray, lon: np.ndarray) -> dict[str, np.ndarray]:
        """Cell-scale forest and short-vegetation fractions (0-1), wetter climates more forested."""
        clim = self.climate(lat, lon)
        humid = np.clip((clim["p_mean"] - 0.8) / 2.5, 0.0, 1.0)
        forest = np.clip(
            _sigmoid(1.5 * self.f_forest(lat, lon) + 3.0 * humid - 2.2) * 0.95, 0.0, 0.95
        )
        short_share = np.clip(0.45 + 0.5 * humid + 0.12 * self.f_short(lat, lon), 0.1, 0.98)
        short = np.clip((1.0 - forest) * short_share, 0.0, 1.0 - forest)
        return {"forest": forest, "shortveg": short}

    def landcover(self, lat: np.ndarray, lon: np.ndarray) -> dict[str, np.ndarray]:
        """Fine land cover: 0/1 forest and short-vegetation indicators at fine points.

        A small-scale field is compared with the cell-scale fractions, so averaging
        the indicators over a cell recovers (approximately) the cell fractions.
        """
        veg = self.vegetation(lat, lon)
        # map the small-scale Gaussian field to a uniform variate
        from scipy.special import ndtr

        q = ndtr(self.f_lc(lat, lon))
        forest = q < veg["forest"]
        short = (~forest) & (q < veg["forest"] + veg["shortveg"])
        return {"forest": forest.astype(np.float32), "shortveg": short.astype(np.float32)}

    # ------------------------------------------------------------------ climate
    def climate(self, lat: np.ndarray, lon: np.ndarray) -> dict[str, np.ndarray]:
        """Climatological parameters at the points.

        Returns mean air temperature ``t_mean`` (K) and seasonal amplitude ``t_amp``,
        mean precipitation ``p_mean`` (mm d-1), its seasonality ``p_season`` (relative
        amplitude, phase ``p_peak`` day of year), wet-day probability ``p_wet``, and the
        ``region``.
        """
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float)
        geo = self.geography(lat, lon)
        u, vr, region = geo["u"], geo["vr"], geo["region"]
        us = region == 1
        elev_km = self.elevation_large(lat, lon) / 1000.0
        tc = self.f_tclim(lat, lon)
        pc = self.f_pclim(lat, lon)
        # "us": warm and mostly arid, wetter to the east; "europe": moderate, humid west, cold north
        t_mean_c = (
            np.where(us, 19.0 - 6.0 * vr + 1.0 * tc, 11.0 - 10.0 * vr + 1.0 * tc) - 6.5 * elev_km
        )
        t_amp = np.where(us, 8.0 + 4.0 * u, 7.0 + 5.0 * u + 3.0 * vr)
        p_mean = np.where(
            us, 0.45 + 1.6 * u**1.6 + 0.25 * vr, 1.5 + 1.5 * (1.0 - u) + 0.5 * (1 - vr)
        )
        p_mean = p_mean * np.exp(0.18 * pc) * (1.0 + 0.6 * elev_km)
        p_season = np.where(us, 0.55, 0.2)
        # "europe": rain peaks in late autumn in the west (Atlantic) and in summer in the east;
        # the peak day moves smoothly with u (a step at u = 0.5 drew a straight seam)
        shift = np.clip((u - 0.25) / 0.5, 0.0, 1.0)
        shift = shift * shift * (3.0 - 2.0 * shift)
        p_peak = np.where(us, 15.0, 320.0 - 130.0 * shift)
        p_wet = np.clip(
            np.where(us, 0.12 + 0.18 * u, 0.32 + 0.15 * (1 - u)) * np.exp(0.1 * pc), 0.05, 0.7
        )
        return {
            "t_mean": t_mean_c + _FREEZE_K,
            "t_amp": t_amp,
            "p_mean": p_mean,
            "p_season": p_season,
            "p_peak": p_peak,
            "p_wet": p_wet,
            "region": region,
        }

    # ------------------------------------------------------------------ weather
    def weather(
        self,
        lat: np.ndarray,
        lon: np.ndarray,
        t0: int = 0,
        t1: int | None = None,
        *,
        block: int = 256,
    ) -> dict[str, np.ndarray]:
        """Daily weather ``(time, point)`` on days ``t0 .. t1-1`` of the extended axis.

        Returns ``tair`` (K), ``precip`` (mm d-1), ``sw_net``, ``lw_net``, ``rnet``
        (W m-2, daily means, net shortwave positive down, net longwave negative),
        ``cloud`` (0-1), ``drought`` (0-1 drought intensity) and ``storm`` (mm d-1 of
        storm precipitation before the drought damping), all float32. The work is done
        in blocks of ``block`` days (the result does not depend on it).
        """
        lat = np.asarray(lat, float).ravel()
        lon = np.asarray(lon, float).ravel()
        t1 = self.time_ext.size if t1 is None else t1
        n = lat.size
        clim = self.climate(lat, lon)
        names = ("tair", "precip", "sw_net", "lw_net", "rnet", "cloud", "drought", "storm")
        out = {k: np.empty((t1 - t0, n), np.float32) for k in names}
        # radiation geometry per day of year, looked up per day
        toa = toa_radiation(lat, np.arange(1, 367)).astype(np.float32)
        f32 = lambda a: np.asarray(a, np.float32)[None, :]  # noqa: E731
        t_mean, t_amp = f32(clim["t_mean"]), f32(clim["t_amp"])
        p_mean, p_wet0 = f32(clim["p_mean"]), f32(clim["p_wet"])
        p_season, p_peak = f32(clim["p_season"]), f32(clim["p_peak"])
        t_sd = f32(2.2 + 1.0 * (clim["region"] == 2))
        bases = {
            key: getattr(self, key).space.basis(lat, lon) for key in ("w_t", "w_p", "w_a", "w_c")
        }
        # the wet-day seasonality depends on the day of year only: per calendar day once
        # (the same float32 operations as per day; the inverse normal CDF is the costly one)
        doy_all = np.arange(1, 367, dtype=np.float32)[:, None]
        pseas_doy = 1.0 + p_season * np.cos(np.float32(2 * np.pi / 365.25) * (doy_all - p_peak))
        p_wet_doy = np.clip(p_wet0 * pseas_doy, 0.02, 0.9)
        quantile_doy = ndtri(1.0 - p_wet_doy).astype(np.float32)
        for b0 in range(t0, t1, block):
            b1 = min(t1, b0 + block)
            o = slice(b0 - t0, b1 - t0)
            doy = self.time_ext[b0:b1].day_of_year.to_numpy()
            doyf = doy.astype(np.float32)[:, None]
            season = np.cos(np.float32(2 * np.pi / 365.25) * (doyf - 200.0))
            z = {
                # float64 products rounded to float32: the same point gets the same value in any block
                key: ((getattr(self, key).series[b0:b1] @ bases[key]) * np.sqrt(0.5)).astype(
                    np.float32
                )
                for key in bases
            }
            drought = np.minimum(self.droughts(lat, lon, b0, b1), 1.0)
            storm = self.storms(lat, lon, b0, b1)
            stormy = storm > 2.0

            # precipitation: occurrence by thresholding a persistent latent field, gamma-like amounts
            pseas, p_wet = pseas_doy[doy - 1], p_wet_doy[doy - 1]
            thresh = quantile_doy[doy - 1] + 2.2 * drought
            excess = z["w_p"] - thresh
            amount = (
                (p_mean * pseas / p_wet)
                * np.exp(0.75 * z["w_a"] - 0.28)
                * (0.6 + 0.4 * np.clip(excess, 0.0, 2.5))
            )
            precip = np.where(excess > 0, amount, 0.0) + np.where(
                stormy, storm * (1.0 - 0.8 * drought), 0.0
            )
            precip[precip < 0.1] = 0.0

            # clouds follow the precipitation field; droughts are sunny
            cloud = _sigmoid(1.3 * z["w_p"] + 0.6 * z["w_c"] - 0.3 - 1.5 * drought + 0.8 * stormy)

            # air temperature: seasonal cycle, persistent anomalies, cloud and drought effects
            tair = (
                t_mean
                + t_amp * season
                + t_sd * z["w_t"]
                - 2.5 * (cloud - 0.5) * (0.3 + season)
                + 3.0 * drought
            )

            # radiation: clear sky from the sun's geometry, clouds, albedo; FAO-56 net longwave
            rso = 0.75 * toa[doy - 1]
            rs = rso * (1.0 - 0.68 * cloud)
            sw_net = 0.8 * rs
            ea = 0.65 * saturation_vp(tair) * (0.7 + 0.4 * cloud) * (1.0 - 0.3 * drought)
            ratio = np.clip(rs / np.maximum(rso, 1.0), 0.25, 1.0)
            lw_net = (
                -np.float32(SIGMA_SB)
                * tair**4
                * (0.34 - 0.14 * np.sqrt(ea))
                * (1.35 * ratio - 0.35)
            )
            for key, val in (
                ("tair", tair),
                ("precip", precip),
                ("sw_net", sw_net),
                ("lw_net", lw_net),
                ("rnet", sw_net + lw_net),
                ("cloud", cloud),
                ("drought", drought),
                ("storm", storm),
            ):
                out[key][o] = val
        return out


def saturation_vp(t_kelvin: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure (kPa) over water, keeping the input's float type."""
    tc = t_kelvin - np.asarray(_FREEZE_K, dtype=np.asarray(t_kelvin).dtype)
    return 0.6108 * np.exp(17.27 * tc / (tc + 237.3))


__all__ = ["World", "toa_radiation"]
