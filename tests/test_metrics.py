"""Metrics and losses against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import metrics as M
from helpers.losses import LabelSmoothingCE, WeightedBCEWithLogits, chexnet_weights, make_loss


def test_binary_by_hand():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    m = M.multiclass_metrics(y, np.stack([1 - p1, p1], 1), ["normal", "pneumonia"])
    # positives 0.35, 0.8 against negatives 0.1, 0.4: three of the four pairs are ordered right
    assert m["auroc"] == pytest.approx(0.75)
    # argmax predicts [0, 0, 0, 1]
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]
    assert m["accuracy"] == pytest.approx(0.75) and m["error_rate"] == pytest.approx(0.25)
    assert m["sensitivity"] == pytest.approx(0.5) and m["specificity"] == pytest.approx(1.0)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    # p_o = 3/4, p_e = (2/4)(3/4) + (2/4)(1/4) = 1/2, kappa = (3/4 - 1/2) / (1 - 1/2)
    assert m["kappa"] == pytest.approx(0.5)
    assert m["per_class"]["pneumonia"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_class"]["normal"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["normal"]["f1"] == pytest.approx(0.8)


def test_multiclass_by_hand():
    y = np.array([0, 1, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])  # argmax 0, 2, 2, 1
    m = M.multiclass_metrics(y, probs, ["a", "b", "c"])
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)
    # marginals true (1,1,2)/4 and predicted (1,1,2)/4: p_e = 6/16, kappa = (1/2 - 3/8)/(5/8)
    assert m["kappa"] == pytest.approx(0.2)
    # one-vs-rest: class a is perfectly ranked; class b: positive 0.3 vs negatives 0.1, 0.2, 0.5 → 2/3
    assert m["auroc_per_class"]["a"] == pytest.approx(1.0)
    assert m["auroc_per_class"]["b"] == pytest.approx(2 / 3)
    # class c: positives 0.7, 0.3 vs negatives 0.1, 0.5 → (2 + 1)/4
    assert m["auroc_per_class"]["c"] == pytest.approx(0.75)
    assert m["macro_auroc"] == pytest.approx((1 + 2 / 3 + 0.75) / 3)


def test_multilabel_by_hand():
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    s = np.array([[0.9, 0.2], [0.6, 0.1], [0.4, 0.3], [0.1, 0.4]])
    m = M.multilabel_metrics(y, s, ["A", "B"])
    a = m["per_label"]["A"]
    assert a["auroc"] == pytest.approx(0.75)
    # ranking pos, neg, pos, neg: AP = 1/2 · 1 + 1/2 · 2/3
    assert a["auprc"] == pytest.approx(5 / 6)
    # at 0.5: predicted [1, 1, 0, 0] → TP 1, FP 1, FN 1
    assert a["f1"] == pytest.approx(0.5) and a["accuracy"] == pytest.approx(0.5)
    # best threshold 0.4: predicted [1, 1, 1, 0], precision 2/3, recall 1
    assert a["threshold_best"] == pytest.approx(0.4)
    assert a["f1_best"] == pytest.approx(0.8) and a["accuracy_best"] == pytest.approx(0.75)
    # label B has no positive: AUROC undefined and left out of the mean
    assert math.isnan(m["per_label"]["B"]["auroc"])
    assert m["mean_auroc"] == pytest.approx(0.75)
    assert m["per_label"]["B"]["accuracy"] == pytest.approx(1.0)


def test_f1_optimal_threshold_without_positives():
    assert M.f1_optimal_threshold(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4])) == (0.5, 0.0)


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match="labels but"):
        M.multiclass_metrics(np.array([0, 1]), np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="NaN"):
        M.multiclass_metrics(np.array([0, 1]), np.array([[np.nan, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="task"):
        M.evaluate(np.array([0]), np.array([[1.0, 0.0]]), "regression")


def test_bootstrap_is_seeded_and_brackets_the_value():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    auroc = lambda yy, ss: M._auroc(yy, ss)  # noqa: E731
    a = M.bootstrap_ci(y, score, auroc, n_boot=300, seed=1)
    b = M.bootstrap_ci(y, score, auroc, n_boot=300, seed=1)
    assert a == b
    assert a["low"] < a["value"] < a["high"] and a["n_valid"] == 300
    # a perfect classifier's interval collapses onto 1
    perfect = M.bootstrap_ci(y, y.astype(float), auroc, n_boot=50, seed=0)
    assert perfect["low"] == perfect["high"] == 1.0
    many = M.bootstrap_metrics(y, np.stack([1 - score, score], 1), "binary", n_boot=50, seed=0)
    assert many["macro_auroc"]["value"] == pytest.approx(a["value"])
    assert many["accuracy"]["low"] <= many["accuracy"]["value"] <= many["accuracy"]["high"]


@pytest.mark.parametrize("k", [2, 4])
def test_fast_bootstrap_metrics_agree_with_scikit_learn(k):
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 300)
    probs = rng.dirichlet(np.ones(k), 300)
    probs[np.arange(300), y] += 0.3 * rng.random(300)  # some signal, some ties below
    probs = np.round(probs / probs.sum(1, keepdims=True), 2)
    full, fast = M.multiclass_metrics(y, probs), M._single_label_fast(y, probs)
    for key in ("accuracy", "balanced_accuracy", "kappa", "macro_auroc"):
        assert fast[key] == pytest.approx(full[key], abs=1e-9), key


# ----------------------------------------------------------------------------- losses


def test_chexnet_weights_and_loss_by_hand():
    labels = np.array([[1, 0], [0, 0]], dtype=np.float32)
    w_pos, w_neg = chexnet_weights(labels)
    assert torch.allclose(w_neg, torch.tensor([0.5, 0.0])) and torch.allclose(w_pos, torch.tensor([0.5, 1.0]))
    loss = WeightedBCEWithLogits.from_labels(labels)
    # logits 0 → ŷ = 1/2; image 1: −(0.5·log ½ + 0·log ½); image 2: −(0.5·log ½ + 0·log ½)
    value = loss(torch.zeros(2, 2), torch.tensor(labels))
    assert value.item() == pytest.approx(0.5 * math.log(2))
    assert value.item() > 0  # the minus sign the thesis's equation 4.1 lacks


def test_unweighted_bce_sums_over_labels():
    z, y = torch.randn(5, 3), (torch.rand(5, 3) > 0.5).float()
    expected = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(1).mean()
    assert torch.allclose(WeightedBCEWithLogits()(z, y), expected)


def test_label_smoothing_matches_torch():
    z, y = torch.randn(6, 4), torch.randint(0, 4, (6,))
    assert torch.allclose(LabelSmoothingCE(0.1)(z, y), F.cross_entropy(z, y, label_smoothing=0.1), atol=1e-6)
    assert torch.allclose(LabelSmoothingCE(0.0)(z, y), F.cross_entropy(z, y), atol=1e-6)
    w = torch.tensor([1.0, 2.0, 0.5, 1.0])
    ce = LabelSmoothingCE(0.0, weight=w)
    ce.reduction = "none"
    assert torch.allclose(ce(z, y), F.cross_entropy(z, y, weight=w, reduction="none"), atol=1e-6)


def test_make_loss_options():
    assert isinstance(make_loss("multilabel", class_weights="chexnet", train_labels=np.eye(3)), WeightedBCEWithLogits)
    balanced = make_loss("multiclass", class_weights="balanced", train_labels=np.array([0, 0, 0, 1]))
    assert torch.allclose(balanced.weight, torch.tensor([4 / 6, 4 / 2]))
    with pytest.raises(ValueError, match="training labels"):
        make_loss("multilabel", class_weights="chexnet")
    with pytest.raises(ValueError):
        make_loss("multilabel", label_smoothing=0.1)
