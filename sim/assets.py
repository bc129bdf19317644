"""Procedurally built proxy assets for LIBERO's object and fixture categories (``mujoco.MjSpec``).

No mesh files: every asset is made of boxes and cylinders with approximately the size of its LIBERO
counterpart. :data:`ASSETS` maps a BDDL category to an :class:`AssetInfo` (affordance tags, sizes,
grasp info, sub-regions) whose ``build`` adds the asset to a spec.

Conventions (all lengths in m, masses in kg):

* Every entity is one MuJoCo body named exactly as the entity (``"akita_black_bowl_1"``).
  Objects are free-jointed (joint ``"<name>_free"``); fixtures are welded (children of the world).
* An object's body origin is the centre of its axis-aligned bounding box, so it rests upright on
  a surface when its origin is ``half_extents[2]`` above it. Objects with a handle (mugs, frypan,
  moka pot, :mod:`sim.assets_libero`) keep the origin at mid-height on the axis of their main body;
  their ``half_extents`` are symmetric about it and cover the handle.
* A fixture's body origin is the centre of its footprint on the surface it stands on; its local
  **+x is its front** (drawer fronts and handles, the stove's knob side). LIBERO task files rotate
  fixtures with ``:yaw_rotation``; the cabinet's ``yaw = pi`` thus turns its drawers toward the
  robot, which stands on the table's -x side.
* Every region is a box site named by the region's full name (``"wooden_cabinet_1_top_region"``)
  whose ``size`` holds the region's half-extents and whose origin lies on the region's floor
  (its supporting surface). Drawer region sites live in the drawer body, so they move with it.
  Extra interaction sites: ``"<drawer region>_handle"`` (the middle of a drawer's handle bar; the
  bar runs along the site's y axis, the drawer opens along the site's +x axis) and
  ``"<stove>_knob"`` (on the knob's rotation axis, at the top of its fin).
* Object geoms carry ``margin = 0, gap = 5 mm``: contacts within 5 mm are *reported* in
  ``mjData.contact`` (predicate evaluation reads them) but only act when geoms touch.

Bowls: LIBERO's akita bowl is ~0.13 m wide, too wide for the Panda's 0.08 m gripper. The proxy is a
12-sided ring 0.072 m across its flats (0.075 m across its corners), 0.045 m tall, so it is grasped
across its outside at any yaw (best with a finger on a flat), and a cream-cheese box fits inside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

_BOX = mujoco.mjtGeom.mjGEOM_BOX
_CYL = mujoco.mjtGeom.mjGEOM_CYLINDER

CONTACT_REPORT_MARGIN = 0.005
"""Geom ``gap`` of objects, m: contacts up to this far apart are reported in ``mjData.contact``
but excluded from the solver (MuJoCo detects contacts up to ``margin + gap``, acts below
``margin``; objects have ``margin = 0``)."""
OBJECT_FRICTION = (1.0, 0.005, 0.0001)
FIXTURE_FRICTION = (1.0, 0.005, 0.0001)

DRAWER_TRAVEL = 0.16
"""Slide range of a cabinet drawer, m: 0 = shut, DRAWER_TRAVEL = fully out."""
DRAWER_OPEN_THRESHOLD = 0.13
"""A drawer is ``Open`` when pulled out at least this far, m."""
DRAWER_CLOSED_THRESHOLD = 0.015
"""A drawer is ``Close`` when pulled out at most this far, m."""
DRAWER_INIT_OPEN = 0.15
"""Slide position a drawer starts at when the task's init says ``(Open …)``, m."""
KNOB_RANGE = (0.0, math.pi / 2)
"""Stove knob hinge range, rad (rotation about the stove's +z, counter-clockwise seen from above)."""
KNOB_ON_THRESHOLD = 0.6
"""The stove is ``Turnon`` when its knob angle is at least this, rad; ``Turnoff`` otherwise."""
KNOB_INIT_ON = 1.2
"""Knob angle a stove starts at when the task's init says ``(Turnon …)``, rad."""
DOOR_RANGE = (0.0, 2.094)
"""Hinged door range, rad: 0 = shut, positive = swung open (LIBERO's microwave: 0 .. 2.094)."""
DOOR_OPEN_THRESHOLD = 1.3
"""A hinged door is ``Open`` when swung at least this far, rad (LIBERO's microwave: 1.3)."""
DOOR_CLOSED_THRESHOLD = 0.02
"""A hinged door is ``Close`` when swung at most this far, rad (LIBERO: 0.005; 0.02 rad is
5 mm at the proxy's handle, what a pushed door reliably reaches against its stop)."""
DOOR_INIT_OPEN = 1.7
"""Door angle when the task's init says ``(Open <fixture>)``, rad (inside LIBERO's open range)."""

# contact bits: ordinary geoms (1); robot geoms use contype 2 / conaffinity 1 (sim/robots/panda.py)
_VISUAL = {"contype": 0, "conaffinity": 0, "group": 1}


class UnsupportedCategoryError(ValueError):
    """A task names object/fixture categories that have no proxy asset.

    Attributes:
        unsupported: sorted categories without an asset.
        supported: sorted categories that have one.
    """

    def __init__(self, unsupported, supported=None, source: str | None = None):
        self.unsupported = sorted(set(unsupported))
        self.supported = sorted(supported if supported is not None else ASSETS)
        where = f"{source}: " if source else ""
        super().__init__(f"{where}unsupported categories {self.unsupported}; "
                         f"supported categories are {self.supported}")


@dataclass(frozen=True)
class GraspInfo:
    """How a top-down parallel gripper should take an object.

    Attributes:
        half_extents: ``(3,)`` half-sizes of the grasped feature in the object's frame, m.
        grasp_height: height above the object's bottom where the fingertips should close, m.
        grasp_width: width between the finger contacts, m (< 0.08, the Panda's opening).
        axis: object-frame axis the fingers close along (``"x"``/``"y"``), or ``"any"`` for
            round objects.
        facet_period: for ``"any"`` objects with flat facets (the 12-sided bowl), the angle in rad
            between facet normals: closing along a facet normal puts the pads on two opposite
            flats instead of two corners. 0 for truly round objects.
        offset: ``(x, y)`` centre of the grasped feature in the object's frame, m, relative to the
            body origin; ``(0, 0)`` unless the grasp is off the origin (the frypan's handle).
    """

    half_extents: tuple[float, float, float]
    grasp_height: float
    grasp_width: float
    axis: str = "any"
    facet_period: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class BuiltAsset:
    """What :meth:`AssetInfo.build` added: body names, joints by role, region sites by name.

    Attributes:
        body: the entity's body name (= entity name).
        joints: role -> joint name. Objects: ``{"free": …}``. Cabinets: drawer region name
            (``"top_region"``) -> slide joint. Stoves: ``{"knob": …}``.
        region_sites: region name (as in BDDL, e.g. ``"top_region"``) -> ``(site name, body name)``.
        bodies: every body the asset added (its own body first).
        sites: other named sites (handles, knob).
    """

    body: str
    joints: dict[str, str]
    region_sites: dict[str, tuple[str, str]]
    bodies: tuple[str, ...]
    sites: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AssetInfo:
    """Metadata and builder of one category's proxy asset.

    Attributes:
        category: the BDDL category (``"akita_black_bowl"``).
        kind: ``"object"`` (free joint) or ``"fixture"`` (welded).
        tags: affordance tags from :data:`robot_skills.domain.predicates.ENTITY_TAGS`.
        libero_size: approximate full size ``(x, y, z)`` of LIBERO's asset, m.
        half_extents: ``(3,)`` half-size of the proxy's bounding box in its own frame, m
            (fixtures: of the footprint, with z = half the height).
        mass: total mass, kg (fixtures: 0, they are welded).
        grasp: how to grasp it, or None when it is not graspable.
        regions: sub-region name -> kind (``"drawer"``, ``"surface"``, ``"container"``).
        rgba: main colour.
        note: how the proxy departs from LIBERO's asset.
    """

    category: str
    kind: str
    tags: frozenset[str]
    libero_size: tuple[float, float, float]
    half_extents: tuple[float, float, float]
    mass: float
    grasp: GraspInfo | None
    regions: dict[str, str]
    rgba: tuple[float, float, float, float]
    builder: Callable[..., BuiltAsset] = field(repr=False, compare=False)
    note: str = ""
    frame_yaw: float = 0.0
    """Extra rotation about +z, rad, between the task's pose of the entity and the frame the
    builder draws in: the body's yaw is the task's yaw plus ``frame_yaw`` (``-pi/2`` for the white
    cabinet, drawn front = +x like the wooden one, so that its front is LIBERO's local -y)."""

    def build(self, spec: mujoco.MjSpec, parent: mujoco.MjsBody, name: str,
              pos=(0.0, 0.0, 0.0), quat=(1.0, 0.0, 0.0, 0.0)) -> BuiltAsset:
        """Add this asset to ``spec`` as a child body ``name`` of ``parent``.

        Args:
            spec: the spec being built (used for contact excludes).
            parent: the parent body (``spec.worldbody`` for scene entities).
            name: entity name; becomes the body name and prefixes joints and sites.
            pos: ``(3,)`` body position in the parent frame, m.
            quat: ``(4,)`` body orientation ``(w, x, y, z)`` in the parent frame.

        Raises:
            ValueError: if a body called ``name`` already exists in ``spec``.
        """
        if spec.body(name) is not None:
            raise ValueError(f"an entity named {name!r} already exists in the scene")
        q = [float(v) for v in quat]
        if self.frame_yaw:
            out = np.zeros(4)
            mujoco.mju_mulQuat(out, np.asarray(q), np.asarray(yaw_quat(self.frame_yaw)))
            q = out.tolist()
        body = parent.add_body(name=name, pos=[float(v) for v in pos], quat=q)
        return self.builder(self, spec, body, name)


# ------------------------------------------------------------------------------------------
# geometry helpers


def yaw_quat(yaw: float) -> list[float]:
    """``(w, x, y, z)`` quaternion of a rotation by ``yaw`` rad about +z."""
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def _vol(type_, size) -> float:
    if type_ == _BOX:
        return 8 * size[0] * size[1] * size[2]
    return math.pi * size[0] ** 2 * 2 * size[1]


def _object_geom(body, type_, size, pos, rgba, quat=(1, 0, 0, 0), friction=OBJECT_FRICTION):
    return body.add_geom(type=type_, size=list(size) + [0.0] * (3 - len(size)),
                         pos=list(pos), quat=list(quat), rgba=list(rgba), condim=4,
                         friction=list(friction), margin=0.0, gap=CONTACT_REPORT_MARGIN,
                         solref=[0.01, 1.0])


def _fixture_geom(body, type_, size, pos, rgba, quat=(1, 0, 0, 0), name=""):
    return body.add_geom(name=name, type=type_, size=list(size) + [0.0] * (3 - len(size)),
                         pos=list(pos), quat=list(quat), rgba=list(rgba), condim=3,
                         friction=list(FIXTURE_FRICTION))


def _set_masses(geoms, total: float) -> None:
    vols = [_vol(g.type, g.size) for g in geoms]
    s = sum(vols)
    for g, v in zip(geoms, vols):
        g.mass = total * v / s


def _region_site(body, name, pos, half, rgba=(0.2, 0.8, 0.2, 0.3)):
    return body.add_site(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=list(pos),
                         size=list(half), rgba=list(rgba), group=5)


def _free(body, name):
    body.add_freejoint(name=f"{name}_free")
    return {"free": f"{name}_free"}


def _ring(body, n, apothem, thickness, z0, z1, rgba, mk=_object_geom, extra_half_len=0.001):
    """``n`` boxes forming a regular polygonal wall of inner apothem ``apothem`` from z0 to z1."""
    half_len = apothem * math.tan(math.pi / n) + extra_half_len + thickness / 2 * math.tan(math.pi / n)
    hz = (z1 - z0) / 2
    geoms = []
    for k in range(n):
        a = 2 * math.pi * k / n
        r = apothem + thickness / 2
        geoms.append(mk(body, _BOX, (thickness / 2, half_len, hz),
                        (r * math.cos(a), r * math.sin(a), z0 + hz), rgba, quat=yaw_quat(a)))
    return geoms


_COLLISION_ONLY_GROUP = 3
"""Geom group of collision geoms that a visual mesh stands in for (hidden by MuJoCo's default
``MjvOption.geomgroup``, which shows groups 0-2)."""


def _polygon_lathe_mesh(spec: mujoco.MjSpec, name: str, n: int, profile) -> str:
    """Add a closed mesh revolving ``profile`` about +z as a regular ``n``-gon; returns its name.

    ``profile`` is a closed loop of ``(apothem, z)`` points in m (counter-clockwise in the r-z
    plane); the polygon's faces are normal to the angles ``2 pi k / n``, matching :func:`_ring`.
    """
    sec = 1.0 / math.cos(math.pi / n)  # apothem -> circumradius
    angles = [2 * math.pi * k / n + math.pi / n for k in range(n)]
    m = len(profile)
    verts = [(max(a, 1e-4) * sec * math.cos(t), max(a, 1e-4) * sec * math.sin(t), z)
             for t in angles for a, z in profile]
    faces = []
    for i in range(n):
        i2 = (i + 1) % n
        for j in range(m):
            j2 = (j + 1) % m
            a, b, c, d = i * m + j, i * m + j2, i2 * m + j2, i2 * m + j
            faces += [(a, d, c), (a, c, b)]
    spec.add_mesh(name=name, uservert=[c for v in verts for c in v],
                  userface=[k for f in faces for k in f])
    return name


def _visual_mesh(spec, body, name: str, n: int, profile, rgba, collision_geoms) -> None:
    """Render ``collision_geoms`` (a polygonal wall and floor) as one mesh: one draw call instead
    of ``n + 1``, which is what a CPU rasteriser's cost scales with (~15 us per geom here)."""
    mesh = _polygon_lathe_mesh(spec, f"{name}_visual", n, profile)
    body.add_geom(type=mujoco.mjtGeom.mjGEOM_MESH, meshname=mesh, rgba=list(rgba), mass=0.0,
                  contype=0, conaffinity=0, group=0)
    for g in collision_geoms:
        g.group = _COLLISION_ONLY_GROUP


# ------------------------------------------------------------------------------------------
# objects


def _build_box(info: AssetInfo, spec, body, name) -> BuiltAsset:
    g = _object_geom(body, _BOX, info.half_extents, (0, 0, 0), info.rgba)
    g.mass = info.mass
    return BuiltAsset(name, _free(body, name), {}, (name,))


def _build_cylinder(info: AssetInfo, spec, body, name) -> BuiltAsset:
    r, _, hz = info.half_extents
    g = _object_geom(body, _CYL, (r, hz), (0, 0, 0), info.rgba)
    g.mass = info.mass
    return BuiltAsset(name, _free(body, name), {}, (name,))


def _build_bottle(info: AssetInfo, spec, body, name) -> BuiltAsset:
    """A cylinder body (lower 60 %) and a square neck (upper 40 %, half the body's width).

    The neck is long enough for a top-down grasp with the palm clear of the top (the Panda's palm
    sits 0.047 m above its fingertip centre)."""
    r, _, hz = info.half_extents
    h = 2 * hz
    hb = 0.6 * h
    body_g = _object_geom(body, _CYL, (r, hb / 2), (0, 0, -hz + hb / 2), info.rgba)
    # A square neck: flat faces give the finger pads area contact, where a round neck rolls and
    # creeps sideways out of the grasp while lifting (measured: ~0.3 mm per cm lifted).
    neck = _object_geom(body, _BOX, (0.5 * r, 0.5 * r, (h - hb) / 2),
                        (0, 0, -hz + hb + (h - hb) / 2), info.rgba)
    _set_masses([body_g, neck], info.mass)
    return BuiltAsset(name, _free(body, name), {}, (name,))


_BOWL_APOTHEM = 0.036
_BOWL_WALL = 0.005
_BOWL_H = 0.045
_BOWL_BOTTOM = 0.006


def _build_bowl(info: AssetInfo, spec, body, name) -> BuiltAsset:
    hz = _BOWL_H / 2
    inner = _BOWL_APOTHEM - _BOWL_WALL
    geoms = [_object_geom(body, _CYL, (inner + 0.001, _BOWL_BOTTOM / 2),
                          (0, 0, -hz + _BOWL_BOTTOM / 2), info.rgba)]
    geoms += _ring(body, 12, inner, _BOWL_WALL, -hz + 0.001, hz, info.rgba)
    _set_masses(geoms, info.mass)
    bottom = -hz + _BOWL_BOTTOM
    _visual_mesh(spec, body, name, 12, [(0.0, -hz), (_BOWL_APOTHEM, -hz), (_BOWL_APOTHEM, hz),
                                         (inner, hz), (inner, bottom), (0.0, bottom)],
                 info.rgba, geoms)
    return BuiltAsset(name, _free(body, name), {}, (name,))


_PLATE_R = 0.075
_PLATE_T = 0.008
_PLATE_H = 0.018


def _build_plate(info: AssetInfo, spec, body, name) -> BuiltAsset:
    hz = _PLATE_H / 2
    fr = (0.6, 0.005, 0.0001)  # slides when pushed
    geoms = [_object_geom(body, _CYL, (_PLATE_R - 0.004, _PLATE_T / 2), (0, 0, -hz + _PLATE_T / 2),
                          info.rgba, friction=fr)]
    geoms += _ring(body, 16, _PLATE_R - 0.008, 0.008, -hz + 0.001, hz, info.rgba,
                   mk=lambda *a, **k: _object_geom(*a, **k, friction=fr))
    _set_masses(geoms, info.mass)
    inner, floor = _PLATE_R - 0.008, -hz + _PLATE_T
    _visual_mesh(spec, body, name, 16, [(0.0, -hz), (_PLATE_R, -hz), (_PLATE_R, hz), (inner, hz),
                                         (inner, floor), (0.0, floor)], info.rgba, geoms)
    return BuiltAsset(name, _free(body, name), {}, (name,))


_BASKET_IN = (0.095, 0.07)
_BASKET_WALL = 0.008
_BASKET_H = 0.075
_BASKET_FLOOR = 0.008


def _build_basket(info: AssetInfo, spec, body, name) -> BuiltAsset:
    hx, hy, hz = info.half_extents
    ix, iy = _BASKET_IN
    t = _BASKET_WALL
    c = info.rgba
    geoms = [
        _object_geom(body, _BOX, (hx, hy, _BASKET_FLOOR / 2), (0, 0, -hz + _BASKET_FLOOR / 2), c),
        _object_geom(body, _BOX, (t / 2, hy, hz), (ix + t / 2, 0, 0), c),
        _object_geom(body, _BOX, (t / 2, hy, hz), (-ix - t / 2, 0, 0), c),
        _object_geom(body, _BOX, (ix, t / 2, hz), (0, iy + t / 2, 0), c),
        _object_geom(body, _BOX, (ix, t / 2, hz), (0, -iy - t / 2, 0), c),
    ]
    _set_masses(geoms, info.mass)
    site = f"{name}_contain_region"
    inner_h = _BASKET_H - _BASKET_FLOOR
    _region_site(body, site, (0, 0, -hz + _BASKET_FLOOR), (ix, iy, inner_h / 2 + 0.02))
    return BuiltAsset(name, _free(body, name), {"contain_region": (site, name)}, (name,))


# ------------------------------------------------------------------------------------------
# fixtures

TABLE_THICKNESS = 0.05
TABLE_HEIGHT = 0.9
"""Height of the table top above the ground plane, m (visual only: the ground is at z = -0.9)."""


def _build_table(info: AssetInfo, spec, body, name) -> BuiltAsset:
    from sim.layout import TABLE_SIZE

    hx, hy = float(TABLE_SIZE[0]) / 2, float(TABLE_SIZE[1]) / 2
    _fixture_geom(body, _BOX, (hx, hy, TABLE_THICKNESS / 2), (0, 0, -TABLE_THICKNESS / 2),
                  info.rgba, name=f"{name}_top")
    for sx in (-1, 1):
        for sy in (-1, 1):
            body.add_geom(type=_BOX, size=[0.025, 0.025, (TABLE_HEIGHT - TABLE_THICKNESS) / 2],
                          pos=[sx * (hx - 0.05), sy * (hy - 0.05),
                               -TABLE_HEIGHT / 2 - TABLE_THICKNESS / 2],
                          rgba=[0.35, 0.25, 0.15, 1], **_VISUAL)
    return BuiltAsset(name, {}, {}, (name,))


# cabinets, local frame: origin at the centre of the footprint, +x = front


@dataclass(frozen=True)
class CabinetDims:
    """Dimensions of a drawer cabinet proxy (all m).

    Attributes:
        depth / width: outer size along the cabinet's x (front-back) and y.
        wall: carcass wall thickness.
        base / slot / sep / top: base plate thickness, height of each drawer slot, separator
            thickness, top plate thickness; height = base + 3 slot + 2 sep + top.
        handle_y: drawer region name -> y offset of its handle (staggered sideways so a top-down
            hand reaching a low handle clears the ones above).
        handle_out: handle bar centre in front of the drawer's front panel.
        front: drawer front panel thickness.
    """

    depth: float = 0.20
    width: float = 0.22
    wall: float = 0.01
    base: float = 0.01
    slot: float = 0.08
    sep: float = 0.005
    top: float = 0.015
    handle_y: tuple[tuple[str, float], ...] = (("bottom_region", -0.07), ("middle_region", 0.0),
                                               ("top_region", 0.07))
    handle_out: float = 0.045
    front: float = 0.015

    @property
    def height(self) -> float:
        """Outer height, m."""
        return self.base + 3 * self.slot + 2 * self.sep + self.top

    def slot_z(self, k: int) -> float:
        """Height of the bottom of drawer slot ``k`` (0 = bottom), m."""
        return self.base + k * (self.slot + self.sep)


WOODEN_CABINET = CabinetDims()
CABINET_HEIGHT = WOODEN_CABINET.height
_DRAWERS = ("bottom_region", "middle_region", "top_region")   # slot 0, 1, 2


def _build_cabinet(info: AssetInfo, spec, body, name, dims: CabinetDims = WOODEN_CABINET
                   ) -> BuiltAsset:
    wood, dark = info.rgba, (0.3, 0.2, 0.1, 1.0)
    hx, hy = dims.depth / 2, dims.width / 2
    H = dims.height
    T = dims.wall
    fg = _fixture_geom
    fg(body, _BOX, (hx, hy, dims.base / 2), (0, 0, dims.base / 2), wood)            # base
    fg(body, _BOX, (hx, hy, dims.top / 2), (0, 0, H - dims.top / 2), wood)          # top
    fg(body, _BOX, (T / 2, hy, H / 2), (-hx + T / 2, 0, H / 2), wood)               # back
    for s in (-1, 1):
        fg(body, _BOX, (hx, T / 2, H / 2), (0, s * (hy - T / 2), H / 2), wood)
    for k in (1, 2):
        z = dims.slot_z(k) - dims.sep / 2
        fg(body, _BOX, (hx - T, hy - T, dims.sep / 2), (-T, 0, z), wood)
    regions = {"top_side": (f"{name}_top_side", name)}
    _region_site(body, f"{name}_top_side", (0, 0, H), (hx - 0.01, hy - 0.01, 0.05))
    joints, bodies, sites = {}, [name], {}
    handle_y = dict(dims.handle_y)
    # drawer geometry, written in the cabinet frame (shut) then shifted into the drawer frame,
    # whose origin is the middle of the drawer floor's top face
    x_back, x_front = -hx + T + 0.002, hx - dims.front           # drawer box x span
    iy = hy - T - 0.004                                          # drawer outer half width
    wall_t, floor_t = 0.006, 0.006
    wall_h = dims.slot - 0.008 - 0.012
    cx = (x_back + x_front) / 2
    hxd = (x_front - x_back) / 2
    for k, reg in enumerate(_DRAWERS):
        zs = dims.slot_z(k)
        z0 = zs + 0.002 + floor_t
        level = reg.split("_")[0]
        dname = f"{name}_{level}_drawer"
        d = body.add_body(name=dname, pos=[cx, 0, z0])
        bodies.append(dname)
        jn = f"{name}_{level}_drawer_slide"
        d.add_joint(name=jn, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[1, 0, 0],
                    range=[0.0, DRAWER_TRAVEL], limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                    damping=8.0, frictionloss=1.0, armature=0.05)
        joints[reg] = jn
        fg(d, _BOX, (hxd, iy, floor_t / 2), (0, 0, -floor_t / 2), wood)
        fg(d, _BOX, (wall_t / 2, iy, wall_h / 2), (-hxd + wall_t / 2, 0, wall_h / 2), wood)
        for s in (-1, 1):
            fg(d, _BOX, (hxd, wall_t / 2, wall_h / 2), (0, s * (iy - wall_t / 2), wall_h / 2),
               wood)
        # front panel, flush with the carcass front when shut
        pz0, pz1 = zs + 0.002 - z0, zs + dims.slot - 0.002 - z0
        fg(d, _BOX, (dims.front / 2, hy - T - 0.002, (pz1 - pz0) / 2),
           (x_front + dims.front / 2 - cx, 0, (pz0 + pz1) / 2), wood)
        # handle: a bar along y on two standoffs, graspable by a top-down hand closing along x
        hy_off = handle_y[reg]
        hz = zs + dims.slot / 2 - z0
        bar_x = hx + dims.handle_out - cx
        fg(d, _BOX, (0.007, 0.028, 0.007), (bar_x, hy_off, hz), dark)
        so = (dims.handle_out - 0.007) / 2
        for s in (-1, 1):
            fg(d, _BOX, (so, 0.004, 0.005), (hx - cx + so, hy_off + s * 0.022, hz), dark)
        hsite = f"{name}_{reg}_handle"
        d.add_site(name=hsite, pos=[bar_x, hy_off, hz], size=[0.006, 0, 0],
                   rgba=[1, 0, 0, 0.5], group=5)
        sites[hsite] = hsite
        site = f"{name}_{reg}"
        _region_site(d, site, (wall_t / 2, 0, 0), (hxd - wall_t / 2, iy - wall_t, wall_h / 2 + 0.01))
        regions[reg] = (site, dname)
        spec.add_exclude(bodyname1=name, bodyname2=dname)
    return BuiltAsset(name, joints, regions, tuple(bodies), sites)


_STOVE_HALF = (0.11, 0.13, 0.015)
_STOVE_COOK = ((0.0, -0.01), (0.06, 0.08))   # centre (x, y), half (x, y) of the cook region
_KNOB_XY = (0.08, 0.09)


def _build_stove(info: AssetInfo, spec, body, name) -> BuiltAsset:
    hx, hy, hz = _STOVE_HALF
    _fixture_geom(body, _BOX, (hx, hy, hz), (0, 0, hz), info.rgba)
    (cx, cy), (chx, chy) = _STOVE_COOK
    body.add_geom(type=_CYL, size=[0.06, 0.0005, 0], pos=[cx, cy, 2 * hz + 0.0005],
                  rgba=[0.6, 0.1, 0.05, 1], **_VISUAL)
    site = f"{name}_cook_region"
    _region_site(body, site, (cx, cy, 2 * hz), (chx, chy, 0.05))
    kx, ky = _KNOB_XY
    knob = body.add_body(name=f"{name}_knob_body", pos=[kx, ky, 2 * hz])
    jn = f"{name}_knob_hinge"
    knob.add_joint(name=jn, type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1],
                   range=list(KNOB_RANGE), limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                   damping=0.05, frictionloss=0.02, armature=0.002)
    _fixture_geom(knob, _CYL, (0.018, 0.005), (0, 0, 0.005), (0.15, 0.15, 0.15, 1))
    _fixture_geom(knob, _BOX, (0.024, 0.006, 0.012), (0, 0, 0.022), (0.8, 0.1, 0.1, 1))
    knob.add_site(name=f"{name}_knob", pos=[0, 0, 0.034], size=[0.006, 0, 0], rgba=[1, 0, 0, .5],
                  group=5)
    spec.add_exclude(bodyname1=name, bodyname2=knob.name)
    return BuiltAsset(name, {"knob": jn}, {"cook_region": (site, name)}, (name, knob.name),
                      {f"{name}_knob": f"{name}_knob"})


_RACK_HALF = (0.07, 0.07, 0.005)
_RACK_RING_APOTHEM = 0.042
_RACK_RING_H = 0.045


def _build_rack(info: AssetInfo, spec, body, name) -> BuiltAsset:
    hx, hy, hz = _RACK_HALF
    _fixture_geom(body, _BOX, (hx, hy, hz), (0, 0, hz), info.rgba)
    _ring(body, 8, _RACK_RING_APOTHEM, 0.008, 2 * hz, 2 * hz + _RACK_RING_H, info.rgba,
          mk=lambda b, t, s, p, c, quat: _fixture_geom(b, t, s, p, c, quat=quat))
    site = f"{name}_top_region"
    _region_site(body, site, (0, 0, 2 * hz), (_RACK_RING_APOTHEM - 0.01,) * 2 + (0.05,))
    return BuiltAsset(name, {}, {"top_region": (site, name)}, (name,))


# ------------------------------------------------------------------------------------------
# registry


def _obj(category, tags, libero_size, half, mass, rgba, builder, grasp=None, regions=None,
         note=""):
    return AssetInfo(category, "object", frozenset(tags), libero_size, half, mass, grasp,
                     regions or {}, rgba, builder, note)


def _box_grasp(half, axis=None):
    hx, hy, hz = half
    if axis is None:
        axis = "x" if hx < hy else "y"
    w = 2 * (hx if axis == "x" else hy)
    return GraspInfo(half, grasp_height=min(2 * hz * 0.6, 2 * hz - 0.012), grasp_width=w, axis=axis)


def _cyl_grasp(r, hz, height=None, axis="any"):
    return GraspInfo((r, r, hz), grasp_height=height if height is not None else min(hz * 1.2, 0.06),
                     grasp_width=2 * r, axis=axis)


G = ("graspable",)
_BLACK, _WHITE = (0.08, 0.08, 0.08, 1.0), (0.92, 0.92, 0.9, 1.0)
_bowl_half = (_BOWL_APOTHEM / math.cos(math.pi / 12),) * 2 + (_BOWL_H / 2,)
_bowl_grasp = GraspInfo(_bowl_half, grasp_height=0.03, grasp_width=2 * _BOWL_APOTHEM, axis="any",
                        facet_period=2 * math.pi / 12)
_BOWL_NOTE = ("12-sided ring 0.072 m across flats (LIBERO's bowl is ~0.13 m): fits the Panda's "
              "0.08 m gripper; grasp across the outside near the rim")

ASSETS: dict[str, AssetInfo] = {a.category: a for a in [
    _obj("akita_black_bowl", G + ("surface", "container"), (0.13, 0.13, 0.05), _bowl_half, 0.12,
         _BLACK, _build_bowl, _bowl_grasp, note=_BOWL_NOTE),
    _obj("white_bowl", G + ("surface", "container"), (0.13, 0.13, 0.05), _bowl_half, 0.12,
         _WHITE, _build_bowl, _bowl_grasp, note=_BOWL_NOTE),
    _obj("plate", ("surface", "pushable"), (0.2, 0.2, 0.02), (_PLATE_R, _PLATE_R, _PLATE_H / 2),
         0.25, (0.95, 0.95, 0.95, 1), _build_plate,
         note="flat disc with a low rim, 0.15 m across; pushed, not grasped"),
    _obj("glazed_rim_porcelain_ramekin", G + ("surface",), (0.09, 0.09, 0.045),
         (0.034, 0.034, 0.022), 0.15, (0.85, 0.85, 0.8, 1), _build_cylinder,
         _cyl_grasp(0.034, 0.022, 0.03), note="solid cylinder 0.068 m across"),
    _obj("cookies", G + ("surface",), (0.16, 0.1, 0.05), (0.06, 0.034, 0.025), 0.12,
         (0.75, 0.3, 0.1, 1), _build_box, _box_grasp((0.06, 0.034, 0.025)),
         note="box 0.12 x 0.068 x 0.05 m, grasped across its narrow side"),
    _obj("cream_cheese", G, (0.07, 0.05, 0.03), (0.024, 0.017, 0.012), 0.05,
         (0.85, 0.85, 0.95, 1), _build_box, _box_grasp((0.024, 0.017, 0.012)),
         note="smaller than LIBERO's so it fits in the proxy bowl"),
    _obj("butter", G, (0.1, 0.05, 0.03), (0.035, 0.018, 0.013), 0.08, (0.95, 0.9, 0.5, 1),
         _build_box, _box_grasp((0.035, 0.018, 0.013))),
    _obj("chocolate_pudding", G, (0.07, 0.05, 0.04), (0.033, 0.022, 0.018), 0.08,
         (0.4, 0.22, 0.1, 1), _build_box, _box_grasp((0.033, 0.022, 0.018))),
    _obj("alphabet_soup", G, (0.07, 0.07, 0.1), (0.031, 0.031, 0.045), 0.15, (0.85, 0.2, 0.15, 1),
         _build_cylinder, _cyl_grasp(0.031, 0.045)),
    _obj("tomato_sauce", G, (0.07, 0.07, 0.09), (0.031, 0.031, 0.04), 0.15, (0.9, 0.35, 0.1, 1),
         _build_cylinder, _cyl_grasp(0.031, 0.04)),
    _obj("ketchup", G, (0.06, 0.04, 0.13), (0.027, 0.018, 0.055), 0.1, (0.8, 0.05, 0.05, 1),
         _build_box, _box_grasp((0.027, 0.018, 0.055), "y"), note="upright flat bottle"),
    _obj("bbq_sauce", G, (0.06, 0.04, 0.13), (0.026, 0.026, 0.055), 0.1, (0.35, 0.12, 0.05, 1),
         _build_cylinder, _cyl_grasp(0.026, 0.055), note="upright round bottle"),
    _obj("salad_dressing", G, (0.05, 0.05, 0.16), (0.025, 0.025, 0.07), 0.12,
         (0.6, 0.8, 0.3, 1), _build_bottle, _cyl_grasp(0.025, 0.07, 0.05, axis="x")),
    _obj("new_salad_dressing", G, (0.05, 0.05, 0.16), (0.025, 0.025, 0.07), 0.12,
         (0.9, 0.85, 0.6, 1), _build_bottle, _cyl_grasp(0.025, 0.07, 0.05, axis="x")),
    _obj("milk", G, (0.07, 0.07, 0.15), (0.03, 0.03, 0.065), 0.15, (0.95, 0.95, 1.0, 1),
         _build_box, _box_grasp((0.03, 0.03, 0.065), "x"), note="upright carton"),
    _obj("orange_juice", G, (0.07, 0.07, 0.15), (0.03, 0.03, 0.065), 0.15, (1.0, 0.6, 0.1, 1),
         _build_box, _box_grasp((0.03, 0.03, 0.065), "x"), note="upright carton"),
    _obj("wine_bottle", G, (0.08, 0.08, 0.3), (0.03, 0.03, 0.11), 0.35, (0.1, 0.3, 0.12, 1),
         _build_bottle, _cyl_grasp(0.03, 0.11, 0.07, axis="x"),
         note="0.22 m tall (LIBERO's ~0.3 m), body 0.06 m across, grasped at the body"),
    _obj("basket", ("container",), (0.26, 0.18, 0.08),
         (_BASKET_IN[0] + _BASKET_WALL, _BASKET_IN[1] + _BASKET_WALL, _BASKET_H / 2), 0.6,
         (0.6, 0.45, 0.25, 1), _build_basket, regions={"contain_region": "container"},
         note="open box 0.206 x 0.156 x 0.075 m"),
    AssetInfo("table", "fixture", frozenset({"surface"}), (1.0, 1.2, 0.9), (0.6, 0.6, 0.45), 0.0,
              None, {}, (0.75, 0.65, 0.5, 1), _build_table),
    AssetInfo("floor", "fixture", frozenset({"surface"}), (1.0, 1.2, 0.0), (0.6, 0.6, 0.45), 0.0,
              None, {}, (0.7, 0.7, 0.72, 1), _build_table,
              note="LIBERO's floor scenes: built as a table top at z = 0 so regions land on it"),
    *[AssetInfo(c, "fixture", frozenset({"surface"}), size, (0.6, 0.6, 0.45), 0.0,
                None, {}, (0.75, 0.65, 0.5, 1), _build_table,
                note=f"LIBERO-90 table variant (LIBERO's top is {size[0]} x {size[1]} m at "
                     f"{size[2]} m); built as the 1.2 x 1.2 m top every region of the files fits")
      for c, size in (("kitchen_table", (1.0, 1.2, 0.9)), ("living_room_table", (0.7, 1.6, 0.41)),
                      ("study_table", (1.0, 1.2, 0.867)))],
    AssetInfo("wooden_cabinet", "fixture", frozenset(), (0.3, 0.3, 0.4),
              (WOODEN_CABINET.depth / 2, WOODEN_CABINET.width / 2, CABINET_HEIGHT / 2), 0.0, None,
              {"top_region": "drawer", "middle_region": "drawer", "bottom_region": "drawer",
               "top_side": "surface"}, (0.6, 0.42, 0.25, 1), _build_cabinet,
              note="three drawers on slide joints, front (+x local) with staggered handles"),
    AssetInfo("flat_stove", "fixture", frozenset({"switchable"}), (0.3, 0.3, 0.03),
              _STOVE_HALF, 0.0, None, {"cook_region": "surface"}, (0.2, 0.2, 0.22, 1),
              _build_stove, note="flat cook top with a rotary knob (hinge about +z) at its "
                                 "front-left corner"),
    AssetInfo("wine_rack", "fixture", frozenset(), (0.2, 0.2, 0.2),
              (_RACK_HALF[0], _RACK_HALF[1], (2 * _RACK_HALF[2] + _RACK_RING_H) / 2), 0.0, None,
              {"top_region": "surface"}, (0.45, 0.3, 0.2, 1), _build_rack,
              note="a base with an octagonal collar where one bottle stands upright"),
]}
"""Category -> proxy asset. Fixtures: table, floor, wooden_cabinet, flat_stove, wine_rack (and the
LIBERO-90 ones added by :mod:`sim.assets_libero`: white_cabinet, microwave,
wooden_two_layer_shelf, desk_caddy). Sizes and departures: ``docs/assets.md``."""

REGION_KIND_TAGS: dict[str, frozenset[str]] = {
    "drawer": frozenset({"container", "openable"}),
    "surface": frozenset({"surface"}),
    "container": frozenset({"container"}),
    "table": frozenset({"surface", "table_region"}),
}
"""Affordance tags of a region by kind."""


def get_asset(category: str) -> AssetInfo:
    """Return the :class:`AssetInfo` of ``category``.

    Raises:
        UnsupportedCategoryError: if there is no proxy asset for it.
    """
    try:
        return ASSETS[category]
    except KeyError:
        raise UnsupportedCategoryError([category]) from None


def check_categories(categories, source: str | None = None) -> None:
    """Raise :class:`UnsupportedCategoryError` listing every category in ``categories`` that has
    no proxy asset (and the supported ones)."""
    bad = sorted(set(categories) - set(ASSETS))
    if bad:
        raise UnsupportedCategoryError(bad, source=source)


# LIBERO-90 / LIBERO-10 categories (books, mugs, frypan, moka pot, tray, white cabinet, microwave,
# shelf, desk caddy) live in their own module, which adds them to ASSETS on import.
import sim.assets_libero  # noqa: E402,F401  (registers its categories; see that module)
