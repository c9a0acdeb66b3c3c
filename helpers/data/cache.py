"""Decode once: image files → one memory-mapped ``uint8`` array per (dataset, split, size, source).

Rules:

* **Key**: dataset name, split, size, channels, preprocessing, source, and a SHA-1 over the list of
  files with their sizes and modification times. Change, add or remove one file and the key
  changes, so the cache is rebuilt; older caches of the same dataset/split/size/source are deleted.
* **Resize rule**: *pad to square, then resize*. The shorter side is padded symmetrically with
  black (0) up to the longer one, and the square is resized to ``size × size`` with Pillow's
  antialiased bilinear filter. Nothing is cropped away (a lesion near the border stays) and the
  aspect ratio is kept; square images (X-rays, mammograms) are only resized.
* **Channels**: 1 (grey) or 3 (RGB), as :func:`helpers.imageio.read_image` converts them.
* **Preprocessing** ``"equalize"``: the image is read as grey and histogram-equalised before the
  resize, as thesis 000 prepares chest X-rays; with ``channels=3`` the grey result is repeated into
  three identical channels, as in that thesis.
* **Bad files** (empty, not an image, truncated, unreadable DICOM) are skipped and listed in the
  report with the reason; conversions (16-bit, RGBA, palette, EXIF rotation, several frames) are
  counted. A build never stops on one file.
* Files are written to ``<cache_dir>/<dataset>/<split>-<size>px-c<C>-<pre>-<source>-<hash>.npy`` (+ a
  ``.json`` report) through a temporary name and an atomic rename; they are read back with
  ``np.load(mmap_mode="r")``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageOps

from ..imageio import ImageReadError, decode_image

__all__ = ["PREPROCESS", "CacheResult", "fingerprint", "prepare_image", "cached_images", "decode_resize"]

PREPROCESS = (None, "equalize")


@dataclass
class CacheResult:
    """What :func:`cached_images` gives back.

    Attributes:
        images: ``uint8`` ``(K, size, size, C)``, memory-mapped, for the ``K`` files that decoded.
        kept: indices (into the file list) of those ``K`` files.
        path: the ``.npy`` file.
        report: counts and reasons: ``{"requested", "kept", "skipped": [{file, reason}], "conversions": {...}}``.
        built: True when this call decoded the files, False when it read an existing cache.
    """

    images: np.ndarray
    kept: np.ndarray
    path: Path
    report: dict[str, Any] = field(default_factory=dict)
    built: bool = False


def fingerprint(files: Sequence[str | Path], extra: str = "") -> str:
    """SHA-1 over file paths, sizes and modification times (plus ``extra``); 12 hex digits."""
    h = hashlib.sha1(extra.encode())
    for f in files:
        try:
            st = os.stat(f)
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{f}\0missing\n".encode())
    return h.hexdigest()[:12]


def prepare_image(arr: np.ndarray, size: int, preprocess: str | None = None) -> np.ndarray:
    """Apply the cache's rule to one decoded image: [equalise] → pad to square with black → resize.

    ``arr`` is ``uint8`` ``(H, W, C)``; the result is ``(size, size, C)``.
    """
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
    c = arr.shape[-1]
    img = Image.fromarray(arr[..., 0] if c == 1 else arr)
    if preprocess == "equalize":
        img = ImageOps.equalize(img.convert("L") if c == 1 else img)
    w, h = img.size
    side = max(w, h)
    if w != h:
        square = Image.new(img.mode, (side, side), 0)
        square.paste(img, ((side - w) // 2, (side - h) // 2))
        img = square
    if side != size:
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    out = np.asarray(img)
    return out[..., None] if out.ndim == 2 else out


def decode_resize(path: str | Path, size: int, channels: int, preprocess: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Decode one file and apply :func:`prepare_image`; returns the array and the conversion notes.

    With ``preprocess="equalize"`` the image is read as grey, equalised and resized, then repeated
    to ``channels`` (thesis 000: three identical channels).
    """
    if preprocess == "equalize":
        decoded = decode_image(path, channels=1)
        out = prepare_image(decoded.array, size, preprocess)
        return (np.repeat(out, channels, axis=-1) if channels != 1 else out), decoded.notes
    decoded = decode_image(path, channels=channels)
    return prepare_image(decoded.array, size, preprocess), decoded.notes


def _key_name(split: str, size: int, channels: int, preprocess: str | None, source: str, digest: str) -> str:
    return f"{split}-{size}px-c{channels}-{preprocess or 'none'}-{source}-{digest}"


def cached_images(
    name: str,
    split: str,
    files: Sequence[str | Path],
    size: int,
    *,
    source: str,
    channels: int = 3,
    preprocess: str | None = None,
    cache_root: str | Path | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> CacheResult:
    """Decoded, resized images of ``files`` from the cache, building it first when needed.

    Raises:
        ValueError: when not a single file could be decoded (the report lists why).
    """
    from .. import config

    root = Path(cache_root) if cache_root is not None else config.cache_dir()
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    files = [str(f) for f in files]
    if not files:  # an empty split (a tiny partial copy): an empty array, not an error
        empty = np.zeros((0, size, size, channels), dtype=np.uint8)
        report = {"requested": 0, "kept": 0, "skipped": [], "conversions": {}, "seconds": 0.0}
        return CacheResult(empty, np.zeros(0, dtype=np.int64), folder / "empty", report, built=False)
    digest = fingerprint(files, extra=f"{size}|{channels}|{preprocess}|v1")
    stem = _key_name(split, size, channels, preprocess, source, digest)
    npy, meta = folder / f"{stem}.npy", folder / f"{stem}.json"
    if npy.exists() and meta.exists():
        info = json.loads(meta.read_text())
        images = np.load(npy, mmap_mode="r")
        return CacheResult(images, np.asarray(info["kept"], dtype=np.int64), npy, info["report"], built=False)

    # stale caches of the same dataset/split/size/source: the sources changed, so remove them
    prefix = _key_name(split, size, channels, preprocess, source, "")
    for old in folder.glob(f"{prefix}*"):
        old.unlink(missing_ok=True)

    t0 = time.perf_counter()
    n = len(files)
    tmp = folder / f".{stem}.{os.getpid()}.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(max(n, 1), size, size, channels))
    ok = np.zeros(n, dtype=bool)
    skipped: list[dict[str, str]] = []
    conversions: Counter[str] = Counter()

    def work(i: int):
        try:
            arr, notes = decode_resize(files[i], size, channels, preprocess)
            return i, arr, notes, None
        except ImageReadError as exc:
            return i, None, [], str(exc)
        except Exception as exc:  # never let one file stop the build; say what happened
            return i, None, [], f"{files[i]}: unexpected {type(exc).__name__}: {exc}"

    bar = None
    if progress and n:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"decoding {name}/{split} at {size}px", unit="img", leave=False)
    workers = workers or min(8, max(1, (os.cpu_count() or 1)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, arr, notes, err in pool.map(work, range(n)):
            if err is None:
                out[i] = arr
                ok[i] = True
                for note in notes:
                    conversions[note.split(" by its range")[0].split(" (")[0]] += 1
            else:
                skipped.append({"file": files[i], "reason": err})
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    kept = np.flatnonzero(ok)
    if len(kept) == 0:
        del out
        tmp.unlink(missing_ok=True)
        reasons = "; ".join(s["reason"] for s in skipped[:3])
        raise ValueError(f"{name}/{split}: none of the {n} files could be decoded ({reasons})")
    if len(kept) < n:  # compact: keep only the decoded images
        compact = np.lib.format.open_memmap(tmp.with_suffix(".part.npy"), mode="w+", dtype=np.uint8,
                                            shape=(len(kept), size, size, channels))
        for start in range(0, len(kept), 1024):
            compact[start:start + 1024] = out[kept[start:start + 1024]]
        compact.flush()
        del out, compact
        tmp.unlink()
        tmp.with_suffix(".part.npy").rename(tmp)
    else:
        out.flush()
        del out
    report = {
        "requested": n,
        "kept": int(len(kept)),
        "skipped": skipped,
        "conversions": dict(conversions),
        "seconds": round(time.perf_counter() - t0, 2),
        "rule": "pad to square with black, then antialiased bilinear resize",
    }
    meta_tmp = meta.with_name(f".{meta.name}.{os.getpid()}")
    meta_tmp.write_text(json.dumps({"kept": kept.tolist(), "report": report, "files": n}))
    os.replace(tmp, npy)
    os.replace(meta_tmp, meta)
    return CacheResult(np.load(npy, mmap_mode="r"), kept, npy, report, built=True)
