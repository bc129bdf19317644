"""Residual policies (robot_skills/training/residual.py): safetensors + JSON round trip for SAC,
PPO and KORR, loud refusal of bad files, a tiny SB3 SAC (and KORR) training run on the real env."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from libero_paths import LIBERO_BDDL

from robot_skills.training.residual import (
    ResidualTrainConfig,
    build_model,
    evaluate,
    load_residual,
    save_residual,
    train_residual,
)


class _LinearEnv(gym.Env):
    """A stand-in with the residual env's layout: obs = [s (20), a_base (7), t (1)]."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1e3, 1e3, shape=(28,), dtype=np.float32)
        self.action_space = spaces.Box(-1, 1, shape=(7,), dtype=np.float32)
        self._s = np.zeros(20)
        self._t = 0

    def _obs(self) -> np.ndarray:
        return np.concatenate([self._s, -0.5 * self._s[:7], [self._t / 50]]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._s = self.np_random.normal(size=20)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        a = -0.5 * self._s[:7] + 0.1 * np.asarray(action)
        self._s = 0.95 * self._s
        self._s[:7] += 0.1 * a
        self._t += 1
        r = -float(np.linalg.norm(self._s[:3]))
        return self._obs(), r, False, self._t >= 50, {"is_success": False}


def _make_linear(rank: int = 0) -> gym.Env:
    return _LinearEnv()


KOOP = {"state_dim": 20, "base_start": 20, "action_dim": 7, "latent_dim": 8, "hidden": 32}


@pytest.mark.parametrize("algo", ["sac", "ppo", "korr"])
def test_safetensors_round_trip(tmp_path: Path, algo: str) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.manual_seed(0)
    cfg = ResidualTrainConfig(algo=algo, net_arch=(32, 32), n_envs=1, vec_env="dummy",
                              buffer_size=100, batch_size=16, ppo_n_steps=16)
    model = build_model(cfg, DummyVecEnv([_LinearEnv]), KOOP if algo == "korr" else None)
    with torch.no_grad():  # a trained-looking (non-zero) residual head
        for p in model.policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    w, j = save_residual(model.policy, tmp_path / "res", algo=algo, train_config=cfg,
                         env={"call": "pick(x)"})
    assert w.suffix == ".safetensors" and j.suffix == ".json"
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob("*.pkl"))
    meta = json.loads(j.read_text())
    assert meta["algo"] == algo and meta["env"]["call"] == "pick(x)"
    loaded = load_residual(tmp_path / "res")
    before = model.policy.state_dict()
    after = loaded.policy.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k].cpu(), after[k]), k
    obs = np.random.default_rng(0).normal(size=(16, 28)).astype(np.float32)
    want, _ = model.policy.predict(obs, deterministic=True)
    got = loaded(obs)
    np.testing.assert_allclose(got, np.clip(want, -1, 1), atol=1e-6)
    assert np.abs(got).max() > 0  # the comparison is not between two zero policies


def test_bad_policy_files_are_refused(tmp_path: Path) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    cfg = ResidualTrainConfig(algo="sac", net_arch=(16,), n_envs=1, vec_env="dummy",
                              buffer_size=100)
    model = build_model(cfg, DummyVecEnv([_LinearEnv]))
    save_residual(model.policy, tmp_path / "a", algo="sac", train_config=cfg)
    with pytest.raises(FileNotFoundError, match="b.safetensors"):
        load_residual(tmp_path / "b")
    # weights of another architecture
    meta = json.loads((tmp_path / "a.json").read_text())
    meta["policy_kwargs"]["net_arch"] = [32]
    (tmp_path / "a.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not fit"):
        load_residual(tmp_path / "a")
    meta["format_version"] = 99
    (tmp_path / "a.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format_version"):
        load_residual(tmp_path / "a")
    with pytest.raises(ValueError, match="algo"):
        save_residual(model.policy, tmp_path / "c", algo="dqn")
    with torch.no_grad():
        model.policy.actor.mu.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        save_residual(model.policy, tmp_path / "d", algo="sac")
    with pytest.raises(ValueError, match="algo"):
        ResidualTrainConfig(algo="dqn")


@pytest.mark.parametrize("algo", ["sac", pytest.param("korr", marks=pytest.mark.slow)])
def test_tiny_training_run_on_the_residual_env(tmp_path: Path, algo: str) -> None:
    """A few hundred SB3 steps on the real env (expert base), saved, loaded, evaluated."""
    from sim.residual_env import ResidualEnvFactory

    torch.set_num_threads(1)
    factory = ResidualEnvFactory(task=str(LIBERO_BDDL / "libero_goal" /
                                          "put_the_bowl_on_the_plate.bddl"),
                                 call="pick(akita_black_bowl_1)", base="expert", max_steps=60)
    cfg = ResidualTrainConfig(algo=algo, total_steps=200, n_envs=1, vec_env="dummy",
                              learning_starts=100, batch_size=32, net_arch=(32, 32),
                              koopman={"pretrain_updates": 5, "latent_dim": 8, "hidden": 32})
    res = train_residual(factory, cfg, tmp_path / algo, env_description=factory.describe())
    assert res.path.with_suffix(".safetensors").is_file()
    pol = load_residual(res.path)
    assert pol.algo == algo and pol.config["env"]["call"] == "pick(akita_black_bowl_1)"
    if algo == "korr":
        assert res.koopman_history, "the Koopman model was trained during the run"
        assert bool(pol.policy.koopman.fitted)
    out = evaluate(factory, pol, [0])
    assert out["n"] == 1 and out["mean_len"] > 0


def test_ppo_trains_through_the_same_entry_point(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = ResidualTrainConfig(algo="ppo", total_steps=64, n_envs=2, vec_env="dummy",
                              ppo_n_steps=32, batch_size=32, ppo_n_epochs=1, net_arch=(16,))
    res = train_residual(_make_linear, cfg, tmp_path / "ppo")
    pol = load_residual(res.path)
    assert pol.algo == "ppo"
    assert pol(np.zeros(28, np.float32)).shape == (7,)


def test_checkpoint_selection_keeps_the_base_when_nothing_beats_it(tmp_path: Path) -> None:
    """With validation-based selection, a run whose checkpoints never beat the zero residual
    (the stand-in env never reports success) saves the zero residual: the base skill."""
    torch.set_num_threads(1)
    cfg = ResidualTrainConfig(algo="sac", total_steps=150, n_envs=1, vec_env="dummy",
                              learning_starts=50, batch_size=16, net_arch=(16,),
                              select_every=50, select_episodes=1)
    res = train_residual(_make_linear, cfg, tmp_path / "sel")
    assert res.extra["selected_step"] == 0
    assert [v["steps"] for v in res.extra["validation_curve"]] == [0, 50, 100, 150]
    pol = load_residual(res.path)
    obs = np.random.default_rng(0).normal(size=(8, 28)).astype(np.float32)
    assert np.array_equal(pol(obs), np.zeros((8, 7), np.float32))


@pytest.mark.parametrize("algo", ["sac", "korr"])
def test_initial_exploration_is_small_and_state_independent(algo: str) -> None:
    """SAC/KORR start with log std = log_std_init everywhere and a zero deterministic residual."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    cfg = ResidualTrainConfig(algo=algo, n_envs=1, vec_env="dummy", net_arch=(16,),
                              log_std_init=-2.0)
    model = build_model(cfg, DummyVecEnv([_make_linear]), KOOP if algo == "korr" else None)
    obs = torch.as_tensor(np.random.default_rng(1).normal(size=(16, 28)), dtype=torch.float32)
    with torch.no_grad():
        mean, log_std, _ = model.policy.actor.get_action_dist_params(obs)
    assert torch.equal(mean, torch.zeros_like(mean))
    assert torch.allclose(log_std, torch.full_like(log_std, -2.0))


def test_actor_warmup_trains_only_the_critics(tmp_path: Path) -> None:
    """During the critic warm-up the actor and the temperature stay bit for bit at their initial
    values (so the saved residual is still exactly zero) while the critics learn; after it the
    actor moves."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)

    def run(warmup: int):
        cfg = ResidualTrainConfig(algo="sac", n_envs=1, vec_env="dummy", learning_starts=50,
                                  batch_size=16, net_arch=(16,), actor_warmup=warmup)
        model = build_model(cfg, DummyVecEnv([_make_linear]))
        actor0 = {k: v.clone() for k, v in model.actor.state_dict().items()}
        critic0 = {k: v.clone() for k, v in model.critic.state_dict().items()}
        ent0 = model.log_ent_coef.detach().clone()
        model.learn(total_timesteps=150)
        same = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)  # noqa: E731
        return (same(actor0, model.actor.state_dict()), same(critic0, model.critic.state_dict()),
                torch.equal(ent0, model.log_ent_coef.detach()), model)

    actor_same, critic_same, ent_same, model = run(warmup=1000)
    assert actor_same and ent_same and not critic_same
    obs = np.random.default_rng(0).normal(size=(8, 28)).astype(np.float32)
    act, _ = model.predict(obs, deterministic=True)
    assert np.array_equal(act, np.zeros((8, 7), np.float32))
    actor_same, critic_same, ent_same, _ = run(warmup=0)
    assert not actor_same and not critic_same and not ent_same
    with pytest.raises(ValueError, match="actor_warmup"):
        ResidualTrainConfig(actor_warmup=-1)


def test_koopman_batches_stay_one_step_with_n_step_returns() -> None:
    """SAC's n-step buffer returns s' up to n steps ahead; the Koopman model's batches
    (one_step_sample) are the stored one-step transitions. The stand-in env's last observation
    entry is t/50, so a one-step transition advances it by exactly 1/50."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from robot_skills.policies.korr import one_step_sample

    torch.set_num_threads(1)
    cfg = ResidualTrainConfig(algo="korr", n_envs=1, vec_env="dummy", learning_starts=1000,
                              batch_size=16, net_arch=(16,), n_steps=3)
    model = build_model(cfg, DummyVecEnv([_make_linear]), KOOP)
    model.learn(total_timesteps=200)  # below learning_starts: collection only
    rb = model.replay_buffer
    nstep = rb.sample(256)
    dt = (nstep.next_observations[:, -1] - nstep.observations[:, -1]).numpy()
    assert np.isclose(dt, 3 / 50, atol=1e-6).mean() > 0.5, "n-step samples look n steps ahead"
    one = one_step_sample(rb, 256)
    dt1 = (one.next_observations[:, -1] - one.observations[:, -1]).numpy()
    assert np.allclose(dt1, 1 / 50, atol=1e-6)


def test_reuse_matches_the_training_config(tmp_path: Path) -> None:
    """`reuse=true` evaluates a saved policy only when its JSON records the same training and env
    config; the Koopman block counts for KORR only."""
    from dataclasses import replace

    from robot_skills.training.residual import _trained_with

    class _Factory:
        def describe(self) -> dict:
            return {"task": "stand_in", "scale": 0.1}

    torch.set_num_threads(1)
    kw = dict(n_envs=1, vec_env="dummy", learning_starts=20, batch_size=8, net_arch=(8,),
              total_steps=40, koopman={"pretrain_updates": 2, "latent_dim": 4, "hidden": 8})
    for algo in ("sac", "korr"):
        cfg = ResidualTrainConfig(algo=algo, **kw)
        res = train_residual(_make_linear, cfg, tmp_path / algo,
                             env_description=_Factory().describe())
        assert _trained_with(res.path, cfg, _Factory())
        assert not _trained_with(res.path, replace(cfg, total_steps=80), _Factory())
        other_koopman = replace(cfg, koopman={**kw["koopman"], "norm_min_std": 0.05})
        assert _trained_with(res.path, other_koopman, _Factory()) is (algo == "sac")
    assert not _trained_with(tmp_path / "missing", cfg, _Factory())


def test_experiment_applies_per_skill_env_keys(tmp_path: Path) -> None:
    """`skills[i].env` replaces the `env` block's keys for that call (`open` runs with sparse
    reward only in the documented runs); keys that would rebind the call are refused."""
    from omegaconf import OmegaConf

    from robot_skills.training.residual import load_experiment_config, run_experiment

    skills = ("skills=[{task: put_the_bowl_on_the_plate, call: 'pick(akita_black_bowl_1)'}, "
              "{task: open_the_middle_drawer_of_the_cabinet, "
              "call: 'open(wooden_cabinet_1_middle_region)', env: {shaping: 0.0}}]")
    cfg = load_experiment_config(["library=expert", "methods=[]", f"out_dir={tmp_path}",
                                  "report=null", "eval.episodes=1", "env.max_steps=3",
                                  f"env.suite_path={LIBERO_BDDL / 'libero_goal'}", skills])
    res = run_experiment(cfg)
    shaping = {row["call"]: row["env"]["shaping"] for row in res["skills"]}
    assert shaping == {"pick(akita_black_bowl_1)": 1.0,
                       "open(wooden_cabinet_1_middle_region)": 0.0}
    assert json.loads((tmp_path / "results.json").read_text())["skills"][1]["env"]["shaping"] == 0
    OmegaConf.set_struct(cfg, False)
    cfg.skills[0].env = {"call": "pick(plate_1)"}
    with pytest.raises(ValueError, match=r"may not set \['call'\]"):
        run_experiment(cfg)
