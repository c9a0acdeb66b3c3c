"""Layout readers on the shared real samples and on generated copies of the layouts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from helpers.data.chestxray import (
    NIH_FINDINGS,
    merge_catalogs,
    parse_finding_labels,
    read_chexnet_lists,
    read_covid,
    read_nih,
)
from helpers.data.mammography import parse_mias_info, read_cbis_ddsm, read_mias
from helpers.data.medmnist import medmnist_info, read_medmnist_npz
from helpers.data.pbc import PBC_CLASSES, pbc_subtype, read_pbc
from helpers.data.synthetic import write_synthetic

# ----------------------------------------------------------------------------- PBC


def test_pbc_real_sample(real_data):
    cat = read_pbc(real_data / "pbc")
    assert len(cat) == 400 and cat.classes == PBC_CLASSES
    assert set(cat.class_counts().values()) == {50}
    skipped = cat.report["skipped"]
    assert [s["file"].rsplit("/", 1)[-1] for s in skipped] == [".DS_169665.jpg"]
    subtypes = Counter(a["subtype"] for a in cat.annotations)
    assert subtypes["myelocyte"] == 21 and subtypes["metamyelocyte"] == 14 and subtypes["promyelocyte"] == 10
    assert subtypes["band neutrophil"] == 28 and subtypes["segmented neutrophil"] == 21
    named = {s for s in subtypes if "unspecified" not in s}
    assert len(named) == 11
    assert cat.patient_ids is None and cat.official_split is None


def test_pbc_subtype_names():
    assert pbc_subtype("MMY_1.jpg") == "metamyelocyte"
    assert pbc_subtype("SNE_77.jpg") == "segmented neutrophil"
    assert pbc_subtype("weird.jpg") == "unknown"


def test_pbc_generated_layout_with_stray_files(tmp_path):
    root = write_synthetic("pbc", tmp_path / "pbc", per_class=3, size=32)
    (root / "PBC_dataset_normal_DIB" / "basophil" / "notes.txt").write_text("not an image")
    cat = read_pbc(root)
    assert len(cat) == 24
    reasons = sorted(s["reason"] for s in cat.report["skipped"])
    assert any("hidden" in r for r in reasons) and any("suffix" in r for r in reasons)
    with pytest.raises(FileNotFoundError, match="PBC class folders"):
        read_pbc(tmp_path / "nothing")


# ----------------------------------------------------------------------------- ChestX-ray14 + COVID


def test_finding_labels():
    row = parse_finding_labels("Atelectasis|Effusion|Infiltration")
    assert row.dtype == np.float32 and row.sum() == 3 and row[NIH_FINDINGS.index("Effusion")] == 1
    assert parse_finding_labels("No Finding").sum() == 0
    with pytest.raises(ValueError, match="unknown finding"):
        parse_finding_labels("Atelectasis|Broken Heart")


def test_nih_real_sample(real_data):
    import pandas as pd

    cat = read_nih(real_data / "nih")
    assert len(cat) == 40 and cat.task == "multilabel" and cat.labels.shape == (40, 14)
    csv = pd.read_csv(real_data / "nih" / "Data_Entry_2017_sample.csv").set_index("Image Index")
    for name, row in zip(cat.ids, cat.labels):
        assert np.array_equal(row, parse_finding_labels(csv.loc[name, "Finding Labels"]))
    assert (cat.labels.sum(0) > 0).all(), "the sample covers all 14 findings"
    assert (cat.labels.sum(1) == 0).any(), "and No Finding"
    assert cat.report["split_from"].startswith("CheXNet")
    # patient ids from the CSV agree with the file-name prefix
    assert all(str(int(i.split("_")[0])) == p for i, p in zip(cat.ids, cat.patient_ids))


def test_chexnet_lists_all_images(real_data):
    df = read_chexnet_lists(real_data / "nih")
    assert len(df) == 112_120 and df["image"].is_unique
    assert df["patient"].nunique() == 30_805
    assert df.groupby("split").size().to_dict() == {"train": 78_468, "valid": 11_219, "test": 22_433}
    # CheXNet's lists are split by patient
    sides = df.groupby("patient")["split"].nunique()
    assert (sides == 1).all()


def test_covid_real_sample_and_merge(real_data):
    cov = read_covid(real_data / "covid")
    assert len(cov) == 20 and cov.classes[-1] == "COVID-19"
    assert cov.labels[:, -1].sum() == 19 and cov.labels[:, NIH_FINDINGS.index("Pneumonia")].sum() == 1
    merged = merge_catalogs(read_nih(real_data / "nih"), cov, "nih")
    assert merged.labels.shape == (60, 15) and merged.labels[:40, -1].sum() == 0
    assert list(merged.official_split[40:]) == [None] * 20


def test_nih_generated_layout_official_lists(tmp_path):
    root = write_synthetic("nih", tmp_path / "nih", patients=12, size=32)
    cat = read_nih(root)
    assert all("images_001" in str(f) for f in cat.files)
    assert set(cat.official_split) == {"trainval", "test"}
    assert cat.report["split_from"].startswith("official")
    (root / "images_001" / "images" / "99999999_000.png").write_bytes(b"")  # an image with no CSV row
    cat2 = read_nih(root)
    assert len(cat2) == len(cat) and any("no row" in s["reason"] for s in cat2.report["skipped"])


# ----------------------------------------------------------------------------- mammography


def test_mias_info_parsing_and_origin(real_data):
    rows = parse_mias_info((real_data / "mias" / "all-mias" / "Info.txt").read_text())
    assert len({r["ref"] for r in rows}) == 322 and len(rows) == 330
    codes = Counter(r["code"] for r in {r["ref"]: r for r in rows}.values())
    assert codes["NORM"] == 207
    first = next(r for r in rows if r["ref"] == "mdb001")
    assert (first["x"], first["y"], first["row"], first["radius"]) == (535, 425, 1024 - 425, 197)
    note3 = next(r for r in rows if r["ref"] == "mdb216")
    assert note3["severity"] == "malignant" and note3["x"] is None and note3["row"] is None


def test_mias_real_sample(real_data):
    folder = real_data / "mias" / "all-mias"
    cat = read_mias(real_data / "mias")
    # counted from what Info.txt lists and the folder holds, not a fixed number (the sample has grown
    # once, from 24 to 162 films); a film with several rows takes its most severe one
    severity: dict[str, set[str]] = {}
    for r in parse_mias_info((folder / "Info.txt").read_text()):
        severity.setdefault(r["ref"], set()).add(r["severity"])
    present = {ref: sev for ref, sev in severity.items() if (folder / f"{ref}.pgm").exists()}
    worst = [next(c for c in ("malignant", "benign", "normal") if c in sev) for sev in present.values()]
    expected = {c: worst.count(c) for c in ("normal", "benign", "malignant") if c in worst}
    assert len(cat) == len(present) >= 24 and cat.class_counts() == expected
    assert len(cat.report["skipped"]) == len(severity) - len(present)
    assert all("absent" in s["reason"] for s in cat.report["skipped"])
    lesions = dict(zip(cat.ids, (a["lesions"] for a in cat.annotations)))
    assert len(lesions["mdb226"]) == 3, "an image with several lesions keeps them all"
    assert lesions["mdb004"] == []
    # left/right films of one woman share a patient id
    pid = dict(zip(cat.ids, cat.patient_ids))
    assert pid["mdb107"] == pid["mdb108"] and pid["mdb022"] != pid["mdb023"]


def test_mias_generated_layout(tmp_path):
    root = write_synthetic("mias", tmp_path / "mias", films=6, size=64)
    cat = read_mias(root)
    assert len(cat) == 6 and len(cat.report["skipped"]) == 1


def test_cbis_generated_layout(tmp_path):
    root = write_synthetic("cbis_ddsm", tmp_path / "cbis", cases=20, size=32)
    cat = read_cbis_ddsm(root)
    assert cat.task == "binary" and cat.classes == ["benign", "malignant"] and len(cat) == 20
    patho = [a["pathology"] for a in cat.annotations]
    assert set(patho) == {"benign", "malignant"}, "BENIGN_WITHOUT_CALLBACK merged into benign"
    assert set(cat.official_split) == {"trainval", "test"}
    assert all(f.parent.parent.name == "jpeg" and f.exists() for f in cat.files)
    kinds = read_cbis_ddsm(root, label="abnormality")
    assert kinds.class_counts() == {"calcification": 10, "mass": 10}
    # a case whose series is missing from dicom_info.csv is reported, not fatal
    info = root / "csv" / "dicom_info.csv"
    lines = info.read_text().splitlines()
    info.write_text("\n".join(lines[:1] + lines[3:]) + "\n")
    cat2 = read_cbis_ddsm(root)
    assert len(cat2) == 19 and any("no cropped image" in s["reason"] for s in cat2.report["skipped"])


# ----------------------------------------------------------------------------- MedMNIST


def test_medmnist_real_both_label_shapes(real_data):
    p = read_medmnist_npz(real_data / "medmnist" / "pneumoniamnist.npz", "pneumoniamnist", "train")
    b = read_medmnist_npz(real_data / "medmnist" / "breastmnist.npz", "breastmnist", "test")
    assert p.images.shape == (4708, 28, 28, 1) and p.labels.shape == (4708,) and p.labels.dtype == np.int64
    assert b.images.shape == (156, 28, 28, 1) and b.labels.shape == (156,)
    assert len(read_medmnist_npz(real_data / "medmnist" / "breastmnist.npz", "breastmnist", "valid")) == 78


def test_medmnist_generated_multilabel(tmp_path):
    folder = write_synthetic("chestmnist", tmp_path, flag="chestmnist", counts=(10, 4, 4))
    ds = read_medmnist_npz(folder / "chestmnist.npz", "chestmnist", "valid", source="synthetic")
    assert ds.task == "multilabel" and ds.labels.shape == (4, 14) and ds.labels.dtype == np.float32
    assert medmnist_info("pathmnist")[2] == 3  # flags beyond the built-in four come from the medmnist package
