"""Teacher-forced training of the toy encoder–decoders: one loop for every seq2seq model of the book.

:func:`train_seq2seq` trains the attention chapter's RNN :class:`~helpers.models.attention.Seq2Seq`
and the :class:`~helpers.models.transformer.Transformer` alike, on the padded id tensors
:func:`helpers.seqdata.encode_pairs` makes (target rows ``<bos> ... <eos> <pad>...``). The decoder
reads ``tgt[:, :-1]`` and is scored on ``tgt[:, 1:]`` by cross-entropy that ignores ``<pad>``;
the optimiser is Adam, with an optional learning-rate multiplier per step (a warmup from
:mod:`helpers.schedules`), label smoothing and gradient-norm clipping.

Batches come in one of two orders, both drawn from a seeded generator:

* ``epochs=...``: each epoch is one shuffled pass over the rows (the last batch may be smaller),
  stopped after ``steps`` optimiser steps when that is given too;
* ``steps=...`` alone: ``steps`` batches of rows drawn at random with replacement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .seqdata import PAD, SPECIALS

__all__ = ["train_seq2seq", "batch_indices"]


def batch_indices(
    n: int, batch_size: int, generator: torch.Generator, *, steps: int | None = None, epochs: int | None = None
) -> Iterator[Tensor]:
    """Row indices of successive batches of ``n`` rows (see the module docstring for the two orders).

    Raises:
        ValueError: when neither ``steps`` nor ``epochs`` is given.
    """
    if epochs is None:
        if steps is None:
            raise ValueError("give steps (random batches) or epochs (shuffled passes), or both")
        for _ in range(steps):
            yield torch.randint(0, n, (batch_size,), generator=generator)
        return
    done = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            if steps is not None and done >= steps:
                return
            done += 1
            yield order[i : i + batch_size]


def train_seq2seq(
    model: nn.Module,
    src: Tensor,
    tgt: Tensor,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    lr_lambda: Callable[[int], float] | None = None,
    label_smoothing: float = 0.0,
    clip_norm: float | None = 1.0,
    seed: int = 0,
    device: torch.device | str | None = None,
    max_seconds: float | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` with teacher forcing and Adam; returns the history per optimiser step.

    Args:
        model: ``model(src, tgt_in)`` returns logits ``(B, T, V)`` (or a tuple whose first item
            they are, as :class:`~helpers.models.attention.Seq2Seq` returns the attention too).
            ``<pad>`` is ``model.config.pad_id`` when the model has one, else the id of
            :data:`helpers.seqdata.PAD` (0).
        src, tgt: ``(N, S)`` and ``(N, T)`` id tensors from :func:`helpers.seqdata.encode_pairs`.
        steps, epochs: how long, and in which order batches come (module docstring).
        batch_size: rows per batch.
        lr, betas, eps: Adam's settings (``betas=(0.9, 0.98), eps=1e-9`` are Vaswani et al.'s).
        lr_lambda: ``lr_lambda(step)`` (steps counted from 1) multiplies ``lr``; ``None``: constant.
        label_smoothing: of the cross-entropy.
        clip_norm: the gradient norm is clipped to this; ``None``: no clipping.
        seed: seed of the batch order.
        device: where to train (default: where the model is); batches are moved there.
        max_seconds: stop after this wall time (the history says how far it got).

    Returns:
        ``{"step", "loss", "lr", "seconds"}``: one entry per optimiser step.

    Raises:
        ValueError: when ``src`` and ``tgt`` have different numbers of rows, or neither ``steps``
            nor ``epochs`` is given.
    """
    if src.shape[0] != tgt.shape[0]:
        raise ValueError(f"src has {src.shape[0]} rows, tgt has {tgt.shape[0]}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps)
    pad = getattr(getattr(model, "config", None), "pad_id", SPECIALS.index(PAD))
    history: dict[str, list[float]] = {"step": [], "loss": [], "lr": [], "seconds": []}
    batches = batch_indices(src.shape[0], batch_size, torch.Generator().manual_seed(seed), steps=steps, epochs=epochs)
    start = time.perf_counter()
    for step, idx in enumerate(batches, 1):
        s, t = src[idx].to(device), tgt[idx].to(device)
        step_lr = lr * (lr_lambda(step) if lr_lambda is not None else 1.0)
        for group in opt.param_groups:
            group["lr"] = step_lr
        out = model(s, t[:, :-1])
        logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            t[:, 1:].reshape(-1),
            ignore_index=pad,
            label_smoothing=label_smoothing,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        for key, value in zip(history, (step, loss.item(), step_lr, time.perf_counter() - start)):
            history[key].append(value)
        if max_seconds is not None and history["seconds"][-1] > max_seconds:
            break
    return history
