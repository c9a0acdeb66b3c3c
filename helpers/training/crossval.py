"""Grouped k-fold cross-validation: every image of a small dataset tested once, by a model that
never saw its patient.

A test split of a dozen images (mini-MIAS has 61 lesion crops) gives an AUROC that swings from
0.1 to 0.7 with the split, so a floor set on it says more about the split than about the model.
:func:`cross_validate` trains ``k`` models instead: fold ``i`` is the test set, fold ``i + 1``
the validation set (the monitor and any best-epoch choice), the other folds train; folds keep a
patient's images together and the classes in proportion (scikit-learn's
``StratifiedGroupKFold``). The out-of-fold probabilities of all images are then scored at once,
with bootstrap intervals over the images. Runs are not saved: it is an estimate of how well the
recipe does on this data, not a model to keep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import metrics as M
from ..config import Profile
from ..data.base import ImageDataset
from .config import TrainConfig

__all__ = ["CrossValidation", "grouped_folds", "cross_validate"]


@dataclass(frozen=True)
class CrossValidation:
    """The out-of-fold result of :func:`cross_validate`.

    Attributes:
        labels: every image's label, in the dataset's order.
        probs: every image's probabilities from the one model that did not train on it.
        fold: the fold each image was tested in.
        metrics: :func:`helpers.metrics.evaluate` over all out-of-fold probabilities.
        ci: bootstrap intervals of the headline metrics (:func:`helpers.metrics.bootstrap_metrics`).
        fold_metrics: each fold's own test metrics (few images each: noisy, shown for the spread).
        wall_time_s: seconds for all folds.
    """

    labels: np.ndarray
    probs: np.ndarray
    fold: np.ndarray
    metrics: dict[str, Any]
    ci: dict[str, dict[str, float]]
    fold_metrics: list[dict[str, Any]]
    wall_time_s: float


def grouped_folds(labels: np.ndarray, groups: np.ndarray | None, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint index arrays covering every image; a group (patient) never spans two folds.

    Raises:
        ValueError: when there are fewer groups (or images) than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    if len(set(groups.tolist())) < k:
        raise ValueError(f"{k} folds need at least {k} patients (or images); there are {len(set(groups.tolist()))}")
    strata = labels if labels.ndim == 1 else labels.argmax(-1)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(labels)), strata, groups)]


def cross_validate(
    model: Any,
    data: ImageDataset,
    config: TrainConfig,
    *,
    profile: Profile | str | None = None,
    k: int = 5,
    n_boot: int = 200,
) -> CrossValidation:
    """Train ``model`` with ``config`` on ``k`` grouped folds of ``data`` and score the out-of-fold predictions.

    Args:
        model: a :func:`~helpers.models.vision.create_model` name.
        data: all images of the dataset (one :class:`~helpers.data.base.ImageDataset`, any split name).
        config: the training configuration of every fold (its seed also shuffles the folds).
        profile: the profile the runs take their open settings from.
        k: the number of folds (at least 3: one tests, one validates, the rest train).
        n_boot: bootstrap resamples for the intervals (0: none).

    Raises:
        ValueError: for ``k`` below 3 or fewer patients than folds.
    """
    from ..data.loaders import make_eval_loader
    from .loop import train
    from .record import predict

    if k < 3:
        raise ValueError(f"cross-validation needs k >= 3 (test, validation and training folds), got {k}")
    t0 = time.perf_counter()
    folds = grouped_folds(data.labels, data.patient_ids, k, config.seed)
    probs: np.ndarray | None = None
    fold_of = np.empty(len(data), dtype=np.int64)
    per_fold = []
    for i, test in enumerate(folds):
        valid = folds[(i + 1) % k]
        rest = np.setdiff1d(np.arange(len(data)), np.concatenate([test, valid]))
        parts = (data.subset(rest, "train"), data.subset(valid, "valid"), data.subset(test, "test"))
        record = train(model, parts, config.replace(bootstrap=0), profile=profile, save=False, progress=False)
        _, p = predict(record.learner.model, make_eval_loader(parts[2], record.learner.dls), data.task)
        probs = np.zeros((len(data), p.shape[1]), dtype=np.float32) if probs is None else probs
        probs[test], fold_of[test] = p, i
        per_fold.append(record.metrics["test"])
    assert probs is not None
    ci = M.bootstrap_metrics(data.labels, probs, data.task, n_boot=n_boot, seed=config.seed) if n_boot else {}
    overall = M.evaluate(data.labels, probs, data.task, list(data.classes))
    return CrossValidation(data.labels, probs, fold_of, overall, ci, per_fold, time.perf_counter() - t0)
