"""Tuberculosis chest X-rays in the Shenzhen and Montgomery County layout (Jaeger et al. 2014).

Both sets name each image after its label::

    CXR_png/CHNCXR_0001_0.png     Shenzhen: <set>_<4-digit number>_<0 normal | 1 tuberculosis>.png
    CXR_png/MCUCXR_0001_0.png     Montgomery County: the same rule

One image per person, so the number is the person. Thesis 000 trains its tuberculosis branch on a
compilation of these two, TBX11K and two Indian sets; none is on the build machine, so the chapter
trains the branch on :func:`write_tb_stand_in`'s generated images in this layout (drawn shapes,
not radiographs) and says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from .catalog import Catalog

__all__ = ["TB_CLASSES", "read_tb_cxr", "write_tb_stand_in"]

TB_CLASSES = ["normal", "tuberculosis"]
_NAME = re.compile(r"^(?P<set>[A-Z]+CXR)_(?P<num>\d{4})_(?P<label>[01])\.png$", re.IGNORECASE)


def read_tb_cxr(folder: str | Path) -> Catalog:
    """Catalog of a Shenzhen or Montgomery folder (``CXR_png/*.png``): binary labels from the names.

    Raises:
        FileNotFoundError: when ``CXR_png/`` holds no image named by the rule.
    """
    folder = Path(folder)
    files, labels, ids, skipped = [], [], [], []
    for path in sorted((folder / "CXR_png").glob("*.png")):
        m = _NAME.match(path.name)
        if m is None:
            skipped.append({"file": str(path), "reason": "name is not <SET>CXR_<4 digits>_<0|1>.png"})
            continue
        files.append(path)
        labels.append(int(m["label"]))
        ids.append(f"{m['set'].upper()}_{m['num']}")
    if not files:
        raise FileNotFoundError(f"no CHNCXR_/MCUCXR_ images under {folder / 'CXR_png'}")
    return Catalog(
        name="tb_cxr",
        task="binary",
        classes=list(TB_CLASSES),
        files=files,
        labels=np.asarray(labels, dtype=np.int64),
        ids=ids,
        patient_ids=np.asarray(ids),
        root=folder,
        channels=1,
        report={"skipped": skipped},
        meta={"citation": "jaeger2014two", "licence": "public (NLM); cite the paper"},
    )


def _film(rng: np.random.Generator, size: int, tb: bool) -> np.ndarray:
    """A drawn 'radiograph': a bright body, two dark lung fields, and for ``tb`` a bright upper-lobe patch."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.65 + 0.05 * rng.standard_normal((size, size))
    for cx in (0.32, 0.68):
        lung = ((xx - cx) / 0.16) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1
        img[lung] -= 0.35
    if tb:
        cx, cy = rng.choice([0.3, 0.7]) + rng.normal(0, 0.03), 0.32 + rng.normal(0, 0.03)
        img += 0.3 * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.05**2)))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_tb_stand_in(folder: str | Path, n: int = 80, size: int = 64, share_tb: float = 0.3, seed: int = 0) -> Path:
    """Write ``n`` generated images in the Shenzhen layout under ``folder`` (``CXR_png/CHNCXR_NNNN_L.png``).

    Returns:
        ``folder``.
    """
    folder = Path(folder)
    (folder / "CXR_png").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        tb = bool(rng.random() < share_tb)
        Image.fromarray(_film(rng, size, tb)).save(folder / "CXR_png" / f"CHNCXR_{i + 1:04d}_{int(tb)}.png")
    return folder
