"""Entity sizes (the skills' shape descriptor) added to demonstration files recorded before
observations carried them: ``python -m sim.object_sizes``, on LIBERO's own task files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from libero_paths import LIBERO_BDDL

from robot_skills.data.dataset import SkillChunkDataset
from robot_skills.data.hdf5 import DemoReader, DemoWriter
from robot_skills.policies.features import size_slice

TASK = LIBERO_BDDL / "libero_goal" / "put_the_bowl_on_the_plate.bddl"


def _old_style_file(path, bddl=TASK, n=2):
    """A file as an older collector wrote it: the scene's real entity poses, no sizes."""
    from sim.sim_robot import SimRobot

    robot = SimRobot(bddl)
    with DemoWriter(path) as w:
        for seed in range(n):
            obs = robot.reset(seed=seed)
            obs.object_sizes = {}
            w.add_demo([obs] * 4, np.zeros((4, 7), np.float32),
                       skill_segments=[{"start": 0, "end": 4, "skill": "place_on",
                                        "args": ["akita_black_bowl_1", "plate_1"]}],
                       attrs={"bddl": str(bddl), "seed": seed})
    return robot


def test_backfill_gives_each_demo_its_scenes_sizes(tmp_path):
    from sim.object_sizes import backfill_object_sizes

    path = tmp_path / "old.hdf5"
    robot = _old_style_file(path)
    before = SkillChunkDataset.from_hdf5(path, chunk_size=2)
    assert not before.features[:, size_slice(0)].any()  # no sizes: zeros

    report = backfill_object_sizes(path)
    assert report == {"demos": 2, "written": 2, "kept": 0, "tasks": 1}
    with DemoReader(path) as r:
        demo = r.load("demo_1")
    assert set(demo.object_sizes) == set(demo.object_poses)
    for name, size in demo.object_sizes.items():
        np.testing.assert_allclose(size, robot.object_sizes[name])
    after = SkillChunkDataset.from_hdf5(path, chunk_size=2)
    np.testing.assert_allclose(after.features[:, size_slice(0)],
                               np.tile(robot.object_sizes["akita_black_bowl_1"], (8, 1)),
                               rtol=1e-6)
    np.testing.assert_allclose(after.features[:, size_slice(1)],
                               np.tile(robot.object_sizes["plate_1"], (8, 1)), rtol=1e-6)
    # only the size columns changed
    keep = np.ones(after.features.shape[1], bool)
    keep[size_slice(0)] = keep[size_slice(1)] = False
    np.testing.assert_array_equal(after.features[:, keep], before.features[:, keep])
    assert backfill_object_sizes(path)["kept"] == 2  # a second run changes nothing


def test_backfill_refuses_a_demo_it_cannot_rebuild_and_leaves_the_file_untouched(tmp_path):
    from sim.object_sizes import backfill_object_sizes

    path = tmp_path / "old.hdf5"
    _old_style_file(path)
    with h5py.File(path, "r+") as f:
        f["data/demo_1"].attrs["bddl"] = str(tmp_path / "gone.bddl")
    data = path.read_bytes()
    with pytest.raises(FileNotFoundError, match="gone.bddl"):
        backfill_object_sizes(path)
    assert path.read_bytes() == data
    with h5py.File(path, "r+") as f:
        del f["data/demo_1"].attrs["bddl"]
    data = path.read_bytes()
    with pytest.raises(ValueError, match="demo_1.*no 'bddl'"):
        backfill_object_sizes(path)
    assert path.read_bytes() == data
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_command_line_reports_and_fails_loudly(tmp_path):
    path = tmp_path / "old.hdf5"
    _old_style_file(path, n=1)
    env = {**os.environ, "MUJOCO_GL": "egl"}
    ok = subprocess.run([sys.executable, "-m", "sim.object_sizes", str(path)], env=env,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "1 of 1 demos given sizes" in ok.stdout
    with h5py.File(path, "r") as f:
        assert "plate_1" in json.loads(f["data/demo_0"].attrs["object_sizes"])
    bad = subprocess.run([sys.executable, "-m", "sim.object_sizes", str(tmp_path / "none.hdf5")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "none.hdf5" in bad.stderr
