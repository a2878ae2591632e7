"""Keeping the dataset current (issue 17): saved states, ``predict(..., state=)``, ``extend_files``
and ``xsomo extend`` give the same files as one prediction over the whole period."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_inference import make_model, synthetic_drivers

from xsomo import cli
from xsomo import conventions as cv
from xsomo.exceptions import GridMismatchError, XsomoValueError
from xsomo.io import somo as somo_io
from xsomo.prediction import inference, output

CHUNKS = {"lat": 2, "lon": 3}


@pytest.fixture(scope="module")
def model():
    return make_model(lookback=20, ensemble=2)


@pytest.fixture(scope="module")
def drivers() -> xr.Dataset:
    # 2014-12-12 + 20 spin-up days -> output from 2015-01-01 to 2017-12-31
    return synthetic_drivers(nlat=4, nlon=5, ndays=1116, seed=11, sea_cells=3, start="2014-12-12")


@pytest.fixture(scope="module")
def reference(model, drivers, tmp_path_factory) -> pathlib.Path:
    """2015-2017 predicted in one go."""
    out = tmp_path_factory.mktemp("one_go")
    sm = inference.predict(drivers, model, mode="continuous", chunks=CHUNKS, check_convergence=False)
    assert str(sm["time"].values[0])[:10] == "2015-01-01" and str(sm["time"].values[-1])[:10] == "2017-12-31"
    output.to_files(sm, out, progress=False)
    return out


def _assert_same_files(got: pathlib.Path, want: pathlib.Path, atol: float = 1e-6) -> None:
    names = sorted(p.name for p in want.glob("SoMo*.nc"))
    assert sorted(p.name for p in got.glob("SoMo*.nc")) == names and len(names) == 9
    for name in names:
        n = int(name.split("_layer")[1][0])
        with xr.open_dataset(got / name) as a, xr.open_dataset(want / name) as b:
            np.testing.assert_array_equal(a["time"].values, b["time"].values)
            va, vb = a[f"layer{n}"].values, b[f"layer{n}"].values
            np.testing.assert_array_equal(np.isnan(va), np.isnan(vb))
            assert np.nanmax(np.abs(va - vb)) <= atol, (name, np.nanmax(np.abs(va - vb)))
            assert a.attrs["xsomo_model_id"] == b.attrs["xsomo_model_id"]


def _first_part(model, drivers, out: pathlib.Path, last_day: str) -> pathlib.Path:
    part = drivers.sel(time=slice(None, last_day))
    sm = inference.predict(
        part, model, mode="continuous", chunks=CHUNKS, check_convergence=False, return_state=True
    )
    state = out / "state.nc"
    output.to_files(sm, out, progress=False, state_file=state)
    return state


@pytest.mark.parametrize("last_day", ["2016-12-31", "2016-06-30"], ids=["year-end", "mid-year"])
def test_predict_then_extend_equals_one_go(model, drivers, reference, tmp_path, last_day):
    """Issue 17 item 3: 2015-2016 (or to mid-2016) then extended to 2017 == 2015-2017 at once."""
    state_file = _first_part(model, drivers, tmp_path, last_day)
    state = somo_io.read_state(state_file)
    assert state.attrs["state_last_day"] == last_day
    assert state[inference.STATE].dims == ("state_layer", "member", "hc", "lat", "lon", "unit")
    land = drivers[cv.LAND_MASK].values.astype(bool)
    values = state[inference.STATE].values
    assert np.isfinite(values[..., land, :]).all() and np.isnan(values[..., ~land, :]).all()
    ext = inference.predict(drivers, model, state=state, return_state=True, chunks=CHUNKS)
    day_after = (pd.Timestamp(last_day) + pd.Timedelta(days=1)).date()
    assert pd.Timestamp(ext["time"].values[0]).date() == day_after  # only the new days
    assert (ext[inference.SPINUP_DAYS].values[land] == inference.CONTINUED).all()
    output.extend_files(ext, tmp_path, state_file=state_file, progress=False)
    _assert_same_files(tmp_path, reference)
    assert somo_io.read_state(state_file).attrs["state_last_day"] == "2017-12-31"


def test_a_killed_extension_is_completed_by_the_same_call(model, drivers, reference, tmp_path, monkeypatch):
    """The state is written last: killed after the files were renamed, the rerun recomputes the
    days after the state and gives the same folder."""
    state_file = _first_part(model, drivers, tmp_path, "2016-06-30")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    ext = inference.predict(drivers, model, state=state_file, return_state=True, chunks=CHUNKS)
    monkeypatch.setattr(somo_io, "write_state", killed)
    with pytest.raises(KeyboardInterrupt):
        output.extend_files(ext, tmp_path, state_file=state_file, progress=False)
    monkeypatch.undo()
    assert somo_io.read_state(state_file).attrs["state_last_day"] == "2016-06-30"  # the old state
    with xr.open_dataset(tmp_path / cv.output_filename(1, 2016)) as ds:
        assert str(ds["time"].values[-1])[:10] == "2016-12-31"  # the files were extended
    again = inference.predict(drivers, model, state=state_file, return_state=True, chunks=CHUNKS)
    output.extend_files(again, tmp_path, state_file=state_file, progress=False)
    _assert_same_files(tmp_path, reference)


def test_extension_refuses_another_model_grid_gap_or_windows(model, drivers, tmp_path):
    state_file = _first_part(model, drivers, tmp_path, "2016-06-30")
    with pytest.raises(XsomoValueError, match="another model"):
        inference.predict(drivers, make_model(lookback=20, ensemble=2, seed=5), state=state_file)
    with pytest.raises(GridMismatchError, match="grid of the state"):
        inference.predict(drivers.isel(lat=slice(0, 3)), model, state=state_file)
    with pytest.raises(GridMismatchError, match="days between are missing"):
        inference.predict(drivers.sel(time=slice("2016-07-05", None)), model, state=state_file)
    with pytest.raises(GridMismatchError, match="no new days"):
        inference.predict(drivers.sel(time=slice(None, "2016-06-30")), model, state=state_file)
    with pytest.raises(GridMismatchError, match="overlap"):
        inference.predict(drivers, model, state=state_file, time=("2016-06-01", "2017-12-31"))
    with pytest.raises(XsomoValueError, match="window-by-window"):
        inference.predict(drivers, model, state=state_file, mode="windowed")
    with pytest.raises(XsomoValueError, match="window-by-window"):
        inference.predict(drivers, model, mode="windowed", return_state=True)


def test_cli_predict_save_state_then_extend(model, drivers, reference, tmp_path, capsys):
    """Issue 17 item 5: the CLI spelling scripts rely on."""
    model.save(tmp_path / "model")
    drivers.to_netcdf(tmp_path / "drivers.nc")
    out, state = tmp_path / "sm", tmp_path / "sm" / "state.nc"
    common = ["--drivers", str(tmp_path / "drivers.nc"), "--model", str(tmp_path / "model"),
              "--chunks", "lat=2,lon=3", "--mode", "continuous", "--no-progress"]  # fmt: skip
    out.mkdir()
    stale = out / ".state.q6_edzsa.tmp.nc"  # a run killed while writing its state had left this for good
    stale.write_bytes(b"partial")
    rc = cli.main(["predict", *common, "--out", str(out), "--end", "2016-12-31", "--save-state", str(state)])
    assert rc == 0, capsys.readouterr().err
    assert somo_io.read_state(state).attrs["state_last_day"] == "2016-12-31"
    assert not stale.exists()
    rc = cli.main(["extend", *common[:4], "--state", str(state), "--out", str(out), "--no-progress",
                   "--chunks", "lat=2,lon=3"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "added 365 days (2017-01-01 to 2017-12-31)" in captured.out
    _assert_same_files(out, reference)
    # the same job again, before new forcing arrived: nothing to add, not an error
    before = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}
    for extra in ([], ["--end", "2017-06-30"]):
        rc = cli.main(["extend", *common[:4], "--state", str(state), "--out", str(out), "--no-progress", *extra])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        assert "nothing to do" in captured.out and "already reaches 2017-12-31" in captured.out
    assert {f.name: f.stat().st_mtime_ns for f in out.iterdir()} == before
    _assert_same_files(out, reference)
    rc = cli.main(["extend", *common[:4], "--state", str(state), "--out", str(out), "--mode", "windowed"])
    err = capsys.readouterr().err
    assert rc == 1 and "--mode windowed: window-by-window" in err and "return_state" not in err
    # a state saved with a subset of the layers or years could not be extended (extend appends
    # to every layer's file of its last day): refused before anything is computed (QA)
    for subset in (["--layers", "1"], ["--years", "2015"]):
        rc = cli.main(["predict", *common, "--out", str(tmp_path / "sub"), "--save-state", str(tmp_path / "s.nc"), *subset])
        assert rc == 1 and "cannot be saved with --years or a subset" in capsys.readouterr().err
        assert not (tmp_path / "s.nc").exists() and not list((tmp_path / "sub").glob("*.nc"))


def test_a_year_end_extension_checks_the_folder_it_appends_to(model, drivers, tmp_path):
    """A state ending on 31 December starts new files, but the folder's files of that year are
    checked as in mid-year: another model's folder (the state being this model's), or a folder
    behind the state, was extended without a word (QA: two models in one dataset)."""
    state_file = _first_part(model, drivers, tmp_path / "ours", "2016-12-31")
    other = make_model(lookback=20, ensemble=2, seed=5)
    theirs = tmp_path / "theirs"
    sm = inference.predict(drivers.sel(time=slice(None, "2016-12-31")), other, mode="continuous", chunks=CHUNKS,
                           check_convergence=False)  # fmt: skip
    output.to_files(sm, theirs, progress=False)
    ext = inference.predict(drivers, model, state=state_file, return_state=True, chunks=CHUNKS)
    with pytest.raises(output.ForeignOutputError, match="appending would mix two models"):
        output.extend_files(ext, theirs, state_file=state_file, progress=False)
    assert not list(theirs.glob("*2017*"))  # nothing written
    behind = tmp_path / "behind"  # this model's files, but only to mid-2016
    _first_part(model, drivers, behind, "2016-06-30")
    with pytest.raises(GridMismatchError, match="behind the state"):
        output.extend_files(ext, behind, state_file=state_file, progress=False)
    with pytest.raises(GridMismatchError, match="is missing"):
        output.extend_files(ext, tmp_path / "empty", state_file=state_file, progress=False)
    output.extend_files(ext, tmp_path / "ours", state_file=state_file, progress=False)  # its own folder: fine
    assert len(list((tmp_path / "ours").glob("*2017.nc"))) == 3


def test_a_state_of_another_run_of_the_model_is_refused(model, drivers, reference, tmp_path):
    """Folder A and folder B predicted by the same model from different drivers: B's state
    extended A's files without a word (QA: new days off by up to 0.0056 m3 m-3, B's state moved
    on past B's files). The state must be the one saved with the output it extends."""
    cut = drivers.sel(time=slice(None, "2016-06-30"))
    wetter = cut.assign(precipitation=cut["precipitation"] * 1.8)
    a, b = tmp_path / "a", tmp_path / "b"
    state_a = _first_part(model, cut, a, "2016-06-30")
    state_b = _first_part(model, wetter, b, "2016-06-30")
    before = {p.name: p.read_bytes() for p in (*a.glob("*.nc"), state_b)}
    ext = inference.predict(drivers, model, state=state_b, return_state=True, chunks=CHUNKS)
    with pytest.raises(output.ForeignOutputError, match="not written by the run that saved this state"):
        output.extend_files(ext, a, state_file=state_b, progress=False)
    assert {p.name: p.read_bytes() for p in (*a.glob("*.nc"), state_b)} == before  # nothing touched
    # its own state extends it; an extension killed before it saved its state is rerun (the
    # year's file then holds the killed run's drivers identity, the state the old one)
    ext = inference.predict(drivers, model, state=state_a, return_state=True, chunks=CHUNKS)
    saved = state_a.read_bytes()
    output.extend_files(ext, a, state_file=state_a, progress=False)
    state_a.write_bytes(saved)  # as if killed before the state was replaced
    output.extend_files(ext, a, state_file=state_a, progress=False)
    _assert_same_files(a, reference)


def test_a_continued_prediction_is_not_written_as_a_dataset_of_its_own(model, drivers, tmp_path):
    """to_files of a continued prediction: the grid error suggested overwrite=True, which
    replaced the year's file by the new days only and lost the earlier ones (QA)."""
    state = _first_part(model, drivers, tmp_path, "2016-06-30")
    ext = inference.predict(drivers, model, state=state, return_state=True, chunks=CHUNKS)
    for write in (output.to_files, output.to_zarr):
        target = tmp_path / ("x.zarr" if write is output.to_zarr else "")
        with pytest.raises(XsomoValueError, match=r"continues a saved state .* extend_"):
            write(ext, target, overwrite=True, progress=False)
    with xr.open_dataset(tmp_path / "SoMo.ml-EU_layer1_2016.nc") as ds:
        assert str(ds["time"].values[0])[:10] == "2016-01-01"


def test_files_left_after_the_extension_end_are_refused(model, drivers, tmp_path):
    """An extension to 2017 killed before it saved its state, rerun to 2016-09-30 only, kept the
    2017 files: the folder read as complete to 2017-12-31 with October-December 2016 missing (QA)."""
    state = _first_part(model, drivers, tmp_path, "2016-06-30")
    saved = state.read_bytes()
    ext = inference.predict(drivers, model, state=state, return_state=True, chunks=CHUNKS)
    output.extend_files(ext, tmp_path, state_file=state, progress=False)
    state.write_bytes(saved)  # killed before the state was replaced
    shorter = inference.predict(drivers.sel(time=slice(None, "2016-09-30")), model, state=state,
                                return_state=True, chunks=CHUNKS)  # fmt: skip
    with pytest.raises(GridMismatchError, match=r"days after this extension's end 2016-09-30 .*SoMo.ml-EU_layer1_2017.nc"):
        output.extend_files(shorter, tmp_path, state_file=state, progress=False)
    assert state.read_bytes() == saved


def test_a_state_older_than_the_files_cannot_cut_their_last_days(model, drivers, tmp_path, reference):
    """A copy of the state kept from before a completed extension, used again with an earlier end,
    cut a folder ending on 31 August back to 31 July and reported "added 31 days" (QA)."""
    state = _first_part(model, drivers, tmp_path, "2016-06-30")
    old = state.read_bytes()
    ext = inference.predict(drivers.sel(time=slice(None, "2016-08-31")), model, state=state, return_state=True,
                            chunks=CHUNKS)  # fmt: skip
    output.extend_files(ext, tmp_path, state_file=state, progress=False)
    newer = state.read_bytes()
    state.write_bytes(old)
    july = inference.predict(drivers.sel(time=slice(None, "2016-07-31")), model, state=state, return_state=True,
                             chunks=CHUNKS)  # fmt: skip
    with pytest.raises(GridMismatchError, match=r"SoMo.ml-EU_layer1_2016.nc \(to 2016-08-31\).*older than the files"):
        output.extend_files(july, tmp_path, state_file=state, progress=False)
    with xr.open_dataset(tmp_path / "SoMo.ml-EU_layer1_2016.nc") as f:
        assert str(f.time.values[-1])[:10] == "2016-08-31"
    state.write_bytes(newer)  # the state saved last goes on
    rest = inference.predict(drivers, model, state=state, return_state=True, chunks=CHUNKS)
    output.extend_files(rest, tmp_path, state_file=state, progress=False)
    _assert_same_files(tmp_path, reference)


def _with_gap(drivers: xr.Dataset, day: str, cells: list[tuple[int, int]]) -> xr.Dataset:
    """``drivers`` with the first dynamic input missing on ``day`` at ``cells`` (lat, lon indices)."""
    out = drivers.copy(deep=True)
    name = next(v for v in out.data_vars if "time" in out[v].dims)
    t = int(np.nonzero(pd.DatetimeIndex(out["time"].values) == pd.Timestamp(day))[0][0])
    for iy, ix in cells:
        out[name][{"time": t, "lat": iy, "lon": ix}] = np.nan
    return out


def test_state_records_the_forcing_gaps_before_its_last_day(model, drivers, tmp_path):
    """The state did not record forcing gaps: drivers holding only the new days left a gap just
    before them unseen (QA: values where one prediction over the whole period gives NaN). The
    state now holds, per cell, the days of complete forcing before its last day, and the
    continued prediction masks the same days as one prediction over the whole period - also
    after a second extension that starts from a state saved by the first."""
    land = np.argwhere(drivers[cv.LAND_MASK].values.astype(bool))
    gap_cells = [tuple(land[0]), tuple(land[3])]
    gappy = _with_gap(drivers, "2016-12-25", gap_cells)
    with pytest.warns(RuntimeWarning, match="40 output cell-days in 2 cell"):  # 12-25 .. 01-13
        one_go = inference.predict(gappy, model, mode="continuous", chunks=CHUNKS, check_convergence=False).load()
    # saved at mid-2016, extended to the end of 2016 (over the gap) and then into 2017, each from
    # drivers holding only its new days
    first = inference.predict(gappy.sel(time=slice(None, "2016-06-30")), model, mode="continuous",
                              chunks=CHUNKS, check_convergence=False, return_state=True)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="14 output cell-days in 2 cell"):  # 12-25 .. 12-31
        second = inference.predict(gappy.sel(time=slice("2016-07-01", "2016-12-31")), model,
                                   state=first, return_state=True, chunks=CHUNKS)  # fmt: skip
    complete = second[inference.STATE_COMPLETE].values
    for iy, ix in gap_cells:
        assert complete[iy, ix] == 6  # 2016-12-26 .. 12-31
    assert (np.delete(complete[land[:, 0], land[:, 1]], [0, 3]) == 19).all()  # lookback 20 - 1
    path = somo_io.write_state(second, tmp_path / "state.nc")
    saved = somo_io.read_state(path)
    np.testing.assert_array_equal(saved[inference.STATE_COMPLETE].values, complete)
    new_only = gappy.sel(time=slice("2017-01-01", None))
    # the drivers need not hold the days before; the days masked by the gap are counted all the same
    with pytest.warns(RuntimeWarning, match="26 output cell-days in 2 cell") as seen:
        third = inference.predict(new_only, model, state=saved, chunks=CHUNKS).load()
    assert not [w for w in seen if "gap mask looks back" in str(w.message)]
    want = one_go.sel(time=third["time"])
    np.testing.assert_array_equal(np.isnan(third[cv.SM].values), np.isnan(want[cv.SM].values))
    assert np.nanmax(np.abs(third[cv.SM].values - want[cv.SM].values)) <= 1e-6
    masked = np.isnan(third[cv.SM].isel(layer=0).values)
    for iy, ix in gap_cells:  # 2017-01-01 .. 01-13: their windows reach back to 2016-12-25
        assert masked[:13, iy, ix].all() and not masked[13:, iy, ix].any()
        assert int(third[inference.GAP_DAYS].values[iy, ix]) == 13
    # a state saved by an older xsomo (no record): drivers without the days before still warn
    old = saved.drop_vars(inference.STATE_COMPLETE)
    with pytest.warns(RuntimeWarning, match=r"holds no .* hold 0 of the 19 days before 2017-01-01 that the gap mask"):
        inference.predict(new_only, model, state=old, chunks=CHUNKS)
    with_old = gappy.sel(time=slice("2016-12-01", None))  # the lookback (20 days) before the new days
    with pytest.warns(RuntimeWarning, match="26 output cell-days") as seen:
        again = inference.predict(with_old, model, state=old, chunks=CHUNKS).load()
    assert not [w for w in seen if "gap mask looks back" in str(w.message)]
    np.testing.assert_array_equal(np.isnan(again[cv.SM].values), np.isnan(third[cv.SM].values))


def test_state_files_carry_the_forcing_record(model, drivers, tmp_path):
    """to_files / to_zarr with state_file= and extend_files keep the record beside the state."""
    state = _first_part(model, drivers, tmp_path, "2016-06-30")
    assert (somo_io.read_state(state)[inference.STATE_COMPLETE].values >= 0).all()
    ext = inference.predict(drivers, model, state=state, return_state=True, chunks=CHUNKS)
    output.extend_files(ext, tmp_path, state_file=state, progress=False)
    after = somo_io.read_state(state)
    assert after.attrs["state_last_day"] == "2017-12-31"
    land = drivers[cv.LAND_MASK].values.astype(bool)
    assert (after[inference.STATE_COMPLETE].values[land] == 19).all()
    sm = inference.predict(drivers, model, mode="continuous", chunks=CHUNKS, check_convergence=False,
                           return_state=True)  # fmt: skip
    output.to_zarr(sm, tmp_path / "sm.zarr", state_file=tmp_path / "z_state.nc", progress=False)
    assert inference.STATE_COMPLETE in somo_io.read_state(tmp_path / "z_state.nc").variables


def test_save_state_when_auto_falls_back_to_windows_says_what_to_do(model, drivers, monkeypatch):
    """auto predicts a block that does not forget window by window, which has no state: the
    error spoke of return_state only (the CLI user had asked for --save-state) and named no
    way out but mode='continuous' (QA)."""
    from xsomo.model import rollout

    def never_forgets(*args, **kwargs):  # every roll-out still remembers its start
        return np.ones(args[2].shape[0] if len(args) > 2 else 1)

    monkeypatch.setattr(rollout, "convergence_distance", never_forgets)
    # the check before any block runs refuses at once (the run failed only after computing the blocks)
    with pytest.raises(XsomoValueError, match=r"--save-state.*Nothing was computed.*--mode continuous.*--tolerance"):
        inference.predict(drivers, model, mode="auto", return_state=True, chunks=CHUNKS)
    # without it (skipped, or passed on its sample cells) a block that goes windowed says the same
    monkeypatch.setattr(inference, "_checked_spinup", lambda *a, **k: k["spinup"])
    sm = inference.predict(drivers, model, mode="auto", return_state=True, chunks=CHUNKS)
    with pytest.raises(XsomoValueError, match=r"--save-state.*window by window.*Nothing was written.*--tolerance"):
        sm.load()
    # without a saved state the up-front check only warns, and auto predicts window by window
    monkeypatch.undo()
    monkeypatch.setattr(rollout, "convergence_distance", never_forgets)
    with pytest.warns(RuntimeWarning, match="does not forget"):
        inference.predict(drivers, model, mode="auto", chunks=CHUNKS)


def test_an_extension_keeps_the_static_inputs_of_its_state(model, drivers, reference, tmp_path):
    """A month prepared again holds climate means over another period (QA: aridity 12 % off, a
    month alone 100 %): extend took the new drivers' statics, and the new days left the
    prediction over the whole period by up to 2.4e-3 m3 m-3 without a word."""
    state_file = _first_part(model, drivers, tmp_path, "2016-12-31")
    saved = somo_io.read_state(state_file)[somo_io.STATE_STATIC_VAR]
    assert saved.dims == ("static_input", "lat", "lon")
    assert saved["static_input"].values.tolist() == list(model.config.static)
    drifted = drivers.copy()
    drifted["precipitation_mean"] = drivers["precipitation_mean"] * 1.1
    with pytest.warns(RuntimeWarning, match=r"precipitation_mean \(max difference .*, 10.0% of the field's largest value\).*The state's are used"):
        ext = inference.predict(drifted, model, state=state_file, return_state=True, chunks=CHUNKS)
    output.extend_files(ext, tmp_path, state_file=state_file, progress=False)
    _assert_same_files(tmp_path, reference)
    # the new state keeps the first one's statics, for the next month
    np.testing.assert_array_equal(somo_io.read_state(state_file)[somo_io.STATE_STATIC_VAR].values, saved.values)


def test_overwrite_with_fewer_years_refuses_another_models_files(model, drivers, tmp_path):
    """--overwrite with a shorter period left another model's later years beside the new files
    ("a folder never mixes two runs"); series/export then refused the folder, stac catalogued it."""
    from xsomo.io.somo import ForeignOutputError

    sm = inference.predict(drivers, model, mode="continuous", chunks=CHUNKS, check_convergence=False)
    output.to_files(sm, tmp_path, progress=False)
    other = make_model(lookback=20, ensemble=2, seed=5)
    sm_b = inference.predict(drivers.sel(time=slice(None, "2016-12-31")), other, mode="continuous", chunks=CHUNKS,
                             check_convergence=False)  # fmt: skip
    with pytest.raises(ForeignOutputError, match=r"3 SoMo.ml-EU files of another model .*_2017.nc"):
        output.to_files(sm_b, tmp_path, progress=False, overwrite=True)
    # the same model rewriting part of its own folder is fine
    output.to_files(sm, tmp_path, progress=False, overwrite=True, years=[2016])
