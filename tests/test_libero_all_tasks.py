"""Every LIBERO task file (130: libero_goal, _spatial, _object, _10, _90) parses, builds its scene
with the Panda, samples collision-free seeded initial states that stay at rest, and evaluates its
predicates: every ``(:init …)`` atom holds after the reset and the goal does not yet hold.

The default tier checks one file per scene (KITCHEN_SCENE1-10, LIVING_ROOM_SCENE1-6,
STUDY_SCENE1-4, plus one file of each of the three scene-less suites); the slow tier checks all
130 files over three seeds each.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.robot import Action
from robot_skills.tasks.bddl import load_bddl
from robot_skills.tasks.suites import LIBERO_SUITES
from sim.assets import ASSETS
from sim.world import SimTaskWorld

ALL_FILES = sorted(p for s in LIBERO_SUITES for p in (LIBERO_BDDL / s).glob("*.bddl"))
SCENES = [f"KITCHEN_SCENE{i}" for i in range(1, 11)] + [
    f"LIVING_ROOM_SCENE{i}" for i in range(1, 7)] + [f"STUDY_SCENE{i}" for i in range(1, 5)]
REST_MOVE = 0.005
"""Largest displacement (m) of any object over 0.5 s of holding still after a reset."""


def _scene_of(path: Path) -> str:
    m = re.match(r"^([A-Z_]+_SCENE\d+)_", path.name)
    return m.group(1) if m else path.parent.name


def _one_per_scene() -> list[Path]:
    """Per scene (or scene-less suite), the file with the most entities (deterministic)."""
    best: dict[str, tuple[int, str, Path]] = {}
    for p in ALL_FILES:
        t = load_bddl(p)
        key = (-(len(t.objects) + len(t.fixtures)), p.name, p)
        s = _scene_of(p)
        if s not in best or key < best[s]:
            best[s] = key
    return [best[s][2] for s in sorted(best)]


def check_task_file(path: Path, seeds) -> None:
    """Build ``path`` with the Panda and reset it for each seed; assert the reset is at rest, every
    init atom holds and the goal does not. Failures name the file and the seed."""
    world = SimTaskWorld.from_task(path)
    try:
        objects = list(world.scene.objects)
        for seed in seeds:
            world.reset(seed=seed)
            where = f"{path.parent.name}/{path.name} seed {seed}"
            state = world.predicate_state()
            missing = [a for a in world.task.init if a not in state]
            assert not missing, f"{where}: init atoms false after reset: {missing}"
            progress = world.goal_progress()
            assert progress and not all(progress.values()), f"{where}: goal already holds"
            m, d = world.model, world.data
            p0 = np.array([d.xpos[m.body(o).id] for o in objects])
            hold = Action(np.zeros(3), np.zeros(3), -1.0)
            for _ in range(10):   # 0.5 s
                world.robot.act(hold)
            p1 = np.array([d.xpos[m.body(o).id] for o in objects])
            moved = np.linalg.norm(p1 - p0, axis=1) if objects else np.zeros(0)
            assert np.all(moved < REST_MOVE), (
                f"{where}: objects not at rest after reset: "
                f"{[(o, round(float(v), 4)) for o, v in zip(objects, moved) if v >= REST_MOVE]}")
    finally:
        world.close()


def test_files_cover_every_scene_and_category():
    assert len(ALL_FILES) == 130
    scenes = {_scene_of(p) for p in ALL_FILES}
    assert set(SCENES) <= scenes
    cats = set()
    for p in ALL_FILES:
        cats |= load_bddl(p).categories()
    assert cats <= set(ASSETS), sorted(cats - set(ASSETS))


@pytest.mark.parametrize("path", _one_per_scene(), ids=lambda p: _scene_of(p))
def test_one_file_per_scene_builds_resets_and_evaluates(path):
    check_task_file(path, seeds=(0, 1))


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem[:60]}")
def test_every_file_builds_resets_and_evaluates(path):
    check_task_file(path, seeds=(0, 1, 2))
