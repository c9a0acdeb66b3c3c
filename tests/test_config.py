"""Profiles, paths, device choice and seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import config


def test_three_profiles_grow_from_smoke_to_full():
    smoke, quick, full = (config.PROFILES[n] for n in ("smoke", "quick", "full"))
    assert smoke.image_size < quick.image_size < full.image_size
    assert smoke.max_train < quick.max_train and full.max_train is None
    assert smoke.epochs <= quick.epochs <= full.epochs
    assert not smoke.pretrained and not quick.pretrained and full.pretrained


def test_unset_profile_means_quick(monkeypatch):
    monkeypatch.delenv("MEDVIT_PROFILE", raising=False)
    assert config.get_profile().name == "quick"
    assert config.get_profile(None).name == "quick"


def test_environment_variable_chooses_profile(monkeypatch):
    monkeypatch.setenv("MEDVIT_PROFILE", "smoke")
    assert config.get_profile().name == "smoke"
    # An explicit parameter (papermill's PROFILE) wins over the environment.
    assert config.get_profile("full").name == "full"
    monkeypatch.setenv("MEDVIT_PROFILE", " Quick ")
    assert config.get_profile().name == "quick"


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown profile 'huge'.*smoke"):
        config.get_profile("huge")


def test_overrides_make_a_copy():
    p = config.get_profile("quick", epochs=2, batch_size=8)
    assert (p.epochs, p.batch_size) == (2, 8)
    assert config.PROFILES["quick"].epochs != 2 or config.PROFILES["quick"].batch_size != 8
    assert p.as_dict()["epochs"] == 2


def test_profile_table_has_one_row_per_profile():
    table = config.profile_table()
    assert list(table.index) == ["smoke", "quick", "full"]
    assert table.loc["full", "pretrained"]


def test_paths_default_inside_repo(monkeypatch):
    for var in ("MEDVIT_DATA", "MEDVIT_CACHE", "MEDVIT_RUNS"):
        monkeypatch.delenv(var, raising=False)
    root = config.repo_root()
    assert (root / "pyproject.toml").exists()
    assert config.data_root() == root / "data"
    assert config.cache_dir(create=False) == root / ".cache" / "medvit"
    assert config.runs_dir(create=False) == root / "runs"
    ignored = (root / ".gitignore").read_text().split()
    for folder in ("/data/", "/runs/", "/.cache/"):
        assert folder in ignored, f"{folder} must be git-ignored (anchored: helpers/data is code)"


def test_paths_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("MEDVIT_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path / "r"))
    assert config.data_root() == tmp_path / "d"
    assert config.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    assert config.runs_dir() == tmp_path / "r" and (tmp_path / "r").is_dir()


def test_relative_path_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDVIT_DATA", "some/where")
    assert config.data_root() == (tmp_path / "some" / "where").resolve()


def test_device_order(monkeypatch):
    monkeypatch.delenv("MEDVIT_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.get_device().type == "cpu"


def test_device_can_be_forced(monkeypatch):
    monkeypatch.setenv("MEDVIT_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device().type == "cpu"
    assert config.get_device("meta").type == "meta"


def test_seed_everything_repeats_draws():
    config.seed_everything(7)
    a = (np.random.rand(3), torch.rand(3))
    config.seed_everything(7)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])
    config.seed_everything(8)
    assert not torch.equal(torch.rand(3), b[1])


def test_shown_paths_name_the_folder_not_the_machine(tmp_path, monkeypatch):
    """Pages print paths under the data, cache and runs folders from their variable, others as they are."""
    for var in ("DATA", "CACHE", "RUNS"):
        monkeypatch.setenv(f"MEDVIT_{var}", str(tmp_path / var.lower()))
    assert config.shown_path(tmp_path / "data" / "pbc" / "x.jpg") == "$MEDVIT_DATA/pbc/x.jpg"
    assert config.shown_path(str(tmp_path / "runs" / "r1" / "run.json")) == "$MEDVIT_RUNS/r1/run.json"
    assert config.shown_path(tmp_path / "cache") == "$MEDVIT_CACHE"
    assert config.shown_path(tmp_path / "elsewhere" / "f.png") == str(tmp_path / "elsewhere" / "f.png")
    assert config.shown_path(tmp_path / "data-other") == str(tmp_path / "data-other")  # a prefix is not a parent


def test_a_dataset_linked_into_the_data_folder_is_shown_under_it(tmp_path, monkeypatch):
    """A root whose datasets are symbolic links to another disk (a perturbed root, a user's own) hides both places."""
    (tmp_path / "disk" / "nih").mkdir(parents=True)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "nih").symlink_to(tmp_path / "disk" / "nih", target_is_directory=True)
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "root"))
    assert config.shown_path(tmp_path / "root" / "nih") == "$MEDVIT_DATA/nih"
    assert config.shown_path(tmp_path / "root" / "nih" / "a.png") == "$MEDVIT_DATA/nih/a.png"
    disk = tmp_path / "disk" / "nih"
    assert config.shown_path(disk) == str(disk)  # not reached through the root
