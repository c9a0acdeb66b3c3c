"""Every run record beside the published numbers: the tables and plots of the results chapter.

:func:`results_table` reads all run records (:func:`helpers.runs.load_runs`) and the reference
results (:mod:`helpers.references`) into one table with the same metric columns, so a run of this
book and the thesis or paper it reproduces sit in neighbouring rows of the same task. Every row
says what produced it: profile, data source, hardware, wall time and training time for runs;
source, table, resolution and pretraining for references.

A run is *a result* only when it is neither a ``smoke`` run (seconds of training on a few dozen
images, to check the code) nor trained on synthetic data; the ``status`` column says which, and
:func:`results_table` can leave those rows out (``results_only=True``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import references as refs
from .runs import load_runs

__all__ = [
    "METRIC_COLUMNS",
    "run_status",
    "run_rows",
    "results_table",
    "results_by_task",
    "chance_status",
    "ranked",
    "task_summary",
    "plot_accuracy_vs_time",
    "SAME_RUN",
    "fold_duplicates",
    "missing_from",
    "describe_runs",
    "per_class_table",
    "normalise_confusion",
    "plot_confusion",
    "top_losses",
    "stain_pointing",
]

#: The metric columns of the tables, in the order printed (names of :data:`helpers.references.METRICS`).
METRIC_COLUMNS = (
    "balanced_accuracy",
    "accuracy",
    "kappa",
    "error_rate",
    "auroc",
    "auprc",
    "f1",
    "sensitivity",
    "specificity",
    "mcc",
)

#: Where each reference metric is found in a run's metrics dict (first key present wins).
_RUN_KEYS: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy", "mean_accuracy"),
    "balanced_accuracy": ("balanced_accuracy",),
    "kappa": ("kappa",),
    "error_rate": ("error_rate",),
    "auroc": ("auroc", "macro_auroc", "mean_auroc"),
    "auprc": ("auprc", "mean_auprc"),
    "f1": ("macro_f1", "mean_f1", "f1"),
    "sensitivity": ("sensitivity",),
    "specificity": ("specificity",),
    "mcc": ("mcc",),
}

_ID_COLUMNS = [
    "task",
    "kind",
    "status",
    "who",
    "run",
    "model",
    "vs_chance",
    "profile",
    "data_source",
    "resolution",
    "pretrained",
    "n_train",
    "n_test",
    "hardware",
    "train_time_s",
    "wall_time_s",
    "created",
]

#: What the ``vs_chance`` column says of a run (:func:`chance_status`).
AT_CHANCE, ABOVE_CHANCE, CHANCE_NOT_CHECKED = "AT CHANCE", "above chance", "not checked"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def run_status(record: dict[str, Any]) -> str:
    """``"result"``, or why a run is not one: ``"smoke run (not a result)"``, ``"synthetic data (not a result)"``."""
    profile = (record.get("profile") or {}).get("name")
    sources = {(record.get("data") or {}).get(s, {}).get("source") for s in ("train", "valid", "test")}
    reasons = []
    if profile == "smoke":
        reasons.append("smoke run")
    if "synthetic" in sources:
        reasons.append("synthetic data")
    return " + ".join(reasons) + " (not a result)" if reasons else "result"


def chance_status(record: dict[str, Any], split: str = "test") -> str:
    """Whether a run's held-out predictions beat chance, from its permutation check
    (:func:`helpers.chance.chance_check`, kept as ``metrics["test_chance"]``): :data:`AT_CHANCE` (with
    "constant" when it gave every image one answer), :data:`ABOVE_CHANCE`, or :data:`CHANCE_NOT_CHECKED`
    (no check recorded: a multi-label run, or an older record)."""
    check = (record.get("metrics") or {}).get(f"{split}_chance") or {}
    if "no_better_than_chance" not in check:
        return CHANCE_NOT_CHECKED
    if check["no_better_than_chance"]:
        return AT_CHANCE + (" (constant)" if check.get("constant") else "")
    return ABOVE_CHANCE


def _hardware(env: dict[str, Any]) -> str:
    hw = env.get("hardware") or {}
    if hw.get("gpu"):
        return f"{hw['gpu']} (GPU)"
    cpu = hw.get("cpu") or hw.get("device") or "?"
    cores = hw.get("cpu_cores")
    return f"{cpu}, {cores} cores" if cores else str(cpu)


def _run_row(record: dict[str, Any], split: str) -> dict[str, Any]:
    cfg = record.get("config") or {}
    data = record.get("data") or {}
    train = data.get("train") or {}
    metrics = (record.get("metrics") or {}).get(split) or {}
    row: dict[str, Any] = {
        "task": train.get("name") or cfg.get("data"),
        "kind": "run",
        "status": run_status(record),
        "who": record.get("run_id"),
        "run": (cfg.get("train_config") or {}).get("name") or _model_name(cfg),
        "model": _model_name(cfg),
        "vs_chance": chance_status(record, split),
        "profile": (record.get("profile") or {}).get("name"),
        "data_source": train.get("source"),
        "resolution": cfg.get("image_size"),
        "pretrained": cfg.get("pretrained"),
        "n_train": train.get("n"),
        "n_test": (data.get(split) or {}).get("n"),
        "hardware": _hardware(record.get("environment") or {}),
        "train_time_s": _number(cfg.get("train_time_s")),
        "wall_time_s": _number(record.get("wall_time_s")),
        "created": record.get("created"),
        "recipe": cfg.get("recipe"),
        "epochs": cfg.get("epochs"),
        "batch_size": cfg.get("batch_size"),
        "mixup": _number(cfg.get("mixup_alpha")),
        "label_smoothing": _number(cfg.get("label_smoothing")),
        "split": split,
        "checkpoint": record.get("checkpoint"),
        "build": (record.get("environment") or {}).get("build"),
    }
    for metric, keys in _RUN_KEYS.items():
        row[metric] = next((_number(metrics[k]) for k in keys if _number(metrics.get(k)) is not None), None)
    return row


def _model_name(cfg: dict[str, Any]) -> Any:
    """The run's network: the model name, and its backbone when the configuration swaps one in
    (thesis 000's head on a ResNet-10-T or a ViT: ``thesis000_resnet50 (vit_tiny_patch16_224)``)."""
    backbone = (cfg.get("model_kwargs") or {}).get("backbone")
    return f"{cfg.get('model')} ({backbone})" if backbone else cfg.get("model")


def _cell_key(value: Any) -> str:
    """A cell as part of an experiment's key, the same whatever the column's dtype (12 and 12.0 alike)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return repr(value)


def _experiment_keys(table: Any, cols: Sequence[str]) -> Any:
    """One string per row: its values in ``cols`` (:func:`_cell_key`), joined."""
    return table[list(cols)].apply(lambda col: col.map(_cell_key)).agg("|".join, axis=1)


def run_rows(root: str | Path | None = None, split: str = "test", runs: Sequence[dict[str, Any]] | None = None) -> Any:
    """One row per run record: identity, what produced it, and its metrics on ``split``.

    Args:
        root: the runs folder (default :func:`helpers.config.runs_dir`).
        split: ``"test"`` (held out; default) or ``"valid"``.
        runs: records already loaded (read from ``root`` when ``None``).
    """
    import pandas as pd

    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    records = load_runs(root) if runs is None else list(runs)
    rows = [_run_row(r, split) for r in records]
    columns = _ID_COLUMNS + [
        "recipe",
        "epochs",
        "batch_size",
        "mixup",
        "label_smoothing",
        "split",
        "checkpoint",
        "build",
    ]
    return pd.DataFrame(rows, columns=columns + list(METRIC_COLUMNS))


def _reference_rows(tasks: Iterable[str] | None) -> Any:
    import pandas as pd

    known = set(refs.DATASET_CAPTIONS)
    wanted = None if tasks is None else [t for t in tasks if t in known]
    if wanted == []:
        return pd.DataFrame(columns=_ID_COLUMNS + list(METRIC_COLUMNS))
    df = refs.reference_table(task=wanted)
    rows = []
    keys = [
        "source",
        "table",
        "dataset",
        "model",
        "resolution",
        "pretraining",
        "origin",
        "hardware",
        "train_time_s",
        "notes",
    ]
    for key, group in df.groupby(keys, dropna=False, sort=False):
        info = dict(zip(keys, key))
        row = {
            "task": info["dataset"],
            "kind": "reference",
            "status": "published",
            "who": f"{refs.cited_as(info['source'])}, {info['table']}",
            "run": f"{info['model']} ({refs.cited_as(info['source'])})",
            "model": info["model"],
            "vs_chance": None,
            "profile": None,
            "data_source": "published",
            "resolution": _number(info["resolution"]),
            "pretrained": info["pretraining"] if isinstance(info["pretraining"], str) else None,
            "n_train": None,
            "n_test": None,
            "hardware": info["hardware"] if isinstance(info["hardware"], str) else None,
            "train_time_s": _number(info["train_time_s"]),
            "wall_time_s": None,
            "created": None,
            "notes": info["notes"],
        }
        for metric, value in zip(group["metric"], group["value"]):
            row[metric] = float(value)
        rows.append(row)
    return pd.DataFrame(rows, columns=_ID_COLUMNS + ["notes"] + list(METRIC_COLUMNS))


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def results_table(
    task: str | Sequence[str] | None = None,
    profile: str | Sequence[str] | None = None,
    source: str | Sequence[str] | None = None,
    *,
    root: str | Path | None = None,
    runs: Sequence[dict[str, Any]] | None = None,
    split: str = "test",
    references: bool = True,
    results_only: bool = False,
    drop_empty_metrics: bool = True,
) -> Any:
    """Runs and reference results of the same tasks in one table (runs first, newest first).

    Args:
        task: dataset name(s) to keep (``"pbc"``, ``"bloodmnist"``, ...); ``None`` keeps every task
            that has runs or references.
        profile: keep runs of these profiles (``"quick"``, ``"full"``, ...); references are kept.
        source: keep runs whose data source is one of these (``"real"``, ``"download"``,
            ``"synthetic"``); references are kept.
        root: the runs folder (default :func:`helpers.config.runs_dir`).
        runs: records already loaded, instead of reading ``root``.
        split: the split whose metrics are shown for runs (``"test"`` or ``"valid"``).
        references: add the published numbers of the same tasks.
        results_only: leave out smoke runs and runs on synthetic data.
        drop_empty_metrics: drop metric columns that no row has.
    """
    import pandas as pd

    tasks, profiles, sources = _as_list(task), _as_list(profile), _as_list(source)
    if sources is not None:
        bad = [s for s in sources if s not in ("real", "download", "synthetic")]
        if bad:
            raise ValueError(f"unknown data source(s) {bad}; use 'real', 'download' or 'synthetic'")
    run_df = run_rows(root, split=split, runs=runs)
    if tasks is not None:
        run_df = run_df[run_df["task"].isin(tasks)]
    if profiles is not None:
        run_df = run_df[run_df["profile"].isin(profiles)]
    if sources is not None:
        run_df = run_df[run_df["data_source"].isin(sources)]
    if results_only:
        run_df = run_df[run_df["status"] == "result"]
    run_df = run_df.sort_values("created", ascending=False, kind="stable")
    frames = [run_df]
    if references:
        frames.append(_reference_rows(tasks))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=_ID_COLUMNS + list(METRIC_COLUMNS))
    df = pd.concat(frames, ignore_index=True, sort=False)
    # tasks in a stable order: as asked for; else those with runs first, then as the references list them
    order = list(dict.fromkeys((tasks or []) + list(run_df["task"]) + list(df["task"])))
    df["_task_order"] = df["task"].map({t: i for i, t in enumerate(order)})
    df = df.sort_values(["_task_order"], kind="stable").drop(columns="_task_order").reset_index(drop=True)
    if drop_empty_metrics:
        empty = [m for m in METRIC_COLUMNS if m in df.columns and df[m].isna().all()]
        df = df.drop(columns=empty)
    return df


def results_by_task(**kwargs: Any) -> dict[str, Any]:
    """:func:`results_table` split by task: ``{task: DataFrame}``, empty metric columns dropped per task."""
    kwargs.setdefault("drop_empty_metrics", False)
    df = results_table(**kwargs)
    out = {}
    for task, group in df.groupby("task", sort=False):
        keep = [c for c in group.columns if c not in METRIC_COLUMNS or group[c].notna().any()]
        out[str(task)] = group[keep].reset_index(drop=True)
    return out


#: What makes two runs the same experiment: folded by :func:`fold_duplicates`.
SAME_RUN = (
    "task",
    "model",
    "profile",
    "data_source",
    "resolution",
    "pretrained",
    "n_train",
    "recipe",
    "epochs",
    "batch_size",
    "mixup",
    "label_smoothing",
)


def missing_from(shown: Any, runs: Any, keys: Sequence[str] = SAME_RUN) -> list[str]:
    """The runs (``who``) of ``runs`` that ``shown`` neither lists nor folds into one of its rows
    (a row equal in every column of ``keys``): what a results page would hide."""
    cols = [k for k in keys if k in shown.columns and k in runs.columns]

    def key(df: Any) -> Any:
        return _experiment_keys(df, cols) if len(df) else df.index

    listed, folded = set(shown.get("who", [])), set(key(shown[shown["kind"] == "run"]))
    return [w for w, k in zip(runs["who"], key(runs)) if w not in listed and k not in folded]


def fold_duplicates(table: Any, keys: Sequence[str] = SAME_RUN) -> Any:
    """``table`` with repeated runs of one experiment (equal in every column of ``keys`` that it has)
    folded into the first of them (the newest, in :func:`results_table`'s order), and a ``runs``
    column saying how many were folded; published rows pass through with ``runs`` 1."""
    import pandas as pd

    if table.empty:
        return table.assign(runs=pd.Series(dtype=int))
    cols = [k for k in keys if k in table.columns]
    is_run = table["kind"] == "run"
    published = table.index.astype(str) + "|published"  # never folded
    key = _experiment_keys(table, cols).where(is_run, published)
    counts = key.map(key.value_counts())
    keep = ~key.duplicated(keep="first")
    return table.assign(runs=counts.astype(int))[keep].reset_index(drop=True)


def describe_runs(root: str | Path | None = None, runs: Sequence[dict[str, Any]] | None = None) -> str:
    """One paragraph saying how many run records there are, where, and how many are results."""
    from . import config

    records = load_runs(root) if runs is None else list(runs)
    where = config.shown_path(Path(root) if root is not None else config.runs_dir(create=False))
    if not records:
        return (
            f"No run records under {where}: nothing has been trained here yet. Run an application "
            "chapter (or papermill it) and its runs appear here; the published numbers are shown below."
        )
    statuses = [run_status(r) for r in records]
    n_result = sum(s == "result" for s in statuses)
    tasks = sorted({(r.get("data") or {}).get("train", {}).get("name") or "?" for r in records})
    text = (
        f"{len(records)} run record(s) under {where}, on {', '.join(tasks)}; "
        f"{n_result} count as results, {len(records) - n_result} do not (smoke runs or synthetic data, "
        "marked in the status column and never compared with the published numbers as results)."
    )
    return text


def _plot_runs(ax: Any, runs: Any, metric: str, time_column: str, colours: dict[str, str], annotate: bool) -> None:
    """Runs as dots: filled for results, hollow for smoke or synthetic runs."""
    for status_is_result, group in runs.groupby(runs["status"] == "result"):
        for t, sub in group.groupby("task"):
            ax.scatter(
                sub[time_column] / 60,
                sub[metric],
                s=50,
                marker="o",
                facecolors=colours[t] if status_is_result else "none",
                edgecolors=colours[t],
                label=f"{t} run" + ("" if status_is_result else " (smoke/synthetic, not a result)"),
            )
            if annotate:
                for _, r in sub.iterrows():
                    ax.annotate(
                        f"{r['model']} ({r['profile']})",
                        (r[time_column] / 60, r[metric]),
                        fontsize=7,
                        xytext=(4, 2),
                        textcoords="offset points",
                    )


def _plot_references(ax: Any, ref: Any, metric: str, colours: dict[str, str], annotate: bool) -> None:
    """References as stars at their reported training time, or as dotted lines when none was reported."""
    for _, r in ref.iterrows():
        colour = colours.get(r["task"], "k")
        label = f"{r['model']} ({r['who']})"
        if _number(r.get("train_time_s")) is not None:
            ax.scatter(r["train_time_s"] / 60, r[metric], marker="*", s=120, color=colour)
            if annotate:
                ax.annotate(
                    label, (r["train_time_s"] / 60, r[metric]), fontsize=7, xytext=(4, -8), textcoords="offset points"
                )
        else:
            ax.axhline(r[metric], color=colour, lw=0.8, ls=":", alpha=0.7)
            if annotate:
                ax.annotate(
                    label,
                    (1.0, r[metric]),
                    xycoords=("axes fraction", "data"),
                    fontsize=7,
                    ha="right",
                    va="bottom",
                    color=colour,
                )


def plot_accuracy_vs_time(
    df: Any = None,
    metric: str | None = None,
    task: str | None = None,
    time_column: str = "train_time_s",
    ax: Any = None,
    annotate: bool = True,
    **table_kwargs: Any,
) -> Any:
    """Scatter of a task's main metric against training time, one point per run.

    Runs that are not results (smoke, synthetic) are drawn hollow and labelled so. References with
    a reported training time are drawn as stars; those without one are drawn as horizontal lines
    (the thesis did not report a time).

    Args:
        df: a :func:`results_table` frame (built with ``table_kwargs`` when ``None``).
        metric: the metric on the y axis (default: the task's main metric,
            :func:`helpers.references.main_metric`; ``accuracy`` for several tasks).
        task: keep only this task.
        time_column: ``"train_time_s"`` (training only) or ``"wall_time_s"`` (with data and evaluation).
        ax: a matplotlib axis to draw on.
        annotate: write each run's model name beside its point.

    Returns:
        The matplotlib axis.
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if df is None:
        df = results_table(task=task, drop_empty_metrics=False, **table_kwargs)
    if task is not None:
        df = df[df["task"] == task]
    tasks = list(dict.fromkeys(df["task"]))
    if metric is None:
        metric = refs.main_metric(tasks[0]) if len(tasks) == 1 else "accuracy"
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    if metric not in df.columns:
        df = df.assign(**{metric: float("nan")})
    runs = df[(df["kind"] == "run") & df[metric].notna() & df[time_column].notna()]
    runs = runs.assign(model=runs["run"]) if "run" in runs.columns else runs
    colours = {t: f"C{i}" for i, t in enumerate(tasks)}
    _plot_runs(ax, runs, metric, time_column, colours, annotate)
    _plot_references(ax, df[(df["kind"] == "reference") & df[metric].notna()], metric, colours, annotate)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))  # 0.5, 1, 10: not 7.98×10⁻¹
    ax.set_xlabel(("training" if time_column == "train_time_s" else "wall") + " time (minutes, log scale above 1)")
    ax.set_ylabel(f"{metric} (held-out)")
    ax.set_title(f"{metric} against time" + (f" — {tasks[0]}" if len(tasks) == 1 else ""))
    if runs.empty:
        ax.text(0.5, 0.5, "no runs with this metric yet", transform=ax.transAxes, ha="center", va="center", color="0.4")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return ax


def ranked(table: Any, task: str) -> Any:
    """A task's rows in reading order: this book's runs that beat chance, best first by the task's main
    metric (:func:`helpers.references.main_metric`), then its runs at chance or not checked, then the
    published numbers, best first."""
    metric = refs.main_metric(task)
    value = table[metric] if metric in table.columns else table.index.to_series() * float("nan")
    group = (table["kind"] != "run") * 2 + ((table["kind"] == "run") & (table["vs_chance"] != ABOVE_CHANCE))
    order = table.assign(_group=group, _value=-value.fillna(float("-inf")))
    return order.sort_values(["_group", "_value"], kind="stable").drop(columns=["_group", "_value"])


def task_summary(table: Any, task: str) -> str:
    """What holds on one task, in words, from its rows: the best run that beats chance (its main metric,
    profile, training images, resolution and initialisation), how many runs are at chance (kept out of the
    comparison), and the best published number beside it with what differed."""
    metric = refs.main_metric(task)
    if metric not in table.columns:
        return f"{task}: no row reports {metric}, the task's main metric."
    runs, published = table[table["kind"] == "run"], table[table["kind"] != "run"]
    beat = runs[(runs["vs_chance"] == ABOVE_CHANCE) & runs[metric].notna()]
    parts = []
    if runs.empty:
        parts.append(f"{task}: no run of this book on this task in the runs folder")
    elif beat.empty:
        parts.append(f"{task}: no run of this book beats chance on {metric} yet")
    else:
        best = beat.loc[beat[metric].idxmax()]
        init = "ImageNet weights" if best["pretrained"] is True else "random weights"
        parts.append(
            f"{task}: the best run that beats chance is {best['run']}, {metric} {best[metric]:.3f} "
            f"({best['profile']}, {_count(best['n_train'])} training images at {_count(best['resolution'])} px, {init})"
        )
    at_chance = runs[runs["vs_chance"].astype(str).str.startswith(AT_CHANCE)]
    if len(at_chance):
        parts.append(f"{len(at_chance)} run(s) are at chance and are not compared: {', '.join(at_chance['run'])}")
    listed = published[published[metric].notna()]
    if len(listed):
        top = listed.loc[listed[metric].idxmax()]
        px = "resolution not stated" if _number(top["resolution"]) is None else f"{_count(top['resolution'])} px"
        pre = top["pretrained"] if isinstance(top["pretrained"], str) and top["pretrained"] else "not stated"
        parts.append(
            f"the best published number is {top[metric]:.3f} ({top['run']}, {px}, pretraining {pre}): "
            "a different protocol, not a target met or missed"
        )
    return "; ".join(parts) + "."


def _count(value: Any) -> str:
    number = _number(value)
    return "?" if number is None else f"{int(number):,}"


# ----------------------------------------------------------------------------- one run in detail


def per_class_table(metrics: dict[str, Any]) -> Any:
    """Precision, recall, F1 and support per class from a run's multi-class metrics (``record.metrics["test"]``)."""
    import pandas as pd

    per = metrics.get("per_class")
    if not per:
        raise ValueError("these metrics have no per-class table (multi-label runs report per_label instead)")
    df = pd.DataFrame(per).T[["precision", "recall", "f1", "support"]]
    df["support"] = df["support"].astype(int)
    df.index.name = "class"
    return df


def normalise_confusion(cm: Sequence[Sequence[int]]) -> Any:
    """Row-normalised confusion matrix: entry (i, j) is the share of true class i predicted as j
    (a class with no image gets a row of zeros)."""
    import numpy as np

    cm = np.asarray(cm, dtype=float)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def plot_confusion(
    cm: Sequence[Sequence[int]],
    classes: Sequence[str],
    normalize: bool = False,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Draw a confusion matrix (rows: true class, columns: predicted), counts or row shares; cells with no
    image are left blank."""
    import matplotlib.pyplot as plt
    import numpy as np

    raw = np.asarray(cm)
    values = normalise_confusion(raw) if normalize else raw
    if ax is None:
        side = 1.0 + 0.55 * len(classes)
        _, ax = plt.subplots(figsize=(side, side))
    ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, values.max()))
    size = 9 if len(classes) <= 10 else 7  # legible at the book's column width
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if raw[i, j] == 0:  # an empty cell stays blank: the matrix reads by its few filled cells
                continue
            text = f"{values[i, j]:.2f}" if normalize else str(int(values[i, j]))
            dark = values[i, j] > (0.5 if normalize else values.max() / 2)
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color="white" if dark else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        title or ("confusion matrix, row-normalised" if normalize else "confusion matrix (counts)"), fontsize=9
    )
    return ax


def top_losses(y_true: Sequence[int], probs: Any, classes: Sequence[str], k: int = 9) -> Any:
    """The ``k`` images with the largest cross-entropy loss :math:`-\\log p_{y}` (single-label tasks).

    Returns a DataFrame with the image ``index``, ``true`` and ``predicted`` class, the probability
    given to the true class and to the predicted one, and the ``loss``, largest first.
    """
    import numpy as np
    import pandas as pd

    y = np.asarray(y_true).astype(int)
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"probs must be (N, K) with N = {len(y)}, got {p.shape}")
    p_true = p[np.arange(len(y)), y]
    loss = -np.log(np.clip(p_true, 1e-12, 1.0))
    pred = p.argmax(axis=1)
    order = np.argsort(-loss, kind="stable")[:k]
    return pd.DataFrame(
        {
            "index": order,
            "true": [classes[i] for i in y[order]],
            "predicted": [classes[i] for i in pred[order]],
            "p_true": p_true[order],
            "p_predicted": p[order, pred[order]],
            "loss": loss[order],
        }
    )


def stain_pointing(model: Any, x: Any, images: Sequence[Any]) -> dict[str, Any]:
    """Do a blood-cell model's heatmaps point at the stained cell? (:mod:`helpers.pointing`)

    Each image is explained the way the app explains it (:func:`helpers.explain.explanation_plan`:
    Grad-CAM on the deepest layer whose map is fine enough, or attention rollout), for its predicted
    class, and the map is scored against the image's stained-cell mask. Images with no stained
    pixel are left out and counted.

    Args:
        model: a trained PBC classifier (in eval mode).
        x: the normalised input batch ``(B, 3, H, W)``.
        images: the ``B`` uint8 RGB images ``x`` was made from, at the same size.

    Returns:
        :func:`helpers.pointing.pointing_summary` (``heat_share``, ``area_share``, ``ratio``,
        ``hit_rate``, ``n``) with ``method`` (the plan, in words) and ``no_stain`` (images left out).

    Raises:
        helpers.explain.NoMapError: when the model is too coarse at this size to point at anything.
    """
    import numpy as np
    import torch

    from . import explain, pointing

    if len(images) != len(x):
        raise ValueError(f"{len(x)} inputs but {len(images)} images")
    plan = explain.explanation_plan(model, int(x.shape[-1]))
    with torch.no_grad():
        predicted = model(x).argmax(1).tolist()
    if plan.method == "rollout":
        maps = explain.rollout_map(model, x)
    else:
        maps = explain.grad_cam(model, x, target=predicted, target_layer=dict(model.named_modules())[plan.layer])
    scores, no_stain = [], 0
    for heat, image in zip(maps, images):
        try:
            scores.append(pointing.heat_in_region(heat, pointing.stained_cell_mask(np.asarray(image))))
        except ValueError:
            no_stain += 1
    return {**pointing.pointing_summary(scores), "method": plan.describe(), "no_stain": no_stain}


def error_rate_mismatches(table: Any, decimals: int = 2) -> Any:
    """The rows of a reference table whose accuracy and error rate cannot both be right.

    Published figures are rounded: an accuracy printed to ``decimals`` places is within half a unit
    of the last place of the true one, and so is an error rate printed to as many places (or more).
    The two printed numbers can then differ from ``1 - accuracy`` by less than one unit of the last
    place; a row that differs by a full unit or more is inconsistent. Rows with either number
    missing are left out.

    Returns:
        The offending rows, with a ``1 - accuracy`` column.
    """
    import pandas as pd

    df = pd.DataFrame(table).dropna(subset=["accuracy", "error_rate"]).copy()
    df["1 - accuracy"] = (1 - df["accuracy"]).round(decimals + 1)
    unit = 10.0**-decimals
    return df[(df["1 - accuracy"] - df["error_rate"]).abs() >= unit - 1e-9]
