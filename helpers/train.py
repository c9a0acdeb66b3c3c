"""One entry point that trains an image classifier and writes a run record: :func:`train`.

``train(model, data, config)`` builds the model (a :func:`~helpers.models.vision.create_model`
name or a module) and the data (a registry name or a ``(train, valid, test)`` tuple of
:class:`~helpers.data.base.ImageDataset`) and fits with fastai's ``Learner`` as the
:class:`TrainConfig` says:

* schedules (:data:`SCHEDULES`): one-cycle or constant learning rate, fastai's
  frozen-then-unfrozen ``fine_tune``, thesis 000's three stages (head → + last block → whole
  network) with reduce-on-plateau;
* discriminative learning rates and freezing over the stages of
  :func:`~helpers.models.vision.param_groups` (stem + body / last block / head);
* MixUp, label smoothing, class-weighted losses (:mod:`helpers.losses`);
* on CUDA: mixed precision (bf16 where supported, else fp16), ``channels_last``, fused Adam;
* gradient accumulation, early stopping and best-epoch keeping (:mod:`helpers.callbacks`; the
  kept model is written as safetensors with a :class:`~helpers.cards.ModelCard` through
  :func:`~helpers.checkpoints.save_checkpoint`, never pickled).

The theses' recipes and the chapters' settings are named configurations (:mod:`helpers.configs`):
``train(model, data, "three_stage")``, or ``get_config("one_cycle").replace(epochs=5)``.
After training, the model is evaluated with :mod:`helpers.metrics` on the validation and test
sets, and the run is saved under :func:`helpers.config.runs_dir` (:mod:`helpers.runs`).
The code is in :mod:`helpers.training`; this module is where it is imported from.
"""

from __future__ import annotations

from .configs import RECIPES, get_config, list_configs
from .training.config import Plateau, TrainConfig
from .training.loop import resolve_config, train
from .training.record import predict
from .training.schedules import SCHEDULES, split_epochs
from .training.setup import make_optimizer

__all__ = [
    "train",
    "TrainConfig",
    "Plateau",
    "RECIPES",
    "SCHEDULES",
    "get_config",
    "list_configs",
    "resolve_config",
    "predict",
    "make_optimizer",
    "split_epochs",
]
