"""Low rank: Linformer (Wang et al., 2020) projects the ``L`` keys and values onto ``r`` rows.

``softmax(Q (E K)^T / sqrt(d)) (F V)`` with ``E, F`` of shape ``(r, L)``: the score matrix is
``L x r``, so time and memory grow linearly in ``L`` for a fixed rank. ``E`` and ``F`` are learned;
:func:`pooling_projection` (segment means) is a start that needs no training and makes the method
exact when ``r = L`` and when keys and values are constant within each segment.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .common import _check_qkv, dense_attention

__all__ = ["pooling_projection", "linformer_attention"]


def pooling_projection(rank: int, length: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(rank, length)``: row ``r`` averages the ``r``-th of ``rank`` near-equal segments.

    At ``rank == length`` it is the identity.
    """
    if not 1 <= rank <= length:
        raise ValueError(f"need 1 <= rank <= length, got rank={rank}, length={length}")
    owner = torch.arange(length) * rank // length  # segment of each position
    proj = (owner[None, :] == torch.arange(rank)[:, None]).to(dtype)
    return proj / proj.sum(dim=1, keepdim=True)


def linformer_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, proj_k: Tensor, proj_v: Tensor | None = None
) -> Tensor:
    """Attention of every query over the ``r`` projected keys ``proj_k @ k`` and values ``proj_v @ v``.

    ``proj_k``, ``proj_v``: ``(r, L_max)`` with ``L_max >= L_k`` (the first ``L_k`` columns are used;
    ``proj_v`` defaults to ``proj_k``). Padded keys and values are zeroed before projecting.
    """
    _check_qkv(q, k, v)
    length = k.shape[-2]
    proj_v = proj_k if proj_v is None else proj_v
    if proj_k.shape[-1] < length or proj_v.shape[-1] < length:
        raise ValueError(f"projections {tuple(proj_k.shape)} are narrower than the {length} keys")
    if mask is not None:
        keep = mask.to(k.dtype)[..., None]
        k, v = k * keep, v * keep
    return dense_attention(q, proj_k[:, :length] @ k, proj_v[:, :length] @ v)
