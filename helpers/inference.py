"""Inference without training: model card → input tensor → probabilities → explanation.

The classifier app, the chapters and evaluation run a trained model through these functions:

* :func:`load_model` reads a checkpoint (safetensors weights and a :class:`~helpers.cards.ModelCard`;
  nothing is unpickled) for inference.
* :func:`model_input` / :func:`prepare` turn a file (path, bytes, stream) or a decoded ``uint8``
  image into the model's input with :func:`helpers.preprocessing.prepare_file`, the very function
  the decode-once training cache applies to every training image, then :func:`normalize` with the
  training split's statistics from the card. The same bytes give the same tensor in both places.
* :func:`probabilities` is the one rule from logits to probabilities: a softmax over the classes,
  one sigmoid per label for a multi-label model, ``[1 - p, p]`` for a binary model with a single
  output. :func:`predict` applies it to a batch.
* :func:`explain` is the heatmap of where the model looked (Grad-CAM for CNNs, attention
  rollout for ViTs; :mod:`helpers.explain`); :func:`heatmap`, what the app shows, first asks
  :func:`helpers.explain.explanation_plan` for a layer fine enough at the card's input size to
  point at something, and raises :class:`~helpers.explain.NoMapError` (saying why) when there is none.

Nothing here imports fastai, the training code or the dataset registry and downloaders; a test
checks that in a fresh interpreter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import explain as _explain
from .cards import TASK_KINDS, ModelCard
from .checkpoints import load_checkpoint
from .explain import MapPlan, NoMapError
from .imageio import DEFAULT_MAX_PIXELS, DecodedImage, Source
from .preprocessing import normalize, prepare_file, prepare_image

__all__ = [
    "InferenceError",
    "ModelInput",
    "probabilities",
    "normalize",
    "input_tensor",
    "model_input",
    "prepare",
    "predict",
    "explain",
    "heatmap",
    "heatmap_method",
    "NoMapError",
    "load_model",
]


class InferenceError(ValueError):
    """A model and its card, or an input and the card, do not fit together; the message says how."""


def probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Class probabilities from a classifier's logits ``(..., K)``.

    Args:
        logits: the model's outputs, classes last.
        task: ``multiclass`` (softmax), ``binary`` (softmax over two columns; a single column is
            the positive class's logit and gives ``[1 - p, p]``) or ``multilabel`` (one sigmoid
            per label, so the values do not sum to one).
    """
    if task not in TASK_KINDS:
        raise ValueError(f"task must be one of {TASK_KINDS}, got {task!r}")
    if task == "multilabel":
        return torch.sigmoid(logits)
    if task == "binary" and logits.shape[-1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=-1)
    return torch.softmax(logits, dim=-1)


@dataclass(frozen=True)
class ModelInput:
    """One image ready for a model.

    Attributes:
        x: the normalised input ``(1, C, S, S)``, float32.
        image: the ``uint8`` ``(S, S, C)`` image it holds (what the model sees).
        decoded: what the decoder gave for a file (full-size array, format, notes); ``None`` for an array.
        seconds: time of each step: ``decode`` (files only) and ``preprocess`` (resize and normalise).
    """

    x: torch.Tensor
    image: np.ndarray
    decoded: DecodedImage | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def input_tensor(image: np.ndarray, card: ModelCard) -> torch.Tensor:
    """A prepared ``uint8`` ``(S, S, C)`` image as the normalised ``(1, C, S, S)`` input the card describes."""
    if image.shape != (card.input_size, card.input_size, card.in_chans):
        raise InferenceError(
            f"the image is {image.shape}, the model expects ({card.input_size}, {card.input_size}, {card.in_chans})"
        )
    u = torch.from_numpy(np.array(image)).permute(2, 0, 1)  # a writable copy
    return normalize(u, card.mean, card.std).unsqueeze(0)


def model_input(source: Source | np.ndarray, card: ModelCard, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ModelInput:
    """Prepare a file (path, bytes, stream) or a decoded ``uint8`` ``(H, W, C)`` image for the model.

    A file goes through :func:`helpers.preprocessing.prepare_file` exactly as the decode-once cache
    stores a training image (the card's channels, preprocessing and input size); an array goes
    through the same :func:`~helpers.preprocessing.prepare_image`. Transparent pixels are composited
    on the card's ``background`` (the training images' background colour), black when it has none.

    Raises:
        helpers.imageio.ImageReadError: for a file that cannot be decoded.
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if isinstance(source, np.ndarray):
        decoded = None
        image = prepare_image(source, card.input_size, card.preprocess, card.in_chans)
    else:
        size, chans = card.input_size, card.in_chans
        background = card.background if card.background is not None else 0
        image, decoded = prepare_file(
            source, size, chans, card.preprocess, max_pixels=max_pixels, seconds=seconds, background=background
        )
    t1 = time.perf_counter()
    x = input_tensor(image, card)
    seconds["preprocess"] = seconds.get("preprocess", t1 - t0) + time.perf_counter() - t1
    return ModelInput(x, image, decoded, seconds)


def prepare(source: Source | np.ndarray, card: ModelCard) -> tuple[torch.Tensor, np.ndarray]:
    """``(x, image)``: the normalised input ``(1, C, S, S)`` and the ``uint8`` image (see :func:`model_input`)."""
    prepared = model_input(source, card)
    return prepared.x, prepared.image


def predict(model: nn.Module, x: torch.Tensor, card: ModelCard) -> np.ndarray:
    """Class probabilities ``(B, K)`` for a batch of prepared inputs (no gradients, float32).

    Raises:
        InferenceError: when the model's outputs do not match the card's classes.
    """
    with torch.no_grad():
        logits = model(x).float()
    probs = probabilities(logits, card.task)
    if probs.shape[-1] != len(card.classes):
        raise InferenceError(
            f"the model gives {probs.shape[-1]} outputs but its card lists {len(card.classes)} classes"
        )
    return probs.cpu().numpy()


def heatmap_method(model: nn.Module) -> str:
    """How :func:`explain` explains ``model``: ``"attention rollout"`` for a ViT, else ``"Grad-CAM"``."""
    return "attention rollout" if _explain.is_vit(model) else "Grad-CAM"


def explain(model: nn.Module, x: torch.Tensor, target: int | None = None, method: str = "auto") -> np.ndarray:
    """A heatmap in ``[0, 1]`` at the input's size (:func:`helpers.explain.explain`; ``target``: the class)."""
    heat = np.asarray(_explain.explain(model, x, method=method, target=target), dtype=np.float32)
    return np.clip(heat, 0.0, 1.0)


def heatmap(
    model: nn.Module, x: torch.Tensor, card: ModelCard, target: int | None = None
) -> tuple[np.ndarray, MapPlan]:
    """The heatmap in ``[0, 1]`` at the input's size, made on a layer fine enough to point with.

    Returns:
        ``(heat, plan)``: the map and how it was made (:class:`~helpers.explain.MapPlan`).

    Raises:
        NoMapError: when the model's resolution at ``card.input_size`` allows no meaningful map.
    """
    if x.shape[-1] != card.input_size:
        raise InferenceError(f"the input is {x.shape[-1]} px, the card's model takes {card.input_size} px")
    heat, plan = _explain.planned_map(model, x, target=target)
    return heat[0], plan


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """The model of a checkpoint folder in eval mode, and its card (:func:`helpers.checkpoints.load_checkpoint`).

    Raises:
        helpers.checkpoints.CheckpointError: when the folder is incomplete or the card does not fit the weights.
    """
    model, card = load_checkpoint(folder, device=device)
    return model.eval(), card
