"""End-to-end: collect expert demos -> train a skill library -> evaluate learned skills, via the CLI
jobs and Hydra overrides, on one real LIBERO task file (tiny budgets: this checks the plumbing and
the files each stage writes, not success rates — those are in the README's measured runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from libero_paths import LIBERO_BDDL

from robot_skills import cli
from robot_skills.data.hdf5 import DemoReader
from robot_skills.skills.library import SkillLibrary

SHARED = LIBERO_BDDL
TASK = "put_the_bowl_on_the_plate"

pytestmark = pytest.mark.skipif(not (SHARED / "libero_goal" / f"{TASK}.bddl").is_file(),
                                reason="LIBERO task files not available")


def _overrides(run_dir: Path, *extra: str) -> list[str]:
    return [f"run_dir={run_dir}", f"suite.path={SHARED / 'libero_goal'}", f"+suite.tasks=[{TASK}]",
            "workers=1", "collect.demos_per_task=2", "training.steps=30",
            "training.lora_steps=10", "training.checkpoint_every=20", "policy.hidden=64",
            "policy.layers=2", "eval.episodes_per_task=1", "eval.video=false",
            "suite.max_episode_steps=150", *extra]


def test_collect_train_eval_round_trip(tmp_path: Path) -> None:
    cfg = cli.load_config(_overrides(tmp_path))
    summary = cli.run_collect(cfg)
    assert summary["tasks"][TASK]["attempts"] == 2
    assert summary["tasks"][TASK]["successes"] == 2  # the scripted expert solves this task
    with DemoReader(tmp_path / "demos.hdf5") as r:
        assert len(r.demos) == 2
        segs = r.segments(r.demos[0])
        assert [s.skill for s in segs] == ["pick", "place_on"]
        assert segs[1].args == ("akita_black_bowl_1", "plate_1")
        assert segs[-1].end == r.num_samples(r.demos[0])

    lib_dir = cli.run_train(cfg)
    lib = SkillLibrary(lib_dir)
    assert set(lib.list()) == {"pick", "place_on"}
    assert lib.verify_all()  # every file's sha256 matches its contract

    results = cli.run_eval(cfg)
    out = tmp_path / "eval_learned" / "results.json"
    on_disk = json.loads(out.read_text())
    assert on_disk["tasks"][TASK]["n"] == 1
    assert results["metadata"]["config"]["run_dir"] == str(tmp_path)


def test_unknown_override_is_refused(tmp_path: Path) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        cli.load_config([f"run_dir={tmp_path}", "no_such_key=1"])


def test_config_dir_env_must_hold_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.CONFIG_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        cli.config_dir()


def test_monolithic_baseline_trains_and_runs(tmp_path: Path) -> None:
    cfg = cli.load_config(_overrides(tmp_path, "baseline=true", "training.baseline_steps=20"))
    cli.run_collect(cfg)
    cli.run_train(cfg)
    lib = SkillLibrary(tmp_path / "task_policies")
    assert lib.list() == [TASK]
    assert lib.manifest(TASK)["adapter"]["kind"] == "full"
    results = cli.run_eval(cfg, policy="monolithic")
    assert results["metadata"]["mode"] == "monolithic"
    assert results["tasks"][TASK]["n"] == 1
