"""NIH ChestX-ray14 (Wang et al. 2017) and the ieee8023 COVID-19 collection (Cohen et al. 2020).

ChestX-ray14 layout read here (the NIH download, or a part of it)::

    nih/Data_Entry_2017.csv          Image Index, Finding Labels (joined by "|"), Follow-up #, Patient ID, ...
                                     (or Data_Entry_2017_v2020.csv, or the 4-column Data_Entry_2017_sample.csv)
    nih/train_val_list.txt           official split, names only (optional)
    nih/test_list.txt
    nih/labels/{train,val,test}_list.txt   CheXNet lists: name + 14 zeros/ones (optional)
    nih/images/*.png                 one folder, or the download's images_001/images/*.png ... images_012/

Labels: 14 findings, multi-hot, in the CheXNet column order; ``No Finding`` is the all-zero row.
Split: the official lists when present (``train_val`` is then split by patient into train/valid),
otherwise the CheXNet lists, otherwise a patient-level split. Patient ids come from the CSV
(``Patient ID``) or, failing that, from the file name ``<patient>_<follow-up>.png``.

COVID-19 (thesis 000's 15th class) comes from the ieee8023 ``covid/metadata.csv``: frontal X-rays
(PA, AP, AP Supine, AP Erect) whose ``finding`` mentions COVID-19 get the ``COVID-19`` label; other
pneumonias (bacterial, viral, fungal) get ``Pneumonia``; ``No Finding`` is all zeros; any other
finding is skipped and reported. These images have no official split and are split by patient.

``nih_64px`` (:func:`read_nih_64px`) is a third party's 64-px copy of part of ChestX-ray14 with the
original file names (``nih_64px/images/*.png``) and no labels of its own: its labels and split come
from the label files of a full ``nih/`` folder beside it (read as above), or from its own folder when
it holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .catalog import Catalog

__all__ = [
    "NIH_FINDINGS",
    "COVID_LABEL",
    "parse_finding_labels",
    "find_nih_images",
    "read_chexnet_lists",
    "read_nih",
    "read_nih_64px",
    "read_covid",
    "merge_catalogs",
]

#: The 14 findings in the column order of the CheXNet lists.
NIH_FINDINGS = [
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
]
COVID_LABEL = "COVID-19"
_FRONTAL = {"PA", "AP", "AP SUPINE", "AP ERECT"}
_PNEUMONIA_WORDS = (
    "pneumonia",
    "streptococcus",
    "sars",
    "pneumocystis",
    "klebsiella",
    "legionella",
    "e.coli",
    "chlamydophila",
    "mycoplasma",
    "influenza",
    "varicella",
    "mers",
    "staphylococcus",
    "aspergillosis",
    "nocardia",
    "lipoid",
    "bacterial",
    "viral",
    "fungal",
)


def parse_finding_labels(text: str, classes: list[str] = NIH_FINDINGS) -> np.ndarray:
    """``"Atelectasis|Effusion"`` → multi-hot ``float32`` over ``classes``; ``"No Finding"`` → zeros.

    Raises:
        ValueError: for a label that is not one of ``classes``.
    """
    row = np.zeros(len(classes), dtype=np.float32)
    for part in str(text).split("|"):
        part = part.strip()
        if not part or part == "No Finding":
            continue
        if part not in classes:
            raise ValueError(f"unknown finding {part!r} (known: {', '.join(classes)}, No Finding)")
        row[classes.index(part)] = 1.0
    return row


def find_nih_images(folder: Path) -> dict[str, Path]:
    """File name → path for every PNG in ``images/`` or the ``images_0NN[/images]/`` folders."""
    found: dict[str, Path] = {}
    patterns = ["images/*.png", "images_[0-9][0-9][0-9]/images/*.png", "images_[0-9][0-9][0-9]/*.png"]
    for pattern in patterns:
        for p in folder.glob(pattern):
            found.setdefault(p.name, p)
    return found


def read_chexnet_lists(folder: str | Path) -> Any:
    """The CheXNet lists ``labels/{train,val,test}_list.txt`` as one DataFrame (all rows, no images needed).

    Columns: ``image``, ``split`` (train/valid/test), ``patient`` and the 14 findings (0/1).

    Raises:
        FileNotFoundError: when the lists are absent.
    """
    import pandas as pd

    folder = Path(folder)
    frames = []
    for fname, split in (("train_list.txt", "train"), ("val_list.txt", "valid"), ("test_list.txt", "test")):
        path = folder / "labels" / fname
        if not path.exists():
            raise FileNotFoundError(f"no CheXNet list at {path}")
        df = pd.read_csv(path, sep=r"\s+", header=None, names=["image", *NIH_FINDINGS], dtype={"image": str})
        df.insert(1, "split", split)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.insert(2, "patient", out["image"].str.split("_").str[0])
    return out


def _read_entry_csv(folder: Path):
    import pandas as pd

    for name in ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv", "Data_Entry_2017_sample.csv"):
        path = folder / name
        if path.exists():
            df = pd.read_csv(path, dtype={"Image Index": str, "Patient ID": str})
            return df, path
    return None, None


def _read_name_list(path: Path) -> set[str]:
    return {line.split()[0] for line in path.read_text().splitlines() if line.strip()}


@dataclass
class _NihLabels:
    """What the label source says per image name: findings, patient, annotations, and what it rejected."""

    source: str
    label_of: dict[str, np.ndarray] = field(default_factory=dict)
    patient_of: dict[str, str] = field(default_factory=dict)
    ann_of: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)


def _nih_labels(folder: Path, chexnet: Any) -> _NihLabels:
    """Labels from ``Data_Entry_2017.csv`` (or a variant), else from the CheXNet lists; images the CSV
    does not list (a sample CSV) take the CheXNet lists' labels when those are there.

    Raises:
        FileNotFoundError: when neither is there.
    """
    df, csv_path = _read_entry_csv(folder)
    if df is not None:
        out = _NihLabels(csv_path.name)
        if chexnet is not None:
            out.source = f"{csv_path.name}, else labels/*_list.txt (CheXNet)"
            out.label_of.update(zip(chexnet.index, chexnet[NIH_FINDINGS].to_numpy(dtype=np.float32)))
        for _, row in df.iterrows():
            name = row["Image Index"]
            try:
                out.label_of[name] = parse_finding_labels(row["Finding Labels"])
            except ValueError as exc:
                out.skipped.append({"file": name, "reason": str(exc)})
                continue
            pid = str(row["Patient ID"])
            out.patient_of[name] = str(int(pid)) if pid.isdigit() else pid
            out.ann_of[name] = {"follow_up": int(row["Follow-up #"]) if "Follow-up #" in row else None}
        return out
    if chexnet is not None:
        out = _NihLabels("labels/*_list.txt (CheXNet)")
        out.label_of.update(zip(chexnet.index, chexnet[NIH_FINDINGS].to_numpy(dtype=np.float32)))
        return out
    raise FileNotFoundError(f"no labels for ChestX-ray14 under {folder}: need Data_Entry_2017.csv or labels/*_list.txt")


def _nih_splits(folder: Path, chexnet: Any) -> tuple[dict[str, str], str]:
    """``(split per image name, where it comes from)``: the official lists, else the CheXNet lists, else none."""
    if (folder / "train_val_list.txt").exists() and (folder / "test_list.txt").exists():
        split_of = {n: "trainval" for n in _read_name_list(folder / "train_val_list.txt")}
        split_of.update({n: "test" for n in _read_name_list(folder / "test_list.txt")})
        return split_of, "official train_val_list.txt / test_list.txt"
    if chexnet is not None:
        return chexnet["split"].to_dict(), "CheXNet labels/{train,val,test}_list.txt"
    return {}, "none (patient-level split)"


def read_nih(folder: str | Path, labels_folder: str | Path | None = None, name: str = "nih") -> Catalog:
    """Catalog of a ChestX-ray14 folder (see the module docstring for the layout and rules).

    Args:
        folder: where the images are (``images/`` or ``images_0NN/images/``).
        labels_folder: where ``Data_Entry_2017*.csv``, the split lists and ``labels/`` are
            (default: ``folder``).
        name: the catalog's name.

    Raises:
        FileNotFoundError: when there are no images or no labels.
    """
    folder = Path(folder)
    lfolder = Path(labels_folder) if labels_folder is not None else folder
    images = find_nih_images(folder)
    if not images:
        raise FileNotFoundError(f"no ChestX-ray14 PNGs under {folder} (images/ or images_0NN/images/)")
    has_lists = (lfolder / "labels" / "train_list.txt").exists()
    chexnet = read_chexnet_lists(lfolder).set_index("image") if has_lists else None
    found = _nih_labels(lfolder, chexnet)
    split_of, split_source = _nih_splits(lfolder, chexnet)
    skipped = found.skipped
    names = [n for n in sorted(images) if n in found.label_of]
    skipped += [
        {"file": str(images[n]), "reason": f"image has no row in {found.source}"}
        for n in sorted(images)
        if n not in found.label_of
    ]
    splits = [split_of.get(n) for n in names]
    if split_of and any(s is None for s in splits):
        unlisted = sum(s is None for s in splits)
        reason = f"not in the split lists ({split_source}); split by patient instead"
        skipped.append({"file": f"{unlisted} images", "reason": reason})
    return Catalog(
        name=name,
        task="multilabel",
        classes=list(NIH_FINDINGS),
        files=[images[n] for n in names],
        labels=np.asarray([found.label_of[n] for n in names], dtype=np.float32).reshape(len(names), len(NIH_FINDINGS)),
        ids=names,
        patient_ids=np.asarray([found.patient_of.get(n) or str(int(n.split("_")[0])) for n in names]),
        official_split=np.asarray(splits, dtype=object) if split_of else None,
        annotations=[found.ann_of.get(n, {}) for n in names],
        root=folder,
        channels=1,
        report={
            "skipped": skipped,
            "listed_without_image": len(set(found.label_of) - set(images)),
            "labels_from": found.source,
            "split_from": split_source,
        },
        meta={
            "citation": "wang2017chestx",
            "licence": "public (NIH Clinical Center); cite the paper",
            "split_rule": split_source,
        },
    )


def _has_nih_labels(folder: Path) -> bool:
    return (folder / "labels" / "train_list.txt").exists() or _read_entry_csv(folder)[0] is not None


def read_nih_64px(folder: str | Path) -> Catalog:
    """Catalog of ``nih_64px/``: 64-px ChestX-ray14 PNGs under their original names, labelled and split
    by the label files in the folder itself or, failing that, in the ``nih/`` folder beside it.

    Raises:
        FileNotFoundError: when there are no images, or no label files in either place (the message
            names both places).
    """
    folder = Path(folder)
    sibling = folder.parent / "nih"
    labels_folder = folder if _has_nih_labels(folder) else sibling
    if not _has_nih_labels(labels_folder):
        raise FileNotFoundError(
            f"no ChestX-ray14 labels for {folder}: put the CheXNet lists (labels/*_list.txt) or "
            f"Data_Entry_2017.csv in {folder} or in {sibling}"
        )
    cat = read_nih(folder, labels_folder=labels_folder, name="nih_64px")
    cat.report["labels_folder"] = str(labels_folder)
    cat.meta["resolution"] = "64 px, downscaled by a third party from the 1024-px originals"
    return cat


def _covid_class(finding: str) -> str | None:
    """``"COVID-19"``, ``"Pneumonia"``, ``"No Finding"`` or ``None`` (not one of the 15 classes)."""
    f = str(finding).strip()
    low = f.lower()
    if "covid" in low:
        return COVID_LABEL
    if low in ("no finding", "normal"):
        return "No Finding"
    if any(w in low for w in _PNEUMONIA_WORDS):
        return "Pneumonia"
    return None


def read_covid(folder: str | Path, classes: list[str] | None = None) -> Catalog:
    """Catalog of the ieee8023 collection: frontal X-rays labelled over ``classes`` (14 findings + COVID-19).

    Raises:
        FileNotFoundError: without ``metadata.csv``.
    """
    import pandas as pd

    folder = Path(folder)
    classes = classes or [*NIH_FINDINGS, COVID_LABEL]
    meta_path = folder / "metadata.csv"
    if not meta_path.exists():
        raise FileNotFoundError(f"no metadata.csv under {folder}")
    df = pd.read_csv(meta_path, dtype=str).fillna("")
    df.columns = [c.strip() for c in df.columns]
    image_dir = folder / "images"
    files, labels, ids, patients, ann, skipped = [], [], [], [], [], []
    for _, row in df.iterrows():
        name = row["filename"]
        if row.get("modality", "X-ray") not in ("X-ray", ""):
            continue  # CT scans are not part of this task
        view = row.get("view", "").strip().upper()
        if view and view not in _FRONTAL:
            skipped.append({"file": name, "reason": f"view {view} is not frontal"})
            continue
        cls = _covid_class(row["finding"])
        if cls is None:
            skipped.append({"file": name, "reason": f"finding {row['finding']!r} is not among the classes"})
            continue
        path = image_dir / name
        if not path.exists():
            skipped.append({"file": str(path), "reason": "listed in metadata.csv but absent"})
            continue
        vec = np.zeros(len(classes), dtype=np.float32)
        if cls != "No Finding":
            vec[classes.index(cls)] = 1.0
        files.append(path)
        labels.append(vec)
        ids.append(name)
        patients.append(f"covid-{row['patientid'] if 'patientid' in row else row.get('Patientid', '')}")
        ann.append({"finding": row["finding"], "view": view, "licence": row.get("license", "")})
    return Catalog(
        name="covid",
        task="multilabel",
        classes=list(classes),
        files=files,
        labels=np.asarray(labels, dtype=np.float32).reshape(len(files), len(classes)),
        ids=ids,
        patient_ids=np.asarray(patients),
        official_split=None,
        annotations=ann,
        root=folder,
        channels=1,
        report={"skipped": skipped},
        meta={"citation": "cohen2020covid", "licence": "per image (metadata.csv 'license' column)"},
    )


def merge_catalogs(first: Catalog, second: Catalog, name: str) -> Catalog:
    """Rows of both catalogs over the union of their classes (multi-label), for NIH + COVID-19."""
    classes = list(first.classes) + [c for c in second.classes if c not in first.classes]

    def widen(cat: Catalog) -> np.ndarray:
        out = np.zeros((len(cat), len(classes)), dtype=np.float32)
        for j, c in enumerate(cat.classes):
            out[:, classes.index(c)] = cat.labels[:, j]
        return out

    def splits(cat: Catalog) -> np.ndarray:
        return cat.official_split if cat.official_split is not None else np.full(len(cat), None, dtype=object)

    return Catalog(
        name=name,
        task="multilabel",
        classes=classes,
        files=list(first.files) + list(second.files),
        labels=np.concatenate([widen(first), widen(second)]),
        ids=list(first.ids) + list(second.ids),
        patient_ids=np.concatenate([first.patient_ids, second.patient_ids]).astype(str),
        official_split=np.concatenate([splits(first), splits(second)]),
        annotations=(first.annotations or [{}] * len(first)) + (second.annotations or [{}] * len(second)),
        root=first.root,
        channels=1,
        report={
            "skipped": first.report["skipped"] + second.report["skipped"],
            first.name: first.report,
            second.name: second.report,
        },
        meta={**second.meta, **first.meta, "citation": f"{first.meta.get('citation')}, {second.meta.get('citation')}"},
    )
