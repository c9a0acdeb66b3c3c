"""Two processes (DDP, gloo, CPU) train as one process with the same global batch does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import distributed

ROOT = Path(__file__).resolve().parents[1]
#: A 1-block ViT (LayerNorm, no batch statistics, no dropout) on 256 PneumoniaMNIST images at 28 px,
#: global batch 32 (16 per rank with two processes), 2 epochs.
RUN = [
    "-m", "helpers", "train", "--task", "pneumonia", "--model", "vit_tiny_patch16_224", "--profile", "smoke",
    "--max-train", "256", "--max-eval", "64", "--image-size", "28", "--batch-size", "32", "--epochs", "2",
    "--lr", "3e-3", "--no-pretrained", "--set", "bootstrap=0", "--set", "model_kwargs={'depth': 1, 'patch_size': 7}",
    "--quiet",
]  # fmt: skip
#: Losses may differ by this much (the gradients are averaged in another order: about 1e-7 seen).
LOSS_ATOL = 1e-4
#: Metrics (accuracy, AUROC on 64 images) may differ by this much (one prediction flipping at a tie).
METRIC_ATOL = 0.02


def _launch(cmd: list[str], runs: Path) -> subprocess.Popen:
    env = {**os.environ, "MEDVIT_RUNS": str(runs), "OMP_NUM_THREADS": "1", "MEDVIT_DEVICE": "cpu"}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _wait(proc: subprocess.Popen, timeout: float = 300) -> str:
    """The output of ``proc``; on a time-out its whole process group is killed (no rank left behind)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"did not finish in {timeout} s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-4000:]
    return out


def _record(runs: Path) -> dict:
    (path,) = runs.glob("*/run.json")  # one run folder: rank 1 wrote nothing
    return json.loads(path.read_text())


def test_two_gloo_processes_match_one_process(real_data, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ddp = _launch([*torchrun, *RUN], tmp_path / "ddp")  # side by side: the machine's load hits both
    single = _launch([sys.executable, *RUN], tmp_path / "single")
    out = _wait(ddp)
    _wait(single)
    assert "(2 process(es))" in out
    a, b = _record(tmp_path / "single"), _record(tmp_path / "ddp")
    assert len(a["history"]) == len(b["history"]) == 2
    for row_a, row_b in zip(a["history"], b["history"]):
        for key in ("train_loss", "valid_loss"):
            assert abs(row_a[key] - row_b[key]) <= LOSS_ATOL, (key, row_a[key], row_b[key])
        assert abs(row_a["valid_auroc"] - row_b["valid_auroc"]) <= METRIC_ATOL
    for split in ("valid", "test"):
        for key in ("accuracy", "auroc"):
            assert abs(a["metrics"][split][key] - b["metrics"][split][key]) <= METRIC_ATOL, (split, key)
    assert b["data"]["train"]["n"] == a["data"]["train"]["n"] == 256


def test_per_rank_batch_splits_the_global_batch(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert distributed.per_rank_batch(64) == 16 and not distributed.is_main()
    with pytest.raises(ValueError, match="multiple of 4"):
        distributed.per_rank_batch(30)
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    assert distributed.world_size() == 1 and distributed.is_main() and distributed.per_rank_batch(30) == 30
