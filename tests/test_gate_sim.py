"""The admission gate in real simulation (slow): collect expert demos on one LIBERO task, train a
small library, then promote through :class:`SimGateEvaluator` (held-in episodes of the verb and
the composed task, A/B on the same seeds). A deliberately broken version (its adapter scaled
x50) is refused and nothing on disk changes; the trained version's verdict and figures are
written into its contract.

This is the end-to-end wiring check (real episodes, 20 seeds, pins reaching the loaded skills,
crashed episodes raising): a library this small rarely succeeds, so the refusal itself is not
discriminating here; the behavioural gate test with an injected evaluator is in
``test_library_governance.py``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from libero_paths import LIBERO_BDDL

from robot_skills import cli
from robot_skills.evaluation.gate_eval import SimGateEvaluator
from robot_skills.skills.governance import GateConfig, PromotionError, promote
from robot_skills.skills.library import SkillLibrary
from robot_skills.skills.skill_dir import load_base, load_skill, save_skill

GOAL_DIR = LIBERO_BDDL / "libero_goal"
TASK = "put_the_bowl_on_the_plate"


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_gate_in_sim_refuses_broken_version_and_records_verdict(tmp_path: Path) -> None:
    cfg = cli.load_config([f"run_dir={tmp_path}", f"suite.path={GOAL_DIR}",
                           f"+suite.tasks=[{TASK}]", "workers=1", "collect.demos_per_task=2",
                           "training.steps=60", "training.lora_steps=20", "policy.hidden=64",
                           "policy.layers=2", "eval.video=false", "suite.max_episode_steps=150",
                           "training.held_in_calls=0"])
    cli.run_collect(cfg)
    root = Path(cli.run_train(cfg))
    lib = SkillLibrary(root)
    good = lib.load("pick")
    assert good.version == "1.0.0"
    broken = {k: v * 50.0 for k, v in good.adapter_state.items()}
    save_skill(root / "pick@1.1.0", spec=good.spec, adapter_state=broken, stats=good.stats,
               adapter=good.manifest["adapter"], base=load_base(root)[0],
               skill_id=good.manifest["base_policy"]["skill_id"], version="1.1.0")
    ev = SimGateEvaluator(make_world=cli.build_world(cfg), demos=[tmp_path / "demos.hdf5"],
                          tasks=[GOAL_DIR / f"{TASK}.bddl"], planner=cli.build_planner(cfg),
                          max_steps=60, workers=1)
    before = _snapshot(root)
    with pytest.raises(PromotionError, match=r"pick@1\.1\.0 to 'supervised' refused") as ei:
        promote(SkillLibrary(root), "pick", "1.1.0", "supervised", ev, GateConfig(threshold=0.5))
    rec = ei.value.record
    assert rec["skill_episodes"] == 20 and rec["composed"]["incumbent_version"] == "1.0.0"
    assert set(rec["composed"]["tasks"]) == {TASK}
    assert _snapshot(root) == before
    # the trained version passes a zero threshold (this small a library rarely succeeds): the
    # verdict and the real figures land in its contract
    m = promote(SkillLibrary(root), "pick", "1.0.0", "supervised", ev,
                GateConfig(threshold=0.0, max_drop=1.0))
    g = m["evaluation"]["gate"]
    print("gate figures:", {k: g[k] for k in ("skill_success", "skill_episodes", "composed")})
    assert m["trust_tier"] == "supervised" and g["passed"] and g["skill_episodes"] == 20
    assert 0.0 <= g["skill_success"] <= 1.0 and TASK in g["composed"]["tasks"]
    assert load_skill(root / "pick", load_base(root)[0]).manifest["trust_tier"] == "supervised"
