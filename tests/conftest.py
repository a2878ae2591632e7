"""Shared fixtures: the real-data folder, a tiny sample world, doctest namespace."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest
import xarray as xr

import xsomo

HERE = pathlib.Path(__file__).resolve().parent
#: Real third-party files live beside the checkout (never in the repo: their licences forbid it).
REAL = pathlib.Path(os.environ.get("XSOMO_REAL_DATA", HERE.parent.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> pathlib.Path:
    """``../shared/data/real``; tests using it skip where the folder is absent (a user's fresh clone)."""
    if not REAL.is_dir():
        pytest.skip(
            f"real third-party test data not found at {REAL} (set XSOMO_REAL_DATA to the "
            "shared/data/real folder); skipping a real-data test"
        )
    return REAL


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A ``tiny`` sample world written once per test session (read-only for tests)."""
    out = tmp_path_factory.mktemp("tiny_world")
    return xsomo.sample.generate("tiny", seed=7, out=out)


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    doctest_namespace["np"] = np
    doctest_namespace["xr"] = xr
    doctest_namespace["xsomo"] = xsomo
    np.random.seed(0)
