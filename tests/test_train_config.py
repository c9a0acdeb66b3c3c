"""TrainConfig, the named configurations and the schedule table, without training anything."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest

from helpers import config as settings
from helpers.configs import (
    BLOOD_CELLS_CPU_AUGMENT,
    CONFIGS,
    RECIPES,
    blood_cells_config,
    blood_cells_experiments,
    blood_cells_model,
    blood_cells_plan,
    blood_cells_profile,
    budget_profile,
    cnn_chapter_epochs,
    cnn_chapter_plan,
    cnn_regimes,
    config_table,
    get_config,
    list_configs,
    thesis004_config,
    vit_chapter_experiments,
    vit_chapter_plan,
)
from helpers.data.loaders import Augment
from helpers.train import SCHEDULES, Plateau, TrainConfig, resolve_config


def test_defaults_are_fastais_one_cycle_and_mixup_true_is_alpha_0_4():
    assert TrainConfig() == RECIPES["one_cycle"]
    assert TrainConfig(mixup=True).mixup == 0.4 and TrainConfig(mixup=False).mixup == 0.0
    assert RECIPES["three_stage"].plateau == Plateau(factor=0.1, patience=10, min_delta=1e-4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().lr = 1.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedule": "cosine"}, "unknown schedule 'cosine'"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        ({"grad_accum": 0}, "grad_accum must be >= 1"),
        ({"epochs": 0}, "nothing to train"),
        ({"mixed_precision": "fp8"}, "mixed_precision must be one of"),
        ({"schedule": "three_stage"}, "three_stage needs stage_epochs"),
        ({"plateau": {"factor": 10}}, "plateau factor"),
        ({"schedule": "fitted", "epochs": 2}, "'fitted' schedule trains nothing"),
        ({"stats": ((0.5,), (0.2, 0.2))}, "stats must be"),
        ({"stats": ((0.5,), (0.0,))}, "stats must be"),
    ],
)
def test_impossible_settings_are_refused_with_their_name(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig().replace(**changes)


def test_replace_and_from_dict_refuse_unknown_names():
    with pytest.raises(TypeError, match=r"no setting\(s\) \['epoch'\]"):
        TrainConfig().replace(epoch=3)
    with pytest.raises(TypeError, match="recipie"):
        TrainConfig.from_dict({"recipie": "one_cycle"})
    with pytest.raises(ValueError, match="three_stage sets its own"):
        RECIPES["three_stage"].replace(freeze_epochs=2)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_named_config_survives_json(name):
    config = get_config(name)
    text = json.dumps(config.to_dict())
    assert TrainConfig.from_dict(json.loads(text)) == config


def test_to_dict_is_yaml_safe():
    yaml = pytest.importorskip("yaml")
    config = get_config("blood_cells_quick").replace(model_kwargs={"patch_size": 4}, class_weights=(1.0, 2.0))
    again = TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again == config and isinstance(again.augment, Augment) and again.class_weights == (1.0, 2.0)


def test_named_configs_are_listed_recipes_first():
    names = list_configs()
    assert names[:5] == ["one_cycle", "constant", "fastai_fine_tune", "three_stage", "adamw"]
    assert {"blood_cells_quick", "blood_cells_smoke", "thesis004_resnet18", "thesis004_vit_large_mixup_ls"} <= set(
        names
    )
    with pytest.raises(KeyError, match="unknown configuration 'sgd'"):
        get_config("sgd")
    assert get_config("thesis004_vit_large_mixup_ls") == thesis004_config("vit_large_mixup_ls")


def test_resolve_config_fills_the_profile_defaults():
    smoke = settings.get_profile("smoke")
    resolved = resolve_config("constant", smoke, "thesis002_cnn")
    assert resolved.epochs == smoke.epochs and resolved.batch_size == smoke.batch_size and resolved.pretrained is False
    assert resolve_config(get_config("constant").replace(epochs=0, freeze_epochs=2), smoke).epochs == 0


class _FakeLearner:
    """Records what a schedule asks of the learner, with the history stage at each fit."""

    def __init__(self):
        self.calls, self.history = [], SimpleNamespace(stage="fit")

    def freeze(self):
        self.calls.append("freeze")

    def unfreeze(self):
        self.calls.append("unfreeze")

    def freeze_to(self, n):
        self.calls.append(f"freeze_to({n})")

    def fit(self, n, lr):
        self.calls.append(("fit", n, lr, self.history.stage))

    def fit_one_cycle(self, n, lr, **kwargs):
        self.calls.append(("fit_one_cycle", n, lr, kwargs, self.history.stage))


def _run(config):
    learn = _FakeLearner()
    return SCHEDULES[config.schedule](learn, config), learn.calls


def test_schedules_freeze_fit_and_label_the_stages():
    assert set(SCHEDULES) == {"one_cycle", "constant", "fine_tune", "three_stage", "fitted"}
    assert _run(RECIPES["one_cycle"].replace(schedule="fitted", epochs=0)) == ([], [])  # a fitted model: nothing
    stages, calls = _run(RECIPES["one_cycle"].replace(freeze_epochs=2, epochs=3))
    assert stages == [2, 3]
    assert calls == [
        "freeze",
        ("fit_one_cycle", 2, 1e-3, {}, "frozen"),
        "unfreeze",
        ("fit_one_cycle", 3, slice(1e-3 / 10, 1e-3), {}, "unfrozen"),
    ]
    assert _run(RECIPES["constant"].replace(epochs=4)) == ([4], [("fit", 4, 1e-3, "fit")])
    lr = RECIPES["fastai_fine_tune"].lr
    stages, calls = _run(RECIPES["fastai_fine_tune"].replace(freeze_epochs=1, epochs=2))
    assert stages == [1, 2]
    assert calls == [
        "freeze",
        ("fit_one_cycle", 1, slice(lr), {"pct_start": 0.99}, "frozen"),
        "unfreeze",
        ("fit_one_cycle", 2, slice(lr / 2 / 100, lr / 2), {"pct_start": 0.3, "div": 5.0}, "unfrozen"),
    ]
    stages, calls = _run(RECIPES["three_stage"].replace(epochs=7))
    assert stages == [4, 2, 1]
    assert calls == [
        "freeze",
        ("fit", 4, 1e-4, "head"),
        "freeze_to(-2)",
        ("fit", 2, 1e-4, "last_block"),
        "unfreeze",
        ("fit", 1, 1e-4, "full"),
    ]


def test_fixed_statistics_survive_json_and_resume_comparison():
    cfg = TrainConfig(stats=[[0.449], [0.226]], epochs=1)
    assert cfg.stats == ((0.449,), (0.226,))
    saved = json.loads(json.dumps(cfg.to_dict()))
    assert saved["stats"] == [[0.449], [0.226]] and saved == cfg.to_dict()  # what resume compares
    assert TrainConfig.from_dict(saved) == cfg


def test_frozen_features_never_unfreeze_for_a_second_fit():
    stages, calls = _run(RECIPES["one_cycle"].replace(freeze_epochs=3, epochs=0))
    assert stages == [3] and calls == ["freeze", ("fit_one_cycle", 3, 1e-3, {}, "frozen"), "unfreeze"]


def test_blood_cells_configurations():
    smoke, quick, full = (settings.get_profile(p) for p in ("smoke", "quick", "full"))
    config = blood_cells_config(smoke)
    assert blood_cells_model(smoke) == "resnet10t" and config.name == "resnet10t-smoke"
    assert (config.epochs, config.batch_size, config.image_size, config.lr, config.weight_decay) == (
        1,
        16,
        32,
        3e-3,
        0.05,
    )
    assert (
        config.label_smoothing == 0.1 and config.mixup == 0.0 and config.pretrained is False and config.bootstrap == 0
    )
    assert config.augment == BLOOD_CELLS_CPU_AUGMENT and config.model_kwargs is None
    # a ViT on the CPU: the thesis's architecture without its weights, MixUp on, 4-px patches, 6 blocks
    vit = blood_cells_config(quick, "vit_base_mixup")
    assert blood_cells_model(quick, "vit_base_mixup") == "vit_base_patch16_224"
    assert vit.mixup == 0.4 and vit.model_kwargs == {"patch_size": 4, "depth": 6}
    assert vit.epochs == 20 and vit.bootstrap == 200
    assert blood_cells_config(quick, "vit_base_mixup", mixup=False).mixup == 0.0
    assert blood_cells_config(quick, dataset="bloodmnist").image_size == 28
    assert blood_cells_config(quick, dataset="bloodmnist", image_size=48).image_size == 48
    # full: thesis 004's run at 224 px from pretrained weights
    resnet = blood_cells_config(full)
    assert blood_cells_model(full) == "resnet18.tv_in1k" and resnet.name == "resnet18.tv_in1k-resnet18"
    assert (resnet.recipe, resnet.schedule, resnet.freeze_epochs, resnet.epochs, resnet.lr) == (
        "fastai_fine_tune",
        "fine_tune",
        3,
        13,
        2e-3,
    )
    assert resnet.image_size == 224 and resnet.pretrained is True and resnet.augment == Augment.fastai(min_scale=0.75)
    other = blood_cells_config(full, "vit_small_patch16_224")
    assert blood_cells_model(full, "vit_small_patch16_224") == "vit_small_patch16_224"
    assert other.name == "vit_small_patch16_224-vit_base_mixup" and other.mixup == 0.4 and other.model_kwargs is None
    # the chapter's runs: the ResNet first, the ViT beside it on the CPU; the ResNet alone at full
    runs = blood_cells_experiments(quick, seed=2, batch_size=64)
    assert list(runs) == [
        "resnet10t",
        "vit_tiny_patch16_224",
        "tf_efficientnet_lite0",
        "hybrid_vit_lite0",
        "deit_scratch_tiny",
    ]
    # the DeiT student is the ViT's twin (the same settings, a distillation token added), the hybrid the Lite0's
    vit_cfg, deit_cfg = runs["vit_tiny_patch16_224"].config, runs["deit_scratch_tiny"].config
    assert deit_cfg.replace(name=vit_cfg.name) == vit_cfg
    hybrid_cfg = runs["hybrid_vit_lite0"].config
    assert hybrid_cfg.pretrained and hybrid_cfg.image_size == 96 and hybrid_cfg.mixup > 0
    lite0 = runs["tf_efficientnet_lite0"].config
    assert lite0.pretrained is True and lite0.image_size == 96 and lite0.model_kwargs is None
    assert runs["resnet10t"].config == blood_cells_config(quick).replace(seed=2, batch_size=64)
    assert runs["vit_tiny_patch16_224"].config.model_kwargs == {"patch_size": 4, "depth": 6}
    assert runs["vit_tiny_patch16_224"].config.lr == 1e-3 and runs["resnet10t"].config.lr == 3e-3
    assert list(blood_cells_experiments(full)) == ["resnet18.tv_in1k"]
    assert blood_cells_experiments(quick, image_size=48)["resnet10t"].config.image_size == 48
    # the CPU profiles train a fixed plan that covers every run, not the profile's cap; full the thesis's epochs
    assert blood_cells_plan(full) is None
    for profile in (quick, smoke):
        assert set(blood_cells_experiments(profile)) <= set(blood_cells_plan(profile).runs)
    assert blood_cells_profile(quick).max_train is None and blood_cells_profile(smoke) is smoke


def test_models_chapters_experiments():
    regimes = cnn_regimes(3)
    assert list(regimes) == ["frozen features", "fine-tuning", "full tuning", "thesis 002 CNN", "ImageNet Lite0"]
    lite0 = regimes["ImageNet Lite0"].config
    assert regimes["ImageNet Lite0"].model == "tf_efficientnet_lite0" and lite0.pretrained and lite0.epochs == 3
    assert lite0.image_size == 64 and all(regimes[r].config.image_size is None for r in list(regimes)[:4])
    frozen, fine = regimes["frozen features"].config, regimes["fine-tuning"].config
    assert (frozen.recipe, frozen.freeze_epochs, frozen.epochs) == ("one_cycle", 3, 0)
    assert (fine.recipe, fine.freeze_epochs, fine.epochs) == ("fastai_fine_tune", 1, 2)
    assert regimes["thesis 002 CNN"].model == "thesis002_cnn" and regimes["thesis 002 CNN"].config.recipe == "constant"
    assert regimes["full tuning"].config.name == "resnet18-full_tuning"
    assert cnn_chapter_epochs(settings.get_profile("quick")) == 3
    plan = cnn_chapter_plan(settings.get_profile("quick"))
    assert set(plan.runs) == set(regimes) and {plan[r].epochs for r in regimes} == {3}
    assert (
        set(plan.follow) == set(regimes) - {"full tuning", "ImageNet Lite0"}
        and cnn_chapter_plan(settings.get_profile("smoke")) is None
    )
    assert {e.config.batch_size for e in cnn_regimes(3, batch_size=64).values()} == {64}
    vit = vit_chapter_experiments(settings.get_profile("smoke"), "vit_scratch_tiny_patch8", "resnet18")
    assert [e.model for e in vit.values()] == [
        "resnet18",
        "vit_scratch_tiny_patch8",
        "vit_scratch_tiny_patch8_flexible",
    ]
    assert vit["CNN"].config.model_kwargs is None and vit["ViT"].config.model_kwargs == {"depth": 2}
    assert (
        vit["ViT"].config.epochs == 1 and vit["ViT"].config.label_smoothing == 0.1 and vit["ViT"].config.bootstrap == 0
    )
    # the CPU profiles train a fixed plan (the flexible ViT on the ViT's images); full trains its epochs
    quick, full = settings.get_profile("quick"), settings.get_profile("full")
    assert set(vit_chapter_plan(quick).runs) == set(vit) and vit_chapter_plan(quick).follow == {
        "ViT, flexible heads": "ViT"
    }
    assert vit_chapter_plan(full) is None
    assert vit_chapter_experiments(quick, "vit_scratch_tiny_patch8", "resnet18")["CNN"].config.epochs == 12
    assert budget_profile(quick).max_train is None and budget_profile(full) is full


def test_config_table_shows_what_differs():
    table = config_table(RECIPES)
    assert list(table.index) == list(RECIPES)
    assert {"schedule", "optimizer", "lr", "freeze_epochs", "stage_epochs", "plateau"} <= set(table.columns)
    assert "mixup" not in table.columns and table.loc["three_stage", "lr"] == 1e-4


def test_config_table_cells_are_short():
    from helpers.configs import shown_setting

    assert shown_setting(Augment(flip_vert=True)) == "Augment(flip_vert=True)"
    assert shown_setting({"backbone": "resnet10t", "depth": 2}) == "backbone=resnet10t, depth=2"
    assert shown_setting(None) == "none" and shown_setting(0.1) == 0.1
    cell = config_table({"quick": CONFIGS["blood_cells_quick"]}).loc["quick", "augment"]
    assert cell.startswith("Augment(") and "padding" not in cell
