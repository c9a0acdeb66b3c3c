"""Attention before the Transformer: alignment functions, attention distributions, seq2seq.

Attention reads a set of values ``V`` with weights computed from a query ``q`` and keys ``K``:

.. math:: A(q, K, V) = \\sum_i p\\big(a(k_i, q)\\big)_i \\, v_i

* ``a`` is an **alignment (score) function**: every row of the theses' table is a module here
  (:data:`ALIGNMENTS` lists them with their formula and source). Each takes ``q`` of shape
  ``(B, d_q)`` and ``K`` of shape ``(B, T, d_k)`` and returns scores ``(B, T)``.
* ``p`` is an **attention distribution**: :func:`softmax`, :func:`sigmoid`, :func:`sparsemax`
  and :func:`entmax15` (the last two exact, sort-based, and able to give exact zeros).
* :class:`Seq2Seq` is a GRU encoder-decoder with Bahdanau (additive) or Luong (multiplicative)
  attention, whose greedy decoder returns the attention weights for heatmaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "softmax",
    "sigmoid",
    "sparsemax",
    "entmax15",
    "DISTRIBUTIONS",
    "CosineScore",
    "DotScore",
    "ScaledDotScore",
    "GeneralScore",
    "BiasedGeneralScore",
    "ActivatedGeneralScore",
    "KernelScore",
    "AdditiveScore",
    "DeepScore",
    "LocationScore",
    "FeatureScore",
    "ALIGNMENTS",
    "attend",
    "Seq2Seq",
    "evaluate_seq2seq",
    "field_attention",
]

NEG_INF = -1e9  # score given to padded keys: exp() of it is 0 and sparsemax/entmax drop it


# ----------------------------------------------------------------------------- distributions


def softmax(scores: Tensor, dim: int = -1) -> Tensor:
    """``exp(z_i) / sum_j exp(z_j)``: dense, every weight strictly positive."""
    return torch.softmax(scores, dim=dim)


def sigmoid(scores: Tensor, dim: int = -1) -> Tensor:
    """Independent logistic gates ``1 / (1 + exp(-z_i))``: each in (0, 1), sum *not* fixed to 1."""
    return torch.sigmoid(scores)


def sparsemax(scores: Tensor, dim: int = -1) -> Tensor:
    """Sparsemax (Martins & Astudillo, 2016): the Euclidean projection of ``z`` onto the simplex.

    ``p = argmin_{p in simplex} ||p - z||^2 = max(z - tau, 0)``, with ``tau`` found exactly by
    sorting: the support size is the largest ``k`` with ``1 + k z_(k) > sum_{j<=k} z_(j)``, and
    ``tau = (sum_{j<=k} z_(j) - 1) / k``.
    """
    z = scores.transpose(dim, -1)
    z = z - z.max(dim=-1, keepdim=True).values  # shift-invariant; keeps numbers small
    z_sorted, _ = torch.sort(z, dim=-1, descending=True)
    cumsum = z_sorted.cumsum(dim=-1)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    support = 1 + k * z_sorted > cumsum  # true for the first k(z) entries
    k_z = support.sum(dim=-1, keepdim=True)
    tau = (cumsum.gather(-1, k_z - 1) - 1) / k_z.to(z.dtype)
    return torch.clamp(z - tau, min=0).transpose(dim, -1)


def entmax15(scores: Tensor, dim: int = -1) -> Tensor:
    """1.5-entmax (Peters, Niculae & Martins, 2019): between softmax (alpha=1) and sparsemax (alpha=2).

    ``p_i = max(z_i / 2 - tau, 0)^2`` with ``tau`` such that the weights sum to 1, found exactly by
    sorting: for each candidate support size ``k`` the threshold solving
    ``sum_{j<=k} (z_(j)/2 - tau)^2 = 1`` is ``tau_k = mean_k - sqrt((1 - ss_k) / k)``
    (``mean_k``, ``ss_k``: mean and sum of squared deviations of the top ``k`` halves); the support
    is the largest ``k`` with ``tau_k <= z_(k) / 2``.
    """
    z = scores.transpose(dim, -1)
    z = (z - z.max(dim=-1, keepdim=True).values) / 2
    z_sorted, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    mean = z_sorted.cumsum(-1) / k
    mean_sq = (z_sorted**2).cumsum(-1) / k
    ss = k * (mean_sq - mean**2)
    delta = torch.clamp((1 - ss) / k, min=0)
    tau = mean - torch.sqrt(delta)
    k_z = (tau <= z_sorted).sum(dim=-1, keepdim=True)
    tau_star = tau.gather(-1, k_z - 1)
    return (torch.clamp(z - tau_star, min=0) ** 2).transpose(dim, -1)


DISTRIBUTIONS: dict[str, Callable[..., Tensor]] = {
    "softmax": softmax,
    "sigmoid": sigmoid,
    "sparsemax": sparsemax,
    "entmax15": entmax15,
}


# ----------------------------------------------------------------------------- alignment functions
# Shapes: q (B, d_q), K (B, T, d_k) -> scores (B, T). Row vectors, as in the book.


def _act(name: str) -> Callable[[Tensor], Tensor]:
    acts = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda t: t}
    if name not in acts:
        raise ValueError(f"activation must be one of {sorted(acts)}, got {name!r}")
    return acts[name]


class CosineScore(nn.Module):
    """Content-based (Graves et al., 2014): ``a(k_i, q) = cos(k_i, q)``, no parameters."""

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        return nn.functional.cosine_similarity(K, q.unsqueeze(1), dim=-1, eps=1e-8)


class DotScore(nn.Module):
    """Dot product (Luong et al., 2015): ``a(k_i, q) = q k_i^T``; needs ``d_q == d_k``."""

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        return torch.einsum("bd,btd->bt", q, K)


class ScaledDotScore(nn.Module):
    """Scaled dot product (Vaswani et al., 2017): ``a(k_i, q) = q k_i^T / sqrt(d_k)``."""

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        return torch.einsum("bd,btd->bt", q, K) / math.sqrt(K.shape[-1])


class GeneralScore(nn.Module):
    """General / bilinear (Luong et al., 2015): ``a(k_i, q) = q W k_i^T``, ``W`` is ``(d_q, d_k)``."""

    def __init__(self, d_q: int, d_k: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(d_q, d_k) / math.sqrt(d_q))

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        return torch.einsum("bq,qk,btk->bt", q, self.W, K)


class BiasedGeneralScore(nn.Module):
    """Biased general (Sordoni et al., 2016): ``a(k_i, q) = k_i (q W + b)^T``."""

    def __init__(self, d_q: int, d_k: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(d_q, d_k) / math.sqrt(d_q))
        self.b = nn.Parameter(torch.zeros(d_k))

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        return torch.einsum("btk,bk->bt", K, q @ self.W + self.b)


class ActivatedGeneralScore(nn.Module):
    """Activated general (Ma et al., 2017): ``a(k_i, q) = act(q W k_i^T + b)``."""

    def __init__(self, d_q: int, d_k: int, act: str = "tanh") -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(d_q, d_k) / math.sqrt(d_q))
        self.b = nn.Parameter(torch.zeros(()))
        self.act = act

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        return _act(self.act)(torch.einsum("bq,qk,btk->bt", q, self.W, K) + self.b)


class KernelScore(nn.Module):
    """Generalized kernel (Choromanski et al., 2021): ``a(k_i, q) = phi(q) phi(k_i)^T``.

    ``phi`` is a feature map; the default ``elu(x) + 1`` keeps every score positive, which is what
    lets linear-attention methods normalise without a softmax.
    """

    def __init__(self, phi: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        self.phi = phi if phi is not None else (lambda t: nn.functional.elu(t) + 1)

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        return torch.einsum("bd,btd->bt", self.phi(q), self.phi(K))


class AdditiveScore(nn.Module):
    """Additive / concat (Bahdanau et al., 2015): ``a(k_i, q) = act([q; k_i] W + b) v^T``.

    ``[q; k_i] W`` is computed as ``q W_q + k_i W_k`` (the two blocks of ``W``), so the keys'
    part can be computed once per sequence.
    """

    def __init__(self, d_q: int, d_k: int, d_hidden: int, act: str = "tanh") -> None:
        super().__init__()
        self.W_q = nn.Linear(d_q, d_hidden, bias=False)
        self.W_k = nn.Linear(d_k, d_hidden, bias=True)  # its bias is the b of the formula
        self.v = nn.Linear(d_hidden, 1, bias=False)
        self.act = act

    def forward(self, q: Tensor, K: Tensor, K_proj: Tensor | None = None) -> Tensor:
        K_proj = self.W_k(K) if K_proj is None else K_proj
        return self.v(_act(self.act)(self.W_q(q).unsqueeze(1) + K_proj)).squeeze(-1)


class DeepScore(nn.Module):
    """Deep (Pavlopoulos et al., 2017): an MLP of ``L`` layers on the key and the query.

    ``E^(1) = act(k_i W_0 + q W_1 + b^(1))``, ``E^(l) = act(E^(l-1) W_l + b^(l))`` for
    ``l = 2..L``, and ``a(k_i, q) = E^(L) v^T + b^(L+1)``.
    """

    def __init__(self, d_q: int, d_k: int, d_hidden: int, n_layers: int = 2, act: str = "relu") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        self.W_0 = nn.Linear(d_k, d_hidden, bias=True)
        self.W_1 = nn.Linear(d_q, d_hidden, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(d_hidden, d_hidden) for _ in range(n_layers - 1))
        self.v = nn.Linear(d_hidden, 1)
        self.act = act

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        act = _act(self.act)
        E = act(self.W_0(K) + self.W_1(q).unsqueeze(1))
        for layer in self.hidden:
            E = act(layer(E))
        return self.v(E).squeeze(-1)


class LocationScore(nn.Module):
    """Location-based (Luong et al., 2015): ``a(k_i, q) = act(q W)_i``.

    The scores depend on the query only: ``W`` (``(d_q, max_len)``) gives one score per
    *position*; the keys only say how many positions there are.
    """

    def __init__(self, d_q: int, max_len: int, act: str = "identity") -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(d_q, max_len) / math.sqrt(d_q))
        self.act = act

    def forward(self, q: Tensor, K: Tensor) -> Tensor:
        T = K.shape[1]
        if T > self.W.shape[1]:
            raise ValueError(f"sequence of length {T} is longer than max_len={self.W.shape[1]}")
        return _act(self.act)(q @ self.W[:, :T])


class FeatureScore(nn.Module):
    """Feature-based (Li et al., 2019): scores from features of the keys, no query.

    ``a(k_i, q) = act(phi(k_i) W_0 + phi(K) W_1 + b) v^T``: the first term reads the key's own
    features, the second a summary of the whole key set (here ``phi(K)`` is the mean of
    ``phi(k_j)`` over the sequence). The theses' table writes ``phi(K)`` in both terms; we read the
    first as the key's own features, otherwise every key would get the same score.
    """

    def __init__(
        self, d_k: int, d_hidden: int, act: str = "tanh", phi: Callable[[Tensor], Tensor] | None = None
    ) -> None:
        super().__init__()
        self.W_0 = nn.Linear(d_k, d_hidden, bias=True)
        self.W_1 = nn.Linear(d_k, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)
        self.phi = phi if phi is not None else (lambda t: t)
        self.act = act

    def forward(self, q: Tensor | None, K: Tensor) -> Tensor:
        F = self.phi(K)
        summary = F.mean(dim=1, keepdim=True)
        return self.v(_act(self.act)(self.W_0(F) + self.W_1(summary))).squeeze(-1)


# name -> (class, formula in LaTeX, source); the chapter's table is built from this.
ALIGNMENTS: dict[str, tuple[type[nn.Module], str, str]] = {
    "content-based (cosine)": (CosineScore, r"\cos(k_i, q)", "Graves et al. (2014)"),
    "dot product": (DotScore, r"q k_i^\top", "Luong et al. (2015)"),
    "scaled dot product": (ScaledDotScore, r"q k_i^\top / \sqrt{d_k}", "Vaswani et al. (2017)"),
    "general": (GeneralScore, r"q W k_i^\top", "Luong et al. (2015)"),
    "biased general": (BiasedGeneralScore, r"k_i (q W + b)^\top", "Sordoni et al. (2016)"),
    "activated general": (ActivatedGeneralScore, r"\mathrm{act}(q W k_i^\top + b)", "Ma et al. (2017)"),
    "generalized kernel": (KernelScore, r"\phi(q) \phi(k_i)^\top", "Choromanski et al. (2021)"),
    "additive / concat": (AdditiveScore, r"\mathrm{act}([q; k_i] W + b)\, v^\top", "Bahdanau et al. (2015)"),
    "deep": (
        DeepScore,
        r"E^{(L)} v^\top + b^{(L+1)},\ E^{(1)} = \mathrm{act}(k_i W_0 + q W_1 + b^{(1)})",
        "Pavlopoulos et al. (2017)",
    ),
    "location-based": (LocationScore, r"\mathrm{act}(q W)_i", "Luong et al. (2015)"),
    "feature-based": (FeatureScore, r"\mathrm{act}(\phi(k_i) W_0 + \phi(K) W_1 + b)\, v^\top", "Li et al. (2019)"),
}


def attend(
    scores: Tensor, V: Tensor, distribution: str = "softmax", mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(context, weights)``: weights ``p(scores)`` over ``T`` and ``context = sum_i w_i v_i``.

    ``scores`` is ``(B, T)``, ``V`` is ``(B, T, d_v)``, ``mask`` (``(B, T)``, True = real token)
    removes padded positions before the distribution is taken.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {sorted(DISTRIBUTIONS)}, got {distribution!r}")
    if mask is not None:
        scores = scores.masked_fill(~mask, NEG_INF)
    weights = DISTRIBUTIONS[distribution](scores, dim=-1)
    if mask is not None and distribution == "sigmoid":
        weights = weights * mask
    return torch.einsum("bt,btd->bd", weights, V), weights


# ----------------------------------------------------------------------------- seq2seq


class Seq2Seq(nn.Module):
    """GRU encoder-decoder with attention, for small translation tasks.

    The encoder is a bidirectional GRU over the source; its states ``h^(i)`` (``2k`` wide) are
    the keys and values. The decoder is a GRU with state ``s^(t)``; ``y^(t-1)`` is the previous
    target token (the true one while training: teacher forcing).

    * ``attention="bahdanau"`` (additive): scores ``a(h^(i), s^(t-1))`` with :class:`AdditiveScore`,
      context ``c^(t)``, then ``s^(t) = GRU([y^(t-1); c^(t)], s^(t-1))`` and the output reads
      ``[s^(t); c^(t); y^(t-1)]``.
    * ``attention="luong"`` (multiplicative): ``s^(t) = GRU(y^(t-1), s^(t-1))`` first, then scores
      ``a(h^(i), s^(t))`` with ``score="general"`` (:class:`GeneralScore`) or ``"dot"``
      (:class:`DotScore`; needs ``2 * hidden == dec_hidden``), context ``c^(t)``, and the output
      reads ``tanh([c^(t); s^(t)] W_c)``.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        embed: int = 32,
        hidden: int = 64,
        attention: str = "bahdanau",
        score: str = "general",
        distribution: str = "softmax",
    ) -> None:
        super().__init__()
        if attention not in ("bahdanau", "luong"):
            raise ValueError(f"attention must be 'bahdanau' or 'luong', got {attention!r}")
        if distribution not in DISTRIBUTIONS or distribution == "sigmoid":
            raise ValueError(f"distribution must be softmax, sparsemax or entmax15, got {distribution!r}")
        self.attention, self.distribution, self.score_name = attention, distribution, score
        enc_dim, dec_dim = 2 * hidden, 2 * hidden
        self.src_embed = nn.Embedding(src_vocab, embed, padding_idx=0)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed, padding_idx=0)
        self.encoder = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(enc_dim, dec_dim)
        if attention == "bahdanau":
            self.score = AdditiveScore(dec_dim, enc_dim, hidden)
            self.decoder = nn.GRUCell(embed + enc_dim, dec_dim)
            self.out = nn.Sequential(
                nn.Linear(dec_dim + enc_dim + embed, hidden), nn.Tanh(), nn.Linear(hidden, tgt_vocab)
            )
        else:
            if score == "general":
                self.score = GeneralScore(dec_dim, enc_dim)
            elif score == "dot":
                self.score = DotScore()
            else:
                raise ValueError(f"Luong score must be 'general' or 'dot', got {score!r}")
            self.decoder = nn.GRUCell(embed, dec_dim)
            self.W_c = nn.Linear(enc_dim + dec_dim, hidden)
            self.out = nn.Linear(hidden, tgt_vocab)

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder states ``(B, S, 2k)``, the source mask ``(B, S)`` and the first decoder state."""
        mask = src != 0
        H, _ = self.encoder(self.src_embed(src))
        lengths = mask.sum(1).clamp(min=1)
        mean = (H * mask.unsqueeze(-1)).sum(1) / lengths.unsqueeze(-1)
        return H, mask, torch.tanh(self.init_state(mean))

    def step(
        self, y_prev: Tensor, s_prev: Tensor, H: Tensor, mask: Tensor, K_proj: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder step: ``(logits (B, V), s^(t), weights (B, S))``."""
        e = self.tgt_embed(y_prev)
        if self.attention == "bahdanau":
            scores = self.score(s_prev, H, K_proj)  # a(h^(i), s^(t-1))
            c, w = attend(scores, H, self.distribution, mask)  # c^(t) = sum_i alpha_ti h^(i)
            s = self.decoder(torch.cat([e, c], -1), s_prev)  # s^(t) = f(s^(t-1), y^(t-1), c^(t))
            logits = self.out(torch.cat([s, c, e], -1))
        else:
            s = self.decoder(e, s_prev)  # s^(t) = f(s^(t-1), y^(t-1))
            c, w = attend(self.score(s, H), H, self.distribution, mask)
            logits = self.out(torch.tanh(self.W_c(torch.cat([c, s], -1))))
        return logits, s, w

    def forward(self, src: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher forcing: logits ``(B, T, V)`` for ``tgt_in`` (``<bos>`` + target) and weights ``(B, T, S)``."""
        H, mask, s = self.encode(src)
        K_proj = self.score.W_k(H) if self.attention == "bahdanau" else None
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            lg, s, w = self.step(tgt_in[:, t], s, H, mask, K_proj)
            logits.append(lg)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, max_len: int, bos_id: int = 1) -> tuple[Tensor, Tensor]:
        """Greedy decoding: predicted ids ``(B, max_len)`` (after ``<bos>``) and weights ``(B, max_len, S)``."""
        self.eval()
        H, mask, s = self.encode(src)
        K_proj = self.score.W_k(H) if self.attention == "bahdanau" else None
        y = torch.full((src.shape[0],), bos_id, dtype=torch.long, device=src.device)  # <bos>
        ids, weights = [], []
        for _ in range(max_len):
            lg, s, w = self.step(y, s, H, mask, K_proj)
            y = lg.argmax(-1)
            ids.append(y)
            weights.append(w)
        return torch.stack(ids, 1), torch.stack(weights, 1)


def evaluate_seq2seq(model: Seq2Seq, src: Tensor, tgt: Tensor) -> dict[str, float]:
    """Greedy-decode ``src`` and compare with ``tgt[:, 1:]``: token accuracy and exact-match accuracy."""
    from ..seqdata import EOS, PAD, SPECIALS, sequence_accuracy

    eos_id, pad_id = SPECIALS.index(EOS), SPECIALS.index(PAD)
    device = next(model.parameters()).device
    target = tgt[:, 1:].to(device)
    pred, _ = model.greedy_decode(src.to(device), max_len=target.shape[1])
    # everything after the first predicted <eos> counts as padding
    seen = (pred == eos_id).int().cumsum(1)
    pred = pred.masked_fill(((seen > 0) & (pred != eos_id)) | (seen > 1), pad_id)
    token, exact = sequence_accuracy(pred, target, pad_id=pad_id)
    return {"token_accuracy": token, "exact_match": exact}


def field_attention(weights: Tensor, pairs: Sequence[tuple[str, str]]) -> dict[str, dict[str, float]]:
    """Where a date translator looks: the share of attention each ISO field puts on that field's source.

    Args:
        weights: ``(B, T_out, S)`` attention of the output characters (``YYYY-MM-DD``, one per step)
            over the source characters, for the ``B`` pairs in order (padding columns are ignored).
        pairs: the ``(text, iso)`` pairs the weights belong to.

    Returns:
        For ``year``, ``month`` and ``day``: ``attention``, the mean weight the field's output
        characters put on the characters where :func:`~helpers.seqdata.date_fields` finds that field
        in the source, and ``chance``, the same share for attention spread evenly over the source.
    """
    from ..seqdata import ISO_FIELDS, date_fields

    out: dict[str, dict[str, list[float]]] = {f: {"attention": [], "chance": []} for f in ISO_FIELDS}
    for b, (text, iso) in enumerate(pairs):
        spans = date_fields(text, iso)
        for field, outputs in ISO_FIELDS.items():
            if not spans[field]:
                continue
            rows = weights[b, list(outputs), : len(text) + 1]  # the source and its <eos>
            share = rows[:, spans[field]].sum(-1) / rows.sum(-1).clamp_min(1e-12)
            out[field]["attention"].append(share.mean().item())
            out[field]["chance"].append(len(spans[field]) / (len(text) + 1))
    return {f: {k: sum(v) / max(len(v), 1) for k, v in d.items()} for f, d in out.items()}
