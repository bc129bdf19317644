"""Training throughput (samples/s) of the state-based policy through the one training loop.

Usage::

    python benchmarks/train_throughput.py [--steps 200] [--warmup 20] [--samples 20000]
        [--cpu-batch 256] [--gpu-batches 256 4096 16384] [--threads N]

The model is the main job's :class:`~robot_skills.policies.bc.GoalConditionedBC` (the
``TrainConfig`` defaults: hidden 256, 4 layers, chunks of 10, L1 loss) on synthetic normalised
data of the real shapes; every configuration trains through
:func:`robot_skills.training.trainer.fit` (AdamW, cosine schedule, gradient clipping, no
checkpoints). The first ``--warmup`` steps (allocation, ``torch.compile``) are not timed; the
clock is read after a CUDA synchronisation. Rows:

* CPU, in-memory tensors, the main job's batch (the reference), and the same data read as a
  map-style ``Dataset`` through a ``DataLoader``;
* on CUDA (when available): every GPU batch size x bf16 autocast on/off x ``torch.compile``
  on/off, in-memory tensors on the GPU.

Target (issue 12): on a GPU, the state-based policy at >= 20x its 2-core CPU throughput (the
``x CPU`` column), raising the batch as the GPU allows.
"""

from __future__ import annotations

import argparse
import time

import torch


class _Rows(torch.utils.data.Dataset):
    """The in-memory tensors as a map-style dataset of dicts (one sample per item)."""

    def __init__(self, data: dict[str, torch.Tensor]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data["features"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.data.items()}


def synthetic_data(n: int, chunk: int, num_skills: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` normalised samples of the policy's shapes: ``features (n, FEATURE_DIM)`` float32,
    ``skill_id (n,)`` int64, ``actions (n, chunk, ACTION_DIM)`` float32, ``mask (n, chunk)``
    float32 (the last steps of some chunks padded)."""
    from robot_skills.policies.features import FEATURE_DIM
    from robot_skills.robot import ACTION_DIM

    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, chunk)
    short = torch.randint(1, chunk + 1, (n,), generator=g)
    mask[torch.arange(chunk)[None, :] >= short[:, None]] = 0.0
    return {"features": torch.randn(n, FEATURE_DIM, generator=g),
            "skill_id": torch.randint(0, num_skills, (n,), generator=g),
            "actions": torch.randn(n, chunk, ACTION_DIM, generator=g),
            "mask": mask}


def measure(data, device: torch.device, batch: int, steps: int, warmup: int, bf16: bool,
            compile_: bool, num_workers: int = 0) -> float:
    """Samples/s of ``steps`` timed training steps after ``warmup`` untimed ones."""
    from robot_skills.training.device import DistContext
    from robot_skills.training.trainer import FitConfig, TrainConfig, fit

    tcfg = TrainConfig()
    torch.manual_seed(0)
    model = tcfg.make_policy(16).to(device)
    marks: dict[int, float] = {}

    def clock(step: int) -> None:
        if step in (warmup, warmup + steps):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            marks[step] = time.perf_counter()

    cfg = FitConfig(steps=warmup + steps, batch_size=batch, lr=tcfg.lr,
                    weight_decay=tcfg.weight_decay, warmup_steps=10, bf16=bf16,
                    compile=compile_, log_every=10 ** 9, progress=False,
                    num_workers=num_workers)
    res = fit(model, data, cfg, ctx=DistContext(1, 0, 0, device), _on_step=clock)
    eff = min(batch, len(data["features"]) if isinstance(data, dict) else len(data))
    assert res.step == warmup + steps
    return steps * eff / (marks[warmup + steps] - marks[warmup])


def main(argv=None) -> list[tuple[str, int, float]]:
    """Run the benchmark; print and return ``(configuration, batch, samples/s)`` rows."""
    from robot_skills.training.device import configure_threads

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    ap.add_argument("--samples", type=int, default=20000, help="synthetic samples")
    ap.add_argument("--cpu-batch", type=int, default=256)
    ap.add_argument("--gpu-batches", type=int, nargs="+", default=[256, 4096, 16384])
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads (default: the trainer's choice, configure_threads)")
    ap.add_argument("--no-cuda", action="store_true", help="CPU rows only")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        ap.error("--steps and --warmup must be >= 1")
    threads = configure_threads(args.threads)
    tcfg_chunk = 10
    data = synthetic_data(args.samples, tcfg_chunk, 16)
    cpu = torch.device("cpu")
    rows: list[tuple[str, int, float]] = []
    rows.append((f"cpu ({threads} thread(s)), tensors", args.cpu_batch,
                 measure(data, cpu, args.cpu_batch, args.steps, args.warmup, False, False)))
    rows.append((f"cpu ({threads} thread(s)), Dataset+DataLoader", args.cpu_batch,
                 measure(_Rows(data), cpu, args.cpu_batch, args.steps, args.warmup, False,
                         False)))
    if torch.cuda.is_available() and not args.no_cuda:
        gpu = torch.device("cuda")
        name = torch.cuda.get_device_name(gpu)
        for b in args.gpu_batches:
            for bf16 in (False, True):
                for comp in (False, True):
                    rows.append((f"cuda {name}, bf16 {'on' if bf16 else 'off'}, compile "
                                 f"{'on' if comp else 'off'}", b,
                                 measure(data, gpu, b, args.steps, args.warmup, bf16, comp)))
    ref = rows[0][2]
    width = max(len(r[0]) for r in rows)
    print(f"{'configuration':<{width}}  {'batch':>6}  {'samples/s':>11}  {'x CPU':>6}")
    for label, b, sps in rows:
        print(f"{label:<{width}}  {b:>6d}  {sps:>11.0f}  {sps / ref:>6.2f}")
    return rows


if __name__ == "__main__":
    main()
