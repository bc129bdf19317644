"""Lazy camera frames for visuomotor training: the same items as the in-memory frames for every
codec, the same training run (weights and loss) for the same seed, DataLoader workers with their
own files and caches, the size switch and the config knobs, loud failures, and RSS that stays
within the cache bound on a few-hundred-MB (decoded) file."""

from __future__ import annotations

import gc
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from robot_skills.data.images import AugmentConfig, VisuomotorDataset
from robot_skills.data.lazy import (
    LazyFrames,
    frame_store_of,
    lazy_visuomotor_dataset,
    load_visuomotor_dataset,
    visuomotor_frame_bytes,
    write_bulk_synthetic_image_demos,
)

CAMS = ["agentview", "panda/wrist_cam"]
AUG = AugmentConfig(crop=(28, 28), brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> dict[str, Path]:
    """Per codec a tiny file: 3 demos of 24 steps, two 32x32 cameras."""
    d = tmp_path_factory.mktemp("lazy_images")
    out = {}
    for i, codec in enumerate(("gzip", "lzf", "png", "jpeg")):
        out[codec] = d / f"{codec}.hdf5"
        write_bulk_synthetic_image_demos(out[codec], 72, 24, CAMS, (32, 32), codec, seed=i)
    return out


def _items(ds: VisuomotorDataset, idx) -> list[dict[str, torch.Tensor]]:
    out = []
    for i in idx:
        torch.manual_seed(int(i))  # the augmentation's seed comes from torch's generator
        out.append(ds[int(i)])
    return out


def _assert_same_items(mem: VisuomotorDataset, lazy: VisuomotorDataset) -> None:
    assert len(mem) == len(lazy) and mem.skills == lazy.skills and mem.entities == lazy.entities
    for k in ("frame_index", "proprio", "entity_ids", "skill_ids", "actions", "mask",
              "episode_ids"):
        np.testing.assert_array_equal(getattr(lazy, k), getattr(mem, k), err_msg=k)
    idx = np.arange(len(mem))[::-1]  # backwards: blocks are read out of order
    for a, b in zip(_items(mem, idx), _items(lazy, idx), strict=True):
        for k in a:
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("codec", ["gzip", "lzf", "png", "jpeg"])
@pytest.mark.parametrize(("cache", "block"), [(20_000, 1), (1 << 20, 5), (0, 3)])
def test_lazy_frames_equal_in_memory_frames(demo_files, codec, cache, block):
    path = demo_files[codec]
    mem = VisuomotorDataset.from_hdf5(path, CAMS, 4, AUG)
    lazy = lazy_visuomotor_dataset(path, CAMS, 4, AUG, cache_bytes=cache, block_frames=block)
    store = frame_store_of(lazy)
    assert frame_store_of(mem) is None and store is not None
    assert store.cache_info()["misses"] == 0  # building decodes no frame
    for c in CAMS:
        assert isinstance(lazy.frames[c], LazyFrames)
        assert lazy.frames[c].shape == mem.frames[c].shape
        for f in (0, 23, 24, 71, -1):
            np.testing.assert_array_equal(lazy.frames[c][f], mem.frames[c][f])
    stats = mem.compute_stats()
    mem.set_stats(stats)
    lazy.set_stats(lazy.compute_stats())
    _assert_same_items(mem, lazy)
    val = np.isin(mem.episode_ids, [1])  # views share the lazy frames (and their cache)
    _assert_same_items(mem.select(val, train=False), lazy.select(val, train=False))
    info = store.cache_info()
    assert info["nbytes"] <= cache and info["max_bytes"] == cache
    if cache == 0:
        assert info["entries"] == 0 and info["hits"] == 0
    if cache == 1 << 20:  # the whole file fits: every block decoded once per camera
        assert info["misses"] == 2 * 3 * -(-24 // block) and info["evictions"] == 0
    with pytest.raises(TypeError, match="one integer"):
        lazy.frames[CAMS[0]][0:2]
    with pytest.raises(TypeError, match="frame by frame"):
        np.asarray(lazy.frames[CAMS[0]])
    with pytest.raises(IndexError, match="outside"):
        lazy.frames[CAMS[0]][72]
    cached = lazy.frames[CAMS[0]][0]
    with pytest.raises(ValueError, match="read-only"):
        cached[0, 0, 0] = 1  # a cached block cannot be changed through an item


def test_lazy_frames_equal_in_memory_on_real_sim_demos(tmp_path):
    """One expert libero_goal episode rendered with both cameras and stored by the collector."""
    from libero_paths import LIBERO_BDDL

    from robot_skills import cli

    cfg = cli.load_config(["+experiment=visuomotor_cpu", f"run_dir={tmp_path}",
                           f"suite.path={LIBERO_BDDL / 'libero_goal'}",
                           "+suite.tasks=[put_the_bowl_on_the_plate]", "workers=1",
                           "collect.mode=task", "collect.demos_per_task=1",
                           "suite.max_episode_steps=400"])
    cli.run_collect(cfg)
    path = tmp_path / "demos.hdf5"
    aug = AugmentConfig(crop=(56, 56))
    mem = VisuomotorDataset.from_hdf5(path, CAMS, 10, aug)
    lazy = lazy_visuomotor_dataset(path, CAMS, 10, aug, cache_bytes=200_000)
    assert len(mem) > 20 and sorted(mem.skills) == ["pick", "place_on"]
    mem.set_stats(mem.compute_stats())
    lazy.set_stats(lazy.compute_stats())
    _assert_same_items(mem, lazy)
    assert frame_store_of(lazy).cache_info()["evictions"] > 0  # the cache was smaller


def _worker_batches(ds: VisuomotorDataset, workers: int) -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(5)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True, num_workers=workers)
    return list(loader)


def test_dataloader_workers_read_their_own_files(demo_files):
    path = demo_files["png"]
    mem = VisuomotorDataset.from_hdf5(path, CAMS, 4, AUG)
    mem.set_stats(mem.compute_stats())
    lazy = lazy_visuomotor_dataset(path, CAMS, 4, AUG, cache_bytes=100_000)
    lazy.set_stats(lazy.compute_stats())
    got, ref = _worker_batches(lazy, 2), _worker_batches(mem, 2)
    assert len(got) == len(ref) == -(-len(mem) // 16)
    for a, b in zip(got, ref, strict=True):
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert frame_store_of(lazy).cache_info()["entries"] == 0  # the workers' caches, not ours


def test_load_visuomotor_dataset_switches_on_size(demo_files):
    path = demo_files["gzip"]
    decoded = visuomotor_frame_bytes(path, CAMS)
    assert decoded == 72 * 32 * 32 * 3 * 2
    assert visuomotor_frame_bytes(path, CAMS, skills=["pick"]) == decoded  # same demos
    assert visuomotor_frame_bytes(path, CAMS, skills=["no_such_skill"]) == 0
    small = load_visuomotor_dataset(path, CAMS, 4, AUG)
    assert frame_store_of(small) is None
    big = load_visuomotor_dataset(path, CAMS, 4, AUG, max_in_memory_bytes=decoded - 1,
                                  cache_bytes=12345)
    assert frame_store_of(big).cache_bytes == 12345
    assert frame_store_of(load_visuomotor_dataset(path, CAMS, 4, AUG, lazy=True)) is not None
    assert frame_store_of(load_visuomotor_dataset(path, CAMS, 4, AUG, lazy=False,
                                                  max_in_memory_bytes=0)) is None


def test_bad_input_is_loud(demo_files, tmp_path):
    path = demo_files["jpeg"]
    with pytest.raises(KeyError, match="frontview"):
        lazy_visuomotor_dataset(path, ["frontview"], 4, AUG)
    with pytest.raises(ValueError, match="block_frames"):
        lazy_visuomotor_dataset(path, CAMS, 4, AUG, block_frames=0)
    with pytest.raises(ValueError, match="cache_bytes"):
        lazy_visuomotor_dataset(path, CAMS, 4, AUG, cache_bytes=-1)
    with pytest.raises(ValueError, match="smaller than the crop"):
        lazy_visuomotor_dataset(path, CAMS, 4, AugmentConfig(crop=(40, 40)))
    # a frame corrupted after the dataset was built fails when read, naming file, camera, frame
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(path.read_bytes())
    lazy = lazy_visuomotor_dataset(bad, CAMS, 4, AUG, cache_bytes=0)
    with h5py.File(bad, "r+") as f:
        f["data/demo_1/obs/agentview_image"][3] = np.zeros(40, np.uint8)
    np.asarray(lazy.frames["agentview"][24 + 2])  # its neighbour still decodes
    with pytest.raises(ValueError, match=r"bad\.hdf5:/data/demo_1/obs/agentview_image\[3\]"):
        lazy.frames["agentview"][24 + 3]


def test_visuomotor_config_knobs_are_validated():
    from robot_skills.training.visuomotor import VisuomotorTrainConfig

    v = VisuomotorTrainConfig.from_mapping({"lazy_images": True, "image_cache_mb": 64})
    assert v.lazy_images is True and v.image_cache_mb == 64
    for bad in ({"lazy_images": "yes"}, {"image_cache_mb": -1}, {"image_block_frames": 0},
                {"images_in_memory_max_mb": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            VisuomotorTrainConfig.from_mapping(bad)


def test_how_frames_are_read_does_not_change_the_resume_fingerprint(demo_files):
    from robot_skills.training.trainer import TrainConfig
    from robot_skills.training.visuomotor import VisuomotorTrainConfig, _fingerprint

    ds = VisuomotorDataset.from_hdf5(demo_files["lzf"], CAMS, 4, AUG)
    cfg = TrainConfig()
    base = _fingerprint(cfg, VisuomotorTrainConfig(), ds, "sha")
    loading = VisuomotorTrainConfig(lazy_images=True, image_cache_mb=1, image_block_frames=4,
                                    images_in_memory_max_mb=10)
    assert _fingerprint(cfg, loading, ds, "sha") == base  # switch loaders and resume
    assert _fingerprint(cfg, VisuomotorTrainConfig(hue=0.0), ds, "sha") != base


def test_image_loader_benchmark_prints_memory_and_throughput(capsys, tmp_path):
    import importlib.util

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "image_loader_memory.py"
    spec = importlib.util.spec_from_file_location("image_loader_memory", bench)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--steps", "1000", "--size", "16", "--cache-mb", "0.05", "--batch", "32",
                    "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "lazy frames, cache 0 MiB" in out and "samples/s" in out and "peak RSS" in out
    assert res["frames_mb"] == pytest.approx(1000 * 16 * 16 * 3 * 2 / 2**20)
    assert res["samples_per_s"] > 0 and list(tmp_path.iterdir()) == []  # its file is removed


TINY_V = {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1], "strides": [1, 1, 2, 1],
          "groups": 4, "num_keypoints": 8, "embed_dim": 16, "entity_emb_dim": 8}


@pytest.mark.parametrize(("augment", "workers", "codec"),
                         [(False, 0, "gzip"), (True, 0, "gzip"), (True, 2, "jpeg")])
def test_lazy_training_equals_in_memory_training(demo_files, tmp_path, augment, workers, codec):
    from robot_skills.policies.vision import load_visuomotor
    from robot_skills.training.trainer import TrainConfig
    from robot_skills.training.visuomotor import VisuomotorTrainConfig, train_visuomotor

    cfg = TrainConfig(steps=7, batch_size=8, chunk_size=4, hidden=32, layers=2, warmup_steps=1,
                      seed=3, device="cpu", bf16=False, progress=False, tensorboard=False,
                      val_fraction=0.34, ckpt_every=100, num_threads=1, num_workers=workers)
    jitter = {} if augment else {"brightness": 0, "contrast": 0, "saturation": 0, "hue": 0}
    runs = {}
    for lazy in (False, True):
        vcfg = VisuomotorTrainConfig(cameras=CAMS, crop=[28, 28] if augment else [32, 32],
                                     lazy_images=lazy, image_cache_mb=0.05, **TINY_V, **jitter)
        out = train_visuomotor(demo_files[codec], tmp_path / f"vm_{lazy}", cfg, vcfg)
        runs[lazy] = load_visuomotor(out)
    (m0, s0, e0, man0), (m1, s1, e1, man1) = runs[False], runs[True]
    assert man0["provenance"]["lazy_images"] is False and man1["provenance"]["lazy_images"]
    met0, met1 = man0["provenance"]["metrics"], man1["provenance"]["metrics"]
    assert met0["steps"] == met1["steps"] == 7  # more than an epoch: every frame seen
    assert met0["final_train_loss"] == met1["final_train_loss"]
    assert met0["val_loss"] == met1["val_loss"] and met0["val_loss"] is not None
    for (k, a), b in zip(m0.state_dict().items(), m1.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    np.testing.assert_array_equal(s0.action_mean, s1.action_mean)
    assert e0 == e1


CACHE_BYTES = 16 << 20
RSS_SLACK_BYTES = 32 << 20
"""Growth allowed beyond the cache: the HDF5 library's metadata (chunk indexes of 50 camera
datasets), allocator arenas and free lists, and the loader's batch tensors (measured with
``image_cache_mb`` 0 / 16 / 64 on this file: 15 / 32 / 88 MiB of growth, docs/visuomotor.md)."""


@pytest.mark.slow
def test_lazy_frames_memory_stays_within_the_cache_bound(tmp_path):
    import psutil

    path = tmp_path / "bulk.hdf5"
    info = write_bulk_synthetic_image_demos(path, 12_500, 500, CAMS, (64, 64), "gzip")
    assert info["frame_bytes"] > 300e6  # decoded: a few hundred MB
    assert info["frame_bytes"] > 4 * (CACHE_BYTES + RSS_SLACK_BYTES)  # would not fit the bound
    aug = AugmentConfig(crop=(56, 56))
    lazy = load_visuomotor_dataset(path, CAMS, 10, aug, cache_bytes=CACHE_BYTES,
                                   max_in_memory_bytes=256 << 20)
    store = frame_store_of(lazy)
    assert store is not None and store.nbytes_decoded() == info["frame_bytes"]
    lazy.set_stats(lazy.compute_stats())
    lazy[0]  # warm-up, not data-proportional: imports OpenCV, opens the file (~20 MiB)
    gc.collect()
    proc = psutil.Process()
    rss0 = peak = proc.memory_info().rss
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(lazy, batch_size=64, shuffle=True)
    seen = 0
    for batch in loader:
        seen += len(batch["images"])
        peak = max(peak, proc.memory_info().rss)
    assert seen == len(lazy) == info["steps"]
    c = store.cache_info()
    assert c["nbytes"] <= CACHE_BYTES and c["evictions"] > 0
    assert c["misses"] >= 2 * info["steps"] - CACHE_BYTES // (64 * 64 * 3)  # ~one decode a frame
    growth = peak - rss0
    print(f"RSS growth {growth / 2**20:.1f} MiB over an epoch of {seen} samples, "
          f"{info['frame_bytes'] / 2**20:.0f} MiB of decoded frames, cache "
          f"{CACHE_BYTES / 2**20:.0f} MiB")
    assert growth < CACHE_BYTES + RSS_SLACK_BYTES, f"RSS grew {growth / 2**20:.1f} MiB"
