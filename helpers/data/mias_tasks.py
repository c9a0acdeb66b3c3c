"""The two mini-MIAS tasks of the mammography chapter, as catalogs the registry reads like any other.

``mias_lesions`` (benign vs malignant)
    one square crop per annotated lesion, centred on its ``Info.txt`` centre (converted from the
    file's bottom-left origin: ``row = 1024 - y``, column ``x``), of side :data:`CROP_FACTOR` × the
    radius (at least :data:`MIN_CROP_SIDE` px), clipped at the film's edge and padded with black
    where it runs over. Films with several lesions give one crop each. It is mini-MIAS's analogue of
    CBIS-DDSM's cropped lesion images. Rows without coordinates (``*NOTE 3*``: calcifications spread
    over the breast) have no centre to crop and are skipped with that reason, as are films listed
    in ``Info.txt`` but absent from the folder. The crops are cut once into the cache folder
    (``<cache>/mias_lesions/<fingerprint>/``) and read back as PNG files.
``mias_abnormal`` (normal vs abnormal)
    the whole film, abnormal when any row gives it a benign or malignant finding: the harder task,
    since a lesion may cover a few hundred of the film's million pixels.

Both keep :func:`~helpers.data.mammography.read_mias`'s patient ids: films come in left/right pairs
of one woman (``mdb001``/``mdb002``), and the split keeps a woman's films — and so all the crops
cut from them — on one side, so that no test lesion has its other breast's film, or another crop of
the same film, in training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from .catalog import Catalog
from .mammography import MIAS_SIZE, read_mias

__all__ = [
    "CROP_FACTOR",
    "MIN_CROP_SIDE",
    "LESION_CLASSES",
    "ABNORMAL_CLASSES",
    "Lesion",
    "crop_box",
    "cut_crop",
    "mias_lesions",
    "read_mias_lesions",
    "read_mias_abnormal",
]

#: Side of a lesion crop in units of the annotated radius (the circle's diameter and a margin).
CROP_FACTOR = 2.4
#: The smallest crop side in pixels (tiny calcification clusters still get some context).
MIN_CROP_SIDE = 64
LESION_CLASSES = ["benign", "malignant"]
ABNORMAL_CLASSES = ["normal", "abnormal"]
_SPLIT_RULE = "patient-level: a woman's left and right films (and every crop cut from them) on one side"


@dataclass(frozen=True)
class Lesion:
    """One annotated lesion of a present film, with its centre in image rows and columns.

    Attributes:
        ref: the film (``mdb005``).
        index: the lesion's number within its film (0, 1, ...), in ``Info.txt`` order.
        row: centre row counted from the top (``1024 - y``).
        col: centre column (``x``).
        radius: the annotated radius in pixels.
        severity: ``"benign"`` or ``"malignant"``.
        code: the abnormality code (``CIRC``, ``CALC``, ...).
        patient: the woman's id (``mias-002``).
        file: the film's PGM file.
    """

    ref: str
    index: int
    row: int
    col: int
    radius: int
    severity: str
    code: str
    patient: str
    file: Path


def crop_box(
    row: int, col: int, radius: int, factor: float = CROP_FACTOR, min_side: int = MIN_CROP_SIDE
) -> tuple[int, int, int]:
    """``(top, left, side)`` of the square crop around a lesion; it may reach outside the film.

    Raises:
        ValueError: for a radius that is not positive.
    """
    if radius <= 0:
        raise ValueError(f"a lesion's radius must be positive, got {radius}")
    side = max(int(round(factor * radius)), int(min_side))
    return int(row) - side // 2, int(col) - side // 2, side


def cut_crop(
    image: np.ndarray, row: int, col: int, radius: int, factor: float = CROP_FACTOR, min_side: int = MIN_CROP_SIDE
) -> np.ndarray:
    """The square crop of :func:`crop_box` from ``image`` (``(H, W)`` or ``(H, W, C)``), black where
    it runs over the film's edge.

    Raises:
        ValueError: when the centre lies outside the image.
    """
    h, w = image.shape[:2]
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"lesion centre (row {row}, col {col}) lies outside the {h}x{w} image")
    top, left, side = crop_box(row, col, radius, factor, min_side)
    out = np.zeros((side, side, *image.shape[2:]), dtype=image.dtype)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + side, h), min(left + side, w)
    out[r0 - top : r1 - top, c0 - left : c1 - left] = image[r0:r1, c0:c1]
    return out


def mias_lesions(films: Catalog) -> tuple[list[Lesion], list[dict[str, str]]]:
    """The lesions with a centre in the present films of a :func:`read_mias` catalog, and the rows skipped.

    A skipped row is ``{"file", "reason"}``: ``*NOTE 3*`` rows (no coordinates), and lesions whose
    severity is neither benign nor malignant. Films listed but absent are already in
    ``films.report["skipped"]``.
    """
    lesions, skipped = [], []
    for file, ref, patient, ann in zip(films.files, films.ids, films.patient_ids, films.annotations or []):
        for k, lesion in enumerate(ann["lesions"]):
            if lesion["row"] is None or lesion["radius"] is None:
                reason = (
                    f"{lesion['code']} {lesion['severity']} has no centre or radius (*NOTE 3*: spread over the film)"
                )
                skipped.append({"file": f"{ref}#{k}", "reason": reason})
            elif lesion["severity"] not in LESION_CLASSES:
                skipped.append({"file": f"{ref}#{k}", "reason": f"severity {lesion['severity']!r}"})
            else:
                lesions.append(
                    Lesion(
                        ref,
                        k,
                        lesion["row"],
                        lesion["x"],
                        lesion["radius"],
                        lesion["severity"],
                        lesion["code"],
                        str(patient),
                        Path(file),
                    )  # fmt: skip
                )
    return lesions, skipped


def _crop_folder(lesions: list[Lesion], factor: float, min_side: int) -> Path:
    """The cache folder of this set of crops, named by what they are cut from and how."""
    key = json.dumps(
        [
            factor,
            min_side,
            [[str(les.file), les.file.stat().st_mtime_ns, les.row, les.col, les.radius] for les in lesions],
        ]
    )
    return config.cache_dir() / "mias_lesions" / hashlib.sha256(key.encode()).hexdigest()[:16]


def _write_crops(lesions: list[Lesion], folder: Path, factor: float, min_side: int) -> list[Path]:
    """Cut each lesion's crop into ``folder`` (once; an existing folder is read as it is)."""
    from PIL import Image

    from ..imageio import read_image

    paths = [folder / f"{les.ref}_{les.index}.png" for les in lesions]
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    films: dict[Path, np.ndarray] = {}
    for les, path in zip(lesions, paths):
        if les.file not in films:
            films = {les.file: read_image(les.file, channels=1)[..., 0]}  # one film in memory at a time
        tmp = path.with_suffix(".tmp.png")
        Image.fromarray(cut_crop(films[les.file], les.row, les.col, les.radius, factor, min_side)).save(tmp)
        tmp.replace(path)
    return paths


def read_mias_lesions(
    folder: str | Path, factor: float = CROP_FACTOR, min_side: int = MIN_CROP_SIDE, out: str | Path | None = None
) -> Catalog:
    """Catalog of mini-MIAS lesion crops, benign (0) vs malignant (1), one per lesion with a centre.

    Args:
        folder: a mini-MIAS folder (``Info.txt`` + PGMs, in ``folder`` or ``folder/all-mias``).
        factor: crop side in radii.
        min_side: the smallest crop side in pixels.
        out: where to cut the crops (default: a folder in the cache named by the films and the rule).

    Raises:
        FileNotFoundError: without ``Info.txt``, or when no present film has a lesion with a centre.
    """
    films = read_mias(folder)
    lesions, skipped = mias_lesions(films)
    if not lesions:
        raise FileNotFoundError(f"no mini-MIAS film under {folder} has a benign or malignant lesion with a centre")
    target = Path(out) if out is not None else _crop_folder(lesions, factor, min_side)
    files = _write_crops(lesions, target, factor, min_side)
    rule = f"square of side max({factor} x radius, {min_side} px) centred on (1024 - y, x), black beyond the film"
    return Catalog(
        name="mias_lesions",
        task="binary",
        classes=list(LESION_CLASSES),
        files=files,
        labels=np.asarray([LESION_CLASSES.index(les.severity) for les in lesions], dtype=np.int64),
        ids=[f"{les.ref}#{les.index}" for les in lesions],
        patient_ids=np.asarray([les.patient for les in lesions]),
        annotations=[
            {**asdict(les), "file": str(les.file), "side": crop_box(les.row, les.col, les.radius, factor, min_side)[2]}
            for les in lesions
        ],  # fmt: skip
        root=films.root,
        channels=1,
        report={"skipped": list(films.report["skipped"]) + skipped, "films": len(films), "crops": str(target)},
        meta={**films.meta, "crop_rule": rule, "split_rule": _SPLIT_RULE, "film_size": MIAS_SIZE},
    )


def read_mias_abnormal(folder: str | Path) -> Catalog:
    """Catalog of whole mini-MIAS films, normal (0) vs abnormal (1: a benign or malignant finding).

    Raises:
        FileNotFoundError: without ``Info.txt``.
    """
    films = read_mias(folder)
    labels = (films.labels > 0).astype(np.int64)
    meta: dict[str, Any] = {**films.meta, "split_rule": _SPLIT_RULE, "label_rule": "abnormal = benign or malignant"}
    return Catalog(
        name="mias_abnormal",
        task="binary",
        classes=list(ABNORMAL_CLASSES),
        files=list(films.files),
        labels=labels,
        ids=list(films.ids),
        patient_ids=films.patient_ids,
        annotations=films.annotations,
        root=films.root,
        channels=1,
        report=films.report,
        meta=meta,
    )
