"""The one robot interface shared by simulation (``sim.SimRobot``) and hardware (``hardware``).

Modelled on LeRobot's ``Robot`` and ros2_control's hardware interface: ``reset`` / ``observe`` /
``act`` at a fixed control period. Frames and units:

* **Robot base frame**: origin at the arm's base (Panda ``link0``), +x forward, +z up. Every pose in
  an :class:`Observation` and every delta in an :class:`Action` is expressed in this frame.
* Positions in metres, angles in radians, quaternions scalar-first ``(w, x, y, z)`` (MuJoCo's order).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

GRIPPER_OPEN = -1.0
"""Gripper command that opens the jaws fully (robosuite/LIBERO convention)."""
GRIPPER_CLOSE = 1.0
"""Gripper command that closes the jaws (robosuite/LIBERO convention)."""
ACTION_DIM = 7
"""Length of :meth:`Action.to_array`: ``[dx, dy, dz, drx, dry, drz, gripper]``."""


class EpisodeInvalidError(RuntimeError):
    """The episode cannot be trusted, through no fault of the policy: the simulator went unstable
    (MuJoCo's auto-reset on bad accelerations), a safety stop, a scene that could not hold its
    objects. The executor never catches it as a skill failure; the benchmark runner records the
    episode as ``reason="invalid"``, apart from policy failures, and the command exits non-zero.
    """


@dataclass
class Observation:
    """What the robot reports at one control step.

    Attributes:
        joint_pos: ``(n_joints,)`` float64, arm joint positions in rad.
        joint_vel: ``(n_joints,)`` float64, arm joint velocities in rad/s.
        ee_pos: ``(3,)`` float64, end-effector (tool centre point between the fingertips) position
            in the robot base frame, m.
        ee_quat: ``(4,)`` float64, end-effector orientation in the base frame, ``(w, x, y, z)``.
        gripper_width: distance between the fingers in m (0 = closed).
        object_poses: entity name -> ``(7,)`` float64 pose ``[x, y, z, qw, qx, qy, qz]`` in the base
            frame. Entities are the task's objects, fixtures, and named regions (e.g.
            ``wooden_cabinet_1_top_region``, whose pose moves with its drawer).
        images: camera name -> ``(H, W, 3)`` uint8 RGB or ``(H, W)`` float32 depth in m.
        time: seconds since the last reset.
    """

    joint_pos: np.ndarray
    joint_vel: np.ndarray
    ee_pos: np.ndarray
    ee_quat: np.ndarray
    gripper_width: float
    object_poses: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    time: float = 0.0


@dataclass
class Action:
    """An OSC-style end-effector delta plus a gripper command (the LIBERO / robosuite action).

    Attributes:
        delta_pos: ``(3,)`` translation of the end-effector for this control step, base frame, m.
        delta_rot: ``(3,)`` axis-angle rotation of the end-effector for this step, base frame, rad.
        gripper: in ``[-1, 1]``; ``-1`` opens, ``+1`` closes.
    """

    delta_pos: np.ndarray
    delta_rot: np.ndarray
    gripper: float

    def to_array(self) -> np.ndarray:
        """Return the ``(7,)`` float32 vector ``[dx, dy, dz, drx, dry, drz, gripper]``."""
        return np.concatenate(
            [np.asarray(self.delta_pos, np.float32), np.asarray(self.delta_rot, np.float32),
             np.asarray([self.gripper], np.float32)]
        )

    @classmethod
    def from_array(cls, a: np.ndarray) -> "Action":
        """Build an action from a ``(7,)`` vector laid out as :meth:`to_array`.

        Raises:
            ValueError: if ``a`` is not 7 finite numbers.
        """
        a = np.asarray(a, dtype=np.float64).reshape(-1)
        if a.shape != (ACTION_DIM,):
            raise ValueError(f"an action vector has {ACTION_DIM} entries, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN or inf: {a}")
        return cls(delta_pos=a[:3].copy(), delta_rot=a[3:6].copy(), gripper=float(a[6]))


@dataclass(frozen=True)
class ActionLimits:
    """Per-step bounds an :class:`Action` is clipped to before it reaches the controller.

    Attributes:
        max_delta_pos: largest end-effector translation per control step, m.
        max_delta_rot: largest end-effector rotation per control step, rad.
    """

    max_delta_pos: float = 0.05
    max_delta_rot: float = 0.5


class Robot(abc.ABC):
    """An arm with a parallel gripper, driven at a fixed control period.

    Implementations: ``sim.sim_robot.SimRobot`` (MuJoCo) and ``hardware.ros2_robot.Ros2Robot``
    (rclpy -> ros2_control). Both turn an :class:`Action` into joint position targets with the
    shared differential-IK controller in :mod:`robot_skills.control.diff_ik`.

    Lifecycle (as LeRobot's ``Robot`` and ros2_control's hardware interface): :meth:`connect`
    before the first :meth:`reset`, :meth:`disconnect` when done; ``with robot: ...`` does both.
    The default implementations only track the flag, for robots (a simulator) with nothing to open.

    Predicate state is *not* the robot's business: it comes from a task world
    (:class:`robot_skills.execution.interfaces.TaskWorld`), computed from contacts in simulation
    or from object poses (:mod:`robot_skills.perception`) on a real arm.
    """

    _connected: bool = False

    @property
    def is_connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        return self._connected

    def connect(self) -> None:
        """Open the connection to the arm (topics, drivers, simulator). Idempotent.

        Raises:
            ConnectionError: when the arm cannot be reached (implementations).
        """
        self._connected = True

    def disconnect(self) -> None:
        """Release the arm (stop streaming commands, close nodes and renderers). Idempotent."""
        self._connected = False

    def __enter__(self) -> "Robot":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    @property
    @abc.abstractmethod
    def control_period(self) -> float:
        """Seconds between two :meth:`act` calls (0.05 for the 20 Hz default)."""

    @property
    @abc.abstractmethod
    def joint_limits(self) -> np.ndarray:
        """``(n_joints, 2)`` lower/upper joint position limits in rad."""

    @property
    def action_limits(self) -> ActionLimits:
        """Per-step action bounds; see :class:`ActionLimits`."""
        return ActionLimits()

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> Observation:
        """Bring the robot (and, in simulation, the scene) to an initial state and observe it."""

    @abc.abstractmethod
    def observe(self) -> Observation:
        """Return the current :class:`Observation` without moving."""

    @abc.abstractmethod
    def act(self, action: Action) -> Action:
        """Apply ``action`` for one control period; return the command actually applied.

        The returned :class:`Action` is ``action`` after clipping to :attr:`action_limits` (and,
        on hardware, after the safety filter), so a recorder or a safety monitor sees what reached
        the controller, as LeRobot's ``send_action`` returns the action it sent. Read the state
        that follows with :meth:`observe`.

        Raises:
            ValueError: if the action holds NaN/inf values (nothing is applied).
            RuntimeError: if the robot was not reset (or not connected, on hardware).
        """
