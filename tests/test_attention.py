"""Alignment functions against hand-worked values, the attention distributions' properties, seq2seq."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import seqdata
from helpers.models import attention as A
from helpers.seqtrain import train_seq2seq

# Tiny models run fastest (and least disturbed by a busy machine) on one thread.
pytestmark = pytest.mark.usefixtures("one_thread")

# one query and two keys, small enough to work by hand
Q = torch.tensor([[1.0, 2.0]])
K = torch.tensor([[[3.0, 0.0], [1.0, 1.0]]])


def _set(module, **values):
    with torch.no_grad():
        for name, value in values.items():
            obj = module
            *path, last = name.split(".")
            for p in path:
                obj = getattr(obj, p)
            getattr(obj, last).copy_(torch.as_tensor(value, dtype=torch.float32))
    return module


def test_cosine():
    expected = [3 / (math.sqrt(5) * 3), 3 / (math.sqrt(5) * math.sqrt(2))]
    assert torch.allclose(A.CosineScore()(Q, K), torch.tensor([expected]))


def test_dot_and_scaled_dot():
    assert torch.equal(A.DotScore()(Q, K), torch.tensor([[3.0, 3.0]]))
    assert torch.allclose(A.ScaledDotScore()(Q, K), torch.tensor([[3.0, 3.0]]) / math.sqrt(2))


def test_general():
    s = _set(A.GeneralScore(2, 2), W=[[1.0, 0.0], [0.0, 2.0]])
    # q W = [1, 4]; . k1 = 3, . k2 = 5
    assert torch.allclose(s(Q, K), torch.tensor([[3.0, 5.0]]))


def test_general_with_different_widths():
    s = _set(A.GeneralScore(2, 3), W=[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    k = torch.tensor([[[1.0, 1.0, 1.0]]])
    assert torch.allclose(s(Q, k), torch.tensor([[4.0]]))  # qW = [1, 2, 1]


def test_biased_general():
    s = _set(A.BiasedGeneralScore(2, 2), W=[[1.0, 0.0], [0.0, 2.0]], b=[1.0, -1.0])
    # q W + b = [2, 3]; k1 -> 6, k2 -> 5
    assert torch.allclose(s(Q, K), torch.tensor([[6.0, 5.0]]))


def test_activated_general():
    s = _set(A.ActivatedGeneralScore(2, 2, act="tanh"), W=[[1.0, 0.0], [0.0, 2.0]], b=-3.0)
    assert torch.allclose(s(Q, K), torch.tanh(torch.tensor([[0.0, 2.0]])))


def test_generalized_kernel():
    square = A.KernelScore(phi=lambda t: t**2)
    # phi(q) = [1, 4]; phi(k1) = [9, 0], phi(k2) = [1, 1]
    assert torch.allclose(square(Q, K), torch.tensor([[9.0, 5.0]]))
    default = A.KernelScore()(torch.randn(3, 4), torch.randn(3, 5, 4))
    assert (default > 0).all()  # elu + 1 features give positive scores


def test_additive():
    s = _set(
        A.AdditiveScore(2, 2, 2, act="tanh"),
        **{
            "W_q.weight": [[1.0, 0.0], [0.0, 1.0]],
            "W_k.weight": [[1.0, 0.0], [0.0, -1.0]],
            "W_k.bias": [0.0, 0.5],
            "v.weight": [[1.0, 2.0]],
        },
    )
    # q W_q + k W_k + b: k1 -> [4, 2.5], k2 -> [2, 1.5]
    expected = [math.tanh(4) + 2 * math.tanh(2.5), math.tanh(2) + 2 * math.tanh(1.5)]
    assert torch.allclose(s(Q, K), torch.tensor([expected]))


def test_deep():
    s = A.DeepScore(2, 2, 2, n_layers=2, act="relu")
    _set(
        s,
        **{
            "W_0.weight": torch.eye(2),
            "W_0.bias": [0.0, 0.0],
            "W_1.weight": torch.eye(2),
            "hidden.0.weight": [[1.0, 1.0], [0.0, -1.0]],
            "hidden.0.bias": [0.0, 0.0],
            "v.weight": [[2.0, 1.0]],
            "v.bias": [1.0],
        },
    )
    # E1 = relu(k + q): [4, 2], [2, 3]; E2 = relu([e0 + e1, -e1]) = [6, 0], [5, 0]; a = 2*E2_0 + 1
    assert torch.allclose(s(Q, K), torch.tensor([[13.0, 11.0]]))
    with pytest.raises(ValueError):
        A.DeepScore(2, 2, 2, n_layers=0)


def test_location_based_ignores_key_content():
    s = _set(A.LocationScore(2, 4), W=[[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 3.0]])
    assert torch.allclose(s(Q, K), torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(s(Q, torch.randn(1, 2, 2)), s(Q, K))
    with pytest.raises(ValueError, match="max_len"):
        s(Q, torch.randn(1, 5, 2))


def test_feature_based():
    s = _set(
        A.FeatureScore(2, 1, act="identity"),
        **{"W_0.weight": [[1.0, 1.0]], "W_0.bias": [0.0], "W_1.weight": [[1.0, 0.0]], "v.weight": [[2.0]]},
    )
    # phi(k_i) W_0 = 3, 2 ; mean key = [2, 0.5] -> W_1 gives 2; v = 2
    assert torch.allclose(s(None, K), torch.tensor([[10.0, 8.0]]))


def test_every_table_row_runs_with_its_shapes():
    q, keys = torch.randn(3, 4), torch.randn(3, 6, 4)
    for name, (cls, formula, source) in A.ALIGNMENTS.items():
        if cls in (A.CosineScore, A.DotScore, A.ScaledDotScore, A.KernelScore):
            module = cls()
        elif cls in (A.GeneralScore, A.BiasedGeneralScore, A.ActivatedGeneralScore):
            module = cls(4, 4)
        elif cls in (A.AdditiveScore, A.DeepScore):
            module = cls(4, 4, 8)
        elif cls is A.LocationScore:
            module = cls(4, 10)
        else:
            module = cls(4, 8)
        assert module(q, keys).shape == (3, 6), name
        assert formula and source


# ----------------------------------------------------------------------------- distributions


def _simplex_projection_ok(z: torch.Tensor, p: torch.Tensor, tol: float = 1e-5) -> bool:
    """p is the Euclidean projection of z onto the simplex iff p is in the simplex and
    (z - p) . (e_j - p) <= 0 for every vertex e_j (the variational inequality)."""
    r = z - p
    return bool((p >= 0).all() and abs(p.sum() - 1) < tol and (r.max() - (r * p).sum()) <= tol)


def test_sparsemax_hand_values():
    assert torch.allclose(A.sparsemax(torch.tensor([1.0, 0.0, -1.0])), torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(A.sparsemax(torch.tensor([0.5, 0.3, -1.0])), torch.tensor([0.6, 0.4, 0.0]))
    assert torch.allclose(A.sparsemax(torch.zeros(4)), torch.full((4,), 0.25))


@pytest.mark.parametrize("seed", range(20))
def test_sparsemax_is_euclidean_projection(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(12, generator=g, dtype=torch.float64) * (seed % 4 + 0.5)
    p = A.sparsemax(z)
    assert _simplex_projection_ok(z, p)
    # no random point of the simplex is closer to z
    q = torch.distributions.Dirichlet(torch.ones(12, dtype=torch.float64)).sample((500,))
    assert ((q - z).norm(dim=1) >= (p - z).norm() - 1e-9).all()


def _entmax15_bisect(z: torch.Tensor, iters: int = 200) -> torch.Tensor:
    """Reference 1.5-entmax: bisection on tau in sum(max(z/2 - tau, 0)^2) = 1."""
    z = z / 2
    lo, hi = z.max() - 1, z.max()
    for _ in range(iters):
        tau = (lo + hi) / 2
        if (torch.clamp(z - tau, min=0) ** 2).sum() > 1:
            lo = tau
        else:
            hi = tau
    return torch.clamp(z - (lo + hi) / 2, min=0) ** 2


@pytest.mark.parametrize("seed", range(10))
def test_entmax15_matches_bisection(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(9, generator=g, dtype=torch.float64) * 3
    assert torch.allclose(A.entmax15(z), _entmax15_bisect(z), atol=1e-8)


def test_distributions_sum_to_one_and_sparsity():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 20, generator=g) * 3
    for fn in (A.softmax, A.sparsemax, A.entmax15):
        p = fn(z)
        assert torch.allclose(p.sum(-1), torch.ones(64), atol=1e-5), fn.__name__
        assert (p >= 0).all()
    assert (A.softmax(z) > 0).all()  # dense
    assert (A.sparsemax(z) == 0).float().mean() > 0.5  # very sparse
    zeros_entmax = (A.entmax15(z) == 0).float().mean()
    assert 0.1 < zeros_entmax < (A.sparsemax(z) == 0).float().mean()  # in between
    s = A.sigmoid(z)
    assert ((s > 0) & (s < 1)).all() and not torch.allclose(s.sum(-1), torch.ones(64))


def test_distributions_along_other_dims_and_gradients():
    z = torch.randn(5, 7, 3, requires_grad=True)
    for fn in (A.sparsemax, A.entmax15):
        p = fn(z, dim=1)
        assert torch.allclose(p.sum(1), torch.ones(5, 3), atol=1e-5)
        (p * torch.randn_like(p)).sum().backward()
        assert torch.isfinite(z.grad).all()
        z.grad = None


def test_attend_masks_padding():
    scores = torch.tensor([[1.0, 2.0, 5.0]])
    V = torch.tensor([[[1.0], [2.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    for dist in ("softmax", "sparsemax", "entmax15"):
        ctx, w = A.attend(scores, V, dist, mask)
        assert w[0, 2] == 0 and torch.allclose(w.sum(), torch.tensor(1.0))
        assert ctx.item() < 2.0 + 1e-6
    with pytest.raises(ValueError):
        A.attend(scores, V, "argmax")


# ----------------------------------------------------------------------------- seq2seq


@pytest.mark.parametrize("attention, score", [("bahdanau", "general"), ("luong", "general"), ("luong", "dot")])
def test_seq2seq_shapes_and_learning(attention, score):
    torch.manual_seed(0)
    pairs = seqdata.reverse_pairs(200, 3, 5, alphabet="abcd", seed=0)
    sv = seqdata.Vocab("abcd")
    src, tgt = seqdata.encode_pairs(pairs, sv, sv)
    model = A.Seq2Seq(len(sv), len(sv), embed=8, hidden=16, attention=attention, score=score)
    logits, w = model(src[:4], tgt[:4, :-1])
    assert logits.shape == (4, tgt.shape[1] - 1, len(sv)) and w.shape == (4, tgt.shape[1] - 1, src.shape[1])
    assert torch.allclose(w.sum(-1), torch.ones(4, tgt.shape[1] - 1), atol=1e-5)
    assert (w[src[:4].unsqueeze(1).expand_as(w) == 0] == 0).all()  # no weight on padding
    hist = train_seq2seq(model, src, tgt, steps=12, batch_size=32, lr=1e-2)
    assert hist["loss"][-1] < hist["loss"][0]
    ids, weights = model.greedy_decode(src[:3], max_len=6)
    assert ids.shape == (3, 6) and weights.shape == (3, 6, src.shape[1])
    metrics = A.evaluate_seq2seq(model, src[:20], tgt[:20])
    assert 0 <= metrics["exact_match"] <= metrics["token_accuracy"] <= 1


def test_seq2seq_rejects_bad_options():
    with pytest.raises(ValueError):
        A.Seq2Seq(5, 5, attention="transformer")
    with pytest.raises(ValueError):
        A.Seq2Seq(5, 5, attention="luong", score="additive")
    with pytest.raises(ValueError):
        A.Seq2Seq(5, 5, distribution="sigmoid")


def test_seq2seq_sparsemax_attention_runs():
    model = A.Seq2Seq(6, 6, embed=4, hidden=8, distribution="sparsemax")
    src = torch.tensor([[4, 5, 2, 0]])
    _, w = model(src, torch.tensor([[1, 4]]))
    assert torch.allclose(w.sum(-1), torch.ones(1, 2), atol=1e-5) and w[0, :, 3].eq(0).all()


def test_field_attention_measures_the_share_on_each_field():
    pairs = [("3 May 2021", "2021-05-03")]
    spans = seqdata.date_fields(*pairs[0])
    weights = torch.zeros(1, 11, len(pairs[0][0]) + 1)
    for field, outputs in seqdata.ISO_FIELDS.items():
        for t in outputs:
            weights[0, t, spans[field][0]] = 1.0  # every field looks only at its own source
    shares = A.field_attention(weights, pairs)
    assert all(shares[f]["attention"] == 1.0 for f in shares)
    assert abs(shares["year"]["chance"] - 4 / 11) < 1e-9
    uniform = torch.full_like(weights, 1 / weights.shape[-1])
    even = A.field_attention(uniform, pairs)
    assert all(abs(even[f]["attention"] - even[f]["chance"]) < 1e-6 for f in even)
