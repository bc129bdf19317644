"""A training process SIGKILLed mid-run resumes from its newest valid checkpoint (losing at most
one checkpoint interval) and ends at the same step with the same loss and weights as a run that
was never killed: the batch of each step is a function of the step, and the RNG states (dropout)
come back from the sidecar."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
STEPS, EVERY = 80, 10

_SCRIPT = "import sys; from test_trainer_resume import train_main; train_main(sys.argv[1:])"


def train_main(argv: list[str]) -> None:
    """Subprocess entry: ``<work_dir> <out.json> <sleep per step, s>``; prints each step."""
    from test_trainer_checkpoint import Net, problem

    from robot_skills.training.device import DistContext
    from robot_skills.training.trainer import FitConfig, evaluate_loss, fit

    work, out, pause = argv[0], argv[1], float(argv[2])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, data = Net(), problem(n=512)

    def tick(step: int) -> None:
        print(step, flush=True)
        time.sleep(pause)

    res = fit(model, data, FitConfig(steps=STEPS, batch_size=32, lr=3e-3, warmup_steps=10,
                                     ckpt_every=EVERY, log_every=5, ema_decay=0.9,
                                     progress=False),
              ctx=DistContext(1, 0, 0, torch.device("cpu")), work_dir=work, fingerprint="kill",
              _on_step=tick)
    Path(out).write_text(json.dumps({"step": res.step, "final_loss": res.final_loss,
                                     "history": res.history, "resumed_from": res.resumed_from,
                                     "loss": evaluate_loss(model, data)}))


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def _run(work: Path, out: Path, pause: float = 0.0) -> dict:
    r = subprocess.run([sys.executable, "-c", _SCRIPT, str(work), str(out), str(pause)],
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow  # three trainings, two of them fresh interpreters (~20 s on 2 cores)
def test_sigkill_mid_run_then_resume_reaches_the_same_step_and_loss(tmp_path):
    threads = torch.get_num_threads()
    try:  # the uninterrupted reference, in this process (same code, one thread)
        train_main([str(tmp_path / "ref"), str(tmp_path / "ref.json"), "0"])
    finally:
        torch.set_num_threads(threads)
    ref = json.loads((tmp_path / "ref.json").read_text())
    assert ref["step"] == STEPS and ref["resumed_from"] == 0
    work = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(work), str(tmp_path / "x.json"),
                             "0.03"], env=_env(), stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen = 0
    try:
        for line in proc.stdout:  # kill between two checkpoints, well into the run
            seen = int(line)
            if seen >= 35:
                break
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and seen >= 35
    assert not (tmp_path / "x.json").exists()
    res = _run(work, tmp_path / "resumed.json")
    assert seen - EVERY < res["resumed_from"] <= seen and res["resumed_from"] % EVERY == 0
    assert res["step"] == ref["step"] == STEPS
    assert res["history"] == ref["history"]
    assert abs(res["loss"] - ref["loss"]) <= 1e-6 * abs(ref["loss"])
    assert abs(res["final_loss"] - ref["final_loss"]) <= 1e-6 * abs(ref["final_loss"])
