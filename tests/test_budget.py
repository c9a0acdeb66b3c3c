"""Training sized by a time budget: the measurement, the arithmetic, the caps and the sharing."""

from __future__ import annotations

import time

import pytest

from helpers.configs import Experiment, get_config
from helpers.testing import toy_splits
from helpers.training import budget
from helpers.training.budget import PassTime, TimeBudget, measure_pass_time, plan_epochs, plan_runs

# 10 ms per training image, 2 ms per validation image, batches of 32
PASS = PassTime(train_s=0.01, eval_s=0.002, batch_size=32, steps=3, threads=1)


def test_the_budget_buys_whole_epochs_up_to_the_configurations():
    # one epoch of 1,000 training and 100 validation images: 10 s + 0.2 s
    plan = plan_epochs(100, PASS, 1000, 100, min_epochs=3, max_epochs=20)
    assert (plan.n_train, plan.epochs) == (1000, 9) and plan.planned_s == pytest.approx(9 * 10.2)
    assert plan_epochs(1000, PASS, 1000, 100, min_epochs=3, max_epochs=20).epochs == 20  # capped
    assert plan_epochs(100, PASS, 1000, 100, min_epochs=3, max_epochs=5).epochs == 5


def test_too_small_a_budget_trains_on_fewer_images_not_fewer_epochs():
    plan = plan_epochs(20, PASS, 1000, 100, min_epochs=3, max_epochs=20)
    # 3 epochs must fit in 20 s: (20 / 3 - 0.2) / 0.01 = 646 images
    assert (plan.n_train, plan.n_available, plan.epochs) == (646, 1000, 3)
    assert plan.planned_s <= 20
    tiny = plan_epochs(0.5, PASS, 1000, 100, min_epochs=3, max_epochs=20)
    assert (tiny.n_train, tiny.epochs) == (32, 3)  # never less than one batch, never under the minimum


def test_bad_budgets_say_what_is_wrong():
    with pytest.raises(ValueError, match="positive number of seconds"):
        TimeBudget(seconds=0)
    with pytest.raises(ValueError, match="min_epochs"):
        TimeBudget(seconds=10, min_epochs=0)
    with pytest.raises(ValueError, match="min_epochs <= max_epochs"):
        plan_epochs(10, PASS, 100, 10, min_epochs=5, max_epochs=2)
    with pytest.raises(ValueError, match="training images"):
        plan_epochs(10, PASS, 0, 10, min_epochs=1, max_epochs=2)


def test_runs_share_the_budget_in_order(monkeypatch):
    costs = {"cheap": PASS, "dear": PassTime(0.1, 0.02, 8, 3, 1)}
    monkeypatch.setattr(budget, "measure_pass_time", lambda model, data, config, steps: costs[model])
    data = toy_splits()
    config = get_config("one_cycle").replace(epochs=20, batch_size=8)
    experiments = {name: Experiment(name, config) for name in costs}
    runs = plan_runs(experiments, data, TimeBudget(seconds=20, min_epochs=2))
    cheap, dear = runs["cheap"].plan, runs["dear"].plan
    # the first gets half (10 s) and needs 40 x 0.01 + 20 x 0.002 = 0.44 s an epoch: 20 epochs (capped)
    assert (cheap.seconds, cheap.epochs, cheap.n_train) == (10, 20, 40) and runs["cheap"].config.epochs == 20
    # the second gets the rest: 20 - 8.8 = 11.2 s at 4.4 s an epoch: 2 epochs on all 40 images
    assert dear.seconds == pytest.approx(20 - 20 * 0.44) and (dear.epochs, dear.n_train) == (2, 40)
    # half the budget: the dear run keeps its 2 epochs on a stratified part of the training split
    half = plan_runs(experiments, data, TimeBudget(seconds=10, min_epochs=2))["dear"]
    assert half.plan.n_train < 40 and len(half.data[0]) == half.plan.n_train
    assert len(set(half.data[0].labels)) == 4 and half.data[1] is data[1] and half.data[2] is data[2]
    assert list(plan_runs(experiments, data, TimeBudget(seconds=20), upto=1)) == ["cheap"]
    table = budget.plan_table(runs)
    assert list(table["epochs"]) == [20, 2] and list(table["training images"]) == ["40 of 40", "40 of 40"]
    # no budget: each run keeps its configuration's epochs and all the data
    free = plan_runs(experiments, data, None)
    assert [r.config.epochs for r in free.values()] == [20, 20] and free["dear"].plan is None
    assert free["dear"].data is data
    with pytest.raises(ValueError, match="no experiments"):
        plan_runs({}, data, TimeBudget(seconds=20))


def test_a_variant_follows_the_plan_of_the_run_it_is_compared_with(monkeypatch):
    costs = {"cheap": PASS, "dear": PassTime(0.1, 0.02, 8, 3, 1), "dear_variant": PassTime(0.5, 0.1, 8, 3, 1)}
    measured = []
    monkeypatch.setattr(
        budget, "measure_pass_time", lambda model, data, config, steps: measured.append(model) or costs[model]
    )
    data = toy_splits()
    config = get_config("one_cycle").replace(epochs=20, batch_size=8)
    experiments = {name: Experiment(name, config.replace(name=name)) for name in costs}
    runs = plan_runs(experiments, data, TimeBudget(seconds=10, min_epochs=2), follow={"dear_variant": "dear"})
    dear, variant = runs["dear"], runs["dear_variant"]
    assert measured == ["cheap", "dear"]  # the variant is not measured: it takes the plan it follows
    # the dear run's share is what is left over the two runs still to plan: each gets the same plan
    assert dear.plan.seconds == pytest.approx((10 - runs["cheap"].plan.planned_s) / 2)
    assert variant.plan is dear.plan and variant.data is dear.data and variant.config.epochs == dear.config.epochs
    assert variant.model == "dear_variant" and variant.config.name == "dear_variant"
    with pytest.raises(ValueError, match="not planned before it"):
        plan_runs(experiments, data, TimeBudget(seconds=10), follow={"cheap": "dear"})


def test_a_pass_is_measured_on_real_batches_in_well_under_a_second(one_thread):
    config = get_config("one_cycle").replace(
        batch_size=4, image_size=16, model_kwargs={"depth": 1, "embed_dim": 16, "num_heads": 2}
    )
    measure_pass_time("vit_scratch_tiny_patch4", toy_splits(), config, steps=1)  # the first call imports fastai
    start = time.perf_counter()
    measured = measure_pass_time("vit_scratch_tiny_patch4", toy_splits(), config, steps=2)
    assert time.perf_counter() - start < 0.5
    assert measured.train_s > 0 and measured.eval_s > 0 and (measured.batch_size, measured.steps) == (4, 2)
    assert measured.threads == 1
    with pytest.raises(ValueError, match="steps >= 1"):
        measure_pass_time("vit_scratch_tiny_patch4", toy_splits(), config, steps=0)


def test_frozen_epochs_count_in_the_plan_and_are_kept(monkeypatch):
    monkeypatch.setattr(budget, "measure_pass_time", lambda model, data, config, steps: PASS)
    data = toy_splits()
    base = get_config("one_cycle").replace(batch_size=8)
    experiments = {  # the CNN chapter's regimes: three epochs in all, some of them frozen
        "full": Experiment("m", base.replace(epochs=3)),
        "frozen": Experiment("m", base.replace(freeze_epochs=3, epochs=0)),
        "fine": Experiment("m", base.replace(freeze_epochs=1, epochs=2)),
    }
    runs = plan_runs(experiments, data, TimeBudget(seconds=60, min_epochs=3), follow={"frozen": "full", "fine": "full"})
    assert [(r.config.freeze_epochs, r.config.epochs) for r in runs.values()] == [(0, 3), (3, 0), (1, 2)]
    assert [budget.total_epochs(r.config) for r in runs.values()] == [3, 3, 3]
    assert list(budget.plan_table(runs)["epochs"]) == [3, 3, 3]
    # a run planned on its own never gets fewer epochs than its frozen ones
    alone = plan_runs({"frozen": experiments["frozen"]}, data, TimeBudget(seconds=60, min_epochs=1))["frozen"]
    assert (alone.config.freeze_epochs, alone.config.epochs) == (3, 0)
    assert budget.with_total_epochs(base.replace(freeze_epochs=2, epochs=5), 4).epochs == 2


def _record(bacc, ci, *, chance_level=False, n=280, epochs=20, size=32, pretrained=False):
    from types import SimpleNamespace

    return SimpleNamespace(
        metrics={
            "test": {"balanced_accuracy": bacc, "accuracy": bacc, "kappa": 0.5},
            "test_ci": {"balanced_accuracy": {"low": ci[0], "high": ci[1]}},
            "test_chance": {"no_better_than_chance": chance_level},
        },
        config={"model": "m", "epochs": epochs, "image_size": size, "pretrained": pretrained, "train_time_s": 1.0},
        data={"train": {"n": n}},
    )


def test_comparisons_leave_chance_out_and_name_what_differed():
    records = {
        "resnet": _record(0.85, (0.80, 0.90)),
        "vit": _record(0.70, (0.62, 0.78), n=200, epochs=10),
        "lite0": _record(0.88, (0.84, 0.92), size=96, pretrained=True, epochs=4),
        "deit": _record(0.14, (0.10, 0.18), chance_level=True),
    }
    said = budget.comparison_sentences(records, names={"lite0": "EfficientNet-Lite0"})
    assert said[0] == "Best: EfficientNet-Lite0, test balanced accuracy 0.880."
    resnet = next(s for s in said if s.startswith("resnet"))
    assert "0.030 behind" in resnet and "intervals overlap" in resnet
    assert "4 vs 20 epochs" in resnet and "96 vs 32 px" in resnet and "ImageNet weights vs random" in resnet
    vit = next(s for s in said if s.startswith("vit"))
    assert "do not overlap" in vit and "280 vs 200 training images" in vit
    assert "deit is no better than chance (0.140): not compared." in said and not any(
        "deit is" in s and "behind" in s for s in said
    )
    table = budget.comparison_table(records)
    assert list(table["beats chance"]) == ["yes", "yes", "yes", "NO: at chance"]
    assert list(table["init"]) == ["random", "random", "ImageNet", "random"]
