"""DeiT's hard-label distillation in :func:`helpers.train.train`: a frozen teacher labels each training batch.

The hook is one fastai callback, :class:`HardDistillation`. Two ways to use it:

* ``TrainConfig(distill_from="runs/<run>/checkpoint")``: the teacher is a checkpoint (a fine-tuned
  EfficientNet-Lite0, say), rebuilt from its model card; this is what a chapter or the command line
  writes, and what the run record keeps;
* ``train(student, data, config, callbacks=[HardDistillation(teacher)])`` with a teacher in memory.

For every *training* batch the callback runs the teacher on the very images the student sees
(after augmentation and MixUp, as DeiT does), under ``torch.no_grad`` and in eval mode, and replaces
the batch's loss by :class:`~helpers.models.deit.HardDistillationLoss`::

    loss = 1/2 * base(class head, labels) + 1/2 * CE(distillation head, argmax teacher)

``base`` is the loss the configuration chose (label smoothing, class weights, MixUp) applied by
fastai as usual to the class head's logits; the callback adds the distillation term after it. The
validation pass is untouched: the student in eval mode returns the late fusion of its two heads.

The teacher is frozen: its parameters have ``requires_grad=False``, it is never in the optimiser
(it is not part of the learner's model) and it stays in eval mode (BatchNorm statistics fixed).
A teacher from a checkpoint gets its own input: the student's batch is un-normalised with the
loaders' statistics, normalised with the teacher card's, and resized to the teacher's input size
when they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from fastai.callback.core import Callback
from torch import nn

from ..models.deit import HardDistillationLoss

__all__ = ["HardDistillation", "freeze_teacher"]


def freeze_teacher(teacher: nn.Module) -> nn.Module:
    """``teacher`` in eval mode with every parameter's ``requires_grad`` off (returned for chaining)."""
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def _student(learn: Any) -> nn.Module:
    return getattr(learn.model, "module", learn.model)  # the network inside DDP


class HardDistillation(Callback):
    """Train a DeiT student (:class:`~helpers.models.deit.DistilledVisionTransformer`) on the labels and
    on a frozen teacher's hard predictions (see the module docstring).

    Args:
        teacher: any classifier over the same classes (frozen here).
        alpha: the distillation term's weight (DeiT: 1/2).
        input_size: the teacher's input side, when it differs from the student's.
        normalization: the teacher's ``(mean, std)``, when it was trained with other statistics than
            the student's loaders use.
    """

    order = 5  # after_loss before GradientAccumulation (6) rescales the loss, before MixedPrecision (10)
    run_valid = False

    def __init__(
        self,
        teacher: nn.Module,
        alpha: float = 0.5,
        input_size: int | None = None,
        normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        self.teacher = freeze_teacher(teacher)
        self.distill_loss = HardDistillationLoss(alpha=alpha)
        self.input_size = input_size
        self.normalization = normalization
        self._dist: torch.Tensor | None = None
        self._teacher_logits: torch.Tensor | None = None

    @classmethod
    def from_checkpoint(cls, folder: str | Path, alpha: float = 0.5) -> HardDistillation:
        """The teacher saved in checkpoint ``folder`` (:func:`helpers.checkpoints.load_checkpoint`)."""
        from ..checkpoints import load_checkpoint

        teacher, card = load_checkpoint(folder)
        return cls(teacher, alpha=alpha, input_size=card.input_size, normalization=(card.mean, card.std))

    def before_fit(self) -> None:
        student = _student(self.learn)
        if not hasattr(student, "distilled_training"):
            raise ValueError(
                f"{type(student).__name__} has no distillation token: distill into a DeiT student "
                "(create_model('deit_scratch_tiny_patch4_64', ...))"
            )
        student.distilled_training = True
        device = next(student.parameters()).device
        self.teacher.to(device)
        freeze_teacher(self.teacher)

    def _teacher_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalization is not None:
            from .record import normalization

            own = normalization(self.learn.dls, x.shape[1])
            if own is not None:
                shape = (1, -1, 1, 1)
                mean_s, std_s = (torch.tensor(v, device=x.device, dtype=x.dtype).view(shape) for v in own)
                mean_t, std_t = (
                    torch.tensor(v, device=x.device, dtype=x.dtype).view(shape) for v in self.normalization
                )
                x = ((x * std_s + mean_s) - mean_t) / std_t
        if self.input_size is not None and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        return x

    def after_pred(self) -> None:
        pred = self.learn.pred
        if not isinstance(pred, (tuple, list)) or len(pred) != 2:
            raise ValueError("the student returned one output while training: is distilled_training set?")
        with torch.no_grad():
            self._teacher_logits = self.teacher(self._teacher_input(self.learn.xb[0])).float()
        self._dist = pred[1]
        self.learn.pred = pred[0]  # the configured loss (and MixUp) sees the class head only

    def after_loss(self) -> None:
        self.learn.loss_grad = self.distill_loss.combine(self.learn.loss_grad, self._dist, self._teacher_logits)
        self.learn.loss = self.learn.loss_grad.clone()
        self._dist = self._teacher_logits = None

    def after_fit(self) -> None:
        _student(self.learn).distilled_training = False

    def after_cancel_fit(self) -> None:
        self.after_fit()
