"""A :class:`Catalog` is what a layout reader finds on disk, before any image is decoded.

Readers (``pbc.py``, ``chestxray.py``, ``mammography.py``) turn a dataset folder into a catalog:
one row per image file with its label, patient, official split (when the dataset has one) and
annotations, plus a report of what was skipped. The registry then splits the catalog, caps it to
the profile, and decodes the chosen files through the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Catalog", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".ppm", ".pnm", ".webp", ".gif", ".dcm"}


@dataclass
class Catalog:
    """Image files of one dataset with their labels, before decoding.

    Attributes:
        name: registry name.
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
        classes: class (or label) names.
        files: one path per image.
        labels: ``int64`` ``(N,)`` or ``float32`` ``(N, L)``.
        ids: one identifier per image (file name).
        patient_ids: one patient per image, or ``None`` when the dataset has none.
        official_split: ``"train"``/``"valid"``/``"test"``/``"trainval"`` per image when the dataset
            defines a split, else ``None``.
        annotations: one dict per image (sub-type, lesions, ...), or ``None``.
        root: the folder read.
        channels: 1 for grey datasets, 3 for colour.
        report: what the reader skipped and why (``{"skipped": [{file, reason}], ...}``).
        meta: citation, licence, split rule and anything else for run records.
    """

    name: str
    task: str
    classes: list[str]
    files: list[Path]
    labels: np.ndarray
    ids: list[str]
    patient_ids: np.ndarray | None = None
    official_split: np.ndarray | None = None
    annotations: list[dict[str, Any]] | None = None
    root: Path | None = None
    channels: int = 3
    report: dict[str, Any] = field(default_factory=lambda: {"skipped": []})
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.files)
        for attr in ("labels", "ids", "patient_ids", "official_split", "annotations"):
            value = getattr(self, attr)
            if value is not None and len(value) != n:
                raise ValueError(f"{self.name}: {n} files but {len(value)} {attr}")

    def __len__(self) -> int:
        return len(self.files)

    def take(self, indices: Sequence[int] | np.ndarray) -> Catalog:
        """The rows at ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        return Catalog(
            name=self.name,
            task=self.task,
            classes=list(self.classes),
            files=[self.files[i] for i in idx],
            labels=self.labels[idx],
            ids=[self.ids[i] for i in idx],
            patient_ids=None if self.patient_ids is None else self.patient_ids[idx],
            official_split=None if self.official_split is None else self.official_split[idx],
            annotations=None if self.annotations is None else [self.annotations[i] for i in idx],
            root=self.root,
            channels=self.channels,
            report=self.report,
            meta=dict(self.meta),
        )

    def class_counts(self) -> dict[str, int]:
        """Images per class (multi-label: positives per label)."""
        counts = (
            self.labels.sum(axis=0) if self.labels.ndim == 2 else np.bincount(self.labels, minlength=len(self.classes))
        )
        return {c: int(k) for c, k in zip(self.classes, counts)}

    def frame(self) -> Any:
        """One row per image as a pandas DataFrame (id, file, label, patient, split)."""
        import pandas as pd

        data: dict[str, Any] = {"id": self.ids, "file": [str(f) for f in self.files]}
        if self.labels.ndim == 1:
            data["label"] = [self.classes[k] for k in self.labels]
        else:
            data["labels"] = [
                "|".join(c for c, v in zip(self.classes, row) if v) or "No Finding" for row in self.labels
            ]
        if self.patient_ids is not None:
            data["patient"] = self.patient_ids
        if self.official_split is not None:
            data["split"] = self.official_split
        return pd.DataFrame(data)
