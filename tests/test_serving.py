"""Serving the app (helpers.serving): typed Voila settings, the JavaScript gate, idle culling, the fair
kernel cap, the XSRF cookie, and the local copies of the page's assets.

The browser test (tests/test_app_browser.py) checks the same settings with a real Voila and Chromium:
reloads leave no kernels behind, curls and killed browsers lock nobody out, the page over the cap gets
the message, and the page requests nothing outside 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from pathlib import Path

import pytest
from traitlets.config import Config

from helpers import serving


def test_settings_are_validated():
    assert serving.ServeSettings().ip == "127.0.0.1"  # this machine only, unless asked
    with pytest.raises(ValueError, match="max_kernels"):
        serving.ServeSettings(max_kernels=0)
    with pytest.raises(ValueError, match="port"):
        serving.ServeSettings(port=70000)
    with pytest.raises(ValueError, match="queue_s"):
        serving.ServeSettings(queue_s=0)


def test_an_orphan_is_reclaimed_within_a_minute_and_a_queued_page_outwaits_it():
    s = serving.ServeSettings()
    assert s.reclaim_s == s.cull_idle_s + s.cull_interval_s <= 60
    assert s.queue_s > s.reclaim_s  # a visitor who finds only orphans is served, not refused
    ping = serving.tornado_settings(ws_ping_s=s.ws_ping_s)
    assert ping["ws_ping_interval"] == 10_000 and ping["ws_ping_timeout"] == 20_000  # milliseconds
    assert s.ws_ping_s * 3 + s.reclaim_s <= 75  # a silent drop: noticed within two missed pings, then culled


def test_voila_config_is_typed_and_culls_orphans_only():
    s = serving.ServeSettings(port=9001, max_kernels=3, cull_idle_s=120, cull_interval_s=15, queue_s=200)
    cfg = serving.voila_config(s)
    assert cfg["Voila"]["tornado_settings"]["websocket_max_message_size"] == serving.websocket_max_message_size()
    assert cfg["Voila"]["port"] == 9001 and cfg["Voila"]["open_browser"] is False
    cull = cfg["MappingKernelManager"]
    assert cull == {"cull_idle_timeout": 120, "cull_interval": 15, "cull_connected": False, "cull_busy": False}
    assert cfg["VoilaConfiguration"]["multi_kernel_manager_class"] is serving.capped_kernel_manager()
    assert cfg["VoilaConfiguration"]["prelaunch_hook"] is serving.js_gate
    assert cfg["CappedKernelManager"] == {"max_kernels": 3, "room_wait_s": 200.0, "max_waiting": 8, "reclaim_s": 135}


def test_the_kernel_manager_takes_the_settings():
    manager = serving.capped_kernel_manager()(config=Config(serving.voila_config(serving.ServeSettings(max_kernels=3))))
    assert manager.max_kernels == 3 and manager.cull_idle_timeout == 30 and manager.cull_interval == 10
    assert manager.cull_connected is False


def test_voila_reads_the_settings_without_a_deprecation_warning(tmp_path):
    from voila.app import Voila

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        voila = Voila(config=Config(serving.voila_config(serving.ServeSettings(port=9002))))
    assert voila.tornado_settings["websocket_max_message_size"] == serving.websocket_max_message_size()
    assert voila.port == 9002 and voila.ip == "127.0.0.1" and voila.open_browser is False


def test_a_request_without_the_script_cookie_gets_the_gate_and_no_kernel():
    from tornado import web

    class Request:
        def __init__(self, cookies):
            self.cookies, self.headers = cookies, {}

        def get_cookie(self, name):
            return self.cookies.get(name)

        def set_header(self, name, value):
            self.headers[name] = value

    curl = Request({})
    with pytest.raises(web.Finish) as finish:
        serving.js_gate(curl, None, ".")
    page = finish.value.args[0]
    assert page == serving.JS_GATE_HTML and f"{serving.JS_COOKIE}=1" in page and "location.reload()" in page
    assert "<noscript>" in page and curl.headers["Cache-Control"] == "no-store"
    assert serving.js_gate(Request({serving.JS_COOKIE: "1"}), None, ".") is None  # a browser goes on to the app


def test_the_page_links_font_awesome_from_this_server():
    from voila.configuration import VoilaConfiguration
    from voila.paths import collect_template_paths

    ours = (serving.TEMPLATES / "index.html.j2").read_text()
    cdn = ours.split("replace('", 1)[1].split("'", 1)[0]
    lab = next(Path(p) / "index.html.j2" for p in collect_template_paths(["voila"], "lab") if p.endswith("lab"))
    assert cdn.startswith("https://") and lab.read_text().count(cdn) == 2  # what Voila links is what we replace
    assert "fontawesome_free/css/" in ours and "cdn" not in (serving.TEMPLATES / "page.html").read_text()
    css = serving.fontawesome_dir() / "fontawesome_free" / "css"
    assert (css / "all.min.css").is_file() and (css / "v4-shims.min.css").is_file()
    voila = serving.voila_class()()
    voila.voila_configuration = VoilaConfiguration(parent=voila)
    voila.setup_template_dirs()
    assert voila.template_paths[0] == str(serving.TEMPLATES)
    assert voila.static_paths[0] == str(serving.fontawesome_dir())


def test_a_kernel_over_the_cap_is_refused_with_a_message(monkeypatch):
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado import web

    started = []

    async def fake_start(self, *args, **kwargs):
        started.append(kwargs)
        return "new-kernel"

    monkeypatch.setattr(AsyncMappingKernelManager, "start_kernel", fake_start)
    manager = serving.capped_kernel_manager()(max_kernels=2, room_wait_s=0.5, reclaim_s=40)
    alive = ["a"]
    monkeypatch.setattr(manager, "list_kernel_ids", lambda: list(alive))
    assert asyncio.run(manager.start_kernel(kernel_name="python3")) == "new-kernel"
    alive.append("b")
    with pytest.raises(web.HTTPError) as err:
        asyncio.run(manager.start_kernel(kernel_name="python3"))
    assert err.value.status_code == 503
    reason = err.value.reason
    assert "already serving 2 pages" in reason and "Close another tab" in reason and "within 40 s" in reason
    assert len(started) == 1
    loop = asyncio.new_event_loop()
    loop.call_later(0.2, alive.pop)  # a reloaded page's kernel ends while the new page waits
    assert loop.run_until_complete(manager.start_kernel(kernel_name="python3")) == "new-kernel"
    loop.close()


def test_pages_over_the_cap_are_served_in_the_order_they_came(monkeypatch):
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado import web

    alive: list[str] = ["main"]

    async def fake_start(self, *args, **kwargs):
        await asyncio.sleep(0.05)  # a start takes time: no second page may slip in meanwhile
        alive.append(kwargs["name"])
        return kwargs["name"]

    monkeypatch.setattr(AsyncMappingKernelManager, "start_kernel", fake_start)
    manager = serving.capped_kernel_manager()(max_kernels=2, room_wait_s=3.0, max_waiting=3)
    monkeypatch.setattr(manager, "list_kernel_ids", lambda: list(alive))

    async def scenario():
        first = asyncio.ensure_future(manager.start_kernel(name="orphan"))
        await asyncio.sleep(0.01)
        waiting = []
        for name in ("a", "b", "c"):  # three pages arrive at the cap, in this order
            waiting.append(asyncio.ensure_future(manager.start_kernel(name=name)))
            await asyncio.sleep(0.01)
        with pytest.raises(web.HTTPError):  # a fourth finds three waiting: refused at once
            await manager.start_kernel(name="d")
        await first
        served = []
        for _ in range(3):  # one place frees up at a time (an orphan reclaimed, a tab closed)
            await asyncio.sleep(0.4)
            assert len(alive) <= 2, alive
            alive.remove(next(k for k in alive if k != "main"))
            done, _ = await asyncio.wait(waiting, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                served.append(task.result())
                waiting.remove(task)
        return served

    assert asyncio.run(scenario()) == ["a", "b", "c"]


def test_the_xsrf_cookie_script_sets_a_random_token_once():
    js = serving.XSRF_COOKIE_JS
    assert "_xsrf=" in js and "getRandomValues" in js and "SameSite=Strict" in js
    assert "document.cookie" in js and "return;" in js  # an existing cookie is left alone


def test_the_command_line_round_trips(tmp_path):
    nb = tmp_path / "app.ipynb"
    nb.write_text("{}")
    settings = serving.ServeSettings(
        port=9003, max_kernels=5, cull_idle_s=20, cull_interval_s=5, queue_s=45, ws_ping_s=7
    )
    cmd = serving.serve_command(nb, settings, python="python")
    assert cmd[:4] == ["python", "-m", "helpers.serving", str(nb)]
    assert serving._parse(cmd[3:]) == (str(nb), settings)
    with pytest.raises(SystemExit):
        serving._parse([str(tmp_path / "missing.ipynb")])


def test_serving_imports_neither_torch_nor_the_app():
    import subprocess

    code = "import sys, helpers.serving; print('torch' in sys.modules, 'helpers.app' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
