"""Synthetic stand-ins written in each dataset's original on-disk layout.

When a dataset is neither in ``$MEDVIT_DATA`` nor downloadable, the registry writes a small
fake copy of its folder (same file names, CSVs, list files and image formats) and reads it with
the *same* reader as the real data, so every code path runs. The images are simple shapes whose
size, brightness and texture depend on the class, so that a model can learn something, but they
are not medical images and no number measured on them means anything about medicine. The
registry prints that loudly and records ``source="synthetic"``.

The same generators build the generated layouts the tests use (including deliberately bad files).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .chestxray import NIH_FINDINGS
from .pbc import PBC_CLASSES

__all__ = ["SYNTHETIC_GENERATORS", "write_synthetic", "synthetic_root", "MARKER"]

MARKER = "SYNTHETIC_STAND_IN.json"
_VERSION = 1


def _blob(
    size: int, rng: np.random.Generator, k: int, n_classes: int, channels: int, centre=None, radius=None
) -> np.ndarray:
    """A noisy disc on a noisy background; class ``k`` sets its radius, brightness and stripe texture."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = (
        centre if centre is not None else (size / 2 + rng.normal(0, size / 12), size / 2 + rng.normal(0, size / 12))
    )
    r = radius if radius is not None else size * (0.15 + 0.25 * k / max(n_classes - 1, 1)) * rng.uniform(0.9, 1.1)
    inside = ((yy - cy) ** 2 + (xx - cx) ** 2) < r**2
    stripes = 0.5 + 0.5 * np.sin(xx * (0.2 + 0.15 * k))
    base = rng.normal(60, 12, (size, size))
    img = np.where(inside, 120 + 100 * k / max(n_classes - 1, 1) * stripes + rng.normal(0, 10, (size, size)), base)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if channels == 1:
        return img
    tint = np.array([1.0, 0.75 + 0.05 * (k % 3), 0.9 - 0.05 * (k % 4)])
    return np.clip(img[..., None] * tint[None, None, :] + np.array([40, 10, 40]), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- per dataset


def _pbc(root: Path, rng: np.random.Generator, per_class: int = 12, size: int = 96) -> None:
    prefixes = {
        "basophil": ["BA"],
        "eosinophil": ["EO"],
        "erythroblast": ["ERB"],
        "ig": ["MY", "MMY", "PMY"],
        "lymphocyte": ["LY"],
        "monocyte": ["MO"],
        "neutrophil": ["BNE", "SNE"],
        "platelet": ["PLATELET"],
    }
    base = root / "PBC_dataset_normal_DIB"
    for k, cls in enumerate(PBC_CLASSES):
        (base / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            prefix = prefixes[cls][i % len(prefixes[cls])]
            Image.fromarray(_blob(size, rng, k, len(PBC_CLASSES), 3)).save(
                base / cls / f"{prefix}_{100000 + i}.jpg", quality=92
            )
    (base / "neutrophil" / ".DS_000000.jpg").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))  # like the real zip


def _nih(root: Path, rng: np.random.Generator, patients: int = 30, size: int = 128) -> None:
    (root / "images_001" / "images").mkdir(parents=True, exist_ok=True)
    rows, trainval, test = [], [], []
    for p in range(1, patients + 1):
        for follow in range(int(rng.integers(1, 4))):
            name = f"{p:08d}_{follow:03d}.png"
            k = int(rng.integers(0, len(NIH_FINDINGS) + 4))
            findings = [] if k >= len(NIH_FINDINGS) else [NIH_FINDINGS[k]]
            if findings and rng.random() < 0.3:
                findings.append(NIH_FINDINGS[int(rng.integers(0, len(NIH_FINDINGS)))])
            findings = sorted(set(findings))
            kk = NIH_FINDINGS.index(findings[0]) if findings else 0
            img = (
                _blob(size, rng, kk, len(NIH_FINDINGS), 1)
                if findings
                else np.clip(rng.normal(70, 12, (size, size)), 0, 255).astype(np.uint8)
            )
            Image.fromarray(img).save(root / "images_001" / "images" / name)
            rows.append(f"{name},{'|'.join(findings) or 'No Finding'},{follow},{p}")
            (test if p % 5 == 0 else trainval).append(name)
    (root / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID\n" + "\n".join(rows) + "\n"
    )
    (root / "train_val_list.txt").write_text("\n".join(trainval) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")


def _covid(root: Path, rng: np.random.Generator, n: int = 16, size: int = 128) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = [
        "patientid,offset,sex,age,finding,survival,view,modality,date,location,filename,doi,url,license,"
        "clinical notes,other notes"
    ]
    for i in range(n):
        finding = "COVID-19" if i % 4 else "Streptococcus"
        name = f"synthetic-{i:03d}.jpeg"
        Image.fromarray(_blob(size, rng, 14 if finding == "COVID-19" else 6, 15, 1)).save(
            root / "images" / name, quality=90
        )
        lines.append(f"{1000 + i // 2},0,F,50,{finding},,PA,X-ray,,,{name},,,,,")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")


def _mias(root: Path, rng: np.random.Generator, films: int = 18, size: int = 1024) -> None:
    base = root / "all-mias"
    base.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(1, films + 1):
        ref = f"mdb{i:03d}"
        sev = ["normal", "benign", "malignant"][((i - 1) // 2) % 3]
        if sev == "normal":
            rows.append(f"{ref} F NORM")
            img = np.clip(rng.normal(70, 10, (size, size)), 0, 255).astype(np.uint8)
        else:
            x, y, r = int(rng.integers(300, 700)), int(rng.integers(300, 700)), int(rng.integers(30, 80))
            code = "CIRC" if sev == "benign" else "SPIC"
            rows.append(f"{ref} G {code} {sev[0].upper()} {x} {y} {r}")
            img = _blob(size, rng, 1 if sev == "benign" else 2, 3, 1, centre=(size - y, x), radius=r)
        Image.fromarray(img).save(base / f"{ref}.pgm")
    rows.append(f"mdb{films + 1:03d} D NORM")  # listed but absent, as in a partial copy
    header = "Synthetic stand-in for the mini-MIAS Info.txt\n\nREFNUM BG CLASS SEVERITY X Y RADIUS\n\n"
    (base / "Info.txt").write_text(header + "\n".join(rows) + "\n")


def _cbis(root: Path, rng: np.random.Generator, cases: int = 40, size: int = 96) -> None:
    (root / "csv").mkdir(parents=True, exist_ok=True)
    info = ["file_path,image_path,SeriesDescription,SeriesInstanceUID,PatientID"]
    header = (
        "patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,"
        "calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path"
    )
    tables: dict[str, list[str]] = {}
    pathologies = ["BENIGN", "MALIGNANT", "BENIGN_WITHOUT_CALLBACK"]
    for i in range(cases):
        kind = "mass" if i % 2 == 0 else "calc"
        split = "test" if (i // 2) % 5 == 0 else "train"  # a patient's cases share one split
        pid = f"P_{i // 2:05d}"
        patho = pathologies[i % 3]
        side, view = ("LEFT", "CC") if i % 4 < 2 else ("RIGHT", "MLO")
        prefix = (
            f"{'Mass' if kind == 'mass' else 'Calc'}-{'Training' if split == 'train' else 'Test'}_{pid}_{side}_{view}_1"
        )
        study, series, full_series = (
            f"1.3.6.1.4.1.9590.100.1.2.{i}1",
            f"1.3.6.1.4.1.9590.100.1.2.{i}2",
            f"1.3.6.1.4.1.9590.100.1.2.{i}3",
        )
        jpeg = root / "jpeg" / series
        jpeg.mkdir(parents=True, exist_ok=True)
        k = 1 if patho == "MALIGNANT" else 0
        Image.fromarray(_blob(size, rng, k, 2, 1)).save(jpeg / "1-1.jpg", quality=92)
        info.append(
            f"CBIS-DDSM/dicom/{series}/1-1.dcm,CBIS-DDSM/jpeg/{series}/1-1.jpg,cropped images,{series},{prefix}"
        )
        info.append(
            f"CBIS-DDSM/dicom/{full_series}/1-1.dcm,CBIS-DDSM/jpeg/{full_series}/1-1.jpg,"
            f"full mammogram images,{full_series},{prefix}"
        )
        row = (
            f"{pid},2,{side},{view},1,{kind if kind == 'mass' else 'calcification'},,,3,{patho},3,"
            f"{prefix}/{study}/{full_series}/000000.dcm,{prefix}/{study}/{series}/000000.dcm,{prefix}/{study}/x/000001.dcm"
        )
        tables.setdefault(f"{kind}_case_description_{split}_set.csv", []).append(row)
    for fname, rows in tables.items():
        (root / "csv" / fname).write_text(header + "\n" + "\n".join(rows) + "\n")
    (root / "csv" / "dicom_info.csv").write_text("\n".join(info) + "\n")


def _medmnist(
    root: Path, rng: np.random.Generator, name: str = "pneumoniamnist", size: int = 28, counts=(96, 32, 32)
) -> None:
    from .medmnist import medmnist_info

    task, classes, channels = medmnist_info(name)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        if task == "multilabel":
            labels = (rng.random((n, len(classes))) < 0.2).astype(np.uint8)
            ks = labels.argmax(1)
        else:
            ks = rng.integers(0, len(classes), n)
            labels = ks.reshape(n, 1).astype(np.uint8)
        imgs = np.stack([_blob(size, rng, int(k), len(classes), channels) for k in ks])
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = imgs, labels
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / f"{name}.npz", **arrays)


SYNTHETIC_GENERATORS: dict[str, Callable[..., None]] = {
    "pbc": _pbc,
    "nih": _nih,
    "nih_64px": _nih,  # the same layout; its reader takes the labels from the folder itself
    "covid": _covid,
    "mias": _mias,
    "cbis_ddsm": _cbis,
    "medmnist": _medmnist,
}


def synthetic_root() -> Path:
    """Where stand-ins are written: ``<cache_dir>/synthetic``."""
    from .. import config

    return config.cache_dir() / "synthetic"


def write_synthetic(name: str, root: str | Path | None = None, seed: int = 0, **kwargs) -> Path:
    """Write (once) the synthetic stand-in of ``name`` in its original layout; returns its folder.

    MedMNIST stand-ins are ``medmnist/<flag>.npz`` (pass ``flag=``). A folder already holding a
    stand-in of the same version and arguments is reused.
    """
    flag = kwargs.pop("flag", None)
    key = "medmnist" if flag else name
    if key not in SYNTHETIC_GENERATORS:
        raise KeyError(f"no synthetic stand-in for {name!r}; known: {sorted(SYNTHETIC_GENERATORS)}")
    folder = Path(root) if root is not None else synthetic_root() / key
    marker = folder / (f"{flag}.{MARKER}" if flag else MARKER)
    stamp = {"version": _VERSION, "name": flag or name, "seed": seed, "kwargs": {k: str(v) for k, v in kwargs.items()}}
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if flag:
        _medmnist(folder, rng, name=flag, **kwargs)
    else:
        SYNTHETIC_GENERATORS[key](folder, rng, **kwargs)
    marker.write_text(json.dumps(stamp))
    return folder
