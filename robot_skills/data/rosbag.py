"""Demonstrations from ROS 2: rosbag2 (MCAP) sessions <-> HDF5 demos, in pure Python.

A teleoperated or scripted session on an arm (or its sim twin) is recorded as a rosbag2 bag;
:func:`import_rosbag` turns it into the project's HDF5 demonstrations
(:class:`~robot_skills.data.hdf5.DemoWriter`: robomimic/LIBERO layout with skill segments) and
:func:`export_rosbag` writes HDF5 demos back out as an MCAP bag, so a round trip HDF5 -> MCAP ->
HDF5 reproduces actions, joint positions, object poses and segments. Both use the pure-Python
``rosbags`` package, imported when called (the core imports without it); no ROS install is needed.
:class:`BagWriter` publishes the topics of the contract into a bag (what the bridge publishes; with
``write_raw`` and rclpy ``raw=True`` subscriptions, a recorder).

The contract (``docs/rosbag.md`` has the full table): ``/joint_states``
(``sensor_msgs/msg/JointState``: arm joints, and the two finger joints whose sum is the gripper
width), ``/<arm>_arm_controller/joint_trajectory`` (``trajectory_msgs/msg/JointTrajectory``,
optional: the commanded targets), ``/robot_skills/action`` (``std_msgs/msg/Float64MultiArray``: the
applied :class:`~robot_skills.robot.Action`, 7 values, one ``layout.dim`` labelled
:data:`ACTION_LAYOUT_LABEL`), ``/objects/<name>/pose`` (``geometry_msgs/msg/PoseStamped`` in the
arm's base frame), ``/robot_skills/skill`` and ``/robot_skills/episode`` (``std_msgs/msg/String``
JSON events).

Time and resampling. A message's time is its ``header.stamp`` for stamped types (a zero stamp
falls back to the log time), the bag's log (receive) time for the unstamped ones (action, events);
``time_source="log"`` uses log time for everything. One demo step is one control period of the
action stream: actions are binned on a ``1 / control_hz`` grid from the episode's first action
(bin ``k`` holds the actions within half a period of ``t0 + k / hz``). One action in a bin is that
step (the bridge's case); several (a faster teleop stream) are composed into one (translations
summed, rotations composed in order, the last gripper command); an empty bin (a dropped message,
within the allowed gap) is a step without motion that keeps the gripper command. Each step's
observation is the zero-order hold of every other stream at the step's time (its bin's first
action): the latest message at or before it, at most ``max_gap_periods`` periods old. The
end-effector pose is the forward kinematics of the joint positions (the shared controller's arm
model, :func:`robot_skills.robots.get_arm`).

Episodes: with messages on the episode topic, each ``{"event": "start", ...}`` ..
``{"event": "end", "success": bool}`` pair is one demo (the start event's other keys, e.g.
``task``, ``seed``, ``language``, become the demo's attributes); actions outside every episode are
dropped (counted in the summary); an episode still open when the bag ends is kept, marked
``truncated``. Without that topic, one bag is one episode.

Skill segments: ``{"event": "start", "skill": "pick", "args": ["bowl_1"]}`` before the skill's
first action, ``{"event": "end", "skill": "pick", "args": ["bowl_1"], "success": true}`` after
its last; the segment covers the steps between them. Events (episode and skill) are matched to
steps within half a control period, since an event on its own topic may reach the recorder a
little before or after the action published beside it.

Errors (:class:`RosbagImportError`, a ``ValueError``) name the bag, the topic and the time: a
missing topic or joint, a wrong message type, stamps that go back in time, a stream silent for
more than ``max_gap_periods`` periods, a clock mismatch between stamps and log times, malformed
actions or events, a truncated or unreadable file. Nothing is written then.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.data.hdf5 import DemoReader, DemoWriter
from robot_skills.execution.recording import SkillSegment
from robot_skills.robot import ACTION_DIM
from robot_skills.utils.atomic import atomic_dir

ACTION_LABELS = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
"""Order of the 7 values of an action message (``Action.to_array``)."""
ACTION_LAYOUT_LABEL = ",".join(ACTION_LABELS)
"""Label of the single ``layout.dim`` entry of an action ``Float64MultiArray``."""

JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
FLOAT64_ARRAY = "std_msgs/msg/Float64MultiArray"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
STRING = "std_msgs/msg/String"

JOINT_TARGET_KEY = "joint_target"
"""``obs/<key>`` ``(T, n)`` of an imported demo (when the bag has the trajectory topic): the
commanded joint targets in force at each step (the last command before the step's action)."""

DEFAULT_START_NS = 1_700_000_000 * 10**9
"""Time of the first exported message (a fixed epoch, so an export is reproducible)."""

_NS = 10**9
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------- contract
@dataclass(frozen=True)
class RosbagTopics:
    """Topic names of a session (override any with ``topics={"joint_states": ...}``).

    Attributes:
        joint_states: ``sensor_msgs/msg/JointState`` of the arm and finger joints (several
            publishers may share it, e.g. arm and gripper: each joint is held on its own).
        action: ``std_msgs/msg/Float64MultiArray``, the applied action per control step.
        skill: ``std_msgs/msg/String`` JSON skill start/end events.
        episode: ``std_msgs/msg/String`` JSON episode start/end events (optional).
        trajectory: ``trajectory_msgs/msg/JointTrajectory`` commands (optional); None means
            ``/<arm>_arm_controller/joint_trajectory``.
        object_prefix: object poses are ``<object_prefix>/<name>/pose``
            (``geometry_msgs/msg/PoseStamped``).
    """

    joint_states: str = "/joint_states"
    action: str = "/robot_skills/action"
    skill: str = "/robot_skills/skill"
    episode: str = "/robot_skills/episode"
    trajectory: str | None = None
    object_prefix: str = "/objects"

    @classmethod
    def for_arm(cls, arm: str, overrides: Mapping[str, str] | None = None) -> RosbagTopics:
        """The defaults for ``arm`` with ``overrides`` applied.

        Raises:
            ValueError: on an unknown key or a name that is not an absolute topic.
        """
        t = cls(trajectory=f"/{arm}_arm_controller/joint_trajectory")
        overrides = dict(overrides or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown topic key(s) {unknown}; known: {sorted(known)}")
        for k, v in overrides.items():
            if not isinstance(v, str) or not v.startswith("/") or v.endswith("/") and v != "/":
                raise ValueError(f"topic {k}={v!r} must be an absolute ROS name like '/a/b'")
        t = replace(t, **overrides)
        object.__setattr__(t, "object_prefix", t.object_prefix.rstrip("/"))
        return t

    def object_topic(self, name: str) -> str:
        """The pose topic of entity ``name``."""
        return f"{self.object_prefix}/{name}/pose"

    def object_name(self, topic: str) -> str | None:
        """The entity a pose topic belongs to, or None for other topics."""
        head = self.object_prefix + "/"
        if topic.startswith(head) and topic.endswith("/pose"):
            name = topic[len(head):-len("/pose")]
            if name and "/" not in name:
                return name
        return None


@dataclass(frozen=True)
class ArmRosNames:
    """How an arm's joints and base frame are named on ROS 2.

    Attributes:
        arm_joints: the arm's joint names in ``JointState`` / ``JointTrajectory``, base to flange.
        finger_joints: the two finger joints; each is one finger's opening (m), the gripper width
            is their sum (franka_ros2's ``<arm>_finger_joint1/2``).
        base_frame: ``header.frame_id`` of object poses (the robot base frame).
    """

    arm_joints: tuple[str, ...]
    finger_joints: tuple[str, str]
    base_frame: str


def arm_ros_names(arm: str, joint_names: Sequence[str] | None = None,
                  base_frame: str | None = None) -> ArmRosNames:
    """ROS names for ``arm``: its description's joint names and base frame
    (:func:`robot_skills.robots.get_arm`: ``panda_joint1..7``, ``panda_link0`` ...) and, for the
    Franka arms (``panda``, ``fr3``), franka_ros2's finger joints ``<arm>_finger_joint1/2``;
    ``joint_names`` (arm joints then the two finger joints) and ``base_frame`` override them.

    Raises:
        ValueError: an unknown arm, a malformed ``joint_names``, or an arm without default finger
            joints and no ``joint_names``.
    """
    model = _arm_model(arm)
    n_arm = len(model.arm_joints)
    if joint_names is None:
        if arm not in _FRANKA_HANDS:
            raise ValueError(f"arm {arm!r} has no default finger joints: pass joint_names= its "
                             f"{n_arm} arm joints then the two finger joints (each one finger's "
                             "opening in m, the width being their sum)")
        arm_j = model.arm_joints
        fingers = (f"{arm}_finger_joint1", f"{arm}_finger_joint2")
    else:
        names = tuple(joint_names)
        if len(names) != n_arm + 2 or len(set(names)) != len(names):
            raise ValueError(f"joint_names must be {n_arm} distinct arm joints then 2 finger "
                             f"joints, got {list(names)}")
        arm_j, fingers = names[:n_arm], (names[n_arm], names[n_arm + 1])
    return ArmRosNames(arm_j, fingers, base_frame if base_frame is not None else model.base_frame)


_FRANKA_HANDS = ("panda", "fr3")


@dataclass(frozen=True)
class _ArmModel:
    arm_joints: tuple[str, ...]
    base_frame: str
    forward_kinematics: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


_ARM_MODELS: dict[str, _ArmModel] = {}


def _arm_model(arm: str) -> _ArmModel:
    """The arm's ROS joint names, base frame and forward kinematics (the shared controller's
    model of the arm alone), built once per arm."""
    if arm not in _ARM_MODELS:
        from robot_skills.control.diff_ik import DiffIKController

        try:
            from robot_skills.robots import get_arm
        except ImportError:  # a tree from before the arm registry: the Panda only
            if arm != "panda":
                raise ValueError(f"no kinematics for arm {arm!r}; known: ['panda']") from None
            ctrl = DiffIKController()
            _ARM_MODELS[arm] = _ArmModel(tuple(f"panda_joint{i}" for i in range(1, 8)),
                                         "panda_link0", ctrl.forward_kinematics)
        else:
            desc = get_arm(arm)
            ctrl = DiffIKController(arm=desc)
            _ARM_MODELS[arm] = _ArmModel(tuple(desc.joint_names), desc.base_frame,
                                         ctrl.forward_kinematics)
    return _ARM_MODELS[arm]


class RosbagImportError(ValueError):
    """A bag that cannot be imported; the message names the bag, topic and time.

    Attributes:
        bag: the bag's path.
        topic: the topic at fault, or None.
        time_ns: the message time at fault (ns), or None.
    """

    def __init__(self, bag: str | os.PathLike, message: str, topic: str | None = None,
                 time_ns: int | None = None, start_ns: int | None = None) -> None:
        self.bag, self.topic, self.time_ns = str(bag), topic, time_ns
        where = f"{bag}"
        if topic:
            where += f": topic {topic}"
        if time_ns is not None:
            where += f" at {_fmt_time(time_ns, start_ns)}"
        super().__init__(f"{where}: {message}")


def _fmt_time(t: int, start: int | None) -> str:
    s = f"t={t / _NS:.6f} s"
    if start is not None:
        s += f" ({(t - start) / _NS:+.3f} s from the bag's start)"
    return s


# ---------------------------------------------------------------------------------- quaternions
def _quat_from_rotvec(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, np.float64)
    a = float(np.linalg.norm(r))
    if a < 1e-12:
        return np.array([1.0, *(0.5 * r)])
    return np.concatenate([[math.cos(a / 2)], math.sin(a / 2) * r / a])


def _rotvec_from_quat(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    s = float(np.linalg.norm(q[1:]))
    if s < 1e-12:
        return 2.0 * q[1:]
    return 2.0 * math.atan2(s, q[0]) * q[1:] / s


def continuous_quaternions(q: np.ndarray) -> np.ndarray:
    """Flip the sign of quaternions so that consecutive ones lie in the same hemisphere.

    ``q`` and ``-q`` are the same rotation; a rotation matrix converted sample by sample (forward
    kinematics, ``mju_mat2Quat``) can switch between them mid-trajectory, while MuJoCo's frame
    sensors (the simulator's demonstrations) stay continuous. Args: ``q`` ``(T, 4)`` float
    ``(w, x, y, z)``. Returns a copy where ``dot(q[t], q[t-1]) >= 0`` for every ``t >= 1``; the
    first row is kept as given.
    """
    out = np.array(q, dtype=float, copy=True)
    for t in range(1, len(out)):
        if float(out[t] @ out[t - 1]) < 0.0:
            out[t] = -out[t]
    return out


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def compose_actions(actions: np.ndarray) -> np.ndarray:
    """One action equivalent to ``actions`` applied in order: translations summed, base-frame
    rotations composed (``R = exp(r_n) ... exp(r_1)``), the last gripper command."""
    actions = np.asarray(actions, np.float64).reshape(-1, ACTION_DIM)
    q = np.array([1.0, 0.0, 0.0, 0.0])
    for a in actions:
        q = _quat_mul(_quat_from_rotvec(a[3:6]), q)
    return np.concatenate([actions[:, :3].sum(axis=0), _rotvec_from_quat(q), actions[-1, 6:7]])


# ---------------------------------------------------------------------------------- reading
@dataclass
class _Series:
    """One stream: times (ns) and values, in bag order."""

    topic: str
    times: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    log_minus_stamp: list[int] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.times, np.int64), np.asarray(self.values, np.float64)


@dataclass
class _BagData:
    start_ns: int
    end_ns: int
    joints: dict[str, _Series]
    joint_vel: dict[str, list[float]]
    trajectory: _Series | None
    actions: _Series
    objects: dict[str, _Series]
    skill_events: list[tuple[int, dict[str, Any]]]
    episode_events: list[tuple[int, dict[str, Any]]] | None
    counts: dict[str, int]


def _stamp(msg: Any) -> int:
    st = msg.header.stamp
    return int(st.sec) * _NS + int(st.nanosec)


def _open_reader(bag: Path) -> Any:
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError as e:  # pragma: no cover - the rosbag extra is missing
        raise ImportError("importing rosbags needs the 'rosbags' package: "
                          "pip install -e '.[rosbag]'") from e
    if not bag.exists():
        raise FileNotFoundError(f"no bag at {bag}")
    return AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY))


def _read_bag(bag: Path, topics: RosbagTopics, names: ArmRosNames, time_source: str,
              max_clock_offset_s: float) -> _BagData:
    want_joints = set(names.arm_joints) | set(names.finger_joints)
    expected = {topics.joint_states: JOINT_STATE, topics.action: FLOAT64_ARRAY,
                topics.skill: STRING, topics.episode: STRING}
    if topics.trajectory:
        expected[topics.trajectory] = TRAJECTORY
    try:
        reader_cm = _open_reader(bag)
        with reader_cm as reader:
            start_ns = int(reader.start_time) if reader.connections else 0
            end_ns = int(reader.end_time) if reader.connections else 0
            conns = []
            present: dict[str, str] = {}
            for c in reader.connections:
                want = expected.get(c.topic)
                if want is None and topics.object_name(c.topic) is not None:
                    want = POSE_STAMPED
                if want is None:
                    continue
                if c.msgtype != want:
                    raise RosbagImportError(bag, f"has type {c.msgtype}, expected {want}",
                                            c.topic)
                present[c.topic] = c.msgtype
                conns.append(c)
            for t in (topics.joint_states, topics.action):
                if t not in present:
                    have = sorted({c.topic for c in reader.connections})
                    raise RosbagImportError(bag, f"missing (expected {expected[t]}); "
                                            f"the bag has topics {have}", t)
            data = _BagData(start_ns, end_ns, {}, {}, _Series(topics.trajectory or "")
                            if topics.trajectory in present else None,
                            _Series(topics.action), {}, [],
                            [] if topics.episode in present else None, {})
            for c, log_t, raw in reader.messages(connections=conns):
                data.counts[c.topic] = data.counts.get(c.topic, 0) + 1
                try:
                    msg = reader.deserialize(raw, c.msgtype)
                except Exception as e:  # noqa: BLE001 - a corrupt message, named
                    raise RosbagImportError(bag, f"message does not deserialise as {c.msgtype}: "
                                            f"{type(e).__name__}: {e}", c.topic, log_t,
                                            start_ns) from e
                _take(data, bag, topics, names, want_joints, c.topic, int(log_t), msg,
                      time_source)
    except RosbagImportError:
        raise
    except (FileNotFoundError, ImportError):
        raise
    except Exception as e:  # noqa: BLE001 - rosbags' reader errors (truncated, corrupt files)
        raise RosbagImportError(bag, f"cannot read the bag ({type(e).__name__}: {e}); is it "
                                "a complete rosbag2 (MCAP or sqlite3) recording? (an MCAP file "
                                "whose recorder was killed lacks its end: `mcap recover` "
                                "rebuilds it)") from e
    _check_times(bag, data, time_source, max_clock_offset_s)
    return data


def _take(data: _BagData, bag: Path, topics: RosbagTopics, names: ArmRosNames,
          want_joints: set[str], topic: str, log_t: int, msg: Any, time_source: str) -> None:
    def when(m: Any) -> int:
        if time_source == "log":
            return log_t
        s = _stamp(m)
        return s if s > 0 else log_t

    if topic == topics.joint_states:
        t = when(msg)
        pos = np.asarray(msg.position, np.float64)
        vel = np.asarray(msg.velocity, np.float64)
        if len(pos) != len(msg.name) or (len(vel) and len(vel) != len(msg.name)):
            raise RosbagImportError(bag, f"JointState with {len(msg.name)} names, {len(pos)} "
                                    f"positions, {len(vel)} velocities", topic, t, data.start_ns)
        for i, n in enumerate(msg.name):
            if n not in want_joints:
                continue
            s = data.joints.setdefault(n, _Series(f"{topic} [{n}]"))
            s.times.append(t)
            s.values.append(float(pos[i]))
            s.log_minus_stamp.append(log_t - t)
            data.joint_vel.setdefault(n, []).append(float(vel[i]) if len(vel) else 0.0)
    elif topic == topics.trajectory and data.trajectory is not None:
        t = when(msg)
        if not msg.points:
            raise RosbagImportError(bag, "JointTrajectory without points", topic, t,
                                    data.start_ns)
        idx = {n: i for i, n in enumerate(msg.joint_names)}
        missing = [n for n in names.arm_joints if n not in idx]
        positions = np.asarray(msg.points[-1].positions, np.float64)
        if missing or len(positions) != len(msg.joint_names):
            raise RosbagImportError(bag, f"JointTrajectory lacks arm joints {missing} (has "
                                    f"{list(msg.joint_names)}) or its last point's positions",
                                    topic, t, data.start_ns)
        data.trajectory.times.append(t)
        data.trajectory.values.append(positions[[idx[n] for n in names.arm_joints]])
        data.trajectory.log_minus_stamp.append(log_t - t)
    elif topic == topics.action:
        a = np.asarray(msg.data, np.float64)
        dims = list(msg.layout.dim)
        if a.shape != (ACTION_DIM,) or (dims and (len(dims) != 1
                                                  or dims[0].label != ACTION_LAYOUT_LABEL)):
            got = [d.label for d in dims]
            raise RosbagImportError(bag, f"an action is {ACTION_DIM} values laid out "
                                    f"[{ACTION_LAYOUT_LABEL!r}]; got {a.size} values, layout "
                                    f"labels {got}", topic, log_t, data.start_ns)
        if not np.all(np.isfinite(a)):
            raise RosbagImportError(bag, f"action contains NaN/inf: {a.tolist()}", topic, log_t,
                                    data.start_ns)
        data.actions.times.append(log_t)
        data.actions.values.append(a)
    elif topic in (topics.skill, topics.episode):
        try:
            ev = json.loads(msg.data)
        except json.JSONDecodeError as e:
            raise RosbagImportError(bag, f"event is not JSON ({e}): {msg.data[:200]!r}", topic,
                                    log_t, data.start_ns) from e
        if not isinstance(ev, dict) or ev.get("event") not in ("start", "end"):
            raise RosbagImportError(bag, "an event is a JSON object with \"event\": \"start\" | "
                                    f"\"end\"; got {msg.data[:200]!r}", topic, log_t,
                                    data.start_ns)
        if topic == topics.skill:
            data.skill_events.append((log_t, ev))
        elif data.episode_events is not None:
            data.episode_events.append((log_t, ev))
    else:
        name = topics.object_name(topic)
        if name is None:
            return
        t = when(msg)
        frame = msg.header.frame_id
        if frame and frame != names.base_frame:
            raise RosbagImportError(bag, f"pose in frame {frame!r}, expected the base frame "
                                    f"{names.base_frame!r} (pass base_frame=... if the base "
                                    "frame has another name)", topic, t, data.start_ns)
        p, o = msg.pose.position, msg.pose.orientation
        s = data.objects.setdefault(name, _Series(topic))
        s.times.append(t)
        s.values.append([p.x, p.y, p.z, o.w, o.x, o.y, o.z])
        s.log_minus_stamp.append(log_t - t)


def _check_times(bag: Path, data: _BagData, time_source: str, max_clock_offset_s: float) -> None:
    if time_source != "header":
        return
    streams = [*data.joints.values(), *data.objects.values()]
    if data.trajectory is not None:
        streams.append(data.trajectory)
    for s in streams:
        t = np.asarray(s.times, np.int64)
        back = np.flatnonzero(np.diff(t) < 0)
        if back.size:
            i = int(back[0]) + 1
            raise RosbagImportError(bag, f"non-monotonic stamps: header stamp goes back "
                                    f"{(t[i - 1] - t[i]) / _NS:.6f} s (previous message at "
                                    f"{_fmt_time(int(t[i - 1]), data.start_ns)})", s.topic,
                                    int(t[i]), data.start_ns)
        if s.log_minus_stamp:
            off = float(np.median(s.log_minus_stamp)) / _NS
            if abs(off) > max_clock_offset_s:
                raise RosbagImportError(
                    bag, f"header stamps are {off:+.3f} s from the bag's log times (median): "
                    "the publisher's clock is not the recorder's; use time_source='log' "
                    f"(--time-source log) or raise max_clock_offset_s ({max_clock_offset_s:g})",
                    s.topic, int(s.times[0]), data.start_ns)


# ---------------------------------------------------------------------------------- episodes
@dataclass
class _Episode:
    start: int
    end: int
    attrs: dict[str, Any]
    truncated: bool = False
    events_from: float = -math.inf  # skill events in [events_from, events_to) are this episode's
    events_to: float = math.inf


def _episodes(bag: Path, data: _BagData, topic: str) -> list[_Episode]:
    if data.episode_events is None:
        # one bag, one episode: every action and event of the bag
        return [_Episode(data.start_ns, data.end_ns, {})] if data.actions.times else []
    out: list[_Episode] = []
    cur: _Episode | None = None
    for t, ev in data.episode_events:
        if ev["event"] == "start":
            if cur is not None:
                raise RosbagImportError(bag, "episode start while the episode started at "
                                        f"{_fmt_time(cur.start, data.start_ns)} has no end",
                                        topic, t, data.start_ns)
            attrs = {k: v for k, v in ev.items() if k != "event"}
            cur = _Episode(t, t, attrs)
        else:
            if cur is None:
                raise RosbagImportError(bag, "episode end without a start", topic, t,
                                        data.start_ns)
            if "success" in ev:
                if not isinstance(ev["success"], bool):
                    raise RosbagImportError(bag, f"episode end 'success' must be true/false, "
                                            f"got {ev['success']!r}", topic, t, data.start_ns)
                cur.attrs["success"] = ev["success"]
            cur.end = t
            out.append(cur)
            cur = None
    if cur is not None:  # a recording cut off mid-episode: keep what was recorded
        cur.end = data.end_ns
        cur.truncated = True
        cur.attrs["truncated"] = True
        out.append(cur)
    for a, b in zip(out, out[1:]):  # events between two episodes: split at the midpoint
        a.events_to = b.events_from = (a.end + b.start) / 2
    return out


def _bin_actions(bag: Path, topic: str, times: np.ndarray, values: np.ndarray, dt: int,
                 max_gap: int, start_ns: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Steps on the control grid: ``(step_times, actions, composed, filled)``."""
    if len(times) > 1:
        gaps = np.diff(times)
        big = np.flatnonzero(gaps > max_gap)
        if big.size:
            i = int(big[0])
            raise RosbagImportError(bag, f"gap of {gaps[i] / _NS:.3f} s between actions, more "
                                    f"than {max_gap / dt:g} control periods of "
                                    f"{dt / _NS:g} s", topic, int(times[i]), start_ns)
        period = float(np.median(gaps))
        if period > 1.5 * dt:
            raise RosbagImportError(bag, f"the action stream runs at {_NS / period:.3g} Hz, "
                                    f"slower than control_hz={_NS / dt:g}; pass the control "
                                    "rate it was recorded at", topic, int(times[0]), start_ns)
    k = (times - times[0] + dt // 2) // dt
    n = int(k[-1]) + 1
    step_times = times[0] + np.arange(n, dtype=np.int64) * dt
    actions = np.zeros((n, ACTION_DIM), np.float64)
    composed = filled = 0
    first = np.searchsorted(k, np.arange(n), side="left")
    last = np.searchsorted(k, np.arange(n), side="right")
    grip = values[0, 6]
    for j in range(n):
        lo, hi = int(first[j]), int(last[j])
        if hi - lo == 1:
            actions[j] = values[lo]
            step_times[j] = times[lo]
        elif hi - lo > 1:
            actions[j] = compose_actions(values[lo:hi])
            step_times[j] = times[lo]
            composed += 1
        else:  # a dropped message: the arm held still, the gripper kept its command
            actions[j, 6] = grip
            filled += 1
        grip = actions[j, 6]
    return step_times, actions, composed, filled


def _hold(bag: Path, series: _Series, query: np.ndarray, max_gap: int, start_ns: int,
          values: np.ndarray | None = None) -> np.ndarray:
    """Zero-order hold: the latest value at or before each query time, checked for staleness."""
    times = np.asarray(series.times, np.int64)
    vals = np.asarray(series.values if values is None else values, np.float64)
    idx = np.searchsorted(times, query, side="right") - 1
    if idx[0] < 0:
        first = _fmt_time(int(times[0]), start_ns) if len(times) else "never"
        raise RosbagImportError(bag, f"no message at or before the step (first message: {first})",
                                series.topic, int(query[0]), start_ns)
    age = query - times[idx]
    stale = np.flatnonzero(age > max_gap)
    if stale.size:
        j = int(stale[0])
        raise RosbagImportError(bag, f"gap: the latest message is {age[j] / _NS:.3f} s old "
                                f"(from {_fmt_time(int(times[idx[j]]), start_ns)}), more than "
                                "max_gap_periods control periods", series.topic, int(query[j]),
                                start_ns)
    return vals[idx]


def _segments(bag: Path, data: _BagData, topic: str, ep: _Episode, step_times: np.ndarray,
              dt: int) -> list[SkillSegment]:
    segs: list[SkillSegment] = []
    open_: tuple[int, str, tuple[str, ...], SkillSegment] | None = None
    T = len(step_times)

    def close(t_end: int, success: bool) -> None:
        # within half a period: an event that overtook (or trailed) its action on another topic
        # still lands on the right step
        assert open_ is not None
        t0, skill, args, geometry = open_
        s = int(np.searchsorted(step_times, t0 - dt // 2, side="left"))
        e = int(np.searchsorted(step_times, t_end + dt // 2, side="right"))
        if e > s:
            segs.append(SkillSegment(s, min(e, T), skill, args, success, geometry.arg_offsets,
                                     geometry.arg_sizes))

    for t, ev in data.skill_events:
        if not ep.events_from <= t < ep.events_to:
            continue
        skill = ev.get("skill", ev.get("name"))
        args = ev.get("args", [])
        if not isinstance(skill, str) or not skill or isinstance(args, str) or not all(
                isinstance(a, str) for a in args):
            raise RosbagImportError(bag, "a skill event needs \"skill\": str and \"args\": "
                                    f"[str, ...]; got {json.dumps(ev)[:200]}", topic, t,
                                    data.start_ns)
        args = tuple(args)
        if ev["event"] == "start":
            if open_ is not None:
                raise RosbagImportError(bag, f"skill {skill}{list(args)} starts while "
                                        f"{open_[1]}{list(open_[2])} (started at "
                                        f"{_fmt_time(open_[0], data.start_ns)}) has not ended",
                                        topic, t, data.start_ns)
            try:   # the start event's "arg_offsets"/"arg_sizes", checked as a stored segment's
                geometry = SkillSegment.from_dict({"start": 0, "end": 1, "skill": skill,
                                                   "args": list(args),
                                                   "arg_offsets": ev.get("arg_offsets"),
                                                   "arg_sizes": ev.get("arg_sizes")})
            except ValueError as e:
                raise RosbagImportError(bag, str(e), topic, t, data.start_ns) from e
            open_ = (t, skill, args, geometry)
        else:
            if open_ is None or (open_[1], open_[2]) != (skill, args):
                raise RosbagImportError(bag, f"skill end {skill}{list(args)} does not match "
                                        "the open skill "
                                        f"{'none' if open_ is None else open_[1] + str(list(open_[2]))}",
                                        topic, t, data.start_ns)
            if not isinstance(ev.get("success"), bool):
                raise RosbagImportError(bag, "a skill end event needs \"success\": true/false; "
                                        f"got {json.dumps(ev)[:200]}", topic, t, data.start_ns)
            close(t, ev["success"])
            open_ = None
    if open_ is not None:  # cut off with the episode: not known to have succeeded
        close(int(step_times[-1]), False)
    return segs


# ---------------------------------------------------------------------------------- import
@dataclass
class _Imported:
    obs: dict[str, np.ndarray]
    poses: dict[str, np.ndarray]
    actions: np.ndarray
    segments: list[SkillSegment]
    attrs: dict[str, Any]
    info: dict[str, Any]


def _in_episode(times: np.ndarray, ep: _Episode, dt: int) -> np.ndarray:
    """Actions of the episode: within its start/end events, give or take half a period (an
    event on its own topic may arrive a little before or after the action sent beside it)."""
    return (times >= ep.start - dt // 2) & (times <= ep.end + dt // 2)


def _import_episode(bag: Path, data: _BagData, topics: RosbagTopics, names: ArmRosNames,
                    fk: Callable, ep: _Episode, dt: int, max_gap: int) -> _Imported | None:
    at, av = data.actions.arrays()
    sel = _in_episode(at, ep, dt)
    if not sel.any():
        return None
    step_times, actions, composed, filled = _bin_actions(bag, topics.action, at[sel], av[sel],
                                                         dt, max_gap, data.start_ns)
    missing = [n for n in (*names.arm_joints, *names.finger_joints) if n not in data.joints]
    if missing:
        have = sorted(data.joints)
        raise RosbagImportError(bag, f"JointState messages never name joints {missing} "
                                f"(named: {have}; pass joint_names=... for other names)",
                                topics.joint_states)
    q = np.stack([_hold(bag, data.joints[n], step_times, max_gap, data.start_ns)
                  for n in names.arm_joints], axis=1)
    qd = np.stack([_hold(bag, data.joints[n], step_times, max_gap, data.start_ns,
                         np.asarray(data.joint_vel[n])) for n in names.arm_joints], axis=1)
    width = sum(_hold(bag, data.joints[n], step_times, max_gap, data.start_ns)
                for n in names.finger_joints)
    ee = [fk(qi) for qi in q]
    obs = {"joint_pos": q, "joint_vel": qd, "ee_pos": np.stack([p for p, _ in ee]),
           "ee_quat": continuous_quaternions(np.stack([o for _, o in ee])),
           "gripper_width": width.reshape(-1, 1)}
    if data.trajectory is not None and data.trajectory.times:
        obs[JOINT_TARGET_KEY] = _hold(bag, data.trajectory, step_times, max_gap, data.start_ns)
    poses = {}
    for name, s in sorted(data.objects.items()):
        if not _NAME_RE.match(name):
            raise RosbagImportError(bag, f"entity name {name!r} is not a valid demo key",
                                    s.topic)
        poses[name] = _hold(bag, s, step_times, max_gap, data.start_ns)
    segments = _segments(bag, data, topics.skill, ep, step_times, dt)
    attrs = {k: v for k, v in ep.attrs.items()
             if isinstance(k, str) and k not in ("skill_segments", "num_samples")}
    attrs.update({"source_bag": str(bag), "source_start_ns": int(step_times[0])})
    info = {"steps": len(step_times), "start_s": (int(step_times[0]) - data.start_ns) / _NS,
            "duration_s": (int(step_times[-1]) - int(step_times[0])) / _NS,
            "segments": len(segments), "composed_steps": composed, "filled_steps": filled,
            "actions": int(sel.sum()), "truncated": ep.truncated}
    for k in ("task", "seed", "success"):
        if k in ep.attrs:
            info[k] = ep.attrs[k]
    return _Imported(obs, poses, actions, segments, attrs, info)


def import_rosbag(bag_path: str | os.PathLike | Sequence[str | os.PathLike],
                  out_hdf5: str | os.PathLike, *, arm: str = "panda", control_hz: float = 20.0,
                  topics: Mapping[str, str] | None = None,
                  joint_names: Sequence[str] | None = None, base_frame: str | None = None,
                  time_source: str = "header", max_gap_periods: float = 5.0,
                  max_clock_offset_s: float = 1.0, env_args: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """Import rosbag2 recordings (MCAP or sqlite3; a bag directory or one ``.mcap`` file) as
    HDF5 demonstrations (see the module docstring for topics, timing and episodes).

    Args:
        bag_path: one bag or several (their episodes are written in order).
        out_hdf5: the HDF5 file to write (atomically, replacing any previous one).
        arm: an arm of :func:`robot_skills.robots.get_arm` (``panda``, ``fr3``, ...): its ROS
            joint names, base frame and forward kinematics.
        control_hz: the demos' control rate, Hz.
        topics: topic-name overrides, keys of :class:`RosbagTopics`.
        joint_names: ROS names of the arm joints then the two finger joints (default
            :func:`arm_ros_names`).
        base_frame: ``frame_id`` object poses must have (default: the arm description's,
            ``panda_link0``); an empty frame id is taken as the base frame.
        time_source: ``"header"`` (stamped messages by their header stamp) or ``"log"``.
        max_gap_periods: the longest a stream may go without a message, in control periods.
        max_clock_offset_s: with ``"header"``, the largest median difference allowed between a
            topic's header stamps and its log times (two clocks that disagree are refused).
        env_args: extra ``env_args`` for the file.

    Returns:
        A summary: ``out``, ``demos``, ``steps``, and per bag its ``episodes`` (demo, steps,
        start_s, duration_s, segments, composed/filled steps, truncated, task/seed/success when
        known), ``dropped_actions`` (outside every episode), ``empty_episodes`` and message
        ``counts`` per topic.

    Raises:
        RosbagImportError: a bag that cannot be imported (names bag, topic and time); nothing is
            written.
        ValueError: bad arguments. FileNotFoundError: a missing bag or output directory.
        ImportError: ``rosbags`` is not installed.
    """
    bags = ([Path(bag_path)] if isinstance(bag_path, (str, os.PathLike))
            else [Path(b) for b in bag_path])
    if not bags:
        raise ValueError("import_rosbag needs at least one bag")
    if not (math.isfinite(control_hz) and control_hz > 0):
        raise ValueError(f"control_hz must be > 0, got {control_hz}")
    if not max_gap_periods >= 1:
        raise ValueError(f"max_gap_periods must be >= 1, got {max_gap_periods}")
    if time_source not in ("header", "log"):
        raise ValueError(f"time_source must be 'header' or 'log', got {time_source!r}")
    names = arm_ros_names(arm, joint_names, base_frame)
    fk = _arm_model(arm).forward_kinematics
    t = RosbagTopics.for_arm(arm, topics)
    dt = round(_NS / control_hz)
    max_gap = round(max_gap_periods * dt)
    out = Path(out_hdf5)
    summary: dict[str, Any] = {"out": str(out), "arm": arm, "control_hz": float(control_hz),
                               "time_source": time_source, "bags": []}
    episodes: list[_Imported] = []
    for bag in bags:
        data = _read_bag(bag, t, names, time_source, max_clock_offset_s)
        eps = _episodes(bag, data, t.episode)
        info: dict[str, Any] = {"bag": str(bag), "episodes": [], "empty_episodes": 0,
                                "counts": dict(sorted(data.counts.items()))}
        at = np.asarray(data.actions.times, np.int64)
        inside = np.zeros(len(at), bool)
        for ep in eps:
            inside |= _in_episode(at, ep, dt)
            imp = _import_episode(bag, data, t, names, fk, ep, dt, max_gap)
            if imp is None:
                info["empty_episodes"] += 1
                continue
            episodes.append(imp)
            info["episodes"].append(imp.info)
        info["dropped_actions"] = int((~inside).sum())
        summary["bags"].append(info)
    if not episodes:
        raise RosbagImportError(bags[0] if len(bags) == 1 else ", ".join(map(str, bags)),
                                "no episode with actions to import", t.action)
    env = {"source": "rosbag2", "arm": arm, "control_hz": float(control_hz),
           "bags": [str(b) for b in bags], **dict(env_args or {})}
    with DemoWriter(out, env_args=env) as w:
        for imp, ep_info in zip(episodes, [e for b in summary["bags"] for e in b["episodes"]]):
            ep_info["demo"] = w.add_demo_arrays(imp.obs, imp.poses, imp.actions,
                                                skill_segments=imp.segments, attrs=imp.attrs)
    summary["demos"] = len(episodes)
    summary["steps"] = int(sum(len(e.actions) for e in episodes))
    return summary


# ---------------------------------------------------------------------------------- export
def _typestore(distro: str) -> Any:
    from rosbags.typesys import Stores, get_typestore

    stores = {"humble": Stores.ROS2_HUMBLE, "iron": Stores.ROS2_IRON, "jazzy": Stores.ROS2_JAZZY}
    if distro not in stores:
        raise ValueError(f"distro must be one of {sorted(stores)}, got {distro!r}")
    return get_typestore(stores[distro])


class BagWriter:
    """Publishes a session into a rosbag2 MCAP bag the way the bridge does (see module docstring).

    Used by :func:`export_rosbag`; also what a recorder, or a test standing in for the bridge,
    uses to emit the topics of this contract. Times are ints in ns; every message is logged at
    its time (stamped messages carry it in their header too) unless ``log_ns`` gives the
    recorder's receive time apart.

    Args:
        path: the bag directory to create (must not exist).
        arm / joint_names / base_frame / topics: as :func:`import_rosbag`.
        distro: message definitions embedded in the bag: ``humble``, ``iron`` or ``jazzy``.
    """

    def __init__(self, path: str | os.PathLike, *, arm: str = "panda",
                 joint_names: Sequence[str] | None = None, base_frame: str | None = None,
                 topics: Mapping[str, str] | None = None, distro: str = "jazzy") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.names = arm_ros_names(arm, joint_names, base_frame)
        self.topics = RosbagTopics.for_arm(arm, topics)
        self.ts = _typestore(distro)
        self.path = Path(path)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._conns: dict[str, Any] = {}
        self._m = self.ts.types

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.close()

    def write(self, topic: str, msgtype: str, t_ns: int, msg: Any) -> None:
        """Write one message (any type) at ``t_ns``."""
        self.write_raw(topic, msgtype, t_ns, self.ts.serialize_cdr(msg, msgtype))

    def write_raw(self, topic: str, msgtype: str, t_ns: int, data: bytes | memoryview) -> None:
        """Write one already serialised (CDR) message, e.g. what an rclpy subscription created
        with ``raw=True`` receives: a recorder is a raw subscriber per topic plus this."""
        c = self._conns.get(topic)
        if c is None:
            c = self._conns[topic] = self._writer.add_connection(topic, msgtype,
                                                                 typestore=self.ts)
        elif c.msgtype != msgtype:
            raise ValueError(f"{topic} was written as {c.msgtype}, now {msgtype}")
        self._writer.write(c, int(t_ns), data)

    def _header(self, t_ns: int, frame: str = "") -> Any:
        m = self._m
        return m["std_msgs/msg/Header"](
            stamp=m["builtin_interfaces/msg/Time"](sec=int(t_ns // _NS), nanosec=int(t_ns % _NS)),
            frame_id=frame)

    def joint_states(self, t_ns: int, q: np.ndarray, qd: np.ndarray | None,
                     gripper_width: float | None, *, log_ns: int | None = None) -> None:
        """Arm joints and the two fingers (each at half the width; None: arm joints only)."""
        q = np.asarray(q, np.float64)
        qd = np.zeros_like(q) if qd is None else np.asarray(qd, np.float64)
        names = list(self.names.arm_joints)
        if gripper_width is not None:
            half = float(gripper_width) / 2.0
            names += self.names.finger_joints
            q, qd = np.concatenate([q, [half, half]]), np.concatenate([qd, [0.0, 0.0]])
        self.joint_state_msg(t_ns, names, q, qd, log_ns=log_ns)

    def joint_state_msg(self, t_ns: int, names: Sequence[str], q: np.ndarray,
                        qd: np.ndarray | None = None, *, log_ns: int | None = None) -> None:
        """Any joints (e.g. the gripper's own ``JointState``, as franka_ros2 publishes it)."""
        msg = self._m[JOINT_STATE](
            header=self._header(t_ns), name=list(names), position=np.asarray(q, np.float64),
            velocity=np.zeros(0) if qd is None else np.asarray(qd, np.float64),
            effort=np.zeros(0))
        self.write(self.topics.joint_states, JOINT_STATE, t_ns if log_ns is None else log_ns, msg)

    def trajectory(self, t_ns: int, q_target: np.ndarray, period_s: float, *,
                   log_ns: int | None = None) -> None:
        """A one-point JointTrajectory (the controller's command for the next period)."""
        m = self._m
        d = m["builtin_interfaces/msg/Duration"](sec=int(period_s), nanosec=int(
            round((period_s - int(period_s)) * _NS)))
        pt = m["trajectory_msgs/msg/JointTrajectoryPoint"](
            positions=np.asarray(q_target, np.float64), velocities=np.zeros(0),
            accelerations=np.zeros(0), effort=np.zeros(0), time_from_start=d)
        msg = m[TRAJECTORY](header=self._header(t_ns), joint_names=list(self.names.arm_joints),
                            points=[pt])
        self.write(self.topics.trajectory or "", TRAJECTORY, t_ns if log_ns is None else log_ns,
                   msg)

    def action(self, t_ns: int, action: np.ndarray) -> None:
        """The applied action, ``[dx, dy, dz, drx, dry, drz, gripper]``."""
        m = self._m
        layout = m["std_msgs/msg/MultiArrayLayout"](
            dim=[m["std_msgs/msg/MultiArrayDimension"](label=ACTION_LAYOUT_LABEL,
                                                       size=ACTION_DIM, stride=ACTION_DIM)],
            data_offset=0)
        a = np.asarray(action, np.float64).reshape(ACTION_DIM)
        self.write(self.topics.action, FLOAT64_ARRAY, t_ns, m[FLOAT64_ARRAY](layout=layout,
                                                                               data=a))

    def object_pose(self, t_ns: int, name: str, pose: np.ndarray, *,
                    log_ns: int | None = None) -> None:
        """Entity ``name``'s pose ``[x, y, z, qw, qx, qy, qz]`` in the base frame."""
        if not _NAME_RE.match(name):
            raise ValueError(f"entity name {name!r} is not a ROS topic name token")
        m = self._m
        p = np.asarray(pose, np.float64)
        msg = m[POSE_STAMPED](header=self._header(t_ns, self.names.base_frame), pose=m[
            "geometry_msgs/msg/Pose"](
            position=m["geometry_msgs/msg/Point"](x=p[0], y=p[1], z=p[2]),
            orientation=m["geometry_msgs/msg/Quaternion"](x=p[4], y=p[5], z=p[6], w=p[3])))
        self.write(self.topics.object_topic(name), POSE_STAMPED,
                   t_ns if log_ns is None else log_ns, msg)

    def event(self, topic: str, t_ns: int, event: Mapping[str, Any]) -> None:
        """A JSON event on ``topic`` (``std_msgs/msg/String``)."""
        self.write(topic, STRING, t_ns, self._m[STRING](data=json.dumps(dict(event),
                                                                         default=_json_default)))

    def skill_event(self, t_ns: int, event: str, skill: str, args: Sequence[str],
                    success: bool | None = None,
                    arg_offsets: Sequence[Sequence[float] | None] = (),
                    arg_sizes: Sequence[Sequence[float] | None] = ()) -> None:
        """``start`` (before the skill's first action; with ``arg_offsets`` / ``arg_sizes`` when
        some entry is set, see :class:`SkillSegment`) or ``end`` (after its last)."""
        ev: dict[str, Any] = {"event": event, "skill": skill, "args": list(args)}
        if event == "end":
            ev["success"] = bool(success)
        else:
            for key, vals in (("arg_offsets", arg_offsets), ("arg_sizes", arg_sizes)):
                if any(o is not None for o in vals):
                    ev[key] = [None if o is None else [float(v) for v in o] for o in vals]
        self.event(self.topics.skill, t_ns, ev)

    def episode_event(self, t_ns: int, event: str, **attrs: Any) -> None:
        """``start`` (with the demo's attributes) or ``end`` (with ``success``)."""
        self.event(self.topics.episode, t_ns, {"event": event, **attrs})


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def export_rosbag(hdf5_path: str | os.PathLike, bag_path: str | os.PathLike, *,
                  arm: str = "panda", control_hz: float | None = None,
                  topics: Mapping[str, str] | None = None,
                  joint_names: Sequence[str] | None = None, base_frame: str | None = None,
                  distro: str = "jazzy", start_ns: int = DEFAULT_START_NS,
                  episode_gap_s: float = 1.0, demos: Sequence[str] | None = None,
                  overwrite: bool = False) -> dict[str, Any]:
    """Write HDF5 demonstrations as a rosbag2 MCAP bag, one episode per demo (the reverse of
    :func:`import_rosbag`; the round trip reproduces actions, joint positions and velocities,
    gripper width, object poses, skill segments, commanded targets and the demos' attributes).

    Step ``k`` of a demo is at ``t_k = t_0 + k / control_hz``: joint states, object poses and
    (when the demo has ``obs/joint_target``) the trajectory command are stamped ``t_k``, then the
    skill start events of segments starting at ``k``, the action, and the end events of segments
    ending after ``k``, all logged at ``t_k``. Episodes are ``episode_gap_s`` apart. Rewards,
    dones and simulator states are not carried.

    Args:
        hdf5_path: demos (:class:`DemoReader`).
        bag_path: the bag directory to write (atomically: built beside, then moved in).
        arm / topics / joint_names / base_frame: as :func:`import_rosbag`.
        control_hz: step rate; default the file's ``env_args["control_hz"]``, else 20.
        distro: message definitions embedded in the bag (``humble``, ``iron``, ``jazzy``).
        start_ns: time of the first step, ns.
        episode_gap_s: silence between two episodes, s.
        demos: which demos (default all, in order).
        overwrite: replace an existing ``bag_path``.

    Returns:
        ``{"bag", "episodes", "steps", "control_hz"}``.

    Raises:
        FileExistsError: ``bag_path`` exists and not ``overwrite``. ValueError: bad arguments or
            entity names that are not ROS name tokens. ImportError: no ``rosbags``.
    """
    bag = Path(bag_path)
    if bag.exists() and not overwrite:
        raise FileExistsError(f"{bag} exists (pass overwrite=True to replace it)")
    if not episode_gap_s > 0:
        raise ValueError(f"episode_gap_s must be > 0, got {episode_gap_s}")
    with DemoReader(hdf5_path) as r, _h5_extras(hdf5_path) as extras:
        hz = float(control_hz if control_hz is not None
                   else r.env_args.get("control_hz", 20.0))
        if not (math.isfinite(hz) and hz > 0):
            raise ValueError(f"control_hz must be > 0, got {hz}")
        dt = round(_NS / hz)
        names = list(r.demos if demos is None else demos)
        t0 = int(start_ns)
        steps = 0
        with atomic_dir(bag, overwrite=overwrite) as tmp:
            inner = tmp / bag.name
            with BagWriter(inner, arm=arm, joint_names=joint_names, base_frame=base_frame,
                           topics=topics, distro=distro) as w:
                for name in names:
                    d = r.load(name)
                    target = extras(name, JOINT_TARGET_KEY)
                    T = len(d)
                    times = t0 + np.arange(T, dtype=np.int64) * dt
                    starts: dict[int, list[SkillSegment]] = {}
                    ends: dict[int, list[SkillSegment]] = {}
                    for s in d.segments:
                        starts.setdefault(s.start, []).append(s)
                        ends.setdefault(s.end - 1, []).append(s)
                    attrs = {k: v for k, v in d.attrs.items()
                             if k not in ("event", "source_bag", "source_start_ns", "success",
                                          "truncated")}
                    w.episode_event(int(times[0]), "start", **attrs)
                    for k in range(T):
                        tk = int(times[k])
                        w.joint_states(tk, d.obs["joint_pos"][k], d.obs["joint_vel"][k],
                                       float(d.obs["gripper_width"][k, 0]))
                        for ent, p in d.object_poses.items():
                            w.object_pose(tk, ent, p[k])
                        if target is not None:
                            w.trajectory(tk, target[k], 1.0 / hz)
                        for s in starts.get(k, ()):
                            w.skill_event(tk, "start", s.skill, s.args,
                                          arg_offsets=s.arg_offsets, arg_sizes=s.arg_sizes)
                        w.action(tk, d.actions[k])
                        for s in ends.get(k, ()):
                            w.skill_event(tk, "end", s.skill, s.args, s.success)
                    end: dict[str, Any] = {}
                    if "success" in d.attrs:
                        end["success"] = bool(d.attrs["success"])
                    w.episode_event(int(times[-1]), "end", **end)
                    steps += T
                    t0 = int(times[-1]) + round(episode_gap_s * _NS)
            for f in inner.iterdir():  # the bag's files up into the directory moved into place
                os.replace(f, tmp / f.name)
            inner.rmdir()
    return {"bag": str(bag), "episodes": len(names), "steps": steps,
            "control_hz": hz}


@contextlib.contextmanager
def _h5_extras(path: str | os.PathLike) -> Iterator[Callable[[str, str], np.ndarray | None]]:
    """``get(demo, key)``: ``obs/<key>`` of a demo, or None (datasets DemoReader does not load)."""
    import h5py

    with h5py.File(path, "r") as f:
        def get(demo: str, key: str) -> np.ndarray | None:
            g = f.get(f"data/{demo}/obs/{key}")
            return None if not isinstance(g, h5py.Dataset) else np.asarray(g[()], np.float64)
        yield get


# ---------------------------------------------------------------------------------- CLI
def _parse_topics(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep:
            raise ValueError(f"--topic takes KEY=/topic/name, got {it!r}")
        out[key.strip()] = val.strip()
    return out


def import_rosbag_main(argv: Sequence[str] | None = None) -> int:
    """``rs-import-rosbag BAG [BAG ...] --out demos.hdf5 [--arm panda] [--control-hz 20]``.

    Prints the summary as JSON; on failure prints one line on stderr and returns 1.
    """
    p = argparse.ArgumentParser(prog="rs-import-rosbag", description=(
        "Import rosbag2 (MCAP/sqlite3) recordings as HDF5 demonstrations (docs/rosbag.md)."))
    p.add_argument("bag", nargs="+", help="bag directory or .mcap file (several: in order)")
    p.add_argument("-o", "--out", required=True, help="HDF5 file to write (atomically)")
    p.add_argument("--arm", default="panda", help="arm description (default: panda)")
    p.add_argument("--control-hz", type=float, default=20.0, help="control rate, Hz")
    p.add_argument("--time-source", choices=("header", "log"), default="header",
                   help="align stamped messages by header stamp (default) or log time")
    p.add_argument("--max-gap-periods", type=float, default=5.0,
                   help="longest silence of a stream, in control periods (default 5)")
    p.add_argument("--topic", action="append", default=[], metavar="KEY=/NAME",
                   help="topic override, e.g. joint_states=/franka/joint_states (repeatable)")
    p.add_argument("--base-frame", default=None, help="frame_id of object poses")
    a = p.parse_args(argv)
    try:
        summary = import_rosbag(a.bag, a.out, arm=a.arm, control_hz=a.control_hz,
                                topics=_parse_topics(a.topic), base_frame=a.base_frame,
                                time_source=a.time_source, max_gap_periods=a.max_gap_periods)
    except (ValueError, OSError, ImportError) as e:
        print(f"rs-import-rosbag: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, default=_json_default))
    return 0


def export_rosbag_main(argv: Sequence[str] | None = None) -> int:
    """``rs-export-rosbag demos.hdf5 BAG [--arm panda] [--control-hz 20] [--distro jazzy]``."""
    p = argparse.ArgumentParser(prog="rs-export-rosbag", description=(
        "Write HDF5 demonstrations as a rosbag2 MCAP bag (docs/rosbag.md)."))
    p.add_argument("hdf5")
    p.add_argument("bag", help="bag directory to create")
    p.add_argument("--arm", default="panda")
    p.add_argument("--control-hz", type=float, default=None)
    p.add_argument("--distro", default="jazzy", choices=("humble", "iron", "jazzy"))
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    try:
        summary = export_rosbag(a.hdf5, a.bag, arm=a.arm, control_hz=a.control_hz,
                                distro=a.distro, overwrite=a.overwrite)
    except (ValueError, OSError, ImportError, KeyError) as e:
        print(f"rs-export-rosbag: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


__all__ = ["ACTION_LABELS", "ACTION_LAYOUT_LABEL", "ArmRosNames", "BagWriter",
           "RosbagImportError", "RosbagTopics", "arm_ros_names", "compose_actions",
           "export_rosbag", "export_rosbag_main", "import_rosbag", "import_rosbag_main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(import_rosbag_main())
