"""Step 4 of the method: the trained cascade applied to every land cell and day.

:mod:`~xsomo.prediction.inference` builds the lazy prediction; :mod:`~xsomo.prediction.output`
streams it to the yearly SoMo.ml-EU files.
"""

from __future__ import annotations

from xsomo.prediction.inference import predict
from xsomo.prediction.output import to_files

__all__ = ["predict", "to_files"]
