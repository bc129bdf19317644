"""Plan validation against the skill library, and validator-guided repair.

Every plan — from the symbolic, language or VLM planner — is checked before it runs, in the spirit
of VAL (Howey, Long & Fox, 2004) for PDDL: each call must name a skill of the library with the right
number of arguments, each argument must be a known entity carrying the parameter's tag, each call's
preconditions must hold in the state the previous calls lead to, and the goal must hold at the end.
The messages are written for people *and* for a language model asked to fix its plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from robot_skills.domain.predicates import Atom, SymbolicProblem, format_atom
from robot_skills.domain.verbs import SKILL_SPECS, SkillSpec
from robot_skills.planning.symbolic import (
    NoPlanError,
    Plan,
    SkillCall,
    apply_effects,
    derived_state,
    ground_call,
    missing_preconditions,
)

__all__ = ["PlanIssue", "PlanValidationError", "validate_plan", "validate_plan_strict",
           "repair_plan"]


@dataclass(frozen=True)
class PlanIssue:
    """One problem found in a plan.

    Attributes:
        step: index of the offending call, or ``None`` for the end-of-plan goal check.
        kind: ``"unknown_skill" | "arity" | "unknown_entity" | "type" | "precondition" | "goal"``.
        message: a one-line explanation naming the call and what is wrong.
        missing: atoms that should hold but do not (precondition and goal issues).
    """

    step: int | None
    kind: str
    message: str
    missing: tuple[Atom, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        where = "end of plan" if self.step is None else f"step {self.step}"
        return f"{where}: {self.message}"


class PlanValidationError(ValueError):
    """A plan is invalid (and could not be repaired). ``issues`` lists what the validator found."""

    def __init__(self, message: str, issues: Sequence[PlanIssue] = ()) -> None:
        super().__init__(message)
        self.issues: list[PlanIssue] = list(issues)


def _calls(plan: Plan | Iterable[SkillCall | str]) -> list[SkillCall]:
    items = plan.calls if isinstance(plan, Plan) else list(plan)
    return [SkillCall.coerce(c) for c in items]


def validate_plan(
    plan: Plan | Iterable[SkillCall | str],
    problem: SymbolicProblem,
    specs: Mapping[str, SkillSpec] = SKILL_SPECS,
) -> list[PlanIssue]:
    """Check ``plan`` against the skill library and the problem; return every issue found.

    Calls with structural errors (unknown skill, wrong arity, unknown entity, tag mismatch) are
    reported and not applied; a call whose preconditions fail is reported and then applied
    optimistically, so later steps are checked as if it had succeeded.

    Args:
        plan: a :class:`Plan`, or calls as :class:`SkillCall`/``"verb(a, b)"`` strings.
        problem: entities, the starting state and the goal.
        specs: the library's skill contracts.

    Returns:
        Issues in plan order (the goal issue last); empty when the plan is valid.

    Raises:
        ValueError: if a call cannot even be parsed.
    """
    calls = _calls(plan)
    entities = problem.entities
    state = frozenset(a for a in problem.state if a[0] != "accessible")
    issues: list[PlanIssue] = []
    for k, c in enumerate(calls):
        spec = specs.get(c.skill)
        if spec is None:
            issues.append(PlanIssue(k, "unknown_skill",
                                    f"{c}: unknown skill '{c.skill}'; the library has "
                                    f"{sorted(specs)}"))
            continue
        if len(c.args) != len(spec.parameters):
            sig = ", ".join(f"{p.name}: {p.type}" for p in spec.parameters)
            issues.append(PlanIssue(k, "arity", f"{c}: {spec.name}({sig}) takes "
                                    f"{len(spec.parameters)} argument(s), got {len(c.args)}"))
            continue
        structural = False
        for p, a in zip(spec.parameters, c.args):
            if a not in entities:
                issues.append(PlanIssue(k, "unknown_entity",
                                        f"{c}: '{a}' is not an entity of this task"))
                structural = True
            elif p.type not in entities[a]:
                tags = sorted(entities[a]) or ["no tags"]
                issues.append(PlanIssue(k, "type", f"{c}: parameter {p.name} needs a `{p.type}` "
                                        f"entity, but {a} is {', '.join(tags)}"))
                structural = True
        if len(set(c.args)) != len(c.args):
            issues.append(PlanIssue(k, "type", f"{c}: arguments must be distinct entities"))
            structural = True
        if structural:
            continue
        g = ground_call(spec, c.args)
        missing = missing_preconditions(g, state, entities)
        if missing:
            full = derived_state(state, entities)
            miss_atoms = tuple(a for a in g.pre_pos if a not in full)
            issues.append(PlanIssue(k, "precondition",
                                    f"{c}: precondition(s) unmet: {', '.join(missing)}",
                                    miss_atoms))
        state = apply_effects(g, state)
    full = derived_state(state, entities)
    unmet = tuple(sorted(a for a in problem.goal if a not in full))
    if unmet:
        issues.append(PlanIssue(None, "goal", "goal not reached at the end of the plan: "
                                + ", ".join(format_atom(a) for a in unmet), unmet))
    return issues


def validate_plan_strict(
    plan: Plan | Iterable[SkillCall | str],
    problem: SymbolicProblem,
    specs: Mapping[str, SkillSpec] = SKILL_SPECS,
) -> Plan:
    """Like :func:`validate_plan` but raise on any issue; return the plan with expected states.

    Raises:
        PlanValidationError: listing every issue.
    """
    issues = validate_plan(plan, problem, specs)
    if issues:
        raise PlanValidationError(
            "invalid plan:\n" + "\n".join(f"  {i}" for i in issues), issues)
    return _with_states(_calls(plan), problem, specs)


def _with_states(calls: list[SkillCall], problem: SymbolicProblem,
                 specs: Mapping[str, SkillSpec] = SKILL_SPECS) -> Plan:
    state = frozenset(a for a in problem.state if a[0] != "accessible")
    states = [state]
    for c in calls:
        state = apply_effects(ground_call(specs[c.skill], c.args), state)
        states.append(state)
    return Plan(list(calls), states, frozenset(problem.goal))


def repair_plan(
    plan: Plan | Iterable[SkillCall | str],
    problem: SymbolicProblem,
    specs: Mapping[str, SkillSpec] = SKILL_SPECS,
    planner=None,
) -> Plan:
    """Keep the valid prefix of ``plan`` and re-plan the rest from the first failing step.

    The prefix is every call before the first issue (the whole plan if only the goal is unmet);
    its expected end state becomes the start of a new search with ``planner`` (a
    :class:`~robot_skills.planning.symbolic.SymbolicPlanner` over ``specs`` by default).

    Returns:
        A valid :class:`Plan` (``plan`` itself, with states, when it is already valid).

    Raises:
        PlanValidationError: with the validator's messages when no repair exists.
    """
    from robot_skills.planning.symbolic import SymbolicPlanner

    calls = _calls(plan)
    issues = validate_plan(calls, problem, specs)
    if not issues:
        return _with_states(calls, problem, specs)
    first = issues[0].step
    prefix = calls if first is None else calls[:first]
    prefix_plan = _with_states(prefix, problem, specs)
    planner = planner if planner is not None else SymbolicPlanner(specs)
    sub = SymbolicProblem(problem.entities, prefix_plan.states[-1], frozenset(problem.goal))
    try:
        rest = planner.plan(sub)
    except NoPlanError as e:
        raise PlanValidationError(
            "invalid plan, and no repair found:\n" + "\n".join(f"  {i}" for i in issues)
            + f"\nre-planning from step {len(prefix)} failed: {e}", issues) from e
    repaired = prefix + list(rest.calls)
    return validate_plan_strict(repaired, problem, specs)
