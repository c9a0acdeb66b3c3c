"""The book build, as a small Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``).

Three things every build needs that Jupyter Book does not do by itself:

* **A build id.** ``MEDVIT_BUILD`` (set by ``make book``, else made here from the time) names the
  build; chapters executed in it record their claims under ``<runs>/builds/<id>/`` and the pages
  that gather results read the same build. ``MEDVIT_CLAIMS`` becomes ``record`` unless set, so a
  failed claim is shown on its page and the other pages still build (see :mod:`helpers.claims`).
* **Gathering pages last.** Sphinx reads (and myst-nb executes) pages in name order, so the Results
  page would run before the chapters whose runs it gathers. The pages named in the
  ``medvit_gather_last`` setting are moved to the end of the reading order, in the order given.
* **Pages executed several at a time** (:mod:`helpers.bookexec`), when ``MEDVIT_BOOK_JOBS`` > 1.
* **Time per page.** How long each page took to read (for a notebook: to execute) is written to
  ``pages.json`` as each page finishes, so a page read last can show the others' times.
* **A failed page is recorded, not fatal.** Notebook execution errors do not stop the build
  (``nb_execution_raise_on_error: false``): a page whose cell raised is rendered with the error
  under that cell and a warning at its top, and the page, the cell and the error are written to
  ``failures.json`` of this build as soon as the page is read (so an interrupted build keeps them).
  ``python -m helpers site build`` reads them after the HTML is written and exits non-zero naming
  each one (:func:`helpers.site.recorded_failures`). A page that failed is read (executed) again by
  the next build even when its source did not change, so a failure is never carried over unseen.
* **Pages executed in one setting.** Sphinx reads again only the pages whose source changed; a build
  with another profile or data root (``make book MEDVIT_DATA=<root>``) would keep the pages executed
  on the last one. :func:`execution_context` (profile, data root, offline or not, device) is a
  setting of the build (``medvit_execution_context``): when it differs from the last build's, Sphinx
  reads, and so executes, every page again.
* **MathJax served with the book.** The equations are typeset by a copy of MathJax 3 in the book's
  ``_static/mathjax`` (from the ``sphinx-mathjax-offline`` package: the TeX-to-HTML component, its
  fonts and TeX extensions, about 2.5 MB), not by a CDN, so a saved or offline copy of the book
  still shows equations rather than raw LaTeX.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import bookexec, claims

__all__ = [
    "gather_last",
    "failed_cell",
    "execution_context",
    "FAILURES_FILE",
    "mathjax_source",
    "MATHJAX_FILES",
    "setup",
]

#: The file of a build's folder (:func:`helpers.claims.build_dir`) that lists its failed pages.
FAILURES_FILE = "failures.json"

#: What the book copies of MathJax 3: the TeX-to-CommonHTML component, its web fonts, the TeX
#: extensions it loads on demand (``boldsymbol``, ``mathtools``, ...).
MATHJAX_FILES = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")

_started: dict[str, float] = {}


def gather_last(docnames: list[str], last: list[str]) -> list[str]:
    """``docnames`` with the names in ``last`` moved to the end, in ``last``'s order (others kept in order)."""
    tail = [name for name in last if name in docnames]
    return [name for name in docnames if name not in tail] + tail


def _builder_inited(app: Any) -> None:
    """Name the build and make failed claims recorded rather than raised."""
    if not os.environ.get("MEDVIT_BUILD", "").strip():
        os.environ["MEDVIT_BUILD"] = "book-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.environ.setdefault("MEDVIT_CLAIMS", "record")


def _reorder(app: Any, env: Any, docnames: list[str]) -> None:
    """Sphinx ``env-before-read-docs``: move the gathering pages to the end, in place."""
    docnames[:] = gather_last(list(docnames), list(app.config.medvit_gather_last))


def _source_read(app: Any, docname: str, source: list[str]) -> None:
    _started[docname] = time.perf_counter()


def failed_cell(notebook: dict[str, Any]) -> dict[str, Any] | None:
    """The first cell of an executed notebook whose error was not expected, or None.

    Returns ``{"cell": n, "statement": ..., "error": ...}``: ``n`` counts every cell from 1, as a
    reader counts them in Jupyter; ``statement`` is the line the traceback points at (``""`` when it
    points at none); ``error`` is ``"<exception>: <message>"``. A cell tagged ``raises-exception``
    is meant to fail and is passed over.
    """
    for n, cell in enumerate(notebook.get("cells", []), 1):
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("output_type") == "error":
                from .site import traceback_statement

                statement = traceback_statement("\n".join(out.get("traceback", [])))
                return {"cell": n, "statement": statement, "error": f"{out.get('ename')}: {out.get('evalue')}"}
    return None


def _page_failure(app: Any, docname: str) -> dict[str, Any] | None:
    """What failed on a page that myst-nb executed without success (None when it ran to the end)."""
    from myst_nb.sphinx_ import NbMetadataCollector

    data = NbMetadataCollector.get_doc_data(app.env).get(docname, {}).get("exec_data")
    if not data or data.get("succeeded", True):
        return None
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb"
    cell = failed_cell(json.loads(executed.read_text(encoding="utf-8"))) if executed.is_file() else None
    last = [line for line in (data.get("traceback") or "").strip().splitlines() if line.strip()]
    fallback = {"cell": None, "statement": "", "error": last[-1] if last else str(data.get("error"))}
    source = Path(app.env.doc2path(docname))
    return {"notebook": str(source.relative_to(app.srcdir)), **(cell or fallback)}


def _failed_before(app: Any, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    """Sphinx ``env-get-outdated``: the pages whose notebook failed when last executed, to be read again."""
    from myst_nb.sphinx_ import NbMetadataCollector

    pages = NbMetadataCollector.get_doc_data(env)
    return [
        name
        for name, meta in pages.items()
        if name in env.all_docs and name not in removed and not (meta.get("exec_data") or {}).get("succeeded", True)
    ]


def _warn_on_page(doctree: Any, failure: dict[str, Any]) -> None:
    """Put a warning at the top of a page whose notebook failed, saying where and how."""
    from docutils import nodes

    where = f"cell {failure['cell']}" if failure["cell"] else "its execution"
    text = (
        f"This page did not run to the end when the book was built: {where} raised "
        f"{failure['error']}. The cells after it were not run; the error is shown under the cell."
    )
    box = nodes.warning("", nodes.paragraph(text=text))
    section = next(iter(doctree.findall(nodes.section)), doctree)
    section.insert(1 if section.children and isinstance(section[0], nodes.title) else 0, box)


def _record_failure(app: Any, doctree: Any, docname: str) -> None:
    """Write (or clear) a page's entry in this build's ``failures.json``, and mark a failed page."""
    failure = _page_failure(app, docname)
    path = claims.build_dir(create=True) / FAILURES_FILE
    failures = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if failure is None and docname not in failures:
        return
    if failure is None:
        failures.pop(docname)
    else:
        failures[docname] = failure
        _warn_on_page(doctree, failure)
    path.write_text(json.dumps(failures, indent=1), encoding="utf-8")


def _doctree_read(app: Any, doctree: Any) -> None:
    """Record the seconds a page took, in ``pages.json`` of this build (rewritten after each page)."""
    docname = app.env.docname
    if docname not in _started:
        return
    _record_failure(app, doctree, docname)
    path = claims.build_dir(create=True) / "pages.json"
    pages = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    read = time.perf_counter() - _started.pop(docname)
    pages[docname] = {"seconds": round(bookexec.page_seconds(app.env, docname, read), 1)}
    path.write_text(json.dumps(pages, indent=1), encoding="utf-8")


def mathjax_source() -> Path | None:
    """The folder of the MathJax 3 copy installed with ``sphinx-mathjax-offline``, or None."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    return folder if (folder / MATHJAX_FILES[0]).is_file() else None


def execution_context() -> str:
    """What the executed pages depend on besides their source: profile, data root, offline, device."""
    from . import config as settings

    profile = os.environ.get("MEDVIT_PROFILE") or settings.DEFAULT_PROFILE
    offline = os.environ.get("MEDVIT_OFFLINE", "").strip() not in ("", "0")
    device = os.environ.get("MEDVIT_DEVICE", "")
    return f"profile={profile}; data={settings.data_root()}; offline={offline}; device={device}"


def _config_inited(app: Any, config: Any) -> None:
    """Point Sphinx's MathJax at the book's own copy (unless ``mathjax_path`` was set by hand); note
    the execution context, so that a build in another one executes every page again."""
    if mathjax_source() is not None and str(config.mathjax_path).startswith("https://"):
        config.mathjax_path = "mathjax/tex-chtml.js"
    config.medvit_execution_context = execution_context()


def _copy_mathjax(app: Any, exc: Exception | None) -> None:
    """Sphinx ``build-finished``: copy MathJax into the HTML output's ``_static/mathjax``."""
    source = mathjax_source()
    if exc is not None or source is None or app.builder.format != "html":
        return
    dest = os.path.join(app.outdir, "_static", "mathjax")
    for name in MATHJAX_FILES:
        target = os.path.join(dest, name)
        if (source / name).is_dir():
            shutil.copytree(source / name, target, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(source / name, target)


def setup(app: Any) -> dict[str, Any]:
    """Register the setting and the event handlers."""
    app.add_config_value("medvit_gather_last", [], "env")
    app.add_config_value("medvit_execution_context", "", "env")
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _copy_mathjax)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-get-outdated", _failed_before)
    app.connect("env-before-read-docs", _reorder)
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    bookexec.setup(app)  # pages executed several at a time before they are read (MEDVIT_BOOK_JOBS)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
