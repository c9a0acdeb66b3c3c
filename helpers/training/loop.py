"""The entry point: :func:`train` a model on data with a :class:`~helpers.training.config.TrainConfig`."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..config import Profile, get_device, get_profile, seed_everything
from ..runs import RunRecord, new_run_folder
from .config import TrainConfig
from .record import Fitted, evaluate_splits, make_record, run_config, save_run
from .resume import STATE_FILE, Resume, read_state
from .schedules import SCHEDULES
from .setup import build_learner, build_loss, build_model, load_splits, precision, resolve_pretrained

__all__ = ["train", "resolve_config", "run_name"]


def resolve_config(config: TrainConfig | str, profile: Profile, model: Any = None) -> TrainConfig:
    """``config`` (or the named configuration) with the profile's epochs, batch size and choice of
    pretrained weights filled in where it leaves them at ``None``.

    Raises:
        TypeError: when ``config`` is neither a :class:`TrainConfig` nor a name.
        KeyError: for an unknown name (the message lists the known ones).
    """
    if isinstance(config, str):
        from ..configs import get_config

        config = get_config(config)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig or the name of one, got {type(config).__name__}")
    return config.replace(
        epochs=int(config.epochs if config.epochs is not None else profile.epochs),
        batch_size=int(config.batch_size or profile.batch_size),
        pretrained=resolve_pretrained(model, config, profile),
    )


def _fit(
    model: Any,
    splits: tuple[Any, Any, Any],
    config: TrainConfig,
    profile: Profile,
    device: torch.device,
    callbacks: Sequence[Any],
    progress: bool,
    t_start: float,
) -> Fitted:
    """Build the loaders, the network, the loss and the learner, then run the schedule."""
    import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)

    from ..data.loaders import make_dataloaders

    train_ds, valid_ds, _ = splits
    dls = make_dataloaders(
        train_ds,
        valid_ds,
        distributed.per_rank_batch(config.batch_size),
        augment=config.augment,
        device=device,
        seed=config.seed,
        num_workers=profile.num_workers,
        stats=config.stats,
    )
    xb, _ = dls.one_batch()
    in_chans, size = int(xb.shape[1]), int(xb.shape[-1])
    built = build_model(model, config, len(train_ds.classes), in_chans, size)
    loss_func = build_loss(train_ds.task, config, train_ds.labels)
    learn = build_learner(
        dls,
        built.net,
        loss_func,
        config,
        task=train_ds.task,
        classes=train_ds.classes,
        device=device,
        callbacks=callbacks,
        progress=progress,
    )
    amp_mode, channels_last = precision(learn, config, device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*upsample.*|.*scheduler.*")
        with distributed.context(learn, device):
            stage_epochs = SCHEDULES[config.schedule](learn, config)
    return Fitted(
        learn,
        built,
        config,
        splits,
        in_chans,
        size,
        stage_epochs,
        amp_mode,
        channels_last,
        time.perf_counter() - t_start,
    )


def run_name(model: Any, config: TrainConfig) -> str:
    """The model part of a run folder's name: ``config.name``, else the model's name."""
    if config.name:
        return config.name
    if isinstance(model, str):
        return model
    spec = getattr(model, "create_args", None)
    return spec["name"] if spec else type(model).__name__


def _resumed(resume: str | Path, config: TrainConfig, data: Any, model: Any) -> dict[str, Any]:
    """The saved state of the run in ``resume``, after checking it is the same run.

    Raises:
        ValueError: naming the settings that differ from the saved run's.
    """
    state = read_state(resume)
    meta = state.get("meta", {})
    saved = meta.get("config", {})
    differ = sorted(k for k, v in config.to_dict().items() if saved.get(k, v) != v)
    if differ:
        raise ValueError(f"{resume} was trained with other settings ({differ}); resume it with the same ones")
    if isinstance(data, str) and meta.get("data") not in (None, data):
        raise ValueError(f"{resume} was trained on {meta['data']!r}, not {data!r}")
    if isinstance(model, str) and meta.get("model") not in (None, model):
        raise ValueError(f"{resume} trained {meta['model']!r}, not {model!r}")
    return state


def train(
    model: str | nn.Module,
    data: str | tuple[Any, Any, Any],
    config: TrainConfig | str = "one_cycle",
    *,
    profile: str | Profile | None = None,
    callbacks: Sequence[Any] = (),
    save: bool = True,
    progress: bool = True,
    resume: str | Path | None = None,
) -> RunRecord:
    """Train ``model`` on ``data`` as ``config`` says; evaluate it; return (and save) the run record.

    Args:
        model: a :func:`~helpers.models.vision.create_model` name, or an ``nn.Module`` that
            returns logits.
        data: a registry name (``"pneumoniamnist"``; train/valid/test loaded at the configuration's
            or the profile's image size and capped at the profile's ``max_train``/``max_eval``) or
            a ``(train, valid, test)`` tuple of :class:`~helpers.data.base.ImageDataset`.
        config: a :class:`~helpers.training.config.TrainConfig` or the name of one in
            :mod:`helpers.configs` (``one_cycle``, ``fastai_fine_tune``, ``three_stage``, ...);
            change a setting with ``config.replace(epochs=5)``.
        profile: ``smoke``/``quick``/``full`` or a :class:`~helpers.config.Profile`: the data caps,
            and the epochs, batch size, image size and pretrained weights the config leaves open.
        callbacks: extra fastai callbacks (e.g. to inspect training from a chapter).
        save: write the run folder (``run.json`` and the checkpoint: safetensors and a
            :class:`~helpers.cards.ModelCard`); while training it holds the resume state.
        progress: show fastprogress bars and the epoch table.
        resume: the folder of an interrupted run to continue (:mod:`helpers.training.resume`),
            with the same model, data and settings.

    Under ``torchrun``/``accelerate launch`` each process trains its share of every batch
    (:mod:`helpers.distributed`); rank 0 alone prints and writes.

    Returns:
        The :class:`~helpers.runs.RunRecord`: the settings as used (``config``), per-epoch
        ``history``, validation and test ``metrics`` (with bootstrap intervals), times, and the
        trained ``model`` and fastai ``learner`` in memory.
    """
    t_start = time.perf_counter()
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    config = resolve_config(config, prof, model)
    state = _resumed(resume, config, data, model) if resume is not None else None
    seed_everything(config.seed)
    device = distributed.device_for_rank(get_device())
    splits = load_splits(data, prof, config.image_size, config.seed)
    main = distributed.is_main()
    folder = Path(resume) if resume is not None else None
    if folder is None and save and main:
        folder = new_run_folder(splits[0].name, run_name(model, config), prof.name)[1]
    meta = {"model": model if isinstance(model, str) else run_name(model, config)}
    meta["data"] = data if isinstance(data, str) else None
    keeper = Resume(folder if main else None, state, {**meta, "config": config.to_dict(), "profile": prof.as_dict()})
    fitted = _fit(model, splits, config, prof, device, [*callbacks, keeper], progress and main, t_start)
    keeper.finish()
    metrics = evaluate_splits(fitted)
    wall_time_s = time.perf_counter() - t_start
    record = make_record(fitted, prof, run_config(fitted, data, device), metrics, wall_time_s)
    if save and main:
        save_run(record, fitted, prof, folder)
        (folder / STATE_FILE).unlink(missing_ok=True)
    distributed.barrier()
    return record
