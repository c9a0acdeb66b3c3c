"""The mammography chapter's protocol: folds by woman, the linear probe as a torch model, scores by woman."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import configs
from helpers import mammo_study as S
from helpers.data.base import ImageDataset
from helpers.data.mias_tasks import CROP_FACTOR, MIN_CROP_SIDE


def _dataset(n_women: int = 12, size: int = 32, seed: int = 0) -> ImageDataset:
    """Two grey images per woman; class 1 images carry a bright disc in the centre."""
    rng = np.random.default_rng(seed)
    labels = np.array([w % 2 for w in range(n_women) for _ in range(2)], dtype=np.int64)
    images = rng.integers(0, 80, (len(labels), size, size, 1)).astype(np.uint8)
    images[labels == 1, size // 2 - 4 : size // 2 + 4, size // 2 - 4 : size // 2 + 4] = 250
    patients = np.array([f"w{w}" for w in range(n_women) for _ in range(2)])
    return ImageDataset(
        name="toy", task="binary", classes=["benign", "malignant"], images=images, labels=labels,
        patient_ids=patients, split="all", source="synthetic",
    )  # fmt: skip


def _backbone():
    torch.manual_seed(0)
    return S.pretrained_backbone("resnet10t", pretrained=False)


def test_folds_keep_women_together_and_cover_every_image():
    data = _dataset()
    folds = S.woman_folds(data, 3, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(data)))
    for a in range(3):
        for b in range(a + 1, 3):
            assert not set(data.patient_ids[folds[a]]) & set(data.patient_ids[folds[b]])


def test_probe_model_computes_the_fitted_regression():
    data = _dataset()
    backbone = _backbone()
    feats = S.pooled_features(backbone, data.images)
    probe = S.fit_probe(feats, data.labels, c=1.0)
    torch.manual_seed(0)
    model = S.probe_model(probe, "resnet10t", pretrained=False)
    with torch.no_grad():
        probs = torch.softmax(model(S._inputs(data.images)), -1)[:, 1].numpy()
    np.testing.assert_allclose(probs, probe.predict_proba(feats)[:, 1], atol=1e-4)


def test_fit_probe_model_separates_the_training_images():
    data = _dataset()
    torch.manual_seed(0)
    model = S.fit_probe_model(data, c=1.0, name="resnet10t", pretrained=False)
    with torch.no_grad():
        probs = torch.softmax(model(S._inputs(data.images)), -1)[:, 1].numpy()
    assert S.binary_scores(data.labels, probs)["auroc"] > 0.9


def test_linear_probe_scores_every_image_out_of_fold_and_maps_point():
    data = _dataset()
    folds = S.woman_folds(data, 3, seed=0)
    oof = S.linear_probe_oof(data, folds, backbone=_backbone(), c=1.0)
    assert len(oof.models) == 3 and sorted(set(oof.fold.tolist())) == [0, 1, 2]
    assert S.binary_scores(oof.labels, oof.scores)["auroc"] > 0.8  # the disc is easy
    with pytest.raises(ValueError, match="kept no fold models"):
        S.probe_maps(S.majority_oof(data, folds), data)


def test_majority_is_half_in_every_fold_and_pools_below_half():
    """The fold that holds more positives was scored by training folds with fewer: pooled AUROC < 0.5."""
    labels = np.array([1, 1, 1, 0, 0, 0] + [1, 0, 0, 0, 0, 0] + [1, 1, 0, 0, 0, 0])
    data = ImageDataset(
        name="toy", task="binary", classes=["a", "b"], images=np.zeros((18, 4, 4, 1), np.uint8), labels=labels,
        patient_ids=np.arange(18).astype(str), split="all", source="synthetic",
    )  # fmt: skip
    folds = [np.arange(0, 6), np.arange(6, 12), np.arange(12, 18)]
    oof = S.majority_oof(data, folds)
    assert oof.fold_auroc() == [0.5, 0.5, 0.5]
    s = S.summarise(oof, n_boot=50)
    assert s["auroc"]["value"] < 0.4 and s["mean_fold_auroc"] == 0.5
    assert (s["sensitivity"]["value"], s["specificity"]["value"], s["balanced_accuracy"]["value"]) == (0, 1, 0.5)


def test_binary_scores_and_bootstrap_by_woman():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.6, 0.7, 0.4, 0.2, 0.9])
    m = S.binary_scores(y, s)
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(2 / 3)
    assert m["auroc"] == pytest.approx(8 / 9) and m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert np.isnan(S.binary_scores(np.ones(3), np.ones(3))["auroc"])
    oof = S.OutOfFold("m", y, s, np.array([0, 0, 0, 1, 1, 1]), np.array(list("aabbcc")), 0.0)
    out = S.summarise(oof, n_boot=200, seed=1)
    assert out["auroc"]["low"] <= out["auroc"]["value"] <= out["auroc"]["high"]
    table = S.summary_table({"m": oof}, n_boot=20)
    assert list(table.index) == ["m"] and "AUROC per fold" in table.columns


def test_pointing_rate_counts_peaks_inside_the_circle():
    inside, outside = np.zeros((20, 20)), np.zeros((20, 20))
    inside[10, 10], outside[0, 0] = 1.0, 1.0
    rate = S.pointing_rate([inside, outside], [4.0, 4.0])
    assert rate["hit_rate"] == 0.5 and rate["n"] == 2 and rate["hits"].tolist() == [1.0, 0.0]
    assert S.circle_mask(20, 4.0).mean() == pytest.approx(np.pi * 16 / 400, rel=0.1)


def test_cbis_plan_says_what_happens_without_the_folder():
    runs, why = S.cbis_plan("full", "synthetic")
    assert runs == {} and "$MEDVIT_DATA/cbis_ddsm" in why
    runs, _ = S.cbis_plan("full", "real")
    assert {e.config.pretrained for e in runs.values()} == {True} and set(runs) == {"CNN", "ViT"}
    runs, why = S.cbis_plan("smoke", "synthetic")
    assert set(runs) == {"CNN", "ViT"} and "smoke size" in why
    assert S.cbis_plan("quick", "real")[0] == {}


def test_lesion_model_is_reusable_and_matches_the_crops():
    best = S.lesion_model(seed=3)
    assert best.model == S.FEATURE_MODEL and best.config.pretrained is True and best.config.seed == 3
    assert best.config.schedule == "fitted" and best.config.stats == S.IMAGENET_GREY
    with pytest.raises(ValueError, match="reads 128 px crops, got 32 px"):
        best.fit(_dataset(size=32))
    assert (best.crop.factor, best.crop.min_side) == (CROP_FACTOR, MIN_CROP_SIDE)
    assert best.config.image_size == best.crop.image_size


def test_cv_experiments_share_the_seed_and_vit_128px_keeps_16px_patches():
    exps = configs.mammography_cv_experiments("quick", seed=2)
    assert {e.config.seed for e in exps.values()} == {2}
    assert exps["Lite0 fine-tuned"].config.pretrained is True
    assert exps["thesis CNN"].config.epochs == configs.MAMMOGRAPHY_CV["quick"]["thesis_epochs"]
    assert exps["thesis ViT"].config.epochs == configs.MAMMOGRAPHY_CV["quick"]["vit_epochs"]
    assert exps["Lite0 fine-tuned"].config.image_size == configs.MAMMOGRAPHY_CV["quick"]["finetune_size"]
    vit128 = configs.thesis002_experiment("vit_128px", "full").config
    assert (vit128.image_size, vit128.model_kwargs) == (128, {"patch_size": 16})
    assert configs.thesis002_experiment("vit_128px", "quick").config.model_kwargs == {"patch_size": 4}


def test_the_full_branch_runs_at_smoke_size_on_the_generated_cbis_layout(tmp_workdirs, monkeypatch, one_thread):
    """At full the chapter fine-tunes a CNN and a ViT on CBIS-DDSM's official split: the same code at smoke size."""
    from helpers.data.registry import load_catalog
    from helpers.data.synthetic import write_synthetic

    write_synthetic("cbis_ddsm", tmp_workdirs / "data" / "cbis_ddsm")
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_workdirs / "data"))
    cat, source, _ = load_catalog("cbis_ddsm", verbose=False)
    assert source == "real" and set(cat.official_split) == {"trainval", "test"}  # read as a reader's folder would be
    runs, why = S.cbis_plan("smoke", source)
    records = S.train_cbis(runs, "smoke")
    assert set(records) == {"CNN", "ViT"} and "smoke size" in why
    for rec in records.values():
        assert 0.0 <= rec.metrics["test"]["balanced_accuracy"] <= 1.0
        assert rec.metrics["test"]["confusion_matrix"] is not None


def test_film_experiments_are_the_cnn_on_a_cpu_and_every_model_at_full():
    quick = configs.mammography_film_experiments("quick", seed=1)
    assert list(quick) == ["thesis CNN"] and quick["thesis CNN"].config.seed == 1
    assert quick["thesis CNN"].config.epochs == configs.MAMMOGRAPHY_CV["quick"]["film_epochs"]
    assert set(configs.mammography_film_experiments("full")) == set(configs.mammography_cv_experiments("full"))
