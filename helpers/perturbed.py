"""A data root unlike the shared one: real files, other subsets, for building the book on "any root".

The book must build on any valid copy of the datasets, not only on the shared samples it was written
against. :func:`perturbed_root` lays out, from a source root in the publishers' layouts (default
``../shared/data``), a root that differs the way other valid copies do:

* **CMU motion capture without subject 02** (subject 01 only): a chapter must not assume a subject;
* **PBC without the stray macOS file** (``neutrophil/.DS_*.jpg``), as a cleaned or re-mirrored copy;
* **the chest root without ``nih_64px``**: only the 1024 px ChestX-ray14 sample and its lists;
* **a mini-MIAS subset**: ``Info.txt`` complete, the films of the first :data:`MIAS_FILMS` only, as an
  interrupted download leaves it;
* **a MedMNIST folder missing one file** (:data:`MEDMNIST_DROPPED`).

Every file is a symbolic link to the source (no image is copied); the other datasets (COVID-19, ...)
are linked as they are. ``python -m helpers site perturbed-root DST [SRC]`` makes one, after which
``make book MEDVIT_DATA=DST`` builds the book on it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from . import config

__all__ = ["PerturbedRoot", "perturbed_root", "MIAS_FILMS", "MEDMNIST_DROPPED", "CMU_SUBJECTS", "MARKER"]

#: The mini-MIAS films kept: ``mdb001`` ... ``mdb160`` (80 women's left/right pairs of 161).
MIAS_FILMS = 160
#: The MedMNIST file left out.
MEDMNIST_DROPPED = "pneumoniamnist.npz"
#: The CMU subjects kept.
CMU_SUBJECTS = ("01",)
#: The file that marks a folder as a perturbed root (only such a folder is ever replaced).
MARKER = "PERTURBED_ROOT.txt"


@dataclass(frozen=True)
class PerturbedRoot:
    """A perturbed root: where it is, what it was made from, and how it differs, one line per change."""

    root: Path
    source: Path
    changes: tuple[str, ...]

    def describe(self) -> str:
        """The root, its source and its changes, as lines to print."""
        lines = [f"a perturbed data root at {self.root} (files linked from {self.source}):"]
        return "\n".join(lines + [f"  - {c}" for c in self.changes])


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src.resolve(), target_is_directory=src.is_dir())


def _link_files(src: Path, dst: Path, keep) -> int:
    """Link every file under ``src`` that ``keep(path)`` accepts to the same place under ``dst``."""
    n = 0
    for path in sorted(src.rglob("*")):
        if path.is_file() and keep(path):
            _link(path, dst / path.relative_to(src))
            n += 1
    return n


def _cmu(src: Path, dst: Path) -> str:
    subjects = src / "subjects"
    kept = [s for s in CMU_SUBJECTS if (subjects / s).is_dir()]
    for s in kept:
        _link(subjects / s, dst / "subjects" / s)
    dropped = sorted(p.name for p in subjects.iterdir() if p.is_dir() and p.name not in kept)
    return f"cmu_mocap: subjects {', '.join(kept) or 'none'} only ({', '.join(dropped) or 'nothing'} left out)"


def _pbc(src: Path, dst: Path) -> str:
    stray = sorted(p.relative_to(src) for p in src.rglob(".*") if p.is_file())
    n = _link_files(src, dst, lambda p: not p.name.startswith("."))
    left = ", ".join(map(str, stray)) or "none was there"
    return f"pbc: {n} images linked; hidden stray files left out ({left})"


def _mias(src: Path, dst: Path) -> str:
    def keep(p: Path) -> bool:
        stem = p.stem.lower()
        return not (stem.startswith("mdb") and stem[3:].isdigit() and int(stem[3:]) > MIAS_FILMS)

    n = _link_files(src, dst, keep)
    return f"mias: Info.txt complete, films mdb001-mdb{MIAS_FILMS:03d} only ({n} files linked)"


def _medmnist(src: Path, dst: Path) -> str:
    n = _link_files(src, dst, lambda p: p.name != MEDMNIST_DROPPED)
    return f"medmnist: {MEDMNIST_DROPPED} left out ({n} other files linked)"


_CHANGED = {"cmu_mocap": _cmu, "pbc": _pbc, "mias": _mias, "medmnist": _medmnist}
_LEFT_OUT = ("nih_64px",)


def _clear(root: Path) -> None:
    """Remove a previous perturbed root at ``root``; refuse any other non-empty folder."""
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise FileExistsError(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise FileExistsError(f"{root} is not empty and not a perturbed root (no {MARKER}): choose another folder")
        shutil.rmtree(root)


def perturbed_root(dst: str | Path, src: str | Path | None = None) -> PerturbedRoot:
    """Lay out at ``dst`` a perturbed copy of the data root ``src`` (default ``../shared/data``), as links.

    A previous perturbed root at ``dst`` is replaced. Returns what was made and how it differs.

    Raises:
        FileNotFoundError: when ``src`` is not a folder.
        FileExistsError: when ``dst`` is a non-empty folder that is not a perturbed root.
    """
    src = Path(src) if src is not None else config.repo_root().parent / "shared" / "data"
    if not src.is_dir():
        raise FileNotFoundError(f"no data root at {src}: name the root to vary (helpers site perturbed-root DST SRC)")
    src, dst = src.resolve(), Path(dst).absolute()
    _clear(dst)
    dst.mkdir(parents=True, exist_ok=True)
    changes = []
    for entry in sorted(src.iterdir()):
        if entry.name in _CHANGED and entry.is_dir():
            changes.append(_CHANGED[entry.name](entry, dst / entry.name))
        elif entry.name in _LEFT_OUT:
            changes.append(f"{entry.name}: left out")
        elif entry.is_dir() and not entry.name.startswith("."):  # its README describes the source, not this root
            _link(entry, dst / entry.name)
    made = PerturbedRoot(dst, src, tuple(changes))
    (dst / MARKER).write_text(made.describe() + "\n", encoding="utf-8")
    return made
