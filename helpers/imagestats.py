"""What the training images look like, and whether an upload is unlike them.

A model answers for any image, including one it was never meant to see: a chest film uploaded to
the blood-cell model still gets "erythroblast 0.91". The model card therefore keeps a few
statistics of the training split, measured on the images exactly as the model saw them
(``uint8``, its input size and channels), and the app compares every upload with them.

The statistics of one image (values on the 0–1 scale):

* ``mean <channel>``: the mean of each channel (``grey`` for a one-channel model, else ``red``,
  ``green``, ``blue``): brightness and colour cast;
* ``contrast``: the standard deviation of the grey level (ITU-R 601 luma);
* ``colourfulness``: the mean over pixels of (largest channel - smallest channel); 0 for a grey
  image, so a grey upload to a colour model stands out (three-channel models only).

:func:`summarise` keeps, for each statistic, the 0.5th and 99.5th percentiles over the training
images (``low``, ``high``) and their median. **The rule** (:func:`unlike_training`): an upload
is unlike the training images when one of its statistics lies outside
``[low - MARGIN * (high - low), high + MARGIN * (high - low)]``, with :data:`MARGIN` = 0.25.
:func:`background_colour` is the training images' typical border colour (the median over images
of each image's median border pixel); the app composites transparent uploads on it. (The app also
warns about a colour picture sent to a model whose training images were grey, from the file's own
colourfulness before the conversion to grey: ``helpers.imageio.DecodedImage.colourfulness``.)
:func:`training_profile` gives both for a model card, from a seeded sample of at most
:data:`MAX_PROFILE_IMAGES` training images.

Only NumPy (and the decoder's channel rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .imageio import to_channels

__all__ = [
    "MARGIN",
    "MAX_PROFILE_IMAGES",
    "stat_names",
    "image_statistics",
    "summarise",
    "background_colour",
    "training_profile",
    "unlike_training",
]

#: How far beyond the training images' 0.5–99.5 percentile range (as a fraction of it) an upload may lie.
MARGIN = 0.25
#: At most this many training images (a seeded sample) make a card's statistics.
MAX_PROFILE_IMAGES = 2000
_LUMA = np.array([0.299, 0.587, 0.114])


def stat_names(channels: int) -> list[str]:
    """The statistics kept for images of ``channels`` channels, in order."""
    means = ["mean grey"] if channels == 1 else ["mean red", "mean green", "mean blue"]
    return means + ["contrast"] + (["colourfulness"] if channels == 3 else [])


def _as_batch(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, C) or (H, W, C) with C 1 or 3, got {arr.shape}")
    return arr


def image_statistics(images: np.ndarray, chunk: int = 256) -> dict[str, np.ndarray]:
    """Each statistic of :func:`stat_names` for every image of ``(N, H, W, C)`` (or one ``(H, W, C)``) ``uint8``."""
    arr = _as_batch(images)
    c = arr.shape[-1]
    out: dict[str, list[np.ndarray]] = {name: [] for name in stat_names(c)}
    for start in range(0, len(arr), chunk):
        x = arr[start : start + chunk].astype(np.float32) / 255.0
        means = x.mean(axis=(1, 2))
        for i, name in enumerate(stat_names(c)[:c]):
            out[name].append(means[:, i])
        grey = x[..., 0] if c == 1 else x @ _LUMA.astype(np.float32)
        out["contrast"].append(grey.std(axis=(1, 2)))
        if c == 3:
            out["colourfulness"].append((x.max(axis=-1) - x.min(axis=-1)).mean(axis=(1, 2)))
    return {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}


def summarise(images: np.ndarray) -> dict[str, Any]:
    """The statistics of a set of training images, as the model card keeps them.

    Returns:
        ``{"n": N, "channels": C, "margin": MARGIN, "stats": {name: {"low", "median", "high"}}}``.
    """
    arr = _as_batch(images)
    if len(arr) == 0:
        raise ValueError("no images to summarise")
    stats = image_statistics(arr)
    table = {
        name: {
            "low": float(np.percentile(v, 0.5)),
            "median": float(np.median(v)),
            "high": float(np.percentile(v, 99.5)),
        }
        for name, v in stats.items()
    }
    return {"n": int(len(arr)), "channels": int(arr.shape[-1]), "margin": MARGIN, "stats": table}


def background_colour(images: np.ndarray) -> tuple[int, ...]:
    """The training images' typical border colour: per channel, the median over images of each
    image's median pixel on its one-pixel border."""
    arr = _as_batch(images)
    if len(arr) == 0:
        raise ValueError("no images to take a background colour from")
    border = np.concatenate(
        [arr[:, 0, :, :], arr[:, -1, :, :], arr[:, 1:-1, 0, :], arr[:, 1:-1, -1, :]], axis=1
    )  # (N, perimeter, C)
    per_image = np.median(border, axis=1)
    return tuple(int(round(v)) for v in np.median(per_image, axis=0))


def training_profile(
    images: np.ndarray, channels: int, seed: int = 0, max_images: int = MAX_PROFILE_IMAGES
) -> tuple[dict[str, Any], tuple[int, ...]]:
    """A model card's ``image_stats`` (:func:`summarise`) and ``background`` (:func:`background_colour`).

    Args:
        images: the training images as the model saw them, ``uint8`` ``(N, S, S, C)``.
        channels: the model's input channels; images are converted by the decoder's rule.
        seed, max_images: a seeded sample of at most ``max_images`` images is measured.
    """
    arr = _as_batch(images)
    if len(arr) > max_images:
        keep = np.sort(np.random.default_rng(seed).choice(len(arr), max_images, replace=False))
        arr = arr[keep]
    arr = to_channels(np.asarray(arr), channels)
    return summarise(arr), background_colour(arr)


def unlike_training(image: np.ndarray, summary: dict[str, Any]) -> list[str]:
    """How ``image`` (``uint8`` ``(H, W, C)``, as the model sees it) differs from the training images.

    Returns:
        One plain sentence per statistic outside the allowed range (the module docstring's rule),
        e.g. ``"colourfulness 0.00, where the training images lie between 0.14 and 0.33"``;
        empty when the image is like them or ``summary`` holds no statistics.
    """
    table = (summary or {}).get("stats") or {}
    if not table:
        return []
    margin = float(summary.get("margin", MARGIN))
    values = image_statistics(image)
    found = []
    for name, v in values.items():
        ref = table.get(name)
        if not ref:
            continue
        low, high = float(ref["low"]), float(ref["high"])
        slack = margin * (high - low)
        value = float(v[0])
        if value < low - slack or value > high + slack:
            found.append(f"{name} {value:.2f}, where the training images lie between {low:.2f} and {high:.2f}")
    return found
