"""Per-finding evaluation of a multi-label chest X-ray model, as thesis 000 reports it and better.

For every finding on the test split: AUROC, AUPRC, and F1 and accuracy at two thresholds, 0.5 (the
thesis's) and the F1-optimal threshold **chosen on the validation split** (never on the test split:
a threshold tuned on the images it is scored on flatters F1). Bootstrap 95 % intervals resample test
*patients* where the split has patient ids (a patient's follow-up images are alike, so resampling them
one by one would make the intervals too narrow), else test images; the same resamples for every finding
and for the means.

Two means, each with one definition:

* **mean over findings**: the plain mean of the per-finding AUROCs over the outputs asked for (the
  14 ChestX-ray14 findings, or these and COVID-19, the thesis's 15 outputs), leaving out a finding
  with no positive or no negative test image (its AUROC is undefined);
* **mean over findings with at least ``min_positives`` test positives**: the same over the findings
  with enough positives for their AUROC to mean something (10 by default).

Thesis 000's "Global-15" row is not one of these: see :func:`thesis_global_means`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

from .metrics import f1_optimal_threshold

__all__ = [
    "FindingsReport",
    "bootstrap_indices",
    "validation_thresholds",
    "evaluate_findings",
    "thesis_global_means",
]

NAN = float("nan")


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    """AUROC as the Mann-Whitney statistic (ties count a half); NaN with one class present."""
    from scipy.stats import rankdata

    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return NAN
    return float((rankdata(s)[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _auprc(y: np.ndarray, s: np.ndarray) -> float:
    return float(skm.average_precision_score(y, s)) if 0 < y.sum() < len(y) else NAN


def bootstrap_indices(n: int, n_boot: int, seed: int = 0, groups: Sequence[Any] | None = None) -> list[np.ndarray]:
    """``n_boot`` bootstrap resamples of ``n`` items as index arrays.

    Without ``groups`` each resample draws ``n`` items with replacement. With ``groups`` (one id per item, e.g.
    the patient of each image) it draws as many groups as there are, with replacement, and takes every item
    of each drawn group: a cluster bootstrap, so that items that are alike within a group count as one draw.

    Raises:
        ValueError: when ``groups`` does not have one id per item.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        return [rng.integers(0, n, n) for _ in range(n_boot)]
    ids = np.asarray(groups)
    if len(ids) != n:
        raise ValueError(f"{len(ids)} group ids for {n} items: give one per item")
    _, inverse = np.unique(ids, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)] if n else []
    return [np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))]) for _ in range(n_boot)]


def validation_thresholds(y_valid: np.ndarray, p_valid: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Each finding's F1-optimal threshold on the validation split (0.5 where it has no positive).

    Raises:
        ValueError: when the shapes do not match ``labels``.
    """
    y_valid, p_valid = np.asarray(y_valid) > 0.5, np.asarray(p_valid, dtype=np.float64)
    if y_valid.shape != p_valid.shape or y_valid.shape[1] != len(labels):
        raise ValueError(
            f"validation labels {y_valid.shape} and probabilities {p_valid.shape} for {len(labels)} labels"
        )
    return {name: f1_optimal_threshold(y_valid[:, j], p_valid[:, j])[0] for j, name in enumerate(labels)}


@dataclass
class FindingsReport:
    """What :func:`evaluate_findings` measured.

    Attributes:
        table: one row per finding (positives, AUROC with interval, AUPRC with interval, F1 and
            accuracy at 0.5 and at the validation threshold, the threshold).
        means: ``{"all": {...}, "enough": {...}}``: mean AUROC/AUPRC with intervals over the
            defined findings and over those with at least ``min_positives`` test positives.
        enough: the findings counted in the second mean.
        thresholds: the validation-chosen thresholds.
        min_positives, n_boot, n_test: the settings and the number of test images.
        resampled: what the bootstrap drew: ``"patients"`` (``n_groups`` of them) or ``"images"``.
    """

    table: Any
    means: dict[str, dict[str, float]]
    enough: list[str]
    thresholds: dict[str, float]
    min_positives: int
    n_boot: int
    n_test: int
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    resampled: str = "images"
    n_groups: int = 0


def _at(y: np.ndarray, s: np.ndarray, t: float) -> tuple[float, float]:
    pred = (s >= t).astype(int)
    return float(skm.f1_score(y, pred, zero_division=0)), float(skm.accuracy_score(y, pred))


def _interval(values: np.ndarray) -> tuple[float, float]:
    ok = values[~np.isnan(values)]
    if len(ok) == 0:
        return NAN, NAN
    low, high = np.quantile(ok, [0.025, 0.975])
    return float(low), float(high)


def _boot(
    y: np.ndarray, p: np.ndarray, n_boot: int, seed: int, groups: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-finding AUROC and AUPRC on ``n_boot`` resamples of the test images (or of their patients, see
    :func:`bootstrap_indices`): two ``(n_boot, L)`` arrays."""
    auc, ap = np.full((n_boot, y.shape[1]), NAN), np.full((n_boot, y.shape[1]), NAN)
    for b, idx in enumerate(bootstrap_indices(len(y), n_boot, seed, groups)):
        for j in range(y.shape[1]):
            auc[b, j], ap[b, j] = _auroc(y[idx, j], p[idx, j]), _auprc(y[idx, j], p[idx, j])
    return auc, ap


def _mean_row(point: np.ndarray, boot: np.ndarray, cols: list[int]) -> dict[str, float]:
    if not cols:
        return {"value": NAN, "low": NAN, "high": NAN, "findings": 0}
    low, high = _interval(np.nanmean(boot[:, cols], axis=1) if len(boot) else np.array([]))
    return {"value": float(np.mean(point[cols])), "low": low, "high": high, "findings": len(cols)}


def evaluate_findings(
    y_valid: np.ndarray,
    p_valid: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    labels: Sequence[str],
    *,
    min_positives: int = 10,
    n_boot: int = 200,
    seed: int = 0,
    patients: Sequence[Any] | None = None,
) -> FindingsReport:
    """The per-finding table and the two means (see the module docstring) of one model.

    Thresholds come from ``(y_valid, p_valid)`` only; everything else is measured on the test split.
    ``patients`` (one id per test image) makes the bootstrap resample patients instead of images.

    Raises:
        ValueError: when a split's labels and probabilities do not match ``labels``.
    """
    import pandas as pd

    labels = list(labels)
    thresholds = validation_thresholds(y_valid, p_valid, labels)
    y, p = (np.asarray(y_test) > 0.5).astype(int), np.asarray(p_test, dtype=np.float64)
    if y.shape != p.shape or y.shape[1] != len(labels):
        raise ValueError(f"test labels {y.shape} and probabilities {p.shape} for {len(labels)} labels")
    empty = (np.empty((0, len(labels))),) * 2
    boot_auc, boot_ap = _boot(y, p, n_boot, seed, patients) if n_boot else empty
    rows = []
    for j, name in enumerate(labels):
        f1_05, acc_05 = _at(y[:, j], p[:, j], 0.5)
        f1_t, acc_t = _at(y[:, j], p[:, j], thresholds[name])
        auc_lo, auc_hi = _interval(boot_auc[:, j])
        ap_lo, ap_hi = _interval(boot_ap[:, j])
        rows.append(
            {
                "finding": name,
                "positives": int(y[:, j].sum()),
                "auroc": _auroc(y[:, j], p[:, j]),
                "auroc_low": auc_lo,
                "auroc_high": auc_hi,
                "auprc": _auprc(y[:, j], p[:, j]),
                "auprc_low": ap_lo,
                "auprc_high": ap_hi,
                "f1@0.5": f1_05,
                "accuracy@0.5": acc_05,
                "threshold (valid)": thresholds[name],
                "f1@valid": f1_t,
                "accuracy@valid": acc_t,
            }
        )
    table = pd.DataFrame(rows).set_index("finding")
    auc = table["auroc"].to_numpy()
    defined = [j for j in range(len(labels)) if not math.isnan(auc[j])]
    enough = [j for j in defined if table["positives"].iloc[j] >= min_positives]
    means = {"all": _mean_row(auc, boot_auc, defined), "enough": _mean_row(auc, boot_auc, enough)}
    ap = table["auprc"].to_numpy()
    means["all_auprc"] = _mean_row(ap, boot_ap, defined)
    return FindingsReport(
        table=table,
        means=means,
        enough=[labels[j] for j in enough],
        thresholds=thresholds,
        min_positives=min_positives,
        n_boot=n_boot,
        n_test=len(y),
        samples={"auroc": boot_auc, "auprc": boot_ap},
        resampled="images" if patients is None else "patients",
        n_groups=len(set(patients)) if patients is not None else len(y),
    )


def thesis_global_means(per_finding: dict[str, float]) -> dict[str, float]:
    """Means of a thesis table's per-row values under the definitions the thesis's Global rows might use.

    ``per_finding`` maps row names (the 14 findings, ``"COVID-19"``, ``"Healthy"``) to values. Returns
    the mean over the 14 findings, over the 14 and COVID-19 (our 15-output definition), and over
    all 16 rows (the 15 and the "Healthy" row, which is not an output of the model).
    """
    from .data.chestxray import COVID_LABEL, NIH_FINDINGS

    missing = [n for n in NIH_FINDINGS if n not in per_finding]
    if missing:
        raise ValueError(f"per-finding values lack {missing}")
    fourteen = [per_finding[n] for n in NIH_FINDINGS]
    out = {"14 findings": float(np.mean(fourteen))}
    if COVID_LABEL in per_finding:
        out["14 findings + COVID-19"] = float(np.mean([*fourteen, per_finding[COVID_LABEL]]))
        if "Healthy" in per_finding:
            out["14 + COVID-19 + Healthy"] = float(
                np.mean([*fourteen, per_finding[COVID_LABEL], per_finding["Healthy"]])
            )
    return out
