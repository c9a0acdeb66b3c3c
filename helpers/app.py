"""The classifier app: upload images, pick a trained model, read the classes and see where it looked.

This is the book's version of the graphical interface that closes thesis 004 (§3.5): upload a
blood-cell image, choose a network, press *Classify*, read the predicted class and its
probability. It grows that interface to the three tasks of the book (blood cells, chest X-rays,
mammograms), to batches of files with a results table exported as CSV (the thesis's own future
work), to heatmaps of where the model looked, and to hostile input.

Everything here is plain Python that the tests call without a browser; :func:`build_app` wraps it
in ipywidgets, and ``book/tools/app.ipynb`` served by Voila (``make dashboard``) shows it.

The pipeline for one uploaded file (:func:`classify_one`), each step timed:

1. **Size check**: a file over :data:`MAX_FILE_MB` (or a batch over :data:`MAX_UPLOAD_MB`) is
   refused with a message. In the browser a guard (:data:`UPLOAD_GUARD_JS`) keeps such files from
   being sent at all, so an oversized upload cannot break the page's connection.
2. **Decode** with :func:`helpers.imageio.decode_image` (PNG, JPEG, TIFF, PGM, BMP, DICOM with its
   window and photometric interpretation; 16-bit, RGBA, palette and CMYK converted; first frame of
   a multi-frame file; a decompression-bomb limit of :data:`MAX_PIXELS`), forcing the number of
   channels the model was trained with.
3. **Preprocess exactly as in training** (:func:`preprocess`): the decode-once cache's own rule
   (:func:`helpers.data.cache.prepare_image`: pad to a square with black, antialiased bilinear
   resize to the card's input size), then ``x = (u / 255 - mean) / std`` with the training
   split's per-channel statistics recorded in the model card.
4. **Predict**: softmax over the classes, or one sigmoid per label for a multi-label model.
5. **Explain**: a heatmap (Grad-CAM for CNNs, attention rollout for ViTs, through
   :func:`helpers.explain.explain`) laid over the image the model saw.

Any failure of one file becomes that file's message; the batch and the app carry on.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = [
    "AppTask",
    "TASKS",
    "ACCEPT",
    "MAX_FILE_MB",
    "MAX_UPLOAD_MB",
    "MAX_PIXELS",
    "DISCLAIMER",
    "HOW_TO_GET_MODELS",
    "AppError",
    "Upload",
    "Result",
    "websocket_max_message_size",
    "tornado_settings",
    "voila_command",
    "in_voila",
    "task_of",
    "find_models",
    "load_model",
    "card_summary",
    "card_html",
    "as_uploads",
    "check_upload",
    "preprocess",
    "predict_proba",
    "classify_one",
    "classify",
    "results_table",
    "results_csv",
    "csv_download_html",
    "result_html",
    "ClassifierApp",
    "build_app",
    "TASK_CLASSES",
    "make_untrained_checkpoint",
    "find_sample",
]

# ----------------------------------------------------------------------------- tasks and limits


@dataclass(frozen=True)
class AppTask:
    """One task the app offers and the datasets whose models belong to it."""

    key: str
    title: str
    datasets: tuple[str, ...]
    what: str


TASKS: dict[str, AppTask] = {
    "blood": AppTask(
        "blood", "Blood cells", ("pbc", "bloodmnist"),
        "a single peripheral blood cell, cropped as in the PBC dataset (eight normal cell types)",
    ),
    "chest": AppTask(
        "chest", "Chest X-ray", ("nih", "chestxray14", "chestmnist", "pneumoniamnist", "covid", "tb"),
        "a frontal chest radiograph (ChestX-ray14 findings, or pneumonia vs normal)",
    ),
    "mammo": AppTask(
        "mammo", "Mammogram", ("cbis_ddsm", "mias"),
        "a mammogram or a cropped lesion (benign vs malignant, or normal/benign/malignant)",
    ),
}

#: What the upload button offers (anything else is still tried, and refused with a message if it is no image).
ACCEPT = ".png,.jpg,.jpeg,.tif,.tiff,.pgm,.ppm,.pnm,.bmp,.dcm,.dicom"
#: Largest single file the app takes, in MB (10^6 bytes). A 50 MB DICOM mammogram fits.
MAX_FILE_MB = 64
#: Largest total of one upload (all files picked at once), in MB.
MAX_UPLOAD_MB = 128
#: Largest image (pixels of one frame) decoded; above it a file is refused as a possible decompression bomb.
MAX_PIXELS = 8192 * 8192
#: Smallest side, in pixels, of an image the app will classify.
MIN_SIDE = 8

DISCLAIMER = (
    "A teaching tool, not a diagnostic device. The models were trained for a book chapter, on small "
    "or public data, and are reported here with their own test metrics and data source. Do not use "
    "these outputs for any clinical decision."
)

HOW_TO_GET_MODELS = (
    "No trained model for this task was found in {root}. To get one, run the task's chapter "
    "(it saves a checkpoint), or train a small model per task in a few minutes on a CPU with "
    "<code>make app-models</code> (or <code>python -m helpers app-models</code>), then reload this page."
)


class AppError(RuntimeError):
    """A problem the app reports to the user as a message (never as a traceback)."""


def websocket_max_message_size() -> int:
    """Bytes one websocket message may hold so that a full upload (:data:`MAX_UPLOAD_MB`) arrives.

    ipywidgets send uploaded files to the kernel over the kernel websocket; Tornado drops any
    message above its limit (10 MiB by default) and the page loses its connection. The limit is
    the largest upload plus a third (in case the client encodes it as base64) plus 8 MiB of margin.
    """
    return int(MAX_UPLOAD_MB * 1_000_000 * 4 / 3) + 8 * 2**20


def tornado_settings() -> str:
    """The value of ``voila --Voila.tornado_settings=...`` that raises the websocket limit."""
    return json.dumps({"websocket_max_message_size": websocket_max_message_size()})


def voila_command(notebook: str | os.PathLike, port: int = 8866, ip: str = "127.0.0.1", voila: str = "voila") -> list[str]:
    """The command line that serves ``notebook`` on ``ip:port`` with the raised upload limit."""
    return [
        voila, str(notebook), "--no-browser", f"--Voila.ip={ip}", f"--port={port}",
        f"--Voila.tornado_settings={tornado_settings()}",
    ]


def in_voila() -> bool:
    """True when the code runs in a kernel started by Voila (it sets ``VOILA_*`` variables)."""
    return any(k in os.environ for k in ("VOILA_KERNEL_ID", "VOILA_REQUEST_URL", "VOILA_SERVER_URL"))


# ----------------------------------------------------------------------------- checkpoints


def _checkpoints():
    """The training side's checkpoint module (imported late: it pulls in torch and timm)."""
    from . import checkpoints

    return checkpoints


def task_of(card: dict[str, Any]) -> str | None:
    """The app task a model card belongs to: an explicit ``app_task``, else its dataset's task."""
    explicit = card.get("app_task")
    if explicit in TASKS:
        return explicit
    dataset = str(card.get("dataset") or "").lower()
    for key, task in TASKS.items():
        if dataset in task.datasets or any(dataset.startswith(d) for d in task.datasets):
            return key
    return None


def find_models(task: str, root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Checkpoints under ``root`` (default: the runs folder) whose model card belongs to ``task``.

    Each entry is what :func:`helpers.checkpoints.list_checkpoints` returns; newest first.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
    entries = [e for e in _checkpoints().list_checkpoints(root) if task_of(_card_of(e)) == task]
    return sorted(entries, key=lambda e: str(_card_of(e).get("created", "")), reverse=True)


def _card_of(entry: dict[str, Any]) -> dict[str, Any]:
    card = entry.get("card")
    return card if isinstance(card, dict) else entry


def _folder_of(entry: dict[str, Any]) -> Path:
    for key in ("folder", "path", "dir"):
        if entry.get(key):
            return Path(entry[key])
    raise AppError(f"checkpoint entry without a folder: {sorted(entry)}")


def load_model(entry: dict[str, Any] | str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Load a checkpoint (safetensors weights + JSON card; nothing is unpickled) for the CPU.

    Raises:
        AppError: when the folder is incomplete or the card does not match the weights, with the reason.
    """
    folder = _folder_of(entry) if isinstance(entry, dict) else Path(entry)
    try:
        model, card = _checkpoints().load_checkpoint(folder, device="cpu")
    except Exception as exc:  # a broken checkpoint is a message, never a crash of the app
        raise AppError(f"the checkpoint in {folder} cannot be used: {exc}") from exc
    model.eval()
    return model, card


def card_summary(card: dict[str, Any]) -> dict[str, Any]:
    """The card fields the app needs, under one set of names, checked.

    Raises:
        AppError: when the card lacks classes, the input size or the normalisation.
    """
    norm = card.get("normalization") or card.get("normalisation") or {}
    mean = norm.get("mean", card.get("mean")) if isinstance(norm, dict) else None
    std = norm.get("std", card.get("std")) if isinstance(norm, dict) else None
    kwargs = card.get("model_kwargs") or card.get("create_model_kwargs") or {}
    size = card.get("input_size") or card.get("img_size") or card.get("image_size") or kwargs.get("img_size")
    if isinstance(size, (list, tuple)):
        size = size[-1]
    in_chans = card.get("in_chans") or kwargs.get("in_chans") or (len(mean) if mean else None)
    classes = card.get("classes")
    missing = [n for n, v in (("classes", classes), ("input size", size), ("in_chans", in_chans),
                              ("normalisation mean", mean), ("normalisation std", std)) if not v]
    if missing:
        raise AppError(f"the model card lacks {', '.join(missing)}")
    if len(mean) != int(in_chans) or len(std) != int(in_chans):
        raise AppError(f"the model card's normalisation has {len(mean)} channels, the model {in_chans}")
    return {
        "architecture": card.get("architecture") or card.get("model") or "?",
        "classes": list(classes),
        "task": card.get("task", "multiclass"),
        "input_size": int(size),
        "in_chans": int(in_chans),
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "dataset": card.get("dataset", "?"),
        "data_source": card.get("data_source") or card.get("source") or "?",
        "profile": card.get("profile", "?"),
        "metrics": card.get("metrics") or {},
        "created": card.get("created", "?"),
        "run_id": card.get("run_id", "?"),
        "preprocess": card.get("preprocess"),
    }


def _fmt_metric(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt_metric(x)}" for k, x in v.items())
    return html.escape(str(v))


def _headline(metrics: dict[str, Any]) -> str:
    """One number for the model list: the first test metric (else the first metric), e.g. ``", test accuracy 0.912"``."""
    for split in ("test", "valid"):
        values = metrics.get(split)
        if isinstance(values, dict):
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    return f", {split} {k} {v:.3f}"
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return f", {k} {v:.3f}"
    return ""


def card_html(card: dict[str, Any], folder: str | os.PathLike | None = None) -> str:
    """The model card as an HTML panel: architecture, classes, data and source, profile, metrics."""
    s = card_summary(card)
    source = str(s["data_source"])
    warn = ""
    if "synthetic" in source.lower() or "untrained" in source.lower():
        warn = (f"<p class='medvit-warning' style='color:#b00'><b>{'Untrained' if 'untrained' in source.lower() else 'Trained on synthetic stand-in data'}:</b> "
                "its predictions show how the app works and mean nothing about real images.</p>")
    metrics = s["metrics"]
    metric_rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{_fmt_metric(v)}</td></tr>" for k, v in metrics.items()
    ) or "<tr><td colspan=2>no metrics recorded</td></tr>"
    rows = [
        ("architecture", html.escape(str(s["architecture"]))),
        ("task", f"{html.escape(str(s['task']))}, {len(s['classes'])} classes"),
        ("classes", html.escape(", ".join(s["classes"]))),
        ("input", f"{s['input_size']}&times;{s['input_size']} px, {s['in_chans']} channel(s)"),
        ("normalisation", f"mean {[round(m, 3) for m in s['mean']]}, std {[round(x, 3) for x in s['std']]}"),
        ("trained on", f"{html.escape(str(s['dataset']))} (source: {html.escape(source)})"),
        ("profile", html.escape(str(s["profile"]))),
        ("created", html.escape(str(s["created"]))),
        ("run", html.escape(str(s["run_id"]))),
    ]
    if folder is not None:
        rows.append(("folder", html.escape(str(folder))))
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f"<div class='medvit-card'><h4 style='margin:0.2em 0'>Model card</h4>{warn}<table>{body}</table>"
        f"<b>Reported metrics</b> (on the held-out splits of its training data)<table>{metric_rows}</table></div>"
    )


# ----------------------------------------------------------------------------- uploads


@dataclass
class Upload:
    """One uploaded file: its name, the bytes that arrived and the size the browser reported."""

    name: str
    data: bytes
    size: int


def as_uploads(files: Any) -> list[Upload]:
    """Normalise what the caller has into :class:`Upload` objects.

    Accepts the value of an ipywidgets 8 ``FileUpload`` (dicts with ``name``, ``size``,
    ``content``), ``(name, bytes)`` pairs, paths, or a single one of these.
    """
    if files is None:
        return []
    if isinstance(files, (dict, str, os.PathLike, Upload)) or (
        isinstance(files, tuple) and len(files) == 2 and isinstance(files[1], (bytes, bytearray, memoryview))
    ):
        files = [files]
    out: list[Upload] = []
    for f in files:
        if isinstance(f, Upload):
            out.append(f)
        elif isinstance(f, dict):
            data = bytes(f.get("content") or b"")
            out.append(Upload(str(f.get("name", "upload")), data, int(f.get("size", len(data)) or len(data))))
        elif isinstance(f, (str, os.PathLike)):
            p = Path(f)
            data = p.read_bytes() if p.is_file() else b""
            out.append(Upload(p.name, data, len(data)))
        else:
            name, data = f
            data = bytes(data)
            out.append(Upload(str(name), data, len(data)))
    return out


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def check_upload(upload: Upload) -> str | None:
    """A message when ``upload`` is over the size limit or did not arrive whole, else ``None``."""
    limit = MAX_FILE_MB * 1_000_000
    if upload.size > limit or len(upload.data) > limit:
        return (f"{upload.name}: {_mb(max(upload.size, len(upload.data)))} is over the upload limit of "
                f"{MAX_FILE_MB} MB per file, so it was not classified. Reduce the image (or export one "
                "frame) and upload it again.")
    if upload.size and len(upload.data) != upload.size:
        return (f"{upload.name}: only {len(upload.data):,} of {upload.size:,} bytes arrived (an upload "
                f"holds at most {MAX_UPLOAD_MB} MB in all); upload this file on its own.")
    return None


# ----------------------------------------------------------------------------- preprocessing


def _enlarge(image: np.ndarray, side: int) -> np.ndarray:
    """A square ``uint8`` image enlarged (bilinear) to ``side`` pixels, for display only."""
    from PIL import Image

    if image.shape[0] == side:
        return image
    mode = "L" if image.shape[-1] == 1 else "RGB"
    out = np.asarray(Image.fromarray(image[..., 0] if mode == "L" else image).resize((side, side), Image.BILINEAR))
    return out[..., None] if out.ndim == 2 else out


def preprocess(image: np.ndarray, card: dict[str, Any]) -> tuple["Any", np.ndarray]:
    """The model's input for one decoded image: a float tensor ``(1, C, S, S)`` and the ``uint8`` image it holds.

    The image (already decoded with the card's number of channels) goes through the decode-once
    cache's own rule, :func:`helpers.data.cache.prepare_image` (the card's preprocessing, if any,
    then pad to a square with black, then antialiased bilinear resize to the card's input size),
    and is normalised with the training split's per-channel mean and std from the card.
    """
    import torch

    from .data.cache import prepare_image

    s = card_summary(card)
    if image.shape[-1] != s["in_chans"]:
        raise AppError(f"image has {image.shape[-1]} channels, the model expects {s['in_chans']}")
    small = prepare_image(image, s["input_size"], preprocess=s["preprocess"])
    x = torch.from_numpy(np.array(small)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(s["mean"]).view(-1, 1, 1)
    std = torch.tensor(s["std"]).view(-1, 1, 1)
    return ((x - mean) / std).unsqueeze(0), small


def predict_proba(model: Any, x: "Any", card: dict[str, Any]) -> np.ndarray:
    """Class probabilities for a batch: softmax, or a sigmoid per label for multi-label models.

    A binary model with a single output gives ``[1 - p, p]``.
    """
    import torch

    s = card_summary(card)
    with torch.no_grad():
        logits = model(x).float()
    if s["task"] == "multilabel":
        probs = torch.sigmoid(logits)
    elif logits.shape[-1] == 1:
        p = torch.sigmoid(logits)
        probs = torch.cat([1 - p, p], dim=-1)
    else:
        probs = torch.softmax(logits, dim=-1)
    if probs.shape[-1] != len(s["classes"]):
        raise AppError(f"the model gives {probs.shape[-1]} outputs but its card lists {len(s['classes'])} classes")
    return probs.cpu().numpy()


# ----------------------------------------------------------------------------- classification


@dataclass
class Result:
    """The outcome for one file: either probabilities (and a heatmap) or an error message.

    Attributes:
        name: the file name.
        error: a message for the user when the file could not be classified, else ``None``.
        probabilities: class → probability (softmax; for multi-label one sigmoid per label).
        multilabel: whether the probabilities are independent labels.
        notes: what was converted or worth knowing (16-bit scaled, first of 3 frames, resized ×0.06, ...).
        original_shape: ``(H, W, C)`` of the decoded image.
        thumbnail: ``uint8`` image for display (the image the model saw, enlarged).
        overlay: ``uint8`` RGB heatmap over the thumbnail, or ``None``.
        heatmap_method: how the heatmap was made.
        seconds: time per step (``decode``, ``preprocess``, ``predict``, ``heatmap``, ``total``).
    """

    name: str
    error: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    multilabel: bool = False
    notes: list[str] = field(default_factory=list)
    original_shape: tuple[int, ...] | None = None
    thumbnail: np.ndarray | None = None
    overlay: np.ndarray | None = None
    heatmap_method: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable classes (all labels for multi-label when ``k`` is ``None``)."""
        ranked = sorted(self.probabilities.items(), key=lambda kv: -kv[1])
        return ranked if k is None else ranked[:k]

    @property
    def label(self) -> str | None:
        """The predicted class (multi-label: the labels at or above 0.5, joined by ``|``, or ``none``)."""
        if not self.ok or not self.probabilities:
            return None
        if self.multilabel:
            pos = [c for c, p in self.top(None) if p >= 0.5]
            return "|".join(pos) if pos else "none"
        return self.top(1)[0][0]


def _size_notes(shape: tuple[int, ...], size: int) -> list[str]:
    h, w = shape[:2]
    scale = size / max(h, w)
    notes = [f"resized from {w}×{h} to {size}×{size}"] if (h, w) != (size, size) else []
    if scale < 1 / 32:
        notes.append(f"{w}×{h} shrunk to the model's {size}×{size} (×{scale:.3g}): fine detail is lost")
    elif size / min(h, w) > 2:
        notes.append(f"{w}×{h} enlarged to the model's {size}×{size} (×{size / min(h, w):.3g}): the model sees interpolated pixels")
    if max(h, w) / min(h, w) > 1.5:
        notes.append(f"aspect ratio {w / h:.2f}: padded with black to a square, as in training")
    return notes


def _display_size(size: int) -> int:
    """Side of the thumbnail: the model input enlarged by a whole factor to at least 192 px."""
    return size * max(1, math.ceil(192 / size))


def _heatmap(model: Any, x: "Any", target: int, thumbnail: np.ndarray) -> tuple[np.ndarray, str]:
    """Heatmap of the model's evidence (:func:`helpers.explain.explain`) laid over the thumbnail."""
    from . import explain as ex

    method = "attention rollout" if ex.is_vit(model) else "Grad-CAM"
    heat = np.asarray(ex.explain(model, x, method="auto", target=target), dtype=np.float32)
    return ex.overlay(thumbnail, np.clip(heat, 0.0, 1.0)), method


def classify_one(upload: Upload, model: Any, card: dict[str, Any], *, heatmap: bool = True) -> Result:
    """Classify one uploaded file. Never raises: every failure becomes ``Result.error``."""
    from .imageio import ImageReadError, MultiFrameWarning, decode_image

    t0 = time.perf_counter()
    res = Result(name=upload.name)
    try:
        s = card_summary(card)
        res.multilabel = s["task"] == "multilabel"
        msg = check_upload(upload)
        if msg:
            res.error = msg
            return res
        stream = io.BytesIO(upload.data)
        stream.name = upload.name  # the decoder names the file in its messages
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MultiFrameWarning)
            decoded = decode_image(stream, max_pixels=MAX_PIXELS, channels=s["in_chans"])
        image = decoded.array
        res.original_shape = tuple(int(v) for v in image.shape)
        res.notes += [f"{decoded.format} {decoded.mode}"] + list(decoded.notes)
        t1 = time.perf_counter()
        res.seconds["decode"] = t1 - t0
        if min(image.shape[:2]) < MIN_SIDE:
            res.error = (f"{upload.name}: {image.shape[1]}×{image.shape[0]} pixels is too small to classify "
                         f"(at least {MIN_SIDE} px a side; the model was trained on {s['input_size']} px images)")
            return res
        res.notes += _size_notes(image.shape, s["input_size"])
        x, small = preprocess(image, card)
        t2 = time.perf_counter()
        res.seconds["preprocess"] = t2 - t1
        probs = predict_proba(model, x, card)[0]
        res.probabilities = {c: float(p) for c, p in zip(s["classes"], probs)}
        t3 = time.perf_counter()
        res.seconds["predict"] = t3 - t2
        display = _display_size(s["input_size"])
        rgb_small = small if small.shape[-1] == 3 else np.repeat(small, 3, axis=-1)
        res.thumbnail = _enlarge(rgb_small, display)
        if heatmap:
            try:
                res.overlay, res.heatmap_method = _heatmap(model, x, int(np.argmax(probs)), res.thumbnail)
            except Exception as exc:  # the prediction stands even when the explanation fails
                res.notes.append(f"no heatmap: {type(exc).__name__}: {exc}")
            res.seconds["heatmap"] = time.perf_counter() - t3
    except ImageReadError as exc:
        res.error = str(exc)
    except AppError as exc:
        res.error = f"{upload.name}: {exc}"
    except MemoryError:
        res.error = f"{upload.name}: the image is too large to decode in the memory available"
    except Exception as exc:  # anything else is still a message, never a traceback in the UI
        res.error = f"{upload.name}: could not be classified ({type(exc).__name__}: {exc})"
    finally:
        res.seconds["total"] = time.perf_counter() - t0
    return res


def classify(files: Any, model: Any, card: dict[str, Any], *, heatmap: bool = True) -> list[Result]:
    """Classify every file (see :func:`as_uploads` for what ``files`` may be); one :class:`Result` each.

    A batch over :data:`MAX_UPLOAD_MB` in total is still classified file by file; files that did
    not arrive whole get their message.
    """
    return [classify_one(u, model, card, heatmap=heatmap) for u in as_uploads(files)]


# ----------------------------------------------------------------------------- tables and HTML


def results_table(results: Sequence[Result], card: dict[str, Any] | None = None) -> "Any":
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
            s = card_summary(card)
            row["model"] = s["architecture"]
            row["run"] = s["run_id"]
        rows.append(row)
    return pd.DataFrame(rows)


def results_csv(results: Sequence[Result], card: dict[str, Any] | None = None) -> str:
    """The results table as CSV text (what the download link holds)."""
    return results_table(results, card).to_csv(index=False)


def csv_download_html(results: Sequence[Result], card: dict[str, Any] | None = None,
                      filename: str = "classifications.csv") -> str:
    """An HTML link that downloads the results as CSV (a ``data:`` URI: it works without a server route)."""
    payload = base64.b64encode(results_csv(results, card).encode("utf-8")).decode("ascii")
    return (f"<a class='medvit-csv' download='{html.escape(filename)}' href='data:text/csv;base64,{payload}'>"
            f"Download the results of {len(results)} file(s) as CSV</a>")


def png_data_uri(image: np.ndarray) -> str:
    """A ``uint8`` image as a PNG ``data:`` URI."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _bar(p: float) -> str:
    return (f"<div style='display:inline-block;width:120px;height:0.8em;background:#eee;vertical-align:middle'>"
            f"<div style='width:{100 * p:.1f}%;height:100%;background:#3b7dd8'></div></div>")


def result_html(r: Result, k: int = 3) -> str:
    """One file's result as HTML: thumbnail, heatmap, probabilities (all labels for multi-label), notes, time."""
    name = html.escape(r.name)
    if not r.ok:
        message = r.error or ""
        if message.startswith(r.name + ": "):  # the decoder names the file; the heading already does
            message = message[len(r.name) + 2:]
        return (f"<div class='medvit-result medvit-error' style='border-left:4px solid #c00;padding:0.3em 0.6em;margin:0.4em 0'>"
                f"<b>{name}</b> was not classified: <span class='medvit-message'>{html.escape(message)}</span></div>")
    ranked = r.top(None if r.multilabel else k)
    what = "labels (independent sigmoids; ≥ 0.5 counts as present)" if r.multilabel else f"top {len(ranked)} classes"
    rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{_bar(p)}</td><td style='text-align:right'>{p:.3f}</td></tr>"
                   for c, p in ranked)
    imgs = ""
    if r.thumbnail is not None:
        imgs += f"<figure style='margin:0 0.6em 0 0'><img class='medvit-thumb' src='{png_data_uri(r.thumbnail)}' width=192><figcaption>what the model saw</figcaption></figure>"
    if r.overlay is not None:
        imgs += (f"<figure style='margin:0 0.6em 0 0'><img class='medvit-heatmap' src='{png_data_uri(r.overlay)}' width=192>"
                 f"<figcaption>heatmap ({html.escape(r.heatmap_method or '')})</figcaption></figure>")
    timing = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r.seconds.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
    return (
        f"<div class='medvit-result' style='border-left:4px solid #3b7dd8;padding:0.3em 0.6em;margin:0.4em 0'>"
        f"<b>{name}</b> → <span class='medvit-prediction'>{html.escape(str(r.label))}</span>"
        f" ({max(r.probabilities.values()):.3f})"
        f"<div style='display:flex;align-items:flex-start;flex-wrap:wrap'>{imgs}"
        f"<div><i>{what}</i><table>{rows}</table><small>{timing}</small><ul style='font-size:smaller'>{notes}</ul></div></div></div>"
    )


# ----------------------------------------------------------------------------- the widget app

#: Runs in the browser: keeps a file over the limits from being read and sent (ipywidgets'
#: FileUpload reads files with FileReader.readAsArrayBuffer). Such a file is sent empty, with its
#: real size, and the kernel answers with a message instead of the connection breaking.
UPLOAD_GUARD_JS = """
(function () {
  if (window.__medvitUploadGuard) { return; }
  var guard = {maxFile: %(max_file)d, maxUpload: %(max_upload)d, total: 0, refused: []};
  window.__medvitUploadGuard = guard;
  var read = FileReader.prototype.readAsArrayBuffer;
  FileReader.prototype.readAsArrayBuffer = function (blob) {
    if (blob && typeof blob.size === "number") {
      if (guard.total === 0) { setTimeout(function () { guard.total = 0; }, 0); }
      if (blob.size > guard.maxFile || guard.total + blob.size > guard.maxUpload) {
        guard.refused.push(blob.name || "?");
        console.warn("upload guard: " + (blob.name || "a file") + " (" + blob.size + " bytes) is over the limit; not sent");
        return read.call(this, new Blob([]));
      }
      guard.total += blob.size;
    }
    return read.call(this, blob);
  };
})();
""" % {"max_file": MAX_FILE_MB * 1_000_000, "max_upload": MAX_UPLOAD_MB * 1_000_000}


class ClassifierApp:
    """The widgets and their behaviour. ``app.widget`` is what the notebook displays.

    The parts are attributes so that tests (and curious readers) can drive them: ``task``,
    ``model``, ``card``, ``upload``, ``button``, ``status``, ``results``, ``download``.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        import ipywidgets as w

        self.root = root
        self._loaded: dict[str, tuple[Any, dict[str, Any]]] = {}
        self.entries: list[dict[str, Any]] = []
        self.last_results: list[Result] = []
        self.runs = 0  # classifications done, shown as data-run on the status (a test waits on it)
        self.header = w.HTML(
            "<h3 style='margin:0.2em 0'>Classify medical images with a trained model</h3>"
            f"<p class='medvit-disclaimer' style='background:#fff4e5;border:1px solid #f0a020;padding:0.4em'>"
            f"<b>⚠ {html.escape(DISCLAIMER)}</b></p>"
        )
        self.task = w.Dropdown(options=[(t.title, k) for k, t in TASKS.items()], value="blood", description="Task")
        self.model = w.Dropdown(options=[], description="Model", layout=w.Layout(width="42em"))
        self.card = w.HTML()
        self.hint = w.HTML()
        self.upload = w.FileUpload(accept=ACCEPT, multiple=True, description="Upload")
        self.button = w.Button(description="Classify", button_style="primary", icon="play")
        self.limits = w.HTML(
            f"<small>PNG, JPEG, TIFF, PGM, BMP or DICOM; up to {MAX_FILE_MB} MB per file and "
            f"{MAX_UPLOAD_MB} MB per upload; several files at once give a table you can download.</small>"
        )
        self.status = w.HTML()
        self.results = w.HTML()
        self.download = w.HTML()
        guard = w.Output(layout=w.Layout(display="none"))
        from IPython.display import Javascript

        guard.append_display_data(Javascript(UPLOAD_GUARD_JS))
        self.task.observe(lambda _: self.refresh_models(), "value")
        self.model.observe(lambda _: self.show_card(), "value")
        self.upload.observe(lambda _: self.show_uploaded(), "value")
        self.button.on_click(lambda _: self.run())
        parts = [self.header]
        if in_voila():
            # Served by Voila the page is the app: hide the book's narrative and the other cells' outputs.
            parts.insert(0, w.HTML("<style>.jp-MarkdownCell, .jp-Cell:not(:has(.medvit-app)) { display: none; }</style>"))
        self.widget = w.VBox(parts + [
            w.HBox([self.task]),
            self.model,
            self.card,
            self.hint,
            w.HBox([self.upload, self.button]),
            self.limits,
            self.status,
            self.results,
            self.download,
            guard,
        ])
        self.widget.add_class("medvit-app")
        self.refresh_models()

    # -- model choice
    def refresh_models(self) -> None:
        """List the checkpoints of the chosen task in the model dropdown."""
        try:
            self.entries = find_models(self.task.value, self.root)
        except Exception as exc:
            self.entries = []
            self.hint.value = f"<p class='medvit-error'>Could not list the checkpoints: {html.escape(str(exc))}</p>"
        options = []
        for i, e in enumerate(self.entries):
            c = _card_of(e)
            tag = _headline(c.get("metrics") or {})
            options.append((f"{c.get('architecture', '?')} on {c.get('dataset', '?')} "
                            f"({c.get('profile', '?')}{tag}) — {c.get('run_id', _folder_of(e).name)}", i))
        self.model.options = options
        self.model.value = 0 if options else None
        if not options:
            root = _checkpoints_root(self.root)
            self.card.value = ""
            self.hint.value = ("<p class='medvit-nomodel' style='background:#eef;padding:0.4em'>"
                               + HOW_TO_GET_MODELS.format(root=html.escape(str(root))) + "</p>")
            self.button.disabled = True
        self.show_card()

    def current(self) -> tuple[Any, dict[str, Any]] | None:
        """The loaded model and card of the dropdown's choice (``None`` when there is none or it fails)."""
        if self.model.value is None or not self.entries:
            return None
        entry = self.entries[self.model.value]
        key = str(_folder_of(entry))
        if key not in self._loaded:
            self._loaded[key] = load_model(entry)
        return self._loaded[key]

    def show_card(self) -> None:
        """Load the chosen model and show its card, or say why it cannot be used."""
        if self.model.value is None or not self.entries:
            return
        entry = self.entries[self.model.value]
        try:
            model, card = self.current()
            self.card.value = card_html(card, _folder_of(entry))
            self.hint.value = f"<small>Expected input: {html.escape(TASKS[self.task.value].what)}.</small>"
            self.button.disabled = False
        except Exception as exc:
            self.card.value = (f"<p class='medvit-error' style='color:#b00'><b>This model cannot be used:</b> "
                               f"{html.escape(str(exc))}</p>")
            self.button.disabled = True

    # -- files
    def show_uploaded(self) -> None:
        """Say which files arrived (and which are over the limit) once the browser has sent them."""
        files = as_uploads(self.upload.value)
        names = [f.name + (" (over the size limit)" if check_upload(f) else "") for f in files]
        self.status.value = (f"<span class='medvit-ready'>{len(files)} file(s) ready: "
                             + html.escape(", ".join(names)) + ". Press <b>Classify</b>.</span>") if files else ""

    def run(self, files: Any = None) -> list[Result]:
        """Classify ``files`` (default: what was uploaded) with the chosen model and show the results."""
        uploads = as_uploads(self.upload.value if files is None else files)
        if not uploads:
            self.status.value = "<span class='medvit-error'>Upload one or more images first.</span>"
            return []
        try:
            loaded = self.current()
        except Exception as exc:
            loaded = None
            self.status.value = f"<span class='medvit-error'>{html.escape(str(exc))}</span>"
        if loaded is None:
            if not self.status.value:
                self.status.value = "<span class='medvit-error'>No usable model for this task (see above).</span>"
            return []
        model, card = loaded
        self.button.disabled = True
        self.status.value = f"Classifying {len(uploads)} file(s)…"
        try:
            results = classify(uploads, model, card)
        finally:
            self.button.disabled = False
        self.last_results = results
        self.runs += 1
        ok = sum(r.ok for r in results)
        total = sum(r.seconds.get("total", 0.0) for r in results)
        self.results.value = "".join(result_html(r) for r in results)
        self.download.value = csv_download_html(results, card)
        # the status last: once it says "Done", the results above are on the page
        self.status.value = (f"<span class='medvit-done' data-run='{self.runs}'>Done: {ok} of {len(results)} "
                             f"file(s) classified in {total:.2f} s.</span>")
        return results


#: Classes of the untrained checkpoints :func:`make_untrained_checkpoint` writes (one task each).
TASK_CLASSES: dict[str, tuple[str, list[str]]] = {
    "blood": ("multiclass", ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte",
                             "neutrophil", "platelet"]),
    "chest": ("multilabel", ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule",
                             "Pneumonia", "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis",
                             "Pleural_Thickening", "Hernia"]),
    "mammo": ("binary", ["benign", "malignant"]),
}


def make_untrained_checkpoint(folder: str | os.PathLike, task: str, architecture: str = "resnet18",
                              input_size: int = 32, in_chans: int = 3, seed: int = 0) -> Path:
    """Save a randomly initialised model for ``task`` as a checkpoint the app lists.

    For testing the app and timing it (the browser test, the latency benchmark), never for
    predictions: its card says ``data_source = "untrained"`` and the app shows that warning.
    """
    import torch

    from .checkpoints import save_checkpoint
    from .models.vision import create_model

    kind, classes = TASK_CLASSES[task]
    torch.manual_seed(seed)
    kwargs = {"in_chans": in_chans, "img_size": input_size}
    model = create_model(architecture, num_classes=len(classes), pretrained=False, **kwargs)
    card = {
        "architecture": architecture,
        "model_kwargs": kwargs,
        "classes": classes,
        "task": kind,
        "input_size": input_size,
        "in_chans": in_chans,
        "normalization": {"mean": [0.5] * in_chans, "std": [0.25] * in_chans},
        "dataset": TASKS[task].datasets[0],
        "data_source": "untrained (random weights, for testing the app only)",
        "profile": "none",
        "metrics": {},
        "run_id": f"untrained-{task}-{architecture}-{input_size}px",
        "app_task": task,
    }
    return save_checkpoint(model, folder, card)


_SAMPLE_GLOBS = {
    "blood": ("pbc/**/*.jpg", "pbc/**/*.png"),
    "chest": ("nih/images/*.png", "nih/**/*.png", "covid/images/*"),
    "mammo": ("mias/all-mias/*.pgm", "cbis_ddsm/jpeg/**/*.jpg"),
}


def find_sample(task: str, root: str | os.PathLike | None = None) -> Path | None:
    """A real image for ``task`` under the data folder (``$MEDVIT_DATA``), or ``None`` when there is none.

    The first file in sorted order that decodes is returned, so the choice is repeatable.
    """
    from . import config
    from .imageio import ImageReadError, describe_image

    base = Path(root) if root is not None else config.data_root()
    for pattern in _SAMPLE_GLOBS[task]:
        for path in sorted(base.glob(pattern)):
            if not path.is_file() or path.name.startswith("."):
                continue
            try:
                describe_image(path)
            except ImageReadError:
                continue
            return path
    return None


def _checkpoints_root(root: str | os.PathLike | None) -> Path:
    from . import config

    return Path(root) if root is not None else config.runs_dir(create=False)


def build_app(root: str | os.PathLike | None = None) -> Any:
    """The classifier app as one ipywidgets widget (display it, or serve the notebook with Voila)."""
    return ClassifierApp(root).widget
