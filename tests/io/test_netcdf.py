"""xsomo's one netCDF writer (xsomo.io.netcdf): atomic, packed, deterministic."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo.io.netcdf import NcWriter, Var, lat_coord, lon_coord, time_coord, trim_mantissa


def _writer(path: pathlib.Path, packing=None) -> NcWriter:
    return NcWriter(
        path,
        dims={"time": 3, "lat": 2, "lon": 2},
        coords={
            "time": time_coord(pd.date_range("2016-01-01", periods=3)),
            "lat": lat_coord(np.array([40.05, 40.15])),
            "lon": lon_coord(np.array([0.05, 0.15])),
        },
        variables={"v": Var(("time", "lat", "lon"), "f4", {"units": "K"}, packing=packing)},
        attrs={"title": "t"},
    )


def test_values_round_trip_in_bands(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(280, 5, (3, 2, 2)).astype(np.float32)
    data[1, 0, 1] = np.nan
    with _writer(tmp_path / "a.nc") as f:
        f.write("v", (slice(None), slice(0, 1), slice(None)), data[:, :1])
        f.write("v", (slice(None), slice(1, 2), slice(None)), data[:, 1:])
    with xr.open_dataset(tmp_path / "a.nc") as ds:
        np.testing.assert_array_equal(ds["v"].values, data)
        assert ds["time"].values[0] == np.datetime64("2016-01-01")
        assert ds["v"].attrs["units"] == "K"


def test_packing_rounds_to_the_scale(tmp_path: pathlib.Path) -> None:
    data = np.linspace(250, 300, 12).reshape(3, 2, 2)
    with _writer(tmp_path / "p.nc", packing=(0.01, 260.0)) as f:
        f.write("v", slice(None), data)
    with xr.open_dataset(tmp_path / "p.nc") as ds:
        assert ds["v"].encoding["dtype"] == np.int16
        np.testing.assert_allclose(ds["v"].values, data, atol=0.005 + 1e-9)


def test_failure_leaves_no_file_and_keeps_the_old_one(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "x.nc"
    with pytest.raises(ValueError, match="boom"), _writer(path) as f:
        f.write("v", slice(None), np.zeros((3, 2, 2)))
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"old")
    w = _writer(path)
    w.write("v", slice(None), np.ones((3, 2, 2)))
    assert path.read_bytes() == b"old"  # not replaced before close
    w.abort()
    w.abort()  # twice is harmless
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nc"]
    assert path.read_bytes() == b"old"


def test_same_data_same_bytes(tmp_path: pathlib.Path) -> None:
    for name in ("a.nc", "b.nc"):
        with _writer(tmp_path / name) as f:
            f.write("v", slice(None), np.arange(12.0).reshape(3, 2, 2))
    assert (tmp_path / "a.nc").read_bytes() == (tmp_path / "b.nc").read_bytes()


def test_trim_mantissa_relative_precision() -> None:
    x = np.random.default_rng(1).uniform(0.01, 100, 1000).astype(np.float32)
    t = trim_mantissa(x, 10)
    assert np.all(np.abs(t / x - 1) <= 2.0**-11 + 1e-7)
    assert np.isnan(trim_mantissa(np.array([np.nan], np.float32))).all()


def test_atomic_dir_removes_what_a_killed_writer_left(tmp_path: pathlib.Path) -> None:
    """A killed `xsomo predict --format zarr` left its partial store (`.sm.zarr.XXXXXXXX.tmp`)
    beside the store forever (QA); an `.old` folder is kept while it is the only copy."""
    from xsomo.io.atomic import atomic_dir

    target = tmp_path / "sm.zarr"
    partial = tmp_path / ".sm.zarr.ab12cd_9.tmp"
    old = tmp_path / ".sm.zarr.zz12cd_9.old"
    other = tmp_path / ".sm.zarr.x.ab12cd_9.tmp"
    for d in (partial, old, other):
        d.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("new")
    assert not partial.exists() and old.exists() and other.exists()  # no folder in place before: .old kept
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("newer")
    assert not old.exists() and other.exists() and (target / "a").read_text() == "newer"
