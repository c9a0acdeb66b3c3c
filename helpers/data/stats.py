"""Descriptive statistics of datasets: label prevalence and co-occurrence, image sizes, sample picks.

Used by the datasets chapter; kept here so that the numbers it prints are computed by tested code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..imageio import ImageReadError, describe_image
from .catalog import Catalog

__all__ = [
    "THESIS000_TABLE_4_1",
    "THESIS002_CBIS_COUNTS",
    "cooccurrence",
    "prevalence",
    "image_size_stats",
    "pick_per_class",
    "plot_sample_grid",
]

#: Thesis 000, Table 4.1 (the same table is Table 4.1 of thesis 001): images per finding, source 1
#: (ChestX-ray14) and source 2 (an Internet compilation), train and test.
THESIS000_TABLE_4_1: dict[str, tuple[int, int]] = {
    "Cardiomegaly": (5897, 1069),
    "Emphysema": (3496, 1093),
    "Effusion": (13737, 4658),
    "Hernia": (4470, 86),
    "Infiltration": (17122, 6112),
    "Mass": (7862, 1748),
    "Nodule": (9250, 1623),
    "Atelectasis": (13762, 3279),
    "Pneumothorax": (6303, 2665),
    "Pleural_Thickening": (8022, 1143),
    "Pneumonia": (6031, 555),
    "Fibrosis": (9072, 435),
    "Edema": (6953, 925),
    "Consolidation": (9796, 1815),
    "No Finding": (35645, 9861),
}

#: Thesis 002, its tables of CBIS-DDSM: (benign, malignant, train, test, total).
THESIS002_CBIS_COUNTS: dict[str, tuple[int, int, int, int, int]] = {
    "mass": (912, 774, 1318, 378, 1696),
    "calcification": (1197, 673, 1544, 326, 1870),
}


def prevalence(labels: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """Positives per label of a multi-hot matrix, plus ``"No Finding"`` (rows with none)."""
    labels = np.asarray(labels) > 0
    out = {c: int(n) for c, n in zip(classes, labels.sum(axis=0))}
    out["No Finding"] = int((~labels.any(axis=1)).sum())
    return out


def cooccurrence(labels: np.ndarray) -> np.ndarray:
    """``C[i, j]`` = images positive for both label ``i`` and label ``j`` (diagonal: positives of ``i``)."""
    m = (np.asarray(labels) > 0).astype(np.int64)
    return m.T @ m


def image_size_stats(files: Sequence[str | Path], limit: int | None = None) -> dict[str, Any]:
    """Original sizes, modes and formats of image files (headers only), with unreadable files counted."""
    sizes: Counter = Counter()
    modes: Counter = Counter()
    formats: Counter = Counter()
    bad = 0
    for f in list(files)[:limit]:
        try:
            d = describe_image(f)
        except ImageReadError:
            bad += 1
            continue
        sizes[tuple(d["size"])] += 1
        modes[d["mode"]] += 1
        formats[d["format"]] += 1
    widths = np.array([w for (w, _), n in sizes.items() for _ in range(n)]) if sizes else np.array([0])
    heights = np.array([h for (_, h), n in sizes.items() for _ in range(n)]) if sizes else np.array([0])
    return {
        "n": int(sum(sizes.values())),
        "unreadable": bad,
        "sizes": dict(sizes.most_common()),
        "modes": dict(modes),
        "formats": dict(formats),
        "width": (int(widths.min()), float(np.median(widths)), int(widths.max())),
        "height": (int(heights.min()), float(np.median(heights)), int(heights.max())),
    }


def pick_per_class(cat: Catalog, per_class: int, seed: int = 0) -> list[int]:
    """Indices of up to ``per_class`` images of every class (multi-label: images positive for it), seeded."""
    rng = np.random.default_rng(seed)
    picks: list[int] = []
    for k in range(len(cat.classes)):
        members = np.flatnonzero(cat.labels == k if cat.labels.ndim == 1 else cat.labels[:, k] > 0)
        picks.extend(rng.choice(members, size=min(per_class, len(members)), replace=False).tolist())
    return picks


def plot_sample_grid(cat: Catalog, per_class: int, size: int, title: str, channels: int = 3, seed: int = 0):
    """A figure with ``per_class`` images of every class of ``cat``, one row per class.

    Images are decoded and resized exactly as the cache does (:func:`helpers.data.cache.decode_resize`);
    multi-label rows show images positive for that label. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    from .cache import decode_resize

    rows = len(cat.classes)
    fig, axes = plt.subplots(rows, per_class, figsize=(1.3 * per_class, 1.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    rng = np.random.default_rng(seed)
    for k, name in enumerate(cat.classes):
        members = np.flatnonzero(cat.labels == k if cat.labels.ndim == 1 else cat.labels[:, k] > 0)
        for j, i in enumerate(rng.choice(members, size=min(per_class, len(members)), replace=False)):
            img, _ = decode_resize(cat.files[i], size, channels)
            axes[k, j].imshow(img.squeeze(), cmap="gray" if channels == 1 else None, vmin=0, vmax=255)
        axes[k, 0].set_title(name, fontsize=8, loc="left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
