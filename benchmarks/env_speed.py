"""Env steps per second for one task, state-only and with two 128x128 cameras, vs. raw mj_step.

Usage::

    MUJOCO_GL=egl python benchmarks/env_speed.py [TASK.bddl] [--steps 200] [--repeats 15]

The physics bound replays, with bare ``mj_step`` calls on the same compiled model (robot + scene,
same seeded initial state), the joint targets an env rollout commanded: the same motion and the
same contacts, 25 physics steps per 20 Hz control step, with no controller, observation or info.
Every configuration runs that same seeded rollout (a random end-effector walk). Printed figures
are medians over ``--repeats`` interleaved runs in one process. Targets (issue 2, 2 CPU cores):
state-only env within 1.25x of the bound; >= 100 env steps/s with two 128x128 cameras.
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
    """libero_goal's ``put_the_bowl_on_the_plate`` from the project's LIBERO cache (fetched once)."""
    from robot_skills.tasks.suites import resolve_suite

    return resolve_suite("libero_goal") / DEFAULT_TASK


def _timed(reset, step, n: int) -> float:
    """Steps per second of ``n`` calls of ``step`` after one untimed ``reset``."""
    reset()
    t = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - t)


def _policy(rng: np.random.Generator):
    # A small random walk of the end-effector, gripper alternating: exercises IK and contacts.
    return lambda: np.concatenate([rng.uniform(-0.3, 0.3, 6), [rng.choice([-1.0, 1.0])]]).astype(
        np.float32)


def main(argv=None) -> None:
    """Run the benchmark and print a table (steps/s, ratio to the physics bound)."""
    from robot_skills.robots.panda import substeps_per_control
    from sim.env import LiberoTaskEnv

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("task", nargs="?", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    task = args.task or _default_task()
    n_sub = substeps_per_control()

    env = LiberoTaskEnv(task, max_episode_steps=10**9)
    env_light = LiberoTaskEnv(task, max_episode_steps=10**9, info_predicates=False)
    env_cam = LiberoTaskEnv(task, max_episode_steps=10**9, info_predicates=False,
                            cameras=("agentview", "panda/wrist_cam"), image_size=(128, 128))
    m, d = env.robot.model, env.robot.data

    # The bound replays, with bare mj_step, the joint targets the env run commands: the same
    # model, the same motion and so the same contacts, without controller, observation or info.
    env.reset(seed=0)
    pol = _policy(np.random.default_rng(0))
    ctrls = []
    for _ in range(args.steps):
        env.step(pol())
        ctrls.append(d.ctrl.copy())
    replay = iter(())

    def replay_reset():
        nonlocal replay
        env.robot.reset(0)
        replay = iter(ctrls)

    def replay_step():
        d.ctrl[:] = next(replay)
        mujoco.mj_step(m, d, n_sub)

    # Every configuration replays the same seeded rollout (same states and contacts as the bound).
    state = {}

    def seeded(reset_fn):
        def reset():
            reset_fn()
            state["pol"] = _policy(np.random.default_rng(0))
        return reset

    configs = [
        (f"raw mj_step x{n_sub} (physics bound)", replay_reset, replay_step),
        ("SimRobot.act (no info)", seeded(lambda: env.robot.reset(0)),
         lambda: env.robot.act(env.action_to_robot(state["pol"]()))),
        ("env state-only, info=success+goal_progress", seeded(lambda: env_light.reset(seed=0)),
         lambda: env_light.step(state["pol"]())),
        ("env state-only, info incl. all predicates", seeded(lambda: env.reset(seed=0)),
         lambda: env.step(state["pol"]())),
        ("env + 2 cameras 128x128 (rgb)", seeded(lambda: env_cam.reset(seed=0)),
         lambda: env_cam.step(state["pol"]())),
    ]
    # Interleaved repeats: a slow spell on a shared machine hits every configuration alike.
    rates: dict[str, list[float]] = {label: [] for label, _, _ in configs}
    for _ in range(args.repeats):
        for label, reset, step in configs:
            rates[label].append(_timed(reset, step, args.steps))
    rows = [(label, statistics.median(r)) for label, r in rates.items()]
    bound = rows[0][1]

    print(f"task: {task}")
    print(f"model: nbody={m.nbody} ngeom={m.ngeom} nv={m.nv}; {n_sub} x {m.opt.timestep*1e3:.0f} ms"
          f" physics steps per env step; medians of {args.repeats} x {args.steps} steps")
    print(f"{'configuration':48s} {'steps/s':>9s} {'bound/this':>11s}")
    for label, r in rows:
        print(f"{label:48s} {r:9.1f} {bound / r:11.2f}")
    for e in (env, env_light, env_cam):
        e.close()


if __name__ == "__main__":
    main()
