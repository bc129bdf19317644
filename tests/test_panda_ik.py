"""The Panda model (published kinematics/limits) and the shared differential-IK controller."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robot_skills.control.diff_ik import DiffIKController
from robot_skills.robot import Action, ActionLimits
from robot_skills.robots import panda


@pytest.fixture(scope="module")
def arm():
    spec, names = panda.panda_only_spec()
    return spec.compile(), names


def test_model_matches_published_limits(arm):
    m, names = arm
    rng = np.array([m.jnt_range[m.joint(j).id] for j in names.arm_joints])
    np.testing.assert_allclose(rng, panda.JOINT_LIMITS)
    assert m.opt.timestep == pytest.approx(0.002)
    assert panda.substeps_per_control() == 25
    fr = np.array([m.jnt_range[m.joint(j).id] for j in names.finger_joints])
    np.testing.assert_allclose(fr, [[0, 0.04], [0, 0.04]])


def test_ready_pose_fk_matches_franka(arm):
    """Franka's ready pose [0,-pi/4,0,-3pi/4,0,pi/2,pi/4] puts the TCP at (0.307, 0, 0.487) m."""
    c = DiffIKController()
    p, q = c.forward_kinematics(np.array([0, -np.pi / 4, 0, -3 * np.pi / 4, 0, np.pi / 2, np.pi / 4]))
    np.testing.assert_allclose(p, [0.3069, 0.0, 0.4869], atol=2e-3)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, q)
    assert R.reshape(3, 3)[2, 2] == pytest.approx(-1.0, abs=1e-3)  # tool z points down


def test_home_is_gripper_down_above_table():
    c = DiffIKController()
    p, q = c.forward_kinematics(panda.HOME_QPOS)
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, q)
    assert R.reshape(3, 3)[2, 2] < -0.999
    assert 0.2 < p[2] < 0.5 and 0.3 < p[0] < 0.6


def _run(c, actions, q0=panda.HOME_QPOS):
    c.reset(q0)
    q = q0.copy()
    qs = []
    for a in actions:
        q = c.step(a, q).q_target
        qs.append(q)
    return np.array(qs)


def test_converges_to_reachable_target():
    c = DiffIKController()
    c.reset(panda.HOME_QPOS)
    p0, quat0 = c.target_pose
    goal = p0 + np.array([0.1, -0.15, -0.2])
    q = panda.HOME_QPOS.copy()
    for _ in range(60):
        p, _ = c.forward_kinematics(q)
        q = c.step(Action(goal - p, np.zeros(3), -1.0), q).q_target
    p, quat = c.forward_kinematics(q)
    assert np.linalg.norm(p - goal) < 1e-3
    assert abs(abs(float(quat @ quat0)) - 1.0) < 1e-4  # orientation held


def test_respects_joint_position_and_velocity_limits():
    c = DiffIKController()
    rng = np.random.default_rng(0)
    acts = [Action(rng.uniform(-0.05, 0.05, 3), rng.uniform(-0.5, 0.5, 3), 0.0) for _ in range(150)]
    acts += [Action(np.array([0.0, 0.0, -0.05]), np.zeros(3), 0.0)] * 40  # drive into the table
    qs = _run(c, acts)
    lo, hi = panda.JOINT_LIMITS[:, 0], panda.JOINT_LIMITS[:, 1]
    assert np.all(qs >= lo - 1e-9) and np.all(qs <= hi + 1e-9)
    dq = np.abs(np.diff(np.vstack([panda.HOME_QPOS, qs]), axis=0))
    assert np.all(dq <= panda.VELOCITY_LIMITS * c.dt + 1e-6)


def test_rejects_nan_and_bad_shapes():
    c = DiffIKController()
    c.reset(panda.HOME_QPOS)
    with pytest.raises(ValueError):
        c.step(Action(np.array([np.nan, 0, 0]), np.zeros(3), 0.0), panda.HOME_QPOS)
    with pytest.raises(ValueError):
        c.step(Action(np.zeros(3), np.zeros(3), float("inf")), panda.HOME_QPOS)
    with pytest.raises(ValueError):
        c.step(Action(np.zeros(3), np.zeros(3), 0.0), np.full(7, np.nan))
    with pytest.raises(ValueError):
        c.step(Action(np.zeros(2), np.zeros(3), 0.0), panda.HOME_QPOS)
    with pytest.raises(RuntimeError):
        DiffIKController().step(Action(np.zeros(3), np.zeros(3), 0.0), panda.HOME_QPOS)


def test_clips_to_action_limits():
    c = DiffIKController(action_limits=ActionLimits(max_delta_pos=0.01, max_delta_rot=0.1))
    a = c.clip_action(Action(np.array([1.0, -1.0, 0.005]), np.array([1.0, 0, 0]), 3.0))
    np.testing.assert_allclose(a.delta_pos, [0.01, -0.01, 0.005])
    np.testing.assert_allclose(a.delta_rot, [0.1, 0, 0])
    assert a.gripper == 1.0
    assert c.gripper_width(-1.0) == pytest.approx(0.08) and c.gripper_width(1.0) == 0.0


def test_step_reports_the_applied_action():
    """``IKCommand.applied`` is the clipped action (what ``Robot.act`` returns)."""
    c = DiffIKController(action_limits=ActionLimits(max_delta_pos=0.01, max_delta_rot=0.1))
    c.reset(panda.HOME_QPOS)
    raw = Action(np.array([1.0, -1.0, 0.005]), np.array([1.0, 0, 0]), 3.0)
    cmd = c.step(raw, panda.HOME_QPOS)
    np.testing.assert_allclose(cmd.applied.to_array(), c.clip_action(raw).to_array())
    assert cmd.gripper_width == pytest.approx(c.gripper_width(cmd.applied.gripper))
    small = Action(np.array([0.002, 0.0, -0.003]), np.array([0.0, 0.05, 0.0]), -0.5)
    np.testing.assert_allclose(c.step(small, cmd.q_target).applied.to_array(), small.to_array())


def test_tracks_straight_line():
    c = DiffIKController()
    c.reset(panda.HOME_QPOS)
    p0, _ = c.target_pose
    step = np.array([0.004, 0.003, -0.002])
    q = panda.HOME_QPOS.copy()
    dev = []
    for k in range(1, 51):
        q = c.step(Action(step, np.zeros(3), 0.0), q).q_target
        p, _ = c.forward_kinematics(q)
        dev.append(np.linalg.norm(p - (p0 + k * step)))
    assert max(dev) < 2e-3


def test_fast_backend_equals_mink_solve_ik():
    rng = np.random.default_rng(1)
    acts = [Action(rng.uniform(-0.03, 0.03, 3), rng.uniform(-0.2, 0.2, 3), 0.0) for _ in range(60)]
    qf = _run(DiffIKController(backend="fast"), acts)
    qm = _run(DiffIKController(backend="mink"), acts)
    np.testing.assert_allclose(qf, qm, atol=1e-8)


def test_add_panda_rejects_bad_input():
    with pytest.raises(ValueError):
        panda.add_panda(mujoco.MjSpec(), base_pos=(0, np.nan, 0))
    spec, _ = panda.panda_only_spec()
    with pytest.raises(ValueError):
        panda.add_panda(spec)
