"""The gymnasium environment over one LIBERO task file."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
from gymnasium.utils.env_checker import check_env
from libero_paths import LIBERO_BDDL

GOAL_DIR = LIBERO_BDDL / "libero_goal"
TASK = GOAL_DIR / "put_the_bowl_on_the_plate.bddl"


def test_env_checker_state_only():
    import sim.env  # noqa: F401  (registers the id)

    env = gym.make("robot_skills/LiberoTask-v0", bddl_path=str(TASK), max_episode_steps=20)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_step_contract_and_truncation():
    from robot_skills.domain.predicates import format_atom
    from sim.env import LiberoTaskEnv
    from sim.world import SimTaskWorld

    env = LiberoTaskEnv(TASK, max_episode_steps=3)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["goal_progress"] == {"(On akita_black_bowl_1 plate_1)": False}
    assert "(Handempty)" in info["predicates"]
    # predicates come from the task world around the env's robot
    assert isinstance(env.world, SimTaskWorld) and env.world.robot is env.robot
    assert info["predicates"] == sorted(format_atom(a) for a in env.world.predicate_state())
    for k in range(3):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert r == 0.0 and not term and not info["success"]
    assert trunc
    with pytest.raises(ValueError):
        env.step(np.full(7, np.nan))


def test_action_scaling_is_osc_style():
    from sim.env import LiberoTaskEnv

    env = LiberoTaskEnv(TASK, info_predicates=False)
    a = env.action_to_robot(np.array([1, -0.5, 2, 0.2, 0, 0, 1], np.float32))
    np.testing.assert_allclose(a.delta_pos, [0.05, -0.025, 0.05])
    np.testing.assert_allclose(a.delta_rot, [0.1, 0, 0])
    assert a.gripper == 1.0


def test_cameras_in_observation():
    from sim.env import LiberoTaskEnv

    env = LiberoTaskEnv(TASK, cameras=("agentview",), image_size=(32, 40), depth=True,
                        info_predicates=False)
    obs, _ = env.reset(seed=0)
    assert obs["agentview_rgb"].shape == (32, 40, 3) and obs["agentview_rgb"].dtype == np.uint8
    assert obs["agentview_depth"].shape == (32, 40, 1)
    assert obs["agentview_rgb"].std() > 1.0  # a real picture, not a blank frame
    assert env.observation_space.contains(obs)
    env.close()
