"""Symbolic planner, plan validation and repair on a libero_goal-like problem."""

from __future__ import annotations

import dataclasses

import pytest

from robot_skills.domain.predicates import SymbolicProblem
from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.execution.interfaces import Planner
from robot_skills.planning.symbolic import NoPlanError, Plan, SkillCall, SymbolicPlanner
from robot_skills.planning.validate import (
    PlanValidationError,
    repair_plan,
    validate_plan,
    validate_plan_strict,
)

F = frozenset
BOWL, CHEESE, PLATE = "akita_black_bowl_1", "cream_cheese_1", "plate_1"
TOP, MID = "wooden_cabinet_1_top_region", "wooden_cabinet_1_middle_region"
CAB_TOP, STOVE = "wooden_cabinet_1_top_side", "flat_stove_1"
FRONT = "main_table_stove_front_region"

ENTITIES = {
    BOWL: F({"graspable", "surface", "container"}),
    CHEESE: F({"graspable"}),
    PLATE: F({"graspable", "surface", "pushable"}),
    TOP: F({"container", "openable"}),
    MID: F({"container", "openable"}),
    CAB_TOP: F({"surface"}),
    STOVE: F({"switchable", "surface"}),
    FRONT: F({"table_region", "surface"}),
    "main_table_bowl_region": F({"table_region", "surface"}),
    "main_table": F(),
}
INIT = F({("handempty",), ("close", TOP), ("close", MID), ("turnoff", STOVE),
          ("on", BOWL, "main_table_bowl_region"), ("on", PLATE, "main_table"),
          ("on", CHEESE, "main_table")})


def problem(goal, state=INIT, entities=ENTITIES):
    return SymbolicProblem(dict(entities), F(state), F(goal))


def test_implicit_open_before_place_in():
    plan = SymbolicPlanner().plan(problem({("in", BOWL, TOP)}))
    assert plan.to_strings() == [f"open({TOP})", f"pick({BOWL})", f"place_in({BOWL}, {TOP})"]
    assert len(plan.states) == 4 and ("in", BOWL, TOP) in plan.states[-1]
    assert ("on", BOWL, "main_table_bowl_region") not in plan.states[-1]  # wildcard delete


def test_already_satisfied_goal_gives_empty_plan():
    plan = SymbolicPlanner().plan(problem({("close", TOP)}))
    assert isinstance(plan, Plan) and len(plan) == 0


@pytest.mark.parametrize("goal,expected", [
    ({("turnon", STOVE)}, [f"turn_on({STOVE})"]),
    ({("on", PLATE, FRONT)}, [f"push({PLATE}, {FRONT})"]),
    ({("on", BOWL, PLATE)}, [f"pick({BOWL})", f"place_on({BOWL}, {PLATE})"]),
    ({("open", MID)}, [f"open({MID})"]),
])
def test_single_goal_tasks(goal, expected):
    assert SymbolicPlanner().plan(problem(goal)).to_strings() == expected


def test_holding_something_is_put_down_first():
    state = (INIT - {("handempty",), ("on", CHEESE, "main_table")}) | {("holding", CHEESE)}
    plan = SymbolicPlanner().plan(problem({("in", BOWL, TOP)}, state))
    calls = plan.to_strings()
    assert calls[0].startswith(f"place_on({CHEESE},") or calls[0].startswith(
        f"place_in({CHEESE},")
    assert calls[-1] == f"place_in({BOWL}, {TOP})" and f"open({TOP})" in calls
    assert validate_plan(plan, problem({("in", BOWL, TOP)}, state)) == []


def test_holding_the_goal_object_places_it_directly():
    state = (INIT - {("handempty",), ("on", BOWL, "main_table_bowl_region")}) | {("holding", BOWL)}
    plan = SymbolicPlanner().plan(problem({("on", BOWL, PLATE)}, state))
    assert plan.to_strings() == [f"place_on({BOWL}, {PLATE})"]


def test_two_goals_in_one_plan():
    plan = SymbolicPlanner().plan(problem({("in", CHEESE, BOWL), ("turnon", STOVE)}))
    assert sorted(plan.to_strings()) == sorted(
        [f"pick({CHEESE})", f"place_in({CHEESE}, {BOWL})", f"turn_on({STOVE})"])


def test_no_plan_when_verb_missing_from_library():
    specs = {k: v for k, v in SKILL_SPECS.items() if k != "turn_on"}
    with pytest.raises(NoPlanError) as e:
        SymbolicPlanner(specs).plan(problem({("turnon", STOVE)}))
    msg = str(e.value)
    assert "(Turnon flat_stove_1)" in msg and "no skill in the library adds `turnon`" in msg
    assert "turn_on" in msg  # names the verb that would have helped
    assert ("turnon", STOVE) in e.value.unreachable


def test_no_plan_when_entity_lacks_tag():
    with pytest.raises(NoPlanError, match=r"cream_cheese_1 lacks the `switchable` tag"):
        SymbolicPlanner().plan(problem({("turnon", CHEESE)}))


def test_no_plan_unknown_entity():
    with pytest.raises(NoPlanError, match="unknown entity"):
        SymbolicPlanner().plan(problem({("on", "ghost_1", PLATE)}))


def test_no_plan_when_precondition_never_holds():
    # a library whose open() demands a shut drawer cannot start from a half-open one
    strict_open = dataclasses.replace(SKILL_SPECS["open"],
                                      preconditions=("handempty", "close ?target"))
    state = INIT - {("close", TOP)}  # drawer neither open nor closed
    specs = {**{k: v for k, v in SKILL_SPECS.items() if k != "close"}, "open": strict_open}
    with pytest.raises(NoPlanError) as e:
        SymbolicPlanner(specs).plan(problem({("in", BOWL, TOP)}, state))
    assert "(Accessible wooden_cabinet_1_top_region)" in str(e.value)


def test_half_open_drawer_can_be_opened():
    state = INIT - {("close", TOP)}  # drawer neither open nor closed (LIBERO: neither holds)
    plan = SymbolicPlanner().plan(problem({("in", BOWL, TOP)}, state))
    assert [c.skill for c in plan.calls] == ["open", "pick", "place_in"]


def test_no_plan_search_exhausted_at_depth():
    with pytest.raises(NoPlanError, match="search exhausted at depth 2"):
        SymbolicPlanner().plan(problem({("in", BOWL, TOP)}), max_depth=2)
    with pytest.raises(ValueError):
        SymbolicPlanner().plan(problem({("in", BOWL, TOP)}), max_depth=-1)


def test_max_depth_is_set_at_construction_and_overridable_per_call():
    shallow = SymbolicPlanner(SKILL_SPECS, max_depth=2)
    assert shallow.max_depth == 2 and SymbolicPlanner().max_depth == 8
    with pytest.raises(NoPlanError, match="search exhausted at depth 2"):
        shallow.plan(problem({("in", BOWL, TOP)}))
    assert [c.skill for c in shallow.plan(problem({("in", BOWL, TOP)}), max_depth=3)] == [
        "open", "pick", "place_in"]
    with pytest.raises(ValueError):
        SymbolicPlanner(SKILL_SPECS, max_depth=-1)
    with pytest.raises(TypeError):
        SymbolicPlanner(list(SKILL_SPECS.values()))


def test_planner_protocol_and_library_contracts():
    """A planner built over a library's contracts plans only with that library's skills."""
    planner = SymbolicPlanner({k: SKILL_SPECS[k] for k in ("pick", "place_on")})
    assert isinstance(planner, Planner)
    plan = planner.plan(problem({("on", BOWL, PLATE)}))
    assert plan.to_strings() == [f"pick({BOWL})", f"place_on({BOWL}, {PLATE})"]
    with pytest.raises(NoPlanError):
        planner.plan(problem({("in", BOWL, TOP)}))  # no `open`, no `place_in`


def test_skill_call_parse_and_str():
    c = SkillCall.parse("place_on(akita_black_bowl_1, plate_1)")
    assert c == SkillCall("place_on", (BOWL, PLATE))
    assert str(c) == "place_on(akita_black_bowl_1, plate_1)"
    assert SkillCall.coerce({"skill": "pick", "args": [BOWL]}) == SkillCall("pick", (BOWL,))
    with pytest.raises(ValueError):
        SkillCall.parse("place_on akita")


def test_validation_reports_each_kind_of_error():
    p = problem({("in", BOWL, TOP), ("turnon", STOVE)})
    issues = validate_plan(["fly(akita_black_bowl_1)", "pick(akita_black_bowl_1, plate_1)",
                            "pick(ghost_1)", f"open({STOVE})", f"place_in({BOWL}, {TOP})"], p)
    kinds = [(i.step, i.kind) for i in issues]
    assert kinds == [(0, "unknown_skill"), (1, "arity"), (2, "unknown_entity"), (3, "type"),
                     (4, "precondition"), (None, "goal")]
    pre = issues[4]
    assert ("holding", BOWL) in pre.missing and "(Holding akita_black_bowl_1)" in pre.message
    assert "(Accessible wooden_cabinet_1_top_region)" in pre.message
    assert issues[-1].missing == (("turnon", STOVE),) and "(Turnon flat_stove_1)" in str(issues[-1])


def test_valid_plan_passes_strict_validation():
    p = problem({("in", BOWL, TOP)})
    plan = validate_plan_strict([f"open({TOP})", f"pick({BOWL})", f"place_in({BOWL}, {TOP})"], p)
    assert len(plan.states) == 4
    with pytest.raises(PlanValidationError) as e:
        validate_plan_strict([f"pick({BOWL})", f"place_in({BOWL}, {TOP})"], p)
    assert e.value.issues[0].step == 1 and e.value.issues[0].kind == "precondition"


def test_repair_replans_from_first_failing_step():
    p = problem({("in", BOWL, TOP)})
    fixed = repair_plan([f"pick({BOWL})", f"place_in({BOWL}, {TOP})"], p)
    assert validate_plan(fixed, p) == []
    assert fixed.to_strings()[0] == f"pick({BOWL})"  # valid prefix kept
    assert fixed.to_strings()[-1] == f"place_in({BOWL}, {TOP})"


def test_repair_uses_the_given_planner():
    p = problem({("in", BOWL, TOP)})
    seen = []

    class Recording:
        def plan(self, sub):
            seen.append(sub)
            return SymbolicPlanner().plan(sub)

    fixed = repair_plan([f"open({TOP})", f"pick({BOWL})", f"place_in({BOWL}, {STOVE})"], p,
                        planner=Recording())
    assert fixed.to_strings() == [f"open({TOP})", f"pick({BOWL})", f"place_in({BOWL}, {TOP})"]
    assert len(seen) == 1 and {("open", TOP), ("holding", BOWL)} <= seen[0].state


def test_repair_refuses_with_validator_messages():
    specs = {k: v for k, v in SKILL_SPECS.items() if k != "turn_on"}
    with pytest.raises(PlanValidationError, match="unknown skill 'turn_on'") as e:
        repair_plan([f"turn_on({STOVE})"], problem({("turnon", STOVE)}), specs)
    assert "no skill in the library adds `turnon`" in str(e.value)
