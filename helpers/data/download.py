"""Downloading the datasets that are free to fetch, through :func:`helpers.data.fetch.fetch_file`.

Automatic downloads (used by the registry when ``$MEDVIT_DATA`` lacks the data):

* MedMNIST ``.npz`` files from Zenodo at the size asked for (28 px, or MedMNIST+ 64/128/224 px),
  checked against the MD5 sums the ``medmnist`` package publishes;
* mini-MIAS ``all-mias.tar.gz`` from PEIPA and the ieee8023 COVID-19 collection (a GitHub
  archive): no checksum is published, so the SHA-256 of what was fetched is recorded beside it.

PBC (Mendeley Data) publishes no direct file URL with a checksum, so it is not fetched: its
images come re-cut as BloodMNIST, which is downloaded instead (:data:`helpers.data.registry.BLOOD_CELLS`).
ChestX-ray14 (NIH Box) and CBIS-DDSM (Kaggle or TCIA) are large or need an account. Their
:class:`~helpers.data.specs.DatasetSpec` says what to fetch and where to put it (:func:`instructions`).

Every download resumes a partial file, shows progress, checks the checksum before the file is
used and renames it into place atomically (:mod:`helpers.data.fetch`). When it fails (offline,
HTTP 403/404, a wrong checksum) a one-line :class:`DownloadError` names the dataset, the URL and
what to download by hand and where to put it. ``MEDVIT_OFFLINE=1`` skips network attempts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

from .. import config
from .fetch import FetchError, fetch_file
from .medmnist import MEDMNIST_SIZES, medmnist_size

__all__ = [
    "DownloadError",
    "MEDMNIST_SIZES",
    "fetch",
    "offline",
    "instructions",
    "download_dir",
    "download_archive",
    "download_mias",
    "download_covid",
    "download_medmnist",
    "medmnist_size",
    "download",
]


class DownloadError(RuntimeError):
    """A download that could not be done; the message says how to get the data by hand."""


MIAS_URL = "http://peipa.essex.ac.uk/pix/mias/all-mias.tar.gz"
COVID_URL = "https://github.com/ieee8023/covid-chestxray-dataset/archive/refs/heads/master.zip"


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


def fetch(url: str, dest: Path, known_hash: str | None = None) -> Path:
    """Download ``url`` to ``dest``: resumed, checked, renamed atomically (:func:`.fetch.fetch_file`)."""
    return fetch_file(url, dest, known_hash)


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch_or_explain(name: str, url: str, dest: Path, known_hash: str | None = None) -> Path:
    if offline():
        raise DownloadError(f"{name}: MEDVIT_OFFLINE is set, so {url} was not downloaded. {instructions(name)}")
    try:
        return fetch(url, dest, known_hash)
    except (FetchError, OSError) as exc:
        why = str(exc).removeprefix(f"{url}: ")
        raise DownloadError(
            f"{name}: could not download {url} ({why}). To do it by hand: {instructions(name)}"
        ) from exc


def _unpack(archive: Path, into: Path, strip: bool = False) -> None:
    """Unpack a ``.zip`` or ``.tar*`` into ``into`` (merged with what is there); ``strip`` drops a single top folder."""
    tmp = into / ".unpacking"
    shutil.rmtree(tmp, ignore_errors=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
    entries = list(tmp.iterdir())
    top = entries[0] if strip and len(entries) == 1 and entries[0].is_dir() else tmp
    for entry in list(top.iterdir()):
        target = into / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    shutil.rmtree(tmp, ignore_errors=True)


def download_archive(
    name: str, url: str, dest: Path, *, into: str, marker: str, known_hash: str | None = None, strip: bool = False
) -> Path:
    """Download an archive, unpack it to ``dest/into`` and check that ``dest/marker`` exists; returns ``dest``.

    ``strip`` drops the archive's single top folder (a GitHub archive's ``<repo>-<branch>/``).
    A download already complete (its ``marker`` present) is not fetched again. The archive is
    deleted once unpacked; ``dest/download.json`` records its URL and SHA-256.

    Raises:
        DownloadError: offline, failed, a checksum mismatch, an unreadable archive or one without ``marker``.
    """
    if (dest / marker).exists():
        return dest
    archive = _fetch_or_explain(name, url, dest / Path(url.split("?")[0]).name, known_hash)
    sha = _digest(archive, "sha256")
    try:
        _unpack(archive, dest / into, strip)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        archive.unlink(missing_ok=True)
        raise DownloadError(f"{name}: {url} is not a readable archive ({exc}); removed. {instructions(name)}") from exc
    archive.unlink(missing_ok=True)
    if not (dest / marker).exists():
        raise DownloadError(f"{name}: the archive from {url} has no {marker}. {instructions(name)}")
    record = {"url": url, "sha256": sha, "checksum_published": known_hash is not None}
    (dest / "download.json").write_text(json.dumps(record))
    return dest


def download_mias(dest: Path | None = None, *, url: str = MIAS_URL) -> Path:
    """Download and unpack mini-MIAS; returns the folder holding ``all-mias/Info.txt``.

    Raises:
        DownloadError: offline or failed, with what to download and where to put it.
    """
    return download_archive("mias", url, dest or download_dir("mias"), into="all-mias", marker="all-mias/Info.txt")


def download_covid(dest: Path | None = None, *, url: str = COVID_URL) -> Path:
    """Download the ieee8023 COVID-19 collection (``metadata.csv`` + ``images/``); returns its folder.

    Raises:
        DownloadError: offline or failed, with what to download and where to put it.
    """
    dest = dest or download_dir("covid")
    return download_archive("covid", url, dest, into=".", marker="metadata.csv", strip=True)


def download_medmnist(
    flag: str, dest: Path | None = None, size: int | None = None, *, url: str | None = None, md5: str | None = None
) -> Path:
    """Download ``<flag>.npz`` (or MedMNIST+ ``<flag>_<side>.npz``, the smallest side >= ``size``) and check its MD5.

    ``url``/``md5`` replace the ones the ``medmnist`` package publishes (a mirror; tests).

    Raises:
        DownloadError: offline, failed, or a checksum mismatch (the bad file is removed).
    """
    side = medmnist_size(size)
    suffix = "" if side == 28 else f"_{side}"
    if url is None or md5 is None:
        import medmnist

        info = medmnist.INFO.get(flag)
        if info is None:
            raise DownloadError(f"{flag}: not a MedMNIST dataset")
        url, md5 = url or info[f"url{suffix}"], md5 or info[f"MD5{suffix}"]
    dest = dest or download_dir("medmnist")
    return _fetch_or_explain(flag, url, dest / f"{flag}{suffix}.npz", f"md5:{md5}")


def download(name: str, dest: Path | None = None) -> Path:
    """Download ``name`` where that is automatic (MedMNIST flags, ``"mias"``, ``"covid"``); returns where it went.

    Raises:
        DownloadError: for the datasets that must be fetched by hand (PBC, ChestX-ray14,
            CBIS-DDSM), offline, or on a failed checksum; the message says what to download and
            where to put it.
    """
    from .specs import DATASETS, FOLDER_DATASETS

    spec = DATASETS.get(name)
    if spec is None:
        raise DownloadError(f"unknown dataset {name!r}; known: {sorted(FOLDER_DATASETS)} and the MedMNIST flags")
    if spec.downloader is None:
        raise DownloadError(f"{name} is not downloaded automatically (size or terms of use). {spec.instructions()}")
    return spec.downloader(dest or download_dir(spec.home))
