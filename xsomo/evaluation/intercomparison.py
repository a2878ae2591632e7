"""Intercomparison with other gridded products (the paper's Fig. 4).

Every product is read at its own resolution, regridded bilinearly to the 0.1° grid
with :func:`xsomo.regrid.regrid`, and compared

- against independent stations (COSMOS-like cosmic-ray probes), with the same rules
  as :func:`xsomo.evaluation.evaluate`;
- against the average of the *other* datasets at one random cell per 20 × 20-cell
  block (about 300 cells on the Europe grid), so that no dataset is compared with a
  mean that contains itself.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation import scores as mt
from xsomo.evaluation import skill
from xsomo.evaluation.arrays import layered, normalise_time
from xsomo.exceptions import DataFormatError, GridMismatchError
from xsomo.io.world import WorldLayout, product_files
from xsomo.units import in_m3m3

__all__ = [
    "compare_stations",
    "compare_to_mean",
    "open_product",
    "open_products",
    "regrid_product",
    "regrid_products",
    "sample_cells",
]


def open_product(directory: str | os.PathLike[str], *, chunks: dict[str, int] | None = None) -> xr.DataArray:
    """One stand-in product folder (``<name>_<YYYY>.nc``, variables ``layer1..3``) as ``sm(layer, time, lat, lon)``.

    Lazy (dask) with one chunk per file; lat/lon ascending.
    """
    from xsomo.regrid import normalise_latlon

    directory = pathlib.Path(directory)
    files = sorted(directory.glob("*.nc"))
    if not files:
        raise DataFormatError(f"no netCDF file in the product folder {str(directory)!r}.")
    ds = xr.open_mfdataset(files, combine="by_coords", chunks=chunks or {}, data_vars="all", coords="minimal", compat="override")
    names = [cv.layer_var_name(n) for n in cv.LAYER_NUMBERS if cv.layer_var_name(n) in ds.data_vars]
    if not names:
        raise DataFormatError(
            f"product {directory.name!r}: expected variables layer1, layer2, layer3 in {files[0].name}; "
            f"found {sorted(map(str, ds.data_vars))}."
        )
    nums = [int(n.removeprefix("layer")) for n in names]
    da = xr.concat([ds[n] for n in names], dim="layer", coords="minimal", compat="override")
    da = da.assign_coords(cv.layer_coords(nums))
    da = normalise_latlon(da).transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON)
    da.name = cv.SM
    # in m3 m-3 from the files' own units (checked on a sample: the data are lazy); the label had
    # been replaced by m3 m-3 whatever it was, and a product in percent was scored with a bias of 25
    units = {ds[n].attrs.get("units") for n in names}
    if len(units) > 1:
        raise DataFormatError(f"product {directory.name!r}: layers in different units {sorted(map(str, units))}.")
    da.attrs = {"units": units.pop()} if None not in units else {}
    da = in_m3m3(da, f"product {directory.name!r} ({files[0].name}, ...)", check_lazy=True)
    da.attrs = {**dict(cv.SM_ATTRS), "product": directory.name}
    return da


def open_products(world: str | os.PathLike[str], *, names: Sequence[str] | None = None) -> dict[str, xr.DataArray]:
    """Every product of a sample world's ``products/`` folder, by name (native grids)."""
    found = product_files(world)  # DataFormatError without a products/ folder
    wanted = [n for n in found if names is None or n in set(names)]
    return {n: open_product(WorldLayout(world).product_dir(n)) for n in wanted}


def _pad_edges(da: xr.DataArray) -> xr.DataArray:
    """Add one row/column of edge values beyond each side (nearest extrapolation by one source cell)."""
    for dim in (cv.LAT, cv.LON):
        c = da[dim].values
        step = float(np.median(np.diff(c))) if c.size > 1 else cv.RESOLUTION
        first = da.isel({dim: [0]}).assign_coords({dim: [c[0] - step]})
        last = da.isel({dim: [-1]}).assign_coords({dim: [c[-1] + step]})
        da = xr.concat([first, da, last], dim=dim)
    return da


def regrid_product(product: xr.DataArray, grid: cv.GridSpec | xr.Dataset | xr.DataArray) -> xr.DataArray:
    """Bilinear regridding of a product to the target grid; cells outside the product are NaN.

    The product is first extended by one source cell of edge values on each side, so
    that target cells between the outermost source centre and the product's edge get
    values; target cells beyond the product's edge stay NaN.
    """
    from xsomo.regrid import grid_of, normalise_latlon, regrid

    grid = grid if isinstance(grid, cv.GridSpec) else grid_of(grid)
    src = normalise_latlon(product)
    lat, lon = src[cv.LAT].values, src[cv.LON].values
    rlat = float(np.median(np.diff(lat))) if lat.size > 1 else grid.resolution
    rlon = float(np.median(np.diff(lon))) if lon.size > 1 else grid.resolution
    south, north = lat[0] - rlat / 2, lat[-1] + rlat / 2
    west, east = lon[0] - rlon / 2, lon[-1] + rlon / 2
    tlat = grid.lat[(grid.lat >= south - 1e-9) & (grid.lat <= north + 1e-9)]
    tlon = grid.lon[(grid.lon >= west - 1e-9) & (grid.lon <= east + 1e-9)]
    if tlat.size == 0 or tlon.size == 0:
        raise GridMismatchError(
            f"product {product.attrs.get('product', product.name)!r} (lat {south:g}..{north:g}, lon {west:g}..{east:g}) "
            f"does not overlap the target grid {grid}."
        )
    res = grid.resolution
    sub = cv.GridSpec(
        west=float(np.round(tlon[0] - res / 2, 6)),
        east=float(np.round(tlon[-1] + res / 2, 6)),
        south=float(np.round(tlat[0] - res / 2, 6)),
        north=float(np.round(tlat[-1] + res / 2, 6)),
        resolution=res,
    )
    out = regrid(_pad_edges(src), sub, method="bilinear")
    out = out.reindex({cv.LAT: grid.lat, cv.LON: grid.lon}, method="nearest", tolerance=res / 4)
    out = out.assign_coords(grid.coords())
    out.attrs = dict(product.attrs)
    out.name = cv.SM
    return out


def regrid_products(
    products: Mapping[str, xr.DataArray], grid: cv.GridSpec | xr.Dataset | xr.DataArray
) -> dict[str, xr.DataArray]:
    """:func:`regrid_product` for every product."""
    return {name: regrid_product(da, grid) for name, da in products.items()}


def compare_stations(
    datasets: Mapping[str, xr.Dataset | xr.DataArray],
    stations: xr.Dataset,
    *,
    training_cells: Any = None,
    min_days: int = mt.MIN_DAYS,
    anomaly: bool = False,
) -> xr.Dataset:
    """Station metrics of every dataset, stacked along a ``product`` dimension.

    Each dataset is evaluated with :func:`xsomo.evaluation.evaluate` (footprint mix as
    layer 0, layers 1-3); all must be on the same grid (regrid products first).
    """
    parts = []
    left_out: dict[str, str] = {}
    st_time = stations[cv.TIME].values
    for name, ds in datasets.items():
        da = layered(ds)
        # a product whose days never meet the stations' (e.g. a short regional product) is
        # left out and named, not an error: it has nothing to say at these stations
        if not np.isin(da[cv.TIME].values.astype("datetime64[D]"), st_time.astype("datetime64[D]")).any():
            left_out[name] = "shares no day with the stations' records"
            continue
        m = skill.evaluate(
            da.to_dataset(name=cv.SM),
            stations,
            training_cells=training_cells,
            min_days=min_days,
            anomaly=anomaly,
        )
        parts.append(m.expand_dims(product=[name]))
    if not parts:
        raise GridMismatchError(
            "no dataset shares a day with the stations' records: " + "; ".join(f"{k}: {v}" for k, v in left_out.items())
        )
    out = xr.concat(parts, dim="product", coords="minimal", compat="override", join="outer")
    out.attrs["left_out"] = "; ".join(f"{k}: {v}" for k, v in left_out.items())
    return out


def sample_cells(
    valid: xr.DataArray, *, block: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row/column indices of one random valid cell per ``block`` × ``block``-cell block.

    ``valid`` is a boolean ``(lat, lon)`` mask (land and covered by every dataset).
    Blocks without a valid cell give none. The same ``seed`` gives the same cells.
    """
    mask = np.asarray(valid.transpose(cv.LAT, cv.LON).values, bool)
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for i0 in range(0, mask.shape[0], block):
        for j0 in range(0, mask.shape[1], block):
            ii, jj = np.nonzero(mask[i0 : i0 + block, j0 : j0 + block])
            if ii.size:
                k = int(rng.integers(ii.size))
                rows.append(i0 + int(ii[k]))
                cols.append(j0 + int(jj[k]))
    return np.array(rows, int), np.array(cols, int)


def compare_to_mean(
    datasets: Mapping[str, xr.Dataset | xr.DataArray],
    *,
    cells: tuple[np.ndarray, np.ndarray] | None = None,
    block: int = 20,
    seed: int = 0,
    min_days: int = mt.MIN_DAYS,
    leave_one_out: bool = True,
    valid: xr.DataArray | None = None,
) -> xr.Dataset:
    """Metrics of every dataset against the average of the (other) datasets at sampled cells.

    Parameters
    ----------
    datasets
        ``name -> sm(layer, time, lat, lon)`` on one grid.
    cells
        Row/column indices; default :func:`sample_cells` on the cells where every dataset
        has data on at least ``min_days`` days (or ``valid``).
    leave_one_out
        Compare each dataset with the mean of the others (default), or with the mean of all.

    Returns
    -------
    xarray.Dataset
        Metrics with dims ``product``, ``layer``, ``cell`` and coords ``lat``/``lon`` per cell.
    """
    names = list(datasets)
    if len(names) < 2:
        raise GridMismatchError("compare_to_mean needs at least two datasets.")
    from xsomo.regrid import normalise_latlon

    # one grid and one day stamp, in m3 m-3: float32 coordinates of one input had kept 4 of 36
    # cells, a product in percent was averaged with the others, a product at noon shared no day
    arrs = [
        in_m3m3(normalise_time(normalise_latlon(layered(datasets[n]))), f"dataset {n!r}", check_lazy=True)
        for n in names
    ]
    arrs = list(xr.align(*arrs, join="inner", exclude=[]))
    empty = [d for d in (cv.TIME, cv.LAT, cv.LON, cv.LAYER) if d in arrs[0].dims and arrs[0].sizes[d] == 0]
    if empty:
        raise GridMismatchError(
            f"compare_to_mean: the datasets {names} share no {' and no '.join(map(repr, empty))} values; put them "
            "on one grid and period first (e.g. regrid_product(product, grid) for a product on its native grid)."
        )
    stack = xr.concat(arrs, dim=xr.DataArray(names, dims="product", name="product"), coords="minimal", compat="override")
    if cells is None:
        if valid is None:
            valid = (stack.notnull().sum(cv.TIME) >= min_days).all(("product", cv.LAYER))
        cells = sample_cells(valid.compute(), block=block, seed=seed)
    rows, cols = cells
    pts = stack.isel({cv.LAT: xr.DataArray(rows, dims=cv.CELL), cv.LON: xr.DataArray(cols, dims=cv.CELL)}).compute()
    parts = []
    for name in names:
        others = pts.drop_sel(product=name) if leave_one_out else pts
        ref = others.mean("product", skipna=True).where(others.notnull().sum("product") >= 1)
        m = mt.metrics(pts.sel(product=name, drop=True), ref, min_days=min_days, anomaly=False)
        parts.append(m.expand_dims(product=[name]))
    out = xr.concat(parts, dim="product")
    out = out.assign_coords(
        {
            cv.CELL: np.arange(len(rows)),
            "row": (cv.CELL, rows),
            "col": (cv.CELL, cols),
            cv.LAT: (cv.CELL, stack[cv.LAT].values[rows]),
            cv.LON: (cv.CELL, stack[cv.LON].values[cols]),
        }
    )
    out.attrs = {
        "title": "datasets against the average of the other datasets" if leave_one_out else "datasets against the all-dataset average",
        "block": block,
        "seed": seed,
    }
    return out
