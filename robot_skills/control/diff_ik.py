"""The shared differential-IK controller: an end-effector delta action -> joint position targets.

One code path for simulation (``sim.sim_robot.SimRobot``) and hardware (the ROS 2 bridge): it only
needs an :class:`mujoco.MjModel` of the *arm alone* (``robot_skills.robots.panda.panda_only_spec``, or
any :class:`~robot_skills.robots.description.ArmDescription`'s ``build_model()``) and the element
names, never the scene. Any number of arm joints ``n`` (7 for the Panda, FR3 and xArm7, 6 for the
UR5e); the default is the Panda.

Algorithm (per control period ``dt``), following mink's differential IK (Caron et al., "Pink/mink":
a weighted least-squares QP over joint velocities with inequality limits, solved with DAQP):

1. The :class:`~robot_skills.robot.Action` is checked (NaN/inf -> ``ValueError``) and clipped
   component-wise to :class:`~robot_skills.robot.ActionLimits`.
2. An internal end-effector target pose (base frame) accumulates the deltas:
   ``p* <- p* + dp``, ``R* <- exp([dr]x) R*`` (rotation delta about base-frame axes). Because the
   target is integrated rather than re-read from the measured pose, a held pose does not drift.
   Anti-windup: the target is kept within ``max_lead_pos`` / ``max_lead_rot`` of the *measured*
   pose, so an arm blocked by contact does not build up an unbounded command.
3. mink solves ``min_v  w_p|J_p v dt - e_p|^2 + w_r|J_r v dt - e_r|^2 + w_q|v dt - (q0 - q)|^2
   + lambda |v dt|^2`` subject to joint position limits (``ConfigurationLimit``) and the arm's
   velocity limits (``VelocityLimit``), starting from the previously *commanded* configuration
   (re-seeded from the measured one when they differ by more than ``reseed_tol``).
4. ``q_target = q + v dt`` is returned for the joint position servos, plus the gripper opening
   target ``width = (1 - g) / 2 * max_gripper_width`` (g = -1 open, +1 closed, the robosuite
   convention; 0.08 m for the Panda).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import daqp
import mink
import mujoco
import numpy as np

from robot_skills.robot import Action, ActionLimits

if TYPE_CHECKING:
    from robot_skills.robots.description import ArmDescription


@dataclass(frozen=True)
class IKCommand:
    """Output of one controller step.

    Attributes:
        q_target: ``(n,)`` float64 joint position targets, rad, within the joint limits.
        gripper_width: target jaw opening, m, in ``[0, max_gripper_width]``.
        target_pos: ``(3,)`` end-effector target position (base frame, m) the step aimed at.
        target_quat: ``(4,)`` end-effector target orientation (base frame, ``w, x, y, z``).
        applied: the action after clipping to the action limits (what reached the controller).
    """

    q_target: np.ndarray
    gripper_width: float
    target_pos: np.ndarray
    target_quat: np.ndarray
    applied: Action


def _quat_from_rotvec(r: np.ndarray) -> np.ndarray:
    q = np.empty(4)
    angle = float(np.linalg.norm(r))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    mujoco.mju_axisAngle2Quat(q, r / angle, angle)
    return q


def _rot_error(q_target: np.ndarray, q_actual: np.ndarray) -> np.ndarray:
    """Rotation vector ``e`` (actual's local frame) with ``q_actual * exp(e) = q_target``."""
    e = np.empty(3)
    mujoco.mju_subQuat(e, q_target, q_actual)
    return e


class DiffIKController:
    """Differential-IK controller for an ``n``-joint arm (mink + DAQP), in simulation and on hardware.

    Without ``arm`` and ``model`` it drives the Panda exactly as before the arm registry existed.

    Args:
        model: MjModel of the arm alone (e.g. ``panda_only_spec()[0].compile()``); built from
            ``arm`` (default: the Panda) if None.
        arm_joints: names of the ``n`` arm joints in ``model`` (default: ``arm``'s model joint
            names, i.e. the Panda's ``panda/joint1..7``).
        tcp_site: name of the end-effector site (default: ``arm.tcp_site``, ``panda/tcp``).
        control_period: seconds per :meth:`step` (the IK integration step ``dt``), > 0.
        action_limits: per-step clip bounds applied to every action (default :class:`ActionLimits`).
        velocity_limits: ``(n,)`` joint speed limits, rad/s (default: ``arm``'s published values).
        posture: ``(n,)`` joint configuration the null-space posture task pulls towards, rad
            (default: ``arm.home_qpos``).
        position_cost / orientation_cost: frame-task weights (per m and per rad).
        posture_cost: posture-task weight (per rad); small, it only resolves redundancy.
        damping: Levenberg-Marquardt damping of the QP.
        max_lead_pos / max_lead_rot: anti-windup bounds of the target ahead of the measured pose
            (m, rad).
        reseed_tol: if any joint of the last command differs from the measured position by more
            than this (rad), the IK restarts from the measured configuration.
        max_gripper_width: jaw opening commanded by ``gripper = -1``, m (default:
            ``arm.gripper_max_width``, 0.08 for the Panda).
        arm: the arm's :class:`~robot_skills.robots.description.ArmDescription` (e.g.
            ``robot_skills.robots.get_arm("ur5e")``); supplies every default above. None: the Panda.
        solver: qpsolvers backend name passed to :func:`mink.solve_ik` (``backend="mink"``).
        backend: ``"fast"`` (default) builds the *same* QP as :func:`mink.solve_ik` -- mink's
            ``FrameTask`` residual, the ``PostureTask`` term, ``ConfigurationLimit`` (gain 0.95)
            and ``VelocityLimit`` as box bounds -- and hands it straight to DAQP, skipping mink's
            generic assembly (~8x cheaper); ``"mink"`` calls :func:`mink.solve_ik` itself.

    Raises:
        ValueError: on bad arguments or names missing from ``model``.
    """

    def __init__(
        self,
        model: mujoco.MjModel | None = None,
        *,
        arm_joints: tuple[str, ...] | None = None,
        tcp_site: str | None = None,
        control_period: float = 0.05,
        action_limits: ActionLimits | None = None,
        velocity_limits: np.ndarray | None = None,
        posture: np.ndarray | None = None,
        position_cost: float = 1.0,
        orientation_cost: float = 0.5,
        posture_cost: float = 1e-2,
        damping: float = 1e-4,
        max_lead_pos: float = 0.10,
        max_lead_rot: float = 0.8,
        reseed_tol: float = 0.25,
        max_gripper_width: float | None = None,
        solver: str = "daqp",
        backend: str = "fast",
        arm: ArmDescription | None = None,
    ) -> None:
        if arm is None:
            from robot_skills.robots import get_arm

            arm = get_arm("panda")
        if model is None:
            model = arm.build_model()
        if arm_joints is None:
            arm_joints = arm.model_joint_names
        if tcp_site is None:
            tcp_site = arm.tcp_site
        if max_gripper_width is None:
            max_gripper_width = arm.gripper_max_width
        n_arm = len(arm_joints)
        if n_arm != arm.n_joints:
            raise ValueError(f"expected {arm.n_joints} arm joints for {arm.name!r}, got {arm_joints}")
        if not (np.isfinite(control_period) and control_period > 0):
            raise ValueError(f"control_period must be > 0 s, got {control_period}")
        for n in arm_joints:
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) < 0:
                raise ValueError(f"joint {n!r} is not in the model")
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, tcp_site) < 0:
            raise ValueError(f"site {tcp_site!r} is not in the model")
        self.model = model
        self.arm = arm
        self.n_joints = n_arm
        self.arm_joints = tuple(arm_joints)
        self.tcp_site = tcp_site
        self.dt = float(control_period)
        self.action_limits = action_limits if action_limits is not None else ActionLimits()
        self.max_gripper_width = float(max_gripper_width)
        self.max_lead_pos = float(max_lead_pos)
        self.max_lead_rot = float(max_lead_rot)
        self.reseed_tol = float(reseed_tol)
        self.damping = float(damping)
        self.solver = solver
        if backend not in ("fast", "mink"):
            raise ValueError(f"backend must be 'fast' or 'mink', got {backend!r}")
        self.backend = backend

        self._qadr = np.array([model.jnt_qposadr[model.joint(n).id] for n in arm_joints])
        self._dofadr = np.array([model.jnt_dofadr[model.joint(n).id] for n in arm_joints])
        self.joint_limits = np.array([model.jnt_range[model.joint(n).id] for n in arm_joints])
        vlim = arm.velocity_limits if velocity_limits is None else np.asarray(velocity_limits)
        if vlim.shape != (n_arm,) or np.any(vlim <= 0):
            raise ValueError(f"velocity_limits must be {n_arm} positive numbers, got {vlim}")
        self.velocity_limits = vlim.astype(float)
        post = arm.home_qpos if posture is None else np.asarray(posture, dtype=float)
        if post.shape != (n_arm,):
            raise ValueError(f"posture must have shape ({n_arm},), got {post.shape}")

        self.configuration = mink.Configuration(model)
        self._q_full = self.configuration.q.copy()
        self.frame_task = mink.FrameTask(tcp_site, "site", position_cost=position_cost,
                                         orientation_cost=orientation_cost, lm_damping=0.0)
        self.posture_task = mink.PostureTask(model, cost=posture_cost)
        q_post = self._q_full.copy()
        q_post[self._qadr] = post
        self.posture_task.set_target(q_post)
        self.limits = [
            mink.ConfigurationLimit(model),
            mink.VelocityLimit(model, dict(zip(arm_joints, self.velocity_limits))),
        ]
        self._tcp_id = model.site(tcp_site).id
        # Box bounds of the fast path: velocity limits per dof (arm) and position limits (all).
        nv = model.nv
        self._posture_cost = float(posture_cost)
        self._q_post = q_post
        self._vmax_dt = np.full(nv, np.inf)
        self._vmax_dt[self._dofadr] = self.velocity_limits * self.dt
        lim = self.limits[0]
        self._cl_gain = float(lim.gain)
        self._cl_dof = np.asarray(lim.indices)
        self._cl_qadr = np.array([model.jnt_qposadr[j] for j in
                                  np.flatnonzero(model.jnt_limited.astype(bool))])
        self._cl_lo = np.array([model.jnt_range[j, 0] for j in
                                np.flatnonzero(model.jnt_limited.astype(bool))])
        self._cl_hi = np.array([model.jnt_range[j, 1] for j in
                                np.flatnonzero(model.jnt_limited.astype(bool))])
        self._H_reg = np.eye(nv) * (self.damping + self._posture_cost ** 2)
        self._no_rows = np.zeros((0, nv))
        self._sense = np.zeros(nv, dtype=np.int32)
        self._data = mujoco.MjData(model)
        self._lo = self.joint_limits[:, 0].copy()
        self._hi = self.joint_limits[:, 1].copy()
        self._buf3 = np.zeros(3)
        self._buf4a = np.zeros(4)
        self._buf4b = np.zeros(4)
        self._fk_quat = np.zeros(4)
        self._wxyz_xyz = np.zeros(7)
        self._q_cmd: np.ndarray | None = None
        self._target_pos = np.zeros(3)
        self._target_quat = np.array([1.0, 0.0, 0.0, 0.0])

    # ------------------------------------------------------------------ kinematics
    def forward_kinematics(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector pose for arm joint positions ``q``.

        Args:
            q: ``(n,)`` joint positions, rad.

        Returns:
            ``(pos (3,), quat (4,))`` of the tcp site in the base frame (m; ``w, x, y, z``).
        """
        p, quat = self._fk_views(self._check_q(q))
        return p.copy(), quat.copy()

    def _check_q(self, q) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64).ravel()
        if q.shape != (self.n_joints,):
            raise ValueError(f"joint positions must have shape ({self.n_joints},), got {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError(f"joint positions contain NaN/inf: {q}")
        return q

    # ------------------------------------------------------------------ state
    @property
    def target_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Current internal EE target ``(pos (3,), quat (4,))``, base frame (copies)."""
        return self._target_pos.copy(), self._target_quat.copy()

    @property
    def commanded_q(self) -> np.ndarray | None:
        """``(n,)`` last joint target sent (rad), or None before :meth:`reset`."""
        return None if self._q_cmd is None else self._q_cmd.copy()

    def reset(self, q: np.ndarray) -> None:
        """Restart from measured joint positions ``q`` ``(n,)`` rad: target = FK(q), command = q.

        Raises:
            ValueError: if ``q`` is not ``n`` finite numbers.
        """
        q = self._check_q(q)
        self._target_pos, self._target_quat = self.forward_kinematics(q)
        self._q_cmd = np.clip(q, self.joint_limits[:, 0], self.joint_limits[:, 1])

    def set_target(self, pos: np.ndarray, quat: np.ndarray) -> None:
        """Overwrite the internal EE target (base frame, m / ``w, x, y, z``)."""
        pos = np.asarray(pos, dtype=float).reshape(3)
        quat = np.asarray(quat, dtype=float).reshape(4)
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
            raise ValueError("target pose contains NaN/inf")
        self._target_pos = pos.copy()
        self._target_quat = quat / np.linalg.norm(quat)

    # ------------------------------------------------------------------ control
    def _clip_values(self, action: Action) -> tuple[list[float], list[float], float]:
        dp = np.asarray(action.delta_pos, dtype=np.float64).ravel()
        dr = np.asarray(action.delta_rot, dtype=np.float64).ravel()
        if dp.shape != (3,) or dr.shape != (3,):
            raise ValueError(f"delta_pos/delta_rot must have 3 entries, got {dp.shape}, {dr.shape}")
        g = float(action.gripper)
        vals = dp.tolist() + dr.tolist() + [g]
        if not all(map(math.isfinite, vals)):
            raise ValueError(f"action contains NaN/inf: {vals}")
        lp, lr = self.action_limits.max_delta_pos, self.action_limits.max_delta_rot
        p = [min(max(x, -lp), lp) for x in vals[:3]]
        r = [min(max(x, -lr), lr) for x in vals[3:6]]
        return p, r, min(max(g, -1.0), 1.0)

    def clip_action(self, action: Action) -> Action:
        """Clip ``action`` component-wise to :attr:`action_limits` and the gripper to ``[-1, 1]``.

        Raises:
            ValueError: if any component is NaN/inf or the deltas do not have 3 entries.
        """
        p, r, g = self._clip_values(action)
        return Action(np.array(p), np.array(r), g)

    def gripper_width(self, gripper: float) -> float:
        """Jaw opening target (m) for a gripper command in ``[-1, 1]`` (-1 open, +1 closed)."""
        g = min(max(float(gripper), -1.0), 1.0)
        return 0.5 * (1.0 - g) * self.max_gripper_width

    def step(self, action: Action, q_measured: np.ndarray) -> IKCommand:
        """Turn one action into joint position targets for the next control period.

        Args:
            action: EE delta in the base frame (m, rad axis-angle) + gripper command.
            q_measured: ``(n,)`` measured arm joint positions, rad.

        Returns:
            The :class:`IKCommand` (joint targets within the position limits, reachable within one
            period at the velocity limits).

        Raises:
            ValueError: on NaN/inf in the action or ``q_measured``.
            RuntimeError: if :meth:`reset` was never called, or the QP solver fails.
        """
        dp, dr, g = self._clip_values(action)
        q_meas = self._check_q(q_measured)
        if self._q_cmd is None:
            raise RuntimeError("call reset(q) before step()")

        # 1. Integrate the target (base frame): p* += dp, R* <- exp(dr) R*.
        tp = self._target_pos
        tp += dp
        tq = self._target_quat
        ang = math.sqrt(dr[0] * dr[0] + dr[1] * dr[1] + dr[2] * dr[2])
        if ang > 0.0:
            dq = self._buf4a
            mujoco.mju_axisAngle2Quat(dq, np.array(dr) / ang, ang)
            mujoco.mju_mulQuat(self._buf4b, dq, tq)
            mujoco.mju_normalize4(self._buf4b)
            tq[:] = self._buf4b

        # 2. Anti-windup: keep the target within max_lead of the measured pose.
        p_meas, q_ee = self._fk_views(q_meas)
        lead = tp - p_meas
        n = math.sqrt(float(lead @ lead))
        if n > self.max_lead_pos:
            tp[:] = p_meas + lead * (self.max_lead_pos / n)
        e = self._buf3
        mujoco.mju_subQuat(e, tq, q_ee)
        ang = math.sqrt(float(e @ e))
        if ang > self.max_lead_rot:
            mujoco.mju_axisAngle2Quat(self._buf4a, e / ang, self.max_lead_rot)
            mujoco.mju_mulQuat(tq, q_ee, self._buf4a)

        # 3. One QP step from the commanded configuration.
        lo, hi = self._lo, self._hi
        seed = self._q_cmd
        if np.abs(seed - q_meas).max() > self.reseed_tol:
            seed = np.minimum(np.maximum(q_meas, lo), hi)
        qf = self._q_full
        qf[self._qadr] = seed
        self.configuration.update(qf)
        self._wxyz_xyz[:4] = tq
        self._wxyz_xyz[4:] = tp
        self.frame_task.set_target(mink.SE3(self._wxyz_xyz.copy()))
        if self.backend == "mink":
            v = mink.solve_ik(self.configuration, [self.frame_task, self.posture_task], self.dt,
                              self.solver, damping=self.damping, limits=self.limits)
            step = v * self.dt
        else:
            step = self._solve_fast(qf)
        q_new = np.minimum(np.maximum(seed + step[self._dofadr], lo), hi)
        self._q_cmd = q_new
        return IKCommand(q_target=q_new.copy(), gripper_width=0.5 * (1.0 - g) * self.max_gripper_width,
                         target_pos=tp.copy(), target_quat=tq.copy(),
                         applied=Action(np.array(dp), np.array(dr), g))

    def _fk_views(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self._data
        d.qpos[self._qadr] = q
        mujoco.mj_kinematics(self.model, d)
        mujoco.mju_mat2Quat(self._fk_quat, d.site_xmat[self._tcp_id])
        return d.site_xpos[self._tcp_id], self._fk_quat

    def _solve_fast(self, qf: np.ndarray) -> np.ndarray:
        """The QP of :func:`mink.solve_ik` for our tasks and limits, solved with DAQP directly.

        Objective ``0.5 dq^T H dq + c^T dq`` with ``H = W^T W + (w_q^2 + lambda) I`` and
        ``c = -(W^T e + w_q^2 (q0 - q))`` (posture on the arm dofs) where ``(W, e)`` is mink's weighted frame-task residual;
        bounds ``max(-vmax dt, 0.95 (q_min - q)) <= dq <= min(vmax dt, 0.95 (q_max - q))``.
        Returns ``(nv,)`` displacement ``dq`` (rad / m).
        """
        W, e, mu = self.frame_task.compute_qp_residual(self.configuration)
        H = W.T @ W + self._H_reg
        if mu:
            H.flat[:: H.shape[0] + 1] += mu
        c = -(e @ W)
        c[self._dofadr] -= self._posture_cost ** 2 * (self._q_post[self._qadr] - qf[self._qadr])
        ub = self._vmax_dt.copy()
        lb = -ub
        q_lim = qf[self._cl_qadr]
        d = self._cl_dof
        ub[d] = np.minimum(ub[d], self._cl_gain * (self._cl_hi - q_lim))
        lb[d] = np.maximum(lb[d], self._cl_gain * (self._cl_lo - q_lim))
        x, _, flag, _ = daqp.solve(H, c, self._no_rows, ub, lb, self._sense)
        if flag != 1:
            raise RuntimeError(f"DAQP failed on the IK step (exit flag {flag})")
        return np.asarray(x)
