"""The simulator's side of pose-based perception: a :class:`PoseWorldModel` from a built scene,
knob and door poses a tracker would publish, and rollouts that compare the pose-based predicates
with the contact-based reference (:mod:`sim.predicates`).

* :func:`pose_world_model` fills :class:`robot_skills.perception.pose_predicates.PoseWorldModel`
  from a :class:`~sim.scene.SceneInfo` and the compiled model: object bounding boxes, grasp
  widths, shapes (round when a collision geom is a cylinder) and inner floors, fixture poses and
  footprints, region site sizes and fixed frames, drawer closed positions and slide axes, knob
  axes, door hinge axes — the same geometry the contact-based predicates see, and the same
  affordance tags as ``SceneInfo.entity_tags``.
* :func:`knob_poses`: the pose of each stove's knob site (``"<stove>_knob"``), which
  ``SimRobot.observe()`` does not carry; add it to ``object_poses`` to decide ``Turnon``/``Turnoff``
  from poses (what a perception stack tracking the knob would provide).
* :func:`door_poses`: the pose of each hinged door's body (``"<fixture>_door"``, the microwave's),
  likewise absent from ``SimRobot.observe()``, for ``Open``/``Close`` of the fixture;
  :func:`articulation_poses` is both.
* :func:`compare_expert_episode`: run the scripted experts on a task, planned from the contact
  state, and evaluate both predicate sets after every control step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from robot_skills.domain.predicates import Atom
from robot_skills.perception.pose_predicates import (
    DoorGeometry,
    DrawerGeometry,
    FixtureGeometry,
    KnobGeometry,
    ObjectGeometry,
    PoseTolerances,
    PoseWorldModel,
    RegionGeometry,
    evaluate_pose_predicates,
)
from robot_skills.robots.panda import GRIPPER_MAX_WIDTH
from sim.assets import (
    DOOR_CLOSED_THRESHOLD,
    DOOR_OPEN_THRESHOLD,
    DRAWER_CLOSED_THRESHOLD,
    DRAWER_OPEN_THRESHOLD,
    KNOB_ON_THRESHOLD,
)
from sim.predicates import CONTACT_TOL, REGION_XY_TOL, REGION_Z_BELOW, SUPPORT_TOL, predicate_state
from sim.scene import SceneInfo

__all__ = ["pose_world_model", "knob_poses", "door_poses", "articulation_poses",
           "perceived_poses", "contact_state",
           "StepRecord", "EpisodeComparison", "compare_expert_episode", "task_atoms"]


def _quat(R: np.ndarray) -> np.ndarray:
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(R, dtype=np.float64).reshape(-1))
    return q


def _rel(p0, R0, p1, R1) -> tuple[float, ...]:
    """Pose of frame 1 in frame 0, ``(7,)``."""
    return (*(R0.T @ (p1 - p0)), *_quat(R0.T @ R1))


def _floor_height(model, d, bid: int, geoms: np.ndarray, half) -> float | None:
    """Height above the object's bottom of the highest collision geom covering its centre line:
    the floor of an open object (bowl, plate, basket); None when that is its top (solid)."""
    p = d.xpos[bid]
    top = -np.inf
    for g in geoms:
        c = d.geom_xpos[g] + d.geom_xmat[g].reshape(3, 3) @ model.geom_aabb[g, :3]
        h = np.abs(d.geom_xmat[g].reshape(3, 3)) @ model.geom_aabb[g, 3:]
        if np.all(np.abs(p[:2] - c[:2]) <= h[:2]):
            top = max(top, float(c[2] + h[2] - p[2]))
    if not np.isfinite(top):
        return None
    floor = top + float(half[2])
    return None if floor >= 2 * float(half[2]) - 1e-3 else floor


def _other_grasp_widths(o, tol: PoseTolerances) -> tuple[float, ...]:
    """For a box grasped across one horizontal axis (``GraspInfo.axis`` ``"x"``/``"y"``): its
    width across the other one, when the open jaws take it with room to spare (the experts turn
    the hand to that axis when a neighbour blocks the usual one); else ``()``."""
    g = o.grasp
    if g is None or g.axis not in ("x", "y"):
        return ()
    other = 2.0 * float(o.half_extents[1] if g.axis == "x" else o.half_extents[0])
    if other <= g.grasp_width or other + tol.grip_width_margin >= GRIPPER_MAX_WIDTH:
        return ()
    return (other,)


def pose_world_model(scene: SceneInfo, model: mujoco.MjModel,
                     tolerances: PoseTolerances | None = None) -> PoseWorldModel:
    """The :class:`PoseWorldModel` of a built scene.

    Static frames (fixture poses — fixtures are welded —, region sites in their owner's frame,
    the drawers' closed positions, the knobs' and doors' zero orientations) are read at the
    model's reference configuration ``qpos0``, where drawers and doors are shut and knobs off. So
    only objects, drawer regions, knobs and doors need observed poses
    (``PoseWorldModel.tracked_entities``); observed poses of the
    others, when given, take precedence. Tolerances default to the contact-based evaluator's
    (``CONTACT_TOL``, ``SUPPORT_TOL``, ``REGION_XY_TOL``, ``REGION_Z_BELOW``).

    Args:
        scene: the scene's :class:`SceneInfo` (``SimRobot.scene``).
        model: the compiled model (``SimRobot.model``).
        tolerances: override the tolerances.
    """
    tol = tolerances if tolerances is not None else PoseTolerances(
        contact=CONTACT_TOL, support=SUPPORT_TOL, region_xy=REGION_XY_TOL,
        region_z_below=REGION_Z_BELOW)
    d = mujoco.MjData(model)
    mujoco.mj_kinematics(model, d)

    def body(name):
        i = model.body(name).id
        return d.xpos[i].copy(), d.xmat[i].reshape(3, 3).copy()

    def site(name):
        i = model.site(name).id
        return d.site_xpos[i].copy(), d.site_xmat[i].reshape(3, 3).copy()

    objects = {}
    for name, o in scene.objects.items():
        bid = model.body(o.body).id
        collide = (model.geom_bodyid == bid) & ((model.geom_contype != 0)
                                                 | (model.geom_conaffinity != 0))
        round_ = bool(np.any(model.geom_type[collide] == mujoco.mjtGeom.mjGEOM_CYLINDER))
        objects[name] = ObjectGeometry(
            half_extents=tuple(o.half_extents), tags=o.tags,
            grasp_width=o.grasp.grasp_width if o.grasp is not None else None,
            shape="cylinder" if round_ else "box",
            floor_height=_floor_height(model, d, bid, np.flatnonzero(collide), o.half_extents),
            grasp_widths=_other_grasp_widths(o, tol),
            # what the scripted place expert has always assumed: objects gripped from any side
            # (bowls, plates, cans) and ungraspable ones (a basket, a tray) are round
            footprint="round" if o.grasp is None or o.grasp.axis == "any" else "box")

    fixtures = {}
    for name, fx in scene.fixtures.items():
        knob = None
        if "knob" in fx.joints:
            ksite = fx.sites.get(f"{name}_knob", f"{name}_knob")
            pf, Rf = body(fx.body)
            pk, Rk = site(ksite)
            j = model.joint(fx.joints["knob"]).id
            axis = Rf.T @ d.xaxis[j]
            knob = KnobGeometry(entity=ksite, axis=tuple(axis), zero_quat=tuple(_quat(Rf.T @ Rk)),
                                on_threshold=KNOB_ON_THRESHOLD)
        door = None
        if "door" in fx.joints:
            j = model.joint(fx.joints["door"]).id
            pf, Rf = body(fx.body)
            pd, Rd = body(model.body(int(model.jnt_bodyid[j])).name)
            door = DoorGeometry(entity=_door_entity(model, fx), axis=tuple(Rf.T @ d.xaxis[j]),
                                zero_quat=tuple(_quat(Rf.T @ Rd)),
                                open_threshold=DOOR_OPEN_THRESHOLD,
                                closed_threshold=DOOR_CLOSED_THRESHOLD)
        pf, Rf = body(fx.body)
        fixtures[name] = FixtureGeometry(tags=fx.tags, half_extents=tuple(fx.half_extents),
                                         pose=(*pf, *_quat(Rf)), knob=knob, door=door)

    regions = {}
    for name, r in scene.regions.items():
        if r.kind == "table":
            regions[name] = RegionGeometry("table", r.owner, r.tags, ranges=tuple(r.ranges))
            continue
        sid = model.site(r.site).id
        half = tuple(float(v) for v in model.site_size[sid])
        owner_body = scene.objects[r.owner].body if r.owner in scene.objects \
            else scene.fixtures[r.owner].body
        po, Ro = body(owner_body)
        ps, Rs = site(r.site)
        if r.kind == "drawer":
            j = model.joint(r.joint).id
            drawer = DrawerGeometry(closed_pos=tuple(Ro.T @ (ps - po)),
                                    axis=tuple(Ro.T @ d.xaxis[j]),
                                    open_threshold=DRAWER_OPEN_THRESHOLD,
                                    closed_threshold=DRAWER_CLOSED_THRESHOLD)
            regions[name] = RegionGeometry("drawer", r.owner, r.tags, half_extents=half,
                                           drawer=drawer)
        else:
            regions[name] = RegionGeometry(r.kind, r.owner, r.tags, half_extents=half,
                                           frame_in_owner=_rel(po, Ro, ps, Rs))
    return PoseWorldModel(objects, fixtures, regions, table=scene.table, tolerances=tol)


def knob_poses(model: mujoco.MjModel, data: mujoco.MjData, scene: SceneInfo
               ) -> dict[str, np.ndarray]:
    """``"<stove>_knob"`` -> ``(7,)`` base-frame pose of each knob site (it turns with the knob).

    ``data`` must be forward-computed (as after ``SimRobot.act``/``reset``).
    """
    out = {}
    for name, fx in scene.fixtures.items():
        if "knob" not in fx.joints:
            continue
        s = fx.sites.get(f"{name}_knob", f"{name}_knob")
        i = model.site(s).id
        out[s] = np.concatenate([data.site_xpos[i], _quat(data.site_xmat[i].reshape(3, 3))])
    return out


def _door_entity(model: mujoco.MjModel, fx) -> str:
    """Name of the body the door hinge of fixture ``fx`` turns (``"<fixture>_door"``)."""
    return model.body(int(model.jnt_bodyid[model.joint(fx.joints["door"]).id])).name


def door_poses(model: mujoco.MjModel, data: mujoco.MjData, scene: SceneInfo
               ) -> dict[str, np.ndarray]:
    """``"<fixture>_door"`` -> ``(7,)`` base-frame pose ``[x, y, z, qw, qx, qy, qz]`` (m) of the
    door body of each fixture with a hinged door (the microwave); it swings with the door.

    ``data`` must be forward-computed (as after ``SimRobot.act``/``reset``).
    """
    out = {}
    for fx in scene.fixtures.values():
        if "door" not in fx.joints:
            continue
        b = _door_entity(model, fx)
        i = model.body(b).id
        out[b] = np.concatenate([data.xpos[i], _quat(data.xmat[i].reshape(3, 3))])
    return out


def articulation_poses(model: mujoco.MjModel, data: mujoco.MjData, scene: SceneInfo
                       ) -> dict[str, np.ndarray]:
    """:func:`knob_poses` and :func:`door_poses` together: the tracked entities besides
    ``SimRobot.observe().object_poses`` that :func:`pose_world_model`'s model needs."""
    return {**knob_poses(model, data, scene), **door_poses(model, data, scene)}


def perceived_poses(robot) -> Callable[[object], dict[str, np.ndarray]]:
    """A ``pose_source`` for :class:`~robot_skills.perception.PoseTaskWorld` on a ``SimRobot``:
    the observation's ``object_poses`` plus :func:`articulation_poses` (knobs and doors)."""

    def source(obs) -> dict[str, np.ndarray]:
        poses = dict(obs.object_poses)
        poses.update(articulation_poses(robot.model, robot.data, robot.scene))
        return poses

    return source


def contact_state(robot) -> frozenset[Atom]:
    """The contact-based reference state of a ``SimRobot`` (``holding``/``handempty`` included)."""
    return predicate_state(robot.model, robot.data, robot.scene,
                           gripper_geom_ids=robot.gripper_geom_ids)


def task_atoms(task, objects: Iterable[str]) -> frozenset[Atom]:
    """The atoms a task is about: its init and goal atoms, ``holding`` of each graspable object
    in ``objects``, and ``handempty``."""
    return frozenset([*map(tuple, task.init), *map(tuple, task.goal),
                      *(("holding", o) for o in objects), ("handempty",)])


# ------------------------------------------------------------------------------------------
# rollouts


@dataclass
class StepRecord:
    """Both predicate states after one control step (step 0: after reset).

    Attributes:
        step: control steps taken.
        skill, args: the expert call running (None at step 0).
        contact, pose: full predicate states (contact-based reference, pose-based).
        gripper_width: m. ee_pos: ``(3,)`` m. poses: entity -> ``(7,)`` (knobs and doors
            included).
        gripper_cmd: the gripper command of the step's action (+1 close, -1 open).
    """

    step: int
    skill: str | None
    args: tuple[str, ...]
    contact: frozenset[Atom]
    pose: frozenset[Atom]
    gripper_width: float
    ee_pos: np.ndarray
    poses: dict[str, np.ndarray]
    gripper_cmd: float = 0.0


@dataclass
class EpisodeComparison:
    """One expert episode with both evaluators.

    Attributes:
        task: file name (or source) of the task. seed: reset seed.
        success: the contact-based goal held at the end.
        steps: list of :class:`StepRecord`.
        calls: ``(skill, args, outcome)`` per expert call.
        atoms: :func:`task_atoms` of the task.
        goal: the task's goal atoms (lower-case predicate first).
    """

    task: str
    seed: int
    success: bool
    steps: list[StepRecord] = field(default_factory=list)
    calls: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)
    atoms: frozenset[Atom] = frozenset()
    goal: frozenset[Atom] = frozenset()

    def agreement(self, atoms: Iterable[Atom] | None = None) -> tuple[float, float]:
        """``(fraction of steps on which every atom agrees, fraction of atom-steps that agree)``
        over ``atoms`` (default :attr:`atoms`)."""
        atoms = list(self.atoms if atoms is None else atoms)
        if not self.steps or not atoms:
            return 1.0, 1.0
        ok_steps = ok_atoms = 0
        for r in self.steps:
            bad = sum((a in r.contact) != (a in r.pose) for a in atoms)
            ok_steps += bad == 0
            ok_atoms += len(atoms) - bad
        return ok_steps / len(self.steps), ok_atoms / (len(self.steps) * len(atoms))


class _Tagged:
    """An expert that notes which call is running (for the per-step records)."""

    def __init__(self, policy, current: dict) -> None:
        self.policy, self.current, self.name = policy, current, policy.name

    def reset(self, args, world) -> None:
        self.current.update(skill=self.name, args=tuple(args))
        self.policy.reset(args, world)

    def act(self, obs):
        return self.policy.act(obs)


def compare_expert_episode(robot, seed: int, *, max_steps: int = 600, max_replans: int = 2,
                           settle_steps: int = 0) -> EpisodeComparison:
    """Run one scripted-expert episode on ``robot`` and record both predicate states per step.

    The episode runs through the project's :class:`~robot_skills.execution.executor.Executor`
    on a :class:`sim.world.SimTaskWorld`, so planning, termination and replanning use the
    contact-based state (the reference) and the pose-based evaluator only observes, at every
    control step (the executor's ``on_step`` callback).

    Args:
        robot: a ``SimRobot`` (rebuilt scenes are costly: reuse one per task across seeds).
        seed: reset seed.
        max_steps: episode control-step budget.
        max_replans: replans allowed after the first plan.
        settle_steps: control steps to hold still (open gripper, zero motion) after the goal holds.
    """
    from robot_skills.execution.executor import Executor
    from robot_skills.execution.interfaces import SkillSet
    from robot_skills.robot import Action
    from sim.factories import ExpertSkills
    from sim.world import SimTaskWorld

    world = SimTaskWorld(robot)
    robot.reset(seed)
    task = robot.task
    model = pose_world_model(robot.scene, robot.model)
    graspable = [o for o, i in robot.scene.objects.items() if "graspable" in i.tags]
    ep = EpisodeComparison(getattr(task, "source", "?").rsplit("/", 1)[-1], seed, False,
                           atoms=task_atoms(task, graspable),
                           goal=frozenset((str(a[0]).lower(), *a[1:]) for a in task.goal))

    def record(step, skill, args, cmd, obs) -> StepRecord:
        poses = dict(obs.object_poses)
        poses.update(articulation_poses(robot.model, robot.data, robot.scene))
        rec = StepRecord(step, skill, tuple(args), contact_state(robot),
                         evaluate_pose_predicates(model, poses, obs.gripper_width, obs.ee_pos),
                         float(obs.gripper_width), np.array(obs.ee_pos), poses, cmd)
        ep.steps.append(rec)
        return rec

    record(0, None, (), 0.0, robot.observe())
    current: dict = {"skill": None, "args": ()}
    experts = ExpertSkills()()
    skills = SkillSet({k: _Tagged(p, current) for k, p in experts.policies.items()},
                      experts.specs)

    def on_step(step, obs, action) -> None:
        record(step, current["skill"], current["args"], float(action.gripper), obs)

    result = Executor(world, skills, max_replans=max_replans, max_steps=max_steps,
                      on_step=on_step).run()
    ep.calls = [(c.skill, tuple(c.args), c.outcome) for c in result.calls]
    ep.success = bool(result.success)
    if ep.success:
        hold = Action(np.zeros(3), np.zeros(3), -1.0)
        steps = result.steps
        for _ in range(settle_steps):
            robot.act(hold)
            steps += 1
            record(steps, "settle", (), -1.0, robot.observe())
    return ep
