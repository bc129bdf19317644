"""Training samples for goal-conditioned behaviour cloning with action chunks (ACT-style).

For every step ``t`` of every selected skill segment ``[start, end)`` of every demo:

* ``features[t]`` = :func:`robot_skills.policies.features.skill_features` of the step's
  observation with the segment's arguments — computed here from whole arrays at once by
  :func:`features_from_arrays`, bit-identical to the per-observation function;
* ``skill_id`` = index of the segment's skill in the dataset's skill vocabulary;
* ``actions[t]`` = the chunk ``a_t .. a_{t+H-1}``, truncated at the segment's end and padded with
  the segment's last action, and ``mask[t]`` marking the real (non-padded) entries — as in ACT
  (Zhao et al., 2023, "Learning Fine-Grained Bimanual Manipulation with Low-Cost Hardware").

:class:`~robot_skills.policies.normalization.NormStats` (feature and action normalisation) is
computed here from the samples and saved beside each policy as ``stats.json``.

Every demonstration is checked (:func:`validate_demo`) as it is read, before it becomes a sample:
finite values, actions inside the action space, consistent lengths. A bad one stops the build with
:class:`DemoValidationError` naming the file and the demo, so training never fits garbage.

A "whole-task" mode (:meth:`SkillChunkDataset.whole_task`) builds the monolithic baseline's data:
one segment per demo spanning the whole demo, skill name = task id, args = given entities.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_skills.data.hdf5 import FORMAT, Demo, DemoReader, SkillSegment
from robot_skills.domain.verbs import MAX_SKILL_ARGS
from robot_skills.perception.placement import PLACE_VERBS
from robot_skills.perception.pose_predicates import quat_to_mat
from robot_skills.policies.features import (
    FEATURE_DIM,
    PROPRIO_DIM,
    SLOT_DIM,
    ArgOffsets,
    ArgSizes,
    check_arg_offsets,
    check_arg_sizes,
    feature_dim,
)
from robot_skills.policies.normalization import GRIPPER_DIM, NormStats
from robot_skills.robot import ACTION_DIM, ActionLimits


class DemoValidationError(ValueError):
    """A demonstration is unfit for training (non-finite or out-of-bounds values, inconsistent
    lengths). The message is ``"<file>:<demo>: <problem>"`` with the first offending step."""


DEMO_ACTION_TOLERANCE = 1e-3
"""Relative slack on the action bounds :func:`validate_demo` checks (float32 rounding of labels
written at exactly the limit). The scripted experts' labels reach |dpos| <= 0.02 m and
|drot| <= 0.08 rad per component (measured over 87 demos of libero_goal/spatial/object), against
bounds of 0.05 m / 0.5 rad."""

MAX_GRIPPER_LEVELS = 4
"""More distinct gripper commands than this in a skill's labels count as a continuous gripper."""


@dataclass(frozen=True)
class ValueBounds:
    """Magnitudes no sane demonstration reaches: a value beyond one is a unit or export bug (a
    position in mm, an uninitialised buffer, ``1e30``), refused by :func:`validate_demo` before it
    can wreck the normalisation statistics (one ``1e30`` action makes ``action_std`` ``~2e28``).

    These are *absurdity* bounds, far outside any physical value; the physical per-step action
    bounds are :class:`~robot_skills.robot.ActionLimits`. ``None`` disables a check.

    Attributes:
        max_abs_action: any action component, in the file's units (m, rad or normalised).
        max_abs_position: end-effector and object positions, m (base frame; a tabletop arm
            reaches about 1 m).
        max_abs_joint_pos: joint positions, rad.
        max_abs_joint_vel: joint velocities, rad/s.
        max_gripper_width: finger opening, m (``|width|`` bound).
        quat_norm_tolerance: ``| |q| - 1 |`` allowed for the end-effector and object
            quaternions (a zero or unnormalised quaternion gives a meaningless yaw feature).
        max_abs_other: any other float array (rewards, MuJoCo states, extra observations).
    """

    max_abs_action: float | None = 1e3
    max_abs_position: float | None = 10.0
    max_abs_joint_pos: float | None = 100.0
    max_abs_joint_vel: float | None = 1e3
    max_gripper_width: float | None = 1.0
    quat_norm_tolerance: float | None = 0.05
    max_abs_other: float | None = 1e6


DEFAULT_VALUE_BOUNDS = ValueBounds()
"""The bounds every builder uses unless given others."""
FEATURE_STD_FLOOR = 1e-3
"""Smallest feature standard deviation used for normalisation (a near-constant feature)."""
ACTION_STD_FLOOR = 1e-4
"""Smallest action standard deviation used for normalisation."""


def features_from_arrays(ee_pos: np.ndarray, ee_quat: np.ndarray, gripper_width: np.ndarray,
                         arg_poses: Sequence[np.ndarray],
                         arg_offsets: ArgOffsets | None = None,
                         arg_sizes: ArgSizes | None = None) -> np.ndarray:
    """Vectorised :func:`~robot_skills.policies.features.skill_features` over ``T`` steps.

    Args:
        ee_pos: ``(T, 3)`` end-effector positions, base frame, m.
        ee_quat: ``(T, 4)`` end-effector quaternions ``(w, x, y, z)``.
        gripper_width: ``(T,)`` or ``(T, 1)`` finger distance, m.
        arg_poses: one ``(T, 7)`` pose array ``[x, y, z, qw, qx, qy, qz]`` per skill argument.
        arg_offsets: per argument, None or a ``(3,)`` shift in its frame, m (the segment's
            :attr:`~robot_skills.execution.recording.SkillSegment.arg_offsets`).
        arg_sizes: None for the layout without sizes; otherwise per argument None or its
            ``(3,)`` half extents, m (the segment's
            :attr:`~robot_skills.execution.recording.SkillSegment.arg_sizes`).

    Returns:
        ``(T, FEATURE_DIM)`` float32 (``(T, SIZED_FEATURE_DIM)`` with ``arg_sizes``), row ``t``
        equal (bit for bit) to ``skill_features`` of step t with the same offsets and sizes.

    Raises:
        ValueError: on more than ``MAX_SKILL_ARGS`` arguments, mismatched shapes or malformed
            offsets or sizes.
    """
    if len(arg_poses) > MAX_SKILL_ARGS:
        raise ValueError(f"at most {MAX_SKILL_ARGS} skill arguments, got {len(arg_poses)}")
    names = [f"#{k}" for k in range(len(arg_poses))]
    offs = check_arg_offsets(names, arg_offsets)
    sizes = None if arg_sizes is None else check_arg_sizes(names, arg_sizes)
    ee = np.asarray(ee_pos, np.float64)
    q = np.asarray(ee_quat, np.float64)
    T = ee.shape[0]
    if ee.shape != (T, 3) or q.shape != (T, 4):
        raise ValueError(f"ee_pos must be (T, 3) and ee_quat (T, 4), got {ee.shape}, {q.shape}")
    g = np.asarray(gripper_width, np.float64).reshape(-1)
    if g.shape != (T,):
        raise ValueError(f"gripper_width must have {T} entries, got shape {np.shape(gripper_width)}")
    f = np.zeros((T, feature_dim(sizes is not None)), np.float32)
    f[:, 0:3] = ee
    f[:, 3:7] = np.where(q[:, :1] >= 0, q, -q)
    f[:, 7] = g
    for k, pose in enumerate(arg_poses):
        pose = np.asarray(pose, np.float64)
        if pose.shape != (T, 7):
            raise ValueError(f"argument {k} pose must be ({T}, 7), got {pose.shape}")
        w, x, y, z = pose[:, 3], pose[:, 4], pose[:, 5], pose[:, 6]
        yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        o = PROPRIO_DIM + SLOT_DIM * k
        p = pose[:, :3]
        if offs[k] is not None:   # row by row, as skill_features computes it (bit for bit)
            p = np.stack([row[:3] + quat_to_mat(row[3:7]) @ offs[k] for row in pose]) \
                if T else p
        f[:, o:o + 3] = p - ee
        f[:, o + 3] = np.sin(yaw)
        f[:, o + 4] = np.cos(yaw)
        f[:, o + 5] = 1.0
        if sizes is not None and sizes[k] is not None:
            f[:, FEATURE_DIM + 3 * k:FEATURE_DIM + 3 * k + 3] = sizes[k]
    return f


def release_offsets_used(segments: Iterable[tuple[str, str, Sequence[str], Sequence]]) -> bool:
    """Whether training data's placements read their target at the release point.

    The executor records each placement's argument offsets
    (:attr:`~robot_skills.execution.recording.SkillSegment.arg_offsets`,
    :func:`robot_skills.perception.placement.release_offsets`); files written before it did have
    none. A policy must be run the way its data was recorded, so the statistics say which
    (:attr:`~robot_skills.policies.normalization.NormStats.arg_offsets`).

    Args:
        segments: ``(file, skill, args, arg_offsets)`` of every segment trained on.

    Returns:
        True when the placements carry offsets, False when none does (or there is no placement).

    Raises:
        ValueError: some files' placements carry offsets and other files' carry none (the
            message names both kinds): features of the same skill would mean two things.
    """
    with_, without = set(), set()
    for f, skill, args, offs in segments:
        if skill in PLACE_VERBS and len(args) == 2:
            (with_ if any(o is not None for o in offs) else without).add(str(f))
    old = sorted(without - with_)
    if with_ and old:
        raise ValueError(f"placement segments of {old} carry no release-point offsets but those of "
                         f"{sorted(with_)} do (recorded before and after "
                         "robot_skills.perception.placement): recollect the older files, or train "
                         "on one kind only")
    return bool(with_)


def check_sizes_recorded(segments: Iterable[tuple[str, str, Sequence[str], Sequence]]) -> None:
    """Refuse files recorded before segments carried their arguments' sizes.

    Training with ``training.object_sizes`` reads each segment's
    :attr:`~robot_skills.execution.recording.SkillSegment.arg_sizes`; a file none of whose
    segments has any was written before the executor recorded them, and its features would read
    zeros where the skill sees real sizes at run time.

    Args:
        segments: ``(file, skill, args, arg_sizes)`` of every segment trained on.

    Raises:
        ValueError: naming the files without sizes.
    """
    with_, seen = set(), set()
    for f, _skill, args, sizes in segments:
        if args:
            seen.add(str(f))
            if any(v is not None for v in sizes):
                with_.add(str(f))
    old = sorted(seen - with_)
    if old:
        raise ValueError(f"{old}: no skill segment records its arguments' sizes (SkillSegment."
                         "arg_sizes; recorded since robot_skills.perception.placement."
                         "call_arg_sizes): recollect them, or train without "
                         "training.object_sizes")


def action_chunks(actions: np.ndarray, start: int, end: int, chunk_size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Action chunks for steps ``start..end-1`` of one segment, padded with the segment's last action.

    Args:
        actions: ``(T, 7)`` the demo's actions.
        start, end: the segment ``[start, end)``.
        chunk_size: ``H``.

    Returns:
        ``(end-start, H, 7)`` float32 chunks and ``(end-start, H)`` bool validity mask.
    """
    seg = np.asarray(actions[start:end], np.float32)
    n = seg.shape[0]
    idx = np.arange(n)[:, None] + np.arange(chunk_size)[None, :]
    mask = idx < n
    return seg[np.minimum(idx, n - 1)], mask


def floor_std(s: np.ndarray, floor: float) -> np.ndarray:
    """Standard deviations as used for normalisation: a (near-)constant dimension
    (``s < 1e-6``) gets 1, the others at least ``floor``. ``(D,)`` float64 in, float32 out."""
    s = np.asarray(s, np.float64)
    return np.where(s < 1e-6, 1.0, np.maximum(s, floor)).astype(np.float32)


def _std(x: np.ndarray, floor: float) -> np.ndarray:
    return floor_std(x.std(axis=0), floor)



def skill_vocabulary(found: Sequence[str], skill_vocab: Sequence[str] | None,
                     skills: Sequence[str] | None, paths: Sequence[str | Path]
                     ) -> tuple[list[str], dict[str, int]]:
    """The skill vocabulary of a dataset and each skill's id.

    Args:
        found: the skill name of every sample piece (any order, repeats allowed).
        skill_vocab: a fixed vocabulary (e.g. a library's), or ``None`` for the sorted set found.
        skills / paths: what was asked for, for the error messages.

    Returns:
        ``(vocab, {skill: index in vocab})``.

    Raises:
        ValueError: no samples at all, or a skill found that is not in ``skill_vocab``.
    """
    if not found:
        raise ValueError(f"no samples for skills {skills} in {[str(p) for p in paths]}")
    names = sorted(set(found))
    vocab = list(skill_vocab) if skill_vocab is not None else names
    unknown = [s for s in names if s not in vocab]
    if unknown:
        raise ValueError(f"skills {unknown} are not in the vocabulary {vocab}")
    return vocab, {s: i for i, s in enumerate(vocab)}

class SkillChunkDataset(torch.utils.data.Dataset):
    """In-memory (features, skill id, action chunk, mask) samples for goal-conditioned BC.

    Build with :meth:`from_hdf5` or :meth:`whole_task`. Items are dicts of tensors:
    ``features (F,)`` float32 (raw, un-normalised), ``skill_id ()`` int64, ``actions (H, 7)`` float32,
    ``mask (H,)`` bool. For fast training use :meth:`tensors` (everything normalised, stacked).

    Attributes:
        features: ``(N, FEATURE_DIM)`` float32 (``(N, SIZED_FEATURE_DIM)`` when
            :attr:`object_sizes`).
        skill_ids: ``(N,)`` int64.
        actions: ``(N, H, 7)`` float32.
        mask: ``(N, H)`` bool.
        episode_ids: ``(N,)`` int64, an id per (file, demo), for demo-level splits.
        skills: vocabulary; ``skills[skill_id]`` is the skill's name.
        chunk_size: ``H``.
    """

    def __init__(self, features: np.ndarray, skill_ids: np.ndarray, actions: np.ndarray,
                 mask: np.ndarray, episode_ids: np.ndarray, skills: Sequence[str],
                 chunk_size: int, sources: Sequence[str] = (), arg_offsets: bool = False,
                 object_sizes: bool = False) -> None:
        n = features.shape[0]
        if not (skill_ids.shape == (n,) and actions.shape == (n, chunk_size, ACTION_DIM)
                and mask.shape == (n, chunk_size) and episode_ids.shape == (n,)
                and features.shape == (n, feature_dim(object_sizes))):
            raise ValueError("inconsistent sample array shapes: "
                             f"features {features.shape}, skill_ids {skill_ids.shape}, "
                             f"actions {actions.shape}, mask {mask.shape}")
        self.features = features
        self.skill_ids = skill_ids
        self.actions = actions
        self.mask = mask
        self.episode_ids = episode_ids
        self.skills = list(skills)
        self.chunk_size = int(chunk_size)
        self.sources = list(sources)
        self.arg_offsets = bool(arg_offsets)
        self.object_sizes = bool(object_sizes)

    @property
    def feature_dim(self) -> int:
        """Columns of :attr:`features` (:func:`~robot_skills.policies.features.feature_dim`)."""
        return feature_dim(self.object_sizes)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"features": torch.from_numpy(self.features[i]),
                "skill_id": torch.tensor(self.skill_ids[i]),
                "actions": torch.from_numpy(self.actions[i]),
                "mask": torch.from_numpy(self.mask[i])}

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_hdf5(cls, paths: str | os.PathLike | Sequence[str | os.PathLike],
                  skills: Sequence[str] | None = None, chunk_size: int = 10,
                  skill_vocab: Sequence[str] | None = None,
                  successful_only: bool = True,
                  action_limits: ActionLimits | None = None,
                  value_bounds: ValueBounds | None = None,
                  arg_offsets: bool = True, object_sizes: bool = False) -> SkillChunkDataset:
        """Collect samples of ``skills`` (all skills if None) from the skill segments of HDF5 files.

        Args:
            paths: one or more demonstration files (:mod:`robot_skills.data.hdf5` layout).
            skills: skill names to keep; None keeps every skill found.
            chunk_size: action chunk length ``H`` (>= 1).
            skill_vocab: fixes the skill -> id mapping (e.g. the base policy's); default: sorted
                names of the skills found.
            successful_only: skip segments whose ``success`` is False.
            action_limits: the action space's per-step bounds every demo used is checked
                against (:func:`validate_demo`; default :class:`ActionLimits`).
            value_bounds: absurd-magnitude bounds (default :data:`DEFAULT_VALUE_BOUNDS`).
            arg_offsets: read each segment's recorded argument offsets (placements' release
                points); False ignores them (features of the arguments' own poses, and
                :attr:`arg_offsets` False).
            object_sizes: append each segment's recorded argument sizes to its features
                (:attr:`~robot_skills.execution.recording.SkillSegment.arg_sizes`, the
                ``(SIZED_FEATURE_DIM,)`` layout); False: the layout without sizes.

        Raises:
            DemoValidationError: a demo used lacks a required key, holds non-finite or absurd
                values, actions outside the action space, arrays of inconsistent lengths or
                malformed skill segments (the message names file and demo).
            ValueError: if no samples are found, chunk_size < 1, a skill is not in skill_vocab,
                or files with and without release-point offsets are mixed
                (:func:`release_offsets_used`), or ``object_sizes`` and a file recorded without
                sizes (:func:`check_sizes_recorded`).
            KeyError: if a segment argument is not among the demo's object poses.
        """
        paths = _as_paths(paths)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        want = None if skills is None else set(skills)
        pieces: list[tuple[np.ndarray, str, np.ndarray, np.ndarray, int]] = []
        used: list[tuple[str, str, tuple[str, ...], tuple]] = []
        sized: list[tuple[str, str, tuple[str, ...], tuple]] = []
        ep = 0
        for p in paths:
            with DemoReader(p) as r:
                for name in r.demos:
                    segs = [s for s in read_segments(r, name, p)
                            if (want is None or s.skill in want)
                            and (s.success or not successful_only)]
                    if not segs:
                        continue
                    demo = load_checked(r, name, p)
                    validate_demo(demo, p, _file_limits(r, action_limits), r.num_samples(name),
                                  bounds=value_bounds)
                    for s in segs:
                        if not arg_offsets:
                            s = dataclasses.replace(s, arg_offsets=())
                        used.append((str(p), s.skill, s.args, s.arg_offsets))
                        sized.append((str(p), s.skill, s.args, s.arg_sizes))
                        f = _segment_features(demo, s.start, s.end, s.args, p, s.arg_offsets,
                                              s.arg_sizes if object_sizes else None)
                        a, m = action_chunks(demo.actions, s.start, s.end, chunk_size)
                        pieces.append((f, s.skill, a, m, ep))
                    ep += 1
        if object_sizes:
            check_sizes_recorded(sized)
        return cls._assemble(pieces, skill_vocab, chunk_size, paths, skills,
                             release_offsets_used(used), object_sizes)

    @classmethod
    def whole_task(cls, paths: str | os.PathLike | Sequence[str | os.PathLike], task_id: str,
                   args: Sequence[str], chunk_size: int = 10, task: str | None = None,
                   action_limits: ActionLimits | None = None,
                   value_bounds: ValueBounds | None = None) -> SkillChunkDataset:
        """Monolithic-baseline samples: each whole demo is one segment of "skill" ``task_id``.

        Args:
            paths: demonstration files.
            task_id: the name used as the single skill (vocabulary ``[task_id]``).
            args: entities whose poses condition the policy (the task's ``obj_of_interest``),
                at most ``MAX_SKILL_ARGS``.
            chunk_size: ``H``.
            task: keep only demos whose ``task`` attribute equals this or whose file stem/basename
                does; None keeps all demos.
            action_limits: bounds every demo used is checked against (see :meth:`from_hdf5`).
            value_bounds: absurd-magnitude bounds (see :meth:`from_hdf5`).

        Raises:
            DemoValidationError: a demo used is unfit (see :func:`validate_demo`).
            ValueError: too many args, or no matching demos.
            KeyError: an arg missing from a demo's object poses.
        """
        if len(args) > MAX_SKILL_ARGS:
            raise ValueError(f"the policy sees at most {MAX_SKILL_ARGS} entities, got {list(args)}; "
                             "pass the task's main objects only")
        paths = _as_paths(paths)
        pieces = []
        ep = 0
        for p in paths:
            with DemoReader(p) as r:
                for name in r.demos:
                    if task is not None and not _task_matches(r.demo_attrs(name).get("task"), task):
                        continue
                    demo = load_checked(r, name, p)
                    validate_demo(demo, p, _file_limits(r, action_limits), r.num_samples(name),
                                  bounds=value_bounds)
                    f = _segment_features(demo, 0, len(demo), tuple(args), p)
                    a, m = action_chunks(demo.actions, 0, len(demo), chunk_size)
                    pieces.append((f, task_id, a, m, ep))
                    ep += 1
        return cls._assemble(pieces, [task_id], chunk_size, paths, [task_id])

    @classmethod
    def _assemble(cls, pieces, skill_vocab, chunk_size, paths, skills,
                  arg_offsets: bool = False, object_sizes: bool = False) -> SkillChunkDataset:
        vocab, ids = skill_vocabulary([pc[1] for pc in pieces], skill_vocab, skills, paths)
        feats = np.concatenate([pc[0] for pc in pieces])
        sids = np.concatenate([np.full(len(pc[0]), ids[pc[1]], np.int64) for pc in pieces])
        acts = np.concatenate([pc[2] for pc in pieces])
        mask = np.concatenate([pc[3] for pc in pieces])
        eps = np.concatenate([np.full(len(pc[0]), pc[4], np.int64) for pc in pieces])
        return cls(feats, sids, acts, mask, eps, vocab, chunk_size, [str(p) for p in paths],
                   arg_offsets, object_sizes)

    # ------------------------------------------------------------------ views
    def select(self, index: np.ndarray) -> SkillChunkDataset:
        """A new dataset of the samples at ``index`` (int array or bool mask); same vocabulary."""
        return SkillChunkDataset(self.features[index], self.skill_ids[index], self.actions[index],
                                 self.mask[index], self.episode_ids[index], self.skills,
                                 self.chunk_size, self.sources, self.arg_offsets,
                                 self.object_sizes)

    def for_skill(self, skill: str) -> SkillChunkDataset:
        """Samples of one skill only.

        Raises:
            KeyError: if ``skill`` is not in the vocabulary.
        """
        if skill not in self.skills:
            raise KeyError(f"skill {skill!r} not in dataset vocabulary {self.skills}")
        return self.select(self.skill_ids == self.skills.index(skill))

    def split_by_episode(self, val_fraction: float = 0.1, seed: int = 0
                         ) -> tuple[SkillChunkDataset, SkillChunkDataset]:
        """Split into (train, val) by whole demos, so validation sees unseen episodes."""
        eps = np.unique(self.episode_ids)
        rng = np.random.default_rng(seed)
        n_val = max(1, round(len(eps) * val_fraction)) if len(eps) > 1 else 0
        val_eps = rng.choice(eps, size=n_val, replace=False)
        is_val = np.isin(self.episode_ids, val_eps)
        return self.select(~is_val), self.select(is_val)

    def compute_stats(self) -> NormStats:
        """Feature mean/std and action mean/std over all samples (gripper dim: mean 0, std 1).

        Action statistics use each sample's first action ``a_t`` (every step counted once).
        """
        a0 = self.actions[:, 0, :].astype(np.float64)
        am = a0.mean(axis=0).astype(np.float32)
        astd = _std(a0, ACTION_STD_FLOOR)
        am[GRIPPER_DIM], astd[GRIPPER_DIM] = 0.0, 1.0
        levels: dict[str, list[float]] = {}
        for sid, name in enumerate(self.skills):
            g = np.unique(np.round(a0[self.skill_ids == sid, GRIPPER_DIM], 6))
            if len(g):
                levels[name] = g.tolist() if len(g) <= MAX_GRIPPER_LEVELS else []
        return NormStats(self.features.mean(axis=0, dtype=np.float64).astype(np.float32),
                         _std(self.features.astype(np.float64), FEATURE_STD_FLOOR), am, astd,
                         list(self.skills), self.chunk_size, len(self), levels,
                         self.arg_offsets, self.object_sizes)

    def tensors(self, stats: NormStats, device: torch.device | str = "cpu"
                ) -> dict[str, torch.Tensor]:
        """All samples normalised with ``stats``, as stacked tensors on ``device``.

        Returns:
            ``features (N, F)`` float32, ``skill_id (N,)`` int64, ``actions (N, H, 7)`` float32,
            ``mask (N, H)`` float32 (1 = real, 0 = padding).
        """
        return {"features": torch.from_numpy(stats.normalize_features(self.features)).to(device),
                "skill_id": torch.from_numpy(self.skill_ids).to(device),
                "actions": torch.from_numpy(stats.normalize_actions(self.actions)).to(device),
                "mask": torch.from_numpy(self.mask.astype(np.float32)).to(device)}


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


NORMALISED_ACTION_LIMITS = ActionLimits(1.0, 1.0)
"""Bounds of a foreign (robomimic / LIBERO) dataset's actions: robosuite's OSC controller takes
each delta normalised to ``[-1, 1]`` (scaled to 5 cm / 0.5 rad inside the controller)."""


def _file_limits(reader: Any, given: ActionLimits | None) -> ActionLimits | None:
    """The bounds a file's actions are checked against: ``given``; else metres/radians for this
    project's own files (``format`` attribute) and :data:`NORMALISED_ACTION_LIMITS` for others
    and for files whose ``action_space`` attribute is ``"normalized"`` (e.g. imported from a
    LeRobot port of LIBERO, :mod:`robot_skills.data.lerobot`)."""
    if given is not None:
        return given
    attrs = reader.attrs
    if attrs.get("format") == FORMAT and attrs.get("action_space", "metric") != "normalized":
        return None
    return NORMALISED_ACTION_LIMITS


def validate_demo(demo: Demo, source: str | os.PathLike = "<demo>",
                  limits: ActionLimits | None = None, num_samples: int | None = None,
                  tolerance: float = DEMO_ACTION_TOLERANCE,
                  bounds: ValueBounds | None = None) -> None:
    """Check one demonstration before it becomes training data.

    Checks: at least one step; ``num_samples`` (the file's declared length), rewards, dones,
    states and every observation / object-pose array have ``T = len(actions)`` rows; every action
    and observation value is finite; each action is physically possible for the action space:
    ``|dpos_i| <= max_delta_pos``, ``|drot_i| <= max_delta_rot`` per component (m, rad per
    control step, each with ``tolerance`` relative slack), gripper command in ``[-1, 1]``; no
    value is absurd (:class:`ValueBounds`: positions, joints, gripper width, quaternion norms,
    any other float array).

    Args:
        demo: the loaded demonstration.
        source: the file it came from (for messages).
        limits: the robot's per-step bounds (default :class:`~robot_skills.robot.ActionLimits`:
            5 cm, 0.5 rad).
        num_samples: the length the file declares (``num_samples`` attribute), if any.
        tolerance: relative slack on the bounds.
        bounds: absurd-magnitude bounds (default :data:`DEFAULT_VALUE_BOUNDS`).

    Raises:
        DemoValidationError: naming ``source``, the demo, the array and the first bad step.
    """
    lim = limits or ActionLimits()
    where = f"{source}:{demo.name}"
    a = np.asarray(demo.actions)
    T = len(demo)
    if T < 1:
        raise DemoValidationError(f"{where}: empty demonstration (0 steps)")
    if num_samples is not None and int(num_samples) != T:
        raise DemoValidationError(f"{where}: declares num_samples={num_samples} but has {T} "
                                  "actions")
    arrays: dict[str, np.ndarray] = {"rewards": np.asarray(demo.rewards),
                                     "dones": np.asarray(demo.dones)}
    if demo.states is not None:
        arrays["states"] = np.asarray(demo.states)
    arrays.update({f"obs/{k}": np.asarray(v) for k, v in demo.obs.items()})
    arrays.update({f"obs/object_poses/{k}": np.asarray(v) for k, v in demo.object_poses.items()})
    for k, v in arrays.items():
        if v.ndim == 0 or v.shape[0] != T:
            raise DemoValidationError(f"{where}: {k} has shape {v.shape}, expected {T} rows "
                                      "(one per action)")
    for k, v in {"actions": a, **arrays}.items():
        if v.dtype.kind in "fc":
            bad = ~np.isfinite(v)
            if bad.any():
                idx = _first_bad(bad)
                raise DemoValidationError(f"{where}: {k}{list(idx)} = {v[idx]} is not finite "
                                          f"({int(bad.sum())} non-finite value(s))")
    for name, cols, bound, unit in (("translation", slice(0, 3), lim.max_delta_pos, "m"),
                                    ("rotation", slice(3, 6), lim.max_delta_rot, "rad")):
        part = np.abs(a[:, cols].astype(np.float64))
        over = part > bound * (1.0 + tolerance)
        if over.any():
            t, j = _first_bad(over)
            raise DemoValidationError(
                f"{where}: actions[{t}, {cols.start + j}] = {a[t, cols.start + j]:.6g} {unit}: "
                f"{name} per step exceeds the action space's bound of {bound:g} {unit} "
                f"({int(over.any(axis=1).sum())} step(s) out of bounds)")
    g = a[:, GRIPPER_DIM].astype(np.float64)
    over = np.abs(g) > 1.0 + tolerance
    if over.any():
        t = int(np.argmax(over))
        raise DemoValidationError(f"{where}: actions[{t}, {GRIPPER_DIM}] = {g[t]:.6g}: gripper "
                                  f"command outside [-1, 1] ({int(over.sum())} step(s))")
    _check_absurd(where, a, arrays, bounds or DEFAULT_VALUE_BOUNDS)


def _check_absurd(where: str, actions: np.ndarray, arrays: dict[str, np.ndarray],
                  b: ValueBounds) -> None:
    """Refuse values beyond :class:`ValueBounds` (all arrays already finite, shapes checked)."""

    def bound(name: str, v: np.ndarray, limit: float | None, field: str, unit: str) -> None:
        if limit is None or v.dtype.kind not in "fiu" or v.size == 0:
            return
        over = np.abs(v.astype(np.float64)) > limit
        if over.any():
            idx = _first_bad(over)
            raise DemoValidationError(
                f"{where}: {name}{list(idx)} = {v[idx]:.6g}{unit} is absurd: beyond the bound "
                f"|x| <= {limit:g}{unit} (ValueBounds.{field}; {int(over.sum())} value(s)); "
                "a unit or export error?")

    def unit_quat(name: str, q: np.ndarray) -> None:
        if b.quat_norm_tolerance is None:
            return
        n = np.linalg.norm(q.astype(np.float64), axis=-1)
        bad = np.abs(n - 1.0) > b.quat_norm_tolerance
        if bad.any():
            t = int(np.argmax(bad))
            raise DemoValidationError(
                f"{where}: {name}[{t}] has norm {n[t]:.6g}, not a unit quaternion (allowed "
                f"|norm - 1| <= {b.quat_norm_tolerance:g}, ValueBounds.quat_norm_tolerance; "
                f"{int(bad.sum())} step(s))")

    bound("actions", actions, b.max_abs_action, "max_abs_action", "")
    for k, v in arrays.items():
        if k == "obs/ee_pos":
            bound(k, v, b.max_abs_position, "max_abs_position", " m")
        elif k == "obs/ee_quat":
            unit_quat(k, v)
        elif k.startswith("obs/object_poses/") and v.ndim == 2 and v.shape[1] == 7:
            bound(k, v[:, :3], b.max_abs_position, "max_abs_position", " m")
            unit_quat(k, v[:, 3:7])
        elif k == "obs/joint_pos":
            bound(k, v, b.max_abs_joint_pos, "max_abs_joint_pos", " rad")
        elif k == "obs/joint_vel":
            bound(k, v, b.max_abs_joint_vel, "max_abs_joint_vel", " rad/s")
        elif k == "obs/gripper_width":
            bound(k, v, b.max_gripper_width, "max_gripper_width", " m")
        elif v.dtype.kind == "f":
            bound(k, v, b.max_abs_other, "max_abs_other", "")


def validate_demos(paths: str | os.PathLike | Sequence[str | os.PathLike],
                   limits: ActionLimits | None = None,
                   tolerance: float = DEMO_ACTION_TOLERANCE,
                   bounds: ValueBounds | None = None) -> int:
    """:func:`validate_demo` on every demonstration of every file (one demo in memory at a time).

    Args:
        paths: demonstration files.
        limits: per-step action bounds; None: per file, as the dataset builders choose them
            (metres/radians for this project's files, normalised ``[-1, 1]`` for foreign ones).
        tolerance: relative slack on the action bounds.
        bounds: absurd-magnitude bounds (default :data:`DEFAULT_VALUE_BOUNDS`).

    Returns:
        The number of demonstrations checked.

    Raises:
        DemoValidationError: the first bad demo (file and demo named), including a demo that
            lacks a required key or has malformed skill segments. FileNotFoundError /
            ValueError: unreadable files, as :class:`~robot_skills.data.hdf5.DemoReader`.
    """
    n = 0
    for p in _as_paths(paths):
        with DemoReader(p) as r:
            for name in r.demos:
                read_segments(r, name, p)
                validate_demo(load_checked(r, name, p), p, _file_limits(r, limits),
                              r.num_samples(name), tolerance, bounds)
                n += 1
    return n


def _wrap_read_error(e: Exception, path: str | os.PathLike, name: str) -> DemoValidationError:
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    where = f"{path}:{name}"
    if where not in msg:
        msg = f"{where}: {msg}"
    return DemoValidationError(msg)


def load_checked(reader: DemoReader, name: str, path: str | os.PathLike) -> Demo:
    """``reader.load(name)``, with a missing key (actions, obs group, end-effector pose), a
    wrong shape or an unreadable dataset raised as :class:`DemoValidationError` naming ``path``
    and the demo.

    Raises:
        DemoValidationError: as above (the original error chained).
    """
    try:
        return reader.load(name)
    except (KeyError, ValueError, OSError, TypeError) as e:
        raise _wrap_read_error(e, path, name) from e


def read_segments(reader: DemoReader, name: str, path: str | os.PathLike) -> list[SkillSegment]:
    """``reader.segments(name)``, with malformed JSON or a segment outside the demo raised as
    :class:`DemoValidationError` naming ``path`` and the demo.

    Raises:
        DemoValidationError: as above (the original error chained).
    """
    try:
        return reader.segments(name)
    except (KeyError, ValueError, OSError, TypeError) as e:
        raise _wrap_read_error(e, path, name) from e


def _as_paths(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = [Path(p) for p in paths]
    if not out:
        raise ValueError("no demonstration files given")
    return out


def _task_matches(value: Any, task: str) -> bool:
    if value is None:
        return False
    v = str(value)
    return v == task or Path(v).stem == task or Path(v).name == task


def _segment_features(demo: Demo, start: int, end: int, args: Sequence[str], path,
                      arg_offsets: ArgOffsets | None = None,
                      arg_sizes: ArgSizes | None = None) -> np.ndarray:
    for a in args:
        if a not in demo.object_poses:
            raise KeyError(f"{path}:{demo.name}: skill argument {a!r} is not among the recorded "
                           f"entities {sorted(demo.object_poses)}")
    sl = slice(start, end)
    return features_from_arrays(demo.obs["ee_pos"][sl], demo.obs["ee_quat"][sl],
                                demo.obs["gripper_width"][sl],
                                [demo.object_poses[a][sl] for a in args], arg_offsets,
                                arg_sizes)


def write_synthetic_demos(path: str | os.PathLike, num_demos: int = 20, steps_per_skill: int = 40,
                          seed: int = 0, gain: float = 0.25, task: str = "synthetic_task"
                          ) -> Path:
    """Write a toy demonstration file whose actions are a known function of the skill features.

    For tests and throughput benchmarks only (no physics). Each demo has two segments on random
    objects ``cube_1`` / ``plate_1`` / ``bowl_1`` (table top, random yaw):

    * ``pick(obj)``: ``dpos = clip(gain * (p_obj - p_ee), ±0.05)``, ``drz = 0.1 * sin(yaw_obj)``,
      gripper ``-1`` until within 2 cm, then ``+1``;
    * ``place_on(obj, target)``: the object moves with the end-effector; ``dpos = clip(gain *
      (p_target + [0, 0, 0.05] - p_ee), ±0.05)``, gripper ``+1`` until within 2 cm, then ``-1``.

    The end-effector integrates ``dpos`` each step. Returns ``path``.
    """
    from robot_skills.data.hdf5 import DemoWriter, SkillSegment

    rng = np.random.default_rng(seed)
    names = ["cube_1", "plate_1", "bowl_1"]

    def quat_yaw(y: float) -> np.ndarray:
        return np.array([np.cos(y / 2), 0.0, 0.0, np.sin(y / 2)])

    with DemoWriter(path, env_args={"env_name": "synthetic", "gain": gain}) as w:
        for d in range(num_demos):
            obj, target = rng.choice(names, size=2, replace=False)
            poses = {n: np.concatenate([[rng.uniform(0.3, 0.7), rng.uniform(-0.3, 0.3), 0.02],
                                        quat_yaw(rng.uniform(-np.pi, np.pi))]) for n in names}
            ee = np.array([0.45, 0.0, 0.35]) + rng.normal(0, 0.03, 3)
            T = 2 * steps_per_skill
            rec = {k: [] for k in ("ee_pos", "ee_quat", "gripper_width", "joint_pos")}
            rec_p: dict[str, list[np.ndarray]] = {n: [] for n in names}
            actions = np.zeros((T, ACTION_DIM), np.float32)
            for t in range(T):
                placing = t >= steps_per_skill
                if placing:
                    poses[obj][:3] = ee
                rec["ee_pos"].append(ee.copy())
                rec["ee_quat"].append(np.array([0.0, 1.0, 0.0, 0.0]))
                rec["gripper_width"].append(0.02 if placing else 0.08)
                rec["joint_pos"].append(np.zeros(7))
                for n in names:
                    rec_p[n].append(poses[n].copy())
                goal = poses[target][:3] + np.array([0, 0, 0.05]) if placing else poses[obj][:3]
                err = goal - ee
                a = np.zeros(ACTION_DIM)
                a[:3] = np.clip(gain * err, -0.05, 0.05)
                if not placing:
                    from robot_skills.policies.features import yaw_of_quat
                    a[5] = 0.1 * np.sin(yaw_of_quat(poses[obj][3:7]))
                near = np.linalg.norm(err) < 0.02
                a[6] = (1.0 if near else -1.0) if not placing else (-1.0 if near else 1.0)
                actions[t] = a
                ee = ee + a[:3]
            obs = {k: np.asarray(v) for k, v in rec.items()}
            w.add_demo_arrays(obs, {n: np.asarray(v) for n, v in rec_p.items()}, actions,
                              skill_segments=[SkillSegment(0, steps_per_skill, "pick", (obj,)),
                                              SkillSegment(steps_per_skill, T, "place_on",
                                                           (obj, target))],
                              attrs={"task": task, "seed": int(seed * 100000 + d),
                                     "language": f"put the {obj} on the {target}"})
    return Path(path)
