"""The on-disk skill format: a directory with a contract, weights and normalisation statistics.

A skill directory (``<library>/<name>/`` or, for further versions, ``<library>/<name>@<version>/``)
holds:

* ``skill.yaml`` — the contract (:data:`SKILL_FORMAT`): ``name``, ``version`` (semantic,
  ``MAJOR.MINOR.PATCH``), ``description``, typed ``parameters`` (``[{name, type}]``),
  ``preconditions``, ``effects: {add, del}``, ``termination``, ``time_limit_s``,
  ``needs_open_gripper_at_end`` (all from :data:`robot_skills.domain.verbs.SKILL_SPECS` or the
  caller's own :class:`SkillSpec`); ``base_policy`` (``{sha256, arch, skills, skill_id}`` of the
  shared base network, or null for a ``full`` skill); ``adapter`` (``{kind: lora, format: peft,
  rank, alpha, target_layers}`` or ``{kind: full, arch}``); ``provenance`` (``{dataset_sha256,
  config, code_version, metrics, created}``); ``evaluation`` (sim evaluation record; the admission
  gate's verdict under ``gate``); ``trust_tier`` (``sim`` -> ``supervised`` -> ``autonomous``);
  ``retired`` (null, or ``{at, reason}``); ``history`` (promotions / retirements);
  ``files`` (every other file of the directory: its sha256); ``file_sizes`` (the same files'
  sizes in bytes; absent in contracts written before it existed); and ``contract_sha256``, the
  sha256 of the canonical JSON of every other key (detects edits of the contract itself; it is an
  integrity check, not a signature).
* a ``lora`` skill: PEFT's ``adapter_config.json`` + ``adapter_model.safetensors``
  (:mod:`robot_skills.policies.peft_adapter`; ``PeftModel.from_pretrained`` reads the directory
  as it is), the config's ``base_model_name_or_path`` naming the base's ``sha256:<hex>``;
  a ``full`` skill (a whole small policy): ``policy.safetensors``, a
  :class:`~robot_skills.policies.bc.GoalConditionedBC` state dict. Skills of the older format
  (:data:`LEGACY_SKILL_FORMAT`: ``adapter.safetensors`` holding the project's own LoRA tensors or
  a whole policy) still load.
* ``stats.json`` — :class:`~robot_skills.data.dataset.NormStats`.

The shared base lives once per library: ``<library>/base/base.safetensors`` + ``base.yaml``
(``{format, arch, skills, sha256, size, provenance}``; ``size`` in bytes, absent in older ones).

Never pickle: safetensors, YAML (a safe loader that also refuses anchors/aliases,
:class:`robot_skills.utils.files.NoAliasSafeLoader`) and JSON. Every file is checked against its
sha256 on load; a mismatch raises :class:`SkillIntegrityError` naming the file and both hashes.
Writes are atomic (the directory is built under a temporary name, then renamed into place).

Bounded reads: only regular files are opened (a FIFO or device is refused without blocking);
``skill.yaml`` / ``base.yaml`` are read only up to :data:`MAX_CONTRACT_BYTES` and ``stats.json``
up to :data:`MAX_STATS_FILE_BYTES`. Contracts record each file's size (``file_sizes`` in
``skill.yaml``, ``size`` in ``base.yaml``), so a file whose size differs is refused from its
``fstat`` before a byte is read; contracts written before sizes were recorded still load, their
files hashed in chunks (constant memory) before being read, and never beyond
:data:`MAX_WEIGHTS_BYTES`. Weights holding NaN/inf are refused on load (:class:`SkillFormatError`
naming the file and the tensor), and weights are checked against the recorded architecture's
parameter count before a network is built from it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from robot_skills.domain.verbs import Parameter, SkillSpec
from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.learned_skill import LearnedSkill
from robot_skills.policies.lora import adapter_rank, inject_lora, load_lora_state_dict, merge_lora
from robot_skills.policies.normalization import MAX_STATS_BYTES, NormStats
from robot_skills.policies.peft_adapter import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_WEIGHTS_FILE,
    AdapterError,
    apply_adapter,
    base_ref,
    config_bytes,
    config_dict,
    layers_of,
    parse_config,
    to_peft_keys,
    weights_bytes,
)
from robot_skills.utils.atomic import atomic_dir, atomic_write_text
from robot_skills.utils.files import (
    InputFileError,
    NotARegularFileError,
    dump_yaml,
    load_yaml_file,
    open_regular,
    sha256_stream,
)
from robot_skills.utils.version import code_version

SKILL_FORMAT = "robot_skills.skill/2"
LEGACY_SKILL_FORMAT = "robot_skills.skill/1"
"""Contracts of this format (own LoRA tensors in ``adapter.safetensors``) are still read."""
BASE_FORMAT = "robot_skills.base/1"
TRUST_TIERS = ("sim", "supervised", "autonomous")
ADAPTER_KINDS = ("lora", "full")
SKILL_YAML = "skill.yaml"
ADAPTER_FILE = "adapter.safetensors"
"""Weights file of a :data:`LEGACY_SKILL_FORMAT` skill (LoRA tensors or a whole policy)."""
PEFT_CONFIG = ADAPTER_CONFIG_FILE
PEFT_WEIGHTS = ADAPTER_WEIGHTS_FILE
POLICY_FILE = "policy.safetensors"
"""Weights of a ``full`` skill (a whole small policy) in :data:`SKILL_FORMAT`."""
STATS_FILE = "stats.json"
_SEMVER_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


def skill_files(fmt: str, kind: str) -> tuple[str, ...]:
    """The files (besides ``skill.yaml``) a skill of contract format ``fmt`` and adapter ``kind``
    holds: PEFT's pair + stats for ``lora``, ``policy.safetensors`` + stats for ``full``;
    ``adapter.safetensors`` + stats for :data:`LEGACY_SKILL_FORMAT`."""
    if fmt == LEGACY_SKILL_FORMAT:
        return (ADAPTER_FILE, STATS_FILE)
    if kind == "lora":
        return (PEFT_CONFIG, PEFT_WEIGHTS, STATS_FILE)
    return (POLICY_FILE, STATS_FILE)


def weights_file(manifest: Mapping[str, Any]) -> str:
    """The weights file of a parsed contract (see :func:`skill_files`)."""
    return skill_files(str(manifest.get("format")), manifest["adapter"]["kind"])[-2]


def parse_version(v: Any, where: str = "version") -> tuple[int, int, int]:
    """``"MAJOR.MINOR.PATCH"`` (Semantic Versioning 2.0.0, no pre-release/build parts) ->
    ``(major, minor, patch)`` for ordering.

    Raises:
        SkillFormatError: anything else (names ``where``).
    """
    if not isinstance(v, str) or not _SEMVER_RE.match(v):
        raise SkillFormatError(f"{where}: version must be a semantic version 'MAJOR.MINOR.PATCH' "
                               f"(e.g. '1.2.0'), got {v!r}")
    a, b, c = v.split(".")
    return int(a), int(b), int(c)
BASE_DIR = "base"
BASE_WEIGHTS = "base.safetensors"
BASE_YAML = "base.yaml"

MAX_CONTRACT_BYTES = 1 << 20
"""Largest ``skill.yaml`` / ``base.yaml`` read, bytes (1 MiB; real contracts are ~3 KB)."""
MAX_STATS_FILE_BYTES = MAX_STATS_BYTES
"""Largest ``stats.json`` read, bytes (1 MiB; real ones are ~10 KB)."""
MAX_WEIGHTS_BYTES = 1 << 30
"""Largest ``adapter.safetensors`` / ``base.safetensors`` read, bytes (1 GiB), whether or not the
contract records its size (a rank-8 adapter is ~100 KB, the default base ~4 MB)."""
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class SkillFormatError(ValueError):
    """A skill or base directory is malformed (missing file, bad YAML, unknown field values)."""


class SkillIntegrityError(ValueError):
    """A file's content does not match the sha256 recorded for it."""


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _canonical(d: Mapping[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), default=str).encode()


def _contract_hash(d: Mapping[str, Any]) -> str:
    return sha256_bytes(_canonical({k: v for k, v in d.items() if k != "contract_sha256"}))


def _plain(obj: Any) -> Any:
    """Convert tuples / numpy scalars / paths to YAML-safe plain types."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and not isinstance(obj, (str, bytes)):
        try:
            return obj.item()
        except (ValueError, TypeError):
            pass
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        d = load_yaml_file(path, MAX_CONTRACT_BYTES, "contract")
    except FileNotFoundError:
        raise SkillFormatError(f"missing {path}") from None
    except InputFileError as e:  # not a regular file; over the limit; YAMLInputError (syntax,
        raise SkillFormatError(str(e)) from None  # tags, anchors/aliases, depth, encoding)
    except OSError as e:
        raise SkillFormatError(f"cannot read {path}: {e}") from None
    if not isinstance(d, dict):
        raise SkillFormatError(f"{path} must hold a YAML mapping, got {type(d).__name__}")
    return d


def _dump_yaml(d: Mapping[str, Any]) -> str:
    return dump_yaml(dict(d))


def _read_exact(f: Any, n: int) -> bytes:
    """Read ``n`` bytes from ``f`` (and at most one more, to notice a file that grew)."""
    chunks, got = [], 0
    while got <= n:
        b = f.read(min(1 << 20, n + 1 - got))
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _read_verified(path: Path, expected: str, what: str, size: int | None = None,
                   max_bytes: int | None = MAX_WEIGHTS_BYTES) -> bytes:
    """Read ``path`` if it is a regular file whose sha256 is ``expected``.

    Args:
        path: the file.
        expected: hex sha256 recorded in ``what``.
        what: the contract recording it (for messages).
        size: the size in bytes the contract records, if it does: a file of another size is
            refused from its ``fstat`` without reading. None (older contracts): the file is hashed
            in chunks first (constant memory), and read only if the hash matches.
        max_bytes: refuse files larger than this (checked before reading).

    Raises:
        SkillFormatError: missing, not a regular file, over ``max_bytes``.
        SkillIntegrityError: size or sha256 differs from the contract's.
    """
    try:
        f, st = open_regular(path, f"file listed in {what}")
    except FileNotFoundError:
        raise SkillFormatError(f"missing {path} (listed in {what})") from None
    except NotARegularFileError as e:
        raise SkillFormatError(str(e)) from None
    except OSError as e:
        raise SkillFormatError(f"cannot open {path}: {e}") from None
    with f:
        n = st.st_size
        if size is not None and n != size:
            raise SkillIntegrityError(f"{path}: {n} bytes, but {what} records {size} bytes; the "
                                      "file was modified or swapped — refusing to load (nothing "
                                      "was read)")
        if max_bytes is not None and n > max_bytes:
            raise SkillFormatError(f"{path} is {n} bytes, over the limit of {max_bytes} bytes for "
                                   "this file; refusing to read it")
        if size is None:  # no recorded size: hash in chunks before holding the file in memory
            got, _ = sha256_stream(f)
            if got != expected:
                raise SkillIntegrityError(f"{path}: sha256 {got} does not match {expected} "
                                          f"recorded in {what}; the file was modified or swapped "
                                          "— refusing to load")
            f.seek(0)
        data = _read_exact(f, n)
    if len(data) != n:
        raise SkillIntegrityError(f"{path} changed size while being read ({n} -> {len(data)} "
                                  "bytes) — refusing to load")
    got = sha256_bytes(data)
    if got != expected:
        raise SkillIntegrityError(f"{path}: sha256 {got} does not match {expected} recorded in "
                                  f"{what}; the file was modified or swapped — refusing to load")
    return data


def _check_finite(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse weights holding NaN/inf (they would silently become NaN actions)."""
    for k, t in state.items():
        if t.is_floating_point() or t.is_complex():
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                raise SkillFormatError(f"{path}: tensor {k!r} holds {int(bad.sum())} non-finite "
                                       f"value(s) (NaN/inf) of {t.numel()}; refusing to load "
                                       "these weights")


def _load_weights(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    try:
        state = st_load(data)
    except Exception as e:  # safetensors raises its own error types
        raise SkillFormatError(f"{path} is not a valid safetensors file: {e}") from None
    _check_finite(state, path)
    return state


def arch_num_params(arch: BCConfig) -> int:
    """Parameters of a :class:`GoalConditionedBC` with architecture ``arch`` (no allocation).

    Used to check recorded weights against a recorded architecture before building a network,
    so a contract naming an absurd architecture cannot make the loader allocate it.
    """
    h, e, out = arch.hidden, arch.skill_emb_dim, arch.chunk_size * arch.action_dim
    return (arch.num_skills * e + (arch.feature_dim + e) * h + h
            + (arch.layers - 1) * (2 * h + h * h + h) + 2 * h + h * out + out)


def _check_fits(state: Mapping[str, torch.Tensor], arch: BCConfig, what: str) -> None:
    have = sum(int(t.numel()) for t in state.values())
    want = arch_num_params(arch)
    if have != want:
        raise SkillFormatError(f"{what}: weights hold {have} parameters, the recorded "
                               f"architecture {arch.to_dict()} has {want}; refusing to build it")


def _size_field(v: Any, where: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise SkillFormatError(f"{where} must be a byte count (integer >= 0), got {v!r}")
    return v


# ----------------------------------------------------------------------------- contract <-> spec
def spec_to_contract(spec: SkillSpec) -> dict[str, Any]:
    """The contract keys of ``skill.yaml`` taken from a :class:`SkillSpec`."""
    return {"name": spec.name, "description": spec.description,
            "parameters": [{"name": p.name, "type": p.type} for p in spec.parameters],
            "preconditions": list(spec.preconditions),
            "effects": {"add": list(spec.add_effects), "del": list(spec.del_effects)},
            "termination": list(spec.termination), "time_limit_s": float(spec.time_limit_s),
            "needs_open_gripper_at_end": bool(spec.needs_open_gripper_at_end),
            "tags": list(spec.tags)}


def _str_list(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = d.get(key, [])
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise SkillFormatError(f"{where}: {key} must be a list of strings, got {v!r}")
    return tuple(v)


def contract_to_spec(d: Mapping[str, Any], where: str = SKILL_YAML) -> SkillSpec:
    """Build a :class:`SkillSpec` from a parsed ``skill.yaml``.

    Raises:
        SkillFormatError: on missing or mistyped fields.
    """
    for k in ("name", "description", "parameters"):
        if k not in d:
            raise SkillFormatError(f"{where}: missing required key {k!r}")
    params = d["parameters"]
    if not isinstance(params, list) or not all(
            isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("type"), str)
            for p in params):
        raise SkillFormatError(f"{where}: parameters must be a list of {{name, type}}, got {params!r}")
    eff = d.get("effects") or {}
    if not isinstance(eff, dict):
        raise SkillFormatError(f"{where}: effects must be a mapping {{add, del}}, got {eff!r}")
    try:
        tl = float(d.get("time_limit_s", 15.0))
    except (TypeError, ValueError) as e:
        raise SkillFormatError(f"{where}: time_limit_s must be a number") from e
    if not (tl > 0 and math.isfinite(tl)):
        raise SkillFormatError(f"{where}: time_limit_s must be finite and > 0, got {tl}")
    return SkillSpec(name=str(d["name"]), description=str(d["description"]),
                     parameters=tuple(Parameter(p["name"], p["type"]) for p in params),
                     preconditions=_str_list(d, "preconditions", where),
                     add_effects=_str_list(eff, "add", where + " effects"),
                     del_effects=_str_list(eff, "del", where + " effects"),
                     termination=_str_list(d, "termination", where), time_limit_s=tl,
                     needs_open_gripper_at_end=bool(d.get("needs_open_gripper_at_end", False)),
                     tags=_str_list(d, "tags", where))


# ----------------------------------------------------------------------------- base policy
@dataclass
class BasePolicy:
    """The library's shared base network, as recorded in ``base/base.yaml``.

    Attributes:
        arch: architecture of :class:`GoalConditionedBC`.
        skills: skill vocabulary (embedding row ``i`` is ``skills[i]``).
        sha256: hash of ``base.safetensors``.
        provenance: dataset hash, config, code version, metrics.
        path: the ``base`` directory.
        size: size of ``base.safetensors`` in bytes (None for a ``base.yaml`` written before
            sizes were recorded).
    """

    arch: BCConfig
    skills: list[str]
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    size: int | None = None


def save_base(library_root: str | os.PathLike, state_dict: Mapping[str, torch.Tensor],
              arch: BCConfig, skills: Sequence[str],
              provenance: Mapping[str, Any] | None = None) -> BasePolicy:
    """Write ``<library_root>/base/{base.safetensors, base.yaml}`` atomically.

    Args:
        library_root: the library directory (created if missing).
        state_dict: :class:`GoalConditionedBC` weights.
        arch: its architecture.
        skills: the skill vocabulary (``len == arch.num_skills``).
        provenance: free-form JSON-able record.

    Raises:
        ValueError: if the vocabulary size disagrees with ``arch.num_skills``.
    """
    if len(skills) != arch.num_skills:
        raise ValueError(f"{len(skills)} skills for a base with num_skills={arch.num_skills}")
    data = st_save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
                   metadata={"format": BASE_FORMAT})
    sha = sha256_bytes(data)
    meta = {"format": BASE_FORMAT, "arch": arch.to_dict(), "skills": list(skills), "sha256": sha,
            "size": len(data), "provenance": _plain(dict(provenance or {}))}
    dest = Path(library_root) / BASE_DIR
    with atomic_dir(dest) as tmp:
        (tmp / BASE_WEIGHTS).write_bytes(data)
        (tmp / BASE_YAML).write_text(_dump_yaml(meta))
    return BasePolicy(arch, list(skills), sha, meta["provenance"], dest, len(data))


def read_base_info(library_root: str | os.PathLike) -> BasePolicy:
    """Parse ``base/base.yaml`` (no weights read).

    Raises:
        SkillFormatError: missing / malformed ``base.yaml`` (bad arch, skills not a list of names,
            sha256 not 64 hex digits, size not a byte count, over :data:`MAX_CONTRACT_BYTES`).
    """
    d = Path(library_root) / BASE_DIR
    where = d / BASE_YAML
    m = _read_yaml(where)
    for k in ("arch", "skills", "sha256"):
        if k not in m:
            raise SkillFormatError(f"{where}: missing key {k!r}")
    try:
        arch = BCConfig.from_dict(m["arch"])
    except (TypeError, ValueError) as e:
        raise SkillFormatError(f"{where}: bad arch: {e}") from e
    skills = m["skills"]
    if not isinstance(skills, list) or not all(isinstance(x, str) for x in skills):
        raise SkillFormatError(f"{where}: skills must be a list of names, got {skills!r}")
    if len(skills) != arch.num_skills:
        raise SkillFormatError(f"{where}: {len(skills)} skills for num_skills={arch.num_skills}")
    sha = m["sha256"]
    if not isinstance(sha, str) or not _SHA256_RE.match(sha):
        raise SkillFormatError(f"{where}: sha256 must be 64 hex digits, got {sha!r}")
    size = _size_field(m.get("size"), f"{where}: size")
    prov = m.get("provenance") or {}
    return BasePolicy(arch, list(skills), sha, prov if isinstance(prov, dict) else {}, d, size)


def load_base(library_root: str | os.PathLike) -> tuple[BasePolicy, dict[str, torch.Tensor]]:
    """Read and verify the base network.

    Returns:
        The :class:`BasePolicy` record and its state dict (CPU tensors).

    Raises:
        SkillFormatError: missing / malformed files, weights holding NaN/inf, or weights that do
            not have the recorded architecture's parameter count.
        SkillIntegrityError: ``base.safetensors`` does not match the size or sha256 in
            ``base.yaml``.
    """
    info = read_base_info(library_root)
    path = info.path / BASE_WEIGHTS
    data = _read_verified(path, info.sha256, str(info.path / BASE_YAML), info.size)
    state = _load_weights(data, path)
    _check_fits(state, info.arch, str(path))
    return info, state


# ----------------------------------------------------------------------------- skills
def save_skill(skill_dir: str | os.PathLike, *, spec: SkillSpec,
               adapter_state: Mapping[str, torch.Tensor], stats: NormStats,
               adapter: Mapping[str, Any], base: BasePolicy | None = None, skill_id: int = 0,
               version: str = "1.0.0", provenance: Mapping[str, Any] | None = None,
               evaluation: Mapping[str, Any] | None = None, trust_tier: str = "sim",
               overwrite: bool = True) -> Path:
    """Write a skill directory atomically (temporary directory, then rename).

    Args:
        skill_dir: destination, conventionally ``<library>/<spec.name>``.
        spec: the contract's symbolic part.
        adapter_state: LoRA tensors (PEFT's ``base_model.model.<layer>.lora_A.weight`` keys, or
            the older ``<layer>.lora_A`` / ``.lora_B``, converted), or a whole policy's state
            dict for ``kind: full``.
        stats: normalisation statistics.
        adapter: ``{kind: "lora", rank, alpha, target_layers[, dropout]}`` (written as PEFT's
            ``adapter_config.json``; ``alpha`` defaults to ``2 * rank``, ``target_layers`` to the
            layers the tensors adapt) or ``{kind: "full", arch: {...}}``.
        base: the base network a LoRA adapts (required for ``lora``, ignored for ``full``).
        skill_id: this skill's row in the base's skill embedding (0 for ``full``).
        version: the skill's semantic version (``MAJOR.MINOR.PATCH``).
        provenance: ``{dataset_sha256, config, metrics, ...}``; ``code_version`` and ``created``
            are filled in when absent.
        evaluation: sim evaluation record (may be empty and filled later).
        trust_tier: one of :data:`TRUST_TIERS`.
        overwrite: replace an existing directory.

    Returns:
        The skill directory.

    Raises:
        ValueError: unknown trust tier / adapter kind, missing base for ``lora``, bad skill_id,
            adapter tensors that disagree with ``target_layers`` / ``rank``.
        SkillFormatError: a version that is not ``MAJOR.MINOR.PATCH``.
    """
    if trust_tier not in TRUST_TIERS:
        raise ValueError(f"unknown trust tier {trust_tier!r}; expected one of {TRUST_TIERS}")
    parse_version(str(version), f"{skill_dir}")
    adapter = _plain(dict(adapter))
    kind = adapter.get("kind")
    if kind not in ADAPTER_KINDS:
        raise ValueError(f"adapter kind must be one of {ADAPTER_KINDS}, got {kind!r}")
    files: dict[str, bytes] = {}
    if kind == "lora":
        if base is None:
            raise ValueError("a LoRA skill needs the base policy it adapts")
        if not 0 <= skill_id < base.arch.num_skills:
            raise ValueError(f"skill_id {skill_id} outside the base's {base.arch.num_skills} skills")
        base_rec: dict[str, Any] | None = {"sha256": base.sha256, "arch": base.arch.to_dict(),
                                           "skills": list(base.skills), "skill_id": int(skill_id)}
        state = to_peft_keys(adapter_state)
        layers = layers_of(state)
        targets = adapter.get("target_layers") or layers
        if sorted(targets) != layers:
            raise ValueError(f"adapter target_layers {sorted(targets)} differ from the layers its "
                             f"tensors adapt {layers}")
        ranks = {int(v.shape[0]) for k, v in state.items() if k.endswith(".lora_A.weight")}
        rank = int(adapter.get("rank") or (ranks.pop() if len(ranks) == 1 else 0))
        if ranks - {rank}:
            raise ValueError(f"adapter rank {rank} differs from its tensors' ranks {sorted(ranks)}")
        alpha = float(adapter.get("alpha", 2 * rank))
        adapter.update({"format": "peft", "rank": rank, "alpha": alpha,
                        "target_layers": sorted(targets)})
        files[PEFT_CONFIG] = config_bytes(config_dict(rank, alpha, targets, base.sha256,
                                                      float(adapter.get("dropout", 0.0))))
        files[PEFT_WEIGHTS] = weights_bytes(state)
    else:
        if "arch" not in adapter:
            raise ValueError("a full adapter records its arch")
        BCConfig.from_dict(adapter["arch"])
        base_rec = None
        files[POLICY_FILE] = st_save({k: v.detach().cpu().contiguous()
                                      for k, v in adapter_state.items()},
                                     # one key: safetensors writes several in no fixed order, and
                                     # the file's sha256 must not change between identical saves
                                     metadata={"format": f"{SKILL_FORMAT};kind={kind}"})
    files[STATS_FILE] = (json.dumps(stats.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    prov = _plain(dict(provenance or {}))
    prov.setdefault("code_version", code_version())
    prov.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    manifest: dict[str, Any] = {"format": SKILL_FORMAT, "name": spec.name, "version": str(version)}
    manifest.update(spec_to_contract(spec))
    manifest.update({
        "base_policy": base_rec, "adapter": adapter, "provenance": prov,
        "evaluation": _plain(dict(evaluation or {})), "trust_tier": trust_tier, "retired": None,
        "history": [],
        "files": {k: sha256_bytes(v) for k, v in files.items()},
        "file_sizes": {k: len(v) for k, v in files.items()},
    })
    manifest["contract_sha256"] = _contract_hash(manifest)
    with atomic_dir(skill_dir, overwrite=overwrite) as tmp:
        for k, v in files.items():
            (tmp / k).write_bytes(v)
        (tmp / SKILL_YAML).write_text(_dump_yaml(manifest))
    return Path(skill_dir)


def read_manifest(skill_dir: str | os.PathLike) -> dict[str, Any]:
    """Parse and validate ``skill.yaml`` and check its ``contract_sha256`` (files not read).

    Raises:
        SkillFormatError: malformed YAML, missing keys, unknown trust tier or adapter kind.
        SkillIntegrityError: the contract was edited (``contract_sha256`` mismatch).
    """
    path = Path(skill_dir) / SKILL_YAML
    m = _read_yaml(path)
    if m.get("format") not in (SKILL_FORMAT, LEGACY_SKILL_FORMAT):
        raise SkillFormatError(f"{path}: format {m.get('format')!r}, expected {SKILL_FORMAT!r} "
                               f"(or the older {LEGACY_SKILL_FORMAT!r})")
    for k in ("name", "version", "adapter", "files", "trust_tier", "contract_sha256"):
        if k not in m:
            raise SkillFormatError(f"{path}: missing required key {k!r}")
    recorded = str(m["contract_sha256"])
    try:
        got = _contract_hash(m)
    except (TypeError, ValueError, RecursionError) as e:  # e.g. keys of mixed types
        raise SkillFormatError(f"{path}: contract cannot be hashed canonically: {e}") from None
    if got != recorded:
        raise SkillIntegrityError(f"{path}: contract sha256 {got} does not match {recorded} "
                                  "recorded in its contract_sha256; skill.yaml was edited — "
                                  "refusing to load")
    if m["trust_tier"] not in TRUST_TIERS:
        raise SkillFormatError(f"{path}: unknown trust_tier {m['trust_tier']!r}; "
                               f"expected one of {TRUST_TIERS}")
    ad = m["adapter"]
    if not isinstance(ad, dict) or ad.get("kind") not in ADAPTER_KINDS:
        raise SkillFormatError(f"{path}: adapter.kind must be one of {ADAPTER_KINDS}, got {ad!r}")
    files = m["files"]
    want_files = set(skill_files(m["format"], ad["kind"]))
    if not isinstance(files, dict) or set(files) != want_files:
        raise SkillFormatError(f"{path}: files must list exactly {sorted(want_files)}, "
                               f"got {files!r}")
    for k, v in files.items():
        if not isinstance(v, str) or not _SHA256_RE.match(v):
            raise SkillFormatError(f"{path}: files[{k!r}] must be a sha256 (64 hex digits), "
                                   f"got {v!r}")
    sizes = m.get("file_sizes")
    if sizes is not None:
        if not isinstance(sizes, dict) or set(sizes) != set(files):
            raise SkillFormatError(f"{path}: file_sizes must list exactly {sorted(want_files)}, "
                                   f"got {sizes!r}")
        for k, v in sizes.items():
            _size_field(v, f"{path}: file_sizes[{k!r}]")
    if not isinstance(m["name"], str):
        raise SkillFormatError(f"{path}: name must be a string, got {m['name']!r}")
    if ad["kind"] == "lora" and not isinstance(m.get("base_policy"), dict):
        raise SkillFormatError(f"{path}: a LoRA skill must name its base_policy")
    parse_version(m["version"], str(path))
    if m.get("retired") is not None and not isinstance(m["retired"], dict):
        raise SkillFormatError(f"{path}: retired must be null or a mapping {{at, reason}}, "
                               f"got {m['retired']!r}")
    if not isinstance(m.get("history", []), list):
        raise SkillFormatError(f"{path}: history must be a list, got {m['history']!r}")
    if not isinstance(m.get("evaluation") or {}, dict):
        raise SkillFormatError(f"{path}: evaluation must be a mapping, got {m['evaluation']!r}")
    contract_to_spec(m, str(path))
    return m


def dump_contract(manifest: Mapping[str, Any]) -> str:
    """A parsed contract as YAML text (as ``skill.yaml`` writes it)."""
    return _dump_yaml(manifest)


def update_manifest(skill_dir: str | os.PathLike, *, evaluation: Mapping[str, Any] | None = None,
                    trust_tier: str | None = None, version: str | None = None,
                    retired: Mapping[str, Any] | None = None,
                    history: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Rewrite ``skill.yaml`` atomically with a new evaluation record / trust tier / version /
    retirement record, optionally appending one ``history`` entry (e.g. a promotion).

    The existing contract is verified first and every argument validated before anything is
    written; ``contract_sha256`` is recomputed. A failed call leaves the file untouched.

    Raises:
        ValueError: unknown trust tier. SkillFormatError / SkillIntegrityError: as
            :func:`read_manifest`, or a version that is not ``MAJOR.MINOR.PATCH``.
    """
    m = read_manifest(skill_dir)
    if trust_tier is not None:
        if trust_tier not in TRUST_TIERS:
            raise ValueError(f"unknown trust tier {trust_tier!r}; expected one of {TRUST_TIERS}")
        m["trust_tier"] = trust_tier
    if evaluation is not None:
        m["evaluation"] = _plain(dict(evaluation))
    if version is not None:
        parse_version(str(version), str(skill_dir))
        m["version"] = str(version)
    if retired is not None:
        m["retired"] = _plain(dict(retired))
    if history is not None:
        m["history"] = [*list(m.get("history") or []), _plain(dict(history))]
    m["contract_sha256"] = _contract_hash(m)
    atomic_write_text(Path(skill_dir) / SKILL_YAML, _dump_yaml(m))
    return m


@dataclass
class LoadedSkill:
    """A verified skill directory in memory.

    Attributes:
        path: the directory.
        manifest: parsed ``skill.yaml``.
        spec: its contract as a :class:`SkillSpec`.
        adapter_state: tensors of ``adapter.safetensors``.
        stats: normalisation statistics.
    """

    path: Path
    manifest: dict[str, Any]
    spec: SkillSpec
    adapter_state: dict[str, torch.Tensor]
    stats: NormStats
    adapter_config: dict[str, Any] | None = None
    """Parsed ``adapter_config.json`` (PEFT) of a ``lora`` skill; None for ``full`` / legacy."""

    @property
    def version(self) -> str:
        """The contract's semantic version."""
        return str(self.manifest["version"])

    @property
    def kind(self) -> str:
        """``"lora"`` or ``"full"``."""
        return self.manifest["adapter"]["kind"]


def load_skill(skill_dir: str | os.PathLike, base: BasePolicy | None = None) -> LoadedSkill:
    """Read a skill directory, verifying every file's sha256 and the base it adapts.

    Args:
        skill_dir: the directory.
        base: the library's base record; required to load a ``lora`` skill (its sha256 must equal
            the contract's ``base_policy.sha256``).

    Raises:
        SkillFormatError: missing / malformed files, unknown trust tier, missing base, a file that
            is not regular or over its size limit, weights holding NaN/inf, non-finite stats.
        SkillIntegrityError: a file or the contract does not match its recorded size or sha256,
            or the base is not the one the skill was trained on (message names the file and both
            hashes).
    """
    skill_dir = Path(skill_dir)
    m = read_manifest(skill_dir)
    what = str(skill_dir / SKILL_YAML)
    sizes = m.get("file_sizes") or {}
    wf = weights_file(m)
    adapter_bytes = _read_verified(skill_dir / wf, m["files"][wf], what,
                                   sizes.get(wf), MAX_WEIGHTS_BYTES)
    stats_bytes = _read_verified(skill_dir / STATS_FILE, m["files"][STATS_FILE], what,
                                 sizes.get(STATS_FILE), MAX_STATS_FILE_BYTES)
    peft_cfg = None
    if PEFT_CONFIG in m["files"]:
        cfg_bytes = _read_verified(skill_dir / PEFT_CONFIG, m["files"][PEFT_CONFIG], what,
                                   sizes.get(PEFT_CONFIG), MAX_CONTRACT_BYTES)
        try:
            peft_cfg = parse_config(cfg_bytes, str(skill_dir / PEFT_CONFIG))
        except AdapterError as e:
            raise SkillFormatError(str(e)) from None
        want_ref = base_ref(str(m["base_policy"].get("sha256")))
        if peft_cfg.get("base_model_name_or_path") != want_ref:
            raise SkillIntegrityError(
                f"{skill_dir / PEFT_CONFIG}: base_model_name_or_path "
                f"{peft_cfg.get('base_model_name_or_path')!r} differs from the contract's base "
                f"{want_ref!r}; refusing to load")
    if m["adapter"]["kind"] == "lora":
        if base is None:
            raise SkillFormatError(f"{skill_dir}: a LoRA skill needs the library's base policy")
        want = str(m["base_policy"].get("sha256"))
        if base.sha256 != want:
            raise SkillIntegrityError(
                f"{skill_dir}: adapts base policy {want} but the library's base "
                f"({base.path / BASE_WEIGHTS if base.path else 'base'}) is {base.sha256}; "
                "refusing to load an adapter onto a different base")
    state = _load_weights(adapter_bytes, skill_dir / wf)
    try:
        stats = NormStats.from_json(stats_bytes, str(skill_dir / STATS_FILE))
    except ValueError as e:
        raise SkillFormatError(str(e)) from None
    return LoadedSkill(skill_dir, m, contract_to_spec(m, what), state, stats, peft_cfg)


def build_model(loaded: LoadedSkill, base_state: Mapping[str, torch.Tensor] | None = None,
                merge: bool = True) -> tuple[GoalConditionedBC, int]:
    """Instantiate the skill's network (base + merged LoRA, or the full policy).

    Args:
        loaded: a verified skill.
        base_state: the base network's weights (required for ``lora``).
        merge: fold the LoRA update into the weights (inference); False keeps ``LoRALinear``
            layers (for further training or composition).

    Returns:
        ``(model, skill_id)`` with the model on CPU in eval mode.

    Raises:
        SkillFormatError: the adapter does not fit the architecture.
    """
    m = loaded.manifest
    try:
        if loaded.kind == "full":
            arch = BCConfig.from_dict(m["adapter"]["arch"])
            _check_fits(loaded.adapter_state, arch, str(loaded.path / weights_file(m)))
            model = GoalConditionedBC(arch)
            model.load_state_dict(dict(loaded.adapter_state), strict=True)
            return model.eval(), 0
        if base_state is None:
            raise SkillFormatError(f"{loaded.path}: a LoRA skill needs the base weights")
        bp = m["base_policy"]
        arch = BCConfig.from_dict(bp["arch"])
        _check_fits(base_state, arch, f"{loaded.path / SKILL_YAML} base_policy")
        model = GoalConditionedBC(arch)
        model.load_state_dict(dict(base_state), strict=True)
        ad = m["adapter"]
        if loaded.adapter_config is not None:  # PEFT format
            out = apply_adapter(model, loaded.adapter_config, loaded.adapter_state, merge=merge,
                                where=str(loaded.path / PEFT_WEIGHTS))
            if merge:
                model = out
        else:  # the older format: the project's own LoRALinear
            rank = int(ad.get("rank", adapter_rank(loaded.adapter_state)))
            inject_lora(model, rank, float(ad.get("alpha", rank)), ad.get("target_layers"))
            load_lora_state_dict(model, loaded.adapter_state)
            if merge:
                merge_lora(model)
        sid = int(bp.get("skill_id", 0))
        if not 0 <= sid < arch.num_skills:
            raise SkillFormatError(f"{loaded.path}: skill_id {sid} outside the base's "
                                   f"{arch.num_skills} skills")
        return model.eval(), sid
    except (RuntimeError, KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
        if isinstance(e, (SkillFormatError, SkillIntegrityError)):
            raise
        raise SkillFormatError(f"{loaded.path}: weights do not fit the recorded architecture: {e}"
                               ) from e


def make_learned_skill(loaded: LoadedSkill, base_state: Mapping[str, torch.Tensor] | None = None,
                       ensemble_m: float | None = 0.01) -> LearnedSkill:
    """A ready-to-run :class:`LearnedSkill` (merged weights, CPU) for a verified skill.

    Raises:
        SkillFormatError: as :func:`build_model`; also when the merged network holds NaN/inf
            (e.g. a LoRA update that overflows float32) or its chunk size differs from the
            statistics'.
    """
    model, sid = build_model(loaded, base_state, merge=True)
    try:
        return LearnedSkill(loaded.spec.name, model, loaded.stats, sid, loaded.spec, ensemble_m,
                            manifest=loaded.manifest)
    except ValueError as e:
        raise SkillFormatError(f"{loaded.path}: {e}") from None
