"""Residual refinement of a frozen skill with stable-baselines3 (SAC by default, PPO, or KORR).

The environment is passed in as a factory ``make_env(rank) -> gymnasium.Env`` (in this project
:class:`sim.residual_env.ResidualEnvFactory`, built by Hydra from ``configs/residual/``; this
module never imports ``sim``). Its action is the residual ``delta`` in ``[-1, 1]^7`` that the env
adds, scaled, to the frozen skill's action.

* :func:`train_residual` — SB3 ``SAC`` / ``PPO`` / ``SAC`` + :class:`~robot_skills.policies.korr.KORRPolicy`
  on a vectorised env (SB3 ``SubprocVecEnv``, or ``DummyVecEnv`` in-process), the residual head
  zero-initialised (:func:`zero_init_residual_head`) so the untrained residual is exactly 0 and the
  first deterministic rollout *is* the base skill. KORR adds
  :class:`~robot_skills.policies.korr.KoopmanCallback`.
  With ``select_every > 0`` the deterministic policy is validated on held-out seeds during
  training (and at step 0, where it is the base skill) and the best weights are kept.
* :class:`ResidualSkill` — base skill + trained residual as a ``SkillPolicy`` for the executor.
* :func:`save_residual` / :func:`load_residual` — the policy's ``state_dict`` in safetensors plus a
  JSON config (algorithm, spaces, architecture, Koopman config, env description). SB3's own
  ``save`` (a zip of pickles) is never used and never loaded.
* :func:`evaluate` — seeded deterministic episodes of one env with a residual (or none: the base
  skill), success rate and lengths.
* :func:`run_experiment` / :func:`main` (``rs-residual``) — the base-vs-SB3-vs-KORR table under
  perturbation, printed and written to ``docs/residual.md``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from robot_skills.policies.korr import KoopmanCallback, KoopmanConfig, KORRPolicy
from robot_skills.utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from robot_skills.utils.files import read_bounded

__all__ = ["ResidualTrainConfig", "ResidualPolicy", "ResidualSkill", "train_residual", "save_residual",
           "load_residual", "evaluate", "zero_init_residual_head", "init_sac_exploration",
           "run_experiment", "main", "ALGOS", "FORMAT_VERSION"]

ALGOS = ("sac", "ppo", "korr")
FORMAT_VERSION = 1
EnvFactory = Callable[[int], gym.Env]
MAX_WEIGHTS_BYTES = 256 << 20
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class ResidualTrainConfig:
    """How a residual policy is trained.

    Attributes:
        algo: ``sac`` (default), ``ppo`` or ``korr`` (SAC + Koopman-conditioned features).
        total_steps: environment steps (all envs together).
        n_envs: parallel environments.
        vec_env: ``subproc`` (SB3 ``SubprocVecEnv``, one process per env) or ``dummy``
            (in-process, for tests); ``subproc`` with ``n_envs=1`` runs in-process too.
        seed: seeds SB3 (networks, exploration) and the envs (``seed + rank``).
        learning_rate, batch_size, buffer_size, learning_starts, gamma, tau, train_freq,
            gradient_steps, ent_coef: SAC's hyper-parameters (``ent_coef="auto_0.01"``: learned
            temperature starting at 0.01; at 0.1 the entropy bonus outweighed the task reward and
            the residual drifted away from the base skill, docs/residual.md).
        ppo_n_steps, ppo_n_epochs: PPO's rollout length per env and epochs per update.
        net_arch: hidden layers of actor and critics.
        log_std_init: initial log std of the Gaussian, in residual units before the ``tanh``
            (SAC, KORR: the bias of the actor's log-std layer, its weights zeroed, so the first
            exploration is a small state-independent noise around the base skill; PPO: the
            policy's log-std parameter).
        actor_warmup: SAC/KORR only: environment steps after ``learning_starts`` during which
            only the critics learn; the actor (its residual mean and log std) and the entropy
            temperature stay at their initial values, so the residual stays exactly zero in the
            deterministic policy until the critics have fitted the base skill's returns
            (the critic warm-up of residual RL, Ankile et al. 2025, arXiv:2509.19301). 0: off.
        actor_lr_scale: SAC/KORR only: the actor's learning rate is ``learning_rate`` times this
            (a slower actor than critic, as TD3's delayed policy updates; 1: SB3's default).
        n_steps: SAC/KORR only: n-step returns in the TD target (SB3's n-step replay; 1: the
            one-step target), which carries the sparse success back ``n`` steps per update.
        koopman: :class:`~robot_skills.policies.korr.KoopmanConfig` fields (``korr`` only).
        select_every: > 0: every this many environment steps, and once before training (the
            zero residual, i.e. the base skill), evaluate the deterministic policy on
            ``select_episodes`` *validation* seeds ``select_seed, select_seed + 1, ...`` and keep
            the best weights (ties keep the earlier); the saved policy is the best one. 0: save
            the last weights.
        torch_threads: intra-op threads of torch in the training process.

    Raises:
        ValueError: unknown algorithm or vec_env, non-positive sizes.
    """

    algo: str = "sac"
    total_steps: int = 20_000
    n_envs: int = 2
    vec_env: str = "subproc"
    seed: int = 0
    learning_rate: float = 3e-4
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 1000
    gamma: float = 0.99
    tau: float = 0.005
    train_freq: int = 1
    gradient_steps: int = 1
    ent_coef: str = "auto_0.01"
    ppo_n_steps: int = 256
    ppo_n_epochs: int = 5
    net_arch: tuple[int, ...] = (256, 256)
    log_std_init: float = -1.0
    actor_warmup: int = 0
    actor_lr_scale: float = 1.0
    n_steps: int = 1
    koopman: Mapping[str, Any] = field(default_factory=dict)
    select_every: int = 0
    select_episodes: int = 10
    select_seed: int = 20_000
    torch_threads: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "net_arch", tuple(int(v) for v in self.net_arch))
        object.__setattr__(self, "koopman", dict(self.koopman or {}))
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.vec_env not in ("subproc", "dummy"):
            raise ValueError(f"vec_env must be 'subproc' or 'dummy', got {self.vec_env!r}")
        if self.select_every < 0:
            raise ValueError(f"select_every must be >= 0, got {self.select_every}")
        for k in ("total_steps", "n_envs", "batch_size", "buffer_size", "train_freq",
                  "ppo_n_steps", "ppo_n_epochs", "torch_threads", "select_episodes", "n_steps"):
            if int(getattr(self, k)) <= 0:
                raise ValueError(f"ResidualTrainConfig.{k} must be > 0, got {getattr(self, k)}")
        if self.actor_warmup < 0 or not 0 < self.actor_lr_scale <= 1e3:
            raise ValueError(f"actor_warmup must be >= 0 and 0 < actor_lr_scale <= 1e3, got "
                             f"{self.actor_warmup}, {self.actor_lr_scale}")
        if self.learning_starts < 0 or not 0 < self.gamma <= 1 or self.learning_rate <= 0:
            raise ValueError("ResidualTrainConfig: learning_starts >= 0, 0 < gamma <= 1 and "
                             f"learning_rate > 0 needed, got {self.learning_starts}, "
                             f"{self.gamma}, {self.learning_rate}")
        if not self.net_arch or min(self.net_arch) <= 0:
            raise ValueError(f"net_arch must list positive widths, got {self.net_arch}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResidualTrainConfig:
        """Build from a mapping; unknown keys are refused (named)."""
        d = dict(d)
        bad = sorted(set(d) - set(cls.__dataclass_fields__))
        if bad:
            raise ValueError(f"unknown residual training key(s) {bad}; known: "
                             f"{sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        d = asdict(self)
        d["net_arch"] = list(self.net_arch)
        d["koopman"] = dict(self.koopman)
        return d


# ---------------------------------------------------------------------------------- policies


def zero_init_residual_head(policy: nn.Module) -> None:
    """Zero the weights and bias of the layer that outputs the action mean.

    SAC (and KORR): ``policy.actor.mu``; PPO: ``policy.action_net``. With a zero mean the
    deterministic residual is ``tanh(0) = 0`` (SAC) or ``0`` (PPO): the untrained residual policy
    executes the base skill exactly (Silver et al. 2018 initialise the residual the same way).

    Raises:
        TypeError: for a policy with neither layer.
    """
    head = getattr(getattr(policy, "actor", None), "mu", None)
    if head is None:
        head = getattr(policy, "action_net", None)
    if not isinstance(head, nn.Linear):
        raise TypeError(f"no residual head (actor.mu or action_net Linear) on {type(policy)}")
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()


def _policy_kwargs(cfg: ResidualTrainConfig, koopman: Mapping[str, Any] | None) -> dict[str, Any]:
    if cfg.algo == "ppo":
        return {"net_arch": {"pi": list(cfg.net_arch), "vf": list(cfg.net_arch)},
                "log_std_init": float(cfg.log_std_init)}
    kw: dict[str, Any] = {"net_arch": list(cfg.net_arch)}
    if cfg.algo == "korr":
        kw["koopman_kwargs"] = dict(koopman or {})
    return kw


def _policy_class(algo: str) -> type:
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.sac.policies import SACPolicy

    return {"sac": SACPolicy, "ppo": ActorCriticPolicy, "korr": KORRPolicy}[algo]


class ResidualPolicy:
    """A trained residual: observation -> deterministic residual action ``delta``.

    Args:
        policy: an SB3 policy (``SACPolicy``, ``KORRPolicy`` or ``ActorCriticPolicy``), CPU, eval.
        config: the JSON config it was saved with (see :func:`save_residual`).
    """

    def __init__(self, policy: nn.Module, config: Mapping[str, Any]) -> None:
        self.policy = policy.to("cpu")
        self.policy.set_training_mode(False)
        self.config = dict(config)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """``(obs_dim,)`` or ``(N, obs_dim)`` float32 -> ``(7,)`` / ``(N, 7)`` float32 in [-1, 1].

        Raises:
            ValueError: on a non-finite observation or output.
        """
        x = np.asarray(obs, np.float32)
        if not np.isfinite(x).all():
            raise ValueError("residual policy: observation holds NaN/inf")
        with torch.no_grad():
            a, _ = self.policy.predict(x, deterministic=True)
        a = np.clip(np.asarray(a, np.float32), -1.0, 1.0)
        if not np.isfinite(a).all():
            raise ValueError("residual policy produced NaN/inf")
        return a

    @property
    def algo(self) -> str:
        """``sac``, ``ppo`` or ``korr``."""
        return str(self.config["algo"])


class ResidualSkill:
    """A frozen skill plus a trained residual, as a
    :class:`~robot_skills.execution.interfaces.SkillPolicy` the executor can run.

    Per step it builds the residual env's observation (``skill_features(obs, args)``, the base
    action normalised, the elapsed fraction of ``max_steps``) and returns
    ``clip(a_base + scale * residual(obs), limits)`` in robot units — the action the residual env
    executes without perturbation.

    Args:
        base: the frozen skill policy (``reset(args, world)``, ``act(obs) -> Action``).
        residual: the trained residual (:func:`load_residual`).
        max_steps: the call's time limit in control steps (as the env it was trained in).
        scale: the residual scale it was trained with (``config["env"]["scale"]`` by default).
        action_limits: per-step bounds (``max_delta_pos`` m, ``max_delta_rot`` rad).

    Raises:
        ValueError: ``max_steps < 1`` or a scale outside ``(0, 1]``.
    """

    def __init__(self, base: Any, residual: Callable[[np.ndarray], np.ndarray], max_steps: int,
                 scale: float | None = None, action_limits: Any = None) -> None:
        from robot_skills.robot import ActionLimits

        cfg = getattr(residual, "config", {}) or {}
        self.scale = float(scale if scale is not None else cfg.get("env", {}).get("scale", 0.1))
        if not 0.0 < self.scale <= 1.0 or int(max_steps) < 1:
            raise ValueError(f"ResidualSkill: scale in (0, 1] and max_steps >= 1 needed, got "
                             f"{self.scale}, {max_steps}")
        lim = action_limits or ActionLimits()
        self._unit = np.array([lim.max_delta_pos] * 3 + [lim.max_delta_rot] * 3 + [1.0])
        self.base, self.residual, self.max_steps = base, residual, int(max_steps)
        self.name = getattr(base, "name", "residual")
        self._args: tuple[str, ...] = ()
        self._t = 0

    def reset(self, args: Sequence[str], world: Any = None) -> None:
        """Start a call (resets the base skill too)."""
        self._args = tuple(args)
        self._t = 0
        self.base.reset(self._args, world)

    def observation(self, obs: Any, base_phys: np.ndarray) -> np.ndarray:
        """The residual env's ``(28,)`` float32 observation for ``obs`` and the base action."""
        from robot_skills.policies.features import skill_features

        f = skill_features(obs, self._args)
        x = np.concatenate([f, base_phys / self._unit, [min(1.0, self._t / self.max_steps)]])
        return np.clip(x, -1e3, 1e3).astype(np.float32)

    def act(self, obs: Any) -> Any:
        """The refined action (base frame, m / rad / gripper)."""
        from robot_skills.robot import Action

        a = self.base.act(obs)
        phys = np.clip(np.concatenate([np.asarray(a.delta_pos, np.float64),
                                       np.asarray(a.delta_rot, np.float64), [float(a.gripper)]]),
                       -self._unit, self._unit)
        delta = np.asarray(self.residual(self.observation(obs, phys)), np.float64).reshape(-1)
        self._t += 1
        out = np.clip(phys + self.scale * np.clip(delta, -1, 1) * self._unit,
                      -self._unit, self._unit)
        return Action(out[:3], out[3:6], float(out[6]))


def _box_to_json(space: spaces.Box) -> dict[str, Any]:
    return {"shape": list(space.shape), "low": float(np.min(space.low)),
            "high": float(np.max(space.high))}


def _box_from_json(d: Mapping[str, Any]) -> spaces.Box:
    return spaces.Box(float(d["low"]), float(d["high"]), shape=tuple(int(v) for v in d["shape"]),
                      dtype=np.float32)


def save_residual(policy: nn.Module, path: str | os.PathLike, *, algo: str,
                  train_config: ResidualTrainConfig | None = None,
                  env: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<path>.safetensors`` (the policy's ``state_dict``) and ``<path>.json`` atomically.

    The JSON holds ``format_version``, ``algo``, ``observation_space`` / ``action_space`` (flat
    Boxes), ``policy_kwargs`` (architecture, Koopman config) and the free-form ``train`` /
    ``env`` / ``extra`` records. Nothing is pickled.

    Raises:
        ValueError: unknown ``algo``, non-Box spaces, or a weight holding NaN/inf.
    """
    if algo not in ALGOS:
        raise ValueError(f"algo must be one of {ALGOS}, got {algo!r}")
    obs_space, act_space = policy.observation_space, policy.action_space
    if not (isinstance(obs_space, spaces.Box) and isinstance(act_space, spaces.Box)):
        raise ValueError("save_residual handles flat Box observation and action spaces only")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in policy.state_dict().items()}
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"residual policy weight {k!r} holds NaN/inf; not saved")
    tcfg = train_config or ResidualTrainConfig(algo=algo)
    koop = None
    if algo == "korr":
        koop = policy.koopman.cfg.to_dict()
    cfg = {"format_version": FORMAT_VERSION, "algo": algo,
           "observation_space": _box_to_json(obs_space), "action_space": _box_to_json(act_space),
           "policy_kwargs": _policy_kwargs(replace(tcfg, algo=algo), koop),
           "train": tcfg.to_dict(), "env": dict(env or {}), "extra": dict(extra or {})}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    w = atomic_write_bytes(p.with_suffix(".safetensors"), st_save(state))
    j = atomic_write_json(p.with_suffix(".json"), cfg)
    return w, j


def load_residual(path: str | os.PathLike) -> ResidualPolicy:
    """Load ``<path>.safetensors`` + ``<path>.json`` written by :func:`save_residual`.

    Raises:
        FileNotFoundError: a file is missing. ValueError: unknown format version or algorithm,
            weights that do not fit the architecture (missing/unexpected keys, shapes), or
            NaN/inf weights — each naming the file.
    """
    p = Path(path)
    wpath, jpath = p.with_suffix(".safetensors"), p.with_suffix(".json")
    for f in (wpath, jpath):
        if not f.is_file():
            raise FileNotFoundError(f"residual policy file {f} does not exist")
    cfg = json.loads(read_bounded(jpath, MAX_CONFIG_BYTES).decode("utf-8"))
    if cfg.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{jpath}: format_version {cfg.get('format_version')!r}, this code "
                         f"reads {FORMAT_VERSION}")
    algo = cfg.get("algo")
    if algo not in ALGOS:
        raise ValueError(f"{jpath}: algo must be one of {ALGOS}, got {algo!r}")
    obs_space = _box_from_json(cfg["observation_space"])
    act_space = _box_from_json(cfg["action_space"])
    policy = _policy_class(algo)(obs_space, act_space, lambda _: 0.0,
                                 **dict(cfg.get("policy_kwargs", {})))
    state = st_load(read_bounded(wpath, MAX_WEIGHTS_BYTES))
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"{wpath}: weight {k!r} holds NaN/inf")
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{wpath}: weights do not fit the {algo} architecture of {jpath}: "
                         f"{e}") from e
    return ResidualPolicy(policy, cfg)


# ---------------------------------------------------------------------------------- training


def make_vec_env(make_env: EnvFactory, n_envs: int, kind: str = "subproc", seed: int = 0):
    """An SB3 VecEnv of ``n_envs`` copies (``VecMonitor``-wrapped: episode return, length and
    ``is_success`` are logged), seeded ``seed + rank``.

    ``subproc`` uses SB3's ``SubprocVecEnv`` (``forkserver`` start method); ``dummy`` or
    ``n_envs == 1`` steps in this process.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    fns = [_RankedFactory(make_env, i) for i in range(int(n_envs))]
    if kind == "subproc" and n_envs > 1:
        venv = SubprocVecEnv(fns, start_method="forkserver")
    else:
        venv = DummyVecEnv(fns)
    venv.seed(int(seed))
    return VecMonitor(venv, info_keywords=("is_success",))


@dataclass(frozen=True)
class _RankedFactory:
    make_env: EnvFactory
    rank: int

    def __call__(self) -> gym.Env:
        return self.make_env(self.rank)


class _ProgressLog:
    """Episode outcomes seen during training (SB3 callback, built lazily to keep imports light)."""

    @staticmethod
    def make(every: int, verbose: bool):
        from stable_baselines3.common.callbacks import BaseCallback

        class _CB(BaseCallback):
            def __init__(self) -> None:
                super().__init__(0)
                self.curve: list[dict[str, float]] = []
                self._succ: list[float] = []
                self._next = every
                self._t0 = time.perf_counter()

            def _on_step(self) -> bool:
                for info, done in zip(self.locals.get("infos", []), self.locals.get("dones", [])):
                    if done:
                        self._succ.append(float(bool(info.get("is_success", False))))
                if self.num_timesteps >= self._next:
                    self._next += every
                    recent = self._succ[-20:]
                    row = {"steps": int(self.num_timesteps), "episodes": len(self._succ),
                           "success_last20": float(np.mean(recent)) if recent else None,
                           "wall_s": time.perf_counter() - self._t0}
                    self.curve.append(row)
                    if verbose:
                        rate = row["success_last20"]
                        print(f"  [{row['steps']} steps, {row['episodes']} episodes] training "
                              f"success (last 20 episodes, stochastic) "
                              f"{'-' if rate is None else f'{rate:.2f}'}, {row['wall_s']:.0f} s",
                              flush=True)
                return True

        return _CB()


def init_sac_exploration(policy: nn.Module, log_std_init: float) -> None:
    """Make a SAC actor's initial Gaussian state-independent with log std ``log_std_init``.

    SB3's SAC actor outputs ``log_std`` from a linear layer (``policy.actor.log_std``); its
    weights are zeroed and its bias set to ``log_std_init`` (pre-``tanh`` residual units), so the
    first stochastic residuals are ``tanh(N(0, exp(log_std_init)^2))`` everywhere instead of a
    random, state-dependent spread near 1. The layer stays trainable.

    Raises:
        TypeError: for a policy without that layer (PPO, or SAC with gSDE).
    """
    layer = getattr(getattr(policy, "actor", None), "log_std", None)
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"no SAC log-std layer (actor.log_std Linear) on {type(policy)}")
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(float(log_std_init))


def _warmup_sac_class():
    """SB3 ``SAC`` whose actor and temperature do not move during the critic warm-up."""
    from stable_baselines3 import SAC

    class WarmupSAC(SAC):
        """SAC with ``actor_warmup`` environment steps of critic-only updates and an actor
        learning rate ``actor_lr_scale`` times the critic's.

        During the warm-up the learning rates of the actor's and the temperature's optimisers are
        0 (Adam's step is then exactly 0), so the policy stays the zero-initialised residual.
        """

        actor_warmup: int = 0
        actor_lr_scale: float = 1.0

        def _update_learning_rate(self, optimizers: Any) -> None:
            super()._update_learning_rate(optimizers)
            for group in self.actor.optimizer.param_groups:
                group["lr"] *= self.actor_lr_scale
            if self.num_timesteps < self.learning_starts + self.actor_warmup:
                frozen = [self.actor.optimizer]
                if self.ent_coef_optimizer is not None:
                    frozen.append(self.ent_coef_optimizer)
                for opt in frozen:
                    for group in opt.param_groups:
                        group["lr"] = 0.0

    return WarmupSAC


def build_model(cfg: ResidualTrainConfig, venv: Any, koopman: Mapping[str, Any] | None = None):
    """The SB3 model for ``cfg.algo`` on ``venv``, residual head zero-initialised.

    SAC and KORR: the actor's log-std layer starts at ``cfg.log_std_init``
    (:func:`init_sac_exploration`), the actor waits ``cfg.actor_warmup`` steps after
    ``learning_starts`` for the critics and then learns at ``cfg.actor_lr_scale`` times their
    rate; the TD target uses ``cfg.n_steps``-step returns.
    """
    from stable_baselines3 import PPO

    kw = _policy_kwargs(cfg, koopman)
    if cfg.algo == "ppo":
        model = PPO("MlpPolicy", venv, learning_rate=cfg.learning_rate, n_steps=cfg.ppo_n_steps,
                    batch_size=cfg.batch_size, n_epochs=cfg.ppo_n_epochs, gamma=cfg.gamma,
                    policy_kwargs=kw, seed=cfg.seed, device="cpu", verbose=0)
    else:
        policy = KORRPolicy if cfg.algo == "korr" else "MlpPolicy"
        sac = _warmup_sac_class()
        model = sac(policy, venv, learning_rate=cfg.learning_rate, buffer_size=cfg.buffer_size,
                    learning_starts=cfg.learning_starts, batch_size=cfg.batch_size,
                    tau=cfg.tau, gamma=cfg.gamma, train_freq=cfg.train_freq,
                    gradient_steps=cfg.gradient_steps, ent_coef=cfg.ent_coef,
                    n_steps=int(cfg.n_steps), policy_kwargs=kw, seed=cfg.seed, device="cpu",
                    verbose=0)
        model.actor_warmup = int(cfg.actor_warmup)
        model.actor_lr_scale = float(cfg.actor_lr_scale)
        init_sac_exploration(model.policy, cfg.log_std_init)
    zero_init_residual_head(model.policy)
    return model


def _make_selector(make_env: EnvFactory, cfg: ResidualTrainConfig, verbose: bool):
    """SB3 callback: validation episodes every ``cfg.select_every`` steps, best weights kept."""
    import copy

    from stable_baselines3.common.callbacks import BaseCallback

    seeds = [cfg.select_seed + i for i in range(cfg.select_episodes)]

    class _Select(BaseCallback):
        def __init__(self) -> None:
            super().__init__(0)
            self.curve: list[dict[str, float]] = []
            self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None
            self._next = 0

        def _check(self) -> None:
            pol = self.model.policy
            rate = evaluate(make_env, ResidualPolicy(pol, {"algo": cfg.algo}), seeds)["rate"]
            pol.set_training_mode(True)
            step = int(self.num_timesteps)
            self.curve.append({"steps": step, "validation_success": rate})
            if verbose:
                print(f"  [{step} steps] validation success (deterministic, "
                      f"{len(seeds)} seeds) {rate:.2f}", flush=True)
            if self.best is None or rate > self.best[0]:
                self.best = (rate, step, copy.deepcopy(pol.state_dict()))

        def _on_training_start(self) -> None:
            self._check()  # the zero residual: the base skill
            self._next = cfg.select_every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self._next:
                self._next += cfg.select_every
                self._check()
            return True

        def _on_training_end(self) -> None:
            if self.curve and self.curve[-1]["steps"] < self.num_timesteps:
                self._check()

    return _Select()


@dataclass
class TrainResult:
    """What :func:`train_residual` produced: the policy files, the training curve, wall time."""

    path: Path
    curve: list[dict[str, float]]
    wall_s: float
    koopman_history: list[tuple[int, dict[str, float]]]
    extra: dict[str, Any] = field(default_factory=dict)


def train_residual(make_env: EnvFactory, cfg: ResidualTrainConfig, out: str | os.PathLike, *,
                   env_description: Mapping[str, Any] | None = None,
                   log_every: int = 2000, verbose: bool = False) -> TrainResult:
    """Train a residual policy and save it to ``<out>.safetensors`` + ``<out>.json``.

    Args:
        make_env: ``make_env(rank) -> gymnasium.Env`` whose action is the residual (picklable for
            ``subproc``).
        cfg: the training config.
        out: the output path stem.
        env_description: recorded in the JSON (task, call, base, perturbation...).
        log_every: environment steps between training-curve points.

    Raises:
        ValueError: from the config; errors of the env factory propagate.
    """
    torch.set_num_threads(int(cfg.torch_threads))
    venv = make_vec_env(make_env, cfg.n_envs, cfg.vec_env, cfg.seed)
    try:
        koop = None
        if cfg.algo == "korr":
            from robot_skills.policies.features import FEATURE_DIM

            base = {"state_start": 0, "state_dim": FEATURE_DIM, "base_start": FEATURE_DIM,
                    "action_dim": int(venv.action_space.shape[0]),
                    "residual_scale": float((env_description or {}).get("scale", 0.1)),
                    "batch_size": cfg.batch_size}
            koop = KoopmanConfig(**{**base, **dict(cfg.koopman)}).to_dict()
        model = build_model(cfg, venv, koop)
        progress = _ProgressLog.make(log_every, verbose)
        callbacks = [progress]
        kcb = None
        if cfg.algo == "korr":
            kcb = KoopmanCallback(learning_starts=cfg.learning_starts, verbose=int(verbose))
            callbacks.append(kcb)
        sel = _make_selector(make_env, cfg, verbose) if cfg.select_every > 0 else None
        if sel is not None:
            callbacks.append(sel)
        t0 = time.perf_counter()
        model.learn(total_timesteps=int(cfg.total_steps), callback=callbacks)
        wall = time.perf_counter() - t0
    finally:
        venv.close()
    extra: dict[str, Any] = {"curve": progress.curve, "wall_s": wall}
    if sel is not None and sel.best is not None:
        model.policy.load_state_dict(sel.best[2])
        extra.update(selected_step=sel.best[1], selected_validation_success=sel.best[0],
                     validation_curve=sel.curve)
        if verbose:
            print(f"  selected the weights of step {sel.best[1]} (validation success "
                  f"{sel.best[0]:.2f}; step 0 = the base skill)", flush=True)
    w, _ = save_residual(model.policy, out, algo=cfg.algo, train_config=cfg, env=env_description,
                         extra=extra)
    return TrainResult(w.with_suffix(""), progress.curve, wall,
                       kcb.history if kcb is not None else [], extra)


# ---------------------------------------------------------------------------------- evaluation


def evaluate(make_env: EnvFactory, residual: Callable[[np.ndarray], np.ndarray] | None,
             seeds: Sequence[int]) -> dict[str, Any]:
    """Deterministic episodes of one env, one per seed, with ``residual`` (None = zero = the base).

    Returns:
        ``n``, ``successes``, ``rate``, ``mean_len`` (steps), ``per_seed`` (seed -> success),
        ``invalid`` (episodes whose simulation went unstable; counted as not successful and
        listed so they are never hidden).
    """
    env = make_env(0)
    per_seed: dict[int, bool] = {}
    lengths, invalid = [], []
    zero = np.zeros(env.action_space.shape, np.float32)
    try:
        for s in seeds:
            obs, _ = env.reset(seed=int(s))
            n = 0
            while True:
                a = residual(obs) if residual is not None else zero
                obs, _, term, trunc, info = env.step(a)
                n += 1
                if term or trunc:
                    break
            per_seed[int(s)] = bool(info.get("success", False))
            if "episode_invalid" in info:
                invalid.append(int(s))
            lengths.append(n)
    finally:
        env.close()
    k = sum(per_seed.values())
    return {"n": len(per_seed), "successes": k, "rate": k / max(1, len(per_seed)),
            "mean_len": float(np.mean(lengths)) if lengths else float("nan"),
            "per_seed": {str(s): v for s, v in per_seed.items()}, "invalid": invalid}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95 % interval of ``k`` successes in ``n`` trials."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


# ---------------------------------------------------------------------------------- experiment


def _trained_with(stem: Path, cfg: ResidualTrainConfig, factory: Any) -> bool:
    """True when ``stem`` holds a policy trained with ``cfg`` on the env ``factory`` describes
    (the ``koopman`` block is compared for KORR only: the other algorithms never read it)."""
    j = stem.with_suffix(".json")
    if not (j.is_file() and stem.with_suffix(".safetensors").is_file()):
        return False
    meta = json.loads(read_bounded(j, MAX_CONFIG_BYTES).decode("utf-8"))
    env = json.loads(json.dumps(factory.describe()))
    want, got = cfg.to_dict(), meta.get("train")
    if not isinstance(got, dict):
        return False
    if cfg.algo != "korr":
        want, got = {**want, "koopman": None}, {**got, "koopman": None}
    return got == want and meta.get("env") == env


def _config_dir() -> Path:
    env = os.environ.get("ROBOT_SKILLS_CONFIG_DIR")
    d = (Path(env) if env else Path(__file__).resolve().parents[2] / "configs") / "residual"
    if not (d / "default.yaml").is_file():
        raise FileNotFoundError(f"no residual/default.yaml under {d.parent}; set "
                                "ROBOT_SKILLS_CONFIG_DIR to the configs directory")
    return d


def load_experiment_config(overrides: Sequence[str] = ()) -> Any:
    """Compose ``configs/residual/default.yaml`` with Hydra ``key=value`` overrides.

    Raises:
        hydra.errors.ConfigCompositionException: unknown key or bad override.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(_config_dir()), version_base="1.3"):
        cfg = compose(config_name="default", overrides=list(overrides))
    OmegaConf.set_struct(cfg, True)
    return cfg


def _fmt_rate(r: Mapping[str, Any]) -> str:
    lo, hi = wilson(int(r["successes"]), int(r["n"]))
    return f"{100 * r['rate']:.0f} % ({r['successes']}/{r['n']}; CI {100 * lo:.0f}–{100 * hi:.0f})"


def format_table(results: Mapping[str, Any]) -> str:
    """Markdown table: one row per skill, base (nominal, perturbed), SB3 SAC and KORR residuals."""
    methods = list(results["methods"])
    head = ["skill call (task)", "base, nominal", "base, perturbed",
            *[f"{m.upper()} residual, perturbed" for m in methods]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in results["skills"]:
        cells = [f"`{row['call']}` ({row['task']})", _fmt_rate(row["base_nominal"]),
                 _fmt_rate(row["base_perturbed"])]
        cells += [_fmt_rate(row["residual"][m]["eval"]) if m in row["residual"] else "—"
                  for m in methods]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_experiment(cfg: Any) -> dict[str, Any]:
    """For every configured skill: evaluate the frozen base (nominal and perturbed), train each
    residual method on the perturbed env, evaluate it on the same seeds; write
    ``<out_dir>/results.json`` and the report (``cfg.report``), print the table.

    Raises:
        ValueError: an unknown method; errors of the env factory (missing library, task).
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from robot_skills.utils.version import code_version

    plain = OmegaConf.to_container(cfg, resolve=True)
    methods = [str(m) for m in plain["methods"]]
    bad = [m for m in methods if m not in ALGOS]
    if bad:
        raise ValueError(f"methods must be among {ALGOS}, got {bad}")
    out = Path(plain["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(plain["eval"]["seed"]) + i for i in range(int(plain["eval"]["episodes"]))]
    train_base = ResidualTrainConfig.from_dict(plain["train"])
    train_seeds = [int(v) for v in (plain.get("train_seeds") or [train_base.seed])]
    results: dict[str, Any] = {"methods": methods, "seeds": seeds, "config": plain,
                               "train_seeds": train_seeds,
                               "code_version": code_version(), "skills": []}
    t_all = time.perf_counter()
    for sk in plain["skills"]:
        call, task = str(sk["call"]), str(sk["task"])
        tag = call.split("(")[0]
        env_kw = dict(sk.get("env") or {})  # per-skill env keys (e.g. shaping), named in config
        clash = sorted(set(env_kw) & {"task", "call", "setup", "perturbation", "_target_"})
        if clash:
            raise ValueError(f"skills[{call}].env may not set {clash}")
        nominal = instantiate(cfg.env, task=task, call=call, setup=list(sk.get("setup", [])),
                              perturbation=None, _convert_="all", **env_kw)
        perturbed = instantiate(cfg.env, task=task, call=call, setup=list(sk.get("setup", [])),
                                perturbation=plain["perturbation"], _convert_="all", **env_kw)
        print(f"== {call} in {task} (base: {plain['env']['base']})", flush=True)
        row: dict[str, Any] = {"call": call, "task": task, "residual": {},
                               "env": perturbed.describe()}
        t0 = time.perf_counter()
        row["base_nominal"] = evaluate(nominal, None, seeds)
        row["base_perturbed"] = evaluate(perturbed, None, seeds)
        print(f"  base: nominal {_fmt_rate(row['base_nominal'])}, perturbed "
              f"{_fmt_rate(row['base_perturbed'])} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for m in methods:
            runs = []
            for ts in train_seeds:
                tcfg = replace(train_base, algo=m, seed=ts)
                stem = out / f"{tag}_{m}_s{ts}"
                reused = bool(plain.get("reuse")) and _trained_with(stem, tcfg, perturbed)
                if reused:
                    print(f"  reusing {stem}.safetensors ({m}, seed {ts}, trained with this "
                          "config)", flush=True)
                    pol = load_residual(stem)
                    extra = pol.config.get("extra", {})
                    wall, curve, koop = extra.get("wall_s"), extra.get("curve", []), None
                else:
                    print(f"  training {m} residual (seed {ts}) for {tcfg.total_steps} steps on "
                          f"{tcfg.n_envs} envs", flush=True)
                    tr = train_residual(perturbed, tcfg, stem,
                                        env_description=perturbed.describe(),
                                        log_every=max(1, tcfg.total_steps // 10), verbose=True)
                    pol = load_residual(tr.path)  # evaluate what is on disk
                    wall, curve = tr.wall_s, tr.curve
                    koop = tr.koopman_history[-1][1] if tr.koopman_history else None
                ev = evaluate(perturbed, pol, seeds)
                ex = pol.config.get("extra", {})
                runs.append({"seed": ts, "eval": ev, "train_wall_s": wall, "curve": curve,
                             "reused": reused, "koopman_last": koop,
                             "selected_step": ex.get("selected_step"),
                             "validation_curve": ex.get("validation_curve"),
                             "files": [str(stem.with_suffix(".safetensors")),
                                       str(stem.with_suffix(".json"))]})
                print(f"  {m} residual (seed {ts}): {_fmt_rate(ev)}", flush=True)
            k = sum(r["eval"]["successes"] for r in runs)
            n = sum(r["eval"]["n"] for r in runs)
            row["residual"][m] = {"eval": {"n": n, "successes": k, "rate": k / max(1, n)},
                                  "runs": runs}
        results["skills"].append(row)
        atomic_write_json(out / "results.json", results)
    results["wall_s"] = time.perf_counter() - t_all
    atomic_write_json(out / "results.json", results)
    table = format_table(results)
    print(table)
    if plain.get("report"):
        atomic_write_text(plain["report"], render_report(results, table))
        print(f"report -> {plain['report']}")
    print(f"results -> {out / 'results.json'}")
    return results


def _redact(text: str) -> str:
    """``key=/abs/path/x`` -> ``key=<dir>/x``: no machine paths in a tracked report."""
    key, sep, val = text.rpartition("=")
    if val.startswith("/"):
        return f"{key}{sep}<dir>/{Path(val).name}"
    return text


def render_report(results: Mapping[str, Any], table: str) -> str:
    """The Markdown of ``docs/residual.md``: what was measured, how, and the table."""
    c = results["config"]
    p = c["perturbation"]
    t = c["train"]
    cmd = " ".join(["rs-residual", *(_redact(o) for o in c.get("overrides_used", []))])
    lines = [
        "# Residual refinement: frozen skills + SB3 SAC and KORR residuals",
        "",
        "Written by `" + cmd + "` (`robot_skills/training/residual.py`, configs in "
        "`configs/residual/default.yaml`). Every figure below is from that run "
        f"(code version `{results['code_version']}`, wall time {results.get('wall_s', 0):.0f} s "
        "on the project's shared 2-core CPU machine).",
        "",
        "## Table",
        "",
        table,
        "",
        f"Success of the skill's own termination test within its time limit; "
        f"{len(results['seeds'])} deterministic episodes per policy, evaluation seeds "
        f"{results['seeds'][0]}–{results['seeds'][-1]} (the same seeds in every column). A "
        f"residual cell pools one policy per training seed ({results.get('train_seeds')}), "
        "each evaluated on those seeds; training episodes draw their seeds from the env's "
        "generator seeded with the training seed. 95 % Wilson intervals.",
        "",
        f"- **Base skills**: `{_redact(str(c['env']['base']))}` "
        "(a libero_goal skill library trained with the existing pipeline, see below, or "
        "`expert` for the scripted experts).",
        f"- **Perturbation** (`{p.get('name', '')}`), never in the base skill's demonstrations: "
        f"object mass x{p.get('mass_scale', 1.0)}, object friction and fixture-joint friction "
        f"x{p.get('friction_scale', 1.0)}, end-effector start shifted {p.get('ee_shift_m', 0.0)} m "
        "in a random horizontal direction, object regions shifted "
        f"{p.get('region_shift', [0, 0])} m, Gaussian action noise std "
        f"{p.get('action_noise_std', 0.0)} and a constant action bias "
        f"{p.get('action_bias', [])} (normalised action units; 0.1 = 5 mm per step).",
        f"- **Residuals**: trained on the perturbed env for {t['total_steps']} environment steps "
        f"on {t['n_envs']} envs (`{t['vec_env']}`), SB3 SAC (lr {t['learning_rate']}, batch "
        f"{t['batch_size']}, learning_starts {t['learning_starts']}, ent_coef "
        f"{t['ent_coef']}, net {t['net_arch']}, initial log std {t.get('log_std_init')}, "
        f"critic-only warm-up {t.get('actor_warmup', 0)} steps, actor lr x"
        f"{t.get('actor_lr_scale', 1.0)}, {t.get('n_steps', 1)}-step returns), residual scale "
        f"{c['env']['scale']}, shaping "
        f"weight {c['env']['shaping']}; evaluated deterministically (the Gaussian's mean) after "
        "loading the saved safetensors + JSON."
        + (f" Checkpoint selection: every {t['select_every']} steps and at step 0 (the zero "
           f"residual, i.e. the base skill) the deterministic policy ran {t['select_episodes']} "
           f"validation episodes (seeds from {t['select_seed']}, disjoint from the evaluation "
           "seeds); the best weights were saved, ties keeping the earlier, so a run that never "
           "beats the base on validation saves the base." if t.get("select_every") else ""),
        "",
        "## Per skill: training time and curve",
        "",
    ]
    for row in results["skills"]:
        for m, res in row["residual"].items():
            for r in res["runs"]:
                curve = ", ".join(f"{pt['steps']}: " + ("-" if pt["success_last20"] is None
                                                         else f"{pt['success_last20']:.2f}")
                                  for pt in r["curve"])
                wall = r["train_wall_s"]
                lines.append(f"- `{row['call']}` {m}, training seed {r['seed']}: "
                             f"{_fmt_rate(r['eval'])}; trained "
                             f"{'?' if wall is None else f'{wall:.0f}'} s; training success "
                             f"(last 20 stochastic episodes) by step: {curve}")
                if r.get("validation_curve"):
                    vc = ", ".join(f"{v['steps']}: {v['validation_success']:.2f}"
                                   for v in r["validation_curve"])
                    lines.append(f"  - validation success (deterministic, validation seeds) by "
                                 f"step: {vc}; **selected step {r['selected_step']}**"
                                 + (" (= the base skill: no checkpoint beat it)"
                                    if r["selected_step"] == 0 else ""))
                if r.get("koopman_last"):
                    k = r["koopman_last"]
                    lines.append(f"  - Koopman loss at the end: prediction {k['pred']:.4f}, "
                                 f"reconstruction {k['rec']:.4f}, decoded prediction "
                                 f"{k['pred_state']:.4f}, latent std {k['latent_std']:.3f}")
    lines += ["", _METHOD_NOTES]
    return "\n".join(lines) + "\n"


_METHOD_NOTES = """## How it works

**The env** (`sim/residual_env.py`, `ResidualSkillEnv`): one skill call of one task file. The
setup calls (e.g. `pick` before `place_on`) run with the scripted experts at reset; then every
control step the frozen base skill gives `a_base` and the robot executes
`a = clip(a_base + scale * delta + bias + noise, -1, 1)` in normalised action units (default
`scale = 0.1`). Observation: the skill's 20 goal-conditioned features, `a_base` (7) and the elapsed
fraction of the time limit (1), float32. Reward: `+1` when the skill's termination test holds (the
contract's termination atoms on the simulator's predicate state, the executor's own test), which
ends the episode, plus a potential-based progress term `w * (gamma * Phi(s') - Phi(s))`,
`Phi = -d / 0.1 m` (end-effector–argument distance for one-argument skills, horizontal
object–target distance for two-argument ones) and `Phi = 0` at the absorbing success state, which
leaves the optimal policy unchanged (Ng et al. 1999). Truncated at the contract's time limit. It
passes `gymnasium.utils.env_checker.check_env`. An entry of the config's `skills` list may carry
`env` keys that replace the `env` block's for that call (e.g. `env: {shaping: 0.0}`).

**SB3 residual** (`robot_skills/training/residual.py`): SB3 SAC on a `SubprocVecEnv`, the
action-mean layer zero-initialised so the untrained residual is exactly zero (the first
deterministic rollout is the base skill); PPO is available (`train.algo=ppo`). SAC and KORR
start with a small state-independent exploration (`log_std_init`), learn the critics alone for
`actor_warmup` steps after `learning_starts` (the actor's and the temperature's learning rates are
0, so the residual stays exactly zero; the critic warm-up of ResFiT, Ankile et al. 2025,
arXiv:2509.19301), and start the learned temperature at 0.01. Optional: a slower actor
(`actor_lr_scale`) and n-step returns (`n_steps`; KORR's Koopman model still reads one-step
transitions). Saved as the policy's `state_dict` in safetensors plus a JSON config; SB3's pickle
zip is never written or read.

**KORR** (`robot_skills/policies/korr.py`, Gong et al. 2025, arXiv:2509.12562): a Koopman model
`z = phi(s)`, `z' = K z + B a` with a decoder `psi`, trained on the replay buffer's transitions
(pre-trained at `learning_starts` on the base skill's exploratory rollouts, then one update per
environment step beside SAC's). Loss: latent prediction + reconstruction + decoded prediction.
The guard against latent collapse is **reconstruction**: prediction alone is minimised by
`phi = 0`; a stop-gradient target needs an EMA encoder and a predictor head to avoid that and
still collapses with a purely linear predictor, which `K` is. Reconstruction ties each latent to
its state. Actor and critics read `[obs, K phi(s) + B a_base]` through an SB3 features extractor
(`KORRPolicy`, a `SACPolicy` subclass); the Koopman features are detached, so the latent is
trained as a dynamics model only (the paper also back-propagates the RL loss into it).

**Base library** of the table: the main job's, `rs-quickstart run_dir=<dir>` (README command 1:
libero_goal, skill-centric demonstrations plus the suite's goals, PEFT LoRA skills; 97 % on
libero_goal through the planner), then `rs-residual library=<dir>/skills`.
"""


def main(argv: Sequence[str] | None = None) -> None:
    """``rs-residual [key=value ...]``: the base-vs-residual table (``configs/residual/``).

    Examples::

        rs-residual library=outputs/libero_goal/skills
        rs-residual library=expert train.total_steps=2000 eval.episodes=5 report=null
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(main.__doc__)
        return
    cfg = load_experiment_config(args)
    from omegaconf import OmegaConf

    OmegaConf.set_struct(cfg, False)
    cfg.overrides_used = args
    OmegaConf.set_struct(cfg, True)
    run_experiment(cfg)


if __name__ == "__main__":
    main()
