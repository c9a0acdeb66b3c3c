"""The Transformer of Vaswani et al. (2017), written out piece by piece.

Each building block sits next to the equation it implements (the style of *The Annotated
Transformer*); tensors are batch-first, ``(batch, length, d_model)``.

* :func:`scaled_dot_product_attention` and :class:`MultiHeadAttention` (``d_k = d_v = d_model / h``);
  :meth:`MultiHeadAttention.load_torch` copies a :class:`torch.nn.MultiheadAttention`'s weights so
  both give the same outputs and attention weights.
* :func:`padding_mask` and :func:`causal_mask`: boolean masks, ``True`` where a query may look.
* :func:`sinusoidal_encoding` and :func:`shift_matrix` (``PE(pos + k) = M_k PE(pos)``).
* :class:`EncoderLayer` and :class:`DecoderLayer` in Post-LN (the original) and Pre-LN order,
  with or without LayerNorm; :meth:`EncoderLayer.load_torch` / :meth:`DecoderLayer.load_torch`
  copy ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` weights.
* :class:`Transformer`: an encoder-decoder with teacher forcing (:meth:`Transformer.forward`) and
  greedy decoding (:meth:`Transformer.greedy_decode`); :func:`t_fixup_init_` (Huang et al. 2020).
* :func:`evaluate_seq2seq` and :func:`ffn_gradient_norms`: exact-match accuracy on a toy task
  (trained with :func:`helpers.seqtrain.train_seq2seq`), and the per-layer gradient norms of
  Xiong et al. (2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..seqdata import sequence_accuracy

__all__ = [
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "padding_mask",
    "causal_mask",
    "sinusoidal_encoding",
    "shift_matrix",
    "PositionalEncoding",
    "FeedForward",
    "EncoderLayer",
    "DecoderLayer",
    "TransformerConfig",
    "Transformer",
    "t_fixup_scales",
    "t_fixup_init_",
    "evaluate_seq2seq",
    "ffn_gradient_norms",
]


# ----------------------------------------------------------------------------- attention


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> tuple[Tensor, Tensor]:
    """``softmax(Q K^T / sqrt(d_k)) V`` and the attention weights.

    Args:
        query: ``(..., L_q, d_k)``; key: ``(..., L_k, d_k)``; value: ``(..., L_k, d_v)``.
        mask: boolean, broadcastable to ``(..., L_q, L_k)``; ``True`` where query i may attend to
            key j. A query row with no allowed key gives NaN, as in PyTorch.
        dropout_p: dropout on the weights (only when ``training``).

    Returns:
        ``(output (..., L_q, d_v), weights (..., L_q, L_k))``.
    """
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got {mask.dtype}")
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # Q K^T / sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # forbidden pairs get weight 0
    weights = scores.softmax(dim=-1)  # each row sums to one
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights  # weighted average of V


class MultiHeadAttention(nn.Module):
    """Multi-head attention: ``Concat(head_1, ..., head_h) W^O`` with
    ``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)`` and ``d_k = d_v = d_model / h``.

    The h projections ``W_i^Q`` (``d_model x d_k`` each) are stored side by side as one
    ``d_model x d_model`` linear layer, and the same for K and V; the heads are split after the
    projection. The weights of the last call are kept in ``last_weights`` (detached) for plots.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.d_model, self.num_heads, self.d_k = d_model, num_heads, d_model // num_heads
        self.dropout = dropout
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.last_weights: Tensor | None = None

    def _split(self, x: Tensor) -> Tensor:
        """``(B, L, d_model) -> (B, h, L, d_k)``."""
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.d_k).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` ``(B, L_q, d)`` to ``key``/``value`` ``(B, L_k, d)``.

        ``mask`` is boolean, broadcastable to ``(B, h, L_q, L_k)``, ``True`` where attention is
        allowed (see :func:`padding_mask`, :func:`causal_mask`). Returns the output
        ``(B, L_q, d)`` and the per-head weights ``(B, h, L_q, L_k)``.
        """
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key and value must have the same length, got {key.shape[1]} and {value.shape[1]}")
        q = self._split(self.w_q(query))  # Q_i = E_Q W_i^Q
        k = self._split(self.w_k(key))  # K_i = E_K W_i^K
        v = self._split(self.w_v(value))  # V_i = E_V W_i^V
        heads, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout, self.training)
        b, _, n, _ = heads.shape
        concat = heads.transpose(1, 2).reshape(b, n, self.d_model)  # Concat(head_1..head_h)
        self.last_weights = weights.detach()
        return self.w_o(concat), weights  # ... W^O

    @torch.no_grad()
    def load_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a ``torch.nn.MultiheadAttention`` (same ``embed_dim`` and heads).

        PyTorch stacks ``W^Q, W^K, W^V`` as ``in_proj_weight`` (3d x d) and keeps ``W^O`` in
        ``out_proj``; both store ``y = x W^T + b`` like :class:`torch.nn.Linear`. Returns ``self``.
        """
        if mha.embed_dim != self.d_model or mha.num_heads != self.num_heads:
            raise ValueError(
                f"shape mismatch: torch MHA has embed_dim={mha.embed_dim}, heads={mha.num_heads}; "
                f"this one d_model={self.d_model}, heads={self.num_heads}"
            )
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("only torch MHA with kdim = vdim = embed_dim, no bias_k/bias_v, no add_zero_attn")
        has_bias = mha.in_proj_bias is not None
        if has_bias != (self.w_q.bias is not None):
            raise ValueError("bias settings differ between the two modules")
        for lin, w in zip((self.w_q, self.w_k, self.w_v), mha.in_proj_weight.chunk(3)):
            lin.weight.copy_(w)
        if has_bias:
            for lin, b in zip((self.w_q, self.w_k, self.w_v), mha.in_proj_bias.chunk(3)):
                lin.bias.copy_(b)
            self.w_o.bias.copy_(mha.out_proj.bias)
        self.w_o.weight.copy_(mha.out_proj.weight)
        return self


# ----------------------------------------------------------------------------- masks


def padding_mask(tokens: Tensor, pad_id: int = 0) -> Tensor:
    """``(B, 1, 1, L)`` bool: ``True`` at real tokens, ``False`` at ``<pad>`` (keys to ignore)."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be (batch, length), got shape {tuple(tokens.shape)}")
    return (tokens != pad_id)[:, None, None, :]


def causal_mask(length: int, device: torch.device | str | None = None) -> Tensor:
    """``(L, L)`` bool, lower triangular: position i may attend to positions ``j <= i`` only."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


# ----------------------------------------------------------------------------- positions


def sinusoidal_encoding(length: int, d_model: int) -> Tensor:
    """``(length, d_model)``: ``PE(pos, 2i) = sin(pos / 10000^(2i/d))``, ``PE(pos, 2i+1) = cos(...)``.

    The wavelengths form a geometric progression from ``2 pi`` to ``10000 * 2 pi``. An odd
    ``d_model`` drops the last cosine column.
    """
    if length < 1 or d_model < 1:
        raise ValueError(f"length and d_model must be positive, got {length}, {d_model}")
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    i2 = torch.arange(0, d_model, 2, dtype=torch.float64)  # the even indices 2i
    angle = pos / 10000.0 ** (i2 / d_model)  # pos / 10000^(2i/d)
    pe = torch.zeros(length, d_model + d_model % 2, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe[:, :d_model].float()


def shift_matrix(k: int, d_model: int) -> Tensor:
    """The fixed ``(d_model, d_model)`` matrix ``M_k`` with ``PE(pos + k) = M_k PE(pos)`` for every pos.

    For each frequency ``w_i = 10000^(-2i/d)`` the pair ``(sin(w p), cos(w p))`` turns by the angle
    ``w k``: ``sin(w(p+k)) = cos(wk) sin(wp) + sin(wk) cos(wp)`` and
    ``cos(w(p+k)) = -sin(wk) sin(wp) + cos(wk) cos(wp)``, a 2x2 rotation block on the diagonal.
    """
    if d_model % 2:
        raise ValueError("shift_matrix needs an even d_model (sin/cos pairs)")
    w = 1.0 / 10000.0 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    c, s = torch.cos(w * k), torch.sin(w * k)
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    idx = torch.arange(0, d_model, 2)
    m[idx, idx], m[idx, idx + 1] = c, s
    m[idx + 1, idx], m[idx + 1, idx + 1] = -s, c
    return m


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to a ``(B, L, d_model)`` input, then dropout."""

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[1]
        if n > self.pe.shape[0]:
            raise ValueError(f"sequence of length {n} is longer than max_len={self.pe.shape[0]}")
        return self.drop(x + self.pe[:n])


# ----------------------------------------------------------------------------- layers


class FeedForward(nn.Module):
    """Position-wise ``FFN(x) = max(0, x W_1 + b_1) W_2 + b_2`` (``d_model -> d_ff -> d_model``)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.drop(F.relu(self.linear1(x))))


def _norm(d_model: int, layer_norm: bool) -> nn.Module:
    return nn.LayerNorm(d_model) if layer_norm else nn.Identity()


@torch.no_grad()
def _copy_linear(dst: nn.Linear, src: nn.Linear) -> None:
    dst.weight.copy_(src.weight)
    if dst.bias is not None:
        dst.bias.copy_(src.bias)


@torch.no_grad()
def _copy_norm(dst: nn.Module, src: nn.LayerNorm) -> None:
    if not isinstance(dst, nn.LayerNorm):
        raise ValueError("this layer has no LayerNorm to load into (layer_norm=False)")
    dst.weight.copy_(src.weight)
    dst.bias.copy_(src.bias)


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a norm.

    Post-LN (``norm_first=False``, Vaswani et al.)::

        n   = Norm(X + MHA(X, X, X))
        out = Norm(n + FFN(n))

    Pre-LN (``norm_first=True``, Xiong et al.): ``X = X + MHA(Norm(X), ...)``, ``X = X + FFN(Norm(X))``;
    a Pre-LN stack needs one more Norm after its last layer (:class:`Transformer` adds it).
    ``layer_norm=False`` replaces every Norm with the identity (for T-Fixup).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        norm_first: bool = False,
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = _norm(d_model, layer_norm), _norm(d_model, layer_norm)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``(B, L, d)``; ``mask`` as in :class:`MultiHeadAttention` (e.g. :func:`padding_mask`)."""
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.drop1(self.self_attn(h, h, h, mask)[0])  # X + MHA(Norm(X))
            return x + self.drop2(self.ff(self.norm2(x)))  # X + FFN(Norm(X))
        n = self.norm1(x + self.drop1(self.self_attn(x, x, x, mask)[0]))  # n = Norm(X + MHA(X, X, X))
        return self.norm2(n + self.drop2(self.ff(n)))  # Norm(n + FFN(n))

    @torch.no_grad()
    def load_torch(self, layer: nn.TransformerEncoderLayer) -> EncoderLayer:
        """Copy a ``torch.nn.TransformerEncoderLayer`` (ReLU, same sizes and ``norm_first``)."""
        if layer.norm_first != self.norm_first:
            raise ValueError(f"norm_first differs: torch {layer.norm_first}, this {self.norm_first}")
        self.self_attn.load_torch(layer.self_attn)
        _copy_linear(self.ff.linear1, layer.linear1)
        _copy_linear(self.ff.linear2, layer.linear2)
        _copy_norm(self.norm1, layer.norm1)
        _copy_norm(self.norm2, layer.norm2)
        return self


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the encoder output, feed-forward.

    Post-LN (``norm_first=False``), written as the theses' pseudocode but corrected::

        n1  = Norm(Y + MHA(Y, Y, Y, causal))
        n2  = Norm(n1 + MHA(n1, Z, Z))          # query: the decoder stream; keys, values: encoder output Z
        out = Norm(n2 + FFN(n2))

    Pre-LN (``norm_first=True``): each sub-layer is ``Y = Y + SubLayer(Norm(Y))``.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        norm_first: bool = False,
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = (_norm(d_model, layer_norm) for _ in range(3))
        self.drop1, self.drop2, self.drop3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(
        self, y: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None
    ) -> Tensor:
        """``y`` ``(B, T, d)`` decoder stream; ``memory`` ``(B, S, d)`` encoder output.

        ``tgt_mask`` usually combines :func:`causal_mask` and the target :func:`padding_mask`;
        ``memory_mask`` is the source :func:`padding_mask`.
        """
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.drop1(self.self_attn(h, h, h, tgt_mask)[0])
            h = self.norm2(y)
            y = y + self.drop2(self.cross_attn(h, memory, memory, memory_mask)[0])
            return y + self.drop3(self.ff(self.norm3(y)))
        n1 = self.norm1(y + self.drop1(self.self_attn(y, y, y, tgt_mask)[0]))  # norm_1
        n2 = self.norm2(n1 + self.drop2(self.cross_attn(n1, memory, memory, memory_mask)[0]))  # + norm_1
        return self.norm3(n2 + self.drop3(self.ff(n2)))

    @torch.no_grad()
    def load_torch(self, layer: nn.TransformerDecoderLayer) -> DecoderLayer:
        """Copy a ``torch.nn.TransformerDecoderLayer`` (ReLU, same sizes and ``norm_first``)."""
        if layer.norm_first != self.norm_first:
            raise ValueError(f"norm_first differs: torch {layer.norm_first}, this {self.norm_first}")
        self.self_attn.load_torch(layer.self_attn)
        self.cross_attn.load_torch(layer.multihead_attn)
        _copy_linear(self.ff.linear1, layer.linear1)
        _copy_linear(self.ff.linear2, layer.linear2)
        for mine, theirs in ((self.norm1, layer.norm1), (self.norm2, layer.norm2), (self.norm3, layer.norm3)):
            _copy_norm(mine, theirs)
        return self


# ----------------------------------------------------------------------------- the model


@dataclass
class TransformerConfig:
    """Sizes and options of a :class:`Transformer` (the base model of the paper is
    ``d_model=512, num_heads=8, d_ff=2048, enc_layers=dec_layers=6, dropout=0.1``)."""

    src_vocab: int
    tgt_vocab: int
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    enc_layers: int = 2
    dec_layers: int = 2
    dropout: float = 0.1
    norm_first: bool = False
    layer_norm: bool = True
    max_len: int = 256
    pad_id: int = 0


class Transformer(nn.Module):
    """Encoder-decoder Transformer: embeddings (times ``sqrt(d_model)``) + sinusoidal positions,
    a stack of :class:`EncoderLayer`, a stack of :class:`DecoderLayer`, and a linear generator
    (initialised by :meth:`reset_parameters`).

    With ``norm_first=True`` each stack ends with a LayerNorm (Pre-LN needs it); with
    ``layer_norm=False`` there is no normalisation anywhere (use :func:`t_fixup_init_`).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = self.config = config
        self.src_embed = nn.Embedding(c.src_vocab, c.d_model, padding_idx=c.pad_id)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.d_model, padding_idx=c.pad_id)
        self.pos = PositionalEncoding(c.d_model, c.max_len, c.dropout)
        self.encoder = nn.ModuleList(
            EncoderLayer(c.d_model, c.num_heads, c.d_ff, c.dropout, c.norm_first, c.layer_norm)
            for _ in range(c.enc_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(c.d_model, c.num_heads, c.d_ff, c.dropout, c.norm_first, c.layer_norm)
            for _ in range(c.dec_layers)
        )
        final = c.norm_first and c.layer_norm
        self.enc_norm = nn.LayerNorm(c.d_model) if final else nn.Identity()
        self.dec_norm = nn.LayerNorm(c.d_model) if final else nn.Identity()
        self.generator = nn.Linear(c.d_model, c.tgt_vocab)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Default initialisation: Xavier-uniform linear weights (zero biases) and token embeddings
        ``~ N(0, d_model^-1/2)``, so that after the ``sqrt(d_model)`` scaling they have unit
        variance like the positional encodings (PyTorch's ``N(0, 1)`` embeddings times
        ``sqrt(d_model)`` would drown the positions and every sub-layer's output)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.normal_(emb.weight, mean=0.0, std=self.config.d_model**-0.5)
            emb.weight[self.config.pad_id].zero_()

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """``src`` ``(B, S)`` ids -> (memory ``(B, S, d)``, source padding mask)."""
        src_mask = padding_mask(src, self.config.pad_id)
        x = self.pos(self.src_embed(src) * math.sqrt(self.config.d_model))
        for layer in self.encoder:
            x = layer(x, src_mask)
        return self.enc_norm(x), src_mask

    def decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """``tgt_in`` ``(B, T)`` ids (starting with ``<bos>``) -> logits ``(B, T, tgt_vocab)``."""
        t = tgt_in.shape[1]
        tgt_mask = padding_mask(tgt_in, self.config.pad_id) & causal_mask(t, tgt_in.device)
        y = self.pos(self.tgt_embed(tgt_in) * math.sqrt(self.config.d_model))
        for layer in self.decoder:
            y = layer(y, memory, tgt_mask, src_mask)
        return self.generator(self.dec_norm(y))

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: the decoder reads the true previous tokens ``tgt_in`` (``tgt[:, :-1]``)
        and returns logits for the next ones (``tgt[:, 1:]``), all positions at once."""
        memory, src_mask = self.encode(src)
        return self.decode(tgt_in, memory, src_mask)

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, max_len: int, bos_id: int, eos_id: int) -> Tensor:
        """Inference: start from ``<bos>``, append the most likely token, repeat.

        Returns ``(B, <= max_len + 1)`` ids beginning with ``<bos>``; positions after a row's
        ``<eos>`` are ``<pad>``. The encoder runs once; the decoder re-reads its own outputs.
        """
        was_training = self.training
        self.eval()
        memory, src_mask = self.encode(src)
        out = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            next_tok = self.decode(out, memory, src_mask)[:, -1].argmax(-1)
            next_tok = next_tok.masked_fill(done, self.config.pad_id)
            out = torch.cat([out, next_tok[:, None]], dim=1)
            done |= next_tok == eos_id
            if done.all():
                break
        self.train(was_training)
        return out


# ----------------------------------------------------------------------------- T-Fixup


def t_fixup_scales(enc_layers: int, dec_layers: int) -> dict[str, float]:
    """The two T-Fixup factors: ``encoder = 0.67 N_e^(-1/4)`` and ``decoder = (9 N_d)^(-1/4)``."""
    if enc_layers < 1 or dec_layers < 1:
        raise ValueError("T-Fixup needs at least one encoder and one decoder layer")
    return {"encoder": 0.67 * enc_layers**-0.25, "decoder": (9 * dec_layers) ** -0.25}


@torch.no_grad()
def t_fixup_init_(model: Transformer) -> dict[str, float]:
    """T-Fixup initialisation (Huang et al., 2020), in place. Returns the factors used.

    1. Xavier-uniform for every linear weight (biases zero), each projection on its own.
    2. Token embeddings ``~ N(0, d^(-1/2))`` (standard deviation ``d_model^(-1/2)``).
    3. In every decoder layer scale ``W^V`` and ``W^O`` of both attentions and both FFN weights,
       and the source and target embeddings, by ``(9 N_d)^(-1/4)``.
    4. In every encoder layer scale ``W^V``, ``W^O`` and both FFN weights by ``0.67 N_e^(-1/4)``.

    ``N_e``/``N_d`` are the numbers of encoder/decoder layers. The generator keeps its Xavier
    weights and the forward pass still multiplies embeddings by ``sqrt(d_model)``. The scheme is
    meant for a model without LayerNorm (``layer_norm=False``) trained without warmup.
    """
    c = model.config
    scales = t_fixup_scales(c.enc_layers, c.dec_layers)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for emb in (model.src_embed, model.tgt_embed):
        nn.init.normal_(emb.weight, mean=0.0, std=c.d_model**-0.5)
        emb.weight.mul_(scales["decoder"])
        emb.weight[c.pad_id].zero_()
    for layer in model.encoder:
        for lin in (layer.self_attn.w_v, layer.self_attn.w_o, layer.ff.linear1, layer.ff.linear2):
            lin.weight.mul_(scales["encoder"])
    for layer in model.decoder:
        for lin in (
            layer.self_attn.w_v,
            layer.self_attn.w_o,
            layer.cross_attn.w_v,
            layer.cross_attn.w_o,
            layer.ff.linear1,
            layer.ff.linear2,
        ):
            lin.weight.mul_(scales["decoder"])
    return scales


# ----------------------------------------------------------------------------- training on a toy task


@torch.no_grad()
def evaluate_seq2seq(
    model: Transformer, src: Tensor, tgt: Tensor, bos_id: int, eos_id: int, batch_size: int = 256
) -> dict[str, float]:
    """Greedy-decode ``src`` and compare with ``tgt[:, 1:]``.

    Returns ``{"token_accuracy", "exact_match"}``: the share of non-pad target tokens predicted
    right, and the share of rows whose whole output (up to and including ``<eos>``) is right.
    """
    device = next(model.parameters()).device
    pad = model.config.pad_id
    correct = total = exact = 0
    for i in range(0, src.shape[0], batch_size):
        s, t = src[i : i + batch_size].to(device), tgt[i : i + batch_size, 1:].to(device)
        pred = model.greedy_decode(s, t.shape[1], bos_id, eos_id)[:, 1:]
        if pred.shape[1] < t.shape[1]:
            pred = F.pad(pred, (0, t.shape[1] - pred.shape[1]), value=pad)
        n_tokens = (t != pad).sum().item()
        token_acc, exact_acc = sequence_accuracy(pred, t, pad)
        correct += token_acc * n_tokens
        total += n_tokens
        exact += exact_acc * t.shape[0]
    return {"token_accuracy": correct / max(total, 1), "exact_match": exact / src.shape[0]}


def ffn_gradient_norms(model: Transformer, src: Tensor, tgt: Tensor) -> dict[str, list[float]]:
    """Gradient norm of the second FFN weight ``W_2`` of every layer, for one batch at the current weights.

    This is the quantity Xiong et al. (2020) plot at initialisation to compare Post-LN and Pre-LN:
    one cross-entropy backward pass with teacher forcing (dropout off). Returns
    ``{"encoder": [layer 1, ...], "decoder": [layer 1, ...]}``.
    """
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    logits = model(src, tgt[:, :-1])
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=model.config.pad_id
    )
    loss.backward()
    out = {
        "encoder": [layer.ff.linear2.weight.grad.norm().item() for layer in model.encoder],
        "decoder": [layer.ff.linear2.weight.grad.norm().item() for layer in model.decoder],
    }
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return out
