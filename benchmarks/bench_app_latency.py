"""App latency: from the uploaded file's bytes to the answer, on the CPU, heatmap included.

What is timed is :func:`helpers.app.classify_one` on an :class:`~helpers.app.Upload` holding the
file's bytes, i.e. everything the kernel does after the browser has sent the file: decode and
preprocess (:func:`helpers.preprocessing.prepare_file`, the training cache's own function: pad,
resize; then the normalisation), predict (softmax), heatmap (Grad-CAM for the ResNet, attention
rollout for the ViT) and the overlay. Network transfer and the browser's
drawing are not included.

Two models the size of those the book trains, at 224 px and 3 channels: ResNet-18 (11.2 M
parameters) and ViT-Tiny/16 (5.5 M). Their weights are random (timing does not depend on them).
The images are real samples when ``MEDVIT_DATA`` has them (a 360×363 PBC JPEG, a 1024×1024 NIH PNG,
a 1024×1024 MIAS PGM), else synthetic PNGs of the same sizes.

    python benchmarks/bench_app_latency.py                 # 3 warm-up + 20 timed runs per case
    python benchmarks/bench_app_latency.py --repeats 50 --threads 2 --check

It prints the median and 90th percentile per step and in total; ``--check`` exits with status 1
when a median total is above the 0.5 s target.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import app, runinfo  # noqa: E402
from helpers.testing import find_sample, make_untrained_checkpoint  # noqa: E402

TARGET_S = 0.5
MODELS = ("resnet18", "vit_tiny_patch16_224")


def sample_files() -> list[tuple[str, bytes, str]]:
    """``(name, bytes, origin)`` of one image per task: real samples when present, else synthetic."""
    from PIL import Image

    out = []
    for task, shape in (("blood", (363, 360, 3)), ("chest", (1024, 1024)), ("mammo", (1024, 1024))):
        path = find_sample(task)
        if path is not None:
            out.append((path.name, path.read_bytes(), f"real ({task})"))
            continue
        rng = np.random.default_rng(0)
        arr = rng.integers(0, 255, shape, dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        out.append((f"synthetic_{task}.png", buf.getvalue(), f"synthetic ({task})"))
    return out


def bench(model_name: str, files: list[tuple[str, bytes, str]], repeats: int, warmup: int) -> list[dict]:
    folder = Path(tempfile.mkdtemp()) / model_name
    make_untrained_checkpoint(folder, "blood", model_name, input_size=224, in_chans=3)
    model, card = app.load_model(folder)
    rows = []
    for name, data, origin in files:
        upload = app.Upload(name, data, len(data))
        for _ in range(warmup):
            app.classify_one(upload, model, card)
        times: dict[str, list[float]] = {}
        for _ in range(repeats):
            res = app.classify_one(upload, model, card)
            assert res.ok and res.overlay is not None, res.error or res.notes
            for k, v in res.seconds.items():
                times.setdefault(k, []).append(v)
        row = {
            "model": model_name,
            "file": name,
            "origin": origin,
            "bytes": len(data),
            "shape": "×".join(map(str, res.original_shape)),
            "heatmap": res.heatmap_method,
        }
        for k, v in times.items():
            row[f"{k}_median_s"] = float(np.median(v))
            row[f"{k}_p90_s"] = float(np.percentile(v, 90))
        rows.append(row)
        print(
            f"{model_name:<22} {name:<18} {row['shape']:<14} "
            + "  ".join(
                f"{k} {1000 * row[f'{k}_median_s']:6.1f}" for k in ("decode", "preprocess", "predict", "heatmap")
            )
            + f"  | total median {row['total_median_s']:.3f} s, p90 {row['total_p90_s']:.3f} s",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when a median total is above {TARGET_S} s")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    hw = runinfo.hardware()
    print(
        f"CPU: {hw['cpu']}, {hw['cpu_cores']} cores, torch threads {torch.get_num_threads()}, device cpu; "
        f"{args.warmup} warm-up + {args.repeats} timed runs per case; times in ms (medians)"
    )
    files = sample_files()
    t0 = time.perf_counter()
    rows = [r for m in MODELS for r in bench(m, files, args.repeats, args.warmup)]
    print(f"wall time {time.perf_counter() - t0:.0f} s")
    worst = max(r["total_median_s"] for r in rows)
    print(f"slowest median total: {worst:.3f} s (target < {TARGET_S} s per image, heatmap included)")
    if args.json:
        args.json.write_text(json.dumps({"hardware": hw, "rows": rows}, indent=2))
    return 1 if args.check and worst > TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
