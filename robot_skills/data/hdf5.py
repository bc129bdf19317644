"""Demonstrations on disk: HDF5 in the robomimic / LIBERO layout, plus skill segments.

Layout written by :class:`DemoWriter` (robomimic's "hdf5 dataset structure", extended)::

    data/                          attrs: env_args (JSON str), total (int, samples in all demos),
                                          robot_skills_version (str), format ("robot_skills.demo/1")
    data/demo_0/                   attrs: num_samples (int T), skill_segments (JSON str: list of
                                          {start, end (exclusive), skill, args: [..], success}),
                                          and any extra scalars: task (BDDL path/name), seed,
                                          language (instruction), ...
        actions        (T, 7)  float32  [dx, dy, dz, drx, dry, drz, gripper], base frame, m / rad
        rewards        (T,)    float32
        dones          (T,)    uint8
        states         (T, S)  float64  MuJoCo flat state (qpos ++ qvel), optional
        obs/joint_pos      (T, n_joints) float64  rad
        obs/joint_vel      (T, n_joints) float64  rad/s
        obs/ee_pos         (T, 3) float64  end-effector position, base frame, m
        obs/ee_quat        (T, 4) float64  end-effector orientation, (w, x, y, z)
        obs/gripper_width  (T, 1) float64  finger distance, m
        obs/object_poses/<entity>  (T, 7) float64  [x, y, z, qw, qx, qy, qz], base frame

:class:`DemoReader` also reads robomimic/LIBERO-style flat observation keys
(``robot0_eef_pos``, ``robot0_eef_quat`` (x, y, z, w — robosuite order, converted),
``robot0_joint_pos``, ``robot0_joint_vel``, ``robot0_gripper_qpos`` / ``gripper_states``
(two finger joints; width = |q0 - q1|), LIBERO's ``joint_states``, ``ee_pos``, ``ee_ori``
(axis-angle, converted), and object poses from ``<name>_pos`` + ``<name>_quat`` (x, y, z, w) pairs).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import h5py
import numpy as np

from robot_skills.execution.recording import SkillSegment
from robot_skills.robot import ACTION_DIM, Observation
from robot_skills.utils.atomic import atomic_temp_path
from robot_skills.utils.version import code_version

FORMAT = "robot_skills.demo/1"
POSE_DIM = 7


@dataclass
class Demo:
    """One demonstration loaded in memory (see module docstring for shapes and units).

    Attributes:
        name: group name, e.g. ``"demo_3"``.
        actions: ``(T, 7)`` float32.
        rewards: ``(T,)`` float32.
        dones: ``(T,)`` uint8.
        states: ``(T, S)`` float64 MuJoCo flat state, or None.
        obs: ``joint_pos (T,nj)``, ``joint_vel (T,nj)``, ``ee_pos (T,3)``, ``ee_quat (T,4)`` (w, x,
            y, z), ``gripper_width (T,1)``; float64.
        object_poses: entity -> ``(T, 7)`` float64 pose in the base frame.
        segments: the skill segments, in time order.
        attrs: the demo group's other attributes (task, seed, language, ...).
    """

    name: str
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    states: np.ndarray | None
    obs: dict[str, np.ndarray]
    object_poses: dict[str, np.ndarray]
    segments: list[SkillSegment] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def observation(self, t: int, control_period: float = 0.05) -> Observation:
        """Rebuild the :class:`~robot_skills.robot.Observation` of step ``t`` (time = t * period).

        Raises:
            IndexError: if ``t`` is outside ``[0, T)``.
        """
        T = len(self)
        if not -T <= t < T:
            raise IndexError(f"step {t} outside demo {self.name} of {T} steps")
        return Observation(
            joint_pos=self.obs["joint_pos"][t].copy(),
            joint_vel=self.obs["joint_vel"][t].copy(),
            ee_pos=self.obs["ee_pos"][t].copy(),
            ee_quat=self.obs["ee_quat"][t].copy(),
            gripper_width=float(self.obs["gripper_width"][t, 0]),
            object_poses={k: v[t].copy() for k, v in self.object_poses.items()},
            time=float((t % T) * control_period),
        )

    def observations(self, control_period: float = 0.05) -> list[Observation]:
        """All ``T`` observations, in order."""
        return [self.observation(t, control_period) for t in range(len(self))]


def _obs_to_arrays(observations: Sequence[Observation]) -> tuple[dict[str, np.ndarray],
                                                                  dict[str, np.ndarray]]:
    if len(observations) == 0:
        raise ValueError("a demonstration needs at least one observation")
    names = sorted(observations[0].object_poses)
    for t, o in enumerate(observations):
        if sorted(o.object_poses) != names:
            raise ValueError(f"observation {t} has entities {sorted(o.object_poses)}, "
                             f"step 0 had {names}: every step must report the same entities")
    obs = {
        "joint_pos": np.stack([np.asarray(o.joint_pos, np.float64) for o in observations]),
        "joint_vel": np.stack([np.asarray(o.joint_vel, np.float64) for o in observations]),
        "ee_pos": np.stack([np.asarray(o.ee_pos, np.float64) for o in observations]),
        "ee_quat": np.stack([np.asarray(o.ee_quat, np.float64) for o in observations]),
        "gripper_width": np.asarray([[float(o.gripper_width)] for o in observations], np.float64),
    }
    poses = {n: np.stack([np.asarray(o.object_poses[n], np.float64) for o in observations])
             for n in names}
    return obs, poses


def _check_shape(name: str, a: np.ndarray, shape: tuple[int | None, ...]) -> None:
    ok = a.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, a.shape))
    if not ok:
        parts = ["*" if s is None else str(s) for s in shape]
        want = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")


def _attr_value(v: Any) -> Any:
    if isinstance(v, (str, bool, int, float, np.integer, np.floating, np.bool_)):
        return v
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return json.dumps(v)


class DemoWriter:
    """Write demonstrations to an HDF5 file atomically (robomimic layout, see module docstring).

    Use as a context manager. Demos go to a temporary file beside ``path``; on a clean exit the file
    is completed (``data.attrs["total"]``), fsynced and renamed over ``path``. If the block raises
    (or the process dies) the temporary file is discarded and any previous ``path`` is intact.

    Args:
        path: destination ``.hdf5`` file; its directory must exist.
        env_args: environment metadata stored as JSON in ``data.attrs["env_args"]`` (robomimic).
        attrs: extra scalar (or JSON-able) attributes for the ``data`` group.
        compression: h5py compression for datasets (``None``, ``"gzip"``, ``"lzf"``).

    Example::

        with DemoWriter("demos.hdf5", env_args={"env_name": "libero_goal"}) as w:
            w.add_demo(observations, actions, skill_segments=[SkillSegment(0, 40, "pick", ("bowl",))])
    """

    def __init__(self, path: str | os.PathLike, env_args: Mapping[str, Any] | None = None,
                 attrs: Mapping[str, Any] | None = None, compression: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"cannot write {self.path}: directory {self.path.parent} "
                                    "does not exist")
        self.env_args = dict(env_args or {})
        self.attrs = dict(attrs or {})
        self.compression = compression
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None
        self._file: h5py.File | None = None
        self._n = 0
        self._total = 0

    def __enter__(self) -> Self:
        # the one atomic-write helper: a temp file beside `path`, fsynced and renamed on commit
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_temp_path(self.path))
        self._file = h5py.File(self._tmp, "w")
        g = self._file.create_group("data")
        g.attrs["env_args"] = json.dumps(self.env_args)
        g.attrs["format"] = FORMAT
        g.attrs["robot_skills_version"] = code_version()
        for k, v in self.attrs.items():
            g.attrs[k] = _attr_value(v)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def num_demos(self) -> int:
        """Demos added so far."""
        return self._n

    def add_demo(self, observations: Sequence[Observation], actions: np.ndarray,
                 rewards: np.ndarray | None = None, dones: np.ndarray | None = None,
                 states: np.ndarray | None = None,
                 skill_segments: Sequence[SkillSegment | Mapping[str, Any]] = (),
                 attrs: Mapping[str, Any] | None = None) -> str:
        """Append one demonstration built from per-step observations.

        Args:
            observations: ``T`` observations; ``observations[t]`` is seen before ``actions[t]``.
            actions: ``(T, 7)`` actions (see :class:`~robot_skills.robot.Action`).
            rewards: ``(T,)``; zeros if None.
            dones: ``(T,)``; zeros with the last step 1 if None.
            states: ``(T, S)`` MuJoCo flat states, or None.
            skill_segments: segments (or their dicts), each within ``[0, T)``.
            attrs: per-demo attributes (task, seed, language, ...); non-scalars stored as JSON.

        Returns:
            The demo's group name, ``"demo_<N>"``.

        Raises:
            ValueError: on inconsistent lengths, wrong shapes, NaN actions or bad segments.
            RuntimeError: if the writer is not open.
        """
        obs, poses = _obs_to_arrays(observations)
        return self.add_demo_arrays(obs, poses, actions, rewards, dones, states, skill_segments,
                                    attrs)

    def add_demo_arrays(self, obs: Mapping[str, np.ndarray], object_poses: Mapping[str, np.ndarray],
                        actions: np.ndarray, rewards: np.ndarray | None = None,
                        dones: np.ndarray | None = None, states: np.ndarray | None = None,
                        skill_segments: Sequence[SkillSegment | Mapping[str, Any]] = (),
                        attrs: Mapping[str, Any] | None = None) -> str:
        """Append one demonstration given as arrays (shapes as in the module docstring).

        ``obs`` needs ``ee_pos``, ``ee_quat``, ``gripper_width`` (``(T,)`` or ``(T,1)``),
        ``joint_pos``; ``joint_vel`` defaults to zeros. Other arguments as :meth:`add_demo`.

        Raises:
            ValueError / RuntimeError: as :meth:`add_demo`.
        """
        if self._file is None:
            raise RuntimeError("DemoWriter is not open: use it as a context manager")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 2 or actions.shape[1] != ACTION_DIM or actions.shape[0] == 0:
            raise ValueError(f"actions must have shape (T>0, {ACTION_DIM}), got {actions.shape}")
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions contain NaN or inf")
        T = actions.shape[0]
        o: dict[str, np.ndarray] = {}
        for key in ("ee_pos", "ee_quat", "gripper_width", "joint_pos"):
            if key not in obs:
                raise ValueError(f"obs lacks {key!r}; has {sorted(obs)}")
        o["ee_pos"] = np.asarray(obs["ee_pos"], np.float64)
        o["ee_quat"] = np.asarray(obs["ee_quat"], np.float64)
        o["gripper_width"] = np.asarray(obs["gripper_width"], np.float64).reshape(-1, 1)
        o["joint_pos"] = np.asarray(obs["joint_pos"], np.float64)
        o["joint_vel"] = (np.asarray(obs["joint_vel"], np.float64) if "joint_vel" in obs
                          else np.zeros_like(o["joint_pos"]))
        _check_shape("obs/ee_pos", o["ee_pos"], (T, 3))
        _check_shape("obs/ee_quat", o["ee_quat"], (T, 4))
        _check_shape("obs/gripper_width", o["gripper_width"], (T, 1))
        _check_shape("obs/joint_pos", o["joint_pos"], (T, None))
        _check_shape("obs/joint_vel", o["joint_vel"], (T, o["joint_pos"].shape[1]))
        for k, v in obs.items():
            if k not in o:
                o[k] = np.asarray(v)
                if o[k].shape[:1] != (T,):
                    raise ValueError(f"obs/{k} must have {T} rows, got shape {o[k].shape}")
        poses = {}
        for name, p in object_poses.items():
            if not name or "/" in name:
                raise ValueError(f"entity name {name!r} is not a valid HDF5 key")
            p = np.asarray(p, np.float64)
            _check_shape(f"obs/object_poses/{name}", p, (T, POSE_DIM))
            poses[name] = p
        rewards = np.zeros(T, np.float32) if rewards is None else np.asarray(rewards, np.float32)
        if dones is None:
            dones = np.zeros(T, np.uint8)
            dones[-1] = 1
        dones = np.asarray(dones).astype(np.uint8)
        _check_shape("rewards", rewards, (T,))
        _check_shape("dones", dones, (T,))
        if states is not None:
            states = np.asarray(states, np.float64)
            _check_shape("states", states, (T, None))
        segs = [s if isinstance(s, SkillSegment) else SkillSegment.from_dict(s)
                for s in skill_segments]
        for s in segs:
            s.check(T)

        name = f"demo_{self._n}"
        g = self._file["data"].create_group(name)
        # no modification times in the datasets' headers: the same demos give the same bytes
        kw: dict[str, Any] = {"track_times": False}
        if self.compression:
            kw["compression"] = self.compression
        g.create_dataset("actions", data=actions, **kw)
        g.create_dataset("rewards", data=rewards, **kw)
        g.create_dataset("dones", data=dones, **kw)
        if states is not None:
            g.create_dataset("states", data=states, **kw)
        og = g.create_group("obs")
        for k, v in o.items():
            og.create_dataset(k, data=v, **kw)
        pg = og.create_group("object_poses")
        for k, v in poses.items():
            pg.create_dataset(k, data=v, **kw)
        g.attrs["num_samples"] = T
        g.attrs["skill_segments"] = json.dumps([s.to_dict() for s in segs])
        for k, v in (attrs or {}).items():
            g.attrs[k] = _attr_value(v)
        self._n += 1
        self._total += T
        return name

    def obs_group(self, name: str) -> h5py.Group:
        """The open ``obs`` group of demo ``name`` added by this writer, to store more
        observation datasets (e.g. compressed camera frames,
        :func:`robot_skills.data.images.write_frames`).

        Raises:
            KeyError: no such demo in this file. RuntimeError: the writer is not open.
        """
        if self._file is None:
            raise RuntimeError("DemoWriter is not open: use it as a context manager")
        if name not in self._file["data"]:
            raise KeyError(f"no demo {name!r} written to {self.path} yet")
        return self._file["data"][name]["obs"]

    def demo_group(self, name: str) -> h5py.Group:
        """The open HDF5 group of demo ``name`` written by this writer, to add datasets beside
        the standard ones (e.g. camera frames: :func:`robot_skills.data.images.write_frames`).

        Raises:
            RuntimeError: the writer is not open. KeyError: this writer wrote no demo ``name``.
        """
        if self._file is None:
            raise RuntimeError("DemoWriter is not open: use it as a context manager")
        if name not in self._file["data"]:
            raise KeyError(f"no demo {name!r} written to {self.path}")
        return self._file["data"][name]

    def copy_demo(self, reader: DemoReader, name: str) -> str:
        """Append demo ``name`` of an open :class:`DemoReader` unchanged: its datasets and
        attributes are copied as stored (no re-encoding), renamed ``"demo_<N>"``.

        Returns:
            The new demo's group name.

        Raises:
            KeyError: ``reader`` has no demo ``name``.
            RuntimeError: if the writer is not open.
        """
        if self._file is None:
            raise RuntimeError("DemoWriter is not open: use it as a context manager")
        src = reader._group(name)
        new = f"demo_{self._n}"
        src.file.copy(src, self._file["data"], name=new)
        self._n += 1
        self._total += reader.num_samples(name)
        return new

    def close(self) -> Path:
        """Finish the file and atomically move it to ``path``. Idempotent.

        Returns:
            The destination path.
        """
        if self._file is None:
            return self.path
        self._file["data"].attrs["total"] = self._total
        self._file.flush()
        self._file.close()
        self._file = None
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()  # fsync + rename over `path` + fsync the directory
        return self.path

    def abort(self) -> None:
        """Discard everything written by this writer; ``path`` keeps its previous content."""
        try:
            if self._file is not None:
                self._file.close()
        finally:
            self._file = None
            stack, self._stack = self._stack, None
            if stack is not None:  # unwinding with an exception deletes the temp file
                aborted = RuntimeError("demo writer aborted")
                stack.__exit__(type(aborted), aborted, None)


def _xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 3:4], q[..., 0:3]], axis=-1)


def _axis_angle_to_wxyz(aa: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        axis = np.where(angle > 1e-12, aa / np.maximum(angle, 1e-12), 0.0)
    return np.concatenate([np.cos(angle / 2), axis * np.sin(angle / 2)], axis=-1)


_ROBOT_PREFIXES = ("robot0_", "robot1_", "agentview", "eye_in_hand", "joint_", "ee_", "gripper_")


def _demo_sort_key(name: str) -> tuple[int, str]:
    m = re.search(r"(\d+)$", name)
    return (int(m.group(1)) if m else -1, name)


class DemoReader:
    """Read demonstrations lazily: opening lists demos; arrays load only when a demo is asked for.

    Accepts files written by :class:`DemoWriter` and robomimic / LIBERO datasets (flat obs keys,
    see module docstring). Use as a context manager or call :meth:`close`.

    Args:
        path: an existing HDF5 file with a ``data`` group.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not HDF5 or lacks the ``data`` group.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no demonstration file at {self.path}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as e:
            raise ValueError(f"{self.path} is not a readable HDF5 file: {e}") from e
        if "data" not in self._file:
            self._file.close()
            raise ValueError(f"{self.path} has no 'data' group (not robomimic/LIBERO layout)")
        self._data = self._file["data"]
        self._names = sorted((k for k in self._data if isinstance(self._data[k], h5py.Group)),
                             key=_demo_sort_key)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        return len(self._names)

    @property
    def demos(self) -> list[str]:
        """Demo group names in numeric order (``demo_0, demo_1, ..., demo_10``)."""
        return list(self._names)

    @property
    def env_args(self) -> dict[str, Any]:
        """``data.attrs["env_args"]`` parsed from JSON (``{}`` if absent)."""
        raw = self._data.attrs.get("env_args")
        if raw is None:
            return {}
        return json.loads(raw if isinstance(raw, str) else raw.decode())

    @property
    def attrs(self) -> dict[str, Any]:
        """The ``data`` group's attributes (raw values)."""
        return {k: _plain(v) for k, v in self._data.attrs.items()}

    @property
    def total(self) -> int:
        """Total samples over all demos (``data.attrs["total"]`` or summed)."""
        if "total" in self._data.attrs:
            return int(self._data.attrs["total"])
        return sum(self.num_samples(n) for n in self._names)

    def _group(self, name: str) -> h5py.Group:
        if name not in self._names:
            raise KeyError(f"no demo {name!r} in {self.path}; demos: {self._names[:10]}"
                           f"{'...' if len(self._names) > 10 else ''}")
        return self._data[name]

    def num_samples(self, name: str) -> int:
        """Steps ``T`` of demo ``name``."""
        g = self._group(name)
        if "num_samples" in g.attrs:
            return int(g.attrs["num_samples"])
        return int(g["actions"].shape[0])

    def demo_attrs(self, name: str) -> dict[str, Any]:
        """The demo's attributes except ``skill_segments`` / ``num_samples``."""
        g = self._group(name)
        return {k: _plain(v) for k, v in g.attrs.items()
                if k not in ("skill_segments", "num_samples")}

    def segments(self, name: str) -> list[SkillSegment]:
        """The demo's skill segments (``[]`` for datasets without them).

        Raises:
            ValueError: if the stored JSON is malformed or a segment lies outside the demo.
        """
        g = self._group(name)
        raw = g.attrs.get("skill_segments")
        if raw is None:
            return []
        try:
            items = json.loads(raw if isinstance(raw, str) else raw.decode())
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.path}:{name} skill_segments is not JSON: {e}") from e
        if not isinstance(items, list):
            raise ValueError(f"{self.path}:{name} skill_segments must be a JSON list")  # noqa: TRY004 - malformed file content
        T = self.num_samples(name)
        segs = [SkillSegment.from_dict(d) for d in items]
        for s in segs:
            s.check(T)
        return segs

    def iter_segments(self, skills: Sequence[str] | None = None
                      ) -> Iterator[tuple[str, SkillSegment]]:
        """Yield ``(demo_name, segment)`` for every segment, optionally only of ``skills``."""
        want = None if skills is None else set(skills)
        for n in self._names:
            for s in self.segments(n):
                if want is None or s.skill in want:
                    yield n, s

    def load(self, name: str) -> Demo:
        """Read demo ``name`` fully into memory.

        Raises:
            KeyError: unknown demo, or required observation keys missing (the message lists what
                the file has).
            ValueError: on inconsistent shapes.
        """
        g = self._group(name)
        if "actions" not in g or not isinstance(g["actions"], h5py.Dataset):
            raise KeyError(f"{self.path}:{name} has no actions dataset; keys: {sorted(g.keys())}")
        actions = np.asarray(g["actions"][()], np.float32)
        if actions.ndim != 2 or actions.shape[1] != ACTION_DIM:
            raise ValueError(f"{self.path}:{name}/actions has shape {actions.shape}, "
                             f"expected (T, {ACTION_DIM})")
        T = actions.shape[0]
        rewards = (np.asarray(g["rewards"][()], np.float32) if "rewards" in g
                   else np.zeros(T, np.float32))
        dones = np.asarray(g["dones"][()]).astype(np.uint8) if "dones" in g else np.zeros(T, np.uint8)
        states = np.asarray(g["states"][()], np.float64) if "states" in g else None
        obs, poses = self._read_obs(g, name, T)
        return Demo(name, actions, rewards, dones, states, obs, poses, self.segments(name),
                    self.demo_attrs(name))

    def observations(self, name: str, control_period: float = 0.05) -> list[Observation]:
        """Per-step :class:`~robot_skills.robot.Observation` objects of demo ``name``."""
        return self.load(name).observations(control_period)

    def read_action_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Action rows ``[start, stop)`` of demo ``name``, ``(stop - start, 7)`` float32, without
        reading the rest.

        Raises:
            KeyError: unknown demo or no actions dataset.
            ValueError: a bad row range or action shape.
        """
        g = self._group(name)
        if "actions" not in g or not isinstance(g["actions"], h5py.Dataset):
            raise KeyError(f"{self.path}:{name} has no actions dataset; keys: {sorted(g.keys())}")
        ds = g["actions"]
        if ds.ndim != 2 or ds.shape[1] != ACTION_DIM or not 0 <= start < stop <= ds.shape[0]:
            raise ValueError(f"{self.path}:{name}: action rows [{start}, {stop}) of a dataset of "
                             f"shape {ds.shape}")
        return np.asarray(ds[start:stop], np.float32)

    def read_obs_rows(self, name: str, start: int, stop: int,
                      entities: Sequence[str] | None = None
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Observation rows ``[start, stop)`` of demo ``name`` without reading the rest (for
        lazy loaders): the same keys, conversions and dtypes as :meth:`load`'s ``obs`` and
        ``object_poses``, each with ``stop - start`` rows.

        Args:
            name: the demo.
            start, stop: the row range, ``0 <= start < stop <= T``.
            entities: object poses to read (None: all).

        Raises:
            KeyError: unknown demo, missing observation keys or entity.
            ValueError: a bad row range or inconsistent shapes.
        """
        g = self._group(name)
        T = self.num_samples(name)
        if not 0 <= start < stop <= T:
            raise ValueError(f"{self.path}:{name}: rows [{start}, {stop}) outside a demo of {T} "
                             "steps")
        obs, poses = self._read_obs(g, name, stop - start, slice(start, stop), entities)
        missing = [e for e in (entities or ()) if e not in poses]
        if missing:
            raise KeyError(f"{self.path}:{name}: entities {missing} are not among the recorded "
                           f"object poses")
        return obs, poses

    def _read_obs(self, g: h5py.Group, name: str, T: int, rows: slice = slice(None),
                  entities: Sequence[str] | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        want = None if entities is None else set(entities)
        if "obs" not in g:
            raise KeyError(f"{self.path}:{name} has no obs group")
        og = g["obs"]
        keys = set(og.keys())

        def get(*cands: str) -> np.ndarray | None:
            for c in cands:
                if c in keys and isinstance(og[c], h5py.Dataset):
                    return np.asarray(og[c][rows], np.float64)
            return None

        obs: dict[str, np.ndarray] = {}
        ee_pos = get("ee_pos", "robot0_eef_pos")
        if ee_pos is None:
            raise KeyError(f"{self.path}:{name}/obs lacks an end-effector position "
                           f"(ee_pos / robot0_eef_pos); keys: {sorted(keys)}")
        obs["ee_pos"] = ee_pos
        if "ee_quat" in keys:
            obs["ee_quat"] = get("ee_quat")
        elif "robot0_eef_quat" in keys:
            obs["ee_quat"] = _xyzw_to_wxyz(get("robot0_eef_quat"))
        elif "ee_ori" in keys:
            obs["ee_quat"] = _axis_angle_to_wxyz(get("ee_ori"))
        else:
            raise KeyError(f"{self.path}:{name}/obs lacks an end-effector orientation "
                           f"(ee_quat / robot0_eef_quat / ee_ori); keys: {sorted(keys)}")
        width = get("gripper_width")
        if width is None:
            q = get("robot0_gripper_qpos", "gripper_states")
            width = (np.abs(q[:, 0] - q[:, 1]) if q is not None and q.ndim == 2 and q.shape[1] >= 2
                     else np.zeros(T))
        obs["gripper_width"] = width.reshape(T, 1)
        jp = get("joint_pos", "robot0_joint_pos", "joint_states")
        obs["joint_pos"] = jp if jp is not None else np.zeros((T, 7))
        jv = get("joint_vel", "robot0_joint_vel")
        obs["joint_vel"] = jv if jv is not None else np.zeros_like(obs["joint_pos"])
        for k, v in obs.items():
            if v.shape[0] != T:
                raise ValueError(f"{self.path}:{name}/obs/{k} has {v.shape[0]} rows, actions {T}")
        _check_shape(f"{name}/obs/ee_pos", obs["ee_pos"], (T, 3))
        _check_shape(f"{name}/obs/ee_quat", obs["ee_quat"], (T, 4))

        poses: dict[str, np.ndarray] = {}
        if "object_poses" in keys:
            for ent, ds in og["object_poses"].items():
                if want is not None and ent not in want:
                    continue
                p = np.asarray(ds[rows], np.float64)
                _check_shape(f"{name}/obs/object_poses/{ent}", p, (T, POSE_DIM))
                poses[ent] = p
        else:  # robomimic / robosuite flat keys: <name>_pos (T,3) + <name>_quat (T,4, xyzw)
            for k in sorted(keys):
                if not k.endswith("_pos") or k.startswith(_ROBOT_PREFIXES):
                    continue
                ent = k[: -len("_pos")]
                if f"{ent}_quat" not in keys or (want is not None and ent not in want):
                    continue
                p, q = get(k), get(f"{ent}_quat")
                if p.shape == (T, 3) and q.shape == (T, 4):
                    poses[ent] = np.concatenate([p, _xyzw_to_wxyz(q)], axis=1)
        return obs, poses


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v
