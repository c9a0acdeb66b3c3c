"""Classification metrics for the book's three tasks, with bootstrap confidence intervals.

Everything takes ``y_true`` and predicted *probabilities* (softmax rows for multi-class and
binary, sigmoid columns for multi-label) as NumPy arrays and returns plain dicts of floats and
lists, ready for a run record (JSON) or a pandas table. Built on scikit-learn.

* :func:`multiclass_metrics` — accuracy, balanced accuracy, Cohen's kappa, error rate,
  per-class precision / recall / F1 / support, the confusion matrix, macro one-vs-rest AUROC;
  for two classes also the AUROC of the positive class, sensitivity and specificity.
* :func:`multilabel_metrics` — per label: AUROC, AUPRC (average precision), F1 and accuracy at
  threshold 0.5 and at the label's F1-optimal threshold; and their means over labels.
* :func:`evaluate` dispatches on the task; :func:`bootstrap_ci` resamples images (seeded) to
  put a percentile interval on any scalar metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "multiclass_metrics",
    "multilabel_metrics",
    "evaluate",
    "f1_optimal_threshold",
    "bootstrap_ci",
    "bootstrap_metrics",
    "headline",
    "specificity_threshold",
    "finding_thresholds",
]

NAN = float("nan")


def _check(y_true: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if len(y_true) != len(probs):
        raise ValueError(f"{len(y_true)} labels but {len(probs)} predictions")
    if len(y_true) == 0:
        raise ValueError("no samples to evaluate")
    if not np.all(np.isfinite(probs)):
        raise ValueError("predictions contain NaN or infinity")
    return y_true, probs


def _auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC, or NaN when only one class is present (it is undefined then)."""
    return float(skm.roc_auc_score(y, score)) if len(np.unique(y)) == 2 else NAN


def multiclass_metrics(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics of a single-label task (multi-class, or binary as two softmax columns).

    Args:
        y_true: integer labels ``(N,)``.
        probs: class probabilities ``(N, K)``; a ``(N,)`` vector is read as P(class 1) of a
            binary task.
        classes: class names (default ``"0"``, ``"1"``, ...).
    """
    y_true, probs = _check(y_true, probs)
    if probs.ndim == 1:
        probs = np.stack([1 - probs, probs], axis=1)
    k = probs.shape[1]
    classes = list(classes) if classes is not None else [str(i) for i in range(k)]
    if len(classes) != k:
        raise ValueError(f"{len(classes)} class names but {k} probability columns")
    y_true = y_true.astype(np.int64)
    if y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(f"labels must lie in [0, {k - 1}]")
    y_pred = probs.argmax(axis=1)
    labels = np.arange(k)
    prec, rec, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(np.mean([r for r, s in zip(rec, support) if s > 0])),
        "kappa": float(skm.cohen_kappa_score(y_true, y_pred, labels=labels)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, prec, rec, f1, support)
        },
        "confusion_matrix": cm.tolist(),
        "classes": classes,
    }
    out["error_rate"] = 1.0 - out["accuracy"]
    present = [i for i in labels if 0 < (y_true == i).sum() < len(y_true)]
    if k == 2:
        out["auroc"] = _auroc(y_true, probs[:, 1])  # AUROC of the positive class (index 1)
        tn, fp, fn, tp = cm.ravel()
        out["sensitivity"] = float(tp / (tp + fn)) if tp + fn else NAN
        out["specificity"] = float(tn / (tn + fp)) if tn + fp else NAN
        out["macro_auroc"] = out["auroc"]
    else:
        # one-vs-rest AUROC per class, averaged over the classes present in y_true
        per = {classes[i]: _auroc((y_true == i).astype(int), probs[:, i]) for i in labels}
        out["auroc_per_class"] = per
        out["macro_auroc"] = float(np.mean([per[classes[i]] for i in present])) if present else NAN
    return out


def f1_optimal_threshold(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """The threshold that maximises F1 on ``(y, score)`` and that F1.

    Candidates are the distinct scores; predicting positive means ``score >= threshold``.
    Returns ``(0.5, 0.0)`` when there is no positive.
    """
    y, score = np.asarray(y).astype(int), np.asarray(score, dtype=np.float64)
    if y.sum() == 0:
        return 0.5, 0.0
    precision, recall, thresholds = skm.precision_recall_curve(y, score)
    p, r = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def specificity_threshold(y: np.ndarray, score: np.ndarray, specificity: float) -> float:
    """The lowest threshold at which at least ``specificity`` of the negatives score below it.

    Predicting positive means ``score >= threshold``, so on ``(y, score)`` the specificity at the
    returned threshold is ``>= specificity`` (ties between negatives fall on the same side). NaN when
    there is no negative.
    """
    if not 0.0 < specificity < 1.0:
        raise ValueError(f"specificity must be in (0, 1), got {specificity}")
    neg = np.sort(np.asarray(score, dtype=np.float64)[np.asarray(y).astype(int) == 0])
    if len(neg) == 0:
        return NAN
    k = math.ceil(specificity * len(neg))  # negatives that must score below the threshold
    return float(min(np.nextafter(neg[k - 1], np.inf), 1.0))


def _sens_spec(y: np.ndarray, score: np.ndarray, t: float) -> tuple[float, float]:
    pos, pred = y == 1, score >= t
    sens = float(pred[pos].mean()) if pos.any() else NAN
    spec = float((~pred[~pos]).mean()) if (~pos).any() else NAN
    return sens, spec


def finding_thresholds(
    y_valid: np.ndarray,
    p_valid: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    labels: Sequence[str],
    specificity: float = 0.9,
    min_positives: int = 5,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Each finding's threshold at a stated specificity on the validation split, and how it holds on test.

    A finding is marked present when its probability reaches the threshold at which ``specificity``
    of the validation images without it score lower (:func:`specificity_threshold`): a rule a
    reader can check, which on a rare finding does not mean "almost always yes" as an F1-optimal
    point does. A finding with fewer than ``min_positives`` validation images that have it gets no
    threshold (``None``, with the reason): its sensitivity there could not be measured. On the test
    split each finding gets its AUROC with a bootstrap interval, its positives, and the sensitivity
    and specificity at its threshold; the mean AUROC over findings gets its interval too.

    Returns:
        ``{"rule": {...}, "per_label": {label: {...}}, "mean_auroc": {"value", "low", "high", ...}}``;
        JSON-ready (NaN for undefined values).
    """
    yv, pv = (np.asarray(y_valid) > 0.5).astype(int), np.asarray(p_valid, dtype=np.float64)
    yt, pt = (np.asarray(y_test) > 0.5).astype(int), np.asarray(p_test, dtype=np.float64)
    if yv.shape != pv.shape or yt.shape != pt.shape or yv.shape[1:] != (len(labels),) or yt.shape[1:] != yv.shape[1:]:
        raise ValueError(f"validation {yv.shape}/{pv.shape} and test {yt.shape}/{pt.shape} for {len(labels)} labels")
    per: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(labels):
        positives = int(yv[:, j].sum())
        row: dict[str, Any] = {"valid_positives": positives, "valid_n": int(len(yv))}
        if positives < min_positives:
            row["threshold"] = None
            row["why_none"] = f"only {positives} validation image(s) have it (at least {min_positives} needed)"
        else:
            t = specificity_threshold(yv[:, j], pv[:, j], specificity)
            row["threshold"] = t
            row["valid_sensitivity"], row["valid_specificity"] = _sens_spec(yv[:, j], pv[:, j], t)
            row["test_sensitivity"], row["test_specificity"] = _sens_spec(yt[:, j], pt[:, j], t)
        ci = bootstrap_ci(yt[:, j], pt[:, j], _rank_auroc, n_boot=n_boot, seed=seed)
        row.update(
            test_n=int(len(yt)),
            test_positives=int(yt[:, j].sum()),
            auroc=ci["value"],
            auroc_low=ci["low"],
            auroc_high=ci["high"],
        )
        per[name] = row
    rule = {"specificity": specificity, "split": "valid", "min_positives": min_positives, "n_boot": n_boot}
    mean = bootstrap_ci(yt, pt, _mean_rank_auroc, n_boot=n_boot, seed=seed)
    return {"rule": rule, "per_label": per, "mean_auroc": mean}


def _mean_rank_auroc(y: np.ndarray, p: np.ndarray) -> float:
    """The mean over labels of each label's AUROC (labels with one class present left out)."""
    values = [v for j in range(y.shape[1]) if not math.isnan(v := _rank_auroc(y[:, j], p[:, j]))]
    return float(np.mean(values)) if values else NAN


def multilabel_metrics(
    y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str] | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """Per-label and mean metrics of a multi-label task.

    For each label: AUROC, AUPRC (average precision), F1 / accuracy / precision / recall at
    ``threshold`` (0.5 as in thesis 000), the F1-optimal threshold with its F1 and accuracy,
    prevalence and positives. A label with no positive (or no negative) gets NaN AUROC and is
    left out of the means of the metrics that are undefined for it.
    """
    y_true, probs = _check(y_true, probs)
    if y_true.ndim != 2 or y_true.shape != probs.shape:
        raise ValueError(f"multi-label y_true and probs must both be (N, L); got {y_true.shape} and {probs.shape}")
    y_true = (y_true > 0.5).astype(int)
    names = list(labels) if labels is not None else [str(i) for i in range(y_true.shape[1])]
    per: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        y, s = y_true[:, j], probs[:, j]
        pred = (s >= threshold).astype(int)
        t_best, f1_best = f1_optimal_threshold(y, s)
        pred_best = (s >= t_best).astype(int)
        per[name] = {
            "positives": int(y.sum()),
            "prevalence": float(y.mean()),
            "auroc": _auroc(y, s),
            "auprc": float(skm.average_precision_score(y, s)) if y.sum() else NAN,
            "f1": float(skm.f1_score(y, pred, zero_division=0)),
            "accuracy": float(skm.accuracy_score(y, pred)),
            "precision": float(skm.precision_score(y, pred, zero_division=0)),
            "recall": float(skm.recall_score(y, pred, zero_division=0)),
            "threshold_best": t_best,
            "f1_best": f1_best,
            "accuracy_best": float(skm.accuracy_score(y, pred_best)),
        }
    keys = ["auroc", "auprc", "f1", "accuracy", "f1_best", "accuracy_best"]
    means = {}
    for key in keys:
        vals = [v[key] for v in per.values() if not math.isnan(v[key])]
        means[f"mean_{key}"] = float(np.mean(vals)) if vals else NAN
    return {"n": int(len(y_true)), "threshold": threshold, **means, "per_label": per, "labels": names}


def evaluate(y_true: np.ndarray, probs: np.ndarray, task: str, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`multilabel_metrics` for ``task="multilabel"``, else :func:`multiclass_metrics`."""
    if task == "multilabel":
        return multilabel_metrics(y_true, probs, classes)
    if task in ("multiclass", "binary"):
        return multiclass_metrics(y_true, probs, classes)
    raise ValueError(f"unknown task {task!r}")


def headline(m: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics of an :func:`evaluate` result (no tables), for history and tables."""
    return {k: v for k, v in m.items() if isinstance(v, float) and k != "threshold"}


def bootstrap_ci(
    y_true: np.ndarray,
    probs: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile bootstrap interval of a scalar metric, resampling images with replacement.

    Resamples on which the metric is undefined (NaN, e.g. AUROC with one class drawn) are
    dropped and counted.

    Returns:
        ``{"value", "low", "high", "alpha", "n_boot", "n_valid"}``.
    """
    y_true, probs = _check(y_true, probs)
    rng = np.random.default_rng(seed)
    n = len(y_true)
    value = float(metric(y_true, probs))
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        try:
            v = float(metric(y_true[idx], probs[idx]))
        except ValueError:
            continue
        if not math.isnan(v):
            stats.append(v)
    if not stats:
        return {"value": value, "low": NAN, "high": NAN, "alpha": alpha, "n_boot": n_boot, "n_valid": 0}
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return {
        "value": value,
        "low": float(low),
        "high": float(high),
        "alpha": alpha,
        "n_boot": n_boot,
        "n_valid": len(stats),
    }


_FAST_KEYS = ("accuracy", "balanced_accuracy", "kappa", "macro_auroc", "auroc", "error_rate")


def _rank_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC as the Mann–Whitney statistic (ties count one half); NaN with one class present."""
    from scipy.stats import rankdata

    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return NAN
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _single_label_fast(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The headline single-label metrics of :func:`multiclass_metrics`, computed directly with
    NumPy (the bootstrap evaluates hundreds of resamples; ``tests/test_metrics.py`` checks that
    both agree)."""
    if probs.ndim == 1:
        probs = np.stack([1 - probs, probs], axis=1)
    k = probs.shape[1]
    y = y_true.astype(np.int64)
    pred = probs.argmax(axis=1)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.float64)
    n = cm.sum()
    support = cm.sum(axis=1)
    acc = float(np.trace(cm) / n)
    recall = np.diag(cm)[support > 0] / support[support > 0]
    pe = float((cm.sum(axis=0) * support).sum() / n**2)
    kappa = float((acc - pe) / (1 - pe)) if pe < 1 else NAN
    if k == 2:
        auroc = _rank_auroc(y, probs[:, 1])
    else:
        present = [i for i in range(k) if 0 < support[i] < n]
        auroc = float(np.mean([_rank_auroc((y == i).astype(int), probs[:, i]) for i in present])) if present else NAN
    return {
        "accuracy": acc,
        "error_rate": 1 - acc,
        "balanced_accuracy": float(recall.mean()),
        "kappa": kappa,
        "macro_auroc": auroc,
        "auroc": auroc,
    }


def bootstrap_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    task: str,
    keys: Sequence[str] | None = None,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Bootstrap intervals for several headline metrics of :func:`evaluate` at once.

    Each resample is evaluated once and every key read from it, so all intervals come from the
    same resamples. ``keys`` defaults to accuracy, balanced accuracy, kappa and AUROC (single
    label) or the label means (multi-label).
    """
    y_true, probs = _check(y_true, probs)
    if keys is None:
        keys = (
            ["mean_auroc", "mean_auprc", "mean_f1"]
            if task == "multilabel"
            else ["accuracy", "balanced_accuracy", "kappa", "macro_auroc"]
        )
    point = evaluate(y_true, probs, task)
    fast = task != "multilabel" and set(keys) <= set(_FAST_KEYS)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y_true), len(y_true))
        m = _single_label_fast(y_true[idx], probs[idx]) if fast else evaluate(y_true[idx], probs[idx], task)
        for k in keys:
            v = m.get(k, NAN)
            if not math.isnan(v):
                samples[k].append(v)
    out = {}
    for k in keys:
        s = samples[k]
        low, high = np.quantile(s, [alpha / 2, 1 - alpha / 2]) if s else (NAN, NAN)
        out[k] = {
            "value": float(point.get(k, NAN)),
            "low": float(low),
            "high": float(high),
            "alpha": alpha,
            "n_boot": n_boot,
            "n_valid": len(s),
        }
    return out
