"""Warmup schedules: Noam as printed vs original, Ma & Yarats' untuned warmups, RAdam measured."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import schedules as S


def test_noam_peaks_original_at_warmup_and_printed_near_16():
    steps = np.arange(1, 20001)
    original = S.noam_lr(steps, 512, 4000, "original")
    printed = S.noam_lr(steps, 512, 4000, "printed")
    assert int(np.argmax(original)) + 1 == 4000
    assert int(np.argmax(printed)) + 1 == 16  # 4000^(1/3) = 15.87
    assert S.noam_peak(512, 4000, "original") == (4000, pytest.approx(512**-0.5 * 4000**-0.5))
    step, lr = S.noam_peak(512, 4000, "printed")
    assert step == 16 and lr == pytest.approx(printed.max())
    # after the peak both decay as d^-0.5 t^-0.5: they coincide from step 4000 on
    assert np.allclose(original[4000:], printed[4000:])
    assert original[0] == pytest.approx(512**-0.5 * 4000**-1.5)


def test_noam_rejects_bad_input():
    with pytest.raises(ValueError):
        S.noam_lr(0)
    with pytest.raises(ValueError, match="form"):
        S.noam_lr(1, form="typo")


def test_untuned_warmups():
    t = np.arange(1, 18001)
    lin = S.untuned_linear_warmup(t, 0.999)
    assert lin[999] == pytest.approx(0.5) and lin[1999] == 1.0 and lin[1998] < 1.0  # tau = 2000
    ex = S.untuned_exponential_warmup(t, 0.999)
    assert ex[999] == pytest.approx(1 - np.exp(-1))  # tau = 1000
    assert np.all(np.diff(ex) > 0) and ex[-1] < 1
    assert S.linear_warmup(5, 10) == pytest.approx(0.5)
    assert S.exponential_warmup(10, 10) == pytest.approx(1 - np.exp(-1))


def test_radam_rectification_analytic():
    t = np.arange(1, 18001)
    r = S.radam_rectification(t, 0.999)
    rho = S.radam_rho(t, 0.999)
    assert np.all(np.isnan(r[rho <= 5])) and np.isnan(r).sum() == 5  # steps 1-5 are momentum SGD
    assert np.all(np.diff(r[5:]) > 0) and 0.99 < r[-1] < 1
    assert S.radam_rho(1, 0.999) == pytest.approx(1.0)


def test_measured_effective_warmup_matches_theory():
    steps = 3000
    t = np.arange(1, steps + 1)
    radam = S.measure_effective_warmup("radam", steps)["radam"]
    analytic = S.radam_rectification(t)
    assert np.array_equal(np.isnan(radam), np.isnan(analytic))
    assert np.nanmax(np.abs(radam - analytic)) < 1e-8
    adam = S.measure_effective_warmup("adam", steps, schedules={"linear": S.untuned_linear_warmup, "constant": None})
    assert np.max(np.abs(adam["linear"] - S.untuned_linear_warmup(t))) < 1e-8
    assert np.max(np.abs(adam["constant"] - 1.0)) < 1e-8
    with pytest.raises(ValueError):
        S.measure_effective_warmup("sgd", 10)
