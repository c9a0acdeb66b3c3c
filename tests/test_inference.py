"""The inference path: light imports, one rule from a file to a tensor, one rule from logits to probabilities.

The central claim: an uploaded file reaches the model as exactly the tensor training gave the
model for the same file (the decode-once cache, then the loaders' normalisation), checked with
``torch.equal`` on real files of every kind the app meets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from helpers import inference
from helpers.cards import ModelCard
from helpers.imageio import describe_image

ROOT = Path(__file__).resolve().parents[1]

#: What the app and the inference path must never import (training, data registry, downloaders).
FORBIDDEN = (
    "fastai",
    "helpers.train",
    "helpers.training",
    "helpers.callbacks",
    "helpers.data",
    "helpers.data.registry",
    "helpers.data.download",
    "medmnist",
    "pooch",
)


def test_inference_and_the_app_import_no_training_and_no_downloader(tmp_path):
    """In a fresh interpreter: import the app and inference, build the widget, classify a file."""
    code = textwrap.dedent(
        f"""
        import io, json, sys
        import numpy as np
        from PIL import Image
        import helpers.inference, helpers.preprocessing, helpers.checkpoints, helpers.testing
        import helpers.app, helpers.app.core, helpers.app.render, helpers.app.widgets
        from helpers import app
        from helpers.testing import make_untrained_checkpoint

        folder = make_untrained_checkpoint({str(tmp_path / "ck")!r}, "blood", "resnet18", 32, 3)
        app.build_app({str(tmp_path)!r})
        model, card = app.load_model(folder)
        buf = io.BytesIO()
        Image.fromarray(np.full((40, 50, 3), 120, np.uint8)).save(buf, format="PNG")
        (res,) = app.classify([("x.png", buf.getvalue())], model, card)
        assert res.ok and res.overlay is not None, res.error or res.notes
        roots = ("helpers", "fastai", "medmnist", "pooch")
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in roots)))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "helpers.app.widgets" in loaded and "helpers.inference" in loaded  # the probe saw the imports
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


# ----------------------------------------------------------------------------- probabilities


def test_probabilities_multiclass_is_a_softmax():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    p = inference.probabilities(logits, "multiclass")
    assert torch.equal(p, torch.softmax(logits, dim=-1))
    assert torch.allclose(p.sum(-1), torch.ones(2))


def test_probabilities_binary_two_columns_or_one():
    two = torch.tensor([[1.0, -1.0]])
    assert torch.equal(inference.probabilities(two, "binary"), torch.softmax(two, dim=-1))
    one = torch.tensor([[0.0], [2.0]])
    p = inference.probabilities(one, "binary")
    assert p.shape == (2, 2)
    assert torch.allclose(p[:, 1], torch.sigmoid(one[:, 0])) and torch.allclose(p.sum(-1), torch.ones(2))
    assert torch.allclose(p[0], torch.tensor([0.5, 0.5]))


def test_probabilities_multilabel_is_one_sigmoid_per_label():
    logits = torch.tensor([[3.0, 3.0, -3.0]])
    p = inference.probabilities(logits, "multilabel")
    assert torch.equal(p, torch.sigmoid(logits))
    assert p.sum() > 1.5  # independent labels: no normalisation across them


def test_probabilities_refuses_an_unknown_task():
    with pytest.raises(ValueError, match="multiclass"):
        inference.probabilities(torch.zeros(1, 2), "regression")


# ----------------------------------------------------------------------------- input


def _card(in_chans: int, size: int = 48, preprocess: str | None = None, task: str = "multiclass") -> ModelCard:
    mean = (0.485, 0.456, 0.406)[:in_chans] if in_chans == 3 else (0.5,)
    std = (0.229, 0.224, 0.225)[:in_chans] if in_chans == 3 else (0.25,)
    return ModelCard(
        architecture="resnet18",
        task=task,
        classes=("a", "b"),
        input_size=size,
        in_chans=in_chans,
        mean=mean,
        std=std,
        preprocess=preprocess,
    )


def test_normalize_scales_uint8_and_takes_floats_as_they_are():
    u = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    x = inference.normalize(u, [0.5], [0.25])
    assert torch.allclose(x, (u.float() / 255 - 0.5) / 0.25)
    assert torch.equal(inference.normalize(u.float() / 255, [0.5], [0.25]), x)
    batch = torch.zeros(2, 3, 4, 4)
    assert torch.allclose(inference.normalize(batch, [0.5] * 3, [0.5] * 3), torch.full((2, 3, 4, 4), -1.0))


def test_prepare_gives_the_card_shape_from_bytes_paths_and_arrays(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (30, 70, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    card = _card(3, size=24)
    from_path = inference.prepare(path, card)
    from_bytes = inference.prepare(path.read_bytes(), card)
    from_array = inference.prepare(img, card)
    assert from_path[0].shape == (1, 3, 24, 24) and from_path[1].shape == (24, 24, 3)
    assert torch.equal(from_path[0], from_bytes[0]) and torch.equal(from_path[0], from_array[0])
    grey = inference.prepare(path, _card(1, size=24))
    assert grey[0].shape == (1, 1, 24, 24)


def test_predict_checks_the_outputs_against_the_card():
    card = _card(1, size=8)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    with pytest.raises(inference.InferenceError, match="3 outputs but its card lists 2"):
        inference.predict(model, torch.zeros(1, 1, 8, 8), card)
    ok = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    p = inference.predict(ok, torch.zeros(4, 1, 8, 8), card)
    assert p.shape == (4, 2) and np.allclose(p.sum(1), 1)


# ----------------------------------------------------------------------------- the same tensor as in training


def _training_tensor(path: Path, card: ModelCard, cache_channels: int, cache_root: Path) -> torch.Tensor:
    """What training feeds the model for ``path``: the decode-once cache, then the loaders' normalisation."""
    from helpers.data.base import ImageDataset
    from helpers.data.cache import cached_images
    from helpers.data.loaders import make_dataloaders

    cached = cached_images(
        "probe",
        "test",
        [path],
        card.input_size,
        source="real",
        channels=cache_channels,
        preprocess=card.preprocess,
        cache_root=cache_root,
        progress=False,
    )
    ds = ImageDataset(
        "probe", "test", "multiclass", list(card.classes), np.asarray(cached.images), np.zeros(1, np.int64), "real"
    )
    dls = make_dataloaders(ds, ds, 1, device="cpu", channels=card.in_chans, stats=(card.mean, card.std))
    x, _ = dls.valid.one_batch()
    return x


def _grey_nih(real_data: Path) -> Path:
    return next(p for p in sorted((real_data / "nih" / "images").glob("*.png")) if describe_image(p)["mode"] == "L")


def _cases(real_data: Path) -> dict[str, tuple[Path, ModelCard, int]]:
    """name → (file, card, channels of the training cache)."""
    pbc = sorted((real_data / "pbc").glob("**/*.jpg"))[0]
    nih = _grey_nih(real_data)
    covid = next(
        p for p in sorted((real_data / "covid" / "images").glob("*.jp*g")) if describe_image(p)["mode"] == "RGB"
    )
    return {
        "pbc jpeg, rgb model": (pbc, _card(3, 64), 3),
        "nih grey png 1024 px, grey model": (nih, _card(1, 64), 1),
        "nih grey png, rgb model (loader repeats the channel)": (nih, _card(3, 64), 1),
        "covid colour jpeg, rgb model": (covid, _card(3, 64), 3),
        "nih grey png, equalised, rgb model": (nih, _card(3, 64, "equalize"), 3),
        "nih grey png, equalised grey cache, rgb model": (nih, _card(3, 64, "equalize"), 1),
        "covid colour jpeg, equalised, rgb model": (covid, _card(3, 64, "equalize"), 3),
        "pbc colour jpeg, equalised, rgb model": (pbc, _card(3, 64, "equalize"), 3),
    }


def test_upload_and_training_give_identical_tensors(real_data, tmp_path):
    for i, (name, (path, card, cache_channels)) in enumerate(_cases(real_data).items()):
        trained = _training_tensor(path, card, cache_channels, tmp_path / f"cache{i}")
        uploaded, _ = inference.prepare(path.read_bytes(), card)
        assert uploaded.shape == trained.shape == (1, card.in_chans, card.input_size, card.input_size), name
        assert uploaded.dtype == trained.dtype == torch.float32, name
        assert torch.equal(uploaded, trained), f"{name}: max difference {(uploaded - trained).abs().max()}"


def test_equalised_colour_upload_is_not_equalised_per_channel(real_data):
    """The rule training uses (equalise the grey image, repeat it) differs from equalising each colour channel."""
    pbc = sorted((real_data / "pbc").glob("**/*.jpg"))[0]
    card = _card(3, 64, "equalize")
    _, image = inference.prepare(pbc.read_bytes(), card)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    # what the app did before it shared the cache's function: equalise the RGB image, then pad and resize
    from helpers.imageio import decode_image

    rgb = ImageOps.equalize(Image.fromarray(decode_image(pbc, channels=3).array))
    side = max(rgb.size)
    square = Image.new("RGB", (side, side), 0)
    square.paste(rgb, ((side - rgb.size[0]) // 2, (side - rgb.size[1]) // 2))
    per_channel = np.asarray(square.resize((64, 64), Image.Resampling.BILINEAR, reducing_gap=None))
    assert np.abs(image.astype(int) - per_channel).max() > 20


def test_model_input_reports_the_decoded_file_and_the_steps(real_data):
    nih = _grey_nih(real_data)
    prepared = inference.model_input(nih.read_bytes(), _card(1, 32))
    assert prepared.decoded.array.shape == (1024, 1024, 1) and prepared.decoded.format == "PNG"
    assert prepared.image.shape == (32, 32, 1) and prepared.x.shape == (1, 1, 32, 32)
    assert {"decode", "preprocess"} <= set(prepared.seconds)
