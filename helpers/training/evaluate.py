"""``python -m helpers evaluate``: a saved checkpoint on a split of a dataset, with the training metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["evaluate_checkpoint"]


@torch.no_grad()
def evaluate_checkpoint(
    folder: str | Path, data: str, split: str = "test", profile: Any = None, batch_size: int = 64
) -> dict[str, Any]:
    """:func:`helpers.metrics.evaluate` of the checkpoint in ``folder`` (a run folder or its
    ``checkpoint`` folder) on ``split`` of ``data``, read at the card's input size.

    Raises:
        ValueError: when the data's classes are not the ones the model was trained on.
    """
    from .. import metrics as M
    from ..checkpoints import load_checkpoint
    from ..data import load_dataset
    from ..inference import input_tensor, probabilities

    folder = Path(folder)
    if (folder / "checkpoint").is_dir():
        folder = folder / "checkpoint"
    model, card = load_checkpoint(folder)
    ds = load_dataset(data, split=split, size=card.input_size, profile=profile)
    if list(ds.classes) != list(card.classes):
        raise ValueError(f"{data} has classes {list(ds.classes)}; the model was trained on {list(card.classes)}")
    images = ds.images if ds.images.shape[-1] == card.in_chans else np.repeat(ds.images, card.in_chans, axis=-1)
    probs = []
    for start in range(0, len(ds), batch_size):
        x = torch.cat([input_tensor(im, card) for im in images[start : start + batch_size]])
        probs.append(probabilities(model(x), card.task).numpy())
    result = M.evaluate(np.asarray(ds.labels), np.concatenate(probs), card.task, list(card.classes))
    return {"data": data, "split": split, "source": ds.source, "n": len(ds), "metrics": M.headline(result)}
