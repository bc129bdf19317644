"""One skill call as a reinforcement-learning task, for residual refinement of a frozen skill.

:class:`ResidualSkillEnv` is a ``gymnasium.Env`` around one call such as
``place_on(akita_black_bowl_1, plate_1)`` in one task file. At every control step the env asks the
*frozen* base skill (a learned :class:`~robot_skills.policies.learned_skill.LearnedSkill` from a
skill library, or the scripted expert) for its action ``a_base``; the agent's action is a residual
``delta`` and the robot executes (Silver et al. 2018, "Residual Policy Learning"; Johannink et al.
2019, "Residual Reinforcement Learning for Robot Control")::

    a = clip(a_base + scale * clip(delta, -1, 1) + bias + noise, -1, 1)

in *normalised* action units: ``a[0:3] * max_delta_pos`` m and ``a[3:6] * max_delta_rot`` rad per
step in the robot base frame, ``a[6]`` the gripper command (-1 open, +1 closed), as
:class:`sim.env.LiberoTaskEnv`. ``bias`` and ``noise`` come from the perturbation (zero by
default). A zero residual executes exactly the base skill.

Observation, ``Box((OBS_DIM,), float32)``:

==========================  ===========  ===============================================
slice                       size         meaning
==========================  ===========  ===============================================
``[0:FEATURE_DIM]``         20           :func:`robot_skills.policies.features.skill_features`
                                         of the call's arguments (base frame, m / rad)
``[FEATURE_DIM:+7]``        7            ``a_base`` of this step, normalised units
``[-1]``                    1            elapsed fraction of the call's time limit, [0, 1]
==========================  ===========  ===============================================

Reward (documented in docs/residual.md):

* sparse: ``+1`` on the step the skill's termination test holds (the contract's termination atoms
  grounded on the call's arguments, evaluated on the task world's predicate state, plus
  ``handempty`` for skills that must release — :func:`robot_skills.execution.executor.termination_holds`,
  the executor's own test); the episode then ends (``terminated``);
* optional shaped progress (``shaping > 0``, default 1.0): potential-based, ``shaping * (gamma *
  Phi(s') - Phi(s))`` (Ng, Harada & Russell 1999, so the optimal policy is unchanged), with
  ``Phi = -d / 0.1 m``: ``d`` the end-effector–argument distance for one-argument skills (pick,
  open, close, turn_on, turn_off) and the horizontal object–target distance for two-argument skills
  (place_on, place_in, push); ``Phi = 0`` at the (absorbing) success state, so the success bonus does
  not depend on where the end-effector is when it happens.

``truncated`` after the call's time limit (``ceil(time_limit_s / 0.05 s)`` steps of its contract,
or ``max_steps``) or when the simulation goes unstable (``info["episode_invalid"]``).

Before the call starts, :meth:`ResidualSkillEnv.reset` runs the ``setup`` calls (e.g. ``pick`` before
``place_on``) with the scripted experts, so every episode starts in a state where the call's
preconditions hold; a seed whose setup fails is replaced by the next derived seed.

Perturbations (:class:`ResidualPerturbation`) the base skill never saw in its demonstrations:
object mass and friction (and the drawers' and knobs' joint friction), shifted object regions,
a random end-effector offset at the start of the call, action noise and a constant action bias.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from robot_skills.domain.verbs import SKILL_SPECS, SkillSpec
from robot_skills.execution.executor import termination_holds
from robot_skills.policies.features import FEATURE_DIM, PROPRIO_DIM, SLOT_DIM, skill_features
from robot_skills.robot import Action, ActionLimits, EpisodeInvalidError, Observation

__all__ = ["ResidualPerturbation", "ResidualSkillEnv", "ResidualEnvFactory", "parse_call",
           "OBS_DIM", "ACTION_DIM", "BASE_SLICE", "FEATURE_SLICE", "SHAPING_DISTANCE_M"]

ACTION_DIM = 7
OBS_DIM = FEATURE_DIM + ACTION_DIM + 1
FEATURE_SLICE = slice(0, FEATURE_DIM)
"""Where the skill features lie in the observation."""
BASE_SLICE = slice(FEATURE_DIM, FEATURE_DIM + ACTION_DIM)
"""Where the base action (normalised) lies in the observation."""
SHAPING_DISTANCE_M = 0.1
"""Distance that is worth one unit of shaped reward, m."""
_OBS_BOUND = np.float32(1e3)
_SETUP_TRIES = 8
_SEED_STRIDE = 1_000_003
_CALL_RE = re.compile(r"^\s*([A-Za-z_][\w]*)\s*\(\s*(.*?)\s*\)\s*$")


def parse_call(text: str) -> tuple[str, tuple[str, ...]]:
    """Parse ``"place_on(akita_black_bowl_1, plate_1)"`` into ``("place_on", (bowl, plate))``.

    Raises:
        ValueError: if ``text`` is not ``name(arg, ...)``.
    """
    m = _CALL_RE.match(str(text))
    if not m:
        raise ValueError(f"a skill call is written name(arg, ...), got {text!r}")
    args = tuple(a.strip() for a in m.group(2).split(",") if a.strip())
    return m.group(1), args


@dataclass(frozen=True)
class ResidualPerturbation:
    """A change of the world and of the actuation the base skill never saw.

    Attributes:
        name: label in tables.
        mass_scale: factor on the mass and inertia of every task object (free bodies).
        friction_scale: factor on the sliding friction of every task object's geoms, and on the
            damping and friction loss of the fixtures' joints (drawers, knobs).
        region_shift: ``(dx, dy)`` m added to the objects' initial placement regions (table frame).
        ee_shift_m: the end-effector is moved by this distance, in a random horizontal direction
            (drawn from the episode's seed), after the setup calls and before the call starts, m.
        action_noise_std: std of Gaussian noise added to the executed action, normalised units.
        action_bias: constant ``(7,)`` offset added to the executed action, normalised units
            (a miscalibrated controller); ``()`` = none.

    Raises:
        ValueError: on a non-positive scale, a negative distance or std, a bias of the wrong
            length, or non-finite values.
    """

    name: str = "nominal"
    mass_scale: float = 1.0
    friction_scale: float = 1.0
    region_shift: tuple[float, float] = (0.0, 0.0)
    ee_shift_m: float = 0.0
    action_noise_std: float = 0.0
    action_bias: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "region_shift", tuple(float(v) for v in self.region_shift))
        object.__setattr__(self, "action_bias", tuple(float(v) for v in self.action_bias))
        vals = [self.mass_scale, self.friction_scale, self.ee_shift_m, self.action_noise_std,
                *self.region_shift, *self.action_bias]
        if not all(math.isfinite(float(v)) for v in vals):
            raise ValueError(f"perturbation {self.name!r}: values must be finite, got {self}")
        if self.mass_scale <= 0 or self.friction_scale <= 0:
            raise ValueError(f"perturbation {self.name!r}: mass_scale and friction_scale must be "
                             f"> 0, got {self.mass_scale}, {self.friction_scale}")
        if self.ee_shift_m < 0 or self.action_noise_std < 0:
            raise ValueError(f"perturbation {self.name!r}: ee_shift_m and action_noise_std must "
                             f"be >= 0, got {self.ee_shift_m}, {self.action_noise_std}")
        if len(self.region_shift) != 2:
            raise ValueError(f"perturbation {self.name!r}: region_shift is (dx, dy), got "
                             f"{self.region_shift}")
        if self.action_bias and len(self.action_bias) != ACTION_DIM:
            raise ValueError(f"perturbation {self.name!r}: action_bias needs {ACTION_DIM} values, "
                             f"got {len(self.action_bias)}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ResidualPerturbation:
        """Build from a mapping (a config node); unknown keys are refused.

        Raises:
            ValueError: unknown keys or bad values (see the class).
        """
        if d is None:
            return cls()
        d = dict(d)
        known = {f for f in cls.__dataclass_fields__}
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"unknown perturbation key(s) {bad}; known: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        d = asdict(self)
        d["region_shift"] = list(self.region_shift)
        d["action_bias"] = list(self.action_bias)
        return d


def _make_base(base: str, skill: str, ensemble_m: float | None) -> tuple[Any, SkillSpec]:
    """The frozen base policy and its contract: ``"expert"`` or a skill-library directory."""
    if base == "expert":
        from sim.experts import make_expert

        return make_expert(skill), SKILL_SPECS[skill]
    from robot_skills.skills.library import SkillLibrary

    lib = SkillLibrary(base, ensemble_m=ensemble_m)
    if skill not in lib.list():
        raise KeyError(f"skill library {base} has no skill {skill!r}; it has {lib.list()}")
    specs = lib.contracts
    if skill not in specs:
        raise ValueError(f"skill library {base}: the contract of {skill!r} does not load")
    return lib.get(skill), specs[skill]


class ResidualSkillEnv(gym.Env):
    """One skill call of one task file as an RL task over a frozen base skill.

    See the module docstring for the spaces, the executed action and the reward.

    Args:
        task: a ``.bddl`` task file.
        call: the refined call, ``"skill(arg, ...)"``.
        base: ``"expert"`` (the scripted expert is the frozen base) or a skill-library directory
            (``<run_dir>/skills``) holding the skill.
        setup: calls run by the scripted experts at reset, before the call (e.g.
            ``("pick(akita_black_bowl_1)",)`` before a ``place_on``).
        perturbation: see :class:`ResidualPerturbation` (default: none).
        scale: residual scale in normalised action units (0.1 = at most 5 mm and 0.05 rad per
            step, 0.1 of the gripper range).
        shaping: weight of the potential-based progress reward (0 = sparse only).
        gamma: discount the shaping potential uses (match the RL algorithm's).
        max_steps: time limit in control steps; None = the contract's ``time_limit_s``.
        ensemble_m: temporal-ensembling coefficient of a learned base (as ``policy.ensemble_m``).
        action_limits: per-step action bounds (the robot config's).

    Raises:
        ValueError: bad call text, a call whose arity differs from its contract, ``scale`` not in
            ``(0, 1]``, a negative ``shaping``, ``gamma`` not in ``(0, 1]``, ``max_steps < 1``, an
            argument that is not an entity of the task.
        KeyError: unknown skill (no expert, or not in the library).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: str | Path, call: str, base: str = "expert", *,
                 setup: Sequence[str] = (), perturbation: ResidualPerturbation | None = None,
                 scale: float = 0.1, shaping: float = 1.0, gamma: float = 0.99,
                 max_steps: int | None = None, ensemble_m: float | None = 0.01,
                 action_limits: ActionLimits | None = None,
                 render_mode: str | None = None) -> None:
        super().__init__()
        from sim.sim_robot import SimRobot
        from sim.world import SimTaskWorld

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not 0.0 < float(scale) <= 1.0:
            raise ValueError(f"scale must be in (0, 1] (normalised action units), got {scale}")
        if not float(shaping) >= 0.0:
            raise ValueError(f"shaping must be >= 0, got {shaping}")
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.skill, self.args = parse_call(call)
        self.setup_calls = tuple(parse_call(c) for c in setup)
        self.perturbation = perturbation or ResidualPerturbation()
        self.scale, self.shaping, self.gamma = float(scale), float(shaping), float(gamma)
        self.render_mode = render_mode
        self.base_name = str(base)
        self.base, self.skill_spec = _make_base(self.base_name, self.skill, ensemble_m)
        if len(self.args) != len(self.skill_spec.parameters):
            raise ValueError(f"{self.skill} takes {len(self.skill_spec.parameters)} argument(s) "
                             f"{[p.name for p in self.skill_spec.parameters]}, got {list(self.args)}")
        lim = action_limits if action_limits is not None else ActionLimits()
        self.limits = lim
        self._unit = np.array([lim.max_delta_pos] * 3 + [lim.max_delta_rot] * 3 + [1.0])
        p = self.perturbation
        robot = SimRobot(task, region_shift=p.region_shift, action_limits=lim)
        self.world = SimTaskWorld(robot)
        self.robot = robot
        self._entities = robot.scene.entity_tags()
        missing = [a for a in self.args if a not in self._entities]
        if missing:
            raise ValueError(f"call {call!r}: {missing} are not entities of {task}; entities: "
                             f"{sorted(self._entities)}")
        self._apply_dynamics(p)
        period = float(robot.control_period)
        self.max_steps = (int(max_steps) if max_steps is not None
                          else max(1, math.ceil(self.skill_spec.time_limit_s / period - 1e-9)))
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self._bias = (np.asarray(p.action_bias, np.float64) if p.action_bias
                      else np.zeros(ACTION_DIM))
        self.observation_space = spaces.Box(-_OBS_BOUND, _OBS_BOUND, shape=(OBS_DIM,),
                                            dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(ACTION_DIM,), dtype=np.float32)
        self._experts: dict[str, Any] = {}
        self._a_base = np.zeros(ACTION_DIM)
        self._base_phys = np.zeros(ACTION_DIM)
        self._obs: Observation | None = None
        self._feat = np.zeros(FEATURE_DIM, np.float32)
        self._steps = 0
        self._phi = 0.0
        self._ready = False
        self.episode_seed: int | None = None

    # ------------------------------------------------------------------ set-up helpers
    def _apply_dynamics(self, p: ResidualPerturbation) -> None:
        """Scale the task objects' mass/inertia and friction, the fixtures' joint friction."""
        m = self.robot.model
        scene = self.robot.scene
        if p.mass_scale == 1.0 and p.friction_scale == 1.0:
            return
        for info in scene.objects.values():
            bodies = np.flatnonzero(m.body_rootid == m.body(info.body).id)
            m.body_mass[bodies] *= p.mass_scale
            m.body_inertia[bodies] *= p.mass_scale
            geoms = np.flatnonzero(np.isin(m.geom_bodyid, bodies))
            m.geom_friction[geoms, 0] *= p.friction_scale
        for fx in scene.fixtures.values():
            for jname in fx.joints.values():
                j = m.joint(jname)
                dofs = np.arange(m.jnt_dofadr[j.id], m.jnt_dofadr[j.id] + 1)
                m.dof_damping[dofs] *= p.friction_scale
                m.dof_frictionloss[dofs] *= p.friction_scale
        mujoco.mj_setConst(m, self.robot.data)  # derived inertial constants follow the masses

    def _expert(self, skill: str) -> Any:
        if skill not in self._experts:
            from sim.experts import make_expert

            self._experts[skill] = make_expert(skill)
        return self._experts[skill]

    def _run_setup(self) -> tuple[bool, float]:
        """Run the setup calls with the experts; returns (all terminated, last gripper command)."""
        period = float(self.robot.control_period)
        obs = self.robot.observe()
        grip = -1.0
        for skill, args in self.setup_calls:
            spec = SKILL_SPECS[skill]
            expert = self._expert(skill)
            expert.reset(args, self.world)
            limit = max(1, math.ceil(spec.time_limit_s / period - 1e-9))
            for _ in range(limit):
                applied = self.robot.act(expert.act(obs))
                grip = float(applied.gripper)
                obs = self.robot.observe()
                if termination_holds(spec, args, self.world.predicate_state(), self._entities):
                    break
            else:
                return False, grip
        return True, grip

    def _shift_ee(self, grip: float) -> None:
        """Move the end-effector ``ee_shift_m`` in a random horizontal direction (seeded)."""
        dist = self.perturbation.ee_shift_m
        if dist <= 0:
            return
        ang = float(self.np_random.uniform(-np.pi, np.pi))
        step = 0.01
        direction = np.array([np.cos(ang), np.sin(ang), 0.0])
        for _ in range(int(math.ceil(dist / step))):
            self.robot.act(Action(direction * min(step, dist), np.zeros(3), grip))
            dist -= step
        for _ in range(3):  # let the arm settle on its new target
            self.robot.act(Action(np.zeros(3), np.zeros(3), grip))

    def _potential(self, f: np.ndarray) -> float:
        o0 = PROPRIO_DIM
        rel0 = f[o0:o0 + 3].astype(np.float64)
        if len(self.args) >= 2:
            o1 = PROPRIO_DIM + SLOT_DIM
            d = float(np.linalg.norm((rel0 - f[o1:o1 + 3].astype(np.float64))[:2]))
        else:
            d = float(np.linalg.norm(rel0))
        return -d / SHAPING_DISTANCE_M

    def _base_action(self, obs: Observation) -> np.ndarray:
        """The base skill's action for ``obs``, normalised (7,) float64 in [-1, 1]; the action in
        robot units (m, rad, gripper) is kept in float64 so a zero residual replays it exactly."""
        act = self.base.act(obs)
        phys = np.concatenate([np.asarray(act.delta_pos, np.float64),
                               np.asarray(act.delta_rot, np.float64), [float(act.gripper)]])
        self._base_phys = np.clip(phys, -self._unit, self._unit)
        return self._base_phys / self._unit

    def _observation(self) -> np.ndarray:
        out = np.empty(OBS_DIM, np.float32)
        out[FEATURE_SLICE] = self._feat
        out[BASE_SLICE] = self._a_base
        out[-1] = min(1.0, self._steps / self.max_steps)
        return np.clip(out, -_OBS_BOUND, _OBS_BOUND)

    def to_robot_action(self, a: np.ndarray) -> Action:
        """A normalised ``(7,)`` action in ``[-1, 1]`` as a robot :class:`Action` (m, rad).

        Raises:
            ValueError: wrong shape or non-finite values.
        """
        a = np.asarray(a, np.float64).reshape(-1)
        if a.shape != (ACTION_DIM,) or not np.isfinite(a).all():
            raise ValueError(f"action must be a finite ({ACTION_DIM},) vector, got {a}")
        d = np.clip(a, -1.0, 1.0) * self._unit
        return Action(d[:3], d[3:6], float(d[6]))

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset the scene with ``seed``, run the setup calls, start the call.

        A seed whose scene cannot be placed, whose simulation goes unstable or whose setup calls
        fail is replaced by ``seed + k * 1000003`` (k = 1, 2, ...); ``info["episode_seed"]`` is
        the seed used.

        Returns:
            ``(obs, info)``; ``obs`` as the module docstring.

        Raises:
            RuntimeError: if 8 derived seeds in a row fail (the message names the task, call
                and the last cause).
        """
        from sim.scene import PlacementError

        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        cause = ""
        for k in range(_SETUP_TRIES):
            s = int(seed) + k * _SEED_STRIDE
            try:
                self.robot.reset(s)
                ok, grip = self._run_setup()
                if not ok:
                    cause = f"setup {self.setup_calls} did not terminate"
                    continue
                self._shift_ee(grip)
                self.base.reset(self.args, self.world)
                obs = self.robot.observe()
                self._feat = skill_features(obs, self.args)
                self._a_base = self._base_action(obs)
            except (PlacementError, EpisodeInvalidError) as e:
                cause = f"{type(e).__name__}: {e}"
                continue
            self.episode_seed = s
            self._obs = obs
            self._steps = 0
            self._phi = self._potential(self._feat)
            self._ready = True
            return self._observation(), {"episode_seed": s, "success": False,
                                         "base_action": self._a_base.astype(np.float32)}
        self._ready = False
        raise RuntimeError(f"residual env {self.robot.task.source} {self.skill}{list(self.args)}: "
                           f"{_SETUP_TRIES} seeds from {seed} failed to start the call; last: "
                           f"{cause}")

    def step(self, action):
        """One 20 Hz control step executing ``a_base + scale * action`` (+ perturbation).

        Returns:
            ``(obs, reward, terminated, truncated, info)``; ``info``: ``success`` /
            ``is_success`` (bool), ``base_action`` and ``executed_action`` (normalised, (7,)
            float32), ``progress`` (the shaping potential), and ``episode_invalid`` when the
            simulation went unstable (truncated, reward 0).

        Raises:
            RuntimeError: before :meth:`reset`. ValueError: a residual of the wrong shape or
                holding NaN/inf.
        """
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        delta = np.asarray(action, np.float64).reshape(-1)
        if delta.shape != (ACTION_DIM,) or not np.isfinite(delta).all():
            raise ValueError(f"residual action must be a finite ({ACTION_DIM},) vector, got "
                             f"{np.asarray(action).tolist()}")
        add = self.scale * np.clip(delta, -1.0, 1.0) + self._bias
        if self.perturbation.action_noise_std > 0:
            add = add + self.np_random.normal(0.0, self.perturbation.action_noise_std, ACTION_DIM)
        # in robot units: with nothing added, the base skill's own action goes out bit for bit
        phys = np.clip(self._base_phys + add * self._unit, -self._unit, self._unit)
        a = phys / self._unit
        info: dict[str, Any] = {"base_action": self._a_base.astype(np.float32),
                                "executed_action": a.astype(np.float32)}
        self._steps += 1
        try:
            self.robot.act(Action(phys[:3], phys[3:6], float(phys[6])))
            obs = self.robot.observe()
            state = self.world.predicate_state()
        except EpisodeInvalidError as e:
            self._ready = False
            info.update(success=False, is_success=False, episode_invalid=str(e))
            return self._observation(), 0.0, False, True, info
        self._obs = obs
        self._feat = skill_features(obs, self.args)
        success = termination_holds(self.skill_spec, self.args, state, self._entities)
        phi = self._potential(self._feat)
        # The success state is absorbing: its potential is 0 (Ng et al. 1999 need Phi = 0 at
        # terminal states for the optimal policy to stay unchanged). With Phi(s_T) = -d_T / 0.1 m
        # an `open` that ends 15 cm from the drawer's region would be worth less than never
        # succeeding. Truncation keeps Phi: the episode is cut, not ended.
        phi_next = 0.0 if success else phi
        reward = (1.0 if success else 0.0) + self.shaping * (self.gamma * phi_next - self._phi)
        self._phi = phi
        truncated = (not success) and self._steps >= self.max_steps
        if success or truncated:
            self._ready = False
        else:
            self._a_base = self._base_action(obs)
        info.update(success=bool(success), is_success=bool(success), progress=phi)
        return self._observation(), float(reward), bool(success), bool(truncated), info

    def render(self):
        """``(256, 256, 3)`` uint8 ``agentview`` frame, or None without ``render_mode``."""
        if self.render_mode != "rgb_array":
            return None
        return self.robot.render("agentview", width=256, height=256)

    def close(self) -> None:
        """Free the renderers."""
        self.robot.close()


@dataclass(frozen=True)
class ResidualEnvFactory:
    """Picklable factory of :class:`ResidualSkillEnv` (what Hydra builds from
    ``configs/residual/*.yaml``; vectorised envs call it in their worker processes).

    Attributes:
        task: the task file; a bare stem (``put_the_bowl_on_the_plate``) is looked up in
            ``suite_path`` (a directory or a LIBERO suite name, see
            :func:`robot_skills.tasks.suites.resolve_suite`).
        call / base / setup / scale / shaping / gamma / max_steps / ensemble_m: as
            :class:`ResidualSkillEnv`.
        perturbation: a :class:`ResidualPerturbation` or a mapping of its fields.
        robot: the robot config (``max_delta_pos`` / ``max_delta_rot``).
    """

    task: str
    call: str
    base: str = "expert"
    setup: tuple[str, ...] = ()
    perturbation: Any = None
    suite_path: str = "libero_goal"
    scale: float = 0.1
    shaping: float = 1.0
    gamma: float = 0.99
    max_steps: int | None = None
    ensemble_m: float | None = 0.01
    robot: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "setup", tuple(self.setup))
        p = self.perturbation
        if not isinstance(p, ResidualPerturbation):
            object.__setattr__(self, "perturbation", ResidualPerturbation.from_dict(p))
        object.__setattr__(self, "robot", dict(self.robot or {}))
        parse_call(self.call)
        for c in self.setup:
            parse_call(c)

    def task_path(self) -> Path:
        """The task file.

        Raises:
            FileNotFoundError: if it does not exist.
        """
        p = Path(self.task)
        if p.suffix != ".bddl":
            from robot_skills.tasks.suites import resolve_suite

            p = Path(resolve_suite(self.suite_path)) / f"{self.task}.bddl"
        if not p.is_file():
            raise FileNotFoundError(f"no task file {p}")
        return p

    def with_perturbation(self, perturbation: ResidualPerturbation) -> ResidualEnvFactory:
        """The same factory under another perturbation."""
        import dataclasses

        return dataclasses.replace(self, perturbation=perturbation)

    def __call__(self, rank: int = 0) -> ResidualSkillEnv:
        """A new env (``rank`` is accepted for vectorised-env factories and ignored)."""
        lim = ActionLimits(float(self.robot.get("max_delta_pos", ActionLimits.max_delta_pos)),
                           float(self.robot.get("max_delta_rot", ActionLimits.max_delta_rot)))
        return ResidualSkillEnv(self.task_path(), self.call, self.base, setup=self.setup,
                                perturbation=self.perturbation, scale=self.scale,
                                shaping=self.shaping, gamma=self.gamma, max_steps=self.max_steps,
                                ensemble_m=self.ensemble_m, action_limits=lim)

    def describe(self) -> dict[str, Any]:
        """JSON-able description (for result files)."""
        return {"task": self.task, "call": self.call, "base": self.base,
                "setup": list(self.setup), "perturbation": self.perturbation.to_dict(),
                "scale": self.scale, "shaping": self.shaping, "gamma": self.gamma,
                "max_steps": self.max_steps}
