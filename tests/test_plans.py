"""Plans as data: a chapter's runs fixed once for every machine, and a time budget that refuses to shrink too far."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers import config, configs
from helpers.configs import Experiment, get_config
from helpers.testing import toy_splits
from helpers.training import budget
from helpers.training.budget import PassTime, plan_table, train_planned
from helpers.training.plans import (
    FixedPlan,
    Measurement,
    PlanTooSmall,
    RunPlan,
    apply_plan,
    check_floor,
    planned_or_budgeted,
)

COST = Measurement(train_s=0.01, eval_s=0.002, date="2026-12-07", threads=2, load=0.2)


def _experiments() -> dict[str, Experiment]:
    base = get_config("one_cycle").replace(epochs=9, batch_size=8, image_size=16, bootstrap=0)
    return {"cnn": Experiment("resnet10t", base), "variant": Experiment("resnet10t", base.replace(lr=1e-4))}


def test_a_fixed_plan_sets_images_and_epochs_and_measures_nothing(monkeypatch):
    monkeypatch.setattr(budget, "measure_pass_time", lambda *a, **k: pytest.fail("a fixed plan measures nothing"))
    data = toy_splits(80)
    plan = FixedPlan({"cnn": RunPlan(3, 40, COST), "variant": RunPlan(2, 40, COST)}, target_s=60, follow={})
    runs = apply_plan(_experiments(), data, plan)
    assert [r.config.epochs for r in runs.values()] == [3, 2]
    assert [len(r.data[0]) for r in runs.values()] == [40, 40]
    assert np.bincount(runs["cnn"].data[0].labels).tolist() == [10, 10, 10, 10]  # stratified
    # the same cap gives the same images; validation and test stay whole
    assert (runs["cnn"].data[0].images == runs["variant"].data[0].images).all()
    assert runs["cnn"].data[1] is data[1] and runs["cnn"].data[2] is data[2]
    # the expected time is the reference machine's: 3 epochs of 40 x 0.01 s + 40 x 0.002 s
    assert runs["cnn"].plan.planned_s == pytest.approx(3 * (40 * 0.01 + 40 * 0.002))
    assert runs["cnn"].plan.source == "fixed"
    table = plan_table(runs)
    assert list(table["training images"]) == ["40 of 80", "40 of 80"] and set(table["plan"]) == {"fixed"}


def test_a_plan_larger_than_the_split_takes_it_whole_and_followers_share_images():
    data = toy_splits(n=40)
    plan = FixedPlan(
        {"cnn": RunPlan(2, 1000, COST), "variant": RunPlan(2, 12, COST)}, target_s=60, follow={"variant": "cnn"}
    )
    runs = apply_plan(_experiments(), data, plan)
    assert len(runs["cnn"].data[0]) == 40 and runs["variant"].data[0] is runs["cnn"].data[0]


def test_runs_the_plan_does_not_name_take_its_default_or_fail_clearly():
    data = toy_splits(80)
    with pytest.raises(KeyError, match="the plan has no run 'variant'"):
        apply_plan(_experiments(), data, FixedPlan({"cnn": RunPlan(2, None, COST)}, target_s=10))
    runs = apply_plan(_experiments(), data, FixedPlan({}, target_s=10, default=RunPlan(4, 20, COST)))
    assert {r.config.epochs for r in runs.values()} == {4} and {len(r.data[0]) for r in runs.values()} == {20}


def test_bad_plans_say_what_is_wrong():
    with pytest.raises(ValueError, match="epochs"):
        RunPlan(0, None, COST)
    with pytest.raises(ValueError, match="max_train"):
        RunPlan(1, 0, COST)
    with pytest.raises(ValueError, match="positive seconds"):
        Measurement(train_s=0, eval_s=0, date="x", threads=1, load=0)


def test_a_budget_that_shrinks_a_run_below_its_floor_refuses(monkeypatch):
    slow = PassTime(train_s=0.5, eval_s=0.01, batch_size=8, steps=3, threads=1)
    monkeypatch.setattr(budget, "measure_pass_time", lambda *a, **k: slow)
    data, exps = toy_splits(80), _experiments()
    plan = FixedPlan({k: RunPlan(3, None, COST, min_per_class=15) for k in exps}, target_s=60)
    # 6 s for two runs of at least one epoch at 0.5 s per image: 5 images each, one class or two
    with pytest.raises(PlanTooSmall, match="too few training images.*BUDGET_S"):
        planned_or_budgeted(exps, data, plan, 6.0)
    # enough seconds: all 80 images (20 a class), at most the plan's 3 epochs
    runs = planned_or_budgeted(exps, data, plan, 1000.0)
    assert {len(r.data[0]) for r in runs.values()} == {80} and {r.config.epochs for r in runs.values()} == {3}
    assert {r.plan.source for r in runs.values()} == {"budget"}
    check_floor(runs, plan)  # the whole split is never refused


def test_the_chapters_quick_plans_fit_their_target_on_the_reference_machine():
    """Each plan's expected training time on the full dataset it is sized for stays within its target."""
    quick = config.get_profile("quick")
    # training images of the full data, and validation images capped by the profile (max_eval)
    full_sizes = {"blood": (11_964, 1_000), "vit": (11_964, 1_000), "cnn": (4_708, 524)}
    plans = {
        "blood": configs.blood_cells_plan(quick),
        "vit": configs.vit_chapter_plan(quick),
        "cnn": configs.cnn_chapter_plan(quick),
    }
    for chapter, plan in plans.items():
        n_train, n_valid = full_sizes[chapter]
        total = sum(p.expected_s(min(n_train, p.max_train or n_train), n_valid) for p in plan.runs.values())
        assert total <= 1.1 * plan.target_s, f"{chapter}: {total:.0f} s expected against a target of {plan.target_s} s"
        assert all(p.measured.threads >= 1 and p.measured.date for p in plan.runs.values())


@pytest.mark.slow
def test_the_blood_chapters_smoke_runs_give_the_same_numbers_beside_a_cpu_hog(real_data, tmp_workdirs, one_thread):
    """The chapter's smoke runs, once alone and once with another process spinning on the CPU: same metrics."""
    smoke = configs.blood_cells_profile(config.get_profile("smoke"))
    experiments = configs.blood_cells_experiments(smoke, dataset="pbc", seed=0)
    from helpers.data import load_dataset

    data = tuple(load_dataset("pbc", s, size=32, profile=smoke, verbose=False) for s in ("train", "valid", "test"))
    plan = configs.blood_cells_plan(smoke)

    def metrics() -> dict[str, float]:
        records = train_planned(apply_plan(experiments, data, plan), smoke)
        return {k: r.metrics["test"]["balanced_accuracy"] for k, r in records.items()} | {
            f"{k} loss": r.history[-1]["train_loss"] for k, r in records.items()
        }

    alone = metrics()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = metrics()
    finally:
        hog.kill()
        hog.wait()
    assert busy == alone


def test_runs_at_two_image_sizes_take_the_same_part_of_their_own_splits():
    at = {16: toy_splits(80, size=16), 24: toy_splits(80, size=24)}
    exps = _experiments()
    exps["variant"] = Experiment("resnet10t", exps["variant"].config.replace(image_size=24))
    plan = FixedPlan({k: RunPlan(2, 40, COST) for k in exps}, target_s=60)
    runs = apply_plan(exps, lambda size: at[size], plan)
    small, large = runs["cnn"].data[0], runs["variant"].data[0]
    assert small.images.shape[1:3] == (16, 16) and large.images.shape[1:3] == (24, 24)
    assert (small.labels == large.labels).all() and runs["variant"].data[1] is at[24][1]
