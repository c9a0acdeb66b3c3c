"""The app's own models: one small model per app task, trained on whatever data is present.

``python -m helpers app-models`` (``make app-models``) calls :func:`train_app_models`; each
model is trained with :func:`helpers.train.train`, so it gets a run record and a checkpoint under
the runs folder, where the classifier app (:mod:`helpers.app`) finds it. This is the only part of
the app that trains, and so the only one that imports the training code and the data registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .app.core import APP_TASKS, find_models

__all__ = ["APP_MODELS", "APP_CONFIGS", "app_config", "choose_dataset", "train_app_models"]


#: What ``python -m helpers app-models`` trains for each task: datasets in order of preference and a model.
APP_MODELS: dict[str, tuple[tuple[str, ...], str]] = {
    "blood": (("pbc", "bloodmnist"), "resnet18"),
    "chest": (("pneumoniamnist", "nih"), "vit_tiny_patch16_224"),
    "mammo": (("cbis_ddsm", "mias"), "resnet18"),
}

#: The named configuration (:data:`helpers.configs.CONFIGS`) each task's model trains with. Blood
#: cells take the blood-cells chapter's CPU recipe (flips both ways, lr 3e-3, batches of 32, label
#: smoothing): in 4 epochs on the PBC sample it reaches a test accuracy of about 0.7 where plain
#: one-cycle reaches about 0.3-0.45, and its Grad-CAM maps find the cell (tests/test_pointing.py).
APP_CONFIGS: dict[str, str] = {"blood": "blood_cells_quick", "chest": "one_cycle", "mammo": "one_cycle"}
#: A ViT trained at this size or less gets 8 px patches instead of 16, so that its patch grid (8×8
#: at 64 px, not 4×4) is fine enough for a heatmap (:data:`helpers.explain.MIN_MAP_SIDE`).
SMALL_VIT_SIZE = 112


def app_config(task: str, epochs: int | None = 4, image_size: int | None = None) -> Any:
    """The :class:`~helpers.train.TrainConfig` of ``task``'s app model: :data:`APP_CONFIGS` at the
    profile's image size, ``epochs`` epochs, no bootstrap, named ``app-<task>-<model>``; a ViT
    trained at ``image_size`` <= :data:`SMALL_VIT_SIZE` px gets 8 px patches."""
    from .configs import CONFIGS

    if task not in APP_TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(APP_TASKS)}")
    base, arch = CONFIGS[APP_CONFIGS[task]], APP_MODELS[task][1]
    small_vit = "vit" in arch and image_size is not None and image_size <= SMALL_VIT_SIZE
    return base.replace(
        image_size=None,
        epochs=epochs or base.epochs,
        bootstrap=0,
        model_kwargs={"patch_size": 8} if small_vit else base.model_kwargs,
        name=f"app-{task}-{arch}",
    )


def choose_dataset(task: str, download: bool = True) -> tuple[str, str, str]:
    """The dataset to train ``task``'s app model on: ``(name, source, why)``.

    The first of :data:`APP_MODELS` found as real data under ``$MEDVIT_DATA`` wins; then one that
    can be (or was) downloaded; only when neither exists, the first one's synthetic stand-in.
    """
    from .data.registry import resolve

    names = APP_MODELS[task][0]
    for allow_download in (False, True) if download else (False,):
        for name in names:
            source, _, why = resolve(name, download=allow_download, verbose=False)
            if source != "synthetic":
                return name, source, why
    source, _, why = resolve(names[0], download=False, verbose=False)
    return names[0], source, why


def train_app_models(
    tasks: Sequence[str] | None = None,
    *,
    profile: str = "quick",
    epochs: int | None = 4,
    max_train: int | None = 1500,
    if_missing: bool = False,
    download: bool = True,
) -> list[dict[str, Any]]:
    """Train one small model per task on whatever data is present and save checkpoints the app finds.

    Uses :func:`helpers.train.train` (so each model gets a run record and a checkpoint under the
    runs folder) at the ``profile``'s image size, with at most ``max_train`` training images (and
    a third of that for validation and test) so that each model takes minutes on a CPU; random
    initialisation unless the profile says pretrained. ``if_missing`` skips tasks that already have
    a checkpoint. Returns one summary per task (dataset, source, model, wall time, test metrics,
    checkpoint folder).
    """
    from . import config
    from .train import train

    prof = config.get_profile(profile)
    if max_train is not None:
        prof = prof.replace(
            max_train=min(max_train, prof.max_train or max_train),
            max_eval=min(max(max_train // 3, 1), prof.max_eval or max_train),
        )

    summaries = []
    for task in tasks or list(APP_TASKS):
        if task not in APP_TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {list(APP_TASKS)}")
        if if_missing and find_models(task):
            print(f"[app-models] {task}: a checkpoint exists already; skipped")
            continue
        name, source, why = choose_dataset(task, download=download)
        arch = APP_MODELS[task][1]
        print(
            f"[app-models] {task}: training {arch} on {name} (source: {source}; {why}), profile {prof.name} "
            f"({prof.image_size} px, at most {prof.max_train} training images, {epochs} epochs)",
            flush=True,
        )
        if source == "synthetic":
            print(
                f"[app-models] {task}: NO REAL DATA for {', '.join(APP_MODELS[task][0])}: the model learns synthetic "
                "shapes and the app will say so. Put a dataset under MEDVIT_DATA for a meaningful model."
            )
        record = train(arch, name, app_config(task, epochs, prof.image_size), profile=prof, progress=False)
        test = (record.metrics or {}).get("test", {})
        summary = {
            "task": task,
            "dataset": name,
            "source": source,
            "model": arch,
            "profile": prof.name,
            "wall_time_s": round(record.wall_time_s, 1),
            "checkpoint": record.checkpoint,
            "test": {
                k: v for k, v in test.items() if k != "n" and isinstance(v, (int, float)) and not isinstance(v, bool)
            },
        }
        headline = ", ".join(f"{k} {v:.3f}" for k, v in list(summary["test"].items())[:3])
        print(
            f"[app-models] {task}: done in {record.wall_time_s:.0f} s; test {headline}; checkpoint {record.checkpoint}"
        )
        chance = (record.metrics or {}).get("test_chance") or {}
        summary["no_better_than_chance"] = chance.get("no_better_than_chance")
        if chance.get("no_better_than_chance"):
            why = "it gives every test image the same answer" if chance.get("constant") else "see its card"
            print(
                f"[app-models] {task}: NO BETTER THAN CHANCE ({why}); the app marks it so. More data or "
                "epochs (python -m helpers app-models --help) may give a useful model."
            )
        summaries.append(summary)
    return summaries
