"""Train and evaluate the 2D→3D lifters (:mod:`helpers.pose.lifting`) on a :class:`~helpers.pose.mocap.LiftingSet`."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.pose.mocap import MM_SCALE, LiftingSet, model_inputs

__all__ = ["LiftConfig", "fit_lifter", "predict"]


@dataclass(frozen=True)
class LiftConfig:
    """Training settings of a lifter (``window`` > 1 for a frames-as-tokens model)."""

    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    noise_px: float = 2.0  # augmentation: pixel noise on the training inputs
    drop_p: float = 0.1  # augmentation: share of dropped joints
    window: int = 1
    seed: int = 0
    max_samples: int | None = None

    def replace(self, **changes: Any) -> LiftConfig:
        return replace(self, **changes)


def _inputs(
    data: LiftingSet, index: np.ndarray, window: int, noise_px: float, drop_p: float, seed: int
) -> torch.Tensor:
    if window > 1:
        return model_inputs(data.uv[data.window_index(index, window)], noise_px, drop_p, seed)
    return model_inputs(data.uv[index], noise_px, drop_p, seed)


def _mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).norm(dim=-1).mean()


def fit_lifter(model: nn.Module, data: LiftingSet, config: LiftConfig) -> dict[str, Any]:
    """Train ``model`` with Adam, a cosine schedule and the MPJPE loss; returns the loss per epoch and the time."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n = len(data) if config.max_samples is None else min(len(data), config.max_samples)
    pool = rng.permutation(len(data))[:n]
    steps = config.epochs * max(1, n // config.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=steps, pct_start=0.1)
    target_all = torch.as_tensor(data.xyz / MM_SCALE)
    losses, t0, step = [], time.perf_counter(), 0
    model.train()
    for _ in range(config.epochs):
        order, total = rng.permutation(pool), 0.0
        for b in range(max(1, n // config.batch_size)):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            seed = config.seed * 100_003 + step
            x = _inputs(data, idx, config.window, config.noise_px, config.drop_p, seed)
            loss = _mpjpe_loss(model(x), target_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, step = total + loss.item(), step + 1
        losses.append(total / max(1, n // config.batch_size) * MM_SCALE)
    model.eval()
    return {"loss_mm": losses, "seconds": time.perf_counter() - t0, "steps": step, "samples": n}


@torch.no_grad()
def predict(
    model: nn.Module, data: LiftingSet, window: int = 1, noise_px: float = 0.0, drop_p: float = 0.0, seed: int = 0,
    batch_size: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Predicted and true root-relative 3D joints (mm) for every sample, with optional test-time corruption."""
    model.eval()
    preds = []
    for b in range(0, len(data), batch_size):
        idx = np.arange(b, min(b + batch_size, len(data)))
        preds.append(model(_inputs(data, idx, window, noise_px, drop_p, seed + b)).numpy())
    return np.concatenate(preds) * MM_SCALE, data.xyz
