"""xsomo.regrid: constant fields, conservation, bilinear exactness, scipy agreement."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from xsomo.conventions import GridSpec
from xsomo.exceptions import GridMismatchError
from xsomo.regrid import BackendUnavailableError, cell_area, regrid


def field(
    grid: GridSpec, values: np.ndarray, dtype: str = "float32", descending: bool = False
) -> xr.DataArray:
    da = xr.DataArray(values.astype(dtype), coords=grid.coords(), dims=("lat", "lon"), name="x")
    return da.isel(lat=slice(None, None, -1)) if descending else da


FINE = GridSpec(-2.0, 3.0, 44.0, 48.0, 0.01)
TARGET = GridSpec(-1.0, 2.0, 45.0, 47.0, 0.1)


def test_constant_field_preserved_dense_float32():
    out = regrid(field(FINE, np.full(FINE.shape, 3.5)), TARGET)
    assert isinstance(out.data, np.ndarray)
    assert out.dtype == np.float32
    assert out.shape == TARGET.shape
    np.testing.assert_allclose(out.values, 3.5, rtol=1e-6)
    np.testing.assert_allclose(out["lat"].values, TARGET.lat)


def test_conservative_conserves_area_weighted_total():
    rng = np.random.default_rng(1)
    src = field(FINE, rng.gamma(2.0, 3.0, FINE.shape), dtype="float64")
    out = regrid(src, TARGET)
    inner = src.sel(lat=slice(TARGET.south, TARGET.north), lon=slice(TARGET.west, TARGET.east))
    a_src = cell_area(GridSpec(TARGET.west, TARGET.east, TARGET.south, TARGET.north, 0.01))
    total_src = float((inner.values * a_src.values).sum())
    total_out = float((out.values * cell_area(TARGET).values).sum())
    assert abs(total_out / total_src - 1) < 1e-6


def test_conservative_matches_independent_block_average():
    """10 x 10 fine cells per target cell: an area-weighted block mean computed with numpy."""
    rng = np.random.default_rng(2)
    vals = rng.normal(size=FINE.shape)
    out = regrid(field(FINE, vals, dtype="float64"), TARGET)
    sub = field(FINE, vals, dtype="float64").sel(lat=slice(45, 47), lon=slice(-1, 2)).values
    w = cell_area(GridSpec(-1, 2, 45, 47, 0.01)).values
    blocks = (sub * w).reshape(20, 10, 30, 10).sum((1, 3)) / w.reshape(20, 10, 30, 10).sum((1, 3))
    np.testing.assert_allclose(out.values, blocks, rtol=1e-9, atol=1e-12)


def test_bilinear_exact_on_linear_field_and_descending_source():
    coarse = GridSpec(-2.0, 3.0, 44.0, 48.0, 0.25)
    lin = 2.0 * coarse.lat[:, None] - 0.5 * coarse.lon[None, :] + 7.0
    out = regrid(field(coarse, lin, dtype="float64", descending=True), TARGET, method="bilinear")
    expected = 2.0 * TARGET.lat[:, None] - 0.5 * TARGET.lon[None, :] + 7.0
    np.testing.assert_allclose(out.values, expected, rtol=0, atol=1e-10)


def test_bilinear_agrees_with_scipy():
    coarse = GridSpec(-2.0, 3.0, 44.0, 48.0, 0.25)
    rng = np.random.default_rng(3)
    vals = rng.normal(size=coarse.shape)
    out = regrid(field(coarse, vals, dtype="float64"), TARGET, method="bilinear")
    interp = RegularGridInterpolator((coarse.lat, coarse.lon), vals, method="linear")
    yy, xx = np.meshgrid(TARGET.lat, TARGET.lon, indexing="ij")
    np.testing.assert_allclose(out.values, interp((yy, xx)), rtol=1e-10, atol=1e-12)


def test_border_cells_not_nan_and_time_carried():
    rng = np.random.default_rng(4)
    src = field(FINE, rng.normal(size=FINE.shape)).expand_dims(time=3).copy()
    out = regrid(src, TARGET)
    assert out.sizes["time"] == 3
    assert not np.isnan(out.values).any()


def test_source_not_covering_target_raises():
    small = GridSpec(0.0, 1.0, 45.0, 46.0, 0.01)
    with pytest.raises(GridMismatchError, match="does not cover"):
        regrid(field(small, np.ones(small.shape)), TARGET)


def test_xesmf_backend_unavailable_is_clear():
    try:
        import xesmf  # noqa: F401
    except Exception:
        with pytest.raises(BackendUnavailableError, match="xarray-regrid"):
            regrid(field(FINE, np.ones(FINE.shape)), TARGET, backend="xesmf")
    else:  # pragma: no cover - only where esmpy is installed
        out = regrid(field(FINE, np.ones(FINE.shape)), TARGET, backend="xesmf")
        np.testing.assert_allclose(out.values, 1.0, rtol=1e-6)


@pytest.mark.parametrize("method", ["conservative", "bilinear"])
@pytest.mark.parametrize(
    "strip",
    [GridSpec(0.5, 1.5, 50.8, 50.9, 0.1), GridSpec(0.8, 0.9, 50.5, 51.5, 0.1), GridSpec(0.8, 0.9, 50.8, 50.9, 0.1),
     GridSpec(0.5, 1.5, 51.9, 52.0, 0.1)],
    ids=["one row", "one column", "one cell", "one row at the source's north edge"],
)  # fmt: skip
def test_a_grid_of_one_row_or_column_gets_the_values_of_the_same_cells_in_a_larger_grid(strip, method):
    """xarray-regrid sizes a target cell from its neighbours: a lone row took a wider latitude
    band (509.348 for 509.375 conservatively) and a lone column failed inside it."""
    coarse = GridSpec(0.0, 2.0, 50.0, 52.0, 0.25)
    lat, lon = np.meshgrid(coarse.lat, coarse.lon, indexing="ij")
    src = xr.DataArray(
        np.stack([lat * 10 + lon, np.sin(lat * 3) * lon]), coords={"time": [0, 1], **coarse.coords()},
        dims=("time", "lat", "lon"),
    )  # fmt: skip
    if method == "bilinear" and strip.north > coarse.lat[-1]:  # a centre beyond the source's last point
        with pytest.raises(GridMismatchError, match="for bilinear regridding"):
            regrid(src, strip, method=method)
        return
    out = regrid(src, strip, method=method)
    assert out.dims == ("time", "lat", "lon") and out.shape == (2, strip.nlat, strip.nlon)
    big = regrid(src, GridSpec(0.5, 1.5, 50.5, 52.0 if method == "conservative" else 51.8, 0.1), method=method)
    np.testing.assert_allclose(out.values, big.sel(lat=out.lat, lon=out.lon).values, rtol=1e-12)


def test_normalise_latlon_reads_float32_coordinates_as_their_decimals():
    """Rounding float32 coordinates to 5 decimals had made 128.15 into 128.14999 (float32's step is 7.6e-6 there)."""
    from xsomo.regrid import normalise_latlon

    lon = np.round(np.arange(120.05, 140.0, 0.1), 2)
    lat = np.round(np.arange(-5.05, 5.0, 0.1), 2)
    da = xr.DataArray(np.zeros((lat.size, lon.size)), coords={"lat": lat.astype("float32"), "lon": lon.astype("float32")},
                      dims=("lat", "lon"))  # fmt: skip
    out = normalise_latlon(da)
    np.testing.assert_array_equal(out["lon"].values, lon)
    np.testing.assert_array_equal(out["lat"].values, lat)


_HASH_SEED_SCRIPT = """
import hashlib, numpy as np, xarray as xr
from xsomo.conventions import GridSpec
from xsomo.regrid import regrid
src = GridSpec(-0.5, 6.5, 39.5, 46.5, 0.25)  # an ERA5-like 0.25 deg grid: uneven weights, rounded products
vals = np.random.default_rng(3).normal(150.0, 60.0, (40, *src.shape)).astype("float32")
vals[:, :3, :5] = np.nan  # sea corners: the NaN-aware path
da = xr.DataArray(vals, dims=("time", "lat", "lon"), coords={"time": np.arange(40), **src.coords()})
out = {}
for skipna in (True, False):
    out[skipna] = regrid(da, GridSpec(0.0, 6.0, 40.0, 46.0, 0.1), method="bilinear", skipna=skipna).values
print(next(iter({"lat", "lon"})), hashlib.sha256(out[True].tobytes() + out[False].tobytes()).hexdigest())
"""


def test_bilinear_gives_the_same_bits_whatever_pythons_string_hashing():
    """QA: two runs of ``xsomo prepare`` wrote drivers that differed in the last bit (18,752 of
    1.3 million net-radiation values of the demo world), and the models trained on them gave a
    median r at the COSMOS-like stations of 0.962 in one run and 0.965 in the other. xarray-regrid's
    ``.regrid.linear`` interpolated lat then lon or lon then lat after the order of a ``set`` of
    names, which Python's per-process string hashing decides. Processes with hash seeds that
    order that set both ways give the same bits now."""
    import os
    import subprocess
    import sys

    seen: dict[str, str] = {}
    for seed in range(16):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        run = subprocess.run([sys.executable, "-c", _HASH_SEED_SCRIPT], env=env, capture_output=True, text=True, check=True)
        first, digest = run.stdout.split()
        seen.setdefault(first, digest)
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"no hash seed in 0..15 put 'lon' first in a set: {seen}"
    assert seen["lat"] == seen["lon"]


@pytest.mark.parametrize("method", ["bilinear", "conservative"])
def test_a_lazy_regrid_computes_the_dtype_it_declares_and_the_values_of_an_eager_one(method):
    """QA: a dask-backed float32 field regridded bilinearly declared float32 but computed float64
    chunks (xarray's interp), so what was computed from it lazily (the static features of
    ``open_drivers``) differed from the same computation in memory."""
    src_grid = GridSpec(-0.5, 6.5, 39.5, 46.5, 0.25)
    vals = np.random.default_rng(5).normal(150.0, 60.0, (6, *src_grid.shape)).astype("float32")
    src = xr.DataArray(vals, dims=("time", "lat", "lon"), coords={"time": np.arange(6), **src_grid.coords()})
    target = GridSpec(0.0, 6.0, 40.0, 46.0, 0.1)
    lazy = regrid(src.chunk(time=2), target, method=method)
    eager = regrid(src, target, method=method)
    assert lazy.dtype == np.float32 and lazy.values.dtype == np.float32
    if method == "bilinear":
        np.testing.assert_array_equal(lazy.values, eager.values)
    else:  # xarray-regrid contracts dask chunks in another order: the last float32 bit may differ
        np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6)
