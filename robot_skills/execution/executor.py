"""Run a plan of skill calls on a :class:`~robot_skills.execution.interfaces.TaskWorld`, replanning
after failures.

The loop follows the classic sense-plan-act executor of task-and-motion planning systems
(e.g. PDDLStream's "replan on failure" executors): plan from the observed predicate state, run
each skill closed-loop at the robot's control period until its termination test holds, and when a
skill times out, raises, or the world contradicts the plan's next precondition, re-plan from the
world's *observed* predicate state, with a bounded number of retries.

Termination test of a call: every termination atom of its :class:`SkillSpec`, grounded on the
call's arguments, holds in ``world.predicate_state()`` (derived ``accessible`` atoms included), and
for specs with ``needs_open_gripper_at_end`` also ``(handempty)`` — the object has been released.
Time limit: ``ceil(time_limit_s / control_period)`` control steps.

Every plan — whatever planner made it — is validated against the skill set's contracts before the
arm moves (:func:`~robot_skills.planning.validate.validate_plan`); an invalid plan is repaired
from its valid prefix (:func:`~robot_skills.planning.validate.repair_plan`) or refused
(``reason="invalid_plan"``). After each call the observed predicates are compared with the call's
expected effects: a missing add effect is a failure (re-plan), a delete effect still observed is
logged.

Closed loop over the plan's expected states (execution monitoring with triangle-table kernels,
PLANEX: Fikes, Hart & Nilsson, 1972). For every plan the executor regresses the goal through the
calls (:func:`plan_kernels`): ``kernels[i]`` holds the atoms the calls ``i..`` need and do not add
themselves — later preconditions and goal atoms already achieved. After each call ``i-1`` (and
after the ``on_call`` hook's ``"end"`` event), before call ``i`` starts, the observed predicate
state is compared with the plan's expected state ``Plan.states[i]`` on those atoms
(:func:`expected_state_lost`): an atom the plan expected to hold and still needs, but no longer
observed — an object knocked off its target, a drawer pushed shut, a grasp that slipped — makes the
executor re-plan at once from the observed state, naming the lost atoms in
``ExecutionResult.messages``. A call that times out or raises reports the atoms of its own kernel
lost while it ran. Re-plans are bounded by ``max_replans``.

The episode ends when ``world.success()`` holds (checked after every control step, as LIBERO's
evaluation does), when the episode step budget is spent, when no plan exists, or when the replan
budget is spent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from robot_skills.domain.predicates import Atom, SymbolicProblem, format_atom, with_derived
from robot_skills.domain.verbs import SkillSpec, ground, matches, parse_predicate
from robot_skills.execution.interfaces import Planner, SkillPolicy, SkillSet, TaskWorld
from robot_skills.execution.recording import EpisodeRecording, SkillSegment
from robot_skills.execution.retract import HomeRetract, RetractConfig
from robot_skills.perception.placement import call_arg_offsets, call_arg_sizes
from robot_skills.planning.symbolic import (
    NoPlanError,
    Plan,
    SkillCall,
    SymbolicPlanner,
    derived_state,
    ground_call,
    missing_preconditions,
    simulate_plan,
)
from robot_skills.planning.validate import PlanValidationError, repair_plan, validate_plan
from robot_skills.robot import Action, EpisodeInvalidError, Observation

__all__ = ["CallRecord", "SkillSegment", "EpisodeRecording", "ExecutionResult", "Executor",
           "run_task_policy", "termination_holds", "effect_mismatch", "plan_kernels",
           "expected_state_lost"]

StepCallback = Callable[[int, Observation, Action], None]
"""``on_step(step, obs, action)``: ``action`` is the command the robot applied (after clipping),
``obs`` the observation after it."""

CallCallback = Callable[[str, SkillCall, "CallRecord | None"], None]
"""``on_call(event, call, record)``: ``event`` is ``"start"`` (before the policy's ``reset``;
``record`` is None) or ``"end"`` (after the call's effect check; ``record`` is its
:class:`CallRecord`). A hook may change the world (failure injection); the executor reads the
predicate state after the ``"end"`` event before it starts the next call."""


@dataclass
class CallRecord:
    """What happened to one skill call.

    Attributes:
        skill, args: the call.
        start_step, end_step: episode control-step indices, ``[start, end)``.
        outcome: ``"success" | "timeout" | "error" | "interrupted" | "effects_missing"``
            (``interrupted``: the episode ended — goal reached or budget spent — while the call
            ran; ``effects_missing``: the termination test held but an add effect of the contract
            was not observed).
        message: details for failures.
        effects_unmet: expected effects the world contradicted after the call, BDDL spelling
            (``"(Holding bowl_1)"`` missing; ``"not (On bowl_1 plate_1)"`` still observed).
    """

    skill: str
    args: tuple[str, ...]
    start_step: int
    end_step: int
    outcome: str
    message: str = ""
    effects_unmet: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {"skill": self.skill, "args": list(self.args), "start_step": self.start_step,
                "end_step": self.end_step, "outcome": self.outcome, "message": self.message,
                "effects_unmet": list(self.effects_unmet)}


@dataclass
class ExecutionResult:
    """Outcome of one episode.

    Attributes:
        success: ``world.success()`` at the end.
        steps: control steps taken.
        calls: one :class:`CallRecord` per skill call started.
        replans: number of re-plans after the initial plan.
        goal_progress: each goal atom and whether it held at the end (``world.goal_progress()``).
        reason: why the episode ended: ``"success" | "no_plan" | "invalid_plan" |
            "budget_exhausted" | "replans_exhausted" | "error"``.
        messages: human-readable log of failures and replans.
        plans: every plan made, as lists of ``"verb(args)"`` strings.
    """

    success: bool
    steps: int
    calls: list[CallRecord]
    replans: int
    goal_progress: dict[Atom, bool]
    reason: str
    messages: list[str] = field(default_factory=list)
    plans: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able form (goal atoms written in BDDL spelling)."""
        return {"success": self.success, "steps": self.steps,
                "calls": [c.to_dict() for c in self.calls], "replans": self.replans,
                "goal_progress": {format_atom(a): bool(v) for a, v in self.goal_progress.items()},
                "reason": self.reason, "messages": list(self.messages), "plans": self.plans}


def termination_holds(spec: SkillSpec, args: Sequence[str], state: frozenset[Atom],
                      entities: Mapping[str, frozenset[str]] | None = None) -> bool:
    """The skill's termination test on a predicate ``state``.

    True when every (grounded) termination predicate holds — ``not`` ones must not hold, ``*``
    matches any entity — and, for ``needs_open_gripper_at_end`` skills, ``(handempty)`` holds.

    Raises:
        ValueError: if ``args`` does not match the spec's parameters.
    """
    if len(args) != len(spec.parameters):
        raise ValueError(f"{spec.name} takes {len(spec.parameters)} argument(s), got {len(args)}")
    full = with_derived(state, dict(entities)) if entities else state
    binding = {p.name: a for p, a in zip(spec.parameters, args)}
    for text in spec.termination:
        positive, tmpl = parse_predicate(text)
        pat = ground(tmpl, binding)
        present = pat in full if "*" not in pat else any(matches(pat, a) for a in full)
        if present != positive:
            return False
    return not spec.needs_open_gripper_at_end or ("handempty",) in full


def effect_mismatch(spec: SkillSpec, args: Sequence[str], state: frozenset[Atom]
                    ) -> tuple[list[Atom], list[Atom]]:
    """Compare an observed predicate ``state`` with a successful call's expected effects.

    Returns:
        ``(missing_adds, remaining_deletes)``: add-effect atoms that do not hold, and atoms that
        still hold although a delete effect (``*`` wildcards expanded against ``state``) removes
        them. Atoms the call's own add effects re-add are not counted as remaining.

    Raises:
        ValueError: if ``args`` does not match the spec's parameters.
    """
    if len(args) != len(spec.parameters):
        raise ValueError(f"{spec.name} takes {len(spec.parameters)} argument(s), got {len(args)}")
    g = ground_call(spec, args)
    missing = [a for a in g.add if a not in state]
    remaining = sorted(a for a in state if a not in g.add
                       and any(matches(p, a) for p in g.delete))
    return missing, remaining


def plan_kernels(calls: Sequence[SkillCall], goal: Iterable[Atom],
                 specs: Mapping[str, SkillSpec]) -> list[frozenset[Atom]]:
    """Triangle-table kernels of a plan (Fikes, Hart & Nilsson, 1972), positive atoms only.

    STRIPS regression of the goal through the calls, last to first:
    ``kernels[n] = goal``, ``kernels[i] = (kernels[i+1] - add(calls[i])) | pre(calls[i])``.
    ``kernels[i]`` is what must hold before ``calls[i]`` for ``calls[i:]`` to reach the goal:
    the call's own positive preconditions (derived ``accessible`` atoms included), later calls'
    preconditions no call in between adds, and goal atoms no remaining call adds (those already
    achieved). Precondition patterns with a ``*`` wildcard and negative preconditions are left
    out (the executor checks them on the next call with :func:`missing_preconditions`).

    Returns:
        ``len(calls) + 1`` frozensets of ground atoms.

    Raises:
        KeyError: a call's skill is not in ``specs``. ValueError: a call with the wrong number of
            arguments.
    """
    need = {tuple(a) for a in goal}
    out = [frozenset(need)]
    for call in reversed(list(calls)):
        g = ground_call(specs[call.skill], call.args)
        need = {a for a in need if a not in g.add}
        need.update(a for a in g.pre_pos if "*" not in a)
        out.append(frozenset(need))
    return out[::-1]


def expected_state_lost(kernel: Iterable[Atom], expected: frozenset[Atom],
                        observed: frozenset[Atom], entities: Mapping[str, frozenset[str]]
                        ) -> list[Atom]:
    """Atoms the rest of the plan needs that the plan expected to hold now but are not observed.

    Args:
        kernel: atoms the remaining calls need (``plan_kernels(...)[i]``).
        expected: the plan's expected state before call ``i`` (``Plan.states[i]``); derived
            ``accessible`` atoms are recomputed for it.
        observed: the world's predicate state now (derived atoms are recomputed).
        entities: entity name -> affordance tags.

    Returns:
        The lost atoms, sorted: in ``kernel``, in the expected state, not observed. A lost
        derived ``(Accessible x)`` brings the lost ``(Open y)`` it was derived from (``y`` = ``x``
        or the fixture owning the region ``x``), so a drawer pushed shut is named as such.
    """
    exp = derived_state(expected, entities)
    obs = derived_state(observed, entities)
    lost = {a for a in kernel if a in exp and a not in obs}
    for a in [a for a in lost if a[0] == "accessible" and len(a) == 2]:
        lost.update(o for o in exp if o[0] == "open" and len(o) == 2 and o not in obs
                    and (o[1] == a[1] or a[1].startswith(o[1] + "_")))
    return sorted(lost)


def _name_lost(lost: Sequence[Atom], goal: frozenset[Atom]) -> str:
    return ", ".join(format_atom(a) + (" (goal atom achieved earlier)" if a in goal else "")
                     for a in lost)


def _is_policy(obj: Any) -> bool:
    return callable(getattr(obj, "act", None)) and callable(getattr(obj, "reset", None))


class Executor:
    """Plans, runs skill calls closed-loop, checks termination and time limits, replans.

    Args:
        world: the robot in its task (``sim.world.SimTaskWorld`` or a pose-based hardware world).
        skills: the :class:`SkillSet` — policies and their contracts. Termination tests, time
            limits, plan validation and effect checks all read these contracts (a learned
            library's ``skill.yaml``), never a compiled-in table.
        planner: a :class:`Planner` (``plan(problem) -> Plan``); default: a
            :class:`SymbolicPlanner` over ``skills.specs``.
        max_replans: re-plans allowed after the first plan (bounded retries).
        max_steps: episode control-step budget; ``None`` = the sum of the first plan's per-call time
            limits (in steps) times ``max_replans + 1``.
        on_step: optional ``on_step(step, obs, action)`` callback (e.g. to grab video frames).
        on_call: optional ``on_call(event, call, record)`` hook at the start and end of every
            skill call (:data:`CallCallback`); :attr:`current_call` names the running call.
        recorder: optional :class:`EpisodeRecording`-like object for demonstration collection.
        retract: a :class:`~robot_skills.execution.retract.RetractConfig` to return the empty
            hand to the episode's start pose (the first observation of :meth:`run`) before each
            call (:mod:`robot_skills.execution.retract`), or None (default) to start each call
            where the previous one ended. Its steps count against ``max_steps``; they belong to
            no call.
        stop_at_goal: end a call as soon as the task's goal holds (``"interrupted"``, counted
            as done), the default for running tasks; False lets every call run to its own
            termination test (a placement releases and backs off even when the goal already
            holds with the object in the hand), which demonstrations of whole skills need.

    Raises:
        ValueError: if ``max_replans < 0`` or ``max_steps < 1``. TypeError: if ``skills`` is not a
            :class:`SkillSet`.
    """

    def __init__(
        self,
        world: TaskWorld,
        skills: SkillSet,
        planner: Planner | None = None,
        *,
        max_replans: int = 2,
        max_steps: int | None = None,
        on_step: StepCallback | None = None,
        recorder: Any | None = None,
        on_call: CallCallback | None = None,
        retract: RetractConfig | None = None,
        stop_at_goal: bool = True,
    ) -> None:
        if not isinstance(skills, SkillSet):
            raise TypeError(f"skills must be a SkillSet (policies + contracts), got "
                            f"{type(skills).__name__}")
        if max_replans < 0:
            raise ValueError(f"max_replans must be >= 0, got {max_replans}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.world = world
        self.skills = dict(skills.policies)
        self.specs: dict[str, SkillSpec] = dict(skills.specs)
        self.planner = planner if planner is not None else SymbolicPlanner(self.specs)
        self.max_replans = max_replans
        self.max_steps = max_steps
        self.on_step = on_step
        self.on_call = on_call
        self.recorder = recorder
        self.retract = retract
        self.retract_steps = 0
        self.stop_at_goal = bool(stop_at_goal)
        """Control steps the last :meth:`run` spent retracting between calls."""
        self.current_call: SkillCall | None = None
        """The skill call running now (None between calls and outside :meth:`run`)."""
        self._instances: dict[str, SkillPolicy] = {}
        self._goal: frozenset[Atom] | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def control_period(self) -> float:
        """Seconds per control step, from ``world.robot.control_period``."""
        dt = float(self.world.robot.control_period)
        if not dt > 0:
            raise ValueError(f"robot control_period must be > 0, got {dt}")
        return dt

    def time_limit_steps(self, skill: str) -> int:
        """``ceil(time_limit_s / control_period)`` for ``skill``.

        Raises:
            KeyError: if the skill has no spec.
        """
        return max(1, math.ceil(self.specs[skill].time_limit_s / self.control_period - 1e-9))

    def _policy(self, skill: str) -> SkillPolicy:
        if skill not in self._instances:
            entry = self.skills[skill]
            policy = entry if _is_policy(entry) else entry()
            if not _is_policy(policy):
                raise TypeError(f"skills[{skill!r}] is neither a SkillPolicy nor a factory of one")
            self._instances[skill] = policy
        return self._instances[skill]

    def _success(self) -> bool:
        """``world.success()``, or — for an explicit goal passed to :meth:`run` — all its atoms."""
        if self._goal is None:
            return bool(self.world.success())
        full = with_derived(self.world.predicate_state(), self.world.symbolic_problem().entities)
        return self._goal <= full

    def _progress(self) -> dict[Atom, bool]:
        if self._goal is None:
            return dict(self.world.goal_progress())
        full = with_derived(self.world.predicate_state(), self.world.symbolic_problem().entities)
        return {g: g in full for g in sorted(self._goal)}

    def _problem(self, goal: frozenset[Atom] | None) -> SymbolicProblem:
        p = self.world.symbolic_problem()
        return p if goal is None else SymbolicProblem(p.entities, p.state, goal)

    # ------------------------------------------------------------------ main loop
    def run(self, goal: SymbolicProblem | Iterable[Atom] | None = None) -> ExecutionResult:
        """Run one episode from the world's current state.

        Args:
            goal: ``None`` (the task's goal from ``world.symbolic_problem()``), goal atoms, or a
                full :class:`SymbolicProblem` (its goal is used; the state is always observed).

        Returns:
            An :class:`ExecutionResult`. Skill failures never raise; they are recorded.
        """
        goal_atoms: frozenset[Atom] | None
        if goal is None:
            goal_atoms = None
        elif isinstance(goal, SymbolicProblem):
            goal_atoms = frozenset(goal.goal)
        else:
            goal_atoms = frozenset(tuple(a) for a in goal)
        self._goal = goal_atoms
        self._instances = {}
        self.current_call = None
        dt = self.control_period
        records: list[CallRecord] = []
        messages: list[str] = []
        plans: list[list[str]] = []
        steps, replans = 0, 0
        budget = self.max_steps

        def finish(why: str) -> ExecutionResult:
            success = bool(self._success())
            return ExecutionResult(success, steps, records, replans,
                                   self._progress(),
                                   "success" if success else why, messages, plans)

        if self._success():
            return finish("success")
        obs = self.world.robot.observe()
        home = (HomeRetract(obs.ee_pos, obs.ee_quat, self.retract) if self.retract is not None
                else None)
        self.retract_steps = 0
        while True:
            problem = self._problem(goal_atoms)
            try:
                plan: Plan = self.planner.plan(problem)
            except NoPlanError as e:
                messages.append(f"no plan: {e}")
                return finish("no_plan")
            plans.append([str(c) for c in plan.calls])
            issues = validate_plan(plan, problem, self.specs)
            if issues:
                messages.append(f"plan {plans[-1]} is invalid for this library: "
                                + "; ".join(str(i) for i in issues))
                try:
                    plan = repair_plan(plan, problem, self.specs, planner=self.planner)
                except PlanValidationError as e:
                    messages.append(f"refused: {e}")
                    return finish("invalid_plan")
                plans.append([str(c) for c in plan.calls])
                messages.append(f"repaired to {plans[-1]}")
            if budget is None:
                budget = max(1, sum(self.time_limit_steps(c.skill) for c in plan.calls
                                    if c.skill in self.specs) * (self.max_replans + 1))
            goal_set = frozenset(problem.goal)
            kernels = plan_kernels(plan.calls, goal_set, self.specs)
            expected = (plan.states if len(plan.states) == len(plan.calls) + 1
                        else simulate_plan(plan.calls, problem, self.specs))
            failure = ""
            for i, call in enumerate(plan.calls):
                # the state after call i-1 and its "end" hook: compare with the plan's
                # expected state on what the rest of the plan needs
                state = self.world.predicate_state()
                contradiction = self._contradiction(call, state, problem.entities)
                lost = expected_state_lost(kernels[i], expected[i], state, problem.entities)
                if contradiction or lost:
                    where = f"after {plan.calls[i - 1]}" if i else f"before {call}"
                    parts = [f"{where}: the world lost what the plan expected to hold: "
                             + _name_lost(lost, goal_set)] if lost else []
                    if contradiction:
                        parts.append(f"before {call}: world contradicts the plan "
                                     f"({contradiction})")
                    failure = "; ".join(parts)
                    break
                if home is not None:
                    empty = ("handempty",) in state
                    if empty or home.config.when_holding:
                        steps, obs = self._retract(home, obs, steps, budget, not empty)
                start = steps
                self.current_call = call
                if self.on_call is not None:
                    self.on_call("start", call, None)
                offsets = self._arg_offsets(call, obs) if self.recorder is not None else ()
                sizes = call_arg_sizes(self.world, call.args) if self.recorder is not None else ()
                outcome, msg, steps, obs = self._run_call(call, obs, steps, budget, problem, dt)
                unmet: tuple[str, ...] = ()
                if outcome == "success":
                    full = with_derived(self.world.predicate_state(), problem.entities)
                    missing, remaining = effect_mismatch(self.specs[call.skill], call.args, full)
                    unmet = tuple([format_atom(a) for a in missing]
                                  + [f"not {format_atom(a)}" for a in remaining])
                    if missing:
                        outcome = "effects_missing"
                        msg = "expected effect(s) not observed: " + ", ".join(unmet)
                    elif remaining:
                        messages.append(f"{call}: delete effect(s) still observed: "
                                        + ", ".join(unmet))
                records.append(CallRecord(call.skill, call.args, start, steps, outcome, msg,
                                          unmet))
                self.current_call = None
                if self.recorder is not None:
                    # a call cut short because the task's goal now holds did its job too (e.g.
                    # place_in: the object is In the drawer before the gripper has opened)
                    done = outcome == "success" or (outcome == "interrupted" and self._success())
                    self.recorder.add_segment(SkillSegment(start, steps, call.skill, call.args,
                                                           done, offsets, sizes))
                if self.on_call is not None:
                    self.on_call("end", call, records[-1])
                if outcome == "interrupted":
                    if self._success():
                        return finish("success")
                    messages.append(f"{call}: {msg}")
                    return finish("budget_exhausted")
                if outcome != "success":
                    failure = f"{call}: {outcome}" + (f" ({msg})" if msg else "")
                    if outcome in ("timeout", "error"):
                        lost = expected_state_lost(kernels[i], expected[i],
                                                   self.world.predicate_state(), problem.entities)
                        if lost:
                            failure += "; lost while it ran: " + _name_lost(lost, goal_set)
                    break
                if self._success():
                    return finish("success")
            else:
                if self._success():
                    return finish("success")
                unmet_goal = [format_atom(g) for g, ok in self._progress().items() if not ok]
                failure = (f"plan {plans[-1]} finished but the goal does not hold (not observed: "
                           f"{', '.join(unmet_goal)})")
            messages.append(failure)
            if steps >= budget:
                messages.append(f"episode step budget ({budget}) spent")
                return finish("budget_exhausted")
            if replans >= self.max_replans:
                messages.append(f"replan budget ({self.max_replans}) spent")
                return finish("replans_exhausted")
            replans += 1
            messages.append(f"replanning from the observed state (replan {replans}/"
                            f"{self.max_replans})")

    def _retract(self, home: HomeRetract, obs: Observation, steps: int, budget: int,
                 holding: bool) -> tuple[int, Observation]:
        """Step ``home``'s retract until it is reached, its step cap, or the budget."""
        for _ in range(home.config.max_steps):
            if steps >= budget or home.reached(obs):
                break
            action = self.world.robot.act(home.act(obs, holding))
            if self.recorder is not None:  # recorded steps stay aligned with segment indices
                self.recorder.add_step(obs, action)
            obs = self.world.robot.observe()
            steps += 1
            self.retract_steps += 1
            if self.on_step is not None:
                self.on_step(steps, obs, action)
        return steps, obs

    def _arg_offsets(self, call: SkillCall, obs: Observation
                     ) -> tuple[tuple[float, float, float] | None, ...]:
        """The call's argument offsets (:func:`~robot_skills.perception.placement.
        call_arg_offsets`) for its recorded segment, from the observation its policy starts
        with; ``()`` when the world has no geometry or the target's pose is not observed (the
        policy then fails the call itself, naming the entity)."""
        try:
            return call_arg_offsets(self.world, call.skill, call.args, obs)
        except KeyError:
            return ()

    def _contradiction(self, call: SkillCall, state: frozenset[Atom],
                       entities: Mapping[str, frozenset[str]]) -> str:
        spec = self.specs.get(call.skill)
        if spec is None:
            return f"skill {call.skill!r} has no spec"
        missing = missing_preconditions(ground_call(spec, call.args), state, entities)
        return "missing " + ", ".join(missing) if missing else ""

    def _run_call(self, call: SkillCall, obs: Observation, steps: int, budget: int,
                  problem: SymbolicProblem, dt: float) -> tuple[str, str, int, Observation]:
        spec = self.specs[call.skill]
        if call.skill not in self.skills:
            return "error", f"no policy for skill {call.skill!r} in this library", steps, obs
        limit = self.time_limit_steps(call.skill)
        try:
            policy = self._policy(call.skill)
            policy.reset(call.args, self.world)
        except Exception as e:  # a broken skill must not kill the episode
            return "error", f"reset failed: {type(e).__name__}: {e}", steps, obs
        for _ in range(limit):
            if steps >= budget:
                return "interrupted", f"episode step budget ({budget}) spent", steps, obs
            try:
                action = policy.act(obs)
                applied = self.world.robot.act(action)
                new_obs = self.world.robot.observe()
            except EpisodeInvalidError:
                raise  # not the skill's failure: the whole episode is void
            except Exception as e:
                return "error", f"{type(e).__name__}: {e}", steps, obs
            action = applied  # what reached the controller (after clipping / safety)
            if self.recorder is not None:
                self.recorder.add_step(obs, action)
            obs = new_obs
            steps += 1
            if self.on_step is not None:
                self.on_step(steps, obs, action)
            state = self.world.predicate_state()
            if termination_holds(spec, call.args, state, problem.entities):
                return "success", "", steps, obs
            if self.stop_at_goal and self._success():
                return "interrupted", "goal reached", steps, obs
        return "timeout", f"time limit {spec.time_limit_s:g} s ({limit} steps) exceeded", steps, obs


def run_task_policy(
    world: TaskWorld,
    policy: SkillPolicy,
    max_steps: int,
    on_step: StepCallback | None = None,
    recorder: Any | None = None,
    name: str = "task",
) -> ExecutionResult:
    """Monolithic baseline: one policy runs the whole episode, no planner.

    ``policy.reset((), world)`` then ``act`` every step until ``world.success()`` or ``max_steps``.
    The result has one :class:`CallRecord` named ``name``.

    Raises:
        ValueError: if ``max_steps < 1``.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    steps, messages, outcome = 0, [], "timeout"
    obs = world.robot.observe()
    try:
        policy.reset((), world)
        while steps < max_steps and not world.success():
            action = policy.act(obs)
            action = world.robot.act(action)  # the command actually applied
            new_obs = world.robot.observe()
            if recorder is not None:
                recorder.add_step(obs, action)
            obs = new_obs
            steps += 1
            if on_step is not None:
                on_step(steps, obs, action)
    except Exception as e:
        outcome = "error"
        messages.append(f"{type(e).__name__}: {e}")
    success = bool(world.success())
    if success:
        outcome = "success"
    rec = CallRecord(name, (), 0, steps, outcome, messages[0] if messages else "")
    if recorder is not None:
        recorder.add_segment(SkillSegment(0, steps, name, (), success))
    reason = "success" if success else ("error" if outcome == "error" else "budget_exhausted")
    return ExecutionResult(success, steps, [rec], 0, dict(world.goal_progress()), reason,
                           messages, [])
