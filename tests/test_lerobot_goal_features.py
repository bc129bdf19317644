"""The LeRobot export's optional task one-hot (``task_onehot`` / ``--task-onehot``: the goal as an
input of policies that read no language, e.g. LeRobot's ACT) and :func:`policy_observation`, which
must give a live observation exactly the features the export wrote for the same state."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from robot_skills.data.dataset import write_synthetic_demos
from robot_skills.data.hdf5 import DemoReader
from robot_skills.data.lerobot import (
    LeRobotFormatError,
    export_lerobot,
    export_lerobot_main,
    import_lerobot,
    policy_observation,
)

ENV = "observation.environment_state"


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("goal_features")
    src = write_synthetic_demos(d / "demos.hdf5", num_demos=5, steps_per_skill=6)
    export_lerobot(src, d / "plain")
    assert export_lerobot_main([str(src), str(d / "onehot"), "--task-onehot"]) == 0
    return src, d / "plain", d / "onehot"


def _table(root: Path) -> dict[str, np.ndarray]:
    t = pq.read_table(root / "data/chunk-000/file-000.parquet").to_pydict()
    return {k: np.asarray(v) for k, v in t.items()}


def _tasks(root: Path) -> list[str]:
    t = pq.read_table(root / "meta/tasks.parquet").to_pydict()
    return [t["task"][i] for i in np.argsort(t["task_index"])]


def test_onehot_appended_to_environment_state(exports):
    _, plain, onehot = exports
    tasks = _tasks(onehot)
    assert len(tasks) >= 2  # the synthetic demos have several instructions
    info_p = json.loads((plain / "meta/info.json").read_text())["features"][ENV]
    info_o = json.loads((onehot / "meta/info.json").read_text())["features"][ENV]
    n = info_p["shape"][0]
    assert info_o["shape"] == [n + len(tasks)]
    assert info_o["names"] == info_p["names"] + [f"task.{i}" for i in range(len(tasks))]
    tp, to = _table(plain), _table(onehot)
    np.testing.assert_array_equal(to[ENV][:, :n], tp[ENV])
    hot = to[ENV][:, n:]
    np.testing.assert_array_equal(hot.argmax(1), to["task_index"])
    np.testing.assert_array_equal(hot.sum(1), np.ones(len(hot)))
    stats = json.loads((onehot / "meta/stats.json").read_text())[ENV]
    assert len(stats["mean"]) == n + len(tasks)
    assert json.loads((onehot / "meta/robot_skills.json").read_text())["task_onehot"] is True


def test_onehot_export_still_round_trips(exports, tmp_path):
    src, _, onehot = exports
    back = tmp_path / "back.hdf5"
    import_lerobot(onehot, back)
    with DemoReader(src) as a, DemoReader(back) as b:
        assert a.demos == b.demos
        for name in a.demos:
            x, y = a.load(name), b.load(name)
            np.testing.assert_array_equal(x.actions, y.actions)
            for e in x.object_poses:
                np.testing.assert_array_equal(x.object_poses[e], y.object_poses[e])


@pytest.mark.parametrize("which", ["plain", "onehot"])
def test_policy_observation_reproduces_exported_rows(exports, which):
    src, plain, onehot = exports
    root = plain if which == "plain" else onehot
    table = _table(root)
    tasks = _tasks(root)
    row = 0
    with DemoReader(src) as r:
        for name in r.demos:
            d = r.load(name)
            for t in (0, len(d) - 1):
                obs = {k: v[t] for k, v in d.obs.items()}
                poses = {e: p[t] for e, p in d.object_poses.items()}
                poses["not_in_dataset"] = np.ones(7)  # ignored, as documented
                f = policy_observation(root, obs, poses, task=str(d.attrs["language"]))
                i = row + t
                assert f["observation.state"].dtype == np.float32
                np.testing.assert_array_equal(f["observation.state"],
                                              table["observation.state"][i])
                np.testing.assert_array_equal(f[ENV], table[ENV][i])
                if which == "onehot":
                    assert f[ENV][-len(tasks):].argmax() == tasks.index(d.attrs["language"])
            row += len(d)


def test_policy_observation_errors(exports, tmp_path):
    src, plain, onehot = exports
    with DemoReader(src) as r:
        d = r.load(r.demos[0])
    obs = {k: v[0] for k, v in d.obs.items()}
    poses = {e: p[0] for e, p in d.object_poses.items()}
    with pytest.raises(LeRobotFormatError, match="not one of the dataset's tasks"):
        policy_observation(onehot, obs, poses, task="fly to the moon")
    with pytest.raises(LeRobotFormatError, match="None"):
        policy_observation(onehot, obs, poses)
    with pytest.raises(KeyError, match="joint_vel"):
        policy_observation(plain, {k: v for k, v in obs.items() if k != "joint_vel"}, poses)
    with pytest.raises(FileNotFoundError, match="robot_skills.json"):
        policy_observation(tmp_path, obs, poses)


def _eval_script():
    """``scripts/lerobot_act_eval.py`` as a module (its lerobot imports are inside ``main``)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "lerobot_act_eval.py"
    spec = importlib.util.spec_from_file_location("lerobot_act_eval", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_eval_script_maps_task_files_to_the_exported_task_strings(tmp_path):
    ev = _eval_script()
    src = write_synthetic_demos(tmp_path / "demos.hdf5", num_demos=4, steps_per_skill=4)
    # two task files, each with one instruction (as LIBERO's): rewrite the synthetic attributes
    with h5py.File(src, "r+") as f:
        for i, n in enumerate(sorted(f["data"])):
            f["data"][n].attrs["task"] = f"task_{i % 2}"
            f["data"][n].attrs["language"] = f"do thing {i % 2}"
    export_lerobot(src, tmp_path / "ds", task_onehot=True)
    assert ev.task_strings(tmp_path / "ds") == {"task_0": "do thing 0", "task_1": "do thing 1"}
    assert ev.action_is_metric(tmp_path / "ds") is True
    # one task file with two instructions: the goal input would be ambiguous -> loud
    mixed = write_synthetic_demos(tmp_path / "mixed.hdf5", num_demos=4, steps_per_skill=4)
    export_lerobot(mixed, tmp_path / "mixed_ds", task_onehot=True)
    with pytest.raises(ValueError, match="synthetic_task"):
        ev.task_strings(tmp_path / "mixed_ds")
    with pytest.raises(FileNotFoundError, match="robot_skills.json"):
        ev.task_strings(tmp_path)
