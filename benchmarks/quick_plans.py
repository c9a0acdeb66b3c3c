"""Seconds per image of every model a chapter trains at ``quick``: the measurement behind its fixed plan.

Each chapter's ``quick`` plan (:mod:`helpers.training.plans`) is chosen once from these figures on
the reference machine (2 CPU cores, no GPU) and stored with them. Run it on an idle machine,
with the threads a build uses, and copy the printed ``Measurement(...)`` into the chapter's plan::

    MEDVIT_DATA=../shared/data python benchmarks/quick_plans.py --chapters blood_cells vision_transformer

It prints, per run, the seconds per training and validation image (the median of five timed steps
after two warm-up steps, :func:`helpers.training.budget.measure_pass_time`), the threads and the
load average before and after, and the training time the chapter's plan gives on the full dataset.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os

import torch

from helpers import config, configs
from helpers.configs import Experiment
from helpers.data import load_dataset
from helpers.training.budget import measure_pass_time
from helpers.training.plans import Measurement, load_average

#: Training images of the full datasets the plans are sized for, and validation images (capped by quick).
FULL_SIZES = {"pbc": (11_964, 1_000), "pneumoniamnist": (4_708, 524)}


def chapter_runs(chapter: str) -> tuple[str, dict, object]:
    """The dataset, the experiments and the fixed quick plan (``None`` before there is one) of ``chapter``."""
    quick = config.get_profile("quick")
    plan = getattr(configs, f"{chapter}_plan", lambda profile: None)(quick)
    if chapter == "blood_cells":
        return "pbc", configs.blood_cells_experiments(quick, dataset="pbc"), plan
    if chapter == "vision_transformer":
        return "pbc", configs.vit_chapter_experiments(quick, "vit_scratch_tiny_patch8", "resnet18"), plan
    if chapter == "cnn_baselines":  # PneumoniaMNIST's 28 px trained at 32 px, as the chapter does
        exps = configs.cnn_regimes(3, batch_size=quick.batch_size)
        return (
            "pneumoniamnist",
            {k: Experiment(v.model, v.config.replace(image_size=v.config.image_size or 32)) for k, v in exps.items()},
            plan,
        )
    raise SystemExit(f"unknown chapter {chapter!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="+", default=["blood_cells", "vision_transformer", "cnn_baselines"])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    quick = config.get_profile("quick")
    today = datetime.date.today().isoformat()
    for chapter in args.chapters:
        dataset, experiments, plan = chapter_runs(chapter)
        print(f"== {chapter} ({dataset}), {torch.get_num_threads()} threads, {os.cpu_count()} cores")
        for label, exp in experiments.items():
            size = exp.config.image_size or quick.image_size
            data = tuple(
                load_dataset(dataset, s, size=size, profile=quick.replace(max_train=512))
                for s in ("train", "valid", "test")
            )
            before = load_average()
            t = measure_pass_time(exp.model, data, exp.config, steps=args.steps)
            after = load_average()
            load = max(x for x in (before, after, 0.0) if x is not None)
            n_train, n_valid = FULL_SIZES[dataset]
            line = (
                f"Measurement(train_s={t.train_s:.5f}, eval_s={t.eval_s:.5f}, date={today!r}, "
                f"threads={t.threads}, load={load:.1f})"
            )
            if plan is not None and label in plan.runs:
                run = dataclasses.replace(
                    plan[label], measured=Measurement(t.train_s, t.eval_s, today, t.threads, load)
                )
                n = min(n_train, run.max_train or n_train)
                line += f"  # {run.epochs} epochs on {n} images: {run.expected_s(n, n_valid):.0f} s on the full data"
            print(f"  {label} ({exp.model}, {size} px, batch {exp.config.batch_size}): {line}")


if __name__ == "__main__":
    main()
