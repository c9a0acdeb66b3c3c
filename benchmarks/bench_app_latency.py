"""App latency: from the uploaded file's bytes to the answer on the page, on the CPU, heatmap included.

What is timed is what the kernel does between the click on *Classify* and the answer:
:func:`helpers.app.classify_one` on an :class:`~helpers.app.Upload` holding the file's bytes
(decode and preprocess with :func:`helpers.preprocessing.prepare_file`, the training cache's own
function; predict; the heatmap on the layer :func:`helpers.explain.explanation_plan` picks, and
the overlay; the check against the training images' statistics) and then
:func:`helpers.app.result_html` (the PNGs and the HTML the page receives). Network transfer and the
browser's drawing are not included.

The models are each task's default, as ``python -m helpers app-models`` trains them
(:mod:`helpers.app_models`) at the ``quick`` profile's 64 px: a ResNet-18 on RGB blood cells,
a ViT-Tiny with 8 px patches on grey chest X-rays (multi-label), a ResNet-18 on grey mammograms;
``--large`` adds the same architectures at 224 px (ResNet-18 11.2 M parameters, ViT-Tiny/16
5.5 M). Their weights are random (timing does not depend on them); their cards hold image statistics
(of the sample itself), so the check against the training images runs too. The images are real samples
when ``MEDVIT_DATA`` has them (a 360×363 PBC JPEG, a 1024×1024 NIH PNG, a 1024×1024 MIAS PGM),
else synthetic PNGs of the same sizes.

    python benchmarks/bench_app_latency.py                 # 3 warm-up + 20 timed runs per case
    python benchmarks/bench_app_latency.py --repeats 50 --threads 2 --large --check

It prints the load average, then the median and 90th percentile per step and in total;
``--check`` exits with status 1 when a median total is above the 0.5 s target.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import app, runinfo  # noqa: E402
from helpers.app_models import APP_MODELS, app_config  # noqa: E402
from helpers.imagestats import training_profile  # noqa: E402
from helpers.preprocessing import prepare_file  # noqa: E402
from helpers.testing import find_sample, make_untrained_checkpoint  # noqa: E402

TARGET_S = 0.5
#: Each task's default model: the input channels of its data (PBC is RGB; PneumoniaMNIST and MIAS are grey).
DEFAULT_CHANNELS = {"blood": 3, "chest": 1, "mammo": 1}
SHAPES = {"blood": (363, 360, 3), "chest": (1024, 1024), "mammo": (1024, 1024)}


def sample_file(task: str) -> tuple[str, bytes, str]:
    """``(name, bytes, origin)`` of one image for ``task``: a real sample when present, else synthetic."""
    from PIL import Image

    path = find_sample(task)
    if path is not None:
        return path.name, path.read_bytes(), f"real ({task})"
    arr = np.random.default_rng(0).integers(0, 255, SHAPES[task], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return f"synthetic_{task}.png", buf.getvalue(), f"synthetic ({task})"


def cases(large: bool) -> list[tuple[str, str, int, int, dict]]:
    """``(task, architecture, input size, channels, model kwargs)`` of each model timed."""
    out = []
    for task, (_, arch) in APP_MODELS.items():
        kwargs = dict(app_config(task, image_size=64).model_kwargs or {})
        out.append((task, arch, 64, DEFAULT_CHANNELS[task], kwargs))
    if large:
        out += [("blood", "resnet18", 224, 3, {}), ("blood", "vit_tiny_patch16_224", 224, 3, {})]
    return out


def bench(case: tuple[str, str, int, int, dict], repeats: int, warmup: int) -> dict:
    task, arch, size, chans, kwargs = case
    name, data, origin = sample_file(task)
    image, _ = prepare_file(io.BytesIO(data), size, chans)
    stats, background = training_profile(image[None], chans)
    folder = Path(tempfile.mkdtemp()) / f"{task}-{arch}-{size}"
    fields = {"image_stats": stats, "background": background}
    make_untrained_checkpoint(folder, task, arch, size, chans, model_kwargs=kwargs, card_fields=fields)
    model, card = app.load_model(folder)
    upload = app.Upload(name, data, len(data))
    for _ in range(warmup):
        app.result_html(app.classify_one(upload, model, card))
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = app.classify_one(upload, model, card)
        page = app.result_html(res)
        answer = time.perf_counter() - t0
        assert res.ok and res.overlay is not None and "medvit-heatmap" in page, res.error or res.heatmap_note
        for k, v in {**res.seconds, "render": answer - res.seconds["total"], "answer": answer}.items():
            times.setdefault(k, []).append(v)
    row = {
        "task": task,
        "model": arch,
        "input": f"{size} px, {chans} ch" + (f", {kwargs}" if kwargs else ""),
        "file": name,
        "origin": origin,
        "shape": "×".join(map(str, res.original_shape)),
        "heatmap": res.heatmap_method,
    }
    for k, v in times.items():
        row[f"{k}_median_s"] = float(np.median(v))
        row[f"{k}_p90_s"] = float(np.percentile(v, 90))
    steps = ("decode", "preprocess", "predict", "heatmap", "render")
    print(
        f"{task:<6} {arch:<21} {size:>3} px {name:<18} "
        + "  ".join(f"{k} {1000 * row[f'{k}_median_s']:6.1f}" for k in steps)
        + f"  | answer median {row['answer_median_s']:.3f} s, p90 {row['answer_p90_s']:.3f} s  [{res.heatmap_method}]",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--large", action="store_true", help="also time ResNet-18 and ViT-Tiny at 224 px")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when a median answer is above {TARGET_S} s")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    hw = runinfo.hardware()
    load = os.getloadavg()
    print(
        f"CPU: {hw['cpu']}, {hw['cpu_cores']} cores, torch threads {torch.get_num_threads()}, device cpu; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min) at the start; "
        f"{args.warmup} warm-up + {args.repeats} timed runs per case; times in ms (medians)"
    )
    t0 = time.perf_counter()
    rows = [bench(c, args.repeats, args.warmup) for c in cases(args.large)]
    load = os.getloadavg()
    print(f"wall time {time.perf_counter() - t0:.0f} s; load average at the end {load[0]:.2f} {load[1]:.2f}")
    worst = max(r["answer_median_s"] for r in rows)
    print(f"slowest median answer: {worst:.3f} s (target < {TARGET_S} s per image, heatmap included)")
    if args.json:
        args.json.write_text(json.dumps({"hardware": hw, "rows": rows}, indent=2))
    return 1 if args.check and worst > TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
