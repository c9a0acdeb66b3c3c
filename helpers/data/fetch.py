"""One file from a URL, on :mod:`pooch`: resumed after an interruption, checked, renamed atomically.

:func:`fetch_file` is the only network call of the package. It hands :func:`pooch.retrieve` a
downloader (:class:`ResumingDownloader`) that

* writes to ``<file>.part`` beside the target and, when that partial file is there (a download
  cut off earlier, in this call or a former one), asks the server for the rest with an HTTP
  ``Range`` header and appends to it;
* shows a progress bar (tqdm) while it reads;

and pooch then checks the file's hash against the published one *before* the file is moved (one
atomic rename in the same folder) to its final name. A file that fails the check is deleted.
Every failure becomes one :class:`FetchError` line that names the dataset, the URL and what went
wrong (no network, HTTP 403/404, checksum); :mod:`helpers.data.download` adds what to do by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FetchError", "ResumingDownloader", "fetch_file", "part_file"]

#: Bytes read per chunk from the response.
CHUNK = 1 << 13


class FetchError(RuntimeError):
    """A file that could not be fetched; the message is one line naming the URL and the reason."""


def part_file(dest: Path) -> Path:
    """Where the download of ``dest`` accumulates until it is complete: ``<dest>.part``."""
    return dest.with_name(dest.name + ".part")


@dataclass(frozen=True)
class ResumingDownloader:
    """A pooch downloader that resumes ``part`` with HTTP ``Range`` requests.

    Attributes:
        part: the partial file kept between attempts (and between calls).
        progress: show a tqdm progress bar.
        attempts: how many times a connection dropped halfway is resumed within one call.
        timeout: seconds to wait for the server to connect or send data.
    """

    part: Path
    progress: bool = True
    attempts: int = 5
    timeout: float = 30.0

    def __call__(self, url: str, output_file: str, pooch: object = None) -> None:
        """Fetch ``url`` into :attr:`part` (resuming it), then move it to ``output_file`` (pooch's temporary)."""
        import requests

        for attempt in range(self.attempts):
            try:
                if self._get(url, requests):
                    break
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
                if attempt == self.attempts - 1 or not self.part.exists():
                    raise
        else:  # every attempt ended short of the announced length
            raise FetchError(
                f"{url}: the connection dropped {self.attempts} times; the partial file {self.part} is kept"
            )
        os.replace(self.part, output_file)

    def _get(self, url: str, requests: object) -> bool:
        """One request for the rest of the file; True when the file is complete."""
        from tqdm import tqdm

        from ..config import progress_shown

        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"User-Agent": "medvit-book", **({"Range": f"bytes={have}-"} if have else {})}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:  # type: ignore[attr-defined]
            if response.status_code == 416:  # nothing left to send: the partial file is whole
                return True
            response.raise_for_status()
            if response.status_code != 206:  # the server ignored the range: start again
                have = 0
            rest = int(response.headers.get("Content-Length", 0)) or None
            total = have + rest if rest is not None else None
            with (
                open(self.part, "ab" if have else "wb") as fh,
                tqdm(total=total, initial=have, unit="B", unit_scale=True, disable=not (self.progress and progress_shown())) as bar,
            ):
                for chunk in response.iter_content(CHUNK):
                    fh.write(chunk)
                    bar.update(len(chunk))
        return total is None or self.part.stat().st_size >= total


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words."""
    import requests

    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"no network (could not connect: {type(exc).__name__})"
    if isinstance(exc, requests.exceptions.Timeout):
        return "the server did not answer in time"
    if isinstance(exc, ValueError) and "hash" in str(exc).lower():
        return "checksum mismatch: the file differs from the published one and was removed"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def fetch_file(
    url: str, dest: Path, known_hash: str | None = None, *, progress: bool = True, attempts: int = 5
) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right hash is there; returns ``dest``.

    Args:
        url: what to fetch.
        dest: the final file; the download grows in ``<dest>.part`` and is renamed only once whole
            and checked.
        known_hash: ``"md5:..."`` or ``"sha256:..."`` (a bare hex string is SHA-256); ``None``
            when nothing is published (then an existing ``dest`` is trusted).
        progress: show a progress bar.
        attempts: reconnections allowed after a dropped connection.

    Raises:
        FetchError: one line naming the URL and the reason (no network, HTTP 403/404, checksum
            mismatch, a connection that kept dropping).
    """
    import pooch

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    downloader = ResumingDownloader(part_file(dest), progress=progress, attempts=attempts)
    logger, level = pooch.get_logger(), pooch.get_logger().level
    logger.setLevel("WARNING")  # pooch's advice to pin the hash is for library authors, not readers
    try:
        pooch.retrieve(url, known_hash, fname=dest.name, path=dest.parent, downloader=downloader)
    except FetchError:
        raise
    except Exception as exc:  # requests' errors, pooch's hash ValueError, disk errors
        raise FetchError(f"{url}: {_reason(exc)}") from exc
    finally:
        logger.setLevel(level)
    return dest
