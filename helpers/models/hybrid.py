"""The hybrid Vision Transformer (Dosovitskiy et al., ICLR 2021, section 3.1): Transformer blocks on CNN features.

"As an alternative to raw image patches, the input sequence can be formed from feature maps of a
CNN. In this hybrid model, the patch embedding projection E is applied to patches extracted from a
CNN feature map. As a special case, the patches can have spatial size 1x1" (section 3.1). Here the
CNN is the ImageNet-pretrained EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``, weights from
:mod:`helpers.models.pretrained`), cut after one of its stages; each position of that stage's
feature map becomes a token through a 1x1 convolution to the Transformer's width (:class:`HybridEmbed`).
Everything after the embedding is the book's own ViT (:class:`helpers.models.vit.VisionTransformer`:
class token, learned position embedding, Pre-LN blocks, head), so attention maps and rollout work as
for the ViT from patches.

The default cut, ``feature_stage=4`` (112 channels, stride 16), is the paper's: its hybrids read a
ResNet at stride 16 (stage 3, extended) or 32 (stage 4). A 64-px image then gives a 4x4 grid of 16
tokens, a 112-px image 7x7 = 49. ``feature_stage=2`` (40 channels, stride 8) gives four times as many
tokens from a shallower, less ImageNet-specific part of the network.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .vit import VisionTransformer, _pair, check_input

__all__ = ["HYBRID_BACKBONE", "HybridEmbed", "HybridViT", "create_hybrid_vit"]

#: The pretrained CNN under the hybrid (a timm architecture with a package source of weights).
HYBRID_BACKBONE = "tf_efficientnet_lite0"


def _conv_stride(conv: nn.Module) -> int:
    return int(_pair(conv.stride)[0])


class HybridEmbed(nn.Module):
    """CNN stem → feature map ``(B, C, H/s, W/s)`` → 1x1 convolution to ``embed_dim`` → tokens ``(B, N, D)``.

    ``stem`` is the timm EfficientNet's ``conv_stem``/``bn1`` and its ``blocks`` up to and including
    ``feature_stage``; the network's own head (``conv_head``, pooling, classifier) is not kept.
    ``patch_size`` is the stem's total stride ``s`` (the side of image each token covers, a 16-px
    "patch" at ``feature_stage=4``); with TF "same" padding a side of ``n`` pixels gives ``ceil(n / s)`` tokens.
    """

    def __init__(self, cnn: nn.Module, feature_stage: int, img_size: int | tuple[int, int], embed_dim: int) -> None:
        super().__init__()
        if not 0 <= feature_stage < len(cnn.blocks):
            raise ValueError(f"feature_stage must be in 0..{len(cnn.blocks) - 1}, got {feature_stage}")
        self.feature_stage = feature_stage
        stages = list(cnn.blocks)[: feature_stage + 1]
        self.backbone = nn.Sequential(cnn.conv_stem, cnn.bn1, *stages)
        self.in_chans = int(cnn.conv_stem.in_channels)
        channels = [m.num_features for m in stages[-1].modules() if isinstance(m, nn.BatchNorm2d)][-1]
        strides = [_conv_stride(cnn.conv_stem)] + [_conv_stride(b.conv_dw) for stage in stages for b in stage]
        self._strides = strides
        self.patch_size = (math.prod(strides),) * 2
        self.feature_channels = channels
        self.proj = nn.Conv2d(channels, embed_dim, kernel_size=1)
        self.set_img_size(img_size)

    def set_img_size(self, img_size: int | tuple[int, int]) -> None:
        """The input size, and the token grid it gives (each stride-``s`` layer: ``ceil(n / s)``)."""
        size = _pair(img_size)
        grid = []
        for side in size:
            for s in self._strides:
                side = math.ceil(side / s)
            grid.append(side)
        self.img_size = size
        self.grid_size = (grid[0], grid[1])
        self.num_patches = grid[0] * grid[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_chans, self.img_size)
        x = self.proj(self.backbone(x))  # (B, D, h, w): one D-vector per feature-map position
        return x.flatten(2).transpose(1, 2)  # (B, N, D)


class HybridViT(VisionTransformer):
    """A :class:`~helpers.models.vit.VisionTransformer` whose tokens come from a :class:`HybridEmbed`.

    ``pretrained_source`` says where the CNN's weights came from (``None``: random initialisation).
    """

    def __init__(
        self,
        cnn: nn.Module,
        feature_stage: int = 4,
        img_size: int | tuple[int, int] = 224,
        num_classes: int = 1000,
        embed_dim: int = 192,
        **kwargs: Any,
    ) -> None:
        embed = HybridEmbed(cnn, feature_stage, img_size, embed_dim)
        kwargs.pop("patch_size", None)  # the stem's stride sets it
        super().__init__(
            img_size=img_size,
            patch_size=embed.patch_size,
            in_chans=embed.in_chans,
            num_classes=num_classes,
            embed_dim=embed_dim,
            patch_embed=embed,
            **kwargs,
        )
        self.pretrained_source = getattr(cnn, "pretrained_source", None)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Stages for freezing and discriminative learning rates: the CNN is the stem; the 1x1
        projection, class token and position embedding join the first block; the final norm the last."""
        return {
            "stem": r"^patch_embed\.backbone",
            "blocks": [
                (r"^(?:cls_token|pos_embed|patch_embed\.proj)", (0,)),
                (r"^blocks\.(\d+)", None),
                (r"^norm", (99999,)),
            ],
        }


def create_hybrid_vit(
    num_classes: int,
    in_chans: int = 3,
    pretrained: bool = False,
    img_size: int | None = None,
    *,
    feature_stage: int = 4,
    depth: int = 6,
    embed_dim: int = 192,
    num_heads: int = 3,
    **kwargs: Any,
) -> HybridViT:
    """The hybrid ViT on EfficientNet-Lite0 (``create_model("hybrid_vit_lite0", ...)``).

    Defaults: ViT-Tiny's width (192, 3 heads), 6 blocks, the CNN cut at ``feature_stage=4``
    (stride 16), 224 px. ``pretrained`` loads the CNN's ImageNet weights (an installed package,
    else the hub); the Transformer part always starts from timm's ViT initialisation. Other keyword
    arguments go to :class:`~helpers.models.vit.VisionTransformer` (``drop_rate``, ``mlp_ratio``, ...).
    """
    from .vision import timm_model

    cnn = timm_model(HYBRID_BACKBONE, pretrained, num_classes=0, in_chans=in_chans)
    return HybridViT(
        cnn,
        feature_stage=feature_stage,
        img_size=img_size or 224,
        num_classes=num_classes,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        **kwargs,
    )
