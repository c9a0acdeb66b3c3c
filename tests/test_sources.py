"""The data-sources summary: chapters' printed lines and run records -> one row per chapter."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from helpers import sources

RUN_ID = "20261130T141500Z-pbc-resnet10t-quick-a1b2c3"


def _notebook(path: Path, *texts: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [{"cell_type": "code", "source": "", "outputs": [{"output_type": "stream", "text": t}]} for t in texts]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _book(tmp_path: Path) -> tuple[Path, Path, Path]:
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n"
        + "".join(f"      - file: book/{n}\n" for n in ("blood", "synthetic", "theory", "old", "references"))
    )
    for name in ("intro", "blood", "synthetic", "theory", "old"):
        _notebook(tmp_path / "book" / f"{name}.ipynb")
    (tmp_path / "book" / "references.md").write_text("# References\n")
    build, runs = tmp_path / "_build", tmp_path / "runs"
    ex = build / "jupyter_execute" / "book"
    _notebook(
        ex / "blood.ipynb",
        "profile     : quick — CPU runs\ndata pbc    : real (/data/pbc)\n",
        "[data] pbc/train: 280 images 32px, source=real [pbc: real (/data/pbc)]\n"
        "[data] pbc/valid: 40 images 32px, source=real [pbc: real (/data/pbc)]\n"
        "[data] pbc/test: 80 images 32px, source=real [pbc: real (/data/pbc)]\n",
        f"run {RUN_ID} saved\n",
    )
    _notebook(
        ex / "synthetic.ipynb",
        "profile     : quick — CPU runs\n",
        "[data] SYNTHETIC STAND-IN for 'cbis_ddsm': no folder\n"
        "[data] cbis_ddsm/train: 64 images 64px, source=synthetic [cbis_ddsm: synthetic (/x)]\n",
    )
    _notebook(ex / "theory.ipynb", "profile     : smoke — a check\n")
    _notebook(ex / "old.ipynb", "profile     : quick — CPU runs\n[data] mias/train: 9 images 32px, source=real\n")
    old = time.time() - 3600
    os.utime(ex / "old.ipynb", (old, old))
    (runs / RUN_ID).mkdir(parents=True)
    record = {"run_id": RUN_ID, "created": "x", "profile": {"name": "quick"}, "data": {"train": {"name": "pbc"}}}
    (runs / RUN_ID / "run.json").write_text(json.dumps(record))
    return toc, build, runs


def test_sources_table_reads_this_builds_chapters(tmp_path):
    toc, build, runs = _book(tmp_path)
    table = sources.sources_table(toc, build, runs, since=time.time() - 600)
    assert list(table.index) == ["book/intro", "book/blood", "book/synthetic", "book/theory", "book/old"]
    blood = table.loc["book/blood"]
    assert (blood["executed"], blood["profile"], blood["data"]) == ("yes", "quick", "pbc: real")
    assert blood["images"] == 400 and blood["runs"] == 1 and blood["numbers are"] == "results"
    synth = table.loc["book/synthetic"]
    assert synth["data"] == "cbis_ddsm: synthetic" and synth["numbers are"] == "not results (synthetic data)"
    assert table.loc["book/theory", "numbers are"] == "no dataset"
    assert table.loc["book/old", "executed"] == "earlier build" and table.loc["book/old", "data"] == ""
    assert table.loc["book/intro", "executed"] == "no"
    # the pages that gather the build run after it and say so, rather than "no"
    (tmp_path / "_config.yml").write_text("sphinx:\n  config:\n    medvit_gather_last: [book/old, book/results]\n")
    gathered = sources.sources_table(toc, build, runs, since=time.time() - 600)
    assert (
        gathered.loc["book/old", "executed"].startswith("gathers this build") and gathered.loc["book/old", "data"] == ""
    )
    assert gathered.loc["book/blood", "executed"] == "yes"
    assert sources.gathering_pages(tmp_path / "missing.yml") == []
    (tmp_path / "_config.yml").unlink()
    every = sources.sources_table(toc, build, runs, since=None)
    assert every.loc["book/old", "data"] == "mias: real", "without a build start every executed notebook counts"


def test_parse_sources_smoke_and_declared():
    found = sources.parse_sources("profile     : smoke — x\ndata bloodmnist: download (fetched earlier: /c)\n")
    assert found.profile == "smoke" and found.sources() == {"bloodmnist": "download"} and found.images == 0
    assert sources.verdict(found.sources(), found.profile) == "not results (smoke profile)"


def test_build_started_is_in_the_past():
    started = sources.build_started()
    assert started is None or started <= time.time()
