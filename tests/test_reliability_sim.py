"""Every failure loud, nothing lost (issue 7, case 5), on the simulator side.

* Region ranges no scene can hold (``1e300``, NaN, a box far outside the table) are refused with
  :class:`sim.scene.SceneError` when the scene is built, before MuJoCo sees them; so are shifts and
  perturbations that move an object's region off the table top.
* MuJoCo's instability warnings (it resets the whole state itself on a bad acceleration, velocity
  or position) raise :class:`robot_skills.robot.EpisodeInvalidError` from the step or the reset in
  which they fire, naming the warning, the task file and the simulated time.
* An object that falls off the table while the initial state settles raises
  :class:`sim.scene.PlacementError`.
* Every supported LIBERO task file still builds.
"""

from __future__ import annotations

import dataclasses
import math
import os

import mujoco
import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from libero_paths import LIBERO_BDDL

from robot_skills.evaluation.perturbations import PerturbationSpec
from robot_skills.robot import Action, EpisodeInvalidError
from robot_skills.tasks.bddl import parse_bddl
from robot_skills.tasks.suites import resolve_suite, scan_suite
from sim.factories import SimWorldFactory
from sim.layout import MAX_REGION_COORD_M, TABLE_ORIGIN, TABLE_TOP_RANGE
from sim.scene import (
    PlacementError,
    SceneError,
    build_scene,
    fallen_objects,
    sample_initial_state,
    table_placement_boxes,
)
from sim.sim_robot import SimRobot

SOURCE = "reliability_task.bddl"
TASK = """
(define (problem Reliability)
  (:domain robosuite)
  (:language put the bowl on the plate)
  (:regions
    (plate_region (:target main_table) (:ranges (PLATE_RANGE)))
    (bowl_region (:target main_table) (:ranges ((-0.12 -0.02 -0.08 0.02)))
        (:yaw_rotation ((0.0 0.0))))
  )
  (:fixtures main_table - table)
  (:objects akita_black_bowl_1 - akita_black_bowl plate_1 - plate)
  (:obj_of_interest akita_black_bowl_1 plate_1)
  (:init (On akita_black_bowl_1 main_table_bowl_region) (On plate_1 main_table_plate_region))
  (:goal (And (On akita_black_bowl_1 plate_1)))
)
"""
PLATE_OK = "(0.05 0.15 0.07 0.17)"
STILL = Action(np.zeros(3), np.zeros(3), -1.0)


def _task(plate_range: str = PLATE_OK):
    return parse_bddl(TASK.replace("PLATE_RANGE", plate_range), source=SOURCE)


@pytest.fixture(scope="module")
def robot():
    r = SimRobot(_task())
    yield r
    r.close()


# ------------------------------------------------------------------ region values, at build time
@pytest.mark.parametrize("plate_range", ["(1e300 0.15 1e300 0.17)", "(0.05 -1e300 0.07 0.17)",
                                         "(0.05 0.15 11.0 0.17)"])
def test_absurd_region_range_is_refused_before_mujoco(plate_range):
    # before: a 1e300 range built, MuJoCo reset itself while settling (mjWARN_BADQPOS) and the
    # episode started with every object on the floor
    with pytest.raises(SceneError, match=rf"^{SOURCE}: region 'main_table_plate_region' has "
                                         rf"range 0 = .*finite number of at most 10 m"):
        build_scene(_task(plate_range))
    with pytest.raises(SceneError, match="main_table_plate_region"):
        SimRobot(_task(plate_range))
    assert MAX_REGION_COORD_M == 10.0


def test_non_finite_range_or_yaw_in_a_built_task_is_refused():
    # the parser refuses "nan"; a task built in code (or rewritten by a perturbation) is checked too
    task = _task()
    for field, value in [("ranges", [(math.nan, 0.15, 0.07, 0.17)]),
                         ("ranges", [(0.05, 0.15, math.inf, 0.17)]),
                         ("yaw_rotation", [(0.0, 1e300)])]:
        name = "main_table_plate_region" if field == "ranges" else "main_table_bowl_region"
        regions = dict(task.regions)
        regions[name] = dataclasses.replace(regions[name], **{field: value})
        with pytest.raises(SceneError, match=rf"^{SOURCE}: region '{name}' has"):
            build_scene(dataclasses.replace(task, regions=regions))


def test_region_outside_its_fixture_is_refused():
    # before: the plate was dropped 1.4 m in front of the table and the episode began with it on
    # the floor
    with pytest.raises(SceneError) as e:
        build_scene(_task("(2.0 0.15 2.02 0.17)"))
    msg = str(e.value)
    assert msg.startswith(f"{SOURCE}: region 'main_table_plate_region'")
    assert "(2 0.15 2.02 0.17)" in msg  # its ranges
    assert "x -0.6..+0.6 m and y -0.6..+0.6 m" in msg  # the fixture's extent
    # a box that only straddles the edge is refused too; one ending on the edge is fine
    with pytest.raises(SceneError, match="do not lie on the table top"):
        build_scene(_task("(0.55 0.15 0.65 0.17)"))
    build_scene(_task("(0.58 0.15 0.6 0.17)"))
    assert TABLE_TOP_RANGE == (-0.6, -0.6, 0.6, 0.6)


def test_shift_or_perturbation_off_the_table_is_refused(tmp_path):
    task = _task()
    with pytest.raises(SceneError, match=r"region 'main_table_(bowl|plate)_region' moved by "
                                         r"region_shift \(1\.0, 0\.0\) m .*x -0\.6\.\.\+0\.6 m"):
        SimRobot(task, region_shift=(1.0, 0.0))  # at construction, not at the first reset
    _, info = build_scene(task)
    with pytest.raises(SceneError, match="region_scale 40"):
        table_placement_boxes(info, region_scale=40.0)
    # a perturbation rewrites the task's ranges: the world factory fails as a world error
    path = tmp_path / SOURCE
    path.write_text(TASK.replace("PLATE_RANGE", PLATE_OK))
    with pytest.raises(SceneError, match="do not lie on the table top"):
        SimWorldFactory()(path, 0, PerturbationSpec("off_table", region_shift=(0.7, 0.0)))


# ------------------------------------------------------------------ MuJoCo's warnings
def _bowl_dof(r: SimRobot) -> int:
    return int(r.model.joint(r.scene.objects["akita_black_bowl_1"].free_joint).dofadr[0])


def test_instability_in_a_step_is_an_invalid_episode(robot):
    r = robot
    r.reset(0)
    for _ in range(3):
        r.act(STILL)
    t_before = r.data.time
    # a huge force on the bowl: qacc > 1e10, MuJoCo warns BADQACC and resets the whole state
    r.data.qfrc_applied[_bowl_dof(r) + 2] = 1e20
    with pytest.raises(EpisodeInvalidError) as e:
        r.act(STILL)
    W = mujoco.mjtWarning
    assert r.data.warning[W.mjWARN_BADQACC].number >= 1  # the warning really fired ...
    assert r.data.time < t_before  # ... and MuJoCo really reset itself (time rewound)
    msg = str(e.value)
    assert msg.startswith(SOURCE) and "mjWARN_BADQACC" in msg
    assert "'akita_black_bowl_1'" in msg and "t = 0.150 s" in msg
    assert "reset the simulation state itself" in msg
    # no silent continuation: every further step is refused until a reset
    with pytest.raises(EpisodeInvalidError, match="mjWARN_BADQACC"):
        r.act(STILL)
    r.reset(0)
    r.act(STILL)
    assert not r.data.warning.number.any()


def test_nan_velocity_is_an_invalid_episode(robot):
    r = robot
    r.reset(1)
    r.act(STILL)
    r.data.qvel[_bowl_dof(r)] = np.nan  # integrated first, so MuJoCo finds a NaN position
    with pytest.raises(EpisodeInvalidError, match=r"mjWARN_BADQ(POS|VEL) x1 \(joint "
                                                  r"'akita_black_bowl_1_free'.*t = 0\.050 s"):
        r.act(STILL)


def test_instability_while_settling_is_an_invalid_episode(robot, monkeypatch):
    import sim.sim_robot as sim_robot

    real = sim_robot.sample_initial_state
    dof = _bowl_dof(robot)

    def unstable(model, data, info, rng, **kw):
        hold = kw["hold"]

        def kick(m, d):
            hold(m, d)
            if d.time > 0.3:
                d.qfrc_applied[dof + 2] = 1e20

        return real(model, data, info, rng, **{**kw, "hold": kick})

    monkeypatch.setattr(sim_robot, "sample_initial_state", unstable)
    with pytest.raises(EpisodeInvalidError, match=rf"^{SOURCE}: MuJoCo warned mjWARN_BADQACC "
                                                  r"x1 .* while the initial state settled"):
        robot.reset(0)
    with pytest.raises(EpisodeInvalidError):  # the failed reset leaves nothing to act on
        robot.act(STILL)
    monkeypatch.setattr(sim_robot, "sample_initial_state", real)
    robot.reset(0)
    robot.act(STILL)


def test_object_falling_off_the_table_at_reset_raises():
    spec, info = build_scene(_task())
    m = spec.compile()
    d = mujoco.MjData(m)
    qa = int(m.jnt_qposadr[m.joint(info.objects["plate_1"].free_joint).id])
    sample_initial_state(m, d, info, np.random.default_rng(0))
    assert fallen_objects(m, d, info) == []

    def off_the_edge(model, data):  # something pushes the plate past the table's far edge
        if data.time == 0.0:
            data.qpos[qa:qa + 3] = TABLE_ORIGIN + [TABLE_TOP_RANGE[2] + 0.2, 0.0, 0.05]

    d = mujoco.MjData(m)
    with pytest.raises(PlacementError, match=r"object\(s\) fell off the table while the initial "
                                             r"state settled: plate_1 at \("):
        sample_initial_state(m, d, info, np.random.default_rng(0), hold=off_the_edge)
    assert d.xpos[m.body("plate_1").id][2] < -0.5  # really on the floor


# ------------------------------------------------------------------ LIBERO still builds
def test_every_supported_libero_task_file_still_builds():
    cats = SimWorldFactory().supported_categories()
    n = 0
    for suite in ("libero_goal", "libero_spatial", "libero_object", "libero_90", "libero_10"):
        d = resolve_suite(suite)
        assert d.parent == LIBERO_BDDL
        supported, _ = scan_suite(d, cats)
        assert supported, suite
        for p in supported:
            _, info = build_scene(parse_bddl(p.read_text(), source=str(p)))
            # collection widens object regions up to 6x; they stay on the table
            table_placement_boxes(info, region_scale=6.0)
            n += 1
    assert n >= 60


def test_gym_env_truncates_an_invalid_episode_with_the_cause():
    from robot_skills.tasks.suites import resolve_suite
    from sim.env import LiberoTaskEnv

    env = LiberoTaskEnv(resolve_suite("libero_goal") / "put_the_bowl_on_the_plate.bddl")
    env.reset(seed=0)
    env.robot.data.qfrc_applied[:] = 1e20  # an unstable simulation: MuJoCo's auto-reset
    _, reward, terminated, truncated, info = env.step(np.zeros(7, np.float32))
    assert truncated and not terminated and reward == 0.0
    assert "mjWARN" in info["episode_invalid"]
    env.close()
