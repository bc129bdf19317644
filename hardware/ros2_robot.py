"""``Ros2Robot``: the robot interface over ROS 2 (rclpy -> ros2_control). Interface stub for now.

This module fixes where the bridge plugs in: it implements :class:`robot_skills.robot.Robot`, so
the executor, skills and planners run on a real arm unchanged, and it takes the arm's description
(joint limits, home pose) from the core (:mod:`robot_skills.robots`), never from the simulator.
The nodes (joint-state reader, JointTrajectoryController client, gripper command, safety filter,
e-stop, sim twin) land with the hardware-bridge issue; until then :meth:`Ros2Robot.connect` and
every motion call raise ``NotImplementedError`` rather than pretending to move an arm. rclpy is
imported in :meth:`connect`, so ``import hardware`` and building the object work without the
``ros`` extra.
"""

from __future__ import annotations

import numpy as np

from robot_skills.robot import Action, Observation, Robot
from robot_skills.robots import panda

_ARMS = {"panda": panda}


class Ros2Robot(Robot):
    """An arm under ros2_control, driven through topics (not yet implemented; see module doc).

    Args:
        arm: arm description name (``panda``); its joint limits come from the core.
        joint_states_topic: ``sensor_msgs/JointState`` topic with arm joint positions (rad).
        trajectory_topic: ``trajectory_msgs/JointTrajectory`` topic of a JointTrajectoryController.
        gripper_topic: gripper command topic.
        estop_topic: ``std_msgs/Bool`` e-stop topic.
        state_timeout_s: joint states older than this stop the arm (watchdog), s.
        control_hz: command rate in Hz.

    Raises:
        ValueError: on an unknown arm or non-positive rates/timeouts.
    """

    def __init__(self, arm: str = "panda", joint_states_topic: str = "/joint_states",
                 trajectory_topic: str = "/panda_arm_controller/joint_trajectory",
                 gripper_topic: str = "/panda_gripper/command",
                 estop_topic: str = "/robot_skills/estop", state_timeout_s: float = 0.2,
                 control_hz: float = 20.0) -> None:
        if arm not in _ARMS:
            raise ValueError(f"unknown arm {arm!r}; known: {sorted(_ARMS)}")
        if not (control_hz > 0 and state_timeout_s > 0):
            raise ValueError(f"control_hz and state_timeout_s must be > 0, got {control_hz}, "
                             f"{state_timeout_s}")
        self.arm = arm
        self.joint_states_topic = joint_states_topic
        self.trajectory_topic = trajectory_topic
        self.gripper_topic = gripper_topic
        self.estop_topic = estop_topic
        self.state_timeout_s = float(state_timeout_s)
        self._period = 1.0 / float(control_hz)

    @property
    def control_period(self) -> float:
        return self._period

    @property
    def joint_limits(self) -> np.ndarray:
        """``(7, 2)`` the arm description's joint position limits, rad."""
        return np.asarray(_ARMS[self.arm].JOINT_LIMITS, dtype=np.float64).copy()

    def connect(self) -> None:
        """Start the bridge's nodes.

        Raises:
            ImportError: if rclpy (the ``ros`` extra) is not installed.
            NotImplementedError: always, until the ROS 2 bridge issue lands.
        """
        try:
            import rclpy  # noqa: F401  (import check only; nodes come with the bridge issue)
        except ImportError as exc:
            raise ImportError("Ros2Robot needs rclpy: pip install -e '.[ros]'") from exc
        raise NotImplementedError("Ros2Robot.connect lands with the ROS 2 bridge issue")

    def reset(self, seed: int | None = None) -> Observation:
        raise NotImplementedError("Ros2Robot.reset lands with the ROS 2 bridge issue")

    def observe(self) -> Observation:
        raise NotImplementedError("Ros2Robot.observe lands with the ROS 2 bridge issue")

    def act(self, action: Action) -> Action:
        raise NotImplementedError("Ros2Robot.act lands with the ROS 2 bridge issue")
