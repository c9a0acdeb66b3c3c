"""The built pages as a reader meets them (helpers.pagecheck), and the executed book they are built from.

The checks run on small pages and images made here, and, in ``make test``, over the strict build of
the chapters nbval executed (``MEDVIT_BUILT_HTML`` names its HTML folder; ``make test`` sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import pagecheck, site

ROOT = Path(__file__).resolve().parents[1]
BUILT = os.environ.get("MEDVIT_BUILT_HTML")


def test_absolute_paths_are_found_and_shown_paths_are_not():
    text = "run saved to /tmp/ci.x/runs/abc\nread $MEDVIT_DATA/pbc/x.jpg\nsee https://host.org/tmp/page"
    assert pagecheck.absolute_paths(text) == ["/tmp/ci.x/runs/abc"]
    assert pagecheck.absolute_paths(r"C:\Users\me\data") == [r"C:\Users\me\data"]
    assert pagecheck.absolute_paths("cache at /srv/books/cache", roots=("/srv/books",)) == ["/srv/books/cache"]
    assert pagecheck.absolute_paths("cache at /data2/x", roots=("/data2",)) == ["/data2"]
    assert pagecheck.absolute_paths("ratio 3/4 and a/b/c and ~/x") == []


def test_warnings_and_raw_citations_are_found():
    text = "ok\n/x.py:3: UserWarning: something odd\n  warnings.warn(msg)\nWarning count: 0"
    assert len(pagecheck.warning_lines(text)) == 2
    keys = ["vaswani2017attention", "he2016deep"]
    assert pagecheck.raw_citations("as in vaswani2017attention and Vaswani et al.", keys) == ["vaswani2017attention"]
    assert pagecheck.raw_citations("see {cite}`he2016deep`", keys) == ["{cite}", "he2016deep"]
    assert pagecheck.raw_citations("He et al. (2016)", keys) == []


def test_frozen_progress_bars_are_found():
    assert pagecheck.progress_bars("decoding pbc/train at 32px:   0%|          | 0/280 [00:00<?, ?img/s]") != []
    assert pagecheck.progress_bars("x: 100%|##########| 1.2k/1.2k [00:01<00:00]") != []
    assert pagecheck.progress_bars("HBox(children=(HTML(value=''), FloatProgress(value=0.0, max=280.0)))") != []
    assert pagecheck.progress_bars("accuracy 92% | loss 0.3 | 12/40 epochs") == []


def test_bib_keys_reads_the_books_bibliography():
    keys = pagecheck.bib_keys(ROOT / "book" / "references.bib")
    assert len(keys) > 40 and len(set(keys)) == len(keys)


def _save(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    path = tmp_path / name
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def test_nearly_uniform_figures(tmp_path):
    flat = np.full((60, 80, 3), 68)
    flat[0, 0] = 70
    assert pagecheck.is_nearly_uniform(_save(tmp_path, "flat.png", flat))
    ramp = np.tile(np.linspace(0, 255, 80), (60, 1))
    assert not pagecheck.is_nearly_uniform(_save(tmp_path, "ramp.png", ramp))
    plot = np.full((100, 100), 255)
    plot[10:90, 10] = 0
    plot[90, 10:90] = 0
    plot[np.arange(10, 90), np.arange(10, 90)] = 30
    assert not pagecheck.is_nearly_uniform(_save(tmp_path, "plot.png", plot))


def _page(tmp_path: Path, body: str) -> Path:
    page = tmp_path / "book" / "ch.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f"<html><body><article class='bd-article'>{body}</article></body></html>")
    return page


def test_check_page_names_every_kind_of_problem(tmp_path):
    (tmp_path / "book").mkdir()
    _save(tmp_path / "book", "blank.png", np.full((40, 40), 200))
    body = (
        "<p>Text citing vaswani2017attention raw.</p>"
        "<div class='cell_output'><div class='output stream'><pre>saved to /home/u/runs/x</pre></div>"
        "<div class='output stderr'><pre>FutureWarning: old</pre></div>"
        "<div class='output text_plain'><pre>  0%|          | 0/280 [00:00&lt;?, ?img/s]</pre></div>"
        "<img src='blank.png'/></div>"
    )
    problems = pagecheck.check_page(_page(tmp_path, body), tmp_path, ["vaswani2017attention"])
    assert sorted({p.kind for p in problems}) == ["citation", "figure", "path", "progress", "stderr", "warning"]
    assert all(p.page == "book/ch.html" for p in problems)
    clean = "<div class='cell_output'><div class='output stream'><pre>read $MEDVIT_DATA/pbc</pre></div></div>"
    assert pagecheck.check_page(_page(tmp_path, clean), tmp_path, ["vaswani2017attention"]) == []


def test_equations_must_be_typeset_by_the_books_own_mathjax(tmp_path):
    math = "<span class='math'>\\(x^2\\)</span>"
    cdn = "<script src='https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js'></script>"
    page = _page(tmp_path, math + cdn)
    assert [p.kind for p in pagecheck.check_page(page, tmp_path, [])] == ["math"]
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "mathjax" / "tex-chtml.js").write_text("//")
    page = _page(tmp_path, math + "<script src='../_static/mathjax/tex-chtml.js'></script>")
    assert pagecheck.check_page(page, tmp_path, []) == []


def test_the_book_carries_mathjax():
    from helpers import bookbuild

    source = bookbuild.mathjax_source()
    assert source is not None, "sphinx-mathjax-offline is not installed: pip install -e ."
    assert all((source / name).exists() for name in bookbuild.MATHJAX_FILES)


def test_check_site_refuses_a_folder_without_pages(tmp_path):
    with pytest.raises(FileNotFoundError, match="build the book first"):
        pagecheck.check_site(tmp_path, ROOT / "book" / "references.bib")


def _tiny_book(root: Path) -> Path:
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n      - file: book/ch\n")
    (root / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: force\n")
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "print(6 * 7)"}
    nb = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}}}
    for name in ("intro", "ch"):
        (root / "book" / f"{name}.ipynb").write_text(json.dumps({**nb, "nbformat": 4, "nbformat_minor": 5}))
    return root


def test_nbval_plugin_saves_outputs_and_the_book_is_staged_from_them(tmp_path):
    book = _tiny_book(tmp_path / "src")
    executed = tmp_path / "executed"
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", str(book / "book"), "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "helpers.executed", "--executed-dir", str(executed), "--rootdir", str(book)]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=book, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    saved = sorted(p.relative_to(executed).as_posix() for p in executed.rglob("*.ipynb"))
    assert saved == ["book/ch.ipynb", "book/intro.ipynb"]
    out = json.loads((executed / "book" / "ch.ipynb").read_text())["cells"][0]["outputs"]
    assert out and "42" in "".join(out[0]["text"])

    dest = site.stage_executed_book(executed, tmp_path / "staged", root=book)
    assert "42" in (dest / "book" / "ch.ipynb").read_text()
    assert yaml.safe_load((dest / "_config.yml").read_text())["execute"]["execute_notebooks"] == "off"
    (executed / "book" / "ch.ipynb").unlink()
    with pytest.raises(FileNotFoundError, match="book/ch"):
        site.stage_executed_book(executed, tmp_path / "staged", root=book)


def _roots() -> tuple[str, ...]:
    return pagecheck.machine_roots()


@pytest.mark.skipif(not BUILT, reason="MEDVIT_BUILT_HTML is not set: make test sets it to the strict build")
def test_built_pages_show_no_paths_stderr_warnings_raw_citations_or_blank_figures():
    problems = pagecheck.check_site(BUILT, ROOT / "book" / "references.bib", _roots())
    assert len(pagecheck.chapter_pages(BUILT)) >= 15
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.browser
@pytest.mark.skipif(not BUILT, reason="MEDVIT_BUILT_HTML is not set: make test sets it to the strict build")
def test_built_pages_have_no_wide_table_and_typeset_equations_offline():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "no Chromium on PATH: make browser installs Debian's"
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        for html in pagecheck.chapter_pages(BUILT):
            problems += pagecheck.browser_problems(page, html.resolve().as_uri(), BUILT)
        browser.close()
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.browser
def test_an_outside_request_a_line_past_its_box_and_grey_stderr_are_found(tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "no Chromium on PATH: make browser installs Debian's"
    line = "run saved to " + "/".join(["a_rather_long_folder_name"] * 12) + " " + "7" * 150
    failed = "<div class='output stderr'><pre>claim failed: ViT beats chance</pre></div>"
    body = (
        f"<article class='bd-article' style='width:700px'><div class='cell_output'><pre>{line}</pre>{failed}</div>"
        "</article>"
    )
    css = (ROOT / "_static" / "medvit.css").resolve().as_uri()
    cdn = "<script src='https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.6/dist/embed-amd.js'></script>"
    (tmp_path / "bare.html").write_text(f"<html><body>{body}{cdn}</body></html>")
    (tmp_path / "book.html").write_text(
        f"<html><head><link rel='stylesheet' href='{css}'></head><body>{body}</body></html>"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        bare = pagecheck.browser_problems(page, (tmp_path / "bare.html").as_uri(), tmp_path)
        styled = pagecheck.browser_problems(page, (tmp_path / "book.html").as_uri(), tmp_path)
        browser.close()
    assert [p.kind for p in bare] == ["request", "output", "stderr"] and "cdn.jsdelivr.net" in str(bare[0]), bare
    assert "run saved to" in str(bare[1]) and "claim failed" in str(bare[2]), bare
    assert styled == [], styled


def test_a_key_in_code_is_not_a_raw_citation(tmp_path):
    body = (
        "<div class='cell_input'><pre>references.findings('thesis004')</pre></div>"
        "<p>see <code>thesis004_config</code></p>"
        "<div class='cell_output'><table><tr><td>thesis004</td></tr></table></div>"
    )
    problems = pagecheck.check_page(_page(tmp_path, body), tmp_path, ["thesis004"])
    assert [(p.kind, p.detail) for p in problems] == [("citation", "thesis004")]


def test_a_typed_run_number_is_found_and_a_pasted_or_recorded_one_is_not():
    from bs4 import BeautifulSoup

    from helpers import prose

    def page(body: str) -> BeautifulSoup:
        return BeautifulSoup(f"<html><body><article>{body}</article></body></html>", "html.parser")

    typed = page("<p>The ResNet saw 280 training images, 80 held out, at quick.</p>")
    assert prose.unglued_numbers(typed, "blood_cells") == ["The ResNet saw 280 training images, 80 held out, at quick."]
    pasted = page(
        '<p>The ResNet saw <span class="pasted-text">280</span> training images, '
        '<span class="pasted-text">80</span> held out.</p>'
    )
    assert prose.unglued_numbers(pasted, "blood_cells") == []
    recorded = page('<div class="admonition note recorded"><p>We saw 280 training images, 80 held out.</p></div>')
    assert prose.unglued_numbers(recorded, "blood_cells") == []
    output = page('<div class="cell_output"><pre>280 training images, 80 held out</pre></div>')
    assert prose.unglued_numbers(output, "blood_cells") == []
    assert prose.unglued_numbers(typed, "a_chapter_without_phrases") == []


def test_glue_writes_myst_nbs_record(monkeypatch):
    import IPython.display

    from helpers import prose

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw, metadata: shown.append((data, metadata)))
    assert prose.glue("train_images", 1234) == 1234
    ((data, metadata),) = shown
    assert metadata["scrapbook"] == {"name": "train_images", "mime_prefix": "application/papermill.record/"}
    assert data == {"application/papermill.record/text/plain": "1234"}


def test_a_run_without_its_mark_against_chance_is_found():
    from bs4 import BeautifulSoup

    def output(rows: str) -> BeautifulSoup:
        head = "<tr><th></th><th>kind</th><th>run</th><th>balanced accuracy</th><th>vs chance</th></tr>"
        return BeautifulSoup(f'<div class="cell_output"><table>{head}{rows}</table></div>', "html.parser")

    marked = output(
        "<tr><th>0</th><td>run</td><td>resnet</td><td>0.9</td><td>above chance</td></tr>"
        "<tr><th>1</th><td>run</td><td>vit</td><td>0.13</td><td>AT CHANCE</td></tr>"
        "<tr><th>2</th><td>reference</td><td>thesis</td><td>0.96</td><td></td></tr>"
    )
    assert pagecheck.unmarked_chance_rows(marked) == []
    unmarked = output("<tr><th>0</th><td>run</td><td>vit</td><td>0.13</td><td></td></tr>")
    assert pagecheck.unmarked_chance_rows(unmarked) == ["0 | run | vit | 0.13"]
    no_column = BeautifulSoup(
        '<div class="cell_output"><table><tr><th>a</th></tr><tr><td></td></tr></table></div>', "html.parser"
    )
    assert pagecheck.unmarked_chance_rows(no_column) == []
