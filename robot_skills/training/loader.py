"""Batches for :func:`~robot_skills.training.trainer.fit`: the sample order is a function of the
step, so a resumed run sees exactly the batches an uninterrupted one would.

Epoch ``e`` of a job with ``W`` processes orders the ``N`` samples with PyTorch's
``DistributedSampler`` (shuffle seeded by ``seed + e``, ``drop_last``); rank ``r`` takes every
``W``-th index starting at ``r``, and its step-``s`` batch is the ``b``-th block of ``B`` indices of
its share (``e, b = divmod(s, steps_per_epoch)``). Because the sampler interleaves ranks, the
``W`` per-rank batches of one step are together exactly the block of ``W * B`` indices that a
single process with batch ``W * B`` uses at that step: with gradient averaging (DDP) the two runs
follow the same trajectory.

Two sources:

* a mapping of tensors (everything in memory; moved to the training device once and indexed
  there — the fastest path for small state-based data);
* any map-style ``torch.utils.data.Dataset`` whose items are mappings of tensors / arrays (e.g.
  a lazy HDF5 reader): read by a ``DataLoader`` with worker processes, pinned memory and
  persistent workers, batches copied to the device with ``non_blocking=True``.

A custom epoch order (``fit(..., sampler=...)``, e.g. the lazy dataset's block-wise shuffle that
keeps its cache useful) follows the same protocol as ``DistributedSampler``: ``set_epoch(e)``,
then this rank's indices.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from robot_skills.training.device import DistContext, epoch_indices
from robot_skills.training.trainable import batch_size_of

TrainData = Mapping[str, torch.Tensor] | Dataset
"""What ``fit`` trains on: a mapping of tensors sharing the leading sample dimension, or a
map-style dataset whose items are mappings."""


def num_samples(data: Any) -> int:
    """Number of samples ``N`` of a mapping of tensors or a sized map-style dataset.

    Raises:
        TypeError: ``data`` is neither (an iterable-style dataset has no length or indexing).
        ValueError: a ragged or empty mapping (see
            :func:`~robot_skills.training.trainable.batch_size_of`).
    """
    if isinstance(data, Mapping):
        return batch_size_of(data)
    if isinstance(data, torch.utils.data.IterableDataset):
        raise TypeError("fit needs a map-style Dataset (with __len__ and __getitem__), got the "
                        f"iterable-style {type(data).__name__}")
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        return len(data)  # type: ignore[arg-type]
    raise TypeError("training data must be a mapping of tensors or a map-style "
                    f"torch.utils.data.Dataset, got {type(data).__name__}")


class StepBatchSampler(Sampler[list[int]]):
    """This rank's batch of sample indices for each optimiser step in ``[start, end)``.

    Args:
        n: samples in the dataset.
        batch_size: samples per step and process (clipped to the per-process share).
        seed: shuffling seed (epoch ``e`` uses ``seed + e``, as ``DistributedSampler``).
        ctx: world size and rank.
        start / end: first and one-past-last step.
        order: optional sampler giving this rank's sample order of an epoch after
            ``order.set_epoch(e)`` (the ``DistributedSampler`` protocol: built with this job's
            ``num_replicas``/``rank``), e.g. the lazy dataset's ``BlockShuffleSampler``, which
            keeps a bounded cache useful; None = ``DistributedSampler`` (:func:`epoch_indices`).

    Raises:
        ValueError: fewer samples than processes, ``start > end``, or an ``order`` with no
            ``set_epoch`` or without samples.
    """

    def __init__(self, n: int, batch_size: int, seed: int, ctx: DistContext, start: int,
                 end: int, order: Sampler[int] | None = None) -> None:
        per_rank = n // ctx.world_size
        if order is not None:
            if not callable(getattr(order, "set_epoch", None)):
                raise ValueError(f"sampler {type(order).__name__} has no set_epoch(epoch)")
            per_rank = len(order)  # type: ignore[arg-type]
        if per_rank < 1:
            raise ValueError(f"{n} training samples cannot be shared by {ctx.world_size} processes")
        if start > end:
            raise ValueError(f"start step {start} is after end step {end}")
        self.n, self.seed, self.ctx, self.order = n, int(seed), ctx, order
        self.batch_size = max(1, min(int(batch_size), per_rank))
        self.steps_per_epoch = max(1, per_rank // self.batch_size)
        self.start, self.end = int(start), int(end)
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def batch_at(self, step: int) -> torch.Tensor:
        """``(B,)`` int64 indices of this rank's batch at ``step`` (CPU)."""
        e, b = divmod(int(step), self.steps_per_epoch)
        if e != self._epoch:
            self._epoch, self._order = e, self._epoch_order(e)
        return self._order[b * self.batch_size:(b + 1) * self.batch_size]

    def _epoch_order(self, e: int) -> torch.Tensor:
        if self.order is None:
            return epoch_indices(self.n, e, self.seed, self.ctx)
        self.order.set_epoch(e)  # type: ignore[attr-defined]
        idx = np.fromiter(iter(self.order), dtype=np.int64)  # 8 bytes a sample, no list
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise ValueError(f"sampler {type(self.order).__name__} gave indices outside "
                             f"[0, {self.n})")
        return torch.from_numpy(idx)

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.end):
            yield self.batch_at(s).tolist()

    def __len__(self) -> int:
        return self.end - self.start


def _seed_worker(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a DataLoader worker from torch's per-worker seed (the
    PyTorch reproducibility recipe), so augmentations differ between workers but not between
    identical runs."""
    s = torch.initial_seed() % 2 ** 32
    np.random.seed(s)
    random.seed(s)


def to_device(batch: Any, device: torch.device) -> Any:
    """Copy a (nested) mapping/list of tensors to ``device`` (``non_blocking``: overlaps with
    compute when the source is pinned)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def batches(data: TrainData, sampler: StepBatchSampler, device: torch.device, *,
            num_workers: int = 0, pin_memory: bool = True, prefetch_factor: int = 2
            ) -> Iterator[Mapping[str, torch.Tensor]]:
    """One batch per step of ``sampler``, on ``device``.

    Args:
        data: a mapping of tensors (moved to ``device`` once, indexed there) or a map-style
            dataset (read by a ``DataLoader``).
        sampler: the step-indexed order.
        device: the training device.
        num_workers: DataLoader worker processes (dataset source only; 0 = in this process).
        pin_memory: page-locked host batches (only used when ``device`` is CUDA).
        prefetch_factor: batches each worker loads ahead (when ``num_workers > 0``).
    """
    if sampler.start >= sampler.end:
        return
    if isinstance(data, Mapping):
        on_dev = {k: v.to(device) for k, v in data.items()}
        for s in range(sampler.start, sampler.end):
            idx = sampler.batch_at(s).to(device)
            yield {k: v[idx] for k, v in on_dev.items()}
        return
    g = torch.Generator().manual_seed(sampler.seed * 1_000_003 + sampler.start)
    workers = int(num_workers)
    loader = DataLoader(data, batch_sampler=sampler, num_workers=workers,
                        pin_memory=bool(pin_memory) and device.type == "cuda",
                        persistent_workers=workers > 0,
                        prefetch_factor=prefetch_factor if workers > 0 else None,
                        worker_init_fn=_seed_worker if workers > 0 else None, generator=g)
    for batch in loader:
        if not isinstance(batch, Mapping):
            raise TypeError(f"dataset {type(data).__name__} must yield mappings of tensors "
                            f"(name -> array), got batches of {type(batch).__name__}")
        yield to_device(batch, device)
