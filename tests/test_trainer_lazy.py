"""The training loop reads the lazy HDF5 dataset (``robot_skills.data.lazy``) through a DataLoader
(with worker processes) and follows exactly the trajectory of the in-memory tensors."""

from __future__ import annotations

import pytest
import torch

from robot_skills.data.dataset import write_synthetic_demos
from robot_skills.data.lazy import load_skill_dataset
from robot_skills.training.device import DistContext
from robot_skills.training.trainer import FitConfig, TrainConfig, evaluate_loss, fit

CPU = DistContext(1, 0, 0, torch.device("cpu"))


def test_lazy_hdf5_dataset_trains_like_in_memory_tensors(tmp_path):
    path = write_synthetic_demos(tmp_path / "d.hdf5", num_demos=6, steps_per_skill=20, seed=0)
    mem = load_skill_dataset([path], chunk_size=5, lazy=False)
    lazy = load_skill_dataset([path], chunk_size=5, lazy=True)
    stats = mem.compute_stats()
    arch = TrainConfig(hidden=32, layers=2, chunk_size=5)
    cfg = FitConfig(steps=8, batch_size=32, lr=1e-3, log_every=1, progress=False)

    def run(data, workers=0):
        torch.manual_seed(0)
        model = arch.make_policy(len(mem.skills))
        res = fit(model, data, FitConfig(**{**cfg.__dict__, "num_workers": workers}), ctx=CPU)
        return model, res

    ref_model, ref = run(mem.tensors(stats))
    for workers in (2,):  # worker processes each open the files (the dataset is pickled)
        model, res = run(lazy.with_stats(stats), workers)
        assert res.history == pytest.approx(ref.history, rel=1e-6, abs=1e-7)
        for (k, v), w in zip(model.state_dict().items(), ref_model.state_dict().values(),
                             strict=True):
            torch.testing.assert_close(v, w, rtol=1e-5, atol=1e-6, msg=k)
    assert evaluate_loss(model, lazy.with_stats(stats), batch_size=64) == pytest.approx(
        evaluate_loss(model, mem.tensors(stats)), rel=1e-5)


def test_block_shuffle_order_drives_the_steps(tmp_path):
    """A custom epoch order (the lazy dataset's cache-friendly block shuffle) sets the batches:
    each sample at most once per epoch, the two ranks' batches of a step together are the
    one-process batch, and fit trains with it."""
    from robot_skills.data.lazy import BlockShuffleSampler
    from robot_skills.training.loader import StepBatchSampler

    path = write_synthetic_demos(tmp_path / "d.hdf5", num_demos=6, steps_per_skill=20, seed=0)
    lazy = load_skill_dataset([path], chunk_size=5, lazy=True, block_steps=8)
    n = len(lazy)
    one = StepBatchSampler(n, 16, 3, CPU, 0, 40, BlockShuffleSampler(lazy, 2, seed=3))
    ranks = [StepBatchSampler(n, 8, 3, DistContext(2, r, r, torch.device("cpu")), 0, 40,
                              BlockShuffleSampler(lazy, 2, seed=3, num_replicas=2, rank=r))
             for r in range(2)]
    epoch = torch.cat([one.batch_at(s) for s in range(one.steps_per_epoch)])
    assert len(set(epoch.tolist())) == len(epoch) == one.steps_per_epoch * 16
    for s in range(40):
        both = sorted(torch.cat([r.batch_at(s) for r in ranks]).tolist())
        assert both == sorted(one.batch_at(s).tolist())
    stats = lazy.compute_stats()
    torch.manual_seed(0)
    model = TrainConfig(hidden=32, layers=2, chunk_size=5).make_policy(len(lazy.skills))
    res = fit(model, lazy.with_stats(stats),
              FitConfig(steps=30, batch_size=16, lr=3e-3, log_every=10, progress=False),
              ctx=CPU, sampler=BlockShuffleSampler(lazy, 2, seed=0))
    assert res.step == 30 and res.history[-1] < res.history[0]
    with pytest.raises(ValueError, match="set_epoch"):
        fit(model, lazy.with_stats(stats), FitConfig(steps=1, batch_size=4, lr=1e-3),
            ctx=CPU, sampler=torch.utils.data.SequentialSampler(range(n)))
