"""Failure injection for closed-loop tests: perturb the MuJoCo state while a plan runs.

A :class:`FailureInjector` is a pair of executor hooks (``on_call`` and ``on_step`` of
:class:`robot_skills.execution.executor.Executor`) that applies one :class:`Fault` to the live
simulation when its :class:`Trigger` fires: at the end of the ``k``-th call of a skill, or a given
number of control steps into it. The faults are the disturbances a real kitchen produces and the
closed-loop executor must recover from:

* :class:`KnockOff` — an object is knocked off the target it was placed on (teleported to a resting
  pose elsewhere on the table);
* :class:`ShutDrawer` — a drawer is pushed shut (its slide joint set back to closed);
* :class:`Slip` — the grasp slips: the held object leaves the fingers (teleported to a resting
  pose on the table, or dropped straight down out of the hand).

Edits go through the scene's own :class:`mujoco.MjModel` / :class:`mujoco.MjData` (joints and
bodies named by :class:`sim.scene.SceneInfo`), zero the edited velocities and end with
``mujoco.mj_forward``, so the state is forward-consistent as :meth:`sim.sim_robot.SimRobot.act`
expects. A fault that cannot be applied as asked (unknown object, a drawer that is not a drawer,
a slip of an object that is not held, a teleport into another body) raises
:class:`FailureInjectionError` out of the executor's run — never a silent no-op.

Frames and units: poses are world-frame ``(7,)`` float64 ``[x, y, z, qw, qx, qy, qz]`` (m, unit
quaternion) — the free joint's ``qpos``; drawer joint positions are m of slide travel, 0 = shut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from robot_skills.planning.symbolic import SkillCall

__all__ = ["FailureInjectionError", "Trigger", "Fault", "KnockOff", "ShutDrawer", "Slip",
           "FailureInjector", "PENETRATION_TOL"]

PENETRATION_TOL = 0.004
"""Deepest contact penetration (m) a teleported body may have after the edit; deeper means the
target pose overlaps another body (MuJoCo would push them apart violently)."""


class FailureInjectionError(RuntimeError):
    """A fault could not be applied as specified (the message names the fault and why)."""


@dataclass(frozen=True)
class Trigger:
    """When a fault fires.

    Attributes:
        skill: the verb of the call that triggers it (``"place_on"``, ``"pick"``, …).
        occurrence: which call of that verb, 1-based, counted over the whole episode (replans
            included).
        after_steps: ``None`` fires at the call's end (after the executor's effect check, before
            the next call starts); ``k >= 1`` fires right after the call's ``k``-th control step
            (if the call ends earlier, the fault does not fire).
        args: if given, only calls with exactly these arguments count.

    Raises:
        ValueError: ``occurrence < 1`` or ``after_steps < 1``.
    """

    skill: str
    occurrence: int = 1
    after_steps: int | None = None
    args: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.occurrence < 1:
            raise ValueError(f"Trigger.occurrence must be >= 1, got {self.occurrence}")
        if self.after_steps is not None and self.after_steps < 1:
            raise ValueError(f"Trigger.after_steps must be >= 1 or None, got {self.after_steps}")
        if self.args is not None:
            object.__setattr__(self, "args", tuple(self.args))

    def matches(self, call: SkillCall) -> bool:
        """True when ``call`` is of this trigger's verb (and arguments, if set)."""
        return call.skill == self.skill and (self.args is None or call.args == self.args)


class Fault:
    """A perturbation of the simulation. Subclasses implement :meth:`prepare` (called once when
    the injector is made, e.g. to remember start poses) and :meth:`apply`."""

    def prepare(self, world: Any) -> None:
        """Remember what :meth:`apply` needs from the episode's current state (default: nothing).

        Raises:
            FailureInjectionError: the fault names something the scene does not have.
        """

    def apply(self, world: Any) -> str:
        """Change ``world.data`` and return a one-line description of what was done.

        Raises:
            FailureInjectionError: the fault cannot be applied now.
        """
        raise NotImplementedError


def _object(world: Any, name: str, fault: str):
    info = world.scene.objects.get(name)
    if info is None:
        raise FailureInjectionError(f"{fault}: {name!r} is not an object of the scene "
                                    f"(objects: {sorted(world.scene.objects)})")
    return info


def _free_qadr(world: Any, joint: str) -> tuple[int, int]:
    j = world.model.joint(joint)
    return int(j.qposadr[0]), int(j.dofadr[0])


def _free_pose(world: Any, obj: str, fault: str) -> np.ndarray:
    """``(7,)`` copy of object ``obj``'s free-joint pose ``[x, y, z, qw, qx, qy, qz]`` (world
    frame, m) — what a fault restores or moves from. Raises FailureInjectionError for an unknown
    object."""
    qa, _ = _free_qadr(world, _object(world, obj, fault).free_joint)
    return world.data.qpos[qa:qa + 7].copy()


def _body_subtree(model: mujoco.MjModel, root: int) -> set[int]:
    out = {root}
    for b in range(root + 1, model.nbody):
        if int(model.body_parentid[b]) in out:
            out.add(b)
    return out


def _check_penetration(world: Any, bodies: set[int], what: str) -> None:
    """Raise if a geom of ``bodies`` penetrates another body's geom deeper than the tolerance."""
    m, d = world.model, world.data
    for k in range(d.ncon):
        c = d.contact[k]
        b1, b2 = int(m.geom_bodyid[c.geom1]), int(m.geom_bodyid[c.geom2])
        if (b1 in bodies) == (b2 in bodies):
            continue
        if c.dist < -PENETRATION_TOL:
            other = b2 if b1 in bodies else b1
            raise FailureInjectionError(
                f"{what}: the edited pose overlaps body {m.body(other).name!r} by "
                f"{-c.dist * 1000:.1f} mm (> {PENETRATION_TOL * 1000:.0f} mm); choose another pose")


def _teleport(world: Any, obj: str, joint: str, pose: np.ndarray, what: str) -> None:
    m, d = world.model, world.data
    qa, va = _free_qadr(world, joint)
    q = np.asarray(pose, dtype=np.float64).copy()
    q[3:7] /= np.linalg.norm(q[3:7])
    d.qpos[qa:qa + 7] = q
    d.qvel[va:va + 6] = 0.0
    mujoco.mj_forward(m, d)
    _check_penetration(world, {m.body(obj).id}, what)


def _pose_arg(pose: Sequence[float] | None, what: str) -> np.ndarray | None:
    if pose is None:
        return None
    p = np.asarray(pose, dtype=np.float64).reshape(-1)
    if p.shape != (7,) or not np.all(np.isfinite(p)) or np.linalg.norm(p[3:7]) < 1e-6:
        raise ValueError(f"{what}: pose must be 7 finite numbers [x, y, z, qw, qx, qy, qz] "
                         f"(world frame, m) with a non-zero quaternion, got {pose!r}")
    return p


@dataclass
class KnockOff(Fault):
    """An object knocked off its target: teleported to a resting pose on the table, at rest.

    Args:
        obj: the object (entity name).
        pose: world-frame ``(7,)`` ``[x, y, z, qw, qx, qy, qz]`` to put it at (m); default: the
            pose it had when the injector was made — after ``world.reset`` that is its settled
            start pose, a collision-free resting pose away from the target.
    """

    obj: str
    pose: Sequence[float] | None = None
    _start: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.pose = _pose_arg(self.pose, f"KnockOff({self.obj})")

    def prepare(self, world: Any) -> None:
        """Remember the object's current free-joint pose (world frame)."""
        self._start = _free_pose(world, self.obj, f"KnockOff({self.obj})")

    def apply(self, world: Any) -> str:
        """Teleport the object to its pose, zero its velocity, ``mj_forward``.

        Raises:
            FailureInjectionError: unknown object, or the pose overlaps another body.
        """
        info = _object(world, self.obj, f"KnockOff({self.obj})")
        pose = self.pose if self.pose is not None else self._start
        if pose is None:
            raise FailureInjectionError(f"KnockOff({self.obj}): prepare() was never called")
        _teleport(world, info.body, info.free_joint, pose, f"KnockOff({self.obj})")
        return (f"knocked {self.obj} off to ({pose[0]:.3f}, {pose[1]:.3f}, {pose[2]:.3f}) m "
                f"(world)")


@dataclass
class ShutDrawer(Fault):
    """A drawer pushed shut: its slide joint set to ``position`` (m, 0 = shut) with zero velocity.

    Args:
        region: the drawer region's full name (``"wooden_cabinet_1_top_region"``), as the planner
            names it.
        position: slide travel to set, m; 0 is fully shut (below
            :data:`sim.assets.DRAWER_CLOSED_THRESHOLD`, so ``(Close region)`` holds after).

    Raises:
        ValueError: a negative or non-finite ``position``.
    """

    region: str
    position: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.position) and self.position >= 0.0):
            raise ValueError(f"ShutDrawer({self.region}): position must be finite and >= 0 m, "
                             f"got {self.position}")

    def _joint(self, world: Any) -> tuple[str, str]:
        r = world.scene.regions.get(self.region)
        if r is None or r.kind != "drawer" or r.joint is None:
            drawers = sorted(n for n, ri in world.scene.regions.items() if ri.kind == "drawer")
            raise FailureInjectionError(f"ShutDrawer({self.region}): not a drawer region of the "
                                        f"scene (drawers: {drawers})")
        return r.joint, r.body

    def prepare(self, world: Any) -> None:
        """Check that the region is a drawer of the scene."""
        self._joint(world)

    def apply(self, world: Any) -> str:
        """Set the drawer's slide joint, zero its velocity, ``mj_forward``.

        Raises:
            FailureInjectionError: not a drawer, or the shut drawer would overlap a body (e.g. an
                object sticking out of it, or the robot's hand inside it).
        """
        joint, body = self._joint(world)
        m, d = world.model, world.data
        j = m.joint(joint)
        before = float(d.qpos[int(j.qposadr[0])])
        d.qpos[int(j.qposadr[0])] = self.position
        d.qvel[int(j.dofadr[0])] = 0.0
        mujoco.mj_forward(m, d)
        _check_penetration(world, _body_subtree(m, m.body(body).id), f"ShutDrawer({self.region})")
        return f"pushed {self.region} shut ({before:.3f} -> {self.position:.3f} m)"


@dataclass
class Slip(Fault):
    """A grasp that slips: the held object leaves the fingers.

    Args:
        obj: the object that must be held (``(Holding obj)``) when the fault fires.
        pose: world-frame ``(7,)`` resting pose to put it at; default: its pose when the injector
            was made (its settled start pose after ``world.reset``).
        drop: instead of a teleport, move the object straight down by ``drop_m`` (out of the
            fingers) and let it fall from there: a physical drop, whose landing spot is not
            chosen by the test.
        drop_m: how far below its held position the dropped object is put, m.
    """

    obj: str
    pose: Sequence[float] | None = None
    drop: bool = False
    drop_m: float = 0.04
    _start: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.pose = _pose_arg(self.pose, f"Slip({self.obj})")
        if not (np.isfinite(self.drop_m) and self.drop_m > 0):
            raise ValueError(f"Slip({self.obj}): drop_m must be finite and > 0 m, "
                             f"got {self.drop_m}")

    def prepare(self, world: Any) -> None:
        """Remember the object's current free-joint pose (world frame)."""
        self._start = _free_pose(world, self.obj, f"Slip({self.obj})")

    def apply(self, world: Any) -> str:
        """Move the held object out of the hand, zero its velocity, ``mj_forward``.

        Raises:
            FailureInjectionError: the object is not held when the fault fires, or its new pose
                overlaps another body.
        """
        info = _object(world, self.obj, f"Slip({self.obj})")
        if ("holding", self.obj) not in world.predicate_state():
            raise FailureInjectionError(f"Slip({self.obj}): the object is not held when the "
                                        "fault fires; trigger it during transport")
        qa, _ = _free_qadr(world, info.free_joint)
        if self.drop:
            pose = world.data.qpos[qa:qa + 7].copy()
            pose[2] -= self.drop_m
        else:
            pose = self.pose if self.pose is not None else self._start
            if pose is None:
                raise FailureInjectionError(f"Slip({self.obj}): prepare() was never called")
        _teleport(world, info.body, info.free_joint, pose, f"Slip({self.obj})")
        return (f"{self.obj} slipped out of the grasp to ({pose[0]:.3f}, {pose[1]:.3f}, "
                f"{pose[2]:.3f}) m (world)")


class FailureInjector:
    """Executor hooks that apply one fault when its trigger fires (once per episode).

    Use: ``inj = FailureInjector(world, Slip("bowl_1"), Trigger("place_on", after_steps=10))``
    right after ``world.reset(seed)``, then ``Executor(world, skills, **inj.hooks()).run()``.

    Args:
        world: a :class:`sim.world.SimTaskWorld` (``model``, ``data``, ``scene``,
            ``predicate_state``).
        fault: a :class:`KnockOff`, :class:`ShutDrawer`, :class:`Slip` (or any object with
            ``prepare(world)`` and ``apply(world) -> str``).
        trigger: when it fires.

    Attributes:
        fired: ``(episode control step, call, description)`` of the applied fault (at most one).
        seen: calls started so far, in order.

    Raises:
        FailureInjectionError: the fault names something the scene does not have.
    """

    def __init__(self, world: Any, fault: Any, trigger: Trigger) -> None:
        self.world, self.fault, self.trigger = world, fault, trigger
        fault.prepare(world)
        self.fired: list[tuple[int, str, str]] = []
        self.seen: list[SkillCall] = []
        self._count = 0
        self._armed = False
        self._call_steps = 0
        self._step = 0

    def hooks(self) -> dict[str, Any]:
        """``{"on_call": ..., "on_step": ...}`` for the :class:`Executor` constructor."""
        return {"on_call": self.on_call, "on_step": self.on_step}

    def _fire(self, call: SkillCall) -> None:
        self._armed = False
        desc = self.fault.apply(self.world)
        self.fired.append((self._step, str(call), desc))

    def on_call(self, event: str, call: SkillCall, record: Any) -> None:
        """Executor hook: count calls of the trigger's verb; fire at the end if so triggered.

        Raises:
            ValueError: an unknown ``event``. FailureInjectionError: from the fault.
        """
        if event == "start":
            self.seen.append(call)
            self._call_steps = 0
            self._armed = False
            if not self.fired and self.trigger.matches(call):
                self._count += 1
                self._armed = self._count == self.trigger.occurrence
        elif event == "end":
            if self._armed and self.trigger.after_steps is None:
                self._fire(call)
            self._armed = False
        else:
            raise ValueError(f"on_call: event must be 'start' or 'end', got {event!r}")

    def on_step(self, step: int, obs: Any, action: Any) -> None:
        """Executor hook: count the running call's steps; fire after ``after_steps`` of them."""
        self._step = int(step)
        self._call_steps += 1
        if (self._armed and self.trigger.after_steps is not None
                and self._call_steps == self.trigger.after_steps):
            self._fire(self.seen[-1])
