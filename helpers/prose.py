"""Numbers from this build in a page's prose.

A sentence such as "the ResNet trained on 280 images" is true of one data root only. A chapter states such a
number through :func:`glue`, in the cell that computes it, and its text reads it back with MyST-NB's role,
``{glue:text}`name:,d```: the page then shows the number this build measured, whatever root it ran on.
Numbers from runs recorded earlier stay in the text inside a box that names their data and date, classed
``recorded`` (a MyST ``admonition`` with ``:class: note recorded``).

:data:`RESULT_PHRASES` lists, per chapter, the phrases whose number comes from the run;
:func:`unglued_numbers` finds such a number in a built page's text that was neither pasted from the build
nor put in a recorded box (``tests/test_pages.py`` runs it over the strict build).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["glue", "RESULT_PHRASES", "RECORDED_CLASS", "unglued_numbers"]

#: The class of a box that holds numbers from runs recorded earlier, not from this build.
RECORDED_CLASS = "recorded"

_N = r"(?<![\w.])\d[\d,]*(?:\.\d+)?"
#: Per chapter page (its file name without extension): phrases whose number (``N``) must come from the build.
RESULT_PHRASES: dict[str, tuple[str, ...]] = {
    "blood_cells": (rf"{_N} training images, {_N} held out", rf"the shared {_N}-image"),
    "lungs": (rf"{_N} training images of nih_64px", rf"about the sample's {_N}"),
    "mammography": (rf"{_N} (?:training|test) crops", rf"on all {_N} films", rf"{_N} crops per fold"),
    "cnn_baselines": (rf"AUROCs on {_N} test images",),
    "vision_transformer": (rf"all {_N} of the", rf"on {_N} training\s+images"),
    "pose_estimation": (rf"{_N} filmed poses",),
}


def glue(name: str, value: Any) -> Any:
    """Store ``value`` under ``name`` in this cell's output for MyST-NB's ``{glue:text}`name```, shown nowhere
    else; returns ``value``. The output is MyST-NB's own layout (a ``scrapbook`` record), written with IPython
    alone so that a chapter run without the book's tools (Colab) still runs."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    bundle, metadata = format_display_data(value)
    prefix = "application/papermill.record/"
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
    return value


def _prose(soup: Any) -> Any:
    """A copy of a page's article with code, outputs and recorded boxes removed and pasted numbers masked."""
    import copy

    article = copy.copy(soup.select_one("article") or soup)
    for node in article.select(f".cell_input, .cell_output, div.highlight, .{RECORDED_CLASS}, .math"):
        node.decompose()
    for node in article.select(".pasted-text, .pasted-inline"):
        node.replace_with("#")
    return article


def unglued_numbers(soup: Any, chapter: str) -> list[str]:
    """The sentences of a built page (a BeautifulSoup) where one of ``chapter``'s :data:`RESULT_PHRASES`
    carries a number typed into the text rather than pasted from the build or kept in a recorded box."""
    phrases = RESULT_PHRASES.get(chapter, ())
    if not phrases:
        return []
    text = re.sub(r"\s+", " ", _prose(soup).get_text(" "))
    found = []
    for phrase in phrases:
        for m in re.finditer(phrase, text):
            dot = text.rfind(". ", 0, m.start())
            start = 0 if dot < 0 else dot + 2
            found.append(text[max(start, m.start() - 80) : m.end() + 40].strip())
    return found
