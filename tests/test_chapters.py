"""Every chapter follows the template and sits in the table of contents; papermill records parameters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import chapter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p for p in (ROOT / "book").rglob("*.ipynb") if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts
)


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_follows_the_template(nb):
    assert chapter.check_notebook(nb) == []


def test_toc_and_notebooks_agree():
    toc = {str(Path(f).with_suffix("")) for f in _toc_files()}
    nbs = {str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS}
    missing_files = sorted(t for t in toc if not any((ROOT / (t + ext)).exists() for ext in (".ipynb", ".md")))
    assert missing_files == [], "entries in _toc.yml without a file"
    assert sorted(nbs - toc) == [], "notebooks that are not in _toc.yml"


def test_install_cell_uses_the_configured_repository():
    url = chapter.repository_url()
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert url == cfg["repository"]["url"].rstrip("/")
    assert f"git+{url}.git" in chapter.colab_install_source()


def test_check_notebook_catches_a_broken_template(tmp_path):
    path = chapter.new_chapter(tmp_path / "x.ipynb", "X", params={"EPOCHS": 3}, datasets=["pbc"])
    assert chapter.check_notebook(path) == []
    nb = json.loads(path.read_text())
    nb["cells"][2]["metadata"]["tags"] = []  # parameters tag lost
    nb["cells"][1]["source"] = "print('hi')"  # install cell replaced
    path.write_text(json.dumps(nb))
    problems = chapter.check_notebook(path)
    assert any("Colab" in p for p in problems) and any("parameters" in p for p in problems)
    with pytest.raises(FileExistsError):
        chapter.new_chapter(path, "again")


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not on PATH")
def test_a_new_chapter_is_lint_clean(tmp_path):
    """The template cells are written as ``ruff format`` lays them out, so ``make lint`` accepts a new chapter."""
    path = chapter.new_chapter(tmp_path / "x.ipynb", "X", params={"EPOCHS": 3, "MODEL": "resnet18"}, datasets=["pbc"])
    for command in (["format", "--check"], ["check"]):
        ruff = ["ruff", *command, "--config", str(ROOT / "pyproject.toml"), str(path)]
        done = subprocess.run(ruff, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    # the check is blind to layout only: a reformatted install cell passes, a changed one does not
    nb = json.loads(path.read_text())
    nb["cells"][1]["source"] = chapter.colab_install_source().replace("\n\n", "\n")
    path.write_text(json.dumps(nb))
    assert chapter.check_notebook(path) == []
    nb["cells"][1]["source"] = chapter.colab_install_source().replace("-q", "-U")
    path.write_text(json.dumps(nb))
    assert any("Colab" in p for p in chapter.check_notebook(path))


def test_parameters_cell_lists_knobs_after_profile():
    src = chapter.parameters_source({"EPOCHS": 3, "MODEL": "resnet18"})
    lines = [l for l in src.splitlines() if not l.startswith("#")]
    assert lines == ["PROFILE = None", "EPOCHS = 3", 'MODEL = "resnet18"']


@pytest.mark.slow
def test_papermill_records_parameters(tmp_path, tmp_workdirs):
    out = tmp_path / "intro_out.ipynb"
    env = dict(os.environ, MEDVIT_PROFILE="quick")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(ROOT / "book" / "intro.ipynb"),
            str(out),
            "-p",
            "PROFILE",
            "smoke",
            "--cwd",
            str(ROOT / "book"),
            "-k",
            "python3",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    nb = json.loads(out.read_text())
    assert nb["metadata"]["papermill"]["parameters"] == {"PROFILE": "smoke"}
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and 'PROFILE = "smoke"' in "".join(injected[0]["source"])
    text = json.dumps(nb["cells"])
    assert "profile     : smoke" in text, "the run-info cell must report the injected profile"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_local_bibliography(nb):
    """Citations are global in Sphinx: one bibliography (book/references.md), none per chapter."""
    cells = json.loads(nb.read_text())["cells"]
    assert not any("{bibliography}" in "".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
