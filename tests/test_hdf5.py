"""Demonstration HDF5 round trip, atomicity, validation, robomimic keys, vectorised features."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_skills.data.dataset import (
    SkillChunkDataset,
    action_chunks,
    features_from_arrays,
    write_synthetic_demos,
)
from robot_skills.data.hdf5 import DemoReader, DemoWriter, SkillSegment
from robot_skills.execution import recording
from robot_skills.policies.features import skill_features
from robot_skills.robot import Observation


def _obs(rng, t, names=("bowl_1", "plate_1")):
    def pose():
        q = rng.normal(size=4)
        return np.concatenate([rng.uniform(-1, 1, 3), q / np.linalg.norm(q)])
    q = rng.normal(size=4)
    return Observation(joint_pos=rng.normal(size=7), joint_vel=rng.normal(size=7),
                       ee_pos=rng.uniform(-1, 1, 3), ee_quat=q / np.linalg.norm(q),
                       gripper_width=float(rng.uniform(0, 0.08)),
                       object_poses={n: pose() for n in names}, time=0.05 * t)


def _demo(rng, T=12):
    obs = [_obs(rng, t) for t in range(T)]
    actions = rng.uniform(-0.05, 0.05, (T, 7)).astype(np.float32)
    segs = [SkillSegment(0, 5, "pick", ("bowl_1",)),
            SkillSegment(5, T, "place_on", ("bowl_1", "plate_1"), success=False)]
    return obs, actions, segs


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "demos.hdf5"
    demos = [_demo(rng, 12), _demo(rng, 9)]
    states = rng.normal(size=(12, 30))
    with DemoWriter(path, env_args={"env_name": "libero_goal", "bddl": "x.bddl"},
                    attrs={"collector": "test"}) as w:
        w.add_demo(demos[0][0], demos[0][1], states=states, skill_segments=demos[0][2],
                   attrs={"task": "put_the_bowl_on_the_plate", "seed": 3, "language": "put it"})
        w.add_demo(demos[1][0], demos[1][1], rewards=np.ones(9), skill_segments=demos[1][2])
    with DemoReader(path) as r:
        assert r.demos == ["demo_0", "demo_1"]
        assert r.total == 21
        assert r.env_args == {"env_name": "libero_goal", "bddl": "x.bddl"}
        assert r.attrs["collector"] == "test"
        d0 = r.load("demo_0")
        np.testing.assert_array_equal(d0.actions, demos[0][1])
        np.testing.assert_array_equal(d0.states, states)
        assert d0.segments == demos[0][2]
        assert d0.attrs["task"] == "put_the_bowl_on_the_plate" and d0.attrs["seed"] == 3
        assert d0.dones[-1] == 1 and d0.dones[:-1].sum() == 0
        for t, o in enumerate(r.observations("demo_0")):
            ref = demos[0][0][t]
            np.testing.assert_array_equal(o.ee_pos, ref.ee_pos)
            np.testing.assert_array_equal(o.ee_quat, ref.ee_quat)
            np.testing.assert_array_equal(o.joint_vel, ref.joint_vel)
            assert o.gripper_width == ref.gripper_width
            assert set(o.object_poses) == set(ref.object_poses)
            for k in ref.object_poses:
                np.testing.assert_array_equal(o.object_poses[k], ref.object_poses[k])
            assert o.time == pytest.approx(0.05 * t)
        d1 = r.load("demo_1")
        assert d1.states is None and d1.rewards.sum() == 9
        segs = list(r.iter_segments(["place_on"]))
        assert [n for n, _ in segs] == ["demo_0", "demo_1"]
        assert not segs[0][1].success
        with pytest.raises(KeyError, match="demo_7"):
            r.load("demo_7")


def test_skill_segment_is_the_recording_type():
    """``SkillSegment`` lives in ``robot_skills.execution.recording`` (re-exported here), so
    the segments an executor's recorder collects are what the writer stores."""
    assert SkillSegment is recording.SkillSegment
    seg = recording.SkillSegment(1, 4, "place_on", ("bowl_1", "plate_1"), success=False)
    assert SkillSegment.from_dict(seg.to_dict()) == seg
    with pytest.raises(ValueError, match="list of entity names"):
        SkillSegment.from_dict({"start": 0, "end": 1, "skill": "pick", "args": "bowl_1"})


def test_failed_write_keeps_previous_file(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "demos.hdf5"
    obs, actions, segs = _demo(rng)
    with DemoWriter(path) as w:
        w.add_demo(obs, actions, skill_segments=segs)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="crash"), DemoWriter(path) as w:
        w.add_demo(obs, actions)
        w.add_demo(obs, actions)
        raise RuntimeError("crash")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["demos.hdf5"]  # no temp file left


def test_validation_errors(tmp_path):
    rng = np.random.default_rng(2)
    obs, actions, _ = _demo(rng, 6)
    with DemoWriter(tmp_path / "d.hdf5") as w:
        with pytest.raises(ValueError, match=r"actions must have shape"):
            w.add_demo(obs, actions[:, :6])
        with pytest.raises(ValueError, match=r"rewards must have shape \(6,\)"):
            w.add_demo(obs, actions, rewards=np.zeros(5))
        with pytest.raises(ValueError, match="outside a demo of 6 steps"):
            w.add_demo(obs, actions, skill_segments=[SkillSegment(2, 9, "pick", ("bowl_1",))])
        with pytest.raises(ValueError, match="NaN"):
            bad = actions.copy()
            bad[0, 0] = np.nan
            w.add_demo(obs, bad)
        obs2 = list(obs)
        obs2[3] = _obs(rng, 3, names=("bowl_1",))
        with pytest.raises(ValueError, match="same entities"):
            w.add_demo(obs2, actions)
        with pytest.raises(ValueError, match="lacks keys"):
            w.add_demo(obs, actions, skill_segments=[{"start": 0, "skill": "pick"}])
    with pytest.raises(FileNotFoundError):
        DemoReader(tmp_path / "missing.hdf5")
    (tmp_path / "junk.hdf5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        DemoReader(tmp_path / "junk.hdf5")


def test_reads_robomimic_flat_keys(tmp_path):
    T = 4
    path = tmp_path / "robomimic.hdf5"
    with h5py.File(path, "w") as f:
        g = f.create_group("data")
        g.attrs["env_args"] = json.dumps({"env_name": "Lift"})
        d = g.create_group("demo_0")
        d.create_dataset("actions", data=np.zeros((T, 7)))
        o = d.create_group("obs")
        o["robot0_eef_pos"] = np.tile([0.1, 0.2, 0.3], (T, 1))
        o["robot0_eef_quat"] = np.tile([0.0, 1.0, 0.0, 0.0], (T, 1))  # x y z w
        o["robot0_gripper_qpos"] = np.tile([0.03, -0.03], (T, 1))
        o["robot0_joint_pos"] = np.zeros((T, 7))
        o["cube_pos"] = np.tile([0.5, 0.0, 0.8], (T, 1))
        o["cube_quat"] = np.tile([0.0, 0.0, 0.0, 1.0], (T, 1))
    with DemoReader(path) as r:
        obs = r.observations("demo_0")[2]
    np.testing.assert_allclose(obs.ee_quat, [0, 0, 1, 0])
    assert obs.gripper_width == pytest.approx(0.06)
    np.testing.assert_allclose(obs.object_poses["cube"], [0.5, 0, 0.8, 1, 0, 0, 0])
    np.testing.assert_array_equal(obs.joint_vel, np.zeros(7))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), nargs=st.integers(0, 2))
def test_vectorised_features_match_skill_features(seed, nargs):
    rng = np.random.default_rng(seed)
    T = 7
    obs = [_obs(rng, t) for t in range(T)]
    obs[0].ee_quat = -np.abs(obs[0].ee_quat)  # exercise the w >= 0 sign fix
    args = ["bowl_1", "plate_1"][:nargs]
    ref = np.stack([skill_features(o, args) for o in obs])
    got = features_from_arrays(np.stack([o.ee_pos for o in obs]),
                               np.stack([o.ee_quat for o in obs]),
                               np.array([o.gripper_width for o in obs]),
                               [np.stack([o.object_poses[a] for o in obs]) for a in args])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)


def test_action_chunks_pad_with_segment_last_action():
    a = np.arange(6 * 7, dtype=np.float32).reshape(6, 7)
    chunks, mask = action_chunks(a, 2, 5, 4)
    assert chunks.shape == (3, 4, 7) and mask.shape == (3, 4)
    np.testing.assert_array_equal(chunks[0], a[[2, 3, 4, 4]])
    np.testing.assert_array_equal(chunks[2], a[[4, 4, 4, 4]])
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]])


def test_dataset_from_hdf5_matches_observations(tmp_path):
    path = write_synthetic_demos(tmp_path / "s.hdf5", num_demos=3, steps_per_skill=8)
    ds = SkillChunkDataset.from_hdf5(path, chunk_size=5)
    assert ds.skills == ["pick", "place_on"] and len(ds) == 3 * 16
    with DemoReader(path) as r:
        demo = r.load("demo_1")
        seg = demo.segments[1]
        ref = np.stack([skill_features(demo.observation(t), seg.args)
                        for t in range(seg.start, seg.end)])
    got = ds.features[(ds.episode_ids == 1) & (ds.skill_ids == 1)]
    np.testing.assert_array_equal(got, ref)
    stats = ds.compute_stats()
    assert stats.action_mean[6] == 0 and stats.action_std[6] == 1
    # the synthetic pick/place scripts only open (-1) and close (+1)
    for sid, name in enumerate(ds.skills):
        used = sorted(set(ds.actions[ds.skill_ids == sid, 0, 6].tolist()))
        assert stats.gripper_levels[name] == used and set(used) <= {-1.0, 1.0}
    stats.save(tmp_path / "stats.json")
    again = type(stats).load(tmp_path / "stats.json")
    np.testing.assert_array_equal(again.feature_std, stats.feature_std)
    assert again.gripper_levels == stats.gripper_levels
    only_pick = SkillChunkDataset.from_hdf5(path, ["pick"], 5, skill_vocab=ds.skills)
    assert set(only_pick.skill_ids.tolist()) == {0}
    whole = SkillChunkDataset.whole_task(path, "synthetic", ["cube_1", "plate_1"], 5,
                                         task="synthetic_task")
    assert whole.skills == ["synthetic"] and len(whole) == 3 * 16
    with pytest.raises(ValueError, match="no samples"):
        SkillChunkDataset.whole_task(path, "x", ["cube_1"], 5, task="other_task")
    with pytest.raises(KeyError, match="mug_1"):
        SkillChunkDataset.whole_task(path, "x", ["mug_1"], 5)
