"""The fixed 17-joint layout of the chapter (Human3.6M's order) and its mapping from CMU bones.

Joint ``j`` is a point; ``PARENTS[j]`` is the joint it hangs from (``-1`` for the pelvis, the root).
From a CMU Acclaim skeleton, each joint is the far end of one bone (the pelvis is the root itself), see
:data:`CMU_TO_H36M`. The layout is Human3.6M's 17 joints as used by the lifting literature; CMU has no
nose marker, so joint 9 is the top of the neck (``upperneck``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "JOINTS",
    "PARENTS",
    "BONES",
    "CMU_TO_H36M",
    "H36M_SIGMAS",
    "COCO_SIGMAS",
    "COCO_KEYPOINTS",
    "LIMBS",
    "to_h36m",
    "bone_lengths",
    "hop_distance",
]

JOINTS: tuple[str, ...] = (
    "pelvis", "rhip", "rknee", "rankle", "lhip", "lknee", "lankle", "spine", "thorax",
    "neck", "head", "lshoulder", "lelbow", "lwrist", "rshoulder", "relbow", "rwrist",
)  # fmt: skip
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
BONES: tuple[tuple[int, int], ...] = tuple((p, j) for j, p in enumerate(PARENTS) if p >= 0)

#: the CMU bone whose far end is each joint (``root`` = the root's position).
CMU_TO_H36M: tuple[str, ...] = (
    "root", "rhipjoint", "rfemur", "rtibia", "lhipjoint", "lfemur", "ltibia", "lowerback", "upperback",
    "upperneck", "head", "lclavicle", "lhumerus", "lradius", "rclavicle", "rhumerus", "rradius",
)  # fmt: skip

#: the 8 limbs scored by PCP (upper/lower arms and legs), as joint pairs.
LIMBS: tuple[tuple[int, int], ...] = ((14, 15), (15, 16), (11, 12), (12, 13), (1, 2), (2, 3), (4, 5), (5, 6))

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
#: COCO's per-keypoint OKS constants (Lin et al. 2014; the values in pycocotools' COCOeval).
COCO_SIGMAS = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10.0
)
#: our assignment of COCO's constants to the 17 joints here (pelvis and spine as hips, thorax as shoulders,
#: neck as the nose, head as the ears); not an official table.
H36M_SIGMAS = (
    np.array([1.07, 1.07, 0.87, 0.89, 1.07, 0.87, 0.89, 1.07, 0.79, 0.26, 0.35, 0.79, 0.72, 0.62, 0.79, 0.72, 0.62])
    / 10.0
)


def to_h36m(points: dict[str, np.ndarray]) -> np.ndarray:
    """Stack forward-kinematics output (``{bone: (frames, 3)}``) into ``(frames, 17, 3)`` joints."""
    missing = [b for b in CMU_TO_H36M if b not in points]
    if missing:
        raise KeyError(f"the skeleton lacks the bones {missing} that the 17-joint layout needs")
    return np.stack([points[b] for b in CMU_TO_H36M], axis=-2)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of each bone of :data:`BONES`: ``(..., 17, D) -> (..., 16)``."""
    joints = np.asarray(joints)
    return np.stack([np.linalg.norm(joints[..., j, :] - joints[..., p, :], axis=-1) for p, j in BONES], -1)


def hop_distance(parents: tuple[int, ...] = PARENTS) -> np.ndarray:
    """Number of bones between every two joints of the tree: ``(J, J)`` integers (the graph distance)."""
    n = len(parents)
    adj = [[] for _ in range(n)]
    for j, p in enumerate(parents):
        if p >= 0:
            adj[j].append(p)
            adj[p].append(j)
    dist = np.full((n, n), -1, dtype=int)
    for s in range(n):
        dist[s, s], frontier = 0, [s]
        while frontier:
            nxt = []
            for u in frontier:
                for v in adj[u]:
                    if dist[s, v] < 0:
                        dist[s, v] = dist[s, u] + 1
                        nxt.append(v)
            frontier = nxt
    return dist
