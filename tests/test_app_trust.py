"""How far the app lets a user trust an answer: chance, unlike images, transparency, CSV, stale state.

The models are untrained (random weights, or a constant one); the training images' statistics come
from the real PBC sample where a test needs them (those tests skip without it).
"""

from __future__ import annotations

import csv
import html
import io
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers import app, inference
from helpers.chance import chance_check
from helpers.imagestats import training_profile
from helpers.preprocessing import prepare_file
from helpers.testing import find_sample, make_untrained_checkpoint

SIZE = 32
NOW = datetime.now(timezone.utc)
PBC = "pbc/PBC_dataset_normal_DIB"


def png(image: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, mode).save(buf, format="PNG")
    return buf.getvalue()


def pbc_files(root: Path, per_class: int, skip: int = 0) -> tuple[list[Path], list[int]]:
    """``per_class`` PBC files of each class (after the first ``skip``), and their class indices."""
    classes = sorted(p.name for p in (root / PBC).iterdir() if p.is_dir())
    files, labels = [], []
    for i, c in enumerate(classes):
        chosen = sorted(f for f in (root / PBC / c).glob("*.jpg") if not f.name.startswith("."))[skip:]
        files += chosen[:per_class]
        labels += [i] * len(chosen[:per_class])
    return files, labels


@pytest.fixture(scope="module")
def pbc_root() -> Path:
    from conftest import shared_data

    root = shared_data()
    if root is None or not (root / PBC).is_dir():
        pytest.skip("the real PBC sample is not here: set MEDVIT_DATA or put ../shared/data beside the repo")
    return root


@pytest.fixture(scope="module")
def trained_like(pbc_root, tmp_path_factory) -> Path:
    """A blood checkpoint whose card holds the statistics and background of 30 PBC images per class."""
    files, _ = pbc_files(pbc_root, 30)
    images = np.stack([prepare_file(f, SIZE, 3)[0] for f in files])
    stats, background = training_profile(images, 3)
    root = tmp_path_factory.mktemp("runs")
    make_untrained_checkpoint(
        root / "blood", "blood", "resnet18", SIZE, 3, card_fields={"image_stats": stats, "background": background}
    )
    return root


# ----------------------------------------------------------------------------- no better than chance


def test_chance_check_tells_a_model_from_chance():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 25)
    perfect = np.eye(4)[y] * 0.9 + 0.025
    good = chance_check(y, perfect, "multiclass")
    assert good["value"] == 1.0 and not good["no_better_than_chance"] and not good["constant"]
    assert 0.25 < good["chance_high"] < 0.45  # the 95th percentile of shuffled balanced accuracies
    guess = chance_check(y, rng.dirichlet(np.ones(4), len(y)), "multiclass")
    assert guess["no_better_than_chance"] and not guess["constant"]
    constant = chance_check(y, np.tile([0.7, 0.1, 0.1, 0.1], (len(y), 1)), "multiclass")
    assert constant["constant"] and constant["no_better_than_chance"] and constant["value"] == 0.25
    labels = rng.integers(0, 2, (200, 3)).astype(float)
    assert not chance_check(labels, labels * 0.8 + 0.1, "multilabel")["no_better_than_chance"]
    assert chance_check(labels, np.full((200, 3), 0.3), "multilabel")["constant"]
    with pytest.raises(ValueError, match="task"):
        chance_check(y, perfect, "regression")


@pytest.fixture(scope="module")
def constant_root(pbc_root, tmp_path_factory) -> Path:
    """A blood model that calls every image 'basophil' (zero weights, one large bias), with the
    chance check of its predictions on 10 real PBC images per class in its card."""
    root = tmp_path_factory.mktemp("runs")
    folder = make_untrained_checkpoint(root / "constant", "blood", "resnet18", SIZE, 3)
    model, card = app.load_model(folder)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([5.0] + [0.0] * 7))
    files, labels = pbc_files(pbc_root, 10, skip=40)
    x = torch.cat([inference.model_input(f, card).x for f in files])  # one batch: the app's input rule
    checked = chance_check(np.array(labels), inference.predict(model, x, card), "multiclass")
    from helpers.checkpoints import save_checkpoint

    metrics = {"test": {"accuracy": 0.125, "balanced_accuracy": 0.125, "kappa": 0.0}}
    save_checkpoint(model, folder, card.replace(chance=checked, metrics=metrics, data_source="real"))
    return root


def test_a_constant_model_is_flagged_in_the_menu_and_on_the_card(constant_root):
    (entry,) = app.find_models("blood", constant_root)
    assert entry.card.chance["constant"] and entry.card.no_better_than_chance
    a = app.ClassifierApp(constant_root)
    label = a.model.options[0][0]
    assert label.startswith("⚠ NO BETTER THAN CHANCE") and "test balanced accuracy 0.125" in label
    # a chance-level model is never the default: none is chosen, the page says why, nothing can be classified
    assert a.model.value is None and app.best_model([entry]) is None and a.card.value == ""
    assert "medvit-nodefault" in a.hint.value and "none is chosen for you" in a.hint.value and a.button.disabled
    a.model.value = 0  # the user may still pick it, and its card says what it is
    assert "No better than chance: it gives every test image the same answer" in a.card.value
    assert "medvit-warning" in a.card.value and not a.button.disabled


def test_an_old_card_with_kappa_zero_is_flagged_too(tmp_path):
    """A card written before the chance check: kappa 0 with balanced accuracy 1/K gives it away."""
    from helpers.cards import ModelCard
    from helpers.checkpoints import Checkpoint

    metrics = {"test": {"accuracy": 0.578, "balanced_accuracy": 1 / 3, "kappa": 0.0, "macro_auroc": 0.47}}
    card = ModelCard(
        architecture="resnet18",
        task="multiclass",
        classes=("normal", "benign", "malignant"),
        input_size=SIZE,
        in_chans=1,
        mean=(0.5,),
        std=(0.25,),
        dataset="mias",
        data_source="real",
        metrics=metrics,
    )
    entry = Checkpoint(tmp_path, card)
    assert card.no_better_than_chance is None  # not checked when it was trained
    assert app.model_label(entry).startswith("⚠ NO BETTER THAN CHANCE")
    assert "test balanced accuracy 0.333" in app.model_label(entry)  # not "test accuracy 0.578"
    assert app.chance_warning(card).startswith("no better than chance: its test Cohen's kappa is 0")
    fine = card.replace(metrics={"test": {"balanced_accuracy": 0.6, "kappa": 0.4}})
    assert app.chance_warning(fine) is None and not app.model_label(Checkpoint(tmp_path, fine)).startswith("⚠")


def test_metrics_carry_plain_names(trained_like):
    (entry,) = app.find_models("blood", trained_like)
    card = entry.card.replace(metrics={"test": {"balanced_accuracy": 0.8, "kappa": 0.77, "macro_auroc": 0.95}})
    text = html.unescape(app.card_html(card))
    assert "balanced accuracy 0.800" in text and "Cohen's kappa 0.770" in text and "macro AUROC 0.950" in text
    assert "balanced_accuracy" not in text and "kappa 0" not in text.replace("Cohen's kappa", "")


# ----------------------------------------------------------------------------- unlike the training images


def test_a_chest_film_on_the_blood_task_is_warned_about(pbc_root, trained_like):
    chest = find_sample("chest", pbc_root)
    model, card = app.load_model(trained_like / "blood")
    res = app.classify_one(app.Upload(chest.name, chest.read_bytes(), 0), model, card)
    assert res.ok and res.warnings, res.notes
    assert "unlike the images the model was trained on" in res.warnings[0] and "colourfulness 0.00" in res.warnings[0]
    page = app.result_html(res)
    assert "medvit-ood" in page and "may mean nothing" in page
    assert "unlike the images" in app.results_csv([res], card)


def test_held_out_blood_cells_are_not_warned_about(pbc_root, trained_like):
    model, card = app.load_model(trained_like / "blood")
    files, _ = pbc_files(pbc_root, 5, skip=40)  # images the statistics did not see
    warned = []
    for f in files:
        if app.classify_one(app.Upload(f.name, f.read_bytes(), 0), model, card, heatmap=False).warnings:
            warned.append(f.name)
    assert warned == []


def test_transparency_is_composited_on_the_training_background(pbc_root, trained_like):
    model, card = app.load_model(trained_like / "blood")
    cell = np.asarray(Image.open(find_sample("blood", pbc_root)).convert("RGB"))
    h, w = cell.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = np.where((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 4) ** 2, 255, 0).astype(np.uint8)
    rgba = np.dstack([np.where(alpha[..., None] > 0, cell, 0), alpha])  # cut out, transparent pixels black
    res = app.classify_one(app.Upload("cut.png", png(rgba, "RGBA"), 0), model, card)
    top = res.thumbnail[0, res.thumbnail.shape[1] // 2]  # outside the cut-out disc (the corners hold padding)
    assert card.background is not None and np.abs(top.astype(int) - card.background).max() <= 1
    assert any("RGBA composited on the colour" in n for n in res.notes)
    old = card.replace(background=None)  # a card from before: black, as the training cache does
    black = app.classify_one(app.Upload("cut.png", png(rgba, "RGBA"), 0), model, old).thumbnail
    assert black[0, black.shape[1] // 2].max() == 0


# ----------------------------------------------------------------------------- CSV and page state


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://x","y").png', "+cmd.png", "-2+3.png", "@SUM(A1).png", "\tx.png", "\rx.png"]
)
def test_csv_cells_cannot_become_formulas(name, tmp_path):
    card = app.load_model(make_untrained_checkpoint(tmp_path / "b", "blood"))[1]
    res = app.Result(name=name, probabilities={c: 1 / 8 for c in card.classes}, notes=["-note"])
    text = app.results_csv([res], card)
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["file"] == "'" + name and row["notes"] == "'-note"
    assert float(row["p(basophil)"]) == 0.125  # numbers stay numbers
    assert pd.read_csv(io.StringIO(text))["file"][0] == "'" + name
    assert app.csv_safe("cell.png") == "cell.png" and app.csv_safe(-1.5) == -1.5


def _file_value(name: str, data: bytes) -> tuple[dict, ...]:
    return ({"name": name, "type": "image/png", "size": len(data), "content": memoryview(data), "last_modified": NOW},)


def test_switching_task_or_model_clears_files_results_and_the_csv(trained_like):
    make_untrained_checkpoint(trained_like / "chest", "chest", "resnet18", SIZE, 1)
    a = app.ClassifierApp(trained_like)
    data = png(np.full((48, 48, 3), 200, np.uint8))
    a.upload.value = _file_value("film.png", data)
    assert a.pending and a.upload.value == () and "1 file(s) ready" in a.status.value
    assert a.run()[0].ok and "medvit-result" in a.results.value and "medvit-csv" in a.download.value
    a.task.value = "chest"
    assert (a.pending, a.results.value, a.download.value, a.status.value) == ([], "", "", "")
    assert a.run() == [] and "Upload one or more images first" in a.status.value and a.results.value == ""
    a.task.value = "blood"
    a.upload.value = _file_value("film.png", data)
    a.run()
    a.show_card()  # what choosing another model does
    assert (a.pending, a.results.value, a.download.value) == ([], "", "")


def test_the_same_files_picked_again_are_ready_again(trained_like):
    a = app.ClassifierApp(trained_like)
    data = png(np.full((48, 48, 3), 200, np.uint8))
    a.upload.value = _file_value("cell.png", data)
    a.run()
    assert "Done: 1 of 1" in a.status.value
    a.upload.value = _file_value("cell.png", data)  # the browser sends the same files again
    assert "1 file(s) ready: cell.png" in a.status.value and "Press <b>Classify</b>" in a.status.value
    assert a.results.value == ""  # the old results do not stay under the new files


def test_an_over_limit_file_is_named_as_its_message_names_it(trained_like):
    a = app.ClassifierApp(trained_like)
    big = {
        "name": "big.dcm",
        "type": "",
        "size": (app.MAX_FILE_MB + 1) * 1_000_000,
        "content": b"",
        "last_modified": NOW,
    }
    a.upload.value = (big,)
    phrase = f"over the upload limit of {app.MAX_FILE_MB} MB per file"
    assert f"big.dcm ({phrase})" in a.status.value
    (res,) = a.run()
    assert phrase in res.error


def test_no_model_page_names_the_runs_folder_and_does_not_ask_for_classify(tmp_path):
    a = app.ClassifierApp(tmp_path / "empty")
    assert "$MEDVIT_RUNS" in a.hint.value and a.button.disabled
    a.upload.value = _file_value("x.png", png(np.zeros((16, 16, 3), np.uint8)))
    assert "ready" in a.status.value and "Press" not in a.status.value and "no usable model" in a.status.value


def test_old_results_are_gone_while_classifying(trained_like, monkeypatch):
    import helpers.app.widgets as widgets

    a = app.ClassifierApp(trained_like)
    data = png(np.full((48, 48, 3), 200, np.uint8))
    a.upload.value = _file_value("first.png", data)
    a.run()
    assert "first.png" in a.results.value
    seen = {}
    real = widgets.classify

    def watching(*args, **kwargs):
        seen.update(results=a.results.value, download=a.download.value, status=a.status.value)
        return real(*args, **kwargs)

    monkeypatch.setattr(widgets, "classify", watching)
    a.run()  # the same file again: while it runs, the page shows "Classifying…" and nothing older
    assert seen == {"results": "", "download": "", "status": seen["status"]} and "Classifying 1 file" in seen["status"]
    assert "first.png" in a.results.value


def test_a_colour_picture_on_a_grey_model_is_warned_about(pbc_root, tmp_path):
    """The grey chest model's card keeps the statistics of 30 NIH films: 10 other films and 10 COVID-19
    films pass; a blood-cell photograph (converted to grey for the model) and a mammogram do not."""
    films = sorted((pbc_root / "nih" / "images").glob("*.png"))
    stats, background = training_profile(np.stack([prepare_file(f, SIZE, 1)[0] for f in films[:30]]), 1)
    folder = make_untrained_checkpoint(
        tmp_path / "chest", "chest", "resnet18", SIZE, 1, card_fields={"image_stats": stats, "background": background}
    )
    model, card = app.load_model(folder)

    def warnings(path: Path) -> list[str]:
        return app.classify_one(app.Upload(path.name, path.read_bytes(), 0), model, card, heatmap=False).warnings

    others = films[30:40] + sorted((pbc_root / "covid" / "images").iterdir())[:10]
    assert [f.name for f in others if warnings(f)] == []
    (cell,) = warnings(find_sample("blood", pbc_root))
    assert "a colour picture (colourfulness" in cell and "where the training images were grey" in cell
    assert "mean grey" in warnings(find_sample("mammo", pbc_root))[0]


def test_the_card_states_its_chance_check(constant_root, trained_like):
    (constant,) = app.find_models("blood", constant_root)
    text = html.unescape(app.card_html(constant.card))
    assert "against chance" in text and "no better than chance: test balanced accuracy 0.125" in text
    (untested,) = app.find_models("blood", trained_like)
    assert "not checked (the card holds no chance check)" in app.card_html(untested.card)
