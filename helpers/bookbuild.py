"""The book build, as a small Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``).

Three things every build needs that Jupyter Book does not do by itself:

* **A build id.** ``MEDVIT_BUILD`` (set by ``make book``, else made here from the time) names the
  build; chapters executed in it record their claims under ``<runs>/builds/<id>/`` and the pages
  that gather results read the same build. ``MEDVIT_CLAIMS`` becomes ``record`` unless set, so a
  failed claim is shown on its page and the other pages still build (see :mod:`helpers.claims`).
* **Gathering pages last.** Sphinx reads (and myst-nb executes) pages in name order, so the Results
  page would run before the chapters whose runs it gathers. The pages named in the
  ``medvit_gather_last`` setting are moved to the end of the reading order, in the order given.
* **Time per page.** How long each page took to read (for a notebook: to execute) is written to
  ``pages.json`` as each page finishes, so a page read last can show the others' times.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from typing import Any

from . import claims

__all__ = ["gather_last", "setup"]

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


def _doctree_read(app: Any, doctree: Any) -> None:
    """Record the seconds a page took, in ``pages.json`` of this build (rewritten after each page)."""
    docname = app.env.docname
    if docname not in _started:
        return
    path = claims.build_dir(create=True) / "pages.json"
    pages = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    pages[docname] = {"seconds": round(time.perf_counter() - _started.pop(docname), 1)}
    path.write_text(json.dumps(pages, indent=1), encoding="utf-8")


def setup(app: Any) -> dict[str, Any]:
    """Register the setting and the event handlers."""
    app.add_config_value("medvit_gather_last", [], "env")
    app.connect("builder-inited", _builder_inited)
    app.connect("env-before-read-docs", _reorder)
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
