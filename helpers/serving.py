"""Serving the classifier app with Voila: upload limits, how long kernels live, and the launcher.

Voila runs the app's notebook in a Python kernel of its own for every page it serves; with torch,
timm and a model loaded, each holds about 1 GB. Left alone, every page load leaves one behind until
Voila stops. Four settings bound them, all applied by :func:`main` (``python -m helpers.serving``):

* **Shutdown when the tab closes.** Voila's page posts ``voila/api/shutdown/<kernel>`` from its
  ``beforeunload`` handler, with the ``_xsrf`` cookie's value as the form's token; but Voila's page
  never sets that cookie, so the post is refused (``403 '_xsrf' argument missing``) and the kernel
  lives on. :data:`XSRF_COOKIE_JS`, run in the page, sets a random token cookie when there is none:
  Tornado's check compares the form's token with the cookie (a page on another site can read
  neither), and the shutdown goes through.
* **Idle culling** (jupyter_server's ``MappingKernelManager``): every ``cull_interval_s`` seconds,
  a kernel with no open page (``cull_connected=False``) that has been idle for ``cull_idle_s``
  seconds is shut down. This catches the pages that went away without saying so (a crashed
  browser, a lost network). A page that is still open is never culled.
* **A cap on live kernels** (:func:`capped_kernel_manager`): once ``max_kernels`` kernels are alive,
  a new page gets HTTP 503 with a message that says why and what to do, instead of a kernel. A
  reload asks for the old page's shutdown and the new page at the same moment, and a shutdown
  takes a second or two, so a page at the cap first waits up to ``room_wait_s`` seconds for room.
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
    "ServeSettings",
    "websocket_max_message_size",
    "tornado_settings",
    "voila_config",
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


@dataclass(frozen=True)
class ServeSettings:
    """How Voila serves the app.

    Attributes:
        ip: the address to listen on (``127.0.0.1``: this machine only).
        port: the port.
        max_kernels: pages (one kernel each, about :data:`KERNEL_GB` GB) served at once; one more
            gets a 503 page that says why.
        cull_idle_s: a kernel without an open page that has been idle this long is shut down.
        cull_interval_s: how often idle kernels are looked for.
        max_upload_mb: the largest upload, which sets the websocket message limit.
    """

    ip: str = "127.0.0.1"
    port: int = 8866
    max_kernels: int = 4
    cull_idle_s: int = 600
    cull_interval_s: int = 60
    max_upload_mb: int = MAX_UPLOAD_MB

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        for name in ("max_kernels", "cull_idle_s", "cull_interval_s", "max_upload_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def websocket_max_message_size(max_upload_mb: int = MAX_UPLOAD_MB) -> int:
    """Bytes one websocket message may hold so that a full upload of ``max_upload_mb`` MB arrives.

    The largest upload plus a third (in case the client encodes it as base64) plus 8 MiB of margin.
    """
    return int(max_upload_mb * 1_000_000 * 4 / 3) + 8 * 2**20


def tornado_settings(max_upload_mb: int = MAX_UPLOAD_MB) -> dict[str, int]:
    """The Tornado settings Voila runs with: the raised websocket message limit."""
    return {"websocket_max_message_size": websocket_max_message_size(max_upload_mb)}


def voila_config(settings: ServeSettings) -> dict[str, dict[str, Any]]:
    """The traitlets configuration (typed values, by class name) that applies ``settings`` to Voila."""
    return {
        "Voila": {
            "ip": settings.ip,
            "port": settings.port,
            "open_browser": False,
            "tornado_settings": tornado_settings(settings.max_upload_mb),
        },
        "VoilaConfiguration": {"multi_kernel_manager_class": capped_kernel_manager()},
        "MappingKernelManager": {
            "cull_idle_timeout": settings.cull_idle_s,
            "cull_interval": settings.cull_interval_s,
            "cull_connected": False,
            "cull_busy": False,
        },
        "CappedKernelManager": {"max_kernels": settings.max_kernels},
    }


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
        f"--max-upload-mb={s.max_upload_mb}",
    ]


def _busy_message(alive: int, cull_idle_s: int) -> str:
    """The reason of the 503 page: why there is no app, and what to do."""
    wait = f"{cull_idle_s // 60} minutes" if cull_idle_s >= 120 else f"{cull_idle_s} seconds"
    orphans = f", or wait: a page whose tab is gone is closed after {wait} idle" if cull_idle_s > 0 else ""
    return (
        f"This app is already serving {alive} pages, the most it allows at once (each page holds a "
        f"Python kernel of about {KERNEL_GB:.0f} GB). Close another tab of this app{orphans}. Then reload this page."
    )


@functools.cache
def capped_kernel_manager() -> type:
    """jupyter_server's ``AsyncMappingKernelManager`` with a cap (``max_kernels``) on live kernels.

    Starting a kernel at the cap waits up to ``room_wait_s`` seconds for one to end (the kernel of a
    reloaded page is being shut down as the new page asks for one), then raises
    ``tornado.web.HTTPError(503)`` whose reason says why and what to do; Voila shows it as the page.
    (Built on first use, so importing this module does not import jupyter_server.)
    """
    import asyncio
    import time

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado import web
    from traitlets import Float, Integer

    class CappedKernelManager(AsyncMappingKernelManager):
        """Refuses a new kernel (HTTP 503 with a message) once ``max_kernels`` kernels are alive."""

        max_kernels = Integer(4, config=True, help="Kernels alive at once; one more page gets a 503 page.")
        room_wait_s = Float(10.0, config=True, help="Seconds a page at the cap waits for a kernel to end.")

        async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
            if kwargs.get("kernel_id") is not None:  # a restart of a kernel that is counted already
                return await super().start_kernel(*args, **kwargs)
            deadline = time.monotonic() + self.room_wait_s
            while len(self.list_kernel_ids()) >= self.max_kernels and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
            alive = len(self.list_kernel_ids())
            if alive >= self.max_kernels:
                self.log.warning("refused a new kernel: %d of at most %d alive", alive, self.max_kernels)
                raise web.HTTPError(503, reason=_busy_message(alive, self.cull_idle_timeout))
            return await super().start_kernel(*args, **kwargs)

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
        max_upload_mb=args.max_upload_mb,
    )
    return args.notebook, settings


def main(argv: list[str] | None = None) -> int:
    """Serve a notebook with Voila and :class:`ServeSettings` from the command line; returns at exit."""
    from traitlets.config import Config
    from voila.app import Voila

    notebook, settings = _parse(argv)
    print(f"[serving] {notebook} on http://{settings.ip}:{settings.port}/ with {asdict(settings)}", flush=True)
    Voila.launch_instance(argv=[notebook], config=Config(voila_config(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
