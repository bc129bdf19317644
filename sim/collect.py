"""Demonstration collection: plan with the symbolic planner, run the scripted experts, record.

Per task and seed, :class:`~sim.sim_robot.SimRobot` samples an initial state, the executor plans
the goal and runs one scripted expert per skill call, and every control step is recorded with the
skill segment it belongs to. Noise is injected DART-style (Laskey et al., "DART: Noise Injection
for Robust Imitation Learning", CoRL 2017): the *executed* action is perturbed, the *recorded* label
is the expert's clean action, so the data contains the expert's recoveries from perturbed states.
Only successful episodes are kept (as LIBERO and robomimic keep only successful demonstrations).

Tasks run in worker processes (``spawn``); episodes come back as in-memory arrays and the parent
writes one HDF5 file atomically (:class:`robot_skills.data.hdf5.DemoWriter`).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from robot_skills.data.hdf5 import DemoWriter, SkillSegment
from robot_skills.execution.executor import EpisodeRecording, Executor
from robot_skills.robot import Action, Observation


@dataclass(frozen=True)
class NoiseConfig:
    """DART-style action noise.

    Attributes:
        std: standard deviation of the Gaussian added to the executed translation, m per step.
        prob: probability that a step is perturbed.
    """

    std: float = 0.005
    prob: float = 0.3


class DartNoise:
    """Wraps a skill policy: executes a noisy action, logs the clean one as the label.

    Several wrappers share one ``labels`` list, so after an episode ``labels[t]`` is the clean
    action of step ``t`` whichever skill produced it.
    """

    def __init__(self, policy: Any, noise: NoiseConfig, rng: np.random.Generator,
                 labels: list[Action], on_act: Any = None) -> None:
        self.policy, self.noise, self.rng, self.labels = policy, noise, rng, labels
        self.on_act = on_act
        self.name = policy.name

    def reset(self, args: Sequence[str], world: Any) -> None:
        """Forward to the wrapped policy."""
        self.policy.reset(args, world)

    def act(self, obs: Observation) -> Action:
        """The wrapped policy's action, with noise on the translation on some steps."""
        clean = self.policy.act(obs)
        self.labels.append(clean)
        if self.on_act is not None:
            self.on_act()
        if self.noise.std <= 0 or self.rng.random() >= self.noise.prob:
            return clean
        noisy = np.asarray(clean.delta_pos) + self.rng.normal(0.0, self.noise.std, 3)
        return Action(delta_pos=noisy, delta_rot=np.asarray(clean.delta_rot).copy(),
                      gripper=clean.gripper)


@dataclass
class EpisodeData:
    """One recorded episode, ready for :meth:`DemoWriter.add_demo`."""

    observations: list[Observation]
    actions: np.ndarray
    states: np.ndarray
    segments: list[SkillSegment]
    attrs: dict[str, Any] = field(default_factory=dict)


def _flat_state(world) -> np.ndarray:
    d = world.data
    return np.concatenate([d.qpos, d.qvel]).astype(np.float64)


def run_expert_episode(world, seed: int, noise: NoiseConfig, max_steps: int,
                       max_replans: int = 2) -> tuple[bool, EpisodeData, dict[str, Any]]:
    """Run one expert episode on ``world`` (a SimRobot) from the initial state of ``seed``.

    Returns:
        ``(success, episode, result_dict)``; actions are the clean expert labels, ``(T, 7)``.
    """
    from sim.experts import expert_skills

    world.reset(seed)
    rng = np.random.default_rng(seed + 7919)
    labels: list[Action] = []
    states: list[np.ndarray] = []  # simulator state before each action (robomimic "states")
    skills = {k: DartNoise(p, noise, rng, labels, lambda: states.append(_flat_state(world)))
              for k, p in expert_skills().items()}
    rec = EpisodeRecording()
    result = Executor(world, skills, max_steps=max_steps, max_replans=max_replans,
                      recorder=rec).run()
    n = len(rec.actions)
    if len(labels) != n:
        raise RuntimeError(f"recorded {n} steps but logged {len(labels)} expert labels")
    actions = np.stack([a.to_array() for a in labels]) if n else np.zeros((0, 7), np.float32)
    segments = [SkillSegment(s.start, s.end, s.skill, tuple(s.args), bool(s.success))
                for s in rec.segments if s.end > s.start]
    ep = EpisodeData(rec.observations, actions, np.stack(states) if states else np.zeros((0, 1)),
                     segments)
    return bool(result.success), ep, result.to_dict()


def _collect_task(task_path: str, seeds: Sequence[int], noise: NoiseConfig, max_steps: int,
                  region_scale_max: float = 1.0, keep_failures: bool = False
                  ) -> tuple[str, list[EpisodeData], list[dict]]:
    """Worker: every seed of one task; returns the successful episodes and per-episode summaries.

    Each episode scales the objects' initial regions by a factor drawn uniformly from
    ``[1, region_scale_max]`` (seeded), so demonstrations cover initial positions beyond the task
    file's few-centimetre regions — what lets skills survive shifted layouts (LIBERO-PRO/Plus).
    """
    from sim.scene import PlacementError
    from sim.sim_robot import SimRobot

    world = SimRobot(task_path)
    kept, summaries = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        world.region_scale = float(np.random.default_rng([seed, 17]).uniform(1.0, region_scale_max))
        try:
            ok, ep, res = run_expert_episode(world, seed, noise, max_steps)
        except PlacementError as e:  # a widened region left no collision-free layout
            summaries.append({"seed": seed, "success": False, "steps": 0,
                              "reason": f"placement: {e}", "wall_s": time.perf_counter() - t0})
            continue
        summaries.append({"seed": seed, "success": ok, "steps": res["steps"],
                          "reason": res["reason"], "region_scale": world.region_scale,
                          "wall_s": time.perf_counter() - t0})
        if ok or keep_failures:
            ep.attrs = {"task": Path(task_path).stem, "bddl": str(task_path), "seed": int(seed),
                        "language": world.task.language, "success": bool(ok),
                        "region_scale": world.region_scale}
            kept.append(ep)
    return task_path, kept, summaries


def collect_demos(task_paths: Sequence[str | Path], out_path: str | Path, demos_per_task: int,
                  *, seed: int = 1000, noise: NoiseConfig = NoiseConfig(), max_steps: int = 600,
                  workers: int = 1, progress: bool = True, region_scale_max: float = 1.0,
                  env_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collect ``demos_per_task`` expert episodes per task and write them to ``out_path`` (HDF5).

    Seeds are ``seed + i`` for ``i < demos_per_task`` (disjoint from evaluation seeds when
    ``seed`` is). Failed expert episodes are counted and dropped. ``region_scale_max`` widens the
    objects' initial regions per episode (see :func:`_collect_task`); 1 keeps the task file's.

    Returns:
        Summary dict: per task attempts / successes / expert success rate, demos written, wall time.

    Raises:
        ValueError: if no task paths are given or ``demos_per_task < 1``.
    """
    if not task_paths:
        raise ValueError("collect_demos needs at least one task file")
    if demos_per_task < 1:
        raise ValueError(f"demos_per_task must be >= 1, got {demos_per_task}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    seeds = [seed + i for i in range(demos_per_task)]
    t0 = time.perf_counter()
    results: dict[str, tuple[list[EpisodeData], list[dict]]] = {}
    bar = tqdm(total=len(task_paths), desc="collect", unit="task", disable=not progress)
    if workers <= 1:
        for p in task_paths:
            _, eps, summ = _collect_task(str(p), seeds, noise, max_steps, region_scale_max)
            results[str(p)] = (eps, summ)
            bar.update()
    else:
        ctx = mp.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futs = [pool.submit(_collect_task, str(p), seeds, noise, max_steps, region_scale_max)
                    for p in task_paths]
            for fut in cf.as_completed(futs):
                path, eps, summ = fut.result()
                results[path] = (eps, summ)
                bar.update()
    bar.close()
    summary: dict[str, Any] = {"tasks": {}, "demos": 0}
    with DemoWriter(out_path, env_args={"env_name": "robot_skills/LiberoTask-v0",
                                        **(env_args or {})}) as writer:
        for p in map(str, task_paths):
            eps, summ = results[p]
            for ep in eps:
                writer.add_demo(ep.observations, ep.actions, states=ep.states,
                                skill_segments=ep.segments, attrs=ep.attrs)
            ok = sum(s["success"] for s in summ)
            summary["tasks"][Path(p).stem] = {"attempts": len(summ), "successes": ok,
                                              "expert_success_rate": ok / max(1, len(summ)),
                                              "episodes": summ}
            summary["demos"] += len(eps)
    summary["wall_s"] = time.perf_counter() - t0
    summary["path"] = str(out_path)
    return summary
