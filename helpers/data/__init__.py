"""Datasets: one registry of specs, real layouts first, never a silent fallback.

``load_dataset(name, split=...)`` returns an :class:`~helpers.data.base.ImageDataset`; the names
are the :class:`~helpers.data.specs.DatasetSpec` entries of :data:`DATASETS`;
``make_dataloaders(train, valid, batch_size)`` turns two datasets into fastai ``DataLoaders``.

The registry (with its readers and downloaders) and the loaders (with fastai) are imported on
first use, so that ``helpers.data.cache`` — the rule that prepares an image, which inference
shares — can be imported without them.
"""

from __future__ import annotations

from typing import Any

from .base import SOURCES, TASK_KINDS, ImageDataset

__all__ = [
    "ImageDataset",
    "SOURCES",
    "TASK_KINDS",
    "DATASETS",
    "load_dataset",
    "describe_source",
    "make_dataloaders",
    "make_eval_loader",
    "Augment",
]

_LAZY = {
    "DATASETS": "specs",
    "load_dataset": "registry",
    "describe_source": "registry",
    "make_dataloaders": "loaders",
    "make_eval_loader": "loaders",
    "Augment": "loaders",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
