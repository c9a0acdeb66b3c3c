"""The chapter's comparison of the families: cost table, fitted exponents, row errors, the retrieval task."""

from __future__ import annotations

import math

import torch

from helpers.models import efficient as E
from helpers.models.efficient import compare as C


def test_cost_table_and_exponents_cover_every_family():
    table = C.cost_table((32, 64), dim=16, repeats=1)
    assert set(table.family) == set(E.FAMILIES) and set(table.length) == {32, 64}
    assert (table.seconds > 0).all() and (table.peak_mib > 0).all()
    fits = C.exponents(table, last=2)
    assert list(fits.columns) == ["time exponent", "memory exponent"] and fits.notna().all().all()


def test_error_table_is_zero_for_full_attention_and_undefined_for_replacements():
    errors = C.error_table(64, dim=16)
    assert errors["full softmax"] < 1e-6
    assert all(math.isnan(errors[name]) for name in C.REPLACES_ATTENTION)
    # at L = 64 the default rank (64) and segment (64) cover the sequence: those two are exact
    exact = ["full softmax", "low rank (Linformer)", "segment recurrence (Transformer-XL)"]
    assert (errors[exact] < 1e-6).all()
    others = errors.drop([*exact, *C.REPLACES_ATTENTION])
    assert ((others > 0.01) & (others <= 1)).all()


def test_marked_digit_task_has_one_marked_digit_equal_to_the_label():
    tokens, labels = C.marked_digit_task(50, 20, seed=3)
    assert tokens.shape == (50, 20) and (tokens[:, -1] == 20).all()
    marked = tokens[:, :-1] >= 10
    assert (marked.sum(1) == 1).all()
    assert torch.equal(tokens[:, :-1][marked] - 10, labels)


def test_train_retrieval_runs_and_reports():
    out = C.train_retrieval("adaptive span", 16, 3, settings=E.FamilySettings(max_span=8, ramp=2), n_test=16)
    assert 0 <= out["accuracy"] <= 1 and math.isfinite(out["final loss"]) and 0 <= out["span"] <= 8
