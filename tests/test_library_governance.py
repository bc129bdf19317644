"""Issue 11: PEFT adapters, versions side by side, trust tiers, the admission gate, rs-library,
and nothing on disk changed by a refused load / promotion / retirement."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.features import FEATURE_DIM
from robot_skills.policies.normalization import NormStats
from robot_skills.policies.peft_adapter import adapter_state, attach, lora_config
from robot_skills.skills import cli
from robot_skills.skills.governance import (
    GateConfig,
    PromotionError,
    RetirementError,
    diff_contracts,
    promote,
    retire,
)
from robot_skills.skills.library import LibrarySkills, SkillLibrary, TrustTierError
from robot_skills.skills.skill_dir import (
    SkillFormatError,
    SkillIntegrityError,
    build_model,
    load_base,
    load_skill,
    read_manifest,
    save_base,
    save_skill,
)

SKILLS = ["pick", "place_on"]
ARCH = BCConfig(num_skills=2, chunk_size=4, hidden=32, layers=3)


def _stats():
    rng = np.random.default_rng(0)
    return NormStats(rng.normal(size=FEATURE_DIM).astype(np.float32),
                     rng.uniform(0.5, 2, FEATURE_DIM).astype(np.float32),
                     np.zeros(7, np.float32), np.full(7, 0.02, np.float32), SKILLS, 4, 100)


def _adapter(base: GoalConditionedBC, std: float, seed: int, rank: int = 8):
    torch.manual_seed(seed)
    m = GoalConditionedBC(ARCH)
    m.load_state_dict(base.state_dict())
    pm = attach(m, lora_config(m, rank=rank))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.normal_(0, std)
    return adapter_state(pm)


def _save(root, info, name, version, state, tier="sim"):
    return save_skill(root / f"{name}@{version}", spec=SKILL_SPECS[name], adapter_state=state,
                      stats=_stats(), adapter={"kind": "lora", "rank": 8, "alpha": 16.0},
                      base=info, skill_id=SKILLS.index(name), version=version, trust_tier=tier,
                      provenance={"dataset_sha256": "cd" * 32, "config": {"lora_rank": 8},
                                  "metrics": {"val_loss": 0.1}})


@pytest.fixture()
def lib(tmp_path):
    torch.manual_seed(0)
    base = GoalConditionedBC(ARCH)
    root = tmp_path / "lib"
    info = save_base(root, base.state_dict(), ARCH, SKILLS)
    good = _adapter(base, 0.05, 1)
    _save(root, info, "pick", "1.0.0", good)
    _save(root, info, "pick", "1.1.0", _adapter(base, 0.05, 2))
    _save(root, info, "place_on", "1.0.0", _adapter(base, 0.05, 3))
    return root, base, info, good


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                       p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------ PEFT format
def test_peft_files_load_with_peft_itself_and_merge_to_plain_linear(lib):
    from peft import PeftModel

    root, base, info, _ = lib
    d = root / "pick@1.0.0"
    assert sorted(p.name for p in d.iterdir()) == ["adapter_config.json",
                                                   "adapter_model.safetensors", "skill.yaml",
                                                   "stats.json"]
    cfg = json.loads((d / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["lora_alpha"] == 16.0
    assert cfg["base_model_name_or_path"] == f"sha256:{info.sha256}"
    assert cfg["target_modules"] == ["blocks.0.fc", "blocks.1.fc", "head", "inp"]
    # the Hugging Face ecosystem reads the directory as it is
    ref = GoalConditionedBC(ARCH)
    ref.load_state_dict(base.state_dict())
    ref = PeftModel.from_pretrained(ref, str(d)).eval()
    ours, sid = build_model(load_skill(d, info), load_base(root)[1], merge=True)
    assert all(type(m) is nn.Linear for n, m in ours.named_modules()
               if n in cfg["target_modules"])
    x = torch.randn(5, FEATURE_DIM)
    ids = torch.full((5,), sid)
    with torch.no_grad():
        a, b, plain = ref(x, ids), ours(x, ids), base(x, ids)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert (a - plain).abs().max() > 1e-3  # the adapter does change the network


def test_adapter_size_is_small_fraction_of_default_base(tmp_path):
    base = GoalConditionedBC(BCConfig(num_skills=8))
    st = adapter_state(attach(base, lora_config(base)))  # default r = 8, every Linear
    n_adapter = sum(t.numel() for t in st.values())
    n_base = sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n)
    assert n_adapter / n_base <= 0.05, (n_adapter, n_base)


def test_adapter_on_other_base_refused_and_nothing_changes(lib, tmp_path):
    root, _, info, good = lib
    other_root = tmp_path / "other"
    torch.manual_seed(99)
    other = save_base(other_root, GoalConditionedBC(ARCH).state_dict(), ARCH, SKILLS)
    before = _snapshot(root)
    with pytest.raises(SkillIntegrityError, match=r"adapts base policy [0-9a-f]{64} but the "
                                                  r"library's base .* is [0-9a-f]{64}"):
        load_skill(root / "pick@1.0.0", other)
    # adapter_config.json naming another base (its hash re-recorded in the contract) is refused
    d = root / "place_on@1.0.0"
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = f"sha256:{other.sha256}"
    new = json.dumps(cfg).encode()
    (d / "adapter_config.json").write_bytes(new)
    m = read_manifest(d)
    m["files"]["adapter_config.json"] = hashlib.sha256(new).hexdigest()
    m["file_sizes"]["adapter_config.json"] = len(new)
    from robot_skills.skills.skill_dir import _contract_hash, dump_contract
    m["contract_sha256"] = _contract_hash(m)
    (d / "skill.yaml").write_text(dump_contract(m))
    with pytest.raises(SkillIntegrityError, match=r"base_model_name_or_path .* differs from the "
                                                  r"contract's base"):
        load_skill(d, info)
    after = _snapshot(root)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"place_on@1.0.0/adapter_config.json", "place_on@1.0.0/skill.yaml"}


def test_tampered_adapter_config_refused(lib):
    root, _, info, _ = lib
    p = root / "pick@1.0.0" / "adapter_config.json"
    p.write_text(p.read_text().replace('"r": 8', '"r": 4'))
    with pytest.raises(SkillIntegrityError, match=r"adapter_config\.json: .*does not match|"
                                                  r"adapter_config\.json: \d+ bytes"):
        load_skill(root / "pick@1.0.0", info)


# ------------------------------------------------------------------------ versions and tiers
def test_resolution_newest_at_tier_pins_and_errors(lib):
    root, base, info, _ = lib
    L = SkillLibrary(root)
    assert L.list() == ["pick", "place_on"]
    assert [v.version for v in L.versions("pick")] == ["1.0.0", "1.1.0"]
    assert L.resolve("pick").version == "1.1.0"  # newest at 'sim'
    assert SkillLibrary(root, pins={"pick": "1.0.0"}).resolve("pick").version == "1.0.0"
    with pytest.raises(TrustTierError, match=r"skill 'pick' has no non-retired version at or "
                                             r"above trust tier 'supervised'; versions: "
                                             r"1\.0\.0 \[sim\], 1\.1\.0 \[sim\]"):
        SkillLibrary(root, min_tier="supervised").resolve("pick")
    # a planner's skill set at 'supervised' names the skill below the tier
    with pytest.raises(ValueError, match=r"pick: TrustTierError: .*below|pick: TrustTierError"):
        LibrarySkills(str(root), min_tier="supervised")()
    # after 1.0.0 is supervised, a supervised caller gets 1.0.0 although 1.1.0 is newer
    from robot_skills.skills.skill_dir import update_manifest
    update_manifest(root / "pick@1.0.0", trust_tier="supervised")
    update_manifest(root / "place_on@1.0.0", trust_tier="autonomous")
    L2 = SkillLibrary(root, min_tier="supervised")
    assert L2.resolve("pick").version == "1.0.0" and L2.resolve("place_on").version == "1.0.0"
    ss = LibrarySkills(str(root), min_tier="supervised")()
    assert sorted(ss.specs) == ["pick", "place_on"]
    with pytest.raises(TrustTierError, match=r"pick@1\.1\.0 has trust tier 'sim', below the "
                                             r"required 'supervised'"):
        SkillLibrary(root, min_tier="supervised", pins={"pick": "1.1.0"}).resolve("pick")
    with pytest.raises(TrustTierError, match=r"no version 2\.0\.0"):
        SkillLibrary(root, pins={"pick": "2.0.0"}).resolve("pick")


def test_version_must_be_semver_and_dir_must_match(lib):
    root, base, info, good = lib
    with pytest.raises(SkillFormatError, match=r"semantic version"):
        _save(root, info, "pick", "1.2", good)
    _save(root, info, "pick", "1.2.0", good)
    (root / "pick@1.2.0").rename(root / "pick@1.3.0")
    with pytest.raises(SkillFormatError, match=r"directory names version '1\.3\.0', the "
                                               r"contract '1\.2\.0'"):
        SkillLibrary(root).versions("pick")


# ------------------------------------------------------------------------ the admission gate
class ActionEvaluator:
    """A fast, behaviour-based stand-in for the sim: an episode (seed) succeeds when the
    version's first action on that seed's observation is within ``tol`` of the reference
    (the known-good adapter's); a composed task succeeds when every skill it uses does."""

    def __init__(self, root, ref_state, tol=0.05):
        self.root, self.ref_state, self.tol = Path(root), ref_state, tol
        self.calls: list[tuple[str, object]] = []

    def _act(self, model, sid, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(1, FEATURE_DIM, generator=g)
        with torch.no_grad():
            return model(x, torch.tensor([sid]))[0, 0]

    def _ref(self, sid, seed):
        if not hasattr(self, "_ref_model"):
            info, state = load_base(self.root)
            m = GoalConditionedBC(info.arch)
            m.load_state_dict(state)
            from robot_skills.policies.peft_adapter import apply_adapter, config_dict
            cfg = config_dict(8, 16.0, ["blocks.0.fc", "blocks.1.fc", "head", "inp"], info.sha256)
            self._ref_model = apply_adapter(m, cfg, self.ref_state)
        return self._act(self._ref_model, sid, seed)

    def _oks(self, library, name, version, seeds):
        v = [x for x in library.versions(name) if x.version == version][0]
        model, sid = build_model(load_skill(v.path, library.base()[0]), library.base()[1])
        return [bool((self._act(model, sid, s) - self._ref(sid, s)).abs().max() < self.tol)
                for s in seeds]

    def skill(self, library, version, seeds):
        self.calls.append(("skill", str(version)))
        return self._oks(library, version.name, version.version, seeds)

    def composed(self, library, pins, seeds):
        self.calls.append(("composed", dict(pins)))
        (name, ver), = pins.items()
        return {"task_pick": self._oks(library, name, ver, seeds)}


def test_gate_promotes_good_version_and_writes_verdict(lib):
    root, base, info, good = lib
    _save(root, info, "pick", "1.2.0", good)  # a retrained copy of the known-good skill
    ev = ActionEvaluator(root, good)
    L = SkillLibrary(root)
    m = promote(L, "pick", "1.2.0", "supervised", ev, GateConfig(threshold=0.9))
    assert m["trust_tier"] == "supervised"
    g = m["evaluation"]["gate"]
    assert g["passed"] and g["skill_success"] == 1.0 and g["skill_episodes"] == 20
    assert g["config"]["seeds"] == list(range(20))
    # A/B against the current version (1.1.0, the newest at 'sim'), same seeds
    assert g["composed"]["incumbent_version"] == "1.1.0"
    assert ("composed", {"pick": "1.2.0"}) in ev.calls and ("composed", {"pick": "1.1.0"}) in ev.calls
    assert read_manifest(root / "pick@1.2.0")["history"][-1]["event"] == "promote"
    assert SkillLibrary(root, min_tier="supervised").resolve("pick").version == "1.2.0"


def test_gate_refuses_broken_version_and_changes_nothing(lib):
    root, base, info, good = lib
    _save(root, info, "pick", "1.2.0", _adapter(base, 2.0, 7))  # deliberately broken weights
    ev = ActionEvaluator(root, good)
    before = _snapshot(root)
    with pytest.raises(PromotionError, match=r"refused by the admission gate: skill success "
                                             r"0\.\d+ over 20 seeded episodes is below the "
                                             r"threshold 0\.800") as ei:
        promote(SkillLibrary(root), "pick", "1.2.0", "supervised", ev)
    assert ei.value.record is not None and ei.value.record["passed"] is False
    assert _snapshot(root) == before
    assert read_manifest(root / "pick@1.2.0")["trust_tier"] == "sim"


def test_gate_refuses_version_that_lowers_composed_success(lib):
    root, base, info, good = lib

    class Composed(ActionEvaluator):
        def skill(self, library, version, seeds):
            return [True] * len(seeds)  # passes alone

        def composed(self, library, pins, seeds):
            (name, ver), = pins.items()
            return {"t1": [ver != "1.1.0" or s % 2 == 0 for s in seeds], "t2": [True] * len(seeds)}

    from robot_skills.skills.skill_dir import update_manifest
    update_manifest(root / "pick@1.0.0", trust_tier="supervised")
    before = _snapshot(root)
    with pytest.raises(PromotionError, match=r"composed success 0\.750 is below the incumbent "
                                             r"pick@1\.0\.0's 1\.000 .* lower on \['t1'\]"):
        promote(SkillLibrary(root), "pick", "1.1.0", "supervised", Composed(root, good))
    assert _snapshot(root) == before


def test_bad_promotions_and_retirements_change_nothing(lib):
    root, base, info, good = lib
    ev = ActionEvaluator(root, good)
    L = SkillLibrary(root)
    before = _snapshot(root)
    with pytest.raises(PromotionError, match=r"one step at a time"):
        promote(L, "pick", "1.0.0", "autonomous", ev)
    with pytest.raises(PromotionError, match=r"no version '9\.9\.9'"):
        promote(L, "pick", "9.9.9", "supervised", ev)
    with pytest.raises(ValueError, match=r">= 20 episodes"):
        GateConfig(episodes=5)

    class Boom(ActionEvaluator):
        def composed(self, library, pins, seeds):
            raise RuntimeError("simulator crashed")

    with pytest.raises(RuntimeError, match="simulator crashed"):
        promote(L, "pick", "1.0.0", "supervised", Boom(root, good))
    with pytest.raises(RetirementError, match=r"no version '3\.0\.0'"):
        retire(L, "pick", "3.0.0", "old")
    with pytest.raises(RetirementError, match=r"needs a reason"):
        retire(L, "pick", "1.0.0", " ")
    # a tampered candidate is refused before any evaluation
    p = root / "pick@1.0.0" / "adapter_model.safetensors"
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 1
    p.write_bytes(bytes(raw))
    before = _snapshot(root)
    ev.calls.clear()
    with pytest.raises(PromotionError, match=r"pick@1\.0\.0 does not verify: .*sha256"):
        promote(L, "pick", "1.0.0", "supervised", ev)
    assert ev.calls == [] and _snapshot(root) == before


def test_retire_skips_version_and_pin_to_it_fails(lib):
    root, *_ = lib
    m = retire(SkillLibrary(root), "pick", "1.1.0", "regressed on drawers")
    assert m["retired"]["reason"] == "regressed on drawers"
    assert SkillLibrary(root).resolve("pick").version == "1.0.0"
    with pytest.raises(TrustTierError, match=r"pick@1\.1\.0 is retired"):
        SkillLibrary(root, pins={"pick": "1.1.0"}).resolve("pick")
    before = _snapshot(root)
    with pytest.raises(RetirementError, match=r"already retired"):
        retire(SkillLibrary(root), "pick", "1.1.0", "again")
    assert _snapshot(root) == before
    assert SkillLibrary(root).verify_all()["pick@1.1.0"] == "ok"  # kept for audit


# ------------------------------------------------------------------------ rs-library
def test_cli_list_show_verify_diff_promote_retire(lib, capsys, monkeypatch):
    root, base, info, good = lib
    r = str(root)
    assert cli.main(["--root", r, "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [ln.split() for ln in out[1:]]
    assert [x[:3] for x in rows] == [["pick", "1.0.0", "sim"], ["pick", "1.1.0", "sim"],
                                     ["place_on", "1.0.0", "sim"]]
    assert rows[1][-1] == "*" and rows[0][-1] != "*"
    assert cli.main(["--root", r, "show", "pick@1.0.0"]) == 0
    assert "version: 1.0.0" in capsys.readouterr().out
    assert cli.main(["--root", r, "verify"]) == 0
    assert "pick@1.1.0: ok" in capsys.readouterr().out
    assert cli.main(["--root", r, "diff", "pick@1.0.0", "pick@1.1.0"]) == 0
    out = capsys.readouterr().out
    assert "version:" in out and "files.adapter_model.safetensors:" in out
    assert "description" not in out
    # promote through an evaluator named MODULE:CALLABLE
    import types
    mod = types.ModuleType("fake_gate_eval")
    mod.make = lambda tol="0.05": ActionEvaluator(root, good, float(tol))
    monkeypatch.setitem(__import__("sys").modules, "fake_gate_eval", mod)
    _save(root, info, "pick", "1.2.0", _adapter(base, 2.0, 7))
    before = _snapshot(root)
    assert cli.main(["--root", r, "promote", "pick@1.2.0", "--to", "supervised",
                     "--evaluator", "fake_gate_eval:make"]) == 1
    assert "refused by the admission gate" in capsys.readouterr().err
    assert _snapshot(root) == before
    assert cli.main(["--root", r, "promote", "pick@1.1.0", "--to", "supervised",
                     "--evaluator", "fake_gate_eval:make", "--evaluator-arg", "tol=100"]) == 0
    assert "promoted pick@1.1.0 to 'supervised'" in capsys.readouterr().out
    assert cli.main(["--root", r, "retire", "pick@1.0.0", "--reason", "superseded"]) == 0
    assert cli.main(["--root", r, "list", "--min-tier", "supervised"]) == 0
    out = capsys.readouterr().out
    assert any(ln.split()[:2] == ["pick", "1.1.0"] and ln.rstrip().endswith("*")
               for ln in out.splitlines())
    # tamper: verify exits 1 naming the file
    p = root / "place_on@1.0.0" / "stats.json"
    p.write_text(p.read_text() + " ")
    assert cli.main(["--root", r, "verify"]) == 1
    assert "place_on@1.0.0/stats.json" in capsys.readouterr().out
    assert cli.main(["--root", r, "show", "nope"]) == 1
    assert "no skill 'nope'" in capsys.readouterr().err


def test_diff_contracts_reports_leaves():
    a = {"version": "1.0.0", "evaluation": {"x": 1}, "contract_sha256": "a"}
    b = {"version": "1.1.0", "evaluation": {"x": 1, "y": 2}, "contract_sha256": "b"}
    assert diff_contracts(a, b) == [("evaluation.y", None, 2), ("version", "1.0.0", "1.1.0")]


def test_hardware_executor_loads_newest_version_at_its_tier(lib):
    from hardware.executor_node import load_library
    from robot_skills.skills.skill_dir import update_manifest

    root, *_ = lib
    update_manifest(root / "pick@1.0.0", trust_tier="supervised")
    skills, tiers = load_library(root, "supervised")
    # pick: 1.0.0 (supervised) rather than the newer 1.1.0 (sim); place_on has no supervised
    # version, so its newest loads and the runner's gate rejects tasks that need it
    assert tiers == {"pick": "supervised", "place_on": "sim"}
    assert skills.policies["pick"].manifest["version"] == "1.0.0"
    _, tiers = load_library(root, "sim")
    assert tiers == {"pick": "sim", "place_on": "sim"}


def test_older_format_libraries_still_load_with_the_same_actions(lib):
    """A skill written before the PEFT format (robot_skills.skill/1: adapter.safetensors with
    '<layer>.lora_A' keys) loads, and acts exactly like the same adapter in PEFT's format."""
    from safetensors.torch import save as st_save

    from robot_skills.skills.skill_dir import _contract_hash, dump_contract

    root, base, info, good = lib
    new = root / "pick@1.0.0"
    old = root / "pick@0.9.0"
    old.mkdir()
    own = {k[len("base_model.model."):-len(".weight")]: v for k, v in good.items()}
    data = st_save(own, metadata={"format": "robot_skills.skill/1;kind=lora"})
    (old / "adapter.safetensors").write_bytes(data)
    (old / "stats.json").write_bytes((new / "stats.json").read_bytes())
    m = read_manifest(new)
    m.update(format="robot_skills.skill/1", version="0.9.0")
    for k in ("adapter_config.json", "adapter_model.safetensors"):
        m["files"].pop(k), m["file_sizes"].pop(k)
    m["files"]["adapter.safetensors"] = hashlib.sha256(data).hexdigest()
    m["file_sizes"]["adapter.safetensors"] = len(data)
    m["adapter"] = {"kind": "lora", "rank": 8, "alpha": 16.0,
                    "target_layers": m["adapter"]["target_layers"]}
    m["contract_sha256"] = _contract_hash(m)
    (old / "skill.yaml").write_text(dump_contract(m))
    L = SkillLibrary(root)
    assert L.verify_all()["pick@0.9.0"] == "ok"
    a, _ = build_model(load_skill(old, info), load_base(root)[1])
    b, sid = build_model(load_skill(new, info), load_base(root)[1])
    x = torch.randn(3, FEATURE_DIM)
    with torch.no_grad():
        torch.testing.assert_close(a(x, torch.full((3,), sid)), b(x, torch.full((3,), sid)))


def test_eval_config_passes_tier_and_pins_to_the_skill_set(lib):
    from hydra.utils import instantiate

    from robot_skills import cli as main_cli

    root, *_ = lib
    cfg = main_cli.load_config([f"run_dir={root.parent}", "eval.skills.learned.library=" + str(root),
                                "eval.skills.learned.pins={pick: 1.0.0}"])
    factory = instantiate(cfg.eval.skills.learned)
    assert factory.pins == (("pick", "1.0.0"),) and factory.min_tier == "sim"
    assert factory().policies["pick"].manifest["version"] == "1.0.0"
    cfg = main_cli.load_config([f"run_dir={root.parent}", "eval.skills.learned.library=" + str(root),
                                "eval.skills.learned.min_tier=autonomous"])
    with pytest.raises(ValueError, match=r"2 skill\(s\) refused: pick: TrustTierError: .*"
                                         r"'autonomous'"):
        instantiate(cfg.eval.skills.learned)()
    with pytest.raises(ValueError, match="unknown trust tier 'trusted'"):
        LibrarySkills(str(root), min_tier="trusted")


# ------------------------------------------------------------------------ static merges (PEFT)
def _linear_weights(model):
    return {n: m.weight.detach().clone() for n, m in model.named_modules()
            if type(m) is nn.Linear}


def test_static_merges_with_peft(lib):
    from robot_skills.skills.merge import merge_adapters, save_merged_skill

    root, base, info, good = lib
    L = SkillLibrary(root)
    w0 = _linear_weights(base)
    deltas = {}
    for ref in ("pick@1.0.0", "place_on@1.0.0"):
        name, ver = ref.split("@")
        m, _ = build_model(load_skill(root / ref, info), load_base(root)[1])
        deltas[ref] = {k: v - w0[k] for k, v in _linear_weights(m).items()}
    # cat: the merged delta is exactly the weighted sum of the sources' deltas; ranks add up
    state, ad = merge_adapters(L, ["pick@1.0.0", "place_on@1.0.0"], [1.0, 0.5], "cat")
    assert ad["rank"] == 16
    d = save_merged_skill(L, ["pick@1.0.0", "place_on@1.0.0"], [1.0, 0.5], "cat",
                          SKILL_SPECS["pick"], "2.0.0", 0)
    assert read_manifest(d)["provenance"]["merge"]["sources"] == ["pick@1.0.0",
                                                                  "place_on@1.0.0"]
    assert SkillLibrary(root).verify_all()["pick@2.0.0"] == "ok"
    merged, _ = build_model(load_skill(d, info), load_base(root)[1])
    for k, v in _linear_weights(merged).items():
        want = deltas["pick@1.0.0"][k] + 0.5 * deltas["place_on@1.0.0"][k]
        torch.testing.assert_close(v - w0[k], want, rtol=1e-4, atol=1e-5)
    # linear with weights (1, 0) is the first adapter itself
    state, ad = merge_adapters(L, ["pick@1.0.0", "place_on@1.0.0"], [1.0, 0.0], "linear")
    assert ad["rank"] == 8
    from robot_skills.policies.peft_adapter import apply_adapter, config_dict

    m = GoalConditionedBC(ARCH)
    m.load_state_dict(base.state_dict())
    m = apply_adapter(m, config_dict(ad["rank"], ad["alpha"], ad["target_layers"], info.sha256),
                      state)
    for k, v in _linear_weights(m).items():
        torch.testing.assert_close(v - w0[k], deltas["pick@1.0.0"][k], rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    for method, kw in (("ties", {"density": 0.5}), ("dare_linear", {"density": 0.7}),
                       ("svd", {})):
        st, a = merge_adapters(L, ["pick@1.0.0", "place_on@1.0.0"], [1.0, 1.0], method, **kw)
        assert a["rank"] == 8 and all(bool(torch.isfinite(t).all()) for t in st.values())
    with pytest.raises(ValueError, match=r"'ties' needs density"):
        merge_adapters(L, ["pick", "place_on"], [1.0, 1.0], "ties")
    with pytest.raises(ValueError, match="two or more"):
        merge_adapters(L, ["pick"], [1.0], "cat")
