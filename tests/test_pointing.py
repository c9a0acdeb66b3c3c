"""Heatmaps that point at the cell: the stain mask, the measures, and the app's blood model on real PBC images.

The last test trains the blood model exactly as ``python -m helpers app-models`` does (ResNet-18 at
64 px with the blood-cells chapter's CPU recipe, 4 epochs, on the PBC sample) and measures its
Grad-CAM maps, on the layer the app explains with, against the stained cell of each test image.
Measured on this machine (four trainings: seeds 0, 1, 2 and the recipe's own 42; 80 test images
each; test accuracy 0.59-0.75): heat share inside the cell 2.97-3.90 times the cell's area share,
peak inside the cell for 0.54-0.64 of the images. On the last stage (layer4, 2×2 cells at 64 px),
which the app used before, the same maps score 1.04 times and no hit at all. The test asserts a
ratio of at least 2.0 and a hit rate of at least 0.3, below that spread; it trains for about 40 s
on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import pointing

# The app's blood model: the blood-cells chapter's ResNet-10-T at 32 px, Grad-CAM on layer1.0 (8x8).
# Measured: the chapter's quick checkpoint ratio 2.77, peak 0.39; this test's 10-epoch run 2.62, 0.29.
FLOOR_RATIO = 2.0  # heat share inside the cell / the cell's area share, on average
FLOOR_HITS = 0.2  # peak inside the cell (a map that knows nothing: about 0.06, the cell's area share)


def _cell_image(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A pale field, two pink red cells and a purple cell with a pale spot inside; and the purple cell's disc."""
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size, 3), np.uint8) + np.array([245, 225, 205], np.uint8)
    for cy, cx in ((10, 12), (50, 52)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = (215, 165, 175)  # red cells: blue - green = 10
    disc = (yy - 32) ** 2 + (xx - 30) ** 2 < 144
    image[disc] = (90, 40, 130)  # stained nucleus: blue - green = 90
    image[(yy - 32) ** 2 + (xx - 30) ** 2 < 4] = (200, 190, 200)  # a pale centre, to be filled
    return image, disc


def test_the_stained_cell_is_found_by_its_colour():
    image, disc = _cell_image()
    mask = pointing.stained_cell_mask(image)
    assert mask.dtype == bool and (mask == disc).all()
    with pytest.raises(ValueError, match="no stained pixel"):
        pointing.stained_cell_mask(np.full((16, 16, 3), 230, np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        pointing.stained_cell_mask(np.zeros((16, 16), np.uint8))


def test_heat_in_region_by_hand():
    region = np.zeros((4, 4), bool)
    region[:2, :2] = True
    heat = np.zeros((4, 4))
    heat[0, 0], heat[3, 3] = 3.0, 1.0
    score = pointing.heat_in_region(heat, region)
    assert score == {"heat_share": 0.75, "area_share": 0.25, "hit": 1.0}
    flat = pointing.heat_in_region(np.ones((4, 4)), region)
    assert flat["heat_share"] == pytest.approx(flat["area_share"])  # a map that knows nothing
    summary = pointing.pointing_summary([score, flat])
    assert summary["ratio"] == pytest.approx((0.75 + 0.25) / 2 / 0.25) and summary["hit_rate"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        pointing.heat_in_region(np.ones((3, 3)), region)


def test_a_centred_blob_scores_on_a_centred_cell_and_not_on_a_corner_one():
    prior = pointing.centre_prior(64)
    assert prior.shape == (64, 64) and prior[31:33, 31:33].min() == prior.max() and prior[0, 0] < 0.03
    image, _ = _cell_image()
    centred = pointing.centre_baseline([image])
    assert centred["ratio"] > 2.0 and centred["hit_rate"] == 1.0 and centred["n"] == 1
    corner = np.roll(image, (-22, -20), axis=(0, 1))  # the stained cell moved to the top-left corner
    assert pointing.centre_baseline([corner])["ratio"] < 0.7  # below the 1 of a map that knows nothing
    with pytest.raises(ValueError, match="side"):
        pointing.centre_prior(0)


def test_the_stain_mask_finds_a_central_cell_in_real_pbc_images(real_data):
    from helpers.preprocessing import prepare_file

    files = sorted(f for f in real_data.glob("pbc/PBC_dataset_normal_DIB/*/*.jpg") if not f.name.startswith("."))
    files = files[::10]  # 5 per class
    centres, shares = [], []
    for f in files:
        mask = pointing.stained_cell_mask(prepare_file(f, 64, 3)[0])
        ys, xs = np.nonzero(mask)
        centres.append((ys.mean(), xs.mean()))
        shares.append(mask.mean())
    centres = np.array(centres)
    assert len(files) == 40 and 0.005 < min(shares) and max(shares) < 0.3
    assert (np.abs(centres - 32) < 16).all(axis=1).mean() >= 0.95  # the cell of interest sits in the middle


@pytest.mark.slow
def test_the_app_blood_model_points_at_the_cell(real_data, tmp_workdirs, capsys):
    from helpers import app, config, explain, inference
    from helpers.app_models import train_app_models
    from helpers.data.registry import load_dataset

    # the chapter's ResNet alone (the floors were measured on it), 10 epochs, not the chapter's quick run
    # (minutes): enough for the maps to point, in about a minute
    (summary,) = train_app_models(["blood"], epochs=10, download=False, candidates={"blood": (None,)})
    assert summary["dataset"] == "pbc" and summary["source"] == "real"
    model, card = app.load_model(summary["checkpoint"])
    assert card.no_better_than_chance is False and card.image_stats["n"] > 0 and len(card.background) == 3
    test = load_dataset("pbc", split="test", size=card.input_size, profile=config.get_profile("quick"), verbose=False)
    x = inference.normalize(torch.from_numpy(np.array(test.images)).permute(0, 3, 1, 2), card.mean, card.std)
    plan = explain.explanation_plan(model, card.input_size)
    assert plan.side >= explain.MIN_MAP_SIDE  # the chapter's network at its size: the finest layer that points
    with torch.no_grad():
        predicted = model(x).argmax(1).tolist()
    layer = dict(model.named_modules())[plan.layer]
    maps = explain.grad_cam(model, x, target=predicted, target_layer=layer)
    scores = [pointing.heat_in_region(m, pointing.stained_cell_mask(im)) for m, im in zip(maps, test.images)]
    figures = pointing.pointing_summary(scores)
    with capsys.disabled():
        print(
            f"\npointing game, app blood model ({plan.describe()}, test accuracy "
            f"{summary['test']['accuracy']:.3f}, {figures['n']} real PBC test images): heat share in the cell "
            f"{figures['heat_share']:.3f} vs area share {figures['area_share']:.3f} (ratio {figures['ratio']:.2f}), "
            f"peak in the cell {figures['hit_rate']:.2f}"
        )
    assert figures["ratio"] >= FLOOR_RATIO, figures
    assert figures["hit_rate"] >= FLOOR_HITS, figures
