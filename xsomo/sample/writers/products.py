"""Stand-in gridded soil-moisture products of the sample world (``products/<name>/<name>_<YYYY>.nc``).

Each product runs its own soil model (its layers, soil map and forcing error) on its own
grid and adds its error model; see :data:`PRODUCTS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from xsomo.conventions import LAYERS, SM_ATTRS, GridSpec
from xsomo.io.netcdf import NcWriter, Var, lat_coord, lon_coord, time_coord, trim_mantissa
from xsomo.sample import physics as ph
from xsomo.sample.config import REGIONS
from xsomo.sample.writers.common import (
    S_PRODUCT,
    S_PRODUCT_FORCING,
    Bands,
    WorldContext,
    row_random,
    year_slices,
)

__all__ = ["PRODUCTS", "PRODUCT_NOISE_LAYER_CORRELATION", "product_grid", "write_products"]

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


def product_grid(ctx: WorldContext, name: str) -> tuple[GridSpec, pd.DatetimeIndex]:
    spec = PRODUCTS[name]
    g = ctx.grid
    res = spec["resolution"]
    south, north = g.south, g.north
    west, east = g.west, g.east
    if spec["region"] is not None:
        # a box of at most clmda_box degrees around the middle of the region
        rows, cols = np.nonzero(ctx.region == spec["region"])
        half = round(ctx.cfg.clmda_box / 2 / g.resolution)
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
    time = ctx.time
    if spec["years"] == "clmda":
        years = ctx.cfg.years[-ctx.cfg.clmda_years :]
        time = time[time.year >= years[0]]
    return grid, time

def write_products(ctx: WorldContext, bar: Any) -> dict[str, Any]:
    info = {}
    for name, spec in PRODUCTS.items():
        grid, time = product_grid(ctx, name)
        geo = ctx.world.geography(*np.meshgrid(grid.lat, grid.lon, indexing="ij"))
        land = geo["land"] if spec["region"] is None else geo["region"] == spec["region"]
        t_first = ctx.world.time_ext.get_loc(time[0])
        t0 = max(0, t_first - ctx.spin)
        years = year_slices(time)
        writers = {
            y: NcWriter(
                ctx.layout.product_year(name, y),
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
                    **ctx.attrs(f"{name}: stand-in gridded soil-moisture product"),
                    "resolution": f"{grid.resolution} degree",
                },
                complevel=ctx.complevel,
            )
            for y, s in years
        }
        try:
            rows_per_band = max(
                1, round(ctx.bands.size * ctx.grid.resolution / grid.resolution)
            )
            if name == "clmda_like":
                rows_per_band = max(1, 40_000 // max(grid.nlon, 1))
            for band in Bands(grid.nlat, rows_per_band):
                rows, cols = np.nonzero(land[band])
                if rows.size:
                    lat = grid.lat[rows + band.start]
                    lon = grid.lon[cols]
                    wx = ctx.world.weather(lat, lon, t0, t_first + time.size)
                    precip = product_precip(
                        ctx,
                        name, wx["precip"], lat, lon, rows + band.start, cols, t0, grid.nlon
                    )
                    soil, forest, veg = ctx.truth_statics(lat, lon)
                    if spec["soil"] == "gleam":
                        soil = ph.soil_parameters(*ctx.gleam_texture(lat, lon))
                    elif spec["soil"] == "coarse":
                        soil = ph.soil_parameters(*ctx.coarse_texture(lat, lon))
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
                    z = row_random(
                        ctx.seed,
                        (S_PRODUCT, list(PRODUCTS).index(name)),
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

def product_precip(
    ctx: WorldContext,
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
        w = ctx.world.w_reanalysis(lat, lon, slice(t0, t0 + precip.shape[0]))
        err = np.exp(np.float32(scale) * w - np.float32(scale**2 / 2))
        return (precip * err).astype(np.float32)
    if kind == "gauge":
        z = row_random(
            ctx.seed,
            (S_PRODUCT_FORCING, list(PRODUCTS).index(name)),
            rows,
            cols,
            precip.shape[:1],
            nlon,
        )
        return (precip * np.exp(np.float32(scale) * z - np.float32(scale**2 / 2))).astype(
            np.float32
        )
    raise ValueError(f"unknown product forcing {kind!r} of {name}")

