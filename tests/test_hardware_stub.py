"""The hardware package imports without ROS 2 and never the simulator; Ros2Robot is built from its
Hydra config, takes its limits from the core's arm description, and refuses to pretend motion."""

from __future__ import annotations

import numpy as np
import pytest

from robot_skills import cli
from robot_skills.robot import Robot
from robot_skills.robots import panda


def test_hardware_imports_without_rclpy_and_is_a_robot() -> None:
    import hardware.ros2_robot as mod

    assert issubclass(mod.Ros2Robot, Robot)


def test_built_from_the_hardware_config_with_the_core_arm_description(tmp_path) -> None:
    from hydra.utils import instantiate

    cfg = cli.load_config([f"run_dir={tmp_path}", "+hardware=panda_ros2"])
    r = instantiate(cfg.hardware)
    assert type(r).__name__ == "Ros2Robot"
    assert r.trajectory_topic == cfg.hardware.trajectory_topic
    assert r.estop_topic == "/robot_skills/estop" and r.state_timeout_s == pytest.approx(0.2)
    assert r.control_period == pytest.approx(1.0 / cfg.robot.control_hz)
    np.testing.assert_array_equal(r.joint_limits, panda.JOINT_LIMITS)


def test_unknown_arm_is_refused() -> None:
    from hardware.ros2_robot import Ros2Robot

    with pytest.raises(ValueError, match="unknown arm"):
        Ros2Robot(arm="ur5e_without_description")


def test_motion_is_refused_with_a_clear_error() -> None:
    from hardware.ros2_robot import Ros2Robot

    r = Ros2Robot()
    # without the ros extra connect() names it; with it, the bridge issue is named
    with pytest.raises((ImportError, NotImplementedError), match=r"\.\[ros\]|bridge"):
        r.connect()
    assert not r.is_connected
    with pytest.raises(NotImplementedError, match="bridge"):
        r.observe()
