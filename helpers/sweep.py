"""Parameter sweeps over a chapter: one papermill execution per combination, several at once.

``python -m helpers sweep book/applications/blood_cells.ipynb -p MODEL resnet18 vit_tiny_patch16_224
-p EPOCHS 5 10 --jobs 2`` executes the notebook four times. Each combination gets a folder
``<runs>/sweeps/<stamp>/<NAME=value,...>/`` holding its executed notebook, its log, and the run
records its training calls write (``MEDVIT_RUNS`` points there while it runs; the Results chapter
reads every ``run.json`` under ``<runs>``, so it finds them with no edit). A combination that fails
is reported in the table with the last line of its error; the others go on.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import config

__all__ = ["SweepResult", "combinations", "run_sweep", "sweep_table"]


@dataclass
class SweepResult:
    """One executed combination: its parameters, where its outputs are, whether it ran, how long."""

    params: dict[str, Any]
    folder: Path
    ok: bool = False
    error: str = ""
    wall_time_s: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)


def _value(text: str) -> Any:
    """A parameter value: a Python literal where it parses (``5``, ``0.1``, ``None``), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def combinations(params: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """Every combination of the values, in order (the last parameter varies fastest).

    Raises:
        ValueError: for a parameter given twice or without values.
    """
    names = [name for name, _ in params]
    if len(set(names)) != len(names):
        raise ValueError(f"a parameter is given twice: {names}")
    for name, values in params:
        if not values:
            raise ValueError(f"parameter {name} has no values")
    grid = itertools.product(*[[_value(v) for v in values] for _, values in params])
    return [dict(zip(names, combo)) for combo in grid]


def _slug(params: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9.=,_-]+", "_", ",".join(f"{k}={v}" for k, v in params.items()))[:120] or "default"


def _execute(notebook: Path, result: SweepResult, timeout: float | None) -> SweepResult:
    """Run papermill in a subprocess for one combination (its own kernel, its own runs folder)."""
    result.folder.mkdir(parents=True, exist_ok=True)
    out = result.folder / notebook.name
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(out), "-y", json.dumps(result.params)]
    cmd += ["--cwd", str(notebook.parent), "--log-output"]
    env = {**os.environ, "MEDVIT_RUNS": str(result.folder)}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        log = proc.stdout + proc.stderr
        result.ok = proc.returncode == 0
    except subprocess.TimeoutExpired as err:
        log, result.ok = f"{err.stdout or ''}{err.stderr or ''}\ntimed out after {timeout} s", False
    result.wall_time_s = time.perf_counter() - t0
    (result.folder / "papermill.log").write_text(str(log), encoding="utf-8")
    if not result.ok:
        lines = [ln for ln in str(log).splitlines() if ln.strip()]
        result.error = lines[-1][:200] if lines else "failed"
    from .runs import load_runs

    result.runs = load_runs(result.folder)
    return result


def run_sweep(
    notebook: str | Path,
    params: list[tuple[str, list[str]]],
    *,
    jobs: int = 1,
    out_dir: str | Path | None = None,
    profile: str | None = None,
    timeout: float | None = None,
) -> list[SweepResult]:
    """Execute ``notebook`` once per combination of ``params`` (``[("MODEL", ["a", "b"]), ...]``),
    ``jobs`` at a time; return the results in the order of :func:`combinations`.

    Raises:
        FileNotFoundError: when the notebook does not exist.
    """
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook {notebook}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    root = Path(out_dir) if out_dir else config.runs_dir() / "sweeps" / f"{stamp}-{notebook.stem}"
    combos = combinations(params)
    if profile:
        combos = [{"PROFILE": profile, **c} for c in combos]
    results = [SweepResult(c, root.resolve() / _slug(c)) for c in combos]
    print(f"{len(results)} combination(s) of {notebook.name}, {jobs} at a time, into {root}", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = list(pool.map(lambda r: _execute(notebook, r, timeout), results))
    return done


def sweep_table(results: list[SweepResult]) -> Any:
    """One row per combination: the parameters, status, wall time, run ids and headline test metric."""
    import pandas as pd

    from .runs import runs_table

    rows = []
    for r in results:
        row: dict[str, Any] = {**r.params, "status": "ok" if r.ok else f"FAILED: {r.error}"}
        row["wall_time_s"] = round(r.wall_time_s, 1)
        table = runs_table(runs=r.runs)
        row["runs"] = len(table)
        for key in ("test_accuracy", "test_macro_auroc"):
            if key in table.columns and table[key].notna().any():
                row[key] = round(float(table[key].dropna().iloc[-1]), 4)
        row["folder"] = str(r.folder)
        rows.append(row)
    return pd.DataFrame(rows)
