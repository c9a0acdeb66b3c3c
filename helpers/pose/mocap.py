"""From CMU motion files to lifting samples: 3D joints in each camera's frame and their 2D projections.

:func:`load_sequence` reads one motion and returns its 17 joints (mm, world frame); :func:`make_samples`
films every sequence with the cameras of :func:`helpers.pose.cameras.cameras_around` and returns a
:class:`LiftingSet`: for each (frame, camera) the 2D joints (pixels) and the 3D joints in that camera's
frame, relative to the pelvis (mm). Inputs and targets are scaled by :data:`PX_SCALE` and :data:`MM_SCALE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from helpers.pose.acclaim import forward_kinematics, read_amc, read_asf
from helpers.pose.cameras import add_noise, cameras_around, drop_joints
from helpers.pose.skeleton import to_h36m

__all__ = ["PX_SCALE", "MM_SCALE", "LiftingSet", "motion_paths", "load_sequence", "make_samples", "model_inputs"]

PX_SCALE = 200.0  # pixels per input unit
MM_SCALE = 1000.0  # millimetres per target unit


@dataclass(frozen=True)
class LiftingSet:
    """Lifting samples: ``uv`` (N, 17, 2) pixels relative to the pelvis, ``xyz`` (N, 17, 3) mm relative to the
    pelvis in camera coordinates, and ``start``/``stop`` (N,) the bounds of each sample's (sequence, camera) run."""

    uv: np.ndarray
    xyz: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.uv)

    def window_index(self, index: np.ndarray, window: int) -> np.ndarray:
        """``(len(index), window)`` sample indices centred on ``index``, clamped inside each run."""
        offsets = np.arange(window) - window // 2
        return np.clip(index[:, None] + offsets, self.start[index, None], self.stop[index, None] - 1)


def motion_paths(root: str | Path, subject: str, motions: Sequence[int]) -> list[tuple[Path, Path]]:
    """``(asf, amc)`` paths of a subject's motions under ``root`` (``.../cmu_mocap``); says what is missing."""
    folder = Path(root) / "subjects" / subject
    asf = folder / f"{subject}.asf"
    pairs = [(asf, folder / f"{subject}_{m:02d}.amc") for m in motions]
    missing = [str(p) for p in [asf, *(a for _, a in pairs)] if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"CMU motion capture files not found: {missing}")
    return pairs


def load_sequence(asf: str | Path, amc: str | Path, step: int = 1) -> np.ndarray:
    """The 17 joints of a motion, every ``step``-th frame: ``(frames, 17, 3)`` mm, world frame (y up)."""
    return to_h36m(forward_kinematics(read_asf(asf), read_amc(amc).subsample(step)))


def make_samples(sequences: Sequence[np.ndarray], n_cameras: int = 4, names: Sequence[str] = ()) -> LiftingSet:
    """Film each sequence with ``n_cameras`` cameras around its mean pelvis position and build the samples."""
    uv, xyz, start, stop, n = [], [], [], [], 0
    for joints in sequences:
        centre = joints[:, 0].mean(0)
        for cam in cameras_around(centre, n_cameras, height=float(centre[1]) + 500.0):
            p2 = cam.project(joints)
            p3 = cam.to_camera(joints)
            uv.append(p2 - p2[:, :1])
            xyz.append(p3 - p3[:, :1])
            start.append(np.full(len(joints), n))
            stop.append(np.full(len(joints), n + len(joints)))
            n += len(joints)
    cat = np.concatenate
    return LiftingSet(cat(uv).astype(np.float32), cat(xyz).astype(np.float32), cat(start), cat(stop), tuple(names))


def model_inputs(uv: np.ndarray, noise_px: float = 0.0, drop_p: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Scaled model inputs ``(..., 17, 3)`` = ``(u, v, visible)``: optional pixel noise, and dropped joints
    (never the pelvis, the reference of the others) set to ``(0, 0, 0)``."""
    rng = np.random.default_rng(seed)
    uv = add_noise(uv, noise_px, rng) / PX_SCALE
    vis = drop_joints(uv.shape[:-1], drop_p, rng)
    vis[..., 0] = 1.0
    x = np.concatenate([uv * vis[..., None], vis[..., None]], axis=-1)
    return torch.as_tensor(x, dtype=torch.float32)
