r"""Losses for the book's classifiers: weighted BCE for multi-label tasks, label-smoothing CE.

Thesis 000 (eq. 4.1–4.2), following CheXNet, weights each finding's binary cross-entropy by how
rare its positives are. Written correctly — with the minus sign the thesis drops, and summed
over the :math:`L` outputs (the thesis sums :math:`c = 0 \dots 15`, sixteen terms for fifteen
outputs) — the loss of one image is

.. math::

    \mathcal{L}(\hat y, y) = -\sum_{c=1}^{L}\Big[w_c^{(p)}\, y_c \log \hat y_c
        + w_c^{(n)} (1 - y_c) \log(1 - \hat y_c)\Big],
    \qquad w_c^{(n)} = \frac{n_c}{N},\quad w_c^{(p)} = 1 - w_c^{(n)},

with :math:`n_c` the training images positive for finding :math:`c` among :math:`N`, and
:math:`\hat y_c = \sigma(z_c)` computed from the logits inside the loss (numerically stable).
A batch's loss is the mean of the per-image sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["chexnet_weights", "WeightedBCEWithLogits", "LabelSmoothingCE", "make_loss"]


def chexnet_weights(labels: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative weights per label from a multi-hot ``(N, L)`` matrix (thesis 000, eq. 4.2).

    ``w_n = n_c / N`` (the fraction of positives) and ``w_p = 1 - w_n``: a rare finding's
    positives weigh nearly 1 and its negatives nearly 0.

    Returns:
        ``(w_pos, w_neg)``, float32 tensors of shape ``(L,)``.
    """
    y = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
    if y.ndim != 2 or len(y) == 0:
        raise ValueError(f"labels must be a non-empty (N, L) multi-hot matrix, got shape {tuple(y.shape)}")
    w_neg = y.mean(dim=0)
    return 1.0 - w_neg, w_neg


class WeightedBCEWithLogits(nn.Module):
    """Class-weighted binary cross-entropy on logits, summed over labels, averaged over images.

    Without weights it is the plain multi-label BCE (summed over labels). ``from_labels`` builds
    the CheXNet-style weights of thesis 000 from the training labels.
    """

    def __init__(
        self,
        pos_weight: Sequence[float] | torch.Tensor | None = None,
        neg_weight: Sequence[float] | torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer(
            "pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
        )
        self.register_buffer(
            "neg_weight", None if neg_weight is None else torch.as_tensor(neg_weight, dtype=torch.float32)
        )

    @classmethod
    def from_labels(cls, labels: np.ndarray | torch.Tensor) -> WeightedBCEWithLogits:
        """The thesis 000 loss with weights computed from the training labels."""
        return cls(*chexnet_weights(labels))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype)
        # log σ(z) and log(1 − σ(z)) = log σ(−z), stable for large |z|
        log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
        pos = target * log_p
        neg = (1 - target) * log_not_p
        if self.pos_weight is not None:
            pos = pos * self.pos_weight.to(logits.dtype)
        if self.neg_weight is not None:
            neg = neg * self.neg_weight.to(logits.dtype)
        return -(pos + neg).sum(dim=-1).mean()

    # fastai asks the loss how to turn logits into predictions and probabilities
    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0.5).float()


class LabelSmoothingCE(nn.Module):
    r"""Cross-entropy against smoothed targets :math:`(1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon/K`.

    ``eps=0`` is the plain cross-entropy. Targets may also be soft ``(B, K)`` distributions
    (as MixUp produces); optional per-class ``weight`` multiplies each class's term.
    """

    def __init__(self, eps: float = 0.1, weight: Sequence[float] | torch.Tensor | None = None) -> None:
        super().__init__()
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"label smoothing eps must be in [0, 1), got {eps}")
        self.eps = eps
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.reduction = "mean"  # fastai's MixUp switches this to "none" while it mixes two losses

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = logits.shape[-1]
        logp = F.log_softmax(logits.float(), dim=-1)
        if target.ndim == logits.ndim:  # already a distribution
            q = target.float()
        else:
            q = F.one_hot(target.long(), k).float()
        q = q * (1 - self.eps) + self.eps / k
        per_class = -q * logp
        if self.weight is not None:
            per_class = per_class * self.weight.to(per_class.device)
        loss = per_class.sum(dim=-1)
        return loss if self.reduction == "none" else loss.mean() if self.reduction == "mean" else loss.sum()

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x, dim=-1)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=-1)


def make_loss(
    task: str,
    *,
    label_smoothing: float = 0.0,
    class_weights: str | Sequence[float] | None = None,
    train_labels: np.ndarray | None = None,
) -> nn.Module:
    """The loss for a task: (smoothed, optionally weighted) CE for multi-class and binary tasks,
    (optionally weighted) BCE with logits for multi-label.

    ``class_weights`` is ``None``, a sequence (per class; per label = positive weights for
    multi-label), ``"chexnet"`` (thesis 000's weights, multi-label only, computed from
    ``train_labels``) or ``"balanced"`` (inverse class frequency, multi-class only).
    """
    if task == "multilabel":
        if label_smoothing:
            raise ValueError("label smoothing is defined here for single-label tasks only")
        if class_weights is None:
            return WeightedBCEWithLogits()
        if isinstance(class_weights, str):
            if class_weights != "chexnet":
                raise ValueError(f"multi-label class_weights must be 'chexnet' or a sequence, got {class_weights!r}")
            if train_labels is None:
                raise ValueError("class_weights='chexnet' needs the training labels")
            return WeightedBCEWithLogits.from_labels(train_labels)
        return WeightedBCEWithLogits(pos_weight=class_weights)
    if task not in ("multiclass", "binary"):
        raise ValueError(f"unknown task {task!r}")
    weight = None
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(f"single-label class_weights must be 'balanced' or a sequence, got {class_weights!r}")
        if train_labels is None:
            raise ValueError("class_weights='balanced' needs the training labels")
        counts = np.bincount(np.asarray(train_labels, dtype=np.int64))
        weight = len(train_labels) / (len(counts) * np.maximum(counts, 1))
    elif class_weights is not None:
        weight = class_weights
    return LabelSmoothingCE(eps=label_smoothing, weight=weight)
