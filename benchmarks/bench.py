"""``make bench``: one table of the book's performance figures, each ratio measured side by side.

* **loader**: the decode-once cache against per-image PIL decoding (images/s, ratio from epoch 2 on;
  ``bench_loader.py``; needs the PBC sample under ``MEDVIT_DATA``);
* **training loop**: a ``helpers.train`` step against a bare PyTorch loop on the same model and batch,
  interleaved step by step in one process, the median of the per-epoch ratios of CPU time and of wall
  time (``bench_train_overhead.py``; target: at most 5 % more);
* **app**: upload bytes → probabilities + heatmap, median and 90th percentile per task's default
  model (``bench_app_latency.py``);
* **chapters** (``--chapters smoke,quick``): each chapter's wall time executed with papermill at
  those profiles (minutes at ``quick``; off unless asked);
* **GPU** (when CUDA is present): training images/s of ResNet-50 and ViT-B/16 at 224 px, float32 /
  mixed precision, with and without ``channels_last``.

The header gives the machine, the torch threads and the load average before and after: figures
taken on a busy machine say so.

    python benchmarks/bench.py                       # loader, loop, app (about two minutes idle)
    python benchmarks/bench.py --chapters smoke --json bench.json
    python benchmarks/bench.py --json benchmarks/results/cpu-2core.json   # the table the appendix shows
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import bench_app_latency  # noqa: E402
import bench_loader  # noqa: E402
import bench_train_overhead  # noqa: E402

from helpers import config, runinfo  # noqa: E402

OVERHEAD_TARGET = 0.05
#: The decode-once cache with batch augmentation against a per-image pipeline that augments each image.
AUGMENTED_TARGET = 10.0


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _commit() -> str:
    """The checkout's short commit, or "unknown" outside a git checkout."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def loader_rows(size: int = 64, epochs: int = 3, batch_size: int = 64) -> list[tuple[str, str, str]]:
    """Cache vs PIL on the PBC sample, from epoch 2 on (the cache's first epoch decodes every file)."""
    import tempfile

    from helpers.data.pbc import read_pbc

    root = config.data_root() / "pbc"
    if not root.is_dir():
        return [("loader", "cache vs PIL", f"skipped: no PBC data at {root} (set MEDVIT_DATA)")]
    cat = read_pbc(root)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MEDVIT_CACHE"] = tmp
        cache, stats, build = bench_loader.run_cache(size, batch_size, epochs, None, 0)
    pil = bench_loader.run_pil(cat.files, cat.labels, size, batch_size, epochs, stats, None, 0)
    c, p = statistics.median(cache[1:]), statistics.median(pil[1:])
    what = f"PBC sample, {len(cat)} images, {size} px, batch {batch_size}"
    # with augmentation: the cache augments each batch with tensor operations; the per-image pipeline
    # augments each PIL image with torchvision's transforms, as an ImageFolder pipeline does
    aug = bench_loader.Augment.fastai()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MEDVIT_CACHE"] = tmp
        cache_aug, stats, _ = bench_loader.run_cache(size, batch_size, epochs, aug, 0)
    pil_aug = bench_loader.run_pil(cat.files, cat.labels, size, batch_size, epochs, stats, None, 0, per_image=aug)
    ca, pa = statistics.median(cache_aug[1:]), statistics.median(pil_aug[1:])
    verdict = "within" if ca / pa >= AUGMENTED_TARGET else "BELOW"
    return [
        ("loader", f"cache, {what}", f"{c:,.0f} images/s (decode once: {build:.2f} s)"),
        ("loader", f"per-image PIL, {what}", f"{p:,.0f} images/s"),
        ("loader", "cache / PIL", f"{c / p:.1f}x"),
        ("loader", "cache + batch augmentation (Augment.fastai)", f"{ca:,.0f} images/s"),
        ("loader", "per-image PIL + per-image torchvision augmentation", f"{pa:,.0f} images/s"),
        ("loader", "augmented: cache / PIL", f"{ca / pa:.1f}x ({verdict} the {AUGMENTED_TARGET:.0f}x target)"),
    ]


def overhead_rows(epochs: int = 9, steps: int = 12, size: int = 32, batch_size: int = 64) -> list[tuple]:
    """helpers.train vs a bare loop: ResNet-18, Adam, constant rate; interleaved steps, median epoch ratio."""
    ds = bench_train_overhead.make_data(steps * batch_size, size)
    valid = bench_train_overhead.make_data(batch_size, size, seed=1)
    times = bench_train_overhead.paired_loops(ds, valid, "resnet18", batch_size, epochs, 1e-3, seed=0)
    what = f"ResNet-18, {size} px, batch {batch_size}, {steps} steps + 1 validation batch per epoch"
    rows = []
    for label, kind in (("CPU time", "cpu"), ("wall time", "wall")):
        mo, mb, overhead, (lo, hi) = bench_train_overhead.paired_overhead(times, kind)
        verdict = "within" if overhead <= OVERHEAD_TARGET else "ABOVE"
        rows.append(
            (
                "training loop",
                f"{label}: helpers.train vs bare loop ({what}; {epochs - 1} epochs, interleaved step by step)",
                f"{mo / steps * 1000:.1f} vs {mb / steps * 1000:.1f} ms/step; median epoch ratio {overhead:+.1%} "
                f"({lo:+.1%} to {hi:+.1%}) "
                f"({verdict} the {OVERHEAD_TARGET:.0%} target)",
            )
        )
    return rows


def app_rows(repeats: int = 20) -> list[tuple]:
    """Upload bytes → probabilities + heatmap + rendered answer, per task's default app model."""
    rows = []
    for case in bench_app_latency.cases(large=False):
        r = bench_app_latency.bench(case, repeats, warmup=3)
        rows.append(
            (
                "app",
                f"{r['task']}: {r['model']} {r['input']}, {r['file']} ({r['origin']})",
                f"median {r['answer_median_s'] * 1000:.0f} ms, p90 {r['answer_p90_s'] * 1000:.0f} ms",
            )
        )
    return rows


def chapter_rows(profiles: list[str], timeout: float = 1800) -> list[tuple]:
    """Each chapter of ``_toc.yml``'s folders executed with papermill at each profile (wall time)."""
    import subprocess
    import tempfile

    rows = []
    chapters = sorted(p for p in (HERE.parent / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in str(p))
    for profile in profiles:
        for nb in chapters:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                cmd = [sys.executable, "-m", "papermill", str(nb), f"{tmp}/out.ipynb", "-p", "PROFILE", profile]
                proc = subprocess.run(cmd, cwd=nb.parent, capture_output=True, text=True, timeout=timeout)
                took = time.perf_counter() - t0
            status = "" if proc.returncode == 0 else " (FAILED)"
            rows.append(("chapter", f"{nb.relative_to(HERE.parent)} at {profile}", f"{took:.0f} s{status}"))
    return rows


def gpu_rows(steps: int = 20, batch_size: int = 64) -> list[tuple]:
    """Training images/s on CUDA at 224 px: ResNet-50 and ViT-B/16, fp32 / AMP, ± channels_last."""
    if not torch.cuda.is_available():
        return [("GPU", "training throughput", "skipped: no CUDA device")]
    from helpers.models.vision import create_model

    rows = []
    amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    for name in ("resnet50", "vit_base_patch16_224"):
        for amp, cl in ((False, False), (True, False), (False, True), (True, True)):
            model = create_model(name, num_classes=2, pretrained=False).cuda()
            x = torch.randn(batch_size, 3, 224, 224, device="cuda")
            y = torch.randint(0, 2, (batch_size,), device="cuda")
            if cl:
                model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
            for i in range(steps + 5):  # 5 warm-up steps
                if i == 5:
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                with torch.autocast("cuda", dtype=amp_dtype, enabled=amp):
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            rate = steps * batch_size / (time.perf_counter() - t0)
            mode = f"{'AMP ' + str(amp_dtype).split('.')[-1] if amp else 'fp32'}{', channels_last' if cl else ''}"
            rows.append(("GPU", f"{name}, 224 px, batch {batch_size}, {mode}", f"{rate:,.0f} images/s"))
            del model, opt
            torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", default="", help="profiles to time every chapter at, e.g. smoke,quick")
    parser.add_argument("--epochs", type=int, default=9, help="paired training-loop epochs (the first a warm-up)")
    parser.add_argument("--skip", default="", help="parts to leave out: loader,loop,app,gpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each part's lines as they come, also into a file
    hw, start_load, t0 = runinfo.hardware(), _load(), time.perf_counter()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(
        f"CPU {hw['cpu']}, {hw['cpu_cores']} cores, torch {torch.__version__} with {torch.get_num_threads()} "
        f"threads, GPU {gpu}; load average {start_load} (1, 5, 15 min) at the start",
        flush=True,
    )
    skip = set(filter(None, args.skip.split(",")))
    parts = [
        ("loader", loader_rows),
        ("loop", lambda: overhead_rows(args.epochs)),
        ("app", app_rows),
        ("gpu", gpu_rows),
    ]
    rows = [row for key, part in parts if key not in skip for row in part()]
    rows += chapter_rows([p for p in args.chapters.split(",") if p])
    width = max(len(r[1]) for r in rows)
    print(f"\n{'part':<14} {'what':<{width}}  figure")
    for part, what, figure in rows:
        print(f"{part:<14} {what:<{width}}  {figure}")
    print(f"\nwall time {time.perf_counter() - t0:.0f} s; load average {_load()} at the end (was {start_load})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": _commit(),
            "torch": torch.__version__,
            "hardware": hw,
            "load": [start_load, _load()],
            "wall_s": round(time.perf_counter() - t0),
            "rows": rows,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
