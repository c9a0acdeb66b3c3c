"""The book's data code on a root unlike the shared one (helpers.perturbed): other valid copies of the datasets.

The perturbed root holds the same real files, linked, less CMU subject 02, the stray PBC file,
``nih_64px``, half the mini-MIAS films and one MedMNIST file. Every reader must take what is there and say
what is not; the datasets chapter must run on it, and a page that cannot run is built showing why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import perturbed
from helpers.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def perturbed_data(real_data, tmp_path, monkeypatch) -> Path:
    """A perturbed root made from the shared samples, read offline with fresh caches."""
    made = perturbed.perturbed_root(tmp_path / "root", real_data)
    monkeypatch.setenv("MEDVIT_DATA", str(made.root))
    monkeypatch.setenv("MEDVIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    return made.root


def test_the_perturbed_root_links_what_it_keeps_and_leaves_out_the_rest(real_data, tmp_path, capsys):
    made = perturbed.perturbed_root(tmp_path / "root", real_data)
    root = made.root
    assert [p.name for p in (root / "cmu_mocap" / "subjects").iterdir()] == ["01"]
    assert not list(root.glob("pbc/**/.DS_*")) and len(list(root.glob("pbc/*/*/*.jpg"))) == 400
    assert not (root / "nih_64px").exists() and (root / "nih" / "images").is_dir()
    films = sorted(p.name for p in (root / "mias" / "all-mias").glob("*.pgm"))
    assert films[0] == "mdb001.pgm" and films[-1] == "mdb160.pgm" and len(films) == 160
    assert (root / "mias" / "all-mias" / "Info.txt").read_text() == (real_data / "mias/all-mias/Info.txt").read_text()
    assert not (root / "medmnist" / perturbed.MEDMNIST_DROPPED).exists() and (root / "medmnist").is_dir()
    files = [p for p in root.rglob("*") if not p.is_dir() and p.name != perturbed.MARKER]
    assert files and all(p.is_symlink() or any(q.is_symlink() for q in p.parents) for p in files), "links, not copies"
    assert "02 left out" in made.describe() and ".DS_169665.jpg" in made.describe()
    # made again in place; a folder that is not a perturbed root is never replaced
    assert main(["site", "perturbed-root", str(root), str(real_data)]) == 0
    assert "nih_64px: left out" in capsys.readouterr().out
    other = tmp_path / "mine"
    (other / "keep.txt").parent.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a perturbed root"):
        perturbed.perturbed_root(other, real_data)
    with pytest.raises(FileNotFoundError, match="no data root"):
        perturbed.perturbed_root(tmp_path / "new", tmp_path / "absent")


def test_the_registry_and_readers_take_what_the_root_has(perturbed_data, capsys):
    from helpers.configs import lungs_dataset
    from helpers.data import describe_source, load_dataset
    from helpers.data.registry import load_catalog

    pbc, source, _ = load_catalog("pbc")
    assert source == "real" and len(pbc) == 400 and pbc.report["skipped"] == []
    train = load_dataset("pbc", "train", profile="smoke", seed=0, verbose=False)
    assert train.source == "real" and len(train) > 0

    mias, source, _ = load_catalog("mias")
    assert source == "real" and len(mias) == perturbed.MIAS_FILMS
    assert len(mias.report["skipped"]) == 322 - perturbed.MIAS_FILMS  # every absent film listed in Info.txt
    lesions = load_dataset("mias_lesions", "train", profile="smoke", seed=0, verbose=False)
    assert lesions.source == "real" and set(lesions.class_counts()) == {"benign", "malignant"}

    name, source, why = lungs_dataset("smoke", download=False)
    assert (name, source) == ("nih", "real"), why  # nih_64px is absent: the 1024 px sample
    assert "$MEDVIT_DATA/nih" in why and str(perturbed_data) not in why  # a linked dataset, shown under its root
    assert describe_source("nih").startswith("real")

    capsys.readouterr()
    pneumonia = load_dataset("pneumoniamnist", "train", profile="smoke", seed=0)
    assert pneumonia.source == "synthetic" and "MEDVIT_OFFLINE" in capsys.readouterr().out
    assert load_dataset("breastmnist", "train", profile="smoke", seed=0, verbose=False).source == "real"


def test_the_motion_reader_names_an_absent_subject(perturbed_data):
    from helpers.pose.mocap import motion_paths

    cmu = perturbed_data / "cmu_mocap"
    assert [a.name for a, _ in motion_paths(cmu, "01", [1, 2])] == ["01.asf", "01.asf"]
    with pytest.raises(FileNotFoundError, match="02"):
        motion_paths(cmu, "02", [1])


@pytest.mark.slow
def test_the_datasets_chapter_runs_on_the_perturbed_root(perturbed_data, real_data, tmp_path):
    """The datasets chapter at smoke on the perturbed root (about 35 s on 2 shared cores)."""
    out = tmp_path / "datasets.ipynb"
    env = {**os.environ, "MEDVIT_PROFILE": "smoke", "MEDVIT_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
    code = (
        "import papermill, sys; papermill.execute_notebook(sys.argv[1], sys.argv[2], cwd=sys.argv[3], "
        "kernel_name='python3', progress_bar=False)"
    )
    chapter = ROOT / "book" / "data" / "datasets.ipynb"
    done = subprocess.run(
        [sys.executable, "-c", code, str(chapter), str(out), str(chapter.parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    text = out.read_text()
    outputs = json.dumps([c.get("outputs", []) for c in json.loads(text)["cells"]])
    assert str(perturbed_data) not in outputs and str(real_data) not in outputs, "a machine's path on the page"
    assert "no stray file in this copy" in text and "PBC: 400 images" in text
    assert f"mini-MIAS: {perturbed.MIAS_FILMS} films present of 322 listed" in text
    not_real = re.search(r"NOT REAL DATA in this run for: ([a-z_, ]+)", text)
    assert not_real and "pneumoniamnist" in not_real.group(1).split(", ")  # the missing file is said, not hidden


@pytest.mark.slow
def test_on_the_perturbed_root_every_page_is_built_and_one_that_cannot_run_says_why(
    perturbed_data, tiny_book, tmp_path
):
    """The book's build on the perturbed root: a page of data sources runs and says what is not real; a page
    that needs CMU subject 02 is built with its error and named (15-35 s on 2 shared cores)."""
    sources = (
        "from helpers.data import describe_source\n"
        "for name in ('pbc', 'nih', 'nih_64px', 'mias', 'pneumoniamnist', 'breastmnist'):\n"
        "    print(name, '->', describe_source(name))"
    )
    motion = "from helpers import config\nfrom helpers.pose.acclaim import read_asf\n"  # the chapter's reader, no torch
    motion += "read_asf(config.data_root() / 'cmu_mocap' / 'subjects' / '02' / '02.asf')"
    book = tiny_book(tmp_path / "book", {"a_sources": [sources], "b_subject": ["import helpers", motion]})
    command = [sys.executable, "-m", "helpers", "site", "build", str(book), str(tmp_path / "book.log")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDVIT_BUILD": "perturbed"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:]
    html = book / "_build" / "html"
    shown = (html / "a_sources.html").read_text()
    assert "pbc -&gt; real ($MEDVIT_DATA/pbc)" in shown and "nih_64px -&gt; synthetic stand-in" in shown
    assert "pneumoniamnist -&gt; synthetic stand-in (no $MEDVIT_DATA/medmnist/pneumoniamnist.npz" in shown
    failed = (html / "b_subject.html").read_text()
    assert "This page did not run to the end" in failed and "no .asf skeleton at" in failed
    named = done.stdout[done.stdout.rindex("did not run to the end") :]
    assert "A cell failed in b_subject.ipynb, cell 3" in named and "FileNotFoundError: no .asf skeleton at" in named
    assert "a_sources" not in named
