"""How often pose-based predicates (a real arm's) disagree with the simulator's contact-based ones.

Runs scripted-expert episodes (planned and terminated on the contact-based state, then held still
for ``--settle`` steps with the jaws open) on every task of the chosen LIBERO suites, for
``--seeds`` seeds each, and evaluates after every control step both

* the reference, :func:`sim.predicates.predicate_state` (contacts, joint angles), and
* :func:`robot_skills.perception.evaluate_pose_predicates` on the observation's object poses plus
  the knob poses (:mod:`sim.perception_model`), optionally with Gaussian pose noise
  (``--noise-pos`` m, ``--noise-rot`` rad) on the entities perception tracks (objects, drawer
  regions, knobs; fixtures and static regions come from the model) to mimic a perception stack,
  and optionally other tolerances (``--contact``, ``--penetration``).

Prints, per suite, how many steps agree on every task atom (init + goal atoms, ``holding`` of the
graspable objects, ``handempty``) and on the full state; per predicate kind, the atom-steps compared
and disagreeing; and each disagreement class — predicate, which evaluator says true, the running
skill and the situation (object moving or at rest, jaws opening or closing, the object's gap to its
support) — with an example.

Usage::

    MUJOCO_GL=egl python benchmarks/pose_vs_contact_predicates.py [--suites libero_goal ...]
        [--seeds 5] [--settle 20] [--noise-pos 0.0] [--noise-rot 0.0] [--contact M]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections import Counter, defaultdict

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

KINDS = ("on", "in", "open", "close", "turnon", "turnoff", "holding", "handempty")
MOVING = 0.02
"""An object faster than this (m/s, from consecutive poses) counts as moving."""


def _noisy(poses: dict, tracked, rng: np.random.Generator, sd_pos: float, sd_rot: float) -> dict:
    """The ``tracked`` entities' poses with Gaussian noise; the others are left out (the model's
    fixed poses stand in for them: fixtures, static regions)."""
    out = {}
    for k in tracked:
        v = np.array(poses[k], dtype=np.float64)
        v[:3] += rng.normal(0.0, sd_pos, 3)
        if sd_rot > 0:
            w = rng.normal(0.0, sd_rot, 3) / 2.0          # small rotation as a quaternion
            dq = np.array([1.0, *w]) / np.sqrt(1.0 + w @ w)
            a, b = dq, v[3:7]
            v[3:7] = [a[0] * b[0] - a[1:] @ b[1:],
                      *(a[0] * b[1:] + b[0] * a[1:] + np.cross(a[1:], b[1:]))]
        out[k] = v
    return out


def _situation(ep, i: int, atom, says: str, model, dt: float) -> tuple[str, str]:
    """``(situation label, detail)`` of a disagreement on ``atom`` at step index ``i``."""
    from robot_skills.perception.pose_predicates import _Scene

    r = ep.steps[i]
    prev = ep.steps[i - 1] if i > 0 else r
    kind = atom[0]
    if kind in ("holding", "handempty"):
        dw = r.gripper_width - prev.gripper_width
        jaws = "jaws opening" if dw > 5e-4 else "jaws closing" if dw < -5e-4 else "jaws still"
        held = atom[1] if kind == "holding" else next(
            (a[1] for a in (r.contact | r.pose) if a[0] == "holding"), None)
        detail = f"width {r.gripper_width * 1000:.1f} mm"
        if held is not None:
            g = model.objects[held]
            detail += f", {held} grasp width {g.holding_width * 1000:.1f} mm"
            sc = _Scene(model, r.poses)
            detail += f", bottom {sc.box(held).lo[2] * 1000:.1f} mm"
        return f"{jaws}, cmd {'close' if r.gripper_cmd > 0 else 'open'}", detail
    obj = atom[1]
    if obj not in model.objects:
        return "articulation", ""
    v = np.linalg.norm(np.asarray(r.poses[obj][:3]) - np.asarray(prev.poses[obj][:3])) / dt
    held = ("holding", obj) in r.contact
    label = ("held, " if held else "") + ("moving" if v > MOVING else "at rest")
    sc = _Scene(model, r.poses)
    bottom = sc.box(obj).lo[2]
    detail = f"speed {v:.2f} m/s, bottom z {bottom * 1000:.1f} mm"
    if kind == "on" and len(atom) == 3:
        tgt = atom[2]
        if tgt in model.objects:
            B = sc.box(tgt)
            fl = model.objects[tgt].floor_height
            surf = B.hi[2] if fl is None else B.lo[2] + fl
            detail += f", gap to {tgt}'s {'top' if fl is None else 'floor'} " \
                      f"{(bottom - surf) * 1000:+.1f} mm"
        elif tgt in model.regions:
            g = model.regions[tgt]
            surf = sc.table_top() if g.kind == "table" else sc.frame(tgt)[0][2]
            detail += f", gap to {tgt} floor {(bottom - surf) * 1000:+.1f} mm"
    return label, detail


def main(argv=None) -> dict:
    """Run the comparison and print the tables; returns the counts (for tests)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suites", nargs="+", default=["libero_goal", "libero_spatial",
                                                   "libero_object"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--settle", type=int, default=20,
                   help="control steps held still (jaws open) after the goal holds")
    p.add_argument("--max-tasks", type=int, default=None, help="first N tasks of each suite")
    p.add_argument("--noise-pos", type=float, default=0.0, help="pose noise s.d., m")
    p.add_argument("--noise-rot", type=float, default=0.0, help="orientation noise s.d., rad")
    p.add_argument("--contact", type=float, default=None,
                   help="override the pose model's contact tolerance, m")
    p.add_argument("--penetration", type=float, default=None,
                   help="override the pose model's penetration tolerance, m")
    p.add_argument("--examples", type=int, default=1, help="examples printed per class")
    args = p.parse_args(argv)

    from robot_skills.perception import evaluate_pose_predicates
    from robot_skills.tasks.suites import resolve_suite
    from sim.perception_model import compare_expert_episode, pose_world_model
    from sim.sim_robot import SimRobot

    rng = np.random.default_rng(12345)
    t0 = time.perf_counter()
    per_kind = {k: Counter() for k in KINDS}      # kind -> compared / contact only / pose only
    classes: dict[tuple, list] = defaultdict(list)
    totals = {}
    for suite in args.suites:
        paths = sorted(resolve_suite(suite).glob("*.bddl"))[:args.max_tasks]
        s_steps = s_task_ok = s_full_ok = s_eps = s_succ = 0
        for path in paths:
            robot = SimRobot(path)
            model = pose_world_model(robot.scene, robot.model)
            over = {k: v for k, v in (("contact", args.contact),
                                      ("penetration", args.penetration)) if v is not None}
            if over:
                model = dataclasses.replace(
                    model, tolerances=dataclasses.replace(model.tolerances, **over))
            dt = robot.control_period
            for seed in range(args.seeds):
                ep = compare_expert_episode(robot, seed, settle_steps=args.settle)
                s_eps += 1
                s_succ += ep.success
                if over or args.noise_pos > 0 or args.noise_rot > 0:
                    # situations are labelled from the clean poses kept in the record
                    tracked = model.tracked_entities()
                    for r in ep.steps:
                        seen = r.poses
                        if args.noise_pos > 0 or args.noise_rot > 0:
                            seen = _noisy(r.poses, tracked, rng, args.noise_pos, args.noise_rot)
                        r.pose = evaluate_pose_predicates(model, seen, r.gripper_width, r.ee_pos)
                atoms = sorted(ep.atoms)
                for i, r in enumerate(ep.steps):
                    s_steps += 1
                    bad_task = [a for a in atoms if (a in r.contact) != (a in r.pose)]
                    s_task_ok += not bad_task
                    diff = r.contact ^ r.pose
                    s_full_ok += not diff
                    for a in atoms:
                        per_kind[a[0]]["compared"] += 1
                    for a in diff:
                        says = "contact only" if a in r.contact else "pose only"
                        if a in ep.atoms:
                            per_kind[a[0]][says] += 1
                        label, detail = _situation(ep, i, a, says, model, dt)
                        classes[(a[0], says, r.skill or "-", label)].append(
                            (path.stem, seed, r.step, a, detail, a in ep.atoms))
            robot.close()
        totals[suite] = (s_eps, s_succ, s_steps, s_task_ok, s_full_ok)

    noise = ""
    if args.noise_pos > 0 or args.noise_rot > 0:
        noise = (f", noise s.d. {args.noise_pos * 1000:g} mm / {args.noise_rot:g} rad on "
                 "objects, drawers, knobs")
    if args.contact is not None or args.penetration is not None:
        noise += f", tolerances contact {args.contact} penetration {args.penetration}"
    print(f"pose-based vs contact-based predicates: seeds 0..{args.seeds - 1}, settle "
          f"{args.settle} steps{noise}  ({time.perf_counter() - t0:.0f} s)\n")
    print(f"{'suite':<16}{'episodes':>9}{'success':>9}{'steps':>8}"
          f"{'task atoms agree':>18}{'full state agrees':>19}")
    for suite, (e, s, n, ok, full) in totals.items():
        print(f"{suite:<16}{e:>9}{s:>9}{n:>8}{ok / max(n, 1):>17.2%} {full / max(n, 1):>18.2%}")
    print("\nper predicate kind, over task atoms (init + goal atoms, holding of graspable objects, "
          "handempty):")
    print(f"{'kind':<11}{'atom-steps':>11}{'disagree':>10}{'rate':>9}{'contact only':>14}"
          f"{'pose only':>11}")
    for k in KINDS:
        c = per_kind[k]
        if not c["compared"]:
            continue
        d = c["contact only"] + c["pose only"]
        print(f"{k:<11}{c['compared']:>11}{d:>10}{d / c['compared']:>9.3%}"
              f"{c['contact only']:>14}{c['pose only']:>11}")
    print("\ndisagreement classes, all atoms (predicate | true only in | skill | situation): "
          "atom-steps, example")
    if not classes:
        print("  none")
    for key, items in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        kind, says, skill, label = key
        n_task = sum(1 for it in items if it[5])
        print(f"  {kind:<9} | {says:<12} | {skill:<8} | {label:<28}: {len(items):>4} "
              f"({n_task} on task atoms)")
        for task, seed, step, a, detail, _ in items[:args.examples]:
            print(f"      e.g. {task} seed {seed} step {step}: {a} — {detail}")
    return {"totals": totals, "per_kind": per_kind, "classes": classes}


if __name__ == "__main__":
    main()
