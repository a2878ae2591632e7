"""The xarray backend ``engine="somo"`` and :func:`xsomo.open_somo`."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from somo_files import GRID, expected_value, write_somo_file, write_somo_files

import xsomo
from xsomo import conventions as cv
from xsomo.exceptions import DataFormatError, GridMismatchError, XsomoValueError
from xsomo.io.somo import SomoBackendEntrypoint, find_somo_files


@pytest.fixture(scope="module")
def somo_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("somo")
    write_somo_files(d, layers=(1, 2, 3), years=(2010, 2011))
    (d / "notes.txt").write_text("not a SoMo file")
    return d


def _check_values(ds: xr.Dataset, layer: int, times: list[str]) -> None:
    got = ds.sm.sel(layer=layer, time=times).values
    want = expected_value(
        layer, np.array(times, dtype="datetime64[ns]"), ds.lat.values, ds.lon.values
    )
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def test_engine_opens_folder_as_one_dataset(somo_dir: pathlib.Path) -> None:
    ds = xr.open_dataset(somo_dir, engine="somo")
    assert ds.sm.dims == ("layer", "time", "lat", "lon")
    assert ds.sizes == {"layer": 3, "time": 365 * 2, "lat": GRID.nlat, "lon": GRID.nlon}
    assert list(ds.layer.values) == [1, 2, 3]
    np.testing.assert_allclose(ds.depth_top, [lay.top for lay in cv.LAYERS])
    np.testing.assert_allclose(ds.depth_bottom, [lay.bottom for lay in cv.LAYERS])
    assert ds.lat.values[0] > ds.lat.values[-1]  # as in the files: descending
    assert ds.sm.attrs["units"] == "m3 m-3"
    assert ds.sm.attrs["standard_name"] == cv.SM_ATTRS["standard_name"]
    assert ds.rio.crs.to_epsg() == 4326
    assert ds.sm.rio.crs.to_epsg() == 4326
    # one day from each year and each layer, across the year boundary
    for layer in (1, 2, 3):
        _check_values(ds, layer, ["2010-03-05", "2010-12-31", "2011-01-01", "2011-08-20"])
    ds.close()


def test_open_somo_is_dask_backed_and_lazy(somo_dir: pathlib.Path) -> None:
    ds = xsomo.open_somo(somo_dir)
    assert ds.sm.chunks is not None
    # chunks are one layer and multiples of the files' 64-day netCDF chunks
    assert set(ds.sm.chunks[0]) == {1}
    assert all(c % 64 == 0 for c in ds.sm.chunks[1][:-1])
    assert max(xsomo.open_somo(somo_dir, chunks={}).sm.chunks[1]) == 64  # the files' own
    assert xsomo.open_somo(somo_dir, chunks=None).sm.chunks is None
    _check_values(ds, 2, ["2011-02-28"])
    mean = ds.sm.sel(layer=3).mean("time")
    assert mean.chunks is not None  # still lazy
    t = ds.time.values
    want = expected_value(3, t, ds.lat.values, ds.lon.values).mean(axis=0)
    np.testing.assert_allclose(mean.values, want, rtol=0, atol=1e-6)


def test_glob_subsets_and_missing_layer_years_are_nan(tmp_path: pathlib.Path) -> None:
    write_somo_files(tmp_path, layers=(1,), years=(2010, 2011), days=10)
    write_somo_files(tmp_path, layers=(3,), years=(2011,), days=10)
    # layer 3 lacks the days of 2010 that layer 1 holds: opened, NaN there, with a warning
    with pytest.warns(RuntimeWarning, match=r"layer 3 lacks 10 days .*no file of 2010"):
        ds = xr.open_dataset(str(tmp_path / "SoMo.ml-EU_layer*_*.nc"), engine="somo")
    assert list(ds.layer.values) == [1, 3]
    assert ds.sizes["time"] == 20
    assert np.isnan(ds.sm.sel(layer=3, time="2010-01-05")).all()
    _check_values(ds, 3, ["2011-01-05"])
    only = xsomo.open_somo(tmp_path, layers=[1], years=[2011])
    assert list(only.layer.values) == [1]
    assert pd.DatetimeIndex(only.time.values).year.unique().tolist() == [2011]
    one = xr.open_dataset(tmp_path / cv.output_filename(1, 2010), engine="somo")
    assert one.sizes["time"] == 10
    listed = xsomo.open_somo([tmp_path / cv.output_filename(1, 2011), tmp_path / cv.output_filename(3, 2011)])  # no warning
    assert list(listed.layer.values) == [1, 3] and listed.sizes["time"] == 10


def test_somoml_v1_names_in_layer_folders(tmp_path: pathlib.Path) -> None:
    write_somo_files(tmp_path, layers=(1, 2), years=(2012,), v1=True, days=5)
    ds = xsomo.open_somo(tmp_path)
    assert list(ds.layer.values) == [1, 2]
    _check_values(ds, 2, ["2012-01-03"])
    assert SomoBackendEntrypoint().guess_can_open(
        tmp_path / "SoMo.ml_v1_layer1" / "SoMo.ml_v1_layer1_2012.nc"
    )
    assert not SomoBackendEntrypoint().guess_can_open(tmp_path / "other.nc")


def test_file_without_grid_mapping_gets_epsg4326(tmp_path: pathlib.Path) -> None:
    ds = xr.Dataset(
        {"layer1": (("time", "lat", "lon"), np.zeros((2, 3, 4), np.float32))},
        coords={
            "time": pd.date_range("2010-01-01", periods=2),
            "lat": [50.25, 50.15, 50.05],
            "lon": [10.05, 10.15, 10.25, 10.35],
        },
    )
    ds.to_netcdf(tmp_path / "SoMo.ml_v1_layer1_2010.nc")
    out = xsomo.open_somo(tmp_path)
    assert out.rio.crs.to_epsg() == 4326


def test_bad_inputs_name_the_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no SoMo\.ml files"):
        xsomo.open_somo(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        xsomo.open_somo(tmp_path / "absent")
    # two products in one folder
    write_somo_files(tmp_path / "mixed", layers=(1,), years=(2010,), days=2)
    write_somo_files(tmp_path / "mixed", layers=(1,), years=(2011,), days=2, v1=True)
    with pytest.raises(XsomoValueError, match="several products"):
        find_somo_files(tmp_path / "mixed")
    # another grid
    write_somo_files(tmp_path / "grids", layers=(1,), years=(2010,), days=2)
    write_somo_file(
        tmp_path / "grids" / cv.output_filename(1, 2011),
        1,
        2011,
        days=2,
        grid=cv.GridSpec(west=10.0, east=11.0, south=50.0, north=51.2),
    )
    with pytest.raises(GridMismatchError, match="layer1_2011"):
        xsomo.open_somo(tmp_path / "grids")
    # wrong variable name / not netCDF
    xr.Dataset({"sm": ("x", [1.0])}).to_netcdf(tmp_path / cv.output_filename(2, 2010))
    with pytest.raises(DataFormatError, match=r"layer2_2010.*no variable 'layer2'"):
        xsomo.open_somo(tmp_path / cv.output_filename(2, 2010))
    (tmp_path / "trunc").mkdir()
    (tmp_path / "trunc" / cv.output_filename(1, 2010)).write_bytes(b"CDF\x01 truncated")
    with pytest.raises(DataFormatError, match="cannot be read"):
        xsomo.open_somo(tmp_path / "trunc")


def test_backend_import_is_light() -> None:
    """xarray imports every backend on first use: importing ours must not pull torch or rasterio."""
    code = (
        "import sys, xsomo.io.somo; "
        "heavy = [m for m in ('torch', 'rasterio', 'rioxarray', 'geopandas') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "import xarray as xr; engines = xr.backends.list_engines(); "
        "assert 'somo' in engines; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_round_trip_with_output_to_files(tmp_path: pathlib.Path) -> None:
    """Files written by xsomo.prediction.output.to_files open as the prediction they came from (lat order aside)."""
    pytest.importorskip("xsomo.prediction.output")
    from xsomo.prediction import output

    time = pd.date_range("2010-12-20", "2011-01-10", freq="D")
    lat, lon = GRID.lat, GRID.lon  # ascending, as predict returns them
    data = np.stack([expected_value(n, time.to_numpy(), lat, lon) for n in (1, 2, 3)])
    pred = xr.Dataset(
        {"sm": (("layer", "time", "lat", "lon"), data, cv.SM_ATTRS)},
        coords={"time": time, **GRID.coords(), **cv.layer_coords()},
    )
    files = output.to_files(pred, tmp_path, progress=False)
    assert len(files) == 6
    ds = xsomo.open_somo(tmp_path)
    assert ds.rio.crs.to_epsg() == 4326
    back = ds.sm.sortby("lat").load()
    xr.testing.assert_allclose(back.drop_vars("spatial_ref", errors="ignore"), pred.sm, atol=1e-7)
    # attributes of one file (its layer, depth, year) do not describe the stack: only shared ones
    one = xsomo.open_somo(files[0])
    per_file = {k for k in one.attrs if k in ("layer", "layer_depth", "year")}
    assert per_file, one.attrs  # the files carry them
    assert not per_file & set(ds.attrs), ds.attrs
    shared = {k: v for k, v in one.attrs.items() if k not in per_file and k != "source_files"}
    assert shared and all(k in ds.attrs for k in shared)


def test_lazy_dataset_pickles_for_distributed_workers(somo_dir: pathlib.Path) -> None:
    import pickle

    ds = xsomo.open_somo(somo_dir, layers=[2])
    again = pickle.loads(pickle.dumps(ds))
    sel = {"layer": 2, "time": "2010-05-17"}
    np.testing.assert_array_equal(again.sm.sel(sel).values, ds.sm.sel(sel).values)


def test_entry_point_takes_xarrays_standard_keywords(somo_dir: pathlib.Path) -> None:
    """Issue 19 bug 3: xarray passes decode_coords & co. to the engine it picks by file name."""
    path = somo_dir / cv.output_filename(1, 2010)
    with xr.open_dataset(
        path, engine="somo", decode_coords="all", mask_and_scale=True, decode_times=True,
        concat_characters=True, decode_timedelta=False,
    ) as ds:  # fmt: skip
        _check_values(ds, 1, ["2010-03-05"])
        assert ds.rio.crs.to_epsg() == 4326
    with xr.open_dataset(path, engine="somo", decode_times=False) as raw:
        assert np.issubdtype(raw["time"].dtype, np.number)  # passed on to the file, not ignored
    with xr.open_dataset(somo_dir, engine="somo", drop_variables="spatial_ref") as dropped:
        assert "spatial_ref" not in dropped.variables
        _check_values(dropped, 3, ["2011-08-20"])


def test_a_somo_named_file_netcdf_cannot_read_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    """Issue 19 bug 3: a text file under a SoMo name: xarray picks the somo engine by the name."""
    from xsomo.exceptions import XsomoError

    bad = tmp_path / cv.output_filename(1, 2010)
    bad.write_text("this is not netCDF\n")
    for call in (
        lambda: xr.open_dataset(bad),  # engine guessed by the name
        lambda: xr.open_dataset(bad, decode_coords="all"),
        lambda: xsomo.open_somo(tmp_path),
    ):
        with pytest.raises(XsomoError, match=r"SoMo\.ml-EU_layer1_2010\.nc.*cannot be read as netCDF") as err:
            call()
        assert isinstance(err.value, DataFormatError)


def test_files_of_two_models_are_refused(tmp_path: pathlib.Path) -> None:
    """A year predicted by another model was merged silently (its xsomo_model_id dropped)."""
    paths = write_somo_files(tmp_path, layers=(1,), years=(2010, 2011), days=5)
    for p, mid in zip(sorted(paths), ("sha256:aaaa", "sha256:bbbb"), strict=True):
        with xr.open_dataset(p) as ds:
            ds = ds.load()
        ds.attrs["xsomo_model_id"] = mid
        ds.to_netcdf(p, mode="w")
    with pytest.raises(DataFormatError, match=r"2 different models.*sha256:aaaa.*sha256:bbbb"):
        xsomo.open_somo(tmp_path)
    one = xsomo.open_somo(tmp_path, years=[2011])
    assert one.attrs["xsomo_model_id"] == "sha256:bbbb"


def test_messages_name_the_files_that_do_not_fit(tmp_path: pathlib.Path) -> None:
    """'two files of the same layer share days' named no file; a flipped grid read as another grid."""
    write_somo_files(tmp_path, layers=(1,), years=(2010,), days=5)
    renamed = tmp_path / cv.output_filename(1, 2011)
    write_somo_file(tmp_path / "x" / cv.output_filename(1, 2010), 1, 2010, days=5).rename(renamed)
    with pytest.raises(DataFormatError, match=r"layer 1 share days: .*2010\.nc and .*2011\.nc"):
        xsomo.open_somo(tmp_path)
    renamed.unlink()
    with xr.open_dataset(tmp_path / cv.output_filename(1, 2010)) as ds:
        flipped = ds.load().isel(lat=slice(None, None, -1))
    flipped.to_netcdf(tmp_path / cv.output_filename(1, 2012))
    with pytest.raises(GridMismatchError, match="latitudes in the other order"):
        xsomo.open_somo(tmp_path)
