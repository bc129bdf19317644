"""KORR (robot_skills/policies/korr.py): the Koopman model learns linear dynamics without
collapsing its latent; the policy stores it once; its features are detached from RL gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from robot_skills.policies.korr import (
    KoopmanConfig,
    KoopmanFeaturesExtractor,
    KoopmanModel,
    KORRPolicy,
    koopman_update,
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only add contention on a shared machine
    yield
    torch.set_num_threads(n)


def _linear_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` transitions (samples drawn with ``seed``) of one fixed system s' = A s + B a, A
    random and stable (spectral radius 0.9)."""
    sys_g = np.random.default_rng(12345)
    A = sys_g.normal(size=(6, 6))
    A *= 0.9 / np.max(np.abs(np.linalg.eigvals(A)))
    B = sys_g.normal(size=(6, 2))
    g = np.random.default_rng(seed)
    s = g.normal(size=(n, 6))
    a = g.uniform(-1, 1, size=(n, 2))
    s2 = s @ A.T + a @ B.T
    f = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return f(s), f(a), f(s2)


def test_koopman_loss_decreases_on_linear_data_and_latent_does_not_collapse() -> None:
    torch.manual_seed(0)
    cfg = KoopmanConfig(state_dim=6, base_start=6, action_dim=2, latent_dim=8, hidden=64, lr=3e-3)
    km = KoopmanModel(cfg)
    s, a, s2 = _linear_data(2048)
    km.fit_normalizer(s)
    opt = torch.optim.Adam(km.parameters(), lr=cfg.lr)
    first = koopman_update(km, opt, s[:256], a[:256], s2[:256])
    stds = []
    for i in range(300):
        idx = torch.randint(0, len(s), (256,))
        out = koopman_update(km, opt, s[idx], a[idx], s2[idx])
        stds.append(out["latent_std"])
    with torch.no_grad():
        test = km.loss(*(_linear_data(512, seed=1)))
    assert float(test["total"]) < 0.25 * first["total"], (first, test)
    assert float(test["pred_state"]) < 0.25 * first["pred_state"]
    # no collapse: the latent keeps its spread all along (a collapsed phi has std -> 0)
    assert min(stds) > 0.1, min(stds)
    assert float(test["latent_std"]) > 0.1
    # and it carries the state: the decoder reconstructs it
    assert float(test["rec"]) < 0.1


def test_collapsed_latent_is_optimal_for_prediction_alone_but_not_with_reconstruction() -> None:
    """Why the guard is needed: phi = 0, K = B = 0 zeroes the latent prediction loss exactly;
    the reconstruction term makes that collapsed solution cost about the state's variance."""
    cfg = KoopmanConfig(state_dim=6, base_start=6, action_dim=2, latent_dim=8, hidden=64)
    km = KoopmanModel(cfg)
    s, a, s2 = _linear_data(1024)
    km.fit_normalizer(s)
    with torch.no_grad():
        km.encoder[-1].weight.zero_()
        km.encoder[-1].bias.zero_()
        km.K.weight.zero_()
        km.B.weight.zero_()
        out = km.loss(s, a, s2)
    assert float(out["pred"]) == 0.0 and float(out["latent_std"]) == 0.0
    assert float(out["rec"]) > 0.5  # normalised states have unit variance per dimension
    assert float(out["total"]) > 0.5


def test_korr_policy_holds_one_koopman_model_and_detaches_it() -> None:
    obs_space = spaces.Box(-10, 10, shape=(28,), dtype=np.float32)
    act_space = spaces.Box(-1, 1, shape=(7,), dtype=np.float32)
    pol = KORRPolicy(obs_space, act_space, lambda _: 1e-3, net_arch=[32, 32],
                     koopman_kwargs={"latent_dim": 16, "hidden": 32})
    keys = list(pol.state_dict())
    assert sum(k.startswith("koopman.") for k in keys) > 0
    assert not any("features_extractor._koopman" in k or ".koopman." in k for k in keys)
    assert pol.actor.features_extractor.koopman is pol.koopman
    assert pol.critic.features_extractor.koopman is pol.koopman
    assert pol.actor.features_extractor.features_dim == 28 + 16
    # RL gradients do not reach the Koopman model
    obs = torch.randn(5, 28)
    pol.actor(obs, deterministic=False).sum().backward()
    assert all(p.grad is None for p in pol.koopman.parameters())
    assert any(p.grad is not None for p in pol.actor.parameters())


def test_bad_koopman_inputs_fail_loudly() -> None:
    with pytest.raises(ValueError, match="latent_dim"):
        KoopmanConfig(latent_dim=0)
    km = KoopmanModel(KoopmanConfig(state_dim=6, base_start=6, action_dim=2))
    with pytest.raises(ValueError, match="NaN"):
        km.fit_normalizer(torch.full((4, 6), float("nan")))
    with pytest.raises(ValueError, match="exceed"):
        KoopmanFeaturesExtractor(spaces.Box(-1, 1, shape=(5,), dtype=np.float32), km)
