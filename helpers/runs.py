"""Run records: one folder per training run, a ``run.json`` in it, never overwritten.

A run folder is named ``<UTC timestamp>-<dataset>-<model>-<profile>-<random>`` under
:func:`helpers.config.runs_dir` and holds ``run.json`` and, when the run saved one, the
checkpoint (``checkpoint/model.safetensors`` + ``model_card.json``). ``run.json`` keeps what a
number needs to be trusted and compared: the configuration, the profile, the data (source,
split sizes, class counts), hardware and versions, wall time (total and per epoch), the
per-epoch history, and the final metrics on validation and test.

:func:`load_runs` and :func:`runs_table` read every record back for the results chapter.
"""

from __future__ import annotations

import json
import re
import secrets
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import config
from .checkpoints import to_jsonable

__all__ = ["RUN_FILE", "RunRecord", "new_run_folder", "load_runs", "runs_table"]

RUN_FILE = "run.json"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(text)).strip("_")[:40] or "x"


def new_run_folder(dataset: str, model: str, profile: str, root: str | Path | None = None) -> tuple[str, Path]:
    """Create a fresh run folder and return ``(run_id, path)``.

    The id is ``<YYYYmmddTHHMMSSZ>-<dataset>-<model>-<profile>-<6 hex>``; the folder is created
    with ``exist_ok=False``, so an existing run can never be written into.
    """
    root = Path(root) if root is not None else config.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for _ in range(20):
        run_id = f"{stamp}-{_slug(dataset)}-{_slug(model)}-{_slug(profile)}-{secrets.token_hex(3)}"
        path = root / run_id
        try:
            path.mkdir(parents=False, exist_ok=False)
        except FileExistsError:
            continue
        return run_id, path
    raise RuntimeError(f"could not create a new run folder under {root}")


@dataclass
class RunRecord:
    """What one call of :func:`helpers.train.train` produced.

    ``model`` (the trained network, in memory) and ``learner`` (the fastai Learner) are not
    written to ``run.json``; everything else is.
    """

    run_id: str
    folder: Path | None
    created: str
    config: dict[str, Any]
    profile: dict[str, Any]
    data: dict[str, Any]
    environment: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_times_s: list[float] = field(default_factory=list)
    wall_time_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    model: Any = field(default=None, repr=False)
    learner: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record (without the in-memory model and learner)."""
        return to_jsonable(
            {
                "run_id": self.run_id,
                "folder": self.folder,
                "created": self.created,
                "config": self.config,
                "profile": self.profile,
                "data": self.data,
                "environment": self.environment,
                "history": self.history,
                "epoch_times_s": self.epoch_times_s,
                "wall_time_s": self.wall_time_s,
                "metrics": self.metrics,
                "checkpoint": self.checkpoint,
            }
        )

    def save(self) -> Path:
        """Write ``run.json`` into the run folder (atomic replace) and return its path."""
        if self.folder is None:
            raise ValueError("this run has no folder (it was trained with save=False)")
        path = Path(self.folder) / RUN_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False), encoding="utf-8")
        tmp.replace(path)
        return path

    def summary(self) -> dict[str, Any]:
        """One flat row: the run's identity, size, time and headline test/valid metrics."""
        return _row(self.to_dict())

    def __repr__(self) -> str:
        test = self.metrics.get("test") or self.metrics.get("valid") or {}
        key = next((k for k in ("auroc", "macro_auroc", "mean_auroc", "accuracy") if test.get(k) is not None), None)
        shown = f", {key}={test[key]:.3f}" if key else ""
        return f"RunRecord({self.run_id!r}, wall_time={self.wall_time_s:.1f}s{shown})"


def load_runs(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every ``run.json`` under ``root`` (default :func:`helpers.config.runs_dir`), oldest first.

    Unreadable records are skipped with a warning naming the file. Each dict gets ``folder``
    set to where it was found (runs may have been moved).
    """
    root = Path(root) if root is not None else config.runs_dir(create=False)
    if not root.is_dir():
        return []
    runs = []
    for path in sorted(root.rglob(RUN_FILE)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            warnings.warn(f"skipping unreadable run record {path}: {err}", stacklevel=2)
            continue
        if not isinstance(record, dict) or "run_id" not in record:
            warnings.warn(f"skipping {path}: not a run record", stacklevel=2)
            continue
        record["folder"] = str(path.parent)
        runs.append(record)
    runs.sort(key=lambda r: str(r.get("created", "")))
    return runs


_HEADLINE = ("accuracy", "balanced_accuracy", "kappa", "auroc", "macro_auroc", "mean_auroc", "mean_auprc", "mean_f1")


def _row(record: dict[str, Any]) -> dict[str, Any]:
    cfg, data, env = record.get("config", {}), record.get("data", {}), record.get("environment", {})
    hw = env.get("hardware", {})
    train = data.get("train", {})
    row: dict[str, Any] = {
        "run_id": record.get("run_id"),
        "created": record.get("created"),
        "dataset": train.get("name", cfg.get("data")),
        "task": train.get("task"),
        "source": train.get("source"),
        "model": cfg.get("model"),
        "pretrained": cfg.get("pretrained"),
        "recipe": cfg.get("recipe"),
        "profile": record.get("profile", {}).get("name"),
        "image_size": cfg.get("image_size"),
        "epochs": cfg.get("epochs"),
        "n_train": train.get("n"),
        "n_valid": data.get("valid", {}).get("n"),
        "n_test": data.get("test", {}).get("n"),
        "device": hw.get("gpu") or hw.get("device"),
        "cpu_cores": hw.get("cpu_cores"),
        "wall_time_s": record.get("wall_time_s"),
    }
    for split in ("valid", "test"):
        m = record.get("metrics", {}).get(split) or {}
        for key in _HEADLINE:
            if m.get(key) is not None:
                row[f"{split}_{key}"] = m[key]
    row["checkpoint"] = record.get("checkpoint")
    return row


def runs_table(runs: list[dict[str, Any]] | None = None, root: str | Path | None = None, **filters: Any) -> Any:
    """Run records as a pandas DataFrame, one row each, for the results chapter.

    Args:
        runs: records from :func:`load_runs` (read from ``root`` when ``None``).
        root: where to look for records.
        **filters: keep rows whose column equals the value (``profile="quick"``,
            ``dataset="pneumoniamnist"``); a list value keeps any of its members.
    """
    import pandas as pd

    records = load_runs(root) if runs is None else runs
    df = pd.DataFrame([_row(r) for r in records])
    if df.empty:
        return pd.DataFrame(columns=["run_id", "dataset", "model", "profile", "source", "wall_time_s"])
    for col, value in filters.items():
        if col not in df.columns:
            raise KeyError(f"no column {col!r} to filter on; columns are {list(df.columns)}")
        values = value if isinstance(value, (list, tuple, set)) else [value]
        df = df[df[col].isin(values)]
    return df.reset_index(drop=True)
