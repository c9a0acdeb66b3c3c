"""Several processes, one training run: DistributedDataParallel through fastai's ``distrib_ctx``.

``python -m helpers train ...`` started by ``torchrun --nproc_per_node N`` or ``accelerate launch``
finds ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in its environment and trains with N processes:

* each process takes the device of its local rank (``cuda:<LOCAL_RANK>``, or the CPU with gloo);
* :class:`~helpers.training.config.TrainConfig`'s ``batch_size`` stays the **global** batch: each
  rank gets ``batch_size // world_size`` images of every global batch, the very images a single
  process would have put in that batch (:class:`RankDL`), so N processes follow the single-process
  run's data order and, for a network without batch statistics, its loss curve;
* fastai's ``DistributedTrainer`` (``learn.distrib_ctx()``, with Hugging Face ``accelerate``) wraps
  the model in DDP; losses and validation predictions are gathered across ranks before metrics;
* only rank 0 prints, writes the run folder, the resume state and the checkpoint.

One process (no ``WORLD_SIZE``) is the ordinary case: :func:`context` does nothing then.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["world_size", "rank", "local_rank", "is_main", "device_for_rank", "per_rank_batch", "RankDL", "context"]


def world_size() -> int:
    """Processes in this run (``WORLD_SIZE``; 1 when not launched by torchrun/accelerate)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's rank (``RANK``; 0 alone)."""
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``; 0 alone)."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank() == 0


def device_for_rank(device: torch.device) -> torch.device:
    """``cuda:<LOCAL_RANK>`` for a CUDA run with several processes, else ``device`` unchanged."""
    if device.type == "cuda" and world_size() > 1:
        torch.cuda.set_device(local_rank())
        return torch.device("cuda", local_rank())
    return device


def per_rank_batch(batch_size: int) -> int:
    """Images per rank of a global batch of ``batch_size``.

    Raises:
        ValueError: when the global batch does not split evenly over the processes.
    """
    n = world_size()
    if batch_size % n:
        raise ValueError(f"batch_size {batch_size} does not split over {n} processes; use a multiple of {n}")
    return batch_size // n


def _rank_dl_class() -> type:
    from fastai.distributed import DistributedDL

    class _RankDL(DistributedDL):
        """fastai's ``DistributedDL``, with two changes: the index broadcast works with gloo on the
        CPU, and a shuffled (training) loader gives rank ``r`` the ``r``-th slice of each global
        batch of the single-process order (fastai gives each rank a contiguous half of the epoch)."""

        def _broadcast(self, t: list[int], src: int) -> list[int]:
            backend = torch.distributed.get_backend()
            tensor = torch.tensor(t, dtype=torch.long, device="cuda" if "nccl" in backend else "cpu")
            torch.distributed.broadcast(tensor, src)
            return tensor.cpu().tolist()

        def _interleaved(self) -> bool:
            return bool(self.dl.shuffle and self.dl.drop_last)

        def __len__(self) -> int:
            if self._interleaved():
                return self.dl.n // (self.dl.bs * self.world_size)
            return super().__len__()

        def get_idxs(self) -> list[int]:
            if not self._interleaved():
                return super().get_idxs()
            idxs = self._broadcast(list(self.dl.get_idxs()), 0)
            per, world = self.dl.bs, self.world_size
            step = per * world
            self.n = self.n_padded = len(idxs) // step * step
            out: list[int] = []
            for start in range(0, self.n, step):
                out += idxs[start + self.rank * per : start + (self.rank + 1) * per]
            return out

    return _RankDL


def RankDL(dl: Any, device: Any = None) -> Any:  # noqa: N802  (a class factory: fastai is imported late)
    """Wrap a fastai loader for this rank (see :func:`_rank_dl_class`)."""
    return _rank_dl_class()(dl, device=device)


@contextlib.contextmanager
def context(learn: Any, device: torch.device) -> Iterator[Any]:
    """``learn.distrib_ctx()`` when launched with several processes (a no-op alone).

    Batch norm becomes ``SyncBatchNorm`` on CUDA only (PyTorch has none on the CPU); the loaders are
    wrapped in :func:`RankDL`.
    """
    if world_size() <= 1:
        yield learn
        return
    from fastai.distributed import DistributedDL

    with learn.distrib_ctx(sync_bn=device.type == "cuda", cpu=device.type == "cpu"):
        trainer = learn.distributed_trainer
        trainer._wrap_dl = lambda dl: dl if isinstance(dl, DistributedDL) else RankDL(dl, device=learn.model.device)
        yield learn


def barrier() -> None:
    """Wait for every rank (a no-op alone)."""
    if world_size() > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()
