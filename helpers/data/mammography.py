"""Mammograms: CBIS-DDSM (Lee et al. 2017, Kaggle JPEG layout) and mini-MIAS (Suckling et al. 1994).

**CBIS-DDSM**, Kaggle "CBIS-DDSM Breast Cancer Image Dataset" layout::

    cbis_ddsm/csv/mass_case_description_{train,test}_set.csv
    cbis_ddsm/csv/calc_case_description_{train,test}_set.csv
    cbis_ddsm/csv/dicom_info.csv        image_path, SeriesDescription, SeriesInstanceUID, PatientID, ...
    cbis_ddsm/jpeg/<SeriesInstanceUID>/1-NNN.jpg

A case row's ``cropped image file path`` (``Mass-Training_P_00001_LEFT_CC_1/<study>/<series>/000001.dcm``)
names the series; ``dicom_info.csv`` maps a series with ``SeriesDescription == "cropped images"`` to
its JPEG. One image per abnormality (the cropped lesion). Labels: ``pathology`` with
``BENIGN_WITHOUT_CALLBACK`` merged into ``BENIGN`` (benign vs malignant), or, with
``label="abnormality"``, mass vs calcification. The official train/test split (the CSV file names)
is kept; patients are ``patient_id``.

**mini-MIAS**, ``mias/all-mias/Info.txt`` + ``mdbNNN.pgm`` (1024 × 1024): one row per film and
abnormality ``REFNUM BG CLASS [SEVERITY X Y RADIUS]``. Labels per film: normal / benign /
malignant (the most severe of its rows); every row's lesion is kept in the annotations with its
centre converted from the file's bottom-left origin to image rows (``row = 1024 - y``) and its
abnormality class. Films listed but absent are reported and skipped. Films come in left/right
pairs of one woman (``mdb001``/``mdb002``), which is the patient id used for splitting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .catalog import Catalog

__all__ = [
    "CBIS_CLASSES",
    "MIAS_CLASSES",
    "MIAS_ABNORMALITIES",
    "read_cbis_ddsm",
    "parse_mias_info",
    "read_mias",
]

CBIS_CLASSES = {"pathology": ["benign", "malignant"], "abnormality": ["calcification", "mass"]}
MIAS_CLASSES = ["normal", "benign", "malignant"]
MIAS_ABNORMALITIES = {
    "CALC": "calcification",
    "CIRC": "circumscribed mass",
    "SPIC": "spiculated mass",
    "MISC": "ill-defined mass",
    "ARCH": "architectural distortion",
    "ASYM": "asymmetry",
    "NORM": "normal",
}
MIAS_SIZE = 1024


# ----------------------------------------------------------------------------- CBIS-DDSM


def _series_of(dcm_path: str) -> str:
    parts = str(dcm_path).strip().replace("\\", "/").split("/")
    return parts[2] if len(parts) >= 3 else ""


def _cbis_jpegs(folder: Path) -> dict[str, Path]:
    """Series UID → JPEG of every cropped lesion image ``csv/dicom_info.csv`` lists.

    Raises:
        FileNotFoundError: without ``csv/dicom_info.csv``.
    """
    import pandas as pd

    info_path = folder / "csv" / "dicom_info.csv"
    if not info_path.exists():
        raise FileNotFoundError(f"no csv/dicom_info.csv under {folder} (Kaggle CBIS-DDSM layout)")
    info = pd.read_csv(info_path, dtype=str).fillna("")
    cropped = info[info["SeriesDescription"].str.strip().str.lower() == "cropped images"]
    jpeg_of: dict[str, Path] = {}
    for _, row in cropped.iterrows():
        rel = row["image_path"].replace("\\", "/")
        rel = rel.split("jpeg/", 1)[1] if "jpeg/" in rel else rel
        jpeg_of[row["SeriesInstanceUID"].strip()] = folder / "jpeg" / rel
    return jpeg_of


def _cbis_case(row: Any, kind: str, jpeg_of: dict[str, Path], label: str) -> tuple[dict[str, Any] | None, str, str]:
    """One case-description row: ``(entry, "", "")`` or ``(None, file, why it is skipped)``.

    An entry holds the image ``path``, its label index ``y``, ``id``, ``patient`` and ``annotation``.
    """
    series = _series_of(row["cropped image file path"])
    path = jpeg_of.get(series)
    case = f"{row['patient_id']}_{row['left or right breast']}_{row['image view']}_{row['abnormality id']}"
    if path is None:
        return None, case, f"series {series or '?'} has no cropped image in dicom_info.csv"
    if not path.exists():
        return None, str(path), "listed in dicom_info.csv but absent"
    pathology = row["pathology"].strip().upper()
    pathology = "BENIGN" if pathology.startswith("BENIGN") else pathology
    if label == "pathology" and pathology not in ("BENIGN", "MALIGNANT"):
        return None, str(path), f"pathology {row['pathology']!r}"
    annotation = {
        "abnormality": kind,
        "pathology": pathology.lower(),
        "assessment": row.get("assessment", ""),
        "subtlety": row.get("subtlety", ""),
        "view": row["image view"],
        "side": row["left or right breast"],
    }
    y = CBIS_CLASSES[label].index(pathology.lower() if label == "pathology" else kind)
    entry = {
        "path": path,
        "y": y,
        "id": f"{kind}:{case}",
        "patient": row["patient_id"].strip(),
        "annotation": annotation,
    }
    return entry, "", ""


def read_cbis_ddsm(folder: str | Path, label: str = "pathology") -> Catalog:
    """Catalog of the cropped lesion images of a CBIS-DDSM Kaggle folder.

    Raises:
        FileNotFoundError: without ``csv/dicom_info.csv`` or any case-description CSV.
    """
    import pandas as pd

    if label not in CBIS_CLASSES:
        raise ValueError(f"label must be one of {sorted(CBIS_CLASSES)}, got {label!r}")
    folder = Path(folder)
    jpeg_of = _cbis_jpegs(folder)
    cases = sorted((folder / "csv").glob("*_case_description_*_set.csv"))
    if not cases:
        raise FileNotFoundError(f"no csv/*_case_description_*_set.csv under {folder}")
    entries, splits, skipped = [], [], []
    for csv in cases:
        kind = "mass" if csv.name.startswith("mass") else "calcification"
        df = pd.read_csv(csv, dtype=str).fillna("")
        df.columns = [c.strip() for c in df.columns]
        for _, row in df.iterrows():
            entry, file, reason = _cbis_case(row, kind, jpeg_of, label)
            if entry is None:
                skipped.append({"file": file, "reason": reason})
                continue
            entries.append(entry)
            splits.append("test" if "_test_" in csv.name else "trainval")
    if not entries:
        raise FileNotFoundError(f"no CBIS-DDSM cropped images found under {folder / 'jpeg'}")
    return Catalog(
        name="cbis_ddsm",
        task="binary",
        classes=list(CBIS_CLASSES[label]),
        files=[e["path"] for e in entries],
        labels=np.asarray([e["y"] for e in entries], dtype=np.int64),
        ids=[e["id"] for e in entries],
        patient_ids=np.asarray([e["patient"] for e in entries]),
        official_split=np.asarray(splits, dtype=object),
        annotations=[e["annotation"] for e in entries],
        root=folder,
        channels=1,
        report={"skipped": skipped},
        meta={
            "citation": "lee2017curated",
            "licence": "CC BY 3.0 (TCIA)",
            "label": label,
            "split_rule": "official train/test CSVs; valid carved from train by patient",
        },
    )


# ----------------------------------------------------------------------------- mini-MIAS

_MIAS_ROW = re.compile(r"^(mdb\d{3})\s+([FGD])\s+([A-Z]{4})(?:\s+([BM]))?(?:\s+(\d+)\s+(\d+)\s+(\d+))?")


def parse_mias_info(text: str) -> list[dict[str, Any]]:
    """Rows of mini-MIAS ``Info.txt``: ``{ref, tissue, abnormality, severity, x, y, row, radius}``.

    ``x``/``y`` are the file's coordinates (origin bottom-left); ``row = 1024 - y`` is the image row
    counted from the top. Missing coordinates (``*NOTE 3*``, widely spread calcifications) are ``None``.
    """
    rows = []
    for line in text.splitlines():
        m = _MIAS_ROW.match(line.strip())
        if not m:
            continue
        ref, tissue, cls, sev, x, y, r = m.groups()
        rows.append(
            {
                "ref": ref,
                "tissue": {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}[tissue],
                "abnormality": MIAS_ABNORMALITIES.get(cls, cls),
                "code": cls,
                "severity": {"B": "benign", "M": "malignant", None: "normal"}[sev],
                "x": None if x is None else int(x),
                "y": None if y is None else int(y),
                "row": None if y is None else MIAS_SIZE - int(y),
                "radius": None if r is None else int(r),
            }
        )
    return rows


def read_mias(folder: str | Path) -> Catalog:
    """Catalog of mini-MIAS (``Info.txt`` + PGMs in ``folder/all-mias`` or ``folder``).

    Raises:
        FileNotFoundError: without ``Info.txt``.
    """
    folder = Path(folder)
    base = folder / "all-mias" if (folder / "all-mias" / "Info.txt").exists() else folder
    info = base / "Info.txt"
    if not info.exists():
        raise FileNotFoundError(f"no Info.txt under {folder} or {folder / 'all-mias'}")
    rows = parse_mias_info(info.read_text(errors="replace"))
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_ref.setdefault(r["ref"], []).append(r)
    rank = {"normal": 0, "benign": 1, "malignant": 2}
    files, labels, ids, patients, ann, skipped = [], [], [], [], [], []
    for ref in sorted(by_ref):
        path = base / f"{ref}.pgm"
        if not path.exists():
            skipped.append({"file": str(path), "reason": "listed in Info.txt but absent"})
            continue
        entries = by_ref[ref]
        worst = max(entries, key=lambda e: rank[e["severity"]])["severity"]
        lesions = [
            {k: e[k] for k in ("abnormality", "code", "severity", "x", "y", "row", "radius")}
            for e in entries
            if e["code"] != "NORM"
        ]
        files.append(path)
        labels.append(MIAS_CLASSES.index(worst))
        ids.append(ref)
        patients.append(f"mias-{(int(ref[3:]) - 1) // 2:03d}")
        ann.append({"tissue": entries[0]["tissue"], "lesions": lesions})
    return Catalog(
        name="mias",
        task="multiclass",
        classes=list(MIAS_CLASSES),
        files=files,
        labels=np.asarray(labels, dtype=np.int64),
        ids=ids,
        patient_ids=np.asarray(patients),
        annotations=ann,
        root=base,
        channels=1,
        report={"skipped": skipped, "listed": len(by_ref), "rows": len(rows)},
        meta={
            "citation": "suckling1994mias",
            "licence": "research use only (Licence.txt)",
            "split_rule": "patient-level (left/right film pairs)",
        },
    )
