"""``xsomo prepare``: outputs on the tiny world; a failure writes nothing."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.cli import main


def test_prepare_writes_targets_and_drivers(tiny_world, tmp_path, capsys):
    out = tmp_path / "prep"
    out.mkdir()
    # what killed runs leave (this version's names and those before it): removed by the next run
    # (they had stayed for good; a Europe drivers file is gigabytes)
    for stale in (".drivers.ab12cd_9.tmp.nc", ".targets.nc.bztufy01.tmp", ".scaling_report.x1y2z3w4.tmp.csv"):
        (out / stale).write_bytes(b"partial")
    (out / ".drivers.nc.keep.tmp").write_bytes(b"not ours")  # not of the pattern: left alone
    assert main(["prepare", "--world", str(tiny_world), "--out", str(out)]) == 0
    (out / ".drivers.nc.keep.tmp").unlink()
    assert sorted(p.name for p in out.iterdir()) == [
        "drivers.nc",
        "ismn_qc_report.csv",
        "scaling_report.csv",
        "targets.nc",
    ]
    with xr.open_dataset(out / "targets.nc") as t:
        assert set(t.dims) == {"cell", "layer", "time"} and t["sm"].dtype == np.float32
        assert t["station_ids"].dtype.kind in "OU"
    with xr.open_dataset(out / "drivers.nc") as d:
        assert set(cv.DYNAMIC_NAMES) <= set(d.data_vars) and d[cv.LAND_MASK].dtype == bool
    rep = pd.read_csv(out / "ismn_qc_report.csv")
    assert {"station_id", "kept", "reason"} <= set(rep.columns)
    assert "wrote" in capsys.readouterr().out
    umask = os.umask(0)
    os.umask(umask)
    for p in out.iterdir():  # mkstemp's 0600 is not kept
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_prepare_failure_leaves_nothing(tiny_world, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in tiny_world.iterdir():
        if p.name != "era5land":
            (broken / p.name).symlink_to(p)
    (broken / "era5land").mkdir()  # no files
    out = tmp_path / "prep"
    assert main(["prepare", "--world", str(broken), "--out", str(out)]) != 0
    assert not out.exists() or not any(out.iterdir())
