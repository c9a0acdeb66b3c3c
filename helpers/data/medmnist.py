"""MedMNIST v2 ``.npz`` files (Yang et al. 2023), read directly.

A MedMNIST file holds ``{train,val,test}_images`` and ``{train,val,test}_labels``. Labels come as
``(N, 1)`` in the official files and ``(N,)`` in some copies; both are accepted. The official
split is always used (``val`` is this book's ``valid``). Every 2D MedMNIST flag is known (class
names and task from the ``medmnist`` package's ``INFO`` table, with a built-in copy for the four
the book uses); MedMNIST+ files at 64/128/224 px are ``<flag>_<size>.npz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import ImageDataset

__all__ = [
    "MEDMNIST_INFO",
    "MEDMNIST_SIZES",
    "medmnist_info",
    "medmnist_names",
    "medmnist_size",
    "medmnist_file",
    "read_medmnist_npz",
    "read_medmnist_labels",
]

#: The image sides MedMNIST publishes (28 px is MedMNIST v2's own; 64/128/224 are MedMNIST+).
MEDMNIST_SIZES = (28, 64, 128, 224)

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
            "atelectasis",
            "cardiomegaly",
            "effusion",
            "infiltration",
            "mass",
            "nodule",
            "pneumonia",
            "pneumothorax",
            "consolidation",
            "edema",
            "emphysema",
            "fibrosis",
            "pleural",
            "hernia",
        ],
    ),
}
_CHANNELS = {"pneumoniamnist": 1, "breastmnist": 1, "bloodmnist": 3, "chestmnist": 1}
_TASKS = {
    "multi-class": "multiclass",
    "binary-class": "binary",
    "multi-label, binary-class": "multilabel",
    "ordinal-regression": "multiclass",
}

_SPLIT_KEYS = {"train": "train", "valid": "val", "val": "val", "test": "test"}


def _package_info() -> dict:
    try:
        import medmnist  # noqa: F401  (a dependency; optional here)

        return {k: v for k, v in medmnist.INFO.items() if not k.endswith("3d")}
    except Exception:  # pragma: no cover - the package is a dependency
        return {}


def medmnist_names() -> list[str]:
    """Every 2D MedMNIST flag known (``pathmnist``, ``bloodmnist``, ...)."""
    return sorted(set(MEDMNIST_INFO) | set(_package_info()))


def medmnist_info(name: str) -> tuple[str, list[str], int]:
    """``(task, class names, channels)`` of a MedMNIST flag.

    Raises:
        KeyError: for an unknown flag.
    """
    if name in MEDMNIST_INFO:
        task, classes = MEDMNIST_INFO[name]
        return task, list(classes), _CHANNELS[name]
    info = _package_info().get(name)
    if info is None:
        raise KeyError(f"unknown MedMNIST dataset {name!r}; known: {medmnist_names()}")
    labels = [info["label"][str(i)] for i in range(len(info["label"]))]
    return _TASKS[info["task"]], labels, int(info["n_channels"])


def medmnist_size(size: int | None) -> int:
    """The smallest published MedMNIST side that is at least ``size`` (28 for ``None``, 224 at most)."""
    return next((side for side in MEDMNIST_SIZES if side >= (size or 0)), MEDMNIST_SIZES[-1])


def _npz(folder: Path, name: str, side: int) -> Path:
    return folder / (f"{name}.npz" if side == 28 else f"{name}_{side}.npz")


def medmnist_file(folder: Path, name: str, size: int | None = None, *, exact: bool = False) -> Path | None:
    """The ``.npz`` for ``name`` in ``folder`` (``<name>.npz`` at 28 px, ``<name>_<side>.npz`` for MedMNIST+).

    With ``size``: the smallest side present that is at least ``size``, else the largest present;
    ``exact``: only the side :func:`medmnist_size` gives for ``size``. Without ``size``: the 28 px
    file, else any side present. ``None`` when there is none.
    """
    present = [side for side in MEDMNIST_SIZES if _npz(folder, name, side).exists()]
    if exact and size is not None:
        want = medmnist_size(size)
        return _npz(folder, name, want) if want in present else None
    if not present:
        return None
    if size is None:
        return _npz(folder, name, present[0])
    return _npz(folder, name, next((side for side in present if side >= size), present[-1]))


def _shaped_labels(labels: np.ndarray, task: str) -> np.ndarray:
    """Labels as :class:`ImageDataset` holds them: multi-hot ``float32`` ``(N, L)``, else ``int64`` ``(N,)``."""
    if task == "multilabel":
        return labels.reshape(len(labels), -1).astype(np.float32)
    return labels.reshape(len(labels)).astype(np.int64)


def _split_key(split: str) -> str:
    key = _SPLIT_KEYS.get(split)
    if key is None:
        raise KeyError(f"split must be one of {sorted(_SPLIT_KEYS)}, got {split!r}")
    return key


def read_medmnist_labels(path: str | Path, name: str, split: str) -> np.ndarray:
    """The labels of one split of a MedMNIST ``.npz``, shaped as :func:`read_medmnist_npz` gives them,
    without reading its images (an ``.npz`` member is read only when asked for).

    Raises:
        FileNotFoundError: when the file does not exist.
        KeyError: when the split is not in the file or the flag is unknown.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no MedMNIST file at {path}")
    task, _, _ = medmnist_info(name)
    key = _split_key(split)
    with np.load(path) as npz:
        if f"{key}_labels" not in npz:
            raise KeyError(f"{path.name} has no {key}_labels array (has {sorted(npz.files)})")
        return _shaped_labels(np.asarray(npz[f"{key}_labels"]), task)


def read_medmnist_npz(path: str | Path, name: str, split: str, source: str = "real") -> ImageDataset:
    """Read one split of a MedMNIST ``.npz`` file into an :class:`ImageDataset`.

    Raises:
        FileNotFoundError: when the file does not exist.
        KeyError: when the split is not in the file or the flag is unknown.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no MedMNIST file at {path}")
    task, classes, _ = medmnist_info(name)
    key = _split_key(split)
    with np.load(path) as npz:
        if f"{key}_images" not in npz:
            raise KeyError(f"{path.name} has no {key}_images array (has {sorted(npz.files)})")
        images = np.asarray(npz[f"{key}_images"], dtype=np.uint8)
        labels = _shaped_labels(np.asarray(npz[f"{key}_labels"]), task)
    if images.ndim == 3:
        images = images[..., None]
    return ImageDataset(
        name=name,
        split="valid" if key == "val" else key,
        task=task,
        classes=list(classes),
        images=images,
        labels=labels,
        source=source,
        ids=[f"{key}{i}" for i in range(len(labels))],
        meta={"file": str(path), "official_split": True, "citation": "yang2023medmnist", "licence": "CC BY 4.0"},
    )
