"""Resume: a run killed at any point continues from its last finished epoch and ends where an
uninterrupted run ends.

While :func:`~helpers.training.loop.train` runs with a run folder, :class:`Resume` writes
``resume.pt`` there after every epoch and at the end of every fit (a schedule runs one fit per
stage): the model, the optimiser (moments and learning rates), the position in the schedule (which
fit, which epoch of it), the random states (Python, NumPy, torch, and each loader's shuffling
stream), and the state of the callbacks (the history so far, the best epoch and its weights, early
stopping's and reduce-on-plateau's counters, gradient accumulation's count, the smoothed
training loss). It is written to a
temporary file and renamed, so a kill while writing leaves the previous state whole.

``train(..., resume=folder)`` (``python -m helpers train --resume <folder>``) rebuilds the same
learner, lets the schedule run its fits again, and makes each fit begin where the saved one stopped:
fits already done run no epoch, the interrupted fit starts at its next epoch with everything above
put back. The run ends in the same folder; the state file is removed once ``run.json`` and the
checkpoint are written.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.learner import Learner

__all__ = ["STATE_FILE", "ResumableLearner", "Resume", "read_state", "write_state"]

STATE_FILE = "resume.pt"
#: The callback attributes saved and put back, by class name.
CALLBACK_STATE = {
    "Recorder": ("smooth_loss",),  # the smoothed training loss carries over from epoch to epoch
    "History": ("rows", "stage"),
    "KeepBest": ("best", "best_epoch", "new_best", "state"),
    "EarlyStopping": ("best", "best_epoch", "new_best", "wait"),
    "ReduceLROnPlateau": ("best", "wait"),
    "GradientAccumulation": ("count",),
}


class ResumableLearner(Learner):
    """fastai's ``Learner`` whose next fit may begin at epoch ``first_epoch`` (set by :class:`Resume`
    in ``before_fit``); epochs before it do not happen at all, so no callback sees them."""

    first_epoch = 0

    def _do_fit(self) -> None:
        from fastai.callback.core import CancelEpochException

        first, self.first_epoch = self.first_epoch, 0
        for epoch in range(first, self.n_epoch):
            self.epoch = epoch
            self._with_events(self._do_epoch, "epoch", CancelEpochException)


def write_state(folder: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``folder/resume.pt`` atomically (a temporary file, then a rename)."""
    path = Path(folder) / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def read_state(folder: str | Path) -> dict[str, Any]:
    """The state :class:`Resume` saved in ``folder``.

    Raises:
        FileNotFoundError: when ``folder`` holds no ``resume.pt`` (the message says why it may not).
    """
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        done = (Path(folder) / "run.json").is_file()
        why = "the run finished (run.json is there)" if done else "no epoch finished before it stopped"
        raise FileNotFoundError(f"nothing to resume in {folder}: no {STATE_FILE}; {why}")
    return torch.load(path, map_location="cpu", weights_only=False)


def _loaders(learn: Any) -> list[Any]:
    """The learner's own training and validation loaders (inside any distributed wrapper)."""
    return [getattr(dl, "dl", dl) for dl in learn.dls.loaders[:2]]


def _network(learn: Any) -> torch.nn.Module:
    return getattr(learn.model, "module", learn.model)


class Resume(Callback):
    """Save the run's state after each epoch and fit; on a resumed run, put a saved state back.

    Args:
        folder: where ``resume.pt`` is written (``None``: nowhere, e.g. ranks other than 0).
        state: a state :func:`read_state` returned, to continue from (``None``: a fresh run).
        meta: what the run is (model, data, settings), saved with every state.
    """

    order = 65  # after History, KeepBest, EarlyStopping and the trackers (60): their state is final

    def __init__(self, folder: Path | None, state: dict[str, Any] | None = None, meta: dict | None = None) -> None:
        self.folder, self.saved, self.meta = folder, state, dict(meta or {})
        self.fit_index = -1

    def before_fit(self) -> None:
        self.fit_index += 1
        if self.saved is None:
            return
        at = self.saved["fit"]
        if self.fit_index < at:
            self.learn.first_epoch = self.n_epoch  # finished before the interruption
        elif self.fit_index == at:
            self.learn.first_epoch = self.saved["epoch"]
            self._restore(self.saved)
            self.saved = None

    def after_epoch(self) -> None:
        self._save(self.fit_index, self.epoch + 1)

    def after_fit(self) -> None:
        if self.saved is None:  # (a fit skipped on resume has nothing new to save)
            self._save(self.fit_index + 1, 0)

    def finish(self) -> None:
        """After the schedule: a run saved after its last fit (killed while being evaluated) gets
        its weights and history back here, as no fit was left to put them back."""
        if self.saved is not None:
            self._restore(self.saved, optimizer=False)
            self.saved = None

    def _save(self, fit: int, epoch: int) -> None:
        if self.folder is None:
            return
        cbs = {
            name: {a: getattr(cb, a) for a in attrs} for name, attrs in CALLBACK_STATE.items() for cb in self._cbs(name)
        }
        state = {
            "fit": fit,
            "epoch": epoch,
            "meta": self.meta,
            "model": _network(self.learn).state_dict(),
            "opt": self.learn.opt.state_dict() if self.learn.opt is not None else None,
            "callbacks": cbs,
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "loaders": [dl.rng.getstate() for dl in _loaders(self.learn)],
            },
        }
        write_state(self.folder, state)

    def _cbs(self, name: str) -> list[Any]:
        return [cb for cb in self.learn.cbs if type(cb).__name__ == name]

    def _restore(self, state: dict[str, Any], optimizer: bool = True) -> None:
        _network(self.learn).load_state_dict(state["model"])
        if optimizer and state["opt"] is not None:
            self.learn.opt.load_state_dict(state["opt"])
        for name, attrs in state["callbacks"].items():
            for cb in self._cbs(name):
                for attr, value in attrs.items():
                    setattr(cb, attr, value)
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        for dl, st in zip(_loaders(self.learn), rng["loaders"]):
            dl.rng = random.Random()
            dl.rng.setstate(st)
