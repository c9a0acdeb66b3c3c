"""Does a heatmap point at the object? Heat inside a region, the pointing game, and the PBC cell's region.

A heatmap that means something puts its heat on what decides the class. On a PBC blood-cell image
that is the white cell in the middle, which the May-Grünwald-Giemsa stain colours purple: its
region can be found from colour alone (:func:`stained_cell_mask`), with no annotation. Against
such a region ``R`` covering a share ``a`` of the image, a heatmap ``h >= 0`` is scored by
(:func:`heat_in_region`):

* the **heat share** inside it, ``sum(h * R) / sum(h)``: a map that knows nothing spreads heat
  evenly and scores about ``a``; a map that points at the cell scores well above it;
* the **pointing game** (Zhang et al. 2018): a hit when the map's maximum lies inside ``R``.

:func:`pointing_summary` averages these over images: mean heat share, mean area share, their
ratio, and the hit rate.

Only NumPy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "STAIN_THRESHOLD",
    "stained_cell_mask",
    "heat_in_region",
    "pointing_summary",
    "centre_prior",
    "centre_baseline",
]

#: A pixel belongs to the stained cell when blue minus green (0–255) exceeds this: the nucleus
#: and the blue cytoplasm of the stained cells score 50–100, red cells 0–30, the background below 20.
STAIN_THRESHOLD = 45


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 4-connected components of a boolean ``(H, W)`` mask (0: background)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    h, w = mask.shape
    count = 0
    for i, j in zip(*np.nonzero(mask)):
        if labels[i, j]:
            continue
        count += 1
        labels[i, j] = count
        queue = deque([(i, j)])
        while queue:
            y, x = queue.popleft()
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = count
                    queue.append((ny, nx))
    return labels, count


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background area that does not touch the border filled in."""
    labels, _ = _components(~mask)
    edge = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))) - {0}
    return mask | ((labels > 0) & ~np.isin(labels, list(edge)))


def stained_cell_mask(image: np.ndarray, threshold: int = STAIN_THRESHOLD) -> np.ndarray:
    """The stained (purple) cell of a PBC image: a boolean ``(H, W)`` mask.

    Pixels whose blue minus green exceeds ``threshold``; of those, the connected component with the
    most pixels, holes filled (a nucleus's pale centre, the cytoplasm between its lobes).

    Args:
        image: ``uint8`` RGB ``(H, W, 3)``.

    Raises:
        ValueError: for an image that is not RGB ``uint8``, or one with no stained pixel.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {arr.dtype} {arr.shape}")
    stained = arr[..., 2].astype(np.int16) - arr[..., 1].astype(np.int16) > threshold
    labels, count = _components(stained)
    if count == 0:
        raise ValueError(f"no stained pixel (blue - green > {threshold}) in the image")
    largest = 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    return _fill_holes(labels == largest)


def heat_in_region(heat: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """Heat share inside ``region``, the region's area share, and whether the peak lies inside.

    Args:
        heat: non-negative ``(H, W)`` heatmap.
        region: boolean ``(H, W)`` mask of the same shape.

    Returns:
        ``{"heat_share", "area_share", "hit"}`` (``hit`` is 1.0 or 0.0; a map with no heat has
        heat share ``nan`` and no hit).
    """
    h, r = np.asarray(heat, dtype=np.float64), np.asarray(region, dtype=bool)
    if h.shape != r.shape:
        raise ValueError(f"heatmap {h.shape} and region {r.shape} differ in shape")
    if (h < 0).any() or not np.isfinite(h).all():
        raise ValueError("the heatmap must be finite and non-negative")
    total = h.sum()
    share = float((h * r).sum() / total) if total > 0 else float("nan")
    hit = float(total > 0 and r.flat[int(np.argmax(h))])
    return {"heat_share": share, "area_share": float(r.mean()), "hit": hit}


def pointing_summary(scores: Iterable[dict[str, float]]) -> dict[str, Any]:
    """Means over images of :func:`heat_in_region` results, and the ratio of heat share to area share."""
    rows = list(scores)
    if not rows:
        raise ValueError("no scores to summarise")
    heat = float(np.nanmean([r["heat_share"] for r in rows]))
    area = float(np.mean([r["area_share"] for r in rows]))
    return {
        "n": len(rows),
        "heat_share": heat,
        "area_share": area,
        "ratio": heat / area if area > 0 else float("nan"),
        "hit_rate": float(np.mean([r["hit"] for r in rows])),
    }


def centre_prior(side: int, sigma: float = 0.25) -> np.ndarray:
    """A heatmap that knows only that the object is in the middle: a Gaussian centred on a ``side`` x ``side``
    image, its spread ``sigma`` times the side. PBC crops are centred on their white cell, so a map that
    merely favours the centre (as Grad-CAM of an untrained network, whose zero padding darkens the edges,
    tends to) already scores above 1 on the heat-to-area ratio; this is that score's baseline."""
    if side < 1 or sigma <= 0:
        raise ValueError(f"need side >= 1 and sigma > 0, got {side} and {sigma}")
    r = (np.arange(side) - (side - 1) / 2) / (sigma * side)
    return np.exp(-0.5 * (r[:, None] ** 2 + r[None, :] ** 2))


def centre_baseline(images: Iterable[np.ndarray], sigma: float = 0.25) -> dict[str, Any]:
    """:func:`pointing_summary` of :func:`centre_prior` on each RGB image's stained cell (images with no
    stained pixel left out): what "pointing at the cell" scores with no model at all."""
    scores = []
    for image in images:
        try:
            mask = stained_cell_mask(np.asarray(image))
        except ValueError:
            continue
        scores.append(heat_in_region(centre_prior(mask.shape[0], sigma), mask))
    return pointing_summary(scores)
