"""The training configuration: every setting of :func:`helpers.train.train` in one frozen dataclass.

A :class:`TrainConfig` holds how a model is trained (schedule, optimiser, learning rate, epochs,
regularisation, precision, augmentation, ...) but not *what* is trained (the model and the data)
nor how big the machine is (the profile) nor what is shown while it runs (progress bars, extra
callbacks): those are :func:`~helpers.train.train`'s own arguments. Fields left at ``None`` take
the profile's value when :func:`~helpers.train.train` runs (epochs, batch size, image size,
pretrained weights).

Like :class:`~helpers.config.Profile` and :class:`~helpers.cards.ModelCard` it is changed only by
:meth:`TrainConfig.replace`, which validates the result again; :meth:`TrainConfig.to_dict` and
:meth:`TrainConfig.from_dict` turn it into JSON/YAML values and back. The named configurations
(the theses' recipes and the chapters' settings) are in :mod:`helpers.configs`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .schedules import SCHEDULES

__all__ = ["OPTIMIZERS", "PRECISIONS", "Plateau", "TrainConfig"]

#: Optimisers :func:`~helpers.training.setup.make_optimizer` knows (PyTorch's, β = 0.9/0.999).
OPTIMIZERS = ("adam", "adamw")
#: Values of ``mixed_precision``: ``"auto"`` (bf16/fp16 on CUDA, off on the CPU), a dtype, on/off.
PRECISIONS = ("auto", "bf16", "fp16", True, False)
#: MixUp's Beta α when ``mixup=True``.
MIXUP_ALPHA = 0.4


@dataclass(frozen=True)
class Plateau:
    """Reduce-on-plateau: multiply the learning rate by ``factor`` when the validation loss has not
    improved by ``min_delta`` for ``patience`` epochs (thesis 000: ×0.1 after 10 epochs, 1e-4)."""

    factor: float = 0.1
    patience: int = 10
    min_delta: float = 1e-4

    def __post_init__(self) -> None:
        if not 0.0 < self.factor < 1.0:
            raise ValueError(f"plateau factor must be in (0, 1), got {self.factor}")
        if self.patience < 1 or self.min_delta < 0:
            raise ValueError(f"plateau patience must be >= 1 and min_delta >= 0, got {self.patience}, {self.min_delta}")


def _augment_from(value: Any) -> Any:
    """An :class:`~helpers.data.loaders.Augment` from its dict (``to_dict``'s form), else ``value``."""
    if isinstance(value, dict):
        from ..data.loaders import Augment

        return Augment(**value)
    return value


@dataclass(frozen=True)
class TrainConfig:
    """How to train a model (see the module docstring); ``None`` means "the profile's".

    Attributes:
        recipe: the named configuration this one was made from (recorded with the run).
        schedule: a key of :data:`~helpers.training.schedules.SCHEDULES`: ``one_cycle``,
            ``constant``, ``fine_tune`` (fastai's frozen-then-unfrozen) or ``three_stage``.
        optimizer: ``"adam"`` or ``"adamw"``.
        lr: peak (one-cycle) or constant learning rate; the base rate of ``fine_tune``.
        weight_decay: decoupled for AdamW, L2 for Adam.
        epochs: epochs after any frozen ones (``three_stage``: all epochs, split by ``stage_epochs``).
        batch_size: images per batch.
        freeze_epochs: epochs with only the head trainable first (not with ``three_stage``).
        stage_epochs: ``three_stage``'s proportions of the epochs per stage (thesis 000: 35:25:10).
        plateau: reduce the learning rate on a plateau of the validation loss (``None``: never).
        mixup: the Beta α of fastai's ``MixUp`` (0: off; ``True`` is read as 0.4).
        label_smoothing: ε of the smoothed cross-entropy (single-label tasks).
        class_weights: ``"chexnet"`` (multi-label), ``"balanced"`` or per-class values.
        early_stopping: stop a fit after this many epochs without improvement of ``monitor``.
        monitor: the history key that picks the best epoch (``valid_loss``, ``valid_auroc``, ...).
        grad_accum: accumulate gradients over this many batches per step.
        mixed_precision: ``"auto"``, ``"bf16"``, ``"fp16"``, ``True`` (fp16) or ``False``.
        channels_last: ``"auto"`` (on CUDA), ``True`` or ``False``.
        augment: batch augmentation (:class:`~helpers.data.loaders.Augment`) or ``None``.
        pretrained: ImageNet weights for a model given by name.
        stats: the input normalisation ``(mean, std)``, one value per channel, fixed (e.g. ImageNet's
            for a frozen pretrained network); ``None``: the training split's own.
        image_size: side in pixels for data given by name.
        model_kwargs: extra :func:`~helpers.models.vision.create_model` arguments.
        distill_from: a checkpoint folder whose model is a frozen teacher for DeiT's hard-label
            distillation (:mod:`helpers.training.distill`); the model trained must then be a DeiT
            student (``deit_scratch_...``). ``None``: no teacher.
        bootstrap: resamples for the test metrics' confidence intervals (0: none).
        seed: seeds Python, NumPy, torch and the data order.
        name: a label for the run folder (default: the model name).
    """

    recipe: str = "one_cycle"
    schedule: str = "one_cycle"
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-2
    epochs: int | None = None
    batch_size: int | None = None
    freeze_epochs: int = 0
    stage_epochs: tuple[int, ...] | None = None
    plateau: Plateau | None = None
    mixup: float = 0.0
    label_smoothing: float = 0.0
    class_weights: str | tuple[float, ...] | None = None
    early_stopping: int | None = None
    monitor: str = "valid_loss"
    grad_accum: int = 1
    mixed_precision: str | bool = "auto"
    channels_last: str | bool = "auto"
    augment: Any = None
    pretrained: bool | None = None
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    image_size: int | None = None
    model_kwargs: dict[str, Any] | None = None
    distill_from: str | None = None
    bootstrap: int = 200
    seed: int = 42
    name: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "mixup", MIXUP_ALPHA if self.mixup is True else float(self.mixup or 0.0))
        set_(self, "lr", float(self.lr))
        set_(self, "weight_decay", float(self.weight_decay))
        set_(self, "label_smoothing", float(self.label_smoothing))
        if self.stats is not None:
            set_(self, "stats", tuple(tuple(float(v) for v in part) for part in self.stats))
        if self.stage_epochs is not None:
            set_(self, "stage_epochs", tuple(int(w) for w in self.stage_epochs))
        if self.class_weights is not None and not isinstance(self.class_weights, str):
            set_(self, "class_weights", tuple(float(w) for w in self.class_weights))
        if isinstance(self.plateau, dict):
            set_(self, "plateau", Plateau(**self.plateau))
        set_(self, "augment", _augment_from(self.augment))
        if self.model_kwargs is not None:
            set_(self, "model_kwargs", dict(self.model_kwargs))
        if self.distill_from is not None:
            set_(self, "distill_from", str(self.distill_from))  # a Path is kept as text (JSON, YAML)
        self.validate()

    def validate(self) -> None:
        """Check names and values.

        Raises:
            ValueError: naming the setting that is wrong and what it may be.
        """
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {sorted(SCHEDULES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.mixed_precision not in PRECISIONS or self.channels_last not in ("auto", True, False):
            raise ValueError(
                f"mixed_precision must be one of {list(PRECISIONS)} and channels_last 'auto', True or False; "
                f"got {self.mixed_precision!r} and {self.channels_last!r}"
            )
        _check_numbers(self)
        if self.schedule == "three_stage":
            if self.stage_epochs is None or len(self.stage_epochs) != 3 or min(self.stage_epochs) < 1:
                raise ValueError(f"three_stage needs stage_epochs with three positive weights, got {self.stage_epochs}")
            if self.freeze_epochs:
                raise ValueError("three_stage sets its own frozen stages: freeze_epochs must be 0")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated again; unknown names are an error)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"TrainConfig has no setting(s) {unknown}; see TrainConfig's fields")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every setting as JSON/YAML values (tuples as lists, ``plateau`` and ``augment`` as dicts)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The configuration :meth:`to_dict` wrote (missing settings take their defaults).

        Raises:
            TypeError: for names that are not settings (listed).
            ValueError: for values that :meth:`validate` refuses.
        """
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"TrainConfig has no setting(s) {unknown}; see TrainConfig's fields")
        return cls(**data)

    def changes(self, base: TrainConfig | None = None) -> dict[str, Any]:
        """The settings (as :meth:`to_dict` values) that differ from ``base`` (default: ``TrainConfig()``)."""
        ref = (base or TrainConfig()).to_dict()
        return {k: v for k, v in self.to_dict().items() if v != ref[k]}


def _check_numbers(cfg: TrainConfig) -> None:
    """Ranges of the numeric settings (``ValueError`` naming the first one out of range)."""
    checks = [
        ("lr", cfg.lr > 0, "> 0"),
        ("weight_decay", cfg.weight_decay >= 0, ">= 0"),
        ("epochs", cfg.epochs is None or cfg.epochs >= 0, ">= 0"),
        ("batch_size", cfg.batch_size is None or cfg.batch_size >= 1, ">= 1"),
        ("freeze_epochs", cfg.freeze_epochs >= 0, ">= 0"),
        ("mixup", cfg.mixup >= 0, ">= 0"),
        ("label_smoothing", 0.0 <= cfg.label_smoothing < 1.0, "in [0, 1)"),
        ("early_stopping", cfg.early_stopping is None or cfg.early_stopping >= 1, ">= 1"),
        ("grad_accum", cfg.grad_accum >= 1, ">= 1"),
        ("image_size", cfg.image_size is None or cfg.image_size >= 1, ">= 1"),
        ("bootstrap", cfg.bootstrap >= 0, ">= 0"),
    ]
    for name, ok, rule in checks:
        if not ok:
            raise ValueError(f"TrainConfig.{name} must be {rule}, got {getattr(cfg, name)!r}")
    if cfg.schedule == "fitted":
        if cfg.epochs or cfg.freeze_epochs:
            raise ValueError("the 'fitted' schedule trains nothing: epochs and freeze_epochs must be 0")
    elif cfg.epochs == 0 and cfg.freeze_epochs == 0:
        raise ValueError("nothing to train: epochs and freeze_epochs are both 0 (schedule 'fitted' for a fitted model)")
    if cfg.stats is not None and (
        len(cfg.stats) != 2 or len(cfg.stats[0]) != len(cfg.stats[1]) or min(cfg.stats[1]) <= 0
    ):
        raise ValueError(f"TrainConfig.stats must be (mean, std) with one positive std per mean, got {cfg.stats!r}")
