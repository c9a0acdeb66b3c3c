"""Where a model looked: Grad-CAM (CNNs and ViTs), attention rollout (ViTs) and heatmap overlays.

* **Grad-CAM** (Selvaraju et al. 2017) through the ``grad-cam`` package (Gildenblat et al. 2021):
  the activations of one layer, weighted by the spatial mean of the class score's gradient,
  summed over channels and passed through a ReLU. For a CNN the layer is the last stage; for a ViT
  it is the last block's ``norm1``, whose tokens are turned back into a channels-first image
  (:func:`vit_reshape_transform`: drop the class token, reshape to the patch grid).
* **Attention rollout** (Abnar & Zuidema 2020): each block's attention, with the residual
  connection added as an identity (``0.5 A + 0.5 I``) and rows renormalised, multiplied through the
  depth; the class token's row over the patches is the map (:func:`rollout`). It does not depend
  on the class asked about.
* :func:`explain` picks one (Grad-CAM for CNNs, rollout for ViTs) and returns a heatmap in
  ``[0, 1]`` at the input's size; :func:`overlay` paints it over the image.
* **A map needs cells to point with** (:func:`explanation_plan`). A ResNet at 64 px ends on a 2×2
  map: Grad-CAM on it can only light up a quarter of the image, the same quarter for every image.
  The plan explains on the deepest stage whose feature map is at least :data:`MIN_MAP_SIDE` cells
  a side for the model's input size (ResNet-18 at 64 px: ``layer2``, 8×8), and a ViT only when its
  patch grid is that fine; when no layer is, it raises :class:`NoMapError`, whose message says so
  (the app shows it instead of a map).

Works for timm CNNs and ViTs and for :class:`helpers.models.vit.VisionTransformer`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "METHODS",
    "MIN_MAP_SIDE",
    "NoMapError",
    "MapPlan",
    "is_vit",
    "explanation_plan",
    "gradcam_target_layer",
    "vit_reshape_transform",
    "grad_cam",
    "attention_maps",
    "rollout",
    "rollout_map",
    "explain",
    "planned_map",
    "overlay",
]

METHODS = ("auto", "gradcam", "rollout")
HEAD_FUSIONS = ("mean", "max", "min")
#: The smallest side, in cells, of the feature map or patch grid a heatmap is made from.
MIN_MAP_SIDE = 7


class NoMapError(ValueError):
    """The model's resolution allows no meaningful heatmap at this input size; the message says why."""


@dataclass(frozen=True)
class MapPlan:
    """How a model is explained at one input size (:func:`explanation_plan`).

    Attributes:
        method: ``"gradcam"`` or ``"rollout"``.
        layer: the Grad-CAM layer's name in ``model.named_modules()`` (``None`` for rollout).
        side: the side, in cells, of the map the heatmap is made from.
        input_size: the input side in pixels.
    """

    method: str
    layer: str | None
    side: int
    input_size: int

    def describe(self) -> str:
        """A plain description, e.g. ``"Grad-CAM on layer2.1 (8×8 cells at 64 px)"``."""
        what = "attention rollout over the patch grid" if self.method == "rollout" else f"Grad-CAM on {self.layer}"
        return f"{what} ({self.side}×{self.side} cells at {self.input_size} px)"


def is_vit(model: nn.Module) -> bool:
    """True for a ViT with a patch embedding, a class token and a list of blocks (timm's or ours)."""
    return all(hasattr(model, a) for a in ("patch_embed", "blocks", "cls_token"))


def _num_prefix_tokens(model: nn.Module) -> int:
    return int(getattr(model, "num_prefix_tokens", 1))


def _grid_size(model: nn.Module, num_tokens: int | None = None) -> tuple[int, int]:
    """The patch grid of a ViT (the square one when ``num_tokens`` does not fit the model's)."""
    grid = tuple(int(g) for g in model.patch_embed.grid_size)
    if num_tokens is not None and grid[0] * grid[1] != num_tokens:
        side = int(round(num_tokens**0.5))
        if side * side != num_tokens:
            raise ValueError(f"cannot lay {num_tokens} patch tokens on a grid")
        grid = (side, side)
    return grid  # type: ignore[return-value]


def gradcam_target_layer(model: nn.Module, input_size: int | None = None) -> nn.Module:
    """The layer Grad-CAM reads: a ViT's last ``blocks[-1].norm1``; for a CNN, given ``input_size``,
    the layer of :func:`explanation_plan` (the deepest stage whose map is at least
    :data:`MIN_MAP_SIDE` cells a side; :class:`NoMapError` when none is), else the last stage
    (``layer4``; other timm CNNs' ``stages``/``features``), else the last ``Conv2d``."""
    if is_vit(model):
        return model.blocks[-1].norm1
    if input_size is not None:
        return dict(model.named_modules())[explanation_plan(model, input_size).layer]
    for name in ("layer4", "stages", "features", "blocks"):
        part = getattr(model, name, None)
        if isinstance(part, nn.Sequential | nn.ModuleList) and len(part) > 0:
            return part[-1]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"no layer for Grad-CAM found in {type(model).__name__}; pass target_layer")
    return convs[-1]


def _cnn_candidates(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers Grad-CAM may read, deepest first: the last block of each stage (``layer4`` ...
    ``layer1``, or each entry of ``stages``/``features``/``blocks``), else every ``Conv2d``."""
    names = [n for n in ("layer4", "layer3", "layer2", "layer1") if isinstance(getattr(model, n, None), nn.Module)]
    if names:
        out = []
        for n in names:
            part = getattr(model, n)
            last = len(part) - 1 if isinstance(part, nn.Sequential | nn.ModuleList) and len(part) else None
            out.append((n if last is None else f"{n}.{last}", part if last is None else part[last]))
        return out
    for name in ("stages", "features", "blocks"):
        part = getattr(model, name, None)
        if isinstance(part, nn.Sequential | nn.ModuleList) and len(part) > 0:
            return [(f"{name}.{i}", part[i]) for i in reversed(range(len(part)))]
    return [(n, m) for n, m in reversed(list(model.named_modules())) if isinstance(m, nn.Conv2d)]


def _in_chans(model: nn.Module) -> int:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(conv.in_channels) if conv is not None else 3


def _map_sides(model: nn.Module, layers: list[tuple[str, nn.Module]], input_size: int) -> dict[str, int]:
    """The smaller side of each layer's output for one ``input_size`` image (one forward pass of zeros)."""
    sides: dict[str, int] = {}
    handles = []
    for name, layer in layers:

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor, name: str = name) -> None:
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                sides[name] = int(min(output.shape[-2:]))

        handles.append(layer.register_forward_hook(hook))
    param = next(model.parameters())
    x = torch.zeros(1, _in_chans(model), input_size, input_size, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return sides


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _vit_plan(model: nn.Module, input_size: int) -> MapPlan:
    patch = getattr(model.patch_embed, "patch_size", None)
    patch = int(patch[0] if isinstance(patch, tuple | list) else patch) if patch is not None else None
    side = input_size // patch if patch else min(_grid_size(model))
    if side < MIN_MAP_SIDE:
        raise NoMapError(
            f"this Vision Transformer cuts its {input_size}×{input_size} px input into a {side}×{side} grid of "
            f"{patch} px patches; a map that coarse cannot show where it looked (a map needs at least "
            f"{MIN_MAP_SIDE}×{MIN_MAP_SIDE} cells), so none is drawn"
        )
    return MapPlan("rollout", None, side, input_size)


def _cnn_plan(model: nn.Module, input_size: int) -> MapPlan:
    layers = _cnn_candidates(model)
    if not layers:
        raise NoMapError(f"{type(model).__name__} has no convolutional layer to explain")
    sides = _map_sides(model, layers, input_size)
    for name, _ in layers:  # deepest first
        if sides.get(name, 0) >= MIN_MAP_SIDE:
            return MapPlan("gradcam", name, sides[name], input_size)
    best = max(sides.values(), default=0)
    raise NoMapError(
        f"at {input_size}×{input_size} px the largest feature map of this network is {best}×{best} cells; a map "
        f"that coarse cannot show where it looked (a map needs at least {MIN_MAP_SIDE}×{MIN_MAP_SIDE}), "
        "so none is drawn"
    )


def explanation_plan(model: nn.Module, input_size: int) -> MapPlan:
    """How to explain ``model`` at ``input_size`` px so that the map can point at something.

    A ViT gets attention rollout when its patch grid is at least :data:`MIN_MAP_SIDE` cells a side;
    a CNN gets Grad-CAM on the deepest stage whose feature map is (found with one forward pass,
    remembered per model and size).

    Raises:
        NoMapError: when no layer of the model is that fine at this size; the message says why.
    """
    if input_size < 1:
        raise ValueError(f"input_size must be positive, got {input_size}")
    cached = _PLANS.setdefault(model, {})
    if input_size not in cached:
        try:
            cached[input_size] = _vit_plan(model, input_size) if is_vit(model) else _cnn_plan(model, input_size)
        except NoMapError as err:
            cached[input_size] = err
    plan = cached[input_size]
    if isinstance(plan, NoMapError):
        raise NoMapError(str(plan))
    return plan


def vit_reshape_transform(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Turn ViT tokens ``(B, prefix + h·w, D)`` into an image ``(B, D, h, w)`` for Grad-CAM."""
    prefix = _num_prefix_tokens(model)

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, prefix:, :]
        gh, gw = _grid_size(model, patches.shape[1])
        return patches.reshape(patches.shape[0], gh, gw, patches.shape[2]).permute(0, 3, 1, 2)

    return reshape


def _as_batch(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a normalised image tensor (C, H, W) or (B, C, H, W), got {type(x).__name__}")
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
    param = next(model.parameters())
    return x.to(device=param.device, dtype=param.dtype)


def _targets(target: int | Sequence[int] | None, batch: int) -> list | None:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if target is None:
        return None  # the predicted class of each image
    if isinstance(target, (int, np.integer)):
        return [ClassifierOutputTarget(int(target))] * batch
    target = list(target)
    if len(target) != batch:
        raise ValueError(f"{len(target)} targets for {batch} images")
    return [ClassifierOutputTarget(int(t)) for t in target]


@contextmanager
def _gradients_from(model: nn.Module, layer: nn.Module) -> Iterator[None]:
    """Track gradients only from ``layer``'s output on: the parameters are frozen while inside
    and the layer's output is made a leaf that requires grad. Grad-CAM needs nothing below the
    layer, so the backward pass covers only what follows it (the head, for a ResNet) — the same
    gradients at a fraction of the cost."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        if isinstance(output, torch.Tensor) and not output.requires_grad:
            output.requires_grad_(True)
        return output

    for p in params:
        p.requires_grad_(False)
    handle = layer.register_forward_hook(hook)  # runs before the Grad-CAM hooks registered later
    try:
        yield
    finally:
        handle.remove()
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: int | Sequence[int] | None = None,
    target_layer: nn.Module | None = None,
) -> np.ndarray:
    """Grad-CAM heatmaps ``(B, H, W)`` in ``[0, 1]`` for the class ``target`` (default: predicted).

    The layer is :func:`gradcam_target_layer` unless given; ViT tokens are reshaped with
    :func:`vit_reshape_transform`. The model's train/eval mode is restored afterwards.
    """
    from pytorch_grad_cam import GradCAM

    x = _as_batch(model, x)
    layer = target_layer if target_layer is not None else gradcam_target_layer(model)
    reshape = vit_reshape_transform(model) if is_vit(model) else None
    was_training = model.training
    with _gradients_from(model, layer):
        cam = GradCAM(model=model, target_layers=[layer], reshape_transform=reshape)
        try:
            with torch.enable_grad():
                maps = cam(input_tensor=x, targets=_targets(target, x.shape[0]))
        finally:
            cam.activations_and_grads.release()
            model.zero_grad(set_to_none=True)
            model.train(was_training)
    return np.clip(np.nan_to_num(maps.astype(np.float32)), 0.0, 1.0)


@contextmanager
def _timm_attention_hooks(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the softmax attention of each block of a timm ViT (fused attention switched off
    while hooked, then restored): the input of ``attn.attn_drop`` is the softmax output."""
    store: list[torch.Tensor] = []
    handles, fused = [], []
    for block in model.blocks:
        attn = block.attn
        if not hasattr(attn, "attn_drop"):
            raise ValueError(f"cannot hook the attention of {type(attn).__name__}")
        fused.append(getattr(attn, "fused_attn", None))
        if fused[-1] is not None:
            attn.fused_attn = False
        handles.append(attn.attn_drop.register_forward_hook(lambda m, inp, out: store.append(inp[0].detach())))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
        for block, f in zip(model.blocks, fused):
            if f is not None:
                block.attn.fused_attn = f


def attention_maps(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every block's attention weights ``(B, heads, N, N)`` for the batch ``x`` (no gradients)."""
    from .models.vit import VisionTransformer

    x = _as_batch(model, x)
    if not is_vit(model):
        raise ValueError(f"{type(model).__name__} is not a Vision Transformer: no attention to roll out")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(model, VisionTransformer):
                return model.forward_attention(x)[1]
            with _timm_attention_hooks(model) as store:
                model(x)
    finally:
        model.train(was_training)
    if len(store) != len(model.blocks):
        raise ValueError(f"captured {len(store)} attention maps for {len(model.blocks)} blocks")
    return list(store)


def rollout(attentions: Sequence[torch.Tensor], head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout: ``R = Â_L ··· Â_1`` with ``Â = rownorm(0.5 fuse(A) + 0.5 I)``.

    Args:
        attentions: per block, ``(B, heads, N, N)`` softmax weights (rows sum to 1).
        head_fusion: how heads are merged: ``"mean"`` (Abnar & Zuidema), ``"max"`` or ``"min"``.
        discard_ratio: drop this fraction of the weakest fused weights of each block (the class
            token's attention to itself is kept) before adding the identity.

    Returns:
        ``(B, N, N)``: row ``i`` is how much token ``i`` at the top draws on each input token;
        every row sums to 1.
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    if not attentions:
        raise ValueError("no attention maps to roll out")
    B, _, N, _ = attentions[0].shape
    eye = torch.eye(N, dtype=torch.float32, device=attentions[0].device)
    result = eye.expand(B, N, N).clone()
    for attn in attentions:
        a = attn.float()
        fused = a.mean(1) if head_fusion == "mean" else a.amax(1) if head_fusion == "max" else a.amin(1)
        if discard_ratio > 0:
            flat = fused.reshape(B, -1).clone()
            k = int(flat.shape[1] * discard_ratio)
            lowest = flat.topk(k, dim=-1, largest=False).indices
            keep_cls = flat[:, 0].clone()
            flat.scatter_(1, lowest, 0.0)
            flat[:, 0] = keep_cls
            fused = flat.reshape(B, N, N)
        a_hat = 0.5 * fused + 0.5 * eye  # the residual connection as an identity
        a_hat = a_hat / a_hat.sum(dim=-1, keepdim=True)  # rows sum to 1 again
        result = a_hat @ result
    return result


def _normalise(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of ``(B, H, W)`` to ``[0, 1]`` (a constant map becomes zeros)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    scaled = (flat - lo) / (hi - lo).clamp_min(1e-12)
    scaled[(hi - lo).squeeze(1) <= 1e-12] = 0.0
    return scaled.reshape(maps.shape)


def rollout_map(model: nn.Module, x: torch.Tensor, head_fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Rollout heatmaps ``(B, H, W)`` in ``[0, 1]``: the class token's rolled-out attention over
    the patches, upsampled (bilinear) to the input's size."""
    x = _as_batch(model, x)
    joint = rollout(attention_maps(model, x), head_fusion, discard_ratio)
    prefix = _num_prefix_tokens(model)
    cls_row = joint[:, 0, prefix:]
    gh, gw = _grid_size(model, cls_row.shape[1])
    grid = cls_row.reshape(-1, 1, gh, gw)
    up = F.interpolate(grid, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
    return _normalise(up).cpu().numpy().astype(np.float32)


def explain(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "auto",
    target: int | Sequence[int] | None = None,
    **kwargs,
) -> np.ndarray:
    """A heatmap in ``[0, 1]`` at the input's size: ``(H, W)`` for one image, ``(B, H, W)`` for more.

    ``method="auto"`` uses attention rollout for a ViT and Grad-CAM otherwise; ``"gradcam"`` and
    ``"rollout"`` force one. ``target`` is the class for Grad-CAM (default: the predicted class);
    rollout ignores it. Extra keyword arguments go to :func:`rollout_map` (``head_fusion``,
    ``discard_ratio``) or :func:`grad_cam` (``target_layer``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    batch = _as_batch(model, x)
    if method == "auto":
        method = "rollout" if is_vit(model) else "gradcam"
    if method == "rollout":
        maps = rollout_map(model, batch, **kwargs)
    else:
        maps = grad_cam(model, batch, target=target, **kwargs)
    return maps[0] if maps.shape[0] == 1 else maps


def planned_map(
    model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | None = None
) -> tuple[np.ndarray, MapPlan]:
    """Heatmaps ``(B, H, W)`` in ``[0, 1]`` made as :func:`explanation_plan` says for the input's size:
    attention rollout over a fine enough patch grid, or Grad-CAM on the deepest layer fine enough to
    point with (not the last one, whose map at a small input is a few cells: nearly uniform once
    stretched over the image). The rule the app follows, for chapters too.

    Returns:
        ``(maps, plan)``.

    Raises:
        NoMapError: when no layer of the model is fine enough at this size; show no map then.
    """
    batch = _as_batch(model, x)
    plan = explanation_plan(model, int(batch.shape[-1]))
    if plan.method == "rollout":
        maps = rollout_map(model, batch)
    else:
        maps = grad_cam(model, batch, target=target, target_layer=dict(model.named_modules())[plan.layer])
    return np.clip(np.asarray(maps, dtype=np.float32), 0.0, 1.0), plan


def overlay(image_uint8: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Paint ``heatmap`` (values in ``[0, 1]``, resized to the image when needed) over an image.

    Args:
        image_uint8: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` ``uint8``.
        heatmap: ``(h, w)`` floats in ``[0, 1]``.
        alpha: weight of the colour map (0: image only, 1: heatmap only).
        cmap: a matplotlib colour map name.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB.
    """
    import matplotlib

    image = np.asarray(image_uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")
    image = image[..., :3]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {heat.shape}")
    if not np.isfinite(heat).all():
        raise ValueError("heatmap has NaN or infinite values")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if heat.shape != image.shape[:2]:
        t = torch.from_numpy(heat)[None, None]
        heat = F.interpolate(t, size=image.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    colours = matplotlib.colormaps[cmap](np.clip(heat, 0.0, 1.0))[..., :3]  # (H, W, 3) in [0, 1]
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * 255.0 * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
