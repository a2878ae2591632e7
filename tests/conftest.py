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
#: Set (``XSOMO_REQUIRE_REAL=1``, as .ci/run does where the folder exists) to make a missing folder or
#: a moved file FAIL the real-data tests instead of skipping them: they hold the only external oracles.
REQUIRE_REAL = os.environ.get("XSOMO_REQUIRE_REAL", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def real_data() -> pathlib.Path:
    """``../shared/data/real``; tests using it skip where the folder is absent (a user's fresh clone),
    and fail there when ``XSOMO_REQUIRE_REAL`` is set."""
    if not REAL.is_dir():
        msg = (
            f"real third-party test data not found at {REAL} (set XSOMO_REAL_DATA to the "
            "shared/data/real folder)"
        )
        if REQUIRE_REAL:
            pytest.fail(msg + "; XSOMO_REQUIRE_REAL is set, so this is an error", pytrace=False)
        pytest.skip(msg + "; skipping a real-data test")
    return REAL


def _uses_real_data(item: pytest.Item) -> bool:
    return "real" in item.keywords or "real_data" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests using ``real_data`` get the ``real`` marker; tests marked ``gpu`` skip, saying why,
    where torch sees no CUDA device."""
    for item in items:
        if "real_data" in getattr(item, "fixturenames", ()) and "real" not in item.keywords:
            item.add_marker(pytest.mark.real)
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")
    for item in gpu:
        item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """With ``XSOMO_REQUIRE_REAL`` set, a real-data test that skips itself (a file not found at its
    path, ``pytest.skip`` in the test or a fixture) is reported as a failure."""
    outcome = yield
    report = outcome.get_result()
    if not (REQUIRE_REAL and report.skipped and _uses_real_data(item)):
        return
    if "gpu" in item.keywords or any(item.iter_markers("skip")) or any(item.iter_markers("skipif")):
        return  # skipped by a marker (no CUDA ...), not by missing data
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid}: a real-data test skipped ({reason}) but XSOMO_REQUIRE_REAL is set: "
        f"the real data under {REAL} is missing or a path moved"
    )


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
