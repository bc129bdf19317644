"""Protocols the executor and benchmark runner work against (structural typing, no imports of sim).

``sim.sim_robot.SimRobot`` implements :class:`TaskWorld`; scripted experts
(``sim.experts``) and learned skills (:mod:`robot_skills.policies.learned_skill`) implement
:class:`SkillPolicy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from robot_skills.domain.predicates import Atom, SymbolicProblem
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
