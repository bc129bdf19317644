"""Relevance analysis before search, pruning, the landmark heuristic, and every LIBERO goal planned.

LIBERO problems come from the task files (fetched into the project's cache, as ``libero_paths``
says) through the planning benchmark's ``task_problem``: entity tags from the scene's proxy
assets, the initial state from ``:init`` plus what the simulator's reset makes true.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import random
from pathlib import Path

import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.domain.predicates import SymbolicProblem
from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.planning.symbolic import (
    NoPlanError,
    SymbolicPlanner,
    _deriver,
    derived_state,
    relevance_analysis,
)
from robot_skills.planning.validate import validate_plan
from robot_skills.tasks.bddl import load_bddl
from robot_skills.tasks.suites import LIBERO_SUITES

F = frozenset
BOWL, CHEESE, PLATE = "akita_black_bowl_1", "cream_cheese_1", "plate_1"
TOP, MID = "wooden_cabinet_1_top_region", "wooden_cabinet_1_middle_region"
CAB_TOP, STOVE, COOK = "wooden_cabinet_1_top_side", "flat_stove_1", "flat_stove_1_cook_region"
FRONT = "main_table_stove_front_region"
ENTITIES = {
    BOWL: F({"graspable", "surface", "container"}),
    CHEESE: F({"graspable"}),
    PLATE: F({"graspable", "surface", "pushable"}),
    TOP: F({"container", "openable"}),
    MID: F({"container", "openable"}),
    CAB_TOP: F({"surface"}),
    STOVE: F({"switchable"}),
    COOK: F({"surface"}),
    FRONT: F({"table_region", "surface"}),
    "main_table_bowl_region": F({"table_region", "surface"}),
    "main_table": F(),
}
INIT = F({("handempty",), ("close", TOP), ("close", MID), ("turnoff", STOVE),
          ("on", BOWL, "main_table_bowl_region"), ("on", PLATE, "main_table"),
          ("on", CHEESE, "main_table")})

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "plan_libero.py"
_spec = importlib.util.spec_from_file_location("plan_libero", _BENCH)
plan_libero = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plan_libero)


def problem(goal, state=INIT, entities=ENTITIES):
    return SymbolicProblem(dict(entities), F(state), F(goal))


def without(*verbs):
    return {k: v for k, v in SKILL_SPECS.items() if k not in verbs}


def libero_problems(suites=LIBERO_SUITES):
    out = []
    for suite in suites:
        files = sorted((LIBERO_BDDL / suite).glob("*.bddl"))
        assert files, f"no task files in {LIBERO_BDDL / suite}"
        out += [(f"{suite}/{f.name}", plan_libero.task_problem(load_bddl(f))) for f in files]
    return out


# ------------------------------------------------------------------ fail fast, no search


def test_missing_verb_for_a_false_goal_atom_is_static_and_names_atom_and_verb():
    planner = SymbolicPlanner(without("turn_on"))
    with pytest.raises(NoPlanError) as e:
        planner.plan(problem({("turnon", STOVE), ("on", BOWL, PLATE)}))
    assert set(e.value.unreachable) == {("turnon", STOVE)}
    why = e.value.unreachable[("turnon", STOVE)]
    assert "`turnon`" in why and "['turn_on']" in why
    assert "(Turnon flat_stove_1)" in str(e.value)
    stats = planner.last_stats
    assert (stats.stage, stats.expansions, stats.n_ground) == ("static", 0, 0)


def test_missing_close_is_reported_before_search_when_the_goal_needs_opening():
    """The issue's case: "put the bowl in the drawer and close it" without a `close` skill. The
    drawer is shut now, so (Close d) already holds; only the analysis that `open(d)` would
    delete it for good rejects the goal. It used to search 113,205 nodes."""
    planner = SymbolicPlanner(without("close"))
    goal = {("in", BOWL, TOP), ("close", TOP)}
    with pytest.raises(NoPlanError) as e:
        planner.plan(problem(goal))
    assert planner.last_stats.expansions == 0 and planner.last_stats.stage == "relaxed"
    why = e.value.unreachable[("close", TOP)]
    assert f"open({TOP})" in why and "`close`" in why and "['close']" in why
    assert "(Accessible wooden_cabinet_1_top_region)" in e.value.unreachable[("in", BOWL, TOP)]
    # with `close` in the library the same goal plans, and the plan ends by closing
    full = SymbolicPlanner()
    plan = full.plan(problem(goal))
    assert plan.to_strings() == [f"open({TOP})", f"pick({BOWL})", f"place_in({BOWL}, {TOP})",
                                 f"close({TOP})"]
    assert validate_plan(plan, problem(goal)) == []


def test_protected_goal_atom_only_excludes_the_skills_that_delete_it():
    """Without `close`, a goal keeping the top drawer shut still plans through the other one."""
    planner = SymbolicPlanner(without("close"))
    goal = {("close", TOP), ("in", BOWL, MID)}
    report = relevance_analysis(problem(goal), without("close"))
    assert report.solvable and report.stage == "relevance"
    assert [str(c) for c in report.excluded] == [f"open({TOP})"]
    assert "(Close wooden_cabinet_1_top_region)" in report.excluded[next(iter(report.excluded))]
    assert all(g.call.skill != "open" or g.call.args != (TOP,) for g in report.relevant)
    plan = planner.plan(problem(goal))
    assert plan.to_strings() == [f"open({MID})", f"pick({BOWL})", f"place_in({BOWL}, {MID})"]


def test_relaxed_unreachable_goal_fails_before_search():
    # a library whose open() demands a shut drawer cannot start from a half-open one
    strict_open = dataclasses.replace(SKILL_SPECS["open"],
                                      preconditions=("handempty", "close ?target"))
    specs = {**without("close"), "open": strict_open}
    state = INIT - {("close", TOP)}
    planner = SymbolicPlanner(specs)
    with pytest.raises(NoPlanError) as e:
        planner.plan(problem({("in", BOWL, TOP)}, state))
    assert planner.last_stats.expansions == 0 and planner.last_stats.stage == "relaxed"
    assert "(Accessible wooden_cabinet_1_top_region)" in e.value.unreachable[("in", BOWL, TOP)]
    report = relevance_analysis(problem({("in", BOWL, TOP)}, state), specs)
    assert not report.solvable and report.stage == "relaxed" and report.relevant == []
    assert report.n_reachable < report.n_ground  # open(top), place_in(*, top) never apply


@pytest.mark.parametrize("goal", [
    {("on", BOWL, PLATE), ("on", BOWL, COOK)},        # one bowl, two places
    {("in", CHEESE, BOWL), ("on", CHEESE, PLATE)},
    {("turnon", STOVE), ("turnoff", STOVE)},
    {("open", MID), ("close", MID)},
])
def test_goal_atoms_that_exclude_each_other_fail_before_search(goal):
    planner = SymbolicPlanner()
    with pytest.raises(NoPlanError) as e:
        planner.plan(problem(goal))
    assert planner.last_stats.expansions == 0 and planner.last_stats.stage == "mutex"
    assert set(e.value.unreachable) == set(goal)
    assert all("conflicts with the other goal atom" in r for r in e.value.unreachable.values())


def test_no_mutex_claimed_where_an_action_breaks_the_invariant():
    """`push` moves a plate without taking it out of a container, so "plate in the bowl and on
    the stove front" is reachable (pick, place_in, push) and must not be rejected."""
    goal = {("in", PLATE, BOWL), ("on", PLATE, FRONT)}
    plan = SymbolicPlanner().plan(problem(goal))
    assert validate_plan(plan, problem(goal)) == []
    assert [c.skill for c in plan.calls] == ["pick", "place_in", "push"]


# ------------------------------------------------------------------ pruning and heuristic


def test_relevance_prunes_skills_that_cannot_contribute():
    report = relevance_analysis(problem({("on", BOWL, PLATE)}))
    skills = {g.call.skill for g in report.relevant}
    assert {"pick", "place_on"} <= skills
    assert not skills & {"turn_on", "turn_off"}  # nothing about the stove helps
    assert len(report.relevant) < report.n_ground
    # a bowl under the plate must be moved first: picking what rests on it becomes relevant
    state = INIT - {("on", PLATE, "main_table")} | {("on", PLATE, BOWL)}
    report = relevance_analysis(problem({("in", BOWL, TOP)}, state))
    assert any(str(g.call) == f"pick({PLATE})" for g in report.relevant)
    plan = SymbolicPlanner().plan(problem({("in", BOWL, TOP)}, state))
    assert validate_plan(plan, problem({("in", BOWL, TOP)}, state)) == []
    assert plan.to_strings()[-1] == f"place_in({BOWL}, {TOP})"


def test_fast_derived_state_matches_derived_state():
    rng = random.Random(0)
    probs = [p for _, p in libero_problems(("libero_goal", "libero_10"))]
    for p in probs:
        derive = _deriver(p.entities)
        openable = [e for e, t in p.entities.items() if "openable" in t]
        for _ in range(5):
            state = set(p.state) | {("open", e) for e in openable if rng.random() < 0.5}
            assert derive(state) == derived_state(F(state), p.entities)


def _same_scene_pairs(probs, limit):
    scenes = {}
    for name, p in probs:
        key = (F(p.entities.items()), p.state)
        scenes.setdefault(key, []).append(p)
    out = []
    for group in scenes.values():
        for p, q in itertools.combinations(group, 2):
            out.append(SymbolicProblem(p.entities, p.state, p.goal | q.goal))
    return out[:limit]


def test_pruning_keeps_plans_identical_on_libero_problems():
    probs = libero_problems(("libero_goal", "libero_10", "libero_spatial"))
    cases = [p for _, p in probs] + _same_scene_pairs(probs, 25)
    pruned_something = 0
    for p in cases:
        pruned, full = SymbolicPlanner(), SymbolicPlanner(relevance=False)
        try:
            a = pruned.plan(p).to_strings()
        except NoPlanError as e:
            with pytest.raises(NoPlanError):
                full.plan(p)
            assert pruned.last_stats.expansions == 0, str(e)
            continue
        assert a == full.plan(p).to_strings(), sorted(p.goal)
        pruned_something += pruned.last_stats.n_relevant < full.last_stats.n_relevant
    assert pruned_something > 0


def test_landmark_heuristic_expands_fewer_nodes_for_the_same_plan_length():
    (name, p), = [x for x in libero_problems(("libero_goal",))
                  if x[0].endswith("open_the_top_drawer_and_put_the_bowl_inside.bddl")]
    bottle = next(e for e in p.entities if e.startswith("wine_bottle"))
    goal = {("in", BOWL, TOP), ("close", TOP), ("on", CHEESE, PLATE), ("on", bottle, CAB_TOP)}
    q = SymbolicProblem(p.entities, p.state, F(goal))
    lm, gc = SymbolicPlanner(), SymbolicPlanner(heuristic="goal_count")
    a, b = lm.plan(q), gc.plan(q)
    assert validate_plan(a, q) == [] and len(a) == len(b) == 8
    assert lm.last_stats.expansions < gc.last_stats.expansions
    with pytest.raises(ValueError, match="heuristic"):
        SymbolicPlanner(heuristic="h_ff")


# ------------------------------------------------------------------ all of LIBERO


def test_every_goal_of_all_130_libero_files_plans():
    probs = libero_problems()
    assert len(probs) == 130
    planner = SymbolicPlanner()
    for name, p in probs:
        plan = planner.plan(p)
        assert len(plan) >= 1, name
        assert validate_plan(plan, p) == [], name
        assert plan.goal == p.goal
