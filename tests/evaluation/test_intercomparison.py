"""Intercomparison: product reading, bilinear regridding, block sampling, comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation import intercomparison as ic
from xsomo.exceptions import GridMismatchError, UnitError

GRID = cv.GridSpec(west=0.0, east=2.0, south=40.0, north=41.0)
TIME = pd.date_range("2015-01-01", periods=120, freq="D")


def _linear_product(res: float, *, south=40.0, north=41.0, descending=True) -> xr.DataArray:
    g = cv.GridSpec(0.0, 2.0, south, north, res)
    lat = g.lat[::-1] if descending else g.lat
    lon = g.lon
    t = np.arange(TIME.size)[:, None, None]
    field = 0.2 + 0.05 * (lat[None, :, None] - 40) + 0.02 * lon[None, None, :] + 0.001 * np.sin(t / 5)
    return xr.DataArray(field, dims=("time", "lat", "lon"), coords={"time": TIME, "lat": lat, "lon": lon})


def _write_product(root, name, res, **kw):
    da = _linear_product(res, **kw)
    folder = root / "products" / name
    folder.mkdir(parents=True)
    ds = xr.Dataset({f"layer{k}": da * k for k in (1, 2, 3)})
    ds.to_netcdf(folder / f"{name}_2015.nc")
    return da


def test_open_and_regrid_linear_field_is_exact_inside(tmp_path):
    _write_product(tmp_path, "coarse", 0.25)
    prods = ic.open_products(tmp_path)
    da = prods["coarse"]
    assert da.dims == ("layer", "time", "lat", "lon") and da.layer.values.tolist() == [1, 2, 3]
    out = ic.regrid_product(da, GRID)
    assert out.shape == (3, TIME.size, GRID.nlat, GRID.nlon)
    exact = 0.2 + 0.05 * (GRID.lat[:, None] - 40) + 0.02 * GRID.lon[None, :]
    inner = (slice(2, -2), slice(2, -2))  # inside the hull of the coarse centres, bilinear is exact for a plane
    np.testing.assert_allclose(out.sel(layer=1).isel(time=0).values[inner], exact[inner] + 0.0, atol=1e-6)
    np.testing.assert_allclose(out.sel(layer=3).isel(time=0).values[inner], 3 * exact[inner], atol=1e-6)
    assert out.notnull().all()  # the edges get values from the one-cell edge extension


def test_partial_product_leaves_nan_outside(tmp_path):
    da = _linear_product(0.0275 * 2, south=40.5, north=41.0)
    out = ic.regrid_product(da.expand_dims(layer=[1]), GRID)
    assert out.sel(lat=slice(40.0, 40.5)).isnull().all()
    assert out.sel(lat=slice(40.55, 41.0)).notnull().all()


def test_sample_cells_one_per_block_and_seeded():
    mask = xr.DataArray(np.ones((45, 50), bool), dims=("lat", "lon"))
    mask[:20, :20] = False  # one empty block
    rows, cols = ic.sample_cells(mask, block=20, seed=1)
    blocks = {(r // 20, c // 20) for r, c in zip(rows, cols, strict=True)}
    assert len(rows) == len(blocks) == 3 * 3 - 1
    assert mask.values[rows, cols].all()
    r2, c2 = ic.sample_cells(mask, block=20, seed=1)
    assert (rows == r2).all() and (cols == c2).all()
    r3, _ = ic.sample_cells(mask, block=20, seed=2)
    assert not (rows == r3).all()


def test_compare_to_mean_leave_one_out():
    rng = np.random.default_rng(0)
    base = _linear_product(0.1, descending=False).expand_dims(layer=[1, 2, 3]).transpose("layer", "time", "lat", "lon")
    signal = xr.DataArray(rng.standard_normal((TIME.size,)), coords={"time": TIME}) * 0.02
    sets = {
        "a": base + signal,
        "b": base + signal + 0.005 * rng.standard_normal(base.shape),
        "noise": base + 0.02 * rng.standard_normal(base.shape),
    }
    out = ic.compare_to_mean(sets, block=5, min_days=30)
    assert out.sizes["product"] == 3 and out.sizes["cell"] == (10 // 5) * (20 // 5)
    med = out["pearson_r"].median(("layer", "cell"))
    assert float(med.sel(product="a")) > float(med.sel(product="noise"))
    # independent check of one value: 'a' against the mean of 'b' and 'noise' at the first cell
    r0, c0 = int(out.row[0]), int(out.col[0])
    ref = (sets["b"] + sets["noise"]) / 2
    a = sets["a"].isel(lat=r0, lon=c0, layer=0).values
    b = ref.isel(lat=r0, lon=c0, layer=0).values
    assert float(out["pearson_r"].sel(product="a", layer=1).isel(cell=0)) == pytest.approx(np.corrcoef(a, b)[0, 1])


def test_a_product_in_percent_is_converted_and_one_without_units_checked(tmp_path):
    """open_product replaced a product's units label by m3 m-3: a product in percent was scored
    with a bias of 25 (hostile-input QA)."""
    da = _write_product(tmp_path, "frac", 0.25)
    folder = tmp_path / "products" / "pct"
    folder.mkdir(parents=True)
    xr.Dataset({f"layer{k}": (da * k * 100).assign_attrs(units="%") for k in (1, 2, 3)}).to_netcdf(folder / "pct_2015.nc")
    prods = ic.open_products(tmp_path)
    xr.testing.assert_allclose(prods["pct"].drop_attrs(), prods["frac"].drop_attrs())
    assert prods["pct"].attrs["units"] == "m3 m-3"
    (folder / "pct_2015.nc").unlink()
    xr.Dataset({f"layer{k}": da * k * 100 for k in (1, 2, 3)}).to_netcdf(folder / "pct_2015.nc")
    with pytest.raises(UnitError, match=r"product 'pct'.*looks like percent"):
        ic.open_product(folder)


def test_compare_to_mean_takes_float32_coordinates_noon_stamps_and_refuses_other_grids():
    """float32 lat/lon of one input kept 4 of 36 cells; a product on its native grid ended in a
    ZeroDivisionError inside dask (hostile-input QA)."""
    base = _linear_product(0.1, descending=False).expand_dims(layer=[1]).transpose("layer", "time", "lat", "lon")
    rng = np.random.default_rng(1)
    sets = {"a": base, "b": base + 0.01 * rng.standard_normal(base.shape)}
    want = ic.compare_to_mean(sets, block=5, min_days=30)
    odd = sets["b"].assign_coords(lat=sets["b"].lat.astype("float32"), lon=sets["b"].lon.astype("float32"),
                                  time=sets["b"].time + pd.Timedelta("12h"))  # fmt: skip
    got = ic.compare_to_mean({"a": sets["a"], "b": odd}, block=5, min_days=30)
    assert got.sizes["cell"] == want.sizes["cell"] == 8
    np.testing.assert_allclose(got["pearson_r"].values, want["pearson_r"].values, rtol=1e-5)
    coarse = _linear_product(0.25, descending=False).expand_dims(layer=[1])
    with pytest.raises(GridMismatchError, match=r"share no 'lat' and no 'lon' values.*regrid_product"):
        ic.compare_to_mean({"a": sets["a"], "coarse": coarse}, block=5, min_days=30)


def test_compare_stations_stacks_products():
    base = _linear_product(0.1, descending=False).expand_dims(layer=[1, 2, 3]).transpose("layer", "time", "lat", "lon")
    rng = np.random.default_rng(3)
    sig = xr.DataArray(rng.standard_normal(TIME.size) * 0.03, coords={"time": TIME})
    truth = base + sig
    st = xr.Dataset(
        {"sm": (("station", "time"), np.stack([truth.isel(layer=0, lat=2, lon=3).values, truth.isel(layer=0, lat=7, lon=12).values]))},
        coords={"station": ["x", "y"], "time": TIME, "lat": ("station", GRID.lat[[2, 7]]), "lon": ("station", GRID.lon[[3, 12]]),
                "footprint_depth": ("station", [0.1, 0.1])},
    )
    out = ic.compare_stations({"good": truth, "bad": base + 0.03 * rng.standard_normal(base.shape)}, st)
    assert out["pearson_r"].dims[:1] == ("product",)
    assert (out["pearson_r"].sel(product="good", layer=0) > 0.99).all()
    assert (out["pearson_r"].sel(product="bad", layer=0) < 0.9).all()


def test_compare_stations_leaves_out_a_product_that_shares_no_day_with_the_stations():
    """A short regional product whose years miss the stations' records is named, not an error
    (the demo report failed on clmda_like covering only the year after the COSMOS records)."""
    base = _linear_product(0.1, descending=False).expand_dims(layer=[1, 2, 3]).transpose("layer", "time", "lat", "lon")
    st = xr.Dataset(
        {"sm": (("station", "time"), np.stack([base.isel(layer=0, lat=2, lon=3).values]))},
        coords={"station": ["x"], "time": TIME, "lat": ("station", GRID.lat[[2]]), "lon": ("station", GRID.lon[[3]]),
                "footprint_depth": ("station", [0.1])},
    )
    later = base.assign_coords(time=TIME + pd.Timedelta(days=365))
    out = ic.compare_stations({"xsomo": base, "later": later}, st)
    assert list(out["product"].values) == ["xsomo"]
    assert "later" in out.attrs["left_out"]
    with pytest.raises(Exception, match="no dataset shares a day"):
        ic.compare_stations({"later": later}, st)
