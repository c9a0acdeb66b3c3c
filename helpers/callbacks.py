"""The fastai callbacks of :func:`helpers.train.train`: the per-epoch history, best-epoch keeping,
early stopping.

They are modelled on fastai's ``callback/tracker.py``: a tracker watches one value per epoch and
knows whether the epoch set a new best; :class:`KeepBest` (like fastai's ``SaveModelCallback``,
but in memory) and :class:`EarlyStopping` act on that. Unlike fastai's trackers, which read the
``Recorder``'s columns, ours read the :class:`History` row of the epoch, which also holds the
:mod:`helpers.metrics` headline of the validation pass (``valid_auroc``, ``valid_mean_auroc``,
``valid_balanced_accuracy``...), so any of those can pick the best epoch.

The order of the callbacks is fixed: fastai's ``Recorder`` (50) writes the losses, then
:class:`History` (55) writes the row, then :class:`KeepBest` (56) keeps the weights, then
:class:`EarlyStopping` (57) may end the fit, before the progress table (60).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from fastai.callback.core import Callback, CancelFitException

from . import metrics as M
from .inference import probabilities

__all__ = ["History", "HistoryTracker", "KeepBest", "EarlyStopping"]


class History(Callback):
    """Per-epoch record: losses, learning rate, time, and the :mod:`helpers.metrics` headline on the
    validation predictions gathered during the validation pass (as ``valid_<metric>``).

    Attributes:
        rows: one dict per epoch (``epoch``, ``stage``, ``train_loss``, ``valid_loss``, ``lr``,
            ``time_s``, ``valid_...``; ``metrics_error`` when the metrics could not be computed).
        stage: the label the next rows get (set by the schedules: ``frozen``, ``head``, ...).
    """

    order = 55  # after fastai's Recorder (50), before the progress table (60)

    def __init__(self, task: str, classes: Sequence[str]) -> None:
        self.task, self.classes = task, list(classes)
        self.rows: list[dict[str, Any]] = []
        self.stage = "fit"

    def before_epoch(self) -> None:
        self.t0 = time.perf_counter()
        self.preds: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def after_batch(self) -> None:
        if not self.training:  # gathered from every rank when training is distributed
            pred, y = self.learn.to_detach((self.pred.float(), self.y))
            self.preds.append(probabilities(pred, self.task).cpu())
            self.targets.append(y.cpu())

    def after_epoch(self) -> None:
        values = self.learn.recorder.values[-1] if self.learn.recorder.values else []
        row: dict[str, Any] = {
            "epoch": len(self.rows),
            "stage": self.stage,
            "train_loss": float(values[0]) if len(values) > 0 else None,
            "valid_loss": float(values[1]) if len(values) > 1 else None,
            "lr": float(self.opt.hypers[-1]["lr"]),
            "time_s": time.perf_counter() - self.t0,
        }
        if self.preds:
            probs = torch.cat(self.preds).numpy()
            y = torch.cat(self.targets).numpy()
            try:
                headline = M.headline(M.evaluate(y, probs, self.task, self.classes))
                row.update({f"valid_{k}": v for k, v in headline.items()})
            except ValueError as err:  # e.g. a validation set with one class
                row["metrics_error"] = str(err)
        self.rows.append(row)


def lower_is_better(monitor: str) -> bool:
    """Whether smaller values of ``monitor`` are better (losses and error rates, as fastai decides)."""
    return "loss" in monitor or "error" in monitor


class HistoryTracker(Callback):
    """Watches ``monitor`` in the learner's :class:`History` and notes each new best (fastai's
    ``TrackerCallback``, reading the history instead of the recorder).

    After each epoch ``new_best`` is True (the value beat the best by more than ``min_delta``),
    False (it did not) or None (the epoch has no such value, e.g. NaN or metrics that failed).
    The best carries over from one fit to the next (a frozen stage, then an unfrozen one) unless
    ``reset_on_fit``.
    """

    order = 56  # after History

    def __init__(self, monitor: str = "valid_loss", min_delta: float = 0.0, reset_on_fit: bool = False) -> None:
        self.monitor, self.min_delta, self.reset_on_fit = monitor, float(min_delta), reset_on_fit
        self.lower_is_better = lower_is_better(monitor)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.new_best: bool | None = None

    def before_fit(self) -> None:
        if self.reset_on_fit or self.best is None:
            self.best = math.inf if self.lower_is_better else -math.inf

    def after_epoch(self) -> None:
        row = self.history.rows[-1]  # the learner's History callback (fastai forwards to learn.history)
        value = row.get(self.monitor)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            self.new_best = None
            return
        if self.lower_is_better:
            self.new_best = value < self.best - self.min_delta
        else:
            self.new_best = value > self.best + self.min_delta
        if self.new_best:
            self.best, self.best_epoch = value, row["epoch"]


class KeepBest(HistoryTracker):
    """Keep the weights of the best epoch in memory and put them back at the end of every fit
    (fastai's ``SaveModelCallback`` without the file: the checkpoint is written once, at the end)."""

    order = 56

    def __init__(self, monitor: str = "valid_loss", min_delta: float = 0.0) -> None:
        super().__init__(monitor, min_delta)
        self.state: dict[str, torch.Tensor] | None = None

    def after_epoch(self) -> None:
        super().after_epoch()
        if self.new_best:
            model = getattr(self.learn.model, "module", self.learn.model)  # the network inside DDP
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def after_fit(self) -> None:
        if self.state is not None:
            getattr(self.learn.model, "module", self.learn.model).load_state_dict(self.state)


class EarlyStopping(HistoryTracker):
    """End a fit after ``patience`` epochs in a row without a new best of ``monitor``
    (fastai's ``EarlyStoppingCallback``; the count starts again with every fit)."""

    order = 57  # after KeepBest, so the epoch's weights are kept before the fit ends

    def __init__(self, monitor: str = "valid_loss", min_delta: float = 0.0, patience: int = 1) -> None:
        super().__init__(monitor, min_delta)
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = patience
        self.wait = 0

    def before_fit(self) -> None:
        super().before_fit()
        self.wait = 0

    def after_epoch(self) -> None:
        super().after_epoch()
        if self.new_best is None:
            return
        self.wait = 0 if self.new_best else self.wait + 1
        if self.wait >= self.patience:
            raise CancelFitException()
