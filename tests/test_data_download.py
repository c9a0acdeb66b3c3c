"""Downloads against a local HTTP server on 127.0.0.1: clean, resumed, corrupted, 404 and no network.

The server (:class:`LoopbackServer`) serves small archives in each dataset's real layout (a tiny
MedMNIST ``.npz``, a mini-MIAS ``tar.gz`` with ``Info.txt`` and PGMs, a PBC zip with class
folders), answers ``Range`` requests, and can drop a connection halfway through a file.
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from helpers.data import download as dl
from helpers.data.fetch import FetchError, fetch_file, part_file
from helpers.data.mammography import read_mias
from helpers.data.medmnist import read_medmnist_npz
from helpers.data.pbc import read_pbc


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.server.files.get(self.path)
        self.server.requests.append((self.path, self.headers.get("Range")))
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        if self.path in self.server.drop and not self.headers.get("Range"):
            self.server.drop.discard(self.path)  # the first full request stops halfway
            self.wfile.write(rest[: len(rest) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(rest)


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 serving ``files`` (path -> bytes), with Range and dropped connections."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.drop: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server():
    srv = LoopbackServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch):
    monkeypatch.delenv("MEDVIT_OFFLINE", raising=False)


def _refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused: a machine with no network)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.npz"


# ----------------------------------------------------------------------------- archives in real layouts


def _medmnist_npz() -> bytes:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 16), ("val", 8), ("test", 8)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 8).reshape(n, 1)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _image_bytes(fmt: str, mode: str, side: int, seed: int) -> bytes:
    shape = (side, side, 3) if mode == "RGB" else (side, side)
    pixels = np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, format=fmt)
    return buf.getvalue()


def _mias_tar() -> bytes:
    info = "mdb001 G CIRC B 535 425 197\nmdb002 G NORM\nmdb003 D NORM\nmdb004 F ASYM M 400 400 60\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = {"Info.txt": info.encode(), **{f"mdb00{i}.pgm": _image_bytes("PPM", "L", 64, i) for i in range(1, 5)}}
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return buf.getvalue()


def _pbc_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, cls in enumerate(("basophil", "eosinophil", "neutrophil")):
            for i in range(3):
                zf.writestr(
                    f"PBC_dataset_normal_DIB/{cls}/{cls[:2].upper()}_{i}.jpg", _image_bytes("JPEG", "RGB", 32, k)
                )
    return buf.getvalue()


# ----------------------------------------------------------------------------- fetch_file


def test_clean_download_checked_and_renamed(server, tmp_path):
    body = _medmnist_npz()
    server.files["/bloodmnist.npz"] = body
    dest = tmp_path / "bloodmnist.npz"
    fetch_file(server.url("/bloodmnist.npz"), dest, f"md5:{hashlib.md5(body).hexdigest()}", progress=False)
    assert dest.read_bytes() == body and not part_file(dest).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bloodmnist.npz"], "no temporary file left behind"
    fetch_file(server.url("/bloodmnist.npz"), dest, f"md5:{hashlib.md5(body).hexdigest()}", progress=False)
    assert len(server.requests) == 1, "a file with the right checksum is not fetched again"


def test_dropped_connection_is_resumed_with_range(server, tmp_path):
    body = _medmnist_npz()
    server.files["/bloodmnist.npz"] = body
    server.drop.add("/bloodmnist.npz")
    dest = tmp_path / "bloodmnist.npz"
    fetch_file(server.url("/bloodmnist.npz"), dest, f"sha256:{hashlib.sha256(body).hexdigest()}", progress=False)
    assert dest.read_bytes() == body
    (first, _), (second, rng) = server.requests
    assert first == second == "/bloodmnist.npz" and rng.startswith("bytes="), "the rest was asked for"
    assert 0 < int(rng[6:-1]) <= len(body) // 2, "from where the first connection stopped"


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    body = _mias_tar()
    server.files["/all-mias.tar.gz"] = body
    dest = tmp_path / "all-mias.tar.gz"
    part_file(dest).write_bytes(body[:100])  # a download cut off earlier (the process was killed)
    fetch_file(server.url("/all-mias.tar.gz"), dest, progress=False)
    assert dest.read_bytes() == body and server.requests == [("/all-mias.tar.gz", "bytes=100-")]


def test_corrupted_file_is_removed_and_reported(server, tmp_path):
    body = _medmnist_npz()
    server.files["/bloodmnist.npz"] = body[:-10] + b"corrupted!"
    dest = tmp_path / "bloodmnist.npz"
    with pytest.raises(FetchError, match="checksum mismatch.*removed"):
        fetch_file(server.url("/bloodmnist.npz"), dest, f"md5:{hashlib.md5(body).hexdigest()}", progress=False)
    assert list(tmp_path.iterdir()) == [], "the bad file and its partial copy are gone"


def test_404_and_no_network_are_one_line(server, tmp_path):
    with pytest.raises(FetchError, match=r"HTTP 404") as err:
        fetch_file(server.url("/missing.npz"), tmp_path / "x.npz", progress=False)
    assert "\n" not in str(err.value) and "/missing.npz" in str(err.value)
    with pytest.raises(FetchError, match="no network") as err:
        fetch_file(_refused_url(), tmp_path / "x.npz", progress=False)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- the datasets' downloaders


def test_medmnist_download_reads_back(server, tmp_path, tmp_workdirs):
    body = _medmnist_npz()
    server.files["/bloodmnist_64.npz"] = body
    path = dl.download_medmnist(
        "bloodmnist", tmp_path, size=64, url=server.url("/bloodmnist_64.npz"), md5=hashlib.md5(body).hexdigest()
    )
    assert path.name == "bloodmnist_64.npz"
    ds = read_medmnist_npz(path, "bloodmnist", "test", source="download")
    assert len(ds) == 8 and ds.source == "download"


def test_medmnist_size_for_the_profile():
    assert [dl.medmnist_size(s) for s in (None, 28, 32, 64, 100, 224, 512)] == [28, 28, 64, 64, 128, 224, 224]


def test_mias_download_resumed_and_read(server, tmp_path, tmp_workdirs):
    server.files["/all-mias.tar.gz"] = _mias_tar()
    server.drop.add("/all-mias.tar.gz")
    home = dl.download_mias(tmp_path / "mias", url=server.url("/all-mias.tar.gz"))
    assert (home / "all-mias" / "Info.txt").exists() and (home / "download.json").exists()
    assert not (home / "all-mias.tar.gz").exists(), "the archive is removed once unpacked"
    assert len(read_mias(home)) == 4


def test_pbc_zip_layout_unpacks_for_its_reader(server, tmp_path, tmp_workdirs):
    server.files["/PBC_dataset_normal_DIB.zip"] = _pbc_zip()
    home = dl.download_archive(
        "pbc", server.url("/PBC_dataset_normal_DIB.zip"), tmp_path / "pbc", into=".", marker="PBC_dataset_normal_DIB"
    )
    cat = read_pbc(home)
    assert len(cat) == 9 and sorted(cat.classes)[:3] == ["basophil", "eosinophil", "erythroblast"]


def test_dataset_errors_name_dataset_url_and_what_to_do(server, tmp_path, tmp_workdirs, monkeypatch):
    with pytest.raises(dl.DownloadError) as err:
        dl.download_mias(tmp_path / "mias", url=server.url("/gone.tar.gz"))
    msg = str(err.value)
    assert msg.startswith("mias: could not download http://127.0.0.1") and "HTTP 404" in msg and "\n" not in msg
    assert "$MEDVIT_DATA/mias/all-mias/Info.txt" in msg, "says what to do by hand"
    with pytest.raises(dl.DownloadError, match=r"bloodmnist: could not download .*no network.*\$MEDVIT_DATA/medmnist/"):
        dl.download_medmnist("bloodmnist", tmp_path, url=_refused_url(), md5="0" * 32)
    body = _medmnist_npz()
    server.files["/bad.npz"] = body
    with pytest.raises(dl.DownloadError, match="checksum mismatch"):
        dl.download_medmnist("bloodmnist", tmp_path, url=server.url("/bad.npz"), md5="0" * 32)
    assert not (tmp_path / "bloodmnist.npz").exists()
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    with pytest.raises(dl.DownloadError, match="MEDVIT_OFFLINE is set"):
        dl.download_covid(tmp_path / "covid", url=server.url("/covid.zip"))
    assert server.requests[-1][0] == "/bad.npz", "offline: no request made"
