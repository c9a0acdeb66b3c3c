"""Train and evaluate the 2D→3D lifters (:mod:`helpers.pose.lifting`) on a :class:`~helpers.pose.mocap.LiftingSet`."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.pose.mocap import MM_SCALE, LiftingSet, model_inputs

__all__ = ["LiftConfig", "martinez_recipe", "fit_lifter", "predict"]


@dataclass(frozen=True)
class LiftConfig:
    """Training settings of a lifter (``window`` > 1 for a frames-as-tokens model).

    The default recipe (the Transformer lifters'): AdamW, a one-cycle schedule, the MPJPE loss.
    :func:`martinez_recipe` gives the Martinez et al. one: Adam, exponential decay, squared error on
    standardised targets, max-norm.
    """

    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    noise_px: float = 2.0  # augmentation: pixel noise on the training inputs
    drop_p: float = 0.1  # augmentation: share of dropped joints
    window: int = 1
    seed: int = 0
    max_samples: int | None = None
    optimizer: str = "adamw"  # or "adam"
    schedule: str = "onecycle"  # or "exp": lr * decay ** (step / (steps / 10)): ``decay`` every tenth of the run
    decay: float = 0.96
    loss: str = "mpjpe"  # or "mse": squared error on targets divided by the model's ``out_std``
    max_norm: float | None = None  # each linear unit's incoming weights rescaled to at most this norm

    def replace(self, **changes: Any) -> LiftConfig:
        return replace(self, **changes)


def martinez_recipe(config: LiftConfig, epochs: int, batch_size: int = 64) -> LiftConfig:
    """Martinez et al. (2017)'s training: Adam at 1e-3 with exponential decay (0.96, here every tenth of the
    run instead of every 100,000 steps), batch 64, squared error on standardised targets, max-norm 1; the
    augmentation and seed of ``config`` are kept."""
    return config.replace(
        epochs=epochs, batch_size=batch_size, lr=1e-3, weight_decay=0.0, optimizer="adam", schedule="exp",
        loss="mse", max_norm=1.0,
    )  # fmt: skip


def _optimiser(model: nn.Module, config: LiftConfig, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """The optimiser and per-step scheduler a config names; says which names exist otherwise."""
    if config.optimizer not in ("adam", "adamw") or config.schedule not in ("onecycle", "exp"):
        raise ValueError(f"unknown optimizer {config.optimizer!r} or schedule {config.schedule!r}")
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    opt = kind(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.schedule == "onecycle":
        return opt, torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=steps, pct_start=0.1)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: config.decay ** (s / max(1.0, steps / 10)))


@torch.no_grad()
def _apply_max_norm(model: nn.Module, max_norm: float | None) -> None:
    """Rescale each linear unit's incoming weight vector to norm at most ``max_norm`` (Srivastava et al. 2014)."""
    if max_norm is None:
        return
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.weight.div_((module.weight.norm(dim=1, keepdim=True) / max_norm).clamp_min(1.0))


def _loss(model: nn.Module, pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mpjpe":
        return _mpjpe_loss(pred, target)
    if kind == "mse":
        scale = model.out_std.reshape(pred.shape[1:]) if hasattr(model, "out_std") else 1.0
        return ((pred - target) / scale).square().mean()
    raise ValueError(f"unknown loss {kind!r}: use 'mpjpe' or 'mse'")


def _inputs(
    data: LiftingSet, index: np.ndarray, window: int, noise_px: float, drop_p: float, seed: int
) -> torch.Tensor:
    if window > 1:
        return model_inputs(data.uv[data.window_index(index, window)], noise_px, drop_p, seed)
    return model_inputs(data.uv[index], noise_px, drop_p, seed)


def _mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).norm(dim=-1).mean()


def fit_lifter(model: nn.Module, data: LiftingSet, config: LiftConfig) -> dict[str, Any]:
    """Train ``model`` with ``config``'s recipe (optimiser, schedule, loss, max-norm); returns the training loss
    per epoch (mm for the MPJPE loss), the time, the steps and the samples seen."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n = len(data) if config.max_samples is None else min(len(data), config.max_samples)
    pool = rng.permutation(len(data))[:n]
    steps = config.epochs * max(1, n // config.batch_size)
    opt, sched = _optimiser(model, config, steps)
    target_all = torch.as_tensor(data.xyz / MM_SCALE)
    losses, t0, step = [], time.perf_counter(), 0
    model.train()
    for _ in range(config.epochs):
        order, total = rng.permutation(pool), 0.0
        for b in range(max(1, n // config.batch_size)):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            seed = config.seed * 100_003 + step
            x = _inputs(data, idx, config.window, config.noise_px, config.drop_p, seed)
            loss = _loss(model, model(x), target_all[idx], config.loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            _apply_max_norm(model, config.max_norm)
            total, step = total + loss.item(), step + 1
        losses.append(total / max(1, n // config.batch_size) * (MM_SCALE if config.loss == "mpjpe" else 1.0))
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
