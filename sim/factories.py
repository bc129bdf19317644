"""Top-level, picklable factories the benchmark runner calls in its worker processes.

The runner (:mod:`robot_skills.evaluation.runner`) never imports ``sim``; the CLI hands it these
as ``(module, name, kwargs)`` specs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot_skills.evaluation.perturbations import (
    PerturbationSpec,
    apply_perturbation,
    perturbation_rng,
)


def supported_categories() -> dict[str, frozenset[str]]:
    """Category -> affordance tags of every proxy asset (what perturbations may swap or add)."""
    from sim.assets import ASSETS

    return {c: frozenset(a.tags) for c, a in ASSETS.items() if a.kind == "object"}


def make_world(task_path: str | Path, seed: int, perturbation: PerturbationSpec | None = None,
               cameras: tuple[str, ...] = ()) -> Any:
    """A :class:`~sim.sim_robot.SimRobot` for ``task_path``, with ``perturbation`` applied to the
    task file first (seeded per task and episode). The runner resets it with ``seed``."""
    from robot_skills.tasks.bddl import load_bddl
    from sim.sim_robot import SimRobot

    task = load_bddl(task_path)
    if perturbation is not None:
        rng = perturbation_rng(perturbation, Path(task_path).stem, seed)
        # clearances sized for the proxies: a distractor up to 0.12 m long beside a 0.15 m plate,
        # and the cabinet/stove footprints (~0.2 m) around the regions they stand on
        task = apply_perturbation(task, perturbation, rng, supported_categories(),
                                  object_clearance_m=0.10, fixture_clearance_m=0.20)
    return SimRobot(task, cameras=cameras)


def expert_skills(task_path: str | Path) -> dict[str, Any]:
    """The scripted experts, one per verb (the same for every task)."""
    from sim.experts import expert_skills as _experts

    return _experts()


def learned_skills(task_path: str | Path, library: str,
                   ensemble_m: float | None = 0.01) -> dict[str, Any]:
    """Every skill of the library at ``library``, loaded and sha256-verified, keyed by verb;
    ``ensemble_m`` is ACT's temporal-ensembling coefficient (None = open-loop chunks)."""
    from robot_skills.skills.library import SkillLibrary

    lib = SkillLibrary(library, ensemble_m=ensemble_m)
    return {name: lib.get(name) for name in lib.list()}


def task_conditioning(task_path: str | Path) -> tuple[str, ...]:
    """Entities a monolithic task policy is conditioned on: the task's ``obj_of_interest``
    (at most :data:`~robot_skills.domain.verbs.MAX_SKILL_ARGS`)."""
    from robot_skills.domain.verbs import MAX_SKILL_ARGS
    from robot_skills.tasks.bddl import load_bddl

    return tuple(load_bddl(task_path).obj_of_interest[:MAX_SKILL_ARGS])


class _BoundTaskPolicy:
    """A whole-task policy with its conditioning entities bound (the runner resets with ``()``)."""

    def __init__(self, policy: Any, args: tuple[str, ...]) -> None:
        self.policy, self.args, self.name = policy, args, policy.name

    def reset(self, args: Any, world: Any) -> None:
        self.policy.reset(self.args, world)

    def act(self, obs: Any) -> Any:
        return self.policy.act(obs)


def task_policy(task_path: str | Path, library: str) -> Any:
    """The monolithic baseline's policy for ``task_path``: the library entry named by its stem,
    conditioned on the task's objects of interest."""
    from robot_skills.skills.library import SkillLibrary

    policy = SkillLibrary(library).get(Path(task_path).stem)
    return _BoundTaskPolicy(policy, task_conditioning(task_path))
