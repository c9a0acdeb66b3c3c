"""The app's blood-cell model on PBC images it never saw: accuracy with 95 % intervals, and where its maps point.

The model is the one the app offers first for blood cells (:func:`helpers.app.best_model` over the
checkpoints under ``$MEDVIT_RUNS``, as ``make app-models`` leaves them). The images are every PBC image
under another data root, by default ``../shared/data_large`` (2,001 cells that are not in
``../shared/data``, on which nothing in this book is trained or tuned). Each image goes through the
app's own preparation (the decode-once cache at the card's size and normalisation), the model
predicts it, and:

* accuracy and balanced accuracy get a 95 % percentile-bootstrap interval (1,000 resamples of the
  images), printed beside the card's own test accuracy and its interval, with whether the held-out
  accuracy lies inside that interval;
* Grad-CAM on the layer the app uses (:func:`helpers.explain.explanation_plan`) for the predicted
  class, on the first ``--maps`` images in a stratified order, scored against the stained cell found
  from colour (:mod:`helpers.pointing`): heat share in the cell, the cell's area share, their ratio
  (1: a map that knows nothing) and the pointing game's hit rate.

    python benchmarks/app_heldout.py                       # ../shared/data_large, runs/ of this checkout
    python benchmarks/app_heldout.py --root /data/pbc_other --maps 500

Prints the load average first; timings here are not the point, the figures are.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def served_blood_model():
    """``(model, card, folder)`` of the checkpoint the app offers first for blood cells."""
    from helpers import app

    entries = app.find_models("blood")
    best = app.best_model(entries)
    if best is None:
        raise SystemExit("no usable blood-cell checkpoint under $MEDVIT_RUNS: run `make app-models` first")
    model, card = app.load_model(entries[best])
    return model, card, entries[best].folder


def held_out_images(root: Path, size: int):
    """Every PBC image under ``root`` at ``size`` px (no split, no cap)."""
    from helpers.data.registry import load_dataset

    os.environ["MEDVIT_DATA"] = str(root)
    return load_dataset("pbc", split="all", size=size, profile=None, verbose=False, download=False)


def predictions(model, card, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Class probabilities ``(N, K)`` of uint8 ``(N, H, W, C)`` images, normalised as the card says."""
    from helpers import inference

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.array(images[i : i + batch])).permute(0, 3, 1, 2)
            out.append(torch.softmax(model(inference.normalize(x, card.mean, card.std)), -1).numpy())
    return np.concatenate(out)


def interval(y: np.ndarray, probs: np.ndarray, key: str) -> dict[str, float]:
    """The metric ``key`` of ``helpers.metrics.multiclass_metrics`` with its bootstrap interval."""
    from helpers import metrics

    return metrics.bootstrap_ci(y, probs, lambda a, b: metrics.multiclass_metrics(a, b)[key], n_boot=1000)


def stratified_order(labels: np.ndarray) -> np.ndarray:
    """Indices taking each class in turn, so that the first ``n`` images cover every class."""
    per_class = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = []
    while any(per_class):
        order += [idx.pop(0) for idx in per_class if idx]
    return np.asarray(order)


def pointing_figures(model, card, images: np.ndarray, predicted: np.ndarray, n: int) -> dict:
    """The pointing summary of Grad-CAM maps of the predicted class on ``images`` (uint8 RGB)."""
    from helpers import explain, inference, pointing

    plan = explain.explanation_plan(model, card.input_size)
    layer = dict(model.named_modules())[plan.layer]
    scores = []
    for i in range(0, min(n, len(images)), 32):
        part = np.array(images[i : min(i + 32, n)])
        x = inference.normalize(torch.from_numpy(part).permute(0, 3, 1, 2), card.mean, card.std)
        maps = explain.grad_cam(model, x, target=predicted[i : i + len(part)].tolist(), target_layer=layer)
        scores += [pointing.heat_in_region(m, pointing.stained_cell_mask(im)) for m, im in zip(maps, part)]
    return {**pointing.pointing_summary(scores), "layer": plan.describe()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data_large")
    parser.add_argument("--maps", type=int, default=400, help="images whose Grad-CAM maps are scored")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, torch threads {args.threads}")
    t0 = time.perf_counter()
    model, card, folder = served_blood_model()
    data = held_out_images(args.root, card.input_size)
    if list(data.classes) != list(card.classes):
        raise SystemExit(f"the held-out classes {data.classes} differ from the model's {card.classes}")
    probs = predictions(model, card, data.images)
    acc, bal = interval(data.labels, probs, "accuracy"), interval(data.labels, probs, "balanced_accuracy")
    test, ci = card.metrics.get("test", {}), (card.metrics.get("test_ci") or {}).get("accuracy") or {}
    inside = ci and ci["low"] <= acc["value"] <= ci["high"]
    print(f"model {card.architecture} ({card.input_size} px, {card.dataset}, profile {card.profile}), {folder.name}")
    print(
        f"held-out: {len(data):,} PBC images under {args.root.name}: accuracy {acc['value']:.3f} "
        f"({acc['low']:.3f}-{acc['high']:.3f}), balanced accuracy {bal['value']:.3f} "
        f"({bal['low']:.3f}-{bal['high']:.3f})"
    )
    if ci:
        n_test = (card.metrics.get("n") or {}).get("test", "?")
        print(
            f"card: test accuracy {test.get('accuracy', float('nan')):.3f} ({ci['low']:.3f}-{ci['high']:.3f}) on "
            f"{n_test} test images; held-out accuracy {'inside' if inside else 'OUTSIDE'} the card's interval"
        )
    order = stratified_order(data.labels)[: args.maps]
    figures = pointing_figures(model, card, data.images[order], probs.argmax(1)[order], args.maps)
    print(
        f"Grad-CAM ({figures['layer']}), {figures['n']} images: heat share in the stained cell "
        f"{figures['heat_share']:.3f} vs its area share {figures['area_share']:.3f} (ratio {figures['ratio']:.2f}), "
        f"peak in the cell {figures['hit_rate']:.2f}"
    )
    print(f"wall {time.perf_counter() - t0:.0f} s; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
