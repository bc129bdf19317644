"""The bridge's configuration: one :class:`BridgeConfig` from a hardware preset plus overrides.

A *preset* is a YAML file in ``configs/hardware/`` (``panda``, ``fr3``, ``ur5e``, ``xarm7``) that
names the arm description (:func:`robot_skills.robots.get_arm`), the topics, the trajectory
controller, the gripper interface, the safety limits (:class:`robot_skills.control.safety.
SafetyLimits` keys), the minimum trust tier and the object pose topics. :func:`load_bridge_config`
reads one (by name or path) and applies overrides; every node of the bridge
(:class:`hardware.ros2_robot.Ros2Robot`, :mod:`hardware.executor_node`, ``rs-bridge``) resolves its
settings through it, so a launch file, ``rs-bridge`` and a Hydra config all mean the same thing.

Units: seconds, Hz, metres, radians; frames: the arm's base frame (``ArmDescription.base_frame``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

GRIPPER_KINDS = ("forward_command", "jtc", "gripper_action", "none")
"""``forward_command``: ``std_msgs/Float64MultiArray`` of finger joint position(s) to a forward
position controller; ``jtc``: a single-point ``trajectory_msgs/JointTrajectory`` on the finger
joint(s); ``gripper_action``: a ``control_msgs/GripperCommand`` action goal (only when
``control_msgs`` is importable); ``none``: no gripper is commanded."""

TRUST_TIERS = ("sim", "supervised", "autonomous")
"""Trust tiers in increasing order (``robot_skills.skills.skill_dir.TRUST_TIERS``)."""


def _pos_number(key: str, v: Any, allow_zero: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{key} must be a finite number {'>=' if allow_zero else '>'} 0, "
                         f"got {v!r}")
    return float(v)


@dataclass(frozen=True)
class GripperConfig:
    """How the gripper is commanded and read (a preset's ``gripper`` mapping).

    The jaw opening ``w`` in ``[0, gripper_max_width]`` (m) maps linearly to a joint position /
    command value: ``closed + (open - closed) * w / gripper_max_width``; reading the finger
    joints in ``JointState`` inverts it (mean over :attr:`joints`).

    Attributes:
        kind: one of :data:`GRIPPER_KINDS`.
        topic: command topic (forward_command / jtc) or action name (gripper_action).
        joints: finger joint names (in ``JointState`` and in commands).
        open / closed: joint position (or ``GripperCommand`` position) when open / closed.
        max_effort: ``GripperCommand`` force, N.
    """

    kind: str = "forward_command"
    topic: str = "/panda_gripper_controller/commands"
    joints: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
    open: float = 0.04
    closed: float = 0.0
    max_effort: float = 20.0

    def __post_init__(self) -> None:
        if self.kind not in GRIPPER_KINDS:
            raise ValueError(f"gripper.kind must be one of {GRIPPER_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "joints", tuple(str(j) for j in self.joints))
        for k in ("open", "closed"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"gripper.{k} must be a finite number, got {v!r}")
            object.__setattr__(self, k, float(v))
        if self.kind != "none" and self.open == self.closed:
            raise ValueError("gripper.open and gripper.closed must differ")
        object.__setattr__(self, "max_effort", _pos_number("gripper.max_effort", self.max_effort))

    def command(self, width: float, max_width: float) -> float:
        """Joint position / command value for jaw opening ``width`` (m, clipped)."""
        f = min(max(float(width) / max_width, 0.0), 1.0)
        return self.closed + (self.open - self.closed) * f

    def width(self, position: float, max_width: float) -> float:
        """Jaw opening (m) for a finger joint ``position``, clipped to ``[0, max_width]``."""
        f = (float(position) - self.closed) / (self.open - self.closed)
        return min(max(f, 0.0), 1.0) * max_width


@dataclass(frozen=True)
class BridgeConfig:
    """Everything the bridge needs to drive one arm: the keys of a ``configs/hardware`` preset.

    Attributes:
        arm: arm description name (:func:`robot_skills.robots.get_arm`).
        joint_names: ``(n,)`` arm joint names on the wire (``JointState``/``JointTrajectory``);
            None: the description's.
        base_frame: frame object poses must be in; None: the description's base frame.
        controller: the JointTrajectoryController's name (``trajectory_topic`` defaults to
            ``/<controller>/joint_trajectory``).
        trajectory_topic: its ``trajectory_msgs/JointTrajectory`` topic.
        joint_states_topic: ``sensor_msgs/JointState`` topic (arm and finger positions).
        gripper: a :class:`GripperConfig` (or its mapping; None: the Franka hand's forward
            command controller).
        gripper_topic: older spelling of ``gripper.topic`` (must agree when both are given).
        estop_topic: ``std_msgs/Bool`` e-stop topic; ``True`` engages (latched).
        estop_reset_service: ``std_srvs/Trigger`` service that releases the e-stop.
        control_hz: command rate, Hz.
        lookahead_periods: ``time_from_start`` of each streamed point, in control periods.
        state_timeout_s: joint states older than this hold the arm and stop the skill, s (the
            safety filter's ``stale_after_periods`` unless ``safety`` gives it).
        safety: the safety limits as a mapping (:meth:`SafetyLimits.from_dict` keys); missing
            joint/velocity/acceleration limits come from the arm description.
        min_trust_tier: the least trust tier a skill needs to run (:data:`TRUST_TIERS`).
        home_qpos: ``(n,)`` home configuration, rad (informational; the bridge never moves the
            arm on its own), or None.
        object_pose_topic: ``geometry_msgs/PoseStamped`` topic per object, a template with
            ``{name}``.
        object_pose_topics: explicit entity -> topic entries (win over the template).
        camera_topics: camera name -> ``sensor_msgs/Image`` topic (optional).
        connect_timeout_s: how long :meth:`Ros2Robot.connect` waits for the first joint state, s.
        node_name: the bridge node's name.
        preset: the preset this came from (for messages), or None.
    """

    arm: str = "panda"
    joint_names: tuple[str, ...] | None = None
    base_frame: str | None = None
    controller: str | None = None
    trajectory_topic: str | None = None
    joint_states_topic: str = "/joint_states"
    gripper: Any = None
    gripper_topic: str | None = None
    estop_topic: str = "/robot_skills/estop"
    estop_reset_service: str = "/robot_skills/reset_estop"
    control_hz: float = 20.0
    lookahead_periods: float = 1.0
    state_timeout_s: float = 0.15
    safety: Mapping[str, Any] = field(default_factory=dict)
    min_trust_tier: str = "supervised"
    home_qpos: tuple[float, ...] | None = None
    object_pose_topic: str = "/objects/{name}/pose"
    object_pose_topics: Mapping[str, str] = field(default_factory=dict)
    camera_topics: Mapping[str, str] = field(default_factory=dict)
    connect_timeout_s: float = 10.0
    node_name: str = "robot_skills_bridge"
    preset: str | None = None

    def __post_init__(self) -> None:
        from robot_skills.robots import get_arm

        desc = get_arm(self.arm)  # ValueError on an unknown arm
        if self.joint_names is not None:
            names = tuple(str(n) for n in self.joint_names)
            if len(names) != desc.n_joints:
                raise ValueError(f"joint_names: {self.arm} has {desc.n_joints} joints, got "
                                 f"{list(names)}")
            object.__setattr__(self, "joint_names", names)
        g = self.gripper
        if not isinstance(g, GripperConfig):
            g = dict(g or {})
            unknown = sorted(set(g) - {f.name for f in fields(GripperConfig)})
            if unknown:
                raise ValueError(f"unknown gripper key(s) {unknown}; known: "
                                 f"{[f.name for f in fields(GripperConfig)]}")
            if self.gripper_topic and "topic" not in g:
                g["topic"] = self.gripper_topic
            g = GripperConfig(**g)
        if self.gripper_topic and self.gripper_topic != g.topic:
            raise ValueError(f"gripper_topic {self.gripper_topic!r} differs from gripper.topic "
                             f"{g.topic!r}")
        object.__setattr__(self, "gripper", g)
        if self.trajectory_topic is None:
            ctrl = self.controller or f"{self.arm}_arm_controller"
            object.__setattr__(self, "trajectory_topic", f"/{ctrl}/joint_trajectory")
        for k in ("control_hz", "lookahead_periods", "state_timeout_s", "connect_timeout_s"):
            object.__setattr__(self, k, _pos_number(k, getattr(self, k)))
        if self.min_trust_tier not in TRUST_TIERS:
            raise ValueError(f"min_trust_tier must be one of {TRUST_TIERS}, got "
                             f"{self.min_trust_tier!r}")
        if "{name}" not in self.object_pose_topic:
            raise ValueError(f"object_pose_topic must contain '{{name}}', got "
                             f"{self.object_pose_topic!r}")
        if self.home_qpos is not None:
            h = tuple(float(x) for x in self.home_qpos)
            if len(h) != desc.n_joints or not all(map(math.isfinite, h)):
                raise ValueError(f"home_qpos must be {desc.n_joints} finite numbers, got "
                                 f"{self.home_qpos!r}")
            object.__setattr__(self, "home_qpos", h)
        for k in ("safety", "object_pose_topics", "camera_topics"):
            object.__setattr__(self, k, dict(getattr(self, k) or {}))
        self.safety_limits()  # refuse bad limits now, not at the first command

    # ------------------------------------------------------------------ derived
    @property
    def control_period(self) -> float:
        """Seconds per command."""
        return 1.0 / self.control_hz

    def description(self) -> Any:
        """The arm's :class:`~robot_skills.robots.description.ArmDescription`."""
        from robot_skills.robots import get_arm

        return get_arm(self.arm)

    def wire_joint_names(self) -> tuple[str, ...]:
        """Arm joint names on the wire."""
        return self.joint_names if self.joint_names is not None \
            else tuple(self.description().joint_names)

    def frame(self) -> str:
        """The frame object poses must be expressed in."""
        return self.base_frame or self.description().base_frame

    def safety_limits(self) -> Any:
        """The :class:`~robot_skills.control.safety.SafetyLimits`: the ``safety`` mapping over the
        arm description's joint, velocity and acceleration limits (and a 2 m box around the base
        when no workspace is given); ``stale_after_periods`` from :attr:`state_timeout_s` unless
        given.

        Raises:
            ValueError: naming the key (see :meth:`SafetyLimits.from_dict`).
        """
        from robot_skills.control.safety import SafetyLimits

        desc = self.description()
        d: dict[str, Any] = {
            "joint_lower": desc.joint_limits[:, 0], "joint_upper": desc.joint_limits[:, 1],
            "max_velocity": desc.velocity_limits, "max_acceleration": desc.acceleration_limits,
            "workspace_lower": [-2.0, -2.0, -2.0], "workspace_upper": [2.0, 2.0, 2.0],
            "stale_after_periods": max(1, math.ceil(self.state_timeout_s * self.control_hz
                                                    - 1e-9)),
        }
        d.update({str(k): v for k, v in self.safety.items()})
        return SafetyLimits.from_dict(d)

    def pose_topic(self, entity: str) -> str:
        """The ``PoseStamped`` topic of ``entity``."""
        return self.object_pose_topics.get(entity) or self.object_pose_topic.format(name=entity)

    def with_overrides(self, **overrides: Any) -> BridgeConfig:
        """A copy with ``overrides`` applied (None values are ignored; ``safety`` and ``gripper``
        mappings are merged key by key).

        Raises:
            ValueError: on an unknown key or a bad value.
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown bridge setting(s) {unknown}; known: {sorted(known)}")
        kw = {k: v for k, v in overrides.items() if v is not None}
        if "safety" in kw:
            kw["safety"] = {**self.safety, **dict(kw["safety"])}
        if "gripper" in kw and not isinstance(kw["gripper"], GripperConfig):
            base = {f.name: getattr(self.gripper, f.name) for f in fields(GripperConfig)}
            kw["gripper"] = GripperConfig(**{**base, **dict(kw["gripper"])})
        if "gripper_topic" in kw and "gripper" not in kw:
            kw["gripper"] = replace(self.gripper, topic=kw["gripper_topic"])
        if "gripper" in kw and "gripper_topic" not in kw and self.gripper_topic:
            kw["gripper_topic"] = kw["gripper"].topic
        if "controller" in kw and "trajectory_topic" not in kw:
            kw["trajectory_topic"] = f"/{kw['controller']}/joint_trajectory"
        return replace(self, **kw)


# ------------------------------------------------------------------------------------------
# presets


PACKAGE = "robot_skills_bridge"
"""The ROS 2 package (``launch/package.xml``) whose share directory holds the installed configs."""


def configs_root() -> Path:
    """The configs directory: ``$ROBOT_SKILLS_CONFIG_DIR``, else the repository's ``configs/``,
    else ``share/robot_skills_bridge/configs`` of a colcon install.

    Raises:
        FileNotFoundError: when none exists.
    """
    env = os.environ.get("ROBOT_SKILLS_CONFIG_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[1] / "configs"
    if repo.is_dir():
        return repo
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE)) / "configs"
    except (ImportError, LookupError, ValueError) as e:
        raise FileNotFoundError(f"no configs directory: set ROBOT_SKILLS_CONFIG_DIR ({e})") from None


def presets_dir() -> Path:
    """``<configs>/hardware`` (see :func:`configs_root`)."""
    return configs_root() / "hardware"


def preset_path(preset: str | os.PathLike) -> Path:
    """The file of a preset given by name (``panda``) or path.

    Raises:
        FileNotFoundError: naming the presets available.
    """
    p = Path(preset)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise FileNotFoundError(f"no hardware preset file {p}")
        return p
    f = presets_dir() / f"{preset}.yaml"
    if not f.is_file():
        known = sorted(x.stem for x in presets_dir().glob("*.yaml"))
        raise FileNotFoundError(f"unknown hardware preset {str(preset)!r}; known: {known}")
    return f


_IGNORED = {"_target_"}


def config_from_mapping(d: Mapping[str, Any], preset: str | None = None) -> BridgeConfig:
    """A :class:`BridgeConfig` from a preset's mapping (its keys are the field names; Hydra's
    ``_target_`` is ignored).

    Raises:
        ValueError: on unknown keys (named) or bad values.
    """
    known = {f.name for f in fields(BridgeConfig)}
    d = {str(k): v for k, v in dict(d).items() if k not in _IGNORED}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"hardware preset {preset or ''}: unknown key(s) {unknown}")
    return BridgeConfig(preset=preset, **d)


def load_bridge_config(preset: str | os.PathLike | None = None,
                       **overrides: Any) -> BridgeConfig:
    """Read a preset (name or path; None: the built-in Panda defaults) and apply ``overrides``
    (:class:`BridgeConfig` field names; None values ignored).

    Raises:
        FileNotFoundError: unknown preset. ValueError: bad keys or values (named).
    """
    if preset is None or preset == "":
        cfg = BridgeConfig()
    else:
        from robot_skills.utils.files import load_yaml_file

        path = preset_path(preset)
        data = load_yaml_file(path) or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"hardware preset {path}: expected a mapping, got "
                             f"{type(data).__name__}")
        cfg = config_from_mapping(data, preset=str(preset))
    return cfg.with_overrides(**overrides) if overrides else cfg
