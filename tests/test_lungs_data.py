"""The lung chapter's data rule (nih_64px, the NIH download, ChestMNIST, else the stand-in), ChestMNIST's
labels in NIH's order, its loading as the chapter trains on it, and the app's chest model choosing alike.

The ChestMNIST file here is written in MedMNIST's real layout (``{train,val,test}_images`` uint8
``(N, 64, 64)``, ``*_labels`` uint8 ``(N, 14)``) with random pixels."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import config, configs
from helpers.app_models import APP_MODELS, _task_run, choose_dataset
from helpers.data.chestxray import NIH_FINDINGS
from helpers.data.lungs import as_nih_findings, load_lung_splits, nih_columns, split_labels
from helpers.data.medmnist import MEDMNIST_INFO, medmnist_size
from helpers.data.specs import DATASETS
from helpers.data.synthetic import write_synthetic
from helpers.preprocessing import prepare_image

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"train": 80, "val": 40, "test": 40}


def write_chestmnist(folder: Path, side: int = 64, seed: int = 0) -> Path:
    """``chestmnist_<side>.npz`` in MedMNIST's layout, random pixels, about 15 % positives per finding."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in SIZES.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
        arrays[f"{split}_labels"] = (rng.random((n, 14)) < 0.15).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"chestmnist_{side}.npz" if side != 28 else "chestmnist.npz")
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture
def data_root(tmp_workdirs, monkeypatch) -> Path:
    """An empty ``$MEDVIT_DATA``, offline (no download is tried unless a test allows one)."""
    root = tmp_workdirs / "data"
    root.mkdir()
    monkeypatch.setenv("MEDVIT_DATA", str(root))
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    return root


@pytest.fixture
def chestmnist(data_root) -> Path:
    return write_chestmnist(data_root / "medmnist")


# ----------------------------------------------------------------------------- the rule


def test_chestmnist_when_neither_nih_folder_is_there(chestmnist):
    for profile in ("quick", "smoke"):
        name, source, why = configs.lungs_dataset(profile, download=False)
        assert (name, source) == ("chestmnist", "real") and "chestmnist_64.npz" in why
        assert "nih_64px, nih not present" in why
    assert configs.lungs_dataset("full", download=False)[0] == "nih", "full reads the NIH download, or says so"


def test_nih_64px_then_nih_come_first(chestmnist, data_root):
    write_synthetic("nih", data_root / "nih", patients=3, size=16)
    assert configs.lungs_dataset("quick", download=False)[:2] == ("nih", "real")
    write_synthetic("nih_64px", data_root / "nih_64px", patients=3, size=16)
    assert configs.lungs_dataset("quick", download=False)[:2] == ("nih_64px", "real")
    assert configs.lungs_dataset("full", download=False)[:2] == ("nih", "real")


def test_nothing_and_no_download_is_the_stand_in_said_so(data_root):
    name, source, why = configs.lungs_dataset("quick", download=False)
    assert (name, source) == ("nih_64px", "synthetic")
    assert "none of nih_64px, nih, chestmnist is present" in why and "$MEDVIT_DATA/nih_64px" in why
    name, source, why = configs.lungs_dataset("quick")  # downloads allowed, but MEDVIT_OFFLINE is set
    assert source == "synthetic" and "chestmnist: " in why and "MEDVIT_OFFLINE" in why


def test_chestmnist_is_downloaded_at_the_chapters_side(data_root, monkeypatch):
    asked = []

    def fake_download(dest: Path, size: int | None = None) -> Path:
        asked.append(size)
        return write_chestmnist(dest, side=medmnist_size(size))

    monkeypatch.delenv("MEDVIT_OFFLINE")
    monkeypatch.setitem(DATASETS, "chestmnist", DATASETS["chestmnist"].replace(downloader=fake_download))
    name, source, why = configs.lungs_dataset("quick")
    assert (name, source) == ("chestmnist", "download") and asked == [64] and "chestmnist_64.npz" in why
    assert configs.lungs_dataset("quick")[:2] == ("chestmnist", "download") and asked == [64], (
        "found, not fetched again"
    )


# ----------------------------------------------------------------------------- labels and loading


def test_chestmnist_labels_are_nih_findings_in_nih_order():
    import medmnist

    package = [medmnist.INFO["chestmnist"]["label"][str(i)] for i in range(14)]
    assert package == MEDMNIST_INFO["chestmnist"][1]
    assert nih_columns(package).tolist() == list(range(14)), "the same order: the mapping only renames"
    assert NIH_FINDINGS[package.index("pleural")] == "Pleural_Thickening"
    # a file with another order would be reordered, column by name
    shuffled = [package[i] for i in (13, *range(13))]
    assert [shuffled[j] for j in nih_columns(shuffled)] == package
    with pytest.raises(ValueError, match="lack the ChestX-ray14 findings"):
        nih_columns(package[:-1] + ["cough"])


def test_split_labels_of_chestmnist_say_the_patient_check_cannot_run(chestmnist):
    labels = split_labels("chestmnist", size=64)
    with np.load(chestmnist) as npz:
        expected = np.concatenate([npz[f"{s}_labels"] for s in SIZES]).astype(np.float32)
    assert labels.source == "real" and np.array_equal(labels.labels, expected)
    assert {k: len(v) for k, v in labels.split.items()} == {"train": 80, "valid": 40, "test": 40}
    assert labels.patient_ids is None and labels.patients() is None
    said = labels.check_patients()
    assert said.startswith("patient overlap NOT CHECKED") and "no patient ids" in said


def test_split_labels_of_a_folder_check_the_patients(data_root):
    write_synthetic("nih_64px", data_root / "nih_64px", patients=6, size=16)
    labels = split_labels("nih_64px", seed=0)
    assert labels.patients() > 0 and labels.check_patients() == "no patient is in two splits"
    leaked = labels.patient_ids.copy()
    leaked[labels.split["test"][0]] = leaked[labels.split["train"][0]]
    with pytest.raises(AssertionError, match="patient leakage"):
        dataclasses.replace(labels, patient_ids=leaked).check_patients()


def test_chestmnist_loads_equalised_in_three_channels(chestmnist):
    train, valid, test = load_lung_splits("chestmnist", None, 64, seed=0, verbose=False)
    assert [len(d) for d in (train, valid, test)] == [80, 40, 40]
    assert train.classes == NIH_FINDINGS and train.task == "multilabel" and train.meta["preprocess"] == "equalize"
    assert train.images.shape == (80, 64, 64, 3) and train.images.dtype == np.uint8
    assert (train.images[..., 0] == train.images[..., 2]).all()
    with np.load(chestmnist) as npz:
        raw, y = npz["train_images"], npz["train_labels"]
    assert np.array_equal(train.images[5], prepare_image(raw[5][..., None], 64, "equalize", 3))
    assert np.array_equal(train.labels, y.astype(np.float32))
    # the profile's cap applies as in the chapter (stratified, seeded)
    smoke = config.get_profile("smoke")
    capped = load_lung_splits("chestmnist", smoke, 32, seed=0, verbose=False)
    assert [len(d) for d in capped] == [smoke.max_train, smoke.max_eval, smoke.max_eval]
    assert capped[0].images.shape[1:] == (32, 32, 3)
    assert as_nih_findings(capped[0]) is capped[0], "already in NIH's order and names"


def test_quick_caps_data_larger_than_the_sample():
    quick = config.get_profile("quick")
    capped = configs.lungs_profile(quick, "chestmnist")
    assert (capped.max_train, capped.max_eval) == configs.LUNGS_QUICK_CAP and capped.name == "quick"
    assert configs.lungs_profile(quick, "nih") == capped
    assert configs.lungs_profile(quick, "nih_64px") is quick, "the 1,000-image sample is below the cap"
    for name in ("smoke", "full"):
        assert configs.lungs_profile(config.get_profile(name), "chestmnist") is config.get_profile(name)


# ----------------------------------------------------------------------------- the app's chest model


def test_the_apps_chest_model_chooses_as_the_chapter(chestmnist, data_root):
    assert APP_MODELS["chest"][0] == (*configs.LUNGS_DATASETS, "pneumoniamnist")
    for profile in ("quick", "smoke"):
        assert choose_dataset("chest", download=False, profile=profile) == configs.lungs_dataset(profile, False)
    quick = config.get_profile("quick")
    arch, data, cfg, prof = _task_run("chest", "chestmnist", quick, None, None)
    chapter = configs.lungs_experiment("cnn", quick, seed=0)
    assert arch == chapter.model and cfg == chapter.config.replace(bootstrap=0, name=f"app-chest-{chapter.config.name}")
    assert prof == configs.lungs_profile(quick, "chestmnist") and data[0].classes == NIH_FINDINGS
    assert data[0].images.shape[1:] == (64, 64, 3) and data[0].meta["preprocess"] == "equalize"
    write_synthetic("nih_64px", data_root / "nih_64px", patients=3, size=16)
    assert (
        choose_dataset("chest", download=False)[:2]
        == configs.lungs_dataset("quick", False)[:2]
        == (
            "nih_64px",
            "real",
        )
    )


def test_the_app_falls_back_to_pneumoniamnist_only_past_the_chapters_data(data_root):
    write_synthetic("pneumoniamnist", data_root / "medmnist", flag="pneumoniamnist", counts=(8, 4, 4))
    assert configs.lungs_dataset("quick", download=False)[1] == "synthetic"
    name, source, why = choose_dataset("chest", download=False)
    assert (name, source) == ("pneumoniamnist", "real") and "none of nih_64px, nih, chestmnist" in why
    write_chestmnist(data_root / "medmnist")
    assert choose_dataset("chest", download=False)[:2] == ("chestmnist", "real"), "ChestMNIST before PneumoniaMNIST"


# ----------------------------------------------------------------------------- the chapter on ChestMNIST


@pytest.mark.slow
def test_the_chapter_runs_on_chestmnist_and_claims_nothing_unmeasured(chestmnist, tmp_path):
    out = tmp_path / "lungs_out.ipynb"
    env = dict(os.environ, MEDVIT_PROGRESS="0", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "book" / "applications" / "lungs.ipynb"), str(out)]
    cmd += ["-p", "PROFILE", "smoke", "--cwd", str(ROOT / "book" / "applications"), "-k", "python3"]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    text = "".join(
        "".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])
    )
    assert "DATASET = 'chestmnist': found $MEDVIT_DATA/medmnist/chestmnist_64.npz" in text
    assert "patient overlap NOT CHECKED: chestmnist has no patient ids" in text
    assert "no patient is in two splits" not in text
    assert "of its 80 / 40 / 40 training / validation / test images used" in text
    assert "test images (no patient ids)" in text
    ledger = config.runs_dir() / "builds" / "interactive" / "claims.jsonl"
    made = [json.loads(line) for line in ledger.read_text().splitlines() if '"lungs"' in line]
    assert len(made) == 2  # the CNN's floor and the ImageNet Lite0's
    for claim in made:
        assert claim["status"] == "not checked" and "measured on nih_64px only, never on chestmnist" in claim["reason"]
