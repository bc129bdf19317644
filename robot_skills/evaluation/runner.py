"""Benchmark runner: N seeded episodes per task, optional perturbations, parallel workers, reports.

The runner never imports ``sim`` or ``hardware``: it receives *factories* (picklable callables,
built by Hydra's ``instantiate`` from the ``world``, ``skills`` and ``planner`` config groups).

* ``make_world(task_path, seed, perturbation) -> TaskWorld`` builds the robot in the task (the
  factory loads the task file and applies the :class:`PerturbationSpec`, e.g. with
  :func:`~robot_skills.evaluation.perturbations.apply_perturbation`). The runner then calls
  ``world.robot.reset(seed=seed)``; episode ``i`` of every task uses seed ``base_seed + i``, so the
  same seeds give the same initial states across methods and perturbations (as LIBERO's fixed
  initial-state files do).
* ``make_skills(task_path) -> SkillSet`` (composed mode: policies + their contracts), or
  ``make_task_policy(task_path) -> SkillPolicy`` (``mode="monolithic"``: one policy runs the whole
  episode without the planner — the baseline, through the same runner).
* ``planner``: ``planner(specs) -> Planner`` (e.g. ``functools.partial(SymbolicPlanner,
  max_depth=8)``), or ``None`` for a :class:`~robot_skills.planning.symbolic.SymbolicPlanner`
  over the skill set's contracts.

Episodes run through the one worker pool (:mod:`robot_skills.execution.pool`), in ``spawn``
processes when ``workers > 1``, so factories must be picklable.

Output (``out_dir``): ``results.json`` (see :func:`summarize`), ``report.md``, ``success.png``
and one rollout video per task and condition under ``videos/`` (episode 0; frames from
``world.render()`` when the world has it, else the first camera image of the observation).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import os
import platform
import socket
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.evaluation.perturbations import RESOLUTION_MARK, PerturbationSpec
from robot_skills.evaluation.stats import summarize_lengths, wilson_interval
from robot_skills.execution.executor import Executor, run_task_policy
from robot_skills.execution.interfaces import PlannerFactory, SkillSet
from robot_skills.execution.pool import run_parallel
from robot_skills.robot import EpisodeInvalidError
from robot_skills.utils.atomic import atomic_write_json
from robot_skills.utils.version import code_version

__all__ = ["BenchmarkRunner", "run_suite", "summarize",
           "run_episode", "EpisodeJob", "UNPERTURBED", "MONOLITHIC_DEFAULT_MAX_STEPS",
           "NOT_RUN_REASONS", "NOT_BUILT_REASON", "EPISODE_STATUSES"]

UNPERTURBED = "unperturbed"
"""Condition name of the unperturbed tasks in results and reports."""
NOT_RUN_REASONS = ("world_error", "invalid", "error")
"""Episode end reasons that say nothing about the policy: the world could not be built, the
simulation went unstable (:class:`~robot_skills.robot.EpisodeInvalidError`), or the harness
itself raised. Such episodes are reported apart and left out of success rates."""
NOT_BUILT_REASON = "world_error"
"""The end reason of an episode whose world could not be built (the factory, ``connect`` or the
initial-state reset raised, e.g. no collision-free layout under a perturbation): its ``status``
is ``"not_built"``."""
EPISODE_STATUSES = ("success", "failure", "not_built", "invalid", "error")
"""Each episode record's ``status``: the policy succeeded or failed, the world was not built, the
simulation went unstable, or the harness raised. Only the first two enter success rates."""
MONOLITHIC_DEFAULT_MAX_STEPS = 600
"""Episode horizon for the monolithic baseline when none is given (LIBERO's evaluation horizon)."""


def _host_info() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "numpy": np.__version__}


def _task_names(paths: Sequence[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


# ---------------------------------------------------------------------- one episode
@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run (picklable)."""

    task_index: int
    task_path: str
    task_name: str
    perturbation: PerturbationSpec | None
    episode: int
    seed: int
    video_path: str | None = None


@dataclass(frozen=True)
class _Factories:
    make_world: Callable[..., Any]
    make_skills: Callable[..., SkillSet] | None
    planner: PlannerFactory | None
    make_task_policy: Callable[..., Any] | None
    mode: str
    max_replans: int
    max_steps: int | None
    instructions: Callable[[str, str | None, int], str | None] | None = None
    retract: Any = None


def _frame(world: Any, obs: Any) -> np.ndarray | None:
    render = getattr(world, "render", None)
    if callable(render):
        img = render()
        if img is not None:
            return np.asarray(img)
    images = getattr(obs, "images", None) or {}
    for img in images.values():
        img = np.asarray(img)
        if img.ndim == 3 and img.dtype == np.uint8:
            return img
    return None


def _write_video(path: str, frames: list[np.ndarray], fps: float) -> str | None:
    import imageio.v2 as imageio

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)
    return path


def run_episode(job: EpisodeJob, factories: _Factories) -> dict[str, Any]:
    """Run one episode in this process and return its JSON-able record.

    Never raises for failures inside the episode: an exception while building the world is
    recorded with ``reason="world_error"`` and ``status="not_built"``, one while running with
    ``reason="error"``; ``status`` is one of :data:`EPISODE_STATUSES`. ``perturbation_notes``
    holds what the world factory said about the perturbed layout (``world.perturbation_notes``).
    """
    t0 = time.perf_counter()
    rec: dict[str, Any] = {
        "task": job.task_name, "task_path": job.task_path,
        "perturbation": job.perturbation.name if job.perturbation else UNPERTURBED,
        "episode": job.episode, "seed": job.seed, "success": False, "steps": 0,
        "reason": "", "replans": 0, "calls": [], "goal_progress": {}, "messages": [],
        "error": None, "video": None, "status": "failure", "perturbation_notes": [],
    }
    world = None
    try:
        world = factories.make_world(Path(job.task_path), job.seed, job.perturbation)
        world.robot.connect()
        world.robot.reset(seed=job.seed)
    except Exception as e:
        if world is not None:
            world.robot.disconnect()
        invalid = isinstance(e, EpisodeInvalidError)
        rec.update(reason="invalid" if invalid else NOT_BUILT_REASON,
                   status="invalid" if invalid else "not_built",
                   error=f"{type(e).__name__}: {e}", wall_time_s=time.perf_counter() - t0)
        return rec
    rec["perturbation_notes"] = [str(n) for n in getattr(world, "perturbation_notes", None) or []]
    frames: list[np.ndarray] = []
    on_step = None
    if job.video_path:
        first = _frame(world, world.robot.observe())
        if first is not None:
            frames.append(first)

        def on_step(step, obs, action):
            f = _frame(world, obs)
            if f is not None:
                frames.append(f)
    try:
        if factories.mode == "monolithic":
            policy = factories.make_task_policy(Path(job.task_path))
            result = run_task_policy(world, policy,
                                     factories.max_steps or MONOLITHIC_DEFAULT_MAX_STEPS,
                                     on_step=on_step, name=getattr(policy, "name", "task"))
        else:
            skills = factories.make_skills(Path(job.task_path))
            planner = factories.planner(skills.specs) if factories.planner is not None else None
            if factories.instructions is None and hasattr(planner, "set_instruction"):
                planner.set_instruction(None, job.task_path)  # a language planner: the file's
            elif factories.instructions is not None:  # the language axis: plan from language
                cond = job.perturbation.name if job.perturbation else None
                instruction = factories.instructions(job.task_path, cond, job.episode)
                if instruction is not None:
                    set_instruction = getattr(planner, "set_instruction", None)
                    if set_instruction is None:
                        raise TypeError(f"planner {type(planner).__name__} cannot plan from an "
                                        f"instruction (use planner=language)")
                    set_instruction(instruction, job.task_path)
                    rec["instruction"] = instruction
            if hasattr(planner, "set_camera"):  # a VLM planner sees the current camera images
                planner.set_camera(lambda: dict(getattr(world.robot.observe(), "images", None)
                                                or {}))
            ex = Executor(world, skills, planner, max_replans=factories.max_replans,
                          max_steps=factories.max_steps, on_step=on_step,
                          retract=factories.retract)
            result = ex.run()
            rec["retract_steps"] = ex.retract_steps
        rec.update(result.to_dict())
        rec["status"] = "success" if rec["success"] else "failure"
    except EpisodeInvalidError as e:
        rec.update(success=False, reason="invalid", status="invalid",
                   error=f"{type(e).__name__}: {e}")
    except Exception as e:
        rec.update(reason="error", status="error", error=f"{type(e).__name__}: {e}",
                   messages=[traceback.format_exc(limit=5)])
    if job.video_path and frames:
        try:
            fps = 1.0 / float(world.robot.control_period)
            rec["video"] = _write_video(job.video_path, frames, fps)
        except Exception as e:  # video is a by-product; never fail the episode for it
            rec["messages"].append(f"video not written: {type(e).__name__}: {e}")
    world.robot.disconnect()
    rec["wall_time_s"] = time.perf_counter() - t0
    return rec


# ---------------------------------------------------------------------- aggregation
def _summarize_task(all_eps: list[dict[str, Any]], path: str) -> dict[str, Any]:
    eps = [e for e in all_eps if e["reason"] not in NOT_RUN_REASONS]
    not_run = Counter(e["reason"] for e in all_eps if e["reason"] in NOT_RUN_REASONS)
    n = len(eps)
    k = sum(1 for e in eps if e["success"])
    lo, hi = wilson_interval(k, n)
    atoms: dict[str, list[bool]] = {}
    for e in eps:
        for a, v in e.get("goal_progress", {}).items():
            atoms.setdefault(a, []).append(bool(v))
    lengths = [e["steps"] for e in eps]
    reasons = Counter(e["reason"] for e in eps if not e["success"])
    failed_calls = Counter(f"{c['outcome']} {c['skill']}" for e in eps for c in e.get("calls", [])
                           if c["outcome"] not in ("success", "interrupted"))
    errors = sorted({e["error"] for e in all_eps if e.get("error")})[:5]
    videos = [e["video"] for e in eps if e.get("video")]
    lens = summarize_lengths(lengths)
    nb = [e for e in all_eps if e["reason"] == NOT_BUILT_REASON]
    nb_reasons = Counter(str(e.get("error") or "").split(":", 1)[0] or "unknown" for e in nb)
    notes = sorted({n for e in all_eps for n in e.get("perturbation_notes") or []})
    return {
        "path": path, "n": n, "successes": k, "success_rate": k / n if n else None,
        "ci95": [lo, hi],
        "subgoal_progress": {a: sum(v) / len(v) for a, v in sorted(atoms.items())},
        "episode_length": lens, "mean_length": lens["mean"], "median_length": lens["median"],
        "mean_replans": float(np.mean([e.get("replans", 0) for e in eps])) if eps else 0.0,
        "wall_time_s": float(sum(e.get("wall_time_s", 0.0) for e in eps)),
        "failures": {"reasons": dict(reasons), "failed_calls": dict(failed_calls),
                     "errors": errors},
        "seeds": [e["seed"] for e in eps],
        "not_run": {"count": sum(not_run.values()), "reasons": dict(not_run),
                    "seeds": [e["seed"] for e in all_eps if e["reason"] in NOT_RUN_REASONS]},
        "n_requested": len(all_eps), "n_built": len(all_eps) - len(nb),
        "not_built": {"count": len(nb), "reasons": dict(nb_reasons),
                      "seeds": [e["seed"] for e in nb],
                      "errors": sorted({str(e.get("error")) for e in nb})[:3]},
        "status_counts": dict(Counter(_status(e) for e in all_eps)),
        "perturbation_notes": notes[:10],
        "n_layout_resolved": sum(1 for e in all_eps if any(
            RESOLUTION_MARK in n for n in e.get("perturbation_notes") or [])),
        "video": videos[0] if videos else None,
    }


def _status(e: Mapping[str, Any]) -> str:
    """An episode's status; records written before ``status`` existed get it from ``reason``."""
    if e.get("status") in EPISODE_STATUSES:
        return str(e["status"])
    r = e.get("reason")
    if r == NOT_BUILT_REASON:
        return "not_built"
    if r in ("invalid", "error"):
        return str(r)
    return "success" if e.get("success") else "failure"


def _paired(base_eps: Sequence[Mapping[str, Any]], pert_eps: Sequence[Mapping[str, Any]]
            ) -> dict[str, Any]:
    """Success of both conditions over the seeds that were built and ran in both."""
    ok = {e["seed"]: bool(e["success"]) for e in base_eps if e["reason"] not in NOT_RUN_REASONS}
    pk = {e["seed"]: bool(e["success"]) for e in pert_eps if e["reason"] not in NOT_RUN_REASONS}
    seeds = sorted(set(ok) & set(pk))
    n = len(seeds)
    return {"seeds": seeds, "n": n,
            "unperturbed_success_rate": sum(ok[x] for x in seeds) / n if n else None,
            "success_rate": sum(pk[x] for x in seeds) / n if n else None}


def summarize(episodes: Sequence[Mapping[str, Any]], task_names: Sequence[str],
              task_paths: Sequence[str], perturbations: Sequence[PerturbationSpec | None]
              ) -> dict[str, Any]:
    """Aggregate episode records into the ``results.json`` body (without ``metadata``).

    Returns:
        ``{"tasks": {task: summary}, "suite": {...}, "perturbations": {name: {"spec", "tasks",
        "suite"}}, "skipped_tasks": {task: error}, "episodes": [...]}`` where a task ``summary``
        has ``n, successes, success_rate, ci95 [low, high] (Wilson 95%), subgoal_progress
        {"(On a b)": fraction of episodes it held at the end}, episode_length {mean, median, min,
        max} (control steps), mean_length, median_length, mean_replans, wall_time_s, failures
        {reasons, failed_calls, errors}, seeds, not_run {count, reasons, seeds}, video``;
        episodes that ended for a reason in :data:`NOT_RUN_REASONS` are counted under
        ``not_run`` and left out of ``n`` and the rates; perturbed task summaries add
        ``unperturbed_success_rate`` (the unperturbed task's rate) and ``drop_points``
        (unperturbed minus perturbed, in percentage points, over the *paired* seeds: those built
        and run in both conditions, so an episode that was not built under the perturbation is
        not compared with one that ran without it). A task none of whose episodes ran (e.g. a
        world that cannot be built) is listed in ``skipped_tasks`` with its first error instead
        of crashing the run; the suite's ``n_not_run`` counts every episode that did not run.

        Keys added for not-built episodes (all backward compatible; readers of older files may
        treat them as absent): every episode has ``status`` (one of :data:`EPISODE_STATUSES`)
        and ``perturbation_notes`` (what the world factory moved to resolve the layout). A task
        summary has ``n_requested`` (episodes asked for), ``n_built`` (requested minus not
        built), ``not_built {count, reasons {exception type: count}, seeds, errors (first 3)}``,
        ``status_counts {status: count}``, ``perturbation_notes`` (first 10 distinct) and
        ``n_layout_resolved`` (episodes in which a shifted region was moved on to free table
        area);
        ``success_rate`` is over built episodes that ran (``n``). Perturbed task summaries add
        ``paired {seeds, n, unperturbed_success_rate, success_rate}``. Every ``suite`` block
        adds ``n_requested``, ``n_built``, ``n_not_built``, ``not_built_reasons``,
        ``built_fraction`` (``n_built / n_requested``) and ``n_layout_resolved``; a perturbation's suite adds
        ``paired_unperturbed_mean_success`` and ``paired_mean_success`` (task means over paired
        seeds), whose difference is its ``drop_points``.
    """
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in episodes:
        by.setdefault((e["perturbation"], e["task"]), []).append(dict(e))
    skipped: dict[str, str] = {}
    for name in task_names:
        eps = by.get((UNPERTURBED, name)) or next(
            (v for (p, t), v in by.items() if t == name), [])
        if eps and all(e["reason"] in NOT_RUN_REASONS for e in eps):
            skipped[name] = eps[0]["error"] or eps[0]["reason"]

    def condition(pname: str) -> dict[str, dict[str, Any]]:
        out = {}
        for name, path in zip(task_names, task_paths):
            if name in skipped or (pname, name) not in by:
                continue
            eps = sorted(by[(pname, name)], key=lambda e: e["episode"])
            out[name] = _summarize_task(eps, path)
        return out

    def suite(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        rates = [t["success_rate"] for t in tasks.values() if t["success_rate"] is not None]
        n = sum(t["n"] for t in tasks.values())
        k = sum(t["successes"] for t in tasks.values())
        req = sum(t["n_requested"] for t in tasks.values())
        built = sum(t["n_built"] for t in tasks.values())
        reasons: Counter = Counter()
        for t in tasks.values():
            reasons.update(t["not_built"]["reasons"])
        return {"mean_success": float(np.mean(rates)) if rates else None, "n_tasks": len(rates),
                "n_episodes": n, "successes": k, "pooled_ci95": list(wilson_interval(k, n)),
                "n_not_run": sum(t["not_run"]["count"] for t in tasks.values()),
                "n_requested": req, "n_built": built, "n_not_built": req - built,
                "not_built_reasons": dict(reasons),
                "built_fraction": built / req if req else None,
                "n_layout_resolved": sum(t["n_layout_resolved"] for t in tasks.values())}

    base_tasks = condition(UNPERTURBED)
    base_suite = suite(base_tasks)
    perts: dict[str, Any] = {}
    for spec in perturbations:
        if spec is None:
            continue
        tasks = condition(spec.name)
        paired_b, paired_p = [], []
        for name, t in tasks.items():
            b = base_tasks.get(name)
            t["unperturbed_success_rate"] = b["success_rate"] if b else None
            pr = _paired(by.get((UNPERTURBED, name), []), by[(spec.name, name)])
            t["paired"] = pr
            ok = pr["success_rate"] is not None
            t["drop_points"] = (100.0 * (pr["unperturbed_success_rate"] - pr["success_rate"])
                                if ok else None)
            if ok:
                paired_b.append(pr["unperturbed_success_rate"])
                paired_p.append(pr["success_rate"])
        s = suite(tasks)
        s["unperturbed_mean_success"] = base_suite["mean_success"]
        s["paired_unperturbed_mean_success"] = float(np.mean(paired_b)) if paired_b else None
        s["paired_mean_success"] = float(np.mean(paired_p)) if paired_p else None
        s["drop_points"] = (100.0 * (s["paired_unperturbed_mean_success"]
                                     - s["paired_mean_success"]) if paired_b else None)
        perts[spec.name] = {"spec": spec.to_dict(), "tasks": tasks, "suite": s}
    return {"tasks": base_tasks, "suite": base_suite, "perturbations": perts,
            "skipped_tasks": skipped, "episodes": [dict(e) for e in episodes]}


# ---------------------------------------------------------------------- the runner
@dataclass
class BenchmarkRunner:
    """Runs seeded episodes of a suite of tasks and writes results, a Markdown table, plots, videos.

    Attributes:
        make_world: ``make_world(task_path, seed, perturbation) -> TaskWorld`` (see module doc).
        make_skills: ``make_skills(task_path) -> SkillSet`` (composed mode).
        planner: ``planner(specs) -> Planner``, or ``None`` for the symbolic planner.
        mode: ``"composed"`` (planner + skills) or ``"monolithic"`` (one policy per task).
        make_task_policy: ``make_task_policy(task_path) -> SkillPolicy`` (monolithic mode).
        max_replans: executor's bounded retries.
        max_steps: episode control-step budget (``None``: executor default; monolithic: 600).
        workers: parallel worker processes (``spawn``); 1 runs in this process.
        video: record one rollout video per task and condition (needs ``out_dir``).
        progress: show a tqdm progress bar over episodes.
        instructions: ``instructions(task_path, condition, episode) -> str | None``: the
            instruction each episode's planner plans from (``planner.set_instruction``), e.g.
            :class:`robot_skills.planning.language.ParaphraseInstructions` for the language
            axis (a paraphrase per episode under a ``paraphrase`` condition); ``None``: a
            planner with ``set_instruction`` (``planner=language|vlm``) plans from the file's own
            instruction, any other from the file's goal.
        retract: a :class:`~robot_skills.execution.retract.RetractConfig`: composed episodes
            return the empty hand to its start pose before each call; None: they do not.
    """

    make_world: Callable[..., Any]
    make_skills: Callable[..., SkillSet] | None = None
    planner: PlannerFactory | None = None
    mode: str = "composed"
    make_task_policy: Callable[..., Any] | None = None
    max_replans: int = 2
    max_steps: int | None = None
    workers: int = 1
    video: bool = True
    progress: bool = True
    instructions: Callable[[str, str | None, int], str | None] | None = None
    retract: Any = None
    _meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("composed", "monolithic"):
            raise ValueError(f"mode must be 'composed' or 'monolithic', got {self.mode!r}")
        if self.mode == "composed" and self.make_skills is None:
            raise ValueError("composed mode needs make_skills")
        if self.mode == "monolithic" and self.make_task_policy is None:
            raise ValueError("monolithic mode needs make_task_policy")
        for name in ("make_world", "make_skills", "make_task_policy", "planner", "instructions"):
            f = getattr(self, name)
            if f is not None and not callable(f):
                raise TypeError(f"{name} must be a callable factory, got {type(f).__name__} "
                                f"{f!r}")
        if int(self.workers) < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")

    def run_suite(
        self,
        task_paths: Sequence[str | Path],
        episodes_per_task: int,
        base_seed: int = 0,
        perturbations: Sequence[PerturbationSpec | None] | None = None,
        out_dir: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
        write_report: bool = True,
    ) -> dict[str, Any]:
        """Run ``episodes_per_task`` episodes of every task under every condition.

        Args:
            task_paths: task files (e.g. LIBERO ``.bddl``); names in results are the file stems.
            episodes_per_task: episodes per task and condition; episode ``i`` uses
                ``base_seed + i``.
            base_seed: first seed.
            perturbations: perturbation specs; the unperturbed condition (``None``) is always run
                first and need not be listed.
            out_dir: where ``results.json``, ``report.md``, ``success.png`` and ``videos/`` go;
                ``None`` writes nothing.
            config: the run's configuration, stored verbatim in ``metadata.config``.
            write_report: also write the Markdown report and the plot.

        Returns:
            The results dict (see :func:`summarize`) plus ``metadata`` with ``mode, seeds,
            base_seed, episodes_per_task, config, code_version (see :func:`robot_skills.utils.version.code_version`), timestamp (UTC ISO
            8601), host, workers, wall_time_s, task_paths``.

        Raises:
            ValueError: on no tasks, ``episodes_per_task < 1`` or duplicate perturbation names.
        """
        paths = [Path(p) for p in task_paths]
        if not paths:
            raise ValueError("no task files given")
        if episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1, got {episodes_per_task}")
        conds: list[PerturbationSpec | None] = [None] + [p for p in (perturbations or [])
                                                         if p is not None]
        names_p = [p.name for p in conds if p is not None]
        if len(set(names_p)) != len(names_p) or UNPERTURBED in names_p:
            raise ValueError(f"perturbation names must be unique and not {UNPERTURBED!r}: "
                             f"{names_p}")
        out = Path(out_dir) if out_dir is not None else None
        names = _task_names(paths)
        jobs = []
        for pert in conds:
            for ti, (path, name) in enumerate(zip(paths, names)):
                for i in range(episodes_per_task):
                    video = None
                    if self.video and out is not None and i == 0:
                        suffix = "" if pert is None else f"__{pert.name}"
                        video = str(out / "videos" / f"{name.replace('/', '__')}{suffix}.mp4")
                    jobs.append(EpisodeJob(ti, str(path), name, pert, i, base_seed + i, video))
        factories = _Factories(self.make_world, self.make_skills, self.planner,
                               self.make_task_policy, self.mode, self.max_replans, self.max_steps,
                               instructions=self.instructions, retract=self.retract)
        t0 = time.perf_counter()
        episodes = self._run_jobs(jobs, factories)
        wall = time.perf_counter() - t0
        order = {(j.perturbation.name if j.perturbation else UNPERTURBED, j.task_name, j.episode): k
                 for k, j in enumerate(jobs)}
        episodes.sort(key=lambda e: order[(e["perturbation"], e["task"], e["episode"])])
        results = summarize(episodes, names, [str(p) for p in paths], conds)
        results["metadata"] = {
            "mode": self.mode, "base_seed": base_seed, "episodes_per_task": episodes_per_task,
            "seeds": [base_seed + i for i in range(episodes_per_task)],
            "config": dict(config or {}), "code_version": code_version(),
            "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "host": _host_info(), "workers": self.workers, "wall_time_s": wall,
            "max_replans": self.max_replans, "max_steps": self.max_steps,
            "retract": None if self.retract is None else dataclasses.asdict(self.retract),
            "task_paths": [str(p) for p in paths],
        }
        results = {"metadata": results.pop("metadata"), **results}
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(out / "results.json", results, sort_keys=False, default=str)
            if write_report:
                from robot_skills.evaluation.report import plot_success, write_markdown

                write_markdown(results, out / "report.md")
                plot_success(results, out / "success.png")
        return results

    def _run_jobs(self, jobs: list[EpisodeJob], factories: _Factories) -> list[dict[str, Any]]:
        return run_parallel(functools.partial(run_episode, factories=factories), jobs,
                            self.workers, desc=f"eval ({self.mode})", progress=self.progress)


def run_suite(
    task_paths: Sequence[str | Path],
    make_world: Callable[..., Any],
    make_skills: Callable[..., SkillSet] | None = None,
    planner: PlannerFactory | None = None,
    episodes_per_task: int = 20,
    base_seed: int = 0,
    perturbations: Sequence[PerturbationSpec | None] | None = None,
    workers: int = 1,
    video: bool = True,
    out_dir: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    **runner_kwargs: Any,
) -> dict[str, Any]:
    """Functional form of :meth:`BenchmarkRunner.run_suite` (same arguments and result).

    ``runner_kwargs`` go to :class:`BenchmarkRunner` (``mode``, ``make_task_policy``,
    ``max_replans``, ``max_steps``, ``progress``).
    """
    runner = BenchmarkRunner(make_world, make_skills, planner, workers=workers, video=video,
                             **runner_kwargs)
    return runner.run_suite(task_paths, episodes_per_task, base_seed, perturbations, out_dir,
                            config)
