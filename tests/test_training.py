"""Training pipeline: the policy fits a known action function, LoRA leaves the base frozen,
checkpoints resume after a kill, and the whole library round-trips through disk."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from robot_skills.data.dataset import SkillChunkDataset, write_synthetic_demos
from robot_skills.policies.bc import GoalConditionedBC, chunk_loss
from robot_skills.policies.lora import LoRALinear
from robot_skills.skills.library import SkillLibrary
from robot_skills.skills.skill_dir import build_model
from robot_skills.training.device import (
    autocast,
    configure_threads,
    init_distributed,
    select_device,
)
from robot_skills.training.trainable import LossForward, Trainable
from robot_skills.training.trainer import (
    FitConfig,
    TrainConfig,
    _Stop,
    evaluate_loss,
    fit,
    library_work_dir,
    train_base,
    train_lora_adapter,
    train_skill_library,
    train_skill_version,
    train_standalone_skill,
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
    # PEFT's key layout: base_model.model.<layer>.lora_{A,B}.weight
    assert sorted(state) == sorted(f"base_model.model.{n}.lora_{ab}.weight"
                                   for n in layers for ab in "AB")
    assert all(v.shape[0] == 4 for k, v in state.items() if k.endswith("lora_A.weight"))
    assert all(v.shape[1] == 4 for k, v in state.items() if k.endswith("lora_B.weight"))
    assert any(v.abs().max() > 0 for k, v in state.items() if k.endswith("lora_B.weight"))
    assert np.isfinite(res.final_loss) and res.step == 60


def test_resume_after_kill_continues_from_checkpoint(demos, tmp_path):
    ds = SkillChunkDataset.from_hdf5(demos[0], chunk_size=5)
    stats = ds.compute_stats()
    data = ds.tensors(stats)
    fcfg = FitConfig(steps=20, batch_size=64, lr=1e-3, ckpt_every=5, progress=False)
    kw = {"ctx": init_distributed("cpu"), "fingerprint": "x"}

    def kill_at_12(step):
        if step == 12:
            raise _Stop()

    torch.manual_seed(0)
    m = GoalConditionedBC(TrainConfig(**SMALL).arch(2))
    init = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(_Stop):
        fit(m, data, fcfg, work_dir=tmp_path / "run", _on_step=kill_at_12, **kw)
    m2 = GoalConditionedBC(TrainConfig(**SMALL).arch(2))  # a fresh process: new model
    res = fit(m2, data, fcfg, work_dir=tmp_path / "run", **kw)
    assert res.resumed_from == 10 and res.step == 20 and np.isfinite(res.final_loss)
    # identical to a run that was never interrupted
    m3 = GoalConditionedBC(TrainConfig(**SMALL).arch(2))
    m3.load_state_dict(init)
    fit(m3, data, fcfg, work_dir=tmp_path / "clean", **kw)
    for k, v in m3.state_dict().items():
        torch.testing.assert_close(m2.state_dict()[k], v, rtol=1e-5, atol=1e-6)
    # a different config does not pick up the stale checkpoint
    res4 = fit(GoalConditionedBC(TrainConfig(**SMALL).arch(2)), data, fcfg,
               work_dir=tmp_path / "run", **{**kw, "fingerprint": "y"})
    assert res4.resumed_from == 0


def test_train_skill_library_end_to_end(demos, tmp_path):
    cfg = TrainConfig(**{**SMALL, "hidden": 32, "tensorboard": True}, steps=40, lora_steps=10,
                      lora_rank=2, ckpt_every=20)
    out = train_skill_library([demos[0]], tmp_path / "lib", cfg)
    lib = SkillLibrary(out)
    assert lib.list() == ["pick", "place_on"]
    assert set(lib.verify_all().values()) == {"ok"}
    m = lib.manifest("place_on")
    assert m["adapter"] == {"kind": "lora", "format": "peft", "rank": 2, "alpha": 16.0,
                            "target_layers": ["blocks.0.fc", "blocks.1.fc", "head", "inp"]}
    assert len(m["provenance"]["dataset_sha256"]) == 64
    assert m["provenance"]["config"]["steps"] == 40
    assert m["base_policy"]["skill_id"] == 1
    # checkpoints and logs live beside the library (they survive the library's swap)
    assert not (out / ".work").exists()
    assert list((library_work_dir(out) / "tb" / "base").glob("events.out.tfevents.*"))
    from robot_skills.data.hdf5 import DemoReader
    with DemoReader(demos[1]) as r:
        demo = r.load("demo_0")
    skill = lib.get("pick")
    skill.reset(demo.segments[0].args, None)
    a = skill.act(demo.observation(0))
    assert np.all(np.isfinite(a.to_array()))
    # merged: plain Linear layers only, no LoRA wrapper (PEFT's or the older own one)
    assert not any(isinstance(x, LoRALinear) or type(x).__module__.startswith("peft")
                   for x in skill.model.modules())
    assert (out / "pick" / "adapter_config.json").is_file()
    assert (out / "pick" / "adapter_model.safetensors").is_file()
    # re-running resumes from the finished checkpoints instead of retraining
    train_skill_library([demos[0]], tmp_path / "lib", cfg)
    base_metrics = SkillLibrary(out).base()[0].provenance["metrics"]
    assert base_metrics["resumed_from"] == 40


def test_standalone_skill_kind_trains_one_policy_per_skill_without_a_base(demos, tmp_path):
    """The other skill kind: each skill its own policy, trained from scratch on its samples only
    (adapter kind ``full``, no base); it fits its own skill better than an untrained policy and
    runs through the library like a LoRA skill."""
    cfg = TrainConfig(**{**SMALL, "hidden": 32}, steps=40, skill_kind="standalone",
                      standalone_steps=150)
    out = train_skill_library([demos[0]], tmp_path / "lib", cfg)
    lib = SkillLibrary(out)
    assert lib.list() == ["pick", "place_on"] and not lib.has_base
    assert set(lib.verify_all().values()) == {"ok"}
    ds = SkillChunkDataset.from_hdf5(demos[0], chunk_size=5)
    stats = ds.compute_stats()
    for name in ("pick", "place_on"):
        m = lib.manifest(name)
        assert m["adapter"]["kind"] == "full" and m["base_policy"] is None
        assert m["provenance"]["metrics"]["standalone"]["steps"] == 150
        assert m["provenance"]["num_samples"] == len(ds.for_skill(name))
        model, sid = build_model(lib.load(name))
        assert sid == 0
        sub = ds.for_skill(name)
        one = SkillChunkDataset(sub.features, np.zeros_like(sub.skill_ids), sub.actions, sub.mask,
                                sub.episode_ids, [name], 5)
        untrained = TrainConfig(**{**SMALL, "hidden": 32}).make_policy(1)
        assert _first_action_error(model, one, stats) < 0.5 * _first_action_error(
            untrained, one, stats)
    from robot_skills.data.hdf5 import DemoReader
    with DemoReader(demos[1]) as r:
        demo = r.load("demo_0")
    skill = lib.get("pick")
    skill.reset(demo.segments[0].args, None)
    assert np.all(np.isfinite(skill.act(demo.observation(0)).to_array()))
    with pytest.raises(ValueError, match="skill_kind"):
        TrainConfig(skill_kind="monolith")
    with pytest.raises(ValueError, match="exactly one skill"):
        train_standalone_skill(ds, stats, cfg, tmp_path, init_distributed("cpu"), "mixed")


def test_retraining_refuses_to_replace_governed_state(demos, tmp_path):
    """A whole-library retrain would drop extra versions and promotions: refused, naming them,
    with the library untouched; ``replace_library`` allows it."""
    import hashlib

    def sha256_tree(root):
        h = hashlib.sha256()
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(root)).encode() + f.read_bytes())
        return h.hexdigest()

    cfg = TrainConfig(**{**SMALL, "hidden": 32}, steps=20, lora_steps=5, lora_rank=2)
    out = train_skill_library([demos[0]], tmp_path / "lib", cfg)
    train_skill_library([demos[0]], out, cfg)  # a plain library retrains as before
    SkillLibrary(out).set_evaluation("pick", {"episodes": 20, "success": 0.9},
                                     trust_tier="supervised")
    train_skill_version([demos[0]], out, "place_on", "1.1.0", cfg)
    before = sha256_tree(out)
    with pytest.raises(ValueError, match=r"place_on@1.1.0.*pick at trust tier 'supervised'|"
                                         r"pick at trust tier 'supervised'.*place_on@1.1.0"):
        train_skill_library([demos[0]], out, cfg)
    assert sha256_tree(out) == before
    train_skill_library([demos[0]], out, replace(cfg, replace_library=True))
    assert SkillLibrary(out).entries() == ["pick", "place_on"]


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


# ----------------------------------------------------------------------------- model-owned loss
class _Mixture(torch.nn.Module):
    """A non-BC trainable: learnable mixing weights over K frozen linear "experts".

    ``y = sum_k softmax(logits)_k E_k x``; only ``logits`` (K,) is a parameter. Reports the
    first mixing weight as an extra metric when ``metrics`` is set.
    """

    def __init__(self, experts: torch.Tensor, metrics: bool = True) -> None:
        super().__init__()
        self.register_buffer("experts", experts)  # (K, D, D)
        self.logits = torch.nn.Parameter(torch.zeros(experts.shape[0]))
        self.metrics = metrics

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)

    def compute_loss(self, batch):
        w = self.weights()
        pred = torch.einsum("k,kij,bj->bi", w, self.experts, batch["x"])
        loss = ((pred - batch["y"]) ** 2).mean()
        return (loss, {"w0": w[0]}) if self.metrics else loss


TRUE_W = torch.tensor([0.7, 0.2, 0.1])


def _mixture_problem(n: int = 256, d: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    experts = torch.randn(3, d, d, generator=g)
    x = torch.randn(n, d, generator=g)
    y = torch.einsum("k,kij,bj->bi", TRUE_W, experts, x)
    return experts, {"x": x, "y": y}


@pytest.mark.parametrize("metrics", [True, False])
def test_fit_trains_a_non_bc_module_through_its_own_loss(tmp_path, metrics):
    experts, data = _mixture_problem()
    model = _Mixture(experts, metrics)
    assert isinstance(model, Trainable)
    before = evaluate_loss(model, data)
    cfg = FitConfig(steps=150, batch_size=32, lr=0.05, warmup_steps=10, log_every=10,
                    ckpt_every=50, progress=False)
    res = fit(model, data, cfg, ctx=init_distributed("cpu"), work_dir=tmp_path / "mix",
              tb_dir=tmp_path / "tb", desc="mix", val_data=data)
    after = evaluate_loss(model, data)
    assert res.step == 150 and res.history[-1] < 0.05 * res.history[0]
    assert after < 0.01 * before and res.val_loss == pytest.approx(after)
    torch.testing.assert_close(model.weights().detach(), TRUE_W, atol=0.03, rtol=0)
    assert set(res.metrics) == ({"w0"} if metrics else set())
    if metrics:
        assert res.metrics["w0"] == pytest.approx(0.7, abs=0.05)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    # the checkpoint holds the model's own parameters and buffers: a re-run resumes, done
    again = fit(_Mixture(experts, metrics), data, cfg, ctx=init_distributed("cpu"),
                work_dir=tmp_path / "mix")
    assert again.resumed_from == 150 and again.final_loss == res.history[-1]


def test_fit_rejects_bad_models_data_and_settings():
    experts, data = _mixture_problem(n=16)
    cfg = FitConfig(steps=2, batch_size=4, lr=1e-2, progress=False)
    ctx = init_distributed("cpu")
    with pytest.raises(TypeError, match="compute_loss"):
        fit(torch.nn.Linear(4, 4), data, cfg, ctx=ctx)
    with pytest.raises(ValueError, match="disagree"):
        fit(_Mixture(experts), {"x": data["x"], "y": data["y"][:8]}, cfg, ctx=ctx)

    class _VectorLoss(_Mixture):
        def compute_loss(self, batch):
            return super().compute_loss(batch)[0] * torch.ones(2)

    with pytest.raises(ValueError, match="0-d"):
        fit(_VectorLoss(experts), data, cfg, ctx=ctx)

    class _NaN(_Mixture):
        def compute_loss(self, batch):
            return self.logits.sum() * float("nan")

    with pytest.raises(FloatingPointError):
        fit(_NaN(experts), data, cfg, ctx=ctx)
    for bad in ({"lr": 0.0}, {"batch_size": 0}, {"steps": -1}, {"grad_clip": -1.0},
                {"weight_decay": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FitConfig(**{"steps": 1, "batch_size": 1, "lr": 1e-3, **bad})


def test_bc_owns_its_masked_chunk_loss(demos):
    ds = SkillChunkDataset.from_hdf5(demos[1], chunk_size=5)
    data = ds.tensors(ds.compute_stats())
    assert (data["mask"] == 0).any()  # padded chunk ends are present
    torch.manual_seed(0)
    for kind in ("l1", "mse"):
        cfg = TrainConfig(**{**SMALL, "loss": kind})
        model = cfg.make_policy(len(ds.skills))
        assert model.loss_kind == kind and isinstance(model, Trainable)
        with torch.no_grad():
            got = model.compute_loss(data)
            want = chunk_loss(model(data["features"], data["skill_id"]), data["actions"],
                              data["mask"], kind)
        assert got.dim() == 0 and got.dtype == torch.float32
        torch.testing.assert_close(got, want)
        # batches are combined with the real-step weights: the result is the exact masked mean
        assert evaluate_loss(model, data, batch_size=7) == pytest.approx(float(want), rel=1e-5)
        assert model.cfg.to_dict() == cfg.arch(len(ds.skills)).to_dict()  # not an arch setting
    with pytest.raises(ValueError, match="loss kind"):
        GoalConditionedBC(TrainConfig(**SMALL).arch(2), loss="huber")
    with pytest.raises(KeyError, match="actions"):
        model.compute_loss({"features": data["features"], "skill_id": data["skill_id"]})


def _ddp_worker(rank: int, world: int, rdv: str, out: str) -> None:
    import torch.distributed as dist

    from robot_skills.training.device import DistContext

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=world)
    try:
        ctx = DistContext(world, rank, rank, torch.device("cpu"))
        experts, data = _mixture_problem(n=64)
        model = _Mixture(experts)
        with torch.no_grad():  # different start per rank: DDP broadcasts rank 0's
            model.logits.normal_(generator=torch.Generator().manual_seed(rank))
        fit(model, data, FitConfig(steps=12, batch_size=8, lr=0.05, progress=False), ctx=ctx)
        synced = model.logits.detach().clone()
        # negative control: bypassing DDP's forward (``ddp.module``) leaves gradients un-reduced
        ddp = torch.nn.parallel.DistributedDataParallel(LossForward(model))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        shard = {k: v[rank * 32:(rank + 1) * 32] for k, v in data.items()}
        for _ in range(3):
            opt.zero_grad()
            ddp.module(shard)[0].backward()
            opt.step()
        torch.save({"synced": synced, "unsynced": model.logits.detach().clone()},
                   f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_fit_under_ddp_all_reduces_gradients_through_the_wrapper(tmp_path):
    """Two Gloo ranks on different data shards end with identical weights."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    torch.testing.assert_close(r0["synced"], r1["synced"], rtol=0, atol=1e-7)
    assert not torch.allclose(r0["unsynced"], r1["unsynced"], atol=1e-4)


def test_train_skill_version_adds_a_version_beside_the_others(demos, tmp_path):
    from robot_skills.skills.skill_dir import read_manifest

    cfg = TrainConfig(**{**SMALL, "hidden": 32}, steps=20, lora_steps=10, lora_rank=2)
    out = train_skill_library([demos[0]], tmp_path / "lib", cfg)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
              and ".work" not in p.parts}
    d = train_skill_version([demos[0]], out, "pick", "1.1.0", cfg)
    assert d == out / "pick@1.1.0"
    lib = SkillLibrary(out)
    assert [v.version for v in lib.versions("pick")] == ["1.0.0", "1.1.0"]
    assert lib.resolve("pick").version == "1.1.0" and set(lib.verify_all().values()) == {"ok"}
    m = read_manifest(d)
    assert m["trust_tier"] == "sim" and m["provenance"]["parent_version"] == "1.0.0"
    assert m["base_policy"]["sha256"] == lib.base()[0].sha256
    # nothing else changed: base, other skills, the older version
    assert all(p.read_bytes() == b for p, b in before.items())
    with pytest.raises(ValueError, match=r"pick@1\.0\.5 is not newer than the newest version "
                                         r"1\.1\.0"):
        train_skill_version([demos[0]], out, "pick", "1.0.5", cfg)
    assert not (out / "pick@1.0.5").exists()
