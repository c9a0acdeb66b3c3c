"""What the app says about a chest film and a model: thresholds at a stated specificity, the headline
finding's own probability, "no finding above its threshold", per-finding AUROC with its interval,
the card's test metric with its interval and test images, smoke checkpoints kept out of the menu, and
no chance-level model chosen by default."""

from __future__ import annotations

import html
import io

import numpy as np
import pandas as pd
import pytest

from helpers import app, metrics
from helpers.testing import make_untrained_checkpoint
from helpers.training.record import card_metrics

LABELS = ("Atelectasis", "Mass", "Hernia")


def test_the_specificity_threshold_is_the_lowest_that_keeps_the_stated_specificity():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(200, int), np.ones(20, int)]
    s = np.r_[rng.uniform(0, 0.8, 200), rng.uniform(0.3, 1.0, 20)]
    t = metrics.specificity_threshold(y, s, 0.9)
    neg = s[y == 0]
    assert (neg < t).mean() >= 0.9  # the stated specificity holds on the data it was chosen on
    assert (neg < np.sort(neg)[179]).mean() < 0.9  # and no lower negative score would keep it
    ties = metrics.specificity_threshold(np.zeros(10, int), np.full(10, 0.3), 0.9)
    assert ties > 0.3 and (np.full(10, 0.3) < ties).all()  # tied negatives fall below together
    assert np.isnan(metrics.specificity_threshold(np.ones(3, int), np.ones(3), 0.9))
    with pytest.raises(ValueError, match="specificity"):
        metrics.specificity_threshold(y, s, 1.0)


def test_findings_get_thresholds_on_validation_and_their_test_auroc_with_an_interval():
    rng = np.random.default_rng(1)
    n = 300
    y = np.zeros((n, 3), int)
    y[::8, 0] = 1  # Atelectasis: common enough, in both splits
    y[1::10, 1] = 1  # Mass: common enough
    y[[2, 200], 2] = 1  # Hernia: one positive in each split
    p = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.15, (n, 3)), 0, 1)
    out = metrics.finding_thresholds(y[:150], p[:150], y[150:], p[150:], LABELS, specificity=0.9, n_boot=100)
    assert out["rule"] == {"specificity": 0.9, "split": "valid", "min_positives": 5, "n_boot": 100}
    atel, hernia = out["per_label"]["Atelectasis"], out["per_label"]["Hernia"]
    assert atel["threshold"] is not None and atel["valid_specificity"] >= 0.9
    assert 0.75 < atel["test_specificity"] <= 1.0  # it holds on the held-out split, near the stated level
    assert atel["auroc_low"] <= atel["auroc"] <= atel["auroc_high"] and atel["test_n"] == 150
    assert hernia["threshold"] is None and "only 1 validation image(s)" in hernia["why_none"]
    mean = out["mean_auroc"]
    assert mean["low"] <= mean["value"] <= mean["high"]
    assert abs(mean["value"] - np.mean([out["per_label"][k]["auroc"] for k in LABELS])) < 1e-12
    with pytest.raises(ValueError, match="3 labels"):
        metrics.finding_thresholds(y[:, :2], p[:, :2], y[150:], p[150:], LABELS)


def _chest_result(probs: dict[str, float]) -> app.Result:
    findings = {
        "Atelectasis": {"auroc": 0.71, "auroc_low": 0.62, "auroc_high": 0.8, "test_positives": 12, "test_n": 200},
        "Mass": {"auroc": 0.66, "auroc_low": 0.5, "auroc_high": 0.79, "test_positives": 9, "test_n": 200},
        "Hernia": {"why_none": "only 1 validation image(s) have it (at least 5 needed)"},
    }
    return app.Result(
        "film.png",
        probabilities=probs,
        multilabel=True,
        thresholds={"Atelectasis": 0.3, "Mass": 0.3},
        default_threshold=None,
        findings=findings,
    )


def test_the_headline_gives_the_probability_of_the_finding_it_names():
    # Hernia is the most probable but has no threshold; Mass is marked and more probable than Atelectasis
    r = _chest_result({"Atelectasis": 0.35, "Mass": 0.42, "Hernia": 0.9})
    assert r.label == "Mass|Atelectasis" and r.headline == ("Mass", 0.42)
    text = html.unescape(app.result_html(r))
    assert "(Mass 0.420)" in text and "0.900)" not in text.split("</span>")[1]
    assert "AUROC 0.71 (0.62–0.80), 12 of 200 test images have it" in text
    assert "no threshold: only 1 validation image(s) have it" in text
    row = pd.read_csv(io.StringIO(app.results_csv([r]))).iloc[0]
    assert row["prediction"] == "Mass|Atelectasis" and row["probability"] == 0.42  # not Hernia's 0.9


def test_no_finding_above_its_threshold_is_an_answer():
    r = _chest_result({"Atelectasis": 0.1, "Mass": 0.2, "Hernia": 0.95})
    assert r.label == "none" and r.headline is None and r.marked() == []
    assert "none</span> <span class='medvit-clear'>(no finding above its threshold)" in app.result_html(r)
    assert pd.isna(pd.read_csv(io.StringIO(app.results_csv([r]))).iloc[0]["probability"])
    old = app.Result("old.png", probabilities={"Mass": 0.6, "Hernia": 0.4}, multilabel=True)  # a card without a rule
    assert old.label == "Mass" and old.threshold("Hernia") == 0.5


def test_the_card_shows_the_test_metric_with_its_interval_and_test_images(tmp_path):
    run = {
        "valid": {"n": 80, "accuracy": 0.8, "per_class": {}},
        "test": {"n": 120, "accuracy": 0.81, "balanced_accuracy": 0.79},
        "test_ci": {"balanced_accuracy": {"value": 0.79, "low": 0.71, "high": 0.86}},
    }
    kept = card_metrics(run)
    assert kept["n"] == {"valid": 80, "test": 120} and kept["test_ci"] == run["test_ci"]
    folder = make_untrained_checkpoint(tmp_path / "b", "blood", "resnet18", 32, 3, card_fields={"metrics": kept})
    card = app.load_model(folder)[1]
    summary = app.held_out_summary(card)
    assert summary == "test split: balanced accuracy 0.790 (95 % interval 0.710–0.860), on 120 test images"
    assert html.escape(summary) in app.card_html(card)
    bare = card.replace(metrics={"test": {"accuracy": 0.5}})
    assert "(no interval recorded), number of images not recorded" in app.held_out_summary(bare)


def test_the_chest_card_states_its_threshold_rule(tmp_path):
    rule = {"specificity": 0.9, "split": "valid", "min_positives": 5}
    folder = make_untrained_checkpoint(
        tmp_path / "c",
        "chest",
        "resnet18",
        32,
        3,
        card_fields={"thresholds": {"Mass": 0.4}, "threshold_rule": rule, "findings": {"Mass": {"auroc": 0.7}}},
    )
    card = app.load_model(folder)[1]
    text = html.unescape(app.card_html(card))
    assert "specificity 0.90 on the validation split" in text and "13 finding(s) have no threshold" in text


def test_smoke_checkpoints_stay_out_of_the_menu(tmp_path, monkeypatch):
    make_untrained_checkpoint(tmp_path / "smoke", "blood", card_fields={"profile": "smoke", "run_id": "smoke-run"})
    make_untrained_checkpoint(tmp_path / "quick", "blood", card_fields={"profile": "quick", "run_id": "quick-run"})
    monkeypatch.setenv("MEDVIT_PROFILE", "quick")
    assert [e.card.run_id for e in app.find_models("blood", tmp_path)] == ["quick-run"]
    assert app.hidden_smoke_models("blood", tmp_path) == 1
    assert len(app.find_models("blood", tmp_path, include_smoke=True)) == 2
    a = app.ClassifierApp(tmp_path)
    assert len(a.model.options) == 1 and "1 smoke-test checkpoint(s)" in a.hint.value
    monkeypatch.setenv("MEDVIT_PROFILE", "smoke")  # the tests' own profile lists them
    assert len(app.find_models("blood", tmp_path)) == 2 and app.hidden_smoke_models("blood", tmp_path) == 0


def test_a_chance_level_model_is_never_the_default(tmp_path):
    chance = {"no_better_than_chance": True, "constant": True}
    good = {"test": {"balanced_accuracy": 0.6}}
    make_untrained_checkpoint(tmp_path / "a", "blood", card_fields={"chance": chance, "run_id": "chance"})
    entries = app.find_models("blood", tmp_path)
    assert app.best_model(entries) is None and app.chance_level(entries[0].card)
    make_untrained_checkpoint(tmp_path / "b", "blood", card_fields={"metrics": good, "run_id": "fine"})
    entries = app.find_models("blood", tmp_path)
    assert entries[app.best_model(entries)].card.run_id == "fine"
