"""Downloading the datasets that are small and free.

Automatic downloads (used by the registry when ``$MEDVIT_DATA`` lacks the data):

* MedMNIST ``.npz`` files from Zenodo, checked against the MD5 sums the ``medmnist`` package
  publishes;
* mini-MIAS ``all-mias.tar.gz`` from PEIPA (no checksum is published: the SHA-256 of what was
  fetched is recorded beside it).

The others are large or need an account: their :class:`~helpers.data.specs.DatasetSpec` says what
to fetch and where to put it (:func:`instructions`): PBC (Mendeley Data), ChestX-ray14 (NIH Box),
CBIS-DDSM (Kaggle JPEG version or TCIA), the ieee8023 COVID-19 collection (GitHub). Every network
access goes through :func:`fetch`; when it fails (offline, blocked, wrong checksum) a
:class:`DownloadError` says what to download by hand and where to put it. Set
``MEDVIT_OFFLINE=1`` to skip network attempts altogether.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

from .. import config

__all__ = [
    "DownloadError",
    "fetch",
    "offline",
    "instructions",
    "download_dir",
    "download_mias",
    "download_medmnist",
    "download",
]


class DownloadError(RuntimeError):
    """A download that could not be done; the message says how to get the data by hand."""


MIAS_URL = "http://peipa.essex.ac.uk/pix/mias/all-mias.tar.gz"


def offline() -> bool:
    """True when ``MEDVIT_OFFLINE`` is set to 1/true/yes: no network attempt is made."""
    return os.environ.get("MEDVIT_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def instructions(name: str) -> str:
    """How to get ``name`` by hand, in one paragraph (from its :class:`~helpers.data.specs.DatasetSpec`)."""
    from .specs import instructions as how_to  # the specs import this module's downloaders

    return how_to(name)


def download_dir(name: str) -> Path:
    """Where automatic downloads of ``name`` go: ``<cache_dir>/downloads/<name>`` (created by the download)."""
    return config.cache_dir(create=False) / "downloads" / name


def fetch(url: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` (through a temporary file). The only network call in the package."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "medvit-book"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as fh:
        shutil.copyfileobj(response, fh, length=1 << 20)
    os.replace(tmp, dest)
    return dest


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch_or_explain(name: str, url: str, dest: Path) -> Path:
    if offline():
        raise DownloadError(f"{name}: MEDVIT_OFFLINE is set, so nothing was downloaded. {instructions(name)}")
    try:
        return fetch(url, dest)
    except Exception as exc:  # URLError, timeouts, HTTP errors, disk errors
        raise DownloadError(
            f"{name}: could not download {url} ({type(exc).__name__}: {exc}). "
            f"If this machine is offline, get it by hand. {instructions(name)}"
        ) from exc


def download_mias(dest: Path | None = None) -> Path:
    """Download and unpack mini-MIAS; returns the folder holding ``all-mias/Info.txt``.

    Raises:
        DownloadError: offline or failed, with what to download and where to put it.
    """
    dest = dest or download_dir("mias")
    if (dest / "all-mias" / "Info.txt").exists():
        return dest
    archive = _fetch_or_explain("mias", MIAS_URL, dest / "all-mias.tar.gz")
    sha = _digest(archive, "sha256")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest / "all-mias", filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"mias: {archive} is not a readable tar.gz ({exc}). {instructions('mias')}") from exc
    (dest / "download.json").write_text(json.dumps({"url": MIAS_URL, "sha256": sha, "checksum_published": False}))
    archive.unlink(missing_ok=True)
    if not (dest / "all-mias" / "Info.txt").exists():
        raise DownloadError(f"mias: the archive from {MIAS_URL} has no Info.txt. {instructions('mias')}")
    return dest


def download_medmnist(flag: str, dest: Path | None = None, size: int | None = None) -> Path:
    """Download ``<flag>.npz`` (or ``<flag>_<size>.npz``) from Zenodo and check its published MD5.

    Raises:
        DownloadError: offline, failed, or a checksum mismatch.
    """
    import medmnist

    info = medmnist.INFO.get(flag)
    if info is None:
        raise DownloadError(f"{flag}: not a MedMNIST dataset")
    suffix = f"_{size}" if size in (64, 128, 224) else ""
    url, md5 = info[f"url{suffix}"], info[f"MD5{suffix}"]
    dest = dest or download_dir("medmnist")
    path = dest / f"{flag}{suffix}.npz"
    if path.exists() and _digest(path, "md5") == md5:
        return path
    _fetch_or_explain(flag, url, path)
    got = _digest(path, "md5")
    if got != md5:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{flag}: checksum mismatch for {url} (MD5 {got}, published {md5}). {instructions(flag)}")
    return path


def download(name: str, dest: Path | None = None) -> Path:
    """Download ``name`` where that is automatic (MedMNIST flags, ``"mias"``); returns where it went.

    Raises:
        DownloadError: for the datasets that must be fetched by hand (PBC, ChestX-ray14, CBIS-DDSM,
            COVID-19 collection), offline, or on a failed checksum; the message says what to
            download and where to put it.
    """
    from .specs import DATASETS, FOLDER_DATASETS

    spec = DATASETS.get(name)
    if spec is None:
        raise DownloadError(f"unknown dataset {name!r}; known: {sorted(FOLDER_DATASETS)} and the MedMNIST flags")
    if spec.downloader is None:
        raise DownloadError(f"{name} is not downloaded automatically (size or terms of use). {spec.instructions()}")
    return spec.downloader(dest or download_dir(spec.home))
