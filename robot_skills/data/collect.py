"""Demonstration collection: plan with the planner, run the scripted experts, record.

Per task and seed, the world factory builds the robot in the task and samples an initial state,
the executor plans the goal over the experts' contracts and runs one expert per skill call, and
every control step is recorded with the skill segment it belongs to. Noise is injected DART-style
(Laskey et al., "DART: Noise Injection for Robust Imitation Learning", CoRL 2017): the *executed*
action is perturbed, the *recorded* label is the expert's clean action, so the data contains the
expert's recoveries from perturbed states. Only successful episodes are kept (as LIBERO and
robomimic keep only successful demonstrations).

Collection is a rollout plus a recorder: episodes run through the same worker pool as evaluation
(:mod:`robot_skills.execution.pool`), come back as in-memory arrays, and the parent writes one HDF5
file atomically (:class:`robot_skills.data.hdf5.DemoWriter`). Nothing here knows the simulator:
the world factory and the expert skill set are passed in (Hydra builds them from the ``world`` and
``collect.experts`` configs).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.data.hdf5 import DemoWriter
from robot_skills.execution.executor import Executor
from robot_skills.execution.interfaces import SkillSet
from robot_skills.execution.pool import run_parallel
from robot_skills.execution.recording import EpisodeRecording, SkillSegment
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


def _sim_state(world: Any) -> np.ndarray:
    """The world's flat simulator state (robomimic ``states``) if it has one, else ``(0,)``."""
    fn = getattr(world, "sim_state", None)
    return np.asarray(fn(), np.float64) if callable(fn) else np.zeros(0)


def run_expert_episode(world: Any, experts: SkillSet, seed: int, noise: NoiseConfig,
                       max_steps: int, max_replans: int = 2
                       ) -> tuple[bool, EpisodeData, dict[str, Any]]:
    """Run one expert episode on ``world`` (a TaskWorld) from the initial state of ``seed``.

    Args:
        world: the robot in its task; ``world.robot.reset(seed)`` samples the initial state.
        experts: the scripted experts and their contracts.
        seed: initial-state seed; the noise stream is seeded from it too.
        noise: DART noise on the executed translation.
        max_steps: episode control-step budget.
        max_replans: executor's bounded retries.

    Returns:
        ``(success, episode, result_dict)``; actions are the clean expert labels, ``(T, 7)``
        float32; ``episode.states`` is ``(T, n)`` float64 simulator state before each action.

    Raises:
        RuntimeError: if the recorder and the label log disagree (a bug, never data).
    """
    world.robot.reset(seed)
    rng = np.random.default_rng(seed + 7919)
    labels: list[Action] = []
    states: list[np.ndarray] = []  # simulator state before each action (robomimic "states")
    policies = {k: DartNoise(p, noise, rng, labels, lambda: states.append(_sim_state(world)))
                for k, p in experts.policies.items()}
    rec = EpisodeRecording()
    result = Executor(world, SkillSet(policies, experts.specs), max_steps=max_steps,
                      max_replans=max_replans, recorder=rec).run()
    n = len(rec.actions)
    if len(labels) != n:
        raise RuntimeError(f"recorded {n} steps but logged {len(labels)} expert labels")
    actions = np.stack([a.to_array() for a in labels]) if n else np.zeros((0, 7), np.float32)
    segments = [s for s in rec.segments if s.end > s.start]
    ep = EpisodeData(rec.observations, actions, np.stack(states) if states else np.zeros((0, 1)),
                     segments)
    return bool(result.success), ep, result.to_dict()


@dataclass(frozen=True)
class CollectJob:
    """One demonstration episode to run (picklable).

    Attributes:
        task_path: the task file.
        seed: initial-state seed.
        region_scale: factor on the objects' initial placement regions (>= 1 widens them).
    """

    task_path: str
    seed: int
    region_scale: float = 1.0


@dataclass(frozen=True)
class _CollectFactories:
    make_world: Callable[..., Any]
    make_experts: Callable[..., SkillSet]
    noise: NoiseConfig
    max_steps: int
    max_replans: int
    keep_failures: bool


def collect_episode(job: CollectJob, factories: _CollectFactories
                    ) -> tuple[CollectJob, EpisodeData | None, dict[str, Any]]:
    """Worker: one expert episode. Returns ``(job, episode or None, summary)``.

    A world that cannot be built or placed (e.g. a widened region leaves no collision-free
    layout) is reported in the summary (``reason="world_error: ..."``), not raised.
    """
    t0 = time.perf_counter()
    world = None
    try:
        world = factories.make_world(Path(job.task_path), job.seed, None,
                                     region_scale=job.region_scale)
        world.robot.connect()
        ok, ep, res = run_expert_episode(world, factories.make_experts(Path(job.task_path)),
                                         job.seed, factories.noise, factories.max_steps,
                                         factories.max_replans)
    except Exception as e:  # noqa: BLE001 - reported per episode, counted by the parent
        return job, None, {"seed": job.seed, "success": False, "steps": 0,
                           "reason": f"world_error: {type(e).__name__}: {e}",
                           "region_scale": job.region_scale, "wall_s": time.perf_counter() - t0}
    finally:
        if world is not None:
            world.robot.disconnect()
    summary = {"seed": job.seed, "success": ok, "steps": res["steps"], "reason": res["reason"],
               "region_scale": job.region_scale, "wall_s": time.perf_counter() - t0}
    if not (ok or factories.keep_failures):
        return job, None, summary
    task = getattr(world, "task", None)
    ep.attrs = {"task": Path(job.task_path).stem, "bddl": str(job.task_path), "seed": int(job.seed),
                "language": getattr(task, "language", ""), "success": bool(ok),
                "region_scale": job.region_scale}
    return job, ep, summary


def collect_demos(task_paths: Sequence[str | Path], out_path: str | Path, demos_per_task: int,
                  *, make_world: Callable[..., Any], make_experts: Callable[..., SkillSet],
                  seed: int = 1000, noise: NoiseConfig = NoiseConfig(), max_steps: int = 600,
                  max_replans: int = 2, workers: int = 1, progress: bool = True,
                  region_scale_max: float = 1.0, env_args: dict[str, Any] | None = None,
                  keep_failures: bool = False) -> dict[str, Any]:
    """Collect ``demos_per_task`` expert episodes per task and write them to ``out_path`` (HDF5).

    Args:
        task_paths: task files.
        out_path: the HDF5 file to write (atomically, when every episode has run).
        demos_per_task: episodes attempted per task; seeds ``seed + i``, disjoint from evaluation
            seeds when ``seed`` is.
        make_world: ``make_world(task_path, seed, perturbation, region_scale=...) -> TaskWorld``.
        make_experts: ``make_experts(task_path) -> SkillSet`` of scripted experts.
        noise: DART noise.
        max_steps / max_replans: episode budget and executor retries.
        workers: processes of the worker pool.
        region_scale_max: each episode widens the objects' initial regions by a factor drawn
            (seeded) from ``U(1, region_scale_max)``, so demonstrations cover initial positions
            beyond the task file's few-centimetre regions; 1 keeps the task file's.
        env_args: extra env metadata stored in the file.
        keep_failures: also write failed episodes (``success`` attribute False).

    Returns:
        Summary dict: per task attempts / successes / expert success rate / episodes, demos
        written, wall time, path.

    Raises:
        ValueError: if no task paths are given, ``demos_per_task < 1`` or
            ``region_scale_max < 1``.
        RuntimeError: if not a single demonstration could be recorded (nothing is written).
    """
    if not task_paths:
        raise ValueError("collect_demos needs at least one task file")
    if demos_per_task < 1:
        raise ValueError(f"demos_per_task must be >= 1, got {demos_per_task}")
    if not region_scale_max >= 1.0:
        raise ValueError(f"region_scale_max must be >= 1, got {region_scale_max}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    jobs = [CollectJob(str(p), seed + i,
                       float(np.random.default_rng([seed + i, 17]).uniform(1.0, region_scale_max)))
            for p in task_paths for i in range(demos_per_task)]
    factories = _CollectFactories(make_world, make_experts, noise, int(max_steps),
                                  int(max_replans), bool(keep_failures))
    t0 = time.perf_counter()
    done = run_parallel(functools.partial(collect_episode, factories=factories), jobs, workers,
                        desc="collect", progress=progress)
    order = {(j.task_path, j.seed): k for k, j in enumerate(jobs)}
    done.sort(key=lambda r: order[(r[0].task_path, r[0].seed)])
    if not any(ep is not None for _, ep, _ in done):
        reasons = sorted({s["reason"] for _, _, s in done})[:5]
        raise RuntimeError(f"no demonstration recorded in {len(done)} episodes; reasons: {reasons}")
    summary: dict[str, Any] = {"tasks": {}, "demos": 0}
    with DemoWriter(out_path, env_args={"env_name": "robot_skills/LiberoTask-v0",
                                        **(env_args or {})}) as writer:
        for p in map(str, task_paths):
            mine = [(ep, s) for j, ep, s in done if j.task_path == p]
            for ep, _ in mine:
                if ep is not None:
                    writer.add_demo(ep.observations, ep.actions, states=ep.states,
                                    skill_segments=ep.segments, attrs=ep.attrs)
                    summary["demos"] += 1
            summ = [s for _, s in mine]
            ok = sum(s["success"] for s in summ)
            summary["tasks"][Path(p).stem] = {"attempts": len(summ), "successes": ok,
                                              "expert_success_rate": ok / max(1, len(summ)),
                                              "episodes": summ}
    summary["wall_s"] = time.perf_counter() - t0
    summary["path"] = str(out_path)
    return summary
