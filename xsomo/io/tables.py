"""Tables as text: CSV whose numbers read back as the values written.

``xsomo series``, ``xsomo zonal`` and ``xsomo evaluate --csv`` write their tables with
:func:`csv_text` (through :func:`xsomo.io.atomic.atomic_write_text`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["csv_text"]


def csv_text(table: pd.DataFrame) -> str:
    """``table`` as CSV text (no index) whose numbers read back as the same values.

    float64 columns are written as Python's ``repr`` (the shortest text that gives the same
    float64: coordinates such as 12.345678 stay 12.345678), float32 columns as the shortest
    text that gives the same float32 (0.2345679, not 0.23456789001464844); NaN is an empty
    field. ``float_format="%.5g"`` had written 12.345678 as 12.346 (about 100 m) and soil
    moisture to 5 digits.

    >>> import numpy as np, pandas as pd
    >>> print(csv_text(pd.DataFrame({"lon": [12.345678], "sm": np.float32([0.23456789])})), end="")
    lon,sm
    12.345678,0.2345679
    """
    return table.to_csv(index=False, lineterminator="\n")
