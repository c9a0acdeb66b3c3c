"""Segment recurrence: Transformer-XL (Dai et al., 2019).

The sequence is processed in segments of ``segment`` positions; each segment attends to itself and
to the cached keys and values of the ``memory`` segments before it, cached *without gradient* (the
paper's stop-gradient), so the cost per segment is fixed and the total grows linearly in ``L``.
In a stack of layers the cache holds the previous layer's states and the reach grows with depth;
the paper's relative position encoding is not reproduced here (the model adds its own positions).
Non-causal within a segment; the paper's language model is causal.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .common import _check_qkv, dense_attention, key_mask

__all__ = ["segment_recurrent_attention"]


def segment_recurrent_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, segment: int = 64, memory: int = 1
) -> Tensor:
    """Each segment of queries attends to its own keys and the ``memory`` previous segments' (detached).

    Its output equals ``dense_attention(q, k, v, mask, segment_pattern(L, segment, memory))``; only the
    gradient differs (none flows into the cached segments).
    """
    _check_qkv(q, k, v)
    length = k.shape[-2]
    if q.shape[-2] != length:
        raise ValueError(f"segment recurrence needs as many queries as keys; got {q.shape[-2]} and {length}")
    if segment < 1 or memory < 0:
        raise ValueError(f"need segment >= 1 and memory >= 0, got {segment}, {memory}")
    real = key_mask(mask, k)
    outputs = []
    for start in range(0, length, segment):
        stop, first = min(start + segment, length), max(0, start - memory * segment)
        cached_k, cached_v = k[..., first:start, :].detach(), v[..., first:start, :].detach()
        keys = torch.cat([cached_k, k[..., start:stop, :]], dim=-2)
        values = torch.cat([cached_v, v[..., start:stop, :]], dim=-2)
        outputs.append(dense_attention(q[..., start:stop, :], keys, values, real[..., first:stop]))
    return torch.cat(outputs, dim=-2)
