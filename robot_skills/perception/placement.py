"""Where a placement releases the held object: a free spot of the target region.

A region is a box (a stove's cook region, a basket's inside, a drawer, a box on the table). Its
frame's origin is the natural release point, but when something already stands there (the first
moka pot on the stove, the first can in the basket) releasing at the origin drops the second
object onto the first and knocks it out. :func:`release_point` picks the nearest point of a grid
over the region whose footprint keeps :data:`SPOT_GAP` from everything standing in it.

One function serves everyone who places:

* the scripted place experts (``sim.experts.PlaceExpert``) release there;
* the executor records the point's offset from the region's default release point with each
  placement segment (:attr:`robot_skills.execution.recording.SkillSegment.arg_offsets`), so the
  demonstrations' features say where the object went;
* a learned place skill reads the target slot of its features at that point
  (:mod:`robot_skills.policies.learned_skill`), on the simulator and on a real arm alike, from a
  :class:`~robot_skills.perception.PoseWorldModel` and the observed poses.

The offset also lifts the point to where the held object's centre is at release
(:func:`release_offsets`): the network then sees how far the object is from where it should let go,
whatever the object's height, which positions and yaws alone do not tell it.

Footprints are discs (:meth:`~robot_skills.perception.ObjectGeometry.footprint_radius`);
regions entered from the front (:data:`FRONT_ENTERED_KINDS`: a shelf level, the microwave) are
not gridded: an object slides in as deep as the hand allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robot_skills.perception.pose_predicates import PoseWorldModel, quat_to_mat
from robot_skills.robot import Observation

__all__ = ["PLACE_VERBS", "FRONT_ENTERED_KINDS", "SPOT_GAP", "SPOT_GRID", "SPOT_REACH",
           "DRAWER_FRONT_OFFSET", "TABLE_REGION_HALF_HEIGHT", "region_half_extents",
           "default_release_point", "release_point", "release_offsets", "call_arg_offsets",
           "call_arg_sizes"]

PLACE_VERBS = ("place_on", "place_in")
"""Verbs ``(obj, target)`` that release the held object at a point of ``target``."""
FRONT_ENTERED_KINDS = ("shelf", "enclosure")
"""Region kinds reached from the front, not from above: a covered shelf level, the microwave's
cavity. Their release point is not gridded."""
SPOT_GAP = 0.015
"""Gap wanted between the placed object's footprint and what already stands in the region, m."""
SPOT_GRID = 9
"""Candidate release points per axis of a region (a ``SPOT_GRID x SPOT_GRID`` grid)."""
SPOT_REACH = 0.78
"""Release points farther than this from the arm's base (horizontally, m) are taken only when no
nearer point is free."""
DRAWER_FRONT_OFFSET = 0.03
"""A drawer's default release point lies this far toward its front (+x of its frame), m: the part
pulled out of the carcass."""
TABLE_REGION_HALF_HEIGHT = 0.05
"""Half height of the box a table region spans above the table top, m (objects standing in it)."""
_NEAR_MARGIN = 0.15
"""How far outside the region's box an object still counts as standing in the way, m."""


def region_half_extents(model: PoseWorldModel, region: str) -> np.ndarray:
    """Half sizes ``(3,)`` of ``region``'s box in its own frame, m.

    A table region's box is the bounding box of its ranges (its observed pose is that box's
    centre) with :data:`TABLE_REGION_HALF_HEIGHT`; other kinds carry ``half_extents``.

    Raises:
        KeyError: ``region`` is not a region of ``model``.
        ValueError: the region has neither ranges nor half extents.
    """
    g = model.regions[region]
    if g.kind == "table":
        if not g.ranges:
            raise ValueError(f"table region {region!r} has no ranges")
        r = np.asarray(g.ranges, float)
        hx = (r[:, 2].max() - r[:, 0].min()) / 2
        hy = (r[:, 3].max() - r[:, 1].min()) / 2
        return np.array([max(hx, 1e-3), max(hy, 1e-3), TABLE_REGION_HALF_HEIGHT])
    if g.half_extents is None:
        raise ValueError(f"region {region!r} ({g.kind}) has no half_extents")
    return np.asarray(g.half_extents, float)


def default_release_point(model: PoseWorldModel, region: str) -> np.ndarray:
    """Release point ``(2,)`` (x, y in the region's frame, m) of an empty region: its origin, or
    :data:`DRAWER_FRONT_OFFSET` toward a drawer's front."""
    return np.array([DRAWER_FRONT_OFFSET if model.regions[region].kind == "drawer" else 0.0, 0.0])


def release_point(model: PoseWorldModel, object_poses: Mapping[str, np.ndarray], obj: str,
                  region: str, gap: float = SPOT_GAP, grid: int = SPOT_GRID,
                  reach: float = SPOT_REACH) -> np.ndarray:
    """Where to release ``obj`` in ``region``: ``(2,)`` float64, x/y in the region's frame, m.

    The preferred point is :func:`default_release_point`. When other objects stand in or near the
    region (their centres within its box widened by 0.15 m), the grid point nearest the default
    whose disc keeps ``gap`` from every other disc is taken, among points within ``reach`` of the
    arm's base horizontally when any such is free, else the freest point. Container and drawer
    regions keep the whole footprint inside their walls; surface and table regions only its
    centre (as the ``On`` predicate tests). Objects are discs of
    :meth:`~robot_skills.perception.ObjectGeometry.footprint_radius` of their observed
    orientation.

    Args:
        model: geometry of the task's entities.
        object_poses: entity -> ``(7,)`` pose ``[x, y, z, qw, qx, qy, qz]``, robot base frame
            (``Observation.object_poses``); must hold ``region``; objects missing from it are
            ignored.
        obj: the held object (an object of ``model``).
        region: the target region (a region of ``model``).

    Raises:
        KeyError: ``obj`` / ``region`` unknown to ``model``, or ``region`` has no observed pose.
    """
    g = model.regions[region]
    held = model.objects[obj]
    if region not in object_poses:
        raise KeyError(f"region {region!r} has no observed pose (observed: {sorted(object_poses)})")
    pose = np.asarray(object_poses[region], float)
    size = region_half_extents(model, region)
    Rs = quat_to_mat(pose[3:7])
    foot = float(np.hypot(held.half_extents[0], held.half_extents[1]))
    default = default_release_point(model, region)
    inset = foot + 0.004 if g.kind in ("container", "drawer") else 0.0
    hx, hy = max(size[0] - inset, 0.0), max(size[1] - inset, 0.0)
    skip = {obj, region, g.owner}
    others = []
    for name, geo in model.objects.items():
        if name in skip or name not in object_poses:
            continue
        op = np.asarray(object_poses[name], float)
        loc = Rs.T @ (op[:3] - pose[:3])
        if (abs(loc[0]) > size[0] + _NEAR_MARGIN or abs(loc[1]) > size[1] + _NEAR_MARGIN
                or not -0.05 <= loc[2] <= 2 * size[2] + _NEAR_MARGIN):
            continue
        others.append((loc[:2], geo.footprint_radius(quat_to_mat(op[3:7]))))
    if not others:
        return default
    xs = np.linspace(0.0 if g.kind == "drawer" else -hx, hx, grid)
    ys = np.linspace(-hy, hy, grid)
    cand = np.array([(x, y) for x in xs for y in ys] + [tuple(default)])
    clear = np.full(len(cand), np.inf)
    for c, r in others:
        clear = np.minimum(clear, np.linalg.norm(cand - c, axis=1) - r - foot)
    world = pose[:2][None, :] + cand @ Rs[:2, :2].T
    ok = (clear >= gap) & (np.linalg.norm(world, axis=1) <= reach)
    if not ok.any():
        ok = clear >= gap
    if ok.any():
        idx = np.flatnonzero(ok)
        return cand[idx[np.argmin(np.linalg.norm(cand[idx] - default, axis=1))]]
    return cand[int(np.argmax(clear))]


def release_offsets(model: PoseWorldModel, object_poses: Mapping[str, np.ndarray], skill: str,
                    args: Sequence[str]) -> tuple[tuple[float, float, float] | None, ...]:
    """Per argument of a call, the shift of its reference point its features should show.

    For a placement (:data:`PLACE_VERBS`, ``(obj, target)``) the target's entry moves its
    reference point to where the held object's centre goes at release, in the target's frame, m:

    * into a region: ``(dx, dy)`` = :func:`release_point` - :func:`default_release_point`
      (zero for an empty region; not gridded for :data:`FRONT_ENTERED_KINDS`), and
      ``dz`` = the held object's half height (the region's frame lies on its floor);
    * onto an object (a plate, a bowl): ``(0, 0, h_target + h_obj)``, its top plus the held
      object's half height.

    So "release when the object reaches the target" reads the same for a thin butter pack and a
    tall moka pot. Every other entry (and every entry of other verbs) is None.

    Args:
        model: geometry of the task's entities.
        object_poses: observed poses at the call's first step (base frame, as
            ``Observation.object_poses``).
        skill: the call's verb.
        args: the call's arguments in parameter order.

    Returns:
        One entry per argument.

    Raises:
        KeyError: as :func:`release_point`.
    """
    out: list[tuple[float, float, float] | None] = [None] * len(args)
    if skill not in PLACE_VERBS or len(args) != 2 or args[0] not in model.objects:
        return tuple(out)
    obj, target = args
    h_obj = float(model.objects[obj].half_extents[2])
    if target in model.regions:
        d = np.zeros(2)
        if model.regions[target].kind not in FRONT_ENTERED_KINDS:
            d = release_point(model, object_poses, obj, target) - default_release_point(model,
                                                                                        target)
        out[1] = (float(d[0]), float(d[1]), h_obj)
    elif target in model.objects:
        out[1] = (0.0, 0.0, float(model.objects[target].half_extents[2]) + h_obj)
    return tuple(out)


def call_arg_offsets(world: Any, skill: str, args: Sequence[str], obs: Observation
                     ) -> tuple[tuple[float, float, float] | None, ...]:
    """:func:`release_offsets` of a call starting at ``obs`` in ``world``.

    What the executor records with the call's segment and what a learned skill reads its
    features with, from the same observation. A world without geometry (no ``world_model``
    attribute: a bare robot, a test double), and a call none of whose arguments is shifted, give
    ``()``, as :attr:`~robot_skills.execution.recording.SkillSegment.arg_offsets` stores "none".

    Args:
        world: the task world (:class:`~robot_skills.execution.interfaces.TaskWorld`); its
            optional ``world_model`` is a :class:`~robot_skills.perception.PoseWorldModel`.
        skill: the call's verb.
        args: the call's arguments.
        obs: the observation at the call's first step (base frame).

    Raises:
        KeyError: as :func:`release_point` (the target region's pose is not observed).
    """
    model = getattr(world, "world_model", None)
    if model is None:
        return ()
    offsets = release_offsets(model, obs.object_poses, skill, args)
    return offsets if any(o is not None for o in offsets) else ()


def call_arg_sizes(world: Any, args: Sequence[str]) -> tuple[tuple[float, float, float] | None, ...]:
    """Per argument of a call in ``world``, the ``(3,)`` half extents of its bounding box in its
    own frame (m; :meth:`~robot_skills.perception.PoseWorldModel.entity_sizes`), or None for an
    entity the geometry does not size.

    What the executor records with a segment
    (:attr:`~robot_skills.execution.recording.SkillSegment.arg_sizes`) and what a learned skill
    trained with ``training.object_sizes`` appends to its features: a shape descriptor, so one
    ``pick`` network can tell a butter pack from a moka pot by more than where it stands. A world
    without geometry (no ``world_model``), or one that sizes none of the arguments, gives ``()``.
    """
    model = getattr(world, "world_model", None)
    if model is None:
        return ()
    sizes = model.entity_sizes()
    out = tuple(None if a not in sizes else tuple(float(v) for v in sizes[a]) for a in args)
    return out if any(o is not None for o in out) else ()
