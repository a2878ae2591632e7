"""open_ismn: against the ismn package's own reading of real files, QC rules on hand-made files, bad input."""

from __future__ import annotations

import pathlib
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from xsomo.exceptions import DataFormatError, XsomoExceptionGroup
from xsomo.targets.stations import daily_mean, open_ismn, qc_sensor

V2025 = "qa4sm-testdata/input_data/ISMN/ISMN_V20250617"
HAWAII = "qa4sm-testdata/input_data/ISMN/ISMN_TESTDATA_HAWAII"

# oracle record counts per sensor from the README of shared/data/real (ismn 1.5.4 ISMN_Interface)
ORACLE = {
    "COSMOS.SilverSword.Cosmic-ray-Probe.0.0000-0.1700": 75177,
    "SCAN.Kainaliu.Hydraprobe-Analog-D.0.0508-0.0508": 53196,
    "SCAN.Kainaliu.Hydraprobe-Analog-B.0.1016-0.1016": 42471,
    "SCAN.Kainaliu.Hydraprobe-Analog-B.0.3048-0.3048": 93060,
    "SCAN.Kainaliu.Hydraprobe-Analog-C.0.5080-0.5080": 48479,
    "SCAN.Kainaliu.Hydraprobe-Analog-B.0.7620-0.7620": 92531,
}


def _listing(root: pathlib.Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def v2025(real_data):
    root = real_data / V2025
    before = _listing(root)
    ds, rep = open_ismn(root, report=True)
    assert _listing(root) == before, "open_ismn wrote into the data folder"
    return ds, rep


def _ismn_own(
    root: pathlib.Path, tmp: pathlib.Path
) -> dict[tuple[str, float, float], pd.DataFrame]:
    """The ismn package's own reading (independent of xsomo), metadata into tmp."""
    import contextlib
    import io

    from ismn.interface import ISMN_Interface

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        iface = ISMN_Interface(str(root), meta_path=str(tmp))
    out = {}
    for net in iface.collection.iter_networks():
        for stn in net.iter_stations():
            for sen in stn.iter_sensors(variable="soil_moisture"):
                out[(f"{stn.name}.{sen.instrument}", sen.depth.start, sen.depth.end)] = (
                    sen.read_data()
                )
    return out


@pytest.mark.real
def test_record_counts_match_oracle(v2025):
    _, rep = v2025
    rep = rep.set_index("station_id")
    for sid, n in ORACLE.items():
        assert rep.loc[sid, "n_records"] == n, sid


@pytest.mark.real
def test_values_flags_depths_against_ismn_reader(v2025, real_data, tmp_path):
    ds, rep = v2025
    own = _ismn_own(real_data / V2025, tmp_path)
    for sid in ds["station"].values:
        st = ds.sel(station=sid)
        key = (
            f"{st.station_name.item()}.{st.sensor.item()}",
            float(st.depth_top),
            float(st.depth_bottom),
        )
        df = own[key]
        assert rep.set_index("station_id").loc[sid, "n_flag_good"] == int(
            (df["soil_moisture_flag"] == "G").sum()
        )
        good = df["soil_moisture"].where(
            (df["soil_moisture_flag"] == "G") & (df["soil_moisture"] >= 0)
        )
        g = good.dropna()
        grp = g.groupby(g.index.floor("D"))
        expected = grp.mean()[grp.count() >= 6]
        got = st["sm"].to_series().dropna()
        assert got.index.equals(
            pd.DatetimeIndex(expected.index, name=got.index.name).astype(got.index.dtype)
        )
        np.testing.assert_allclose(got.values, expected.values, rtol=1e-6)


@pytest.mark.real
def test_kainaliu_five_depths_layers_and_report(v2025):
    ds, rep = v2025
    kai = ds.where(ds.station_name == "Kainaliu", drop=True)
    assert sorted(kai["layer"].values.tolist()) == [1, 2, 3]
    assert sorted(np.round(kai["depth_top"].values, 4).tolist()) == [0.0508, 0.1016, 0.3048]
    r = rep.set_index("station_id")
    for deep in (
        "SCAN.Kainaliu.Hydraprobe-Analog-C.0.5080-0.5080",
        "SCAN.Kainaliu.Hydraprobe-Analog-B.0.7620-0.7620",
    ):
        assert not r.loc[deep, "kept"] and "no single layer" in r.loc[deep, "reason"]
    short = r.loc["SCAN.Kainaliu.Hydraprobe-Analog-E.0.0508-0.0508"]
    assert not short["kept"] and "min_days" in short["reason"]
    assert "soil_temperature" in set(rep["variable"])  # listed, never silently lost
    assert len(rep) == 11
    assert ds["sm"].dtype == np.float32 and ds.sm.attrs["units"] == "m3 m-3"
    assert float(
        ds.lat.sel(station="SCAN.Kainaliu.Hydraprobe-Analog-D.0.0508-0.0508")
    ) == pytest.approx(19.53322)


@pytest.mark.real
def test_hawaii_ceop_stations_flags(real_data):
    ds, rep = open_ismn(real_data / HAWAII, report=True)
    r = rep.set_index("station")
    assert r.loc["IslandDairy", "n_records"] == 15312 and r.loc["PuaAkala", "n_records"] == 16359
    assert r.loc["PuaAkala", "n_flag_good"] == 11200  # C02 (> 0.6) removed by the G-only filter
    assert float(ds["sm"].max()) <= 0.6 + 1e-6


@pytest.mark.real
def test_malformed_file_raises_naming_it(real_data, tmp_path):
    root = tmp_path / "ismn"
    (root / "NET" / "ST").mkdir(parents=True)
    shutil.copy(
        real_data / "ismn/tests/test_data/malformed/mal_formed_file.txt",
        root / "NET" / "ST" / "NET_NET_ST_sm_0.000000_0.050000_X_20170101_20170102.stm",
    )
    _write_stm(root, "NET", "OK", 0.0, 0.05, _hours(120))
    with pytest.raises(XsomoExceptionGroup) as info:
        open_ismn(root)
    assert "NET_NET_ST_sm" in str(info.value.exceptions[0])
    ds, rep = open_ismn(root, errors="report", report=True)
    assert ds.sizes["station"] == 1
    assert rep["reason"].str.contains("unreadable").any()


# ----------------------------------------------------------------------------- hand-made files


def _hours(days: int, start: str = "2020-01-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=days * 24, freq="h")


def _write_stm(
    root: pathlib.Path,
    net: str,
    station: str,
    top: float,
    bottom: float,
    idx: pd.DatetimeIndex,
    values=None,
    flags=None,
    sensor: str = "Probe",
    truncate: bool = False,
) -> pathlib.Path:
    folder = root / net / station
    folder.mkdir(parents=True, exist_ok=True)
    values = np.full(idx.size, 0.25) if values is None else values
    flags = ["G"] * idx.size if flags is None else flags
    name = f"{net}_{net}_{station}_sm_{top:.6f}_{bottom:.6f}_{sensor}_{idx[0]:%Y%m%d}_{idx[-1]:%Y%m%d}.stm"
    lines = [f"{net} {net} {station} 45.00000 5.00000 100.00 {top:.4f} {bottom:.4f} {sensor}"]
    lines += [
        f"{t:%Y/%m/%d %H:%M} {v:.4f} {f} M" for t, v, f in zip(idx, values, flags, strict=True)
    ]
    text = "\n".join(lines) + "\n"
    if truncate:
        text = text[: len(text) - 30]
    (folder / name).write_text(text)
    return folder / name


def test_qc_rules_on_handmade_files(tmp_path):
    root = tmp_path / "ismn"
    idx = _hours(100)
    vals = np.full(idx.size, 0.3)
    flags = np.array(["G"] * idx.size, dtype=object)
    flags[: 24 * 5] = "D03"  # five days all flagged
    vals[24 * 5 : 24 * 6] = -0.1  # a day of negatives
    flags[24 * 6 + 5 : 24 * 7] = "C01"  # day 7 keeps only 5 good hours
    _write_stm(
        root, "N", "A", 0.10, 0.10, idx, vals, list(flags)
    )  # point sensor on 0.10 -> layer 1
    _write_stm(root, "N", "B", 0.05, 0.15, idx)  # spans two layers
    _write_stm(root, "N", "C", 0.20, 0.20, _hours(50))  # too short
    _write_stm(root, "N", "D", 0.30, 0.30, idx)  # on 0.30 -> layer 2
    ds, rep = open_ismn(root, report=True)
    r = rep.set_index("station")
    assert r.loc["A", "layer"] == 1 and r.loc["D", "layer"] == 2
    assert r.loc["A", "n_days"] == 100 - 7 and r.loc["A", "n_negative"] == 24
    assert "no single layer" in r.loc["B", "reason"] and "min_days" in r.loc["C", "reason"]
    a = ds["sm"].sel(station=ds.station[ds.station_name == "A"].item())
    assert a.isel(time=slice(0, 7)).isnull().all() and a.isel(time=slice(7, None)).notnull().all()
    assert ds.sizes["station"] == 2


def test_truncated_file_raises(tmp_path):
    root = tmp_path / "ismn"
    f = _write_stm(root, "N", "T", 0.05, 0.05, _hours(100), truncate=True)
    with pytest.raises(XsomoExceptionGroup) as info:
        open_ismn(root)
    assert f.name in str(info.value.exceptions[0])


def test_nothing_kept_raises_with_report(tmp_path):
    root = tmp_path / "ismn"
    _write_stm(root, "N", "A", 0.6, 0.6, _hours(100))
    with pytest.raises(DataFormatError, match="passed quality control") as info:
        open_ismn(root)
    assert len(info.value.report) == 1


def test_files_outside_network_station_folders_are_refused(tmp_path):
    """A flattened download, a network folder without station folders or the network folder
    passed had ended in the ismn package's "'NoneType' object is not iterable" (QA)."""
    root = tmp_path / "ismn"
    f = _write_stm(root, "N", "A", 0.05, 0.05, _hours(100))
    assert open_ismn(root).sizes["station"] == 1
    with pytest.raises(DataFormatError, match=r"1 data file\(s\) lie one folder below it \('A/.*the network folder passed"):
        open_ismn(root / "N")
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(f, flat / f.name)
    with pytest.raises(DataFormatError, match=rf"lie in the folder passed itself \('{f.name}'\).*do not flatten"):
        open_ismn(flat)
    # one folder around the network folders (a zip of the unpacked folder): the network had been
    # read from that folder ('ismn.A' ids), and the same folder failed with "No objects to concatenate"
    shutil.copytree(root, tmp_path / "w" / "ismn")
    shutil.make_archive(str(tmp_path / "wrapped"), "zip", root_dir=tmp_path / "w", base_dir="ismn")
    for wrapped in (tmp_path / "wrapped.zip", tmp_path / "w"):
        with pytest.raises(DataFormatError, match=r"deeper than <NETWORK>/<STATION>/\*\.stm \(e\.g\. below 'ismn'\)"):
            open_ismn(wrapped)
    shutil.make_archive(str(tmp_path / "plain"), "zip", root_dir=root)
    assert open_ismn(tmp_path / "plain.zip").network.values.tolist() == ["N"]
    # the same checks for zips: loose files ("'NoneType' object is not iterable"), and a network folder
    # without station folders inside another folder (read as network 'x', as the real Data_SMOSMANIA.zip)
    shutil.make_archive(str(tmp_path / "loose"), "zip", root_dir=flat)
    with pytest.raises(DataFormatError, match=r"ISMN zip .*lie in the zip passed itself"):
        open_ismn(tmp_path / "loose.zip")
    (tmp_path / "s" / "x" / "N").mkdir(parents=True)
    shutil.copy(f, tmp_path / "s" / "x" / "N" / f.name)
    shutil.make_archive(str(tmp_path / "nostation"), "zip", root_dir=tmp_path / "s")
    with pytest.raises(DataFormatError, match=r"right in their network's folder \('x/N/N_N_A"):
        open_ismn(tmp_path / "nostation.zip")


@pytest.mark.parametrize(("scale", "fill", "expect"), [(100.0, None, "looks like percent"), (1.0, 9999.0, "fill values")])
def test_an_implausible_sensor_is_named_and_can_be_dropped(tmp_path, scale, fill, expect):
    """One sensor in percent, or with 9999 flagged good, had sunk the whole read with a message
    naming no file, and errors='report' could not drop it (hostile-input QA)."""
    root = tmp_path / "ismn"
    _write_stm(root, "N", "A", 0.05, 0.05, _hours(100))
    vals = np.full(24 * 100, 0.3) * scale
    if fill is not None:
        vals[24 * 3 : 24 * 4] = fill
    bad = _write_stm(root, "N", "B", 0.05, 0.05, _hours(100), vals)
    with pytest.raises(XsomoExceptionGroup, match="implausible values") as info:
        open_ismn(root)
    assert bad.name in str(info.value.exceptions[0]) and expect in str(info.value.exceptions[0])
    ds, rep = open_ismn(root, errors="report", report=True)
    assert ds.sizes["station"] == 1 and ds["station_name"].item() == "A"
    assert rep.set_index("station").loc["B", "reason"].startswith("implausible: daily soil moisture up to")


def test_daily_mean_subhourly_and_qc_sensor():
    idx = pd.date_range("2020-01-01", periods=4 * 24 * 3, freq="15min")
    s = pd.Series(np.arange(idx.size, dtype=float), index=idx)
    m, n = daily_mean(s, min_hourly=24)
    hourly = s.groupby(s.index.floor("h")).mean()
    np.testing.assert_allclose(m.values, hourly.groupby(hourly.index.floor("D")).mean().values)
    assert (n == 24).all()
    res = qc_sensor(pd.Series(0.2, index=idx), None, depth_top=0.0, depth_bottom=0.05, min_days=3)
    assert res.kept and res.layer == 1 and res.n_days == 3


@pytest.mark.real
def test_hawaii_scan_forcing_folder(real_data, tmp_path):
    root = real_data / "hawaii-scan-forcing"
    ds, rep = open_ismn(root, report=True)
    other = rep[rep.variable != "soil_moisture"]
    assert set(other.variable) == {"precipitation", "air_temperature"} and not other.kept.any()
    own = _ismn_own(root, tmp_path)
    r = rep[rep.variable == "soil_moisture"]
    for _, row in r.iterrows():
        df = own[(f"{row.station}.{row.sensor}", row.depth_top, row.depth_bottom)]
        assert row.n_records == int(df["soil_moisture"].notna().sum())
    assert set(ds.station_name.values) == {"ManaHouse", "PuaAkala", "SilverSword"}


@pytest.mark.real
def test_zip_archive_newest_format(real_data, tmp_path):
    z = real_data / "ismn/tests/test_data/archive_sample/ismn_archive.zip"
    ds, rep = open_ismn(z, min_days=1, report=True)
    assert rep.loc[0, "n_records"] == 287 and rep.loc[0, "station"] == "Adamclisi"
    (df,) = _ismn_own(z, tmp_path).values()
    g = (
        df["soil_moisture"]
        .where((df["soil_moisture_flag"] == "G") & (df["soil_moisture"] >= 0))
        .dropna()
    )
    n_days = int((g.groupby(g.index.floor("D")).count() >= 6).sum())
    assert ds["sm"].notnull().sum().item() == n_days and ds["layer"].item() == 1


# ----------------------------------------------------------------------------- issue 14 item 7: ISMN damage
def _sensor_file(tmp_path: pathlib.Path, days: int = 40) -> tuple[pathlib.Path, bytes]:
    """A station with two sensors whose file names carry their own spans (as the sample world's)."""
    rng = np.random.default_rng(11)
    idx = _hours(days)
    vals = 0.25 + 0.05 * np.sin(np.arange(idx.size) / 50.0) + 0.005 * rng.standard_normal(idx.size)
    f = _write_stm(tmp_path / "ismn", "N", "S", 0.05, 0.05, idx, vals)
    _write_stm(tmp_path / "ismn", "N", "S", 0.30, 0.30, _hours(days - 5), sensor="Other")
    return f, f.read_bytes()


def test_item7_file_cut_at_a_line_end_is_named_in_a_warning(tmp_path):
    """A file cut at a line end ends before the date in its name: warned about, naming it. It is
    not refused: a folder merging two real downloads (named by their request periods) looks the
    same, and had lost 4 of its 5 good sensors as "truncated"."""
    f, raw = _sensor_file(tmp_path)
    lines = raw.split(b"\n")
    f.write_bytes(b"\n".join(lines[: len(lines) // 2]) + b"\n")  # whole lines, every line complete
    with pytest.warns(RuntimeWarning, match=rf"1 ISMN file\(s\) end before the date in their names, e\.g\. .*{f.name} "
                      r"\(the data end on 2020-01-20, the file name says 2020-02-09\).*download it again"):
        ds = open_ismn(tmp_path / "ismn", min_days=1)
    assert ds.sizes["station"] == 2


def test_item7_file_name_span_of_a_longer_download_passes(tmp_path):
    """ISMN names all files of a download by the requested period: data may end earlier."""
    f, _raw = _sensor_file(tmp_path)
    for g in f.parent.glob("*.stm"):  # one request period for the download
        g.rename(g.with_name(g.name[: -len("_20200101_20200209.stm")] + "_20200101_20201231.stm"))
    ds = open_ismn(tmp_path / "ismn", min_days=1)
    assert ds.sizes["time"] == 40 and ds.sizes["station"] == 2
    # data after the named end is damage in any case
    g = sorted(f.parent.glob("*.stm"))[0]
    g.rename(g.with_name(g.name.replace("_20201231.stm", "_20200120.stm")))
    with pytest.raises(XsomoExceptionGroup) as info:
        open_ismn(tmp_path / "ismn", min_days=1)
    assert any("lie outside the span" in str(e) for e in info.value.exceptions)


def test_item7_nul_byte_inside_a_value_refused(tmp_path):
    f, raw = _sensor_file(tmp_path)
    k = raw.index(b" 0.2", len(raw) // 2) + 3  # inside the value, after "0."
    f.write_bytes(raw[:k] + b"\x00" + raw[k + 1 :])
    with pytest.raises(XsomoExceptionGroup) as info:
        open_ismn(tmp_path / "ismn", min_days=1)
    msg = str(info.value.exceptions[0])
    line = raw[:k].count(b"\n") + 1
    assert f"NUL byte at line {line}" in msg and f.name in msg


def _mutate(raw: bytes, rng: np.random.Generator) -> bytes:
    """One byte-level damage: truncation, a NUL run, binary garbage or a doubled byte range.

    Not among them: a lost range of bytes, a digit changed into another digit or a few
    bytes doubled inside a number. They can leave valid lines with other values (a gap of
    whole lines, 0.2140 -> 0.2940, 0.2987 -> 0.22987) that no reader can tell from real data.
    """
    n = len(raw)
    kind = int(rng.integers(4))
    i = int(rng.integers(0, n))
    width = int(rng.integers(1, 64))
    if kind == 0:  # cut anywhere (a partial download)
        return raw[:i]
    if kind == 1:  # a run of NUL bytes (a disk block never written)
        return raw[:i] + b"\x00" * width + raw[i + width :]
    if kind == 2:  # binary garbage (control and high bytes)
        junk = rng.choice([*range(1, 9), 11, 12, *range(14, 32), *range(128, 256)], width)
        return raw[:i] + bytes(junk.astype(np.uint8).tolist()) + raw[i + width :]
    j = max(0, i - 8 - width)  # a range written twice (8+ bytes: it spans a field separator)
    return raw[:i] + raw[j:i] + raw[i:]


def test_item7_fuzz_50_byte_mutations_raise_or_keep_the_data(tmp_path):
    """50 seeded byte-level mutations: an XsomoError or data identical to the intact file, nothing else."""
    from xsomo.exceptions import XsomoError

    f, raw = _sensor_file(tmp_path, days=30)
    intact = open_ismn(tmp_path / "ismn", min_days=1)["sm"].values
    assert intact.shape[0] == 2
    rng = np.random.default_rng(20240601)
    outcomes = {"error": 0, "identical": 0, "warned": 0}
    for trial in range(50):
        damaged = _mutate(raw, rng)
        f.write_bytes(damaged)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sm = open_ismn(tmp_path / "ismn", min_days=1)["sm"].values
        except XsomoError:
            outcomes["error"] += 1
            continue
        # anything else (another exception type) fails the test here, with its traceback
        if any(f.name in str(w.message) and "end before the date in their names" in str(w.message) for w in caught):
            outcomes["warned"] += 1  # cut at a line end: the days kept are the intact file's (but the last,
            for r in range(sm.shape[0]):  # which may have lost some of its hours)
                k = int(np.flatnonzero(np.isfinite(sm[r]))[-1])
                assert np.array_equal(sm[r, :k], intact[r, :k], equal_nan=True), f"trial {trial}: days changed"
            continue
        assert sm.shape == intact.shape and np.array_equal(sm, intact, equal_nan=True), (
            f"trial {trial}: damaged file read as different data without an error"
        )
        outcomes["identical"] += 1
    assert outcomes["error"] + outcomes["warned"] >= 40, outcomes  # most damage is visible


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        (b" 0.2", b" 0.2/18", "soil-moisture value(s) are not numbers"),
        (b" G M", b" X7 M", "ISMN quality flag(s) are not ISMN flags"),
        (b" G M", b" D01,Q M", "ISMN quality flag(s) are not ISMN flags"),
    ],
)
def test_damaged_value_or_flag_refused_with_its_count(tmp_path, old, new, expect):
    """A value that is no number, or a flag that is no ISMN flag, in two lines: both counted."""
    f, raw = _sensor_file(tmp_path)
    lines = raw.split(b"\n")
    hits = [i for i, line in enumerate(lines) if old in line][5:7]
    for i in hits:
        lines[i] = lines[i].replace(old, new, 1)
    f.write_bytes(b"\n".join(lines))
    with pytest.raises(XsomoExceptionGroup) as info:
        open_ismn(tmp_path / "ismn", min_days=1)
    msg = str(info.value.exceptions[0])
    assert f.name in msg and f"2 {expect}" in msg, msg
    # intact flags with several codes pass
    lines = raw.split(b"\n")
    for i in hits:
        lines[i] = lines[i].replace(b" G M", b" D01,C03 M", 1)
    f.write_bytes(b"\n".join(lines))
    assert open_ismn(tmp_path / "ismn", min_days=1).sizes["station"] == 2
