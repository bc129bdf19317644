"""Camera images of demonstrations: compressed HDF5 storage, decoding and training augmentation.

Storage (one dataset per camera under a demo's ``obs`` group, robomimic-style ``<name>_image``
keys, see :func:`camera_key`)::

    obs/agentview_image        (T, H, W, 3) uint8   codec "lzf" or "gzip": HDF5 chunked, one chunk
                                                     per frame, lossless (the default, "gzip")
    obs/panda_wrist_cam_image  (T,) vlen uint8       codec "png" / "jpeg": one OpenCV-encoded
                                                     image per row (``cv2.imencode``)

Every camera dataset carries the attributes ``camera`` (the scene camera's name, e.g.
``panda/wrist_cam``), ``codec`` and ``shape`` (``[T, H, W, 3]``). Images are RGB, row 0 at the top,
as :class:`~robot_skills.robot.Observation` holds them. The codec is chosen per file (the
``DemoWriter``'s ``image_codec``); :func:`read_frames` decodes any of them, so readers need not
know which was used. Measured trade-offs (``docs/visuomotor.md``): the HDF5 filters are lossless
and read back as plain ``(T, H, W, 3)`` arrays (what robomimic, LIBERO and the LeRobot export
expect); JPEG is the smallest but lossy; PNG is lossless but the slowest to decode.

Augmentation (training only, OpenCV on uint8 ``(H, W, 3)`` images, DrQ / robomimic style):
a random crop of ``crop`` pixels out of the recorded image (a random shift of up to ``H - crop``
pixels) and colour jitter (brightness, contrast, saturation, hue). Evaluation uses the centre
crop (:func:`robot_skills.policies.vision.center_crop`). Every random draw comes from the
``numpy.random.Generator`` passed in, so a seed fixes the result.

:class:`VisuomotorDataset` gathers the training samples of image-based skills: per step of a skill
segment, the cameras' images, the proprioception (end-effector pose and gripper, no object poses),
the skill id, the argument entities' ids and the action chunk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
import torch

from robot_skills.domain.verbs import MAX_SKILL_ARGS
from robot_skills.policies.features import PROPRIO_DIM
from robot_skills.policies.vision import (
    EntityVocab,
    VisuomotorStats,
    center_crop,
    hwc_to_chw,
)
from robot_skills.robot import ACTION_DIM, Observation

CODECS = ("gzip", "lzf", "png", "jpeg")
"""Image codecs :func:`write_frames` accepts."""
DEFAULT_CODEC = "gzip"
"""The default: lossless, readable by any HDF5 tool as a plain array (see docs/visuomotor.md)."""
IMAGE_SUFFIX = "_image"


def camera_key(camera: str) -> str:
    """The HDF5 ``obs`` key of scene camera ``camera``: ``/`` becomes ``_`` (an HDF5 path
    separator) and ``_image`` is appended (``panda/wrist_cam`` -> ``panda_wrist_cam_image``)."""
    if not camera:
        raise ValueError("camera name must be non-empty")
    return camera.replace("/", "_") + IMAGE_SUFFIX


def is_image_stack(a: Any) -> bool:
    """True for a ``(T, H, W, 3)`` uint8 array (a camera's frames)."""
    return isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.ndim == 4 and a.shape[-1] == 3


def observation_images(observations: Sequence[Observation]) -> dict[str, np.ndarray]:
    """Stack the RGB camera images of ``observations`` per camera.

    Args:
        observations: ``T`` observations; cameras are those of step 0 whose image is
            ``(H, W, 3)`` uint8 (depth images are left out).

    Returns:
        ``{camera name: (T, H, W, 3) uint8}``; empty when step 0 has no RGB image.

    Raises:
        ValueError: a step lacks a camera of step 0, or an image's shape changes (names both).
    """
    if not observations:
        return {}
    first = observations[0].images or {}
    cams = [c for c, im in first.items()
            if isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim == 3
            and im.shape[-1] == 3]
    out: dict[str, np.ndarray] = {}
    for c in cams:
        shape = first[c].shape
        frames = np.empty((len(observations), *shape), np.uint8)
        for t, o in enumerate(observations):
            im = (o.images or {}).get(c)
            if im is None:
                raise ValueError(f"observation {t} lacks camera {c!r} that step 0 has")
            if im.shape != shape:
                raise ValueError(f"camera {c!r}: image {t} has shape {im.shape}, step 0 {shape}")
            frames[t] = im
        out[c] = frames
    return out


# ------------------------------------------------------------------------------------ codecs
def _cv2() -> Any:
    import cv2

    cv2.setNumThreads(1)  # per-image work is tiny; threads only contend with the trainer's
    return cv2


def encode_image(img: np.ndarray, codec: str, quality: int = 90) -> np.ndarray:
    """One RGB image -> ``(n,)`` uint8 bytes of a PNG or JPEG file (OpenCV).

    Args:
        img: ``(H, W, 3)`` uint8 RGB.
        codec: ``"png"`` or ``"jpeg"``.
        quality: JPEG quality 1..100 (ignored for PNG, which uses compression level 3).

    Raises:
        ValueError: a bad image, codec or quality; OpenCV failing to encode.
    """
    if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3
            and img.shape[-1] == 3):
        raise ValueError(f"encode_image needs an (H, W, 3) uint8 image, got "
                         f"{getattr(img, 'shape', None)} {getattr(img, 'dtype', type(img))}")
    cv2 = _cv2()
    bgr = np.ascontiguousarray(img[:, :, ::-1])
    if codec == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    elif codec == "jpeg":
        if not 1 <= int(quality) <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        raise ValueError(f"encode_image codec must be 'png' or 'jpeg', got {codec!r}")
    if not ok:
        raise ValueError(f"OpenCV could not encode a {img.shape} image as {codec}")
    return np.asarray(buf, np.uint8).reshape(-1)


def decode_image(buf: np.ndarray, where: str = "<image>") -> np.ndarray:
    """PNG/JPEG bytes -> ``(H, W, 3)`` uint8 RGB (OpenCV).

    Raises:
        ValueError: the bytes are not a decodable image (names ``where``).
    """
    cv2 = _cv2()
    img = cv2.imdecode(np.asarray(buf, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{where}: not a decodable PNG/JPEG image ({len(buf)} bytes)")
    return img[:, :, ::-1]


def write_frames(group: h5py.Group, key: str, frames: np.ndarray, codec: str = DEFAULT_CODEC,
                 camera: str | None = None, quality: int = 90) -> h5py.Dataset:
    """Store one camera's frames compressed as ``group[key]``.

    Args:
        group: the demo's ``obs`` group (open for writing).
        key: dataset name (see :func:`camera_key`).
        frames: ``(T, H, W, 3)`` uint8 RGB.
        codec: ``"gzip"`` / ``"lzf"`` (HDF5 filter, chunk = one frame, lossless) or
            ``"png"`` / ``"jpeg"`` (OpenCV-encoded bytes per frame in a variable-length dataset).
        camera: the scene camera's name, stored as the ``camera`` attribute (default ``key``).
        quality: JPEG quality (codec ``"jpeg"`` only).

    Returns:
        The dataset written.

    Raises:
        ValueError: ``frames`` is not ``(T>0, H, W, 3)`` uint8, or an unknown codec.
    """
    if not is_image_stack(frames) or frames.shape[0] == 0:
        raise ValueError(f"{key}: camera frames must be (T>0, H, W, 3) uint8, got "
                         f"{getattr(frames, 'shape', None)} {getattr(frames, 'dtype', '')}")
    if codec not in CODECS:
        raise ValueError(f"{key}: image codec must be one of {CODECS}, got {codec!r}")
    T, H, W, _ = frames.shape
    if codec in ("gzip", "lzf"):
        opts: dict[str, Any] = {"compression": codec}
        if codec == "gzip":
            opts["compression_opts"] = 4
        ds = group.create_dataset(key, data=frames, chunks=(1, H, W, 3), shuffle=False,
                                  track_times=False, **opts)
    else:
        ds = group.create_dataset(key, shape=(T,), dtype=h5py.vlen_dtype(np.uint8),
                                  track_times=False)
        for t in range(T):
            ds[t] = encode_image(frames[t], codec, quality)
    ds.attrs["camera"] = camera or key
    ds.attrs["codec"] = codec
    ds.attrs["shape"] = np.asarray([T, H, W, 3], np.int64)
    return ds


def frames_shape(ds: h5py.Dataset) -> tuple[int, int, int, int]:
    """``(T, H, W, 3)`` of a camera dataset written by :func:`write_frames` (or a plain
    robomimic ``(T, H, W, 3)`` uint8 image dataset).

    Raises:
        ValueError: the dataset is not a camera dataset (names it).
    """
    if "shape" in ds.attrs:
        return tuple(int(v) for v in ds.attrs["shape"])  # type: ignore[return-value]
    if ds.dtype == np.uint8 and ds.ndim == 4 and ds.shape[-1] == 3:
        return tuple(int(v) for v in ds.shape)  # type: ignore[return-value]
    raise ValueError(f"{ds.file.filename}:{ds.name} is not a camera dataset "
                     f"(shape {ds.shape}, dtype {ds.dtype})")


def read_frames(ds: h5py.Dataset, rows: slice | np.ndarray | None = None) -> np.ndarray:
    """Decode frames of a camera dataset (any codec of :func:`write_frames`, or a plain
    ``(T, H, W, 3)`` uint8 dataset) to ``(n, H, W, 3)`` uint8 RGB.

    Args:
        ds: the camera dataset.
        rows: a slice or sorted index array of frames (None: all).

    Raises:
        ValueError: not a camera dataset, or a frame that does not decode to the stored shape
            (names file, dataset and frame).
    """
    T, H, W, _ = frames_shape(ds)
    rows = slice(None) if rows is None else rows
    codec = str(ds.attrs.get("codec", "raw"))
    if codec in ("gzip", "lzf", "raw"):
        return np.asarray(ds[rows], np.uint8)
    idx = np.arange(T)[rows]
    raw = ds[idx] if len(idx) else []
    out = np.empty((len(idx), H, W, 3), np.uint8)
    for i, (t, buf) in enumerate(zip(idx, raw, strict=True)):
        img = decode_image(buf, f"{ds.file.filename}:{ds.name}[{t}]")
        if img.shape != (H, W, 3):
            raise ValueError(f"{ds.file.filename}:{ds.name}[{t}] decodes to {img.shape}, "
                             f"stored shape {(H, W, 3)}")
        out[i] = img
    return out


def camera_datasets(obs_group: h5py.Group) -> dict[str, h5py.Dataset]:
    """Scene camera name -> its dataset, for every camera dataset in a demo's ``obs`` group
    (written by :func:`write_frames`, or robomimic-style ``*_image`` uint8 arrays)."""
    out = {}
    for k, ds in obs_group.items():
        if not isinstance(ds, h5py.Dataset):
            continue
        if "codec" in ds.attrs and "camera" in ds.attrs:
            cam = ds.attrs["camera"]
            out[cam.decode() if isinstance(cam, bytes) else str(cam)] = ds
        elif k.endswith(IMAGE_SUFFIX) and ds.dtype == np.uint8 and ds.ndim == 4:
            out[k[: -len(IMAGE_SUFFIX)]] = ds
    return out


# ------------------------------------------------------------------------------ augmentation
@dataclass(frozen=True)
class AugmentConfig:
    """Training-time image augmentation.

    Attributes:
        crop: ``(height, width)`` of the random crop (the policy's input size); the recorded
            image must be at least this large. Equal sizes disable the shift.
        brightness: additive brightness jitter, fraction of 255, drawn from ``U(-b, b)``.
        contrast: contrast factor drawn from ``U(1 - c, 1 + c)``.
        saturation: saturation factor drawn from ``U(1 - s, 1 + s)``.
        hue: hue shift drawn from ``U(-h, h)``, fraction of a full turn (0.5 = 180 degrees).
    """

    crop: tuple[int, int] = (76, 76)
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02

    def __post_init__(self) -> None:
        crop = tuple(int(v) for v in self.crop)
        if len(crop) != 2 or min(crop) < 8:
            raise ValueError(f"augment crop must be (height, width) >= 8 pixels, got {self.crop}")
        object.__setattr__(self, "crop", crop)
        for k in ("brightness", "contrast", "saturation", "hue"):
            v = float(getattr(self, k))
            if not (np.isfinite(v) and 0 <= v <= (0.5 if k == "hue" else 1.0)):
                raise ValueError(f"augment {k} must be in [0, {0.5 if k == 'hue' else 1}], "
                                 f"got {v}")


def random_crop(img: np.ndarray, crop: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A ``crop``-sized window of ``img`` at a uniformly random offset (a random shift).

    Args:
        img: ``(H, W, C)`` image.
        crop: ``(h, w)`` with ``h <= H``, ``w <= W``.
        rng: random source.

    Raises:
        ValueError: the crop is larger than the image.
    """
    H, W = img.shape[:2]
    h, w = crop
    if h > H or w > W:
        raise ValueError(f"crop {crop} is larger than the image {(H, W)}")
    y = int(rng.integers(0, H - h + 1))
    x = int(rng.integers(0, W - w + 1))
    return img[y:y + h, x:x + w]


def color_jitter(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue of an RGB uint8 image (OpenCV).

    Args:
        img: ``(H, W, 3)`` uint8 RGB.
        cfg: jitter strengths (all 0 returns the image unchanged, no draw made).
        rng: random source.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if cfg.brightness == cfg.contrast == cfg.saturation == cfg.hue == 0:
        return img
    cv2 = _cv2()
    b = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
    c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    s = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
    h = rng.uniform(-cfg.hue, cfg.hue)
    out = np.ascontiguousarray(img)
    if cfg.saturation > 0 or cfg.hue > 0:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float32)  # H in [0, 180)
        hsv[..., 0] = np.mod(hsv[..., 0] + h * 180.0, 180.0)
        hsv[..., 1] = np.clip(hsv[..., 1] * s, 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    mean = float(out.mean())
    # contrast about the image mean, then brightness: x' = c (x - m) + m + b
    return cv2.convertScaleAbs(out, alpha=c, beta=(1 - c) * mean + b)


def augment(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Training augmentation of one camera image: random crop to ``cfg.crop``, then colour
    jitter. ``(H, W, 3)`` uint8 in, ``(*cfg.crop, 3)`` uint8 out; deterministic given ``rng``."""
    return color_jitter(random_crop(img, cfg.crop, rng), cfg, rng)


# ----------------------------------------------------------------------------------- dataset
def _as_path_list(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = [os.fspath(p) for p in paths]
    if not out:
        raise ValueError("no demonstration files given")
    return out




def demo_cameras(reader: Any, demo: str, path: str | os.PathLike,
                 cameras: Sequence[str]) -> dict[str, Any]:
    """Camera name -> its frames dataset in demo ``demo`` of an open ``DemoReader``.

    Raises:
        KeyError: naming the file, the demo and the cameras in ``cameras`` it lacks.
    """
    cams = camera_datasets(reader._group(demo)["obs"])
    missing = [c for c in cameras if c not in cams]
    if missing:
        raise KeyError(f"{path}:{demo} has no images of camera(s) {missing}; it has "
                       f"{sorted(cams)} (collect with world.cameras=...)")
    return cams

def index_pieces(pieces: Sequence[tuple], skills: Sequence[str] | None,
                 paths: Sequence[str | os.PathLike], skill_vocab: Sequence[str] | None,
                 entities: EntityVocab | None
                 ) -> tuple[list[str], dict[str, int], EntityVocab, np.ndarray]:
    """Skill vocabulary, skill ids and per-sample entity ids of visuomotor sample pieces
    ``(proprio, frame_index, skill, args, actions, mask, episode)`` (one per segment).

    Returns:
        ``(vocab, skill -> id, entity vocabulary, entity ids (N, MAX_SKILL_ARGS) int64)``; the
        entity vocabulary is built from the pieces' arguments when ``entities`` is None.

    Raises:
        ValueError: no pieces, or a skill that is not in ``skill_vocab``.
    """
    if not pieces:
        raise ValueError(f"no samples for skills {skills} in {list(map(str, paths))}")
    found = sorted({pc[2] for pc in pieces})
    vocab = list(skill_vocab) if skill_vocab is not None else found
    unknown = [s for s in found if s not in vocab]
    if unknown:
        raise ValueError(f"skills {unknown} are not in the vocabulary {vocab}")
    ids = {s: i for i, s in enumerate(vocab)}
    if entities is None:
        entities = EntityVocab.build(a for pc in pieces for a in pc[3])
    ent = np.concatenate([np.tile(entities.encode(pc[3]), (len(pc[0]), 1)) for pc in pieces])
    return vocab, ids, entities, ent

class VisuomotorDataset(torch.utils.data.Dataset):
    """In-memory samples of image-based skills (frames stay compressed-free uint8 in RAM).

    Build with :meth:`from_hdf5`. Item ``i`` (after :meth:`set_stats`) is a dict of tensors:
    ``images (n_cams, 3, h, w)`` uint8 (augmented crop when ``train``, centre crop otherwise),
    ``proprio (8,)`` float32 normalised, ``entity_ids (MAX_SKILL_ARGS,)`` int64, ``skill_id ()``
    int64, ``actions (H, 7)`` float32 normalised, ``mask (H,)`` float32.

    The augmentation of an item draws its seed from torch's global generator, which the trainer
    seeds and checkpoints (and which ``DataLoader`` workers derive from it), so a run — and a
    resumed one — sees the same augmented images for the same seed.

    Attributes:
        frames: camera name -> ``(F, H, W, 3)`` uint8, every recorded frame used.
        frame_index: ``(N,)`` int64 row of each sample in ``frames``.
        proprio: ``(N, 8)`` float32 raw proprioception (features ``[0:8]``).
        entity_ids: ``(N, MAX_SKILL_ARGS)`` int64 argument ids in :attr:`entities`.
        skill_ids, actions, mask, episode_ids: as :class:`SkillChunkDataset`.
        skills: skill vocabulary. entities: argument-entity vocabulary. cameras: camera order.
    """

    def __init__(self, frames: Mapping[str, np.ndarray], frame_index: np.ndarray,
                 proprio: np.ndarray, entity_ids: np.ndarray, skill_ids: np.ndarray,
                 actions: np.ndarray, mask: np.ndarray, episode_ids: np.ndarray,
                 skills: Sequence[str], entities: EntityVocab, chunk_size: int,
                 augment_cfg: AugmentConfig, train: bool = True) -> None:
        n = frame_index.shape[0]
        self.cameras = list(frames)
        if not self.cameras:
            raise ValueError("a visuomotor dataset needs at least one camera")
        shapes = {c: f.shape for c, f in frames.items()}
        if not (proprio.shape == (n, PROPRIO_DIM) and entity_ids.shape == (n, MAX_SKILL_ARGS)
                and skill_ids.shape == (n,) and actions.shape == (n, chunk_size, ACTION_DIM)
                and mask.shape == (n, chunk_size) and episode_ids.shape == (n,)):
            raise ValueError("inconsistent sample array shapes")
        for c, s in shapes.items():
            if s[1] < augment_cfg.crop[0] or s[2] < augment_cfg.crop[1]:
                raise ValueError(f"camera {c!r} images are {s[1:3]}, smaller than the crop "
                                 f"{augment_cfg.crop}")
        self.frames = dict(frames)
        self.frame_index, self.proprio, self.entity_ids = frame_index, proprio, entity_ids
        self.skill_ids, self.actions, self.mask = skill_ids, actions, mask
        self.episode_ids = episode_ids
        self.skills, self.entities, self.chunk_size = list(skills), entities, int(chunk_size)
        self.augment_cfg, self.train = augment_cfg, bool(train)
        self._stats: VisuomotorStats | None = None
        self._pn: np.ndarray | None = None
        self._an: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    def compute_stats(self) -> VisuomotorStats:
        """Proprioception and action mean / std (gripper action: mean 0, std 1), gripper levels
        per skill, as the state-based policy's statistics."""
        return VisuomotorStats.from_arrays(self.proprio, self.actions[:, 0, :], self.skill_ids,
                                           self.skills, self.chunk_size)

    def set_stats(self, stats: VisuomotorStats) -> VisuomotorDataset:
        """Normalise proprioception and actions with ``stats`` (needed before indexing)."""
        self._stats = stats
        self._pn = stats.normalize_proprio(self.proprio)
        self._an = stats.normalize_actions(self.actions)
        return self

    def select(self, index: np.ndarray, train: bool | None = None) -> VisuomotorDataset:
        """A dataset of the samples at ``index`` sharing the frames (and stats, if set)."""
        ds = VisuomotorDataset(self.frames, self.frame_index[index], self.proprio[index],
                               self.entity_ids[index], self.skill_ids[index], self.actions[index],
                               self.mask[index], self.episode_ids[index], self.skills,
                               self.entities, self.chunk_size, self.augment_cfg,
                               self.train if train is None else train)
        if self._stats is not None:
            ds.set_stats(self._stats)
        return ds

    def image_batch(self, i: int, rng: np.random.Generator | None) -> np.ndarray:
        """``(n_cams, 3, h, w)`` uint8 images of sample ``i``: augmented with ``rng``, or the
        centre crop when ``rng`` is None."""
        f = int(self.frame_index[i])
        out = []
        for c in self.cameras:
            img = self.frames[c][f]
            img = (augment(img, self.augment_cfg, rng) if rng is not None
                   else center_crop(img, self.augment_cfg.crop))
            out.append(hwc_to_chw(img))
        return np.stack(out)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._pn is None or self._an is None:
            raise RuntimeError("VisuomotorDataset: call set_stats(stats) before indexing")
        rng = None
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, ())))
        return {"images": torch.from_numpy(self.image_batch(i, rng)),
                "proprio": torch.from_numpy(self._pn[i]),
                "entity_ids": torch.from_numpy(self.entity_ids[i]),
                "skill_id": torch.tensor(self.skill_ids[i]),
                "actions": torch.from_numpy(self._an[i]),
                "mask": torch.from_numpy(self.mask[i].astype(np.float32))}

    @classmethod
    def from_hdf5(cls, paths: str | os.PathLike | Sequence[str | os.PathLike],
                  cameras: Sequence[str], chunk_size: int = 10,
                  augment_cfg: AugmentConfig | None = None,
                  skills: Sequence[str] | None = None,
                  skill_vocab: Sequence[str] | None = None,
                  entities: EntityVocab | None = None) -> VisuomotorDataset:
        """Samples of every (successful) skill segment of demos recorded with ``cameras``.

        Demos are checked as for the state-based policy
        (:func:`robot_skills.data.dataset.validate_demo`: keys, finite values, action limits).

        Args:
            paths: demonstration files with camera datasets (:func:`write_frames`).
            cameras: scene camera names, in the policy's order (e.g.
                ``["agentview", "panda/wrist_cam"]``).
            chunk_size: action chunk length ``H``.
            augment_cfg: augmentation (its ``crop`` is the policy's input size).
            skills: skills to keep (None: all found).
            skill_vocab: fixes the skill -> id mapping (default: sorted names found).
            entities: fixes the entity vocabulary (default: built from the segments' args).

        Raises:
            KeyError: a demo lacks one of ``cameras`` (names file, demo and the cameras it has).
            robot_skills.data.dataset.DemoValidationError: an unfit demo.
            ValueError: no samples; camera frames whose count differs from the demo's steps.
        """
        from robot_skills.data.dataset import (
            _file_limits,
            action_chunks,
            features_from_arrays,
            load_checked,
            read_segments,
            validate_demo,
        )
        from robot_skills.data.hdf5 import DemoReader

        if not cameras:
            raise ValueError("a visuomotor dataset needs at least one camera")
        augment_cfg = augment_cfg or AugmentConfig()
        want = None if skills is None else set(skills)
        frames: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
        pieces: list[tuple[np.ndarray, np.ndarray, str, tuple[str, ...], np.ndarray, np.ndarray,
                           int]] = []
        n_frames, ep = 0, 0
        for p in _as_path_list(paths):
            with DemoReader(p) as r:
                for name in r.demos:
                    segs = [s for s in read_segments(r, name, p)
                            if (want is None or s.skill in want) and s.success]
                    if not segs:
                        continue
                    demo = load_checked(r, name, p)
                    validate_demo(demo, p, _file_limits(r, None), r.num_samples(name))
                    cams = demo_cameras(r, name, p, cameras)
                    T = len(demo)
                    for c in cameras:
                        fr = read_frames(cams[c])
                        if fr.shape[0] != T:
                            raise ValueError(f"{p}:{name}: camera {c!r} has {fr.shape[0]} frames, "
                                             f"the demo {T} steps")
                        if frames[c] and frames[c][0].shape[1:] != fr.shape[1:]:
                            raise ValueError(f"{p}:{name}: camera {c!r} images are "
                                             f"{fr.shape[1:3]}, earlier demos "
                                             f"{frames[c][0].shape[1:3]}; one size per camera")
                        frames[c].append(fr)
                    for s in segs:
                        sl = slice(s.start, s.end)
                        f = features_from_arrays(demo.obs["ee_pos"][sl], demo.obs["ee_quat"][sl],
                                                 demo.obs["gripper_width"][sl], [])
                        a, m = action_chunks(demo.actions, s.start, s.end, chunk_size)
                        pieces.append((f[:, :PROPRIO_DIM], np.arange(s.start, s.end) + n_frames,
                                       s.skill, tuple(s.args), a, m, ep))
                    n_frames += T
                    ep += 1
        vocab, ids, entities, ent = index_pieces(pieces, skills, paths, skill_vocab, entities)
        return cls({c: np.concatenate(v) for c, v in frames.items()},
                   np.concatenate([pc[1] for pc in pieces]).astype(np.int64),
                   np.concatenate([pc[0] for pc in pieces]).astype(np.float32), ent,
                   np.concatenate([np.full(len(pc[0]), ids[pc[2]], np.int64) for pc in pieces]),
                   np.concatenate([pc[4] for pc in pieces]),
                   np.concatenate([pc[5] for pc in pieces]),
                   np.concatenate([np.full(len(pc[0]), pc[6], np.int64) for pc in pieces]),
                   vocab, entities, chunk_size, augment_cfg)
