"""DeiT's distillation token (Touvron et al., ICML 2021) on the book's Vision Transformer.

The student is :class:`helpers.models.vit.VisionTransformer` with one more token: a learned
*distillation token* joins the class token in front of the patches, goes through the same blocks,
and feeds its own head. The class head learns from the labels; the distillation head learns from a
teacher's predictions. With *hard-label distillation*, the variant DeiT found best,

.. math::

    \\mathcal{L} = \\tfrac12\\, \\mathrm{CE}(\\psi(Z_\\mathrm{cls}), y)
                  + \\tfrac12\\, \\mathrm{CE}(\\psi(Z_\\mathrm{dist}), y_t),
    \\qquad y_t = \\arg\\max_c Z_t(c),

where ``Z_t`` are the teacher's logits on the same (augmented) image (:class:`HardDistillationLoss`).

**At inference** the paper adds the softmax outputs of the two heads ("late fusion"). The model does
exactly that: in eval mode it returns ``log((softmax(z_cls) + softmax(z_dist)) / 2)``, logits whose
softmax *is* the average of the two heads' probabilities, so the rest of the book (metrics, the app,
:func:`helpers.inference.probabilities`) reads it like any classifier. (timm's DeiT averages the two
heads' *logits* instead; the difference is small, but this is the paper's rule.) While training with
a teacher (``distilled_training = True``, set by :class:`helpers.training.distill.HardDistillation`)
it returns both heads' logits; without a teacher it returns the fused output, so both heads learn the
labels through it.

Names: ``deit_scratch_<tiny|small|base>[_patch<P>][_<img>]``, as the from-scratch ViTs
(``deit_scratch_tiny_patch4_64``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .vit import VisionTransformer, create_vit_scratch

__all__ = ["DistilledVisionTransformer", "HardDistillationLoss", "late_fusion", "create_deit_scratch"]


def late_fusion(cls_logits: torch.Tensor, dist_logits: torch.Tensor) -> torch.Tensor:
    """``log((softmax(a) + softmax(b)) / 2)``: logits whose softmax is the mean of the two heads'
    probabilities (DeiT's inference rule). One output column (a binary logit) has no softmax: the
    logits are averaged."""
    if cls_logits.shape[-1] < 2:
        return (cls_logits + dist_logits) / 2
    both = torch.stack([cls_logits.log_softmax(-1), dist_logits.log_softmax(-1)])
    return torch.logsumexp(both, dim=0) - math.log(2.0)


class DistilledVisionTransformer(VisionTransformer):
    """The book's ViT with DeiT's distillation token and second head (see the module docstring).

    Arguments are :class:`~helpers.models.vit.VisionTransformer`'s. Tokens are
    ``[class; distillation; patches]``, so ``num_prefix_tokens`` is 2 (attention rollout reads the
    class token's row and skips both prefix tokens).
    """

    num_prefix_tokens = 2

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dist_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        nn.init.trunc_normal_(self.dist_token, std=0.02)
        self.head_dist = self._new_head(self.num_classes)
        self.distilled_training = False

    def _new_head(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        head = nn.Linear(self.embed_dim, num_classes)
        nn.init.trunc_normal_(head.weight, std=0.02)
        nn.init.zeros_(head.bias)
        return head.to(self.pos_embed.device)

    def reset_classifier(self, num_classes: int) -> None:
        """New class and distillation heads for ``num_classes`` outputs."""
        super().reset_classifier(num_classes)
        self.head_dist = self._new_head(num_classes)

    def get_classifier(self) -> nn.Module:
        """Both heads (they form the ``head`` stage of :func:`~helpers.models.vision.model_stages`)."""
        return nn.ModuleList([self.head, self.head_dist])

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        prefix = torch.cat([self.cls_token, self.dist_token], dim=1).expand(x.shape[0], -1, -1)
        return self.pos_drop(torch.cat([prefix, x], dim=1) + self.pos_embed)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> Any:
        """Training with a teacher: ``(cls logits, dist logits)``; otherwise their late fusion
        (:func:`late_fusion`). ``pre_logits``: the mean of the two tokens."""
        z_cls, z_dist = self.head_drop(x[:, 0]), self.head_drop(x[:, 1])
        if pre_logits:
            return (z_cls + z_dist) / 2
        cls_logits, dist_logits = self.head(z_cls), self.head_dist(z_dist)
        if self.training and self.distilled_training:
            return cls_logits, dist_logits
        return late_fusion(cls_logits, dist_logits)


class HardDistillationLoss(nn.Module):
    """DeiT's hard-label distillation: ``(1 - alpha) base(z_cls, y) + alpha CE(z_dist, argmax z_teacher)``.

    ``alpha = 1/2`` is the paper's. ``base`` is the loss on the labels (default cross-entropy; the
    training loop passes the task's, with its label smoothing, class weights and MixUp); the teacher's
    labels are hard, so no label smoothing applies to them.
    """

    def __init__(self, base: nn.Module | None = None, alpha: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.base = base if base is not None else nn.CrossEntropyLoss()
        self.alpha = float(alpha)

    def combine(
        self, label_loss: torch.Tensor, dist_logits: torch.Tensor, teacher_logits: torch.Tensor
    ) -> torch.Tensor:
        """The loss from an already computed label loss (what the fastai callback has after its loss step)."""
        teacher_labels = teacher_logits.argmax(dim=-1)
        return (1.0 - self.alpha) * label_loss + self.alpha * F.cross_entropy(dist_logits.float(), teacher_labels)

    def forward(self, outputs: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor, teacher_logits: torch.Tensor):
        """``outputs`` = (class-head logits, distillation-head logits) of the student."""
        cls_logits, dist_logits = outputs
        return self.combine(self.base(cls_logits, labels), dist_logits, teacher_logits)


def create_deit_scratch(
    name: str, num_classes: int, in_chans: int = 3, img_size: int | None = None, **kwargs: Any
) -> DistilledVisionTransformer:
    """A DeiT student by name, ``deit_scratch_<tiny|small|base>[_patch<P>][_<img>]`` (sizes and
    arguments as :func:`~helpers.models.vit.create_vit_scratch`)."""
    if not name.startswith("deit_scratch_"):
        raise ValueError(f"a DeiT student's name starts with deit_scratch_, got {name!r}")
    model = create_vit_scratch(name, num_classes, in_chans, img_size, model_cls=DistilledVisionTransformer, **kwargs)
    return model  # type: ignore[return-value]
