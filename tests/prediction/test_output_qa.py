"""Outputs and scale-out, a hostile-user QA pass: wrong paths and options that used to delete
files, write what the readers refuse, or fail only after the whole computation."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
import xarray as xr
from test_inference import make_model, synthetic_drivers

from xsomo import cli
from xsomo import conventions as cv
from xsomo.exceptions import XsomoValueError
from xsomo.prediction import inference, output

zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def model():
    return make_model(lookback=20)


@pytest.fixture(scope="module")
def drivers() -> xr.Dataset:
    # 2015-12-02 + 20 spin-up days -> output 2015-12-22 .. 2016-02-19 (two years)
    return synthetic_drivers(nlat=4, nlon=5, ndays=80, seed=8, sea_cells=2, start="2015-12-02")


@pytest.fixture(scope="module")
def sm(model, drivers) -> xr.Dataset:
    return inference.predict(
        drivers, model, chunks={"lat": 2, "lon": 5}, mode="continuous", check_convergence=False,
        return_state=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cli_inputs(model, drivers, tmp_path_factory) -> tuple[pathlib.Path, list[str]]:
    root = tmp_path_factory.mktemp("qa_cli")
    model.save(root / "model")
    drivers.to_netcdf(root / "drivers.nc")
    argv = ["predict", "--drivers", str(root / "drivers.nc"), "--model", str(root / "model"),
            "--mode", "continuous", "--no-progress"]  # fmt: skip
    return root, argv


def _never_computed(monkeypatch) -> None:
    """Fail the test if a block is computed (the checks must come first)."""

    def boom(*args, **kwargs):
        raise AssertionError("computed before the check")

    monkeypatch.setattr(output, "_iter_blocks", boom)
    monkeypatch.setattr(output, "_compute", boom)


def test_to_zarr_never_replaces_a_folder_that_is_not_a_store(sm, tmp_path, monkeypatch):
    """`--format zarr --out sm/ --overwrite` on the folder of netCDF files deleted them all."""
    folder = tmp_path / "sm"
    folder.mkdir()
    kept = [folder / cv.output_filename(1, 2016), folder / "notes.txt"]
    for p in kept:
        p.write_text("mine")
    _never_computed(monkeypatch)
    for overwrite in (False, True):
        with pytest.raises(output.OutputWriteError, match="not a Zarr store"):
            output.to_zarr(sm, folder, overwrite=overwrite, progress=False)
    assert sorted(folder.iterdir()) == sorted(kept)
    plain = tmp_path / "plain.zarr"
    plain.write_text("x")
    with pytest.raises(output.OutputWriteError, match="is a file"):
        output.to_zarr(sm, plain, overwrite=True, progress=False)
    assert plain.read_text() == "x"


def test_to_zarr_takes_an_empty_folder_and_replaces_only_a_store(sm, tmp_path):
    empty = tmp_path / "made_first.zarr"
    empty.mkdir()
    output.to_zarr(sm, empty, progress=False)  # an empty folder holds nothing to lose
    with pytest.raises(output.OutputWriteError, match="exists"):
        output.to_zarr(sm, empty, progress=False)
    output.to_zarr(sm, empty, overwrite=True, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.name != "made_first.zarr"]


def test_files_are_not_written_into_a_zarr_store(sm, tmp_path, monkeypatch):
    store = output.to_zarr(sm, tmp_path / "sm.zarr", progress=False)
    before = sorted(p.name for p in store.iterdir())
    _never_computed(monkeypatch)
    with pytest.raises(XsomoValueError, match="is a Zarr store"):
        output.to_files(sm, store, progress=False)
    assert sorted(p.name for p in store.iterdir()) == before


@pytest.mark.parametrize("where", ["folder", "below_a_file"])
def test_a_state_file_that_cannot_be_written_fails_before_computing(sm, tmp_path, monkeypatch, where):
    """The state is written last: a folder (or a path below a file) as state_file failed only
    after every block had been computed and every file written."""
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    state = tmp_path / "a_folder" if where == "folder" else tmp_path / "a_file" / "state.nc"
    _never_computed(monkeypatch)
    with pytest.raises(output.OutputWriteError, match="state_file"):
        output.to_files(sm, tmp_path / "files", progress=False, state_file=state)
    assert not list((tmp_path / "files").glob("*.nc"))
    with pytest.raises(output.OutputWriteError, match="state_file"):
        output.to_zarr(sm, tmp_path / "sm.zarr", progress=False, state_file=state)
    assert not (tmp_path / "sm.zarr").exists()


def test_cli_refuses_wrong_targets_before_computing(cli_inputs, tmp_path, capsys, monkeypatch):
    _, argv = cli_inputs
    files = tmp_path / "files"
    files.mkdir()
    (files / cv.output_filename(1, 2016)).write_text("an earlier run")
    _never_computed(monkeypatch)

    def run(*extra: str) -> str:
        assert cli.main([*argv, *extra]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "rerun with --debug" not in err, err
        return err

    assert "not a Zarr store" in run("--format", "zarr", "--out", str(files), "--overwrite")
    assert (files / cv.output_filename(1, 2016)).read_text() == "an earlier run"
    # --years was ignored by --format zarr: every year went into the store
    assert "--years" in run("--format", "zarr", "--out", str(tmp_path / "y.zarr"), "--years", "2016")
    assert not (tmp_path / "y.zarr").exists()
    (tmp_path / "a_file").write_text("x")
    assert "--save-state" in run("--out", str(tmp_path / "o"), "--save-state", str(tmp_path / "a_file" / "s.nc"))
    assert "--save-state" in run("--out", str(tmp_path / "o"), "--save-state", str(files))
    assert not (tmp_path / "o").exists()


def test_cli_netcdf_into_a_zarr_store_is_refused(cli_inputs, sm, tmp_path, capsys):
    _, argv = cli_inputs
    store = output.to_zarr(sm, tmp_path / "sm.zarr", progress=False)
    before = sorted(p.name for p in store.iterdir())
    assert cli.main([*argv, "--out", str(store)]) == 1
    assert "--format zarr" in capsys.readouterr().err
    assert sorted(p.name for p in store.iterdir()) == before
    np.testing.assert_array_equal(  # the store is intact
        xr.open_zarr(store)["sm"].sortby("lat").values, sm["sm"].compute().values.astype(np.float32)
    )


def test_a_store_asked_for_layers_or_years_it_lacks_says_what_it_holds(sm, tmp_path, capsys):
    """`xsomo export --input sm.zarr --layer 2` on a store of layer 1 ended in "unexpected KeyError";
    open_somo(store, years=[absent]) gave an empty Dataset (files: FileNotFoundError)."""
    import xsomo

    store = output.to_zarr(sm.sel(layer=[1]), tmp_path / "l1.zarr", progress=False)
    with pytest.raises(FileNotFoundError, match=r"holds layers \[1\]"):
        xsomo.open_somo(store, layers=[2])
    with pytest.raises(FileNotFoundError, match="2015-2016, none of"):
        xsomo.open_somo(store, years=[2030])
    assert xsomo.open_somo(store, layers=[1, 2], years=[2016, 2030]).sizes["layer"] == 1
    argv = ["export", "--input", str(store), "--layer", "2", "--date", "2016-01-05", "--out", str(tmp_path / "m.tif")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "holds layers [1]" in err and "unexpected" not in err, err


def test_days_out_of_order_are_written_in_order_and_repeated_days_refused(sm, tmp_path, monkeypatch):
    """A reversed prediction was written with descending days (open_somo then refused the files);
    a repeated day was written twice into its year's file."""
    import xsomo

    want = sm["sm"].compute()
    files = output.to_files(sm.isel(time=slice(None, None, -1)), tmp_path / "rev", progress=False)
    got = xsomo.open_somo(tmp_path / "rev")["sm"].sortby("lat").compute()
    np.testing.assert_array_equal(got["time"].values, want["time"].values)
    np.testing.assert_array_equal(got.values, want.values)
    assert len(files) == 6
    store = output.to_zarr(sm.isel(time=slice(None, None, -1)), tmp_path / "rev.zarr", progress=False)
    np.testing.assert_array_equal(xsomo.open_somo(store)["sm"].sortby("lat").values, want.values)
    twice = xr.concat([sm["sm"].isel(time=slice(0, 5)), sm["sm"].isel(time=slice(3, 8))], dim="time")
    _never_computed(monkeypatch)
    with pytest.raises(XsomoValueError, match="more than once"):
        output.to_files(twice, tmp_path / "dup", progress=False)
    with pytest.raises(XsomoValueError, match="more than once"):
        output.to_zarr(twice, tmp_path / "dup.zarr", progress=False)
    assert not (tmp_path / "dup.zarr").exists() and not list(tmp_path.glob("dup/*.nc"))


def test_gdal_places_the_zarr_store(sm, tmp_path):
    """GDAL 3.4-3.8 (QGIS LTRs) read a Zarr array's CRS only from its `_CRS` attribute: the store
    had only the CF grid mapping, and gdalinfo 3.6 showed it without a coordinate system."""
    import json
    import shutil
    import subprocess

    import xsomo

    store = output.to_zarr(sm, tmp_path / "sm.zarr", progress=False)
    crs = json.loads((store / "sm" / ".zattrs").read_text())["_CRS"]
    assert crs["url"].endswith("EPSG/0/4326") and 'ID["EPSG",4326]' in crs["wkt"]
    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo:
        info = subprocess.run(
            [gdalinfo, f'ZARR:"{store}":/sm:0:0'], capture_output=True, text=True, check=True
        ).stdout
        assert 'ID["EPSG",4326]' in info, info
        lon = sm["lon"].values
        assert f"Origin = ({lon.min() - 0.05:.6f}" in info
    ds = xsomo.open_somo(store)
    assert "_CRS" not in ds["sm"].attrs and ds.rio.crs.to_epsg() == 4326
    ds.isel(time=slice(0, 2)).to_netcdf(tmp_path / "copy.nc")  # (a dict attribute would fail here)


@pytest.mark.parametrize("address", ["notanaddress", "tcp://127.0.0.1:9"])
def test_cli_scheduler_that_cannot_be_reached_is_named(cli_inputs, tmp_path, capsys, address):
    """`--scheduler notanaddress` ended in "unexpected ValueError ... a bug in xsomo"; a scheduler
    that does not answer in "Timed out ... Check the path"."""
    pytest.importorskip("distributed")
    import dask

    _, argv = cli_inputs
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert cli.main([*argv, "--out", str(tmp_path / "o"), "--scheduler", address]) == 1
    err = capsys.readouterr().err
    assert f"--scheduler {address}: no dask scheduler could be reached" in err, err
    assert "unexpected" not in err and "rerun with --debug" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("level", [10, -1, 2.5, True])
def test_a_compression_level_netcdf_cannot_write_fails_before_computing(sm, tmp_path, monkeypatch, level):
    _never_computed(monkeypatch)
    with pytest.raises(XsomoValueError, match="complevel must be a zlib level 0-9"):
        output.to_files(sm, tmp_path, progress=False, complevel=level)
    assert not list(tmp_path.iterdir())


def test_resume_refuses_files_written_with_other_settings(model, drivers, sm, tmp_path):
    """A rerun with another spin-up, mode or dtype must not keep the earlier run's files as its own."""
    first = output.to_files(sm, tmp_path, progress=False)
    assert first and output.to_files(sm, tmp_path, progress=False) == first  # same settings: resumed
    kw = {"chunks": {"lat": 2, "lon": 5}, "check_convergence": False}
    for other, said in (
        ({"mode": "continuous", "spinup": 30}, "spinup_days=20 (this run: 30)"),
        ({"mode": "continuous", "dtype": "float64"}, "inference_dtype=float32 (this run: float64)"),
        ({"mode": "windowed"}, "inference_mode=continuous (this run: windowed)"),
    ):
        again = inference.predict(drivers, model, **kw, **other)
        again = again.sel(time=slice(sm.time[0], None))
        with pytest.raises(output.ForeignOutputError, match=r"other settings: .*" + re.escape(said)):
            output.to_files(again, tmp_path, progress=False)
