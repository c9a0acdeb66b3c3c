"""Attention restricted to a pattern of nearby or chosen positions, computed without the ``L x L`` matrix.

* :func:`sliding_window_attention`: each position sees ``window`` positions on either side, and a few
  *global* tokens see and are seen by all (Longformer, Beltagy et al., 2020; the Image Transformer's
  local 1-D blocks, Parmar et al., 2018, are the same idea). ``O(L (w + g) d)``.
* :func:`strided_attention`: the Sparse Transformer's *fixed* pattern (Child et al., 2019): each
  position sees its own block and the last ``summary`` positions of every block. With blocks of
  ``~sqrt(L)`` it costs ``O(L sqrt(L) d)``.
* :func:`adaptive_span_attention`: a soft window whose width ``z`` is learned (Sukhbaatar et al.,
  2019): weight ``m_z(x) = clamp((R + z - x) / R, 0, 1)`` on keys at distance ``x``.

All three are self-attention (``L_q == L_k``) and non-causal here (the papers' language models are
causal; only the pattern's past half would be kept). Each equals :func:`~.common.dense_attention`
with its pattern (``band_pattern | global_pattern``, ``strided_pattern``, or the soft mask).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import _check_qkv, dense_attention, key_mask, windows

__all__ = ["sliding_window_attention", "strided_attention", "adaptive_span_attention", "soft_span_mask"]


def _self_attention_length(q: Tensor, k: Tensor, v: Tensor) -> int:
    """``L`` after checking that this is self-attention-shaped (``L_q == L_k``)."""
    _check_qkv(q, k, v)
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(f"this family needs as many queries as keys; got {q.shape[-2]} and {k.shape[-2]}")
    return k.shape[-2]


def _window_scores(q: Tensor, k: Tensor, mask: Tensor | None, window: int) -> tuple[Tensor, Tensor, Tensor]:
    """Scores of each query against its ``2 window + 1`` neighbours, their validity and distances.

    Returns ``scores (..., L, W)``, ``valid (..., L, W)`` (inside the sequence and a real key) and the
    signed offsets ``(W,)`` of the window's columns.
    """
    length = k.shape[-2]
    offsets = torch.arange(-window, window + 1, device=k.device)
    scores = torch.einsum("...id,...iwd->...iw", q, windows(k, window)) / math.sqrt(q.shape[-1])
    pos = torch.arange(length, device=k.device)[:, None] + offsets[None, :]
    inside = (pos >= 0) & (pos < length)
    real = windows(key_mask(mask, k)[..., None].to(q.dtype), window)[..., 0] > 0.5
    return scores, inside & real, offsets


def _normalise(scores: Tensor, valid: Tensor, weight: Tensor | None = None) -> Tensor:
    """Softmax over the last dimension with invalid entries removed (and an optional soft weight)."""
    scores = scores.masked_fill(~valid, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True).clamp_min(-1e30).detach()
    e = torch.exp(scores - top)
    if weight is not None:
        e = e * weight
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


def sliding_window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    window: int = 16,
    global_tokens: tuple[int, ...] = (),
) -> Tensor:
    """Longformer attention: a band of ``window`` keys either side, plus ``global_tokens``.

    A global token (an index; negative ones count from the end) attends to every key and every
    query attends to it. Equals
    ``dense_attention(q, k, v, mask, band_pattern(L, window) | global_pattern(L, global_tokens))``.
    """
    length = _self_attention_length(q, k, v)
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    scores, valid, _ = _window_scores(q, k, mask, window)
    parts_s, parts_v = [scores], [valid]
    if any(not -length <= g < length for g in global_tokens):
        raise ValueError(f"global tokens {global_tokens} lie outside a sequence of length {length}")
    glob = torch.tensor(sorted({g % length for g in global_tokens}), dtype=torch.long, device=k.device)
    if glob.numel():
        g_scores = q @ k[..., glob, :].transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, G)
        far = (torch.arange(length, device=k.device)[:, None] - glob[None, :]).abs() > window  # not in the band
        parts_s.append(g_scores)
        parts_v.append(far & key_mask(mask, k)[..., glob][..., None, :])
    weights = _normalise(torch.cat(parts_s, -1), torch.cat(parts_v, -1))
    out = torch.einsum("...iw,...iwd->...id", weights[..., : 2 * window + 1], windows(v, window))
    if glob.numel():
        out = out + weights[..., 2 * window + 1 :] @ v[..., glob, :]
        out = out.index_copy(-2, glob, dense_attention(q[..., glob, :], k, v, mask))  # global rows see all
    return out


def strided_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, block: int = 16, summary: int = 1
) -> Tensor:
    """The Sparse Transformer's fixed pattern: own block plus every block's ``summary`` last positions.

    Equals ``dense_attention(q, k, v, mask, strided_pattern(L, block, summary))``.
    """
    length = _self_attention_length(q, k, v)
    if not 1 <= summary <= block:
        raise ValueError(f"need 1 <= summary <= block, got summary={summary}, block={block}")
    nb = math.ceil(length / block)
    pad = nb * block - length
    real = F.pad(key_mask(mask, k), (0, pad), value=False)
    lead = k.shape[:-2]
    qb, kb, vb = (F.pad(x, (0, 0, 0, pad)).reshape(*x.shape[:-2], nb, block, x.shape[-1]) for x in (q, k, v))
    realb = real.reshape(*lead, nb, block)
    scale = 1 / math.sqrt(q.shape[-1])
    local = qb @ kb.transpose(-2, -1) * scale  # (..., nb, block, block)
    ks = kb[..., block - summary :, :].reshape(*lead, nb * summary, k.shape[-1])
    vs = vb[..., block - summary :, :].reshape(*lead, nb * summary, v.shape[-1])
    owner = torch.arange(nb, device=k.device).repeat_interleave(summary)
    other = owner[None, :] != torch.arange(nb, device=k.device)[:, None]  # (nb, nb*S): not own block
    s_scores = torch.einsum("...nbd,...sd->...nbs", qb, ks) * scale
    s_valid = other[:, None, :] & realb[..., block - summary :].reshape(*lead, 1, 1, nb * summary)
    weights = _normalise(
        torch.cat([local, s_scores], -1),
        torch.cat([realb[..., None, :].expand_as(local), s_valid.expand_as(s_scores)], -1),
    )
    out = weights[..., :block] @ vb + torch.einsum("...nbs,...sd->...nbd", weights[..., block:], vs)
    return out.reshape(*lead, nb * block, v.shape[-1])[..., :length, :]


def soft_span_mask(distance: Tensor, span: Tensor | float, ramp: int) -> Tensor:
    """Adaptive span's weight ``clamp((ramp + span - distance) / ramp, 0, 1)``: 1 inside, a ramp, then 0."""
    return ((ramp + span - distance) / ramp).clamp(0.0, 1.0)


def adaptive_span_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    span: Tensor | float,
    max_span: int,
    ramp: int = 16,
) -> Tensor:
    """Softmax weights times :func:`soft_span_mask` of the distance ``|i - j|``, renormalised.

    ``span`` (a tensor for it to be learned, broadcastable to ``(..., 1, 1)``) is clamped to
    ``[0, max_span]``; only keys within ``max_span + ramp`` are computed, so the cost is
    ``O(L (max_span + ramp) d)``.
    """
    _self_attention_length(q, k, v)
    span = torch.as_tensor(span, dtype=q.dtype, device=q.device).clamp(0.0, float(max_span))
    window = int(max_span + ramp)
    scores, valid, offsets = _window_scores(q, k, mask, window)
    weights = _normalise(scores, valid, soft_span_mask(offsets.abs().to(q.dtype), span, ramp))
    return torch.einsum("...iw,...iwd->...id", weights, windows(v, window))
