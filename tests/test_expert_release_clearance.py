"""Place expert: the hand must not come down on a fixture or a tall object at the release pose.

Regression of demonstration collection on libero_goal (DART noise, widened start regions): in
``put_the_bowl_on_the_plate`` seed 1004 the bowl is taken by its wall, so the hand hangs 3 cm off
the plate's centre on the cabinet's side and its body landed on the cabinet's top; the place
stalled there until the episode budget was spent. The place now turns the wrist so the hand's
footprint at the release pose clears fixtures and tall objects (``PlaceExpert._clear_turn``).
"""

from __future__ import annotations

import numpy as np
from libero_paths import LIBERO_BDDL

from robot_skills.data.collect import NoiseConfig, run_expert_episode

GOAL = LIBERO_BDDL / "libero_goal"


def _collect_episode(task: str, seed: int) -> tuple[bool, dict, object]:
    """One collection episode as ``rs-collect`` runs it with the default config
    (``region_scale_max`` 6, DART noise, 600 steps); returns ``(success, result, place expert)``."""
    from sim.factories import ExpertSkills, SimWorldFactory

    path = GOAL / f"{task}.bddl"
    region_scale = float(np.random.default_rng([seed, 17]).uniform(1.0, 6.0))  # as collect_demos
    world = SimWorldFactory()(path, seed, None, region_scale=region_scale)
    world.robot.connect()
    try:
        experts = ExpertSkills()(path)
        ok, _, res = run_expert_episode(world, experts, seed, NoiseConfig(), 600, 2)
    finally:
        world.robot.disconnect()
    return ok, res, experts.policies["place_on"]


def test_place_turns_the_hand_clear_of_the_cabinet_beside_the_plate() -> None:
    """Seed 1004: without the turn the hand lands on the cabinet's top (budget_exhausted)."""
    ok, res, place = _collect_episode("put_the_bowl_on_the_plate", 1004)
    assert ok, (res["reason"], res["messages"])
    assert [c["skill"] for c in res["calls"]] == ["pick", "place_on"], res["calls"]
    assert place._exact_turn, "the place should have turned the wrist clear of the obstacle"


def test_place_keeps_the_grasp_axis_when_the_hand_lands_clear() -> None:
    """Seed 1001: nothing tall within the hand's footprint at the release pose, no turn."""
    ok, res, place = _collect_episode("put_the_bowl_on_the_plate", 1001)
    assert ok, (res["reason"], res["messages"])
    assert not place._exact_turn
