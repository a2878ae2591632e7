"""The EA-LSTM, its configuration and the trained-model container.

- :class:`EALSTM`: the network (fused LSTM kernel with fixed weight masks).
- :class:`ModelConfig`, :class:`NormStats`: validated configuration and z-score constants.
- :class:`TrainingConfig`: validated training settings; :data:`PRESETS` names some.
- :class:`TrainedModel`: config + statistics + weights per (layer, member); ``save``/``load``.

The importers of published checkpoints (:mod:`xsomo.model.importers`) are loaded on
first use of their names, so importing this package loads no importer (and no loop).
"""

from __future__ import annotations

from typing import Any

from xsomo.model.config import PRESETS, ModelConfig, NormStats, TrainingConfig, apply_transform
from xsomo.model.ealstm import EALSTM, State
from xsomo.model.trained import FORMAT_VERSION, TrainedModel, load_torch_file

__all__ = [
    "EALSTM",
    "FORMAT_VERSION",
    "PRESETS",
    "ModelConfig",
    "NormStats",
    "State",
    "TrainedModel",
    "TrainingConfig",
    "apply_transform",
    "import_ealstm",
    "import_trained_model",
    "load_somoml_v1",
    "load_torch_file",
]

_LAZY = {"import_ealstm", "import_trained_model", "load_somoml_v1"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from xsomo.model import importers

        return getattr(importers, name)
    raise AttributeError(f"module 'xsomo.model' has no attribute {name!r}")
