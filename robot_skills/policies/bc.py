"""Goal-conditioned behaviour cloning with action chunks and ACT-style temporal ensembling.

:class:`GoalConditionedBC` maps normalised skill features ``(B, FEATURE_DIM)`` (see
:mod:`robot_skills.policies.features`) and a skill id ``(B,)`` to a normalised action chunk
``(B, H, 7)``: the next ``H`` actions, as in ACT (Zhao et al., 2023, "Learning Fine-Grained Bimanual
Manipulation with Low-Cost Hardware", arXiv:2304.13705). The network is a pre-LayerNorm residual MLP
(input projection, ``layers - 1`` residual blocks ``x + GELU(Linear(LN(x)))``, LN + linear head;
GELU in its tanh form, so the network can also be evaluated exactly in numpy for fast inference);
every ``nn.Linear`` can carry a LoRA adapter (:mod:`robot_skills.policies.lora`).

:class:`TemporalEnsembler` averages the overlapping chunk predictions for the current step with
weights ``exp(-m * i)``, ``i = 0`` for the oldest prediction (ACT's temporal ensembling).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_skills.policies.features import FEATURE_DIM, SIZED_FEATURE_DIM
from robot_skills.robot import ACTION_DIM

#: Loss kinds of :func:`chunk_loss` / :class:`GoalConditionedBC`.
LOSS_KINDS = ("l1", "mse")


@dataclass
class BCConfig:
    """Architecture of :class:`GoalConditionedBC` (stored in ``base.yaml`` / ``skill.yaml``).

    Attributes:
        num_skills: size of the skill-id embedding table.
        chunk_size: ``H``, actions predicted per query.
        hidden: width of the MLP.
        layers: hidden layers (input projection + ``layers - 1`` residual blocks), >= 1.
        skill_emb_dim: width of the skill embedding.
        feature_dim / action_dim: input / per-step output sizes (``feature_dim``: ``FEATURE_DIM``,
            or ``SIZED_FEATURE_DIM`` for a library trained with object sizes).
        dropout: dropout inside residual blocks (training only).
    """

    num_skills: int = 1
    chunk_size: int = 10
    hidden: int = 512
    layers: int = 4
    skill_emb_dim: int = 32
    feature_dim: int = FEATURE_DIM
    action_dim: int = ACTION_DIM
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BCConfig:
        """Parse and validate.

        Raises:
            ValueError: unknown keys or out-of-range values.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"policy config must be a mapping, got {type(d).__name__}")  # noqa: TRY004 - malformed file content
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown policy config keys {sorted(unknown)}; known {sorted(known)}")
        cfg = cls(**dict(d))
        for k in ("num_skills", "chunk_size", "hidden", "layers", "skill_emb_dim", "feature_dim",
                  "action_dim"):
            v = getattr(cfg, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"policy config {k} must be a positive integer, got {v!r}")
        if cfg.feature_dim not in (FEATURE_DIM, SIZED_FEATURE_DIM) or cfg.action_dim != ACTION_DIM:
            raise ValueError(f"policy expects feature_dim {FEATURE_DIM} (or {SIZED_FEATURE_DIM} "
                             f"with object sizes) and action_dim {ACTION_DIM}; config has "
                             f"{cfg.feature_dim}, {cfg.action_dim}")
        return cfg


class _ResBlock(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc = nn.Linear(hidden, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.act(self.fc(self.norm(x))))


class GoalConditionedBC(nn.Module):
    """Skill-conditioned residual MLP predicting a normalised action chunk.

    Linear layers (LoRA targets): ``inp``, ``blocks.<i>.fc`` (i < layers - 1), ``head``.

    The model owns its training objective (:meth:`compute_loss`, the masked chunk loss), so it
    trains through the generic :func:`robot_skills.training.trainer.fit`. The loss kind is a
    training setting, not part of the architecture: it is not stored in :class:`BCConfig` (nor in
    ``base.yaml`` / ``skill.yaml``) and has no effect on :meth:`forward`.

    Args:
        cfg: architecture.
        loss: ``"l1"`` (ACT's choice, default) or ``"mse"``; read by :meth:`compute_loss`.

    Raises:
        ValueError: unknown ``loss``.
    """

    def __init__(self, cfg: BCConfig, loss: str = "l1") -> None:
        super().__init__()
        if loss not in LOSS_KINDS:
            raise ValueError(f"loss kind must be one of {LOSS_KINDS}, got {loss!r}")
        self.cfg = cfg
        self.loss_kind = loss
        self.skill_emb = nn.Embedding(cfg.num_skills, cfg.skill_emb_dim)
        self.inp = nn.Linear(cfg.feature_dim + cfg.skill_emb_dim, cfg.hidden)
        self.inp_act = nn.GELU(approximate="tanh")
        self.blocks = nn.ModuleList(_ResBlock(cfg.hidden, cfg.dropout)
                                    for _ in range(cfg.layers - 1))
        self.out_norm = nn.LayerNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, cfg.chunk_size * cfg.action_dim)
        nn.init.normal_(self.skill_emb.weight, std=0.5)

    def forward(self, features: torch.Tensor, skill_id: torch.Tensor | None,
                skill_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """Predict a chunk.

        Args:
            features: ``(B, FEATURE_DIM)`` float, normalised.
            skill_id: ``(B,)`` int64 in ``[0, num_skills)``; ignored when ``skill_embedding``
                is given.
            skill_embedding: ``(B, skill_emb_dim)`` float used instead of the table's row of
                ``skill_id`` (a composition's mix of its sources' embeddings, see
                :func:`mix_skill_embedding`).

        Returns:
            ``(B, H, 7)`` normalised actions.

        Raises:
            ValueError: neither ``skill_id`` nor ``skill_embedding`` given.
        """
        if skill_embedding is not None:
            e = skill_embedding
        elif skill_id is None:
            raise ValueError("GoalConditionedBC.forward needs skill_id or skill_embedding")
        else:
            e = self.skill_emb(skill_id)
        h = self.inp_act(self.inp(torch.cat([features, e.to(features.dtype)], dim=-1)))
        for b in self.blocks:
            h = b(h)
        out = self.head(self.out_norm(h))
        return out.view(features.shape[0], self.cfg.chunk_size, self.cfg.action_dim)

    def compute_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Masked chunk loss (:func:`chunk_loss` of kind :attr:`loss_kind`) of one batch.

        The prediction is cast to float32 before the loss, so under bf16 autocast the loss is
        still reduced in float32.

        Args:
            batch: ``features (B, F)`` float, ``skill_id (B,)`` int64, ``actions (B, H, 7)``
                float (normalised targets) and optionally ``mask (B, H)`` (1 = real step,
                0 = padding; absent = all real), as from
                :meth:`~robot_skills.data.dataset.SkillChunkDataset.tensors`. Other keys are
                ignored.

        Returns:
            0-d float32 tensor: mean error over real entries, in normalised action units.

        Raises:
            KeyError: ``features``, ``skill_id`` or ``actions`` is missing.
            ValueError: prediction and target shapes differ.
        """
        missing = [k for k in ("features", "skill_id", "actions") if k not in batch]
        if missing:
            raise KeyError(f"GoalConditionedBC.compute_loss: batch lacks {missing}; "
                           f"has {sorted(batch)}")
        pred = self(batch["features"], batch["skill_id"])
        return chunk_loss(pred.float(), batch["actions"], batch.get("mask"), self.loss_kind)

    def loss_weight(self, batch: Mapping[str, torch.Tensor]) -> float:
        """Real (unpadded) chunk steps in ``batch``: what :meth:`compute_loss` averages over
        (up to the constant action width), so batch losses can be combined into an exact mean.

        Raises:
            KeyError: ``actions`` is missing when there is no ``mask``.
        """
        m = batch.get("mask")
        if m is None:
            a = batch["actions"]
            return float(a.shape[0] * a.shape[1])
        return float(m.sum())


def mix_skill_embedding(model: GoalConditionedBC, skill_ids: torch.Tensor,
                        weights: torch.Tensor) -> torch.Tensor:
    """A weighted mix of rows of ``model``'s skill-embedding table.

    Args:
        model: the base network (its ``skill_emb`` table is read, not changed).
        skill_ids: ``(K,)`` int64 source skills.
        weights: ``(K,)`` or ``(B, K)`` float weights.

    Returns:
        ``(E,)`` or ``(B, E)``: ``weights @ skill_emb[skill_ids]``.
    """
    table = model.skill_emb.weight[skill_ids]
    return weights.to(table.dtype) @ table


def chunk_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
               kind: str = "l1") -> torch.Tensor:
    """Masked mean L1 (ACT's choice) or MSE over an action chunk.

    Args:
        pred, target: ``(B, H, A)``.
        mask: ``(B, H)`` with 1 for real steps, 0 for padding; None = all real.
        kind: ``"l1"`` or ``"mse"``.

    Returns:
        Scalar loss (mean over real entries).

    Raises:
        ValueError: on an unknown kind or shape mismatch.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if kind == "l1":
        err = (pred - target).abs()
    elif kind == "mse":
        err = (pred - target) ** 2
    else:
        raise ValueError(f"loss kind must be 'l1' or 'mse', got {kind!r}")
    if mask is None:
        return err.mean()
    m = mask.to(err.dtype).unsqueeze(-1)
    return (err * m).sum() / (m.sum() * err.shape[-1]).clamp_min(1.0)


class TemporalEnsembler:
    """ACT temporal ensembling: average all chunk predictions that cover the current step.

    Call :meth:`update` once per control step with the chunk predicted at that step. The action
    returned for step ``t`` is ``sum_i w_i a_i / sum_i w_i`` over the predictions ``a_i`` for ``t``
    made at steps ``t-H+1 .. t``, ordered oldest first, ``w_i = exp(-m * i)`` (ACT's weighting;
    ``m`` larger = favour older predictions more; ``m = 0`` = plain mean).

    Args:
        chunk_size: ``H``.
        m: the exponential weighting coefficient (ACT uses 0.01), >= 0.
    """

    def __init__(self, chunk_size: int, m: float = 0.01) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if m < 0:
            raise ValueError(f"ensemble weight m must be >= 0, got {m}")
        self.chunk_size = int(chunk_size)
        self.m = float(m)
        self._w = np.exp(-self.m * np.arange(self.chunk_size)).astype(np.float32)
        self._buf: np.ndarray | None = None  # (H, H, A) ring of past chunks
        self._count = 0

    def reset(self) -> None:
        """Forget all past predictions (call at the start of each skill call)."""
        self._count = 0

    def update(self, chunk: np.ndarray) -> np.ndarray:
        """Add the chunk predicted now and return the ensembled action for now.

        Args:
            chunk: ``(H, A)`` predicted actions for steps ``t .. t+H-1``.

        Returns:
            ``(A,)`` float32 action for step ``t``.
        """
        chunk = np.asarray(chunk, np.float32)
        H = self.chunk_size
        if chunk.ndim != 2 or chunk.shape[0] != H:
            raise ValueError(f"chunk must be ({H}, A), got {chunk.shape}")
        if self._buf is None or self._buf.shape[2] != chunk.shape[1]:
            self._buf = np.zeros((H, H, chunk.shape[1]), np.float32)
        self._buf[self._count % H] = chunk
        self._count += 1
        n = min(self._count, H)
        ages = np.arange(n - 1, -1, -1)  # oldest first: the chunk made k steps ago gives entry k
        preds = self._buf[(self._count - 1 - ages) % H, ages]
        w = self._w[:n]
        return (w @ preds) / np.float32(w.sum())
