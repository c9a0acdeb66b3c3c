"""Plans as data: how many images and epochs a chapter's runs train on, fixed once for every machine.

A chapter's numbers must not depend on how busy the reader's machine is. A :class:`FixedPlan` says,
for each run of a chapter at one profile, the epochs and the most training images it trains on
(:class:`RunPlan`), and keeps the measurement that justified the choice: the seconds per training
and validation image of each model on the reference machine (2 CPU cores, no GPU), the date, the
threads and the load average when it was measured (:class:`Measurement`). Given the same data
root, seed and thread count, :func:`apply_plan` gives every machine the same runs; the page prints
the plan with its expected time on the reference machine beside the time the run took here.

A time budget (:mod:`helpers.training.budget`) stays available as an explicit choice (a chapter's
``BUDGET_S`` parameter): it measures this machine now and sizes the runs to it. A budget that
would shrink a run below its plan's floor (:attr:`RunPlan.min_per_class` images of each class)
refuses to train (:func:`check_floor`) rather than report chance-level numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .budget import BudgetPlan, PassTime, PlannedRun, Splits, TimeBudget, plan_runs, splits_for, with_total_epochs

__all__ = [
    "Measurement",
    "RunPlan",
    "FixedPlan",
    "PlanTooSmall",
    "apply_plan",
    "planned_or_budgeted",
    "check_floor",
    "load_average",
]

#: The machine every fixed plan is measured on: what ``make book`` is sized for.
REFERENCE_MACHINE = "2 CPU cores (x86-64), no GPU"


@dataclass(frozen=True)
class Measurement:
    """What one image cost a model on the reference machine when its plan was chosen.

    Attributes:
        train_s: seconds per training image (forward, backward, optimiser step; augmented batches).
        eval_s: seconds per validation image (forward only).
        date: when it was measured (ISO date).
        threads: PyTorch's CPU threads during the measurement.
        load: the 1-minute load average when it was measured.
    """

    train_s: float
    eval_s: float
    date: str
    threads: int
    load: float

    def __post_init__(self) -> None:
        if not (self.train_s > 0 and self.eval_s >= 0 and math.isfinite(self.train_s)):
            raise ValueError(f"a measurement needs positive seconds per image, got {self.train_s}, {self.eval_s}")


@dataclass(frozen=True)
class RunPlan:
    """One run's fixed plan.

    Attributes:
        epochs: passes over the training images (frozen epochs included).
        max_train: the most training images (a stratified part, seed 42, when the split has more);
            ``None`` trains on the whole split.
        measured: the cost of an image pass on the reference machine, from which the expected time
            is computed.
        min_per_class: the fewest training images per class this run may be shrunk to by a time
            budget (:func:`check_floor`); below it the chapter's claims were never measured.
    """

    epochs: int
    max_train: int | None
    measured: Measurement
    min_per_class: int = 30

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"a plan needs a whole number of epochs >= 1, got {self.epochs!r}")
        if self.max_train is not None and self.max_train < 1:
            raise ValueError(f"max_train must be None or >= 1, got {self.max_train!r}")

    def expected_s(self, n_train: int, n_valid: int) -> float:
        """Expected training seconds on the reference machine for these split sizes."""
        per_epoch = n_train * self.measured.train_s + n_valid * self.measured.eval_s
        return self.epochs * per_epoch


@dataclass(frozen=True)
class FixedPlan:
    """A chapter's runs at one profile: label -> :class:`RunPlan`, and what the plan was sized for.

    Attributes:
        runs: each run's plan, by the label the chapter gives the run.
        target_s: the training time the plan was chosen to fit on the reference machine, for the
            largest data the chapter expects (the full dataset).
        note: how the numbers were chosen, in a sentence (shown on the page).
        follow: runs that take another run's training images (label -> label of the run followed).
        default: the plan of a run the plan does not name (a model a reader asks for by parameter);
            ``None``: such a run is an error.
    """

    runs: Mapping[str, RunPlan]
    target_s: float
    note: str = ""
    follow: Mapping[str, str] = field(default_factory=dict)
    default: RunPlan | None = None

    def __getitem__(self, label: str) -> RunPlan:
        if label in self.runs:
            return self.runs[label]
        if self.default is not None:
            return self.default
        raise KeyError(f"the plan has no run {label!r}; it plans {sorted(self.runs)}")

    def __contains__(self, label: object) -> bool:
        return label in self.runs or self.default is not None


class PlanTooSmall(RuntimeError):
    """A time budget shrank a run below the size its chapter's claims were measured at."""


def _as_budget_plan(plan: RunPlan, n_train: int, n_available: int, n_valid: int) -> BudgetPlan:
    """A fixed plan in the shape the training tables read (seconds: the expected time)."""
    m = plan.measured
    expected = plan.expected_s(n_train, n_valid)
    times = PassTime(m.train_s, m.eval_s, 0, 0, m.threads)
    return BudgetPlan(expected, n_train, n_available, plan.epochs, expected, times, source="fixed")


def apply_plan(
    experiments: Mapping[str, Any], data: Splits | Callable[[int | None], Splits], plan: FixedPlan
) -> dict[str, PlannedRun]:
    """The runs of ``experiments`` (label -> Experiment) as ``plan`` fixes them: the same on every machine.

    Each run trains for its plan's epochs on at most its ``max_train`` training images (a stratified
    part, seed 42, so that runs with the same cap see the same images, at any image size);
    validation and test stay whole. A run in ``plan.follow`` takes the training images of the run it
    follows. ``data`` is the three splits, or a function of the image size that returns them (for
    runs at different sizes, :func:`splits_for`).

    Raises:
        KeyError: for an experiment the plan does not cover.
    """
    from .setup import _cap

    out: dict[str, PlannedRun] = {}
    for label, exp in experiments.items():
        run, (train, valid, test) = plan[label], splits_for(data, exp.config)
        lead = plan.follow.get(label)
        part = out[lead].data[0] if lead in out else _cap(train, run.max_train, 42)
        fixed = _as_budget_plan(run, len(part), len(train), len(valid))
        out[label] = PlannedRun(exp.model, with_total_epochs(exp.config, run.epochs), (part, valid, test), fixed)
    return out


def check_floor(runs: Mapping[str, PlannedRun], plan: FixedPlan) -> None:
    """Refuse runs that a budget shrank below their plan's floor of training images per class.

    A run that trains on its whole split is never refused (a small dataset is what it is); only a
    run cut to a part of its split by a budget must keep :attr:`RunPlan.min_per_class` images of
    each class.

    Raises:
        PlanTooSmall: naming each run, its images per class and the floor.
    """
    import numpy as np

    short = []
    for label, run in runs.items():
        train, p = run.data[0], run.plan
        if p is None or p.n_train >= p.n_available or label not in plan:
            continue
        labels = np.asarray(train.labels)
        if labels.ndim == 1:
            fewest = int(np.bincount(labels, minlength=len(train.classes)).min())
        else:  # multi-label: images in all
            fewest = len(train)
        floor = plan[label].min_per_class
        if fewest < floor:
            short.append(f"{label}: {p.n_train} of {p.n_available} training images, {fewest} in its smallest class")
    if short:
        raise PlanTooSmall(
            "the time budget leaves too few training images to say anything ("
            + "; ".join(short)
            + f"; the floor is {min(plan[k].min_per_class for k in runs)} per class). "
            "Give it more seconds (BUDGET_S) or leave BUDGET_S=None to train the chapter's fixed plan."
        )


def planned_or_budgeted(
    experiments: Mapping[str, Any],
    data: Splits | Callable[[int | None], Splits],
    plan: FixedPlan | None,
    budget_s: float | None,
    **kw: Any,
) -> dict[str, PlannedRun]:
    """The chapter's runs: its fixed ``plan`` by default, or sized by ``budget_s`` seconds measured here.

    With ``budget_s`` the runs are measured on this machine now and planned by
    :func:`~helpers.training.budget.plan_runs` (each at most its fixed plan's epochs when a plan
    exists), then checked against the plan's floor (:func:`check_floor`). With neither, every run
    keeps its configuration's epochs and all of ``data``.
    """
    if budget_s is None:
        if plan is None:
            return plan_runs(experiments, data, None)
        return apply_plan(experiments, data, plan)
    if plan is not None:  # the plan's epochs are the most a budget may buy
        experiments = {k: type(e)(e.model, with_total_epochs(e.config, plan[k].epochs)) for k, e in experiments.items()}
    min_epochs = kw.pop("min_epochs", 1)
    runs = plan_runs(experiments, data, TimeBudget(float(budget_s), min_epochs=min_epochs), **kw)
    if plan is not None:
        check_floor(runs, plan)
    return runs


def load_average() -> float | None:
    """The 1-minute load average of this machine (``None`` where the system does not report one)."""
    import os

    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None
