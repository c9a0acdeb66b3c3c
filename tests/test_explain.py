"""Grad-CAM, attention rollout and overlays (helpers.explain)."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from torch import nn

from helpers import explain
from helpers.models import vit

SIZE = 64


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    timm_vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3, img_size=SIZE).eval()
    return {
        "resnet18": timm.create_model("resnet18", pretrained=False, num_classes=3).eval(),
        "timm_vit": timm_vit,
        "ours": vit.from_timm(timm_vit).eval(),
    }


@pytest.mark.parametrize("name", ["resnet18", "timm_vit", "ours"])
@pytest.mark.parametrize("method", ["auto", "gradcam"])
def test_heatmap_shapes_and_range(models, name, method):
    torch.manual_seed(0)
    model = models[name]
    one = explain.explain(model, torch.randn(3, SIZE, SIZE), method=method)
    assert one.shape == (SIZE, SIZE) and one.dtype == np.float32
    assert one.min() >= 0.0 and one.max() <= 1.0 and one.max() > 0.99  # scaled to [0, 1]
    many = explain.explain(model, torch.randn(2, 3, SIZE, SIZE), method=method, target=1)
    assert many.shape == (2, SIZE, SIZE)
    assert all(p.requires_grad for p in model.parameters()) and not model.training


def test_auto_picks_rollout_for_vits(models):
    x = torch.randn(1, 3, SIZE, SIZE)
    np.testing.assert_allclose(explain.explain(models["ours"], x), explain.rollout_map(models["ours"], x)[0])
    with pytest.raises(ValueError, match="not a Vision Transformer"):
        explain.explain(models["resnet18"], x, method="rollout")
    with pytest.raises(ValueError, match="method"):
        explain.explain(models["ours"], x, method="lime")
    with pytest.raises(TypeError):
        explain.explain(models["ours"], np.zeros((SIZE, SIZE, 3)))


def test_target_layers():
    resnet = timm.create_model("resnet18", pretrained=False)
    assert explain.gradcam_target_layer(resnet) is resnet.layer4[-1]
    ours = vit.vit_scratch_tiny(img_size=32, depth=2)
    assert explain.gradcam_target_layer(ours) is ours.blocks[-1].norm1


def test_timm_attention_hook_equals_our_maps(models):
    """Hooking timm's softmax gives the same maps as our model's stored ones (same weights)."""
    x = torch.randn(2, 3, SIZE, SIZE)
    fused_before = [b.attn.fused_attn for b in models["timm_vit"].blocks]
    theirs = explain.attention_maps(models["timm_vit"], x)
    ours = explain.attention_maps(models["ours"], x)
    assert [b.attn.fused_attn for b in models["timm_vit"].blocks] == fused_before  # restored
    assert len(theirs) == len(ours) == 12
    for a, b in zip(theirs, ours):
        assert a.shape == (2, 3, 17, 17)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard", [0.0, 0.5])
def test_rollout_rows_sum_to_one(models, fusion, discard):
    maps = explain.attention_maps(models["ours"], torch.randn(2, 3, SIZE, SIZE))
    joint = explain.rollout(maps, head_fusion=fusion, discard_ratio=discard)
    assert joint.shape == (2, 17, 17)
    torch.testing.assert_close(joint.sum(-1), torch.ones(2, 17))
    assert (joint >= 0).all()


def test_rollout_by_hand():
    """Two blocks, two heads, three tokens: the formula worked out with NumPy."""
    g = torch.Generator().manual_seed(0)
    layers = [torch.rand(1, 2, 3, 3, generator=g).softmax(-1) for _ in range(2)]
    expected = np.eye(3)
    for a in layers:
        fused = a[0].mean(0).numpy() * 0.5 + 0.5 * np.eye(3)
        fused = fused / fused.sum(1, keepdims=True)
        expected = fused @ expected
    np.testing.assert_allclose(explain.rollout(layers)[0].numpy(), expected, rtol=1e-5)
    # identity attention (each token attends to itself) rolls out to the identity
    eye = torch.eye(3).expand(1, 2, 3, 3)
    torch.testing.assert_close(explain.rollout([eye, eye]), torch.eye(3)[None])
    with pytest.raises(ValueError):
        explain.rollout(layers, head_fusion="median")


def test_vit_reshape_transform_is_row_major():
    model = vit.vit_scratch_tiny(img_size=(32, 48), patch_size=16, depth=1)  # grid 2 x 3
    tokens = torch.arange(1 + 6, dtype=torch.float32).view(1, 7, 1).expand(1, 7, 4)
    image = explain.vit_reshape_transform(model)(tokens)
    assert image.shape == (1, 4, 2, 3)
    assert image[0, 0].tolist() == [[1, 2, 3], [4, 5, 6]]  # token 1 + r*3 + c at (r, c), class token dropped


class ColourCNN(nn.Module):
    """A model whose answer is known: the class-0 logit is the mean red response, the class-1
    logit the mean green response (``conv`` is the identity on colours, the layer Grad-CAM reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        self.head = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_gradcam_known_answer():
    """Red square top-right, green square bottom-left: class 0 must light up the top-right
    quadrant and class 1 the bottom-left (a transposed or flipped map would fail)."""
    x = torch.zeros(1, 3, 32, 32)
    x[0, 0, 4:12, 20:28] = 1.0  # red, top-right
    x[0, 1, 20:28, 4:12] = 1.0  # green, bottom-left
    model = ColourCNN().eval()
    for cls, (rows, cols) in {0: (slice(0, 16), slice(16, 32)), 1: (slice(16, 32), slice(0, 16))}.items():
        heat = explain.explain(model, x, method="gradcam", target=cls)
        r, c = np.unravel_index(heat.argmax(), heat.shape)
        assert rows.start <= r < rows.stop and cols.start <= c < cols.stop
        inside = heat[rows, cols].sum()
        assert inside > 0.95 * heat.sum()


def test_gradcam_equals_plain_grad_cam_package(models):
    """Backpropagating only from the target layer gives the package's own result."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = torch.randn(2, 3, SIZE, SIZE)
    for name in ("resnet18", "ours"):
        model = models[name]
        layer = explain.gradcam_target_layer(model)
        reshape = explain.vit_reshape_transform(model) if explain.is_vit(model) else None
        with GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
            ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(2)] * 2)
        np.testing.assert_allclose(explain.grad_cam(model, x, target=2), ref, atol=1e-5)


def test_overlay():
    img = np.full((20, 30, 3), 100, dtype=np.uint8)
    heat = np.zeros((5, 5), dtype=np.float32)
    heat[0, 0] = 1.0
    out = explain.overlay(img, heat, alpha=0.5)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(explain.overlay(img, heat, alpha=0.0), img)
    grey = explain.overlay(img[..., 0], np.ones((20, 30)), alpha=1.0, cmap="jet")
    np.testing.assert_array_equal(grey[0, 0], [128, 0, 0])  # jet at 1.0 is dark red
    np.testing.assert_array_equal(out[19, 29], [50, 50, 114])  # cold corner: half grey 100, half jet(0) = (0, 0, 128)
    assert out[0, 0, 0] > 100 > out[0, 0, 2]  # hot corner: red
    with pytest.raises(ValueError, match="uint8"):
        explain.overlay(img.astype(np.float32), heat)
    with pytest.raises(ValueError, match="NaN"):
        explain.overlay(img, np.full((5, 5), np.nan))


def test_planned_map_follows_the_plan_and_refuses_coarse_grids(models):
    x = torch.randn(2, 3, 32, 32)
    maps, plan = explain.planned_map(models["resnet18"], x)
    assert plan.method == "gradcam" and plan.side >= explain.MIN_MAP_SIDE  # not layer4's 1x1 at 32 px
    assert plan.layer.startswith(("layer1", "layer2"))
    assert maps.shape == (2, 32, 32) and 0.0 <= maps.min() and maps.max() <= 1.0
    layer = dict(models["resnet18"].named_modules())[plan.layer]
    np.testing.assert_allclose(maps, explain.grad_cam(models["resnet18"], x, target_layer=layer), atol=1e-6)
    with pytest.raises(explain.NoMapError, match="grid"):  # 64 px in 16 px patches: a 4x4 grid
        explain.planned_map(models["timm_vit"], torch.randn(1, 3, SIZE, SIZE))
