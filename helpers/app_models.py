"""The app's own models: one model per app task, trained on the best data present.

``python -m helpers app-models`` (``make app-models``, and ``make dashboard`` when no model
exists) calls :func:`train_app_models`; each model is trained with :func:`helpers.train.train`, so
it gets a run record and a checkpoint under the runs folder, where the classifier app
(:mod:`helpers.app`) finds it. The blood-cell model *is* the blood-cells chapter's model: the same
data (:data:`helpers.data.registry.BLOOD_CELLS`: PBC when present, else BloodMNIST), the same
network, configuration, seed and time budget as the chapter's ResNet at the same profile
(:func:`blood_cells_run`: the epochs come from the same measurement of this machine's speed), so its
card's test numbers are the chapter's. The chest model is the lung
pathologies chapter's CNN in the same way (:func:`lungs_run`: the chapter's data by the chapter's
rule, :func:`helpers.configs.lungs_dataset`: ChestX-ray14 at 64 px when present, else the NIH
download, else ChestMNIST; equalised, the 14 findings), and the mammogram model the mammography chapter's best
lesion model at the CPU profiles, the frozen ImageNet EfficientNet-Lite0 with a logistic regression fitted on the
training crops in its head (thesis 002's CNN at ``full``), on lesion crops (:func:`mammography_run`: CBIS-DDSM's
cropped lesions when present, else mini-MIAS crops cut around the annotated circles; benign vs malignant). At the
CPU profiles each task trains its chapter's from-scratch and ImageNet-pretrained candidates (:data:`CANDIDATES`)
and the app serves the better on validation. This is the only part of the app that trains, and so the only one
that imports the training code and the data registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .app.core import APP_TASKS, find_models, headline_metric

__all__ = [
    "APP_MODELS",
    "APP_CONFIGS",
    "app_config",
    "blood_cells_run",
    "lungs_run",
    "choose_dataset",
    "train_app_models",
]


#: What ``python -m helpers app-models`` trains for each task: datasets in order of preference and a
#: model. Blood cells: the blood-cells chapter's datasets and CPU model
#: (:data:`helpers.configs.BLOOD_CELLS_QUICK_MODEL`; ``full`` takes the chapter's ``full`` model).
#: Chest X-rays: the lung pathologies chapter's data (:data:`helpers.configs.LUNGS_DATASETS`, chosen
#: by the chapter's rule) and CNN (thesis 000's head on a small backbone); PneumoniaMNIST only when
#: none of the chapter's data can be had, rather than a stand-in.
APP_MODELS: dict[str, tuple[tuple[str, ...], str]] = {
    "blood": (("pbc", "bloodmnist"), "resnet10t"),
    "chest": (("nih_64px", "nih", "chestmnist", "pneumoniamnist"), "thesis000_resnet50"),
    "mammo": (("cbis_ddsm", "mias_lesions"), "thesis002_cnn"),
}

#: The chapter each task's model comes from, as the training lines name it.
CHAPTER_OF: dict[str, str] = {"blood": "blood-cells", "chest": "lung pathologies", "mammo": "mammography"}

#: The named configuration (:data:`helpers.configs.CONFIGS`) each task's model trains with. Blood
#: cells train as the blood-cells chapter does (:func:`blood_cells_run`); this entry is its
#: ``quick`` configuration, for tools that only need the recipe.
APP_CONFIGS: dict[str, str] = {"blood": "blood_cells_quick", "chest": "lungs_quick", "mammo": "mammography_quick"}
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


def choose_dataset(task: str, download: bool = True, profile: Any = "quick") -> tuple[str, str, str]:
    """The dataset to train ``task``'s app model on at ``profile``: ``(name, source, why)``
    (:func:`helpers.data.registry.choose` over the task's datasets in :data:`APP_MODELS`).

    The chest model takes the lung chapter's data by the chapter's rule
    (:func:`helpers.configs.lungs_dataset`), so that both train on the same images; only where that
    rule ends at a stand-in does it try the rest of its datasets (PneumoniaMNIST).
    """
    from .data.registry import choose

    if task != "chest":
        return choose(APP_MODELS[task][0], download=download)
    from .configs import LUNGS_DATASETS, lungs_dataset, lungs_experiment

    name, source, why = lungs_dataset(profile, download=download)
    rest = tuple(n for n in APP_MODELS[task][0] if n not in LUNGS_DATASETS)
    if source != "synthetic" or not rest:
        return name, source, why
    size = lungs_experiment("cnn", profile).config.image_size
    other, other_source, other_why = choose(rest, download=download, size=size)
    if other_source == "synthetic":
        return name, source, why
    return other, other_source, f"{other_why} ({why.split(':')[0]})"


def blood_cells_run(name: str, profile: Any, model: str | None = None) -> tuple[str, tuple[Any, Any, Any], Any]:
    """The blood-cells chapter's run of ``model`` (default: its primary run, the ResNet; SEED 0) at
    ``profile`` on dataset ``name``: ``(model, (train, valid, test), config)``.

    As the chapter: the first of :func:`~helpers.configs.blood_cells_experiments`, the three splits
    at its image size capped by ``profile`` (seed 42; pass
    :func:`~helpers.configs.blood_cells_profile` for the chapter's caps), and on the CPU profiles its
    images and epochs as the chapter's fixed plan says (:func:`~helpers.configs.blood_cells_plan`,
    :func:`~helpers.training.plans.apply_plan`): the same run on every machine. Only the run's name
    differs (``app-blood-...``).
    """
    from .configs import blood_cells_experiments, blood_cells_plan
    from .data.registry import load_dataset
    from .training.plans import apply_plan

    experiments = blood_cells_experiments(profile, None if model is None else [model], dataset=name, seed=0)
    label, first = next(iter(experiments.items()))
    data = tuple(
        load_dataset(name, split=s, size=first.config.image_size, profile=profile, verbose=False)
        for s in ("train", "valid", "test")
    )
    model, config, plan = first.model, first.config, blood_cells_plan(profile)
    if plan is not None:
        run = apply_plan({label: first}, data, plan)[label]
        data, config = run.data, run.config
    return model, data, config.replace(name=f"app-blood-{config.name}")


def lungs_run(name: str, profile: Any, candidate: str | None = None) -> tuple[str, tuple[Any, Any, Any], Any]:
    """The lung pathologies chapter's CNN (``candidate`` ``None``; ``"lite0"``: its ImageNet EfficientNet-Lite0,
    a key of :data:`~helpers.configs.LUNGS_QUICK`) at ``profile`` (its default SEED 0) on dataset ``name``:
    ``(model, (train, valid, test), config)``, the splits equalised into three channels at the
    configuration's size, the findings in NIH's order, as in the chapter
    (:func:`~helpers.data.lungs.load_lung_splits`; pass :func:`~helpers.configs.lungs_profile` for the
    chapter's caps). A single-label chest dataset (PneumoniaMNIST) drops the
    multi-label class weights. Only the run's name differs (``app-chest-...``).
    """
    from .configs import lungs_experiment
    from .data.lungs import load_lung_splits

    exp = lungs_experiment(candidate or "cnn", profile, seed=0)
    data = load_lung_splits(name, profile, exp.config.image_size, seed=0)
    # no bootstrap of every multi-label metric (minutes); the card's mean AUROC and per-finding AUROC
    # intervals come from helpers.metrics.finding_thresholds, seconds
    config = exp.config.replace(bootstrap=0, name=f"app-chest-{exp.config.name}")
    return exp.model, data, config if data[0].task == "multilabel" else config.replace(class_weights=None)


#: The mammography chapter's best lesion model (:func:`helpers.mammo_study.lesion_model`), as a candidate name.
LESION_PROBE = "lite0_probe"


def mammography_run(name: str, profile: Any, candidate: str | None = None) -> tuple[Any, tuple[Any, Any, Any], Any]:
    """A mammography chapter model on lesion crops of dataset ``name`` (``mias_lesions`` or ``cbis_ddsm``),
    split by woman as in the chapter: ``(model, (train, valid, test), config)``.

    ``candidate`` ``None``: the thesis CNN at ``profile`` (its default SEED 0) at its configuration's size;
    :data:`LESION_PROBE`: the chapter's best lesion model, the frozen ImageNet EfficientNet-Lite0 with a
    logistic regression fitted on the training split folded into its head (a fitted ``nn.Module``; the
    config only evaluates and saves it). Only the run's name differs from the chapter's (``app-mammo-...``).
    """
    from .configs import thesis002_experiment
    from .data.registry import load_dataset

    if candidate not in (None, LESION_PROBE):
        raise ValueError(f"unknown mammogram candidate {candidate!r}; choose None or {LESION_PROBE!r}")
    if candidate == LESION_PROBE:
        from .mammo_study import lesion_model

        best = lesion_model(seed=0)
        model, config, size = None, best.config, best.crop.image_size
    else:
        exp = thesis002_experiment("cnn", profile, seed=0)
        model, config, size = exp.model, exp.config, exp.config.image_size
    data = tuple(
        load_dataset(name, split=s, size=size, profile=profile, verbose=False) for s in ("train", "valid", "test")
    )
    if model is None:  # fitted on the training split only: validation and test stay held out
        model = best.fit(data[0])
    # the chapter's bootstrap stays: the app's card shows the test metric with its interval
    return model, data, config.replace(name=f"app-mammo-{config.name}")


#: Each task's chapter run: ``(model, (train, valid, test), config)`` for a dataset name and a profile.
_CHAPTER_RUNS = {"blood": blood_cells_run, "chest": lungs_run, "mammo": mammography_run}

#: The chapter's runs each task trains at the CPU profiles, of which the app serves the best by its
#: validation metric (``None``: the chapter's primary run). Blood cells: the ResNet from scratch and
#: the ImageNet-pretrained EfficientNet-Lite0 at 96 px, where a heatmap can point at the cell. Chest X-rays: the
#: lung chapter's CNN from scratch and its ImageNet Lite0 (``"lite0"``). Mammograms: the chapter's thesis CNN from
#: scratch and its best lesion model (:data:`LESION_PROBE`, the frozen ImageNet Lite0 with a linear head).
CANDIDATES: dict[str, tuple[str | None, ...]] = {
    "blood": (None, "tf_efficientnet_lite0"),
    "chest": (None, "lite0"),
    "mammo": (None, LESION_PROBE),
}


def _task_run(
    task: str, name: str, prof: Any, epochs: int | None, max_train: int | None, candidate: str | None = None
) -> tuple[str, Any, Any, Any]:
    """``(model, data, config, profile)`` for one task: its chapter's run at ``prof`` (of ``candidate``,
    one of :data:`CANDIDATES`), with ``epochs`` and a cap of ``max_train`` training images (a third of
    it per evaluation split) where given."""
    if task == "blood" and max_train is None:
        from .configs import blood_cells_profile

        prof = blood_cells_profile(prof)
    if task == "chest" and max_train is None:
        from .configs import lungs_profile

        prof = lungs_profile(prof, name)
    if max_train is not None:
        prof = prof.replace(
            max_train=min(max_train, prof.max_train or max_train),
            max_eval=min(max(max_train // 3, 1), prof.max_eval or max_train),
        )
    run = _CHAPTER_RUNS[task]
    model, data, config = run(name, prof) if candidate is None else run(name, prof, candidate)
    return model, data, (config.replace(epochs=epochs) if epochs else config), prof


def _summary(task: str, name: str, source: str, model: str, prof: Any, record: Any) -> dict[str, Any]:
    test = (record.metrics or {}).get("test", {})
    chance = (record.metrics or {}).get("test_chance") or {}
    found = headline_metric({"valid": (record.metrics or {}).get("valid") or {}})
    valid = None if found is None else found[1:]
    return {
        "task": task,
        "dataset": name,
        "source": source,
        "model": model,
        "profile": prof.name,
        "config": (record.config.get("train_config") or {}).get("name"),
        "seed": record.config.get("seed"),
        "epochs": record.config.get("epochs"),
        "wall_time_s": round(record.wall_time_s, 1),
        "checkpoint": record.checkpoint,
        "test": {k: v for k, v in test.items() if k != "n" and isinstance(v, (int, float)) and not isinstance(v, bool)},
        "test_ci": (record.metrics or {}).get("test_ci") or {},
        "no_better_than_chance": chance.get("no_better_than_chance"),
        "constant": chance.get("constant"),
        "valid_metric": valid[0] if valid else None,
        "valid_score": valid[1] if valid else float("-inf"),
    }


def train_app_models(
    tasks: Sequence[str] | None = None,
    *,
    profile: str = "quick",
    epochs: int | None = None,
    max_train: int | None = None,
    if_missing: bool = False,
    download: bool = True,
    candidates: Mapping[str, Sequence[str | None]] | None = None,
) -> list[dict[str, Any]]:
    """Train one model per task on the best data present and save checkpoints the app finds.

    Each task trains exactly as its chapter does at ``profile`` (:func:`blood_cells_run`,
    :func:`lungs_run`, :func:`mammography_run`); ``epochs``/``max_train`` given depart from the
    chapter (the summary says so). ``candidates`` replaces :data:`CANDIDATES` for the tasks it names
    (``{"blood": (None,)}``: the chapter's primary run alone). ``if_missing`` skips tasks
    that already have a checkpoint. Returns one summary per task (dataset, source, model,
    configuration, wall time, test metrics and intervals, checkpoint folder).
    """
    from . import config
    from .train import train

    for task in tasks or list(APP_TASKS):
        if task not in APP_TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {list(APP_TASKS)}")
    summaries = []
    for task in tasks or list(APP_TASKS):
        if if_missing and find_models(task):
            print(f"[app-models] {task}: a checkpoint exists already; skipped")
            continue
        name, source, why = choose_dataset(task, download=download, profile=profile)
        if source == "synthetic":
            print(
                f"[app-models] {task}: NO REAL DATA for {', '.join(APP_MODELS[task][0])}: the model learns synthetic "
                "shapes and the app will say so. Put a dataset under MEDVIT_DATA for a meaningful model."
            )
        chosen = (candidates or {}).get(task, CANDIDATES[task] if profile != "full" else (None,))
        trained = []
        for candidate in chosen:
            arch, data, cfg, prof = _task_run(task, name, config.get_profile(profile), epochs, max_train, candidate)
            same = epochs is None and max_train is None
            fitting = "a logistic regression on frozen features" if cfg.schedule == "fitted" else f"{cfg.epochs} epochs"
            print(
                f"[app-models] {task}: training {_name(arch)} on {name} (source: {source}; {why}), profile {prof.name} "
                f"({cfg.image_size or prof.image_size} px, {len(data[0])} training images, {fitting}, "
                f"{'ImageNet weights' if cfg.pretrained else 'random init'})"
                + (f"; the {CHAPTER_OF[task]} chapter's run" if same else ""),
                flush=True,
            )
            record = train(arch, data, cfg, profile=prof, progress=False)
            summary = _summary(task, name, source, _name(arch), prof, record)
            summary["as_chapter"] = same
            _report(summary)
            trained.append(summary)
        summaries.append(_served(trained))
    return summaries


def _name(model: Any) -> str:
    """A model's name: itself when given by name, else the name it was created with."""
    return model if isinstance(model, str) else (getattr(model, "create_args", None) or {}).get("name", "model")


def _served(trained: list[dict[str, Any]]) -> dict[str, Any]:
    """Of one task's trained candidates, the one the app serves: the best validation headline metric
    (:func:`helpers.app.core.headline_metric`) among those not at chance; it is said which, and why."""
    if len(trained) == 1:
        return trained[0]
    ranked = sorted(trained, key=lambda s: (not s["no_better_than_chance"], s["valid_score"]), reverse=True)
    best = ranked[0]
    print(
        f"[app-models] {best['task']}: the app serves {best['model']} (validation {best['valid_metric']} "
        f"{best['valid_score']:.3f}; " + ", ".join(f"{s['model']} {s['valid_score']:.3f}" for s in ranked[1:]) + ")"
    )
    return best


def _report(summary: dict[str, Any]) -> None:
    """Print where a model's numbers come from and whether it beats chance."""
    from . import config

    task = summary["task"]
    headline = ", ".join(f"{k} {v:.3f}" for k, v in list(summary["test"].items())[:3])
    chapter = CHAPTER_OF[task]
    origin = (
        f"the {chapter} chapter's {summary['profile']} run ({summary['config']}, seed {summary['seed']})"
        if summary["as_chapter"]
        else summary["config"]
    )
    print(
        f"[app-models] {task}: done in {summary['wall_time_s']:.0f} s; test {headline} "
        f"({summary['dataset']}, {summary['source']} data, profile {summary['profile']}, {origin}); "
        f"saved in {config.shown_path(summary['checkpoint'])}"
    )
    if summary["no_better_than_chance"]:
        why = "it gives every test image the same answer" if summary["constant"] else "see its card"
        print(
            f"[app-models] {task}: {summary['model']} is NO BETTER THAN CHANCE ({why}); the app marks it so. "
            "More data or epochs (python -m helpers app-models --help) may give a useful model."
        )
