"""The deployment command path: end-effector action -> differential IK -> safety filter.

One implementation for the real arm and the simulator (DESIGN.md: "one controller code path for sim
and real"). :class:`hardware.ros2_robot.Ros2Robot` publishes each :class:`PathCommand` as a
single-point ``JointTrajectory``; :class:`sim.sim_robot.SimRobot` built with a ``deployment`` feeds
the same commands to a simulated JointTrajectoryController, so skills can be collected, trained and
evaluated in simulation under exactly the limits and the streaming they are deployed with.

Units: positions m, angles rad, times s; frame: the arm's base frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_skills.control.diff_ik import DiffIKController
from robot_skills.control.safety import SafetyDecision, SafetyFilter, SafetyLimits
from robot_skills.robot import Action, ActionLimits
from robot_skills.robots.description import ArmDescription


@dataclass(frozen=True)
class PathCommand:
    """One control period's output of :class:`JointCommandPath`.

    Attributes:
        decision: the safety filter's decision; publish ``decision.q_command`` (``(n,)`` rad, with
            ``decision.velocity`` rad/s) or nothing when it is None.
        gripper_width: commanded jaw opening, m (send it only when ``decision.hold`` is False).
        applied: the clipped action when the filter let the IK target through; otherwise the
            end-effector delta the filtered joint command amounts to, relative to the previous
            command (zero motion while holding).
        error: why the action itself was rejected (NaN/inf: the decision is then a controlled
            stop), or None.
    """

    decision: SafetyDecision
    gripper_width: float
    applied: Action
    error: str | None = None


def rotvec_between(q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """Axis-angle ``r`` ``(3,)`` rad (base frame) with ``exp(r) q_from = q_to``; quaternions
    ``(w, x, y, z)``. The shorter of the two rotations (angle in ``[0, pi]``)."""
    import mujoco

    inv = np.empty(4)
    mujoco.mju_negQuat(inv, np.asarray(q_from, dtype=np.float64))
    d = np.empty(4)
    mujoco.mju_mulQuat(d, np.asarray(q_to, dtype=np.float64), inv)
    if d[0] < 0:
        d = -d
    s = float(np.linalg.norm(d[1:]))
    if s < 1e-12:
        return np.zeros(3)
    return d[1:] / s * 2.0 * math.atan2(s, d[0])


class JointCommandPath:
    """Turns an end-effector action into a safe joint command, one control period at a time.

    Args:
        arm: the arm description (joints, limits, kinematics).
        control_period: seconds per :meth:`step` (> 0).
        limits: the :class:`SafetyLimits` every command is filtered with.
        action_limits: per-step action bounds of the IK (None: the controller's default).

    Attributes:
        controller: the :class:`DiffIKController` (own arm-only model).
        filter: the :class:`SafetyFilter` (tool-position workspace from ``arm``).

    Raises:
        ValueError: on a bad period or limits that do not fit the arm's joint count.
    """

    def __init__(self, arm: ArmDescription, control_period: float, limits: SafetyLimits,
                 action_limits: ActionLimits | None = None) -> None:
        if limits.n_joints != arm.n_joints:
            raise ValueError(f"safety limits for {limits.n_joints} joints, arm {arm.name!r} has "
                             f"{arm.n_joints}")
        self.arm = arm
        self.control_period = float(control_period)
        # The IK plans within the velocities the filter enforces (a preset may halve the arm's
        # published ones), so the filter need not cut a target for speed alone (its step and
        # acceleration limits still apply).
        self.controller = DiffIKController(arm=arm, control_period=control_period,
                                           action_limits=action_limits,
                                           velocity_limits=np.minimum(arm.velocity_limits,
                                                                      limits.max_velocity))
        self.filter = SafetyFilter(limits, control_period, arm.tcp_position_fn())
        self._q_sent: np.ndarray | None = None

    def reset(self, q_measured: np.ndarray) -> None:
        """Start an episode at ``q_measured`` ``(n,)`` rad: IK target and filter reference there.

        Raises:
            ValueError: if ``q_measured`` is not ``n`` finite numbers.
        """
        q = np.asarray(q_measured, dtype=np.float64).copy()
        self.filter.reset(q)
        self.controller.reset(q)
        self._q_sent = q

    def step(self, action: Action, q_measured: np.ndarray, *, now: float,
             state_stamp: float) -> PathCommand:
        """IK for ``action`` from ``q_measured`` ``(n,)`` rad, then the safety filter.

        Args:
            action: EE delta in the base frame (m, rad axis-angle) + gripper in ``[-1, 1]``.
            q_measured: latest measured joint positions, rad.
            now: current time, s (same clock as ``state_stamp``).
            state_stamp: time ``q_measured`` was measured, s.

        Returns:
            The :class:`PathCommand`. It never raises on a bad action: a NaN/inf action gives a
            controlled stop with ``error`` set, and the caller raises.
        """
        try:
            cmd = self.controller.step(action, q_measured)
        except ValueError as e:
            bad = np.full(self.arm.n_joints, np.nan)
            d = self.filter.filter(bad, q_measured, now=now, state_stamp=state_stamp)
            self._sent(d)
            return PathCommand(d, float("nan"), Action(np.zeros(3), np.zeros(3), 0.0), str(e))
        d = self.filter.filter(cmd.q_target, q_measured, now=now, state_stamp=state_stamp)
        q_prev = self._q_sent if self._q_sent is not None else \
            np.asarray(q_measured, dtype=np.float64).copy()
        self._sent(d)
        width = float(self.controller.gripper_width(cmd.applied.gripper))
        return PathCommand(d, width, self._applied(cmd.applied, d, q_prev))

    def hold(self, q_measured: np.ndarray, *, now: float, state_stamp: float
             ) -> SafetyDecision | None:
        """A controlled stop now (the feasible point nearest the last command); None before the
        first command or reset."""
        q_ref, _ = self.filter.reference
        if q_ref is None:
            return None
        d = self.filter.filter(q_ref, q_measured, now=now, state_stamp=state_stamp)
        self._sent(d)
        return d

    def _sent(self, d: SafetyDecision) -> None:
        if d.q_command is not None:
            self._q_sent = np.asarray(d.q_command, dtype=np.float64).copy()

    def _applied(self, clipped: Action, d: SafetyDecision, q_prev: np.ndarray) -> Action:
        g = float(clipped.gripper)
        if d.q_command is None or d.hold:
            return Action(np.zeros(3), np.zeros(3), g)
        if not d.interventions:
            return clipped
        # The filter changed the target: report what the published command amounts to. The IK
        # restarts from the published joints (else its own command, never sent, would wander off
        # in the null space) but keeps its integrated EE target, the skill's intent (its
        # anti-windup bounds that to max_lead of the measured pose).
        fk = self.controller.forward_kinematics
        p0, r0 = fk(q_prev)
        p1, r1 = fk(d.q_command)
        tp, tq = self.controller.target_pose
        self.controller.reset(d.q_command)
        self.controller.set_target(tp, tq)
        return Action(p1 - p0, rotvec_between(r0, r1), g)
