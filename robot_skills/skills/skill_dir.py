"""The on-disk skill format: a directory with a contract, weights and normalisation statistics.

A skill directory (``<library>/<name>/``) holds:

* ``skill.yaml`` — the contract (:data:`SKILL_FORMAT`): ``name``, ``version``, ``description``,
  typed ``parameters`` (``[{name, type}]``), ``preconditions``, ``effects: {add, del}``,
  ``termination``, ``time_limit_s``, ``needs_open_gripper_at_end`` (all from
  :data:`robot_skills.domain.verbs.SKILL_SPECS` or the caller's own :class:`SkillSpec`);
  ``base_policy`` (``{sha256, arch, skills, skill_id}`` of the shared base network, or null for a
  ``full`` adapter); ``adapter`` (``{kind: lora|full, rank, alpha, target_layers}``, plus ``arch``
  for ``full``); ``provenance`` (``{dataset_sha256, config, code_version, metrics, created}``);
  ``evaluation`` (sim evaluation record, may be filled later); ``trust_tier`` (``sim`` ->
  ``supervised`` -> ``autonomous``); ``files`` (``{adapter.safetensors: sha256, stats.json: sha256}``);
  and ``contract_sha256``, the sha256 of the canonical JSON of every other key (detects edits of
  the contract itself; it is an integrity check, not a signature).
* ``adapter.safetensors`` — LoRA tensors (``<layer>.lora_A/B``) or, for ``full``, a whole
  :class:`~robot_skills.policies.bc.GoalConditionedBC` state dict.
* ``stats.json`` — :class:`~robot_skills.data.dataset.NormStats`.

The shared base lives once per library: ``<library>/base/base.safetensors`` + ``base.yaml``
(``{format, arch, skills, sha256, provenance}``).

Never pickle: safetensors, YAML (``yaml.safe_load`` only) and JSON. Every file is checked against
its sha256 on load; a mismatch raises :class:`SkillIntegrityError` naming the file and both hashes.
Writes are atomic (the directory is built under a temporary name, then renamed into place).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from robot_skills.domain.verbs import Parameter, SkillSpec
from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.learned_skill import LearnedSkill
from robot_skills.policies.lora import adapter_rank, inject_lora, load_lora_state_dict, merge_lora
from robot_skills.policies.normalization import NormStats
from robot_skills.utils.atomic import atomic_dir, atomic_write_text
from robot_skills.utils.version import code_version

SKILL_FORMAT = "robot_skills.skill/1"
BASE_FORMAT = "robot_skills.base/1"
TRUST_TIERS = ("sim", "supervised", "autonomous")
ADAPTER_KINDS = ("lora", "full")
SKILL_YAML = "skill.yaml"
ADAPTER_FILE = "adapter.safetensors"
STATS_FILE = "stats.json"
BASE_DIR = "base"
BASE_WEIGHTS = "base.safetensors"
BASE_YAML = "base.yaml"


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
    if not path.is_file():
        raise SkillFormatError(f"missing {path}")
    try:
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SkillFormatError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(d, dict):
        raise SkillFormatError(f"{path} must hold a YAML mapping, got {type(d).__name__}")
    return d


def _dump_yaml(d: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(d), sort_keys=False, default_flow_style=False, allow_unicode=True)


def _read_verified(path: Path, expected: str, what: str) -> bytes:
    if not path.is_file():
        raise SkillFormatError(f"missing {path} (listed in {what})")
    data = path.read_bytes()
    got = sha256_bytes(data)
    if got != expected:
        raise SkillIntegrityError(f"{path}: sha256 {got} does not match {expected} recorded in "
                                  f"{what}; the file was modified or swapped — refusing to load")
    return data


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
    if not tl > 0:
        raise SkillFormatError(f"{where}: time_limit_s must be > 0, got {tl}")
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
    """

    arch: BCConfig
    skills: list[str]
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


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
            "provenance": _plain(dict(provenance or {}))}
    dest = Path(library_root) / BASE_DIR
    with atomic_dir(dest) as tmp:
        (tmp / BASE_WEIGHTS).write_bytes(data)
        (tmp / BASE_YAML).write_text(_dump_yaml(meta))
    return BasePolicy(arch, list(skills), sha, meta["provenance"], dest)


def read_base_info(library_root: str | os.PathLike) -> BasePolicy:
    """Parse ``base/base.yaml`` (no weights read).

    Raises:
        SkillFormatError: missing / malformed ``base.yaml``.
    """
    d = Path(library_root) / BASE_DIR
    m = _read_yaml(d / BASE_YAML)
    for k in ("arch", "skills", "sha256"):
        if k not in m:
            raise SkillFormatError(f"{d / BASE_YAML}: missing key {k!r}")
    try:
        arch = BCConfig.from_dict(m["arch"])
    except (TypeError, ValueError) as e:
        raise SkillFormatError(f"{d / BASE_YAML}: bad arch: {e}") from e
    return BasePolicy(arch, list(m["skills"]), str(m["sha256"]), m.get("provenance") or {}, d)


def load_base(library_root: str | os.PathLike) -> tuple[BasePolicy, dict[str, torch.Tensor]]:
    """Read and verify the base network.

    Returns:
        The :class:`BasePolicy` record and its state dict (CPU tensors).

    Raises:
        SkillFormatError: missing / malformed files.
        SkillIntegrityError: ``base.safetensors`` does not match the sha256 in ``base.yaml``.
    """
    info = read_base_info(library_root)
    data = _read_verified(info.path / BASE_WEIGHTS, info.sha256, str(info.path / BASE_YAML))
    return info, st_load(data)


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
        adapter_state: LoRA tensors, or a whole policy's state dict for ``kind: full``.
        stats: normalisation statistics.
        adapter: ``{kind: "lora", rank, alpha, target_layers}`` or ``{kind: "full", arch: {...}}``.
        base: the base network a LoRA adapts (required for ``lora``, ignored for ``full``).
        skill_id: this skill's row in the base's skill embedding (0 for ``full``).
        version: the skill's semantic version.
        provenance: ``{dataset_sha256, config, metrics, ...}``; ``code_version`` and ``created``
            are filled in when absent.
        evaluation: sim evaluation record (may be empty and filled later).
        trust_tier: one of :data:`TRUST_TIERS`.
        overwrite: replace an existing directory.

    Returns:
        The skill directory.

    Raises:
        ValueError: unknown trust tier / adapter kind, missing base for ``lora``, bad skill_id.
    """
    if trust_tier not in TRUST_TIERS:
        raise ValueError(f"unknown trust tier {trust_tier!r}; expected one of {TRUST_TIERS}")
    adapter = _plain(dict(adapter))
    kind = adapter.get("kind")
    if kind not in ADAPTER_KINDS:
        raise ValueError(f"adapter kind must be one of {ADAPTER_KINDS}, got {kind!r}")
    if kind == "lora":
        if base is None:
            raise ValueError("a LoRA skill needs the base policy it adapts")
        if not 0 <= skill_id < base.arch.num_skills:
            raise ValueError(f"skill_id {skill_id} outside the base's {base.arch.num_skills} skills")
        base_rec: dict[str, Any] | None = {"sha256": base.sha256, "arch": base.arch.to_dict(),
                                           "skills": list(base.skills), "skill_id": int(skill_id)}
    else:
        if "arch" not in adapter:
            raise ValueError("a full adapter records its arch")
        BCConfig.from_dict(adapter["arch"])
        base_rec = None
    adapter_bytes = st_save({k: v.detach().cpu().contiguous() for k, v in adapter_state.items()},
                            metadata={"format": SKILL_FORMAT, "kind": kind})
    stats_bytes = (json.dumps(stats.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    prov = _plain(dict(provenance or {}))
    prov.setdefault("code_version", code_version())
    prov.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    manifest: dict[str, Any] = {"format": SKILL_FORMAT, "name": spec.name, "version": str(version)}
    manifest.update(spec_to_contract(spec))
    manifest.update({
        "base_policy": base_rec, "adapter": adapter, "provenance": prov,
        "evaluation": _plain(dict(evaluation or {})), "trust_tier": trust_tier,
        "files": {ADAPTER_FILE: sha256_bytes(adapter_bytes), STATS_FILE: sha256_bytes(stats_bytes)},
    })
    manifest["contract_sha256"] = _contract_hash(manifest)
    with atomic_dir(skill_dir, overwrite=overwrite) as tmp:
        (tmp / ADAPTER_FILE).write_bytes(adapter_bytes)
        (tmp / STATS_FILE).write_bytes(stats_bytes)
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
    if m.get("format") != SKILL_FORMAT:
        raise SkillFormatError(f"{path}: format {m.get('format')!r}, expected {SKILL_FORMAT!r}")
    for k in ("name", "version", "adapter", "files", "trust_tier", "contract_sha256"):
        if k not in m:
            raise SkillFormatError(f"{path}: missing required key {k!r}")
    recorded = str(m["contract_sha256"])
    got = _contract_hash(m)
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
    if not isinstance(files, dict) or set(files) != {ADAPTER_FILE, STATS_FILE}:
        raise SkillFormatError(f"{path}: files must list exactly {ADAPTER_FILE} and {STATS_FILE}, "
                               f"got {files!r}")
    if ad["kind"] == "lora" and not isinstance(m.get("base_policy"), dict):
        raise SkillFormatError(f"{path}: a LoRA skill must name its base_policy")
    contract_to_spec(m, str(path))
    return m


def update_manifest(skill_dir: str | os.PathLike, *, evaluation: Mapping[str, Any] | None = None,
                    trust_tier: str | None = None, version: str | None = None) -> dict[str, Any]:
    """Rewrite ``skill.yaml`` atomically with a new evaluation record / trust tier / version.

    The existing contract is verified first; ``contract_sha256`` is recomputed.

    Raises:
        ValueError: unknown trust tier. SkillFormatError / SkillIntegrityError: as
            :func:`read_manifest`.
    """
    m = read_manifest(skill_dir)
    if trust_tier is not None:
        if trust_tier not in TRUST_TIERS:
            raise ValueError(f"unknown trust tier {trust_tier!r}; expected one of {TRUST_TIERS}")
        m["trust_tier"] = trust_tier
    if evaluation is not None:
        m["evaluation"] = _plain(dict(evaluation))
    if version is not None:
        m["version"] = str(version)
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
        SkillFormatError: missing / malformed files, unknown trust tier, missing base.
        SkillIntegrityError: a file or the contract does not match its recorded sha256, or the base
            is not the one the skill was trained on (message names the file and both hashes).
    """
    skill_dir = Path(skill_dir)
    m = read_manifest(skill_dir)
    what = str(skill_dir / SKILL_YAML)
    adapter_bytes = _read_verified(skill_dir / ADAPTER_FILE, str(m["files"][ADAPTER_FILE]), what)
    stats_bytes = _read_verified(skill_dir / STATS_FILE, str(m["files"][STATS_FILE]), what)
    if m["adapter"]["kind"] == "lora":
        if base is None:
            raise SkillFormatError(f"{skill_dir}: a LoRA skill needs the library's base policy")
        want = str(m["base_policy"].get("sha256"))
        if base.sha256 != want:
            raise SkillIntegrityError(
                f"{skill_dir}: adapts base policy {want} but the library's base "
                f"({base.path / BASE_WEIGHTS if base.path else 'base'}) is {base.sha256}; "
                "refusing to load an adapter onto a different base")
    try:
        state = st_load(adapter_bytes)
    except Exception as e:  # safetensors raises its own error type
        raise SkillFormatError(f"{skill_dir / ADAPTER_FILE} is not a valid safetensors file: {e}"
                               ) from e
    try:
        stats = NormStats.from_dict(json.loads(stats_bytes))
    except (ValueError, json.JSONDecodeError) as e:
        raise SkillFormatError(f"{skill_dir / STATS_FILE}: {e}") from e
    return LoadedSkill(skill_dir, m, contract_to_spec(m, what), state, stats)


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
            model = GoalConditionedBC(BCConfig.from_dict(m["adapter"]["arch"]))
            model.load_state_dict(dict(loaded.adapter_state), strict=True)
            return model.eval(), 0
        if base_state is None:
            raise SkillFormatError(f"{loaded.path}: a LoRA skill needs the base weights")
        bp = m["base_policy"]
        arch = BCConfig.from_dict(bp["arch"])
        model = GoalConditionedBC(arch)
        model.load_state_dict(dict(base_state), strict=True)
        ad = m["adapter"]
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
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, (SkillFormatError, SkillIntegrityError)):
            raise
        raise SkillFormatError(f"{loaded.path}: weights do not fit the recorded architecture: {e}"
                               ) from e


def make_learned_skill(loaded: LoadedSkill, base_state: Mapping[str, torch.Tensor] | None = None,
                       ensemble_m: float | None = 0.01) -> LearnedSkill:
    """A ready-to-run :class:`LearnedSkill` (merged weights, CPU) for a verified skill."""
    model, sid = build_model(loaded, base_state, merge=True)
    return LearnedSkill(loaded.spec.name, model, loaded.stats, sid, loaded.spec, ensemble_m,
                        manifest=loaded.manifest)
