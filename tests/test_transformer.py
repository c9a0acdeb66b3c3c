"""The from-scratch Transformer against PyTorch's modules, masks, positions, T-Fixup, decoding.

Measured on CPU, float32 (seeded): MultiHeadAttention vs torch.nn.MultiheadAttention with copied
weights differs by at most ~1.2e-7 in outputs and weights (no mask, key padding, causal +
padding); encoder/decoder layers vs torch.nn.TransformerEncoderLayer/DecoderLayer by at most
~5e-7. The bound asserted is 1e-5.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import seqdata
from helpers.models import transformer as T
from helpers.seqtrain import train_seq2seq

TOL = 1e-5
D, H = 32, 4


def _torch_masks(mask: torch.Tensor | None, pad: torch.Tensor | None):
    """Our 'True = may attend' masks -> torch's 'True = blocked' attn_mask / key_padding_mask."""
    return (None if mask is None else ~mask), (None if pad is None else ~pad)


@pytest.fixture
def mha_pair():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(D, H, batch_first=True).eval()
    mine = T.MultiHeadAttention(D, H).load_torch(ref).eval()
    return ref, mine


def test_scaled_dot_product_matches_torch():
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    out, w = T.scaled_dot_product_attention(q, k, v)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert (out - ref).abs().max() < TOL
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 5))
    # the scale is 1/sqrt(d_k): doubling q and k at d_k=4 equals the unscaled product
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), -1)
    assert (w - expected).abs().max() < TOL


def test_scaled_dot_product_rejects_non_bool_mask():
    q = torch.randn(1, 2, 4)
    with pytest.raises(TypeError, match="bool"):
        T.scaled_dot_product_attention(q, q, q, mask=torch.ones(2, 2))


@pytest.mark.parametrize("case", ["none", "padding", "causal", "causal+padding"])
def test_mha_matches_torch(mha_pair, case):
    ref, mine = mha_pair
    torch.manual_seed(2)
    L = 7
    x = torch.randn(3, L, D)
    tokens = torch.randint(1, 9, (3, L))
    tokens[0, 4:] = 0
    tokens[2, 6:] = 0
    pad = T.padding_mask(tokens) if "padding" in case else None
    causal = T.causal_mask(L) if "causal" in case else None
    mask = pad if causal is None else (causal if pad is None else pad & causal)
    attn_mask, kpm = _torch_masks(causal, None if pad is None else pad[:, 0, 0, :])
    out_ref, w_ref = ref(x, x, x, attn_mask=attn_mask, key_padding_mask=kpm, average_attn_weights=False)
    out, w = mine(x, x, x, mask)
    assert out.shape == (3, L, D) and w.shape == (3, H, L, L)
    assert (out - out_ref).abs().max().item() < TOL
    assert (w - w_ref).abs().max().item() < TOL


def test_mha_cross_attention_lengths_and_weights(mha_pair):
    ref, mine = mha_pair
    torch.manual_seed(3)
    q, kv = torch.randn(2, 4, D), torch.randn(2, 9, D)
    out_ref, w_ref = ref(q, kv, kv, average_attn_weights=False)
    out, w = mine(q, kv, kv)
    assert out.shape == (2, 4, D) and w.shape == (2, H, 4, 9)
    assert (out - out_ref).abs().max() < TOL and (w - w_ref).abs().max() < TOL


def test_mha_load_torch_rejects_mismatch():
    with pytest.raises(ValueError, match="mismatch"):
        T.MultiHeadAttention(D, H).load_torch(nn.MultiheadAttention(D, 8))
    with pytest.raises(ValueError, match="divisible"):
        T.MultiHeadAttention(30, 4)


def test_masks_block_what_they_should():
    tokens = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 0]])
    pm = T.padding_mask(tokens)
    assert pm.shape == (2, 1, 1, 4)
    assert pm[0, 0, 0].tolist() == [True, True, False, False]
    cm = T.causal_mask(4)
    assert cm.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, True, True, False],
        [True, True, True, True],
    ]
    mha = T.MultiHeadAttention(8, 2)
    x = torch.randn(2, 4, 8)
    _, w = mha(x, x, x, pm & cm)
    assert torch.all(w[0, :, :, 2:] == 0)  # padded keys get no weight
    assert torch.all(w.triu(1) == 0)  # no query looks ahead
    # changing a future token does not change earlier outputs under the causal mask
    y = x.clone()
    y[:, 3] += 10
    out_x, _ = mha(x, x, x, cm)
    out_y, _ = mha(y, y, y, cm)
    assert torch.allclose(out_x[:, :3], out_y[:, :3], atol=1e-6)
    assert not torch.allclose(out_x[:, 3], out_y[:, 3])


def test_sinusoidal_encoding_values_and_shift_matrix():
    pe = T.sinusoidal_encoding(2000, 500)
    assert pe.shape == (2000, 500)
    assert pe[0, 0::2].abs().max() == 0 and torch.all(pe[0, 1::2] == 1)
    pos, i = 37, 10
    assert abs(pe[pos, 2 * i].item() - math.sin(pos / 10000 ** (2 * i / 500))) < 1e-6
    assert abs(pe[pos, 2 * i + 1].item() - math.cos(pos / 10000 ** (2 * i / 500))) < 1e-6
    pe64 = T.sinusoidal_encoding(2000, 500).double()
    for k in (1, 5, 100):
        m = T.shift_matrix(k, 500)
        # M_k is the same for every position, orthogonal, and block-diagonal with 2x2 rotations
        assert torch.allclose(m @ m.T, torch.eye(500, dtype=torch.float64), atol=1e-12)
        pred = pe64[: 2000 - k] @ m.T  # rows: M_k PE(pos)
        assert (pred - pe64[k:]).abs().max().item() < 1e-4
    assert T.sinusoidal_encoding(3, 5).shape == (3, 5)
    with pytest.raises(ValueError):
        T.shift_matrix(1, 5)


def test_positional_encoding_rejects_long_input():
    pe = T.PositionalEncoding(8, max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        pe(torch.zeros(1, 5, 8))


@pytest.mark.parametrize("norm_first", [False, True])
def test_layers_match_torch(norm_first):
    torch.manual_seed(4)
    x, y = torch.randn(3, 7, D), torch.randn(3, 5, D)
    tokens = torch.randint(1, 9, (3, 7))
    tokens[1, 5:] = 0
    pm = T.padding_mask(tokens)
    enc_ref = nn.TransformerEncoderLayer(D, H, 64, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    enc = T.EncoderLayer(D, H, 64, 0.0, norm_first).load_torch(enc_ref).eval()
    diff = (enc(x, pm) - enc_ref(x, src_key_padding_mask=tokens == 0)).abs().max().item()
    assert diff < TOL
    dec_ref = nn.TransformerDecoderLayer(D, H, 64, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    dec = T.DecoderLayer(D, H, 64, 0.0, norm_first).load_torch(dec_ref).eval()
    ref = dec_ref(y, x, tgt_mask=~T.causal_mask(5), memory_key_padding_mask=tokens == 0)
    assert (dec(y, x, T.causal_mask(5), pm) - ref).abs().max().item() < TOL


@pytest.mark.parametrize("norm_first,layer_norm", [(False, True), (True, True), (False, False)])
def test_layers_shapes_and_gradients(norm_first, layer_norm):
    torch.manual_seed(5)
    enc = T.EncoderLayer(D, H, 64, 0.1, norm_first, layer_norm)
    dec = T.DecoderLayer(D, H, 64, 0.1, norm_first, layer_norm)
    x = torch.randn(2, 6, D, requires_grad=True)
    y = torch.randn(2, 4, D, requires_grad=True)
    z = enc(x)
    out = dec(y, z, T.causal_mask(4))
    assert z.shape == (2, 6, D) and out.shape == (2, 4, D)
    out.square().mean().backward()
    for p in list(enc.parameters()) + list(dec.parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0
    has_ln = any(isinstance(m, nn.LayerNorm) for m in dec.modules())
    assert has_ln == layer_norm


def test_post_ln_decoder_uses_decoder_stream_as_query():
    """The corrected pseudocode: cross-attention reads queries from the decoder (length T)."""
    torch.manual_seed(6)
    dec = T.DecoderLayer(D, H, 64, 0.0).eval()
    y, mem = torch.randn(1, 3, D), torch.randn(1, 8, D)
    dec(y, mem)
    assert dec.cross_attn.last_weights.shape == (1, H, 3, 8)


def _toy(n=64, seed=0):
    pairs = seqdata.reverse_pairs(n, 2, 5, "abcd", seed=seed)
    sv = seqdata.Vocab("abcd")
    return seqdata.encode_pairs(pairs, sv, sv), sv


def test_transformer_forward_greedy_and_pre_ln():
    (src, tgt), v = _toy(8)
    for norm_first in (False, True):
        cfg = T.TransformerConfig(len(v), len(v), d_model=32, num_heads=4, d_ff=64, norm_first=norm_first)
        model = T.Transformer(cfg)
        logits = model(src, tgt[:, :-1])
        assert logits.shape == (8, tgt.shape[1] - 1, len(v))
        out = model.greedy_decode(src, max_len=6, bos_id=v.bos_id, eos_id=v.eos_id)
        assert out.shape[0] == 8 and out.shape[1] <= 7 and torch.all(out[:, 0] == v.bos_id)
        assert isinstance(model.enc_norm, nn.LayerNorm) == norm_first


def test_greedy_decoding_equals_teacher_forcing_argmax():
    """Greedy decoding re-reads its own outputs: feeding them back with teacher forcing gives the same tokens."""
    torch.manual_seed(7)
    (src, _), v = _toy(6)
    model = T.Transformer(T.TransformerConfig(len(v), len(v), d_model=32, num_heads=4, d_ff=64)).eval()
    out = model.greedy_decode(src, max_len=5, bos_id=v.bos_id, eos_id=v.eos_id)
    with torch.no_grad():
        again = model(src, out[:, :-1]).argmax(-1)
    alive = torch.ones_like(out[:, 1:], dtype=torch.bool)
    for row in range(out.shape[0]):  # compare up to and including each row's <eos>
        hits = (out[row, 1:] == v.eos_id).nonzero()
        if len(hits):
            alive[row, hits[0, 0] + 1 :] = False
    assert torch.equal(again[alive], out[:, 1:][alive])


def test_training_learns_reversal_and_greedy_decodes_it():
    torch.manual_seed(0)
    (src, tgt), v = _toy(512, seed=0)
    (tsrc, ttgt), _ = _toy(128, seed=1)
    model = T.Transformer(T.TransformerConfig(len(v), len(v), d_model=32, num_heads=4, d_ff=64, dropout=0.0))
    before = T.evaluate_seq2seq(model, tsrc, ttgt, v.bos_id, v.eos_id)
    hist = train_seq2seq(model, src, tgt, epochs=12, batch_size=32, lr=2e-3, betas=(0.9, 0.98), eps=1e-9)
    after = T.evaluate_seq2seq(model, tsrc, ttgt, v.bos_id, v.eos_id)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert after["token_accuracy"] > max(0.6, before["token_accuracy"] + 0.3)


def test_t_fixup_scales_and_init():
    s = T.t_fixup_scales(6, 6)
    assert s["encoder"] == pytest.approx(0.67 * 6**-0.25)
    assert s["decoder"] == pytest.approx((9 * 6) ** -0.25)
    torch.manual_seed(8)
    d, n_e, n_d = 256, 3, 4
    cfg = T.TransformerConfig(
        500, 400, d_model=d, num_heads=4, d_ff=512, enc_layers=n_e, dec_layers=n_d, layer_norm=False, dropout=0.0
    )
    model = T.Transformer(cfg)
    scales = T.t_fixup_init_(model)
    enc_s, dec_s = 0.67 * n_e**-0.25, (9 * n_d) ** -0.25
    # embeddings: N(0, d^-1/2) (std), times (9 N_d)^-1/4; the <pad> row is zero
    emb = model.src_embed.weight[1:]
    assert emb.std().item() == pytest.approx(d**-0.5 * dec_s, rel=0.03)
    assert model.src_embed.weight[0].abs().max() == 0

    # Xavier-uniform bound sqrt(6 / (fan_in + fan_out)), scaled
    def bound(lin):
        return math.sqrt(6.0 / (lin.in_features + lin.out_features))

    for layer in model.encoder:
        v = layer.self_attn.w_v
        assert v.weight.abs().max().item() == pytest.approx(bound(v) * enc_s, rel=0.02)
        q = layer.self_attn.w_q  # Q and K are plain Xavier
        assert q.weight.abs().max().item() == pytest.approx(bound(q), rel=0.02)
        f = layer.ff.linear2
        assert f.weight.abs().max().item() == pytest.approx(bound(f) * enc_s, rel=0.02)
    for layer in model.decoder:
        for lin in (layer.self_attn.w_o, layer.cross_attn.w_v, layer.ff.linear1):
            assert lin.weight.abs().max().item() == pytest.approx(bound(lin) * dec_s, rel=0.02)
        assert layer.cross_attn.w_k.weight.abs().max().item() == pytest.approx(bound(layer.cross_attn.w_k), rel=0.02)
        assert layer.ff.linear1.bias.abs().max() == 0
    assert scales == pytest.approx({"encoder": enc_s, "decoder": dec_s})
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())


def test_ffn_gradient_norms_shape():
    (src, tgt), v = _toy(16)
    model = T.Transformer(
        T.TransformerConfig(len(v), len(v), d_model=32, num_heads=4, d_ff=64, enc_layers=3, dec_layers=2)
    )
    norms = T.ffn_gradient_norms(model, src, tgt)
    assert len(norms["encoder"]) == 3 and len(norms["decoder"]) == 2
    assert all(n > 0 and math.isfinite(n) for n in norms["encoder"] + norms["decoder"])
    assert all(p.grad is None for p in model.parameters())


def test_fit_rejects_mismatched_rows():
    (src, tgt), v = _toy(8)
    model = T.Transformer(T.TransformerConfig(len(v), len(v), d_model=16, num_heads=2, d_ff=32))
    with pytest.raises(ValueError, match="rows"):
        train_seq2seq(model, src, tgt[:4], epochs=1)


def test_default_init_scales_embeddings_like_positions():
    torch.manual_seed(9)
    model = T.Transformer(T.TransformerConfig(300, 200, d_model=128, num_heads=4, d_ff=256))
    emb = model.src_embed.weight[1:] * math.sqrt(128)  # what the encoder adds to the positions
    assert emb.std().item() == pytest.approx(1.0, rel=0.05)
    assert model.src_embed.weight[0].abs().max() == 0 and model.generator.bias.abs().max() == 0
