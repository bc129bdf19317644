"""The main job at its defaults (README command 1's `rs-quickstart`) on libero_goal: learned skills
composed by the planner succeed. Slow tier (~5 min on 2 cores): `pytest -m slow`, run by CI."""

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
    assert lib["demos"] >= 0.95 * 30 * 10  # the experts solve (almost) every collection episode
    assert results["suite"]["n_tasks"] == 10 and not results["skipped_tasks"]
    errors = [e for e in results["episodes"] if e["error"]]
    assert not errors, errors[:3]
    assert results["suite"]["mean_success"] >= 0.95, results["suite"]
