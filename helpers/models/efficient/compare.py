"""The families side by side: cost and error on the same inputs, and a short trained comparison.

* :func:`cost_table`: time and peak memory of one self-attention call per family and length;
  :func:`exponents` fits ``cost ~ L^b`` over the longest lengths.
* :func:`error_table`: each family's attention rows against full softmax attention on the same
  random queries and keys (mean total-variation distance; ``NaN`` for the families that replace
  attention by another operator and have no attention rows to compare).
* :func:`marked_digit_task`, :class:`RetrievalModel`, :func:`train_retrieval`: a long-sequence task
  (find the one marked digit among ``L`` and name it, read out at the last position) that needs
  information to travel across the whole sequence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .common import dense_attention
from .cost import attention_cost, fit_exponent, row_error
from .modules import FAMILIES, FamilySettings, build_attention

__all__ = [
    "REPLACES_ATTENTION",
    "cost_table",
    "exponents",
    "error_table",
    "marked_digit_task",
    "RetrievalModel",
    "train_retrieval",
]

REPLACES_ATTENTION = ("Fourier mixing (FNet)", "additive (Fastformer)")
"""Families that are not an estimate of softmax attention (no attention rows to compare)."""


def cost_table(
    lengths: Sequence[int],
    dim: int = 64,
    settings: FamilySettings | None = None,
    device: torch.device | str = "cpu",
    repeats: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per family and length: ``seconds`` (best of ``repeats``) and ``peak_mib`` of one call (inputs seeded)."""
    rows = []
    for name in FAMILIES:
        module = build_attention(name, dim, max(lengths), settings).to(device).eval()
        for length in lengths:
            rows.append(
                {
                    "family": name,
                    **attention_cost(module, length, d_model=dim, repeats=repeats, device=device, seed=seed),
                }
            )
    return pd.DataFrame(rows)


def exponents(table: pd.DataFrame, last: int = 3) -> pd.DataFrame:
    """Per family, the fitted exponents ``b`` of ``seconds ~ L^b`` and ``peak_mib ~ L^b`` over the ``last`` lengths."""
    out = {}
    for name, g in table.groupby("family", sort=False):
        g = g.sort_values("length").tail(last)
        out[name] = {
            "time exponent": fit_exponent(g.length, g.seconds),
            "memory exponent": fit_exponent(g.length, g.peak_mib),
        }
    return pd.DataFrame(out).T


def error_table(length: int, dim: int = 64, settings: FamilySettings | None = None, seed: int = 0) -> pd.Series:
    """Mean total-variation distance of each family's attention rows to full attention's, same inputs.

    Queries and keys are independent ``N(0, 1)`` (``(1, length, dim)``); the values are the identity,
    so the output *is* the attention matrix. Learned families are taken at their initialisation.
    """
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(1, length, dim, generator=gen) for _ in range(2))
    # the identity values are (length, length): give each family a width-`length` copy of q, k padded
    eye = torch.eye(length)[None]
    exact = dense_attention(q, k, eye)
    errors = {}
    for name in FAMILIES:
        if name in REPLACES_ATTENTION:
            errors[name] = float("nan")
            continue
        module = build_attention(name, dim, length, settings).eval()
        with torch.no_grad():
            errors[name] = row_error(module(q, k, eye), exact)
    return pd.Series(errors, name=f"row error vs full attention (L = {length})")


def marked_digit_task(n: int, length: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` sequences of ``length`` tokens: random digits (0-9), one *marked* digit (10 + digit) at a
    random position, and a read-out token (20) last. The label is the marked digit."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 10, (n, length), generator=gen)
    labels = torch.randint(0, 10, (n,), generator=gen)
    where = torch.randint(0, length - 1, (n,), generator=gen)
    tokens[torch.arange(n), where] = 10 + labels
    tokens[:, -1] = 20
    return tokens, labels


class RetrievalModel(nn.Module):
    """Token and position embeddings, ``depth`` pre-LN blocks (one attention family, one head), a read-out."""

    def __init__(self, family: str, length: int, dim: int = 32, depth: int = 2, settings: FamilySettings | None = None):
        super().__init__()
        self.embed, self.pos = nn.Embedding(21, dim), nn.Parameter(torch.randn(length, dim) * 0.02)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2 * depth))
        self.qkv = nn.ModuleList(nn.Linear(dim, 3 * dim) for _ in range(depth))
        self.attn = nn.ModuleList(build_attention(family, dim, length, settings) for _ in range(depth))
        self.ffn = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)) for _ in range(depth)
        )
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 10))

    def forward(self, tokens: Tensor) -> Tensor:
        """``(B, L)`` token ids -> ``(B, 10)`` logits, read at the last position."""
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for i, (qkv, attn, ffn) in enumerate(zip(self.qkv, self.attn, self.ffn)):
            q, k, v = qkv(self.norms[2 * i](x)).chunk(3, dim=-1)
            x = x + attn(q, k, v)
            x = x + ffn(self.norms[2 * i + 1](x))
        return self.head(x[:, -1])


def train_retrieval(
    family: str,
    length: int,
    steps: int,
    *,
    settings: FamilySettings | None = None,
    n_test: int = 512,
    batch: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
) -> dict[str, float]:
    """Train :class:`RetrievalModel` with ``family`` on fresh batches of :func:`marked_digit_task`.

    Returns the held-out ``accuracy`` (chance 0.1), the mean ``final loss`` of the last 20 steps,
    the training ``seconds`` and the ``span`` reached when the family learns one.
    """
    torch.manual_seed(seed)
    model = RetrievalModel(family, length, settings=settings)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses, start = [], time.perf_counter()
    for step in range(steps):
        tokens, labels = marked_digit_task(batch, length, seed=1000 * seed + step + 1)
        loss = nn.functional.cross_entropy(model(tokens), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    test_tokens, test_labels = marked_digit_task(n_test, length, seed=10_000 + seed)
    with torch.no_grad():
        accuracy = (model(test_tokens).argmax(-1) == test_labels).float().mean().item()
    spans = [float(a.span.detach().clamp(0, a.max_span)) for a in model.attn if hasattr(a, "span")]
    return {
        "accuracy": accuracy,
        "final loss": float(np.mean(losses[-20:])),
        "seconds": seconds,
        "span": float(np.mean(spans)) if spans else float("nan"),
    }
