"""From CMU motion files to lifting samples: 3D joints in each camera's frame and their 2D projections.

:func:`load_sequence` reads one motion and returns its 17 joints (mm, world frame); :func:`make_samples`
films every sequence with the cameras of :func:`helpers.pose.cameras.cameras_around` and returns a
:class:`LiftingSet`: for each (frame, camera) the 2D joints (pixels) and the 3D joints in that camera's
frame, relative to the pelvis (mm). Inputs and targets are scaled by :data:`PX_SCALE` and :data:`MM_SCALE`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from helpers.pose.acclaim import forward_kinematics, read_amc, read_asf
from helpers.pose.cameras import add_noise, cameras_around, drop_joints
from helpers.pose.skeleton import to_h36m

__all__ = [
    "PX_SCALE",
    "MM_SCALE",
    "LiftingSet",
    "MotionChoice",
    "available_motions",
    "choose_motions",
    "motion_paths",
    "load_sequence",
    "make_samples",
    "model_inputs",
]

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


def available_motions(root: str | Path) -> dict[str, list[int]]:
    """``{subject: motion numbers}`` of every subject under ``root/subjects`` that has its ``.asf`` skeleton and
    at least one ``<subject>_<nn>.amc`` motion, subjects and motions sorted."""
    found: dict[str, list[int]] = {}
    folder = Path(root) / "subjects"
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        pattern = re.compile(rf"{re.escape(sub.name)}_(\d+)\.amc$")
        motions = sorted(int(m.group(1)) for f in sub.iterdir() if (m := pattern.match(f.name)))
        if motions and (sub / f"{sub.name}.asf").is_file():
            found[sub.name] = motions
    return found


@dataclass(frozen=True)
class MotionChoice:
    """The motions a lifting experiment reads: a training subject's training and held-out motions, and an
    unseen subject's motions; ``notes`` says what was picked because what was asked for is absent."""

    subject: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    unseen: str | None
    unseen_motions: tuple[int, ...]
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One paragraph: the subjects and motions, and what was substituted and why."""
        text = f"training subject {self.subject}: motions {list(self.train)} for training, {list(self.test)} held out; "
        text += (
            f"unseen subject {self.unseen}: motions {list(self.unseen_motions)}"
            if self.unseen is not None
            else "no unseen subject (the root holds one subject)"
        )
        return text + "".join(f"\n  {n}" for n in self.notes)


def _split_motions(motions: list[int], n_train: int, n_test: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Every third motion held out (from the second on) until ``n_test``; the rest trains, up to ``n_train``."""
    test = motions[1::3][:n_test]
    train = [m for m in motions if m not in test][:n_train]
    return tuple(train), tuple(test)


def choose_motions(
    root: str | Path,
    subject: str,
    train: Sequence[int],
    test: Sequence[int],
    unseen: str,
    unseen_motions: Sequence[int],
) -> MotionChoice:
    """The requested subjects and motions where the root has them all; otherwise what it has.

    The training subject is the requested one if it has as many motions as asked for (training and held-out
    together), else the subject with the most motions; its motions are split as many for training and held
    out as asked (every third held out). The unseen subject is the requested one if present and not the
    training subject, else the other subject with the most motions; it gives the requested motions where it
    has them all, else its first ones, as many as asked. A root with one subject has no unseen subject
    (``unseen`` is ``None``, and a note says so). Raises ``FileNotFoundError`` (naming what the root holds)
    when the root has no subject or the training subject fewer than two motions.
    """
    have = available_motions(root)
    if not have:
        raise FileNotFoundError(
            f"the CMU root {root} has no subject with an .asf skeleton and .amc motions "
            "(the layout is subjects/<nn>/<nn>.asf and subjects/<nn>/<nn>_<mm>.amc)"
        )
    notes, wanted = [], len(train) + len(test)
    if set(train) | set(test) <= set(have.get(subject, [])):
        picked, tr, te = subject, tuple(train), tuple(test)
    else:
        picked = subject if len(have.get(subject, [])) >= wanted else max(have, key=lambda s: (len(have[s]), s))
        if len(have[picked]) < 2:
            raise FileNotFoundError(f"the CMU root {root} has no subject with two motions: {have}")
        tr, te = _split_motions(have[picked], len(train), max(1, min(len(test), len(have[picked]) // 3)))
        notes.append(f"subject {subject} motions {sorted({*train, *test})} are not all in the root: picked {picked}")
    if len(have) == 1:
        notes.append(f"the root holds one subject ({picked}): there is no unseen subject to test on")
        return MotionChoice(picked, tr, te, None, (), tuple(notes))
    other = (
        unseen
        if unseen in have and unseen != picked
        else max((s for s in have if s != picked), key=lambda s: (len(have[s]), s))
    )
    if other != unseen:
        notes.append(f"unseen subject {unseen} is absent (or the training subject): picked {other}")
    if set(unseen_motions) <= set(have[other]) and other == unseen:
        um = tuple(unseen_motions)
    else:
        um = tuple(have[other][: len(unseen_motions)])
        if other == unseen:
            notes.append(f"motions {list(unseen_motions)} of subject {unseen} are not all in the root: took {list(um)}")
    return MotionChoice(picked, tr, te, other, um, tuple(notes))


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
