"""Which data every chapter of this build ran on: the data-sources summary.

After ``make book`` each chapter's executed notebook is in ``_build/jupyter_execute/`` (myst-nb
writes it there as the chapter is read, in the order of the documents' names) and each training
run left a record under the runs folder. :func:`sources_table` reads both and gives one row per
chapter of ``_toc.yml``: whether it was executed in this build, its profile, the datasets it
loaded with their source (``real``, ``download``, ``synthetic``), the number of images it loaded,
and its training runs. The chapter's printed lines are the evidence: the run-info block
(``profile     : quick``, ``data pbc    : real (...)``), the registry's ``[data] pbc/train: 280
images 32px, source=real`` lines, the synthetic stand-in banner, and the run ids of
:mod:`helpers.runs`.

The page that shows the table, ``book/tools/sources.ipynb``, is one of the pages the book reads
after every chapter (``medvit_gather_last`` in ``_config.yml``, :mod:`helpers.bookbuild`), so the
chapters have run when it runs; the other gathering pages (Results, the claims ledger) run after it
and are listed as gathering the build, not as chapters that were not executed.

"This build" means notebooks written since the build started: the start of the process that
runs this page's kernel (the ``jupyter-book`` process), or, outside a build, every executed
notebook found.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config

__all__ = [
    "ChapterSources",
    "SOURCE_WORDS",
    "toc_chapters",
    "executed_notebook",
    "gathering_pages",
    "notebook_text",
    "parse_sources",
    "build_started",
    "sources_table",
    "verdict",
]

#: How a dataset's source is named in the summary.
SOURCE_WORDS = {"real": "real", "download": "downloaded", "synthetic": "synthetic"}

_DATA_LINE = re.compile(r"\[data\] (\S+?)/(train|valid|test|all): (\d+) images (\d+)px, source=(\w+)")
_STAND_IN = re.compile(r"SYNTHETIC STAND-IN for '([^']+)'")
_PROFILE = re.compile(r"^profile\s+: (\w+)", re.M)
_DECLARED = re.compile(r"^data (\S+)\s*: (real|download|synthetic)", re.M)
_RUN_ID = re.compile(r"\b(\d{8}T\d{6}Z-[A-Za-z0-9._]+-[A-Za-z0-9._]+-[A-Za-z0-9._]+-[0-9a-f]{6})\b")


@dataclass
class ChapterSources:
    """What one chapter's outputs say about its data."""

    profile: str | None = None
    loaded: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    declared: dict[str, str] = field(default_factory=dict)
    stand_ins: set[str] = field(default_factory=set)
    run_ids: set[str] = field(default_factory=set)

    def sources(self) -> dict[str, str]:
        """Dataset -> source: what was loaded, else what the run-info block declared; stand-ins override."""
        out = {name: src for (name, _), (_, src) in self.loaded.items()} or dict(self.declared)
        out.update({name: "synthetic" for name in self.stand_ins})
        return out

    @property
    def images(self) -> int:
        """Images loaded (each dataset split counted once, at its largest load)."""
        return sum(n for n, _ in self.loaded.values())


def toc_chapters(toc: Path | None = None) -> list[str]:
    """The notebooks of ``_toc.yml`` in reading order (``book/data/datasets``, ...; no suffix)."""
    import yaml

    toc = toc or config.repo_root() / "_toc.yml"
    spec = yaml.safe_load(toc.read_text(encoding="utf-8"))
    files = [spec["root"]]
    for part in spec.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", []) if "file" in chapter]
    return [f for f in files if (toc.parent / f"{f}.ipynb").exists()]


def executed_notebook(chapter: str, build: Path | None = None) -> Path | None:
    """The executed copy of ``chapter`` that the book build wrote, when there is one."""
    build = build or config.repo_root() / "_build"
    path = build / "jupyter_execute" / f"{chapter}.ipynb"
    return path if path.exists() else None


def notebook_text(path: Path) -> str:
    """Every text output of a notebook (streams and plain-text results), one string."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    parts: list[str] = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain") or ""
            parts.append("".join(text) if isinstance(text, list) else str(text))
    return "\n".join(parts)


def parse_sources(text: str) -> ChapterSources:
    """What a chapter's printed output says about its profile, data and runs."""
    found = ChapterSources()
    profile = _PROFILE.search(text)
    found.profile = profile.group(1) if profile else None
    for name, split, n, _size, source in _DATA_LINE.findall(text):
        old = found.loaded.get((name, split), (0, source))
        found.loaded[(name, split)] = (max(int(n), old[0]), source)
    found.declared = dict(_DECLARED.findall(text))
    found.stand_ins = set(_STAND_IN.findall(text))
    found.run_ids = set(_RUN_ID.findall(text))
    return found


def build_started() -> float | None:
    """When the process running this kernel's parent (the book build) started, in epoch seconds; ``None`` if unknown."""
    try:
        fields = Path(f"/proc/{os.getppid()}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def verdict(sources: dict[str, str], profile: str | None) -> str:
    """One word for a chapter's numbers: ``results``, ``not results (smoke)``, ``not results (synthetic)``, ..."""
    if not sources:
        return "no dataset"
    if "synthetic" in sources.values():
        return "not results (synthetic data)"
    if profile == "smoke":
        return "not results (smoke profile)"
    return "results"


def _row(chapter: str, build: Path | None, since: float | None, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    path = executed_notebook(chapter, build)
    fresh = path is not None and (since is None or path.stat().st_mtime >= since - 1)
    found = parse_sources(notebook_text(path)) if fresh else ChapterSources()
    sources = found.sources()
    mine = [runs[r] for r in sorted(found.run_ids) if r in runs]
    for record in mine:  # a training run's record names its data even when nothing was printed
        data = record.get("data", {}).get("train", {})
        if data.get("name") and data.get("source"):
            sources.setdefault(data["name"], data["source"])
    profile = found.profile or next((r.get("profile", {}).get("name") for r in mine), None)
    return {
        "chapter": chapter,
        "executed": "yes" if fresh else ("earlier build" if path else "no"),
        "profile": profile or "",
        "data": ", ".join(f"{name}: {SOURCE_WORDS.get(src, src)}" for name, src in sorted(sources.items())),
        "images": found.images
        or sum(int(r.get("data", {}).get(s, {}).get("n") or 0) for r in mine for s in ("train", "valid", "test")),
        "runs": len(found.run_ids),
        "numbers are": verdict(sources, profile) if fresh else "",
        "executed at": time.strftime("%H:%M:%S", time.localtime(path.stat().st_mtime)) if path else "",
    }


def gathering_pages(book_config: Path | None = None) -> list[str]:
    """The pages the book reads after every chapter (``medvit_gather_last`` in ``_config.yml``)."""
    import yaml

    book_config = book_config or config.repo_root() / "_config.yml"
    if not book_config.is_file():
        return []
    cfg = yaml.safe_load(book_config.read_text(encoding="utf-8")) or {}
    return list((cfg.get("sphinx") or {}).get("config", {}).get("medvit_gather_last") or [])


def sources_table(
    toc: Path | None = None, build: Path | None = None, runs_root: Path | None = None, since: float | None = -1.0
) -> Any:
    """One row per chapter of ``_toc.yml``: executed in this build?, profile, data and sources, images, runs.

    The pages that gather the build (:func:`gathering_pages`, read from the ``_config.yml`` beside
    ``toc``) run after the chapters and say so instead.

    Args:
        toc, build, runs_root: ``_toc.yml``, the build folder and the runs folder (defaults: the checkout's).
        since: notebooks written before this time (epoch seconds) are from an earlier build;
            ``-1`` (default): :func:`build_started`; ``None``: accept every executed notebook.
    """
    import pandas as pd

    from .runs import load_runs

    toc = toc or config.repo_root() / "_toc.yml"
    since = build_started() if since == -1.0 else since
    runs = {r["run_id"]: r for r in load_runs(runs_root)}
    gathering = set(gathering_pages(toc.parent / "_config.yml"))
    rows = [
        {"chapter": chapter, "executed": "gathers this build (runs after the chapters)"}
        if chapter in gathering
        else _row(chapter, build, since, runs)
        for chapter in toc_chapters(toc)
    ]
    return pd.DataFrame(rows).set_index("chapter").fillna("")
