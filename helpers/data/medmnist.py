"""MedMNIST v2 ``.npz`` files (Yang et al. 2023), read directly.

A MedMNIST file holds ``{train,val,test}_images`` and ``{train,val,test}_labels``. Labels come as
``(N, 1)`` in the official files and ``(N,)`` in some copies; both are accepted. The official
split is always used (``val`` is this book's ``valid``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import ImageDataset

__all__ = ["MEDMNIST_INFO", "read_medmnist_npz"]

# name -> (task, class names). Class names follow the MedMNIST v2 INFO table.
MEDMNIST_INFO: dict[str, tuple[str, list[str]]] = {
    "pneumoniamnist": ("binary", ["normal", "pneumonia"]),
    "breastmnist": ("binary", ["malignant", "normal, benign"]),
    "bloodmnist": (
        "multiclass",
        ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"],
    ),
    "chestmnist": (
        "multilabel",
        [
            "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
            "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia",
        ],
    ),
}

_SPLIT_KEYS = {"train": "train", "valid": "val", "val": "val", "test": "test"}


def read_medmnist_npz(path: str | Path, name: str, split: str, source: str = "real") -> ImageDataset:
    """Read one split of a MedMNIST ``.npz`` file into an :class:`ImageDataset`.

    Raises:
        FileNotFoundError: when the file does not exist.
        KeyError: when the split is not in the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no MedMNIST file at {path}")
    if name not in MEDMNIST_INFO:
        raise KeyError(f"unknown MedMNIST dataset {name!r}; known: {sorted(MEDMNIST_INFO)}")
    key = _SPLIT_KEYS.get(split)
    if key is None:
        raise KeyError(f"split must be one of {sorted(_SPLIT_KEYS)}, got {split!r}")
    task, classes = MEDMNIST_INFO[name]
    with np.load(path) as npz:
        if f"{key}_images" not in npz:
            raise KeyError(f"{path.name} has no {key}_images array (has {sorted(npz.files)})")
        images = np.asarray(npz[f"{key}_images"], dtype=np.uint8)
        labels = np.asarray(npz[f"{key}_labels"])
    if images.ndim == 3:
        images = images[..., None]
    if task == "multilabel":
        labels = labels.reshape(len(labels), -1).astype(np.float32)
    else:
        labels = labels.reshape(len(labels)).astype(np.int64)
    return ImageDataset(
        name=name,
        split="valid" if key == "val" else key,
        task=task,
        classes=list(classes),
        images=images,
        labels=labels,
        source=source,
        ids=None,
        meta={"file": str(path), "official_split": True},
    )
