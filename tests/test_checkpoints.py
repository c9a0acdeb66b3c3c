"""Checkpoints round-trip through safetensors + a JSON card, and nothing is ever unpickled."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from helpers.checkpoints import CheckpointError, list_checkpoints, load_checkpoint, read_card, save_checkpoint
from helpers.models.vision import create_model


def _card(**extra):
    card = {
        "architecture": "thesis002_cnn",
        "model_kwargs": {"in_chans": 1, "img_size": 32},
        "classes": ["normal", "pneumonia"],
        "task": "binary",
        "input_size": 32,
        "in_chans": 1,
        "normalization": {"mean": [0.5], "std": [0.25]},
        "dataset": "pneumoniamnist",
        "data_source": "real",
        "profile": "smoke",
        "metrics": {"test": {"auroc": float("nan"), "accuracy": 0.5}},
        "run_id": "test-run",
    }
    card.update(extra)
    return card


def _no_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint must never be unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("name,kwargs", [("thesis002_cnn", {"in_chans": 1, "img_size": 32}), ("resnet18", {"in_chans": 3}),
                                          ("vit_tiny_patch16_224", {"in_chans": 3, "img_size": 32})])
def test_round_trip_without_unpickling(tmp_path, monkeypatch, name, kwargs):
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, **kwargs).eval()
    x = torch.randn(2, kwargs["in_chans"], 32, 32)
    with torch.no_grad():
        expected = model(x)
    folder = save_checkpoint(model, tmp_path / "ckpt", _card(architecture=name, model_kwargs=kwargs, in_chans=kwargs["in_chans"]))
    assert (folder / "model.safetensors").is_file() and (folder / "model_card.json").is_file()

    _no_unpickling(monkeypatch)
    loaded, card = load_checkpoint(folder)
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    assert not loaded.training
    assert card["classes"] == ["normal", "pneumonia"] and card["model_kwargs"]["num_classes"] == 2
    assert card["metrics"]["test"]["auroc"] is None  # NaN is stored as null: strict JSON
    for key in ("created", "versions", "num_parameters", "format", "normalization", "data_source", "run_id"):
        assert key in card


def test_card_that_does_not_match_its_weights_is_refused(tmp_path):
    model = create_model("thesis002_cnn", num_classes=2, in_chans=1, img_size=32)
    folder = save_checkpoint(model, tmp_path / "c", _card())
    card = json.loads((folder / "model_card.json").read_text())
    card["model_kwargs"]["img_size"] = 64  # a bigger flatten layer than the weights have
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not match its weights"):
        load_checkpoint(folder)
    card["model_kwargs"]["img_size"] = 32
    card["architecture"] = "resnet18"
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(folder)


def test_broken_folders_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no model_card.json"):
        load_checkpoint(tmp_path)
    (tmp_path / "model_card.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        read_card(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_card(tmp_path)
    (tmp_path / "model_card.json").write_text(json.dumps(_card()))
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="needs"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "x", {"architecture": "resnet18"})


def test_list_checkpoints_finds_cards_and_skips_broken_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path))
    model = create_model("thesis002_cnn", num_classes=2, in_chans=1, img_size=32)
    save_checkpoint(model, tmp_path / "run-a" / "checkpoint", _card(created="2024-01-01T00:00:00+00:00"))
    save_checkpoint(model, tmp_path / "run-b" / "checkpoint", _card(created="2025-01-01T00:00:00+00:00"))
    (tmp_path / "run-c").mkdir()
    (tmp_path / "run-c" / "model_card.json").write_text("{}")
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        found = list_checkpoints()
    assert [f["path"].split("/")[-2] for f in found] == ["run-b", "run-a"]
    assert list_checkpoints(tmp_path / "nowhere") == []
