"""Training-loop overhead: ``helpers.train`` (fastai Learner + our callbacks) against a bare PyTorch loop.

Both train the same model (ResNet-18, random init) with the same batch size and the same
optimiser (``torch.optim.Adam``, constant learning rate) on the same images, already in memory,
on the CPU. The bare loop gets its batches as ready float tensors; ``helpers.train`` reads them
through the book's DataLoaders (uint8 → float, normalise), which is part of what it costs.

Each epoch is ``--steps`` training steps plus one validation batch; the first epoch of each run
is a warm-up and is not counted. Runs alternate (bare, helpers, bare, ...) so that a busy
machine slows both alike, and the medians are reported — of wall-clock time and of the
process's CPU time, which a machine shared with other jobs disturbs much less (compare them
with ``--threads 1``, where CPU time is the single compute thread's).

    python benchmarks/bench_train_overhead.py            # ResNet-18, 32 px, batch 64
    python benchmarks/bench_train_overhead.py --size 64 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

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


def bare_loop(
    ds: ImageDataset, valid: ImageDataset, model_name: str, bs: int, epochs: int, lr: float, seed: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per epoch of a plain PyTorch loop (train steps + one validation batch)."""
    config.seed_everything(seed)
    x = torch.from_numpy(ds.images).permute(0, 3, 1, 2).float().div(255)
    x = (x - x.mean()) / x.std()
    y = torch.from_numpy(ds.labels)
    xv = torch.from_numpy(valid.images).permute(0, 3, 1, 2).float().div(255)
    xv = (xv - x.mean()) / x.std()
    model = create_model(model_name, num_classes=2, in_chans=1, img_size=ds.image_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    times, cpu = [], []
    for _ in range(epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x) - bs + 1, bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            opt.zero_grad()
        model.eval()
        with torch.no_grad():
            model(xv).softmax(-1)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu


def helpers_loop(
    ds: ImageDataset, valid: ImageDataset, model_name: str, bs: int, epochs: int, lr: float, seed: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per epoch of ``helpers.train`` (constant learning rate, Adam, no extras)."""
    from fastai.callback.core import Callback

    class CPUTime(Callback):
        order = 100  # its after_epoch runs after every other callback's (History, Recorder)

        def __init__(self) -> None:
            self.cpu: list[float] = []

        def before_epoch(self) -> None:
            self.c0 = time.process_time()

        def after_epoch(self) -> None:
            self.cpu.append(time.process_time() - self.c0)

    clock = CPUTime()
    setup = get_config("constant").replace(
        epochs=epochs, lr=lr, batch_size=bs, optimizer="adam", weight_decay=0.0, bootstrap=0, seed=seed
    )
    profile = config.get_profile("smoke", max_train=None, max_eval=None)
    record = train(
        model_name, (ds, valid, valid), setup, profile=profile, save=False, progress=False, callbacks=[clock]
    )
    return record.epoch_times_s, clock.cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12, help="training steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is a warm-up)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each loop")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = make_data(args.steps * args.batch_size, args.size)
    valid = make_data(args.batch_size, args.size, seed=1)
    lr = 1e-3
    bare, ours, bare_cpu, ours_cpu = [], [], [], []
    for r in range(args.repeats):
        wall, cpu = bare_loop(ds, valid, args.model, args.batch_size, args.epochs, lr, seed=r)
        bare += wall[1:]
        bare_cpu += cpu[1:]
        wall, cpu = helpers_loop(ds, valid, args.model, args.batch_size, args.epochs, lr, seed=r)
        ours += wall[1:]
        ours_cpu += cpu[1:]
    print(
        f"model {args.model}, {args.size} px, batch {args.batch_size}, {args.steps} steps + 1 validation batch "
        f"per epoch, CPU threads {torch.get_num_threads()}, {args.repeats} runs x {args.epochs - 1} timed epochs each"
    )
    for label, b_list, o_list in (("wall", bare, ours), ("CPU", bare_cpu, ours_cpu)):
        b, o = statistics.median(b_list), statistics.median(o_list)
        for name, median, times in (("bare PyTorch loop", b, b_list), ("helpers.train", o, o_list)):
            per_step, rounded = median / args.steps * 1000, [round(t, 2) for t in times]
            print(f"{label:>4} {name:<18}: {median:7.3f} s/epoch ({per_step:7.1f} ms/step)  all: {rounded}")
        print(f"{label:>4} overhead          : {(o - b) / b * 100:+.1f} %  (target: at most +5 %)")
    b, o = statistics.median(bare_cpu), statistics.median(ours_cpu)
    overhead = (o - b) / b
    return 0 if overhead <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
