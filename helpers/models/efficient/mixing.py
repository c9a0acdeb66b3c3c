"""Attention replaced by a cheaper mixing of positions: FNet's Fourier transform, Fastformer's additive attention.

* :func:`fourier_mixing` (Lee-Thorp et al., 2022): ``Re(FFT_seq(FFT_hidden(x)))``, no parameters,
  ``O(L log L)``. It uses only the values (there are no queries or keys to compare).
* :func:`additive_attention` (Wu et al., 2021): one learned vector pools the queries into a global
  query, which multiplies every key element-wise; a second learned vector pools those into a global
  key, which multiplies every value. ``O(L d)``.

Neither approximates softmax attention: they are other operators, and trained models learn to use
them instead.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .common import _check_qkv

__all__ = ["fourier_mixing", "additive_attention", "additive_pool"]


def fourier_mixing(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """FNet: the real part of the 2-D discrete Fourier transform of ``v`` over (positions, features).

    ``q`` and ``k`` are ignored (kept for the common interface). Padded positions are zeroed first,
    so they add nothing to the others; their own outputs are not meaningful.
    """
    _check_qkv(q, k, v)
    if mask is not None:
        v = v * mask.to(v.dtype)[..., None]
    return torch.fft.fft2(v.to(torch.float32 if v.dtype != torch.float64 else v.dtype), dim=(-2, -1)).real.to(v.dtype)


def additive_pool(x: Tensor, w: Tensor, mask: Tensor | None = None) -> Tensor:
    """``sum_i softmax_i(w . x_i / sqrt(d)) x_i`` over positions: ``(..., L, d)`` -> ``(..., 1, d)``.

    This is dense attention with the single query ``w`` over keys and values ``x``.
    """
    alpha = (x @ w[:, None]) / math.sqrt(x.shape[-1])  # (..., L, 1)
    if mask is not None:
        alpha = alpha.masked_fill(~mask.to(torch.bool)[..., None], float("-inf"))
    return torch.softmax(alpha, dim=-2).transpose(-2, -1) @ x


def additive_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, w_q: Tensor, w_k: Tensor
) -> Tensor:
    """Fastformer: ``u_i = k_g * v_i`` with ``k_g = pool(q_g * k)``, ``q_g = pool(q)`` (:func:`additive_pool`).

    ``q, k, v`` must have the same width ``d``; ``w_q``, ``w_k``: learned ``(d,)`` vectors. The
    Fastformer layer then applies a linear map and adds ``q`` (:class:`~.modules.FastformerAttention`).
    """
    _check_qkv(q, k, v)
    if not q.shape[-1] == k.shape[-1] == v.shape[-1]:
        raise ValueError(
            f"additive attention needs q, k, v of one width, got {q.shape[-1]}, {k.shape[-1]}, {v.shape[-1]}"
        )
    q_global = additive_pool(q, w_q, mask)  # (..., 1, d)
    p = q_global * k
    k_global = additive_pool(p, w_k, mask)
    return k_global * v
