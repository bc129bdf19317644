"""Language entry points: ``rs-ground`` (grounding accuracy on task files) and ``rs-run`` (one
instruction, planned and executed in the simulator).

* ``rs-ground suite=<suite|path|libero> [paraphrases=true] [min_accuracy=0.95]`` grounds every
  task file's ``(:language ...)`` in its own scene and compares the goal atoms with the file's
  ``(:goal ...)``; prints each mismatch, the paraphrase accuracy (this project's paraphrases,
  :data:`~robot_skills.planning.language.PARAPHRASES_FILE`) for the suites it covers, and the
  accuracy last. ``suite=libero`` is LIBERO's five suites (130 files). Exits non-zero below
  ``min_accuracy`` (default 0: report only).
* ``rs-run "<instruction>" task=<file> [planner=language|vlm] [eval.policy=learned|expert]
  [key=value ...]`` plans the instruction with the configured backend (default ``language``),
  executes it in the simulator with the library (``eval.skills.<policy>``, the learned library
  by default) through the closed-loop executor, prints the plan and the outcome and writes a
  video (``<run_dir>/rs_run/<task>.mp4`` unless ``video=<path>``). Other ``key=value`` pairs are
  Hydra overrides of ``configs/config.yaml``.
* ``rs-run suite=libero_goal compare=true [episodes=N] [eval.policy=expert]`` is the acceptance
  measurement: the suite planned from the files' goals (symbolic), from the files' instructions
  and from their paraphrases (language), through the benchmark runner; prints the three success
  rates.

Both commands exit non-zero with a one-line error when they cannot do what was asked.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ground_main", "run_main", "ground_suite", "run_instruction", "compare_suite"]

LIBERO_ALL = ("libero_goal", "libero_spatial", "libero_object", "libero_10", "libero_90")


def _split_args(argv: Sequence[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """(positional words, own keys, Hydra overrides) of a command line."""
    own_keys = {"suite", "paraphrases", "min_accuracy", "task", "video", "compare", "episodes",
                "backend", "seed"}
    pos, own, rest = [], {}, []
    for a in argv:
        if "=" not in a or a.startswith(("'", '"')):
            pos.append(a)
            continue
        k, v = a.split("=", 1)
        if k in own_keys:
            own[k] = v
        else:
            rest.append(a)
    return pos, own, rest


def _truthy(v: str | None, default: bool) -> bool:
    if v is None:
        return default
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"expected true/false, got {v!r}")


# ------------------------------------------------------------------------------ rs-ground
def ground_suite(suite: str, paraphrases: bool = True, out=print) -> dict[str, Any]:
    """Ground every task file of ``suite`` and (optionally) its paraphrases; print mismatches.

    Args:
        suite: a suite name, a directory of ``.bddl`` files, or ``"libero"`` (LIBERO's five).
        paraphrases: also ground this project's paraphrases of the suites it covers.
        out: where lines go (``print``).

    Returns:
        ``{"n", "exact", "accuracy", "mismatches": [...], "paraphrases": {"n", "exact",
        "consistent", ...}, "encoder_load_s", "wall_s"}``; ``consistent`` counts paraphrases that
        ground like the original instruction.

    Raises:
        robot_skills.tasks.suites.SuiteNotFoundError: for an unknown suite.
    """
    from robot_skills.domain.predicates import format_atom
    from robot_skills.planning.language import (
        GroundingError,
        LanguageGrounder,
        default_encoder,
        load_paraphrases,
        scene_from_bddl,
    )
    from robot_skills.tasks.bddl import load_bddl
    from robot_skills.tasks.suites import resolve_suite

    t0 = time.perf_counter()
    enc = default_encoder()
    grounder = LanguageGrounder(enc)
    suites = list(LIBERO_ALL) if suite == "libero" else [suite]
    n = exact = 0
    mismatches: list[dict[str, Any]] = []
    originals: dict[tuple[str, str], frozenset | None] = {}

    def fmt(goal) -> str:
        return " ".join(format_atom(a) for a in sorted(goal))

    for s in suites:
        directory = resolve_suite(s)
        for f in sorted(Path(directory).glob("*.bddl")):
            task = load_bddl(f)
            n += 1
            try:
                got: frozenset | None = grounder.ground(task.language, scene_from_bddl(task)).goal
                err = ""
            except GroundingError as e:
                got, err = None, str(e)
            originals[(Path(directory).name, f.stem)] = got
            if got == frozenset(task.goal):
                exact += 1
                continue
            mismatches.append({"file": f"{Path(directory).name}/{f.name}",
                               "instruction": task.language, "want": fmt(task.goal),
                               "got": fmt(got) if got is not None else f"error: {err}"})
            out(f"MISMATCH {Path(directory).name}/{f.stem}\n  instruction: {task.language}\n"
                f"  file goal:   {fmt(task.goal)}\n"
                f"  grounded:    {fmt(got) if got is not None else 'error: ' + err}")
    para: dict[str, Any] = {"n": 0, "exact": 0, "consistent": 0, "mismatches": []}
    if paraphrases:
        data = load_paraphrases()
        for s in suites:
            name = Path(resolve_suite(s)).name
            for stem, entry in data.get(name, {}).items():
                task = load_bddl(Path(resolve_suite(s)) / f"{stem}.bddl")
                for p in entry["paraphrases"]:
                    para["n"] += 1
                    try:
                        got = grounder.ground(p, scene_from_bddl(task)).goal
                    except GroundingError as e:
                        got = None
                        out(f"PARAPHRASE ERROR {name}/{stem}: {p!r}: {e}")
                    para["exact"] += got == frozenset(task.goal)
                    ok = got is not None and got == originals.get((name, stem))
                    para["consistent"] += ok
                    if not ok:
                        para["mismatches"].append({"task": f"{name}/{stem}", "paraphrase": p,
                                                   "got": fmt(got) if got else None})
                        out(f"PARAPHRASE MISMATCH {name}/{stem}: {p!r} -> "
                            f"{fmt(got) if got else 'error'}")
        if para["n"]:
            out(f"paraphrases: {para['consistent']}/{para['n']} ground like the original "
                f"instruction ({100 * para['consistent'] / para['n']:.1f} %); "
                f"{para['exact']}/{para['n']} reproduce the file's goal "
                f"({100 * para['exact'] / para['n']:.1f} %)")
    acc = exact / n if n else 0.0
    wall = time.perf_counter() - t0
    out(f"encoder load {enc.load_seconds:.1f} s; {n} files grounded in {wall:.1f} s")
    out(f"accuracy: {exact}/{n} = {100 * acc:.1f} % of the task files' goals reproduced exactly")
    return {"n": n, "exact": exact, "accuracy": acc, "mismatches": mismatches,
            "paraphrases": para, "encoder_load_s": enc.load_seconds, "wall_s": wall}


def ground_main(argv: Sequence[str] | None = None) -> None:
    """``rs-ground suite=<suite> [paraphrases=true] [min_accuracy=0.0]``."""
    pos, own, rest = _split_args(list(sys.argv[1:] if argv is None else argv))
    if pos or rest:
        raise SystemExit(f"rs-ground: unknown arguments {pos + rest}; usage: rs-ground "
                         f"suite=<suite|dir|libero> [paraphrases=true] [min_accuracy=0.95]")
    res = ground_suite(own.get("suite", "libero_goal"), _truthy(own.get("paraphrases"), True))
    floor = float(own.get("min_accuracy", 0.0))
    if res["accuracy"] < floor:
        raise SystemExit(f"rs-ground: accuracy {res['accuracy']:.3f} below {floor}")


# ------------------------------------------------------------------------------ rs-run
def _write_video(path: Path, frames: list, fps: float) -> Path:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(str(path), frames, fps=fps, macro_block_size=1)
    return path


def run_instruction(cfg: Any, instruction: str, task: Path, video: Path | None = None,
                    seed: int = 0, out=print) -> dict[str, Any]:
    """Plan ``instruction`` in ``task`` with ``cfg.planner`` and execute it with
    ``cfg.eval.skills[cfg.eval.policy]`` in ``cfg.world``; print the plan and the outcome.

    The executor's goal is the instruction's grounded goal (the language grounder), so an
    instruction other than the file's own is carried out and judged on its own terms; whether
    the file's goal holds at the end is reported too. With the ``vlm`` backend the camera's
    current images go with each request; if the instruction cannot be grounded offline the
    file's goal is what its plans are checked against.

    Returns:
        ``{"instruction", "goal", "plans", "success", "task_goal_holds", "reason", "steps",
        "video"}``.

    Raises:
        SystemExit: the library or the world cannot be built, or the instruction cannot be
            grounded/planned (the message names why).
    """
    from robot_skills.cli import _build, build_planner, build_world
    from robot_skills.domain.predicates import format_atom
    from robot_skills.execution.executor import Executor
    from robot_skills.planning.language import GroundingError, LanguageGrounder, scene_from_bddl
    from robot_skills.planning.symbolic import NoPlanError

    policy = str(cfg.eval.policy)
    if policy not in cfg.eval.skills or policy == "monolithic":
        raise SystemExit(f"rs-run: eval.policy must name a skill library "
                         f"({sorted(k for k in cfg.eval.skills if k != 'monolithic')}), "
                         f"got {policy!r}")
    make_world = build_world(cfg)
    skills = _build(cfg.eval.skills[policy])(task)
    planner = build_planner(cfg)(skills.specs)
    if not hasattr(planner, "set_instruction"):
        raise SystemExit(f"rs-run: planner {type(planner).__name__} cannot plan from language; "
                         f"use planner=language or planner=vlm")
    planner.set_instruction(instruction, task)
    world = make_world(task, seed, None)
    world.robot.connect()
    try:
        world.robot.reset(seed=seed)
        problem = world.symbolic_problem()
        try:
            if hasattr(planner, "ground"):
                goal = planner.ground(problem).goal
            else:
                goal = LanguageGrounder().ground(
                    instruction, scene_from_bddl(task, problem.entities)).goal
        except GroundingError as e:
            if hasattr(planner, "ground"):
                raise SystemExit(f"rs-run: {e}") from e
            goal = frozenset(problem.goal)
            out(f"(instruction not grounded offline: {e}; checking plans against the file's goal)")
        if hasattr(planner, "set_camera"):
            planner.set_camera(lambda: dict(world.robot.observe().images or {}))
        out(f"instruction: {instruction}")
        out(f"goal:        {' '.join(format_atom(a) for a in sorted(goal))}")
        frames: list = []

        def on_step(step, obs, action):
            render = getattr(world, "render", None)
            if callable(render):
                frames.append(render())

        ex = Executor(world, skills, planner, max_replans=int(cfg.eval.max_replans),
                      max_steps=int(cfg.suite.max_episode_steps), on_step=on_step)
        try:
            result = ex.run(goal=goal)
        except NoPlanError as e:
            raise SystemExit(f"rs-run: no plan: {e}") from e
        task_ok = bool(world.success())
    finally:
        world.robot.disconnect()
    for i, p in enumerate(result.plans):
        out(f"plan {i}: [{', '.join(p)}]")
    for c in result.calls:
        out(f"  {c.skill}({', '.join(c.args)}): {c.outcome}")
    for m in result.messages:
        out(f"  note: {m}")
    out(f"outcome: {'SUCCESS' if result.success else 'FAILURE'} ({result.reason}, "
        f"{result.steps} steps); the task file's goal {'holds' if task_ok else 'does not hold'}")
    vpath = None
    if frames:
        vpath = video or Path(cfg.run_dir) / "rs_run" / f"{task.stem}.mp4"
        _write_video(Path(vpath), frames, 1.0 / float(world.robot.control_period))
        out(f"video: {vpath}")
    return {"instruction": instruction, "goal": sorted(goal), "plans": result.plans,
            "success": bool(result.success), "task_goal_holds": task_ok,
            "reason": result.reason, "steps": result.steps,
            "video": str(vpath) if vpath else None}


def compare_suite(cfg: Any, episodes: int, out=print) -> dict[str, float]:
    """Success of the suite planned from the files' goals vs. from their instructions and their
    paraphrases (the language backend), with ``cfg.eval.skills[cfg.eval.policy]``.

    Returns:
        ``{"goal": rate, "instruction": rate, "paraphrase": rate}`` over episodes that ran.
    """
    import functools

    from robot_skills.cli import _build, suite_tasks
    from robot_skills.evaluation.perturbations import PerturbationSpec
    from robot_skills.evaluation.runner import BenchmarkRunner
    from robot_skills.planning.language import LanguagePlanner, ParaphraseInstructions
    from robot_skills.planning.symbolic import SymbolicPlanner

    world = _build(cfg.world)
    tasks = suite_tasks(cfg, world)
    skills = _build(cfg.eval.skills[str(cfg.eval.policy)])
    common = dict(make_world=world, make_skills=skills, max_replans=int(cfg.eval.max_replans),
                  max_steps=int(cfg.suite.max_episode_steps), workers=int(cfg.workers),
                  video=False)
    base = BenchmarkRunner(planner=functools.partial(SymbolicPlanner, max_depth=8), **common)
    r_goal = base.run_suite(tasks, episodes, base_seed=int(cfg.eval.seed))
    lang = BenchmarkRunner(planner=functools.partial(LanguagePlanner, max_depth=8),
                           instructions=ParaphraseInstructions(), **common)
    r_lang = lang.run_suite(tasks, episodes, base_seed=int(cfg.eval.seed),
                            perturbations=[PerturbationSpec("paraphrase")])

    def rate(res, cond):
        eps = [e for e in res["episodes"] if e["perturbation"] == cond
               and e["status"] in ("success", "failure")]
        for e in eps:
            if not e["success"]:
                out(f"  failed [{cond}] {e['task']} seed {e['seed']}: "
                    f"{e.get('instruction', '')!r} {e['reason']}")
        return sum(e["success"] for e in eps) / len(eps) if eps else float("nan"), len(eps)

    g, ng = rate(r_goal, "unperturbed")
    i, ni = rate(r_lang, "unperturbed")
    p, np_ = rate(r_lang, "paraphrase")
    out(f"from the files' goals (symbolic):    {100 * g:.1f} % of {ng}")
    out(f"from the files' instructions:        {100 * i:.1f} % of {ni}")
    out(f"from paraphrases of the instructions: {100 * p:.1f} % of {np_}")
    return {"goal": g, "instruction": i, "paraphrase": p}


def run_main(argv: Sequence[str] | None = None) -> None:
    """``rs-run "<instruction>" task=<file> [planner=language|vlm] [key=value ...]`` or
    ``rs-run suite=<suite> compare=true [episodes=N] [key=value ...]``."""
    from robot_skills.cli import load_config

    pos, own, rest = _split_args(list(sys.argv[1:] if argv is None else argv))
    if not any(r.startswith("planner=") for r in rest):
        rest.append(f"planner={own.get('backend', 'language')}")
    if "suite" in own:
        rest.append(f"suite={own['suite']}")
    cfg = load_config(rest)
    if _truthy(own.get("compare"), False):
        compare_suite(cfg, int(own.get("episodes", 2)))
        return
    if len(pos) != 1 or "task" not in own:
        raise SystemExit('usage: rs-run "<instruction>" task=<file.bddl> [planner=language|vlm] '
                         '[eval.policy=learned|expert] [video=<path>] [key=value ...]')
    task = Path(own["task"])
    if not task.is_file():
        raise SystemExit(f"rs-run: task file {task} not found")
    res = run_instruction(cfg, pos[0], task, Path(own["video"]) if "video" in own else None,
                          seed=int(own.get("seed", 0)))
    if not res["success"]:
        raise SystemExit(f"rs-run: the instruction was not carried out ({res['reason']})")
