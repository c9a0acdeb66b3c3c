"""Profiles, paths, device choice and seeding: the settings every chapter shares.

A *profile* sets how big a run is. The same notebook runs at three sizes:

``smoke``
    CI and ``nbval``: a few dozen images, tiny random-init models, one epoch.
``quick``
    ``make book`` on a laptop CPU: real data at low resolution, small random-init models,
    results that mean something in minutes.
``full``
    Colab or any GPU: full data at the theses' resolution with pretrained models.

A chapter's ``PROFILE`` parameter (set by papermill with ``-p PROFILE smoke``) picks one; when it
is ``None`` the ``MEDVIT_PROFILE`` environment variable decides, and when that is unset too the
profile is ``quick``.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Profile",
    "PROFILES",
    "DEFAULT_PROFILE",
    "get_profile",
    "profile_table",
    "repo_root",
    "data_root",
    "cache_dir",
    "runs_dir",
    "shown_path",
    "progress_shown",
    "get_device",
    "seed_everything",
]

DEFAULT_PROFILE = "quick"


@dataclass(frozen=True)
class Profile:
    """How big a run is. Chapters read these fields instead of hard-coding sizes.

    Attributes:
        name: ``smoke``, ``quick`` or ``full``.
        image_size: side of the square images the models see, in pixels.
        max_train: at most this many training images (``None``: all of them).
        max_eval: at most this many validation and test images each (``None``: all).
        epochs: default number of training epochs.
        batch_size: images per batch.
        cnn: timm name of the default CNN.
        vit: timm name of the default Vision Transformer.
        pretrained: whether to start from ImageNet weights (needs internet the first time).
        num_workers: DataLoader worker processes.
        description: one line for tables.
    """

    name: str
    image_size: int
    max_train: int | None
    max_eval: int | None
    epochs: int
    batch_size: int
    cnn: str
    vit: str
    pretrained: bool
    num_workers: int = 0
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Profile:
        """A copy with some fields changed (``profile.replace(epochs=3)``)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The profile as a plain dict, for run records."""
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        image_size=32,
        max_train=64,
        max_eval=32,
        epochs=1,
        batch_size=16,
        cnn="resnet18",
        vit="vit_tiny_patch16_224",
        pretrained=False,
        description="CI and nbval: a few dozen images, tiny random-init models, seconds per chapter",
    ),
    "quick": Profile(
        name="quick",
        image_size=64,
        max_train=4000,
        max_eval=1000,
        epochs=8,
        batch_size=64,
        cnn="resnet18",
        vit="vit_tiny_patch16_224",
        pretrained=False,
        description="a laptop CPU: real data at low resolution, small random-init models, minutes per chapter",
    ),
    "full": Profile(
        name="full",
        image_size=224,
        max_train=None,
        max_eval=None,
        epochs=16,
        batch_size=64,
        cnn="resnet34",
        vit="vit_base_patch16_224",
        pretrained=True,
        num_workers=2,
        description="a GPU (Colab): full data at the theses' resolution, pretrained models",
    ),
}


def get_profile(name: str | None = None, **overrides: Any) -> Profile:
    """Return the profile called ``name``, or the one ``MEDVIT_PROFILE`` names, or ``quick``.

    Keyword overrides replace fields (``get_profile("quick", epochs=2)``).

    Raises:
        ValueError: for a name that is not a profile.
    """
    chosen = name or os.environ.get("MEDVIT_PROFILE") or DEFAULT_PROFILE
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r}; choose one of {sorted(PROFILES)}")
    profile = PROFILES[chosen]
    return profile.replace(**overrides) if overrides else profile


def profile_table() -> Any:
    """The three profiles as a pandas DataFrame (one row each), for the book's tables."""
    import pandas as pd

    rows = []
    for p in PROFILES.values():
        rows.append(
            {
                "profile": p.name,
                "for": p.description,
                "image size": p.image_size,
                "train images (max)": p.max_train or "all",
                "eval images (max)": p.max_eval or "all",
                "epochs": p.epochs,
                "batch": p.batch_size,
                "CNN": p.cnn,
                "ViT": p.vit,
                "pretrained": p.pretrained,
            }
        )
    return pd.DataFrame(rows).set_index("profile")


# ----------------------------------------------------------------------------- paths


def repo_root() -> Path:
    """The source checkout when the package is installed from one, else ``~/.medvit``.

    In a checkout (``pip install -e .``) the folder holding ``pyproject.toml`` is the root; in
    Colab the package is installed from git into site-packages and work goes to ``~/.medvit``.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "helpers").is_dir():
        return here
    return Path.home() / ".medvit"


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    path = Path(value).expanduser() if value else default
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    return path


def data_root() -> Path:
    """Where datasets live in their original layouts: ``$MEDVIT_DATA`` or ``<root>/data``."""
    return _env_path("MEDVIT_DATA", repo_root() / "data")


def cache_dir(create: bool = True) -> Path:
    """Decoded-image caches and downloads: ``$MEDVIT_CACHE`` or ``<root>/.cache/medvit``."""
    path = _env_path("MEDVIT_CACHE", repo_root() / ".cache" / "medvit")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir(create: bool = True) -> Path:
    """Run records and checkpoints, one folder per run: ``$MEDVIT_RUNS`` or ``<root>/runs``."""
    path = _env_path("MEDVIT_RUNS", repo_root() / "runs")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def shown_path(path: str | Path) -> str:
    """``path`` as a page should print it: under the data, cache or runs folder it starts with
    ``$MEDVIT_DATA``, ``$MEDVIT_CACHE`` or ``$MEDVIT_RUNS`` (the first that holds it), so a built book
    shows no paths of the machine that built it; any other path is printed as it is. A dataset linked
    into the data folder (a symbolic link to another disk) is shown under ``$MEDVIT_DATA`` too.
    """
    path = Path(path)
    roots = (
        ("$MEDVIT_DATA", data_root()),
        ("$MEDVIT_CACHE", cache_dir(create=False)),
        ("$MEDVIT_RUNS", runs_dir(create=False)),
    )
    for name, root in roots:
        for inside, folder in ((path.absolute(), root.absolute()), (path.resolve(), root.resolve())):
            try:
                rest = inside.relative_to(folder)
            except ValueError:
                continue
            return name if rest == Path(".") else f"{name}/{rest.as_posix()}"
    return str(path)


def progress_shown() -> bool:
    """Whether loaders and downloads draw progress bars: yes, unless ``MEDVIT_PROGRESS=0``.

    ``make book`` and ``make test`` set it to 0: a notebook saved by a batch run keeps a progress
    widget at its first frame, and the built page would show a bar stuck at 0 %.
    """
    return os.environ.get("MEDVIT_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


# ----------------------------------------------------------------------------- device & seed


def get_device(prefer: str | None = None) -> Any:
    """The fastest device present: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the ``MEDVIT_DEVICE`` environment variable) forces one, e.g. ``"cpu"``.
    """
    import torch

    forced = prefer or os.environ.get("MEDVIT_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 42, deterministic: bool = False) -> int:
    """Seed Python, NumPy and PyTorch (all devices). Returns the seed, for run records.

    ``deterministic=True`` also asks cuDNN for deterministic kernels (slower on a GPU).
    """
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed
