"""Goal-conditioned low-dimensional features: a skill's arguments select what the policy sees.

The policy never sees a fixed list of objects. For a call such as ``place_on(obj=bowl,
target=plate)`` it sees the proprioception plus, per argument slot, the argument entity's position
*relative to the end-effector* and its yaw. So one ``place_on`` network places anything on
anything, and a new scene with new distractors changes nothing the policy reads.

Layout of the ``(FEATURE_DIM,)`` float32 vector (all in the robot base frame, metres / radians):

====================  ====  ===========================================================
slice                 size  meaning
====================  ====  ===========================================================
``[0:3]``             3     end-effector position
``[3:7]``             4     end-effector quaternion ``(w, x, y, z)``, sign fixed to w >= 0
``[7]``               1     gripper opening, m
per arg slot k        6     ``p_arg - p_ee`` (3), ``sin yaw``, ``cos yaw``, present flag
====================  ====  ===========================================================

``p_arg`` is the argument's position, shifted by the call's argument offset when it has one: a
placement reads its target at its release point chosen at the call's start (a free spot of the
region, at the height of the held object's centre;
:func:`robot_skills.perception.placement.release_offsets`), in training data (recorded with each
segment) and at run time alike, for libraries trained with ``training.release_points``.

A library trained with ``training.object_sizes`` reads a longer, ``(SIZED_FEATURE_DIM,)`` vector:
the one above followed by each argument slot's bounding-box half extents (3 per slot, m, in the
entity's own frame; zeros for an empty slot or an entity without a size;
:func:`robot_skills.perception.placement.call_arg_sizes`). That is a shape descriptor: positions
and yaws alone do not tell one ``pick`` network a butter pack from a moka pot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robot_skills.domain.verbs import MAX_SKILL_ARGS
from robot_skills.perception.pose_predicates import quat_to_mat
from robot_skills.robot import Observation

PROPRIO_DIM = 8
SLOT_DIM = 6
FEATURE_DIM = PROPRIO_DIM + SLOT_DIM * MAX_SKILL_ARGS
SIZE_DIM = 3 * MAX_SKILL_ARGS
"""Columns of the per-argument half extents appended by ``training.object_sizes``."""
SIZED_FEATURE_DIM = FEATURE_DIM + SIZE_DIM

ArgOffsets = Sequence["tuple[float, float, float] | np.ndarray | None"]
"""Per skill argument, None or a ``(3,)`` shift of its reference point in the argument's own frame,
m (:func:`robot_skills.perception.placement.release_offsets`)."""
ArgSizes = Sequence["tuple[float, float, float] | np.ndarray | None"]
"""Per skill argument, None or its ``(3,)`` bounding-box half extents, m
(:func:`robot_skills.perception.placement.call_arg_sizes`)."""


def feature_dim(object_sizes: bool) -> int:
    """Length of a feature vector: :data:`SIZED_FEATURE_DIM` with the per-argument sizes,
    :data:`FEATURE_DIM` without."""
    return SIZED_FEATURE_DIM if object_sizes else FEATURE_DIM


def yaw_of_quat(q: np.ndarray) -> float:
    """Heading (rotation about +z) of a ``(w, x, y, z)`` quaternion, rad in ``(-pi, pi]``."""
    w, x, y, z = (float(v) for v in q)
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def _per_arg_triples(args: Sequence[str], values: Sequence | None, what: str,
                     nonnegative: bool) -> list:
    """``values`` checked against ``args``: empty/None (all None) or, per argument, None or 3
    finite numbers (>= 0 when ``nonnegative``) as a ``(3,)`` float64 array."""
    if not values:
        return [None] * len(args)
    if len(values) != len(args):
        raise ValueError(f"{len(values)} argument {what}s for the {len(args)} arguments "
                         f"{list(args)}")
    out = []
    for a, v in zip(args, values):
        if v is None:
            out.append(None)
            continue
        h = np.asarray(v, np.float64)
        if h.shape != (3,) or not np.all(np.isfinite(h)) or (nonnegative and np.any(h < 0)):
            raise ValueError(f"{what} of argument {a!r} must be 3 finite numbers"
                             f"{' >= 0' if nonnegative else ''} (m), got {v!r}")
        out.append(h)
    return out


def check_arg_offsets(args: Sequence[str], arg_offsets: ArgOffsets | None) -> list:
    """Validate ``arg_offsets`` against ``args``: one entry per argument, None or 3 finite numbers
    (m). Returns the entries as a list (all None when ``arg_offsets`` is None or empty).

    Raises:
        ValueError: a different number of entries, or a malformed entry (the message names it).
    """
    return _per_arg_triples(args, arg_offsets, "offset", nonnegative=False)


def check_arg_sizes(args: Sequence[str], arg_sizes: ArgSizes) -> list:
    """Validate ``arg_sizes`` against ``args``: empty (no sizes) or one entry per argument, None or
    3 finite half extents >= 0 (m). Returns one entry per argument (None where unsized).

    Raises:
        ValueError: a different number of entries, or a malformed entry (the message names it).
    """
    return _per_arg_triples(args, arg_sizes, "size", nonnegative=True)


def skill_features(obs: Observation, args: Sequence[str],
                   arg_offsets: ArgOffsets | None = None,
                   arg_sizes: ArgSizes | None = None) -> np.ndarray:
    """Return the float32 feature vector of ``obs`` for a call with ``args``: ``(FEATURE_DIM,)``,
    or ``(SIZED_FEATURE_DIM,)`` when ``arg_sizes`` is given.

    Args:
        obs: the current observation (base frame).
        args: entity names bound to the skill's parameters, in parameter order.
        arg_offsets: per argument, None or a ``(3,)`` shift (m, in the argument's frame) of the
            position its slot reads (see the module docstring); None: no shifts.
        arg_sizes: None for the layout without sizes; otherwise per argument None (zeros) or its
            ``(3,)`` half extents, m, appended after the slots (``()``: all zeros).

    Raises:
        ValueError: if more than ``MAX_SKILL_ARGS`` arguments are given, or malformed offsets or
            sizes.
        KeyError: if an argument is not in ``obs.object_poses`` (the message names it).
    """
    if len(args) > MAX_SKILL_ARGS:
        raise ValueError(f"at most {MAX_SKILL_ARGS} skill arguments, got {list(args)}")
    offs = check_arg_offsets(args, arg_offsets)
    sizes = None if arg_sizes is None else check_arg_sizes(args, arg_sizes)
    f = np.zeros(feature_dim(sizes is not None), dtype=np.float32)
    ee = np.asarray(obs.ee_pos, dtype=np.float64)
    q = np.asarray(obs.ee_quat, dtype=np.float64)
    f[0:3] = ee
    f[3:7] = q if q[0] >= 0 else -q
    f[7] = obs.gripper_width
    for k, name in enumerate(args):
        if name not in obs.object_poses:
            raise KeyError(f"skill argument {name!r} is not among the observed entities "
                           f"{sorted(obs.object_poses)}")
        pose = np.asarray(obs.object_poses[name], dtype=np.float64)
        yaw = yaw_of_quat(pose[3:7])
        o = PROPRIO_DIM + SLOT_DIM * k
        p = pose[:3] if offs[k] is None else pose[:3] + quat_to_mat(pose[3:7]) @ offs[k]
        f[o:o + 3] = p - ee
        f[o + 3] = np.sin(yaw)
        f[o + 4] = np.cos(yaw)
        f[o + 5] = 1.0
        if sizes is not None and sizes[k] is not None:
            f[FEATURE_DIM + 3 * k:FEATURE_DIM + 3 * k + 3] = sizes[k]
    return f


def proprio_features(obs: Observation) -> np.ndarray:
    """The ``(PROPRIO_DIM,)`` float32 proprioception of ``obs``: end-effector position (3, m),
    quaternion ``(w, x, y, z)`` with w >= 0 (4) and gripper opening (1, m), base frame.

    The first :data:`PROPRIO_DIM` entries of :func:`skill_features`, without any object pose:
    what the image-based policy (:mod:`robot_skills.policies.vision`) reads besides its cameras.
    """
    return skill_features(obs, ())[:PROPRIO_DIM]
