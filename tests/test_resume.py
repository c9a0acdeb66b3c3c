"""Resume: a training process killed mid-epoch continues with ``--resume`` and ends where an
uninterrupted run ends (same weights, same history, same metrics)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.training.resume import STATE_FILE, read_state

ROOT = Path(__file__).resolve().parents[1]
#: A 1-block ViT on 256 PneumoniaMNIST images at 28 px: 8 steps per epoch, 3 epochs.
TINY_RUN = [
    "--task", "pneumonia", "--model", "vit_tiny_patch16_224", "--profile", "smoke",
    "--max-train", "256", "--max-eval", "64", "--image-size", "28", "--batch-size", "32", "--epochs", "3",
    "--no-pretrained", "--set", "bootstrap=0", "--set", "model_kwargs={'depth': 1, 'patch_size': 7}", "--quiet",
]  # fmt: skip
#: Weights may differ by at most this much (the same process setup computes the same floats: 0 expected).
WEIGHT_ATOL = 1e-6


def _start(runs: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MEDVIT_RUNS": str(runs), "OMP_NUM_THREADS": "1", "MEDVIT_DEVICE": "cpu"}
    return subprocess.Popen(
        [sys.executable, "-m", "helpers", "train", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"training did not finish in {timeout} s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    return out


def _run_folder(runs: Path) -> Path:
    folders = [p for p in runs.glob("*") if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def _kill_after_first_epoch(proc: subprocess.Popen, runs: Path, timeout: float = 240) -> Path:
    """SIGKILL ``proc`` as soon as its state after epoch 1 is on disk (so during epoch 2)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{proc.stdout.read()[-3000:]}")
        states = list(runs.glob(f"*/{STATE_FILE}"))
        if states:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
            return states[0].parent
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no resume state appeared")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "checkpoint" / "model.safetensors")


def _without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def test_killed_run_resumes_to_the_uninterrupted_result(real_data, tmp_path):
    whole = _start(tmp_path / "whole", *TINY_RUN)  # the reference, side by side with the killed one
    killed = _start(tmp_path / "killed", *TINY_RUN)
    folder = _kill_after_first_epoch(killed, tmp_path / "killed")
    assert killed.returncode == -signal.SIGKILL
    state = read_state(folder)
    assert (state["fit"], state["epoch"]) < (0, 3), "killed after the last epoch: nothing left to resume"
    assert not (folder / "run.json").exists()
    _finish(_start(tmp_path / "killed", "--resume", str(folder), "--quiet"))
    _finish(whole)

    ref_folder = _run_folder(tmp_path / "whole")
    assert _run_folder(tmp_path / "killed") == folder  # the resumed run ended in its own folder
    assert not (folder / STATE_FILE).exists()  # removed once run.json and the checkpoint are written
    ref, got = _weights(ref_folder), _weights(folder)
    assert ref.keys() == got.keys()
    worst = max(float((ref[k].float() - got[k].float()).abs().max()) for k in ref)
    assert worst <= WEIGHT_ATOL, f"resumed weights differ from the uninterrupted run's by up to {worst:g}"
    a = json.loads((ref_folder / "run.json").read_text())
    b = json.loads((folder / "run.json").read_text())
    assert len(b["history"]) == 3
    assert _without_times(a["history"]) == _without_times(b["history"])
    assert a["metrics"]["test"] == b["metrics"]["test"] and a["metrics"]["valid"] == b["metrics"]["valid"]
    assert a["config"]["train_config"] == b["config"]["train_config"]


def test_resume_refuses_a_folder_without_state(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        read_state(tmp_path)
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="the run finished"):
        read_state(tmp_path)


def test_resume_refuses_other_settings(tmp_path):
    from helpers.train import TrainConfig
    from helpers.training.loop import _resumed
    from helpers.training.resume import write_state

    saved = TrainConfig(epochs=3, batch_size=32)
    write_state(tmp_path, {"fit": 0, "epoch": 1, "meta": {"config": saved.to_dict(), "data": "pbc"}})
    assert _resumed(tmp_path, saved, "pbc", "resnet18")["epoch"] == 1
    with pytest.raises(ValueError, match=r"other settings \(\['lr'\]\)"):
        _resumed(tmp_path, saved.replace(lr=0.1), "pbc", "resnet18")
    with pytest.raises(ValueError, match="trained on 'pbc'"):
        _resumed(tmp_path, saved, "nih", "resnet18")
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write leaves no temporary file
