"""Cameras, lifting samples, the lifters and their training, and the COCO annotation reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.pose.annotations import coco_dicts, read_coco_keypoints
from helpers.pose.cameras import Camera, cameras_around, drop_joints, look_at
from helpers.pose.experiment import MARTINEZ, MEAN_POSE, LifterSizes, against_mean_pose, build_lifters, run_lifters
from helpers.pose.lifting import (
    JointLifter,
    MartinezLifter,
    MeanPoseLifter,
    WindowLifter,
    count_parameters,
    martinez_parameters,
)
from helpers.pose.mocap import MM_SCALE, LiftingSet, make_samples, model_inputs
from helpers.pose.skeleton import BONES, COCO_KEYPOINTS
from helpers.pose.train import LiftConfig, fit_lifter, martinez_recipe, predict


@pytest.fixture(autouse=True)
def one_thread():
    """Small models train on one thread: several threads fighting over a shared CPU are many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_camera_projects_its_target_to_the_centre() -> None:
    cam = cameras_around(np.array([100.0, 900.0, -50.0]), n=3)[1]
    np.testing.assert_allclose(cam.project(np.array([100.0, 900.0, -50.0])), [500.0, 500.0], atol=1e-9)
    r = look_at(np.array([0.0, 0.0, -5.0]), np.zeros(3))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(
        Camera(r, np.array([0.0, 0.0, -5.0])).project(np.array([1.0, 0.0, 0.0])), [300.0, 500.0]
    )  # +x is on the left seen from -z
    with pytest.raises(ValueError, match="behind the camera"):
        Camera(r, np.array([0.0, 0.0, -5.0])).project(np.array([0.0, 0.0, -10.0]))
    with pytest.raises(ValueError, match="drop probability"):
        drop_joints((2, 17), 1.5, np.random.default_rng(0))


def _toy_set(frames: int = 40) -> LiftingSet:
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 5, (frames, 1, 3)), axis=0) + rng.normal(0, 300, (1, 17, 3)) + [0, 1000, 0]
    return make_samples([walk, walk[::-1].copy()], n_cameras=2)


def test_samples_windows_and_inputs() -> None:
    data = _toy_set()
    assert len(data) == 2 * 2 * 40 and np.abs(data.xyz[:, 0]).max() == 0  # pelvis-relative
    w = data.window_index(np.array([0, 45, 79]), 5)
    np.testing.assert_array_equal(w[0], [0, 0, 0, 1, 2])  # clamped at a run's start
    np.testing.assert_array_equal(w[2], [77, 78, 79, 79, 79])  # and at its end
    x = model_inputs(data.uv[:8], noise_px=0.0, drop_p=0.99, seed=0)
    assert x.shape == (8, 17, 3) and (x[:, 0, 2] == 1).all()  # the pelvis is never dropped
    assert (x[:, 1:, 2] == 0).float().mean() > 0.9 and (x[..., :2][x[..., 2] == 0] == 0).all()


def test_lifters_shapes_sizes_and_flexible_gradients() -> None:
    joint = JointLifter(dim=16, depth=2, heads=2, attn_variant="flexible")
    x = torch.randn(3, 17, 3)
    assert joint(x).shape == (3, 17, 3) and WindowLifter(5, dim=16, depth=1, heads=2)(
        torch.randn(3, 5, 17, 3)
    ).shape == (3, 17, 3)
    joint(x).square().sum().backward()
    for block in joint.encoder.blocks:  # no class token: every block's span lambda_h gets a gradient
        assert block.attn.span_decay.grad.abs().sum() > 0
    assert count_parameters(MartinezLifter(width=40)) == martinez_parameters(40)
    models = build_lifters(LifterSizes(dim=16, depth=1, heads=2, window=3))
    martinez = models[MARTINEZ][0]
    assert count_parameters(martinez) == martinez_parameters(1024) and count_parameters(models[MEAN_POSE][0]) == 0
    assert {m.p for m in martinez.modules() if isinstance(m, torch.nn.Dropout)} == {0.5}  # as the paper
    with pytest.raises(ValueError, match="odd"):
        WindowLifter(4)


def test_fit_lifter_learns_a_toy_set() -> None:
    data = _toy_set()
    model = JointLifter(dim=16, depth=1, heads=2, drop=0.0)
    before = predict(model, data)
    history = fit_lifter(model, data, LiftConfig(epochs=8, batch_size=40, lr=1e-2, noise_px=0, drop_p=0))
    after = predict(model, data)
    err = [np.linalg.norm(p - g, axis=-1).mean() for p, g in (before, after)]
    assert history["loss_mm"][-1] < history["loss_mm"][0] and err[1] < 0.7 * err[0]


def test_mean_pose_and_martinez_normalisation() -> None:
    data = _toy_set()
    targets = torch.as_tensor(data.xyz / MM_SCALE)
    mean = MeanPoseLifter()
    mean.fit(targets)
    out = mean(torch.zeros(5, 17, 3))
    assert out.shape == (5, 17, 3) and torch.allclose(out[3], targets.mean(0))
    model = MartinezLifter(width=32).eval()
    inputs = model_inputs(data.uv)
    model.fit_normalisation(inputs, targets)
    assert torch.allclose(model.in_mean, inputs.reshape(len(data), -1).mean(0))
    for layer in (model.out,):  # zero last layer: the output is the training mean exactly
        torch.nn.init.zeros_(layer.weight)
    assert torch.allclose(model(inputs[:4]), targets.mean(0).expand(4, 17, 3), atol=1e-6)


def test_the_martinez_recipe_learns_a_toy_set_under_max_norm() -> None:
    data = _toy_set()
    model = MartinezLifter(width=64, drop=0.1)
    model.fit_normalisation(model_inputs(data.uv), torch.as_tensor(data.xyz / MM_SCALE))
    base = LiftConfig(noise_px=0, drop_p=0)
    config = martinez_recipe(base, epochs=15, batch_size=32)
    assert (config.optimizer, config.schedule, config.loss, config.max_norm) == ("adam", "exp", "mse", 1.0)
    before = np.linalg.norm(np.subtract(*predict(model, data)), axis=-1).mean()
    history = fit_lifter(model, data, config)
    after = np.linalg.norm(np.subtract(*predict(model, data)), axis=-1).mean()
    assert history["loss_mm"][-1] < history["loss_mm"][0] and after < 0.7 * before
    norms = [m.weight.norm(dim=1).max().item() for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert max(norms) <= 1.0 + 1e-5  # max-norm holds after training
    with pytest.raises(ValueError, match="unknown optimizer"):
        fit_lifter(model, data, base.replace(optimizer="sgd"))


def test_every_model_is_reported_against_the_mean_pose() -> None:
    data = _toy_set()
    sizes = LifterSizes(dim=8, depth=1, heads=2, window=3, martinez_width=16, martinez_epochs=1)
    rows, fitted = run_lifters(data, {"toy": data}, LiftConfig(epochs=1, batch_size=40), sizes)
    rows = against_mean_pose(rows)
    assert {r["model"] for r in rows} == set(fitted) and MEAN_POSE in fitted
    floor = next(r for r in rows if r["model"] == MEAN_POSE and r["condition"] == "clean")
    assert floor["MPJPE below mean pose"] == 0.0
    for r in rows:
        mine = next(f for f in rows if f["model"] == MEAN_POSE and f["condition"] == r["condition"])
        assert r["MPJPE below mean pose"] == pytest.approx(mine["MPJPE"] - r["MPJPE"])
    with pytest.raises(ValueError, match="mean pose"):
        against_mean_pose([r for r in rows if r["model"] != MEAN_POSE])


def test_coco_keypoints_file_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = [{"gt": rng.uniform(0, 500, (2, 17, 2)), "visible": np.ones((2, 17)), "area": [900.0, 1600.0],
               "dt": np.zeros((0, 17, 2)), "scores": []}]  # fmt: skip
    gt, _ = coco_dicts(images, COCO_KEYPOINTS, [(p + 1, j + 1) for p, j in BONES])
    (tmp_path / "person_keypoints.json").write_text(json.dumps(gt))
    names, people = read_coco_keypoints(tmp_path / "person_keypoints.json")
    assert names == list(COCO_KEYPOINTS) and len(people[1]) == 2
    np.testing.assert_allclose(people[1][1].keypoints, images[0]["gt"][1])
    assert people[1][0].area == 900.0 and (people[1][0].visibility == 2).all()
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO keypoints file"):
        read_coco_keypoints(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text(
        json.dumps({**gt, "annotations": [{**gt["annotations"][0], "keypoints": [1, 2, 2]}]})
    )
    with pytest.raises(ValueError, match="expected 3 x 17"):
        read_coco_keypoints(tmp_path / "short.json")
