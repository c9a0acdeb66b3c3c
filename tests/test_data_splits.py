"""Split rules: no patient on two sides, class balance kept, seeded, caps stratified."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.data.catalog import Catalog
from helpers.data.splits import (
    assert_no_patient_overlap,
    cap_stratified,
    patient_split,
    split_indices,
    strata_of,
    stratified_split,
)


def _patients(n_patients=200, seed=0):
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 6, n_patients)
    patients = np.repeat([f"p{i}" for i in range(n_patients)], per)
    labels = np.repeat(rng.integers(0, 4, n_patients), per)
    return patients, labels


def test_patient_split_has_no_overlap_and_covers_everything():
    patients, labels = _patients()
    parts = patient_split(patients, labels, seed=3)
    allidx = np.concatenate(list(parts.values()))
    assert sorted(allidx.tolist()) == list(range(len(patients)))
    sides = [set(patients[v]) for v in parts.values()]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    n = len(patients)
    assert abs(len(parts["train"]) / n - 0.7) < 0.05 and abs(len(parts["test"]) / n - 0.2) < 0.05
    for k in range(4):  # every class on every side, in roughly the global proportion
        share = (labels[parts["test"]] == k).mean()
        assert abs(share - (labels == k).mean()) < 0.08


def test_patient_split_seeded():
    patients, labels = _patients()
    a = patient_split(patients, labels, seed=1)
    b = patient_split(patients, labels, seed=1)
    c = patient_split(patients, labels, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_overlap_detector_fails_on_leak():
    with pytest.raises(AssertionError, match="patient leakage: 1 patient"):
        assert_no_patient_overlap({"train": ["a", "b"], "valid": ["c"], "test": ["b", "d"]})
    assert_no_patient_overlap({"train": ["a"], "test": ["b"]})


def test_stratified_split_keeps_proportions():
    labels = np.repeat(np.arange(5), [100, 50, 30, 10, 10])
    parts = stratified_split(labels, seed=0)
    for k, count in enumerate([100, 50, 30, 10, 10]):
        assert abs((labels[parts["test"]] == k).sum() - 0.2 * count) <= 1
    assert sum(len(v) for v in parts.values()) == len(labels)


def test_multilabel_strata_use_rarest_finding():
    labels = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=np.float32)
    assert strata_of(labels).tolist() == [0, 2, -1, 1]


def test_cap_stratified():
    labels = np.repeat(np.arange(4), [500, 300, 150, 3])
    idx = cap_stratified(labels, 100, seed=0)
    assert len(idx) == 100 and len(np.unique(idx)) == 100
    counts = np.bincount(labels[idx], minlength=4)
    assert counts[3] >= 1 and abs(counts[0] - 52) <= 2
    assert np.array_equal(idx, cap_stratified(labels, 100, seed=0))
    assert len(cap_stratified(labels, None)) == len(labels)


def _catalog(official=None, patients=True, n=60, seed=0):
    rng = np.random.default_rng(seed)
    pids = np.array([f"p{i // 3}" for i in range(n)]) if patients else None
    return Catalog(
        name="toy",
        task="multiclass",
        classes=["a", "b"],
        files=[f"f{i}.png" for i in range(n)],
        labels=rng.integers(0, 2, n),
        ids=[f"f{i}" for i in range(n)],
        patient_ids=pids,
        official_split=None if official is None else np.asarray(official, dtype=object),
    )


def test_split_indices_rules():
    parts, rule = split_indices(_catalog())
    assert rule.startswith("patient-level")
    parts, rule = split_indices(_catalog(patients=False))
    assert rule.startswith("stratified")
    # official trainval/test: test kept exactly, trainval split by patient into train/valid
    official = ["test" if (i // 3) % 5 == 0 else "trainval" for i in range(60)]
    parts, rule = split_indices(_catalog(official))
    assert rule.startswith("official") and np.array_equal(parts["test"], np.flatnonzero(np.array(official) == "test"))
    assert len(parts["valid"]) > 0
    # an official split with a patient on both sides: the test side wins, the leak is removed and said
    leaky = list(official)
    leaky[1] = "test"  # patient p0 now has images in test (0, 1) and ... still in test; make p1 leak
    leaky[3] = "test"
    parts, rule = split_indices(_catalog(leaky))
    assert "dropped" in rule
    pids = np.array([f"p{i // 3}" for i in range(60)])
    assert_no_patient_overlap({k: pids[v] for k, v in parts.items()})
    # an official split that leaves train empty for the images present falls back to patients
    parts, rule = split_indices(_catalog(["test"] * 60))
    assert "patient-level" in rule and len(parts["train"]) > 0


def test_real_nih_and_mias_splits_have_no_patient_overlap(real_data, tmp_workdirs):
    from helpers.data import load_dataset
    from helpers.data.registry import load_catalog

    for name in ("nih", "mias"):
        parts = {s: load_dataset(name, s, size=16, verbose=False) for s in ("train", "valid", "test")}
        assert_no_patient_overlap({s: ds.patient_ids for s, ds in parts.items()})
        # every readable image lands in exactly one split (counted from the catalog, not a fixed number)
        assert sum(len(ds) for ds in parts.values()) == len(load_catalog(name, verbose=False)[0])
