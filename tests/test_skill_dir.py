"""Skill directory format and library: save/load round trip and refusal of tampered files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.features import FEATURE_DIM
from robot_skills.policies.lora import inject_lora, lora_parameters, lora_state_dict, merge_lora
from robot_skills.policies.normalization import NormStats
from robot_skills.robot import Observation
from robot_skills.skills.library import SkillLibrary
from robot_skills.skills.skill_dir import (
    SkillFormatError,
    SkillIntegrityError,
    load_skill,
    read_manifest,
    save_base,
    save_skill,
)

SKILLS = ["pick", "place_on"]


def _stats():
    rng = np.random.default_rng(0)
    return NormStats(rng.normal(size=FEATURE_DIM).astype(np.float32),
                     rng.uniform(0.5, 2, FEATURE_DIM).astype(np.float32),
                     np.zeros(7, np.float32), np.full(7, 0.02, np.float32), SKILLS, 4, 100)


def _obs(dx=0.0):
    return Observation(joint_pos=np.zeros(7), joint_vel=np.zeros(7),
                       ee_pos=np.array([0.4 + dx, 0.0, 0.3]), ee_quat=np.array([0.0, 1, 0, 0]),
                       gripper_width=0.05,
                       object_poses={"bowl_1": np.array([0.5, 0.1, 0.02, 1, 0, 0, 0]),
                                     "plate_1": np.array([0.6, -0.1, 0.01, 0.7071, 0, 0, 0.7071])})


@pytest.fixture()
def library(tmp_path):
    torch.manual_seed(0)
    arch = BCConfig(num_skills=2, chunk_size=4, hidden=32, layers=3)
    base = GoalConditionedBC(arch)
    root = tmp_path / "lib"
    info = save_base(root, base.state_dict(), arch, SKILLS, {"note": "test"})
    adapted = GoalConditionedBC(arch)
    adapted.load_state_dict(base.state_dict())
    layers = inject_lora(adapted, 2, 4.0, ["blocks.*", "head"])
    with torch.no_grad():
        for p in lora_parameters(adapted):
            p.normal_(0, 0.2)
    save_skill(root / "place_on", spec=SKILL_SPECS["place_on"],
               adapter_state=lora_state_dict(adapted), stats=_stats(),
               adapter={"kind": "lora", "rank": 2, "alpha": 4.0, "target_layers": layers},
               base=info, skill_id=1, provenance={"dataset_sha256": "ab" * 32,
                                                  "metrics": {"loss": 0.1}})
    full = GoalConditionedBC(BCConfig(num_skills=1, chunk_size=4, hidden=16, layers=2))
    save_skill(root / "task_a", spec=SKILL_SPECS["pick"].__class__(
                   "task_a", "whole task", SKILL_SPECS["pick"].parameters, (), (), (), ()),
               adapter_state=full.state_dict(), stats=_stats(),
               adapter={"kind": "full", "arch": full.cfg.to_dict()})
    return root, merge_lora(adapted).eval(), full.eval()


def _reference_action(model, skill_id, obs, args):
    from robot_skills.policies.features import skill_features
    st = _stats()
    x = torch.from_numpy(st.normalize_features(skill_features(obs, args)))[None]
    with torch.no_grad():
        a = model(x, torch.tensor([skill_id]))[0, 0].numpy()
    return st.unnormalize_actions(a)


def test_round_trip_identical_actions(library):
    root, ref_model, _ = library
    lib = SkillLibrary(root)
    assert lib.list() == ["place_on", "task_a"]
    assert lib.verify_all() == {"base": "ok", "place_on": "ok", "task_a": "ok"}
    skill = lib.get("place_on")
    skill.reset(["bowl_1", "plate_1"], None)
    got = skill.act(_obs()).to_array()
    want = np.clip(_reference_action(ref_model, 1, _obs(), ["bowl_1", "plate_1"]), -0.05, 0.05)
    np.testing.assert_allclose(got[:3], want[:3], atol=1e-5)
    # contracts for the planner
    c = lib.contracts["place_on"]
    assert c == SKILL_SPECS["place_on"]
    m = lib.manifest("place_on")
    assert m["trust_tier"] == "sim" and m["adapter"]["rank"] == 2
    assert m["provenance"]["dataset_sha256"] == "ab" * 32 and m["provenance"]["code_version"]
    assert lib.get("task_a").model.cfg.hidden == 16
    # evaluation record can be filled later; the contract still verifies
    lib.set_evaluation("place_on", {"success_rate": 0.9, "episodes": 20}, trust_tier="supervised")
    assert lib.manifest("place_on")["evaluation"]["success_rate"] == 0.9
    assert SkillLibrary(root).verify_all()["place_on"] == "ok"
    # a second identical load gives identical actions
    s2 = SkillLibrary(root).get("place_on")
    s2.reset(["bowl_1", "plate_1"])
    np.testing.assert_array_equal(s2.act(_obs()).to_array(), got)


def _flip_byte(path, offset=-5):
    b = bytearray(path.read_bytes())
    b[offset] ^= 0x01
    path.write_bytes(bytes(b))


def test_tampered_adapter_refused(library):
    root, *_ = library
    _flip_byte(root / "place_on" / "adapter_model.safetensors")
    with pytest.raises(SkillIntegrityError, match=r"adapter_model\.safetensors: sha256 [0-9a-f]{64} "
                                                  r"does not match [0-9a-f]{64}"):
        SkillLibrary(root).get("place_on")
    report = SkillLibrary(root).verify_all()
    assert "adapter_model.safetensors" in report["place_on"] and report["task_a"] == "ok"


def test_tampered_stats_refused(library):
    root, *_ = library
    p = root / "place_on" / "stats.json"
    original = p.read_bytes()
    d = json.loads(original)
    d["action_std"][0] *= 2
    p.write_text(json.dumps(d))
    # a different size is refused from fstat, before the file is read
    with pytest.raises(SkillIntegrityError, match=r"stats\.json: \d+ bytes, but .*skill\.yaml "
                                                  r"records \d+ bytes"):
        SkillLibrary(root).get("place_on")
    p.write_bytes(original.replace(b'"chunk_size": 4', b'"chunk_size": 5'))  # same size
    with pytest.raises(SkillIntegrityError, match=r"stats\.json: sha256"):
        SkillLibrary(root).get("place_on")


def test_tampered_contract_refused(library):
    root, *_ = library
    p = root / "place_on" / "skill.yaml"
    d = yaml.safe_load(p.read_text())
    d["preconditions"] = []
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(SkillIntegrityError, match=r"skill\.yaml: contract sha256 [0-9a-f]{64} "
                                                  r"does not match"):
        SkillLibrary(root).get("place_on")
    assert "place_on" not in SkillLibrary(root).contracts


def test_swapped_base_refused(library, tmp_path):
    root, *_ = library
    torch.manual_seed(5)
    arch = BCConfig(num_skills=2, chunk_size=4, hidden=32, layers=3)
    other = save_base(tmp_path / "other", GoalConditionedBC(arch).state_dict(), arch, SKILLS)
    shutil.rmtree(root / "base")
    shutil.copytree(other.path, root / "base")
    with pytest.raises(SkillIntegrityError, match=r"adapts base policy [0-9a-f]{64} but the "
                                                  r"library's base .* is [0-9a-f]{64}"):
        SkillLibrary(root).get("place_on")
    # the base weights file itself swapped under an unchanged base.yaml
    _flip_byte(root / "base" / "base.safetensors")
    with pytest.raises(SkillIntegrityError, match=r"base\.safetensors: sha256"):
        SkillLibrary(root).get("place_on")


def test_malformed_contract_and_unknown_tier(library):
    root, *_ = library
    p = root / "place_on" / "skill.yaml"
    text = p.read_text()
    p.write_text("name: place_on\nparameters: [unbalanced\n")
    with pytest.raises(SkillFormatError, match="not valid YAML"):
        read_manifest(root / "place_on")
    p.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SkillFormatError, match="not valid YAML"):
        read_manifest(root / "place_on")
    d = yaml.safe_load(text)
    d["trust_tier"] = "yolo"
    from robot_skills.skills.skill_dir import _contract_hash
    d["contract_sha256"] = _contract_hash(d)
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(SkillFormatError, match="unknown trust_tier 'yolo'"):
        SkillLibrary(root).get("place_on")
    with pytest.raises(ValueError, match="unknown trust tier"):
        save_skill(root / "x", spec=SKILL_SPECS["pick"], adapter_state={}, stats=_stats(),
                   adapter={"kind": "full", "arch": {}}, trust_tier="root")


def test_missing_file_and_base(library):
    root, *_ = library
    with pytest.raises(SkillFormatError, match="needs the library's base"):
        load_skill(root / "place_on", None)
    (root / "place_on" / "stats.json").unlink()
    with pytest.raises(SkillFormatError, match="missing .*stats.json"):
        SkillLibrary(root).get("place_on")
    with pytest.raises(KeyError, match="no skill 'fly'"):
        SkillLibrary(root).get("fly")


def test_failed_save_leaves_previous_skill(library):
    root, *_ = library
    before = (root / "place_on" / "skill.yaml").read_text()
    with pytest.raises(ValueError):
        save_skill(root / "place_on", spec=SKILL_SPECS["place_on"], adapter_state={},
                   stats=_stats(), adapter={"kind": "lora", "rank": 2}, base=None)
    assert (root / "place_on" / "skill.yaml").read_text() == before
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
