"""The book's pages executed several at a time, before Sphinx reads them.

Sphinx reads (and myst-nb executes) one page after another, so on a machine with two cores ``make book``
leaves one idle while a chapter trains at one torch thread. With ``execute_notebooks: cache`` in
``_config.yml`` and ``MEDVIT_BOOK_JOBS`` above 1 (``make book`` sets it from ``BOOK_JOBS``), the pages Sphinx
is about to read are first executed that many at a time, each in its own kernel in its own folder, as myst-nb
would (:func:`pre_execute`, on Sphinx's ``env-before-read-docs``), into myst-nb's execution cache; Sphinx then
reads each page from there. A page's numbers do not change: each kernel trains at the thread count the build
sets (``OMP_NUM_THREADS``), whatever runs beside it.

* The pages that gather the others' results (``medvit_gather_last``) are left to Sphinx, which reads them
  last, after every other page has run.
* The longest pages start first (``medvit_execute_first``), so that the workers finish together.
* A page whose cell fails is not cached: Sphinx executes it again as it reads it, shows the error under that
  cell and records the failure (:mod:`helpers.bookbuild`), as a build one page at a time does.
* The cache is emptied when the build starts (:func:`clear_cache`): a page is never taken from an earlier
  build, which may have run on other data or another profile.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

__all__ = [
    "JOBS_VARIABLE",
    "jobs",
    "cache_path",
    "clear_cache",
    "execution_order",
    "pre_execute",
    "page_seconds",
    "setup",
]

#: The environment variable that says how many pages are executed at once (1: one by one as Sphinx reads).
JOBS_VARIABLE = "MEDVIT_BOOK_JOBS"


def jobs() -> int:
    """How many pages to execute at once, from :data:`JOBS_VARIABLE` (default 1).

    Raises:
        ValueError: when the variable is set to anything but a positive whole number.
    """
    raw = os.environ.get(JOBS_VARIABLE, "").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{JOBS_VARIABLE} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def cache_path(app: Any) -> Path:
    """myst-nb's execution cache, as myst-nb resolves it (``execute: cache`` in ``_config.yml``)."""
    return Path(app.config.nb_execution_cache_path or ".jupyter_cache")


def clear_cache(app: Any) -> None:
    """Sphinx ``builder-inited``: empty the execution cache, so that every page read in this build runs in it."""
    if app.config.nb_execution_mode == "cache":
        shutil.rmtree(cache_path(app), ignore_errors=True)


def execution_order(docnames: list[str], first: list[str], last: list[str]) -> list[str]:
    """The pages to execute ahead of Sphinx: ``docnames`` without ``last``, those named in ``first`` first (in
    that order), the others in Sphinx's order."""
    todo = [d for d in docnames if d not in last]
    return [d for d in first if d in todo] + [d for d in todo if d not in first]


def pre_execute(app: Any, env: Any, docnames: list[str]) -> None:
    """Sphinx ``env-before-read-docs``: execute the notebooks about to be read, :func:`jobs` at a time, into
    myst-nb's cache (see the module's docstring). Does nothing unless the build caches and jobs > 1."""
    n_jobs = jobs()
    if app.config.nb_execution_mode != "cache" or n_jobs < 2:
        return
    order = execution_order(list(docnames), list(app.config.medvit_execute_first), list(app.config.medvit_gather_last))
    paths = [Path(env.doc2path(d)) for d in order]
    paths = [p for p in paths if p.suffix == ".ipynb"]
    if len(paths) < 2:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

    cache = get_cache(str(cache_path(app)))
    records = [cache.add_nb_to_project(str(p)) for p in paths]
    timeout = app.config.nb_execution_timeout
    tasks = [ProcessData(r.pk, r.uri, cache, timeout, False) for r in records]
    print(f"[book] executing {len(tasks)} pages, {n_jobs} at a time", flush=True)
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(n_jobs) as pool:
        for status, uri in pool.imap_unordered(ExecutionWorkerLocalMProc(), tasks, chunksize=1):
            what = {0: "executed", 1: "FAILED (Sphinx runs it again and shows the error)"}.get(status, "NOT RUN")
            print(f"[book] {time.perf_counter() - t0:7.0f} s  {what}: {Path(uri).name}", flush=True)


def page_seconds(env: Any, docname: str, read_seconds: float) -> float:
    """How long a page took to execute: myst-nb's record of it (also for a page taken from the cache), else
    the seconds Sphinx took to read it."""
    try:
        from myst_nb.sphinx_ import NbMetadataCollector

        data = NbMetadataCollector.get_exec_data(env, docname) or {}
    except (ImportError, AttributeError, KeyError):
        data = {}
    runtime = data.get("runtime") if isinstance(data, dict) else None
    return float(runtime) if isinstance(runtime, (int, float)) else read_seconds


def setup(app: Any) -> None:
    """Register the settings and the handlers (called by :func:`helpers.bookbuild.setup`)."""
    app.add_config_value("medvit_execute_first", [], "env")
    app.connect("builder-inited", clear_cache)
    app.connect("env-before-read-docs", pre_execute)
