"""The lung pathologies chapter's data, from any of its datasets, with the 14 findings in NIH's order.

The chapter and the app's chest model read ChestX-ray14 in one of three forms
(:func:`helpers.configs.lungs_dataset` picks one): ``nih_64px`` and ``nih``, folders that
:mod:`helpers.data.chestxray` reads with a patient per image, or ChestMNIST (MedMNIST v2, and
MedMNIST+ at 64-224 px; one ``.npz`` with MedMNIST's own split and no patient ids). This module gives
the chapter one view of all three:

* :func:`split_labels`: the labels of each split without decoding an image, the patients where the
  dataset has them, and :meth:`SplitLabels.check_patients`, which says when the no-overlap check
  cannot run rather than pass it;
* :func:`load_lung_splits`: the three splits equalised into three channels (thesis 000's rule);
* :func:`as_nih_findings`: a multi-label dataset's columns in :data:`~helpers.data.chestxray.NIH_FINDINGS`'
  order and names (ChestMNIST names them in lower case and calls Pleural_Thickening ``pleural``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .. import config
from .base import ImageDataset
from .chestxray import NIH_FINDINGS
from .medmnist import medmnist_info
from .registry import load_catalog, load_dataset, medmnist_labels
from .specs import get_spec
from .splits import assert_no_patient_overlap, split_indices

__all__ = [
    "CHESTMNIST_NAMES",
    "SplitLabels",
    "nih_columns",
    "as_nih_findings",
    "split_labels",
    "load_lung_splits",
]

#: ChestMNIST's label names (the ``medmnist`` package's ``INFO``) that are not an NIH finding's name in
#: lower case, with the finding they stand for.
CHESTMNIST_NAMES = {"pleural": "Pleural_Thickening"}


def nih_columns(classes: Sequence[str]) -> np.ndarray:
    """For each finding of :data:`~helpers.data.chestxray.NIH_FINDINGS`, the column of ``classes`` that holds it.

    Names match without regard to case, and ChestMNIST's ``pleural`` is ``Pleural_Thickening``
    (:data:`CHESTMNIST_NAMES`).

    Raises:
        ValueError: when a finding has no column, or two columns name one finding.
    """
    keys = [CHESTMNIST_NAMES.get(c.lower(), c).lower() for c in classes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"labels {list(classes)} name a finding twice")
    missing = [f for f in NIH_FINDINGS if f.lower() not in keys]
    if missing:
        raise ValueError(f"labels {list(classes)} lack the ChestX-ray14 findings {missing}")
    return np.array([keys.index(f.lower()) for f in NIH_FINDINGS], dtype=np.int64)


def _nih_order(classes: Sequence[str]) -> np.ndarray | None:
    """The columns to take for NIH's order, or ``None`` when ``classes`` start with NIH's 14 findings already
    (the NIH folders, with or without COVID-19 as a 15th label)."""
    if list(classes[: len(NIH_FINDINGS)]) == NIH_FINDINGS:
        return None
    cols = nih_columns(classes)
    if len(classes) != len(cols):
        raise ValueError(f"labels {list(classes)}: {len(classes) - len(cols)} beside the 14 findings")
    return cols


def as_nih_findings(ds: ImageDataset) -> ImageDataset:
    """``ds`` with its labels in :data:`~helpers.data.chestxray.NIH_FINDINGS`' order and names.

    A dataset already in that order (the NIH folders) and a single-label one (PneumoniaMNIST, which has
    no findings to order) come back as they are.

    Raises:
        ValueError: for multi-label classes that are not the 14 findings.
    """
    if ds.task != "multilabel":
        return ds
    cols = _nih_order(ds.classes)
    if cols is None:
        return ds
    meta = {**ds.meta, "label_names": f"{ds.name}'s {list(ds.classes)} as NIH's findings, columns {cols.tolist()}"}
    return replace(ds, classes=list(NIH_FINDINGS), labels=np.ascontiguousarray(ds.labels[:, cols]), meta=meta)


@dataclass(frozen=True)
class SplitLabels:
    """The labels of a dataset's train, valid and test splits, read without decoding an image.

    Attributes:
        name: registry name.
        source: ``"real"``, ``"download"`` or ``"synthetic"``.
        labels: multi-hot ``(N, 14)`` in :data:`~helpers.data.chestxray.NIH_FINDINGS`' order, every image.
        split: ``"train"``/``"valid"``/``"test"`` -> indices into ``labels``.
        rule: how the split was made, in words.
        patient_ids: one patient per image, or ``None`` where the dataset has none (MedMNIST).
        labels_from: where the labels come from, in words.
        split_from: where the split comes from, in words.
    """

    name: str
    source: str
    labels: np.ndarray
    split: dict[str, np.ndarray]
    rule: str
    patient_ids: np.ndarray | None
    labels_from: str
    split_from: str

    def patients(self, split: str | None = None) -> int | None:
        """How many patients (in ``split``, or in all), or ``None`` where the dataset has no patient ids."""
        if self.patient_ids is None:
            return None
        ids = self.patient_ids if split is None else self.patient_ids[self.split[split]]
        return len(set(ids))

    def check_patients(self) -> str:
        """Assert that no patient is in two splits, and say so; where the dataset has no patient ids the
        check cannot run, and the sentence says that instead (it is not passed).

        Raises:
            AssertionError: naming the patients found in two splits.
        """
        if self.patient_ids is None:
            return (
                f"patient overlap NOT CHECKED: {self.name} has no patient ids, so no test can show that each "
                f"patient is on one side ({self.split_from})"
            )
        assert_no_patient_overlap({k: self.patient_ids[v] for k, v in self.split.items()})
        return "no patient is in two splits"


def split_labels(
    name: str, *, seed: int = 42, size: int | None = None, download: bool = True, verbose: bool = True
) -> SplitLabels:
    """The labels of ``name``'s three splits, as training will split it, without decoding an image.

    A folder dataset (``nih_64px``, ``nih``) is read by its layout reader and split by
    :func:`~helpers.data.splits.split_indices` with ``seed``, as :func:`~helpers.data.load_dataset`
    splits it; a MedMNIST flag gives its three official arrays' labels from the file
    :func:`~helpers.data.load_dataset` reads at ``size``.

    Raises:
        KeyError: for an unknown name; ValueError: for labels that are not the 14 findings.
    """
    spec = get_spec(name)
    if spec.task != "multilabel":
        raise ValueError(f"{name} is a {spec.task} dataset, not the 14 chest X-ray findings")
    if spec.kind == "folder":
        cat, source, _ = load_catalog(name, download=download, verbose=verbose)
        parts, rule = split_indices(cat, seed=seed)
        cols = _nih_order(cat.classes)
        labels = cat.labels if cols is None else cat.labels[:, cols]
        said = (cat.report.get("labels_from", str(cat.root)), cat.report.get("split_from", rule))
        return SplitLabels(name, source, labels, parts, rule, cat.patient_ids, *said)
    by_split, source, path, _ = medmnist_labels(name, size=size, download=download, verbose=verbose)
    cols = nih_columns(medmnist_info(name)[1])
    sizes = [len(by_split[s]) for s in ("train", "valid", "test")]
    ends = np.cumsum([0, *sizes])
    split = {s: np.arange(ends[i], ends[i + 1]) for i, s in enumerate(("train", "valid", "test"))}
    labels = np.concatenate([by_split[s] for s in ("train", "valid", "test")])[:, cols]
    shown = config.shown_path(path)
    return SplitLabels(
        name,
        source,
        labels,
        split,
        "official MedMNIST split",
        None,
        f"{shown} (MedMNIST's labels, columns in NIH's order)",
        "MedMNIST's train/val/test arrays, which it calls the official split",
    )


def load_lung_splits(
    name: str, profile: config.Profile | None, size: int, *, seed: int = 42, verbose: bool = True, **options: Any
) -> tuple[ImageDataset, ImageDataset, ImageDataset]:
    """The train, valid and test splits of ``name`` as the lung chapter trains on them: at ``size`` px,
    equalised and repeated into three channels (thesis 000), capped by ``profile``, split with ``seed``,
    the labels in NIH's order (:func:`as_nih_findings`). ``options`` go to :func:`~helpers.data.load_dataset`
    (``download``, ``covid``).
    """
    return tuple(  # type: ignore[return-value]
        as_nih_findings(
            load_dataset(
                name,
                split=s,
                size=size,
                profile=profile,
                seed=seed,
                preprocess="equalize",
                channels=3,
                verbose=verbose,
                **options,
            )
        )
        for s in ("train", "valid", "test")
    )
