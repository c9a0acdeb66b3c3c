"""Thesis 002's runs and the mammography chapter's fine-tuning as named configurations."""

from __future__ import annotations

import pytest

from helpers import configs
from helpers.config import get_profile
from helpers.data.loaders import Augment


def test_thesis002_full_is_the_thesis_recipe_and_named():
    full = configs.thesis002_experiments("full")
    assert list(full) == ["cnn", "vit", "vit_patch16", "vit_128px", "vit_augment", "vit_12_layers"]
    for key, exp in full.items():
        c = exp.config
        assert (c.optimizer, c.lr, c.weight_decay, c.batch_size, c.epochs) == ("adamw", 1e-3, 1e-4, 256, 50), key
        assert c.pretrained is False and configs.get_config(f"thesis002_{key}") == c
    assert full["cnn"].model == "thesis002_cnn" and full["vit"].model == "thesis002_vit"
    assert full["vit"].config.image_size == 256 and full["vit_128px"].config.image_size == 128
    assert full["vit_patch16"].config.model_kwargs == {"patch_size": 16}
    assert full["vit_12_layers"].config.model_kwargs == {"depth": 12}
    assert full["vit_augment"].config.augment == Augment.thesis002()


def test_thesis002_quick_keeps_the_token_grid():
    quick = configs.thesis002_experiments(get_profile("quick"), seed=3)
    for key, exp in quick.items():
        full = configs.thesis002_experiment(key, "full").config
        c = exp.config
        assert c.image_size * 4 == full.image_size and c.seed == 3 and (c.lr, c.weight_decay) == (1e-3, 1e-4)
        if exp.model == "thesis002_vit":
            patch = (full.model_kwargs or {}).get("patch_size", 32)
            assert c.image_size // c.model_kwargs["patch_size"] == full.image_size // patch, key
    smoke = configs.thesis002_experiment("vit", "smoke").config
    assert (smoke.epochs, smoke.bootstrap) == (1, 0)
    with pytest.raises(KeyError, match="no experiment 'vit_huge'"):
        configs.thesis002_experiment("vit_huge", "quick")


def test_mammography_finetune_says_which_weights():
    full = configs.mammography_finetune("vit", "full")
    quick = configs.mammography_finetune("cnn", "quick")
    assert full.config.pretrained is True and full.config.schedule == "fine_tune" and full.config.image_size == 224
    assert quick.config.pretrained is False and quick.model == "resnet18" and quick.config.image_size == 64
    with pytest.raises(KeyError, match="choose one of"):
        configs.mammography_finetune("svm", "quick")
