"""After the fit: predictions and metrics on the held-out splits, the run record and the checkpoint."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import config as settings
from .. import imagestats, runinfo
from .. import metrics as M
from ..cards import ModelCard
from ..chance import chance_check
from ..checkpoints import save_checkpoint
from ..inference import probabilities
from ..runs import RunRecord, new_run_folder
from .config import TrainConfig
from .setup import BuiltModel

__all__ = ["Fitted", "predict", "evaluate_splits", "run_config", "make_record", "model_card", "save_run"]


@dataclass
class Fitted:
    """What one training run produced, before it is written down.

    Attributes:
        learn: the fastai ``Learner`` (its model holds the kept weights).
        built: the network and how it was made.
        config: the resolved :class:`TrainConfig` (epochs, batch size, pretrained filled in).
        splits: ``(train, valid, test)`` ImageDatasets as trained and evaluated.
        in_chans, size: the input the model was trained on.
        stage_epochs: epochs of each stage the schedule ran.
        amp_mode, channels_last: the precision settings used.
        train_time_s: seconds from the call to the end of the fit.
    """

    learn: Any
    built: BuiltModel
    config: TrainConfig
    splits: tuple[Any, Any, Any]
    in_chans: int
    size: int
    stage_epochs: list[int]
    amp_mode: str | None
    channels_last: bool
    train_time_s: float


@torch.no_grad()
def predict(
    model: nn.Module, dl: Any, task: str, amp_dtype: torch.dtype | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities (:func:`helpers.inference.probabilities`) over a loader."""
    model.eval()
    ys, ps = [], []
    for xb, yb in dl:
        with torch.autocast(xb.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(xb)
        ps.append(probabilities(out.float(), task).cpu())
        ys.append(yb.cpu())
    return torch.cat(ys).numpy(), torch.cat(ps).numpy()


def evaluate_splits(fitted: Fitted) -> dict[str, Any]:
    """:func:`helpers.metrics.evaluate` on the validation and test splits, with bootstrap intervals
    for the test metrics when ``config.bootstrap`` asks for them, and the test split's chance check
    (:func:`helpers.chance.chance_check`) under ``test_chance``."""
    from ..data.loaders import make_eval_loader

    _, valid_ds, test_ds = fitted.splits
    task, classes = valid_ds.task, list(valid_ds.classes)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(fitted.amp_mode or "")
    results: dict[str, Any] = {}
    seen: dict[str, tuple[Any, Any]] = {}
    for split, ds in (("valid", valid_ds), ("test", test_ds)):
        y, probs = predict(fitted.learn.model, make_eval_loader(ds, fitted.learn.dls), task, amp_dtype)
        seen[split] = y, probs
        results[split] = M.evaluate(y, probs, task, classes)
        if split == "test" and task == "multilabel" and len(y) and len(seen["valid"][0]):
            # each finding's threshold at a stated specificity on validation, and how it holds on test
            results["findings"] = M.finding_thresholds(*seen["valid"], y, probs, classes, seed=fitted.config.seed)
            results.setdefault("test_ci", {}).setdefault("mean_auroc", results["findings"]["mean_auroc"])
        if split == "test" and len(y):
            results["test_chance"] = chance_check(y, probs, task, seed=fitted.config.seed)
        if split == "test" and fitted.config.bootstrap:
            results["test_ci"] = M.bootstrap_metrics(
                y, probs, task, n_boot=fitted.config.bootstrap, seed=fitted.config.seed
            )
    return results


def run_config(fitted: Fitted, data: Any, device: torch.device) -> dict[str, Any]:
    """The ``config`` of the run record: the settings as used, under the keys the results read."""
    from ..models.vision import count_parameters

    cfg, learn = fitted.config, fitted.learn
    weights = cfg.class_weights
    keep = learn.keep_best
    return {
        "model": fitted.built.name,
        "pretrained": fitted.built.pretrained,
        "pretrained_source": fitted.built.pretrained_source,
        "model_kwargs": fitted.built.kwargs,
        "num_parameters": count_parameters(learn.model),
        "data": data if isinstance(data, str) else fitted.splits[0].name,
        "recipe": cfg.recipe,
        "schedule": cfg.schedule,
        "epochs": cfg.epochs,
        "freeze_epochs": cfg.freeze_epochs,
        "stage_epochs": fitted.stage_epochs,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "image_size": fitted.size,
        "in_chans": fitted.in_chans,
        "optimizer": cfg.optimizer,
        "weight_decay": cfg.weight_decay,
        "mixup_alpha": cfg.mixup,
        "label_smoothing": cfg.label_smoothing,
        "loss": type(learn.loss_func).__name__,
        "class_weights": list(weights) if isinstance(weights, tuple) else weights,
        "early_stopping": cfg.early_stopping,
        "monitor": cfg.monitor,
        "best_epoch": keep.best_epoch,
        "grad_accum": cfg.grad_accum,
        "mixed_precision": fitted.amp_mode,
        "channels_last": fitted.channels_last,
        "augment": None if cfg.augment is None else repr(cfg.augment),
        "seed": cfg.seed,
        "device": str(device),
        "train_time_s": fitted.train_time_s,
        "train_config": cfg.to_dict(),
    }


def make_record(
    fitted: Fitted, profile: settings.Profile, config: dict[str, Any], metrics: dict[str, Any], wall_time_s: float
) -> RunRecord:
    """The in-memory run record (no folder yet)."""
    rows = fitted.learn.history.rows
    return RunRecord(
        run_id="",
        folder=None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=config,
        profile=profile.as_dict(),
        data={name: ds.summary() for name, ds in zip(("train", "valid", "test"), fitted.splits)},
        environment=runinfo.collect(profile),
        history=rows,
        epoch_times_s=[r["time_s"] for r in rows],
        wall_time_s=wall_time_s,
        metrics=metrics,
        model=fitted.learn.model,
        learner=fitted.learn,
    )


def normalization(dls: Any, in_chans: int) -> tuple[list[float], list[float]] | None:
    """The loaders' (mean, std), one value per model input channel (grey statistics repeated for RGB)."""
    norm = getattr(dls, "normalization", None)
    if norm is None:
        return None
    mean, std = (np.ravel(np.asarray(v, dtype=float)) for v in norm)
    if len(mean) == 1 and in_chans > 1:
        mean, std = np.repeat(mean, in_chans), np.repeat(std, in_chans)
    return [float(v) for v in mean], [float(v) for v in std]


def model_card(fitted: Fitted, profile: settings.Profile, metrics: dict[str, Any], run_id: str) -> ModelCard | None:
    """The checkpoint's :class:`~helpers.cards.ModelCard`, or ``None`` when the model cannot be
    rebuilt from a card (not made by ``create_model``) or the loaders kept no normalisation."""
    built, train_ds = fitted.built, fitted.splits[0]
    norm = normalization(fitted.learn.dls, fitted.in_chans)
    if built.kwargs is None or norm is None:
        return None
    # what the training images looked like, for the app's out-of-distribution warning and transparency
    stats, background = imagestats.training_profile(train_ds.images, fitted.in_chans, fitted.config.seed)
    findings = metrics.get("findings") or {}
    return ModelCard(
        architecture=built.name,
        model_kwargs={**built.kwargs, "num_classes": len(train_ds.classes)},
        task=train_ds.task,
        classes=tuple(train_ds.classes),
        input_size=fitted.size,
        in_chans=fitted.in_chans,
        mean=tuple(norm[0]),
        std=tuple(norm[1]),
        dataset=train_ds.name,
        data_source=train_ds.source,
        # the data's own preprocessing (e.g. "equalize"), so the app prepares uploads the same way
        preprocess=train_ds.meta.get("preprocess"),
        profile=profile.name,
        metrics=card_metrics(metrics),
        run_id=run_id,
        pretrained_init=built.pretrained,
        pretrained_source=built.pretrained_source,
        image_stats=stats,
        background=background,
        chance=metrics.get("test_chance") or {},
        # a multi-label model's thresholds: each finding's at a stated specificity on validation
        thresholds={k: v["threshold"] for k, v in findings.get("per_label", {}).items() if v["threshold"] is not None},
        threshold_rule=findings.get("rule") or {},
        findings=findings.get("per_label") or {},
        input_rule=train_ds.meta.get("crop_rule"),
        training_images=_training_images(train_ds),
    )


def _training_images(train_ds: Any) -> dict[str, int]:
    """The training split's image count and, where known, the number of patients they come from."""
    out = {"images": len(train_ds)}
    patients = getattr(train_ds, "patient_ids", None)
    if patients is not None and len(patients) == len(train_ds):
        out["patients"] = len(set(np.asarray(patients).tolist()))
    return out


def card_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a model card keeps of a run's metrics: the validation and test headlines, the test
    intervals (``test_ci``) and the number of images of each split (``n``)."""
    out: dict[str, Any] = {k: M.headline(v) for k, v in metrics.items() if k in ("valid", "test")}
    if metrics.get("test_ci"):
        out["test_ci"] = metrics["test_ci"]
    out["n"] = {k: int(metrics[k]["n"]) for k in ("valid", "test") if "n" in metrics.get(k, {})}
    return out


def save_run(record: RunRecord, fitted: Fitted, profile: settings.Profile, folder: Path | None = None) -> None:
    """Write the run folder (``folder``, made while training, or a new one): ``run.json`` and, when a
    card can be written, the checkpoint."""
    if folder is None:
        run_id, folder = new_run_folder(fitted.splits[0].name, fitted.config.name or fitted.built.name, profile.name)
    else:
        run_id = Path(folder).name
    record.run_id, record.folder = run_id, folder
    card = model_card(fitted, profile, record.metrics, run_id)
    if card is not None:
        record.checkpoint = str(save_checkpoint(fitted.learn.model, folder / "checkpoint", card))
    else:
        warnings.warn(
            "the model was not built by create_model, so no checkpoint can be rebuilt from a card; none written",
            stacklevel=3,
        )
    path = record.save()
    if not os.environ.get("MEDVIT_BUILD", "").strip():  # in a book build the Results page lists every run instead
        print(f"run saved to {settings.shown_path(path)}")
