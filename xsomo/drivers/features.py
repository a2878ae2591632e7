"""Static features of the EA-LSTM (DESIGN.md step 2), on the 0.1° target grid.

- ``precipitation_mean``: long-term mean daily precipitation (mm d-1);
- ``aridity``: long-term mean net radiation expressed as mm of water (divided by the
  latent heat of vaporisation) over long-term mean precipitation;
- ``elevation_mean`` and ``elevation_std``: mean and sub-grid standard deviation of a
  finer DEM (conservative moments, so the std is that of the fine cells in each cell;
  a DEM of several pixel sizes, as the Copernicus DEM's tiles, is pooled per cell);
- ``forest_fraction``, ``shortveg_fraction``, ``sand_top``, ``clay_top``, ``sand_sub``,
  ``clay_sub``: conservatively upscaled, percent converted to fractions.

Everything stays lazy when the inputs are dask-backed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from xsomo import conventions as cv
from xsomo import units as xu
from xsomo.conventions import GridSpec
from xsomo.exceptions import GridMismatchError, MissingVariableError, XsomoValueError
from xsomo.regrid import check_longitudes, normalise_latlon, regrid

__all__ = [
    "aridity",
    "precipitation_mean",
    "static_features",
    "subgrid_moments",
    "upscale_fraction",
]


def precipitation_mean(precipitation: xr.DataArray) -> xr.DataArray:
    """Long-term mean of daily precipitation (mm d-1)."""
    p = xu.convert(precipitation, "mm d-1", name="precipitation")
    return (
        p.mean("time")
        .astype("float32")
        .assign_attrs(cv.cf_attrs("precipitation_mean"))
        .rename("precipitation_mean")
    )


def aridity(net_radiation: xr.DataArray, precipitation: xr.DataArray) -> xr.DataArray:
    """Aridity index: mean net radiation as mm of water over mean precipitation.

    .. math:: AI = \\frac{\\overline{R_n}\\,86400 / L_v}{\\overline{P}}

    with :math:`L_v` = ``conventions.LATENT_HEAT_VAPORISATION`` (J kg-1) so that
    :math:`R_n 86400 / L_v` is in kg m-2 d-1 = mm d-1. Cells without precipitation get NaN.

    Examples
    --------
    >>> rn = xr.DataArray(
    ...     [[cv.LATENT_HEAT_VAPORISATION / 86400 * 2.0]],
    ...     dims=("lat", "lon"),
    ...     attrs={"units": "W m-2"},
    ... )
    >>> p = xr.DataArray([[4.0]], dims=("lat", "lon"), attrs={"units": "mm d-1"})
    >>> float(aridity(rn.expand_dims(time=3), p.expand_dims(time=3)).squeeze())
    0.5
    """
    rn = xu.convert(net_radiation, "W m-2", name="net_radiation").mean("time")
    p = xu.convert(precipitation, "mm d-1", name="precipitation").mean("time")
    rn_mm = rn * cv.SECONDS_PER_DAY / cv.LATENT_HEAT_VAPORISATION
    ai = (rn_mm / p.where(p > 0)).astype("float32")
    return ai.assign_attrs(cv.cf_attrs("aridity")).rename("aridity")


def subgrid_moments(
    fine: xr.DataArray | Sequence[xr.DataArray], grid: GridSpec
) -> tuple[xr.DataArray, xr.DataArray]:
    """Area-weighted mean and standard deviation of fine cells within each target cell.

    Parameters
    ----------
    fine
        A fine field ``(lat, lon)``, or several on grids of different pixel sizes that do
        not overlap (the maps :func:`xsomo.io.open_dem` returns for the Copernicus DEM's
        tiles, which widen in longitude north of 50 deg N); NaN is no data.
    grid
        Target grid.

    Returns
    -------
    mean, std : xarray.DataArray
        float32 on ``grid``; NaN where no valid fine cell lies in a target cell.

    Raises
    ------
    GridMismatchError
        The fine field(s) do not cover the target grid's box, or have pixels not finer
        than the target grid's cells (the sub-grid std would be 0 or meaningless).

    Notes
    -----
    Both come from conservative regridding of ``x`` and ``x**2`` (float64):
    :math:`\\sigma = \\sqrt{\\overline{x^2} - \\bar x^2}`. Of several fields, each
    gives per target cell the area :math:`a_g` of its valid cells there and their sums
    :math:`a_g \\overline{x}_g`, :math:`a_g \\overline{x^2}_g`, which are pooled, so a cell
    that straddles fields of two pixel sizes gets the moments of all its fine cells:

    .. math:: \\bar x = \\frac{\\sum_g a_g \\bar x_g}{\\sum_g a_g}, \\quad
              \\overline{x^2} = \\frac{\\sum_g a_g \\overline{x^2}_g}{\\sum_g a_g}
    """
    if not isinstance(fine, xr.DataArray):
        parts = list(fine)
        if not parts:
            raise XsomoValueError("subgrid_moments: no fine field given.")
        for part in parts:
            _check_finer(part, grid)
        if len(parts) > 1:
            return _pooled_moments(parts, grid)
        fine = parts[0]
    _check_finer(fine, grid)
    if not _covers(fine, grid):
        # short of the grid by at most half a pixel (the Copernicus DEM's tiles sit half a pixel
        # north-west of whole degrees), or refused there
        return _pooled_moments([fine], grid)
    x = fine.astype("float64")
    both = xr.Dataset({"m1": x, "m2": x * x})
    up = regrid(both, grid, method="conservative")
    mean = up["m1"]
    std = (up["m2"] - mean**2).clip(min=0.0) ** 0.5
    return mean.astype("float32"), std.astype("float32")


def _pixel_steps(x: xr.DataArray) -> tuple[float, float]:
    if x.sizes["lat"] < 2 or x.sizes["lon"] < 2:
        raise GridMismatchError(
            f"a fine field of {x.sizes['lat']} x {x.sizes['lon']} points; the sub-grid moments need at least 2 x 2."
        )
    lat, lon = x["lat"].values, x["lon"].values
    return abs(float(lat[1] - lat[0])), abs(float(lon[1] - lon[0]))


def _check_finer(fine: xr.DataArray, grid: GridSpec) -> None:
    """Refuse a fine field whose pixels are not finer than the target grid's cells (a 0.25 deg
    DEM on the 0.1 deg grid had given an elevation_std of 0 in most cells and of the steps
    between its pixels elsewhere, without a word). The step of a regular axis is that of its
    first two coordinates: only those are normalised, not the whole field (sorting a DEM stored
    north to south copies it, and the moments below normalise it anyway)."""
    x = normalise_latlon(fine.isel({d: slice(0, 2) for d in fine.dims}))
    if x.sizes["lat"] < 2 or x.sizes["lon"] < 2:
        return  # (named by the moments)
    dlat, dlon = _pixel_steps(x)
    if max(dlat, dlon) >= grid.resolution * (1 - 1e-6):
        source = fine.attrs.get("source_file")
        raise GridMismatchError(
            f"{'the fine field' if source is None else source} has pixels of {dlat:.6g} x {dlon:.6g} degrees "
            f"(lat x lon), not finer than the target grid's {grid.resolution:g} degree cells: the sub-grid "
            "standard deviation (elevation_std) would be 0 or meaningless. Give a DEM finer than the grid "
            "(e.g. the Copernicus DEM GLO-90 or SRTM, 3 arc-seconds)."
        )


def _box(x: xr.DataArray) -> tuple[float, float, float, float]:
    """South, north, west, east edges of a fine field's pixels (lat/lon ascending)."""
    dlat, dlon = _pixel_steps(x)
    lat, lon = x["lat"].values, x["lon"].values
    return lat[0] - dlat / 2, lat[-1] + dlat / 2, lon[0] - dlon / 2, lon[-1] + dlon / 2


def _reaches(box: tuple[float, float, float, float], grid: GridSpec, tol: float) -> bool:
    """Whether ``box`` (south, north, west, east) reaches the grid's edges to within ``tol`` deg."""
    south, north, west, east = box
    return not (grid.south < south - tol or grid.north > north + tol or grid.west < west - tol or grid.east > east + tol)


def _covers(fine: xr.DataArray, grid: GridSpec) -> bool:
    """Whether one fine field's pixels cover the grid's box (to 1e-6 deg)."""
    x = normalise_latlon(fine)
    if x.sizes["lat"] < 2 or x.sizes["lon"] < 2:
        return True  # (regrid names the problem)
    return _reaches(_box(x), grid, 1e-6)


def _pooled_moments(parts: list[xr.DataArray], grid: GridSpec) -> tuple[xr.DataArray, xr.DataArray]:
    """:func:`subgrid_moments` of several fine fields, pooled per target cell.

    The fields' outer box may fall short of the grid by up to half of their widest pixel:
    the Copernicus DEM's tiles (AWS COGs) place their pixels half a pixel north and west of
    whole degrees, so the tiles of a whole-degree box end 1.4e-4 deg (GLO-30) short of its
    south and east edges. The cells there get the moments of the pixels they hold (a strip
    of 1/720 of a 0.1 deg cell is missing); anything shorter is refused.
    """
    fields = [normalise_latlon(p) for p in parts]
    boxes = []
    widest = 0.0
    for x in fields:
        check_longitudes(x, grid, "a fine field")
        boxes.append(_box(x))
        widest = max(widest, *_pixel_steps(x))
    south, north = min(b[0] for b in boxes), max(b[1] for b in boxes)
    west, east = min(b[2] for b in boxes), max(b[3] for b in boxes)
    if not _reaches((south, north, west, east), grid, 1e-6 + widest / 2):
        # (as one field beyond whose box the target grid reaches; the cells between the fields'
        # boxes inside it are no data, as the gaps of one field)
        raise GridMismatchError(
            f"{f'the {len(parts)} fine fields (pixel sizes) together cover' if len(parts) > 1 else 'the fine field covers'} "
            f"lat {south:g}..{north:g}, lon "
            f"{west:g}..{east:g}, which does not cover the target grid (lat {grid.south:g}..{grid.north:g}, "
            f"lon {grid.west:g}..{grid.east:g}). Provide a source that extends beyond the target grid."
        )
    total: xr.Dataset | None = None
    for x, box in zip(fields, boxes, strict=True):
        sums = _cell_sums(x, box, grid)
        if sums is not None:
            total = sums if total is None else total + sums
    if total is None:  # (cannot happen: the boxes cover the grid)
        raise GridMismatchError("no fine field overlaps the target grid.")
    area = total["area"].where(total["area"] >= 1e-6)  # (the valid threshold of regrid's skipna)
    mean = total["s1"] / area
    std = (total["s2"] / area - mean**2).clip(min=0.0) ** 0.5
    return mean.astype("float32"), std.astype("float32")


def _cell_sums(
    x: xr.DataArray, box: tuple[float, float, float, float], grid: GridSpec
) -> xr.Dataset | None:
    """Per cell of ``grid``: the fraction of its area that valid cells of ``x`` cover
    (``area``) and the area-weighted sums of ``x`` and ``x**2`` over it (``s1``, ``s2``, as
    fractions of the cell's area); zero on the cells ``x`` does not reach, ``None`` if none.

    The field is regridded onto the target cells its box touches only, padded with no
    data to cover them whole, so the regridding's weights are fractions of each cell."""
    south, north, west, east = box
    res = grid.resolution
    i0 = max(0, math.floor((south - grid.south) / res + 1e-9))
    i1 = min(grid.nlat, math.ceil((north - grid.south) / res - 1e-9))
    j0 = max(0, math.floor((west - grid.west) / res + 1e-9))
    j1 = min(grid.nlon, math.ceil((east - grid.west) / res - 1e-9))
    if i0 >= i1 or j0 >= j1:
        return None
    # at least 2 x 2 cells (xarray-regrid gives a lone row or column of targets the whole source)
    k0, k1 = (i0, i1) if i1 - i0 > 1 else (i0, i0 + 2)
    l0, l1 = (j0, j1) if j1 - j0 > 1 else (j0, j0 + 2)
    sub = GridSpec(
        grid.west + l0 * res,
        grid.west + l1 * res,
        grid.south + k0 * res,
        grid.south + k1 * res,
        res,
    )
    dlat, dlon = _pixel_steps(x)
    # pixels of no data beyond the sub-grid's box (one more than needed on each side)
    pad_lat = (
        max(0, math.ceil((south - sub.south) / dlat + 1)),
        max(0, math.ceil((sub.north - north) / dlat + 1)),
    )
    pad_lon = (
        max(0, math.ceil((west - sub.west) / dlon + 1)),
        max(0, math.ceil((sub.east - east) / dlon + 1)),
    )
    lat, lon = x["lat"].values.astype("float64"), x["lon"].values.astype("float64")
    lat = np.concatenate(
        [
            lat[0] - dlat * np.arange(pad_lat[0], 0, -1),
            lat,
            lat[-1] + dlat * np.arange(1, pad_lat[1] + 1),
        ]
    )
    lon = np.concatenate(
        [
            lon[0] - dlon * np.arange(pad_lon[0], 0, -1),
            lon,
            lon[-1] + dlon * np.arange(1, pad_lon[1] + 1),
        ]
    )
    x = x.astype("float64").drop_vars([c for c in x.coords if c not in x.dims])
    sums = xr.Dataset(
        {"area": x.notnull().astype("float64"), "s1": x.fillna(0.0), "s2": (x * x).fillna(0.0)}
    )
    sums = sums.drop_vars(["lat", "lon"]).pad(lat=pad_lat, lon=pad_lon, constant_values=0.0)
    sums = sums.assign_coords(lat=lat, lon=lon)
    # no NaN in the sums: plain weights (regrid's skipna would renormalise over the valid cells)
    up = regrid(sums, sub, method="conservative", skipna=False).fillna(0.0)
    up = up.isel(lat=slice(0, i1 - i0), lon=slice(0, j1 - j0))
    up = up.drop_vars(["lat", "lon"]).pad(
        lat=(i0, grid.nlat - i1), lon=(j0, grid.nlon - j1), constant_values=0.0
    )
    return up.assign_coords(grid.coords())


def upscale_fraction(fine: xr.DataArray, grid: GridSpec, *, name: str) -> xr.DataArray:
    """Conservatively upscale a fraction (units ``1`` or ``percent``) to ``grid`` as a fraction."""
    frac = xu.convert(fine, "1", name=name)
    out = regrid(frac.astype("float32"), grid, method="conservative")
    return out.clip(0.0, 1.0).assign_attrs(cv.cf_attrs(name)).rename(name)


def static_features(
    *,
    precipitation: xr.DataArray,
    net_radiation: xr.DataArray,
    elevation: xr.DataArray | Sequence[xr.DataArray],
    landcover: xr.Dataset,
    soil: xr.Dataset,
    grid: GridSpec,
    where: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """The ten static features (``conventions.STATIC_NAMES``) on ``grid``.

    Parameters
    ----------
    precipitation, net_radiation
        Daily dynamic inputs already on ``grid`` (mm d-1, W m-2).
    elevation
        Fine DEM (m); or one map per pixel size, as :func:`xsomo.io.open_dem` returns
        for tiles of several pixel sizes (see :func:`subgrid_moments`).
    landcover
        Fine ``forest_fraction`` and ``shortveg_fraction``.
    soil
        ``sand_top``, ``clay_top``, ``sand_sub``, ``clay_sub`` (percent or fraction).
    grid
        Target grid.
    where
        Where each input came from (keys ``elevation``, ``landcover``, ``soil``; e.g. the
        file names), for the error messages.

    Raises
    ------
    MissingVariableError
        A needed static variable is missing.
    GridMismatchError
        An input that does not cover the grid (the message names the input).
    """
    where = dict(where or {})

    def named(key: str, what: str) -> str:
        return f"{what} ({where[key]})" if key in where else what

    for ds, names, what in (
        (landcover, ("forest_fraction", "shortveg_fraction"), "land cover"),
        (soil, ("sand_top", "clay_top", "sand_sub", "clay_sub"), "soil"),
    ):
        missing = [n for n in names if n not in ds]
        if missing:
            raise MissingVariableError(
                f"static feature(s) {missing} missing from the {what} input; add them."
            )
    try:
        elev = (
            xu.convert(elevation, "m", name="elevation")
            if isinstance(elevation, xr.DataArray)
            else [xu.convert(e, "m", name="elevation") for e in elevation]
        )
        emean, estd = subgrid_moments(elev, grid)
    except GridMismatchError as err:
        raise GridMismatchError(f"{named('elevation', 'the DEM')}: {err}") from err
    out = {
        "precipitation_mean": precipitation_mean(precipitation),
        "aridity": aridity(net_radiation, precipitation),
        "elevation_mean": emean.assign_attrs(cv.cf_attrs("elevation_mean")),
        "elevation_std": estd.assign_attrs(cv.cf_attrs("elevation_std")),
    }
    for src, names, key, what in (
        (landcover, ("forest_fraction", "shortveg_fraction"), "landcover", "the land-cover input"),
        (soil, ("sand_top", "clay_top", "sand_sub", "clay_sub"), "soil", "the soil input"),
    ):
        # one regridding call per source grid
        frac = xr.Dataset({n: xu.convert(src[n], "1", name=n).astype("float32") for n in names})
        try:
            up = regrid(frac, grid, method="conservative")
        except GridMismatchError as err:
            raise GridMismatchError(f"{named(key, what)}: {err}") from err
        for n in names:
            out[n] = up[n].clip(0.0, 1.0).assign_attrs(cv.cf_attrs(n)).rename(n)
    ds = xr.Dataset(
        {
            k: out[k].drop_vars([c for c in out[k].coords if c not in ("lat", "lon")])
            for k in cv.STATIC_NAMES
        }
    )
    return ds.assign_coords(grid.coords())
