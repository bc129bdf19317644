"""Visuomotor skills: a small ResNet image encoder feeding the goal-conditioned BC head.

:class:`VisuomotorBC` maps, per sample,

* ``images (B, n_cams, 3, h, w)`` uint8 RGB (one crop per camera, e.g. the agent view and the
  wrist camera),
* ``proprio (B, 8)`` normalised proprioception (end-effector position, quaternion, gripper
  opening: :func:`~robot_skills.policies.features.proprio_features`, *no object poses*),
* ``entity_ids (B, MAX_SKILL_ARGS)`` the skill call's argument entities (ids in an
  :class:`EntityVocab`; 0 = empty slot) and ``skill_id (B,)``,

to a normalised action chunk ``(B, H, 7)``. Each camera has its own encoder: a ResNet-18-style
network trained from scratch (He et al., 2016, "Deep Residual Learning for Image Recognition";
BasicBlocks, ``blocks`` per stage) with GroupNorm instead of BatchNorm (batch statistics are
harmful with small, correlated robot batches and at batch-1 inference, as in robomimic and
Diffusion Policy), then a spatial softmax (Levine et al., 2016, "End-to-End Training of Deep
Visuomotor Policies": per keypoint channel, the softmax-weighted mean image coordinate) or global
average pooling, and a linear projection to ``embed_dim``. The camera embeddings, the
proprioception and the argument-entity embeddings are concatenated and fed to the *same*
goal-conditioned head as the state-based policy: a :class:`~robot_skills.policies.bc.
GoalConditionedBC` (skill embedding, pre-LN residual MLP, ACT action chunk) whose input is this
vector instead of the object-pose features. What tells the policy *which* object to act on is the
argument's identity (a learned embedding per entity name); where it is comes from the images.

:class:`VisuomotorSkill` runs the network as a closed-loop skill (same contract as
:class:`~robot_skills.policies.learned_skill.LearnedSkill`: ACT temporal ensembling, action
clipping, gripper snapped to the levels the demonstrations used, loud failure on NaN).
:func:`save_visuomotor` / :func:`load_visuomotor` store one policy directory (safetensors weights +
a YAML manifest with the architecture, vocabularies, statistics, contracts and the weights'
sha256); never pickles.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_skills.domain.verbs import MAX_SKILL_ARGS
from robot_skills.policies.bc import (
    LOSS_KINDS,
    BCConfig,
    GoalConditionedBC,
    TemporalEnsembler,
    chunk_loss,
)
from robot_skills.policies.features import PROPRIO_DIM, proprio_features
from robot_skills.robot import ACTION_DIM, Action, ActionLimits, Observation

GRIPPER_DIM = ACTION_DIM - 1
POLICY_WEIGHTS = "policy.safetensors"
POLICY_YAML = "policy.yaml"
FORMAT = "robot_skills.visuomotor/1"
MAX_POLICY_YAML_BYTES = 4 << 20
MAX_WEIGHTS_BYTES = 1 << 30
POOLS = ("spatial_softmax", "avg")


# ------------------------------------------------------------------------------ image helpers
def center_crop(img: np.ndarray, crop: Sequence[int]) -> np.ndarray:
    """The centred ``crop = (h, w)`` window of an ``(H, W, C)`` image (evaluation's crop).

    Raises:
        ValueError: the crop is larger than the image.
    """
    H, W = img.shape[:2]
    h, w = int(crop[0]), int(crop[1])
    if h > H or w > W:
        raise ValueError(f"crop {(h, w)} is larger than the image {(H, W)}")
    y, x = (H - h) // 2, (W - w) // 2
    return img[y:y + h, x:x + w]


def hwc_to_chw(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` -> contiguous ``(3, H, W)`` (same dtype)."""
    return np.ascontiguousarray(np.moveaxis(img, -1, 0))


def resize_image(img: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``size = (h, w)`` with OpenCV's area filter (no-op
    when it already has that size)."""
    h, w = int(size[0]), int(size[1])
    if img.shape[:2] == (h, w):
        return img
    import cv2

    return cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------ vocabularies
NO_ENTITY, UNKNOWN_ENTITY = "<none>", "<unknown>"


@dataclass(frozen=True)
class EntityVocab:
    """Argument-entity names -> ids. Id 0 = empty argument slot, 1 = an entity not seen in
    training (its embedding is learned from no sample: the policy is not expected to handle it).

    Attributes:
        names: ``names[i]`` is the entity of id ``i``; starts with ``<none>``, ``<unknown>``.
    """

    names: tuple[str, ...] = (NO_ENTITY, UNKNOWN_ENTITY)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        if names[:2] != (NO_ENTITY, UNKNOWN_ENTITY) or len(set(names)) != len(names):
            raise ValueError(f"entity vocabulary must start with {NO_ENTITY!r}, "
                             f"{UNKNOWN_ENTITY!r} and hold unique names, got {list(names)[:6]}")
        object.__setattr__(self, "names", names)

    @classmethod
    def build(cls, entities: Iterable[str]) -> EntityVocab:
        """Vocabulary of the distinct ``entities`` (sorted)."""
        return cls((NO_ENTITY, UNKNOWN_ENTITY, *sorted(set(entities) - {NO_ENTITY,
                                                                       UNKNOWN_ENTITY})))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, args: Sequence[str]) -> np.ndarray:
        """``(MAX_SKILL_ARGS,)`` int64 ids of a call's arguments (unseen -> 1, empty slots 0).

        Raises:
            ValueError: more than ``MAX_SKILL_ARGS`` arguments.
        """
        if len(args) > MAX_SKILL_ARGS:
            raise ValueError(f"at most {MAX_SKILL_ARGS} skill arguments, got {list(args)}")
        index = {n: i for i, n in enumerate(self.names)}
        out = np.zeros(MAX_SKILL_ARGS, np.int64)
        for k, a in enumerate(args):
            out[k] = index.get(a, 1)
        return out


@dataclass
class VisuomotorStats:
    """Normalisation of the image policy: proprioception and actions (images: fixed scaling).

    Attributes:
        proprio_mean, proprio_std: ``(8,)`` float32.
        action_mean, action_std: ``(7,)`` float32 (gripper: mean 0, std 1, left as is).
        skills: skill vocabulary. chunk_size: ``H``.
        gripper_levels: skill -> its demonstrations' distinct gripper commands (``[]`` =
            continuous), as :class:`~robot_skills.policies.normalization.NormStats`.
    """

    proprio_mean: np.ndarray
    proprio_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    skills: list[str]
    chunk_size: int
    gripper_levels: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_arrays(cls, proprio: np.ndarray, first_actions: np.ndarray, skill_ids: np.ndarray,
                    skills: Sequence[str], chunk_size: int, std_floor: float = 1e-3,
                    max_levels: int = 5) -> VisuomotorStats:
        """Statistics of ``(N, 8)`` raw proprioception and ``(N, 7)`` first actions of chunks.

        A (near-)constant dimension (std < 1e-6) gets std 1, the others at least ``std_floor``.
        """
        def std(x: np.ndarray) -> np.ndarray:
            s = x.astype(np.float64).std(axis=0)
            return np.where(s < 1e-6, 1.0, np.maximum(s, std_floor)).astype(np.float32)

        a0 = np.asarray(first_actions, np.float64)
        am, astd = a0.mean(axis=0).astype(np.float32), std(a0)
        am[GRIPPER_DIM], astd[GRIPPER_DIM] = 0.0, 1.0
        levels: dict[str, list[float]] = {}
        for sid, name in enumerate(skills):
            g = np.unique(np.round(a0[skill_ids == sid, GRIPPER_DIM], 6))
            if len(g):
                levels[name] = g.tolist() if len(g) <= max_levels else []
        return cls(np.asarray(proprio, np.float64).mean(axis=0).astype(np.float32), std(proprio),
                   am, astd, list(skills), int(chunk_size), levels)

    def normalize_proprio(self, p: np.ndarray) -> np.ndarray:
        """``(..., 8)`` raw -> normalised float32."""
        return ((np.asarray(p, np.float32) - self.proprio_mean) / self.proprio_std).astype(np.float32)

    def normalize_actions(self, a: np.ndarray) -> np.ndarray:
        """``(..., 7)`` raw -> normalised float32."""
        return ((np.asarray(a, np.float32) - self.action_mean) / self.action_std).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON ready)."""
        return {"proprio_mean": self.proprio_mean.tolist(), "proprio_std": self.proprio_std.tolist(),
                "action_mean": self.action_mean.tolist(), "action_std": self.action_std.tolist(),
                "skills": list(self.skills), "chunk_size": int(self.chunk_size),
                "gripper_levels": {k: list(v) for k, v in self.gripper_levels.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "stats") -> VisuomotorStats:
        """Parse and validate.

        Raises:
            ValueError: missing keys, wrong sizes, non-finite values or a non-positive std
                (names ``where`` and the key).
        """
        try:
            out = cls(*(np.asarray(d[k], np.float32) for k in
                        ("proprio_mean", "proprio_std", "action_mean", "action_std")),
                      [str(s) for s in d["skills"]], int(d["chunk_size"]),
                      {str(k): [float(x) for x in v]
                       for k, v in dict(d.get("gripper_levels", {})).items()})
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: malformed visuomotor statistics: {e!r}") from e
        for k, n in (("proprio_mean", PROPRIO_DIM), ("proprio_std", PROPRIO_DIM),
                     ("action_mean", ACTION_DIM), ("action_std", ACTION_DIM)):
            v = getattr(out, k)
            if v.shape != (n,) or not np.all(np.isfinite(v)):
                raise ValueError(f"{where}: {k} must be {n} finite numbers, got {v.tolist()}")
            if k.endswith("std") and not np.all(v > 0):
                raise ValueError(f"{where}: {k} must be > 0, got {v.tolist()}")
        return out


# ---------------------------------------------------------------------------------- network
@dataclass
class VisuomotorConfig:
    """Architecture of :class:`VisuomotorBC` (stored in ``policy.yaml``).

    Attributes:
        cameras: scene camera names, one encoder each, in input order.
        image_size: ``(H, W)`` of the recorded images (an observation of another size is
            resized to it first).
        crop: ``(h, w)`` network input (random crop in training, centre crop in evaluation).
        widths: channels of the 4 ResNet stages (ResNet-18: 64, 128, 256, 512).
        blocks: BasicBlocks per stage (ResNet-18: 2, 2, 2, 2).
        strides: stride of each stage's first block (ResNet: 1, 2, 2, 2). The final feature
            map is ``crop / (2 * (2 if stem_pool) * prod(strides))`` pixels a side; the spatial
            softmax needs a few (e.g. a 56 px crop with ``stem_pool`` and strides 1, 2, 2, 1
            keeps 4 x 4).
        groups: GroupNorm groups (each width must be divisible by it).
        stem_pool: ResNet's stride-2 max pooling after the stem (overall stride 32 instead of
            16; about 4x cheaper).
        pool: ``"spatial_softmax"`` or ``"avg"`` (global average pooling).
        num_keypoints: spatial-softmax keypoints (pool ``spatial_softmax``).
        embed_dim: per-camera embedding width.
        num_entities / entity_emb_dim: argument-entity embedding table.
        num_skills, chunk_size, hidden, layers, skill_emb_dim, dropout: the goal-conditioned
            head (:class:`~robot_skills.policies.bc.BCConfig`).
    """

    cameras: list[str] = field(default_factory=lambda: ["agentview", "panda/wrist_cam"])
    image_size: list[int] = field(default_factory=lambda: [128, 128])
    crop: list[int] = field(default_factory=lambda: [116, 116])
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    strides: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    groups: int = 8
    stem_pool: bool = True
    pool: str = "spatial_softmax"
    num_keypoints: int = 32
    embed_dim: int = 64
    num_entities: int = 2
    entity_emb_dim: int = 16
    num_skills: int = 1
    chunk_size: int = 10
    hidden: int = 256
    layers: int = 4
    skill_emb_dim: int = 32
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.cameras = [str(c) for c in self.cameras]
        self.image_size = [int(v) for v in self.image_size]
        self.crop = [int(v) for v in self.crop]
        self.widths = [int(v) for v in self.widths]
        self.blocks = [int(v) for v in self.blocks]
        self.strides = [int(v) for v in self.strides]
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"visuomotor cameras must be distinct and non-empty, got {self.cameras}")
        if len(self.image_size) != 2 or len(self.crop) != 2 or min(self.crop) < 8:
            raise ValueError(f"image_size and crop must be (height, width), crop >= 8; got "
                             f"{self.image_size}, {self.crop}")
        if self.crop[0] > self.image_size[0] or self.crop[1] > self.image_size[1]:
            raise ValueError(f"crop {self.crop} is larger than image_size {self.image_size}")
        if len(self.widths) != 4 or len(self.blocks) != 4 or len(self.strides) != 4 \
                or min(self.widths) < 1 or min(self.blocks) < 1 \
                or not set(self.strides) <= {1, 2}:
            raise ValueError(f"widths, blocks and strides need 4 entries (ResNet stages; "
                             f"positive, strides 1 or 2), got {self.widths}, {self.blocks}, "
                             f"{self.strides}")
        if self.groups < 1 or any(w % self.groups for w in self.widths):
            raise ValueError(f"every width {self.widths} must be divisible by groups={self.groups}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        for k in ("num_keypoints", "embed_dim", "num_entities", "entity_emb_dim", "num_skills",
                  "chunk_size", "hidden", "layers", "skill_emb_dim"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"visuomotor config {k} must be a positive integer, got {v!r}")
        if self.num_entities < 2:
            raise ValueError("num_entities must be >= 2 (<none> and <unknown>)")
        if not (math.isfinite(self.dropout) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_input_dim(self) -> int:
        """Width of the head's input: proprio + camera embeddings + argument embeddings."""
        return PROPRIO_DIM + len(self.cameras) * self.embed_dim + MAX_SKILL_ARGS * self.entity_emb_dim

    def head_config(self) -> BCConfig:
        """The goal-conditioned head's :class:`BCConfig`."""
        return BCConfig(num_skills=self.num_skills, chunk_size=self.chunk_size, hidden=self.hidden,
                        layers=self.layers, skill_emb_dim=self.skill_emb_dim,
                        feature_dim=self.head_input_dim, dropout=self.dropout)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VisuomotorConfig:
        """Parse and validate.

        Raises:
            ValueError: unknown keys or out-of-range values.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"visuomotor config must be a mapping, got {type(d).__name__}")  # noqa: TRY004 - malformed file content
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown visuomotor config keys {sorted(unknown)}; known "
                             f"{sorted(known)}")
        return cls(**dict(d))


class _BasicBlock(nn.Module):
    """ResNet BasicBlock (two 3x3 convolutions) with GroupNorm; 1x1 projection on a shape
    change."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.act = nn.ReLU(inplace=True)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                   nn.GroupNorm(groups, cout))
                     if stride != 1 or cin != cout else nn.Identity())
        nn.init.zeros_(self.norm2.weight)  # each block starts as the identity (Goyal et al. 2017)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(y)) + self.down(x))


class SpatialSoftmax(nn.Module):
    """Spatial softmax (Levine et al. 2016): a 1x1 convolution to ``K`` keypoint maps, a softmax
    over each map's pixels, and the expected ``(x, y)`` in ``[-1, 1]`` of each: ``(B, 2K)``."""

    def __init__(self, channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.kp = nn.Conv2d(channels, num_keypoints, 1)
        self.num_keypoints = num_keypoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` -> ``(B, 2K)`` expected keypoint coordinates."""
        b, _, h, w = x.shape
        logits = self.kp(x).flatten(2)                       # (B, K, h*w)
        p = torch.softmax(logits.float(), dim=-1).to(x.dtype)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        ex = (p * gx.reshape(1, 1, -1)).sum(-1)
        ey = (p * gy.reshape(1, 1, -1)).sum(-1)
        return torch.cat([ex, ey], dim=-1)


class ResNetEncoder(nn.Module):
    """ResNet-18-style image encoder with GroupNorm, trained from scratch.

    Stem: 3x3 convolution, stride 2, GroupNorm, ReLU (and, with ``stem_pool``, ResNet's 3x3
    stride-2 max pooling: a quarter of the compute in every later layer). Four stages of
    ``blocks[i]`` BasicBlocks with ``widths[i]`` channels, the first block of stage ``i`` with
    stride ``strides[i]`` (ResNet: 1, 2, 2, 2). Pool: spatial softmax or
    global average. Projection: Linear + LayerNorm to ``embed_dim``.

    Input ``(B, 3, h, w)`` uint8 (or float in ``[0, 255]``); output ``(B, embed_dim)`` float.
    """

    def __init__(self, cfg: VisuomotorConfig) -> None:
        super().__init__()
        w = cfg.widths
        stem: list[nn.Module] = [nn.Conv2d(3, w[0], 3, 2, 1, bias=False),
                                 nn.GroupNorm(cfg.groups, w[0]), nn.ReLU(inplace=True)]
        if cfg.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        stages, cin = [], w[0]
        for cout, n, stride in zip(w, cfg.blocks, cfg.strides, strict=True):
            blocks = [_BasicBlock(cin, cout, stride, cfg.groups)]
            blocks += [_BasicBlock(cout, cout, 1, cfg.groups) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        if cfg.pool == "spatial_softmax":
            self.pool: nn.Module = SpatialSoftmax(cin, cfg.num_keypoints)
            pooled = 2 * cfg.num_keypoints
        else:
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            pooled = cin
        self.proj = nn.Sequential(nn.Linear(pooled, cfg.embed_dim), nn.LayerNorm(cfg.embed_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, h, w)`` uint8 RGB -> ``(B, embed_dim)``."""
        x = images.float() * (1.0 / 127.5) - 1.0
        return self.proj(self.pool(self.stages(self.stem(x))))


class VisuomotorBC(nn.Module):
    """Image encoders + entity embeddings + the goal-conditioned BC head (see module docstring).

    Owns its loss (:meth:`compute_loss`: the masked chunk loss of
    :class:`~robot_skills.policies.bc.GoalConditionedBC`), so it trains through
    :func:`robot_skills.training.trainer.fit`.

    Args:
        cfg: architecture.
        loss: ``"l1"`` (default) or ``"mse"``.

    Raises:
        ValueError: unknown ``loss``.
    """

    def __init__(self, cfg: VisuomotorConfig, loss: str = "l1") -> None:
        super().__init__()
        if loss not in LOSS_KINDS:
            raise ValueError(f"loss kind must be one of {LOSS_KINDS}, got {loss!r}")
        self.cfg = cfg
        self.loss_kind = loss
        self.encoders = nn.ModuleList(ResNetEncoder(cfg) for _ in cfg.cameras)
        self.entity_emb = nn.Embedding(cfg.num_entities, cfg.entity_emb_dim)
        nn.init.normal_(self.entity_emb.weight, std=0.5)
        self.head = GoalConditionedBC(cfg.head_config(), loss=loss)

    def head_input(self, images: torch.Tensor, proprio: torch.Tensor,
                   entity_ids: torch.Tensor) -> torch.Tensor:
        """The head's input ``(B, head_input_dim)``: proprio, camera embeddings, entity embeddings.

        Raises:
            ValueError: wrong number of cameras or crop size (names the expected shape).
        """
        c = self.cfg
        want = (len(c.cameras), 3, c.crop[0], c.crop[1])
        if images.ndim != 5 or tuple(images.shape[1:]) != want:
            raise ValueError(f"images must be (B, {', '.join(map(str, want))}) for cameras "
                             f"{c.cameras}, got {tuple(images.shape)}")
        emb = [enc(images[:, i]) for i, enc in enumerate(self.encoders)]
        ent = self.entity_emb(entity_ids).flatten(1)
        return torch.cat([proprio.to(emb[0].dtype), *emb, ent.to(emb[0].dtype)], dim=-1)

    def forward(self, images: torch.Tensor, proprio: torch.Tensor, entity_ids: torch.Tensor,
                skill_id: torch.Tensor) -> torch.Tensor:
        """Predict a normalised chunk.

        Args:
            images: ``(B, n_cams, 3, h, w)`` uint8 RGB crops.
            proprio: ``(B, 8)`` normalised proprioception.
            entity_ids: ``(B, MAX_SKILL_ARGS)`` int64 argument ids.
            skill_id: ``(B,)`` int64.

        Returns:
            ``(B, H, 7)`` normalised actions.
        """
        return self.head(self.head_input(images, proprio, entity_ids), skill_id)

    def compute_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Masked chunk loss of a batch (keys ``images, proprio, entity_ids, skill_id, actions``,
        optional ``mask``), float32.

        Raises:
            KeyError: a required key is missing (names the keys present).
        """
        need = ("images", "proprio", "entity_ids", "skill_id", "actions")
        missing = [k for k in need if k not in batch]
        if missing:
            raise KeyError(f"VisuomotorBC.compute_loss: batch lacks {missing}; has {sorted(batch)}")
        pred = self(batch["images"], batch["proprio"], batch["entity_ids"], batch["skill_id"])
        return chunk_loss(pred.float(), batch["actions"], batch.get("mask"), self.loss_kind)

    def loss_weight(self, batch: Mapping[str, torch.Tensor]) -> float:
        """Real (unpadded) chunk steps in ``batch`` (see :meth:`GoalConditionedBC.loss_weight`)."""
        return self.head.loss_weight(batch)


# ------------------------------------------------------------------------------- the skill
class PolicyOutputError(RuntimeError):
    """The image policy produced a non-finite action; no command is sent."""


class VisuomotorSkill:
    """A closed-loop skill (``reset(args, world)`` / ``act(obs)``) backed by a
    :class:`VisuomotorBC`: reads the cameras and the proprioception, never object poses.

    Per step: each camera's image (resized to the recorded size if needed, centre-cropped) +
    :func:`proprio_features` (normalised) + the call's argument ids -> network -> un-normalise ->
    ACT temporal ensemble (gripper from the newest chunk, as :class:`LearnedSkill`) -> clip ->
    gripper snapped to the skill's demonstrated levels.

    Args:
        name: skill name; must be in ``stats.skills``.
        model: the network (moved to CPU, eval mode, gradients off).
        stats: normalisation.
        entities: argument vocabulary of the training data.
        spec: the skill's contract (checks the argument count), if known.
        ensemble_m: ACT ensembling coefficient (None = open-loop chunks).
        action_limits: bounds the output is clipped to.

    Raises:
        ValueError: ``name`` not in the model's skills, non-finite weights or statistics.
    """

    def __init__(self, name: str, model: VisuomotorBC, stats: VisuomotorStats,
                 entities: EntityVocab, spec: Any = None, ensemble_m: float | None = 0.01,
                 action_limits: ActionLimits | None = None) -> None:
        if name not in stats.skills:
            raise ValueError(f"skill {name!r} is not among the policy's skills {stats.skills}")
        self.name, self.spec = name, spec
        self.model = model.to("cpu").eval()
        for n, p in self.model.named_parameters():
            p.requires_grad_(False)
            if not bool(torch.isfinite(p).all()):
                raise ValueError(f"visuomotor skill {name}: parameter {n!r} holds NaN/inf")
        self.stats, self.entities = stats, entities
        self.skill_id = stats.skills.index(name)
        self.chunk_size = int(stats.chunk_size)
        self.limits = action_limits or ActionLimits()
        lv = stats.gripper_levels.get(name)
        self.gripper_levels = np.array(lv if lv is not None else [-1.0, 0.0, 1.0], np.float64) \
            if lv != [] else None
        self._ens = TemporalEnsembler(self.chunk_size, ensemble_m) if ensemble_m is not None else None
        self._args: tuple[str, ...] = ()
        self._eid = torch.zeros(1, MAX_SKILL_ARGS, dtype=torch.long)
        self._sid = torch.tensor([self.skill_id], dtype=torch.long)
        self._open: np.ndarray | None = None
        self._open_idx = 0

    def reset(self, args: Sequence[str], world: Any = None) -> None:
        """Start a call with entity ``args``.

        Raises:
            ValueError: the number of args disagrees with the contract.
        """
        args = tuple(args)
        if self.spec is not None and len(args) != len(self.spec.parameters):
            raise ValueError(f"skill {self.name} takes {len(self.spec.parameters)} arguments, "
                             f"got {list(args)}")
        self._args = args
        self._eid = torch.from_numpy(self.entities.encode(args))[None]
        if self._ens is not None:
            self._ens.reset()
        self._open, self._open_idx = None, 0

    def observation_images(self, obs: Observation) -> torch.Tensor:
        """``(1, n_cams, 3, h, w)`` uint8 network input from ``obs.images``.

        Raises:
            KeyError: a camera the policy reads is not in the observation (names those present).
        """
        c = self.model.cfg
        out = []
        for cam in c.cameras:
            img = (obs.images or {}).get(cam)
            if img is None:
                raise KeyError(f"visuomotor skill {self.name} reads camera {cam!r}; the "
                               f"observation has {sorted(obs.images or {})} (set world.cameras)")
            img = center_crop(resize_image(np.asarray(img, np.uint8), c.image_size), c.crop)
            out.append(hwc_to_chw(img))
        return torch.from_numpy(np.stack(out))[None]

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """Un-normalised ``(H, 7)`` float32 chunk for ``obs`` and the current call."""
        p = self.stats.normalize_proprio(proprio_features(obs))[None]
        with torch.inference_mode():
            a = self.model(self.observation_images(obs), torch.from_numpy(p), self._eid, self._sid)
        return a[0].numpy() * self.stats.action_std + self.stats.action_mean

    def act(self, obs: Observation) -> Action:
        """This step's action (base frame).

        Raises:
            KeyError: a camera is missing. PolicyOutputError: a non-finite chunk (no action).
        """
        if self._ens is None and self._open is not None and self._open_idx < self.chunk_size:
            a = self._open[self._open_idx]
            self._open_idx += 1
        else:
            chunk = self.predict_chunk(obs)
            if not np.all(np.isfinite(chunk)):
                raise PolicyOutputError(f"visuomotor skill {self.name}{list(self._args)}: "
                                        "non-finite action chunk; stopping the skill")
            if self._ens is not None:
                a = self._ens.update(chunk).copy()
                a[GRIPPER_DIM] = chunk[0, GRIPPER_DIM]
            else:
                self._open, self._open_idx = chunk, 1
                a = chunk[0]
        a = np.array(a, np.float64)
        a[:3] = np.clip(a[:3], -self.limits.max_delta_pos, self.limits.max_delta_pos)
        a[3:6] = np.clip(a[3:6], -self.limits.max_delta_rot, self.limits.max_delta_rot)
        lv = self.gripper_levels
        a[6] = lv[int(np.argmin(np.abs(lv - a[6])))] if lv is not None else np.clip(a[6], -1, 1)
        return Action.from_array(a)

    def __repr__(self) -> str:
        return f"VisuomotorSkill({self.name!r}, cameras={self.model.cfg.cameras})"


# ---------------------------------------------------------------------------- save / load
def _manifest_hash(m: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of every manifest key but ``manifest_sha256`` (detects an
    edited contract, vocabulary or statistic; an integrity check, not a signature)."""
    body = {k: v for k, v in m.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     default=str).encode()).hexdigest()


def save_visuomotor(out_dir: str | os.PathLike, model: VisuomotorBC, stats: VisuomotorStats,
                    entities: EntityVocab, contracts: Mapping[str, Mapping[str, Any]],
                    provenance: Mapping[str, Any] | None = None) -> Path:
    """Write a visuomotor policy directory atomically: ``policy.safetensors`` +
    ``policy.yaml`` (``format, arch, stats, entities, contracts, sha256, size, provenance,
    manifest_sha256``).

    Args:
        out_dir: the directory (replaced as a whole).
        model: the trained network (weights saved from CPU copies).
        stats / entities: its normalisation and argument vocabulary.
        contracts: skill name -> contract dict (``robot_skills.skills.skill_dir.spec_to_contract``).
        provenance: JSON-able record (data hash, config, metrics).

    Returns:
        ``out_dir``.
    """
    from safetensors.torch import save as st_save

    from robot_skills.utils.atomic import atomic_dir
    from robot_skills.utils.files import dump_yaml

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = st_save(state)
    manifest = {"format": FORMAT, "arch": model.cfg.to_dict(), "loss": model.loss_kind,
                "stats": stats.to_dict(), "entities": list(entities.names),
                "contracts": {k: dict(v) for k, v in contracts.items()},
                "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                "provenance": dict(provenance or {})}
    manifest["manifest_sha256"] = _manifest_hash(manifest)
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        (tmp / POLICY_WEIGHTS).write_bytes(data)
        (tmp / POLICY_YAML).write_text(dump_yaml(manifest))
    return out


def load_visuomotor(policy_dir: str | os.PathLike
                    ) -> tuple[VisuomotorBC, VisuomotorStats, EntityVocab, dict[str, Any]]:
    """Load and verify a directory written by :func:`save_visuomotor`.

    Returns:
        ``(model, stats, entities, manifest)``; the model on CPU in eval mode.

    Raises:
        FileNotFoundError: missing directory or file.
        ValueError: a malformed or edited manifest (``manifest_sha256``), weights whose size or
            sha256 differ from the manifest, or weights that do not fit the architecture (names the file).
    """
    from safetensors.torch import load as st_load

    from robot_skills.utils.files import load_yaml_file, read_bounded

    d = Path(policy_dir)
    y, w = d / POLICY_YAML, d / POLICY_WEIGHTS
    for p in (y, w):
        if not p.is_file():
            raise FileNotFoundError(f"no {p.name} in visuomotor policy directory {d}")
    m = load_yaml_file(y, MAX_POLICY_YAML_BYTES, "visuomotor manifest")
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError(f"{y}: not a visuomotor policy manifest (format "
                         f"{m.get('format') if isinstance(m, dict) else None!r}, want {FORMAT!r})")
    for k in ("arch", "stats", "entities", "contracts", "sha256", "size", "manifest_sha256"):
        if k not in m:
            raise ValueError(f"{y}: manifest lacks {k!r}")
    if _manifest_hash(m) != m["manifest_sha256"]:
        raise ValueError(f"{y}: manifest_sha256 does not match its content (edited file)")
    data = read_bounded(w, MAX_WEIGHTS_BYTES, "visuomotor weights")
    if len(data) != int(m["size"]) or hashlib.sha256(data).hexdigest() != m["sha256"]:
        raise ValueError(f"{w}: size/sha256 differ from {y} (file changed or truncated)")
    cfg = VisuomotorConfig.from_dict(m["arch"])
    stats = VisuomotorStats.from_dict(m["stats"], str(y))
    entities = EntityVocab(tuple(m["entities"]))
    if len(entities) != cfg.num_entities or stats.skills and len(stats.skills) != cfg.num_skills:
        raise ValueError(f"{y}: vocabularies ({len(entities)} entities, {len(stats.skills)} "
                         f"skills) do not match the architecture ({cfg.num_entities}, "
                         f"{cfg.num_skills})")
    model = VisuomotorBC(cfg, loss=str(m.get("loss", "l1")))
    try:
        model.load_state_dict(st_load(data))
    except RuntimeError as e:
        raise ValueError(f"{w}: weights do not fit the architecture in {y}: {e}") from e
    return model.eval(), stats, entities, m
