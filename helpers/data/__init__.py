"""Datasets: one registry, real layouts first, never a silent fallback.

``load_dataset(name, split=...)`` returns an :class:`~helpers.data.base.ImageDataset`;
``make_dataloaders(train, valid, batch_size)`` turns two of them into fastai ``DataLoaders``
(imported on first use, so that reading data does not import fastai).
"""
from __future__ import annotations

from typing import Any

from .base import SOURCES, TASKS, ImageDataset
from .registry import DATASETS, describe_source, load_dataset

__all__ = [
    "ImageDataset",
    "SOURCES",
    "TASKS",
    "DATASETS",
    "load_dataset",
    "describe_source",
    "make_dataloaders",
    "make_eval_loader",
    "Augment",
]

_LAZY = {"make_dataloaders", "make_eval_loader", "Augment"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import loaders

        return getattr(loaders, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
