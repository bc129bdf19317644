"""End-to-end through the CLI jobs and Hydra: collect expert demos -> train a skill library ->
evaluate, on one real LIBERO task file; Hydra builds every part from its config; a library that
does not load fails the command; ``--multirun`` sweeps work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from libero_paths import LIBERO_BDDL

from robot_skills import cli
from robot_skills.data.hdf5 import DemoReader
from robot_skills.execution.interfaces import SkillSet
from robot_skills.skills.library import SkillLibrary

GOAL_DIR = LIBERO_BDDL / "libero_goal"
TASK = "put_the_bowl_on_the_plate"


def _overrides(run_dir: Path, *extra: str) -> list[str]:
    return [f"run_dir={run_dir}", f"suite.path={GOAL_DIR}", f"+suite.tasks=[{TASK}]",
            "workers=1", "collect.mode=task", "collect.demos_per_task=2",
            "training.held_in_calls=0", "training.steps=30",
            "training.lora_steps=10", "training.checkpoint_every=20", "policy.hidden=64",
            "policy.layers=2", "eval.episodes_per_task=1", "eval.video=false",
            "suite.max_episode_steps=150", *extra]


def test_every_config_group_builds_its_part(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from robot_skills.planning.symbolic import SymbolicPlanner

    cfg = cli.load_config(_overrides(tmp_path))
    world_factory = cli.build_world(cfg)
    assert world_factory.action_limits().max_delta_pos == cfg.robot.max_delta_pos
    planner = cli.build_planner(cfg)({})
    assert isinstance(planner, SymbolicPlanner) and planner.max_depth == cfg.planner.max_depth
    experts = instantiate(cfg.collect.experts)()
    assert isinstance(experts, SkillSet) and "place_on" in experts.specs
    assert instantiate(cfg.eval.skills.learned).library == str(tmp_path / "skills")
    world = world_factory(GOAL_DIR / f"{TASK}.bddl", 0)
    world.robot.reset(0)
    assert ("on", "akita_black_bowl_1", "plate_1") in world.goal_progress()


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
    report = lib.verify_all()  # every file's sha256 matches its contract
    assert report == {"base": "ok", "pick": "ok", "place_on": "ok"}, report

    results = cli.run_eval(cfg)
    out = tmp_path / "eval_learned" / "results.json"
    on_disk = json.loads(out.read_text())
    assert on_disk["tasks"][TASK]["n"] == 1
    assert results["metadata"]["config"]["run_dir"] == str(tmp_path)
    ep = results["episodes"][0]
    # the skills loaded and ran: the planner's plan came from their contracts, no load errors
    assert ep["error"] is None and ep["reason"] not in ("error", "world_error", "no_plan",
                                                        "invalid_plan"), ep
    assert ep["plans"][0] == ["pick(akita_black_bowl_1)",
                              "place_on(akita_black_bowl_1, plate_1)"]
    assert ep["calls"] and all(c["outcome"] != "error" for c in ep["calls"]), ep["calls"]

    # a tampered adapter: the command refuses the library before any episode runs
    adapter = next((lib_dir / "place_on").glob("adapter*.safetensors"))
    adapter.write_bytes(adapter.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ValueError, match="place_on"):
        cli.run_eval(cfg)


def test_expert_episodes_succeed_through_the_cli(tmp_path: Path) -> None:
    cfg = cli.load_config(_overrides(tmp_path, "eval.policy=expert", "eval.episodes_per_task=2",
                                     "suite.max_episode_steps=600"))
    results = cli.run_eval(cfg)
    assert results["tasks"][TASK]["successes"] == 2, results["episodes"]


def test_unknown_override_is_refused(tmp_path: Path) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        cli.load_config([f"run_dir={tmp_path}", "no_such_key=1"])


def test_config_dir_env_must_hold_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.CONFIG_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        cli.config_dir()


def _rs(tmp_path: Path, verb: str, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which(f"rs-{verb}", path=str(Path(sys.executable).parent))
    assert exe, f"rs-{verb} is not installed beside {sys.executable}"
    env = {**os.environ, "MUJOCO_GL": "egl", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)


def test_eval_without_a_library_exits_nonzero(tmp_path: Path) -> None:
    p = _rs(tmp_path, "eval", *_overrides(tmp_path / "run"))
    assert p.returncode != 0
    assert "no skill library" in (p.stdout + p.stderr)
    assert not (tmp_path / "run" / "eval_learned" / "results.json").exists()


def test_multirun_sweeps_eval_seeds(tmp_path: Path) -> None:
    run = tmp_path / "run"
    p = _rs(tmp_path, "eval", "--multirun", "eval.seed=0,1",
            *_overrides(run, "eval.policy=expert", "suite.max_episode_steps=600"))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    for job, seed in ((0, 0), (1, 1)):
        res = json.loads((run / "multirun" / str(job) / "eval_expert" / "results.json").read_text())
        assert res["metadata"]["seeds"] == [seed]
        assert res["metadata"]["config"]["eval"]["seed"] == seed
        assert res["tasks"][TASK]["n"] == 1


def test_monolithic_baseline_trains_and_runs(tmp_path: Path) -> None:
    cfg = cli.load_config(_overrides(tmp_path, "baseline=true", "training.baseline_steps=20",
                                     "training.skill_library=false"))
    cli.run_collect(cfg)
    cli.run_train(cfg)
    lib = SkillLibrary(tmp_path / "task_policies")
    assert lib.list() == [TASK]
    assert lib.manifest(TASK)["adapter"]["kind"] == "full"
    results = cli.run_eval(cfg, policy="monolithic")
    assert results["metadata"]["mode"] == "monolithic"
    ep = results["episodes"][0]
    assert ep["error"] is None and ep["reason"] != "world_error", ep
    assert ep["calls"][0]["skill"] == TASK and ep["steps"] > 0
