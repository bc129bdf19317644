"""Training pipeline: the policy fits a known action function, LoRA leaves the base frozen,
checkpoints resume after a kill, and the whole library round-trips through disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_skills.data.dataset import SkillChunkDataset, write_synthetic_demos
from robot_skills.policies.bc import GoalConditionedBC
from robot_skills.policies.lora import LoRALinear
from robot_skills.skills.library import SkillLibrary
from robot_skills.training.device import (
    autocast,
    configure_threads,
    init_distributed,
    select_device,
)
from robot_skills.training.trainer import (
    TrainConfig,
    _Stop,
    fit,
    train_base,
    train_lora_adapter,
    train_skill_library,
    train_task_policy,
)

SMALL = {"hidden": 128, "layers": 3, "chunk_size": 5, "batch_size": 128, "lr": 2e-3, "warmup_steps": 20,
             "progress": False, "tensorboard": False, "device": "cpu", "num_threads": 1}


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    configure_threads(1)  # small MLPs: one thread is fastest on a shared 2-core machine
    d = tmp_path_factory.mktemp("demos")
    return (write_synthetic_demos(d / "train.hdf5", num_demos=40, steps_per_skill=30, seed=0),
            write_synthetic_demos(d / "test.hdf5", num_demos=8, steps_per_skill=30, seed=1))


@pytest.fixture(scope="module")
def trained(demos, tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    ds = SkillChunkDataset.from_hdf5(demos[0], chunk_size=5)
    stats = ds.compute_stats()
    cfg = TrainConfig(steps=300, **SMALL)
    model, res = train_base(ds, stats, cfg, work, init_distributed("cpu"))
    return ds, stats, cfg, model, res


def _first_action_error(model, ds, stats, sid=None):
    with torch.no_grad():
        x = torch.from_numpy(stats.normalize_features(ds.features))
        pred = stats.unnormalize_actions(model(x, torch.from_numpy(ds.skill_ids)).numpy())
    return np.abs(pred[:, 0, :3] - ds.actions[:, 0, :3]).mean()


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")
    with autocast(torch.device("cpu"), bf16=True):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32


def test_policy_fits_known_action_function(demos, trained):
    """Held-out episodes: the learned delta-position error is far below predicting the mean."""
    ds, stats, _, model, res = trained
    test = SkillChunkDataset.from_hdf5(demos[1], chunk_size=5, skill_vocab=ds.skills)
    err = _first_action_error(model, test, stats)
    baseline = np.abs(test.actions[:, 0, :3] - ds.actions[:, 0, :3].mean(axis=0)).mean()
    assert np.isfinite(res.final_loss) and res.step == 300
    assert err < 0.25 * baseline, (err, baseline)


def test_lora_adapter_trains_with_base_frozen(demos, trained, tmp_path):
    ds, stats, cfg, model, _ = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sub = ds.for_skill("place_on")
    cfg2 = TrainConfig(**{**cfg.to_dict(), "lora_steps": 60, "lora_rank": 4,
                          "lora_targets": ["blocks.*", "head"]})
    state, res, layers = train_lora_adapter(model, sub, stats, cfg2, tmp_path,
                                            init_distributed("cpu"), "place_on")
    for k, v in model.state_dict().items():  # the base itself is untouched
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert layers == ["blocks.0.fc", "blocks.1.fc", "head"]
    assert all(v.shape[0] == 4 for k, v in state.items() if k.endswith("lora_A"))
    assert all(v.shape[1] == 4 for k, v in state.items() if k.endswith("lora_B"))
    assert any(v.abs().max() > 0 for k, v in state.items() if k.endswith("lora_B"))
    assert np.isfinite(res.final_loss) and res.step == 60


def test_resume_after_kill_continues_from_checkpoint(demos, tmp_path):
    ds = SkillChunkDataset.from_hdf5(demos[0], chunk_size=5)
    stats = ds.compute_stats()
    data = ds.tensors(stats)
    kw = {"steps": 20, "batch_size": 64, "lr": 1e-3, "ckpt_every": 5, "progress": False,
              "ctx": init_distributed("cpu"), "fingerprint": "x"}

    def kill_at_12(step):
        if step == 12:
            raise _Stop()

    torch.manual_seed(0)
    m = GoalConditionedBC(TrainConfig(**SMALL).arch(2))
    init = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(_Stop):
        fit(m, data, work_dir=tmp_path / "run", _on_step=kill_at_12, **kw)
    m2 = GoalConditionedBC(TrainConfig(**SMALL).arch(2))  # a fresh process: new model
    res = fit(m2, data, work_dir=tmp_path / "run", **kw)
    assert res.resumed_from == 10 and res.step == 20 and np.isfinite(res.final_loss)
    # identical to a run that was never interrupted
    m3 = GoalConditionedBC(TrainConfig(**SMALL).arch(2))
    m3.load_state_dict(init)
    fit(m3, data, work_dir=tmp_path / "clean", **kw)
    for k, v in m3.state_dict().items():
        torch.testing.assert_close(m2.state_dict()[k], v, rtol=1e-5, atol=1e-6)
    # a different config does not pick up the stale checkpoint
    res4 = fit(GoalConditionedBC(TrainConfig(**SMALL).arch(2)), data, work_dir=tmp_path / "run",
               **{**kw, "fingerprint": "y"})
    assert res4.resumed_from == 0


def test_train_skill_library_end_to_end(demos, tmp_path):
    cfg = TrainConfig(**{**SMALL, "hidden": 32, "tensorboard": True}, steps=40, lora_steps=10,
                      lora_rank=2, ckpt_every=20)
    out = train_skill_library([demos[0]], tmp_path / "lib", cfg)
    lib = SkillLibrary(out)
    assert lib.list() == ["pick", "place_on"]
    assert set(lib.verify_all().values()) == {"ok"}
    m = lib.manifest("place_on")
    assert m["adapter"] == {"kind": "lora", "rank": 2, "alpha": 16.0,
                            "target_layers": ["inp", "blocks.0.fc", "blocks.1.fc", "head"]}
    assert len(m["provenance"]["dataset_sha256"]) == 64
    assert m["provenance"]["config"]["steps"] == 40
    assert m["base_policy"]["skill_id"] == 1
    assert list((out / ".work" / "tb" / "base").glob("events.out.tfevents.*"))
    from robot_skills.data.hdf5 import DemoReader
    with DemoReader(demos[1]) as r:
        demo = r.load("demo_0")
    skill = lib.get("pick")
    skill.reset(demo.segments[0].args, None)
    a = skill.act(demo.observation(0))
    assert np.all(np.isfinite(a.to_array()))
    assert not any(isinstance(x, LoRALinear) for x in skill.model.modules())  # merged
    # re-running resumes from the finished checkpoints instead of retraining
    train_skill_library([demos[0]], tmp_path / "lib", cfg)
    base_metrics = SkillLibrary(out).base()[0].provenance["metrics"]
    assert base_metrics["resumed_from"] == 40


def test_train_task_policy_full_adapter(demos, tmp_path):
    cfg = TrainConfig(**{**SMALL, "hidden": 32}, steps=30)
    d = train_task_policy([demos[0]], tmp_path / "tasks", "synthetic_task",
                          ["cube_1", "plate_1"], cfg, task="synthetic_task",
                          goal=["on cube_1 plate_1"])
    lib = SkillLibrary(tmp_path / "tasks")
    assert lib.list() == ["synthetic_task"] and lib.verify_all() == {"synthetic_task": "ok"}
    m = lib.manifest("synthetic_task")
    assert m["adapter"]["kind"] == "full" and m["base_policy"] is None
    assert m["provenance"]["task_args"] == ["cube_1", "plate_1"]
    pol = lib.get(d.name)
    pol.reset(["cube_1", "plate_1"])
    from robot_skills.data.hdf5 import DemoReader
    with DemoReader(demos[1]) as r:
        assert np.all(np.isfinite(pol.act(r.load("demo_0").observation(0)).to_array()))
    with pytest.raises(ValueError, match="at most 2"):
        train_task_policy([demos[0]], tmp_path / "t2", "x", ["a", "b", "c"], cfg)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_training_and_cpu_inference(demos, tmp_path):
    cfg = TrainConfig(**{**SMALL, "device": "cuda", "bf16": True}, steps=200, lora_steps=50)
    out = train_skill_library([demos[0]], tmp_path / "lib", cfg)
    lib = SkillLibrary(out)
    assert set(lib.verify_all().values()) == {"ok"}
    skill = lib.get("pick")
    assert next(skill.model.parameters()).device.type == "cpu"
    test = SkillChunkDataset.from_hdf5(demos[1], chunk_size=5, skill_vocab=["pick", "place_on"])
    err = _first_action_error(skill.model, test.for_skill("pick"), skill.stats)
    base = np.abs(test.actions[:, 0, :3] - test.actions[:, 0, :3].mean(axis=0)).mean()
    assert err < 0.5 * base
