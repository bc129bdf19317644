"""Bad demonstration files stop the data pipeline before training, naming the file and the demo:
missing keys, mismatched lengths, NaN/inf, absurd magnitudes, malformed segments — through the
in-memory builder, the lazy builder's streaming pass and ``validate_demos`` alike."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from robot_skills.data.dataset import (
    DemoValidationError,
    SkillChunkDataset,
    ValueBounds,
    validate_demos,
    write_synthetic_demos,
)
from robot_skills.data.lazy import LazySkillChunkDataset
from robot_skills.robot import ActionLimits

BUILDERS: dict[str, Callable[..., object]] = {
    "in_memory": lambda p, **kw: SkillChunkDataset.from_hdf5(p, chunk_size=3, **kw),
    "lazy": lambda p, **kw: LazySkillChunkDataset.from_hdf5(p, chunk_size=3, **kw),
    "whole_task": lambda p, **kw: SkillChunkDataset.whole_task(p, "t", ["cube_1"], 3, **kw),
    "lazy_whole_task": lambda p, **kw: LazySkillChunkDataset.whole_task(p, "t", ["cube_1"], 3,
                                                                        **kw),
    "validate_demos": lambda p, **kw: validate_demos(
        p, limits=kw.get("action_limits"), bounds=kw.get("value_bounds")),
}


def _demos(tmp_path: Path) -> Path:
    return write_synthetic_demos(tmp_path / "demos.hdf5", num_demos=3, steps_per_skill=6)


def _set(path: Path, dataset: str, index, value) -> None:
    with h5py.File(path, "r+") as f:
        a = f[dataset][()]
        a[index] = value
        f[dataset][...] = a


def _delete(path: Path, dataset: str) -> None:
    with h5py.File(path, "r+") as f:
        del f[dataset]


def _truncate(path: Path, dataset: str, rows: int) -> None:
    with h5py.File(path, "r+") as f:
        a = f[dataset][()]
        del f[dataset]
        f[dataset] = a[:rows]


def _refused(path: Path, builder: str, match: str, **kw) -> None:
    with pytest.raises(DemoValidationError, match=re.escape(f"{path}:demo_1") + ".*" + match):
        BUILDERS[builder](path, **kw)


@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize(("edit", "match"), [
    (lambda p: _delete(p, "data/demo_1/actions"), "no actions dataset"),
    (lambda p: _delete(p, "data/demo_1/obs"), "no obs group"),
    (lambda p: _delete(p, "data/demo_1/obs/ee_pos"), "lacks an end-effector position"),
    (lambda p: _delete(p, "data/demo_1/obs/ee_quat"), "lacks an end-effector orientation"),
], ids=["actions", "obs", "ee_pos", "ee_quat"])
def test_missing_keys_are_named(tmp_path, builder, edit, match):
    path = _demos(tmp_path)
    edit(path)
    _refused(path, builder, match)


@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize(("dataset", "match"), [
    ("data/demo_1/obs/ee_pos", r"ee_pos has 7 rows, actions 12"),
    ("data/demo_1/obs/object_poses/cube_1", r"object_poses/cube_1 must have shape \(12, 7\)"),
    ("data/demo_1/states", r"states has shape \(7, 0\), expected 12 rows"),
], ids=["ee_pos", "object_pose", "states"])
def test_mismatched_lengths_are_named(tmp_path, builder, dataset, match):
    path = _demos(tmp_path)
    if dataset.endswith("states"):
        with h5py.File(path, "r+") as f:
            f[dataset] = np.zeros((7, 0))
    else:
        _truncate(path, dataset, 7)
    _refused(path, builder, match)


@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize(("dataset", "index", "value", "match"), [
    ("data/demo_1/obs/joint_pos", (4, 2), np.nan, r"obs/joint_pos\[4, 2\] = nan is not finite"),
    ("data/demo_1/obs/gripper_width", (2, 0), -np.inf, r"gripper_width\[2, 0\] = -inf"),
    ("data/demo_1/rewards", 3, np.nan, r"rewards\[3\] = nan is not finite"),
    ("data/demo_1/obs/ee_pos", (5, 0), 1e30,
     r"obs/ee_pos\[5, 0\] = 1e\+30 m is absurd: .*max_abs_position"),
    ("data/demo_1/obs/object_poses/cube_1", (2, 1), -250.0,
     r"object_poses/cube_1\[2, 1\] = -250 m is absurd"),
    ("data/demo_1/obs/joint_pos", (0, 3), 1e9, r"obs/joint_pos\[0, 3\] = 1e\+09 rad is absurd"),
    ("data/demo_1/obs/joint_vel", (1, 1), -1e7, r"joint_vel\[1, 1\] = -1e\+07 rad/s is absurd"),
    ("data/demo_1/obs/gripper_width", (3, 0), 4.0, r"gripper_width\[3, 0\] = 4 m is absurd"),
    ("data/demo_1/obs/ee_quat", 6, 0.0, r"obs/ee_quat\[6\] has norm 0, not a unit quaternion"),
    ("data/demo_1/obs/object_poses/plate_1", (8, slice(3, 7)), 3.0,
     r"object_poses/plate_1\[8\] has norm 6, not a unit quaternion"),
    ("data/demo_1/rewards", 0, 1e20, r"rewards\[0\] = 1e\+20 is absurd"),
], ids=["nan_joint", "inf_gripper", "nan_reward", "ee_pos_1e30", "pose_250m", "joint_1e9",
        "joint_vel", "gripper_4m", "zero_quat", "big_quat", "reward_1e20"])
def test_non_finite_and_absurd_values_are_named(tmp_path, builder, dataset, index, value, match):
    path = _demos(tmp_path)
    _set(path, dataset, index, value)
    _refused(path, builder, match)


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_action_1e30_refused_even_with_huge_action_limits(tmp_path, builder):
    """An action of 1e30 (which would set action_std to ~2e28) is refused by the physical bound,
    and by the absurdity bound when the caller widened the physical one."""
    path = _demos(tmp_path)
    _set(path, "data/demo_1/actions", (4, 2), 1e30)
    _refused(path, builder, r"actions\[4, 2\] = 1e\+30 m: translation per step exceeds")
    _refused(path, builder, r"actions\[4, 2\] = 1e\+30 is absurd: .*max_abs_action",
             action_limits=ActionLimits(1e40, 1e40))


def test_bounds_are_configurable(tmp_path):
    path = _demos(tmp_path)
    _set(path, "data/demo_1/obs/object_poses/cube_1", (2, 1), -25.0)  # 25 m: beyond the default
    _refused(path, "in_memory", "cube_1")
    relaxed = ValueBounds(max_abs_position=100.0)
    assert len(SkillChunkDataset.from_hdf5(path, chunk_size=3, value_bounds=relaxed)) > 0
    assert len(LazySkillChunkDataset.from_hdf5(path, chunk_size=3, value_bounds=relaxed)) > 0
    assert validate_demos(path, bounds=ValueBounds(max_abs_position=None)) == 3


@pytest.mark.parametrize("builder", ["in_memory", "lazy", "validate_demos"])
def test_malformed_skill_segments_are_named(tmp_path, builder):
    path = _demos(tmp_path)
    with h5py.File(path, "r+") as f:
        f["data/demo_1"].attrs["skill_segments"] = "[{not json"
    _refused(path, builder, "skill_segments is not JSON")
    with h5py.File(path, "r+") as f:
        f["data/demo_1"].attrs["skill_segments"] = json.dumps(
            [{"start": 0, "end": 99, "skill": "pick", "args": ["cube_1"], "success": True}])
    _refused(path, builder, r"spans \[0, 99\), outside a demo of 12 steps")


def test_lazy_dataset_refuses_before_reading_any_item(tmp_path):
    """The lazy builder's streaming pass validates every demo at construction: a bad last demo
    stops it although no item was requested."""
    path = write_synthetic_demos(tmp_path / "demos.hdf5", num_demos=6, steps_per_skill=6)
    _set(path, "data/demo_5/obs/ee_pos", (1, 1), np.nan)
    with pytest.raises(DemoValidationError, match=re.escape(f"{path}:demo_5")):
        LazySkillChunkDataset.from_hdf5(path, chunk_size=3)
    lazy = LazySkillChunkDataset.from_hdf5(path, chunk_size=3, validate=False)
    with pytest.raises(DemoValidationError, match="demo_5"):
        lazy.compute_stats()
