"""The training-loop benchmark's pairing (benchmarks/bench_train_overhead.py) on a tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_train_overhead as bench  # noqa: E402


def test_paired_overhead_is_the_median_epoch_ratio_without_warmup() -> None:
    times = {"wall": [9.0, 1.1, 2.0, 3.3], "bare_wall": [1.0, 1.0, 2.0, 3.0], "cpu": [1, 1, 1, 1], "bare_cpu": [1] * 4}
    ours, bare, overhead, (lo, hi) = bench.paired_overhead(times, "wall")
    assert ours == 2.0 and bare == 2.0
    assert overhead == pytest.approx(0.1) and lo == pytest.approx(0.0) and hi == pytest.approx(0.1)
    with pytest.raises(ValueError, match="warm-up"):
        bench.paired_overhead({"wall": [1.0], "bare_wall": [1.0]}, "wall")


def test_paired_loops_time_both_loops_every_epoch() -> None:
    ds = bench.make_data(2 * 8, 16)
    valid = bench.make_data(8, 16, seed=1)
    times = bench.paired_loops(ds, valid, "resnet10t", bs=8, epochs=2, lr=1e-3, seed=0)
    assert set(times) == {"wall", "cpu", "bare_wall", "bare_cpu"}
    assert all(len(v) == 2 and all(t > 0 for t in v) for v in times.values())
    # the bare steps run inside the helpers epoch and are subtracted from it: each loop's share is
    # a fraction of the whole, not the whole twice
    ours, bare, overhead, _ = bench.paired_overhead(times, "wall", skip=0)
    assert -0.9 < overhead < 9
