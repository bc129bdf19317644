"""Symbolic planning time over every goal of LIBERO's 130 task files, and fail-fast time (issue 9).

For each ``.bddl`` file of the five suites (``rs-fetch-libero`` fetches them; found through
``robot_skills.tasks.suites.resolve_suite``) the symbolic problem is built from the task file
alone, without simulating: entity tags from the scene's proxy assets (``sim.scene.build_scene``
builds the MjSpec but compiles and steps nothing), the initial state from the file's ``:init``
plus what the simulator's reset makes true (``handempty``; drawers and doors shut unless
``(Open …)``, stoves off unless ``(Turnon …)``, as ``sim.scene._set_articulations``), and the goal
from ``:goal``. A ``SymbolicPlanner`` over all of ``SKILL_SPECS`` plans it; each plan is checked
with ``robot_skills.planning.validate.validate_plan`` (untimed). Times are wall-clock
``time.perf_counter`` around ``planner.plan`` (relevance analysis + grounding + search), the
median of ``--repeats`` runs per file, each with a fresh planner (cold: nothing kept from an
earlier call), garbage collection paused while timing.

Composite goals are timed too: for every two files that share a scene and an initial state
(libero_goal's ten, libero_90's scenes), the conjunction of their goals (the row ``goal pairs``;
some conjunctions cannot hold together, e.g. one bowl on two targets, and must be rejected).

Two fail-fast cases are timed too (``NoPlanError`` expected, with zero search expansions):

* **missing verb, static**: each file's goal with a library lacking every verb that adds the
  predicate of the goal's first atom (e.g. no ``place_on``/``push`` for an ``On`` goal);
* **missing ``close``**: in each file with a drawer or door (the issue's case), the goal "put the
  first graspable object in it and close it" with a library lacking ``close``; the goal atom
  ``(Close d)`` holds now, so only the relevance analysis (the plan would have to open ``d``
  and nothing closes it again) can reject it before search; before that analysis this case
  searched 113,205 nodes (22 s).

Usage::

    python benchmarks/plan_libero.py                  # all 130 files, 5 repeats each
    python benchmarks/plan_libero.py --smoke          # 2 files per suite, 1 repeat
    python benchmarks/plan_libero.py --suites libero_90 --heuristic goal_count --no-relevance
    python benchmarks/plan_libero.py --suites compositions     # the project's composite tasks

Targets (issue 9): every goal planned, overall p99 <= 100 ms; a missing verb reported within
10 ms. Exits 1 if a goal does not plan or a plan fails validation, 2 if a fail-fast case plans or
searches.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robot_skills.domain.predicates import SymbolicProblem
from robot_skills.domain.verbs import SKILL_SPECS, parse_predicate
from robot_skills.planning.symbolic import NoPlanError, SymbolicPlanner
from robot_skills.planning.validate import validate_plan
from robot_skills.tasks.bddl import BddlTask, load_bddl
from robot_skills.tasks.suites import LIBERO_SUITES, resolve_suite


def task_problem(task: BddlTask) -> SymbolicProblem:
    """The symbolic problem of a task file at its initial state, without simulating.

    Entity tags come from the scene's proxy assets (``sim.scene.build_scene``; nothing is
    compiled). The state is the file's ``:init`` plus ``handempty`` and, for every ``openable``
    entity without ``(Open x)``, ``(Close x)``, and for every ``switchable`` one without
    ``(Turnon x)``, ``(Turnoff x)``: what the simulator's reset sets its articulations to.

    Raises:
        sim.assets.UnsupportedCategoryError / sim.scene.SceneError: if the scene cannot be built.
    """
    from sim.scene import build_scene

    _, info = build_scene(task)
    entities = info.entity_tags()
    state = set(task.init) | {("handempty",)}
    for name, tags in entities.items():
        if "openable" in tags and ("open", name) not in state:
            state.add(("close", name))
        if "switchable" in tags and ("turnon", name) not in state:
            state.add(("turnoff", name))
    return SymbolicProblem(entities, frozenset(state), frozenset(task.goal))


def suite_files(suites: Sequence[str], per_suite: int | None = None) -> list[tuple[str, Path]]:
    """``(suite, path)`` of every ``.bddl`` file of ``suites`` (sorted; the first ``per_suite``).

    Raises:
        robot_skills.tasks.suites.SuiteNotFoundError: if a suite cannot be found or fetched.
    """
    out = []
    for s in suites:
        files = sorted(resolve_suite(s).glob("*.bddl"))
        out += [(s, f) for f in (files[:per_suite] if per_suite else files)]
    return out


def _time_plan(make_planner, problem: SymbolicProblem, repeats: int):
    """Median wall time (ms) of ``planner.plan(problem)`` with a fresh planner each run (cold: no
    grounding kept from an earlier call), the last result (plan or error) and its stats."""
    times, result = [], None
    for _ in range(repeats):
        planner = make_planner()
        gc.disable()
        t = time.perf_counter()
        try:
            result = planner.plan(problem)
        except NoPlanError as e:
            result = e
        times.append((time.perf_counter() - t) * 1e3)
        gc.enable()
    return statistics.median(times), result, planner.last_stats


def missing_verb_cases(problem: SymbolicProblem) -> list[tuple[str, dict, SymbolicProblem]]:
    """The fail-fast cases of one file: ``(kind, library specs, problem)``."""
    cases = []
    first = sorted(problem.goal)[0]
    drop = {s.name for s in SKILL_SPECS.values()
            if any(parse_predicate(t)[1][0] == first[0] for t in s.add_effects)}
    cases.append(("static", {k: v for k, v in SKILL_SPECS.items() if k not in drop}, problem))
    ents = problem.entities
    drawers = sorted(n for n, t in ents.items() if "openable" in t and "container" in t
                     and ("close", n) in problem.state)
    objs = sorted(n for n, t in ents.items() if "graspable" in t
                  and not any(a[0] in ("on", "in") and a[2] == n for a in problem.state
                              if len(a) == 3))
    if drawers and objs:
        goal = frozenset({("in", objs[0], drawers[0]), ("close", drawers[0])})
        cases.append(("no_close", {k: v for k, v in SKILL_SPECS.items() if k != "close"},
                      SymbolicProblem(ents, problem.state, goal)))
    return cases


def _pct(xs: Sequence[float]) -> tuple[float, float, float]:
    a = np.asarray(xs, float)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print per-suite and overall p50/p99/max planning times (ms)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suites", nargs="+", default=list(LIBERO_SUITES),
                    help="suite names or directories (default: LIBERO's five; the project's "
                         "`compositions` suite also resolves by name)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per file (median kept)")
    ap.add_argument("--smoke", action="store_true", help="2 files per suite, 1 repeat")
    ap.add_argument("--heuristic", default="landmarks", choices=("landmarks", "goal_count"))
    ap.add_argument("--no-relevance", action="store_true",
                    help="search over every grounded skill (no relevance pruning)")
    ap.add_argument("--verbose", action="store_true", help="one line per file")
    a = ap.parse_args(argv)
    repeats = 1 if a.smoke else max(1, a.repeats)
    files = suite_files(a.suites, 2 if a.smoke else None)
    problems = [(s, f, task_problem(load_bddl(f))) for s, f in files]
    def planner() -> SymbolicPlanner:
        return SymbolicPlanner(SKILL_SPECS, heuristic=a.heuristic, relevance=not a.no_relevance)

    rows: dict[str, list[float]] = {s: [] for s in a.suites}
    planned = {s: 0 for s in a.suites}
    expansions: dict[str, list[int]] = {s: [] for s in a.suites}
    failures = []
    for s, f, p in problems:
        ms, res, st = _time_plan(planner, p, repeats)
        rows[s].append(ms)
        expansions[s].append(st.expansions)
        if isinstance(res, NoPlanError):
            failures.append(f"{s}/{f.name}: {str(res).splitlines()[0]}")
        elif validate_plan(res, p):
            failures.append(f"{s}/{f.name}: plan {res} fails validation: {validate_plan(res, p)}")
        else:
            planned[s] += 1
        if a.verbose:
            print(f"  {s}/{f.name[:60]:<60} {ms:8.2f} ms  {len(getattr(res, 'calls', ()))} calls"
                  f"  {st.expansions} expansions  {st.n_relevant}/{st.n_ground} skills")

    print(f"planner: heuristic={a.heuristic}, relevance pruning={'off' if a.no_relevance else 'on'}"
          f", {repeats} repeat(s) per file (median)")
    print(f"{'suite':<16}{'files':>6}{'planned':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'mean exp':>10}")
    for s in a.suites:
        if rows[s]:
            p50, p99, mx = _pct(rows[s])
            print(f"{s:<16}{len(rows[s]):>6}{planned[s]:>9}{p50:>9.2f}{p99:>9.2f}{mx:>9.2f}"
                  f"{statistics.mean(expansions[s]):>10.1f}")
    every = [x for s in a.suites for x in rows[s]]
    p50, p99, mx = _pct(every)
    n_planned = sum(planned.values())
    print(f"{'all':<16}{len(every):>6}{n_planned:>9}{p50:>9.2f}{p99:>9.2f}{mx:>9.2f}"
          f"{statistics.mean(x for s in a.suites for x in expansions[s]):>10.1f}")
    print(f"target overall p99 <= 100 ms: {'met' if p99 <= 100 else 'NOT met'} ({p99:.2f} ms)")

    # composite goals: every pair of files that share a scene and an initial state
    scenes: dict[tuple, list[SymbolicProblem]] = {}
    for _, _, p in problems:
        key = (tuple(sorted((k, tuple(sorted(v))) for k, v in p.entities.items())),
               tuple(sorted(p.state)))
        scenes.setdefault(key, []).append(p)
    pair_ms: list[float] = []
    pair_out = {"planned": 0, "rejected before search": 0, "search failed": 0}
    for group in scenes.values():
        for p, q in itertools.combinations(group, 2):
            goal = p.goal | q.goal
            if len(goal) == max(len(p.goal), len(q.goal)):
                continue  # one goal contains the other
            pq = SymbolicProblem(p.entities, p.state, goal)
            ms, res, st = _time_plan(planner, pq, repeats)
            pair_ms.append(ms)
            if not isinstance(res, NoPlanError):
                if validate_plan(res, pq):
                    failures.append(f"pair plan {res} fails validation")
                pair_out["planned"] += 1
            elif st.expansions == 0:
                pair_out["rejected before search"] += 1
            else:
                pair_out["search failed"] += 1
    if pair_ms:
        p50, p99, mx = _pct(pair_ms)
        print(f"{'goal pairs':<16}{len(pair_ms):>6}{pair_out['planned']:>9}{p50:>9.2f}{p99:>9.2f}"
              f"{mx:>9.2f}   (same scene and start; "
              + ", ".join(f"{v} {k}" for k, v in pair_out.items()) + ")")

    bad_fast = []
    fast: dict[str, list[float]] = {}
    for s, f, p in problems:
        for kind, specs, q in missing_verb_cases(p):
            ms, res, st = _time_plan(lambda: SymbolicPlanner(specs), q, repeats)
            fast.setdefault(kind, []).append(ms)
            if not isinstance(res, NoPlanError) or st.expansions:
                bad_fast.append(f"{kind} {s}/{f.name}: {res!s:.200} ({st.expansions} expansions)")
    print(f"{'fail-fast case':<16}{'cases':>6}{'0-exp.':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, xs in fast.items():
        p50f, p99f, mxf = _pct(xs)
        n_bad = sum(1 for b in bad_fast if b.startswith(kind + " "))
        print(f"{kind:<16}{len(xs):>6}{len(xs) - n_bad:>9}{p50f:>9.2f}{p99f:>9.2f}{mxf:>9.2f}")
    worst = max((max(xs) for xs in fast.values()), default=0.0)
    print(f"target missing verb reported within 10 ms: {'met' if worst <= 10 else 'NOT met'} "
          f"(max {worst:.2f} ms)")
    for line in failures + bad_fast:
        print("FAIL", line)
    if failures:
        return 1
    return 2 if bad_fast else 0


if __name__ == "__main__":
    sys.exit(main())
