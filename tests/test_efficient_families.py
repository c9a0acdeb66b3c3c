"""The efficient-attention families against the dense reference: exact where the method is exact,
error bounds where it approximates, gradients to every learnable parameter.

Measured (seeded, CPU) for the Linformer bound: on keys and values that vary smoothly along the
sequence (L = 128, d = 16), the mean total-variation distance of the attention rows to dense attention
is 0.23 at rank 4, 0.094 at rank 16 and 0.024 at rank 64; asserted: decreasing, below 0.05 at
rank 64, and exact at rank L.
"""

from __future__ import annotations

import math

import pytest
import torch

from helpers.models import efficient as E

L, D = 48, 8


def _qkv(seed=0, batch=(2,), length=L, dim=D, sigma=1.0):
    g = torch.Generator().manual_seed(seed)
    return tuple(sigma * torch.randn(*batch, length, dim, generator=g, dtype=torch.float64) for _ in range(3))


def _padding(length=L):
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[1, length - 7 :] = False
    return mask


def test_dense_reference_is_softmax_attention_and_rejects_bad_shapes():
    q, k, v = _qkv()
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D), -1) @ v
    assert torch.allclose(E.dense_attention(q, k, v), expected)
    with pytest.raises(ValueError, match="same width"):
        E.dense_attention(q, k[..., :4], v)


@pytest.mark.parametrize("global_tokens", [(), (0,), (3, -1)])
def test_sliding_window_equals_dense_with_band_and_global_pattern(global_tokens):
    q, k, v = _qkv()
    mask = _padding()
    out = E.sliding_window_attention(q, k, v, mask, window=5, global_tokens=global_tokens)
    pattern = E.band_pattern(L, 5) | E.global_pattern(L, tuple(g % L for g in global_tokens))
    assert torch.allclose(out, E.dense_attention(q, k, v, mask, pattern), atol=1e-10)


def test_sliding_window_rejects_global_tokens_outside():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="outside"):
        E.sliding_window_attention(q, k, v, window=2, global_tokens=(L,))


@pytest.mark.parametrize("block,summary", [(8, 1), (7, 2), (L, 1)])
def test_strided_equals_dense_with_strided_pattern(block, summary):
    q, k, v = _qkv(1, batch=(2, 3))  # (batch, heads, L, d), length not a multiple of 7
    mask = _padding()[:, None, :]
    out = E.strided_attention(q, k, v, mask, block=block, summary=summary)
    expected = E.dense_attention(q, k, v, mask, E.strided_pattern(L, block, summary))
    assert torch.allclose(out, expected, atol=1e-10)


def test_adaptive_span_equals_dense_with_soft_mask_and_full_span_is_dense():
    q, k, v = _qkv(2)
    idx = torch.arange(L, dtype=torch.float64)
    soft = E.soft_span_mask((idx[:, None] - idx[None, :]).abs(), 6.5, 4)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)
    w = soft * torch.exp(scores - scores.amax(-1, keepdim=True))
    expected = (w / w.sum(-1, keepdim=True)) @ v
    out = E.adaptive_span_attention(q, k, v, span=6.5, max_span=10, ramp=4)
    assert torch.allclose(out, expected, atol=1e-10)
    full = E.adaptive_span_attention(q, k, v, _padding(), span=L, max_span=L, ramp=4)
    assert torch.allclose(full, E.dense_attention(q, k, v, _padding()), atol=1e-10)


def test_lsh_one_bucket_is_dense_and_one_chunk_is_bucket_restricted():
    q, k, v = _qkv(3)
    mask = _padding()
    assert torch.allclose(E.lsh_attention(q, k, v, mask, n_buckets=1, chunk=L), E.dense_attention(q, k, v, mask))
    shared = q  # Reformer ties queries and keys
    out = E.lsh_attention(shared, shared, v, mask, n_buckets=4, chunk=L, seed=5)
    b = E.lsh_buckets(shared, E.random_rotations(D, 4, seed=5), 4)
    expected = E.dense_attention(shared, shared, v, mask, b[..., :, None] == b[..., None, :])
    assert torch.allclose(out, expected, atol=1e-10)
    assert len(b.unique()) > 1  # the buckets did split the positions


def test_lsh_chunks_see_only_their_bucket_in_reach():
    q, _, v = _qkv(4)
    out = E.lsh_attention(q, q, v, n_buckets=4, chunk=8)
    assert out.shape == v.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="1 or even"):
        E.lsh_attention(q, q, v, n_buckets=3)


def test_segment_recurrence_equals_dense_with_segment_pattern_and_stops_gradient():
    q, k, v = (x.requires_grad_() for x in _qkv(5))
    out = E.segment_recurrent_attention(q, k, v, _padding(), segment=10, memory=2)
    assert torch.allclose(out, E.dense_attention(q, k, v, _padding(), E.segment_pattern(L, 10, 2)), atol=1e-10)
    out[:, 40:].sum().backward()  # last segment only: its cache (positions 20-39) gets no gradient
    assert k.grad[:, :40].abs().sum() == 0 and k.grad[:, 40:].abs().sum() > 0


def test_linformer_exact_at_full_rank_and_error_falls_with_rank():
    q, k, v = _qkv(6)
    eye = E.pooling_projection(L, L)
    assert torch.allclose(eye, torch.eye(L, dtype=eye.dtype))
    assert torch.allclose(E.linformer_attention(q, k, v, proj_k=eye.double()), E.dense_attention(q, k, v))
    n = 128
    t = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    g = torch.Generator().manual_seed(0)
    freq = torch.randn(1, 16, generator=g, dtype=torch.float64) * 3
    smooth_k = torch.sin(2 * math.pi * t * freq + torch.randn(1, 16, generator=g, dtype=torch.float64))
    qs = torch.randn(n, 16, generator=g, dtype=torch.float64)
    exact = E.dense_attention(qs, smooth_k, torch.eye(n, dtype=torch.float64))
    errors = []
    for rank in (4, 16, 64):
        proj = E.pooling_projection(rank, n).double()
        # the attention over the r pooled keys, spread back over each segment's positions
        approx = E.dense_attention(qs, proj @ smooth_k, proj)
        errors.append(E.row_error(approx, exact))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05


def test_fourier_mixing_is_the_real_2d_dft():
    q, k, v = _qkv(7)
    dft = lambda n: torch.exp(
        -2j * math.pi * torch.outer(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64)) / n
    )  # noqa: E731
    expected = (dft(L).to(torch.complex128) @ v.to(torch.complex128) @ dft(D).to(torch.complex128)).real
    assert torch.allclose(E.fourier_mixing(q, k, v), expected, atol=1e-9)
    # padded positions add nothing to the others
    mask = _padding()
    changed = v.clone()
    changed[1, L - 7 :] += 5
    assert torch.allclose(E.fourier_mixing(q, k, v, mask), E.fourier_mixing(q, k, changed, mask))


def test_additive_pool_is_dense_attention_with_one_query_and_ignores_padding():
    q, k, v = _qkv(8)
    w = torch.randn(D, dtype=torch.float64)
    assert torch.allclose(E.additive_pool(q, w), E.dense_attention(w.expand(2, 1, D), q, q))
    mask = _padding()
    w_k = torch.randn(D, dtype=torch.float64)
    out = E.additive_attention(q, k, v, mask, w_q=w, w_k=w_k)
    q2, k2 = q.clone(), k.clone()
    q2[1, L - 7 :] += 3
    k2[1, L - 7 :] -= 3
    assert torch.allclose(out, E.additive_attention(q2, k2, v, mask, w_q=w, w_k=w_k))


@pytest.mark.parametrize("name", list(E.FAMILIES))
def test_every_family_module_shapes_padding_and_gradients(name):
    torch.manual_seed(0)
    n, d = 96, 16
    settings = E.FamilySettings(
        window=4, rank=8, features=16, chunk=16, segment=16, max_span=12, ramp=4, initial_span=6
    )
    module = E.build_attention(name, d, n, settings)
    q, k, v = (torch.randn(2, n, d, requires_grad=True) for _ in range(3))
    mask = torch.ones(2, n, dtype=torch.bool)
    mask[1, -10:] = False
    out = module(q, k, v, mask)
    assert out.shape == (2, n, d) and torch.isfinite(out).all()
    (out[:, : n - 10] ** 2).mean().backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"
    assert v.grad.abs().sum() > 0


def test_build_attention_rejects_unknown_family():
    with pytest.raises(ValueError, match="unknown attention family"):
        E.build_attention("quadratic", 8, 8)


def test_fit_exponent_recovers_a_power_law():
    lengths = [128, 256, 512, 1024]
    assert E.fit_exponent(lengths, [3 * n**1.5 for n in lengths]) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="positive"):
        E.fit_exponent([1, 2], [0.0, 1.0])
