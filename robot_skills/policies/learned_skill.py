"""A learned skill: the goal-conditioned BC network wrapped as a closed-loop :class:`SkillPolicy`.

Per control step: ``skill_features(obs, args, offsets)`` -> normalise (``stats.json``) -> network
(the base with the skill's LoRA merged in, or a whole "full" policy) -> un-normalise -> ACT
temporal ensemble -> clip to the action limits -> :class:`~robot_skills.robot.Action`. The offsets
move a placement's target to its release point (a free spot, at the held object's centre height),
chosen at the call's first step, when the library was trained with them
(:func:`~robot_skills.perception.placement.call_arg_offsets`). A library trained with object sizes
reads every argument's half extents from the task world's geometry at the call's start
(:func:`~robot_skills.perception.placement.call_arg_sizes`). Runs on CPU: batched
queries (:meth:`LearnedSkill.predict_chunk`) under ``torch.inference_mode``; the per-step batch-1
query of :meth:`LearnedSkill.act` through :class:`NumpyChunkPredictor`, the same network with the
normalisation and the skill embedding folded into its first and last layers, evaluated in numpy
(torch's per-operator dispatch costs more than the arithmetic of a batch-1 MLP).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_skills.domain.verbs import SkillSpec
from robot_skills.perception.placement import PLACE_VERBS, call_arg_offsets, call_arg_sizes
from robot_skills.policies.bc import GoalConditionedBC, TemporalEnsembler
from robot_skills.policies.features import skill_features
from robot_skills.policies.normalization import NormStats
from robot_skills.robot import Action, ActionLimits, Observation

_GELU_C = np.float32(np.sqrt(2.0 / np.pi))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + np.float32(0.044715) * x * x * x)))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    inv_n = 1.0 / x.shape[0]
    d = x - float(x @ np.ones_like(x)) * inv_n  # BLAS dot: cheaper than ndarray.mean at n ~ 256
    return d * np.float32(1.0 / np.sqrt(float(d @ d) * inv_n + eps)) * w + b


class NumpyChunkPredictor:
    """Batch-1 evaluation of a plain (LoRA merged) :class:`GoalConditionedBC` in numpy float32.

    Feature normalisation and the fixed skill's embedding are folded into the input layer, action
    un-normalisation into the head, so one call is 2 + (layers - 1) matrix-vector products.
    Matches the torch forward pass to float32 rounding (~1e-6 relative).

    Args:
        model: a GoalConditionedBC whose Linear layers are plain ``nn.Linear`` (LoRA merged).
        stats: normalisation statistics.
        skill_id: the embedding row to use.

    Raises:
        TypeError: if ``model`` is not a plain GoalConditionedBC (see :meth:`supports`).
    """

    def __init__(self, model: nn.Module, stats: NormStats, skill_id: int) -> None:
        if not self.supports(model):
            raise TypeError("NumpyChunkPredictor needs a GoalConditionedBC with plain nn.Linear "
                            "layers (merge LoRA adapters first)")
        f32 = np.float32

        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().double().numpy()

        cfg = model.cfg
        self.chunk_size, self.action_dim = cfg.chunk_size, cfg.action_dim
        W = arr(model.inp.weight)
        Wx, We = W[:, :cfg.feature_dim], W[:, cfg.feature_dim:]
        e = arr(model.skill_emb.weight[skill_id])
        std = stats.feature_std.astype(np.float64)
        mean = stats.feature_mean.astype(np.float64)
        Wx_n = Wx / std[None, :]
        self.w_in = np.ascontiguousarray(Wx_n, f32)
        self.b_in = (arr(model.inp.bias) + We @ e - Wx_n @ mean).astype(f32)
        self.blocks = [(arr(b.norm.weight).astype(f32), arr(b.norm.bias).astype(f32),
                        float(b.norm.eps), np.ascontiguousarray(arr(b.fc.weight), f32),
                        arr(b.fc.bias).astype(f32)) for b in model.blocks]
        self.out_norm = (arr(model.out_norm.weight).astype(f32), arr(model.out_norm.bias).astype(f32),
                         float(model.out_norm.eps))
        scale = np.tile(stats.action_std.astype(np.float64), cfg.chunk_size)
        shift = np.tile(stats.action_mean.astype(np.float64), cfg.chunk_size)
        self.w_out = np.ascontiguousarray(scale[:, None] * arr(model.head.weight), f32)
        self.b_out = (arr(model.head.bias) * scale + shift).astype(f32)

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """True for a GoalConditionedBC whose every Linear is a plain ``nn.Linear``."""
        if type(model) is not GoalConditionedBC:
            return False
        lins = [model.inp, model.head, *(b.fc for b in model.blocks)]
        return all(type(m) is nn.Linear for m in lins)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """``(FEATURE_DIM,)`` raw features -> ``(H, 7)`` un-normalised float32 actions."""
        x = np.asarray(features, np.float32)
        h = _gelu_tanh(self.w_in @ x + self.b_in)
        for lw, lb, eps, w, b in self.blocks:
            h = h + _gelu_tanh(w @ _layer_norm(h, lw, lb, eps) + b)
        ow, ob, eps = self.out_norm
        out = self.w_out @ _layer_norm(h, ow, ob, eps) + self.b_out
        return out.reshape(self.chunk_size, self.action_dim)


class PolicyOutputError(RuntimeError):
    """A learned skill's network produced a non-finite action (NaN/inf).

    Raised by :meth:`LearnedSkill.act` instead of sending any command: the executor records the
    call's outcome as ``"error"`` and the skill stops. Never turned into a zero action.
    """


def _check_finite_module(model: nn.Module, what: str) -> None:
    for n, p in list(model.named_parameters()) + list(model.named_buffers()):
        if (p.is_floating_point() or p.is_complex()) and not bool(torch.isfinite(p).all()):
            raise ValueError(f"{what}: parameter {n!r} holds NaN/inf; refusing a network that "
                             "cannot produce finite actions")


GRIPPER_LEVELS = np.array([-1.0, 0.0, 1.0])
"""Gripper commands a learned skill snaps to when its ``stats.json`` predates per-skill levels:
open, half open (40 mm), closed."""


class LearnedSkill:
    """A :class:`~robot_skills.execution.interfaces.SkillPolicy` backed by a trained network.

    Args:
        name: skill name (e.g. ``"place_on"``).
        model: module mapping ``(B, FEATURE_DIM)`` normalised features and ``(B,)`` skill ids to
            ``(B, H, 7)`` normalised actions; moved to CPU and set to eval mode.
        stats: normalisation statistics (``stats.json``).
        skill_id: index of this skill in the model's embedding table.
        spec: the skill's contract (parameters, termination...), if known.
        ensemble_m: ACT temporal-ensembling coefficient; None executes each chunk open loop and
            re-queries every ``H`` steps instead.
        action_limits: per-step bounds the output is clipped to.
        manifest: the parsed ``skill.yaml``, if loaded from disk.
        fast_path: evaluate per-step queries with :class:`NumpyChunkPredictor` when the model
            supports it (identical outputs to float32 rounding, ~10x lower latency).

    Raises:
        ValueError: the model's parameters or the statistics hold NaN/inf, or the model's chunk
            size (``model.cfg.chunk_size``) differs from ``stats.chunk_size``, or its input
            width (``model.cfg.feature_dim``) from ``stats.feature_dim``.
    """

    def __init__(self, name: str, model: nn.Module, stats: NormStats, skill_id: int = 0,
                 spec: SkillSpec | None = None, ensemble_m: float | None = 0.01,
                 action_limits: ActionLimits | None = None,
                 manifest: dict[str, Any] | None = None, fast_path: bool = True) -> None:
        self.name = name
        self.model = model.to("cpu").eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        _check_finite_module(self.model, f"skill {name}")
        for k in ("feature_mean", "feature_std", "action_mean", "action_std"):
            if not np.all(np.isfinite(getattr(stats, k))):
                raise ValueError(f"skill {name}: stats {k} holds NaN/inf")
        model_h = getattr(getattr(self.model, "cfg", None), "chunk_size", None)
        if model_h is not None and int(model_h) != int(stats.chunk_size):
            raise ValueError(f"skill {name}: the network predicts chunks of {model_h} actions but "
                             f"its stats were computed for chunk_size={stats.chunk_size}")
        model_f = getattr(getattr(self.model, "cfg", None), "feature_dim", None)
        if model_f is not None and int(model_f) != stats.feature_dim:
            raise ValueError(f"skill {name}: the network reads {model_f} features but its stats "
                             f"describe {stats.feature_dim} (object_sizes: "
                             f"{str(stats.object_sizes).lower()})")
        self.stats = stats
        self.skill_id = int(skill_id)
        self.spec = spec
        self.chunk_size = int(stats.chunk_size)
        self.ensemble_m = ensemble_m
        self.limits = action_limits or ActionLimits()
        self.manifest = manifest or {}
        # The gripper levels this skill's demonstrations used (NormStats.gripper_levels); None
        # = continuous, no snapping. Looked up by the skill's name (a standalone skill's id is 0
        # in statistics of the whole vocabulary), else by its embedding row.
        own = name if name in stats.skills else (
            stats.skills[self.skill_id] if 0 <= self.skill_id < len(stats.skills) else None)
        levels = stats.gripper_levels.get(own) if own is not None else None
        if levels is None:
            levels = GRIPPER_LEVELS.tolist()
        self.gripper_levels = np.array(levels, dtype=np.float64) if levels else None
        # a two-level skill that must release splits its levels at its calibrated threshold
        # (NormStats.release_thresholds), not at their midpoint
        self.release_threshold = (stats.release_thresholds.get(own)
                                  if self.gripper_levels is not None
                                  and len(self.gripper_levels) == 2 else None)
        self._ens = TemporalEnsembler(self.chunk_size, ensemble_m) if ensemble_m is not None else None
        self._args: tuple[str, ...] = ()
        self._world: Any = None
        self._offsets: tuple | None = None
        self._sizes: tuple | None = None   # per argument its half extents (stats.object_sizes)
        self._open_loop: np.ndarray | None = None
        self._open_idx = 0
        self._sid = torch.tensor([self.skill_id], dtype=torch.long)
        self._fmean = torch.from_numpy(stats.feature_mean)
        self._fstd = torch.from_numpy(stats.feature_std)
        self._amean = torch.from_numpy(stats.action_mean)
        self._astd = torch.from_numpy(stats.action_std)
        self._fast = (NumpyChunkPredictor(self.model, stats, self.skill_id)
                      if fast_path and NumpyChunkPredictor.supports(self.model) else None)

    @property
    def args(self) -> tuple[str, ...]:
        """Arguments of the current call."""
        return self._args

    def reset(self, args: Sequence[str], world: Any = None) -> None:
        """Start a call with entity ``args`` (parameter order); clears the ensemble buffer.

        Raises:
            ValueError: if the number of args disagrees with the contract's parameters, or a
                placement trained on release points (``stats.arg_offsets``), or any skill trained
                with object sizes (``stats.object_sizes``), is given a world without the
                geometry to compute them (no ``world_model``).
        """
        args = tuple(args)
        if self.spec is not None and len(args) != len(self.spec.parameters):
            raise ValueError(f"skill {self.name} takes {len(self.spec.parameters)} arguments "
                             f"({[p.name for p in self.spec.parameters]}), got {list(args)}")
        if (self.stats.arg_offsets and self.name in PLACE_VERBS
                and getattr(world, "world_model", None) is None):
            raise ValueError(f"skill {self.name} was trained on release points "
                             "(stats.json arg_offsets: true) and needs the task world's geometry "
                             f"to run; {type(world).__name__} has no world_model "
                             "(a robot_skills.perception.PoseWorldModel)")
        if self.stats.object_sizes and getattr(world, "world_model", None) is None:
            raise ValueError(f"skill {self.name} was trained with object sizes "
                             "(stats.json object_sizes: true) and needs the task world's "
                             f"geometry to run; {type(world).__name__} has no world_model "
                             "(a robot_skills.perception.PoseWorldModel)")
        self._args = args
        self._world = world
        self._offsets = None   # chosen from the call's first observation (see act)
        self._sizes = call_arg_sizes(world, args) if self.stats.object_sizes else None
        if self._ens is not None:
            self._ens.reset()
        self._open_loop = None
        self._open_idx = 0

    def predict_chunk(self, features: np.ndarray) -> np.ndarray:
        """Un-normalised action chunks for raw features.

        Args:
            features: ``(F,)`` or ``(B, F)`` float32, as ``skill_features``, with ``F`` the
                statistics' ``feature_dim`` (``FEATURE_DIM``, or ``SIZED_FEATURE_DIM`` for a
                library trained with object sizes).

        Returns:
            ``(H, 7)`` or ``(B, H, 7)`` float32, base frame, m / rad / gripper command.
        """
        x = torch.as_tensor(np.asarray(features, np.float32))
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.shape[-1] != self.stats.feature_dim:
            raise ValueError(f"skill {self.name}: features must have {self.stats.feature_dim} "
                             f"columns, got {tuple(x.shape)}")
        with torch.inference_mode():
            xn = (x - self._fmean) / self._fstd
            sid = self._sid.expand(x.shape[0])
            a = self.model(xn, sid) * self._astd + self._amean
        out = a.numpy()
        return out[0] if single else out

    def act(self, obs: Observation) -> Action:
        """Action for this step (base frame, see :class:`~robot_skills.robot.Action`).

        Raises:
            KeyError: if an argument entity is not observed.
            PolicyOutputError: the network's output (or the observation it was fed) holds NaN/inf;
                no action is produced (never a silent zero action).
        """
        if self._ens is None and self._open_loop is not None and self._open_idx < self.chunk_size:
            a = self._open_loop[self._open_idx]
            self._open_idx += 1
        else:
            if self._offsets is None:
                # a placement reads its target at the release point, chosen once from the
                # call's first observation as the executor records it with demonstrations; a
                # policy trained on data without offsets runs without them
                self._offsets = (call_arg_offsets(self._world, self.name, self._args, obs)
                                 if self.stats.arg_offsets else ())
            f = skill_features(obs, self._args, self._offsets, self._sizes)
            chunk = self._fast(f) if self._fast is not None else self.predict_chunk(f)
            if not np.all(np.isfinite(chunk)):
                self._open_loop = None
                cause = ("its input features hold NaN/inf (observation of "
                         f"{['robot', *self._args]})" if not np.all(np.isfinite(f))
                         else "the network diverged")
                raise PolicyOutputError(f"skill {self.name}{list(self._args)}: non-finite action "
                                        f"chunk ({cause}); stopping the skill")
            if self._ens is not None:
                a = self._ens.update(chunk).copy()
                # The gripper is a discrete decision: averaging it with older chunks (ACT's
                # ensemble weighs the oldest most) delays a release by several steps while the
                # arm already executes the post-release motion, carrying the object away.
                a[6] = chunk[0, 6]
            else:
                self._open_loop, self._open_idx = chunk, 1
                a = chunk[0]
        return Action.from_array(self._clip(a))

    def _clip(self, a: np.ndarray) -> np.ndarray:
        a = np.array(a, np.float64)
        if not np.all(np.isfinite(a)):
            raise PolicyOutputError(f"skill {self.name}{list(self._args)}: non-finite action "
                                    f"{a.tolist()}; stopping the skill")
        a[:3] = np.clip(a[:3], -self.limits.max_delta_pos, self.limits.max_delta_pos)
        a[3:6] = np.clip(a[3:6], -self.limits.max_delta_rot, self.limits.max_delta_rot)
        # The demonstrations command the gripper at discrete levels; a regressed value between
        # them would leave the jaws part-way, so snap to the nearest level this skill used.
        lv = self.gripper_levels
        if self.release_threshold is not None:
            a[6] = lv[0] if a[6] < self.release_threshold else lv[1]
        else:
            a[6] = lv[int(np.argmin(np.abs(lv - a[6])))] if lv is not None else np.clip(a[6], -1, 1)
        return a

    def __repr__(self) -> str:
        return f"LearnedSkill({self.name!r}, skill_id={self.skill_id}, H={self.chunk_size})"
