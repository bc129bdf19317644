"""Training checkpoints: one safetensors file + a JSON sidecar per step, verified before resuming.

Layout under a checkpoint directory (``<work_dir>/ckpt``)::

    step_00001000.safetensors   model.<name> / ema.<name> / optim.<param index>.<state key>
    step_00001000.json          the sidecar: format, step, files (sha256 + bytes), fingerprint,
                                config, RNG states, history, optimiser param groups, ...

Writing (:func:`save_checkpoint`, rank 0 only): the safetensors file is written to a temporary
name, fsynced and renamed into place (:func:`~robot_skills.utils.atomic.atomic_temp_path`); its
sha256 is taken from the bytes on disk; then the sidecar is written the same way. The sidecar is
the commit record: a tensor file without one is a half-written checkpoint. Nothing is ever loaded
with pickle (safetensors and JSON only).

Reading (:func:`latest_valid_checkpoint`): checkpoints are tried newest first; one whose sidecar
is missing or unreadable, whose tensor file is missing, has another size or another sha256 (a
truncated or bit-flipped file) is skipped with a :class:`CorruptCheckpointWarning` naming it, and
the next older one is tried. Rotation (:func:`rotate_checkpoints`) keeps the newest ``keep``
*valid* checkpoints and never deletes the newest valid one.

RNG states (:func:`rng_state` / :func:`set_rng_state`) are stored as JSON-safe data: Python's
Mersenne-Twister state as a list of ints, NumPy's legacy global state as a dict of lists, torch's
CPU (and CUDA) generator states as base64 strings.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file

from robot_skills.utils.atomic import atomic_temp_path, atomic_write_json, file_sha256

log = logging.getLogger(__name__)

FORMAT = "robot_skills.checkpoint/2"
"""``format`` field of every sidecar this module writes."""

NAME_RE = re.compile(r"^step_(?P<step>\d{8,})\.(?P<ext>safetensors|json)$")
"""File names of checkpoints: ``step_<8+ digits>.safetensors`` and ``step_<...>.json``."""


class CorruptCheckpointWarning(UserWarning):
    """A checkpoint was skipped because it is incomplete or corrupted (the message names it)."""


@dataclass
class Checkpoint:
    """A verified checkpoint, loaded.

    Attributes:
        path: the sidecar (``step_XXXXXXXX.json``).
        meta: the sidecar's content.
        tensors: the tensors of the safetensors file (CPU), keys ``model.*``, ``ema.*``,
            ``optim.*``.
    """

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def step(self) -> int:
        """Optimiser steps completed when the checkpoint was written."""
        return int(self.meta["step"])

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors whose key starts with ``<prefix>.``, with the prefix removed."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.tensors.items() if k.startswith(p)}


def checkpoint_name(step: int) -> str:
    """``step_<step, 8 digits>`` (the stem of both files)."""
    if step < 0:
        raise ValueError(f"checkpoint step must be >= 0, got {step}")
    return f"step_{int(step):08d}"


# ----------------------------------------------------------------------------- RNG
def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def rng_state() -> dict[str, Any]:
    """The RNG states of Python's ``random``, NumPy's global generator and torch (CPU, and every
    CUDA device when CUDA is initialised), as JSON-safe data (lists, ints, floats, strings)."""
    py = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    out: dict[str, Any] = {
        "python": {"version": py[0], "state": list(py[1]), "gauss_next": py[2]},
        "numpy": {"kind": str(kind), "keys": [int(k) for k in keys], "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned.

    CUDA states are restored when present and as many devices are visible; otherwise they are
    left alone (a checkpoint moved to a CPU machine still resumes).

    Raises:
        ValueError: the data is not a state :func:`rng_state` wrote (the message names the part).
    """
    try:
        py = state["python"]
        random.setstate((int(py["version"]), tuple(int(x) for x in py["state"]),
                         py["gauss_next"]))
        npst = state["numpy"]
        np.random.set_state((npst["kind"], np.asarray(npst["keys"], dtype=np.uint32),
                             int(npst["pos"]), int(npst["has_gauss"]),
                             float(npst["cached_gaussian"])))
        torch.set_rng_state(_unb64(state["torch"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"checkpoint RNG state is malformed: {e}") from e
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() >= len(cuda):
        torch.cuda.set_rng_state_all([_unb64(s) for s in cuda])


# ----------------------------------------------------------------------------- optimiser
def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """An optimiser's state as flat tensors ``{"<param index>.<key>": tensor}`` plus its param
    groups as JSON-safe dicts (tuples become lists). Scalars (e.g. AdamW's ``step``) become 0-d
    tensors."""
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
            tensors[f"{idx}.{k}"] = t.detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return tensors, groups


_IMPLEMENTATION_KEYS = ("fused", "foreach", "capturable", "differentiable")
"""Optimiser options that choose kernels, not the maths: taken from the live optimiser."""


def load_optimizer(opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor],
                   groups: list[dict]) -> None:
    """Inverse of :func:`flatten_optimizer`. Kernel choices (``fused``, ``foreach``, ...) stay
    those of ``opt``, so a checkpoint written on CUDA resumes on a CPU and vice versa.

    Raises:
        ValueError: the state does not fit ``opt`` (another number of parameters or groups).
    """
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = t
    groups = [dict(g) for g in groups]
    for g, cur in zip(groups, opt.param_groups, strict=False):
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        for k in _IMPLEMENTATION_KEYS:  # this process's kernels (a CUDA checkpoint on a CPU)
            if k in cur:
                g[k] = cur[k]
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise ValueError(f"optimiser state in the checkpoint does not fit: {e}") from e


# ----------------------------------------------------------------------------- write
def save_checkpoint(ckpt_dir: str | Path, step: int, tensors: Mapping[str, torch.Tensor],
                    meta: Mapping[str, Any], keep: int = 2) -> Path:
    """Write checkpoint ``step`` atomically and rotate older ones (keeping ``keep`` valid ones).

    Args:
        ckpt_dir: the checkpoint directory (created).
        step: optimiser steps completed.
        tensors: CPU or device tensors (copied to contiguous CPU tensors); keys as in
            :class:`Checkpoint`.
        meta: JSON-serialisable sidecar fields (``format``, ``step`` and ``files`` are added).
        keep: how many valid checkpoints to keep, >= 1.

    Returns:
        The sidecar's path.

    Raises:
        ValueError: ``keep < 1``, or ``meta`` holds NaN/inf.
        TypeError: ``meta`` is not JSON-serialisable.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    d = Path(ckpt_dir)
    d.mkdir(parents=True, exist_ok=True)
    stem = checkpoint_name(step)
    st_path = d / f"{stem}.safetensors"
    flat = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    with atomic_temp_path(st_path) as tmp:
        st_save_file(flat, str(tmp))
        digest, size = file_sha256(tmp), tmp.stat().st_size
    side = d / f"{stem}.json"
    atomic_write_json(side, {**dict(meta), "format": FORMAT, "step": int(step),
                             "files": {st_path.name: {"sha256": digest, "bytes": size}}},
                      indent=1)
    rotate_checkpoints(d, keep)
    return side


# ----------------------------------------------------------------------------- read
def list_checkpoints(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, stem path)`` of every checkpoint-named file in ``ckpt_dir`` (either file of a
    pair counts), newest first. A missing directory gives ``[]``."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    steps = {}
    for p in d.iterdir():
        m = NAME_RE.match(p.name)
        if m:
            steps[int(m["step"])] = d / f"step_{m['step']}"
    return sorted(steps.items(), key=lambda kv: kv[0], reverse=True)


def verify_checkpoint(stem: Path) -> tuple[dict[str, Any] | None, str]:
    """Check one checkpoint without loading its tensors.

    Args:
        stem: ``<dir>/step_XXXXXXXX`` (no extension).

    Returns:
        ``(sidecar, "")`` when valid, else ``(None, reason)``; reasons: no sidecar (half-written
        or deleted), unreadable sidecar, wrong format, step mismatch, a listed file missing, of
        another size (truncated) or another sha256 (corrupted).
    """
    side = stem.with_suffix(".json")
    if not side.is_file():
        return None, f"it has no sidecar {side.name} (half-written or deleted)"
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"its sidecar {side.name} is unreadable ({e})"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None, f"its sidecar {side.name} is not a {FORMAT} record"
    m = NAME_RE.match(side.name)
    if m is None or meta.get("step") != int(m["step"]):
        return None, f"its sidecar records step {meta.get('step')!r}, not the one in its name"
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        return None, f"its sidecar {side.name} lists no files"
    for name, info in files.items():
        f = stem.parent / str(name)
        if "/" in str(name) or not f.is_file():
            return None, f"{name} is missing"
        try:
            size, want = int(info["bytes"]), str(info["sha256"])
        except (KeyError, TypeError, ValueError):
            return None, f"its sidecar's entry for {name} is malformed"
        if f.stat().st_size != size:
            return None, f"{name} has {f.stat().st_size} bytes, the sidecar records {size} (truncated?)"
        if file_sha256(f) != want:
            return None, f"{name} does not match its sha256 checksum (corrupted)"
    return meta, ""


def latest_valid_checkpoint(ckpt_dir: str | Path, accept: Any = None) -> Checkpoint | None:
    """The newest checkpoint in ``ckpt_dir`` that verifies and loads, or None.

    Every newer checkpoint that fails :func:`verify_checkpoint` (or whose tensors do not load) is
    skipped with a :class:`CorruptCheckpointWarning` naming its file and the reason.

    Args:
        ckpt_dir: the checkpoint directory (a missing one gives None).
        accept: optional ``accept(meta) -> bool``; a valid checkpoint it rejects (e.g. another
            run's fingerprint) is passed over silently (the caller decides what to say).
    """
    for _step, stem in list_checkpoints(ckpt_dir):
        meta, why = verify_checkpoint(stem)
        if meta is None:
            _warn(stem, why)
            continue
        if accept is not None and not accept(meta):
            continue
        st = next(iter(meta["files"]))
        try:
            tensors = st_load_file(str(stem.parent / st))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            _warn(stem, f"its tensors do not load ({e})")
            continue
        return Checkpoint(stem.with_suffix(".json"), meta, tensors)
    return None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Verify and load one checkpoint (its sidecar ``.json`` or its stem).

    Raises:
        ValueError: it does not verify or its tensors do not load (the message names it and
            the reason).
    """
    stem = Path(path).with_suffix("")
    meta, why = verify_checkpoint(stem)
    if meta is None:
        raise ValueError(f"checkpoint {stem}: {why}")
    try:
        tensors = st_load_file(str(stem.parent / next(iter(meta["files"]))))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"checkpoint {stem}: its tensors do not load ({e})") from e
    return Checkpoint(stem.with_suffix(".json"), meta, tensors)


def _warn(stem: Path, why: str) -> None:
    msg = f"skipping checkpoint {stem.with_suffix('.safetensors')}: {why}; trying an older one"
    log.warning(msg)
    warnings.warn(msg, CorruptCheckpointWarning, stacklevel=3)


def rotate_checkpoints(ckpt_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` *valid* checkpoints.

    Invalid checkpoints older than the oldest one kept are deleted too; invalid ones newer than
    the newest valid one are left (resuming skips them with a warning). When no checkpoint is
    valid nothing is deleted.

    Returns:
        The files removed.
    """
    kept, removed = 0, []
    for _step, stem in list_checkpoints(ckpt_dir):
        if kept < keep:
            kept += verify_checkpoint(stem)[0] is not None
            continue
        for ext in (".json", ".safetensors"):  # sidecar first: a half-deleted pair is invalid
            p = stem.with_suffix(ext)
            if p.exists():
                p.unlink()
                removed.append(p)
    return removed


def remove_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """Delete every checkpoint file in ``ckpt_dir`` (a fresh start); returns what was removed."""
    removed = []
    for _step, stem in list_checkpoints(ckpt_dir):
        for ext in (".json", ".safetensors"):
            p = stem.with_suffix(ext)
            if p.exists():
                p.unlink()
                removed.append(p)
    return removed
