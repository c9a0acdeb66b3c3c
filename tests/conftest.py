"""Shared fixtures: where the real data samples are, and a clean environment per test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path | None:
    """``$MEDVIT_DATA`` if set and present, else ``../shared/data`` beside the repo, else None."""
    env = os.environ.get("MEDVIT_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


@pytest.fixture
def real_data(monkeypatch) -> Path:
    """The shared real-data samples; the test skips (with the reason) when they are absent."""
    path = shared_data()
    if path is None:
        pytest.skip("real data samples not found: set MEDVIT_DATA or put ../shared/data beside the repo")
    monkeypatch.setenv("MEDVIT_DATA", str(path))
    return path


@pytest.fixture
def tmp_workdirs(tmp_path, monkeypatch) -> Path:
    """Send caches and runs to a temporary folder so tests never touch the user's."""
    monkeypatch.setenv("MEDVIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture
def one_thread():
    """Run the test on one torch thread (tiny models are fastest so), then restore the setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_tiny_book(folder: Path, pages: dict[str, list[str]]) -> Path:
    """A book at ``folder`` configured as ours (execution, extensions, settings): an index and one
    notebook per entry of ``pages`` (its name -> the sources of its code cells, after a title cell)."""
    from helpers.chapter import KERNELSPEC

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    settings = {k: v for k, v in cfg["sphinx"]["config"].items() if k != "medvit_gather_last"}
    book = {"title": "t", "execute": cfg["execute"], "sphinx": {**cfg["sphinx"], "config": settings}}
    folder.mkdir(parents=True)
    (folder / "_config.yml").write_text(yaml.safe_dump(book))
    toc = "format: jb-book\nroot: index\nchapters:\n" + "".join(f"- file: {name}\n" for name in pages)
    (folder / "_toc.yml").write_text(toc)
    (folder / "index.md").write_text("# A book\n")
    for name, sources in pages.items():
        cells = [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# A page"}]
        cells += [
            {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
            for i, src in enumerate(sources)
        ]
        nb = {"cells": cells, "metadata": {"kernelspec": KERNELSPEC}, "nbformat": 4, "nbformat_minor": 5}
        (folder / f"{name}.ipynb").write_text(json.dumps(nb))
    return folder


@pytest.fixture
def tiny_book():
    """:func:`make_tiny_book`: a small book that the book's own machinery (``make book``) can build."""
    return make_tiny_book
