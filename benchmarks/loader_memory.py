"""Peak memory and throughput of the lazy HDF5 loader on a synthetic dataset larger than its cache.

Usage::

    python benchmarks/loader_memory.py [--gb 0.5] [--cache-mb 64] [--workers 0] [--dir DIR]
                                       [--batch 256] [--block-steps 256] [--keep]

Writes a synthetic demonstration file of about ``--gb`` GB
(:func:`robot_skills.data.lazy.write_bulk_synthetic_demos`: 1000-step demos, two skill
segments each, a 32-column ``states`` array as padding), builds a
:class:`~robot_skills.data.lazy.LazySkillChunkDataset` with a ``--cache-mb`` cache (the streaming
validation + statistics pass included), then reads one epoch through a DataLoader with
:class:`~robot_skills.data.lazy.BlockShuffleSampler`. Prints the file size, the bytes the
in-memory dataset would need, the peak RSS growth of the loading processes (the main process
since before the scan, plus each worker's growth since it was first seen; sampled every batch
with psutil) against the cache bound, and samples/s.

The issue's target (issue 12) is a dataset larger than RAM, e.g. ``--gb 30`` or more: that needs
a machine with that much free disk (check ``df -h``); the loader's memory does not depend on the
file size, only on ``--cache-mb`` and the number of demos (the segment table). Run it here at a
size the disk allows.
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

from robot_skills.data.lazy import (
    BlockShuffleSampler,
    LazySkillChunkDataset,
    write_bulk_synthetic_demos,
)

BYTES_PER_STEP = 584  # measured: a 450,000-step file of this layout is 262.6 MB (incl. metadata)


def _rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` alone."""
    return proc.memory_info().rss


def _worker_growth(proc: psutil.Process, first: dict[int, int]) -> int:
    """Summed RSS growth of ``proc``'s children (the DataLoader workers) since each was first
    seen (``first``: pid -> RSS then, filled here). A forked worker starts as a copy of the
    main process, so its own RSS is mostly shared pages; its growth is what it added."""
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
    p.add_argument("--gb", type=float, default=0.5, help="synthetic file size, GB (1e9 bytes)")
    p.add_argument("--cache-mb", type=float, default=64.0, help="block cache bound, MiB")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--block-steps", type=int, default=256)
    p.add_argument("--chunk", type=int, default=10, help="action chunk length H")
    p.add_argument("--dir", type=Path, default=None, help="where to write the file (default: a "
                   "temporary directory, removed afterwards unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the synthetic file")
    a = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="loader_memory_", dir=a.dir))
    try:
        path = work / "bulk.hdf5"
        steps = max(1000, int(a.gb * 1e9 / BYTES_PER_STEP))
        free = shutil.disk_usage(work).free
        if steps * BYTES_PER_STEP > 0.9 * free:
            raise SystemExit(f"{a.gb} GB does not fit in {work} ({free / 1e9:.1f} GB free)")
        t = time.perf_counter()
        info = write_bulk_synthetic_demos(path, steps)
        t_write = time.perf_counter() - t
        cache = int(a.cache_mb * 2**20)
        gc.collect()
        proc = psutil.Process()
        rss0 = _rss(proc)
        t = time.perf_counter()
        ds = LazySkillChunkDataset.from_hdf5(path, chunk_size=a.chunk, cache_bytes=cache,
                                             block_steps=a.block_steps)
        t_scan = time.perf_counter() - t
        peak_scan = _rss(proc) - rss0
        sampler = BlockShuffleSampler(ds, num_workers=a.workers, seed=0)
        loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, sampler=sampler,
                                             num_workers=a.workers,
                                             persistent_workers=False)
        peak = _rss(proc)
        first: dict[int, int] = {}
        seen = 0
        t = time.perf_counter()
        for b in loader:
            seen += len(b["features"])
            peak = max(peak, _rss(proc) + _worker_growth(proc, first))
        t_epoch = time.perf_counter() - t
        res = {"file_gb": info["bytes"] / 1e9, "steps": info["steps"],
               "in_memory_mb": ds.nbytes_in_memory() / 2**20, "cache_mb": cache / 2**20,
               "scan_s": t_scan, "scan_rss_growth_mb": peak_scan / 2**20,
               "epoch_rss_growth_mb": (peak - rss0) / 2**20, "samples_per_s": seen / t_epoch,
               "write_s": t_write}
        print(f"file: {res['file_gb']:.2f} GB, {info['demos']} demos, {info['steps']} steps "
              f"(written in {t_write:.1f} s)")
        print(f"in-memory dataset would need: {res['in_memory_mb']:.0f} MiB")
        print(f"scan (validation + streaming stats): {t_scan:.1f} s, RSS growth "
              f"{res['scan_rss_growth_mb']:.1f} MiB")
        print(f"epoch: {seen} samples, {res['samples_per_s']:.0f} samples/s, workers={a.workers}")
        print(f"peak RSS growth (main vs before the scan, + each worker's growth since its first "
              f"batch): {res['epoch_rss_growth_mb']:.1f} MiB; cache bound "
              f"{res['cache_mb']:.0f} MiB, all workers together")
        return res
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
