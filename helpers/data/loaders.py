"""Training DataLoaders: batches straight from the uint8 arrays, augmentation on the whole batch.

The pipeline, per batch (the data half of fastai's data/training split):

1. **Index**: a fastai :class:`~fastai.data.load.DataLoader` draws indices (shuffled for training);
   the batch is read with one fancy-index of the ``uint8`` ``(N, H, W, C)`` array, which is usually
   the memory-mapped decode-once cache, so an epoch costs a memory copy, not a decode per image.
2. **Move**: the ``uint8`` batch goes to the device (a quarter of the bytes of float32).
3. **Scale and lay out**: ``x = batch.permute(0, 3, 1, 2).float() / 255`` (NCHW in ``[0, 1]``).
4. **Augment** (training loader only, :class:`Augment`): one random affine per image (flip, rotation,
   zoom, random-resized crop) applied with a single ``grid_sample`` for the whole batch, then
   brightness/contrast; it runs wherever the batch is, so on the GPU when there is one.
5. **Normalise**: :math:`\\hat x_c = (x_c - \\mu_c) / \\sigma_c` with the per-channel mean and standard
   deviation of the **training** split (kept as ``dls.normalization = (mean, std)``), so that no
   statistic of the validation or test images leaks into training.

Targets: ``int64`` ``(N,)`` for multi-class and binary tasks, ``float32`` ``(N, L)`` for multi-label.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.data.transforms import CategoryMap

from .base import ImageDataset

__all__ = [
    "Augment",
    "ArrayItems",
    "ArrayDataLoader",
    "ArrayDataLoaders",
    "channel_stats",
    "augment_batch",
    "make_dataloaders",
    "make_eval_loader",
]


# ----------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class Augment:
    """Random batch augmentation, applied to the training loader only.

    Attributes:
        flip: mirror left-right with probability 0.5.
        flip_vert: also mirror top-bottom with probability 0.5.
        max_rotate: rotation drawn uniformly in ``[-max_rotate, max_rotate]`` degrees.
        min_zoom, max_zoom: zoom factor drawn uniformly in ``[min_zoom, max_zoom]`` (> 1 zooms in).
        min_scale: random-resized crop: keep a random region of ``[min_scale, 1]`` of the area
            (aspect ratio between 3/4 and 4/3), resized back to full size; 1 turns it off.
        brightness: add ``U(-brightness, brightness)`` to every pixel (images in ``[0, 1]``).
        contrast: scale each image about its mean by ``U(1 - contrast, 1 + contrast)``.
        p_affine: probability that an image gets its rotation/zoom/crop (flips have their own 0.5).
        p_lighting: probability that an image gets its brightness/contrast change.
        padding: what ``grid_sample`` shows outside the image: ``"reflection"``, ``"zeros"`` or ``"border"``.
    """

    flip: bool = True
    flip_vert: bool = False
    max_rotate: float = 10.0
    min_zoom: float = 1.0
    max_zoom: float = 1.1
    min_scale: float = 1.0
    brightness: float = 0.2
    contrast: float = 0.2
    p_affine: float = 0.75
    p_lighting: float = 0.75
    padding: str = "reflection"

    @classmethod
    def thesis002(cls) -> Augment:
        """Thesis 002's Keras pipeline: horizontal flip, brightness ±0.1, rotation ±0.02 turn, zoom ±20 %."""
        return cls(
            flip=True,
            max_rotate=0.02 * 360.0,
            min_zoom=0.8,
            max_zoom=1.2,
            brightness=0.1,
            contrast=0.0,
            p_affine=1.0,
            p_lighting=1.0,
        )

    @classmethod
    def fastai(cls, min_scale: float = 0.75) -> Augment:
        """fastai's ``aug_transforms(min_scale=...)`` defaults (thesis 004), without the perspective warp."""
        return cls(
            flip=True,
            max_rotate=10.0,
            min_zoom=1.0,
            max_zoom=1.1,
            min_scale=min_scale,
            brightness=0.2,
            contrast=0.2,
            p_affine=0.75,
            p_lighting=0.75,
        )

    @classmethod
    def flip_only(cls) -> Augment:
        """Thesis 000 (after CheXNet): a horizontal flip with probability 0.5 and nothing else."""
        return cls(
            flip=True,
            max_rotate=0.0,
            min_zoom=1.0,
            max_zoom=1.0,
            brightness=0.0,
            contrast=0.0,
            p_affine=0.0,
            p_lighting=0.0,
        )

    def as_dict(self) -> dict[str, Any]:
        """The settings, for run records."""
        return asdict(self)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (hi - lo) + lo


def augment_batch(
    x: torch.Tensor, aug: Augment, gen: torch.Generator, mean_layout: torch.memory_format | None = None
) -> torch.Tensor:
    """Augment a float batch ``(N, C, H, W)`` in ``[0, 1]``; returns a new contiguous tensor, same shape.

    Flips are exact index operations; every image then gets its own random affine matrix
    (rotation, zoom, crop) and all of them are applied by one ``F.affine_grid`` + ``F.grid_sample``
    call (bilinear); lighting comes last. ``gen`` must live on ``x.device``.

    ``mean_layout`` is the memory layout in which the contrast's per-image mean is summed (``None``: the
    layout ``x.clone()`` would have). The order of a sum sets its last bits, so the layout is part of the
    result: the loaders pass ``torch.channels_last``, the layout their batches had when the runs recorded in
    this book were made, and hand in a contiguous batch, on which the rest runs faster (with the lighting done in
    place: 5,900-6,600 augmented PBC images a second at 64 px and one thread before, 7,700-8,300 after).
    """
    if mean_layout is None:
        mean_layout = torch.contiguous_format if torch.empty_like(x).is_contiguous() else torch.channels_last
    n, dev = x.shape[0], x.device
    if n == 0:
        return x
    one = torch.ones(n, device=dev)
    sx, sy = one.clone(), one.clone()
    tx, ty = torch.zeros(n, device=dev), torch.zeros(n, device=dev)
    angle = torch.zeros(n, device=dev)
    affine = torch.rand(n, generator=gen, device=dev) < aug.p_affine
    if aug.max_rotate > 0:
        angle = torch.where(affine, _uniform(n, -aug.max_rotate, aug.max_rotate, gen, dev), angle) * math.pi / 180
    if aug.max_zoom != 1.0 or aug.min_zoom != 1.0:
        zoom = torch.where(affine, _uniform(n, aug.min_zoom, aug.max_zoom, gen, dev), one)
        sx, sy = sx / zoom, sy / zoom
    if aug.min_scale < 1.0:
        area = _uniform(n, aug.min_scale, 1.0, gen, dev)
        ratio = torch.exp(_uniform(n, math.log(3 / 4), math.log(4 / 3), gen, dev))
        cw = torch.sqrt(area * ratio).clamp(max=1.0)
        ch = torch.sqrt(area / ratio).clamp(max=1.0)
        cw, ch = torch.where(affine, cw, one), torch.where(affine, ch, one)
        tx = (torch.rand(n, generator=gen, device=dev) * 2 - 1) * (1 - cw)
        ty = (torch.rand(n, generator=gen, device=dev) * 2 - 1) * (1 - ch)
        sx, sy = sx * cw, sy * ch
    out = x.clone(memory_format=torch.contiguous_format)
    # flips are exact index operations on the chosen images only, not resampling
    if aug.flip:
        pick = torch.rand(n, generator=gen, device=dev) < 0.5
        if bool(pick.any()):
            out[pick] = out[pick].flip(-1)
    if aug.flip_vert:
        pick = torch.rand(n, generator=gen, device=dev) < 0.5
        if bool(pick.any()):
            out[pick] = out[pick].flip(-2)
    moved = affine & ((angle != 0) | (sx != 1) | (sy != 1) | (tx != 0) | (ty != 0))
    if bool(moved.any()):
        cos, sin = torch.cos(angle), torch.sin(angle)
        # output pixel (u, v) samples the input at R(angle) · diag(sx, sy) · (u, v) + (tx, ty)
        theta = torch.stack(
            [torch.stack([cos * sx, -sin * sy, tx], dim=1), torch.stack([sin * sx, cos * sy, ty], dim=1)], dim=1
        )[moved]
        src = out[moved]
        grid = F.affine_grid(theta.to(x.dtype), list(src.shape), align_corners=False)
        out[moved] = F.grid_sample(src, grid, mode="bilinear", padding_mode=aug.padding, align_corners=False)
    if aug.brightness > 0 or aug.contrast > 0:
        light = (torch.rand(n, generator=gen, device=dev) < aug.p_lighting).to(x.dtype)
        shape = (n, 1, 1, 1)
        # in place on this function's own copy: the same operations in the same order as out = (out - mean) * ...
        if aug.contrast > 0:
            factor = 1 + light * _uniform(n, -aug.contrast, aug.contrast, gen, dev)
            mean = out.contiguous(memory_format=mean_layout).mean(dim=(1, 2, 3), keepdim=True)
            out.sub_(mean).mul_(factor.view(shape)).add_(mean)
        if aug.brightness > 0:
            out.add_((light * _uniform(n, -aug.brightness, aug.brightness, gen, dev)).view(shape))
        out.clamp_(0.0, 1.0)
    return out


# ----------------------------------------------------------------------------- statistics


def channel_stats(
    images: np.ndarray, max_images: int = 20_000, chunk: int = 256, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of ``uint8`` images ``(N, H, W, C)`` scaled to ``[0, 1]``.

    Uses every image when there are at most ``max_images``, else a seeded random sample of that
    many; reads in chunks so a memory-mapped cache is never loaded whole.
    """
    n = len(images)
    if n == 0:
        raise ValueError("cannot compute normalisation statistics of an empty training split")
    idx = np.arange(n) if n <= max_images else np.sort(np.random.default_rng(seed).choice(n, max_images, replace=False))
    c = images.shape[-1]
    s1, s2, count = np.zeros(c), np.zeros(c), 0
    for start in range(0, len(idx), chunk):
        block = np.asarray(images[idx[start : start + chunk]], dtype=np.float64).reshape(-1, c) / 255.0
        s1 += block.sum(0)
        s2 += (block**2).sum(0)
        count += len(block)
    mean = s1 / count
    std = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
    std = np.where(std < 1e-6, 1.0, std)  # a constant channel is left unscaled
    return [float(m) for m in mean], [float(s) for s in std]


# ----------------------------------------------------------------------------- fastai wiring


class ArrayItems:
    """An :class:`ImageDataset` seen by a DataLoader: items are ``(uint8 HWC tensor, target)``.

    ``batch(indices)`` reads a whole batch with one fancy index, which is what the loaders use.
    ``vocab`` and ``c`` are what fastai's ``Learner`` and interpretation look for.
    """

    def __init__(self, ds: ImageDataset) -> None:
        self.ds = ds
        # a CategoryMap, not a list: fastai reads a plain list as one vocabulary per target
        self.vocab = CategoryMap(list(ds.classes), sort=False)
        self.c = len(ds.classes)
        self.n_inp = 1
        self.task = ds.task

    def __len__(self) -> int:
        return len(self.ds)

    def _target(self, labels: np.ndarray) -> torch.Tensor:
        if self.task == "multilabel":
            return torch.as_tensor(np.asarray(labels, dtype=np.float32))
        return torch.as_tensor(np.asarray(labels, dtype=np.int64))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self.ds.images[i])), self._target(self.ds.labels[i])

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        # reading sorted indices from a memory map is sequential; then restore the drawn order
        x = np.empty((len(idx),) + self.ds.images.shape[1:], dtype=np.uint8)
        x[order] = self.ds.images[idx[order]]
        return torch.from_numpy(x), self._target(self.ds.labels[idx])


class ArrayDataLoader(DataLoader):
    """fastai DataLoader over :class:`ArrayItems`: whole-batch reads, then scale/augment/normalise.

    Extra arguments: ``stats`` = ``(mean, std)`` per channel on the ``[0, 1]`` scale; ``augment``
    (``None`` for evaluation); ``seed`` fixes the shuffling and augmentation streams; ``channels``
    (3 repeats a grey image to RGB on the device, for ImageNet-shaped models).
    """

    def __init__(
        self,
        dataset: ArrayItems,
        stats: tuple[Sequence[float], Sequence[float]] | None = None,
        augment: Augment | None = None,
        seed: int = 42,
        channels: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, **kwargs)
        self.stats, self.augment, self.seed, self.channels = stats, augment, seed, channels
        self.rng = random.Random(seed)
        self._gen: torch.Generator | None = None

    def new(self, dataset=None, cls=None, **kwargs: Any) -> ArrayDataLoader:
        """A copy with some arguments changed; keeps statistics, augmentation, seed and channels."""
        for key in ("stats", "augment", "seed", "channels"):
            kwargs.setdefault(key, getattr(self, key))
        return super().new(dataset=dataset, cls=cls, **kwargs)

    # fastai hooks -----------------------------------------------------------
    def before_iter(self) -> None:
        super().before_iter()
        device = self.device if self.device is not None else torch.device("cpu")
        self._gen = torch.Generator(device=device)
        self._gen.manual_seed(self.rng.randint(0, 2**31 - 1))

    def create_item(self, s: int) -> int:
        return s  # the batch is read in one go by create_batch

    def create_batch(self, b: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dataset.batch(b)

    def retain(self, res, b):
        return res

    def after_batch(self, b: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = b
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW, still channels-last in memory
        # the layout the batch had in every recorded run (see augment_batch); the work runs on a contiguous copy
        layout = torch.contiguous_format if x.shape[1] == 1 else torch.channels_last
        x = x.contiguous().float().div_(255.0)
        if self.channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.augment is not None:
            if self._gen is None or self._gen.device.type != x.device.type:
                # the batch landed on another device than announced: a generator there, seeded from
                # this loader's stream so that epochs still differ
                self._gen = torch.Generator(device=x.device)
                self._gen.manual_seed(self.rng.randint(0, 2**31 - 1))
            x = augment_batch(x, self.augment, self._gen, mean_layout=layout)
        if self.stats is not None:
            mean = torch.tensor(self.stats[0], dtype=x.dtype, device=x.device)
            std = torch.tensor(self.stats[1], dtype=x.dtype, device=x.device)
            if mean.numel() == 1 and x.shape[1] == 3:
                mean, std = mean.expand(3), std.expand(3)
            x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        return x.contiguous(), y

    def decode_batch(self, b, max_n: int = 9, full: bool = True):
        """Undo normalisation: images back in ``[0, 1]`` NCHW, targets unchanged."""
        x, y = b[0], b[1]
        if self.stats is not None:
            mean = torch.tensor(self.stats[0], device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.stats[1], device=x.device).view(1, -1, 1, 1)
            x = x * std + mean
        return x[:max_n].clamp(0, 1), y[:max_n]


class ArrayDataLoaders(DataLoaders):
    """fastai ``DataLoaders`` that also keep the normalisation and build eval loaders from an ImageDataset."""

    normalization: tuple[list[float], list[float]]
    vocab: CategoryMap
    task: str

    def test_dl(self, test_items: ImageDataset, **kwargs: Any) -> ArrayDataLoader:  # type: ignore[override]
        """Loader for another split (no augmentation, no shuffling, training statistics)."""
        return make_eval_loader(test_items, self, **kwargs)


def make_dataloaders(
    train: ImageDataset,
    valid: ImageDataset,
    batch_size: int,
    *,
    augment: Augment | None = None,
    device: Any = None,
    seed: int = 42,
    num_workers: int = 0,
    channels: int | None = None,
    stats: tuple[Sequence[float], Sequence[float]] | None = None,
) -> ArrayDataLoaders:
    """fastai ``DataLoaders`` for training on ``train`` and validating on ``valid``.

    ``x`` batches are float32 NCHW normalised with the per-channel mean/std of ``train`` (or the
    given ``stats``, e.g. ImageNet's for a pretrained model); ``y`` is int64 ``(N,)`` or, for
    multi-label, float32 ``(N, L)``. ``augment`` applies to the training loader only. The training
    loader shuffles and drops an incomplete last batch (when there is more than one batch);
    ``seed`` makes both the order and the augmentation repeatable. ``device`` defaults to
    :func:`helpers.config.get_device`. Set ``channels=3`` to repeat grey images to RGB.

    The result also carries ``normalization`` (mean, std), ``vocab`` (class names), ``c`` and ``task``.
    """
    from .. import config

    if train.classes != valid.classes or train.task != valid.task:
        raise ValueError(f"train and valid disagree on classes/task: {train!r} vs {valid!r}")
    if train.images.shape[1:3] != valid.images.shape[1:3]:
        raise ValueError(
            f"train images {train.images.shape[1:]} and valid images {valid.images.shape[1:]} differ in size"
        )
    dev = config.get_device() if device is None else torch.device(device)
    mean, std = (list(stats[0]), list(stats[1])) if stats is not None else channel_stats(train.images)
    common = dict(stats=(mean, std), seed=seed, channels=channels, num_workers=num_workers, device=dev)
    drop_last = len(train) > batch_size
    train_dl = ArrayDataLoader(
        ArrayItems(train), bs=batch_size, shuffle=True, drop_last=drop_last, augment=augment, **common
    )
    valid_dl = ArrayDataLoader(
        ArrayItems(valid), bs=batch_size, shuffle=False, drop_last=False, augment=None, **{**common, "seed": seed + 1}
    )
    dls = ArrayDataLoaders(train_dl, valid_dl, device=dev)
    dls.normalization = (mean, std)
    dls.vocab = train_dl.dataset.vocab
    dls.task = train.task
    dls.augment = augment
    return dls


def make_eval_loader(ds: ImageDataset, dls: DataLoaders, batch_size: int | None = None) -> ArrayDataLoader:
    """A loader for ``ds`` (a test split, say) that matches ``dls.valid``.

    Same statistics, no augmentation, in order.
    """
    valid = dls.valid
    if getattr(valid, "vocab", None) is not None and list(valid.vocab) != list(ds.classes):
        raise ValueError(f"{ds!r} has classes {ds.classes}, the loaders were built for {list(valid.vocab)}")
    return valid.new(
        dataset=ArrayItems(ds), bs=batch_size or valid.bs, shuffle=False, drop_last=False, augment=None, n=len(ds)
    )
