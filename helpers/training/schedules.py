"""How a fastai ``Learner`` is fitted: one small function per schedule, in the table :data:`SCHEDULES`.

Each function takes the learner and a resolved :class:`~helpers.training.config.TrainConfig`
(``epochs`` is a number) and returns the epochs of each stage it ran. It names the current
stage on the learner's :class:`~helpers.callbacks.History` (``learn.history.stage``), so every
row of the run's history says whether the network was frozen.

* ``one_cycle``: fastai's default: one cycle of the learning rate (warm-up, cosine annealing);
* ``constant``: a fixed learning rate (Keras' default way of training);
* ``fine_tune``: fastai's ``fine_tune`` (thesis 004): the head for ``freeze_epochs`` with
  ``pct_start=0.99``, then the whole network with discriminative rates ``slice(lr/200, lr/2)``;
* ``three_stage``: thesis 000: head → + last block → whole network, a constant rate, the
  epochs split in the proportions of ``stage_epochs`` (35:25:10 in the thesis);
* ``fitted``: nothing, for a model fitted elsewhere (``epochs`` and ``freeze_epochs`` 0).

With ``freeze_epochs``, ``one_cycle`` and ``constant`` first train the head alone at ``lr``,
then the whole network at ``slice(lr/10, lr)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["SCHEDULES", "split_epochs"]


def _stage(learn: Any, name: str) -> None:
    """Label the history rows that follow (when the learner records a history)."""
    history = getattr(learn, "history", None)
    if history is not None:
        history.stage = name


def _head_then_all(learn: Any, config: TrainConfig, fit: Callable[[int, Any], None]) -> list[int]:
    """``freeze_epochs`` with the head alone, then ``epochs`` of the whole network."""
    stages: list[int] = []
    if config.freeze_epochs:
        _stage(learn, "frozen")
        learn.freeze()
        fit(config.freeze_epochs, config.lr)
        stages.append(config.freeze_epochs)
        learn.unfreeze()
        _stage(learn, "unfrozen")
    if config.epochs:
        fit(config.epochs, slice(config.lr / 10, config.lr) if config.freeze_epochs else config.lr)
        stages.append(config.epochs)
    return stages


def one_cycle(learn: Any, config: TrainConfig) -> list[int]:
    """One cycle of the learning rate per fit (fastai's ``fit_one_cycle``)."""
    return _head_then_all(learn, config, lambda n, lr: learn.fit_one_cycle(n, lr))


def constant(learn: Any, config: TrainConfig) -> list[int]:
    """A constant learning rate (fastai's plain ``fit``)."""
    return _head_then_all(learn, config, lambda n, lr: learn.fit(n, lr))


def fine_tune(learn: Any, config: TrainConfig) -> list[int]:
    """fastai's ``fine_tune``: the frozen head with ``pct_start=0.99``, then everything with
    discriminative learning rates from ``lr/200`` to ``lr/2`` (``pct_start=0.3``, ``div=5``)."""
    stages: list[int] = []
    if config.freeze_epochs:
        _stage(learn, "frozen")
        learn.freeze()
        learn.fit_one_cycle(config.freeze_epochs, slice(config.lr), pct_start=0.99)
        stages.append(config.freeze_epochs)
    _stage(learn, "unfrozen")
    learn.unfreeze()
    if config.epochs:
        base = config.lr / 2
        learn.fit_one_cycle(config.epochs, slice(base / 100, base), pct_start=0.3, div=5.0)
        stages.append(config.epochs)
    return stages


def three_stage(learn: Any, config: TrainConfig) -> list[int]:
    """Thesis 000: the head, then the last block too, then the whole network, at a constant rate."""
    stages = split_epochs(config.epochs, config.stage_epochs)
    setters = (learn.freeze, lambda: learn.freeze_to(-2), learn.unfreeze)
    for name, n, setter in zip(("head", "last_block", "full"), stages, setters):
        _stage(learn, name)
        setter()
        learn.fit(n, config.lr)
    return stages


def fitted(learn: Any, config: TrainConfig) -> list[int]:
    """Nothing: the model comes fitted (a linear probe folded into its head,
    :func:`helpers.mammo_study.probe_model`) and is only evaluated and saved like a trained one."""
    return []


#: The schedules by name: ``(learner, config) -> epochs per stage``.
SCHEDULES: dict[str, Callable[[Any, TrainConfig], list[int]]] = {
    "fitted": fitted,
    "one_cycle": one_cycle,
    "constant": constant,
    "fine_tune": fine_tune,
    "three_stage": three_stage,
}


def split_epochs(epochs: int, weights: Sequence[int]) -> list[int]:
    """Split ``epochs`` over stages in proportion to ``weights``, each stage at least one epoch."""
    n = len(weights)
    if epochs < n:
        raise ValueError(f"this schedule has {n} stages and needs at least {n} epochs, got {epochs}")
    raw = [epochs * w / sum(weights) for w in weights]
    out = [max(1, int(math.floor(r))) for r in raw]
    i = 0
    while sum(out) < epochs:  # hand out what rounding left, largest remainders first
        order = sorted(range(n), key=lambda j: raw[j] - math.floor(raw[j]), reverse=True)
        out[order[i % n]] += 1
        i += 1
    while sum(out) > epochs:
        j = max(range(n), key=lambda j: out[j])
        out[j] -= 1
    return out
