"""``Ros2Robot``: the robot interface over ROS 2 (rclpy -> ros2_control). Interface stub for now.

This module fixes where the bridge plugs in: it implements :class:`robot_skills.robot.Robot`, so
the executor, skills and planners run on a real arm unchanged. The nodes (joint-state reader,
JointTrajectoryController client, gripper command, safety filter, e-stop, sim twin) land with the
hardware-bridge issue; until then every motion call raises ``NotImplementedError`` rather than
pretending to move an arm. rclpy is imported lazily so ``import hardware`` works without the
``ros`` extra.
"""

from __future__ import annotations

import numpy as np

from robot_skills.robot import Action, Observation, Robot


class Ros2Robot(Robot):
    """A Panda under ros2_control, driven through topics (not yet implemented; see module doc).

    Args:
        joint_states_topic: ``sensor_msgs/JointState`` topic with arm joint positions (rad).
        trajectory_topic: ``trajectory_msgs/JointTrajectory`` topic of a JointTrajectoryController.
        control_hz: command rate in Hz.

    Raises:
        ImportError: if rclpy (the ``ros`` extra) is not installed.
    """

    def __init__(self, joint_states_topic: str = "/joint_states",
                 trajectory_topic: str = "/panda_arm_controller/joint_trajectory",
                 control_hz: float = 20.0) -> None:
        try:
            import rclpy  # noqa: F401  (import check only; nodes come with the bridge issue)
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Ros2Robot needs rclpy: pip install -e '.[ros]'") from exc
        self.joint_states_topic = joint_states_topic
        self.trajectory_topic = trajectory_topic
        self._period = 1.0 / control_hz

    @property
    def control_period(self) -> float:
        return self._period

    @property
    def joint_limits(self) -> np.ndarray:
        from robot_skills.robots.panda import JOINT_LIMITS

        return np.asarray(JOINT_LIMITS, dtype=np.float64)

    def reset(self, seed: int | None = None) -> Observation:
        raise NotImplementedError("Ros2Robot.reset lands with the ROS 2 bridge issue")

    def observe(self) -> Observation:
        raise NotImplementedError("Ros2Robot.observe lands with the ROS 2 bridge issue")

    def act(self, action: Action) -> Observation:
        raise NotImplementedError("Ros2Robot.act lands with the ROS 2 bridge issue")
