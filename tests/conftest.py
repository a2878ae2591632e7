"""Shared fixtures: the real-data folder, a tiny sample world, one torch thread.

The doctest namespace is in the root ``conftest.py`` (it must reach ``xsomo/``'s docstrings too).
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip, saying why, where torch sees no CUDA device."""
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")
    for item in gpu:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A ``tiny`` sample world written once per test session (read-only for tests)."""
    out = tmp_path_factory.mktemp("tiny_world")
    return xsomo.sample.generate("tiny", seed=7, out=out)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests use one torch thread: on a busy 2-core machine two threads ran small LSTMs
    20-80x slower (oversubscription), and results must not depend on it."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
