"""Two processes under ``torchrun`` (Gloo on CPU, DDP) follow the same loss trajectory as one
process on the same global batch, and only rank 0 writes checkpoints and logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
STEPS, GLOBAL_BATCH = 25, 32


def ddp_main(argv: list[str]) -> None:
    """Per-rank entry under torchrun: ``<work_dir> <out.json> <batch per rank> <source>``."""
    from test_trainer_checkpoint import DictDataset, Net, problem

    from robot_skills.training.device import cleanup_distributed, init_distributed
    from robot_skills.training.trainer import FitConfig, fit

    work, out, bs, source = Path(argv[0]), argv[1], int(argv[2]), argv[3]
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    try:
        torch.manual_seed(0)
        model = Net()
        data = problem(n=400, fn=lambda z: 0.3 * z)
        # dropout off: the two layouts draw their dropout masks differently
        model.f[2].p = 0.0
        res = fit(model, DictDataset(data) if source == "dataset" else data,
                  FitConfig(steps=STEPS, batch_size=bs, lr=2e-2, warmup_steps=5, grad_clip=0.5,
                            ckpt_every=10, log_every=1, ema_decay=0.5, progress=False),
                  ctx=ctx, work_dir=work, tb_dir=work / "tb", fingerprint="ddp")
        if ctx.is_main:
            Path(out).write_text(json.dumps({
                "world": ctx.world_size, "history": res.history,
                "weights": {k: v.tolist() for k, v in model.state_dict().items()}}))
    finally:
        cleanup_distributed()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


_SCRIPT = "import sys\nfrom test_trainer_ddp import ddp_main\nddp_main(sys.argv[1:])\n"


@pytest.mark.slow  # two fresh interpreters + rendezvous (~25 s on 2 shared cores)
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path):
    script = tmp_path / "ddp_entry.py"
    script.write_text(_SCRIPT)
    # torchrun started through this interpreter (a wrapper could re-exec another one)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", str(script), str(tmp_path / "ddp"),
                        str(tmp_path / "ddp.json"), str(GLOBAL_BATCH // 2), "dataset"],
                       env=_env(), capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    threads = torch.get_num_threads()
    try:  # one process, in memory, batch = both ranks' batches together
        ddp_main([str(tmp_path / "one"), str(tmp_path / "one.json"), str(GLOBAL_BATCH), "memory"])
    finally:
        torch.set_num_threads(threads)
    one = json.loads((tmp_path / "one.json").read_text())
    assert ddp["world"] == 2 and one["world"] == 1
    assert len(ddp["history"]) == len(one["history"]) == STEPS
    assert ddp["history"][-1] < 0.5 * ddp["history"][0]  # it learned
    for a, b in zip(ddp["history"], one["history"], strict=True):
        assert abs(a - b) <= 1e-4 * abs(b) + 1e-6, (ddp["history"], one["history"])
    for k, v in one["weights"].items():
        torch.testing.assert_close(torch.tensor(ddp["weights"][k]), torch.tensor(v),
                                   rtol=1e-4, atol=1e-5)
    # only rank 0 wrote: one TensorBoard event file, one set of checkpoints
    assert len(list((tmp_path / "ddp" / "tb").glob("events.out.tfevents.*"))) == 1
    meta = json.loads((tmp_path / "ddp" / "ckpt" / f"step_{STEPS:08d}.json").read_text())
    assert meta["world_size"] == 2 and len(meta["rng"]) == 2
