"""Train/valid/test splits: by patient where the data has patient ids, stratified by class otherwise.

Rules (seeded, so the same seed gives the same split on every machine):

* :func:`patient_split`: every patient goes to exactly one side. Patients are grouped by a
  *stratum* (their most frequent class; for multi-label data the rarest finding they have, or
  "none"), shuffled within the stratum, and dealt, one stratum after the other, to the split that
  is furthest below its share of the *images* dealt so far. Class balance is therefore kept
  approximately, leakage never.
* :func:`stratified_split`: the same without patients (each image is its own group).
* :func:`cap_stratified`: at most ``n`` items, keeping every class represented in proportion
  (used by the profiles' ``max_train`` / ``max_eval``).
* :func:`assert_no_patient_overlap`: raises when a patient is on two sides.
* :func:`split_indices`: the rule a dataset's :class:`~helpers.data.catalog.Catalog` is split by:
  its official split where it has one, else by patient, else stratified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .catalog import Catalog

__all__ = [
    "DEFAULT_FRACTIONS",
    "VALID_SHARE_OF_TRAINVAL",
    "split_indices",
    "strata_of",
    "patient_split",
    "stratified_split",
    "cap_stratified",
    "assert_no_patient_overlap",
]

#: Default shares of (train, valid, test) when a dataset has no official split.
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.7, "valid": 0.1, "test": 0.2}
#: Share of an official train+valid part that becomes ``valid`` (by patient).
VALID_SHARE_OF_TRAINVAL = 0.125


def strata_of(labels: np.ndarray) -> np.ndarray:
    """One stratum per item: the class for integer labels; for multi-hot labels the rarest positive
    label (``-1`` for none), so that rare findings are spread over all splits."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return labels.astype(np.int64)
    prevalence = labels.sum(axis=0)
    rank = np.where(labels > 0, prevalence[None, :], np.inf)
    strata = np.argmin(rank, axis=1).astype(np.int64)
    strata[~(labels > 0).any(axis=1)] = -1
    return strata


def _deal(
    groups: np.ndarray, sizes: np.ndarray, strata: np.ndarray, fractions: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Assign each group (with ``sizes`` images and a stratum) to a split; returns split -> groups.

    Strata are visited one after the other (rarest first), their groups in a seeded random order;
    each group goes to the split furthest below its target share of all images dealt so far. A run
    of groups of one stratum is therefore spread over the splits in proportion, and small strata
    (one or two patients) still fill the small splits.
    """
    names = list(fractions)
    share = np.array([fractions[n] for n in names], dtype=float)
    if (share < 0).any() or share.sum() <= 0:
        raise ValueError(f"fractions must be non-negative and not all zero, got {dict(fractions)}")
    share = share / share.sum()
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {n: [] for n in names}
    filled = np.zeros(len(names))
    values, counts = np.unique(strata, return_counts=True)
    for stratum in values[np.argsort(counts, kind="stable")]:
        members = np.flatnonzero(strata == stratum)
        for m in members[rng.permutation(len(members))]:
            deficit = share * (filled.sum() + sizes[m]) - filled
            k = int(np.argmax(deficit))
            out[names[k]].append(groups[m])
            filled[k] += sizes[m]
    return {n: np.asarray(v) for n, v in out.items()}


def patient_split(
    patient_ids: Sequence, labels: np.ndarray, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 42
) -> dict[str, np.ndarray]:
    """Split item indices so that no patient is in two splits; returns ``{split: sorted indices}``."""
    patients = np.asarray([str(p) for p in patient_ids])
    labels = np.asarray(labels)
    if len(patients) != len(labels):
        raise ValueError(f"{len(patients)} patient ids for {len(labels)} labels")
    uniq, inverse, sizes = np.unique(patients, return_inverse=True, return_counts=True)
    item_strata = strata_of(labels)
    # a patient's stratum: the stratum most of their images have (ties: the smallest value)
    group_strata = np.empty(len(uniq), dtype=np.int64)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(sizes)[:-1]
    for g, items in enumerate(np.split(order, bounds)):
        vals, counts = np.unique(item_strata[items], return_counts=True)
        group_strata[g] = vals[np.argmax(counts)]
    dealt = _deal(np.arange(len(uniq)), sizes, group_strata, fractions, seed)
    result = {}
    for name, gs in dealt.items():
        mask = np.isin(inverse, gs)
        result[name] = np.flatnonzero(mask)
    assert_no_patient_overlap({k: patients[v] for k, v in result.items()})
    return result


def stratified_split(
    labels: np.ndarray, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 42
) -> dict[str, np.ndarray]:
    """Split item indices keeping class proportions; returns ``{split: sorted indices}``."""
    labels = np.asarray(labels)
    n = len(labels)
    dealt = _deal(np.arange(n), np.ones(n, dtype=np.int64), strata_of(labels), fractions, seed)
    return {k: np.sort(v.astype(np.int64)) for k, v in dealt.items()}


def cap_stratified(labels: np.ndarray, max_n: int | None, seed: int = 42) -> np.ndarray:
    """Sorted indices of at most ``max_n`` items drawn per class in proportion (all when ``None``).

    Every class present keeps at least one item when ``max_n`` allows it.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if max_n is None or n <= max_n:
        return np.arange(n)
    strata = strata_of(labels)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(strata, return_counts=True)
    quota = np.floor(counts / n * max_n).astype(int)
    quota = np.maximum(quota, np.minimum(1, counts)) if max_n >= len(values) else quota
    # hand out what rounding left, largest remainders first; trim if the minimum-one rule overshot
    while quota.sum() < max_n:
        room = counts - quota
        rema = counts / n * max_n - quota
        rema[room <= 0] = -np.inf
        quota[int(np.argmax(rema))] += 1
    while quota.sum() > max_n:
        quota[int(np.argmax(quota))] -= 1
    chosen = []
    for v, q in zip(values, quota):
        members = np.flatnonzero(strata == v)
        chosen.append(rng.choice(members, size=q, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def assert_no_patient_overlap(split_patients: Mapping[str, Sequence]) -> None:
    """Raise ``AssertionError`` naming the patients found in more than one split."""
    names = list(split_patients)
    sets = {k: set(map(str, v)) for k, v in split_patients.items()}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = sets[a] & sets[b]
            if common:
                raise AssertionError(
                    f"patient leakage: {len(common)} patient(s) in both {a!r} and {b!r}, e.g. {sorted(common)[:5]}"
                )


# ----------------------------------------------------------------------------- a catalog's split


def split_indices(
    cat: Catalog, seed: int = 42, fractions: Mapping[str, float] = DEFAULT_FRACTIONS
) -> tuple[dict[str, np.ndarray], str]:
    """``{"train", "valid", "test"} -> indices`` for a catalog, and the rule applied, in words.

    Official split where the catalog has one (an official ``trainval`` part is split by patient
    into train/valid; rows without an official split are split by patient); else by patient; else
    stratified by class. An official split that leaves train or test empty for the images present
    (a partial copy) is replaced by a patient-level split, and the rule says so.
    """
    out, rule = _official_split(cat, seed, fractions) if cat.official_split is not None else (None, "")
    if out is None:
        out = _by_patient_or_class(cat, np.arange(len(cat)), fractions, seed)
        if not rule:
            rule = "patient-level" if cat.patient_ids is not None else "stratified by class (no patient ids)"
        rule += f", fractions {dict(fractions)}, seed {seed}"
    out = {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in out.items()}
    if cat.patient_ids is not None:
        assert_no_patient_overlap({k: cat.patient_ids[v] for k, v in out.items()})
    return out, rule


def _by_patient_or_class(
    cat: Catalog, idx: np.ndarray, fractions: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """The rows ``idx`` of ``cat`` split by patient (when it has patient ids) or stratified by class."""
    if len(idx) == 0:
        return {k: np.array([], dtype=np.int64) for k in fractions}
    if cat.patient_ids is not None:
        part = patient_split(cat.patient_ids[idx], cat.labels[idx], fractions, seed)
    else:
        part = stratified_split(cat.labels[idx], fractions, seed)
    return {k: idx[v] for k, v in part.items()}


def _official_split(
    cat: Catalog, seed: int, fractions: Mapping[str, float]
) -> tuple[dict[str, np.ndarray] | None, str]:
    """The catalog's official split completed as :func:`split_indices` says; ``None`` when unusable."""
    official = np.asarray([s if s is not None else "" for s in cat.official_split], dtype=object)
    out = {k: np.flatnonzero(official == k) for k in ("train", "valid", "test")}
    trainval = np.flatnonzero(official == "trainval")
    if len(trainval):
        shares = {"train": 1 - VALID_SHARE_OF_TRAINVAL, "valid": VALID_SHARE_OF_TRAINVAL}
        tv = _by_patient_or_class(cat, trainval, shares, seed)
        out["train"] = np.concatenate([out["train"], tv["train"]])
        out["valid"] = np.concatenate([out["valid"], tv["valid"]])
    rest = np.flatnonzero(official == "")
    if len(rest):
        extra = _by_patient_or_class(cat, rest, fractions, seed)
        out = {k: np.concatenate([out[k], extra[k]]) for k in out}
    rule = f"official split ({cat.meta.get('split_rule', 'from the dataset')})"
    if len(trainval):
        rule += f"; train+valid part split by patient ({VALID_SHARE_OF_TRAINVAL:.1%} to valid)"
    if len(rest):
        rule += f"; {len(rest)} images without an official split split by patient"
    if cat.patient_ids is not None:
        out, dropped = _keep_patients_on_one_side(out, cat.patient_ids)
        if dropped:
            rule += f"; {dropped} train/valid images dropped because their patient is also on a later side"
    if len(out["train"]) == 0 or len(out["test"]) == 0:
        counts = {k: len(v) for k, v in out.items()}
        return None, f"patient-level (the official split leaves {counts} for the {len(cat)} images present)"
    return out, rule


def _keep_patients_on_one_side(out: dict[str, np.ndarray], patients: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """Drop train/valid images whose patient is on a later side; returns the split and how many went.

    An official split may put one patient on two sides (CBIS-DDSM's mass and calcification sets were
    split separately): the official test set is kept, and that patient's other images are dropped.
    """
    out = dict(out)
    dropped = 0
    for later, earlier in (("test", "train"), ("test", "valid"), ("valid", "train")):
        clash = np.isin(patients[out[earlier]], list(set(patients[out[later]])))
        dropped += int(clash.sum())
        out[earlier] = out[earlier][~clash]
    return out, dropped
