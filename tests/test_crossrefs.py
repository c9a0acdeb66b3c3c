"""Every cross-reference of the book points at a page that exists and is in ``_toc.yml``.

The book's markdown (the markdown cells of every notebook, and every ``.md`` page under ``book/``)
refers to other pages in three ways, all resolved here as Sphinx would:

* ``{doc}`target``` or ``{doc}`text <target>```: relative to the page's folder, or to the book's
  root when it starts with ``/``; ``target`` has no suffix;
* ``{ref}`label``` or ``{ref}`text <label>```: a label defined by ``(label)=`` or ``:name: label``
  on a page of the table of contents;
* a markdown link ``[text](page.ipynb)`` or ``[text](page.md#anchor)``, relative to the page.

A target that exists but is not in ``_toc.yml`` is an error too: the built book has no such page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = (".ipynb", ".md")

DOC = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")
REF = re.compile(r"\{ref\}`(?:[^`<]*<)?([^`>]+)>?`")
LINK = re.compile(r"\]\(([^)\s]+?\.(?:ipynb|md))(#[^)\s]*)?\)")
LABEL = re.compile(r"^\(([^()\s]+)\)=\s*$|^:name:\s*(\S+)\s*$", re.MULTILINE)


def toc_pages(root: Path) -> set[str]:
    """The pages of ``_toc.yml`` as paths relative to ``root``, without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    pages.add(str(Path(node[key]).with_suffix("")) if Path(node[key]).suffix in SUFFIXES else node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return pages


def markdown_of(path: Path) -> str:
    """The markdown a page shows: a notebook's markdown cells, or a ``.md`` file's text."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def book_pages(root: Path) -> list[Path]:
    """Every notebook and markdown page under ``root/book``."""
    return sorted(p for p in (root / "book").rglob("*") if p.suffix in SUFFIXES and ".ipynb_checkpoints" not in p.parts)


def labels(root: Path, pages: set[str]) -> dict[str, str]:
    """Every label defined on a page of the table of contents, with the page that defines it."""
    found: dict[str, str] = {}
    for page in pages:
        path = next((root / f"{page}{s}" for s in SUFFIXES if (root / f"{page}{s}").is_file()), None)
        if path is not None:
            for match in LABEL.finditer(markdown_of(path)):
                found[match.group(1) or match.group(2)] = page
    return found


def _page_problem(root: Path, pages: set[str], target: Path, what: str) -> str | None:
    """Why ``target`` (a path without suffix, absolute) is not a page of the book, or ``None``."""
    try:
        rel = str(target.resolve().relative_to(root))
    except ValueError:
        return f"{what}: points outside the repository"
    if not any((root / f"{rel}{s}").is_file() for s in SUFFIXES):
        return f"{what}: no file {rel}.ipynb or {rel}.md"
    if rel not in pages:
        return f"{what}: {rel} exists but is not in _toc.yml"
    return None


def broken_references(root: Path, path: Path, pages: set[str], known: dict[str, str]) -> list[str]:
    """The cross-references of one page that do not resolve, each with the reason."""
    text, here, problems = markdown_of(path), path.parent, []
    for match in DOC.finditer(text):
        target = match.group(1).strip()
        base = root if target.startswith("/") else here
        problems.append(_page_problem(root, pages, base / target.lstrip("/"), f"{{doc}}`{target}`"))
    for match in REF.finditer(text):
        label = match.group(1).strip()
        if label not in known:
            problems.append(f"{{ref}}`{label}`: no page of the table of contents defines this label")
    for match in LINK.finditer(text):
        link = match.group(1)
        if re.match(r"[a-z]+://", link):
            continue
        problems.append(_page_problem(root, pages, (here / link).with_suffix(""), f"link ({link})"))
    return [p for p in problems if p]


PAGES = toc_pages(ROOT)
KNOWN = labels(ROOT, PAGES)


@pytest.mark.parametrize("path", book_pages(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cross_reference_resolves(path: Path) -> None:
    problems = broken_references(ROOT, path, PAGES, KNOWN)
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_every_toc_entry_is_a_file() -> None:
    missing = [p for p in PAGES if not any((ROOT / f"{p}{s}").is_file() for s in SUFFIXES)]
    assert not missing, f"_toc.yml lists pages with no file: {missing}"


def _tiny_book(tmp_path: Path, body: str) -> Path:
    """A book with two pages in the toc (intro, part/a), one page outside it (part/draft)."""
    (tmp_path / "book" / "part").mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/part/a\n")
    (tmp_path / "book" / "intro.md").write_text(body)
    (tmp_path / "book" / "part" / "a.md").write_text("(sec-a)=\n# A\n")
    (tmp_path / "book" / "part" / "draft.md").write_text("# not in the toc\n")
    return tmp_path / "book" / "intro.md"


@pytest.mark.parametrize(
    ("body", "broken"),
    [
        ("{doc}`part/a` and {doc}`the page <part/a>` and {doc}`/book/part/a`", 0),
        ("[a](part/a.md#top) and {ref}`sec-a` and {ref}`A <sec-a>` and [web](https://example.org/x.md)", 0),
        ("{doc}`part/missing`", 1),
        ("{doc}`part/draft` and [draft](part/draft.md)", 2),
        ("{ref}`no-such-label` and [b](../outside.ipynb)", 2),
    ],
)
def test_the_resolver_finds_broken_references(tmp_path: Path, body: str, broken: int) -> None:
    page = _tiny_book(tmp_path, body)
    pages = toc_pages(tmp_path)
    assert pages == {"book/intro", "book/part/a"}
    problems = broken_references(tmp_path, page, pages, labels(tmp_path, pages))
    assert len(problems) == broken, problems
