"""Whole-LIBERO expert evaluation speed: episodes/s per suite (issue 8's timing target).

Runs ``rs-eval eval.policy=expert suite=<suite>`` once per suite (scripted experts composed by the
symbolic planner, no video), one after the other, and prints each suite's episodes, mean success,
wall time and episodes/s, then the totals. LIBERO's own evaluation is commonly reported at about
40 s per episode; the figure here is for this project's proxy scenes and scripted experts.

    python benchmarks/libero_expert_eval.py                       # 130 tasks x 20 episodes
    python benchmarks/libero_expert_eval.py --episodes 2 --suites libero_10 --workers 2

Exits non-zero if any ``rs-eval`` run fails (a task skipped, an episode not run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITES = ("libero_goal", "libero_spatial", "libero_object", "libero_10", "libero_90")


def run_suite(suite: str, episodes: int, workers: int, out: Path) -> dict:
    """Run one suite's expert evaluation in a subprocess; return its ``results.json`` plus
    ``command_wall_s`` (seconds, including process start-up).

    Raises:
        RuntimeError: if ``rs-eval`` exits non-zero (its output tail is in the message).
    """
    exe = shutil.which("rs-eval")
    cmd = ([exe] if exe else [sys.executable, "-c", "from robot_skills.cli import eval_main; "
                                                   "eval_main()"])
    cmd += ["eval.policy=expert", f"suite={suite}", f"eval.episodes_per_task={episodes}",
            "eval.video=false", f"workers={workers}", f"run_dir={out / suite}"]
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{(p.stdout + p.stderr)[-3000:]}")
    res = json.loads((out / suite / "eval_expert" / "results.json").read_text())
    res["command_wall_s"] = wall
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--episodes", type=int, default=20, help="episodes per task (default 20)")
    ap.add_argument("--suites", nargs="+", default=list(SUITES), choices=SUITES)
    ap.add_argument("--workers", type=int, default=1, help="episode worker processes")
    ap.add_argument("--out", type=Path, default=None, help="run directories (default: a temp dir)")
    a = ap.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="rs_expert_eval_"))
    print(f"{'suite':<16}{'tasks':>6}{'episodes':>10}{'success %':>11}{'wall s':>9}{'episodes/s':>12}")
    tot_eps = tot_wall = 0.0
    for suite in a.suites:
        r = run_suite(suite, a.episodes, a.workers, out)
        s, wall = r["suite"], r["metadata"]["wall_time_s"]
        n = s["n_requested"]
        tot_eps += n
        tot_wall += wall
        print(f"{suite:<16}{s['n_tasks']:>6}{n:>10}{100 * s['mean_success']:>11.1f}{wall:>9.1f}"
              f"{n / wall:>12.2f}", flush=True)
    print(f"{'all':<16}{'':>6}{int(tot_eps):>10}{'':>11}{tot_wall:>9.1f}{tot_eps / tot_wall:>12.2f}")
    print(f"(workers={a.workers}; wall = the runner's wall_time_s; results under {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
