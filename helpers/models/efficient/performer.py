"""Kernel features: the Performer's FAVOR+ (Choromanski et al., 2021).

Softmax attention builds the ``L x L`` matrix ``A = exp(Q K^T / sqrt(d))`` and so costs
``O(L^2 d)`` time and ``O(L^2)`` memory. FAVOR+ writes ``exp(q . k) = E_w[phi(q) . phi(k)]`` with
positive random features

    phi(x) = exp(W x - |x|^2 / 2) / sqrt(m),   rows of W ~ N(0, I_d), drawn orthogonal in blocks,

so that ``A V ~ phi(Q) (phi(K)^T V)``: multiplying right to left never forms an ``L x L``
matrix, and time and memory grow linearly in ``L`` (``O(L m d)``). Each kernel value, and so the
numerator ``phi(Q) (phi(K)^T V)`` and the denominator ``phi(Q) phi(K)^T 1``, is an unbiased
estimate; their ratio, the row-normalised attention, is not (the expectation of a ratio is not the
ratio of expectations): it is biased, consistent, and both its bias and its spread shrink as the
number of features ``m`` grows.

* :func:`orthogonal_gaussian`, :func:`favor_features`, :func:`favor_attention`: the method.
* :class:`PerformerAttention`: a drop-in for :class:`helpers.models.transformer.MultiHeadAttention`
  (same projections, so it can load the same weights), non-causal, key-padding masks only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..transformer import MultiHeadAttention

__all__ = [
    "orthogonal_gaussian",
    "favor_features",
    "favor_attention",
    "PerformerAttention",
]


def orthogonal_gaussian(
    num_features: int, dim: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """``(num_features, dim)`` random projections: blocks of ``dim`` mutually orthogonal rows.

    Each block is the Q of the QR decomposition of a Gaussian matrix; each row is then rescaled to
    the norm of an independent Gaussian vector, so every row is still marginally ``N(0, I)``
    (the "orthogonal random features" that lower the estimator's variance).
    """
    if num_features < 1 or dim < 1:
        raise ValueError(f"num_features and dim must be positive, got {num_features}, {dim}")
    blocks = []
    for _ in range(math.ceil(num_features / dim)):
        g = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        q, _ = torch.linalg.qr(g)
        blocks.append(q.T)
    w = torch.cat(blocks)[:num_features]
    norms = torch.randn(num_features, dim, generator=generator, dtype=torch.float64).norm(dim=1)
    return (w * norms[:, None]).to(dtype)


def favor_features(x: Tensor, projection: Tensor, is_query: bool) -> Tensor:
    """Positive random features ``phi(x) = exp(W x - |x|^2 / 2 - c) / sqrt(m)`` of ``x`` ``(..., L, d)``.

    ``c`` is a stabiliser that cancels in the attention's normalisation: the row maximum for
    queries (a constant per query) and the maximum over all positions for keys (a constant per
    key set). Returns ``(..., L, m)``.
    """
    m = projection.shape[0]
    wx = x @ projection.T  # (..., L, m): w_r . x
    half_sq = (x * x).sum(-1, keepdim=True) / 2  # |x|^2 / 2
    if is_query:
        stab = wx.amax(dim=-1, keepdim=True)
    else:
        stab = wx.amax(dim=(-2, -1), keepdim=True)
    return torch.exp(wx - half_sq - stab.detach()) / math.sqrt(m)


def favor_attention(
    query: Tensor, key: Tensor, value: Tensor, projection: Tensor, key_mask: Tensor | None = None
) -> Tensor:
    """FAVOR+ estimate of ``softmax(Q K^T / sqrt(d)) V`` in ``O(L m d)`` (a ratio of unbiased estimates).

    Args:
        query: ``(..., L_q, d)``; key: ``(..., L_k, d)``; value: ``(..., L_k, d_v)``.
        projection: ``(m, d)`` from :func:`orthogonal_gaussian`.
        key_mask: optional bool ``(..., L_k)`` (or broadcastable), ``True`` at real keys.

    Returns ``(..., L_q, d_v)``.
    """
    d = query.shape[-1]
    scale = d**-0.25  # q.k / sqrt(d) = (q d^-1/4).(k d^-1/4)
    q_feat = favor_features(query * scale, projection, is_query=True)
    k_feat = favor_features(key * scale, projection, is_query=False)
    if key_mask is not None:
        k_feat = k_feat * key_mask[..., None].to(k_feat.dtype)  # padded keys contribute nothing
    kv = k_feat.transpose(-2, -1) @ value  # (..., m, d_v): phi(K)^T V
    numerator = q_feat @ kv  # (..., L_q, d_v)
    denominator = q_feat @ k_feat.sum(dim=-2)[..., None]  # (..., L_q, 1): phi(Q) phi(K)^T 1
    return numerator / denominator


class PerformerAttention(MultiHeadAttention):
    """Multi-head attention with FAVOR+ in place of the softmax (non-causal).

    Same ``w_q, w_k, w_v, w_o`` as :class:`MultiHeadAttention` (``load_torch`` works too); one
    ``(num_features, d_k)`` projection shared by all heads, drawn at construction and redrawn by
    :meth:`redraw`. ``forward`` returns ``(output, None)``: there is no attention matrix.
    """

    def __init__(
        self, d_model: int, num_heads: int, num_features: int = 64, bias: bool = True, seed: int | None = None
    ) -> None:
        super().__init__(d_model, num_heads, dropout=0.0, bias=bias)
        self.num_features = num_features
        self.register_buffer("projection", torch.empty(num_features, self.d_k))
        self.redraw(seed)

    @torch.no_grad()
    def redraw(self, seed: int | None = None) -> None:
        """Draw a new random projection (seeded when ``seed`` is given)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        w = orthogonal_gaussian(self.num_features, self.d_k, gen)
        self.projection.copy_(w.to(self.projection.device, self.projection.dtype))

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None) -> tuple[Tensor, None]:
        """``mask``: a key-padding mask ``(B, 1, 1, L_k)`` from :func:`padding_mask`, or ``None``."""
        key_mask = None
        if mask is not None:
            if mask.dim() != 4 or mask.shape[-2] != 1 or mask.shape[1] != 1:
                raise ValueError(
                    "PerformerAttention supports only key-padding masks of shape (B, 1, 1, L_k); "
                    "causal FAVOR+ needs prefix sums and is not implemented here"
                )
            key_mask = mask[:, :, 0, :]  # (B, 1, L_k)
        q = self._split(self.w_q(query))
        k = self._split(self.w_k(key))
        v = self._split(self.w_v(value))
        heads = favor_attention(q, k, v, self.projection, key_mask)
        b, _, n, _ = heads.shape
        self.last_weights = None
        return self.w_o(heads.transpose(1, 2).reshape(b, n, self.d_model)), None
