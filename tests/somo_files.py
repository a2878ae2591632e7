"""Helpers: small SoMo.ml-EU / SoMo.ml v1 files for the GIS and backend tests, and checks of them.

With ``writer="xsomo"`` the SoMo.ml-EU files are written by xsomo's own writer
(:func:`xsomo.prediction.output.to_files`), so the GIS tests read what users get; the default
stand-ins (and the SoMo.ml v1 names, a stand-in of the published files) have the same layout
written with rioxarray: one CF-1.8 netCDF4 per layer and year, variable ``layer{N}``, lat
descending, grid mapping ``spatial_ref``. Values are a known
function of layer, day, lat and lon (:func:`expected_value`).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv

#: a small piece of the Europe grid: 1.2° x 1.6° at 0.1°
GRID = cv.GridSpec(west=10.0, east=11.6, south=50.0, north=51.2)


def expected_value(layer: int, time: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The value every test file holds at (layer, time, lat, lon) (broadcasts); NaN at the 'sea'."""
    t = pd.DatetimeIndex(np.atleast_1d(time))
    day = (t - pd.Timestamp("2010-01-01")).days.to_numpy(dtype=float)
    # a seasonal cycle plus a trend, so period means and anomalies differ between years
    seasonal = 0.05 * np.sin(2 * np.pi * t.day_of_year.to_numpy() / 365.25) + 0.00002 * day
    v = (
        0.15
        + 0.02 * layer
        + seasonal[:, None, None]
        + 0.01 * (np.asarray(lat)[None, :, None] - 50.0)
        + 0.005 * (np.asarray(lon)[None, None, :] - 10.0)
    )
    sea = (np.asarray(lat)[None, :, None] > 51.0) & (np.asarray(lon)[None, None, :] > 11.3)
    return np.where(sea, np.nan, v).astype(np.float32)


def somo_dataset(
    layer: int, year: int, *, grid: cv.GridSpec = GRID, days: int | None = None
) -> xr.Dataset:
    """One layer-year in the SoMo.ml-EU file layout (lat descending, grid mapping)."""
    import rioxarray  # noqa: F401  (registers .rio)

    time = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    if days is not None:
        time = time[:days]
    lat = grid.lat[::-1]
    lon = grid.lon
    name = cv.layer_var_name(layer)
    da = xr.DataArray(
        expected_value(layer, time.to_numpy(), lat, lon),
        dims=(cv.TIME, cv.LAT, cv.LON),
        coords={
            cv.TIME: time,
            cv.LAT: ("lat", lat, cv.LAT_ATTRS),
            cv.LON: ("lon", lon, cv.LON_ATTRS),
        },
        attrs=dict(cv.SM_ATTRS),
        name=name,
    )
    ds = da.to_dataset().rio.write_crs(cv.CRS)
    ds[name] = ds[name].rio.write_grid_mapping("spatial_ref")
    ds.attrs = {"Conventions": "CF-1.8", "title": "test SoMo.ml-EU"}
    return ds


def write_somo_file(path: pathlib.Path, layer: int, year: int, **kwargs: object) -> pathlib.Path:
    """Write one file; encodings are merged so ``grid_mapping`` survives."""
    ds = somo_dataset(layer, year, **kwargs)  # type: ignore[arg-type]
    name = cv.layer_var_name(layer)
    enc = {
        **ds[name].encoding,
        "dtype": "float32",
        "zlib": True,
        "complevel": 4,
        "chunksizes": (min(ds.sizes["time"], 64), ds.sizes["lat"], ds.sizes["lon"]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, format="NETCDF4", encoding={name: enc})
    return path


def write_with_xsomo(
    directory: pathlib.Path, layer: int, year: int, *, grid: cv.GridSpec = GRID, days: int | None = None
) -> pathlib.Path:
    """One layer-year written by :func:`xsomo.prediction.output.to_files` with :func:`expected_value`."""
    from xsomo.prediction.output import to_files

    time = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    if days is not None:
        time = time[:days]
    sm = xr.DataArray(
        expected_value(layer, time.to_numpy(), grid.lat, grid.lon)[None],
        dims=(cv.LAYER, cv.TIME, cv.LAT, cv.LON),
        coords={cv.TIME: time, **grid.coords(), **cv.layer_coords([layer])},
    )
    (path,) = to_files(sm.to_dataset(name=cv.SM), directory, progress=False)
    return path


def write_somo_files(
    directory: pathlib.Path,
    layers: tuple[int, ...] = (1, 2, 3),
    years: tuple[int, ...] = (2010, 2011),
    *,
    v1: bool = False,
    writer: str = "standin",
    **kwargs: object,
) -> list[pathlib.Path]:
    """SoMo.ml-EU files written by rioxarray (``writer="xsomo"``: by xsomo's ``to_files``, as the
    GIS tests use; ``v1=True``: SoMo.ml v1 stand-ins, in ``SoMo.ml_v1_layer{N}/`` folders).

    The stand-ins keep 64-day netCDF chunks that the backend's chunking tests rely on."""
    out = []
    for layer in layers:
        for year in years:
            if v1:
                p = directory / f"SoMo.ml_v1_layer{layer}" / f"SoMo.ml_v1_layer{layer}_{year}.nc"
            elif writer == "xsomo":
                out.append(write_with_xsomo(directory, layer, year, **kwargs))  # type: ignore[arg-type]
                continue
            else:
                p = directory / cv.output_filename(layer, year)
            out.append(write_somo_file(p, layer, year, **kwargs))
    return out


