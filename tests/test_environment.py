"""pyproject.toml and environment.yml must ask for the same packages."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip: list[str] = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep.get("pip", [])
    return {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")}


def test_same_packages():
    py, env = _pyproject(), _environment()
    assert sorted(set(py) - set(env)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(env) - set(py)) == [], "in environment.yml but not pyproject.toml"


def test_same_version_bounds():
    py, env = _pyproject(), _environment()
    differ = {k: (py[k], env[k]) for k in py if k in env and py[k] != env[k]}
    assert differ == {}


def test_environment_installs_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = [p for d in env["dependencies"] if isinstance(d, dict) for p in d.get("pip", [])]
    assert "-e ." in pip


def test_importing_training_prints_no_torchscript_warning():
    """fastai's import-time TorchScript deprecation warning is filtered by helpers (it showed on every page
    that trains); other warnings still show."""
    import subprocess
    import sys

    code = "import warnings; warnings.simplefilter('default'); import helpers.train; warnings.warn('still shown')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "torch.jit.script" not in out.stderr and "still shown" in out.stderr
