"""The CMU motion-capture database in its original Acclaim format: ``.asf`` skeleton, ``.amc`` motion.

An ``.asf`` file lists every bone with its rest ``direction`` (a unit vector in the world frame), its
``length``, the ``axis`` (Euler angles, degrees) of its local frame and its degrees of freedom; the
``:hierarchy`` section gives each bone's children. An ``.amc`` file holds, frame after frame, one line
per bone with its rotation angles (degrees, in the order of the bone's ``dof``), the root also with its
position. Forward kinematics (:func:`forward_kinematics`) composes, from the root outwards,

.. math::

    L_b = L_{\\mathrm{parent}(b)}\\, C_b\\, M_b\\, C_b^{-1}, \\qquad
    p_b = p_{\\mathrm{parent}(b)} + \\ell_b\\, L_b\\, d_b ,

with ``C_b`` the rotation of the bone's axis, ``M_b`` the frame's rotation of the bone (both
``R_z R_y R_x`` of their Euler angles), ``d_b`` its rest direction and ``l_b`` its length; ``p_b`` is
the position of the bone's far end. Lengths are in the file's unit: ``:units length 0.45`` means
``1/0.45`` inches per unit, so one unit is ``25.4 / 0.45`` mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Bone", "AsfSkeleton", "Motion", "read_asf", "read_amc", "euler_xyz", "forward_kinematics"]

_AXES = ("rx", "ry", "rz")


@dataclass(frozen=True)
class Bone:
    """One bone of an ``.asf`` skeleton (direction, length and axis as written in the file)."""

    name: str
    direction: tuple[float, float, float]
    length: float
    axis: tuple[float, float, float]
    dof: tuple[str, ...] = ()


@dataclass(frozen=True)
class AsfSkeleton:
    """An ``.asf`` skeleton: its bones, the hierarchy and the root's placement."""

    name: str
    bones: dict[str, Bone]
    children: dict[str, tuple[str, ...]]
    root_order: tuple[str, ...]
    root_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    root_orientation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    length_scale: float = 1.0  # the ``:units length`` value

    @property
    def mm_per_unit(self) -> float:
        """Millimetres per length unit of the file (``25.4 / length_scale``)."""
        return 25.4 / self.length_scale

    def parents(self) -> dict[str, str]:
        """The parent of every bone (``root`` for the bones attached to the root)."""
        return {c: p for p, kids in self.children.items() for c in kids}


@dataclass(frozen=True)
class Motion:
    """An ``.amc`` motion: per bone, a ``(frames, values)`` array of its channels."""

    channels: dict[str, np.ndarray]
    frames: np.ndarray
    fps: float = 120.0
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def subsample(self, step: int) -> Motion:
        """Every ``step``-th frame (the frame rate falls by ``step``)."""
        return Motion(
            {k: v[::step] for k, v in self.channels.items()}, self.frames[::step], self.fps / step, self.source
        )


def _floats(tokens: list[str]) -> tuple[float, ...]:
    return tuple(float(t) for t in tokens)


def _parse_bone(lines: list[list[str]]) -> Bone:
    info: dict[str, list[str]] = {}
    for tokens in lines:
        if tokens and tokens[0] in ("name", "direction", "length", "axis", "dof"):
            info[tokens[0]] = tokens[1:]
    axis = info.get("axis", ["0", "0", "0", "XYZ"])
    if len(axis) > 3 and axis[3].upper() != "XYZ":
        raise ValueError(f"bone {info['name'][0]}: axis order {axis[3]} is not supported (only XYZ, as in CMU files)")
    return Bone(
        name=info["name"][0],
        direction=_floats(info["direction"][:3]),  # type: ignore[arg-type]
        length=float(info["length"][0]),
        axis=_floats(axis[:3]),  # type: ignore[arg-type]
        dof=tuple(d.lower() for d in info.get("dof", [])),
    )


def _sections(text: str) -> dict[str, list[list[str]]]:
    sections: dict[str, list[list[str]]] = {}
    current = ""
    for raw in text.splitlines():  # handles CRLF
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            tokens = line.split()
            current = tokens[0][1:].lower()
            sections[current] = [tokens[1:]] if len(tokens) > 1 else []
        else:
            sections.setdefault(current, []).append(line.split())
    return sections


def read_asf(path: str | Path) -> AsfSkeleton:
    """Read an Acclaim ``.asf`` skeleton file (CRLF or LF line endings)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .asf skeleton at {path}")
    sec = _sections(path.read_text(errors="replace"))
    if "bonedata" not in sec or "hierarchy" not in sec:
        raise ValueError(f"{path} is not an Acclaim .asf file: it has no :bonedata or :hierarchy section")
    bones, chunk = {}, []
    for tokens in sec["bonedata"]:
        if tokens[0] == "begin":
            chunk = []
        elif tokens[0] == "end":
            bone = _parse_bone(chunk)
            bones[bone.name] = bone
        else:
            chunk.append(tokens)
    children = {t[0]: tuple(t[1:]) for t in sec["hierarchy"] if t[0] not in ("begin", "end")}
    root = {t[0]: t[1:] for t in sec.get("root", []) if t}
    units = {t[0]: t[1] for t in sec.get("units", []) if len(t) > 1}
    return AsfSkeleton(
        name=(sec.get("name") or [["?"]])[0][0],
        bones=bones,
        children=children,
        root_order=tuple(x.lower() for x in root.get("order", ["TX", "TY", "TZ", "RX", "RY", "RZ"])),
        root_position=_floats(root.get("position", ["0", "0", "0"])[:3]),  # type: ignore[arg-type]
        root_orientation=_floats(root.get("orientation", ["0", "0", "0"])[:3]),  # type: ignore[arg-type]
        length_scale=float(units.get("length", 1.0)),
    )


def read_amc(path: str | Path, fps: float = 120.0) -> Motion:
    """Read an Acclaim ``.amc`` motion file: one ``(frames, channels)`` array per bone."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .amc motion at {path}")
    frames: list[int] = []
    values: dict[str, list[list[float]]] = {}
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line or line[0] in "#:":
            continue
        tokens = line.split()
        if len(tokens) == 1 and tokens[0].isdigit():
            frames.append(int(tokens[0]))
            continue
        if not frames:
            raise ValueError(f"{path}: bone values before the first frame number: {line[:40]!r}")
        values.setdefault(tokens[0], []).append([float(t) for t in tokens[1:]])
    if not frames:
        raise ValueError(f"{path} holds no frames: is it an Acclaim .amc file?")
    bad = [b for b, v in values.items() if len(v) != len(frames)]
    if bad:
        raise ValueError(f"{path}: bones {bad} do not appear in every one of the {len(frames)} frames")
    return Motion({b: np.asarray(v) for b, v in values.items()}, np.asarray(frames), fps, str(path))


def euler_xyz(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices ``R_z(c) R_y(b) R_x(a)`` for Euler angles ``(..., 3) = (a, b, c)`` in degrees."""
    a, b, c = np.moveaxis(np.deg2rad(np.asarray(angles_deg, dtype=float)), -1, 0)
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    one, zero = np.ones_like(a), np.zeros_like(a)
    rx = np.stack([one, zero, zero, zero, ca, -sa, zero, sa, ca], -1).reshape(*a.shape, 3, 3)
    ry = np.stack([cb, zero, sb, zero, one, zero, -sb, zero, cb], -1).reshape(*a.shape, 3, 3)
    rz = np.stack([cc, -sc, zero, sc, cc, zero, zero, zero, one], -1).reshape(*a.shape, 3, 3)
    return rz @ ry @ rx


def _bone_angles(bone: Bone, channels: np.ndarray | None, n: int) -> np.ndarray:
    angles = np.zeros((n, 3))
    if channels is not None:
        for i, d in enumerate(bone.dof):
            if d in _AXES:
                angles[:, _AXES.index(d)] = channels[:, i]
    return angles


def forward_kinematics(skeleton: AsfSkeleton, motion: Motion) -> dict[str, np.ndarray]:
    """3D positions (mm, world frame, y up) of the root and of every bone's far end: ``{name: (frames, 3)}``."""
    n = len(motion)
    if "root" not in motion.channels:
        raise ValueError(f"{motion.source}: the motion has no root line")
    root = motion.channels["root"]
    order = skeleton.root_order
    pos = np.stack([root[:, order.index(t)] for t in ("tx", "ty", "tz")], -1)
    rot = np.stack([root[:, order.index(r)] for r in _AXES], -1)
    c = euler_xyz(np.asarray(skeleton.root_orientation))
    frames_l = {"root": c @ euler_xyz(rot) @ c.T}
    points = {"root": pos * skeleton.mm_per_unit}
    stack = ["root"]
    while stack:
        parent = stack.pop()
        for name in skeleton.children.get(parent, ()):
            bone = skeleton.bones[name]
            cb = euler_xyz(np.asarray(bone.axis))
            m = euler_xyz(_bone_angles(bone, motion.channels.get(name), n))
            frames_l[name] = frames_l[parent] @ cb @ m @ cb.T
            d = np.asarray(bone.direction) * bone.length * skeleton.mm_per_unit
            points[name] = points[parent] + frames_l[name] @ d
            stack.append(name)
    return points
