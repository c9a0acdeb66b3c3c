"""Dataset registry: ``load_dataset(name, split=...)`` with the resolution order real → download → synthetic.

For each name the data is looked for, in order:

1. ``$MEDVIT_DATA/<name>`` in the dataset's original layout (``source="real"``);
2. an earlier automatic download in ``<cache_dir>/downloads/<name>``, or a new one where the
   dataset is small and free: MedMNIST and mini-MIAS (``source="download"``);
3. a synthetic stand-in written in the same layout (``source="synthetic"``), announced loudly.

Then the catalog is split (official split where the dataset has one, else by patient, else
stratified; seeded), the requested split is capped to the profile (``max_train``/``max_eval``,
stratified and seeded), and the files are decoded once into the memory-mapped cache at ``size``.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from .base import ImageDataset
from .cache import cached_images, prepare_image
from .catalog import Catalog
from .chestxray import merge_catalogs, read_covid, read_nih
from .download import SOURCES_INFO, DownloadError, download_dir, download_medmnist, download_mias, instructions, offline
from .mammography import read_cbis_ddsm, read_mias
from .medmnist import medmnist_file, medmnist_names, read_medmnist_npz
from .pbc import read_pbc
from .splits import DEFAULT_FRACTIONS, assert_no_patient_overlap, cap_stratified, patient_split, stratified_split
from .synthetic import write_synthetic

__all__ = ["DATASETS", "SyntheticDataWarning", "load_dataset", "load_catalog", "split_indices", "describe_source",
           "resolve"]

#: Datasets read from files, with their reader. MedMNIST flags are known too (``medmnist_names()``).
DATASETS = ("pbc", "nih", "covid", "mias", "cbis_ddsm")
_READERS = {"pbc": read_pbc, "nih": read_nih, "covid": read_covid, "mias": read_mias, "cbis_ddsm": read_cbis_ddsm}
SPLITS = ("train", "valid", "test", "all")
#: Share of an official train+valid part that becomes ``valid`` (by patient).
VALID_SHARE_OF_TRAINVAL = 0.125


class SyntheticDataWarning(UserWarning):
    """Data came from a synthetic stand-in, not from the real dataset."""


def _is_medmnist(name: str) -> bool:
    return name in medmnist_names()


def _say(msg: str, verbose: bool) -> None:
    if verbose:
        print(f"[data] {msg}", flush=True)


def _announce_synthetic(name: str, why: str, verbose: bool) -> None:
    text = (f"SYNTHETIC STAND-IN for {name!r}: {why}. These are generated shapes in the dataset's layout, not "
            f"medical images: nothing measured on them says anything about medicine. To use the real data: "
            f"{instructions(name)}")
    warnings.warn(text, SyntheticDataWarning, stacklevel=3)
    if verbose:
        bar = "!" * 100
        print(f"[data] {bar}\n[data] {text}\n[data] {bar}", flush=True)


# ----------------------------------------------------------------------------- resolution


def resolve(name: str, *, download: bool = True, verbose: bool = True, size: int | None = None) -> tuple[str, Path, str]:
    """Where ``name`` comes from now: ``(source, path, why)``; may download or write a stand-in.

    For MedMNIST ``path`` is the ``.npz`` file, for the others the dataset folder.
    """
    root = config.data_root()
    if _is_medmnist(name):
        real = medmnist_file(root / "medmnist", name, size)
        if real is not None:
            return "real", real, f"found {real}"
        prior = medmnist_file(download_dir("medmnist"), name, size)
        if prior is not None:
            return "download", prior, f"downloaded earlier to {prior}"
        why = f"no {root / 'medmnist' / (name + '.npz')}"
        if download and not offline():
            try:
                path = download_medmnist(name)
                _say(f"{name}: downloaded to {path} (MD5 checked)", verbose)
                return "download", path, f"downloaded to {path}"
            except DownloadError as exc:
                why += f"; download failed: {exc}"
        elif offline():
            why += "; MEDVIT_OFFLINE is set"
        folder = write_synthetic(name, flag=name)
        return "synthetic", folder / f"{name}.npz", why
    if name not in _READERS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)} and MedMNIST {medmnist_names()}")
    real = root / name
    if real.is_dir():
        return "real", real, f"found {real}"
    why = f"no folder {real}"
    if SOURCES_INFO[name].auto:
        prior = download_dir(name)
        if (prior / "all-mias" / "Info.txt").exists():
            return "download", prior, f"downloaded earlier to {prior}"
        if download and not offline():
            try:
                path = download_mias(prior)
                _say(f"{name}: downloaded to {path} (no checksum is published; SHA-256 recorded)", verbose)
                return "download", path, f"downloaded to {path}"
            except DownloadError as exc:
                why += f"; download failed: {exc}"
        elif offline():
            why += "; MEDVIT_OFFLINE is set"
    return "synthetic", write_synthetic(name), why


def describe_source(name: str) -> str:
    """Where ``name`` would be read from right now, in words, without downloading anything."""
    root = config.data_root()
    if _is_medmnist(name):
        real = medmnist_file(root / "medmnist", name)
        if real is not None:
            return f"real ({real})"
        prior = medmnist_file(download_dir("medmnist"), name)
        if prior is not None:
            return f"download (fetched earlier: {prior})"
        if offline():
            return f"synthetic stand-in (no {root / 'medmnist' / (name + '.npz')}, MEDVIT_OFFLINE set)"
        return (f"download from Zenodo on first use (no {root / 'medmnist' / (name + '.npz')}); "
                "a synthetic stand-in if that fails")
    base = name.split("+")[0]
    if base not in _READERS:
        return f"unknown dataset {name!r}"
    real = root / base
    if real.is_dir():
        return f"real ({real})"
    if SOURCES_INFO[base].auto:
        prior = download_dir(base)
        if (prior / "all-mias" / "Info.txt").exists():
            return f"download (fetched earlier: {prior})"
        if not offline():
            return f"download from {SOURCES_INFO[base].url} on first use (no {real}); a synthetic stand-in if that fails"
    return f"synthetic stand-in (no {real}; {SOURCES_INFO[base].url})"


# ----------------------------------------------------------------------------- catalog and splits


def load_catalog(name: str, *, covid: bool = False, label: str = "pathology", download: bool = True,
                 verbose: bool = True) -> tuple[Catalog, str, dict[str, Any]]:
    """The catalog of ``name`` (files and labels, nothing decoded), its source and where it came from."""
    source, folder, why = resolve(name, download=download, verbose=verbose)
    if source == "synthetic":
        _announce_synthetic(name, why, verbose)
    cat = read_cbis_ddsm(folder, label=label) if name == "cbis_ddsm" else _READERS[name](folder)
    origin = {name: {"source": source, "path": str(folder), "why": why}}
    if name == "nih" and covid:
        c_source, c_folder, c_why = resolve("covid", download=download, verbose=verbose)
        if c_source == "synthetic":
            _announce_synthetic("covid", c_why, verbose)
        cat = merge_catalogs(cat, read_covid(c_folder), name="nih")
        origin["covid"] = {"source": c_source, "path": str(c_folder), "why": c_why}
        if c_source == "synthetic" and source != "synthetic":
            source = "synthetic"  # one synthetic part makes the whole dataset synthetic
    return cat, source, origin


def split_indices(cat: Catalog, seed: int = 42, fractions=DEFAULT_FRACTIONS) -> tuple[dict[str, np.ndarray], str]:
    """``{"train", "valid", "test"} -> indices`` for a catalog, and the rule applied, in words.

    Official split where the catalog has one (an official ``trainval`` part is split by patient
    into train/valid; rows without an official split are split by patient); else by patient; else
    stratified by class. An official split that leaves train or test empty for the images present
    (a partial copy) is replaced by a patient-level split, and the rule says so.
    """
    labels, patients = cat.labels, cat.patient_ids
    n = len(cat)

    def by_patient_or_class(idx: np.ndarray, fr) -> dict[str, np.ndarray]:
        if len(idx) == 0:
            return {k: np.array([], dtype=np.int64) for k in fr}
        if patients is not None:
            part = patient_split(patients[idx], labels[idx], fr, seed)
        else:
            part = stratified_split(labels[idx], fr, seed)
        return {k: idx[v] for k, v in part.items()}

    rule = ""
    out: dict[str, np.ndarray] | None = None
    if cat.official_split is not None:
        official = np.asarray([s if s is not None else "" for s in cat.official_split], dtype=object)
        out = {k: np.flatnonzero(official == k) for k in ("train", "valid", "test")}
        trainval = np.flatnonzero(official == "trainval")
        if len(trainval):
            tv = by_patient_or_class(trainval, {"train": 1 - VALID_SHARE_OF_TRAINVAL, "valid": VALID_SHARE_OF_TRAINVAL})
            out["train"] = np.concatenate([out["train"], tv["train"]])
            out["valid"] = np.concatenate([out["valid"], tv["valid"]])
        rest = np.flatnonzero(official == "")
        if len(rest):
            extra = by_patient_or_class(rest, fractions)
            out = {k: np.concatenate([out[k], extra[k]]) for k in out}
        rule = (f"official split ({cat.meta.get('split_rule', 'from the dataset')})"
                + (f"; train+valid part split by patient ({VALID_SHARE_OF_TRAINVAL:.1%} to valid)" if len(trainval) else "")
                + (f"; {len(rest)} images without an official split split by patient" if len(rest) else ""))
        if patients is not None:
            # an official split may put one patient on two sides (CBIS-DDSM's mass and calcification
            # sets were split separately): keep the official test set, drop that patient's other images
            test_patients = set(patients[out["test"]])
            dropped = 0
            for k in ("train", "valid"):
                clash = np.isin(patients[out[k]], list(test_patients))
                dropped += int(clash.sum())
                out[k] = out[k][~clash]
            valid_patients = set(patients[out["valid"]])
            clash = np.isin(patients[out["train"]], list(valid_patients))
            dropped += int(clash.sum())
            out["train"] = out["train"][~clash]
            if dropped:
                rule += f"; {dropped} train/valid images dropped because their patient is also on a later side"
        if len(out["train"]) == 0 or len(out["test"]) == 0:
            counts = {k: len(v) for k, v in out.items()}
            rule = f"patient-level (the official split leaves {counts} for the {n} images present)"
            out = None
    if out is None:
        out = by_patient_or_class(np.arange(n), fractions)
        if not rule:
            rule = "patient-level" if patients is not None else "stratified by class (no patient ids)"
        rule += f", fractions {dict(fractions)}, seed {seed}"
    out = {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in out.items()}
    if patients is not None:
        assert_no_patient_overlap({k: patients[v] for k, v in out.items()})
    return out, rule


# ----------------------------------------------------------------------------- the public entry point


def _caps(profile: config.Profile | None, split: str) -> int | None:
    if profile is None:
        return None
    return profile.max_train if split in ("train", "all") else profile.max_eval


def _resize_arrays(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack([prepare_image(img, size) for img in images])


def _skipped_summary(skipped: list[dict[str, str]]) -> str:
    if not skipped:
        return ""
    names = ", ".join(f"{Path(s['file']).name} ({s['reason'].split(': ', 1)[-1][:60]})" for s in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"; skipped {len(skipped)}: {names}{more}"


def load_dataset(
    name: str,
    split: str = "train",
    size: int | None = None,
    profile: config.Profile | str | None = None,
    *,
    seed: int = 42,
    preprocess: str | None = None,
    channels: int | None = None,
    covid: bool = False,
    label: str = "pathology",
    download: bool = True,
    verbose: bool = True,
) -> ImageDataset:
    """One split of a registered dataset as an :class:`ImageDataset`.

    Args:
        name: ``"pbc"``, ``"nih"``, ``"covid"``, ``"mias"``, ``"cbis_ddsm"`` or a MedMNIST flag.
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"``.
        size: image side in pixels; default the profile's ``image_size`` (MedMNIST: its own 28 px
            when neither is given).
        profile: a profile (or its name) whose ``max_train``/``max_eval`` cap the split (stratified,
            seeded) and whose ``image_size`` is the default size. ``None``: no cap.
        seed: seed of the split and of the cap.
        preprocess: ``"equalize"`` for thesis 000's histogram equalisation.
        channels: 1 or 3 to force grey or RGB (default: the dataset's own).
        covid: for ``"nih"``, add the ieee8023 COVID-19 images as a 15th label (thesis 000).
        label: for ``"cbis_ddsm"``, ``"pathology"`` (benign/malignant) or ``"abnormality"`` (mass/calcification).
        download: allow an automatic download where the dataset is small and free.
        verbose: print where the data came from (a synthetic stand-in is always announced by a warning).

    Raises:
        KeyError: unknown dataset; ValueError: unknown split or no decodable image.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    prof = config.get_profile(profile) if isinstance(profile, str) else profile
    cap = _caps(prof, split)

    if _is_medmnist(name):
        size_req = size or (prof.image_size if prof else None)
        source, path, why = resolve(name, download=download, verbose=verbose, size=size_req)
        if source == "synthetic":
            _announce_synthetic(name, why, verbose)
        parts = ["train", "valid", "test"] if split == "all" else [split]
        pieces = [read_medmnist_npz(path, name, s, source=source) for s in parts]
        ds = pieces[0]
        if len(pieces) > 1:
            ds = ImageDataset(name, "all", ds.task, ds.classes, np.concatenate([p.images for p in pieces]),
                              np.concatenate([p.labels for p in pieces]), source, ids=sum((p.ids for p in pieces), []),
                              meta=ds.meta)
        keep = cap_stratified(ds.labels, cap, seed)
        ds = ds.subset(keep) if len(keep) < len(ds) else ds
        images = ds.images
        if channels and images.shape[-1] != channels:
            if channels == 3:
                images = np.repeat(images, 3, axis=-1)
            else:  # ITU-R 601 luma, as helpers.imageio converts RGB to grey
                weights = np.array([299, 587, 114], dtype=np.uint32)
                images = ((images.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)[..., None]
        if size_req:
            images = _resize_arrays(images, size_req)
        meta = {**ds.meta, "source_path": str(path), "why": why, "split_rule": "official MedMNIST split",
                "seed": seed, "cap": cap, "profile": prof.name if prof else None, "size": int(images.shape[1])}
        ds = ImageDataset(name, ds.split, ds.task, ds.classes, np.ascontiguousarray(images), ds.labels, source,
                          ids=ds.ids, meta=meta)
        _say(f"{name}/{ds.split}: {len(ds)} images {ds.image_size}px, source={source} ({path}), official split"
             + (f", capped to {cap} (stratified, seed {seed})" if cap and len(keep) == cap else ""), verbose)
        return ds

    cat, source, origin = load_catalog(name, covid=covid, label=label, download=download, verbose=verbose)
    if len(cat) == 0:
        raise ValueError(f"{name}: no images found ({origin})")
    parts, rule = split_indices(cat, seed=seed)
    idx = np.arange(len(cat)) if split == "all" else parts[split]
    keep = idx[cap_stratified(cat.labels[idx], cap, seed)]
    chosen = cat.take(keep)
    size = size or (prof.image_size if prof else config.get_profile().image_size)
    ch = channels or cat.channels
    cache_name = name + ("+covid" if covid and name == "nih" else "")
    result = cached_images(cache_name, split, chosen.files, size, source=source, channels=ch, preprocess=preprocess,
                           progress=verbose)
    kept = chosen.take(result.kept)
    skipped = list(cat.report.get("skipped", [])) + list(result.report.get("skipped", []))
    meta = {
        **cat.meta,
        "origin": origin,
        "root": str(cat.root),
        "split_rule": rule,
        "split_sizes": {k: int(len(v)) for k, v in parts.items()},
        "seed": seed,
        "cap": cap,
        "profile": prof.name if prof else None,
        "size": size,
        "preprocess": preprocess,
        "resize_rule": "pad to square with black, then antialiased bilinear resize",
        "cache": str(result.path),
        "cache_built": result.built,
        "reader_report": cat.report,
        "decode_report": result.report,
        "skipped": skipped,
    }
    ds = ImageDataset(
        name=name, split=split, task=cat.task, classes=list(cat.classes), images=result.images, labels=kept.labels,
        source=source, patient_ids=kept.patient_ids, ids=kept.ids, meta=meta, annotations=kept.annotations,
    )
    where = "; ".join(f"{k}: {v['source']} ({v['path']})" for k, v in origin.items())
    _say(f"{name}/{split}: {len(ds)} images {size}px, source={source} [{where}]; split {rule}"
         + (f"; capped to {cap} (stratified, seed {seed})" if cap is not None and len(idx) > cap else "")
         + _skipped_summary(skipped), verbose)
    return ds
