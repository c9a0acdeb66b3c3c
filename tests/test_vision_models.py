"""The model factory: timm names, the theses' own models (parameter counts), stages, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.models.vision import (
    PretrainedWeightsUnavailable,
    Thesis002ViT,
    count_parameters,
    create_model,
    model_stages,
    param_groups,
)


def test_thesis002_cnn_matches_the_keras_summary():
    # thesis 002's model.summary(): 896 + 18,496 + 73,856 + 147,584 + 3,686,528 + 258
    model = create_model("thesis002_cnn", num_classes=2, img_size=256)
    assert count_parameters(model) == 3_927_618
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [count_parameters(c) for c in convs] == [896, 18_496, 73_856, 147_584]
    assert count_parameters(model.fc1) == 3_686_528 and count_parameters(model.head) == 258
    # the Keras feature maps: 256 → 128 → 63 → 31 → 15, so Flatten gives 15·15·128
    with torch.no_grad():
        feats = model.forward_features(torch.zeros(1, 3, 256, 256))
    assert feats.shape == (1, 128, 15, 15) and model.flat_features == 28_800
    assert model(torch.zeros(2, 3, 256, 256)).shape == (2, 2)


def test_thesis002_cnn_other_sizes_and_channels():
    model = create_model("thesis002_cnn", num_classes=3, in_chans=1, img_size=64)
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 3)
    with pytest.raises(ValueError, match="at least"):
        create_model("thesis002_cnn", num_classes=2, img_size=16)


def test_thesis002_vit_parameter_count_by_hand():
    # patch projection (32·32·3 → 64) + position embedding (64 patches × 64)
    stem = (32 * 32 * 3 * 64 + 64) + 64 * 64
    # per block: 2 LayerNorms, Keras MHA with 4 heads of key size 64 (q, k, v: 64 → 256; out 256 → 64),
    # MLP 64 → 128 → 64
    block = 2 * 128 + 3 * (64 * 256 + 256) + (256 * 64 + 64) + (64 * 128 + 128) + (128 * 64 + 64)
    # final LayerNorm, head MLP on the flattened 64·64 tokens: 4096 → 2048 → 1024 → 2
    head = 128 + (4096 * 2048 + 2048) + (2048 * 1024 + 1024) + (1024 * 2 + 2)
    model = create_model("thesis002_vit", num_classes=2, img_size=256)
    assert isinstance(model, Thesis002ViT)
    assert count_parameters(model) == stem + 8 * block + head == 11_357_378
    model.eval()
    assert model(torch.randn(2, 3, 256, 256)).shape == (2, 2)


def test_thesis002_vit_patch_order_is_row_major_pixels_then_channels():
    model = Thesis002ViT(
        num_classes=2,
        in_chans=2,
        img_size=4,
        patch_size=2,
        projection_dim=8,
        num_heads=2,
        depth=1,
        mlp_units=(16, 8),
        head_units=(8,),
    )
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    patches = model.patchify(x)
    assert patches.shape == (1, 4, 8)
    # second patch (top-right): pixels (0,2), (0,3), (1,2), (1,3), each with its two channels
    expected = torch.tensor([x[0, c, r, col] for r in (0, 1) for col in (2, 3) for c in (0, 1)])
    assert torch.equal(patches[0, 1], expected)


def test_thesis000_resnet50_head_as_in_table_4_2():
    model = create_model("thesis000_resnet50", num_classes=15)
    assert count_parameters(model.fc1) == 524_544 and count_parameters(model.head) == 3_855
    assert isinstance(model.drop, nn.Dropout) and model.drop.p == 0.25
    model.eval()
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 15)
    stages = model_stages(model)
    # the thesis's second stage unfreezes conv5_block3 (timm: backbone.layer4.2)
    assert all(n.startswith("backbone.layer4.2.") for n in stages["last_block"])
    # the first stage trains the whole classifier the thesis adds: Dense 256 and Dense 15
    assert stages["head"] == ["fc1.weight", "fc1.bias", "head.weight", "head.bias"]


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_timm_resnets_grey_input(name):
    model = create_model(name, num_classes=4, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)
    assert model.create_args["name"] == name


def test_timm_vit_at_low_resolution():
    model = create_model("vit_tiny_patch16_224", num_classes=3, img_size=32).eval()
    assert model.patch_embed.img_size == (32, 32)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_from_scratch_vit_names_dispatch():
    from helpers.models.vit import VisionTransformer

    model = create_model("vit_scratch_tiny_patch8_32", num_classes=2, in_chans=1, img_size=32)
    assert isinstance(model, VisionTransformer)
    stages = model_stages(model)
    assert stages["head"] == ["head.weight", "head.bias"]
    assert stages["last_block"][0].startswith("blocks.11.") and "norm.weight" in stages["last_block"]
    with pytest.raises(PretrainedWeightsUnavailable):
        create_model("vit_scratch_tiny_patch8_32", num_classes=2, pretrained=True)


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'resnet1800'"):
        create_model("resnet1800", num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("resnet18", num_classes=0)


def test_pretrained_offline_says_what_to_do(monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # fail at once instead of retrying
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsUnavailable, match="pretrained=False"):
        create_model("resnet18", num_classes=2, pretrained=True)
    with pytest.raises(PretrainedWeightsUnavailable, match="no pretrained weights"):
        create_model("thesis002_cnn", num_classes=2, pretrained=True)


def test_which_models_have_pretrained_weights():
    from helpers.models.vision import has_pretrained_weights

    assert has_pretrained_weights("resnet18") and has_pretrained_weights("resnet18.tv_in1k")
    assert has_pretrained_weights("thesis000_resnet50")
    assert not has_pretrained_weights("thesis002_cnn") and not has_pretrained_weights("vit_scratch_tiny_patch8_32")


def test_stages_and_param_groups_of_a_resnet():
    model = create_model("resnet18", num_classes=2)
    stages = model_stages(model)
    assert stages["head"] == ["fc.weight", "fc.bias"]
    assert stages["stem"][0] == "conv1.weight"
    assert all(n.startswith("layer4.1.") for n in stages["last_block"])
    names = [n for s in stages.values() for n in s]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())  # a partition
    groups = param_groups(model)
    assert len(groups) == 3 and sum(len(g) for g in groups) == len(names)
    assert groups[-1][0] is model.fc.weight
