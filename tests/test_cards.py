"""The model card: one typed, frozen record, written and read in one place; old cards migrate or say what is missing."""

from __future__ import annotations

import dataclasses
import json

import pytest

from helpers.cards import SCHEMA_VERSION, CardError, ModelCard


def _card(**fields) -> ModelCard:
    base = dict(
        architecture="vit_tiny_patch16_224",
        task="multilabel",
        classes=["Atelectasis", "Effusion", "Hernia"],
        input_size=64,
        in_chans=3,
        mean=[0.5, 0.5, 0.5],
        std=[0.25, 0.25, 0.25],
        model_kwargs={"img_size": 64, "in_chans": 3, "pretrained": True},
        preprocess="equalize",
        dataset="nih",
        data_source="real",
        profile="quick",
        run_id="2025-01-01-nih-vit",
        metrics={"test": {"macro_auroc": 0.71, "auprc": float("nan")}},
        app_task="chest",
        pretrained_init=True,
    )
    return ModelCard(**{**base, **fields})


def test_round_trip_through_json():
    card = _card()
    back = ModelCard.from_json(card.to_json())
    nan_free = card.replace(metrics={"test": {"macro_auroc": 0.71, "auprc": None}})
    assert back == nan_free  # NaN is stored as null (strict JSON)
    assert isinstance(back.classes, tuple) and isinstance(back.mean, tuple)
    assert back.model_kwargs == {"img_size": 64, "in_chans": 3, "num_classes": 3}  # weights are in the file
    assert json.loads(card.to_json())["schema_version"] == SCHEMA_VERSION


def test_the_card_is_frozen_and_changed_only_by_replace():
    card = _card()
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.task = "multiclass"
    other = card.replace(profile="full")
    assert other.profile == "full" and card.profile == "quick"
    with pytest.raises(CardError, match="'task'"):
        card.replace(task="regression")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"mean": [0.5]}, "mean"),
        ({"std": [0.2, 0.2, 0.0]}, "std"),
        ({"classes": []}, "classes"),
        ({"in_chans": 2, "mean": [0.5] * 2, "std": [0.2] * 2}, "in_chans"),
        ({"model_kwargs": {"num_classes": 5}}, "num_classes"),
    ],
)
def test_inconsistent_fields_are_named(change, field):
    with pytest.raises(CardError, match=field):
        _card(**change)


def _schema1() -> dict:
    """A card as the checkpoints of ``format: medvit-checkpoint/1`` hold it."""
    return {
        "architecture": "resnet18",
        "model_kwargs": {"in_chans": 1, "img_size": 32, "num_classes": 2},
        "classes": ["benign", "malignant"],
        "task": "binary",
        "input_size": 32,
        "in_chans": 1,
        "normalization": {"mean": [0.41], "std": [0.27]},
        "dataset": "mias",
        "data_source": "real",
        "profile": "smoke",
        "metrics": {"test": {"accuracy": 0.6}},
        "run_id": "r1",
        "created": "2024-06-01T00:00:00+00:00",
        "num_parameters": 11170000,
        "format": "medvit-checkpoint/1",
        "weights": "model.safetensors",
    }


def test_schema_1_card_is_migrated():
    card = ModelCard.from_json(json.dumps(_schema1()))
    assert card.mean == (0.41,) and card.std == (0.27,) and card.in_chans == 1
    assert card.schema_version == SCHEMA_VERSION and card.created == "2024-06-01T00:00:00+00:00"
    assert "normalization" not in card.to_dict() and "format" not in card.to_dict()
    assert card.preprocess is None and card.num_parameters == 11170000


@pytest.mark.parametrize("missing, named", [("normalization", "mean"), ("input_size", "input_size"), ("task", "task")])
def test_schema_1_card_without_a_field_names_it(missing, named):
    data = _schema1()
    del data[missing]
    with pytest.raises(CardError, match=f"lacks the field.*{named}"):
        ModelCard.from_dict(data)


def test_not_json_and_not_an_object_are_card_errors():
    with pytest.raises(CardError, match="not valid JSON"):
        ModelCard.from_json("{architecture: resnet18")
    with pytest.raises(CardError, match="JSON object"):
        ModelCard.from_json("[1, 2]")
