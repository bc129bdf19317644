"""The composition table's machinery (issue 11): new behaviours demonstrated by a macro of the
scripted experts in the simulator, every method built on a LoRA library, and one small table run
end to end on the same seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lora_library import write_random_lora_library

from robot_skills.evaluation import composition as C
from robot_skills.policies.bc import BCConfig
from robot_skills.policies.features import FEATURE_DIM, PROPRIO_DIM, SLOT_DIM
from robot_skills.policies.normalization import NormStats
from robot_skills.skills.library import SkillLibrary
from robot_skills.tasks.suites import resolve_suite
from sim.factories import ExpertSkills, SimWorldFactory

VOCAB = ["open", "pick", "place_in", "place_on"]
ARCH = BCConfig(num_skills=4, chunk_size=4, hidden=32, layers=3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def goal_dir():
    return resolve_suite("libero_goal")


def _library(root):
    """A LoRA library over the behaviours' source verbs (random adapters, unit statistics)."""
    stats = NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                      np.zeros(7, np.float32), np.full(7, 0.01, np.float32), VOCAB, 4, 1)
    write_random_lora_library(root, ARCH, VOCAB, stats)
    return SkillLibrary(root)


def _slot(f, k):
    o = PROPRIO_DIM + SLOT_DIM * k
    return f[..., o:o + 3]


def test_macro_expert_demonstrates_pick_place_as_one_call(goal_dir):
    b = C.BEHAVIOURS["pick_place"]
    demos, summary = C.collect_behaviour(b, make_world=SimWorldFactory(),
                                         make_experts=ExpertSkills(), task_dir=goal_dir,
                                         demos=2, max_tries=3)
    assert summary["demos"] == 2 and summary["tries"] == 3
    assert [d["seed"] for d in demos] == sorted(d["seed"] for d in demos)
    for d in demos:
        f, a = d["features"], d["actions"]
        assert f.shape == (len(a), FEATURE_DIM) and a.shape[1] == 7
        assert np.all(f[:, PROPRIO_DIM + 5] == 1) and np.all(f[:, PROPRIO_DIM + SLOT_DIM + 5] == 1)
        # one call covers both steps: the gripper closes (pick) and later opens (place)
        grip = a[:, 6]
        closed = np.flatnonzero(grip == grip.max())
        assert closed.size and np.any(grip[closed[0]:] == grip.min())
        # and the bowl ends over the plate while it started away from it
        start = np.linalg.norm((_slot(f[0], 0) - _slot(f[0], 1))[:2])
        end = np.linalg.norm((_slot(f[-1], 0) - _slot(f[-1], 1))[:2])
        assert start > 0.08 and end < 0.06, (start, end)
    ds = C.behaviour_dataset(demos, 4, VOCAB, skill_id=3)
    assert len(ds) == sum(len(d["actions"]) for d in demos)
    assert set(ds.skill_ids.tolist()) == {3} and set(ds.episode_ids.tolist()) == {0, 1}


def test_macro_expert_needs_the_world():
    m = C.MacroExpert(ExpertSkills()(None), C.BEHAVIOURS["stow"].steps)
    with pytest.raises(ValueError, match="needs the world"):
        m.reset(C.BEHAVIOURS["stow"].args, None)


def test_argument_binding_selects_the_source_arguments_in_raw_units():
    """``x_src = M x_beh + c`` in normalised units is, in raw units, the behaviour's features with
    the source's arguments moved to the source's slots and every other slot absent (zeros)."""
    rng = np.random.default_rng(1)
    stats = NormStats(rng.normal(size=FEATURE_DIM).astype(np.float32),
                      rng.uniform(0.5, 2, FEATURE_DIM).astype(np.float32),
                      np.zeros(7, np.float32), np.ones(7, np.float32), VOCAB, 4, 1)
    raw = rng.normal(size=(3, FEATURE_DIM)).astype(np.float32)
    x = (raw - stats.feature_mean) / stats.feature_std
    o0, o1 = PROPRIO_DIM, PROPRIO_DIM + SLOT_DIM
    for src_args, want_slot0 in ((["bowl"], raw[:, o0:o1]), (["drawer"], raw[:, o1:])):
        m, c = C.argument_binding(stats, ["bowl", "drawer"], src_args)
        back = (x @ m.T + c) * stats.feature_std + stats.feature_mean
        np.testing.assert_allclose(back[:, :PROPRIO_DIM], raw[:, :PROPRIO_DIM], atol=1e-5)
        np.testing.assert_allclose(back[:, o0:o1], want_slot0, atol=1e-5)
        np.testing.assert_allclose(back[:, o1:], 0.0, atol=1e-5)
    m, c = C.argument_binding(stats, ["bowl", "drawer"], ["drawer", "bowl"])  # swapped slots
    back = (x @ m.T + c) * stats.feature_std + stats.feature_mean
    np.testing.assert_allclose(back[:, o0:o1], raw[:, o1:], atol=1e-5)
    np.testing.assert_allclose(back[:, o1:], raw[:, o0:o1], atol=1e-5)
    with pytest.raises(ValueError, match="'plate' is not among"):
        C.argument_binding(stats, ["bowl"], ["plate"])
    # every behaviour's sources are called by one of its steps on its own arguments
    for b in C.BEHAVIOURS.values():
        assert len(C.source_bindings(b, stats)) == len(b.sources)


def test_every_method_builds_a_policy_of_the_base_shape(tmp_path):
    lib = _library(tmp_path / "lib")
    b = C.BEHAVIOURS["stow"]  # three sources
    rng = np.random.default_rng(0)
    demos = [{"seed": i, "features": rng.normal(size=(12, FEATURE_DIM)).astype(np.float32),
              "actions": rng.normal(size=(12, 7)).astype(np.float32)} for i in range(2)]
    cfg = C.TableConfig(bc_steps=3, lora_steps=3, compose_steps=3, batch_size=8)
    x = torch.randn(3, FEATURE_DIM)
    outs = {}
    for m in C.METHODS:
        model, sid = C.build_method(m, lib, b, demos, cfg)
        with torch.no_grad():
            y = model(x, torch.full((3,), sid))
        assert y.shape == (3, 4, 7) and torch.isfinite(y).all(), m
        outs[m] = y
    # the static merges differ from each other (TIES trims, DARE drops, linear mixes ranks)
    assert (outs["ties"] - outs["cat_merge"]).abs().max() > 1e-4
    assert (outs["linear"] - outs["cat_merge"]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="method must be one of"):
        C.build_method("soup", lib, b, demos, cfg)
    with pytest.raises(ValueError, match="at least one demonstration"):
        C.behaviour_dataset([], 4, VOCAB)


def test_a_small_table_runs_every_cell_on_the_same_seeds(tmp_path, goal_dir):
    lib = _library(tmp_path / "lib")
    res = C.run_composition_table(
        lib.root, make_world=SimWorldFactory(), make_experts=ExpertSkills(), task_dir=goal_dir,
        behaviours=["place_on_shifted"], methods=["bc_scratch", "linear", "psec"], ks=[1, 2],
        episodes=1, cfg=C.TableConfig(bc_steps=5, compose_steps=5, batch_size=16),
        log=lambda s: None)
    cells = {(c["method"], c["k"]): c for c in res["cells"]}
    # a static merge uses no demonstrations: evaluated once, at the largest k
    assert sorted(cells) == [("bc_scratch", 1), ("bc_scratch", 2), ("linear", 2), ("psec", 1),
                             ("psec", 2)]
    for c in cells.values():
        assert [e["seed"] for e in c["episodes_detail"]] == [5000]
        assert c["episodes"] + sum(e["success"] is None for e in c["episodes_detail"]) == 1
        assert 0.0 <= c["rate"] <= 1.0
    assert res["data"]["place_on_shifted"]["demos"] == 2
    assert res["config"]["behaviours"]["place_on_shifted"]["object_shifts"] == {
        "plate_1": [0.0, -0.10]}
    table = C.format_table(res)
    row = next(r for r in table.splitlines() if "| linear" in r)
    assert row.count(f"{cells[('linear', 2)]['successes']}/") == 2  # shown at k = 1 and 2
    with pytest.raises(ValueError, match="unknown behaviours/methods"):
        C.run_composition_table(lib.root, make_world=None, make_experts=None, task_dir=goal_dir,
                                methods=["soup"])
    with pytest.raises(ValueError, match="ks must be >= 1"):
        C.run_composition_table(lib.root, make_world=None, make_experts=None, task_dir=goal_dir,
                                ks=[0])
