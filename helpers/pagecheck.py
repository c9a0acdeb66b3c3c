"""The built book's pages checked as a reader meets them: what the outputs of its executed chapters show.

A page fails when one of its cell outputs shows

* an absolute filesystem path (``/home/...``, ``/tmp/...``, ``C:\\...``, or any of the roots passed
  in): pages print ``$MEDVIT_DATA/...`` and ``$MEDVIT_RUNS/...`` instead (:func:`helpers.config.shown_path`);
* a stderr box, or a Python warning (``...Warning:``) in any output;
* a progress bar frozen where the page was saved (tqdm's text, ``0%|   | 0/280``, or a widget's repr);
* a raw citation: a key of ``references.bib`` in the text, or ``{cite}``/``:cite:`` markup left unrendered;
* a figure whose pixels are nearly uniform (a plot or a map that shows nothing);
* a number of this build's runs typed into the text (:func:`helpers.prose.unglued_numbers`);
* a run in a results table whose mark against chance is empty (:func:`unmarked_chance_rows`);
* equations typeset by a MathJax the book does not carry (a CDN: an offline copy shows raw LaTeX);
* (in a browser, :func:`browser_problems`) a table or a display equation wider than the text column,
  or equations left as raw LaTeX with the network cut off.

:func:`check_site` runs the first four over every chapter page of a build; ``python -m helpers site
check-pages HTML_DIR`` prints what it finds, and ``tests/test_pages.py`` runs all five over the strict
build of ``make test``.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.prose import unglued_numbers

__all__ = [
    "Problem",
    "UNIFORM_STD",
    "absolute_paths",
    "warning_lines",
    "progress_bars",
    "bib_keys",
    "machine_roots",
    "raw_citations",
    "is_nearly_uniform",
    "check_page",
    "check_site",
    "chapter_pages",
    "browser_problems",
    "CHANCE_HEADERS",
    "unmarked_chance_rows",
]

#: A figure whose grey levels spread less than this (standard deviation, 0-255) shows nothing.
UNIFORM_STD = 2.0
#: ... or whose most common grey level covers at least this share of its pixels.
UNIFORM_SHARE = 0.995

_ABSOLUTE = re.compile(
    r"(?<![\w.:/$~-])(?:/(?:home|root|tmp|work|usr|opt|var|mnt|srv|media|Users|private|content|scratch)/"
    r"[^\s'\"<>)]*|[A-Za-z]:\\[^\s'\"<>]+)"
)
_WARNING = re.compile(r"\b[A-Z]\w*Warning\b:|\bwarnings\.warn\(")
_PROGRESS = re.compile(r"\b\d{1,3}%\|[^|\n]*\|\s*\d[\d.]*[kMG]?/\d|\b(?:FloatProgress|IntProgress)\(")
_CITE_MARKUP = re.compile(r"\{cite(?::\w+)?\}|:cite(?::\w+)?:")


@dataclass(frozen=True)
class Problem:
    """One thing a page shows that it should not.

    Attributes:
        page: the page, relative to the HTML root (``book/models/cnn_baselines.html``).
        kind: ``path``, ``stderr``, ``warning``, ``progress``, ``citation``, ``figure``, ``math``, ``table``
            or ``equation``.
        detail: what and where, short enough for one line.
    """

    page: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


def absolute_paths(text: str, roots: tuple[str, ...] = ()) -> list[str]:
    """The absolute filesystem paths in ``text``: the usual roots of Linux, macOS, Colab and Windows, and
    any of ``roots`` (the machine's own data, cache and runs folders)."""
    found = [m.group(0) for m in _ABSOLUTE.finditer(text)]
    found += [r for r in roots if r and len(r) > 1 and r in text and not any(r in f for f in found)]
    return found


def warning_lines(text: str) -> list[str]:
    """The lines of ``text`` that show a Python warning (``UserWarning: ...``, ``warnings.warn(``)."""
    return [line.strip() for line in text.splitlines() if _WARNING.search(line)]


def progress_bars(text: str) -> list[str]:
    """The lines of ``text`` that show a progress bar: in a saved page it is frozen at one frame."""
    return [line.strip() for line in text.splitlines() if _PROGRESS.search(line)]


def bib_keys(bib: str | Path) -> list[str]:
    """The entry keys of a BibTeX file (read by :func:`helpers.references.bib_entries`)."""
    from .references import bib_entries

    if not Path(bib).is_file():
        raise FileNotFoundError(f"no bibliography at {bib}")
    return list(bib_entries(str(bib)))


def machine_roots() -> tuple[str, ...]:
    """This machine's own folders that a page must not print: the book's, the data's, the cache's, the runs'."""
    from . import config

    folders = (config.repo_root(), config.data_root(), config.cache_dir(create=False), config.runs_dir(create=False))
    return tuple(str(p) for p in folders)


def raw_citations(text: str, keys: list[str]) -> list[str]:
    """Citation keys and citation markup that ``text`` shows as they were typed, not rendered."""
    found = [m.group(0) for m in _CITE_MARKUP.finditer(text)]
    words = set(re.findall(r"[\w:.-]+", text))
    return found + [k for k in keys if k in words]


def is_nearly_uniform(path: str | Path | io.BytesIO) -> bool:
    """Whether the image at ``path`` (or in a file object) is (nearly) one grey level: a figure that shows nothing."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float64)
    if grey.size == 0:
        return True
    share = np.bincount(grey.astype(np.uint8).ravel(), minlength=256).max() / grey.size
    return bool(grey.std() < UNIFORM_STD or share >= UNIFORM_SHARE)


def _image_source(src: str, html: Path) -> Path | io.BytesIO | None:
    """The PNG or JPEG an ``<img src>`` shows: a file beside the page, or the bytes of a data URI."""
    if src.startswith("data:image/png;base64,") or src.startswith("data:image/jpeg;base64,"):
        return io.BytesIO(base64.b64decode(src.split(",", 1)[1]))
    path = (html.parent / src).resolve()
    return path if "://" not in src and path.is_file() and path.suffix.lower() in (".png", ".jpg", ".jpeg") else None


def _outputs(soup: Any) -> list[Any]:
    """The cell-output blocks of a Jupyter Book page."""
    return soup.select("div.cell_output")


def check_page(html: str | Path, site: str | Path, keys: list[str], roots: tuple[str, ...] = ()) -> list[Problem]:
    """Everything wrong with the outputs of one built page (see the module's list), found without a browser."""
    from bs4 import BeautifulSoup

    html, site = Path(html), Path(site)
    page = html.relative_to(site).as_posix()
    soup = BeautifulSoup(html.read_text(encoding="utf-8"), "html.parser")
    problems: list[Problem] = []
    for k, out in enumerate(_outputs(soup)):
        text = out.get_text("\n")
        where = f"output {k + 1}"
        problems += [Problem(page, "path", f"{where}: {p}") for p in absolute_paths(text, roots)]
        if out.select(".stderr"):
            problems.append(Problem(page, "stderr", f"{where}: {out.select('.stderr')[0].get_text()[:120]!r}"))
        problems += [Problem(page, "warning", f"{where}: {w[:160]}") for w in warning_lines(text)]
        problems += [Problem(page, "progress", f"{where}: {b[:160]}") for b in progress_bars(text)]
        for img in out.select("img"):
            image = _image_source(img.get("src", ""), html)
            if image is not None and is_nearly_uniform(image):
                name = image.name if isinstance(image, Path) else "an inline image"
                problems.append(Problem(page, "figure", f"{where}: {name} is nearly one colour"))
    problems += [
        Problem(page, "chance", f"a run without its mark against chance: {r}") for r in unmarked_chance_rows(soup)
    ]
    typed = unglued_numbers(soup, html.stem)
    problems += [Problem(page, "unglued", f"typed, not from the build: {s!r}") for s in typed]
    article = soup.select_one("article") or soup
    for code in article.select(".cell_input, code"):  # a key in code is code: only text and outputs count
        code.decompose()
    problems += [Problem(page, "citation", c) for c in raw_citations(article.get_text(" "), keys)]
    return problems + _mathjax_problems(soup, html, page)


#: Column headers by which a results table marks whether each run beat chance (``helpers.results.chance_status``,
#: ``helpers.training.budget.beats_chance``).
CHANCE_HEADERS = ("vs chance", "beats chance")


def unmarked_chance_rows(soup: Any) -> list[str]:
    """Rows of the output tables that mark runs against chance (a :data:`CHANCE_HEADERS` column) where a run's
    mark is empty: a run at chance would then read as a result. Rows of published numbers carry no mark where
    the table says what each row is (a ``kind`` column other than ``run``); without one, every row needs a mark
    (``published`` for a number from the literature)."""
    found = []
    for table in soup.select("div.cell_output table"):
        rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in table.select("tr")]
        if not rows:
            continue
        header = rows[0]
        marks = [i for i, h in enumerate(header) if h in CHANCE_HEADERS]
        if not marks:
            continue
        kind = header.index("kind") if "kind" in header else None
        for row in rows[1:]:
            if len(row) != len(header) or (kind is not None and row[kind] != "run"):
                continue
            if any(not row[i] for i in marks):
                found.append(" | ".join(row[: min(4, len(row))]))
    return found


def _mathjax_problems(soup: Any, html: Path, page: str) -> list[Problem]:
    """A page with equations must load MathJax from the book's own ``_static`` folder."""
    if not soup.select(".math"):
        return []
    scripts = [s.get("src", "") for s in soup.select("script[src]") if "mathjax" in s.get("src", "").lower()]
    local = [src for src in scripts if "://" not in src and (html.parent / src.split("?")[0]).is_file()]
    if local and len(local) == len(scripts):
        return []
    return [Problem(page, "math", f"equations typeset by {scripts or 'no MathJax'}, not the book's own copy")]


def chapter_pages(site: str | Path) -> list[Path]:
    """The chapter pages of a built book (``book/**.html``), not its index, search or generated pages."""
    return sorted(Path(site).glob("book/**/*.html"))


def check_site(site: str | Path, bib: str | Path, roots: tuple[str, ...] = ()) -> list[Problem]:
    """:func:`check_page` over every chapter page of the HTML build at ``site``.

    Raises:
        FileNotFoundError: when ``site`` has no chapter pages (not a built book).
    """
    pages = chapter_pages(site)
    if not pages:
        raise FileNotFoundError(f"no chapter pages under {site}: build the book first")
    keys = bib_keys(bib)
    return [p for page in pages for p in check_page(page, site, keys, roots)]


#: URL schemes a page of the book may load from: the book's own files and inline data.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

_WIDTH_JS = r"""() => {
  const column = document.querySelector('article.bd-article') || document.querySelector('main');
  const limit = column.getBoundingClientRect().width;
  const tables = Array.from(column.querySelectorAll('table')).map((t, i) => ({
    kind: 'table', index: i, width: Math.max(t.scrollWidth, t.getBoundingClientRect().width), limit: limit,
    head: (t.querySelector('tr') || t).innerText.slice(0, 60)}));
  const equations = Array.from(column.querySelectorAll('mjx-container[display="true"] > mjx-math')).map((m, i) => ({
    kind: 'equation', index: i, width: m.getBoundingClientRect().width, limit: limit,
    head: (m.closest('.math') || m).getAttribute('id') || ''}));
  const outputs = Array.from(column.querySelectorAll('.cell_output pre')).map((o, i) => ({
    kind: 'output', index: i, width: o.scrollWidth, limit: o.clientWidth, head: o.innerText.slice(0, 60)}));
  const red = (el) => {
    const [r, g, b] = getComputedStyle(el).color.match(/\d+/g).map(Number);
    return r >= 150 && g < 100 && b < 100;
  };
  const stderr = Array.from(column.querySelectorAll('.cell_output .stderr pre')).filter((o) => !red(o)).map((o, i) => ({
    kind: 'stderr', index: i, width: 1, limit: 0, head: o.innerText.slice(0, 60)}));
  return tables.concat(equations, outputs, stderr);
}"""


def browser_problems(page: Any, url: str, site: str | Path, width: int = 1280, slack: float = 2.0) -> list[Problem]:
    """The tables and display equations of the page at ``url`` wider than its text column, and the printed
    outputs whose lines run past their box (cut off at the right, to be scrolled), in a Playwright ``page``
    ``width`` px wide (by more than ``slack`` px: a table that fills the column exactly may round up), its
    equations when they were not typeset, and every request it made outside the book's own files (read with
    the network cut off, so such a request fails as it would offline), and stderr output (a failed claim)
    not shown in red."""
    page.set_viewport_size({"width": width, "height": 900})
    outside: list[str] = []

    def cut(route: Any) -> None:
        request_url = route.request.url
        if request_url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            outside.append(request_url)
            route.abort()

    page.route("**/*", cut)
    page.goto(url)
    name = url.split(str(Path(site).resolve().as_posix()).rstrip("/") + "/")[-1]
    problems = []
    if page.locator(".math").count():
        try:
            page.wait_for_selector("mjx-container", timeout=15_000)
            page.wait_for_timeout(500)  # let MathJax finish laying the equations out
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError: the equations stayed raw LaTeX
            problems.append(Problem(name, "math", "equations not typeset with the network cut off"))
    page.wait_for_timeout(200)  # scripts loaded at the end of the page have asked for what they need
    problems += [Problem(name, "request", f"requested {u} (from outside the book: fails offline)") for u in outside]
    page.unroute("**/*")
    for t in page.evaluate(_WIDTH_JS):
        if t["kind"] == "stderr":
            problems.append(
                Problem(name, "stderr", f"stderr output {t['index'] + 1} ({t['head']!r}) is not shown in red")
            )
        elif t["width"] > t["limit"] + slack:
            what = f"{t['kind']} {t['index'] + 1} ({t['head']!r})"
            problems.append(Problem(name, t["kind"], f"{what} is {t['width']:.0f} px, column {t['limit']:.0f}"))
    return problems
