"""Dataset registry: name -> loader, with the resolution order real -> download -> synthetic."""
from __future__ import annotations

from .. import config
from .base import ImageDataset
from .medmnist import MEDMNIST_INFO, read_medmnist_npz

__all__ = ["load_dataset", "describe_source"]


def describe_source(name: str) -> str:
    """Where ``name`` would be read from right now, in words (for the run-info cell)."""
    root = config.data_root()
    if name in MEDMNIST_INFO:
        path = root / "medmnist" / f"{name}.npz"
        return f"real ({path})" if path.exists() else f"not found at {path}"
    path = root / name
    return f"real ({path})" if path.exists() else f"not found at {path}"


def load_dataset(name: str, split: str = "train", size: int | None = None, profile=None) -> ImageDataset:
    """Load one split of a registered dataset."""
    root = config.data_root()
    if name in MEDMNIST_INFO:
        ds = read_medmnist_npz(root / "medmnist" / f"{name}.npz", name, split)
        print(f"[data] {name}/{ds.split}: {len(ds)} images, source=real ({root / 'medmnist'})")
        return ds
    raise KeyError(f"unknown dataset {name!r}")
