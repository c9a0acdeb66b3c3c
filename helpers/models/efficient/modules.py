"""The families as ``nn.Module``s with one interface, ``forward(q, k, v, mask=None)``, and a registry.

:data:`FAMILIES` maps each family's name to a builder ``(dim, length, settings) -> module``;
:func:`build_attention` builds one. Parameter-free families wrap their function
(:class:`FunctionAttention`); Linformer's projections, Fastformer's pooling vectors and output map,
and adaptive span's width are learned parameters.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .common import dense_attention
from .local import adaptive_span_attention, sliding_window_attention, strided_attention
from .lowrank import linformer_attention, pooling_projection
from .lsh import lsh_attention
from .mixing import additive_attention, fourier_mixing
from .performer import favor_attention, orthogonal_gaussian
from .recurrence import segment_recurrent_attention

__all__ = [
    "FamilySettings",
    "FunctionAttention",
    "LinformerAttention",
    "FavorAttention",
    "FastformerAttention",
    "AdaptiveSpanAttention",
    "FAMILIES",
    "EXACT_FAMILIES",
    "build_attention",
]


@dataclass(frozen=True)
class FamilySettings:
    """The sizes each family is built with (change one with ``dataclasses.replace``)."""

    window: int = 32  # sliding window: keys either side
    global_tokens: tuple[int, ...] = (0,)  # sliding window: positions that see and are seen by all
    summary: int = 1  # strided: summary positions per block (blocks of round(sqrt(L)))
    rank: int = 64  # Linformer
    features: int = 64  # Performer
    chunk: int = 64  # Reformer: chunk size; buckets: 2 per chunk-pair, at least 2
    segment: int = 64  # Transformer-XL
    memory: int = 1  # Transformer-XL: cached segments
    max_span: int = 64  # adaptive span: the widest span; computed window is max_span + ramp
    ramp: int = 16
    initial_span: float = 32.0
    seed: int = 0


class FunctionAttention(nn.Module):
    """A parameter-free family: ``fn(q, k, v, mask, **settings(L))``."""

    def __init__(self, fn: Callable[..., Tensor], settings: Callable[[int], dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.fn, self.settings = fn, settings or (lambda length: {})

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """``q, k, v`` ``(..., L, d)``, ``mask`` bool ``(..., L)`` (``True`` at real keys)."""
        return self.fn(q, k, v, mask, **self.settings(k.shape[-2]))


class LinformerAttention(nn.Module):
    """Linformer: learned ``(rank, max_length)`` projections ``E`` (keys), ``F`` (values), started as segment means."""

    def __init__(self, max_length: int, rank: int) -> None:
        super().__init__()
        start = pooling_projection(min(rank, max_length), max_length)
        self.proj_k, self.proj_v = nn.Parameter(start.clone()), nn.Parameter(start.clone())

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """As :func:`~.lowrank.linformer_attention` (``L <= max_length``)."""
        return linformer_attention(q, k, v, mask, proj_k=self.proj_k, proj_v=self.proj_v)


class FavorAttention(nn.Module):
    """Performer's FAVOR+ on the common interface: one fixed ``(features, d)`` random projection."""

    def __init__(self, dim: int, features: int, seed: int = 0) -> None:
        super().__init__()
        self.register_buffer("projection", orthogonal_gaussian(features, dim, torch.Generator().manual_seed(seed)))

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """As :func:`~.performer.favor_attention`."""
        return favor_attention(q, k, v, self.projection, mask)


class FastformerAttention(nn.Module):
    """Fastformer: :func:`~.mixing.additive_attention`, then a linear map, plus the queries."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_q, self.w_k = (
            nn.Parameter(torch.randn(dim) / math.sqrt(dim)),
            nn.Parameter(torch.randn(dim) / math.sqrt(dim)),
        )
        self.out = nn.Linear(dim, dim)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """``out(k_g * v) + q``."""
        return self.out(additive_attention(q, k, v, mask, w_q=self.w_q, w_k=self.w_k)) + q


class AdaptiveSpanAttention(nn.Module):
    """Adaptive span with one learned width (in positions), clamped to ``[0, max_span]``."""

    def __init__(self, max_span: int, ramp: int, initial_span: float) -> None:
        super().__init__()
        self.max_span, self.ramp = max_span, ramp
        self.span = nn.Parameter(torch.tensor(float(initial_span)))

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """As :func:`~.local.adaptive_span_attention` with ``span = self.span``."""
        return adaptive_span_attention(q, k, v, mask, span=self.span, max_span=self.max_span, ramp=self.ramp)


def _buckets(length: int, chunk: int) -> int:
    """Reformer's bucket count for ``length``: about one bucket per chunk, even, at least 2."""
    return max(2, 2 * round(length / chunk / 2))


Builder = Callable[[int, int, FamilySettings], nn.Module]
FAMILIES: dict[str, Builder] = {
    "full softmax": lambda d, n, s: FunctionAttention(dense_attention),
    "sliding window + global (Longformer)": lambda d, n, s: FunctionAttention(
        sliding_window_attention, lambda L: {"window": s.window, "global_tokens": s.global_tokens}
    ),
    "fixed strided (Sparse Transformer)": lambda d, n, s: FunctionAttention(
        strided_attention, lambda L: {"block": max(s.summary, round(math.sqrt(L))), "summary": s.summary}
    ),
    "low rank (Linformer)": lambda d, n, s: LinformerAttention(n, s.rank),
    "kernel features (Performer)": lambda d, n, s: FavorAttention(d, s.features, s.seed),
    "hashing (Reformer LSH)": lambda d, n, s: FunctionAttention(
        lsh_attention, lambda L: {"n_buckets": _buckets(L, s.chunk), "chunk": s.chunk, "seed": s.seed}
    ),
    "Fourier mixing (FNet)": lambda d, n, s: FunctionAttention(fourier_mixing),
    "additive (Fastformer)": lambda d, n, s: FastformerAttention(d),
    "segment recurrence (Transformer-XL)": lambda d, n, s: FunctionAttention(
        segment_recurrent_attention, lambda L: {"segment": s.segment, "memory": s.memory}
    ),
    "adaptive span": lambda d, n, s: AdaptiveSpanAttention(s.max_span, s.ramp, s.initial_span),
}
"""Every family, by name: ``FAMILIES[name](dim, max_length, settings)`` builds its module."""

EXACT_FAMILIES = ("full softmax",)
"""Families whose output is softmax attention itself (the others restrict, approximate or replace it)."""


def build_attention(
    name: str, dim: int, max_length: int, settings: FamilySettings | None = None, **changes: Any
) -> nn.Module:
    """The module of family ``name`` for width ``dim`` and sequences up to ``max_length`` positions."""
    if name not in FAMILIES:
        raise ValueError(f"unknown attention family {name!r}; known: {', '.join(FAMILIES)}")
    settings = dataclasses.replace(settings or FamilySettings(), **changes)
    return FAMILIES[name](dim, max_length, settings)
