"""The mammography chapter's data: mini-MIAS lesion crops and whole films, CBIS-DDSM labels and splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.data.mammography import parse_mias_info, read_cbis_ddsm, read_mias
from helpers.data.mias_tasks import (
    CROP_FACTOR,
    MIN_CROP_SIDE,
    crop_box,
    cut_crop,
    mias_lesions,
    read_mias_abnormal,
    read_mias_lesions,
)
from helpers.data.splits import assert_no_patient_overlap, split_indices
from helpers.data.synthetic import write_synthetic


def test_crop_is_centred_from_the_bottom_left_origin():
    """Info.txt's (x, y) counts y from the bottom: the lesion's pixel is at row 1024 - y, column x."""
    film = np.zeros((1024, 1024), dtype=np.uint8)
    x, y, r = 300, 700, 40
    film[1024 - y, x] = 255
    crop = cut_crop(film, 1024 - y, x, r)
    side = round(CROP_FACTOR * r)
    assert crop.shape == (side, side)
    assert np.argwhere(crop == 255).tolist() == [[side // 2, side // 2]]
    assert crop_box(10, 10, 2) == (10 - MIN_CROP_SIDE // 2, 10 - MIN_CROP_SIDE // 2, MIN_CROP_SIDE)
    with pytest.raises(ValueError, match="radius must be positive"):
        crop_box(10, 10, 0)
    with pytest.raises(ValueError, match="outside"):
        cut_crop(film, 1024, 5, 10)


def test_crop_at_the_edge_is_clipped_and_padded_black():
    film = np.full((100, 120), 200, dtype=np.uint8)
    crop = cut_crop(film, 5, 118, 40, factor=2.5)  # side 100: runs over the top and the right edge
    assert crop.shape == (100, 100)
    top, left, side = crop_box(5, 118, 40, factor=2.5)
    inside = crop[-top : -top + 100, : 120 - left]
    assert (inside == 200).all() and crop.sum() == inside.sum()
    assert (crop[:-top] == 0).all() and (crop[:, 120 - left :] == 0).all()


def _mias_without(real_data: Path, root: Path, removed: set[str]) -> Path:
    """A copy of the real mini-MIAS folder (Info.txt and links to the films) without ``removed`` films."""
    src, dst = real_data / "mias" / "all-mias", root / "mias" / "all-mias"
    dst.mkdir(parents=True)
    (dst / "Info.txt").write_bytes((src / "Info.txt").read_bytes())
    for film in src.glob("mdb*.pgm"):
        if film.stem not in removed:
            (dst / film.name).symlink_to(film)
    return root / "mias"


def test_real_info_several_lesions_note3_and_absent_films(real_data, tmp_path):
    base = real_data / "mias" / "all-mias"
    rows = parse_mias_info((base / "Info.txt").read_text(errors="replace"))
    listed = {r["ref"] for r in rows}
    # a reader's download has every film listed; a partial copy reports the missing ones
    assert listed <= {p.stem for p in base.glob("mdb*.pgm")}, "the shared mini-MIAS should be complete"
    lesion_films = sorted({r["ref"] for r in rows if r["severity"] != "normal" and r["radius"] is not None})
    removed = {"mdb003", lesion_films[0], lesion_films[-1]}
    mias = _mias_without(real_data, tmp_path / "root", removed)
    films = read_mias(mias)
    present = {p.stem for p in (mias / "all-mias").glob("mdb*.pgm")}
    absent = sorted(listed - present)
    assert absent == sorted(removed)
    assert len(films) == len(present)
    assert sorted(Path(s["file"]).stem for s in films.report["skipped"]) == absent

    cat = read_mias_lesions(mias, out=tmp_path / "crops")
    expected = [r for r in rows if r["ref"] in present and r["severity"] != "normal" and r["radius"] is not None]
    assert len(cat) == len(expected) and cat.task == "binary" and cat.classes == ["benign", "malignant"]
    assert cat.class_counts() == {s: sum(r["severity"] == s for r in expected) for s in ("benign", "malignant")}
    # several lesions on one film: one crop each, numbered in Info.txt order, one patient
    several = pd.Series([r["ref"] for r in expected]).value_counts()
    ref = several.index[0]
    assert several.iloc[0] >= 2
    mine = [i for i, k in enumerate(cat.ids) if k.startswith(ref + "#")]
    assert [cat.ids[i] for i in mine] == [f"{ref}#{k}" for k in range(several.iloc[0])]
    assert len({cat.patient_ids[i] for i in mine}) == 1
    for i in mine:
        a = cat.annotations[i]
        row = next(r for r in expected if r["ref"] == ref and (r["x"], r["row"]) == (a["col"], a["row"]))
        assert a["row"] == 1024 - row["y"] and a["radius"] == row["radius"]
        assert Image.open(cat.files[i]).size == (a["side"], a["side"])
    # *NOTE 3* rows of present films are skipped with the reason; absent films are reported
    note3 = [r["ref"] for r in rows if r["ref"] in present and r["severity"] != "normal" and r["x"] is None]
    reasons = {s["file"]: s["reason"] for s in cat.report["skipped"]}
    assert note3 and all(
        any(f.startswith(ref + "#") and "NOTE 3" in why for f, why in reasons.items()) for ref in note3
    )
    assert sum("absent" in why for why in reasons.values()) == len(absent)


def test_real_crop_matches_the_film(real_data, tmp_path):
    """A crop file holds the film's pixels around (1024 - y, x)."""
    cat = read_mias_lesions(real_data / "mias", out=tmp_path / "crops")
    a = cat.annotations[0]
    film = np.asarray(Image.open(a["file"]).convert("L"))
    crop = np.asarray(Image.open(cat.files[0]))
    np.testing.assert_array_equal(crop, cut_crop(film, a["row"], a["col"], a["radius"]))


def test_real_whole_film_task_and_patient_split(real_data):
    films = read_mias(real_data / "mias")
    cat = read_mias_abnormal(real_data / "mias")
    assert cat.classes == ["normal", "abnormal"] and len(cat) == len(films)
    np.testing.assert_array_equal(cat.labels, (films.labels > 0).astype(int))
    parts, rule = split_indices(cat, seed=42)
    assert "patient" in rule
    assert_no_patient_overlap({k: cat.patient_ids[v] for k, v in parts.items()})
    pairs = {p: {cat.ids[i][:6] for i in np.flatnonzero(cat.patient_ids == p)} for p in set(cat.patient_ids)}
    assert all(len(v) <= 2 for v in pairs.values()) and any(len(v) == 2 for v in pairs.values())


def test_generated_layout_crops_split_by_woman(tmp_path):
    root = write_synthetic("mias", tmp_path / "mias", films=12, size=1024)
    cat = read_mias_lesions(root, out=tmp_path / "crops")
    lesions, skipped = mias_lesions(read_mias(root))
    assert len(cat) == len(lesions) == 8 and not skipped  # 12 films: 4 normal, 4 benign, 4 malignant
    assert any("absent" in s["reason"] for s in cat.report["skipped"])
    # the generated lesion is a bright blob at its centre: the crop's centre is brighter than its rim
    for path in cat.files:
        crop = np.asarray(Image.open(path), dtype=float)
        c = crop.shape[0] // 2
        assert crop[c - 3 : c + 4, c - 3 : c + 4].mean() > np.concatenate([crop[0], crop[-1]]).mean()
    parts, _ = split_indices(cat, seed=0)
    assert_no_patient_overlap({k: cat.patient_ids[v] for k, v in parts.items()})
    assert sum(len(v) for v in parts.values()) == len(cat)
    again = read_mias_lesions(root, out=tmp_path / "crops")  # crops cut once, read back
    assert [p.stat().st_mtime_ns for p in again.files] == [p.stat().st_mtime_ns for p in cat.files]


def test_no_lesion_with_a_centre_is_a_clear_error(tmp_path):
    base = tmp_path / "all-mias"
    base.mkdir()
    (base / "Info.txt").write_text("mdb001 F NORM\nmdb002 G CALC M *NOTE 3*\n")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(base / "mdb001.pgm")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(base / "mdb002.pgm")
    with pytest.raises(FileNotFoundError, match="no mini-MIAS film .* lesion with a centre"):
        read_mias_lesions(tmp_path, out=tmp_path / "crops")


def test_cbis_benign_without_callback_merge_and_patient_split(tmp_path):
    root = write_synthetic("cbis_ddsm", tmp_path / "cbis", cases=30, size=32)
    cat = read_cbis_ddsm(root)
    tables = pd.concat([pd.read_csv(f, dtype=str) for f in sorted((root / "csv").glob("*_case_description_*"))])
    printed = tables["pathology"].str.upper().value_counts()
    assert printed["BENIGN_WITHOUT_CALLBACK"] > 0
    assert cat.class_counts() == {
        "benign": int(printed["BENIGN"] + printed["BENIGN_WITHOUT_CALLBACK"]),
        "malignant": int(printed["MALIGNANT"]),
    }
    parts, rule = split_indices(cat, seed=0)
    assert_no_patient_overlap({k: cat.patient_ids[v] for k, v in parts.items()})
    assert set(cat.official_split[parts["test"]]) == {"test"}, rule
    assert set(cat.official_split[np.concatenate([parts["train"], parts["valid"]])]) == {"trainval"}
    assert len(parts["valid"]) > 0
