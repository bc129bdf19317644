"""Training pipeline: shared base policy, per-skill LoRA adapters, monolithic task baselines.

:func:`train_skill_library` (the skill primitives):

1. collect :class:`~robot_skills.data.dataset.SkillChunkDataset` samples of all skills;
2. train the shared :class:`~robot_skills.policies.bc.GoalConditionedBC` base on all of them
   (masked L1 on normalised action chunks, as ACT);
3. per skill, train a LoRA adapter (Hu et al., 2021) on that skill's samples with the base frozen;
4. write the library: ``base/`` + one skill directory per skill with its contract. The library is
   built in a temporary directory beside ``out_dir`` and swapped in atomically only when complete
   (:func:`~robot_skills.utils.atomic.atomic_dir`), so a retrain killed at any instant leaves the
   complete old library (every skill still loads against its base) or the complete new one.

:func:`train_task_policy` trains the monolithic baseline (one policy per whole task, adapter kind
``full``). Both are resumable: checkpoints (one safetensors file with the model, its EMA and
the AdamW moments, plus a JSON sidecar with the step, RNG states, config and sha256, see
:mod:`robot_skills.training.checkpoint`) are written atomically every ``ckpt_every`` steps under
``<work>/<stage>/ckpt``; a re-run (``resume``) continues from the newest valid one with the same
sample order. ``<work>`` is ``.<name>.work`` beside a library ``<name>``
(:func:`library_work_dir`, outside the directory that is swapped) and ``<root>/.work/<task>`` for
task policies. TensorBoard scalars go to ``<work>/tb/<stage>``. Under ``torchrun`` training runs
with DDP and only rank 0 writes.

Every stage runs the same loop, :func:`fit`, configured by a :class:`FitConfig`. The loop knows no
objective: the model owns its loss (``model.compute_loss(batch)``, see
:mod:`robot_skills.training.trainable`), so composition weights, residual heads or any other
module with a ``compute_loss`` train through it unchanged. The BC loss kind is a property of the
policy (``GoalConditionedBC(arch, loss=cfg.loss)``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from robot_skills.data.dataset import SkillChunkDataset
from robot_skills.domain.verbs import SKILL_SPECS, Parameter, SkillSpec
from robot_skills.perception.placement import PLACE_VERBS
from robot_skills.policies.bc import LOSS_KINDS, BCConfig, GoalConditionedBC
from robot_skills.policies.features import FEATURE_DIM
from robot_skills.policies.learned_skill import LearnedSkill
from robot_skills.policies.normalization import NormStats, calibrate_release_threshold
from robot_skills.policies.peft_adapter import (
    adapter_state,
    apply_adapter,
    attach,
    config_dict,
    lora_config,
)
from robot_skills.skills.skill_dir import save_base, save_skill
from robot_skills.training.checkpoint import (
    Checkpoint,
    flatten_optimizer,
    latest_valid_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_optimizer,
    remove_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from robot_skills.training.device import (
    DistContext,
    autocast,
    barrier,
    configure_threads,
    init_distributed,
    maybe_compile,
    wrap_ddp,
)
from robot_skills.training.loader import (
    StepBatchSampler,
    TrainData,
    batches,
    num_samples,
    to_device,
)
from robot_skills.training.trainable import (
    LossForward,
    check_trainable,
    loss_weight,
    split_loss,
)
from robot_skills.utils.atomic import (
    PROBE_NAME,
    atomic_dir,
    check_writable,
    clean_stale_temps,
    exclusive_lock,
    file_sha256,
)
from robot_skills.utils.version import code_version

WORK_DIR = ".work"


SKILL_KINDS = ("lora", "standalone")
"""How :func:`train_skill_library` builds each skill: a LoRA adapter on the shared base, or a small
standalone policy trained from scratch on the skill's data alone (adapter kind ``full``)."""


@dataclass
class TrainConfig:
    """Hyper-parameters of the training pipeline (plain dataclass; Hydra fills it).

    Attributes:
        steps: optimiser steps for the base policy (and for a monolithic task policy).
        batch_size: samples per step (per process under DDP).
        lr / weight_decay: AdamW, linear warm-up then cosine decay to 10 %.
        warmup_steps: linear warm-up steps.
        chunk_size: action chunk length ``H``.
        hidden / layers / skill_emb_dim: base network size (see :class:`BCConfig`).
        lora_rank / lora_alpha / lora_targets: adapter rank, scaling numerator, target layer globs
            (None = every Linear).
        lora_steps / lora_lr: adapter training steps and learning rate.
        skill_kind: ``"lora"`` (default: a shared base + one LoRA adapter per skill) or
            ``"standalone"`` (no base: one policy of the same architecture per skill, trained from
            scratch on that skill's samples only; saved as adapter kind ``full``).
        standalone_steps: optimiser steps per standalone skill (0: ``steps``).
        replace_library: let :func:`train_skill_library` replace a library that holds governed
            state a retrain would lose (extra versions ``<name>@<v>``, skills promoted above
            tier ``sim``, evaluation records); False refuses, naming them.
        loss: ``"l1"`` (ACT) or ``"mse"``: the kind of the policy's own masked chunk loss
            (``GoalConditionedBC(arch, loss=...)``, see :meth:`make_policy`); :func:`fit` has none.
        grad_clip: max gradient norm (0 disables).
        seed: RNG seed (initialisation and sample order).
        device: ``"auto"`` | ``"cpu"`` | ``"cuda"``.
        compile: ``torch.compile`` the network.
        bf16: bf16 autocast on CUDA (ignored on CPU).
        ckpt_every: steps between checkpoints.
        log_every: steps between TensorBoard scalars.
        num_threads: CPU intra-op threads (None = all available).
        val_fraction: fraction of demos held out to report a validation loss (0 = none).
        progress: show tqdm bars.
        tensorboard: write TensorBoard logs.
        ema_decay: EMA of the weights (0 = off; e.g. 0.999), see :class:`FitConfig`.
        keep_checkpoints: valid checkpoints kept per stage.
        resume: continue each stage from its newest valid checkpoint (False: start afresh).
        num_workers: DataLoader workers when training from a ``Dataset``.
        release_points: placements read their target where the held object's centre goes at
            release (the segments' recorded offsets, :mod:`robot_skills.perception.placement`;
            the library's ``stats.json`` then says so and its skills apply them); False trains
            on the arguments' own poses, recorded offsets ignored.
        object_sizes: the features carry each argument's bounding-box half extents (the
            segments' recorded :attr:`~robot_skills.execution.recording.SkillSegment.arg_sizes`;
            the ``(SIZED_FEATURE_DIM,)`` layout of :mod:`robot_skills.policies.features`); the
            library's ``stats.json`` then says so and its skills read the sizes from the task
            world's geometry.
        calibrate_release: a two-level skill that must end with the gripper open (``place_on``,
            ``place_in``) releases below a threshold matched to its data
            (:func:`~robot_skills.policies.normalization.calibrate_release_threshold`, recorded as
            ``release_thresholds`` in its ``stats.json``); False splits the levels at their
            midpoint.
    """

    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    chunk_size: int = 10
    hidden: int = 256
    layers: int = 4
    skill_emb_dim: int = 32
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: list[str] | None = None
    lora_steps: int = 200
    lora_lr: float = 1e-3
    skill_kind: str = "lora"
    standalone_steps: int = 0
    replace_library: bool = False
    loss: str = "l1"
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    bf16: bool = True
    ckpt_every: int = 500
    log_every: int = 50
    num_threads: int | None = None
    val_fraction: float = 0.0
    progress: bool = True
    tensorboard: bool = True
    ema_decay: float = 0.0
    keep_checkpoints: int = 2
    resume: bool = True
    num_workers: int = 0
    release_points: bool = False
    object_sizes: bool = False
    calibrate_release: bool = False

    def __post_init__(self) -> None:
        for k in ("steps", "batch_size", "chunk_size", "hidden", "layers", "lora_rank",
                  "ckpt_every", "log_every", "skill_emb_dim", "keep_checkpoints"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"TrainConfig.{k} must be >= 1, got {getattr(self, k)}")
        if self.lora_steps < 0 or self.warmup_steps < 0:
            raise ValueError("lora_steps and warmup_steps must be >= 0")
        if self.lr <= 0 or self.lora_lr <= 0:
            raise ValueError("learning rates must be > 0")
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"loss must be one of {LOSS_KINDS}, got {self.loss!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers must be >= 0, got {self.num_workers}")
        if self.skill_kind not in SKILL_KINDS:
            raise ValueError(f"TrainConfig.skill_kind must be one of {SKILL_KINDS}, got "
                             f"{self.skill_kind!r}")
        if self.standalone_steps < 0:
            raise ValueError(f"TrainConfig.standalone_steps must be >= 0, got "
                             f"{self.standalone_steps}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for provenance records."""
        return asdict(self)

    def arch(self, num_skills: int, feature_dim: int = FEATURE_DIM) -> BCConfig:
        """The :class:`BCConfig` these settings describe, for ``feature_dim`` inputs."""
        return BCConfig(num_skills=num_skills, chunk_size=self.chunk_size, hidden=self.hidden,
                        layers=self.layers, skill_emb_dim=self.skill_emb_dim,
                        feature_dim=feature_dim)

    def make_policy(self, num_skills: int, feature_dim: int = FEATURE_DIM) -> GoalConditionedBC:
        """A freshly initialised :class:`GoalConditionedBC` of :meth:`arch` whose
        :meth:`~GoalConditionedBC.compute_loss` uses :attr:`loss` (CPU, float32)."""
        return GoalConditionedBC(self.arch(num_skills, feature_dim), loss=self.loss)

    def fit_config(self) -> FitConfig:
        """:class:`FitConfig` of the base policy / a monolithic task policy (``steps``, ``lr``)."""
        return FitConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                         weight_decay=self.weight_decay, warmup_steps=self.warmup_steps,
                         seed=self.seed, grad_clip=self.grad_clip, bf16=self.bf16,
                         compile=self.compile, ckpt_every=self.ckpt_every,
                         log_every=self.log_every, progress=self.progress,
                         ema_decay=self.ema_decay, keep_checkpoints=self.keep_checkpoints,
                         resume=self.resume, num_workers=self.num_workers)

    def lora_fit_config(self) -> FitConfig:
        """:class:`FitConfig` of a LoRA adapter: ``lora_steps`` at ``lora_lr``, warm-up capped at
        a tenth of the adapter's steps."""
        return replace(self.fit_config(), steps=self.lora_steps, lr=self.lora_lr,
                       warmup_steps=min(self.warmup_steps, self.lora_steps // 10))


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings of one :func:`fit` run (model-agnostic).

    Build one from the pipeline's :class:`TrainConfig` with :meth:`TrainConfig.fit_config` /
    :meth:`TrainConfig.lora_fit_config`, or directly for any other trainable module.

    Attributes:
        steps: target optimiser steps (total, including those of a resumed run), >= 0.
        batch_size: samples per step and process (clipped to the per-process sample count), >= 1;
            the global batch under DDP is ``batch_size * world_size``.
        lr: peak AdamW learning rate, > 0.
        weight_decay: AdamW decoupled weight decay, >= 0.
        warmup_steps: linear warm-up steps, then cosine decay to ``min_lr_ratio * lr``, >= 0.
        seed: sample order (epoch ``e`` is shuffled with ``seed + e``, see
            :mod:`robot_skills.training.loader`).
        grad_clip: max global gradient norm (0 = off), >= 0.
        bf16: bf16 autocast on CUDA (ignored on CPU).
        compile: ``torch.compile`` the loss computation (CUDA only; ignored on CPU).
        ckpt_every: steps between checkpoints (and at the last step), >= 1.
        log_every: steps between history / TensorBoard entries, >= 1. Losses stay on the device
            between entries (no per-step host synchronisation).
        progress: show a tqdm bar (rank 0 only).
        ema_decay: decay of an exponential moving average of the trainable weights
            (``torch.optim.swa_utils.AveragedModel``), in ``[0, 1)``; 0 = off. When on, the EMA
            is checkpointed, used for ``eval_fn`` and the validation loss, and copied into the
            model when ``fit`` returns.
        keep_checkpoints: valid checkpoints kept on disk, >= 1.
        resume: continue from the newest valid checkpoint of the same fingerprint (False: start
            afresh and delete the directory's checkpoints).
        num_workers: DataLoader worker processes when ``data`` is a ``Dataset``, >= 0.
        pin_memory: pinned host batches for a ``Dataset`` on CUDA.
        prefetch_factor: batches each worker loads ahead, >= 1.
        eval_every: steps between calls of ``fit``'s ``eval_fn`` (and at the end), 0 = never.
        min_lr_ratio: the cosine schedule's final learning rate as a fraction of ``lr``, [0, 1].

    Raises:
        ValueError: a value out of the ranges above (the message names the field).
    """

    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    warmup_steps: int = 0
    seed: int = 0
    grad_clip: float = 1.0
    bf16: bool = True
    compile: bool = False
    ckpt_every: int = 500
    log_every: int = 50
    progress: bool = True
    ema_decay: float = 0.0
    keep_checkpoints: int = 2
    resume: bool = True
    num_workers: int = 0
    pin_memory: bool = True
    prefetch_factor: int = 2
    eval_every: int = 0
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        for k, lo in (("steps", 0), ("batch_size", 1), ("warmup_steps", 0), ("ckpt_every", 1),
                      ("log_every", 1), ("keep_checkpoints", 1), ("num_workers", 0),
                      ("prefetch_factor", 1), ("eval_every", 0)):
            if int(getattr(self, k)) < lo:
                raise ValueError(f"FitConfig.{k} must be >= {lo}, got {getattr(self, k)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"FitConfig.lr must be finite and > 0, got {self.lr}")
        for k in ("weight_decay", "grad_clip"):
            v = getattr(self, k)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"FitConfig.{k} must be finite and >= 0, got {v}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"FitConfig.ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"FitConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


@dataclass
class FitResult:
    """Outcome of one training stage.

    Attributes:
        step: optimiser steps completed (== the stage's target when finished).
        final_loss: mean training loss over the last ``min(50, steps)`` steps (averaged over
            ranks); the per-step losses before a resume come from the checkpoint, so a resumed
            run reports what an uninterrupted one would. When nothing was left to train: the
            last :attr:`history` entry.
        val_loss: :func:`evaluate_loss` on held-out samples (EMA weights when on), or None.
        samples_per_s: training throughput of this run (all ranks together).
        wall_s: seconds spent in this run.
        resumed_from: step the run resumed from (0 = fresh).
        history: mean training loss per ``log_every`` steps (kept across resumes).
        metrics: mean of each extra metric returned by ``compute_loss`` over the last
            ``min(50, steps)`` steps of this run (empty when the model reports none).
        eval: the last ``eval_fn`` result (empty without one).
        checkpoint: the sidecar of the checkpoint resumed from, or None.
    """

    step: int
    final_loss: float
    val_loss: float | None = None
    samples_per_s: float = 0.0
    wall_s: float = 0.0
    resumed_from: int = 0
    history: list[float] = field(default_factory=list, repr=False)
    metrics: dict[str, float] = field(default_factory=dict)
    eval: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None


class _Stop(Exception):
    """Raised by a test hook to simulate a kill in the middle of training."""


# ----------------------------------------------------------------------------- checkpoints
def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    sd = model.state_dict()
    if all(p.requires_grad for p in model.parameters()):
        return {k: v.detach() for k, v in sd.items()}
    return {k: sd[k].detach() for k in names}


def _ema_params(ema: AveragedModel, model: nn.Module) -> dict[str, torch.Tensor]:
    """The EMA copies of ``model``'s trainable parameters, by name."""
    train = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: p.detach() for n, p in ema.module.named_parameters() if n in train}


def _gather_rng(ctx: DistContext) -> list[dict[str, Any]]:
    """Every rank's RNG state (rank order); a collective under DDP."""
    mine = rng_state()
    if not ctx.distributed:
        return [mine]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, mine)
    return out


def _select_checkpoint(ckpt_dir: Path, cfg: FitConfig, fingerprint: str, ctx: DistContext,
                       desc: str) -> Checkpoint | None:
    """Rank 0 picks the newest valid checkpoint of this fingerprint (or clears the directory for
    a fresh start); every rank loads the one rank 0 picked."""
    name = None
    if ctx.is_main:
        if ckpt_dir.is_dir():  # checkpoint files half-written by a killed run
            clean_stale_temps(ckpt_dir)
        ck = None
        if cfg.resume:
            ck = latest_valid_checkpoint(ckpt_dir,
                                         accept=lambda m: m.get("fingerprint", "") == fingerprint)
        if ck is None:
            stale = list_checkpoints(ckpt_dir)
            legacy = [p for p in ckpt_dir.glob("step_*") if p.is_dir()] if ckpt_dir.is_dir() else []
            if stale or legacy:
                why = ("no valid checkpoint of this config/dataset" if cfg.resume
                       else "resume=false")
                tqdm.write(f"{desc}: starting afresh ({why}); removing the old checkpoints in "
                           f"{ckpt_dir}")
                remove_checkpoints(ckpt_dir)
                for p in legacy:  # directories of the previous checkpoint format
                    shutil.rmtree(p, ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    (ckpt_dir / "latest.json").unlink()
        name = ck.path.name if ck is not None else None
    if ctx.distributed:
        box = [name]
        dist.broadcast_object_list(box, src=0)
        name = box[0]
        if not ctx.is_main and name is not None:
            ck = load_checkpoint(ckpt_dir / name)
    return ck if name is not None else None


def _restore(ck: Checkpoint, model: nn.Module, opt: torch.optim.Optimizer,
             ema: AveragedModel | None, ctx: DistContext) -> None:
    """Load ``ck`` into the model, optimiser, EMA and this process's RNGs.

    Raises:
        ValueError: the checkpoint does not fit the model or optimiser (naming the file).
    """
    saved = ck.group("model")
    sd = model.state_dict()
    bad = [k for k, v in saved.items() if k not in sd or tuple(sd[k].shape) != tuple(v.shape)]
    if bad:
        raise ValueError(f"checkpoint {ck.path} does not fit the model: {bad[:5]}")
    model.load_state_dict(saved, strict=False)
    try:
        load_optimizer(opt, ck.group("optim"), ck.meta["param_groups"])
    except ValueError as e:
        raise ValueError(f"checkpoint {ck.path}: {e}") from e
    if ema is not None:
        ema.module.load_state_dict(model.state_dict())
        saved_ema = ck.group("ema")
        if saved_ema:
            ema.module.load_state_dict(saved_ema, strict=False)
        ema.n_averaged.fill_(int(ck.meta.get("ema_updates", 0)) if saved_ema else 0)
    states = ck.meta.get("rng") or []
    if states:
        set_rng_state(states[ctx.rank] if len(states) == ctx.world_size else states[0])


# ----------------------------------------------------------------------------- core loop
def _lr_at(step: int, total: int, base_lr: float, warmup: int, floor: float = 0.1) -> float:
    """Learning rate of ``step``: linear warm-up to ``base_lr`` over ``warmup`` steps, then a
    half-cosine down to ``floor * base_lr`` at ``total`` (SGDR, Loshchilov & Hutter, 2017)."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base_lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t))))


_FINAL_WINDOW = 50
"""Steps averaged into :attr:`FitResult.final_loss` (the last ones, across resumes)."""


def _all_mean(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of ``t`` over ranks (identity in a single process)."""
    if ctx.distributed:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= ctx.world_size
    return t


def fit(model: nn.Module, data: TrainData, cfg: FitConfig, *,
        ctx: DistContext | None = None, work_dir: str | os.PathLike | None = None,
        tb_dir: str | os.PathLike | None = None, desc: str = "train",
        val_data: Mapping[str, torch.Tensor] | Dataset | None = None, fingerprint: str = "",
        eval_fn: Callable[[nn.Module, int], Mapping[str, float]] | None = None,
        sampler: torch.utils.data.Sampler[int] | None = None,
        _on_step: Callable[[int], None] | None = None) -> FitResult:
    """Train ``model``'s trainable parameters on ``data`` by minimising its own loss (resumable).

    The loop is model-agnostic (Diffusion-Policy style): each step it draws a batch (a mapping of
    tensors on the device) and back-propagates ``model.compute_loss(batch)`` (see
    :class:`~robot_skills.training.trainable.Trainable`); nothing here is specific to behaviour
    cloning. Per step: AdamW on the parameters with ``requires_grad`` (linear warm-up then cosine
    decay, :func:`_lr_at`), bf16 autocast on CUDA when ``cfg.bf16``, ``torch.compile`` on CUDA
    when ``cfg.compile``, gradient clipping at ``cfg.grad_clip``, an EMA update when
    ``cfg.ema_decay > 0``; on CUDA, fused AdamW and TF32 float32 matmuls
    (``torch.set_float32_matmul_precision("high")``, process-wide). The batch of step ``s`` is a
    function of ``s`` and ``cfg.seed`` only
    (:class:`~robot_skills.training.loader.StepBatchSampler`), and the RNG states are
    checkpointed, so a resumed run retraces an uninterrupted one.

    Distributed (``torchrun``): the model is wrapped as ``DDP(LossForward(model))``
    (:func:`wrap_ddp`), and the loss is obtained by *calling that wrapper*, so ``compute_loss``
    runs inside DDP's ``forward`` and DDP all-reduces (averages) the gradients in ``backward``.
    Calling ``ddp.module.compute_loss`` instead would bypass DDP's forward, leave its reducer
    unarmed and let the ranks drift apart silently. Each rank trains on its
    ``DistributedSampler`` share; together the ranks' batches of a step are the single-process
    batch of ``world_size * batch_size`` samples. Logged losses are averaged over ranks. Only
    rank 0 writes checkpoints and TensorBoard logs; the checkpoint directory must be visible to
    every rank when resuming (a shared file system across nodes).

    Checkpoints (:mod:`robot_skills.training.checkpoint`): every ``cfg.ckpt_every`` steps and at
    the last one, ``<work_dir>/ckpt/step_XXXXXXXX.safetensors`` (model, EMA, optimiser) + a JSON
    sidecar (step, RNG states of every rank, config, fingerprint, history, sha256), written
    atomically; the newest ``cfg.keep_checkpoints`` valid ones are kept. With ``cfg.resume`` the
    newest valid checkpoint of the same ``fingerprint`` is loaded; a truncated, corrupted or
    half-written newer one is skipped with a
    :class:`~robot_skills.training.checkpoint.CorruptCheckpointWarning` naming it.

    Args:
        model: a ``torch.nn.Module`` with ``compute_loss(batch)`` (e.g.
            :class:`GoalConditionedBC`, optionally with LoRA layers, only those trainable),
            already on ``ctx.device``. Put in train mode for the loop, eval mode on return.
        data: training samples (:data:`~robot_skills.training.loader.TrainData`): a mapping of
            tensors sharing the leading sample dimension ``N`` (for BC:
            :meth:`SkillChunkDataset.tensors`; moved to the device once and indexed there), or a
            map-style ``torch.utils.data.Dataset`` whose items are mappings of tensors/arrays
            (read by a ``DataLoader`` with ``cfg.num_workers`` workers, pinned memory on CUDA).
        cfg: optimisation settings (:class:`FitConfig`); ``cfg.steps`` counts all steps,
            including those of a resumed run.
        ctx: distributed context (default: single process, device chosen by
            :func:`init_distributed`).
        work_dir: checkpoint directory (``<work_dir>/ckpt``; None = no checkpoints, no resume).
        tb_dir: TensorBoard log directory (None = off); rank 0 only. Scalars ``<desc>/loss``,
            ``<desc>/lr``, ``<desc>/samples_per_s``, ``<desc>/<metric>`` for each extra metric
            and ``<desc>/eval/<name>`` for each ``eval_fn`` result (e.g. a success rate).
        desc: stage label (progress bar, TensorBoard tags, messages).
        val_data: held-out samples (mapping or dataset) for a final validation loss
            (:func:`evaluate_loss`).
        fingerprint: identity of the run (config + data); a checkpoint with another fingerprint
            is not resumed (training starts afresh).
        eval_fn: ``eval_fn(model, step) -> {name: value}`` run on rank 0 every
            ``cfg.eval_every`` steps and at the end (the EMA copy when ``ema_decay > 0``, in eval
            mode, without gradients). Under DDP the other ranks wait for it at their next
            collective, so keep it shorter than the process group's timeout (10 min default).
        sampler: this rank's sample order per epoch, with ``set_epoch(epoch)`` (built with
            ``num_replicas=ctx.world_size, rank=ctx.rank, seed=cfg.seed``), e.g.
            :class:`robot_skills.data.lazy.BlockShuffleSampler` for a lazy dataset larger than
            its cache; None = ``DistributedSampler`` (shuffle, ``drop_last``).

    Returns:
        A :class:`FitResult`.

    Raises:
        TypeError: ``model`` is not a module with ``compute_loss``, or it returns something else
            than a 0-d tensor or ``(loss, metrics)``; ``data`` is neither a mapping nor a
            map-style dataset.
        ValueError: no trainable parameters, empty or ragged ``data``, a non-scalar loss, or a
            checkpoint with the same fingerprint that does not fit the model.
        FloatingPointError: the loss became NaN or infinite (the message names the step).
    """
    check_trainable(model)
    ctx = ctx or init_distributed("auto")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    n = num_samples(data)
    if n == 0:
        raise ValueError("no training samples")
    cuda = ctx.device.type == "cuda"
    if cuda:  # TF32 tensor cores for float32 matmuls (bf16 autocast covers most of them anyway)
        torch.set_float32_matmul_precision("high")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=True if cuda else None)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
           if cfg.ema_decay > 0 else None)
    ckpt_dir = Path(work_dir) / "ckpt" if work_dir is not None else None
    step, history, evals, resumed, tail = 0, [], {}, None, []
    if ckpt_dir is not None:
        ck = _select_checkpoint(ckpt_dir, cfg, fingerprint, ctx, desc)
        if ck is not None:
            _restore(ck, model, opt, ema, ctx)
            step = ck.step
            history = [float(x) for x in ck.meta.get("history", [])]
            evals = dict(ck.meta.get("eval", {}))
            tail = [float(x) for x in ck.meta.get("recent_losses", [])]
            resumed = str(ck.path)
    resumed_from = step
    steps = cfg.steps
    # DDP must wrap the module whose forward computes the loss (see the docstring).
    train_model = maybe_compile(wrap_ddp(LossForward(model), ctx), cfg.compile, ctx.device)
    steps_sampler = StepBatchSampler(n, cfg.batch_size, cfg.seed, ctx, step, max(step, steps),
                                     sampler)
    bs = steps_sampler.batch_size
    writer = None
    if tb_dir is not None and ctx.is_main and step < steps:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(log_dir=str(tb_dir))
    bar = tqdm(total=steps, initial=step, desc=desc,
               disable=not (cfg.progress and ctx.is_main), leave=False, dynamic_ncols=True)
    where = f"{type(model).__name__}.compute_loss"
    t0 = time.perf_counter()
    run_losses: list[float] = []
    run_metrics: dict[str, list[float]] = {}
    pending: list[torch.Tensor] = []  # per-step losses not yet read back (stay on the device)
    pending_m: dict[str, list[torch.Tensor]] = {}
    t_win, step_win = t0, step

    def flush() -> None:
        """Read back the pending losses (one host sync), average over ranks, check finiteness."""
        if not pending:
            return
        vals = _all_mean(torch.stack(pending).float(), ctx).cpu()
        bad = (~torch.isfinite(vals)).nonzero()
        if len(bad):
            at = step - len(pending) + int(bad[0]) + 1
            raise FloatingPointError(f"{desc}: loss became {float(vals[int(bad[0])])} at step {at}")
        run_losses.extend(vals.tolist())
        for k, lst in pending_m.items():
            run_metrics.setdefault(k, []).extend(
                _all_mean(torch.stack(lst).float(), ctx).cpu().tolist())
        pending.clear()
        pending_m.clear()

    def run_eval() -> None:
        nonlocal evals
        if eval_fn is None or not ctx.is_main:
            return
        target = ema.module if ema is not None else model
        target.eval()
        with torch.no_grad():
            evals = {str(k): float(v) for k, v in eval_fn(target, step).items()}
        model.train()
        if writer is not None:
            for k, v in evals.items():
                writer.add_scalar(f"{desc}/eval/{k}", v, step)

    model.train()
    source = batches(data, steps_sampler, ctx.device, num_workers=cfg.num_workers,
                     pin_memory=cfg.pin_memory, prefetch_factor=cfg.prefetch_factor)
    try:
        for batch in source:
            cur_lr = _lr_at(step, steps, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)
            for g in opt.param_groups:
                g["lr"] = cur_lr
            with autocast(ctx.device, cfg.bf16):
                loss, metrics = split_loss(train_model(batch), where, as_float=False)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            pending.append(loss.detach())
            for k, v in metrics.items():
                pending_m.setdefault(k, []).append(torch.as_tensor(v, device=ctx.device).detach())
            bar.update(1)
            log_now = step % cfg.log_every == 0 or step == steps
            ckpt_now = ckpt_dir is not None and (step % cfg.ckpt_every == 0 or step == steps)
            eval_now = eval_fn is not None and cfg.eval_every > 0 and (
                step % cfg.eval_every == 0 or step == steps)
            if log_now or ckpt_now or eval_now:
                flush()
            if log_now:
                avg = float(np.mean(run_losses[-cfg.log_every:]))
                history.append(avg)
                now = time.perf_counter()
                sps = (step - step_win) * bs * ctx.world_size / max(now - t_win, 1e-9)
                t_win, step_win = now, step
                bar.set_postfix(loss=f"{avg:.4f}", sps=f"{sps:.0f}")
                if writer is not None:
                    writer.add_scalar(f"{desc}/loss", avg, step)
                    writer.add_scalar(f"{desc}/lr", cur_lr, step)
                    writer.add_scalar(f"{desc}/samples_per_s", sps, step)
                    for k, vals in run_metrics.items():
                        writer.add_scalar(f"{desc}/{k}", float(np.mean(vals[-cfg.log_every:])), step)
            if eval_now:
                run_eval()
            if ckpt_now:
                rng = _gather_rng(ctx)
                if ctx.is_main:
                    tensors = {f"model.{k}": v for k, v in _trainable_state(model).items()}
                    opt_t, groups = flatten_optimizer(opt)
                    tensors.update({f"optim.{k}": v for k, v in opt_t.items()})
                    meta: dict[str, Any] = {"history": history, "desc": desc,
                                            "recent_losses": (tail + run_losses)[-_FINAL_WINDOW:],
                                            "fingerprint": fingerprint, "config": asdict(cfg),
                                            "param_groups": groups, "rng": rng,
                                            "world_size": ctx.world_size, "eval": evals,
                                            "epoch": (step - 1) // steps_sampler.steps_per_epoch}
                    if ema is not None:
                        tensors.update({f"ema.{k}": v for k, v in _ema_params(ema, model).items()})
                        meta["ema_updates"] = int(ema.n_averaged)
                    save_checkpoint(ckpt_dir, step, tensors, meta, cfg.keep_checkpoints)
            if _on_step is not None:
                _on_step(step)
        flush()
    finally:
        source.close()  # stops DataLoader workers at once, also after an exception
        bar.close()
        if writer is not None:
            writer.flush()
            writer.close()
    wall = time.perf_counter() - t0
    if ema is not None:  # the returned model holds the averaged weights
        avg_p = _ema_params(ema, model)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in avg_p:
                    p.copy_(avg_p[name])
    model.eval()
    done = len(run_losses)
    recent = (tail + run_losses)[-_FINAL_WINDOW:]
    final = (float(np.mean(recent)) if run_losses and recent
             else (history[-1] if history else float("nan")))
    val = evaluate_loss(model, val_data) if val_data is not None else None
    return FitResult(step, final, val, done * bs * ctx.world_size / wall if wall > 0 and done else 0.0,
                     wall, resumed_from, history,
                     {k: float(np.mean(v[-50:])) for k, v in run_metrics.items()}, evals, resumed)


@torch.no_grad()
def evaluate_loss(model: nn.Module, data: Mapping[str, torch.Tensor] | Dataset,
                  batch_size: int = 4096) -> float:
    """Mean ``model.compute_loss`` over all of ``data``, in eval mode, without gradients.

    Batches are combined with the weights ``model.loss_weight(batch)`` when the model defines it
    (for :class:`GoalConditionedBC`: real chunk steps, which makes the result the exact masked
    mean over the whole set in normalised action units), else with their sample counts. No
    autocast: the model runs in its own dtype.

    Args:
        model: a module with ``compute_loss(batch)``; left in eval mode. A mapping must be on the
            model's device; a dataset's batches are moved there.
        data: tensors sharing the leading sample dimension ``N`` (as for :func:`fit`), or a
            map-style dataset of mappings (read in order).
        batch_size: samples per forward pass (>= 1); only memory, not the result, depends on it.

    Returns:
        The weighted mean loss (python float), or NaN when ``N == 0``.

    Raises:
        TypeError: ``model`` lacks ``compute_loss`` or it returns an unsupported type.
        ValueError: ``batch_size < 1``, ragged ``data``, or a non-scalar loss.
    """
    check_trainable(model)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    n = num_samples(data)
    if n == 0:
        return float("nan")
    if isinstance(data, Mapping):
        chunks = ({k: v[i:i + batch_size] for k, v in data.items()} for i in range(0, n, batch_size))
    else:
        dev = next(iter(model.parameters()), torch.empty(0)).device
        chunks = (to_device(b, dev) for b in DataLoader(data, batch_size=batch_size))
    tot, cnt = 0.0, 0.0
    for i, batch in enumerate(chunks):
        loss, _ = split_loss(model.compute_loss(batch), f"{type(model).__name__}.compute_loss")
        w = loss_weight(model, batch, min(batch_size, n - i * batch_size))
        tot += float(loss) * w
        cnt += w
    return tot / max(cnt, 1.0)


# ----------------------------------------------------------------------------- pipeline
def dataset_sha256(paths: Sequence[str | os.PathLike]) -> str:
    """sha256 over the sha256 of each demonstration file (sorted by name) — the data's identity."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(file_sha256(p).encode())
    return h.hexdigest()


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))


def _split(ds: SkillChunkDataset, cfg: TrainConfig):
    if cfg.val_fraction > 0 and len(np.unique(ds.episode_ids)) > 1:
        return ds.split_by_episode(cfg.val_fraction, cfg.seed)
    return ds, None


def _fingerprint(cfg: TrainConfig, ds: SkillChunkDataset, stage: str) -> str:
    d = {k: v for k, v in cfg.to_dict().items()
         if k not in ("progress", "tensorboard", "log_every", "ckpt_every", "num_threads", "device",
                      "keep_checkpoints", "resume", "num_workers")}
    h = hashlib.sha256(json.dumps({"cfg": d, "stage": stage, "n": len(ds), "skills": ds.skills},
                                  sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(ds.features[:: max(1, len(ds) // 1000)]).tobytes())
    return h.hexdigest()[:16]


def train_base(ds: SkillChunkDataset, stats: NormStats, cfg: TrainConfig, work_dir: Path,
               ctx: DistContext, _on_step: Callable[[int], None] | None = None
               ) -> tuple[GoalConditionedBC, FitResult]:
    """Stage (a): train the shared base on every skill's samples.

    Args:
        ds: chunk samples of all skills (skill ids index ``ds.skills``).
        stats: normalisation of features and actions.
        cfg: hyper-parameters (``steps``, ``lr``, ``loss`` and the architecture are used).
        work_dir: checkpoints under ``work_dir/base``, TensorBoard under ``work_dir/tb/base``.
        ctx: distributed context.

    Returns:
        The trained base (on ``ctx.device``, eval mode, ``loss_kind == cfg.loss``) and its
        :class:`FitResult`.
    """
    _seed_all(cfg.seed)
    train, val = _split(ds, cfg)
    model = cfg.make_policy(len(ds.skills), ds.feature_dim).to(ctx.device)
    res = fit(model, train.tensors(stats, ctx.device), cfg.fit_config(), ctx=ctx,
              work_dir=work_dir / "base", tb_dir=(work_dir / "tb" / "base") if cfg.tensorboard
              else None, desc="base", val_data=val.tensors(stats, ctx.device) if val else None,
              _on_step=_on_step, fingerprint=_fingerprint(cfg, ds, "base"))
    return model, res


def train_lora_adapter(base: GoalConditionedBC, ds: SkillChunkDataset, stats: NormStats,
                       cfg: TrainConfig, work_dir: Path, ctx: DistContext, name: str
                       ) -> tuple[dict[str, torch.Tensor], FitResult, list[str]]:
    """Stage (b): a LoRA adapter for one skill on a frozen copy of ``base``.

    The copy's loss kind is set to ``cfg.loss`` (``base`` itself is not modified).

    Args:
        base: the trained base policy (left untouched).
        ds: this skill's chunk samples.
        stats: normalisation of features and actions.
        cfg: hyper-parameters (``lora_*``, ``loss`` and :meth:`TrainConfig.lora_fit_config`).
        work_dir: checkpoints under ``work_dir/lora_<name>``.
        ctx: distributed context.
        name: the skill name (seeds the adapter's initialisation; labels the stage).

    Returns:
        The adapter state dict (CPU), its :class:`FitResult`, and the adapted layer names.
    """
    _seed_all(cfg.seed + 1 + sum(map(ord, name)))
    model = copy.deepcopy(base).to(ctx.device)
    model.loss_kind = cfg.loss
    pcfg = lora_config(model, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
    peft_model = attach(model, pcfg)  # PEFT LoRA layers, in place; `model` keeps compute_loss
    layers = sorted(pcfg.target_modules)
    model.to(ctx.device)
    train, val = _split(ds, cfg)
    res = fit(model, train.tensors(stats, ctx.device), cfg.lora_fit_config(), ctx=ctx,
              work_dir=work_dir / f"lora_{name}",
              tb_dir=(work_dir / "tb" / f"lora_{name}") if cfg.tensorboard else None,
              desc=f"lora:{name}", val_data=val.tensors(stats, ctx.device) if val else None,
              fingerprint=_fingerprint(cfg, ds, f"lora-peft:{name}"))
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    return adapter_state(peft_model), res, layers


def _metrics(res: FitResult) -> dict[str, Any]:
    return {"steps": res.step, "final_train_loss": res.final_loss, "val_loss": res.val_loss,
            "samples_per_s": round(res.samples_per_s, 1), "wall_s": round(res.wall_s, 2),
            "resumed_from": res.resumed_from}


def release_calibrated(stats: NormStats, spec: SkillSpec, make_model: Callable[[], nn.Module],
                       skill_id: int, ds: SkillChunkDataset, enabled: bool = True) -> NormStats:
    """``stats`` with the skill's release threshold added
    (:func:`~robot_skills.policies.normalization.calibrate_release_threshold`), for a skill whose
    contract ends with the gripper open and whose data commands two gripper levels; unchanged
    otherwise or when not ``enabled``.

    Args:
        stats: the library's statistics (not modified).
        spec: the skill's contract (``needs_open_gripper_at_end``).
        make_model: builds the skill's network (base with its adapter merged, or its whole
            policy; CPU), called only when a threshold is computed.
        skill_id: its row in the skill embedding.
        ds: the skill's training samples (features and demonstrated actions).
        enabled: ``TrainConfig.calibrate_release``.
    """
    levels = stats.gripper_levels.get(spec.name)
    if not enabled or not spec.needs_open_gripper_at_end or not levels or len(levels) != 2 \
            or len(ds) == 0:
        return stats
    skill = LearnedSkill(spec.name, make_model(), stats, skill_id, spec, ensemble_m=None,
                         fast_path=False)
    pred = np.concatenate([skill.predict_chunk(ds.features[i:i + 8192])[:, 0, 6]
                           for i in range(0, len(ds), 8192)])
    tau = calibrate_release_threshold(pred, ds.actions[:, 0, 6], levels)
    if tau is None:
        return stats
    return replace(stats, release_thresholds={**stats.release_thresholds, spec.name: tau})


def _merged(base: nn.Module, state: Mapping[str, torch.Tensor], cfg: TrainConfig,
            layers: Sequence[str]) -> nn.Module:
    """A CPU copy of ``base`` with the LoRA ``state`` merged in (what a loaded skill runs)."""
    return apply_adapter(copy.deepcopy(base).cpu(),
                         config_dict(cfg.lora_rank, cfg.lora_alpha, layers, None),
                         {k: v.cpu() for k, v in state.items()}).eval()


def library_work_dir(out_dir: str | os.PathLike) -> Path:
    """Where :func:`train_skill_library` keeps its resumable checkpoints and TensorBoard logs for
    the library ``out_dir``: ``.<name>.work`` beside it (e.g. ``<run_dir>/.skills.work``), outside
    the directory that is rebuilt and swapped in, so they survive a kill at any point."""
    out = Path(out_dir)
    return out.parent / f".{out.name}.work"


def train_skill_library(hdf5_paths: Sequence[str | os.PathLike] | str | os.PathLike,
                        out_dir: str | os.PathLike, cfg: TrainConfig | None = None,
                        skills: Sequence[str] | None = None,
                        specs: Mapping[str, SkillSpec] | None = None,
                        _on_base_step: Callable[[int], None] | None = None) -> Path:
    """Train the base and one LoRA adapter per skill; write the skill library to ``out_dir``.

    Crash-safe: the new library is built in a temporary directory beside ``out_dir`` and swapped
    in atomically only when every skill is written, so ``out_dir`` names either the complete old
    library or the complete new one at every instant (a retrain killed midway never leaves
    adapters whose base was replaced). Checkpoints go to :func:`library_work_dir`, so a rerun
    resumes the stage that was interrupted and reuses the finished ones. Temporary directories
    of a killed run are removed first.

    Args:
        hdf5_paths: demonstration files with skill segments.
        out_dir: the library root (replaced as a whole when the new library is complete).
        cfg: hyper-parameters (defaults if None).
        skills: skills to train (None = every skill found in the data).
        specs: contracts per skill (default :data:`~robot_skills.domain.verbs.SKILL_SPECS`).

    Returns:
        ``out_dir`` (open it with :class:`~robot_skills.skills.library.SkillLibrary`).

    Raises:
        ValueError: no samples, or a skill without a contract in ``specs``.
        PermissionError / OSError: the library's parent directory is not writable (raised before
            any training).
        RuntimeError: another process is training into ``out_dir``.
    """
    cfg = cfg or TrainConfig()
    specs = dict(SKILL_SPECS if specs is None else specs)
    paths = [hdf5_paths] if isinstance(hdf5_paths, (str, os.PathLike)) else list(hdf5_paths)
    out = Path(out_dir)
    if not cfg.replace_library:
        kept = governed_state(out)
        if kept:
            raise ValueError(f"{out} holds governed state a retrain would replace: "
                             f"{'; '.join(kept)}. Add versions with train_skill_version "
                             f"(rs-library), train into another directory, or set "
                             f"training.replace_library=true to replace the whole library")
    configure_threads(cfg.num_threads)
    ctx = init_distributed(cfg.device)
    work = library_work_dir(out)
    with contextlib.ExitStack() as stack:
        if ctx.is_main:
            check_writable(out.parent)
            stack.enter_context(exclusive_lock(out.parent / f".{out.name}.lock",
                                               f"training the skill library {out}"))
            clean_stale_temps(out.parent, names=(out.name, PROBE_NAME))
            legacy = out / WORK_DIR  # checkpoints of a library trained by an earlier version
            if legacy.is_dir() and not work.exists():
                os.replace(legacy, work)
            work.mkdir(parents=True, exist_ok=True)
        barrier(ctx)
        t0 = time.perf_counter()
        ds = SkillChunkDataset.from_hdf5(paths, skills, cfg.chunk_size,
                                         arg_offsets=cfg.release_points,
                                         object_sizes=cfg.object_sizes)
        missing = [s for s in ds.skills if s not in specs]
        if missing:
            raise ValueError(f"skills {missing} have no contract; known: {sorted(specs)}")
        stats = ds.compute_stats()
        data_sha = dataset_sha256(paths)
        t_data = time.perf_counter() - t0
        if cfg.skill_kind == "standalone":
            build = stack.enter_context(atomic_dir(out)) if ctx.is_main else None
            for name in ds.skills:
                sub = ds.for_skill(name)
                model, res = train_standalone_skill(sub, stats, cfg, work, ctx, name)
                if build is not None:
                    own = release_calibrated(stats, specs[name],
                                             lambda: copy.deepcopy(model).cpu().eval(), 0, sub,
                                             cfg.calibrate_release)
                    prov = {"dataset_sha256": data_sha, "dataset_files": [str(p) for p in paths],
                            "num_samples": len(sub), "config": cfg.to_dict(),
                            "code_version": code_version(),
                            "metrics": {"standalone": _metrics(res), "data_s": round(t_data, 2)}}
                    save_skill(build / name, spec=specs[name],
                               adapter_state={k: v.detach().cpu() for k, v in
                                              model.state_dict().items()},
                               stats=own, adapter={"kind": "full", "arch": model.cfg.to_dict()},
                               provenance=prov)
                barrier(ctx)
            return out
        base, bres = train_base(ds, stats, cfg, work, ctx, _on_base_step)
        version = code_version()
        base_prov = {"dataset_sha256": data_sha, "dataset_files": [str(p) for p in paths],
                     "num_samples": len(ds), "config": cfg.to_dict(), "code_version": version,
                     "metrics": {**_metrics(bres), "data_s": round(t_data, 2)}}
        # rank 0 builds the new library beside `out`; it replaces `out` when the block ends cleanly
        build = stack.enter_context(atomic_dir(out)) if ctx.is_main else None
        base_info = None
        if build is not None:
            base_info = save_base(build, base.state_dict(), base.cfg, ds.skills, base_prov)
        barrier(ctx)
        base = base.to(ctx.device)
        for sid, name in enumerate(ds.skills):
            sub = ds.for_skill(name)
            if cfg.lora_steps > 0:
                state, res, layers = train_lora_adapter(base, sub, stats, cfg, work, ctx, name)
                metrics = _metrics(res)
            else:  # zero-step adapter: B = 0, the skill is the base itself
                m = copy.deepcopy(base).cpu()
                pcfg = lora_config(m, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
                state, metrics = adapter_state(attach(m, pcfg)), {"steps": 0}
                layers = sorted(pcfg.target_modules)
            if build is not None:
                prov = {"dataset_sha256": data_sha, "num_samples": len(sub),
                        "config": cfg.to_dict(), "code_version": version,
                        "metrics": {"lora": metrics, "base": _metrics(bres)}}
                own = release_calibrated(stats, specs[name],
                                         lambda: _merged(base, state, cfg, layers), sid, sub,
                                         cfg.calibrate_release)
                save_skill(build / name, spec=specs[name], adapter_state=state, stats=own,
                           adapter={"kind": "lora", "rank": cfg.lora_rank,
                                    "alpha": cfg.lora_alpha, "target_layers": layers},
                           base=base_info, skill_id=sid, provenance=prov)
            barrier(ctx)
    return out


def governed_state(library_root: str | os.PathLike) -> list[str]:
    """What a whole-library retrain would lose in ``library_root``: extra versions
    (``<name>@<version>`` directories), skills above trust tier ``sim``, evaluation records
    (admission-gate verdicts) and retirements, one description each; empty for a fresh or plain
    library."""
    from robot_skills.skills.skill_dir import read_manifest

    root = Path(library_root)
    if not root.is_dir():
        return []
    out: list[str] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                    and p.name != "base"):
        if "@" in d.name:
            out.append(f"version {d.name}")
            continue
        try:
            m = read_manifest(d)
        except (OSError, ValueError):
            continue  # not a skill directory: the swap replaces it, as before
        if m.get("trust_tier", "sim") != "sim":
            out.append(f"{d.name} at trust tier {m['trust_tier']!r}")
        elif m.get("evaluation"):
            out.append(f"{d.name}'s evaluation record")
        elif m.get("retired"):
            out.append(f"{d.name} retired")
    return out


def train_standalone_skill(ds: SkillChunkDataset, stats: NormStats, cfg: TrainConfig,
                           work_dir: Path, ctx: DistContext, name: str
                           ) -> tuple[GoalConditionedBC, FitResult]:
    """A standalone policy for one skill: :meth:`TrainConfig.make_policy` with one skill id,
    trained from scratch on ``ds`` (that skill's samples, relabelled to id 0) for
    ``standalone_steps`` (0: ``steps``) -- the other skill kind, with no shared base.

    Args:
        ds: the skill's chunk samples (any vocabulary; every sample must be this skill's).
        stats: normalisation of features and actions (the library's).
        cfg: hyper-parameters (``steps``/``standalone_steps``, ``lr``, architecture, ``loss``).
        work_dir: checkpoints under ``work_dir/standalone_<name>``.
        ctx: distributed context.
        name: the skill name (seeds the initialisation; labels the stage).

    Returns:
        The trained policy (on ``ctx.device``) and its :class:`FitResult`.

    Raises:
        ValueError: no samples, or samples of more than one skill.
    """
    if len(ds) == 0 or len(np.unique(ds.skill_ids)) != 1:
        raise ValueError(f"standalone skill {name!r}: expected the samples of exactly one skill, "
                         f"got {len(ds)} samples of ids {sorted(set(ds.skill_ids.tolist()))}")
    one = SkillChunkDataset(ds.features, np.zeros_like(ds.skill_ids), ds.actions, ds.mask,
                            ds.episode_ids, [name], ds.chunk_size, ds.sources, ds.arg_offsets,
                            ds.object_sizes)
    _seed_all(cfg.seed + 1 + sum(map(ord, name)))
    model = cfg.make_policy(1, ds.feature_dim).to(ctx.device)
    fc = cfg.fit_config()
    if cfg.standalone_steps > 0:
        fc = replace(fc, steps=cfg.standalone_steps)
    train, val = _split(one, cfg)
    res = fit(model, train.tensors(stats, ctx.device), fc, ctx=ctx,
              work_dir=work_dir / f"standalone_{name}",
              tb_dir=(work_dir / "tb" / f"standalone_{name}") if cfg.tensorboard else None,
              desc=f"standalone:{name}", val_data=val.tensors(stats, ctx.device) if val else None,
              fingerprint=_fingerprint(cfg, one, f"standalone:{name}"))
    return model, res


def train_skill_version(hdf5_paths: Sequence[str | os.PathLike] | str | os.PathLike,
                        library_root: str | os.PathLike, name: str, version: str,
                        cfg: TrainConfig | None = None) -> Path:
    """Train a new version of one skill beside the existing ones: a LoRA adapter on the
    library's (unchanged) base, written to ``<library_root>/<name>@<version>/`` at trust tier
    ``sim``. The base, the other skills and every other version are left untouched, so
    promotions and pins keep their meaning (:func:`train_skill_library` replaces the whole
    library instead).

    The adapter uses the normalisation of the skill's newest version (the statistics the base
    was trained with), and the base's skill vocabulary for skill ids.

    Args:
        hdf5_paths: demonstration files with segments of ``name``.
        library_root: an existing library.
        name: the skill (must be in the base's vocabulary and the library).
        version: ``MAJOR.MINOR.PATCH``, newer than every existing version of ``name``.
        cfg: hyper-parameters (``lora_*``, ``chunk_size``, ``device``...; defaults if None).

    Returns:
        The new version's directory.

    Raises:
        KeyError: unknown skill. ValueError: a version that is not newer than the existing
            ones, a chunk size that differs from the base's, no samples of ``name``.
            SkillFormatError / SkillIntegrityError: the library does not verify.
    """
    from robot_skills.skills.library import SkillLibrary
    from robot_skills.skills.skill_dir import contract_to_spec, parse_version

    cfg = cfg or TrainConfig()
    lib = SkillLibrary(library_root)
    info, base_state = lib.base()
    versions = lib.versions(name)
    if parse_version(version, f"version of {name}") <= versions[-1].key:
        raise ValueError(f"{name}@{version} is not newer than the newest version "
                         f"{versions[-1].version}; versions: {[v.version for v in versions]}")
    if name not in info.skills:
        raise KeyError(f"skill {name!r} is not in the base's vocabulary {info.skills}")
    if cfg.chunk_size != info.arch.chunk_size:
        raise ValueError(f"chunk_size {cfg.chunk_size} differs from the base's "
                         f"{info.arch.chunk_size}")
    newest = versions[-1]
    from robot_skills.skills.skill_dir import load_skill

    parent = load_skill(newest.path, info if newest.manifest["adapter"]["kind"] == "lora"
                        else None)
    paths = [hdf5_paths] if isinstance(hdf5_paths, (str, os.PathLike)) else list(hdf5_paths)
    configure_threads(cfg.num_threads)
    ctx = init_distributed(cfg.device)
    ds = SkillChunkDataset.from_hdf5(paths, [name], cfg.chunk_size, skill_vocab=info.skills,
                                     arg_offsets=cfg.release_points,
                                     object_sizes=parent.stats.object_sizes)
    if name in PLACE_VERBS and ds.arg_offsets != parent.stats.arg_offsets:
        raise ValueError(f"{name}@{version}: the new data's placements "
                         f"{'carry' if ds.arg_offsets else 'lack'} release-point offsets, the "
                         f"library's statistics were computed from data that "
                         f"{'carries' if parent.stats.arg_offsets else 'lacks'} them "
                         "(robot_skills.perception.placement); collect the new data with the "
                         "library's code version")
    base = GoalConditionedBC(info.arch)
    base.load_state_dict(base_state)
    base = base.to(ctx.device)
    work = library_work_dir(library_root) / f"version_{name}@{version}"
    sub = ds.for_skill(name)
    state, res, layers = train_lora_adapter(base, sub, parent.stats, cfg, work, ctx,
                                            f"{name}@{version}")
    spec = contract_to_spec(newest.manifest, str(newest.path))
    stats = release_calibrated(replace(parent.stats, release_thresholds={
        k: v for k, v in parent.stats.release_thresholds.items() if k != name}), spec,
        lambda: _merged(base, state, cfg, layers), info.skills.index(name), sub,
        cfg.calibrate_release)
    prov = {"dataset_sha256": dataset_sha256(paths), "dataset_files": [str(p) for p in paths],
            "num_samples": len(ds), "config": cfg.to_dict(), "code_version": code_version(),
            "metrics": {"lora": _metrics(res)}, "parent_version": newest.version}
    return save_skill(Path(library_root) / f"{name}@{version}", spec=spec,
                      adapter_state=state, stats=stats,
                      adapter={"kind": "lora", "rank": cfg.lora_rank, "alpha": cfg.lora_alpha,
                               "target_layers": layers},
                      base=info, skill_id=info.skills.index(name), version=version,
                      provenance=prov, trust_tier="sim", overwrite=False)


def train_task_policy(hdf5_paths: Sequence[str | os.PathLike] | str | os.PathLike,
                      library_root: str | os.PathLike, task_id: str, args: Sequence[str],
                      cfg: TrainConfig | None = None, task: str | None = None,
                      description: str | None = None,
                      goal: Sequence[str] = ()) -> Path:
    """Train the monolithic baseline: one whole BC policy for one task (adapter kind ``full``).

    Args:
        hdf5_paths: demonstration files (each demo = one whole-task episode).
        library_root: where ``<task_id>/`` is written (a directory of task policies).
        task_id: the skill name of the policy (a task identifier, e.g. the BDDL file stem).
        args: entities conditioning the policy (the task's ``obj_of_interest``, <= 2).
        cfg: hyper-parameters (``steps`` is used; the LoRA fields are ignored).
        task: keep only demos whose ``task`` attribute matches (see
            :meth:`SkillChunkDataset.whole_task`); None = all demos in the files.
        description: natural-language description (default: derived from the task id).
        goal: goal predicate strings recorded as the contract's termination / add effects.

    Returns:
        The written skill directory.
    """
    cfg = cfg or TrainConfig()
    paths = [hdf5_paths] if isinstance(hdf5_paths, (str, os.PathLike)) else list(hdf5_paths)
    configure_threads(cfg.num_threads)
    ctx = init_distributed(cfg.device)
    root = Path(library_root)
    work = root / WORK_DIR / task_id
    if ctx.is_main:
        work.mkdir(parents=True, exist_ok=True)
    barrier(ctx)
    ds = SkillChunkDataset.whole_task(paths, task_id, args, cfg.chunk_size, task)
    stats = ds.compute_stats()
    _seed_all(cfg.seed)
    train, val = _split(ds, cfg)
    model = cfg.make_policy(1, ds.feature_dim).to(ctx.device)
    res = fit(model, train.tensors(stats, ctx.device), cfg.fit_config(), ctx=ctx,
              work_dir=work, tb_dir=(work / "tb") if cfg.tensorboard else None,
              desc=f"task:{task_id}", val_data=val.tensors(stats, ctx.device) if val else None,
              fingerprint=_fingerprint(cfg, ds, f"task:{task_id}"))
    spec = SkillSpec(name=task_id,
                     description=description or f"Monolithic policy for task {task_id}.",
                     parameters=tuple(Parameter(f"arg{i}", "entity") for i in range(len(args))),
                     preconditions=(), add_effects=tuple(goal), del_effects=(),
                     termination=tuple(goal), time_limit_s=60.0, tags=("monolithic",))
    dest = root / task_id
    if ctx.is_main:
        prov = {"dataset_sha256": dataset_sha256(paths), "num_samples": len(ds),
                "config": cfg.to_dict(), "code_version": code_version(), "task": task,
                "task_args": list(args), "metrics": _metrics(res)}
        save_skill(dest, spec=spec, adapter_state=model.state_dict(), stats=stats,
                   adapter={"kind": "full", "arch": model.cfg.to_dict()}, provenance=prov)
    barrier(ctx)
    return dest
