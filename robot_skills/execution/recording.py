"""What an episode leaves behind for demonstrations: per-step (observation, action) pairs and the
skill segments they belong to (the robomimic/LIBERO layout plus one segment per skill call)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from robot_skills.robot import Action, Observation


def _per_arg_triples(d: Mapping[str, Any], key: str, args: Sequence[str],
                     nonnegative: bool = False) -> tuple[tuple[float, float, float] | None, ...]:
    """Segment dict ``d``'s optional ``key``: per argument null or 3 finite numbers (m; >= 0 when
    ``nonnegative``). Raises ValueError naming ``key`` and the arguments otherwise."""
    vals = d.get(key) or []
    if (isinstance(vals, (str, Mapping)) or len(vals) != (len(args) if vals else 0)
            or not all(o is None or (isinstance(o, (list, tuple)) and len(o) == 3
                                     and all(isinstance(v, (int, float)) and math.isfinite(v)
                                             and (v >= 0 or not nonnegative) for v in o))
                       for o in vals)):
        raise ValueError(f"skill segment {key} must hold, per argument of {list(args)}, null or "
                         f"3 finite numbers (m{', >= 0' if nonnegative else ''}), got {vals!r}")
    return tuple(None if o is None else tuple(float(v) for v in o) for o in vals)


@dataclass(frozen=True)
class SkillSegment:
    """One skill call inside a demonstration: steps ``[start, end)`` executed ``skill(*args)``.

    Attributes:
        start: first step index (inclusive).
        end: one past the last step index (exclusive), ``start < end``.
        skill: skill verb, e.g. ``"place_on"``.
        args: entity names bound to the skill's parameters, in parameter order.
        success: whether the call reached its termination test.
        arg_offsets: empty, or per argument None or a ``(dx, dy, dz)`` shift (m, in that
            argument's frame) of the point its feature slot reads: a placement records its
            release point (a free spot of the region, at the held object's centre height;
            :func:`robot_skills.perception.placement.release_offsets`), so training can see the
            target where the object went.
        arg_sizes: empty, or per argument None or its ``(hx, hy, hz)`` bounding-box half extents
            (m, in its own frame; :func:`robot_skills.perception.placement.call_arg_sizes`): the
            shape descriptor a library trained with ``training.object_sizes`` reads.
    """

    start: int
    end: int
    skill: str
    args: tuple[str, ...] = ()
    success: bool = True
    arg_offsets: tuple[tuple[float, float, float] | None, ...] = ()
    arg_sizes: tuple[tuple[float, float, float] | None, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict ``{start, end, skill, args, success}``, plus ``arg_offsets`` and
        ``arg_sizes`` when some entry is set."""
        d = {"start": int(self.start), "end": int(self.end), "skill": self.skill,
             "args": list(self.args), "success": bool(self.success)}
        for key in ("arg_offsets", "arg_sizes"):
            vals = getattr(self, key)
            if any(o is not None for o in vals):
                d[key] = [None if o is None else [float(v) for v in o] for o in vals]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SkillSegment:
        """Parse and validate a dict as written by :meth:`to_dict`.

        Raises:
            ValueError: on missing keys or wrong types.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"a skill segment is a mapping, got {type(d).__name__}: {d!r}")  # noqa: TRY004 - malformed file content
        missing = {"start", "end", "skill"} - set(d)
        if missing:
            raise ValueError(f"skill segment {dict(d)!r} lacks keys {sorted(missing)}")
        args = d.get("args", [])
        if isinstance(args, str) or not all(isinstance(a, str) for a in args):
            raise ValueError(f"skill segment args must be a list of entity names, got {args!r}")
        if not isinstance(d["skill"], str) or not d["skill"]:
            raise ValueError(f"skill segment 'skill' must be a non-empty string, got {d['skill']!r}")
        return cls(int(d["start"]), int(d["end"]), d["skill"], tuple(args),
                   bool(d.get("success", True)), _per_arg_triples(d, "arg_offsets", args),
                   _per_arg_triples(d, "arg_sizes", args, nonnegative=True))

    def check(self, num_samples: int) -> None:
        """Raise ValueError unless ``0 <= start < end <= num_samples``."""
        if not (0 <= self.start < self.end <= num_samples):
            raise ValueError(f"skill segment {self.skill}{list(self.args)} spans "
                             f"[{self.start}, {self.end}), outside a demo of {num_samples} steps")


@dataclass
class EpisodeRecording:
    """Collects what a recorder needs for demonstrations: per-step (obs, action) pairs, where
    ``observations[t]`` is the observation ``actions[t]`` was computed from, and skill segments.

    Any object with ``add_step(obs, action)`` and ``add_segment(segment)`` methods may be passed to
    :class:`Executor` instead.
    """

    observations: list[Observation] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    segments: list[SkillSegment] = field(default_factory=list)

    def add_step(self, obs: Observation, action: Action) -> None:
        """Record the observation the policy saw and the action the robot applied for it."""
        self.observations.append(obs)
        self.actions.append(action)

    def add_segment(self, segment: SkillSegment) -> None:
        """Record a finished skill segment."""
        self.segments.append(segment)


