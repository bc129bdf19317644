"""DART noise injection: executed actions are perturbed, recorded labels are the expert's; expert
episodes and ``collect_demos`` with injected world/expert factories (fake world of
``test_executor``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from robot_skills.data.collect import (
    DartNoise,
    NoiseConfig,
    collect_demos,
    run_expert_episode,
)
from robot_skills.data.hdf5 import DemoReader
from robot_skills.execution.interfaces import SkillSet
from robot_skills.robot import Action


class _ConstantPolicy:
    name = "const"

    def reset(self, args, world) -> None:
        self.args = tuple(args)

    def act(self, obs) -> Action:
        return Action(np.array([0.01, 0.0, -0.01]), np.zeros(3), 1.0)


def test_noise_perturbs_execution_but_not_labels() -> None:
    labels: list[Action] = []
    calls: list[int] = []
    wrapped = DartNoise(_ConstantPolicy(), NoiseConfig(std=0.01, prob=1.0),
                        np.random.default_rng(0), labels, on_act=lambda: calls.append(1))
    wrapped.reset(("bowl",), None)
    executed = [wrapped.act(None) for _ in range(50)]
    assert len(labels) == 50 and len(calls) == 50
    assert all(np.allclose(a.delta_pos, [0.01, 0.0, -0.01]) for a in labels)
    dev = np.array([a.delta_pos for a in executed]) - np.array([0.01, 0.0, -0.01])
    assert 0.005 < dev.std() < 0.02  # noise of the configured scale reaches the robot
    assert all(a.gripper == 1.0 for a in executed)  # the gripper command is never perturbed


def test_zero_probability_means_no_noise() -> None:
    labels: list[Action] = []
    wrapped = DartNoise(_ConstantPolicy(), NoiseConfig(std=0.01, prob=0.0),
                        np.random.default_rng(0), labels)
    out = [wrapped.act(None) for _ in range(20)]
    assert all(np.allclose(a.delta_pos, [0.01, 0.0, -0.01]) for a in out)


# ---------------------------------------------------------------------- episodes on a fake world
def _fake_world(task_path, seed, perturbation=None, region_scale=1.0):
    """Task file: JSON with the ``goal`` atoms; ``unbuildable`` raises like an impossible layout."""
    from test_executor import FakeWorld

    spec = json.loads(Path(task_path).read_text())
    if spec.get("unbuildable"):
        raise ValueError("no collision-free layout")
    world = FakeWorld({tuple(a) for a in spec["goal"]})
    world.task = SimpleNamespace(language=spec.get("language", ""))
    world.region_scale = region_scale
    return world


def _fake_experts(task_path=None) -> SkillSet:
    from test_executor import fake_skills

    return fake_skills()


def test_run_expert_episode_records_clean_labels_and_segments() -> None:
    from test_executor import BOWL, DRAWER, FakeWorld

    world = FakeWorld({("in", BOWL, DRAWER)})
    ok, ep, res = run_expert_episode(world, _fake_experts(), seed=3,
                                     noise=NoiseConfig(std=0.01, prob=1.0), max_steps=100)
    assert ok and res["success"] and res["steps"] == 15
    assert ep.actions.shape == (15, 7) and ep.actions.dtype == np.float32
    # labels are the experts' clean commands; the executed (noisy) ones moved the point elsewhere
    np.testing.assert_allclose(ep.actions[:, :3], np.tile([0.001, 0.0, 0.0], (15, 1)))
    assert not np.allclose(world.robot.ee, [0.015, 0.0, 0.0], atol=1e-3)
    assert len(ep.observations) == 15 and ep.states.shape[0] == 15
    assert [(s.start, s.end, s.skill, s.success) for s in ep.segments] == [
        (0, 5, "open", True), (5, 10, "pick", True), (10, 15, "place_in", True)]


def test_run_expert_episode_without_noise_executes_the_labels() -> None:
    from test_executor import BOWL, DRAWER, FakeWorld

    world = FakeWorld({("in", BOWL, DRAWER)})
    ok, ep, _ = run_expert_episode(world, _fake_experts(), seed=0,
                                   noise=NoiseConfig(std=0.0, prob=1.0), max_steps=100)
    assert ok
    np.testing.assert_allclose(world.robot.ee, ep.actions[:, :3].sum(axis=0), atol=1e-9)


def test_collect_demos_with_injected_factories(tmp_path) -> None:
    from test_executor import BOWL, DRAWER

    good = tmp_path / "bowl_in_drawer.json"
    good.write_text(json.dumps({"goal": [["in", BOWL, DRAWER]], "language": "bowl in drawer"}))
    bad = tmp_path / "impossible.json"
    bad.write_text(json.dumps({"unbuildable": True}))
    out = tmp_path / "demos.hdf5"
    summary = collect_demos([good, bad], out, 2, make_world=_fake_world,
                            make_experts=_fake_experts, seed=10, max_steps=100,
                            progress=False)
    assert summary["demos"] == 2 and summary["path"] == str(out)
    assert summary["tasks"]["bowl_in_drawer"]["expert_success_rate"] == 1.0
    assert [e["seed"] for e in summary["tasks"]["bowl_in_drawer"]["episodes"]] == [10, 11]
    imp = summary["tasks"]["impossible"]
    assert imp["successes"] == 0 and imp["attempts"] == 2
    assert all(e["reason"].startswith("world_error: ValueError") for e in imp["episodes"])
    with DemoReader(out) as r:
        assert r.demos == ["demo_0", "demo_1"]
        d = r.load("demo_0")
        assert d.actions.shape == (15, 7)
        assert [s.skill for s in d.segments] == ["open", "pick", "place_in"]
        assert d.attrs["task"] == "bowl_in_drawer" and d.attrs["seed"] == 10
        assert d.attrs["language"] == "bowl in drawer"
    with pytest.raises(ValueError):
        collect_demos([], out, 1, make_world=_fake_world, make_experts=_fake_experts)
    with pytest.raises(ValueError):
        collect_demos([good], out, 0, make_world=_fake_world, make_experts=_fake_experts)
    with pytest.raises(RuntimeError, match="no demonstration"):
        collect_demos([bad], tmp_path / "none.hdf5", 1, make_world=_fake_world,
                      make_experts=_fake_experts, progress=False)
    assert not (tmp_path / "none.hdf5").exists()


@pytest.mark.parametrize("finish_calls", [False, True])
def test_finish_calls_records_the_last_placements_release(finish_calls) -> None:
    """A goal that holds while the object is still in the hand (the butter inside the basket)
    ends the episode there by default; with ``finish_calls`` the placement runs to its own
    termination test, so its demonstration shows the release."""
    from libero_paths import LIBERO_BDDL

    from sim.factories import ExpertSkills
    from sim.world import SimTaskWorld

    path = (LIBERO_BDDL / "libero_90"
            / "LIVING_ROOM_SCENE2_pick_up_the_butter_and_put_it_in_the_basket.bddl")
    world = SimTaskWorld.from_task(path)
    try:
        ok, ep, _ = run_expert_episode(world, ExpertSkills()(path), 1, NoiseConfig(0.0, 0.0),
                                       600, finish_calls=finish_calls)
        assert ok
        place = [s for s in ep.segments if s.skill == "place_in"]
        assert len(place) == 1 and place[0].success and place[0].end == len(ep.actions)
        released = bool(ep.actions[place[0].end - 1][6] < 0)
        assert released is finish_calls
        assert (("handempty",) in world.predicate_state()) is finish_calls
    finally:
        world.close()


def test_finish_calls_is_part_of_the_episode_configuration() -> None:
    from robot_skills.data.collect import _episode_config, _fingerprint

    a = _episode_config(None, None, NoiseConfig(), 600, 2, 1.0, False)
    b = _episode_config(None, None, NoiseConfig(), 600, 2, 1.0, False, finish_calls=True)
    assert a == _episode_config(None, None, NoiseConfig(), 600, 2, 1.0, False, finish_calls=False)
    assert _fingerprint(a) != _fingerprint(b)
