"""The training knobs reach the loop from the Hydra config, ``rs-train resume=...`` works, the
SLURM launcher config renders a valid sbatch script, and the throughput benchmark prints its
table."""

from __future__ import annotations

import importlib.util
import os
import re
import stat
from pathlib import Path

import pytest

from robot_skills import cli
from robot_skills.cli import _train_config, config_dir, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_training_group_reaches_train_config():
    cfg = load_config(["training.ema_decay=0.999", "training.resume=false",
                       "training.keep_checkpoints=3", "training.num_workers=4",
                       "training.warmup_steps=7", "training.grad_clip=0.5"])
    t = _train_config(cfg)
    assert (t.ema_decay, t.resume, t.keep_checkpoints, t.num_workers, t.warmup_steps,
            t.grad_clip) == (0.999, False, 3, 4, 7, 0.5)
    f = t.fit_config()
    assert (f.ema_decay, f.resume, f.keep_checkpoints, f.num_workers) == (0.999, False, 3, 4)
    default = _train_config(load_config())
    assert default.resume is True and default.ema_decay == 0.0
    for bad, key in (("training.ema_decay=1.0", "training.ema_decay"),
                     ("training.keep_checkpoints=0", "training.keep_checkpoints"),
                     ("training.num_workers=-1", "training.num_workers")):
        with pytest.raises(ValueError, match=key):
            load_config([bad])


@pytest.mark.parametrize("arg,want", [("resume=false", False), ("resume=true", True), (None, True)])
def test_rs_train_resume_flag(tmp_path, monkeypatch, arg, want):
    seen = {}
    monkeypatch.setitem(cli.JOBS, "train", lambda cfg: seen.setdefault("resume", cfg.training.resume))
    cli.train_main([*([arg] if arg else []), f"run_dir={tmp_path}"])
    assert seen["resume"] is want


def test_slurm_launcher_config_renders_an_sbatch_script(tmp_path, monkeypatch):
    """Compose ``hydra/launcher=slurm`` and build the submitit executor exactly as the Hydra
    plugin does (a stub ``srun`` on PATH stands in for a cluster); the sbatch text asks for the
    nodes, GPUs and one task per GPU."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    from robot_skills.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.nodes=2",
                                 "hydra.launcher.gpus_per_node=4",
                                 "hydra.launcher.tasks_per_node=4",
                                 "hydra.launcher.partition=gpu", "run_dir=x"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.max_num_timeout >= 1  # requeued jobs resume from their checkpoints
    params = OmegaConf.to_container(launcher, resolve=False)
    params.pop("_target_")
    params["submitit_folder"] = str(tmp_path / "submitit")
    params["name"] = "rs-train"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    srun = bindir / "srun"
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    ex = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                               slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    ex.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    text = ex._executor._make_submission_file_text("python -m x", "uid")
    for line in ("#SBATCH --nodes=2", "#SBATCH --gpus-per-node=4", "#SBATCH --ntasks-per-node=4",
                 "#SBATCH --partition=gpu", "#SBATCH --cpus-per-task=8", "#SBATCH --time=240"):
        assert line in text, text


def test_train_throughput_benchmark_prints_its_table(capsys):
    spec = importlib.util.spec_from_file_location("train_throughput",
                                                  ROOT / "benchmarks" / "train_throughput.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main(["--steps", "3", "--warmup", "1", "--samples", "600", "--cpu-batch", "64",
                     "--no-cuda"])
    out = capsys.readouterr().out
    assert len(rows) == 2 and all(sps > 0 for _, _, sps in rows)
    printed = [ln for ln in out.splitlines() if re.search(r"\s64\s+\d+\s+[\d.]+$", ln)]
    assert len(printed) == 2, out


def test_submitit_slurm_tasks_become_torch_distributed_ranks(monkeypatch):
    """Task 5 of 8 (node 1 of gpu[07-08], local task 1) in a submitit SLURM job gets the
    torch.distributed variables; outside such a job nothing is set."""
    from robot_skills.training.device import _export_slurm_env

    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT"):
        monkeypatch.setenv(k, "x")
        monkeypatch.delenv(k)  # restored to absent afterwards, whatever export sets
    slurm = {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "8", "SLURM_PROCID": "5",
             "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "gpu[07-08]",
             "SLURM_JOB_NUM_NODES": "2"}
    for k, v in slurm.items():
        monkeypatch.setenv(k, v)
    _export_slurm_env()  # a plain srun (not submitit): left to torchrun
    assert "WORLD_SIZE" not in os.environ
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    _export_slurm_env()
    got = {k: os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    assert got == {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "gpu07"}
    assert 1024 <= int(os.environ["MASTER_PORT"]) < 65536
