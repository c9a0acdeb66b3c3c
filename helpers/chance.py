"""Is a model better than chance on its test split? A permutation interval and constant predictions.

A model can report a respectable accuracy and still know nothing: on a test split where three
images in five are normal, a model that answers "normal" every time scores 0.6. Two checks catch
it, and :func:`chance_check` runs both on the test predictions:

* **Constant predictions**: every test image gets the same class (for a multi-label model, the
  same probabilities).
* **The interval of chance**: the test labels are shuffled against the predictions ``n_perm`` times
  and the metric is computed each time; the ``1 - alpha`` quantile of those values is the highest
  score chance gives on this split, with these class counts and this spread of predictions. A
  model whose score is at or below it is no better than chance. The metric is the balanced
  accuracy (the mean recall over the classes present, chance ``1/K``) for multi-class and binary
  models, and the macro AUROC (chance 0.5) for multi-label models, whose 0.5 threshold says little.

Only NumPy; the result is a plain dict that a model card carries (``ModelCard.chance``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["chance_check", "balanced_accuracy", "macro_auroc"]


def balanced_accuracy(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Mean recall over the classes present in ``y`` (integer labels and predictions in ``[0, k)``)."""
    support = np.bincount(y, minlength=k)
    hits = np.bincount(y[y == pred], minlength=k)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks (1-based, ties averaged) of each column of ``scores`` ``(N, L)``."""
    out = np.empty_like(scores, dtype=np.float64)
    for j in range(scores.shape[1]):
        s = scores[:, j]
        order = np.argsort(s, kind="mergesort")
        ranks = np.empty(len(s))
        ranks[order] = np.arange(1, len(s) + 1)
        _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=ranks)
        out[:, j] = (sums / counts)[inverse]
    return out


def _auroc_from_ranks(y: np.ndarray, ranks: np.ndarray) -> float:
    """Macro AUROC (Mann–Whitney) over the labels of ``y`` ``(N, L)`` with both classes present."""
    pos = y.sum(axis=0)
    neg = len(y) - pos
    ok = (pos > 0) & (neg > 0)
    if not ok.any():
        return float("nan")
    rank_sum = (ranks * y).sum(axis=0)
    auc = (rank_sum - pos * (pos + 1) / 2) / np.where(ok, pos * neg, 1)
    return float(np.mean(auc[ok]))


def macro_auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUROC over the labels of a multi-label ``y`` ``(N, L)`` that have positives and negatives."""
    return _auroc_from_ranks((np.asarray(y) > 0.5).astype(np.float64), _ranks(np.asarray(scores, dtype=np.float64)))


def _scores(task: str, y: np.ndarray, probs: np.ndarray) -> tuple[str, float, Any, bool]:
    """``(metric, chance level, score(y_perm), constant)`` for one task kind."""
    if task == "multilabel":
        ranks = _ranks(probs)
        constant = bool(np.all(np.ptp(probs, axis=0) < 1e-6))
        return "macro_auroc", 0.5, lambda yy: _auroc_from_ranks(yy, ranks), constant
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    constant = bool(len(np.unique(pred)) == 1)
    return "balanced_accuracy", 1.0 / k, lambda yy: balanced_accuracy(yy, pred, k), constant


def chance_check(
    y: np.ndarray, probs: np.ndarray, task: str, *, n_perm: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, Any]:
    """Whether test predictions are no better than chance (see the module docstring).

    Args:
        y: test labels: ``(N,)`` integers, or ``(N, L)`` multi-hot for ``task="multilabel"``.
        probs: the model's probabilities ``(N, K)`` (a binary ``(N,)`` is the positive class).
        task: ``multiclass``, ``binary`` or ``multilabel``.
        n_perm: label shuffles that make the interval of chance.
        alpha: the interval holds ``1 - alpha`` of the shuffled scores.
        seed: the shuffles' seed.

    Returns:
        ``{"metric", "value", "chance", "chance_high", "alpha", "n_perm", "n", "constant",
        "no_better_than_chance"}``; ``chance_high`` is the ``1 - alpha`` quantile of the shuffled
        scores.

    Raises:
        ValueError: for an unknown task, mismatched shapes or an empty split.
    """
    if task not in ("multiclass", "binary", "multilabel"):
        raise ValueError(f"task must be multiclass, binary or multilabel, got {task!r}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1:
        probs = np.stack([1 - probs, probs], axis=1)
    y = np.asarray(y)
    y = (y > 0.5).astype(np.float64) if task == "multilabel" else y.astype(np.int64).ravel()
    if len(y) == 0 or len(y) != len(probs):
        raise ValueError(f"need as many labels as predictions (and at least one): {len(y)} and {len(probs)}")
    metric, level, score, constant = _scores(task, y, probs)
    value = score(y)
    rng = np.random.default_rng(seed)
    shuffled = np.array([score(y[rng.permutation(len(y))]) for _ in range(n_perm)])
    shuffled = shuffled[np.isfinite(shuffled)]
    high = float(np.quantile(shuffled, 1 - alpha)) if len(shuffled) else float("nan")
    useless = constant or not np.isfinite(value) or (np.isfinite(high) and value <= high)
    return {
        "metric": metric,
        "value": float(value),
        "chance": level,
        "chance_high": high,
        "alpha": alpha,
        "n_perm": n_perm,
        "n": int(len(y)),
        "constant": constant,
        "no_better_than_chance": bool(useless),
    }
