"""Checkpoints round-trip through safetensors + a JSON model card, and nothing is ever unpickled.

Cards written before the typed :class:`~helpers.cards.ModelCard` (schema 1, written here by hand as
the old code wrote them) load through the migration, or fail with the missing field named.
"""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from helpers.cards import SCHEMA_VERSION, ModelCard
from helpers.checkpoints import (
    Checkpoint,
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    read_card,
    save_checkpoint,
)
from helpers.models.vision import create_model


def _card(**extra) -> ModelCard:
    fields = dict(
        architecture="thesis002_cnn",
        model_kwargs={"in_chans": 1, "img_size": 32},
        classes=("normal", "pneumonia"),
        task="binary",
        input_size=32,
        in_chans=1,
        mean=(0.5,),
        std=(0.25,),
        dataset="pneumoniamnist",
        data_source="real",
        profile="smoke",
        metrics={"test": {"auroc": float("nan"), "accuracy": 0.5}},
        run_id="test-run",
    )
    fields.update(extra)
    return ModelCard(**fields)


def _old_card(**extra) -> dict:
    """A card as ``helpers.checkpoints`` wrote it before schema 2 (``medvit-checkpoint/1``)."""
    card = {
        "architecture": "thesis002_cnn",
        "model_kwargs": {"in_chans": 1, "img_size": 32, "num_classes": 2},
        "classes": ["normal", "pneumonia"],
        "task": "binary",
        "input_size": 32,
        "in_chans": 1,
        "normalization": {"mean": [0.5], "std": [0.25]},
        "dataset": "pneumoniamnist",
        "data_source": "real",
        "preprocess": None,
        "profile": "smoke",
        "metrics": {"test": {"auroc": None, "accuracy": 0.5}},
        "run_id": "old-run",
        "pretrained_init": False,
        "created": "2024-05-01T12:00:00+00:00",
        "versions": {"torch": "2.3.0"},
        "num_parameters": 0,
        "format": "medvit-checkpoint/1",
        "weights": "model.safetensors",
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


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("thesis002_cnn", {"in_chans": 1, "img_size": 32}),
        ("resnet18", {"in_chans": 3}),
        ("vit_tiny_patch16_224", {"in_chans": 3, "img_size": 32}),
    ],
)
def test_round_trip_without_unpickling(tmp_path, monkeypatch, name, kwargs):
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, **kwargs).eval()
    x = torch.randn(2, kwargs["in_chans"], 32, 32)
    with torch.no_grad():
        expected = model(x)
    c = kwargs["in_chans"]
    card = _card(architecture=name, model_kwargs=kwargs, in_chans=c, mean=(0.5,) * c, std=(0.25,) * c)
    folder = save_checkpoint(model, tmp_path / "ckpt", card)
    assert (folder / "model.safetensors").is_file() and (folder / "model_card.json").is_file()

    _no_unpickling(monkeypatch)
    loaded, card = load_checkpoint(folder)
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    assert not loaded.training
    assert isinstance(card, ModelCard)
    assert card.classes == ("normal", "pneumonia") and card.model_kwargs["num_classes"] == 2
    assert card.metrics["test"]["auroc"] is None  # NaN is stored as null: strict JSON
    assert card.num_parameters == sum(p.numel() for p in model.parameters())
    assert card.versions.get("torch") and card.schema_version == SCHEMA_VERSION
    stored = json.loads((folder / "model_card.json").read_text())
    assert stored == card.to_dict() and "normalization" not in stored  # one set of field names


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
    (tmp_path / "model_card.json").write_text(_card().to_json())
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(tmp_path)
    with pytest.raises(TypeError, match="ModelCard"):
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
    assert all(isinstance(f, Checkpoint) for f in found)
    assert [f.folder.parent.name for f in found] == ["run-b", "run-a"]
    assert found[0].card.created.startswith("2025")
    assert list_checkpoints(tmp_path / "nowhere") == []


def _write_old_checkpoint(folder, card: dict):
    """Weights saved as before, with the old card's JSON written by hand."""
    from safetensors.torch import save_model

    torch.manual_seed(0)
    model = create_model("thesis002_cnn", num_classes=2, in_chans=1, img_size=32).eval()
    folder.mkdir(parents=True)
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "medvit-checkpoint/1"})
    (folder / "model_card.json").write_text(json.dumps(card, indent=2))
    return model


def test_old_card_is_migrated(tmp_path):
    folder = tmp_path / "old"
    model = _write_old_checkpoint(folder, _old_card())
    loaded, card = load_checkpoint(folder)
    assert card.mean == (0.5,) and card.std == (0.25,) and card.in_chans == 1
    assert card.schema_version == SCHEMA_VERSION and card.run_id == "old-run"
    assert card.created == "2024-05-01T12:00:00+00:00" and card.metrics["test"]["accuracy"] == 0.5
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # an old card without in_chans takes it from the model's arguments
    no_chans = _old_card()
    del no_chans["in_chans"]
    (folder / "model_card.json").write_text(json.dumps(no_chans))
    assert read_card(folder).in_chans == 1


@pytest.mark.parametrize("field", ["normalization", "input_size", "classes", "architecture"])
def test_old_card_missing_a_field_names_it(tmp_path, field):
    card = _old_card()
    del card[field]
    _write_old_checkpoint(tmp_path / "old", card)
    named = "mean" if field == "normalization" else field
    with pytest.raises(CheckpointError, match=f"lacks the field.*{named}"):
        read_card(tmp_path / "old")
    with pytest.raises(CheckpointError, match=named):
        load_checkpoint(tmp_path / "old")
