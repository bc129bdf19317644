"""PSEC (context-aware parameter-space composition): the layer maths against PEFT's merges, and
that training only the weight network learns which skill the demonstrations show."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lora_library import write_random_lora_library

from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.features import FEATURE_DIM
from robot_skills.policies.normalization import NormStats
from robot_skills.policies.peft_adapter import (
    apply_adapter,
    config_dict,
)
from robot_skills.skills.library import SkillLibrary
from robot_skills.skills.merge import merge_adapters, psec_from_library
from robot_skills.skills.skill_dir import build_model, load_base, load_skill

SKILLS = ["pick", "place_on", "push"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")
ARCH = BCConfig(num_skills=3, chunk_size=4, hidden=32, layers=3)


def _library(tmp_path):
    root = tmp_path / "lib"
    rng = np.random.default_rng(0)
    stats = NormStats(rng.normal(size=FEATURE_DIM).astype(np.float32),
                      np.ones(FEATURE_DIM, np.float32), np.zeros(7, np.float32),
                      np.ones(7, np.float32), SKILLS, 4, 1)
    base, info = write_random_lora_library(root, ARCH, SKILLS, stats,
                                           rank=lambda i: 4 + 2 * i)  # different ranks
    return root, base, info


def _fit_steps(model, params, batch, lr, steps=150):
    """Adam on ``params`` for ``steps`` steps of ``model.compute_loss(batch)``; returns the loss
    before training and at the last step."""
    opt = torch.optim.Adam(params, lr=lr)
    with torch.no_grad():
        first = float(model.compute_loss(batch))
    for _ in range(steps):
        opt.zero_grad()
        loss = model.compute_loss(batch)
        loss.backward()
        opt.step()
    return first, loss.item()


def test_psec_one_hot_is_the_skill_and_uniform_is_the_cat_merge(tmp_path):
    root, base, info = _library(tmp_path)
    lib = SkillLibrary(root)
    psec = psec_from_library(lib, SKILLS).eval()
    x = torch.randn(6, FEATURE_DIM)
    sid = torch.zeros(6, dtype=torch.long)
    # the weight network starts at zero: uniform weights = the cat merge with weights 1/K
    state, ad = merge_adapters(lib, SKILLS, [1 / 3] * 3, "cat")
    m = GoalConditionedBC(ARCH)
    m.load_state_dict(base.state_dict())
    cat = apply_adapter(m, config_dict(ad["rank"], ad["alpha"], ad["target_layers"], info.sha256),
                        state).eval()
    with torch.no_grad():
        torch.testing.assert_close(psec(x, sid), cat(x, sid), rtol=1e-4, atol=1e-5)
        for i, s in enumerate(SKILLS):  # one-hot weights reproduce each skill exactly
            psec.weight_net[-1].bias.copy_(torch.tensor([40.0 if j == i else 0.0
                                                         for j in range(3)]))
            ref, _ = build_model(load_skill(root / s, info), load_base(root)[1])
            torch.testing.assert_close(psec(x, sid), ref(x, sid), rtol=1e-4, atol=1e-4)


def test_only_the_weight_network_trains_and_finds_the_demonstrated_skill(tmp_path):
    root, base, info = _library(tmp_path)
    lib = SkillLibrary(root)
    teacher, _ = build_model(load_skill(root / "place_on", info), load_base(root)[1])
    torch.manual_seed(1)
    x = torch.randn(256, FEATURE_DIM)
    sid = torch.zeros(256, dtype=torch.long)
    with torch.no_grad():
        y = teacher(x, sid)
    psec = psec_from_library(lib, SKILLS)
    frozen = {k: v.clone() for k, v in psec.policy.state_dict().items()}
    params = [p for p in psec.parameters() if p.requires_grad]
    assert {id(p) for p in params} == {id(p) for p in psec.weight_net.parameters()}
    first, last = _fit_steps(psec, params, {"features": x, "skill_id": sid, "actions": y}, 3e-2)
    assert last < 0.3 * first, (first, last)
    with torch.no_grad():
        w = psec.skill_weights(x).mean(0)
    assert int(w.argmax()) == 1 and float(w[1]) > 0.8, w
    for k, v in psec.policy.state_dict().items():  # base and adapters untouched
        torch.testing.assert_close(v, frozen[k], rtol=0, atol=0)


def test_cat_learns_per_layer_weights_for_the_demonstrated_skill(tmp_path):
    from robot_skills.skills.merge import cat_from_library

    root, base, info = _library(tmp_path)
    lib = SkillLibrary(root)
    cat = cat_from_library(lib, SKILLS)
    x = torch.randn(128, FEATURE_DIM)
    sid = torch.zeros(128, dtype=torch.long)
    # initial weights 1/K: the uniform cat merge, as PSEC untrained
    with torch.no_grad():
        torch.testing.assert_close(cat(x, sid), psec_from_library(lib, SKILLS)(x, sid),
                                   rtol=1e-4, atol=1e-5)
    teacher, _ = build_model(load_skill(root / "push", info), load_base(root)[1])
    with torch.no_grad():
        y = teacher(x, sid)
    params = [p for p in cat.parameters() if p.requires_grad]
    assert len(params) == len(cat.layers)  # one (K,) weight vector per adapted layer
    first, last = _fit_steps(cat, params, {"features": x, "skill_id": sid, "actions": y}, 5e-2)
    assert last < 0.3 * first, (first, last)
    for name, w in cat.layer_weights().items():  # push's weight dominates in every layer
        assert int(w.argmax()) == 2, (name, w)


def test_skill_blender_starts_as_the_average_and_learns_per_dimension_weights(tmp_path):
    from robot_skills.skills.merge import blender_from_library

    root, base, info = _library(tmp_path)
    lib = SkillLibrary(root)
    bl = blender_from_library(lib, SKILLS)
    prims = [build_model(load_skill(root / s, info), load_base(root)[1]) for s in SKILLS]
    x = torch.randn(128, FEATURE_DIM)
    with torch.no_grad():
        outs = [m(x, torch.full((128,), sid)) for m, sid in prims]
        torch.testing.assert_close(bl(x), sum(outs) / 3, rtol=1e-4, atol=1e-5)
        # target: dims 0-2 from 'pick', dims 3-6 from 'push'
        y = torch.cat([outs[0][..., :3], outs[2][..., 3:]], dim=-1)
    assert {id(p) for p in bl.parameters() if p.requires_grad} == \
        {id(p) for m in (bl.trunk, bl.goal_head, bl.weight_head) for p in m.parameters()}
    opt = torch.optim.Adam([p for p in bl.parameters() if p.requires_grad], lr=1e-2)
    batch = {"features": x, "actions": y}
    with torch.no_grad():
        first = float(bl.compute_loss(batch))
    for _ in range(200):
        opt.zero_grad()
        loss = bl.compute_loss(batch)
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first, (first, loss.item())
    with torch.no_grad():
        w = bl.weights(x).mean(0)  # (K, A)
    assert (w[0, :3] > 0.6).all() and (w[2, 3:] > 0.6).all(), w


def test_mixed_embeddings_one_hot_is_the_skill_under_its_own_embedding(tmp_path):
    """With ``mix_embeddings`` the base is conditioned on the sources' embeddings mixed by the
    same weights as the adapters: one-hot PSEC weights reproduce skill i called with *its* id,
    whatever id the caller passes; uniform PSEC and untrained CAT are the uniform cat merge on a
    base whose conditioning is the mean embedding."""
    from robot_skills.policies.bc import mix_skill_embedding
    from robot_skills.skills.merge import cat_from_library

    root, base, info = _library(tmp_path)
    lib = SkillLibrary(root)
    psec = psec_from_library(lib, SKILLS, mix_embeddings=True).eval()
    cat_p = cat_from_library(lib, SKILLS, mix_embeddings=True).eval()
    x = torch.randn(5, FEATURE_DIM)
    wrong = torch.full((5,), 2, dtype=torch.long)
    state, ad = merge_adapters(lib, SKILLS, [1 / 3] * 3, "cat")
    m = GoalConditionedBC(ARCH)
    m.load_state_dict(base.state_dict())
    merged = apply_adapter(m, config_dict(ad["rank"], ad["alpha"], ad["target_layers"],
                                          info.sha256), state).eval()
    with torch.no_grad():
        mean = mix_skill_embedding(merged, torch.arange(3), torch.full((3,), 1 / 3))
        ref = merged(x, None, mean.expand(5, -1))
        torch.testing.assert_close(psec(x, wrong), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(cat_p(x, wrong), ref, rtol=1e-4, atol=1e-5)
        # not the caller's id any more: the plain cat merge under id 2 differs
        assert (merged(x, wrong) - ref).abs().max() > 1e-3
        for i, s in enumerate(SKILLS):
            psec.weight_net[-1].bias.copy_(torch.tensor([40.0 if j == i else 0.0
                                                         for j in range(3)]))
            one, sid = build_model(load_skill(root / s, info), load_base(root)[1])
            assert sid == i
            torch.testing.assert_close(psec(x, wrong), one(x, torch.full((5,), i)),
                                       rtol=1e-4, atol=1e-4)


def test_mixed_embeddings_reject_a_wrong_number_of_ids(tmp_path):
    from robot_skills.policies.psec import PSECPolicy, peft_pairs

    root, base, info = _library(tmp_path)
    pairs = [peft_pairs(load_skill(root / s, info).adapter_state, 8.0, 4) for s in SKILLS[:1]]
    with pytest.raises(ValueError, match="1 skill ids for 1 adapters|outside"):
        PSECPolicy(GoalConditionedBC(ARCH), pairs, skill_ids=[7])
    with pytest.raises(ValueError, match="2 skill ids for 1 adapters"):
        PSECPolicy(GoalConditionedBC(ARCH), pairs, skill_ids=[0, 1])


def test_argument_bindings_route_each_skill_its_own_view_of_the_features(tmp_path):
    """With input maps, one-hot PSEC weights give skill i on *its* input ``M_i x + c_i``, and an
    untrained SkillBlender averages the primitives each on its own input."""
    from robot_skills.skills.merge import blender_from_library

    root, base, info = _library(tmp_path)
    lib = SkillLibrary(root)
    g = torch.Generator().manual_seed(3)
    maps = [(torch.randn(FEATURE_DIM, FEATURE_DIM, generator=g) * 0.3,
             torch.randn(FEATURE_DIM, generator=g)) for _ in SKILLS]
    psec = psec_from_library(lib, SKILLS, mix_embeddings=True, input_maps=maps).eval()
    blend = blender_from_library(lib, SKILLS, input_maps=maps).eval()
    x = torch.randn(4, FEATURE_DIM)
    refs = []
    for i, s in enumerate(SKILLS):
        m, sid = build_model(load_skill(root / s, info), load_base(root)[1])
        refs.append((m, sid))
    with torch.no_grad():
        views = [x @ mm.t() + cc for mm, cc in maps]
        own = [m(v, torch.full((4,), sid)) for (m, sid), v in zip(refs, views)]
        torch.testing.assert_close(blend(x), sum(own) / 3, rtol=1e-4, atol=1e-5)
        for i in range(3):
            psec.weight_net[-1].bias.copy_(torch.tensor([40.0 if j == i else 0.0
                                                         for j in range(3)]))
            torch.testing.assert_close(psec(x, torch.zeros(4, dtype=torch.long)), own[i],
                                       rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="2 input maps for 3 adapters"):
        psec_from_library(lib, SKILLS, input_maps=maps[:2])
