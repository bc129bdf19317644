"""What Hydra builds for the simulator side: the world factory and the scripted-expert skill set.

The core never imports this module; configs name these classes (``_target_``) and the CLI builds
them with ``hydra.utils.instantiate``. Instances are small, picklable dataclasses, so the worker
pool can ship them to ``spawn`` processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.evaluation.perturbations import (
    PerturbationSpec,
    apply_perturbation,
    perturbation_rng,
)
from robot_skills.execution.interfaces import SkillSet
from robot_skills.robot import ActionLimits
from robot_skills.robots import panda
from robot_skills.tasks.bddl import load_bddl


def supported_categories() -> dict[str, frozenset[str]]:
    """Category -> affordance tags of every object proxy asset (what perturbations may swap/add)."""
    from sim.assets import ASSETS

    return {c: frozenset(a.tags) for c, a in ASSETS.items() if a.kind == "object"}


@dataclass(frozen=True)
class SimWorldFactory:
    """Builds a :class:`~sim.world.SimTaskWorld` per episode (the ``world`` config group).

    Args:
        robot: the ``robot`` config: ``name`` (only ``panda`` is built in simulation),
            ``control_hz`` (must match the simulator's 20 Hz), ``physics_timestep`` (s, must match
            :data:`robot_skills.robots.panda.PHYSICS_TIMESTEP`), ``max_delta_pos`` (m per step)
            and ``max_delta_rot`` (rad per step), the action limits.
        cameras: scene cameras rendered into every observation (``()`` = state only).
        image_size: ``(height, width)`` of camera images, pixels.
        object_clearance_m / fixture_clearance_m: free space a perturbation keeps around objects
            and fixtures when it moves or adds them (sized for the proxies: a distractor up to
            0.12 m long beside a 0.15 m plate; cabinet/stove footprints ~0.2 m).

    Raises:
        ValueError: on a robot the simulator cannot build or rates it does not run at.
    """

    robot: Mapping[str, Any] = field(default_factory=lambda: {"name": "panda"})
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (128, 128)
    object_clearance_m: float = 0.10
    fixture_clearance_m: float = 0.20

    def __post_init__(self) -> None:
        r = dict(self.robot)
        object.__setattr__(self, "robot", r)
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        if r.get("name", "panda") != "panda":
            raise ValueError(f"the simulator builds robot 'panda', got robot.name={r['name']!r}")
        hz = float(r.get("control_hz", panda.CONTROL_HZ))
        dt = float(r.get("physics_timestep", panda.PHYSICS_TIMESTEP))
        if hz != panda.CONTROL_HZ or dt != panda.PHYSICS_TIMESTEP:
            raise ValueError(f"the simulated Panda runs at {panda.CONTROL_HZ:g} Hz over "
                             f"{panda.PHYSICS_TIMESTEP:g} s physics steps; robot config asks "
                             f"control_hz={hz:g}, physics_timestep={dt:g}")
        self.action_limits()  # validates the limits now, not in a worker

    def action_limits(self) -> ActionLimits:
        """The robot config's per-step action bounds.

        Raises:
            ValueError: unless both limits are finite and > 0.
        """
        p = float(self.robot.get("max_delta_pos", ActionLimits.max_delta_pos))
        r = float(self.robot.get("max_delta_rot", ActionLimits.max_delta_rot))
        if not (0 < p < float("inf") and 0 < r < float("inf")):
            raise ValueError(f"robot.max_delta_pos/max_delta_rot must be finite and > 0, "
                             f"got {p}, {r}")
        return ActionLimits(p, r)

    def supported_categories(self) -> frozenset[str]:
        """Object/fixture categories this world can build (the proxy assets)."""
        from sim.assets import ASSETS

        return frozenset(ASSETS)

    def __call__(self, task_path: str | Path, seed: int,
                 perturbation: PerturbationSpec | None = None, *,
                 region_scale: float = 1.0) -> Any:
        """A :class:`~sim.world.SimTaskWorld` for ``task_path``.

        Args:
            task_path: a ``.bddl`` task file.
            seed: the episode seed (seeds the perturbation's choices; the caller resets the
                robot with it).
            perturbation: applied to the parsed task first (regions, distractors, swaps).
            region_scale: widens the objects' initial placement regions (collection).
        """
        from sim.world import SimTaskWorld

        task = load_bddl(task_path)
        if perturbation is not None:
            rng = perturbation_rng(perturbation, Path(task_path).stem, seed)
            task = apply_perturbation(task, perturbation, rng, supported_categories(),
                                      object_clearance_m=self.object_clearance_m,
                                      fixture_clearance_m=self.fixture_clearance_m)
        return SimTaskWorld.from_task(task, cameras=self.cameras, image_size=self.image_size,
                                      region_scale=float(region_scale),
                                      action_limits=self.action_limits())


@dataclass(frozen=True)
class ExpertSkills:
    """The scripted experts, one per verb, with the verbs' contracts (``skills`` = ``expert``)."""

    def __call__(self, task_path: str | Path | None = None) -> SkillSet:
        """The same experts for every task; ``task_path`` is accepted for the factory protocol."""
        from sim.experts import expert_skills

        experts = expert_skills()
        return SkillSet(experts, {k: SKILL_SPECS[k] for k in experts})
