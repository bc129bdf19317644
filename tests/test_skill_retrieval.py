"""Skill retrieval by description embedding (offline MiniLM) and by effects, on a library with
look-alike skills (place_on vs push share the effect ``on ?obj ?target``; turn_on / turn_off and
open / close have near-identical descriptions)."""

from __future__ import annotations

import pytest

from robot_skills.domain.verbs import SKILL_SPECS, Parameter, SkillSpec
from robot_skills.skills.retrieval import effect_matches, rank_skills

SPECS = dict(SKILL_SPECS)
# a look-alike of place_on: same parameters and effects, a different behaviour
SPECS["stack_on"] = SkillSpec("stack_on", "Stack the held block squarely on top of another block "
                              "to build a tower.",
                              (Parameter("obj", "graspable"), Parameter("target", "graspable")),
                              ("holding ?obj",), ("on ?obj ?target", "handempty"),
                              ("holding ?obj",), ("on ?obj ?target",))


def _top(**kw):
    return [r.name for r in rank_skills(SPECS, **kw)]


def test_goal_effects_pick_the_skills_that_achieve_it():
    r = rank_skills(SPECS, goal=["in bowl_1 drawer_1"])
    assert r[0].name == "place_in" and r[0].effect_score == 1.0 and r[1].effect_score == 0.0
    assert r[0].matched == ("in bowl_1 drawer_1",)
    # a negated goal is achieved by a delete effect
    assert _top(goal=["not open drawer_1"])[0] == "close"
    assert _top(goal=[("turnoff", "stove_1")])[0] == "turn_off"
    # three skills can make 'on' true: effects alone cannot tell them apart
    on = [x for x in rank_skills(SPECS, goal=["on bowl_1 plate_1"]) if x.effect_score == 1.0]
    assert sorted(x.name for x in on) == ["place_on", "push", "stack_on"]
    # variables bind consistently: 'on ?obj ?obj' does not match two different entities
    s = SkillSpec("self", "x", (), (), ("on ?a ?a",), (), ())
    assert effect_matches(s, ["on bowl_1 plate_1"]) == ()
    assert effect_matches(s, ["on bowl_1 bowl_1"]) == ("on bowl_1 bowl_1",)


def test_instruction_separates_look_alikes():
    assert _top(instruction="put the bowl inside the top drawer")[0] == "place_in"
    assert _top(instruction="turn the stove off")[0] == "turn_off"
    assert _top(instruction="pull the cabinet drawer open")[0] == "open"
    goal = ["on bowl_1 plate_1"]
    assert _top(instruction="slide the bowl across the table to the plate", goal=goal)[0] == "push"
    assert _top(instruction="stack the red block on the blue block to make a tower",
                goal=["on block_1 block_2"])[0] == "stack_on"
    assert _top(instruction="set the bowl down on the plate", goal=goal)[0] == "place_on"
    # the goal outweighs a misleading instruction: 'inside the drawer' text, 'on' goal
    r = rank_skills(SPECS, instruction="put the bowl inside the drawer", goal=goal)
    assert r[0].name in ("place_on", "push", "stack_on") and r[0].effect_score == 1.0


def test_bad_queries_are_errors():
    with pytest.raises(ValueError, match="needs an instruction, a goal, or both"):
        rank_skills(SPECS)
    with pytest.raises(ValueError, match="no skills"):
        rank_skills({}, goal=["on a b"])
    with pytest.raises(ValueError, match="empty goal atom"):
        rank_skills(SPECS, goal=[""])
