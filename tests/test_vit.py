"""The from-scratch ViT (helpers.models.vit) against timm's, position-embedding resizing, the
flexible-heads variant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from timm.layers import resample_abs_pos_embed

from helpers.models import vit

TOL = 1e-4  # max abs logit difference allowed against timm (float32)


def _scramble(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every parameter (LayerNorm affine, biases, class token included) random values, so
    the comparison exercises all of them and not only timm's near-trivial initial ones."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = (
                1.0 if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight" else 0.0
            )
            p.copy_(base + 0.05 * torch.randn(p.shape, generator=g))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.fixture(scope="module")
def timm_tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    _scramble(model)
    return model


def test_matches_timm_vit_tiny(timm_tiny):
    ours = vit.from_timm(timm_tiny).eval()
    assert set(ours.state_dict()) == set(timm_tiny.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in timm_tiny.parameters())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = timm_tiny(x)
        out = ours(x)
        # the explicit softmax path (used for attention maps) gives the same logits too
        logits, maps = ours.forward_attention(x)
    assert ref.abs().max() > 0.5, "logits too small for a meaningful comparison"
    assert _max_diff(ref, out) < TOL
    assert _max_diff(ref, logits) < TOL
    assert len(maps) == 12 and maps[0].shape == (2, 3, 197, 197)
    torch.testing.assert_close(maps[-1].sum(-1), torch.ones(2, 3, 197))


def test_load_state_dict_into_factory_model(timm_tiny):
    ours = vit.vit_scratch_tiny(num_classes=1000).eval()
    report = vit.load_timm_state_dict(ours, timm_tiny.state_dict())
    assert report == {"resized": [], "skipped": [], "kept_init": []}
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert _max_diff(timm_tiny(x), ours(x)) < TOL


def test_non_default_config_matches_timm():
    """Patch 8, 64 px, one grey channel, 5 classes, a shallow model."""
    kw = dict(img_size=64, patch_size=8, in_chans=1, num_classes=5, embed_dim=96, depth=3, num_heads=4)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, **kw).eval()
    _scramble(ref, seed=3)
    ours = vit.from_timm(ref).eval()
    assert ours.grid_size == (8, 8) and ours.pos_embed.shape == (1, 65, 96)
    x = torch.randn(4, 1, 64, 64)
    with torch.no_grad():
        assert _max_diff(ref(x), ours(x)) < TOL


def test_resize_pos_embed_identity_and_shapes():
    pe = torch.randn(1, 1 + 14 * 14, 192)
    assert vit.resize_pos_embed(pe, (14, 14)) is pe
    out = vit.resize_pos_embed(pe, (7, 9))
    assert out.shape == (1, 1 + 63, 192)
    torch.testing.assert_close(out[:, :1], pe[:, :1])  # class-token row untouched
    # same numbers as timm's resampling
    torch.testing.assert_close(out, resample_abs_pos_embed(pe, [7, 9], num_prefix_tokens=1))
    with pytest.raises(ValueError):
        vit.resize_pos_embed(torch.randn(1, 1 + 10, 8), (4, 4))  # 10 positions: not a square grid


def test_load_at_other_image_size_and_channels(timm_tiny):
    """224-px RGB weights into a 96-px grey model: position embedding and patch filters adapted."""
    ours = vit.vit_scratch_tiny(num_classes=3, img_size=96, in_chans=1)
    report = vit.load_timm_state_dict(ours, timm_tiny.state_dict())
    assert report["resized"] == ["pos_embed", "patch_embed.proj.weight"]
    assert report["skipped"] == ["head.weight", "head.bias"]
    assert ours.pos_embed.shape == (1, 1 + 36, 192)
    torch.testing.assert_close(ours.patch_embed.proj.weight, timm_tiny.patch_embed.proj.weight.sum(1, keepdim=True))
    assert ours(torch.randn(2, 1, 96, 96)).shape == (2, 3)


def test_set_img_size():
    model = vit.vit_scratch_tiny(num_classes=2, img_size=32, patch_size=8, depth=2).eval()
    with pytest.raises(ValueError, match="set_img_size"):
        model(torch.randn(1, 3, 64, 64))
    model.set_img_size(64)
    assert model.grid_size == (8, 8) and model.pos_embed.shape[1] == 65
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2)


def test_bad_inputs_have_clear_messages(timm_tiny):
    with pytest.raises(ValueError, match="multiple of the patch size"):
        vit.VisionTransformer(img_size=30, patch_size=16)
    with pytest.raises(ValueError, match="attn_variant"):
        vit.VisionTransformer(attn_variant="sparse")
    with pytest.raises(ValueError, match="patch size differs"):
        vit.load_timm_state_dict(vit.vit_scratch_tiny(patch_size=8, img_size=64), timm_tiny.state_dict())
    reg = timm.create_model("vit_tiny_patch16_224", pretrained=False, reg_tokens=4, img_size=32, depth=1)
    with pytest.raises(ValueError, match="reg_token"):
        vit.load_timm_state_dict(vit.vit_scratch_tiny(img_size=32, depth=1), reg.state_dict())
    with pytest.raises(ValueError, match="unknown from-scratch ViT"):
        vit.create_vit_scratch("vit_scratch_huge", num_classes=2)


def test_flexible_equals_standard_at_init(timm_tiny):
    flexible = vit.vit_scratch_tiny(attn_variant="flexible").eval()
    report = vit.load_timm_state_dict(flexible, timm_tiny.state_dict())
    assert len(report["kept_init"]) == 2 * 12  # temperature and span of each block
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert _max_diff(timm_tiny(x), flexible(x)) < TOL


def test_flexible_heads_learn_and_localise():
    torch.manual_seed(0)
    flexible = vit.vit_scratch_tiny(num_classes=3, img_size=64, patch_size=8, depth=2, attn_variant="flexible")
    x = torch.randn(2, 3, 64, 64)
    # its own parameters get gradients at the initial point (it can leave the standard ViT)
    flexible(x).logsumexp(-1).sum().backward()
    attn = flexible.blocks[0].attn
    assert attn.span_decay.grad.abs().min() > 0 and attn.log_temperature.grad.abs().min() > 0
    d = flexible.patch_distance

    def mean_distance() -> float:
        with torch.no_grad():
            _, maps = flexible.eval().forward_attention(x)
        return float((maps[0][..., 1:, :] * d[1:]).sum(-1).mean())  # patch queries only

    wide = mean_distance()
    with torch.no_grad():
        attn.span_decay.fill_(1.0)  # a positive span decay makes the heads local
    assert mean_distance() < 0.5 * wide
    with torch.no_grad():
        attn.span_decay.zero_()
        attn.log_temperature.fill_(-20.0)  # a near-zero temperature makes the weights uniform
        _, maps = flexible.forward_attention(x)
    torch.testing.assert_close(maps[0], torch.full_like(maps[0], 1 / maps[0].shape[-1]))


def test_patch_distance():
    d = vit.patch_distance((2, 3))
    assert d.shape == (7, 7)
    torch.testing.assert_close(d, d.T)
    assert float(d[0, 0]) == 0.0
    # the class token sits at the image centre (0.5, 1): patch (0, 0) is sqrt(1.25) away, (1, 1) 0.5
    assert float(d[0, 1]) == pytest.approx(1.25**0.5) and float(d[0, 5]) == pytest.approx(0.5)
    assert float(d[1, 6]) == pytest.approx(5**0.5)  # (0,0) to (1,2)


@pytest.mark.parametrize("variant", ["standard", "flexible"])
def test_every_parameter_gets_a_gradient(variant):
    """One backward pass from a classification loss reaches every learnable parameter: none has no
    gradient, none has an identically zero one (the last block's spans included, which only the
    class token's row of that block can reach)."""
    torch.manual_seed(0)
    model = vit.vit_scratch_tiny(num_classes=3, img_size=32, patch_size=8, depth=3, attn_variant=variant)
    x = torch.randn(4, 3, 32, 32)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0])).backward()
    named = dict(model.named_parameters())
    missing = [n for n, p in named.items() if p.grad is None]
    zero = [n for n, p in named.items() if p.grad is not None and not torch.any(p.grad != 0)]
    assert not missing and not zero, f"no gradient: {missing}; identically zero gradient: {zero}"
    if variant == "flexible":
        spans = [n for n in named if n.endswith("span_decay")]
        assert len(spans) == 3 and all(torch.all(named[n].grad != 0) for n in spans), "every head's span moves"


def test_create_vit_scratch_names():
    m = vit.create_vit_scratch("vit_scratch_tiny_patch8_64_flexible", num_classes=4, in_chans=1, depth=2)
    assert m.img_size == (64, 64) and m.patch_size == (8, 8) and m.attn_variant == "flexible"
    assert m(torch.randn(1, 1, 64, 64)).shape == (1, 4)
    s = vit.create_vit_scratch("vit_scratch_small", num_classes=2, img_size=32, patch_size=16, depth=1)
    assert s.embed_dim == 384 and s.grid_size == (2, 2)


def test_forward_cost_grows_with_tokens():
    """Activations kept for the backward pass grow with the number of patches (deterministic);
    the explicit attention path keeps the (heads, N, N) matrices, so halving the patch side more
    than quadruples them."""
    costs = {}
    for patch in (16, 8):
        model = vit.vit_scratch_tiny(num_classes=2, img_size=64, patch_size=patch, depth=1)
        model.blocks[0].attn.fused_attn = False
        costs[patch] = vit.forward_cost(model, torch.randn(2, 3, 64, 64), repeats=1)
        assert costs[patch]["time_s"] > 0
        assert all(p.grad is None for p in model.parameters())
    # at least the attention matrices: 2 images x 3 heads x 65^2 floats, softmax kept for backward
    assert costs[8]["activation_bytes"] > 2 * 3 * 65 * 65 * 4
    assert costs[8]["activation_bytes"] > 3 * costs[16]["activation_bytes"]
    with pytest.raises(ValueError):
        vit.forward_cost(model, torch.randn(1, 3, 64, 64), repeats=0)


def test_scaling_exponent():
    assert vit.scaling_exponent([50, 197, 785], [3 * n**1.5 for n in (50, 197, 785)]) == pytest.approx(1.5)
    assert vit.scaling_exponent(pd.Series([1, 2]), np.array([5.0, 5.0])) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="two distinct sizes"):
        vit.scaling_exponent([4, 4], [1, 2])
    with pytest.raises(ValueError, match="positive"):
        vit.scaling_exponent([1, 2], [0, 1])


def test_chapter_experiments_take_the_seed():
    """The ViT and CNN chapters' SEED reaches every run they train (42 when not given, as before)."""
    from helpers import config
    from helpers.configs import cnn_regimes, vit_chapter_experiments

    smoke = config.get_profile("smoke")
    runs = vit_chapter_experiments(smoke, "vit_scratch_tiny_patch8", "resnet18", seed=3)
    assert {run.config.seed for run in runs.values()} == {3}
    default = vit_chapter_experiments(smoke, "vit_scratch_tiny_patch8", "resnet18")
    assert {run.config.seed for run in default.values()} == {42}
    assert {run.config.seed for run in cnn_regimes(3, seed=5).values()} == {5}
    assert {run.config.seed for run in cnn_regimes(3).values()} == {42}
