"""The book online: Pages URL, README badges, Binder and Colab from _config.yml, the link check, failed builds."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
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
    # unexecuted pages hold no glued values: their empty {glue:text} roles are not errors there
    suppressed = written["sphinx"]["config"]["suppress_warnings"]
    assert suppressed == [*original["sphinx"]["config"]["suppress_warnings"], "mystnb.glue"]
    written["sphinx"]["config"]["suppress_warnings"] = original["sphinx"]["config"]["suppress_warnings"]
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
def test_a_failing_cell_costs_no_other_page_and_make_book_names_it(tmp_path, tiny_book):
    """``make book`` itself on a three-page book whose middle page fails (25-50 s on 2 cores at load 3-10), its
    pages executed two at a time (``BOOK_JOBS``, :mod:`helpers.bookexec`).

    Every page is executed and built, the failed page shows its error and a warning, the page read
    after it still runs, and make ends non-zero naming the page, the cell and the error, last. Run
    again, it executes the failed page (not the others) and fails again.
    """
    claim = "auroc = 0.61\nassert auroc > 0.8, f'AUROC {auroc:.2f} < 0.80'"
    book = tiny_book(
        tmp_path / "book",
        {
            "a_fine": ["print('first page ' + 'ran')"],
            "b_fails": ["x = 1", claim, "print('not reached')"],
            "c_after": ["import math\nprint('third page', math.factorial(5))"],
        },
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDVIT_RUNS": str(tmp_path / "runs")}
    venv = Path(sys.executable).parent.parent  # the Makefile's VENV; -o install: nothing is installed
    command = ["make", "--no-print-directory", "-o", "install", "-f", str(ROOT / "Makefile"), "book"]
    command += [f"VENV={venv}", "PROFILE=smoke"]
    done = subprocess.run(command, cwd=book, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode != 0, done.stdout[-3000:] + done.stderr[-3000:]
    html = book / "_build" / "html"
    pages = {name: (html / f"{name}.html").read_text() for name in ("index", "a_fine", "b_fails", "c_after")}
    assert "first page ran" in pages["a_fine"] and "third page 120" in pages["c_after"]
    assert "AUROC 0.61 &lt; 0.80" in pages["b_fails"] and "not reached" in pages["b_fails"]
    assert "This page did not run to the end" in pages["b_fails"] and "cell 3 raised AssertionError" in pages["b_fails"]
    assert "did not run to the end" not in pages["a_fine"] + pages["c_after"]
    last = done.stdout[done.stdout.rindex("A claim failed") :]
    assert last.startswith("A claim failed in b_fails.ipynb, cell 3 at `assert auroc > 0.8")
    assert "AssertionError: AUROC 0.61 < 0.80" in last and "a_fine" not in last
    assert "The book (smoke profile) is at" in done.stdout
    log = (book / "_build" / "book.log").read_text()
    # make book executes the pages two at a time first (helpers.bookexec); Sphinx takes the two that ran to the
    # end from the cache and executes the failed one again as it reads it, to show the error under its cell
    assert "[book] executing 3 pages, 2 at a time" in log and "FAILED (Sphinx runs it again" in log
    assert log.count("Using cached notebook") == 2 and log.count("Executing notebook using") == 1
    (recorded,) = (tmp_path / "runs" / "builds").glob("book-*/failures.json")
    assert list(json.loads(recorded.read_text())) == ["b_fails"]
    time.sleep(1)  # the next build has another id (to the second)
    again = subprocess.run(command, cwd=book, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode != 0, "a failure carried over from the last build passed unseen"
    assert (book / "_build" / "book.log").read_text().count("Executing notebook using") == 1  # the failed page only
    assert "A claim failed in b_fails.ipynb, cell 3" in again.stdout[again.stdout.rindex("did not run to the end") :]


def test_failed_cells_are_found_in_an_executed_notebook():
    from helpers.bookbuild import failed_cell

    error = {
        "output_type": "error",
        "ename": "KeyError",
        "evalue": "'02'",
        "traceback": ["\x1b[32m----> 3\x1b[39m x = d['02']"],
    }
    expected = {"output_type": "error", "ename": "ValueError", "evalue": "meant", "traceback": []}
    cells = [
        {"cell_type": "markdown", "source": "# t"},
        {"cell_type": "code", "metadata": {"tags": ["raises-exception"]}, "outputs": [expected]},
        {"cell_type": "code", "metadata": {}, "outputs": [{"output_type": "stream", "text": "ok"}]},
        {"cell_type": "code", "metadata": {}, "outputs": [error]},
    ]
    assert failed_cell({"cells": cells}) == {"cell": 4, "statement": "x = d['02']", "error": "KeyError: '02'"}
    assert failed_cell({"cells": cells[:3]}) is None
    plain = site.report([site.BuildFailure("book/x.ipynb", "x = d['02']", "KeyError: '02'", cell=4)], github=False)
    assert plain.startswith("A cell failed in book/x.ipynb, cell 4 at `x = d['02']`")


def test_recorded_failures_are_read_back_and_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path))
    monkeypatch.setenv("MEDVIT_BUILD", "b1")
    assert site.recorded_failures() == [] and main(["site", "failures"]) == 0
    folder = tmp_path / "builds" / "b1"
    folder.mkdir(parents=True)
    entry = {
        "notebook": "book/p.ipynb",
        "cell": 7,
        "statement": "1 / 0",
        "error": "ZeroDivisionError: division by zero",
    }
    (folder / "failures.json").write_text(json.dumps({"book/p": entry}))
    assert site.recorded_failures() == [site.BuildFailure("book/p.ipynb", "1 / 0", entry["error"], 7)]
    capsys.readouterr()
    assert main(["site", "failures"]) == 1
    assert "A cell failed in book/p.ipynb, cell 7 at `1 / 0`" in capsys.readouterr().out


class _FakeBuild:
    """Stands in for the jupyter-book process: prints ``lines``, then exits ``code`` or is interrupted."""

    def __init__(self, lines: list[str], code: int | None):
        self.lines, self.code = lines, code

    def __call__(self, command, **kwargs):
        assert command[1:3] == ["build", "src"]
        return self

    @property
    def stdout(self):
        yield from self.lines
        if self.code is None:
            raise KeyboardInterrupt

    def wait(self):
        return 0 if self.code is None else self.code


def test_an_interrupted_or_broken_build_names_what_it_can_and_keeps_the_log(tmp_path, monkeypatch, capsys):
    import subprocess as sp

    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MEDVIT_BUILD", "b2")
    folder = tmp_path / "runs" / "builds" / "b2"
    folder.mkdir(parents=True)
    entry = {"notebook": "book/p.ipynb", "cell": 4, "statement": "", "error": "KeyError: '02'"}
    (folder / "failures.json").write_text(json.dumps({"book/p": entry}))
    log = tmp_path / "book.log"
    monkeypatch.setattr(sp, "Popen", _FakeBuild(["reading sources... p\n"], None))
    assert site.build_book("src", log) == 130
    out = capsys.readouterr().out
    assert "interrupted; nothing it built is removed" in out and "A cell failed in book/p.ipynb, cell 4" in out
    assert log.read_text() == "reading sources... p\n"
    (folder / "failures.json").unlink()
    monkeypatch.setattr(sp, "Popen", _FakeBuild(FAILED_LOG.format(root=ROOT).splitlines(keepends=True), 2))
    assert site.build_book("src", log) == 1
    out = capsys.readouterr().out
    assert "The book: 1 page(s) did not run to the end." in out and "A claim failed in book/claim.ipynb" in out


def test_a_build_in_another_setting_executes_every_page_again(tmp_path, monkeypatch):
    """The execution context is a Sphinx setting that rebuilds the environment: other data or profile, all pages."""
    from helpers import bookbuild

    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "a"))
    monkeypatch.setenv("MEDVIT_PROFILE", "smoke")
    monkeypatch.delenv("MEDVIT_OFFLINE", raising=False)
    first = bookbuild.execution_context()
    assert "profile=smoke" in first and str(tmp_path / "a") in first and bookbuild.execution_context() == first
    changed = []
    for var, value in (("MEDVIT_DATA", str(tmp_path / "b")), ("MEDVIT_PROFILE", "quick"), ("MEDVIT_OFFLINE", "1")):
        monkeypatch.setenv(var, value)
        changed.append(bookbuild.execution_context())
    assert len({first, *changed}) == 4

    class App:  # records what the extension registers
        values: dict = {}

        def add_config_value(self, name, default, rebuild):
            self.values[name] = rebuild

        def connect(self, event, handler):
            pass

    app = App()
    bookbuild.setup(app)
    assert app.values["medvit_execution_context"] == "env"  # a change re-reads every page
    settings = type("Config", (), {"mathjax_path": "mathjax/tex-chtml.js"})()
    bookbuild._config_inited(app, settings)
    assert settings.medvit_execution_context == bookbuild.execution_context()


def test_pages_run_longest_first_gatherers_last_and_jobs_must_be_a_count(monkeypatch):
    from helpers import bookexec

    docs = ["intro", "a/short", "a/long", "results", "b/longer"]
    assert bookexec.execution_order(docs, ["b/longer", "a/long", "not/in/book"], ["results"]) == [
        "b/longer",
        "a/long",
        "intro",
        "a/short",
    ]
    monkeypatch.delenv(bookexec.JOBS_VARIABLE, raising=False)
    assert bookexec.jobs() == 1  # unset: one page at a time, as Sphinx reads them
    monkeypatch.setenv(bookexec.JOBS_VARIABLE, "2")
    assert bookexec.jobs() == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(bookexec.JOBS_VARIABLE, bad)
        with pytest.raises(ValueError, match="MEDVIT_BOOK_JOBS must be a whole number"):
            bookexec.jobs()


def test_a_pages_time_is_its_execution_even_when_taken_from_the_cache():
    from types import SimpleNamespace

    from helpers import bookexec

    env = SimpleNamespace(nb_metadata={"cached": {"exec_data": {"runtime": 412.5, "method": "cache"}}, "md": {}})
    assert bookexec.page_seconds(env, "cached", read_seconds=0.4) == 412.5  # the run that filled the cache
    assert bookexec.page_seconds(env, "md", read_seconds=0.4) == 0.4  # a page with no execution: its reading
