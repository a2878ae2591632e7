"""Model directories and training checkpoints on disk: the file parts of a trained model.

A model directory holds

``config.json``
    the model configuration (a JSON object; validated by the model step);
``model.json``
    format version, xsomo version, normalisation statistics, training history and cells,
    provenance, and the SHA-256 of the weights file;
``weights.safetensors``
    one tensor per parameter (a legacy ``weights.pt`` is read with
    ``torch.load(weights_only=True)``; it must match ``weights_sha256`` where one is recorded).

:func:`write_model_dir` writes the three files into a temporary folder beside the target
and renames it into place (:func:`xsomo.io.atomic.atomic_dir`), so a crash never leaves a
half-written model. :func:`read_model_dir` reads them back and never unpickles arbitrary
objects. Everything here takes and returns plain dicts and tensors; turning them into a
:class:`~xsomo.model.trained.TrainedModel` is the model step's business.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import pickle
from collections.abc import Mapping
from typing import Any

import torch

from xsomo.exceptions import CheckpointError
from xsomo.io.atomic import atomic_dir, atomic_write_bytes

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "READ_VERSIONS",
    "WEIGHTS_FILE",
    "load_torch_file",
    "read_model_dir",
    "save_torch_file",
    "sha256",
    "write_model_dir",
]

#: Version of the model directory layout. 2: ``model.json`` must hold both checksums
#: (``config_sha256``, ``weights_sha256``), and the weights file must match it. Version 1
#: folders still load: those written before the config checksum have none, and hand-made
#: ones may have a ``weights.pt`` and no weights checksum.
FORMAT_VERSION = 2
#: Versions :func:`read_model_dir` reads.
READ_VERSIONS = (1, 2)
MODEL_FILE = "model.json"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
LEGACY_WEIGHTS_FILE = "weights.pt"
#: Keys of ``model.json``.
MODEL_KEYS = (
    "format_version", "xsomo_version", "stats", "history", "training_cells",
    "metadata", "weights_file", "weights_sha256", "config_sha256", "stats_sha256",
)  # fmt: skip


def _stats_digest(stats: Any) -> str:
    """SHA-256 of the normalisation statistics as canonical JSON (key order and spacing aside)."""
    return sha256(json.dumps(stats, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _json_bytes(doc: Any, what: str) -> bytes:
    try:
        return json.dumps(doc, indent=1, allow_nan=False).encode()
    except ValueError as err:  # inf / nan
        raise CheckpointError(f"{what} holds a non-finite number, which JSON cannot store: {err}") from err
    except TypeError as err:
        raise CheckpointError(f"{what} holds a value JSON cannot store: {err}") from err


def write_model_dir(
    path: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    model: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
) -> pathlib.Path:
    """Write a model directory at ``path`` as a whole (replacing an existing one).

    Parameters
    ----------
    config
        The model configuration (``config.json``).
    model
        ``model.json`` without ``format_version``, ``weights_file`` and
        ``weights_sha256``, which are added here.
    tensors
        ``{name: tensor}`` for ``weights.safetensors``.

    Raises
    ------
    CheckpointError
        If a document holds a non-finite number or a non-JSON value (before anything is written).
        Also if ``path`` is a folder holding other files but no model (it would be replaced).
    NotADirectoryError
        If ``path`` exists and is a file.
    """
    from safetensors.torch import save as st_save

    blob = st_save(
        {k: t.detach().to("cpu").contiguous() for k, t in tensors.items()},
        metadata={"format_version": str(FORMAT_VERSION)},
    )
    config_bytes = _json_bytes(dict(config), f"the model configuration for {path}")
    # config.json holds the inputs' order, which the positional statistics here follow: a
    # config.json of another model (or edited) must not load with these weights and statistics
    doc = {
        **dict(model), "format_version": FORMAT_VERSION, "weights_file": WEIGHTS_FILE,
        "weights_sha256": sha256(blob), "config_sha256": sha256(config_bytes),
    }  # fmt: skip
    if "stats" in doc:
        # the statistics live in model.json itself: an edit of them (target_mean + 0.1) had loaded and
        # moved every output by 0.1 m3 m-3 (hostile-input QA); folders without this key still load
        doc["stats_sha256"] = _stats_digest(doc["stats"])
    unknown = sorted(set(doc) - set(MODEL_KEYS))
    if unknown:
        raise CheckpointError(f"{MODEL_FILE}: unknown keys {unknown}")
    model_bytes = _json_bytes(doc, f"{MODEL_FILE} for {path}")
    path = pathlib.Path(path)
    if path.is_dir() and not (path / MODEL_FILE).is_file() and any(path.iterdir()):
        raise CheckpointError(
            f"{path} holds files but no model ({MODEL_FILE}); saving replaces the whole folder, so "
            "choose a new or empty folder for the model"
        )
    with atomic_dir(path) as tmp:
        for name, data in ((WEIGHTS_FILE, blob), (CONFIG_FILE, config_bytes), (MODEL_FILE, model_bytes)):
            atomic_write_bytes(tmp / name, data)
    return path


def _read_json(path: pathlib.Path, *, missing: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"{path} is missing; {missing}") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt (not valid JSON): {err}") from err


def read_model_dir(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, torch.Tensor]]:
    """Read a model directory: ``(config document, model document, tensors)``.

    Raises
    ------
    CheckpointError
        If a file is missing or corrupt, ``model.json`` has another format version or
        unknown keys, lacks a checksum its format version writes (both in version 2), the
        config or weights do not match their checksum, or a legacy ``weights.pt`` needs more
        than tensors to load.
    """
    path = pathlib.Path(path)
    meta_path = path / MODEL_FILE
    if not meta_path.is_file():
        raise CheckpointError(
            f"{path} is not an xsomo model directory: {MODEL_FILE} is missing "
            "(write one with TrainedModel.save or `xsomo train --out DIR`)"
        )
    doc = _read_json(meta_path, missing="save the model again")
    if not isinstance(doc, dict):
        raise CheckpointError(f"{meta_path} is corrupt: expected a JSON object")
    version = doc.get("format_version")
    if isinstance(version, bool) or version not in READ_VERSIONS:
        raise CheckpointError(
            f"{meta_path} has format_version {version!r}; this xsomo reads versions {list(READ_VERSIONS)}"
        )
    unknown = sorted(set(doc) - set(MODEL_KEYS))
    if unknown:
        raise CheckpointError(f"{meta_path} has unknown keys {unknown}")
    # version 2 always carries both checksums; version 1 folders written before the config
    # checksum have no 'config_sha256' key (a key present but empty was never written)
    for key in ("config_sha256", "weights_sha256"):
        if version >= 2 or (key == "config_sha256" and key in doc):
            _check_sha_field(doc, key, meta_path)
    if "stats_sha256" in doc:
        _check_sha_field(doc, "stats_sha256", meta_path)
        try:
            same = _stats_digest(doc.get("stats")) == doc["stats_sha256"]
        except (TypeError, ValueError):
            same = False
        if not same:
            raise CheckpointError(
                f"{meta_path}: its normalisation statistics ('stats') do not match their checksum: they were "
                "edited, and every output would move with them; save the model again from its source or train it again"
            )
    config = _read_json(path / CONFIG_FILE, missing="save the model again")
    want = doc.get("config_sha256")
    if want is not None and sha256((path / CONFIG_FILE).read_bytes()) != want:
        raise CheckpointError(
            f"{path / CONFIG_FILE} does not match {meta_path} (checksum differs): the configuration was "
            "edited or comes from another model, and the inputs' order, which the normalisation "
            "statistics follow, may no longer be the weights'; save the model again"
        )
    return config, doc, _read_weights(path, doc)


def _check_sha_field(doc: Mapping[str, Any], key: str, meta_path: pathlib.Path) -> None:
    value = doc.get(key)
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return
    version = doc.get("format_version")
    found = f"no {key!r}" if key not in doc else f"{key!r} = {value!r}"
    why = (
        "format_version 2 always records the SHA-256 of config.json and of the weights file"
        if version >= 2
        else f"no xsomo version wrote {key!r} other than as a SHA-256"
    )
    raise CheckpointError(
        f"{meta_path} has {found} ({why}, checked on load): model.json was edited, so config.json and "
        "the weights cannot be trusted to belong together (an edited config.json reorders the inputs "
        "the statistics and weights follow); save the model again from its source or train it again"
    )


def _read_weights(path: pathlib.Path, doc: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    st_path = path / WEIGHTS_FILE
    pt_path = path / LEGACY_WEIGHTS_FILE
    # the checksum of model.json holds for the weights file it names (version 2 always has one)
    want = doc.get("weights_sha256")
    weights_path = st_path if st_path.is_file() else pt_path
    if want is not None and weights_path.is_file() and sha256(weights_path.read_bytes()) != want:
        raise CheckpointError(
            f"{weights_path} does not match {path / MODEL_FILE} (checksum differs): the weights were "
            f"replaced or corrupted (model.json records {doc.get('weights_file') or WEIGHTS_FILE!s}); "
            "save the model again"
        )
    if st_path.is_file():
        data = st_path.read_bytes()
        from safetensors.torch import load as st_load

        try:
            return dict(st_load(data))
        except Exception as err:  # safetensors raises its own error types
            raise CheckpointError(f"{st_path} is corrupt: {err}") from err
    if pt_path.is_file():
        return load_torch_file(pt_path)
    raise CheckpointError(f"{path}: no weights file ({WEIGHTS_FILE}) found")


def load_torch_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``torch.load(path, weights_only=True, map_location="cpu")`` with clear errors.

    A pickle that needs anything but tensors and plain containers (a payload) is refused.
    """
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


def save_torch_file(path: str | os.PathLike[str], obj: Mapping[str, Any]) -> None:
    """``torch.save`` a dict of tensors and plain containers to ``path`` atomically.

    Read it back with :func:`load_torch_file` (weights only: store no other objects).
    """
    buf = io.BytesIO()
    torch.save(dict(obj), buf)
    atomic_write_bytes(path, buf.getvalue())
