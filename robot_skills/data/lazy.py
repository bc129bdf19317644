"""Training samples read lazily from HDF5 through a byte-bounded cache: data larger than memory.

:class:`LazySkillChunkDataset` yields the same samples as the in-memory
:class:`~robot_skills.data.dataset.SkillChunkDataset` (same order, same values, same item keys
and dtypes), but never holds the whole dataset: building it reads only the files' attributes (demo
lengths and skill segments) into a segment table (a few numbers per segment); an item is computed
from a *block* of ``block_steps`` rows of one segment, read from the file on demand
(:meth:`~robot_skills.data.hdf5.DemoReader.read_obs_rows`) and kept in a least-recently-used cache
bounded in bytes (:class:`ByteLRUCache`). Memory is the cache bound plus the segment table plus
the HDF5 library's own (bounded) caches, whatever the size of the files.

DataLoader workers: the dataset holds no open file when pickled; each process (the main one or a
worker) opens the files it needs on first use and keeps them open. ``cache_bytes`` is the bound
for all processes together: a worker of a DataLoader with ``num_workers = n`` uses
``cache_bytes // n`` (:func:`torch.utils.data.get_worker_info`). Batched fetches go through
``__getitems__`` (one block lookup per sample, no per-sample file access on a hit).

Normalisation statistics (:meth:`LazySkillChunkDataset.compute_stats`) come from a streaming pass
that holds one demonstration at a time: mean and variance merged per segment (Chan, Golub and
LeVeque, 1979, "Updating formulae and a pairwise algorithm for computing sample variances") in
float64, equal to the in-memory statistics to float32 rounding. The same pass validates every demo
(:func:`~robot_skills.data.dataset.validate_demo`: keys, lengths, NaN/inf, action bounds, absurd
magnitudes), so a bad demo stops the build (``validate=True``, the default) with a
:class:`~robot_skills.data.dataset.DemoValidationError` naming the file and the demo, before any
training step.

Which to use: :func:`load_skill_dataset` picks the in-memory dataset when its arrays would fit in
``max_in_memory_bytes`` (default 2 GiB) and the lazy one beyond, or as ``lazy=`` says.

Camera frames (visuomotor training): :func:`lazy_visuomotor_dataset` builds a
:class:`~robot_skills.data.images.VisuomotorDataset` whose frames are :class:`LazyFrames` of a
:class:`LazyFrameStore`: every non-image array in memory (~0.4 KB a sample), each frame decoded
from the file on demand (any codec of :func:`~robot_skills.data.images.write_frames`) and kept in
a :class:`ByteLRUCache` with the same per-process, per-worker rules as above. Its items equal the
in-memory dataset's; :func:`load_visuomotor_dataset` chooses between them by the decoded size.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from robot_skills.data.dataset import (
    ACTION_STD_FLOOR,
    FEATURE_STD_FLOOR,
    MAX_GRIPPER_LEVELS,
    DemoValidationError,
    SkillChunkDataset,
    ValueBounds,
    _as_paths,
    _file_limits,
    _segment_features,
    _task_matches,
    check_sizes_recorded,
    features_from_arrays,
    floor_std,
    load_checked,
    read_segments,
    release_offsets_used,
    skill_vocabulary,
    validate_demo,
)
from robot_skills.data.hdf5 import DemoReader
from robot_skills.domain.verbs import MAX_SKILL_ARGS
from robot_skills.policies.features import feature_dim
from robot_skills.policies.normalization import GRIPPER_DIM, NormStats
from robot_skills.robot import ACTION_DIM, ActionLimits

if TYPE_CHECKING:
    from robot_skills.data.images import AugmentConfig, VisuomotorDataset
    from robot_skills.policies.vision import EntityVocab

DEFAULT_CACHE_BYTES = 256 << 20
"""Default bound of the block cache, all DataLoader workers together (256 MiB)."""
DEFAULT_BLOCK_STEPS = 256
"""Default rows per cached block (a block is the unit read from the file)."""
DEFAULT_MAX_IN_MEMORY_BYTES = 2 << 30
""":func:`load_skill_dataset` builds the in-memory dataset up to this many bytes of arrays."""
_ENTRY_OVERHEAD = 512  # bytes counted per cache entry beyond its arrays (dict slot, tuples)


class ByteLRUCache:
    """A least-recently-used mapping whose values' total size stays within ``max_bytes``.

    Args:
        max_bytes: the bound (>= 0); a value larger than the bound is never stored.

    Raises:
        ValueError: a negative bound.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache bound must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> None:
        """Store ``value`` (``nbytes`` large), evicting the least recently used entries first."""
        if key in self._items:
            self.nbytes -= self._items.pop(key)[1]
        if nbytes > self.max_bytes:
            return
        while self._items and self.nbytes + nbytes > self.max_bytes:
            _, (_, n) = self._items.popitem(last=False)
            self.nbytes -= n
            self.evictions += 1
        self._items[key] = (value, int(nbytes))
        self.nbytes += int(nbytes)

    def info(self) -> dict[str, int]:
        """``entries``, ``nbytes``, ``max_bytes``, ``hits``, ``misses``, ``evictions``."""
        return {"entries": len(self), "nbytes": self.nbytes, "max_bytes": self.max_bytes,
                "hits": self.hits, "misses": self.misses, "evictions": self.evictions}

    def clear(self) -> None:
        """Drop every entry."""
        self._items.clear()
        self.nbytes = 0


@dataclass
class _SegmentTable:
    """One row per sample-producing segment, in sample order."""

    files: list[str]
    limits: list[ActionLimits | None]   # per file: the action bounds validate_demo uses
    file_idx: np.ndarray                # (S,) int64
    demo: list[str]                     # (S,)
    start: np.ndarray                   # (S,) int64
    end: np.ndarray                     # (S,) int64, exclusive
    args: list[tuple[str, ...]]         # (S,)
    arg_offsets: list[tuple]            # (S,) SkillSegment.arg_offsets, () when none
    arg_sizes: list[tuple | None]       # (S,) SkillSegment.arg_sizes; None: layout without sizes
    skill_id: np.ndarray                # (S,) int64
    episode: np.ndarray                 # (S,) int64, an id per (file, demo)
    uses_offsets: bool = False          # release_offsets_used over all rows
    object_sizes: bool = False          # features carry the arguments' sizes


class _ProcessState:
    """Open readers and the block cache of one process; rebuilt after a fork or unpickling."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.readers: dict[int, DemoReader] = {}
        self.cache: ByteLRUCache | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()


class _Moments:
    """Streaming per-dimension count, mean and sum of squared deviations (float64)."""

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64)
        m = x.shape[0]
        if m == 0:
            return
        mb = x.mean(axis=0)
        m2b = ((x - mb) ** 2).sum(axis=0)
        tot = self.n + m
        delta = mb - self.mean
        self.mean = self.mean + delta * (m / tot)
        self.m2 = self.m2 + m2b + delta ** 2 * (self.n * m / tot)
        self.n = tot

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))


class LazySkillChunkDataset(torch.utils.data.Dataset):
    """(features, skill id, action chunk, mask) samples read lazily from HDF5 demonstrations.

    Build with :meth:`from_hdf5` or :meth:`whole_task` (the same arguments as
    :class:`~robot_skills.data.dataset.SkillChunkDataset`'s, plus the cache settings). Sample ``i``
    equals sample ``i`` of the in-memory dataset built from the same arguments.

    Items (``ds[i]``) are dicts of tensors: ``features (F,)`` float32 raw, ``skill_id ()`` int64,
    ``actions (H, 7)`` float32 raw, ``mask (H,)`` bool. On a view from :meth:`with_stats` they
    are normalised instead, exactly as a row of
    :meth:`~robot_skills.data.dataset.SkillChunkDataset.tensors`: ``features`` and ``actions``
    normalised float32, ``mask`` float32 (1 real, 0 padding).

    Attributes:
        skills: vocabulary; ``skills[skill_id]`` is the skill's name.
        chunk_size: ``H``.
        sources: the files, as strings.
        cache_bytes: the block cache's bound, all DataLoader workers of one loader together.
        block_steps: rows per cached block.
        stats: the statistics items are normalised with, or None (raw items).
    """

    def __init__(self, table: _SegmentTable, skills: Sequence[str], chunk_size: int, *,
                 segments: np.ndarray | None = None, value_bounds: ValueBounds | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, block_steps: int = DEFAULT_BLOCK_STEPS,
                 stats: NormStats | None = None, state: _ProcessState | None = None) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if block_steps < 1:
            raise ValueError(f"block_steps must be >= 1, got {block_steps}")
        if cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {cache_bytes}")
        self._table = table
        self._segs = (np.arange(len(table.demo), dtype=np.int64) if segments is None
                      else np.asarray(segments, np.int64))
        lengths = table.end[self._segs] - table.start[self._segs]
        self._offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.skills = list(skills)
        self.chunk_size = int(chunk_size)
        self.sources = list(table.files)
        self.arg_offsets = table.uses_offsets
        self.object_sizes = table.object_sizes
        self.feature_dim = feature_dim(self.object_sizes)
        self.value_bounds = value_bounds
        self.cache_bytes = int(cache_bytes)
        self.block_steps = int(block_steps)
        self.stats = stats
        self._state = state if state is not None else _ProcessState()
        self._full_stats: NormStats | None = None

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_hdf5(cls, paths: str | os.PathLike | Sequence[str | os.PathLike],
                  skills: Sequence[str] | None = None, chunk_size: int = 10,
                  skill_vocab: Sequence[str] | None = None, successful_only: bool = True,
                  action_limits: ActionLimits | None = None,
                  value_bounds: ValueBounds | None = None, *,
                  cache_bytes: int = DEFAULT_CACHE_BYTES,
                  block_steps: int = DEFAULT_BLOCK_STEPS,
                  validate: bool = True, arg_offsets: bool = True,
                  object_sizes: bool = False) -> LazySkillChunkDataset:
        """Samples of ``skills`` (all if None) from the skill segments of HDF5 files, lazily.

        Args:
            paths, skills, chunk_size, skill_vocab, successful_only, action_limits,
                value_bounds, arg_offsets, object_sizes: as :meth:`SkillChunkDataset.from_hdf5`.
            cache_bytes: block cache bound, bytes, all workers of a DataLoader together.
            block_steps: rows per block (the unit read from the file and cached).
            validate: run the streaming pass now (every demo used validated, statistics
                computed and kept for :meth:`compute_stats`); False defers both to the first
                :meth:`compute_stats` / :meth:`validate` call.

        Raises:
            DemoValidationError: (``validate``) a demo used is unfit, or (always) its skill
                segments are malformed; the message names file and demo.
            KeyError: (``validate``) a segment argument is not among the demo's object poses.
            ValueError: no samples, chunk_size < 1, a skill not in ``skill_vocab``, or (as
                :meth:`SkillChunkDataset.from_hdf5`) mixed offsets or missing sizes.
            FileNotFoundError: a file is missing.
        """
        paths = _as_paths(paths)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        want = None if skills is None else set(skills)
        # (file index, demo, start, end, args, skill, episode, arg_offsets, arg_sizes or None)
        rows: list[tuple[int, str, int, int, tuple[str, ...], str, int, tuple, tuple | None]] = []
        limits: list[ActionLimits | None] = []
        ep = 0
        for fi, p in enumerate(paths):
            with DemoReader(p) as r:
                limits.append(_file_limits(r, action_limits))
                for name in r.demos:
                    segs = [s for s in read_segments(r, name, p)
                            if (want is None or s.skill in want)
                            and (s.success or not successful_only)]
                    if not segs:
                        continue
                    rows.extend((fi, name, s.start, s.end, tuple(s.args), s.skill, ep,
                                 s.arg_offsets if arg_offsets else (),
                                 s.arg_sizes if object_sizes else None) for s in segs)
                    ep += 1
        if object_sizes:
            check_sizes_recorded((str(paths[r[0]]), r[5], r[4], r[8]) for r in rows)
        ds = cls._assemble(rows, limits, skill_vocab, chunk_size, paths, skills, value_bounds,
                           cache_bytes, block_steps, object_sizes)
        if validate:
            ds._full_stats = ds.compute_stats()
        return ds

    @classmethod
    def whole_task(cls, paths: str | os.PathLike | Sequence[str | os.PathLike], task_id: str,
                   args: Sequence[str], chunk_size: int = 10, task: str | None = None,
                   action_limits: ActionLimits | None = None,
                   value_bounds: ValueBounds | None = None, *,
                   cache_bytes: int = DEFAULT_CACHE_BYTES,
                   block_steps: int = DEFAULT_BLOCK_STEPS,
                   validate: bool = True) -> LazySkillChunkDataset:
        """Monolithic-baseline samples (each whole demo one segment of ``task_id``), lazily.

        Arguments and errors as :meth:`SkillChunkDataset.whole_task` and :meth:`from_hdf5`.
        """
        if len(args) > MAX_SKILL_ARGS:
            raise ValueError(f"the policy sees at most {MAX_SKILL_ARGS} entities, got {list(args)}; "
                             "pass the task's main objects only")
        paths = _as_paths(paths)
        rows = []
        limits = []
        ep = 0
        for fi, p in enumerate(paths):
            with DemoReader(p) as r:
                limits.append(_file_limits(r, action_limits))
                for name in r.demos:
                    if task is not None and not _task_matches(r.demo_attrs(name).get("task"), task):
                        continue
                    T = r.num_samples(name)
                    if T < 1:
                        raise DemoValidationError(f"{p}:{name}: empty demonstration (0 steps)")
                    rows.append((fi, name, 0, T, tuple(args), task_id, ep, (), None))
                    ep += 1
        ds = cls._assemble(rows, limits, [task_id], chunk_size, paths, [task_id], value_bounds,
                           cache_bytes, block_steps)
        if validate:
            ds._full_stats = ds.compute_stats()
        return ds

    @classmethod
    def _assemble(cls, rows, limits, skill_vocab, chunk_size, paths, skills, value_bounds,
                  cache_bytes, block_steps, object_sizes: bool = False) -> LazySkillChunkDataset:
        vocab, ids = skill_vocabulary([r[5] for r in rows], skill_vocab, skills, paths)
        table = _SegmentTable(
            files=[str(p) for p in paths], limits=limits,
            file_idx=np.array([r[0] for r in rows], np.int64), demo=[r[1] for r in rows],
            start=np.array([r[2] for r in rows], np.int64),
            end=np.array([r[3] for r in rows], np.int64), args=[r[4] for r in rows],
            arg_offsets=[r[7] for r in rows], arg_sizes=[r[8] for r in rows],
            object_sizes=bool(object_sizes),
            # once, over the whole table (views share it): raises on mixed files
            uses_offsets=release_offsets_used((str(paths[r[0]]), r[5], r[4], r[7]) for r in rows),
            skill_id=np.array([ids[r[5]] for r in rows], np.int64),
            episode=np.array([r[6] for r in rows], np.int64))
        return cls(table, vocab, chunk_size, value_bounds=value_bounds, cache_bytes=cache_bytes,
                   block_steps=block_steps)

    def _view(self, segments: np.ndarray, stats: NormStats | None) -> LazySkillChunkDataset:
        view = LazySkillChunkDataset(self._table, self.skills, self.chunk_size, segments=segments,
                                     value_bounds=self.value_bounds, cache_bytes=self.cache_bytes,
                                     block_steps=self.block_steps, stats=stats, state=self._state)
        if segments is self._segs:
            view._full_stats = self._full_stats
        return view

    # ------------------------------------------------------------------ views
    @property
    def num_segments(self) -> int:
        """Segments in this view."""
        return int(len(self._segs))

    @property
    def skill_ids(self) -> np.ndarray:
        """``(N,)`` int64 skill id of every sample (built on request, 8 bytes a sample)."""
        t = self._table
        return np.repeat(t.skill_id[self._segs], np.diff(self._offsets))

    @property
    def episode_ids(self) -> np.ndarray:
        """``(N,)`` int64 episode (file, demo) id of every sample (built on request)."""
        t = self._table
        return np.repeat(t.episode[self._segs], np.diff(self._offsets))

    def with_stats(self, stats: NormStats | None) -> LazySkillChunkDataset:
        """A view of the same samples whose items are normalised with ``stats`` (None: raw).

        Raises:
            ValueError: ``stats`` has another chunk size or skill vocabulary.
        """
        if stats is not None and (stats.chunk_size != self.chunk_size
                                  or list(stats.skills) != self.skills):
            raise ValueError(f"stats (chunk {stats.chunk_size}, skills {stats.skills}) do not "
                             f"match the dataset (chunk {self.chunk_size}, skills {self.skills})")
        return self._view(self._segs, stats)

    def for_skill(self, skill: str) -> LazySkillChunkDataset:
        """Samples of one skill only (a view; no data read).

        Raises:
            KeyError: if ``skill`` is not in the vocabulary.
        """
        if skill not in self.skills:
            raise KeyError(f"skill {skill!r} not in dataset vocabulary {self.skills}")
        sid = self.skills.index(skill)
        return self._view(self._segs[self._table.skill_id[self._segs] == sid], self.stats)

    def split_by_episode(self, val_fraction: float = 0.1, seed: int = 0
                         ) -> tuple[LazySkillChunkDataset, LazySkillChunkDataset]:
        """Split into (train, val) views by whole demos; the same split as
        :meth:`SkillChunkDataset.split_by_episode` with the same arguments."""
        seg_eps = self._table.episode[self._segs]
        eps = np.unique(seg_eps)
        rng = np.random.default_rng(seed)
        n_val = max(1, round(len(eps) * val_fraction)) if len(eps) > 1 else 0
        val_eps = rng.choice(eps, size=n_val, replace=False)
        is_val = np.isin(seg_eps, val_eps)
        return self._view(self._segs[~is_val], self.stats), self._view(self._segs[is_val],
                                                                       self.stats)

    def nbytes_in_memory(self) -> int:
        """Bytes the in-memory :class:`SkillChunkDataset` of these samples would hold."""
        return len(self) * _sample_bytes(self.chunk_size, self.feature_dim)

    # ------------------------------------------------------------------ statistics
    def compute_stats(self) -> NormStats:
        """Normalisation statistics of this view's samples, in one streaming pass that holds
        one demonstration at a time and validates each (see module docstring); the same
        definition as :meth:`SkillChunkDataset.compute_stats` (features over all samples; actions
        over each sample's first action; gripper dimension mean 0, std 1; gripper levels).

        Raises:
            DemoValidationError: a demo is unfit (file and demo named), or the statistics come
                out non-finite.
            KeyError: a segment argument is not among the demo's object poses.
        """
        if self._full_stats is not None:
            return self._full_stats
        t = self._table
        fm, am = _Moments(self.feature_dim), _Moments(ACTION_DIM)
        levels: dict[int, set[float] | None] = {}
        order = self._segs
        reader: DemoReader | None = None
        try:
            i = 0
            while i < len(order):  # consecutive segments of one demo: load it once
                s = order[i]
                j = i
                while (j < len(order) and t.file_idx[order[j]] == t.file_idx[s]
                       and t.demo[order[j]] == t.demo[s]):
                    j += 1
                fi, name = int(t.file_idx[s]), t.demo[s]
                path = t.files[fi]
                if reader is None or str(reader.path) != path:
                    if reader is not None:
                        reader.close()
                    reader = DemoReader(path)
                demo = load_checked(reader, name, path)
                validate_demo(demo, path, t.limits[fi], reader.num_samples(name),
                              bounds=self.value_bounds)
                self._accumulate(demo, order[i:j], fm, am, levels)
                i = j
        finally:
            if reader is not None:
                reader.close()
        amean = am.mean.astype(np.float32)
        astd = floor_std(am.std(), ACTION_STD_FLOOR)
        amean[GRIPPER_DIM], astd[GRIPPER_DIM] = 0.0, 1.0
        stats = NormStats(fm.mean.astype(np.float32), floor_std(fm.std(), FEATURE_STD_FLOOR),
                          amean, astd, list(self.skills), self.chunk_size, int(fm.n),
                          {self.skills[sid]: (sorted(v) if v is not None else [])
                           for sid, v in sorted(levels.items())}, self.arg_offsets,
                          self.object_sizes)
        for k in ("feature_mean", "feature_std", "action_mean", "action_std"):
            if not np.all(np.isfinite(getattr(stats, k))):
                raise DemoValidationError(f"{self.sources}: statistics {k} came out non-finite")
        if len(self._segs) == len(t.demo):
            self._full_stats = stats
        return stats

    def _accumulate(self, demo: Any, segs: np.ndarray, fm: _Moments, am: _Moments,
                    levels: dict[int, set[float] | None]) -> None:
        t = self._table
        for k in segs:
            st, en = int(t.start[k]), int(t.end[k])
            fm.add(_segment_features(demo, st, en, t.args[k], t.files[int(t.file_idx[k])],
                                     t.arg_offsets[k], t.arg_sizes[k]))
            a0 = np.asarray(demo.actions[st:en], np.float32).astype(np.float64)
            am.add(a0)
            sid = int(t.skill_id[k])
            cur = levels.setdefault(sid, set())
            if cur is not None:
                cur.update(np.unique(np.round(a0[:, GRIPPER_DIM], 6)).tolist())
                if len(cur) > MAX_GRIPPER_LEVELS:
                    levels[sid] = None

    def block_ranges(self) -> np.ndarray:
        """``(B, 2)`` int64 ``[first, end)`` sample indices of every cached block of this view,
        in sample order (what :class:`BlockShuffleSampler` permutes)."""
        t = self._table
        out = []
        for li, s in enumerate(self._segs.tolist()):
            n = int(t.end[s] - t.start[s])
            first = np.arange(0, n, self.block_steps, dtype=np.int64)
            o = int(self._offsets[li])
            out.append(np.stack([o + first, o + np.minimum(first + self.block_steps, n)], 1))
        return np.concatenate(out) if out else np.zeros((0, 2), np.int64)

    def block_nbytes(self) -> int:
        """Bytes one full block takes in the cache."""
        return (self.block_steps * self.feature_dim * 4
                + (self.block_steps + self.chunk_size - 1) * ACTION_DIM * 4 + _ENTRY_OVERHEAD)

    def validate(self) -> NormStats:
        """Validate every demonstration of this view now (streaming); returns the statistics
        computed on the way. Raises as :meth:`compute_stats`."""
        return self.compute_stats()

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """Items ``indices`` (what a DataLoader's batched fetch calls).

        Raises:
            IndexError: an index outside ``[-N, N)``.
        """
        n = len(self)
        idx = np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"sample {int(bad)} outside a dataset of {n} samples")
        idx = np.where(idx < 0, idx + n, idx)
        local = np.searchsorted(self._offsets, idx, side="right") - 1
        t = self._table
        segs = self._segs[local]
        steps = t.start[segs] + (idx - self._offsets[local])
        H = self.chunk_size
        feats = np.empty((len(idx), self.feature_dim), np.float32)
        acts = np.empty((len(idx), H, ACTION_DIM), np.float32)
        mask = np.empty((len(idx), H), bool)
        j = np.arange(H)
        for r, (s, step) in enumerate(zip(segs.tolist(), steps.tolist(), strict=True)):
            b = (step - int(t.start[s])) // self.block_steps
            t0 = int(t.start[s]) + b * self.block_steps
            bf, ba = self._block(s, b)
            k = step - t0
            last = int(t.end[s]) - 1 - t0
            feats[r] = bf[k]
            acts[r] = ba[np.minimum(k + j, last)]
            mask[r] = k + j <= last
        sids = t.skill_id[segs]
        if self.stats is not None:
            feats = self.stats.normalize_features(feats)
            acts = self.stats.normalize_actions(acts)
            m: np.ndarray = mask.astype(np.float32)
        else:
            m = mask
        ft, at, mt = torch.from_numpy(feats), torch.from_numpy(acts), torch.from_numpy(m)
        st = torch.from_numpy(sids)
        return [{"features": ft[r], "skill_id": st[r], "actions": at[r], "mask": mt[r]}
                for r in range(len(idx))]

    def _process(self) -> _ProcessState:
        st = self._state
        pid = os.getpid()
        if st.pid != pid:  # first use in this process (or a forked copy): nothing inherited
            st.pid, st.readers, st.cache = pid, {}, None
        if st.cache is None:
            info = torch.utils.data.get_worker_info()
            workers = info.num_workers if info is not None else 1
            st.cache = ByteLRUCache(self.cache_bytes // max(1, workers))
        return st

    def _reader(self, st: _ProcessState, fi: int) -> DemoReader:
        r = st.readers.get(fi)
        if r is None:
            r = st.readers[fi] = DemoReader(self._table.files[fi])
        return r

    def _block(self, s: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        st = self._process()
        key = (s, b, self.block_steps, self.chunk_size)
        hit = st.cache.get(key)
        if hit is not None:
            return hit
        t = self._table
        start, end = int(t.start[s]), int(t.end[s])
        t0 = start + b * self.block_steps
        t1 = min(t0 + self.block_steps, end)
        ta = min(t1 + self.chunk_size - 1, end)
        fi, name, args = int(t.file_idx[s]), t.demo[s], t.args[s]
        r = self._reader(st, fi)
        try:
            obs, poses = r.read_obs_rows(name, t0, t1, args)
            acts = np.asarray(r.read_action_rows(name, t0, ta), np.float32)
        except (KeyError, ValueError, OSError) as e:
            raise DemoValidationError(f"{t.files[fi]}:{name}: reading rows [{t0}, {ta}): {e}"
                                      ) from e
        feats = features_from_arrays(obs["ee_pos"], obs["ee_quat"], obs["gripper_width"],
                                     [poses[a] for a in args], t.arg_offsets[s], t.arg_sizes[s])
        value = (feats, acts)
        st.cache.put(key, value, feats.nbytes + acts.nbytes + _ENTRY_OVERHEAD)
        return value

    def cache_info(self) -> dict[str, int]:
        """This process's cache: ``entries``, ``nbytes``, ``max_bytes``, ``hits``, ``misses``,
        ``evictions`` (zeros before first use)."""
        c = self._state.cache if self._state.pid == os.getpid() else None
        return ByteLRUCache(0).info() if c is None else c.info()

    def close(self) -> None:
        """Close this process's open files and drop its cache (reopened on next use)."""
        st = self._state
        if st.pid == os.getpid():
            for r in st.readers.values():
                r.close()
        st.pid, st.readers, st.cache = None, {}, None


def _sample_bytes(chunk_size: int, features: int) -> int:
    """Bytes one in-memory sample holds: ``features`` float32 features, skill id, actions, mask,
    episode id."""
    return features * 4 + 8 + chunk_size * ACTION_DIM * 4 + chunk_size + 8


def load_skill_dataset(paths: str | os.PathLike | Sequence[str | os.PathLike],
                       skills: Sequence[str] | None = None, chunk_size: int = 10,
                       skill_vocab: Sequence[str] | None = None, successful_only: bool = True,
                       action_limits: ActionLimits | None = None,
                       value_bounds: ValueBounds | None = None, *, lazy: bool | None = None,
                       max_in_memory_bytes: int = DEFAULT_MAX_IN_MEMORY_BYTES,
                       cache_bytes: int = DEFAULT_CACHE_BYTES,
                       block_steps: int = DEFAULT_BLOCK_STEPS, arg_offsets: bool = True,
                       object_sizes: bool = False
                       ) -> SkillChunkDataset | LazySkillChunkDataset:
    """The training samples of HDF5 demos, in memory when small, lazy when large.

    Reads the files' attributes first (cheap); ``lazy=None`` chooses the lazy dataset when the
    in-memory arrays would exceed ``max_in_memory_bytes``. Either way every demo used is
    validated before this returns. Arguments as :meth:`LazySkillChunkDataset.from_hdf5`.

    Returns:
        A :class:`SkillChunkDataset` or a :class:`LazySkillChunkDataset` (same samples).

    Raises:
        As :meth:`LazySkillChunkDataset.from_hdf5`.
    """
    ds = LazySkillChunkDataset.from_hdf5(paths, skills, chunk_size, skill_vocab, successful_only,
                                         action_limits, value_bounds, cache_bytes=cache_bytes,
                                         block_steps=block_steps, validate=False,
                                         arg_offsets=arg_offsets, object_sizes=object_sizes)
    if lazy is None:
        lazy = ds.nbytes_in_memory() > max_in_memory_bytes
    if lazy:
        ds.validate()
        return ds
    return SkillChunkDataset.from_hdf5(paths, skills, chunk_size, skill_vocab, successful_only,
                                       action_limits, value_bounds, arg_offsets, object_sizes)


def write_bulk_synthetic_demos(path: str | os.PathLike, num_steps: int,
                               steps_per_demo: int = 1000, state_dim: int = 32, seed: int = 0,
                               compression: str | None = None) -> dict[str, int]:
    """Write a large synthetic demonstration file fast (vectorised; for loader tests and
    benchmarks only: random but valid values, no physics, no learnable relation).

    Each demo of ``steps_per_demo`` steps has a ``pick(cube_1)`` segment on its first half and a
    ``place_on(cube_1, plate_1)`` segment on the rest; actions stay inside the action space;
    ``states (T, state_dim)`` float64 pads the file (a loader never reads it).

    Args:
        path: the file to write (atomically, :class:`~robot_skills.data.hdf5.DemoWriter`).
        num_steps: total steps over all demos (rounded up to whole demos).
        steps_per_demo: steps per demo (>= 2).
        state_dim: columns of the padding ``states`` array.
        seed: RNG seed.
        compression: h5py compression, None for none.

    Returns:
        ``{"demos": ..., "steps": ..., "bytes": file size}``.

    Raises:
        ValueError: ``num_steps < 1`` or ``steps_per_demo < 2``.
    """
    from robot_skills.data.hdf5 import DemoWriter, SkillSegment

    if num_steps < 1 or steps_per_demo < 2:
        raise ValueError(f"need num_steps >= 1 and steps_per_demo >= 2, got {num_steps}, "
                         f"{steps_per_demo}")
    rng = np.random.default_rng(seed)
    T = int(steps_per_demo)
    n_demos = -(-int(num_steps) // T)
    half = T // 2
    with DemoWriter(path, env_args={"env_name": "bulk_synthetic"}, compression=compression) as w:
        for _ in range(n_demos):
            actions = np.zeros((T, ACTION_DIM), np.float32)
            actions[:, :3] = rng.uniform(-0.02, 0.02, (T, 3))
            actions[:, 3:6] = rng.uniform(-0.1, 0.1, (T, 3))
            actions[:, 6] = np.where(np.arange(T) < half, -1.0, 1.0)
            ee = np.clip(np.array([0.45, 0.0, 0.3]) + np.cumsum(actions[:, :3], 0) * 0.1,
                         -1.0, 1.0)
            yaw = rng.uniform(-np.pi, np.pi, (T, 1))
            quat = np.concatenate([np.cos(yaw / 2), np.zeros((T, 2)), np.sin(yaw / 2)], 1)
            poses = {n: np.concatenate([rng.uniform(-0.5, 0.5, (T, 3)), quat], 1)
                     for n in ("cube_1", "plate_1")}
            obs = {"ee_pos": ee, "ee_quat": quat, "gripper_width": rng.uniform(0, 0.08, T),
                   "joint_pos": rng.uniform(-2, 2, (T, 7)), "joint_vel": rng.normal(0, 0.1, (T, 7))}
            w.add_demo_arrays(obs, poses, actions, states=rng.normal(0, 1, (T, state_dim)),
                              skill_segments=[SkillSegment(0, half, "pick", ("cube_1",)),
                                              SkillSegment(half, T, "place_on",
                                                           ("cube_1", "plate_1"))])
    return {"demos": n_demos, "steps": n_demos * T, "bytes": os.path.getsize(path)}


class BlockShuffleSampler(torch.utils.data.Sampler[int]):
    """A shuffling sampler that keeps a :class:`LazySkillChunkDataset`'s cache useful.

    A uniform shuffle over data much larger than the cache misses on nearly every sample (each
    miss reads a whole block). This sampler permutes the *blocks*, takes them ``window_blocks``
    at a time and shuffles the samples of each window together: every sample is drawn exactly
    once per epoch, consecutive batches mix ``window_blocks`` blocks from across the dataset, and
    each block is read once per epoch per worker as long as a window fits in a worker's cache
    (the default window is half a worker's cache). Like
    :class:`torch.utils.data.DistributedSampler`, ``num_replicas``/``rank`` give each process
    every ``num_replicas``-th index of the same order (padded by wrapping to equal lengths),
    and :meth:`set_epoch` reshuffles.

    Args:
        dataset: the lazy dataset (or view) to sample.
        window_blocks: blocks shuffled together; None: as many as fill half of
            ``cache_bytes / num_workers``.
        num_workers: the DataLoader's workers (for the default window).
        seed: base seed; the order is a function of ``(seed, epoch)``.
        num_replicas, rank: data-parallel processes and this one's rank.

    Raises:
        ValueError: ``window_blocks < 1`` or a rank outside ``[0, num_replicas)``.
    """

    def __init__(self, dataset: LazySkillChunkDataset, window_blocks: int | None = None,
                 num_workers: int = 0, seed: int = 0, num_replicas: int = 1,
                 rank: int = 0) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        if window_blocks is None:
            per_worker = dataset.cache_bytes // max(1, num_workers)
            window_blocks = max(1, per_worker // (2 * dataset.block_nbytes()))
        if window_blocks < 1:
            raise ValueError(f"window_blocks must be >= 1, got {window_blocks}")
        self.blocks = dataset.block_ranges()
        self.window_blocks = int(window_blocks)
        self.seed, self.epoch = int(seed), 0
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.total = int(len(dataset))
        self.num_samples = -(-self.total // self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` next."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        # Generated window by window: memory O(window), not O(dataset) (a 3.4M-sample order
        # array and its parts would take ~55 MB beside a 64 MB cache).
        rng = np.random.default_rng([self.seed, self.epoch])
        perm = rng.permutation(len(self.blocks))
        R, pos, head = self.num_replicas, 0, []
        for w in range(0, len(perm), self.window_blocks):
            idx = rng.permutation(np.concatenate(
                [np.arange(a, b) for a, b in self.blocks[perm[w:w + self.window_blocks]]]))
            if len(head) < R:
                head.extend(idx[:R - len(head)].tolist())
            for i in idx[(self.rank - pos) % R::R]:
                yield int(i)
            pos += len(idx)
        for p in range(self.num_samples * R - pos):  # pad by wrapping, as DistributedSampler
            if (pos + p) % R == self.rank:
                yield int(head[p % len(head)])


# ------------------------------------------------------------------------- camera images
DEFAULT_IMAGE_BLOCK_FRAMES = 1
"""Default frames per cached image block: one (a shuffled epoch reads each frame once, and an
HDF5 filter codec stores one frame per chunk, so a larger block only decodes frames early)."""


@dataclass
class _FrameTable:
    """Where every frame of a :class:`LazyFrameStore` lives: one row per demo, in frame order."""

    files: list[str]
    file_idx: np.ndarray            # (D,) int64
    offsets: np.ndarray             # (D + 1,) int64: frames of demo d are [offsets[d], offsets[d+1])
    datasets: list[list[str]]       # [D][camera]: HDF5 path of the camera's dataset in the demo
    cameras: list[str]
    shapes: list[tuple[int, int]]   # per camera: (H, W)


class _FrameProcessState:
    """Open files and the frame cache of one process; rebuilt after a fork or unpickling."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.files: dict[int, Any] = {}
        self.datasets: dict[tuple[int, int], Any] = {}
        self.cache: ByteLRUCache | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()


class LazyFrameStore:
    """Camera frames of demonstrations, decoded from HDF5 on demand through a byte-bounded
    least-recently-used cache (:class:`ByteLRUCache`) shared by the cameras.

    Frame ``f`` is frame ``f - offsets[d]`` of the ``d``-th demo in the table (the frame order of
    :class:`~robot_skills.data.images.VisuomotorDataset`'s in-memory ``frames``). A miss reads
    and decodes a *block* of ``block_frames`` consecutive frames of one demo and camera with
    :func:`~robot_skills.data.images.read_frames` (every codec of
    :func:`~robot_skills.data.images.write_frames`: gzip, lzf, png, jpeg, and plain uint8
    arrays); cached blocks are read-only ``(n, H, W, 3)`` uint8 arrays.

    DataLoader workers: the store holds no open file when pickled; each process opens the files
    it reads on first use (HDF5 chunk cache off: the decoded frames are cached here instead) and
    keeps them open. ``cache_bytes`` is the bound for all workers of one loader together: a worker
    of a loader with ``num_workers = n`` caches ``cache_bytes // n``; the main process caches up
    to ``cache_bytes`` when it reads frames itself.

    Args:
        table: the frame table (built by :func:`lazy_visuomotor_dataset`).
        cache_bytes: the cache bound, bytes (>= 0; 0 decodes every access).
        block_frames: frames per cached block (>= 1).

    Raises:
        ValueError: a negative bound or ``block_frames < 1``.
    """

    def __init__(self, table: _FrameTable, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 block_frames: int = DEFAULT_IMAGE_BLOCK_FRAMES) -> None:
        if cache_bytes < 0:
            raise ValueError(f"image cache_bytes must be >= 0, got {cache_bytes}")
        if block_frames < 1:
            raise ValueError(f"image block_frames must be >= 1, got {block_frames}")
        self._table = table
        self.cache_bytes = int(cache_bytes)
        self.block_frames = int(block_frames)
        self._state = _FrameProcessState()

    @property
    def num_frames(self) -> int:
        """Frames per camera ``F``."""
        return int(self._table.offsets[-1])

    @property
    def cameras(self) -> list[str]:
        """Camera names, in the store's order."""
        return list(self._table.cameras)

    def frame_shape(self, camera: str) -> tuple[int, int, int]:
        """``(H, W, 3)`` of ``camera``'s frames.

        Raises:
            KeyError: not a camera of the store.
        """
        return (*self._table.shapes[self._camera_index(camera)], 3)

    def nbytes_decoded(self) -> int:
        """Bytes every frame of every camera would take decoded in memory (uint8)."""
        return sum(self.num_frames * h * w * 3 for h, w in self._table.shapes)

    def frames(self, camera: str) -> LazyFrames:
        """The array-like ``(F, H, W, 3)`` uint8 frames of one camera.

        Raises:
            KeyError: not a camera of the store.
        """
        return LazyFrames(self, self._camera_index(camera))

    def _camera_index(self, camera: str) -> int:
        try:
            return self._table.cameras.index(camera)
        except ValueError:
            raise KeyError(f"camera {camera!r} is not stored; cameras: {self._table.cameras}"
                           ) from None

    def frame(self, cam: int, f: int) -> np.ndarray:
        """Frame ``f`` (``0 <= f < F``) of camera number ``cam``: ``(H, W, 3)`` uint8 RGB,
        read-only (a view of the cached block).

        Raises:
            IndexError: ``f`` outside ``[0, F)``.
            ValueError: a frame that does not decode (names file, dataset and frame).
            robot_skills.data.dataset.DemoValidationError: the file cannot be read (names file,
                dataset and frames).
        """
        t = self._table
        if not 0 <= f < self.num_frames:
            raise IndexError(f"frame {f} outside [0, {self.num_frames})")
        d = int(np.searchsorted(t.offsets, f, side="right")) - 1
        k = f - int(t.offsets[d])
        b = k // self.block_frames
        return self._block(cam, d, b)[k - b * self.block_frames]

    def _process(self) -> _FrameProcessState:
        st = self._state
        pid = os.getpid()
        if st.pid != pid:  # first use in this process (or a forked copy): nothing inherited
            st.pid, st.files, st.datasets, st.cache = pid, {}, {}, None
        if st.cache is None:
            info = torch.utils.data.get_worker_info()
            workers = info.num_workers if info is not None else 1
            st.cache = ByteLRUCache(self.cache_bytes // max(1, workers))
        return st

    def _dataset(self, st: _FrameProcessState, cam: int, d: int) -> Any:
        ds = st.datasets.get((cam, d))
        if ds is None:
            import h5py

            t = self._table
            fi = int(t.file_idx[d])
            f = st.files.get(fi)
            if f is None:
                try:
                    # no HDF5 chunk cache: decoded frames are cached here, within the bound
                    f = st.files[fi] = h5py.File(t.files[fi], "r", rdcc_nbytes=0)
                except OSError as e:
                    raise DemoValidationError(f"{t.files[fi]}: cannot open for camera frames: "
                                              f"{e}") from e
            try:
                ds = st.datasets[(cam, d)] = f[t.datasets[d][cam]]
            except KeyError as e:
                raise DemoValidationError(f"{t.files[fi]}: no camera dataset "
                                          f"{t.datasets[d][cam]} (file changed since the "
                                          "dataset was built?)") from e
        return ds

    def _block(self, cam: int, d: int, b: int) -> np.ndarray:
        from robot_skills.data.images import read_frames

        st = self._process()
        key = (cam, d, b, self.block_frames)
        hit = st.cache.get(key)
        if hit is not None:
            return hit
        t = self._table
        n = int(t.offsets[d + 1] - t.offsets[d])
        t0 = b * self.block_frames
        t1 = min(t0 + self.block_frames, n)
        ds = self._dataset(st, cam, d)
        try:
            fr = read_frames(ds, slice(t0, t1))
        except OSError as e:
            raise DemoValidationError(f"{t.files[int(t.file_idx[d])]}:{t.datasets[d][cam]}: "
                                      f"reading frames [{t0}, {t1}): {e}") from e
        if fr.shape != (t1 - t0, *t.shapes[cam], 3):
            raise ValueError(f"{t.files[int(t.file_idx[d])]}:{t.datasets[d][cam]}: frames "
                             f"[{t0}, {t1}) read as {fr.shape}, expected "
                             f"{(t1 - t0, *t.shapes[cam], 3)}")
        fr.setflags(write=False)
        st.cache.put(key, fr, fr.nbytes + _ENTRY_OVERHEAD)
        return fr

    def cache_info(self) -> dict[str, int]:
        """This process's cache: ``entries``, ``nbytes``, ``max_bytes``, ``hits``, ``misses``,
        ``evictions`` (zeros before first use)."""
        c = self._state.cache if self._state.pid == os.getpid() else None
        return ByteLRUCache(0).info() if c is None else c.info()

    def close(self) -> None:
        """Close this process's open files and drop its cache (reopened on next use)."""
        st = self._state
        if st.pid == os.getpid():
            for f in st.files.values():
                f.close()
        st.pid, st.files, st.datasets, st.cache = None, {}, {}, None


class LazyFrames:
    """One camera's frames of a :class:`LazyFrameStore` as a read-only array-like: ``shape``
    ``(F, H, W, 3)``, ``dtype`` uint8, ``len``, and ``frames[f]`` (an integer, negative counts
    from the end) -> ``(H, W, 3)`` uint8 RGB decoded on demand (read-only). What
    :class:`~robot_skills.data.images.VisuomotorDataset` indexes in place of an in-memory
    ``(F, H, W, 3)`` array.

    Attributes:
        store: the frame store (cache, files).
        camera: the camera's name.
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, store: LazyFrameStore, cam: int) -> None:
        self.store = store
        self._cam = int(cam)
        self.camera = store.cameras[self._cam]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(F, H, W, 3)``."""
        return (self.store.num_frames, *self.store.frame_shape(self.camera))

    @property
    def ndim(self) -> int:
        """4."""
        return 4

    def __len__(self) -> int:
        return self.store.num_frames

    def __getitem__(self, f: Any) -> np.ndarray:
        """Frame ``f`` (an integer). Raises IndexError outside ``[-F, F)``, TypeError for
        slices or arrays (index frame by frame), as :meth:`LazyFrameStore.frame` otherwise."""
        if isinstance(f, (bool, np.bool_)) or not isinstance(f, (int, np.integer)):
            raise TypeError(f"lazy camera frames are indexed by one integer frame, got "
                            f"{type(f).__name__}")
        n = self.store.num_frames
        f = int(f)
        if not -n <= f < n:
            raise IndexError(f"frame {f} outside [{-n}, {n}) of camera {self.camera!r}")
        return self.store.frame(self._cam, f + n if f < 0 else f)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(f"camera {self.camera!r}: lazy frames ({self.shape}) are not converted to "
                        "one in-memory array; index them frame by frame")


def _used_demos(reader: DemoReader, path: str, want: set[str] | None) -> list[tuple[str, list]]:
    """(demo, its successful segments of the wanted skills) for every demo that has any."""
    out = []
    for name in reader.demos:
        segs = [s for s in read_segments(reader, name, path)
                if (want is None or s.skill in want) and s.success]
        if segs:
            out.append((name, segs))
    return out


def visuomotor_frame_bytes(paths: str | os.PathLike | Sequence[str | os.PathLike],
                           cameras: Sequence[str], skills: Sequence[str] | None = None) -> int:
    """Bytes the decoded frames of ``cameras`` would take in memory (uint8) for the demos a
    visuomotor dataset of ``skills`` would use; reads attributes and shapes only (cheap).
    Cameras a demo lacks are not counted (the dataset builders raise for them).

    Raises:
        FileNotFoundError / ValueError: a missing or unreadable file (as
            :class:`~robot_skills.data.hdf5.DemoReader`).
    """
    from robot_skills.data.images import camera_datasets, frames_shape

    want = None if skills is None else set(skills)
    total = 0
    for p in _as_paths(paths):
        with DemoReader(p) as r:
            for name, _ in _used_demos(r, str(p), want):
                cams = camera_datasets(r._group(name)["obs"])
                for c in cameras:
                    if c in cams:
                        T, H, W, C = frames_shape(cams[c])
                        total += T * H * W * C
    return total


def lazy_visuomotor_dataset(paths: str | os.PathLike | Sequence[str | os.PathLike],
                            cameras: Sequence[str], chunk_size: int = 10,
                            augment_cfg: AugmentConfig | None = None,
                            skills: Sequence[str] | None = None,
                            skill_vocab: Sequence[str] | None = None,
                            entities: EntityVocab | None = None, *,
                            cache_bytes: int = DEFAULT_CACHE_BYTES,
                            block_frames: int = DEFAULT_IMAGE_BLOCK_FRAMES) -> VisuomotorDataset:
    """The samples of :meth:`VisuomotorDataset.from_hdf5
    <robot_skills.data.images.VisuomotorDataset.from_hdf5>` with the camera frames read lazily.

    Returns a :class:`~robot_skills.data.images.VisuomotorDataset` whose ``frames`` are
    :class:`LazyFrames` of one :class:`LazyFrameStore`: item ``i`` equals item ``i`` of the
    in-memory dataset built from the same arguments (same frame order, proprioception, entity
    and skill ids, action chunks, masks; the same augmentation for the same torch seed, since
    the decoded frames are identical). Building reads the demos' attributes, non-image arrays
    (``(N, 8)`` proprioception, ``(N, H, 7)`` actions, ... ~0.4 KB a sample at ``H = 10``) and
    the camera datasets' shapes; no frame is decoded until an item is read. Every demo used is
    validated as by the in-memory builder; a frame that does not decode raises when it is read
    (naming file, dataset and frame), not at build time.

    Args:
        paths, cameras, chunk_size, augment_cfg, skills, skill_vocab, entities: as
            :meth:`~robot_skills.data.images.VisuomotorDataset.from_hdf5`.
        cache_bytes: the decoded-frame cache bound, bytes, all DataLoader workers together.
        block_frames: frames per cached block (read and decoded together).

    Raises:
        As :meth:`~robot_skills.data.images.VisuomotorDataset.from_hdf5`, and ValueError for a
        negative ``cache_bytes`` or ``block_frames < 1``.
    """
    from robot_skills.data.dataset import action_chunks
    from robot_skills.data.images import (
        AugmentConfig,
        VisuomotorDataset,
        demo_cameras,
        frames_shape,
        index_pieces,
    )
    from robot_skills.policies.features import PROPRIO_DIM

    if not cameras:
        raise ValueError("a visuomotor dataset needs at least one camera")
    cameras = list(cameras)
    augment_cfg = augment_cfg or AugmentConfig()
    paths = _as_paths(paths)
    want = None if skills is None else set(skills)
    shapes: dict[str, tuple[int, int]] = {}
    file_idx: list[int] = []
    offsets = [0]
    ds_names: list[list[str]] = []
    pieces: list[tuple[np.ndarray, np.ndarray, str, tuple[str, ...], np.ndarray, np.ndarray,
                       int]] = []
    n_frames, ep = 0, 0
    for fi, p in enumerate(paths):
        with DemoReader(p) as r:
            for name, segs in _used_demos(r, str(p), want):
                demo = load_checked(r, name, p)
                validate_demo(demo, p, _file_limits(r, None), r.num_samples(name))
                cams = demo_cameras(r, name, p, cameras)
                T = len(demo)
                for c in cameras:
                    n, H, W, _ = frames_shape(cams[c])
                    if n != T:
                        raise ValueError(f"{p}:{name}: camera {c!r} has {n} frames, the demo {T} "
                                         "steps")
                    if c in shapes and shapes[c] != (H, W):
                        raise ValueError(f"{p}:{name}: camera {c!r} images are {(H, W)}, earlier "
                                         f"demos {shapes[c]}; one size per camera")
                    shapes[c] = (H, W)
                file_idx.append(fi)
                ds_names.append([cams[c].name for c in cameras])
                for s in segs:
                    sl = slice(s.start, s.end)
                    f = features_from_arrays(demo.obs["ee_pos"][sl], demo.obs["ee_quat"][sl],
                                             demo.obs["gripper_width"][sl], [])
                    a, m = action_chunks(demo.actions, s.start, s.end, chunk_size)
                    pieces.append((f[:, :PROPRIO_DIM], np.arange(s.start, s.end) + n_frames,
                                   s.skill, tuple(s.args), a, m, ep))
                n_frames += T
                offsets.append(n_frames)
                ep += 1
    vocab, ids, entities, ent = index_pieces(pieces, skills, paths, skill_vocab, entities)
    table = _FrameTable(files=[str(p) for p in paths], file_idx=np.asarray(file_idx, np.int64),
                        offsets=np.asarray(offsets, np.int64), datasets=ds_names,
                        cameras=cameras, shapes=[shapes[c] for c in cameras])
    store = LazyFrameStore(table, cache_bytes, block_frames)
    return VisuomotorDataset({c: store.frames(c) for c in cameras},
                             np.concatenate([pc[1] for pc in pieces]).astype(np.int64),
                             np.concatenate([pc[0] for pc in pieces]).astype(np.float32), ent,
                             np.concatenate([np.full(len(pc[0]), ids[pc[2]], np.int64)
                                             for pc in pieces]),
                             np.concatenate([pc[4] for pc in pieces]),
                             np.concatenate([pc[5] for pc in pieces]),
                             np.concatenate([np.full(len(pc[0]), pc[6], np.int64)
                                             for pc in pieces]),
                             vocab, entities, chunk_size, augment_cfg)


def frame_store_of(ds: VisuomotorDataset) -> LazyFrameStore | None:
    """The :class:`LazyFrameStore` behind a visuomotor dataset's frames, or None when they are
    in memory."""
    fr = next(iter(ds.frames.values()), None)
    return fr.store if isinstance(fr, LazyFrames) else None


def load_visuomotor_dataset(paths: str | os.PathLike | Sequence[str | os.PathLike],
                            cameras: Sequence[str], chunk_size: int = 10,
                            augment_cfg: AugmentConfig | None = None,
                            skills: Sequence[str] | None = None, *, lazy: bool | None = None,
                            max_in_memory_bytes: int = DEFAULT_MAX_IN_MEMORY_BYTES,
                            cache_bytes: int = DEFAULT_CACHE_BYTES,
                            block_frames: int = DEFAULT_IMAGE_BLOCK_FRAMES) -> VisuomotorDataset:
    """The visuomotor training samples of HDF5 demos, frames in memory when small, lazy when
    large (the image counterpart of :func:`load_skill_dataset`).

    ``lazy=None`` reads the camera datasets' shapes first (:func:`visuomotor_frame_bytes`) and
    chooses the lazy frames when the decoded frames would exceed ``max_in_memory_bytes``. Both
    give the same items.

    Returns:
        A :class:`~robot_skills.data.images.VisuomotorDataset` (frames in memory, or
        :class:`LazyFrames`: see :func:`frame_store_of`).

    Raises:
        As :func:`lazy_visuomotor_dataset`.
    """
    from robot_skills.data.images import VisuomotorDataset

    if lazy is None:
        lazy = visuomotor_frame_bytes(paths, cameras, skills) > max_in_memory_bytes
    if lazy:
        return lazy_visuomotor_dataset(paths, cameras, chunk_size, augment_cfg, skills,
                                       cache_bytes=cache_bytes, block_frames=block_frames)
    return VisuomotorDataset.from_hdf5(paths, cameras, chunk_size, augment_cfg, skills)


def write_bulk_synthetic_image_demos(path: str | os.PathLike, num_steps: int,
                                     steps_per_demo: int = 500,
                                     cameras: Sequence[str] = ("agentview", "panda/wrist_cam"),
                                     size: tuple[int, int] = (64, 64), codec: str = "gzip",
                                     seed: int = 0) -> dict[str, int]:
    """Write a synthetic demonstration file with camera frames fast (vectorised; for loader
    tests and benchmarks only: valid values, no physics, no learnable relation).

    The demos of :func:`write_bulk_synthetic_demos` (``pick(cube_1)`` then
    ``place_on(cube_1, plate_1)``, successful), plus per camera ``(T, H, W, 3)`` uint8 frames
    stored with :func:`~robot_skills.data.images.write_frames` in ``codec``: a smooth random
    image of flat 8x8 tiles per demo and camera, shifted one column per step (compressible, every
    frame distinct).

    Args:
        path: the file to write (atomically).
        num_steps: total steps (rounded up to whole demos).
        steps_per_demo: steps per demo (>= 2).
        cameras: scene camera names.
        size: ``(H, W)`` of the frames, pixels (>= 8 each).
        codec: one of :data:`~robot_skills.data.images.CODECS`.
        seed: RNG seed.

    Returns:
        ``{"demos", "steps", "bytes": file size, "frame_bytes": decoded frames, all cameras}``.

    Raises:
        ValueError: ``num_steps < 1``, ``steps_per_demo < 2``, a size under 8 px, no cameras or
            an unknown codec.
    """
    from robot_skills.data.hdf5 import DemoWriter, SkillSegment
    from robot_skills.data.images import CODECS, camera_key, write_frames

    H, W = (int(v) for v in size)
    if num_steps < 1 or steps_per_demo < 2 or min(H, W) < 8 or not cameras:
        raise ValueError(f"need num_steps >= 1, steps_per_demo >= 2, size >= 8 px and a camera, "
                         f"got {num_steps}, {steps_per_demo}, {size}, {list(cameras)}")
    if codec not in CODECS:
        raise ValueError(f"image codec must be one of {CODECS}, got {codec!r}")
    rng = np.random.default_rng(seed)
    T = int(steps_per_demo)
    n_demos = -(-int(num_steps) // T)
    half = T // 2
    cols = (np.arange(W)[None, :] + np.arange(T)[:, None]) % W  # (T, W) shifted columns
    with DemoWriter(path, env_args={"env_name": "bulk_synthetic_images"}) as w:
        for _ in range(n_demos):
            actions = np.zeros((T, ACTION_DIM), np.float32)
            actions[:, :3] = rng.uniform(-0.02, 0.02, (T, 3))
            actions[:, 6] = np.where(np.arange(T) < half, -1.0, 1.0)
            ee = np.array([0.45, 0.0, 0.3]) + np.cumsum(actions[:, :3], 0) * 0.1
            quat = np.tile([1.0, 0.0, 0.0, 0.0], (T, 1))
            poses = {n: np.concatenate([rng.uniform(-0.5, 0.5, (T, 3)), quat], 1)
                     for n in ("cube_1", "plate_1")}
            obs = {"ee_pos": ee, "ee_quat": quat, "gripper_width": rng.uniform(0, 0.08, T),
                   "joint_pos": rng.uniform(-2, 2, (T, 7)), "joint_vel": np.zeros((T, 7))}
            name = w.add_demo_arrays(obs, poses, actions,
                                     skill_segments=[SkillSegment(0, half, "pick", ("cube_1",)),
                                                     SkillSegment(half, T, "place_on",
                                                                  ("cube_1", "plate_1"))])
            for cam in cameras:
                yy, xx = np.mgrid[0:H, 0:W] // 8  # flat 8x8 tiles of random colours
                tiles = rng.integers(0, 256, (yy.max() + 1, xx.max() + 1, 3))
                base = tiles[yy, xx].astype(np.uint8)
                frames = base[:, cols].transpose(1, 0, 2, 3)  # (T, H, W, 3)
                write_frames(w.obs_group(name), camera_key(cam), np.ascontiguousarray(frames),
                             codec, camera=cam)
    n_cams = len(cameras)
    return {"demos": n_demos, "steps": n_demos * T, "bytes": os.path.getsize(path),
            "frame_bytes": n_demos * T * H * W * 3 * n_cams}
