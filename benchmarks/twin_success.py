"""Success of a learned skill library through the whole ROS 2 bridge: ``rs-bridge sim-twin`` (the
MuJoCo twin + the skill executor, over real DDS on loopback, in real time), one attempt per scene
seed.

Each attempt is a task request on ``/robot_skills/task`` with ``reset_scene`` (the twin re-samples
its scene with the next seed) and a step budget; the outcome is the executor's result (success
judged from poses) -- the figure the end-to-end test's retry budget rests on.

Usage::

    python benchmarks/twin_success.py --library RUN/skills [--episodes 20] [--json out.json]

Needs the ``ros`` extra. DDS is confined to this machine and a private ``ROS_DOMAIN_ID``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of ``k`` successes in ``n``."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, c - h), min(1.0, c + h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--library", required=True, help="skill library directory (RUN/skills)")
    ap.add_argument("--task", default=None, help="BDDL file (default: libero_goal "
                    "put_the_bowl_on_the_plate from the project's LIBERO cache)")
    ap.add_argument("--goal", default="(On akita_black_bowl_1 plate_1)")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=400)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from hardware.processes import isolated_ros_env
    from hardware.ros_probe import RosProbe

    task = Path(args.task) if args.task else None
    if task is None:
        from robot_skills.tasks.suites import resolve_suite

        task = resolve_suite("libero_goal") / "put_the_bowl_on_the_plate.bddl"
    lib = Path(args.library)
    if not task.is_file():
        sys.exit(f"no task file {task}")
    if not lib.is_dir():
        sys.exit(f"no skill library {lib}")
    env = isolated_ros_env()
    os.environ.update(env)
    tmp = Path(tempfile.mkdtemp(prefix="twin_success_"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hardware.bridge", "sim-twin", "--task", str(task),
         "--skill-library", str(lib), "--log-dir", str(tmp / "logs"), "--command-log",
         str(tmp / "commands.jsonl")], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    probe = RosProbe()
    outcomes: list[dict] = []
    try:
        results = probe.subscribe_json("/robot_skills/result", latched=True)
        if not probe.wait_for_subscriber("/robot_skills/task", 180):
            sys.exit(f"the bridge did not come up; logs in {tmp / 'logs'}")
        for i in range(args.episodes):
            k = len(results)
            t0 = time.monotonic()
            probe.send_json("/robot_skills/task", {"id": f"b{i}", "goal": [args.goal],
                                                   "max_steps": args.max_steps,
                                                   "reset_scene": True})
            if not probe.spin_until(lambda: len(results) > k, 300):
                sys.exit(f"no result for attempt {i}; logs in {tmp / 'logs'}")
            r = results[-1]
            res = r.get("result") or {}
            outcomes.append({"attempt": i, "status": r["status"], "reason": r["reason"],
                             "steps": res.get("steps"), "wall_s": time.monotonic() - t0,
                             "interventions": {a: b for a, b in
                                               (r.get("interventions") or {}).items() if b}})
            print(f"attempt {i:2d}: {r['status']:9s} {r['reason']:14s} steps {res.get('steps')}",
                  flush=True)
    finally:
        probe.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    n = len(outcomes)
    k = sum(o["status"] == "succeeded" for o in outcomes)
    lo, hi = wilson(k, n)
    print(f"\nthrough the twin over DDS: {k}/{n} = {100 * k / max(n, 1):.1f} % "
          f"[95 % CI {100 * lo:.1f}-{100 * hi:.1f}]")
    if args.json:
        Path(args.json).write_text(json.dumps({"library": str(lib), "task": task.name,
                                               "episodes": n, "successes": k,
                                               "ci95": [lo, hi], "outcomes": outcomes},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
