"""Damaged and hostile inputs are refused loudly, quickly and by name (issue 7).

One test per case of the damaged-input corpus:

* case 1 — a skill directory that is not a complete skill (deleted ``skill.yaml``, missing
  adapter or stats) is an error naming it when the library is loaded, not a silently smaller
  library;
* case 5 — bad numbers: demonstrations with a 1e30 action, NaN observations or inconsistent
  lengths stop training with an error naming file and demo; NaN weights are refused at load; a
  non-finite network output stops the skill with an error (never a zero action);
* case 6 — unbounded inputs: a FIFO named ``*.bddl``, a YAML alias bomb, a symlink to a 3 GB
  (sparse) file, a 50 MB task file are refused in milliseconds without reading them; hashes
  stream.

Plus hypothesis fuzzing of task files and skill contracts: random bytes and mutations never hang
and never raise anything but the documented error types.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_executor import STOVE, FakeWorld, fake_policies, skill_set
from torch import nn

from robot_skills.data.dataset import (
    DemoValidationError,
    SkillChunkDataset,
    validate_demos,
    write_synthetic_demos,
)
from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.evaluation.perturbations import load_perturbation_suite
from robot_skills.execution.executor import Executor
from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.features import FEATURE_DIM
from robot_skills.policies.learned_skill import LearnedSkill, PolicyOutputError
from robot_skills.policies.lora import inject_lora, lora_parameters, lora_state_dict
from robot_skills.policies.normalization import NormStats
from robot_skills.robot import Observation
from robot_skills.skills.library import SkillLibrary
from robot_skills.skills.skill_dir import (
    SkillFormatError,
    SkillIntegrityError,
    _contract_hash,
    arch_num_params,
    load_base,
    load_skill,
    make_learned_skill,
    read_manifest,
    save_base,
    save_skill,
)
from robot_skills.tasks.bddl import BddlParseError, BddlTask, load_bddl
from robot_skills.tasks.suites import scan_suite
from robot_skills.utils.atomic import file_sha256
from robot_skills.utils.files import (
    FileTooLargeError,
    InputFileError,
    NotARegularFileError,
    YAMLInputError,
    load_yaml_text,
    read_bounded,
    sha256_file,
)

SKILLS = ["pick", "place_on"]
ARCH = BCConfig(num_skills=2, chunk_size=4, hidden=16, layers=2)
FAST_S = 0.5  # "milliseconds": generous for a loaded 2-core CI machine, far below any full read

TASK = """\
(define (problem Mini)
  (:domain robosuite)
  (:language put the bowl on the plate)
  (:regions
    (plate_region (:target main_table) (:ranges ((0.0 0.1 0.02 0.12))))
    (bowl_region (:target main_table) (:ranges ((-0.1 -0.01 -0.08 0.01)))
       (:yaw_rotation ((0.0 0.5))))
  )
  (:fixtures main_table - table)
  (:objects bowl_1 - akita_black_bowl plate_1 - plate)
  (:obj_of_interest bowl_1 plate_1)
  (:init (On bowl_1 main_table_bowl_region) (On plate_1 main_table_plate_region))
  (:goal (And (On bowl_1 plate_1)))
)
"""

# "billion laughs": ~1 KB that expands to 10^9 list entries under a YAML loader with aliases
ALIAS_BOMB = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    for i in range(8))


@contextlib.contextmanager
def _fast(limit: float = FAST_S):
    t0 = time.perf_counter()
    yield
    dt = time.perf_counter() - t0
    assert dt < limit, f"took {dt:.3f} s (limit {limit} s)"


def _in_thread(fn, timeout: float = 5.0):
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) if it blocks."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(timeout)
    assert not th.is_alive(), f"blocked for more than {timeout} s"
    return box


def _stats(chunk=4):
    rng = np.random.default_rng(0)
    return NormStats(rng.normal(size=FEATURE_DIM).astype(np.float32),
                     rng.uniform(0.5, 2, FEATURE_DIM).astype(np.float32),
                     np.zeros(7, np.float32), np.full(7, 0.02, np.float32), SKILLS, chunk, 100)


def _library(root: Path, adapter_scale: float = 0.2) -> Path:
    torch.manual_seed(0)
    base = GoalConditionedBC(ARCH)
    info = save_base(root, base.state_dict(), ARCH, SKILLS)
    for sid, name in enumerate(SKILLS):
        m = GoalConditionedBC(ARCH)
        m.load_state_dict(base.state_dict())
        layers = inject_lora(m, 2, 4.0, ["blocks.*", "head"])
        with torch.no_grad():
            for p in lora_parameters(m):
                p.normal_(0, adapter_scale)
        save_skill(root / name, spec=SKILL_SPECS[name], adapter_state=lora_state_dict(m),
                   stats=_stats(), adapter={"kind": "lora", "rank": 2, "alpha": 4.0,
                                            "target_layers": layers},
                   base=info, skill_id=sid)
    return root


def _obs(pose=None):
    pose = np.array([0.5, 0.1, 0.02, 1, 0, 0, 0]) if pose is None else pose
    return Observation(joint_pos=np.zeros(7), joint_vel=np.zeros(7),
                       ee_pos=np.array([0.4, 0.0, 0.3]), ee_quat=np.array([0.0, 1, 0, 0]),
                       gripper_width=0.05, object_poses={"bowl_1": pose, STOVE: pose})


def _rewrite_manifest(skill_dir: Path, fn) -> None:
    p = skill_dir / "skill.yaml"
    m = yaml.safe_load(p.read_text())
    fn(m)
    m["contract_sha256"] = _contract_hash(m)
    p.write_text(yaml.safe_dump(m, sort_keys=False))


# ============================================================================ case 1
def test_case1_incomplete_skill_dir_is_an_error_naming_it(tmp_path):
    root = _library(tmp_path / "lib")
    (root / ".work").mkdir()  # hidden: trainer checkpoints and atomic-write temporaries
    (root / ".pick.abcd1234.tmp").mkdir()
    assert SkillLibrary(root).verify_all() == {"base": "ok", "pick": "ok", "place_on": "ok"}

    (root / "pick" / "skill.yaml").unlink()
    lib = SkillLibrary(root)
    assert lib.list() == ["pick", "place_on"]  # still listed: it does not silently vanish
    assert "skill.yaml" in lib.incomplete()["pick"]
    with pytest.raises(ValueError, match=r"1 skill\(s\) refused: pick: .*pick/skill\.yaml"):
        lib.skill_set()
    # asking only for the intact skill still refuses the damaged library, naming the directory
    with pytest.raises(ValueError, match=r"pick: .*missing skill\.yaml"):
        lib.skill_set(["place_on"])
    report = lib.verify_all()
    assert "missing" in report["pick"] and "skill.yaml" in report["pick"]
    assert report["place_on"] == "ok"

    (root / "place_on" / "adapter_model.safetensors").unlink()
    (root / "placeholder").mkdir()  # an empty directory is not a skill either
    report = SkillLibrary(root).verify_all()
    assert "adapter_model.safetensors" in report["place_on"]
    assert "skill.yaml" in report["placeholder"]
    with pytest.raises(ValueError, match=r"3 skill\(s\) refused: pick: .*place_on: .*"
                                         r"adapter_model\.safetensors.*placeholder: .*skill\.yaml"):
        SkillLibrary(root).skill_set()


def test_case1_missing_stats_named(tmp_path):
    root = _library(tmp_path / "lib")
    (root / "place_on" / "stats.json").unlink()
    assert "stats.json" in SkillLibrary(root).incomplete()["place_on"]
    assert "stats.json" in SkillLibrary(root).verify_all()["place_on"]
    with pytest.raises(ValueError, match=r"place_on: .*stats\.json"):
        SkillLibrary(root).skill_set()


# ============================================================================ case 5: demos
def _set(path: Path, dataset: str, index, value) -> None:
    with h5py.File(path, "r+") as f:
        a = f[dataset][()]
        a[index] = value
        f[dataset][...] = a


def test_case5_huge_action_in_demos_refused_before_training(tmp_path):
    path = write_synthetic_demos(tmp_path / "demos.hdf5", num_demos=4, steps_per_skill=10)
    assert validate_demos(path) == 4  # synthetic labels sit exactly at the 5 cm bound: they pass
    _set(path, "data/demo_2/actions", (7, 1), 1e30)
    msg = rf"{path}:demo_2: actions\[7, 1\] = 1e\+30 m: translation per step exceeds"
    with pytest.raises(DemoValidationError, match=msg):
        SkillChunkDataset.from_hdf5(path, chunk_size=4)
    with pytest.raises(DemoValidationError, match=msg):
        SkillChunkDataset.whole_task(path, "t", ["cube_1"], 4)
    with pytest.raises(DemoValidationError, match=msg):
        validate_demos(path)
    # rs-train's library training reads its data through from_hdf5: it stops before fitting
    from robot_skills.training.trainer import TrainConfig, train_skill_library
    with pytest.raises(DemoValidationError, match="demo_2"):
        train_skill_library([path], tmp_path / "lib", TrainConfig(steps=1, lora_steps=0))
    assert not (tmp_path / "lib" / "base").exists()


@pytest.mark.parametrize(("dataset", "index", "value", "match"), [
    ("data/demo_1/actions", (3, 4), 0.9, r"actions\[3, 4\] = 0\.9 rad: rotation per step"),
    ("data/demo_1/actions", (3, 6), 2.0, r"actions\[3, 6\] = 2: gripper command outside"),
    ("data/demo_1/actions", (0, 0), np.nan, r"actions\[0, 0\] = nan is not finite"),
    ("data/demo_1/obs/ee_pos", (5, 2), np.inf, r"obs/ee_pos\[5, 2\] = inf is not finite"),
    ("data/demo_1/obs/object_poses/plate_1", (2, 0), np.nan,
     r"obs/object_poses/plate_1\[2, 0\] = nan is not finite"),
])
def test_case5_bad_demo_values_named(tmp_path, dataset, index, value, match):
    path = write_synthetic_demos(tmp_path / "demos.hdf5", num_demos=2, steps_per_skill=6)
    _set(path, dataset, index, value)
    with pytest.raises(DemoValidationError, match=rf"{path}:demo_1: {match}"):
        SkillChunkDataset.from_hdf5(path, chunk_size=3)


def test_case5_inconsistent_demo_lengths_named(tmp_path):
    path = write_synthetic_demos(tmp_path / "demos.hdf5", num_demos=2, steps_per_skill=6)
    with h5py.File(path, "r+") as f:
        g = f["data/demo_0"]
        r = g["rewards"][()]
        del g["rewards"]
        g["rewards"] = r[:-3]
    with pytest.raises(DemoValidationError, match=rf"{path}:demo_0: rewards has shape \(9,\), "
                                                  r"expected 12 rows"):
        SkillChunkDataset.from_hdf5(path, chunk_size=3)
    path = write_synthetic_demos(tmp_path / "demos2.hdf5", num_demos=2, steps_per_skill=6)
    with h5py.File(path, "r+") as f:
        f["data/demo_1"].attrs["num_samples"] = 20
        f["data/demo_1"].attrs["skill_segments"] = json.dumps(
            [{"start": 0, "end": 20, "skill": "pick", "args": ["cube_1"], "success": True}])
    with pytest.raises(DemoValidationError, match=r"demo_1: declares num_samples=20 but has 12"):
        SkillChunkDataset.from_hdf5(path, chunk_size=3)


# ============================================================================ case 5: weights
def test_case5_nan_adapter_refused_at_load_naming_the_file(tmp_path):
    root = _library(tmp_path / "lib")
    loaded = load_skill(root / "place_on", load_base(root)[0])
    state = {k: v.clone() for k, v in loaded.adapter_state.items()}
    state["base_model.model.head.lora_B.weight"][:] = float("nan")
    # a correctly hashed adapter full of NaN: the contract's hashes match, the numbers do not
    save_skill(root / "place_on", spec=SKILL_SPECS["place_on"], adapter_state=state,
               stats=_stats(), adapter=loaded.manifest["adapter"], base=load_base(root)[0],
               skill_id=1)
    report = SkillLibrary(root).verify_all()
    assert ("adapter_model.safetensors: tensor 'base_model.model.head.lora_B.weight' holds"
            in report["place_on"])
    assert "non-finite" in report["place_on"] and report["pick"] == "ok"
    with pytest.raises(ValueError, match=r"place_on: SkillFormatError: .*adapter_model\.safetensors: "
                                         r"tensor 'base_model\.model\.head\.lora_B\.weight' "
                                         r"holds 56 non-finite"):
        SkillLibrary(root).skill_set()


def test_case5_nan_base_and_stats_refused(tmp_path):
    root = tmp_path / "lib"
    sd = GoalConditionedBC(ARCH).state_dict()
    sd["inp.weight"][0, 0] = float("inf")
    save_base(root, sd, ARCH, SKILLS)
    with pytest.raises(SkillFormatError, match=r"base\.safetensors: tensor 'inp\.weight' holds 1 "
                                               r"non-finite"):
        load_base(root)
    p = tmp_path / "stats.json"
    d = _stats().to_dict()
    d["action_std"][2] = float("nan")
    p.write_text(json.dumps(d))  # json writes NaN (not valid JSON, but Python reads it)
    with pytest.raises(ValueError, match=rf"{p}: stats action_std holds NaN/inf"):
        NormStats.load(p)
    # a LoRA update that overflows float32 when merged: refused when the skill is built
    root2 = _library(tmp_path / "lib2", adapter_scale=1e20)
    with pytest.raises(SkillFormatError, match=r"place_on.*NaN/inf"):
        SkillLibrary(root2).get("place_on")


class _NaNNet(nn.Module):
    def forward(self, x, sid):
        return torch.full((x.shape[0], 4, 7), float("nan"))


def _unit_stats():
    return NormStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32),
                     np.zeros(7, np.float32), np.ones(7, np.float32), SKILLS, 4, 1)


def _overflowing_model():
    """Finite weights whose first hidden unit overflows float32 (3e38 * 0.4 + 3e38 = inf), so
    the residual block's LayerNorm turns the activations into NaN."""
    torch.manual_seed(0)
    model = GoalConditionedBC(ARCH)
    with torch.no_grad():
        model.inp.weight[0].zero_()
        model.inp.weight[0, 0] = 3e38  # feature 0 = ee x = 0.4 m (unit stats: not normalised)
        model.inp.bias[0] = 3e38
    return model


def test_case5_non_finite_output_stops_the_skill(tmp_path):
    # finite but overflowing weights, through the numpy fast path and the torch path
    for fast in (True, False):
        skill = LearnedSkill("pick", _overflowing_model(), _unit_stats(), 0, SKILL_SPECS["pick"],
                             fast_path=fast)
        assert (skill._fast is not None) == fast
        skill.reset(["bowl_1"])
        with np.errstate(all="ignore"), pytest.raises(
                PolicyOutputError, match=r"pick\['bowl_1'\]: non-finite action chunk \(the "
                                         r"network diverged\)"):
            skill.act(_obs())
    # the torch path, open loop, and a NaN observation (named as the cause)
    skill = LearnedSkill("pick", _NaNNet(), _stats(), 0, SKILL_SPECS["pick"], ensemble_m=None)
    skill.reset(["bowl_1"])
    with pytest.raises(PolicyOutputError):
        skill.act(_obs())
    ok = LearnedSkill("pick", GoalConditionedBC(ARCH), _stats(), 0, SKILL_SPECS["pick"])
    ok.reset(["bowl_1"])
    assert np.all(np.isfinite(ok.act(_obs()).to_array()))
    with np.errstate(all="ignore"), pytest.raises(PolicyOutputError,
                                                  match="input features hold NaN/inf"):
        ok.act(_obs(np.full(7, np.nan)))
    # NaN weights are refused when the policy is built, not at the first step
    bad = GoalConditionedBC(ARCH)
    with torch.no_grad():
        bad.inp.bias[3] = float("nan")
    with pytest.raises(ValueError, match="parameter 'inp.bias' holds NaN/inf"):
        LearnedSkill("pick", bad, _stats())
    with pytest.raises(ValueError, match="chunks of 4 actions but its stats .* chunk_size=5"):
        LearnedSkill("pick", GoalConditionedBC(ARCH), _stats(chunk=5))


def test_case5_executor_records_non_finite_output_as_error_without_moving():
    world = FakeWorld({("turnon", STOVE)})
    pose = np.array([0.5, 0.1, 0.02, 1, 0, 0, 0])
    observe = world.robot.observe

    def observe_with_poses():
        o = observe()
        o.object_poses = {STOVE: pose}
        return o

    world.robot.observe = observe_with_poses
    policies = fake_policies()
    policies["turn_on"] = LearnedSkill("turn_on", _NaNNet(), _stats(), 0,
                                       SKILL_SPECS["turn_on"])
    res = Executor(world, skill_set(policies), max_replans=0).run()
    assert not res.success
    assert res.calls[0].outcome == "error"
    assert "PolicyOutputError" in res.calls[0].message and "non-finite" in res.calls[0].message
    assert world.steps == 0 and np.all(world.robot.ee == 0.0)  # no zero action was sent either


# ============================================================================ case 6
def test_case6_fifo_task_file_does_not_hang(tmp_path):
    (tmp_path / "good.bddl").write_text(TASK)
    os.mkfifo(tmp_path / "evil.bddl")
    box = _in_thread(lambda: scan_suite(tmp_path, {"table", "akita_black_bowl", "plate"}))
    ok, bad = box["value"]
    assert ok == [tmp_path / "good.bddl"]
    assert bad == {tmp_path / "evil.bddl": ["not a regular file (a FIFO); not read"]}
    box = _in_thread(lambda: load_bddl(tmp_path / "evil.bddl"))
    assert isinstance(box["error"], BddlParseError) and "FIFO" in str(box["error"])
    box = _in_thread(lambda: read_bounded(tmp_path / "evil.bddl", 100, "task file"))
    assert isinstance(box["error"], NotARegularFileError)
    box = _in_thread(lambda: file_sha256(tmp_path / "evil.bddl"))
    assert isinstance(box["error"], NotARegularFileError)
    with pytest.raises(NotARegularFileError, match="is a directory"):
        read_bounded(tmp_path)
    with pytest.raises(NotARegularFileError, match="character device"):
        read_bounded("/dev/zero")


def test_case6_yaml_alias_bomb_refused_in_milliseconds(tmp_path):
    assert len(ALIAS_BOMB) < 1100
    with _fast(), pytest.raises(YAMLInputError, match=r"alias|anchor"):
        load_yaml_text(ALIAS_BOMB)
    root = _library(tmp_path / "lib")
    # a genuine contract with the bomb's keys appended: before, its aliases were expanded by the
    # contract hash (json.dumps) — 20 s and 1.5 GB later still running
    p = root / "pick" / "skill.yaml"
    p.write_text(p.read_text() + ALIAS_BOMB)
    with _fast(), pytest.raises(SkillFormatError, match=r"pick/skill\.yaml is not valid YAML: "
                                                        r"anchor &a at line \d+, column 4: "
                                                        r"aliases and anchors are not allowed"):
        read_manifest(root / "pick")
    with _fast():
        assert "anchors are not allowed" in SkillLibrary(root).verify_all()["pick"]
    (root / "base" / "base.yaml").write_text(ALIAS_BOMB)
    with _fast(), pytest.raises(SkillFormatError, match="anchors are not allowed"):
        load_base(root)
    spec = tmp_path / "bomb.yaml"
    spec.write_text(ALIAS_BOMB)
    with _fast(), pytest.raises(ValueError, match="malformed perturbation YAML.*anchor"):
        load_perturbation_suite(spec)
    with _fast(), pytest.raises(YAMLInputError, match="nested deeper than 64"):
        load_yaml_text("[" * 5000 + "]" * 5000)


def test_case6_symlink_to_3gb_file_refused_before_reading(tmp_path):
    big = tmp_path / "huge.bin"
    with open(big, "wb") as f:
        f.truncate(3 << 30)  # sparse: no disk, but reading it would allocate 3 GB
    root = _library(tmp_path / "lib")
    a = root / "pick" / "adapter_model.safetensors"
    a.unlink()
    a.symlink_to(big)
    tracemalloc.start()
    try:
        with _fast(), pytest.raises(SkillIntegrityError,
                                    match=r"adapter_model\.safetensors: 3221225472 "
                                          r"bytes, but .* records \d+ bytes"):
            SkillLibrary(root).get("pick")
        # an older contract (no recorded sizes) is still refused before reading: the size cap
        _rewrite_manifest(root / "pick", lambda m: m.pop("file_sizes"))
        with _fast(), pytest.raises(SkillFormatError, match=r"adapter_model\.safetensors is 3221225472 "
                                                            r"bytes, over the limit"):
            SkillLibrary(root).get("pick")
        for name in ("skill.yaml", "stats.json"):
            p = root / "place_on" / name
            keep = p.read_bytes()
            p.unlink()
            p.symlink_to(big)
            with _fast(), pytest.raises((SkillFormatError, SkillIntegrityError),
                                        match=rf"{name}.* (3221225472 bytes|3 GiB)"):
                SkillLibrary(root).get("place_on")
            p.unlink()
            p.write_bytes(keep)
        s = root / "base" / "base.safetensors"
        s.unlink()
        s.symlink_to(big)
        with _fast(), pytest.raises(SkillIntegrityError, match=r"base\.safetensors: 3221225472"):
            load_base(root)
        with _fast(), pytest.raises(FileTooLargeError, match=r"3 GiB .* over the limit of 1 MiB"):
            NormStats.load(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"peak Python allocation {peak} bytes"


def test_case6_big_task_file_refused_by_size(tmp_path):
    p = tmp_path / "big.bddl"
    with open(p, "wb") as f:
        f.truncate(50 << 20)
    with _fast(), pytest.raises(BddlParseError, match=r"big\.bddl is 50 MiB .* over the limit "
                                                      r"of 1 MiB"):
        load_bddl(p)
    (tmp_path / "good.bddl").write_text(TASK)
    with _fast():
        ok, bad = scan_suite(tmp_path, {"table", "akita_black_bowl", "plate"})
    assert ok == [tmp_path / "good.bddl"] and "over the limit" in bad[p][0]
    assert isinstance(load_bddl(tmp_path / "good.bddl", max_bytes=len(TASK)), BddlTask)
    with pytest.raises(BddlParseError, match="over the limit"):
        load_bddl(tmp_path / "good.bddl", max_bytes=len(TASK) - 1)


def test_case6_hashes_stream_in_constant_memory(tmp_path):
    p = tmp_path / "sparse.bin"
    with open(p, "wb") as f:
        f.truncate(48 << 20)
    tracemalloc.start()
    try:
        digest = file_sha256(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == sha256_file(p) and len(digest) == 64
    assert peak < 4 << 20, f"hashing a 48 MiB file allocated {peak} bytes"


def test_case6_contracts_record_sizes_and_old_contracts_still_load(tmp_path):
    root = _library(tmp_path / "lib")
    m = read_manifest(root / "pick")
    assert m["file_sizes"] == {f: (root / "pick" / f).stat().st_size
                               for f in ("adapter_config.json",
                                         "adapter_model.safetensors", "stats.json")}
    assert yaml.safe_load((root / "base" / "base.yaml").read_text())["size"] == \
        (root / "base" / "base.safetensors").stat().st_size
    ref = SkillLibrary(root).get("pick")
    ref.reset(["bowl_1"])
    want = ref.act(_obs()).to_array()
    # contracts written before sizes were recorded: loaded by streaming the hash
    _rewrite_manifest(root / "pick", lambda m: m.pop("file_sizes"))
    bp = root / "base" / "base.yaml"
    b = yaml.safe_load(bp.read_text())
    b.pop("size")
    bp.write_text(yaml.safe_dump(b, sort_keys=False))
    old = SkillLibrary(root)
    assert old.verify_all() == {"base": "ok", "pick": "ok", "place_on": "ok"}
    s = old.get("pick")
    s.reset(["bowl_1"])
    np.testing.assert_array_equal(s.act(_obs()).to_array(), want)


def test_arch_num_params_matches_the_network():
    for cfg in (ARCH, BCConfig(num_skills=5, chunk_size=10, hidden=64, layers=4),
                BCConfig(num_skills=1, chunk_size=1, hidden=8, layers=1, skill_emb_dim=3)):
        assert arch_num_params(cfg) == sum(p.numel() for p in GoalConditionedBC(cfg).parameters())


def test_absurd_architecture_refused_before_allocating(tmp_path):
    root = _library(tmp_path / "lib")
    _rewrite_manifest(root / "pick", lambda m: m["base_policy"]["arch"].update(hidden=10 ** 9))
    with _fast(), pytest.raises(SkillFormatError, match="weights hold .* parameters, the recorded "
                                                        "architecture"):
        SkillLibrary(root).get("pick")


# ============================================================================ fuzzing
_FUZZ = settings(max_examples=120, deadline=2000, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])


def _mutate(data, base: bytes) -> bytes:
    op = data.draw(st.sampled_from(["random", "truncate", "flip", "insert", "delete", "splice"]))
    if op == "random":
        return data.draw(st.binary(max_size=400))
    i = data.draw(st.integers(0, len(base)))
    if op == "truncate":
        return base[:i]
    if op == "flip":
        i = min(i, len(base) - 1)
        return base[:i] + bytes([base[i] ^ data.draw(st.integers(1, 255))]) + base[i + 1:]
    if op == "insert":
        return base[:i] + data.draw(st.sampled_from(
            [b"\x00", b"\xff\xfe", b"(", b")", b"&a ", b"*a", b"[", b"{", b": ", b"\n- ", b"!!set ",
             b"1e999", b"-.inf", b".nan", b"9" * 5000, b"\t"])) + base[i:]
    if op == "delete":
        j = data.draw(st.integers(i, min(len(base), i + 40)))
        return base[:i] + base[j:]
    j = data.draw(st.integers(0, len(base)))
    return base[:i] + base[j:j + 50] + base[i:]


@pytest.fixture(scope="module")
def fuzz_lib(tmp_path_factory):
    root = _library(tmp_path_factory.mktemp("fuzz") / "lib")
    return root, {f: (root / "pick" / f).read_bytes() for f in ("skill.yaml", "stats.json")}


@_FUZZ
@given(data=st.data())
def test_fuzz_task_files_only_raise_bddl_parse_error(tmp_path_factory, data):
    p = tmp_path_factory.getbasetemp() / "fuzz.bddl"
    p.write_bytes(_mutate(data, TASK.encode()))
    t0 = time.perf_counter()
    try:
        task = load_bddl(p)
    except BddlParseError:
        pass
    else:
        assert isinstance(task, BddlTask)
    assert time.perf_counter() - t0 < 1.0


@_FUZZ
@given(data=st.data())
def test_fuzz_contract_bytes_only_raise_skill_errors(fuzz_lib, data):
    root, original = fuzz_lib
    name = data.draw(st.sampled_from(["skill.yaml", "stats.json"]))
    p = root / "pick" / name
    new = _mutate(data, original[name])
    p.write_bytes(new)
    if name == "stats.json" and data.draw(st.booleans()):  # record the new file in the contract
        m = yaml.safe_load(original["skill.yaml"])
        m["files"][name] = hashlib.sha256(new).hexdigest()
        m["file_sizes"][name] = len(new)
        m["contract_sha256"] = _contract_hash(m)
        (root / "pick" / "skill.yaml").write_text(yaml.safe_dump(m, sort_keys=False))
    t0 = time.perf_counter()
    try:
        make_learned_skill(load_skill(root / "pick", load_base(root)[0]), load_base(root)[1])
    except (SkillFormatError, SkillIntegrityError):
        pass
    finally:
        for f, b in original.items():
            (root / "pick" / f).write_bytes(b)
    assert time.perf_counter() - t0 < 1.0


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers(-3, 3), children, max_size=4),
    max_leaves=12)


def _paths(d, prefix=()):
    yield prefix
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _paths(v, (*prefix, i))


@_FUZZ
@given(data=st.data())
def test_fuzz_contract_fields_with_valid_hash_only_raise_skill_errors(fuzz_lib, data):
    """Structured mutations that keep ``contract_sha256`` consistent reach past the hash check
    into every field's validation, weights fitting and network building."""
    root, original = fuzz_lib
    m = yaml.safe_load(original["skill.yaml"])
    paths = [p for p in _paths(m) if p and p[0] != "contract_sha256"]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(_yaml_values)
    node = m
    for k in path[:-1]:
        node = node[k]
    if data.draw(st.booleans()) and isinstance(node, dict):
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    try:
        m["contract_sha256"] = _contract_hash(m)
        text = yaml.safe_dump(m, sort_keys=False)
    except (TypeError, ValueError, yaml.YAMLError):
        return  # not representable as a contract file at all
    p = root / "pick" / "skill.yaml"
    p.write_text(text)
    t0 = time.perf_counter()
    try:
        lib = SkillLibrary(root)
        lib.get("pick")
        lib.verify_all()
    except (SkillFormatError, SkillIntegrityError):
        pass
    finally:
        p.write_bytes(original["skill.yaml"])
    assert time.perf_counter() - t0 < 1.5


def test_fuzz_library_restored(fuzz_lib):
    root, _ = fuzz_lib
    assert SkillLibrary(root).verify_all() == {"base": "ok", "pick": "ok", "place_on": "ok"}


def test_documented_error_types_are_value_errors():
    for e in (InputFileError, NotARegularFileError, FileTooLargeError, YAMLInputError,
              DemoValidationError, SkillFormatError, SkillIntegrityError, BddlParseError):
        assert issubclass(e, ValueError)
    assert issubclass(PolicyOutputError, RuntimeError)
    assert math.isfinite(FAST_S)


def test_foreign_datasets_are_checked_in_normalised_action_units(tmp_path):
    """A robomimic/LIBERO file (no robot_skills format attribute) holds OSC actions in [-1, 1]:
    they pass; the same values in one of our files (metres) are refused."""
    import h5py

    from robot_skills.data.dataset import SkillChunkDataset, write_synthetic_demos

    ours = tmp_path / "ours.hdf5"
    write_synthetic_demos(ours, num_demos=2)
    with h5py.File(ours, "r+") as f:
        f["data/demo_0/actions"][3, 0] = 0.8  # 0.8 m in one step: impossible
    with pytest.raises(DemoValidationError, match="0.8"):
        SkillChunkDataset.from_hdf5(ours, chunk_size=4)
    with h5py.File(ours, "r+") as f:
        del f["data"].attrs["format"]  # now it reads as a foreign, normalised dataset
    assert len(SkillChunkDataset.from_hdf5(ours, chunk_size=4)) > 0
