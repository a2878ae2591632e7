"""xsomo: high-resolution daily soil moisture with an Entity-Aware LSTM (SoMo.ml-EU method).

Importing xsomo registers the ``.somo`` accessor on xarray Datasets.
"""

from __future__ import annotations

import importlib
from typing import Any

from xsomo import accessor as _accessor  # noqa: F401  (registers ds.somo)
from xsomo import conventions, exceptions, units
from xsomo._version import __version__
from xsomo.exceptions import XsomoError

# public name -> "module:attribute", imported on first use so `import xsomo` stays light
_LAZY: dict[str, str] = {
    "sample": "xsomo.sample",
    "open_ismn": "xsomo.targets.stations:open_ismn",
    "open_era5land": "xsomo.io:open_era5land",
    "open_cosmos": "xsomo.io:open_cosmos",
    "open_drivers": "xsomo.drivers.assemble:open_drivers",
    "prepare": "xsomo.drivers.sources:prepare",
    "read_sources": "xsomo.io.sources:read_sources",
    "point_drivers": "xsomo.drivers.points:point_drivers",
    "scale_to": "xsomo.targets.scaling:scale_to",
    "TrainedModel": "xsomo.model:TrainedModel",
    "train_lstm": "xsomo.model.training:train_lstm",
    "cross_validate": "xsomo.model.crossval:cross_validate",
    "predict": "xsomo.prediction.inference:predict",
    "to_files": "xsomo.prediction.output:to_files",
    "evaluate": "xsomo.evaluation:evaluate",
    "open_somo": "xsomo.io.somo:open_somo",
    # the method's steps, as documented (xsomo.gis.to_cog(...) after `import xsomo` raised AttributeError)
    "drivers": "xsomo.drivers",
    "evaluation": "xsomo.evaluation",
    "gis": "xsomo.gis",
    "io": "xsomo.io",
    "model": "xsomo.model",
    "prediction": "xsomo.prediction",
    "targets": "xsomo.targets",
}

__all__ = ["XsomoError", "__version__", "conventions", "exceptions", "units", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    try:
        target = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'xsomo' has no attribute {name!r}") from None
    module, _, attr = target.partition(":")
    mod = importlib.import_module(module)
    value = getattr(mod, attr) if attr else mod
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
