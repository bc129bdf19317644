"""Peak memory and throughput of the lazy camera-frame loader (visuomotor training) against the
in-memory frames, on a synthetic file whose decoded frames are larger than the cache.

Usage::

    python benchmarks/image_loader_memory.py [--steps 12500] [--size 64] [--codec gzip]
                                             [--cache-mb 16] [--workers 0] [--batch 64]
                                             [--block-frames 1] [--in-memory] [--dir DIR]

Writes a synthetic demonstration file
(:func:`robot_skills.data.lazy.write_bulk_synthetic_image_demos`: 500-step demos, two cameras
of ``--size`` pixels stored with ``--codec``), builds the visuomotor dataset with lazy frames and
a ``--cache-mb`` cache (or, with ``--in-memory``, every frame decoded into memory), reads item 0
(warm-up: imports OpenCV, opens the file), then one shuffled epoch through a DataLoader with the
training augmentation (random 56x56-of-64 crop scaled to ``--size``, colour jitter). Prints the
decoded size of the frames, the peak RSS growth of the loading processes during the epoch (the
main process, plus each worker's growth since it was first seen; sampled every batch with
psutil) against the cache bound, the same since before the dataset was built (what the
in-memory frames cost), and samples/s.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil
import torch

from robot_skills.data.images import AugmentConfig
from robot_skills.data.lazy import (
    frame_store_of,
    load_visuomotor_dataset,
    write_bulk_synthetic_image_demos,
)

CAMERAS = ["agentview", "panda/wrist_cam"]


def _worker_growth(proc: psutil.Process, first: dict[int, int]) -> int:
    """Summed RSS growth of ``proc``'s children (DataLoader workers) since each was first seen."""
    total = 0
    for c in proc.children(recursive=True):
        try:
            rss = c.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        total += rss - first.setdefault(c.pid, rss)
    return total


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark; returns the printed figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=12_500, help="samples (= frames per camera)")
    p.add_argument("--size", type=int, default=64, help="frame height = width, pixels")
    p.add_argument("--codec", default="gzip", help="gzip | lzf | png | jpeg")
    p.add_argument("--cache-mb", type=float, default=16.0, help="decoded-frame cache, MiB")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--block-frames", type=int, default=1)
    p.add_argument("--in-memory", action="store_true", help="decode every frame into memory")
    p.add_argument("--dir", type=Path, default=None, help="where to write the file (default: a "
                   "temporary directory, removed afterwards)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="image_loader_memory_", dir=a.dir))
    try:
        path = work / "bulk.hdf5"
        t = time.perf_counter()
        info = write_bulk_synthetic_image_demos(path, a.steps, 500, CAMERAS, (a.size, a.size),
                                                a.codec)
        t_write = time.perf_counter() - t
        crop = max(8, a.size * 7 // 8)
        cache = int(a.cache_mb * 2**20)
        gc.collect()
        proc = psutil.Process()
        rss_build = proc.memory_info().rss
        ds = load_visuomotor_dataset(path, CAMERAS, 10, AugmentConfig(crop=(crop, crop)),
                                     lazy=not a.in_memory, cache_bytes=cache,
                                     block_frames=a.block_frames)
        ds.set_stats(ds.compute_stats())
        torch.manual_seed(0)
        ds[0]
        gc.collect()
        rss0 = peak = proc.memory_info().rss
        loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True,
                                             num_workers=a.workers)
        first: dict[int, int] = {}
        seen = 0
        t = time.perf_counter()
        for b in loader:
            seen += len(b["images"])
            peak = max(peak, proc.memory_info().rss + _worker_growth(proc, first))
        t_epoch = time.perf_counter() - t
        store = frame_store_of(ds)
        res = {"file_mb": info["bytes"] / 2**20, "frames_mb": info["frame_bytes"] / 2**20,
               "cache_mb": cache / 2**20 if store else 0.0,
               "epoch_rss_growth_mb": (peak - rss0) / 2**20,
               "total_rss_growth_mb": (peak - rss_build) / 2**20, "samples_per_s": seen / t_epoch,
               "write_s": t_write}
        print(f"file: {res['file_mb']:.1f} MiB ({a.codec}), {info['demos']} demos, "
              f"{info['steps']} steps, 2 cameras {a.size}x{a.size}: {res['frames_mb']:.0f} MiB "
              f"decoded (written in {t_write:.1f} s)")
        mode = (f"lazy frames, cache {res['cache_mb']:.0f} MiB, block {a.block_frames}"
                if store else "frames in memory")
        print(f"{mode}: epoch of {seen} samples, {res['samples_per_s']:.0f} samples/s, "
              f"workers={a.workers}")
        print(f"peak RSS growth during the epoch: {res['epoch_rss_growth_mb']:.1f} MiB; since "
              f"before building the dataset: {res['total_rss_growth_mb']:.1f} MiB"
              + (f"; cache {store.cache_info()}" if store else ""))
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
