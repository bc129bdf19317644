"""The lazy HDF5 dataset: the same samples as the in-memory path (synthetic and real sim demos),
the same statistics from a streaming pass, views and splits, DataLoader workers, the byte-bounded
cache, and memory that stays within the cache bound on a few-hundred-MB file."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch
from libero_paths import LIBERO_BDDL

from robot_skills.data.dataset import SkillChunkDataset, write_synthetic_demos
from robot_skills.data.lazy import (
    BlockShuffleSampler,
    ByteLRUCache,
    LazySkillChunkDataset,
    load_skill_dataset,
    write_bulk_synthetic_demos,
)

STAT_KEYS = ("feature_mean", "feature_std", "action_mean", "action_std")


def _stack(items: list[dict[str, torch.Tensor]]) -> dict[str, np.ndarray]:
    return {k: np.stack([it[k].numpy() for it in items]) for k in items[0]}


def _assert_same_samples(mem: SkillChunkDataset, lazy: LazySkillChunkDataset) -> None:
    assert len(mem) == len(lazy)
    got = _stack(lazy.__getitems__(list(range(len(lazy)))))
    np.testing.assert_array_equal(got["features"], mem.features)
    np.testing.assert_array_equal(got["actions"], mem.actions)
    np.testing.assert_array_equal(got["mask"], mem.mask)
    np.testing.assert_array_equal(got["skill_id"], mem.skill_ids)
    np.testing.assert_array_equal(lazy.episode_ids, mem.episode_ids)
    one = lazy[len(lazy) - 1]  # single-item path, same dtypes as the in-memory items
    ref = mem[len(mem) - 1]
    for k in ref:
        assert one[k].dtype == ref[k].dtype and torch.equal(one[k], ref[k])


def _assert_same_stats(a, b) -> None:
    for k in STAT_KEYS:
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=1e-6, atol=1e-7)
    assert a.gripper_levels == b.gripper_levels
    assert a.num_samples == b.num_samples and a.skills == b.skills


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("lazy")
    return [write_synthetic_demos(d / "a.hdf5", num_demos=5, steps_per_skill=23),
            write_synthetic_demos(d / "b.hdf5", num_demos=3, steps_per_skill=17, seed=4)]


@pytest.fixture(scope="module")
def real_demos(tmp_path_factory) -> Path:
    """Two expert demonstrations of a real libero_goal task, collected in the simulator."""
    from robot_skills import cli

    run = tmp_path_factory.mktemp("real")
    cfg = cli.load_config([f"run_dir={run}", f"suite.path={LIBERO_BDDL / 'libero_goal'}",
                           "+suite.tasks=[put_the_bowl_on_the_plate]", "workers=1",
                           "collect.mode=task", "collect.demos_per_task=2",
                           "suite.max_episode_steps=400"])
    cli.run_collect(cfg)
    return run / "demos.hdf5"


@pytest.mark.parametrize(("chunk", "block", "cache"), [(5, 7, 20_000), (10, 256, 1 << 20),
                                                      (1, 1, 0)])
def test_lazy_samples_and_stats_equal_in_memory(files, chunk, block, cache):
    mem = SkillChunkDataset.from_hdf5(files, chunk_size=chunk)
    lazy = LazySkillChunkDataset.from_hdf5(files, chunk_size=chunk, block_steps=block,
                                           cache_bytes=cache)
    _assert_same_samples(mem, lazy)
    _assert_same_stats(mem.compute_stats(), lazy.compute_stats())
    info = lazy.cache_info()
    assert info["nbytes"] <= cache and info["max_bytes"] == cache
    # normalised view == the in-memory tensors() rows
    stats = mem.compute_stats()
    t = mem.tensors(stats)
    got = _stack(lazy.with_stats(stats).__getitems__(list(range(len(lazy)))))
    for k in ("features", "actions", "mask"):
        assert got[k].dtype == t[k].numpy().dtype
        np.testing.assert_array_equal(got[k], t[k].numpy())


def test_lazy_views_match_in_memory_views(files):
    mem = SkillChunkDataset.from_hdf5(files, chunk_size=4)
    lazy = LazySkillChunkDataset.from_hdf5(files, chunk_size=4, block_steps=16)
    for (a, b) in zip(mem.split_by_episode(0.3, seed=2), lazy.split_by_episode(0.3, seed=2),
                      strict=True):
        _assert_same_samples(a, b)
        _assert_same_stats(a.compute_stats(), b.compute_stats())
    _assert_same_samples(mem.for_skill("place_on"), lazy.for_skill("place_on"))
    _assert_same_samples(SkillChunkDataset.from_hdf5(files, ["pick"], 4, skill_vocab=mem.skills),
                         LazySkillChunkDataset.from_hdf5(files, ["pick"], 4,
                                                         skill_vocab=mem.skills))
    whole_m = SkillChunkDataset.whole_task(files[0], "task", ["cube_1", "plate_1"], 6)
    whole_l = LazySkillChunkDataset.whole_task(files[0], "task", ["cube_1", "plate_1"], 6,
                                               block_steps=9)
    _assert_same_samples(whole_m, whole_l)
    _assert_same_stats(whole_m.compute_stats(), whole_l.compute_stats())
    with pytest.raises(IndexError, match="outside a dataset"):
        lazy[len(lazy)]
    with pytest.raises(KeyError, match="mug"):
        lazy.for_skill("mug")


def test_lazy_equals_in_memory_on_real_sim_demos(real_demos):
    mem = SkillChunkDataset.from_hdf5(real_demos, chunk_size=8)
    lazy = LazySkillChunkDataset.from_hdf5(real_demos, chunk_size=8, block_steps=32,
                                           cache_bytes=64 << 10)
    assert set(mem.skills) >= {"pick", "place_on"}
    _assert_same_samples(mem, lazy)
    _assert_same_stats(mem.compute_stats(), lazy.compute_stats())


def test_dataloader_workers_see_every_sample_once(files):
    lazy = LazySkillChunkDataset.from_hdf5(files, chunk_size=5, block_steps=8,
                                           cache_bytes=200_000)
    mem = SkillChunkDataset.from_hdf5(files, chunk_size=5)
    sampler = BlockShuffleSampler(lazy, num_workers=2, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(len(lazy)))  # a permutation of all samples
    assert order != list(range(len(lazy)))
    loader = torch.utils.data.DataLoader(lazy, batch_size=32, sampler=sampler, num_workers=2)
    feats = np.concatenate([b["features"].numpy() for b in loader])
    np.testing.assert_array_equal(feats, mem.features[order])
    assert lazy.cache_info()["entries"] == 0  # the workers opened their own files and caches
    sampler.set_epoch(1)
    assert list(sampler) != order
    halves = [list(BlockShuffleSampler(lazy, seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert set(halves[0]) | set(halves[1]) == set(range(len(lazy)))
    assert len(halves[0]) == len(halves[1])


def test_byte_lru_cache_bounds_and_evicts_oldest():
    c = ByteLRUCache(100)
    c.put("a", 1, 40)
    c.put("b", 2, 40)
    assert c.get("a") == 1  # now "b" is the least recently used
    c.put("c", 3, 40)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3
    assert c.nbytes == 80 and c.evictions == 1
    c.put("huge", 4, 101)  # larger than the bound: never stored
    assert c.get("huge") is None and c.nbytes <= 100
    with pytest.raises(ValueError, match=">= 0"):
        ByteLRUCache(-1)


def test_load_skill_dataset_switches_on_size(files):
    small = load_skill_dataset(files, chunk_size=4)
    assert isinstance(small, SkillChunkDataset)
    big = load_skill_dataset(files, chunk_size=4, max_in_memory_bytes=1000)
    assert isinstance(big, LazySkillChunkDataset)
    assert isinstance(load_skill_dataset(files, chunk_size=4, lazy=True), LazySkillChunkDataset)
    assert big.nbytes_in_memory() == pytest.approx(
        small.features.nbytes + small.actions.nbytes + small.mask.nbytes
        + small.skill_ids.nbytes + small.episode_ids.nbytes)


CACHE_BYTES = 8 << 20
RSS_SLACK_BYTES = 32 << 20
"""Growth allowed beyond the cache: the HDF5 library's metadata caches, allocator arenas, the
loader's batch tensors and the sampler's index array (measured: ~12 MiB on a 260 MB file)."""


@pytest.mark.slow
def test_lazy_memory_stays_within_the_cache_bound(tmp_path):
    import psutil

    path = tmp_path / "bulk.hdf5"
    info = write_bulk_synthetic_demos(path, num_steps=450_000)
    assert info["bytes"] > 200e6  # a few hundred MB
    lazy = LazySkillChunkDataset.from_hdf5(path, chunk_size=10, cache_bytes=CACHE_BYTES)
    in_memory = lazy.nbytes_in_memory()
    assert in_memory > 4 * (CACHE_BYTES + RSS_SLACK_BYTES)  # the in-memory path would not fit
    gc.collect()
    proc = psutil.Process()
    rss0 = peak = proc.memory_info().rss
    loader = torch.utils.data.DataLoader(lazy, batch_size=256,
                                         sampler=BlockShuffleSampler(lazy, seed=0))
    seen = 0
    for batch in loader:
        seen += len(batch["features"])
        peak = max(peak, proc.memory_info().rss)
    assert seen == len(lazy) == info["steps"]
    assert lazy.cache_info()["nbytes"] <= CACHE_BYTES
    growth = peak - rss0
    assert growth < CACHE_BYTES + RSS_SLACK_BYTES, f"RSS grew {growth / 2**20:.1f} MiB"
