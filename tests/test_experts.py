"""Scripted experts (``sim.experts``): every verb succeeds on a LIBERO task that uses it.

Fast tier: each expert verb, run alone on one seed, reaches its skill's termination test within
its time limit (``robot_skills.domain.verbs``), with per-step translations within the expert's
bound. Slow tier (``-m slow``): whole tasks of the three suites composed by the symbolic planner
through the :class:`~robot_skills.execution.executor.Executor`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.execution.executor import Executor, termination_holds
from robot_skills.execution.interfaces import SkillSet

BDDL = LIBERO_BDDL
GOAL, SPATIAL, OBJECT = BDDL / "libero_goal", BDDL / "libero_spatial", BDDL / "libero_object"



def _world(path: Path, seed: int = 0):
    """A :class:`~sim.world.SimTaskWorld` (what the experts read) reset to ``seed``."""
    from sim.world import SimTaskWorld

    w = SimTaskWorld.from_task(path)
    w.reset(seed)
    return w


def _experts() -> SkillSet:
    """The scripted experts with their contracts, as the ``expert`` skills config builds them."""
    from sim.factories import ExpertSkills

    return ExpertSkills()()


def _run_skill(w, skill: str, args: tuple[str, ...]) -> int:
    """Run one expert until its termination test holds; returns the steps used (fails on timeout)."""
    from sim.experts import MAX_STEP, make_expert

    spec = SKILL_SPECS[skill]
    limit = math.ceil(spec.time_limit_s / w.robot.control_period)
    expert = make_expert(skill)
    expert.reset(args, w)
    obs = w.robot.observe()
    for step in range(limit):
        action = expert.act(obs)
        assert np.linalg.norm(action.delta_pos) <= MAX_STEP + 1e-9
        applied = w.robot.act(action)
        # the experts stay inside the robot's action limits: nothing is clipped on the way
        np.testing.assert_allclose(applied.to_array(), action.to_array(), atol=1e-6)
        obs = w.robot.observe()
        if termination_holds(spec, args, w.predicate_state()):
            return step + 1
    pytest.fail(f"{skill}{args} did not terminate within {limit} steps; "
                f"state: {sorted(w.predicate_state())}")


@pytest.mark.parametrize("task, obj, verb, target", [
    (GOAL / "put_the_bowl_on_the_plate.bddl", "akita_black_bowl_1", "place_on", "plate_1"),
    # a tall bottle, taken by its neck and set on the cabinet top
    (GOAL / "put_the_wine_bottle_on_top_of_the_cabinet.bddl", "wine_bottle_1", "place_on",
     "wooden_cabinet_1_top_side"),
    (OBJECT / "pick_up_the_tomato_sauce_and_place_it_in_the_basket.bddl", "tomato_sauce_1",
     "place_in", "basket_1_contain_region"),
], ids=["bowl_on_plate", "bottle_neck_on_cabinet", "can_in_basket"])
def test_pick_then_place(task, obj, verb, target):
    w = _world(task)
    _run_skill(w, "pick", (obj,))
    _run_skill(w, verb, (obj, target))
    assert w.success()


def test_open_then_close_drawer():
    w = _world(GOAL / "open_the_middle_drawer_of_the_cabinet.bddl")
    drawer = "wooden_cabinet_1_middle_region"
    _run_skill(w, "open", (drawer,))
    assert w.success()
    _run_skill(w, "close", (drawer,))
    assert ("close", drawer) in w.predicate_state()


def test_turn_on_then_off():
    w = _world(GOAL / "turn_on_the_stove.bddl")
    _run_skill(w, "turn_on", ("flat_stove_1",))
    assert w.success()
    _run_skill(w, "turn_off", ("flat_stove_1",))
    assert ("turnoff", "flat_stove_1") in w.predicate_state()


def test_push_plate():
    w = _world(GOAL / "push_the_plate_to_the_front_of_the_stove.bddl")
    _run_skill(w, "push", ("plate_1", "main_table_stove_front_region"))
    assert w.success()


def test_unknown_verb_is_refused():
    from sim.experts import make_expert

    with pytest.raises(KeyError, match="no scripted expert"):
        make_expert("juggle")


@pytest.mark.parametrize("path", [
    GOAL / "open_the_top_drawer_and_put_the_bowl_inside.bddl",
    SPATIAL / "pick_up_the_black_bowl_in_the_top_drawer_of_the_wooden_cabinet_and_place_it_on_the_plate.bddl",
])
def test_planned_task_through_executor(path):
    """Open + pick + place_in composed by the planner (the drawer must stay open after the
    hand lets go of its handle), and a pick out of an open drawer."""
    w = _world(path)
    result = Executor(w, _experts(), max_steps=600, max_replans=2).run()
    assert result.success, (result.reason, result.messages)
    assert all(c.outcome in ("success", "interrupted") for c in result.calls)


@pytest.mark.slow
@pytest.mark.parametrize("suite", ["libero_goal", "libero_spatial", "libero_object"])
def test_suite_through_executor(suite):
    """Every task of the suite, 3 seeds each, planned and executed with the experts."""
    failures = []
    for path in sorted((BDDL / suite).glob("*.bddl")):
        for seed in range(3):
            w = _world(path, seed)
            r = Executor(w, _experts(), max_steps=600, max_replans=2).run()
            if not r.success:
                failures.append((path.name, seed, r.reason))
    assert not failures, failures
