"""The one worker pool that runs episodes — for evaluation and for demonstration collection alike.

Episodes are independent, CPU-bound and hold MuJoCo/GL state that must not be shared, so they run
in separate processes started with ``spawn`` (fork would copy GL contexts and thread pools) through
:class:`concurrent.futures.ProcessPoolExecutor`; each worker pins its BLAS/OpenMP threads to one.
A progress bar (tqdm) counts finished jobs and shows the running success rate when results carry
a ``success`` field.

Past one machine, the same job functions run on `Ray <https://docs.ray.io>`_ as remote tasks
(``num_cpus=1`` each): pass ``backend=Backend("ray", address)`` or wrap the call in
:func:`use_backend` (as ``rs-eval eval.workers=ray`` does). ``address=None`` starts a new local
Ray instance with ``workers`` CPUs and shuts it down afterwards; an address (``"host:port"`` of a
``ray start --head`` node, ``"auto"``, or ``"ray://host:10001"``) connects to that cluster, uses all
of its CPUs and disconnects afterwards (the cluster keeps running). Every node needs this package
installed; the driver's ``MUJOCO_GL`` (and thread settings) reach its workers through a runtime
env. Either way results are yielded in completion order: callers that need a fixed order sort
them by job (the benchmark runner sorts episodes by condition, task and episode index).
"""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
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


BACKENDS = ("local", "ray")
"""Where jobs run: ``local`` (this process, or a pool of ``spawn`` processes) or ``ray``."""
_WORKER_ENV = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables of the driver passed on to Ray workers (rendering backend, threads)."""


@dataclass(frozen=True)
class Backend:
    """Where :func:`iter_parallel` runs jobs.

    Attributes:
        kind: ``"local"`` (``workers`` processes on this machine) or ``"ray"``.
        address: Ray only. ``None`` starts a new local Ray instance with ``workers`` CPUs (and
            shuts it down when the jobs are done); otherwise the address given to
            ``ray.init(address=...)``: ``"host:port"`` of the head node, ``"auto"`` (the cluster
            this machine belongs to) or ``"ray://host:port"`` (Ray Client).

    Raises:
        ValueError: on an unknown kind, or an address with the local backend.
    """

    kind: str = "local"
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.kind!r}")
        if self.kind == "local" and self.address is not None:
            raise ValueError(f"a Ray address ({self.address!r}) needs backend 'ray', not 'local'")
        if self.address is not None and not str(self.address).strip():
            raise ValueError("Ray address must be non-empty (None starts a local Ray instance)")


_BACKEND: contextvars.ContextVar[Backend] = contextvars.ContextVar("robot_skills_pool_backend",
                                                                   default=Backend())


def current_backend() -> Backend:
    """The backend :func:`iter_parallel` uses when none is passed (see :func:`use_backend`)."""
    return _BACKEND.get()


@contextlib.contextmanager
def use_backend(kind: str = "local", address: str | None = None) -> Iterator[Backend]:
    """Run every :func:`iter_parallel` call inside the ``with`` block on this backend (as
    joblib's ``parallel_backend`` does), e.g. a benchmark runner's episodes on Ray.

    Args:
        kind / address: see :class:`Backend`.

    Raises:
        ValueError: see :class:`Backend`.
    """
    token = _BACKEND.set(Backend(kind, address))
    try:
        yield _BACKEND.get()
    finally:
        _BACKEND.reset(token)


def job_label(job: Any) -> str:
    """A short name of a job for error messages: its task/perturbation/episode/seed fields when
    it has them (evaluation and collection jobs do), else its ``repr`` (at most 200 characters)."""
    parts = []
    for attr in ("task_name", "perturbation", "episode", "seed"):
        v = getattr(job, attr, None)
        if v is not None:
            v = getattr(v, "name", v)
            parts.append(f"{attr.removesuffix('_name')}={v}")
    if not parts and getattr(job, "task_path", None) is not None:
        parts.append(f"task_path={job.task_path}")
    text = ", ".join(parts) if parts else repr(job)
    return text if len(text) <= 200 else text[:197] + "..."


def _note_job(err: BaseException, job: Any, where: str) -> None:
    if hasattr(err, "add_note"):
        err.add_note(f"robot_skills.execution.pool: raised by job [{job_label(job)}] {where}")


def _success_of(result: Any) -> bool | None:
    if isinstance(result, dict) and "success" in result:
        return bool(result["success"])
    return None


def iter_parallel(fn: Callable[[J], R], jobs: Sequence[J], workers: int = 1, *,
                  desc: str = "episodes", progress: bool = True,
                  unit: str = "ep", backend: Backend | None = None) -> Iterator[R]:
    """Run ``fn(job)`` for every job and yield the results as they finish (not in job order).

    Args:
        fn: a picklable top-level function (it runs in worker processes when ``workers > 1``,
            and in Ray workers, serialized with cloudpickle, on the Ray backend).
        jobs: picklable job descriptions.
        workers: local processes; 1 runs everything in this process, in order. On Ray: the
            CPUs of the local Ray instance it starts (``address=None``); a cluster it connects
            to runs as many jobs at once as it has CPUs.
        desc / unit: progress-bar label and unit.
        progress: show a tqdm progress bar.
        backend: where to run; ``None`` uses :func:`current_backend` (``local`` unless inside
            :func:`use_backend`).

    Raises:
        ValueError: if ``workers < 1``. Whatever ``fn`` raises is re-raised here with a note
            naming the job (``fn`` should catch per-job failures itself and return them as data);
            on Ray, as Ray's ``RayTaskError`` carrying the worker's traceback. ImportError: Ray
            backend without Ray installed. ConnectionError: no Ray cluster at ``address``.
    """
    from tqdm.auto import tqdm

    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    backend = backend if backend is not None else current_backend()
    if not isinstance(backend, Backend):
        raise TypeError(f"backend must be a Backend, got {type(backend).__name__} {backend!r}")
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
        if backend.kind == "ray":
            yield from _iter_ray(fn, jobs, int(workers), backend.address, tick, bar, desc)
        elif workers == 1:
            for job in jobs:
                try:
                    r = fn(job)
                except Exception as e:
                    _note_job(e, job, "in this process")
                    raise
                tick(r)
                yield r
        else:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx,
                                     initializer=_worker_init) as pool:
                futures = {pool.submit(fn, job): job for job in jobs}
                try:
                    for fut in as_completed(futures):
                        try:
                            r = fut.result()
                        except Exception as e:
                            _note_job(e, futures[fut], "in a worker process")
                            raise
                        tick(r)
                        yield r
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        bar.close()


def _ray_call(fn: Callable[[J], R], job: J) -> R:
    """What each Ray task runs: pin threads like a pool worker, then ``fn(job)``."""
    _worker_init()
    return fn(job)


def _iter_ray(fn: Callable[[J], R], jobs: Sequence[J], workers: int, address: str | None,
              tick: Callable[[R], None], bar: Any, desc: str) -> Iterator[R]:
    """The Ray backend of :func:`iter_parallel`: one remote task (``num_cpus=1``) per job."""
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is in the dev extra
        raise ImportError("the Ray backend (eval.workers=ray) needs Ray: "
                          "pip install 'robot-skills[ray]'") from e
    started = False
    if not ray.is_initialized():
        if address is None:  # its raylet, and so every worker, inherits this environment
            ray.init(address="local", num_cpus=workers, include_dashboard=False)
        else:
            env = {k: os.environ[k] for k in _WORKER_ENV if k in os.environ}
            kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}} if env else {}
            try:
                ray.init(address=address, **kwargs)
            except ConnectionError as e:
                raise ConnectionError(
                    f"could not join the Ray cluster at address {address!r}: {e}. Is a head "
                    f"running there (`ray start --head`)? If it uses token authentication (Ray's "
                    f"default when ~/.ray/auth_token exists on the head), set RAY_AUTH_MODE=token "
                    f"and RAY_AUTH_TOKEN (`ray get-auth-token` on the head) here. Leave the "
                    f"address unset for a local Ray instance.") from e
        started = True
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        bar.set_description_str(f"{desc} [ray: {nodes} node(s), {cpus} CPUs]")
        if cpus < 1:
            raise RuntimeError(f"the Ray cluster at {address or 'local'} has no CPUs; every job "
                               f"asks for num_cpus=1")
        remote = ray.remote(num_cpus=1)(_ray_call)
        fn_ref = ray.put(fn)  # shipped once, not once per job
        refs = {remote.remote(fn_ref, job): job for job in jobs}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        r = ray.get(ref)
                    except Exception as e:
                        _note_job(e, refs[ref], f"on Ray ({address or 'local instance'})")
                        raise
                    tick(r)
                    yield r
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=False)
            raise
    finally:
        if started:
            ray.shutdown()


def run_parallel(fn: Callable[[J], R], jobs: Sequence[J], workers: int = 1, **kwargs: Any
                 ) -> list[R]:
    """:func:`iter_parallel` collected into a list (completion order; same arguments)."""
    return list(iter_parallel(fn, jobs, workers, **kwargs))
