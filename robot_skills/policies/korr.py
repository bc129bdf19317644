"""KORR: Koopman-guided online residual refinement (Gong et al. 2025, arXiv:2509.12562).

A lifted latent ``z = phi(s)`` evolves linearly, ``z' = K z + B a`` (a deep Koopman model with
control inputs, as Lusch, Kutz & Brunton 2018 and Korda & Mezic 2018). The residual actor and the
critics of SAC read the observation *and* the Koopman-predicted next latent under the base
action, ``K phi(s) + B a_base``: where the base skill is about to take the system, in a space whose
dynamics are linear, so the correction is informed by the global state evolution rather than only
by the local state.

How it is built (on top of stable-baselines3's SAC, not a new RL algorithm):

* :class:`KoopmanModel` — ``phi`` (an MLP encoder of the normalised state), ``K`` and ``B``
  (bias-free linear maps) and a decoder ``psi``. Its loss (:meth:`KoopmanModel.loss`)::

      L = |K phi(s) + B a - phi(s')|^2                      latent prediction
        + w_rec  * |psi(phi(s)) - s|^2                       reconstruction
        + w_pred * |psi(K phi(s) + B a) - s'|^2              prediction decoded to the state

  **Guard against latent collapse: reconstruction** (not a stop-gradient target). The latent
  prediction term alone is minimised by ``phi = 0, K = B = 0``. A stop-gradient target (as BYOL /
  SPR) only avoids that trivial solution with the extra machinery those methods rely on (an EMA
  target encoder, a predictor head), and still collapses for a *linear* predictor without them
  (Tian et al. 2021); here ``K`` *is* the linear predictor. Reconstruction anchors every latent to
  the state it came from, so the latent cannot carry less information than ``s`` (its variance is
  bounded below by the state's, through ``psi``); the decoded prediction term makes the linear
  dynamics predictive in the state space too, as in Lusch et al. 2018.
* :class:`KoopmanFeaturesExtractor` — the SB3 features extractor of actor and critics:
  ``[obs, K phi(s) + B a_base]`` with ``s`` and ``a_base`` read from fixed slices of the
  observation. The Koopman features are detached: RL gradients do not move ``phi``, ``K``, ``B``
  (they are trained only by the loss above, so the latent stays a dynamics model).
* :class:`KORRPolicy` — SB3's ``SACPolicy`` owning one :class:`KoopmanModel` (``policy.koopman``),
  shared by the actor's and the critics' extractors (held unregistered there, so the policy's
  ``state_dict`` stores it once, under ``koopman.``).
* :class:`KoopmanCallback` — the small loop on top of SAC: from ``learning_starts`` on, it fits the
  state normaliser once and pre-trains the Koopman model on the replay buffer (the base skill's
  rollouts with exploration), then does ``updates_per_step`` Koopman updates per environment step,
  next to SAC's own gradient steps, on transitions sampled from the same replay buffer. The
  executed action of a transition is rebuilt as ``clip(a_base + scale * delta, -1, 1)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

__all__ = ["KoopmanConfig", "KoopmanModel", "KoopmanFeaturesExtractor", "KORRPolicy",
           "KoopmanCallback", "koopman_update", "one_step_sample"]


@dataclass(frozen=True)
class KoopmanConfig:
    """Sizes, slices and optimisation of the Koopman model.

    Attributes:
        state_start / state_dim: where the state ``s`` (the skill features) lies in the
            observation vector.
        base_start / action_dim: where the base action ``a_base`` (normalised) lies.
        latent_dim: size of ``z``.
        hidden: width of the encoder's and decoder's two hidden layers.
        residual_scale: the env's residual scale (to rebuild the executed action).
        lr: Adam learning rate of the Koopman model.
        batch_size: transitions per Koopman update.
        pretrain_updates: updates at ``learning_starts`` before the online updates begin.
        updates_per_step: Koopman updates per environment step afterwards.
        w_rec / w_pred: weights of the reconstruction and decoded-prediction terms.
        norm_min_std: floor of the state normaliser's per-feature std (raw feature units: m,
            unitless). The normaliser is fitted once on the first ``learning_starts`` steps; a
            feature that barely moved there (an object's yaw before it is grasped) gets a tiny
            std, and later states then sit far outside the fitted range (seen on ``pick``: the
            decoded-prediction loss grew from 0.02 to 53 by the end of a run). 1e-3 is what
            docs/residual.md measured; a floor of ~0.05 would bound that blow-up.

    Raises:
        ValueError: on non-positive sizes or a negative weight.
    """

    state_start: int = 0
    state_dim: int = 20
    base_start: int = 20
    action_dim: int = 7
    latent_dim: int = 32
    hidden: int = 128
    residual_scale: float = 0.1
    lr: float = 1e-3
    batch_size: int = 256
    pretrain_updates: int = 500
    updates_per_step: int = 1
    w_rec: float = 1.0
    w_pred: float = 1.0
    norm_min_std: float = 1e-3

    def __post_init__(self) -> None:
        for k in ("state_dim", "action_dim", "latent_dim", "hidden", "batch_size"):
            if int(getattr(self, k)) <= 0:
                raise ValueError(f"KoopmanConfig.{k} must be > 0, got {getattr(self, k)}")
        for k in ("state_start", "base_start", "pretrain_updates", "updates_per_step"):
            if int(getattr(self, k)) < 0:
                raise ValueError(f"KoopmanConfig.{k} must be >= 0, got {getattr(self, k)}")
        if not (self.w_rec >= 0 and self.w_pred >= 0 and self.lr > 0 and self.norm_min_std > 0):
            raise ValueError(f"KoopmanConfig: w_rec, w_pred must be >= 0, lr and norm_min_std > 0, "
                             f"got {self.w_rec}, {self.w_pred}, {self.lr}, {self.norm_min_std}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (the inverse of ``KoopmanConfig(**d)``)."""
        return asdict(self)


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                         nn.Linear(hidden, out))


class KoopmanModel(nn.Module):
    """``z = phi(s)``, ``z' = K z + B a``, ``s ~ psi(z)`` (see the module docstring).

    States are normalised by fixed buffers ``s_mean``/``s_std`` (:meth:`fit_normalizer`) before the
    encoder; the decoder predicts normalised states.

    Args:
        cfg: sizes (``state_dim``, ``action_dim``, ``latent_dim``, ``hidden``) and loss weights.
    """

    def __init__(self, cfg: KoopmanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = _mlp(cfg.state_dim, cfg.hidden, cfg.latent_dim)
        self.decoder = _mlp(cfg.latent_dim, cfg.hidden, cfg.state_dim)
        self.K = nn.Linear(cfg.latent_dim, cfg.latent_dim, bias=False)
        self.B = nn.Linear(cfg.action_dim, cfg.latent_dim, bias=False)
        with torch.no_grad():  # start at the identity: z' = z (a slowly moving system)
            self.K.weight.copy_(torch.eye(cfg.latent_dim))
        self.register_buffer("s_mean", torch.zeros(cfg.state_dim))
        self.register_buffer("s_std", torch.ones(cfg.state_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit_normalizer(self, s: torch.Tensor, min_std: float = 1e-3) -> None:
        """Set the state normaliser from ``(N, state_dim)`` samples (std floored at ``min_std``).

        Raises:
            ValueError: on a wrong shape, fewer than 2 rows, or NaN/inf.
        """
        if s.ndim != 2 or s.shape[1] != self.cfg.state_dim or s.shape[0] < 2:
            raise ValueError(f"fit_normalizer needs (N >= 2, {self.cfg.state_dim}) states, got "
                             f"{tuple(s.shape)}")
        if not bool(torch.isfinite(s).all()):
            raise ValueError("fit_normalizer: states hold NaN/inf")
        self.s_mean.copy_(s.mean(0))
        self.s_std.copy_(s.std(0).clamp_min(min_std))
        self.fitted.fill_(True)

    def normalize(self, s: torch.Tensor) -> torch.Tensor:
        """``(..., state_dim)`` -> normalised states."""
        return (s - self.s_mean) / self.s_std

    def encode(self, s: torch.Tensor) -> torch.Tensor:
        """``phi``: ``(..., state_dim)`` raw states -> ``(..., latent_dim)`` latents."""
        return self.encoder(self.normalize(s))

    def predict(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """One linear step ``K z + B a``: ``(..., latent_dim)``, ``(..., action_dim)`` ->
        ``(..., latent_dim)``."""
        return self.K(z) + self.B(a)

    def predicted_latent(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``K phi(s) + B a``: the KORR conditioning, ``(..., latent_dim)``."""
        return self.predict(self.encode(s), a)

    def loss(self, s: torch.Tensor, a: torch.Tensor, s_next: torch.Tensor
             ) -> dict[str, torch.Tensor]:
        """Koopman loss on a batch of transitions.

        Args:
            s, s_next: ``(N, state_dim)`` raw states; a: ``(N, action_dim)`` executed actions.

        Returns:
            ``total`` (differentiable scalar), ``pred`` (latent prediction), ``rec``
            (reconstruction), ``pred_state`` (decoded prediction) and ``latent_std`` (mean over
            latent dimensions of the batch std of ``phi(s)``, detached: the collapse monitor).
        """
        c = self.cfg
        z = self.encode(s)
        z2 = self.encode(s_next)
        zp = self.predict(z, a)
        pred = (zp - z2).pow(2).mean()
        rec = (self.decoder(z) - self.normalize(s)).pow(2).mean()
        pred_state = (self.decoder(zp) - self.normalize(s_next)).pow(2).mean()
        total = pred + c.w_rec * rec + c.w_pred * pred_state
        return {"total": total, "pred": pred.detach(), "rec": rec.detach(),
                "pred_state": pred_state.detach(), "latent_std": z.detach().std(0).mean()}


def koopman_update(model: KoopmanModel, opt: torch.optim.Optimizer, s: torch.Tensor,
                   a: torch.Tensor, s_next: torch.Tensor) -> dict[str, float]:
    """One Adam step on :meth:`KoopmanModel.loss`; returns the terms as floats.

    Raises:
        FloatingPointError: if the loss is NaN/inf (nothing is updated).
    """
    out = model.loss(s, a, s_next)
    if not bool(torch.isfinite(out["total"])):
        raise FloatingPointError(f"Koopman loss is not finite: {out['total'].item()}")
    opt.zero_grad(set_to_none=True)
    out["total"].backward()
    nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    opt.step()
    return {k: float(v.detach()) for k, v in out.items()}


class KoopmanFeaturesExtractor(BaseFeaturesExtractor):
    """``obs -> [obs, K phi(s) + B a_base]`` (detached Koopman part), for SB3 policies.

    Args:
        observation_space: a flat ``Box``.
        koopman: the shared :class:`KoopmanModel` (kept unregistered: its owner is the policy).

    Raises:
        ValueError: if the observation space is not a flat Box holding the configured slices.
    """

    def __init__(self, observation_space: spaces.Box, koopman: KoopmanModel) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"KORR needs a flat Box observation space, got {observation_space}")
        c = koopman.cfg
        n = int(observation_space.shape[0])
        if c.state_start + c.state_dim > n or c.base_start + c.action_dim > n:
            raise ValueError(f"KoopmanConfig slices (state {c.state_start}+{c.state_dim}, base "
                             f"{c.base_start}+{c.action_dim}) exceed the observation size {n}")
        super().__init__(observation_space, n + c.latent_dim)
        self.__dict__["_koopman"] = koopman  # not a submodule: the policy owns (and saves) it

    @property
    def koopman(self) -> KoopmanModel:
        """The shared Koopman model."""
        return self.__dict__["_koopman"]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, n)`` -> ``(B, n + latent_dim)``."""
        c = self.koopman.cfg
        s = obs[:, c.state_start:c.state_start + c.state_dim]
        a = obs[:, c.base_start:c.base_start + c.action_dim]
        with torch.no_grad():
            zp = self.koopman.predicted_latent(s, a)
        return torch.cat([obs, zp], dim=1)


class KORRPolicy(SACPolicy):
    """SB3 ``SACPolicy`` whose actor and critics read :class:`KoopmanFeaturesExtractor` features.

    Args:
        koopman_kwargs: :class:`KoopmanConfig` fields.
        *args / **kwargs: as ``SACPolicy`` (``features_extractor_class`` is fixed).
    """

    def __init__(self, *args: Any, koopman_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self._koopman_cfg = KoopmanConfig(**(koopman_kwargs or {}))
        kwargs["features_extractor_class"] = KoopmanFeaturesExtractor
        kwargs.setdefault("features_extractor_kwargs", {})
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        self.koopman = KoopmanModel(self._koopman_cfg)
        super()._build(lr_schedule)

    def make_features_extractor(self) -> KoopmanFeaturesExtractor:
        """A features extractor over the policy's one Koopman model."""
        return KoopmanFeaturesExtractor(self.observation_space, self.koopman)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["koopman_kwargs"] = self._koopman_cfg.to_dict()
        data.pop("features_extractor_class", None)
        return data


def one_step_sample(buffer: Any, batch_size: int) -> Any:
    """``batch_size`` one-step transitions ``(s, a, s')`` from an SB3 replay buffer.

    SB3's n-step buffer (SAC with ``n_steps > 1``) returns ``s'`` up to n steps ahead from
    ``sample``; the Koopman model's ``z' = K z + B a`` needs the next step, so this reads the
    stored transitions through the plain :class:`ReplayBuffer` sampler for either buffer kind.
    """
    from stable_baselines3.common.buffers import ReplayBuffer

    upper = buffer.buffer_size if buffer.full else buffer.pos
    if upper <= 0:
        raise ValueError("one_step_sample: the replay buffer is empty")
    inds = np.random.randint(0, upper, size=int(batch_size))
    return ReplayBuffer._get_samples(buffer, inds)


class KoopmanCallback(BaseCallback):
    """Trains the policy's Koopman model from SAC's replay buffer (see the module docstring).

    Args:
        learning_starts: environment steps before the first update (SAC's ``learning_starts``).
        verbose: SB3 verbosity.

    Attributes:
        history: ``(num_timesteps, loss terms)`` of every 100th update (and the pre-training's
            first and last).
    """

    def __init__(self, learning_starts: int = 1000, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.learning_starts = int(learning_starts)
        self._opt: torch.optim.Optimizer | None = None
        self._n = 0
        self.history: list[tuple[int, dict[str, float]]] = []

    @property
    def koopman(self) -> KoopmanModel:
        """The trained model (``model.policy.koopman``)."""
        km = getattr(self.model.policy, "koopman", None)
        if not isinstance(km, KoopmanModel):
            raise TypeError("KoopmanCallback needs a model whose policy is a KORRPolicy")
        return km

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        km = self.koopman
        c = km.cfg
        data = one_step_sample(self.model.replay_buffer, c.batch_size)
        obs, nxt, delta = data.observations, data.next_observations, data.actions
        s = obs[:, c.state_start:c.state_start + c.state_dim]
        s2 = nxt[:, c.state_start:c.state_start + c.state_dim]
        a_base = obs[:, c.base_start:c.base_start + c.action_dim]
        a = (a_base + c.residual_scale * delta).clamp(-1.0, 1.0)
        return s, a, s2

    def _update(self) -> dict[str, float]:
        out = koopman_update(self.koopman, self._opt, *self._batch())
        if self._n % 100 == 0:
            self.history.append((int(self.num_timesteps), out))
            for k, v in out.items():
                self.logger.record(f"koopman/{k}", v)
        self._n += 1
        return out

    def _pretrain(self) -> None:
        km = self.koopman
        c = km.cfg
        rb = self.model.replay_buffer
        n = rb.buffer_size if rb.full else rb.pos
        obs = torch.as_tensor(rb.observations[:n].reshape(-1, rb.observations.shape[-1]),
                              dtype=torch.float32)
        km.fit_normalizer(obs[:, c.state_start:c.state_start + c.state_dim], c.norm_min_std)
        self._opt = torch.optim.Adam(km.parameters(), lr=c.lr)
        for _ in range(c.pretrain_updates):
            self._update()
        if self.verbose:
            print(f"KORR: Koopman model pre-trained on {n} steps: {self.history[-1][1]}")

    def _on_step(self) -> bool:
        if self.num_timesteps < self.learning_starts:
            return True
        if self._opt is None:
            self._pretrain()
        for _ in range(self.koopman.cfg.updates_per_step):
            self._update()
        return True


def predicted_latents(koopman: KoopmanModel, obs: np.ndarray) -> np.ndarray:
    """``K phi(s) + B a_base`` for ``(N, obs_dim)`` observations -> ``(N, latent_dim)`` float32."""
    c = koopman.cfg
    x = torch.as_tensor(np.asarray(obs, np.float32))
    with torch.no_grad():
        z = koopman.predicted_latent(x[:, c.state_start:c.state_start + c.state_dim],
                                     x[:, c.base_start:c.base_start + c.action_dim])
    return z.numpy()
