"""Episodes past one machine: the worker pool's Ray backend, against real Ray clusters.

* Quick tier: the pool starts its own local Ray instance (``address=None``, two CPUs), runs jobs
  as remote tasks in Ray worker processes, returns what the local pool returns, and shuts Ray down
  because it started it.
* Slow tier: a cluster started the way a user starts one — ``ray start --head --num-cpus=2`` in
  its own process, with token authentication, reached only by its address
  (``eval.ray_address=host:port``) as a cluster on other machines would be; then ``rs-eval``, run
  as a user runs it (a fresh process), on two real LIBERO task files x two seeds with the scripted
  experts, once on the local process pool and once on Ray: the episodes (success, reasons,
  lengths, calls, plans, subgoal progress; wall times and video paths aside), the per-task
  summaries and the suite must be equal. ``ray start --block`` keeps the head in the one process
  this test starts, so ending it (SIGTERM) stops exactly that cluster (``ray stop`` would stop
  every Ray on the machine). A worker exception reaches the driver naming its episode.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray
from libero_paths import LIBERO_BDDL

from robot_skills import cli
from robot_skills.execution import pool
from robot_skills.execution.pool import Backend, run_parallel, use_backend

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # tests/ is not on workers' path

GOAL_DIR = LIBERO_BDDL / "libero_goal"
TASKS = ["put_the_bowl_on_the_plate", "turn_on_the_stove"]


@dataclass(frozen=True)
class Job:
    task_name: str
    seed: int


def _square(job: Job) -> dict[str, Any]:
    """A job result that says where it ran."""
    in_ray_worker = ray.is_initialized() and (
        ray.get_runtime_context().worker.mode == ray.WORKER_MODE)
    return {"task": job.task_name, "seed": job.seed, "value": job.seed ** 2, "pid": os.getpid(),
            "ray_worker": in_ray_worker, "omp": os.environ.get("OMP_NUM_THREADS"),
            "success": job.seed % 2 == 0}


def _boom(job: Job) -> dict[str, Any]:
    if job.seed == 3:
        raise ZeroDivisionError(f"episode {job.task_name} blew up")
    return _square(job)


# ----------------------------------------------------------------------------- quick tier
def test_backend_choices_are_checked() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        Backend("dask")
    with pytest.raises(ValueError, match="needs backend 'ray'"):
        Backend("local", "127.0.0.1:6379")
    with pytest.raises(ValueError, match="non-empty"):
        Backend("ray", " ")
    assert pool.current_backend() == Backend("local")
    with use_backend("ray", "auto") as b:
        assert pool.current_backend() is b and b.address == "auto"
    assert pool.current_backend() == Backend("local")
    assert pool.job_label(Job("put_the_bowl_on_the_plate", 7)) == (
        "task=put_the_bowl_on_the_plate, seed=7")


def test_config_refuses_unknown_workers_and_stray_address(tmp_path: Path) -> None:
    from robot_skills.config import ConfigValueError

    cfg = cli.load_config([f"run_dir={tmp_path}", "eval.workers=ray",
                           "eval.ray_address=10.0.0.1:6379"])
    assert cfg.eval.workers == "ray" and cfg.eval.ray_address == "10.0.0.1:6379"
    with pytest.raises(ConfigValueError, match="eval.workers='dask'"):
        cli.load_config([f"run_dir={tmp_path}", "eval.workers=dask"])
    with pytest.raises(ConfigValueError, match="eval.ray_address"):
        cli.load_config([f"run_dir={tmp_path}", "eval.ray_address=10.0.0.1:6379"])


def test_local_ray_instance_runs_jobs_in_ray_workers_and_is_shut_down() -> None:
    assert not ray.is_initialized()
    jobs = [Job(f"task{i % 2}", i) for i in range(6)]
    got = run_parallel(_square, jobs, workers=2, backend=Backend("ray"), progress=False)
    assert not ray.is_initialized(), "the pool started Ray, so it must shut it down"
    local = run_parallel(_square, jobs, workers=1, progress=False)
    key = lambda r: (r["task"], r["seed"])  # noqa: E731
    strip = lambda r: {k: v for k, v in r.items() if k not in ("pid", "ray_worker", "omp")}  # noqa: E731
    assert [strip(r) for r in sorted(got, key=key)] == [strip(r) for r in sorted(local, key=key)]
    assert all(r["ray_worker"] for r in got) and not any(r["ray_worker"] for r in local)
    assert os.getpid() not in {r["pid"] for r in got}
    assert {r["omp"] for r in got} == {"1"}  # worker threads pinned as in the process pool


# ----------------------------------------------------------------------------- slow tier
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head() -> Iterator[tuple[str, dict[str, str]]]:
    """A two-CPU Ray head started with ``ray start --head --block``, with token authentication
    on (Ray's default for new clusters since 2.5x); yields its address and the environment a
    driver needs to join it (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``)."""
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="rs-ray-")  # short: Ray's socket paths live under it
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, **auth}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    ray_cli = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
         "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not ready.wait(0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`ray start --head` did not come up (exit {proc.poll()}):\n"
                                   + "".join(lines[-40:]))
        yield f"127.0.0.1:{port}", auth
    finally:
        proc.terminate()  # --block: the head stops every process it started
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _rs_eval(run_dir: Path, *extra: str, env: dict[str, str] | None = None
             ) -> tuple[dict[str, Any], str, float]:
    """``rs-eval`` in a fresh process, as a user runs it; returns results, output, wall time."""
    args = [f"run_dir={run_dir}", f"suite.path={GOAL_DIR}", f"+suite.tasks=[{','.join(TASKS)}]",
            "workers=2", "eval.policy=expert", "eval.episodes_per_task=2", "eval.video=true",
            "suite.max_episode_steps=600", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from robot_skills.cli import eval_main; "
                           "eval_main()", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})}, cwd=run_dir.parent)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return json.loads((run_dir / "eval_expert" / "results.json").read_text()), out, wall


def _comparable(x: Any) -> Any:
    """Drop what may differ between two runs of the same episodes: wall times and file paths."""
    if isinstance(x, dict):
        return {k: _comparable(v) for k, v in x.items()
                if "time" not in k and k not in ("video",)}
    if isinstance(x, list):
        return [_comparable(v) for v in x]
    return x


@pytest.mark.slow
def test_expert_eval_on_a_ray_cluster_equals_the_process_pool(
        tmp_path: Path, ray_head: tuple[str, dict[str, str]]) -> None:
    address, auth = ray_head
    local, out_local, t_local = _rs_eval(tmp_path / "local")
    on_ray, out_ray, t_ray = _rs_eval(tmp_path / "ray", "eval.workers=ray",
                                      f"eval.ray_address={address}", env=auth)
    print(f"\nrs-eval wall time, 2 tasks x 2 seeds, expert: process pool (2 workers) "
          f"{t_local:.1f} s; Ray cluster (2 CPUs) {t_ray:.1f} s")
    # the progress bar names the backend: these episodes ran as Ray tasks on the 2-CPU cluster
    assert "[ray: 1 node(s), 2 CPUs]" in out_ray and "[ray:" not in out_local, out_ray[-3000:]
    eps_local, eps_ray = local["episodes"], on_ray["episodes"]
    assert [(e["task"], e["seed"]) for e in eps_ray] == [(t, s) for t in TASKS for s in (0, 1)]
    assert _comparable(eps_ray) == _comparable(eps_local)
    assert _comparable(on_ray["tasks"]) == _comparable(local["tasks"])
    assert on_ray["suite"] == local["suite"]
    assert local["suite"]["n_episodes"] == 4 and local["suite"]["successes"] >= 3, local["suite"]
    for run in ("local", "ray"):
        out = tmp_path / run / "eval_expert"
        assert (out / "report.html").stat().st_size > 0
        for task in TASKS:  # Ray workers rendered the rollout videos like pool workers do
            assert (out / "videos" / f"{task}.mp4").stat().st_size > 0


@pytest.mark.slow
def test_a_worker_exception_on_ray_names_its_episode() -> None:
    jobs = [Job("put_the_bowl_on_the_plate", s) for s in range(4)]
    with pytest.raises(ZeroDivisionError, match="blew up") as info:
        run_parallel(_boom, jobs, workers=2, backend=Backend("ray"), progress=False)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "task=put_the_bowl_on_the_plate, seed=3" in notes and "on Ray" in notes, notes
    assert not ray.is_initialized(), "the pool started Ray, so it must shut it down on errors too"
