"""Decode any medical or ordinary image file into a ``uint8`` ``(H, W, C)`` array, or say why not.

One function, :func:`read_image`, is used by the decode-once cache and by the classifier app, so a
file that trains is a file that uploads. The rules it applies, in order:

* **Source**: a path, raw ``bytes`` or a binary file object. An empty file, a file that is not an
  image, a truncated file and an image above ``max_pixels`` (a decompression bomb) raise
  :class:`ImageReadError` with a message a person can act on; nothing else escapes.
* **Formats**: everything Pillow reads (PNG, JPEG, TIFF, PGM/PPM, BMP, WEBP, GIF, ...) and DICOM
  through ``pydicom``.
* **Orientation**: the EXIF orientation tag of JPEG/TIFF/WEBP files is applied (the pixels come out
  the way a viewer shows them).
* **Several frames** (multi-page TIFF, animated GIF/WEBP, multi-frame DICOM): the first frame is
  returned and a :class:`MultiFrameWarning` says how many there were.
* **Bit depth**: 16-bit and 32-bit grey (and float) images are scaled to 8 bits by their own range,
  ``(x - min) / (max - min) * 255``; a constant image becomes all zeros.
* **Transparency**: RGBA, LA and palette images with transparency are composited on **black**
  (``background=0``), the background of radiographs; pass ``background=255`` for white, or a colour
  ``(r, g, b)`` (the app passes the training images' background colour from the model card; a grey
  image gets the colour's luma).
* **Modes**: palette → RGB (or grey when the palette is grey), CMYK/YCbCr/LAB/HSV → RGB,
  1-bit → grey 0/255.
* **DICOM**: the modality LUT (rescale slope/intercept) is applied, then the VOI window
  (``WindowCenter``/``WindowWidth``, DICOM's linear formula, first window when there are several)
  or the VOI LUT sequence, otherwise the range; ``MONOCHROME1`` (white = low) is inverted so that
  bone is bright like every other X-ray.

The result has ``C == 1`` for grey images and ``C == 3`` for colour; ``channels=1`` or ``channels=3``
forces one (grey → RGB repeats the channel; RGB → grey uses the ITU-R 601 luma weights, as
Pillow's ``convert("L")`` does).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageReadError",
    "ImageTooLargeError",
    "MultiFrameWarning",
    "DecodedImage",
    "DEFAULT_MAX_PIXELS",
    "decode_image",
    "read_image",
    "to_channels",
    "describe_image",
    "is_dicom",
]

Source = str | os.PathLike | bytes | bytearray | IO[bytes]

#: Largest image (width × height, one frame) decoded by default: 16,384 × 16,384 pixels.
DEFAULT_MAX_PIXELS = 16384 * 16384

_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}


class ImageReadError(ValueError):
    """A file that cannot be turned into an image; the message says which file and why."""


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than the decoder's limit (a possible decompression bomb).

    Attributes:
        name: the file's name.
        pixels: width × height of one frame.
        size: ``(width, height)``, when the header gave them (``None`` when only the count is known).
        limit: the limit it is above (``max_pixels``).
    """

    def __init__(self, name: str, pixels: int, size: tuple[int, int] | None, limit: int) -> None:
        self.name, self.pixels, self.size, self.limit = name, int(pixels), size, int(limit)
        shown = f"{size[0]}x{size[1]} = {pixels:,}" if size else f"{pixels:,}"
        super().__init__(
            f"{name}: {shown} pixels is above the limit of {limit:,} pixels (a possible decompression bomb); "
            "a larger max_pixels reads a trusted file"
        )


def _bomb_pixels(exc: Exception) -> int | None:
    """The pixel count in Pillow's ``DecompressionBombError`` message, when it has one."""
    import re

    found = re.search(r"\((\d+) pixels\)", str(exc))
    return int(found.group(1)) if found else None


class MultiFrameWarning(UserWarning):
    """A file held several frames and only the first was read."""


@dataclass
class DecodedImage:
    """The pixels of one image plus what was done to get them.

    Attributes:
        array: ``uint8`` ``(H, W, C)``, ``C`` 1 or 3.
        format: file format (``"PNG"``, ``"JPEG"``, ``"DICOM"``, ...).
        mode: the original Pillow mode (``"I;16"``, ``"RGBA"``, ...) or DICOM photometric interpretation.
        frames: frames in the file (only the first is in ``array``).
        bit_depth: bits per sample of the original.
        notes: conversions applied, in words (``"16-bit scaled by range 12..3071"``, ...).
        colourfulness: for an image decoded in colour, the mean over a sample of its pixels of
            (largest - smallest channel) / 255, measured before any conversion to ``channels``
            (0 for a colour file that holds a grey picture); ``None`` for a grey image.
    """

    array: np.ndarray
    format: str
    mode: str
    frames: int = 1
    bit_depth: int = 8
    notes: list[str] = field(default_factory=list)
    colourfulness: float | None = None


# ----------------------------------------------------------------------------- sources


def _name_of(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return getattr(source, "name", "<stream>")


def _read_bytes(source: Source) -> bytes:
    """All bytes of ``source``; a missing or empty file is an :class:`ImageReadError`."""
    name = _name_of(source)
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageReadError(f"{name}: no such file")
        if path.is_dir():
            raise ImageReadError(f"{name}: is a folder, not an image file")
        data = path.read_bytes()
    else:
        data = source.read()
    if len(data) == 0:
        raise ImageReadError(f"{name}: the file is empty (0 bytes), so it holds no image")
    return data


def is_dicom(data: bytes, name: str = "") -> bool:
    """True for a DICOM Part 10 file (``DICM`` at byte 128) or a ``.dcm`` name."""
    return data[128:132] == b"DICM" or Path(name).suffix.lower() in _DICOM_SUFFIXES


# ----------------------------------------------------------------------------- pixel helpers


def _scale_by_range(arr: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Map ``arr`` linearly so its minimum is 0 and its maximum 255 (constant → 0)."""
    a = arr.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, np.nan)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8), lo, hi
    out = np.nan_to_num((a - lo) / (hi - lo) * 255.0, nan=0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), lo, hi


Background = int | tuple[int, ...]


def _background_values(background: Background, channels: int) -> np.ndarray:
    """``background`` (a grey level or a colour) as ``channels`` float values (a colour's luma for grey)."""
    values = np.atleast_1d(np.asarray(background, dtype=np.float32))
    if values.size not in (1, 3) or (values < 0).any() or (values > 255).any():
        raise ValueError(f"background must be a grey level or an (r, g, b) colour in 0..255, got {background!r}")
    if values.size == channels:
        return values
    if channels == 1:
        return np.array([values @ np.array([0.299, 0.587, 0.114], dtype=np.float32)])
    return np.repeat(values, channels)


def _background_name(background: Background) -> str:
    values = [int(v) for v in np.atleast_1d(background)]
    if len(set(values)) == 1:
        return "black" if values[0] == 0 else f"grey level {values[0]}"
    return "the colour (" + ", ".join(map(str, values)) + ")"


def _composite(rgb: np.ndarray, alpha: np.ndarray, background: Background) -> np.ndarray:
    """Alpha-composite ``rgb`` (H, W, C) over a uniform ``background`` (grey level or colour)."""
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * a + _background_values(background, rgb.shape[-1]) * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_channels(arr: np.ndarray, channels: int | None) -> np.ndarray:
    """``uint8`` ``(H, W)`` or ``(H, W, C)`` as ``(H, W, channels)`` by the module's rule.

    Grey → RGB repeats the channel; RGB → grey uses the ITU-R 601 luma weights with rounding, as
    Pillow's ``convert("L")`` does (so grey → RGB → grey gives the grey image back exactly).
    ``channels=None`` keeps the image's own channels.
    """
    if arr.ndim == 2:
        arr = arr[..., None]
    if channels is None or arr.shape[-1] == channels:
        return np.ascontiguousarray(arr)
    if channels == 3 and arr.shape[-1] == 1:
        return np.ascontiguousarray(np.repeat(arr, 3, axis=-1))
    if channels == 1 and arr.shape[-1] == 3:
        weights = np.array([299, 587, 114], dtype=np.uint32)
        grey = (arr.astype(np.uint32) @ weights + 500) // 1000
        return np.ascontiguousarray(grey.astype(np.uint8)[..., None])
    raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")


_BIT_DEPTH = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}


def _pil_to_array(img: Image.Image, background: Background, notes: list[str]) -> np.ndarray:
    """One Pillow frame → uint8 (H, W) or (H, W, 3), applying the module's conversion rules."""
    mode = img.mode
    if mode == "1":
        notes.append("1-bit converted to grey 0/255")
        return np.asarray(img.convert("L"))
    if mode in ("L", "RGB"):
        return np.asarray(img)
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr, lo, hi = _scale_by_range(np.asarray(img))
        notes.append(f"{_BIT_DEPTH.get(mode, 16)}-bit ({mode}) scaled to 8 bits by its range {lo:g}..{hi:g}")
        return arr
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette expanded to " + img.mode)
        mode = img.mode
        if mode == "RGB":
            arr = np.asarray(img)
            if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
                notes.append("grey palette kept as one channel")
                return arr[..., 0].copy()
            return arr
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"))
        notes.append(f"LA composited on {_background_name(background)}")
        return _composite(la[..., :1], la[..., 1], background)[..., 0]
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"))
        if (rgba[..., 3] == 255).all():
            notes.append("RGBA with an opaque alpha: alpha dropped")
            return rgba[..., :3].copy()
        notes.append(f"RGBA composited on {_background_name(background)}")
        return _composite(rgba[..., :3], rgba[..., 3], background)
    # CMYK, YCbCr, LAB, HSV, RGBX, ...
    notes.append(f"{mode} converted to RGB")
    return np.asarray(img.convert("RGB"))


# ----------------------------------------------------------------------------- decoders


def _decode_pil(data: bytes, name: str, max_pixels: int, background: Background) -> DecodedImage:
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLargeError(name, width * height, (width, height), max_pixels)
            fmt, mode = img.format or "unknown", img.mode
            frames = int(getattr(img, "n_frames", 1) or 1)
            img.seek(0)
            img.load()
            if fmt in ("JPEG", "MPO", "TIFF", "WEBP", "PNG"):
                orientation = img.getexif().get(0x0112, 1)
                if orientation not in (None, 1):
                    img = ImageOps.exif_transpose(img)
                    notes.append(f"EXIF orientation {orientation} applied")
            arr = _pil_to_array(img, background, notes)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own limit came first; say ours where it is lower
        pixels = _bomb_pixels(exc)
        if pixels is not None and pixels > max_pixels:
            raise ImageTooLargeError(name, pixels, None, max_pixels) from exc
        raise ImageReadError(f"{name}: refused by Pillow as a possible decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        head = data[:16]
        raise ImageReadError(
            f"{name}: not a recognised image file ({len(data):,} bytes starting {head!r}); "
            "expected PNG, JPEG, TIFF, PGM/PPM, BMP, WEBP or DICOM"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        why = (
            "the file is truncated or damaged"
            if "truncat" in msg.lower() or isinstance(exc, EOFError)
            else "it could not be decoded"
        )
        raise ImageReadError(f"{name}: {why} ({type(exc).__name__}: {msg})") from exc
    if frames > 1:
        notes.append(f"first of {frames} frames")
    return DecodedImage(arr, fmt, mode, frames, _BIT_DEPTH.get(mode, 8), notes)


def _decode_dicom(data: bytes, name: str, max_pixels: int) -> DecodedImage:
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError as exc:  # pragma: no cover - pydicom is a dependency
        raise ImageReadError(f"{name}: is DICOM, and reading DICOM needs the pydicom package") from exc
    notes: list[str] = []
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        rows, cols = int(ds.Rows), int(ds.Columns)
        if rows * cols > max_pixels:
            raise ImageTooLargeError(name, rows * cols, (cols, rows), max_pixels)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        pixels = ds.pixel_array
    except ImageReadError:
        raise
    except Exception as exc:  # pydicom raises many types for broken files
        raise ImageReadError(f"{name}: a DICOM file whose pixels cannot be read ({type(exc).__name__}: {exc})") from exc
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        pixels = pixels[0]
        notes.append(f"first of {frames} frames")
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    if samples == 3:
        arr = pixels if pixels.dtype == np.uint8 else _scale_by_range(pixels)[0]
        return DecodedImage(np.ascontiguousarray(arr), "DICOM", photometric, frames, bits, notes)
    values = apply_modality_lut(pixels, ds).astype(np.float64)
    if getattr(ds, "RescaleSlope", None) is not None or getattr(ds, "RescaleIntercept", None) is not None:
        notes.append("modality LUT (rescale) applied")
    center, width = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    function = str(getattr(ds, "VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if center is not None and width is not None and function == "LINEAR":
        c = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
        w = max(float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width), 1.0)
        # DICOM PS3.3 C.11.2.1.2.1: linear window onto [0, 255].
        scaled = ((values - (c - 0.5)) / (w - 1.0) + 0.5) if w > 1 else (values > c - 0.5).astype(float)
        arr = np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
        notes.append(f"VOI window centre {c:g} width {w:g} applied")
    elif "VOILUTSequence" in ds or (center is not None and width is not None):
        arr = _scale_by_range(apply_voi_lut(values, ds))[0]
        notes.append("VOI LUT applied")
    else:
        arr, lo, hi = _scale_by_range(values)
        notes.append(f"scaled to 8 bits by its range {lo:g}..{hi:g}")
    if photometric == "MONOCHROME1":
        arr = 255 - arr
        notes.append("MONOCHROME1 inverted (low values shown bright)")
    return DecodedImage(np.ascontiguousarray(arr), "DICOM", photometric, frames, bits, notes)


# ----------------------------------------------------------------------------- public API


def decode_image(
    source: Source,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    channels: int | None = None,
    background: Background = 0,
) -> DecodedImage:
    """Decode ``source`` and report what was converted (see the module docstring for the rules).

    Raises:
        ImageReadError: empty, missing, non-image, truncated or too large input.
    """
    name = _name_of(source)
    data = _read_bytes(source)
    if is_dicom(data, name):
        out = _decode_dicom(data, name, max_pixels)
    else:
        out = _decode_pil(data, name, max_pixels, background)
    if out.array.ndim == 3 and out.array.shape[-1] == 3:
        step = max(1, int(np.sqrt(out.array.shape[0] * out.array.shape[1] / 65536)))
        sample = out.array[::step, ::step].astype(np.int16)
        out.colourfulness = float((sample.max(axis=-1) - sample.min(axis=-1)).mean() / 255.0)
    out.array = to_channels(out.array, channels)
    return out


def read_image(
    source: Source,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    channels: int | None = None,
    background: Background = 0,
) -> np.ndarray:
    """Decode an image file (path, bytes or stream) into a ``uint8`` ``(H, W, C)`` array.

    ``C`` is 1 for grey and 3 for colour unless ``channels`` forces one. Transparent pixels are
    composited on black (``background=0``); a multi-frame file gives its first frame and a
    :class:`MultiFrameWarning`.

    Raises:
        ImageReadError: a message naming the file and the reason (empty, not an image, truncated,
            above ``max_pixels``, unreadable DICOM).
    """
    out = decode_image(source, max_pixels=max_pixels, channels=channels, background=background)
    if out.frames > 1:
        warnings.warn(
            f"{_name_of(source)}: {out.frames} frames, only the first was read", MultiFrameWarning, stacklevel=2
        )
    return out.array


def describe_image(source: Source) -> dict[str, Any]:
    """Format, mode, size ``(width, height)``, frames and bit depth of an image, without decoding pixels.

    Raises:
        ImageReadError: as :func:`read_image`.
    """
    name = _name_of(source)
    data = _read_bytes(source)
    if is_dicom(data, name):
        try:
            import pydicom

            ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
            return {
                "format": "DICOM",
                "mode": str(getattr(ds, "PhotometricInterpretation", "")),
                "size": (int(ds.Columns), int(ds.Rows)),
                "frames": int(getattr(ds, "NumberOfFrames", 1) or 1),
                "bit_depth": int(getattr(ds, "BitsStored", 8) or 8),
                "bytes": len(data),
            }
        except Exception as exc:
            raise ImageReadError(f"{name}: an unreadable DICOM header ({type(exc).__name__}: {exc})") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            return {
                "format": img.format or "unknown",
                "mode": img.mode,
                "size": tuple(img.size),
                "frames": int(getattr(img, "n_frames", 1) or 1),
                "bit_depth": _BIT_DEPTH.get(img.mode, 8),
                "bytes": len(data),
            }
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{name}: refused as a possible decompression bomb ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{name}: not a recognised image file ({type(exc).__name__}: {exc})") from exc
