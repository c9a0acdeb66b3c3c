"""The training callbacks on a tiny learner: the history rows, the kept best epoch, early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from torch import nn

from helpers.callbacks import EarlyStopping, History, KeepBest, lower_is_better


def _learner(*cbs: Callback, seed: int = 0) -> Learner:
    """Logistic regression on 32 separable points, batches of 8, quiet."""
    torch.manual_seed(seed)
    x = torch.randn(32, 4)
    y = (x[:, 0] > 0).long()
    items = list(zip(x, y))
    dls = DataLoaders(DataLoader(items, bs=8, shuffle=True), DataLoader(items, bs=8), device="cpu")
    learn = Learner(dls, nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(), cbs=[History("binary", ["a", "b"]), *cbs])
    learn.remove_cb(ProgressCallback)
    learn.logger = lambda *a, **k: None
    return learn


class Scripted(Callback):
    """Writes a scripted ``valid_score`` into each history row and snapshots the weights per epoch."""

    order = 55.5  # after History, before the trackers

    def __init__(self, values):
        self.values, self.snapshots = list(values), []

    def after_epoch(self):
        row = self.learn.history.rows[-1]
        row["valid_score"] = self.values[row["epoch"]]
        self.snapshots.append({k: v.detach().clone() for k, v in self.learn.model.state_dict().items()})


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_history_records_losses_lr_and_validation_metrics(one_thread):
    learn = _learner()
    learn.history.stage = "frozen"
    learn.fit(2, 0.1)
    rows = learn.history.rows
    assert [r["epoch"] for r in rows] == [0, 1] and {r["stage"] for r in rows} == {"frozen"}
    assert rows[-1]["train_loss"] == pytest.approx(float(learn.recorder.values[-1][0]))
    assert rows[-1]["valid_loss"] == pytest.approx(float(learn.recorder.values[-1][1]))
    assert all(r["time_s"] > 0 and r["lr"] == pytest.approx(0.1) for r in rows)
    # the headline metrics are those of the last validation pass, i.e. of the final weights
    x = torch.stack([item[0] for item in learn.dls.valid.dataset])
    y = np.array([int(item[1]) for item in learn.dls.valid.dataset])
    with torch.no_grad():
        accuracy = (learn.model(x).argmax(-1).numpy() == y).mean()
    assert rows[-1]["valid_accuracy"] == pytest.approx(accuracy)
    assert 0.0 <= rows[-1]["valid_auroc"] <= 1.0


def test_keep_best_restores_the_weights_of_the_best_epoch(one_thread):
    script = Scripted([0.2, 0.9, 0.5, 0.7])  # higher is better: epoch 1
    keep = KeepBest(monitor="valid_score")
    learn = _learner(script, keep)
    learn.fit(4, 0.1)
    assert keep.best_epoch == 1 and keep.best == 0.9
    assert _same(learn.model.state_dict(), script.snapshots[1])
    assert not _same(learn.model.state_dict(), script.snapshots[3])  # the last epoch's weights are gone


def test_keep_best_carries_the_best_over_fits(one_thread):
    script = Scripted([0.9, 0.1, 0.3, 0.2])  # the best epoch is in the first fit
    keep = KeepBest(monitor="valid_score")
    learn = _learner(script, keep)
    learn.fit(2, 0.1)
    learn.fit(2, 0.1)
    assert keep.best_epoch == 0 and _same(learn.model.state_dict(), script.snapshots[0])


def test_keep_best_on_a_loss_keeps_the_lowest():
    keep = KeepBest(monitor="valid_loss")
    assert keep.lower_is_better and lower_is_better("valid_error_rate") and not lower_is_better("valid_auroc")


def test_early_stopping_stops_after_patience_epochs_without_improvement(one_thread):
    script = Scripted([0.5, 0.6, 0.6, 0.55, 0.9, 1.0])
    stop = EarlyStopping(monitor="valid_score", patience=2)
    learn = _learner(script, stop)
    learn.fit(6, 0.1)
    assert len(learn.history.rows) == 4  # epochs 2 and 3 did not beat 0.6: stop after epoch 3
    assert stop.best == 0.6 and stop.wait == 2


def test_early_stopping_ignores_epochs_without_a_value(one_thread):
    script = Scripted([0.5, float("nan"), float("nan"), 0.4, 0.3, 0.2, 0.1])
    stop = EarlyStopping(monitor="valid_score", patience=2)
    learn = _learner(script, stop)
    learn.fit(7, 0.1)
    assert len(learn.history.rows) == 5  # NaN epochs neither improve nor count


def test_early_stopping_keeps_the_best_weights_when_it_stops(one_thread):
    script = Scripted([0.1, 0.8, 0.2, 0.3, 0.9])
    keep, stop = KeepBest(monitor="valid_score"), EarlyStopping(monitor="valid_score", patience=2)
    learn = _learner(script, keep, stop)
    learn.fit(5, 0.1)
    assert len(learn.history.rows) == 4 and keep.best_epoch == 1
    assert _same(learn.model.state_dict(), script.snapshots[1])
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
