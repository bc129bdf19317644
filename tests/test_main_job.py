"""The main job at its defaults (README command 1's `rs-quickstart`) on libero_goal: skill-centric
data, learned skills composed by the planner succeed on the suite, then run composite tasks no
demonstration shows. Slow tier (~10 min on 2 cores): `pytest -m slow`, run by CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_skills import cli


@pytest.mark.slow
def test_quickstart_defaults_reach_the_main_job_target(tmp_path: Path) -> None:
    cfg = cli.load_config([f"run_dir={tmp_path}", "eval.video=false"])
    results = cli.run_quickstart(cfg)
    lib = json.loads((tmp_path / "collect_summary.json").read_text())
    own = [e for t in lib["tasks"].values() for e in t["episodes"] if "target" not in e]
    assert len(own) == 20 * 10  # demos_per_task episodes of each task file's goal
    assert sum(e["success"] for e in own) >= 0.95 * len(own)  # the experts solve (almost) all
    assert len(lib["calls"]) >= 60  # and every grounded call of the scene is a target
    cov = json.loads((tmp_path / "skill_coverage.json").read_text())
    assert {"close", "open", "pick", "place_in", "place_on", "push", "turn_off",
            "turn_on"} <= set(cov["coverage"])  # close: a verb no libero_goal goal uses
    assert results["suite"]["n_tasks"] == 10 and not results["skipped_tasks"]
    errors = [e for e in results["episodes"] if e["error"]]
    assert not errors, errors[:3]
    assert results["suite"]["mean_success"] >= 0.95, results["suite"]
    comp = results["compositions"]
    assert comp["suite"]["n_tasks"] == 5 and not [e for e in comp["episodes"] if e["error"]]
    assert comp["suite"]["mean_success"] >= 0.3, comp["suite"]  # composite tasks do compose
