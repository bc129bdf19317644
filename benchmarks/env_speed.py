"""Env steps per second for one task, state-only and with two 128x128 cameras, vs. raw mj_step.

Usage::

    MUJOCO_GL=egl python benchmarks/env_speed.py [TASK.bddl] [--steps 200] [--repeats 5]

The physics bound is the rate of bare ``mj_step`` calls on the same compiled model (robot + scene,
same initial state), divided by the 25 physics steps of one 20 Hz control step. Printed figures are
medians over ``--repeats`` runs in one process. Targets (issue 2, 2 CPU cores): state-only env within
1.25x of the bound; >= 100 env steps/s with two 128x128 cameras.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco
import numpy as np

DEFAULT_TASK = "put_the_bowl_on_the_plate.bddl"


def _default_task() -> Path:
    cands = [Path.home() / ".cache" / "robot_skills" / "libero_bddl" / "libero_goal",
             Path(__file__).resolve().parents[2] / "shared" / "libero_bddl" / "libero_goal",
             Path("/work/shared/libero_bddl/libero_goal")]
    for c in cands:
        if (c / DEFAULT_TASK).exists():
            return c / DEFAULT_TASK
    raise SystemExit("no libero_goal task found; pass a .bddl path")


def _rate(fn, n: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def _policy(rng: np.random.Generator):
    # A small random walk of the end-effector, gripper alternating: exercises IK and contacts.
    return lambda: np.concatenate([rng.uniform(-0.3, 0.3, 6), [rng.choice([-1.0, 1.0])]]).astype(
        np.float32)


def main(argv=None) -> None:
    """Run the benchmark and print a table (steps/s, ratio to the physics bound)."""
    from sim.env import LiberoTaskEnv
    from sim.robots.panda import substeps_per_control

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("task", nargs="?", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    task = args.task or _default_task()
    n_sub = substeps_per_control()

    rows = []
    env = LiberoTaskEnv(task, max_episode_steps=10**9)
    env.reset(seed=0)
    m, d = env.robot.model, env.robot.data
    snapshot = (d.qpos.copy(), d.qvel.copy(), d.ctrl.copy())

    def raw():
        mujoco.mj_step(m, d, n_sub)

    bound = _rate(raw, args.steps, args.repeats)
    rows.append((f"raw mj_step x{n_sub} (physics bound)", bound))

    def run_env(e, label):
        e.reset(seed=0)
        pol = _policy(np.random.default_rng(0))
        rows.append((label, _rate(lambda: e.step(pol()), args.steps, args.repeats)))

    d.qpos[:], d.qvel[:], d.ctrl[:] = snapshot
    robot = env.robot
    robot.reset(0)
    pol = _policy(np.random.default_rng(0))
    rows.append(("SimRobot.act (no info)",
                 _rate(lambda: robot.act(env.action_to_robot(pol())), args.steps, args.repeats)))
    env_light = LiberoTaskEnv(task, max_episode_steps=10**9, info_predicates=False)
    run_env(env_light, "env state-only, info=success+goal_progress")
    run_env(env, "env state-only, info incl. all predicates")
    env_cam = LiberoTaskEnv(task, max_episode_steps=10**9, info_predicates=False,
                            cameras=("agentview", "panda/wrist_cam"), image_size=(128, 128))
    run_env(env_cam, "env + 2 cameras 128x128 (rgb)")

    print(f"task: {task}")
    print(f"model: nbody={m.nbody} ngeom={m.ngeom} nv={m.nv}; {n_sub} x {m.opt.timestep*1e3:.0f} ms"
          f" physics steps per env step; medians of {args.repeats} x {args.steps} steps")
    print(f"{'configuration':48s} {'steps/s':>9s} {'bound/this':>11s}")
    for label, r in rows:
        print(f"{label:48s} {r:9.1f} {bound / r:11.2f}")
    env.close()
    env_light.close()
    env_cam.close()


if __name__ == "__main__":
    main()
