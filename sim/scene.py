"""Turn a parsed BDDL task into a MuJoCo scene (``MjSpec``) and sample seeded initial states.

World frame = robot base frame (see :mod:`sim.layout`): the Panda's ``link0`` is at the origin,
+x forward, +z up, the table top at z = 0 with its centre at :func:`sim.layout.table_origin` of the
task's table category (:data:`sim.layout.TABLE_ORIGIN` but for the study table). Region ranges of
table (and LIBERO "floor") regions are in the table frame, which is the world frame shifted by that
origin (no rotation; :attr:`SceneInfo.table_origin`).

Fixture placement convention: a fixture named in ``(On <fixture> <table region>)`` stands at the
centre of that region's first range box, rotated about +z by the middle of the region's
``:yaw_rotation`` interval (0 when absent). Fixture assets face their local +x (see
:mod:`sim.assets`), so LIBERO's ``yaw = pi`` for the cabinet turns its drawers toward the robot.
Fixtures are welded, so their pose is fixed when the spec is built; objects are placed per episode
by :func:`sample_initial_state`.

The spec holds no robot; ``robot_skills.robots.panda.add_panda`` adds one at the world origin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from robot_skills.robot import EpisodeInvalidError
from robot_skills.tasks.bddl import BddlTask
from robot_skills.tasks.regions import check_shift_scale, shift_scale_centre_half
from sim.assets import (
    ASSETS,
    DOOR_INIT_OPEN,
    DRAWER_INIT_OPEN,
    KNOB_INIT_ON,
    REGION_KIND_TAGS,
    TABLE_HEIGHT,
    GraspInfo,
    check_categories,
    yaw_quat,
)
from sim.layout import (
    MAX_REGION_COORD_M,
    MAX_REGION_YAW_RAD,
    PHYSICS_TIMESTEP,
    TABLE_TOP_RANGE,
    table_origin,
)

TABLE_CATEGORIES = ("table", "floor", "kitchen_table", "living_room_table", "study_table")
YAW_NOISE = 0.15
"""Half-width of the uniform yaw noise added to each placed object, rad."""
DROP_CLEARANCE = 0.002
"""Objects are placed this far above their support before settling, m."""
SETTLE_STEPS = 300
"""Physics steps run after placement so objects come to rest (0.6 s at 2 ms)."""
MAX_PLACEMENT_TRIES = 200


class SceneError(ValueError):
    """The task cannot be turned into a scene (placement missing, region without geometry, a
    region range that is not finite, absurdly large or off the table top, …)."""


class PlacementError(RuntimeError):
    """No collision-free initial placement was found within the allowed number of tries, or an
    object did not stay on the table while settling (it fell to the floor)."""


@dataclass
class ObjectInfo:
    """A free-jointed object of the scene.

    Attributes:
        name: entity name (= body name).
        category: BDDL category.
        tags: affordance tags.
        half_extents: ``(3,)`` float64 bounding-box half sizes in the object frame, m; the body
            origin is the box centre.
        grasp: grasp hints, or None if not graspable.
        body: body name.
        free_joint: name of its free joint.
        mass: kg.
    """

    name: str
    category: str
    tags: frozenset[str]
    half_extents: np.ndarray
    grasp: GraspInfo | None
    body: str
    free_joint: str
    mass: float


@dataclass
class FixtureInfo:
    """A welded fixture.

    Attributes:
        name / category / tags: as in the task file; tags from the asset.
        body: its root body name (= name).
        pos: ``(3,)`` float64 world position of its footprint centre, m.
        yaw: rotation about +z, rad.
        joints: role -> joint name (cabinet: drawer region name -> slide joint; stove: "knob";
            microwave: "door", a hinge, 0 = shut, > 0 = open, rad).
        bodies: every body of the fixture (root first).
        sites: interaction sites (drawer handles, stove knob).
        half_extents: ``(3,)`` float64, footprint half sizes and half height, fixture frame, m.
    """

    name: str
    category: str
    tags: frozenset[str]
    body: str
    pos: np.ndarray
    yaw: float
    joints: dict[str, str]
    bodies: tuple[str, ...]
    sites: dict[str, str]
    half_extents: np.ndarray


@dataclass
class RegionInfo:
    """A region with a site in the scene.

    Attributes:
        full_name: ``<target>_<name>`` (= the site name).
        site: site name; a box site whose ``size`` is the region's half extents and whose origin
            lies on the region's floor.
        kind: ``"table"`` (a box on the table top), ``"surface"`` (a fixture's top: cook region,
            cabinet or shelf or microwave top, rack), ``"drawer"`` (inside a drawer),
            ``"container"`` (basket, tray, a desk caddy's open-top bay), ``"shelf"`` (a covered
            shelf level, reached from its front), ``"enclosure"`` (the microwave's heating region,
            behind its door).
        owner: entity the region belongs to (``"main_table"``, ``"wooden_cabinet_1"``, ``"basket_1"``).
        tags: affordance tags (:data:`sim.assets.REGION_KIND_TAGS`).
        body: body the site is attached to (a drawer body for drawer regions).
        joint: drawer slide joint for drawer regions, else None.
        ranges: table regions: boxes ``(x_min, y_min, x_max, y_max)`` in the table frame, m.
    """

    full_name: str
    site: str
    kind: str
    owner: str
    tags: frozenset[str]
    body: str
    joint: str | None = None
    ranges: list[tuple[float, float, float, float]] = field(default_factory=list)


@dataclass
class SceneInfo:
    """Everything about a built scene that is not in the MuJoCo model.

    Attributes:
        task: the parsed task.
        objects: object name -> :class:`ObjectInfo`.
        fixtures: fixture name -> :class:`FixtureInfo` (the table included).
        regions: region full name -> :class:`RegionInfo` (only regions the scene could build).
        table: name of the table (or floor) fixture.
        skipped_regions: regions of the task file left out (their target is not in the scene or
            its asset has no such sub-region) and not used by any atom.
        cameras: names of the scene cameras.
    """

    task: BddlTask
    objects: dict[str, ObjectInfo]
    fixtures: dict[str, FixtureInfo]
    regions: dict[str, RegionInfo]
    table: str
    skipped_regions: list[str] = field(default_factory=list)
    cameras: tuple[str, ...] = ()

    @property
    def table_origin(self) -> np.ndarray:
        """World position of the table frame (the table fixture's position), m, (3,): every table
        region's range is relative to it (:func:`sim.layout.table_origin`)."""
        return self.fixtures[self.table].pos

    def entity_tags(self) -> dict[str, frozenset[str]]:
        """Entity (object, fixture, region) name -> affordance tags, for the planner."""
        out: dict[str, frozenset[str]] = {}
        for d in (self.fixtures, self.objects, self.regions):
            for name, info in d.items():
                out[name] = frozenset(info.tags)
        return out

    def entities(self) -> list[str]:
        """Names of objects, fixtures and regions (the keys of observation ``object_poses``)."""
        return [*self.objects, *self.fixtures, *self.regions]


# ------------------------------------------------------------------------------------------
# building


def _lookat_quat(pos, target) -> list[float]:
    f = np.asarray(target, float) - np.asarray(pos, float)
    f /= np.linalg.norm(f)
    up = np.array([0.0, 0.0, 1.0])
    r = np.cross(f, up)
    if np.linalg.norm(r) < 1e-6:
        r = np.array([0.0, -1.0, 0.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    mat = np.stack([r, u, -f], axis=1)
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, mat.reshape(-1))
    return q.tolist()


def _add_cameras_and_lights(spec: mujoco.MjSpec, origin: np.ndarray) -> tuple[str, ...]:
    o = np.asarray(origin, float)
    cams = {
        # LIBERO's agentview: across the table, looking back at the robot and the workspace
        "agentview": (o + [0.65, 0.0, 0.55], o + [-0.1, 0.0, 0.0], 50.0),
        "frontview": (o + [1.0, 0.0, 0.45], o + [-0.2, 0.0, 0.05], 45.0),
        "birdview": (o + [-0.05, 0.0, 1.25], o + [-0.0499, 0.0, 0.0], 60.0),
        "sideview": (o + [-0.1, -0.9, 0.5], o + [-0.1, 0.0, 0.05], 50.0),
    }
    for name, (pos, target, fovy) in cams.items():
        spec.worldbody.add_camera(name=name, pos=list(map(float, pos)),
                                  quat=_lookat_quat(pos, target), fovy=fovy)
    spec.worldbody.add_light(name="key_light", pos=[float(o[0]), 0.0, 2.5], dir=[0, 0, -1],
                             castshadow=False, diffuse=[0.7, 0.7, 0.7], specular=[0.1, 0.1, 0.1])
    spec.worldbody.add_light(name="fill_light", pos=[float(o[0]) + 1.0, -1.0, 1.5],
                             dir=[-0.5, 0.5, -0.7], castshadow=False, diffuse=[0.35, 0.35, 0.35])
    spec.visual.headlight.ambient = [0.3, 0.3, 0.3]
    return tuple(cams)


def _table_region_center(ranges) -> tuple[float, float, float, float]:
    r = np.asarray(ranges, float)
    x0, y0 = r[:, 0].min(), r[:, 1].min()
    x1, y1 = r[:, 2].max(), r[:, 3].max()
    return (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2


# ------------------------------------------------------------------------------------------
# checks: region values, regions on the table top, objects that fell, MuJoCo's warnings


def _box_text(box) -> str:
    return "(" + " ".join(f"{float(v):.6g}" for v in box) + ")"


def _table_top_text(table: str) -> str:
    x0, y0, x1, y1 = TABLE_TOP_RANGE
    return (f"the top of {table!r} spans x {x0:+.3g}..{x1:+.3g} m and y {y0:+.3g}..{y1:+.3g} m "
            f"in its frame (sim.layout.TABLE_TOP_RANGE)")


def _off_table(boxes) -> list[int]:
    """Indices of the corner boxes ``(x_min, y_min, x_max, y_max)`` not inside the table top."""
    x0, y0, x1, y1 = TABLE_TOP_RANGE
    eps = 1e-9
    return [i for i, (a, b, c, d) in enumerate(boxes)
            if a < x0 - eps or b < y0 - eps or c > x1 + eps or d > y1 + eps]


def check_region_values(task: BddlTask) -> None:
    """Refuse region values no scene can hold, before MuJoCo sees them.

    Every range value must be finite with ``|v| <=`` :data:`sim.layout.MAX_REGION_COORD_M`
    (10 m), with ``min <= max``; every ``:yaw_rotation`` bound finite with ``|v| <=``
    :data:`sim.layout.MAX_REGION_YAW_RAD`. (A ``1e300`` range otherwise makes MuJoCo reset its state
    while the scene settles, leaving every object on the floor.)

    Raises:
        SceneError: naming the task file, the region and the offending values.
    """
    for full, reg in task.regions.items():
        for i, box in enumerate(reg.ranges):
            try:
                v = [float(x) for x in box]
            except (TypeError, ValueError):
                v = []
            if len(v) != 4 or not all(math.isfinite(x) and abs(x) <= MAX_REGION_COORD_M for x in v):
                raise SceneError(
                    f"{task.source}: region {full!r} has range {i} = {tuple(box)!r}: every value "
                    f"must be a finite number of at most {MAX_REGION_COORD_M:g} m in magnitude "
                    f"(x_min y_min x_max y_max, m, in the frame of {reg.target!r})")
            if v[0] > v[2] or v[1] > v[3]:
                raise SceneError(f"{task.source}: region {full!r} has range {i} = {tuple(box)!r} "
                                 f"with min > max (x_min y_min x_max y_max)")
        for pair in reg.yaw_rotation or ():
            try:
                v = [float(x) for x in pair]
            except (TypeError, ValueError):
                v = []
            if len(v) != 2 or not all(math.isfinite(x) and abs(x) <= MAX_REGION_YAW_RAD for x in v):
                raise SceneError(
                    f"{task.source}: region {full!r} has yaw_rotation {tuple(pair)!r}: both bounds "
                    f"must be finite, at most {MAX_REGION_YAW_RAD:.4g} rad in magnitude")


def check_regions_on_table(task: BddlTask, table: str) -> None:
    """Refuse a region on the table (or floor) fixture whose ranges leave the table top.

    Ranges are in the table's frame; each box must lie inside :data:`sim.layout.TABLE_TOP_RANGE`
    (whatever is placed outside would fall to the ground plane).

    Raises:
        SceneError: naming the task file, the region, its ranges and the table top's extent.
    """
    for full, reg in task.regions.items():
        if reg.target != table or not reg.ranges:
            continue
        bad = _off_table(reg.ranges)
        if bad:
            raise SceneError(
                f"{task.source}: region {full!r} has range(s) "
                f"{', '.join(_box_text(reg.ranges[i]) for i in bad)} (x_min y_min x_max y_max, "
                f"m, table frame) that do not lie on the table top: {_table_top_text(table)}; "
                f"an object placed there would fall to the floor")


def _object_table_regions(info: SceneInfo) -> list[str]:
    """Table regions an ``(On obj region)`` init atom drops a task object into."""
    out: list[str] = []
    for a in info.task.init:
        if len(a) == 3 and a[0] in ("on", "in") and a[1] in info.objects:
            r = info.regions.get(a[2])
            if r is not None and r.kind == "table" and a[2] not in out:
                out.append(a[2])
    return out


def table_placement_boxes(info: SceneInfo, region_shift=(0.0, 0.0), region_scale: float = 1.0
                          ) -> dict[str, list[tuple[float, float, float, float]]]:
    """The boxes ``(cx, cy, hx, hy)`` (table frame, m) objects are dropped in, per table region,
    after ``region_shift`` / ``region_scale`` (:func:`robot_skills.tasks.regions.shift_scale_centre_half`).

    The boxes of every region a task object starts in must still lie on the table top.

    Raises:
        ValueError: a bad shift or scale (:func:`robot_skills.tasks.regions.check_shift_scale`).
        SceneError: a shifted/scaled object region leaves the table top (the message names the
            region, its boxes, the shift/scale and the table top's extent).
    """
    shift, scale = check_shift_scale(region_shift, region_scale)
    boxes = {name: shift_scale_centre_half(reg.ranges, shift, scale)
             for name, reg in info.regions.items() if reg.kind == "table"}
    for name in _object_table_regions(info):
        corners = [(cx - hx, cy - hy, cx + hx, cy + hy) for cx, cy, hx, hy in boxes[name]]
        bad = _off_table(corners)
        if bad:
            raise SceneError(
                f"{info.task.source}: region {name!r} moved by region_shift {shift} m and "
                f"region_scale {scale:g} becomes {', '.join(_box_text(corners[i]) for i in bad)} "
                f"(x_min y_min x_max y_max, m, table frame), which does not lie on the table top: "
                f"{_table_top_text(info.table)}")
    return boxes


def fallen_objects(model: mujoco.MjModel, data: mujoco.MjData,
                   info: SceneInfo) -> list[tuple[str, np.ndarray]]:
    """``(object, world position)`` of every object whose centre is not above the table top
    (below its plane z = 0, outside its x/y extent, or not finite). Reads ``data.xpos``."""
    x0, y0, x1, y1 = TABLE_TOP_RANGE
    out = []
    for o in info.objects:
        p = data.xpos[model.body(o).id]
        x, y, z = p - info.table_origin
        if not (np.all(np.isfinite(p)) and z >= 0.0 and x0 <= x <= x1 and y0 <= y <= y1):
            out.append((o, p.copy()))
    return out


def _warning_detail(model: mujoco.MjModel, w: mujoco.mjtWarning, info: int) -> str:
    W = mujoco.mjtWarning

    def joint(j: int) -> str:
        if not 0 <= j < model.njnt:
            return f"index {info}"
        return f"joint {model.joint(j).name!r} of body {model.body(model.jnt_bodyid[j]).name!r}"

    if w == W.mjWARN_BADQPOS:
        js = [j for j in range(model.njnt) if model.jnt_qposadr[j] <= info]
        return joint(max(js, key=lambda j: model.jnt_qposadr[j]) if js else -1)
    if w in (W.mjWARN_BADQVEL, W.mjWARN_BADQACC, W.mjWARN_INERTIA):
        return joint(int(model.dof_jntid[info]) if 0 <= info < model.nv else -1)
    if w == W.mjWARN_BADCTRL and 0 <= info < model.nu:
        return f"actuator {model.actuator(info).name!r}"
    return f"info {info}"


_AUTORESET = ("mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADQACC")


def instability_message(model: mujoco.MjModel, data: mujoco.MjData, source: str, when: str,
                        t: float, before: np.ndarray | None = None) -> str:
    """Describe MuJoCo's warnings counted since ``before`` (all of them when None): names, counts,
    the joint/actuator each last named, the task file and the simulated time ``t`` (s)."""
    counts = np.asarray(data.warning.number)
    base = np.zeros_like(counts) if before is None else np.asarray(before)
    parts, reset = [], False
    for i in np.flatnonzero(counts != base):
        w = mujoco.mjtWarning(int(i))
        reset |= w.name in _AUTORESET
        parts.append(f"{w.name} x{int(counts[i])} "
                     f"({_warning_detail(model, w, int(data.warning[int(i)].lastinfo))})")
    what = ", ".join(parts) if parts else "an automatic reset (the simulated time went back)"
    tail = (" and MuJoCo reset the simulation state itself" if reset or not parts else "")
    return (f"{source}: MuJoCo warned {what} {when} at simulated time t = {t:.3f} s: the "
            f"simulation went unstable{tail}; the episode is invalid (not a policy failure)")


def build_scene(task: BddlTask) -> tuple[mujoco.MjSpec, SceneInfo]:
    """Build the MuJoCo scene of ``task``: table, fixtures, objects, region sites, cameras, lights.

    No robot is added (``robot_skills.robots.panda.add_panda`` puts one at the world origin). Objects are
    created at a parking pose; call :func:`sample_initial_state` after compiling.

    Args:
        task: a parsed task (:func:`robot_skills.tasks.bddl.parse_bddl`).

    Returns:
        ``(spec, info)``: the spec (``spec.compile()`` gives the model) and the :class:`SceneInfo`.

    Raises:
        sim.assets.UnsupportedCategoryError: if a category has no proxy asset (all are listed).
        SceneError: no table/floor fixture, a fixture without an ``(On fixture table_region)``
            placement, an atom naming a region the scene cannot build, a region value that is
            not finite or absurdly large (:func:`check_region_values`), or a table region off
            the table top (:func:`check_regions_on_table`); all before MuJoCo sees the values.
    """
    check_categories(task.categories(), source=task.source)
    check_region_values(task)
    tables = [n for n, c in task.fixtures.items() if c in TABLE_CATEGORIES]
    if len(tables) != 1:
        raise SceneError(f"{task.source}: a task needs exactly one table or floor fixture, found "
                         f"{tables}")
    table = tables[0]
    check_regions_on_table(task, table)
    spec = mujoco.MjSpec()
    spec.modelname = "robot_skills_scene"
    spec.compiler.degree = False
    spec.option.timestep = PHYSICS_TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.worldbody.add_geom(name="ground_plane", type=mujoco.mjtGeom.mjGEOM_PLANE,
                            size=[3, 3, 0.1], pos=[0, 0, -TABLE_HEIGHT], rgba=[0.5, 0.5, 0.55, 1])

    fixtures: dict[str, FixtureInfo] = {}
    regions: dict[str, RegionInfo] = {}
    t_asset = ASSETS[task.fixtures[table]]
    t_origin = table_origin(t_asset.category)
    cameras = _add_cameras_and_lights(spec, t_origin)
    built = t_asset.build(spec, spec.worldbody, table, pos=t_origin)
    fixtures[table] = FixtureInfo(table, t_asset.category, frozenset(), table,
                                  t_origin.copy(), 0.0, {}, built.bodies,
                                  {}, np.asarray(t_asset.half_extents, float))
    tbody = spec.body(table)
    for full, reg in task.regions.items():
        if reg.target != table or not reg.ranges:
            continue
        cx, cy, hx, hy = _table_region_center(reg.ranges)
        tbody.add_site(name=full, type=mujoco.mjtGeom.mjGEOM_BOX, pos=[cx, cy, 0.0],
                       size=[max(hx, 1e-3), max(hy, 1e-3), 0.05], rgba=[0.2, 0.2, 0.9, 0.3],
                       group=5)
        regions[full] = RegionInfo(full, full, "table", table, REGION_KIND_TAGS["table"], table,
                                   None, list(reg.ranges))

    # fixtures: pose from (On fixture table_region)
    placement = {a[1]: a[2] for a in task.init if a[0] == "on" and len(a) == 3}
    for name, cat in task.fixtures.items():
        if name == table:
            continue
        asset = ASSETS[cat]
        reg_name = placement.get(name)
        if reg_name is None or reg_name not in regions:
            raise SceneError(f"{task.source}: fixture {name!r} needs an init atom "
                             f"(On {name} <table region>), found {reg_name!r}")
        reg = task.regions[reg_name]
        cx, cy, _, _ = _table_region_center(reg.ranges[:1])
        yaw = 0.0
        if reg.yaw_rotation:
            lo, hi = reg.yaw_rotation[0]
            yaw = (lo + hi) / 2
        pos = t_origin + [cx, cy, 0.0]
        b = asset.build(spec, spec.worldbody, name, pos=pos, quat=yaw_quat(yaw))
        fixtures[name] = FixtureInfo(name, cat, asset.tags, name, pos, yaw, dict(b.joints),
                                     b.bodies, dict(b.sites), np.asarray(asset.half_extents, float))
        for rname, (site, body) in b.region_sites.items():
            kind = asset.regions[rname]
            joint = b.joints.get(rname) if kind == "drawer" else None
            regions[site] = RegionInfo(site, site, kind, name, REGION_KIND_TAGS[kind], body, joint)

    objects: dict[str, ObjectInfo] = {}
    for k, (name, cat) in enumerate(task.objects.items()):
        asset = ASSETS[cat]
        if asset.kind != "object":
            raise SceneError(f"{task.source}: {name!r} is declared as an object but category "
                             f"{cat!r} is a fixture")
        park = [float(t_origin[0]) + 2.0 + 0.3 * k, 2.0, 0.5]
        b = asset.build(spec, spec.worldbody, name, pos=park)
        objects[name] = ObjectInfo(name, cat, asset.tags, np.asarray(asset.half_extents, float),
                                   asset.grasp, name, b.joints["free"], asset.mass)
        for rname, (site, body) in b.region_sites.items():
            kind = asset.regions[rname]
            regions[site] = RegionInfo(site, site, kind, name, REGION_KIND_TAGS[kind], body)

    for name, cat in task.fixtures.items():
        if ASSETS[cat].kind != "fixture":
            raise SceneError(f"{task.source}: {name!r} is declared as a fixture but category "
                             f"{cat!r} is an object")

    # every region an atom names must exist in the scene
    entity_names = set(objects) | set(fixtures)
    for a in [*task.init, *task.goal]:
        for arg in a[1:]:
            if arg not in entity_names and arg not in regions:
                raise SceneError(
                    f"{task.source}: atom ({' '.join(a)}) names region {arg!r}, which the scene "
                    f"cannot build (its target has no such region); buildable regions: "
                    f"{sorted(regions)}")
    skipped = [r for r in task.regions if r not in regions]
    info = SceneInfo(task, objects, fixtures, regions, table, skipped, cameras)
    return spec, info


# ------------------------------------------------------------------------------------------
# initial states


def _qadr(model, joint: str) -> int:
    return int(model.jnt_qposadr[model.joint(joint).id])


def _vadr(model, joint: str) -> int:
    return int(model.jnt_dofadr[model.joint(joint).id])


def _site_yaw(data, sid: int) -> float:
    m = data.site_xmat[sid].reshape(3, 3)
    return math.atan2(m[1, 0], m[0, 0])


def _set_articulations(model, data, info: SceneInfo) -> None:
    init = set(info.task.init)
    for fx in info.fixtures.values():
        for role, joint in fx.joints.items():
            if role == "knob":
                on = ("turnon", fx.name) in init
                data.qpos[_qadr(model, joint)] = KNOB_INIT_ON if on else 0.0
            elif role == "door":
                is_open = ("open", fx.name) in init
                data.qpos[_qadr(model, joint)] = DOOR_INIT_OPEN if is_open else 0.0
            else:
                region = f"{fx.name}_{role}"
                data.qpos[_qadr(model, joint)] = DRAWER_INIT_OPEN if ("open", region) in init else 0.0
            data.qvel[_vadr(model, joint)] = 0.0


def _placement_order(info: SceneInfo) -> list[tuple[str, str, str]]:
    """``(obj, predicate, support)`` for every object, supports before what rests on them."""
    where: dict[str, tuple[str, str]] = {}
    for a in info.task.init:
        if a[0] in ("on", "in") and a[1] in info.objects:
            if a[1] in where:
                raise SceneError(f"{info.task.source}: object {a[1]!r} has two placements in "
                                 f"(:init …): {where[a[1]]} and {a[:1] + a[2:]}")
            where[a[1]] = (a[0], a[2])
    missing = [o for o in info.objects if o not in where]
    if missing:
        raise SceneError(f"{info.task.source}: objects without an (On …)/(In …) placement in "
                         f"(:init …): {missing}")
    order: list[tuple[str, str, str]] = []
    done: set[str] = set()

    def owner_obj(s: str) -> str | None:
        if s in info.objects:
            return s
        r = info.regions.get(s)
        return r.owner if r is not None and r.owner in info.objects else None

    def visit(o: str, stack: tuple[str, ...]) -> None:
        if o in done:
            return
        if o in stack:
            raise SceneError(f"{info.task.source}: circular placement {' -> '.join(stack + (o,))}")
        pred, sup = where[o]
        dep = owner_obj(sup)
        if dep is not None:
            visit(dep, stack + (o,))
        order.append((o, pred, sup))
        done.add(o)

    for o in info.objects:
        visit(o, ())
    return order


def _sample_pose(model, data, info: SceneInfo, obj: str, pred: str, sup: str,
                 rng: np.random.Generator, table_boxes: dict[str, list[tuple[float, ...]]]
                 ) -> tuple[np.ndarray, float, str | None]:
    """Return (world position, yaw, support body) for ``obj``; ``table_boxes``: the shifted /
    scaled boxes ``(cx, cy, hx, hy)`` of each table region, table frame, m."""
    half = info.objects[obj].half_extents
    foot = float(np.hypot(half[0], half[1]))
    noise = float(rng.uniform(-YAW_NOISE, YAW_NOISE))
    if sup in info.objects:  # on top of another object
        s_half = info.objects[sup].half_extents
        bid = model.body(sup).id
        p = data.xpos[bid].copy()
        xy = p[:2] + rng.uniform(-0.004, 0.004, size=2)
        z = p[2] + s_half[2] + half[2] + DROP_CLEARANCE
        return np.array([xy[0], xy[1], z]), noise, sup
    reg = info.regions[sup]
    treg = info.task.regions.get(sup)
    base_yaw = 0.0
    if treg is not None and treg.yaw_rotation:
        lo, hi = treg.yaw_rotation[int(rng.integers(len(treg.yaw_rotation)))]
        base_yaw, noise = float(rng.uniform(lo, hi)), 0.0
    if reg.kind == "table":
        boxes = table_boxes[sup]
        cx, cy, hx, hy = boxes[int(rng.integers(len(boxes)))]
        x = cx + rng.uniform(-hx, hx)
        y = cy + rng.uniform(-hy, hy)
        pos = info.table_origin + [x, y, half[2] + DROP_CLEARANCE]
        return pos, base_yaw + noise, info.table
    sid = model.site(reg.site).id
    spos = data.site_xpos[sid]
    smat = data.site_xmat[sid].reshape(3, 3)
    ssize = model.site_size[sid]
    syaw = _site_yaw(data, sid)
    lx_lo, lx_hi = -ssize[0], ssize[0]
    if reg.kind == "drawer" and reg.joint is not None:
        q = float(data.qpos[_qadr(model, reg.joint)])
        if q > 0.05:  # open: only the part pulled out of the carcass is reachable from above
            lx_lo = max(lx_lo, ssize[0] - q)
    margin = foot + 0.004 if reg.kind in ("drawer", "container") else foot
    lo = np.array([lx_lo + margin, -ssize[1] + margin])
    hi = np.array([lx_hi - margin, ssize[1] - margin])
    mid = (lo + hi) / 2
    lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)
    local = rng.uniform(lo, hi)
    world = spos + smat @ np.array([local[0], local[1], 0.0])
    world[2] = spos[2] + half[2] + DROP_CLEARANCE
    yaw = (syaw if reg.kind in ("drawer", "container") else 0.0) + base_yaw + noise
    return world, yaw, reg.body


def _penetrations(model, data, info: SceneInfo, allowed: set[frozenset[int]],
                  obj_bodies: set[int], tol: float = 1e-4) -> list[tuple[str, str, float]]:
    bad = []
    for i in range(data.ncon):
        c = data.contact[i]
        if c.dist >= -tol:
            continue
        b1, b2 = int(model.geom_bodyid[c.geom1]), int(model.geom_bodyid[c.geom2])
        if b1 not in obj_bodies and b2 not in obj_bodies:
            continue
        if frozenset((b1, b2)) in allowed:
            continue
        bad.append((model.body(b1).name, model.body(b2).name, float(c.dist)))
    return bad


def sample_initial_state(model: mujoco.MjModel, data: mujoco.MjData, info: SceneInfo,
                         rng: np.random.Generator, region_shift=(0.0, 0.0),
                         region_scale: float = 1.0, settle_steps: int = SETTLE_STEPS,
                         hold: Callable[[mujoco.MjModel, mujoco.MjData], None] | None = None,
                         max_tries: int = MAX_PLACEMENT_TRIES) -> None:
    """Place every object per the task's ``(:init …)``, set fixture articulations, let things settle.

    * ``(On obj <table region>)``: uniform in one of the region's range boxes (table frame), after
      scaling the box about its centre by ``region_scale`` and shifting it by ``region_shift``
      (:func:`robot_skills.tasks.regions.shift_scale_centre_half`; ``info`` and the task keep the
      original boxes, so region predicates are not moved).
    * ``(On obj <fixture region>)`` (cook region, cabinet top, rack): uniform inside the site box.
    * ``(On obj other_obj)``: on top of ``other_obj`` (±4 mm).
    * ``(In obj <drawer or basket region>)``: inside the volume; for an open drawer, in the part
      pulled out of the cabinet, so a top-down gripper can reach it.
    * Yaw: the region's ``:yaw_rotation`` if given, else 0 (in a drawer: the drawer's heading),
      plus uniform noise of ±:data:`YAW_NOISE` rad, so boxes stay near-aligned with the axes.
    * Drawers start at :data:`sim.assets.DRAWER_INIT_OPEN` if ``(Open region)`` is in init,
      else shut; stoves at :data:`sim.assets.KNOB_INIT_ON` if ``(Turnon stove)``, else off.

    Placements whose geoms penetrate anything but their own support are resampled. The robot
    (if the model has one) is left at its current ``qpos``; ``hold(model, data)`` is called before
    each settling step (e.g. to write the arm's position targets into ``data.ctrl``).

    Args:
        model, data: compiled model of a spec from :func:`build_scene` (robot optional).
        info: the :class:`SceneInfo` from :func:`build_scene`.
        rng: source of randomness; the same seed gives the same state.
        region_shift: ``(dx, dy)`` m added to every table region used for placement (table frame).
        region_scale: factor on the size of those regions (> 0).
        settle_steps: physics steps run after placement (0 skips settling).
        hold: optional callback run before each settling step.
        max_tries: placement attempts before giving up.

    After settling, MuJoCo's warning counters and the simulated time are compared with their
    values on entry: an instability (a bad position, velocity or acceleration, after which MuJoCo
    resets the state itself, or a full contact/constraint buffer) raises
    :class:`~robot_skills.robot.EpisodeInvalidError`; then every object's centre must still be
    above the table top (:func:`fallen_objects`).

    Raises:
        ValueError: on a ``region_scale`` that is not a finite number > 0, or a ``region_shift``
            that is not two finite numbers (see :func:`robot_skills.tasks.regions.check_shift_scale`).
        PlacementError: if no collision-free placement was found in ``max_tries`` attempts
            (the message names the colliding bodies), or an object fell off the table while
            settling (named with its position).
        SceneError: an object without a placement, a circular placement, or a shifted/scaled
            object region that leaves the table top (:func:`table_placement_boxes`).
        robot_skills.robot.EpisodeInvalidError: MuJoCo warned while the objects settled (the
            message names the warning, the task file and the simulated time).
    """
    table_boxes = table_placement_boxes(info, region_shift, region_scale)
    order = _placement_order(info)
    obj_bodies = {model.body(o).id for o in info.objects}
    free = {o: (_qadr(model, i.free_joint), _vadr(model, i.free_joint))
            for o, i in info.objects.items()}
    _set_articulations(model, data, info)
    # park every object far away first
    for k, (o, (qa, va)) in enumerate(free.items()):
        data.qpos[qa:qa + 7] = [info.table_origin[0] + 3.0 + 0.4 * k, 3.0, 0.5, 1, 0, 0, 0]
        data.qvel[va:va + 6] = 0.0
    last_bad: list = []
    for _ in range(max_tries):
        allowed: set[frozenset[int]] = set()
        for o, pred, sup in order:
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            pos, yaw, sup_body = _sample_pose(model, data, info, o, pred, sup, rng, table_boxes)
            qa, _ = free[o]
            data.qpos[qa:qa + 3] = pos
            data.qpos[qa + 3:qa + 7] = yaw_quat(yaw)
            if sup_body is not None:
                allowed.add(frozenset((model.body(o).id, model.body(sup_body).id)))
        mujoco.mj_forward(model, data)
        last_bad = _penetrations(model, data, info, allowed, obj_bodies)
        if not last_bad:
            break
    else:
        pairs = sorted({(a, b) for a, b, _ in last_bad})
        raise PlacementError(f"{info.task.source}: no collision-free initial placement after "
                             f"{max_tries} tries; still colliding: {pairs}")
    warn0, t0 = np.array(data.warning.number), float(data.time)
    for _ in range(int(settle_steps)):
        if hold is not None:
            hold(model, data)
        mujoco.mj_step(model, data)
    # MuJoCo's auto-reset zeroes the counters before counting its warning, and rewinds the time
    if (np.any(np.asarray(data.warning.number) != warn0)
            or float(data.time) < t0 + (int(settle_steps) - 0.5) * model.opt.timestep):
        raise EpisodeInvalidError(instability_message(
            model, data, info.task.source, "while the initial state settled", float(data.time),
            warn0))
    for qa, va in free.values():
        data.qvel[va:va + 6] = 0.0
    mujoco.mj_forward(model, data)
    fallen = fallen_objects(model, data, info)
    if fallen:
        raise PlacementError(
            f"{info.task.source}: object(s) fell off the table while the initial state settled: "
            + ", ".join(f"{o} at {_box_text(p)} m (world)" for o, p in fallen)
            + f"; {_table_top_text(info.table)}, top at z = 0")
