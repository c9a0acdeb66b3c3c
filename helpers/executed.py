"""The chapters as ``make test`` executed them, kept so that their pages can be checked as a reader sees them.

``make test`` runs every chapter once, cell by cell, with nbval (each cell a test). This module is a
pytest plugin (``-p helpers.executed --executed-dir DIR``) that writes each notebook nbval ran, with
the outputs it produced, to ``DIR/<path under pytest's root folder>`` (the repository in ``make
test``). :func:`helpers.site.stage_executed_book` then lays out a copy of the book made of those
notebooks, with execution off, so the strict build renders their outputs without running anything
a second time; :mod:`helpers.pagecheck` reads the resulting HTML.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["EXECUTED_DIR_OPTION"]

#: The pytest option that turns the plugin on.
EXECUTED_DIR_OPTION = "--executed-dir"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--executed-dir``."""
    parser.addoption(
        EXECUTED_DIR_OPTION,
        default=None,
        help="write every notebook nbval executes, with its outputs, under this folder",
    )


def _is_nbval_cell(item: pytest.Item) -> bool:
    return hasattr(item, "test_outputs") and hasattr(item, "cell") and hasattr(item.parent, "nb")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep the outputs a cell produced on the cell itself, as Jupyter would."""
    yield
    if call.when == "call" and _is_nbval_cell(item) and item.test_outputs is not None:
        parent = item.parent
        parent._medvit_count = getattr(parent, "_medvit_count", 0) + 1
        item.cell.outputs = list(item.test_outputs)
        item.cell.execution_count = parent._medvit_count
        for out in item.cell.outputs:
            if "execution_count" in out:
                out["execution_count"] = parent._medvit_count


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a notebook's last cell, write the notebook with its outputs under ``--executed-dir``."""
    folder = item.config.getoption(EXECUTED_DIR_OPTION)
    if not folder or not _is_nbval_cell(item) or (nextitem is not None and nextitem.parent is item.parent):
        return
    import nbformat

    source = Path(str(item.parent.fspath)).resolve()
    try:
        relative = source.relative_to(item.config.rootpath.resolve())
    except ValueError:
        relative = Path(source.name)
    dest = Path(folder) / relative
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(item.parent.nb, str(dest))
