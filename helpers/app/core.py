"""The app's tasks, limits, checkpoints, uploads and the classification of one file.

Plain Python the tests call without a browser or widgets; it runs a model only through
:mod:`helpers.inference` and reads a model card only as a :class:`~helpers.cards.ModelCard`.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import config, inference
from ..cards import ModelCard
from ..checkpoints import Checkpoint, list_checkpoints
from ..explain import NoMapError, overlay
from ..imageio import ImageReadError, ImageTooLargeError, MultiFrameWarning
from ..imagestats import unlike_training
from ..serving import MAX_FILE_MB, MAX_UPLOAD_MB

__all__ = [
    "AppTask",
    "APP_TASKS",
    "ACCEPT",
    "MAX_FILE_MB",
    "MAX_UPLOAD_MB",
    "MAX_PIXELS",
    "MIN_SIDE",
    "DISCLAIMER",
    "HOW_TO_GET_MODELS",
    "AppError",
    "Upload",
    "Result",
    "task_of",
    "find_models",
    "hidden_smoke_models",
    "constant_by_headline",
    "chance_level",
    "HEADLINE_ORDER",
    "headline_metric",
    "best_model",
    "load_model",
    "checkpoints_root",
    "as_uploads",
    "check_upload",
    "upload_problem",
    "classify_one",
    "classify",
]

# ----------------------------------------------------------------------------- tasks and limits


@dataclass(frozen=True)
class AppTask:
    """One task the app offers and the datasets whose models belong to it."""

    key: str
    title: str
    datasets: tuple[str, ...]
    what: str


APP_TASKS: dict[str, AppTask] = {
    "blood": AppTask(
        "blood",
        "Blood cells",
        ("pbc", "bloodmnist"),
        "a single peripheral blood cell, cropped as in the PBC dataset (eight normal cell types)",
    ),
    "chest": AppTask(
        "chest",
        "Chest X-ray",
        ("nih", "chestxray14", "chestmnist", "pneumoniamnist", "covid", "tb"),
        "a frontal chest radiograph (ChestX-ray14 findings, or pneumonia vs normal)",
    ),
    "mammo": AppTask(
        "mammo",
        "Mammogram",
        ("cbis_ddsm", "mias", "mias_lesions", "mias_abnormal"),
        "a square crop centred on one lesion of a mammogram (benign vs malignant), as CBIS-DDSM's cropped "
        "images or the mammography chapter's mini-MIAS crops; a whole film is classified too, but that is not "
        "what the model was trained on",
    ),
}

#: What the upload button offers (anything else is still tried, and refused with a message if it is no image).
ACCEPT = ".png,.jpg,.jpeg,.tif,.tiff,.pgm,.ppm,.pnm,.bmp,.dcm,.dicom"
# MAX_FILE_MB (64: a 50 MB DICOM mammogram fits) and MAX_UPLOAD_MB (128) come from helpers.serving,
# which sizes the server's websocket messages to them.
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
    "No trained model for this task was found in {root} (the runs folder: <code>$MEDVIT_RUNS</code> "
    "when it is set, else <code>runs/</code> in the project). To get one, run the task's chapter "
    "(it saves a checkpoint), or train a small model per task in a few minutes on a CPU with "
    "<code>make app-models</code> (or <code>python -m helpers app-models</code>), then reload this page. "
    "Until then there is nothing to classify with."
)


class AppError(RuntimeError):
    """A problem the app reports to the user as a message (never as a traceback)."""


# ----------------------------------------------------------------------------- checkpoints


def task_of(card: ModelCard) -> str | None:
    """The app task a model card belongs to: an explicit ``app_task``, else its dataset's task."""
    if card.app_task in APP_TASKS:
        return card.app_task
    dataset = card.dataset.lower()
    for key, task in APP_TASKS.items():
        if dataset in task.datasets or any(dataset.startswith(d) for d in task.datasets):
            return key
    return None


def checkpoints_root(root: str | os.PathLike | None = None) -> Path:
    """Where the app looks for checkpoints: ``root``, else the runs folder."""
    return Path(root) if root is not None else config.runs_dir(create=False)


def _task_checkpoints(task: str, root: str | os.PathLike | None) -> list[Checkpoint]:
    if task not in APP_TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {list(APP_TASKS)}")
    return [c for c in list_checkpoints(checkpoints_root(root)) if task_of(c.card) == task]


def _smoke_listed(include_smoke: bool | None) -> bool:
    return config.get_profile().name == "smoke" if include_smoke is None else include_smoke


def find_models(
    task: str, root: str | os.PathLike | None = None, include_smoke: bool | None = None
) -> list[Checkpoint]:
    """Checkpoints under ``root`` (default: the runs folder) whose model card belongs to ``task``, newest first
    (:func:`best_model` picks the one to offer first).

    Checkpoints of the ``smoke`` profile (a test's few images and steps, written by every chapter run
    in CI) are left out unless ``include_smoke``; by default they are listed only when the app itself
    runs at the smoke profile (``MEDVIT_PROFILE=smoke``, as the tests do).
    """
    found = _task_checkpoints(task, root)
    return found if _smoke_listed(include_smoke) else [c for c in found if c.card.profile != "smoke"]


def hidden_smoke_models(task: str, root: str | os.PathLike | None = None) -> int:
    """How many smoke-profile checkpoints of ``task`` :func:`find_models` leaves out."""
    if _smoke_listed(None):
        return 0
    return sum(c.card.profile == "smoke" for c in _task_checkpoints(task, root))


#: The metric a model is listed and chosen by, when its card has it: chance-aware ones before accuracy.
HEADLINE_ORDER = ("balanced_accuracy", "macro_auroc", "mean_auroc", "auroc", "accuracy")


def headline_metric(metrics: dict[str, Any]) -> tuple[str, str, float] | None:
    """``(split, key, value)``: of the test split (else validation), the first metric of
    :data:`HEADLINE_ORDER` the card's metrics have, else the split's first number; ``None`` without any."""
    for split in ("test", "valid"):
        values = metrics.get(split)
        if isinstance(values, dict):
            numbers = [(k, v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)]
            numbers.sort(key=lambda kv: HEADLINE_ORDER.index(kv[0]) if kv[0] in HEADLINE_ORDER else len(HEADLINE_ORDER))
            if numbers:
                return split, numbers[0][0], float(numbers[0][1])
    return None


def constant_by_headline(card: ModelCard) -> bool:
    """For cards without a chance check: test kappa 0 with balanced accuracy 1/K, the mark of one class for all."""
    test = card.metrics.get("test") or {}
    kappa, bal = test.get("kappa"), test.get("balanced_accuracy")
    k = len(card.classes)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (kappa, bal))
    return numbers and abs(kappa) < 1e-9 and abs(bal - 1 / k) < 1e-9


def chance_level(card: ModelCard) -> bool:
    """Whether the card shows the model no better than chance (its chance check, else its headline)."""
    return card.no_better_than_chance is True or (card.no_better_than_chance is None and constant_by_headline(card))


def best_model(entries: list[Checkpoint]) -> int | None:
    """The index of the checkpoint to offer first among ``entries`` (newest first, as
    :func:`find_models` lists them): the highest validation headline metric (:func:`headline_metric`
    of the validation split, which chose the model; the test split's where a card has no validation
    numbers) among tested models not shown to be at chance level (:func:`chance_level`), then the newest.
    ``None`` for no entries, and when every model is at chance level: such a model is never the default."""

    def rank(i: int) -> tuple[bool, float, int]:
        metrics = entries[i].card.metrics
        test = headline_metric({"test": metrics.get("test") or {}})
        found = headline_metric({"valid": metrics.get("valid") or {}}) or test
        return (test is not None, found[2] if test is not None else 0.0, -i)

    usable = [i for i, e in enumerate(entries) if not chance_level(e.card)]
    return max(usable, key=rank) if usable else None


def load_model(entry: Checkpoint | str | os.PathLike) -> tuple[Any, ModelCard]:
    """Load a checkpoint (safetensors weights + JSON card; nothing is unpickled) for the CPU.

    Raises:
        AppError: when the folder is incomplete or the card does not match the weights, with the reason.
    """
    folder = entry.folder if isinstance(entry, Checkpoint) else Path(entry)
    try:
        return inference.load_model(folder, device="cpu")
    except Exception as exc:  # a broken checkpoint is a message, never a crash of the app
        raise AppError(f"the checkpoint in {folder} cannot be used: {exc}") from exc


# ----------------------------------------------------------------------------- uploads


@dataclass
class Upload:
    """One uploaded file: its name, the bytes that arrived and the size the browser reported."""

    name: str
    data: bytes
    size: int


def _as_upload(f: Any) -> Upload:
    if isinstance(f, Upload):
        return f
    if isinstance(f, dict):
        data = bytes(f.get("content") or b"")
        return Upload(str(f.get("name", "upload")), data, int(f.get("size", len(data)) or len(data)))
    if isinstance(f, (str, os.PathLike)):
        p = Path(f)
        data = p.read_bytes() if p.is_file() else b""
        return Upload(p.name, data, len(data))
    name, data = f
    data = bytes(data)
    return Upload(str(name), data, len(data))


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
    return [_as_upload(f) for f in files]


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def upload_problem(upload: Upload) -> str | None:
    """Why ``upload`` cannot be classified, in a few words, before any decoding (``None``: no reason).

    The same words begin :func:`check_upload`'s message, so the list of picked files and the result
    say the same thing.
    """
    limit = MAX_FILE_MB * 1_000_000
    if upload.size > limit or len(upload.data) > limit:
        return f"over the upload limit of {MAX_FILE_MB} MB per file"
    if upload.size and len(upload.data) != upload.size:
        return f"did not arrive whole (an upload holds at most {MAX_UPLOAD_MB} MB in all)"
    return None


def check_upload(upload: Upload) -> str | None:
    """A message when ``upload`` is over the size limit or did not arrive whole, else ``None``."""
    problem = upload_problem(upload)
    if problem is None:
        return None
    if problem.startswith("over"):
        return (
            f"{upload.name}: {_mb(max(upload.size, len(upload.data)))} is {problem}, so it was not "
            "classified. Reduce the image (or export one frame) and upload it again."
        )
    return (
        f"{upload.name}: {problem}: only {len(upload.data):,} of {upload.size:,} bytes arrived; "
        "upload this file on its own."
    )


# ----------------------------------------------------------------------------- classification


@dataclass
class Result:
    """The outcome for one file: either probabilities (and a heatmap) or an error message.

    Attributes:
        name: the file name.
        error: a message for the user when the file could not be classified, else ``None``.
        probabilities: class → probability (softmax; for multi-label one sigmoid per label).
        multilabel: whether the probabilities are independent labels.
        thresholds: multi-label: each label's threshold from the model card.
        default_threshold: the threshold of a label the card gives none: ``None`` (never marked) when
            the card states its threshold rule, 0.5 on older cards.
        findings: multi-label: the card's per-label test AUROC with its interval and threshold facts.
        notes: what was converted or worth knowing (16-bit scaled, first of 3 frames, resized ×0.06, ...).
        warnings: what makes the answer doubtful (an image unlike the training images), shown beside it.
        original_shape: ``(H, W, C)`` of the decoded image.
        thumbnail: ``uint8`` image for display (the image the model saw, enlarged).
        overlay: ``uint8`` RGB heatmap over the thumbnail, or ``None``.
        heatmap_method: how the heatmap was made (method, layer and map size).
        heatmap_note: why there is no heatmap, when there is none.
        seconds: time per step (``decode``, ``preprocess``, ``predict``, ``heatmap``, ``total``).
    """

    name: str
    error: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    multilabel: bool = False
    thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float | None = 0.5
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    original_shape: tuple[int, ...] | None = None
    thumbnail: np.ndarray | None = None
    overlay: np.ndarray | None = None
    heatmap_method: str | None = None
    heatmap_note: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def threshold(self, label: str) -> float | None:
        """The threshold at or above which ``label`` counts as present (multi-label); ``None``: it has none."""
        return self.thresholds.get(label, self.default_threshold)

    def marked(self) -> list[tuple[str, float]]:
        """Multi-label: the labels at or above their thresholds, most probable first."""
        return [(c, p) for c, p in self.top(None) if (t := self.threshold(c)) is not None and p >= t]

    @property
    def headline(self) -> tuple[str, float] | None:
        """The answer's own class and probability: the most probable class, or for multi-label the most
        probable finding marked present; ``None`` when nothing is (or the file was not classified)."""
        if not self.ok or not self.probabilities:
            return None
        if self.multilabel:
            marked = self.marked()
            return marked[0] if marked else None
        return self.top(1)[0]

    def top(self, k: int | None = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable classes (all of them when ``k`` is ``None``)."""
        ranked = sorted(self.probabilities.items(), key=lambda kv: -kv[1])
        return ranked if k is None else ranked[:k]

    @property
    def label(self) -> str | None:
        """The predicted class (multi-label: the labels at or above their thresholds, most probable
        first, joined by ``|``, or ``none``)."""
        if not self.ok or not self.probabilities:
            return None
        if self.multilabel:
            return "|".join(c for c, _ in self.marked()) or "none"
        return self.top(1)[0][0]


def _size_notes(shape: tuple[int, ...], size: int) -> list[str]:
    h, w = shape[:2]
    scale = size / max(h, w)
    notes = [f"resized from {w}×{h} to {size}×{size}"] if (h, w) != (size, size) else []
    if scale < 1 / 32:
        notes.append(f"{w}×{h} shrunk to the model's {size}×{size} (×{scale:.3g}): fine detail is lost")
    elif size / min(h, w) > 2:
        notes.append(
            f"{w}×{h} enlarged to the model's {size}×{size} (×{size / min(h, w):.3g}): "
            "the model sees interpolated pixels"
        )
    if max(h, w) / min(h, w) > 1.5:
        notes.append(f"aspect ratio {w / h:.2f}: padded with black to a square, as in training")
    return notes


def _display_size(size: int) -> int:
    """Side of the thumbnail: the model input enlarged by a whole factor to at least 192 px."""
    return size * max(1, math.ceil(192 / size))


def _enlarge(image: np.ndarray, side: int) -> np.ndarray:
    """A square ``uint8`` image as RGB, enlarged (bilinear) to ``side`` pixels, for display only."""
    from PIL import Image

    rgb = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    if rgb.shape[0] == side:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((side, side), Image.BILINEAR))


def _decode(upload: Upload, card: ModelCard, res: Result) -> inference.ModelInput | None:
    """The model's input for ``upload`` (the training cache's own rule), or ``None`` with ``res.error`` set."""
    stream = io.BytesIO(upload.data)
    stream.name = upload.name  # the decoder names the file in its messages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MultiFrameWarning)
        prepared = inference.model_input(stream, card, max_pixels=MAX_PIXELS)
    decoded = prepared.decoded
    shape = decoded.array.shape
    res.original_shape = tuple(int(v) for v in shape)
    res.notes += [f"{decoded.format} {decoded.mode}", *decoded.notes]
    res.seconds.update(prepared.seconds)
    if min(shape[:2]) < MIN_SIDE:
        res.error = (
            f"{upload.name}: {shape[1]}×{shape[0]} pixels is too small to classify "
            f"(at least {MIN_SIDE} px a side; the model was trained on {card.input_size} px images)"
        )
        return None
    res.notes += _size_notes(shape, card.input_size)
    res.warnings += _unlike_warning(prepared.image, decoded.colourfulness, card)
    return prepared


#: A file decoded in colour whose colourfulness is above this is a colour picture (0.02 = 5 grey levels).
COLOUR_PICTURE = 0.02


def _unlike_warning(image: np.ndarray, colourfulness: float | None, card: ModelCard) -> list[str]:
    """A warning when ``image`` (as the model sees it) is unlike the card's training images
    (:func:`helpers.imagestats.unlike_training`), or is a colour picture for a model trained on grey
    images (``colourfulness`` of the decoded file before conversion), else nothing."""
    unlike = unlike_training(image, card.image_stats)
    grey_training = card.image_stats.get("channels") == 1
    if grey_training and colourfulness is not None and colourfulness > COLOUR_PICTURE:
        unlike.insert(0, f"a colour picture (colourfulness {colourfulness:.2f}) where the training images were grey")
    if not unlike:
        return []
    task = task_of(card)
    expected = APP_TASKS[task].what if task else "images like its training images"
    return [
        f"This image is unlike the images the model was trained on ({'; '.join(unlike)}). The model "
        f"expects {expected}; its answer for this image may mean nothing."
    ]


def _explain_into(res: Result, model: Any, x: Any, card: ModelCard, target: int) -> None:
    """Add the heatmap over the thumbnail to ``res``; no map, or a failure, becomes ``heatmap_note``."""
    t0 = time.perf_counter()
    try:
        heat, plan = inference.heatmap(model, x, card, target=target)
        res.overlay, res.heatmap_method = overlay(res.thumbnail, heat), plan.describe()
    except NoMapError as exc:
        res.heatmap_note = f"No heatmap: {exc}."
    except Exception as exc:
        res.heatmap_note = f"No heatmap: it could not be made ({type(exc).__name__}: {exc})."
    res.seconds["heatmap"] = time.perf_counter() - t0


def _classify_into(res: Result, upload: Upload, model: Any, card: ModelCard, heatmap: bool) -> None:
    res.error = check_upload(upload)
    if res.error:
        return
    prepared = _decode(upload, card, res)
    if prepared is None:
        return
    t0 = time.perf_counter()
    probs = inference.predict(model, prepared.x, card)[0]
    res.probabilities = {c: float(p) for c, p in zip(card.classes, probs)}
    res.seconds["predict"] = time.perf_counter() - t0
    res.thumbnail = _enlarge(prepared.image, _display_size(card.input_size))
    if heatmap:
        _explain_into(res, model, prepared.x, card, int(np.argmax(probs)))


def too_large_message(exc: ImageTooLargeError) -> str:
    """What the page says about an image over :data:`MAX_PIXELS`: the app's own limit, and what the
    user can do (make the image smaller), not a setting only the code can change."""
    side = math.isqrt(MAX_PIXELS)
    shown = f"{exc.size[0]}×{exc.size[1]} = {exc.pixels:,}" if exc.size else f"{exc.pixels:,}"
    return (
        f"{exc.name}: {shown} pixels is more than this app decodes ({MAX_PIXELS:,} pixels, e.g. {side}×{side}), "
        "a limit that guards against decompression bombs. Reduce the image (or crop the part to classify) "
        "and upload it again."
    )


def classify_one(upload: Upload, model: Any, card: ModelCard, *, heatmap: bool = True) -> Result:
    """Classify one uploaded file. Never raises: every failure becomes ``Result.error``."""
    t0 = time.perf_counter()
    res = Result(
        name=upload.name,
        multilabel=card.task == "multilabel",
        thresholds=dict(card.thresholds),
        default_threshold=None if card.threshold_rule else 0.5,
        findings=dict(card.findings),
    )
    try:
        _classify_into(res, upload, model, card, heatmap)
    except ImageTooLargeError as exc:
        res.error = too_large_message(exc)
    except ImageReadError as exc:
        res.error = str(exc)
    except (AppError, inference.InferenceError) as exc:
        res.error = f"{upload.name}: {exc}"
    except MemoryError:
        res.error = f"{upload.name}: the image is too large to decode in the memory available"
    except Exception as exc:  # anything else is still a message, never a traceback in the UI
        res.error = f"{upload.name}: could not be classified ({type(exc).__name__}: {exc})"
    finally:
        res.seconds["total"] = time.perf_counter() - t0
    return res


def classify(files: Any, model: Any, card: ModelCard, *, heatmap: bool = True) -> list[Result]:
    """Classify every file (see :func:`as_uploads` for what ``files`` may be); one :class:`Result` each.

    A batch over :data:`MAX_UPLOAD_MB` in total is still classified file by file; files that did
    not arrive whole get their message.
    """
    return [classify_one(u, model, card, heatmap=heatmap) for u in as_uploads(files)]
