"""Serving the app (helpers.serving): typed Voila settings, idle culling, the kernel cap, the XSRF cookie.

The browser test (tests/test_app_browser.py) checks the same settings with a real Voila and Chromium:
reloads leave no kernels behind and the page over the cap gets the message.
"""

from __future__ import annotations

import asyncio
import sys
import warnings

import pytest
from traitlets.config import Config

from helpers import serving


def test_settings_are_validated():
    assert serving.ServeSettings().ip == "127.0.0.1"  # this machine only, unless asked
    with pytest.raises(ValueError, match="max_kernels"):
        serving.ServeSettings(max_kernels=0)
    with pytest.raises(ValueError, match="port"):
        serving.ServeSettings(port=70000)


def test_voila_config_is_typed_and_culls_orphans_only():
    s = serving.ServeSettings(port=9001, max_kernels=3, cull_idle_s=120, cull_interval_s=15)
    cfg = serving.voila_config(s)
    assert cfg["Voila"]["tornado_settings"] == {"websocket_max_message_size": serving.websocket_max_message_size()}
    assert cfg["Voila"]["port"] == 9001 and cfg["Voila"]["open_browser"] is False
    cull = cfg["MappingKernelManager"]
    assert cull == {"cull_idle_timeout": 120, "cull_interval": 15, "cull_connected": False, "cull_busy": False}
    assert cfg["VoilaConfiguration"]["multi_kernel_manager_class"] is serving.capped_kernel_manager()


def test_the_kernel_manager_takes_the_settings():
    manager = serving.capped_kernel_manager()(config=Config(serving.voila_config(serving.ServeSettings(max_kernels=3))))
    assert manager.max_kernels == 3 and manager.cull_idle_timeout == 600 and manager.cull_interval == 60
    assert manager.cull_connected is False


def test_voila_reads_the_settings_without_a_deprecation_warning(tmp_path):
    from voila.app import Voila

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        voila = Voila(config=Config(serving.voila_config(serving.ServeSettings(port=9002))))
    assert voila.tornado_settings["websocket_max_message_size"] == serving.websocket_max_message_size()
    assert voila.port == 9002 and voila.ip == "127.0.0.1" and voila.open_browser is False


def test_a_kernel_over_the_cap_is_refused_with_a_message(monkeypatch):
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado import web

    started = []

    async def fake_start(self, *args, **kwargs):
        started.append(kwargs)
        return "new-kernel"

    monkeypatch.setattr(AsyncMappingKernelManager, "start_kernel", fake_start)
    manager = serving.capped_kernel_manager()(max_kernels=2, room_wait_s=0.5)
    alive = ["a"]
    monkeypatch.setattr(manager, "list_kernel_ids", lambda: list(alive))
    assert asyncio.run(manager.start_kernel(kernel_name="python3")) == "new-kernel"
    alive.append("b")
    with pytest.raises(web.HTTPError) as err:
        asyncio.run(manager.start_kernel(kernel_name="python3"))
    assert err.value.status_code == 503
    assert "already serving 2 pages" in err.value.reason and "Close another tab" in err.value.reason
    assert len(started) == 1
    loop = asyncio.new_event_loop()
    loop.call_later(0.2, alive.pop)  # a reloaded page's kernel ends while the new page waits
    assert loop.run_until_complete(manager.start_kernel(kernel_name="python3")) == "new-kernel"
    loop.close()


def test_the_xsrf_cookie_script_sets_a_random_token_once():
    js = serving.XSRF_COOKIE_JS
    assert "_xsrf=" in js and "getRandomValues" in js and "SameSite=Strict" in js
    assert "document.cookie" in js and "return;" in js  # an existing cookie is left alone


def test_the_command_line_round_trips(tmp_path):
    nb = tmp_path / "app.ipynb"
    nb.write_text("{}")
    settings = serving.ServeSettings(port=9003, max_kernels=5, cull_idle_s=300, cull_interval_s=30)
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
