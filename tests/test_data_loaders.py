"""helpers.data.loaders: fastai DataLoaders from uint8 arrays, train-only statistics, batch augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers.data.base import ImageDataset
from helpers.data.loaders import Augment, augment_batch, channel_stats, make_dataloaders, make_eval_loader


def _ds(n, split, task="multiclass", size=12, channels=3, seed=0, lo=0, hi=256) -> ImageDataset:
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]
    images = rng.integers(lo, hi, (n, size, size, channels), dtype=np.uint8)
    if task == "multilabel":
        labels = (rng.random((n, 3)) < 0.4).astype(np.float32)
    else:
        labels = rng.integers(0, 3, n).astype(np.int64)
    return ImageDataset("toy", split, task, classes, images, labels, "synthetic", ids=[f"{split}{i}" for i in range(n)])


def _all(dl):
    xs, ys = zip(*[(x.clone(), y.clone()) for x, y in dl])
    return torch.cat(xs), torch.cat(ys)


def test_shapes_and_dtypes_multiclass_and_multilabel():
    for task, ydtype in (("multiclass", torch.int64), ("multilabel", torch.float32)):
        dls = make_dataloaders(_ds(40, "train", task), _ds(10, "valid", task, seed=1), 8, device="cpu")
        x, y = dls.one_batch()
        assert x.shape == (8, 3, 12, 12) and x.dtype == torch.float32
        assert y.dtype == ydtype and y.shape == ((8,) if task == "multiclass" else (8, 3))
        assert dls.c == 3 and list(dls.vocab) == ["a", "b", "c"] and dls.task == task
        assert len(dls.train) == 5 and len(dls.valid) == 2


def test_normalization_from_training_split_only():
    train = _ds(30, "train", lo=0, hi=100, seed=2)
    valid = _ds(10, "valid", lo=150, hi=256, seed=3)
    dls = make_dataloaders(train, valid, 10, device="cpu")
    mean, std = dls.normalization
    t = train.images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(mean, t.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, t.std(0), rtol=1e-6)
    xv, _ = _all(dls.valid)
    raw = torch.from_numpy(valid.images).permute(0, 3, 1, 2).float() / 255
    expected = (raw - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(xv, expected)
    # training-split statistics normalise the training images to mean 0, std 1
    xt, _ = _all(make_dataloaders(train, valid, 10, device="cpu").train)
    assert abs(float(xt.mean())) < 0.05 and abs(float(xt.std()) - 1) < 0.05


def test_channel_stats_sampled_matches_full_roughly():
    images = np.random.default_rng(0).integers(0, 256, (300, 8, 8, 1), dtype=np.uint8)
    full = channel_stats(images)
    sampled = channel_stats(images, max_images=100)
    assert abs(full[0][0] - sampled[0][0]) < 0.02


def test_augmentation_changes_train_not_valid():
    train, valid = _ds(32, "train"), _ds(16, "valid", seed=1)
    plain = make_dataloaders(train, valid, 8, device="cpu", seed=5)
    aug = make_dataloaders(train, valid, 8, device="cpu", seed=5, augment=Augment.fastai())
    xp, yp = _all(plain.train)
    xa, ya = _all(aug.train)
    torch.testing.assert_close(yp, ya)  # same order of images
    assert not torch.allclose(xp, xa)
    assert (xp - xa).abs().amax(dim=(1, 2, 3)).gt(1e-3).float().mean() > 0.5  # most images changed
    torch.testing.assert_close(_all(plain.valid)[0], _all(aug.valid)[0])


def test_determinism_with_seed():
    train, valid = _ds(32, "train"), _ds(8, "valid", seed=1)
    a = _all(make_dataloaders(train, valid, 8, device="cpu", seed=7, augment=Augment.thesis002()).train)
    b = _all(make_dataloaders(train, valid, 8, device="cpu", seed=7, augment=Augment.thesis002()).train)
    c = _all(make_dataloaders(train, valid, 8, device="cpu", seed=8, augment=Augment.thesis002()).train)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    assert not torch.allclose(a[0], c[0])
    # a second epoch is a different shuffle and different augmentation
    dls = make_dataloaders(train, valid, 8, device="cpu", seed=7, augment=Augment.thesis002())
    e1, e2 = _all(dls.train), _all(dls.train)
    assert not torch.equal(e1[1], e2[1]) or not torch.allclose(e1[0], e2[0])


def test_augment_batch_flip_only_and_identity():
    x = torch.rand(64, 1, 6, 6)
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(x, Augment.flip_only(), gen)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54
    off = Augment(flip=False, max_rotate=0, min_zoom=1, max_zoom=1, brightness=0, contrast=0)
    assert torch.equal(augment_batch(x, off, gen), x)


def test_a_contiguous_batch_augments_bit_for_bit_as_the_channels_last_one_did():
    # the loaders hand augment_batch a contiguous copy of their channels-last batch (faster) and ask for the
    # contrast's mean in the old layout: every augmented pixel must be what the channels-last batch gave
    cache = torch.randint(0, 256, (32, 24, 24, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    as_before = cache.permute(0, 3, 1, 2).float().div_(255.0)  # channels-last in memory
    assert not as_before.is_contiguous()
    for seed in range(3):
        for aug in (Augment.fastai(), Augment.thesis002()):
            old = augment_batch(as_before, aug, torch.Generator().manual_seed(seed))
            new = augment_batch(
                as_before.contiguous(), aug, torch.Generator().manual_seed(seed), mean_layout=torch.channels_last
            )
            assert new.is_contiguous() and torch.equal(old, new), (seed, aug)


def test_augment_zoom_in_keeps_centre():
    x = torch.zeros(4, 1, 33, 33)
    x[:, :, 16, 16] = 1.0
    aug = Augment(flip=False, max_rotate=0, min_zoom=2.0, max_zoom=2.0, brightness=0, contrast=0, p_affine=1.0)
    out = augment_batch(x, aug, torch.Generator().manual_seed(0))
    # zooming in by 2 spreads the centre pixel over a 2x2..3x3 patch around the centre, nowhere else
    inside, total = float(out[:, :, 14:19, 14:19].sum()), float(out.sum())
    assert inside == pytest.approx(total, rel=1e-5) and total > 4 * 1.5


def test_grey_to_three_channels():
    dls = make_dataloaders(
        _ds(16, "train", channels=1), _ds(8, "valid", channels=1, seed=1), 8, device="cpu", channels=3
    )
    x, _ = dls.one_batch()
    assert x.shape == (8, 3, 12, 12) and torch.equal(x[:, 0], x[:, 2])


def test_eval_loader_in_order_with_train_stats():
    train, valid, test = _ds(24, "train"), _ds(8, "valid", seed=1), _ds(11, "test", seed=2)
    dls = make_dataloaders(train, valid, 8, device="cpu", augment=Augment.fastai())
    for dl in (make_eval_loader(test, dls), dls.test_dl(test)):
        x, y = _all(dl)
        assert x.shape[0] == 11 and torch.equal(y, torch.from_numpy(test.labels))
        assert dl.augment is None and dl.stats == dls.normalization
    other = ImageDataset("x", "test", "multiclass", ["p", "q", "r"], test.images, test.labels, "synthetic")
    with pytest.raises(ValueError, match="classes"):
        make_eval_loader(other, dls)


def test_mismatched_splits_refused():
    with pytest.raises(ValueError):
        make_dataloaders(_ds(8, "train"), _ds(8, "valid", size=10), 4, device="cpu")


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_fastai_learner_fits_and_predicts(task):
    import fastai.callback.progress  # noqa: F401  (adds Learner.no_bar)
    from fastai.learner import Learner
    from fastai.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat

    torch.manual_seed(0)
    train, valid, test = _ds(32, "train", task), _ds(16, "valid", task, seed=1), _ds(10, "test", task, seed=2)
    dls = make_dataloaders(train, valid, 16, device="cpu", augment=Augment.fastai())
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    loss = CrossEntropyLossFlat() if task == "multiclass" else BCEWithLogitsLossFlat()
    learn = Learner(dls, model, loss_func=loss)
    before = [p.detach().clone() for p in model.parameters()]
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-2)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with learn.no_bar():
        preds, targs = learn.get_preds()
        tpreds, ttargs = learn.get_preds(dl=dls.test_dl(test))
    assert preds.shape == (16, 3) and targs.shape == ((16,) if task == "multiclass" else (16, 3))
    assert tpreds.shape == (10, 3)
    if task == "multiclass":
        from fastai.interpret import ClassificationInterpretation

        with learn.no_bar():
            cm = ClassificationInterpretation.from_learner(learn).confusion_matrix()
        assert cm.shape == (3, 3) and cm.sum() == 16


def test_real_sample_through_loader(real_data):
    from helpers.data.medmnist import read_medmnist_npz

    path = real_data / "medmnist" / "breastmnist.npz"
    train = read_medmnist_npz(path, "breastmnist", "train")
    valid = read_medmnist_npz(path, "breastmnist", "valid")
    dls = make_dataloaders(train, valid, 32, device="cpu", augment=Augment.fastai())
    x, y = dls.one_batch()
    assert x.shape == (32, 1, 28, 28) and y.dtype == torch.int64 and set(y.tolist()) <= {0, 1}
