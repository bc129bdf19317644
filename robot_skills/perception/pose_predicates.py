"""LIBERO predicates from object poses alone: what a real arm's perception stack can provide.

A simulator decides ``On`` by contacts (``sim.predicates``); a real arm only knows where things
are. This module evaluates the same predicates — BDDL's ``On In Open Close Turnon Turnoff`` plus
the planner's ``holding`` / ``handempty`` — from

* ``object_poses``: entity name -> ``(7,)`` pose ``[x, y, z, qw, qx, qy, qz]`` (what
  :attr:`robot_skills.robot.Observation.object_poses` carries),
* the gripper opening and the tool-centre-point position,
* a :class:`PoseWorldModel`: the plain geometric data perception needs besides poses (object
  bounding boxes, region extents, drawer travel, knob and door hinge axes, affordance tags). A
  user writes it
  for a real arm (e.g. as YAML, read with :meth:`PoseWorldModel.from_dict`); the simulator builds
  it from its scene (``sim.perception_model.pose_world_model``).

Frames and units: every pose and position is in the **robot base frame** (+z up, the table level),
lengths in m, angles in rad, quaternions scalar-first ``(w, x, y, z)``. An object's pose is the
centre of its bounding box; a fixture's pose is the centre of its footprint on the surface it
stands on (the *table*'s pose is the centre of its top surface, +x away from the robot); a region's
pose is a frame whose origin lies on the region's floor (its supporting surface), as LIBERO's
region sites.

Semantics (tolerances are fields of :class:`PoseTolerances`; an object's "bottom" / "top" is the
lowest / highest point of its oriented bounding box — or upright cylinder, for ``shape =
"cylinder"`` — in the base frame; "rests on a surface at height s" means ``-penetration <=
bottom - s <= contact``):

* ``On(a, b)``, ``b`` an object: ``a``'s centre lies inside ``b``'s horizontal (axis-aligned, base
  frame) bounding box, ``a.bottom > b.bottom + support``, and ``a`` rests on ``b``'s support
  surface: its top, or for an open object (``floor_height`` set: bowl, plate, basket) its inner
  floor. A cream-cheese box inside a bowl is ``On`` the bowl, as in LIBERO; one still falling
  into it is not.
* ``On(a, r)``, ``r`` a table region: ``a``'s centre, in the table frame, lies in one of ``r``'s
  range boxes grown by ``region_xy``, ``a`` rests on the table top, and ``a`` is not ``On`` another
  object (a bowl on a plate's floor, 8 mm above the table, is on the plate only, even with a
  ``contact`` tolerance above 8 mm). For a fixture ``a`` only the centre test applies.
* ``On(a, r)``, ``r`` a surface region (cook region, cabinet top, rack): ``a``'s centre, in the
  region frame, is within the region's x/y half-extents grown by ``region_xy`` and above its floor,
  and ``a`` rests on the floor.
* ``In(a, r)``, ``r`` a drawer, container, shelf or enclosure region: ``a``'s centre, in the
  region frame, is within the x/y half-extents, and either the centre's height is within
  ``[-region_z_below, 2 * half_extents[2]]`` or (objects taller than the region: a bottle
  standing in an open drawer) the centre is at least ``-region_z_below`` and ``a``'s bottom is
  within ``[-region_z_below, half_extents[2]]`` above the floor; for a table region, the centre is
  in its ranges.
* ``Open(d)`` / ``Close(d)``, ``d`` a drawer region: the drawer's travel — displacement of ``d``'s
  frame from its closed position along the opening axis, both given in the owner fixture's frame —
  is ``>= open_threshold`` / ``<= closed_threshold``.
* ``Open(f)`` / ``Close(f)``, ``f`` a fixture with a hinged door (the microwave): the door's angle
  — rotation of the door entity's frame, relative to the fixture, about the hinge axis, from its
  shut orientation (as for knobs) — is ``>= open_threshold`` / ``<= closed_threshold``.
  **Unsupported** for an ``openable`` fixture without a :class:`DoorGeometry`.
* ``Turnon(s)`` / ``Turnoff(s)``: the knob's angle — rotation of the knob entity's frame, relative
  to the fixture, about the knob axis, from its zero orientation — is ``>=`` / ``<`` the on
  threshold. **Unsupported** when the fixture has no :class:`KnobGeometry` (its knob is not a
  tracked entity): asking for such an atom raises :class:`UnsupportedPredicateError`, and
  ``atoms=None`` leaves those atoms out of the state.
* ``holding(o)``, ``o`` graspable (tagged ``graspable`` or given a ``grasp_width``; a plate is
  never held): the tool centre point lies inside ``o``'s bounding box grown by ``grasp_zone``
  (object frame); ``grip_closed_width < gripper_width <= w + grip_width_margin``, ``w`` the
  widest of its grasp width and its further ``grasp_widths`` (the jaws are closed on something
  about ``o``'s width, not on nothing); and ``o`` is *lifted*: it
  rests on no support — the table top (within the table's footprint), another object (``On``),
  a surface region's floor (``On``), a drawer/container/shelf/enclosure floor (``In`` and bottom
  at most ``contact`` above the floor; for a shelf, also a bottom level with the board — within
  ``contact`` / ``penetration`` — and a footprint partly over it (grown by ``region_xy``): a book
  slid onto the board from the shelf's open front), or the top of
  a fixture that has no surface region of its own (except over one of its bays: a book lowered
  into a desk caddy passes its rims' height).
  ``handempty``: no object is held.

An atom naming an entity the model does not know is an error, not false (a typo in a task or a
model should not read as "the goal is not reached yet").

These are the contact-based rules of ``sim.predicates`` with "touches" replaced by "its bottom is
within ``contact`` of the supporting surface"; where the two differ (objects still settling, a
hand closing or opening) is measured by ``benchmarks/pose_vs_contact_predicates.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from robot_skills.domain.predicates import ENTITY_TAGS, Atom, SymbolicProblem

__all__ = [
    "PoseTolerances", "ObjectGeometry", "KnobGeometry", "DoorGeometry", "FixtureGeometry",
    "DrawerGeometry", "RegionGeometry", "PoseWorldModel", "MissingPoseError",
    "UnsupportedPredicateError", "evaluate_pose_predicates", "knob_angle", "door_angle",
    "drawer_travel", "PoseTaskWorld", "REGION_KINDS",
]

REGION_KINDS = ("table", "surface", "drawer", "container", "shelf", "enclosure")
"""``table``: boxes on the table top given by ranges; ``surface``: a fixture's or object's top
(things are put *on* it); ``drawer``: inside a drawer (moves with it); ``container``: inside an
open-top container (basket, tray, a desk caddy's bay); ``shelf``: a covered shelf level, reached
from its open front; ``enclosure``: a closed space behind a door (the microwave's heating
region). The last four are ``In`` regions."""

class MissingPoseError(KeyError):
    """An entity needed to evaluate a predicate has no pose (not in ``object_poses`` and no fixed
    pose in the model). Attributes: ``entity``."""

    def __init__(self, entity: str, needed_for: str = "") -> None:
        self.entity = entity
        why = f" (needed for {needed_for})" if needed_for else ""
        super().__init__(f"no pose for entity {entity!r}{why}: perception must publish it in "
                         "object_poses, or the model must give it a fixed pose")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class UnsupportedPredicateError(ValueError):
    """The model lacks the data to decide an atom from poses (e.g. ``Turnon`` of a stove whose
    knob is not a tracked entity, ``Open`` of a drawer region without travel data, ``Open`` of an
    ``openable`` fixture without a :class:`DoorGeometry`)."""


# ------------------------------------------------------------------------------------------
# plain data


def _vec(v, n: int, what: str) -> tuple[float, ...]:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be {n} finite numbers, got {v!r}")
    return tuple(float(x) for x in a)


def _tags(tags, what: str) -> frozenset[str]:
    if isinstance(tags, str):
        raise ValueError(f"{what}: tags must be a list of strings, got the string {tags!r}")
    t = frozenset(str(x) for x in tags)
    bad = sorted(t - set(ENTITY_TAGS))
    if bad:
        raise ValueError(f"{what}: unknown tag(s) {bad}; known tags are {list(ENTITY_TAGS)}")
    return t


def _set(obj, name: str, value) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class PoseTolerances:
    """Tolerances of the pose-based tests (m). Defaults mirror ``sim.predicates``.

    Attributes:
        contact: an object whose bottom is at most this far above a surface rests on it (the
            simulator counts geoms up to 5 mm apart as touching).
        penetration: ... and at most this far below it: objects pressed by the arm sink into
            soft contacts, and a tilted box's bounding box reaches below its real lowest point.
        support: ``On(a, b)`` needs ``a``'s bottom at least this far above ``b``'s bottom.
        region_xy: horizontal growth of region footprints (table ranges, surface regions).
        region_z_below: an object centre may lie this far below a drawer/container floor and
            still be ``In`` it.
        grasp_zone: growth of an object's bounding box within which the tool centre point must lie
            for the object to be held.
        grip_width_margin: the jaws may be this much wider than the object's grasp width and
            still hold it.
        grip_closed_width: jaws closer than this are closed on nothing.
    """

    contact: float = 0.005
    penetration: float = 0.01
    support: float = 0.002
    region_xy: float = 0.01
    region_z_below: float = 0.01
    grasp_zone: float = 0.01
    grip_width_margin: float = 0.005
    grip_closed_width: float = 0.004

    def __post_init__(self) -> None:
        for k, v in self.__dict__.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"tolerance {k} must be a finite number >= 0, got {v!r}")
            _set(self, k, float(v))


@dataclass(frozen=True)
class ObjectGeometry:
    """A movable object.

    Attributes:
        half_extents: ``(3,)`` half sizes of its bounding box in its own frame, m; the object's
            pose is the box centre.
        tags: affordance tags (:data:`robot_skills.domain.predicates.ENTITY_TAGS`).
        grasp_width: widest jaw opening at which the gripper holds it (the width of the feature
            it is grasped by), m; None: ``2 * max(half_extents[0], half_extents[1])``.
        shape: ``"box"``, or ``"cylinder"`` (round about its z axis, radius ``half_extents[0]``:
            cans, bottles, bowls, plates). Only the lowest/highest point of a tilted object
            depends on it.
        floor_height: for an open object (bowl, plate, basket), the height of its inner floor
            above its bottom, m: what is put on or into it rests there (not on its rim). None:
            a solid object; things rest on its top.
        grasp_widths: further jaw openings, m, at which the object is held besides
            :attr:`holding_width`: the widths across other faces a hand may close on (a butter
            pack taken across its length when a neighbour blocks its usual grasp).
        footprint: how much table the object takes, for choosing a free release point beside it
            (:mod:`robot_skills.perception.placement`): ``"round"`` (a disc of its larger
            horizontal half extent: bowls, plates, cans, a basket) or ``"box"`` (the disc
            circumscribing its box: books, packs, a mug with its handle); None: ``"round"`` for
            a cylinder, else ``"box"``.
    """

    half_extents: tuple[float, float, float]
    tags: frozenset[str] = frozenset()
    grasp_width: float | None = None
    shape: str = "box"
    floor_height: float | None = None
    grasp_widths: tuple[float, ...] = ()
    footprint: str | None = None

    def __post_init__(self) -> None:
        h = _vec(self.half_extents, 3, "half_extents")
        if min(h) <= 0:
            raise ValueError(f"half_extents must be > 0, got {h}")
        _set(self, "half_extents", h)
        _set(self, "tags", _tags(self.tags, "object"))
        if self.shape not in ("box", "cylinder"):
            raise ValueError(f"object shape must be 'box' or 'cylinder', got {self.shape!r}")
        if self.footprint not in (None, "round", "box"):
            raise ValueError(f"object footprint must be 'round', 'box' or null, got "
                             f"{self.footprint!r}")
        if self.floor_height is not None:
            f = float(self.floor_height)
            if not (math.isfinite(f) and 0 <= f <= 2 * h[2]):
                raise ValueError(f"floor_height must be within [0, {2 * h[2]}] (the object's "
                                 f"height), got {self.floor_height!r}")
            _set(self, "floor_height", f)
        if self.grasp_width is not None:
            w = float(self.grasp_width)
            if not (math.isfinite(w) and w > 0):
                raise ValueError(f"grasp_width must be > 0, got {self.grasp_width!r}")
            _set(self, "grasp_width", w)
        if isinstance(self.grasp_widths, (str, bytes)):
            raise ValueError(f"grasp_widths must be a list of numbers, got {self.grasp_widths!r}")
        ws = tuple(float(w) for w in self.grasp_widths)
        if not all(math.isfinite(w) and w > 0 for w in ws):
            raise ValueError(f"grasp_widths must be > 0, got {self.grasp_widths!r}")
        _set(self, "grasp_widths", ws)

    @property
    def holding_width(self) -> float:
        """:attr:`grasp_width`, or the default from the half extents, m."""
        if self.grasp_width is not None:
            return self.grasp_width
        return 2.0 * max(self.half_extents[0], self.half_extents[1])

    def footprint_radius(self, R: np.ndarray) -> float:
        """Radius of the disc the object covers on the table, m, at orientation ``R``
        (``(3, 3)`` rotation, object frame to base frame): of the base-frame horizontal half
        extents of its turned box, the larger for a ``"round"`` :attr:`footprint`, their
        hypotenuse for a ``"box"`` one."""
        ext = np.abs(np.asarray(R, float)) @ np.asarray(self.half_extents, float)
        kind = self.footprint or ("round" if self.shape == "cylinder" else "box")
        return float(max(ext[0], ext[1]) if kind == "round" else np.hypot(ext[0], ext[1]))


@dataclass(frozen=True)
class KnobGeometry:
    """A rotary switch whose knob perception tracks as an entity of its own.

    Attributes:
        entity: name of the knob's pose in ``object_poses`` (e.g. ``"flat_stove_1_knob"``).
        axis: ``(3,)`` rotation axis in the fixture's frame (normalised here); positive angles
            turn the knob on.
        zero_quat: ``(4,)`` orientation ``(w, x, y, z)`` of the knob's frame in the fixture's frame
            when the knob is at angle 0 (off).
        on_threshold: the fixture is ``Turnon`` when the angle is at least this, rad.
    """

    entity: str
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    zero_quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    on_threshold: float = 0.6

    def __post_init__(self) -> None:
        a = np.asarray(_vec(self.axis, 3, "knob axis"))
        n = float(np.linalg.norm(a))
        if n < 1e-9:
            raise ValueError("knob axis must be non-zero")
        _set(self, "axis", tuple(float(x) for x in a / n))
        q = np.asarray(_vec(self.zero_quat, 4, "knob zero_quat"))
        if float(np.linalg.norm(q)) < 1e-9:
            raise ValueError("knob zero_quat must be non-zero")
        _set(self, "zero_quat", tuple(float(x) for x in q / np.linalg.norm(q)))
        _set(self, "on_threshold", float(self.on_threshold))


@dataclass(frozen=True)
class DoorGeometry:
    """A hinged door (the microwave's) whose door perception tracks as an entity of its own.

    Attributes:
        entity: name of the door's pose in ``object_poses`` (e.g. ``"microwave_1_door"``).
        axis: ``(3,)`` hinge axis in the fixture's frame (normalised here); positive angles swing
            the door open.
        zero_quat: ``(4,)`` orientation ``(w, x, y, z)`` of the door entity's frame in the
            fixture's frame when the door is shut (angle 0).
        open_threshold: the fixture is ``Open`` when the door is swung at least this far, rad.
        closed_threshold: ... and ``Close`` when swung at most this far, rad; in between it is
            neither.

    Raises:
        ValueError: a zero axis or quaternion, non-finite numbers, or
            ``closed_threshold >= open_threshold``.
    """

    entity: str
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    zero_quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    open_threshold: float = 1.3
    closed_threshold: float = 0.02

    def __post_init__(self) -> None:
        a = np.asarray(_vec(self.axis, 3, "door axis"))
        n = float(np.linalg.norm(a))
        if n < 1e-9:
            raise ValueError("door axis must be non-zero")
        _set(self, "axis", tuple(float(x) for x in a / n))
        q = np.asarray(_vec(self.zero_quat, 4, "door zero_quat"))
        if float(np.linalg.norm(q)) < 1e-9:
            raise ValueError("door zero_quat must be non-zero")
        _set(self, "zero_quat", tuple(float(x) for x in q / np.linalg.norm(q)))
        o, c = float(self.open_threshold), float(self.closed_threshold)
        if not (math.isfinite(o) and math.isfinite(c) and c < o):
            raise ValueError(f"door closed_threshold ({c}) must be below open_threshold ({o})")
        _set(self, "open_threshold", o)
        _set(self, "closed_threshold", c)


@dataclass(frozen=True)
class FixtureGeometry:
    """A fixture (table, cabinet, stove, rack): does not move, except its drawers and knobs.

    Attributes:
        tags: affordance tags (a stove: ``switchable``).
        half_extents: ``(3,)`` footprint half sizes and half height in its frame, m, or None.
            Used as a support (its top) when deciding whether a held object is lifted; for the
            table only the footprint is used.
        pose: fixed ``(7,)`` pose in the base frame, used when ``object_poses`` lacks the fixture
            (a table bolted in front of the arm), or None.
        knob: for a switchable fixture, its knob; None when the knob is not tracked (then
            ``Turnon``/``Turnoff`` are unsupported).
        door: for a fixture with a hinged door (the microwave), its door; None when it has none
            or the door is not tracked (then ``Open``/``Close`` of an ``openable`` fixture are
            unsupported).
    """

    tags: frozenset[str] = frozenset()
    half_extents: tuple[float, float, float] | None = None
    pose: tuple[float, ...] | None = None
    knob: KnobGeometry | None = None
    door: DoorGeometry | None = None

    def __post_init__(self) -> None:
        _set(self, "tags", _tags(self.tags, "fixture"))
        if self.half_extents is not None:
            _set(self, "half_extents", _vec(self.half_extents, 3, "fixture half_extents"))
        if self.pose is not None:
            _set(self, "pose", _vec(self.pose, 7, "fixture pose"))
        if self.knob is not None and not isinstance(self.knob, KnobGeometry):
            _set(self, "knob", KnobGeometry(**dict(self.knob)))
        if self.door is not None and not isinstance(self.door, DoorGeometry):
            _set(self, "door", DoorGeometry(**dict(self.door)))


@dataclass(frozen=True)
class DrawerGeometry:
    """Travel of a drawer region, both vectors in the owner fixture's frame.

    Attributes:
        closed_pos: ``(3,)`` position of the region's frame when the drawer is shut, m.
        axis: ``(3,)`` opening direction (normalised here).
        open_threshold: ``Open`` when pulled out at least this far, m.
        closed_threshold: ``Close`` when pulled out at most this far, m.
    """

    closed_pos: tuple[float, float, float]
    axis: tuple[float, float, float]
    open_threshold: float
    closed_threshold: float

    def __post_init__(self) -> None:
        _set(self, "closed_pos", _vec(self.closed_pos, 3, "drawer closed_pos"))
        a = np.asarray(_vec(self.axis, 3, "drawer axis"))
        n = float(np.linalg.norm(a))
        if n < 1e-9:
            raise ValueError("drawer axis must be non-zero")
        _set(self, "axis", tuple(float(x) for x in a / n))
        o, c = float(self.open_threshold), float(self.closed_threshold)
        if not c < o:
            raise ValueError(f"drawer closed_threshold ({c}) must be below open_threshold ({o})")
        _set(self, "open_threshold", o)
        _set(self, "closed_threshold", c)


@dataclass(frozen=True)
class RegionGeometry:
    """A named region (``main_table_plate_region``, ``wooden_cabinet_1_top_region``).

    Attributes:
        kind: one of :data:`REGION_KINDS`.
        owner: the entity it belongs to (the table, a fixture, an object such as a basket).
        tags: affordance tags.
        ranges: table regions: boxes ``(x_min, y_min, x_max, y_max)`` in the owner's (table's)
            frame, m, as in the task file.
        half_extents: other kinds: ``(3,)`` half sizes of the region box in its own frame, m; its
            frame's origin lies on the region's floor, so the box spans ``z`` in
            ``[0, 2 * half_extents[2]]``.
        frame_in_owner: fixed ``(7,)`` pose of the region's frame in the owner's frame, used when
            ``object_poses`` lacks the region (static regions: a cabinet top, a cook region), or
            None. Drawer regions move, so perception must publish their pose.
        drawer: travel data of a drawer region (needed for ``Open``/``Close``).
    """

    kind: str
    owner: str
    tags: frozenset[str] = frozenset()
    ranges: tuple[tuple[float, float, float, float], ...] = ()
    half_extents: tuple[float, float, float] | None = None
    frame_in_owner: tuple[float, ...] | None = None
    drawer: DrawerGeometry | None = None

    def __post_init__(self) -> None:
        if self.kind not in REGION_KINDS:
            raise ValueError(f"region kind must be one of {REGION_KINDS}, got {self.kind!r}")
        _set(self, "tags", _tags(self.tags, "region"))
        rs = tuple(_vec(r, 4, "region range (x_min, y_min, x_max, y_max)") for r in self.ranges)
        for r in rs:
            if r[0] > r[2] or r[1] > r[3]:
                raise ValueError(f"region range {r} has min > max")
        _set(self, "ranges", rs)
        if self.kind == "table" and not rs:
            raise ValueError("a table region needs ranges")
        if self.half_extents is not None:
            _set(self, "half_extents", _vec(self.half_extents, 3, "region half_extents"))
        elif self.kind != "table":
            raise ValueError(f"a {self.kind} region needs half_extents")
        if self.frame_in_owner is not None:
            _set(self, "frame_in_owner", _vec(self.frame_in_owner, 7, "region frame_in_owner"))
        if self.drawer is not None and not isinstance(self.drawer, DrawerGeometry):
            _set(self, "drawer", DrawerGeometry(**dict(self.drawer)))
        if self.drawer is not None and self.kind != "drawer":
            raise ValueError(f"only drawer regions carry drawer travel data, not {self.kind!r}")


def _proxy(d: Mapping, cls, what: str) -> Mapping:
    out = {}
    for k, v in dict(d).items():
        if isinstance(v, cls):
            out[str(k)] = v
        elif isinstance(v, Mapping):
            try:
                out[str(k)] = cls(**dict(v))
            except TypeError as e:
                raise ValueError(f"{what} {k!r}: {e}") from None
        else:
            raise ValueError(f"{what} {k!r} must be a {cls.__name__} or a mapping, got {v!r}")
    return MappingProxyType(out)


@dataclass(frozen=True)
class PoseWorldModel:
    """Everything besides poses that the pose-based predicates need, for one task's entities.

    Attributes:
        objects: object name -> :class:`ObjectGeometry`.
        fixtures: fixture name -> :class:`FixtureGeometry` (the table included).
        regions: region full name -> :class:`RegionGeometry`.
        table: name of the table fixture; its pose is the table frame (origin at the centre of the
            top surface, +z up) that table regions' ranges are given in.
        tolerances: :class:`PoseTolerances`.

    Raises:
        ValueError: malformed data, names used twice, a region whose owner is unknown, a table
            that is not among the fixtures.
    """

    objects: Mapping[str, ObjectGeometry] = field(hash=False)
    fixtures: Mapping[str, FixtureGeometry] = field(hash=False)
    regions: Mapping[str, RegionGeometry] = field(hash=False)
    table: str = "main_table"
    tolerances: PoseTolerances = PoseTolerances()

    def __post_init__(self) -> None:
        _set(self, "objects", _proxy(self.objects, ObjectGeometry, "object"))
        _set(self, "fixtures", _proxy(self.fixtures, FixtureGeometry, "fixture"))
        _set(self, "regions", _proxy(self.regions, RegionGeometry, "region"))
        if not isinstance(self.tolerances, PoseTolerances):
            _set(self, "tolerances", PoseTolerances(**dict(self.tolerances)))
        names = [*self.objects, *self.fixtures, *self.regions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"entity names used more than once: {dup}")
        if self.table not in self.fixtures:
            raise ValueError(f"table {self.table!r} is not among the fixtures "
                             f"{sorted(self.fixtures)}")
        for r, g in self.regions.items():
            if g.owner not in self.objects and g.owner not in self.fixtures:
                raise ValueError(f"region {r!r}: owner {g.owner!r} is neither an object nor a "
                                 "fixture of the model")

    # -------------------------------------------------------------------------- queries
    def entities(self) -> list[str]:
        """Object, fixture and region names (the poses perception may publish)."""
        return [*self.objects, *self.fixtures, *self.regions]

    def entity_tags(self) -> dict[str, frozenset[str]]:
        """Entity name -> affordance tags (what ``SymbolicProblem.entities`` holds)."""
        out: dict[str, frozenset[str]] = {}
        for d in (self.fixtures, self.objects, self.regions):
            for name, g in d.items():
                out[name] = frozenset(g.tags)
        return out

    def entity_sizes(self) -> dict[str, np.ndarray]:
        """Entity name -> ``(3,)`` float64 half extents of its bounding box in its own frame, m:
        the shape descriptor a skill's features carry per argument when its library is trained
        with ``training.object_sizes``
        (:func:`robot_skills.perception.placement.call_arg_sizes`).

        Objects and fixtures: their ``half_extents`` (a fixture without one is left out); regions
        with a box: its ``half_extents``; table regions: half the size of the rectangle around
        their ``ranges``, z = 0. The simulator's task world and the bridge's both hold a
        :class:`PoseWorldModel`, so a skill reads the same sizes in simulation and on a real arm.
        """
        out: dict[str, np.ndarray] = {}
        for name, g in self.objects.items():
            out[name] = np.asarray(g.half_extents, np.float64)
        for name, g in self.fixtures.items():
            if g.half_extents is not None:
                out[name] = np.asarray(g.half_extents, np.float64)
        for name, g in self.regions.items():
            if g.half_extents is not None:
                out[name] = np.asarray(g.half_extents, np.float64)
            elif g.ranges:
                r = np.asarray(g.ranges, np.float64)
                out[name] = np.array([(r[:, 2].max() - r[:, 0].min()) / 2,
                                      (r[:, 3].max() - r[:, 1].min()) / 2, 0.0])
        return out

    def tracked_entities(self) -> list[str]:
        """Entities whose pose perception must publish: objects, fixtures and regions without a
        fixed pose, tracked knobs and tracked doors."""
        out = list(self.objects)
        out += [f for f, g in self.fixtures.items() if g.pose is None]
        out += [r for r, g in self.regions.items()
                if g.kind != "table" and g.frame_in_owner is None]
        out += [g.knob.entity for g in self.fixtures.values() if g.knob is not None]
        out += [g.door.entity for g in self.fixtures.values() if g.door is not None]
        return out

    def check_atoms(self, atoms: Iterable[Atom]) -> None:
        """Raise if some atom cannot be evaluated from poses with this model.

        Raises:
            ValueError: unknown predicate, wrong arity, or an entity the model does not know.
            UnsupportedPredicateError: ``Turnon``/``Turnoff`` of a switch without a tracked knob,
                ``Open``/``Close`` of a drawer region without travel data or of an ``openable``
                fixture without a tracked door.
        """
        known = set(self.entities())
        for a in atoms:
            p, args = _split(a)
            unknown = [x for x in args if x not in known]
            if unknown:
                raise ValueError(f"atom {a!r} names entities the model does not know: {unknown}")
            f = self.fixtures.get(args[0]) if p in ("turnon", "turnoff") else None
            if f is not None and f.knob is None and "switchable" in f.tags:
                raise UnsupportedPredicateError(_no_knob(args[0]))
            if p in ("open", "close") and args[0] in self.regions:
                g = self.regions[args[0]]
                if g.kind == "drawer" and g.drawer is None:
                    raise UnsupportedPredicateError(_no_drawer(args[0]))
            if p in ("open", "close") and args[0] in self.fixtures:
                f = self.fixtures[args[0]]
                if f.door is None and "openable" in f.tags:
                    raise UnsupportedPredicateError(_no_door(args[0]))

    # -------------------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """Plain lists/dicts/numbers (YAML/JSON-able); :meth:`from_dict` reads it back."""
        def clean(v):
            if isinstance(v, (frozenset, set)):
                return sorted(v)
            if isinstance(v, tuple):
                return [clean(x) for x in v]
            if isinstance(v, Mapping):
                return {k: clean(x) for k, x in v.items()}
            if hasattr(v, "__dataclass_fields__"):
                return {k: clean(getattr(v, k)) for k in v.__dataclass_fields__
                        if getattr(v, k) is not None}
            return v

        return {"table": self.table, "tolerances": clean(self.tolerances),
                "objects": clean(dict(self.objects)), "fixtures": clean(dict(self.fixtures)),
                "regions": clean(dict(self.regions))}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PoseWorldModel:
        """Build from the layout :meth:`to_dict` writes (e.g. ``yaml.safe_load`` of a file)::

            table: main_table
            objects:
              akita_black_bowl_1: {half_extents: [0.037, 0.037, 0.0225], grasp_width: 0.072,
                                   tags: [graspable, surface, container]}
            fixtures:
              main_table: {half_extents: [0.6, 0.6, 0.45], pose: [0.63, 0, 0, 1, 0, 0, 0]}
              flat_stove_1: {tags: [switchable], knob: {entity: flat_stove_1_knob}}
              microwave_1: {tags: [openable], door: {entity: microwave_1_door, axis: [0, 0, -1],
                                                     open_threshold: 1.3, closed_threshold: 0.02}}
            regions:
              main_table_plate_region: {kind: table, owner: main_table,
                                        ranges: [[0.04, -0.03, 0.06, -0.01]]}

        Raises:
            ValueError: unknown keys or malformed values (the message names the entry).
        """
        d = dict(d)
        extra = sorted(set(d) - {"table", "tolerances", "objects", "fixtures", "regions"})
        if extra:
            raise ValueError(f"unknown pose-model keys {extra}")
        return cls(objects=d.get("objects", {}) or {}, fixtures=d.get("fixtures", {}) or {},
                   regions=d.get("regions", {}) or {}, table=d.get("table", "main_table"),
                   tolerances=PoseTolerances(**dict(d.get("tolerances", {}) or {})))


def _no_knob(s: str) -> str:
    return (f"Turnon/Turnoff of {s!r} cannot be decided from poses: the model has no KnobGeometry "
            "for it (its knob is not a tracked entity)")


def _no_door(f: str) -> str:
    return (f"Open/Close of {f!r} cannot be decided from poses: the model has no DoorGeometry "
            "for it (its door is not a tracked entity)")


def _no_drawer(r: str) -> str:
    return (f"Open/Close of {r!r} cannot be decided from poses: the model has no DrawerGeometry "
            "(closed position and axis) for it")


def _split(a: Atom) -> tuple[str, tuple[str, ...]]:
    if not isinstance(a, tuple) or not a:
        raise ValueError(f"an atom is a non-empty tuple of strings, got {a!r}")
    p, args = str(a[0]).lower(), tuple(a[1:])
    arity = {"on": 2, "in": 2, "open": 1, "close": 1, "turnon": 1, "turnoff": 1, "holding": 1,
             "handempty": 0}
    if p not in arity or len(args) != arity[p]:
        raise ValueError(f"cannot evaluate atom {a!r}: unknown predicate or wrong number of "
                         "arguments (known: on/2, in/2, open/1, close/1, turnon/1, turnoff/1, "
                         "holding/1, handempty/0)")
    return p, args


# ------------------------------------------------------------------------------------------
# geometry


def quat_to_mat(q) -> np.ndarray:
    """``(3, 3)`` rotation matrix of a ``(w, x, y, z)`` quaternion of any non-zero norm.

    Raises:
        ValueError: a zero-norm quaternion.
    """
    w, x, y, z = q
    n = w * w + x * x + y * y + z * z
    if not n > 1e-12:
        raise ValueError(f"quaternion {tuple(q)} has zero norm")
    s = 2.0 / n
    return np.array([
        [1 - s * (y * y + z * z), s * (x * y - w * z), s * (x * z + w * y)],
        [s * (x * y + w * z), 1 - s * (x * x + z * z), s * (y * z - w * x)],
        [s * (x * z - w * y), s * (y * z + w * x), 1 - s * (x * x + y * y)],
    ])


def _mat_quat(R: np.ndarray) -> np.ndarray:
    """Scalar-first unit quaternion of a rotation matrix (Shepperd's method)."""
    t = float(np.trace(R))
    if t > 0:
        s = 2.0 * math.sqrt(t + 1.0)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + R[i, i] - R[j, j] - R[k, k], 1e-12))
        q = [0.0] * 4
        q[0] = (R[k, j] - R[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (R[j, i] + R[i, j]) / s
        q[1 + k] = (R[k, i] + R[i, k]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q)


def knob_angle(knob: KnobGeometry, fixture_pose, knob_pose) -> float:
    """Signed rotation of the knob about its axis from its zero orientation, rad in ``[-pi, pi]``.

    Args:
        knob: the knob's geometry.
        fixture_pose, knob_pose: ``(7,)`` base-frame poses of the fixture and of the knob entity.
    """
    return _angle_about(knob.axis, knob.zero_quat, fixture_pose, knob_pose)


def door_angle(door: DoorGeometry, fixture_pose, door_pose) -> float:
    """Signed swing of a hinged door about its hinge axis from its shut orientation, rad in
    ``[-pi, pi]`` (positive = open).

    Args:
        door: the door's geometry.
        fixture_pose, door_pose: ``(7,)`` base-frame poses of the fixture and of the door entity.
    """
    return _angle_about(door.axis, door.zero_quat, fixture_pose, door_pose)


def _angle_about(axis, zero_quat, fixture_pose, part_pose) -> float:
    """Rotation of a part's frame relative to the fixture, since its zero orientation, about
    ``axis`` (fixture frame), rad in ``[-pi, pi]``."""
    Rf = quat_to_mat(np.asarray(fixture_pose, float)[3:7])
    Rk = quat_to_mat(np.asarray(part_pose, float)[3:7])
    D = (Rf.T @ Rk) @ quat_to_mat(zero_quat).T      # rotation since zero, fixture frame
    q = _mat_quat(D)
    return math.remainder(2.0 * math.atan2(float(np.dot(q[1:], axis)), float(q[0])),
                          2 * math.pi)


def drawer_travel(drawer: DrawerGeometry, owner_pose, region_pose) -> float:
    """How far a drawer is pulled out, m: the region frame's displacement from its closed
    position along the opening axis (both in the owner's frame).

    Args:
        drawer: the drawer's travel data.
        owner_pose, region_pose: ``(7,)`` base-frame poses of the cabinet and the drawer region.
    """
    po = np.asarray(owner_pose, float)
    Ro = quat_to_mat(po[3:7])
    local = Ro.T @ (np.asarray(region_pose, float)[:3] - po[:3])
    return float(np.dot(local - np.asarray(drawer.closed_pos), drawer.axis))


class _Box:
    """An object's oriented bounding box in the base frame."""

    __slots__ = ("p", "R", "h", "lo", "hi")

    def __init__(self, p: np.ndarray, R: np.ndarray, h: np.ndarray, shape: str) -> None:
        self.p, self.R, self.h = p, R, h
        wh = np.abs(R) @ h
        if shape == "cylinder":
            # extent along each base axis of a cylinder about the object's z: |axis . z| * hz
            # from the caps plus the disc's radius times the sine of the tilt
            wh = np.abs(R[:, 2]) * h[2] + h[0] * np.sqrt(np.clip(1.0 - R[:, 2] ** 2, 0.0, 1.0))
        self.lo, self.hi = p - wh, p + wh


class _Scene:
    """Poses of one evaluation, resolved (and checked) lazily."""

    def __init__(self, model: PoseWorldModel, poses: Mapping[str, Any]) -> None:
        self.m, self.tol, self.poses = model, model.tolerances, poses
        self._frames: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._boxes: dict[str, _Box] = {}

    def frame(self, name: str, why: str = "") -> tuple[np.ndarray, np.ndarray]:
        """``(position (3,), rotation (3, 3))`` of ``name`` in the base frame."""
        f = self._frames.get(name)
        if f is not None:
            return f
        raw = self.poses.get(name)
        if raw is not None:
            v = np.asarray(raw, dtype=np.float64).reshape(-1)
            if v.shape != (7,) or not np.all(np.isfinite(v)):
                raise ValueError(f"pose of {name!r} must be 7 finite numbers [x, y, z, qw, qx, "
                                 f"qy, qz], got {raw!r}")
            f = (v[:3], quat_to_mat(v[3:7]))
        elif name in self.m.fixtures and self.m.fixtures[name].pose is not None:
            v = np.asarray(self.m.fixtures[name].pose)
            f = (v[:3], quat_to_mat(v[3:7]))
        elif name in self.m.regions and self.m.regions[name].frame_in_owner is not None:
            g = self.m.regions[name]
            po, Ro = self.frame(g.owner, why or f"region {name}")
            v = np.asarray(g.frame_in_owner)
            f = (po + Ro @ v[:3], Ro @ quat_to_mat(v[3:7]))
        else:
            raise MissingPoseError(name, why)
        self._frames[name] = f
        return f

    def box(self, obj: str) -> _Box:
        b = self._boxes.get(obj)
        if b is None:
            p, R = self.frame(obj, "its bounding box")
            g = self.m.objects[obj]
            b = self._boxes[obj] = _Box(p, R, np.asarray(g.half_extents), g.shape)
        return b

    # ------------------------------------------------------------------ predicates
    def in_ranges(self, p: np.ndarray, region: RegionGeometry) -> bool:
        po, Ro = self.frame(region.owner, "a table region's frame")
        x, y = (Ro.T @ (p - po))[:2]
        t = self.tol.region_xy
        return any(x0 - t <= x <= x1 + t and y0 - t <= y <= y1 + t
                   for x0, y0, x1, y1 in region.ranges)

    def table_top(self) -> float:
        return float(self.frame(self.m.table, "the table top")[0][2])

    def rests_at(self, bottom: float, surface: float) -> bool:
        """A bottom at height ``bottom`` rests on a surface at height ``surface``."""
        return -self.tol.penetration <= bottom - surface <= self.tol.contact

    def on_object(self, a: str, b: str) -> bool:
        if a == b:
            return False
        A, B = self.box(a), self.box(b)
        if not (B.lo[0] <= A.p[0] <= B.hi[0] and B.lo[1] <= A.p[1] <= B.hi[1]):
            return False
        if not A.lo[2] > B.lo[2] + self.tol.support:
            return False
        floor = self.m.objects[b].floor_height
        surface = B.hi[2] if floor is None else B.lo[2] + floor
        return self.rests_at(A.lo[2], surface)

    def on_surface(self, a: str, r: str, g: RegionGeometry) -> bool:
        A = self.box(a)
        pr, Rr = self.frame(r)
        loc = Rr.T @ (A.p - pr)
        t = self.tol.region_xy
        hx, hy, _ = g.half_extents
        return bool(abs(loc[0]) <= hx + t and abs(loc[1]) <= hy + t and loc[2] > 0
                    and self.rests_at(A.lo[2], pr[2]))

    def on(self, a: str, b: str) -> bool:
        m = self.m
        if a == b:
            return False
        if a in m.fixtures:
            g = m.regions.get(b)
            if g is None or g.kind != "table" or a == m.table:
                return False
            return self.in_ranges(self.frame(a)[0], g)
        if a not in m.objects:
            return False
        if b in m.objects:
            return self.on_object(a, b)
        g = m.regions.get(b)
        if g is None or g.owner == a:
            return False
        if g.kind == "table":
            A = self.box(a)
            return (self.in_ranges(A.p, g) and self.rests_at(A.lo[2], self.table_top())
                    and not any(self.on_object(a, b) for b in m.objects))
        if g.kind == "surface":
            return self.on_surface(a, b, g)
        return False

    def inside(self, a: str, r: str) -> bool:
        g = self.m.regions.get(r)
        if g is None or a not in self.m.objects or g.owner == a:
            return False
        p = self.box(a).p
        if g.kind == "table":
            return self.in_ranges(p, g)
        pr, Rr = self.frame(r)
        loc = Rr.T @ (p - pr)
        hx, hy, hz = g.half_extents
        below = self.tol.region_z_below
        if not (abs(loc[0]) <= hx and abs(loc[1]) <= hy):
            return False
        if -below <= loc[2] <= 2 * hz:
            return True
        # taller than the region (a bottle standing in an open drawer): its bottom is in the
        # region's lower half
        bottom = self.box(a).lo[2] - pr[2]
        return bool(loc[2] >= -below and -below <= bottom <= hz)

    def travel(self, r: str) -> float | None:
        g = self.m.regions.get(r)
        if g is None or g.kind != "drawer":
            return None
        if g.drawer is None:
            raise UnsupportedPredicateError(_no_drawer(r))
        return drawer_travel(g.drawer, _pose7(*self.frame(g.owner, f"Open/Close of {r}")),
                             _pose7(*self.frame(r, f"Open/Close of {r}")))

    def door(self, f: str) -> float | None:
        """The door angle of fixture ``f``, rad; None when ``f`` has no door (and is not
        ``openable``)."""
        g = self.m.fixtures.get(f)
        if g is None or (g.door is None and "openable" not in g.tags):
            return None
        if g.door is None:
            raise UnsupportedPredicateError(_no_door(f))
        why = f"Open/Close of {f}"
        return door_angle(g.door, _pose7(*self.frame(f, why)),
                          _pose7(*self.frame(g.door.entity, why)))

    def knob(self, s: str) -> float | None:
        f = self.m.fixtures.get(s)
        if f is None or ("switchable" not in f.tags and f.knob is None):
            return None
        if f.knob is None:
            raise UnsupportedPredicateError(_no_knob(s))
        why = f"Turnon/Turnoff of {s}"
        return knob_angle(f.knob, _pose7(*self.frame(s, why)),
                          _pose7(*self.frame(f.knob.entity, why)))

    def supported(self, o: str) -> bool:
        """Whether ``o`` rests on something (within ``contact``): not lifted."""
        m, tol = self.m, self.tol
        A = self.box(o)
        # the table top
        pt, Rt = self.frame(m.table, "the table top")
        th = m.fixtures[m.table].half_extents
        loc = Rt.T @ (A.p - pt)
        over = th is None or (abs(loc[0]) <= th[0] and abs(loc[1]) <= th[1])
        if over and A.lo[2] <= pt[2] + tol.contact:
            return True
        for b in m.objects:
            if b != o and self.on_object(o, b):
                return True
        for f in self._plain_fixtures():
            pf, Rf = self.frame(f, "supports of a held object")
            loc = Rf.T @ (A.p - pf)
            hx, hy, hz = m.fixtures[f].half_extents
            if not (abs(loc[0]) <= hx and abs(loc[1]) <= hy
                    and self.rests_at(A.lo[2], pf[2] + 2 * hz)):
                continue
            # over one of the fixture's open bays (a desk caddy's) it is going in, not resting
            # on the rims
            bays = [r for r, g in m.regions.items() if g.owner == f and g.kind != "table"]
            if not any(self._over(A.p, r) for r in bays):
                return True
        for r, g in m.regions.items():
            if g.owner == o or g.kind == "table":
                continue
            if g.kind == "surface":
                if self.on_surface(o, r, g):
                    return True
            elif self.inside(o, r) and A.lo[2] <= self.frame(r)[0][2] + tol.contact:
                return True
            elif (g.kind == "shelf" and self.rests_at(A.lo[2], self.frame(r)[0][2])
                  and self._overlaps(A, r)):
                # partly over a shelf board and level with it: a book slid onto the board from
                # the shelf's open front (not for other kinds: a mug's bounding box, grown to
                # cover its handle, overlaps a microwave's cavity before the mug is over it)
                return True
        return False

    def _over(self, p: np.ndarray, r: str) -> bool:
        """Whether point ``p`` lies within region ``r``'s x/y half-extents (region frame)."""
        pr, Rr = self.frame(r)
        loc = Rr.T @ (p - pr)
        hx, hy, _ = self.m.regions[r].half_extents
        return bool(abs(loc[0]) <= hx and abs(loc[1]) <= hy)

    def _overlaps(self, A: _Box, r: str) -> bool:
        """Whether the footprint of box ``A`` (its corners' x/y extent in region ``r``'s frame)
        overlaps ``r``'s x/y half-extents grown by ``region_xy``."""
        pr, Rr = self.frame(r)
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        corners = (A.p + (signs * A.h) @ A.R.T - pr) @ Rr
        hx, hy, _ = self.m.regions[r].half_extents
        hx, hy = hx + self.tol.region_xy, hy + self.tol.region_xy
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        return bool(lo[0] <= hx and hi[0] >= -hx and lo[1] <= hy and hi[1] >= -hy)

    def _plain_fixtures(self) -> list[str]:
        """Fixtures whose top is a support of its own: not the table, with half extents, and
        without surface regions (those stand for the fixture's top: a rack's top region is the
        floor inside its collar, not the collar's rim). A desk caddy (open bays, no surface
        region) is one; :meth:`supported` skips its top over a bay."""
        m = self.m
        with_surface = {g.owner for g in m.regions.values() if g.kind == "surface"}
        return [f for f, g in m.fixtures.items()
                if f != m.table and g.half_extents is not None and f not in with_surface]

    def holding(self, o: str, width: float | None, ee: np.ndarray | None) -> bool:
        if width is None or ee is None:
            raise ValueError("evaluating 'holding'/'handempty' needs gripper_width and ee_pos")
        g = self.m.objects.get(o)
        if g is None or not _holdable(g):
            return False
        tol = self.tol
        widest = max((g.holding_width, *g.grasp_widths))
        if not (tol.grip_closed_width < width <= widest + tol.grip_width_margin):
            return False
        A = self.box(o)
        loc = np.abs(A.R.T @ (ee - A.p))
        if np.any(loc > A.h + tol.grasp_zone):
            return False
        return not self.supported(o)

    def eval(self, a: Atom, width, ee) -> bool:
        p, args = _split(a)
        if p == "on":
            return self.on(*args)
        if p == "in":
            return self.inside(*args)
        if p in ("open", "close"):
            q = self.door(args[0])
            if q is not None:
                d = self.m.fixtures[args[0]].door
                return q >= d.open_threshold if p == "open" else q <= d.closed_threshold
            q = self.travel(args[0])
            if q is None:
                return False
            g = self.m.regions[args[0]].drawer
            return q >= g.open_threshold if p == "open" else q <= g.closed_threshold
        if p in ("turnon", "turnoff"):
            q = self.knob(args[0])
            if q is None:
                return False
            thr = self.m.fixtures[args[0]].knob.on_threshold
            return q >= thr if p == "turnon" else q < thr
        if p == "holding":
            return self.holding(args[0], width, ee)
        return not any(self.holding(o, width, ee) for o in self.m.objects)

    def holdable(self) -> list[str]:
        return [o for o, g in self.m.objects.items() if _holdable(g)]


def _holdable(g: ObjectGeometry) -> bool:
    return "graspable" in g.tags or g.grasp_width is not None


def _pose7(p: np.ndarray, R: np.ndarray) -> np.ndarray:
    return np.concatenate([p, _mat_quat(R)])


def evaluate_pose_predicates(
    model: PoseWorldModel,
    object_poses: Mapping[str, Any],
    gripper_width: float | None,
    ee_pos: Any | None,
    atoms: Iterable[Atom] | None = None,
) -> frozenset[Atom]:
    """The atoms that hold, decided from poses (see the module docstring for the rules).

    Args:
        model: geometry and tags of the task's entities.
        object_poses: entity name -> ``(7,)`` ``[x, y, z, qw, qx, qy, qz]`` in the robot base
            frame (m; the quaternion need not be normalised). Entities with a fixed pose in the
            model may be absent; extra entries are ignored.
        gripper_width: distance between the fingers, m; None to skip ``holding``/``handempty``.
        ee_pos: ``(3,)`` tool-centre-point position in the base frame, m; None as above.
        atoms: the atoms to decide; the result is the subset that holds. None: every true atom
            over the model's entities — ``on`` (object on object, object on a table or surface
            region, fixture on a table region), ``in`` (object in a drawer/container/shelf/
            enclosure region), ``open``/``close`` of drawer regions with travel data and of
            fixtures with a tracked door (between the thresholds: neither),
            ``turnon``/``turnoff`` of fixtures with a tracked knob, and,
            when ``gripper_width`` and ``ee_pos`` are given, ``holding``/``handempty``.

    Returns:
        A frozenset of atoms (lower-case predicate first), e.g.
        ``{("on", "akita_black_bowl_1", "plate_1"), ("handempty",)}``.

    Raises:
        ValueError: an unknown predicate or wrong arity; an atom naming an entity the model does
            not know; a malformed pose; ``holding``/``handempty`` asked for without
            ``gripper_width``/``ee_pos``.
        UnsupportedPredicateError: an atom the model lacks the data for (``Turnon`` of a stove
            whose knob is not tracked, ``Open`` of a drawer without travel data or of an
            ``openable`` fixture without a tracked door).
        MissingPoseError: a pose the decision needs is absent.
    """
    ee = None if ee_pos is None else np.asarray(ee_pos, dtype=np.float64).reshape(3)
    width = None if gripper_width is None else float(gripper_width)
    sc = _Scene(model, object_poses)
    if atoms is not None:
        atoms = [(str(a[0]).lower(), *a[1:]) for a in atoms]
        model.check_atoms(atoms)
        return frozenset(a for a in atoms if sc.eval(a, width, ee))
    m = model
    out: set[Atom] = set()
    objs = list(m.objects)
    for a in objs:
        for b in objs:
            if a != b and sc.on_object(a, b):
                out.add(("on", a, b))
        for r, g in m.regions.items():
            if g.kind in ("table", "surface"):
                if sc.on(a, r):
                    out.add(("on", a, r))
            elif sc.inside(a, r):
                out.add(("in", a, r))
    for f in m.fixtures:
        if f == m.table:
            continue
        for r, g in m.regions.items():
            if g.kind == "table" and sc.on(f, r):
                out.add(("on", f, r))
    for r, g in m.regions.items():
        if g.kind == "drawer" and g.drawer is not None:
            q = sc.travel(r)
            if q >= g.drawer.open_threshold:
                out.add(("open", r))
            elif q <= g.drawer.closed_threshold:
                out.add(("close", r))
    for f, g in m.fixtures.items():
        if g.door is not None:
            q = sc.door(f)
            if q >= g.door.open_threshold:
                out.add(("open", f))
            elif q <= g.door.closed_threshold:
                out.add(("close", f))
        if g.knob is not None:
            out.add(("turnon" if sc.knob(f) >= g.knob.on_threshold else "turnoff", f))
    if width is not None and ee is not None:
        held = [o for o in sc.holdable() if sc.holding(o, width, ee)]
        out.update(("holding", o) for o in held)
        if not held:
            out.add(("handempty",))
    return frozenset(out)


# ------------------------------------------------------------------------------------------
# the TaskWorld seam


class PoseTaskWorld:
    """A robot in a task whose predicate state comes from perceived object poses.

    Implements :class:`robot_skills.execution.interfaces.TaskWorld` for a real arm: each query
    reads ``robot.observe()`` and evaluates :func:`evaluate_pose_predicates` on its
    ``object_poses``, ``gripper_width`` and ``ee_pos`` (all base frame).

    Args:
        robot: the arm (a :class:`robot_skills.robot.Robot`).
        model: geometry and tags of the task's entities.
        goal: the goal atoms (a conjunction), or anything with a ``goal`` attribute (a parsed
            :class:`robot_skills.tasks.bddl.BddlTask`).
        pose_source: optional ``pose_source(obs) -> {entity: (7,) pose}`` replacing
            ``obs.object_poses`` (e.g. to merge a separate knob tracker's output).

    Raises:
        ValueError / UnsupportedPredicateError: if a goal atom cannot be decided with ``model``
            (checked here, not halfway through an episode).
    """

    def __init__(self, robot, model: PoseWorldModel, goal,
                 pose_source: Callable[[Any], Mapping[str, Any]] | None = None) -> None:
        self.robot = robot
        self.model = model
        atoms = getattr(goal, "goal", goal)
        self.goal: tuple[Atom, ...] = tuple((str(a[0]).lower(), *a[1:]) for a in atoms)
        model.check_atoms(self.goal)
        self.pose_source = pose_source

    @property
    def world_model(self) -> PoseWorldModel:
        """:attr:`model`, under the name every task world gives its geometry by (what a
        placement's release point is chosen from, :mod:`robot_skills.perception.placement`)."""
        return self.model

    def _inputs(self):
        obs = self.robot.observe()
        poses = obs.object_poses if self.pose_source is None else self.pose_source(obs)
        return poses, obs.gripper_width, obs.ee_pos

    def predicate_state(self) -> frozenset[Atom]:
        """Every atom true now (see :func:`evaluate_pose_predicates` with ``atoms=None``)."""
        return evaluate_pose_predicates(self.model, *self._inputs())

    def goal_progress(self) -> dict[Atom, bool]:
        """Each goal atom and whether it holds now."""
        true = evaluate_pose_predicates(self.model, *self._inputs(), atoms=self.goal)
        return {a: a in true for a in self.goal}

    def success(self) -> bool:
        """True when every goal atom holds (an empty goal is never a success)."""
        prog = self.goal_progress()
        return bool(prog) and all(prog.values())

    def symbolic_problem(self) -> SymbolicProblem:
        """Entities with tags (from the model), the current predicate state, the goal atoms."""
        return SymbolicProblem(entities=self.model.entity_tags(), state=self.predicate_state(),
                               goal=frozenset(self.goal))
