"""What Hydra builds for the simulator side: the world factory and the scripted-expert skill set.

The core never imports this module; configs name these classes (``_target_``) and the CLI builds
them with ``hydra.utils.instantiate``. Instances are small, picklable dataclasses, so the worker
pool can ship them to ``spawn`` processes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.evaluation.perturbations import (
    PerturbationSpec,
    PlacementGeometry,
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


@functools.lru_cache(maxsize=None)
def fixture_footprint(category: str, drawers_open: bool = False
                      ) -> tuple[float, float, float, float]:
    """Axis-aligned footprint ``(x0, y0, x1, y1)`` of a fixture asset in its task frame, m: the
    bounding boxes of all its geoms (handles and drawer fronts included), drawers shut or at
    :data:`sim.assets.DRAWER_INIT_OPEN`. Built once per category and process (~10 ms).

    Raises:
        KeyError: an unknown category.
    """
    import mujoco
    import numpy as np

    from sim.assets import ASSETS, DRAWER_INIT_OPEN

    spec = mujoco.MjSpec()
    built = ASSETS[category].build(spec, spec.worldbody, "fx")
    m = spec.compile()
    d = mujoco.MjData(m)
    if drawers_open:
        for role, joint in built.joints.items():
            j = m.joint(joint)
            if role != "knob" and int(j.type[0]) == int(mujoco.mjtJoint.mjJNT_SLIDE):
                d.qpos[int(j.qposadr[0])] = DRAWER_INIT_OPEN
    mujoco.mj_forward(m, d)
    pts = []
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    for g in range(m.ngeom):
        c, h = m.geom_aabb[g, :3], m.geom_aabb[g, 3:]
        local = c + signs * h
        pts.append(d.geom_xpos[g] + local @ d.geom_xmat[g].reshape(3, 3).T)
    if not pts:
        return (0.0, 0.0, 0.0, 0.0)
    xy = np.concatenate(pts)[:, :2]
    return (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()),
            float(xy[:, 1].max()))


def placement_geometry(gap_m: float = 0.01) -> PlacementGeometry:
    """Footprints of the proxy assets for :func:`apply_perturbation`: each object's radius (the
    half-diagonal of its bounding box), each fixture's footprint (:func:`fixture_footprint`,
    drawers shut and open), the table top (:data:`sim.layout.TABLE_TOP_RANGE`) and the
    distractor area (:data:`sim.layout.DISTRACTOR_AREA`).
    """
    import math

    from sim.assets import ASSETS
    from sim.layout import DISTRACTOR_AREA, TABLE_TOP_RANGE

    radius = {c: math.hypot(a.half_extents[0], a.half_extents[1])
              for c, a in ASSETS.items() if a.kind == "object"}
    shut = {c: fixture_footprint(c) for c, a in ASSETS.items() if a.kind == "fixture"}
    opened = {c: fixture_footprint(c, True) for c, a in ASSETS.items() if a.kind == "fixture"}
    return PlacementGeometry(radius, shut, TABLE_TOP_RANGE, DISTRACTOR_AREA, gap_m=gap_m,
                             open_fixture_footprints=opened)


@dataclass(frozen=True)
class SimWorldFactory:
    """Builds a :class:`~sim.world.SimTaskWorld` per episode (the ``world`` config group).

    Args:
        robot: the ``robot`` config: ``name`` (only ``panda`` is built in simulation),
            ``control_hz`` (must match the simulator's 20 Hz), ``physics_timestep`` (s, must match
            :data:`robot_skills.robots.panda.PHYSICS_TIMESTEP`), ``max_delta_pos`` (m per step)
            and ``max_delta_rot`` (rad per step), the action limits; ``deployment`` (None, or a
            mapping: ``preset`` -- a hardware preset name or path, whose safety limits and
            ``lookahead_periods`` the simulator then runs every command through, see
            :class:`sim.sim_robot.Deployment` --, optional ``params``, a bridge parameter file
            (``launch/params/*.yaml``) whose executor block (``preset``, ``lookahead_periods``,
            ``safety.*``) applies as the bridge applies it, and optional ``lookahead_periods``,
            ``velocity_feedforward``, ``latency_s`` and ``safety`` overrides on top).
        cameras: scene cameras rendered into every observation (``()`` = state only).
        image_size: ``(height, width)`` of camera images, pixels.
        object_clearance_m / fixture_clearance_m: kept for configs that set them; placement
            under a perturbation now uses the assets' footprints (:func:`placement_geometry`)
            and these are only the footprint-free fallback's clearances.
        placement_gap_m: free space a perturbation keeps between the footprints of objects and
            fixtures it moves or adds, m.

    Raises:
        ValueError: on a robot the simulator cannot build or rates it does not run at.
    """

    robot: Mapping[str, Any] = field(default_factory=lambda: {"name": "panda"})
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (128, 128)
    object_clearance_m: float = 0.10
    fixture_clearance_m: float = 0.20
    placement_gap_m: float = 0.01
    _deployment: Any = field(default=None, init=False, repr=False, compare=False)

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
        # read and validated once (the preset's YAML), not per episode
        object.__setattr__(self, "_deployment", self.deployment())

    def deployment(self) -> Any:
        """The :class:`sim.sim_robot.Deployment` of ``robot.deployment``, or None.

        The preset is read by :func:`hardware.config.load_bridge_config`, the function the bridge
        itself uses, so simulation and arm enforce the same limits.

        Raises:
            ValueError: unknown keys, a preset whose control rate differs from the simulator's, bad
                limits. FileNotFoundError: an unknown preset.
        """
        dep = self.robot.get("deployment")
        if dep is None:
            return None
        if not hasattr(dep, "items"):
            raise ValueError(f"robot.deployment must be a mapping or null, got {dep!r}")
        dep = {str(k): v for k, v in dep.items()}
        unknown = sorted(set(dep) - {"preset", "params", "lookahead_periods",
                                     "velocity_feedforward", "latency_s", "safety"})
        if unknown or not (dep.get("preset") or dep.get("params")):
            raise ValueError(f"robot.deployment needs 'preset' or 'params' and takes only "
                             f"lookahead_periods, velocity_feedforward, latency_s and safety "
                             f"besides; got {sorted(dep)}")
        from hardware.config import load_bridge_config
        from sim.sim_robot import Deployment

        over: dict[str, Any] = {}
        preset = dep.get("preset")
        if dep.get("params"):
            from hardware.executor_node import executor_parameters

            p = executor_parameters(dep["params"])
            preset = preset or p.get("preset")
            from hardware.executor_node import bridge_overrides

            over.update({k: v for k, v in bridge_overrides(p).items()
                         if k in ("lookahead_periods", "safety")})
        if dep.get("lookahead_periods") is not None:
            over["lookahead_periods"] = dep["lookahead_periods"]
        if dep.get("safety") is not None:
            over["safety"] = {**over.get("safety", {}), **dict(dep["safety"])}
        if not preset:
            raise ValueError(f"robot.deployment: no preset given or set in {dep.get('params')}")
        dep["preset"] = preset
        cfg = load_bridge_config(str(preset), **over)
        if abs(cfg.control_hz - panda.CONTROL_HZ) > 1e-9:
            raise ValueError(f"hardware preset {dep['preset']!r} streams at {cfg.control_hz:g} Hz; "
                             f"the simulated Panda acts at {panda.CONTROL_HZ:g} Hz")
        if cfg.arm != "panda":
            raise ValueError(f"hardware preset {dep['preset']!r} is for arm {cfg.arm!r}; the "
                             f"simulator builds a Panda")
        return Deployment(cfg.safety_limits(), float(cfg.lookahead_periods),
                          bool(dep.get("velocity_feedforward", False)),
                          float(dep.get("latency_s", 0.0)), str(dep["preset"]))

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
            perturbation: its layout axes are applied to the parsed task first (shifts resolved
                against the assets' footprints, distractors, swaps); its simulator axes go to the
                robot (:class:`sim.sim_robot.SimRobot`'s ``perturbation``). The world's
                ``perturbation_notes`` (list of str) say what the layout resolution moved.
            region_scale: widens the objects' initial placement regions (collection).

        Raises:
            robot_skills.evaluation.perturbations.NotBuildableError: no free table spot for a
                shifted region or a distractor (the runner reports the episode as not built).
        """
        from sim.world import SimTaskWorld

        task = load_bddl(task_path)
        notes: list[str] = []
        if perturbation is not None:
            rng = perturbation_rng(perturbation, Path(task_path).stem, seed)
            task = apply_perturbation(task, perturbation, rng, supported_categories(),
                                      object_clearance_m=self.object_clearance_m,
                                      fixture_clearance_m=self.fixture_clearance_m,
                                      geometry=placement_geometry(self.placement_gap_m),
                                      notes=notes)
        world = SimTaskWorld.from_task(task, cameras=self.cameras, image_size=self.image_size,
                                       region_scale=float(region_scale),
                                       action_limits=self.action_limits(),
                                       perturbation=perturbation,
                                       deployment=self._deployment)
        world.perturbation_notes = notes
        return world


@dataclass(frozen=True)
class ExpertSkills:
    """The scripted experts, one per verb, with the verbs' contracts (``skills`` = ``expert``)."""

    def __call__(self, task_path: str | Path | None = None) -> SkillSet:
        """The same experts for every task; ``task_path`` is accepted for the factory protocol."""
        from sim.experts import expert_skills

        experts = expert_skills()
        return SkillSet(experts, {k: SKILL_SPECS[k] for k in experts})
