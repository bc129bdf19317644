"""Per-skill success on held-in calls: each learned skill run on grounded calls its data covered.

A skill library's suite table says how well *tasks* compose; this says how well each *skill* does
on its own. For a sample of the grounded calls present in the training demonstrations (the call,
and a task file whose scene holds its entities, are read from the demos' segments and
attributes), one episode per (call, seed) pursues the call's goal
(:func:`robot_skills.data.skill_centric.call_goal`; a goal that holds at the start, such as closing
a closed drawer, first gets a prefix that undoes it) with the learned library and the planner.
Every call the executor runs is counted for its verb: ``attempts`` and ``successes`` (the call
reached its termination test and its effects were observed).

Nothing here knows the simulator: the world and skill-set factories are passed in.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.data.dataset import read_segments
from robot_skills.data.hdf5 import DemoReader
from robot_skills.execution.pool import iter_parallel

__all__ = ["HeldInJob", "held_in_jobs", "evaluate_held_in"]


@dataclass(frozen=True)
class HeldInJob:
    """One held-in call episode (picklable): the call, a task file of its scene, a seed, and the
    scene's calls seen in the data (the prefix pool for goals that hold at the start)."""

    task_path: str
    call: str
    seed: int
    candidates: tuple[str, ...] = ()


def held_in_jobs(demo_paths: Sequence[str | os.PathLike], calls_per_skill: int = 4,
                 episodes_per_call: int = 1, seed: int = 0) -> list[HeldInJob]:
    """Sample held-in calls from demonstrations.

    Args:
        demo_paths: HDF5 demonstration files (segments + a ``bddl`` attribute per demo).
        calls_per_skill: distinct grounded calls drawn per verb (all when fewer).
        episodes_per_call: seeds per call (``seed, seed + 1, ...`` over all jobs).
        seed: seeds the draw and the episodes (evaluation seeds: keep them disjoint from the
            collection's).

    Returns:
        The jobs, sorted by call.

    Raises:
        ValueError: ``calls_per_skill`` or ``episodes_per_call`` < 1, or no segment with a task
            file in the data. OSError / DemoValidationError: unreadable files (named).
    """
    if calls_per_skill < 1 or episodes_per_call < 1:
        raise ValueError("calls_per_skill and episodes_per_call must be >= 1")
    where: dict[str, set[str]] = {}
    scene_calls: dict[str, set[str]] = {}
    for p in demo_paths:
        with DemoReader(p) as r:
            for name in r.demos:
                bddl = str(r.demo_attrs(name).get("bddl", ""))
                if not bddl:
                    continue
                for s in read_segments(r, name, p):
                    call = f"{s.skill}({', '.join(s.args)})"
                    where.setdefault(call, set()).add(bddl)
                    scene_calls.setdefault(bddl, set()).add(call)
    if not where:
        raise ValueError(f"no skill segment with a task file in {list(map(str, demo_paths))}")
    rng = np.random.default_rng([seed, 4242])
    by_skill: dict[str, list[str]] = {}
    for call in sorted(where):
        by_skill.setdefault(call.split("(")[0], []).append(call)
    jobs, k = [], 0
    for _skill, calls in sorted(by_skill.items()):
        pick = sorted(rng.choice(len(calls), size=min(calls_per_skill, len(calls)),
                                 replace=False))
        for i in pick:
            call = calls[int(i)]
            files = sorted(where[call])
            for _ in range(episodes_per_call):
                path = files[int(rng.integers(len(files)))]
                jobs.append(HeldInJob(path, call, seed + k, tuple(sorted(scene_calls[path]))))
                k += 1
    return jobs


def _run_held_in(job: HeldInJob, make_world: Callable[..., Any], make_skills: Callable[..., Any],
                 planner: Any, max_steps: int) -> tuple[HeldInJob, dict[str, Any]]:
    """Worker: one held-in call episode. Returns the job and ``{success, calls, reason}``."""
    from robot_skills.data.skill_centric import sample_episode_goals
    from robot_skills.execution.executor import Executor
    from robot_skills.planning.symbolic import SkillCall

    world = None
    try:
        world = make_world(Path(job.task_path), job.seed, None)
        world.robot.connect()
        world.robot.reset(job.seed)
        skills = make_skills(Path(job.task_path))
        planner = planner(skills.specs) if planner is not None else None
        goals = sample_episode_goals(world.symbolic_problem(), SkillCall.parse(job.call),
                                     np.random.default_rng([job.seed, 7]), 0,
                                     [SkillCall.parse(c) for c in job.candidates], skills.specs)
        calls: list[dict[str, Any]] = []
        ok = True
        for g in goals:
            res = Executor(world, skills, planner, max_steps=max_steps, max_replans=0).run(g)
            calls += [c.to_dict() for c in res.calls]
            if not res.success:
                ok = False
                break
        return job, {"success": ok, "calls": calls, "reason": "" if ok else res.reason}
    except Exception as e:  # noqa: BLE001 - reported per episode
        return job, {"success": False, "calls": [], "reason": f"error: {type(e).__name__}: {e}"}
    finally:
        if world is not None:
            world.robot.disconnect()


def evaluate_held_in(jobs: Sequence[HeldInJob], *, make_world: Callable[..., Any],
                     make_skills: Callable[..., Any], planner: Any = None, max_steps: int = 600,
                     workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Run held-in call episodes and count every executed call per verb.

    Args:
        jobs: from :func:`held_in_jobs`.
        make_world: ``make_world(task_path, seed, perturbation) -> TaskWorld``.
        make_skills: ``make_skills(task_path) -> SkillSet`` (the learned library).
        planner: a planner factory ``planner(specs) -> Planner`` (None: a symbolic planner over
            the skill set's contracts).
        max_steps: control-step budget per sub-goal.
        workers: worker processes.

    Returns:
        ``{"skills": {verb: {"attempts", "successes"}}, "targets": {verb: {"attempts",
        "successes"}}, "episodes": [...]}``: ``skills`` counts every call run (implicit steps
        included), ``targets`` only whole episodes by their target's verb.
    """
    fn = functools.partial(_run_held_in, make_world=make_world, make_skills=make_skills,
                           planner=planner, max_steps=int(max_steps))
    skills: dict[str, dict[str, int]] = {}
    targets: dict[str, dict[str, int]] = {}
    episodes = []
    for job, res in iter_parallel(fn, list(jobs), workers, desc="held-in calls",
                                  progress=progress):
        for c in res["calls"]:
            s = skills.setdefault(c["skill"], {"attempts": 0, "successes": 0})
            s["attempts"] += 1
            s["successes"] += int(c["outcome"] == "success")
        t = targets.setdefault(job.call.split("(")[0], {"attempts": 0, "successes": 0})
        t["attempts"] += 1
        t["successes"] += int(res["success"])
        episodes.append({"call": job.call, "task": Path(job.task_path).stem, "seed": job.seed,
                         **res})
    episodes.sort(key=lambda e: (e["call"], e["seed"]))
    return {"skills": dict(sorted(skills.items())), "targets": dict(sorted(targets.items())),
            "episodes": json.loads(json.dumps(episodes))}
