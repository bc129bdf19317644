"""The executor node's logic without DDS: task requests are parsed strictly, goals come from atoms or
the task's language, plans needing a skill below the required trust tier are refused before
anything moves, safety stops end the task as ``aborted``/``stopped`` (not as a skill failure), and
a task runs to success through ``PoseTaskWorld`` (here on a ``SimRobot`` with the experts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from libero_paths import LIBERO_BDDL

from hardware.executor_node import (
    SkillRunner,
    TaskRequest,
    TaskRequestError,
    parse_atom,
    parse_task_request,
    tier_allows,
)
from robot_skills.robot import EpisodeInvalidError

TASK = LIBERO_BDDL / "libero_goal" / "put_the_bowl_on_the_plate.bddl"
GOAL = ("on", "akita_black_bowl_1", "plate_1")


def test_a_goal_request_is_parsed() -> None:
    r = parse_task_request(json.dumps({"id": "t1", "goal": ["(On akita_black_bowl_1 plate_1)",
                                                             ["Open", "drawer_1"]],
                                       "max_replans": 1, "max_steps": 50, "reset_scene": True}))
    assert r == TaskRequest("t1", (GOAL, ("open", "drawer_1")), None, 1, 50, True)
    assert parse_task_request('{"instruction": " put the bowl on the plate "}').instruction == \
        "put the bowl on the plate"


@pytest.mark.parametrize("text, match", [
    ("not json", "not JSON"),
    ("[1, 2]", "object"),
    ('{"goal": ["(On a b)"], "teleport": 1}', "unknown key"),
    ("{}", "exactly one"),
    ('{"goal": ["(On a b)"], "instruction": "x"}', "exactly one"),
    ('{"goal": []}', "non-empty"),
    ('{"goal": "(On a b)"}', "non-empty list"),
    ('{"goal": ["On a b"]}', "form"),
    ('{"goal": [42]}', "string"),
    ('{"goal": ["(On a b)"], "max_replans": -1}', "max_replans"),
    ('{"goal": ["(On a b)"], "max_replans": true}', "max_replans"),
    ('{"goal": ["(On a b)"], "max_steps": 0}', "max_steps"),
    ('{"goal": ["(On a b)"], "reset_scene": "yes"}', "reset_scene"),
    ('{"instruction": ""}', "instruction"),
    ('{"id": {"a": 1}, "goal": ["(On a b)"]}', "id"),
    ("x" * 70000, "exceeds"),
])
def test_malformed_requests_are_refused_with_the_reason(text: str, match: str) -> None:
    with pytest.raises(TaskRequestError, match=match):
        parse_task_request(text)


def test_atoms_and_tiers() -> None:
    assert parse_atom("( Turnon  flat_stove_1 )") == ("turnon", "flat_stove_1")
    assert tier_allows("autonomous", "supervised") and tier_allows("sim", "sim")
    assert not tier_allows("sim", "supervised")
    with pytest.raises(ValueError, match="trust tier"):
        tier_allows("gold", "sim")


# ------------------------------------------------------------------ the runner on a SimRobot


class _Perceived:
    """A SimRobot whose observations also carry the knob poses a knob tracker would publish
    (as the sim twin's pose topics do)."""

    def __init__(self, robot) -> None:
        self._r = robot

    def __getattr__(self, k):
        return getattr(self._r, k)

    def observe(self):
        from sim.perception_model import articulation_poses

        obs = self._r.observe()
        r = self._r
        obs.object_poses.update(articulation_poses(r.model, r.data, r.scene))
        return obs


class _SimSighted:
    """An expert given the simulator's world at reset, whatever world the executor passes."""

    def __init__(self, policy, sim_world) -> None:
        self._p, self._w, self.name = policy, sim_world, policy.name

    def reset(self, args, world) -> None:
        self._p.reset(args, self._w)

    def act(self, obs):
        return self._p.act(obs)


@pytest.fixture(scope="module")
def sim_setup():
    from robot_skills.execution.interfaces import SkillSet
    from robot_skills.tasks.bddl import load_bddl
    from sim.factories import ExpertSkills
    from sim.perception_model import pose_world_model
    from sim.sim_robot import SimRobot
    from sim.world import SimTaskWorld

    robot = SimRobot(TASK, seed=3)
    robot.reset()
    experts = ExpertSkills()()
    sim_world = SimTaskWorld(robot)
    # The scripted experts read the simulator's scene geometry; the runner's world (poses only)
    # decides predicates, plans, termination and success.
    skills = SkillSet({k: _SimSighted(p, sim_world) for k, p in experts.policies.items()},
                      experts.specs)
    return (_Perceived(robot), skills, pose_world_model(robot.scene, robot.model),
            load_bddl(TASK))


def _runner(sim_setup, min_tier: str, events: list | None = None, robot=None) -> SkillRunner:
    r, skills, model, task = sim_setup
    tiers = {k: "sim" for k in skills.specs}
    return SkillRunner(robot or r, skills, tiers, min_tier, model, task=task,
                       on_event=(events.append if events is not None else None), pose_timeout_s=1)


def test_a_plan_needing_a_sim_tier_skill_is_refused_on_a_supervised_arm(sim_setup) -> None:
    robot = sim_setup[0]
    robot.reset()
    before = robot.observe().joint_pos.copy()
    out = _runner(sim_setup, "supervised").run(TaskRequest("t", (GOAL,)))
    assert out["status"] == "rejected" and out["reason"] == "trust_tier"
    assert "'pick' has trust tier 'sim', below the required 'supervised'" in out["message"]
    np.testing.assert_allclose(robot.observe().joint_pos, before)  # nothing moved


def test_a_task_runs_to_success_through_pose_predicates(sim_setup) -> None:
    events: list = []
    out = _runner(sim_setup, "sim", events).run(
        TaskRequest("t", instruction="Put the bowl on the plate."))
    assert out["status"] == "succeeded", out
    assert out["result"]["plans"][0] == ["pick(akita_black_bowl_1)",
                                         "place_on(akita_black_bowl_1, plate_1)"]
    calls = [e["skill"] for e in events if e["event"] == "call"]
    assert calls[:2] == ["pick", "place_on"]
    assert any(e["event"] == "step" for e in events)


@pytest.mark.parametrize("req, match", [
    (TaskRequest("t", instruction="open the top drawer"), "does not match"),
    (TaskRequest("t", (("on", "akita_black_bowl_1", "no_such_plate"),)), "does not know"),
])
def test_goals_that_cannot_be_grounded_are_rejected(sim_setup, req, match) -> None:
    out = _runner(sim_setup, "sim").run(req)
    assert out["status"] == "rejected" and out["reason"] == "bad_request"
    assert match in out["message"]


class _Stopping:
    """A robot whose act raises a safety stop after ``n`` steps (as Ros2Robot does)."""

    def __init__(self, robot, n: int, why: str) -> None:
        self._r, self._n, self._why = robot, n, why
        self.interventions = {"estop": 1}

    def __getattr__(self, k):
        return getattr(self._r, k)

    def act(self, action):
        self._n -= 1
        if self._n < 0:
            raise EpisodeInvalidError(self._why)
        return self._r.act(action)


@pytest.mark.parametrize("why, status, reason", [
    ("safety stop: e-stop engaged (e-stop message on /robot_skills/estop)", "aborted", "estop"),
    ("safety stop: stale joint states: none for more than 3 control periods (watchdog)",
     "aborted", "stale_state"),
    ("stopped: stop service", "stopped", "stop_requested"),
])
def test_safety_stops_end_the_task_without_counting_as_skill_failures(sim_setup, why, status,
                                                                       reason) -> None:
    robot = _Stopping(sim_setup[0], 5, why)
    out = _runner(sim_setup, "sim", robot=robot).run(TaskRequest("t", (GOAL,)))
    assert (out["status"], out["reason"]) == (status, reason), out
    assert "after 5 control steps" in out["message"]
    assert out["interventions"] == {"estop": 1}
