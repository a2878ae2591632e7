"""The EA-LSTM, its configuration and the trained-model container.

- :class:`EALSTM`: the network (fused LSTM kernel with fixed weight masks).
- :class:`ModelConfig`, :class:`NormStats`: validated configuration and z-score constants.
- :class:`TrainedModel`: config + statistics + weights per (layer, member); ``save``/``load``.
"""

from __future__ import annotations

from xsomo.model.config import ModelConfig, NormStats, apply_transform
from xsomo.model.ealstm import EALSTM, State
from xsomo.model.trained import FORMAT_VERSION, TrainedModel, load_torch_file

# isort: split
# (the importers build TrainedModels: imported after the classes above)
from xsomo.model.importers import import_ealstm, import_trained_model, load_somoml_v1

__all__ = [
    "EALSTM",
    "FORMAT_VERSION",
    "ModelConfig",
    "NormStats",
    "State",
    "TrainedModel",
    "apply_transform",
    "import_ealstm",
    "import_trained_model",
    "load_somoml_v1",
    "load_torch_file",
]
