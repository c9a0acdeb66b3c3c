"""Serving the classifier app with Voila: who gets a kernel, how long it lives, and the launcher.

Voila runs the app's notebook in a Python kernel of its own for every page it serves; with torch,
timm and a model loaded, each holds about 1 GB. Left alone, every request for the page leaves one
behind until Voila stops, and a few requests lock every later visitor out. :func:`main`
(``python -m helpers.serving``) applies these rules, each with what Voila and jupyter_server offer:

* **No kernel without a browser.** Voila starts a kernel for every ``GET`` of the page, so a
  client that never runs the page's script (``curl``, a link preview, a crawler) would hold one.
  Voila's ``prelaunch_hook`` (:func:`js_gate`) runs before the kernel starts: a request without
  the :data:`JS_COOKIE` cookie gets a small page (:data:`JS_GATE_HTML`) whose script sets the cookie
  and reloads, and no kernel. Only a browser that runs scripts comes back for the app.
* **A kernel without a page is reclaimed within a minute.** jupyter_server counts the websockets
  open to each kernel; its idle culler (``cull_connected=False``) shuts down a kernel with none that
  has been idle ``cull_idle_s`` seconds, checking every ``cull_interval_s`` seconds. A page that never
  connected (its script did not run, or a client took the HTML and left) or whose browser was
  killed (the socket closes) is gone ``cull_idle_s + cull_interval_s`` seconds after its last
  activity; a connection lost without a word (a laptop lid, a network drop) is noticed by the
  websocket pings (every ``ws_ping_s`` seconds, dropped after two unanswered) and then culled
  alike. A page that is open is never culled, however long it idles.
* **Shutdown when the tab closes.** Voila's page posts ``voila/api/shutdown/<kernel>`` from its
  ``beforeunload`` handler, with the ``_xsrf`` cookie's value as the form's token; but Voila's page
  never sets that cookie, so the post is refused (``403 '_xsrf' argument missing``) and the kernel
  lives on. :data:`XSRF_COOKIE_JS`, run in the page, sets a random token cookie when there is none:
  Tornado's check compares the form's token with the cookie (a page on another site can read
  neither), and the shutdown goes through.
* **A fair cap on live kernels** (:func:`capped_kernel_manager`): at most ``max_kernels`` kernels
  live at once. A page over the cap waits in a first-come, first-served queue for up to
  ``queue_s`` seconds (longer than an orphan takes to be reclaimed), then gets HTTP 503 with a
  message that says why and what to do; at most ``max_waiting`` pages wait, the next is refused at
  once. Voila's preheated kernels (``preheat_kernel``, ``pool_size``) are not used: they make a
  page faster, but hold ``pool_size`` idle kernels more and still give one to every request.
* **Nothing fetched from outside.** Voila's templates link Font Awesome from a CDN, which fails
  offline and tells a third party who uses the app. :func:`voila_class` serves the stylesheet and
  fonts of the ``fontawesome-free`` package from this server (``voila/static/fontawesome_free/``)
  through the templates in ``helpers/serving_templates``.
* **Upload limits**: uploads reach the kernel in one websocket message and Tornado drops any message
  over its limit (10 MiB by default) without a word, so the limit is raised to fit
  :data:`MAX_UPLOAD_MB` (:func:`websocket_max_message_size`).

The settings travel as a frozen :class:`ServeSettings` and reach Voila as typed traitlets
configuration (:func:`voila_config`), not as command-line strings. This module imports neither
torch nor the app, so the server process stays small; the app (:mod:`helpers.app`) takes its upload
limits from here.
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_FILE_MB",
    "MAX_UPLOAD_MB",
    "XSRF_COOKIE_JS",
    "JS_COOKIE",
    "JS_GATE_HTML",
    "TEMPLATES",
    "ServeSettings",
    "websocket_max_message_size",
    "tornado_settings",
    "js_gate",
    "fontawesome_dir",
    "voila_config",
    "voila_class",
    "serve_command",
    "capped_kernel_manager",
    "main",
]

#: Largest single file the app takes, in MB (10^6 bytes). A 50 MB DICOM mammogram fits.
MAX_FILE_MB = 64
#: Largest total of one upload (all files picked at once), in MB.
MAX_UPLOAD_MB = 128
#: Memory one app kernel holds once the page has loaded (torch, timm, a model), in GB, as measured.
KERNEL_GB = 1.0
#: The templates that replace Voila's CDN links with this server's copies (see the module docstring).
TEMPLATES = Path(__file__).with_name("serving_templates")

#: Runs in the page: gives Voila's shutdown-on-close post the XSRF token it needs (see the module
#: docstring). The cookie is random, lives for the session, and is sent only to this server.
XSRF_COOKIE_JS = """
(function () {
  if (/(^|;\\s*)_xsrf=/.test(document.cookie)) { return; }
  var bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  var token = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  document.cookie = "_xsrf=" + token + "; path=/; SameSite=Strict";
})();
"""

#: The cookie a browser shows it runs the page's scripts with (:func:`js_gate`).
JS_COOKIE = "medvit_js"
#: What a request without :data:`JS_COOKIE` gets instead of a kernel: a page whose script sets the
#: cookie and reloads (a browser sees the app a moment later), or says what is missing.
JS_GATE_HTML = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Classifier app</title></head>
<body>
<p id="medvit-gate">Starting the classifier app&hellip;</p>
<noscript><p>This app needs JavaScript: each page runs a Python kernel of its own, started only for a
browser that runs the page's script. Enable JavaScript and reload this page.</p></noscript>
<script>
document.cookie = "{JS_COOKIE}=1; path=/; SameSite=Strict";
if (document.cookie.indexOf("{JS_COOKIE}=1") >= 0) {{ location.reload(); }}
else {{ document.getElementById("medvit-gate").textContent =
  "This app needs cookies for this address (one, to know that the page's script runs). Allow them and reload."; }}
</script>
</body></html>
"""


@dataclass(frozen=True)
class ServeSettings:
    """How Voila serves the app.

    Attributes:
        ip: the address to listen on (``127.0.0.1``: this machine only).
        port: the port.
        max_kernels: pages (one kernel each, about :data:`KERNEL_GB` GB) served at once.
        cull_idle_s: a kernel without an open page that has been idle this long is shut down.
        cull_interval_s: how often such kernels are looked for.
        queue_s: how long a page over the cap waits for a kernel, first come first served, before
            it gets the 503 page; longer than ``cull_idle_s + cull_interval_s``, so that a visitor
            who finds every place held by orphans is served once they are reclaimed.
        max_waiting: pages that may wait at once; one more is refused at once.
        ws_ping_s: seconds between websocket pings; a page that answers none of two is disconnected.
        max_upload_mb: the largest upload, which sets the websocket message limit.
    """

    ip: str = "127.0.0.1"
    port: int = 8866
    max_kernels: int = 4
    cull_idle_s: int = 30
    cull_interval_s: int = 10
    queue_s: int = 60
    max_waiting: int = 8
    ws_ping_s: int = 10
    max_upload_mb: int = MAX_UPLOAD_MB

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        for name in ("max_kernels", "cull_idle_s", "cull_interval_s", "queue_s", "ws_ping_s", "max_upload_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_waiting < 0:
            raise ValueError(f"max_waiting must be at least 0, got {self.max_waiting}")

    @property
    def reclaim_s(self) -> int:
        """Seconds, at most, from a page's last activity until the kernel of a page that never
        connected, or whose browser went away, is shut down."""
        return self.cull_idle_s + self.cull_interval_s


def websocket_max_message_size(max_upload_mb: int = MAX_UPLOAD_MB) -> int:
    """Bytes one websocket message may hold so that a full upload of ``max_upload_mb`` MB arrives.

    The largest upload plus a third (in case the client encodes it as base64) plus 8 MiB of margin.
    """
    return int(max_upload_mb * 1_000_000 * 4 / 3) + 8 * 2**20


def tornado_settings(max_upload_mb: int = MAX_UPLOAD_MB, ws_ping_s: int = 10) -> dict[str, int]:
    """The Tornado settings Voila runs with: the raised websocket message limit, and jupyter_server's
    websocket pings (milliseconds) every ``ws_ping_s`` seconds, a page that answers none of two dropped."""
    return {
        "websocket_max_message_size": websocket_max_message_size(max_upload_mb),
        "ws_ping_interval": ws_ping_s * 1000,
        "ws_ping_timeout": 2 * ws_ping_s * 1000,
    }


def js_gate(req: Any, notebook: Any = None, cwd: str | None = None) -> None:
    """Voila's ``prelaunch_hook``: a request without :data:`JS_COOKIE` gets :data:`JS_GATE_HTML`
    and no kernel (``tornado.web.Finish`` ends the request before Voila starts one); with the
    cookie, Voila goes on and serves the app."""
    from tornado import web

    if req.get_cookie(JS_COOKIE):
        return None
    req.set_header("Content-Type", "text/html; charset=UTF-8")
    req.set_header("Cache-Control", "no-store")
    raise web.Finish(JS_GATE_HTML)


def fontawesome_dir() -> Path:
    """The folder whose ``fontawesome_free/`` holds Font Awesome 5's CSS and fonts (the
    ``fontawesome-free`` package).

    Raises:
        RuntimeError: when the package is not installed, saying how to install it.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        folder = Path(distribution("fontawesome-free").locate_file("fontawesome-free/static"))
    except PackageNotFoundError:
        folder = None
    if folder is None or not (folder / "fontawesome_free" / "css" / "all.min.css").is_file():
        raise RuntimeError(
            "the app serves Font Awesome itself and needs the fontawesome-free package: "
            "pip install 'fontawesome-free>=5.15,<6' (make install does)"
        )
    return folder


def voila_config(settings: ServeSettings) -> dict[str, dict[str, Any]]:
    """The traitlets configuration (typed values, by class name) that applies ``settings`` to Voila."""
    return {
        "Voila": {
            "ip": settings.ip,
            "port": settings.port,
            "open_browser": False,
            "tornado_settings": tornado_settings(settings.max_upload_mb, settings.ws_ping_s),
        },
        "VoilaConfiguration": {
            "multi_kernel_manager_class": capped_kernel_manager(),
            "prelaunch_hook": js_gate,
        },
        "MappingKernelManager": {
            "cull_idle_timeout": settings.cull_idle_s,
            "cull_interval": settings.cull_interval_s,
            "cull_connected": False,
            "cull_busy": False,
        },
        "CappedKernelManager": {
            "max_kernels": settings.max_kernels,
            "room_wait_s": float(settings.queue_s),
            "max_waiting": settings.max_waiting,
            "reclaim_s": settings.reclaim_s,
        },
    }


@functools.cache
def voila_class() -> type:
    """Voila's application, its templates and static files preceded by this project's: the page and
    its error pages (:data:`TEMPLATES`) link Font Awesome from this server (:func:`fontawesome_dir`)."""
    from voila.app import Voila

    class LocalAssetsVoila(Voila):
        """Voila that serves every asset of its pages itself."""

        def setup_template_dirs(self) -> None:
            super().setup_template_dirs()
            self.template_paths.insert(0, str(TEMPLATES))
            self.static_paths.insert(0, str(fontawesome_dir()))

    return LocalAssetsVoila


def serve_command(
    notebook: str | Path, settings: ServeSettings | None = None, python: str = sys.executable
) -> list[str]:
    """The command line that serves ``notebook`` with ``settings`` (``python -m helpers.serving ...``)."""
    s = settings or ServeSettings()
    return [
        python,
        "-m",
        "helpers.serving",
        str(notebook),
        f"--ip={s.ip}",
        f"--port={s.port}",
        f"--max-kernels={s.max_kernels}",
        f"--cull-idle={s.cull_idle_s}",
        f"--cull-interval={s.cull_interval_s}",
        f"--queue={s.queue_s}",
        f"--max-waiting={s.max_waiting}",
        f"--ws-ping={s.ws_ping_s}",
        f"--max-upload-mb={s.max_upload_mb}",
    ]


def _busy_message(alive: int, reclaim_s: int, waited_s: float) -> str:
    """The reason of the 503 page: why there is no app, and what to do."""
    waited = f" This page waited {waited_s:.0f} s in the queue for one." if waited_s >= 1 else ""
    return (
        f"This app is already serving {alive} pages, the most it allows at once (each page holds a "
        f"Python kernel of about {KERNEL_GB:.0f} GB).{waited} Close another tab of this app, or wait: a page "
        f"whose tab is gone or which lost its connection gives its place back within {reclaim_s} s. "
        "Then reload this page."
    )


@functools.cache
def capped_kernel_manager() -> type:
    """jupyter_server's ``AsyncMappingKernelManager`` with a fair cap (``max_kernels``) on live kernels.

    A page that finds ``max_kernels`` kernels alive (or starting) queues: pages get kernels in the
    order they asked, as places free up, for up to ``room_wait_s`` seconds; then, or at once when
    ``max_waiting`` pages wait already, ``tornado.web.HTTPError(503)`` whose reason says why and what
    to do, which Voila shows as the page. (Built on first use, so importing this module does not
    import jupyter_server.)
    """
    import asyncio
    import collections
    import time

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado import web
    from traitlets import Float, Integer

    class CappedKernelManager(AsyncMappingKernelManager):
        """Queues a new page, first come first served, while ``max_kernels`` kernels are alive; refuses
        it (HTTP 503 with a message) after ``room_wait_s`` seconds or beyond ``max_waiting`` waiting."""

        max_kernels = Integer(4, config=True, help="Kernels alive at once; more pages wait in a queue.")
        room_wait_s = Float(60.0, config=True, help="Seconds a page over the cap waits for a kernel.")
        max_waiting = Integer(8, config=True, help="Pages that may wait at once; one more gets the 503 page.")
        reclaim_s = Integer(40, config=True, help="Seconds until an orphan's kernel is reclaimed (for the message).")

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._queue: collections.deque[object] = collections.deque()
            self._starting = 0

        def _room(self) -> bool:
            return len(self.list_kernel_ids()) + self._starting < self.max_kernels

        async def _wait_turn(self, ticket: object) -> None:
            t0 = time.monotonic()
            while not (self._queue[0] is ticket and self._room()):
                if time.monotonic() - t0 >= self.room_wait_s:
                    alive = len(self.list_kernel_ids())
                    self.log.warning("refused a page after %.0f s queued: %d kernels alive", self.room_wait_s, alive)
                    raise web.HTTPError(503, reason=_busy_message(alive, self.reclaim_s, time.monotonic() - t0))
                await asyncio.sleep(0.25)
            if time.monotonic() - t0 >= 1:
                self.log.info("a page got its kernel after %.1f s in the queue", time.monotonic() - t0)

        async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
            if kwargs.get("kernel_id") is not None:  # a restart of a kernel that is counted already
                return await super().start_kernel(*args, **kwargs)
            if not self._room() and len(self._queue) >= self.max_waiting:
                alive = len(self.list_kernel_ids())
                self.log.warning("refused a page: %d kernels alive and %d pages waiting", alive, len(self._queue))
                raise web.HTTPError(503, reason=_busy_message(alive, self.reclaim_s, 0.0))
            ticket = object()
            self._queue.append(ticket)
            try:
                await self._wait_turn(ticket)
            finally:
                self._queue.remove(ticket)
            self._starting += 1
            try:
                return await super().start_kernel(*args, **kwargs)
            finally:
                self._starting -= 1

    return CappedKernelManager


def _parse(argv: list[str] | None) -> tuple[str, ServeSettings]:
    d = ServeSettings()
    parser = argparse.ArgumentParser(
        prog="python -m helpers.serving", description="Serve the classifier app's notebook with Voila."
    )
    parser.add_argument("notebook", help="the notebook to serve, e.g. book/tools/app.ipynb")
    parser.add_argument("--ip", default=d.ip, help=f"address to listen on (default {d.ip}: this machine only)")
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument("--max-kernels", type=int, default=d.max_kernels, help="pages served at once")
    parser.add_argument("--cull-idle", type=int, default=d.cull_idle_s, help="seconds before an orphan is shut")
    parser.add_argument("--cull-interval", type=int, default=d.cull_interval_s, help="seconds between checks")
    parser.add_argument("--queue", type=int, default=d.queue_s, help="seconds a page over the cap waits")
    parser.add_argument("--max-waiting", type=int, default=d.max_waiting, help="pages that may wait at once")
    parser.add_argument("--ws-ping", type=int, default=d.ws_ping_s, help="seconds between websocket pings")
    parser.add_argument("--max-upload-mb", type=int, default=d.max_upload_mb, help="largest upload in MB")
    args = parser.parse_args(argv)
    if not Path(args.notebook).is_file():
        parser.error(f"no notebook at {args.notebook}")
    settings = ServeSettings(
        ip=args.ip,
        port=args.port,
        max_kernels=args.max_kernels,
        cull_idle_s=args.cull_idle,
        cull_interval_s=args.cull_interval,
        queue_s=args.queue,
        max_waiting=args.max_waiting,
        ws_ping_s=args.ws_ping,
        max_upload_mb=args.max_upload_mb,
    )
    return args.notebook, settings


def main(argv: list[str] | None = None) -> int:
    """Serve a notebook with Voila and :class:`ServeSettings` from the command line; returns at exit."""
    from traitlets.config import Config

    notebook, settings = _parse(argv)
    fontawesome_dir()  # fail before serving when an asset the page needs is missing
    print(f"[serving] {notebook} on http://{settings.ip}:{settings.port}/ with {asdict(settings)}", flush=True)
    voila_class().launch_instance(argv=[notebook], config=Config(voila_config(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
