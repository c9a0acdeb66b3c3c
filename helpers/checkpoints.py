"""Checkpoints: ``model.safetensors`` plus a JSON model card, and nothing that is ever unpickled.

A checkpoint is a folder::

    model.safetensors   the weights (tensors only: loading them cannot run code)
    model_card.json     a :class:`helpers.cards.ModelCard`: how to rebuild the model and what it is
                        (architecture and the create_model arguments, classes, task, input size,
                        channels, preprocessing, normalisation, dataset and data source, profile,
                        metrics, date, run id, package versions)

:func:`save_checkpoint` writes both; :func:`load_checkpoint` rebuilds the model through
:func:`helpers.models.vision.create_model` from the card and fills it from the safetensors file;
a card that does not match its weights is refused with the list of differences. Cards written
before the typed card (schema 1) are migrated when read, or refused with the missing field named.
The classifier app and the chapters use these functions only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import config
from .cards import CardError, ModelCard, to_jsonable

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "WEIGHTS_FILE",
    "CARD_FILE",
    "Checkpoint",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_card",
    "list_checkpoints",
    "to_jsonable",
]

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete, its card is malformed, or the card and weights disagree."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint folder and its model card (what :func:`list_checkpoints` finds)."""

    folder: Path
    card: ModelCard


def _versions() -> dict[str, str]:
    from .runinfo import versions

    return versions()


def save_checkpoint(model: nn.Module, folder: str | Path, card: ModelCard) -> Path:
    """Write ``model.safetensors`` and ``model_card.json`` into ``folder``; return the folder.

    The card is saved with ``num_parameters`` counted from ``model`` and, when it has none,
    the library ``versions`` of this run. Existing files in ``folder`` are replaced (the card
    through a temporary name, so a reader never sees half a card).

    Raises:
        TypeError: when ``card`` is not a :class:`~helpers.cards.ModelCard`.
    """
    from safetensors.torch import save_model

    if not isinstance(card, ModelCard):
        raise TypeError(f"save_checkpoint takes a helpers.cards.ModelCard, got {type(card).__name__}")
    card = card.replace(
        num_parameters=int(sum(p.numel() for p in model.parameters())),
        versions=card.versions or _versions(),
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"schema_version": str(card.schema_version), "architecture": card.architecture}
    # save_model copes with shared tensors (tied weights) and makes tensors contiguous
    save_model(model, str(folder / WEIGHTS_FILE), metadata=metadata)
    tmp = folder / (CARD_FILE + ".tmp")
    tmp.write_text(card.to_json(), encoding="utf-8")
    tmp.replace(folder / CARD_FILE)
    return folder


def read_card(folder: str | Path) -> ModelCard:
    """The model card of a checkpoint folder (validated; a schema-1 card is migrated).

    Raises:
        CheckpointError: when the card or the weights file is missing, or the card is not valid
            JSON or lacks a field (the message names the file and the field).
    """
    folder = Path(folder)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise CheckpointError(f"{folder} is not a checkpoint: no {CARD_FILE}")
    if not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{folder} has a model card but no {WEIGHTS_FILE}")
    try:
        return ModelCard.from_json(card_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{card_path} is not valid JSON: {err}") from err
    except CardError as err:
        raise CheckpointError(f"{card_path}: {err}") from err


def _weight_differences(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> list[str]:
    """How the tensors of ``state`` (the file) differ from ``expected`` (the model), in words."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    if shapes:
        parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:3]})")
    return parts


def _build_model(folder: Path, card: ModelCard) -> nn.Module:
    from .models.vision import create_model

    try:
        return create_model(card.architecture, pretrained=False, **card.model_kwargs)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{folder}: cannot build {card.architecture!r} with {card.model_kwargs}: {err}") from err


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model a checkpoint describes and load its weights (safetensors only).

    Returns:
        ``(model, card)`` with the model in eval mode on ``device``.

    Raises:
        CheckpointError: for a missing or malformed card, an unknown architecture, or weights
            that do not fit the architecture the card names (missing, unexpected or
            differently shaped tensors are listed).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    card = read_card(folder)
    model = _build_model(folder, card)
    try:
        state = load_file(str(folder / WEIGHTS_FILE), device="cpu")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} is not a readable safetensors file: {err}") from err
    differences = _weight_differences(model.state_dict(), state)
    if differences:
        raise CheckpointError(
            f"the model card in {folder} does not match its weights: building {card.architecture!r} "
            f"with {card.model_kwargs} gives a model whose tensors differ from the file: " + "; ".join(differences)
        )
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), card


def list_checkpoints(root: str | Path | None = None) -> list[Checkpoint]:
    """Every checkpoint under ``root`` (default :func:`helpers.config.runs_dir`), newest first.

    Folders whose card is broken are left out with a warning that says why.
    """
    root = Path(root) if root is not None else config.runs_dir(create=False)
    if not root.is_dir():
        return []
    found = []
    for card_path in sorted(root.rglob(CARD_FILE)):
        try:
            found.append(Checkpoint(card_path.parent, read_card(card_path.parent)))
        except CheckpointError as err:
            warnings.warn(f"skipping checkpoint: {err}", stacklevel=2)
    found.sort(key=lambda c: c.card.created, reverse=True)
    return found
