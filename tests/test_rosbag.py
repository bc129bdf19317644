"""Demonstrations from ROS 2: rosbag2 (MCAP) sessions <-> HDF5 demos (``robot_skills.data.rosbag``).

A scripted expert episode runs in the simulator; its steps are published into an MCAP bag the
way the bridge does (written with ``rosbags`` itself: header stamps, receive latency, jitter, a
faster joint-state stream with the fingers on their own messages, idle actions outside the
episode), imported, and compared with the directly recorded episode. Then: the HDF5 -> MCAP ->
HDF5 round trip, a faster teleop action stream composed to the control rate, malformed bags
(missing topic, wrong type, non-monotonic stamps, gaps, truncated file, clock mismatch, bad
events) with errors that name the bag, topic and time, the console entry, and a tiny skill
library trained from imported demos.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.data.hdf5 import DemoReader, DemoWriter
from robot_skills.data.rosbag import (
    ACTION_LAYOUT_LABEL,
    DEFAULT_START_NS,
    JOINT_TARGET_KEY,
    BagWriter,
    RosbagImportError,
    compose_actions,
    export_rosbag,
    export_rosbag_main,
    import_rosbag,
    import_rosbag_main,
)
from robot_skills.execution.recording import EpisodeRecording

TASK = LIBERO_BDDL / "libero_goal" / "put_the_bowl_on_the_plate.bddl"
MS = 1_000_000
DT = 50 * MS


class _BridgeRecorder(EpisodeRecording):
    """The executor's recorder plus what the bridge publishes besides: the joint targets the
    controller commanded after each action (the trajectory topic)."""

    def __init__(self, robot) -> None:
        super().__init__()
        self.robot = robot
        self.targets: list[np.ndarray] = []

    def add_step(self, obs, action) -> None:
        super().add_step(obs, action)
        self.targets.append(np.asarray(self.robot.controller.commanded_q, np.float64))


def _run_episode(seed: int) -> dict:
    """One scripted expert episode of a libero_goal task (the sim as the arm)."""
    from robot_skills.execution.executor import Executor
    from sim.factories import ExpertSkills, SimWorldFactory

    world = SimWorldFactory()(TASK, seed)
    world.robot.connect()
    try:
        world.robot.reset(seed)
        q_cmd0 = world.robot.controller.commanded_q
        q0 = world.robot.observe().joint_pos
        rec = _BridgeRecorder(world.robot)
        result = Executor(world, ExpertSkills()(TASK), max_steps=600, recorder=rec).run()
    finally:
        world.robot.disconnect()
    assert result.success, (result.reason, result.messages)
    return {"rec": rec, "seed": seed, "q_cmd0": q0 if q_cmd0 is None else q_cmd0,
            "language": getattr(world.task, "language", ""),
            "segments": [s for s in rec.segments if s.end > s.start]}


@pytest.fixture(scope="module")
def episodes() -> list[dict]:
    return [_run_episode(0), _run_episode(1)]


def _publish_session(bag: Path, episodes: list[dict], *, seed: int = 0, idle: bool = True
                     ) -> None:
    """Publish episodes as the bridge and a perception node would, with a recorder's view of
    time: stamps at the control instants plus jitter, receive latency in the log times, the
    arm's joint states at twice the control rate (in-between messages carry interpolated
    positions), finger joints on their own messages, a few idle teleop actions before the first
    episode (``idle``), and events that race their actions: the second episode's start and
    every second skill's start arrive just after the first action they cover."""
    rng = np.random.default_rng(seed)
    t = DEFAULT_START_NS
    with BagWriter(bag) as w:
        names = w.names
        if idle:  # idle actions before any episode: outside every episode, dropped
            for i in range(3):
                w.action(t + i * DT, np.zeros(7))
            t += 10 * DT
        for e, ep in enumerate(episodes):
            rec, T = ep["rec"], len(ep["rec"].actions)
            jitter = rng.integers(-3 * MS, 3 * MS, size=T)
            times = t + np.arange(T) * DT + jitter
            w.episode_event(int(times[0]) + (2 * MS if e % 2 else -10 * MS), "start",
                            task=TASK.stem, seed=ep["seed"], language=ep["language"])
            w.trajectory(int(times[0]) - 5 * MS, ep["q_cmd0"], 0.05)
            starts = {s.start: s for s in ep["segments"]}
            ends = {s.end - 1: s for s in ep["segments"]}
            for k in range(T):
                o, a, tk = rec.observations[k], rec.actions[k], int(times[k])
                half = o.gripper_width / 2
                w.joint_states(tk, o.joint_pos, o.joint_vel, None, log_ns=tk + MS // 5)
                w.joint_state_msg(tk, names.finger_joints, [half, half], log_ns=tk + MS // 4)
                for name, pose in o.object_poses.items():
                    w.object_pose(tk, name, pose)  # logged at its stamp
                if k in starts:
                    s = starts[k]
                    late = ep["segments"].index(s) % 2  # overtaken by its first action
                    w.skill_event(tk + (2 * MS if late else MS // 2), "start", s.skill, s.args,
                                  arg_offsets=s.arg_offsets, arg_sizes=s.arg_sizes)
                w.action(tk + MS, a.to_array())
                w.trajectory(tk + 2 * MS, rec.targets[k], 0.05)
                if k in ends:
                    s = ends[k]
                    w.skill_event(tk + 3 * MS, "end", s.skill, s.args, s.success)
                if k + 1 < T:  # an in-between joint state that the hold must never pick
                    mid = tk + DT // 2
                    q_mid = (o.joint_pos + rec.observations[k + 1].joint_pos) / 2
                    w.joint_states(mid, q_mid, o.joint_vel, None, log_ns=mid + MS // 5)
            w.episode_event(int(times[-1]) + 5 * MS, "end", success=True)
            t = int(times[-1]) + 2_000 * MS


def _write_direct(path: Path, episodes: list[dict]) -> Path:
    """The episodes as the collection path writes them (DemoWriter straight from the recorder)."""
    with DemoWriter(path, env_args={"control_hz": 20.0}) as w:
        for ep in episodes:
            rec = ep["rec"]
            w.add_demo(rec.observations, np.stack([a.to_array() for a in rec.actions]),
                       skill_segments=ep["segments"],
                       attrs={"task": TASK.stem, "seed": ep["seed"], "language": ep["language"],
                              "success": True})
    return path


@pytest.fixture(scope="module")
def session(tmp_path_factory, episodes) -> dict:
    d = tmp_path_factory.mktemp("session")
    bag = d / "session"
    _publish_session(bag, episodes)
    out = d / "imported.hdf5"
    summary = import_rosbag(bag, out)
    return {"bag": bag, "out": out, "summary": summary,
            "direct": _write_direct(d / "direct.hdf5", episodes), "dir": d}


def _assert_same_demo(a, b, *, ee_atol: float = 1e-9) -> None:
    np.testing.assert_allclose(b.actions, a.actions, atol=1e-7)
    for k in ("joint_pos", "joint_vel"):
        np.testing.assert_allclose(b.obs[k], a.obs[k], atol=1e-12, err_msg=k)
    np.testing.assert_allclose(b.obs["gripper_width"], a.obs["gripper_width"], atol=1e-12)
    np.testing.assert_allclose(b.obs["ee_pos"], a.obs["ee_pos"], atol=ee_atol)
    np.testing.assert_allclose(b.obs["ee_quat"], a.obs["ee_quat"], atol=ee_atol)
    assert sorted(b.object_poses) == sorted(a.object_poses)
    for k in a.object_poses:
        np.testing.assert_allclose(b.object_poses[k], a.object_poses[k], atol=1e-12, err_msg=k)
    assert b.segments == a.segments


# ------------------------------------------------------------------ the recorded session
def test_imported_session_matches_the_direct_recording(session, episodes):
    """Every step of the bridge's bag comes back as the executor recorded it: actions, joints,
    EE pose (forward kinematics == the simulator's sensors), gripper width from the fingers,
    every object pose, the skill segments, the episodes' attributes and commanded targets."""
    s = session["summary"]
    assert s["demos"] == 2 and s["bags"][0]["dropped_actions"] == 3
    info = s["bags"][0]["episodes"]
    assert [e["steps"] for e in info] == [len(ep["rec"].actions) for ep in episodes]
    assert all(e["composed_steps"] == 0 and e["filled_steps"] == 0 for e in info)
    with DemoReader(session["direct"]) as direct, DemoReader(session["out"]) as imported:
        assert imported.demos == direct.demos == ["demo_0", "demo_1"]
        assert imported.env_args["source"] == "rosbag2"
        for name, ep in zip(direct.demos, episodes):
            a, b = direct.load(name), imported.load(name)
            _assert_same_demo(a, b)
            assert [(x.skill, x.args) for x in b.segments] == [
                ("pick", ("akita_black_bowl_1",)), ("place_on", ("akita_black_bowl_1", "plate_1"))]
            assert b.attrs["task"] == TASK.stem and b.attrs["seed"] == ep["seed"]
            assert b.attrs["success"] is True and b.attrs["language"] == ep["language"]
            assert b.attrs["source_bag"] == str(session["bag"])
    with h5py.File(session["out"], "r") as f:  # the extra dataset DemoReader does not load
            for name, ep in zip(["demo_0", "demo_1"], episodes):
                targets = np.asarray(f[f"data/{name}/obs/{JOINT_TARGET_KEY}"])
                want = np.stack([ep["q_cmd0"], *ep["rec"].targets[:-1]])
                np.testing.assert_allclose(targets, want, atol=1e-12)


def test_bag_follows_the_topic_contract(session):
    """The bag is rosbag2 MCAP (metadata.yaml + one .mcap) with the documented topics and
    types, readable by a plain ``rosbags`` reader with a stock ROS 2 Jazzy typestore."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    bag = session["bag"]
    assert sorted(p.suffix for p in bag.iterdir()) == [".mcap", ".yaml"]
    with Reader(bag) as r:
        types = {c.topic: c.msgtype for c in r.connections}
        assert r.connections[0].msgdef  # definitions embedded: readable without ROS
        ts = get_typestore(Stores.ROS2_JAZZY)
        actions = [ts.deserialize_cdr(raw, c.msgtype) for c, _, raw in r.messages()
                   if c.topic == "/robot_skills/action"]
    assert types["/joint_states"] == "sensor_msgs/msg/JointState"
    assert types["/panda_arm_controller/joint_trajectory"] == "trajectory_msgs/msg/JointTrajectory"
    assert types["/robot_skills/action"] == "std_msgs/msg/Float64MultiArray"
    assert types["/robot_skills/skill"] == types["/robot_skills/episode"] == "std_msgs/msg/String"
    assert types["/objects/plate_1/pose"] == "geometry_msgs/msg/PoseStamped"
    assert actions[0].layout.dim[0].label == ACTION_LAYOUT_LABEL
    assert actions[0].layout.dim[0].size == 7


def test_round_trip_hdf5_mcap_hdf5(session, tmp_path):
    """HDF5 -> MCAP -> HDF5 reproduces actions, joints, gripper, EE pose, object poses,
    segments, attributes and commanded targets, for the direct recording and the imported file."""
    for src in (session["direct"], session["out"]):
        bag, back = tmp_path / f"{src.stem}_bag", tmp_path / f"{src.stem}_back.hdf5"
        info = export_rosbag(src, bag, distro="humble")
        assert info["episodes"] == 2
        import_rosbag(bag, back)
        with DemoReader(src) as a, DemoReader(back) as b:
            assert a.demos == b.demos
            for n in a.demos:
                x, y = a.load(n), b.load(n)
                _assert_same_demo(x, y)
                np.testing.assert_array_equal(y.actions, x.actions)  # float32 exactly
                for k in ("task", "seed", "language", "success"):
                    assert y.attrs[k] == x.attrs[k], k
        with h5py.File(src, "r") as fa, h5py.File(back, "r") as fb:
                for n in ("demo_0", "demo_1"):
                    key = f"data/{n}/obs/{JOINT_TARGET_KEY}"
                    assert (key in fa) == (key in fb)
                    if key in fa:
                        np.testing.assert_array_equal(fb[key][()], fa[key][()])
    with pytest.raises(FileExistsError, match="exists"):
        export_rosbag(session["direct"], tmp_path / "direct_bag")


def test_one_bag_one_episode_without_markers(session, tmp_path, episodes):
    """Without an episode topic the whole bag is one episode."""
    bag = tmp_path / "bag"
    _publish_session(bag, episodes[:1], idle=False)
    out = tmp_path / "one.hdf5"
    s = import_rosbag(bag, out, topics={"episode": "/not/recorded"})
    assert s["demos"] == 1 and s["bags"][0]["dropped_actions"] == 0
    with DemoReader(out) as r, DemoReader(session["direct"]) as direct:
        d = r.load("demo_0")
        _assert_same_demo(direct.load("demo_0"), d)
        assert "task" not in d.attrs


def test_several_bags_into_one_file(session, tmp_path):
    out = tmp_path / "two.hdf5"
    s = import_rosbag([session["bag"], session["bag"]], out)
    assert s["demos"] == 4
    with DemoReader(out) as r:
        assert r.demos == ["demo_0", "demo_1", "demo_2", "demo_3"]


# ------------------------------------------------------------------ resampling
def _synthetic_bag(path: Path, n_actions: int, action_dt: int, action, *, drop=(),
                   joint_dt: int = 10 * MS, skill: bool = True, t0: int = DEFAULT_START_NS,
                   joint_stamp=None, **writer_kw) -> None:
    """A bag with a steady joint-state stream and ``n_actions`` actions every ``action_dt``."""
    with BagWriter(path, **writer_kw) as w:
        end = t0 + n_actions * action_dt
        for t in range(t0 - 20 * MS, end + 20 * MS, joint_dt):
            stamp = t if joint_stamp is None else joint_stamp(t)
            w.joint_states(stamp, np.full(7, 0.1), None, 0.08, log_ns=t)
            w.object_pose(stamp, "cube_1", [0.5, 0, 0.02, 1, 0, 0, 0], log_ns=t)
        if skill:
            w.skill_event(t0 - MS, "start", "pick", ["cube_1"])
        for i in range(n_actions):
            if i not in drop:
                w.action(t0 + i * action_dt, action(i))
        if skill:
            w.skill_event(end, "end", "pick", ["cube_1"], True)


def test_faster_teleop_stream_is_composed_to_the_control_rate(tmp_path):
    """100 Hz teleop actions become 20 Hz steps: five deltas per step, translations summed,
    rotations composed, the last gripper command."""
    rot = np.array([0.0, 0.0, 0.02])

    def act(i):
        return np.array([0.001, 0.0, -0.002, *rot, 1.0 if i >= 50 else -1.0])

    _synthetic_bag(tmp_path / "bag", 100, 10 * MS, act)
    s = import_rosbag(tmp_path / "bag", tmp_path / "out.hdf5")
    ep = s["bags"][0]["episodes"][0]
    assert ep["steps"] == 21 and ep["composed_steps"] == 21  # 3 and 2 actions in the end bins
    with DemoReader(tmp_path / "out.hdf5") as r:
        d = r.load("demo_0")
    np.testing.assert_allclose(d.actions[1:20, :3], [[0.005, 0.0, -0.01]] * 19, atol=1e-7)
    np.testing.assert_allclose(d.actions[1:20, 3:6], [5 * rot] * 19, atol=1e-7)
    assert d.actions[10, 6] == 1.0 and d.actions[9, 6] == -1.0
    assert d.segments[0].start == 0 and d.segments[0].end == 21
    np.testing.assert_allclose(d.obs["gripper_width"], 0.08)


def test_compose_actions_composes_rotations_in_order():
    a = np.array([0.01, 0, 0, np.pi / 2, 0, 0, -1.0])
    b = np.array([0, 0.02, 0, 0, np.pi / 2, 0, 1.0])
    c = compose_actions(np.stack([a, b]))
    np.testing.assert_allclose(c[:3], [0.01, 0.02, 0])
    assert c[6] == 1.0
    # R = Ry(90) Rx(90): x -> z -> -x... check against matrices
    def rot(r):
        th = np.linalg.norm(r)
        k = r / th
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K
    np.testing.assert_allclose(rot(c[3:6]), rot(b[3:6]) @ rot(a[3:6]), atol=1e-12)
    np.testing.assert_allclose(compose_actions(a[None]), a, atol=1e-12)


def test_a_dropped_action_is_a_still_step(tmp_path):
    _synthetic_bag(tmp_path / "bag", 20, DT, lambda i: [0.01, 0, 0, 0, 0, 0, 1.0], drop=(7,))
    s = import_rosbag(tmp_path / "bag", tmp_path / "out.hdf5")
    assert s["bags"][0]["episodes"][0]["filled_steps"] == 1
    with DemoReader(tmp_path / "out.hdf5") as r:
        d = r.load("demo_0")
    np.testing.assert_array_equal(d.actions[7], [0, 0, 0, 0, 0, 0, 1.0])
    assert len(d) == 20


# ------------------------------------------------------------------ malformed bags
def _err(bag: Path, out: Path, match: str, **kw) -> RosbagImportError:
    with pytest.raises(RosbagImportError, match=match) as ei:
        import_rosbag(bag, out, **kw)
    assert str(bag) in str(ei.value)
    assert not out.exists()  # nothing written
    return ei.value


def test_missing_topic_is_named(tmp_path):
    bag = tmp_path / "bag"
    with BagWriter(bag) as w:
        w.action(DEFAULT_START_NS, np.zeros(7))
    e = _err(bag, tmp_path / "o.hdf5", r"topic /joint_states: missing \(expected "
             r"sensor_msgs/msg/JointState\); the bag has topics \['/robot_skills/action'\]")
    assert e.topic == "/joint_states"


def test_missing_joint_is_named_and_other_arms_import(tmp_path):
    """An FR3's bag (``fr3_joint1..7``, ``fr3_link0``) imported as a Panda names the joints it
    lacks; imported as an FR3 it goes through the FR3's kinematics. An arm without a Franka hand
    needs its finger joints named."""
    from robot_skills.control.diff_ik import DiffIKController
    from robot_skills.robots import get_arm

    _synthetic_bag(tmp_path / "bag", 5, DT, lambda i: np.zeros(7), arm="fr3")
    _err(tmp_path / "bag", tmp_path / "o.hdf5", r"topic /joint_states: JointState messages "
         r"never name joints \['panda_joint1'.*pass joint_names", base_frame="fr3_link0")
    s = import_rosbag(tmp_path / "bag", tmp_path / "o.hdf5", arm="fr3")
    assert s["steps"] == 5
    with DemoReader(tmp_path / "o.hdf5") as r:
        d = r.load("demo_0")
    pos, quat = DiffIKController(arm=get_arm("fr3")).forward_kinematics(np.full(7, 0.1))
    np.testing.assert_allclose(d.obs["ee_pos"], [pos] * 5, atol=1e-12)
    np.testing.assert_allclose(d.obs["ee_quat"], [quat] * 5, atol=1e-12)
    with pytest.raises(ValueError, match="arm 'ur5e' has no default finger joints"):
        import_rosbag(tmp_path / "bag", tmp_path / "o.hdf5", arm="ur5e")
    with pytest.raises(ValueError, match="unknown arm 'kuka'"):
        import_rosbag(tmp_path / "bag", tmp_path / "o.hdf5", arm="kuka")


def test_wrong_type_is_named(tmp_path):
    bag = tmp_path / "bag"
    with BagWriter(bag) as w:
        w.joint_states(DEFAULT_START_NS, np.zeros(7), None, 0.0)
        w.event("/robot_skills/action", DEFAULT_START_NS, {"event": "start"})
    _err(bag, tmp_path / "o.hdf5", r"topic /robot_skills/action: has type std_msgs/msg/String, "
         r"expected std_msgs/msg/Float64MultiArray")


def test_non_monotonic_stamps_are_named(tmp_path):
    back = DEFAULT_START_NS + 300 * MS

    def stamp(t):  # the arm's clock jumps back 40 ms once
        return t - 40 * MS if t >= back else t

    _synthetic_bag(tmp_path / "bag", 20, DT, lambda i: np.zeros(7), joint_stamp=stamp)
    e = _err(tmp_path / "bag", tmp_path / "o.hdf5",
             r"topic /joint_states \[panda_joint1\] at t=1700000000\.260000 s \(\+0\.280 s from "
             r"the bag's start\): non-monotonic stamps: header stamp goes back 0\.030000 s")
    assert e.time_ns == back - 40 * MS
    # aligned by log time instead, the same bag imports
    assert import_rosbag(tmp_path / "bag", tmp_path / "o.hdf5", time_source="log")["steps"] == 20


def test_gap_longer_than_allowed_is_named(tmp_path):
    # joint states silent for 0.5 s in the middle of the actions
    gap = tmp_path / "gap"
    t0 = DEFAULT_START_NS
    with BagWriter(gap) as w:
        for t in range(t0 - 20 * MS, t0 + 40 * DT, 10 * MS):
            if not t0 + 1000 * MS <= t < t0 + 1500 * MS:
                w.joint_states(t, np.zeros(7), None, 0.04)
        for i in range(40):
            w.action(t0 + i * DT, np.zeros(7))
    _err(gap, tmp_path / "o.hdf5", r"topic /joint_states \[panda_joint1\] at t=1700000001\.250000"
         r" s .*gap: the latest message is 0\.260 s old")
    assert import_rosbag(gap, tmp_path / "o.hdf5", max_gap_periods=12)["steps"] == 40
    # a gap in the action stream itself
    gap2 = tmp_path / "gap2"
    _synthetic_bag(gap2, 40, DT, lambda i: np.zeros(7), drop=range(10, 20), skill=False)
    _err(gap2, tmp_path / "o2.hdf5", r"topic /robot_skills/action at t=1700000000\.450000 s.*"
         r"gap of 0\.550 s between actions, more than 5 control periods")


def test_truncated_file_is_refused(session, tmp_path):
    import shutil

    bag = tmp_path / "cut"
    shutil.copytree(session["bag"], bag)
    mcap = next(bag.glob("*.mcap"))
    with open(mcap, "r+b") as f:
        f.truncate(mcap.stat().st_size // 2)
    _err(bag, tmp_path / "o.hdf5", r"cannot read the bag .*mcap recover")
    _err(mcap, tmp_path / "o.hdf5", r"cannot read the bag")  # the .mcap file alone too


def test_clock_mismatch_is_named(tmp_path):
    # the arm stamps with its own clock, 30 s behind the recorder
    _synthetic_bag(tmp_path / "bag", 10, DT, lambda i: np.zeros(7),
                   joint_stamp=lambda t: t - 30 * 10**9)
    _err(tmp_path / "bag", tmp_path / "o.hdf5", r"header stamps are \+30\.000 s from the bag's "
         r"log times .*time_source='log'")


def test_bad_events_and_actions_are_named(tmp_path):
    t0 = DEFAULT_START_NS

    def bag_with(name, fn):
        p = tmp_path / name
        with BagWriter(p) as w:
            for t in range(t0 - 20 * MS, t0 + 10 * DT, 10 * MS):
                w.joint_states(t, np.zeros(7), None, 0.04)
            fn(w)
        return p

    def actions(w, n=10):
        for i in range(n):
            w.action(t0 + i * DT, np.zeros(7))

    b = bag_with("layout", lambda w: w.write("/robot_skills/action",
                                             "std_msgs/msg/Float64MultiArray", t0,
                                             w.ts.types["std_msgs/msg/Float64MultiArray"](
                                                 layout=w.ts.types["std_msgs/msg/MultiArrayLayout"](
                                                     dim=[], data_offset=0),
                                                 data=np.zeros(6))))
    _err(b, tmp_path / "o.hdf5", r"topic /robot_skills/action at .*an action is 7 values.*got 6")
    b = bag_with("json", lambda w: (actions(w), w.write(
        "/robot_skills/skill", "std_msgs/msg/String", t0, w.ts.types["std_msgs/msg/String"](
            data="{pick"))))
    _err(b, tmp_path / "o.hdf5", r"topic /robot_skills/skill at t=1700000000\.000000 s.*not JSON")
    b = bag_with("nested", lambda w: (actions(w), w.skill_event(t0, "start", "pick", ["a"]),
                                      w.skill_event(t0 + DT, "start", "place_on", ["a", "b"])))
    _err(b, tmp_path / "o.hdf5", r"place_on\['a', 'b'\] starts while pick\['a'\]")
    b = bag_with("nosuccess", lambda w: (actions(w), w.skill_event(t0, "start", "pick", ["a"]),
                                         w.event("/robot_skills/skill", t0 + DT,
                                                 {"event": "end", "skill": "pick",
                                                  "args": ["a"]})))
    _err(b, tmp_path / "o.hdf5", r"needs \"success\": true/false")
    b = bag_with("offsets", lambda w: (actions(w), w.event(
        "/robot_skills/skill", t0, {"event": "start", "skill": "place_on", "args": ["a", "b"],
                                    "arg_offsets": [None, [0.0, "x", 0.02]]})))
    _err(b, tmp_path / "o.hdf5", r"/robot_skills/skill.*arg_offsets must hold.*null or 3 finite")
    b = bag_with("frame", lambda w: (actions(w), w.object_pose(t0, "cube_1", [0, 0, 0, 1, 0, 0, 0])))
    with pytest.raises(RosbagImportError, match=r"/objects/cube_1/pose.*frame 'panda_link0', "
                       r"expected the base frame 'world'"):
        import_rosbag(b, tmp_path / "o.hdf5", base_frame="world")
    b = bag_with("twostarts", lambda w: (w.episode_event(t0 - MS, "start"), actions(w),
                                         w.episode_event(t0 + DT, "start")))
    _err(b, tmp_path / "o.hdf5", r"/robot_skills/episode at .*episode start while")


def test_cut_off_recording_keeps_the_episode_as_truncated(tmp_path):
    t0 = DEFAULT_START_NS
    with BagWriter(tmp_path / "bag") as w:
        w.episode_event(t0 - MS, "start", task="x")
        for t in range(t0 - 20 * MS, t0 + 10 * DT, 10 * MS):
            w.joint_states(t, np.zeros(7), None, 0.04)
        w.skill_event(t0, "start", "pick", ["cube_1"])
        for i in range(10):
            w.action(t0 + i * DT, np.zeros(7))
    s = import_rosbag(tmp_path / "bag", tmp_path / "o.hdf5")
    assert s["bags"][0]["episodes"][0]["truncated"] is True
    with DemoReader(tmp_path / "o.hdf5") as r:
        d = r.load("demo_0")
    assert d.attrs["truncated"] is True and d.attrs["task"] == "x"
    assert [(x.start, x.end, x.success) for x in d.segments] == [(0, 10, False)]


# ------------------------------------------------------------------ packaging
def test_core_imports_without_rosbags(tmp_path):
    """``rosbags`` is imported only when a bag is read or written."""
    code = ("import sys; sys.modules['rosbags'] = None\n"
            "import robot_skills.data.rosbag as m\n"
            f"try:\n    m.BagWriter({str(tmp_path / 'x')!r})\nexcept ImportError as e:\n"
            "    print('ok', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "MUJOCO_GL": "egl"})
    assert out.stdout.startswith("ok")


def test_console_entry(session, tmp_path, capsys):
    out = tmp_path / "cli.hdf5"
    assert import_rosbag_main([str(session["bag"]), "--out", str(out), "--arm", "panda",
                               "--control-hz", "20"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["demos"] == 2 and out.is_file()
    assert import_rosbag_main([str(tmp_path / "nope"), "-o", str(tmp_path / "x.hdf5")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rs-import-rosbag: error: no bag at" in err
    assert import_rosbag_main([str(session["bag"]), "-o", str(tmp_path / "x.hdf5"),
                               "--topic", "bogus=/x"]) == 1
    assert "unknown topic key(s) ['bogus']" in capsys.readouterr().err
    assert export_rosbag_main([str(session["direct"]), str(tmp_path / "bag")]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 2
    assert export_rosbag_main([str(session["direct"]), str(tmp_path / "bag")]) == 1
    assert "exists" in capsys.readouterr().err


# ------------------------------------------------------------------ usable for training
def test_imported_demos_train_a_skill_library(session, tmp_path):
    """The imported demos pass the training pipeline's validation and train a (tiny) library
    with one adapter per recorded skill."""
    from robot_skills.skills.library import SkillLibrary
    from robot_skills.training.trainer import TrainConfig, train_skill_library

    cfg = TrainConfig(steps=20, lora_steps=10, ckpt_every=10, hidden=32, layers=2, chunk_size=5,
                      batch_size=32, seed=0, device="cpu", num_threads=1, progress=False,
                      tensorboard=False, warmup_steps=2)
    lib = train_skill_library([session["out"]], tmp_path / "skills", cfg)
    skills = SkillLibrary(lib).skill_set()
    assert sorted(skills.policies) == ["pick", "place_on"]


# ------------------------------------------------------------------ live, over DDS
@pytest.mark.ros
def test_live_session_from_the_sim_twin_over_dds(tmp_path, monkeypatch):
    """A scripted teleop session on the sim twin (``sim.ros_twin``, its own process) over real
    DDS: a bridge stand-in turns each action into joint targets with the shared controller and
    publishes the action and skill/episode events; a recorder (raw rclpy subscriptions into a
    ``rosbags`` MCAP writer, log time = receive time) records every topic; the bag imports.
    Private ``ROS_DOMAIN_ID``, ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``; every node is shut
    down."""
    import time

    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from hardware.processes import NodeProcess, isolated_ros_env, ros_args
    from robot_skills.control.diff_ik import DiffIKController
    from robot_skills.robot import Action

    env = isolated_ros_env()
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION"):
        monkeypatch.setenv(k, env[k])
    traj_topic, grip_topic = "/panda_arm_controller/joint_trajectory", "/panda_gripper/commands"
    twin = NodeProcess("sim.ros_twin", ros_args(params={
        "task": str(TASK), "seed": 0, "control_hz": 20.0, "trajectory_topic": traj_topic,
        "gripper_topic": grip_topic}, node_name="sim_twin"), env=env,
        log_path=tmp_path / "twin.log", name="sim_twin")
    n_steps = 40
    plan = ([("pick", ["akita_black_bowl_1"], [0.004, 0, 0, 0, 0, 0, -1.0])] * 20
            + [("place_on", ["akita_black_bowl_1", "plate_1"], [0, 0, 0.004, 0, 0, 0, 1.0])] * 20)
    qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
    with twin:
        assert twin.wait_for_log("sim twin up", 120), twin.log()
        ctx = rclpy.Context()
        rclpy.init(context=ctx)
        node = executor = None
        try:
            node = rclpy.create_node("rs_rosbag_recorder", context=ctx)
            executor = SingleThreadedExecutor(context=ctx)
            executor.add_node(node)

            def spin(seconds: float, until=lambda: False) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end and not until():
                    executor.spin_once(timeout_sec=0.005)

            # discovery: the twin's pose topics
            def pose_topics():
                return sorted(t for t, _ in node.get_topic_names_and_types()
                              if t.startswith("/objects/") and t.endswith("/pose"))
            spin(20.0, lambda: "/objects/plate_1/pose" in pose_topics())
            assert "/objects/plate_1/pose" in pose_topics(), twin.log()
            types = {"/joint_states": JointState, traj_topic: JointTrajectory,
                     "/robot_skills/action": Float64MultiArray, "/robot_skills/skill": String,
                     "/robot_skills/episode": String, **{t: PoseStamped for t in pose_topics()}}
            names = {JointState: "sensor_msgs/msg/JointState",
                     JointTrajectory: "trajectory_msgs/msg/JointTrajectory",
                     Float64MultiArray: "std_msgs/msg/Float64MultiArray",
                     String: "std_msgs/msg/String", PoseStamped: "geometry_msgs/msg/PoseStamped"}
            bag = tmp_path / "live"
            writer = BagWriter(bag).__enter__()
            latest: dict[str, JointState] = {}
            try:
                for topic, typ in types.items():
                    def record(data, topic=topic, typ=typ):
                        writer.write_raw(topic, names[typ], node.get_clock().now().nanoseconds,
                                         data)
                    node.create_subscription(typ, topic, record, qos, raw=True)
                node.create_subscription(JointState, "/joint_states",
                                         lambda m: latest.__setitem__("js", m), 10)
                pub = {t: node.create_publisher(types[t], t, qos) for t in
                       (traj_topic, "/robot_skills/action", "/robot_skills/skill",
                        "/robot_skills/episode")}
                pub[grip_topic] = node.create_publisher(Float64MultiArray, grip_topic, qos)
                spin(20.0, lambda: "js" in latest and all(
                    p.get_subscription_count() >= 1 for p in pub.values()))
                assert "js" in latest, twin.log()

                ctrl = DiffIKController()
                arm_names = [f"panda_joint{i}" for i in range(1, 8)]

                def q_now() -> np.ndarray:
                    js = latest["js"]
                    idx = {n: i for i, n in enumerate(js.name)}
                    return np.array([js.position[idx[n]] for n in arm_names])

                def event(topic, **ev):
                    pub[topic].publish(String(data=json.dumps(ev)))

                ctrl.reset(q_now())
                event("/robot_skills/episode", event="start", task=TASK.stem, seed=0)
                sent = []
                period, t_next = 0.05, time.monotonic()
                for k, (skill, args, a) in enumerate(plan):
                    spin(max(0.0, t_next - time.monotonic()))
                    t_next += period
                    if k == 0 or plan[k - 1][0] != skill:
                        event("/robot_skills/skill", event="start", skill=skill, args=args)
                    cmd = ctrl.step(Action.from_array(np.array(a)), q_now())
                    applied = cmd.applied.to_array().astype(np.float64)
                    msg = Float64MultiArray(data=applied.tolist())
                    msg.layout.dim = [MultiArrayDimension(label=ACTION_LAYOUT_LABEL, size=7,
                                                          stride=7)]
                    pub["/robot_skills/action"].publish(msg)
                    sent.append(applied)
                    pt = JointTrajectoryPoint(positions=cmd.q_target.tolist())
                    pt.time_from_start.nanosec = int(period * 1e9)
                    pub[traj_topic].publish(JointTrajectory(joint_names=arm_names, points=[pt]))
                    pub[grip_topic].publish(Float64MultiArray(data=[cmd.gripper_width / 2]))
                    if k == n_steps - 1 or plan[k + 1][0] != skill:
                        event("/robot_skills/skill", event="end", skill=skill, args=args,
                              success=True)
                event("/robot_skills/episode", event="end", success=True)
                spin(0.5)
            finally:
                writer.__exit__(None, None, None)
        finally:
            if executor is not None:
                executor.shutdown()
            if node is not None:
                node.destroy_node()
            rclpy.shutdown(context=ctx)
    assert not twin.running()

    out = tmp_path / "live.hdf5"
    s = import_rosbag(bag, out)
    ep = s["bags"][0]["episodes"][0]
    assert s["demos"] == 1 and abs(ep["steps"] - n_steps) <= 2, s
    with DemoReader(out) as r:
        d = r.load("demo_0")
    sent = np.stack(sent)
    # binning keeps every action: summed translations match what was sent
    np.testing.assert_allclose(d.actions[:, :3].sum(axis=0), sent[:, :3].sum(axis=0), atol=1e-6)
    assert [(x.skill, x.success) for x in d.segments] == [("pick", True), ("place_on", True)]
    assert abs(d.segments[0].end - 20) <= 2
    moved = d.obs["ee_pos"][-1] - d.obs["ee_pos"][0]
    np.testing.assert_allclose(moved, [0.08, 0, 0.08], atol=0.03)  # 20 x 4 mm each way, lag
    assert d.obs["gripper_width"][-1, 0] < d.obs["gripper_width"][0, 0] - 0.01
    assert "plate_1" in d.object_poses and d.attrs["task"] == TASK.stem
    with h5py.File(out, "r") as f:
        assert f[f"data/demo_0/obs/{JOINT_TARGET_KEY}"].shape == (len(d), 7)
