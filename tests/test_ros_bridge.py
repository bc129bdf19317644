"""``Ros2Robot`` over real DDS against a fake ros2_control arm (``ros`` marker): single-point
JointTrajectory streaming at the control rate, the gripper command, the e-stop (latched until the
reset service), the stale-state watchdog, NaN/huge actions, and a property test (hypothesis,
10,000 cases) that no command on the wire ever violates a limit."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

PRESET = "panda"


@pytest.fixture(scope="module")
def ros_env():
    import os

    from hardware.processes import isolated_ros_env

    env = isolated_ros_env()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class FakeArm:
    """A ros2_control arm in a thread: publishes JointState at ``rate`` Hz with the positions of
    the last commanded point (perfect tracking), records every command it receives."""

    def __init__(self, cfg, rate: float = 100.0) -> None:
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from hardware.ros_probe import RosProbe

        self.cfg = cfg
        self.names = list(cfg.wire_joint_names())
        self.q = np.array(cfg.description().home_qpos, dtype=float)
        self.fingers = [0.04, 0.04]
        self.commands: list[tuple[float, object]] = []
        self.grip: list[list[float]] = []
        self.publishing = True
        self.probe = RosProbe("fake_arm")
        self._js = self.probe.publisher(cfg.joint_states_topic, JointState)
        self._JointState = JointState
        self.probe.subscribe(cfg.trajectory_topic, JointTrajectory, convert=self._on_traj)
        self.probe.subscribe(cfg.gripper.topic, Float64MultiArray, convert=self._on_grip)
        self._stop = threading.Event()
        self._rate = rate
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_traj(self, m):
        self.commands.append((time.monotonic(), m))
        if m.points:
            self.q = np.array(m.points[-1].positions)
        return m

    def _on_grip(self, m):
        self.grip.append(list(m.data))
        self.fingers = list(m.data)
        return m

    def _run(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            if self.publishing:
                js = self._JointState()
                js.header.stamp = self.probe.node.get_clock().now().to_msg()
                js.name = self.names + list(self.cfg.gripper.joints)
                js.position = [float(x) for x in self.q] + [float(x) for x in self.fingers]
                js.velocity = [0.0] * len(js.name)
                self._js.publish(js)
            self.probe.executor.spin_once(timeout_sec=0)
            nxt += 1.0 / self._rate
            time.sleep(max(0.0, nxt - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.probe.close()


@pytest.fixture()
def arm_and_robot(ros_env):
    from hardware.config import load_bridge_config
    from hardware.ros2_robot import Ros2Robot

    cfg = load_bridge_config(PRESET)
    arm = FakeArm(cfg)
    robot = Ros2Robot(config=cfg.with_overrides(connect_timeout_s=15.0))
    try:
        robot.connect()
        yield arm, robot
    finally:
        robot.disconnect()
        arm.close()


def _check_limits(robot, msgs, q_measured=None) -> None:
    """Every published point is finite and within the safety limits."""
    lim = robot.safety_limits
    lo, hi = lim.joint_lower + lim.position_margin, lim.joint_upper - lim.position_margin
    for m in msgs:
        assert list(m.joint_names) == list(robot.joint_names)
        for p in m.points:
            q = np.array(p.positions)
            v = np.array(p.velocities)
            assert q.shape == v.shape == (len(robot.joint_names),)
            assert np.all(np.isfinite(q)) and np.all(np.isfinite(v))
            assert np.all(q >= lo - 1e-9) and np.all(q <= hi + 1e-9)
            assert np.all(np.abs(v) <= lim.max_velocity + 1e-6)


def test_act_streams_single_point_trajectories_at_the_control_rate(arm_and_robot) -> None:
    from robot_skills.robot import Action

    arm, robot = arm_and_robot
    obs = robot.reset()
    assert obs.gripper_width == pytest.approx(0.08)
    np.testing.assert_allclose(obs.joint_pos, arm.q)
    n0 = len(arm.commands)
    t0 = time.monotonic()
    for k in range(20):
        t = time.time()
        applied = robot.act(Action(np.array([0.0, 0.0, -0.005]), np.zeros(3), 1.0))
        assert applied.delta_pos[2] < 0
    dt = (time.monotonic() - t0) / 20
    assert dt == pytest.approx(robot.control_period, rel=0.1)  # paced at the control period
    arm.probe.spin_for(0.2)
    msgs = [m for _, m in arm.commands[n0:]]
    assert len(msgs) == 20
    _check_limits(robot, msgs)
    tfs = msgs[-1].points[0].time_from_start
    assert tfs.sec + tfs.nanosec * 1e-9 == pytest.approx(robot.config.lookahead_periods *
                                                         robot.control_period)
    stamp = msgs[-1].header.stamp.sec + msgs[-1].header.stamp.nanosec * 1e-9
    assert abs(stamp - t) < 0.05  # stamped when the action was handed over
    assert arm.grip[-1] == pytest.approx([0.0, 0.0])  # closed: each finger at `closed`
    assert robot.observe().ee_pos[2] < obs.ee_pos[2] - 0.05  # the arm went down
    assert robot.interventions["nan_input"] == 0


def test_estop_holds_at_once_latches_and_is_released_by_the_service(arm_and_robot) -> None:
    from hardware.ros_probe import RosProbe
    from robot_skills.robot import Action, EpisodeInvalidError

    arm, robot = arm_and_robot
    robot.reset()
    down = Action(np.array([0.0, 0.0, -0.01]), np.zeros(3), -1.0)
    for _ in range(5):
        robot.act(down)
    with RosProbe("operator") as op:
        assert op.wait_for_subscriber(robot.config.estop_topic, 10)
        op.estop(True)
        assert op.spin_until(lambda: robot.estopped, 5)
        n_estop = len(arm.commands)
        with pytest.raises(EpisodeInvalidError, match="e-stop"):
            robot.act(down)
        with pytest.raises(EpisodeInvalidError, match="e-stop"):
            robot.reset()  # latched
        op.estop(False)  # a False does not release it
        op.spin_for(0.3)
        assert robot.estopped
        arm.probe.spin_for(0.2)
        stops = [m for _, m in arm.commands[n_estop - 1:]]
        _check_limits(robot, stops)
        assert np.abs(np.array(stops[-1].points[0].velocities)).max() < 0.5  # braking
        res = op.call(robot.config.estop_reset_service)
        assert res.success and "released" in res.message
    assert not robot.estopped
    robot.reset()
    robot.act(down)
    assert robot.interventions["estop"] >= 1


def test_the_watchdog_stops_the_skill_when_joint_states_stop(arm_and_robot) -> None:
    from robot_skills.robot import Action, EpisodeInvalidError

    arm, robot = arm_and_robot
    robot.reset()
    a = Action(np.array([0.01, 0.0, 0.0]), np.zeros(3), -1.0)
    robot.act(a)
    arm.publishing = False
    n = robot.safety_limits.stale_after_periods
    with pytest.raises(EpisodeInvalidError, match="stale joint states"):
        for _ in range(n + 3):
            robot.act(a)
    k = len(arm.commands)
    with pytest.raises(EpisodeInvalidError):
        robot.act(a)  # stays stopped
    arm.probe.spin_for(0.2)
    moving = [m for _, m in arm.commands[k:] if np.abs(m.points[0].velocities).max() > 1e-6]
    assert not moving
    arm.publishing = True
    robot.reset()  # fresh states: a new episode may start
    robot.act(a)
    assert robot.interventions["stale_state"] >= 1


def test_nan_and_huge_actions_never_reach_the_wire_unsafe(arm_and_robot) -> None:
    from robot_skills.robot import Action

    arm, robot = arm_and_robot
    robot.reset()
    n0 = len(arm.commands)
    with pytest.raises(ValueError, match="NaN"):
        robot.act(Action(np.array([np.nan, 0.0, 0.0]), np.zeros(3), 0.0))
    for s in (1e6, -1e6, 1e300):
        robot.act(Action(np.full(3, s), np.full(3, s), s))
    arm.probe.spin_for(0.2)
    _check_limits(robot, [m for _, m in arm.commands[n0:]])
    assert robot.interventions["nan_input"] == 1


def test_property_no_command_on_the_wire_violates_a_limit(arm_and_robot, monkeypatch) -> None:
    """10,000 random / NaN / huge / discontinuous policy outputs through the bridge (IK, safety
    filter, message building, DDS publish). The arm tracks each command at once (its state is
    fed back synchronously so the run is not paced by DDS), so step limits are checked against
    the state the bridge measured."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from robot_skills.robot import Action, EpisodeInvalidError

    arm, robot = arm_and_robot
    lim = robot.safety_limits
    lo, hi = lim.joint_lower + lim.position_margin, lim.joint_upper - lim.position_margin
    monkeypatch.setattr(robot, "_pace", lambda: None)
    sent: list = []
    pub = robot._traj_pub
    real_publish = pub.publish

    def record(msg):
        sent.append((robot._q.copy(), msg))
        real_publish(msg)

    monkeypatch.setattr(pub, "publish", record)
    robot.reset()
    arm.publishing = False  # the state is fed back below, synchronously
    state = {"bad": 0, "n": 0}
    finite = st.floats(-0.2, 0.2)
    wild = st.one_of(finite, st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([1e6, -1e6, 1e300, -0.05, 0.05]))

    @settings(max_examples=10_000, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(wild, min_size=7, max_size=7),
           st.one_of(st.none(), st.lists(st.floats(-0.3, 0.3), min_size=7, max_size=7)))
    def check(v, jump):
        state["n"] += 1
        if jump is not None:  # a discontinuous measured state (the arm was pushed)
            robot._q = np.clip(robot._q + np.array(jump), lo, hi)
        robot._state_stamp = time.time()
        k = len(sent)
        try:
            robot.act(Action(np.array(v[:3]), np.array(v[3:6]), v[6]))
        except (ValueError, EpisodeInvalidError):
            with robot._lock:
                robot._stop_reason = None
        for q_meas, m in sent[k:]:
            q = np.array(m.points[0].positions)
            vel = np.array(m.points[0].velocities)
            ok = (np.all(np.isfinite(q)) and np.all(np.isfinite(vel))
                  and np.all(q >= lo - 1e-9) and np.all(q <= hi + 1e-9)
                  and np.all(np.abs(q - q_meas) <= lim.max_step + 1e-9)
                  and np.all(np.abs(vel) <= lim.max_velocity + 1e-6))
            state["bad"] += not ok
            robot._q = q.copy()  # the arm follows the command
        assert math.isfinite(float(np.sum(robot._q)))

    check()
    assert state["n"] == 10_000 and len(sent) > 5_000
    assert state["bad"] == 0
