"""The chapter's experiment: the lifters side by side, trained alike, scored alike under corruptions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from helpers.pose.lifting import JointLifter, MartinezLifter, WindowLifter, count_parameters, martinez_width_for
from helpers.pose.metrics import auc_pck3d, mpjpe, p_mpjpe, pck3d
from helpers.pose.mocap import LiftingSet
from helpers.pose.train import LiftConfig, fit_lifter, predict

__all__ = ["LifterSizes", "CONDITIONS", "build_lifters", "score", "run_lifters"]

#: test-time corruptions: name -> (pixel noise sigma, share of dropped joints).
CONDITIONS: dict[str, tuple[float, float]] = {
    "clean": (0.0, 0.0),
    "noise 5 px": (5.0, 0.0),
    "drop 20%": (0.0, 0.2),
}


@dataclass(frozen=True)
class LifterSizes:
    """Width, depth and heads of the Transformer lifters, and the window (frames) of the frames-as-tokens one."""

    dim: int = 32
    depth: int = 2
    heads: int = 4
    window: int = 9


def build_lifters(sizes: LifterSizes, seed: int = 0) -> dict[str, tuple[nn.Module, int]]:
    """The four lifters, ``{name: (model, window)}``; the baseline's width is set to the joint lifter's size."""
    torch.manual_seed(seed)
    kw = {"dim": sizes.dim, "depth": sizes.depth, "heads": sizes.heads}
    joint = JointLifter(**kw)
    width = martinez_width_for(count_parameters(joint))
    return {
        "Martinez FC": (MartinezLifter(width=width), 1),
        "joints as tokens": (joint, 1),
        "joints as tokens, flexible heads": (JointLifter(**kw, attn_variant="flexible"), 1),
        f"{sizes.window} frames as tokens": (WindowLifter(sizes.window, **kw), sizes.window),
    }


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
        history = fit_lifter(model, train, config.replace(window=window))
        fitted[name] = (model, history)
        for set_name, data in tests.items():
            for cond, (noise, drop) in CONDITIONS.items():
                row = score(model, window, data, noise, drop, seed=config.seed)
                rows.append({"model": name, "params": count_parameters(model), "set": set_name, "condition": cond,
                             **row, "train s": history["seconds"], "total s": time.perf_counter() - t0})  # fmt: skip
    return rows, fitted
