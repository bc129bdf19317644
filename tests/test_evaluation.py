"""Wilson intervals, perturbations on a hand-made task object, and the benchmark runner end to end
with a fake world factory (in-process and with two spawn workers)."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from test_executor import BOWL, DRAWER, FakeSkill, FakeWorld, ScriptedTaskPolicy, skill_set

from robot_skills.evaluation.perturbations import (
    PerturbationSpec,
    apply_perturbation,
    load_perturbation_suite,
    object_init_regions,
    perturbation_rng,
)
from robot_skills.evaluation.report import format_table, plot_success, write_markdown
from robot_skills.evaluation.runner import BenchmarkRunner, run_suite
from robot_skills.evaluation.stats import summarize_lengths, wilson_interval
from robot_skills.execution.interfaces import SkillSet
from robot_skills.planning.symbolic import SymbolicPlanner

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- Wilson
@pytest.mark.parametrize("k,n,expected", [
    (8, 10, (0.4902, 0.9433)),
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (50, 100, (0.4038, 0.5962)),
    (1, 20, (0.0089, 0.2361)),
])
def test_wilson_known_values(k, n, expected):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(expected[0], abs=1e-4) and hi == pytest.approx(expected[1], abs=1e-4)


def test_wilson_edge_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(5, 10, z=2.576)  # 99%
    assert lo < wilson_interval(5, 10)[0] and hi > wilson_interval(5, 10)[1]
    for bad in [(3, 2), (-1, 5), (1, -1), (1.5, 3)]:
        with pytest.raises(ValueError):
            wilson_interval(*bad)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, z=0)
    assert summarize_lengths([3, 1, 2, 10]) == {"mean": 4.0, "median": 2.5, "min": 1.0,
                                                "max": 10.0}


# ---------------------------------------------------------------------- perturbations
@dataclass(frozen=True)
class Region:
    name: str
    target: str
    ranges: list = field(default_factory=list)
    yaw_rotation: list | None = None

    @property
    def full_name(self) -> str:
        return f"{self.target}_{self.name}"


@dataclass
class Task:
    source: str
    problem_name: str
    language: str
    regions: dict
    fixtures: dict
    objects: dict
    obj_of_interest: list
    init: list
    goal: list


def _regions(*rs):
    return {r.full_name: r for r in rs}


def make_task() -> Task:
    regions = _regions(
        Region("bowl_region", "main_table", [(-0.10, -0.01, -0.08, 0.01)]),
        Region("cheese_region", "main_table", [(-0.06, 0.12, -0.04, 0.14)]),
        Region("plate_region", "main_table", [(0.04, -0.03, 0.06, -0.01)]),
        Region("cabinet_region", "main_table", [(0.02, -0.25, 0.04, -0.23)],
               [(math.pi, math.pi)]),
        Region("stove_front_region", "main_table", [(-0.09, 0.17, -0.01, 0.25)]),
        Region("top_region", "wooden_cabinet_1"),
    )
    return Task("(define ...)", "demo", "put the bowl in the drawer", regions,
                {"main_table": "table", "wooden_cabinet_1": "wooden_cabinet"},
                {"akita_black_bowl_1": "akita_black_bowl", "cream_cheese_1": "cream_cheese",
                 "plate_1": "plate"},
                ["akita_black_bowl_1", "wooden_cabinet_1_top_region"],
                [("on", "akita_black_bowl_1", "main_table_bowl_region"),
                 ("on", "cream_cheese_1", "main_table_cheese_region"),
                 ("on", "plate_1", "main_table_plate_region"),
                 ("on", "wooden_cabinet_1", "main_table_cabinet_region")],
                [("in", "akita_black_bowl_1", "wooden_cabinet_1_top_region")])


G = frozenset
SUPPORTED = {
    "akita_black_bowl": G({"graspable", "surface", "container"}),
    "white_bowl": G({"graspable", "surface", "container"}),
    "plate": G({"graspable", "surface", "pushable"}),
    "cream_cheese": G({"graspable"}),
    "butter": G({"graspable"}),
    "chocolate_pudding": G({"graspable"}),
    "alphabet_soup": G({"graspable"}),
    "wooden_cabinet": G({"surface"}),
    "table": G(),
}
OBJECT_REGIONS = ["main_table_bowl_region", "main_table_cheese_region", "main_table_plate_region"]


def test_shift_moves_only_object_init_regions_by_exactly_dx_dy():
    task = make_task()
    assert object_init_regions(task) == OBJECT_REGIONS
    spec = PerturbationSpec("shift", region_shift=(0.05, -0.02))
    new = apply_perturbation(task, spec, np.random.default_rng(0), SUPPORTED)
    for full, r in task.regions.items():
        nr = new.regions[full]
        if full in OBJECT_REGIONS:
            np.testing.assert_allclose(np.subtract(nr.ranges, r.ranges),
                                       [[0.05, -0.02, 0.05, -0.02]], atol=1e-12)
        else:  # fixture stand regions, goal-only regions and fixture regions stay put
            assert nr == r
    assert task.regions["main_table_bowl_region"].ranges == [(-0.10, -0.01, -0.08, 0.01)]
    assert new.init == task.init and new.goal == task.goal and new.objects == task.objects


def test_scale_about_centre():
    task = make_task()
    new = apply_perturbation(task, PerturbationSpec("s", region_scale=3.0),
                             np.random.default_rng(0), SUPPORTED)
    x0, y0, x1, y1 = new.regions["main_table_bowl_region"].ranges[0]
    assert (x1 - x0) == pytest.approx(0.06) and (x0 + x1) / 2 == pytest.approx(-0.09)


def _gap(a, b):
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return math.hypot(dx, dy)


def test_distractors_added_in_free_regions_with_valid_categories():
    task = make_task()
    spec = PerturbationSpec("d", distractors=2, seed=0)
    new = apply_perturbation(task, spec, perturbation_rng(spec, "demo", 0), SUPPORTED)
    added = {n: c for n, c in new.objects.items() if n not in task.objects}
    assert len(added) == 2
    for name, cat in added.items():
        assert "graspable" in SUPPORTED[cat] and cat not in task.objects.values()
        region = next(a[2] for a in new.init if a[1] == name)
        r = new.regions[region]
        assert r.target == "main_table" and r.full_name == region and r.yaw_rotation is None
        (rect,) = r.ranges
        for other_name, other in new.regions.items():
            if other_name != region:
                for o in other.ranges:
                    assert _gap(rect, o) >= 0.08 - 1e-9, (region, other_name)
    assert len(new.init) == len(task.init) + 2 and len(task.objects) == 3  # original untouched
    again = apply_perturbation(task, spec, perturbation_rng(spec, "demo", 7), SUPPORTED)
    assert again.objects == new.objects and again.regions == new.regions  # seed fixes the layout


def test_too_many_distractors_is_a_clear_error():
    with pytest.raises(ValueError, match="distractor"):
        apply_perturbation(make_task(), PerturbationSpec("d", distractors=9),
                           np.random.default_rng(0), SUPPORTED)


def test_swap_mapping_rewrites_categories_keeps_names():
    task = make_task()
    spec = PerturbationSpec("swap", swap_instances={"akita_black_bowl": "white_bowl"})
    new = apply_perturbation(task, spec, np.random.default_rng(0), SUPPORTED)
    assert new.objects["akita_black_bowl_1"] == "white_bowl"
    assert new.goal == task.goal and new.obj_of_interest == task.obj_of_interest
    with pytest.raises(ValueError, match="lacks tag"):
        apply_perturbation(task, PerturbationSpec("x", swap_instances={"akita_black_bowl":
                                                                        "butter"}),
                           np.random.default_rng(0), SUPPORTED)
    with pytest.raises(ValueError, match="unsupported category"):
        apply_perturbation(task, PerturbationSpec("x", swap_instances={"plate": "spaceship"}),
                           np.random.default_rng(0), SUPPORTED)


def test_swap_true_swaps_each_graspable_for_compatible_category():
    task = make_task()
    new = apply_perturbation(task, PerturbationSpec("swap", swap_instances=True),
                             np.random.default_rng(1), SUPPORTED)
    assert new.objects["akita_black_bowl_1"] == "white_bowl"
    assert new.objects["cream_cheese_1"] in {"butter", "chocolate_pudding", "alphabet_soup",
                                             "white_bowl"}
    for name, cat in new.objects.items():
        assert SUPPORTED[task.objects[name]] <= SUPPORTED[cat]


def test_spec_validation_and_suite_loading():
    with pytest.raises(ValueError, match="unknown perturbation key"):
        PerturbationSpec.from_dict({"name": "x", "shift": [0, 0]})
    with pytest.raises(ValueError, match="region_shift"):
        PerturbationSpec("x", region_shift=(0.1,))
    with pytest.raises(ValueError, match="distractors"):
        PerturbationSpec("x", distractors=-1)
    with pytest.raises(ValueError, match="region_scale"):
        PerturbationSpec("x", region_scale=0)
    suite = load_perturbation_suite(REPO / "configs/perturbations/libero_plus_lite.yaml")
    assert [s.name for s in suite] == ["shift5cm_2distractors", "swap_instances"]
    assert suite[0].region_shift == (0.05, 0.0) and suite[0].distractors == 2
    assert suite[1].swap_instances is True
    assert load_perturbation_suite("- {name: a, distractors: 1}")[0].distractors == 1
    with pytest.raises(ValueError, match="duplicate"):
        load_perturbation_suite("- {name: a}\n- {name: a}\n")
    with pytest.raises(FileNotFoundError):
        load_perturbation_suite("missing.yaml")
    task = make_task()
    assert apply_perturbation(task, None, np.random.default_rng(0), SUPPORTED) is task


# ---------------------------------------------------------------------- runner (fake world)
class EvalSkill(FakeSkill):
    """Never finishes when the world marks its verb broken."""

    def reset(self, args, world):
        super().reset(args, world)
        self.broken = self.name in world.broken


def make_fake_world(task_path: Path, seed: int, perturbation: PerturbationSpec | None):
    """Task file: JSON with ``goal`` atoms, ``fail_seeds`` (pick broken), ``unsupported``."""
    spec = json.loads(Path(task_path).read_text())
    if spec.get("unsupported"):
        raise ValueError(f"unsupported categories: {spec['unsupported']}")
    world = FakeWorld({tuple(a) for a in spec["goal"]})
    fail = seed in spec.get("fail_seeds", [])
    if perturbation is not None and perturbation.distractors:
        fail = fail or seed % 2 == 0
    world.broken = {"pick"} if fail else set()
    return world


def make_fake_skills(task_path: Path) -> SkillSet:
    from robot_skills.domain.verbs import SKILL_SPECS

    return skill_set({name: EvalSkill(name, duration=3) for name in SKILL_SPECS})


PLANNER_SPECS: list[list[str]] = []


def make_recording_planner(specs):
    """A planner factory that notes which contracts it was built over (in-process runs only)."""
    PLANNER_SPECS.append(sorted(specs))
    return SymbolicPlanner(specs)


def make_pick_place_skills(task_path: Path) -> SkillSet:
    """A library without drawer or stove skills."""
    return skill_set({name: EvalSkill(name, duration=3) for name in ("pick", "place_on",
                                                                     "place_in")})


def make_fake_task_policy(task_path: Path):
    return ScriptedTaskPolicy(duration=4)


def _write_tasks(tmp_path: Path) -> list[Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    a = tmp_path / "put_bowl_in_drawer.json"
    a.write_text(json.dumps({"goal": [["in", BOWL, DRAWER]], "fail_seeds": [1]}))
    b = tmp_path / "turn_on_stove.json"
    b.write_text(json.dumps({"goal": [["turnon", "stove_1"]]}))
    c = tmp_path / "needs_a_spaceship.json"
    c.write_text(json.dumps({"unsupported": ["spaceship"]}))
    return [a, b, c]


def _run(tmp_path: Path, workers: int) -> dict:
    tasks = _write_tasks(tmp_path)
    runner = BenchmarkRunner(make_fake_world, make_fake_skills, workers=workers, progress=False,
                             max_replans=1)
    return runner.run_suite(tasks, episodes_per_task=4, base_seed=0,
                            perturbations=[PerturbationSpec("shift5cm_2distractors",
                                                            region_shift=(0.05, 0),
                                                            distractors=2)],
                            out_dir=tmp_path / "out", config={"suite": "fake", "episodes": 4})


def test_runner_end_to_end_in_process(tmp_path):
    res = _run(tmp_path, workers=1)
    out = tmp_path / "out"
    on_disk = json.loads((out / "results.json").read_text())
    assert set(on_disk) >= {"metadata", "tasks", "suite", "perturbations", "skipped_tasks",
                            "episodes"}
    meta = on_disk["metadata"]
    assert meta["seeds"] == [0, 1, 2, 3] and meta["config"] == {"suite": "fake", "episodes": 4}
    assert meta["code_version"].startswith("0.") and meta["timestamp"] and meta["host"]["cpu_count"]

    bowl = on_disk["tasks"]["put_bowl_in_drawer"]
    assert bowl["n"] == 4 and bowl["successes"] == 3 and bowl["success_rate"] == 0.75
    assert bowl["ci95"] == pytest.approx(list(wilson_interval(3, 4)))
    assert bowl["subgoal_progress"] == {"(In bowl_1 cabinet_1_top_region)": 0.75}
    assert bowl["failures"]["reasons"] == {"replans_exhausted": 1}
    assert bowl["failures"]["failed_calls"] == {"timeout pick": 2}
    assert bowl["mean_length"] > 0 and bowl["median_length"] == 9.0  # 3 calls x 3 steps
    assert bowl["wall_time_s"] >= 0 and bowl["seeds"] == [0, 1, 2, 3]
    assert on_disk["tasks"]["turn_on_stove"]["success_rate"] == 1.0
    assert "needs_a_spaceship" in on_disk["skipped_tasks"]
    assert "spaceship" in on_disk["skipped_tasks"]["needs_a_spaceship"]
    assert on_disk["suite"]["mean_success"] == pytest.approx((0.75 + 1.0) / 2)

    pert = on_disk["perturbations"]["shift5cm_2distractors"]
    pb = pert["tasks"]["put_bowl_in_drawer"]
    assert pb["success_rate"] == 0.25 and pb["unperturbed_success_rate"] == 0.75
    assert pb["drop_points"] == pytest.approx(50.0)
    assert pert["tasks"]["turn_on_stove"]["drop_points"] == 0.0  # no pick in that plan
    assert pert["suite"]["drop_points"] == pytest.approx(25.0)
    assert pert["spec"]["distractors"] == 2

    assert (out / "videos" / "put_bowl_in_drawer.mp4").stat().st_size > 0
    assert (out / "videos" / "turn_on_stove__shift5cm_2distractors.mp4").is_file()
    assert bowl["video"].endswith("put_bowl_in_drawer.mp4")
    assert (out / "success.png").stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "| Task | Success (95% CI) | n | Per-subgoal progress | Mean length | " \
           "shift5cm_2distractors |" in md
    assert "| put_bowl_in_drawer | 75.0% [30, 95] | 4 |" in md and "(-50.0 pt)" in md
    assert "needs_a_spaceship" in md and "**suite mean**" in md
    table = format_table(res)
    assert "SUITE MEAN" in table and "put_bowl_in_drawer" in table
    assert len(res["episodes"]) == 3 * 4 * 2  # tasks x episodes x conditions


def test_runner_with_two_spawn_workers_matches_in_process(tmp_path):
    a = _run(tmp_path / "a", workers=1)
    b = _run(tmp_path / "b", workers=2)

    def key(r):
        return [(e["task"], e["perturbation"], e["episode"], e["success"], e["steps"])
                for e in r["episodes"]]
    assert key(a) == key(b)
    assert (tmp_path / "b" / "out" / "results.json").is_file()
    assert b["metadata"]["workers"] == 2


def test_monolithic_mode_and_runner_arguments(tmp_path):
    tasks = _write_tasks(tmp_path)[:2]
    res = run_suite(tasks, make_fake_world, episodes_per_task=2,
                    mode="monolithic", make_task_policy=make_fake_task_policy,
                    max_steps=20, progress=False, video=False, out_dir=tmp_path / "mono")
    assert res["metadata"]["mode"] == "monolithic"
    assert res["tasks"]["turn_on_stove"]["success_rate"] == 1.0
    assert res["tasks"]["turn_on_stove"]["mean_length"] == 4.0
    assert (tmp_path / "mono" / "report.md").read_text().startswith(
        "# Benchmark results (monolithic)")
    with pytest.raises(ValueError):
        BenchmarkRunner(make_fake_world, mode="monolithic")
    with pytest.raises(ValueError):
        BenchmarkRunner(make_fake_world)  # composed mode needs make_skills
    with pytest.raises(ValueError):
        BenchmarkRunner(make_fake_world, make_fake_skills, mode="sideways")
    with pytest.raises(ValueError):
        BenchmarkRunner(make_fake_world, make_fake_skills, workers=0)
    with pytest.raises(ValueError):
        BenchmarkRunner(make_fake_world, make_fake_skills, max_steps=0)
    with pytest.raises(ValueError):
        BenchmarkRunner(make_fake_world, make_fake_skills).run_suite([], 1)
    with pytest.raises(ValueError):
        BenchmarkRunner(make_fake_world, make_fake_skills).run_suite(tasks, 0)


def test_planner_factory_is_built_over_the_skill_sets_contracts(tmp_path):
    tasks = _write_tasks(tmp_path)[:2]
    PLANNER_SPECS.clear()
    res = run_suite(tasks, make_fake_world, make_pick_place_skills,
                    planner=make_recording_planner, episodes_per_task=1, progress=False,
                    video=False)
    assert PLANNER_SPECS == [["pick", "place_in", "place_on"]] * 2  # one planner per episode
    # the library has no `open`, so the drawer task cannot be planned; no stove skill either
    for task in ("put_bowl_in_drawer", "turn_on_stove"):
        assert res["tasks"][task]["success_rate"] == 0.0
        assert res["tasks"][task]["failures"]["reasons"] == {"no_plan": 1}


def test_planner_factory_settings_reach_the_planner(tmp_path):
    """``planner(specs)`` replaces the old ``max_depth`` argument: a depth-1 planner cannot
    find the 3-call drawer plan, the default planner can."""
    tasks = _write_tasks(tmp_path)[:1]
    shallow = run_suite(tasks, make_fake_world, make_fake_skills,
                        planner=functools.partial(SymbolicPlanner, max_depth=1),
                        episodes_per_task=1, progress=False, video=False)
    bowl = shallow["tasks"]["put_bowl_in_drawer"]
    assert bowl["success_rate"] == 0.0 and bowl["failures"]["reasons"] == {"no_plan": 1}
    assert "depth" in shallow["episodes"][0]["messages"][0]
    deep = run_suite(tasks, make_fake_world, make_fake_skills,
                     planner=functools.partial(SymbolicPlanner, max_depth=8),
                     episodes_per_task=1, progress=False, video=False)
    assert deep["tasks"]["put_bowl_in_drawer"]["success_rate"] == 1.0


def test_report_functions_reject_non_results(tmp_path):
    with pytest.raises(ValueError):
        write_markdown({"tasks": {}}, tmp_path / "r.md")
    with pytest.raises(ValueError):
        plot_success({}, tmp_path / "p.png")
