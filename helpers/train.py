"""One entry point that trains an image classifier and writes a run record: :func:`train`.

``train(model, data, ...)`` builds the model (a :func:`~helpers.models.vision.create_model`
name or a module), the data (a registry name or a ``(train, valid, test)`` tuple of
:class:`~helpers.data.base.ImageDataset`), and fits with fastai's ``Learner``:

* schedules: one-cycle or constant learning rate, fastai's frozen-then-unfrozen ``fine_tune``,
  thesis 000's three stages (head → + last block → whole network) with reduce-on-plateau;
* discriminative learning rates and freezing over the stages of
  :func:`~helpers.models.vision.param_groups` (stem + body / last block / head);
* MixUp, label smoothing, class-weighted losses (:mod:`helpers.losses`);
* on CUDA: mixed precision (bf16 where supported, else fp16), ``channels_last``, fused Adam;
* gradient accumulation, early stopping, and best-epoch keeping (in memory; the kept model is
  written as safetensors through :func:`~helpers.checkpoints.save_checkpoint`, never pickled).

The theses' recipes are named configurations of the same function (:data:`RECIPES`).
After training, the model is evaluated with :mod:`helpers.metrics` on the validation and test
sets, and the run is saved under :func:`helpers.config.runs_dir` (:mod:`helpers.runs`).
"""
from __future__ import annotations

import math
import time
import warnings
from datetime import datetime, timezone
from functools import partial
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from . import config, metrics as M, runinfo
from .checkpoints import save_checkpoint
from .losses import make_loss
from .runs import RunRecord, new_run_folder

__all__ = ["RECIPES", "train", "predict", "make_optimizer"]

# ----------------------------------------------------------------------------- recipes

RECIPES: dict[str, dict[str, Any]] = {
    # fastai's default: one cycle of the learning rate (warm-up then cosine annealing)
    "one_cycle": dict(schedule="one_cycle", optimizer="adamw", lr=1e-3, weight_decay=1e-2),
    # a fixed learning rate (Keras' default way of training)
    "constant": dict(schedule="constant", optimizer="adam", lr=1e-3, weight_decay=0.0),
    # thesis 004: fastai's fine_tune — head only for `freeze_epochs` (3 in the thesis), then the
    # whole network with discriminative learning rates (base_lr/2 spread over the groups)
    "fastai_fine_tune": dict(schedule="fine_tune", optimizer="adamw", lr=2e-3, weight_decay=1e-2, freeze_epochs=3),
    # thesis 000: head only (35 epochs) → + last block conv5_block3 (25) → whole network (10);
    # Adam lr 1e-4 (β 0.9/0.999), ×0.1 when the validation loss has not improved by 1e-4 for
    # 10 epochs; the best epoch is kept
    "three_stage": dict(
        schedule="three_stage",
        optimizer="adam",
        lr=1e-4,
        weight_decay=0.0,
        stage_epochs=(35, 25, 10),
        plateau=dict(factor=0.1, patience=10, min_delta=1e-4),
    ),
    # thesis 002's patch ViT (Keras example): AdamW, lr 1e-3, weight decay 1e-4, constant lr
    "adamw": dict(schedule="constant", optimizer="adamw", lr=1e-3, weight_decay=1e-4),
}


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


# ----------------------------------------------------------------------------- callbacks


def _callbacks() -> Any:
    """Build the callback classes lazily (fastai is imported only when training)."""
    from fastai.callback.core import Callback, CancelFitException

    class History(Callback):
        """Per-epoch record: losses, learning rate, time, and the helpers.metrics headline on
        the validation predictions gathered during the validation pass."""

        order = 55  # after fastai's Recorder (50), before the progress table (60)

        def __init__(self, task: str, classes: Sequence[str], activation: Any) -> None:
            self.task, self.classes, self.activation = task, list(classes), activation
            self.rows: list[dict[str, Any]] = []
            self.stage = "fit"

        def before_epoch(self) -> None:
            self.t0 = time.perf_counter()
            self.preds: list[torch.Tensor] = []
            self.targets: list[torch.Tensor] = []

        def after_batch(self) -> None:
            if not self.training:
                self.preds.append(self.activation(self.pred.detach().float()).cpu())
                self.targets.append(self.y.detach().cpu())

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
                    row.update({f"valid_{k}": v for k, v in M.headline(M.evaluate(y, probs, self.task, self.classes)).items()})
                except ValueError as err:  # e.g. a validation set with one class
                    row["metrics_error"] = str(err)
            self.rows.append(row)

    class KeepBest(Callback):
        """Keep the weights of the best epoch (in memory) and restore them at the end of each fit;
        with ``patience``, stop a fit after that many epochs without improvement."""

        order = 56  # after History

        def __init__(self, history: Any, monitor: str = "valid_loss", min_delta: float = 0.0, patience: int | None = None) -> None:
            self.history, self.monitor, self.min_delta, self.patience = history, monitor, min_delta, patience
            self.lower_is_better = monitor.endswith("loss")
            self.best = math.inf if self.lower_is_better else -math.inf
            self.best_epoch: int | None = None
            self.state: dict[str, torch.Tensor] | None = None

        def before_fit(self) -> None:
            self.wait = 0

        def after_epoch(self) -> None:
            value = self.history.rows[-1].get(self.monitor)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return
            better = value < self.best - self.min_delta if self.lower_is_better else value > self.best + self.min_delta
            if better:
                self.best, self.best_epoch, self.wait = value, self.history.rows[-1]["epoch"], 0
                self.state = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}
            else:
                self.wait += 1
                if self.patience is not None and self.wait >= self.patience:
                    raise CancelFitException()

        def after_fit(self) -> None:
            if self.state is not None:
                self.learn.model.load_state_dict(self.state)

    return History, KeepBest


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


def _load_splits(data: Any, profile: config.Profile, image_size: int | None, seed: int) -> tuple[Any, Any, Any]:
    """``(train, valid, test)`` ImageDatasets from a registry name or a tuple, capped by the profile."""
    if isinstance(data, str):
        from .data import load_dataset

        size = image_size or profile.image_size
        train_ds, valid_ds, test_ds = (load_dataset(data, split=split, size=size, profile=profile, seed=seed)
                                       for split in ("train", "valid", "test"))
    else:
        try:
            train_ds, valid_ds, test_ds = data
        except (TypeError, ValueError) as err:
            raise TypeError("data must be a dataset name or a (train, valid, test) tuple of ImageDataset") from err
    for ds in (train_ds, valid_ds, test_ds):
        if not hasattr(ds, "images") or not hasattr(ds, "task"):
            raise TypeError(f"expected ImageDataset splits, got {type(ds).__name__}")
    if not (train_ds.task == valid_ds.task == test_ds.task) or list(train_ds.classes) != list(test_ds.classes):
        raise ValueError("train, valid and test must share the task and the classes")
    train_ds = _cap(train_ds, profile.max_train, seed)
    valid_ds = _cap(valid_ds, profile.max_eval, seed)
    test_ds = _cap(test_ds, profile.max_eval, seed)
    return train_ds, valid_ds, test_ds


def _dataloaders(train_ds: Any, valid_ds: Any, batch_size: int, augment: Any, device: torch.device, seed: int, num_workers: int) -> Any:
    from .data.loaders import make_dataloaders

    return make_dataloaders(train_ds, valid_ds, batch_size, augment=augment, device=device, seed=seed, num_workers=num_workers)


def _loader_for(dls: Any, ds: Any) -> Any:
    """A loader over another split with the validation loader's statistics (in order, no augmentation)."""
    from .data.loaders import make_eval_loader

    return make_eval_loader(ds, dls)


# ----------------------------------------------------------------------------- prediction


@torch.no_grad()
def predict(model: nn.Module, dl: Any, task: str, amp_dtype: torch.dtype | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities over a loader: softmax rows (single-label) or sigmoids (multi-label)."""
    model.eval()
    ys, ps = [], []
    for xb, yb in dl:
        device_type = xb.device.type
        with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(xb)
        out = out.float()
        ps.append((torch.sigmoid(out) if task == "multilabel" else out.softmax(dim=-1)).cpu())
        ys.append(yb.cpu())
    return torch.cat(ys).numpy(), torch.cat(ps).numpy()


# ----------------------------------------------------------------------------- the entry point


def _resolve(value: Any, recipe: dict[str, Any], key: str, default: Any) -> Any:
    if value is not None:
        return value
    return recipe.get(key, default)


def _split_epochs(epochs: int, weights: Sequence[int]) -> list[int]:
    """Split ``epochs`` over stages in proportion to ``weights``, each stage at least one epoch."""
    n = len(weights)
    if epochs < n:
        raise ValueError(f"this recipe has {n} stages and needs at least {n} epochs, got {epochs}")
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


def train(
    model: str | nn.Module,
    data: str | tuple[Any, Any, Any],
    *,
    profile: str | config.Profile | None = None,
    recipe: str = "one_cycle",
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    freeze_epochs: int | None = None,
    mixup: bool | float = False,
    label_smoothing: float = 0.0,
    loss: nn.Module | None = None,
    class_weights: str | Sequence[float] | None = None,
    optimizer: str | None = None,
    weight_decay: float | None = None,
    early_stopping: int | None = None,
    monitor: str = "valid_loss",
    grad_accum: int = 1,
    mixed_precision: str | bool = "auto",
    channels_last: str | bool = "auto",
    augment: Any = None,
    pretrained: bool | None = None,
    image_size: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    bootstrap: int = 200,
    callbacks: Sequence[Any] = (),
    save: bool = True,
    name: str | None = None,
    seed: int = 42,
    progress: bool = True,
) -> RunRecord:
    """Train ``model`` on ``data`` and return (and save) the run record.

    Args:
        model: a :func:`~helpers.models.vision.create_model` name, or an ``nn.Module`` that
            returns logits.
        data: a registry name (``"pneumoniamnist"``; train/valid/test loaded at the profile's
            image size and capped at its ``max_train``/``max_eval``) or ``(train, valid, test)``.
        profile: ``smoke``/``quick``/``full`` or a :class:`~helpers.config.Profile`; supplies
            defaults for epochs, batch size, image size, pretrained, workers.
        recipe: a key of :data:`RECIPES` (``one_cycle``, ``constant``, ``fastai_fine_tune``,
            ``three_stage``, ``adamw``); explicit arguments override its values.
        epochs: epochs after any frozen ones (``three_stage``: all epochs, split 35:25:10).
        lr: peak (one-cycle) or constant learning rate; the base rate of ``fastai_fine_tune``.
        batch_size: images per batch (default: the profile's).
        freeze_epochs: epochs with only the head trainable first (one-cycle, constant, fine-tune).
        mixup: ``True`` (α = 0.4) or the Beta α of fastai's ``MixUp``.
        label_smoothing: ε of the smoothed cross-entropy (single-label tasks).
        loss: a loss module to use instead of the task's default.
        class_weights: ``"chexnet"`` (thesis 000, multi-label), ``"balanced"`` or per-class values.
        optimizer: ``"adam"`` or ``"adamw"`` (PyTorch's, β = 0.9/0.999).
        weight_decay: decoupled for AdamW, L2 for Adam.
        early_stopping: stop a fit after this many epochs without improvement of ``monitor``.
        monitor: a history key for best-epoch keeping and early stopping (``valid_loss``,
            ``valid_accuracy``, ``valid_auroc``, ``valid_mean_auroc``, ...).
        grad_accum: accumulate gradients over this many batches per step.
        mixed_precision: ``"auto"`` (bf16/fp16 on CUDA, off on CPU), ``"bf16"``, ``"fp16"`` or False.
        channels_last: ``"auto"`` (on CUDA), True or False.
        augment: passed to the data loaders (batch augmentation).
        pretrained: ImageNet weights for a model given by name (default: the profile's, for
            models that have published weights; thesis 002's networks never do).
        image_size: side in pixels (default: the profile's).
        model_kwargs: extra :func:`create_model` arguments.
        bootstrap: resamples for the test metrics' confidence intervals (0: none).
        callbacks: extra fastai callbacks (e.g. to inspect training from a chapter).
        save: write the run folder (``run.json`` and the checkpoint).
        name: a label for the run folder (default: the model name).
        seed: seeds Python, NumPy, torch and the data order.
        progress: show fastprogress bars and the epoch table.
    """
    from fastai.callback.mixup import MixUp
    from fastai.callback.progress import ProgressCallback
    import fastai.callback.channelslast  # noqa: F401  (adds Learner.to_channelslast)
    import fastai.callback.fp16  # noqa: F401  (adds Learner.to_fp16 / to_bf16)
    import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)
    from fastai.callback.tracker import ReduceLROnPlateau as Plateau
    from fastai.learner import Learner

    from .models.vision import count_parameters, create_model, param_groups

    t_start = time.perf_counter()
    prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    rc = RECIPES[recipe]
    schedule = rc["schedule"]
    epochs = int(epochs if epochs is not None else prof.epochs)
    lr = float(_resolve(lr, rc, "lr", 1e-3))
    batch_size = int(batch_size or prof.batch_size)
    freeze_epochs = int(_resolve(freeze_epochs, rc, "freeze_epochs", 0))
    optimizer = _resolve(optimizer, rc, "optimizer", "adamw")
    weight_decay = float(_resolve(weight_decay, rc, "weight_decay", 0.0))
    if pretrained is None:  # the profile's choice, for models that have weights to load
        from .models.vision import has_pretrained_weights

        pretrained = prof.pretrained and isinstance(model, str) and has_pretrained_weights(model)
    pretrained = bool(pretrained)
    if epochs < 1 and freeze_epochs < 1:
        raise ValueError("nothing to train: epochs and freeze_epochs are both 0")
    if grad_accum < 1:
        raise ValueError(f"grad_accum must be >= 1, got {grad_accum}")

    seed = config.seed_everything(seed)
    device = config.get_device()
    train_ds, valid_ds, test_ds = _load_splits(data, prof, image_size, seed)
    task, classes = train_ds.task, list(train_ds.classes)
    dls = _dataloaders(train_ds, valid_ds, batch_size, augment, device, seed, prof.num_workers)
    xb, _ = dls.one_batch()
    in_chans, size = int(xb.shape[1]), int(xb.shape[-1])

    # ---- model
    if isinstance(model, str):
        model_name = model
        kwargs = dict(model_kwargs or {})
        kwargs.setdefault("in_chans", in_chans)
        kwargs.setdefault("img_size", size)
        net = create_model(model_name, num_classes=len(classes), pretrained=pretrained, **kwargs)
        card_kwargs: dict[str, Any] | None = dict(kwargs)
    elif isinstance(model, nn.Module):
        net = model
        spec = getattr(model, "create_args", None)
        model_name = spec["name"] if spec else type(model).__name__
        card_kwargs = dict(spec["kwargs"]) if spec else None
        pretrained = bool(spec.get("pretrained", False)) if spec else None
    else:
        raise TypeError(f"model must be a model name or an nn.Module, got {type(model).__name__}")

    # ---- loss
    train_labels = train_ds.labels
    loss_func = loss or make_loss(task, label_smoothing=label_smoothing, class_weights=class_weights, train_labels=train_labels)
    if task != "multilabel" and not hasattr(loss_func, "y_int"):
        loss_func.y_int = True  # tells fastai's MixUp to mix the two losses rather than the labels
    activation = getattr(loss_func, "activation", None) or ((lambda x: torch.sigmoid(x)) if task == "multilabel" else (lambda x: x.softmax(-1)))

    # ---- learner and callbacks
    History, KeepBest = _callbacks()
    history = History(task, classes, activation)
    keep = KeepBest(history, monitor=monitor, patience=early_stopping)
    cbs: list[Any] = [history, keep, *callbacks]
    alpha = 0.4 if mixup is True else float(mixup or 0.0)
    if alpha > 0:
        cbs.append(MixUp(alpha))
    if grad_accum > 1:
        from fastai.callback.training import GradientAccumulation

        cbs.append(GradientAccumulation(n_acc=grad_accum * batch_size))
    if schedule == "three_stage":
        p = rc["plateau"]
        cbs.append(Plateau(monitor="valid_loss", factor=1 / p["factor"], patience=p["patience"], min_delta=p["min_delta"]))

    learn = Learner(
        dls,
        net,
        loss_func=loss_func,
        opt_func=make_optimizer(optimizer, device),
        splitter=param_groups,
        wd=weight_decay,
        cbs=cbs,
        path=config.cache_dir() / "fastai",
    )
    learn.recorder.train_metrics = False
    if not progress:
        learn.remove_cb(ProgressCallback)
        learn.logger = lambda *a, **k: None

    amp_mode = None
    if mixed_precision == "auto":
        if device.type == "cuda":
            amp_mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    elif mixed_precision:
        amp_mode = "fp16" if mixed_precision is True else str(mixed_precision)
    if amp_mode is not None:
        if device.type != "cuda":
            warnings.warn("mixed precision is only used on CUDA; training in float32", stacklevel=2)
            amp_mode = None
        else:
            learn.to_bf16() if amp_mode == "bf16" else learn.to_fp16()
    use_cl = device.type == "cuda" if channels_last == "auto" else bool(channels_last)
    if use_cl:
        learn.to_channelslast(use_amp=False)

    # ---- fit
    stage_epochs: list[int] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*upsample.*|.*scheduler.*")
        if schedule in ("one_cycle", "constant", "fine_tune"):
            fit = (lambda n, lr_: learn.fit_one_cycle(n, lr_)) if schedule == "one_cycle" else (lambda n, lr_: learn.fit(n, lr_))
            if schedule == "fine_tune":
                if freeze_epochs:
                    history.stage = "frozen"
                    learn.freeze()
                    learn.fit_one_cycle(freeze_epochs, slice(lr), pct_start=0.99)
                    stage_epochs.append(freeze_epochs)
                history.stage = "unfrozen"
                learn.unfreeze()
                if epochs:
                    learn.fit_one_cycle(epochs, slice(lr / 2 / 100, lr / 2), pct_start=0.3, div=5.0)
                    stage_epochs.append(epochs)
            else:
                if freeze_epochs:
                    history.stage = "frozen"
                    learn.freeze()
                    fit(freeze_epochs, lr)
                    stage_epochs.append(freeze_epochs)
                    learn.unfreeze()
                    history.stage = "unfrozen"
                if epochs:
                    fit(epochs, slice(lr / 10, lr) if freeze_epochs else lr)
                    stage_epochs.append(epochs)
        elif schedule == "three_stage":
            stage_epochs = _split_epochs(epochs, rc["stage_epochs"])
            for stage, n, setter in zip(("head", "last_block", "full"), stage_epochs, (learn.freeze, lambda: learn.freeze_to(-2), learn.unfreeze)):
                history.stage = stage
                setter()
                learn.fit(n, lr)
        else:  # pragma: no cover - RECIPES are checked above
            raise ValueError(schedule)
    train_time = time.perf_counter() - t_start

    # ---- evaluate
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp_mode) if amp_mode else None
    results: dict[str, Any] = {}
    for split, ds in (("valid", valid_ds), ("test", test_ds)):
        y, probs = predict(learn.model, _loader_for(dls, ds), task, amp_dtype)
        results[split] = M.evaluate(y, probs, task, classes)
        if split == "test" and bootstrap:
            results["test_ci"] = M.bootstrap_metrics(y, probs, task, n_boot=bootstrap, seed=seed)
    wall = time.perf_counter() - t_start

    cfg = {
        "model": model_name,
        "pretrained": pretrained,
        "model_kwargs": card_kwargs,
        "num_parameters": count_parameters(learn.model),
        "data": data if isinstance(data, str) else train_ds.name,
        "recipe": recipe,
        "schedule": schedule,
        "epochs": epochs,
        "freeze_epochs": freeze_epochs,
        "stage_epochs": stage_epochs,
        "lr": lr,
        "batch_size": batch_size,
        "image_size": size,
        "in_chans": in_chans,
        "optimizer": optimizer,
        "weight_decay": weight_decay,
        "mixup_alpha": alpha,
        "label_smoothing": label_smoothing,
        "loss": type(loss_func).__name__,
        "class_weights": class_weights if isinstance(class_weights, (str, type(None))) else list(map(float, class_weights)),
        "early_stopping": early_stopping,
        "monitor": monitor,
        "best_epoch": keep.best_epoch,
        "grad_accum": grad_accum,
        "mixed_precision": amp_mode,
        "channels_last": use_cl,
        "augment": None if augment is None else repr(augment),
        "seed": seed,
        "device": str(device),
        "train_time_s": train_time,
    }
    record = RunRecord(
        run_id="",
        folder=None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=cfg,
        profile=prof.as_dict(),
        data={"train": train_ds.summary(), "valid": valid_ds.summary(), "test": test_ds.summary()},
        environment=runinfo.collect(prof),
        history=history.rows,
        epoch_times_s=[r["time_s"] for r in history.rows],
        wall_time_s=wall,
        metrics=results,
        model=learn.model,
        learner=learn,
    )
    if save:
        run_id, folder = new_run_folder(train_ds.name, name or model_name, prof.name)
        record.run_id, record.folder = run_id, folder
        if card_kwargs is not None:
            card = {
                "architecture": model_name,
                "model_kwargs": {**card_kwargs, "num_classes": len(classes)},
                "classes": classes,
                "task": task,
                "input_size": size,
                "in_chans": in_chans,
                "normalization": _normalization(dls, in_chans),
                "dataset": train_ds.name,
                "data_source": train_ds.source,
                # the data's own preprocessing (e.g. "equalize"), so the app prepares uploads the same way
                "preprocess": train_ds.meta.get("preprocess"),
                "profile": prof.name,
                "metrics": {k: M.headline(v) for k, v in results.items() if k in ("valid", "test")},
                "run_id": run_id,
                "pretrained_init": pretrained,
            }
            record.checkpoint = str(save_checkpoint(learn.model, folder / "checkpoint", card))
        else:
            warnings.warn("the model was not built by create_model, so no checkpoint can be rebuilt from a card; none written", stacklevel=2)
        path = record.save()
        print(f"run saved to {path}")
    return record


def _normalization(dls: Any, in_chans: int) -> dict[str, list[float]] | None:
    """The loaders' (mean, std), one value per model input channel (grey stats repeated for RGB)."""
    norm = getattr(dls, "normalization", None)
    if norm is None:
        return None
    mean, std = (np.ravel(np.asarray(v, dtype=float)) for v in norm)
    if len(mean) == 1 and in_chans > 1:
        mean, std = np.repeat(mean, in_chans), np.repeat(std, in_chans)
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}
