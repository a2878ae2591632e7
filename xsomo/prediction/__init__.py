"""Step 4 of the method: the trained cascade applied to every land cell and day.

:mod:`~xsomo.prediction.inference` builds the lazy prediction (or continues a saved state);
:mod:`~xsomo.prediction.output` streams it to the yearly SoMo.ml-EU files (``to_files``,
``extend_files``) or one Zarr store (``to_zarr``, ``extend_zarr``).
"""

from __future__ import annotations

from xsomo.prediction.inference import predict
from xsomo.prediction.output import extend_files, extend_zarr, to_files, to_zarr

__all__ = ["extend_files", "extend_zarr", "predict", "to_files", "to_zarr"]
