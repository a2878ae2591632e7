"""Static features of the EA-LSTM (DESIGN.md step 2), on the 0.1° target grid.

- ``precipitation_mean``: long-term mean daily precipitation (mm d-1);
- ``aridity``: long-term mean net radiation expressed as mm of water (divided by the
  latent heat of vaporisation) over long-term mean precipitation;
- ``elevation_mean`` and ``elevation_std``: mean and sub-grid standard deviation of a
  finer DEM (conservative moments, so the std is that of the fine cells in each cell);
- ``forest_fraction``, ``shortveg_fraction``, ``sand_top``, ``clay_top``, ``sand_sub``,
  ``clay_sub``: conservatively upscaled, percent converted to fractions.

Everything stays lazy when the inputs are dask-backed.
"""

from __future__ import annotations

from collections.abc import Mapping

import xarray as xr

from xsomo import conventions as cv
from xsomo import units as xu
from xsomo.conventions import GridSpec
from xsomo.exceptions import GridMismatchError, MissingVariableError
from xsomo.regrid import regrid

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


def subgrid_moments(fine: xr.DataArray, grid: GridSpec) -> tuple[xr.DataArray, xr.DataArray]:
    """Area-weighted mean and standard deviation of fine cells within each target cell.

    Both come from conservative regridding of ``x`` and ``x**2`` (float64):
    :math:`\\sigma = \\sqrt{\\overline{x^2} - \\bar x^2}`.
    """
    x = fine.astype("float64")
    both = xr.Dataset({"m1": x, "m2": x * x})
    up = regrid(both, grid, method="conservative")
    mean = up["m1"]
    std = (up["m2"] - mean**2).clip(min=0.0) ** 0.5
    return mean.astype("float32"), std.astype("float32")


def upscale_fraction(fine: xr.DataArray, grid: GridSpec, *, name: str) -> xr.DataArray:
    """Conservatively upscale a fraction (units ``1`` or ``percent``) to ``grid`` as a fraction."""
    frac = xu.convert(fine, "1", name=name)
    out = regrid(frac.astype("float32"), grid, method="conservative")
    return out.clip(0.0, 1.0).assign_attrs(cv.cf_attrs(name)).rename(name)


def static_features(
    *,
    precipitation: xr.DataArray,
    net_radiation: xr.DataArray,
    elevation: xr.DataArray,
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
        Fine DEM (m).
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
        emean, estd = subgrid_moments(xu.convert(elevation, "m", name="elevation"), grid)
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
