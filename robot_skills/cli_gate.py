"""The sim-backed admission-gate evaluator built from the project's Hydra config, for
``rs-library promote --evaluator robot_skills.cli_gate:gate_evaluator``::

    rs-library --root runs/x/skills promote pick@1.1.0 --to supervised \\
        --evaluator robot_skills.cli_gate:gate_evaluator \\
        --evaluator-arg demos=runs/x/demos.hdf5 \\
        --evaluator-arg tasks=path/a.bddl,path/b.bddl \\
        --evaluator-arg overrides="suite.max_episode_steps=300 workers=2"
"""

from __future__ import annotations

import shlex

from robot_skills.cli import build_planner, build_world, load_config
from robot_skills.evaluation.gate_eval import SimGateEvaluator


def gate_evaluator(demos: str, tasks: str, overrides: str = "",
                   calls_per_skill: str = "4") -> SimGateEvaluator:
    """A :class:`SimGateEvaluator` with the world and planner of the composed config.

    Args:
        demos: comma-separated HDF5 demonstration files (held-in calls).
        tasks: comma-separated suite task files that use the skill (composed A/B).
        overrides: Hydra ``key=value`` overrides, space-separated (shell quoting honoured).
        calls_per_skill: distinct held-in calls cycled over the seeds.

    Raises:
        ValueError: no demos or tasks. Hydra / config errors naming the key.
    """
    d = [p for p in demos.split(",") if p]
    t = [p for p in tasks.split(",") if p]
    if not d or not t:
        raise ValueError("gate_evaluator needs demos=<hdf5,...> and tasks=<bddl,...>")
    cfg = load_config(shlex.split(overrides))
    return SimGateEvaluator(make_world=build_world(cfg), demos=d, tasks=t,
                            planner=build_planner(cfg),
                            max_steps=int(cfg.suite.max_episode_steps),
                            workers=int(cfg.workers), calls_per_skill=int(calls_per_skill),
                            ensemble_m=cfg.policy.get("ensemble_m", 0.01))
