"""COCO keypoint annotation files: read one, and write poses in that format (for COCOeval or for readers).

A COCO keypoints file is JSON with ``images``, ``annotations`` (``image_id``, ``keypoints`` as a flat list
``x1, y1, v1, ..., xK, yK, vK`` with ``v`` 0 = not labelled, 1 = labelled but hidden, 2 = visible,
``num_keypoints``, ``bbox`` ``[x, y, w, h]``, ``area``, ``iscrowd``) and ``categories`` (the keypoint names
and the ``skeleton`` as 1-based joint pairs). Human3.6M-style 2D annotations in this format read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.pose.metrics import person_boxes

__all__ = ["PoseAnnotation", "read_coco_keypoints", "coco_dicts"]


@dataclass(frozen=True)
class PoseAnnotation:
    """One annotated person: keypoints ``(K, 2)``, visibility flags ``(K,)``, box, area, crowd flag."""

    image_id: int
    keypoints: np.ndarray
    visibility: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: bool = False


def _annotation(a: dict, k: int, where: str) -> PoseAnnotation:
    kp = np.asarray(a.get("keypoints", []), float)
    if kp.size != 3 * k:
        raise ValueError(f"{where}: annotation {a.get('id')} has {kp.size} keypoint values, expected 3 x {k}")
    kp = kp.reshape(k, 3)
    bbox = tuple(float(v) for v in a.get("bbox", (0, 0, 0, 0)))
    area = float(a.get("area", bbox[2] * bbox[3]))
    return PoseAnnotation(int(a["image_id"]), kp[:, :2], kp[:, 2].astype(int), bbox, area, bool(a.get("iscrowd", 0)))  # type: ignore[arg-type]


def read_coco_keypoints(path: str | Path) -> tuple[list[str], dict[int, list[PoseAnnotation]]]:
    """Read a COCO keypoints JSON file: the keypoint names and, per image id, its annotated people.

    Raises ``ValueError`` with the reason when the file is not in that format.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read it as JSON ({err})") from err
    cats = [c for c in data.get("categories", []) if "keypoints" in c]
    if not cats or "annotations" not in data:
        raise ValueError(f"{path}: no 'annotations' or no category with 'keypoints': not a COCO keypoints file")
    names = list(cats[0]["keypoints"])
    people: dict[int, list[PoseAnnotation]] = {int(im["id"]): [] for im in data.get("images", [])}
    for a in data["annotations"]:
        people.setdefault(int(a["image_id"]), []).append(_annotation(a, len(names), str(path)))
    return names, people


def coco_dicts(
    images: Sequence[dict], keypoint_names: Sequence[str], skeleton: Sequence[tuple[int, int]] = ()
) -> tuple[dict, list[dict]]:
    """Ground truth (a COCO keypoints dict) and detections (a COCO results list) from in-memory poses.

    ``images`` as for :func:`helpers.pose.metrics.average_precision`: ``gt`` (G, K, 2), ``visible`` (G, K),
    ``area`` (G,), ``dt`` (D, K, 2), ``scores`` (D,). Boxes are the extent of each truth's visible joints.
    """
    imgs, anns, dets = [], [], []
    for i, im in enumerate(images, start=1):
        imgs.append({"id": i, "width": 1000, "height": 1000, "file_name": f"{i:06d}.jpg"})
        for g, v, a in zip(np.asarray(im["gt"], float), np.asarray(im["visible"]), np.asarray(im["area"], float)):
            box = person_boxes(g[None], v[None])[0].tolist()
            flat = np.concatenate([g, (2 * (v > 0))[:, None]], axis=1).ravel().tolist()
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "keypoints": flat,
                    "iscrowd": 0,
                    "num_keypoints": int((v > 0).sum()),
                    "area": float(a),
                    "bbox": box,
                }  # fmt: skip
            )
        for d, s in zip(np.asarray(im["dt"], float), np.asarray(im["scores"], float)):
            flat = np.concatenate([d, np.ones((len(d), 1))], axis=1).ravel().tolist()
            dets.append({"image_id": i, "category_id": 1, "keypoints": flat, "score": float(s)})
    cat = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(keypoint_names),
           "skeleton": [list(b) for b in skeleton]}  # fmt: skip
    return {"images": imgs, "annotations": anns, "categories": [cat]}, dets
