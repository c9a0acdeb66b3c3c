"""The book online: Pages URL, README badges, Binder and Colab from _config.yml, the link check, failed builds."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

from helpers import chapter, site
from helpers.__main__ import main

ROOT = Path(__file__).resolve().parents[1]

# What `jupyter-book build` printed for a chapter whose claim failed (trimmed; colour codes kept).
FAILED_LOG = """\
\x1b[01mreading sources... \x1b[39;49;00m[ 50%] \x1b[35mclaim\x1b[39;49;00m
{root}/book/claim.ipynb: Executing notebook using local CWD [mystnb]

\x1b[91mException occurred:\x1b[39;49;00m
myst_nb.core.execute.base.ExecutionError: {root}/book/claim.ipynb
Traceback (most recent call last):
    raise CellExecutionError.from_cell_and_msg(cell, exec_reply_content)
nbclient.exceptions.CellExecutionError: An error occurred while executing the following cell:
------------------
acc = 0.5
assert acc > 0.9, f'accuracy {{acc}} is not above the 0.9 the thesis reports'
------------------


\x1b[31m---------------------------------------------------------------------------\x1b[39m
\x1b[31mAssertionError\x1b[39m                            Traceback (most recent call last)
\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[1]\x1b[39m\x1b[32m, line 2\x1b[39m
\x1b[32m      1\x1b[39m acc = \x1b[32m0.5\x1b[39m
\x1b[32m----> \x1b[39m\x1b[32m2\x1b[39m \x1b[38;5;28;01massert\x1b[39;00m acc > \x1b[32m0.9\x1b[39m, \
\x1b[33mf'accuracy {{acc}} is not above the 0.9 the thesis reports'\x1b[39m

\x1b[31mAssertionError\x1b[39m: accuracy 0.5 is not above the 0.9 the thesis reports


The above exception was the direct cause of the following exception:

myst_nb.core.execute.base.ExecutionError: {root}/book/claim.ipynb
There was an error in building your book. Look above for the cause.
"""


def test_pages_url_follows_the_repository_url():
    assert site.pages_url("https://github.com/Medvit-Book/medvit-book") == "https://medvit-book.github.io/medvit-book/"
    assert site.pages_url("https://github.com/a/b.git/") == "https://a.github.io/b/"
    assert site.pages_url("https://github.com/Someone/someone.github.io") == "https://someone.github.io/"
    owner, repo = chapter.repository_url().split("/")[-2:]
    assert site.pages_url() == f"https://{owner.lower()}.github.io/{repo}/"
    for bad in ("https://gitlab.com/a/b", "https://github.com/a", "https://github.com/a/b/tree/main"):
        with pytest.raises(ValueError, match="not a GitHub repository URL"):
            site.pages_url(bad)


def test_repository_url_has_one_home(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("repository:\n  url: https://github.com/x/y/\n")
    assert chapter.repository_url(cfg) == "https://github.com/x/y"
    cfg.write_text("title: no repository\n")
    with pytest.raises(ValueError, match="no repository.url"):
        chapter.repository_url(cfg)
    with pytest.raises(FileNotFoundError, match="_config.yml"):
        chapter.repository_url(tmp_path / "missing" / "_config.yml")
    homepage = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]
    assert homepage == chapter.repository_url(), "pyproject's Homepage must be _config.yml's repository.url"


def test_readme_shows_the_badges_and_where_the_book_is():
    readme = (ROOT / "README.md").read_text()
    workflows = sorted(p.name for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows == ["book.yml", "test.yml"]
    for name in workflows:
        assert site.workflow_badge(name) in readme, f"README lacks the badge of {name}"
    assert site.pages_url() in readme
    assert "make publish" in readme and "gh-pages" in readme and "GitHub Actions" in readme


def test_binder_builds_from_the_root_environment():
    """repo2docker reads a binder/ or .binder/ folder or a Dockerfile before environment.yml: none may exist."""
    assert (ROOT / "environment.yml").is_file()
    assert not [p for p in ("binder", ".binder", "Dockerfile") if (ROOT / p).exists()]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert any(str(d).startswith("python=") for d in env["dependencies"])
    pip = [p for d in env["dependencies"] if isinstance(d, dict) for p in d.get("pip", [])]
    assert "-e ." in pip, "Binder must install the book's own package"
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["launch_buttons"]["binderhub_url"] and cfg["launch_buttons"]["colab_url"]
    assert cfg["repository"]["branch"] and cfg["repository"]["url"].rstrip("/") == chapter.repository_url()
    assert f"git+{chapter.repository_url()}.git" in chapter.colab_install_source()


def test_linkcheck_config_turns_execution_off_and_keeps_the_rest(tmp_path):
    dest = site.write_unexecuted_config(tmp_path / "lc" / "_config.yml")
    original = yaml.safe_load((ROOT / "_config.yml").read_text())
    written = yaml.safe_load(dest.read_text())
    assert written["execute"]["execute_notebooks"] == "off"
    written["execute"]["execute_notebooks"] = original["execute"]["execute_notebooks"]
    assert written == original
    ignore = original["sphinx"]["config"]["linkcheck_ignore"]
    assert any(re.match(pattern, "http://127.0.0.1:8866/") for pattern in ignore), "the app's local address"
    assert not any(re.match(pattern, "https://github.com/huggingface/pytorch-image-models") for pattern in ignore)
    with pytest.raises(FileNotFoundError, match="no book configuration"):
        site.write_unexecuted_config(tmp_path / "x.yml", source=tmp_path / "missing.yml")


def test_linkcheck_says_clearly_that_it_needs_the_internet(monkeypatch):
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    with pytest.raises(site.OfflineError, match="MEDVIT_OFFLINE.*make linkcheck"):
        site.require_online()
    monkeypatch.delenv("MEDVIT_OFFLINE")

    def unreachable(address, timeout):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(site.socket, "create_connection", unreachable)
    with pytest.raises(site.OfflineError, match="github.com cannot be reached.*make linkcheck"):
        site.require_online()
    assert main(["site", "online"]) == 1


def test_a_failed_claim_is_named():
    failures = site.build_failures(FAILED_LOG.format(root=ROOT))
    assert failures == [
        site.BuildFailure(
            notebook="book/claim.ipynb",
            statement="assert acc > 0.9, f'accuracy {acc} is not above the 0.9 the thesis reports'",
            error="AssertionError: accuracy 0.5 is not above the 0.9 the thesis reports",
        )
    ]
    assert failures[0].is_claim
    plain = site.report(failures, github=False)
    assert plain.startswith("A claim failed in book/claim.ipynb at `assert acc > 0.9")
    annotation = site.report(failures, github=True)
    assert annotation.startswith("::error file=book/claim.ipynb,title=A claim failed in book/claim.ipynb::")
    assert "AssertionError: accuracy 0.5" in annotation and "\n" not in annotation


def test_other_failures_are_named_too():
    crash = FAILED_LOG.replace("AssertionError", "ZeroDivisionError").format(root=ROOT)
    (failure,) = site.build_failures(crash)
    assert not failure.is_claim and failure.error.startswith("ZeroDivisionError: ")
    assert site.report([failure], github=False).startswith("A cell failed in book/claim.ipynb")
    timeout = (
        "/x/book/slow.ipynb: Executing notebook using local CWD [mystnb]\n"
        "nbclient.exceptions.CellTimeoutError: A cell timed out while it was being executed, after 1800 seconds.\n"
        "myst_nb.core.execute.base.ExecutionError: /x/book/slow.ipynb\n"
    )
    (failure,) = site.build_failures(timeout)
    assert failure.notebook == "/x/book/slow.ipynb" and "after 1800 seconds" in failure.error
    assert site.build_failures("build succeeded.\n") == []
    assert "outside the chapters' cells" in site.report([], github=False)


def test_cli_prints_the_url_and_the_failures(tmp_path, capsys):
    assert main(["site", "url"]) == 0
    assert capsys.readouterr().out.strip() == site.pages_url()
    log = tmp_path / "book.log"
    log.write_text(FAILED_LOG.format(root=ROOT))
    assert main(["site", "failures", str(log)]) == 0
    assert "A claim failed in book/claim.ipynb" in capsys.readouterr().out


@pytest.mark.slow
def test_a_book_with_a_failing_claim_fails_to_build_and_names_it(tmp_path):
    """A one-chapter book configured as ours: the build fails, and its log names the claim (about 10 s)."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = {"extra_extensions": cfg["sphinx"]["extra_extensions"], "config": cfg["sphinx"]["config"]}
    book = {"title": "t", "execute": cfg["execute"], "sphinx": sphinx}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(book))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n- file: claim\n")
    (tmp_path / "index.md").write_text("# A book\n")
    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None, "outputs": []}
    cell["source"] = "auroc = 0.61\nassert auroc > 0.8, f'AUROC {auroc:.2f} is not above 0.80'"
    nb = {"cells": [cell], "metadata": {"kernelspec": chapter.KERNELSPEC}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "claim.ipynb").write_text(json.dumps(nb))
    jb = Path(sys.executable).with_name("jupyter-book")
    done = subprocess.run([str(jb), "build", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    (failure,) = site.build_failures(done.stdout + done.stderr)
    assert failure.notebook.endswith("claim.ipynb") and failure.is_claim
    assert failure.error == "AssertionError: AUROC 0.61 is not above 0.80"
    assert failure.statement.startswith("assert auroc > 0.8")
