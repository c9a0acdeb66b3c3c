"""PBC normal peripheral blood cells (Acevedo et al. 2020): one folder per class.

Layout (the Mendeley Data zip ``PBC_dataset_normal_DIB.zip``)::

    pbc/PBC_dataset_normal_DIB/<class>/<PREFIX>_<number>.jpg

The eight folders are the classes. The file-name prefix gives a finer sub-type: immature
granulocytes (``ig``) are metamyelocytes ``MMY``, myelocytes ``MY`` or promyelocytes ``PMY`` and
neutrophils are band ``BNE`` or segmented ``SNE``, which with the six other prefixes makes 11
sub-types (a few files carry only the generic ``IG`` or ``NEUTROPHIL`` prefix: their sub-type is
"unspecified"). Hidden files (the zip's stray macOS ``.DS_169665.jpg``) and files that are not
images by their suffix are skipped and reported. The dataset has no patient ids and no official
split (thesis 004 holds out 20 % at random), so splits are stratified by class.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from .base import ImageDataset
from .catalog import IMAGE_SUFFIXES, Catalog

__all__ = ["PBC_CLASSES", "PBC_SUBTYPES", "PBC_COUNTS", "find_pbc_root", "read_pbc", "pbc_subtype", "by_subtype"]

PBC_CLASSES = ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"]

#: File-name prefix -> (class, sub-type).
PBC_SUBTYPES: dict[str, tuple[str, str]] = {
    "BA": ("basophil", "basophil"),
    "EO": ("eosinophil", "eosinophil"),
    "ERB": ("erythroblast", "erythroblast"),
    "MMY": ("ig", "metamyelocyte"),
    "MY": ("ig", "myelocyte"),
    "PMY": ("ig", "promyelocyte"),
    "IG": ("ig", "ig (unspecified)"),
    "LY": ("lymphocyte", "lymphocyte"),
    "MO": ("monocyte", "monocyte"),
    "BNE": ("neutrophil", "band neutrophil"),
    "SNE": ("neutrophil", "segmented neutrophil"),
    "NEUTROPHIL": ("neutrophil", "neutrophil (unspecified)"),
    "PLATELET": ("platelet", "platelet"),
}

#: Images per class in the full dataset (Acevedo et al. 2020, Table 1).
PBC_COUNTS = {
    "basophil": 1218,
    "eosinophil": 3117,
    "erythroblast": 1551,
    "ig": 2895,
    "lymphocyte": 1214,
    "monocyte": 1420,
    "neutrophil": 3329,
    "platelet": 2348,
}

_PREFIX = re.compile(r"^([A-Za-z]+)_")


def pbc_subtype(filename: str) -> str:
    """The sub-type a PBC file name gives (``"MY_123.jpg"`` → ``"myelocyte"``), ``"unknown"`` otherwise."""
    m = _PREFIX.match(Path(filename).name)
    return PBC_SUBTYPES.get(m.group(1).upper(), ("", "unknown"))[1] if m else "unknown"


def by_subtype(ds: ImageDataset, subtypes: list[str] | None = None) -> ImageDataset:
    """The same PBC images labelled by their file-name sub-type (thesis 004's finer task).

    ``subtypes`` fixes the class list (pass the same list for every split); by default it is the
    sorted sub-types present in ``ds``.

    Raises:
        ValueError: when ``ds`` carries no per-image sub-type annotations (not PBC), or an image's
            sub-type is not in ``subtypes``.
    """
    if not ds.annotations or any("subtype" not in a for a in ds.annotations):
        raise ValueError(f"{ds.name!r} has no per-image sub-types: only PBC file names carry them")
    names = list(subtypes) if subtypes is not None else sorted({a["subtype"] for a in ds.annotations})
    missing = sorted({a["subtype"] for a in ds.annotations} - set(names))
    if missing:
        raise ValueError(f"sub-types {missing} are not in the class list {names}")
    labels = np.array([names.index(a["subtype"]) for a in ds.annotations], dtype=np.int64)
    return dataclasses.replace(ds, name=f"{ds.name}_subtypes", task="multiclass", classes=names, labels=labels)


def find_pbc_root(folder: Path) -> Path | None:
    """The folder that holds the class folders: ``folder/PBC_dataset_normal_DIB`` or ``folder`` itself."""
    for cand in (folder / "PBC_dataset_normal_DIB", folder):
        if cand.is_dir() and sum((cand / c).is_dir() for c in PBC_CLASSES) >= 2:
            return cand
    return None


def read_pbc(folder: str | Path) -> Catalog:
    """Catalog of a PBC folder (see the module docstring for the layout and the skip rules).

    Raises:
        FileNotFoundError: when no class folder is found.
    """
    folder = Path(folder)
    root = find_pbc_root(folder)
    if root is None:
        raise FileNotFoundError(f"no PBC class folders ({', '.join(PBC_CLASSES)}) under {folder}")
    files, labels, ids, ann, skipped = [], [], [], [], []
    missing = [c for c in PBC_CLASSES if not (root / c).is_dir()]
    for k, cls in enumerate(PBC_CLASSES):
        if cls in missing:
            continue
        for path in sorted((root / cls).iterdir()):
            if not path.is_file():
                continue
            if path.name.startswith("."):
                skipped.append({"file": str(path), "reason": "hidden file (not part of the dataset)"})
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append({"file": str(path), "reason": f"not an image suffix ({path.suffix or 'none'})"})
                continue
            files.append(path)
            labels.append(k)
            ids.append(path.name)
            ann.append({"subtype": pbc_subtype(path.name)})
    if not files:
        raise FileNotFoundError(f"the PBC class folders under {root} hold no images")
    return Catalog(
        name="pbc",
        task="multiclass",
        classes=list(PBC_CLASSES),
        files=files,
        labels=np.asarray(labels, dtype=np.int64),
        ids=ids,
        annotations=ann,
        root=root,
        channels=3,
        report={"skipped": skipped, "missing_classes": missing},
        meta={
            "split_rule": "stratified by class (no patient ids, no official split)",
            "citation": "acevedo2020dataset",
            "licence": "CC BY 4.0",
        },
    )
