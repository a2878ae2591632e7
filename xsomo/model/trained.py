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
unsafe file raises :class:`~xsomo.exceptions.CheckpointError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from xsomo.exceptions import CheckpointError, ConfigError
from xsomo.model.config import ModelConfig, NormStats, apply_transform
from xsomo.model.ealstm import EALSTM

__all__ = ["FORMAT_VERSION", "TrainedModel", "atomic_write_bytes"]

#: Version of the model directory layout.
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
LEGACY_WEIGHTS_FILE = "weights.pt"
_PARAMS = ("weight_ih", "weight_hh", "bias", "head.weight", "head.bias")

Key = tuple[int, int]
StateDict = dict[str, torch.Tensor]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        out = np.array(raw, dtype="float64", copy=True)
        for j, name in enumerate(names):
            tr = self.config.transforms.get(name, "identity")
            if tr != "identity":
                out[..., j] = apply_transform(out[..., j], tr)
        return out

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
        x = self._transform(raw, self.config.dynamic)
        return ((x - self.stats.dynamic_mean) / self.stats.dynamic_std).astype(dtype)

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

    def denormalise(self, y: np.ndarray | torch.Tensor, layer: int) -> Any:
        """Network output → m3 m-3 (negatives → 0 when ``config.clip_negative``)."""
        k = self.config.layer_index(layer)
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

    def to_json_dict(self, weights_sha256: str | None = None) -> dict[str, Any]:
        from xsomo._version import __version__

        return {
            "format_version": FORMAT_VERSION,
            "xsomo_version": __version__,
            "stats": self.stats.to_dict(),
            "history": self.history,
            "training_cells": None if self.training_cells is None else self.training_cells.tolist(),
            "metadata": self.metadata,
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": weights_sha256,
        }

    def save(self, path: str | os.PathLike[str]) -> pathlib.Path:
        """Write the model directory ``path`` (created if needed; files replaced atomically).

        Returns
        -------
        pathlib.Path
            The directory.
        """
        from safetensors.torch import save as st_save

        path = pathlib.Path(path)
        path.mkdir(parents=True, exist_ok=True)
        blob = st_save(self._tensors(), metadata={"format_version": str(FORMAT_VERSION)})
        atomic_write_bytes(path / WEIGHTS_FILE, blob)
        atomic_write_bytes(path / CONFIG_FILE, json.dumps(self.config.to_dict(), indent=1).encode())
        doc = json.dumps(self.to_json_dict(_sha256(blob)), indent=1, allow_nan=False)
        atomic_write_bytes(path / MODEL_FILE, doc.encode())
        return path

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
        meta_path = path / MODEL_FILE
        if not meta_path.is_file():
            raise CheckpointError(
                f"{path} is not an xsomo model directory: {MODEL_FILE} is missing "
                "(write one with TrainedModel.save or `xsomo train --out DIR`)"
            )
        try:
            doc = json.loads(meta_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{meta_path} is corrupt (not valid JSON): {err}") from err
        if not isinstance(doc, dict):
            raise CheckpointError(f"{meta_path} is corrupt: expected a JSON object")
        version = doc.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{meta_path} has format_version {version!r}; this xsomo reads version {FORMAT_VERSION}"
            )
        known = {
            "format_version", "xsomo_version", "stats", "history", "training_cells",
            "metadata", "weights_file", "weights_sha256",
        }  # fmt: skip
        unknown = sorted(set(doc) - known)
        if unknown:
            raise CheckpointError(f"{meta_path} has unknown keys {unknown}")
        config_path = path / CONFIG_FILE
        try:
            config_doc = json.loads(config_path.read_text())
        except FileNotFoundError as err:
            raise CheckpointError(f"{config_path} is missing; save the model again") from err
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{config_path} is corrupt (not valid JSON): {err}") from err
        try:
            config = ModelConfig.from_dict(config_doc)
        except ConfigError as err:
            raise CheckpointError(f"{config_path}: {err}") from err
        try:
            stats = NormStats.from_dict(doc.get("stats") or {})
        except ConfigError as err:
            raise CheckpointError(f"{meta_path}: {err}") from err
        tensors = cls._read_weights(path, doc)
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

    @staticmethod
    def _read_weights(path: pathlib.Path, doc: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        st_path = path / WEIGHTS_FILE
        pt_path = path / LEGACY_WEIGHTS_FILE
        if st_path.is_file():
            data = st_path.read_bytes()
            want = doc.get("weights_sha256")
            if want and _sha256(data) != want:
                raise CheckpointError(
                    f"{st_path} does not match {path / MODEL_FILE} (checksum differs): the weights were "
                    "replaced or corrupted; save the model again"
                )
            from safetensors.torch import load as st_load

            try:
                return dict(st_load(data))
            except Exception as err:  # safetensors raises its own error types
                raise CheckpointError(f"{st_path} is corrupt: {err}") from err
        if pt_path.is_file():
            return load_torch_file(pt_path)
        raise CheckpointError(f"{path}: no weights file ({WEIGHTS_FILE}) found")

    def __repr__(self) -> str:
        c = self.config
        return (
            f"<xsomo.TrainedModel layers={list(c.layers)} ensemble={c.ensemble} hidden={c.hidden} "
            f"lookback={c.lookback} dynamic={list(c.dynamic)} static={len(c.static)} inputs>"
        )


def load_torch_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``torch.load(path, weights_only=True, map_location="cpu")`` with clear errors.

    A pickle that needs anything but tensors and plain containers (a payload) is refused.
    """
    import pickle

    path = pathlib.Path(path)
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} was refused: it is not a plain tensor checkpoint (loading it would run code "
            f"or build arbitrary objects). Only load checkpoints you trust with other tools. Detail: {err}"
        ) from err
    except Exception as err:
        raise CheckpointError(f"{path} is corrupt or not a torch checkpoint: {err}") from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj


def iter_keys(config: ModelConfig) -> Iterable[Key]:
    return ((lay, m) for lay in config.layers for m in range(config.ensemble))
