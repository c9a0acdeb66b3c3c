"""What every chapter prints first: profile, device, hardware, package versions and data source.

Numbers in the book are only comparable when one knows what produced them, so each chapter's
run-info cell calls :func:`show`, and every run record stores :func:`collect`.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from . import config

__all__ = ["versions", "hardware", "collect", "show", "in_colab"]

PACKAGES = ("torch", "torchvision", "timm", "fastai", "numpy", "scikit-learn", "medvit-book")


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that decide results (``"missing"`` when absent)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """The machine: CPU, usable cores, memory, and the accelerator if any."""
    import torch

    device = config.get_device()
    info: dict[str, Any] = {
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages * page_size / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        pass
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_memory_gb"] = round(props.total_memory / 1024**3, 1)
    return info


def collect(profile: config.Profile | str | None = None, datasets: Iterable[str] = ()) -> dict[str, Any]:
    """Everything :func:`show` prints, as a dict for run records."""
    prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    info: dict[str, Any] = {
        "profile": prof.name,
        "hardware": hardware(),
        "versions": versions(),
        "data_root": str(config.data_root()),
        "runs_dir": str(config.runs_dir(create=False)),
        "colab": in_colab(),
        "build": os.environ.get("MEDVIT_BUILD", "").strip() or None,  # the book build that ran this page
    }
    if datasets:
        from .data import describe_source

        info["data_sources"] = {name: describe_source(name) for name in datasets}
    return info


def _wrapped(label: str, items: list[str], per_line: int = 4) -> list[str]:
    """``label`` then the items, ``per_line`` to a line, continuation lines indented under the first."""
    chunks = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)] or [""]
    return [label + chunks[0]] + [" " * len(label) + c for c in chunks[1:]]


def _data_root_in_words() -> str:
    """Where the datasets are read from, as a page may print it (no path of the machine that built it)."""
    if os.environ.get("MEDVIT_DATA", "").strip():
        return "$MEDVIT_DATA (set for this run)"
    return "$MEDVIT_DATA (not set: the folder data/ of the book's repository)"


def page_number(x: float) -> str:
    """A number as a page's tables show it: three significant digits, thousands whole (0.901, 360, 17,092)."""
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def page_tables() -> None:
    """Set pandas to print a page's tables with :func:`page_number` (called by :func:`show`)."""
    import pandas as pd

    pd.set_option("display.float_format", page_number)


def show(profile: config.Profile | str | None = None, datasets: Iterable[str] = ()) -> dict[str, Any]:
    """Print the run-info block at the top of a chapter and return it as a dict; tables on the page then
    print numbers to three significant digits (:func:`page_tables`)."""
    page_tables()
    info = collect(profile, datasets)
    hw = info["hardware"]
    prof = config.get_profile(info["profile"])
    lines = [
        f"profile     : {prof.name} — {prof.description}",
        f"device      : {hw['device']}" + (f" ({hw['gpu']})" if "gpu" in hw else ""),
        f"hardware    : {hw['cpu']}, {hw['cpu_cores']} cores, {hw.get('memory_gb', '?')} GB RAM",
        *_wrapped("versions    : ", [f"{k} {v}" for k, v in info["versions"].items()]),
        f"data root   : {_data_root_in_words()}",
    ]
    for name, source in info.get("data_sources", {}).items():
        lines.append(f"data {name:<7}: {source}")
    print("\n".join(lines))
    return info
