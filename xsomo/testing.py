"""Tiny synthetic drivers, truth and targets in memory, and assert helpers.

These are for unit tests and doctests: a few cells, a few years, built in well under
a second, with soil moisture known by construction from a simple three-bucket model.
The full, physically based sample world with real file formats is :mod:`xsomo.sample`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv

if TYPE_CHECKING:
    from xsomo.model import TrainedModel

__all__ = [
    "assert_cf_attrs",
    "random_model",
    "synthetic_case",
    "synthetic_drivers",
    "synthetic_targets",
    "synthetic_truth",
]


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """AR(1) noise along axis 0 with unit stationary variance."""
    e = rng.standard_normal(shape)
    out = np.empty(shape)
    out[0] = e[0]
    s = np.sqrt(1 - phi**2)
    for t in range(1, shape[0]):
        out[t] = phi * out[t - 1] + s * e[t]
    return out


def synthetic_drivers(
    *,
    nlat: int = 4,
    nlon: int = 5,
    start: str = "2014-01-01",
    ndays: int = 3 * 365,
    seed: int = 0,
    west: float = 5.0,
    south: float = 45.0,
    sea_cells: int = 1,
    chunks: dict[str, int] | None = None,
) -> xr.Dataset:
    """A drivers Dataset (contract of docs/internals.md §2) on a small 0.1° grid.

    Parameters
    ----------
    nlat, nlon
        Grid size in cells.
    start, ndays
        Period.
    seed
        Random seed; the same seed gives the same dataset.
    sea_cells
        Number of cells in the last row marked as sea (``land_mask`` False).
    chunks
        If given, the result is dask-backed with these chunks.
    """
    rng = np.random.default_rng(seed)
    grid = cv.GridSpec(west, west + nlon * cv.RESOLUTION, south, south + nlat * cv.RESOLUTION)
    time = pd.date_range(start, periods=ndays, freq="D")
    doy = time.day_of_year.to_numpy()
    season = np.cos(2 * np.pi * (doy - 200) / 365.25)[:, None, None]
    shape = (ndays, nlat, nlon)
    # a climate gradient across the grid: warm/dry in the west, cool/wet in the east
    x = np.linspace(0, 1, nlon)[None, None, :] * np.ones((1, nlat, 1))
    tmean = 288.0 - 8.0 * x + rng.normal(0, 0.5, (1, nlat, nlon))
    tair = tmean + 9.0 * season + 3.0 * _ar1(rng, (ndays, 1, 1), 0.8) + 0.5 * rng.standard_normal(shape)
    wet_prob = 0.25 + 0.3 * x - 0.1 * season
    common = _ar1(rng, (ndays, 1, 1), 0.6)
    occurs = (rng.random(shape) * 0.5 + 0.5 * (1 / (1 + np.exp(-common)))) < wet_prob
    amount = rng.gamma(0.8, 6.0 + 4.0 * x, size=shape)
    precip = np.where(occurs, amount, 0.0)
    rnet = 90.0 + 80.0 * season + 15.0 * _ar1(rng, (ndays, 1, 1), 0.5) - 20.0 * occurs
    tskin = tair + 0.03 * rnet + rng.normal(0, 0.5, shape)
    coords = {"time": ("time", time, cv.TIME_ATTRS), **grid.coords()}
    data: dict[str, xr.DataArray] = {}
    for name, arr in (
        ("air_temperature", tair),
        ("precipitation", precip),
        ("net_radiation", rnet),
        ("skin_temperature", tskin),
    ):
        data[name] = xr.DataArray(arr.astype("float32"), dims=("time", "lat", "lon"), attrs=cv.cf_attrs(name))
    static_rng = np.random.default_rng(seed + 1)
    p_mean = precip.mean(axis=0)
    for var in cv.STATIC:
        if var.name == "precipitation_mean":
            arr = p_mean
        elif var.name == "aridity":
            arr = (rnet.mean(axis=0) * cv.SECONDS_PER_DAY / cv.LATENT_HEAT_VAPORISATION) / np.maximum(p_mean, 1e-3)
        elif var.name == "elevation_mean":
            arr = static_rng.uniform(0, 1500, (nlat, nlon))
        elif var.name == "elevation_std":
            arr = static_rng.uniform(5, 200, (nlat, nlon))
        else:
            arr = static_rng.uniform(0.05, 0.6, (nlat, nlon))
        data[var.name] = xr.DataArray(arr.astype("float32"), dims=("lat", "lon"), attrs=var.attrs)
    land = np.ones((nlat, nlon), bool)
    if sea_cells:
        land[-1, -sea_cells:] = False
    data[cv.LAND_MASK] = xr.DataArray(land, dims=("lat", "lon"), attrs={"long_name": "land mask"})
    ds = xr.Dataset(data, coords=coords, attrs={"title": "xsomo.testing synthetic drivers", "seed": seed})
    for name in cv.DYNAMIC_NAMES:
        ds[name] = ds[name].where(ds[cv.LAND_MASK])
    return ds.chunk(chunks) if chunks else ds


def synthetic_truth(drivers: xr.Dataset) -> xr.DataArray:
    """Soil moisture ``sm(layer, time, lat, lon)`` of a three-bucket model run on ``drivers``.

    Layer 1 reacts to rain within days, layer 2 within weeks, layer 3 within months
    (lag-1 autocorrelation rises with depth); all stay in [0.05, 0.45].
    """
    p = np.nan_to_num(drivers["precipitation"].values.astype(float))
    rn = np.nan_to_num(drivers["net_radiation"].values.astype(float))
    ta = np.nan_to_num(drivers["air_temperature"].values.astype(float), nan=280.0)
    sand = drivers["sand_top"].values.astype(float)
    forest = drivers["forest_fraction"].values.astype(float)
    pet = np.clip(rn, 0, None) * cv.SECONDS_PER_DAY / cv.LATENT_HEAT_VAPORISATION * 0.9
    pet *= 1 / (1 + np.exp(-(ta - 275.0) / 3.0))
    por, wp = 0.45, 0.05
    cap = np.array([100.0, 200.0, 200.0])  # mm of layer thickness
    s = np.full((3, *p.shape[1:]), 0.25)
    out = np.empty((3, *p.shape), dtype="float32")
    k = 0.25 + 0.5 * sand  # drainage coefficient per day
    root = np.stack([0.5 - 0.2 * forest, np.full_like(forest, 0.3), 0.2 + 0.2 * forest])
    for t in range(p.shape[0]):
        rel = (s - wp) / (por - wp)
        infil = p[t] * (1 - rel[0] ** 3)
        et = pet[t] * np.clip(rel, 0, 1) * root
        d1 = k * 0.4 * np.clip(s[0] - 0.2, 0, None) * cap[0]
        d2 = k * 0.05 * np.clip(s[1] - 0.2, 0, None) * cap[1]
        d3 = 0.01 * np.clip(s[2] - 0.2, 0, None) * cap[2]
        s[0] += (infil - et[0] - d1) / cap[0]
        s[1] += (d1 - et[1] - d2) / cap[1]
        s[2] += (d2 - et[2] - d3) / cap[2]
        s = np.clip(s, wp, por)
        out[:, t] = s
    coords = {
        **cv.layer_coords(),
        "time": drivers["time"],
        "lat": drivers["lat"],
        "lon": drivers["lon"],
    }
    da = xr.DataArray(out, dims=("layer", "time", "lat", "lon"), coords=coords, name=cv.SM, attrs=dict(cv.SM_ATTRS))
    return da.where(drivers[cv.LAND_MASK])


def synthetic_targets(
    truth: xr.DataArray,
    *,
    cells: int | None = None,
    seed: int = 0,
    noise: float = 0.01,
    gap_fraction: float = 0.1,
) -> xr.Dataset:
    """Targets (contract: dims cell, layer, time) sampled from ``truth`` at land cells.

    Values are truth plus Gaussian noise with a fraction of random gaps (NaN).
    """
    rng = np.random.default_rng(seed)
    stacked = truth.stack(cell=("lat", "lon")).dropna("cell", how="all")
    n = stacked.sizes["cell"] if cells is None else min(cells, stacked.sizes["cell"])
    pick = np.sort(rng.choice(stacked.sizes["cell"], size=n, replace=False))
    sub = stacked.isel(cell=pick)
    lat = sub["lat"].values
    lon = sub["lon"].values
    vals = sub.transpose("cell", "layer", "time").values.astype(float)
    vals = vals + rng.normal(0, noise, vals.shape)
    vals[rng.random(vals.shape) < gap_fraction] = np.nan
    ds = xr.Dataset(
        {cv.SM: (("cell", "layer", "time"), vals.astype("float32"), dict(cv.SM_ATTRS))},
        coords={
            "cell": np.arange(n),
            "lat": ("cell", lat, cv.LAT_ATTRS),
            "lon": ("cell", lon, cv.LON_ATTRS),
            **cv.layer_coords(truth["layer"].values.tolist()),
            "time": truth["time"],
            "n_stations": (("cell", "layer"), np.ones((n, truth.sizes["layer"]), "int16")),
            "station_ids": (("cell", "layer"), np.full((n, truth.sizes["layer"]), "synthetic", dtype=object)),
        },
        attrs={"title": "xsomo.testing synthetic targets"},
    )
    return ds


def synthetic_case(
    *, seed: int = 0, cells: int | None = None, **kwargs: object
) -> tuple[xr.Dataset, xr.Dataset, xr.DataArray]:
    """``(drivers, targets, truth)`` in one call; keyword arguments go to :func:`synthetic_drivers`."""
    drivers = synthetic_drivers(seed=seed, **kwargs)  # type: ignore[arg-type]
    truth = synthetic_truth(drivers)
    targets = synthetic_targets(truth, cells=cells, seed=seed)
    return drivers, targets, truth


def assert_cf_attrs(obj: xr.Dataset | xr.DataArray) -> None:
    """Assert every data variable has ``units`` and ``long_name`` attributes."""
    variables = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for da in variables:
        if da.dtype == bool:
            continue
        missing = [k for k in ("units", "long_name") if k not in da.attrs]
        assert not missing, f"variable {da.name!r} lacks CF attributes {missing}"


def random_model(
    *,
    layers: tuple[int, ...] = (1, 2, 3),
    forget_bias: float = 0.0,
    hidden: int = 8,
    ensemble: int = 2,
    lookback: int = 30,
    seed: int = 0,
) -> TrainedModel:
    """A random (untrained) cascade of ``layers`` on the canonical inputs with plausible scalers.

    Forget bias 0 makes it forget its initial state within about ``lookback`` days; a large
    one (10) makes a model that does not forget.
    """
    import torch

    from xsomo.model import EALSTM, ModelConfig, NormStats, TrainedModel

    torch.manual_seed(seed)
    cfg = ModelConfig(
        dynamic=list(cv.DYNAMIC_NAMES), static=list(cv.STATIC_NAMES), layers=tuple(layers),
        ensemble=ensemble, hidden=hidden, lookback=lookback, transforms={"precipitation": "log1p"},
    )  # fmt: skip
    stats = NormStats(
        [285.0, 1.0, 100.0, 288.0], [8.0, 1.0, 60.0, 9.0],
        [2.0, 1.5, 700.0, 100.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], [1.0, 1.0, 400.0, 60.0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
        [0.25, 0.27, 0.3][: len(layers)], [0.08, 0.06, 0.05][: len(layers)],
    )  # fmt: skip
    weights = {
        (lay, m): EALSTM(
            cfg.n_inputs(lay), cfg.n_static, hidden, initial_forget_bias=forget_bias
        ).state_dict()
        for lay in cfg.layers
        for m in range(ensemble)
    }
    return TrainedModel(cfg, stats, weights)
