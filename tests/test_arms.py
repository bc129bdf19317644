"""Arm descriptions (Panda, FR3, UR5e, xArm7): models match an independent numpy DH forward
kinematics, the IK drives every arm, and the hardware presets agree with the descriptions."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from omegaconf import OmegaConf

from robot_skills import cli
from robot_skills.control.diff_ik import DiffIKController
from robot_skills.control.safety import SafetyFilter, SafetyLimits
from robot_skills.robot import Action
from robot_skills.robots import ARM_NAMES, get_arm, panda
from robot_skills.robots.description import ArmDescription
from robot_skills.skills.skill_dir import TRUST_TIERS
from robot_skills.utils.files import load_yaml_file

PI = np.pi


# ------------------------------------------------------------------ independent DH kinematics
def _rz(t):
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def _rx(t):
    c, s = np.cos(t), np.sin(t)
    return np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1.0]])


def _tr(x, y, z):
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def standard_dh(q, a, d, alpha, tool):
    T = np.eye(4)
    for qi, ai, di, al in zip(q, a, d, alpha):
        T = T @ _rz(qi) @ _tr(0, 0, di) @ _tr(ai, 0, 0) @ _rx(al)
    return T @ tool


def modified_dh(q, a, d, alpha, tool):
    T = np.eye(4)
    for qi, ai, di, al in zip(q, a, d, alpha):
        T = T @ _rx(al) @ _tr(ai, 0, 0) @ _rz(qi) @ _tr(0, 0, di)
    return T @ tool


# Published tables, written out here independently of the modules under test.
FRANKA = dict(a=[0, 0, 0, 0.0825, -0.0825, 0, 0.088], d=[0.333, 0, 0.316, 0, 0.384, 0, 0],
              alpha=[0, -PI / 2, PI / 2, PI / 2, -PI / 2, PI / 2, PI / 2],
              tool=_tr(0, 0, 0.107) @ _rz(-PI / 4) @ _tr(0, 0, 0.1034))
DH_FK = {
    "panda": lambda q: modified_dh(q, **FRANKA),
    "fr3": lambda q: modified_dh(q, **FRANKA),
    "ur5e": lambda q: standard_dh(q, a=[0, -0.425, -0.3922, 0, 0, 0],
                                  d=[0.1625, 0, 0, 0.1333, 0.0997, 0.0996],
                                  alpha=[PI / 2, 0, 0, PI / 2, -PI / 2, 0], tool=_tr(0, 0, 0.15)),
    "xarm7": lambda q: modified_dh(q, a=[0, 0, 0, 0.0525, 0.0775, 0, 0.076],
                                   d=[0.267, 0, 0.293, 0, 0.3425, 0, 0.097],
                                   alpha=[0, -PI / 2, PI / 2, PI / 2, PI / 2, PI / 2, -PI / 2],
                                   tool=_tr(0, 0, 0.172)),
}
# Published joint limits, written out independently (rad).
LIMITS = {
    "panda": [[-2.8973, 2.8973], [-1.7628, 1.7628], [-2.8973, 2.8973], [-3.0718, -0.0698],
              [-2.8973, 2.8973], [-0.0175, 3.7525], [-2.8973, 2.8973]],
    "fr3": [[-2.7437, 2.7437], [-1.7837, 1.7837], [-2.9007, 2.9007], [-3.0421, -0.1518],
            [-2.8065, 2.8065], [0.5445, 4.5169], [-3.0159, 3.0159]],
    "ur5e": [[-2 * PI, 2 * PI]] * 2 + [[-PI, PI]] + [[-2 * PI, 2 * PI]] * 3,
    "xarm7": [[-2 * PI, 2 * PI], [-2.059, 2.0944], [-2 * PI, 2 * PI], [-0.19198, 3.927],
              [-2 * PI, 2 * PI], [-1.69297, PI], [-2 * PI, 2 * PI]],
}


def _model_tcp(arm: ArmDescription, m: mujoco.MjModel, q: np.ndarray) -> np.ndarray:
    d = mujoco.MjData(m)
    for j, qi in zip(arm.model_joint_names, q):
        d.qpos[m.jnt_qposadr[m.joint(j).id]] = qi
    mujoco.mj_kinematics(m, d)
    T = np.eye(4)
    T[:3, :3] = d.site_xmat[m.site(arm.tcp_site).id].reshape(3, 3)
    T[:3, 3] = d.site_xpos[m.site(arm.tcp_site).id]
    return T


# ------------------------------------------------------------------ descriptions and models
def test_registry():
    assert set(ARM_NAMES) == {"panda", "fr3", "ur5e", "xarm7"}
    assert get_arm("ur5e") is get_arm("ur5e")
    for bad in ("ur10", "", None, ["panda"]):
        with pytest.raises(ValueError, match="unknown arm"):
            get_arm(bad)


@pytest.mark.parametrize("name", ARM_NAMES)
def test_model_matches_the_published_limits_and_names(name):
    arm = get_arm(name)
    m = arm.build_model()
    n = arm.n_joints
    assert n == (6 if name == "ur5e" else 7) and len(arm.joint_names) == n
    np.testing.assert_allclose(arm.joint_limits, LIMITS[name], atol=1e-12)
    rng = np.array([m.jnt_range[m.joint(j).id] for j in arm.model_joint_names])
    np.testing.assert_allclose(rng, arm.joint_limits, atol=1e-12)
    assert m.site(arm.tcp_site).id >= 0
    assert np.all(arm.home_qpos >= arm.joint_limits[:, 0])
    assert np.all(arm.home_qpos <= arm.joint_limits[:, 1])
    assert np.all(arm.velocity_limits > 0) and np.all(arm.acceleration_limits > 0)
    assert not arm.joint_limits.flags.writeable
    assert arm.source


def test_published_rates():
    np.testing.assert_allclose(get_arm("fr3").velocity_limits, [2.62] * 4 + [5.26, 4.18, 5.26])
    np.testing.assert_allclose(get_arm("fr3").acceleration_limits, [10.0] * 7)
    np.testing.assert_allclose(get_arm("panda").acceleration_limits,
                               [15, 7.5, 10, 12.5, 15, 20, 20])
    np.testing.assert_allclose(get_arm("ur5e").velocity_limits, [PI] * 6)
    np.testing.assert_allclose(get_arm("xarm7").velocity_limits, [3.14] * 7)


@pytest.mark.parametrize("name", ARM_NAMES)
def test_fk_matches_an_independent_dh_computation(name):
    arm = get_arm(name)
    m = arm.build_model()
    rng = np.random.default_rng(3)
    lo, hi = arm.joint_limits[:, 0], arm.joint_limits[:, 1]
    qs = [np.zeros(arm.n_joints).clip(lo, hi), arm.home_qpos] + [rng.uniform(lo, hi)
                                                                  for _ in range(25)]
    for q in qs:
        np.testing.assert_allclose(_model_tcp(arm, m, q), DH_FK[name](q), atol=1e-9)


def test_known_configurations():
    """Published reference points: Franka's ready pose and the UR5e's zero pose (tool0 at
    (-a2 - a3, -(d4 + d6), d1 - d5) = (-0.8172, -0.2329, 0.0628), tool z along -y)."""
    fk = get_arm("ur5e").tcp_position_fn()
    np.testing.assert_allclose(fk(np.zeros(6)), [-0.8172, -0.2329 - 0.15, 0.0628], atol=1e-9)
    p = get_arm("fr3").tcp_position_fn()(np.array([0, -PI / 4, 0, -3 * PI / 4, 0, PI / 2, PI / 4]))
    np.testing.assert_allclose(p, [0.3069, 0.0, 0.4869], atol=2e-3)


@pytest.mark.parametrize("name", ARM_NAMES)
def test_home_points_the_tool_down_in_front_of_the_base(name):
    arm = get_arm(name)
    T = _model_tcp(arm, arm.build_model(), arm.home_qpos)
    assert T[2, 2] < -0.999                      # tool z straight down
    assert 0.3 < T[0, 3] < 0.6 and 0.2 < T[2, 3] < 0.45


def test_description_validation():
    good = get_arm("ur5e")
    kw = {f: getattr(good, f) for f in ("name", "joint_names", "model_joint_names", "joint_limits",
                                         "velocity_limits", "acceleration_limits", "home_qpos",
                                         "tcp_site", "gripper_max_width", "base_frame", "source",
                                         "builder")}
    for change in ({"joint_names": ("a",)}, {"velocity_limits": np.zeros(6)},
                   {"home_qpos": np.full(6, 7.0)}, {"joint_limits": np.ones((6, 2))},
                   {"acceleration_limits": np.full(6, np.nan)}, {"gripper_max_width": 0.0}):
        with pytest.raises(ValueError):
            ArmDescription(**{**kw, **change})


# ------------------------------------------------------------------ the IK on every arm
def test_ik_default_is_the_panda():
    c = DiffIKController()
    assert c.arm.name == "panda" and c.n_joints == 7
    assert c.arm_joints == tuple(f"panda/joint{i}" for i in range(1, 8))
    assert c.tcp_site == "panda/tcp" and c.max_gripper_width == pytest.approx(0.08)
    np.testing.assert_array_equal(c.velocity_limits, panda.VELOCITY_LIMITS)


@pytest.mark.parametrize("name", ["fr3", "ur5e", "xarm7"])
def test_ik_drives_every_arm_within_its_limits(name):
    arm = get_arm(name)
    c = DiffIKController(arm=arm)
    assert c.n_joints == arm.n_joints and c.max_gripper_width == arm.gripper_max_width
    c.reset(arm.home_qpos)
    p0, quat0 = c.target_pose
    goal = p0 + np.array([0.08, -0.1, -0.1])
    q = arm.home_qpos.copy()
    for _ in range(60):
        p, _ = c.forward_kinematics(q)
        q_new = c.step(Action(goal - p, np.zeros(3), -1.0), q).q_target
        assert np.all(np.abs(q_new - q) <= arm.velocity_limits * c.dt + 1e-6)
        assert np.all(q_new >= arm.joint_limits[:, 0] - 1e-9)
        assert np.all(q_new <= arm.joint_limits[:, 1] + 1e-9)
        q = q_new
    p, quat = c.forward_kinematics(q)
    assert np.linalg.norm(p - goal) < 2e-3
    assert abs(abs(float(quat @ quat0)) - 1.0) < 1e-3
    with pytest.raises(ValueError, match=f"shape \\({arm.n_joints},\\)"):
        c.forward_kinematics(np.zeros(arm.n_joints + 1))


# ------------------------------------------------------------------ hardware presets
PRESETS = {"panda": "panda", "fr3": "fr3", "ur5e": "ur5e", "xarm7": "xarm7"}
# keys the bridge reads (the first block are the original panda_ros2 keys)
PRESET_KEYS = {"_target_", "arm", "joint_states_topic", "trajectory_topic", "gripper_topic",
               "estop_topic", "state_timeout_s", "control_hz",
               "joint_names", "base_frame", "controller", "gripper", "min_trust_tier", "home_qpos",
               "object_pose_topic", "object_pose_topics", "safety"}


def _preset(name, tmp_path) -> dict:
    cfg = cli.load_config([f"run_dir={tmp_path}", f"+hardware={name}"])
    return OmegaConf.to_container(cfg.hardware, resolve=True), cfg


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_matches_its_arm_description(preset, tmp_path):
    h, cfg = _preset(preset, tmp_path)
    assert set(h) == PRESET_KEYS
    assert h["_target_"] == "hardware.ros2_robot.Ros2Robot"
    arm = get_arm(h["arm"])
    assert arm.name == PRESETS[preset]
    assert tuple(h["joint_names"]) == arm.joint_names
    assert h["base_frame"] == arm.base_frame
    np.testing.assert_allclose(h["home_qpos"], arm.home_qpos, atol=1e-6)
    assert h["trajectory_topic"] == f"/{h['controller']}/joint_trajectory"
    assert h["control_hz"] == cfg.robot.control_hz
    assert h["min_trust_tier"] in TRUST_TIERS and h["min_trust_tier"] != "sim"
    g = h["gripper"]
    assert g["kind"] in ("jtc", "forward_command", "gripper_action")
    assert h["gripper_topic"] == g["topic"]
    assert g["joints"] and all(isinstance(j, str) for j in g["joints"])
    assert {"open", "closed"} <= set(g) and g["open"] != g["closed"]
    assert "{name}" in h["object_pose_topic"] and isinstance(h["object_pose_topics"], dict)
    # plain YAML (no interpolation): readable without Hydra, as the bridge's own loader does
    raw = load_yaml_file(cli.config_dir() / "hardware" / f"{preset}.yaml")
    assert raw == h

    lim = SafetyLimits.from_dict(h["safety"])
    assert lim.n_joints == arm.n_joints
    # position limits are the arm's (rounded inwards at most 1e-6), rates never above them
    assert np.all(lim.joint_lower >= arm.joint_limits[:, 0])
    assert np.all(lim.joint_upper <= arm.joint_limits[:, 1])
    np.testing.assert_allclose(lim.joint_lower, arm.joint_limits[:, 0], atol=1e-6)
    np.testing.assert_allclose(lim.joint_upper, arm.joint_limits[:, 1], atol=1e-6)
    assert np.all(lim.max_velocity <= arm.velocity_limits)
    assert np.all(lim.max_acceleration <= arm.acceleration_limits)
    assert h["state_timeout_s"] == pytest.approx(lim.stale_after_periods / h["control_hz"])

    # the home pose is a valid, in-workspace starting point for the filter
    fk = arm.tcp_position_fn()
    home = np.asarray(h["home_qpos"])
    assert np.all(home > lim.joint_lower + lim.position_margin)
    assert np.all(home < lim.joint_upper - lim.position_margin)
    p = fk(home)
    assert np.all(p > lim.workspace_lower) and np.all(p < lim.workspace_upper)
    f = SafetyFilter(lim, 1.0 / h["control_hz"], fk)
    f.reset(home)
    small = home + 0.001
    d = f.filter(small, home, now=1.0, state_stamp=1.0)
    np.testing.assert_array_equal(d.q_command, small)
    assert d.interventions == ()


def test_legacy_panda_ros2_preset_still_loads(tmp_path):
    h, _ = _preset("panda_ros2", tmp_path)
    assert h["_target_"] == "hardware.ros2_robot.Ros2Robot" and h["arm"] == "panda"
