"""What the command line trains on and with: task names and configuration files.

``python -m helpers train --task blood-cells --config run.yaml --set epochs=20`` names the data by
its task (:data:`TASKS`, or any registry name of :data:`helpers.data.DATASETS`) and the settings by
a named configuration (:mod:`helpers.configs`) or a YAML/TOML file of
:class:`~helpers.training.config.TrainConfig` fields::

    # run.yaml                       # run.toml
    base: one_cycle                  base = "one_cycle"
    lr: 3.0e-4                       lr = 3e-4
    epochs: 20                       epochs = 20
    plateau: {factor: 0.1}           plateau = { factor = 0.1 }

``base`` (optional) is the named configuration the file changes; the other keys are fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import TrainConfig

__all__ = ["TASKS", "dataset_for_task", "load_config"]

#: Task names of the command line → dataset registry names (the chapters' datasets).
TASKS: dict[str, str] = {
    "blood-cells": "pbc",
    "blood-cells-mnist": "bloodmnist",
    "pneumonia": "pneumoniamnist",
    "chest-xray": "nih",
    "covid": "covid",
    "mammography": "cbis_ddsm",
    "mammography-mias": "mias",
    "breast-ultrasound": "breastmnist",
}


def dataset_for_task(task: str) -> str:
    """The registry name of ``task`` (a key of :data:`TASKS` or a registry name itself).

    Raises:
        KeyError: naming the tasks and datasets there are.
    """
    from ..data import DATASETS

    if task in TASKS:
        return TASKS[task]
    if task in DATASETS:
        return task
    raise KeyError(f"unknown task {task!r}; tasks: {sorted(TASKS)}; or a dataset: {sorted(DATASETS)}")


def _read_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10: TOML is read on 3.11 and later
            raise ValueError(f"{path}: reading TOML needs Python 3.11 or later; use a YAML file") from None
        data = tomllib.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold TrainConfig fields as a mapping, got {type(data).__name__}")
    return data


def load_config(name_or_path: str | Path) -> TrainConfig:
    """A named configuration, or the one a ``.yaml``/``.yml``/``.toml`` file describes.

    Raises:
        FileNotFoundError: for a path with a configuration suffix that does not exist.
        KeyError: for an unknown name (the message lists the known ones).
        TypeError: for keys in a file that are not TrainConfig fields (listed).
    """
    from ..configs import get_config

    path = Path(name_or_path)
    if path.suffix.lower() not in (".yaml", ".yml", ".toml"):
        return get_config(str(name_or_path))
    if not path.is_file():
        raise FileNotFoundError(f"no configuration file {path}")
    data = _read_file(path)
    base = get_config(str(data.pop("base", "one_cycle")))
    try:
        return base.replace(**data)
    except TypeError as err:
        raise TypeError(f"{path}: {err}") from None
