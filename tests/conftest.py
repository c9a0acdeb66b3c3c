"""Shared fixtures: where the real data samples are, and a clean environment per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path | None:
    """``$MEDVIT_DATA`` if set and present, else ``../shared/data`` beside the repo, else None."""
    env = os.environ.get("MEDVIT_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


@pytest.fixture
def real_data(monkeypatch) -> Path:
    """The shared real-data samples; the test skips (with the reason) when they are absent."""
    path = shared_data()
    if path is None:
        pytest.skip("real data samples not found: set MEDVIT_DATA or put ../shared/data beside the repo")
    monkeypatch.setenv("MEDVIT_DATA", str(path))
    return path


@pytest.fixture
def tmp_workdirs(tmp_path, monkeypatch) -> Path:
    """Send caches and runs to a temporary folder so tests never touch the user's."""
    monkeypatch.setenv("MEDVIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDVIT_RUNS", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture
def one_thread():
    """Run the test on one torch thread (tiny models are fastest so), then restore the setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
