"""A trained EA-LSTM cascade: config, normalisation statistics, weights, provenance.

A model directory (``TrainedModel.save`` / ``TrainedModel.load``) holds

``config.json``
    the :class:`~xsomo.model.config.ModelConfig` (strict: unknown keys are rejected);
``model.json``
    format version, xsomo version, the normalisation statistics, the training history
    and cells, provenance, and the SHA-256 of the weights file;
``weights.safetensors``
    one tensor per parameter, named ``layer{L}.member{M}.{parameter}``.

Loading never unpickles arbitrary objects: weights come from safetensors, or (for a
legacy ``weights.pt``) ``torch.load(..., weights_only=True)``. A corrupt, mismatched or
unsafe file raises :class:`~xsomo.exceptions.CheckpointError` naming the file. The file
parts live in :mod:`xsomo.io.checkpoint`; this module converts objects.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from xsomo.exceptions import CheckpointError, ConfigError
from xsomo.io import checkpoint
from xsomo.io.checkpoint import FORMAT_VERSION, load_torch_file
from xsomo.model.config import ModelConfig, NormStats, TrainingConfig
from xsomo.model.ealstm import EALSTM
from xsomo.model.inputs import transform_inputs

__all__ = ["FORMAT_VERSION", "TrainedModel", "json_safe", "load_torch_file"]

_PARAMS = ("weight_ih", "weight_hh", "bias", "head.weight", "head.bias")

Key = tuple[int, int]
StateDict = dict[str, torch.Tensor]


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (JSON ``null``) and numpy
    scalars/arrays turned into Python numbers/lists.

    >>> json_safe({"a": [1.0, float("inf")], "b": np.float32(2)})
    {'a': [1.0, None], 'b': 2.0}
    """
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class TrainedModel:
    """An EA-LSTM cascade ready for prediction.

    Parameters
    ----------
    config
        The model configuration.
    stats
        Normalisation statistics (from training cells only).
    weights
        ``{(layer, member): state_dict}`` of :class:`~xsomo.model.ealstm.EALSTM`
        parameters (``weight_ih``, ``weight_hh``, ``bias``, ``head.weight``, ``head.bias``),
        for every layer of ``config.layers`` and member ``0 … ensemble-1``.
    history
        Training history (JSON-serialisable), e.g. losses per layer, member and epoch.
    training_cells
        ``(n, 2)`` array of the lat/lon of the cells that trained the model.
    metadata
        Free JSON-serialisable provenance.

    Notes
    -----
    The networks predict z-scored soil moisture; :meth:`denormalise` turns it into
    m3 m-3 (``y * target_std + target_mean``, negatives set to 0 when
    ``config.clip_negative``).
    """

    def __init__(
        self,
        config: ModelConfig,
        stats: NormStats,
        weights: Mapping[Key, Mapping[str, torch.Tensor]],
        *,
        history: Mapping[str, Any] | None = None,
        training_cells: np.ndarray | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, ModelConfig):
            raise ConfigError(f"config must be a ModelConfig, got {type(config).__name__}")
        if not isinstance(stats, NormStats):
            raise ConfigError(f"stats must be NormStats, got {type(stats).__name__}")
        stats.check(config)
        self.config = config
        self.stats = stats
        self.weights: dict[Key, StateDict] = {}
        expected = {(lay, m) for lay in config.layers for m in range(config.ensemble)}
        got = {(int(k[0]), int(k[1])) for k in weights}
        if got != expected:
            raise ConfigError(
                f"weights for (layer, member) {sorted(got)} do not match the config, which needs {sorted(expected)}"
            )
        for (lay, m), sd in weights.items():
            self.weights[(int(lay), int(m))] = {k: v.detach().to("cpu", torch.float32).clone() for k, v in sd.items()}
        for lay in config.layers:  # validates shapes early
            self._build(lay, 0, "cpu")
        self.history: dict[str, Any] = dict(history or {})
        self.training_cells = None if training_cells is None else np.asarray(training_cells, dtype="float64").reshape(-1, 2)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._cache: dict[tuple[int, str], list[EALSTM]] = {}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_weights(
        cls,
        config: ModelConfig | Mapping[str, Any],
        stats: NormStats | Mapping[str, Any],
        weights: Mapping[Any, Any],
        **kwargs: Any,
    ) -> TrainedModel:
        """Build a model from external weights (e.g. an imported published model).

        Parameters
        ----------
        config
            A :class:`ModelConfig` or a dict for :meth:`ModelConfig.from_dict`.
        stats
            :class:`NormStats` or a dict with its six fields.
        weights
            ``{(layer, member): state_dict}``, or ``{layer: [state_dict per member]}``,
            in xsomo's layout (torch.nn.LSTM layout, gate order i, f, g, o, dynamic
            columns first in ``weight_ih``; see :class:`~xsomo.model.ealstm.EALSTM`).
        **kwargs
            ``history``, ``training_cells``, ``metadata``.

        Examples
        --------
        >>> from xsomo.model import EALSTM, ModelConfig, NormStats, TrainedModel
        >>> cfg = ModelConfig(dynamic=["a", "b"], static=["s"], layers=[1], ensemble=1, hidden=4)
        >>> st = NormStats([0, 0], [1, 1], [0], [1], [0.25], [0.1])
        >>> net = EALSTM(2, 1, 4)
        >>> model = TrainedModel.from_weights(cfg, st, {1: [net.state_dict()]})
        >>> model.predict_block(np.zeros((3, 10, 2)), np.zeros((3, 1)), mode="continuous", spinup=1).shape
        (1, 1, 3, 10)
        """
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_dict(config)
        if not isinstance(stats, NormStats):
            stats = NormStats.from_dict(stats)
        flat: dict[Key, Mapping[str, torch.Tensor]] = {}
        for key, value in weights.items():
            if isinstance(key, tuple):
                flat[(int(key[0]), int(key[1]))] = value
            else:
                for m, sd in enumerate(value):
                    flat[(int(key), m)] = sd
        return cls(config, stats, flat, **kwargs)

    # ------------------------------------------------------------------ networks
    def _build(self, layer: int, member: int, device: str | torch.device) -> EALSTM:
        cfg = self.config
        net = EALSTM(
            cfg.n_inputs(layer),
            cfg.n_static,
            cfg.hidden,
            dropout=cfg.dropout,
            initial_forget_bias=cfg.initial_forget_bias,
        )
        sd = self.weights[(layer, member)]
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as err:
            raise ConfigError(
                f"weights of layer {layer} member {member} do not fit an EA-LSTM with "
                f"{cfg.n_inputs(layer)} dynamic, {cfg.n_static} static inputs and {cfg.hidden} hidden units: {err}"
            ) from err
        return net.to(device).eval()

    def networks(self, layer: int, *, device: str | torch.device = "cpu") -> list[EALSTM]:
        """The ensemble members of ``layer`` as :class:`EALSTM` in eval mode (cached per device)."""
        layer = int(layer)
        self.config.layer_index(layer)
        key = (layer, str(device))
        if key not in self._cache:
            self._cache[key] = [self._build(layer, m, device) for m in range(self.config.ensemble)]
        return self._cache[key]

    # ------------------------------------------------------------------ normalisation
    def _transform(self, raw: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        return transform_inputs(raw, names, self.config.transforms)

    @property
    def grid_resolution(self) -> float | None:
        """Resolution (degrees) of the grid whose drivers trained the model
        (``metadata["grid_resolution"]``); None for point drivers, an imported model or one
        saved before it was recorded. Static inputs such as ``elevation_std`` mean something
        else at another resolution: :func:`xsomo.model.inputs.check_grid_resolution`."""
        value = self.metadata.get("grid_resolution")
        return None if value is None else float(value)

    @property
    def training_config(self) -> TrainingConfig | None:
        """The :class:`~xsomo.model.config.TrainingConfig` that trained this model (None for an
        imported model or when ``config.training`` is not one)."""
        try:
            return TrainingConfig.from_dict(self.config.training) if self.config.training else None
        except ConfigError:
            return None

    def prepare_dynamic(self, raw: np.ndarray, *, dtype: str = "float32") -> np.ndarray:
        """Transformed, z-scored dynamic inputs in ``dtype``, same shape ``(..., n_dynamic)``.

        NaN stays NaN. The transform and z-score are computed in float64 and rounded
        once to ``dtype`` (``"float64"``: not rounded).
        """
        raw = np.asarray(raw)
        if raw.shape[-1] != self.config.n_dynamic:
            raise ConfigError(
                f"dynamic inputs have {raw.shape[-1]} columns, the model needs {self.config.n_dynamic}: "
                f"{list(self.config.dynamic)}"
            )
        out = np.empty(raw.shape, dtype=dtype)
        # in pieces of ~1 M values along the first axis: the float64 temporaries stay small
        # (a whole Europe block's made the z-score 5x slower than the arithmetic)
        step = max(1, (1 << 20) // max(1, int(np.prod(raw.shape[1:], dtype=np.int64)))) if raw.ndim > 1 else raw.size
        for s0 in range(0, max(1, raw.shape[0]), step):
            x = self._transform(raw[s0 : s0 + step], self.config.dynamic)
            out[s0 : s0 + step] = (x - self.stats.dynamic_mean) / self.stats.dynamic_std
        return out

    def prepare_static(self, raw: np.ndarray, *, dtype: str = "float32") -> np.ndarray:
        """Transformed, z-scored static inputs ``(cells, n_static)`` in ``dtype``."""
        raw = np.asarray(raw)
        if raw.shape[-1] != self.config.n_static:
            raise ConfigError(
                f"static inputs have {raw.shape[-1]} columns, the model needs {self.config.n_static}: "
                f"{list(self.config.static)}"
            )
        x = self._transform(raw, self.config.static)
        return ((x - self.stats.static_mean) / self.stats.static_std).astype(dtype)

    def normalise_target(self, sm: np.ndarray | torch.Tensor, layer: int) -> Any:
        """z-score soil moisture (m3 m-3) of ``layer`` with the target statistics."""
        k = self.config.layer_index(layer)
        return (sm - float(self.stats.target_mean[k])) / float(self.stats.target_std[k])

    def denormalise(
        self, y: np.ndarray | torch.Tensor, layer: int, *, out: np.ndarray | torch.Tensor | None = None
    ) -> Any:
        """Network output → m3 m-3 (negatives → 0 when ``config.clip_negative``); ``y`` can
        be written into ``out`` of its kind, numpy or torch (the same numbers, no temporaries)."""
        k = self.config.layer_index(layer)
        if isinstance(out, torch.Tensor):
            torch.mul(y, float(self.stats.target_std[k]), out=out)
            out += float(self.stats.target_mean[k])
            if self.config.clip_negative:
                out.clamp_(min=0.0)
            return out
        if out is not None:
            np.multiply(y, float(self.stats.target_std[k]), out=out)
            out += float(self.stats.target_mean[k])
            if self.config.clip_negative:
                np.maximum(out, 0.0, out=out)
            return out
        out = y * float(self.stats.target_std[k]) + float(self.stats.target_mean[k])
        if self.config.clip_negative:
            out = out.clamp(min=0.0) if isinstance(out, torch.Tensor) else np.maximum(out, 0.0)
        return out

    # ------------------------------------------------------------------ prediction
    def predict_block(self, dynamic: np.ndarray, static: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Shortcut for :func:`xsomo.model.rollout.predict_block` with this model."""
        from xsomo.model import rollout

        return rollout.predict_block(self, dynamic, static, **kwargs)

    # ------------------------------------------------------------------ persistence
    def _tensors(self) -> dict[str, torch.Tensor]:
        return {
            f"layer{lay}.member{m}.{name}": t.contiguous()
            for (lay, m), sd in sorted(self.weights.items())
            for name, t in sd.items()
        }

    def to_json_dict(self) -> dict[str, Any]:
        """The ``model.json`` document (without the weights' name and checksum), JSON-safe."""
        from xsomo._version import __version__

        return json_safe({
            "xsomo_version": __version__,
            "stats": self.stats.to_dict(),
            "history": self.history,
            "training_cells": None if self.training_cells is None else self.training_cells.tolist(),
            "metadata": self.metadata,
        })  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> pathlib.Path:
        """Write the model directory ``path`` (:func:`xsomo.io.checkpoint.write_model_dir`).

        The files are written to a temporary folder beside ``path``, which then replaces
        ``path`` as a whole: a crash leaves the old model or the new one, never a mix.
        Non-finite numbers in the history are stored as ``null``.

        Returns
        -------
        pathlib.Path
            The directory.
        """
        return checkpoint.write_model_dir(
            path, config=self.config.to_dict(), model=self.to_json_dict(), tensors=self._tensors()
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainedModel:
        """Load a model directory written by :meth:`save`.

        Raises
        ------
        CheckpointError
            If a file is missing, corrupt, of another format version, does not match
            the config, or is a pickle that needs more than tensors to load.
        """
        path = pathlib.Path(path)
        config_doc, doc, tensors = checkpoint.read_model_dir(path)
        try:
            config = ModelConfig.from_dict(config_doc)
        except ConfigError as err:
            raise CheckpointError(f"{path / checkpoint.CONFIG_FILE}: {err}") from err
        try:
            stats = NormStats.from_dict(doc.get("stats") or {})
        except ConfigError as err:
            raise CheckpointError(f"{path / checkpoint.MODEL_FILE}: {err}") from err
        weights: dict[Key, StateDict] = {}
        for name, t in tensors.items():
            try:
                lay_s, mem_s, param = name.split(".", 2)
                key = (int(lay_s.removeprefix("layer")), int(mem_s.removeprefix("member")))
            except ValueError as err:
                raise CheckpointError(f"weights of {path}: unexpected tensor name {name!r}") from err
            if param not in _PARAMS:
                raise CheckpointError(f"weights of {path}: unexpected parameter {name!r}")
            weights.setdefault(key, {})[param] = t
        cells = doc.get("training_cells")
        try:
            return cls(
                config,
                stats,
                weights,
                history=doc.get("history") or {},
                training_cells=None if cells is None else np.asarray(cells, dtype="float64"),
                metadata=doc.get("metadata") or {},
            )
        except ConfigError as err:
            raise CheckpointError(f"{path}: the weights do not match the config: {err}") from err

    def __repr__(self) -> str:
        c = self.config
        return (
            f"<xsomo.TrainedModel layers={list(c.layers)} ensemble={c.ensemble} hidden={c.hidden} "
            f"lookback={c.lookback} dynamic={list(c.dynamic)} static={len(c.static)} inputs>"
        )
