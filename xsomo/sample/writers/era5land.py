"""ERA5-Land-style files of the sample world: daily (one file a year) and hourly (one a month).

ERA5-Land's own land model runs on its points (multiples of 0.1°, latitude descending)
with its own layers (0-7, 7-28, 28-100 cm), a coarse soil map and its own precipitation
error; the fields are packed into int16 as in ECMWF's netCDF files. The hourly files
hold the daily fields disaggregated with diurnal cycles, accumulations since 00 UTC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xsomo.io.netcdf import NcWriter, Var, time_coord
from xsomo.sample import physics as ph
from xsomo.sample.writers.common import (
    S_ERA5_HOURLY,
    Bands,
    WorldContext,
    row_random,
    year_slices,
)

__all__ = ["ERA5_ATTRS", "ERA5_THICKNESS_MM", "era5_grid", "run_era5", "write_era5"]

#: ERA5-Land soil layer thicknesses (mm): 0-7, 7-28, 28-100 cm.
ERA5_THICKNESS_MM = np.array([70.0, 210.0, 720.0])
#: time units of ECMWF's netCDF files
HOURS_UNITS = "hours since 1900-01-01 00:00:00.0"


#: variable attributes as in ECMWF's files
ERA5_ATTRS = {
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
#: int16 packing (scale_factor, add_offset), fixed so every band and seed packs alike
ERA5_PACK = {
    "t2m": (0.01, 260.0),
    "skt": (0.01, 260.0),
    "tp": (1.0e-5, 0.32),
    "ssr": (2000.0, 15.0e6),
    "str": (1000.0, -4.5e6),
    "swvl1": (1.0e-4, 0.4),
    "swvl2": (1.0e-4, 0.4),
    "swvl3": (1.0e-4, 0.4),
}
ERA5_PACK_HOURLY = {**ERA5_PACK, "tp": (2.0e-6, 0.06)}



def _coords(lat_e: np.ndarray, lon_e: np.ndarray, times: Any) -> dict[str, Any]:
    """ECMWF-style coordinates: ``time`` in hours since 1900, float32 lat (descending) and lon."""
    return {
        "time": time_coord(times, units=HOURS_UNITS),
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
    }


def _fields(pack: dict[str, tuple[float, float]], ny: int, nx: int, nt_chunk: int) -> dict[str, Var]:
    return {
        k: Var(
            ("time", "latitude", "longitude"),
            "f4",
            dict(ERA5_ATTRS[k]),
            packing=pack[k],
            chunks=(nt_chunk, min(ny, 100), min(nx, 200)),
        )
        for k in ERA5_ATTRS
    }


def open_daily(ctx: WorldContext, lat_e: np.ndarray, lon_e: np.ndarray) -> dict[int, NcWriter]:
    """The daily writers, one a year (``era5land/era5land_<YYYY>.nc``)."""
    ny, nx = lat_e.size, lon_e.size
    daily: dict[int, NcWriter] = {}
    try:
        for y, s in year_slices(ctx.time):
            daily[y] = NcWriter(
                ctx.layout.era5land_year(y),
                dims={"time": s.stop - s.start, "latitude": ny, "longitude": nx},
                coords=_coords(lat_e, lon_e, ctx.time[s]),
                variables={
                    **_fields(ERA5_PACK, ny, nx, 366),
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
                    **ctx.attrs("ERA5-Land-style daily fields"),
                    "history": "daily means (t2m, skt, swvl*) and daily sums (tp, ssr, str) of ERA5-Land-style hourly data",
                },
                complevel=ctx.complevel,
            )
    except BaseException:
        for w in daily.values():
            w.abort()
        raise
    return daily


def open_hourly(
    ctx: WorldContext, lat_e: np.ndarray, lon_e: np.ndarray
) -> dict[tuple[int, int], tuple[NcWriter, pd.DatetimeIndex]]:
    """The hourly writers of the hourly period, one a month, with their hours."""
    ny, nx = lat_e.size, lon_e.size
    hourly_days = pd.date_range(ctx.cfg.hourly_start, ctx.cfg.hourly_end, freq="D")
    months = sorted({(d.year, d.month) for d in hourly_days})
    hourly: dict[tuple[int, int], tuple[NcWriter, pd.DatetimeIndex]] = {}
    try:
        for ym in months:
            days = hourly_days[(hourly_days.year == ym[0]) & (hourly_days.month == ym[1])]
            hrs = pd.date_range(days[0], days[-1] + pd.Timedelta(hours=23), freq="h")
            hourly[ym] = (
                NcWriter(
                    ctx.layout.era5land_hourly_month(*ym),
                    dims={"time": hrs.size, "latitude": ny, "longitude": nx},
                    coords=_coords(lat_e, lon_e, hrs),
                    variables=_fields(ERA5_PACK_HOURLY, ny, nx, 24),
                    attrs={
                        **ctx.attrs("ERA5-Land-style hourly fields"),
                        "history": "tp, ssr, str are accumulated since 00 UTC; the 00 UTC value holds the previous day's total",
                    },
                    complevel=ctx.complevel,
                ),
                hrs,
            )
    except BaseException:
        for w, _ in hourly.values():
            w.abort()
        raise
    return hourly


def write_era5(ctx: WorldContext, bar: Any) -> None:
    """Write ``era5land/`` (daily) and ``era5land_hourly/`` band by band."""
    lat_e, lon_e, lsm = era5_grid(ctx)
    ny, nx = lat_e.size, lon_e.size
    years = year_slices(ctx.time)
    writers: list[NcWriter] = []
    try:
        daily = open_daily(ctx, lat_e, lon_e)
        writers += daily.values()
        hourly = open_hourly(ctx, lat_e, lon_e)
        writers += [h[0] for h in hourly.values()]
        for wtr in daily.values():
            wtr.write("lsm", slice(None), lsm[::-1].astype(np.float32))
        for band in Bands(ny, ctx.bands.size if ctx.cfg.band_rows else ny):
            rows, cols = np.nonzero(lsm[band])
            n_rows = band.stop - band.start
            frows = slice(ny - band.stop, ny - band.start)
            if rows.size:
                lat = lat_e[rows + band.start]
                lon = lon_e[cols]
                fields, aux = run_era5(ctx, lat, lon)
                for y, s in years:
                    for k in ERA5_ATTRS:
                        blk = np.full((s.stop - s.start, n_rows, nx), np.nan, np.float32)
                        blk[:, rows, cols] = fields[k][s]
                        daily[y].write(k, (slice(None), frows, slice(None)), blk[:, ::-1])
                write_hourly_band(
                    ctx, hourly, fields, aux, lat, lon, rows, cols, n_rows, nx, frows, band.start
                )
            bar.update(1)
        for wtr in writers:
            wtr.close()
    except BaseException:
        for wtr in writers:
            wtr.abort()
        raise


def era5_grid(ctx: WorldContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ERA5-Land points (multiples of 0.1°) around the target grid and their land-sea mask."""
    g = ctx.grid
    lat_e = np.round(g.south + g.resolution * np.arange(g.nlat + 1), 6)
    lon_e = np.round(g.west + g.resolution * np.arange(g.nlon + 1), 6)
    land = ctx.land
    pad = np.zeros((g.nlat + 2, g.nlon + 2), bool)
    pad[1:-1, 1:-1] = land
    # point (i, j) touches target cells (i-1..i, j-1..j)
    lsm = pad[:-1, :-1] | pad[1:, :-1] | pad[:-1, 1:] | pad[1:, 1:]
    return lat_e, lon_e, lsm


def run_era5(
    ctx: WorldContext, lat: np.ndarray, lon: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """ERA5-Land's own land model: its layers, a coarse soil map and its own precipitation bias."""
    w = ctx.world
    wx = w.weather(lat, lon)
    veg = w.vegetation(lat, lon)
    soil = ph.soil_parameters(*ctx.coarse_texture(lat, lon))
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
        spinup_days=ctx.spin,
        keep_fluxes=("et", "swe"),
        runoff_shape=6.0,
        interception_mm=0.5,
    )
    sl = slice(ctx.spin, None)
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


def write_hourly_band(
    ctx: WorldContext,
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
    time = ctx.time
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
            row_random(
                ctx.seed,
                (S_ERA5_HOURLY, int(d_idx[0])),
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

