"""The skill executor node: a task in, a plan over the loaded library, skills run through the bridge.

A process running this module holds two rclpy nodes in one context: the bridge
(:class:`hardware.ros2_robot.Ros2Robot`, node ``robot_skills_bridge``), which a skill's actions go
through in-process (IK, safety filter, one JointTrajectory per control period), and the executor
node ``robot_skills_executor``:

* subscribes ``std_msgs/String`` ``task_topic`` (default ``/robot_skills/task``), a JSON object::

      {"id": "t1", "goal": ["(On akita_black_bowl_1 plate_1)"], "max_replans": 2}
      {"id": "t2", "instruction": "put the bowl on the plate"}

  keys: ``id`` (string), ``goal`` (BDDL atoms as strings ``"(On a b)"`` or lists
  ``["On", "a", "b"]``), ``instruction`` (matched against the configured task file's
  ``(:language ...)``; there is no language planner in the core yet), ``max_replans`` (0..10),
  ``max_steps`` (> 0), ``reset_scene`` (bool: call ``scene_reset_service`` first, e.g. the twin's
  ``/sim_twin/reset``). Anything else -- not JSON, not an object, an unknown key, a goal atom
  the pose model cannot decide -- is refused with a ``rejected`` result naming the problem.
* serves ``std_srvs/Trigger`` ``run_service`` (``/robot_skills/run_task``: run the configured task
  file's goal) and ``stop_service`` (``/robot_skills/stop``: halt at once -- the bridge publishes a
  controlled stop and the running skill ends);
* publishes ``std_msgs/String`` JSON on ``progress_topic`` (``{"id", "event": "call" | "step",
  "skill", "args", "step"}``) and on ``result_topic`` (transient-local, depth 10)::

      {"id", "status": "succeeded" | "failed" | "rejected" | "aborted" | "stopped",
       "reason", "message", "result": ExecutionResult.to_dict() | null, "interventions": {...}}

Trust tiers: only skills whose ``skill.yaml`` trust tier reaches ``min_trust_tier`` (the preset's,
``supervised`` by default; the sim-twin launch sets ``sim``) run. A plan that needs a skill below it
is refused before anything moves (``rejected``, reason ``trust_tier``, naming skill and tiers); the
executor only ever holds the permitted skills, so replanning cannot reach the others.

Predicates come from poses: :class:`robot_skills.perception.PoseTaskWorld` over the bridge's
observations and a :class:`~robot_skills.perception.PoseWorldModel` read from ``pose_model`` (a
YAML file, ``PoseWorldModel.to_dict`` layout) or, when that is empty, from the latched
``pose_model_topic`` (what the sim twin publishes).

Run: ``python -m hardware.executor_node --ros-args --params-file launch/params/sim_twin.yaml``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware.config import TRUST_TIERS
from robot_skills.domain.predicates import Atom
from robot_skills.robot import EpisodeInvalidError

logger = logging.getLogger("hardware.executor_node")

MAX_REQUEST_BYTES = 64 * 1024
"""Largest task request accepted, bytes."""
_REQUEST_KEYS = ("id", "goal", "instruction", "max_replans", "max_steps", "reset_scene")


class TaskRequestError(ValueError):
    """A task request that cannot be run as given (the message says why)."""


@dataclass(frozen=True)
class TaskRequest:
    """A parsed task request.

    Attributes:
        id: the caller's id (echoed in progress and result), or ``""``.
        goal: goal atoms (lower-case predicate first), or None when an instruction is given.
        instruction: the instruction, or None.
        max_replans: re-plans allowed after the first plan.
        max_steps: control-step budget, or None (the executor's default from the contracts).
        reset_scene: reset the scene first (twin only).
    """

    id: str = ""
    goal: tuple[Atom, ...] | None = None
    instruction: str | None = None
    max_replans: int = 2
    max_steps: int | None = None
    reset_scene: bool = False


_ATOM_RE = re.compile(r"^\(\s*([A-Za-z_][\w-]*)((?:\s+[\w./-]+)*)\s*\)$")


def parse_atom(x: Any) -> Atom:
    """``"(On a b)"`` or ``["On", "a", "b"]`` -> ``("on", "a", "b")``.

    Raises:
        TaskRequestError: on anything else.
    """
    if isinstance(x, str):
        m = _ATOM_RE.match(x.strip())
        if not m:
            raise TaskRequestError(f"goal atom {x!r} is not of the form '(Predicate arg ...)'")
        return (m.group(1).lower(), *m.group(2).split())
    if isinstance(x, (list, tuple)) and x and all(isinstance(p, str) and p for p in x):
        return (x[0].lower(), *x[1:])
    raise TaskRequestError(f"goal atom {x!r} must be a string '(On a b)' or a list of strings")


def parse_task_request(text: str | bytes) -> TaskRequest:
    """Parse a JSON task request (see the module docstring).

    Raises:
        TaskRequestError: not JSON, not an object, too large, unknown keys, wrong types, neither
            or both of ``goal`` and ``instruction``.
    """
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if len(raw) > MAX_REQUEST_BYTES:
        raise TaskRequestError(f"task request of {len(raw)} bytes exceeds {MAX_REQUEST_BYTES}")
    try:
        d = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TaskRequestError(f"task request is not JSON: {e}") from None
    if not isinstance(d, dict):
        raise TaskRequestError(f"task request must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - set(_REQUEST_KEYS))
    if unknown:
        raise TaskRequestError(f"unknown key(s) {unknown}; known: {list(_REQUEST_KEYS)}")
    rid = d.get("id", "")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise TaskRequestError(f"id must be a string, got {rid!r}")
    goal, instr = d.get("goal"), d.get("instruction")
    if (goal is None) == (instr is None):
        raise TaskRequestError("give exactly one of 'goal' (atoms) and 'instruction'")
    atoms = None
    if goal is not None:
        if not isinstance(goal, list) or not goal:
            raise TaskRequestError("goal must be a non-empty list of atoms")
        atoms = tuple(parse_atom(a) for a in goal)
    if instr is not None and (not isinstance(instr, str) or not instr.strip()):
        raise TaskRequestError("instruction must be a non-empty string")
    mr = d.get("max_replans", 2)
    if isinstance(mr, bool) or not isinstance(mr, int) or not 0 <= mr <= 10:
        raise TaskRequestError(f"max_replans must be an integer in [0, 10], got {mr!r}")
    ms = d.get("max_steps")
    if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or ms < 1):
        raise TaskRequestError(f"max_steps must be a positive integer, got {ms!r}")
    rs = d.get("reset_scene", False)
    if not isinstance(rs, bool):
        raise TaskRequestError(f"reset_scene must be true or false, got {rs!r}")
    return TaskRequest(str(rid), atoms, instr.strip() if instr else None, mr, ms, rs)


def _words(s: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", s.lower()))


def tier_allows(tier: str, minimum: str) -> bool:
    """True when trust tier ``tier`` reaches ``minimum`` (:data:`TRUST_TIERS` order).

    Raises:
        ValueError: on an unknown tier.
    """
    for t in (tier, minimum):
        if t not in TRUST_TIERS:
            raise ValueError(f"unknown trust tier {t!r}; expected one of {TRUST_TIERS}")
    return TRUST_TIERS.index(tier) >= TRUST_TIERS.index(minimum)


# ------------------------------------------------------------------------------------------
# the runner (no rclpy: testable with any Robot)


class SkillRunner:
    """Runs task requests on a robot with a skill library, planner and pose model.

    Args:
        robot: a connected :class:`~robot_skills.robot.Robot` (a :class:`Ros2Robot`).
        skills: the library's :class:`~robot_skills.execution.interfaces.SkillSet`.
        tiers: skill name -> trust tier (from each ``skill.yaml``).
        min_trust_tier: least tier a skill needs.
        pose_model: the :class:`~robot_skills.perception.PoseWorldModel` of the scene.
        planner_factory: ``factory(specs) -> Planner`` (default: the symbolic planner).
        task: the parsed task file (its goal for :meth:`run` without a goal, its language for
            instructions), or None.
        on_event: ``on_event(dict)`` receiving progress events.
        progress_every: publish a ``step`` event every this many control steps.
        pose_timeout_s: how long to wait for every tracked entity's first pose.
    """

    def __init__(self, robot: Any, skills: Any, tiers: Mapping[str, str], min_trust_tier: str,
                 pose_model: Any, planner_factory: Callable[[Mapping[str, Any]], Any] | None = None,
                 task: Any = None, on_event: Callable[[dict], None] | None = None,
                 progress_every: int = 10, pose_timeout_s: float = 10.0) -> None:
        from robot_skills.planning.symbolic import SymbolicPlanner

        tier_allows(min_trust_tier, min_trust_tier)
        self.robot = robot
        self.skills = skills
        self.tiers = {k: str(tiers.get(k, "sim")) for k in skills.specs}
        self.min_trust_tier = min_trust_tier
        self.model = pose_model
        self.planner_factory = planner_factory or (lambda specs: SymbolicPlanner(specs))
        self.task = task
        self.on_event = on_event or (lambda e: None)
        self.progress_every = max(1, int(progress_every))
        self.pose_timeout_s = float(pose_timeout_s)

    def permitted(self) -> list[str]:
        """Skills whose tier reaches :attr:`min_trust_tier`, sorted."""
        return sorted(k for k, t in self.tiers.items() if tier_allows(t, self.min_trust_tier))

    def resolve_goal(self, req: TaskRequest) -> tuple[Atom, ...]:
        """The request's goal atoms, or the configured task's goal for a matching instruction.

        Raises:
            TaskRequestError: an instruction with no task file configured, or one that differs
                from the task file's language; an atom the pose model cannot decide.
        """
        if req.goal is not None:
            goal = req.goal
        else:
            if self.task is None:
                raise TaskRequestError("an instruction needs a task file (parameter 'task') "
                                       "whose language it names; or send goal atoms")
            if _words(req.instruction or "") != _words(self.task.language):
                raise TaskRequestError(
                    f"instruction {req.instruction!r} does not match the task's language "
                    f"{self.task.language!r} (no language planner in the core yet: send goal "
                    "atoms)")
            goal = tuple(tuple(a) for a in self.task.goal)
        try:
            self.model.check_atoms(goal)
        except ValueError as e:
            raise TaskRequestError(f"goal cannot be decided from poses: {e}") from None
        return goal

    def _wait_for_poses(self) -> None:
        need = set(self.model.tracked_entities())
        deadline = time.monotonic() + self.pose_timeout_s
        missing = need
        while time.monotonic() < deadline:
            missing = need - set(self.robot.observe().object_poses)
            if not missing:
                return
            time.sleep(0.02)
        raise TaskRequestError(f"no pose received for {sorted(missing)} within "
                               f"{self.pose_timeout_s:g} s (perception topics?)")

    def run(self, req: TaskRequest, *, before: Callable[[], None] | None = None) -> dict[str, Any]:
        """Run one request to its end; never raises for task-level problems.

        Args:
            req: the request.
            before: called after the request is checked and before the robot is reset (e.g. a
                scene reset).

        Returns:
            The result object of the module docstring.
        """
        from robot_skills.execution.executor import Executor
        from robot_skills.execution.interfaces import SkillSet
        from robot_skills.perception import PoseTaskWorld
        from robot_skills.planning.symbolic import NoPlanError

        out: dict[str, Any] = {"id": req.id, "status": "rejected", "reason": "", "message": "",
                               "result": None}

        def done(status: str, reason: str, message: str, result: Any = None) -> dict:
            out.update(status=status, reason=reason, message=message, result=result,
                       interventions=dict(getattr(self.robot, "interventions", {}) or {}))
            return out

        try:
            goal = self.resolve_goal(req)
            if before is not None:
                before()
            self.robot.reset()
            self._wait_for_poses()
            world = PoseTaskWorld(self.robot, self.model, goal)
            # Refuse a plan needing a skill below the required tier before anything moves.
            try:
                plan = self.planner_factory(dict(self.skills.specs)).plan(world.symbolic_problem())
            except NoPlanError as e:
                return done("failed", "no_plan", f"no plan over the library: {e}")
            low = [(c.skill, self.tiers.get(c.skill, "sim")) for c in plan.calls
                   if not tier_allows(self.tiers.get(c.skill, "sim"), self.min_trust_tier)]
            if low:
                msg = "; ".join(f"skill {s!r} has trust tier {t!r}, below the required "
                                f"{self.min_trust_tier!r}" for s, t in low)
                return done("rejected", "trust_tier",
                            f"refused before motion: plan {[str(c) for c in plan.calls]} needs "
                            f"{msg}")
        except TaskRequestError as e:
            return done("rejected", "bad_request", str(e))
        except EpisodeInvalidError as e:
            return done("aborted", _abort_reason(str(e)), str(e))

        allowed = self.permitted()
        wrapped = {k: _Announcing(self.skills.policies[k], k, self._announce(req.id))
                   for k in allowed}
        skills = SkillSet(wrapped, {k: self.skills.specs[k] for k in allowed})
        current = {"step": 0}

        def on_step(step: int, obs: Any, action: Any) -> None:
            current["step"] = step
            if step % self.progress_every == 0:
                self.on_event({"id": req.id, "event": "step", "step": int(step)})

        ex = Executor(world, skills, self.planner_factory(dict(skills.specs)),
                      max_replans=req.max_replans, max_steps=req.max_steps, on_step=on_step)
        try:
            result = ex.run(goal)
        except EpisodeInvalidError as e:
            why = _abort_reason(str(e))
            return done("stopped" if why == "stop_requested" else "aborted", why,
                        f"{e} (after {current['step']} control steps)")
        status = "succeeded" if result.success else "failed"
        return done(status, result.reason, "; ".join(result.messages), result.to_dict())

    def _announce(self, rid: str) -> Callable[[str, Sequence[str]], None]:
        def f(skill: str, args: Sequence[str]) -> None:
            self.on_event({"id": rid, "event": "call", "skill": skill, "args": list(args)})

        return f


def _abort_reason(msg: str) -> str:
    m = msg.lower()
    if "e-stop" in m:
        return "estop"
    if "stale" in m or "watchdog" in m:
        return "stale_state"
    if "stop service" in m or "stop requested" in m:
        return "stop_requested"
    return "invalid"


class _Announcing:
    """A skill policy that reports each call before it starts."""

    def __init__(self, policy: Any, name: str, announce: Callable[[str, Sequence[str]], None]):
        self._entry, self.name, self._announce = policy, name, announce
        self._policy: Any = None

    def _get(self) -> Any:
        if self._policy is None:
            e = self._entry
            self._policy = e if callable(getattr(e, "act", None)) else e()
        return self._policy

    def reset(self, args: Sequence[str], world: Any) -> None:
        self._announce(self.name, args)
        self._get().reset(args, world)

    def act(self, obs: Any) -> Any:
        return self._get().act(obs)


# ------------------------------------------------------------------------------------------
# loading


def load_library(path: str | Path, min_tier: str = "sim") -> tuple[Any, dict[str, str]]:
    """A skill library's verified :class:`SkillSet` and each skill's trust tier.

    Each skill is loaded at the newest non-retired version whose tier reaches ``min_tier``
    (:meth:`SkillLibrary.resolve`); a skill with no such version is loaded at its newest version,
    so the runner's trust-tier gate rejects tasks that need it (naming skill and tiers) instead of
    the whole library failing to load.

    Raises:
        FileNotFoundError / ValueError: see :meth:`SkillLibrary.skill_set` (nothing loads when
            any skill is refused).
    """
    from robot_skills.skills.library import SkillLibrary, TrustTierError

    probe = SkillLibrary(path)
    pins = {}
    for n in probe.list():
        try:
            pins[n] = probe.resolve(n, min_tier or "sim").version
        except TrustTierError:
            continue
        except (KeyError, ValueError):
            continue  # reported, naming the skill, by skill_set() below
    lib = SkillLibrary(path, pins=pins)
    skills = lib.skill_set()
    return skills, {n: str(lib.manifest(n)["trust_tier"]) for n in skills.specs}


def planner_factory(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """``factory(specs) -> Planner`` for a planner config name (``configs/planner/<name>.yaml``,
    built with Hydra's ``instantiate``) or a dotted class path taking the specs.

    Raises:
        ValueError: an unknown name.
    """
    from hydra.utils import instantiate

    from hardware.config import configs_root
    from robot_skills.utils.files import load_yaml_file

    d = configs_root() / "planner"
    f = d / f"{name}.yaml"
    if f.is_file():
        return instantiate(load_yaml_file(f))
    if "." in name:
        import importlib

        mod, _, cls = name.rpartition(".")
        try:
            return getattr(importlib.import_module(mod), cls)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"planner {name!r}: {e}") from None
    known = sorted(p.stem for p in d.glob("*.yaml"))
    raise ValueError(f"unknown planner {name!r}; known: {known} or a dotted class path")


# ------------------------------------------------------------------------------------------
# the node

_PARAMS: dict[str, Any] = {
    "preset": "",
    "skill_library": "",
    "planner": "symbolic",
    "task": "",
    "pose_model": "",
    "pose_model_topic": "/sim_twin/pose_model",
    "pose_model_timeout_s": 30.0,
    "min_trust_tier": "",
    "control_hz": 0.0,
    "lookahead_periods": 0.0,
    "object_pose_topic": "",
    "joint_states_topic": "",
    "trajectory_topic": "",
    "gripper_topic": "",
    "connect_timeout_s": 30.0,
    "safety.max_step": 0.0,
    "safety.position_margin": -1.0,
    "safety.stale_after_periods": 0,
    "safety.max_velocity": [0.0],
    "safety.max_acceleration": [0.0],
    "safety.workspace_lower": [0.0],
    "safety.workspace_upper": [0.0],
    "task_topic": "/robot_skills/task",
    "progress_topic": "/robot_skills/progress",
    "result_topic": "/robot_skills/result",
    "run_service": "/robot_skills/run_task",
    "stop_service": "/robot_skills/stop",
    "scene_reset_service": "",
    "progress_every": 10,
}
"""Every parameter of the executor node and its default (``""`` / ``0`` / ``-1`` / ``[0.0]``:
the preset's value). ``safety.*`` override single keys of the preset's safety limits
(:class:`~robot_skills.control.safety.SafetyLimits`; ``max_velocity`` / ``max_acceleration`` take
one value for every joint or one per joint)."""


def executor_parameters(params_file: str | Path) -> dict[str, Any]:
    """The executor node's parameters as a parameter file sets them: :data:`_PARAMS` updated with
    the file's ``robot_skills_executor.ros__parameters`` block (``launch/params/*.yaml``).

    Raises:
        FileNotFoundError: no such file. ValueError: no executor block, or keys the node does not
            declare (named).
    """
    import yaml

    path = Path(params_file)
    if not path.is_file():
        raise FileNotFoundError(f"no bridge parameter file {path}")
    blocks = yaml.safe_load(path.read_text()) or {}
    block = (blocks.get("robot_skills_executor") or {}).get("ros__parameters")
    if not isinstance(block, Mapping):
        raise ValueError(f"{path}: no robot_skills_executor.ros__parameters block")
    unknown = sorted(set(block) - set(_PARAMS))
    if unknown:
        raise ValueError(f"{path}: unknown executor parameter(s) {unknown}")
    p = dict(_PARAMS)
    p.update(block)
    return p


def bridge_overrides(p: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`BridgeConfig` overrides the node's parameters ``p`` ask for (unset ones left
    out)."""
    out: dict[str, Any] = {}
    for k in ("control_hz", "lookahead_periods"):
        if float(p.get(k, 0.0)) > 0:
            out[k] = float(p[k])
    for k in ("object_pose_topic", "joint_states_topic", "trajectory_topic", "gripper_topic",
              "min_trust_tier"):
        if p.get(k):
            out[k] = str(p[k])
    out["connect_timeout_s"] = float(p.get("connect_timeout_s", 30.0))
    safety: dict[str, Any] = {}
    if float(p.get("safety.max_step", 0.0)) > 0:
        safety["max_step"] = float(p["safety.max_step"])
    if float(p.get("safety.position_margin", -1.0)) >= 0:
        safety["position_margin"] = float(p["safety.position_margin"])
    if int(p.get("safety.stale_after_periods", 0)) > 0:
        safety["stale_after_periods"] = int(p["safety.stale_after_periods"])
    for k in ("workspace_lower", "workspace_upper"):
        v = list(p.get(f"safety.{k}", [0.0]) or [])
        if len(v) == 3:
            safety[k] = [float(x) for x in v]
    for k in ("max_velocity", "max_acceleration"):  # one value for every joint, or one per joint
        v = [float(x) for x in (p.get(f"safety.{k}", [0.0]) or [])]
        if len(v) == 1 and v[0] > 0:
            safety[k] = v[0]
        elif len(v) > 1:
            safety[k] = v
    if safety:
        out["safety"] = safety
    return out


def make_node(context: Any = None) -> Any:
    """Build the executor node and its bridge (rclpy initialised on ``context``).

    Raises:
        ValueError / FileNotFoundError: a bad parameter, preset, library or pose model.
        ConnectionError: the arm's joint states never came.
    """
    import rclpy.node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from hardware.config import load_bridge_config
    from hardware.ros2_robot import Ros2Robot
    from robot_skills.perception import PoseWorldModel
    from robot_skills.tasks.bddl import load_bddl
    from robot_skills.utils.files import load_yaml_file, load_yaml_text

    latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         reliability=ReliabilityPolicy.RELIABLE)

    class ExecutorNode(rclpy.node.Node):
        """See the module docstring."""

        def __init__(self) -> None:
            super().__init__("robot_skills_executor", context=context)
            p = {}
            for k, default in _PARAMS.items():
                self.declare_parameter(k, default)
                p[k] = self.get_parameter(k).value
            self.p = p
            log = self.get_logger()
            if not p["skill_library"]:
                raise ValueError("the executor node needs the 'skill_library' parameter")
            self.config = load_bridge_config(p["preset"] or None, **bridge_overrides(p))
            self.skills, self.tiers = load_library(p["skill_library"],
                                                   self.config.min_trust_tier or "sim")
            self.task = load_bddl(p["task"]) if p["task"] else None
            self.pose_model = self._load_pose_model(p, PoseWorldModel, load_yaml_file,
                                                    load_yaml_text, String)
            self.robot = Ros2Robot(config=self.config, context=self.context)
            self.robot.track_entities(self.pose_model.tracked_entities())
            self.robot.connect()
            self.runner = SkillRunner(self.robot, self.skills, self.tiers,
                                      self.config.min_trust_tier, self.pose_model,
                                      planner_factory(p["planner"]), self.task,
                                      on_event=self._progress,
                                      progress_every=int(p["progress_every"]))
            self.progress_pub = self.create_publisher(String, p["progress_topic"], 10)
            self.result_pub = self.create_publisher(String, p["result_topic"], latched)
            self.create_subscription(String, p["task_topic"], self._on_task, 10)
            self.create_service(Trigger, p["run_service"], self._on_run)
            self.create_service(Trigger, p["stop_service"], self._on_stop)
            self._worker: threading.Thread | None = None
            self._busy = threading.Lock()
            self._String = String
            below = sorted(set(self.tiers) - set(self.runner.permitted()))
            log.info(f"executor up: {len(self.tiers)} skill(s) {sorted(self.tiers)}, minimum "
                     f"trust tier {self.config.min_trust_tier!r}"
                     + (f" (not permitted: {below})" if below else "")
                     + f", tasks on {p['task_topic']}")

        def _load_pose_model(self, p, PoseWorldModel, load_yaml_file, load_yaml_text, String):
            if p["pose_model"]:
                return PoseWorldModel.from_dict(load_yaml_file(p["pose_model"]))
            got: list[str] = []
            sub = self.create_subscription(String, p["pose_model_topic"],
                                           lambda m: got.append(m.data), latched)
            deadline = time.monotonic() + float(p["pose_model_timeout_s"])
            while not got and time.monotonic() < deadline:
                rclpy.spin_once(self, timeout_sec=0.1)
            self.destroy_subscription(sub)
            if not got:
                raise ValueError(f"no pose model: parameter 'pose_model' is empty and nothing "
                                 f"came on {p['pose_model_topic']} within "
                                 f"{p['pose_model_timeout_s']} s")
            return PoseWorldModel.from_dict(load_yaml_text(got[-1], p["pose_model_topic"]))

        # ---------------------------------------------------------------- events
        def _progress(self, event: dict) -> None:
            self.progress_pub.publish(self._String(data=json.dumps(event)))

        def _result(self, result: dict) -> None:
            level = self.get_logger().info if result["status"] == "succeeded" \
                else self.get_logger().warn
            level(f"task {result['id']!r}: {result['status']} ({result['reason']}) "
                  f"{result['message'][:300]}")
            self.result_pub.publish(self._String(data=json.dumps(result)))

        def _start(self, req: TaskRequest) -> str | None:
            if not self._busy.acquire(blocking=False):
                return "busy: a task is running"

            def work() -> None:
                try:
                    self._result(self.runner.run(req, before=self._scene_reset
                                                 if req.reset_scene else None))
                except Exception as e:  # noqa: BLE001 - reported, never kills the node
                    self._result({"id": req.id, "status": "aborted", "reason": "error",
                                  "message": f"{type(e).__name__}: {e}", "result": None,
                                  "interventions": self.robot.interventions})
                finally:
                    self._busy.release()

            self._worker = threading.Thread(target=work, name="task", daemon=True)
            self._worker.start()
            return None

        def _scene_reset(self) -> None:
            srv = self.p["scene_reset_service"]
            if not srv:
                raise TaskRequestError("reset_scene asked, but no scene_reset_service is set "
                                       "(a real arm's scene cannot be reset)")
            cli = self.create_client(Trigger, srv)
            try:
                if not cli.wait_for_service(timeout_sec=5.0):
                    raise TaskRequestError(f"scene reset service {srv} is not available")
                fut = cli.call_async(Trigger.Request())
                deadline = time.monotonic() + 30.0
                while not fut.done() and time.monotonic() < deadline:
                    time.sleep(0.01)
                if not fut.done() or not fut.result().success:
                    raise TaskRequestError(f"scene reset failed: "
                                           f"{fut.result().message if fut.done() else 'timeout'}")
            finally:
                self.destroy_client(cli)

        def _on_task(self, msg) -> None:
            try:
                req = parse_task_request(msg.data)
            except TaskRequestError as e:
                rid = _peek_id(msg.data)
                self._result({"id": rid, "status": "rejected", "reason": "malformed",
                              "message": str(e), "result": None,
                              "interventions": self.robot.interventions})
                return
            busy = self._start(req)
            if busy:
                self._result({"id": req.id, "status": "rejected", "reason": "busy",
                              "message": busy, "result": None,
                              "interventions": self.robot.interventions})

        def _on_run(self, request, response):
            if self.task is None:
                response.success, response.message = False, "no task file configured ('task')"
                return response
            busy = self._start(TaskRequest(id="run_task",
                                           goal=tuple(tuple(a) for a in self.task.goal)))
            response.success = busy is None
            response.message = busy or f"started {Path(self.p['task']).stem}"
            return response

        def _on_stop(self, request, response):
            running = self._busy.locked()
            self.robot.request_stop("stop service")
            self.get_logger().warn("stop requested: arm halted")
            response.success = True
            response.message = "halted" if running else "halted (no task was running)"
            return response

        def destroy_node(self) -> None:
            try:
                try:
                    self.robot.request_stop("shutdown")
                except Exception:  # noqa: BLE001 - the context may be shut down already
                    pass
                if self._worker is not None:
                    self._worker.join(timeout=5.0)
                self.robot.disconnect()
            finally:
                super().destroy_node()

    return ExecutorNode()


def _peek_id(text: str) -> str:
    try:
        d = json.loads(text)
        return str(d.get("id", "")) if isinstance(d, dict) else ""
    except (ValueError, TypeError):
        return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the executor node (and its bridge) until SIGINT/SIGTERM.

    Returns:
        0 on a clean shutdown, 2 when it could not start (the reason on stderr).
    """
    from hardware.processes import run_node

    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    return run_node(make_node, "executor node", argv)


if __name__ == "__main__":
    raise SystemExit(main())

