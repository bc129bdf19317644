"""Demonstrations in and out as LeRobotDataset v3 (``codebase_version: "v3.0"``).

:func:`export_lerobot` writes HDF5 demos (:mod:`robot_skills.data.hdf5`) as a LeRobot v3 dataset
directory; :func:`import_lerobot` reads a LeRobot v3 directory back into one HDF5 file. A round
trip HDF5 -> LeRobot -> HDF5 gives identical arrays, attributes and skill segments (camera images
excepted: mp4 is lossy). ``docs/lerobot.md`` has the full mapping; in short::

    meta/info.json                  codebase_version "v3.0", fps, features (dtype/shape/names),
                                    totals, chunks_size, data_path / video_path templates, splits
    meta/stats.json                 per feature: min, max, mean, std, count, q01 q10 q50 q90 q99
    meta/tasks.parquet              task (the index, as pandas writes it), task_index
    meta/episodes/chunk-000/file-000.parquet
                                    per episode: episode_index, tasks, length, data/chunk_index,
                                    data/file_index, dataset_from_index, dataset_to_index,
                                    videos/<key>/{chunk_index,file_index,from_timestamp,
                                    to_timestamp}, meta/episodes/{chunk_index,file_index},
                                    stats/<feature>/<stat>
    data/chunk-000/file-000.parquet one row per frame
    videos/<key>/chunk-000/file-000.mp4
                                    one H.264 stream per camera, episodes back to back
    meta/robot_skills.json          this project's extras (LeRobot never reads it)

Per-frame columns: ``observation.state`` float32 ``[ee_pos (3, m), ee_quat (4, w x y z),
gripper_width (1, m), joint_pos (n, rad), joint_vel (n, rad/s)]``;
``observation.environment_state`` float32, 7 values ``[x, y, z, qw, qx, qy, qz]`` per entity (the
union of the demos' entities, sorted; zeros where a demo lacks one); ``action`` float32 (7,)
``[dx, dy, dz, drx, dry, drz, gripper]``; ``next.reward`` float32, ``next.done`` bool;
``timestamp`` (``frame_index / fps``, s), ``frame_index``, ``episode_index``, ``index``,
``task_index``; camera observations (``(T, H, W, 3)`` uint8 obs arrays) become
``observation.images.<obs key>`` video features. The exact float64 HDF5 arrays travel in
``robot_skills.*`` columns (declared features whose names start with neither ``observation`` nor
``action``, so LeRobot policies ignore them), and the skill segments, demo attributes, entity
lists and file attributes in ``meta/robot_skills.json``: that is what makes the round trip exact.

Importing a foreign LeRobot v3 dataset (no ``meta/robot_skills.json``): ``observation.state`` is
split by a layout (:func:`parse_state_layout`, e.g. the ``"libero"`` preset ``ee_pos:3,
ee_axis_angle:3,gripper_qpos:2``; our own names are recognised without one); actions must have 7
dimensions; each episode becomes one demo without skill segments, its task string the demo's
``language`` and ``task`` attributes; cameras (video or image features) become obs arrays.

Errors (:class:`LeRobotFormatError`, a ``ValueError``) name the file and, where one is at fault,
the episode or demo. Both directions write atomically (a temporary sibling, renamed at the end).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from robot_skills.data.hdf5 import Demo, DemoReader, DemoWriter, _axis_angle_to_wxyz, _xyzw_to_wxyz
from robot_skills.data.images import DEFAULT_CODEC, camera_datasets, read_frames, write_frames
from robot_skills.execution.recording import SkillSegment
from robot_skills.robot import ACTION_DIM
from robot_skills.utils.atomic import atomic_dir

CODEBASE_VERSION = "v3.0"
SIDECAR = "meta/robot_skills.json"
SIDECAR_FORMAT = "robot_skills.lerobot/1"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
ACTION_NAMES = ["dx", "dy", "dz", "drx", "dry", "drz", "gripper"]
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
DEFAULT_FPS = 20
"""The project's control rate (0.05 s control period)."""
_POSE_NAMES = ("x", "y", "z", "qw", "qx", "qy", "qz")
_EXACT = "robot_skills."


class LeRobotFormatError(ValueError):
    """A LeRobot dataset (or a demo being exported) cannot be converted; the message names the
    file and the episode or demo."""


# ---------------------------------------------------------------------------------- helpers
def _pa():
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


def _stats(x: np.ndarray, image: bool = False) -> dict[str, Any]:
    """LeRobot feature statistics of ``x`` (``(N, ...)``): per dimension, or per channel in
    ``[0, 1]`` with shape ``(3, 1, 1)`` for images ``(N, H, W, 3)`` uint8."""
    if image:
        v = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
        shape = (x.shape[-1], 1, 1)
    else:
        v = x.reshape(x.shape[0], -1).astype(np.float64)
        shape = v.shape[1:]
    out: dict[str, Any] = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0)}
    for q in QUANTILES:
        out[f"q{int(round(q * 100)):02d}"] = np.quantile(v, q, axis=0)
    out = {k: np.asarray(a).reshape(shape).tolist() for k, a in out.items()}
    out["count"] = [int(x.shape[0])]
    return out


def _feature(dtype: str, shape: Sequence[int], names: Any) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape), "names": names}


@dataclass
class _Episode:
    demo: Demo
    source: int
    raw_obs: dict[str, np.ndarray]      # every obs dataset as stored (images included)
    images: dict[str, np.ndarray]       # obs key -> (T, H, W, 3) uint8


def _raw_obs(reader: DemoReader, name: str) -> dict[str, np.ndarray]:
    """Every obs dataset of a demo as stored, camera datasets (any codec of
    :mod:`robot_skills.data.images`) decoded to ``(T, H, W, 3)`` uint8."""
    g = reader._group(name)
    out = {}
    if "obs" in g:
        cams = {ds.name.rsplit("/", 1)[-1]: ds for ds in camera_datasets(g["obs"]).values()}
        for k, ds in g["obs"].items():
            if k in cams:
                out[k] = read_frames(ds)
            elif isinstance(ds, h5py.Dataset):
                out[k] = ds[()]
    return out


def _camera_attrs(reader: DemoReader, name: str) -> dict[str, dict[str, str]]:
    """obs key -> ``{"camera", "codec"}`` of each camera dataset of a demo."""
    g = reader._group(name)
    if "obs" not in g:
        return {}
    out = {}
    for cam, ds in camera_datasets(g["obs"]).items():
        codec = ds.attrs.get("codec", DEFAULT_CODEC)
        out[ds.name.rsplit("/", 1)[-1]] = {
            "camera": cam, "codec": codec.decode() if isinstance(codec, bytes) else str(codec)}
    return out


def _is_image(a: np.ndarray) -> bool:
    return a.dtype == np.uint8 and a.ndim == 4 and a.shape[-1] == 3


# ---------------------------------------------------------------------------------- export
def export_lerobot(hdf5_paths: str | os.PathLike | Sequence[str | os.PathLike],
                   out_dir: str | os.PathLike, *, fps: int = DEFAULT_FPS,
                   robot_type: str | None = "panda", overwrite: bool = False,
                   crf: int = 18, task_onehot: bool = False) -> dict[str, Any]:
    """Write the demos of ``hdf5_paths`` as a LeRobotDataset v3 directory ``out_dir``.

    Args:
        hdf5_paths: one or more demo files (:mod:`robot_skills.data.hdf5` layout, or any file
            :class:`~robot_skills.data.hdf5.DemoReader` reads).
        out_dir: the dataset root to create (its parent must exist).
        fps: frames per second (the control rate; 20 for this project's 0.05 s period).
        robot_type: ``info.json``'s ``robot_type``.
        overwrite: replace an existing ``out_dir``.
        crf: H.264 constant rate factor of the camera videos (0 = visually lossless .. 51).
        task_onehot: append a one-hot of the episode's task (``len(tasks)`` values, in
            ``meta/tasks.parquet`` order, names ``task.<task_index>``) to
            ``observation.environment_state``: the goal as an input of policies that read no
            language (LeRobot's ACT). The exact ``robot_skills.*`` columns are unchanged, so the
            import still round-trips.

    Returns:
        Summary: ``episodes``, ``frames``, ``tasks``, ``cameras``, ``path``.

    Raises:
        FileExistsError: ``out_dir`` exists and not ``overwrite``.
        LeRobotFormatError: a demo cannot be represented (odd image sizes, shapes differing
            between demos of one camera); the message names the file and the demo.
        FileNotFoundError / ValueError: unreadable inputs, as :class:`DemoReader`.
    """
    pa, pq = _pa()
    paths = [Path(p) for p in ([hdf5_paths] if isinstance(hdf5_paths, (str, os.PathLike))
                               else hdf5_paths)]
    if not paths:
        raise ValueError("no demonstration files given")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")

    # pass 1: shapes, entities, tasks, cameras (attributes and shapes only)
    file_meta, ep_meta = [], []
    entities: set[str] = set()
    widths: dict[str, int] = {}
    cameras: dict[str, tuple[int, int]] = {}
    tasks: list[str] = []
    for fi, p in enumerate(paths):
        with DemoReader(p) as r:
            file_meta.append({"path": p.name, "attrs": r.attrs, "env_args": r.env_args})
            for name in r.demos:
                d = r.load(name)
                raw = _raw_obs(r, name)
                entities.update(d.object_poses)
                for k, v in d.obs.items():
                    widths[f"obs.{k}"] = max(widths.get(f"obs.{k}", 0), v.shape[1])
                for k, v in raw.items():
                    if k in d.obs or k == "object_poses":
                        continue
                    if _is_image(v):
                        hw = v.shape[1:3]
                        if k in cameras and cameras[k] != hw:
                            raise LeRobotFormatError(f"{p}:{name}: camera {k} is {hw}, earlier "
                                                     f"demos {cameras[k]}; one size per camera")
                        if hw[0] % 2 or hw[1] % 2:
                            raise LeRobotFormatError(f"{p}:{name}: camera {k} size {hw} must be "
                                                     "even (H.264 yuv420p)")
                        cameras[k] = hw
                    elif v.ndim >= 1 and v.dtype.kind in "fiub" and v.shape[0] == len(d):
                        widths[f"extra.{k}"] = max(widths.get(f"extra.{k}", 0),
                                                   int(np.prod(v.shape[1:])))
                if d.states is not None:
                    widths["states"] = max(widths.get("states", 0), d.states.shape[1])
                task = str(d.attrs.get("language") or d.attrs.get("task") or p.stem)
                if task not in tasks:
                    tasks.append(task)
                ep_meta.append({"source": fi, "demo": name, "task": task})
    if not ep_meta:
        raise ValueError(f"no demonstrations in {[str(p) for p in paths]}")
    ents = sorted(entities)
    nj = widths.get("obs.joint_pos", 0)
    state_names = (["ee_pos.x", "ee_pos.y", "ee_pos.z", "ee_quat.w", "ee_quat.x", "ee_quat.y",
                    "ee_quat.z", "gripper_width"] + [f"joint_pos.{i}" for i in range(nj)]
                   + [f"joint_vel.{i}" for i in range(widths.get("obs.joint_vel", 0))])
    features: dict[str, dict[str, Any]] = {
        "observation.state": _feature("float32", [len(state_names)], state_names)}
    env_names = [f"{e}.{n}" for e in ents for n in _POSE_NAMES]
    if task_onehot:
        env_names += [f"task.{i}" for i in range(len(tasks))]
    if env_names:
        features["observation.environment_state"] = _feature(
            "float32", [len(env_names)], env_names)
    for cam, (h, w) in cameras.items():
        features[f"observation.images.{cam}"] = {
            "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                     "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                     "video.fps": fps, "video.channels": 3, "has_audio": False}}
    features["action"] = _feature("float32", [ACTION_DIM], ACTION_NAMES)
    features["next.reward"] = _feature("float32", [1], None)
    features["next.done"] = _feature("bool", [1], None)
    exact_cols = {f"{_EXACT}{k}": w for k, w in sorted(widths.items())}
    for e in ents:
        exact_cols[f"{_EXACT}pose.{e}"] = 7
    for c, w in exact_cols.items():
        features[c] = _feature("float64", [w], None)
    for k, dt in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                  ("index", "int64"), ("task_index", "int64")):
        features[k] = _feature(dt, [1], None)

    with atomic_dir(out, overwrite=overwrite) as tmp:
        writers: dict[str, Any] = {}
        video_frames = dict.fromkeys(cameras, 0)
        columns_all: dict[str, list[np.ndarray]] = {}
        episode_rows: list[dict[str, Any]] = []
        sidecar_eps = []
        index = 0
        try:
            for ei, em in enumerate(ep_meta):
                p = paths[em["source"]]
                with DemoReader(p) as r:
                    d = r.load(em["demo"])
                    raw = _raw_obs(r, em["demo"])
                    cam_attrs = _camera_attrs(r, em["demo"])
                T = len(d)
                cols = _episode_columns(d, raw, ents, widths, exact_cols, state_names, fps, ei,
                                        index, tasks.index(em["task"]),
                                        len(tasks) if task_onehot else 0)
                for k, v in cols.items():
                    columns_all.setdefault(k, []).append(v)
                row: dict[str, Any] = {
                    "episode_index": ei, "tasks": [em["task"]], "length": T,
                    "data/chunk_index": 0, "data/file_index": 0,
                    "dataset_from_index": index, "dataset_to_index": index + T}
                for cam in cameras:
                    key = f"observation.images.{cam}"
                    frames = raw.get(cam)
                    if frames is None or not _is_image(frames) or frames.shape[0] != T:
                        raise LeRobotFormatError(f"{p}:{em['demo']}: camera {cam} missing or not "
                                                 f"{T} frames (every demo must carry every camera)")
                    if cam not in writers:
                        writers[cam] = _video_writer(tmp / VIDEO_PATH.format(
                            video_key=key, chunk_index=0, file_index=0), cameras[cam], fps, crf)
                    for f in frames:
                        writers[cam].send(np.ascontiguousarray(f))
                    row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                                f"videos/{key}/from_timestamp": video_frames[cam] / fps,
                                f"videos/{key}/to_timestamp": (video_frames[cam] + T) / fps})
                    video_frames[cam] += T
                row["meta/episodes/chunk_index"] = 0
                row["meta/episodes/file_index"] = 0
                for k, v in cols.items():
                    if k in ("episode_index", "index", "frame_index", "task_index"):
                        continue
                    for s, val in _stats(np.asarray(v)).items():
                        row[f"stats/{k}/{s}"] = val
                for cam in cameras:
                    for s, val in _stats(raw[cam], image=True).items():
                        row[f"stats/observation.images.{cam}/{s}"] = val
                episode_rows.append(row)
                sidecar_eps.append({
                    "episode_index": ei, "source": em["source"], "demo": em["demo"],
                    "attrs": d.attrs, "segments": [s.to_dict() for s in d.segments],
                    "entities": sorted(d.object_poses), "has_states": d.states is not None,
                    "cameras": cam_attrs,
                    "widths": {k: (int(np.prod(raw[k[6:]].shape[1:])) if k.startswith("extra.")
                                   else d.states.shape[1] if k == "states"
                                   else d.obs[k[4:]].shape[1])
                               for k in widths
                               if (k.startswith("obs.") and k[4:] in d.obs)
                               or (k == "states" and d.states is not None)
                               or (k.startswith("extra.") and k[6:] in raw)},
                    "extra_shapes": {k[6:]: list(raw[k[6:]].shape[1:]) for k in widths
                                     if k.startswith("extra.") and k[6:] in raw},
                    "extra_dtypes": {k[6:]: str(raw[k[6:]].dtype) for k in widths
                                     if k.startswith("extra.") and k[6:] in raw}})
                index += T
        finally:
            for w in writers.values():
                w.close()

        table = _data_table(columns_all, features)
        path = tmp / DATA_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True)
        pq.write_table(table, path)
        ep_path = tmp / EPISODES_PATH
        ep_path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(episode_rows), ep_path)
        _write_tasks(tmp / "meta" / "tasks.parquet", tasks)
        stats = {k: _stats(np.concatenate(v)) for k, v in columns_all.items()
                 if k not in ("episode_index", "index", "frame_index", "task_index")}
        stats["episode_index"] = _stats(np.concatenate(columns_all["episode_index"]))
        stats["index"] = _stats(np.concatenate(columns_all["index"]))
        stats["frame_index"] = _stats(np.concatenate(columns_all["frame_index"]))
        stats["task_index"] = _stats(np.concatenate(columns_all["task_index"]))
        for cam in cameras:
            stats[f"observation.images.{cam}"] = _image_stats_from_rows(
                episode_rows, f"observation.images.{cam}")
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type,
                "total_episodes": len(ep_meta), "total_frames": index,
                "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100,
                "video_files_size_in_mb": 200, "fps": int(fps),
                "splits": {"train": f"0:{len(ep_meta)}"}, "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if cameras else None, "features": features}
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=2))
        (tmp / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
        (tmp / SIDECAR).write_text(json.dumps(
            {"format": SIDECAR_FORMAT, "files": file_meta, "entities": ents,
             "state_names": state_names, "task_onehot": bool(task_onehot),
             "episodes": sidecar_eps}, indent=1, default=_json_default))
    return {"episodes": len(ep_meta), "frames": index, "tasks": tasks,
            "cameras": sorted(cameras), "path": str(out)}


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, bytes):
        return v.decode()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    a = a.reshape(a.shape[0], -1)
    if a.shape[1] == width:
        return a
    out = np.zeros((a.shape[0], width), a.dtype)
    out[:, :a.shape[1]] = a
    return out


def _episode_columns(d: Demo, raw: Mapping[str, np.ndarray], ents: list[str],
                     widths: Mapping[str, int], exact_cols: Mapping[str, int],
                     state_names: list[str], fps: int, ei: int, index: int, task_index: int,
                     num_tasks: int = 0) -> dict[str, np.ndarray]:
    T = len(d)
    cols: dict[str, np.ndarray] = _observation_columns(d, ents, widths, task_index, num_tasks)
    cols["action"] = np.asarray(d.actions, np.float32)
    cols["next.reward"] = np.asarray(d.rewards, np.float32)
    cols["next.done"] = np.asarray(d.dones).astype(bool)
    for c, w in exact_cols.items():
        k = c[len(_EXACT):]
        if k.startswith("obs."):
            src = d.obs.get(k[4:])
        elif k.startswith("extra."):
            src = raw.get(k[6:])
        elif k == "states":
            src = d.states
        else:  # pose.<entity>
            src = d.object_poses.get(k[5:])
        cols[c] = (_pad(np.asarray(src, np.float64), w) if src is not None
                   else np.zeros((T, w)))
    cols["timestamp"] = (np.arange(T) / fps).astype(np.float32)
    cols["frame_index"] = np.arange(T, dtype=np.int64)
    cols["episode_index"] = np.full(T, ei, np.int64)
    cols["index"] = np.arange(index, index + T, dtype=np.int64)
    cols["task_index"] = np.full(T, task_index, np.int64)
    return cols


def _observation_columns(d: Demo, ents: list[str], widths: Mapping[str, int], task_index: int,
                         num_tasks: int) -> dict[str, np.ndarray]:
    """``observation.state`` and ``observation.environment_state`` (float32) of every step."""
    T = len(d)
    nj, nv = widths.get("obs.joint_pos", 0), widths.get("obs.joint_vel", 0)
    state = np.concatenate([d.obs["ee_pos"], d.obs["ee_quat"], d.obs["gripper_width"],
                            _pad(d.obs["joint_pos"], nj), _pad(d.obs["joint_vel"], nv)], 1)
    cols: dict[str, np.ndarray] = {"observation.state": state.astype(np.float32)}
    if ents or num_tasks:
        env = np.zeros((T, 7 * len(ents) + num_tasks))
        for i, e in enumerate(ents):
            if e in d.object_poses:
                env[:, 7 * i:7 * i + 7] = d.object_poses[e]
        if num_tasks:
            env[:, 7 * len(ents) + task_index] = 1.0
        cols["observation.environment_state"] = env.astype(np.float32)
    return cols


def policy_observation(root: str | os.PathLike, obs: Mapping[str, np.ndarray],
                       object_poses: Mapping[str, np.ndarray], task: str | None = None
                       ) -> dict[str, np.ndarray]:
    """The ``observation.*`` features an export at ``root`` holds for one live observation: what a
    policy trained on that export (LeRobot's ACT, ...) must be fed at run time.

    Computed by the same code as the export, with the dataset's own layout (its entity list and
    joint widths, ``meta/robot_skills.json``; its task list, ``meta/tasks.parquet``).

    Args:
        root: an export of :func:`export_lerobot`.
        obs: ``ee_pos`` (3,) m, ``ee_quat`` (4,) w x y z, ``gripper_width`` (1,) m, ``joint_pos``
            (n,) rad, ``joint_vel`` (n,) rad/s, all in the robot base frame (as
            :class:`~robot_skills.robot.Observation` and the gymnasium env give them).
        object_poses: entity -> (7,) ``[x, y, z, qw, qx, qy, qz]`` in the base frame; entities the
            dataset does not list are ignored, listed ones that are absent stay zero (as in the
            export).
        task: the task string (a demo's ``language`` attribute, as in ``meta/tasks.parquet``);
            required when the export was written with ``task_onehot``.

    Returns:
        ``{"observation.state": (S,) float32, "observation.environment_state": (E,) float32}``
        (the latter only when the dataset has it), shapes as in ``meta/info.json``.

    Raises:
        FileNotFoundError: ``root`` lacks ``meta/robot_skills.json`` (not this project's export).
        KeyError: an ``obs`` key is missing.
        LeRobotFormatError: ``task`` is missing or not one of the dataset's tasks (one-hot exports).
    """
    root = Path(root)
    ents, widths, tasks = _policy_layout(str(root.resolve()))
    num_tasks, task_index = 0, 0
    if tasks is not None:
        if task not in tasks:
            raise LeRobotFormatError(f"{root}: task {task!r} is not one of the dataset's tasks "
                                     f"{sorted(tasks)}")
        num_tasks, task_index = len(tasks), tasks[task]
    keys = ("ee_pos", "ee_quat", "gripper_width", "joint_pos", "joint_vel")
    missing = [k for k in keys if k not in obs]
    if missing:
        raise KeyError(f"policy_observation: obs lacks {missing}")
    d = Demo(name="live", actions=np.zeros((1, ACTION_DIM), np.float32),
             rewards=np.zeros(1, np.float32), dones=np.zeros(1, np.uint8), states=None,
             obs={k: np.asarray(obs[k], np.float64).reshape(1, -1) for k in keys},
             object_poses={e: np.asarray(p, np.float64).reshape(1, 7)
                           for e, p in object_poses.items()})
    cols = _observation_columns(d, ents, widths, task_index, num_tasks)
    return {k: v[0] for k, v in cols.items()}


@functools.lru_cache(maxsize=8)
def _policy_layout(root: str) -> tuple[list[str], dict[str, int], dict[str, int] | None]:
    """(entities, joint widths, task -> index or None without a one-hot) of an export."""
    side_path = Path(root) / SIDECAR
    if not side_path.is_file():
        raise FileNotFoundError(f"{side_path}: not found (policy_observation needs an export of "
                                "this project)")
    side = json.loads(side_path.read_text())
    names = side["state_names"]
    widths = {"obs.joint_pos": sum(n.startswith("joint_pos.") for n in names),
              "obs.joint_vel": sum(n.startswith("joint_vel.") for n in names)}
    tasks = None
    if side.get("task_onehot"):
        tasks = {s: i for i, s in _read_tasks(Path(root) / "meta" / "tasks.parquet").items()}
    return list(side["entities"]), widths, tasks


def _data_table(columns: Mapping[str, list[np.ndarray]], features: Mapping[str, Any]) -> Any:
    pa, _ = _pa()
    arrays, names = [], []
    for k, parts in columns.items():
        v = np.concatenate(parts)
        ft = features[k]
        if ft["shape"] == [1]:
            arrays.append(pa.array(v.reshape(-1)))
        else:
            flat = pa.array(v.reshape(-1))
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, int(ft["shape"][0])))
        names.append(k)
    return pa.Table.from_arrays(arrays, names=names)


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """``tasks.parquet`` as pandas writes a frame indexed by ``task`` with a ``task_index``
    column (what LeRobot's ``pd.read_parquet`` expects)."""
    pa, pq = _pa()
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      "task": pa.array(tasks, pa.string())})
    pandas_meta = {"index_columns": ["task"],
                   "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                       "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                   "columns": [{"name": "task_index", "field_name": "task_index",
                                "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
                               {"name": "task", "field_name": "task", "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}],
                   "creator": {"library": "pyarrow", "version": pa.__version__},
                   "pandas_version": "2.2.0"}
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    pq.write_table(table, path)


def _image_stats_from_rows(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Dataset image statistics merged from the episodes' (count-weighted mean/std; min/max;
    quantiles as the count-weighted mean of the episodes', an approximation as LeRobot's)."""
    n = np.array([r[f"stats/{key}/count"][0] for r in rows], np.float64)
    w = n / n.sum()
    mean = sum(wi * np.asarray(r[f"stats/{key}/mean"]) for wi, r in zip(w, rows, strict=True))
    ex2 = sum(wi * (np.asarray(r[f"stats/{key}/std"]) ** 2 + np.asarray(r[f"stats/{key}/mean"])
                    ** 2) for wi, r in zip(w, rows, strict=True))
    out = {"min": np.min([r[f"stats/{key}/min"] for r in rows], 0).tolist(),
           "max": np.max([r[f"stats/{key}/max"] for r in rows], 0).tolist(),
           "mean": mean.tolist(), "std": np.sqrt(np.maximum(ex2 - mean ** 2, 0)).tolist(),
           "count": [int(n.sum())]}
    for q in QUANTILES:
        k = f"q{int(round(q * 100)):02d}"
        out[k] = sum(wi * np.asarray(r[f"stats/{key}/{k}"])
                     for wi, r in zip(w, rows, strict=True)).tolist()
    return out


def _video_writer(path: Path, hw: tuple[int, int], fps: int, crf: int):
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    gen = imageio_ffmpeg.write_frames(str(path), (hw[1], hw[0]), fps=fps, codec="libx264",
                                      pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=None,
                                      macro_block_size=1,
                                      output_params=["-crf", str(crf), "-g", "2"])
    gen.send(None)
    return gen


def _read_video(path: Path) -> np.ndarray:
    """All frames of ``path`` as ``(N, H, W, 3)`` uint8 RGB."""
    import imageio_ffmpeg

    if not path.is_file():
        raise LeRobotFormatError(f"missing video {path}")
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    except (RuntimeError, OSError, StopIteration) as e:
        raise LeRobotFormatError(f"{path}: cannot decode video: {e}") from e
    return np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)


# ---------------------------------------------------------------------------------- import
STATE_LAYOUT_PRESETS = {
    "libero": "ee_pos:3,ee_axis_angle:3,gripper_qpos:2",
}
"""Named layouts of a foreign ``observation.state``: ``libero`` is the 8-value state of the
LIBERO LeRobot ports (end-effector position, axis-angle orientation, two finger positions)."""
_LAYOUT_FIELDS = {"ee_pos": 3, "ee_quat": 4, "ee_quat_xyzw": 4, "ee_axis_angle": 3,
                  "gripper_width": 1, "gripper_qpos": 2, "joint_pos": None, "joint_vel": None,
                  "skip": None}


def parse_state_layout(spec: str) -> list[tuple[str, int]]:
    """Parse ``"field:size,field:size,..."`` (or a preset name of :data:`STATE_LAYOUT_PRESETS`).

    Fields: ``ee_pos`` (3, m), ``ee_quat`` (4, w x y z), ``ee_quat_xyzw`` (4), ``ee_axis_angle``
    (3, rad), ``gripper_width`` (1, m), ``gripper_qpos`` (2 finger positions; width
    ``|q0 - q1|``), ``joint_pos`` / ``joint_vel`` (any size), ``skip`` (any size, ignored).

    Raises:
        ValueError: an unknown field, a bad size, or no end-effector position / orientation.
    """
    spec = STATE_LAYOUT_PRESETS.get(spec, spec)
    out = []
    for part in spec.split(","):
        name, _, size = part.strip().partition(":")
        if name not in _LAYOUT_FIELDS:
            raise ValueError(f"state layout {spec!r}: unknown field {name!r}; fields: "
                             f"{sorted(_LAYOUT_FIELDS)}")
        try:
            n = int(size)
        except ValueError:
            raise ValueError(f"state layout {spec!r}: {part!r} needs a size, 'field:N'") from None
        fixed = _LAYOUT_FIELDS[name]
        if n < 1 or (fixed is not None and n != fixed):
            raise ValueError(f"state layout {spec!r}: {name} has size {fixed}, got {n}")
        out.append((name, n))
    names = {n for n, _ in out}
    if "ee_pos" not in names or not names & {"ee_quat", "ee_quat_xyzw", "ee_axis_angle"}:
        raise ValueError(f"state layout {spec!r} needs ee_pos and an orientation")
    return out


def _layout_from_names(names: Any) -> list[tuple[str, int]] | None:
    """Our exporter's ``observation.state`` names -> a layout, or None for foreign names."""
    if not isinstance(names, list) or names[:8] != ["ee_pos.x", "ee_pos.y", "ee_pos.z",
                                                    "ee_quat.w", "ee_quat.x", "ee_quat.y",
                                                    "ee_quat.z", "gripper_width"]:
        return None
    nj = sum(1 for n in names if str(n).startswith("joint_pos."))
    nv = sum(1 for n in names if str(n).startswith("joint_vel."))
    out = [("ee_pos", 3), ("ee_quat", 4), ("gripper_width", 1)]
    if nj:
        out.append(("joint_pos", nj))
    if nv:
        out.append(("joint_vel", nv))
    return out


def _split_state(state: np.ndarray, layout: list[tuple[str, int]], where: str
                 ) -> dict[str, np.ndarray]:
    total = sum(n for _, n in layout)
    if state.shape[1] != total:
        raise LeRobotFormatError(f"{where}: observation.state has {state.shape[1]} values, the "
                                 f"layout {layout} {total}")
    obs: dict[str, np.ndarray] = {}
    o = 0
    for name, n in layout:
        v = state[:, o:o + n].astype(np.float64)
        o += n
        if name == "ee_pos":
            obs["ee_pos"] = v
        elif name == "ee_quat":
            obs["ee_quat"] = v
        elif name == "ee_quat_xyzw":
            obs["ee_quat"] = _xyzw_to_wxyz(v)
        elif name == "ee_axis_angle":
            obs["ee_quat"] = _axis_angle_to_wxyz(v)
        elif name == "gripper_width":
            obs["gripper_width"] = v
        elif name == "gripper_qpos":
            obs["gripper_width"] = np.abs(v[:, :1] - v[:, 1:2])
        elif name in ("joint_pos", "joint_vel"):
            obs[name] = v
    T = state.shape[0]
    obs.setdefault("gripper_width", np.zeros((T, 1)))
    obs.setdefault("joint_pos", np.zeros((T, 7)))
    obs.setdefault("joint_vel", np.zeros_like(obs["joint_pos"]))
    return obs


def _column(table: Any, name: str, rows: slice, where: str) -> np.ndarray:
    if name not in table.column_names:
        raise LeRobotFormatError(f"{where}: no column {name!r}; columns: {table.column_names}")
    col = table.column(name).slice(rows.start, rows.stop - rows.start).combine_chunks()
    import pyarrow as pa

    if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type) or \
            pa.types.is_large_list(col.type):
        n = len(col)
        flat = col.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(n, -1) if n else flat.reshape(0, 0)
    return col.to_numpy(zero_copy_only=False)


def import_lerobot(root: str | os.PathLike, hdf5_path: str | os.PathLike, *,
                   state_layout: str | None = None, action_space: str | None = None,
                   overwrite: bool = False) -> dict[str, Any]:
    """Read a LeRobotDataset v3 directory into one HDF5 demo file (one demo per episode).

    Args:
        root: the dataset root (``meta/info.json`` inside).
        hdf5_path: the HDF5 file to write (atomically).
        state_layout: how to split a foreign ``observation.state`` (:func:`parse_state_layout`);
            not needed for this project's exports (exact columns) or ``observation.state`` names
            as this project writes them.
        action_space: ``"metric"`` (m / rad per step, this project's) or ``"normalized"``
            (``[-1, 1]`` controller deltas, e.g. LIBERO), stored as the file's ``action_space``
            attribute, which decides the bounds training validates actions against. Default:
            the exported file's for this project's exports, ``"normalized"`` otherwise.
        overwrite: replace an existing ``hdf5_path``.

    Returns:
        Summary: ``demos``, ``frames``, ``exact`` (whether ``meta/robot_skills.json`` was used),
        ``path``.

    Raises:
        LeRobotFormatError: not a v3 dataset, missing files or columns, actions not 7-dim,
            inconsistent episode indices, a state that does not match the layout (the message
            names the file and the episode).
        FileExistsError: ``hdf5_path`` exists and not ``overwrite``.
    """
    _, pq = _pa()
    root = Path(root)
    out = Path(hdf5_path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise LeRobotFormatError(f"{root}: no meta/info.json (not a LeRobot dataset)")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as e:
        raise LeRobotFormatError(f"{info_path}: not JSON: {e}") from e
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise LeRobotFormatError(f"{info_path}: codebase_version {version!r}; only v3.x datasets "
                                 "are read (convert v2.1 with LeRobot's convert_dataset_v21_to_v30)")
    features = info.get("features") or {}
    fps = info.get("fps")
    if not isinstance(fps, (int, float)) or fps <= 0:
        raise LeRobotFormatError(f"{info_path}: fps {fps!r} is not a positive number")
    data_files = sorted((root / "data").glob("*/*.parquet"))
    ep_files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not data_files or not ep_files:
        raise LeRobotFormatError(f"{root}: no data/*/*.parquet or meta/episodes/*/*.parquet")
    import pyarrow as pa

    data = pa.concat_tables([pq.read_table(f) for f in data_files], promote_options="default")
    data = data.sort_by("index") if "index" in data.column_names else data
    episodes = pa.concat_tables([pq.read_table(f) for f in ep_files],
                                promote_options="default").to_pylist()
    episodes.sort(key=lambda e: e["episode_index"])
    tasks = _read_tasks(root / "meta" / "tasks.parquet")
    sidecar = None
    if (root / SIDECAR).is_file():
        sidecar = json.loads((root / SIDECAR).read_text())
        if sidecar.get("format") != SIDECAR_FORMAT:
            raise LeRobotFormatError(f"{root / SIDECAR}: format {sidecar.get('format')!r}, "
                                     f"expected {SIDECAR_FORMAT!r}")
    ep_col = _column(data, "episode_index", slice(0, data.num_rows), str(root))
    layout = None
    if sidecar is None:
        names = (features.get("observation.state") or {}).get("names")
        layout = (parse_state_layout(state_layout) if state_layout
                  else _layout_from_names(names))
        if layout is None:
            raise LeRobotFormatError(
                f"{info_path}: observation.state names {names!r} are not this project's; pass "
                f"a state layout (e.g. 'libero' = {STATE_LAYOUT_PRESETS['libero']})")
    videos = {k[len("observation.images."):]: k for k, f in features.items()
              if k.startswith("observation.images.") and f.get("dtype") == "video"}
    images = {k[len("observation.images."):]: k for k, f in features.items()
              if k.startswith("observation.images.") and f.get("dtype") == "image"}
    decoded: dict[tuple[str, int, int], np.ndarray] = {}
    side_eps = {e["episode_index"]: e for e in (sidecar or {}).get("episodes", [])}
    file_meta = (sidecar or {}).get("files") or [{}]
    space = action_space
    if space is None:
        space = (file_meta[0].get("attrs") or {}).get("action_space", "metric") if sidecar \
            else "normalized"
    if space not in ("metric", "normalized"):
        raise ValueError(f"action_space must be 'metric' or 'normalized', got {space!r}")
    attrs = {k: v for k, v in (file_meta[0].get("attrs") or {}).items()
             if k not in ("format", "total", "robot_skills_version", "env_args")}
    attrs.update({"action_space": space, "imported_from": "lerobot " + version})
    frames = 0
    with DemoWriter(out, env_args=file_meta[0].get("env_args") or {"lerobot_fps": fps},
                    attrs=attrs) as w:
        for ep in episodes:
            ei = int(ep["episode_index"])
            where = f"{root}: episode {ei}"
            lo, hi = int(ep["dataset_from_index"]), int(ep["dataset_to_index"])
            if not 0 <= lo < hi <= data.num_rows or not np.all(ep_col[lo:hi] == ei):
                raise LeRobotFormatError(f"{where}: rows [{lo}, {hi}) are not this episode's "
                                         "frames")
            rows = slice(lo, hi)
            T = hi - lo
            actions = _column(data, "action", rows, where).astype(np.float32)
            if actions.shape != (T, ACTION_DIM):
                raise LeRobotFormatError(f"{where}: action has shape {actions.shape}, this project "
                                         f"needs (T, {ACTION_DIM})")
            rewards = (_column(data, "next.reward", rows, where).astype(np.float32).reshape(T)
                       if "next.reward" in data.column_names else None)
            dones = (_column(data, "next.done", rows, where).astype(np.uint8).reshape(T)
                     if "next.done" in data.column_names else None)
            cams: dict[str, np.ndarray] = {}
            for cam, key in videos.items():
                cams[cam] = _episode_video(root, info, ep, key, T, fps, decoded, where)
            for cam, key in images.items():
                cams[cam] = _decode_images(_column_raw(data, key, rows), where)
            side = side_eps.get(ei)
            if side is not None:
                obs, poses, states, demo_attrs, segs = _exact_episode(data, rows, side, where)
            else:
                state = _column(data, "observation.state", rows, where)
                obs = _split_state(state, layout, where)
                poses, states, segs = {}, None, []
                task = ep.get("tasks") or [tasks.get(int(_column(data, "task_index", rows,
                                                                 where)[0]), "")]
                demo_attrs = {"language": str(task[0]), "task": str(task[0]),
                              "lerobot_episode_index": ei}
            name = w.add_demo_arrays(obs, poses, actions, rewards, dones, states, segs, demo_attrs)
            cam_attrs = (side or {}).get("cameras") or {}
            for cam, frames_ in cams.items():  # compressed as images.py stores cameras
                a = cam_attrs.get(cam, {})
                write_frames(w.obs_group(name), cam, frames_, a.get("codec", DEFAULT_CODEC),
                             a.get("camera", cam))
            frames += T
    return {"demos": len(episodes), "frames": frames, "exact": sidecar is not None,
            "path": str(out)}


def _column_raw(table: Any, name: str, rows: slice) -> list[Any]:
    return table.column(name).slice(rows.start, rows.stop - rows.start).to_pylist()


def _decode_images(cells: list[Any], where: str) -> np.ndarray:
    import cv2

    out = []
    for i, c in enumerate(cells):
        raw = c.get("bytes") if isinstance(c, dict) else c
        if not raw:
            raise LeRobotFormatError(f"{where}: image frame {i} has no embedded bytes")
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise LeRobotFormatError(f"{where}: image frame {i} cannot be decoded")
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return np.stack(out)


def _episode_video(root: Path, info: Mapping[str, Any], ep: Mapping[str, Any], key: str, T: int,
                   fps: float, decoded: dict, where: str) -> np.ndarray:
    ci, fi = ep.get(f"videos/{key}/chunk_index"), ep.get(f"videos/{key}/file_index")
    t0 = ep.get(f"videos/{key}/from_timestamp")
    if ci is None or fi is None or t0 is None:
        raise LeRobotFormatError(f"{where}: episodes metadata lacks videos/{key}/...")
    tpl = info.get("video_path") or VIDEO_PATH
    k = (key, int(ci), int(fi))
    if k not in decoded:
        decoded.clear()  # one video file in memory at a time
        decoded[k] = _read_video(root / tpl.format(video_key=key, chunk_index=int(ci),
                                                   file_index=int(fi)))
    frames = decoded[k]
    first = int(round(float(t0) * fps))
    if first + T > len(frames):
        raise LeRobotFormatError(f"{where}: video {key} has {len(frames)} frames, the episode "
                                 f"needs [{first}, {first + T})")
    return frames[first:first + T].copy()


def _exact_episode(data: Any, rows: slice, side: Mapping[str, Any], where: str):
    widths = side.get("widths", {})
    T = rows.stop - rows.start
    obs: dict[str, np.ndarray] = {}
    for k, w in widths.items():
        col = _column(data, _EXACT + k, rows, where).reshape(T, -1)[:, :w]
        if k.startswith("obs."):
            obs[k[4:]] = col
        elif k.startswith("extra."):
            name = k[6:]
            shape = side["extra_shapes"][name]
            obs[name] = col.astype(side["extra_dtypes"][name]).reshape(-1, *shape)
    states = (_column(data, _EXACT + "states", rows, where).reshape(T, -1)[:, :widths["states"]]
              if side.get("has_states") else None)
    poses = {e: _column(data, f"{_EXACT}pose.{e}", rows, where).reshape(T, -1)
             for e in side.get("entities", [])}
    segs = [SkillSegment.from_dict(s) for s in side.get("segments", [])]
    return obs, poses, states, dict(side.get("attrs") or {}), segs


def _read_tasks(path: Path) -> dict[int, str]:
    if not path.is_file():
        return {}
    _, pq = _pa()
    t = pq.read_table(path).to_pydict()
    if "task" in t and "task_index" in t:
        return {int(i): str(s) for i, s in zip(t["task_index"], t["task"], strict=True)}
    return {}


# ---------------------------------------------------------------------------------- CLI
def export_lerobot_main(argv: Sequence[str] | None = None) -> int:
    """``rs-export-lerobot DEMOS.hdf5 [...] OUT_DIR [--fps 20] [--overwrite]``."""
    p = argparse.ArgumentParser(prog="rs-export-lerobot", description=(
        "Write HDF5 demonstrations as a LeRobotDataset v3 directory (docs/lerobot.md)."))
    p.add_argument("hdf5", nargs="+", type=Path, help="demonstration files")
    p.add_argument("out", type=Path, help="dataset root to create")
    p.add_argument("--fps", type=int, default=DEFAULT_FPS)
    p.add_argument("--robot-type", default="panda")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality of camera videos")
    p.add_argument("--task-onehot", action="store_true", help=(
        "append a one-hot of the task to observation.environment_state (goal input for "
        "policies without language, e.g. ACT)"))
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    try:
        s = export_lerobot(a.hdf5, a.out, fps=a.fps, robot_type=a.robot_type,
                           overwrite=a.overwrite, crf=a.crf, task_onehot=a.task_onehot)
    except (OSError, ValueError) as e:
        print(f"rs-export-lerobot: {e}", file=sys.stderr)
        return 1
    print(f"wrote {s['episodes']} episodes, {s['frames']} frames, {len(s['tasks'])} task(s), "
          f"cameras {s['cameras']} -> {s['path']}")
    return 0


def import_lerobot_main(argv: Sequence[str] | None = None) -> int:
    """``rs-import-lerobot ROOT OUT.hdf5 [--state-layout libero] [--action-space ...]``."""
    p = argparse.ArgumentParser(prog="rs-import-lerobot", description=(
        "Read a LeRobotDataset v3 directory into an HDF5 demonstration file (docs/lerobot.md)."))
    p.add_argument("root", type=Path, help="LeRobot dataset root (meta/info.json inside)")
    p.add_argument("out", type=Path, help="HDF5 file to write")
    p.add_argument("--state-layout", default=None, help="foreign observation.state layout, "
                   f"'field:N,...' or a preset {sorted(STATE_LAYOUT_PRESETS)}")
    p.add_argument("--action-space", choices=["metric", "normalized"], default=None)
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    try:
        s = import_lerobot(a.root, a.out, state_layout=a.state_layout,
                           action_space=a.action_space, overwrite=a.overwrite)
    except (OSError, ValueError) as e:
        print(f"rs-import-lerobot: {e}", file=sys.stderr)
        return 1
    print(f"wrote {s['demos']} demos, {s['frames']} frames -> {s['path']}"
          f"{'' if s['exact'] else ' (foreign dataset: no skill segments)'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(export_lerobot_main())
