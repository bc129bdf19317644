"""Evaluate BDDL predicates (and the planner's ``holding``/``handempty``) from MuJoCo state.

Semantics follow LIBERO's (``libero/envs/predicates``), made explicit here. All positions are in
the world (= robot base) frame, m; "contact" means a MuJoCo contact with distance <=
:data:`CONTACT_TOL` (object geoms report contacts up to 5 mm apart, see :mod:`sim.assets`), so call
``mj_forward`` (or ``mj_step``) before evaluating.

* ``On(a, b)`` for an object ``b``: ``a``'s lowest point is above ``b``'s lowest point, ``a``'s
  centre lies within ``b``'s horizontal bounding box, and ``a`` touches ``b``. (A cream-cheese box
  inside a bowl is ``On`` the bowl, as in LIBERO's ``put the cream cheese in the bowl``.)
* ``On(a, r)`` for a table region ``r``: ``a``'s centre lies in one of ``r``'s range boxes (table
  frame, grown by :data:`REGION_XY_TOL`) and ``a`` touches the table. For a fixture standing on a
  table region only the centre test applies (fixtures are welded).
* ``On(a, r)`` for a fixture surface region (cook region, cabinet top, wine-rack top): ``a``'s
  centre, in the region site's frame, is within the site's x/y half-size (+ tolerance), above the
  site, and ``a`` touches the body carrying the site.
* ``In(a, r)`` for a drawer, basket/tray, caddy compartment, shelf level or the microwave's
  heating region: ``a``'s centre, in the site's frame, is within the site's x/y half-size; its
  centre is between the site's floor (-1 cm) and ``2 * size[2]`` above it, or (for objects taller
  than the region, e.g. a bottle standing in an open drawer) its lowest point is between the floor
  (-1 cm) and ``size[2]`` above it.
* ``Open(d)`` / ``Close(d)`` for a drawer region: the drawer's slide joint is at least
  :data:`sim.assets.DRAWER_OPEN_THRESHOLD` out / at most :data:`sim.assets.DRAWER_CLOSED_THRESHOLD`.
  For a fixture with a hinged door (the microwave, ``(Open microwave_1)``): the door hinge angle
  is at least :data:`sim.assets.DOOR_OPEN_THRESHOLD` / at most
  :data:`sim.assets.DOOR_CLOSED_THRESHOLD` rad (LIBERO: open beyond 1.3 rad).
* ``Turnon(s)`` / ``Turnoff(s)`` for a stove: its knob angle is >= / <
  :data:`sim.assets.KNOB_ON_THRESHOLD`.
* ``holding(o)``: geoms of both fingers touch ``o`` and nothing (besides the fingers) whose
  lowest point is below ``o``'s supports it, i.e. it is lifted off its support. A body supports
  ``o`` when one of their contacts pushes ``o`` upward (contact normal into ``o`` with a z
  component of at least :data:`SUPPORT_NORMAL_Z`); a held bowl grazing the side of a bottle
  standing on the table (horizontal normals) is still held.
  ``handempty``: no object is held. Both are only reported when finger geoms are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_skills.domain.predicates import Atom
from sim.assets import (
    DOOR_CLOSED_THRESHOLD,
    DOOR_OPEN_THRESHOLD,
    DRAWER_CLOSED_THRESHOLD,
    DRAWER_OPEN_THRESHOLD,
    KNOB_ON_THRESHOLD,
)
from sim.scene import SceneInfo

CONTACT_TOL = 0.005
"""Two geoms closer than this (m) count as touching."""
REGION_XY_TOL = 0.01
"""Horizontal tolerance of region membership tests, m."""
REGION_Z_BELOW = 0.01
"""How far below a region site's floor an object centre may be and still count as in it, m."""
SUPPORT_TOL = 0.002
"""An object counts as supported by a body whose lowest point is this much (m) below its own."""
SUPPORT_NORMAL_Z = 0.5
"""A contact supports an object when its normal, pointing from the other body into the object,
has at least this z component (the touching surfaces are inclined at most 60 deg): side contacts
(a held object grazing a standing bottle, horizontal normals) do not."""


@dataclass
class _Static:
    """Indices computed once per model."""

    collision_geoms: np.ndarray
    """Ids of every collision geom, ordered by body (MuJoCo numbers geoms body by body)."""
    body_slot: np.ndarray
    """``(nbody,)`` row of each body in the per-body AABB table; -1 for bodies without geoms."""
    body_starts: np.ndarray
    """Start of each body's run in :attr:`collision_geoms` (for ``np.minimum.reduceat``)."""
    obj_body: dict[str, int]
    fixture_bodies: dict[str, frozenset[int]]
    region_site: dict[str, int]
    region_body: dict[str, int]
    joint_qadr: dict[str, int]
    table_body: int


def _static(model: mujoco.MjModel, info: SceneInfo) -> _Static:
    cache = info.__dict__.setdefault("_predicate_cache", {})
    key = id(model)
    st = cache.get(key)
    if st is not None and st[0] is model:
        return st[1]
    collide = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    obj_body = {o: model.body(o).id for o in info.objects}
    fixture_bodies = {f: frozenset(model.body(b).id for b in fx.bodies)
                      for f, fx in info.fixtures.items()}
    region_site = {r: model.site(ri.site).id for r, ri in info.regions.items()}
    region_body = {r: model.body(ri.body).id for r, ri in info.regions.items()}
    joint_qadr = {}
    for fx in info.fixtures.values():
        for j in fx.joints.values():
            joint_qadr[j] = int(model.jnt_qposadr[model.joint(j).id])
    geoms = np.nonzero(collide)[0]
    owners = model.geom_bodyid[geoms]
    if np.any(np.diff(owners) < 0):
        raise RuntimeError("MuJoCo geoms are expected to be numbered body by body")
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(geoms) else \
        np.zeros(0, dtype=int)
    slot = np.full(model.nbody, -1)
    slot[owners[starts]] = np.arange(len(starts))
    s = _Static(geoms, slot, starts, obj_body, fixture_bodies, region_site,
                region_body, joint_qadr, model.body(info.table).id)
    cache[key] = (model, s)
    return s


class _Snapshot:
    """Per-state quantities: contacts between bodies/geoms, lowest points, bounding boxes.

    The contact list is read once as arrays (``data.contact.geom`` / ``.dist``) and queried with
    numpy masks; a Python loop over MuJoCo's contacts (hundreds of them once the arm pushes objects
around) was the largest per-step cost of the env's ``info``.
    """

    def __init__(self, model, data, info: SceneInfo, st: _Static):
        self.model, self.data, self.info, self.st = model, data, info, st
        if data.ncon:
            keep = data.contact.dist <= CONTACT_TOL
            g = data.contact.geom[keep]
            nz = data.contact.frame[keep, 2]        # normal (geom1 -> geom2), z component
        else:
            g = np.empty((0, 2), dtype=np.int32)
            nz = np.empty(0)
        b = model.geom_bodyid[g]
        # Both directions, so "what does body X touch" is one mask.
        self._src = np.concatenate([b[:, 0], b[:, 1]])
        self._dst_body = np.concatenate([b[:, 1], b[:, 0]])
        self._dst_geom = np.concatenate([g[:, 1], g[:, 0]])
        # z of the contact normal pointing from the other body into the source body
        self._up_into_src = np.concatenate([-nz, nz])
        self._boxes: np.ndarray | None = None

    def touched_bodies(self, body: int) -> np.ndarray:
        """Ids of the bodies in contact with ``body`` (may repeat)."""
        return self._dst_body[self._src == body]

    def supporting_bodies(self, body: int) -> set[int]:
        """Ids of the bodies with a contact pushing ``body`` upward (normal z into ``body`` at
        least :data:`SUPPORT_NORMAL_Z`)."""
        m = (self._src == body) & (self._up_into_src >= SUPPORT_NORMAL_Z)
        return set(self._dst_body[m].tolist())

    def touched_geoms(self, body: int) -> set[int]:
        """Ids of the geoms (of other bodies) in contact with ``body``."""
        return set(self._dst_geom[self._src == body].tolist())

    def touches(self, b1: int, bodies) -> bool:
        """Whether body ``b1`` touches body ``bodies`` (an id) or any of ``bodies`` (ids)."""
        other = self.touched_bodies(b1)
        if isinstance(bodies, (int, np.integer)):
            return bool((other == bodies).any())
        return bool(np.isin(other, np.fromiter(bodies, dtype=np.int64)).any())

    def aabb(self, body: int) -> np.ndarray:
        """``(2, 3)`` world min/max corners of a body's collision geoms (its position if none)."""
        k = self.st.body_slot[body]
        if k < 0:
            p = self.data.xpos[body]
            return np.stack([p, p])
        if self._boxes is None:
            self._boxes = self._all_body_boxes()
        return self._boxes[k]

    def _all_body_boxes(self) -> np.ndarray:
        # World AABB of every collision geom at once, then per-body min/max over each body's
        # contiguous run of geoms: one vectorised pass instead of one per queried body.
        m, d, st = self.model, self.data, self.st
        g = st.collision_geoms
        aabb = m.geom_aabb[g]                      # (n, 6): centre, half (geom frame)
        R = d.geom_xmat[g].reshape(-1, 3, 3)
        c = d.geom_xpos[g] + (R @ aabb[:, :3, None])[..., 0]
        h = (np.abs(R) @ aabb[:, 3:, None])[..., 0]
        lo = np.minimum.reduceat(c - h, st.body_starts, axis=0)
        hi = np.maximum.reduceat(c + h, st.body_starts, axis=0)
        return np.stack([lo, hi], axis=1)

    def low(self, body: int) -> float:
        return float(self.aabb(body)[0, 2])

    def center(self, body: int) -> np.ndarray:
        return self.data.xpos[body]

    def site_local(self, site: int, p: np.ndarray) -> np.ndarray:
        R = self.data.site_xmat[site].reshape(3, 3)
        return R.T @ (p - self.data.site_xpos[site])


def _entity_body(info: SceneInfo, st: _Static, name: str) -> int | None:
    if name in st.obj_body:
        return st.obj_body[name]
    if name in info.fixtures:
        return next(iter(b for b in st.fixture_bodies[name]))
    return None


def _on(snap: _Snapshot, a: str, b: str) -> bool:
    info, st = snap.info, snap.st
    if a == b:
        return False
    if a in info.fixtures:
        r = info.regions.get(b)
        if r is None or r.kind != "table":
            return False
        return _in_table_ranges(info.fixtures[a].pos, r.ranges, info.table_origin)
    ab = st.obj_body.get(a)
    if ab is None:
        return False
    pa = snap.center(ab)
    if b in st.obj_body:
        bb = st.obj_body[b]
        if not snap.touches(ab, bb):
            return False
        if snap.low(ab) <= snap.low(bb) + SUPPORT_TOL or pa[2] <= snap.low(bb):
            return False
        box = snap.aabb(bb)
        return bool(np.all(pa[:2] >= box[0, :2]) and np.all(pa[:2] <= box[1, :2]))
    r = info.regions.get(b)
    if r is None or r.owner == a:
        return False
    if r.kind == "table":
        return (snap.touches(ab, st.table_body)
                and _in_table_ranges(pa, r.ranges, info.table_origin))
    if r.kind == "surface":
        sid = st.region_site[b]
        loc = snap.site_local(sid, pa)
        size = snap.model.site_size[sid]
        return (abs(loc[0]) <= size[0] + REGION_XY_TOL and abs(loc[1]) <= size[1] + REGION_XY_TOL
                and loc[2] > 0 and snap.touches(ab, st.region_body[b]))
    return False


def _in_table_ranges(p: np.ndarray, ranges, origin: np.ndarray) -> bool:
    x, y = float(p[0] - origin[0]), float(p[1] - origin[1])
    t = REGION_XY_TOL
    return any(x0 - t <= x <= x1 + t and y0 - t <= y <= y1 + t for x0, y0, x1, y1 in ranges)


def _in(snap: _Snapshot, a: str, r: str) -> bool:
    info, st = snap.info, snap.st
    ri = info.regions.get(r)
    ab = st.obj_body.get(a)
    if ri is None or ab is None or ri.owner == a:
        return False
    if ri.kind == "table":
        return _in_table_ranges(snap.center(ab), ri.ranges, info.table_origin)
    sid = st.region_site[r]
    loc = snap.site_local(sid, snap.center(ab))
    size = snap.model.site_size[sid]
    if not (abs(loc[0]) <= size[0] and abs(loc[1]) <= size[1]):
        return False
    if -REGION_Z_BELOW <= loc[2] <= 2 * size[2]:
        return True
    bottom = snap.low(ab) - float(snap.data.site_xpos[sid][2])
    return bool(loc[2] >= -REGION_Z_BELOW and -REGION_Z_BELOW <= bottom <= size[2])


def _drawer_q(snap: _Snapshot, r: str) -> float | None:
    ri = snap.info.regions.get(r)
    if ri is None or ri.kind != "drawer" or ri.joint is None:
        return None
    return float(snap.data.qpos[snap.st.joint_qadr[ri.joint]])


def _door_q(snap: _Snapshot, f: str) -> float | None:
    fx = snap.info.fixtures.get(f)
    if fx is None or "door" not in fx.joints:
        return None
    return float(snap.data.qpos[snap.st.joint_qadr[fx.joints["door"]]])


def _knob(snap: _Snapshot, s: str) -> float | None:
    fx = snap.info.fixtures.get(s)
    if fx is None or "knob" not in fx.joints:
        return None
    return float(snap.data.qpos[snap.st.joint_qadr[fx.joints["knob"]]])


def _holding(snap: _Snapshot, o: str, fingers: tuple[set[int], set[int]]) -> bool:
    ob = snap.st.obj_body.get(o)
    if ob is None:
        return False
    touched = snap.touched_geoms(ob)
    left, right = fingers
    if touched.isdisjoint(left) or touched.isdisjoint(right):
        return False
    finger_bodies = {int(snap.model.geom_bodyid[g]) for g in (*left, *right)}
    my_low = snap.low(ob)
    for b in snap.supporting_bodies(ob):
        if b in finger_bodies or b == ob:
            continue
        if snap.low(b) < my_low - SUPPORT_TOL:
            return False
    return True


def _check_fingers(gripper_geom_ids) -> tuple[set[int], set[int]]:
    try:
        left, right = gripper_geom_ids
        left, right = {int(g) for g in left}, {int(g) for g in right}
    except (TypeError, ValueError):
        raise ValueError("gripper_geom_ids must be (left finger geom ids, right finger geom ids), "
                         f"got {gripper_geom_ids!r}") from None
    if not left or not right:
        raise ValueError("gripper_geom_ids: both finger geom sets must be non-empty")
    return left, right


def _eval(snap: _Snapshot, a: Atom, fingers) -> bool:
    p, args = a[0], a[1:]
    if p == "on" and len(args) == 2:
        return _on(snap, *args)
    if p == "in" and len(args) == 2:
        return _in(snap, *args)
    if p in ("open", "close") and len(args) == 1:
        q = _door_q(snap, args[0])
        if q is not None:
            return q >= DOOR_OPEN_THRESHOLD if p == "open" else q <= DOOR_CLOSED_THRESHOLD
        q = _drawer_q(snap, args[0])
        if q is None:
            return False
        return q >= DRAWER_OPEN_THRESHOLD if p == "open" else q <= DRAWER_CLOSED_THRESHOLD
    if p in ("turnon", "turnoff") and len(args) == 1:
        q = _knob(snap, args[0])
        if q is None:
            return False
        return q >= KNOB_ON_THRESHOLD if p == "turnon" else q < KNOB_ON_THRESHOLD
    if p == "holding" and len(args) == 1:
        if fingers is None:
            raise ValueError("evaluating 'holding' needs gripper_geom_ids")
        return _holding(snap, args[0], fingers)
    if p == "handempty" and not args:
        if fingers is None:
            raise ValueError("evaluating 'handempty' needs gripper_geom_ids")
        return not any(_holding(snap, o, fingers) for o in snap.info.objects)
    raise ValueError(f"cannot evaluate atom {a!r}: unknown predicate or wrong number of arguments "
                     "(known: on/2, in/2, open/1, close/1, turnon/1, turnoff/1, holding/1, "
                     "handempty/0)")


def evaluate_atom(model: mujoco.MjModel, data: mujoco.MjData, info: SceneInfo, atom: Atom,
                  gripper_geom_ids: tuple[set[int], set[int]] | None = None) -> bool:
    """Whether ``atom`` (e.g. ``("on", "akita_black_bowl_1", "plate_1")``) holds in ``data``.

    ``data`` must be forward-computed (positions and contacts). Entity names not in the scene make
    the atom false.

    Raises:
        ValueError: unknown predicate or wrong arity; ``holding``/``handempty`` without
            ``gripper_geom_ids``.
    """
    return evaluate_atoms(model, data, info, [atom], gripper_geom_ids)[0]


def evaluate_atoms(model: mujoco.MjModel, data: mujoco.MjData, info: SceneInfo,
                   atoms: Sequence[Atom],
                   gripper_geom_ids: tuple[set[int], set[int]] | None = None) -> list[bool]:
    """:func:`evaluate_atom` for each of ``atoms``, reading the contacts of ``data`` once.

    Raises:
        ValueError: as :func:`evaluate_atom`.
    """
    st = _static(model, info)
    fingers = _check_fingers(gripper_geom_ids) if gripper_geom_ids is not None else None
    snap = _Snapshot(model, data, info, st)
    return [_eval(snap, (str(a[0]).lower(), *a[1:]), fingers) for a in atoms]


def predicate_state(model: mujoco.MjModel, data: mujoco.MjData, info: SceneInfo,
                    gripper_geom_ids: tuple[set[int], set[int]] | None = None) -> frozenset[Atom]:
    """Every true atom over the task's entities.

    Covers ``on`` (object on object, object on table/fixture-surface region, fixture on table
    region), ``in`` (object in drawer/container/compartment/shelf/enclosure region),
    ``open``/``close`` (drawer regions, fixtures with a hinged door),
    ``turnon``/``turnoff`` (stoves) and, when ``gripper_geom_ids = (left, right)`` finger geom id
    sets are given, ``holding`` and ``handempty``.

    Raises:
        ValueError: if ``gripper_geom_ids`` is not two non-empty sets of geom ids.
    """
    st = _static(model, info)
    fingers = _check_fingers(gripper_geom_ids) if gripper_geom_ids is not None else None
    snap = _Snapshot(model, data, info, st)
    out: set[Atom] = set()
    objs = list(info.objects)
    for a in objs:
        for b in objs:
            if a != b and _on(snap, a, b):
                out.add(("on", a, b))
        for r, ri in info.regions.items():
            if ri.kind in ("table", "surface"):
                if _on(snap, a, r):
                    out.add(("on", a, r))
            elif _in(snap, a, r):
                out.add(("in", a, r))
    for f in info.fixtures:
        if f == info.table:
            continue
        for r, ri in info.regions.items():
            if ri.kind == "table" and _on(snap, f, r):
                out.add(("on", f, r))
    for r, ri in info.regions.items():
        if ri.kind == "drawer":
            q = _drawer_q(snap, r)
            if q >= DRAWER_OPEN_THRESHOLD:
                out.add(("open", r))
            elif q <= DRAWER_CLOSED_THRESHOLD:
                out.add(("close", r))
    for f, fx in info.fixtures.items():
        if "door" in fx.joints:
            q = _door_q(snap, f)
            if q >= DOOR_OPEN_THRESHOLD:
                out.add(("open", f))
            elif q <= DOOR_CLOSED_THRESHOLD:
                out.add(("close", f))
        if "knob" in fx.joints:
            out.add(("turnon" if _knob(snap, f) >= KNOB_ON_THRESHOLD else "turnoff", f))
    if fingers is not None:
        held = [o for o in objs if _holding(snap, o, fingers)]
        out.update(("holding", o) for o in held)
        if not held:
            out.add(("handempty",))
    return frozenset(out)
