"""The truth (``truth.nc``), the forcing written in the same pass, and the manifest (``world.json``).

:func:`write_target_grid` runs the true soil water balance band by band on the target
grid and writes ``truth.nc`` together with the MSWEP/MSWX-style forcing derived from the
same weather (:mod:`xsomo.sample.writers.msw`); it keeps the daily series of the station
cells for the ISMN and COSMOS writers. :func:`write_manifest` writes ``world.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xsomo.conventions import LAYERS, SM_ATTRS
from xsomo.io import world as io_world
from xsomo.io.netcdf import NcWriter, Var, lat_coord, lon_coord, time_coord, trim_mantissa
from xsomo.sample.config import REGIONS
from xsomo.sample.writers import msw
from xsomo.sample.writers.common import S_MSW, WorldContext, row_random, year_slices

__all__ = ["TruthFile", "write_manifest", "write_target_grid"]


class TruthFile:
    """``truth.nc``: true soil moisture ``sm(time, layer, lat, lon)`` with its bounds, mask and regions."""

    def __init__(self, ctx: WorldContext) -> None:
        g = ctx.grid
        time = ctx.time
        nt = time.size
        lay = len(LAYERS)
        self.nlon = g.nlon
        tcoord = time_coord(time)
        self.nc = NcWriter(
            ctx.layout.truth,
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
                    chunks=(366, 1, ctx.bands.size, min(g.nlon, 200)),
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
            attrs=ctx.attrs("sample world truth: soil moisture of three layers"),
            complevel=ctx.complevel,
        )
        try:
            self.nc.write("depth_top", slice(None), np.array([la.top for la in LAYERS]))
            self.nc.write("depth_bottom", slice(None), np.array([la.bottom for la in LAYERS]))
            self.nc.write("land_mask", slice(None), ctx.land.astype(np.int8))
            self.nc.write("region", slice(None), ctx.region)
        except BaseException:
            self.nc.abort()
            raise

    def write_bounds(
        self, band: slice, rows: np.ndarray, cols: np.ndarray, porosity: np.ndarray, residual: np.ndarray
    ) -> None:
        """Porosity and residual ``(layer, point)`` at band-relative ``rows, cols``."""
        full = np.full((len(LAYERS), band.stop - band.start, self.nlon), np.nan, np.float32)
        for name, arr in (("porosity", porosity), ("residual", residual)):
            full[:] = np.nan
            full[:, rows, cols] = arr
            self.nc.write(name, (slice(None), band, slice(None)), full)

    def write_sm(
        self, times: slice, band: slice, rows: np.ndarray, cols: np.ndarray, theta: np.ndarray
    ) -> None:
        """Soil moisture ``(time, layer, point)`` for the ``times`` slice of the period."""
        blk = np.full(
            (times.stop - times.start, len(LAYERS), band.stop - band.start, self.nlon),
            np.nan,
            np.float32,
        )
        blk[:, :, rows, cols] = theta
        self.nc.write("sm", (times, slice(None), band, slice(None)), blk)

    def close(self) -> None:
        """Move the file into place."""
        self.nc.close()

    def abort(self) -> None:
        """Remove the temporary file."""
        self.nc.abort()


def write_target_grid(ctx: WorldContext, bar: Any) -> None:
    """Write ``truth.nc``, ``mswep/`` and ``mswx/Temp/``; keep the station cells' series."""
    g = ctx.grid
    nt = ctx.time.size
    years = year_slices(ctx.time)
    lay = ctx.layout
    writers: list[Any] = []
    try:
        truth = TruthFile(ctx)
        writers.append(truth)
        mswep = msw.YearlyForcing(ctx, msw.MSWEP, lay.mswep_year, years)
        writers.append(mswep)
        mswx = msw.YearlyForcing(ctx, msw.MSWX_TEMP, lay.mswx_temp_year, years)
        writers.append(mswx)
        for band in ctx.bands:
            rows, cols = np.nonzero(ctx.land[band])
            rows_g = rows + band.start
            if rows.size:
                lat = g.lat[rows_g]
                lon = g.lon[cols]
                wx, res, soil = ctx.run_truth(lat, lon)
                # stored with 12 mantissa bits (relative 2.4e-4) inside the stored bounds
                por_q = trim_mantissa(soil.porosity)
                res_q = trim_mantissa(soil.residual)
                theta = np.clip(trim_mantissa(res["theta"]), res_q[None], por_q[None])
                # precipitation and temperature products with their own small errors
                wxs = {k: v[ctx.spin :] for k, v in wx.items() if k in ("precip", "tair")}
                z = row_random(ctx.seed, (S_MSW,), rows_g, cols, (2, nt), g.nlon).astype(
                    np.float32
                )
                p_err = np.exp(np.float32(0.12) * z[0])
                mswep_p = trim_mantissa(wxs["precip"] * 0.97 * p_err, 10)
                mswx_t = trim_mantissa(
                    wxs["tair"] - np.float32(273.15) + np.float32(0.25) * z[1] - np.float32(0.2),
                    12,
                )
                for r, c, k in zip(rows_g, cols, range(rows.size), strict=True):
                    if (int(r), int(c)) in ctx.keep_cells:
                        ctx.station_series[(int(r), int(c))] = {
                            "theta": theta[:, :, k].astype(np.float64),
                            "tair": wxs["tair"][:, k].astype(np.float64),
                            "swe": res["swe"][:, k],
                            "porosity": soil.porosity[:, k],
                        }
                truth.write_bounds(band, rows, cols, por_q, res_q)
                for y, s in years:
                    truth.write_sm(s, band, rows, cols, theta[s])
                    mswep.write_band(y, band, rows, cols, mswep_p[s])
                    mswx.write_band(y, band, rows, cols, mswx_t[s])
            bar.update(1)
        for wtr in writers:
            wtr.close()
    except BaseException:
        for wtr in writers:
            wtr.abort()
        raise


def write_manifest(ctx: WorldContext, products: dict[str, Any]) -> None:
    """Write ``world.json``: grid, periods, regions, stations and ``products`` (their metadata)."""
    from xsomo._version import __version__

    g = ctx.grid
    man = {
        "format_version": io_world.FORMAT_VERSION,
        "xsomo_version": __version__,
        "preset": ctx.cfg.preset,
        "seed": ctx.seed,
        "grid": {
            "west": g.west,
            "east": g.east,
            "south": g.south,
            "north": g.north,
            "resolution": g.resolution,
        },
        "shape": {"lat": g.nlat, "lon": g.nlon},
        "period": {"start": ctx.cfg.start, "end": ctx.cfg.end},
        "hourly_period": {"start": ctx.cfg.hourly_start, "end": ctx.cfg.hourly_end},
        "regions": {str(k): v for k, v in REGIONS.items()},
        "n_land_cells": int(ctx.land.sum()),
        "n_land_cells_by_region": {REGIONS[k]: int((ctx.region == k).sum()) for k in REGIONS},
        "layers": [
            {"layer": la.number, "depth_top": la.top, "depth_bottom": la.bottom}
            for la in LAYERS
        ],
        "era5land": {
            "layers": [[0.0, 0.07], [0.07, 0.28], [0.28, 1.0]],
            "grid": "points on multiples of the resolution, latitude descending",
        },
        "ismn_stations": [st.manifest() for st in ctx.ismn],
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
            for c in ctx.cosmos
        ],
        "products": products,
    }
    io_world.write_manifest(ctx.layout.root, man)


