"""PEFT LoRA skills: adapter size vs the base, load + merge latency, and one-action inference
latency on CPU, batch 1 (issue 11's performance section).

A library with the default :class:`~robot_skills.policies.bc.BCConfig` (hidden 512, 4 layers,
chunk 10) and one random rank-``--rank`` adapter on every Linear layer is written to a temporary
directory, then:

* size: ``adapter_model.safetensors`` bytes / ``base.safetensors`` bytes (target <= 5 %);
* load + merge: :func:`~robot_skills.skills.skill_dir.load_skill` (every file hashed) +
  :func:`~robot_skills.skills.skill_dir.build_model` (PEFT ``merge_and_unload``), wall time per
  skill, base weights already in memory (``--loads`` repetitions after a first call,
  is reported apart);
* inference: one forward pass ``(1, FEATURE_DIM) -> (1, H, 7)`` under ``torch.inference_mode``
  with one thread, for the base alone, the merged skill, the unmerged PEFT model (adapter
  matmuls at run time) and PSEC over 3 adapters (:mod:`robot_skills.policies.psec`: weight network
  + one concatenated low-rank product per layer), ``--iters`` timed calls after 200 warm-up
  calls. Targets: merged p99 <= 1 ms, PSEC <= 1.5x merged.

Usage::

    python benchmarks/adapter_inference.py                 # rank 8
    python benchmarks/adapter_inference.py --rank 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.features import FEATURE_DIM
from robot_skills.policies.normalization import NormStats
from robot_skills.skills.skill_dir import build_model, load_base, load_skill, save_base, save_skill


def _latency(fn, iters: int) -> dict[str, float]:
    for _ in range(200):
        fn()
    t = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        t[i] = time.perf_counter() - t0
    ms = t * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}


def main() -> None:
    """Run the benchmark and print (optionally write) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--iters", type=int, default=5000)
    ap.add_argument("--loads", type=int, default=20)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    skills = list(SKILL_SPECS)
    arch = BCConfig(num_skills=len(skills))
    base = GoalConditionedBC(arch).eval()
    out: dict[str, object] = {"rank": a.rank, "arch": arch.to_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        info = save_base(root, base.state_dict(), arch, skills)
        from robot_skills.policies.peft_adapter import adapter_state, attach, lora_config

        m = GoalConditionedBC(arch)
        m.load_state_dict(base.state_dict())
        pm = attach(m, lora_config(m, rank=a.rank))
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.01)
        rng = np.random.default_rng(0)
        stats = NormStats(rng.normal(size=FEATURE_DIM).astype(np.float32),
                          np.ones(FEATURE_DIM, np.float32), np.zeros(7, np.float32),
                          np.ones(7, np.float32), skills, arch.chunk_size, 1)
        d = save_skill(root / "pick", spec=SKILL_SPECS["pick"], adapter_state=adapter_state(pm),
                       stats=stats, adapter={"kind": "lora", "rank": a.rank,
                                             "alpha": 2.0 * a.rank}, base=info, skill_id=0)
        for i, extra in enumerate(("place_on", "push")):  # two more skills for PSEC over 3
            with torch.no_grad():
                for n, p in pm.named_parameters():
                    if "lora_" in n:
                        p.normal_(0, 0.01 * (i + 2))
            save_skill(root / extra, spec=SKILL_SPECS[extra], adapter_state=adapter_state(pm),
                       stats=stats, adapter={"kind": "lora", "rank": a.rank,
                                             "alpha": 2.0 * a.rank}, base=info,
                       skill_id=skills.index(extra))
        from robot_skills.skills.library import SkillLibrary
        from robot_skills.skills.merge import psec_from_library

        psec = psec_from_library(SkillLibrary(root), ["pick", "place_on", "push"]).eval()
        a_bytes = (d / "adapter_model.safetensors").stat().st_size
        b_bytes = (root / "base" / "base.safetensors").stat().st_size
        out["adapter_bytes"], out["base_bytes"] = a_bytes, b_bytes
        out["adapter_fraction"] = a_bytes / b_bytes
        _, base_state = load_base(root)
        times = []
        for _ in range(a.loads + 1):
            t0 = time.perf_counter()
            merged, sid = build_model(load_skill(d, info), base_state, merge=True)
            times.append(time.perf_counter() - t0)
        out["load_merge_first_ms"] = times[0] * 1e3
        out["load_merge_ms_p50"] = float(np.median(times[1:]) * 1e3)
        unmerged, _ = build_model(load_skill(d, info), base_state, merge=False)
        x = torch.randn(1, FEATURE_DIM)
        ids = torch.tensor([sid])
        with torch.inference_mode():
            for label, net in (("base", base), ("merged", merged.eval()),
                               ("peft_unmerged", unmerged.eval()), ("psec_3", psec)):
                out[f"infer_{label}"] = _latency(lambda net=net: net(x, ids), a.iters)
            diff = (merged(x, ids) - unmerged(x, ids)).abs().max().item()
        out["merged_vs_unmerged_max_abs"] = diff
    print(f"rank {a.rank}: adapter {a_bytes} B = {100 * a_bytes / b_bytes:.2f} % of the base "
          f"({b_bytes} B)")
    print(f"load + verify + merge: first {out['load_merge_first_ms']:.1f} ms, "
          f"then p50 {out['load_merge_ms_p50']:.1f} ms")
    for label in ("base", "merged", "peft_unmerged", "psec_3"):
        r = out[f"infer_{label}"]
        print(f"one action, CPU, batch 1, 1 thread, {label:14s}: p50 {r['p50_ms']:.3f} ms  "
              f"p99 {r['p99_ms']:.3f} ms")
    print(f"merged vs unmerged outputs: max |diff| {diff:.2e}")
    ratio = out["infer_psec_3"]["p99_ms"] / out["infer_merged"]["p99_ms"]
    out["psec_over_merged_p99"] = ratio
    print(f"PSEC over 3 adapters / merged, p99: {ratio:.2f}x (target <= 1.5x)")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
