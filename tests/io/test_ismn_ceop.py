"""ISMN's old CEOP combined format (one file per station, every depth), which the ``ismn``
package no longer reads: the real SMOSMANIA Narbonne excerpt of pytesmo's test data (CR-only
line endings, -999.99 soil temperature) and damaged or mixed copies of it."""

from __future__ import annotations

import re
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from xsomo import open_ismn
from xsomo.exceptions import DataFormatError, XsomoExceptionGroup
from xsomo.io.ismn_ceop import is_ceop_combined, read_ceop_combined

NBN = "pytesmo-test-data/ismn/format_ceop/SMOSMANIA/SMOSMANIA_SMOSMANIA_NBN_20100304_20130801.stm"


@pytest.fixture
def ceop(real_data, tmp_path):
    """A copy of the Narbonne file in a download folder (the data folder stays untouched)."""
    root = tmp_path / "old"
    (root / "SMOSMANIA").mkdir(parents=True)
    shutil.copy(real_data / NBN, root / "SMOSMANIA" / NBN.rsplit("/", 1)[1])
    return root


def _by_hand(raw: bytes) -> pd.DataFrame:
    """Depth, UTC day and soil moisture of every line, split on whitespace by hand."""
    rows = []
    for line in re.split(r"\r\n|\r|\n", raw.decode("ascii")):
        f = line.split()
        if f:
            rows.append((float(f[11]), f[0], float(f[14]), f[15]))
    return pd.DataFrame(rows, columns=["depth", "day", "sm", "flag"])


def test_narbonne_daily_means_equal_the_hand_computed_ones(ceop):
    raw = next(ceop.rglob("*.stm")).read_bytes()
    assert b"\n" not in raw and b"\r" in raw  # CR-only line endings, as PROVENANCE says
    hand = _by_hand(raw)
    ds, rep = open_ismn(ceop, report=True, min_days=1, good_flags=("G", "U"))
    assert rep["kept"].all() and len(rep) == 4
    # rows per depth and value ranges as PROVENANCE.md gives them
    assert rep.set_index("depth_top")["n_records"].to_dict() == {0.05: 42, 0.1: 43, 0.2: 42, 0.3: 42}
    ranges = hand.groupby("depth")["sm"].agg(["min", "max"])
    assert ranges.loc[0.05].tolist() == [0.2154, 0.2252] and ranges.loc[0.3].tolist() == [0.2746, 0.2841]
    assert set(ds["layer"].values.tolist()) == {1, 2}
    assert np.allclose(ds["lat"], 43.15) and np.allclose(ds["lon"], 2.9567)
    want = hand.groupby(["depth", "day"])["sm"].mean()  # every hour has one line: day mean = hour mean
    for sid in ds["station"].values:
        depth = float(ds["depth_top"].sel(station=sid))
        for t in ds["time"].values:
            day = pd.Timestamp(t).strftime("%Y/%m/%d")
            assert float(ds["sm"].sel(station=sid, time=t)) == pytest.approx(want[(depth, day)], rel=1e-6)
    assert "old CEOP combined" in ds.attrs["source"]


def test_narbonne_unchecked_flags_need_good_flags_U(ceop):
    """Every value is flagged U (unchecked): the default G-only QC keeps nothing and says how to relax it."""
    with pytest.raises(DataFormatError, match=r"good_flags=\('G', 'U'\)"):
        open_ismn(ceop, min_days=1)


def test_narbonne_in_a_zip_reads_the_same(ceop, tmp_path):
    z = tmp_path / "old.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in ceop.rglob("*.stm"):
            zf.write(f, f.relative_to(ceop).as_posix())
    a = open_ismn(ceop, min_days=1, good_flags=("G", "U"))
    b = open_ismn(z, min_days=1, good_flags=("G", "U"))
    assert a["sm"].equals(b["sm"])


def test_missing_marker_is_a_gap_not_a_value(ceop):
    """-999.99 soil moisture (the format's missing marker) is a gap: the day's mean is of the others."""
    f = next(ceop.rglob("*.stm"))
    raw = f.read_bytes()
    lines = raw.split(b"\r")
    k = next(i for i, ln in enumerate(lines) if b" 0.05 " in ln)
    fields = lines[k].split()
    lines[k] = lines[k].replace(b"   " + fields[14] + b" ", b" -999.99 ", 1)
    f.write_bytes(b"\r".join(lines))
    hand = _by_hand(b"\r".join(lines))
    hand = hand[hand["sm"] != -999.99]
    ds, rep = open_ismn(ceop, min_days=1, good_flags=("G", "U"), report=True)
    row = rep.set_index("depth_top").loc[0.05]
    assert row["n_records"] == 41 and row["n_negative"] == 0  # not a negative value dropped by QC
    sid = next(s for s in ds["station"].values if "0.0500" in s)
    day = hand[hand["depth"] == 0.05].groupby("day")["sm"].mean()
    assert float(ds["sm"].sel(station=sid).isel(time=0)) == pytest.approx(day.iloc[0], rel=1e-6)


def test_damaged_line_names_the_file_and_line(ceop):
    f = next(ceop.rglob("*.stm"))
    lines = f.read_bytes().split(b"\r")
    lines[5] = lines[5][:60]
    f.write_bytes(b"\r".join(lines))
    with pytest.raises(XsomoExceptionGroup) as info:
        open_ismn(ceop, min_days=1, good_flags=("G", "U"))
    msg = str(info.value.exceptions[0])
    assert f.name in msg and "line 6 has" in msg


def test_mixed_formats_and_forcing_are_refused(ceop, real_data, tmp_path):
    net = ceop / "OTHER" / "ST"
    net.mkdir(parents=True)
    (net / "OTHER_OTHER_ST_sm_0.000000_0.050000_X_20170101_20170102.stm").write_text(
        "OTHER OTHER ST 45.0 5.0 100.0 0.00 0.05 X\n2017/01/01 00:00 0.2 G M\n"
    )
    with pytest.raises(DataFormatError, match=r"mixes ISMN's old CEOP combined files.*open_ismn\(\[old_folder"):
        open_ismn(ceop, min_days=1, good_flags=("G", "U"))
    shutil.rmtree(ceop / "OTHER")
    # an empty .stm (a failed download) is named as such, not taken for a newer format
    (ceop / "empty.stm").write_bytes(b"\r\n  \n")
    with pytest.raises(DataFormatError, match=r"'empty.stm' is empty, beside ISMN's old CEOP combined files"):
        open_ismn(ceop, min_days=1, good_flags=("G", "U"))
    (ceop / "empty.stm").unlink()
    with pytest.raises(DataFormatError, match="soil temperature and soil moisture only: no precipitation"):
        open_ismn(ceop, min_days=1, good_flags=("G", "U"), variables=["soil_moisture", "precipitation"])


def test_format_detection():
    line = "2010/10/21 01:00 2010/10/21 01:00 S S N 43.15 2.95 112.00 - 0.10 12.20 U 0.2913 U"
    assert is_ceop_combined(line)
    assert not is_ceop_combined("S S N 43.15 2.95 112.00 0.00 0.05 X")  # header+values header line
    meta, tables = read_ceop_combined((line + "\r" + line.replace("01:00", "02:00")).encode(), "x.stm")
    assert meta == {"network": "S", "station": "N", "lat": 43.15, "lon": 2.95, "elevation": 112.0}
    assert list(tables) == [0.1] and tables[0.1].index.hour.tolist() == [1, 2]
