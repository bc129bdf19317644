"""Release points of placements: one function for the experts, the recorded segments and the
learned skills' features (robot_skills.perception.placement)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from robot_skills.data.dataset import features_from_arrays, release_offsets_used
from robot_skills.execution.recording import SkillSegment
from robot_skills.perception import ObjectGeometry, PoseWorldModel
from robot_skills.perception.placement import (
    DRAWER_FRONT_OFFSET,
    SPOT_GAP,
    call_arg_offsets,
    release_offsets,
    release_point,
)
from robot_skills.policies.features import FEATURE_DIM, PROPRIO_DIM, SLOT_DIM, skill_features
from robot_skills.policies.learned_skill import LearnedSkill
from robot_skills.policies.normalization import NormStats
from robot_skills.robot import Observation


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def _model(**objects) -> PoseWorldModel:
    objs = {"pot_1": {"half_extents": [0.05, 0.04, 0.07]},
            "pot_2": {"half_extents": [0.05, 0.04, 0.07]},
            "plate_1": {"half_extents": [0.08, 0.08, 0.01], "shape": "cylinder",
                        "tags": ["surface"]},
            "basket_1": {"half_extents": [0.1, 0.08, 0.04], "footprint": "round"}}
    objs.update(objects)
    return PoseWorldModel.from_dict({
        "table": "main_table",
        "objects": objs,
        "fixtures": {"main_table": {"half_extents": [0.6, 0.6, 0.45],
                                    "pose": [0.6, 0, 0, 1, 0, 0, 0]},
                     "stove_1": {"half_extents": [0.1, 0.1, 0.02],
                                 "pose": [0.5, 0.2, 0.02, 1, 0, 0, 0]},
                     "cabinet_1": {"half_extents": [0.1, 0.1, 0.2],
                                   "pose": [0.5, -0.3, 0.2, 1, 0, 0, 0]}},
        "regions": {"stove_1_cook_region": {"kind": "surface", "owner": "stove_1",
                                            "half_extents": [0.12, 0.12, 0.02],
                                            "frame_in_owner": [0, 0, 0.02, 1, 0, 0, 0]},
                    "basket_1_contain_region": {"kind": "container", "owner": "basket_1",
                                                "half_extents": [0.09, 0.07, 0.04],
                                                "frame_in_owner": [0, 0, -0.03, 1, 0, 0, 0]},
                    "cabinet_1_top_region": {"kind": "drawer", "owner": "cabinet_1",
                                             "half_extents": [0.1, 0.12, 0.03]},
                    "main_table_front_region": {"kind": "table", "owner": "main_table",
                                                "ranges": [[-0.1, -0.05, 0.1, 0.05]]}},
    })


def _poses(**extra) -> dict[str, np.ndarray]:
    p = {"pot_1": [0.3, 0.3, 0.07, 1, 0, 0, 0], "pot_2": [0.3, -0.3, 0.07, 1, 0, 0, 0],
         "plate_1": [0.45, 0.0, 0.01, 1, 0, 0, 0], "basket_1": [0.25, -0.1, 0.04, 1, 0, 0, 0],
         "stove_1_cook_region": [0.5, 0.2, 0.04, 1, 0, 0, 0],
         "basket_1_contain_region": [0.25, -0.1, 0.01, 1, 0, 0, 0],
         "cabinet_1_top_region": [0.55, -0.3, 0.3, 1, 0, 0, 0],
         "main_table_front_region": [0.45, 0.0, 0.0, 1, 0, 0, 0]}
    p.update(extra)
    return {k: np.asarray(v, float) for k, v in p.items()}


def test_an_empty_region_releases_at_its_default_point():
    m = _model()
    np.testing.assert_array_equal(release_point(m, _poses(), "pot_1", "stove_1_cook_region"),
                                  [0.0, 0.0])
    np.testing.assert_array_equal(release_point(m, _poses(), "pot_1", "cabinet_1_top_region"),
                                  [DRAWER_FRONT_OFFSET, 0.0])


def test_an_occupied_region_releases_beside_what_stands_there():
    """The second moka pot: the first stands at the cook region's centre."""
    m = _model()
    poses = _poses(pot_2=[0.5, 0.2, 0.09, 1, 0, 0, 0])
    p = release_point(m, poses, "pot_1", "stove_1_cook_region")
    foot = math.hypot(0.05, 0.04)            # both pots are "box" footprints
    assert np.linalg.norm(p) - 2 * foot >= SPOT_GAP - 1e-9
    assert np.all(np.abs(p) <= 0.12 + 1e-9)  # inside the region (a surface: the centre is)
    # the nearest free point: no grid point closer to the centre keeps the gap
    assert np.linalg.norm(p) < 2 * foot + SPOT_GAP + 0.12 / 4 * math.sqrt(2)


def test_footprint_round_is_the_larger_half_extent_box_the_hypotenuse():
    R = np.eye(3)
    assert ObjectGeometry((0.1, 0.05, 0.02), footprint="round").footprint_radius(R) == 0.1
    assert ObjectGeometry((0.1, 0.05, 0.02)).footprint_radius(R) == pytest.approx(math.hypot(0.1, 0.05))
    assert ObjectGeometry((0.1, 0.1, 0.02), shape="cylinder").footprint_radius(R) == 0.1
    with pytest.raises(ValueError, match="footprint must be 'round', 'box' or null"):
        ObjectGeometry((0.1, 0.1, 0.02), footprint="disc")


def test_release_offsets_lift_the_target_to_the_held_objects_centre():
    m = _model()
    poses = _poses()
    assert release_offsets(m, poses, "place_on", ["pot_1", "stove_1_cook_region"]) == \
        (None, (0.0, 0.0, 0.07))
    assert release_offsets(m, poses, "place_on", ["pot_1", "plate_1"]) == \
        (None, (0.0, 0.0, pytest.approx(0.08)))
    occupied = _poses(pot_2=[0.5, 0.2, 0.09, 1, 0, 0, 0])
    o = release_offsets(m, occupied, "place_on", ["pot_1", "stove_1_cook_region"])[1]
    assert math.hypot(o[0], o[1]) > 0.1 and o[2] == 0.07
    d = release_offsets(m, occupied, "place_in", ["pot_1", "cabinet_1_top_region"])[1]
    assert d == (0.0, 0.0, 0.07)              # default point already free: no xy shift
    for skill, args in (("pick", ["pot_1"]), ("push", ["pot_1", "main_table_front_region"]),
                        ("open", ["cabinet_1_top_region"])):
        assert release_offsets(m, poses, skill, args) == (None,) * len(args)


def test_call_arg_offsets_need_a_world_with_geometry():
    obs = Observation(np.zeros(7), np.zeros(7), np.zeros(3), np.array([1.0, 0, 0, 0]), 0.08,
                      _poses())

    class Bare:
        pass

    class WithGeometry:
        world_model = _model()

    assert call_arg_offsets(Bare(), "place_on", ["pot_1", "plate_1"], obs) == ()
    assert call_arg_offsets(WithGeometry(), "place_on", ["pot_1", "plate_1"], obs)[1] is not None
    del obs.object_poses["stove_1_cook_region"]
    with pytest.raises(KeyError, match="stove_1_cook_region"):
        call_arg_offsets(WithGeometry(), "place_on", ["pot_1", "stove_1_cook_region"], obs)


def test_features_read_the_target_shifted_in_its_own_frame():
    yaw = math.pi / 2
    poses = {"pot_1": np.array([0.3, 0.0, 0.1, 1, 0, 0, 0]),
             "r": np.array([0.5, 0.2, 0.0, *_yaw_quat(yaw)])}
    obs = Observation(np.zeros(7), np.zeros(7), np.array([0.4, 0.0, 0.3]),
                      np.array([0.0, 1.0, 0.0, 0.0]), 0.05, poses)
    plain = skill_features(obs, ["pot_1", "r"])
    shifted = skill_features(obs, ["pot_1", "r"], [None, (0.1, 0.0, 0.05)])
    o = PROPRIO_DIM + SLOT_DIM
    # +x of a region turned a quarter turn is +y of the base
    np.testing.assert_allclose(shifted[o:o + 3] - plain[o:o + 3], [0.0, 0.1, 0.05], atol=1e-6)
    np.testing.assert_array_equal(np.delete(shifted, [o, o + 1, o + 2]),
                                  np.delete(plain, [o, o + 1, o + 2]))
    with pytest.raises(ValueError, match="1 argument offsets for the 2 arguments"):
        skill_features(obs, ["pot_1", "r"], [None])
    with pytest.raises(ValueError, match="offset of argument 'r' must be 3 finite numbers"):
        skill_features(obs, ["pot_1", "r"], [None, (0.1, float("nan"), 0.0)])


def test_vectorised_features_with_offsets_are_bit_for_bit_the_per_step_ones():
    rng = np.random.default_rng(0)
    T = 7
    ee = rng.normal(size=(T, 3))
    q = rng.normal(size=(T, 4))
    g = rng.uniform(0, 0.08, T)
    poses = [np.concatenate([rng.normal(size=(T, 3)), rng.normal(size=(T, 4))], axis=1)
             for _ in range(2)]
    offs = [None, (0.03, -0.02, 0.05)]
    f = features_from_arrays(ee, q, g, poses, offs)
    for t in range(T):
        obs = Observation(np.zeros(7), np.zeros(7), ee[t], q[t], float(g[t]),
                          {"a": poses[0][t], "b": poses[1][t]})
        np.testing.assert_array_equal(f[t], skill_features(obs, ["a", "b"], offs))


def test_segments_keep_their_offsets_through_json():
    s = SkillSegment(3, 9, "place_on", ("pot_1", "plate_1"), True, (None, (0.01, 0.0, 0.08)))
    assert SkillSegment.from_dict(s.to_dict()) == s
    plain = SkillSegment(0, 3, "pick", ("pot_1",))
    assert "arg_offsets" not in plain.to_dict()
    for bad in ([None], [None, [0.0, 0.1]], [None, [0.0, "x", 0.0]], "0 0 0"):
        d = {**s.to_dict(), "arg_offsets": bad}
        with pytest.raises(ValueError, match="arg_offsets must hold"):
            SkillSegment.from_dict(d)


def test_files_with_and_without_offsets_are_not_trained_together():
    new = ("new.hdf5", "place_on", ("a", "b"), (None, (0.0, 0.0, 0.05)))
    old = ("old.hdf5", "place_in", ("a", "b"), ())
    assert release_offsets_used([new, ("new.hdf5", "pick", ("a",), ())]) is True
    assert release_offsets_used([old, ("x.hdf5", "pick", ("a",), ())]) is False
    # a file whose one placement failed before its offsets were known still counts as new
    assert release_offsets_used([new, ("new.hdf5", "place_on", ("a", "b"), ())]) is True
    with pytest.raises(ValueError, match=r"\['old.hdf5'\] carry no release-point offsets"):
        release_offsets_used([new, old])


def test_stats_say_whether_offsets_were_used():
    st = NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                   np.zeros(7, np.float32), np.ones(7, np.float32), ["place_on"], 2,
                   arg_offsets=True)
    assert NormStats.from_dict(st.to_dict()).arg_offsets is True
    d = st.to_dict()
    del d["arg_offsets"]                     # a library trained before offsets existed
    assert NormStats.from_dict(d).arg_offsets is False
    with pytest.raises(ValueError, match="arg_offsets must be true or false"):
        NormStats.from_dict({**st.to_dict(), "arg_offsets": "yes"})


class _Echo(torch.nn.Module):
    """Returns its (normalised) input's target slot x as the chunk's first action dim."""

    H = 2
    cfg = None

    def forward(self, x, skill_id):
        out = torch.zeros(x.shape[0], self.H, 7)
        out[..., 0] = x[:, PROPRIO_DIM + SLOT_DIM: PROPRIO_DIM + SLOT_DIM + 1]
        out[..., 2] = x[:, PROPRIO_DIM + SLOT_DIM + 2: PROPRIO_DIM + SLOT_DIM + 3]
        return out


@pytest.mark.parametrize("trained_with_offsets", [True, False])
def test_a_learned_place_skill_reads_offsets_only_if_its_data_had_them(trained_with_offsets):
    st = NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                   np.zeros(7, np.float32), np.ones(7, np.float32), ["pick", "place_on"], 2,
                   arg_offsets=trained_with_offsets)

    class World:
        world_model = _model()

    poses = _poses(pot_2=[0.5, 0.2, 0.09, 1, 0, 0, 0])
    obs = Observation(np.zeros(7), np.zeros(7), np.array([0.4, 0.0, 0.3]),
                      np.array([0.0, 1.0, 0.0, 0.0]), 0.05, poses)
    skill = LearnedSkill("place_on", _Echo(), st, skill_id=1, ensemble_m=None, fast_path=False)
    skill.limits = type(skill.limits)(max_delta_pos=10.0, max_delta_rot=10.0)
    skill.reset(["pot_1", "stove_1_cook_region"], World())
    a = skill.act(obs)
    seen = np.array([a.delta_pos[0], a.delta_pos[2]])
    plain = np.array([0.5 - 0.4, 0.04 - 0.3])
    if trained_with_offsets:
        o = release_offsets(World.world_model, poses, "place_on", ["pot_1", "stove_1_cook_region"])
        np.testing.assert_allclose(seen, plain + [o[1][0], o[1][2]], atol=1e-6)
        assert abs(o[1][0]) + abs(o[1][1]) > 0.1      # the first pot is in the way
    else:
        np.testing.assert_allclose(seen, plain, atol=1e-6)


def test_recorded_placements_carry_the_release_point_the_expert_used():
    """LIBERO-10's "both moka pots on the stove": the executor records each placement's offsets
    from the same function the expert releases with; the second pot's point is beside the first,
    and both end On the cook region."""
    from libero_paths import LIBERO_BDDL

    from robot_skills.execution.executor import Executor
    from robot_skills.execution.recording import EpisodeRecording
    from robot_skills.planning.symbolic import SymbolicPlanner
    from sim.factories import ExpertSkills
    from sim.world import SimTaskWorld

    path = LIBERO_BDDL / "libero_10" / "KITCHEN_SCENE8_put_both_moka_pots_on_the_stove.bddl"
    world = SimTaskWorld.from_task(path)
    try:
        world.reset(0)
        rec = EpisodeRecording()
        skills = ExpertSkills()(path)
        res = Executor(world, skills, SymbolicPlanner(skills.specs), recorder=rec,
                       max_steps=600).run()
        assert res.success, res.to_dict()["reason"]
        places = [s for s in rec.segments if s.skill == "place_on"]
        assert len(places) == 2
        hz = [world.world_model.objects[s.args[0]].half_extents[2] for s in places]
        first, second = (s.arg_offsets[1] for s in places)
        assert first == (0.0, 0.0, hz[0])                  # the stove was empty
        assert math.hypot(second[0], second[1]) > 0.08 and second[2] == hz[1]
        assert all(s.arg_offsets[0] is None for s in places)
        assert all(s.arg_offsets == () for s in rec.segments if s.skill == "pick")
        # every segment also records its arguments' sizes, from the same world geometry
        sizes = world.world_model.entity_sizes()
        for s in rec.segments:
            assert s.arg_sizes == tuple(tuple(float(v) for v in sizes[a]) for a in s.args)
        # the shifted target is where the second pot's centre went (within the release slack)
        end = rec.observations[places[1].end - 1]
        region = end.object_poses["flat_stove_1_cook_region"]
        f = skill_features(end, places[1].args, places[1].arg_offsets)
        o = PROPRIO_DIM + SLOT_DIM
        target = f[o:o + 3] + end.ee_pos
        pot = end.object_poses[places[1].args[0]][:3]
        assert np.linalg.norm(target[:2] - pot[:2]) < 0.03, (target, pot, region)
    finally:
        world.close()


def rewrite_segments(src, dst, edit):
    """A copy of demo file ``src`` with ``edit(segment_dict)`` applied to every skill segment."""
    import json
    import shutil

    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        for name in f["data"]:
            g = f["data"][name]
            segs = json.loads(g.attrs["skill_segments"])
            for s in segs:
                edit(s)
            g.attrs["skill_segments"] = json.dumps(segs)
    return dst


def _with_offsets(src, dst, dz: float = 0.05):
    """A copy of demo file ``src`` whose placement segments carry target offsets ``(0, 0, dz)``."""
    def edit(s):
        if s["skill"] == "place_on":
            s["arg_offsets"] = [None, [0.0, 0.0, dz]]
    return rewrite_segments(src, dst, edit)


def test_training_reads_recorded_offsets_only_when_asked(tmp_path):
    from robot_skills.data.dataset import SkillChunkDataset, write_synthetic_demos
    from robot_skills.data.lazy import LazySkillChunkDataset

    old = write_synthetic_demos(tmp_path / "old.hdf5", num_demos=3, steps_per_skill=12)
    new = _with_offsets(old, tmp_path / "new.hdf5", dz=0.05)
    base = SkillChunkDataset.from_hdf5(old, chunk_size=4)
    on = SkillChunkDataset.from_hdf5(new, chunk_size=4)
    off = SkillChunkDataset.from_hdf5(new, chunk_size=4, arg_offsets=False)
    assert (base.arg_offsets, on.arg_offsets, off.arg_offsets) == (False, True, False)
    np.testing.assert_array_equal(off.features, base.features)
    place = on.skill_ids == on.skills.index("place_on")
    z = PROPRIO_DIM + SLOT_DIM + 2                 # the target slot's z
    # the synthetic targets are unrotated: the shift is the offset itself
    np.testing.assert_allclose(on.features[place, z] - base.features[place, z], 0.05, atol=1e-6)
    np.testing.assert_array_equal(np.delete(on.features, z, axis=1),
                                  np.delete(base.features, z, axis=1))
    assert on.compute_stats().arg_offsets and not off.compute_stats().arg_offsets
    assert on.select(place).arg_offsets
    lazy = LazySkillChunkDataset.from_hdf5(new, chunk_size=4)
    assert lazy.arg_offsets and lazy.compute_stats().arg_offsets
    np.testing.assert_allclose(lazy.compute_stats().feature_mean, on.compute_stats().feature_mean,
                               atol=1e-5)
    assert not LazySkillChunkDataset.from_hdf5(new, chunk_size=4, arg_offsets=False).arg_offsets
    with pytest.raises(ValueError, match="carry no release-point offsets"):
        SkillChunkDataset.from_hdf5([old, new], chunk_size=4)
    assert not SkillChunkDataset.from_hdf5([old, new], chunk_size=4, arg_offsets=False).arg_offsets


@pytest.mark.parametrize("release_points", [True, False])
def test_a_library_trained_with_release_points_says_so_and_its_skills_apply_them(
        tmp_path, release_points):
    from robot_skills.data.dataset import write_synthetic_demos
    from robot_skills.skills.library import SkillLibrary
    from robot_skills.training.trainer import TrainConfig, train_skill_library

    old = write_synthetic_demos(tmp_path / "old.hdf5", num_demos=2, steps_per_skill=8)
    new = _with_offsets(old, tmp_path / "new.hdf5")
    cfg = TrainConfig(steps=2, lora_steps=1, batch_size=8, chunk_size=2, hidden=16, layers=1,
                      progress=False, tensorboard=False, release_points=release_points)
    lib = train_skill_library([new], tmp_path / "skills", cfg)
    stats = json.loads((lib / "place_on" / "stats.json").read_text())
    assert stats["arg_offsets"] is release_points
    skill = SkillLibrary(lib).skill_set().policies["place_on"]
    assert skill.stats.arg_offsets is release_points


def test_a_release_point_skill_refuses_a_world_without_geometry():
    st = NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                   np.zeros(7, np.float32), np.ones(7, np.float32), ["pick", "place_on"], 2,
                   arg_offsets=True)
    skill = LearnedSkill("place_on", _Echo(), st, skill_id=1, ensemble_m=None, fast_path=False)
    with pytest.raises(ValueError, match="trained on release points.*no world_model"):
        skill.reset(["pot_1", "stove_1_cook_region"], object())
    pick = LearnedSkill("pick", _Echo(), st, skill_id=0, ensemble_m=None, fast_path=False)
    pick.reset(["pot_1"], object())            # nothing to shift for a pick
