"""One rule from an image file to a model's input: decode, [equalise], pad, resize, normalise.

The decode-once training cache (:mod:`helpers.data.cache`) and the classifier app
(:mod:`helpers.inference`) both call :func:`prepare_file`, so the same bytes become the same
``uint8`` image, and :func:`normalize` turns it into the same tensor. The steps:

1. **Decode** with :func:`helpers.imageio.decode_image` to the model's channels (1 or 3).
2. **Preprocess** ``"equalize"`` (thesis 000's chest X-rays): the image is decoded as **grey**,
   histogram-equalised, and only after resizing repeated into three identical channels when the
   model takes three. Equalising each RGB channel on its own would give another image.
3. **Pad to square** with black (nothing is cropped, the aspect ratio is kept), then an
   **antialiased bilinear resize** to ``size × size`` (Pillow's ``BILINEAR`` without a reducing gap).
4. **Normalise** (:func:`normalize`): ``x = (u / 255 - mean) / std`` per channel, with the training
   split's statistics.

This module needs only NumPy and Pillow (torch only inside :func:`normalize`), so the data
package and the inference path can both import it without pulling in each other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from .imageio import DEFAULT_MAX_PIXELS, DecodedImage, Source, decode_image, to_channels

if TYPE_CHECKING:
    import torch

__all__ = ["PREPROCESS", "prepare_image", "prepare_file", "decode_resize", "normalize", "chest_steps"]

#: The preprocessing a dataset (and so a model card) may name.
PREPROCESS = (None, "equalize")


def _check(preprocess: str | None) -> None:
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")


def _pad_square(img: Image.Image) -> Image.Image:
    """``img`` centred on a black square as wide as its longer side."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    square = Image.new(img.mode, (side, side), 0)
    square.paste(img, ((side - w) // 2, (side - h) // 2))
    return square


def prepare_image(arr: np.ndarray, size: int, preprocess: str | None = None, channels: int | None = None) -> np.ndarray:
    """Apply the rule to one decoded image: [equalise the grey image] → pad to square → resize.

    Args:
        arr: ``uint8`` ``(H, W, C)`` (or ``(H, W)``), ``C`` 1 or 3.
        size: side of the square result.
        preprocess: ``None`` or ``"equalize"`` (see the module docstring).
        channels: channels of the result (default: those of ``arr``). Without preprocessing the
            image is converted before resizing, as the decoder would have; with ``"equalize"`` the
            grey result is repeated after resizing.

    Returns:
        ``uint8`` ``(size, size, channels)``.
    """
    _check(preprocess)
    arr = arr if arr.ndim == 3 else arr[..., None]
    channels = channels or arr.shape[-1]
    if preprocess == "equalize":
        img = ImageOps.equalize(Image.fromarray(to_channels(arr, 1)[..., 0]))
    else:
        arr = to_channels(arr, channels)
        img = Image.fromarray(arr[..., 0] if channels == 1 else arr)
    img = _pad_square(img)
    if img.size[0] != size:
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    out = np.asarray(img)
    return to_channels(out[..., None] if out.ndim == 2 else out, channels)


def prepare_file(
    source: Source,
    size: int,
    channels: int,
    preprocess: str | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    seconds: dict[str, float] | None = None,
    background: int | Sequence[int] = 0,
) -> tuple[np.ndarray, DecodedImage]:
    """Decode one file (path, bytes or stream) and apply :func:`prepare_image`.

    With ``preprocess="equalize"`` the file is decoded as grey whatever ``channels`` is.

    Args:
        source, size, channels, preprocess: the file and the rule's settings.
        max_pixels: larger images are refused (a possible decompression bomb).
        seconds: when given, receives the time of the two steps under ``"decode"`` and ``"preprocess"``.
        background: what transparent pixels are composited on: a grey level (the cache's black,
            0) or a colour (the app passes the model card's ``background``).

    Returns:
        ``(image, decoded)``: the ``uint8`` ``(size, size, channels)`` image and what the decoder
        gave (the full-size array, format, mode, frames and conversion notes).

    Raises:
        helpers.imageio.ImageReadError: for a file that cannot be decoded (the message says why).
    """
    _check(preprocess)
    t0 = time.perf_counter()
    chans = 1 if preprocess == "equalize" else channels
    background = background if isinstance(background, int) else tuple(background)
    decoded = decode_image(source, max_pixels=max_pixels, channels=chans, background=background)
    t1 = time.perf_counter()
    image = prepare_image(decoded.array, size, preprocess, channels)
    if seconds is not None:
        seconds["decode"] = t1 - t0
        seconds["preprocess"] = time.perf_counter() - t1
    return image, decoded


def chest_steps(source: Source, size: int, *, flip: bool = True) -> dict[str, np.ndarray]:
    """Thesis 000's preprocessing of one chest X-ray, step by step, for showing it.

    The steps are those of :func:`prepare_file` with ``preprocess="equalize"`` and three channels
    (the rule the training cache and the app apply), then the horizontal flip that thesis 000, after
    CheXNet, applies to training images with probability 0.5 (at training time it is the batch
    augmentation :meth:`helpers.data.loaders.Augment.flip_only`; here it is always applied).

    Returns:
        ``{"decoded (grey)": (H, W), "equalised": (H, W), "model input": (size, size, 3),
        "flipped": (size, size, 3)}``, all ``uint8``; the model input's three channels are equal.

    Raises:
        helpers.imageio.ImageReadError: for a file that cannot be decoded.
    """
    decoded = decode_image(source, channels=1)
    grey = decoded.array[..., 0] if decoded.array.ndim == 3 else decoded.array
    equalised = np.asarray(ImageOps.equalize(Image.fromarray(grey)))
    model_input = prepare_image(decoded.array, size, "equalize", 3)
    steps = {"decoded (grey)": grey, "equalised": equalised, "model input": model_input}
    if flip:
        steps["flipped"] = np.ascontiguousarray(model_input[:, ::-1])
    return steps


def decode_resize(
    path: Source, size: int, channels: int, preprocess: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """:func:`prepare_file` for the cache: the prepared image and the decoder's conversion notes."""
    image, decoded = prepare_file(path, size, channels, preprocess)
    return image, decoded.notes


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a channels-first image or batch (``(C, H, W)``, ``(B, C, H, W)``).

    A ``uint8`` tensor is first scaled to ``[0, 1]`` (``u / 255``); a float tensor is taken to be
    on that scale already. ``mean``/``std`` hold one value per channel (one value is broadcast).
    """
    import torch

    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    m = torch.tensor(list(mean), dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.tensor(list(std), dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x - m) / s
