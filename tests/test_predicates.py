"""Predicate evaluation from MuJoCo state, on hand-built states (sim/predicates.py)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robot_skills.tasks.bddl import parse_bddl
from sim.assets import (
    DRAWER_CLOSED_THRESHOLD,
    DRAWER_OPEN_THRESHOLD,
    KNOB_ON_THRESHOLD,
    yaw_quat,
)
from sim.layout import TABLE_ORIGIN
from sim.predicates import evaluate_atom, evaluate_atoms, predicate_state
from sim.scene import build_scene

TASK = """
(define (problem Hand_Built)
  (:domain robosuite)
  (:language put the bowl on the plate)
  (:regions
    (plate_region (:target main_table) (:ranges ((0.05 0.15 0.07 0.17))))
    (bowl_region (:target main_table) (:ranges ((-0.12 -0.02 -0.08 0.02))))
    (cheese_region (:target main_table) (:ranges ((-0.05 0.25 -0.03 0.27))))
    (bottle_region (:target main_table) (:ranges ((-0.22 -0.06 -0.2 -0.04))))
    (basket_region (:target main_table) (:ranges ((0.15 -0.05 0.17 -0.03))))
    (cabinet_region (:target main_table) (:ranges ((0.1 -0.3 0.1 -0.3)))
        (:yaw_rotation ((3.141592653589793 3.141592653589793))))
    (stove_region (:target main_table) (:ranges ((-0.3 0.2 -0.3 0.2))))
    (rack_region (:target main_table) (:ranges ((-0.25 -0.3 -0.25 -0.3))))
    (top_region (:target wooden_cabinet_1))
    (top_side (:target wooden_cabinet_1))
    (cook_region (:target flat_stove_1))
    (top_region (:target wine_rack_1))
    (contain_region (:target basket_1))
  )
  (:fixtures main_table - table wooden_cabinet_1 - wooden_cabinet flat_stove_1 - flat_stove
             wine_rack_1 - wine_rack)
  (:objects akita_black_bowl_1 - akita_black_bowl plate_1 - plate cream_cheese_1 - cream_cheese
            wine_bottle_1 - wine_bottle basket_1 - basket)
  (:obj_of_interest akita_black_bowl_1 plate_1)
  (:init (On akita_black_bowl_1 main_table_bowl_region) (On plate_1 main_table_plate_region)
         (On cream_cheese_1 main_table_cheese_region) (On wine_bottle_1 main_table_bottle_region)
         (On basket_1 main_table_basket_region)
         (On wooden_cabinet_1 main_table_cabinet_region) (On flat_stove_1 main_table_stove_region)
         (On wine_rack_1 main_table_rack_region))
  (:goal (And (On akita_black_bowl_1 plate_1)))
)
"""


@pytest.fixture(scope="module")
def scene():
    spec, info = build_scene(parse_bddl(TASK))
    # two "fingers" on mocap bodies, to test holding without a robot
    for side in ("left", "right"):
        b = spec.worldbody.add_body(name=f"finger_{side}", mocap=True, pos=[0, 2, 1])
        b.add_geom(name=f"finger_{side}_pad", type=mujoco.mjtGeom.mjGEOM_BOX,
                   size=[0.01, 0.005, 0.02], contype=2, conaffinity=1)
    model = spec.compile()
    return model, info


@pytest.fixture()
def world(scene):
    model, info = scene
    data = mujoco.MjData(model)
    # park every object far apart on the table's outer edge, resting
    for k, o in enumerate(info.objects):
        place(model, data, info, o, TABLE_ORIGIN + np.array([0.45, -0.45 + 0.22 * k, 0.0]))
    mujoco.mj_forward(model, data)
    return model, data, info


def place(model, data, info, name, xy_or_pos, z_bottom=None, yaw=0.0):
    """Put object ``name`` with its centre over ``xy`` and its bottom at ``z_bottom``."""
    half = info.objects[name].half_extents
    p = np.asarray(xy_or_pos, float)
    z = (p[2] if z_bottom is None else z_bottom) + half[2]
    adr = model.jnt_qposadr[model.joint(info.objects[name].free_joint).id]
    data.qpos[adr:adr + 3] = [p[0], p[1], z]
    data.qpos[adr + 3:adr + 7] = yaw_quat(yaw)


def top(model, data, info, name):
    return data.body(name).xpos[2] + info.objects[name].half_extents[2]


def fingers(model):
    return ({model.geom("finger_left_pad").id}, {model.geom("finger_right_pad").id})


def test_on_object(world):
    m, d, info = world
    plate_xy = TABLE_ORIGIN + [0.0, 0.1, 0.0]
    place(m, d, info, "plate_1", plate_xy)
    mujoco.mj_forward(m, d)
    floor = d.body("plate_1").xpos[2] - info.objects["plate_1"].half_extents[2] + 0.008
    place(m, d, info, "akita_black_bowl_1", plate_xy + [0.02, 0.0, 0.0], z_bottom=floor + 0.001)
    mujoco.mj_forward(m, d)
    atom = ("on", "akita_black_bowl_1", "plate_1")
    assert evaluate_atom(m, d, info, atom)
    assert atom in predicate_state(m, d, info)
    assert not evaluate_atom(m, d, info, ("on", "plate_1", "akita_black_bowl_1"))
    # hovering 3 cm above the plate: not on it
    place(m, d, info, "akita_black_bowl_1", plate_xy + [0.02, 0.0, 0.0], z_bottom=floor + 0.03)
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, atom)
    # beside the plate on the table: not on it
    place(m, d, info, "akita_black_bowl_1", plate_xy + [0.0, -0.13, 0.0], z_bottom=0.0)
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, atom)


def test_cream_cheese_inside_bowl_is_on_bowl(world):
    m, d, info = world
    xy = TABLE_ORIGIN + [-0.1, 0.1, 0.0]
    place(m, d, info, "akita_black_bowl_1", xy, z_bottom=0.0)
    place(m, d, info, "cream_cheese_1", xy, z_bottom=0.0065)
    mujoco.mj_forward(m, d)
    assert evaluate_atom(m, d, info, ("On", "cream_cheese_1", "akita_black_bowl_1"))
    assert not evaluate_atom(m, d, info, ("on", "akita_black_bowl_1", "cream_cheese_1"))


def test_on_table_region(world):
    m, d, info = world
    r = "main_table_plate_region"
    place(m, d, info, "plate_1", TABLE_ORIGIN + [0.06, 0.16, 0.0], z_bottom=0.0005)
    mujoco.mj_forward(m, d)
    assert evaluate_atom(m, d, info, ("on", "plate_1", r))
    place(m, d, info, "plate_1", TABLE_ORIGIN + [0.06, 0.22, 0.0], z_bottom=0.0005)  # 5 cm off
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, ("on", "plate_1", r))
    place(m, d, info, "plate_1", TABLE_ORIGIN + [0.06, 0.16, 0.0], z_bottom=0.05)   # lifted
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, ("on", "plate_1", r))
    assert ("on", "wooden_cabinet_1", "main_table_cabinet_region") in predicate_state(m, d, info)


def _site(m, d, name):
    return d.site(name).xpos.copy()


def test_on_fixture_surfaces(world):
    m, d, info = world
    for obj, region in [("akita_black_bowl_1", "flat_stove_1_cook_region"),
                        ("wine_bottle_1", "wine_rack_1_top_region"),
                        ("cream_cheese_1", "wooden_cabinet_1_top_side")]:
        p = _site(m, d, region)
        place(m, d, info, obj, p, z_bottom=p[2] + 0.001)
        mujoco.mj_forward(m, d)
        assert evaluate_atom(m, d, info, ("on", obj, region)), (obj, region)
        place(m, d, info, obj, p, z_bottom=p[2] + 0.04)
        mujoco.mj_forward(m, d)
        assert not evaluate_atom(m, d, info, ("on", obj, region)), (obj, region)
        place(m, d, info, obj, p + [0.0, 0.3, 0.0], z_bottom=0.0)
        mujoco.mj_forward(m, d)
        assert not evaluate_atom(m, d, info, ("on", obj, region)), (obj, region)


def test_drawer_open_close_and_in(world):
    m, d, info = world
    r = "wooden_cabinet_1_top_region"
    jadr = m.jnt_qposadr[m.joint(info.regions[r].joint).id]
    d.qpos[jadr] = 0.0
    mujoco.mj_forward(m, d)
    assert evaluate_atom(m, d, info, ("close", r)) and not evaluate_atom(m, d, info, ("open", r))
    s = predicate_state(m, d, info)
    assert ("close", r) in s and ("open", r) not in s
    d.qpos[jadr] = 0.5 * (DRAWER_OPEN_THRESHOLD + DRAWER_CLOSED_THRESHOLD)
    mujoco.mj_forward(m, d)
    s = predicate_state(m, d, info)
    assert ("close", r) not in s and ("open", r) not in s
    d.qpos[jadr] = 0.15
    mujoco.mj_forward(m, d)
    assert evaluate_atom(m, d, info, ("open", r))
    # the region site moved with the drawer, toward the robot (cabinet yaw = pi)
    p = _site(m, d, r)
    d.qpos[jadr] = 0.0
    mujoco.mj_forward(m, d)
    assert p[0] == pytest.approx(_site(m, d, r)[0] - 0.15, abs=1e-6)
    d.qpos[jadr] = 0.15
    mujoco.mj_forward(m, d)
    place(m, d, info, "cream_cheese_1", p + [-0.04, 0.0, 0.0], z_bottom=p[2] + 0.001)
    mujoco.mj_forward(m, d)
    assert evaluate_atom(m, d, info, ("in", "cream_cheese_1", r))
    assert ("in", "cream_cheese_1", r) in predicate_state(m, d, info)
    assert not evaluate_atom(m, d, info, ("in", "cream_cheese_1", "wooden_cabinet_1_middle_region"))
    place(m, d, info, "cream_cheese_1", p + [-0.04, 0.0, 0.0], z_bottom=p[2] + 0.2)
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, ("in", "cream_cheese_1", r))


def test_in_basket(world):
    m, d, info = world
    bxy = TABLE_ORIGIN + [0.1, -0.1, 0.0]
    place(m, d, info, "basket_1", bxy, z_bottom=0.0)
    place(m, d, info, "cream_cheese_1", bxy + [0.03, 0.02, 0.0], z_bottom=0.0085)
    mujoco.mj_forward(m, d)
    r = "basket_1_contain_region"
    assert evaluate_atom(m, d, info, ("in", "cream_cheese_1", r))
    place(m, d, info, "cream_cheese_1", bxy + [0.15, 0.0, 0.0], z_bottom=0.0)
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, ("in", "cream_cheese_1", r))


def test_stove_on_off(world):
    m, d, info = world
    jadr = m.jnt_qposadr[m.joint(info.fixtures["flat_stove_1"].joints["knob"]).id]
    for q, on in [(0.0, False), (KNOB_ON_THRESHOLD - 0.05, False), (KNOB_ON_THRESHOLD + 0.05, True),
                  (1.5, True)]:
        d.qpos[jadr] = q
        mujoco.mj_forward(m, d)
        assert evaluate_atom(m, d, info, ("turnon", "flat_stove_1")) is on
        assert evaluate_atom(m, d, info, ("turnoff", "flat_stove_1")) is (not on)
        s = predicate_state(m, d, info)
        assert (("turnon", "flat_stove_1") in s) is on and (("turnoff", "flat_stove_1") in s) is not on


def _squeeze(m, d, info, obj, z_bottom):
    xy = TABLE_ORIGIN + [-0.05, -0.12, 0.0]
    place(m, d, info, obj, xy, z_bottom=z_bottom)
    hy = info.objects[obj].half_extents[1]
    zc = z_bottom + info.objects[obj].half_extents[2]
    d.mocap_pos[m.body("finger_left").mocapid[0]] = [xy[0], xy[1] + hy + 0.005 - 0.0005, zc]
    d.mocap_pos[m.body("finger_right").mocapid[0]] = [xy[0], xy[1] - hy - 0.005 + 0.0005, zc]
    mujoco.mj_forward(m, d)


def test_holding_and_handempty(world):
    m, d, info = world
    f = fingers(m)
    _squeeze(m, d, info, "cream_cheese_1", z_bottom=0.05)      # lifted between the fingers
    assert evaluate_atom(m, d, info, ("holding", "cream_cheese_1"), f)
    s = predicate_state(m, d, info, f)
    assert ("holding", "cream_cheese_1") in s and ("handempty",) not in s
    _squeeze(m, d, info, "cream_cheese_1", z_bottom=0.0)       # grasped but still on the table
    assert not evaluate_atom(m, d, info, ("holding", "cream_cheese_1"), f)
    assert ("handempty",) in predicate_state(m, d, info, f)
    assert ("handempty",) not in predicate_state(m, d, info)   # only with finger geoms


def test_bad_atoms_and_arguments(world):
    m, d, info = world
    with pytest.raises(ValueError, match="unknown predicate"):
        evaluate_atom(m, d, info, ("under", "plate_1", "akita_black_bowl_1"))
    with pytest.raises(ValueError, match="wrong number of arguments"):
        evaluate_atom(m, d, info, ("on", "plate_1"))
    with pytest.raises(ValueError, match="needs gripper_geom_ids"):
        evaluate_atom(m, d, info, ("holding", "plate_1"))
    with pytest.raises(ValueError, match="gripper_geom_ids"):
        predicate_state(m, d, info, gripper_geom_ids=({1}, set()))
    assert not evaluate_atom(m, d, info, ("on", "no_such_object", "plate_1"))


def test_evaluate_atoms_agrees_with_evaluate_atom(world):
    m, d, info = world
    plate_xy = TABLE_ORIGIN + [0.06, 0.16, 0.0]          # inside main_table_plate_region
    place(m, d, info, "plate_1", plate_xy)
    mujoco.mj_forward(m, d)
    floor = d.body("plate_1").xpos[2] - info.objects["plate_1"].half_extents[2] + 0.008
    place(m, d, info, "akita_black_bowl_1", plate_xy + [0.02, 0.0, 0.0], z_bottom=floor + 0.001)
    mujoco.mj_forward(m, d)
    atoms = [("on", "akita_black_bowl_1", "plate_1"), ("on", "plate_1", "main_table_plate_region"),
             ("on", "cream_cheese_1", "plate_1"), ("open", "wooden_cabinet_1_top_region")]
    values = evaluate_atoms(m, d, info, atoms)
    assert values == [evaluate_atom(m, d, info, a) for a in atoms]
    assert values[0] and values[1] and not values[2]
