"""A Vision Transformer written from scratch, block by block, after Dosovitskiy et al. (2021).

The building blocks follow the layout (and the parameter names) of timm's
``vision_transformer.py``, so that a timm ViT's ``state_dict`` loads into :class:`VisionTransformer`
and gives the same logits (:func:`load_timm_state_dict`, :func:`from_timm`):

=================================  ==========================================================
equation                           code
=================================  ==========================================================
``x_p^i E``  (patch embedding)     :class:`PatchEmbed` — a ``P×P`` convolution with stride ``P``
``z_0 = [x_class; x_p E] + E_pos`` ``VisionTransformer._embed`` (``cls_token``, ``pos_embed``)
``z'_l = MSA(LN(z_{l-1})) + z_{l-1}``  :class:`Block` (``norm1``, :class:`Attention`)
``z_l = MLP(LN(z'_l)) + z'_l``     :class:`Block` (``norm2``, :class:`Mlp`)
``y = LN(z_L^0)``                  ``VisionTransformer.forward_features`` / ``forward_head``
=================================  ==========================================================

**Flexible attention heads** (``attn_variant="flexible"``). Thesis 001 names a "ViT with flexible
attention heads" without defining it. Here it means: every head ``h`` learns

* a *temperature* ``tau_h = exp(t_h)`` that sharpens (``tau_h > 1``) or flattens its softmax, and
* a *soft spatial span* ``lambda_h`` that penalises attention to distant patches,

.. math::

    A^h_{ij} = \\operatorname{softmax}_j\\Big(\\tau_h \\frac{q^h_i \\cdot k^h_j}{\\sqrt{d_h}}
               - \\lambda_h\\, \\delta_{ij}\\Big),

where ``delta_ij`` is the Euclidean distance between the centres of patches ``i`` and ``j`` in
units of patches; the class token is placed at the centre of the image (:func:`patch_distance`).
Multiplying the attention weights
by ``exp(-lambda_h delta)`` is a soft, exponentially decaying span in the spirit of the adaptive
span of Sukhbaatar et al. (2019), measured on the 2-D patch grid instead of along a sequence:
``1/lambda_h`` is the distance over which the head's weights fall by a factor ``e``. A head with
``lambda_h > 0`` becomes local (convolution-like), one with ``lambda_h = 0`` stays global, and
``lambda_h < 0`` favours distant patches; for the class token, ``lambda_h > 0`` favours the middle
of the image. Both parameters start at 0, where the variant is *exactly* the standard ViT, and the
gradient of every one of them is not zero there (a unit test checks it), so each head can move away
from it. (With the class token at no place, distance 0, the last block's spans would get exactly
zero gradient: only the class token's row of that block reaches the head.)
They add ``2 × heads`` parameters per block.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ATTN_VARIANTS",
    "VIT_SIZES",
    "PatchEmbed",
    "Attention",
    "Mlp",
    "Block",
    "VisionTransformer",
    "patch_distance",
    "resize_pos_embed",
    "load_timm_state_dict",
    "from_timm",
    "vit_scratch_tiny",
    "vit_scratch_small",
    "vit_scratch_base",
    "create_vit_scratch",
    "forward_cost",
    "scaling_exponent",
]

ATTN_VARIANTS = ("standard", "flexible")

#: embed_dim, depth, num_heads of the standard sizes (Dosovitskiy et al. 2021; Touvron et al. 2021).
VIT_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
}


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"expected an int or a pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


# ----------------------------------------------------------------------------- building blocks


def check_input(x: torch.Tensor, in_chans: int, img_size: tuple[int, int]) -> None:
    """Raise a clear ``ValueError`` unless ``x`` is a ``(B, in_chans, *img_size)`` batch (the patch
    embeddings', :class:`PatchEmbed` and the hybrid's, one check)."""
    if x.ndim != 4 or x.shape[1] != in_chans:
        raise ValueError(f"expected a (B, {in_chans}, H, W) batch, got shape {tuple(x.shape)}")
    if tuple(x.shape[-2:]) != tuple(img_size):
        raise ValueError(
            f"input is {tuple(x.shape[-2:])} but the model was built for {tuple(img_size)}; "
            "call model.set_img_size(...) (interpolates the position embedding) or resize the input"
        )


class PatchEmbed(nn.Module):
    """Cut the image into ``P×P`` patches and project each to ``embed_dim`` (the matrix ``E``).

    A convolution with kernel and stride ``P`` is the same linear map applied to every flattened
    patch, computed in one call. Output: ``(B, N, D)`` with ``N = (H/P)(W/P)`` patches.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int | tuple[int, int] = 16,
        in_chans: int = 3,
        embed_dim: int = 192,
    ) -> None:
        super().__init__()
        self.patch_size = _pair(patch_size)
        self.in_chans = in_chans
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.set_img_size(img_size)

    def set_img_size(self, img_size: int | tuple[int, int]) -> None:
        """Change the expected input size (the grid of patches follows)."""
        size = _pair(img_size)
        ph, pw = self.patch_size
        if size[0] % ph or size[1] % pw:
            raise ValueError(f"image size {size} is not a multiple of the patch size {self.patch_size}")
        self.img_size = size
        self.grid_size = (size[0] // ph, size[1] // pw)
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_chans, self.img_size)
        x = self.proj(x)  # (B, D, H/P, W/P): one D-vector per patch
        return x.flatten(2).transpose(1, 2)  # (B, N, D)


def patch_distance(grid_size: tuple[int, int], num_prefix_tokens: int = 1) -> torch.Tensor:
    """Euclidean distance between token positions, in patches: ``(N, N)`` with ``N = prefix + h·w``.

    A patch sits at its centre on the grid; a prefix (class) token sits at the centre of the image,
    so its distance to a patch is that patch's distance from the image centre (and 0 to another
    prefix token). Placing the class token somewhere matters: only its row of the last block
    reaches the head, and with a row of zeros that block's span would get no gradient at all.
    """
    gh, gw = grid_size
    ys, xs = torch.meshgrid(torch.arange(gh, dtype=torch.float32), torch.arange(gw, dtype=torch.float32), indexing="ij")
    patches = torch.stack([ys.flatten(), xs.flatten()], dim=1)  # (h·w, 2)
    centre = torch.tensor([[(gh - 1) / 2, (gw - 1) / 2]]).expand(num_prefix_tokens, 2)
    coords = torch.cat([centre, patches])  # (prefix + h·w, 2)
    return torch.cdist(coords, coords)


class Attention(nn.Module):
    """Multi-head self-attention: ``softmax(q kᵀ / sqrt(d_h)) v`` per head, then a projection.

    ``variant="flexible"`` adds a learned temperature and a learned soft spatial span per head (see
    the module docstring); it needs the ``distance`` matrix from :func:`patch_distance`.

    Set ``store_attn = True`` to keep the softmax weights ``(B, heads, N, N)`` of the last call in
    ``attn_weights`` (for attention maps and rollout); otherwise the fused kernel
    (``F.scaled_dot_product_attention``) is used, as in timm.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        variant: str = "standard",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        if variant not in ATTN_VARIANTS:
            raise ValueError(f"attn_variant must be one of {ATTN_VARIANTS}, got {variant!r}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.variant = variant
        self.fused_attn = True
        self.store_attn = False
        self.attn_weights: torch.Tensor | None = None
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if variant == "flexible":
            self.log_temperature = nn.Parameter(torch.zeros(num_heads))  # t_h, tau_h = exp(t_h)
            self.span_decay = nn.Parameter(torch.zeros(num_heads))  # lambda_h

    def forward(self, x: torch.Tensor, distance: torch.Tensor | None = None) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, d_h)
        bias = None
        if self.variant == "flexible":
            if distance is None:
                raise ValueError("the flexible attention variant needs the patch distance matrix")
            q = q * self.log_temperature.exp().view(1, -1, 1, 1).to(q.dtype)  # tau_h q
            bias = (-self.span_decay.view(-1, 1, 1) * distance).to(q.dtype)  # -lambda_h delta_ij, (heads, N, N)
        if self.fused_attn and not self.store_attn:
            x = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=self.attn_drop.p if self.training else 0.0
            )
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)  # q k^T / sqrt(d_h)
            if bias is not None:
                attn = attn + bias
            attn = attn.softmax(dim=-1)
            if self.store_attn:
                self.attn_weights = attn.detach()
            x = self.attn_drop(attn) @ v
        x = x.transpose(1, 2).reshape(B, N, C)  # concatenate the heads
        return self.proj_drop(self.proj(x))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, variant={self.variant!r}"


class Mlp(nn.Module):
    """The two-layer MLP of each block: ``Linear → GELU → Linear`` (hidden = ``mlp_ratio · D``)."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class Block(nn.Module):
    """One Pre-LN encoder block: ``z' = MSA(LN(z)) + z``, then ``z'' = MLP(LN(z')) + z'``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        attn_variant: str = "standard",
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop, variant=attn_variant)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor, distance: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), distance)  # z'_l = MSA(LN(z_{l-1})) + z_{l-1}
        x = x + self.mlp(self.norm2(x))  # z_l = MLP(LN(z'_l)) + z'_l
        return x


# ----------------------------------------------------------------------------- the model


class VisionTransformer(nn.Module):
    """ViT with a class token, a learned position embedding and Pre-LN blocks.

    The defaults are ViT-Tiny (``embed_dim=192, depth=12, num_heads=3``, Touvron et al. 2021).
    ``attn_variant="flexible"`` gives every head a learned temperature and soft spatial span (see
    the module docstring). ``num_classes=0`` leaves the head out (``forward`` returns features).
    ``patch_embed`` replaces the :class:`PatchEmbed` with another module that turns images into
    ``(B, N, embed_dim)`` tokens and has the same ``img_size``, ``patch_size``, ``grid_size``,
    ``num_patches`` and ``set_img_size`` (the hybrid's CNN stem, :mod:`helpers.models.hybrid`).
    """

    num_prefix_tokens = 1

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int | tuple[int, int] = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        attn_variant: str = "standard",
        patch_embed: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if attn_variant not in ATTN_VARIANTS:
            raise ValueError(f"attn_variant must be one of {ATTN_VARIANTS}, got {attn_variant!r}")
        self.num_classes = num_classes
        self.embed_dim = self.num_features = embed_dim
        self.attn_variant = attn_variant
        self.patch_embed = (
            patch_embed if patch_embed is not None else PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))  # x_class
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix_tokens + self.patch_embed.num_patches, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, attn_variant)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.register_buffer("patch_distance", self._distance(), persistent=False)
        self.init_weights()

    # -- set-up

    def _distance(self) -> torch.Tensor | None:
        if self.attn_variant != "flexible":
            return None
        return patch_distance(self.patch_embed.grid_size, self.num_prefix_tokens)

    def init_weights(self) -> None:
        """timm's default ViT initialisation: truncated normal (std 0.02) for position embedding and
        linear layers, zero biases, a near-zero class token."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def img_size(self) -> tuple[int, int]:
        return self.patch_embed.img_size

    @property
    def patch_size(self) -> tuple[int, int]:
        return self.patch_embed.patch_size

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.patch_embed.grid_size

    def set_img_size(self, img_size: int | tuple[int, int]) -> None:
        """Make the model take another image size: the position embedding is interpolated
        (bicubic, :func:`resize_pos_embed`) to the new grid of patches."""
        old_grid = self.grid_size
        self.patch_embed.set_img_size(img_size)
        if self.grid_size != old_grid:
            new = resize_pos_embed(self.pos_embed.data, self.grid_size, self.num_prefix_tokens, old_grid)
            self.pos_embed = nn.Parameter(new)
        distance = self._distance()
        self.patch_distance = None if distance is None else distance.to(self.pos_embed.device)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a new (randomly initialised) one for ``num_classes`` outputs."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
        self.head.to(self.pos_embed.device)

    def get_classifier(self) -> nn.Module:
        return self.head

    # -- forward

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # (B, N, D): x_p^i E
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)  # [x_class; x_p^1 E; ...; x_p^N E]
        return self.pos_drop(x + self.pos_embed)  # + E_pos  -> z_0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens after the last block and the final LayerNorm: ``(B, 1 + N, D)``."""
        z = self._embed(x)
        for block in self.blocks:
            z = block(z, self.patch_distance)
        return self.norm(z)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``y = LN(z_L^0)`` is the class token of the normed tokens; the head maps it to logits."""
        y = self.head_drop(x[:, 0])
        return y if pre_logits else self.head(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and every block's attention weights ``(B, heads, 1 + N, 1 + N)`` (detached)."""
        attns = [block.attn for block in self.blocks]
        previous = [a.store_attn for a in attns]
        for a in attns:
            a.store_attn = True
        try:
            logits = self(x)
            maps = [a.attn_weights for a in attns]
        finally:
            for a, keep in zip(attns, previous):
                a.store_attn = keep
                a.attn_weights = None
        return logits, maps  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"img_size={self.img_size}, patch_size={self.patch_size}, attn_variant={self.attn_variant!r}"


# ----------------------------------------------------------------------------- weights from timm


def resize_pos_embed(
    pos_embed: torch.Tensor,
    new_grid: tuple[int, int] | int,
    num_prefix_tokens: int = 1,
    old_grid: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Interpolate the grid part of a position embedding ``(1, prefix + h·w, D)`` to ``new_grid``.

    The prefix (class token) rows are kept; the ``h×w`` grid of vectors is resized bicubically
    (with antialiasing, as timm does). ``old_grid`` defaults to a square grid. An unchanged grid
    returns the input tensor itself.
    """
    new_grid = _pair(new_grid)
    n_grid = pos_embed.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = math.isqrt(n_grid)
        if side * side != n_grid:
            raise ValueError(f"{n_grid} grid positions are not a square; pass old_grid")
        old_grid = (side, side)
    old_grid = _pair(old_grid)
    if old_grid[0] * old_grid[1] != n_grid:
        raise ValueError(f"old_grid {old_grid} does not hold {n_grid} positions")
    if old_grid == new_grid:
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = pos_embed.shape[-1]
    dtype = grid.dtype
    grid = grid.float().reshape(1, old_grid[0], old_grid[1], dim).permute(0, 3, 1, 2)  # (1, D, h, w)
    grid = F.interpolate(grid, size=new_grid, mode="bicubic", align_corners=False, antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], dim).to(dtype)
    return torch.cat([prefix, grid], dim=1)


_UNSUPPORTED = ("reg_token", ".ls1.", ".ls2.", "q_norm", "k_norm", "fc_norm", "norm_pre", "attn_pool", "head.fc")


def _adapt_patch_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Patch-projection weights for another number of input channels (as timm does):
    RGB → grey sums the colour filters; grey → RGB spreads one filter over three."""
    have = weight.shape[1]
    if have == in_chans:
        return weight
    if have == 3 and in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    if have == 1:
        return weight.repeat(1, in_chans, 1, 1) / in_chans
    raise ValueError(f"cannot adapt a {have}-channel patch embedding to {in_chans} channels")


def load_timm_state_dict(model: VisionTransformer, state_dict: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    """Load a timm ViT ``state_dict`` (class token, learned absolute position embedding, Pre-LN
    blocks) into ``model``.

    Adapts what can be adapted: the position embedding is interpolated to the model's grid, the
    patch projection to its input channels, and a head of another size is skipped (kept at its
    initialisation). The flexible variant's own parameters keep their initial values, where the
    model computes exactly what the timm model does.

    Returns:
        ``{"resized": [...], "skipped": [...], "kept_init": [...]}`` — parameter names.

    Raises:
        ValueError: for a timm ViT with parts this model does not have (register tokens, layer
            scale, q/k norm, pooled heads), or for missing or extra parameters.
    """
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    bad = sorted({tag.strip(".") for k in sd for tag in _UNSUPPORTED if tag in k})
    if bad:
        raise ValueError(f"this timm model has parts the from-scratch ViT does not: {bad}")
    own = model.state_dict()
    report: dict[str, list[str]] = {"resized": [], "skipped": [], "kept_init": []}
    new: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key not in own:
            raise ValueError(f"unexpected parameter {key!r} in the timm state dict")
        target = own[key].shape
        if key == "pos_embed" and value.shape != target:
            value = resize_pos_embed(value, model.grid_size, model.num_prefix_tokens)
            report["resized"].append(key)
        elif key == "patch_embed.proj.weight" and value.shape != target:
            if value.shape[-2:] != target[-2:]:
                raise ValueError(f"patch size differs: timm {tuple(value.shape[-2:])}, model {tuple(target[-2:])}")
            value = _adapt_patch_weight(value, target[1])
            report["resized"].append(key)
        elif key.startswith("head.") and value.shape != target:
            report["skipped"].append(key)
            continue
        if value.shape != target:
            raise ValueError(f"{key}: timm shape {tuple(value.shape)} != model shape {tuple(target)}")
        new[key] = value
    missing = [k for k in own if k not in new and k not in report["skipped"]]
    not_allowed = [k for k in missing if not k.endswith(("log_temperature", "span_decay"))]
    if not_allowed:
        raise ValueError(f"the timm state dict lacks {not_allowed}")
    report["kept_init"] = missing
    model.load_state_dict(new, strict=False)
    return report


def from_timm(timm_model: nn.Module, attn_variant: str = "standard") -> VisionTransformer:
    """A :class:`VisionTransformer` with the configuration and weights of a timm ViT."""
    pe = timm_model.patch_embed
    blocks = timm_model.blocks
    if getattr(timm_model, "global_pool", "token") != "token" or getattr(timm_model, "num_prefix_tokens", 1) != 1:
        raise ValueError("only timm ViTs with one class token and class-token pooling are supported")
    if getattr(timm_model, "no_embed_class", False) or getattr(pe, "dynamic_img_pad", False):
        raise ValueError("only timm ViTs whose position embedding covers the class token are supported")
    attn = blocks[0].attn
    model = VisionTransformer(
        img_size=tuple(pe.img_size),
        patch_size=tuple(pe.patch_size),
        in_chans=pe.proj.in_channels,
        num_classes=getattr(timm_model, "num_classes", 0),
        embed_dim=timm_model.embed_dim,
        depth=len(blocks),
        num_heads=attn.num_heads,
        mlp_ratio=blocks[0].mlp.fc1.out_features / timm_model.embed_dim,
        qkv_bias=attn.qkv.bias is not None,
        attn_variant=attn_variant,
    )
    load_timm_state_dict(model, timm_model.state_dict())
    return model.to(next(timm_model.parameters()).device)


# ----------------------------------------------------------------------------- factories


def _make(
    size: str,
    num_classes: int,
    img_size: int,
    patch_size: int,
    in_chans: int,
    model_cls: type[VisionTransformer] = VisionTransformer,
    **kwargs: Any,
) -> VisionTransformer:
    cfg = dict(VIT_SIZES[size])
    cfg.update(kwargs)
    return model_cls(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes, **cfg)


def vit_scratch_tiny(
    num_classes: int = 1000, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, **kwargs: Any
) -> VisionTransformer:
    """ViT-Tiny (D 192, 12 blocks, 3 heads, about 5.7M parameters at 224 px / patch 16)."""
    return _make("tiny", num_classes, img_size, patch_size, in_chans, **kwargs)


def vit_scratch_small(
    num_classes: int = 1000, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, **kwargs: Any
) -> VisionTransformer:
    """ViT-Small (D 384, 12 blocks, 6 heads)."""
    return _make("small", num_classes, img_size, patch_size, in_chans, **kwargs)


def vit_scratch_base(
    num_classes: int = 1000, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, **kwargs: Any
) -> VisionTransformer:
    """ViT-Base (D 768, 12 blocks, 12 heads)."""
    return _make("base", num_classes, img_size, patch_size, in_chans, **kwargs)


_NAME = re.compile(r"^(?:vit|deit)_scratch_(tiny|small|base)(?:_patch(\d+))?(?:_(\d+))?(_flexible)?$")


def create_vit_scratch(
    name: str,
    num_classes: int,
    in_chans: int = 3,
    img_size: int | None = None,
    model_cls: type[VisionTransformer] = VisionTransformer,
    **kwargs: Any,
) -> VisionTransformer:
    """Build a from-scratch ViT from a name ``vit_scratch_<tiny|small|base>[_patch<P>][_<img>][_flexible]``.

    Examples: ``vit_scratch_tiny`` (patch 16, 224 px), ``vit_scratch_tiny_patch8_64``,
    ``vit_scratch_small_patch16_flexible``. An explicit ``img_size`` wins over the name's.
    Keyword arguments go to :class:`VisionTransformer` (``depth=6``, ``drop_rate=0.1``, ...);
    ``model_cls`` builds a subclass with the same arguments (the DeiT student, ``deit_scratch_...``).
    """
    match = _NAME.match(name)
    if not match:
        raise ValueError(
            f"unknown from-scratch ViT {name!r}; use vit_scratch_<tiny|small|base>[_patch<P>][_<img>][_flexible]"
        )
    size, patch, img, flexible = match.groups()
    kwargs.setdefault("patch_size", int(patch) if patch else 16)
    size_px = img_size or (int(img) if img else 224)
    if flexible:
        kwargs["attn_variant"] = "flexible"
    return _make(size, num_classes, size_px, in_chans=in_chans, model_cls=model_cls, **kwargs)


# ----------------------------------------------------------------------------- cost


def forward_cost(model: nn.Module, x: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """What one training step's forward and backward pass on ``x`` costs: the median wall time
    of ``repeats`` passes (after one warm-up), and the bytes of activations autograd keeps for the
    backward pass (each storage counted once, parameters not counted), measured with
    ``torch.autograd.graph.saved_tensors_hooks``.

    On CUDA the peak of allocated memory during a pass is reported too (``cuda_peak_bytes``).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    was_training = model.training
    model.train()
    cuda = x.device.type == "cuda"
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
        out.float().sum().backward()  # warm-up, and the saved-activation count
        times = []
        peak = 0
        for _ in range(repeats):
            model.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize(x.device)
                torch.cuda.reset_peak_memory_stats(x.device)
            t0 = time.perf_counter()
            model(x).float().sum().backward()
            if cuda:
                torch.cuda.synchronize(x.device)
                peak = max(peak, torch.cuda.max_memory_allocated(x.device))
            times.append(time.perf_counter() - t0)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    result = {"time_s": float(sorted(times)[len(times) // 2]), "activation_bytes": float(sum(saved.values()))}
    if cuda:
        result["cuda_peak_bytes"] = float(peak)
    return result


def scaling_exponent(sizes: Sequence[float], costs: Sequence[float]) -> float:
    """The exponent ``k`` of ``cost ≈ c · size**k``: the slope of a least-squares line through
    ``(log size, log cost)``. ``k > 1`` is growth faster than linear (``k = 2`` for a cost that is all
    attention matrices); it needs at least two distinct sizes and positive values."""
    x = torch.tensor([float(v) for v in sizes], dtype=torch.float64)  # lists, arrays, pandas Series
    y = torch.tensor([float(v) for v in costs], dtype=torch.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2 or len(set(x.tolist())) < 2:
        raise ValueError(f"need matching 1-D sizes and costs with two distinct sizes, got {sizes!r} and {costs!r}")
    if bool((x <= 0).any() or (y <= 0).any()):
        raise ValueError("sizes and costs must be positive to fit a power law")
    lx, ly = x.log(), y.log()
    lx_c = lx - lx.mean()
    return float((lx_c * (ly - ly.mean())).sum() / (lx_c**2).sum())
