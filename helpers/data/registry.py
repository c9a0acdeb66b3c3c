"""Dataset registry: ``load_dataset(name, split=...)`` with the resolution order real → download → synthetic.

Every name is a :class:`~helpers.data.specs.DatasetSpec` of :data:`~helpers.data.specs.DATASETS`;
the spec says how to read the dataset, how to tell it is present and how to download it, and this
module walks one order for all of them:

1. ``$MEDVIT_DATA/<home>`` in the dataset's original layout (``source="real"``);
2. an earlier automatic download in ``<cache_dir>/downloads/<home>`` (MedMNIST: at the side the
   profile needs, 28/64/128/224 px), or a new one where the dataset is free to fetch: MedMNIST,
   mini-MIAS and the ieee8023 COVID-19 collection (``source="download"``);
3. only when no download could be made (offline, blocked), an earlier download at another side,
   and failing that a synthetic stand-in in the same layout (``source="synthetic"``), announced
   once per dataset, loudly.

:func:`choose` picks the first of several datasets that is real or downloadable: the blood cells
(:data:`BLOOD_CELLS`) are PBC when it is under ``$MEDVIT_DATA``, else BloodMNIST, which holds the
same PBC images re-cut (PBC itself publishes no direct file URL with a checksum, so it is never
downloaded).

:func:`resolve` walks it (and may download or write the stand-in); :func:`describe_source` is the
same walk as a query that writes nothing; :func:`medmnist_labels` reads a MedMNIST file's labels
without its images. Then the catalog is split
(:func:`~helpers.data.splits.split_indices`), the requested split is capped to the profile
(``max_train``/``max_eval``, stratified and seeded), and the files are decoded once into the
memory-mapped cache at ``size``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from ..imageio import to_channels
from ..preprocessing import PREPROCESS, prepare_image
from .base import ImageDataset
from .cache import cached_images
from .catalog import Catalog
from .chestxray import merge_catalogs
from .download import DownloadError, download_dir, offline
from .medmnist import read_medmnist_labels
from .specs import DATASETS, DatasetSpec, get_spec
from .splits import cap_stratified, split_indices

__all__ = [
    "BLOOD_CELLS",
    "DATASETS",
    "choose",
    "SPLITS",
    "SyntheticDataWarning",
    "load_dataset",
    "load_catalog",
    "medmnist_labels",
    "describe_source",
    "resolve",
]

SPLITS = ("train", "valid", "test", "all")


#: The blood-cell datasets in order of preference: PBC, else BloodMNIST (the same images, re-cut).
BLOOD_CELLS = ("pbc", "bloodmnist")


class SyntheticDataWarning(UserWarning):
    """Data came from a synthetic stand-in, not from the real dataset."""


#: The datasets whose stand-in was announced in this process (one banner each, not one per split).
_ANNOUNCED: set[str] = set()


def _say(msg: str, verbose: bool) -> None:
    if verbose:
        print(f"[data] {msg}", flush=True)


def _announce_synthetic(spec: DatasetSpec, why: str, verbose: bool) -> None:
    """One loud banner per dataset and process: printed when ``verbose``, else a :class:`SyntheticDataWarning`."""
    if spec.name in _ANNOUNCED:
        return
    _ANNOUNCED.add(spec.name)
    text = (
        f"SYNTHETIC STAND-IN for {spec.name!r}: {why}. These are generated shapes in the dataset's layout, not "
        f"medical images: nothing measured on them says anything about medicine. To use the real data: "
        f"{spec.instructions()}"
    )
    if not verbose:
        warnings.warn(text, SyntheticDataWarning, stacklevel=3)
        return
    bar = "!" * 100
    print(f"[data] {bar}\n[data] {text}\n[data] {bar}", flush=True)


# ----------------------------------------------------------------------------- resolution


def _present(spec: DatasetSpec, size: int | None = None) -> tuple[str, Path, str] | None:
    """Steps 1 and 2 of the walk, as a query: ``(source, path, why)`` when the data is on disk."""
    real = spec.locate(config.data_root() / spec.home, size)
    if real is not None:
        return "real", real, f"found {config.shown_path(real)}"
    if spec.auto:
        prior = spec.locate(download_dir(spec.home), size, downloaded=True)
        if prior is not None:
            return "download", prior, f"downloaded earlier to {config.shown_path(prior)}"
    return None


def resolve(
    name: str, *, download: bool = True, verbose: bool = True, size: int | None = None
) -> tuple[str, Path, str]:
    """Where ``name`` comes from now: ``(source, path, why)``; may download or write a stand-in.

    For MedMNIST ``path`` is the ``.npz`` file, for the others the dataset folder.

    Raises:
        KeyError: for an unknown name.
    """
    spec = get_spec(name)
    found = _present(spec, size)
    if found is not None:
        return found
    why = spec.missing(config.data_root())
    if spec.auto:
        if download and not offline():
            try:
                path = _download(spec, size)
                _say(f"{name}: downloaded to {config.shown_path(path)} ({spec.checksum})", verbose)
                return "download", path, f"downloaded to {config.shown_path(path)}"
            except DownloadError as exc:
                why += f"; download failed: {exc}"
        elif offline():
            why += "; MEDVIT_OFFLINE is set"
        other = spec.locate(download_dir(spec.home), None, downloaded=True) if spec.kind == "medmnist" else None
        if other is not None:  # offline: an earlier download at another side beats a stand-in
            shown = config.shown_path(other)
            return "download", other, f"downloaded earlier to {shown} (another side than {size} px; {why})"
    return "synthetic", spec.stand_in(), why


def _download(spec: DatasetSpec, size: int | None) -> Path:
    """Run the spec's downloader into its downloads folder (MedMNIST at the side ``size`` needs)."""
    if spec.kind == "medmnist":
        return spec.downloader(download_dir(spec.home), size=size)
    return spec.downloader(download_dir(spec.home))


def _chosen_because(names: tuple[str, ...] | list[str], name: str, why: str) -> str:
    if name != names[0]:
        why += f" ({', '.join(names[: list(names).index(name)])} not present or not downloadable)"
    if name == "bloodmnist" and "pbc" in names:
        why += "; BloodMNIST holds the PBC images re-cut (28-224 px, its own official split)"
    return why


def choose(
    names: tuple[str, ...] | list[str], *, download: bool = True, size: int | None = None
) -> tuple[str, str, str]:
    """The first of ``names`` with real data: ``(name, source, why)``.

    Each name is first looked for on disk (``$MEDVIT_DATA``, then earlier downloads); only then is
    a download tried, in the same order; only when none of them can be had, the first one's
    synthetic stand-in (``source="synthetic"``), and ``why`` says why each download failed.
    :data:`BLOOD_CELLS` so gives PBC when present, else BloodMNIST.
    """
    if not names:
        raise ValueError("choose needs at least one dataset name")
    for name in names:
        found = _present(get_spec(name), size)
        if found is not None:
            return name, found[0], _chosen_because(names, name, found[2])
    failed = []
    for name in names if download else ():
        source, _, why = resolve(name, download=True, verbose=False, size=size)
        if source != "synthetic":
            return name, source, _chosen_because(names, name, why)
        if get_spec(name).auto:
            failed.append(f"{name}: {why}")
    source, _, why = resolve(names[0], download=False, verbose=False, size=size)
    return names[0], source, "; ".join([why, *failed])


def describe_source(name: str) -> str:
    """Where ``name`` would be read from right now, in words: the walk of :func:`resolve`, writing nothing.

    ``"nih+covid"`` describes the ChestX-ray14 part.
    """
    spec = DATASETS.get(name.split("+")[0])
    if spec is None:
        return f"unknown dataset {name!r}"
    found = _present(spec)
    if found is not None:
        source, path, _ = found
        shown = config.shown_path(path)
        return f"real ({shown})" if source == "real" else f"download (fetched earlier: {shown})"
    why = spec.missing(config.data_root())
    if spec.auto and not offline():
        return f"download from {spec.url} on first use ({why}); a synthetic stand-in if that fails"
    if spec.auto:
        why += ", MEDVIT_OFFLINE set"
    return f"synthetic stand-in ({why}; {spec.url})"


# ----------------------------------------------------------------------------- catalogs


def _catalog_of(
    spec: DatasetSpec, *, download: bool, verbose: bool, **options: Any
) -> tuple[Catalog, str, dict[str, Any]]:
    source, folder, why = resolve(spec.name, download=download, verbose=verbose)
    if source == "synthetic":
        _announce_synthetic(spec, why, verbose)
    cat = spec.reader(folder, **{k: v for k, v in options.items() if k in spec.reader_options})
    return cat, source, {spec.name: {"source": source, "path": str(folder), "why": why}}


def load_catalog(
    name: str, *, covid: bool = False, label: str = "pathology", download: bool = True, verbose: bool = True
) -> tuple[Catalog, str, dict[str, Any]]:
    """The catalog of a folder dataset (files and labels, nothing decoded), its source and where it came from.

    Raises:
        KeyError: for an unknown name; ValueError: for a MedMNIST flag (no folder to catalog).
    """
    spec = get_spec(name)
    if spec.kind != "folder":
        raise ValueError(f"{name} is one MedMNIST .npz, not a folder dataset: read it with load_dataset")
    cat, source, origin = _catalog_of(spec, download=download, verbose=verbose, label=label)
    if name == "nih" and covid:
        fetch = download and source != "synthetic"  # no large download to pair with a stand-in
        c_cat, c_source, c_origin = _catalog_of(get_spec("covid"), download=fetch, verbose=verbose)
        cat = merge_catalogs(cat, c_cat, name="nih")
        origin.update(c_origin)
        if c_source == "synthetic" and source != "synthetic":
            source = "synthetic"  # one synthetic part makes the whole dataset synthetic
    return cat, source, origin


# ----------------------------------------------------------------------------- the public entry point


@dataclass(frozen=True)
class _Request:
    """What :func:`load_dataset` was asked for, shared by its MedMNIST and folder branches."""

    split: str
    size: int | None
    profile: config.Profile | None
    seed: int
    preprocess: str | None
    channels: int | None
    download: bool
    verbose: bool

    @property
    def cap(self) -> int | None:
        if self.profile is None:
            return None
        return self.profile.max_train if self.split in ("train", "all") else self.profile.max_eval

    @property
    def profile_name(self) -> str | None:
        return self.profile.name if self.profile else None


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
        name: a name of :data:`~helpers.data.specs.DATASETS`: ``"pbc"``, ``"nih"``, ``"covid"``,
            ``"mias"``, ``"cbis_ddsm"`` or a MedMNIST flag.
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"``.
        size: image side in pixels; default the profile's ``image_size`` (MedMNIST: its own 28 px
            when neither is given).
        profile: a profile (or its name) whose ``max_train``/``max_eval`` cap the split (stratified,
            seeded) and whose ``image_size`` is the default size. ``None``: no cap.
        seed: seed of the split and of the cap.
        preprocess: ``"equalize"`` for thesis 000's histogram equalisation (grey, equalised, then
            repeated to ``channels``; for files and MedMNIST arrays alike).
        channels: 1 or 3 to force grey or RGB (default: the dataset's own).
        covid: for ``"nih"``, add the ieee8023 COVID-19 images as a 15th label (thesis 000).
        label: for ``"cbis_ddsm"``, ``"pathology"`` (benign/malignant) or ``"abnormality"`` (mass/calcification).
        download: allow an automatic download where the dataset is small and free.
        verbose: print where the data came from (a synthetic stand-in is always announced by a warning).

    Raises:
        KeyError: unknown dataset; ValueError: unknown split or preprocessing, or no decodable image.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
    prof = config.get_profile(profile) if isinstance(profile, str) else profile
    spec = get_spec(name)
    request = _Request(split, size, prof, seed, preprocess, channels, download, verbose)
    if spec.kind == "medmnist":
        return _load_medmnist(spec, request)
    return _load_folder(spec, request, covid=covid, label=label)


# ----------------------------------------------------------------------------- MedMNIST arrays


def _medmnist_images(
    images: np.ndarray, size: int | None = None, channels: int | None = None, preprocess: str | None = None
) -> np.ndarray:
    """Decoded MedMNIST images prepared image by image by the rule files are (``prepare_image``).

    Without preprocessing: converted to ``channels`` (the dataset's own by default), then resized
    to ``size`` (its own by default). With ``"equalize"``: grey, equalised and resized, then
    repeated to ``channels``, exactly as :func:`helpers.preprocessing.prepare_file` prepares a file.
    """
    channels = channels or images.shape[-1]
    size = size or images.shape[1]
    resize = preprocess is not None or images.shape[1:3] != (size, size)
    if not resize and images.shape[-1] == channels:
        return images
    out = np.empty((len(images), size, size, channels), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = prepare_image(img, size, preprocess, channels) if resize else to_channels(img, channels)
    return out


def _read_medmnist(spec: DatasetSpec, path: Path, split: str, source: str) -> ImageDataset:
    """One split of the ``.npz`` (``"all"``: the three official splits one after the other)."""
    pieces = [
        spec.reader(path, spec.name, s, source=source)
        for s in (("train", "valid", "test") if split == "all" else (split,))
    ]
    ds = pieces[0]
    if len(pieces) == 1:
        return ds
    return ImageDataset(
        spec.name,
        "all",
        ds.task,
        ds.classes,
        np.concatenate([p.images for p in pieces]),
        np.concatenate([p.labels for p in pieces]),
        source,
        ids=sum((p.ids for p in pieces), []),
        meta=ds.meta,
    )


def medmnist_labels(
    name: str, *, size: int | None = None, download: bool = True, verbose: bool = True
) -> tuple[dict[str, np.ndarray], str, Path, str]:
    """The labels of a MedMNIST flag's three official splits, read without its images:
    ``({"train", "valid", "test"} -> labels, source, path, why)``, from the file :func:`load_dataset`
    would read at ``size`` (a stand-in is announced as there).

    Raises:
        KeyError: for an unknown name; ValueError: for a folder dataset (read it with :func:`load_catalog`).
    """
    spec = get_spec(name)
    if spec.kind != "medmnist":
        raise ValueError(f"{name} is a folder dataset, not a MedMNIST .npz: read it with load_catalog")
    source, path, why = resolve(name, download=download, verbose=verbose, size=size)
    if source == "synthetic":
        _announce_synthetic(spec, why, verbose)
    labels = {s: read_medmnist_labels(path, name, s) for s in ("train", "valid", "test")}
    return labels, source, path, why


def _load_medmnist(spec: DatasetSpec, req: _Request) -> ImageDataset:
    size = req.size or (req.profile.image_size if req.profile else None)
    source, path, why = resolve(spec.name, download=req.download, verbose=req.verbose, size=size)
    if source == "synthetic":
        _announce_synthetic(spec, why, req.verbose)
    ds = _read_medmnist(spec, path, req.split, source)
    keep = cap_stratified(ds.labels, req.cap, req.seed)
    ds = ds.subset(keep) if len(keep) < len(ds) else ds
    images = _medmnist_images(ds.images, size, req.channels, req.preprocess)
    meta = {
        **ds.meta,
        "source_path": str(path),
        "why": why,
        "split_rule": "official MedMNIST split",
        "seed": req.seed,
        "cap": req.cap,
        "profile": req.profile_name,
        "size": int(images.shape[1]),
        "preprocess": req.preprocess,
    }
    ds = ImageDataset(
        spec.name, ds.split, ds.task, ds.classes, np.ascontiguousarray(images), ds.labels, source, ids=ds.ids, meta=meta
    )
    capped = f", capped to {req.cap} (stratified, seed {req.seed})" if req.cap and len(keep) == req.cap else ""
    _say(
        f"{spec.name}/{ds.split}: {len(ds)} images {ds.image_size}px, source={source} ({config.shown_path(path)}), official split{capped}",
        req.verbose,
    )
    return ds


# ----------------------------------------------------------------------------- folder datasets


def _skipped_summary(skipped: list[dict[str, str]]) -> str:
    if not skipped:
        return ""
    names = ", ".join(f"{Path(s['file']).name} ({s['reason'].split(': ', 1)[-1][:60]})" for s in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"; skipped {len(skipped)}: {names}{more}"


def _load_folder(spec: DatasetSpec, req: _Request, *, covid: bool, label: str) -> ImageDataset:
    name = spec.name
    cat, source, origin = load_catalog(name, covid=covid, label=label, download=req.download, verbose=req.verbose)
    if len(cat) == 0:
        raise ValueError(f"{name}: no images found ({origin})")
    parts, rule = split_indices(cat, seed=req.seed)
    idx = np.arange(len(cat)) if req.split == "all" else parts[req.split]
    chosen = cat.take(idx[cap_stratified(cat.labels[idx], req.cap, req.seed)])
    size = req.size or (req.profile.image_size if req.profile else config.get_profile().image_size)
    cache_name = name + ("+covid" if covid and name == "nih" else "")
    result = cached_images(
        cache_name,
        req.split,
        chosen.files,
        size,
        source=source,
        channels=req.channels or cat.channels,
        preprocess=req.preprocess,
        progress=req.verbose,
    )
    kept = chosen.take(result.kept)
    skipped = list(cat.report.get("skipped", [])) + list(result.report.get("skipped", []))
    meta = {
        **cat.meta,
        "origin": origin,
        "root": str(cat.root),
        "split_rule": rule,
        "split_sizes": {k: int(len(v)) for k, v in parts.items()},
        "seed": req.seed,
        "cap": req.cap,
        "profile": req.profile_name,
        "size": size,
        "preprocess": req.preprocess,
        "resize_rule": "pad to square with black, then antialiased bilinear resize",
        "cache": str(result.path),
        "cache_built": result.built,
        "reader_report": cat.report,
        "decode_report": result.report,
        "skipped": skipped,
    }
    ds = ImageDataset(
        name=name,
        split=req.split,
        task=cat.task,
        classes=list(cat.classes),
        images=result.images,
        labels=kept.labels,
        source=source,
        patient_ids=kept.patient_ids,
        ids=kept.ids,
        meta=meta,
        annotations=kept.annotations,
    )
    where = "; ".join(f"{k}: {v['source']} ({config.shown_path(v['path'])})" for k, v in origin.items())
    capped = (
        f"; capped to {req.cap} (stratified, seed {req.seed})" if req.cap is not None and len(idx) > req.cap else ""
    )
    _say(
        f"{name}/{req.split}: {len(ds)} images {size}px, source={source} [{where}]; split {rule}{capped}"
        + _skipped_summary(skipped),
        req.verbose,
    )
    return ds
