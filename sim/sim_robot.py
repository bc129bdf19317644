"""``SimRobot``: a Franka Panda inside a LIBERO task scene in MuJoCo, behind the one robot interface.

It implements :class:`robot_skills.robot.Robot` (reset / observe / act at 20 Hz). The task's
predicate state comes from :class:`sim.world.SimTaskWorld`, which reads this robot's contacts.

Frames and units: the world frame *is* the robot base frame (Panda ``link0`` sits at the world
origin on the table-top plane, z = 0); positions in m, angles in rad, quaternions ``(w, x, y, z)``.

One control step (:meth:`SimRobot.act`): the shared :class:`~robot_skills.control.diff_ik.DiffIKController`
(its own arm-only model, exactly as on hardware) turns the action into joint position targets,
which are held for 25 physics steps of 2 ms. The physics loop is split as MuJoCo recommends
(``mj_step2`` ... ``mj_step1``) so that after every control step positions, contacts and sensors are
consistent with ``qpos`` at no extra cost. Camera images are rendered once per control step and
only for the cameras asked for, without shadows or reflections, with one reused renderer.

Nothing unstable passes silently: MuJoCo answers a bad position, velocity or acceleration by
resetting the whole state itself (every object back at its parking pose, on the floor) and only
counts a warning in ``data.warning``. :meth:`SimRobot.reset` zeroes those counters, and every
control step and every reset ends by checking them (one ``any()`` over seven integers, ~1 us):
a warning raises :class:`~robot_skills.robot.EpisodeInvalidError` naming the warning, the task file
and the simulated time, which the executor lets through and the benchmark runner records as an
invalid episode, apart from policy failures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from robot_skills.control.diff_ik import DiffIKController
from robot_skills.robot import Action, ActionLimits, EpisodeInvalidError, Observation, Robot
from robot_skills.robots import panda
from robot_skills.tasks.bddl import BddlTask, load_bddl
from sim.layout import CONTROL_HZ
from sim.scene import (
    SceneInfo,
    build_scene,
    instability_message,
    sample_initial_state,
    table_placement_boxes,
)

_SENSOR_PREFIX = "obs/"
OBS_PROPRIO_DIM = 3 + 4 + 7 + 7 + 2
"""Proprioceptive part of :meth:`SimRobot.observation_array`: ee pos, ee quat, arm joint pos, arm
joint vel, finger joint pos."""


def _add_observation_sensors(spec: mujoco.MjSpec, names: panda.PandaNames,
                             info: SceneInfo) -> tuple[str, ...]:
    """Append the sensors :meth:`SimRobot.observe` reads, as one block at the end of sensordata.

    Order: tcp ``framepos`` (3) and ``framequat`` (4), ``jointpos`` of the 7 arm joints,
    ``jointvel`` of the 7 arm joints, ``jointpos`` of the 2 finger joints, then per entity
    (objects and fixtures: body frame; regions: their site) ``framepos`` + ``framequat`` (7).

    Returns:
        The entity names in the order of their poses in the block.
    """
    S, Obj = mujoco.mjtSensor, mujoco.mjtObj

    def add(name: str, kind, objtype, objname: str) -> None:
        spec.add_sensor(name=_SENSOR_PREFIX + name, type=kind, objtype=objtype, objname=objname)

    add("ee_pos", S.mjSENS_FRAMEPOS, Obj.mjOBJ_SITE, names.tcp_site)
    add("ee_quat", S.mjSENS_FRAMEQUAT, Obj.mjOBJ_SITE, names.tcp_site)
    for j in names.arm_joints:
        add(f"{j}/pos", S.mjSENS_JOINTPOS, Obj.mjOBJ_JOINT, j)
    for j in names.arm_joints:
        add(f"{j}/vel", S.mjSENS_JOINTVEL, Obj.mjOBJ_JOINT, j)
    for j in names.finger_joints:
        add(f"{j}/pos", S.mjSENS_JOINTPOS, Obj.mjOBJ_JOINT, j)
    frames = [(b, Obj.mjOBJ_XBODY, b) for b in (*info.objects, *info.fixtures)]
    frames += [(r, Obj.mjOBJ_SITE, ri.site) for r, ri in info.regions.items()]
    for entity, objtype, objname in frames:
        add(f"{entity}/pos", S.mjSENS_FRAMEPOS, objtype, objname)
        add(f"{entity}/quat", S.mjSENS_FRAMEQUAT, objtype, objname)
    return tuple(entity for entity, _, _ in frames)


@dataclass(frozen=True)
class Deployment:
    """The real arm's command path, emulated: what :class:`SimRobot` runs with ``deployment``.

    Each control step then goes through :class:`~robot_skills.control.command_path.JointCommandPath`
    (the differential IK and the :class:`~robot_skills.control.safety.SafetyFilter` with these
    limits -- the code :class:`hardware.ros2_robot.Ros2Robot` runs) and the filtered command is
    streamed, as the bridge streams it, as a single-point trajectory ``lookahead_periods`` control
    periods ahead to a simulated ros2_control JointTrajectoryController
    (:class:`sim.ros_twin.TrajectoryFollower`, the twin's), sampled at every 2 ms physics step.
    Skills collected and trained this way see the dynamics they are deployed with.

    Attributes:
        limits: the safety limits (a hardware preset's, e.g.
            ``hardware.config.load_bridge_config("panda").safety_limits()``).
        lookahead_periods: ``time_from_start`` of each streamed point, control periods (> 0).
        velocity_feedforward: feed the trajectory's velocity to the servos (the twin's option).
        latency_s: time from the observation to the command taking effect, s (>= 0; rounded to
            2 ms physics steps, below one control period): state age + policy inference +
            transport. The arm keeps following the previous command meanwhile, and the filter
            measures against the observed (now stale) state, as on the wire.
        name: where the limits came from (a preset name), for messages and run records.
    """

    limits: Any
    lookahead_periods: float = 1.0
    velocity_feedforward: bool = False
    latency_s: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        from robot_skills.control.safety import SafetyLimits

        if not isinstance(self.limits, SafetyLimits):
            raise ValueError(f"Deployment.limits must be SafetyLimits, got "
                             f"{type(self.limits).__name__}")
        if self.limits.n_joints != panda.N_ARM_JOINTS:
            raise ValueError(f"Deployment.limits are for {self.limits.n_joints} joints; the "
                             f"simulated Panda has {panda.N_ARM_JOINTS}")
        la = self.lookahead_periods
        if isinstance(la, bool) or not isinstance(la, (int, float)) or not np.isfinite(la) \
                or la <= 0:
            raise ValueError(f"Deployment.lookahead_periods must be a finite number > 0, got "
                             f"{la!r}")
        lat = self.latency_s
        if isinstance(lat, bool) or not isinstance(lat, (int, float)) or not \
                0.0 <= lat < 1.0 / CONTROL_HZ:
            raise ValueError(f"Deployment.latency_s must be in [0, {1.0 / CONTROL_HZ:g}) s, got "
                             f"{lat!r}")


class SimRobot(Robot):
    """A simulated Panda in the scene of one LIBERO BDDL task.

    Args:
        task: a parsed :class:`~robot_skills.tasks.bddl.BddlTask` or the path of a ``.bddl`` file.
        cameras: scene camera names to render into every observation (e.g. ``("agentview",
            "panda/wrist_cam")``); ``()`` renders nothing (state-only, fastest).
        image_size: ``(height, width)`` of rendered images, pixels.
        depth: also render depth images (``"<camera>_depth"`` keys would be added by the env;
            here ``images[camera + "_depth"]``, float32, m).
        seed: default seed of :meth:`reset` when it is called without one.
        region_shift: ``(dx, dy)`` m added to every table placement region (perturbation).
        region_scale: scale factor of the placement regions about their centres (perturbation).
        action_limits: per-step action bounds.
        perturbation: a :class:`robot_skills.evaluation.perturbations.PerturbationSpec` (read by
            duck typing) whose simulator axes this robot applies: the camera and lighting once
            here; at every :meth:`reset`, with a generator seeded by the reset seed (so the same
            seed gives the same draw, and the placement sampler's draws are unchanged), the
            per-object mass and friction factors and the home-pose joint noise; and at every
            observation, Gaussian noise on the observed object poses (:meth:`observation_array`;
            the simulator state is never changed). Its layout axes are applied to the task
            before it gets here (:func:`~robot_skills.evaluation.perturbations.apply_perturbation`).

    Attributes:
        model, data: the compiled scene + robot.
        scene: the :class:`~sim.scene.SceneInfo`.
        names: the :class:`~robot_skills.robots.panda.PandaNames`.
        entity_names: objects, fixtures, then regions: the keys of ``Observation.object_poses``.
        controller: the shared differential-IK controller.

    Raises:
        ValueError: on an unknown camera name, a bad image size, or a bad ``region_shift`` /
            ``region_scale``.
        sim.assets.UnsupportedCategoryError / sim.scene.SceneError / robot_skills.tasks.bddl.BddlParseError: on a
            task the scene builder rejects (:func:`sim.scene.build_scene`: region values that are
            not finite or absurd, regions off the table top), or a ``region_shift`` /
            ``region_scale`` that moves an object's region off the table top; a ``perturbation``
            naming a camera the model lacks (``camera``) or, with ``light_direction``, a scene
            without a ``key_light``.
    """

    def __init__(
        self,
        task: BddlTask | str | Path,
        *,
        cameras: Sequence[str] = (),
        image_size: tuple[int, int] = (128, 128),
        depth: bool = False,
        seed: int | None = None,
        region_shift: tuple[float, float] = (0.0, 0.0),
        region_scale: float = 1.0,
        action_limits: ActionLimits | None = None,
        perturbation: Any = None,
        deployment: Deployment | None = None,
    ) -> None:
        if not isinstance(task, BddlTask):
            task = load_bddl(task)
        self.task = task
        h, w = (int(v) for v in image_size)
        if h <= 0 or w <= 0:
            raise ValueError(f"image_size must be positive (height, width), got {image_size}")
        self.image_size = (h, w)
        self.depth = bool(depth)
        self.default_seed = seed
        self.region_shift = tuple(float(v) for v in region_shift)
        self.region_scale = float(region_scale)
        self._action_limits = action_limits if action_limits is not None else ActionLimits()

        spec, info = build_scene(task)
        table_placement_boxes(info, self.region_shift, self.region_scale)  # refuse now, not at reset
        self.names = panda.add_panda(spec, (0.0, 0.0, 0.0))
        self.entity_names = _add_observation_sensors(spec, self.names, info)
        spec.visual.global_.offwidth = max(int(spec.visual.global_.offwidth), w, 640)
        spec.visual.global_.offheight = max(int(spec.visual.global_.offheight), h, 480)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.scene: SceneInfo = info
        m = self.model

        known = {m.camera(i).name for i in range(m.ncam)}
        bad = [c for c in cameras if c not in known]
        if bad:
            raise ValueError(f"unknown camera(s) {bad}; the model has {sorted(known)}")
        self.cameras = tuple(cameras)

        n = self.names
        self._arm_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in n.arm_joints])
        self._finger_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in n.finger_joints])
        self._arm_act = np.array([m.actuator(a).id for a in n.arm_actuators])
        self._grip_act = m.actuator(n.gripper_actuator).id
        self._n_sub = panda.substeps_per_control()
        self._fingers = ({m.geom(g).id for g in n.left_finger_geoms},
                         {m.geom(g).id for g in n.right_finger_geoms})

        # The observation sensors are contiguous in sensordata (added last, in this order).
        first = m.sensor_adr[m.sensor(_SENSOR_PREFIX + "ee_pos").id]
        size = OBS_PROPRIO_DIM + 7 * len(self.entity_names)
        self._obs_slice = slice(int(first), int(first) + size)
        if self._obs_slice.stop != m.nsensordata:
            raise RuntimeError("observation sensors are not the last block of sensordata")

        self.deployment = deployment
        self._path: Any = None
        self._jtc: Any = None
        self._grip_width = float(panda.GRIPPER_MAX_WIDTH)
        if deployment is None:
            self.controller = DiffIKController(control_period=self.control_period,
                                               action_limits=self._action_limits)
        else:
            from robot_skills.control.command_path import JointCommandPath
            from robot_skills.robots import get_arm

            self._path = JointCommandPath(get_arm("panda"), self.control_period,
                                          deployment.limits, action_limits=self._action_limits)
            self.controller = self._path.controller
        self._renderer: mujoco.Renderer | None = None
        self._depth_renderer: mujoco.Renderer | None = None
        self._extra_renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._images: dict[str, np.ndarray] = {}
        self._t0 = 0.0
        self._needs_reset = True
        self._invalid: str | None = None
        self._init_perturbation(perturbation)
        # Live view of MuJoCo's warning counters (zeroed by mj_resetData in reset()).
        self._warnings = self.data.warning.number
        assert self._warnings.base is not None, "data.warning.number must be a view"

    # ------------------------------------------------------------------ Robot interface
    @property
    def control_period(self) -> float:
        """Seconds per :meth:`act` (0.05, i.e. 20 Hz = 25 physics steps of 2 ms)."""
        return 1.0 / CONTROL_HZ

    @property
    def joint_limits(self) -> np.ndarray:
        """``(7, 2)`` Franka's published joint position limits, rad."""
        return panda.JOINT_LIMITS.copy()

    @property
    def action_limits(self) -> ActionLimits:
        """Per-step action bounds (clip limits of the controller)."""
        return self._action_limits

    def reset(self, seed: int | None = None) -> Observation:
        """Restore a fresh initial state and observe it.

        ``mj_resetData``, arm at :data:`~robot_skills.robots.panda.HOME_QPOS` (plus the
        perturbation's joint noise, if any) with the gripper open, then
        :func:`sim.scene.sample_initial_state` with ``np.random.default_rng(seed)`` (objects placed
        collision-free in their init regions and settled while the arm holds its pose).

        Args:
            seed: seed of the initial-state sampler; None uses the constructor's ``seed`` (and if
                that is None too, fresh OS entropy).

        Raises:
            robot_skills.robot.EpisodeInvalidError: MuJoCo warned (went unstable) while the scene
                settled; :meth:`act` is refused until a reset succeeds.
            sim.scene.PlacementError: no collision-free placement, or an object fell off the table.
        """
        m, d = self.model, self.data
        seed = self.default_seed if seed is None else seed
        rng = np.random.default_rng(seed)
        self._needs_reset = True
        self._invalid = None
        home = self._reset_perturbation(seed)
        mujoco.mj_resetData(m, d)
        d.qpos[self._arm_qadr] = home
        d.qpos[self._finger_qadr] = panda.FINGER_MAX
        d.ctrl[self._arm_act] = home
        d.ctrl[self._grip_act] = panda.GRIPPER_MAX_WIDTH
        home_ctrl = d.ctrl.copy()

        def hold(model, data):
            data.ctrl[:] = home_ctrl

        try:
            sample_initial_state(m, d, self.scene, rng, region_shift=self.region_shift,
                                 region_scale=self.region_scale, hold=hold)
        except EpisodeInvalidError as e:
            self._invalid = str(e)
            raise
        d.qvel[:] = 0.0
        self._t0 = float(d.time)
        mujoco.mj_forward(m, d)
        if self._warnings.any():
            self._invalid = instability_message(m, d, self.task.source, "during reset",
                                                float(d.time))
            raise EpisodeInvalidError(self._invalid)
        if self._path is None:
            self.controller.reset(d.qpos[self._arm_qadr])
        else:
            from sim.ros_twin import TrajectoryFollower

            q = d.qpos[self._arm_qadr].copy()
            self._path.reset(q)
            self._jtc = TrajectoryFollower(self.names.arm_joints, q)
            self._grip_width = float(panda.GRIPPER_MAX_WIDTH)
        self._draw_observation_noise()
        self._needs_reset = False
        self._render_all()
        return self.observe()

    def observe(self) -> Observation:
        """The current :class:`Observation` (base frame); images are those of the last step.

        Read from MuJoCo frame/joint sensors, which the physics step computes in C: one copy of
        ``sensordata`` instead of one Python read per entity (~0.2 ms per step saved).
        """
        s = self.observation_array()
        poses = s[OBS_PROPRIO_DIM:].reshape(-1, 7)
        return Observation(
            joint_pos=s[7:14],
            joint_vel=s[14:21],
            ee_pos=s[0:3],
            ee_quat=s[3:7],
            gripper_width=float(s[21] + s[22]),
            object_poses=dict(zip(self.entity_names, poses)),
            images=self.images,
            time=float(self.data.time) - self._t0,
        )

    def observation_array(self) -> np.ndarray:
        """The observation as one flat float64 array (a copy of the observation sensors).

        Layout: ``[0:3]`` end-effector position (m), ``[3:7]`` its quaternion ``w, x, y, z``,
        ``[7:14]`` arm joint positions (rad), ``[14:21]`` arm joint velocities (rad/s), ``[21:23]``
        the two finger joint positions (m; their sum is the gripper width), then ``(x, y, z, qw,
        qx, qy, qz)`` per entity in :attr:`entity_names` order; all in the base frame.
        Shape ``(OBS_PROPRIO_DIM + 7 * len(entity_names),)``. Under a perturbation with
        observation noise, object poses (and those of regions on objects) carry that noise,
        drawn once per control step; proprioception, fixtures and table regions are exact
        (:meth:`true_observation_array` gives the noise-free array).
        """
        return self._apply_observation_noise(self.data.sensordata[self._obs_slice].copy())

    @property
    def images(self) -> dict[str, np.ndarray]:
        """Camera name -> image rendered at the last step (a new dict; the arrays are shared)."""
        return dict(self._images)

    def object_poses(self) -> dict[str, np.ndarray]:
        """Entity name -> ``(7,)`` ``[x, y, z, qw, qx, qy, qz]`` in the base frame.

        Objects and fixtures: their body frame. Regions: their site frame (a drawer region moves
        with its drawer).
        """
        return self.observe().object_poses

    def act(self, action: Action) -> Action:
        """Apply ``action`` for one control period (25 x 2 ms physics steps, then the cameras).

        Returns:
            The action actually applied: ``action`` clipped to :attr:`action_limits`, gripper
            clipped to ``[-1, 1]``. Read the state that follows with :meth:`observe` or
            :meth:`observation_array`.

        Raises:
            ValueError: if the action holds NaN/inf (nothing is applied).
            robot_skills.robot.EpisodeInvalidError: MuJoCo warned during this step (an unstable
                simulation it reset itself, a full contact or constraint buffer; see
                :meth:`step_physics`), or in an earlier step or reset of this episode.
            RuntimeError: if :meth:`reset` was never called.
        """
        if self._needs_reset:
            if self._invalid is not None:
                raise EpisodeInvalidError(self._invalid)
            raise RuntimeError("call reset() before act()")
        applied = self.step_physics(action)
        self._render_all()
        return applied

    def step_physics(self, action: Action) -> Action:
        """Controller + 25 physics steps, without rendering; returns the applied action.

        Raises:
            robot_skills.robot.EpisodeInvalidError: any of MuJoCo's warning counters is non-zero
                after the step (they are zero after :meth:`reset`): ``mjWARN_BADQPOS`` /
                ``BADQVEL`` / ``BADQACC`` (MuJoCo has reset the whole state itself),
                ``CONTACTFULL`` / ``CNSTRFULL`` (contacts or constraints dropped), ``BADCTRL``,
                ``INERTIA``. The message names the warning, the joint it last hit, the task file
                and the simulated time; the robot then needs a :meth:`reset`.
        """
        d, m = self.data, self.model
        t = d.time
        if self._path is not None:
            applied = self._deployed_step(action)
        else:
            cmd = self.controller.step(action, d.qpos[self._arm_qadr])
            applied = cmd.applied
            d.ctrl[self._arm_act] = cmd.q_target
            d.ctrl[self._grip_act] = cmd.gripper_width
            # data is forward-consistent here (mj_forward in reset, mj_step1 at the end of a step).
            mujoco.mj_step2(m, d)
            if self._n_sub > 1:
                mujoco.mj_step(m, d, self._n_sub - 1)
            mujoco.mj_step1(m, d)
        if self._warnings.any():  # MuJoCo may have reset the state itself: never go on silently
            self._needs_reset = True
            self._invalid = instability_message(
                m, d, self.task.source, "in the control step starting", t - self._t0)
            raise EpisodeInvalidError(self._invalid)
        self._draw_observation_noise()
        return applied

    def _deployed_step(self, action: Action) -> Action:
        """One control step through the deployment's command path (see :class:`Deployment`).

        Raises:
            ValueError: NaN/inf in the action (a controlled stop is streamed first, as on the arm).
            robot_skills.robot.EpisodeInvalidError: the safety filter stopped the skill
                (``infeasible``: the arm stands far from its last command).
        """
        d, m, dep = self.data, self.model, self.deployment
        t_obs = float(d.time)
        q_meas = d.qpos[self._arm_qadr].copy()
        # the command arrives latency_s after the observation; until then the old one runs
        n_late = min(int(round(dep.latency_s / float(m.opt.timestep))), self._n_sub - 1)
        self._run_jtc(n_late)
        t = float(d.time)
        pc = self._path.step(action, q_meas, now=t, state_stamp=t_obs)
        dec = pc.decision
        if dec.q_command is not None:
            why = self._jtc.set_trajectory(
                self.names.arm_joints,
                [(dep.lookahead_periods * self.control_period, dec.q_command, dec.velocity)],
                start=t, now=t, q_measured=d.qpos[self._arm_qadr].copy())
            if why is not None:  # the filter's output is finite and complete: a bug if reached
                raise RuntimeError(f"simulated trajectory controller rejected a command: {why}")
        if pc.error is not None:
            self._run_jtc(self._n_sub - n_late)
            raise ValueError(pc.error)
        if dec.stop_skill:
            self._run_jtc(self._n_sub - n_late)
            raise EpisodeInvalidError(f"safety stop ({', '.join(dec.interventions)}) in "
                                      f"{self.task.source} at t={t - self._t0:.2f} s")
        if not dec.hold:
            self._grip_width = pc.gripper_width
        self._run_jtc(self._n_sub - n_late)
        return pc.applied

    def _run_jtc(self, n: int) -> None:
        """``n`` physics steps with the arm servos on the simulated trajectory controller."""
        d, m = self.data, self.model
        ff = None
        if self.deployment.velocity_feedforward:
            ff = -m.actuator_biasprm[self._arm_act, 2] / m.actuator_gainprm[self._arm_act, 0]
        d.ctrl[self._grip_act] = self._grip_width
        dt = float(m.opt.timestep)
        t0 = float(d.time)
        for k in range(n):
            q, v = self._jtc.sample(t0 + (k + 1) * dt)
            d.ctrl[self._arm_act] = q if ff is None else q + ff * v
            mujoco.mj_step2(m, d)
            mujoco.mj_step1(m, d)

    # ------------------------------------------------------------------ perturbation axes
    def _init_perturbation(self, p: Any) -> None:
        """Record the nominal masses/frictions, apply the camera and lighting axes of ``p``."""
        m = self.model
        on = p is not None and bool(getattr(p, "changes_simulation", False))
        self.perturbation = p if on else None
        self._mass0 = m.body_mass.copy()
        self._inertia0 = m.body_inertia.copy()
        self._friction0 = m.geom_friction.copy()
        roots = {o: m.body(o).id for o in self.scene.objects}
        self._obj_bodies = {o: np.flatnonzero(m.body_rootid == r) for o, r in roots.items()}
        self._obj_geoms = {o: np.flatnonzero(np.isin(m.geom_bodyid, b))
                           for o, b in self._obj_bodies.items()}
        # observed entities that move with each object: its body and the regions it owns
        rows: dict[str, list[int]] = {o: [] for o in self.scene.objects}
        for k, e in enumerate(self.entity_names):
            if e in rows:
                rows[e].append(k)
            elif e in self.scene.regions and self.scene.regions[e].owner in rows:
                rows[self.scene.regions[e].owner].append(k)
        self._noise_rows = rows
        self._noise_rng: np.random.Generator | None = None
        self._noise_dp = np.zeros((len(self.entity_names), 3))
        self._noise_dq = np.tile([1.0, 0.0, 0.0, 0.0], (len(self.entity_names), 1))
        self._noisy = False
        if not on:
            return
        if p.camera_shift != (0.0, 0.0, 0.0) or p.camera_rotate != (0.0, 0.0, 0.0):
            cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, p.camera)
            if cid < 0:
                raise ValueError(f"{p.name}: camera {p.camera!r} (perturbation field 'camera') is "
                                 f"not in the scene; cameras: "
                                 f"{sorted(m.camera(i).name for i in range(m.ncam))}")
            m.cam_pos[cid] += np.asarray(p.camera_shift, float)
            q = m.cam_quat[cid].copy()
            for axis, angle in zip(np.eye(3), p.camera_rotate, strict=True):
                dq = np.zeros(4)
                mujoco.mju_axisAngle2Quat(dq, axis, float(angle))
                out = np.zeros(4)
                mujoco.mju_mulQuat(out, q, dq)  # intrinsic: about the camera's own axes
                q = out
            m.cam_quat[cid] = q / np.linalg.norm(q)
        if p.light_scale != 1.0:
            m.light_diffuse[:] *= p.light_scale
            m.light_specular[:] *= p.light_scale
            hl = m.vis.headlight
            hl.diffuse = np.asarray(hl.diffuse) * p.light_scale
            hl.ambient = np.asarray(hl.ambient) * p.light_scale
            hl.specular = np.asarray(hl.specular) * p.light_scale
        if p.light_direction is not None:
            lid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_LIGHT, "key_light")
            if lid < 0:
                raise ValueError(f"{p.name}: light_direction needs the scene's 'key_light', which "
                                 f"this model lacks")
            m.light_dir[lid] = np.asarray(p.light_direction, float)

    def _reset_perturbation(self, seed: int | None) -> np.ndarray:
        """Per-episode axes, drawn from generators seeded by ``seed`` (independent of the
        placement sampler's): object masses and frictions are set on the model; returns the arm's
        (noisy) home pose ``(7,)`` rad."""
        p = self.perturbation
        home = np.asarray(panda.HOME_QPOS, float).copy()
        if p is None:
            return home
        m = self.model
        key = [] if seed is None else [int(seed)]
        rng = np.random.default_rng(key + [0x9E3779B9]) if key else np.random.default_rng()
        m.body_mass[:] = self._mass0
        m.body_inertia[:] = self._inertia0
        m.geom_friction[:] = self._friction0
        for o in sorted(self._obj_bodies):  # fixed order: same seed, same factors
            sm = float(rng.uniform(*p.mass_scale))
            sf = float(rng.uniform(*p.friction_scale))
            b, g = self._obj_bodies[o], self._obj_geoms[o]
            m.body_mass[b] = self._mass0[b] * sm
            m.body_inertia[b] = self._inertia0[b] * sm
            m.geom_friction[g, 0] = self._friction0[g, 0] * sf
        if p.mass_scale != (1.0, 1.0):
            mujoco.mj_setConst(m, self.data)  # derived inertial constants follow the new masses
        if p.joint_noise_rad > 0:
            lim = panda.JOINT_LIMITS
            home = np.clip(home + rng.uniform(-p.joint_noise_rad, p.joint_noise_rad, 7),
                           lim[:, 0] + 1e-3, lim[:, 1] - 1e-3)
        self._noisy = p.obs_noise_pos_m > 0 or p.obs_noise_rot_rad > 0
        self._noise_rng = (np.random.default_rng(key + [0x0B5E]) if key
                           else np.random.default_rng())
        return home

    def _draw_observation_noise(self) -> None:
        """New pose noise for every object (and the regions it owns), once per control step."""
        if not self._noisy:
            return
        p, rng = self.perturbation, self._noise_rng
        for o in sorted(self._noise_rows):
            dp = rng.normal(0.0, p.obs_noise_pos_m, 3)
            rv = rng.normal(0.0, p.obs_noise_rot_rad, 3)
            angle = float(np.linalg.norm(rv))
            dq = np.array([1.0, 0.0, 0.0, 0.0])
            if angle > 0:
                dq = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * rv / angle])
            rows = self._noise_rows[o]
            self._noise_dp[rows] = dp
            self._noise_dq[rows] = dq

    def _apply_observation_noise(self, s: np.ndarray) -> np.ndarray:
        if not self._noisy:
            return s
        poses = s[OBS_PROPRIO_DIM:].reshape(-1, 7)
        poses[:, :3] += self._noise_dp
        q = poses[:, 3:7].copy()
        for k in range(len(q)):  # world-frame rotation of each observed orientation
            out = np.zeros(4)
            mujoco.mju_mulQuat(out, self._noise_dq[k], q[k])
            poses[k, 3:7] = out
        return s

    def true_observation_array(self) -> np.ndarray:
        """:meth:`observation_array` without the perturbation's observation noise (the
        simulator's own state; for tests and diagnostics, never for a policy)."""
        return self.data.sensordata[self._obs_slice].copy()

    # ------------------------------------------------------------------ contacts
    @property
    def gripper_geom_ids(self) -> tuple[set[int], set[int]]:
        """``(left, right)`` geom id sets of the finger geoms (pads included)."""
        return self._fingers

    # ------------------------------------------------------------------ rendering
    def _make_renderer(self, h: int, w: int) -> mujoco.Renderer:
        # Cheap rendering for CPU rasterisers (Mesa llvmpipe): no multisampling and coarse
        # tessellation of capsules/cylinders. Measured with two 128x128 cameras on this scene:
        # 33 renders/s by default, ~230-300 with these settings. Read when the context is made.
        q = self.model.vis.quality
        q.offsamples, q.numslices, q.numstacks, q.numquads = 0, 12, 6, 1
        return mujoco.Renderer(self.model, height=h, width=w)

    @staticmethod
    def _cheap_scene(r: mujoco.Renderer) -> None:
        r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        r.scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = False

    def _render_all(self) -> None:
        if not self.cameras:
            return
        h, w = self.image_size
        if self._renderer is None:
            self._renderer = self._make_renderer(h, w)
        if self.depth and self._depth_renderer is None:
            self._depth_renderer = self._make_renderer(h, w)
            self._depth_renderer.enable_depth_rendering()
        imgs: dict[str, np.ndarray] = {}
        r = self._renderer
        for cam in self.cameras:
            r.update_scene(self.data, camera=cam)
            self._cheap_scene(r)
            imgs[cam] = r.render()
            if self.depth:
                dr = self._depth_renderer
                dr.update_scene(self.data, camera=cam)
                imgs[cam + "_depth"] = dr.render().astype(np.float32)
        self._images = imgs

    def render(self, camera: str = "agentview", width: int = 256, height: int = 256) -> np.ndarray:
        """Render ``camera`` now, e.g. for rollout videos.

        Returns:
            ``(height, width, 3)`` uint8 RGB.

        Raises:
            ValueError: unknown camera or non-positive size.
        """
        if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            raise ValueError(f"unknown camera {camera!r}")
        if width <= 0 or height <= 0:
            raise ValueError(f"width/height must be positive, got {width}x{height}")
        key = (int(height), int(width))
        r = self._extra_renderers.get(key)
        if r is None:
            r = self._extra_renderers[key] = self._make_renderer(*key)
        r.update_scene(self.data, camera=camera)
        self._cheap_scene(r)
        return r.render()

    def disconnect(self) -> None:
        """Free the renderers' GL contexts (the simulation itself stays usable after a reset)."""
        self.close()
        super().disconnect()

    def close(self) -> None:
        """Free the renderers' GL contexts."""
        for r in [self._renderer, self._depth_renderer, *self._extra_renderers.values()]:
            if r is not None:
                r.close()
        self._renderer = self._depth_renderer = None
        self._extra_renderers.clear()


os.environ.setdefault("MUJOCO_GL", "egl")
