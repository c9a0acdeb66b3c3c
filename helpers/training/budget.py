"""Training sized by a time budget: measure what one image pass costs here, then choose images and epochs.

A fixed number of epochs fits one machine; a budget in seconds fits any. :func:`measure_pass_time`
times a few real training steps (forward, backward, optimiser step, on augmented batches of the
training split) and a few validation batches of a model and configuration on this machine, after
warm-up steps. :func:`plan_epochs` turns a share of a :class:`TimeBudget` into a plan: the whole
training split when it fits the budget's minimum of epochs (else the largest stratified part that
does), and as many epochs as the share pays for, capped at the configuration's epochs.
:func:`plan_runs` shares one budget among several runs in order (each gets what is left divided
by the runs still to plan), and :func:`train_planned` trains them and tabulates their test numbers.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TimeBudget",
    "PassTime",
    "BudgetPlan",
    "PlannedRun",
    "measure_pass_time",
    "epoch_seconds",
    "plan_epochs",
    "plan_runs",
    "total_epochs",
    "with_total_epochs",
    "plan_table",
    "train_planned",
    "comparison_table",
    "comparison_sentences",
    "beats_chance",
    "splits_for",
]

#: A run's ``(train, valid, test)`` ImageDatasets.
Splits = tuple[Any, Any, Any]


def splits_for(data: Splits | Callable[[int | None], Splits], config: Any) -> Splits:
    """The ``(train, valid, test)`` splits a run with ``config`` trains on: ``data`` itself, or, when
    runs train at different image sizes, ``data(config.image_size)``."""
    return data(config.image_size) if callable(data) else data


@dataclass(frozen=True)
class TimeBudget:
    """Seconds of training to share among a chapter's runs, and the fewest epochs worth a run.

    Attributes:
        seconds: training time for all the runs together (evaluation and set-up not included).
        min_epochs: no run gets fewer epochs; the training images shrink instead.
    """

    seconds: float
    min_epochs: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.seconds, (int, float)) and self.seconds > 0 and math.isfinite(self.seconds)):
            raise ValueError(f"a time budget needs a positive number of seconds, got {self.seconds!r}")
        if not (isinstance(self.min_epochs, int) and self.min_epochs >= 1):
            raise ValueError(f"min_epochs must be a whole number >= 1, got {self.min_epochs!r}")


@dataclass(frozen=True)
class PassTime:
    """What one image costs a model on this machine.

    Attributes:
        train_s: seconds per training image (forward, backward and optimiser step, augmented batches).
        eval_s: seconds per validation image (forward only).
        batch_size: the batch size measured.
        steps: timed training steps (after two warm-up steps).
        threads: PyTorch's CPU threads during the measurement.
    """

    train_s: float
    eval_s: float
    batch_size: int
    steps: int
    threads: int


@dataclass(frozen=True)
class BudgetPlan:
    """One run's share of a budget and what it buys.

    Attributes:
        seconds: the run's share of the budget.
        n_train: training images to use (all of ``n_available`` when the minimum of epochs fits).
        n_available: training images in the split.
        epochs: epochs to train.
        planned_s: the expected training time, ``epochs`` times :func:`epoch_seconds`.
        pass_time: the measurement the plan rests on.
        source: where the plan comes from: ``"budget"`` (measured on this machine now) or
            ``"fixed"`` (a chapter's plan, measured once on the reference machine:
            :mod:`helpers.training.plans`).
    """

    seconds: float
    n_train: int
    n_available: int
    epochs: int
    planned_s: float
    pass_time: PassTime
    source: str = "budget"


@dataclass(frozen=True)
class PlannedRun:
    """A run ready to train: its model and configuration (epochs set), its data and its plan
    (``None`` for a run trained with its configuration's epochs, outside any budget)."""

    model: str
    config: Any
    data: tuple[Any, Any, Any]
    plan: BudgetPlan | None = None


def _timed_steps(step: Any, batches: Any, steps: int, warmup: int = 2) -> float:
    """Median seconds per image of ``steps`` calls of ``step`` on ``batches``, after ``warmup``
    untimed calls (the first steps of a network are slower: allocation, kernel choice). The median
    of the steps, not their mean, so that a step slowed by another process on a shared machine
    does not set the plan."""
    it, per_image = iter(batches), []
    for i in range(warmup + steps):
        try:
            xb, yb = next(it)
        except StopIteration:
            it = iter(batches)
            xb, yb = next(it)
        start = time.perf_counter()
        step(xb, yb)
        if i >= warmup:
            per_image.append((time.perf_counter() - start) / len(xb))
    return statistics.median(per_image)


def measure_pass_time(model: str, data: tuple[Any, Any, Any], config: Any, *, steps: int = 5) -> PassTime:
    """Seconds per training and per validation image of ``model`` trained as ``config`` says, on this machine.

    Builds the network, the loss and the loaders as :func:`helpers.train.train` does (same image size,
    batch size, augmentation), runs two warm-up steps and then ``steps`` timed training steps with
    PyTorch's AdamW (the median step counts), and the same for forward passes on validation batches
    (batches are reused when a split has fewer); on a GPU each step waits for the device. MixUp and
    fastai's callbacks are not included: the training loop costs a little more than this (see the
    chapters' planned and measured times). A configuration with a distillation teacher
    (``distill_from``) has the teacher's forward pass in each training step, as training has.

    Args:
        model: a :func:`~helpers.models.vision.create_model` name.
        data: ``(train, valid, test)`` ImageDatasets (test is not used).
        config: the :class:`~helpers.training.config.TrainConfig` (``batch_size`` must be set).
        steps: timed steps of each kind (at least 1).

    Raises:
        ValueError: for ``steps`` < 1, a configuration without a batch size, or an empty split.
    """
    import torch

    from ..config import get_device
    from ..data.loaders import make_dataloaders
    from .setup import build_loss, build_model

    if steps < 1 or not config.batch_size:
        raise ValueError(f"need steps >= 1 and a batch size, got steps={steps}, batch_size={config.batch_size}")
    train_ds, valid_ds = data[0], data[1]
    if len(train_ds) == 0 or len(valid_ds) == 0:
        raise ValueError("measuring a pass needs training and validation images")
    dls = make_dataloaders(
        train_ds, valid_ds, config.batch_size, augment=config.augment, seed=config.seed, stats=config.stats
    )
    xb, _ = dls.one_batch()
    device = get_device()
    net = build_model(model, config, len(train_ds.classes), int(xb.shape[1]), int(xb.shape[-1])).net
    net.to(device)
    wait = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)  # GPU work is asynchronous
    loss_func = build_loss(train_ds.task, config, train_ds.labels)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    teacher = _teacher_pass(config, device)

    def train_step(x: Any, y: Any) -> None:
        teacher(x)
        loss = loss_func(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        wait()

    def eval_step(x: Any, y: Any) -> None:
        with torch.no_grad():
            net(x)
        wait()

    net.train()
    train_s = _timed_steps(train_step, dls.train, steps)
    net.eval()
    eval_s = _timed_steps(eval_step, dls.valid, steps)
    return PassTime(train_s, eval_s, int(config.batch_size), steps, torch.get_num_threads())


def _teacher_pass(config: Any, device: Any) -> Any:
    """The distillation teacher's forward pass on a batch (at its own input size), or nothing."""
    import torch
    import torch.nn.functional as F

    if not config.distill_from:
        return lambda x: None
    from .distill import HardDistillation

    hook = HardDistillation.from_checkpoint(config.distill_from)
    teacher, size = hook.teacher.to(device), hook.input_size

    @torch.no_grad()
    def run(x: Any) -> None:
        if size and x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        teacher(x)

    return run


def epoch_seconds(pass_time: PassTime, n_train: int, n_valid: int) -> float:
    """Expected seconds of one epoch: ``n_train`` training passes and ``n_valid`` validation passes."""
    return n_train * pass_time.train_s + n_valid * pass_time.eval_s


def plan_epochs(
    seconds: float, pass_time: PassTime, n_available: int, n_valid: int, *, min_epochs: int, max_epochs: int
) -> BudgetPlan:
    """The images and epochs that ``seconds`` of training pay for.

    All ``n_available`` training images when ``min_epochs`` of them fit in ``seconds``, else the
    most that do (never fewer than one batch); then as many whole epochs as fit, at least
    ``min_epochs`` and at most ``max_epochs``.

    Raises:
        ValueError: for a non-positive budget, no training images, or ``max_epochs`` < ``min_epochs``.
    """
    if seconds <= 0 or n_available < 1:
        raise ValueError(f"need a positive budget and training images, got {seconds} s and {n_available} images")
    if not 1 <= min_epochs <= max_epochs:
        raise ValueError(f"need 1 <= min_epochs <= max_epochs, got {min_epochs} and {max_epochs}")
    n_train = n_available
    if min_epochs * epoch_seconds(pass_time, n_available, n_valid) > seconds:
        fits = (seconds / min_epochs - n_valid * pass_time.eval_s) / pass_time.train_s
        n_train = int(min(n_available, max(pass_time.batch_size, math.floor(fits))))
    per_epoch = epoch_seconds(pass_time, n_train, n_valid)
    epochs = int(min(max_epochs, max(min_epochs, math.floor(seconds / per_epoch))))
    return BudgetPlan(float(seconds), n_train, n_available, epochs, epochs * per_epoch, pass_time)


def plan_runs(
    experiments: Mapping[str, Any],
    data: Splits | Callable[[int | None], Splits],
    budget: TimeBudget | None,
    *,
    upto: int | None = None,
    steps: int = 5,
    follow: Mapping[str, str] | None = None,
) -> dict[str, PlannedRun]:
    """Share ``budget`` among ``experiments`` (label -> :class:`~helpers.configs.Experiment`), in order.

    ``data`` is the three splits, or a function of the image size that returns them (:func:`splits_for`).

    With no budget (``None``), every run keeps its configuration's epochs and all of ``data``.

    Each run is measured (:func:`measure_pass_time`) just before it is planned and gets the seconds
    left divided by the runs still to plan, so what one run leaves unused (its epochs capped at its
    configuration's) goes to the next. A run whose minimum of epochs does not fit on the whole
    training split trains on a stratified part of it (seed 42); validation and test stay whole.
    A configuration's epochs are planned in all (:func:`total_epochs`: frozen epochs and the rest; the
    frozen ones are kept and count towards the budget's minimum).
    ``upto`` plans only the first runs (with the shares they get among all of them). ``follow`` maps a
    run to an earlier one whose plan it takes (the same training images and epochs, its expected time
    counted against the budget): a variant that must see the same batches as the run it is compared
    with, and that costs about as much.

    Raises:
        ValueError: when there is no experiment to plan, or a run follows one that is not planned before it.
    """
    from .setup import _cap

    if not experiments:
        raise ValueError("no experiments to plan")
    labels = list(experiments)[: upto or None]
    if budget is None:
        return {
            label: PlannedRun(
                experiments[label].model, experiments[label].config, splits_for(data, experiments[label].config)
            )
            for label in labels
        }
    left, plans, follow = float(budget.seconds), {}, dict(follow or {})
    for i, label in enumerate(labels):
        exp = experiments[label]
        splits = splits_for(data, exp.config)
        if label in follow:
            if follow[label] not in plans:
                raise ValueError(f"run {label!r} follows {follow[label]!r}, which is not planned before it")
            lead = plans[follow[label]]
            config = with_total_epochs(exp.config, lead.plan.epochs)
            plans[label] = PlannedRun(exp.model, config, lead.data, lead.plan)
            left -= lead.plan.planned_s
            continue
        times = measure_pass_time(exp.model, splits, exp.config, steps=steps)
        plan = plan_epochs(
            left / (len(experiments) - i),
            times,
            len(splits[0]),
            len(splits[1]),
            min_epochs=max(budget.min_epochs, int(exp.config.freeze_epochs or 0)),
            max_epochs=total_epochs(exp.config),
        )
        left -= plan.planned_s
        runs = (_cap(splits[0], plan.n_train, 42), splits[1], splits[2])
        plans[label] = PlannedRun(exp.model, with_total_epochs(exp.config, plan.epochs), runs, plan)
    return plans


def total_epochs(config: Any) -> int:
    """The passes over the training images that ``config`` makes: its frozen epochs and the ones after."""
    return int(config.epochs or 0) + int(config.freeze_epochs or 0)


def with_total_epochs(config: Any, total: int) -> Any:
    """``config`` trained for ``total`` epochs in all: its frozen epochs first, as configured (a plan
    never asks for fewer), and the rest of the whole network after them."""
    return config.replace(epochs=max(int(total) - int(config.freeze_epochs or 0), 0))


def plan_table(runs: Mapping[str, PlannedRun]) -> Any:
    """The plans side by side: training images used of those available, epochs (frozen ones
    included), seconds per image and the expected training time — for a budget, measured here now
    with its share of the budget; for a fixed plan, measured on the reference machine."""
    import pandas as pd

    rows = {}
    for label, run in runs.items():
        p = run.plan
        fixed = p is not None and p.source == "fixed"
        rows[label] = {
            "training images": f"{len(run.data[0])} of {len(run.data[0]) if p is None else p.n_available}",
            "epochs": total_epochs(run.config),
            "plan": "-" if p is None else ("fixed" if fixed else "budget, measured here"),
            "budget share s": None if p is None or fixed else round(p.seconds),
            "s/training image": None if p is None else round(p.pass_time.train_s, 5),
            "threads": None if p is None else p.pass_time.threads,
            "expected training s": None if p is None else round(p.planned_s),
        }
    table = pd.DataFrame(rows).T
    return table.drop(columns=[c for c in table if table[c].isna().all()])


def train_planned(
    runs: Mapping[str, PlannedRun], profile: Any, *, progress: bool = False, teachers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Train each planned run, in order, with :func:`helpers.train.train` (its record saved); label -> run record.

    ``teachers`` maps a DeiT student's label to the label of an earlier run whose checkpoint teaches it
    (``TrainConfig.distill_from``: hard-label distillation from the teacher's predictions).

    Raises:
        ValueError: when a teacher is not a run trained before its student.
    """
    from .loop import train

    records: dict[str, Any] = {}
    for label, r in runs.items():
        config = r.config
        if teachers and label in teachers:
            if teachers[label] not in records:
                raise ValueError(f"{label!r} is taught by {teachers[label]!r}, which is not trained before it")
            config = config.replace(distill_from=records[teachers[label]].checkpoint)
        records[label] = train(r.model, r.data, config, profile=profile, progress=progress)
    return records


def _interval(ci: Mapping[str, Any], metric: str) -> str:
    """``low–high`` of a bootstrap interval, or an empty string when there is none."""
    band = ci.get(metric)
    return f"{band['low']:.3f}–{band['high']:.3f}" if isinstance(band, Mapping) and "low" in band else ""


def beats_chance(record: Any) -> bool | None:
    """Whether a run's test predictions beat the shuffled-label interval of chance
    (:func:`helpers.chance.chance_check`, stored with the run); ``None`` when it was not checked."""
    check = record.metrics.get("test_chance") or {}
    return None if "no_better_than_chance" not in check else not check["no_better_than_chance"]


def comparison_table(records: Mapping[str, Any], runs: Mapping[str, PlannedRun] | None = None) -> Any:
    """The runs side by side: model, initialisation, image size, training images, epochs, times (expected
    where a plan exists), the test split's balanced accuracy, accuracy and kappa with their 95 %
    bootstrap intervals, and whether the run beat chance (:func:`beats_chance`)."""
    import pandas as pd

    rows = {}
    for label, record in records.items():
        test, ci = record.metrics["test"], record.metrics.get("test_ci") or {}
        plan = runs[label].plan if runs and label in runs else None
        chance = beats_chance(record)
        rows[label] = {
            "model": record.config.get("model") or label,
            "init": "ImageNet" if record.config.get("pretrained") else "random",
            "px": record.config.get("image_size"),
            "training images": (record.data.get("train") or {}).get("n"),
            "epochs": record.config.get("epochs"),
            "training s (expected)": None if plan is None else round(plan.planned_s),
            "training s": round(record.config["train_time_s"]),
            **{k: round(float(test[k]), 3) for k in ("balanced_accuracy", "accuracy", "kappa") if k in test},
            "balanced_accuracy 95% CI": _interval(ci, "balanced_accuracy"),
            "beats chance": {None: "not checked", True: "yes", False: "NO: at chance"}[chance],
        }
    return pd.DataFrame(rows).T


def _differences(a: Any, b: Any) -> str:
    """What differed between two runs' settings, in words (images, epochs, image size, initialisation)."""
    out = []
    na, nb = ((r.data.get("train") or {}).get("n") for r in (a, b))
    for what, x, y in (
        ("training images", na, nb),
        ("epochs", a.config.get("epochs"), b.config.get("epochs")),
        ("px", a.config.get("image_size"), b.config.get("image_size")),
    ):
        if x != y:
            out.append(f"{x} vs {y} {what}")
    if bool(a.config.get("pretrained")) != bool(b.config.get("pretrained")):
        out.append("ImageNet weights vs random" if a.config.get("pretrained") else "random vs ImageNet weights")
    return ", ".join(out) if out else "the same images, epochs and size"


def comparison_sentences(records: Mapping[str, Any], names: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per run after the best: how far behind the best run it is in test balanced accuracy,
    whether the 95 % intervals overlap, and what differed between the two; runs that did not beat
    chance are named as such and left out of the comparison.

    Args:
        records: label -> run record.
        names: label -> the name to print (default: the label).
    """
    names = dict(names or {})
    name = lambda k: names.get(k, k)
    ba = {k: float(r.metrics["test"]["balanced_accuracy"]) for k, r in records.items()}
    out = [
        f"{name(k)} is no better than chance ({ba[k]:.3f}): not compared."
        for k in ba
        if beats_chance(records[k]) is False
    ]
    ranked = sorted((k for k in ba if beats_chance(records[k]) is not False), key=ba.get, reverse=True)
    if not ranked:
        return out
    best = ranked[0]
    out.insert(0, f"Best: {name(best)}, test balanced accuracy {ba[best]:.3f}.")
    for k in ranked[1:]:
        ci = [(records[x].metrics.get("test_ci") or {}).get("balanced_accuracy") for x in (best, k)]
        if None in ci:
            overlap = "no intervals at this profile"
        elif ci[0]["low"] <= ci[1]["high"] and ci[1]["low"] <= ci[0]["high"]:
            overlap = "the 95 % intervals overlap: this run does not separate them"
        else:
            overlap = "the 95 % intervals do not overlap"
        out.append(
            f"{name(k)} is {ba[best] - ba[k]:.3f} behind ({ba[k]:.3f}); {overlap}; "
            f"what differed: {_differences(records[best], records[k])}."
        )
    return out
