"""The one dataset type every loader returns and every trainer consumes.

An :class:`ImageDataset` holds decoded images as one ``uint8`` array (possibly memory-mapped from
the decode-once cache) with their labels and everything a result must record about them: which
dataset, which split, which task, which classes and where the data came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..cards import TASK_KINDS

__all__ = ["TASK_KINDS", "SOURCES", "ImageDataset"]

#: Where a dataset's images came from (see :mod:`helpers.data.registry`).
SOURCES = ("real", "download", "synthetic")


@dataclass
class ImageDataset:
    """Decoded images and labels of one split of one dataset.

    Attributes:
        name: registry name (``"pbc"``, ``"nih"``, ``"pneumoniamnist"``, ...).
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"``.
        task: ``"multiclass"``, ``"binary"`` (two classes, one integer label) or ``"multilabel"``.
        classes: class names; for multi-label, the label names in column order.
        images: ``uint8`` array ``(N, H, W, C)`` with ``C`` 1 (grey) or 3 (RGB).
        labels: ``int64`` ``(N,)`` for multi-class and binary; ``float32`` multi-hot ``(N, L)``
            for multi-label.
        source: ``"real"`` (read from ``$MEDVIT_DATA``), ``"download"`` or ``"synthetic"``.
        patient_ids: one id per image where the dataset has them, else ``None``.
        ids: one identifier per image (file name or index), else ``None``.
        meta: anything else worth recording (split seed, skipped-file report, licence, ...).
        annotations: one dict per image with what the dataset says beyond the label (PBC sub-type,
            mini-MIAS lesions, CBIS-DDSM abnormality, ...), else ``None``.
    """

    name: str
    split: str
    task: str
    classes: list[str]
    images: np.ndarray
    labels: np.ndarray
    source: str
    patient_ids: np.ndarray | None = None
    ids: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    annotations: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.task not in TASK_KINDS:
            raise ValueError(f"task must be one of {TASK_KINDS}, got {self.task!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.task == "multilabel" and (self.labels.ndim != 2 or self.labels.shape[1] != len(self.classes)):
            raise ValueError(f"multi-label labels must be (N, {len(self.classes)}), got {self.labels.shape}")
        if self.task != "multilabel" and self.labels.ndim != 1:
            raise ValueError(f"{self.task} labels must be (N,), got {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[i], self.labels[i]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.images.shape[-1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def subset(self, indices: Sequence[int] | np.ndarray, split: str | None = None) -> ImageDataset:
        """The images at ``indices`` (a copy in memory), optionally renamed to another split."""
        idx = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            split=split or self.split,
            images=np.ascontiguousarray(self.images[idx]),
            labels=self.labels[idx],
            patient_ids=None if self.patient_ids is None else np.asarray(self.patient_ids)[idx],
            ids=None if self.ids is None else [self.ids[i] for i in idx],
            meta=dict(self.meta),
            annotations=None if self.annotations is None else [self.annotations[i] for i in idx],
        )

    def class_counts(self) -> dict[str, int]:
        """Images per class (multi-label: positives per label)."""
        if self.task == "multilabel":
            counts = self.labels.sum(axis=0)
        else:
            counts = np.bincount(self.labels, minlength=self.num_classes)
        return {c: int(n) for c, n in zip(self.classes, counts)}

    def summary(self) -> dict[str, Any]:
        """What a run record keeps about its data."""
        return {
            "name": self.name,
            "split": self.split,
            "task": self.task,
            "source": self.source,
            "n": len(self),
            "image_shape": list(self.images.shape[1:]),
            "classes": list(self.classes),
            "class_counts": self.class_counts(),
            "patients": None if self.patient_ids is None else int(len(np.unique(self.patient_ids))),
        }

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.name!r}, split={self.split!r}, task={self.task!r}, n={len(self)}, "
            f"shape={tuple(self.images.shape[1:])}, classes={len(self.classes)}, source={self.source!r})"
        )
