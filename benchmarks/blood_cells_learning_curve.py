"""The blood-cells chapter's quick ResNet against the number of training images (a learning curve).

Trains the chapter's ``quick`` ResNet (:func:`helpers.configs.blood_cells_experiments`, SEED as given)
on stratified parts of the PBC training split (seed 42) with the chapter's share of its time budget
for the ResNet (:func:`helpers.training.budget.plan_runs`), and prints, per part, the training
images, the planned epochs, the training time and the test balanced accuracy with its 95 %
bootstrap interval. Validation and test splits stay whole. Run it on the larger sample::

    OMP_NUM_THREADS=1 MEDVIT_DATA=../shared/data_large python benchmarks/blood_cells_learning_curve.py \\
        --fractions 0.25 0.5 1 --out curve.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from helpers import config, configs
from helpers.data import load_dataset
from helpers.runinfo import hardware
from helpers.training.budget import plan_runs, train_planned
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
        runs = plan_runs(experiments, part, configs.blood_cells_budget(profile), upto=1)
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
                "s_per_image": round(run.plan.pass_time.train_s, 5),
                "planned_s": round(run.plan.planned_s, 1),
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
