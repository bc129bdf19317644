"""The hardware package without DDS: it imports without rclpy and never the simulator; Ros2Robot is
built from every hardware preset and from Hydra, takes its limits from the core's arm description
and the preset's safety mapping, refuses bad settings, and refuses motion until connected."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from hardware.config import BridgeConfig, GripperConfig, load_bridge_config
from robot_skills import cli
from robot_skills.robot import Action, Robot
from robot_skills.robots import get_arm

PRESETS = ("panda", "fr3", "ur5e", "xarm7")


def test_hardware_imports_without_rclpy_and_never_the_simulator() -> None:
    code = ("import sys; sys.modules['rclpy'] = None\n"
            "import hardware.ros2_robot, hardware.executor_node, hardware.bridge, "
            "hardware.config, hardware.processes, hardware.ros_probe\n"
            "import sim.ros_twin\n"
            "assert not any(m == 'sim' or m.startswith('sim.') for m in sys.modules\n"
            "               if m != 'sim.ros_twin' and m != 'sim'), 'hardware imported sim'\n"
            "from hardware.ros2_robot import Ros2Robot\n"
            "r = Ros2Robot('panda')\n"
            "try:\n"
            "    r.connect()\n"
            "except ImportError as e:\n"
            "    assert '.[ros]' in str(e), e\n"
            "    print('refused')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "MUJOCO_GL": "egl"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused"


def test_hardware_modules_do_not_import_sim() -> None:
    code = ("import sys\n"
            "import hardware.ros2_robot, hardware.executor_node, hardware.bridge, "
            "hardware.config, hardware.processes, hardware.ros_probe\n"
            "bad = sorted(m for m in sys.modules if m == 'sim' or m.startswith('sim.'))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds_a_robot_with_the_core_arm_description(preset: str) -> None:
    from hardware.ros2_robot import Ros2Robot

    r = Ros2Robot(preset)
    assert isinstance(r, Robot) and not r.is_connected
    desc = get_arm(r.arm)
    np.testing.assert_array_equal(r.joint_limits, desc.joint_limits)
    assert r.joint_names == tuple(r.config.joint_names)
    assert r.control_period == pytest.approx(1.0 / r.config.control_hz)
    lim = r.safety_limits
    assert lim.n_joints == desc.n_joints
    assert np.all(lim.max_velocity <= desc.velocity_limits + 1e-9)  # never above the arm's
    assert np.all(lim.joint_lower >= desc.joint_limits[:, 0] - 1e-9)
    assert lim.stale_after_periods >= 1
    assert r.config.min_trust_tier == "supervised"
    assert r.trajectory_topic.endswith("/joint_trajectory")
    assert r.config.gripper.kind in ("forward_command", "jtc", "gripper_action")


@pytest.mark.parametrize("group", ["panda", "panda_ros2"])
def test_built_by_hydra_from_the_hardware_config_group(tmp_path, group: str) -> None:
    from hydra.utils import instantiate

    cfg = cli.load_config([f"run_dir={tmp_path}", f"+hardware={group}"])
    r = instantiate(cfg.hardware)
    assert type(r).__name__ == "Ros2Robot"
    assert r.trajectory_topic == cfg.hardware.trajectory_topic
    assert r.estop_topic == "/robot_skills/estop"
    assert r.state_timeout_s == pytest.approx(cfg.hardware.state_timeout_s)
    assert r.control_period == pytest.approx(1.0 / cfg.robot.control_hz)
    np.testing.assert_array_equal(r.joint_limits, get_arm("panda").joint_limits)


def test_overrides_replace_preset_values_and_merge_safety() -> None:
    c = load_bridge_config("panda", control_hz=50.0, safety={"max_step": 0.1},
                           gripper={"kind": "jtc"})
    assert c.control_hz == 50.0 and c.safety_limits().max_step == pytest.approx(0.1)
    # the rest of the preset's safety mapping stays
    assert c.safety_limits().workspace_lower[2] == pytest.approx(0.01)
    assert c.gripper.kind == "jtc" and c.gripper.topic == "/panda_gripper_controller/commands"
    assert c.safety_limits().stale_after_periods == 3


def test_gripper_mapping_is_linear_between_closed_and_open() -> None:
    g = GripperConfig(kind="jtc", topic="/g", joints=("drive_joint",), open=0.0, closed=0.85)
    assert g.command(0.0, 0.08) == pytest.approx(0.85)
    assert g.command(0.08, 0.08) == pytest.approx(0.0)
    assert g.command(1.0, 0.08) == pytest.approx(0.0)  # clipped
    assert g.width(0.425, 0.08) == pytest.approx(0.04)
    panda = GripperConfig()
    assert panda.command(0.08, 0.08) == pytest.approx(0.04)  # each finger half the opening


@pytest.mark.parametrize("kw, match", [
    ({"arm": "ur5e_without_description"}, "unknown arm"),
    ({"control_hz": 0.0}, "control_hz"),
    ({"control_hz": float("nan")}, "control_hz"),
    ({"state_timeout_s": -1.0}, "state_timeout_s"),
    ({"gripper": {"kind": "magnet"}}, "gripper.kind"),
    ({"gripper": {"colour": "red"}}, "unknown gripper key"),
    ({"min_trust_tier": "yolo"}, "min_trust_tier"),
    ({"object_pose_topic": "/objects/pose"}, "name"),
    ({"joint_names": ["a", "b"]}, "joint_names"),
    ({"safety": {"max_step": -1.0}}, "max_step"),
    ({"safety": {"max_velocity": [1.0, 2.0]}}, "max_velocity"),
    ({"safety": {"nonsense": 1}}, "unknown safety"),
    ({"gripper_topic": "/a", "gripper": {"topic": "/b"}}, "differs"),
])
def test_bad_settings_are_refused_naming_the_key(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BridgeConfig(**kw)


def test_unknown_preset_and_unknown_preset_keys_are_refused(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="known"):
        load_bridge_config("kuka_lbr")
    bad = tmp_path / "bad.yaml"
    bad.write_text("arm: panda\nteleport: true\n")
    with pytest.raises(ValueError, match="teleport"):
        load_bridge_config(bad)


def test_motion_is_refused_until_connected() -> None:
    from hardware.ros2_robot import Ros2Robot

    r = Ros2Robot("panda")
    with pytest.raises(RuntimeError, match="connect"):
        r.act(Action(np.zeros(3), np.zeros(3), -1.0))
    with pytest.raises(RuntimeError, match="connect"):
        r.reset()
    with pytest.raises(RuntimeError, match="joint state"):
        r.observe()


def test_camera_images_are_decoded_to_the_observation_layout() -> None:
    from types import SimpleNamespace

    from hardware.ros2_robot import image_to_array

    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = np.zeros((2, 10), dtype=np.uint8)  # rows padded to a 10-byte step
    padded[:, :9] = rgb.reshape(2, 9)
    msg = SimpleNamespace(height=2, width=3, encoding="rgb8", step=10, is_bigendian=0,
                          data=padded.tobytes())
    np.testing.assert_array_equal(image_to_array(msg), rgb)
    msg.encoding = "bgr8"
    np.testing.assert_array_equal(image_to_array(msg), rgb[..., ::-1])
    depth = np.array([[0.5, 1.0], [1.5, 2.0]], dtype=np.float32)
    d = SimpleNamespace(height=2, width=2, encoding="32FC1", step=8, is_bigendian=0,
                        data=depth.tobytes())
    np.testing.assert_array_equal(image_to_array(d), depth)
    with pytest.raises(ValueError, match="encoding"):
        image_to_array(SimpleNamespace(height=1, width=1, encoding="yuv422", step=2,
                                       is_bigendian=0, data=b"\0\0"))
