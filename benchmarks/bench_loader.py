"""Loader throughput: the decode-once cache against a plain per-image PIL ``Dataset``.

Both pipelines feed the same batches to the same batch transforms (augmentation + normalisation
from :mod:`helpers.data.loaders`); they differ only in where the pixels come from:

* **cache**: ``load_dataset`` decodes every file once into a memory-mapped ``uint8`` array (the
  first epoch pays for it), then each batch is one fancy index of that array;
* **PIL**: a ``torch.utils.data.Dataset`` that opens, decodes, pads and resizes every image with
  Pillow each time it is asked for it (what a naive ``ImageFolder`` pipeline does).

Run (on the PBC sample: ``MEDVIT_DATA=../shared/data``)::

    python benchmarks/bench_loader.py --size 64 --epochs 4 --batch-size 64

It prints images per second per epoch and the speed-up; ``--check`` exits with status 1 when the
cache is not at least 10x faster from the second epoch on.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import config  # noqa: E402
from helpers.data import Augment, load_dataset, make_dataloaders  # noqa: E402
from helpers.data.loaders import augment_batch  # noqa: E402
from helpers.data.pbc import read_pbc  # noqa: E402


def per_image_transform(aug: Augment):
    """The same kinds of augmentation as :meth:`Augment.fastai`, the way a per-image pipeline applies
    them: torchvision transforms on each PIL image (flip, rotation, zoom, crop, brightness, contrast)."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.RandomHorizontalFlip() if aug.flip else T.Lambda(lambda im: im),
            T.RandomApply([T.RandomAffine(aug.max_rotate, scale=(aug.min_zoom, aug.max_zoom))], p=aug.p_affine),
            T.RandomApply([T.ColorJitter(brightness=aug.brightness, contrast=aug.contrast)], p=aug.p_lighting),
        ]
    )


class PILDataset(torch.utils.data.Dataset):
    """Decode + pad-to-square + resize with Pillow on every access (no cache); with ``transform``,
    augmented image by image as a per-image pipeline does."""

    def __init__(self, files, labels, size: int, transform=None) -> None:
        self.files, self.labels, self.size, self.transform = list(files), np.asarray(labels), size, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.files[i]) as img:
            img = img.convert("RGB")
            w, h = img.size
            side = max(w, h)
            square = Image.new("RGB", (side, side), 0)
            square.paste(img, ((side - w) // 2, (side - h) // 2))
            small = square.resize((self.size, self.size), Image.Resampling.BILINEAR)
            if self.transform is not None:
                small = self.transform(small)
            arr = np.asarray(small)
        return torch.from_numpy(arr.copy()), int(self.labels[i])


def run_pil(files, labels, size, batch_size, epochs, stats, augment, seed, per_image=None) -> list[float]:
    """Images/s per epoch of the per-image PIL pipeline: ``augment`` on each batch (the same batch
    transform as the cache), or ``per_image`` augmentation (an :class:`Augment`) image by image."""
    transform = None if per_image is None else per_image_transform(per_image)
    loader = torch.utils.data.DataLoader(
        PILDataset(files, labels, size, transform),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )
    mean = torch.tensor(stats[0]).view(1, -1, 1, 1)
    std = torch.tensor(stats[1]).view(1, -1, 1, 1)
    gen = torch.Generator().manual_seed(seed)
    rates = []
    for _ in range(epochs):
        t0, n = time.perf_counter(), 0
        for x, _y in loader:
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            if augment is not None:
                x = augment_batch(x, augment, gen)
            x = (x - mean) / std
            n += len(x)
        rates.append(n / (time.perf_counter() - t0))
    return rates


def run_cache(size, batch_size, epochs, augment, seed) -> tuple[list[float], tuple, float]:
    t0 = time.perf_counter()
    train = load_dataset("pbc", "all", size=size, seed=seed, verbose=False)
    build = time.perf_counter() - t0
    dls = make_dataloaders(train, train, batch_size, augment=augment, device="cpu", seed=seed)
    rates = []
    for epoch in range(epochs):
        t0, n = time.perf_counter(), 0
        for x, _y in dls.train:
            n += len(x)
        elapsed = time.perf_counter() - t0 + (build if epoch == 0 else 0.0)
        rates.append(n / elapsed)
    return rates, dls.normalization, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both pipelines (1: one loader process, as a DataLoader worker)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 unless the cache is >= 10x faster from epoch 2")
    args = parser.parse_args(argv)

    root = config.data_root() / "pbc"
    if not root.is_dir():
        print(f"no PBC data at {root}: set MEDVIT_DATA (e.g. MEDVIT_DATA=../shared/data)")
        return 2
    torch.set_num_threads(args.threads)
    cat = read_pbc(root)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"PBC sample at {root}: {len(cat)} images, {args.size}px, batch {args.batch_size}, {cores} cores "
        f"(load average {load:.1f}), torch {torch.__version__} with {args.threads} thread(s)"
    )
    worst = {}
    for label, augment in (
        ("resize + normalise only", None),
        ("plus batch augmentation (Augment.fastai)", Augment.fastai()),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MEDVIT_CACHE"] = tmp  # a cold cache: epoch 1 includes decoding every file
            cache_rates, stats, build = run_cache(args.size, args.batch_size, args.epochs, augment, args.seed)
        pil_rates = run_pil(cat.files, cat.labels, args.size, args.batch_size, args.epochs, stats, augment, args.seed)
        print(f"\n{label}; cache build (decode {len(cat)} files once) {build:.2f} s, counted in the cache's epoch 1")
        print(f"{'epoch':>5} {'cache img/s':>12} {'PIL img/s':>10} {'speed-up':>9}")
        ratios = []
        for e, (c, p) in enumerate(zip(cache_rates, pil_rates), start=1):
            ratios.append(c / p)
            print(f"{e:>5} {c:>12.0f} {p:>10.0f} {c / p:>8.1f}x")
        worst[label] = min(ratios[1:]) if len(ratios) > 1 else ratios[0]
        print(f"slowest speed-up from epoch 2 on: {worst[label]:.1f}x (target >= 10x)")
    if args.check and min(worst.values()) < 10:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
