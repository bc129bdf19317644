"""Proxy assets, scene building and seeded initial states (sim/assets.py, sim/scene.py)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.domain.predicates import ENTITY_TAGS
from robot_skills.tasks.bddl import load_bddl, parse_bddl
from sim.assets import ASSETS, CONTACT_REPORT_MARGIN, UnsupportedCategoryError, check_categories
from sim.layout import TABLE_ORIGIN
from sim.predicates import predicate_state
from sim.scene import PlacementError, SceneError, build_scene, sample_initial_state

try:  # tests/ may or may not be a package
    from tests.test_predicates import TASK
except ImportError:  # pragma: no cover
    from test_predicates import TASK

SHARED = LIBERO_BDDL
SUITES = ("libero_goal", "libero_spatial", "libero_object")

OBJECT_CATEGORIES = {
    "akita_black_bowl", "white_bowl", "plate", "glazed_rim_porcelain_ramekin", "cookies",
    "cream_cheese", "butter", "alphabet_soup", "tomato_sauce", "ketchup", "bbq_sauce",
    "salad_dressing", "new_salad_dressing", "milk", "orange_juice", "chocolate_pudding", "basket",
    "wine_bottle"}


def test_asset_registry_metadata():
    assert OBJECT_CATEGORIES <= set(ASSETS)
    assert {"table", "floor", "wooden_cabinet", "flat_stove", "wine_rack"} <= set(ASSETS)
    for cat, a in ASSETS.items():
        assert a.tags <= set(ENTITY_TAGS), cat
        if cat in OBJECT_CATEGORIES:
            assert a.kind == "object" and a.mass > 0
        if "graspable" in a.tags:
            assert a.grasp is not None and 0 < a.grasp.grasp_width < 0.08, cat
            assert 0 < a.grasp.grasp_height < 2 * a.half_extents[2], cat
    bowl = ASSETS["akita_black_bowl"]
    assert {"graspable", "surface", "container"} <= bowl.tags
    assert ASSETS["plate"].tags == frozenset({"surface", "pushable"})
    assert ASSETS["plate"].grasp is None
    assert ASSETS["flat_stove"].tags == frozenset({"switchable"})


def test_unsupported_category_lists_all():
    with pytest.raises(UnsupportedCategoryError) as e:
        check_categories({"plate", "flux_capacitor", "hover_board"})
    assert e.value.unsupported == ["flux_capacitor", "hover_board"]
    assert "plate" in e.value.supported and "flux_capacitor, " not in str(e.value)
    assert "['flux_capacitor', 'hover_board']" in str(e.value)
    task = parse_bddl(TASK.replace("plate_1 - plate", "plate_1 - flux_capacitor"))
    with pytest.raises(UnsupportedCategoryError, match="flux_capacitor"):
        build_scene(task)


@pytest.fixture(scope="module")
def built():
    spec, info = build_scene(parse_bddl(TASK))
    return spec, info, spec.compile()


def test_scene_names_bodies_sites_and_cameras(built):
    _spec, info, m = built
    for name in [*info.objects, *info.fixtures]:
        assert m.body(name).name == name
    for site in ["main_table_plate_region", "wooden_cabinet_1_top_region",
                 "wooden_cabinet_1_middle_region", "wooden_cabinet_1_bottom_region",
                 "wooden_cabinet_1_top_side", "flat_stove_1_cook_region", "wine_rack_1_top_region",
                 "basket_1_contain_region", "wooden_cabinet_1_top_region_handle",
                 "flat_stove_1_knob"]:
        assert m.site(site).name == site
    # drawer region sites live in the drawer bodies
    top = m.site("wooden_cabinet_1_top_region")
    assert m.body(top.bodyid[0]).name == "wooden_cabinet_1_top_drawer"
    for cam in ("agentview", "frontview", "birdview"):
        assert m.camera(cam).name == cam
    assert m.nlight >= 1
    assert m.opt.timestep <= 0.002
    # objects are free; fixtures are welded
    for o in info.objects:
        assert m.jnt_type[m.joint(info.objects[o].free_joint).id] == mujoco.mjtJoint.mjJNT_FREE
    assert m.body("wooden_cabinet_1").jntnum[0] == 0
    g = m.body("akita_black_bowl_1").geomadr[0]
    assert m.geom_condim[g] == 4 and m.geom_gap[g] == pytest.approx(CONTACT_REPORT_MARGIN)


def test_fixture_pose_and_facing(built):
    _, info, m = built
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    cab = info.fixtures["wooden_cabinet_1"]
    assert cab.pos == pytest.approx(TABLE_ORIGIN + [0.1, -0.3, 0.0])
    assert cab.yaw == pytest.approx(np.pi)
    # yaw = pi turns the drawer handles toward the robot (world origin, -x of the cabinet)
    handle = d.site("wooden_cabinet_1_top_region_handle").xpos
    assert handle[0] < cab.pos[0] - 0.1
    # the top drawer's region is above the middle one's, and the cabinet top above both
    z = {r: d.site(f"wooden_cabinet_1_{r}").xpos[2]
         for r in ("top_region", "middle_region", "bottom_region", "top_side")}
    assert z["bottom_region"] < z["middle_region"] < z["top_region"] < z["top_side"]


def test_entity_tags(built):
    _, info, _ = built
    tags = info.entity_tags()
    assert tags["wooden_cabinet_1_top_region"] == {"container", "openable"}
    assert tags["flat_stove_1_cook_region"] == {"surface"}
    assert tags["wooden_cabinet_1_top_side"] == {"surface"}
    assert tags["wine_rack_1_top_region"] == {"surface"}
    assert tags["main_table_plate_region"] == {"surface", "table_region"}
    assert tags["basket_1_contain_region"] == {"container"}
    assert tags["flat_stove_1"] == {"switchable"}
    assert {"graspable", "surface"} <= tags["akita_black_bowl_1"]
    assert tags["plate_1"] == {"surface", "pushable"}
    assert set(info.regions) <= set(tags)


def test_sampling_is_seeded_collision_free_and_satisfies_init(built):
    _, info, m = built
    d = mujoco.MjData(m)
    qs = []
    for seed in (0, 0, 1):
        sample_initial_state(m, d, info, np.random.default_rng(seed))
        qs.append(d.qpos.copy())
        s = predicate_state(m, d, info)
        assert set(info.task.init) <= s
        assert not set(info.task.goal) <= s
        for i in range(d.ncon):
            assert d.contact[i].dist > -2e-3  # nothing interpenetrates after settling
    np.testing.assert_array_equal(qs[0], qs[1])
    assert not np.allclose(qs[0], qs[2])


def test_region_shift_moves_objects(built):
    _, info, m = built
    d = mujoco.MjData(m)
    sample_initial_state(m, d, info, np.random.default_rng(3))
    p0 = d.body("cream_cheese_1").xpos.copy()
    sample_initial_state(m, d, info, np.random.default_rng(3), region_shift=(0.05, -0.03))
    p1 = d.body("cream_cheese_1").xpos.copy()
    assert p1[:2] - p0[:2] == pytest.approx([0.05, -0.03], abs=3e-3)
    with pytest.raises(ValueError, match="region_scale"):
        sample_initial_state(m, d, info, np.random.default_rng(0), region_scale=0.0)
    with pytest.raises(ValueError, match="region_shift"):
        sample_initial_state(m, d, info, np.random.default_rng(0), region_shift=(1.0,))


def _sampled_scene(text: str):
    """Build, compile and sample (seed 0) the scene of BDDL ``text``: ``(model, data, info)``."""
    spec, info = build_scene(parse_bddl(text))
    m = spec.compile()
    d = mujoco.MjData(m)
    sample_initial_state(m, d, info, np.random.default_rng(0))
    return m, d, info


def test_init_articulations_from_task():
    text = TASK.replace("(On wine_rack_1 main_table_rack_region))",
                        "(On wine_rack_1 main_table_rack_region) (Open wooden_cabinet_1_top_region)"
                        " (Turnon flat_stove_1))")
    m, d, info = _sampled_scene(text)
    s = predicate_state(m, d, info)
    assert ("open", "wooden_cabinet_1_top_region") in s
    assert ("close", "wooden_cabinet_1_middle_region") in s
    assert ("turnon", "flat_stove_1") in s


def test_in_drawer_placement_is_reachable_when_open():
    text = TASK.replace("(On cream_cheese_1 main_table_cheese_region)",
                        "(In cream_cheese_1 wooden_cabinet_1_top_region) "
                        "(Open wooden_cabinet_1_top_region)")
    m, d, info = _sampled_scene(text)
    assert ("in", "cream_cheese_1", "wooden_cabinet_1_top_region") in predicate_state(m, d, info)
    # the object lies in the part of the drawer pulled out of the cabinet (toward the robot)
    front = info.fixtures["wooden_cabinet_1"].pos[0] - 0.1
    assert d.body("cream_cheese_1").xpos[0] < front


def test_impossible_placement_raises():
    text = TASK.replace("(On plate_1 main_table_plate_region)", "(On plate_1 main_table_bowl_region)")
    spec, info = build_scene(parse_bddl(text))
    m = spec.compile()
    with pytest.raises(PlacementError, match="akita_black_bowl_1|plate_1"):
        sample_initial_state(m, mujoco.MjData(m), info, np.random.default_rng(0), max_tries=5)


def test_scene_errors():
    no_place = TASK.replace("(On flat_stove_1 main_table_stove_region)", "")
    with pytest.raises(SceneError, match="flat_stove_1"):
        build_scene(parse_bddl(no_place))
    bad_region = TASK.replace("(top_region (:target wine_rack_1))",
                              "(top_region (:target wine_rack_1)) (side_region (:target wine_rack_1))"
                              ).replace("(:goal (And (On akita_black_bowl_1 plate_1)))",
                                        "(:goal (And (On akita_black_bowl_1 wine_rack_1_side_region)))")
    with pytest.raises(SceneError, match="wine_rack_1_side_region"):
        build_scene(parse_bddl(bad_region))
    no_obj_place = TASK.replace("(On basket_1 main_table_basket_region)", "")
    spec, info = build_scene(parse_bddl(no_obj_place))
    m = spec.compile()
    with pytest.raises(SceneError, match="basket_1"):
        sample_initial_state(m, mujoco.MjData(m), info, np.random.default_rng(0))


def _check_suite(suite: str, seeds) -> None:
    for p in sorted((SHARED / suite).glob("*.bddl")):
        task = load_bddl(p)
        spec, info = build_scene(task)
        m = spec.compile()
        d = mujoco.MjData(m)
        for seed in seeds:
            sample_initial_state(m, d, info, np.random.default_rng(seed))
            s = predicate_state(m, d, info)
            assert set(task.init) <= s, (p.name, seed, set(task.init) - s)
            assert not set(task.goal) <= s, (p.name, seed)
            for o in info.objects:
                r = float(np.hypot(*d.body(o).xpos[:2]))
                # within the Panda's reach (0.855 m from joint 1's axis)
                assert 0.2 <= r <= 0.85, (p.name, o, r)


@pytest.mark.parametrize("suite", SUITES)
def test_shared_suites_build_and_sample(suite):
    _check_suite(suite, seeds=(0, 1))


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES)
def test_shared_suites_twenty_seeds(suite):
    _check_suite(suite, seeds=range(20))
