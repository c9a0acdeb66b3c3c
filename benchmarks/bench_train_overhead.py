"""Training-loop overhead: ``helpers.train`` (fastai Learner + our callbacks) against a bare PyTorch loop.

Both train the same model (ResNet-18, random init) with the same batch size and the same
optimiser (``torch.optim.Adam``, constant learning rate) on the same images, already in memory,
on the CPU. The bare loop gets its batches as ready float tensors; ``helpers.train`` reads them
through the book's DataLoaders (uint8 → float, normalise), which is part of what it costs.

Each epoch is ``--steps`` training steps plus one validation batch. The two loops run in one
process, interleaved step by step (:func:`paired_loops`): the speed of a shared or virtual CPU
varies by 10-15 % from one epoch to the next, which swamps a few per cent when two runs are
compared a minute apart, but meets two interleaved steps alike. The overhead is the median of
the per-epoch ratios, of wall-clock time and of the process's CPU time; the first epoch is a
warm-up and is not counted.

    python benchmarks/bench_train_overhead.py            # ResNet-18, 32 px, batch 64
    python benchmarks/bench_train_overhead.py --size 64 --epochs 13
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import config  # noqa: E402
from helpers.data.base import ImageDataset  # noqa: E402
from helpers.models.vision import create_model  # noqa: E402
from helpers.train import get_config, train  # noqa: E402


def make_data(n: int, size: int, seed: int = 0) -> ImageDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8)
    labels = rng.integers(0, 2, n).astype(np.int64)
    return ImageDataset("bench", "train", "binary", ["a", "b"], images, labels, "synthetic")


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class BareLoop:
    """A plain PyTorch training loop over in-memory tensors: the reference ``helpers.train`` is timed against."""

    def __init__(self, ds: ImageDataset, valid: ImageDataset, model_name: str, bs: int, lr: float, seed: int) -> None:
        config.seed_everything(seed)
        x = torch.from_numpy(ds.images).permute(0, 3, 1, 2).float().div(255)
        self.mean, self.std = x.mean(), x.std()
        self.x, self.y = (x - self.mean) / self.std, torch.from_numpy(ds.labels)
        xv = torch.from_numpy(valid.images).permute(0, 3, 1, 2).float().div(255)
        self.xv, self.yv = (xv - self.mean) / self.std, torch.from_numpy(valid.labels)
        self.model = create_model(model_name, num_classes=2, in_chans=1, img_size=ds.image_size)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, betas=(0.9, 0.999))
        self.bs, self.batches = bs, []

    def step(self) -> None:
        """One training step on the next batch of a shuffled pass over the training images."""
        if not self.batches:
            perm = torch.randperm(len(self.x))
            self.batches = [perm[i : i + self.bs] for i in range(0, len(self.x) - self.bs + 1, self.bs)]
        idx = self.batches.pop(0)
        self.model.train()
        loss = F.cross_entropy(self.model(self.x[idx]), self.y[idx])
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()

    def validate(self) -> tuple[float, float]:
        """Loss and accuracy on the validation batch."""
        self.model.eval()
        with torch.no_grad():
            out = self.model(self.xv)
            return F.cross_entropy(out, self.yv).item(), (out.argmax(-1) == self.yv).float().mean().item()


def paired_loops(
    ds: ImageDataset, valid: ImageDataset, model_name: str, bs: int, epochs: int, lr: float, seed: int
) -> dict[str, list[float]]:
    """``helpers.train`` and the bare loop interleaved step by step in one process.

    After each ``helpers.train`` training step a callback runs one bare step, timed on its own;
    after each epoch it runs the bare loop's validation. A ``helpers.train`` epoch's time is the
    epoch's time (``before_epoch`` to the last ``after_epoch`` callback: training, validation,
    metrics, recording) less the bare work done inside it. A shared or virtual CPU's speed varies
    by 10-15 % from one epoch to the next; interleaved steps meet the same speed, so the per-epoch
    ratio of the two is far steadier than that of two runs side by side. Returns per-epoch wall and
    CPU seconds of both: ``{"wall", "cpu", "bare_wall", "bare_cpu"}``.
    """
    from fastai.callback.core import Callback

    bare = BareLoop(ds, valid, model_name, bs, lr, seed + 1000)
    times: dict[str, list[float]] = {"wall": [], "cpu": [], "bare_wall": [], "bare_cpu": []}

    class Interleave(Callback):
        order = 100  # after every other callback's after_step / after_epoch (History, Recorder, metrics)

        def before_epoch(self) -> None:
            self.start, self.bare = _clock(), [0.0, 0.0]

        def _bare(self, work: Any) -> None:
            t0, c0 = _clock()
            work()
            t1, c1 = _clock()
            self.bare[0] += t1 - t0
            self.bare[1] += c1 - c0

        def after_step(self) -> None:
            self._bare(bare.step)

        def after_epoch(self) -> None:
            t1, c1 = _clock()
            times["wall"].append(t1 - self.start[0] - self.bare[0])
            times["cpu"].append(c1 - self.start[1] - self.bare[1])
            self._bare(bare.validate)
            times["bare_wall"].append(self.bare[0])
            times["bare_cpu"].append(self.bare[1])

    setup = get_config("constant").replace(
        epochs=epochs, lr=lr, batch_size=bs, optimizer="adam", weight_decay=0.0, bootstrap=0, seed=seed
    )
    profile = config.get_profile("smoke", max_train=None, max_eval=None)
    train(model_name, (ds, valid, valid), setup, profile=profile, save=False, progress=False, callbacks=[Interleave()])
    return times


def paired_overhead(
    times: dict[str, list[float]], kind: str, skip: int = 1
) -> tuple[float, float, float, tuple[float, float]]:
    """``(median helpers epoch, median bare epoch, median ratio - 1, (lowest, highest) ratio - 1)``,
    times in seconds, for ``kind`` ``"wall"`` or ``"cpu"``, leaving out the first ``skip`` (warm-up) epochs."""
    ours, bare = times[kind][skip:], times[f"bare_{kind}"][skip:]
    if not ours:
        raise ValueError(f"no epochs left after skipping {skip} warm-up epoch(s)")
    ratios = [o / b for o, b in zip(ours, bare)]
    spread = (min(ratios) - 1, max(ratios) - 1)
    return statistics.median(ours), statistics.median(bare), statistics.median(ratios) - 1, spread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12, help="training steps per epoch")
    parser.add_argument("--epochs", type=int, default=9, help="epochs (the first is a warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = make_data(args.steps * args.batch_size, args.size)
    valid = make_data(args.batch_size, args.size, seed=1)
    times = paired_loops(ds, valid, args.model, args.batch_size, args.epochs, 1e-3, seed=0)
    print(
        f"model {args.model}, {args.size} px, batch {args.batch_size}, {args.steps} steps + 1 validation batch "
        f"per epoch, CPU threads {torch.get_num_threads()}, {args.epochs - 1} timed epochs, interleaved step by step"
    )
    verdicts = []
    for kind in ("wall", "cpu"):
        ours, bare, overhead, (lo, hi) = paired_overhead(times, kind)
        for name, median, key in (("bare PyTorch loop", bare, f"bare_{kind}"), ("helpers.train", ours, kind)):
            rounded, per_step = [round(t, 2) for t in times[key][1:]], median / args.steps * 1000
            print(f"{kind:>4} {name:<18}: {median:7.3f} s/epoch ({per_step:7.1f} ms/step)  all: {rounded}")
        print(
            f"{kind:>4} overhead          : {overhead:+.1%} (median of epoch ratios, {lo:+.1%} to {hi:+.1%}; "
            "target: <= +5 %)"
        )
        verdicts.append(overhead <= 0.05)
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
