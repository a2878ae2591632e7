"""Model directories: save -> load, strict configs, corrupt/mismatched/malicious files."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from xsomo.exceptions import CheckpointError, ConfigError
from xsomo.io.checkpoint import sha256
from xsomo.model import EALSTM, ModelConfig, NormStats, TrainedModel, load_torch_file


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(dynamic=["p", "t"], static=["a", "b"], layers=[1, 2], ensemble=2, hidden=6, lookback=8,
                      transforms={"p": "log1p"})  # fmt: skip
    stats = NormStats([0.5, 280], [0.8, 9], [0, 1], [1, 2], [0.2, 0.3], [0.1, 0.05])
    w = {(lay, m): EALSTM(cfg.n_inputs(lay), 2, 6).state_dict() for lay in (1, 2) for m in (0, 1)}
    return TrainedModel(cfg, stats, w, history={"loss": [1.0, 0.5]}, training_cells=np.array([[45.05, 5.05]]))


def _inputs():
    rng = np.random.default_rng(0)
    return np.abs(rng.normal(280, 5, (3, 30, 2))), rng.normal(size=(3, 2))


def test_save_load_identical_predictions(tmp_path):
    model = _model()
    model.save(tmp_path / "m")
    back = TrainedModel.load(tmp_path / "m")
    assert back.config == model.config
    assert back.history == model.history
    np.testing.assert_array_equal(back.training_cells, model.training_cells)
    dyn, stat = _inputs()
    a = model.predict_block(dyn, stat, mode="continuous", spinup=1)
    b = back.predict_block(dyn, stat, mode="continuous", spinup=1)
    np.testing.assert_array_equal(a, b)
    assert not list((tmp_path / "m").glob("*.tmp"))


def test_config_is_strict():
    good = _model().config.to_dict()
    with pytest.raises(ConfigError, match="unknown keys"):
        ModelConfig.from_dict({**good, "hiden": 5})
    bad = dict(good)
    del bad["static"]
    with pytest.raises(ConfigError, match=r"missing mandatory keys \[.static.\]"):
        ModelConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="transform"):
        ModelConfig.from_dict({**good, "transforms": {"p": "sqrt"}})
    assert ModelConfig.from_dict(good) == _model().config


def test_corrupt_and_mismatched_files(tmp_path):
    d = _model().save(tmp_path / "m")
    other = _model(seed=1).save(tmp_path / "o")
    # weights of another model: checksum in model.json no longer matches
    (d / "weights.safetensors").write_bytes((other / "weights.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="checksum"):
        TrainedModel.load(d)
    # truncated weights without checksum (a hand-made version-1 folder)
    doc = json.loads((other / "model.json").read_text())
    doc["weights_sha256"] = None
    doc["format_version"] = 1
    (other / "model.json").write_text(json.dumps(doc))
    blob = (other / "weights.safetensors").read_bytes()
    (other / "weights.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        TrainedModel.load(other)
    (d / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        TrainedModel.load(d)
    with pytest.raises(CheckpointError, match=r"model\.json is missing"):
        TrainedModel.load(tmp_path / "nothing")


def test_config_of_another_model_or_edited_is_refused(tmp_path):
    """The statistics in model.json follow config.json's input order: a config.json edited
    (two inputs swapped) or copied from another model loaded and mis-mapped the inputs."""
    d = _model().save(tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    swapped = {**cfg, "dynamic": [cfg["dynamic"][1], cfg["dynamic"][0], *cfg["dynamic"][2:]]}
    (d / "config.json").write_text(json.dumps(swapped))
    with pytest.raises(CheckpointError, match=r"config\.json does not match.*checksum"):
        TrainedModel.load(d)
    (d / "config.json").write_text(json.dumps(cfg, separators=(",", ":")))  # the same settings, other bytes: refused too
    with pytest.raises(CheckpointError, match="checksum"):
        TrainedModel.load(d)


def test_edited_statistics_are_refused_and_folders_without_their_checksum_load(tmp_path):
    """model.json's normalisation statistics had no checksum: target_mean + 0.1 loaded and moved
    every layer-1 value by 0.1 m3 m-3 (hostile-input QA)."""
    model = _model()
    d = model.save(tmp_path / "m")
    doc = json.loads((d / "model.json").read_text())
    assert len(doc["stats_sha256"]) == 64
    TrainedModel.load(d)  # as saved
    (d / "model.json").write_text(json.dumps(doc, indent=3))  # other spacing, same statistics: loads
    TrainedModel.load(d)
    edited = json.loads(json.dumps(doc))
    edited["stats"]["target_mean"][0] += 0.1
    (d / "model.json").write_text(json.dumps(edited))
    with pytest.raises(CheckpointError, match=r"normalisation statistics \('stats'\) do not match their checksum"):
        TrainedModel.load(d)
    del edited["stats_sha256"]  # a folder of an earlier version (no statistics checksum) loads
    (d / "model.json").write_text(json.dumps(edited))
    TrainedModel.load(d)


def _without_config_checksum(d):
    """A model folder as versions before the config checksum wrote it (format version 1)."""
    doc = json.loads((d / "model.json").read_text())
    del doc["config_sha256"]
    doc["format_version"] = 1
    (d / "model.json").write_text(json.dumps(doc))


def test_weights_that_do_not_fit_the_config(tmp_path):
    d = _model().save(tmp_path / "m")
    _without_config_checksum(d)  # (the fit is checked where no checksum says more)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "hidden": 7}))
    with pytest.raises(CheckpointError, match="do not match the config"):
        TrainedModel.load(d)
    (d / "config.json").write_text(json.dumps({**cfg, "dropuot": 0.1}))
    with pytest.raises(CheckpointError, match="unknown keys"):
        TrainedModel.load(d)
    (d / "config.json").write_text(json.dumps(cfg))
    doc = json.loads((d / "model.json").read_text())
    doc["format_version"] = 99
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="format_version"):
        TrainedModel.load(d)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_pickle_with_payload_is_refused(tmp_path):
    marker = tmp_path / "payload_ran"
    d = _model().save(tmp_path / "m")
    (d / "weights.safetensors").unlink()
    with open(d / "weights.pt", "wb") as fh:
        pickle.dump({"layer1.member0.weight_ih": _Payload(str(marker))}, fh, protocol=2)
    with pytest.raises(CheckpointError, match="checksum differs"):  # not the recorded weights
        TrainedModel.load(d)
    doc = json.loads((d / "model.json").read_text())  # a hand-made version-1 folder without checksum
    (d / "model.json").write_text(json.dumps({**doc, "format_version": 1, "weights_sha256": None}))
    with pytest.raises(CheckpointError, match="refused"):
        TrainedModel.load(d)
    with pytest.raises(CheckpointError, match="refused"):
        load_torch_file(d / "weights.pt")
    assert not marker.exists()


def test_legacy_torch_weights_load(tmp_path):
    model = _model()
    d = model.save(tmp_path / "m")
    torch.save(model._tensors(), d / "weights.pt")
    (d / "weights.safetensors").unlink()
    # model.json's weights checksum is the safetensors file's: a weights.pt is not those weights
    with pytest.raises(CheckpointError, match=r"weights\.pt does not match.*checksum"):
        TrainedModel.load(d)
    doc = json.loads((d / "model.json").read_text())
    (d / "model.json").write_text(json.dumps({**doc, "weights_sha256": sha256((d / "weights.pt").read_bytes())}))
    back = TrainedModel.load(d)
    dyn, stat = _inputs()
    np.testing.assert_array_equal(
        back.predict_block(dyn, stat, mode="windowed"), model.predict_block(dyn, stat, mode="windowed")
    )


def test_from_weights_per_layer_lists():
    m = _model()
    per_layer = {lay: [m.weights[(lay, i)] for i in range(2)] for lay in (1, 2)}
    again = TrainedModel.from_weights(m.config.to_dict(), m.stats.to_dict(), per_layer)
    assert set(again.weights) == set(m.weights)
    with pytest.raises(ConfigError, match="do not match the config"):
        TrainedModel.from_weights(m.config, m.stats, {1: per_layer[1]})


def test_item5_save_writes_a_temporary_folder_and_renames(tmp_path, monkeypatch):
    from xsomo.io import checkpoint

    old = _model(seed=1)
    old.save(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    real = checkpoint.atomic_write_bytes
    calls = {"n": 0}

    def crash_after_the_weights(path, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", crash_after_the_weights)
    with pytest.raises(OSError, match="disk full"):
        _model(seed=2).save(tmp_path / "m")
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", real)
    # the old model is untouched and nothing half-written is left beside it
    assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    with pytest.raises(OSError, match="disk full"):
        monkeypatch.setattr(checkpoint, "atomic_write_bytes", crash_after_the_weights)
        calls["n"] = 0
        _model(seed=2).save(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    # a folder with other files is never replaced by a model
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("x")
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", real)
    with pytest.raises(CheckpointError, match="holds files but no model"):
        _model().save(tmp_path / "data")
    assert (tmp_path / "data" / "keep.txt").read_text() == "x"


def test_item5_no_json_inf(tmp_path):
    model = _model()
    model.history = {"layer1_member0": {"best_val_loss": float("inf"), "val_loss": [float("nan"), 0.5]}}
    d = model.save(tmp_path / "m")
    text = (d / "model.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["history"]["layer1_member0"] == {"best_val_loss": None, "val_loss": [None, 0.5]}
    assert TrainedModel.load(d).history["layer1_member0"]["val_loss"] == [None, 0.5]


def test_model_package_imports_no_importer_and_no_loop():
    """Issue 13: importing xsomo.model loads no importer; the importers' names still resolve."""
    import subprocess
    import sys

    code = (
        "import sys, xsomo.model as m; assert 'xsomo.model.importers' not in sys.modules; "
        "assert callable(m.load_somoml_v1); from xsomo.model import import_ealstm; "
        "assert 'xsomo.model.importers' in sys.modules; import xsomo.model.trained as t; assert not hasattr(t, 'iter_keys')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("edit", ["delete", "empty", "null"])
@pytest.mark.parametrize("key", ["config_sha256", "weights_sha256"])
def test_a_current_model_without_its_checksums_is_refused(tmp_path, key, edit):
    """Deleting (or blanking) model.json's checksum let an edited config.json (inputs reversed) load."""
    d = _model().save(tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "dynamic": cfg["dynamic"][::-1]}))
    doc = json.loads((d / "model.json").read_text())
    assert doc["format_version"] == 2
    if edit == "delete":
        del doc[key]
    else:
        doc[key] = "" if edit == "empty" else None
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=f"{key}.*model.json was edited"):
        TrainedModel.load(d)


def test_version_1_folders_load_without_a_config_checksum_but_not_with_an_empty_one(tmp_path):
    model = _model()
    d = model.save(tmp_path / "m")
    _without_config_checksum(d)  # as written before the config checksum: loads
    dyn, stat = _inputs()
    np.testing.assert_array_equal(
        TrainedModel.load(d).predict_block(dyn, stat, mode="windowed"), model.predict_block(dyn, stat, mode="windowed")
    )
    doc = json.loads((d / "model.json").read_text())
    (d / "model.json").write_text(json.dumps({**doc, "config_sha256": ""}))  # no version wrote ''
    with pytest.raises(CheckpointError, match="config_sha256"):
        TrainedModel.load(d)
    (d / "model.json").write_text(json.dumps({**doc, "weights_sha256": "0" * 64}))
    with pytest.raises(CheckpointError, match="checksum differs"):
        TrainedModel.load(d)


@pytest.mark.parametrize("layers", [(2, 1), (1, 3, 2), (1, 1)])
def test_layers_out_of_cascade_order_are_refused(layers):
    """layers=(2, 1) trained layer 2 without layer 1 and fed layer 2's simulation into layer 1."""
    from xsomo.model.config import TrainingConfig

    with pytest.raises(ConfigError, match="layers"):
        ModelConfig(dynamic=["p"], static=["a"], layers=layers)
    with pytest.raises(ConfigError, match="layers"):
        TrainingConfig(layers=layers)
    assert ModelConfig(dynamic=["p"], static=["a"], layers=(1, 3)).layers == (1, 3)
