"""Device, precision, compilation and distributed set-up for training — standard PyTorch only.

* :func:`select_device`: CUDA if available, else CPU (or an explicit choice).
* :func:`autocast`: bf16 autocast on CUDA only (a no-op context elsewhere).
* :func:`maybe_compile`: ``torch.compile`` behind a flag.
* :func:`init_distributed`: when launched by ``torchrun`` (``WORLD_SIZE > 1``), initialises the
  process group (NCCL on CUDA, Gloo on CPU) and pins the local GPU; :func:`wrap_ddp` wraps a model in
  ``DistributedDataParallel``; :func:`epoch_indices` uses ``DistributedSampler`` to shard samples.
  Only rank 0 writes files (:attr:`DistContext.is_main`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn


def select_device(preference: str = "auto") -> torch.device:
    """Pick the training device.

    Args:
        preference: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    Raises:
        ValueError: if CUDA is requested but unavailable, or the string is not a device.
    """
    if preference in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(preference)
    except RuntimeError as e:
        raise ValueError(f"unknown device {preference!r}: {e}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {preference!r} requested but CUDA is not available")
    return dev


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast context on CUDA when ``bf16`` is True; a null context otherwise (CPU stays
    float32 — CPU bf16 autocast is slower than float32 for small MLPs)."""
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def maybe_compile(model: nn.Module, enabled: bool, device: torch.device | None = None) -> nn.Module:
    """``torch.compile(model)`` if ``enabled`` (and, when ``device`` is given, only on CUDA: on
    CPU the small policies gain nothing and compiling needs a C++ tool chain); else ``model``."""
    if not enabled or (device is not None and device.type != "cuda"):
        return model
    return torch.compile(model)


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads; returns the number used.

    Default (None): 1 thread on machines with <= 2 usable CPUs, else ``min(cpus // 2, 8)``. The
    policy's MLPs are small: on 2 cores, 2 threads gain little when the machine is idle and
    collapse 5-50x when another process (a simulator, a data collector) holds a core, because
    OpenMP workers spin-wait for a core that is busy (measured: 13.4k vs 0.25k samples/s for a
    64-wide MLP).
    """
    if num_threads is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - non-Linux
            cpus = os.cpu_count() or 1
        num_threads = 1 if cpus <= 2 else min(cpus // 2, 8)
    num_threads = max(1, int(num_threads))
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    return num_threads


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly single-process) job.

    Attributes:
        world_size: number of processes.
        rank: global rank.
        local_rank: rank on this node (selects the GPU).
        device: this process's device.
    """

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when running under DDP."""
        return self.world_size > 1


def _export_slurm_env() -> None:
    """Inside a multi-task SLURM job submitted by submitit (Hydra's submitit launcher with
    ``tasks_per_node > 1`` or ``nodes > 1``), set ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/
    ``MASTER_ADDR``/``MASTER_PORT`` from SLURM's variables with submitit's
    ``TorchDistributedEnvironment`` (rendezvous on the first node of the job). No-op when
    ``WORLD_SIZE`` is already set (``torchrun``), outside a submitit SLURM job
    (``SUBMITIT_EXECUTOR != "slurm"``; use ``torchrun`` under a plain ``srun``), or with a single
    task."""
    if "WORLD_SIZE" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return
    try:
        from submitit.helpers import TorchDistributedEnvironment
    except ImportError:  # pragma: no cover - submitit ships with hydra-submitit-launcher
        return
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Initialise ``torch.distributed`` when launched by ``torchrun`` (``WORLD_SIZE > 1``) or as
    a multi-task SLURM job (see :func:`_export_slurm_env`).

    Single process: returns a context for :func:`select_device`. Under ``torchrun``: NCCL with one
    GPU per local rank when CUDA is available, else Gloo on CPU.
    """
    _export_slurm_env()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(1, 0, 0, select_device(device_preference))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = select_device(device_preference)
    if dev.type == "cuda":
        dev = torch.device("cuda", local % torch.cuda.device_count())  # per-task GPU binding
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(world, rank, local, dev)


def wrap_ddp(model: nn.Module, ctx: DistContext) -> nn.Module:
    """Wrap in ``DistributedDataParallel`` when distributed, else return ``model``."""
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def barrier(ctx: DistContext) -> None:
    """Synchronise all ranks (no-op in a single process)."""
    if ctx.distributed and dist.is_initialized():
        dist.barrier()


def cleanup_distributed() -> None:
    """Destroy the process group if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _Range(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def epoch_indices(n: int, epoch: int, seed: int, ctx: DistContext) -> torch.Tensor:
    """This rank's shuffled sample order for ``epoch`` (deterministic in ``seed`` and ``epoch``).

    ``DistributedSampler`` (shuffle seeded by ``seed + epoch``, ``drop_last``) with
    ``num_replicas = ctx.world_size`` — also for a single process, so that the ``W`` per-rank
    orders interleave into exactly the single-process order (rank ``r`` holds positions
    ``r, r + W, ...``).

    Returns:
        ``(n // W,)`` int64 indices into ``[0, n)``.
    """
    s = torch.utils.data.DistributedSampler(_Range(n), num_replicas=ctx.world_size,
                                            rank=ctx.rank, shuffle=True, seed=int(seed),
                                            drop_last=True)
    s.set_epoch(int(epoch))
    return torch.tensor(list(iter(s)), dtype=torch.long)


@contextlib.contextmanager
def inference_threads(n: int = 1) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (batch-1 inference is fastest single-threaded)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
