"""``make gpu-check`` (benchmarks/gpu_check.py): every chapter's full-profile model is listed, and a
toy step of one runs through the project's learner (the code path the GPU table takes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import gpu_check  # noqa: E402


def test_every_chapter_with_a_trained_model_is_checked_at_its_full_size():
    checks = gpu_check.checks()
    chapters = {c.chapter for c in checks}
    assert {"CNN baselines", "Vision Transformer", "Blood cells", "Mammography", "Lungs", "Transfer"} <= chapters
    by_run = {(c.chapter, c.label): c for c in checks}
    lungs = by_run[("Lungs", "cnn")]
    assert lungs.model == "thesis000_resnet50" and lungs.config.image_size == 1024  # thesis 000 at full
    assert lungs.config.batch_size == 16 and lungs.config.pretrained is True
    assert by_run[("Blood cells", "vit_base_mixup")].model == "vit_base_patch16_224.augreg_in21k"
    assert by_run[("Transfer", "DeiT student")].teacher == "tf_efficientnet_lite0"


@pytest.mark.usefixtures("one_thread")
def test_a_toy_step_runs_through_the_learner(tmp_workdirs, capsys):
    assert gpu_check.main(["--dry-run", "--only", "DeiT"]) == 0
    out = capsys.readouterr().out
    assert "deit_scratch_tiny_patch16" in out and "teacher tf_efficientnet_lite0" in out and "1 checks" in out
