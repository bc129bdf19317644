"""Normalisation statistics of a policy, saved beside it as ``stats.json``.

Feature and action normalisation (mean / std); the gripper action dimension is left as is, since
it is already a ``[-1, 1]`` command. Computed from training samples by
:meth:`robot_skills.data.dataset.SkillChunkDataset.compute_stats`; read by every learned policy.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_skills.policies.features import feature_dim
from robot_skills.robot import ACTION_DIM
from robot_skills.utils.atomic import atomic_write_json
from robot_skills.utils.files import read_bounded

MAX_STATS_BYTES = 1 << 20
"""Largest ``stats.json`` :meth:`NormStats.load` reads by default (1 MiB)."""
GRIPPER_DIM = ACTION_DIM - 1
"""Index of the gripper command in an action vector (not normalised)."""


@dataclass
class NormStats:
    """Normalisation statistics saved beside a policy as ``stats.json``.

    ``x_norm = (x - feature_mean) / feature_std``; ``a_norm = (a - action_mean) / action_std`` with
    the gripper dimension's mean 0 and std 1 (left as is).

    Attributes:
        feature_mean, feature_std: ``(FEATURE_DIM,)`` float32 (``(SIZED_FEATURE_DIM,)`` when
            :attr:`object_sizes`).
        action_mean, action_std: ``(7,)`` float32.
        skills: the skill vocabulary (skill id = index).
        chunk_size: ``H`` the policy was trained with.
        num_samples: samples the statistics were computed from.
        gripper_levels: skill -> the distinct gripper commands of its demonstrations, sorted
            (e.g. ``[-1.0, 1.0]`` for a skill that only opens and closes); ``[]`` when they vary
            continuously. A learned skill snaps its gripper output to these levels, so a
            regressed value between "open" and "closed" cannot become a level the skill never
            used (a half-open jaw that keeps squeezing a bowl it should release).
        arg_offsets: whether its placements' features read the target at the release point
            (:func:`robot_skills.perception.placement.release_offsets`, recorded with the
            demonstrations); a learned skill applies the offsets at run time only then, so a
            policy trained on older data runs as it was trained.
        release_thresholds: skill -> the gripper value below which it releases (two-level skills
            that must end with the gripper open, ``training.calibrate_release``;
            :func:`calibrate_release_threshold`); a skill without one splits its two levels at
            their midpoint.
        object_sizes: whether its features carry each argument's half extents
            (``training.object_sizes``; :mod:`robot_skills.policies.features`); a learned skill
            then reads them from the task world's geometry.
    """

    feature_mean: np.ndarray
    feature_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    skills: list[str]
    chunk_size: int
    num_samples: int = 0
    gripper_levels: dict[str, list[float]] = field(default_factory=dict)
    arg_offsets: bool = False
    object_sizes: bool = False
    release_thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        """Length of the feature vectors these statistics normalise."""
        return feature_dim(self.object_sizes)

    def normalize_features(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """``(..., feature_dim)`` -> normalised, same type."""
        if isinstance(x, torch.Tensor):
            return (x - torch.as_tensor(self.feature_mean, device=x.device)) / torch.as_tensor(
                self.feature_std, device=x.device)
        return ((x - self.feature_mean) / self.feature_std).astype(np.float32)

    def normalize_actions(self, a: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """``(..., 7)`` actions -> normalised, same type."""
        if isinstance(a, torch.Tensor):
            return (a - torch.as_tensor(self.action_mean, device=a.device)) / torch.as_tensor(
                self.action_std, device=a.device)
        return ((a - self.action_mean) / self.action_std).astype(np.float32)

    def unnormalize_actions(self, a: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Inverse of :meth:`normalize_actions`."""
        if isinstance(a, torch.Tensor):
            return a * torch.as_tensor(self.action_std, device=a.device) + torch.as_tensor(
                self.action_mean, device=a.device)
        return (a * self.action_std + self.action_mean).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"feature_mean": self.feature_mean.tolist(), "feature_std": self.feature_std.tolist(),
                "action_mean": self.action_mean.tolist(), "action_std": self.action_std.tolist(),
                "skills": list(self.skills), "chunk_size": int(self.chunk_size),
                "num_samples": int(self.num_samples), "feature_dim": self.feature_dim,
                "action_dim": ACTION_DIM, "gripper_dim_normalized": False,
                "gripper_levels": {k: [float(v) for v in lv]
                                   for k, lv in self.gripper_levels.items()},
                "arg_offsets": bool(self.arg_offsets), "object_sizes": bool(self.object_sizes),
                "release_thresholds": {k: float(v)
                                       for k, v in sorted(self.release_thresholds.items())}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NormStats:
        """Parse and validate :meth:`to_dict` output.

        Raises:
            ValueError: on missing keys, wrong lengths, non-finite values, non-positive stds, or a
                chunk size / sample count that is not a non-negative integer (chunk size >= 1).
        """
        need = ["feature_mean", "feature_std", "action_mean", "action_std", "skills", "chunk_size"]
        if not isinstance(d, Mapping):
            raise ValueError("stats must be a JSON object")  # noqa: TRY004 - malformed file content
        missing = [k for k in need if k not in d]
        if missing:
            raise ValueError(f"stats lack keys {missing}")
        sizes = d.get("object_sizes", False)
        if not isinstance(sizes, bool):
            raise ValueError(f"stats object_sizes must be true or false, got {sizes!r}")
        fdim = feature_dim(sizes)
        arrs = {}
        for k, n in (("feature_mean", fdim), ("feature_std", fdim),
                     ("action_mean", ACTION_DIM), ("action_std", ACTION_DIM)):
            try:
                a = np.asarray(d[k], np.float32)
            except (TypeError, ValueError) as e:
                raise ValueError(f"stats {k} is not a list of numbers: {e}") from e
            if a.shape != (n,):
                raise ValueError(f"stats {k} must have {n} entries, got shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"stats {k} holds NaN/inf")
            arrs[k] = a
        if np.any(arrs["feature_std"] <= 0) or np.any(arrs["action_std"] <= 0):
            raise ValueError("stats standard deviations must be > 0")
        skills = d["skills"]
        if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
            raise ValueError(f"stats skills must be a list of names, got {skills!r}")
        levels = d.get("gripper_levels", {})
        if not isinstance(levels, Mapping) or not all(
                isinstance(k, str) and isinstance(v, list)
                and all(isinstance(x, (int, float)) and -1.0 <= x <= 1.0 for x in v)
                for k, v in levels.items()):
            raise ValueError("stats gripper_levels must map skill names to lists of numbers in "
                             f"[-1, 1], got {levels!r}")
        chunk, n = d["chunk_size"], d.get("num_samples", 0)
        if isinstance(chunk, bool) or not isinstance(chunk, Integral) or chunk < 1:
            raise ValueError(f"stats chunk_size must be an integer >= 1, got {chunk!r}")
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
            raise ValueError(f"stats num_samples must be an integer >= 0, got {n!r}")
        offsets = d.get("arg_offsets", False)
        if not isinstance(offsets, bool):
            raise ValueError(f"stats arg_offsets must be true or false, got {offsets!r}")
        thresholds = d.get("release_thresholds", {})
        if not isinstance(thresholds, Mapping) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v) and -1.0 <= v <= 1.0 for k, v in thresholds.items()):
            raise ValueError("stats release_thresholds must map skill names to numbers in "
                             f"[-1, 1], got {thresholds!r}")
        return cls(arrs["feature_mean"], arrs["feature_std"], arrs["action_mean"],
                   arrs["action_std"], list(skills), int(chunk), int(n),
                   {k: [float(x) for x in v] for k, v in levels.items()}, offsets, sizes,
                   {k: float(v) for k, v in thresholds.items()})

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``stats.json`` atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "stats.json") -> NormStats:
        """Parse and validate the bytes of a ``stats.json``.

        Raises:
            ValueError: not UTF-8 JSON (or nested absurdly deep), or content rejected by
                :meth:`from_dict`; the message starts with ``source``.
        """
        try:
            d = json.loads(data)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
            raise ValueError(f"{source} is not valid JSON: {e}") from None
        try:
            return cls.from_dict(d)
        except (ValueError, TypeError, OverflowError) as e:
            raise ValueError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike, max_bytes: int | None = None) -> NormStats:
        """Read and validate a ``stats.json``.

        Args:
            path: the file; only a regular file is read (FIFOs, devices refused without blocking).
            max_bytes: size limit; None = :data:`MAX_STATS_BYTES` (1 MiB; real ones are ~10 KB).

        Raises:
            FileNotFoundError: missing file. ValueError: malformed content;
            :class:`~robot_skills.utils.files.InputFileError` (a ValueError) for a file that is
            not regular or is over the limit.
        """
        data = read_bounded(path, MAX_STATS_BYTES if max_bytes is None else max_bytes,
                            "statistics file")
        return cls.from_json(data, str(path))


def calibrate_release_threshold(predicted: np.ndarray, commanded: np.ndarray,
                                levels: Sequence[float]) -> float | None:
    """The gripper value below which a two-level skill should release, matched to its data.

    A skill that must end with the gripper open (``place_on``, ``place_in``) releases once per
    demonstration: its segment ends as soon as the hand is empty, so the open command is about one
    sample in fifty. A regression of the command then stays on the "closed" side of the midpoint
    at the very states the demonstrations released in, and the learned skill never lets go.
    Threshold moving, the standard remedy of a decision threshold under class imbalance (Zhou &
    Liu, "Training cost-sensitive neural networks with methods addressing the class imbalance
    problem", IEEE TKDE 2006), here by matching the prior: the threshold is the quantile of the
    predictions at the low level's frequency, so on its training samples the skill opens as often
    as its demonstrations did.

    Args:
        predicted: ``(N,)`` the network's first gripper command on the skill's training samples
            (``LearnedSkill.predict_chunk(features)[:, 0, 6]``), in ``[-1, 1]`` units.
        commanded: ``(N,)`` the demonstrated first gripper command of the same samples.
        levels: the skill's two gripper levels, ``(low, high)`` (``NormStats.gripper_levels``).

    Returns:
        The threshold, or None when the data never commands the low level (nothing to match) or
        ``levels`` are not two.

    Raises:
        ValueError: ``predicted`` and ``commanded`` differ in shape or hold NaN/inf.
    """
    p = np.asarray(predicted, np.float64).reshape(-1)
    y = np.asarray(commanded, np.float64).reshape(-1)
    if p.shape != y.shape or not (np.all(np.isfinite(p)) and np.all(np.isfinite(y))):
        raise ValueError(f"predicted {np.shape(predicted)} and commanded {np.shape(commanded)} "
                         "gripper values must be finite and of one shape")
    if len(levels) != 2 or p.size == 0:
        return None
    low, high = sorted(float(v) for v in levels)
    frac = float(np.mean(y < (low + high) / 2))
    if frac == 0.0:
        return None
    return float(np.clip(np.quantile(p, frac), low, high))
