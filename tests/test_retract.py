"""The empty hand's return to the episode's start pose between calls (``eval.retract``):
rotation error, the scripted motion in the simulator, and the executor around it, on LIBERO's own
libero_goal files."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from libero_paths import LIBERO_BDDL

from robot_skills.control.command_path import rotvec_between
from robot_skills.execution.executor import Executor
from robot_skills.execution.retract import HomeRetract, RetractConfig
from robot_skills.robot import Action

os.environ.setdefault("MUJOCO_GL", "egl")

GOAL = LIBERO_BDDL / "libero_goal"
DRAWER_TASK = GOAL / "open_the_top_drawer_and_put_the_bowl_inside.bddl"


def _quat(v):
    q = np.asarray(v, np.float64)
    return q / np.linalg.norm(q)


def _rotvec_mat(r):
    angle = float(np.linalg.norm(r))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(r) / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _mat(q):
    import mujoco

    m = np.empty(9)
    mujoco.mju_quat2Mat(m, np.asarray(q, np.float64))
    return m.reshape(3, 3)


quats = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(
    lambda v: np.linalg.norm(v) > 0.1)


@settings(max_examples=200, deadline=None)
@given(a=quats, b=quats)
@example(a=[1.0, 0.0, 0.0, 0.0], b=[1.192092896e-07, 0.0, 0.0, 0.25])  # a half-turn, nearly
def test_the_retracts_orientation_error_turns_current_onto_target_in_the_base_frame(a, b):
    qa, qb = _quat(a), _quat(b)
    r = rotvec_between(qb, qa)  # the retract's orientation error toward qa
    assert np.linalg.norm(r) <= np.pi + 1e-9
    np.testing.assert_allclose(_rotvec_mat(r) @ _mat(qb), _mat(qa), atol=1e-6)
    assert np.linalg.norm(rotvec_between(-qa, qa)) < 1e-9  # q and -q: the same rotation


def test_retract_config_refuses_bad_values():
    with pytest.raises(ValueError, match="pos_tol"):
        RetractConfig(pos_tol=0)
    with pytest.raises(ValueError, match="gain"):
        RetractConfig(gain=1.5)
    with pytest.raises(ValueError, match="max_steps"):
        RetractConfig(max_steps=0)


def test_retract_lifts_first_then_returns_to_the_home_pose_in_the_simulator():
    from sim.world import SimTaskWorld

    world = SimTaskWorld.from_task(DRAWER_TASK)
    try:
        obs = world.reset(0)
        home = HomeRetract(obs.ee_pos, obs.ee_quat)
        assert home.reached(obs)
        for _ in range(25):  # down, sideways, turned about z: where a skill may end
            obs_act = Action(np.array([0.006, 0.006, -0.008]), np.array([0.0, 0.0, 0.03]), -1.0)
            world.robot.act(obs_act)
        obs = world.robot.observe()
        assert not home.reached(obs)
        start = obs.ee_pos.copy()
        zs, xy_moved_below_home = [obs.ee_pos[2]], False
        for _ in range(home.config.max_steps):
            if home.reached(obs):
                break
            a = home.act(obs)
            assert a.gripper == -1.0
            assert np.linalg.norm(a.delta_pos) <= home.config.max_step_pos + 1e-12
            if obs.ee_pos[2] < home.home_pos[2] - home.config.pos_tol:
                xy_moved_below_home |= bool(np.linalg.norm(a.delta_pos[:2]) > 1e-9)
            world.robot.act(a)
            obs = world.robot.observe()
            zs.append(obs.ee_pos[2])
        assert home.reached(obs), (obs.ee_pos, home.home_pos)
        assert not xy_moved_below_home  # straight up first
        zs = np.asarray(zs)
        below = zs[:-1] < home.home_pos[2] - home.config.pos_tol
        assert np.all(np.diff(zs)[below] > -2e-3)  # never pushed down while below home height
        assert np.linalg.norm(start - home.home_pos) > 0.1
    finally:
        world.close()


def _expert_episode(retract: RetractConfig):
    """The drawer task with the scripted experts and ``retract``: the result, the executor, the
    observation at each call's start (by skill) and the home pose."""
    from sim.factories import ExpertSkills
    from sim.world import SimTaskWorld

    starts = {}
    world = SimTaskWorld.from_task(DRAWER_TASK)
    try:
        obs0 = world.reset(0)

        def on_call(event, call, record):
            if event == "start":
                starts[call.skill] = world.robot.observe()

        ex = Executor(world, ExpertSkills()(DRAWER_TASK), on_call=on_call, retract=retract)
        res = ex.run()
    finally:
        world.close()
    assert res.success, (res.reason, res.messages)
    assert [c.skill for c in res.calls] == ["open", "pick", "place_in"]
    gaps = [b.start_step - a.end_step for a, b in zip(res.calls, res.calls[1:])]
    assert sum(gaps) == ex.retract_steps > 0  # the steps between calls are the retract's
    return gaps, starts, HomeRetract(obs0.ee_pos, obs0.ee_quat)


def test_executor_retracts_the_empty_hand_before_each_call_only():
    gaps, starts, home = _expert_episode(RetractConfig())
    assert home.reached(starts["pick"])  # the pick after open starts at the home pose
    assert not home.reached(starts["place_in"])  # holding the bowl: no retract
    assert gaps[0] > 0 and gaps[1] == 0


def test_executor_with_when_holding_also_carries_the_object_home():
    gaps, starts, home = _expert_episode(RetractConfig(when_holding=True))
    assert home.reached(starts["place_in"])  # carried home, still holding, then placed
    assert gaps[1] > 0


def test_eval_retract_mode_is_checked_with_the_config(tmp_path):
    from robot_skills import cli
    from robot_skills.config import ConfigValueError

    assert cli.load_config([f"run_dir={tmp_path}", "eval.retract=always"]).eval.retract == "always"
    with pytest.raises(ConfigValueError, match="eval.retract='sideways'"):
        cli.load_config([f"run_dir={tmp_path}", "eval.retract=sideways"])
