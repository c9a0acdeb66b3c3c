"""app-models trains each task's chapter model: same data, network, configuration and epochs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import config, configs
from helpers.app_models import APP_MODELS, CANDIDATES, LESION_PROBE, _task_run, blood_cells_run, choose_dataset
from helpers.checkpoints import read_card
from helpers.data import load_dataset
from helpers.data.synthetic import write_synthetic
from helpers.train import train
from helpers.training import budget


def _never(*args, **kwargs):
    pytest.fail("a fixed plan measures nothing")


def test_the_blood_model_is_the_chapters(real_data, tmp_workdirs, monkeypatch):
    # the chapter's fixed plan, not this machine's speed: nothing may be measured
    monkeypatch.setattr(
        budget, "measure_pass_time", lambda *args, **kwargs: pytest.fail("a fixed plan measures nothing")
    )
    assert APP_MODELS["blood"][1] == configs.BLOOD_CELLS_QUICK_MODEL
    smoke = config.get_profile("smoke")
    model, data, cfg = blood_cells_run("pbc", smoke)
    chapter = configs.blood_cells_experiments(smoke, dataset="pbc", seed=0)["resnet10t"].config
    assert model == configs.blood_cells_model(smoke) and cfg == chapter.replace(name=f"app-blood-{chapter.name}")
    assert [d.split for d in data] == ["train", "valid", "test"] and {d.source for d in data} == {"real"}
    assert data[0].image_size == chapter.image_size and len(data[0]) == smoke.max_train
    # asked for fewer images or epochs, it departs from the chapter, and only then
    _, capped, cfg2, prof = _task_run("blood", "pbc", smoke, 2, 16)
    assert cfg2.epochs == 2 and prof.max_train == 16 and len(capped[0]) == 16


def test_quick_trains_the_chapters_resnet_by_its_fixed_plan(real_data, tmp_workdirs, monkeypatch):
    monkeypatch.setattr(
        budget, "measure_pass_time", lambda *args, **kwargs: pytest.fail("a fixed plan measures nothing")
    )
    quick = config.get_profile("quick")
    arch, data, cfg, prof = _task_run("blood", "pbc", quick, None, None)
    chapter = configs.blood_cells_experiments(quick, dataset="pbc", seed=0)["resnet10t"]
    plan = configs.blood_cells_plan(quick)["resnet10t"]
    assert arch == chapter.model and prof.max_train is None  # the plan, not the profile's cap, sizes the training set
    assert cfg.epochs == plan.epochs
    assert cfg.replace(epochs=chapter.config.epochs, name=chapter.config.name) == chapter.config, (
        "only the epochs (the chapter's plan) and the name"
    )
    whole = len(load_dataset("pbc", split="train", size=32, profile=prof, verbose=False))
    assert len(data[0]) == min(whole, plan.max_train)


def test_the_mammogram_model_is_the_mammography_chapters(real_data, tmp_workdirs):
    assert APP_MODELS["mammo"] == (("cbis_ddsm", "mias_lesions"), "thesis002_cnn")
    name, source, _ = choose_dataset("mammo", download=False)
    assert (name, source) == ("mias_lesions", "real")  # the lesion crops, not the whole films
    smoke = config.get_profile("smoke")
    arch, data, cfg, prof = _task_run("mammo", name, smoke, None, None)
    chapter = configs.thesis002_experiment("cnn", smoke, seed=0)
    assert arch == chapter.model and cfg == chapter.config.replace(bootstrap=0, name=f"app-mammo-{chapter.config.name}")
    assert data[0].classes == ["benign", "malignant"] and {d.source for d in data} == {"real"} and prof is smoke
    assert data[0].image_size == chapter.config.image_size
    assert configs.get_config("mammography_quick") == configs.thesis002_experiment("cnn", "quick", seed=0).config


def test_the_served_mammogram_model_is_the_chapters_lesion_probe(real_data, tmp_workdirs):
    from helpers import mammo_study

    assert CANDIDATES["mammo"] == (None, LESION_PROBE) and CANDIDATES["chest"] == (None, "lite0")
    smoke = config.get_profile("smoke")
    model, data, cfg, _ = _task_run("mammo", "mias_lesions", smoke, None, None, LESION_PROBE)
    best = mammo_study.lesion_model(seed=0)
    assert cfg == best.config.replace(name=f"app-mammo-{best.config.name}")
    assert cfg.schedule == "fitted" and cfg.stats == mammo_study.IMAGENET_GREY
    assert model.create_args["name"] == mammo_study.FEATURE_MODEL and model.pretrained_source
    assert data[0].image_size == best.crop.image_size and data[0].meta["crop_rule"].startswith("square of side")
    record = train(model, data, cfg, profile=smoke, progress=False)
    assert record.history == [] and record.metrics["test"]["n"] == len(data[2])
    card = read_card(record.checkpoint)
    assert (card.mean, card.std) == mammo_study.IMAGENET_GREY and card.pretrained_init
    assert card.input_rule == data[0].meta["crop_rule"]
    assert card.training_images == {"images": len(data[0]), "patients": len(set(data[0].patient_ids))}
    # the saved model answers as the regression fitted on the training crops alone
    feats = mammo_study.pooled_features(mammo_study.pretrained_backbone(), data[0].images)
    probe = mammo_study.fit_probe(feats, data[0].labels)
    with torch.no_grad():
        saved = torch.softmax(record.model.eval()(mammo_study._inputs(data[0].images)), -1)[:, 1].numpy()
    np.testing.assert_allclose(saved, probe.predict_proba(feats)[:, 1], atol=1e-4)
    with pytest.raises(ValueError, match="unknown mammogram candidate"):
        _task_run("mammo", "mias_lesions", smoke, None, None, "resnet10t")


def test_blood_falls_back_to_bloodmnist_not_a_stand_in(tmp_path, tmp_workdirs, monkeypatch):
    write_synthetic("bloodmnist", tmp_path / "data" / "medmnist", flag="bloodmnist", counts=(8, 4, 4))
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "data"))
    name, source, why = choose_dataset("blood", download=False)
    assert (name, source) == ("bloodmnist", "real") and "re-cut" in why


def test_the_chest_model_is_the_lung_chapters(real_data, tmp_workdirs):
    assert APP_MODELS["chest"] == (("nih_64px", "nih", "chestmnist", "pneumoniamnist"), "thesis000_resnet50")
    smoke = config.get_profile("smoke")
    arch, data, cfg, prof = _task_run("chest", "nih_64px", smoke, None, None)
    chapter = configs.lungs_experiment("cnn", smoke, seed=0)
    assert arch == chapter.model and cfg == chapter.config.replace(bootstrap=0, name=f"app-chest-{chapter.config.name}")
    assert data[0].meta["preprocess"] == "equalize" and data[0].images.shape[-1] == 3
    assert data[0].task == "multilabel" and {d.source for d in data} == {"real"} and prof is smoke
    assert configs.get_config("lungs_quick") == configs.lungs_experiment("cnn", "quick", seed=0).config
    quick = config.get_profile("quick")
    arch, data, cfg, _ = _task_run("chest", "nih_64px", quick, None, None, "lite0")
    lite0 = configs.lungs_experiment("lite0", quick, seed=0)
    assert arch == lite0.model and cfg == lite0.config.replace(bootstrap=0, name=f"app-chest-{lite0.config.name}")
    assert cfg.pretrained and data[0].images.shape[1] == lite0.config.image_size == 96


def test_the_app_serves_the_candidate_with_the_best_validation_metric(capsys):
    from helpers.app_models import CANDIDATES, _served

    assert CANDIDATES["blood"] == (None, configs.BLOOD_CELLS_PRETRAINED)  # from scratch and pretrained
    base = {"task": "blood", "no_better_than_chance": False, "valid_metric": "balanced_accuracy"}
    scratch = base | {"model": "resnet10t", "valid_score": 0.80}
    lite0 = base | {"model": "tf_efficientnet_lite0", "valid_score": 0.91}
    assert _served([scratch, lite0]) is lite0 and "serves tf_efficientnet_lite0" in capsys.readouterr().out
    # a candidate at chance is never served, whatever its validation number
    assert _served([scratch, lite0 | {"no_better_than_chance": True, "valid_score": 0.99}]) is scratch
    assert _served([scratch]) is scratch
