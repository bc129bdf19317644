"""LeRobotDataset v3 in and out: the exported layout (info.json, stats.json, tasks.parquet,
episodes metadata, per-frame parquet, mp4 per camera), an exact HDF5 -> LeRobot -> HDF5 round
trip (arrays, attributes, skill segments; images within H.264 error) on synthetic and real sim
demos, foreign datasets through a state layout, and errors that name the file and episode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.data.dataset import SkillChunkDataset, write_synthetic_demos
from robot_skills.data.hdf5 import DemoReader
from robot_skills.data.lerobot import (
    LeRobotFormatError,
    _read_video,
    export_lerobot,
    export_lerobot_main,
    import_lerobot,
    import_lerobot_main,
    parse_state_layout,
)

CAM = "agentview_image"


def _with_images(path: Path, h: int = 32, w: int = 48) -> Path:
    """Add a ``(T, h, w, 3)`` uint8 camera (smooth gradients that move with t) to every demo."""
    with h5py.File(path, "r+") as f:
        for n in f["data"]:
            T = f["data"][n]["actions"].shape[0]
            yy, xx = np.mgrid[0:h, 0:w]
            img = np.stack([np.stack([(xx * 5 + 3 * t) % 256, (yy * 7) % 256,
                                      np.full_like(xx, 8 * t % 256)], -1) for t in range(T)])
            f["data"][n]["obs"].create_dataset(CAM, data=img.astype(np.uint8))
    return path


def _assert_same_demos(a_path: Path, b_path: Path, image_tol: float | None = None) -> None:
    with DemoReader(a_path) as a, DemoReader(b_path) as b:
        assert a.demos == b.demos
        for n in a.demos:
            x, y = a.load(n), b.load(n)
            np.testing.assert_array_equal(x.actions, y.actions)
            np.testing.assert_array_equal(x.rewards, y.rewards)
            np.testing.assert_array_equal(x.dones, y.dones)
            assert x.obs.keys() == y.obs.keys()
            for k in x.obs:
                assert x.obs[k].dtype == y.obs[k].dtype
                np.testing.assert_array_equal(x.obs[k], y.obs[k])
            assert x.object_poses.keys() == y.object_poses.keys()
            for k in x.object_poses:
                np.testing.assert_array_equal(x.object_poses[k], y.object_poses[k])
            if x.states is None:
                assert y.states is None
            else:
                np.testing.assert_array_equal(x.states, y.states)
            assert x.segments == y.segments and x.attrs == y.attrs
            if image_tol is not None:
                ia = a._group(n)[f"obs/{CAM}"][()].astype(np.int16)
                ib = b._group(n)[f"obs/{CAM}"][()].astype(np.int16)
                assert ia.shape == ib.shape
                assert np.abs(ia - ib).mean() < image_tol


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("lerobot")
    src = _with_images(write_synthetic_demos(d / "demos.hdf5", num_demos=3, steps_per_skill=9))
    export_lerobot(src, d / "ds")
    return src, d / "ds"


def test_export_writes_the_v3_layout(exported):
    src, root = exported
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20
    assert info["total_episodes"] == 3 and info["total_frames"] == 54
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == ("videos/{video_key}/chunk-{chunk_index:03d}/"
                                  "file-{file_index:03d}.mp4")
    feats = info["features"]
    for k, dtype, shape in (("observation.state", "float32", [22]), ("action", "float32", [7]),
                            ("timestamp", "float32", [1]), ("frame_index", "int64", [1]),
                            ("episode_index", "int64", [1]), ("index", "int64", [1]),
                            ("task_index", "int64", [1]),
                            ("observation.environment_state", "float32", [21]),
                            (f"observation.images.{CAM}", "video", [32, 48, 3])):
        assert feats[k]["dtype"] == dtype and feats[k]["shape"] == shape, k
    assert feats["action"]["names"][-1] == "gripper"
    # project-only columns can never be mistaken for policy inputs
    assert all(k.startswith(("observation.", "action", "robot_skills.", "next.", "timestamp",
                             "frame_index", "episode_index", "index", "task_index"))
               for k in feats)
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert set(data.column_names) == {k for k, f in feats.items() if f["dtype"] != "video"}
    assert data.num_rows == 54
    np.testing.assert_array_equal(data.column("index").to_numpy(), np.arange(54))
    ts = data.column("timestamp").to_numpy()[:18]
    np.testing.assert_allclose(ts, np.arange(18) / 20, rtol=1e-6)
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in eps] == [0, 1, 2]
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in eps] == [
        (0, 18), (18, 36), (36, 54)]
    key = f"videos/observation.images.{CAM}"
    assert [e[f"{key}/from_timestamp"] for e in eps] == [0.0, 18 / 20, 36 / 20]
    assert eps[0]["stats/action/count"] == [18] and len(eps[0]["stats/action/mean"]) == 7
    tasks = pq.read_table(root / "meta/tasks.parquet")
    meta = json.loads(tasks.schema.metadata[b"pandas"])
    assert meta["index_columns"] == ["task"]  # pandas reads the task strings as the index
    with DemoReader(src) as r:
        langs = [r.demo_attrs(n)["language"] for n in r.demos]
    assert set(tasks.column("task").to_pylist()) == set(langs)
    assert [eps[i]["tasks"] for i in range(3)] == [[x] for x in langs]
    stats = json.loads((root / "meta/stats.json").read_text())
    a = data.column("action").combine_chunks().flatten().to_numpy().reshape(-1, 7)
    np.testing.assert_allclose(stats["action"]["mean"], a.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats["action"]["max"], a.max(0), rtol=1e-6)
    assert stats["action"]["count"] == [54] and "q99" in stats["action"]
    assert np.shape(stats[f"observation.images.{CAM}"]["mean"]) == (3, 1, 1)
    frames = _read_video(root / f"videos/observation.images.{CAM}/chunk-000/file-000.mp4")
    assert frames.shape == (54, 32, 48, 3)


def test_round_trip_gives_identical_demos(exported, tmp_path):
    src, root = exported
    back = tmp_path / "back.hdf5"
    summary = import_lerobot(root, back)
    assert summary == {"demos": 3, "frames": 54, "exact": True, "path": str(back)}
    _assert_same_demos(src, back, image_tol=4.0)
    a = SkillChunkDataset.from_hdf5(src, chunk_size=5)
    b = SkillChunkDataset.from_hdf5(back, chunk_size=5)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.actions, b.actions)
    with pytest.raises(FileExistsError):
        import_lerobot(root, back)


def test_round_trip_of_real_sim_demos(tmp_path):
    from robot_skills import cli

    run = tmp_path / "run"
    cfg = cli.load_config([f"run_dir={run}", f"suite.path={LIBERO_BDDL / 'libero_goal'}",
                           "+suite.tasks=[put_the_bowl_on_the_plate]", "workers=1",
                           "collect.mode=task", "collect.demos_per_task=2",
                           "suite.max_episode_steps=400"])
    cli.run_collect(cfg)
    src = run / "demos.hdf5"
    assert export_lerobot_main([str(src), str(tmp_path / "ds")]) == 0
    assert import_lerobot_main([str(tmp_path / "ds"), str(tmp_path / "back.hdf5")]) == 0
    _assert_same_demos(src, tmp_path / "back.hdf5")
    with DemoReader(src) as r:
        assert r.load(r.demos[0]).states is not None  # MuJoCo states travelled too
        assert [s.skill for s in r.segments(r.demos[0])] == ["pick", "place_on"]


def test_foreign_dataset_without_sidecar_reads_state_by_names(exported, tmp_path):
    src, root = exported
    foreign = tmp_path / "foreign"
    shutil.copytree(root, foreign)
    (foreign / "meta/robot_skills.json").unlink()
    back = tmp_path / "foreign.hdf5"
    s = import_lerobot(foreign, back, action_space="metric")
    assert s["exact"] is False
    with DemoReader(src) as a, DemoReader(back) as b:
        assert b.attrs["action_space"] == "metric"
        for n in a.demos:
            x, y = a.load(n), b.load(n)
            np.testing.assert_array_equal(x.actions, y.actions)
            np.testing.assert_allclose(y.obs["ee_pos"], x.obs["ee_pos"], rtol=1e-6)
            assert y.segments == [] and y.attrs["language"] == x.attrs["language"]
            assert b._group(n)[f"obs/{CAM}"].shape == a._group(n)[f"obs/{CAM}"].shape


def _libero_like(root: Path, state: np.ndarray, actions: np.ndarray, version: str = "v3.0"):
    """A minimal foreign LeRobot v3 dataset as a LIBERO port lays it out (8-value state)."""
    T = len(state)
    (root / "data/chunk-000").mkdir(parents=True)
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    info = {"codebase_version": version, "fps": 10, "total_episodes": 1, "total_frames": T,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "features": {"observation.state": {"dtype": "float32", "shape": [8],
                                               "names": ["state"]},
                         "action": {"dtype": "float32", "shape": [actions.shape[1]],
                                    "names": ["actions"]}}}
    (root / "meta/info.json").write_text(json.dumps(info))
    fsl = pa.FixedSizeListArray.from_arrays
    pq.write_table(pa.table({
        "observation.state": fsl(pa.array(state.astype(np.float32).ravel()), 8),
        "action": fsl(pa.array(actions.astype(np.float32).ravel()), actions.shape[1]),
        "episode_index": pa.array(np.zeros(T, np.int64)), "index": pa.array(np.arange(T)),
        "frame_index": pa.array(np.arange(T)), "task_index": pa.array(np.zeros(T, np.int64)),
        "timestamp": pa.array((np.arange(T) / 10).astype(np.float32))}),
        root / "data/chunk-000/file-000.parquet")
    pq.write_table(pa.Table.from_pylist([{"episode_index": 0, "tasks": ["open the drawer"],
                                          "length": T, "dataset_from_index": 0,
                                          "dataset_to_index": T}]),
                   root / "meta/episodes/chunk-000/file-000.parquet")


def test_foreign_libero_layout_import(tmp_path):
    rng = np.random.default_rng(0)
    T = 12
    aa = np.tile([0.0, 0.0, np.pi / 2], (T, 1))  # 90 degrees about z
    state = np.concatenate([rng.uniform(-0.5, 0.5, (T, 3)), aa,
                            np.tile([0.03, -0.03], (T, 1))], 1)
    actions = rng.uniform(-0.9, 0.9, (T, 7))  # normalised OSC deltas, beyond 5 cm if metric
    _libero_like(tmp_path / "ds", state, actions)
    with pytest.raises(LeRobotFormatError, match="libero"):
        import_lerobot(tmp_path / "ds", tmp_path / "x.hdf5")
    out = tmp_path / "libero.hdf5"
    import_lerobot(tmp_path / "ds", out, state_layout="libero")
    with DemoReader(out) as r:
        d = r.load("demo_0")
        assert r.attrs["action_space"] == "normalized"
        np.testing.assert_allclose(d.obs["ee_pos"], state[:, :3], rtol=1e-6)
        np.testing.assert_allclose(d.obs["ee_quat"][0], [np.cos(np.pi / 4), 0, 0,
                                                         np.sin(np.pi / 4)], atol=1e-6)
        np.testing.assert_allclose(d.obs["gripper_width"][:, 0], 0.06, rtol=1e-5)
        assert d.attrs["language"] == "open the drawer"
    # normalised actions are checked against [-1, 1], not against 5 cm per step
    ds = SkillChunkDataset.whole_task(out, "open_drawer", [], chunk_size=4)
    assert len(ds) == T


def test_bad_lerobot_inputs_are_named(tmp_path):
    T = 5
    state = np.zeros((T, 8))
    state[:, 0] = 0.1
    _libero_like(tmp_path / "old", state, np.zeros((T, 7)), version="v2.1")
    with pytest.raises(LeRobotFormatError, match=r"codebase_version 'v2.1'"):
        import_lerobot(tmp_path / "old", tmp_path / "o.hdf5", state_layout="libero")
    _libero_like(tmp_path / "six", state, np.zeros((T, 6)))
    with pytest.raises(LeRobotFormatError, match=r"episode 0: action has shape \(5, 6\)"):
        import_lerobot(tmp_path / "six", tmp_path / "s.hdf5", state_layout="libero")
    _libero_like(tmp_path / "seven", state, np.zeros((T, 7)))
    with pytest.raises(LeRobotFormatError, match="episode 0: observation.state has 8 values"):
        import_lerobot(tmp_path / "seven", tmp_path / "s.hdf5",
                       state_layout="ee_pos:3,ee_quat:4")
    with pytest.raises(ValueError, match="unknown field 'elbow'"):
        parse_state_layout("ee_pos:3,elbow:2")
    with pytest.raises(LeRobotFormatError, match="no meta/info.json"):
        import_lerobot(tmp_path, tmp_path / "n.hdf5")
    assert import_lerobot_main([str(tmp_path / "six"), str(tmp_path / "c.hdf5"),
                                "--state-layout", "libero"]) == 1
    assert not (tmp_path / "s.hdf5").exists() and not (tmp_path / "c.hdf5").exists()


def test_compressed_camera_datasets_round_trip_with_codec_and_camera_name(tmp_path):
    """Cameras stored as images.py stores them (PNG bytes per frame, a ``camera`` attribute)
    are decoded for the mp4 and come back with the same codec and camera name."""
    from robot_skills.data.images import camera_datasets, read_frames, write_frames

    src = write_synthetic_demos(tmp_path / "demos.hdf5", num_demos=2, steps_per_skill=5)
    plain = _with_images(write_synthetic_demos(tmp_path / "plain.hdf5", num_demos=2,
                                               steps_per_skill=5))
    with h5py.File(src, "r+") as f, h5py.File(plain, "r") as p:
        for n in f["data"]:
            write_frames(f["data"][n]["obs"], "panda_wrist_cam_image",
                         p["data"][n]["obs"][CAM][()], codec="png", camera="panda/wrist_cam")
    export_lerobot(src, tmp_path / "ds")
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["features"]["observation.images.panda_wrist_cam_image"]["dtype"] == "video"
    import_lerobot(tmp_path / "ds", tmp_path / "back.hdf5")
    _assert_same_demos(src, tmp_path / "back.hdf5")
    with h5py.File(src, "r") as a, h5py.File(tmp_path / "back.hdf5", "r") as b:
        for n in a["data"]:
            ca, cb = camera_datasets(a["data"][n]["obs"]), camera_datasets(b["data"][n]["obs"])
            assert list(cb) == ["panda/wrist_cam"]
            assert cb["panda/wrist_cam"].attrs["codec"] == "png"
            fa = read_frames(ca["panda/wrist_cam"]).astype(np.int16)
            fb = read_frames(cb["panda/wrist_cam"]).astype(np.int16)
            assert fa.shape == fb.shape and np.abs(fa - fb).mean() < 4.0
