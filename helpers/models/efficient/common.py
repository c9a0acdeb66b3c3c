"""What every efficient-attention family shares: the interface, the dense reference, the masks.

The interface: ``fn(q, k, v, mask=None, **settings) -> output`` with ``q`` ``(..., L_q, d)``,
``k`` ``(..., L_k, d)``, ``v`` ``(..., L_k, d_v)`` and ``mask`` an optional bool key mask
``(..., L_k)`` (``True`` at real keys, ``False`` at padding); the output is ``(..., L_q, d_v)``.
:func:`dense_attention` is softmax attention with any boolean pattern of allowed pairs: where a
family is exact, it equals ``dense_attention`` with that family's pattern (the ``*_pattern``
functions), which is what the tests check.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "dense_attention",
    "key_mask",
    "band_pattern",
    "global_pattern",
    "strided_pattern",
    "segment_pattern",
    "windows",
]


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    """Raise a clear error when ``q, k, v`` do not fit together."""
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            f"q, k, v must be (..., L, d); got shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"q and k need the same width and k and v the same length; got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )


def key_mask(mask: Tensor | None, k: Tensor) -> Tensor:
    """The bool key mask expanded to ``k.shape[:-1]`` (all ``True`` when ``None``)."""
    if mask is None:
        return torch.ones(k.shape[:-1], dtype=torch.bool, device=k.device)
    try:
        return mask.to(torch.bool).expand(k.shape[:-1])
    except RuntimeError as err:
        raise ValueError(f"mask {tuple(mask.shape)} does not broadcast to the keys' {tuple(k.shape[:-1])}") from err


def dense_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, pattern: Tensor | None = None
) -> Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over the allowed pairs: the reference every family is tested on.

    ``pattern``: bool ``(L_q, L_k)`` (or broadcastable), ``True`` where query ``i`` may attend to key
    ``j``; ``mask``: bool key mask ``(..., L_k)``. A query with no allowed key gets a zero output.
    """
    _check_qkv(q, k, v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = torch.ones_like(scores, dtype=torch.bool)
    if pattern is not None:
        allowed = allowed & pattern
    if mask is not None:
        allowed = allowed & mask[..., None, :]
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    return torch.nan_to_num(weights, nan=0.0) @ v


def band_pattern(length: int, window: int, device: torch.device | str | None = None) -> Tensor:
    """``(L, L)`` bool: ``|i - j| <= window`` (the sliding window of Longformer / Image Transformer)."""
    idx = torch.arange(length, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= window


def global_pattern(length: int, global_tokens: tuple[int, ...], device: torch.device | str | None = None) -> Tensor:
    """``(L, L)`` bool: every pair that involves one of ``global_tokens`` (their rows and columns)."""
    is_global = torch.zeros(length, dtype=torch.bool, device=device)
    is_global[list(global_tokens)] = True
    return is_global[:, None] | is_global[None, :]


def strided_pattern(length: int, block: int, summary: int = 1, device: torch.device | str | None = None) -> Tensor:
    """``(L, L)`` bool: the Sparse Transformer's *fixed* pattern, non-causal.

    Query ``i`` attends to its own block (``i // block == j // block``) and to every block's last
    ``summary`` positions (``j % block >= block - summary``), which carry information between blocks.
    """
    idx = torch.arange(length, device=device)
    same_block = (idx[:, None] // block) == (idx[None, :] // block)
    return same_block | (idx[None, :] % block >= block - summary)


def segment_pattern(length: int, segment: int, memory: int = 1, device: torch.device | str | None = None) -> Tensor:
    """``(L, L)`` bool: query segment ``s`` sees key segments ``s - memory .. s`` (Transformer-XL)."""
    seg = torch.arange(length, device=device) // segment
    diff = seg[:, None] - seg[None, :]
    return (diff >= 0) & (diff <= memory)


def windows(x: Tensor, window: int, fill: float = 0.0) -> Tensor:
    """``(..., L, d)`` -> ``(..., L, 2 window + 1, d)``: row ``i`` holds ``x[i - window .. i + window]``.

    Positions outside the sequence are ``fill``. A strided view of one padded copy: ``O(L d)``
    memory, not ``O(L w d)``, until it is multiplied.
    """
    padded = F.pad(x, (0, 0, window, window), value=fill)
    return padded.unfold(-2, 2 * window + 1, 1).transpose(-2, -1)
