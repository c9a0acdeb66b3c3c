"""Fixtures for testing and timing the app: untrained checkpoints and real sample files.

Used by the app's tests, its browser test, the latency benchmark and the app chapter when no
trained model exists. Nothing here is for predictions: an untrained checkpoint's card says
``data_source = "untrained ..."`` and the app shows that warning beside every result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .app.core import APP_TASKS
from .cards import ModelCard

__all__ = ["TASK_CLASSES", "make_untrained_checkpoint", "find_sample", "toy_splits"]

#: Task kind and classes of the untrained checkpoints :func:`make_untrained_checkpoint` writes (one per app task).
TASK_CLASSES: dict[str, tuple[str, list[str]]] = {
    "blood": (
        "multiclass",
        ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"],
    ),
    "chest": (
        "multilabel",
        [
            "Atelectasis",
            "Cardiomegaly",
            "Effusion",
            "Infiltration",
            "Mass",
            "Nodule",
            "Pneumonia",
            "Pneumothorax",
            "Consolidation",
            "Edema",
            "Emphysema",
            "Fibrosis",
            "Pleural_Thickening",
            "Hernia",
        ],
    ),
    "mammo": ("binary", ["benign", "malignant"]),
}


def make_untrained_checkpoint(
    folder: str | os.PathLike,
    task: str,
    architecture: str = "resnet18",
    input_size: int = 32,
    in_chans: int = 3,
    seed: int = 0,
    preprocess: str | None = None,
    card_fields: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Save a randomly initialised model for the app task ``task`` as a checkpoint the app lists.

    The card normalises with mean 0.5 and std 0.25 per channel; ``preprocess`` (e.g.
    ``"equalize"``) is recorded on the card like a training run's; ``card_fields`` sets any other
    card field (``image_stats``, ``background``, ``chance``, ``metrics`` ...); ``model_kwargs``
    adds :func:`~helpers.models.vision.create_model` arguments (e.g. ``{"patch_size": 8}``).
    """
    import torch

    from .checkpoints import save_checkpoint
    from .models.vision import create_model

    kind, classes = TASK_CLASSES[task]
    torch.manual_seed(seed)
    kwargs = {"in_chans": in_chans, "img_size": input_size, **(model_kwargs or {})}
    model = create_model(architecture, num_classes=len(classes), pretrained=False, **kwargs)
    card = ModelCard(
        architecture=architecture,
        model_kwargs=kwargs,
        classes=tuple(classes),
        task=kind,
        input_size=input_size,
        in_chans=in_chans,
        mean=(0.5,) * in_chans,
        std=(0.25,) * in_chans,
        preprocess=preprocess,
        dataset=APP_TASKS[task].datasets[0],
        data_source="untrained (random weights, for testing the app only)",
        profile="none",
        run_id=f"untrained-{task}-{architecture}-{input_size}px",
        app_task=task,
    )
    return save_checkpoint(model, folder, card.replace(**(card_fields or {})))


_SAMPLE_GLOBS = {
    "blood": ("pbc/**/*.jpg", "pbc/**/*.png"),
    "chest": ("nih/images/*.png", "nih/**/*.png", "covid/images/*"),
    "mammo": ("mias/all-mias/*.pgm", "cbis_ddsm/jpeg/**/*.jpg"),
}


def find_sample(task: str, root: str | os.PathLike | None = None) -> Path | None:
    """A real image for ``task`` under the data folder (``$MEDVIT_DATA``), or ``None`` when there is none.

    The first file in sorted order that decodes is returned, so the choice is repeatable.
    """
    from . import config
    from .imageio import ImageReadError, describe_image

    base = Path(root) if root is not None else config.data_root()
    for pattern in _SAMPLE_GLOBS[task]:
        for path in sorted(base.glob(pattern)):
            if not path.is_file() or path.name.startswith("."):
                continue
            try:
                describe_image(path)
            except ImageReadError:
                continue
            return path
    return None


def toy_splits(n: int = 40, size: int = 16, classes: int = 4) -> tuple[Any, Any, Any]:
    """``(train, valid, test)`` random RGB ImageDatasets of a ``classes``-class task, labels in turn.

    The training split has ``n`` images (``n / classes`` per class), validation and test ``n / 2``
    each: enough to plan, cap and train tiny models in tests.
    """
    from .data.base import ImageDataset

    rng = np.random.default_rng(0)
    out = []
    for split, m in (("train", n), ("valid", n // 2), ("test", n // 2)):
        labels = np.arange(m) % classes
        images = rng.integers(0, 255, (m, size, size, 3)).astype(np.uint8)
        names = [chr(ord("a") + k) for k in range(classes)]
        out.append(ImageDataset("toy", split, "multiclass", names, images, labels, "synthetic"))
    return tuple(out)
