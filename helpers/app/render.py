"""What the app shows and exports: the model card panel, one file's result, the batch table and its CSV.

Everything is built from a :class:`~helpers.cards.ModelCard` and :class:`~helpers.app.core.Result`
objects; every value that came from a file or a card is HTML-escaped, and the CSV travels as a
``data:`` URI (no server route, nothing written to disk). Its text cells are neutralised against
formula injection as OWASP recommends (:func:`csv_safe`): a file named ``=HYPERLINK(...).png``
must not become a live formula in a spreadsheet. Metrics carry plain names (:data:`METRIC_NAMES`),
and a model whose test predictions are no better than chance says so in the menu and on its card
(:func:`chance_warning`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import config
from ..cards import ModelCard
from ..checkpoints import Checkpoint
from .core import Result, constant_by_headline, headline_metric

__all__ = [
    "METRIC_NAMES",
    "metric_name",
    "chance_warning",
    "csv_safe",
    "held_out_summary",
    "card_html",
    "model_label",
    "result_html",
    "batch_table",
    "results_csv",
    "csv_download_html",
    "png_data_uri",
]


#: Plain names of the metric keys a model card carries (:func:`helpers.metrics.headline`).
METRIC_NAMES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "kappa": "Cohen's kappa",
    "macro_f1": "macro F1",
    "error_rate": "error rate",
    "auroc": "AUROC",
    "macro_auroc": "macro AUROC",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "mean_auroc": "mean AUROC over labels",
    "mean_auprc": "mean AUPRC over labels",
    "mean_f1": "mean F1 at 0.5",
    "mean_accuracy": "mean accuracy at 0.5",
    "mean_f1_best": "mean F1 at each label's best threshold",
    "mean_accuracy_best": "mean accuracy at each label's best threshold",
    "valid": "validation split",
    "test": "test split",
}


def metric_name(key: str) -> str:
    """The plain name of a metric key (``balanced_accuracy`` → ``balanced accuracy``)."""
    return METRIC_NAMES.get(key, key.replace("_", " "))


def _fmt_metric(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return ", ".join(f"{html.escape(metric_name(str(k)))} {_fmt_metric(x)}" for k, x in v.items())
    return html.escape(str(v))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _headline(metrics: dict[str, Any]) -> str:
    """One number for the model list (``", test balanced accuracy 0.912"``), from
    :func:`~helpers.app.core.headline_metric`."""
    found = headline_metric(metrics)
    if found is not None:
        split, k, v = found
        return f", {split} {metric_name(k)} {v:.3f}"
    for k, v in metrics.items():
        if _is_number(v):
            return f", {metric_name(k)} {v:.3f}"
    return ""


def chance_warning(card: ModelCard) -> str | None:
    """Why the model is no better than chance on its test split, or ``None`` when it is (or was not checked).

    The card's ``chance`` (:func:`helpers.chance.chance_check`) decides; a card written before
    that check is judged by its test metrics: Cohen's kappa 0 with balanced accuracy ``1/K`` is
    what a model that gives every image the same class scores.
    """
    c = card.chance
    if card.no_better_than_chance:
        if c.get("constant"):
            why = "it gives every test image the same answer"
        else:
            why = (
                f"its test {metric_name(str(c.get('metric', '?')))} {c.get('value', float('nan')):.3f} is within what "
                f"chance gives on its test split (up to {c.get('chance_high', float('nan')):.3f} in "
                f"{c.get('n_perm', '?')} label shuffles; chance level {c.get('chance', float('nan')):.3f})"
            )
        return f"no better than chance: {why}"
    if card.no_better_than_chance is None and constant_by_headline(card):
        return (
            "no better than chance: its test Cohen's kappa is 0 and its balanced accuracy "
            f"1/{len(card.classes)}, as for a model that gives every image the same answer"
        )
    return None


def _chance_row(card: ModelCard) -> str:
    """The card's chance check in one line."""
    c = card.chance
    if card.no_better_than_chance is None:
        return "not checked (the card holds no chance check)" + (" — see the warning" if chance_warning(card) else "")
    verdict = "no better than chance" if card.no_better_than_chance else "better than chance"
    return (
        f"{verdict}: test {metric_name(str(c.get('metric', '?')))} {c.get('value', float('nan')):.3f}; chance "
        f"{c.get('chance', float('nan')):.3f}, up to {c.get('chance_high', float('nan')):.3f} in "
        f"{c.get('n_perm', '?')} label shuffles of its {c.get('n', '?')} test images"
    )


def model_label(entry: Checkpoint) -> str:
    """How a checkpoint is named in the model list: architecture, data, profile, headline metric, run;
    a model no better than chance begins with a warning."""
    c = entry.card
    flag = "⚠ NO BETTER THAN CHANCE · " if chance_warning(c) else ""
    run = c.run_id or entry.folder.name
    return f"{flag}{c.architecture} on {c.dataset} ({c.profile}{_headline(c.metrics)}) — {run}"


def _warning(card: ModelCard) -> str:
    parts = []
    if card.untrained or card.synthetic:
        what = "Untrained" if card.untrained else "Trained on synthetic stand-in data"
        parts.append(f"<b>{what}:</b> its predictions show how the app works and mean nothing about real images.")
    chance = chance_warning(card)
    if chance:
        parts.append(
            f"<b>{html.escape(chance[0].upper() + chance[1:])}.</b> Its answers say nothing about an image; "
            "use another model."
        )
    return "".join(f"<p class='medvit-warning' style='color:#b00'>{p}</p>" for p in parts)


def _num(v: Any) -> float | None:
    return float(v) if _is_number(v) and not math.isnan(float(v)) else None


def held_out_summary(card: ModelCard) -> str:
    """The card's headline test metric with its 95 % interval and the number of test images, in words
    (what is missing is said: older cards kept no interval or count)."""
    found = headline_metric(card.metrics)
    if found is None:
        return "no held-out metric recorded"
    split, key, value = found
    ci = (card.metrics.get("test_ci") or {}).get(key) or {} if split == "test" else {}
    low, high = _num(ci.get("low")), _num(ci.get("high"))
    interval = (
        f" (95 % interval {low:.3f}–{high:.3f})" if low is not None and high is not None else " (no interval recorded)"
    )
    n = (card.metrics.get("n") or {}).get(split)
    images = (
        f"on {int(n):,} {METRIC_NAMES.get(split, split).replace(' split', '')} images"
        if _is_number(n)
        else "number of images not recorded"
    )
    return f"{metric_name(split)}: {metric_name(key)} {value:.3f}{interval}, {images}"


def _threshold_rule(card: ModelCard) -> str | None:
    """How the card's findings are marked present, in words (multi-label only)."""
    if card.task != "multilabel":
        return None
    rule = card.threshold_rule
    if not rule:
        return (
            "each finding's F1-optimal point on the validation split (an older card: on rare findings such a "
            "point marks almost every image)"
            if card.thresholds
            else "0.5 for every finding"
        )
    none = [c for c in card.classes if c not in card.thresholds]
    spec = float(rule.get("specificity", float("nan")))
    text = (
        f"a finding is marked present when its probability reaches the level that {spec:.0%} of the validation "
        f"images without it stay below (specificity {spec:.2f} on the validation split)"
    )
    if none:
        text += (
            f"; {len(none)} finding(s) have no threshold, having fewer than {rule.get('min_positives', '?')} "
            f"validation images with them, and are never marked: {', '.join(none)}"
        )
    return text


def _trained_on(card: ModelCard) -> str:
    """The dataset, its source and, where the card keeps them, the training images and patients."""
    text = f"{card.dataset} (source: {card.data_source}"
    n = card.training_images
    if "images" in n:
        text += f"; {n['images']:,} training images" + (f" of {n['patients']:,} patients" if "patients" in n else "")
    return text + ")"


def card_html(card: ModelCard, folder: str | os.PathLike | None = None, heatmap: str | None = None) -> str:
    """The model card as an HTML panel: architecture, classes, data and source, profile, metrics.

    Args:
        card: the model card.
        folder: the checkpoint folder, shown when given.
        heatmap: how its heatmaps are made, or why it has none (shown when given).
    """
    metric_rows = "".join(
        f"<tr><td>{html.escape(metric_name(str(k)))}</td><td>{_fmt_metric(v)}</td></tr>"
        for k, v in card.metrics.items()
        if k not in ("test_ci", "n")
    )
    rows = [
        ("architecture", html.escape(card.architecture)),
        ("task", f"{html.escape(card.task)}, {len(card.classes)} classes"),
        ("classes", html.escape(", ".join(card.classes))),
        ("input", f"{card.input_size}&times;{card.input_size} px, {card.in_chans} channel(s)"),
        ("normalisation", f"mean {[round(m, 3) for m in card.mean]}, std {[round(x, 3) for x in card.std]}"),
        ("trained on", html.escape(_trained_on(card))),
        ("profile", html.escape(card.profile)),
        ("created", html.escape(card.created)),
        ("run", html.escape(card.run_id or "?")),
    ]
    if card.preprocess:
        rows.insert(4, ("preprocessing", html.escape(card.preprocess)))
    if card.pretrained_init is not None:
        start = (card.pretrained_source or "pretrained (source not recorded)") if card.pretrained_init else "random"
        rows.insert(1, ("initial weights", html.escape(start)))
    if card.input_rule:
        rows.insert(
            4, ("input cut as", html.escape(f"{card.input_rule}; grey" if card.in_chans == 1 else card.input_rule))
        )
    rows.insert(0, ("held-out result", f"<span class='medvit-test'>{html.escape(held_out_summary(card))}</span>"))
    rule = _threshold_rule(card)
    if rule is not None:
        rows.append(("findings marked", html.escape(rule)))
    if heatmap is not None:
        rows.append(("heatmap", html.escape(heatmap)))
    rows.append(("against chance", html.escape(_chance_row(card))))
    if folder is not None:
        rows.append(("folder", html.escape(config.shown_path(folder))))
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f"<div class='medvit-card'><h4 style='margin:0.2em 0'>Model card</h4>{_warning(card)}<table>{body}</table>"
        "<b>Reported metrics</b> (on the held-out splits of its training data)"
        f"<table>{metric_rows or '<tr><td colspan=2>no metrics recorded</td></tr>'}</table></div>"
    )


def batch_table(results: Sequence[Result], card: ModelCard | None = None, per_class: bool = True) -> Any:
    """One row per file: prediction, its probability, every class probability (unless ``per_class`` is
    False: a table for a page's width; the CSV keeps them), timing, notes, warnings, error."""
    import pandas as pd

    rows = []
    for r in results:
        row: dict[str, Any] = {"file": r.name, "prediction": r.label, "probability": None}
        if r.headline is not None:  # the probability of the predicted class (multi-label: the first finding named)
            row["probability"] = round(r.headline[1], 4)
        for c, p in r.probabilities.items() if per_class else ():
            row[f"p({c})"] = round(p, 4)
        row["seconds"] = round(r.seconds.get("total", float("nan")), 3)
        row["notes"] = "; ".join(r.notes)
        row["warnings"] = " ".join(r.warnings)
        row["error"] = r.error or ""
        if card is not None:
            row["model"] = card.architecture
            row["run"] = card.run_id or "?"
        rows.append(row)
    return pd.DataFrame(rows)


#: What a spreadsheet may read as the start of a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell that a spreadsheet cannot take for a formula: one that begins with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return gets a leading single quote (OWASP's advice); other
    values are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def results_csv(results: Sequence[Result], card: ModelCard | None = None) -> str:
    """The batch table as CSV text (what the download link holds).

    Text cells and headers go through :func:`csv_safe`, and every text cell is quoted (embedded
    quotes doubled), as OWASP recommends against CSV injection.
    """
    from pandas.api.types import is_numeric_dtype

    table = batch_table(results, card)
    table.columns = [csv_safe(str(c)) for c in table.columns]
    for column in table.columns:
        if not is_numeric_dtype(table[column]):
            table[column] = table[column].map(csv_safe)
    return table.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC)


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


def _answer(r: Result) -> str:
    """The headline: the predicted class (multi-label: the findings marked present) and the probability
    of the class it names first, or, for a multi-label model, that no finding reached its threshold."""
    prediction = f"<span class='medvit-prediction'>{html.escape(str(r.label))}</span>"
    top = r.headline
    if top is None:
        return f"{prediction} <span class='medvit-clear'>(no finding above its threshold)</span>"
    named = f"{html.escape(top[0])} " if r.multilabel else ""
    return f"{prediction} <span class='medvit-probability'>({named}{top[1]:.3f})</span>"


def _finding_cells(r: Result, label: str, p: float) -> str:
    """A finding's row cells beside its probability: present or not, its threshold and where it comes
    from, and its test AUROC with the interval (from the card)."""
    t, facts = r.threshold(label), r.findings.get(label, {})
    if t is None:
        cut = f"no threshold: {facts.get('why_none', 'the card gives none')}"
    else:
        spec = _num(facts.get("test_specificity"))
        cut = f"threshold {t:.3f}" + (f" (test specificity {spec:.2f})" if spec is not None else "")
    auc, low, high = (_num(facts.get(k)) for k in ("auroc", "auroc_low", "auroc_high"))
    if auc is None:
        auroc = "AUROC not measured" if facts else ""
    else:
        ci = f" ({low:.2f}–{high:.2f})" if low is not None and high is not None else ""
        auroc = (
            f"AUROC {auc:.2f}{ci}, {facts.get('test_positives', '?')} of {facts.get('test_n', '?')} test images have it"
        )
    present = "present" if t is not None and p >= t else ""
    return (
        f"<td style='text-align:right'><b>{present}</b></td><td style='font-size:smaller'>{html.escape(cut)}</td>"
        f"<td class='medvit-auroc' style='font-size:smaller'>{html.escape(auroc)}</td>"
    )


def result_html(r: Result, k: int = 3) -> str:
    """One file's result as HTML: thumbnail, heatmap, probabilities (all labels for multi-label), notes, time."""
    if not r.ok:
        return _error_html(r)
    ranked = r.top(None if r.multilabel else k)
    rule = "each at or above its threshold, chosen on validation images" if r.thresholds else "≥ 0.5"
    what = (
        f"findings (independent sigmoids; {rule} counts as present)" if r.multilabel else f"top {len(ranked)} classes"
    )
    rows = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{_bar(p)}</td><td style='text-align:right'>{p:.3f}</td>"
        f"{_finding_cells(r, c, p) if r.multilabel else ''}</tr>"
        for c, p in ranked
    )
    imgs = ""
    if r.thumbnail is not None:
        imgs += _figure("medvit-thumb", r.thumbnail, "what the model saw")
    if r.overlay is not None:
        imgs += _figure("medvit-heatmap", r.overlay, f"heatmap: {html.escape(r.heatmap_method or '')}")
    elif r.heatmap_note:
        imgs += (
            "<p class='medvit-noheatmap' style='width:192px;margin:0 0.6em 0 0;font-size:smaller'>"
            f"{html.escape(r.heatmap_note)}</p>"
        )
    timing = ", ".join(f"{step} {v * 1000:.0f} ms" for step, v in r.seconds.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
    warnings = "".join(
        f"<p class='medvit-ood' style='color:#b00;margin:0.2em 0'><b>⚠ {html.escape(w)}</b></p>" for w in r.warnings
    )
    return (
        "<div class='medvit-result' style='border-left:4px solid #3b7dd8;padding:0.3em 0.6em;margin:0.4em 0'>"
        f"<b>{html.escape(r.name)}</b> → {_answer(r)}{warnings}"
        f"<div style='display:flex;align-items:flex-start;flex-wrap:wrap'>{imgs}"
        f"<div><i>{what}</i><table>{rows}</table><small>{timing}</small>"
        f"<ul style='font-size:smaller'>{notes}</ul></div></div></div>"
    )
