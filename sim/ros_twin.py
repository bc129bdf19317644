"""The MuJoCo sim twin: a task scene that speaks what an arm under ros2_control speaks, over ROS 2.

With it the whole hardware bridge (``hardware.ros2_robot.Ros2Robot`` and the executor node) runs
end to end over real DDS with no arm. It lives in ``sim`` (it needs the simulator; ``hardware``
never imports ``sim``) and imports rclpy only inside :func:`main` / :class:`SimTwinNode`, so
``import sim.ros_twin`` works without the ``ros`` extra (the trajectory follower is pure numpy).

What it does, at ``control_hz`` (a ROS timer; physics in 2 ms steps kept in step with the wall
clock, at most ``max_catchup_s`` per tick):

* publishes ``sensor_msgs/JointState`` on ``joint_states_topic`` (arm joints then the two finger
  joints, positions rad / m, velocities rad/s / m/s, ``header.stamp`` = now);
* publishes a ``geometry_msgs/PoseStamped`` per tracked entity (objects, drawer regions, knobs:
  ``PoseWorldModel.tracked_entities()``; every entity with ``publish_all_entities``) on
  ``object_pose_topic.format(name=entity)``, in the robot base frame (``frame_id``), m and
  ``(w, x, y, z)`` -> ROS's ``(x, y, z, w)``;
* follows ``trajectory_msgs/JointTrajectory`` on ``trajectory_topic`` with the semantics of
  ros2_control's JointTrajectoryController (:class:`TrajectoryFollower`);
* follows the gripper command: ``gripper_interface = forward_command`` (``std_msgs/Float64MultiArray``
  on ``gripper_topic``, ``data`` = finger joint position(s) in m, each finger ``width / 2``) or
  ``jtc`` (a JointTrajectory on ``gripper_topic`` naming the finger joint(s)) -- the names of
  the hardware presets' ``gripper.kind``;
* publishes the contact-based predicate state (:mod:`sim.predicates`, the reference) as JSON
  (``std_msgs/String``) on ``predicates_topic`` every ``predicate_every`` ticks:
  ``{"stamp": s, "state": ["(On a b)", ...], "goal": {"(On a b)": bool}, "success": bool,
  "invalid": null | "why"}``;
* publishes the scene's :class:`~robot_skills.perception.PoseWorldModel` once, as YAML
  (``PoseWorldModel.to_dict``) on the latched ``pose_model_topic`` and, if ``pose_model_out`` is
  set, into that file (atomically), so the bridge can evaluate predicates from poses without
  importing ``sim``;
* records every command it receives (arm and gripper, accepted or not) as JSON lines in
  ``command_log`` (flushed per line, so a killed twin leaves its log), for tests that check the
  wire against the limits: ``{"kind": "arm" | "gripper" | "probe", "recv": DDS receive time,
  "sent": the writer's source time, "stamp": header.stamp (s, system clock), "q_measured": the
  arm's joints at receipt, "names", "points": [{"t", "pos", "vel"}], "accepted", "why"}``;
* ``~/reset`` (``std_srvs/Trigger``, i.e. ``/sim_twin/reset``): re-sample the scene (next seed);
* ``~/pause_joint_states`` (``std_srvs/SetBool``): stop (``true``) or resume publishing
  ``/joint_states`` while the simulation runs on -- a dead state publisher, for watchdog tests.

Parameters (ROS parameters, e.g. from the ``sim_twin:`` block of ``launch/params/*.yaml``):
``task`` (a ``.bddl`` path), ``seed``, ``control_hz``, ``joint_names`` (the 7 arm joint names as
published, default ``panda_joint1..7``), ``finger_joint_names``, ``joint_states_topic``,
``trajectory_topic``, ``gripper_interface``, ``gripper_topic``, ``object_pose_topic``,
``frame_id``, ``predicates_topic``, ``predicate_every``, ``pose_model_topic``,
``pose_model_out``, ``command_log``, ``latency_probe_topic`` (a second JointTrajectory topic whose
receive latencies are logged but never followed: the bare-rclpy reference of
``benchmarks/bridge_latency.py``), ``publish_all_entities``, ``max_catchup_s``,
``velocity_feedforward`` (see :class:`TwinPhysics`).

Run: ``python -m sim.ros_twin --ros-args --params-file launch/params/sim_twin.yaml`` (what
``rs-bridge`` and ``launch/sim_twin.launch.py`` do).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
"""Arm joint names a franka_ros2 Panda publishes (and a JTC for it expects)."""
DEFAULT_FINGER_JOINT_NAMES = ("panda_finger_joint1", "panda_finger_joint2")
"""The Franka hand's finger joints (each ``[0, 0.04]`` m)."""


# ------------------------------------------------------------------------------------------
# JointTrajectoryController semantics (pure numpy)


@dataclass(frozen=True)
class _Segment:
    t0: float
    t1: float
    p0: np.ndarray
    v0: np.ndarray
    p1: np.ndarray
    v1: np.ndarray
    cubic: bool


class TrajectoryFollower:
    """Samples the desired joint state the way ros2_control's JointTrajectoryController does.

    * A new trajectory replaces the one running, from the time it starts (``header.stamp``, or
      the receipt time when the stamp is zero).
    * Points whose time (start + ``time_from_start``) is not in the future are dropped; a
      trajectory with every point in the past is rejected (the old one keeps running).
    * The first segment starts at the *current desired state* (position and velocity), so
      replacing a trajectory never makes the setpoint jump.
    * Between points: cubic Hermite when the points carry velocities, linear otherwise.
    * After the last point, the last position is held (velocity 0).
    * An empty trajectory (no points) holds the measured position at once.
    * Every joint must be named (no partial goals); a name the follower does not know, a
      position/velocity count that differs from the names, or a NaN/inf value rejects the
      message.

    Args:
        joint_names: the joints, in the follower's order.
        q0: ``(n,)`` initial (held) positions, in joint units (rad or m).

    Times are seconds on one clock (the twin uses ROS time, i.e. the system clock).
    """

    def __init__(self, joint_names: Sequence[str], q0: np.ndarray) -> None:
        self.joint_names = tuple(joint_names)
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self._segments: list[_Segment] = []
        self._hold = np.asarray(q0, dtype=np.float64).reshape(len(self.joint_names)).copy()

    @property
    def active(self) -> bool:
        """True while a trajectory is being followed (not holding)."""
        return bool(self._segments)

    def hold(self, q: np.ndarray) -> None:
        """Drop the trajectory and hold ``q`` ``(n,)``."""
        self._segments = []
        self._hold = np.asarray(q, dtype=np.float64).reshape(len(self.joint_names)).copy()

    def set_trajectory(self, names: Sequence[str], points: Sequence[tuple[float, Any, Any]],
                       start: float, now: float, q_measured: np.ndarray) -> str | None:
        """Replace the running trajectory.

        Args:
            names: joint names of the message.
            points: ``(time_from_start s, positions, velocities or None)`` per point, in the
                message's joint order.
            start: start time of the trajectory (s; the receipt time when its stamp is zero).
            now: current time (s).
            q_measured: ``(n,)`` measured positions (held on an empty trajectory).

        Returns:
            None when accepted, else why it was rejected (the old trajectory keeps running).
        """
        names = list(names)
        unknown = [n for n in names if n not in self._index]
        if unknown:
            return f"unknown joint(s) {unknown}; this controller has {list(self.joint_names)}"
        if len(set(names)) != len(names) or set(names) != set(self.joint_names):
            return (f"joint names {names} must name each of {list(self.joint_names)} once "
                    "(partial goals are not accepted)")
        if not points:
            self.hold(q_measured)
            return None
        order = [names.index(n) for n in self.joint_names]
        parsed: list[tuple[float, np.ndarray, np.ndarray | None]] = []
        last_t = -math.inf
        for k, (tfs, pos, vel) in enumerate(points):
            p = np.asarray(pos, dtype=np.float64).reshape(-1)
            if p.shape != (len(names),) or not np.all(np.isfinite(p)):
                return f"point {k}: positions must be {len(names)} finite numbers, got {list(p)}"
            v = None
            if vel is not None and len(vel):
                v = np.asarray(vel, dtype=np.float64).reshape(-1)
                if v.shape != (len(names),) or not np.all(np.isfinite(v)):
                    return f"point {k}: velocities must be {len(names)} finite numbers"
                v = v[order]
            if not (math.isfinite(tfs) and tfs > last_t):
                return f"point {k}: time_from_start {tfs} is not increasing"
            last_t = tfs
            parsed.append((start + float(tfs), p[order], v))
        future = [pt for pt in parsed if pt[0] > now]
        if not future:
            return "every point of the trajectory is in the past"
        p0, v0 = self.sample(now)
        segs = []
        t_prev, p_prev, v_prev = now, p0, v0
        for t, p, v in future:
            cubic = v is not None
            segs.append(_Segment(t_prev, t, p_prev, v_prev if cubic else np.zeros_like(p), p,
                                 v if cubic else np.zeros_like(p), cubic))
            t_prev, p_prev, v_prev = t, p, (v if v is not None else np.zeros_like(p))
        self._segments = segs
        return None

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Desired ``(positions (n,), velocities (n,))`` at time ``t`` (s)."""
        segs = self._segments
        if not segs:
            return self._hold.copy(), np.zeros_like(self._hold)
        if t >= segs[-1].t1:
            self.hold(segs[-1].p1)
            return self._hold.copy(), np.zeros_like(self._hold)
        for s in segs:
            if t < s.t1:
                break
        dt = s.t1 - s.t0
        u = min(max((t - s.t0) / dt, 0.0), 1.0) if dt > 0 else 1.0
        if not s.cubic:
            return s.p0 + u * (s.p1 - s.p0), (s.p1 - s.p0) / max(dt, 1e-9)
        u2, u3 = u * u, u * u * u
        h00, h10, h01, h11 = 2 * u3 - 3 * u2 + 1, u3 - 2 * u2 + u, -2 * u3 + 3 * u2, u3 - u2
        d00, d10, d01, d11 = 6 * u2 - 6 * u, 3 * u2 - 4 * u + 1, -6 * u2 + 6 * u, 3 * u2 - 2 * u
        p = h00 * s.p0 + h10 * dt * s.v0 + h01 * s.p1 + h11 * dt * s.v1
        v = (d00 * s.p0 + d01 * s.p1) / dt + d10 * s.v0 + d11 * s.v1
        return p, v


# ------------------------------------------------------------------------------------------
# the twin's physics (no ROS)


class TwinPhysics:
    """A :class:`~sim.sim_robot.SimRobot` scene driven by joint targets instead of EE actions.

    The arm's position servos take the :class:`TrajectoryFollower`'s desired positions (optionally
    with its desired velocities fed forward) at every 2 ms physics step; the gripper servo takes
    the commanded jaw opening.

    Args:
        task: a ``.bddl`` path.
        seed: reset seed of the scene.
        joint_names: the arm joint names as published (7, base to flange).
        finger_joint_names: the two finger joint names as published.
        velocity_feedforward: also feed the trajectory's desired velocity to the servos
            (``ctrl = q_des + kv / kp * qdot_des``: no tracking lag at constant velocity, as an
            arm's own tracking controller). Off by default: ``SimRobot``, where skills are trained,
            servos on position targets alone, and measured on ``put_the_bowl_on_the_plate`` the
            learned skills succeeded less often over the twin with it on.
    """

    def __init__(self, task: str | os.PathLike, seed: int = 0,
                 joint_names: Sequence[str] = DEFAULT_JOINT_NAMES,
                 finger_joint_names: Sequence[str] = DEFAULT_FINGER_JOINT_NAMES,
                 velocity_feedforward: bool = False) -> None:
        from robot_skills.robots import panda
        from sim.sim_robot import SimRobot

        if len(joint_names) != panda.N_ARM_JOINTS:
            raise ValueError(f"the twin simulates a Panda: 7 arm joint names, got {joint_names}")
        if len(finger_joint_names) != 2:
            raise ValueError(f"two finger joint names expected, got {finger_joint_names}")
        self.robot = SimRobot(task)
        self.seed = int(seed)
        self.joint_names = tuple(joint_names)
        self.finger_joint_names = tuple(finger_joint_names)
        self.dt = float(self.robot.model.opt.timestep)
        self.max_width = float(panda.GRIPPER_MAX_WIDTH)
        self.velocity_feedforward = bool(velocity_feedforward)
        self.invalid: str | None = None
        self.reset(self.seed)

    def reset(self, seed: int | None = None) -> None:
        """Re-sample the scene (arm at home, gripper open); the followers hold the home pose.

        Raises:
            robot_skills.robot.EpisodeInvalidError / sim.scene.PlacementError: see
                :meth:`SimRobot.reset`.
        """
        import mujoco

        if seed is not None:
            self.seed = int(seed)
        r = self.robot
        obs = r.reset(self.seed)
        self.invalid = None
        self.arm = TrajectoryFollower(self.joint_names, obs.joint_pos)
        self.width = float(obs.gripper_width)
        self.gripper = TrajectoryFollower(self.finger_joint_names, np.full(2, self.width / 2))
        self.sim_time: float | None = None  # wall time the physics state corresponds to
        mujoco.mj_forward(r.model, r.data)

    def q(self) -> np.ndarray:
        """``(7,)`` measured arm joint positions, rad."""
        return self.robot.data.qpos[self.robot._arm_qadr].copy()

    def fingers(self) -> np.ndarray:
        """``(2,)`` measured finger joint positions, m."""
        return self.robot.data.qpos[self.robot._finger_qadr].copy()

    def set_width(self, width: float) -> None:
        """Command the jaw opening (m), clipped to ``[0, max]``; follows at once."""
        self.gripper.hold(np.full(2, min(max(float(width), 0.0), self.max_width) / 2))

    def advance(self, now: float, max_catchup_s: float = 0.2) -> int:
        """Step the physics until it reaches wall time ``now`` (s); returns the steps taken.

        A tick later than ``max_catchup_s`` skips the excess (the simulation falls behind the
        wall clock rather than stepping for seconds). Stops stepping, and sets :attr:`invalid`,
        when MuJoCo warns (an unstable simulation).
        """
        import mujoco

        if self.sim_time is None or now - self.sim_time > max_catchup_s:
            self.sim_time = now - self.dt if self.sim_time is None else now - max_catchup_s
        if self.invalid is not None:
            self.sim_time = now
            return 0
        r = self.robot
        m, d = r.model, r.data
        n = int((now - self.sim_time) / self.dt)
        lo, hi = m.actuator_ctrlrange[r._arm_act, 0], m.actuator_ctrlrange[r._arm_act, 1]
        limited = m.actuator_ctrllimited[r._arm_act].astype(bool)
        # Velocity feed-forward: a position servo's force is kp (ctrl - q) - kv qdot, so
        # ctrl = q_des + (kv / kp) qdot_des tracks the trajectory's velocity without the lag of
        # kv / kp seconds a bare position target has (what an arm's own controller does).
        ff = -m.actuator_biasprm[r._arm_act, 2] / m.actuator_gainprm[r._arm_act, 0]
        if not self.velocity_feedforward:
            ff = np.zeros_like(ff)
        for k in range(n):
            t = self.sim_time + (k + 1) * self.dt
            q, v = self.arm.sample(t)
            c = q + ff * v
            d.ctrl[r._arm_act] = np.where(limited, np.clip(c, lo, hi), c)
            g, _ = self.gripper.sample(t)
            d.ctrl[r._grip_act] = min(max(float(g.sum()), 0.0), self.max_width)
            mujoco.mj_step2(m, d)
            mujoco.mj_step1(m, d)
            if d.warning.number.any():
                from sim.scene import instability_message

                self.invalid = instability_message(m, d, r.task.source, "in the twin",
                                                   float(d.time))
                break
        self.sim_time += n * self.dt
        return n


# ------------------------------------------------------------------------------------------
# the node


def _atom_text(a) -> str:
    from robot_skills.domain.predicates import format_atom

    return format_atom(tuple(a))


def _stamp_s(stamp) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def _to_stamp(t: float, Time) -> Any:
    sec = int(math.floor(t))
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


_PARAMS: dict[str, Any] = {
    "task": "",
    "seed": 0,
    "control_hz": 20.0,
    "joint_names": list(DEFAULT_JOINT_NAMES),
    "finger_joint_names": list(DEFAULT_FINGER_JOINT_NAMES),
    "joint_states_topic": "/joint_states",
    "trajectory_topic": "/panda_arm_controller/joint_trajectory",
    "gripper_interface": "forward_command",
    "gripper_topic": "/panda_gripper_controller/commands",
    "object_pose_topic": "/objects/{name}/pose",
    "frame_id": "panda_link0",
    "predicates_topic": "/sim_twin/predicates",
    "predicate_every": 1,
    "pose_model_topic": "/sim_twin/pose_model",
    "pose_model_out": "",
    "command_log": "",
    "latency_probe_topic": "",
    "publish_all_entities": False,
    "max_catchup_s": 0.2,
    "velocity_feedforward": False,
}
"""Every parameter of the twin node and its default."""


def make_node(node_name: str = "sim_twin", **overrides: Any) -> Any:
    """Build the twin node (rclpy must be initialised). ``overrides`` replace parameter defaults
    (a parameter given on the command line or in a params file still wins).

    Raises:
        ImportError: without rclpy (the ``ros`` extra). ValueError: missing ``task`` or a bad
            parameter.
    """
    import rclpy.node
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, String
    from std_srvs.srv import SetBool, Trigger
    from trajectory_msgs.msg import JointTrajectory

    from robot_skills.utils.atomic import atomic_write_text
    from robot_skills.utils.files import dump_yaml
    from sim.perception_model import articulation_poses, pose_world_model
    from sim.predicates import evaluate_atoms, predicate_state

    class SimTwinNode(rclpy.node.Node):
        """The twin as an rclpy node (see the module docstring for topics and parameters)."""

        def __init__(self) -> None:
            super().__init__(node_name)
            p = {}
            for k, default in _PARAMS.items():
                self.declare_parameter(k, overrides.get(k, default))
                p[k] = self.get_parameter(k).value
            self.p = p
            if not p["task"]:
                raise ValueError("the sim twin needs the 'task' parameter (a .bddl file)")
            if p["gripper_interface"] not in ("forward_command", "jtc"):
                raise ValueError(f"gripper_interface must be 'forward_command' or 'jtc', got "
                                 f"{p['gripper_interface']!r}")
            hz = float(p["control_hz"])
            if not (math.isfinite(hz) and hz > 0):
                raise ValueError(f"control_hz must be > 0, got {hz}")
            self.physics = TwinPhysics(p["task"], int(p["seed"]), list(p["joint_names"]),
                                       list(p["finger_joint_names"]),
                                       bool(p["velocity_feedforward"]))
            r = self.physics.robot
            self.model = pose_world_model(r.scene, r.model)
            tracked = set(self.model.tracked_entities())
            articulated = articulation_poses(r.model, r.data, r.scene)
            self.entities = [e for e in (*r.entity_names, *articulated)
                             if p["publish_all_entities"] or e in tracked]
            self._Time = Time
            self._log = open(p["command_log"], "a", buffering=1) if p["command_log"] else None

            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                 reliability=ReliabilityPolicy.RELIABLE)
            self.js_pub = self.create_publisher(JointState, p["joint_states_topic"], 10)
            self.pose_pubs = {e: self.create_publisher(
                PoseStamped, p["object_pose_topic"].format(name=e), 10) for e in self.entities}
            self.pred_pub = self.create_publisher(String, p["predicates_topic"], 10)
            self.model_pub = self.create_publisher(String, p["pose_model_topic"], latched)
            self.create_subscription(JointTrajectory, p["trajectory_topic"], self._on_arm, 10)
            if p["gripper_interface"] == "forward_command":
                self.create_subscription(Float64MultiArray, p["gripper_topic"],
                                         self._on_gripper_forward, 10)
            else:
                self.create_subscription(JointTrajectory, p["gripper_topic"],
                                         self._on_gripper_jtc, 10)
            if p["latency_probe_topic"]:
                self.create_subscription(JointTrajectory, p["latency_probe_topic"],
                                         self._on_probe, 10)
            self.create_service(Trigger, "~/reset", self._on_reset)
            self.create_service(SetBool, "~/pause_joint_states", self._on_pause)
            self._paused = False
            self._tick = 0
            self._JointState, self._PoseStamped, self._String = JointState, PoseStamped, String
            self._publish_model()
            self.timer = self.create_timer(1.0 / hz, self._on_timer)
            self.get_logger().info(
                f"sim twin up: task {Path(p['task']).name}, seed {self.physics.seed}, {hz:g} Hz, "
                f"{len(self.entities)} pose topics, commands on {p['trajectory_topic']}")

        # ------------------------------------------------------------------ helpers
        def _now(self) -> float:
            return self.get_clock().now().nanoseconds * 1e-9

        def _record(self, kind: str, msg_stamp: float, info: Any, **fields: Any) -> None:
            if self._log is None:
                return
            rec = {"kind": kind, "recv": info["received_timestamp"] * 1e-9 if info else None,
                   "sent": info["source_timestamp"] * 1e-9 if info else None,
                   "stamp": msg_stamp, "q_measured": self.physics.q().tolist(), **fields}
            self._log.write(json.dumps(rec) + "\n")

        def _publish_model(self) -> None:
            text = dump_yaml(self.model.to_dict())
            if self.p["pose_model_out"]:
                atomic_write_text(self.p["pose_model_out"], text)
            self.model_pub.publish(self._String(data=text))

        # ------------------------------------------------------------------ callbacks
        def _points(self, msg) -> list[tuple[float, Any, Any]]:
            return [(pt.time_from_start.sec + 1e-9 * pt.time_from_start.nanosec,
                     list(pt.positions), list(pt.velocities) or None) for pt in msg.points]

        def _on_arm(self, msg, info) -> None:
            now = self._now()
            stamp = _stamp_s(msg.header.stamp)
            start = stamp if stamp > 0 else now
            pts = self._points(msg)
            why = self.physics.arm.set_trajectory(list(msg.joint_names), pts, start, now,
                                                  self.physics.q())
            if why is not None:
                self.get_logger().warn(f"arm trajectory rejected: {why}")
            self._record("arm", stamp, info, names=list(msg.joint_names),
                         points=[{"t": t, "pos": p, "vel": v} for t, p, v in pts],
                         accepted=why is None, why=why)

        def _on_gripper_forward(self, msg, info) -> None:
            data = [float(x) for x in msg.data]
            ok = len(data) in (1, 2) and all(map(math.isfinite, data))
            why = None if ok else f"expected 1 or 2 finite finger positions, got {data}"
            if ok:
                self.physics.set_width(2.0 * float(np.mean(data)))
            else:
                self.get_logger().warn(f"gripper command rejected: {why}")
            self._record("gripper", 0.0, info, data=data, accepted=ok, why=why)

        def _on_gripper_jtc(self, msg, info) -> None:
            now = self._now()
            stamp = _stamp_s(msg.header.stamp)
            names = list(msg.joint_names)
            pts = self._points(msg)
            if len(names) == 1 and names[0] in self.physics.finger_joint_names:
                # one finger joint commanded (the other mimics it)
                names = list(self.physics.finger_joint_names)
                pts = [(t, [p[0], p[0]], [v[0], v[0]] if v else None) for t, p, v in pts]
            why = self.physics.gripper.set_trajectory(names, pts, stamp if stamp > 0 else now,
                                                      now, self.physics.fingers())
            if why is not None:
                self.get_logger().warn(f"gripper trajectory rejected: {why}")
            self._record("gripper", stamp, info, names=list(msg.joint_names),
                         points=[{"t": t, "pos": p, "vel": v} for t, p, v in pts],
                         accepted=why is None, why=why)

        def _on_probe(self, msg, info) -> None:
            self._record("probe", _stamp_s(msg.header.stamp), info)

        def _on_reset(self, request, response):
            try:
                self.physics.reset(self.physics.seed + 1)
            except Exception as e:  # noqa: BLE001 - reported to the caller
                response.success, response.message = False, f"{type(e).__name__}: {e}"
                return response
            self._publish_model()
            response.success = True
            response.message = f"scene reset with seed {self.physics.seed}"
            self.get_logger().info(response.message)
            return response

        def _on_pause(self, request, response):
            self._paused = bool(request.data)
            response.success = True
            response.message = "joint states paused" if self._paused else "joint states resumed"
            self.get_logger().warn(response.message)
            return response

        def _on_timer(self) -> None:
            now = self._now()
            ph = self.physics
            was_invalid = ph.invalid
            ph.advance(now, float(self.p["max_catchup_s"]))
            if ph.invalid and not was_invalid:
                self.get_logger().error(f"simulation unstable: {ph.invalid}")
            r = ph.robot
            obs = r.observe()
            stamp = _to_stamp(now, self._Time)
            js = self._JointState()
            js.header.stamp = stamp
            js.name = [*ph.joint_names, *ph.finger_joint_names]
            fingers = ph.fingers()
            fvel = r.data.qvel[r.model.jnt_dofadr[[r.model.joint(j).id
                                                  for j in r.names.finger_joints]]]
            js.position = [*map(float, obs.joint_pos), *map(float, fingers)]
            js.velocity = [*map(float, obs.joint_vel), *map(float, fvel)]
            if not self._paused:
                self.js_pub.publish(js)
            poses = dict(obs.object_poses)
            poses.update(articulation_poses(r.model, r.data, r.scene))
            for e, pub in self.pose_pubs.items():
                x = poses[e]
                m = self._PoseStamped()
                m.header.stamp = stamp
                m.header.frame_id = self.p["frame_id"]
                m.pose.position.x, m.pose.position.y, m.pose.position.z = map(float, x[:3])
                (m.pose.orientation.w, m.pose.orientation.x, m.pose.orientation.y,
                 m.pose.orientation.z) = map(float, x[3:7])
                pub.publish(m)
            self._tick += 1
            if self._tick % max(1, int(self.p["predicate_every"])) == 0:
                state = predicate_state(r.model, r.data, r.scene,
                                        gripper_geom_ids=r.gripper_geom_ids)
                goal = list(r.task.goal)
                vals = evaluate_atoms(r.model, r.data, r.scene, goal,
                                      gripper_geom_ids=r.gripper_geom_ids)
                out = {"stamp": now, "state": sorted(map(_atom_text, state)),
                       "goal": {_atom_text(a): bool(v) for a, v in zip(goal, vals)},
                       "success": bool(goal) and all(vals), "invalid": ph.invalid}
                self.pred_pub.publish(self._String(data=json.dumps(out)))

        def destroy_node(self) -> None:
            if self._log is not None:
                self._log.close()
                self._log = None
            super().destroy_node()

    return SimTwinNode()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the twin until SIGINT/SIGTERM (``python -m sim.ros_twin --ros-args ...``).

    Returns:
        0 on a clean shutdown, 2 when the node could not start (the reason on stderr).
    """
    from hardware.processes import run_node  # the same node main as the bridge's nodes

    return run_node(make_node, "sim twin", argv)


if __name__ == "__main__":
    raise SystemExit(main())
