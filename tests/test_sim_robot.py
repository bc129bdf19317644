"""SimRobot, and SimTaskWorld (the robot in its task: predicates from MuJoCo contacts), on
LIBERO's own libero_goal task files."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from libero_paths import LIBERO_BDDL

from robot_skills.execution.interfaces import TaskWorld
from robot_skills.robot import Action, Observation, Robot

GOAL_DIR = LIBERO_BDDL / "libero_goal"
TASK = GOAL_DIR / "put_the_bowl_on_the_plate.bddl"


@pytest.fixture(scope="module")
def robot():
    from sim.sim_robot import SimRobot

    return SimRobot(TASK)


@pytest.fixture(scope="module")
def world(robot):
    from sim.world import SimTaskWorld

    return SimTaskWorld(robot)


def test_world_is_a_task_world_around_the_robot(robot, world):
    assert isinstance(world, TaskWorld)
    assert isinstance(robot, Robot) and not isinstance(robot, TaskWorld)  # predicates: the world's
    for gone in ("predicate_state", "goal_progress", "success", "symbolic_problem", "advance",
                 "robot"):
        assert not hasattr(robot, gone), gone
    assert world.robot is robot and world.task is robot.task
    assert world.model is robot.model and world.data is robot.data and world.scene is robot.scene
    assert robot.control_period == pytest.approx(0.05)
    assert robot.joint_limits.shape == (7, 2)


def test_world_from_task_passes_robot_arguments():
    from robot_skills.robot import ActionLimits
    from sim.world import SimTaskWorld

    w = SimTaskWorld.from_task(TASK, action_limits=ActionLimits(0.01, 0.1), seed=4)
    try:
        assert w.task.goal == [("on", "akita_black_bowl_1", "plate_1")]
        assert w.robot.action_limits == ActionLimits(0.01, 0.1)
        o = w.reset()  # the robot's default seed
        assert isinstance(o, Observation)
        np.testing.assert_allclose(w.reset(4).object_poses["akita_black_bowl_1"],
                                   o.object_poses["akita_black_bowl_1"], atol=1e-9)
        state = w.sim_state()
        assert state.shape == (w.model.nq + w.model.nv,) and state.dtype == np.float64
        np.testing.assert_array_equal(state[:w.model.nq], w.data.qpos)
        frame = w.render(width=64, height=48)
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    finally:
        w.close()


def test_reset_is_seeded(robot):
    a = robot.reset(0).object_poses["akita_black_bowl_1"]
    b = robot.reset(1).object_poses["akita_black_bowl_1"]
    c = robot.reset(0).object_poses["akita_black_bowl_1"]
    np.testing.assert_allclose(a, c, atol=1e-9)
    assert np.linalg.norm(a[:3] - b[:3]) > 1e-4


def test_observation_contents(robot):
    o = robot.reset(0)
    assert o.joint_pos.shape == (7,) and o.joint_vel.shape == (7,)
    assert o.gripper_width == pytest.approx(0.08, abs=2e-3)
    for name in ["akita_black_bowl_1", "plate_1", "wooden_cabinet_1", "main_table_plate_region",
                 "wooden_cabinet_1_top_region", "flat_stove_1_cook_region"]:
        assert o.object_poses[name].shape == (7,)
    assert o.time == pytest.approx(0.0)
    assert o.ee_pos[2] > 0.2


def test_symbolic_problem(world):
    world.reset(0)
    prob = world.symbolic_problem()
    assert ("handempty",) in prob.state
    assert prob.state == world.predicate_state()
    assert ("on", "akita_black_bowl_1", "plate_1") in prob.goal
    assert "graspable" in prob.entities["akita_black_bowl_1"]
    assert world.goal_progress() == {("on", "akita_black_bowl_1", "plate_1"): False}
    assert not world.success()


def test_act_rejects_nan(robot):
    robot.reset(0)
    with pytest.raises(ValueError):
        robot.act(Action(np.array([np.nan, 0, 0]), np.zeros(3), 0.0))


def test_act_before_reset_is_refused():
    from sim.sim_robot import SimRobot

    r = SimRobot(TASK)
    with pytest.raises(RuntimeError, match="reset"):
        r.act(Action(np.zeros(3), np.zeros(3), 0.0))


def test_act_returns_the_clipped_action_it_applied(robot):
    robot.reset(0)
    lim = robot.action_limits
    applied = robot.act(Action(np.array([0.2, -0.001, -0.3]), np.array([0.0, 2.0, -0.01]), 3.0))
    assert isinstance(applied, Action)
    np.testing.assert_allclose(applied.delta_pos, [lim.max_delta_pos, -0.001, -lim.max_delta_pos])
    np.testing.assert_allclose(applied.delta_rot, [0.0, lim.max_delta_rot, -0.01])
    assert applied.gripper == 1.0
    small = Action(np.array([0.01, 0.0, -0.01]), np.zeros(3), -1.0)
    np.testing.assert_allclose(robot.act(small).to_array(), small.to_array())


def test_connect_disconnect_lifecycle():
    from sim.sim_robot import SimRobot

    r = SimRobot(TASK, cameras=("agentview",), image_size=(32, 32))
    assert not r.is_connected
    with r as same:
        assert same is r and r.is_connected
        o = r.reset(0)
        assert o.images["agentview"].shape == (32, 32, 3)
    assert not r.is_connected and r._renderer is None  # the GL contexts are released
    r.connect()
    r.connect()  # idempotent
    assert r.is_connected
    assert r.reset(0).images["agentview"].shape == (32, 32, 3)  # usable again after a reset
    r.disconnect()
    r.disconnect()
    assert not r.is_connected


def test_top_down_reach_above_bowl(robot):
    o = robot.reset(2)
    goal = o.object_poses["akita_black_bowl_1"][:3] + [0, 0, 0.1]
    for _ in range(40):
        robot.act(Action(np.clip(goal - o.ee_pos, -0.03, 0.03), np.zeros(3), -1.0))
        o = robot.observe()
    assert np.linalg.norm(goal - o.ee_pos) < 5e-3
    assert o.time == pytest.approx(40 * 0.05)


@pytest.mark.slow
def test_grasp_and_lift_bowl(robot, world):
    o = robot.reset(0)
    info = robot.scene.objects["akita_black_bowl_1"]
    p = o.object_poses["akita_black_bowl_1"][:3]
    gz = p[2] - info.half_extents[2] + info.grasp.grasp_height

    def go(target, grip, n=60, sp=0.03):
        nonlocal o
        for _ in range(n):
            err = target - o.ee_pos
            robot.act(Action(np.clip(err, -sp, sp), np.zeros(3), grip))
            o = robot.observe()
            if np.linalg.norm(err) < 4e-3:
                break

    go(np.array([p[0], p[1], gz + 0.12]), -1.0)
    go(np.array([p[0], p[1], gz]), -1.0, sp=0.02)
    for _ in range(12):
        robot.act(Action(np.zeros(3), np.zeros(3), 1.0))
    o = robot.observe()
    z0 = o.object_poses["akita_black_bowl_1"][2]
    go(np.array([p[0], p[1], gz + 0.1]), 1.0, n=30, sp=0.02)
    for _ in range(20):
        robot.act(Action(np.zeros(3), np.zeros(3), 1.0))
    o = robot.observe()
    assert o.object_poses["akita_black_bowl_1"][2] - z0 > 0.08
    assert ("holding", "akita_black_bowl_1") in world.predicate_state()


def test_unknown_camera_is_refused():
    from sim.sim_robot import SimRobot

    with pytest.raises(ValueError, match="unknown camera"):
        SimRobot(TASK, cameras=("no_such_cam",))


def test_observation_sensors_match_simulator_state(robot):
    """observe() reads MuJoCo frame/joint sensors; they must equal the state they summarise."""
    import mujoco

    robot.reset(3)
    for k in range(15):
        robot.act(Action(np.array([0.01, -0.01 * (k % 3), 0.0]), np.array([0.0, 0.0, 0.05]),
                         1.0 if k > 8 else -1.0))
    o = robot.observe()
    d = robot.data
    n = robot.names
    arm_q = [d.joint(j).qpos[0] for j in n.arm_joints]
    arm_v = [d.joint(j).qvel[0] for j in n.arm_joints]
    np.testing.assert_allclose(o.joint_pos, arm_q, atol=1e-12)
    np.testing.assert_allclose(o.joint_vel, arm_v, atol=1e-12)
    np.testing.assert_allclose(o.ee_pos, d.site(n.tcp_site).xpos, atol=1e-12)
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, d.site(n.tcp_site).xmat)
    np.testing.assert_allclose(o.ee_quat, q, atol=1e-12)
    assert o.gripper_width == pytest.approx(sum(d.joint(j).qpos[0] for j in n.finger_joints))
    for name in robot.scene.objects:
        np.testing.assert_allclose(o.object_poses[name], np.r_[d.body(name).xpos,
                                                               d.body(name).xquat], atol=1e-12)
    for name, region in robot.scene.regions.items():
        mujoco.mju_mat2Quat(q, d.site(region.site).xmat)
        np.testing.assert_allclose(o.object_poses[name], np.r_[d.site(region.site).xpos, q],
                                   atol=1e-12)
    # Each observation owns its arrays: acting again must not change an earlier one.
    before = o.object_poses["akita_black_bowl_1"].copy()
    robot.act(Action(np.array([0.0, 0.0, 0.02]), np.zeros(3), 1.0))
    np.testing.assert_array_equal(o.object_poses["akita_black_bowl_1"], before)


def test_bowl_and_plate_render_as_one_mesh_each(robot):
    """Their polygonal collision walls are hidden (group 3) behind one visual mesh per object."""
    import mujoco

    m = robot.model
    for obj in ("akita_black_bowl_1", "plate_1"):
        geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == m.body(obj).id]
        visible = [g for g in geoms if m.geom_group[g] < 3]
        assert len(visible) == 1 and m.geom_type[visible[0]] == mujoco.mjtGeom.mjGEOM_MESH
        assert m.geom_contype[visible[0]] == 0 and m.geom_conaffinity[visible[0]] == 0
        hidden = [g for g in geoms if m.geom_group[g] == 3]
        assert len(hidden) >= 13 and all(m.geom_contype[g] for g in hidden)
    # The mesh adds no mass: the bowl keeps its catalogue mass.
    from sim.assets import get_asset

    assert m.body_mass[m.body("akita_black_bowl_1").id] == pytest.approx(
        get_asset("akita_black_bowl").mass)
