"""Measuring attention's cost: wall time, peak memory, and the exponent of their growth with ``L``."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["peak_memory_bytes", "attention_cost", "fit_exponent", "row_error"]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C-level stderr (the profiler's start/stop lines) for the duration."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


def peak_memory_bytes(fn: Callable[[], object], device: torch.device | str = "cpu") -> int:
    """Peak of memory allocated *during* ``fn()`` above what was allocated before, in bytes.

    On CUDA: ``torch.cuda.max_memory_allocated``. On CPU: the PyTorch profiler's allocation
    events (``profile_memory=True``) replayed in time order, keeping the running maximum.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.events() if e.cpu_memory_usage != 0), key=lambda e: e.time_range.start)
    current = peak = 0
    for e in events:
        current += e.cpu_memory_usage
        peak = max(peak, current)
    return int(peak)


def attention_cost(
    attention: Callable[[Tensor, Tensor, Tensor], object],
    length: int,
    d_model: int = 64,
    batch: int = 1,
    repeats: int = 3,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Time and memory of one self-attention call on a random ``(batch, length, d_model)`` input.

    ``attention(x, x, x)`` is called without gradients; the time is the best of ``repeats`` calls
    after one warm-up call (seconds), the memory is :func:`peak_memory_bytes` of one call.
    Returns ``{"length", "seconds", "peak_mib"}``.
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, d_model, generator=gen).to(device)

    def call() -> object:
        with torch.no_grad():
            return attention(x, x, x)

    call()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    peak = peak_memory_bytes(call, device)
    return {"length": length, "seconds": best, "peak_mib": peak / 2**20}


def fit_exponent(lengths: Sequence[float], values: Sequence[float]) -> float:
    """The slope ``b`` of the least-squares fit ``log value = a + b log length``: cost grows like ``L^b``.

    Raises ``ValueError`` for fewer than two points or a value that is not positive.
    """
    x, y = np.asarray(lengths, dtype=float), np.asarray(values, dtype=float)
    if x.size < 2 or x.size != y.size:
        raise ValueError(f"need at least two (length, value) pairs of equal count, got {x.size} and {y.size}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError(f"lengths and values must be positive to fit a power law, got {list(y)}")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def row_error(approx: Tensor, exact: Tensor) -> float:
    """Mean total-variation distance ``0.5 sum_j |a_ij - e_ij|`` between attention rows (0: equal, 1: disjoint)."""
    return float(0.5 * (approx - exact).abs().sum(-1).mean())
