"""Extending a Zarr store along time (issue 17 items 1 and 4): ``to_zarr(..., state_file=)``,
``extend_zarr`` and ``xsomo extend --out STORE.zarr`` give the store of one prediction over the
whole period; a killed extension leaves the old days intact and is completed by the same call."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_inference import make_model, synthetic_drivers

import xsomo
from xsomo import cli
from xsomo.exceptions import GridMismatchError, XsomoValueError
from xsomo.io import somo as somo_io
from xsomo.prediction import inference, output

zarr = pytest.importorskip("zarr")

CHUNKS = {"lat": 2, "lon": 3}


@pytest.fixture(scope="module")
def model():
    return make_model(lookback=20, ensemble=2)


@pytest.fixture(scope="module")
def drivers() -> xr.Dataset:
    # 2014-12-12 + 20 spin-up days -> output from 2015-01-01 to 2017-12-31
    return synthetic_drivers(nlat=4, nlon=5, ndays=1116, seed=11, sea_cells=3, start="2014-12-12")


@pytest.fixture(scope="module")
def reference(model, drivers, tmp_path_factory) -> xr.Dataset:
    """2015-2017 predicted in one go, as a store (loaded)."""
    store = tmp_path_factory.mktemp("one_go") / "ref.zarr"
    sm = inference.predict(
        drivers, model, mode="continuous", chunks=CHUNKS, check_convergence=False
    )
    output.to_zarr(sm, store, progress=False)
    with xsomo.open_somo(store) as ds:
        return ds.load()


def _first_part(
    model, drivers, folder: pathlib.Path, last_day: str
) -> tuple[pathlib.Path, pathlib.Path]:
    part = drivers.sel(time=slice(None, last_day))
    sm = inference.predict(
        part, model, mode="continuous", chunks=CHUNKS, check_convergence=False, return_state=True
    )
    store, state = folder / "sm.zarr", folder / "state.nc"
    output.to_zarr(sm, store, progress=False, state_file=state)
    return store, state


def _continued(model, drivers, state: pathlib.Path, end: str | None = None) -> xr.Dataset:
    days = drivers if end is None else drivers.sel(time=slice(None, end))
    return inference.predict(days, model, state=state, return_state=True, chunks=CHUNKS)


def _assert_same_store(store: pathlib.Path, want: xr.Dataset, atol: float = 1e-6) -> None:
    """What a reader sees (consolidated metadata) and the arrays' own metadata agree with ``want``."""
    with xr.open_zarr(store, consolidated=True) as got:
        np.testing.assert_array_equal(got["time"].values, want["time"].values)
        np.testing.assert_array_equal(got["lat"].values, want["lat"].values)
        a, b = got["sm"].values, want["sm"].values
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        assert np.nanmax(np.abs(a - b)) <= atol, np.nanmax(np.abs(a - b))
        assert got.attrs["xsomo_model_id"] == want.attrs["xsomo_model_id"]
        assert got.attrs["xsomo_drivers_period"] == want.attrs["xsomo_drivers_period"]
        assert got["sm"].attrs["units"] == "m3 m-3"
    with xr.open_zarr(store, consolidated=False) as raw:  # no array longer than the metadata says
        assert raw.sizes["time"] == want.sizes["time"]
    assert not list(store.rglob("*.partial"))


@pytest.mark.parametrize(
    ("last_day", "chunking"),
    [("2016-12-31", None), ("2016-06-30", None), ("2016-06-30", (16, 2))],
    ids=["year-end", "mid-year", "mid-year-small-chunks"],
)
def test_predict_then_extend_store_equals_one_go(
    model, drivers, reference, tmp_path, monkeypatch, last_day, chunking
):
    """Issue 17: 2015-2016 (or to mid-2016, inside a time chunk) to a store with its state, then
    extended by the rest -> the store of 2015-2017 at once (<= 1e-6 m3 m-3). With 16-day x 2 x 2
    chunks the extension spans many chunks along every dimension (partial ones at the edges)."""
    if chunking is not None:
        monkeypatch.setattr(output, "ZARR_CHUNK_DAYS", chunking[0])
        monkeypatch.setattr(output, "ZARR_CHUNK_CELLS", chunking[1])
    store, state = _first_part(model, drivers, tmp_path, last_day)
    n_old = xr.open_zarr(store).sizes["time"]
    assert n_old % output.ZARR_CHUNK_DAYS, (
        "the store's last time chunk is partial: the case that matters"
    )
    assert somo_io.read_state(state).attrs["state_last_day"] == last_day
    ext = _continued(model, drivers, state)
    assert str(ext["time"].values[0])[:10] == str(
        (pd.Timestamp(last_day) + pd.Timedelta(days=1)).date()
    )
    assert output.extend_zarr(ext, store, state_file=state, progress=False) == store
    _assert_same_store(store, reference)
    assert somo_io.read_state(state).attrs["state_last_day"] == "2017-12-31"
    assert (
        somo_io.read_state(state).attrs["xsomo_drivers_period"]
        == reference.attrs["xsomo_drivers_period"]
    )
    with xsomo.open_somo(store) as ds:
        assert ds.rio.crs.to_epsg() == 4326
        assert ds.attrs["state_last_day"] == "2017-12-31"  # the store's own attribute follows its days
        side = output.ZARR_CHUNK_CELLS
        assert ds["sm"].encoding["chunks"] == (
            1,
            output.ZARR_CHUNK_DAYS,
            min(side, 4),
            min(side, 5),
        )


def test_time_chunks_align_with_the_store():
    for start in (0, 1, 95, 96, 97, 731):
        for n in (1, 30, 96, 200, 1000):
            chunks = output._time_chunks(start, n, 96)
            assert sum(chunks) == n and all(c > 0 for c in chunks)
            edges = start + np.cumsum(chunks)[:-1]
            assert (edges % 96 == 0).all(), (start, n, chunks)  # every inner edge on a boundary


def test_killed_before_the_state_then_rerun(model, drivers, reference, tmp_path, monkeypatch):
    """Killed after the store was extended (consolidated) but before the state: the rerun
    recomputes the days after the old state and overwrites them."""
    store, state = _first_part(model, drivers, tmp_path, "2016-06-30")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    ext = _continued(model, drivers, state)
    monkeypatch.setattr(somo_io, "write_state", killed)
    with pytest.raises(KeyboardInterrupt):
        output.extend_zarr(ext, store, state_file=state, progress=False)
    monkeypatch.undo()
    assert somo_io.read_state(state).attrs["state_last_day"] == "2016-06-30"
    assert (
        str(xr.open_zarr(store)["time"].values[-1])[:10] == "2017-12-31"
    )  # the store was extended
    output.extend_zarr(_continued(model, drivers, state), store, state_file=state, progress=False)
    _assert_same_store(store, reference)


def test_killed_before_consolidating_readers_see_the_old_store(
    model, drivers, reference, tmp_path, monkeypatch
):
    """Killed after the arrays were grown and written, before the consolidated metadata: readers
    see the old store unchanged; the rerun completes it."""
    store, state = _first_part(model, drivers, tmp_path, "2016-06-30")
    before = xsomo.open_somo(store).load()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zarr, "consolidate_metadata", killed)
    with pytest.raises(KeyboardInterrupt):
        output.extend_zarr(
            _continued(model, drivers, state), store, state_file=state, progress=False
        )
    monkeypatch.undo()
    with xr.open_zarr(store, consolidated=False) as raw:
        assert raw.sizes["time"] == reference.sizes["time"]  # the arrays were grown...
    with xsomo.open_somo(store) as seen:  # ...but readers see the old store, unchanged
        xr.testing.assert_identical(seen.load(), before)
    output.extend_zarr(_continued(model, drivers, state), store, state_file=state, progress=False)
    _assert_same_store(store, reference)


def test_days_beyond_the_state_are_not_dropped_by_a_shorter_rerun(
    model, drivers, reference, tmp_path, monkeypatch
):
    """A killed extension to 2017-12-31, then the extension to 2017-06-30 only: refused, as a
    state older than the store would cut its days (it had trimmed the store, and a kept copy of
    an old state did so after a completed extension, without a word); the same call again
    completes the store."""
    store, state = _first_part(model, drivers, tmp_path, "2016-12-31")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(somo_io, "write_state", killed)
    with pytest.raises(KeyboardInterrupt):
        output.extend_zarr(
            _continued(model, drivers, state), store, state_file=state, progress=False
        )
    monkeypatch.undo()
    with pytest.raises(GridMismatchError, match=r"holds days up to 2017-12-31, after this extension's end 2017-06-30"):
        output.extend_zarr(
            _continued(model, drivers, state, end="2017-06-30"), store, state_file=state, progress=False
        )
    output.extend_zarr(_continued(model, drivers, state), store, state_file=state, progress=False)
    _assert_same_store(store, reference)
    assert somo_io.read_state(state).attrs["state_last_day"] == "2017-12-31"


_KILL_AT = """
import os, signal, sys
kill_at = sys.argv.pop(1)
if kill_at == "state":
    import xsomo.io.somo as somo_io
    def write_state(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    somo_io.write_state = write_state
else:  # the N-th file zarr renames into the store after the arrays were resized
    import pathlib
    real, count = pathlib.Path.replace, [0]
    def replace(self, target):
        out = real(self, target)
        if str(target).endswith(".zarray") and "sm" in str(target):
            count[0] = 1
        elif count[0]:
            count[0] += 1
            if count[0] > int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)
        return out
    pathlib.Path.replace = replace
from xsomo.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # two CLI subprocesses per case: ~25 s on the shared 2-core box
@pytest.mark.parametrize("kill_at", ["3", "state"], ids=["mid-chunks", "before-state"])
def test_sigkill_during_cli_extend_then_rerun(model, drivers, reference, tmp_path, kill_at):
    """A real SIGKILL of `xsomo extend --out STORE.zarr` while it writes chunks, or just before the
    state; the old days stay readable and unchanged, the same command completes the store."""
    model.save(tmp_path / "model")
    drivers.to_netcdf(tmp_path / "drivers.nc")
    store, state = _first_part(model, drivers, tmp_path, "2016-06-30")
    before = xr.open_zarr(store).load()
    args = ["extend", "--drivers", str(tmp_path / "drivers.nc"), "--model", str(tmp_path / "model"),
            "--state", str(state), "--out", str(store), "--chunks", "lat=2,lon=3", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AT, kill_at, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert somo_io.read_state(state).attrs["state_last_day"] == "2016-06-30"
    with xsomo.open_somo(store) as seen:
        old = seen.sel(time=slice(None, "2016-06-30")).load()
        xr.testing.assert_equal(old["sm"], before["sm"])
    again = subprocess.run(
        [sys.executable, "-m", "xsomo.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_same_store(store, reference)


def test_extension_refuses_another_model_grid_layers_gap_or_missing_store(
    model, drivers, reference, tmp_path
):
    store, state = _first_part(model, drivers, tmp_path, "2016-06-30")
    ext = _continued(model, drivers, state)
    other = make_model(lookback=20, ensemble=2, seed=5)
    foreign = tmp_path / "foreign.zarr"
    sm = inference.predict(
        drivers.sel(time=slice(None, "2016-06-30")), other, mode="continuous", chunks=CHUNKS
    )
    output.to_zarr(sm, foreign, progress=False)
    with pytest.raises(
        output.ForeignOutputError, match=r"foreign\.zarr was written by model .* mix two models"
    ):
        output.extend_zarr(ext, foreign, state_file=state, progress=False)
    small = tmp_path / "small.zarr"
    sm = inference.predict(
        drivers.sel(time=slice(None, "2016-06-30")).isel(lat=slice(0, 3)),
        model,
        mode="continuous",
        chunks=CHUNKS,
    )
    output.to_zarr(sm, small, progress=False)
    with pytest.raises(GridMismatchError, match=r"small\.zarr lies on 3 x 5 cells.*another grid"):
        output.extend_zarr(ext, small, state_file=state, progress=False)
    one = tmp_path / "one.zarr"
    output.to_zarr(xr.open_zarr(store).sel(layer=[1]), one, progress=False)
    with pytest.raises(GridMismatchError, match=r"one\.zarr holds layers \[1\]"):
        output.extend_zarr(ext, one, state_file=state, progress=False)
    behind = tmp_path / "behind.zarr"
    output.to_zarr(xr.open_zarr(store).sel(time=slice(None, "2016-03-31")), behind, progress=False)
    with pytest.raises(
        GridMismatchError, match=r"behind\.zarr ends on 2016-03-31, before the state's last day"
    ):
        output.extend_zarr(ext, behind, state_file=state, progress=False)
    later = tmp_path / "later.zarr"
    output.to_zarr(reference.sel(time=slice("2016-07-01", None)), later, progress=False)
    with pytest.raises(
        GridMismatchError, match=r"later\.zarr starts on 2016-07-01, after the state's"
    ):
        output.extend_zarr(ext, later, state_file=state, progress=False)
    with pytest.raises(GridMismatchError, match=r"no Zarr store at .*missing\.zarr"):
        output.extend_zarr(ext, tmp_path / "missing.zarr", state_file=state, progress=False)
    with pytest.raises(XsomoValueError, match="continued from a saved state"):
        output.extend_zarr(xr.open_zarr(store), store, state_file=state, progress=False)
    # none of the refusals touched the store or the state
    n_days = len(pd.date_range("2015-01-01", "2016-06-30"))
    assert json.loads((store / ".zmetadata").read_text())["metadata"]["time/.zarray"]["shape"] == [
        n_days
    ]
    assert somo_io.read_state(state).attrs["state_last_day"] == "2016-06-30"


def test_cli_predict_zarr_save_state_then_extend(model, drivers, reference, tmp_path, capsys):
    """Issue 17 item 5 with a store: xsomo predict --format zarr --save-state, then xsomo extend."""
    model.save(tmp_path / "model")
    drivers.to_netcdf(tmp_path / "drivers.nc")
    store, state = tmp_path / "sm.zarr", tmp_path / "state.nc"
    common = ["--drivers", str(tmp_path / "drivers.nc"), "--model", str(tmp_path / "model"),
              "--chunks", "lat=2,lon=3", "--no-progress"]  # fmt: skip
    rc = cli.main(["predict", *common, "--mode", "continuous", "--format", "zarr", "--out", str(store),
                   "--end", "2016-12-31", "--save-state", str(state)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"state after the last day in {state}" in captured.out
    assert somo_io.read_state(state).attrs["state_last_day"] == "2016-12-31"
    rc = cli.main(
        ["extend", *common, "--state", str(state), "--out", str(tmp_path / "nothere.zarr")]
    )
    assert rc == 1 and "nothere.zarr: no Zarr store there" in capsys.readouterr().err
    assert not (tmp_path / "nothere.zarr").exists()
    rc = cli.main(["extend", *common, "--state", str(state), "--out", str(store)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert (
        "added 365 days (2017-01-01 to 2017-12-31)" in captured.out
        and "Zarr store extended" in captured.out
    )
    _assert_same_store(store, reference)


def test_the_roll_out_runs_once_per_block_for_store_and_state(
    model, drivers, tmp_path, monkeypatch
):
    """The store's chunks and the state are computed in one graph: each block is rolled out once
    by to_zarr(state_file=) and once by extend_zarr (they ran twice when xarray's delayed write
    was computed beside the state)."""
    from xsomo import conventions as cv

    calls: list[int] = []
    real = inference._predictor()

    def counting(*args, **kwargs):
        calls.append(args[1].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "_predictor", lambda: counting)
    mask = drivers[cv.LAND_MASK].values
    land_blocks = sum(
        bool(mask[y0 : y0 + 2, x0 : x0 + 3].any()) for y0 in range(0, 4, 2) for x0 in range(0, 5, 3)
    )
    store, state = _first_part(model, drivers, tmp_path, "2016-06-30")
    assert len(calls) == land_blocks and sum(calls) == int(mask.sum())
    calls.clear()
    output.extend_zarr(_continued(model, drivers, state), store, state_file=state, progress=False)
    assert len(calls) == land_blocks and sum(calls) == int(mask.sum())


@pytest.mark.slow  # a 2-process cluster: 14-36 s on the shared 2-core box
def test_store_and_extension_written_by_distributed_workers(model, drivers, reference, tmp_path):
    """Chunks written in parallel by the worker processes of a dask.distributed cluster."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        part = drivers.sel(time=slice(None, "2016-06-30"))
        sm = inference.predict(
            part, model, mode="continuous", chunks=CHUNKS, check_convergence=False,
            return_state=True, client=client,
        )  # fmt: skip
        store, state = tmp_path / "sm.zarr", tmp_path / "state.nc"
        output.to_zarr(sm, store, progress=False, state_file=state, client=client)
        ext = inference.predict(
            drivers, model, state=state, return_state=True, chunks=CHUNKS, client=client
        )
        output.extend_zarr(ext, store, state_file=state, progress=False, client=client)
    _assert_same_store(store, reference)
