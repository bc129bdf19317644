"""Typed configs: Hydra structured configs (dataclasses) for every config group.

``configs/config.yaml`` composes its groups on top of :class:`RootConfig` (stored in Hydra's
``ConfigStore`` as ``robot_skills_schema``), so a value of the wrong type fails at start with the
key named (``eval.episodes_per_task=1.9`` -> "Value '1.9' of type 'float' could not be converted
to Integer, full_key: eval.episodes_per_task"), booleans accept only true/false/yes/no/on/off/1/0
(``eval.video=no`` is false), and an unknown key is refused. :func:`check_config` then checks
ranges and choices, naming the key. The ``_target_`` nodes (``world``, ``planner``,
``eval.skills.*``, ``collect.experts``, ``hardware``) stay open dicts: the classes they name check
their own arguments when built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

SCHEMA_NAME = "robot_skills_schema"
"""Name of :class:`RootConfig` in Hydra's ConfigStore (first entry of config.yaml's defaults)."""


@dataclass
class RobotConfig:
    """The arm: name, rates and per-step action limits (``configs/robot/``)."""

    name: str = "panda"
    control_hz: float = 20.0          # Hz
    physics_timestep: float = 0.002   # s
    max_delta_pos: float = 0.05       # m per control step
    max_delta_rot: float = 0.5        # rad per control step
    # A real arm's command path emulated in simulation: {preset: panda, lookahead_periods: ...,
    # velocity_feedforward: ..., safety: {...}} (sim.sim_robot.Deployment); None: joint targets
    # go straight to the servos.
    deployment: Any = None


@dataclass
class SuiteConfig:
    """Which task files run (``configs/suite/``)."""

    name: str = MISSING
    path: str = MISSING               # LIBERO suite name or a directory of .bddl files
    max_episode_steps: int = 600
    tasks: list[str] | None = None    # only these file stems (None: all runnable)
    # The main job's composition step: after the suite's table, these composite tasks (file
    # stems in compose_path, e.g. the shipped `compositions` suite) run with the same library.
    compose_path: str | None = None
    compose_tasks: list[str] | None = None
    compose_episodes: int = 5


@dataclass
class CollectConfig:
    """Scripted-expert demonstrations (``configs/collect/``)."""

    demos_per_task: int = 20
    noise_std: float = 0.005          # m per step
    noise_prob: float = 0.3
    region_scale_max: float = 6.0
    seed: int = 1000
    max_replans: int = 2
    experts: Any = None               # a SkillSet factory (`_target_`)
    image_codec: str = "gzip"         # camera images (world.cameras): gzip | lzf | png | jpeg
    mode: str = "skill_centric"       # task | skill_centric (robot_skills.data.skill_centric)
    demos_per_call: int = 2           # skill_centric: episodes per grounded call of each scene
    max_prefix: int = 2               # skill_centric: most random valid calls before the target
    min_per_verb: int = 16            # skill_centric: target episodes per verb at least
    min_per_mode: int = 0             # skill_centric: ... per (verb, target kind) at least
    finish_calls: bool = False        # every call runs to its termination, past the task's goal


@dataclass
class VisuomotorPolicyConfig:
    """The image encoder and augmentation of ``policy.kind=visuomotor``
    (:mod:`robot_skills.policies.vision`, :mod:`robot_skills.data.images`)."""

    cameras: list[str] = field(default_factory=lambda: ["agentview", "panda/wrist_cam"])
    crop: list[int] = field(default_factory=lambda: [116, 116])   # network input (h, w), px
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    strides: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    groups: int = 8                   # GroupNorm groups
    stem_pool: bool = True
    pool: str = "spatial_softmax"     # spatial_softmax | avg
    num_keypoints: int = 32
    embed_dim: int = 64
    entity_emb_dim: int = 16
    brightness: float = 0.1           # colour jitter strengths (training augmentation)
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02
    lazy_images: Any = None           # true | false | null: lazy when decoded frames > images_in_memory_max_mb
    image_cache_mb: float = 256.0     # lazy frames: decoded-frame cache, MiB, all DataLoader workers together
    images_in_memory_max_mb: float = 2048.0
    image_block_frames: int = 1       # frames decoded together on a cache miss


@dataclass
class PolicyConfig:
    """Goal-conditioned BC with action chunks and LoRA adapters (``configs/policy/``)."""

    kind: str = "state"               # state (object-pose features) | visuomotor (cameras)
    visuomotor: VisuomotorPolicyConfig = field(default_factory=VisuomotorPolicyConfig)
    chunk_size: int = 10
    hidden: int = 256
    layers: int = 4
    lora_rank: int = 8
    lora_alpha: float = 16.0
    ensemble_m: float = 0.01


@dataclass
class TrainingConfig:
    """Optimisation (``configs/training/``)."""

    steps: int = 8000
    lora_steps: int = 300
    skill_kind: str = "lora"          # lora: shared base + LoRA adapter per skill; standalone:
                                      # one policy per skill from scratch (no base)
    standalone_steps: int = 0         # steps per standalone skill (0: `steps`)
    replace_library: bool = False     # allow replacing a library with versions/promotions
    skill_library: bool = True
    baseline_steps: int = 1000
    batch_size: int = 256
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-4
    device: str = "auto"
    compile: bool = False
    bf16: bool = True
    checkpoint_every: int = 1000
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    release_points: bool = False      # placements read their target at the release point
    object_sizes: bool = False        # features carry each argument's half extents
    calibrate_release: bool = False   # place skills release below a threshold matched to their data
    log_every: int = 50
    tensorboard: bool = True
    keep_checkpoints: int = 2
    resume: bool = True
    num_workers: int = 0
    held_in_calls: int = 3            # per verb: held-in calls run after training (0: skip)
    extra_demos: list[str] = field(default_factory=list)  # more HDF5 files trained on with
                                                          # <run_dir>/demos.hdf5


RETRACT_MODES = ("off", "empty", "always", "false", "true")
"""``eval.retract`` values (``false`` = off, ``true`` = empty)."""


@dataclass
class EvalConfig:
    """The benchmark (``configs/eval/``)."""

    episodes_per_task: int = 10
    seed: int = 0
    policy: str = "learned"
    video: bool = True
    perturbations: str | None = None
    max_replans: int = 2
    retract: str = "off"              # off | empty: the empty hand returns to its start pose before
                                      # each call | always: the holding hand too
    workers: str = "local"            # local (root `workers` processes) | ray
    ray_address: str | None = None    # eval.workers=ray: None = a new local Ray instance
    paraphrases: bool = False         # plan from each task's instruction (planner=language);
                                      # a perturbation named `paraphrase` uses a paraphrase
    skills: dict[str, Any] = field(default_factory=dict)


@dataclass
class RootConfig:
    """The whole configuration of a robot-skills command."""

    robot: RobotConfig = field(default_factory=RobotConfig)
    world: Any = None
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    planner: Any = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    hardware: Any = None
    seed: int = 0
    run_dir: str = MISSING
    workers: int = 2
    baseline: bool = False


def register_configs() -> None:
    """Store :class:`RootConfig` in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=RootConfig)


class ConfigValueError(ValueError):
    """A config value out of its range or not one of its choices; the message names the key."""


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def check_config(cfg: Any) -> None:
    """Check ranges and choices the types cannot express.

    Raises:
        ConfigValueError: naming every bad key, its value and what it must be.
    """
    rules: list[tuple[str, Any, bool, str]] = [
        ("workers", cfg.workers, cfg.workers >= 1, ">= 1"),
        ("eval.retract", cfg.eval.retract, str(cfg.eval.retract).lower() in RETRACT_MODES,
         "off, empty or always"),
        ("suite.max_episode_steps", cfg.suite.max_episode_steps,
         cfg.suite.max_episode_steps >= 1, ">= 1"),
        ("collect.demos_per_task", cfg.collect.demos_per_task,
         cfg.collect.demos_per_task >= (1 if cfg.collect.mode == "task" else 0),
         ">= 1 (>= 0 with collect.mode=skill_centric)"),
        ("collect.mode", cfg.collect.mode, cfg.collect.mode in ("task", "skill_centric"),
         "task or skill_centric"),
        ("collect.demos_per_call", cfg.collect.demos_per_call, cfg.collect.demos_per_call >= 1,
         ">= 1"),
        ("collect.max_prefix", cfg.collect.max_prefix, cfg.collect.max_prefix >= 0, ">= 0"),
        ("collect.min_per_verb", cfg.collect.min_per_verb, cfg.collect.min_per_verb >= 0,
         ">= 0"),
        ("collect.min_per_mode", cfg.collect.min_per_mode, cfg.collect.min_per_mode >= 0,
         ">= 0"),
        ("training.held_in_calls", cfg.training.held_in_calls, cfg.training.held_in_calls >= 0,
         ">= 0"),
        ("collect.noise_std", cfg.collect.noise_std,
         math.isfinite(cfg.collect.noise_std) and cfg.collect.noise_std >= 0, "finite, >= 0"),
        ("collect.noise_prob", cfg.collect.noise_prob, 0 <= cfg.collect.noise_prob <= 1,
         "in [0, 1]"),
        ("collect.region_scale_max", cfg.collect.region_scale_max,
         math.isfinite(cfg.collect.region_scale_max) and cfg.collect.region_scale_max >= 1,
         "finite, >= 1"),
        ("collect.max_replans", cfg.collect.max_replans, cfg.collect.max_replans >= 0, ">= 0"),
        ("collect.image_codec", cfg.collect.image_codec,
         cfg.collect.image_codec in ("gzip", "lzf", "png", "jpeg"), "gzip, lzf, png or jpeg"),
        ("policy.kind", cfg.policy.kind, cfg.policy.kind in ("state", "visuomotor"),
         "state or visuomotor"),
        ("policy.chunk_size", cfg.policy.chunk_size, cfg.policy.chunk_size >= 1, ">= 1"),
        ("policy.hidden", cfg.policy.hidden, cfg.policy.hidden >= 1, ">= 1"),
        ("policy.layers", cfg.policy.layers, cfg.policy.layers >= 1, ">= 1"),
        ("policy.lora_rank", cfg.policy.lora_rank, cfg.policy.lora_rank >= 1, ">= 1"),
        ("policy.lora_alpha", cfg.policy.lora_alpha, _positive(cfg.policy.lora_alpha), "> 0"),
        ("policy.ensemble_m", cfg.policy.ensemble_m,
         math.isfinite(cfg.policy.ensemble_m) and cfg.policy.ensemble_m >= 0, "finite, >= 0"),
        ("training.steps", cfg.training.steps, cfg.training.steps >= 0, ">= 0"),
        ("training.lora_steps", cfg.training.lora_steps, cfg.training.lora_steps >= 0, ">= 0"),
        ("training.skill_kind", cfg.training.skill_kind,
         cfg.training.skill_kind in ("lora", "standalone"), "lora or standalone"),
        ("training.standalone_steps", cfg.training.standalone_steps,
         cfg.training.standalone_steps >= 0, ">= 0"),
        ("training.baseline_steps", cfg.training.baseline_steps,
         cfg.training.baseline_steps >= 1, ">= 1"),
        ("training.batch_size", cfg.training.batch_size, cfg.training.batch_size >= 1, ">= 1"),
        ("training.lr", cfg.training.lr, _positive(cfg.training.lr), "finite, > 0"),
        ("training.weight_decay", cfg.training.weight_decay,
         math.isfinite(cfg.training.weight_decay) and cfg.training.weight_decay >= 0,
         "finite, >= 0"),
        ("training.device", cfg.training.device,
         cfg.training.device in ("auto", "cpu") or str(cfg.training.device).startswith("cuda"),
         "auto, cpu or cuda[:N]"),
        ("training.checkpoint_every", cfg.training.checkpoint_every,
         cfg.training.checkpoint_every >= 1, ">= 1"),
        ("training.warmup_steps", cfg.training.warmup_steps, cfg.training.warmup_steps >= 0,
         ">= 0"),
        ("training.grad_clip", cfg.training.grad_clip,
         math.isfinite(cfg.training.grad_clip) and cfg.training.grad_clip >= 0, "finite, >= 0"),
        ("training.ema_decay", cfg.training.ema_decay, 0 <= cfg.training.ema_decay < 1,
         "in [0, 1)"),
        ("training.log_every", cfg.training.log_every, cfg.training.log_every >= 1, ">= 1"),
        ("training.keep_checkpoints", cfg.training.keep_checkpoints,
         cfg.training.keep_checkpoints >= 1, ">= 1"),
        ("training.num_workers", cfg.training.num_workers, cfg.training.num_workers >= 0, ">= 0"),
        ("eval.episodes_per_task", cfg.eval.episodes_per_task, cfg.eval.episodes_per_task >= 1,
         ">= 1"),
        ("eval.max_replans", cfg.eval.max_replans, cfg.eval.max_replans >= 0, ">= 0"),
        ("eval.workers", cfg.eval.workers, cfg.eval.workers in ("local", "ray"),
         "local or ray"),
        ("eval.ray_address", cfg.eval.ray_address,
         cfg.eval.ray_address is None or (cfg.eval.workers == "ray"
                                          and bool(str(cfg.eval.ray_address).strip())),
         "null, or a non-empty address with eval.workers=ray"),
        ("eval.policy", cfg.eval.policy, cfg.eval.policy in cfg.eval.skills,
         f"one of {sorted(cfg.eval.skills)}"),
        ("robot.max_delta_pos", cfg.robot.max_delta_pos, _positive(cfg.robot.max_delta_pos),
         "finite, > 0"),
        ("robot.max_delta_rot", cfg.robot.max_delta_rot, _positive(cfg.robot.max_delta_rot),
         "finite, > 0"),
        ("robot.control_hz", cfg.robot.control_hz, _positive(cfg.robot.control_hz), "> 0"),
        ("robot.physics_timestep", cfg.robot.physics_timestep,
         _positive(cfg.robot.physics_timestep), "> 0"),
    ]
    bad = [f"{key}={value!r} (must be {what})" for key, value, ok, what in rules if not ok]
    if bad:
        raise ConfigValueError("invalid config: " + "; ".join(bad))
