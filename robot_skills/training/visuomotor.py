"""Train image-based skills: one :class:`~robot_skills.policies.vision.VisuomotorBC` for every
skill of the demonstrations, through the same resumable loop as the state-based policy
(:func:`robot_skills.training.trainer.fit`).

The data are the demonstrations' camera images (:mod:`robot_skills.data.images`, recorded with
``world.cameras=[...]``), the proprioception, the skill segments and their argument names; object
poses are not read. The frames are decoded into memory, or read from the files on demand through a
bounded cache (``lazy_images``, :func:`robot_skills.data.lazy.lazy_visuomotor_dataset`; the
default chooses by size), with the same samples and training either way. Every skill shares the
network (encoders and head; the skill id and the argument entities condition it), like the
state-based base policy; there are no per-skill LoRA adapters here (a visuomotor library is one
directory, see :func:`robot_skills.policies.vision.save_visuomotor`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_skills.data.images import AugmentConfig, VisuomotorDataset
from robot_skills.data.lazy import (
    DEFAULT_CACHE_BYTES,
    DEFAULT_IMAGE_BLOCK_FRAMES,
    DEFAULT_MAX_IN_MEMORY_BYTES,
    frame_store_of,
    load_visuomotor_dataset,
)
from robot_skills.domain.verbs import SKILL_SPECS, SkillSpec
from robot_skills.policies.vision import VisuomotorBC, VisuomotorConfig, save_visuomotor
from robot_skills.skills.skill_dir import spec_to_contract
from robot_skills.training.device import barrier, configure_threads, init_distributed
from robot_skills.training.trainer import TrainConfig, dataset_sha256, fit
from robot_skills.utils.atomic import PROBE_NAME, check_writable, clean_stale_temps, exclusive_lock
from robot_skills.utils.version import code_version


@dataclass
class VisuomotorTrainConfig:
    """Image-specific settings (the optimisation and head sizes come from :class:`TrainConfig`).

    Attributes:
        cameras: scene cameras the policy reads (each demo must carry them).
        crop: ``(h, w)`` network input; random crops of the recorded images in training.
        widths / blocks / strides / groups / stem_pool / pool / num_keypoints / embed_dim /
            entity_emb_dim: the encoder (:class:`~robot_skills.policies.vision.VisuomotorConfig`).
        brightness / contrast / saturation / hue: colour jitter
            (:class:`~robot_skills.data.images.AugmentConfig`).
        lazy_images: read the camera frames from the HDF5 files on demand through a bounded
            cache (:func:`robot_skills.data.lazy.lazy_visuomotor_dataset`) instead of decoding
            every frame into memory; None (default): lazy when the decoded frames would exceed
            ``images_in_memory_max_mb``. Both give the same samples and the same training.
        image_cache_mb: the lazy frames' decoded-frame cache, MiB, all DataLoader workers
            together (``training.num_workers``).
        images_in_memory_max_mb: the ``lazy_images=None`` threshold, MiB of decoded frames.
        image_block_frames: frames read and decoded together on a cache miss (lazy frames).
    """

    cameras: list[str] = field(default_factory=lambda: ["agentview", "panda/wrist_cam"])
    crop: list[int] = field(default_factory=lambda: [116, 116])
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    strides: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    groups: int = 8
    stem_pool: bool = True
    pool: str = "spatial_softmax"
    num_keypoints: int = 32
    embed_dim: int = 64
    entity_emb_dim: int = 16
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02
    lazy_images: bool | None = None
    image_cache_mb: float = DEFAULT_CACHE_BYTES / 2 ** 20
    images_in_memory_max_mb: float = DEFAULT_MAX_IN_MEMORY_BYTES / 2 ** 20
    image_block_frames: int = DEFAULT_IMAGE_BLOCK_FRAMES

    def __post_init__(self) -> None:
        if self.lazy_images not in (None, True, False):
            raise ValueError(f"visuomotor lazy_images must be true, false or null, got "
                             f"{self.lazy_images!r}")
        for k in ("image_cache_mb", "images_in_memory_max_mb"):
            v = float(getattr(self, k))
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"visuomotor {k} must be a finite number >= 0, got {v}")
        if int(self.image_block_frames) < 1:
            raise ValueError(f"visuomotor image_block_frames must be >= 1, got "
                             f"{self.image_block_frames}")

    def load_dataset(self, paths: Sequence[str | os.PathLike], chunk_size: int
                     ) -> VisuomotorDataset:
        """The training samples of ``paths`` for these cameras and augmentation, frames in
        memory or lazy as :attr:`lazy_images` says
        (:func:`robot_skills.data.lazy.load_visuomotor_dataset`)."""
        return load_visuomotor_dataset(
            paths, self.cameras, chunk_size, self.augment(), lazy=self.lazy_images,
            max_in_memory_bytes=int(self.images_in_memory_max_mb * 2 ** 20),
            cache_bytes=int(self.image_cache_mb * 2 ** 20),
            block_frames=int(self.image_block_frames))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> VisuomotorTrainConfig:
        """From a plain mapping (e.g. the ``policy.visuomotor`` config node).

        Raises:
            ValueError: unknown keys.
        """
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown visuomotor keys {sorted(unknown)}; known {sorted(known)}")
        return cls(**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in d.items()})

    def augment(self) -> AugmentConfig:
        """The training augmentation."""
        return AugmentConfig(tuple(self.crop), self.brightness, self.contrast, self.saturation,
                             self.hue)

    def arch(self, ds: VisuomotorDataset, cfg: TrainConfig) -> VisuomotorConfig:
        """The network for dataset ``ds`` (its vocabularies and recorded image size)."""
        h, w = next(iter(ds.frames.values())).shape[1:3]
        return VisuomotorConfig(cameras=list(self.cameras), image_size=[int(h), int(w)],
                                crop=list(self.crop), widths=list(self.widths),
                                blocks=list(self.blocks), strides=list(self.strides),
                                groups=self.groups,
                                stem_pool=self.stem_pool, pool=self.pool,
                                num_keypoints=self.num_keypoints, embed_dim=self.embed_dim,
                                num_entities=len(ds.entities), entity_emb_dim=self.entity_emb_dim,
                                num_skills=len(ds.skills), chunk_size=cfg.chunk_size,
                                hidden=cfg.hidden, layers=cfg.layers,
                                skill_emb_dim=cfg.skill_emb_dim)


def visuomotor_work_dir(out_dir: str | os.PathLike) -> Path:
    """Checkpoints / TensorBoard of :func:`train_visuomotor` for ``out_dir``: ``.<name>.work``
    beside it (survives the atomic swap of ``out_dir``)."""
    out = Path(out_dir)
    return out.parent / f".{out.name}.work"


_LOADING_KEYS = ("lazy_images", "image_cache_mb", "images_in_memory_max_mb", "image_block_frames")
"""How frames are read, not what is learned: left out of the resume fingerprint."""


def _fingerprint(cfg: TrainConfig, vcfg: VisuomotorTrainConfig, ds: VisuomotorDataset,
                 data_sha: str) -> str:
    d = {k: v for k, v in cfg.to_dict().items()
         if k not in ("progress", "tensorboard", "log_every", "ckpt_every", "num_threads", "device",
                      "keep_checkpoints", "resume", "num_workers", "lora_rank", "lora_alpha",
                      "lora_targets", "lora_steps", "lora_lr")}
    v = {k: x for k, x in asdict(vcfg).items() if k not in _LOADING_KEYS}
    blob = json.dumps({"cfg": d, "v": v, "n": len(ds), "skills": ds.skills,
                       "entities": list(ds.entities.names), "data": data_sha}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_visuomotor(hdf5_paths: Sequence[str | os.PathLike] | str | os.PathLike,
                     out_dir: str | os.PathLike, cfg: TrainConfig | None = None,
                     vcfg: VisuomotorTrainConfig | None = None,
                     specs: Mapping[str, SkillSpec] | None = None) -> Path:
    """Train one image-based policy for every skill in the demos; write it to ``out_dir``.

    Resumable (checkpoints in :func:`visuomotor_work_dir`, same fingerprint rules as the state
    library) and crash-safe (``out_dir`` is replaced atomically when the policy is written).

    Args:
        hdf5_paths: demonstration files recorded with ``vcfg.cameras``.
        out_dir: the policy directory (``<run_dir>/skills_visuomotor``).
        cfg: optimisation and head sizes (``steps``, ``batch_size``, ``lr``, ``chunk_size``,
            ``hidden``, ``layers``, ``loss``, ``seed``, ``num_workers``, ...).
        vcfg: encoder, augmentation and how frames are read (``lazy_images``, cache size).
        specs: contracts per skill (default :data:`~robot_skills.domain.verbs.SKILL_SPECS`).

    Returns:
        ``out_dir`` (load with :class:`robot_skills.skills.library.VisuomotorSkills`).

    Raises:
        ValueError: no samples, a skill without a contract. KeyError: a demo without one of the
            cameras. PermissionError / OSError: ``out_dir``'s parent is not writable.
        RuntimeError: another process trains into ``out_dir``.
    """
    cfg = cfg or TrainConfig()
    vcfg = vcfg or VisuomotorTrainConfig()
    specs = dict(SKILL_SPECS if specs is None else specs)
    paths = [hdf5_paths] if isinstance(hdf5_paths, (str, os.PathLike)) else list(hdf5_paths)
    configure_threads(cfg.num_threads)
    ctx = init_distributed(cfg.device)
    out = Path(out_dir)
    work = visuomotor_work_dir(out)
    with contextlib.ExitStack() as stack:
        if ctx.is_main:
            check_writable(out.parent)
            stack.enter_context(exclusive_lock(out.parent / f".{out.name}.lock",
                                               f"training the visuomotor policy {out}"))
            clean_stale_temps(out.parent, names=(out.name, PROBE_NAME))
            work.mkdir(parents=True, exist_ok=True)
        barrier(ctx)
        ds = vcfg.load_dataset(paths, cfg.chunk_size)
        missing = [s for s in ds.skills if s not in specs]
        if missing:
            raise ValueError(f"skills {missing} have no contract; known: {sorted(specs)}")
        stats = ds.compute_stats()
        ds.set_stats(stats)
        data_sha = dataset_sha256(paths)
        train, val = ds, None
        if cfg.val_fraction > 0 and len(np.unique(ds.episode_ids)) > 1:
            eps = np.unique(ds.episode_ids)
            rng = np.random.default_rng(cfg.seed)
            val_eps = rng.choice(eps, size=max(1, round(len(eps) * cfg.val_fraction)),
                                 replace=False)
            is_val = np.isin(ds.episode_ids, val_eps)
            train, val = ds.select(~is_val), ds.select(is_val, train=False)
        torch.manual_seed(cfg.seed)  # the network's initialisation
        arch = vcfg.arch(ds, cfg)
        model = VisuomotorBC(arch, loss=cfg.loss).to(ctx.device)
        res = fit(model, train, cfg.fit_config(), ctx=ctx, work_dir=work / "visuomotor",
                  tb_dir=(work / "tb" / "visuomotor") if cfg.tensorboard else None,
                  desc="visuomotor", val_data=val,
                  fingerprint=_fingerprint(cfg, vcfg, ds, data_sha))
        if ctx.is_main:
            prov = {"dataset_sha256": data_sha, "dataset_files": [str(p) for p in paths],
                    "num_samples": len(ds), "config": cfg.to_dict(), "visuomotor": asdict(vcfg),
                    "lazy_images": frame_store_of(ds) is not None,
                    "code_version": code_version(),
                    "metrics": {"steps": res.step, "final_train_loss": res.final_loss,
                                "val_loss": res.val_loss,
                                "samples_per_s": round(res.samples_per_s, 1),
                                "wall_s": round(res.wall_s, 2), "resumed_from": res.resumed_from}}
            save_visuomotor(out, model.cpu(), stats, ds.entities,
                            {n: spec_to_contract(specs[n]) for n in ds.skills}, prov)
        barrier(ctx)
    return out
