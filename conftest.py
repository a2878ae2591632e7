"""Root conftest: what both ``tests/`` and the docstring examples in ``xsomo/`` need.

pytest collects the docstring examples of the package (``--doctest-modules`` over ``testpaths``
``tests`` and ``xsomo``); fixtures in ``tests/conftest.py`` do not reach items under ``xsomo/``,
so the doctest namespace lives here.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import xarray as xr

import xsomo

# the Triton kernel module imports triton at its top (it is only ever imported where Triton is)
collect_ignore = [] if importlib.util.find_spec("triton") else ["xsomo/model/_ealstm_triton.py"]


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    """``np``, ``xr`` and ``xsomo`` in every docstring example; numpy's global seed reset."""
    doctest_namespace["np"] = np
    doctest_namespace["xr"] = xr
    doctest_namespace["xsomo"] = xsomo
    np.random.seed(0)
