"""The ``compositions`` suite: long-horizon tasks of the project's own writing in LIBERO's BDDL
dialect, shipped with the package (``robot_skills/tasks/data/compositions/``).

Fast tier: the suite resolves by name (``suite.path: compositions``); every file parses, has 2–4
goal atoms, copies its scene layout (regions, fixtures, objects, initial state) verbatim from the
LIBERO file its header names, and has a goal no LIBERO file has; the suite spans libero_goal's
scene and kitchen, living-room and study scenes of libero_90; every file builds in the simulator
and its goal plans over the project's skill verbs, several plans holding steps the goal does not
name (open a drawer before placing inside it). Slow tier: the scripted experts, composed by the
symbolic planner, succeed on every task.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from libero_paths import LIBERO_BDDL

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.planning.symbolic import SymbolicPlanner
from robot_skills.tasks.bddl import load_bddl
from robot_skills.tasks.suites import PROJECT_SUITES, SuiteNotFoundError, resolve_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = resolve_suite("compositions")
FILES = sorted(SUITE.glob("*.bddl"))
_SOURCE_RE = re.compile(r"^;\s*(libero_[a-z0-9]+/[A-Za-z0-9_]+\.bddl)", re.M)


def _source(path: Path) -> Path:
    """The LIBERO file whose scene layout ``path`` copies (named in its header comment)."""
    m = _SOURCE_RE.search(path.read_text())
    assert m, f"{path.name}: header names no LIBERO source file"
    return LIBERO_BDDL / m.group(1)


def _scene(path: Path) -> str:
    """The scene of a LIBERO file: ``libero_goal`` (one scene) or libero_90's ``KITCHEN_SCENE3``."""
    src = _source(path)
    if src.parent.name == "libero_goal":
        return "libero_goal"
    m = re.match(r"^([A-Z_]+_SCENE\d+)_", src.name)
    assert m, f"{src.name}: not a libero_90 scene file"
    return m.group(1)


def test_suite_resolves_by_name_and_config():
    assert "compositions" in PROJECT_SUITES
    cfg = yaml.safe_load((ROOT / "configs" / "suite" / "compositions.yaml").read_text())
    assert cfg["name"] == "compositions"
    assert resolve_suite(cfg["path"]) == SUITE
    assert SUITE.is_dir() and (SUITE / "README.md").is_file()
    # the package directory, not a LIBERO cache
    assert SUITE.parent.name == "data" and SUITE.parent.parent.name == "tasks"


def test_unknown_suite_name_is_refused():
    with pytest.raises(SuiteNotFoundError, match="compositions"):
        resolve_suite("compositionz")


def test_suite_size_and_scenes():
    assert len(FILES) >= 20, [p.name for p in FILES]
    scenes = {_scene(p) for p in FILES}
    assert len(scenes) >= 4, scenes
    assert "libero_goal" in scenes
    n_goal = sum(_scene(p) == "libero_goal" for p in FILES)
    assert n_goal >= 8, n_goal
    for kind in ("KITCHEN_SCENE", "LIVING_ROOM_SCENE", "STUDY_SCENE"):
        assert any(s.startswith(kind) for s in scenes), (kind, scenes)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_parses_with_its_libero_scene_and_own_goal(path):
    task = load_bddl(path)
    assert 2 <= len(task.goal) <= 4, task.goal
    assert len(set(task.goal)) == len(task.goal), task.goal
    assert task.language and task.language[0].isupper(), task.language
    src = load_bddl(_source(path))
    # scene layout copied verbatim from LIBERO
    assert task.fixtures == src.fixtures
    assert task.objects == src.objects
    assert task.init == src.init
    assert task.regions == src.regions
    # every goal argument names something in the scene
    known = set(task.entity_names()) | set(task.regions)
    for a in task.goal:
        assert set(a[1:]) <= known, (a, sorted(known))
    assert set(task.obj_of_interest) <= known


def test_goals_are_the_projects_own():
    """No file's goal is the goal of a LIBERO task (all five suites)."""
    libero_files = sorted(LIBERO_BDDL.glob("libero_*/*.bddl"))
    assert len(libero_files) >= 130, len(libero_files)  # 10 + 10 + 10 + 10 + 90
    libero_goals = {frozenset(load_bddl(p).goal) for p in libero_files}
    copied = [p.name for p in FILES if frozenset(load_bddl(p).goal) in libero_goals]
    assert not copied, copied


def _implied_calls(goal, state, plan) -> int:
    """Calls the goal names: one per unmet switch/drawer atom, two (pick + place) per unmet
    placement, one per unmet placement the plan reaches with ``push``."""
    pushed = {(c.args[0], c.args[1]) for c in plan if c.skill == "push"}
    n = 0
    for a in goal:
        if a in state:
            continue
        if a[0] in ("on", "in"):
            n += 1 if (a[1], a[2]) in pushed else 2
        else:
            n += 1
    return n


def test_files_build_and_goals_plan_with_implicit_steps():
    """Every file builds in the simulator; its goal is not met at reset and plans over the
    project's verbs; several plans hold calls the goal does not name."""
    from sim.world import SimTaskWorld

    planner = SymbolicPlanner(SKILL_SPECS)
    implicit = []
    for path in FILES:
        w = SimTaskWorld.from_task(path)
        try:
            w.reset(0)
            assert not w.success(), f"{path.name}: goal already met at reset"
            prob = w.symbolic_problem()
            plan = planner.plan(prob)
            assert plan is not None and len(plan) >= 2, (path.name, plan)
            assert {c.skill for c in plan} <= set(SKILL_SPECS)
            implied = _implied_calls(prob.goal, prob.state, plan)
            assert len(plan) >= implied, (path.name, str(plan), implied)
            if len(plan) > implied:
                implicit.append(path.name)
        finally:
            w.close()
    assert len(implicit) >= 3, implicit


@pytest.mark.slow
def test_experts_solve_the_suite():
    """The scripted experts composed by the symbolic planner through the executor: every task,
    2 seeds each (seeds outside the benchmark's 0–19), at least 90 % of episodes succeed and
    every task succeeds at least once."""
    from robot_skills.execution.executor import Executor
    from sim.factories import ExpertSkills
    from sim.world import SimTaskWorld

    failures, n = [], 0
    for path in FILES:
        wins = 0
        for seed in (100, 101):
            w = SimTaskWorld.from_task(path)
            try:
                w.reset(seed)
                r = Executor(w, ExpertSkills()(), max_steps=600, max_replans=2).run()
            finally:
                w.close()
            n += 1
            wins += bool(r.success)
            if not r.success:
                failures.append((path.stem, seed, r.reason))
        assert wins >= 1, (path.stem, failures)
    assert len(failures) <= 0.1 * n, failures
