"""The claims ledger: check compares, records and reports; the build order puts gathering pages last."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import bookbuild, claims


@pytest.fixture
def build(tmp_path, monkeypatch):
    """A fresh runs root and build id; failures recorded (as in a book build) unless a test says otherwise."""
    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MEDVIT_BUILD", "book-test")
    monkeypatch.setenv("MEDVIT_CLAIMS", "record")
    return "book-test"


def test_a_claim_that_holds_is_recorded_and_printed(build, capsys):
    claim = claims.check("accuracy", 0.93, ">=", 0.9, chapter="c1", profile="quick", data_source="real", spread="x")
    assert claim.status == "pass" and claim.passed and claim.build == build
    assert "claim holds: accuracy = 0.93" in capsys.readouterr().out
    (recorded,) = claims.ledger(build)
    assert recorded == claim


def test_a_failed_claim_is_recorded_shown_and_does_not_stop_a_build(build, capsys):
    claim = claims.check("loss", 0.5, "<=", 0.2, chapter="c1", profile="quick", data_source="real")
    assert claim.status == "fail" and not claim.passed
    assert "FAILED" in capsys.readouterr().err
    assert claims.failed(claims.ledger(build)) == [claim]


def test_a_failed_claim_raises_outside_a_build(build, monkeypatch):
    monkeypatch.delenv("MEDVIT_CLAIMS")
    with pytest.raises(AssertionError, match="loss"):
        claims.check("loss", 0.5, "<=", 0.2, chapter="c1", profile="quick", data_source="real")
    assert claims.failed(claims.ledger(build))  # recorded before raising


def test_smoke_records_not_checked_with_a_reason(build):
    claim = claims.check("accuracy", 0.1, ">=", 0.9, chapter="c1", profile="smoke", data_source="real")
    assert claim.status == "not checked" and claim.value == 0.1 and "smoke" in claim.reason
    assert not claims.failed([claim])


def test_a_claim_not_checked_keeps_its_value_and_is_marked_where_it_contradicts_the_bound(build, capsys):
    low = claims.check("floor", 0.38, ">=", 0.5, chapter="m", profile="quick", data_source="d", checked_at=())
    high = claims.check("other", 0.7, ">=", 0.5, chapter="m", profile="smoke", data_source="d")
    odd = claims.check("nan", float("nan"), ">=", 0.5, chapter="m", profile="smoke", data_source="d")
    assert (low.value, low.contradicts, high.contradicts, odd.value, odd.contradicts) == (
        0.38,
        True,
        False,
        None,
        False,
    )
    assert "= 0.38 (bound >= 0.5 - CONTRADICTS the bound" in capsys.readouterr().out
    table = claims.ledger_table(claims.ledger(build)).set_index("claim")
    assert table.loc["floor", "value"] == "0.38" and table.loc["other", "value"] == "0.7"
    assert table.loc["floor", "status"].startswith("not checked, value contradicts the bound")
    assert table.loc["other", "status"].startswith("not checked: ")
    assert not claims.failed(claims.ledger(build))


@pytest.fixture
def expected(monkeypatch):
    """A small list of expected claims in place of the book's."""
    from helpers import expected_claims

    monkeypatch.setattr(
        expected_claims,
        "EXPECTED",
        {
            "c1": (("accuracy", ("quick", "full")), ("test accuracy (chance *)", ("quick",))),
            "c2": (("random start gap", ("quick",), ("smoke", "quick")),),
        },
    )


def test_an_expected_claim_that_was_not_recorded_fails_the_report(build, expected):
    claims.check("accuracy", 0.9, ">=", 0.5, chapter="c1", profile="quick", data_source="d")
    claims.check("test accuracy (chance 0.125)", 0.9, ">=", 0.5, chapter="c1", profile="quick", data_source="d")
    assert claims.missing(claims.ledger(build), "quick") == [("c2", "random start gap")]
    assert claims.missing(claims.ledger(build), "full") == []  # c2 makes its claim only below full
    text, bad, absent = claims.report(build)
    assert not bad and absent == [("c2", "random start gap")]
    assert "3 claims expected at quick" in text and "MISSING c2: random start gap" in text
    assert claims.main(["report", "--fail"]) == 1
    assert claims.main(["report", "--fail", "--profile", "full"]) == 0
    claims.check("random start gap", 0.1, ">", 0.0, chapter="c2", profile="quick", data_source="d")
    assert claims.main(["report", "--fail"]) == 0


def test_a_claim_of_another_chapter_does_not_stand_in_for_an_expected_one(build, expected):
    claims.check("accuracy", 0.9, ">=", 0.5, chapter="c2", profile="quick", data_source="d")
    assert ("c1", "accuracy") in claims.missing(claims.ledger(build), "quick")


def test_the_books_expected_claims_name_chapters_of_the_book_and_real_profiles():
    import yaml

    from helpers import config, expected_claims

    toc = (config.repo_root() / "_toc.yml").read_text()
    files = {line.split("/")[-1].strip() for line in toc.splitlines() if "file:" in line}
    assert yaml.safe_load(toc)  # the table of contents reads
    for chapter, entries in expected_claims.EXPECTED.items():
        assert chapter in files, f"{chapter} is not a page of _toc.yml"
        for entry in entries:
            assert len(entry) in (2, 3) and isinstance(entry[0], str) and entry[0]
            assert set(entry[1]) <= set(expected_claims.ALL) and set(entry[-1]) <= set(expected_claims.ALL)
    names = [(c, e[0]) for c, entries in expected_claims.EXPECTED.items() for e in entries]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("op,value,ok", [(">", 1.0, False), ("<", 0.5, True), ("==", 1.0, True), (">=", 0.99, False)])
def test_every_comparison(build, op, value, ok):
    assert claims.check("x", value, op, 1.0, chapter="c", profile="full", data_source="d").passed is ok


def test_bad_comparisons_and_values_are_refused(build):
    with pytest.raises(ValueError, match="unknown comparison"):
        claims.check("x", 1.0, "=>", 1.0, chapter="c", profile="quick", data_source="d")
    with pytest.raises(ValueError, match="not a finite number"):
        claims.check("x", float("nan"), ">=", 1.0, chapter="c", profile="quick", data_source="d")


def test_a_rerun_replaces_the_claim_in_the_ledger(build):
    claims.check("acc", 0.5, ">=", 0.9, chapter="c", profile="quick", data_source="d")
    claims.check("other", 1.0, ">=", 0.9, chapter="c", profile="quick", data_source="d")
    claims.check("acc", 0.95, ">=", 0.9, chapter="c", profile="quick", data_source="d")
    names = [(c.name, c.status) for c in claims.ledger(build)]
    assert names == [("other", "pass"), ("acc", "pass")]


def test_report_cli_fails_naming_the_failed_claim(build, tmp_path):
    claims.check("held", 1.0, ">=", 0.5, chapter="ch_a", profile="quick", data_source="d")
    claims.check("broken", 0.1, ">=", 0.5, chapter="ch_b", profile="quick", data_source="d")
    page_file = claims.build_dir(build) / "pages.json"
    page_file.write_text(json.dumps({"book/x": {"seconds": 12.5}}))
    cmd = [sys.executable, "-m", "helpers.claims", "report", "--fail"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 1
    assert "ch_b: broken" in out.stdout and "1 claim(s) FAILED" in out.stdout and "12.5  book/x" in out.stdout
    ok = subprocess.run(cmd[:-1], capture_output=True, text=True, env=dict(os.environ))
    assert ok.returncode == 0


def test_latest_build_without_the_variable_is_the_newest(build, monkeypatch):
    claims.check("a", 1.0, ">=", 0.5, chapter="c", profile="quick", data_source="d")
    monkeypatch.delenv("MEDVIT_BUILD")
    assert claims.latest_build() == build


def test_ledger_table_has_one_row_per_claim(build):
    claims.check("a", 1.0, ">=", 0.5, chapter="c", profile="quick", data_source="d")
    claims.check("b", 1.0, ">=", 0.5, chapter="c", profile="smoke", data_source="d")
    table = claims.ledger_table(claims.ledger(build))
    assert list(table["claim"]) == ["a", "b"]
    assert table["status"].tolist()[0] == "pass" and table["status"].tolist()[1].startswith("not checked")


def test_gathering_pages_are_read_last_in_the_given_order():
    names = ["book/intro", "book/applications/results", "book/appendix/claims", "book/models/vit"]
    last = ["book/applications/results", "book/appendix/claims", "book/not/in/build"]
    assert bookbuild.gather_last(names, last) == [
        "book/intro",
        "book/models/vit",
        "book/applications/results",
        "book/appendix/claims",
    ]


def test_the_book_configuration_gathers_results_and_claims_last():
    import yaml

    from helpers import config

    cfg = yaml.safe_load((config.repo_root() / "_config.yml").read_text())
    assert "helpers.bookbuild" in cfg["sphinx"]["extra_extensions"]
    assert cfg["sphinx"]["config"]["medvit_gather_last"][-1] == "book/appendix/claims"


def _notebook(source: str) -> dict:
    from helpers import chapter

    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None, "outputs": [], "source": source}
    title = {"cell_type": "markdown", "id": "t1", "metadata": {}, "source": "# Page"}
    return {"cells": [title, cell], "metadata": {"kernelspec": chapter.KERNELSPEC}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.slow
def test_a_book_with_a_failed_claim_builds_every_page_then_the_report_fails(tmp_path, monkeypatch):
    """A two-page book configured as ours (about 15 s): the ledger page runs last and sees the failure."""
    import yaml

    from helpers import config

    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path / "runs"))
    for name in ("MEDVIT_BUILD", "MEDVIT_CLAIMS"):
        monkeypatch.delenv(name, raising=False)
    cfg = yaml.safe_load((config.repo_root() / "_config.yml").read_text())
    sphinx = {"extra_extensions": cfg["sphinx"]["extra_extensions"], "config": {"medvit_gather_last": ["a_ledger"]}}
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text(yaml.safe_dump({"title": "t", "execute": cfg["execute"], "sphinx": sphinx}))
    (book / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n- file: a_ledger\n- file: b_claim\n")
    (book / "index.md").write_text("# A book\n")
    ledger = "from helpers import claims\nprint('LEDGER', [(c.name, c.status) for c in claims.ledger()])"
    failing = (
        "from helpers import claims\n"
        + "claims.check('auroc', 0.61, '>=', 0.8, chapter='b', profile='quick', data_source='d')"
    )
    (book / "a_ledger.ipynb").write_text(json.dumps(_notebook(ledger)))
    (book / "b_claim.ipynb").write_text(json.dumps(_notebook(failing)))
    jb = os.path.join(os.path.dirname(sys.executable), "jupyter-book")
    done = subprocess.run([jb, "build", str(book)], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    html = (book / "_build" / "html" / "a_ledger.html").read_text()
    assert "LEDGER [(&#39;auroc&#39;, &#39;fail&#39;)]" in html or "LEDGER [('auroc', 'fail')]" in html
    assert "claim FAILED: auroc" in (book / "_build" / "html" / "b_claim.html").read_text()
    (build,) = claims.builds()
    assert set(claims.page_times(build)) >= {"a_ledger", "b_claim"}
    env = {**os.environ, "MEDVIT_BUILD": build}
    report = subprocess.run(
        [sys.executable, "-m", "helpers.claims", "report", "--fail"], capture_output=True, text=True, env=env
    )
    assert report.returncode == 1 and "b: auroc" in report.stdout
