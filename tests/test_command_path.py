"""The deployment command path (IK -> safety filter), shared by the ROS 2 bridge and SimRobot, and
SimRobot running a preset's command path (``robot.deployment``): every command the simulated
trajectory controller receives satisfies the preset's limits, the scripted experts still solve a
LIBERO task through it, and bad deployment configs are refused by name."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from libero_paths import LIBERO_BDDL

from robot_skills.control.command_path import JointCommandPath, rotvec_between
from robot_skills.control.safety import SafetyLimits
from robot_skills.robot import Action, ActionLimits
from robot_skills.robots import get_arm

ROOT = Path(__file__).resolve().parents[1]
TASK = LIBERO_BDDL / "libero_goal" / "put_the_bowl_on_the_plate.bddl"
TWIN_PARAMS = ROOT / "launch" / "params" / "sim_twin.yaml"
DT = 0.05


def _limits(**kw) -> SafetyLimits:
    arm = get_arm("panda")
    d = dict(joint_lower=arm.joint_limits[:, 0], joint_upper=arm.joint_limits[:, 1],
             max_velocity=arm.velocity_limits * 0.5, max_acceleration=arm.acceleration_limits * 0.5,
             workspace_lower=[0.15, -0.6, -0.05], workspace_upper=[0.85, 0.6, 0.9], max_step=0.05)
    d.update(kw)
    return SafetyLimits.from_dict(d)


def _home() -> np.ndarray:
    from robot_skills.robots import panda

    return np.asarray(panda.HOME_QPOS, dtype=float)


def test_a_feasible_action_passes_and_reports_itself():
    path = JointCommandPath(get_arm("panda"), DT, _limits(max_step=1.0))
    q = _home()
    path.reset(q)
    a = Action(np.array([0.002, 0.0, -0.002]), np.zeros(3), -1.0)  # -1 opens
    pc = path.step(a, q, now=0.0, state_stamp=0.0)
    assert pc.error is None and not pc.decision.hold and pc.decision.interventions == ()
    np.testing.assert_allclose(pc.applied.delta_pos, a.delta_pos)
    assert pc.gripper_width == pytest.approx(get_arm("panda").gripper_max_width)


def test_a_limited_command_reports_the_motion_it_amounts_to():
    """A step the filter cuts: the applied action is the EE motion of the published command, and
    the IK keeps the skill's target (it restarts from the published joints)."""
    arm = get_arm("panda")
    path = JointCommandPath(arm, DT, _limits(max_step=0.005))
    q = _home()
    path.reset(q)
    p0, r0 = path.controller.forward_kinematics(q)
    pc = path.step(Action(np.array([0.05, 0.0, 0.0]), np.zeros(3), 0.0), q, now=0.0,
                   state_stamp=0.0)
    d = pc.decision
    assert "limit_step" in d.interventions and not d.hold
    assert np.max(np.abs(d.q_command - q)) <= 0.005 + 1e-9
    p1, r1 = path.controller.forward_kinematics(d.q_command)
    np.testing.assert_allclose(pc.applied.delta_pos, p1 - p0, atol=1e-12)
    np.testing.assert_allclose(pc.applied.delta_rot, rotvec_between(r0, r1), atol=1e-12)
    assert 0 < pc.applied.delta_pos[0] < 0.05  # some of the way, in the asked direction
    tp, _ = path.controller.target_pose
    assert tp[0] == pytest.approx(p0[0] + 0.05, abs=1e-6)  # the skill's intent is kept


def test_the_ik_plans_within_the_filters_velocity_limits():
    arm = get_arm("panda")
    lim = _limits()  # half the published speeds
    path = JointCommandPath(arm, DT, lim)
    np.testing.assert_allclose(path.controller.velocity_limits, arm.velocity_limits * 0.5)
    fast = _limits(max_velocity=arm.velocity_limits * 3)  # never above the arm's own
    np.testing.assert_allclose(JointCommandPath(arm, DT, fast).controller.velocity_limits,
                               arm.velocity_limits)


def test_a_nan_action_is_a_controlled_stop_with_an_error():
    path = JointCommandPath(get_arm("panda"), DT, _limits())
    q = _home()
    path.reset(q)
    pc = path.step(Action(np.array([np.nan, 0, 0]), np.zeros(3), 0.0), q, now=0.0,
                   state_stamp=0.0)
    assert pc.error and pc.decision.hold and pc.decision.stop_skill
    assert "nan_input" in pc.decision.interventions
    assert pc.decision.q_command is None or np.all(np.isfinite(pc.decision.q_command))


def test_limits_for_another_arm_are_refused():
    arm = get_arm("ur5e")
    with pytest.raises(ValueError, match="joints"):
        JointCommandPath(arm, DT, _limits())


def test_rotvec_between_inverts_a_rotation():
    import mujoco

    q0 = np.array([0.9, 0.1, -0.3, 0.2])
    q0 /= np.linalg.norm(q0)
    r = np.array([0.3, -0.2, 0.5])
    dq = np.empty(4)
    mujoco.mju_axisAngle2Quat(dq, r / np.linalg.norm(r), float(np.linalg.norm(r)))
    q1 = np.empty(4)
    mujoco.mju_mulQuat(q1, dq, q0)
    np.testing.assert_allclose(rotvec_between(q0, q1), r, atol=1e-9)


# ------------------------------------------------------------------ SimRobot with a deployment


def _factory(deployment):
    from sim.factories import SimWorldFactory

    return SimWorldFactory(robot={"name": "panda", "deployment": deployment})


def test_deployment_from_the_twins_parameter_file_applies_its_limits():
    from hardware.config import load_bridge_config
    from hardware.executor_node import bridge_overrides, executor_parameters

    dep = _factory({"params": str(TWIN_PARAMS)}).deployment()
    p = executor_parameters(TWIN_PARAMS)
    want = load_bridge_config(p["preset"], **bridge_overrides(p))
    assert dep.lookahead_periods == pytest.approx(want.lookahead_periods)
    lim, ref = dep.limits, want.safety_limits()
    assert lim.max_step == ref.max_step == pytest.approx(0.3)
    np.testing.assert_allclose(lim.max_velocity, ref.max_velocity)
    np.testing.assert_allclose(lim.workspace_lower, ref.workspace_lower)
    # the preset alone: the real-arm limits
    real = _factory({"preset": "panda"}).deployment()
    assert real.limits.max_step == pytest.approx(0.05) and real.name == "panda"
    assert _factory(None).deployment() is None


@pytest.mark.parametrize("bad, match", [
    ({"preset": "panda", "teleport": True}, "takes only"),
    ({}, "needs 'preset'"),
    ({"preset": "ur5e"}, "Panda"),
    ({"preset": "no_such_arm"}, "unknown hardware preset"),
    ({"preset": "panda", "lookahead_periods": -1.0}, "lookahead"),
    ({"preset": "panda", "latency_s": 0.05}, "latency_s"),
    ({"preset": "panda", "latency_s": -0.01}, "latency_s"),
    ({"preset": "panda", "safety": {"max_step": 0.0}}, "max_step"),
    ("panda", "mapping"),
])
def test_bad_deployments_are_refused_by_name(bad, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        _factory(bad)


def test_experts_run_through_the_twins_command_path_within_its_limits():
    """The scripted experts solve the task with every command through the twin's limits and the
    simulated trajectory controller; the trajectory controller only ever got filtered commands."""
    from robot_skills.data.collect import NoiseConfig, run_expert_episode
    from sim.factories import ExpertSkills

    f = _factory({"params": str(TWIN_PARAMS)})
    lim = f.deployment().limits
    world = f(TASK, 1000)
    robot = world.robot
    sent: list[tuple[np.ndarray, np.ndarray]] = []
    orig = robot._path.step

    def spy(action, q, **kw):
        pc = orig(action, q, **kw)
        if pc.decision.q_command is not None:
            sent.append((pc.decision.q_command.copy(), q.copy()))
        return pc

    robot._path.step = spy
    ok, episode, res = run_expert_episode(world, ExpertSkills()(TASK), 1000, NoiseConfig(), 400)
    assert ok, res
    assert len(sent) == len(episode.actions) > 20
    lo, hi = lim.joint_lower + lim.position_margin, lim.joint_upper - lim.position_margin
    for q_cmd, q_meas in sent:
        assert np.all(q_cmd >= lo - 1e-9) and np.all(q_cmd <= hi + 1e-9)
        assert np.all(np.abs(q_cmd - q_meas) <= lim.max_step + 1e-9)
    # the arm followed: the last command is where the arm stands, within the tracking lag
    assert np.max(np.abs(sent[-1][0] - robot.data.qpos[robot._arm_qadr])) < 0.05


def test_plain_and_deployed_robots_start_identically_and_accept_the_same_actions():
    f_plain, f_dep = _factory(None), _factory({"params": str(TWIN_PARAMS)})
    w0, w1 = f_plain(TASK, 3), f_dep(TASK, 3)
    o0, o1 = w0.reset(3), w1.reset(3)
    np.testing.assert_allclose(o0.joint_pos, o1.joint_pos)
    a = Action(np.array([0.01, 0.0, -0.01]), np.zeros(3), -1.0)
    for _ in range(10):
        w0.robot.act(a)
        w1.robot.act(a)
    # both moved the hand the same way (the deployed one through the trajectory controller)
    p0, p1 = w0.robot.observe().ee_pos, w1.robot.observe().ee_pos
    assert np.linalg.norm(p0 - o0.ee_pos) > 0.05
    assert np.linalg.norm(p1 - p0) < 0.02
    with pytest.raises(ValueError):
        w1.robot.act(Action(np.array([np.nan, 0, 0]), np.zeros(3), 0.0))
    assert ActionLimits() == w1.robot.action_limits


def test_latency_delays_the_command_and_measures_against_the_stale_state():
    """With ``latency_s`` the previous command keeps running for that long after the observation:
    from rest, the first action moves the arm less within its period than without latency."""
    moved = {}
    for lat in (0.0, 0.02):
        w = _factory({"params": str(TWIN_PARAMS), "latency_s": lat})(TASK, 3)
        o = w.reset(3)
        w.robot.act(Action(np.array([0.03, 0.0, -0.03]), np.zeros(3), -1.0))
        moved[lat] = float(np.linalg.norm(w.robot.observe().ee_pos - o.ee_pos))
    assert 0.0 < moved[0.02] < 0.9 * moved[0.0], moved
