"""Thesis 000's tuberculosis branch: a new binary output on a frozen 15-output detector.

The trained detector (:class:`~helpers.models.vision.Thesis000ResNet50`) keeps its backbone, its
Dense 256 and its 15 outputs; a branch Dense 256 → 128 → ReLU → Dropout 0.2 → Dense 1 reads the
same 256 features (thesis 000, Table 4.5). Only the branch trains, with the weighted BCE of the
15 findings (eq. 4.1) on the tuberculosis labels. The extended model answers 16 logits: the 15
findings, then tuberculosis.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from ..losses import WeightedBCEWithLogits

__all__ = ["TBBranch", "TBExtended", "fit_branch"]


class TBBranch(nn.Module):
    """Dense ``in_features`` → 128 → ReLU → Dropout 0.2 → Dense 1 (one logit)."""

    def __init__(self, in_features: int = 256, hidden: int = 128, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class TBExtended(nn.Module):
    """A frozen detector with :meth:`features` (256 per image) plus a trainable :class:`TBBranch`.

    Raises:
        TypeError: when ``detector`` has no ``features`` method (thesis 000's model has one).
    """

    def __init__(self, detector: nn.Module, branch: TBBranch | None = None) -> None:
        super().__init__()
        if not callable(getattr(detector, "features", None)):
            raise TypeError(f"the detector must expose features(x) -> (B, 256); {type(detector).__name__} does not")
        self.detector = detector
        self.branch = branch or TBBranch(detector.fc1.out_features if hasattr(detector, "fc1") else 256)
        for p in self.detector.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> TBExtended:
        """Only the branch ever trains: the detector stays in eval mode (batch norm, dropout)."""
        super().train(mode)
        self.detector.eval()
        return self

    def tb_logit(self, x: torch.Tensor) -> torch.Tensor:
        """The tuberculosis logit, shape ``(B,)``."""
        with torch.no_grad():
            feats = self.detector.features(x)
        return self.branch(feats).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.detector.features(x)
        return torch.cat([self.detector.head(feats), self.branch(feats)], dim=-1)


def fit_branch(
    model: TBExtended,
    images: torch.Tensor,
    labels: np.ndarray,
    *,
    epochs: int = 5,
    lr: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """Train the branch alone (Adam, ``lr``) with the weighted BCE, weights from ``labels``.

    Args:
        model: the extended model; its detector stays frozen.
        images: normalised input batch ``(N, C, H, W)``.
        labels: 0/1 tuberculosis labels ``(N,)`` of these (training) images.

    Returns:
        ``{"loss": [per-epoch mean loss], "seconds": float, "trainable": int, "frozen": int}``.

    Raises:
        ValueError: when ``labels`` does not match the images or holds only one class.
    """
    y = torch.as_tensor(np.asarray(labels, dtype=np.float32)).reshape(-1, 1)
    if len(y) != len(images):
        raise ValueError(f"{len(y)} labels for {len(images)} images")
    if y.min() == y.max():
        raise ValueError("the tuberculosis labels hold one class only: the branch has nothing to learn")
    loss_fn = WeightedBCEWithLogits.from_labels(y.numpy())
    opt = torch.optim.Adam(model.branch.parameters(), lr=lr, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(seed)
    losses, t0 = [], time.perf_counter()
    model.train()
    for _ in range(epochs):
        order, total = torch.randperm(len(y), generator=gen), 0.0
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            loss = loss_fn(model.tb_logit(images[idx]).unsqueeze(-1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(y))
    model.eval()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return {"loss": losses, "seconds": time.perf_counter() - t0, "trainable": trainable, "frozen": frozen}
