"""Object sizes as a shape descriptor (``training.object_sizes``): what the geometry gives, what the
executor records with each segment, what the features append, and a library that reads them."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from test_placement import _model, _poses, rewrite_segments

from robot_skills.data.dataset import (
    SkillChunkDataset,
    check_sizes_recorded,
    features_from_arrays,
    write_synthetic_demos,
)
from robot_skills.data.lazy import LazySkillChunkDataset
from robot_skills.execution.recording import SkillSegment
from robot_skills.perception.placement import call_arg_sizes
from robot_skills.policies.features import (
    FEATURE_DIM,
    SIZED_FEATURE_DIM,
    feature_dim,
    skill_features,
)
from robot_skills.policies.normalization import NormStats
from robot_skills.robot import Observation

SIZES = {"cube_1": (0.02, 0.02, 0.02), "plate_1": (0.075, 0.075, 0.008),
         "bowl_1": (0.037, 0.037, 0.0225)}


class _World:
    world_model = _model()


def test_the_geometry_sizes_objects_boxed_regions_and_table_regions():
    sizes = _model().entity_sizes()
    np.testing.assert_array_equal(sizes["pot_1"], [0.05, 0.04, 0.07])
    np.testing.assert_array_equal(sizes["stove_1"], [0.1, 0.1, 0.02])
    np.testing.assert_array_equal(sizes["basket_1_contain_region"], [0.09, 0.07, 0.04])
    # a table region: half its ranges' rectangle, flat
    np.testing.assert_allclose(sizes["main_table_front_region"], [0.1, 0.05, 0.0])
    assert call_arg_sizes(_World(), ["pot_1", "stove_1_cook_region"]) == (
        (0.05, 0.04, 0.07), (0.12, 0.12, 0.02))
    assert call_arg_sizes(object(), ["pot_1"]) == ()            # no geometry: none
    assert call_arg_sizes(_World(), ["nothing_known"]) == ()


def _obs(poses) -> Observation:
    return Observation(np.zeros(7), np.zeros(7), np.array([0.4, 0.0, 0.3]),
                       np.array([0.0, 1.0, 0.0, 0.0]), 0.05, poses)


def test_sized_features_append_the_half_extents_after_the_unsized_layout():
    obs = _obs(_poses())
    args = ["pot_1", "stove_1_cook_region"]
    plain = skill_features(obs, args)
    sized = skill_features(obs, args, arg_sizes=call_arg_sizes(_World(), args))
    assert plain.shape == (FEATURE_DIM,) and sized.shape == (SIZED_FEATURE_DIM,)
    np.testing.assert_array_equal(sized[:FEATURE_DIM], plain)
    np.testing.assert_allclose(sized[FEATURE_DIM:], [0.05, 0.04, 0.07, 0.12, 0.12, 0.02])
    one = skill_features(obs, ["pot_1"], arg_sizes=[(0.05, 0.04, 0.07)])
    np.testing.assert_allclose(one[FEATURE_DIM:], [0.05, 0.04, 0.07, 0, 0, 0])  # empty slot
    # () is the sized layout with no size known: zeros, not the unsized layout
    assert skill_features(obs, args, arg_sizes=()).shape == (SIZED_FEATURE_DIM,)
    with pytest.raises(ValueError, match="size of argument 'pot_1'"):
        skill_features(obs, ["pot_1"], arg_sizes=[(0.05, -0.04, 0.07)])
    with pytest.raises(ValueError, match="1 argument sizes for the 2 arguments"):
        skill_features(obs, args, arg_sizes=[(0.05, 0.04, 0.07)])


def test_vectorised_sized_features_are_bit_for_bit_the_per_step_ones():
    rng = np.random.default_rng(1)
    T = 6
    ee, q, g = rng.normal(size=(T, 3)), rng.normal(size=(T, 4)), rng.uniform(0, 0.08, T)
    poses = [np.concatenate([rng.normal(size=(T, 3)), rng.normal(size=(T, 4))], axis=1)
             for _ in range(2)]
    sizes = [(0.03, 0.02, 0.01), None]
    offs = [None, (0.01, 0.0, 0.04)]
    f = features_from_arrays(ee, q, g, poses, offs, sizes)
    assert f.shape == (T, SIZED_FEATURE_DIM)
    for t in range(T):
        obs = Observation(np.zeros(7), np.zeros(7), ee[t], q[t], float(g[t]),
                          {"a": poses[0][t], "b": poses[1][t]})
        np.testing.assert_array_equal(f[t], skill_features(obs, ["a", "b"], offs, sizes))


def test_segments_keep_their_sizes_through_json():
    s = SkillSegment(0, 9, "place_on", ("pot_1", "plate_1"), True, (),
                     ((0.05, 0.04, 0.07), (0.08, 0.08, 0.0)))
    d = s.to_dict()
    assert "arg_offsets" not in d and SkillSegment.from_dict(d) == s
    assert "arg_sizes" not in SkillSegment(0, 3, "pick", ("pot_1",)).to_dict()
    for bad in ([None], [None, [0.1, -0.1, 0.1]], [None, [0.1, float("nan"), 0.1]]):
        with pytest.raises(ValueError, match="arg_sizes must hold"):
            SkillSegment.from_dict({**d, "arg_sizes": bad})


def _with_sizes(src, dst):
    """A copy of demo file ``src`` whose segments carry their arguments' sizes."""
    return rewrite_segments(src, dst, lambda s: s.update(
        arg_sizes=[list(SIZES[a]) for a in s["args"]]))


def test_training_data_appends_recorded_sizes_only_when_asked(tmp_path):
    old = write_synthetic_demos(tmp_path / "old.hdf5", num_demos=3, steps_per_skill=10)
    new = _with_sizes(old, tmp_path / "new.hdf5")
    plain = SkillChunkDataset.from_hdf5(new, chunk_size=4)
    sized = SkillChunkDataset.from_hdf5(new, chunk_size=4, object_sizes=True)
    assert (plain.feature_dim, sized.feature_dim) == (FEATURE_DIM, SIZED_FEATURE_DIM)
    np.testing.assert_array_equal(sized.features[:, :FEATURE_DIM], plain.features)
    # per sample, the half extents of its segment's arguments, in argument order (zeros after)
    want = []
    with h5py.File(new, "r") as f:
        for name in f["data"]:
            for seg in json.loads(f["data"][name].attrs["skill_segments"]):
                row = np.zeros(SIZED_FEATURE_DIM - FEATURE_DIM)
                for k, arg in enumerate(seg["args"]):
                    row[3 * k:3 * k + 3] = SIZES[arg]
                want.extend([row] * (seg["end"] - seg["start"]))
    np.testing.assert_allclose(sized.features[:, FEATURE_DIM:], np.array(want), rtol=1e-6)
    place = sized.skill_ids == sized.skills.index("place_on")
    stats = sized.compute_stats()
    assert stats.object_sizes and stats.feature_mean.shape == (SIZED_FEATURE_DIM,)
    assert NormStats.from_dict(stats.to_dict()).object_sizes
    assert sized.select(place).object_sizes
    lazy = LazySkillChunkDataset.from_hdf5(new, chunk_size=4, object_sizes=True)
    assert lazy.object_sizes and lazy[0]["features"].shape == (SIZED_FEATURE_DIM,)
    np.testing.assert_allclose(lazy.compute_stats().feature_mean, stats.feature_mean, atol=1e-5)
    # a file recorded before segments carried sizes is refused, by name
    for loader in (SkillChunkDataset.from_hdf5, LazySkillChunkDataset.from_hdf5):
        with pytest.raises(ValueError, match=r"old\.hdf5.*arg_sizes"):
            loader([old, new], chunk_size=4, object_sizes=True)
    assert SkillChunkDataset.from_hdf5([old, new], chunk_size=4).feature_dim == FEATURE_DIM


def test_check_sizes_recorded_counts_files_not_segments():
    check_sizes_recorded([("a.hdf5", "pick", ("x",), ((0.1, 0.1, 0.1),)),
                          ("a.hdf5", "turn_on", ("stove",), ())])   # one unsized call is fine
    check_sizes_recorded([("a.hdf5", "noop", (), ())])             # no arguments: nothing to size
    with pytest.raises(ValueError, match=r"\['b.hdf5'\]"):
        check_sizes_recorded([("a.hdf5", "pick", ("x",), ((0.1, 0.1, 0.1),)),
                              ("b.hdf5", "pick", ("x",), ())])


def test_stats_of_the_wrong_width_are_refused():
    st = NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                   np.zeros(7, np.float32), np.ones(7, np.float32), ["pick"], 2)
    d = st.to_dict()
    assert d["feature_dim"] == FEATURE_DIM and d["object_sizes"] is False
    with pytest.raises(ValueError, match=f"feature_mean must have {SIZED_FEATURE_DIM}"):
        NormStats.from_dict({**d, "object_sizes": True})
    with pytest.raises(ValueError, match="object_sizes must be true or false"):
        NormStats.from_dict({**d, "object_sizes": 1})
    assert feature_dim(True) == SIZED_FEATURE_DIM and feature_dim(False) == FEATURE_DIM


@pytest.mark.parametrize("object_sizes", [True, False])
def test_a_library_trained_with_sizes_says_so_and_its_skills_read_them(tmp_path, object_sizes):
    from robot_skills.skills.library import SkillLibrary
    from robot_skills.training.trainer import TrainConfig, train_skill_library

    data = _with_sizes(write_synthetic_demos(tmp_path / "d.hdf5", num_demos=2, steps_per_skill=8),
                       tmp_path / "sized.hdf5")
    cfg = TrainConfig(steps=2, lora_steps=1, batch_size=8, chunk_size=2, hidden=16, layers=1,
                      progress=False, tensorboard=False, object_sizes=object_sizes)
    lib = train_skill_library([data], tmp_path / "skills", cfg)
    stats = json.loads((lib / "pick" / "stats.json").read_text())
    assert stats["object_sizes"] is object_sizes
    assert stats["feature_dim"] == (SIZED_FEATURE_DIM if object_sizes else FEATURE_DIM)
    skill = SkillLibrary(lib).skill_set().policies["pick"]
    assert skill.model.cfg.feature_dim == stats["feature_dim"]

    class World:
        world_model = _model(cube_1={"half_extents": list(SIZES["cube_1"])})

    obs = _obs(_poses(cube_1=[0.5, 0.0, 0.02, 1, 0, 0, 0]))
    skill.reset(["cube_1"], World())
    assert np.all(np.isfinite(skill.act(obs).to_array()))
    if object_sizes:
        with pytest.raises(ValueError, match="trained with object sizes.*no world_model"):
            skill.reset(["cube_1"], object())
    else:
        skill.reset(["cube_1"], object())    # a library without sizes needs no geometry
        assert np.all(np.isfinite(skill.act(obs).to_array()))
