"""Reference results of the theses and the literature, kept as data.

Every number the book compares its own runs with lives here once, as a tidy record
(:class:`Reference`): which source reports it (a bibtex key of ``book/references.bib``), in which
table, on which dataset, for which model, which metric and its value, with what is known about
the setting (resolution, pretraining, hardware, training time). ``tests/test_references.py``
checks the thesis numbers against the text of the theses.

``reference_table()`` returns them as a pandas DataFrame; ``findings()`` returns the theses'
qualitative statements (batch size, MixUp, label smoothing, ...) in our own words.

Dataset names are the registry names of :func:`helpers.data.load_dataset` where the book has a
loader (``pbc``, ``bloodmnist``, ``nih``, ...), so that :mod:`helpers.results` can put a run and
its references side by side.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Reference",
    "Finding",
    "DATASET_CAPTIONS",
    "METRICS",
    "REFERENCES",
    "FINDINGS",
    "THESIS004_PROTOCOL",
    "reference_table",
    "findings",
    "main_metric",
    "wide_table",
    "cited_as",
    "bib_entries",
]

#: What each dataset name means, for table captions (registry name -> description).
DATASET_CAPTIONS: dict[str, str] = {
    "pbc": "PBC normal peripheral blood cells, 8 classes (17,092 images)",
    "pbc_subtypes": "PBC with the 13 sub-types of the file names",
    "bloodmnist": "BloodMNIST (MedMNIST v2; PBC re-cut to 28 px, official 7:1:2 split)",
    "pneumoniamnist": "PneumoniaMNIST (MedMNIST v2), pneumonia vs normal",
    "breastmnist": "BreastMNIST (MedMNIST v2), breast ultrasound, benign/normal vs malignant",
    "chestmnist": "ChestMNIST (MedMNIST v2), ChestX-ray14 at 28 px, 14 findings",
    "nih": "ChestX-ray14 (NIH), 14 findings (+ COVID-19 and healthy in thesis 000)",
    "cbis_ddsm": "CBIS-DDSM mammography, benign vs malignant (mass lesions)",
}

#: Metric names used in records, with the direction that is better.
METRICS: dict[str, str] = {
    "accuracy": "higher",
    "balanced_accuracy": "higher",
    "kappa": "higher",
    "error_rate": "lower",
    "auroc": "higher",
    "auprc": "higher",
    "f1": "higher",
    "sensitivity": "higher",
    "specificity": "higher",
    "mcc": "higher",
}

_MAIN_METRIC = {
    "pbc": "balanced_accuracy",
    "pbc_subtypes": "balanced_accuracy",
    "bloodmnist": "accuracy",
    "pneumoniamnist": "auroc",
    "breastmnist": "auroc",
    "chestmnist": "auroc",
    "nih": "auroc",
    "cbis_ddsm": "accuracy",
    "mias_lesions": "auroc",
    "mias_abnormal": "auroc",
    "nih_64px": "auroc",
}


def main_metric(dataset: str) -> str:
    """The metric a dataset's results are ranked by (``accuracy`` for unknown datasets)."""
    return _MAIN_METRIC.get(dataset, "accuracy")


@dataclass(frozen=True)
class Reference:
    """One published number.

    Attributes:
        source: bibtex key of the work the number is read from (``thesis004``, ``yang2023medmnist``).
        table: the table (or section) it sits in, as the source names it.
        dataset: registry name of the dataset (see :data:`DATASET_CAPTIONS`).
        model: the model as the source names it.
        metric: one of :data:`METRICS`.
        value: the number, as a fraction (62.17 % is ``0.6217``).
        label: the class or finding the number is for; ``"all"`` for a whole-task figure.
        resolution: input side in pixels, where known.
        pretraining: ``"ImageNet"``, ``"ImageNet-21k"``, ``"none"``, ... where known.
        origin: who produced the number when the source only quotes it.
        hardware: what it ran on, where known.
        train_time_s: training time in seconds, where reported.
        notes: anything a reader needs to compare it fairly.
    """

    source: str
    table: str
    dataset: str
    model: str
    metric: str
    value: float
    label: str = "all"
    resolution: int | None = None
    pretraining: str | None = None
    origin: str | None = None
    hardware: str | None = None
    train_time_s: float | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; use one of {sorted(METRICS)}")
        if self.dataset not in DATASET_CAPTIONS:
            raise ValueError(f"unknown dataset {self.dataset!r}; add it to DATASET_CAPTIONS first")
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"{self.metric} must be a fraction in [0, 1], got {self.value}")


@dataclass(frozen=True)
class Finding:
    """A qualitative statement of a source, in our words, with the numbers it rests on."""

    source: str
    dataset: str
    topic: str
    statement: str
    numbers: str = ""


# ----------------------------------------------------------------------------- thesis 004 (PBC)

_T004 = dict(
    source="thesis004",
    table="Table 2",
    dataset="pbc",
    resolution=224,
    hardware="Google Colab GPU (type assigned by Colab, not reported)",
)
_T004_MODELS = {
    # model: (pretraining, notes, [balanced accuracy, accuracy, kappa, error rate])
    "ResNet18": (
        "ImageNet",
        "fastai fine_tune: head only, then all layers (the thesis: gradual unfreezing), batch 64",
        [0.98, 0.99, 0.98, 0.012],
    ),
    "ResNet34": (
        "ImageNet",
        "fastai fine_tune: head only, then all layers (the thesis: gradual unfreezing), batch 64",
        [0.99, 0.99, 0.98, 0.01],
    ),
    "ViT-Base": (
        "ImageNet-21k",
        "timm vit_base_patch16_224, unfrozen non-gradually (thesis), batch 64, MixUp",
        [0.94, 0.95, 0.94, 0.05],
    ),
    "ViT-Large": (
        "ImageNet-21k",
        "timm vit_large_patch16_224, unfrozen non-gradually (thesis), batch 64, MixUp + label smoothing",
        [0.95, 0.96, 0.95, 0.03],
    ),
}
_T004_METRICS = ("balanced_accuracy", "accuracy", "kappa", "error_rate")

#: How thesis 004 trained each model: :func:`helpers.configs.thesis004_config` turns each entry into
#: a :class:`~helpers.training.config.TrainConfig` (the ``full`` profile of the blood-cells chapter
#: runs these). Common to all: 80/20 random split with seed 42, images resized to 224 px, fastai
#: augmentation with ``min_scale=0.75``. ResNets come from torchvision's ImageNet weights
#: (``tv_in1k``), ViTs from timm's ImageNet-21k weights. The thesis names no ViT epochs for the
#: MixUp runs: 15, as in its batch-size and depth runs, is assumed. ``table2`` names the Table 2
#: column a configuration reproduces (``None``: an ablation).
THESIS004_PROTOCOL: dict[str, dict[str, Any]] = {
    "resnet18": dict(
        model="resnet18.tv_in1k",
        recipe="fastai_fine_tune",
        freeze_epochs=3,
        epochs=13,
        batch_size=64,
        mixup=False,
        label_smoothing=0.0,
        table2="ResNet18",
        note="head 3 epochs, then the whole network 13 epochs with discriminative learning rates",
    ),
    "resnet34": dict(
        model="resnet34.tv_in1k",
        recipe="fastai_fine_tune",
        freeze_epochs=3,
        epochs=13,
        batch_size=64,
        mixup=False,
        label_smoothing=0.0,
        table2="ResNet34",
        note="as ResNet18",
    ),
    "vit_base_bs64": dict(
        model="vit_base_patch16_224.augreg_in21k",
        recipe="fastai_fine_tune",
        freeze_epochs=1,
        epochs=15,
        batch_size=64,
        mixup=False,
        label_smoothing=0.0,
        table2=None,
        note="batch-size test: non-gradual unfreezing (one frozen epoch here), 15 epochs, batch 64",
    ),
    "vit_base_bs128": dict(
        model="vit_base_patch16_224.augreg_in21k",
        recipe="fastai_fine_tune",
        freeze_epochs=1,
        epochs=15,
        batch_size=128,
        mixup=False,
        label_smoothing=0.0,
        table2=None,
        note="batch-size test: as above with batch 128 (worse in the thesis)",
    ),
    "vit_base_mixup": dict(
        model="vit_base_patch16_224.augreg_in21k",
        recipe="fastai_fine_tune",
        freeze_epochs=1,
        epochs=15,
        batch_size=64,
        mixup=True,
        label_smoothing=0.0,
        table2="ViT-Base",
        note="the ViT-Base of Table 2: batch 64 + MixUp",
    ),
    "vit_large_mixup": dict(
        model="vit_large_patch16_224.augreg_in21k",
        recipe="fastai_fine_tune",
        freeze_epochs=1,
        epochs=15,
        batch_size=64,
        mixup=True,
        label_smoothing=0.0,
        table2=None,
        note="ViT-Large + MixUp",
    ),
    "vit_large_mixup_ls": dict(
        model="vit_large_patch16_224.augreg_in21k",
        recipe="fastai_fine_tune",
        freeze_epochs=1,
        epochs=15,
        batch_size=64,
        mixup=True,
        label_smoothing=0.1,
        table2="ViT-Large",
        note="the ViT-Large of Table 2: MixUp + label smoothing (ε 0.1)",
    ),
}

THESIS004: list[Reference] = [
    Reference(
        model=model,
        metric=metric,
        value=value,
        pretraining=pre,
        notes=notes + "; 80/20 random split of all 17,092 images; training time not reported",
        **_T004,
    )
    for model, (pre, notes, values) in _T004_MODELS.items()
    for metric, value in zip(_T004_METRICS, values)
]

# ----------------------------------------------------------------------------- MedMNIST v2 baselines

_MEDMNIST_TABLE = "2D benchmark (test split)"
_MEDMNIST_ROWS = {
    # dataset: {method: (AUC, ACC)}
    "bloodmnist": {
        "ResNet-18 (28)": (0.998, 0.958),
        "ResNet-18 (224)": (0.998, 0.963),
        "ResNet-50 (28)": (0.997, 0.956),
        "ResNet-50 (224)": (0.997, 0.950),
        "auto-sklearn": (0.984, 0.878),
        "AutoKeras": (0.998, 0.961),
        "Google AutoML Vision": (0.998, 0.966),
    },
    "pneumoniamnist": {
        "ResNet-18 (28)": (0.944, 0.854),
        "ResNet-18 (224)": (0.956, 0.864),
        "ResNet-50 (28)": (0.948, 0.854),
        "ResNet-50 (224)": (0.962, 0.884),
        "auto-sklearn": (0.942, 0.855),
        "AutoKeras": (0.947, 0.878),
        "Google AutoML Vision": (0.991, 0.946),
    },
    "breastmnist": {
        "ResNet-18 (28)": (0.901, 0.863),
        "ResNet-18 (224)": (0.891, 0.833),
        "ResNet-50 (28)": (0.857, 0.812),
        "ResNet-50 (224)": (0.866, 0.842),
        "auto-sklearn": (0.836, 0.803),
        "AutoKeras": (0.871, 0.831),
        "Google AutoML Vision": (0.919, 0.861),
    },
    "chestmnist": {
        "ResNet-18 (28)": (0.768, 0.947),
        "ResNet-18 (224)": (0.773, 0.947),
        "ResNet-50 (28)": (0.769, 0.947),
        "ResNet-50 (224)": (0.773, 0.948),
        "auto-sklearn": (0.649, 0.779),
        "AutoKeras": (0.742, 0.937),
        "Google AutoML Vision": (0.778, 0.948),
    },
}


def _medmnist_resolution(method: str) -> int:
    """ResNets name their input size; the AutoML tools were given the 28-px images."""
    if method.endswith("(224)"):
        return 224
    return 28


MEDMNIST: list[Reference] = [
    Reference(
        source="yang2023medmnist",
        table=_MEDMNIST_TABLE,
        dataset=dataset,
        model=method,
        metric=metric,
        value=value,
        resolution=_medmnist_resolution(method),
        pretraining="none" if method.startswith("ResNet") else None,
        notes=(
            "trained from scratch, 100 epochs, Adam lr 1e-3; 224-px runs upsample the 28-px images"
            if method.startswith("ResNet")
            else "AutoML tool on the 28-px images"
        )
        + ("; ChestMNIST is multi-label: ACC is the mean per-label accuracy" if dataset == "chestmnist" else ""),
    )
    for dataset, rows in _MEDMNIST_ROWS.items()
    for method, (auc, acc) in rows.items()
    for metric, value in (("auroc", auc), ("accuracy", acc))
]

# ----------------------------------------------------------------------------- thesis 000 (ChestX-ray14)

_FINDINGS_000 = [
    "Cardiomegaly",
    "Emphysema",
    "Effusion",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Atelectasis",
    "Pneumothorax",
    "Pleural_Thickening",
    "Pneumonia",
    "Fibrosis",
    "Edema",
    "Consolidation",
]
#: Table 4.7: the thesis's ResNet-50 (AUPRC, AUROC, F1, accuracy) per finding, threshold 0.5.
_T47 = {
    "Cardiomegaly": (0.290, 0.875, 0.324, 0.911),
    "Emphysema": (0.413, 0.938, 0.350, 0.886),
    "Effusion": (0.494, 0.850, 0.527, 0.807),
    "Hernia": (0.050, 0.855, 0.051, 0.957),
    "Infiltration": (0.382, 0.740, 0.458, 0.711),
    "Mass": (0.290, 0.831, 0.340, 0.877),
    "Nodule": (0.249, 0.806, 0.299, 0.876),
    "Atelectasis": (0.336, 0.794, 0.387, 0.815),
    "Pneumothorax": (0.447, 0.906, 0.496, 0.852),
    "Pleural_Thickening": (0.157, 0.820, 0.217, 0.852),
    "Pneumonia": (0.425, 0.863, 0.274, 0.856),
    "Fibrosis": (0.106, 0.852, 0.154, 0.910),
    "Edema": (0.187, 0.879, 0.193, 0.788),
    "Consolidation": (0.150, 0.776, 0.234, 0.754),
    "COVID-19": (0.844, 0.991, 0.799, 0.969),
    "Healthy": (0.691, 0.736, 0.496, 0.712),
    "Global-14": (0.284, 0.842, 0.307, 0.846),
    "Global-15": (0.344, 0.852, 0.350, 0.846),
}
#: Table 4.8: AUROC of published models (CRAL, DR-CNN, TSNC, LargeMeta, CheXNet) and radiologists.
_T48_MODELS = ("CRAL", "DR-CNN", "TSNC", "LargeMeta", "CheXNet", "Radiologists")
_T48 = {
    "Cardiomegaly": (0.880, 0.801, 0.887, 0.875, 0.923, 0.888),
    "Emphysema": (0.908, 0.773, 0.930, 0.895, 0.937, 0.911),
    "Effusion": (0.829, 0.797, 0.831, 0.822, 0.864, 0.900),
    "Hernia": (0.917, 0.748, 0.921, 0.937, 0.916, 0.985),
    "Infiltration": (0.702, 0.751, 0.703, 0.694, 0.734, 0.734),
    "Mass": (0.834, 0.760, 0.833, 0.820, 0.868, 0.886),
    "Nodule": (0.773, 0.741, 0.798, 0.747, 0.780, 0.899),
    "Atelectasis": (0.781, 0.766, 0.785, 0.763, 0.809, 0.808),
    "Pneumothorax": (0.729, 0.778, 0.731, 0.840, 0.889, 0.940),
    "Pleural_Thickening": (0.778, 0.759, 0.782, 0.763, 0.806, 0.779),
    "Pneumonia": (0.857, 0.800, 0.881, 0.731, 0.768, 0.823),
    "Fibrosis": (0.830, 0.765, 0.833, 0.816, 0.805, 0.897),
    "Edema": (0.850, 0.820, 0.849, 0.846, 0.888, 0.910),
    "Consolidation": (0.754, 0.787, 0.754, 0.749, 0.790, 0.841),
    "Healthy": (None, None, None, 0.727, None, None),
    "Global-14": (0.816, 0.775, 0.823, 0.807, 0.841, 0.872),
}
#: Table 4.9: per finding, the deep-learning method with the best AUROC in Table 4.8 (the thesis's
#: own model is "Proposal") against the radiologists; ``*`` in the thesis marks the radiologists' lead.
_T49 = {
    "Cardiomegaly": ("CheXNet", 0.923, 0.888),
    "Emphysema": ("Proposal", 0.938, 0.911),
    "Effusion": ("CheXNet", 0.864, 0.900),
    "Hernia": ("LargeMeta", 0.937, 0.985),
    "Infiltration": ("DR-CNN", 0.751, 0.734),
    "Mass": ("CheXNet", 0.868, 0.886),
    "Nodule": ("Proposal", 0.806, 0.899),
    "Atelectasis": ("CheXNet", 0.809, 0.808),
    "Pneumothorax": ("Proposal", 0.906, 0.940),
    "Pleural_Thickening": ("Proposal", 0.820, 0.779),
    "Pneumonia": ("TSNC", 0.881, 0.823),
    "Fibrosis": ("Proposal", 0.852, 0.897),
    "Edema": ("CheXNet", 0.888, 0.910),
    "Consolidation": ("CheXNet", 0.790, 0.841),
    "COVID-19": ("Proposal", 0.991, None),
}
#: What the thesis's Global rows average (checked in tests/test_lungs.py): not one definition.
_T47_GLOBAL = {
    "Global-14": "; Global-14: mean over the 14 findings",
    "Global-15": "; Global-15: AUROC is the mean over the 14 findings and COVID-19; AUPRC, F1 and accuracy "
    "also count the Healthy row (16 rows)",
}
_T000_NOTES = (
    "ResNet-50 (ImageNet) + Dense 256 head, weighted BCE, three-stage schedule; 1024 px; "
    "official ChestX-ray14 test list, CheXNet relabelled training labels; threshold 0.5"
)
_T000_ORIGIN = {
    "CRAL": "Guan & Huang (CRAL)",
    "DR-CNN": "DR-CNN",
    "TSNC": "TSNC",
    "CheXNet": "Rajpurkar et al. (CheXNet)",
    "LargeMeta": "ResNet-38-large-meta (480 px, uses metadata)",
    "Radiologists": "radiologists, via Rajpurkar et al. 2018 (CheXNeXt)",
}

THESIS000: list[Reference] = (
    [
        Reference(
            source="thesis000",
            table="Table 4.7",
            dataset="nih",
            model="ResNet-50 (thesis 000)",
            metric=metric,
            value=value,
            label=label,
            resolution=1024,
            pretraining="ImageNet",
            notes=_T000_NOTES + _T47_GLOBAL.get(label, ""),
        )
        for label, values in _T47.items()
        for metric, value in zip(("auprc", "auroc", "f1", "accuracy"), values)
    ]
    + [
        Reference(
            source="thesis000",
            table="Table 4.8",
            dataset="nih",
            model=model,
            metric="auroc",
            value=value,
            label=label,
            origin=_T000_ORIGIN[model],
            resolution=480 if model == "LargeMeta" else None,
            notes="quoted by thesis 000 for comparison"
            + ("; CheXNet figure is a bootstrap mean" if model == "CheXNet" else ""),
        )
        for label, values in _T48.items()
        for model, value in zip(_T48_MODELS, values)
        if value is not None
    ]
    + [
        Reference(
            source="thesis000",
            table="Table 4.9",
            dataset="nih",
            model="ResNet-50 (thesis 000)" if who == "Proposal" else who,
            metric="auroc",
            value=value,
            label=label,
            origin=None if who == "Proposal" else _T000_ORIGIN[who],
            notes="best deep-learning AUROC per finding in Table 4.8"
            if who != "Radiologists"
            else "radiologists, via Rajpurkar et al. (CheXNeXt); the thesis marks with * where they lead",
        )
        for label, (method, best, radiologists) in _T49.items()
        for who, value in ((method, best), ("Radiologists", radiologists))
        if value is not None
    ]
)

# ----------------------------------------------------------------------------- thesis 002 (CBIS-DDSM)

_HOUR = 3600.0
THESIS002: list[Reference] = (
    [
        Reference(
            source="thesis002",
            table="Section 5.1",
            dataset="cbis_ddsm",
            model="small CNN (thesis 002)",
            metric=metric,
            value=value,
            resolution=256,
            pretraining="none",
            train_time_s=0.5 * _HOUR,
            notes="Keras CNN Conv32-64-128-128 + Dense 128, mass lesions of CBIS-DDSM, no augmentation",
        )
        for metric, value in (("accuracy", 0.6217), ("specificity", 0.7835), ("sensitivity", 0.3673))
    ]
    + [
        Reference(
            source="thesis002",
            table="Section 5.1 (reference study)",
            dataset="cbis_ddsm",
            model=model,
            metric="accuracy",
            value=acc,
            pretraining="ImageNet",
            train_time_s=hours * _HOUR,
            origin="Ragab et al. 2021, Multi-DCNN framework, as quoted by thesis 002",
            notes="CBIS-DDSM + MIAS mass images (CC and MLO views); data differ from the thesis's own",
        )
        for model, acc, hours in (
            ("AlexNet", 0.7468, 6.5),
            ("GoogleNet", 0.7601, 12.0),
            ("ResNet-18", 0.7223, 14.0),
            ("ResNet-50", 0.7109, 33.0),
            ("ResNet-101", 0.7147, 62.0),
        )
    ]
    + [
        Reference(
            source="thesis002",
            table="Figure 5.10 (reference study)",
            dataset="cbis_ddsm",
            model="AlexNet features + SVM (linear kernel)",
            metric=metric,
            value=value,
            pretraining="ImageNet",
            origin="Ragab et al. 2021, Multi-DCNN framework, as quoted by thesis 002",
            notes="CBIS-DDSM + MIAS; deep features classified by an SVM",
        )
        for metric, value in (
            ("accuracy", 0.913),
            ("auroc", 0.97),
            ("sensitivity", 0.918),
            ("specificity", 0.911),
            ("mcc", 0.829),
        )
    ]
)

#: Every reference record.
REFERENCES: list[Reference] = THESIS004 + MEDMNIST + THESIS000 + THESIS002

# ----------------------------------------------------------------------------- qualitative findings

FINDINGS: list[Finding] = [
    Finding(
        "thesis004",
        "pbc",
        "batch size",
        "ViT-Base trained 15 epochs with non-gradual unfreezing did better with batch 64 than with "
        "batch 128 (lower train and test loss); 64 was kept for every later model.",
        "accuracy during training above 0.94 with batch 64, not above 0.94 with batch 128",
    ),
    Finding(
        "thesis004",
        "pbc",
        "MixUp",
        "Adding MixUp to ViT-Base raised accuracy a little; its training loss sits above the test loss "
        "because only the training images are mixed, and its confusion matrices look less certain.",
        "accuracy above 0.95; balanced accuracy and kappa above 0.94",
    ),
    Finding(
        "thesis004",
        "pbc",
        "depth and epochs",
        "ViT-Large (24 layers) reached lower loss than ViT-Base (12); training it 50 instead of 15 "
        "epochs reached a plateau and did not help.",
        "15 vs 50 epochs: no appreciable gain",
    ),
    Finding(
        "thesis004",
        "pbc",
        "label smoothing",
        "ViT-Large with MixUp and label smoothing was the best ViT; MixUp alone gave about the same "
        "accuracy, label smoothing added a little.",
        "MixUp: accuracy, balanced accuracy and kappa above 0.95; + label smoothing: accuracy above 0.96, "
        "balanced accuracy and kappa 0.95",
    ),
    Finding(
        "thesis004",
        "pbc",
        "CNN vs ViT",
        "The ResNets stayed ahead of the ViTs on PBC (about 0.99 against 0.95-0.96 accuracy); "
        "monocytes, one of the smaller classes, were the hardest class. Training times were not "
        "compared because Colab's shared GPUs made them unreliable.",
        "Table 2",
    ),
]


def _frame(records: Iterable[Any]) -> Any:
    import pandas as pd

    rows = [dataclasses.asdict(r) for r in records]
    columns = [f.name for f in dataclasses.fields(Reference)] if not rows else list(rows[0])
    return pd.DataFrame(rows, columns=columns)


def _match(value: str, wanted: str | Iterable[str] | None) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return value == wanted
    return value in set(wanted)


def reference_table(
    task: str | Iterable[str] | None = None,
    source: str | Iterable[str] | None = None,
    metric: str | Iterable[str] | None = None,
    label: str | None = "all",
) -> Any:
    """The reference results as a tidy DataFrame (one row per number).

    Args:
        task: dataset name(s) to keep (``"pbc"``, ``"bloodmnist"``, ``"nih"``, ...); ``None`` keeps all.
        source: bibtex key(s) to keep (``"thesis004"``, ``"yang2023medmnist"``, ...).
        metric: metric name(s) to keep.
        label: ``"all"`` (default) keeps whole-task numbers only, a class or finding name keeps that
            one, ``None`` keeps every row (per-finding rows included).

    Raises:
        ValueError: for a task or source no record has (so a typo is not an empty table).
    """
    for name, wanted, known in (
        ("task", task, {r.dataset for r in REFERENCES} | set(DATASET_CAPTIONS)),
        ("source", source, {r.source for r in REFERENCES}),
    ):
        if wanted is None:
            continue
        for w in [wanted] if isinstance(wanted, str) else list(wanted):
            if w not in known:
                raise ValueError(f"unknown {name} {w!r}; known: {sorted(known)}")
    chosen = [
        r
        for r in REFERENCES
        if _match(r.dataset, task)
        and _match(r.source, source)
        and _match(r.metric, metric)
        and (label is None or _label_matches(r, label))
    ]
    return _frame(chosen)


def _label_matches(r: Reference, label: str) -> bool:
    if label == "all":
        # Whole-task numbers: "all", and the thesis-000 "Global-14" summary rows.
        return r.label in ("all", "Global-14")
    return r.label == label


def findings(source: str | None = None, dataset: str | None = None) -> Any:
    """The qualitative statements of the theses as a DataFrame (source, dataset, topic, statement, numbers)."""
    import pandas as pd

    rows = [
        dataclasses.asdict(f)
        for f in FINDINGS
        if (source is None or f.source == source) and (dataset is None or f.dataset == dataset)
    ]
    return pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(Finding)])


@functools.lru_cache(maxsize=4)
def bib_entries(bib: str | None = None) -> dict[str, dict[str, str]]:
    """A BibTeX file (default: the book's ``book/references.bib``) as {key: {field: value}}; empty when
    the file is absent (an installed package without the book)."""
    from pathlib import Path

    from . import config

    bib = Path(bib) if bib is not None else config.repo_root() / "book" / "references.bib"
    text = bib.read_text(encoding="utf-8") if bib.is_file() else ""
    entries = {}
    for key, body in re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", text, flags=re.S):
        fields = re.findall(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", body)
        entries[key] = {name.lower(): value for name, value in fields}
    return entries


def cited_as(key: str) -> str:
    """How a table names the work behind bibtex ``key``: ``thesis 004``, ``Yang et al. 2023``, ``Wang et al. 2017``.

    A key the bibliography does not hold is returned as it is.
    """
    if re.fullmatch(r"thesis\d{3}", key):
        return f"thesis {key[-3:]}"
    entry = bib_entries().get(key)
    if entry is None or "author" not in entry:
        return key
    authors = [a.strip() for a in entry["author"].split(" and ")]
    first = re.sub(r"\\['\"`^~]|[{}]", "", authors[0]).split(",")[0].strip()
    first = first if "," in authors[0] else first.split()[-1]
    more = (
        " et al."
        if len(authors) > 2 or "others" in authors
        else (f" and {authors[1].split(',')[0]}" if len(authors) == 2 else "")
    )
    return f"{first}{more} {entry.get('year', 'n.d.')}"


def wide_table(task: str, metrics: Iterable[str] | None = None, source: str | None = None) -> Any:
    """One row per (source, model), one column per metric: the shape the chapters print.

    ``wide_table("pbc")`` is thesis 004's Table 2 as a DataFrame; its ``source`` column names each
    work as a reader knows it (:func:`cited_as`), not by its bibtex key.
    """
    df = reference_table(task=task, source=source)
    if metrics is not None:
        df = df[df["metric"].isin(list(metrics))]
    if df.empty:
        return df
    keys = ["source", "table", "model", "resolution", "pretraining"]
    df = df.assign(
        resolution=df["resolution"].map(lambda v: "?" if v is None or v != v else str(int(v))),
        pretraining=df["pretraining"].fillna("?"),
    )
    wide = df.pivot_table(index=keys, columns="metric", values="value", aggfunc="first", sort=False)
    wide = wide.reset_index()
    wide.columns.name = None
    order = [m for m in METRICS if m in wide.columns]
    return wide[keys + order].assign(source=wide["source"].map(cited_as))
