"""Demonstration collection: plan with the planner, run the scripted experts, record.

Per task and seed, the world factory builds the robot in the task and samples an initial state,
the executor plans the goal over the experts' contracts and runs one expert per skill call, and
every control step is recorded with the skill segment it belongs to. Noise is injected DART-style
(Laskey et al., "DART: Noise Injection for Robust Imitation Learning", CoRL 2017): the *executed*
action is perturbed, the *recorded* label is the expert's clean action, so the data contains the
expert's recoveries from perturbed states. Only successful episodes are kept (as LIBERO and
robomimic keep only successful demonstrations).

Collection is a rollout plus a recorder: episodes run through the same worker pool as evaluation
(:mod:`robot_skills.execution.pool`) and come back as in-memory arrays; the parent writes each
finished episode at once to its own small HDF5 file (atomically) in a work directory beside the
output, and merges them into one HDF5 file, written atomically, when every episode has run
(:class:`robot_skills.data.hdf5.DemoWriter`). A killed collection loses only the episodes in flight
and a rerun resumes (see :func:`collect_demos`). Nothing here knows the simulator:
the world factory and the expert skill set are passed in (Hydra builds them from the ``world`` and
``collect.experts`` configs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.data.hdf5 import DemoReader, DemoWriter
from robot_skills.data.images import (
    CODECS,
    DEFAULT_CODEC,
    camera_key,
    observation_images,
    write_frames,
)
from robot_skills.execution.executor import Executor
from robot_skills.execution.interfaces import SkillSet
from robot_skills.execution.pool import iter_parallel
from robot_skills.execution.recording import EpisodeRecording, SkillSegment
from robot_skills.robot import Action, Observation
from robot_skills.tasks.bddl import MAX_TASK_FILE_BYTES
from robot_skills.utils.atomic import (
    PROBE_NAME,
    atomic_write_json,
    check_writable,
    clean_stale_temps,
    exclusive_lock,
)
from robot_skills.utils.files import sha256_file
from robot_skills.utils.version import code_version


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


class _OffsetRecorder:
    """Forwards to an :class:`EpisodeRecording`, shifting segment step indices by ``offset`` (the
    steps earlier sub-goals of the same episode took)."""

    def __init__(self, rec: EpisodeRecording, offset: int) -> None:
        self.rec, self.offset = rec, offset

    def add_step(self, obs: Observation, action: Action) -> None:
        self.rec.add_step(obs, action)

    def add_segment(self, seg: SkillSegment) -> None:
        self.rec.add_segment(dataclasses.replace(seg, start=seg.start + self.offset,
                                                 end=seg.end + self.offset))


def run_expert_episode(world: Any, experts: SkillSet, seed: int, noise: NoiseConfig,
                       max_steps: int, max_replans: int = 2, *, target: str = "",
                       max_prefix: int = 0, candidates: Sequence[str] = (),
                       finish_calls: bool = False
                       ) -> tuple[bool, EpisodeData, dict[str, Any]]:
    """Run one expert episode on ``world`` (a TaskWorld) from the initial state of ``seed``.

    Task-centric (``target`` empty): the executor plans and runs the task file's goal.
    Skill-centric (``target`` a call such as ``"place_in(bowl_1, drawer_1)"``): a random valid
    prefix of up to ``max_prefix`` calls drawn from ``candidates``, then the target call's goal
    (:func:`robot_skills.data.skill_centric.sample_episode_goals`, seeded by ``seed``), are run as
    successive sub-goals in one episode; the episode succeeds when every sub-goal is reached, each
    within ``max_steps``. When a sub-goal fails, the recording is cut after the last sub-goal
    reached (``result_dict["kept_sub_goals"]`` of them; their segments are whole demonstrations of
    their calls) and the rest is dropped.

    Args:
        world: the robot in its task; ``world.robot.reset(seed)`` samples the initial state.
        experts: the scripted experts and their contracts.
        seed: initial-state seed; the noise stream is seeded from it too.
        noise: DART noise on the executed translation.
        max_steps: episode control-step budget.
        max_replans: executor's bounded retries.
        target, max_prefix, candidates: the skill-centric target call and its prefix pool.
        finish_calls: let every call run to its own termination test, past the moment the
            episode's goal holds (``Executor(stop_at_goal=False)``): a last placement then
            demonstrates its release too.

    Returns:
        ``(success, episode, result_dict)``; actions are the clean expert labels, ``(T, 7)``
        float32; ``episode.states`` is ``(T, n)`` float64 simulator state before each action.
        Skill-centric episodes add ``sub_goals`` (BDDL-spelled) to ``result_dict``.

    Raises:
        RuntimeError: if the recorder and the label log disagree (a bug, never data).
        ValueError: a skill-centric target that cannot be planned in this scene.
    """
    world.robot.reset(seed)
    rng = np.random.default_rng(seed + 7919)
    labels: list[Action] = []
    states: list[np.ndarray] = []  # simulator state before each action (robomimic "states")
    policies = {k: DartNoise(p, noise, rng, labels, lambda: states.append(_sim_state(world)))
                for k, p in experts.policies.items()}
    rec = EpisodeRecording()
    skills = SkillSet(policies, experts.specs)
    if not target:
        result = Executor(world, skills, max_steps=max_steps, max_replans=max_replans,
                          recorder=rec, stop_at_goal=not finish_calls).run()
        res = result.to_dict()
    else:
        from robot_skills.data.skill_centric import sample_episode_goals
        from robot_skills.domain.predicates import format_atom
        from robot_skills.planning.symbolic import SkillCall, SymbolicPlanner

        planner = SymbolicPlanner(experts.specs)
        try:
            goals = sample_episode_goals(world.symbolic_problem(), SkillCall.parse(target),
                                         np.random.default_rng([seed, 31]), max_prefix,
                                         [SkillCall.parse(c) for c in candidates], experts.specs,
                                         planner)
        except ValueError as e:  # this layout gives the call no start state: not a world error
            ep = EpisodeData([], np.zeros((0, 7), np.float32), np.zeros((0, 1)), [])
            return False, ep, {"success": False, "steps": 0, "reason": f"no_start_state: {e}",
                               "sub_goals": []}
        res = {"success": True, "steps": 0, "reason": "success", "replans": 0, "calls": [],
               "sub_goals": [" ".join(format_atom(a) for a in sorted(g)) for g in goals],
               "kept_sub_goals": 0}
        kept_steps = 0
        for k, g in enumerate(goals):
            result = Executor(world, skills, planner, max_steps=max_steps,
                              max_replans=max_replans, stop_at_goal=not finish_calls,
                              recorder=_OffsetRecorder(rec, len(rec.actions))).run(g)
            r = result.to_dict()
            res["steps"] += r["steps"]
            res["replans"] += r.get("replans", 0)
            res["calls"] += r.get("calls", [])
            if not result.success:
                res.update(success=False, reason=r["reason"],
                           messages=[f"sub-goal {k + 1}/{len(goals)} {res['sub_goals'][k]} "
                                     "not reached"] + list(r.get("messages", [])))
                break
            res["kept_sub_goals"], kept_steps = k + 1, len(rec.actions)
        if not res["success"]:
            # keep what the sub-goals reached before the failing one (their segments are whole
            # demonstrations of their calls); drop the rest
            if len(labels) != len(rec.actions):
                raise RuntimeError(f"recorded {len(rec.actions)} steps but logged {len(labels)} "
                                   "expert labels")
            del rec.observations[kept_steps:], rec.actions[kept_steps:], labels[kept_steps:]
            del states[kept_steps:]
            rec.segments[:] = [sg for sg in rec.segments if sg.end <= kept_steps]
    n = len(rec.actions)
    if len(labels) != n:
        raise RuntimeError(f"recorded {n} steps but logged {len(labels)} expert labels")
    actions = np.stack([a.to_array() for a in labels]) if n else np.zeros((0, 7), np.float32)
    segments = [s for s in rec.segments if s.end > s.start]
    ep = EpisodeData(rec.observations, actions, np.stack(states) if states else np.zeros((0, 1)),
                     segments)
    return bool(res["success"]), ep, res


@dataclass(frozen=True)
class CollectJob:
    """One demonstration episode to run (picklable).

    Attributes:
        task_path: the task file.
        seed: initial-state seed.
        region_scale: factor on the objects' initial placement regions (>= 1 widens them).
        target: skill-centric episodes: the call demonstrated (``"place_on(a, b)"``); empty for a
            task-centric episode (the task file's goal).
        max_prefix: skill-centric: most random calls run before the target.
        candidates: skill-centric: the scene's grounded calls the prefix is drawn from.
    """

    task_path: str
    seed: int
    region_scale: float = 1.0
    target: str = ""
    max_prefix: int = 0
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class _CollectFactories:
    make_world: Callable[..., Any]
    make_experts: Callable[..., SkillSet]
    noise: NoiseConfig
    max_steps: int
    max_replans: int
    keep_failures: bool
    finish_calls: bool = False


def _absurd_pose(ep: EpisodeData) -> str:
    """The first object or end-effector position beyond the dataset's absurdity bound
    (:data:`robot_skills.data.dataset.DEFAULT_VALUE_BOUNDS`), described, or ``""``: an episode
    the simulator flung an object out of is dropped here instead of failing validation of the
    whole file at training time."""
    from robot_skills.data.dataset import DEFAULT_VALUE_BOUNDS

    bound = DEFAULT_VALUE_BOUNDS.max_abs_position
    if bound is None:
        return ""
    for t, obs in enumerate(ep.observations):
        if not np.all(np.abs(np.asarray(obs.ee_pos)) <= bound):
            return f"end-effector at {np.asarray(obs.ee_pos).round(2).tolist()} m, step {t}"
        for name, pose in obs.object_poses.items():
            p = np.asarray(pose)[:3]
            if not np.all(np.abs(p) <= bound):
                return f"{name} at {p.round(2).tolist()} m, step {t} (beyond {bound} m)"
    return ""


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
                                         factories.max_replans, target=job.target,
                                         max_prefix=job.max_prefix, candidates=job.candidates,
                                         finish_calls=factories.finish_calls)
    except Exception as e:  # noqa: BLE001 - reported per episode, counted by the parent
        return job, None, {"seed": job.seed, "success": False, "steps": 0,
                           "reason": f"world_error: {type(e).__name__}: {e}",
                           "region_scale": job.region_scale, "wall_s": time.perf_counter() - t0}
    finally:
        if world is not None:
            world.robot.disconnect()
    keep = ok or res.get("kept_sub_goals", 0) > 0
    absurd = _absurd_pose(ep) if keep else ""
    if absurd:  # e.g. an object flung off by a simulator instability: never training data
        ok, keep = False, False
        res = {**res, "reason": f"invalid_episode: {absurd}", "kept_sub_goals": 0}
    summary = {"seed": job.seed, "success": ok, "steps": res["steps"], "reason": res["reason"],
               "region_scale": job.region_scale, "wall_s": time.perf_counter() - t0}
    if job.target:
        summary.update(target=job.target, sub_goals=res.get("sub_goals", []),
                       kept_sub_goals=res.get("kept_sub_goals", 0))
    if not (keep or factories.keep_failures) or len(ep.actions) == 0:
        return job, None, summary
    task = getattr(world, "task", None)
    ep.attrs = {"task": Path(job.task_path).stem, "bddl": str(job.task_path), "seed": int(job.seed),
                "language": getattr(task, "language", ""), "success": bool(ok),
                "region_scale": job.region_scale}
    if job.target:
        ep.attrs.update(target_call=job.target, sub_goals=json.dumps(res.get("sub_goals", [])))
    return job, ep, summary


COLLECT_FORMAT = "robot_skills.collect/1"
"""Version of the episode-record layout in the collection work directory."""


def collect_work_dir(out_path: str | Path) -> Path:
    """Where :func:`collect_demos` keeps one record per finished episode: ``.<name>.collect``
    beside ``out_path`` (e.g. ``<run_dir>/.demos.hdf5.collect/``)."""
    out_path = Path(out_path)
    return out_path.parent / f".{out_path.name}.collect"


def _describe(obj: Any) -> str:
    """A stable description of a factory for the fingerprint: its repr without memory addresses
    (dataclass factories list their settings; functions their qualified name)."""
    if callable(obj) and hasattr(obj, "__qualname__") and not hasattr(obj, "__dataclass_fields__"):
        return f"{getattr(obj, '__module__', '?')}.{obj.__qualname__}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def _episode_config(make_world: Any, make_experts: Any, noise: NoiseConfig, max_steps: int,
                    max_replans: int, region_scale_max: float, keep_failures: bool,
                    image_codec: str = DEFAULT_CODEC, skill_centric: bool = False,
                    finish_calls: bool = False) -> dict[str, Any]:
    """Everything, besides the task file and the seed, that decides what an episode records.
    (The cameras are part of the world factory's description; the image codec is listed only
    when it is not the default, so state-only collections keep their fingerprint.)"""
    extra = {} if image_codec == DEFAULT_CODEC else {"image_codec": image_codec}
    if skill_centric:  # partial episodes keep the sub-goals reached
        extra["skill_centric"] = "partial-sub-goals/1"
    if finish_calls:  # every call runs to its termination, past the goal
        extra["finish_calls"] = True
    return {**extra, "format": COLLECT_FORMAT, "make_world": _describe(make_world),
            "make_experts": _describe(make_experts), "noise_std": float(noise.std),
            "noise_prob": float(noise.prob), "max_steps": int(max_steps),
            "max_replans": int(max_replans), "region_scale_max": float(region_scale_max),
            "keep_failures": bool(keep_failures)}


def _fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _task_key(task_path: str) -> str:
    """Identity of a task file: its path and its content (an edited file is another task)."""
    h = hashlib.sha256(task_path.encode() + b"\0")
    with contextlib.suppress(OSError, ValueError):  # unreadable: load_bddl reports it per episode
        h.update(sha256_file(task_path, max_bytes=MAX_TASK_FILE_BYTES).encode())
    return h.hexdigest()[:12]


def _record_path(work: Path, job: CollectJob) -> Path:
    tag = ""
    if job.target:
        h = hashlib.sha256(json.dumps([job.target, job.max_prefix, list(job.candidates)])
                           .encode()).hexdigest()[:10]
        tag = f".call{h}"
    return work / (f"{Path(job.task_path).stem}.{_task_key(job.task_path)}.seed{job.seed}"
                   f"{tag}.hdf5")


def _write_record(path: Path, job: CollectJob, ep: EpisodeData | None, summary: dict[str, Any],
                  fingerprint: str, image_codec: str = DEFAULT_CODEC) -> None:
    """One finished episode -> its own HDF5 file, written atomically (temp, fsync, rename).
    Camera images in the observations are stored compressed with ``image_codec``
    (:func:`robot_skills.data.images.write_frames`)."""
    record = {"task_path": job.task_path, "seed": job.seed, "region_scale": job.region_scale,
              "target": job.target, "summary": summary}
    with DemoWriter(path, attrs={"collect_record": json.dumps(record),
                                 "collect_fingerprint": fingerprint}) as w:
        if ep is not None:
            name = w.add_demo(ep.observations, ep.actions, states=ep.states,
                              skill_segments=ep.segments, attrs=ep.attrs)
            images = observation_images(ep.observations)
            if images:
                obs_group = w.demo_group(name)["obs"]
                for cam, frames in images.items():
                    write_frames(obs_group, camera_key(cam), frames, image_codec, camera=cam)


def _read_record(path: Path, job: CollectJob, fingerprint: str) -> dict[str, Any] | None:
    """The summary of a recorded episode, or None when the record is unusable (unreadable, of
    another job or configuration, or a world that could not be built — retried on resume)."""
    try:
        with DemoReader(path) as r:
            attrs = r.attrs
            record = json.loads(attrs["collect_record"])
            ok = (attrs.get("collect_fingerprint") == fingerprint
                  and record["task_path"] == job.task_path and record["seed"] == job.seed
                  and record["region_scale"] == job.region_scale
                  and record.get("target", "") == job.target)
            summary = record["summary"]
            has_demo = len(r) == 1 and r.num_samples(r.demos[0]) > 0
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not ok or str(summary.get("reason", "")).startswith("world_error"):
        return None
    summary = dict(summary)
    summary["_has_demo"] = has_demo
    return summary


def _discard(work: Path) -> None:
    """Delete a work directory: renamed to a temporary name first (a kill mid-delete leaves a
    ``.tmp`` that :func:`clean_stale_temps` removes), then removed."""
    if not work.exists():
        return
    trash = work.parent / f".{work.name}.{uuid.uuid4().hex[:8]}.tmp"
    os.replace(work, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _open_work_dir(work: Path, config: dict[str, Any], fingerprint: str, resume: bool,
                   say: Callable[[str], None]) -> None:
    """Make ``work`` hold records of this configuration only (records of another one are
    discarded, saying why)."""
    meta_path = work / "collect.json"
    if work.is_dir():
        try:
            meta = json.loads(meta_path.read_text())
            old_cfg, old_fp = meta["config"], meta["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            old_cfg, old_fp = None, None
        n_old = sum(1 for p in work.glob("*.hdf5"))
        if not resume or old_fp != fingerprint:
            if not resume:
                why = "resume=False"
            elif old_cfg is None:
                why = "its collect.json is missing or unreadable"
            else:
                diff = sorted(k for k in set(config) | set(old_cfg)
                              if config.get(k) != old_cfg.get(k))
                why = "the collection config changed: " + "; ".join(
                    f"{k}: {old_cfg.get(k)!r} -> {config.get(k)!r}" for k in diff)
            if n_old:
                say(f"collect: starting over in {work}: {why}; discarding {n_old} episode(s) "
                    "recorded under the old config (episodes are never mixed across configs)")
            _discard(work)
        elif n_old and meta.get("code_version") != code_version():
            say(f"collect: note: the {n_old} recorded episode(s) in {work} were collected by code "
                f"version {meta.get('code_version')}; this run is {code_version()} (the episode "
                "configuration is unchanged, so they are reused)")
    work.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(work)
    if not meta_path.is_file():
        atomic_write_json(meta_path, {"fingerprint": fingerprint, "config": config,
                                      "code_version": code_version()})


def collect_demos(task_paths: Sequence[str | Path], out_path: str | Path, demos_per_task: int,
                  *, make_world: Callable[..., Any], make_experts: Callable[..., SkillSet],
                  seed: int = 1000, noise: NoiseConfig = NoiseConfig(), max_steps: int = 600,
                  max_replans: int = 2, workers: int = 1, progress: bool = True,
                  region_scale_max: float = 1.0, env_args: dict[str, Any] | None = None,
                  keep_failures: bool = False, resume: bool = True,
                  image_codec: str = DEFAULT_CODEC,
                  jobs: Sequence[CollectJob] | None = None,
                  finish_calls: bool = False) -> dict[str, Any]:
    """Collect ``demos_per_task`` expert episodes per task and write them to ``out_path`` (HDF5).

    Crash-safe and resumable: each finished episode is written at once to its own small HDF5
    file in :func:`collect_work_dir` (temporary name, fsync, atomic rename), so a process killed
    at any instant loses only the episodes in flight. A rerun with the same episode
    configuration skips the (task, seed) episodes already recorded and runs the rest (an
    episode whose world could not be built is run again); a rerun
    with a different one (noise, budgets, world or experts) discards the old records with a
    message naming what changed, so episodes of two configurations never mix. When every episode
    has run, the records are merged in job order (task, then seed) into ``out_path``, written
    atomically, and the work directory is removed: the file equals that of a run that was never
    interrupted. Temporary files of a killed run are removed first.

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
        progress: show a progress bar.
        region_scale_max: each episode widens the objects' initial regions by a factor drawn
            (seeded) from ``U(1, region_scale_max)``, so demonstrations cover initial positions
            beyond the task file's few-centimetre regions; 1 keeps the task file's.
        env_args: extra env metadata stored in the file.
        keep_failures: also write failed episodes (``success`` attribute False).
        resume: reuse the episodes a previous (killed) run of the same configuration recorded;
            False starts over.
        image_codec: how camera images are stored when the world renders cameras
            (``make_world``'s ``cameras``): ``gzip`` / ``lzf`` (lossless HDF5 filters) or
            ``png`` / ``jpeg`` (OpenCV-encoded per frame); see :mod:`robot_skills.data.images`.
        jobs: the episodes to run, instead of ``demos_per_task`` seeds per task file (e.g. the
            skill-centric episodes of :func:`skill_centric_jobs`); ``task_paths`` must list every
            job's task file.
        finish_calls: see :func:`run_expert_episode`; part of the episode configuration.

    Returns:
        Summary dict: per task attempts / successes / expert success rate / episodes, demos
        written, wall time, path, and ``resumed_episodes`` (episodes reused from a killed run).

    Raises:
        ValueError: if no task paths are given, ``demos_per_task < 1`` (without ``jobs``) or
            ``region_scale_max < 1``; or an episode's data is malformed (NaN actions, ...).
        RuntimeError: if not a single demonstration could be recorded (nothing is written), or
            another process is collecting into ``out_path``.
        OSError: the output directory cannot be written (raised before any episode runs).
    """
    if not task_paths:
        raise ValueError("collect_demos needs at least one task file")
    if demos_per_task < 1 and jobs is None:
        raise ValueError(f"demos_per_task must be >= 1, got {demos_per_task}")
    if not region_scale_max >= 1.0:
        raise ValueError(f"region_scale_max must be >= 1, got {region_scale_max}")
    if image_codec not in CODECS:
        raise ValueError(f"image_codec must be one of {CODECS}, got {image_codec!r}")
    out_path = Path(out_path)
    check_writable(out_path.parent)
    work = collect_work_dir(out_path)
    say = functools.partial(print, file=sys.stderr, flush=True)
    with exclusive_lock(out_path.parent / f".{out_path.name}.lock",
                        f"collecting into {out_path}"):
        clean_stale_temps(out_path.parent, names=(out_path.name, work.name, PROBE_NAME))
        if jobs is None:
            jobs = [CollectJob(str(p), seed + i,
                               float(np.random.default_rng([seed + i, 17]).uniform(
                                   1.0, region_scale_max)))
                    for p in task_paths for i in range(demos_per_task)]
        else:
            jobs = list(jobs)
            unknown = sorted({j.task_path for j in jobs} - {str(p) for p in task_paths})
            if unknown:
                raise ValueError(f"jobs name task files not in task_paths: {unknown[:3]}")
            if len(set(jobs)) != len(jobs):
                raise ValueError("jobs must be distinct (task file, seed, target) episodes")
        config = _episode_config(make_world, make_experts, noise, max_steps, max_replans,
                                 region_scale_max, keep_failures, image_codec,
                                 skill_centric=any(j.target for j in jobs),
                                 finish_calls=finish_calls)
        fp = _fingerprint(config)
        _open_work_dir(work, config, fp, resume, say)
        t0 = time.perf_counter()
        record_of = {j: _record_path(work, j) for j in jobs}
        done: dict[CollectJob, dict[str, Any]] = {}
        for j in jobs:
            rec = record_of[j]
            if rec.is_file():
                s = _read_record(rec, j, fp)
                if s is None:
                    rec.unlink()
                else:
                    done[j] = s
        resumed = len(done)
        todo = [j for j in jobs if j not in done]
        if resumed:
            say(f"collect: resuming from {work}: {resumed} of {len(jobs)} episode(s) already "
                f"recorded, {len(todo)} to run")
        factories = _CollectFactories(make_world, make_experts, noise, int(max_steps),
                                      int(max_replans), bool(keep_failures), bool(finish_calls))
        for job, ep, summ in iter_parallel(functools.partial(collect_episode, factories=factories),
                                           todo, workers, desc="collect", progress=progress):
            _write_record(record_of[job], job, ep, summ, fp, image_codec)
            done[job] = {**summ, "_has_demo": ep is not None}
        if not any(s["_has_demo"] for s in done.values()):
            reasons = sorted({s["reason"] for s in done.values()})[:5]
            _discard(work)
            raise RuntimeError(f"no demonstration recorded in {len(done)} episodes; "
                               f"reasons: {reasons}")
        summary: dict[str, Any] = {"tasks": {}, "demos": 0}
        with DemoWriter(out_path, env_args={"env_name": "robot_skills/LiberoTask-v0",
                                            **(env_args or {})}) as writer:
            for p in map(str, task_paths):
                mine = [j for j in jobs if j.task_path == p]
                for j in mine:
                    if done[j]["_has_demo"]:
                        with DemoReader(record_of[j]) as r:
                            writer.copy_demo(r, r.demos[0])
                        summary["demos"] += 1
                summ = [{k: v for k, v in done[j].items() if k != "_has_demo"} for j in mine]
                ok = sum(s["success"] for s in summ)
                if not mine:
                    continue
                summary["tasks"][Path(p).stem] = {"attempts": len(summ), "successes": ok,
                                                  "expert_success_rate": ok / max(1, len(summ)),
                                                  "episodes": summ}
        calls: dict[str, dict[str, int]] = {}
        for j in jobs:
            if j.target:
                c = calls.setdefault(j.target, {"attempts": 0, "successes": 0})
                c["attempts"] += 1
                c["successes"] += int(bool(done[j]["success"]))
        if calls:
            summary["calls"] = dict(sorted(calls.items()))
        _discard(work)  # the records live on in out_path
    summary["wall_s"] = time.perf_counter() - t0
    summary["path"] = str(out_path)
    summary["resumed_episodes"] = resumed
    return summary
