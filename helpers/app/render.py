"""What the app shows and exports: the model card panel, one file's result, the batch table and its CSV.

Everything is built from a :class:`~helpers.cards.ModelCard` and :class:`~helpers.app.core.Result`
objects; every value that came from a file or a card is HTML-escaped, and the CSV travels as a
``data:`` URI (no server route, nothing written to disk).
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..cards import ModelCard
from ..checkpoints import Checkpoint
from .core import Result

__all__ = [
    "card_html",
    "model_label",
    "result_html",
    "batch_table",
    "results_csv",
    "csv_download_html",
    "png_data_uri",
]


def _fmt_metric(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt_metric(x)}" for k, x in v.items())
    return html.escape(str(v))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _headline(metrics: dict[str, Any]) -> str:
    """One number for the model list: the first test metric, else the first metric (``", test accuracy 0.912"``)."""
    for split in ("test", "valid"):
        values = metrics.get(split)
        if isinstance(values, dict):
            for k, v in values.items():
                if _is_number(v):
                    return f", {split} {k} {v:.3f}"
    for k, v in metrics.items():
        if _is_number(v):
            return f", {k} {v:.3f}"
    return ""


def model_label(entry: Checkpoint) -> str:
    """How a checkpoint is named in the model list: architecture, data, profile, headline metric, run."""
    c = entry.card
    return f"{c.architecture} on {c.dataset} ({c.profile}{_headline(c.metrics)}) — {c.run_id or entry.folder.name}"


def _warning(card: ModelCard) -> str:
    if not (card.untrained or card.synthetic):
        return ""
    what = "Untrained" if card.untrained else "Trained on synthetic stand-in data"
    return (
        f"<p class='medvit-warning' style='color:#b00'><b>{what}:</b> "
        "its predictions show how the app works and mean nothing about real images.</p>"
    )


def card_html(card: ModelCard, folder: str | os.PathLike | None = None) -> str:
    """The model card as an HTML panel: architecture, classes, data and source, profile, metrics."""
    metric_rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{_fmt_metric(v)}</td></tr>" for k, v in card.metrics.items()
    )
    rows = [
        ("architecture", html.escape(card.architecture)),
        ("task", f"{html.escape(card.task)}, {len(card.classes)} classes"),
        ("classes", html.escape(", ".join(card.classes))),
        ("input", f"{card.input_size}&times;{card.input_size} px, {card.in_chans} channel(s)"),
        ("normalisation", f"mean {[round(m, 3) for m in card.mean]}, std {[round(x, 3) for x in card.std]}"),
        ("trained on", f"{html.escape(card.dataset)} (source: {html.escape(card.data_source)})"),
        ("profile", html.escape(card.profile)),
        ("created", html.escape(card.created)),
        ("run", html.escape(card.run_id or "?")),
    ]
    if card.preprocess:
        rows.insert(4, ("preprocessing", html.escape(card.preprocess)))
    if folder is not None:
        rows.append(("folder", html.escape(str(folder))))
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f"<div class='medvit-card'><h4 style='margin:0.2em 0'>Model card</h4>{_warning(card)}<table>{body}</table>"
        "<b>Reported metrics</b> (on the held-out splits of its training data)"
        f"<table>{metric_rows or '<tr><td colspan=2>no metrics recorded</td></tr>'}</table></div>"
    )


def batch_table(results: Sequence[Result], card: ModelCard | None = None) -> Any:
    """One row per file: prediction, its probability, every class probability, timing, notes, error."""
    import pandas as pd

    rows = []
    for r in results:
        row: dict[str, Any] = {"file": r.name, "prediction": r.label, "probability": None}
        if r.ok and r.probabilities:
            row["probability"] = round(max(r.probabilities.values()), 4)
        for c, p in r.probabilities.items():
            row[f"p({c})"] = round(p, 4)
        row["seconds"] = round(r.seconds.get("total", float("nan")), 3)
        row["notes"] = "; ".join(r.notes)
        row["error"] = r.error or ""
        if card is not None:
            row["model"] = card.architecture
            row["run"] = card.run_id or "?"
        rows.append(row)
    return pd.DataFrame(rows)


def results_csv(results: Sequence[Result], card: ModelCard | None = None) -> str:
    """The batch table as CSV text (what the download link holds)."""
    return batch_table(results, card).to_csv(index=False)


def csv_download_html(
    results: Sequence[Result], card: ModelCard | None = None, filename: str = "classifications.csv"
) -> str:
    """An HTML link that downloads the results as CSV (a ``data:`` URI: it works without a server route)."""
    payload = base64.b64encode(results_csv(results, card).encode("utf-8")).decode("ascii")
    return (
        f"<a class='medvit-csv' download='{html.escape(filename)}' href='data:text/csv;base64,{payload}'>"
        f"Download the results of {len(results)} file(s) as CSV</a>"
    )


def png_data_uri(image: np.ndarray) -> str:
    """A ``uint8`` image as a PNG ``data:`` URI."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _bar(p: float) -> str:
    return (
        "<div style='display:inline-block;width:120px;height:0.8em;background:#eee;vertical-align:middle'>"
        f"<div style='width:{100 * p:.1f}%;height:100%;background:#3b7dd8'></div></div>"
    )


def _error_html(r: Result) -> str:
    message = r.error or ""
    if message.startswith(r.name + ": "):  # the decoder names the file; the heading already does
        message = message[len(r.name) + 2 :]
    return (
        "<div class='medvit-result medvit-error' style='border-left:4px solid #c00;padding:0.3em 0.6em;margin:0.4em 0'>"
        f"<b>{html.escape(r.name)}</b> was not classified: "
        f"<span class='medvit-message'>{html.escape(message)}</span></div>"
    )


def _figure(cls: str, image: np.ndarray, caption: str) -> str:
    return (
        f"<figure style='margin:0 0.6em 0 0'><img class='{cls}' src='{png_data_uri(image)}' width=192>"
        f"<figcaption>{caption}</figcaption></figure>"
    )


def result_html(r: Result, k: int = 3) -> str:
    """One file's result as HTML: thumbnail, heatmap, probabilities (all labels for multi-label), notes, time."""
    if not r.ok:
        return _error_html(r)
    ranked = r.top(None if r.multilabel else k)
    what = "labels (independent sigmoids; ≥ 0.5 counts as present)" if r.multilabel else f"top {len(ranked)} classes"
    rows = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{_bar(p)}</td><td style='text-align:right'>{p:.3f}</td></tr>"
        for c, p in ranked
    )
    imgs = ""
    if r.thumbnail is not None:
        imgs += _figure("medvit-thumb", r.thumbnail, "what the model saw")
    if r.overlay is not None:
        imgs += _figure("medvit-heatmap", r.overlay, f"heatmap ({html.escape(r.heatmap_method or '')})")
    timing = ", ".join(f"{step} {v * 1000:.0f} ms" for step, v in r.seconds.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
    return (
        "<div class='medvit-result' style='border-left:4px solid #3b7dd8;padding:0.3em 0.6em;margin:0.4em 0'>"
        f"<b>{html.escape(r.name)}</b> → <span class='medvit-prediction'>{html.escape(str(r.label))}</span>"
        f" ({max(r.probabilities.values()):.3f})"
        f"<div style='display:flex;align-items:flex-start;flex-wrap:wrap'>{imgs}"
        f"<div><i>{what}</i><table>{rows}</table><small>{timing}</small>"
        f"<ul style='font-size:smaller'>{notes}</ul></div></div></div>"
    )
