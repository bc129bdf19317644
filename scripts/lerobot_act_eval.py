"""Evaluate a LeRobot ACT checkpoint in this project's simulator, through its gymnasium env.

The peer figure of issue 12 (``scripts/lerobot_act_peer.sh`` trains the checkpoint, this script
scores it). Runs in an environment that has both ``lerobot`` and this project importable: the
lerobot virtual environment with ``PYTHONPATH=<repo root>`` (the project's own ``.venv`` never gets
lerobot)::

    PYTHONPATH=. MUJOCO_GL=egl $LEROBOT_VENV/bin/python scripts/lerobot_act_eval.py \\
        outputs/lerobot_act_peer/act/checkpoints/last/pretrained_model \\
        outputs/lerobot_act_peer/dataset --suite libero_goal --episodes 20 \\
        --out outputs/lerobot_act_peer/eval.json

Per task file of the suite and episode ``i``: ``gymnasium.make("robot_skills/LiberoTask-v0",
bddl_path=..., max_episode_steps=600)`` reset with seed ``seed + i`` (the seeds ``rs-eval`` uses),
then every 20 Hz step: the env observation -> :func:`robot_skills.data.lerobot.policy_observation`
(the very code the export used, with the dataset's entity list and task one-hot) -> lerobot's
saved pre-processor (batching, normalisation) -> ``ACTPolicy.select_action`` -> the saved
post-processor (un-normalisation) -> the metric action (m, rad per step; the export's actions)
divided by the env's :class:`~robot_skills.robot.ActionLimits` -> ``env.step``. Success is the
env's ``terminated`` (all goal predicates of the task file hold). Episodes whose world could not be
built or whose simulation went unstable are reported apart and left out of the rates, as in
:mod:`robot_skills.evaluation.runner`.

Prints a per-task table and the mean with its 95 % Wilson interval; writes JSON (and the same
table as Markdown beside it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np


def task_strings(dataset: Path) -> dict[str, str]:
    """Task file stem -> the task string the export gave its episodes (``language``, else
    ``task``, as :func:`robot_skills.data.lerobot.export_lerobot` chose it).

    Raises:
        FileNotFoundError: ``dataset`` is not an export of this project.
        ValueError: one task file's episodes carry different task strings (the one-hot would
            not name one goal per task file).
    """
    side_path = dataset / "meta" / "robot_skills.json"
    if not side_path.is_file():
        raise FileNotFoundError(f"{side_path}: not found; DATASET must be the export ACT was "
                                "trained on (scripts/lerobot_act_peer.sh)")
    side = json.loads(side_path.read_text())
    out: dict[str, str] = {}
    for ep in side["episodes"]:
        a = ep["attrs"]
        stem = a.get("task") or (Path(a["bddl"]).stem if a.get("bddl") else None)
        if stem:
            text = str(a.get("language") or a.get("task"))
            if out.setdefault(str(stem), text) != text:
                raise ValueError(f"{dataset}: task file {stem!r} has episodes with task strings "
                                 f"{out[str(stem)]!r} and {text!r}")
    return out


def action_is_metric(dataset: Path) -> bool:
    """True when the export's actions are this project's metric deltas (m / rad per step), False
    for normalised ``[-1, 1]`` controller deltas (a file attribute ``action_space: normalized``)."""
    side = json.loads((dataset / "meta" / "robot_skills.json").read_text())
    spaces = {str(f["attrs"].get("action_space", "metric")) for f in side["files"]}
    if len(spaces) != 1:
        raise ValueError(f"{dataset}: source files mix action spaces {sorted(spaces)}")
    return spaces.pop() != "normalized"


def main(argv: list[str] | None = None) -> int:
    """CLI entry; returns the exit status (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="ACT pretrained_model directory (lerobot-train)")
    p.add_argument("dataset", type=Path, help="the export the checkpoint was trained on")
    p.add_argument("--suite", default="libero_goal", help="suite name or directory of .bddl")
    p.add_argument("--tasks", nargs="*", default=None, help="task file stems (default: all)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per task")
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    p.add_argument("--max-steps", type=int, default=600, help="horizon (libero_goal config: 600)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="JSON to write (and .md beside it)")
    a = p.parse_args(argv)
    if a.episodes <= 0:
        p.error(f"--episodes must be > 0, got {a.episodes}")

    import torch
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    import sim.env  # noqa: F401  (registers the gymnasium id)
    from robot_skills.data.lerobot import policy_observation
    from robot_skills.evaluation.stats import wilson_interval
    from robot_skills.robot import ActionLimits
    from robot_skills.tasks.suites import resolve_suite
    from sim.env import ENV_ID

    ckpt, dataset = a.checkpoint, a.dataset
    if not (ckpt / "config.json").is_file():
        raise FileNotFoundError(f"{ckpt}: no config.json; pass a checkpoint's pretrained_model dir")
    policy = ACTPolicy.from_pretrained(str(ckpt))
    policy.to(a.device).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt),
                                         preprocessor_overrides={"device_processor":
                                                                 {"device": a.device}})
    lang = task_strings(dataset)
    metric = action_is_metric(dataset)
    lim = ActionLimits()
    scale = np.array([lim.max_delta_pos] * 3 + [lim.max_delta_rot] * 3 + [1.0])
    if not metric:
        scale = np.ones(7)

    suite_dir = resolve_suite(a.suite)
    files = sorted(suite_dir.glob("*.bddl"))
    if a.tasks:
        files = [f for f in files if f.stem in set(a.tasks)]
        missing = set(a.tasks) - {f.stem for f in files}
        if missing:
            raise FileNotFoundError(f"{suite_dir}: no task files {sorted(missing)}")
    unknown = [f.stem for f in files if f.stem not in lang]
    if unknown:
        raise ValueError(f"{dataset}: no demonstrations of tasks {unknown}; the policy has no "
                         "goal input for them")

    results: dict[str, Any] = {}
    t0 = time.time()
    for f in files:
        env = gym.make(ENV_ID, bddl_path=str(f), max_episode_steps=a.max_steps,
                       info_predicates=False, action_limits=lim)
        names = env.unwrapped.robot.entity_names
        eps = []
        for i in range(a.episodes):
            seed = a.seed + i
            ep: dict[str, Any] = {"seed": seed, "success": False, "steps": 0, "reason": "timeout"}
            try:
                obs, _ = env.reset(seed=seed)
            except Exception as e:  # world could not be built for this seed: not the policy's
                ep.update(reason="world_error", error=f"{type(e).__name__}: {e}")
                eps.append(ep)
                continue
            policy.reset()
            for t in range(a.max_steps):
                feats = policy_observation(dataset, obs, {e: obs[f"{e}_pose"] for e in names},
                                           task=lang[f.stem])
                batch = pre({k: torch.from_numpy(v) for k, v in feats.items()})
                with torch.inference_mode():
                    act = post(policy.select_action(batch))
                act = act.squeeze(0).cpu().numpy().astype(np.float64) / scale
                obs, _, term, trunc, info = env.step(act)
                ep["steps"] = t + 1
                if "episode_invalid" in info:
                    ep.update(reason="invalid", error=info["episode_invalid"])
                    break
                if term:
                    ep.update(success=True, reason="success")
                    break
                if trunc:
                    break
            eps.append(ep)
        env.close()
        ran = [e for e in eps if e["reason"] not in ("world_error", "invalid")]
        k, n = sum(e["success"] for e in ran), len(ran)
        lo, hi = wilson_interval(k, n)
        results[f.stem] = {"success_rate": k / n if n else None, "successes": k, "n": n,
                           "ci95": [lo, hi], "not_run": len(eps) - n, "episodes": eps}
        print(f"{f.stem:60s} {k:3d}/{n:<3d} {100 * k / max(n, 1):5.1f} %  "
              f"({time.time() - t0:.0f} s)", flush=True)
    K = sum(r["successes"] for r in results.values())
    N = sum(r["n"] for r in results.values())
    lo, hi = wilson_interval(K, N)
    mean_task = float(np.mean([r["success_rate"] for r in results.values()
                               if r["success_rate"] is not None]))
    summary = {"checkpoint": str(ckpt), "dataset": str(dataset), "suite": str(a.suite),
               "episodes_per_task": a.episodes, "seeds": [a.seed, a.seed + a.episodes - 1],
               "max_episode_steps": a.max_steps, "successes": K, "n": N,
               "success_rate": K / N if N else None, "mean_over_tasks": mean_task,
               "ci95_pooled": [lo, hi], "wall_s": round(time.time() - t0, 1),
               "tasks": results}
    lines = ["| task | success | 95 % CI |", "|---|---|---|"]
    for stem, r in results.items():
        rate = 100 * (r["success_rate"] or 0)
        lines.append(f"| {stem} | {r['successes']}/{r['n']} ({rate:.1f} %) | "
                     f"{100 * r['ci95'][0]:.0f}–{100 * r['ci95'][1]:.0f} % |")
    lines.append(f"| **mean** | **{K}/{N} ({100 * K / max(N, 1):.1f} %)** | "
                 f"{100 * lo:.1f}–{100 * hi:.1f} % |")
    table = "\n".join(lines)
    print(table)
    print(f"mean {100 * K / max(N, 1):.1f} % ({K}/{N}), 95 % Wilson CI "
          f"{100 * lo:.1f}-{100 * hi:.1f} %, {summary['wall_s']} s")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(summary, indent=1))
        a.out.with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
