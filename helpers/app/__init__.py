"""The classifier app: upload images, pick a trained model, read the classes and see where it looked.

This is the book's version of the graphical interface that closes thesis 004 (§3.5): upload a
blood-cell image, choose a network, press *Classify*, read the predicted class and its
probability. It grows that interface to the three tasks of the book (blood cells, chest X-rays,
mammograms), to batches of files with a results table exported as CSV (the thesis's own future
work), to heatmaps of where the model looked, and to hostile input.

The app is a thin shell over :mod:`helpers.inference`, in three modules:

* :mod:`helpers.app.core`: the tasks (:data:`APP_TASKS`), the limits, finding and loading
  checkpoints, uploads and the classification of one file (:func:`classify_one`);
* :mod:`helpers.app.render`: the model card panel, a file's result, the batch table and its CSV;
* :mod:`helpers.app.widgets`: the ipywidgets (:func:`build_app`), the browser's upload guard and
  the Voila settings.

Everything but the widgets is plain Python that the tests call without a browser;
``book/tools/app.ipynb`` served by Voila (``make dashboard``) shows the app. The app never trains
and never imports the training code or the dataset downloaders; its models come from the chapters
or from ``python -m helpers app-models`` (:mod:`helpers.app_models`).

The pipeline for one uploaded file (:func:`classify_one`), each step timed:

1. **Size check**: a file over :data:`MAX_FILE_MB` (or a batch over :data:`MAX_UPLOAD_MB`) is
   refused with a message. In the browser a guard (:data:`UPLOAD_GUARD_JS`) keeps such files from
   being sent at all, so an oversized upload cannot break the page's connection.
2. **Decode and preprocess exactly as in training** (:func:`helpers.inference.model_input`): the
   function the decode-once cache applies to every training image,
   :func:`helpers.preprocessing.prepare_file`, decodes the bytes with
   :func:`helpers.imageio.decode_image` (PNG, JPEG, TIFF, PGM, BMP, DICOM with its window and
   photometric interpretation; 16-bit, RGBA, palette and CMYK converted; first frame of a
   multi-frame file; a decompression-bomb limit of :data:`MAX_PIXELS`) to the card's channels,
   applies the card's preprocessing (equalising the grey image), pads to a square with black and
   resizes (antialiased bilinear) to the card's input size; then ``x = (u / 255 - mean) / std``
   with the training split's per-channel statistics from the card.
3. **Predict** with :func:`helpers.inference.probabilities`: softmax over the classes, or one
   sigmoid per label for a multi-label model.
4. **Explain**: a heatmap (Grad-CAM for CNNs, attention rollout for ViTs, through
   :func:`helpers.inference.heatmap`) laid over the image the model saw, made on a layer whose map
   is at least 7×7 cells at the model's input size; when the model has none (a ViT-Tiny at 64 px
   sees a 4×4 patch grid), the result says so instead of showing a map that cannot point.
5. **Warn**: an image whose colour and intensity statistics lie outside those of the training
   images (kept in the model card) gets a visible warning beside its answer; a model whose test
   predictions were no better than chance is marked in the model list and on its card.

Any failure of one file becomes that file's message; the batch and the app carry on. Transparent
pixels are composited on the training images' background colour (from the card); CSV cells are
neutralised against formula injection. Switching task or model clears the picked files, the
results and the CSV link. How Voila serves the page (kernel culling, a cap on live kernels,
shutdown when the tab closes) is :mod:`helpers.serving`.
"""

from __future__ import annotations

from .core import (
    ACCEPT,
    APP_TASKS,
    DISCLAIMER,
    HOW_TO_GET_MODELS,
    MAX_FILE_MB,
    MAX_PIXELS,
    MAX_UPLOAD_MB,
    MIN_SIDE,
    AppError,
    AppTask,
    Result,
    Upload,
    as_uploads,
    best_model,
    chance_level,
    check_upload,
    checkpoints_root,
    classify,
    classify_one,
    find_models,
    hidden_smoke_models,
    load_model,
    task_of,
    upload_problem,
)
from .render import (
    METRIC_NAMES,
    batch_table,
    card_html,
    chance_warning,
    csv_download_html,
    csv_safe,
    held_out_summary,
    metric_name,
    model_label,
    png_data_uri,
    result_html,
    results_csv,
)
from .widgets import (
    UPLOAD_GUARD_JS,
    ClassifierApp,
    build_app,
    in_voila,
    tornado_settings,
    voila_command,
    websocket_max_message_size,
)

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
    "best_model",
    "chance_level",
    "find_models",
    "hidden_smoke_models",
    "load_model",
    "checkpoints_root",
    "as_uploads",
    "check_upload",
    "upload_problem",
    "classify_one",
    "classify",
    "card_html",
    "held_out_summary",
    "model_label",
    "METRIC_NAMES",
    "metric_name",
    "chance_warning",
    "csv_safe",
    "result_html",
    "batch_table",
    "results_csv",
    "csv_download_html",
    "png_data_uri",
    "UPLOAD_GUARD_JS",
    "websocket_max_message_size",
    "tornado_settings",
    "voila_command",
    "in_voila",
    "ClassifierApp",
    "build_app",
]
