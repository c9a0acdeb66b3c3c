"""The app's face: ipywidgets, the scripts the page runs, and the command that serves it.

:func:`build_app` is what ``book/tools/app.ipynb`` displays; served by Voila (``make dashboard``,
:func:`voila_command`, :mod:`helpers.serving`) it is the whole page. Uploads reach the kernel in
one websocket message, so the server runs with the limit of :func:`tornado_settings`, and a script
in the page (:data:`UPLOAD_GUARD_JS`) keeps files over the app's limits from being sent at all;
another (:data:`helpers.serving.XSRF_COOKIE_JS`) lets Voila shut the page's kernel down when the tab
closes.

What the page shows always belongs to the chosen task and model: switching either clears the
picked files, the results and the CSV link.
"""

from __future__ import annotations

import dataclasses
import html
import os
import sys
from typing import Any

from ..explain import NoMapError, explanation_plan
from ..serving import XSRF_COOKIE_JS, ServeSettings, serve_command, tornado_settings, websocket_max_message_size
from .core import (
    ACCEPT,
    APP_TASKS,
    DISCLAIMER,
    HOW_TO_GET_MODELS,
    MAX_FILE_MB,
    MAX_UPLOAD_MB,
    Result,
    Upload,
    as_uploads,
    best_model,
    checkpoints_root,
    classify,
    find_models,
    hidden_smoke_models,
    load_model,
    upload_problem,
)
from .render import card_html, csv_download_html, model_label, result_html

__all__ = [
    "UPLOAD_GUARD_JS",
    "websocket_max_message_size",
    "tornado_settings",
    "voila_command",
    "in_voila",
    "ClassifierApp",
    "build_app",
]

# ----------------------------------------------------------------------------- serving


def voila_command(
    notebook: str | os.PathLike,
    port: int = 8866,
    ip: str = "127.0.0.1",
    python: str = sys.executable,
    settings: ServeSettings | None = None,
) -> list[str]:
    """The command line that serves ``notebook`` on ``ip:port`` (:func:`helpers.serving.serve_command`:
    Voila with the raised upload limit, idle-kernel culling and a cap on live kernels).

    ``settings`` (a :class:`~helpers.serving.ServeSettings`) overrides everything but ``ip`` and ``port``.
    """
    return serve_command(notebook, dataclasses.replace(settings or ServeSettings(), ip=ip, port=port), python)


def in_voila() -> bool:
    """True when the code runs in a kernel started by Voila (it sets ``VOILA_*`` variables)."""
    return any(k in os.environ for k in ("VOILA_KERNEL_ID", "VOILA_REQUEST_URL", "VOILA_SERVER_URL"))


#: Runs in the browser: keeps a file over the limits from being read and sent (ipywidgets'
#: FileUpload reads files with FileReader.readAsArrayBuffer). Such a file is sent empty, with its
#: real size, and the kernel answers with a message instead of the connection breaking.
UPLOAD_GUARD_JS = """
(function () {
  if (window.__medvitUploadGuard) { return; }
  var guard = {maxFile: MAX_FILE_BYTES, maxUpload: MAX_UPLOAD_BYTES, total: 0, refused: []};
  window.__medvitUploadGuard = guard;
  var read = FileReader.prototype.readAsArrayBuffer;
  FileReader.prototype.readAsArrayBuffer = function (blob) {
    if (blob && typeof blob.size === "number") {
      if (guard.total === 0) { setTimeout(function () { guard.total = 0; }, 0); }
      if (blob.size > guard.maxFile || guard.total + blob.size > guard.maxUpload) {
        guard.refused.push(blob.name || "?");
        console.warn("upload guard: " + (blob.name || "a file") + " (" + blob.size +
                     " bytes) is over the limit; not sent");
        return read.call(this, new Blob([]));
      }
      guard.total += blob.size;
    }
    return read.call(this, blob);
  };
})();
""".replace("MAX_FILE_BYTES", str(MAX_FILE_MB * 1_000_000)).replace("MAX_UPLOAD_BYTES", str(MAX_UPLOAD_MB * 1_000_000))

# ----------------------------------------------------------------------------- the widget app


class ClassifierApp:
    """The widgets and their behaviour. ``app.widget`` is what the notebook displays.

    The parts are attributes so that tests (and curious readers) can drive them: ``task``,
    ``model``, ``card``, ``upload``, ``button``, ``status``, ``results``, ``download``. Picked
    files are taken from the upload button into ``pending`` as they arrive (the button is then
    emptied, so picking the same files again is noticed).
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = root
        self._loaded: dict[str, tuple[Any, Any]] = {}
        self.entries: list[Any] = []
        self.pending: list[Upload] = []
        self.last_results: list[Result] = []
        self.notice = ""  # what the model list leaves out or does not choose, shown under the card
        self.runs = 0  # classifications done, shown as data-run on the status (a test waits on it)
        self._make_parts()
        self.task.observe(lambda _: self.refresh_models(), "value")
        self.model.observe(lambda _: self.show_card(), "value")
        self.upload.observe(lambda _: self.take_uploads(), "value")
        self.button.on_click(lambda _: self.run())
        self.widget = self._layout()
        self.refresh_models()

    def _make_parts(self) -> None:
        import ipywidgets as w

        self.header = w.HTML(
            "<h3 style='margin:0.2em 0'>Classify medical images with a trained model</h3>"
            "<p class='medvit-disclaimer' style='background:#fff4e5;border:1px solid #f0a020;padding:0.4em'>"
            f"<b>⚠ {html.escape(DISCLAIMER)}</b></p>"
        )
        self.task = w.Dropdown(options=[(t.title, k) for k, t in APP_TASKS.items()], value="blood", description="Task")
        self.model = w.Dropdown(options=[], description="Model", layout=w.Layout(width="42em"))
        self.card, self.hint = w.HTML(), w.HTML()
        self.upload = w.FileUpload(accept=ACCEPT, multiple=True, description="Upload")
        self.button = w.Button(description="Classify", button_style="primary", icon="play")
        self.limits = w.HTML(
            f"<small>PNG, JPEG, TIFF, PGM, BMP or DICOM; up to {MAX_FILE_MB} MB per file and "
            f"{MAX_UPLOAD_MB} MB per upload; several files at once give a table you can download.</small>"
        )
        self.status, self.results, self.download = w.HTML(), w.HTML(), w.HTML()

    def _layout(self) -> Any:
        import ipywidgets as w
        from IPython.display import Javascript

        scripts = w.Output(layout=w.Layout(display="none"))
        scripts.append_display_data(Javascript(UPLOAD_GUARD_JS + XSRF_COOKIE_JS))
        parts = [self.header]
        if in_voila():
            # Served by Voila the page is the app: hide the book's narrative and the other cells' outputs.
            style = "<style>.jp-MarkdownCell, .jp-Cell:not(:has(.medvit-app)) { display: none; }</style>"
            parts.insert(0, w.HTML(style))
        parts += [w.HBox([self.task]), self.model, self.card, self.hint, w.HBox([self.upload, self.button])]
        parts += [self.limits, self.status, self.results, self.download, scripts]
        widget = w.VBox(parts)
        widget.add_class("medvit-app")
        return widget

    # -- what belongs to a task and model
    def clear(self) -> None:
        """Forget the picked files, the results and the CSV link (they belonged to the previous choice)."""
        self.pending, self.last_results = [], []
        if self.upload.value:
            self.upload.value = ()
        self.status.value = self.results.value = self.download.value = ""

    # -- model choice
    def refresh_models(self) -> None:
        """List the checkpoints of the chosen task in the model dropdown (and clear the page)."""
        self.clear()
        self.notice = ""
        try:
            self.entries = find_models(self.task.value, self.root)
            hidden = hidden_smoke_models(self.task.value, self.root)
        except Exception as exc:
            self.entries, hidden = [], 0
            self.notice = f"<p class='medvit-error'>Could not list the checkpoints: {html.escape(str(exc))}</p>"
        if hidden:
            self.notice += (
                f"<p class='medvit-hidden'><small>{hidden} smoke-test checkpoint(s) of this task (a few images "
                "and steps, from running the chapters' tests) are not listed.</small></p>"
            )
        best = best_model(self.entries)
        if self.entries and best is None:  # every model is at chance level: none is chosen for the user
            self.notice += (
                "<p class='medvit-nodefault' style='background:#fee;padding:0.4em'>Every model listed for this task "
                "is no better than chance on its test images, so none is chosen for you. Pick one only to see how "
                "the app works: its answers say nothing about an image.</p>"
            )
        self.model.options = [(model_label(e), i) for i, e in enumerate(self.entries)]
        self.model.value = best
        if not self.entries:
            root = html.escape(str(checkpoints_root(self.root)))
            self.notice = (
                "<p class='medvit-nomodel' style='background:#eef;padding:0.4em'>"
                + HOW_TO_GET_MODELS.format(root=root)
                + "</p>"
                + self.notice
            )
        self.show_card()

    def current(self) -> tuple[Any, Any] | None:
        """The loaded model and card of the dropdown's choice (``None`` when there is none)."""
        if self.model.value is None or not self.entries:
            return None
        entry = self.entries[self.model.value]
        key = str(entry.folder)
        if key not in self._loaded:
            self._loaded[key] = load_model(entry)
        return self._loaded[key]

    @staticmethod
    def _heatmap_plan(model: Any, card: Any) -> str:
        try:
            return explanation_plan(model, card.input_size).describe()
        except NoMapError as exc:
            return f"none: {exc}"

    def show_card(self) -> None:
        """Load the chosen model and show its card, or say why it cannot be used (and clear the page)."""
        self.clear()
        if self.model.value is None or not self.entries:
            self.card.value, self.hint.value, self.button.disabled = "", self.notice, True
            return
        entry = self.entries[self.model.value]
        try:
            model, card = self.current()
            self.card.value = card_html(card, entry.folder, heatmap=self._heatmap_plan(model, card))
            expected = f"<small>Expected input: {html.escape(APP_TASKS[self.task.value].what)}.</small>"
            self.hint.value = expected + self.notice
            self.button.disabled = False
        except Exception as exc:
            self.card.value = (
                "<p class='medvit-error' style='color:#b00'><b>This model cannot be used:</b> "
                f"{html.escape(str(exc))}</p>"
            )
            self.button.disabled = True

    # -- files
    def take_uploads(self) -> None:
        """Take the files the browser has sent into ``pending``, empty the upload button, say what arrived."""
        files = as_uploads(self.upload.value)
        if not files:
            return  # the button was emptied (by this method or by a change of task or model)
        self.pending = files
        self.upload.value = ()
        self.results.value = self.download.value = ""
        self.show_pending()

    def show_pending(self) -> None:
        """Say which files are ready (and why some cannot be classified), and what to do next."""
        if not self.pending:
            self.status.value = ""
            return
        names = []
        for f in self.pending:
            problem = upload_problem(f)
            names.append(f.name + (f" ({problem})" if problem else ""))
        action = (
            "Press <b>Classify</b>."
            if not self.button.disabled
            else "There is no usable model for this task (see above), so nothing can be classified yet."
        )
        self.status.value = (
            f"<span class='medvit-ready'>{len(self.pending)} file(s) ready: "
            + html.escape(", ".join(names))
            + f". {action}</span>"
        )

    def _loaded_or_message(self) -> tuple[Any, Any] | None:
        try:
            loaded = self.current()
        except Exception as exc:
            loaded = None
            self.status.value = f"<span class='medvit-error'>{html.escape(str(exc))}</span>"
        if loaded is None:
            self.status.value = self.status.value or (
                "<span class='medvit-error'>No usable model for this task (see above).</span>"
            )
        return loaded

    def run(self, files: Any = None) -> list[Result]:
        """Classify ``files`` (default: the picked files) with the chosen model and show the results."""
        uploads = as_uploads(files) if files is not None else list(self.pending)
        self.results.value = self.download.value = ""
        if not uploads:
            self.status.value = "<span class='medvit-error'>Upload one or more images first.</span>"
            return []
        self.status.value = ""
        loaded = self._loaded_or_message()
        if loaded is None:
            return []
        model, card = loaded
        self.button.disabled = True
        self.status.value = f"<span class='medvit-busy'>Classifying {len(uploads)} file(s)…</span>"
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
        self.status.value = (
            f"<span class='medvit-done' data-run='{self.runs}'>Done: {ok} of {len(results)} "
            f"file(s) classified in {total:.2f} s.</span>"
        )
        return results


def build_app(root: str | os.PathLike | None = None) -> Any:
    """The classifier app as one ipywidgets widget (display it, or serve the notebook with Voila)."""
    return ClassifierApp(root).widget
