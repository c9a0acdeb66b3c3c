"""Grouped k-fold cross-validation (helpers.training.crossval)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.data.base import ImageDataset
from helpers.train import get_config
from helpers.training.crossval import cross_validate, grouped_folds


def _brighter_positives(n: int = 40, size: int = 16, seed: int = 0) -> ImageDataset:
    """Class 1 is brighter; two images per patient, patients of one class each."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(rng.integers(0, 2, n // 2), 2).astype(np.int64)
    images = rng.integers(0, 120, (n, size, size, 1)).astype(np.uint8)
    images[labels == 1] += 100
    patients = np.repeat([f"p{i}" for i in range(n // 2)], 2)
    return ImageDataset("toy", "all", "binary", ["neg", "pos"], images, labels, "synthetic", patient_ids=patients)


def test_folds_cover_every_image_once_and_keep_patients_together() -> None:
    labels = np.array([0, 1] * 15)
    groups = np.repeat(np.arange(10), 3)
    folds = grouped_folds(labels, groups, 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(30))
    owner = {int(g): i for i, f in enumerate(folds) for g in groups[f]}
    assert all(owner[int(g)] == i for i, f in enumerate(folds) for g in groups[f])
    with pytest.raises(ValueError, match="at least 5 patients"):
        grouped_folds(labels[:6], groups[:6], 5, seed=0)


def test_every_image_is_predicted_by_a_model_that_never_saw_its_patient(tmp_workdirs) -> None:
    data = _brighter_positives()
    config = get_config("one_cycle").replace(epochs=3, batch_size=8, lr=3e-3, seed=0)
    cv = cross_validate("resnet10t", data, config, profile="smoke", k=4, n_boot=50)
    assert cv.probs.shape == (len(data), 2) and np.allclose(cv.probs.sum(1), 1, atol=1e-4)
    assert sorted(set(cv.fold.tolist())) == [0, 1, 2, 3] and len(cv.fold_metrics) == 4
    for i in range(4):  # no patient is tested in two folds
        tested = set(data.patient_ids[cv.fold == i])
        assert not tested & set(data.patient_ids[cv.fold != i])
    assert cv.metrics["auroc"] > 0.9  # the brightness cue is learnt and scored out of fold
    ci = cv.ci["macro_auroc"]  # two classes: the macro AUROC is the AUROC
    assert ci["low"] <= cv.metrics["auroc"] <= ci["high"]
    with pytest.raises(ValueError, match="k >= 3"):
        cross_validate("resnet10t", data, config, profile="smoke", k=2)
