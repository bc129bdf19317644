"""Issue 7, cases 1 and 7: a run that could not do what was asked exits non-zero with a one-line
error (after writing what did run), and config values of the wrong type or range fail at start
naming the key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from libero_paths import LIBERO_BDDL

from robot_skills import cli
from robot_skills.config import ConfigValueError
from sim.factories import SimWorldFactory

GOAL_DIR = LIBERO_BDDL / "libero_goal"
TASK = "put_the_bowl_on_the_plate"


def _overrides(run_dir: Path, *extra: str) -> list[str]:
    return [f"run_dir={run_dir}", f"suite.path={GOAL_DIR}", f"suite.tasks=[{TASK}]",
            "workers=1", "eval.episodes_per_task=2", "eval.video=false", "eval.policy=expert",
            *extra]


class FlakyWorld(SimWorldFactory):
    """The simulator's world factory, except that the world of seed 1 cannot be built."""

    def __call__(self, task_path: Any, seed: int, perturbation: Any = None, **kw: Any) -> Any:
        if seed == 1:
            raise RuntimeError("injected: this world cannot be built")
        return super().__call__(task_path, seed, perturbation, **kw)


def _rs(cwd: Path, verb: str, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which(f"rs-{verb}", path=str(Path(sys.executable).parent))
    assert exe, f"rs-{verb} is not installed beside {sys.executable}"
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, "MUJOCO_GL": "egl"})


def test_an_episode_that_could_not_be_built_fails_the_run_after_writing_results(tmp_path):
    cfg = cli.load_config(_overrides(tmp_path, "world._target_=test_reliability_cli.FlakyWorld"))
    with pytest.raises(SystemExit, match="1 episode.s. did not run"):
        cli.run_eval(cfg)
    res = json.loads((tmp_path / "eval_expert" / "results.json").read_text())
    t = res["tasks"][TASK]
    # the episode that ran is counted; the one that was not built is not a policy failure
    assert t["n"] == 1 and t["successes"] == 1 and t["success_rate"] == 1.0
    assert t["not_run"] == {"count": 1, "reasons": {"world_error": 1}, "seeds": [1]}
    assert "did not run" in (tmp_path / "eval_expert" / "report.md").read_text()


def test_every_task_unsupported_exits_nonzero(tmp_path):
    d = tmp_path / "suite"
    d.mkdir()
    text = (GOAL_DIR / f"{TASK}.bddl").read_text().replace("akita_black_bowl", "no_such_bowl")
    (d / "unsupported.bddl").write_text(text)
    p = _rs(tmp_path, "eval", f"run_dir={tmp_path / 'run'}", f"suite.path={d}",
            "eval.policy=expert")
    assert p.returncode != 0
    assert "unsupported category: no_such_bowl" in p.stdout
    assert "no runnable task files" in p.stderr
    assert not (tmp_path / "run" / "eval_expert").exists()


def test_a_skill_library_that_does_not_load_exits_nonzero(tmp_path):
    p = _rs(tmp_path, "eval", *_overrides(tmp_path / "run", "eval.policy=learned"))
    assert p.returncode != 0
    assert "no skill library" in p.stderr


@pytest.mark.parametrize("override, key", [
    ("eval.episodes_per_task=1.9", "eval.episodes_per_task"),
    ("eval.episodes_per_task=abc", "eval.episodes_per_task"),
    ("eval.video=maybe", "eval.video"),
    ("workers=0", "workers"),
    ("collect.noise_prob=1.5", "collect.noise_prob"),
    ("eval.policy=nonsense", "eval.policy"),
    ("training.lr=-1", "training.lr"),
])
def test_bad_config_values_fail_at_start_naming_the_key(tmp_path, override, key):
    from hydra.errors import ConfigCompositionException

    with pytest.raises((ConfigCompositionException, ConfigValueError)) as info:
        cli.load_config([f"run_dir={tmp_path}", override])
    text = str(info.value) + str(info.value.__cause__ or "")
    assert key in text, text


def test_yes_no_booleans_mean_what_they_say(tmp_path):
    assert cli.load_config([f"run_dir={tmp_path}", "eval.video=no"]).eval.video is False
    assert cli.load_config([f"run_dir={tmp_path}", "eval.video=yes"]).eval.video is True


def test_bad_value_on_the_command_line_exits_nonzero_before_any_work(tmp_path):
    p = _rs(tmp_path, "eval", f"run_dir={tmp_path / 'run'}", "eval.episodes_per_task=1.9")
    assert p.returncode != 0
    assert "eval.episodes_per_task" in p.stderr
    assert not (tmp_path / "run" / "eval_learned").exists()
