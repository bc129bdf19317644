"""The release threshold of place skills: one open command per demonstration, so the learned
skill's gripper decision is calibrated to open as often as its data did."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.policies.features import FEATURE_DIM
from robot_skills.policies.learned_skill import LearnedSkill
from robot_skills.policies.normalization import NormStats, calibrate_release_threshold
from robot_skills.robot import Observation


def test_the_threshold_opens_as_often_as_the_demonstrations():
    rng = np.random.default_rng(0)
    commanded = np.ones(1000)
    commanded[rng.choice(1000, 20, replace=False)] = -1.0        # 2 % release steps
    # a regression that stays on the "closed" side of the midpoint at the release steps
    predicted = np.where(commanded < 0, rng.uniform(0.7, 0.85, 1000), rng.uniform(0.9, 1.0, 1000))
    assert not np.any(predicted < 0.0)                            # the midpoint never releases
    tau = calibrate_release_threshold(predicted, commanded, [-1.0, 1.0])
    assert 0.85 <= tau <= 0.9
    opens = predicted < tau
    assert abs(int(opens.sum()) - 20) <= 1 and np.all(commanded[opens] < 0)
    # nothing to match: data that never releases, or levels that are not two
    assert calibrate_release_threshold(predicted, np.ones(1000), [-1.0, 1.0]) is None
    assert calibrate_release_threshold(predicted, commanded, [-1.0, 0.0, 1.0]) is None
    with pytest.raises(ValueError, match="one shape"):
        calibrate_release_threshold(predicted[:10], commanded, [-1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        calibrate_release_threshold(np.full(1000, np.nan), commanded, [-1.0, 1.0])


def _stats(**kw) -> NormStats:
    return NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                     np.zeros(7, np.float32), np.ones(7, np.float32), ["pick", "place_on"], 2,
                     gripper_levels={"pick": [-1.0, 1.0], "place_on": [-1.0, 1.0]}, **kw)


def test_stats_keep_release_thresholds_and_refuse_bad_ones():
    st = _stats(release_thresholds={"place_on": 0.9})
    assert NormStats.from_dict(st.to_dict()).release_thresholds == {"place_on": 0.9}
    d = st.to_dict()
    del d["release_thresholds"]                       # a library trained before calibration
    assert NormStats.from_dict(d).release_thresholds == {}
    for bad in ({"place_on": 1.5}, {"place_on": "0.9"}, [0.9], {"place_on": True}):
        with pytest.raises(ValueError, match="release_thresholds"):
            NormStats.from_dict({**st.to_dict(), "release_thresholds": bad})


class _Gripper(torch.nn.Module):
    """Outputs a fixed gripper command ``g`` (and no motion) for every step of the chunk."""

    cfg = None

    def __init__(self, g: float) -> None:
        super().__init__()
        self.g = g

    def forward(self, x, skill_id):
        out = torch.zeros(x.shape[0], 2, 7)
        out[..., 6] = self.g
        return out


@pytest.mark.parametrize(("g", "thresholds", "want"), [
    (0.85, {"place_on": 0.9}, -1.0),     # below the calibrated threshold: release
    (0.95, {"place_on": 0.9}, 1.0),
    (0.85, {}, 1.0),                     # no threshold: nearest level, stays closed
    (0.85, {"pick": 0.9}, 1.0),          # another skill's threshold is not this one's
])
def test_a_learned_place_skill_releases_below_its_threshold(g, thresholds, want):
    skill = LearnedSkill("place_on", _Gripper(g), _stats(release_thresholds=thresholds),
                         skill_id=1, ensemble_m=None, fast_path=False)
    skill.reset(["cube_1", "plate_1"])
    obs = Observation(np.zeros(7), np.zeros(7), np.array([0.4, 0.0, 0.3]),
                      np.array([1.0, 0.0, 0.0, 0.0]), 0.04,
                      {"cube_1": np.array([0.5, 0, 0.02, 1, 0, 0, 0.0]),
                       "plate_1": np.array([0.5, 0.2, 0.01, 1, 0, 0, 0.0])})
    assert skill.act(obs).gripper == want


@pytest.mark.parametrize("calibrate", [True, False])
def test_training_calibrates_only_skills_that_must_release(tmp_path, calibrate):
    from robot_skills.data.dataset import write_synthetic_demos
    from robot_skills.skills.library import SkillLibrary
    from robot_skills.training.trainer import TrainConfig, train_skill_library

    data = write_synthetic_demos(tmp_path / "d.hdf5", num_demos=4, steps_per_skill=10)
    cfg = TrainConfig(steps=20, lora_steps=5, batch_size=16, chunk_size=2, hidden=16, layers=1,
                      progress=False, tensorboard=False, calibrate_release=calibrate)
    lib = train_skill_library([data], tmp_path / "skills", cfg)
    place = json.loads((lib / "place_on" / "stats.json").read_text())["release_thresholds"]
    pick = json.loads((lib / "pick" / "stats.json").read_text())["release_thresholds"]
    assert SKILL_SPECS["place_on"].needs_open_gripper_at_end
    assert not SKILL_SPECS["pick"].needs_open_gripper_at_end
    assert pick == {}
    if calibrate:
        assert set(place) == {"place_on"} and -1.0 <= place["place_on"] <= 1.0
        skill = SkillLibrary(lib).skill_set().policies["place_on"]
        assert skill.release_threshold == place["place_on"]
    else:
        assert place == {}
