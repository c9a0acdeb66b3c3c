"""Datasets: one registry, real layouts first, never a silent fallback.

``load_dataset(name, split=...)`` returns an :class:`~helpers.data.base.ImageDataset`;
``make_dataloaders(train, valid, batch_size)`` turns two of them into fastai ``DataLoaders``.
"""
from __future__ import annotations

from .base import SOURCES, TASKS, ImageDataset
from .loaders import Augment, make_dataloaders, make_eval_loader
from .registry import describe_source, load_dataset

__all__ = [
    "ImageDataset",
    "SOURCES",
    "TASKS",
    "load_dataset",
    "describe_source",
    "make_dataloaders",
    "make_eval_loader",
    "Augment",
]
