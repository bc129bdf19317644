"""The sim twin: JointTrajectoryController semantics (pure numpy, default tier) and the twin node
over real DDS (``ros`` marker): joint states, object poses, the pose model, predicates, command log,
trajectory replacement and holding, scene reset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from libero_paths import LIBERO_BDDL

from sim.ros_twin import DEFAULT_JOINT_NAMES, TrajectoryFollower

TASK = LIBERO_BDDL / "libero_goal" / "put_the_bowl_on_the_plate.bddl"
NAMES = ("a", "b")


def _f(q0=(0.0, 0.0)) -> TrajectoryFollower:
    return TrajectoryFollower(NAMES, np.array(q0, dtype=float))


# ------------------------------------------------------------------ JTC semantics (no ROS)


def test_a_single_point_is_reached_at_its_time_and_then_held() -> None:
    f = _f()
    assert f.set_trajectory(NAMES, [(1.0, [1.0, -1.0], None)], start=10.0, now=10.0,
                            q_measured=np.zeros(2)) is None
    np.testing.assert_allclose(f.sample(10.5)[0], [0.5, -0.5])  # linear without velocities
    np.testing.assert_allclose(f.sample(11.0)[0], [1.0, -1.0])
    p, v = f.sample(12.0)
    np.testing.assert_allclose(p, [1.0, -1.0])
    np.testing.assert_allclose(v, [0.0, 0.0])
    assert not f.active


def test_cubic_segments_match_positions_and_velocities_at_the_points() -> None:
    f = _f()
    f.set_trajectory(NAMES, [(1.0, [1.0, 0.0], [0.5, 0.0]), (2.0, [2.0, 0.0], [0.0, 0.0])],
                     start=0.0, now=0.0, q_measured=np.zeros(2))
    p, v = f.sample(1.0 - 1e-9)
    np.testing.assert_allclose(p, [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(v, [0.5, 0.0], atol=1e-6)
    p, v = f.sample(0.0)
    np.testing.assert_allclose(p, [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(v, [0.0, 0.0], atol=1e-9)


def test_a_new_trajectory_replaces_the_old_from_the_current_desired_state() -> None:
    f = _f()
    f.set_trajectory(NAMES, [(2.0, [2.0, 0.0], None)], start=0.0, now=0.0,
                     q_measured=np.zeros(2))
    mid = f.sample(1.0)[0].copy()  # [1, 0]
    f.set_trajectory(NAMES, [(1.0, [0.0, 1.0], None)], start=1.0, now=1.0,
                     q_measured=np.zeros(2))
    np.testing.assert_allclose(f.sample(1.0)[0], mid)  # no jump at the switch
    np.testing.assert_allclose(f.sample(2.0)[0], [0.0, 1.0])  # the old goal is gone


def test_past_points_are_dropped_and_an_all_past_trajectory_is_rejected() -> None:
    f = _f()
    pts = [(0.5, [9.0, 9.0], None), (2.0, [1.0, 1.0], None)]
    assert f.set_trajectory(NAMES, pts, start=0.0, now=1.0, q_measured=np.zeros(2)) is None
    assert np.all(f.sample(1.5)[0] < 1.0)  # never heads for the dropped point (9, 9)
    np.testing.assert_allclose(f.sample(2.0)[0], [1.0, 1.0])
    why = f.set_trajectory(NAMES, [(0.5, [5.0, 5.0], None)], start=0.0, now=3.0,
                           q_measured=np.zeros(2))
    assert why is not None and "past" in why
    np.testing.assert_allclose(f.sample(3.0)[0], [1.0, 1.0])  # the old one stands


def test_an_empty_trajectory_holds_the_measured_position() -> None:
    f = _f()
    f.set_trajectory(NAMES, [(1.0, [1.0, 1.0], None)], start=0.0, now=0.0,
                     q_measured=np.zeros(2))
    assert f.set_trajectory(NAMES, [], start=0.5, now=0.5,
                            q_measured=np.array([0.3, 0.4])) is None
    np.testing.assert_allclose(f.sample(0.6)[0], [0.3, 0.4])
    np.testing.assert_allclose(f.sample(5.0)[0], [0.3, 0.4])


@pytest.mark.parametrize("names, pts, match", [
    (("a",), [(1.0, [1.0], None)], "partial"),
    (("a", "c"), [(1.0, [1.0, 1.0], None)], "unknown"),
    (NAMES, [(1.0, [float("nan"), 1.0], None)], "finite"),
    (NAMES, [(1.0, [1.0], None)], "finite"),
    (NAMES, [(1.0, [1.0, 1.0], [1.0])], "velocities"),
    (NAMES, [(1.0, [1.0, 1.0], None), (1.0, [2.0, 2.0], None)], "increasing"),
])
def test_malformed_trajectories_are_rejected_and_change_nothing(names, pts, match) -> None:
    f = _f((0.1, 0.2))
    why = f.set_trajectory(names, pts, start=0.0, now=0.0, q_measured=np.zeros(2))
    assert why is not None and match in why
    np.testing.assert_allclose(f.sample(1.0)[0], [0.1, 0.2])


def test_joint_order_of_the_message_is_mapped_by_name() -> None:
    f = _f()
    f.set_trajectory(("b", "a"), [(1.0, [2.0, 1.0], None)], start=0.0, now=0.0,
                     q_measured=np.zeros(2))
    np.testing.assert_allclose(f.sample(1.0)[0], [1.0, 2.0])


# ------------------------------------------------------------------ the node over DDS


@pytest.fixture()
def ros_env():
    from hardware.processes import isolated_ros_env

    return isolated_ros_env()


@pytest.mark.ros
def test_twin_node_speaks_ros2_control_topics(tmp_path: Path, ros_env, monkeypatch) -> None:
    """Joint states at the control rate, object poses in the base frame, a latched pose model, the
    contact predicates as JSON, JTC following with the command log, scene reset."""
    for k, v in ros_env.items():
        monkeypatch.setenv(k, v)
    import yaml
    from builtin_interfaces.msg import Duration
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from hardware.processes import NodeProcess, ros_args
    from hardware.ros_probe import RosProbe
    from robot_skills.perception import PoseWorldModel

    log = tmp_path / "commands.jsonl"
    model_file = tmp_path / "model.yaml"
    twin = NodeProcess("sim.ros_twin", ros_args(None, {
        "task": str(TASK), "command_log": str(log), "pose_model_out": str(model_file)}),
        env=ros_env, log_path=tmp_path / "twin.log", name="twin")
    probe = RosProbe()
    # the twin's publish times (header stamps), not this probe's receive times: a probe starved
    # of CPU receives queued messages in a burst that says nothing about the twin's rate
    js = probe.subscribe("/joint_states", JointState, convert=lambda m: (
        m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec, list(m.name), np.array(m.position)))
    bowl = probe.subscribe("/objects/akita_black_bowl_1/pose", PoseStamped)
    preds = probe.subscribe_json("/sim_twin/predicates")
    models = probe.subscribe("/sim_twin/pose_model", String, latched=True,
                             convert=lambda m: m.data)
    pub = probe.publisher("/panda_arm_controller/joint_trajectory", JointTrajectory)

    def traj(q, tfs):
        m = JointTrajectory()
        m.joint_names = list(DEFAULT_JOINT_NAMES)
        m.points = [JointTrajectoryPoint(positions=[float(x) for x in q], time_from_start=Duration(
            sec=int(tfs), nanosec=int(round((tfs % 1) * 1e9))))]
        return m

    try:
        twin.start()
        assert probe.spin_until(lambda: len(js) > 30 and bowl and preds and models, 60), \
            twin.log()
        t = np.array([x[0] for x in js[-30:]])
        assert abs(np.median(np.diff(t)) - 0.05) < 0.01  # 20 Hz
        assert js[-1][1] == [*DEFAULT_JOINT_NAMES, "panda_finger_joint1", "panda_finger_joint2"]
        assert bowl[-1].header.frame_id == "panda_link0"
        assert preds[-1]["goal"] == {"(On akita_black_bowl_1 plate_1)": False}
        assert preds[-1]["success"] is False and "(Handempty)" in preds[-1]["state"]
        model = PoseWorldModel.from_dict(yaml.safe_load(models[-1]))
        assert "akita_black_bowl_1" in model.tracked_entities()
        assert model_file.read_text() == models[-1]

        q0 = js[-1][2][:7].copy()
        target = q0 + np.r_[0.2, np.zeros(6)]
        pub.publish(traj(target, 1.0))
        assert probe.spin_until(lambda: abs(js[-1][2][0] - target[0]) < 0.01, 10), js[-1][2]
        # replaced mid-way by a trajectory back to q0: the arm turns around
        pub.publish(traj(q0 + np.r_[0.4, np.zeros(6)], 2.0))
        probe.spin_for(0.5)
        pub.publish(traj(q0, 0.5))
        assert probe.spin_until(lambda: abs(js[-1][2][0] - q0[0]) < 0.01, 10), js[-1][2]
        # an empty trajectory holds where the arm is
        pub.publish(traj(q0 + np.r_[0.3, np.zeros(6)], 1.0))
        probe.spin_for(0.4)
        empty = JointTrajectory()
        empty.joint_names = list(DEFAULT_JOINT_NAMES)
        pub.publish(empty)
        probe.spin_for(0.3)
        held = js[-1][2][0]
        probe.spin_for(1.0)
        assert abs(js[-1][2][0] - held) < 0.01 and q0[0] + 0.02 < held < q0[0] + 0.3
        # malformed: logged as rejected, ignored
        bad = traj(q0, 1.0)
        bad.joint_names = ["nope"] * 7
        pub.publish(bad)
        probe.spin_for(0.3)
        recs = [json.loads(x) for x in log.read_text().splitlines()]
        assert [r["accepted"] for r in recs if r["kind"] == "arm"] == [True] * 5 + [False]
        assert "unknown joint" in recs[-1]["why"] and recs[-1]["recv"] > 0

        res = probe.call("/sim_twin/reset", timeout=30)
        assert res.success, res.message
        assert probe.spin_until(lambda: np.abs(js[-1][2][:7] - q0).max() < 0.01, 5)
    finally:
        probe.close()
        twin.stop()
    assert not twin.running()
