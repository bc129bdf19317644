"""Executor: plain runs, replanning after injected failures, bounded retries, recording, plan
validation before motion (repair or refusal) and the effect check after each call.

The fake world here is a tiny kinematic world: a point end-effector (a :class:`Robot`) that moves
by the action's ``delta_pos``, and a symbolic state that fake skill policies change (STRIPS
effects) after a fixed number of control steps. It is also used by ``test_evaluation.py``
(importable top-level names, so ``spawn`` worker processes can rebuild it).
"""

from __future__ import annotations

import numpy as np
import pytest

from robot_skills.domain.predicates import SymbolicProblem
from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.execution import recording
from robot_skills.execution.executor import (
    EpisodeRecording,
    Executor,
    SkillSegment,
    effect_mismatch,
    run_task_policy,
    termination_holds,
)
from robot_skills.execution.interfaces import Planner, SkillPolicy, SkillSet, TaskWorld
from robot_skills.planning.symbolic import (
    NoPlanError,
    Plan,
    SkillCall,
    SymbolicPlanner,
    apply_effects,
    ground_call,
)
from robot_skills.robot import Action, Observation, Robot

F = frozenset
BOWL, PLATE, DRAWER, STOVE = "bowl_1", "plate_1", "cabinet_1_top_region", "stove_1"
ENTITIES = {
    BOWL: F({"graspable", "surface"}),
    PLATE: F({"graspable", "surface"}),
    DRAWER: F({"container", "openable"}),
    STOVE: F({"switchable"}),
    "table_region_a": F({"surface", "table_region"}),
}
INIT = F({("handempty",), ("close", DRAWER), ("turnoff", STOVE),
          ("on", BOWL, "table_region_a"), ("on", PLATE, "table_region_a")})


class FakeRobot(Robot):
    """A point end-effector at 20 Hz; ``act`` moves it by ``delta_pos`` (m, base frame), clipped
    component-wise to :attr:`action_limits`, and returns the applied action."""

    control_period = 0.05

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.ee = np.zeros(3)
        self.t = 0

    @property
    def joint_limits(self) -> np.ndarray:
        return np.tile([-np.pi, np.pi], (7, 1))

    def reset(self, seed: int | None = None) -> Observation:
        self.ee[:] = 0.0
        self.t = 0
        return self.observe()

    def observe(self) -> Observation:
        return Observation(np.zeros(7), np.zeros(7), self.ee.copy(), np.array([1.0, 0, 0, 0]),
                           0.08, {}, {}, self.t * self.control_period)

    def act(self, action: Action) -> Action:
        lim = self.action_limits
        applied = Action.from_array(action.to_array())  # rejects NaN/inf
        applied = Action(np.clip(applied.delta_pos, -lim.max_delta_pos, lim.max_delta_pos),
                         np.clip(applied.delta_rot, -lim.max_delta_rot, lim.max_delta_rot),
                         float(np.clip(applied.gripper, -1.0, 1.0)))
        self.ee += applied.delta_pos
        self.t += 1
        self.world.steps += 1
        return applied


class FakeWorld:
    """Symbolic state + point robot. ``slip_after`` drops the held object once after that skill
    completes, observed at the ``slip_delay``-th state query after the effects were applied: the
    executor queries once for the call's termination test, once for its effect check, then once
    for the next call's preconditions — so ``slip_delay=3`` contradicts the next precondition and
    ``slip_delay=2`` makes the call's own add effect go missing."""

    def __init__(self, goal, state=INIT, entities=ENTITIES, slip_after: str | None = None,
                 slip_delay: int = 3):
        self.entities = dict(entities)
        self.state = F(state)
        self.goal = F(goal)
        self.robot = FakeRobot(self)
        self.steps = 0
        self.slip_after = slip_after
        self.slip_delay = slip_delay
        self._slip_countdown = -1

    def apply(self, skill: str, args) -> None:
        self.state = apply_effects(ground_call(SKILL_SPECS[skill], tuple(args)), self.state)
        if skill == self.slip_after:
            self.slip_after, self._slip_countdown = None, self.slip_delay

    def symbolic_problem(self) -> SymbolicProblem:
        return SymbolicProblem(self.entities, self.predicate_state(), self.goal)

    def predicate_state(self):
        if self._slip_countdown > 0:
            self._slip_countdown -= 1
            if self._slip_countdown == 0:  # the held object slips back onto the table
                held = [a[1] for a in self.state if a[0] == "holding"]
                self.state = (self.state - {("holding", h) for h in held}
                              | {("handempty",)} | {("on", h, "table_region_a") for h in held})
        return self.state

    def goal_progress(self):
        return {g: g in self.state for g in self.goal}

    def success(self) -> bool:
        return self.goal <= self.state

    def render(self) -> np.ndarray:
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[..., 0] = (self.steps * 7) % 255
        return frame


class FakeSkill:
    """Moves the point for ``duration`` steps, then applies its STRIPS effects to the world.

    ``fail_times``: the first that many calls never finish (they time out); ``raise_times``: the
    first that many calls raise in ``act``.
    """

    def __init__(self, name: str, duration: int = 5, fail_times: int = 0, raise_times: int = 0):
        self.name, self.duration = name, duration
        self.fail_times, self.raise_times = fail_times, raise_times
        self.calls = 0

    def reset(self, args, world) -> None:
        self.args, self.world, self.k = tuple(args), world, 0
        self.calls += 1
        self.broken = self.calls <= self.fail_times
        self.raising = self.calls <= self.raise_times

    def act(self, obs: Observation) -> Action:
        if self.raising:
            raise RuntimeError("simulated controller fault")
        self.k += 1
        if self.k == self.duration and not self.broken:
            self.world.apply(self.name, self.args)
        return Action(np.array([0.001, 0.0, 0.0]), np.zeros(3), -1.0)


def skill_set(policies) -> SkillSet:
    """The policies with their contracts (``SKILL_SPECS`` restricted to the policies' names)."""
    return SkillSet(dict(policies), {name: SKILL_SPECS[name] for name in policies})


def fake_policies(**overrides) -> dict[str, FakeSkill]:
    skills = {name: FakeSkill(name) for name in SKILL_SPECS}
    for name, kw in overrides.items():
        skills[name] = FakeSkill(name, **kw)
    return skills


def fake_skills(**overrides) -> SkillSet:
    return skill_set(fake_policies(**overrides))


GOAL_IN_DRAWER = {("in", BOWL, DRAWER)}


class ScriptedPlanner:
    """Returns the queued plans (calls as ``"verb(args)"`` strings) in order, then falls back to
    ``fallback`` (a planner) or raises :class:`NoPlanError`. Records every problem it was given."""

    def __init__(self, *plans, fallback=None):
        self.queue = [list(p) for p in plans]
        self.fallback = fallback
        self.problems: list[SymbolicProblem] = []

    def plan(self, problem: SymbolicProblem) -> Plan:
        self.problems.append(problem)
        if self.queue:
            return Plan([SkillCall.parse(c) for c in self.queue.pop(0)], [], F(problem.goal))
        if self.fallback is None:
            raise NoPlanError("scripted planner has nothing left")
        return self.fallback.plan(problem)


class AlwaysPlanner:
    """Proposes the same plan for every problem (a planner that never learns)."""

    def __init__(self, calls):
        self.calls = list(calls)
        self.n = 0

    def plan(self, problem: SymbolicProblem) -> Plan:
        self.n += 1
        return Plan([SkillCall.parse(c) for c in self.calls], [], F(problem.goal))


def test_fakes_satisfy_protocols():
    w = FakeWorld(GOAL_IN_DRAWER)
    assert isinstance(w, TaskWorld) and isinstance(FakeSkill("pick"), SkillPolicy)
    assert isinstance(w.robot, Robot)
    assert isinstance(SymbolicPlanner(), Planner) and isinstance(ScriptedPlanner(), Planner)
    with w.robot as r:  # the Robot lifecycle
        assert r.is_connected
    assert not w.robot.is_connected


def test_fake_robot_act_returns_the_applied_action():
    robot = FakeWorld(GOAL_IN_DRAWER).robot
    robot.reset()
    applied = robot.act(Action(np.array([0.2, -0.01, 0.0]), np.zeros(3), 3.0))
    assert isinstance(applied, Action)
    np.testing.assert_allclose(applied.delta_pos, [0.05, -0.01, 0.0])  # clipped to 5 cm/step
    assert applied.gripper == 1.0
    np.testing.assert_allclose(robot.observe().ee_pos, [0.05, -0.01, 0.0])
    with pytest.raises(ValueError):
        robot.act(Action(np.array([np.nan, 0.0, 0.0]), np.zeros(3), 0.0))


def test_recording_types_live_in_recording_module():
    assert EpisodeRecording is recording.EpisodeRecording
    assert SkillSegment is recording.SkillSegment


def test_plain_plan_runs_to_success_with_recording_and_callback():
    world = FakeWorld(GOAL_IN_DRAWER)
    rec, frames, seen = EpisodeRecording(), [], []

    def on_step(s, o, a):
        frames.append(s)
        seen.append(o.ee_pos[0])

    skills = fake_skills()
    ex = Executor(world, skills, SymbolicPlanner(skills.specs), on_step=on_step, recorder=rec)
    res = ex.run()
    assert res.success and res.reason == "success" and res.replans == 0
    assert [(c.skill, c.outcome) for c in res.calls] == [
        ("open", "success"), ("pick", "success"), ("place_in", "success")]
    assert all(c.effects_unmet == () for c in res.calls)
    assert res.steps == 15 and frames == list(range(1, 16))
    assert [(c.start_step, c.end_step) for c in res.calls] == [(0, 5), (5, 10), (10, 15)]
    assert len(rec.observations) == len(rec.actions) == 15
    # the state is read with observe() after each act(): obs[t] is before action t, the
    # callback's obs after it (the point moves 1 mm per step)
    assert [o.ee_pos[0] for o in rec.observations] == pytest.approx([0.001 * t for t in range(15)])
    assert seen == pytest.approx([0.001 * s for s in range(1, 16)])
    assert [(s.start, s.end, s.skill, s.success) for s in rec.segments] == [
        (0, 5, "open", True), (5, 10, "pick", True), (10, 15, "place_in", True)]
    assert res.goal_progress == {("in", BOWL, DRAWER): True}
    assert res.to_dict()["goal_progress"] == {"(In bowl_1 cabinet_1_top_region)": True}
    assert res.to_dict()["calls"][0]["effects_unmet"] == []


def test_injected_timeout_triggers_replanning_then_success():
    world = FakeWorld(GOAL_IN_DRAWER)
    res = Executor(world, fake_skills(pick={"fail_times": 1})).run()
    assert res.success and res.replans == 1
    outcomes = [(c.skill, c.outcome) for c in res.calls]
    assert outcomes == [("open", "success"), ("pick", "timeout"), ("pick", "success"),
                        ("place_in", "success")]
    limit = Executor(world, fake_skills()).time_limit_steps("pick")
    assert limit == 240  # 12 s at 20 Hz
    assert res.calls[1].end_step - res.calls[1].start_step == limit
    assert res.plans[1] == ["pick(bowl_1)", "place_in(bowl_1, cabinet_1_top_region)"]
    assert any("replanning" in m for m in res.messages)


def test_retries_are_bounded():
    world = FakeWorld(GOAL_IN_DRAWER)
    policies = fake_policies(pick={"fail_times": 99, "duration": 1})
    res = Executor(world, skill_set(policies), max_replans=2).run()
    assert not res.success and res.reason == "replans_exhausted" and res.replans == 2
    assert [c.skill for c in res.calls if c.outcome == "timeout"] == ["pick"] * 3
    assert policies["pick"].calls == 3


def test_world_contradicting_next_precondition_triggers_replan():
    world = FakeWorld({("on", BOWL, PLATE)}, slip_after="pick", slip_delay=3)
    res = Executor(world, fake_skills()).run()
    assert res.success and res.replans == 1
    assert any("contradicts" in m and "(Holding bowl_1)" in m for m in res.messages)
    assert [c.skill for c in res.calls] == ["pick", "pick", "place_on"]
    assert res.calls[0].outcome == "success"  # the slip came after the effect check


def test_exception_in_skill_is_an_error_outcome_and_replanned():
    world = FakeWorld({("turnon", STOVE)})
    res = Executor(world, fake_skills(turn_on={"raise_times": 1})).run()
    assert res.success and res.replans == 1
    assert res.calls[0].outcome == "error" and "simulated controller fault" in res.calls[0].message


def test_no_plan_ends_episode_with_message():
    policies = {k: v for k, v in fake_policies().items() if k != "open"}
    res = Executor(FakeWorld(GOAL_IN_DRAWER), skill_set(policies)).run()
    assert not res.success and res.reason == "no_plan" and res.steps == 0
    assert "(In bowl_1 cabinet_1_top_region)" in res.messages[0]


def test_plan_using_a_skill_outside_the_library_is_refused_before_running():
    """A planner built over more contracts than the library has proposes ``open``: the
    executor's validation refuses it (the repair asks the same planner, which insists)."""
    policies = {k: v for k, v in fake_policies().items() if k != "open"}
    world = FakeWorld(GOAL_IN_DRAWER)
    res = Executor(world, skill_set(policies), SymbolicPlanner(SKILL_SPECS)).run()
    assert res.reason == "invalid_plan" and not res.success and res.steps == 0
    assert res.calls == [] and world.steps == 0
    assert res.plans[0][0] == "open(cabinet_1_top_region)"
    assert "unknown skill 'open'" in res.messages[0] and "refused" in res.messages[-1]
    assert all(p.calls == 0 for p in policies.values())


def test_invalid_plan_is_repaired_from_its_valid_prefix_before_motion():
    """The plan puts the bowl in the stove (not a container): the valid prefix (open, pick) is
    kept, the rest re-planned from the state the prefix leads to, and the repaired plan runs."""
    planner = ScriptedPlanner(["open(cabinet_1_top_region)", "pick(bowl_1)",
                               "place_in(bowl_1, stove_1)"],
                              fallback=SymbolicPlanner(SKILL_SPECS))
    world = FakeWorld(GOAL_IN_DRAWER)
    res = Executor(world, fake_skills(), planner).run()
    assert res.success and res.reason == "success" and res.replans == 0
    assert res.plans == [
        ["open(cabinet_1_top_region)", "pick(bowl_1)", "place_in(bowl_1, stove_1)"],
        ["open(cabinet_1_top_region)", "pick(bowl_1)", "place_in(bowl_1, cabinet_1_top_region)"]]
    assert [(c.skill, c.args, c.outcome) for c in res.calls] == [
        ("open", (DRAWER,), "success"), ("pick", (BOWL,), "success"),
        ("place_in", (BOWL, DRAWER), "success")]
    assert any("invalid" in m and "stove_1" in m for m in res.messages)
    assert any(m.startswith("repaired to") for m in res.messages)
    # the repair re-planned from the prefix's expected end state, not from the observed one
    assert len(planner.problems) == 2
    assert {("open", DRAWER), ("holding", BOWL)} <= planner.problems[1].state
    assert ("holding", BOWL) not in planner.problems[0].state


@pytest.mark.parametrize("planner_factory", [
    lambda: AlwaysPlanner(["juggle(bowl_1)"]),                       # unknown skill, insists
    lambda: ScriptedPlanner(["place_in(bowl_1, cabinet_1_top_region)"]),  # then no plan at all
], ids=["insists", "no_repair_plan"])
def test_unrepairable_plan_is_refused_without_robot_motion(planner_factory):
    planner = planner_factory()
    world = FakeWorld(GOAL_IN_DRAWER)
    policies = fake_policies()
    res = Executor(world, skill_set(policies), planner).run()
    assert not res.success and res.reason == "invalid_plan"
    assert res.steps == 0 and res.calls == [] and res.replans == 0
    assert world.steps == 0 and world.robot.t == 0 and np.all(world.robot.ee == 0)
    assert all(p.calls == 0 for p in policies.values())  # no skill was even reset
    assert world.state == INIT
    assert any("refused" in m for m in res.messages)
    assert res.to_dict()["reason"] == "invalid_plan"


def test_replans_are_validated_too():
    """After a timeout the planner's new plan is invalid and cannot be repaired: the episode
    ends with ``invalid_plan``, and no step is taken after the refusal."""
    planner = ScriptedPlanner(["open(cabinet_1_top_region)", "pick(bowl_1)",
                               "place_in(bowl_1, cabinet_1_top_region)"],
                              ["juggle(bowl_1)"])
    world = FakeWorld(GOAL_IN_DRAWER)
    res = Executor(world, fake_skills(pick={"fail_times": 1}), planner).run()
    assert not res.success and res.reason == "invalid_plan" and res.replans == 1
    assert [(c.skill, c.outcome) for c in res.calls] == [("open", "success"),
                                                         ("pick", "timeout")]
    assert res.steps == res.calls[-1].end_step == world.steps
    assert res.plans[-1] == ["juggle(bowl_1)"] and "refused" in res.messages[-1]


def test_missing_add_effect_is_a_failure_and_replanned():
    """pick's termination holds, but the bowl slips before the effect check: ``(Holding
    bowl_1)`` is missing, pick's delete effects are still observed -> effects_missing, replan."""
    world = FakeWorld({("on", BOWL, PLATE)}, slip_after="pick", slip_delay=2)
    res = Executor(world, fake_skills()).run()
    assert res.success and res.replans == 1
    first = res.calls[0]
    assert (first.skill, first.outcome) == ("pick", "effects_missing")
    assert first.effects_unmet == ("(Holding bowl_1)", "not (Handempty)",
                                   "not (On bowl_1 table_region_a)")
    assert "(Holding bowl_1)" in first.message
    assert [(c.skill, c.outcome) for c in res.calls[1:]] == [("pick", "success"),
                                                             ("place_on", "success")]
    assert any("effects_missing" in m for m in res.messages)
    assert res.to_dict()["calls"][0]["effects_unmet"] == list(first.effects_unmet)


def test_missing_add_effect_with_recorder_marks_segment_failed():
    world = FakeWorld({("on", BOWL, PLATE)}, slip_after="pick", slip_delay=2)
    rec = EpisodeRecording()
    res = Executor(world, fake_skills(), recorder=rec).run()
    assert res.success
    assert [(s.skill, s.success) for s in rec.segments] == [
        ("pick", False), ("pick", True), ("place_on", True)]


class _OpenLeavingCloseSkill(FakeSkill):
    """``open`` that adds ``(Open drawer)`` but leaves ``(Close drawer)`` (a delete effect)."""

    def act(self, obs: Observation) -> Action:
        self.k += 1
        if self.k == self.duration:
            self.world.state = self.world.state | {("open", *self.args)}
        return Action(np.array([0.001, 0.0, 0.0]), np.zeros(3), -1.0)


def test_remaining_delete_effect_is_logged_not_a_failure():
    world = FakeWorld(GOAL_IN_DRAWER)
    policies = {**fake_policies(), "open": _OpenLeavingCloseSkill("open")}
    res = Executor(world, skill_set(policies)).run()
    assert res.success and res.replans == 0
    assert res.calls[0].outcome == "success"
    assert res.calls[0].effects_unmet == ("not (Close cabinet_1_top_region)",)
    assert any("delete effect(s) still observed" in m and "(Close cabinet_1_top_region)" in m
               for m in res.messages)


def test_effect_mismatch():
    pick, place_on, push = SKILL_SPECS["pick"], SKILL_SPECS["place_on"], SKILL_SPECS["push"]
    assert effect_mismatch(pick, (BOWL,), F({("holding", BOWL)})) == ([], [])
    missing, remaining = effect_mismatch(pick, (BOWL,), INIT)
    assert missing == [("holding", BOWL)]
    assert remaining == [("handempty",), ("on", BOWL, "table_region_a")]  # wildcard expanded
    assert effect_mismatch(place_on, (BOWL, PLATE),
                           F({("on", BOWL, PLATE), ("handempty",), ("holding", BOWL)})) == (
        [], [("holding", BOWL)])
    # push deletes "on plate *" but re-adds "on plate target": not counted as remaining
    assert effect_mismatch(push, (PLATE, "table_region_a"),
                           F({("on", PLATE, "table_region_a")})) == ([], [])
    assert effect_mismatch(push, (PLATE, "table_region_a"), F({("on", PLATE, BOWL)})) == (
        [("on", PLATE, "table_region_a")], [("on", PLATE, BOWL)])
    with pytest.raises(ValueError):
        effect_mismatch(place_on, (BOWL,), INIT)


def test_episode_step_budget():
    res = Executor(FakeWorld(GOAL_IN_DRAWER), fake_skills(), max_steps=7).run()
    assert not res.success and res.reason == "budget_exhausted" and res.steps == 7
    assert res.calls[-1].outcome == "interrupted"


def test_explicit_goal_and_already_satisfied():
    world = FakeWorld({("close", DRAWER)})
    res = Executor(world, fake_skills()).run()
    assert res.success and res.steps == 0 and res.calls == []
    res = Executor(FakeWorld(set()), fake_skills()).run(goal={("turnon", STOVE)})
    assert res.calls[0].skill == "turn_on" and res.calls[0].outcome == "success"


def test_skill_factories_are_instantiated_once():
    made = []

    def factory_for(name):
        def make():
            made.append(name)
            return FakeSkill(name)
        return make

    skills = SkillSet({name: factory_for(name) for name in SKILL_SPECS}, SKILL_SPECS)
    res = Executor(FakeWorld({("on", BOWL, PLATE), ("on", PLATE, "table_region_a")}),
                   skills).run()
    assert res.success and sorted(made) == ["pick", "place_on"]


def test_termination_requires_release_for_place():
    spec = SKILL_SPECS["place_on"]
    on = F({("on", BOWL, PLATE)})
    assert not termination_holds(spec, (BOWL, PLATE), on)
    assert termination_holds(spec, (BOWL, PLATE), on | {("handempty",)})
    with pytest.raises(ValueError):
        termination_holds(spec, (BOWL,), on)


def test_bad_executor_arguments():
    with pytest.raises(ValueError):
        Executor(FakeWorld(GOAL_IN_DRAWER), fake_skills(), max_replans=-1)
    with pytest.raises(ValueError):
        Executor(FakeWorld(GOAL_IN_DRAWER), fake_skills(), max_steps=0)
    with pytest.raises(TypeError, match="SkillSet"):  # a bare dict of policies has no contracts
        Executor(FakeWorld(GOAL_IN_DRAWER), fake_policies())


def test_skill_set_pairs_policies_with_contracts():
    policies = fake_policies()
    skills = skill_set(policies)
    assert len(skills) == len(SKILL_SPECS) and skills.names() == sorted(SKILL_SPECS)
    with pytest.raises(ValueError, match="without a contract"):
        SkillSet(policies, {k: v for k, v in SKILL_SPECS.items() if k != "open"})
    with pytest.raises(ValueError, match="without a policy"):
        SkillSet({k: v for k, v in policies.items() if k != "open"}, SKILL_SPECS)
    with pytest.raises(ValueError, match="contract of"):
        SkillSet({"pick": policies["pick"]}, {"pick": SKILL_SPECS["place_on"]})


def test_default_planner_uses_only_the_library_contracts():
    policies = {k: v for k, v in fake_policies().items() if k in ("pick", "place_on")}
    ex = Executor(FakeWorld({("on", BOWL, PLATE)}), skill_set(policies))
    assert isinstance(ex.planner, SymbolicPlanner)
    assert sorted(ex.planner.specs) == ["pick", "place_on"]
    assert ex.run().success


class ScriptedTaskPolicy:
    """Monolithic fake: does the whole task's effects after ``duration`` steps."""

    name = "task"

    def __init__(self, duration: int = 10):
        self.duration = duration

    def reset(self, args, world):
        self.world, self.k = world, 0

    def act(self, obs):
        self.k += 1
        if self.k == self.duration:
            self.world.state = self.world.state | self.world.goal
        return Action(np.zeros(3), np.zeros(3), 1.0)


def test_run_task_policy_monolithic():
    res = run_task_policy(FakeWorld(GOAL_IN_DRAWER), ScriptedTaskPolicy(10), max_steps=50)
    assert res.success and res.steps == 10 and res.calls[0].skill == "task"
    res = run_task_policy(FakeWorld(GOAL_IN_DRAWER), ScriptedTaskPolicy(100), max_steps=50)
    assert not res.success and res.steps == 50 and res.reason == "budget_exhausted"


class _GoalBeforeReleaseSkill(FakeSkill):
    """place_in whose object is In the drawer while the hand still holds it (no handempty)."""

    def act(self, obs: Observation) -> Action:
        self.k += 1
        if self.k == self.duration:
            w = self.world
            w.state = w.state | {("in", *self.args)}
        return Action(np.array([0.001, 0.0, 0.0]), np.zeros(3), 1.0)


def test_call_cut_short_by_reaching_the_goal_is_recorded_as_successful():
    world = FakeWorld(GOAL_IN_DRAWER)
    rec = EpisodeRecording()
    skills = skill_set({**fake_policies(), "place_in": _GoalBeforeReleaseSkill("place_in")})
    res = Executor(world, skills, recorder=rec).run()
    assert res.success
    assert res.calls[-1].skill == "place_in" and res.calls[-1].outcome == "interrupted"
    assert rec.segments[-1].skill == "place_in" and rec.segments[-1].success  # usable as a demo
