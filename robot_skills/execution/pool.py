"""The one worker pool that runs episodes — for evaluation and for demonstration collection alike.

Episodes are independent, CPU-bound and hold MuJoCo/GL state that must not be shared, so they run
in separate processes started with ``spawn`` (fork would copy GL contexts and thread pools) through
:class:`concurrent.futures.ProcessPoolExecutor`; each worker pins its BLAS/OpenMP threads to one.
A progress bar (tqdm) counts finished jobs and shows the running success rate when results carry
a ``success`` field. Past one machine, the same job functions run on Ray (the evaluation issue).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _success_of(result: Any) -> bool | None:
    if isinstance(result, dict) and "success" in result:
        return bool(result["success"])
    return None


def iter_parallel(fn: Callable[[J], R], jobs: Sequence[J], workers: int = 1, *,
                  desc: str = "episodes", progress: bool = True,
                  unit: str = "ep") -> Iterator[R]:
    """Run ``fn(job)`` for every job and yield the results as they finish (not in job order).

    Args:
        fn: a picklable top-level function (it runs in worker processes when ``workers > 1``).
        jobs: picklable job descriptions.
        workers: processes; 1 runs everything in this process, in order.
        desc / unit: progress-bar label and unit.
        progress: show a tqdm progress bar.

    Raises:
        ValueError: if ``workers < 1``. Whatever ``fn`` raises is re-raised here (``fn`` should
            catch per-job failures itself and return them as data).
    """
    from tqdm.auto import tqdm

    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress, dynamic_ncols=True)
    done, ok = 0, 0

    def tick(result: R) -> None:
        nonlocal done, ok
        done += 1
        s = _success_of(result)
        ok += bool(s)
        bar.update(1)
        if s is not None:
            bar.set_postfix(success=f"{ok / done:.2f}")

    try:
        if workers == 1:
            for job in jobs:
                r = fn(job)
                tick(r)
                yield r
        else:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx,
                                     initializer=_worker_init) as pool:
                futures = [pool.submit(fn, job) for job in jobs]
                try:
                    for fut in as_completed(futures):
                        r = fut.result()
                        tick(r)
                        yield r
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        bar.close()


def run_parallel(fn: Callable[[J], R], jobs: Sequence[J], workers: int = 1, **kwargs: Any
                 ) -> list[R]:
    """:func:`iter_parallel` collected into a list (completion order)."""
    return list(iter_parallel(fn, jobs, workers, **kwargs))
