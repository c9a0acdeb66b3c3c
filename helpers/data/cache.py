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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..imageio import ImageReadError
from ..preprocessing import PREPROCESS, decode_resize, prepare_image

__all__ = ["PREPROCESS", "CacheResult", "fingerprint", "prepare_image", "cached_images", "decode_resize"]


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

    Each file goes through :func:`helpers.preprocessing.prepare_file`, the rule the classifier app
    applies to an upload.

    Raises:
        ValueError: when not a single file could be decoded (the report lists why).
    """
    from .. import config

    folder = (Path(cache_root) if cache_root is not None else config.cache_dir()) / name
    folder.mkdir(parents=True, exist_ok=True)
    files = [str(f) for f in files]
    if not files:  # an empty split (a tiny partial copy): an empty array, not an error
        empty = np.zeros((0, size, size, channels), dtype=np.uint8)
        report = {"requested": 0, "kept": 0, "skipped": [], "conversions": {}, "seconds": 0.0}
        return CacheResult(empty, np.zeros(0, dtype=np.int64), folder / "empty", report, built=False)
    digest = fingerprint(files, extra=f"{size}|{channels}|{preprocess}|v1")
    npy = folder / f"{_key_name(split, size, channels, preprocess, source, digest)}.npy"
    if npy.exists() and npy.with_suffix(".json").exists():
        info = json.loads(npy.with_suffix(".json").read_text())
        images = np.load(npy, mmap_mode="r")
        return CacheResult(images, np.asarray(info["kept"], dtype=np.int64), npy, info["report"], built=False)
    # stale caches of the same dataset/split/size/source: the sources changed, so remove them
    for old in folder.glob(f"{_key_name(split, size, channels, preprocess, source, '')}*"):
        old.unlink(missing_ok=True)
    return _build(f"{name}/{split}", files, npy, size, channels, preprocess, progress=progress, workers=workers)


@dataclass
class _Decoded:
    """What decoding the files into the array gave: which worked, why the others did not."""

    ok: np.ndarray
    skipped: list[dict[str, str]]
    conversions: Counter[str]


def _decode_one(path: str, size: int, channels: int, preprocess: str | None):
    """``(array, notes, None)`` for a file that decodes, ``(None, [], reason)`` for one that does not."""
    try:
        arr, notes = decode_resize(path, size, channels, preprocess)
        return arr, notes, None
    except ImageReadError as exc:
        return None, [], str(exc)
    except Exception as exc:  # never let one file stop the build; say what happened
        return None, [], f"{path}: unexpected {type(exc).__name__}: {exc}"


def _decode_into(
    out: np.ndarray, files: list[str], size: int, channels: int, preprocess: str | None, bar: Any, workers: int
) -> _Decoded:
    """Decode every file into ``out[i]`` on a thread pool, counting conversions and skips."""
    result = _Decoded(np.zeros(len(files), dtype=bool), [], Counter())

    def work(i: int):
        return (i, *_decode_one(files[i], size, channels, preprocess))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, arr, notes, err in pool.map(work, range(len(files))):
            if err is None:
                out[i] = arr
                result.ok[i] = True
                for note in notes:
                    result.conversions[note.split(" by its range")[0].split(" (")[0]] += 1
            else:
                result.skipped.append({"file": files[i], "reason": err})
            if bar is not None:
                bar.update(1)
    return result


def _progress_bar(total: int, what: str, size: int, progress: bool) -> Any:
    from ..config import progress_shown

    if not (progress and total and progress_shown()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"decoding {what} at {size}px", unit="img", leave=False)


def _compact(tmp: Path, out: np.ndarray, kept: np.ndarray) -> Path:
    """Copy the rows ``kept`` of ``out`` (the memory map of ``tmp``) into a new file; return its path."""
    part = tmp.with_suffix(".part.npy")
    compact = np.lib.format.open_memmap(part, mode="w+", dtype=np.uint8, shape=(len(kept), *out.shape[1:]))
    for start in range(0, len(kept), 1024):
        compact[start : start + 1024] = out[kept[start : start + 1024]]
    compact.flush()
    del compact
    return part


def _build(
    what: str,
    files: list[str],
    npy: Path,
    size: int,
    channels: int,
    preprocess: str | None,
    *,
    progress: bool,
    workers: int | None,
) -> CacheResult:
    """Decode ``files`` into a new cache file ``npy`` (+ its ``.json`` report), atomically."""
    t0 = time.perf_counter()
    n = len(files)
    tmp = npy.with_name(f".{npy.stem}.{os.getpid()}.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(max(n, 1), size, size, channels))
    bar = _progress_bar(n, what, size, progress)
    workers = workers or min(8, max(1, (os.cpu_count() or 1)))
    decoded = _decode_into(out, files, size, channels, preprocess, bar, workers)
    if bar is not None:
        bar.close()
    kept = np.flatnonzero(decoded.ok)
    if len(kept) == 0:
        del out
        tmp.unlink(missing_ok=True)
        reasons = "; ".join(s["reason"] for s in decoded.skipped[:3])
        raise ValueError(f"{what}: none of the {n} files could be decoded ({reasons})")
    part = _compact(tmp, out, kept) if len(kept) < n else None  # compact: keep only the decoded images
    out.flush()
    del out
    if part is not None:
        tmp.unlink()
        part.rename(tmp)
    report = {
        "requested": n,
        "kept": int(len(kept)),
        "skipped": decoded.skipped,
        "conversions": dict(decoded.conversions),
        "seconds": round(time.perf_counter() - t0, 2),
        "rule": "pad to square with black, then antialiased bilinear resize",
    }
    meta = npy.with_suffix(".json")
    meta_tmp = meta.with_name(f".{meta.name}.{os.getpid()}")
    meta_tmp.write_text(json.dumps({"kept": kept.tolist(), "report": report, "files": n}))
    os.replace(tmp, npy)
    os.replace(meta_tmp, meta)
    return CacheResult(np.load(npy, mmap_mode="r"), kept, npy, report, built=True)
