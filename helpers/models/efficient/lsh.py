"""Hashing: Reformer's LSH attention (Kitaev et al., 2020).

Queries and keys are hashed by a random rotation, ``h(x) = argmax([x R, -x R])`` of the normalised
vector, so that vectors at a small angle tend to share a bucket. Positions are sorted by bucket and
cut into chunks; each chunk attends to itself and the chunk before it, to keys of its own bucket
only. Time and memory grow like ``O(L c)`` for chunks of ``c`` (plus the ``O(L log L)`` sort).
Reformer shares queries and keys (``q = k``), which makes the two sorts one; with ``q != k`` the
query and key orders are sorted separately. One hashing round; the paper averages several.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import _check_qkv, key_mask

__all__ = ["random_rotations", "lsh_buckets", "lsh_attention"]


def random_rotations(dim: int, n_buckets: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(dim, n_buckets // 2)`` Gaussian directions, seeded (``n_buckets`` even, or 1 for a single bucket)."""
    if n_buckets < 1 or (n_buckets > 1 and n_buckets % 2):
        raise ValueError(f"n_buckets must be 1 or even, got {n_buckets}")
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(dim, max(1, n_buckets // 2), generator=gen).to(dtype)


def lsh_buckets(x: Tensor, rotations: Tensor, n_buckets: int) -> Tensor:
    """The bucket of each row of ``x`` ``(..., L, d)``: ``argmax([x R, -x R])`` of the unit vector."""
    if n_buckets == 1:
        return torch.zeros(x.shape[:-1], dtype=torch.long, device=x.device)
    proj = F.normalize(x, dim=-1) @ rotations.to(x.device, x.dtype)
    return torch.cat([proj, -proj], dim=-1).argmax(dim=-1)


def _sorted_chunks(x: Tensor, order: Tensor, n_chunks: int, chunk: int, fill: float = 0.0) -> Tensor:
    """``x`` ``(..., L, e)`` gathered in ``order`` and padded into ``(..., n_chunks, chunk, e)``."""
    gathered = x.gather(-2, order[..., None].expand(*order.shape, x.shape[-1]))
    padded = F.pad(gathered, (0, 0, 0, n_chunks * chunk - x.shape[-2]), value=fill)
    return padded.reshape(*x.shape[:-2], n_chunks, chunk, x.shape[-1])


def _with_previous(x: Tensor, fill: float = 0.0) -> Tensor:
    """``(..., n, c, e)`` -> ``(..., n, 2c, e)``: each chunk preceded by the one before it (``fill`` for the first)."""
    prev = F.pad(x, (0, 0, 0, 0, 1, 0), value=fill)[..., :-1, :, :]
    return torch.cat([prev, x], dim=-2)


def lsh_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    n_buckets: int = 8,
    chunk: int = 64,
    seed: int = 0,
) -> Tensor:
    """Attention within hash buckets, chunk by chunk in bucket order (self-attention, ``L_q == L_k``).

    With one bucket and ``chunk >= L`` it is exact softmax attention; with one chunk it is softmax
    attention restricted to pairs that share a bucket. A query with no key in reach gets zeros.
    """
    _check_qkv(q, k, v)
    length = k.shape[-2]
    if q.shape[-2] != length:
        raise ValueError(f"LSH attention needs as many queries as keys; got {q.shape[-2]} and {length}")
    rot = random_rotations(q.shape[-1], n_buckets, seed)
    bq, bk = lsh_buckets(q, rot, n_buckets), lsh_buckets(k, rot, n_buckets)
    pos = torch.arange(length, device=k.device)
    q_order, k_order = (bq * length + pos).argsort(dim=-1), (bk * length + pos).argsort(dim=-1)
    real = key_mask(mask, k)
    n_chunks = math.ceil(length / chunk) if chunk < length else 1
    chunk = min(chunk, length)
    qc = _sorted_chunks(q, q_order, n_chunks, chunk)
    kc, vc = (_with_previous(_sorted_chunks(x, k_order, n_chunks, chunk)) for x in (k, v))
    bqc = _sorted_chunks(bq[..., None], q_order, n_chunks, chunk, fill=-1)[..., 0]
    bkc = _with_previous(_sorted_chunks(bk[..., None], k_order, n_chunks, chunk, fill=-2))[..., 0]
    realc = _with_previous(_sorted_chunks(real[..., None].long(), k_order, n_chunks, chunk))[..., 0] > 0
    scores = qc @ kc.transpose(-2, -1) / math.sqrt(q.shape[-1])
    valid = (bqc[..., :, None] == bkc[..., None, :]) & realc[..., None, :]
    weights = torch.nan_to_num(torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=-1), nan=0.0)
    out_sorted = (weights @ vc).reshape(*q.shape[:-2], n_chunks * chunk, v.shape[-1])[..., :length, :]
    return torch.empty_like(out_sorted).scatter(-2, q_order[..., None].expand_as(out_sorted), out_sorted)
