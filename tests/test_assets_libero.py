"""LIBERO-90/10 proxy assets (sim/assets_libero.py): registry metadata, geometry, articulation,
and the In/On/Open/Close predicates over their regions (sim/predicates.py), on hand-built states."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from robot_skills.domain.predicates import ENTITY_TAGS
from robot_skills.tasks.bddl import parse_bddl
from sim.assets import (
    ASSETS,
    DOOR_CLOSED_THRESHOLD,
    DOOR_OPEN_THRESHOLD,
    DRAWER_OPEN_THRESHOLD,
    REGION_KIND_TAGS,
    TABLE_HEIGHT,
    UnsupportedCategoryError,
    yaw_quat,
)
from sim.layout import TABLE_ORIGIN
from sim.predicates import evaluate_atom, predicate_state
from sim.scene import SceneError, build_scene, sample_initial_state

NEW_CATEGORIES = (
    "black_book", "yellow_book", "chefmate_8_frypan", "desk_caddy", "microwave", "moka_pot",
    "porcelain_mug", "red_coffee_mug", "white_yellow_mug", "white_cabinet", "wooden_tray",
    "wooden_two_layer_shelf")

TASK = """
(define (problem Libero_Assets)
  (:domain robosuite)
  (:language put the mug in the microwave)
  (:regions
    (microwave_region (:target kitchen_table) (:ranges ((-0.21 0.39 -0.19 0.41)))
        (:yaw_rotation ((0 0))))
    (shelf_region (:target kitchen_table) (:ranges ((0.24 0.39 0.26 0.41))) (:yaw_rotation ((0 0))))
    (cabinet_region (:target kitchen_table) (:ranges ((-0.21 -0.41 -0.19 -0.39)))
        (:yaw_rotation ((3.141592653589793 3.141592653589793))))
    (caddy_region (:target kitchen_table) (:ranges ((0.24 -0.41 0.26 -0.39)))
        (:yaw_rotation ((3.141592653589793 3.141592653589793))))
    (a_region (:target kitchen_table) (:ranges ((-0.1 -0.1 -0.08 -0.08))))
    (b_region (:target kitchen_table) (:ranges ((-0.1 0.08 -0.08 0.1))))
    (c_region (:target kitchen_table) (:ranges ((0.1 -0.1 0.12 -0.08))))
    (d_region (:target kitchen_table) (:ranges ((0.1 0.08 0.12 0.1))))
    (e_region (:target kitchen_table) (:ranges ((0.3 -0.01 0.32 0.01))))
    (f_region (:target kitchen_table) (:ranges ((-0.3 -0.13 -0.28 -0.11))))
    (g_region (:target kitchen_table) (:ranges ((0.0 0.2 0.02 0.22))))
    (h_region (:target kitchen_table) (:ranges ((0.0 -0.22 0.02 -0.2))))
    (heating_region (:target microwave_1))
    (top_side (:target microwave_1))
    (top_region (:target wooden_two_layer_shelf_1))
    (bottom_region (:target wooden_two_layer_shelf_1))
    (top_side (:target wooden_two_layer_shelf_1))
    (top_region (:target white_cabinet_1))
    (bottom_region (:target white_cabinet_1))
    (front_contain_region (:target desk_caddy_1))
    (back_contain_region (:target desk_caddy_1))
    (left_contain_region (:target desk_caddy_1))
    (right_contain_region (:target desk_caddy_1))
    (contain_region (:target wooden_tray_1))
  )
  (:fixtures kitchen_table - kitchen_table microwave_1 - microwave
             wooden_two_layer_shelf_1 - wooden_two_layer_shelf white_cabinet_1 - white_cabinet
             desk_caddy_1 - desk_caddy)
  (:objects porcelain_mug_1 - porcelain_mug red_coffee_mug_1 - red_coffee_mug
            white_yellow_mug_1 - white_yellow_mug black_book_1 - black_book
            yellow_book_1 - yellow_book chefmate_8_frypan_1 - chefmate_8_frypan
            moka_pot_1 - moka_pot wooden_tray_1 - wooden_tray)
  (:init (On microwave_1 kitchen_table_microwave_region)
         (On wooden_two_layer_shelf_1 kitchen_table_shelf_region)
         (On white_cabinet_1 kitchen_table_cabinet_region)
         (On desk_caddy_1 kitchen_table_caddy_region)
         (On porcelain_mug_1 kitchen_table_a_region) (On red_coffee_mug_1 kitchen_table_b_region)
         (On white_yellow_mug_1 kitchen_table_c_region) (On black_book_1 kitchen_table_d_region)
         (On yellow_book_1 kitchen_table_g_region) (On chefmate_8_frypan_1 kitchen_table_e_region)
         (On moka_pot_1 kitchen_table_h_region) (On wooden_tray_1 kitchen_table_f_region)
         (Open microwave_1))
  (:goal (And (In white_yellow_mug_1 microwave_1_heating_region) (Close microwave_1)))
)
"""


@pytest.fixture(scope="module")
def scene():
    spec, info = build_scene(parse_bddl(TASK, source="libero_assets.bddl"))
    return spec.compile(), info


@pytest.fixture()
def world(scene):
    model, info = scene
    data = mujoco.MjData(model)
    x, row = -0.55, 0
    for o in info.objects:   # park every object apart, in two rows away from the fixtures
        hx = info.objects[o].half_extents[0]
        if x + 2 * hx > 0.55:
            x, row = -0.55, row + 1
        place(model, data, info, o, TABLE_ORIGIN + np.array([x + hx, 0.13 * (2 * row - 1), 0.0]))
        x += 2 * hx + 0.03
    mujoco.mj_forward(model, data)
    return model, data, info


def place(model, data, info, name, xy, z_bottom=0.0, yaw=0.0):
    """Put object ``name`` with its origin over ``xy`` (world) and its bottom at ``z_bottom``."""
    half = info.objects[name].half_extents
    qa = model.jnt_qposadr[model.joint(info.objects[name].free_joint).id]
    data.qpos[qa:qa + 3] = [xy[0], xy[1], z_bottom + half[2]]
    data.qpos[qa + 3:qa + 7] = yaw_quat(yaw)


def site_world(model, data, site, local=(0.0, 0.0, 0.0)):
    sid = model.site(site).id
    return data.site_xpos[sid] + data.site_xmat[sid].reshape(3, 3) @ np.asarray(local, float)


def set_joint(model, data, joint, q):
    data.qpos[model.jnt_qposadr[model.joint(joint).id]] = q
    mujoco.mj_forward(model, data)


def test_registry_metadata_for_new_categories():
    for cat in NEW_CATEGORIES:
        a = ASSETS[cat]
        assert a.note, cat
        assert all(v > 0 for v in a.libero_size), cat
        assert a.tags <= set(ENTITY_TAGS), cat
        for kind in a.regions.values():
            assert kind in REGION_KIND_TAGS, (cat, kind)
        if a.kind == "object":
            assert a.mass > 0, cat
        if "graspable" in a.tags:
            assert a.grasp is not None and 0 < a.grasp.grasp_width < 0.08, cat
            assert 0 < a.grasp.grasp_height < 2 * a.half_extents[2], cat
    assert ASSETS["desk_caddy"].regions == {
        f"{s}_contain_region": "container" for s in ("front", "back", "left", "right")}
    assert ASSETS["wooden_two_layer_shelf"].regions == {
        "top_region": "shelf", "bottom_region": "shelf", "top_side": "surface"}
    assert ASSETS["microwave"].regions == {"heating_region": "enclosure", "top_side": "surface"}
    assert "openable" in ASSETS["microwave"].tags


def test_sizes_close_to_libero():
    """Every proxy's bounding box is within 35 % of LIBERO's measured size along each axis, except
    where the note records a departure (cup diameters for the gripper; the caddy's and the tray's
    lower walls)."""
    for cat in ("black_book", "yellow_book", "microwave", "white_cabinet", "wooden_two_layer_shelf",
                "desk_caddy", "wooden_tray", "moka_pot"):
        a = ASSETS[cat]
        full = 2 * np.asarray(a.half_extents)
        lib = np.asarray(a.libero_size)
        # compare footprints irrespective of which horizontal axis is which
        assert np.allclose(sorted(full[:2]), sorted(lib[:2]), rtol=0.35), (cat, full, lib)
        if cat in ("desk_caddy", "wooden_tray"):
            assert full[2] < lib[2] and "wall" in a.note, cat   # departure, recorded in the note
        else:
            assert full[2] == pytest.approx(lib[2], rel=0.35), (cat, full, lib)
    for cat in ("porcelain_mug", "red_coffee_mug", "white_yellow_mug"):
        a = ASSETS[cat]
        assert a.grasp.grasp_width < 0.08 < min(a.libero_size[:2])   # narrower than LIBERO's cup
        assert 2 * a.half_extents[2] == pytest.approx(a.libero_size[2], rel=0.12)


def test_bodies_sites_joints_exist(scene):
    m, info = scene
    for name in [*info.objects, *info.fixtures]:
        assert m.body(name).name == name
    for site in ["microwave_1_door_handle", "microwave_1_door_hinge_axis", "porcelain_mug_1_handle",
                 "chefmate_8_frypan_1_handle", "moka_pot_1_handle",
                 "white_cabinet_1_top_region_handle", *info.regions]:
        assert m.site(site).name == site
    assert info.fixtures["microwave_1"].joints == {"door": "microwave_1_door_hinge"}
    assert info.regions["microwave_1_heating_region"].kind == "enclosure"
    assert info.regions["white_cabinet_1_top_region"].joint == "white_cabinet_1_top_drawer_slide"


def test_unsupported_category_names_file():
    with pytest.raises(UnsupportedCategoryError, match=r"my_task\.bddl.*flux_capacitor"):
        build_scene(parse_bddl(TASK.replace("moka_pot_1 - moka_pot", "moka_pot_1 - flux_capacitor"),
                               source="my_task.bddl"))
    bad = TASK.replace("(contain_region (:target wooden_tray_1))",
                       "(contain_region (:target wooden_tray_1)) (pocket (:target desk_caddy_1))")
    bad = bad.replace("(Close microwave_1)", "(In black_book_1 desk_caddy_1_pocket)")
    with pytest.raises(SceneError, match=r"my_task\.bddl.*desk_caddy_1_pocket"):
        build_scene(parse_bddl(bad, source="my_task.bddl"))


def test_microwave_door_open_close(world):
    m, d, info = world
    j = "microwave_1_door_hinge"
    set_joint(m, d, j, 0.0)
    assert evaluate_atom(m, d, info, ("close", "microwave_1"))
    assert not evaluate_atom(m, d, info, ("open", "microwave_1"))
    shut_handle = site_world(m, d, "microwave_1_door_handle")
    set_joint(m, d, j, 0.5 * (DOOR_OPEN_THRESHOLD + DOOR_CLOSED_THRESHOLD))
    s = predicate_state(m, d, info)
    assert ("open", "microwave_1") not in s and ("close", "microwave_1") not in s
    set_joint(m, d, j, DOOR_OPEN_THRESHOLD + 0.05)
    assert evaluate_atom(m, d, info, ("open", "microwave_1"))
    assert ("open", "microwave_1") in predicate_state(m, d, info)
    # the door swings outward: its handle moves along the shut door's outward normal (the handle
    # site's +x when shut), away from the cavity
    sid = m.site("microwave_1_door_handle").id
    set_joint(m, d, j, 0.0)
    normal = d.site_xmat[sid].reshape(3, 3)[:, 0].copy()
    set_joint(m, d, j, 1.0)
    assert float(normal @ (site_world(m, d, "microwave_1_door_handle") - shut_handle)) > 0.1
    # the microwave (yaw 0, on the table's +y side) faces the table centre: outward normal is -y
    assert normal[1] == pytest.approx(-1.0, abs=1e-6)


def test_microwave_init_open_and_door_clear(scene):
    m, info = scene
    d = mujoco.MjData(m)
    sample_initial_state(m, d, info, np.random.default_rng(0))
    q = d.qpos[m.jnt_qposadr[m.joint("microwave_1_door_hinge").id]]
    assert q >= DOOR_OPEN_THRESHOLD
    assert ("open", "microwave_1") in predicate_state(m, d, info)


def test_in_heating_region_and_on_top(world):
    m, d, info = world
    set_joint(m, d, "microwave_1_door_hinge", 1.6)
    floor = site_world(m, d, "microwave_1_heating_region")
    place(m, d, info, "white_yellow_mug_1", floor, z_bottom=floor[2] + 0.001)
    mujoco.mj_forward(m, d)
    assert evaluate_atom(m, d, info, ("in", "white_yellow_mug_1", "microwave_1_heating_region"))
    top = site_world(m, d, "microwave_1_top_side")
    place(m, d, info, "white_yellow_mug_1", top, z_bottom=top[2] + 0.001)
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, ("in", "white_yellow_mug_1", "microwave_1_heating_region"))
    assert evaluate_atom(m, d, info, ("on", "white_yellow_mug_1", "microwave_1_top_side"))
    # beside the microwave on the table: neither
    place(m, d, info, "white_yellow_mug_1", floor + [0.0, -0.3, 0.0], z_bottom=0.0)
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, ("in", "white_yellow_mug_1", "microwave_1_heating_region"))
    assert not evaluate_atom(m, d, info, ("on", "white_yellow_mug_1", "microwave_1_top_side"))


@pytest.mark.parametrize("bay", ["front", "back", "left", "right"])
def test_book_in_each_caddy_compartment(world, bay):
    m, d, info = world
    regions = [f"desk_caddy_1_{b}_contain_region" for b in ("front", "back", "left", "right")]
    target = f"desk_caddy_1_{bay}_contain_region"
    floor = site_world(m, d, target)
    # stand the book along the bay's long side (the caddy's local y = world y turned by yaw pi)
    place(m, d, info, "black_book_1", floor, z_bottom=floor[2] + 0.001)
    mujoco.mj_forward(m, d)
    got = {r for r in regions if evaluate_atom(m, d, info, ("in", "black_book_1", r))}
    assert got == {target}
    assert ("in", "black_book_1", target) in predicate_state(m, d, info)
    # lifted well above the caddy: in none
    place(m, d, info, "black_book_1", floor, z_bottom=floor[2] + 0.2)
    mujoco.mj_forward(m, d)
    assert not any(evaluate_atom(m, d, info, ("in", "black_book_1", r)) for r in regions)


def test_shelf_levels_are_exclusive(world):
    m, d, info = world
    names = {"bottom": "wooden_two_layer_shelf_1_bottom_region",
             "top": "wooden_two_layer_shelf_1_top_region",
             "side": "wooden_two_layer_shelf_1_top_side"}
    for level in ("bottom", "top"):
        floor = site_world(m, d, names[level])
        place(m, d, info, "yellow_book_1", floor, z_bottom=floor[2] + 0.001)
        mujoco.mj_forward(m, d)
        s = predicate_state(m, d, info)
        assert ("in", "yellow_book_1", names[level]) in s
        other = names["top" if level == "bottom" else "bottom"]
        assert ("in", "yellow_book_1", other) not in s
        assert ("on", "yellow_book_1", names["side"]) not in s
    top = site_world(m, d, names["side"])
    place(m, d, info, "chefmate_8_frypan_1", top, z_bottom=top[2] + 0.001)
    mujoco.mj_forward(m, d)
    s = predicate_state(m, d, info)
    assert ("on", "chefmate_8_frypan_1", names["side"]) in s
    assert ("in", "chefmate_8_frypan_1", names["top"]) not in s


def test_white_cabinet_drawers_face_libero_front(world):
    m, d, info = world
    r = "white_cabinet_1_top_region"
    j = info.regions[r].joint
    set_joint(m, d, j, 0.0)
    assert evaluate_atom(m, d, info, ("close", r))
    p0 = site_world(m, d, r)
    set_joint(m, d, j, DRAWER_OPEN_THRESHOLD + 0.01)
    assert evaluate_atom(m, d, info, ("open", r))
    moved = site_world(m, d, r) - p0
    # cabinet at the table's -y side with yaw pi: LIBERO's front (-y) turned to +y, toward centre
    assert moved[1] == pytest.approx(DRAWER_OPEN_THRESHOLD + 0.01, abs=1e-6)
    assert abs(moved[0]) < 1e-6
    floor = site_world(m, d, r)
    place(m, d, info, "moka_pot_1", floor + [0.0, 0.04, 0.0], z_bottom=floor[2] + 0.001)
    mujoco.mj_forward(m, d)
    # the 0.15 m pot stands taller than the drawer region but counts as in it (its bottom does)
    assert evaluate_atom(m, d, info, ("in", "moka_pot_1", r))
    assert not evaluate_atom(m, d, info, ("in", "moka_pot_1", "white_cabinet_1_bottom_region"))


def test_tray_contains(world):
    m, d, info = world
    tray = TABLE_ORIGIN + np.array([0.1, 0.0, 0.0])
    place(m, d, info, "wooden_tray_1", tray)
    mujoco.mj_forward(m, d)
    floor = site_world(m, d, "wooden_tray_1_contain_region")
    place(m, d, info, "moka_pot_1", floor + [0.05, 0.0, 0.0], z_bottom=floor[2] + 0.001)
    mujoco.mj_forward(m, d)
    assert evaluate_atom(m, d, info, ("in", "moka_pot_1", "wooden_tray_1_contain_region"))
    place(m, d, info, "moka_pot_1", floor + [0.25, 0.0, 0.0], z_bottom=0.0)
    mujoco.mj_forward(m, d)
    assert not evaluate_atom(m, d, info, ("in", "moka_pot_1", "wooden_tray_1_contain_region"))


def test_new_objects_stand_stably(world):
    """Each new object dropped alone on the table settles upright where it was put."""
    m, d, info = world
    x, row = -0.55, 0
    for o in info.objects:   # side by side along x, 3 cm apart, in two rows
        hx = info.objects[o].half_extents[0]
        if x + 2 * hx > 0.55:
            x, row = -0.55, row + 1
        place(m, d, info, o, TABLE_ORIGIN + np.array([x + hx, 0.13 * (2 * row - 1), 0.0]),
              z_bottom=0.002)
        x += 2 * hx + 0.03
    assert row <= 1
    mujoco.mj_forward(m, d)
    start = {o: d.xpos[m.body(o).id].copy() for o in info.objects}
    for _ in range(500):
        mujoco.mj_step(m, d)
    for o, p0 in start.items():
        b = m.body(o).id
        up = d.xmat[b].reshape(3, 3)[:, 2]
        assert up[2] > math.cos(0.05), (o, up)                 # still upright
        assert np.linalg.norm(d.xpos[b][:2] - p0[:2]) < 0.01, o
        assert d.xpos[b][2] == pytest.approx(info.objects[o].half_extents[2], abs=0.005), o


def test_mug_handle_clear_of_grasp_axis(scene):
    """Fingers closing along the mug's y across the cup (pads ~2 cm wide) do not reach the handle."""
    m, info = scene
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    for mug in ("porcelain_mug_1", "red_coffee_mug_1", "white_yellow_mug_1"):
        b = m.body(mug).id
        R = d.xmat[b].reshape(3, 3)
        h = R.T @ (d.site_xpos[m.site(f"{mug}_handle").id] - d.xpos[b])
        g = info.objects[mug].grasp
        assert g.axis == "y" and abs(h[1]) < 1e-9
        assert h[0] - 0.005 > g.half_extents[0] + 0.01   # handle bar beyond the cup + pad half


def test_frypan_grasp_offset_is_its_handle(scene):
    m, info = scene
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    pan = "chefmate_8_frypan_1"
    b = m.body(pan).id
    R = d.xmat[b].reshape(3, 3)
    h = R.T @ (d.site_xpos[m.site(f"{pan}_handle").id] - d.xpos[b])
    g = info.objects[pan].grasp
    assert h[:2] == pytest.approx(g.offset, abs=1e-9)
    half = info.objects[pan].half_extents
    assert h[2] + half[2] == pytest.approx(g.grasp_height, abs=1e-9)   # above the pan's bottom
    assert g.grasp_width == pytest.approx(2 * g.half_extents[1]) and g.axis == "y"


def _penetrating(m, d, body: str) -> list[tuple[str, str, float]]:
    b = m.body(body).id
    out = []
    for i in range(d.ncon):
        c = d.contact[i]
        b1, b2 = int(m.geom_bodyid[c.geom1]), int(m.geom_bodyid[c.geom2])
        if b in (b1, b2) and c.dist < -1e-4:
            out.append((m.body(b1).name, m.body(b2).name, float(c.dist)))
    return out


def _fixture_yaw(m, d, body: str) -> float:
    R = d.xmat[m.body(body).id].reshape(3, 3)
    return math.atan2(R[1, 0], R[0, 0])


def test_things_fit_where_the_goals_put_them(world):
    """The goal placements of LIBERO-90/10 are physically possible in the proxies: each object
    fits its target region without penetrating the fixture, and the region's In holds."""
    m, d, info = world
    set_joint(m, d, "microwave_1_door_hinge", 0.0)        # mug inside, door shut
    shelf_yaw = _fixture_yaw(m, d, "wooden_two_layer_shelf_1")
    caddy_yaw = _fixture_yaw(m, d, "desk_caddy_1")
    mw = site_world(m, d, "microwave_1_heating_region")
    lo = site_world(m, d, "wooden_two_layer_shelf_1_bottom_region")
    hi = site_world(m, d, "wooden_two_layer_shelf_1_top_region")
    # shelf front (local -y) in the world, to put the frypan's handle out of the front
    front = np.array([math.sin(shelf_yaw), -math.cos(shelf_yaw), 0.0])
    cases = [
        ("white_yellow_mug_1", mw, 0.0, "microwave_1_heating_region"),
        # pan centre 6 cm inside the front edge, handle pointing out of the front
        ("chefmate_8_frypan_1", lo + 0.02 * front, math.atan2(front[1], front[0]),
         "wooden_two_layer_shelf_1_bottom_region"),
        # a standing book across the top bay
        ("black_book_1", hi, shelf_yaw + math.pi / 2, "wooden_two_layer_shelf_1_top_region"),
    ]
    for bay in ("front", "back", "left", "right"):
        cases.append(("yellow_book_1", site_world(m, d, f"desk_caddy_1_{bay}_contain_region"),
                      caddy_yaw, f"desk_caddy_1_{bay}_contain_region"))
    for obj, floor, yaw, region in cases:
        place(m, d, info, obj, floor, z_bottom=floor[2] + 0.0005, yaw=yaw)
        mujoco.mj_forward(m, d)
        assert not _penetrating(m, d, obj), (obj, region, _penetrating(m, d, obj))
        assert evaluate_atom(m, d, info, ("in", obj, region)), (obj, region)
        place(m, d, info, obj, TABLE_ORIGIN + np.array([0.0, 0.13, 0.0]))   # out of the way
    # the pan's handle sticks out in front of the shelf, where a top-down hand can hold it
    place(m, d, info, "chefmate_8_frypan_1", lo + 0.02 * front, z_bottom=lo[2] + 0.0005,
          yaw=math.atan2(front[1], front[0]))
    mujoco.mj_forward(m, d)
    handle = d.site_xpos[m.site("chefmate_8_frypan_1_handle").id]
    shelf_centre = d.xpos[m.body("wooden_two_layer_shelf_1").id]
    assert float((handle - shelf_centre) @ front) > 0.079 + 0.05


def test_door_swings_under_a_hand_sized_force(world):
    """A 5 N pull on the handle (along the door's outward normal) opens the door past the Open
    threshold within 2 s, and a 5 N push at the handle shuts it again (Close)."""
    m, d, info = world
    j = "microwave_1_door_hinge"
    door = m.body("microwave_1_door").id
    sid = m.site("microwave_1_door_handle").id
    for k, o in enumerate(info.objects):   # clear the door's sweep: park the objects far away
        place(m, d, info, o, [3.0 + 0.3 * k, 3.0], z_bottom=-TABLE_HEIGHT)
    set_joint(m, d, j, 0.0)

    def run(sign: float, until) -> bool:
        for _ in range(1000):   # 2 s
            d.qfrc_applied[:] = 0.0
            normal = d.site_xmat[sid].reshape(3, 3)[:, 0]
            mujoco.mj_applyFT(m, d, sign * 5.0 * normal, np.zeros(3), d.site_xpos[sid].copy(),
                              door, d.qfrc_applied)
            mujoco.mj_step(m, d)
            if until():
                return True
        return False

    assert run(+1.0, lambda: evaluate_atom(m, d, info, ("open", "microwave_1")))
    assert run(-1.0, lambda: evaluate_atom(m, d, info, ("close", "microwave_1")))
    d.qfrc_applied[:] = 0.0
