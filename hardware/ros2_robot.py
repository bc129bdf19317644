"""``Ros2Robot``: the core robot interface over ROS 2 (rclpy -> a ros2_control arm).

It implements :class:`robot_skills.robot.Robot`, so the executor, skills and planners run on a real
arm (or the sim twin, ``sim.ros_twin``) unchanged. One control step (:meth:`Ros2Robot.act`):

1. the shared :class:`~robot_skills.control.diff_ik.DiffIKController` (the arm description's
   arm-only model, exactly as in simulation) turns the end-effector delta into joint targets;
2. the :class:`~robot_skills.control.safety.SafetyFilter` (position margins, max step per command,
   velocity with braking look-ahead, acceleration, workspace box, stale-state watchdog, latched
   e-stop) makes them safe -- nothing reaches the wire without passing it, and a skill only ever
   produces actions;
3. the result is published as a single-point ``trajectory_msgs/JointTrajectory`` (positions rad,
   velocities rad/s, ``time_from_start`` = ``lookahead_periods`` control periods,
   ``header.stamp`` = the time the action was handed over) on the JointTrajectoryController's
   topic, and the gripper command through the configured interface;
4. :meth:`act` returns at the end of the control period (an absolute schedule), so
   :meth:`observe` afterwards reads the state one period later, as in simulation.

Topics (names from :class:`hardware.config.BridgeConfig`, i.e. the preset):

* subscribes ``sensor_msgs/JointState`` (``joint_states_topic``; arm joints by name, rad, rad/s;
  finger joints, m), one ``geometry_msgs/PoseStamped`` per object (``object_pose_topic`` with
  ``{name}``, poses in the arm's base frame -- others are ignored, with a warning, as there is no
  tf here), optional ``sensor_msgs/Image`` cameras (``rgb8``/``bgr8``/``mono8``/``32FC1``), and
  the e-stop ``std_msgs/Bool`` (``True`` engages it, latched until the reset service; reliable,
  volatile QoS, which every reliable publisher matches);
* publishes ``trajectory_msgs/JointTrajectory`` (``trajectory_topic``) and the gripper command
  (``gripper.kind``; the jaw opening mapped linearly onto ``gripper.closed .. gripper.open``):
  ``std_msgs/Float64MultiArray`` of finger joint positions (``forward_command``), a
  JointTrajectory on the finger joint(s) (``jtc``), or a ``control_msgs/GripperCommand`` goal
  (``gripper_action``; only when ``control_msgs`` is importable, else :meth:`connect` raises);
* serves ``std_srvs/Trigger`` ``estop_reset_service`` (release the e-stop).

Safety outcomes: an e-stop, stale joint states (no fresh ``JointState`` for the filter's
``stale_after_periods``), or a stop request (:meth:`request_stop`) publish a controlled stop at
once and make the running :meth:`act` raise :class:`~robot_skills.robot.EpisodeInvalidError`, which
the executor never mistakes for a skill failure. Every intervention is counted
(:attr:`Ros2Robot.interventions`) and logged by the filter (``robot_skills.safety`` logger).

rclpy is imported in :meth:`connect`, so ``import hardware.ros2_robot`` and building the object
work without the ``ros`` extra.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hardware.config import BridgeConfig, load_bridge_config
from robot_skills.robot import Action, EpisodeInvalidError, Observation, Robot

logger = logging.getLogger("hardware.ros2_robot")

__all__ = ["Ros2Robot", "image_to_array"]


def image_to_array(msg: Any) -> np.ndarray:
    """``sensor_msgs/Image`` -> ``(H, W, 3)`` uint8 RGB, ``(H, W)`` uint8 or ``(H, W)`` float32 (m).

    Raises:
        ValueError: on an unsupported encoding or a size that does not match.
    """
    h, w, enc = int(msg.height), int(msg.width), str(msg.encoding).lower()
    buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    step = int(msg.step)
    if enc in ("rgb8", "bgr8"):
        img = buf.reshape(h, step)[:, : w * 3].reshape(h, w, 3)
        return np.ascontiguousarray(img[..., ::-1] if enc == "bgr8" else img)
    if enc == "mono8":
        return buf.reshape(h, step)[:, :w].copy()
    if enc == "32fc1":
        dt = np.dtype(np.float32).newbyteorder(">" if msg.is_bigendian else "<")
        return buf.reshape(h, step)[:, : w * 4].copy().view(dt).reshape(h, w).astype(np.float32)
    raise ValueError(f"unsupported image encoding {msg.encoding!r}")


class Ros2Robot(Robot):
    """An arm under ros2_control, driven over ROS 2 topics (see the module docstring).

    Args:
        preset: a hardware preset (``configs/hardware/<name>.yaml`` or a path), or None for the
            built-in Panda defaults.
        config: a ready :class:`~hardware.config.BridgeConfig` (instead of ``preset``).
        context: an initialised ``rclpy.Context`` to create the node in (e.g. the executor
            node's); None: the robot creates, and on :meth:`disconnect` shuts down, its own.
        **overrides: :class:`BridgeConfig` fields replacing the preset's (``arm``,
            ``joint_states_topic``, ``trajectory_topic``, ``gripper_topic``, ``estop_topic``,
            ``state_timeout_s``, ``control_hz``, ``lookahead_periods``, ``safety``, ...).

    Raises:
        ValueError: unknown arm, non-positive rates or timeouts, bad safety limits, unknown keys.
        FileNotFoundError: unknown preset.
    """

    def __init__(self, preset: str | None = None, *, config: BridgeConfig | None = None,
                 context: Any = None, **overrides: Any) -> None:
        if config is None:
            config = load_bridge_config(preset, **overrides)
        elif overrides:
            config = config.with_overrides(**overrides)
        self.config = config
        self.arm = config.arm
        self.description = config.description()
        self.joint_names = config.wire_joint_names()
        self.joint_states_topic = config.joint_states_topic
        self.trajectory_topic = config.trajectory_topic
        self.gripper_topic = config.gripper_topic
        self.estop_topic = config.estop_topic
        self.state_timeout_s = config.state_timeout_s
        self.safety_limits = config.safety_limits()
        self._period = config.control_period
        self._external_context = context
        self._context: Any = None
        self._node: Any = None
        self._executor: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._path: Any = None  # robot_skills.control.command_path.JointCommandPath
        self._controller: Any = None  # = self._path.controller
        self._filter: Any = None  # = self._path.filter
        self._fk_pose: Any = None
        self._entities: list[str] = []
        self._reset_state()

    def _reset_state(self) -> None:
        n = len(self.joint_names)
        self._q = np.full(n, np.nan)
        self._dq = np.zeros(n)
        self._have = np.zeros(n, dtype=bool)
        self._state_stamp = -math.inf  # receive time of the last complete arm state, s (wall)
        self._fingers: dict[str, float] = {}
        self._poses: dict[str, np.ndarray] = {}
        self._images: dict[str, np.ndarray] = {}
        self._width_cmd: float | None = None
        self._deadline: float | None = None
        self._t0 = time.monotonic()
        self._needs_reset = True
        self._stop_reason: str | None = None
        self._published = 0

    # ------------------------------------------------------------------ Robot interface
    @property
    def control_period(self) -> float:
        """Seconds per :meth:`act` (``1 / control_hz``)."""
        return self._period

    @property
    def joint_limits(self) -> np.ndarray:
        """``(n, 2)`` the arm description's joint position limits, rad."""
        return np.asarray(self.description.joint_limits, dtype=np.float64).copy()

    @property
    def interventions(self) -> dict[str, int]:
        """Safety-filter interventions by kind since :meth:`connect` (zeros before)."""
        return {} if self._filter is None else self._filter.counters

    @property
    def estopped(self) -> bool:
        """True while the e-stop is engaged."""
        return self._filter is not None and self._filter.estopped

    @property
    def node(self) -> Any:
        """The rclpy node (None while disconnected)."""
        return self._node

    def track_entities(self, entities: Sequence[str]) -> None:
        """Subscribe to the ``PoseStamped`` topic of each entity (in addition to the configured
        explicit topics). Call before or after :meth:`connect`."""
        new = [e for e in entities if e not in self._entities]
        self._entities += new
        if self._node is not None:
            for e in new:
                self._subscribe_pose(e)

    def connect(self) -> None:
        """Create the node, its subscriptions, publishers and executor thread; wait for the first
        complete joint state. Idempotent.

        Raises:
            ImportError: without rclpy (``pip install -e '.[ros]'``), or ``gripper_command``
                without ``control_msgs``.
            ConnectionError: no complete ``JointState`` within ``connect_timeout_s`` (the node is
                torn down again).
        """
        if self._node is not None:
            return
        try:
            import rclpy
            from rclpy.executors import SingleThreadedExecutor
        except ImportError as exc:
            raise ImportError("Ros2Robot needs rclpy: pip install -e '.[ros]'") from exc
        from robot_skills.control.command_path import JointCommandPath

        cfg = self.config
        self._reset_state()
        if self._external_context is not None:
            self._context = self._external_context
        else:
            self._context = rclpy.Context()
            rclpy.init(context=self._context)
        try:
            # the same IK -> safety filter path SimRobot runs with a deployment (train as deployed)
            self._path = JointCommandPath(self.description, self._period, self.safety_limits)
            self._controller, self._filter = self._path.controller, self._path.filter
            self._node = rclpy.create_node(cfg.node_name, context=self._context)
            self._make_interfaces()
            self._executor = SingleThreadedExecutor(context=self._context)
            self._executor.add_node(self._node)
            self._thread = threading.Thread(target=self._spin, name="ros2_robot_spin",
                                            daemon=True)
            self._thread.start()
            if not self.wait_for_state(cfg.connect_timeout_s):
                raise ConnectionError(
                    f"no JointState with every arm joint {list(self.joint_names)} on "
                    f"{cfg.joint_states_topic} within {cfg.connect_timeout_s:g} s "
                    f"(ROS_DOMAIN_ID and the arm's driver?)")
        except BaseException:
            self.disconnect()
            raise
        super().connect()
        self._node.get_logger().info(
            f"bridge up: arm {cfg.arm}, commands on {cfg.trajectory_topic} at "
            f"{cfg.control_hz:g} Hz, gripper via {cfg.gripper.kind} on {cfg.gripper.topic}")

    def disconnect(self) -> None:
        """Stop streaming (no further command is sent; the controller holds its last point),
        destroy the node and, if the robot created it, shut its context down. Idempotent."""
        ex, node, thread = self._executor, self._node, self._thread
        self._executor = self._node = self._thread = None
        if ex is not None:
            ex.shutdown(timeout_sec=1.0)
        if thread is not None:
            thread.join(timeout=2.0)
        if node is not None:
            node.destroy_node()
        if self._context is not None and self._external_context is None:
            try:
                if self._context.ok():
                    self._context.shutdown()
            finally:
                self._context = None
        self._context = None
        super().disconnect()

    def wait_for_state(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a joint state received after this call; True if one came."""
        t_call = time.time()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._state_stamp >= t_call and bool(self._have.all()):
                return True
            time.sleep(0.005)
        return False

    def reset(self, seed: int | None = None) -> Observation:
        """Start an episode from where the arm stands (a real arm is not teleported; ``seed`` is
        accepted for the interface and ignored): wait for a fresh joint state, reset the IK
        target and the safety filter's reference to it, clear a previous stop request.

        Raises:
            RuntimeError: if not connected.
            EpisodeInvalidError: no fresh joint state within ``connect_timeout_s``, or the
                e-stop is engaged (release it with the reset service first).
        """
        if self._node is None:
            raise RuntimeError("Ros2Robot is not connected: call connect() first")
        if not self.wait_for_state(self.config.connect_timeout_s):
            raise EpisodeInvalidError(f"no fresh joint state on {self.joint_states_topic} within "
                                      f"{self.config.connect_timeout_s:g} s")
        with self._lock:
            if self._filter.estopped:
                raise EpisodeInvalidError(f"e-stop engaged ({self._filter.estop_reason}); release "
                                          f"it with {self.config.estop_reset_service}")
            q = self._q.copy()
            self._path.reset(q)
            self._stop_reason = None
            self._deadline = None
            self._t0 = time.monotonic()
            self._needs_reset = False
        return self.observe()

    def observe(self) -> Observation:
        """The latest state, in the base frame.

        ``ee_pos``/``ee_quat`` come from forward kinematics of the measured joints (the arm
        description's model); ``gripper_width`` from the finger joints in ``JointState`` (mean
        position / ``gripper.open``/``gripper.closed``; the last command when they are not published);
        ``object_poses`` holds the latest pose per tracked entity (``(7,)`` ``x y z qw qx qy
        qz``); ``images`` the latest frame per camera.

        Raises:
            RuntimeError: before the first complete joint state.
        """
        with self._lock:
            q, dq = self._q.copy(), self._dq.copy()
            fingers = [self._fingers[n] for n in self.config.gripper.joints
                       if n in self._fingers]
            poses = {k: v.copy() for k, v in self._poses.items()}
            images = dict(self._images)
            width_cmd = self._width_cmd
        if not np.all(np.isfinite(q)):
            raise RuntimeError(f"no complete joint state yet on {self.joint_states_topic}")
        pos, quat = self._ee_pose(q)
        if fingers:
            width = self.config.gripper.width(float(np.mean(fingers)),
                                              self.description.gripper_max_width)
        else:
            width = self.description.gripper_max_width if width_cmd is None else width_cmd
        return Observation(joint_pos=q, joint_vel=dq, ee_pos=pos, ee_quat=quat,
                           gripper_width=width, object_poses=poses, images=images,
                           time=time.monotonic() - self._t0)

    def act(self, action: Action) -> Action:
        """IK -> safety filter -> one JointTrajectory (+ gripper command); wait out the period.

        Args:
            action: EE delta in the base frame (m, rad axis-angle) + gripper in ``[-1, 1]``.

        Returns:
            The command applied: the clipped action when the filter let the IK target through;
            otherwise the EE delta the published (filtered) joint command amounts to, relative
            to the previous one (zero motion while holding).

        Raises:
            ValueError: NaN/inf in the action (the filter holds the arm; nothing unsafe is sent).
            RuntimeError: not connected, or :meth:`reset` not called.
            EpisodeInvalidError: e-stop engaged, stale joint states (watchdog) or a stop request:
                a controlled stop was published and the skill must end.
        """
        if self._node is None:
            raise RuntimeError("Ros2Robot is not connected: call connect() first")
        if self._needs_reset:
            raise RuntimeError("call reset() before act()")
        t_action = time.time()
        with self._lock:
            if self._stop_reason is not None:
                self._hold_locked()
                raise EpisodeInvalidError(f"stopped: {self._stop_reason}")
            q_meas, stamp = self._q.copy(), self._state_stamp
            pc = self._path.step(action, q_meas, now=time.time(), state_stamp=stamp)
            d = pc.decision
            self._publish_decision(d, t_action)
            if pc.error is not None:
                raise ValueError(pc.error)
            if d.stop_skill:
                why = ", ".join(k for k in d.interventions
                                if k in ("estop", "stale_state", "nan_input", "infeasible"))
                if "estop" in d.interventions:
                    why = f"e-stop engaged ({self._filter.estop_reason})"
                elif "stale_state" in d.interventions:
                    why = (f"stale joint states: none for more than "
                           f"{self.safety_limits.stale_after_periods} control periods "
                           f"(watchdog) on {self.joint_states_topic}")
                self._stop_reason = why
                raise EpisodeInvalidError(f"safety stop: {why}")
            if not d.hold:
                self._publish_gripper(pc.gripper_width, t_action)
            applied = pc.applied
        self._pace()
        return applied

    # ------------------------------------------------------------------ stops
    def request_stop(self, reason: str = "stop requested") -> None:
        """Halt at once: publish a controlled stop now and make the running (and every) :meth:`act`
        raise :class:`EpisodeInvalidError` until the next :meth:`reset`. Thread-safe."""
        with self._lock:
            self._stop_reason = reason
            if self._node is not None and not self._needs_reset:
                self._hold_locked()

    def engage_estop(self, reason: str = "e-stop") -> None:
        """Engage the safety filter's e-stop (latched) and publish a controlled stop now."""
        with self._lock:
            if self._filter is None:
                return
            self._filter.engage_estop(reason)
            if not self._needs_reset:
                self._hold_locked()

    def reset_estop(self) -> None:
        """Release the e-stop; the next :meth:`reset` re-anchors at the measured state."""
        with self._lock:
            if self._filter is not None:
                self._filter.reset_estop()
            self._needs_reset = True

    def _hold_locked(self) -> None:
        """Publish the filter's controlled stop (the feasible point nearest the last command)."""
        d = self._path.hold(self._q.copy(), now=time.time(), state_stamp=self._state_stamp)
        if d is not None:
            self._publish_decision(d, time.time())

    # ------------------------------------------------------------------ helpers
    def _ee_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._fk_pose is None:
            from robot_skills.control.diff_ik import DiffIKController

            self._fk_pose = DiffIKController(arm=self.description, control_period=self._period)
        return self._fk_pose.forward_kinematics(q)

    def _publish_decision(self, d: Any, t_action: float) -> None:
        if d.q_command is None:
            return
        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        msg = JointTrajectory()
        msg.header.stamp = _stamp(t_action)
        msg.joint_names = list(self.joint_names)
        pt = JointTrajectoryPoint()
        pt.positions = [float(x) for x in d.q_command]
        pt.velocities = [float(x) for x in d.velocity]
        tfs = self.config.lookahead_periods * self._period
        pt.time_from_start = Duration(sec=int(tfs), nanosec=int(round((tfs % 1.0) * 1e9)))
        msg.points = [pt]
        self._traj_pub.publish(msg)
        self._published += 1

    def _publish_gripper(self, width: float, t_action: float) -> None:
        g = self.config.gripper
        w = min(max(float(width), 0.0), float(self.description.gripper_max_width))
        if not math.isfinite(w) or g.kind == "none":
            return
        self._width_cmd = w
        pos = g.command(w, self.description.gripper_max_width)
        if g.kind == "forward_command":
            from std_msgs.msg import Float64MultiArray

            self._grip_pub.publish(Float64MultiArray(data=[pos] * max(1, len(g.joints))))
        elif g.kind == "jtc":
            from builtin_interfaces.msg import Duration
            from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

            msg = JointTrajectory()
            msg.header.stamp = _stamp(t_action)
            msg.joint_names = list(g.joints)
            tfs = self.config.lookahead_periods * self._period
            msg.points = [JointTrajectoryPoint(
                positions=[pos] * len(g.joints),
                time_from_start=Duration(sec=int(tfs), nanosec=int(round((tfs % 1.0) * 1e9))))]
            self._grip_pub.publish(msg)
        elif g.kind == "gripper_action":
            if self._grip_goal_width is not None and abs(self._grip_goal_width - w) < 1e-4:
                return
            from control_msgs.action import GripperCommand

            goal = GripperCommand.Goal()
            goal.command.position = pos
            goal.command.max_effort = g.max_effort
            self._grip_client.send_goal_async(goal)
            self._grip_goal_width = w

    def _pace(self) -> None:
        """Sleep until the end of this control period (absolute schedule; re-synchronised when
        more than a period late)."""
        now = time.monotonic()
        if self._deadline is None or now > self._deadline + self._period:
            self._deadline = now + self._period
        else:
            self._deadline += self._period
        delay = self._deadline - now
        if delay > 0:
            time.sleep(delay)

    def _spin(self) -> None:
        ex = self._executor
        try:
            while ex is not None and self._context is not None and self._context.ok():
                ex.spin_once(timeout_sec=0.1)
                ex = self._executor
        except Exception as e:  # noqa: BLE001 - executor shut down under us
            if self._executor is not None:
                logger.error("bridge executor stopped: %s: %s", type(e).__name__, e)

    # ------------------------------------------------------------------ ROS interfaces
    def _make_interfaces(self) -> None:
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64MultiArray
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        cfg, node = self.config, self._node
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self._traj_pub = node.create_publisher(JointTrajectory, cfg.trajectory_topic, 10)
        self._grip_pub = None
        self._grip_client = None
        self._grip_goal_width = None
        g = cfg.gripper
        if g.kind == "forward_command":
            self._grip_pub = node.create_publisher(Float64MultiArray, g.topic, 10)
        elif g.kind == "jtc":
            self._grip_pub = node.create_publisher(JointTrajectory, g.topic, 10)
        elif g.kind == "gripper_action":
            try:
                from control_msgs.action import GripperCommand
                from rclpy.action import ActionClient
            except ImportError as exc:
                raise ImportError("gripper kind 'gripper_action' needs control_msgs (not "
                                  "installed here); use 'forward_command' or 'jtc'") from exc
            self._grip_client = ActionClient(node, GripperCommand, g.topic)
        node.create_subscription(JointState, cfg.joint_states_topic, self._on_joint_state, 10)
        # reliable + volatile: matches every reliable publisher, latched (transient-local) or
        # not -- a transient-local subscription would silently ignore `ros2 topic pub`.
        node.create_subscription(Bool, cfg.estop_topic, self._on_estop, 10)
        node.create_service(Trigger, cfg.estop_reset_service, self._on_estop_reset)
        for e in list(cfg.object_pose_topics) + self._entities:
            self._subscribe_pose(e)
        if cfg.camera_topics:
            from sensor_msgs.msg import Image

            for cam, topic in cfg.camera_topics.items():
                node.create_subscription(Image, topic, self._image_cb(cam), 2)

    def _subscribe_pose(self, entity: str) -> None:
        from geometry_msgs.msg import PoseStamped

        if not hasattr(self, "_pose_subs"):
            self._pose_subs: dict[str, Any] = {}
        if self._node is None or entity in self._pose_subs:
            return
        self._pose_subs[entity] = self._node.create_subscription(
            PoseStamped, self.config.pose_topic(entity), self._pose_cb(entity), 10)

    def _on_joint_state(self, msg: Any, info: Any) -> None:
        recv = info["received_timestamp"] * 1e-9
        names = list(msg.name)
        pos, vel = list(msg.position), list(msg.velocity)
        with self._lock:
            got_arm = False
            for k, n in enumerate(names):
                i = self._index.get(n)
                if i is not None and k < len(pos):
                    self._q[i] = pos[k]
                    self._dq[i] = vel[k] if k < len(vel) else 0.0
                    self._have[i] = True
                    got_arm = True
                elif n in self.config.gripper.joints and k < len(pos):
                    self._fingers[n] = float(pos[k])
            if got_arm and self._have.all() and np.all(np.isfinite(self._q)):
                self._state_stamp = recv

    def _pose_cb(self, entity: str):
        frame = self.config.frame()
        warned = [False]

        def cb(msg: Any) -> None:
            if msg.header.frame_id and msg.header.frame_id != frame:
                if not warned[0]:
                    warned[0] = True
                    self._node.get_logger().warn(
                        f"pose of {entity!r} is in frame {msg.header.frame_id!r}, not the base "
                        f"frame {frame!r}: ignored (no tf in the bridge)")
                return
            p, o = msg.pose.position, msg.pose.orientation
            x = np.array([p.x, p.y, p.z, o.w, o.x, o.y, o.z], dtype=np.float64)
            if np.all(np.isfinite(x)):
                with self._lock:
                    self._poses[entity] = x

        return cb

    def _image_cb(self, cam: str):
        def cb(msg: Any) -> None:
            try:
                img = image_to_array(msg)
            except ValueError as e:
                self._node.get_logger().warn(f"camera {cam}: {e}", throttle_duration_sec=5.0)
                return
            with self._lock:
                self._images[cam] = img

        return cb

    def _on_estop(self, msg: Any) -> None:
        if msg.data:
            self.engage_estop(f"e-stop message on {self.config.estop_topic}")

    def _on_estop_reset(self, request: Any, response: Any) -> Any:
        was = self.estopped
        self.reset_estop()
        response.success = True
        response.message = "e-stop released" if was else "e-stop was not engaged"
        return response


def _stamp(t: float) -> Any:
    from builtin_interfaces.msg import Time

    sec = int(math.floor(t))
    return Time(sec=sec, nanosec=min(int(round((t - sec) * 1e9)), 999_999_999))

