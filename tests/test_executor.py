"""Executor: plain runs, replanning after injected failures, bounded retries, recording.

The fake world here is a tiny kinematic world: a point end-effector that moves by the action's
``delta_pos``, and a symbolic state that fake skill policies change (STRIPS effects) after a fixed
number of control steps. It is also used by ``test_evaluation.py`` (importable top-level names, so
``spawn`` worker processes can rebuild it).
"""

from __future__ import annotations

import numpy as np
import pytest

from robot_skills.domain.predicates import SymbolicProblem
from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.execution.executor import (
    EpisodeRecording,
    Executor,
    run_task_policy,
    termination_holds,
)
from robot_skills.execution.interfaces import SkillPolicy, TaskWorld
from robot_skills.planning.symbolic import SymbolicPlanner, apply_effects, ground_call
from robot_skills.robot import Action, Observation

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


class FakeRobot:
    """A point end-effector at 20 Hz; ``act`` moves it by ``delta_pos`` (m, base frame)."""

    control_period = 0.05

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.ee = np.zeros(3)
        self.t = 0

    def reset(self, seed: int | None = None) -> Observation:
        self.ee[:] = 0.0
        self.t = 0
        return self.observe()

    def observe(self) -> Observation:
        return Observation(np.zeros(7), np.zeros(7), self.ee.copy(), np.array([1.0, 0, 0, 0]),
                           0.08, {}, {}, self.t * self.control_period)

    def act(self, action: Action) -> Observation:
        self.ee += np.asarray(action.delta_pos)
        self.t += 1
        self.world.steps += 1
        return self.observe()


class FakeWorld:
    """Symbolic state + point robot. ``slip_after`` drops the held object once after that skill
    completes (observed at the next state query after the skill's own termination check)."""

    def __init__(self, goal, state=INIT, entities=ENTITIES, slip_after: str | None = None):
        self.entities = dict(entities)
        self.state = F(state)
        self.goal = F(goal)
        self.robot = FakeRobot(self)
        self.steps = 0
        self.slip_after = slip_after
        self._slip_countdown = -1

    def apply(self, skill: str, args) -> None:
        self.state = apply_effects(ground_call(SKILL_SPECS[skill], tuple(args)), self.state)
        if skill == self.slip_after:
            self.slip_after, self._slip_countdown = None, 2

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


def fake_skills(**overrides) -> dict[str, FakeSkill]:
    skills = {name: FakeSkill(name) for name in SKILL_SPECS}
    for name, kw in overrides.items():
        skills[name] = FakeSkill(name, **kw)
    return skills


GOAL_IN_DRAWER = {("in", BOWL, DRAWER)}


def test_fakes_satisfy_protocols():
    w = FakeWorld(GOAL_IN_DRAWER)
    assert isinstance(w, TaskWorld) and isinstance(FakeSkill("pick"), SkillPolicy)


def test_plain_plan_runs_to_success_with_recording_and_callback():
    world = FakeWorld(GOAL_IN_DRAWER)
    rec, frames = EpisodeRecording(), []
    ex = Executor(world, fake_skills(), SymbolicPlanner(), on_step=lambda s, o, a: frames.append(s),
                  recorder=rec)
    res = ex.run()
    assert res.success and res.reason == "success" and res.replans == 0
    assert [(c.skill, c.outcome) for c in res.calls] == [
        ("open", "success"), ("pick", "success"), ("place_in", "success")]
    assert res.steps == 15 and frames == list(range(1, 16))
    assert [(c.start_step, c.end_step) for c in res.calls] == [(0, 5), (5, 10), (10, 15)]
    assert len(rec.observations) == len(rec.actions) == 15
    assert [(s.start, s.end, s.skill, s.success) for s in rec.segments] == [
        (0, 5, "open", True), (5, 10, "pick", True), (10, 15, "place_in", True)]
    assert res.goal_progress == {("in", BOWL, DRAWER): True}
    assert res.to_dict()["goal_progress"] == {"(In bowl_1 cabinet_1_top_region)": True}


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
    skills = fake_skills(pick={"fail_times": 99, "duration": 1})
    res = Executor(world, skills, max_replans=2).run()
    assert not res.success and res.reason == "replans_exhausted" and res.replans == 2
    assert [c.skill for c in res.calls if c.outcome == "timeout"] == ["pick"] * 3
    assert skills["pick"].calls == 3


def test_world_contradicting_next_precondition_triggers_replan():
    world = FakeWorld({("on", BOWL, PLATE)}, slip_after="pick")
    res = Executor(world, fake_skills()).run()
    assert res.success and res.replans == 1
    assert any("contradicts" in m and "(Holding bowl_1)" in m for m in res.messages)
    assert [c.skill for c in res.calls] == ["pick", "pick", "place_on"]


def test_exception_in_skill_is_an_error_outcome_and_replanned():
    world = FakeWorld({("turnon", STOVE)})
    res = Executor(world, fake_skills(turn_on={"raise_times": 1})).run()
    assert res.success and res.replans == 1
    assert res.calls[0].outcome == "error" and "simulated controller fault" in res.calls[0].message


def test_no_plan_ends_episode_with_message():
    skills = {k: v for k, v in fake_skills().items() if k != "open"}
    res = Executor(FakeWorld(GOAL_IN_DRAWER), skills).run()
    assert not res.success and res.reason == "no_plan" and res.steps == 0
    assert "(In bowl_1 cabinet_1_top_region)" in res.messages[0]


def test_plan_using_missing_skill_is_refused_before_running():
    skills = {k: v for k, v in fake_skills().items() if k != "open"}
    res = Executor(FakeWorld(GOAL_IN_DRAWER), skills, SymbolicPlanner()).run()
    assert res.reason == "no_plan" and res.steps == 0 and "['open']" in res.messages[0]


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

    skills = {name: factory_for(name) for name in SKILL_SPECS}
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
    skills = {**fake_skills(), "place_in": _GoalBeforeReleaseSkill("place_in")}
    res = Executor(world, skills, recorder=rec).run()
    assert res.success
    assert res.calls[-1].skill == "place_in" and res.calls[-1].outcome == "interrupted"
    assert rec.segments[-1].skill == "place_in" and rec.segments[-1].success  # usable as a demo
