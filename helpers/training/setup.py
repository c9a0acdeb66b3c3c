"""What :func:`helpers.train.train` builds before it fits: the data splits, the network, the loss, the
optimiser and the fastai ``Learner`` with its callbacks and precision settings."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import config as settings
from ..callbacks import EarlyStopping, History, KeepBest
from ..losses import make_loss
from .config import TrainConfig

__all__ = ["BuiltModel", "make_optimizer", "load_splits", "build_model", "build_learner", "precision"]


def make_optimizer(name: str, device: torch.device) -> Any:
    """A fastai ``opt_func`` wrapping ``torch.optim.Adam``/``AdamW`` (β = 0.9, 0.999).

    PyTorch's optimisers are used rather than fastai's own so that the step costs what it costs
    in a plain PyTorch loop; on CUDA the fused kernels are used.
    """
    from fastai.optimizer import OptimWrapper

    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if name not in classes:
        raise ValueError(f"optimizer must be one of {sorted(classes)}, got {name!r}")
    extra = {"fused": True} if device.type == "cuda" else {}

    def opt_func(params: Any, **kwargs: Any) -> Any:
        return OptimWrapper(params, classes[name], betas=(0.9, 0.999), **extra, **kwargs)

    return opt_func


# ----------------------------------------------------------------------------- data


def _cap(ds: Any, n: int | None, seed: int) -> Any:
    """At most ``n`` images of ``ds``, stratified by class for single-label tasks (seeded)."""
    if n is None or len(ds) <= n:
        return ds
    rng = np.random.default_rng(seed)
    if ds.task == "multilabel":
        idx = rng.choice(len(ds), n, replace=False)
    else:
        from sklearn.model_selection import train_test_split

        idx, _ = train_test_split(np.arange(len(ds)), train_size=n, stratify=ds.labels, random_state=seed)
    return ds.subset(np.sort(idx))


def load_splits(data: Any, profile: settings.Profile, image_size: int | None, seed: int) -> tuple[Any, Any, Any]:
    """``(train, valid, test)`` ImageDatasets from a registry name or a tuple, capped by the profile.

    Raises:
        TypeError: when ``data`` is neither a name nor three ImageDatasets.
        ValueError: when the splits disagree on the task or the classes.
    """
    if isinstance(data, str):
        from ..data import load_dataset

        size = image_size or profile.image_size
        splits = [
            load_dataset(data, split=s, size=size, profile=profile, seed=seed) for s in ("train", "valid", "test")
        ]
    else:
        try:
            splits = list(data)
            if len(splits) != 3:
                raise ValueError(len(splits))
        except (TypeError, ValueError) as err:
            raise TypeError("data must be a dataset name or a (train, valid, test) tuple of ImageDataset") from err
    for ds in splits:
        if not hasattr(ds, "images") or not hasattr(ds, "task"):
            raise TypeError(f"expected ImageDataset splits, got {type(ds).__name__}")
    train_ds, valid_ds, test_ds = splits
    if not (train_ds.task == valid_ds.task == test_ds.task) or list(train_ds.classes) != list(test_ds.classes):
        raise ValueError("train, valid and test must share the task and the classes")
    return (
        _cap(train_ds, profile.max_train, seed),
        _cap(valid_ds, profile.max_eval, seed),
        _cap(test_ds, profile.max_eval, seed),
    )


# ----------------------------------------------------------------------------- model


@dataclass
class BuiltModel:
    """The network and what the run record and the model card say about it.

    Attributes:
        net: the module to train.
        name: the ``create_model`` name (or the class name of a module built elsewhere).
        kwargs: the ``create_model`` arguments (``None`` when it cannot be rebuilt from a card).
        pretrained: whether it started from pretrained weights (``None``: unknown).
        pretrained_source: where those weights came from (the model's ``pretrained_source``).
    """

    net: nn.Module
    name: str
    kwargs: dict[str, Any] | None
    pretrained: bool | None
    pretrained_source: str | None = None


def resolve_pretrained(model: Any, config: TrainConfig, profile: settings.Profile) -> bool:
    """``config.pretrained``, else the profile's choice for models that have published weights."""
    if config.pretrained is not None:
        return bool(config.pretrained)
    from ..models.vision import has_pretrained_weights

    return bool(profile.pretrained and isinstance(model, str) and has_pretrained_weights(model))


def build_model(model: str | nn.Module, config: TrainConfig, num_classes: int, in_chans: int, size: int) -> BuiltModel:
    """Create ``model`` by name for this input, or take the module as it is.

    Raises:
        TypeError: when ``model`` is neither a name nor an ``nn.Module``.
    """
    from ..models.vision import create_model

    if isinstance(model, str):
        kwargs = dict(config.model_kwargs or {})
        kwargs.setdefault("in_chans", in_chans)
        kwargs.setdefault("img_size", size)
        net = create_model(model, num_classes=num_classes, pretrained=bool(config.pretrained), **kwargs)
        return BuiltModel(net, model, dict(kwargs), bool(config.pretrained), getattr(net, "pretrained_source", None))
    if isinstance(model, nn.Module):
        spec = getattr(model, "create_args", None)
        source = getattr(model, "pretrained_source", None)
        if not spec:
            return BuiltModel(model, type(model).__name__, None, None, source)
        return BuiltModel(model, spec["name"], dict(spec["kwargs"]), bool(spec.get("pretrained", False)), source)
    raise TypeError(f"model must be a model name or an nn.Module, got {type(model).__name__}")


# ----------------------------------------------------------------------------- learner


def build_loss(task: str, config: TrainConfig, train_labels: Any) -> nn.Module:
    """The task's loss with the configuration's label smoothing and class weights."""
    weights = config.class_weights
    loss_func = make_loss(
        task,
        label_smoothing=config.label_smoothing,
        class_weights=list(weights) if isinstance(weights, tuple) else weights,
        train_labels=train_labels,
    )
    if task != "multilabel" and not hasattr(loss_func, "y_int"):
        loss_func.y_int = True  # tells fastai's MixUp to mix the two losses rather than the labels
    return loss_func


def _training_callbacks(config: TrainConfig, task: str, classes: Sequence[str], extra: Sequence[Any]) -> list[Any]:
    """History, best-epoch keeping, early stopping; then the caller's ``extra`` callbacks; then what
    the configuration asks for (a distillation teacher, MixUp, gradient accumulation, reduce-on-plateau)."""
    cbs: list[Any] = [History(task, classes), KeepBest(monitor=config.monitor)]
    if config.early_stopping:
        cbs.append(EarlyStopping(monitor=config.monitor, patience=config.early_stopping))
    cbs += list(extra)
    if config.distill_from:
        if task == "multilabel":
            raise ValueError(
                "hard-label distillation (distill_from) needs a single-label task: it takes the teacher's argmax"
            )
        from .distill import HardDistillation

        cbs.append(HardDistillation.from_checkpoint(config.distill_from))
    if config.mixup > 0:
        from fastai.callback.mixup import MixUp

        cbs.append(MixUp(config.mixup))
    if config.grad_accum > 1:
        from fastai.callback.training import GradientAccumulation

        cbs.append(GradientAccumulation(n_acc=config.grad_accum * config.batch_size))
    if config.plateau is not None:
        from fastai.callback.tracker import ReduceLROnPlateau

        p = config.plateau
        cbs.append(
            ReduceLROnPlateau(monitor="valid_loss", factor=1 / p.factor, patience=p.patience, min_delta=p.min_delta)
        )
    return cbs


def build_learner(
    dls: Any,
    net: nn.Module,
    loss_func: nn.Module,
    config: TrainConfig,
    *,
    task: str,
    classes: Sequence[str],
    device: torch.device,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
) -> Any:
    """A fastai ``Learner`` over :func:`~helpers.models.vision.param_groups` (stem + body / last
    block / head) with the training callbacks and ``callbacks``; quiet unless ``progress``."""
    from fastai.callback.progress import ProgressCallback

    from ..models.vision import param_groups
    from .resume import ResumableLearner

    learn = ResumableLearner(
        dls,
        net,
        loss_func=loss_func,
        opt_func=make_optimizer(config.optimizer, device),
        splitter=param_groups,
        wd=config.weight_decay,
        cbs=_training_callbacks(config, task, classes, callbacks),
        path=settings.cache_dir() / "fastai",
    )
    learn.recorder.train_metrics = False
    if not progress:
        learn.remove_cb(ProgressCallback)
        learn.logger = lambda *a, **k: None
    return learn


def precision(learn: Any, config: TrainConfig, device: torch.device) -> tuple[str | None, bool]:
    """Set mixed precision and ``channels_last`` on ``learn``; return ``(amp mode or None, channels_last)``.

    Mixed precision is CUDA-only: asked for on another device, it warns and trains in float32.
    """
    import fastai.callback.channelslast  # noqa: F401  (adds Learner.to_channelslast)
    import fastai.callback.fp16  # noqa: F401  (adds Learner.to_fp16 / to_bf16)

    amp_mode = None
    if config.mixed_precision == "auto":
        if device.type == "cuda":
            amp_mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    elif config.mixed_precision:
        amp_mode = "fp16" if config.mixed_precision is True else str(config.mixed_precision)
    if amp_mode is not None and device.type != "cuda":
        warnings.warn("mixed precision is only used on CUDA; training in float32", stacklevel=3)
        amp_mode = None
    if amp_mode == "bf16":
        learn.to_bf16()
    elif amp_mode == "fp16":
        learn.to_fp16()
    use_cl = device.type == "cuda" if config.channels_last == "auto" else bool(config.channels_last)
    if use_cl:
        learn.to_channelslast(use_amp=False)
    return amp_mode, use_cl
