"""Skill-centric data: grounded calls of a scene, random valid prefixes, coverage, and a real
collection on LIBERO's libero_goal scene with the scripted experts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.data.hdf5 import DemoReader
from robot_skills.data.skill_centric import (
    START_INITIAL,
    call_goal,
    coverage,
    coverage_from_hdf5,
    format_coverage,
    grounded_calls,
    sample_episode_goals,
    scene_label,
    skill_centric_jobs,
)
from robot_skills.domain.predicates import SymbolicProblem
from robot_skills.planning.symbolic import SkillCall, SymbolicPlanner, derived_state

ENTITIES = {
    "bowl_1": frozenset({"graspable", "surface", "container"}),
    "cheese_1": frozenset({"graspable"}),
    "plate_1": frozenset({"surface", "pushable"}),
    "drawer_1": frozenset({"container", "openable"}),
    "stove_1": frozenset({"switchable"}),
}
STATE = frozenset({("handempty",), ("close", "drawer_1"), ("turnoff", "stove_1")})
PROBLEM = SymbolicProblem(dict(ENTITIES), STATE, frozenset())


def test_call_goal_is_the_positive_add_effects_without_handempty() -> None:
    assert call_goal(SkillCall("pick", ("bowl_1",))) == {("holding", "bowl_1")}
    assert call_goal(SkillCall("place_in", ("bowl_1", "drawer_1"))) == {("in", "bowl_1",
                                                                         "drawer_1")}
    assert call_goal(SkillCall("close", ("drawer_1",))) == {("close", "drawer_1")}
    with pytest.raises(ValueError, match="argument"):
        call_goal(SkillCall("place_on", ("bowl_1",)))
    with pytest.raises(KeyError):
        call_goal(SkillCall("fly", ("bowl_1",)))


def test_grounded_calls_cover_every_verb_the_affordances_allow() -> None:
    calls, excluded = grounded_calls(PROBLEM)
    names = {str(c) for c in calls}
    # a drawer that starts closed can still be closed after opening it: `close` is plannable
    assert {"open(drawer_1)", "close(drawer_1)", "turn_on(stove_1)", "turn_off(stove_1)",
            "pick(bowl_1)", "pick(cheese_1)", "place_in(cheese_1, bowl_1)",
            "place_in(bowl_1, drawer_1)", "place_on(cheese_1, plate_1)"} <= names
    # graspable-only objects are never targets of place_on; the plate is never picked
    assert not any(c.skill == "place_on" and c.args[1] == "cheese_1" for c in calls)
    assert "pick(plate_1)" not in names
    assert all(isinstance(v, str) and v for v in excluded.values())


def test_sampled_episode_goals_are_valid_chains_ending_with_the_target() -> None:
    calls, _ = grounded_calls(PROBLEM)
    planner = SymbolicPlanner()
    target = SkillCall("place_in", ("cheese_1", "bowl_1"))
    lengths = set()
    for seed in range(30):
        goals = sample_episode_goals(PROBLEM, target, np.random.default_rng(seed), 2, calls)
        again = sample_episode_goals(PROBLEM, target, np.random.default_rng(seed), 2, calls)
        assert goals == again  # seeded: a rerun draws the same prefix
        assert goals[-1] == call_goal(target)
        lengths.add(len(goals))
        state = STATE
        for g in goals:  # each sub-goal plannable from where the previous one leaves the scene
            assert not g <= derived_state(state, ENTITIES)
            plan = planner.plan(SymbolicProblem(dict(ENTITIES), state, g))
            state = plan.states[-1]
            if g is not goals[-1]:
                assert ("handempty",) in state  # prefixes end with the hand empty
    assert lengths == {1, 2, 3}  # initial starts and chained starts both occur
    assert sample_episode_goals(PROBLEM, target, np.random.default_rng(0), 0, calls) == [
        call_goal(target)]


def test_a_target_that_cannot_be_planned_is_refused() -> None:
    held = SymbolicProblem(dict(ENTITIES), STATE | {("on", "cheese_1", "plate_1")}, frozenset())
    with pytest.raises(ValueError, match="no prefix"):
        sample_episode_goals(held, SkillCall("place_on", ("cheese_1", "plate_1")),
                             np.random.default_rng(0), 2, [])


def test_coverage_counts_calls_and_start_kinds() -> None:
    demos = [
        [{"skill": "pick", "args": ["a"]}, {"skill": "place_on", "args": ["a", "p"]},
         {"skill": "pick", "args": ["a"]}],
        [{"skill": "open", "args": ["d"]}, {"skill": "pick", "args": ["b"]}],
    ]
    cov = coverage(demos)
    assert cov["pick"]["segments"] == 3 and cov["pick"]["calls"] == 2
    assert cov["pick"]["start_kinds"] == {START_INITIAL: 1, "after_open": 1,
                                          "after_place_on": 1}
    assert cov["pick"]["cells"] == 3
    assert cov["place_on"]["start_kinds"] == {"after_pick": 1}
    text = format_coverage(cov, {"pick": {"attempts": 4, "successes": 3}})
    assert "3/4 (75%)" in text and "after_open 1" in text


def test_scene_label() -> None:
    assert scene_label("KITCHEN_SCENE3_turn_on_the_stove") == "KITCHEN_SCENE3"
    assert scene_label("LIVING_ROOM_SCENE2_put_both") == "LIVING_ROOM_SCENE2"
    assert scene_label("open_the_middle_drawer") == "open_the_middle_drawer"


def test_skill_centric_collection_on_libero_goal(tmp_path: Path) -> None:
    """Real scene (two libero_goal files), real experts: calls no libero_goal goal uses (close)
    are grounded, episodes chain prefixes before their target, segments are recorded."""
    from robot_skills.data.collect import NoiseConfig, collect_demos
    from robot_skills.data.skill_centric import scene_calls
    from sim.factories import ExpertSkills, SimWorldFactory

    suite = LIBERO_BDDL / "libero_goal"
    paths = [suite / "put_the_bowl_on_the_plate.bddl", suite / "turn_on_the_stove.bddl"]
    world = SimWorldFactory()
    scenes = scene_calls(paths, world, seed=1000)
    assert len(scenes) == 1  # the same objects and fixtures: one scene
    sc = scenes[0]
    verbs = {c.skill for c in sc.calls}
    assert verbs == {"pick", "place_on", "place_in", "open", "close", "turn_on", "turn_off",
                     "push"}
    names = {str(c) for c in sc.calls}
    assert "close(wooden_cabinet_1_top_region)" in names
    # the world gave its geometry: each call's target kind (its motion mode)
    assert sc.target_kinds["close(wooden_cabinet_1_top_region)"] == "drawer"
    assert sc.target_kinds["turn_on(flat_stove_1)"] == "fixture"
    assert {sc.target_kinds[str(c)] for c in sc.calls if c.skill == "pick"} == {"object"}
    jobs = skill_centric_jobs(scenes, 2, seed=5000, region_scale_max=2.0, max_prefix=2)
    assert len(jobs) == 2 * len(sc.calls) and len({j.seed for j in jobs}) == len(jobs)
    want = ["close(wooden_cabinet_1_top_region)", "place_on(cream_cheese_1, plate_1)"]
    chosen = [j for j in jobs if j.target in want]
    out = tmp_path / "demos.hdf5"
    summary = collect_demos([str(p) for p in paths], out, 1, jobs=chosen, make_world=world,
                            make_experts=ExpertSkills(), noise=NoiseConfig(0.0, 0.0),
                            max_steps=600, workers=1, progress=False)
    assert set(summary["calls"]) == set(want)
    assert sum(c["successes"] for c in summary["calls"].values()) >= 3
    with DemoReader(out) as r:
        targets = {r.demo_attrs(d)["target_call"] for d in r.demos}
        subgoals = [json.loads(r.demo_attrs(d)["sub_goals"]) for d in r.demos]
    assert targets <= set(want)
    assert all(len(g) >= 1 for g in subgoals)
    cov = coverage_from_hdf5([out])
    assert {"pick", "place_on"} <= set(cov) or "close" in cov
    kinds = {k for c in cov.values() for k in c["start_kinds"]}
    assert START_INITIAL in kinds


@pytest.mark.slow
def test_a_failed_sub_goal_keeps_the_sub_goals_reached_before_it(tmp_path: Path) -> None:
    """The scripted place_in expert cannot put the cream cheese into the bowl (an object
    container); the drawer opened before it is still a demonstration of `open`."""
    from robot_skills.data.collect import CollectJob, NoiseConfig, collect_demos
    from sim.factories import ExpertSkills, SimWorldFactory

    path = str(LIBERO_BDDL / "libero_goal" / "put_the_cream_cheese_in_the_bowl.bddl")
    # seed 6 draws a one-call prefix (rng([6, 31]) in run_expert_episode)
    job = CollectJob(path, 6, 1.0, "place_in(cream_cheese_1, akita_black_bowl_1)", 1,
                     ("open(wooden_cabinet_1_top_region)",))
    out = tmp_path / "demos.hdf5"
    summary = collect_demos([path], out, 1, jobs=[job], make_world=SimWorldFactory(),
                            make_experts=ExpertSkills(), noise=NoiseConfig(0.0, 0.0),
                            max_steps=300, max_replans=0, workers=1, progress=False)
    ep = summary["tasks"]["put_the_cream_cheese_in_the_bowl"]["episodes"][0]
    assert ep["sub_goals"][0] == "(Open wooden_cabinet_1_top_region)"
    assert not ep["success"] and ep["kept_sub_goals"] == 1
    with DemoReader(out) as r:
        (name,) = r.demos
        from robot_skills.data.dataset import read_segments

        segs = read_segments(r, name, out)
        n = r.num_samples(name)
    assert [s.skill for s in segs] == ["open"] and segs[-1].end == n  # cut after the open


def test_rare_verbs_get_at_least_min_per_verb_episodes() -> None:
    from robot_skills.data.skill_centric import SceneCalls

    calls = [SkillCall("turn_on", ("stove_1",))] + [
        SkillCall("place_on", (f"o{i}", "plate_1")) for i in range(10)]
    scene = SceneCalls("k", "S", ("a.bddl",), tuple(calls), {},
                       {str(c): ("a.bddl",) for c in calls})
    jobs = skill_centric_jobs([scene], 1, min_per_verb=5)
    targets = Counter(j.target.split("(")[0] for j in jobs)
    assert targets == {"turn_on": 5, "place_on": 10}
    with pytest.raises(ValueError, match="min_per_verb"):
        skill_centric_jobs([scene], 1, min_per_verb=-1)


def test_rare_motion_modes_get_at_least_min_per_mode_episodes() -> None:
    """``place_in`` into the microwave (slid in from the front) is one call among many
    ``place_in`` calls into baskets: the verb's minimum is met, the mode's is not."""
    from robot_skills.data.skill_centric import SceneCalls

    calls = [SkillCall("place_in", ("mug_1", "microwave_1_heating_region"))] + [
        SkillCall("place_in", (f"o{i}", "basket_1_contain_region")) for i in range(12)]
    kinds = {str(c): ("enclosure" if "microwave" in c.args[1] else "container") for c in calls}
    scene = SceneCalls("k", "S", ("a.bddl",), tuple(calls), {},
                       {str(c): ("a.bddl",) for c in calls}, kinds)
    by_verb = Counter(j.target for j in skill_centric_jobs([scene], 1, min_per_verb=12))
    assert by_verb["place_in(mug_1, microwave_1_heating_region)"] == 1
    by_mode = Counter(j.target for j in skill_centric_jobs([scene], 1, min_per_verb=12,
                                                           min_per_mode=6))
    assert by_mode["place_in(mug_1, microwave_1_heating_region)"] == 6
    assert by_mode["place_in(o0, basket_1_contain_region)"] == 1
    with pytest.raises(ValueError, match="min_per_mode"):
        skill_centric_jobs([scene], 1, min_per_mode=-1)


def test_rs_train_coverage_report_without_task_files(tmp_path: Path, capsys) -> None:
    """Demos with no task file (e.g. imported from rosbags) still get their coverage printed;
    the held-in calls are skipped with a message instead of failing the training run."""
    from robot_skills import cli
    from robot_skills.data.dataset import write_synthetic_demos

    demos = tmp_path / "demos.hdf5"
    write_synthetic_demos(demos, num_demos=3)
    out = cli.report_coverage(cli.load_config([f"run_dir={tmp_path}"]), [demos],
                              tmp_path / "skills")
    text = capsys.readouterr().out
    assert "held-in calls skipped" in text and "place_on" in text
    assert set(out) == {"coverage"} and out["coverage"]["place_on"]["segments"] == 3
    saved = json.loads((tmp_path / "skill_coverage.json").read_text())
    assert saved["coverage"]["pick"]["start_kinds"] == {"initial": 3}
