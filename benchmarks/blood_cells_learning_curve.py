"""The blood-cells chapter's quick ResNet against the number of training images (a learning curve).

Trains the chapter's ``quick`` ResNet (:func:`helpers.configs.blood_cells_experiments`, SEED as given)
on stratified parts of the PBC training split (seed 42) for the epochs of the chapter's fixed plan
(:func:`helpers.configs.blood_cells_plan`, without its cap on training images), and prints, per part,
the training images, the epochs, the training time and the test balanced accuracy with its 95 %
bootstrap interval. Validation and test splits stay whole. Run it on the larger sample::

    OMP_NUM_THREADS=1 MEDVIT_DATA=../shared/data_large python benchmarks/blood_cells_learning_curve.py \\
        --fractions 0.25 0.5 1 --out curve.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from helpers import config, configs
from helpers.data import load_dataset
from helpers.runinfo import hardware
from helpers.training.budget import train_planned
from helpers.training.plans import apply_plan
from helpers.training.setup import _cap


def curve(fractions: list[float], seed: int) -> list[dict]:
    """One row per fraction of the training split: images, epochs, times, test balanced accuracy."""
    profile = configs.blood_cells_profile(config.get_profile("quick"))
    experiments = configs.blood_cells_experiments(profile, dataset="pbc", seed=seed)
    size = next(iter(experiments.values())).config.image_size
    data = tuple(load_dataset("pbc", split=s, size=size, profile=profile) for s in ("train", "valid", "test"))
    rows = []
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise SystemExit(f"fractions must be in (0, 1], got {fraction}")
        part = (_cap(data[0], max(round(fraction * len(data[0])), 8), 42), data[1], data[2])
        first = dict([next(iter(experiments.items()))])
        plan = configs.blood_cells_plan(profile)
        plan = dataclasses.replace(plan, runs={k: dataclasses.replace(plan[k], max_train=None) for k in first})
        runs = apply_plan(first, part, plan)
        start = time.perf_counter()
        (label, record), run = next(iter(train_planned(runs, profile).items())), next(iter(runs.values()))
        ci = record.metrics["test_ci"]["balanced_accuracy"]
        rows.append(
            {
                "model": label,
                "fraction": fraction,
                "n_train": len(run.data[0]),
                "n_test": len(data[2]),
                "epochs": run.config.epochs,
                "expected_s": round(run.plan.planned_s, 1),
                "train_s": round(record.config["train_time_s"], 1),
                "wall_s": round(time.perf_counter() - start, 1),
                "balanced_accuracy": round(record.metrics["test"]["balanced_accuracy"], 4),
                "ci_low": round(ci["low"], 4),
                "ci_high": round(ci["high"], 4),
                "seed": seed,
                "threads": torch.get_num_threads(),
                "data_source": data[0].source,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the rows and the machine as JSON here")
    args = parser.parse_args()
    rows = curve(args.fractions, args.seed)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": hardware(), "data_root": str(config.data_root()), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
