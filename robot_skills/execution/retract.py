"""Return the empty hand to the episode's start pose between skill calls.

Learned skills are trained mostly on calls that start where an episode starts: the arm at its home
pose (a skill-centric collection's random prefixes add other starts, but a pick right after a
``turn_on`` stays rare). A composed task chains calls in orders no demonstration shows, so the
next skill often starts from an arm pose its data barely covers. Returning the hand to a fixed
pose between calls — the "home" / reset motion of skill-chaining systems — makes every empty-hand
call start where its data mostly started; only the objects' layout differs, which the
goal-conditioned features see relative to the end-effector.

The motion is scripted, not learned: lift straight up to the home height (lifting first keeps the
hand from sweeping over objects), then move and turn to the home pose, with the gripper open
(closed when :attr:`RetractConfig.when_holding` also retracts a hand that carries an object). It
is a clipped proportional Cartesian controller on the robot's :class:`~robot_skills.robot.Action`
interface alone, so an :class:`~robot_skills.execution.executor.Executor` driving the bridge's
robot would run it unchanged, behind the same safety filter. The orientation error is
:func:`~robot_skills.control.command_path.rotvec_between`, the logarithm of the error quaternion
(Solà, "Quaternion kinematics for the error-state Kalman filter", 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_skills.control.command_path import rotvec_between
from robot_skills.robot import Action, Observation


@dataclass(frozen=True)
class RetractConfig:
    """How the hand returns to its start pose between calls.

    Attributes:
        pos_tol: done when the end-effector is within this distance of the home position, m.
        rot_tol: ... and within this angle of the home orientation, rad.
        max_step_pos: largest translation per control step, m.
        max_step_rot: largest rotation per control step, rad.
        gain: fraction of the remaining error commanded per step (proportional control).
        max_steps: control steps allowed for one retract; the call then starts wherever the hand
            is (a retract never fails the episode).
        when_holding: also retract before a call that starts with an object in the hand (the
            gripper then stays closed); default: only the empty hand.
    """

    pos_tol: float = 0.005
    rot_tol: float = 0.02
    max_step_pos: float = 0.03
    max_step_rot: float = 0.15
    gain: float = 0.5
    max_steps: int = 100
    when_holding: bool = False

    def __post_init__(self) -> None:
        for k in ("pos_tol", "rot_tol", "max_step_pos", "max_step_rot", "gain"):
            if not float(getattr(self, k)) > 0:
                raise ValueError(f"retract {k} must be > 0, got {getattr(self, k)!r}")
        if self.gain > 1:
            raise ValueError(f"retract gain must be <= 1, got {self.gain}")
        if int(self.max_steps) < 1:
            raise ValueError(f"retract max_steps must be >= 1, got {self.max_steps}")


class HomeRetract:
    """The scripted retract toward ``home``: one :class:`Action` per control step.

    Args:
        home_pos: ``(3,)`` end-effector home position, base frame, m (the episode's first
            observation).
        home_quat: ``(4,)`` home orientation ``(w, x, y, z)``, base frame.
        config: tolerances, speeds and the step cap.
    """

    def __init__(self, home_pos: np.ndarray, home_quat: np.ndarray,
                 config: RetractConfig | None = None) -> None:
        self.home_pos = np.asarray(home_pos, np.float64).reshape(3)
        self.home_quat = np.asarray(home_quat, np.float64).reshape(4)
        self.config = config or RetractConfig()

    def reached(self, obs: Observation) -> bool:
        """True when ``obs``'s end-effector is within the position and angle tolerances."""
        c = self.config
        dp = float(np.linalg.norm(self.home_pos - np.asarray(obs.ee_pos, np.float64)))
        dr = float(np.linalg.norm(rotvec_between(np.asarray(obs.ee_quat), self.home_quat)))
        return dp <= c.pos_tol and dr <= c.rot_tol

    def act(self, obs: Observation, holding: bool = False) -> Action:
        """The next step: straight up while below the home height (by more than ``pos_tol``),
        then toward the home position and orientation; gripper open (-1), or closed (+1) when
        ``holding``."""
        c = self.config
        ee = np.asarray(obs.ee_pos, np.float64)
        err = self.home_pos - ee
        if err[2] > c.pos_tol:
            dpos, drot = np.array([0.0, 0.0, err[2]]), np.zeros(3)
        else:
            dpos = err
            drot = rotvec_between(np.asarray(obs.ee_quat, np.float64), self.home_quat)
        dpos = c.gain * dpos
        drot = c.gain * drot
        n = float(np.linalg.norm(dpos))
        if n > c.max_step_pos:
            dpos *= c.max_step_pos / n
        n = float(np.linalg.norm(drot))
        if n > c.max_step_rot:
            drot *= c.max_step_rot / n
        return Action(dpos, drot, 1.0 if holding else -1.0)
