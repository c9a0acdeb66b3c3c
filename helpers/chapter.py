"""The chapter template: the three cells every notebook of the book starts with.

1. **Colab install** (tagged ``remove-cell``, so the rendered book hides it): installs this
   package from the repository when the notebook runs in Google Colab, and does nothing elsewhere.
2. **Parameters** (tagged ``parameters``, for papermill): ``PROFILE`` and the chapter's knobs.
   ``PROFILE = None`` means "ask ``MEDVIT_PROFILE``, else ``quick``".
3. **Run info**: resolves the profile, seeds everything and prints profile, device, hardware,
   package versions and the data source of each dataset the chapter uses.

``python -m helpers new-chapter book/part/name.ipynb "Title" --param EPOCHS=3`` writes a new
notebook with these cells; ``tests/test_chapters.py`` checks that every notebook in the book has
them, with the install cell as :func:`colab_install_source` writes it (white space aside). The
cells are written as ``ruff format`` lays them out, so a new chapter passes ``make lint``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import config

__all__ = [
    "repository_url",
    "colab_install_source",
    "parameters_source",
    "runinfo_source",
    "template_cells",
    "new_chapter",
    "KERNELSPEC",
]

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def repository_url(config_file: str | Path | None = None) -> str:
    """The repository URL, read from ``repository.url`` in ``_config.yml`` (its one home).

    Args:
        config_file: the book's configuration; default ``_config.yml`` at the checkout's root.

    Raises:
        FileNotFoundError: without a configuration (the package is not installed from a checkout).
        ValueError: when the configuration has no ``repository.url``.
    """
    import yaml

    cfg = Path(config_file) if config_file is not None else config.repo_root() / "_config.yml"
    if not cfg.is_file():
        raise FileNotFoundError(f"no {cfg}: the repository URL is read from the book's _config.yml, in a checkout")
    data = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
    url = (data.get("repository") or {}).get("url") if isinstance(data, dict) else None
    if not url:
        raise ValueError(f"{cfg} has no repository.url: set it to the book's repository (https://github.com/...)")
    return str(url).rstrip("/")


def colab_install_source(url: str | None = None) -> str:
    """Source of the first cell: install the package in Colab, do nothing elsewhere (as ``ruff format`` lays it out)."""
    url = url or repository_url()
    return (
        "# Runs only in Google Colab: installs this book's `helpers` package. Elsewhere it does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "-q", "git+{url}.git"], check=True\n'
        "    )"
    )


def _literal(value: Any) -> str:
    """``repr(value)``, with strings in double quotes as ``ruff format`` writes them."""
    if isinstance(value, str) and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return repr(value)


def parameters_source(params: dict[str, Any] | None = None) -> str:
    """Source of the papermill ``parameters`` cell. ``PROFILE`` always comes first."""
    lines = [
        '# Parameters (papermill: -p NAME VALUE). PROFILE: "smoke", "quick" or "full";',
        '# None means $MEDVIT_PROFILE, else "quick".',
        "PROFILE = None",
    ]
    for name, value in (params or {}).items():
        if name == "PROFILE":
            continue
        lines.append(f"{name} = {_literal(value)}")
    return "\n".join(lines)


def runinfo_source(datasets: Iterable[str] = ()) -> str:
    """Source of the run-info cell."""
    names = list(datasets)
    return (
        "from helpers import config, runinfo\n"
        "\n"
        "profile = config.get_profile(PROFILE)\n"
        "config.seed_everything(42)\n"
        f"run_info = runinfo.show(profile, datasets={json.dumps(names)})"
    )


def _cell(kind: str, source: str, tags: list[str] | None = None) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "id": uuid.uuid4().hex[:8], "metadata": {}, "source": source}
    if tags:
        cell["metadata"]["tags"] = tags
    if kind == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


def template_cells(params: dict[str, Any] | None = None, datasets: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The three template cells as nbformat-4 cell dicts."""
    return [
        _cell("code", colab_install_source(), ["remove-cell"]),
        _cell("code", parameters_source(params), ["parameters"]),
        _cell("code", runinfo_source(datasets)),
    ]


def new_chapter(
    path: str | Path,
    title: str,
    params: dict[str, Any] | None = None,
    datasets: Iterable[str] = (),
    intro: str = "",
) -> Path:
    """Write a new chapter notebook: a title cell, then the template cells.

    Raises:
        FileExistsError: when ``path`` exists (a chapter is never overwritten).
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; edit it instead")
    heading = f"# {title}\n" + (f"\n{intro}\n" if intro else "")
    nb = {
        "cells": [_cell("markdown", heading)] + template_cells(params, datasets),
        "metadata": {
            "kernelspec": dict(KERNELSPEC),
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tokens(source: str) -> str:
    """``source`` without its white space: the install cell may be laid out by ``ruff format`` or not."""
    return re.sub(r"\s+", "", source)


def check_notebook(path: str | Path) -> list[str]:
    """Problems with a chapter notebook's template cells (an empty list when it is fine)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    problems: list[str] = []
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        problems.append("metadata.kernelspec.name must be 'python3' (papermill needs it)")
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if len(code) < 3:
        return problems + ["fewer than three code cells"]
    if _tokens(_source(code[0])) != _tokens(colab_install_source()):
        problems.append("first code cell is not the Colab install cell of helpers.chapter")
    if "parameters" not in code[1].get("metadata", {}).get("tags", []):
        problems.append("second code cell is not tagged 'parameters'")
    elif not re.search(r"^PROFILE\s*=", _source(code[1]), re.M):
        problems.append("parameters cell does not set PROFILE")
    if "runinfo.show(" not in _source(code[2]):
        problems.append("third code cell does not call runinfo.show")
    for c in code:
        if c.get("outputs"):
            problems.append("stored outputs: notebooks are kept without outputs")
            break
    return problems
