"""The residual RL env (sim/residual_env.py): gymnasium's checker, zero residual == base skill,
reward and termination from the skill's predicates, perturbations, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from libero_paths import LIBERO_BDDL

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.execution.executor import termination_holds
from robot_skills.policies.features import skill_features
from robot_skills.training.residual import ResidualPolicy, ResidualTrainConfig, build_model
from sim.residual_env import (
    BASE_SLICE,
    FEATURE_SLICE,
    OBS_DIM,
    ResidualEnvFactory,
    ResidualPerturbation,
    ResidualSkillEnv,
    parse_call,
)

TASK = LIBERO_BDDL / "libero_goal" / "put_the_bowl_on_the_plate.bddl"
PICK = "pick(akita_black_bowl_1)"


def _env(**kw) -> ResidualSkillEnv:
    return ResidualSkillEnv(TASK, kw.pop("call", PICK), "expert", **kw)


def test_env_passes_gymnasium_checker() -> None:
    env = _env(max_steps=20)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (OBS_DIM,)
    env.close()


def test_zero_residual_executes_the_base_skill_exactly() -> None:
    """Executed action == base action at every step, and the trajectory is the one the scripted
    expert makes on its own from the same seed."""
    from sim.experts import make_expert
    from sim.world import SimTaskWorld

    env = _env(max_steps=40)
    obs, info = env.reset(seed=3)
    assert info["episode_seed"] == 3
    ee = [obs[0:3].copy()]
    for _ in range(40):
        np.testing.assert_array_equal(obs[BASE_SLICE], env._a_base.astype(np.float32))
        obs, _, term, trunc, info = env.step(np.zeros(7, np.float32))
        np.testing.assert_array_equal(info["executed_action"], info["base_action"])
        ee.append(obs[0:3].copy())
        if term or trunc:
            break
    env.close()

    world = SimTaskWorld.from_task(TASK)
    o = world.robot.reset(3)
    expert = make_expert("pick")
    expert.reset(("akita_black_bowl_1",), world)
    ref = [skill_features(o, ("akita_black_bowl_1",))[0:3]]
    for _ in range(len(ee) - 1):
        world.robot.act(expert.act(o))
        o = world.robot.observe()
        ref.append(skill_features(o, ("akita_black_bowl_1",))[0:3])
    world.close()
    np.testing.assert_allclose(np.array(ee), np.array(ref), atol=1e-6)


def test_untrained_residual_policy_is_the_base_skill() -> None:
    """The zero-initialised SB3 heads (SAC, PPO, KORR) output exactly 0 -> executed == base."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = _env(max_steps=15)
    venv = DummyVecEnv([lambda: env])
    for algo in ("sac", "ppo", "korr"):
        cfg = ResidualTrainConfig(algo=algo, net_arch=(32, 32), vec_env="dummy", n_envs=1,
                                  learning_starts=10, buffer_size=100)
        model = build_model(cfg, venv, {"state_dim": 20, "base_start": 20, "action_dim": 7}
                            if algo == "korr" else None)
        pol = ResidualPolicy(model.policy, {"algo": algo})
        obs, _ = env.reset(seed=1)
        for _ in range(15):
            delta = pol(obs)
            assert np.array_equal(delta, np.zeros(7, np.float32)), (algo, delta)
            obs, _, term, trunc, info = env.step(delta)
            np.testing.assert_array_equal(info["executed_action"], info["base_action"])
            if term or trunc:
                break
    venv.close()


def test_reward_and_termination_come_from_the_skills_predicates() -> None:
    env = _env(shaping=0.0)
    spec = SKILL_SPECS["pick"]
    args = ("akita_black_bowl_1",)
    env.reset(seed=0)
    rewards, held = [], []
    while True:
        _, r, term, trunc, info = env.step(np.zeros(7, np.float32))
        state = env.world.predicate_state()
        entities = env.robot.scene.entity_tags()
        held.append(termination_holds(spec, args, state, entities))
        rewards.append(r)
        assert term == held[-1] == info["success"]
        if term or trunc:
            break
    assert term and not trunc, "the scripted pick terminates on the nominal scene"
    assert ("holding", "akita_black_bowl_1") in state
    assert rewards[-1] == 1.0 and all(r == 0.0 for r in rewards[:-1])
    assert not any(held[:-1])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(7, np.float32))  # the episode is over
    env.close()


def test_shaping_is_potential_based_and_time_limit_truncates() -> None:
    env = _env(shaping=1.0, gamma=1.0, max_steps=6)
    obs, _ = env.reset(seed=0)
    phi0 = -np.linalg.norm(obs[FEATURE_SLICE][8:11]) / 0.1
    total = 0.0
    for i in range(6):
        obs, r, term, trunc, info = env.step(np.zeros(7, np.float32))
        total += r
        assert trunc == (i == 5) and not term
    phi = -np.linalg.norm(obs[FEATURE_SLICE][8:11]) / 0.1
    # gamma = 1: the shaped returns telescope to Phi(end) - Phi(start)
    assert total == pytest.approx(phi - phi0, abs=1e-4)
    assert math.isclose(info["progress"], phi, abs_tol=1e-4)
    assert obs[-1] == pytest.approx(1.0)
    env.close()


def test_perturbation_changes_dynamics_and_actions() -> None:
    nominal = _env(max_steps=5)
    bias = (0.1, -0.1, 0.05, 0.0, 0.0, 0.0, 0.0)
    p = ResidualPerturbation(name="t", mass_scale=3.0, friction_scale=0.5, action_bias=bias)
    pert = _env(max_steps=5, perturbation=p)
    bowl = nominal.robot.model.body("akita_black_bowl_1").id
    assert pert.robot.model.body_mass[bowl] == pytest.approx(3 * nominal.robot.model.body_mass[bowl])
    g = int(np.flatnonzero(nominal.robot.model.geom_bodyid == bowl)[0])
    assert pert.robot.model.geom_friction[g, 0] == pytest.approx(
        0.5 * nominal.robot.model.geom_friction[g, 0])
    pert.reset(seed=0)
    _, _, _, _, info = pert.step(np.zeros(7, np.float32))
    np.testing.assert_allclose(info["executed_action"],
                               np.clip(info["base_action"] + np.array(bias, np.float32), -1, 1),
                               atol=1e-6)
    # the residual can cancel the bias: a = base + 0.1 * delta + bias
    pert.reset(seed=0)
    _, _, _, _, info = pert.step(-np.array(bias, np.float32) / 0.1)
    np.testing.assert_allclose(info["executed_action"], np.clip(info["base_action"], -1, 1),
                               atol=1e-6)
    nominal.close()
    pert.close()


def test_setup_calls_run_before_the_skill() -> None:
    env = ResidualSkillEnv(TASK, "place_on(akita_black_bowl_1, plate_1)", "expert",
                           setup=("pick(akita_black_bowl_1)",), max_steps=3)
    env.reset(seed=0)
    assert ("holding", "akita_black_bowl_1") in env.world.predicate_state()
    env.close()


def test_bad_inputs_fail_loudly() -> None:
    with pytest.raises(ValueError, match="scale"):
        _env(scale=0.0)
    with pytest.raises(ValueError, match="not entities"):
        _env(call="pick(no_such_bowl)")
    with pytest.raises(ValueError, match="argument"):
        _env(call="pick(akita_black_bowl_1, plate_1)")
    with pytest.raises(ValueError, match="name\\(arg"):
        parse_call("pick akita_black_bowl_1")
    with pytest.raises(ValueError, match="unknown perturbation"):
        ResidualPerturbation.from_dict({"mass": 2.0})
    with pytest.raises(ValueError, match="mass_scale"):
        ResidualPerturbation(mass_scale=0.0)
    env = _env(max_steps=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(7, np.nan, np.float32))
    env.close()
    with pytest.raises(FileNotFoundError):
        ResidualEnvFactory(task="no_such_task", call=PICK, suite_path=str(TASK.parent))()


def test_residual_skill_acts_as_the_env_executes() -> None:
    """The executor-side wrapper builds the env's observation and executes the env's action."""
    from robot_skills.training.residual import ResidualSkill
    from sim.experts import make_expert

    def residual(x: np.ndarray) -> np.ndarray:  # any deterministic function of the observation
        return np.tanh(np.arange(7) * 0.1 + x[:7]).astype(np.float32)

    env = _env(max_steps=30)
    obs, _ = env.reset(seed=2)
    skill = ResidualSkill(make_expert("pick"), residual, max_steps=30, scale=0.1)
    skill.reset(("akita_black_bowl_1",), env.world)
    for _ in range(10):
        robot_obs = env.robot.observe()
        a = skill.act(robot_obs)
        x = skill.observation(robot_obs, skill._unit * 0)  # features + time only
        np.testing.assert_allclose(x[:20], obs[:20], atol=1e-6)
        obs, _, term, trunc, info = env.step(residual(obs))
        np.testing.assert_allclose(a.to_array() / skill._unit.astype(np.float32),
                                   info["executed_action"], atol=1e-5)
        if term or trunc:
            break
    env.close()


def test_success_is_worth_more_than_failure_under_shaping() -> None:
    """The success step's shaping uses Phi = 0 (absorbing state, Ng et al. 1999): with gamma = 1
    a successful episode's shaped return telescopes to 1 - Phi(start), whatever distance the
    end-effector ends at (an `open` ends centimetres from its argument's pose), while a
    truncated one gets Phi(end) - Phi(start) <= -Phi(start)."""
    env = ResidualSkillEnv(LIBERO_BDDL / "libero_goal" / "open_the_middle_drawer_of_the_cabinet.bddl",
                           "open(wooden_cabinet_1_middle_region)", "expert", shaping=1.0,
                           gamma=1.0)
    obs, _ = env.reset(seed=0)
    phi0 = -np.linalg.norm(obs[FEATURE_SLICE][8:11]) / 0.1
    total, term, info = 0.0, False, {}
    for _ in range(400):
        obs, r, term, trunc, info = env.step(np.zeros(7, np.float32))
        total += r
        if term or trunc:
            break
    assert term and info["success"], "the expert base succeeds on seed 0"
    assert info["progress"] < -0.05, "the episode ends away from the argument's pose"
    assert total == pytest.approx(1.0 - phi0, abs=1e-4)
    env.close()
