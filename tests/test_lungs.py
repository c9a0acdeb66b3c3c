"""The lung pathologies chapter's helpers: the 64-px ChestX-ray14 reader, thesis 000's preprocessing,
its configurations and tuberculosis branch, and the per-finding evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.data.chestxray import NIH_FINDINGS, read_chexnet_lists, read_nih_64px
from helpers.data.splits import assert_no_patient_overlap
from helpers.data.synthetic import write_synthetic
from helpers.preprocessing import chest_steps, prepare_file

# ----------------------------------------------------------------------------- data


def test_nih_64px_real_labels_and_split_from_the_lists(real_data):
    cat = read_nih_64px(real_data / "nih_64px")
    files = sorted((real_data / "nih_64px" / "images").glob("*.png"))
    assert len(cat) == len(files) and cat.labels.shape == (len(files), 14)
    lists = read_chexnet_lists(real_data / "nih").set_index("image")
    for name, row, split in zip(cat.ids[::37], cat.labels[::37], cat.official_split[::37]):
        assert np.array_equal(row, lists.loc[name, NIH_FINDINGS].to_numpy(dtype=np.float32))
        assert split == lists.loc[name, "split"]
    assert cat.report["split_from"].startswith("CheXNet") and cat.name == "nih_64px"
    assert_no_patient_overlap({s: cat.patient_ids[cat.official_split == s] for s in ("train", "valid", "test")})
    # the Data_Entry sample's rows agree with the lists where both have the image
    assert (cat.labels.sum(1) == 0).any() and (cat.labels.sum(0) > 0).all()


def test_nih_64px_without_labels_says_where_it_looked(tmp_path):
    images = tmp_path / "nih_64px" / "images"
    images.mkdir(parents=True)
    src = write_synthetic("nih", tmp_path / "gen", patients=3, size=16)
    png = next(src.glob("images_001/images/*.png"))
    (images / png.name).write_bytes(png.read_bytes())
    with pytest.raises(FileNotFoundError, match="labels/\\*_list.txt"):
        read_nih_64px(tmp_path / "nih_64px")


def test_nih_64px_stand_in_layout_reads(tmp_path):
    root = write_synthetic("nih_64px", tmp_path / "nih_64px", patients=6, size=16)
    cat = read_nih_64px(root)
    assert len(cat) > 0 and cat.labels.shape[1] == 14 and cat.report["labels_folder"] == str(root)


# ----------------------------------------------------------------------------- preprocessing


def test_chest_steps_equalise_three_equal_channels_and_flip(real_data):
    path = sorted((real_data / "nih" / "images").glob("*.png"))[0]
    steps = chest_steps(path, 64)
    grey, eq, x, flipped = (steps[k] for k in ("decoded (grey)", "equalised", "model input", "flipped"))
    assert grey.ndim == 2 and eq.shape == grey.shape and x.shape == (64, 64, 3) and x.dtype == np.uint8
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()

    # equalised: the cumulative histogram is close to a straight line (it is not before)
    def off_line(img: np.ndarray) -> float:
        counts = np.bincount(img.ravel(), minlength=256)
        levels = np.flatnonzero(counts)
        return float(np.abs(np.cumsum(counts)[levels] / img.size - (levels + 1) / 256).max())

    assert off_line(eq) < 0.1 and off_line(eq) < off_line(grey) / 2
    assert np.array_equal(flipped, x[:, ::-1])
    # the same rule as the training cache and the app
    same, _ = prepare_file(path, 64, 3, "equalize")
    assert np.array_equal(same, x)
