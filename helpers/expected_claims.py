"""The claims a book build should record, as data: chapter -> the claims it makes.

Each claim is ``(name, checked_at)`` or ``(name, checked_at, made_at)``:

``name``
    the claim's name as the chapter passes it to :func:`helpers.claims.check`; ``*`` stands for a part that
    depends on the run (``"(chance *)"``, ``"(N = *, ...)"``), matched with :func:`fnmatch.fnmatchcase`.
``checked_at``
    the profiles at which the chapter's bound is meant to be checked (on the data it was measured on).
``made_at``
    the profiles at which the chapter makes the claim at all (every profile unless given): a claim the
    chapter makes only under a condition of the profile (a random start, say) is not expected elsewhere.

``python -m helpers.claims report --fail`` (the last step of ``make book`` and ``make verify``) fails on an
expected claim that a build did not record: a chapter dropped from ``_toc.yml``, a cell skipped by a
parameter, a claim renamed in its notebook but not here. A chapter that changes its claims changes its
entry here in the same commit.
"""

from __future__ import annotations

ALL = ("smoke", "quick", "full")
QF = ("quick", "full")
NEVER: tuple[str, ...] = ()

#: chapter (notebook file name without suffix) -> its claims.
EXPECTED: dict[str, tuple[tuple, ...]] = {
    "rnn": (("held-out cross-entropy below the unigram model's (nats/char)", QF),),
    "lstm_gru": (
        ("LSTM: held-out MSE, times below the mean-predicting baseline", QF),
        ("GRU: held-out MSE, times below the mean-predicting baseline", QF),
        ("vanilla RNN: held-out MSE as a fraction of the baseline (no memory)", QF),
    ),
    "attention": tuple(
        [(f"{model}: exact match on unseen dates", QF) for model in ("Bahdanau (additive)", "Luong (general)")]
        + [
            (f"{model}: attention on the {field} while writing it", QF)
            for model in ("Bahdanau (additive)", "Luong (general)")
            for field in ("year", "month", "day")
        ]
    ),
    "transformer": (("exact match on unseen dates", QF),),
    "training_transformers": (
        ("RAdam reaches half rate before the untuned linear warmup (steps earlier)", ALL),
        ("RAdam reaches half rate before the untuned exponential warmup (steps earlier)", ALL),
        ("RAdam reaches 0.99 of the rate after the exponential warmup (steps later)", ALL),
        ("every rule holds back (1 - beta2)^-1 steps of rate: largest relative deviation of sum(1 - factor)", ALL),
        (
            "Post-LN decoder: gradient of the last third of layers / the first third"
            " (N = *, mean of * initialisations)",
            ALL,
        ),
        ("Pre-LN decoder: largest / smallest layer gradient (N = *, mean of * initialisations)", ALL),
        ("Post-LN's largest/smallest layer ratio over Pre-LN's (N = *, mean of * initialisations)", ALL),
        ("last decoder layer's gradient, Post-LN / Pre-LN (N = *, mean of * initialisations)", ALL),
        ("LayerNorm-free T-Fixup model, no warmup: exact match on unseen dates", QF),
        ("the two baselines also train without warmup: the lower exact match of the two", QF),
        ("full softmax attention: fitted exponent of peak memory in L", QF),
        ("windowed, low-rank, kernel, hashing, mixing and recurrent families: largest fitted memory exponent", QF),
    ),
    "cnn_baselines": (
        ("full tuning: test AUROC", QF),
        ("thesis 002 CNN: test AUROC", QF),
        ("thesis 002 CNN: wall time as a fraction of full tuning's", QF),
        ("random start: full tuning's test AUROC minus frozen features's", QF, ("smoke", "quick")),
        ("random start: full tuning's test AUROC minus fine-tuning's", QF, ("smoke", "quick")),
        ("random start: frozen features' test AUROC minus fine-tuning's", QF, ("smoke", "quick")),
        ("ImageNet Lite0 fine-tuned at 64 px: test AUROC", QF),
    ),
    "vision_transformer": (
        ("training-step time grows with the tokens (fitted exponent)", QF),
        ("saved activations grow faster than linearly in the tokens (fitted exponent)", QF),
        ("CNN from scratch: test accuracy (chance *)", ("quick",)),
        ("ViT from scratch: test accuracy (chance *)", ("quick",)),
        ("ViT, flexible heads from scratch: test accuracy (chance *)", ("quick",)),
        ("flexible heads move little: largest |lambda_h| or |log tau_h| after training", QF),
        ("flexible heads move little: |change of mean attention distance| against the plain ViT (patches)", QF),
    ),
    "blood_cells": (
        ("held-out balanced accuracy", ("quick",)),
        ("*: held-out balanced accuracy minus the top of chance's interval (shuffled labels)", QF),
        ("ResNet's lead over the ViT (balanced accuracy)", ("quick",)),
        ("pretrained Lite0: held-out balanced accuracy", ("quick",)),
        ("what ImageNet weights add: the Lite0 minus the ResNet from scratch (balanced accuracy)", ("quick",)),
        ("what the pretrained stem gives a ViT: the hybrid minus the ViT from scratch (balanced accuracy)", ("quick",)),
        (
            "the pretrained Lite0 minus the better of the hybrid ViT and the DeiT student (balanced accuracy)",
            ("quick",),
        ),
        ("Grad-CAM heat on the stained cell / the cell's area (trained model)", ("quick",)),
    ),
    "lungs": (
        ("CNN mean test AUROC, ChestX-ray14 findings with >= 10 test positives", QF),
        (
            "ImageNet Lite0 (96 px) mean test AUROC, ChestX-ray14 findings with >= 10 test positives",
            ("quick",),
            ("smoke", "quick"),  # full trains the thesis's ResNet-50, ViT and DenseNet, no Lite0
        ),
    ),
    # a floor on the pretrained network's out-of-fold AUROC by woman, checked at quick (mini-MIAS, all 322 films)
    "mammography": (("Lite0 frozen + linear head: out-of-fold AUROC by woman, mini-MIAS lesion crops", ("quick",)),),
    "pose_estimation": (
        ("Martinez et al. network beats the mean pose: MPJPE gap on held-out motions (mm)", ("quick",)),
        ("joints-as-tokens lifter beats the mean pose: MPJPE gap on held-out motions (mm)", ("quick",)),
        ("joints-as-tokens lifter beats the mean pose: P-MPJPE gap on the unseen subject (mm)", ("quick",)),
    ),
}
