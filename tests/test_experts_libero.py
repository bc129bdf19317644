"""Scripted experts on the LIBERO-90 / LIBERO-10 verbs: hinged doors, stacking, compartments,
the microwave's cavity, a pan taken by its handle, two pots on one stove, turning the stove off.

Default tier: one seeded episode per new capability, on a real LIBERO task file, through the
symbolic planner and the :class:`~robot_skills.execution.executor.Executor` (what
``rs-eval eval.policy=expert`` runs); each must succeed and its plan must use the verb under test.
Planner tests (no simulator) check the contracts that order these plans: a stack is built bottom
up, and a region of a fixture with a door is reachable only while the door is open.
Slow tier (``-m slow``): several seeds of every LIBERO-10 task.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.domain.predicates import SymbolicProblem
from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.execution.executor import Executor
from robot_skills.planning.symbolic import (
    NoPlanError,
    SymbolicPlanner,
    derived_state,
    ground_call,
    missing_preconditions,
)

L90, L10 = LIBERO_BDDL / "libero_90", LIBERO_BDDL / "libero_10"


def _episode(path: Path, seed: int = 0, max_steps: int = 600) -> dict:
    """One composed expert episode on ``path`` (world built and reset with ``seed``)."""
    from sim.factories import ExpertSkills
    from sim.world import SimTaskWorld

    world = SimTaskWorld.from_task(path)
    world.reset(seed)
    skills = ExpertSkills()(path)
    result = Executor(world, skills, SymbolicPlanner(skills.specs), max_replans=2,
                      max_steps=max_steps).run()
    out = result.to_dict()
    world.close()
    return out


def _calls(rec: dict) -> list[str]:
    return [f"{c['skill']}({', '.join(c['args'])})" for c in rec["calls"]]


@pytest.mark.parametrize(("path", "expected_call"), [
    (L90 / "KITCHEN_SCENE6_close_the_microwave.bddl", "close(microwave_1)"),
    (L90 / "KITCHEN_SCENE7_open_the_microwave.bddl", "open(microwave_1)"),
    (L90 / "KITCHEN_SCENE8_turn_off_the_stove.bddl", "turn_off(flat_stove_1)"),
    (L90 / "KITCHEN_SCENE2_stack_the_middle_black_bowl_on_the_back_black_bowl.bddl",
     "place_on(akita_black_bowl_2, akita_black_bowl_3)"),
    (L90 / "STUDY_SCENE1_pick_up_the_book_and_place_it_in_the_front_compartment_of_the_caddy.bddl",
     "place_in(black_book_1, desk_caddy_1_front_contain_region)"),
    (L90 / "KITCHEN_SCENE3_put_the_frying_pan_on_the_stove.bddl",
     "place_on(chefmate_8_frypan_1, flat_stove_1_cook_region)"),
    (L10 / "KITCHEN_SCENE6_put_the_yellow_and_white_mug_in_the_microwave_and_close_it.bddl",
     "place_in(white_yellow_mug_1, microwave_1_heating_region)"),
    (L10 / "KITCHEN_SCENE8_put_both_moka_pots_on_the_stove.bddl",
     "place_on(moka_pot_2, flat_stove_1_cook_region)"),
])
def test_expert_verb_on_libero_file(path: Path, expected_call: str) -> None:
    rec = _episode(path, seed=0)
    assert rec["success"], (path.name, rec["reason"], rec["messages"], _calls(rec))
    assert expected_call in _calls(rec), _calls(rec)
    # every call ended by its own termination test; the last may be cut short by the goal
    # holding first (the object is In its target before the jaw has opened)
    assert all(c["outcome"] == "success" for c in rec["calls"][:-1]), rec["calls"]
    assert rec["calls"][-1]["outcome"] in ("success", "interrupted"), rec["calls"]


def test_mug_enters_microwave_before_the_door_shuts() -> None:
    """The plan places the mug while the door is open and closes the door last."""
    rec = _episode(L10 / "KITCHEN_SCENE6_put_the_yellow_and_white_mug_in_the_microwave_and_close_it"
                   ".bddl", seed=1)
    calls = _calls(rec)
    assert rec["success"], (rec["messages"], calls)
    assert calls[-1] == "close(microwave_1)", calls
    assert calls.index("place_in(white_yellow_mug_1, microwave_1_heating_region)") < len(calls) - 1


# ---------------------------------------------------------------------- planner contracts
_BOWLS = {"b1": frozenset({"graspable", "surface", "container"}),
          "b2": frozenset({"graspable", "surface", "container"}),
          "tray_1_contain_region": frozenset({"container"}),
          "table_r": frozenset({"surface", "table_region"})}


def test_stack_and_place_builds_the_stack_bottom_up() -> None:
    """"Stack b1 on b2 and place them in the tray": b2 goes in first, then b1 on it."""
    state = frozenset({("handempty",), ("on", "b1", "table_r"), ("on", "b2", "table_r")})
    goal = frozenset({("on", "b1", "b2"), ("in", "b2", "tray_1_contain_region")})
    plan = SymbolicPlanner().plan(SymbolicProblem(_BOWLS, state, goal))
    assert plan.to_strings() == ["pick(b2)", "place_in(b2, tray_1_contain_region)", "pick(b1)",
                                 "place_on(b1, b2)"]


def test_pick_refuses_an_object_with_something_on_it() -> None:
    state = frozenset({("handempty",), ("on", "b1", "b2")})
    missing = missing_preconditions(ground_call(SKILL_SPECS["pick"], ["b2"]), state, _BOWLS)
    assert missing == ["not (On * b2)"]
    assert missing_preconditions(ground_call(SKILL_SPECS["pick"], ["b1"]), state, _BOWLS) == []


_MICROWAVE = {"microwave_1": frozenset({"openable"}),
              "microwave_1_heating_region": frozenset({"container"}),
              "microwave_1_top_side": frozenset({"surface"}),
              "mug_1": frozenset({"graspable"}),
              "table_r": frozenset({"surface", "table_region"})}


def test_door_region_is_accessible_only_while_the_door_is_open() -> None:
    shut = derived_state(frozenset({("close", "microwave_1")}), _MICROWAVE)
    opened = derived_state(frozenset({("open", "microwave_1")}), _MICROWAVE)
    assert ("accessible", "microwave_1_heating_region") not in shut
    assert ("accessible", "microwave_1_heating_region") in opened
    # a surface of the same fixture and unrelated entities are not gated by the door
    assert ("accessible", "microwave_1_top_side") in shut
    assert ("accessible", "table_r") in shut


def test_planner_places_in_the_microwave_before_closing_it() -> None:
    state = frozenset({("handempty",), ("open", "microwave_1"), ("on", "mug_1", "table_r")})
    goal = frozenset({("in", "mug_1", "microwave_1_heating_region"), ("close", "microwave_1")})
    plan = SymbolicPlanner().plan(SymbolicProblem(_MICROWAVE, state, goal))
    assert plan.to_strings() == ["pick(mug_1)", "place_in(mug_1, microwave_1_heating_region)",
                                 "close(microwave_1)"]
    shut = frozenset({("handempty",), ("close", "microwave_1"), ("on", "mug_1", "table_r")})
    plan = SymbolicPlanner().plan(SymbolicProblem(_MICROWAVE, shut, goal))
    assert plan.to_strings()[0] == "open(microwave_1)", plan
    assert plan.to_strings()[-1] == "close(microwave_1)", plan
    with pytest.raises(NoPlanError):
        SymbolicPlanner(max_depth=2).plan(SymbolicProblem(_MICROWAVE, shut, goal))


# ---------------------------------------------------------------------- slow tier
@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(L10.glob("*.bddl")), ids=lambda p: p.stem[:60])
def test_libero_10_task_with_experts(path: Path) -> None:
    """Three seeds of each LIBERO-10 task: at least two succeed (the suite table in
    docs/experts.md is measured over 20)."""
    wins = [_episode(path, seed)["success"] for seed in (0, 1, 2)]
    assert sum(wins) >= 2, (path.name, wins)
