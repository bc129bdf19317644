"""Command-line entry points: one verb per job (LeRobot-style), each taking Hydra ``key=value``
overrides on top of ``configs/config.yaml``.

* ``rs-collect``    scripted-expert demonstrations for a suite -> ``<run_dir>/demos.hdf5``
* ``rs-train``      base policy + one LoRA adapter per skill -> ``<run_dir>/skills/``
* ``rs-eval``       benchmark (learned skills + planner, experts, or the monolithic baseline)
* ``rs-quickstart`` the main job: collect -> train -> eval, printing the table, time per stage and
  peak memory
* ``rs-fetch-libero`` download LIBERO's task files from the ``libero`` sdist on PyPI into the cache
* ``rs-report``     (re)write a run's self-contained ``report.html`` from its ``results.json``

Examples::

    rs-quickstart suite=libero_spatial eval.episodes_per_task=20
    rs-eval eval.policy=expert suite.path=/path/to/my/bddl_dir
    rs-eval eval.perturbations=configs/perturbations/libero_plus_lite.yaml
    rs-eval eval.policy=expert eval.workers=ray eval.ray_address=HEAD_IP:6379   # on a Ray cluster
    rs-report outputs/libero_goal/eval_expert
    rs-quickstart +experiment=visuomotor_cpu workers=1   # image-based skills (docs/visuomotor.md)

Each command is a ``@hydra.main`` application, so ``--multirun`` sweeps and Hydra's launcher
plugins (submitit for SLURM, Ray) work: ``rs-eval --multirun eval.seed=0,1``. The CLI imports
neither ``sim`` nor ``hardware``: the world, the skill sets and the planner are built from the
configs' ``_target_`` entries by ``hydra.utils.instantiate``.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robot_skills.utils.atomic import atomic_write_json, check_writable

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; set before mujoco is imported

CONFIG_DIR_ENV = "ROBOT_SKILLS_CONFIG_DIR"


def config_dir() -> Path:
    """Directory of the Hydra configs: ``$ROBOT_SKILLS_CONFIG_DIR`` or the repository's ``configs/``."""
    env = os.environ.get(CONFIG_DIR_ENV)
    d = Path(env) if env else Path(__file__).resolve().parents[1] / "configs"
    if not (d / "config.yaml").is_file():
        raise FileNotFoundError(f"no config.yaml in {d}; set {CONFIG_DIR_ENV} to the configs dir")
    return d


def load_config(overrides: Sequence[str] = ()) -> Any:
    """Compose ``config.yaml`` with ``key=value`` overrides (Hydra's compose API) on the typed
    schema of :mod:`robot_skills.config`, then check ranges.

    Raises:
        hydra.errors.ConfigCompositionException / omegaconf.errors.ValidationError: on an unknown
            key or group, or a value of the wrong type (the key is named).
        robot_skills.config.ConfigValueError: on a value out of range (the key is named).
    """
    from hydra import compose, initialize_config_dir

    from robot_skills.config import check_config, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    check_config(cfg)
    return cfg


def _plain(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _run_dir(cfg: Any) -> Path:
    d = Path(cfg.run_dir)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _build(node: Any) -> Any:
    from hydra.utils import instantiate

    return instantiate(node)


def build_world(cfg: Any) -> Any:
    """The world factory of ``cfg.world`` (``make_world(task_path, seed, perturbation)``)."""
    return _build(cfg.world)


def build_planner(cfg: Any) -> Any:
    """The planner factory of ``cfg.planner`` (``planner(specs) -> Planner``)."""
    return _build(cfg.planner)


def suite_tasks(cfg: Any, world: Any | None = None) -> list[Path]:
    """The task files of the configured suite that ``world`` can build; the others are listed.

    Raises:
        SystemExit: if no task file of the suite can run, or ``suite.tasks`` names none of them.
    """
    from robot_skills.tasks.suites import resolve_suite, scan_suite

    world = world if world is not None else build_world(cfg)
    directory = resolve_suite(cfg.suite.path)
    supported, unsupported = scan_suite(directory, world.supported_categories())
    for path, problems in sorted(unsupported.items()):
        print(f"[skip] {path.name}: {'; '.join(problems)}")
    if not supported:
        raise SystemExit(f"no runnable task files in {directory}")
    only = cfg.suite.get("tasks")
    if only:
        missing = sorted(set(only) - {p.stem for p in supported})
        if missing:
            raise SystemExit(f"suite.tasks names task(s) not runnable in {directory}: {missing}")
        supported = [p for p in supported if p.stem in set(only)]
    return supported


def _train_config(cfg: Any) -> Any:
    from robot_skills.training.trainer import TrainConfig

    t, p = cfg.training, cfg.policy
    return TrainConfig(steps=int(t.steps), lora_steps=int(t.lora_steps),
                       skill_kind=str(t.skill_kind), standalone_steps=int(t.standalone_steps),
                       replace_library=bool(t.replace_library),
                       batch_size=int(t.batch_size), lr=float(t.lr),
                       weight_decay=float(t.weight_decay), chunk_size=int(p.chunk_size),
                       hidden=int(p.hidden), layers=int(p.layers), lora_rank=int(p.lora_rank),
                       lora_alpha=float(p.lora_alpha), seed=int(cfg.seed), device=str(t.device),
                       compile=bool(t.compile), bf16=bool(t.bf16),
                       ckpt_every=int(t.checkpoint_every), warmup_steps=int(t.warmup_steps),
                       grad_clip=float(t.grad_clip), ema_decay=float(t.ema_decay),
                       log_every=int(t.log_every), tensorboard=bool(t.tensorboard),
                       keep_checkpoints=int(t.keep_checkpoints), resume=bool(t.resume),
                       num_workers=int(t.num_workers),
                       release_points=bool(t.get("release_points", False)),
                       object_sizes=bool(t.get("object_sizes", False)),
                       calibrate_release=bool(t.get("calibrate_release", False)))


# ------------------------------------------------------------------------------------------ jobs


def run_collect(cfg: Any) -> dict[str, Any]:
    """Collect expert demonstrations for every task of the suite; returns the collection summary.

    A killed run resumes where it stopped when rerun with the same config (see
    :func:`robot_skills.data.collect.collect_demos`).

    Raises:
        RuntimeError: if no demonstration at all could be recorded, or another rs-collect is
            writing the same ``demos.hdf5``.
        PermissionError / OSError: ``run_dir`` cannot be written (before any episode runs).
    """
    from robot_skills.data.collect import NoiseConfig, collect_demos

    check_writable(cfg.run_dir)  # fail before any episode runs, not after the last one
    world = build_world(cfg)
    tasks = suite_tasks(cfg, world)
    run = _run_dir(cfg)
    out = run / "demos.hdf5"
    mode = str(cfg.collect.get("mode", "task"))
    if mode not in ("task", "skill_centric"):
        raise SystemExit(f"collect.mode must be 'task' or 'skill_centric', got {mode!r}")
    jobs = None
    if mode == "skill_centric":
        from robot_skills.data.skill_centric import scene_calls, skill_centric_jobs

        t_scan = time.perf_counter()
        scenes = scene_calls(tasks, world, seed=int(cfg.collect.seed))
        jobs = skill_centric_jobs(scenes, int(cfg.collect.demos_per_call),
                                  seed=int(cfg.collect.seed),
                                  region_scale_max=float(cfg.collect.region_scale_max),
                                  max_prefix=int(cfg.collect.max_prefix),
                                  min_per_verb=int(cfg.collect.get("min_per_verb", 0)),
                                  min_per_mode=int(cfg.collect.get("min_per_mode", 0)))
        if int(cfg.collect.demos_per_task) > 0:
            # the suite's own goals are among the targets too: demos_per_task episodes of each
            # task file's goal, seeds after the skill-centric ones
            import numpy as np

            from robot_skills.data.collect import CollectJob

            base = int(cfg.collect.seed) + len(jobs)
            rmax = float(cfg.collect.region_scale_max)
            jobs += [CollectJob(str(p), base + k * int(cfg.collect.demos_per_task) + i,
                                float(np.random.default_rng([base + k * 1000 + i, 17]).uniform(
                                    1.0, rmax)))
                     for k, p in enumerate(tasks) for i in range(int(cfg.collect.demos_per_task))]
        for sc in scenes:
            verbs = sorted({c.skill for c in sc.calls})
            print(f"scene {sc.label} ({len(sc.task_paths)} file(s)): {len(sc.calls)} grounded "
                  f"calls of {len(verbs)} verbs ({', '.join(verbs)}); "
                  f"{len(sc.excluded)} not plannable")
        n_task = sum(1 for j in jobs if not j.target)
        print(f"skill-centric collection: {len(jobs) - n_task} episodes of grounded calls over "
              f"{len(scenes)} scene(s) (grounded in {time.perf_counter() - t_scan:.1f} s)"
              + (f" + {n_task} episodes of the suite's own goals" if n_task else ""))
    summary = collect_demos(tasks, out, int(cfg.collect.demos_per_task), jobs=jobs,
                            make_world=world, make_experts=_build(cfg.collect.experts),
                            seed=int(cfg.collect.seed),
                            noise=NoiseConfig(float(cfg.collect.noise_std),
                                              float(cfg.collect.noise_prob)),
                            max_steps=int(cfg.suite.max_episode_steps),
                            max_replans=int(cfg.collect.max_replans), workers=int(cfg.workers),
                            region_scale_max=float(cfg.collect.region_scale_max),
                            env_args={"suite": str(cfg.suite.name), "collect_mode": mode},
                            image_codec=str(cfg.collect.get("image_codec", "gzip")),
                            finish_calls=bool(cfg.collect.get("finish_calls", False)))
    atomic_write_json(run / "collect_summary.json", summary, sort_keys=False)
    rates = [v["expert_success_rate"] for v in summary["tasks"].values()]
    steps = sum(e["steps"] for v in summary["tasks"].values() for e in v["episodes"]
                if e["success"])
    if jobs is None:
        print(f"collected {summary['demos']} demos -> {out}; expert success "
              f"{100 * sum(rates) / max(1, len(rates)):.1f}% over {len(rates)} tasks")
    else:
        calls = summary.get("calls", {})
        ok = sum(e["success"] for v in summary["tasks"].values() for e in v["episodes"])
        partial = sum(1 for v in summary["tasks"].values() for e in v["episodes"]
                      if not e["success"] and e.get("kept_sub_goals", 0) > 0)
        failing = sorted(c for c, v in calls.items() if v["successes"] == 0)
        print(f"collected {summary['demos']} demos -> {out}; expert success "
              f"{100 * ok / max(1, len(jobs)):.1f}% over {len(jobs)} episodes ({len(calls)} "
              f"grounded calls as targets; {partial} failed episodes kept up to their last "
              "sub-goal reached)" + (f"; never reached as a target: {', '.join(failing[:8])}"
                                     + (" ..." if len(failing) > 8 else "") if failing else ""))
    print(f"data budget ({mode}): {summary['demos']} demos, {steps} control steps, "
          f"{summary['wall_s']:.0f} s collection")
    not_built = [(task, e["seed"]) for task, v in summary["tasks"].items()
                 for e in v["episodes"] if str(e["reason"]).startswith("world_error")]
    if not_built:
        raise SystemExit(f"rs-collect: {len(not_built)} episode(s) could not be built, e.g. "
                         f"{not_built[0][0]} seed {not_built[0][1]} (see "
                         f"{run / 'collect_summary.json'}); the demos that ran are in {out}")
    return summary


def run_train(cfg: Any) -> Path:
    """Train the skill library (and, with ``baseline=true`` or ``eval.policy=monolithic``, the
    per-task baselines).

    The library is built beside ``<run_dir>/skills`` and swapped in only when complete (see
    :func:`robot_skills.training.trainer.train_skill_library`).

    Raises:
        SystemExit: if the run has no demonstrations.
        PermissionError / OSError: ``run_dir`` cannot be written (before any training).
        RuntimeError: another rs-train is writing the same library.
    """
    from robot_skills.skills.library import task_conditioning
    from robot_skills.training.trainer import train_skill_library, train_task_policy

    check_writable(cfg.run_dir)
    run = _run_dir(cfg)
    demos = run / "demos.hdf5"
    if not demos.is_file():
        raise SystemExit(f"no demonstrations at {demos}: run rs-collect first")
    tcfg = _train_config(cfg)
    lib = run / "skills"
    if cfg.policy.get("kind", "state") == "visuomotor":
        # image-based skills (policy=visuomotor): one network over the cameras + proprioception
        from robot_skills.training.visuomotor import VisuomotorTrainConfig, train_visuomotor

        vlib = train_visuomotor([demos], run / "skills_visuomotor", tcfg,
                                VisuomotorTrainConfig.from_mapping(_plain(cfg.policy.visuomotor)))
        print(f"visuomotor skills -> {vlib}")
        return vlib
    extra = [Path(p) for p in (cfg.training.get("extra_demos") or [])]
    missing = [str(p) for p in extra if not p.is_file()]
    if missing:
        raise SystemExit(f"training.extra_demos: no such file(s): {missing}")
    if cfg.training.skill_library:
        lib = train_skill_library([demos, *extra], lib, tcfg)
        print(f"skill library -> {lib}")
        report_coverage(cfg, [demos, *extra], lib)
    if cfg.eval.policy == "monolithic" or cfg.get("baseline", False):
        # Same demonstrations as the skills (the data budget); each task policy sees only its own
        # task's demos, so it gets proportionally fewer optimisation steps.
        bcfg = dataclasses.replace(tcfg, steps=int(cfg.training.baseline_steps))
        for task in suite_tasks(cfg):
            train_task_policy([demos], run / "task_policies", task.stem,
                              task_conditioning(task), bcfg, task=task.stem)
        print(f"monolithic baselines -> {run / 'task_policies'}")
    return lib


def report_coverage(cfg: Any, demos: Sequence[Path], lib: Path) -> dict[str, Any]:
    """Print per-skill coverage of the ``demos`` files (grounded calls x start kinds) and, with
    ``training.held_in_calls > 0``, per-skill success of the library ``lib`` on held-in calls;
    written to ``<run_dir>/skill_coverage.json``.

    Raises:
        FileNotFoundError / ValueError: a library that does not load (before any episode runs).
    """
    from robot_skills.data.skill_centric import coverage_from_hdf5, format_coverage
    from robot_skills.evaluation.skill_eval import evaluate_held_in, held_in_jobs

    cov = coverage_from_hdf5(list(demos))
    out: dict[str, Any] = {"coverage": cov}
    n = int(cfg.training.get("held_in_calls", 0))
    success = None
    jobs = []
    if n > 0:
        try:
            jobs = held_in_jobs(list(demos), calls_per_skill=n, seed=int(cfg.eval.seed) + 90_000)
        except ValueError as e:  # e.g. demos imported from rosbags carry no task file
            print(f"held-in calls skipped: {e}")
    if jobs:
        factory = _build(cfg.eval.skills.learned)
        factory(Path(jobs[0].task_path))  # the library loads before any episode runs
        res = evaluate_held_in(jobs, make_world=build_world(cfg), make_skills=factory,
                               planner=build_planner(cfg),
                               max_steps=int(cfg.suite.max_episode_steps),
                               workers=int(cfg.workers))
        success = res["skills"]
        out["held_in"] = res
    print("per-skill coverage (grounded calls x start kinds) and success on held-in calls:")
    print(format_coverage(cov, success))
    atomic_write_json(_run_dir(cfg) / "skill_coverage.json", out, sort_keys=False)
    return out


def _eval_dir(cfg: Any, policy: str) -> Path:
    """``<run_dir>/eval_<policy>``; under ``--multirun``, inside the job's sweep directory."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return Path(hc.runtime.output_dir) / f"eval_{policy}"
    except ValueError:  # not inside a @hydra.main application (compose API, tests)
        pass
    return _run_dir(cfg) / f"eval_{policy}"


def run_eval(cfg: Any, policy: str | None = None, out_dir: Path | None = None) -> dict[str, Any]:
    """Run the benchmark with ``policy`` (learned | expert | monolithic) and print the table.

    The skill set is loaded once here before any episode runs, so a missing or tampered library
    fails the command instead of counting as failed episodes. Results go to ``out_dir``
    (default ``<run_dir>/eval_<policy>``).

    Raises:
        SystemExit: on an unknown policy. FileNotFoundError / ValueError: a library that does
            not load.
    """
    from robot_skills.evaluation.html_report import REPORT_NAME, write_html
    from robot_skills.evaluation.perturbations import load_perturbation_suite
    from robot_skills.evaluation.report import print_table
    from robot_skills.evaluation.runner import BenchmarkRunner
    from robot_skills.execution.pool import use_backend

    policy = policy or str(cfg.eval.policy)
    if policy not in cfg.eval.skills:
        raise SystemExit(f"eval.policy must be one of {sorted(cfg.eval.skills)}, got {policy!r}")
    world = build_world(cfg)
    tasks = suite_tasks(cfg, world)
    factory = _build(cfg.eval.skills[policy])
    kwargs: dict[str, Any] = {}
    if policy == "monolithic":
        for t in tasks:  # every task's policy loads before anything moves
            factory(t)
        kwargs.update(mode="monolithic", make_task_policy=factory)
    else:
        skill_set = factory(tasks[0])
        print(f"skills ({policy}): {', '.join(skill_set.names())}")
        kwargs.update(make_skills=factory, planner=build_planner(cfg))
    perturbations = (load_perturbation_suite(Path(cfg.eval.perturbations))
                     if cfg.eval.perturbations else None)
    if cfg.eval.get("paraphrases", False):
        # the language axis: each task planned from its instruction, and under a perturbation
        # named `paraphrase` from one of the project's paraphrases (docs/language.md)
        from robot_skills.planning.language import ParaphraseInstructions

        kwargs["instructions"] = ParaphraseInstructions(plan_from_language=True)
    retract = str(cfg.eval.get("retract", "off")).lower()  # values checked with the config
    if retract not in ("off", "false") and policy != "monolithic":
        from robot_skills.execution.retract import RetractConfig

        kwargs["retract"] = RetractConfig(when_holding=retract == "always")
    runner = BenchmarkRunner(make_world=world, max_replans=int(cfg.eval.max_replans),
                             max_steps=int(cfg.suite.max_episode_steps), workers=int(cfg.workers),
                             video=bool(cfg.eval.video), **kwargs)
    out = out_dir if out_dir is not None else _eval_dir(cfg, policy)
    check_writable(out)  # fail before any episode runs, not after the last one
    # eval.workers=ray: the runner's worker pool sends every episode to Ray as a remote task
    # (robot_skills.execution.pool); results are merged by task, condition and seed either way.
    backend = str(cfg.eval.get("workers", "local"))
    with use_backend(backend, cfg.eval.get("ray_address") if backend == "ray" else None):
        results = runner.run_suite(tasks, int(cfg.eval.episodes_per_task),
                                   base_seed=int(cfg.eval.seed), perturbations=perturbations,
                                   out_dir=out, config=_plain(cfg))
    print_table(results)
    print(f"results -> {out / 'results.json'}")
    print(f"report  -> {write_html(results, out / REPORT_NAME, run_dir=out)}")
    problem = incomplete_run(results)
    if problem:
        raise SystemExit(f"rs-eval: {problem} (see {out / 'report.md'})")
    return results


def incomplete_run(results: dict[str, Any]) -> str:
    """A one-line description of what the benchmark could not run, or ``""`` when it ran it all.

    Skipped tasks, and episodes that did not run (world not built, simulation invalid, harness
    error) in the unperturbed condition, make a run incomplete: the command then exits non-zero
    after writing its results for what did run. Under a perturbation, an episode whose world
    cannot be built (``status="not_built"``, e.g. no free spot for five distractors) is a measured
    outcome of that perturbation, counted apart from success and failure in the results; only
    perturbed episodes that went invalid or hit a harness error make the run incomplete.
    """
    parts = []
    if results.get("skipped_tasks"):
        parts.append(f"{len(results['skipped_tasks'])} task(s) skipped "
                     f"({', '.join(sorted(results['skipped_tasks']))})")
    not_run = results["suite"].get("n_not_run", 0)
    for p in results["perturbations"].values():
        s = p["suite"]
        not_run += s.get("n_not_run", 0) - s.get("n_not_built", 0)
    if not_run:
        parts.append(f"{not_run} episode(s) did not run")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------- commands


def _peak_rss_gib() -> float:
    """Peak resident memory of this process and its (waited-for) children, GiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / (1024 ** 2)  # ru_maxrss is KiB on Linux


def run_compositions(cfg: Any) -> dict[str, Any]:
    """Composite tasks nobody demonstrated, run with the library just trained: the tasks
    ``suite.compose_tasks`` of ``suite.compose_path`` (``suite.compose_episodes`` seeded episodes
    each), results in ``<run_dir>/eval_learned_compose/``.

    Raises:
        SystemExit: a named task not runnable, or an incomplete run (as :func:`run_eval`).
    """
    from omegaconf import OmegaConf, open_dict

    sub = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(sub):
        sub.suite.name = f"{cfg.suite.name}_compositions"
        sub.suite.path = str(cfg.suite.compose_path)
        sub.suite.tasks = list(cfg.suite.compose_tasks)
        sub.suite.compose_path = None
        sub.eval.episodes_per_task = int(cfg.suite.compose_episodes)
        sub.eval.perturbations = None
        sub.eval.policy = "learned"
    print(f"\ncomposition: {len(sub.suite.tasks)} composite task(s) of {sub.suite.path} that no "
          "demonstration shows, with the same library")
    return run_eval(sub, out_dir=_run_dir(cfg) / "eval_learned_compose")


def run_quickstart(cfg: Any) -> dict[str, Any]:
    """The main job: collect -> train -> eval (then, when the suite names composite tasks, those
    with the same library), printing wall time per stage and peak memory."""
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    run_collect(cfg)
    stages["collect"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    run_train(cfg)
    stages["train"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    results = run_eval(cfg)
    stages["eval"] = time.perf_counter() - t2
    if cfg.suite.get("compose_path") and cfg.suite.get("compose_tasks"):
        t3 = time.perf_counter()
        results["compositions"] = run_compositions(cfg)
        stages["compose"] = time.perf_counter() - t3
    stages["total"] = time.perf_counter() - t0
    peak = _peak_rss_gib()
    print("wall time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))
    print(f"peak memory (largest process): {peak:.2f} GiB")
    atomic_write_json(_run_dir(cfg) / "quickstart_timing.json",
                      {"stages_s": stages, "peak_rss_gib": peak}, sort_keys=False)
    return results


JOBS = {"collect": run_collect, "train": run_train, "eval": run_eval,
        "quickstart": run_quickstart}
"""Verb -> job function ``job(cfg)``."""


def _hydra_app(job: str) -> Any:
    """A ``@hydra.main`` application running ``JOBS[job]`` on the composed config."""
    import hydra

    from robot_skills.config import check_config, register_configs

    register_configs()

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def app(cfg: Any) -> Any:
        check_config(cfg)
        return JOBS[job](cfg)

    return app


def _main(job: str, argv: Sequence[str] | None) -> Any:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    return _hydra_app(job)()


def collect_main(argv: Sequence[str] | None = None) -> None:
    """``rs-collect [key=value ...]``."""
    _main("collect", argv)


def train_main(argv: Sequence[str] | None = None) -> None:
    """``rs-train [key=value ...]``; ``resume=true|false`` is short for ``training.resume=...``
    (true, the default: each stage continues from its newest valid checkpoint; false: start
    afresh). Under ``torchrun --nproc_per_node=N -m robot_skills.cli train training.resume=...``
    it trains with DDP (that entry point takes the full key)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _main("train", [f"training.{a}" if a.startswith("resume=") else a for a in argv])


def eval_main(argv: Sequence[str] | None = None) -> None:
    """``rs-eval [key=value ...]`` (``--multirun`` sweeps, e.g. ``eval.seed=0,1``)."""
    _main("eval", argv)


def quickstart_main(argv: Sequence[str] | None = None) -> None:
    """``rs-quickstart [key=value ...]``: the main job."""
    _main("quickstart", argv)


def fetch_libero_main(argv: Sequence[str] | None = None) -> None:
    """``rs-fetch-libero``: download LIBERO's task files into the cache and print where."""
    from robot_skills.tasks.suites import fetch_libero_bddl

    print(fetch_libero_bddl())


def report_main(argv: Sequence[str] | None = None) -> None:
    """``rs-report <run_dir> [--max-video-mb N]``: (re)write ``<run_dir>/report.html`` from
    ``<run_dir>/results.json`` (a run's ``eval_<policy>`` directory) and print its path.

    Raises:
        SystemExit: (status 2) when ``run_dir`` holds no readable results file, naming it.
    """
    import argparse

    from robot_skills.evaluation.html_report import DEFAULT_MAX_VIDEO_BYTES, write_run_report

    parser = argparse.ArgumentParser(
        prog="rs-report", description="Write a run's self-contained HTML report (report.html) "
        "from its results.json: success table with 95% CIs, subgoal progress, success per "
        "perturbation, episodes not built, and the rollout videos embedded.")
    parser.add_argument("run_dir", type=Path, help="directory holding results.json "
                        "(e.g. outputs/libero_goal/eval_expert)")
    parser.add_argument("--max-video-mb", type=float, default=DEFAULT_MAX_VIDEO_BYTES / 2**20,
                        help="cap on the total size of embedded videos, MiB (default "
                        "%(default)g); videos past it are listed, not embedded")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.max_video_mb >= 0:
        parser.error(f"--max-video-mb must be >= 0, got {args.max_video_mb}")
    try:
        path = write_run_report(args.run_dir, max_video_bytes=int(args.max_video_mb * 2**20))
    except (FileNotFoundError, ValueError) as e:
        print(f"rs-report: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    print(path)


def main(argv: Sequence[str] | None = None) -> None:
    """``robot-skills <collect|train|eval|quickstart|fetch-libero> [key=value ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*JOBS, "fetch-libero"):
        print(main.__doc__)
        raise SystemExit(2)
    if argv[0] == "fetch-libero":
        fetch_libero_main(argv[1:])
    else:
        _main(argv[0], argv[1:])


if __name__ == "__main__":  # torchrun -m robot_skills.cli train ...
    main()
