"""The one region shift/scale (robot_skills/tasks/regions.py) and its two users: task
perturbations (robot_skills.evaluation.perturbations) and the simulator's reset (sim.scene)."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_skills.evaluation.perturbations import (
    PerturbationSpec,
    apply_perturbation,
    object_init_regions,
)
from robot_skills.tasks.bddl import parse_bddl
from robot_skills.tasks.regions import (
    check_shift_scale,
    shift_scale_centre_half,
    shift_scale_ranges,
)
from sim.layout import TABLE_ORIGIN
from sim.scene import build_scene, sample_initial_state

try:  # tests/ may or may not be a package
    from tests.test_predicates import TASK
except ImportError:  # pragma: no cover
    from test_predicates import TASK

BOXES = [(-0.10, -0.01, -0.08, 0.01), (0.0, 0.1, 0.2, 0.3)]


def test_shift_moves_every_box_by_exactly_dx_dy():
    out = shift_scale_ranges(BOXES, (0.05, -0.02), 1.0)
    np.testing.assert_allclose(np.subtract(out, BOXES), [[0.05, -0.02, 0.05, -0.02]] * 2,
                               atol=1e-12)
    assert all(type(v) is float for box in out for v in box)
    assert BOXES[0] == (-0.10, -0.01, -0.08, 0.01)  # input untouched


def test_scale_is_about_each_centre():
    out = np.array(shift_scale_ranges(BOXES, (0.0, 0.0), 3.0))
    b = np.array(BOXES)
    np.testing.assert_allclose((out[:, :2] + out[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2, atol=1e-12)
    np.testing.assert_allclose(out[:, 2:] - out[:, :2], 3.0 * (b[:, 2:] - b[:, :2]), atol=1e-12)


def test_identity_and_empty():
    np.testing.assert_allclose(shift_scale_ranges(BOXES, (0, 0), 1), BOXES, rtol=0, atol=1e-15)
    assert shift_scale_ranges([], (0.1, 0.2), 2.0) == []
    with pytest.raises(ValueError, match="region_scale"):  # validated even without boxes
        shift_scale_ranges([], (0.1, 0.2), 0.0)


def test_centre_half_form_is_the_same_transform():
    ch = shift_scale_centre_half(BOXES, np.array([0.01, 0.02]), 0.5)
    assert ch[0] == pytest.approx((-0.09 + 0.01, 0.0 + 0.02, 0.005, 0.005))
    corners = shift_scale_ranges(BOXES, [0.01, 0.02], 0.5)
    assert corners == [(cx - hx, cy - hy, cx + hx, cy + hy) for cx, cy, hx, hy in ch]


@settings(max_examples=60, deadline=None)
@given(x0=st.floats(-1, 1), y0=st.floats(-1, 1), w=st.floats(0, 0.5), d=st.floats(0, 0.5),
       dx=st.floats(-0.3, 0.3), dy=st.floats(-0.3, 0.3), s=st.floats(0.01, 5))
def test_property_centre_moves_by_shift_and_size_scales(x0, y0, w, d, dx, dy, s):
    (nx0, ny0, nx1, ny1), = shift_scale_ranges([(x0, y0, x0 + w, y0 + d)], (dx, dy), s)
    assert nx0 <= nx1 and ny0 <= ny1
    assert (nx0 + nx1) / 2 == pytest.approx(x0 + w / 2 + dx, abs=1e-12)
    assert (ny0 + ny1) / 2 == pytest.approx(y0 + d / 2 + dy, abs=1e-12)
    assert nx1 - nx0 == pytest.approx(s * w, abs=1e-12)
    assert ny1 - ny0 == pytest.approx(s * d, abs=1e-12)


@pytest.mark.parametrize("shift, scale, match", [
    ((math.nan, 0.0), 1.0, r"region_shift .* got \(nan, 0.0\)"),
    ((0.1,), 1.0, r"region_shift .* got \(0.1,\)"),
    ((0.1, 0.2, 0.3), 1.0, "region_shift"),
    ("ab", 1.0, "region_shift"),
    (None, 1.0, "region_shift"),
    ((0.0, math.inf), 1.0, "region_shift"),
    ((0.0, 0.0), 0.0, r"region_scale .* got 0.0"),
    ((0.0, 0.0), -1.0, r"region_scale .* got -1.0"),
    ((0.0, 0.0), math.nan, "region_scale"),
    ((0.0, 0.0), math.inf, "region_scale"),
    ((0.0, 0.0), True, r"region_scale .* got True"),
    ((0.0, 0.0), "2", "region_scale"),
])
def test_bad_shift_or_scale_names_the_value(shift, scale, match):
    with pytest.raises(ValueError, match=match):
        shift_scale_ranges(BOXES, shift, scale)


@pytest.mark.parametrize("box", [(0.0, 0.0, 1.0), (0.0, math.nan, 1.0, 1.0), (1.0, 0.0, 0.0, 1.0),
                                 (0.0, 1.0, 1.0, 0.0), "abcd", 3.0])
def test_bad_box_names_it(box):
    with pytest.raises(ValueError, match="range 1 "):
        shift_scale_ranges([BOXES[0], box], (0.0, 0.0), 1.0)


def test_check_shift_scale_returns_plain_floats():
    (dx, dy), s = check_shift_scale(np.array([0.1, -0.2], np.float32), np.float32(2.0))
    assert type(dx) is float and type(s) is float and s == 2.0
    assert check_shift_scale([1, 2], 3) == ((1.0, 2.0), 3.0)


# ---------------------------------------------------------------------------- the two call sites
def test_perturbation_uses_the_shared_shift_scale():
    task = parse_bddl(TASK)
    spec = PerturbationSpec("p", region_shift=(0.013, 0.071), region_scale=0.37)
    new = apply_perturbation(task, spec, np.random.default_rng(0), {})
    moved = object_init_regions(task)
    assert moved
    for full, r in task.regions.items():
        want = shift_scale_ranges(r.ranges, (0.013, 0.071), 0.37) if full in moved else r.ranges
        assert new.regions[full].ranges == want, full
    with pytest.raises(ValueError, match=r"^p: region_scale must be a finite number > 0"):
        PerturbationSpec("p", region_scale=-1.0)
    with pytest.raises(ValueError, match=r"^p: region_shift must be two finite numbers"):
        PerturbationSpec("p", region_shift=(0.0, math.nan))


def test_scene_samples_inside_the_shifted_scaled_boxes():
    spec, info = build_scene(parse_bddl(TASK))
    m = spec.compile()
    d = mujoco.MjData(m)
    shift, scale = (0.04, -0.03), 0.5
    on_table = [(a[1], a[2]) for a in info.task.init
                if a[0].lower() == "on" and a[1] in info.objects and a[2] in info.regions
                and info.regions[a[2]].kind == "table"]
    assert on_table
    for seed in range(3):
        sample_initial_state(m, d, info, np.random.default_rng(seed), region_shift=shift,
                             region_scale=scale, settle_steps=0)
        for obj, region in on_table:
            qa = m.joint(info.objects[obj].free_joint).qposadr[0]
            x, y = d.qpos[qa:qa + 2] - np.asarray(TABLE_ORIGIN)[:2]  # table frame
            boxes = shift_scale_ranges(info.regions[region].ranges, shift, scale)
            assert any(x0 - 1e-9 <= x <= x1 + 1e-9 and y0 - 1e-9 <= y <= y1 + 1e-9
                       for x0, y0, x1, y1 in boxes), (obj, region, x, y, boxes)
    # the scene's own regions (read by the success predicates) are not moved
    assert info.regions[on_table[0][1]].ranges == list(info.task.regions[on_table[0][1]].ranges)
