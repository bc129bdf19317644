"""Regenerate issue 11's composition table: four new behaviours learned from k = 5 / 10 / 25
expert demonstrations by from-scratch BC, a LoRA fine-tune, PEFT's static merges, CAT, PSEC and
SkillBlender, each evaluated on the same seeds in libero_goal's scene.

    python scripts/composition_table.py --library outputs/<run>/skills \\
        --out docs/results/issue11/composition

The library must hold LoRA skills ``pick``, ``place_on``, ``place_in`` and ``open`` (README
command 1 trains one). Writes ``results.json`` and ``table.md`` under ``--out``; exits non-zero
when the library or the suite cannot be read or the experts cannot produce the demonstrations.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from robot_skills.evaluation.composition import (
        BEHAVIOURS,
        METHODS,
        TableConfig,
        format_table,
        run_composition_table,
    )
    from robot_skills.tasks.suites import resolve_suite
    from sim.factories import ExpertSkills, SimWorldFactory

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--library", required=True, help="a LoRA skill library directory")
    ap.add_argument("--out", required=True, help="where results.json and table.md go")
    ap.add_argument("--behaviours", nargs="+", default=list(BEHAVIOURS), choices=list(BEHAVIOURS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--ks", nargs="+", type=int, default=[5, 10, 25])
    ap.add_argument("--episodes", type=int, default=20, help="evaluation seeds per cell")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--bc-steps", type=int, default=TableConfig.bc_steps)
    ap.add_argument("--compose-steps", type=int, default=TableConfig.compose_steps)
    ap.add_argument("--lora-steps", type=int, default=TableConfig.lora_steps)
    ap.add_argument("--no-bind-arguments", action="store_true",
                    help="ablation: every source reads the behaviour's features as they are")
    a = ap.parse_args(argv)
    lib = Path(a.library)
    if not (lib / "base").is_dir():
        print(f"error: {lib} is not a LoRA skill library (no base/)", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = TableConfig(bc_steps=a.bc_steps, compose_steps=a.compose_steps,
                      lora_steps=a.lora_steps, bind_arguments=not a.no_bind_arguments)
    t0 = time.perf_counter()
    res = run_composition_table(lib, make_world=SimWorldFactory(), make_experts=ExpertSkills(),
                                task_dir=resolve_suite("libero_goal"), behaviours=a.behaviours,
                                methods=a.methods, ks=a.ks, episodes=a.episodes,
                                workers=a.workers, cfg=cfg)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    res["command"] = "python scripts/composition_table.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(out / "results.json")
    table = format_table(res)
    (out / "table.md").write_text(table)
    print(table)
    print(f"wall {res['wall_s']} s; wrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
