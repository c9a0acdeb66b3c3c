"""Checkpoints: ``model.safetensors`` plus a JSON model card, and nothing that is ever unpickled.

A checkpoint is a folder::

    model.safetensors   the weights (tensors only: loading them cannot run code)
    model_card.json     how to rebuild the model and what it is: architecture and the
                        create_model arguments, classes, task, input size and channels,
                        normalisation, dataset and data source, profile, metrics, date, run id,
                        package versions

:func:`load_checkpoint` rebuilds the model through :func:`helpers.models.vision.create_model`
from the card and fills it from the safetensors file; a card that does not match its weights
is refused with the list of differences. The classifier app and the chapters use these three
functions only.
"""
from __future__ import annotations

import json
import math
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import config

__all__ = [
    "WEIGHTS_FILE",
    "CARD_FILE",
    "CARD_FORMAT",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_card",
    "list_checkpoints",
    "to_jsonable",
]

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"
CARD_FORMAT = "medvit-checkpoint/1"
REQUIRED = ("architecture", "classes", "task")


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete, its card is malformed, or the card and weights disagree."""


def to_jsonable(obj: Any) -> Any:
    """Turn NumPy/torch scalars, paths, tuples and NaN/inf into strict-JSON values (NaN → None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    elif hasattr(obj, "tolist") and callable(obj.tolist):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _versions() -> dict[str, str]:
    from .runinfo import versions

    return versions()


def save_checkpoint(model: nn.Module, folder: str | Path, card: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``model_card.json`` into ``folder``; return the folder.

    ``card`` must name the ``architecture`` (a :func:`create_model` name), the ``classes`` and
    the ``task``; ``model_kwargs`` holds the other :func:`create_model` arguments
    (``num_classes`` is filled from the classes, ``pretrained`` is always stored as False
    because the weights are in the file). ``created``, ``versions``, ``num_parameters`` and
    ``format`` are filled in when absent. Existing files in ``folder`` are replaced.

    Raises:
        CheckpointError: when a required card field is missing.
    """
    from safetensors.torch import save_model

    missing = [k for k in REQUIRED if not card.get(k)]
    if missing:
        raise CheckpointError(f"the model card needs {missing} (has {sorted(card)})")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    full = dict(card)
    kwargs = dict(full.get("model_kwargs") or {})
    kwargs.setdefault("num_classes", len(full["classes"]))
    kwargs.pop("pretrained", None)
    full["model_kwargs"] = kwargs
    full.setdefault("in_chans", kwargs.get("in_chans", 3))
    full.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    full.setdefault("versions", _versions())
    full["num_parameters"] = int(sum(p.numel() for p in model.parameters()))
    full["format"] = CARD_FORMAT
    full["weights"] = WEIGHTS_FILE
    # save_model copes with shared tensors (tied weights) and makes tensors contiguous
    save_model(model, str(folder / WEIGHTS_FILE), metadata={"format": CARD_FORMAT, "architecture": str(full["architecture"])})
    tmp = folder / (CARD_FILE + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(full), indent=2, allow_nan=False), encoding="utf-8")
    tmp.replace(folder / CARD_FILE)
    return folder


def read_card(folder: str | Path) -> dict[str, Any]:
    """The model card of a checkpoint folder (validated).

    Raises:
        CheckpointError: when the card or the weights file is missing or the card is malformed.
    """
    folder = Path(folder)
    card_path, weights = folder / CARD_FILE, folder / WEIGHTS_FILE
    if not card_path.is_file():
        raise CheckpointError(f"{folder} is not a checkpoint: no {CARD_FILE}")
    if not weights.is_file():
        raise CheckpointError(f"{folder} has a model card but no {WEIGHTS_FILE}")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{card_path} is not valid JSON: {err}") from err
    if not isinstance(card, dict):
        raise CheckpointError(f"{card_path} must hold a JSON object")
    missing = [k for k in REQUIRED if not card.get(k)]
    if missing:
        raise CheckpointError(f"{card_path} lacks {missing}")
    if not isinstance(card.get("model_kwargs", {}), dict):
        raise CheckpointError(f"{card_path}: model_kwargs must be an object")
    return card


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
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

    from .models.vision import create_model

    folder = Path(folder)
    card = read_card(folder)
    kwargs = dict(card.get("model_kwargs") or {})
    kwargs.pop("pretrained", None)
    kwargs.setdefault("num_classes", len(card["classes"]))
    if kwargs["num_classes"] != len(card["classes"]):
        raise CheckpointError(f"{folder}: the card lists {len(card['classes'])} classes but num_classes={kwargs['num_classes']}")
    try:
        model = create_model(card["architecture"], pretrained=False, **kwargs)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{folder}: cannot build {card['architecture']!r} with {kwargs}: {err}") from err
    try:
        state = load_file(str(folder / WEIGHTS_FILE), device="cpu")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} is not a readable safetensors file: {err}") from err
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}" for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:3]})")
        raise CheckpointError(
            f"the model card in {folder} does not match its weights: building {card['architecture']!r} "
            f"with {kwargs} gives a model whose tensors differ from the file: " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), card


def list_checkpoints(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every checkpoint under ``root`` (default :func:`helpers.config.runs_dir`), newest first.

    Each entry is the model card plus ``"path"`` (the folder). Folders whose card is broken are
    left out with a warning that says why.
    """
    root = Path(root) if root is not None else config.runs_dir(create=False)
    if not root.is_dir():
        return []
    found = []
    for card_path in sorted(root.rglob(CARD_FILE)):
        try:
            card = read_card(card_path.parent)
        except CheckpointError as err:
            warnings.warn(f"skipping checkpoint: {err}", stacklevel=2)
            continue
        found.append({**card, "path": str(card_path.parent)})
    found.sort(key=lambda c: str(c.get("created", "")), reverse=True)
    return found
