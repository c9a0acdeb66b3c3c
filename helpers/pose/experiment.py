"""The chapter's experiment: the lifters side by side, trained alike, scored alike under corruptions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from helpers.pose.lifting import JointLifter, MartinezLifter, MeanPoseLifter, WindowLifter, count_parameters
from helpers.pose.metrics import auc_pck3d, mpjpe, p_mpjpe, pck3d
from helpers.pose.mocap import MM_SCALE, LiftingSet, model_inputs
from helpers.pose.train import LiftConfig, fit_lifter, martinez_recipe, predict

__all__ = [
    "LifterSizes",
    "CONDITIONS",
    "MEAN_POSE",
    "MARTINEZ",
    "build_lifters",
    "score",
    "run_lifters",
    "against_mean_pose",
]

MEAN_POSE = "mean pose (no model)"
MARTINEZ = "Martinez et al. (1,024 wide)"

#: test-time corruptions: name -> (pixel noise sigma, share of dropped joints).
CONDITIONS: dict[str, tuple[float, float]] = {
    "clean": (0.0, 0.0),
    "noise 5 px": (5.0, 0.0),
    "drop 20%": (0.0, 0.2),
}


@dataclass(frozen=True)
class LifterSizes:
    """Width, depth and heads of the Transformer lifters, the window (frames) of the frames-as-tokens one, and
    the width and training epochs of the Martinez et al. network (its paper: 1,024 wide, 200 epochs)."""

    dim: int = 32
    depth: int = 2
    heads: int = 4
    window: int = 9
    martinez_width: int = 1024
    martinez_epochs: int = 20


def build_lifters(sizes: LifterSizes, seed: int = 0) -> dict[str, tuple[nn.Module, int]]:
    """The mean-pose floor and the four lifters, ``{name: (model, window)}``."""
    torch.manual_seed(seed)
    kw = {"dim": sizes.dim, "depth": sizes.depth, "heads": sizes.heads}
    return {
        MEAN_POSE: (MeanPoseLifter(), 1),
        MARTINEZ: (MartinezLifter(width=sizes.martinez_width, drop=0.5), 1),
        "joints as tokens": (JointLifter(**kw), 1),
        "joints as tokens, flexible heads": (JointLifter(**kw, attn_variant="flexible"), 1),
        f"{sizes.window} frames as tokens": (WindowLifter(sizes.window, **kw), sizes.window),
    }


def _fit(model: nn.Module, train: LiftingSet, config: LiftConfig, sizes: LifterSizes) -> dict[str, Any]:
    """Fit one model with its own recipe: the mean pose is taken, Martinez's network gets its paper's training."""
    t0 = time.perf_counter()
    if isinstance(model, MeanPoseLifter):
        model.fit(torch.as_tensor(train.xyz / MM_SCALE))
        return {"loss_mm": [], "seconds": time.perf_counter() - t0, "steps": 0, "samples": len(train)}
    if isinstance(model, MartinezLifter):
        model.fit_normalisation(model_inputs(train.uv), torch.as_tensor(train.xyz / MM_SCALE))
        return fit_lifter(model, train, martinez_recipe(config, sizes.martinez_epochs))
    return fit_lifter(model, train, config)


def score(
    model: nn.Module, window: int, data: LiftingSet, noise_px: float = 0.0, drop_p: float = 0.0, seed: int = 0
) -> dict[str, float]:
    """MPJPE, P-MPJPE, 3DPCK@150 mm and its AUC of one model on one set under one corruption."""
    pred, gt = predict(model, data, window, noise_px, drop_p, seed)
    return {
        "MPJPE": mpjpe(pred, gt),
        "P-MPJPE": p_mpjpe(pred, gt),
        "3DPCK": pck3d(pred, gt),
        "AUC": auc_pck3d(pred, gt),
    }


def run_lifters(
    train: LiftingSet, tests: Mapping[str, LiftingSet], config: LiftConfig, sizes: LifterSizes = LifterSizes()
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train every lifter on ``train`` and score it on every test set under every corruption.

    Returns the rows ``{model, params, set, condition, MPJPE, ...}`` and ``{model: (module, history)}``.
    """
    rows, fitted = [], {}
    for name, (model, window) in build_lifters(sizes, config.seed).items():
        t0 = time.perf_counter()
        history = _fit(model, train, config.replace(window=window), sizes)
        fitted[name] = (model, history)
        for set_name, data in tests.items():
            for cond, (noise, drop) in CONDITIONS.items():
                row = score(model, window, data, noise, drop, seed=config.seed)
                rows.append({"model": name, "params": count_parameters(model), "set": set_name, "condition": cond,
                             **row, "train s": history["seconds"], "total s": time.perf_counter() - t0})  # fmt: skip
    return rows, fitted


def against_mean_pose(rows: list[dict[str, Any]], metric: str = "MPJPE") -> list[dict[str, Any]]:
    """The rows with ``"<metric> below mean pose"``: the mean pose's error on the same set and condition minus
    the model's (mm; positive when the model is better than no model at all)."""
    floor = {(r["set"], r["condition"]): r[metric] for r in rows if r["model"] == MEAN_POSE}
    if not floor:
        raise ValueError(f"no {MEAN_POSE!r} rows to compare with")
    return [{**r, f"{metric} below mean pose": floor[(r["set"], r["condition"])] - r[metric]} for r in rows]
