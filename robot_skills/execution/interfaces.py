"""The seams the executor and the benchmark runner work against (structural typing, no sim imports).

* :class:`TaskWorld` — a robot inside a task that reports the task's predicate state:
  ``sim.world.SimTaskWorld`` (from MuJoCo contacts) and
  :class:`robot_skills.perception.PoseTaskWorld` (from object poses, for a real arm).
* :class:`SkillPolicy` — a closed-loop skill: scripted experts (``sim.experts``) and learned skills
  (:mod:`robot_skills.policies.learned_skill`) alike.
* :class:`SkillSet` — the policies of a library *and their contracts*: what the executor runs and
  the only operators the planner may plan with.
* :class:`Planner` — problem -> plan (:class:`robot_skills.planning.symbolic.SymbolicPlanner`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from robot_skills.domain.predicates import Atom, SymbolicProblem
from robot_skills.domain.verbs import SkillSpec
from robot_skills.planning.symbolic import Plan
from robot_skills.robot import Action, Observation, Robot


@runtime_checkable
class TaskWorld(Protocol):
    """A robot inside a task: it can act, and it can report the task's predicate state.

    On hardware the predicate state comes from perception; in simulation from MuJoCo state.
    """

    robot: Robot

    def symbolic_problem(self) -> SymbolicProblem:
        """Entities with affordance tags, the current predicate state, and the task's goal atoms."""

    def predicate_state(self) -> frozenset[Atom]:
        """Every atom that holds now (task-file predicates plus ``holding``/``handempty``)."""

    def goal_progress(self) -> dict[Atom, bool]:
        """Each goal atom and whether it holds now (per-subgoal progress)."""

    def success(self) -> bool:
        """True when every goal atom holds."""


@runtime_checkable
class SkillPolicy(Protocol):
    """A closed-loop skill: call :meth:`reset` with the arguments once, then :meth:`act` per step."""

    name: str

    def reset(self, args: Sequence[str], world: TaskWorld) -> None:
        """Start a new call with entity ``args`` (in the skill's parameter order)."""

    def act(self, obs: Observation) -> Action:
        """Return the action for this control step (base frame, see :class:`Action`)."""


@runtime_checkable
class Planner(Protocol):
    """Turns a problem (entities, observed predicate state, goal atoms) into a plan of skill calls.

    A planner is built over a library's contracts (``planner_factory(specs)``), so it can only
    propose calls the library can run; the executor still validates every plan against those
    contracts before the arm moves.
    """

    def plan(self, problem: SymbolicProblem) -> Plan:
        """Return a :class:`Plan` reaching ``problem.goal`` from ``problem.state``.

        Raises:
            robot_skills.planning.symbolic.NoPlanError: when no plan exists.
        """


PlannerFactory = Callable[[Mapping[str, SkillSpec]], Planner]
"""``factory(specs) -> Planner``: builds a planner whose operators are the given contracts."""


@dataclass(frozen=True)
class SkillSet:
    """Skill policies keyed by name, each with its contract.

    Attributes:
        policies: name -> a :class:`SkillPolicy`, or a zero-argument factory returning one
            (called once per episode, on first use).
        specs: name -> the skill's contract (:class:`SkillSpec`: typed parameters,
            preconditions, effects, termination, time limit), read from ``skill.yaml`` for a
            learned library.

    Raises:
        ValueError: if a policy has no contract or a contract has no policy.
    """

    policies: Mapping[str, SkillPolicy | Callable[[], SkillPolicy]]
    specs: Mapping[str, SkillSpec]

    def __post_init__(self) -> None:
        no_spec = sorted(set(self.policies) - set(self.specs))
        no_policy = sorted(set(self.specs) - set(self.policies))
        if no_spec or no_policy:
            raise ValueError(f"skill set mismatch: policies without a contract {no_spec}, "
                             f"contracts without a policy {no_policy}")
        for name, spec in self.specs.items():
            if spec.name != name:
                raise ValueError(f"skill {name!r} carries the contract of {spec.name!r}")

    def __len__(self) -> int:
        return len(self.policies)

    def names(self) -> list[str]:
        """Skill names, sorted."""
        return sorted(self.policies)
