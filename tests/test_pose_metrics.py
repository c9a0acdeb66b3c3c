"""Pose metrics on hand-worked cases, and OKS/AP against pycocotools' COCOeval."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from helpers.pose import metrics as M
from helpers.pose.annotations import coco_dicts
from helpers.pose.skeleton import COCO_KEYPOINTS, COCO_SIGMAS


def _pose(rng, n=4, j=17):
    return rng.normal(0, 300, (n, j, 3))


def test_mpjpe_hand_worked() -> None:
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]])
    assert M.mpjpe(pred, gt, root=None) == pytest.approx(2.5)
    assert M.mpjpe(gt + 100.0, gt) == 0.0  # protocol 1 removes a translation
    with pytest.raises(ValueError, match="differ in shape"):
        M.mpjpe(pred[:, :1], gt)


def test_p_mpjpe_ignores_rotation_scale_translation() -> None:
    rng = np.random.default_rng(0)
    gt = _pose(rng)
    a = np.deg2rad(70)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    moved = 1.7 * gt @ rot.T + np.array([10.0, -5.0, 3.0])
    assert M.mpjpe(moved, gt) > 100
    assert M.p_mpjpe(moved, gt) == pytest.approx(0.0, abs=1e-9)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # a reflection is not a rotation: not removed
    assert M.p_mpjpe(mirrored, gt) > 1.0


def test_pck3d_auc_mpjve_mjae() -> None:
    gt = np.zeros((1, 4, 3))
    pred = gt.copy()
    pred[0, 1:, 0] = [100.0, 200.0, 60.0]  # joint 0 is the root and stays put
    assert M.pck3d(pred, gt, 150) == pytest.approx(3 / 4)
    thresholds = np.linspace(0, 150, 31)
    expected = np.mean([(np.array([0, 100, 200, 60]) <= t).mean() for t in thresholds])
    assert M.auc_pck3d(pred, gt) == pytest.approx(expected)
    seq = np.random.default_rng(1).normal(size=(5, 3, 3))
    assert M.mpjve(seq + 7.0, seq) == pytest.approx(0.0)  # a constant offset has no velocity error
    drift = seq + np.arange(5)[:, None, None] * np.array([3.0, 4.0, 0.0])
    assert M.mpjve(drift, seq, fps=120) == pytest.approx(5 * 120)
    assert M.mjae(np.array([179.0, 10.0]), np.array([-179.0, 0.0])) == pytest.approx(6.0)


def test_pcp_pdj_pck_pckh_hand_worked() -> None:
    gt = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]])
    pred = gt.copy()
    pred[0, 2] += [0.0, 6.0]  # joint 2 off by 6
    assert M.pcp_mean_endpoint(pred, gt, [(0, 1), (1, 2)]) == pytest.approx(1.0)  # limb 1-2: mean 3 <= 0.5*10
    assert M.pcp(pred, gt, [(0, 1), (1, 2)]) == pytest.approx(0.5)  # standard: end 2 is 6 > 5 off
    assert M.pcp_mean_endpoint(pred, gt, [(1, 2)], alpha=0.2) == 0.0
    assert M.pdj(pred, gt, torso=(0, 2), alpha=0.2) == pytest.approx(2 / 3)  # 0.2 * 14.1 = 2.8 < 6
    assert M.pck_diagonal(pred, gt, alpha=0.5) == pytest.approx(1.0)  # 0.5 * diagonal 14.1 = 7.1 >= 6
    assert M.pck(pred, gt, alpha=0.5) == pytest.approx(2 / 3)  # 0.5 * max(h, w) 10 = 5 < 6
    assert M.pckh(pred, gt, head=(0, 1), alpha=0.5) == pytest.approx(2 / 3)  # 0.5 * 10 = 5 < 6


def test_pcp_standard_needs_both_ends_and_thesis_form_takes_the_mean() -> None:
    gt = np.array([[[0.0, 0.0], [10.0, 0.0]], [[0.0, 0.0], [0.0, 10.0]]])  # two poses, one limb of length 10
    pred = gt.copy()
    pred[0, 0] += [1.0, 0.0]  # pose 0: start 1 off, end 6 off: mean 3.5 <= 5, but 6 > 5
    pred[0, 1] += [0.0, 6.0]
    pred[1, 1] += [4.0, 3.0]  # pose 1: start exact, end 5 off: both within 5
    assert M.pcp(pred, gt, [(0, 1)]) == pytest.approx(0.5)
    assert M.pcp_mean_endpoint(pred, gt, [(0, 1)]) == pytest.approx(1.0)


def test_pck_normalises_by_the_longer_box_side_and_the_thesis_form_by_the_diagonal() -> None:
    gt = np.array([[[0.0, 0.0], [20.0, 0.0], [20.0, 5.0]]])  # box 20 x 5: max side 20, diagonal 20.6
    pred = gt.copy()
    pred[0, 1] += [0.0, 2.05]  # 2.05 > 0.1 * 20 = 2.0, but <= 0.1 * 20.6 = 2.06
    assert M.pck(pred, gt, alpha=0.1) == pytest.approx(2 / 3)
    assert M.pck_diagonal(pred, gt, alpha=0.1) == pytest.approx(1.0)


def test_average_recall_hand_worked() -> None:
    gt = np.zeros((2, 17, 2))
    gt[1] += 500.0  # two people far apart
    vis, area = np.ones((2, 17)), np.array([1e4, 1e4])
    near = gt[1].copy()
    near[:, 0] += 8.0  # person 1 found 8 px off: an OKS between 0.5 and 0.95
    sim = M.oks(near[None], gt, vis, area, COCO_SIGMAS)[0, 1]
    assert 0.5 < sim < 0.95
    images = [{"gt": gt, "visible": vis, "area": area, "dt": np.stack([gt[0], near]), "scores": np.array([0.9, 0.2])}]
    ar = M.average_recall(images, COCO_SIGMAS)
    for t in M.OKS_THRESHOLDS:  # person 0 always found, person 1 while the threshold is below its OKS
        assert ar[float(t)] == pytest.approx((1 + (sim >= t)) / 2)
    assert ar[-1.0] == pytest.approx(np.mean([ar[float(t)] for t in M.OKS_THRESHOLDS]))
    one = M.average_recall(images, COCO_SIGMAS, max_dets=1)  # only the best-scored detection is kept
    assert one[-1.0] == pytest.approx(0.5)
    no_dets = [dict(images[0], dt=np.zeros((0, 17, 2)), scores=np.zeros(0))]
    assert M.average_recall(no_dets, COCO_SIGMAS)[-1.0] == 0.0


def test_oks_hand_worked() -> None:
    gt = np.zeros((1, 17, 2))
    vis = np.ones((1, 17))
    assert M.oks(gt, gt, vis, np.array([100.0]), COCO_SIGMAS)[0, 0] == pytest.approx(1.0)
    pred = gt.copy()
    pred[0, 0, 0] = 1.0  # nose off by 1 px, area 100: e = 1 / (4 * 0.026^2) / 100 / 2
    expected = (16 + np.exp(-1 / (4 * 0.026**2) / 100 / 2)) / 17
    assert M.oks(pred, gt, vis, np.array([100.0]), COCO_SIGMAS)[0, 0] == pytest.approx(expected)


def _random_images(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    images = []
    for i in range(25):
        g = int(rng.integers(1, 4))
        gt = rng.uniform(100, 900, (g, 1, 2)) + rng.normal(0, 60, (g, 17, 2))
        vis = (rng.random((g, 17)) > 0.2).astype(int)
        if i == 3:
            vis[0] = 0  # a person with no labelled joint: COCO ignores it
        d = int(rng.integers(0, 5))
        near = gt + rng.normal(0, rng.uniform(1, 25), (g, 17, 2))
        dt = np.concatenate([near, rng.uniform(100, 900, (max(d - g, 0), 17, 2))])[:d]
        images.append(
            {"gt": gt, "visible": vis, "area": rng.uniform(2e3, 4e4, g), "dt": dt, "scores": rng.random(len(dt))}
        )
    return images


@pytest.mark.parametrize("seed", [0, 1])
def test_ap_agrees_with_cocoeval(seed: int) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = _random_images(seed)
    gt, dets = coco_dicts(images, COCO_KEYPOINTS)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = M.average_precision(images, COCO_SIGMAS)
    precision = ev.eval["precision"][:, :, 0, 0, 0]  # (thresholds, recall points)
    theirs = [float(np.mean(p[p > -1])) for p in precision]
    np.testing.assert_allclose([ours[float(t)] for t in M.OKS_THRESHOLDS], theirs, atol=1e-6)
    assert ours[-1.0] == pytest.approx(ev.stats[0], abs=1e-6)
    recall = ev.eval["recall"][:, 0, 0, 0]  # (thresholds,)
    ar = M.average_recall(images, COCO_SIGMAS)
    np.testing.assert_allclose([ar[float(t)] for t in M.OKS_THRESHOLDS], recall, atol=1e-12)
    assert ar[-1.0] == pytest.approx(ev.stats[5], abs=1e-12)
    assert 0.0 < ours[-1.0] < 1.0
    # OKS itself, the same pairs as COCOeval's
    img = images[0]
    ious = ev.computeOks(1, 1)
    keep = np.argsort(-img["scores"], kind="mergesort")
    np.testing.assert_allclose(
        M.oks(img["dt"][keep], img["gt"], img["visible"], img["area"], COCO_SIGMAS), ious, atol=1e-12
    )


def test_ap_without_truth_says_why() -> None:
    with pytest.raises(ValueError, match="no ground-truth"):
        M.average_precision(
            [
                {
                    "gt": np.zeros((1, 17, 2)),
                    "visible": np.zeros((1, 17)),
                    "area": [1.0],
                    "dt": np.zeros((0, 17, 2)),
                    "scores": [],
                }
            ],
            COCO_SIGMAS,
        )
