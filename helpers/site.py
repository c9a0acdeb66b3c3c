"""The book online: where GitHub Pages serves it, the link check's settings, a failed build explained.

Everything here derives from ``repository.url`` in ``_config.yml`` (see
:func:`helpers.chapter.repository_url`), the one place the repository URL is written.

* :func:`pages_url` is where the book appears once the ``book`` workflow (or ``make publish``)
  has published it: ``https://<owner>.github.io/<repo>/``.
* :func:`write_unexecuted_config` writes the book's configuration with notebook execution off, for
  the builds that check the text rather than run it: ``make linkcheck`` (links live in the text) and
  the strict build of ``make test`` (markup, references and citations, warnings as errors; nbval
  runs every chapter in the same ``make test``, so running them again there would only double its
  time). :func:`require_online` makes the link check fail at once, with a message, where the
  internet cannot be reached.
* :func:`build_book` is ``make book``: it runs ``jupyter-book build`` (its output shown and kept in a
  log), lets every page execute and the whole HTML be written although a cell fails (a failed page
  shows its error; :mod:`helpers.bookbuild` records it in the build's ``failures.json``), and then
  returns non-zero naming each failed page and cell (:func:`recorded_failures`).
* :func:`build_failures` reads the log of a failed build and names the cell that failed:
  its notebook, the statement and the exception (for a claim, the ``assert`` and its message).
  :func:`report` prints them last, where they are seen, and as GitHub annotations under Actions.

``python -m helpers site url | online | unexecuted-config DEST | build SRC LOG | failures LOG`` runs
each from the Makefile.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from . import config
from .chapter import repository_url

__all__ = [
    "OfflineError",
    "BuildFailure",
    "pages_url",
    "workflow_badge",
    "require_online",
    "write_unexecuted_config",
    "stage_executed_book",
    "build_failures",
    "recorded_failures",
    "traceback_statement",
    "build_book",
    "report",
]


class OfflineError(RuntimeError):
    """The internet cannot be reached (or ``MEDVIT_OFFLINE`` is set) for a step that needs it."""


def _owner_repo(url: str) -> tuple[str, str]:
    parts = urlparse(url)
    path = [p for p in parts.path.strip("/").removesuffix(".git").split("/") if p]
    if parts.netloc.lower() not in ("github.com", "www.github.com") or len(path) != 2:
        raise ValueError(f"{url!r} is not a GitHub repository URL (https://github.com/<owner>/<repo>)")
    return path[0], path[1]


def pages_url(url: str | None = None) -> str:
    """Where GitHub Pages serves the book built from the repository at ``url`` (default: ``_config.yml``'s).

    ``https://github.com/Owner/repo`` gives ``https://owner.github.io/repo/``; a repository named
    ``<owner>.github.io`` is served at the root, ``https://owner.github.io/``.

    Raises:
        ValueError: for a URL that is not a GitHub repository's.
    """
    owner, repo = _owner_repo(url or repository_url())
    host = f"{owner.lower()}.github.io"
    return f"https://{host}/" if repo.lower() == host else f"https://{host}/{repo}/"


def workflow_badge(workflow: str, url: str | None = None) -> str:
    """The Markdown status badge of ``.github/workflows/<workflow>``, linked to its runs."""
    base = (url or repository_url()).rstrip("/")
    name = Path(workflow).stem
    runs = f"{base}/actions/workflows/{workflow}"
    return f"[![{name}]({runs}/badge.svg)]({runs})"


def require_online(host: str | None = None, timeout: float = 5.0) -> str:
    """Check that ``host`` (default: the repository's host) answers on port 443; returns the host.

    Raises:
        OfflineError: when ``MEDVIT_OFFLINE`` is set or no connection can be made, with what to do.
    """
    host = host or urlparse(repository_url()).netloc
    from .data.download import offline

    advice = "the link check needs the internet: run `make linkcheck` where it is reachable (the book workflow does)"
    if offline():
        raise OfflineError(f"MEDVIT_OFFLINE is set; {advice}")
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return host
    except OSError as exc:
        raise OfflineError(f"{host} cannot be reached ({type(exc).__name__}: {exc}); {advice}") from exc


def write_unexecuted_config(dest: str | Path, source: str | Path | None = None) -> Path:
    """Write ``source`` (default: the book's ``_config.yml``) to ``dest`` with notebook execution off.

    Everything else, ``linkcheck_ignore`` included, stays as the book has it.

    Raises:
        FileNotFoundError: when ``source`` does not exist.
    """
    import yaml

    source = Path(source) if source is not None else config.repo_root() / "_config.yml"
    if not source.is_file():
        raise FileNotFoundError(f"no book configuration at {source}")
    cfg = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    cfg.setdefault("execute", {})["execute_notebooks"] = "off"
    # unexecuted notebooks hold no glued values: their {glue:text} roles are left empty, not errors
    sphinx = cfg.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["suppress_warnings"] = [*sphinx.get("suppress_warnings", []), "mystnb.glue"]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


#: The folders a staged copy of the book needs: its pages, and the package whose code they include.
STAGED_FOLDERS = ("book", "helpers", "_static")


def stage_executed_book(executed: str | Path, dest: str | Path, root: str | Path | None = None) -> Path:
    """Lay out at ``dest`` a copy of the book at ``root`` whose notebooks are those under ``executed``.

    Every file the book is built from (``_toc.yml``, :data:`STAGED_FOLDERS`) is copied; each notebook found under
    ``executed`` at the same relative path replaces its source; ``_config.yml`` is written with
    execution off (:func:`write_unexecuted_config`). Returns ``dest``.

    Raises:
        FileNotFoundError: when ``executed`` holds no notebook, or a notebook of the book's table of
            contents has no executed copy (a chapter that nbval did not run cannot be checked).
    """
    import shutil

    from .sources import toc_chapters

    root = Path(root) if root is not None else config.repo_root()
    executed, dest = Path(executed), Path(dest)
    ran = sorted(p.relative_to(executed) for p in executed.rglob("*.ipynb")) if executed.is_dir() else []
    if not ran:
        raise FileNotFoundError(f"no executed notebooks under {executed}: run the chapters with nbval first")
    missing = [c for c in toc_chapters(root / "_toc.yml") if Path(f"{c}.ipynb") not in ran]
    if missing:
        raise FileNotFoundError(f"chapters with no executed copy under {executed}: {', '.join(missing)}")
    if dest.exists():
        shutil.rmtree(dest)
    skip = shutil.ignore_patterns("_build", ".ipynb_checkpoints", "__pycache__")
    for folder in STAGED_FOLDERS:  # the pages, and the code they show with literalinclude
        if (root / folder).is_dir():
            shutil.copytree(root / folder, dest / folder, ignore=skip)
    shutil.copy2(root / "_toc.yml", dest / "_toc.yml")
    for rel in ran:
        if (dest / rel).parent.is_dir():
            shutil.copy2(executed / rel, dest / rel)
    write_unexecuted_config(dest / "_config.yml", root / "_config.yml")
    return dest


@dataclass(frozen=True)
class BuildFailure:
    """One cell that failed while the book was built.

    Attributes:
        notebook: the chapter, relative to the repository root where it lies inside it.
        statement: the cell's line that raised (``assert acc > 0.9, ...``), or ``""``.
        error: the exception's last line (``AssertionError: accuracy 0.5 is not above 0.9``).
        cell: the failing cell's number, counting every cell of the notebook from 1 (None: not known).
    """

    notebook: str
    statement: str
    error: str
    cell: int | None = None

    @property
    def is_claim(self) -> bool:
        """Whether a claim failed: an ``AssertionError``, as every claim of the book is an ``assert``."""
        return self.error.split(":", 1)[0].strip().endswith("AssertionError")


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_ERROR = "CellExecutionError: An error occurred while executing the following cell:"
_EXECUTING = re.compile(r"^(\S+\.(?:ipynb|md)): Executing notebook", re.M)
_EXECUTION_ERROR = re.compile(r"ExecutionError: (\S+\.(?:ipynb|md))")
_ARROW = re.compile(r"^-+>\s*\d+\s(.*)$")
_OUTSIDE_CELL = re.compile(r"\b(?:CellTimeoutError|DeadKernelError): [^\n]*")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))(:.*)?$")


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(config.repo_root()))
    except ValueError:
        return path


def _notebook_before(log: str, pos: int) -> str:
    executing = [m.group(1) for m in _EXECUTING.finditer(log, 0, pos)]
    if executing:
        return executing[-1]
    named = _EXECUTION_ERROR.search(log, pos) or _EXECUTION_ERROR.search(log)
    return named.group(1) if named else "(a notebook)"


def traceback_statement(traceback: str) -> str:
    """The line of a cell that a traceback points at (``----> 2 x = 1 / 0`` gives ``x = 1 / 0``), or ``""``."""
    lines = _ANSI.sub("", traceback).splitlines()
    return next((m.group(1).strip() for line in lines if (m := _ARROW.match(line.rstrip()))), "")


def _cell_failure(block: str) -> tuple[str, str]:
    """The failing statement and the exception line of one ``CellExecutionError`` block."""
    lines = [line.rstrip() for line in block.splitlines()]
    statement = traceback_statement(block)
    end = next((i for i, line in enumerate(lines) if line.startswith("The above exception")), len(lines))
    errors = [line for line in lines[:end] if _EXCEPTION.match(line)]
    return statement, (errors[-1] if errors else "")


def build_failures(log: str) -> list[BuildFailure]:
    """The failed cells a ``jupyter-book build`` log reports, in order (colour codes are ignored).

    A notebook that failed outside a cell (a timeout, a dead kernel) is reported with the error
    the log gives for it; a log without any of these gives an empty list.
    """
    log = _ANSI.sub("", log)
    starts = [m.start() for m in re.finditer(re.escape(_CELL_ERROR), log)]
    failures = []
    for i, start in enumerate(starts):
        block = log[start + len(_CELL_ERROR) : starts[i + 1] if i + 1 < len(starts) else len(log)]
        statement, error = _cell_failure(block)
        notebook = _relative(_notebook_before(log, start))
        failures.append(BuildFailure(notebook, statement, error or "the cell raised (see the log above)"))
    if not failures:
        outside = _OUTSIDE_CELL.search(log)
        error = outside.group(0).strip() if outside else "the notebook could not be executed (see the log above)"
        for m in _EXECUTION_ERROR.finditer(log):
            nb = _relative(m.group(1))
            if all(f.notebook != nb for f in failures):
                failures.append(BuildFailure(nb, "", error))
    return failures


def _escape(text: str, prop: bool = False) -> str:
    """``text`` escaped for a workflow command's message (or, with ``prop``, for a property value)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def report(failures: list[BuildFailure], github: bool | None = None) -> str:
    """The failures as lines to print; GitHub Actions annotations when ``github`` (default: under Actions)."""
    if github is None:
        github = os.environ.get("GITHUB_ACTIONS") == "true"
    if not failures:
        msg = "The book build failed outside the chapters' cells: see the log above."
        return f"::error title=Book build failed::{msg}" if github else msg
    lines = []
    for f in failures:
        kind = "A claim failed" if f.is_claim else "A cell failed"
        where = f" at `{f.statement}`" if f.statement else ""
        cell = f", cell {f.cell}" if f.cell else ""
        if github:
            props = f"file={_escape(f.notebook, True)},title={_escape(f'{kind} in {f.notebook}{cell}', True)}"
            lines.append(f"::error {props}::{_escape(f.error + where)}")
        else:
            lines.append(f"{kind} in {f.notebook}{cell}{where}:\n    {f.error}")
    return "\n".join(lines)


def recorded_failures(build: str | None = None) -> list[BuildFailure]:
    """The pages of a book build (default: ``MEDVIT_BUILD``'s) that did not run to the end, in reading order.

    :mod:`helpers.bookbuild` writes them to the build's ``failures.json`` as each page is read.
    """
    from .bookbuild import FAILURES_FILE
    from .claims import build_dir

    path = build_dir(build) / FAILURES_FILE
    pages = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return [BuildFailure(p["notebook"], p["statement"], p["error"], p.get("cell")) for p in pages.values()]


def _run_logged(command: list[str], log: Path) -> int:
    """Run ``command``, its output shown as it comes and written to ``log``; its exit status.

    Interrupted (Ctrl-C, which the command receives too), it waits for the command to stop and
    returns 130: what was built stays where it is.
    """
    import subprocess
    import sys

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        try:
            for line in proc.stdout or ():
                sys.stdout.write(line)
                sys.stdout.flush()
                out.write(line)
            return proc.wait()
        except KeyboardInterrupt:
            proc.wait()
            return 130


def build_book(source: str | Path = ".", log: str | Path = "_build/book.log", args: tuple[str, ...] = ()) -> int:
    """Build the book at ``source`` as ``make book`` does; 0 only when every page ran to the end.

    ``jupyter-book build`` executes every page; its output is shown and written to ``log``. A page
    whose cell fails is still rendered (the error under the cell) and the rest of the book is built;
    the failed pages and cells are then printed, last, and the result is 1. When the build itself
    fails (no HTML), the failures its log names are printed instead; interrupted, it names the pages
    that failed so far and returns 130. Nothing built is removed.
    """
    import sys

    if not os.environ.get("MEDVIT_BUILD", "").strip():  # the id under which the pages record failures
        os.environ["MEDVIT_BUILD"] = "book-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    jb = Path(sys.executable).with_name("jupyter-book")
    command = [str(jb) if jb.is_file() else "jupyter-book", "build", str(source), "--builder", "html", *args]
    code = _run_logged(command, Path(log))
    failures = recorded_failures()
    if code not in (0, 130):
        logged = build_failures(Path(log).read_text(encoding="utf-8", errors="replace"))
        failures += [f for f in logged if all(f.notebook != g.notebook for g in failures)]
    if code == 0 and not failures:
        return 0
    if code == 130:
        print("\nThe book build was interrupted; nothing it built is removed.", flush=True)
    else:
        pages = f"{len(failures)} page(s) did not run to the end" if failures else "the build failed"
        print(f"\nThe book: {pages}" + ("; the other pages are built." if code == 0 else "."), flush=True)
    if failures or code != 130:
        print(report(failures), flush=True)
    return 130 if code == 130 else 1
