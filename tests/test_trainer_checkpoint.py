"""The training loop's checkpoints, EMA, schedule, data sources and logs (fast tier).

A corrupted newest checkpoint (truncated, bit-flipped, sidecar deleted or garbled) is skipped with
a warning naming it and the previous one is resumed; rotation never deletes the last valid one;
the sidecar holds JSON-safe RNG states, the config and checksums; a resumed run retraces an
uninterrupted one; a map-style Dataset trains exactly like the in-memory tensors."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from robot_skills.training.checkpoint import (
    FORMAT,
    CorruptCheckpointWarning,
    latest_valid_checkpoint,
    list_checkpoints,
    rng_state,
    rotate_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from robot_skills.training.device import DistContext, epoch_indices
from robot_skills.training.loader import StepBatchSampler
from robot_skills.training.trainer import FitConfig, _lr_at, evaluate_loss, fit
from robot_skills.utils.atomic import file_sha256

CPU = DistContext(1, 0, 0, torch.device("cpu"))


class Net(nn.Module):
    """A small regression MLP with dropout (so resuming must restore the torch RNG)."""

    def __init__(self, d: int = 6) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(d, 32), nn.Tanh(), nn.Dropout(0.2), nn.Linear(32, 1))

    def compute_loss(self, batch):
        return ((self.f(batch["x"]) - batch["y"]) ** 2).mean()


def problem(n: int = 256, d: int = 6, seed: int = 0, fn=torch.sin) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, 1, generator=g)
    return {"x": x, "y": fn(x @ w)}


class DictDataset(torch.utils.data.Dataset):
    """The same samples as a map-style dataset of dicts (what a lazy HDF5 reader yields)."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(next(iter(self.data.values())))

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.data.items()}


def _cfg(**kw) -> FitConfig:
    base = {"steps": 20, "batch_size": 16, "lr": 3e-3, "warmup_steps": 4, "ckpt_every": 5,
            "log_every": 1, "progress": False, "keep_checkpoints": 5}
    return FitConfig(**{**base, **kw})


def _train(tmp, cfg, data=None, fingerprint="fp", **kw):
    torch.manual_seed(0)
    model = Net()
    res = fit(model, problem() if data is None else data, cfg, ctx=CPU, work_dir=tmp,
              fingerprint=fingerprint, **kw)
    return model, res


def _same_weights(a: nn.Module, b: nn.Module, tol: float = 0.0) -> None:
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(v, w, rtol=0, atol=tol, msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 20-step run (checkpoints at 5, 10, 15, 20)."""
    return _train(tmp_path_factory.mktemp("ref"), _cfg())


def _corrupt(kind: str, ckpt):
    st, side = ckpt / "step_00000015.safetensors", ckpt / "step_00000015.json"
    if kind == "truncate":
        st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
    elif kind == "flip":
        b = bytearray(st.read_bytes())
        b[-7] ^= 0x10  # one bit in the tensor data: same size, another checksum
        st.write_bytes(bytes(b))
    elif kind == "no_sidecar":
        side.unlink()
    elif kind == "garbled_sidecar":
        side.write_text(side.read_text()[:40])


@pytest.mark.parametrize("kind", ["truncate", "flip", "no_sidecar", "garbled_sidecar"])
def test_corrupted_newest_checkpoint_is_skipped_for_the_previous(tmp_path, reference, kind):
    with pytest.raises(_Killed):
        _train(tmp_path, _cfg(), _on_step=_kill_at(17))
    ckpt = tmp_path / "ckpt"
    assert [s for s, _ in list_checkpoints(ckpt)] == [15, 10, 5]
    _corrupt(kind, ckpt)
    with pytest.warns(CorruptCheckpointWarning, match="step_00000015"):
        model, res = _train(tmp_path, _cfg())
    assert res.resumed_from == 10 and res.step == 20
    assert res.checkpoint is not None and res.checkpoint.endswith("step_00000010.json")
    ref_model, ref_res = reference
    _same_weights(model, ref_model)  # resuming from 10 retraces the uninterrupted run
    assert res.history == ref_res.history
    # the rewritten step-15 checkpoint is valid again; rotation kept the newest valid ones
    assert latest_valid_checkpoint(ckpt).step == 20


class _Killed(Exception):
    pass


def _kill_at(step):
    def hook(s):
        if s == step:
            raise _Killed()
    return hook


def test_rotation_never_deletes_the_last_valid_checkpoint(tmp_path):
    t = {"w": torch.ones(3)}
    for s in (5, 10, 15):
        save_checkpoint(tmp_path, s, t, {"note": s}, keep=3)
    for s in (10, 15):  # the two newest become invalid
        p = tmp_path / f"step_{s:08d}.safetensors"
        p.write_bytes(p.read_bytes()[:-4])
    removed = rotate_checkpoints(tmp_path, keep=1)
    assert removed == []  # step 5 is the newest valid one: kept, and nothing older to delete
    with pytest.warns(CorruptCheckpointWarning) as rec:
        ck = latest_valid_checkpoint(tmp_path)
    assert ck.step == 5 and torch.equal(ck.tensors["w"], torch.ones(3))
    assert {str(w.message).split(":")[0] for w in rec} == {
        f"skipping checkpoint {tmp_path / f'step_{s:08d}.safetensors'}" for s in (15, 10)}
    save_checkpoint(tmp_path, 20, t, {}, keep=1)  # a new valid one: the older ones go
    assert [s for s, _ in list_checkpoints(tmp_path)] == [20]
    save_checkpoint(tmp_path, 25, t, {}, keep=2)
    save_checkpoint(tmp_path, 30, t, {}, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [30, 25]
    # a half-written newest one (tensor file without its sidecar) is never resumed
    (tmp_path / "step_00000035.safetensors").write_bytes(b"partial")
    with pytest.warns(CorruptCheckpointWarning, match="no sidecar"):
        assert latest_valid_checkpoint(tmp_path).step == 30


def test_sidecar_is_json_with_rng_config_and_checksums(tmp_path):
    _train(tmp_path, _cfg(steps=5, ema_decay=0.9))
    side = tmp_path / "ckpt" / "step_00000005.json"
    meta = json.loads(side.read_text())
    assert meta["format"] == FORMAT and meta["step"] == 5 and meta["fingerprint"] == "fp"
    assert meta["config"]["ema_decay"] == 0.9 and meta["config"]["batch_size"] == 16
    (name, info), = meta["files"].items()
    assert info["sha256"] == file_sha256(tmp_path / "ckpt" / name)
    assert info["bytes"] == (tmp_path / "ckpt" / name).stat().st_size
    assert set(meta["rng"][0]) >= {"python", "numpy", "torch"}
    ck = latest_valid_checkpoint(tmp_path / "ckpt")
    groups = {k.split(".")[0] for k in ck.tensors}
    assert groups == {"model", "ema", "optim"} and meta["ema_updates"] == 5
    assert ck.tensors["optim.0.exp_avg"].shape == ck.tensors["model.f.0.weight"].shape


def test_rng_state_round_trips_through_json():
    state = json.loads(json.dumps(rng_state()))
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    with pytest.raises(ValueError, match="RNG state"):
        set_rng_state({"python": {}})


def test_resume_false_starts_afresh_and_drops_old_checkpoints(tmp_path, reference):
    with pytest.raises(_Killed):
        _train(tmp_path, _cfg(), _on_step=_kill_at(12))
    model, res = _train(tmp_path, _cfg(resume=False))
    assert res.resumed_from == 0 and res.step == 20
    _same_weights(model, reference[0])
    # another fingerprint does not resume either
    _, res2 = _train(tmp_path, _cfg(), fingerprint="other")
    assert res2.resumed_from == 0


def test_ema_weights_follow_the_average_and_resume(tmp_path):
    decay = 0.8
    trace = []
    torch.manual_seed(0)
    model = Net()
    cfg = _cfg(steps=12, ema_decay=decay)

    def record(step):
        trace.append({k: v.detach().clone() for k, v in model.named_parameters()})

    fit(model, problem(), cfg, ctx=CPU, _on_step=record)
    ema = dict(trace[0])
    for t in trace[1:]:
        ema = {k: decay * ema[k] + (1 - decay) * t[k] for k in ema}
    for k, p in model.named_parameters():  # fit returns the averaged weights
        torch.testing.assert_close(p.detach(), ema[k], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(trace[-1]["f.0.weight"], ema["f.0.weight"])
    # killed after step 7 (checkpoint at 5): the resumed run's EMA equals the uninterrupted one
    with pytest.raises(_Killed):
        _train(tmp_path, cfg, _on_step=_kill_at(7))
    resumed, res = _train(tmp_path, cfg)
    assert res.resumed_from == 5
    _same_weights(resumed, model, tol=1e-6)


def test_dataset_source_trains_like_in_memory_tensors(tmp_path, reference):
    data = problem()
    for workers in (0, 2):
        model, res = _train(None, _cfg(num_workers=workers), data=DictDataset(data))
        assert res.history == pytest.approx(reference[1].history, rel=1e-6)
        _same_weights(model, reference[0], tol=1e-6)
    assert evaluate_loss(model, DictDataset(data), batch_size=50) == pytest.approx(
        evaluate_loss(model, data), rel=1e-6)
    with pytest.raises(TypeError, match="map-style"):
        fit(Net(), [1, 2, 3], _cfg(), ctx=CPU)


def test_ranks_batches_interleave_into_the_single_process_batch():
    n, seed = 103, 7
    one = StepBatchSampler(n, 10, seed, CPU, 0, 25)
    ranks = [StepBatchSampler(n, 5, seed, DistContext(2, r, r, torch.device("cpu")), 0, 25)
             for r in range(2)]
    assert one.steps_per_epoch == ranks[0].steps_per_epoch == 10
    for s in range(25):  # spans three epochs
        together = torch.cat([r.batch_at(s) for r in ranks])
        assert sorted(together.tolist()) == sorted(one.batch_at(s).tolist())
    e0 = epoch_indices(n, 0, seed, CPU)
    assert sorted(e0.tolist()) == list(range(n))
    assert not torch.equal(e0, epoch_indices(n, 1, seed, CPU))


def test_schedule_warmup_then_cosine_to_the_floor():
    lrs = [_lr_at(s, 100, 1.0, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(b < a for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert _lr_at(100, 100, 1.0, 10, 0.1) == pytest.approx(0.1)
    assert _lr_at(55, 100, 1.0, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))


def test_gradient_clipping_bounds_the_global_norm(tmp_path):
    """AdamW's first moment after one step is ``(1 - beta1) * g``: its global norm shows the
    gradient that was applied (clipped to ``grad_clip``, or raw with 0)."""
    norms = {}
    for clip in (0.0, 1e-3):
        _train(tmp_path / str(clip), _cfg(steps=1, warmup_steps=0, grad_clip=clip))
        ck = latest_valid_checkpoint(tmp_path / str(clip) / "ckpt")
        m1 = [v for k, v in ck.tensors.items() if k.endswith(".exp_avg")]
        norms[clip] = float(torch.linalg.vector_norm(torch.stack([t.norm() for t in m1]))) / 0.1
    assert norms[1e-3] == pytest.approx(1e-3, rel=1e-4)
    assert norms[0.0] > 10 * 1e-3


def test_tensorboard_scalars_and_eval_hook(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    calls = []

    def success(model, step):
        calls.append(step)
        assert not model.training
        return {"success": step / 100}

    _, res = _train(tmp_path / "w", _cfg(steps=10, log_every=5, eval_every=4), tb_dir=tmp_path / "tb",
                    desc="stage", eval_fn=success)
    assert calls == [4, 8, 10] and res.eval == {"success": 0.1}
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = set(acc.Tags()["scalars"])
    assert tags == {"stage/loss", "stage/lr", "stage/samples_per_s", "stage/eval/success"}
    assert [e.step for e in acc.Scalars("stage/loss")] == [5, 10]
    assert all(e.value > 0 for e in acc.Scalars("stage/samples_per_s"))
    assert [e.value for e in acc.Scalars("stage/eval/success")] == pytest.approx([0.04, 0.08, 0.1])


def test_nan_loss_names_its_step():
    class Late(Net):
        calls = 0

        def compute_loss(self, batch):
            Late.calls += 1
            loss = super().compute_loss(batch)
            return loss * float("nan") if Late.calls == 7 else loss

    with pytest.raises(FloatingPointError, match="at step 7"):
        fit(Late(), problem(), _cfg(log_every=50, ckpt_every=50), ctx=CPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_compile_ema_dataloader(tmp_path):
    dev = DistContext(1, 0, 0, torch.device("cuda"))
    torch.manual_seed(0)
    model = Net().cuda()
    res = fit(model, DictDataset(problem()), _cfg(steps=30, bf16=True, compile=True,
                                                   ema_decay=0.9, num_workers=2),
              ctx=dev, work_dir=tmp_path)
    assert res.step == 30 and np.isfinite(res.final_loss) and res.history[-1] < res.history[0]
    assert next(model.parameters()).device.type == "cuda"
