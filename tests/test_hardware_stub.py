"""The hardware package imports without ROS 2; Ros2Robot states plainly that motion is not built yet."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from robot_skills.robot import Robot


def test_hardware_imports_without_rclpy() -> None:
    import hardware.ros2_robot as mod

    assert issubclass(mod.Ros2Robot, Robot)


@pytest.mark.skipif(importlib.util.find_spec("rclpy") is None, reason="needs the ros extra")
def test_stub_refuses_motion_with_a_clear_error() -> None:
    from hardware.ros2_robot import Ros2Robot

    r = Ros2Robot()
    assert r.control_period == pytest.approx(0.05)
    assert np.asarray(r.joint_limits).shape == (7, 2)
    with pytest.raises(NotImplementedError, match="bridge"):
        r.observe()
