"""The classifier app as a user meets it: Voila serves ``book/tools/app.ipynb``, headless Chromium drives it.

This tests the user interface, not accuracy: the checkpoints are untrained networks the fixture
writes into a temporary runs folder (a ResNet-18 for blood cells, the chest model's architecture for
chest X-rays, thesis 000's multi-label head on a ResNet-10-T with equalised input, and the
mammography chapter's thesis CNN on 64 px grey crops for mammograms). The steps: the page shows the
app and its disclaimer; a real sample of each task (a PBC cell, an NIH radiograph, a mini-MIAS film)
is uploaded, classified, and its prediction and heatmap appear; two bad files get
their messages while a good file in the same batch is classified; a 50 MB DICOM arrives whole (over
Tornado's default 10 MiB websocket limit) and is classified; a file over the app's limit gets a
message and the page keeps working; switching task after a classification leaves no stale result;
a file named like a spreadsheet formula is neutralised in the CSV; and kernels stay bounded: three
reloads leave at most two kernels alive, a page over the cap (two, here) gets the busy message,
and leaving a page shuts its kernel down.

Chromium is Debian's (``shutil.which("chromium")``); without it the test FAILS and says to run
``make browser``. Only the real-sample uploads skip (with the reason) when the shared data is absent.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import app
from helpers.serving import ServeSettings
from helpers.testing import TASK_CLASSES, find_sample, make_untrained_checkpoint

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "book" / "tools" / "app.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
LOAD_TIMEOUT_MS = 150_000  # the kernel imports torch and timm on a shared 2-core machine
STEP_TIMEOUT_MS = 60_000
MAX_KERNELS = 2  # the test server's cap: the main page and one more
KERNEL_SETTLE_S = 30  # a closed or reloaded page's kernel is gone within this time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shared_data() -> Path | None:
    """``$MEDVIT_DATA`` or ``../shared/data`` (as the ``real_data`` fixture resolves it), else None."""
    env = os.environ.get("MEDVIT_DATA")
    for candidate in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate.resolve()
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `make browser` (make test installs it)")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Voila on a free localhost port with one untrained checkpoint per task; stopped afterwards."""
    tmp = tmp_path_factory.mktemp("app_browser")
    runs = tmp / "runs"
    make_untrained_checkpoint(runs / "blood", "blood", "resnet18", 32, 3)
    # the app's chest model is the lung chapter's CNN (thesis 000's head on ResNet-10-T, equalised input)
    chest_kwargs, chest_card = {"backbone": "resnet10t"}, {"thresholds": {"Effusion": 0.25}}  # others: 0.5
    make_untrained_checkpoint(
        runs / "chest", "chest", "thesis000_resnet50", 64, 3, 0, "equalize", chest_card, chest_kwargs
    )
    # the app's mammogram model is the mammography chapter's thesis CNN on 64 px grey lesion crops
    make_untrained_checkpoint(runs / "mammo", "mammo", "thesis002_cnn", 64, 1)
    env = dict(os.environ, MEDVIT_RUNS=str(runs), MEDVIT_PROFILE="smoke", MEDVIT_CACHE=str(tmp / "cache"))
    data = _shared_data()
    if data is not None:
        env["MEDVIT_DATA"] = str(data)
    port = _free_port()
    log = open(tmp / "voila.log", "w")
    settings = ServeSettings(max_kernels=MAX_KERNELS)
    proc = subprocess.Popen(
        app.voila_command(NOTEBOOK, port=port, python=sys.executable, settings=settings),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"voila exited with {proc.returncode}:\n{(tmp / 'voila.log').read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("voila did not start listening within 90 s")
        time.sleep(0.3)
    yield {"url": f"http://127.0.0.1:{port}/", "tmp": tmp, "log": tmp / "voila.log", "data": data, "pid": proc.pid}
    os.killpg(proc.pid, signal.SIGTERM)  # voila and the kernels it started (its own session)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def kernels(server) -> int:
    """Kernels alive under the server (its ipykernel child processes)."""
    import psutil

    children = psutil.Process(server["pid"]).children(recursive=True)
    alive = []
    for child in children:
        try:
            if "ipykernel" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return len(alive)


def wait_for_kernels(server, at_most: int, within_s: float) -> tuple[int, float]:
    """Poll until at most ``at_most`` kernels are alive or ``within_s`` passed: ``(count, seconds)``."""
    t0 = time.time()
    while (count := kernels(server)) > at_most and time.time() - t0 < within_s:
        time.sleep(0.5)
    return count, time.time() - t0


def open_app(pg, server) -> None:
    pg.goto(server["url"], timeout=LOAD_TIMEOUT_MS)
    try:
        pg.wait_for_selector("button:has-text('Classify')", timeout=LOAD_TIMEOUT_MS)
    except Exception:
        pytest.fail(f"the app did not appear; voila log:\n{server['log'].read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(server, browser):
    pg = browser.new_page()
    pg.set_default_timeout(STEP_TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    open_app(pg, server)
    pg.errors = errors
    yield pg


class UI:
    """What a user does on the page: choose a task, upload files, press Classify, read the answer."""

    def __init__(self, page):
        self.page = page
        self.runs = 0

    def choose_task(self, title: str, expect_in_card: str) -> None:
        select = self.page.locator(".widget-dropdown", has=self.page.locator("label", has_text="Task")).locator(
            "select"
        )
        select.select_option(label=title)
        self.page.locator(".medvit-card", has_text=expect_in_card).wait_for()

    def upload(self, *paths: Path | dict) -> None:
        """Pick files (paths, or Playwright file payloads ``{"name", "mimeType", "buffer"}``)."""
        with self.page.expect_file_chooser() as chooser:
            self.page.locator("button:has-text('Upload')").click()
        chooser.value.set_files([p if isinstance(p, dict) else str(p) for p in paths])
        last = paths[-1]["name"] if isinstance(paths[-1], dict) else paths[-1].name
        # the kernel has the files once it lists them
        self.page.locator(".medvit-ready", has_text=last).wait_for(timeout=STEP_TIMEOUT_MS)

    def classify(self):
        self.page.locator("button:has-text('Classify')").click()
        self.runs += 1
        self.page.locator(f".medvit-done[data-run='{self.runs}']").wait_for(timeout=STEP_TIMEOUT_MS)
        return self.page.locator(".medvit-result")

    def csv(self) -> str:
        href = self.page.locator("a.medvit-csv").get_attribute("href")
        assert href.startswith("data:text/csv;base64,")
        return base64.b64decode(href.split(",", 1)[1]).decode()

    def check_prediction(self, name: str, classes: list[str], heatmap: bool = True) -> None:
        result = self.page.locator(".medvit-result", has_text=name)
        assert result.count() == 1
        predicted = result.locator(".medvit-prediction").inner_text().strip()
        assert all(p in classes for p in predicted.split("|")) or predicted == "none", predicted
        if not heatmap:  # the model's resolution allows no map: the page says so and shows none
            assert result.locator("img.medvit-heatmap").count() == 0
            assert "No heatmap" in result.locator(".medvit-noheatmap").inner_text()
            return
        heat = result.locator("img.medvit-heatmap")
        heat.wait_for(state="visible")
        assert heat.evaluate("img => img.complete && img.naturalWidth > 0")
        assert heat.get_attribute("src").startswith("data:image/png;base64,")


@pytest.fixture(scope="module")
def ui(page):
    return UI(page)


def test_page_shows_the_app_and_the_disclaimer(page):
    body = page.inner_text("body")
    assert "not a diagnostic device" in body
    assert "Model card" in body and "resnet18" in body and "basophil" in body
    assert "Untrained" in body  # the card warns that these models are for testing
    assert f"up to {app.MAX_FILE_MB} MB per file" in body


def _sample(server, task: str) -> Path:
    if server["data"] is None:
        pytest.skip("real data samples not found: set MEDVIT_DATA or put ../shared/data beside the repo")
    path = find_sample(task, server["data"])
    if path is None:
        pytest.skip(f"no {task} sample in {server['data']}")
    return path


def test_blood_cell(server, ui):
    sample = _sample(server, "blood")
    assert "pbc" in str(sample)
    ui.choose_task("Blood cells", "basophil")
    ui.upload(sample)
    ui.classify()
    ui.check_prediction(sample.name, TASK_CLASSES["blood"][1])


def test_chest_xray_shows_every_label(server, ui):
    sample = _sample(server, "chest")
    assert "nih" in str(sample)
    ui.choose_task("Chest X-ray", "Atelectasis")
    ui.upload(sample)
    ui.classify()
    ui.check_prediction(sample.name, TASK_CLASSES["chest"][1])
    result = ui.page.locator(".medvit-result", has_text=sample.name)
    for label in TASK_CLASSES["chest"][1]:
        assert label in result.inner_text()
        row = result.locator("tr", has_text=label).first.inner_text()
        assert re.search(r"\b[01]\.\d{3}\b", row), f"no probability beside {label}: {row!r}"
        assert f"threshold {0.25 if label == 'Effusion' else 0.5:.3f}" in row, row


def test_mammogram(server, ui):
    sample = _sample(server, "mammo")
    assert sample.suffix == ".pgm"
    ui.choose_task("Mammogram", "malignant")
    ui.upload(sample)
    ui.classify()
    ui.check_prediction(sample.name, TASK_CLASSES["mammo"][1])  # Grad-CAM on the CNN's 7×7 map


def _good_png(path: Path) -> Path:
    from PIL import Image

    yy, xx = np.mgrid[:96, :96]
    disc = ((yy - 48) ** 2 + (xx - 48) ** 2 < 30**2)[..., None]
    Image.fromarray(np.where(disc, [150, 60, 160], [230, 210, 200]).astype(np.uint8)).save(path)
    return path


def test_bad_files_get_messages_and_the_batch_goes_on(server, ui):
    tmp = server["tmp"]
    not_image = tmp / "notes.png"
    not_image.write_text("these are notes, not an image")
    empty = tmp / "empty.jpg"
    empty.write_bytes(b"")
    good = _good_png(tmp / "cell.png")
    ui.choose_task("Blood cells", "basophil")
    ui.upload(not_image, empty, good)
    ui.classify()
    errors = ui.page.locator(".medvit-error")
    assert errors.count() == 2
    assert "not a recognised image" in ui.page.locator(".medvit-error", has_text="notes.png").inner_text()
    assert "empty" in ui.page.locator(".medvit-error", has_text="empty.jpg").inner_text()
    ui.check_prediction("cell.png", TASK_CLASSES["blood"][1])
    csv = ui.csv()
    assert csv.count("\n") == 4 and "notes.png" in csv and "empty.jpg" in csv and "cell.png" in csv


def _big_dicom(path: Path, side: int, data: Path | None) -> Path:
    """A 16-bit MONOCHROME2 DICOM mammogram of side × side pixels (a MIAS image enlarged when there is one)."""
    from PIL import Image
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sample = find_sample("mammo", data) if data is not None else None
    if sample is not None:
        img = Image.open(sample).convert("L").resize((side, side), Image.BILINEAR)
        pixels = np.asarray(img).astype(np.uint16) * 16
    else:
        yy, xx = np.mgrid[:side, :side]
        pixels = ((xx + yy) * 4095 // (2 * side)).astype(np.uint16)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_50_mb_dicom_arrives_and_is_classified(server, ui):
    big = _big_dicom(server["tmp"] / "mammogram_50mb.dcm", 5000, server["data"])
    size = big.stat().st_size
    assert 48e6 < size < app.MAX_FILE_MB * 1e6 and size > 10 * 2**20  # over Tornado's default limit
    ui.choose_task("Mammogram", "malignant")
    ui.upload(big)
    ui.classify()
    ui.check_prediction(big.name, TASK_CLASSES["mammo"][1])
    text = ui.page.locator(".medvit-result", has_text=big.name).inner_text()
    assert "DICOM" in text and "5000×5000" in text


def test_an_oversized_upload_gets_a_message_and_the_page_lives(server, ui):
    huge = server["tmp"] / "too_big.dcm"
    with open(huge, "wb") as fh:  # sparse: larger than the websocket limit, no disk used
        fh.truncate(app.websocket_max_message_size() + 50_000_000)
    ui.upload(huge)
    ui.classify()
    message = ui.page.locator(".medvit-error", has_text="too_big.dcm").inner_text()
    assert "over the upload limit" in message and f"{app.MAX_FILE_MB} MB" in message
    good = _good_png(server["tmp"] / "after.png")
    ui.choose_task("Blood cells", "basophil")
    ui.upload(good)
    ui.classify()
    ui.check_prediction("after.png", TASK_CLASSES["blood"][1])
    assert not [e for e in ui.page.errors if "medvit" in e.lower()], ui.page.errors


def test_switching_task_leaves_no_stale_result(server, ui):
    cell = _good_png(server["tmp"] / "switch.png")
    ui.choose_task("Blood cells", "basophil")
    ui.upload(cell)
    ui.classify()
    ui.check_prediction("switch.png", TASK_CLASSES["blood"][1])
    ui.choose_task("Chest X-ray", "Atelectasis")
    page = ui.page
    page.wait_for_function("document.querySelectorAll('.medvit-result').length === 0")
    assert page.locator("a.medvit-csv").count() == 0 and page.locator(".medvit-ready").count() == 0
    page.locator("button:has-text('Classify')").click()  # the blood cell is not classified as a chest film
    page.locator(".medvit-error", has_text="Upload one or more images first").wait_for()
    assert page.locator(".medvit-result").count() == 0
    ui.choose_task("Blood cells", "basophil")
    ui.upload(cell)  # the same file picked again is ready again
    ui.classify()
    ui.check_prediction("switch.png", TASK_CLASSES["blood"][1])


def test_a_formula_named_file_is_neutralised_in_the_csv(server, ui):
    import csv
    import io

    name = '=HYPERLINK("http://x","y").png'
    data = _good_png(server["tmp"] / "formula.png").read_bytes()
    ui.choose_task("Blood cells", "basophil")
    ui.upload({"name": name, "mimeType": "image/png", "buffer": data})
    ui.classify()
    row = next(csv.DictReader(io.StringIO(ui.csv())))
    assert row["file"] == "'" + name  # a leading quote: a spreadsheet shows it as text, never runs it


def test_kernels_stay_bounded(server, browser):
    """Three reloads leave at most two kernels (this page's and the main page's); a third page over the
    cap gets the busy message; leaving the page shuts its kernel down."""
    extra = browser.new_page()
    extra.set_default_timeout(STEP_TIMEOUT_MS)
    open_app(extra, server)
    seen = [kernels(server)]
    for _ in range(3):  # each reload starts a kernel (about 15 s here); three show that old ones go
        extra.reload(timeout=LOAD_TIMEOUT_MS)
        extra.wait_for_selector("button:has-text('Classify')", timeout=LOAD_TIMEOUT_MS)
        seen.append(kernels(server))
    count, waited = wait_for_kernels(server, 2, KERNEL_SETTLE_S)
    print(f"\nkernels after each load: {seen}; {count} alive {waited:.1f} s after the third reload")
    assert count <= 2, f"{count} kernels alive {KERNEL_SETTLE_S} s after three reloads (seen: {seen})"
    over = browser.new_page()
    response = over.goto(server["url"], timeout=LOAD_TIMEOUT_MS)
    assert response.status == 503
    assert f"already serving {MAX_KERNELS} pages" in over.inner_text("body")
    over.close()
    # Leaving the page runs Voila's beforeunload handler, which asks for the kernel's shutdown, as
    # closing a tab does in a browser (Playwright's page.close() removes the page without it).
    extra.goto("about:blank")
    count, waited = wait_for_kernels(server, 1, KERNEL_SETTLE_S)
    assert count == 1, f"{count} kernels alive {KERNEL_SETTLE_S} s after the page was left"
    extra.close()
    log = server["log"].read_text()
    assert "'_xsrf' argument missing" not in log and "DeprecationWarning" not in log
