"""DART noise injection: executed actions are perturbed, recorded labels are the expert's."""

from __future__ import annotations

import numpy as np

from robot_skills.robot import Action
from robot_skills.data.collect import DartNoise, NoiseConfig


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
