"""Visuomotor skills: image storage (compressed round trip), augmentation, the ResNet encoder and
the image policy (shapes, overfitting a few frames, save/load/tamper), the collection path that
records cameras, and (slow) collect -> train -> evaluate on one libero_goal task."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from robot_skills.data.collect import CollectJob, EpisodeData, _write_record
from robot_skills.data.hdf5 import DemoReader
from robot_skills.data.images import (
    AugmentConfig,
    VisuomotorDataset,
    augment,
    camera_datasets,
    camera_key,
    color_jitter,
    observation_images,
    read_frames,
    write_frames,
)
from robot_skills.domain.verbs import MAX_SKILL_ARGS
from robot_skills.execution.recording import SkillSegment
from robot_skills.policies.features import PROPRIO_DIM, proprio_features, skill_features
from robot_skills.policies.vision import (
    EntityVocab,
    ResNetEncoder,
    VisuomotorBC,
    VisuomotorConfig,
    VisuomotorSkill,
    VisuomotorStats,
    center_crop,
    load_visuomotor,
    save_visuomotor,
)
from robot_skills.robot import Action, Observation

TINY = {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1], "strides": [1, 1, 2, 1], "groups": 4, "num_keypoints": 8,
        "embed_dim": 16, "hidden": 64, "layers": 2, "chunk_size": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scene(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """A rendered-looking RGB image: smooth shading plus a few flat-coloured blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([120 + 60 * yy / h, 100 + 40 * xx / w, 90 + 30 * (xx + yy) / (h + w)], -1)
    for _ in range(4):
        cy, cx, r = rng.integers(8, h - 8), rng.integers(8, w - 8), rng.integers(3, 8)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


def _frames(t: int = 6, h: int = 64, w: int = 64) -> np.ndarray:
    return np.stack([_scene(h, w, s) for s in range(t)])


# ------------------------------------------------------------------------------ storage
@pytest.mark.parametrize("codec", ["gzip", "lzf", "png", "jpeg"])
def test_compressed_frames_round_trip(tmp_path: Path, codec: str) -> None:
    frames = _frames()
    path = tmp_path / "f.hdf5"
    with h5py.File(path, "w") as f:
        write_frames(f.create_group("obs"), camera_key("panda/wrist_cam"), frames, codec,
                     camera="panda/wrist_cam")
    with h5py.File(path, "r") as f:
        cams = camera_datasets(f["obs"])
        assert list(cams) == ["panda/wrist_cam"]
        back = read_frames(cams["panda/wrist_cam"])
        part = read_frames(cams["panda/wrist_cam"], slice(2, 4))
    assert back.shape == frames.shape and back.dtype == np.uint8
    np.testing.assert_array_equal(part, back[2:4])
    err = np.abs(back.astype(int) - frames.astype(int))
    if codec == "jpeg":  # lossy: documented bound (docs/visuomotor.md), quality 90
        assert err.mean() < 3.0 and 0 < err.max() < 128, (err.mean(), err.max())
    else:
        assert err.max() == 0


def test_bad_frames_and_codec_are_refused(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "f.hdf5", "w") as f:
        g = f.create_group("obs")
        with pytest.raises(ValueError, match="uint8"):
            write_frames(g, "x_image", _frames().astype(np.float32))
        with pytest.raises(ValueError, match="codec"):
            write_frames(g, "x_image", _frames(), "webp")


def test_corrupt_jpeg_frame_names_the_frame(tmp_path: Path) -> None:
    path = tmp_path / "f.hdf5"
    with h5py.File(path, "w") as f:
        ds = write_frames(f.create_group("obs"), "cam_image", _frames(3), "jpeg", camera="cam")
        ds[1] = np.zeros(40, np.uint8)
    with h5py.File(path, "r") as f, pytest.raises(ValueError, match=r"cam_image\[1\]"):
        read_frames(f["obs/cam_image"])


# ------------------------------------------------------------------------- augmentation
def test_augmentation_is_deterministic_given_a_seed() -> None:
    img = _scene()
    cfg = AugmentConfig(crop=(56, 56), brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05)
    a = augment(img, cfg, np.random.default_rng(7))
    b = augment(img, cfg, np.random.default_rng(7))
    c = augment(img, cfg, np.random.default_rng(8))
    assert a.shape == (56, 56, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_no_jitter_and_full_crop_is_the_identity() -> None:
    img = _scene()
    cfg = AugmentConfig(crop=(64, 64), brightness=0, contrast=0, saturation=0, hue=0)
    np.testing.assert_array_equal(augment(img, cfg, np.random.default_rng(0)), img)
    np.testing.assert_array_equal(center_crop(img, (60, 60)), img[2:62, 2:62])


def test_colour_jitter_changes_colours_within_bounds() -> None:
    img = _scene()
    cfg = AugmentConfig(crop=(64, 64), brightness=0.1, contrast=0.0, saturation=0.0, hue=0.0)
    out = color_jitter(img, cfg, np.random.default_rng(3))
    shift = out.astype(int) - img.astype(int)
    assert np.abs(shift).max() <= 26 and np.abs(shift).mean() > 0.5  # <= 0.1 * 255 (+ rounding)


# ------------------------------------------------------------------------------ network
@pytest.mark.parametrize("pool", ["spatial_softmax", "avg"])
def test_encoder_and_policy_shapes(pool: str) -> None:
    cfg = VisuomotorConfig(image_size=[64, 64], crop=[56, 56], pool=pool, num_entities=5,
                           num_skills=3, **TINY)
    enc = ResNetEncoder(cfg)
    x = torch.randint(0, 256, (2, 3, 56, 56), dtype=torch.uint8)
    assert enc(x).shape == (2, cfg.embed_dim)
    m = VisuomotorBC(cfg)
    out = m(torch.randint(0, 256, (2, 2, 3, 56, 56), dtype=torch.uint8), torch.zeros(2, PROPRIO_DIM),
            torch.zeros(2, MAX_SKILL_ARGS, dtype=torch.long), torch.tensor([0, 2]))
    assert out.shape == (2, cfg.chunk_size, 7)
    assert cfg.head_input_dim == PROPRIO_DIM + 2 * cfg.embed_dim + MAX_SKILL_ARGS * 16
    with pytest.raises(ValueError, match="images must be"):
        m(torch.zeros(2, 1, 3, 56, 56, dtype=torch.uint8), torch.zeros(2, PROPRIO_DIM),
          torch.zeros(2, MAX_SKILL_ARGS, dtype=torch.long), torch.tensor([0, 2]))


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="crop"):
        VisuomotorConfig(image_size=[64, 64], crop=[72, 72])
    with pytest.raises(ValueError, match="divisible"):
        VisuomotorConfig(widths=[10, 20, 40, 80], groups=8)
    with pytest.raises(ValueError, match="unknown"):
        VisuomotorConfig.from_dict({"no_such": 1})


def test_tiny_image_policy_overfits_a_few_frames() -> None:
    torch.manual_seed(0)
    cfg = VisuomotorConfig(cameras=["cam"], image_size=[32, 32], crop=[32, 32], num_entities=3,
                           num_skills=1, **{**TINY, "chunk_size": 2})
    m = VisuomotorBC(cfg)
    n = 6  # the actions depend on the image only (proprio and ids are the same for every frame)
    imgs = torch.from_numpy(np.stack([_scene(32, 32, s) for s in range(n)])).permute(0, 3, 1, 2)
    batch = {"images": imgs[:, None].contiguous(), "proprio": torch.zeros(n, PROPRIO_DIM),
             "entity_ids": torch.zeros(n, MAX_SKILL_ARGS, dtype=torch.long),
             "skill_id": torch.zeros(n, dtype=torch.long),
             "actions": torch.randn(n, 2, 7, generator=torch.Generator().manual_seed(1))}
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    first = float(m.compute_loss(batch).detach())
    for _ in range(80):
        loss = m.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = float(m.compute_loss(batch))
    assert last < 0.15 * first, (first, last)


# ------------------------------------------------------------------------- save / skill
def _stats(skills: list[str], h: int = 4) -> VisuomotorStats:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 7)) * 0.01
    a[:, 6] = rng.choice([-1.0, 1.0], 50)
    return VisuomotorStats.from_arrays(rng.normal(size=(50, PROPRIO_DIM)), a,
                                       np.zeros(50, np.int64), skills, h)


def _obs(cams: dict[str, np.ndarray]) -> Observation:
    return Observation(joint_pos=np.zeros(7), joint_vel=np.zeros(7), ee_pos=np.array([0.4, 0, 0.3]),
                       ee_quat=np.array([0.0, 1.0, 0.0, 0.0]), gripper_width=0.04,
                       object_poses={"bowl": np.array([0.5, 0, 0.1, 1, 0, 0, 0])}, images=cams)


def test_save_load_and_tamper(tmp_path: Path) -> None:
    cfg = VisuomotorConfig(cameras=["agentview", "panda/wrist_cam"], image_size=[64, 64],
                           crop=[56, 56], num_entities=3, num_skills=1, **TINY)
    model = VisuomotorBC(cfg)
    ents = EntityVocab.build(["bowl"])
    contract = {"name": "pick", "description": "d", "parameters": [{"name": "obj",
                                                                     "type": "entity"}]}
    out = save_visuomotor(tmp_path / "vm", model, _stats(["pick"]), ents, {"pick": contract})
    m2, stats, ents2, manifest = load_visuomotor(out)
    assert ents2 == ents and manifest["contracts"]["pick"]["name"] == "pick"
    for (k, v), v2 in zip(model.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(v, v2), k

    skill = VisuomotorSkill("pick", m2, stats, ents2)
    skill.reset(["bowl"])
    obs = _obs({"agentview": _scene(), "panda/wrist_cam": _scene(seed=1)})
    a = skill.act(obs)
    assert isinstance(a, Action) and np.all(np.abs(a.delta_pos) <= 0.05)
    assert a.gripper in (-1.0, 1.0)  # snapped to the demonstrated levels
    # a 128x128 observation is resized to the recorded 64x64 first: same action as 64x64
    import cv2
    big = {k: cv2.resize(v, (128, 128), interpolation=cv2.INTER_NEAREST)
           for k, v in obs.images.items()}
    np.testing.assert_allclose(skill.predict_chunk(_obs(big)), skill.predict_chunk(obs), atol=1e-4)
    with pytest.raises(KeyError, match="panda/wrist_cam"):
        skill.act(_obs({"agentview": _scene()}))

    y = out / "policy.yaml"
    text = y.read_text()
    y.write_text(text.replace("name: pick", "name: pack", 1))
    with pytest.raises(ValueError, match="manifest_sha256"):
        load_visuomotor(out)
    y.write_text(text)
    w = out / "policy.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_visuomotor(out)


def test_proprio_features_are_the_state_features_without_objects() -> None:
    obs = _obs({})
    np.testing.assert_array_equal(proprio_features(obs), skill_features(obs, ["bowl"])[:PROPRIO_DIM])
    assert proprio_features(obs).shape == (PROPRIO_DIM,)


# ----------------------------------------------------------------- collection -> dataset
def _episode(T: int = 12) -> EpisodeData:
    obs = []
    for t in range(T):
        o = _obs({"agentview": _scene(seed=t), "panda/wrist_cam": _scene(seed=100 + t),
                  "agentview_depth": np.ones((64, 64), np.float32)})
        o.ee_pos = np.array([0.4 + 0.01 * t, 0, 0.3])
        obs.append(o)
    actions = np.zeros((T, 7), np.float32)
    actions[:, 0] = 0.01
    actions[:, 6] = -1.0
    segs = [SkillSegment(0, 6, "pick", ("bowl",), True),
            SkillSegment(6, T, "place_on", ("bowl", "plate"), True)]
    return EpisodeData(obs, actions, np.zeros((T, 3)), segs, {"task": "t", "seed": 0})


def test_collection_records_cameras_and_dataset_reads_them(tmp_path: Path) -> None:
    ep = _episode()
    imgs = observation_images(ep.observations)
    assert sorted(imgs) == ["agentview", "panda/wrist_cam"]  # depth maps are not RGB frames
    path = tmp_path / "rec.hdf5"
    _write_record(path, CollectJob("t.bddl", 0), ep, {"success": True}, "fp")
    with DemoReader(path) as r:
        g = r._group(r.demos[0])
        cams = camera_datasets(g["obs"])
        assert sorted(cams) == ["agentview", "panda/wrist_cam"]
        assert cams["panda/wrist_cam"].name.endswith("panda_wrist_cam_image")
        assert cams["agentview"].compression == "gzip"
        np.testing.assert_array_equal(read_frames(cams["agentview"]), imgs["agentview"])

    aug = AugmentConfig(crop=(56, 56))
    ds = VisuomotorDataset.from_hdf5(path, ["agentview", "panda/wrist_cam"], 4, aug)
    assert len(ds) == 12 and ds.skills == ["pick", "place_on"]
    assert ds.entities.names == ("<none>", "<unknown>", "bowl", "plate")
    np.testing.assert_array_equal(ds.entity_ids[7], [2, 3])
    np.testing.assert_array_equal(ds.entity_ids[0], [2, 0])
    ds.set_stats(ds.compute_stats())
    torch.manual_seed(0)
    item = ds[3]
    assert item["images"].shape == (2, 3, 56, 56) and item["images"].dtype == torch.uint8
    assert item["proprio"].shape == (PROPRIO_DIM,) and item["actions"].shape == (4, 7)
    torch.manual_seed(0)
    assert torch.equal(ds[3]["images"], item["images"])  # augmentation follows torch's seed
    val = ds.select(np.arange(len(ds)), train=False)
    np.testing.assert_array_equal(val[3]["images"][0].permute(1, 2, 0).numpy(),
                                  center_crop(imgs["agentview"][3], (56, 56)))
    with pytest.raises(KeyError, match="frontview"):
        VisuomotorDataset.from_hdf5(path, ["frontview"], 4, aug)


# ---------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_visuomotor_collect_train_eval_on_one_libero_goal_task(tmp_path: Path) -> None:
    from libero_paths import LIBERO_BDDL

    from robot_skills import cli
    from robot_skills.skills.library import VisuomotorSkills

    task = "put_the_bowl_on_the_plate"
    cfg = cli.load_config(["+experiment=visuomotor_cpu", f"run_dir={tmp_path}",
                           f"suite.path={LIBERO_BDDL / 'libero_goal'}", f"+suite.tasks=[{task}]",
                           "workers=1", "collect.mode=task", "collect.demos_per_task=2",
                           "training.steps=40",
                           "training.checkpoint_every=20", "eval.episodes_per_task=1",
                           "eval.video=false", "suite.max_episode_steps=120"])
    cli.run_collect(cfg)
    with DemoReader(tmp_path / "demos.hdf5") as r:
        cams = camera_datasets(r._group(r.demos[0])["obs"])
        assert sorted(cams) == ["agentview", "panda/wrist_cam"]
        assert read_frames(cams["agentview"], slice(0, 1)).shape == (1, 64, 64, 3)
    lib = cli.run_train(cfg)
    skills = VisuomotorSkills(str(lib))()
    assert set(skills.specs) == {"pick", "place_on"}
    results = cli.run_eval(cfg)
    ep = results["episodes"][0]
    assert ep["error"] is None and ep["plans"][0] == ["pick(akita_black_bowl_1)",
                                                      "place_on(akita_black_bowl_1, plate_1)"]
    assert ep["calls"] and all(c["outcome"] != "error" for c in ep["calls"]), ep["calls"]
