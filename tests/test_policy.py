"""Goal-conditioned BC network, LoRA adapters, temporal ensembling and the LearnedSkill policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.execution.interfaces import SkillPolicy
from robot_skills.policies.bc import BCConfig, GoalConditionedBC, TemporalEnsembler, chunk_loss
from robot_skills.policies.features import FEATURE_DIM
from robot_skills.policies.learned_skill import LearnedSkill
from robot_skills.policies.lora import (
    LoRALinear,
    inject_lora,
    linear_layer_names,
    load_lora_state_dict,
    lora_parameters,
    lora_state_dict,
    merge_lora,
    unload_lora,
)
from robot_skills.policies.normalization import NormStats
from robot_skills.robot import Action, Observation


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = BCConfig(**{"num_skills": 3, "chunk_size": 4, "hidden": 32, "layers": 3, **kw})
    return GoalConditionedBC(cfg).eval()


def _batch(b=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, FEATURE_DIM, generator=g), torch.randint(0, 3, (b,), generator=g)


def test_forward_shape_and_skill_conditioning():
    m = _model()
    x, _ = _batch()
    out0 = m(x, torch.zeros(5, dtype=torch.long))
    out1 = m(x, torch.ones(5, dtype=torch.long))
    assert out0.shape == (5, 4, 7)
    assert not torch.allclose(out0, out1)
    assert linear_layer_names(m) == ["inp", "blocks.0.fc", "blocks.1.fc", "head"]


def test_chunk_loss_ignores_padding():
    pred = torch.zeros(2, 3, 7)
    target = torch.zeros(2, 3, 7)
    target[:, 2] = 100.0  # padded entries: must not count
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    assert chunk_loss(pred, target, mask).item() == 0.0
    target[0, 0, 0] = 28.0
    assert chunk_loss(pred, target, mask, "l1").item() == pytest.approx(28.0 / (4 * 7))
    assert chunk_loss(pred, target, mask, "mse").item() == pytest.approx(28.0 ** 2 / (4 * 7))
    with pytest.raises(ValueError, match="loss kind"):
        chunk_loss(pred, target, mask, "huber")


def test_config_validation():
    with pytest.raises(ValueError, match="unknown policy config keys"):
        BCConfig.from_dict({"num_skills": 2, "width": 3})
    with pytest.raises(ValueError, match="positive integer"):
        BCConfig.from_dict({"num_skills": 0})


def test_lora_fresh_adapter_is_identity_and_base_frozen():
    m = _model()
    x, s = _batch()
    before = m(x, s).detach().clone()
    base_params = {k: v.clone() for k, v in m.state_dict().items()}
    names = inject_lora(m, rank=2, alpha=4.0, target_layers=["blocks.*", "head"])
    assert names == ["blocks.0.fc", "blocks.1.fc", "head"]
    torch.testing.assert_close(m(x, s), before)
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(lora_parameters(m)) == 6
    for layer in (m.blocks[0].fc, m.head):
        assert isinstance(layer, LoRALinear)
        assert layer.lora_A.shape == (2, layer.in_features)
        assert layer.lora_B.shape == (layer.out_features, 2)
        assert layer.scaling == 2.0
    # a training step moves only the adapter and changes the output
    opt = torch.optim.SGD(lora_parameters(m), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        m(x, s).pow(2).mean().backward()
        opt.step()
    assert not torch.allclose(m(x, s), before)
    sd = unload_lora(_copy_with_state(m)).state_dict()
    for k, v in base_params.items():
        torch.testing.assert_close(sd[k], v)


def _copy_with_state(m):
    import copy
    return copy.deepcopy(m)


def test_lora_merge_and_state_dict_round_trip():
    m = _model()
    inject_lora(m, rank=4, alpha=8.0)
    with torch.no_grad():
        for p in lora_parameters(m):
            p.normal_(0, 0.1)
    x, s = _batch()
    ref = m(x, s)
    sd = lora_state_dict(m)
    assert set(sd) == {f"{n}.lora_{k}" for n in ["inp", "blocks.0.fc", "blocks.1.fc", "head"]
                       for k in "AB"}
    m2 = _model()
    inject_lora(m2, rank=4, alpha=8.0)
    load_lora_state_dict(m2, sd)
    torch.testing.assert_close(m2(x, s), ref)
    merge_lora(m2)
    assert not any(isinstance(mod, LoRALinear) for mod in m2.modules())
    torch.testing.assert_close(m2(x, s), ref, atol=1e-5, rtol=1e-5)
    m3 = _model()
    inject_lora(m3, rank=2, alpha=8.0)
    with pytest.raises(ValueError, match="rank mismatch"):
        load_lora_state_dict(m3, sd)
    m4 = _model()
    inject_lora(m4, rank=4, alpha=8.0, target_layers="head")
    with pytest.raises(ValueError, match="unexpected"):
        load_lora_state_dict(m4, sd)
    with pytest.raises(ValueError, match="matches no Linear"):
        inject_lora(_model(), 2, 2.0, ["decoder.*"])
    with pytest.raises(ValueError, match="rank"):
        inject_lora(_model(), 100, 2.0)


def test_temporal_ensembler_weights_oldest_first():
    ens = TemporalEnsembler(chunk_size=3, m=0.5)
    c0 = np.array([[0.0], [1.0], [2.0]])
    c1 = np.array([[10.0], [11.0], [12.0]])
    c2 = np.array([[20.0], [21.0], [22.0]])
    assert ens.update(c0)[0] == pytest.approx(0.0)
    w = np.exp(-0.5 * np.arange(3))
    # step 1: predictions for t=1 are c0[1] (oldest, weight w0) and c1[0] (weight w1)
    assert ens.update(c1)[0] == pytest.approx((w[0] * 1 + w[1] * 10) / w[:2].sum())
    assert ens.update(c2)[0] == pytest.approx((w[0] * 2 + w[1] * 11 + w[2] * 20) / w.sum())
    ens.reset()
    assert ens.update(c2)[0] == pytest.approx(20.0)
    const = TemporalEnsembler(4, 0.01)
    for _ in range(6):
        np.testing.assert_allclose(const.update(np.full((4, 7), 0.3)), np.full(7, 0.3), rtol=1e-6)


def _stats(H=4):
    return NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                     np.zeros(7, np.float32), np.full(7, 0.01, np.float32),
                     ["pick", "place_on", "open"], H)


def _obs():
    return Observation(joint_pos=np.zeros(7), joint_vel=np.zeros(7), ee_pos=np.array([0.4, 0, 0.3]),
                       ee_quat=np.array([0.0, 1.0, 0.0, 0.0]), gripper_width=0.08,
                       object_poses={"bowl_1": np.array([0.5, 0.1, 0.02, 1, 0, 0, 0]),
                                     "plate_1": np.array([0.6, -0.1, 0.01, 1, 0, 0, 0])})


def test_learned_skill_acts_and_clips():
    skill = LearnedSkill("place_on", _model(), _stats(), skill_id=1, spec=SKILL_SPECS["place_on"])
    assert isinstance(skill, SkillPolicy)
    skill.reset(["bowl_1", "plate_1"], None)
    a = skill.act(_obs())
    assert isinstance(a, Action)
    v = a.to_array()
    assert np.all(np.abs(v[:3]) <= 0.05 + 1e-7) and np.all(np.abs(v[3:6]) <= 0.5 + 1e-7)
    assert -1 <= v[6] <= 1
    chunk = skill.predict_chunk(np.zeros((2, FEATURE_DIM), np.float32))
    assert chunk.shape == (2, 4, 7)
    with pytest.raises(ValueError, match="takes 2 arguments"):
        skill.reset(["bowl_1"], None)
    skill.reset(["bowl_1", "mug_9"], None)
    with pytest.raises(KeyError, match="mug_9"):
        skill.act(_obs())


def test_learned_skill_open_loop_replays_chunk():
    skill = LearnedSkill("pick", _model(), _stats(), skill_id=0, ensemble_m=None)
    skill.reset(["bowl_1"])
    obs = _obs()
    chunk = skill.predict_chunk(np.zeros(FEATURE_DIM, np.float32))  # noqa: F841 - warms up
    acts = [skill.act(obs).to_array() for _ in range(4)]
    from robot_skills.policies.features import skill_features
    ref = skill.predict_chunk(skill_features(obs, ["bowl_1"]))
    for t in range(4):
        np.testing.assert_allclose(acts[t][:3], np.clip(ref[t, :3], -0.05, 0.05), atol=1e-6)


def test_numpy_fast_path_matches_torch():
    from robot_skills.policies.learned_skill import NumpyChunkPredictor
    rng = np.random.default_rng(0)
    m = _model(hidden=64, layers=4)
    with torch.no_grad():  # non-trivial LayerNorm affine params
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    st = NormStats(rng.normal(size=FEATURE_DIM).astype(np.float32),
                   rng.uniform(0.1, 2, FEATURE_DIM).astype(np.float32),
                   rng.normal(size=7).astype(np.float32) * 0.01,
                   rng.uniform(0.01, 0.1, 7).astype(np.float32), ["a", "b", "c"], 4)
    skill = LearnedSkill("pick", m, st, skill_id=2)
    fast = NumpyChunkPredictor(skill.model, st, 2)
    for _ in range(5):
        f = rng.normal(size=FEATURE_DIM).astype(np.float32)
        np.testing.assert_allclose(fast(f), skill.predict_chunk(f), rtol=1e-4, atol=1e-6)
    lora_model = _model()
    inject_lora(lora_model, 2, 2.0)
    assert not NumpyChunkPredictor.supports(lora_model)
    slow = LearnedSkill("pick", lora_model, st, skill_id=0)  # falls back to torch, still works
    slow.reset(["bowl_1"])
    assert np.all(np.isfinite(slow.act(_obs()).to_array()))


class _GripperSwitch(torch.nn.Module):
    """Chunks whose gripper is +1 (close) while the end-effector x < 0.5 m, else -1 (open)."""

    def __init__(self, H=4):
        super().__init__()
        self.H = H
        self.unused = torch.nn.Parameter(torch.zeros(1))  # LearnedSkill freezes parameters

    def forward(self, x, skill_id):
        out = torch.zeros(x.shape[0], self.H, 7)
        out[..., 6] = torch.where(x[:, :1] < 0.5, 1.0, -1.0)
        out[..., 0] = 0.01
        return out


def _unit_stats(levels=None, H=4):
    return NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                     np.zeros(7, np.float32), np.ones(7, np.float32), ["pick", "place_on"], H,
                     gripper_levels=levels or {})


def test_gripper_follows_the_newest_chunk_under_temporal_ensembling():
    """A release must happen on the step the policy predicts it, not after the ensemble's
    older chunks (which still say "closed") are outvoted."""
    skill = LearnedSkill("place_on", _GripperSwitch(), _unit_stats(), skill_id=1,
                         ensemble_m=0.01, fast_path=False)
    skill.reset(["bowl_1", "plate_1"])
    obs = _obs()                                   # ee x = 0.4: close
    for _ in range(3):
        assert skill.act(obs).gripper == 1.0
    obs.ee_pos = np.array([0.6, 0.0, 0.3])         # past the switch: open now
    a = skill.act(obs)
    assert a.gripper == -1.0
    # the translation is still ensembled (all chunks agree on 0.01 here)
    assert a.delta_pos[0] == pytest.approx(0.01)


@pytest.mark.parametrize(("levels", "raw", "expected"), [
    ({"place_on": [-1.0, 1.0]}, 0.1, 1.0),        # a skill that only opens/closes: no half-open
    ({"place_on": [-1.0, 1.0]}, -0.1, -1.0),
    ({"place_on": [-1.0, 0.0, 1.0]}, 0.1, 0.0),   # a skill whose demos used half-open
    ({"place_on": []}, 0.3, 0.3),                  # continuous gripper: clipped only
    ({}, 0.1, 0.0),                                # stats without levels: open/half/closed
])
def test_gripper_snaps_to_the_levels_its_demonstrations_used(levels, raw, expected):
    class Const(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, skill_id):
            out = torch.zeros(x.shape[0], 4, 7)
            out[..., 6] = raw
            return out

    skill = LearnedSkill("place_on", Const(), _unit_stats(levels), skill_id=1, ensemble_m=None,
                         fast_path=False)
    skill.reset(["bowl_1", "plate_1"])
    assert skill.act(_obs()).gripper == pytest.approx(expected)


def test_stats_reject_bad_gripper_levels():
    d = _unit_stats({"pick": [-1.0, 1.0]}).to_dict()
    assert NormStats.from_dict(d).gripper_levels == {"pick": [-1.0, 1.0]}
    for bad in ({"pick": [2.0]}, {"pick": "open"}, [[-1.0]]):
        with pytest.raises(ValueError, match="gripper_levels"):
            NormStats.from_dict({**d, "gripper_levels": bad})
