"""Pose metrics of thesis 001 (§2.2.3). Arrays are ``(N, J, D)``: N poses, J joints.

2D: :func:`pcp` (both endpoints, Ferrari et al. 2008) and the thesis's looser :func:`pcp_mean_endpoint`;
:func:`pdj`; :func:`pck` (``max(h, w)`` of the box, Yang & Ramanan) and the thesis's :func:`pck_diagonal`;
:func:`pckh` (head segment); :func:`oks`, :func:`average_precision` and :func:`average_recall` (COCO's AP
and AR over OKS thresholds). 3D: :func:`mpjpe`
(protocol 1, root-aligned), :func:`p_mpjpe` (protocol 2, after a Procrustes alignment),
:func:`pck3d` and :func:`auc_pck3d`, :func:`mpjve`, and :func:`mjae` on joint angles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "pcp",
    "pcp_mean_endpoint",
    "correct_joints",
    "pdj",
    "pck",
    "pck_diagonal",
    "pckh",
    "person_boxes",
    "oks",
    "match_image",
    "average_precision",
    "average_recall",
    "mpjpe",
    "procrustes_align",
    "p_mpjpe",
    "pck3d",
    "auc_pck3d",
    "mpjve",
    "mjae",
]

OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _dist(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    if pred.shape != gt.shape:
        raise ValueError(f"predictions {pred.shape} and ground truth {gt.shape} differ in shape")
    return np.linalg.norm(pred - gt, axis=-1)


def _limb_errors(
    pred: np.ndarray, gt: np.ndarray, limbs: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each limb's start and end errors and its true length: three ``(N, L)`` arrays."""
    s, e = np.array(limbs).T
    d = _dist(pred, gt)
    length = np.linalg.norm(np.asarray(gt, float)[:, s] - np.asarray(gt, float)[:, e], axis=-1)
    return d[:, s], d[:, e], length


def pcp(pred: np.ndarray, gt: np.ndarray, limbs: Sequence[tuple[int, int]], alpha: float = 0.5) -> float:
    """Percentage of Correct Parts, the standard rule (Ferrari et al. 2008): a limb ``(s, e)`` is found when
    *both* its end joints lie within ``alpha`` times its true length of the truth."""
    err_s, err_e, length = _limb_errors(pred, gt, limbs)
    return float(np.mean((err_s <= alpha * length) & (err_e <= alpha * length)))


def pcp_mean_endpoint(pred: np.ndarray, gt: np.ndarray, limbs: Sequence[tuple[int, int]], alpha: float = 0.5) -> float:
    """PCP as thesis 001 writes it: the *mean* of the two end errors within ``alpha`` times the true length
    (looser than :func:`pcp`: one end far off can be made up by the other)."""
    err_s, err_e, length = _limb_errors(pred, gt, limbs)
    return float(np.mean((err_s + err_e) / 2 <= alpha * length))


def correct_joints(pred: np.ndarray, gt: np.ndarray, ref: np.ndarray, alpha: float) -> np.ndarray:
    """``||pred_j - gt_j|| <= alpha * ref`` per joint, with one reference length per pose: ``(N, J)`` bools."""
    return _dist(pred, gt) <= alpha * np.asarray(ref, float)[:, None]


def pdj(pred: np.ndarray, gt: np.ndarray, torso: tuple[int, int], alpha: float = 0.2) -> float:
    """Percentage of Detected Joints: within ``alpha`` of the torso diameter (e.g. right hip to left shoulder)."""
    gt = np.asarray(gt, float)
    ref = np.linalg.norm(gt[:, torso[0]] - gt[:, torso[1]], axis=-1)
    return float(correct_joints(pred, gt, ref, alpha).mean())


def _box_sides(gt: np.ndarray) -> np.ndarray:
    """The sides ``(N, D)`` of the tight box around each pose's true joints."""
    return gt.max(axis=1) - gt.min(axis=1)


def pck(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.2) -> float:
    """Percentage of Correct Keypoints as Yang & Ramanan (2013): within ``alpha`` of ``max(h, w)``, the
    longer side of the box around the true joints."""
    gt = np.asarray(gt, float)
    return float(correct_joints(pred, gt, _box_sides(gt).max(axis=-1), alpha).mean())


def pck_diagonal(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.2) -> float:
    """PCK as thesis 001 writes it: within ``alpha`` of the *diagonal* of the box around the true joints
    (looser than :func:`pck` by up to a factor of sqrt(2))."""
    gt = np.asarray(gt, float)
    return float(correct_joints(pred, gt, np.linalg.norm(_box_sides(gt), axis=-1), alpha).mean())


def pckh(pred: np.ndarray, gt: np.ndarray, head: tuple[int, int], alpha: float = 0.5) -> float:
    """PCKh: within ``alpha`` of the head segment's length (the two joints ``head`` of the truth)."""
    gt = np.asarray(gt, float)
    ref = np.linalg.norm(gt[:, head[0]] - gt[:, head[1]], axis=-1)
    return float(correct_joints(pred, gt, ref, alpha).mean())


def person_boxes(gt: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Each person's box ``[x, y, w, h]``: the extent of its visible joints (of all joints if none is visible)."""
    boxes = []
    for g, v in zip(np.asarray(gt, float), np.asarray(visible)):
        pts = g[v > 0] if (v > 0).any() else g
        boxes.append([*pts.min(0), *(pts.max(0) - pts.min(0))])
    return np.asarray(boxes, float).reshape(-1, 4)


def oks(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    area: np.ndarray,
    sigmas: np.ndarray,
    boxes: np.ndarray | None = None,
) -> np.ndarray:
    """Object Keypoint Similarity of each prediction with each truth: ``(D, K, 2) x (G, K, 2) -> (D, G)``.

    ``OKS = sum_i exp(-d_i^2 / (2 s^2 k_i^2)) [v_i > 0] / sum_i [v_i > 0]`` with ``s^2`` the truth's area
    and ``k_i = 2 sigma_i``. For a truth with no visible joint, ``d_i`` is the distance from the prediction
    to the truth's box enlarged to three times its size, averaged over all joints (as COCOeval does).
    """
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    vis = np.asarray(visible) > 0
    boxes = person_boxes(gt, vis) if boxes is None else np.asarray(boxes, float)
    d2 = ((pred[:, None] - gt[None]) ** 2).sum(-1)  # (D, G, K)
    lo = boxes[None, :, None, :2] - boxes[None, :, None, 2:]  # (1, G, 1, 2)
    hi = boxes[None, :, None, :2] + 2 * boxes[None, :, None, 2:]
    outside = np.maximum(0, lo - pred[:, None]) + np.maximum(0, pred[:, None] - hi)
    none = ~vis.any(-1)
    d2 = np.where(none[None, :, None], (outside**2).sum(-1), d2)
    var = (2 * np.asarray(sigmas, float)) ** 2
    e = d2 / var / (np.asarray(area, float)[None, :, None] + np.spacing(1)) / 2
    w = np.where(none[:, None], True, vis)[None].astype(float)
    return (np.exp(-e) * w).sum(-1) / w.sum(-1)


def match_image(sim: np.ndarray, gt_ignore: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image's detections (rows of ``sim``, best score first) to its truths.

    Returns ``matched`` and ``ignored`` per detection (a detection matched to an ignored truth is ignored).
    Each truth takes at most one detection; a detection prefers a non-ignored truth, as in COCOeval.
    """
    order = np.argsort(gt_ignore, kind="mergesort")  # non-ignored truths first
    sim, gt_ignore = sim[:, order], gt_ignore[order]
    taken = np.zeros(len(gt_ignore), bool)
    matched = np.zeros(len(sim), bool)
    ignored = np.zeros(len(sim), bool)
    for d in range(len(sim)):
        best, m = min(threshold, 1 - 1e-10), -1
        for g in range(len(gt_ignore)):
            if taken[g]:
                continue
            if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                break
            if sim[d, g] < best:
                continue
            best, m = sim[d, g], g
        if m > -1:
            taken[m], matched[d], ignored[d] = True, True, bool(gt_ignore[m])
    return matched, ignored


def _ap_from_matches(scores: np.ndarray, matched: np.ndarray, ignored: np.ndarray, n_gt: int) -> float:
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(matched[order] & ~ignored[order])
    fp = np.cumsum(~matched[order] & ~ignored[order])
    recall = tp / n_gt
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in idx]))


def _count_truths(images: Sequence[dict]) -> int:
    n_gt = sum(int(((np.asarray(im["visible"]) > 0).sum(-1) > 0).sum()) for im in images)
    if n_gt == 0:
        raise ValueError("no ground-truth pose with a visible keypoint: AP and AR are undefined")
    return n_gt


def _pooled_matches(
    images: Sequence[dict], sigmas: np.ndarray, threshold: float, max_dets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, matched and ignored flags of every image's top ``max_dets`` detections at one OKS threshold."""
    scores, matched, ignored = [], [], []
    for im in images:
        keep = np.argsort(-np.asarray(im["scores"], float), kind="mergesort")[:max_dets]
        gt_ignore = (np.asarray(im["visible"]) > 0).sum(-1) == 0
        sim = oks(np.asarray(im["dt"])[keep], im["gt"], im["visible"], im["area"], sigmas)
        m, ig = match_image(sim, gt_ignore, threshold)
        scores.append(np.asarray(im["scores"], float)[keep])
        matched.append(m)
        ignored.append(ig)
    return np.concatenate(scores), np.concatenate(matched), np.concatenate(ignored)


def average_precision(
    images: Sequence[dict], sigmas: np.ndarray, thresholds: np.ndarray = OKS_THRESHOLDS, max_dets: int = 20
) -> dict[float, float]:
    """COCO keypoint AP at each OKS threshold (and their mean under key ``-1``).

    Each image is a dict with ``dt`` (D, K, 2), ``scores`` (D,), ``gt`` (G, K, 2), ``visible`` (G, K) and
    ``area`` (G,). Detections are ranked by score (at most ``max_dets`` per image), matched greedily per
    image, then pooled; precision is interpolated at 101 recall points, as COCOeval does.
    """
    n_gt = _count_truths(images)
    per_thr = {}
    for t in thresholds:
        per_thr[float(t)] = _ap_from_matches(*_pooled_matches(images, sigmas, float(t), max_dets), n_gt)
    per_thr[-1.0] = float(np.mean(list(per_thr.values())))
    return per_thr


def average_recall(
    images: Sequence[dict], sigmas: np.ndarray, thresholds: np.ndarray = OKS_THRESHOLDS, max_dets: int = 20
) -> dict[float, float]:
    """COCO keypoint AR: at each OKS threshold the share of true people (with a visible joint) matched by one
    of the top ``max_dets`` detections of their image; the mean over thresholds under key ``-1``.

    The same images, matching and ignored people as :func:`average_precision`; scores do not matter, only
    which detections are kept.
    """
    n_gt = _count_truths(images)
    per_thr = {}
    for t in thresholds:
        _, matched, ignored = _pooled_matches(images, sigmas, float(t), max_dets)
        per_thr[float(t)] = float((matched & ~ignored).sum() / n_gt)
    per_thr[-1.0] = float(np.mean(list(per_thr.values())))
    return per_thr


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> float:
    """Mean Per Joint Position Error ``(1/NJ) sum ||p - g||``; protocol 1 subtracts each pose's ``root`` joint."""
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    if root is not None:
        pred, gt = pred - pred[:, root : root + 1], gt - gt[:, root : root + 1]
    return float(_dist(pred, gt).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Each predicted pose after the similarity transform (scale, rotation, translation) that best fits
    it to the truth in least squares (no reflection)."""
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    x, y = pred - mu_p, gt - mu_g
    u, s, vt = np.linalg.svd(np.swapaxes(x, 1, 2) @ y)  # x^T y = U S V^T
    d = np.sign(np.linalg.det(u @ vt))  # forbid reflections
    u[:, :, -1] *= d[:, None]
    s[:, -1] *= d
    rot = u @ vt
    scale = s.sum(-1) / (x**2).sum((1, 2))
    return scale[:, None, None] * x @ rot + mu_g


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol 2: MPJPE after :func:`procrustes_align`."""
    return mpjpe(procrustes_align(pred, gt), gt, root=None)


def pck3d(pred: np.ndarray, gt: np.ndarray, threshold: float = 150.0, root: int | None = 0) -> float:
    """3DPCK: the share of joints within ``threshold`` mm of the truth (root-aligned)."""
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    if root is not None:
        pred, gt = pred - pred[:, root : root + 1], gt - gt[:, root : root + 1]
    return float((_dist(pred, gt) <= threshold).mean())


def auc_pck3d(pred: np.ndarray, gt: np.ndarray, max_threshold: float = 150.0, steps: int = 31) -> float:
    """Area under the 3DPCK curve for thresholds ``0..max_threshold`` mm (31 steps, as Mehta et al. 2017)."""
    return float(np.mean([pck3d(pred, gt, t) for t in np.linspace(0, max_threshold, steps)]))


def mpjve(pred: np.ndarray, gt: np.ndarray, fps: float = 1.0) -> float:
    """Mean Per Joint Velocity Error: MPJPE of the first time differences of two sequences ``(T, J, 3)``,
    times ``fps`` (mm per second; ``fps=1`` gives mm per frame)."""
    return float(_dist(np.diff(pred, axis=0), np.diff(gt, axis=0)).mean() * fps)


def mjae(pred_deg: np.ndarray, gt_deg: np.ndarray) -> float:
    """Mean Joint Angle Error: mean of ``|(a - b) mod ±180°|`` over all angles, in degrees."""
    diff = (np.asarray(pred_deg, float) - np.asarray(gt_deg, float) + 180.0) % 360.0 - 180.0
    return float(np.abs(diff).mean())
