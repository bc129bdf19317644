"""A directory of skills sharing one base policy: list, verify, load, expose contracts.

Layout (see :mod:`robot_skills.skills.skill_dir`)::

    <root>/base/{base.safetensors, base.yaml}
    <root>/<skill name>/{skill.yaml, adapter_config.json, adapter_model.safetensors, stats.json}
    <root>/<skill name>@<MAJOR.MINOR.PATCH>/...      (further versions, side by side)

A whole-policy skill holds ``policy.safetensors`` instead of PEFT's pair; skills written in the
older format (``adapter.safetensors``) still load. Which version a name means is decided by
:meth:`SkillLibrary.resolve` (pins, the caller's required trust tier, retirement).

Every non-hidden subdirectory other than ``base`` is a skill; one that is not complete is an
error naming it when the library is loaded (:meth:`SkillLibrary.skill_set`,
:meth:`SkillLibrary.verify_all`). Hidden entries (``.work``, ``.<name>.*.tmp``) are not skills.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from robot_skills.domain.verbs import MAX_SKILL_ARGS, SkillSpec
from robot_skills.execution.interfaces import SkillSet
from robot_skills.policies.learned_skill import LearnedSkill
from robot_skills.skills.skill_dir import (
    ADAPTER_FILE,
    BASE_DIR,
    PEFT_CONFIG,
    PEFT_WEIGHTS,
    POLICY_FILE,
    SKILL_YAML,
    STATS_FILE,
    TRUST_TIERS,
    BasePolicy,
    LoadedSkill,
    SkillFormatError,
    contract_to_spec,
    load_base,
    load_skill,
    make_learned_skill,
    parse_version,
    read_manifest,
    update_manifest,
)

SKILL_FILES = (SKILL_YAML, ADAPTER_FILE, STATS_FILE)
"""The files a skill directory of the older format (``robot_skills.skill/1``) holds."""
WEIGHT_SETS = ((PEFT_CONFIG, PEFT_WEIGHTS), (POLICY_FILE,), (ADAPTER_FILE,))
"""The weight files a complete skill directory holds besides ``skill.yaml`` and ``stats.json``:
PEFT's pair (a LoRA skill), ``policy.safetensors`` (a whole small policy) or the older
``adapter.safetensors``."""
VERSION_SEP = "@"
"""A skill version's directory is ``<name>@<MAJOR.MINOR.PATCH>``; a plain ``<name>`` directory
is one version too (the one its contract names)."""


class TrustTierError(ValueError):
    """No usable version of a skill reaches the caller's required trust tier (or a pinned version
    is below it, retired, or absent)."""


def tier_rank(tier: str) -> int:
    """Position of ``tier`` in :data:`TRUST_TIERS` (``sim`` = 0 < ``supervised`` < ``autonomous``).

    Raises:
        ValueError: unknown tier.
    """
    if tier not in TRUST_TIERS:
        raise ValueError(f"unknown trust tier {tier!r}; expected one of {TRUST_TIERS}")
    return TRUST_TIERS.index(tier)


def split_entry(entry: str) -> tuple[str, str | None]:
    """``"pick@1.2.0"`` -> ``("pick", "1.2.0")``; ``"pick"`` -> ``("pick", None)``."""
    name, sep, ver = entry.partition(VERSION_SEP)
    return name, (ver if sep else None)


@dataclass(frozen=True)
class SkillVersion:
    """One version of a skill on disk.

    Attributes:
        name / version: from the contract.
        entry: the directory name (``<name>`` or ``<name>@<version>``).
        path: the directory.
        manifest: the parsed, hash-checked contract.
    """

    name: str
    version: str
    entry: str
    path: Path
    manifest: dict[str, Any]

    @property
    def tier(self) -> str:
        """The contract's trust tier."""
        return str(self.manifest["trust_tier"])

    @property
    def retired(self) -> bool:
        """True once ``rs-library retire`` marked this version."""
        return self.manifest.get("retired") is not None

    @property
    def key(self) -> tuple[int, int, int]:
        """Semantic-version ordering key."""
        return parse_version(self.version)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class SkillLibrary:
    """Skills on disk under ``root``; every load is verified against the contracts' hashes.

    Several versions of a skill live side by side (``<name>@<version>/``, or one plain
    ``<name>/``). Which one a name means: the ``pins[name]`` version if pinned, else the newest
    (semantic-version order) non-retired version whose trust tier reaches ``min_tier``. A pinned
    version below ``min_tier`` or retired, or a name with no version at the tier, raises
    :class:`TrustTierError` naming every version and its tier.

    Args:
        root: the library directory.
        ensemble_m: temporal-ensembling coefficient given to loaded skills (None = open loop).
        min_tier: the caller's required trust tier (``sim`` accepts every version).
        pins: skill name -> exact version to use.

    Raises:
        FileNotFoundError: if ``root`` is not a directory. ValueError: unknown ``min_tier``, or a
            pin that is not ``MAJOR.MINOR.PATCH``.
    """

    def __init__(self, root: str | os.PathLike, ensemble_m: float | None = 0.01,
                 min_tier: str = "sim", pins: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no skill library at {self.root}")
        self.ensemble_m = ensemble_m
        tier_rank(min_tier)
        self.min_tier = min_tier
        self.pins = dict(pins or {})
        for n, v in self.pins.items():
            parse_version(v, f"pin for skill {n!r}")
        self._base: tuple[BasePolicy, dict[str, torch.Tensor]] | None = None
        self._cache: dict[Path, LearnedSkill] = {}

    def entries(self) -> list[str]:
        """Sorted names of the skill directories: every subdirectory (or symlink, even a dangling
        one) of the root except ``base`` and hidden ones (``.work``, temporaries of atomic
        writes). A directory that is not a complete skill is listed too, so loading it fails
        loudly, naming it (see :meth:`incomplete`), instead of the skill silently vanishing.
        """
        return sorted(p.name for p in self.root.iterdir()
                      if (p.is_dir() or p.is_symlink()) and p.name != BASE_DIR
                      and not p.name.startswith("."))

    def list(self) -> list[str]:
        """Sorted skill names (each once, however many versions it has; see :meth:`entries`)."""
        return sorted({split_entry(e)[0] for e in self.entries()})

    def incomplete(self) -> dict[str, str]:
        """Skill directories lacking ``skill.yaml``, ``stats.json`` or a set of weight files
        (:data:`WEIGHT_SETS`) as regular files: directory name -> what is missing. Reads no file."""
        out: dict[str, str] = {}
        for n in self.entries():
            d = self.root / n
            if not d.is_dir():
                out[n] = f"{d} is not a directory"
                continue
            missing = [f for f in (SKILL_YAML, STATS_FILE) if not (d / f).is_file()]
            have_weights = [ws for ws in WEIGHT_SETS if all((d / f).is_file() for f in ws)]
            if not have_weights:
                partial = [ws for ws in WEIGHT_SETS if any((d / f).is_file() for f in ws)]
                want = partial[0] if partial else WEIGHT_SETS[0]
                missing += [f for f in want if not (d / f).is_file()]
            if missing:
                out[n] = (f"{d} is not a complete skill: missing {', '.join(missing)} "
                          f"(a skill directory holds {SKILL_YAML}, {STATS_FILE} and "
                          f"{' + '.join(WEIGHT_SETS[0])} or {WEIGHT_SETS[1][0]})")
        return out

    def __contains__(self, name: str) -> bool:
        return name in self.list()

    def __len__(self) -> int:
        return len(self.list())

    @property
    def has_base(self) -> bool:
        """True if the library holds a shared base policy."""
        return (self.root / BASE_DIR).is_dir()

    def base(self) -> tuple[BasePolicy, dict[str, torch.Tensor]]:
        """The verified base record and weights (cached).

        Raises:
            SkillFormatError / SkillIntegrityError: see :func:`load_base`.
        """
        if self._base is None:
            self._base = load_base(self.root)
        return self._base

    # ------------------------------------------------------------------ versions
    def versions(self, name: str) -> list[SkillVersion]:
        """Every version of ``name`` on disk, oldest first (semantic-version order).

        Raises:
            KeyError: unknown skill. SkillFormatError / SkillIntegrityError: a contract of this
                skill is malformed or edited, names another skill, a ``<name>@<v>`` directory
                whose contract has another version, or two directories with the same version.
        """
        entries = [e for e in self.entries() if split_entry(e)[0] == name]
        if not entries:
            raise KeyError(f"no skill {name!r} in library {self.root}; skills: {self.list()}")
        out: list[SkillVersion] = []
        for e in entries:
            d = self.root / e
            m = read_manifest(d)
            _, ver = split_entry(e)
            if m["name"] != name:
                raise SkillFormatError(f"{d}: directory name differs from the contract's name "
                                       f"{m['name']!r}")
            if ver is not None and ver != m["version"]:
                raise SkillFormatError(f"{d}: directory names version {ver!r}, the contract "
                                       f"{m['version']!r}")
            out.append(SkillVersion(name, str(m["version"]), e, d, m))
        out.sort(key=lambda v: v.key)
        dup = [a for a, b in zip(out, out[1:]) if a.version == b.version]
        if dup:
            raise SkillFormatError(f"{self.root}: skill {name!r} version {dup[0].version} is in "
                                   "two directories: "
                                   + ", ".join(v.entry for v in out if v.version == dup[0].version))
        return out

    def resolve(self, name: str, min_tier: str | None = None,
                version: str | None = None) -> SkillVersion:
        """The version of ``name`` a caller requiring ``min_tier`` gets (see the class doc).

        Args:
            name: skill name.
            min_tier: required tier; None = the library's :attr:`min_tier`.
            version: an exact version; None = ``pins.get(name)``, else the newest eligible.

        Raises:
            KeyError: unknown skill. TrustTierError: the pinned version is absent, retired or
                below ``min_tier``; no version reaches ``min_tier``.
        """
        need = self.min_tier if min_tier is None else min_tier
        r = tier_rank(need)
        vs = self.versions(name)
        listing = ", ".join(f"{v.version} [{v.tier}{', retired' if v.retired else ''}]"
                            for v in vs)
        pin = version if version is not None else self.pins.get(name)
        if pin is not None:
            hit = [v for v in vs if v.version == pin]
            if not hit:
                raise TrustTierError(f"skill {name!r} has no version {pin}; versions: {listing}")
            v = hit[0]
            if v.retired:
                raise TrustTierError(f"skill {v} is retired ({v.manifest['retired']}); "
                                     f"versions: {listing}")
            if tier_rank(v.tier) < r:
                raise TrustTierError(f"skill {v} has trust tier {v.tier!r}, below the required "
                                     f"{need!r}; versions: {listing}")
            return v
        ok = [v for v in vs if not v.retired and tier_rank(v.tier) >= r]
        if not ok:
            raise TrustTierError(f"skill {name!r} has no non-retired version at or above trust "
                                 f"tier {need!r}; versions: {listing}")
        return ok[-1]

    def _dir(self, name: str) -> Path:
        return self.resolve(name).path

    def manifest(self, name: str) -> dict[str, Any]:
        """Parsed, contract-hash-checked ``skill.yaml`` of the version ``name`` resolves to.

        Raises:
            KeyError: unknown skill. TrustTierError: see :meth:`resolve`.
            SkillFormatError / SkillIntegrityError: bad contract, or the directory name differs
                from the contract's name.
        """
        return self.resolve(name).manifest

    def load(self, name: str) -> LoadedSkill:
        """Verified :class:`LoadedSkill` of the resolved version (every file hashed, base hash
        checked)."""
        v = self.resolve(name)
        base = self.base()[0] if v.manifest["adapter"]["kind"] == "lora" else None
        return load_skill(v.path, base)

    def get(self, name: str) -> LearnedSkill:
        """A ready-to-run :class:`LearnedSkill` of the resolved version (cached per directory).

        Raises:
            KeyError: unknown skill. TrustTierError: see :meth:`resolve`.
            SkillFormatError / SkillIntegrityError: refused on load.
        """
        v = self.resolve(name)
        if v.path not in self._cache:
            base = self.base()[0] if v.manifest["adapter"]["kind"] == "lora" else None
            loaded = load_skill(v.path, base)
            base_state = self.base()[1] if loaded.kind == "lora" else None
            self._cache[v.path] = make_learned_skill(loaded, base_state, self.ensemble_m)
        return self._cache[v.path]

    @property
    def contracts(self) -> dict[str, SkillSpec]:
        """Skill name -> :class:`SkillSpec` (parameters, preconditions, effects) for planners,
        from each name's resolved version.

        Skills whose contract fails to parse or verify, or with no version at :attr:`min_tier`,
        are left out (see :meth:`verify_all`).
        """
        out = {}
        for n in self.list():
            try:
                v = self.resolve(n)
                out[n] = contract_to_spec(v.manifest, str(v.path / SKILL_YAML))
            except (SkillFormatError, ValueError, KeyError):
                continue
        return out

    def skill_set(self, names: list[str] | None = None) -> SkillSet:
        """Every skill (or ``names``) at its resolved version, loaded and verified, with the
        contracts from its ``skill.yaml``: what the executor runs and the planner plans with.

        Raises:
            FileNotFoundError: if the library directory does not exist.
            ValueError: if the library holds no skills, or naming every skill that failed to
                load (tampered file, wrong base hash, malformed contract, NaN weights, no
                version at the required trust tier — :class:`TrustTierError`) and every
                directory of the library that is not a complete skill (even when ``names`` does
                not ask for it: a damaged library is refused as a whole).
        """
        if not self.root.is_dir():
            raise FileNotFoundError(f"no skill library at {self.root}")
        names = self.list() if names is None else list(names)
        if not names:
            raise ValueError(f"the skill library at {self.root} holds no skills")
        policies: dict[str, LearnedSkill] = {}
        specs: dict[str, SkillSpec] = {}
        errors: dict[str, str] = {n: f"SkillFormatError: {msg}"
                                  for n, msg in self.incomplete().items()
                                  if split_entry(n)[0] not in names}
        for n in names:
            try:
                policies[n] = self.get(n)
                v = self.resolve(n)
                specs[n] = contract_to_spec(v.manifest, str(v.path / SKILL_YAML))
            except (ValueError, KeyError, OSError) as e:
                errors[n] = f"{type(e).__name__}: {e}"
        if errors:
            raise ValueError(f"skill library {self.root}: {len(errors)} skill(s) refused: "
                             + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
        return SkillSet(policies, specs)

    def invalidate(self, path: str | os.PathLike | None = None) -> None:
        """Forget the loaded skill of directory ``path`` (all when None), e.g. after its
        contract was rewritten by a promotion or retirement."""
        if path is None:
            self._cache.clear()
        else:
            self._cache.pop(Path(path), None)

    def verify_entry(self, entry: str) -> None:
        """Verify one skill directory fully (contract, file sizes and hashes, base hash, finite
        weights, weights fit the arch, the merged network builds).

        Raises:
            ValueError / KeyError / OSError: the refusal, naming the file.
        """
        d = self.root / entry
        name, ver = split_entry(entry)
        m = read_manifest(d)
        if m["name"] != name or (ver is not None and ver != m["version"]):
            raise SkillFormatError(f"{d}: directory name differs from the contract's "
                                   f"{m['name']}@{m['version']}")
        base = self.base()[0] if m["adapter"]["kind"] == "lora" else None
        loaded = load_skill(d, base)
        base_state = self.base()[1] if loaded.kind == "lora" else None
        make_learned_skill(loaded, base_state, self.ensemble_m)

    def verify_all(self) -> dict[str, str]:
        """Verify every skill directory fully (see :meth:`verify_entry`). Every directory
        :meth:`entries` names is reported, so an incomplete one (e.g. its ``skill.yaml`` deleted)
        shows up with the missing file named.

        Returns:
            Directory name (``<name>`` or ``<name>@<version>``) -> ``"ok"`` or the refusal
            message. The base is reported under ``"base"`` when the library has one.
        """
        report: dict[str, str] = {}
        if self.has_base:
            try:
                self._base = None
                self.base()
                report[BASE_DIR] = "ok"
            except ValueError as e:
                report[BASE_DIR] = str(e)
        for n in self.entries():
            try:
                self.verify_entry(n)
                report[n] = "ok"
            except (ValueError, KeyError, OSError) as e:
                report[n] = str(e)
        return report

    def set_evaluation(self, name: str, record: Mapping[str, Any],
                       trust_tier: str | None = None) -> dict[str, Any]:
        """Store a sim evaluation record (and optionally a new trust tier) in ``skill.yaml``."""
        d = self._dir(name)
        m = update_manifest(d, evaluation=record, trust_tier=trust_tier)
        self._cache.pop(d, None)
        return m

    def __repr__(self) -> str:
        return f"SkillLibrary({str(self.root)!r}, skills={self.list()})"


@dataclass(frozen=True)
class LibrarySkills:
    """The learned skills of a library directory as a :class:`SkillSet` (``skills=learned``).

    A picklable factory the benchmark runner calls per episode (in worker processes).

    Args:
        library: the library root (``<run_dir>/skills``).
        ensemble_m: ACT temporal-ensembling coefficient (None = open-loop chunks).
        min_tier: the caller's required trust tier (see :meth:`SkillLibrary.resolve`).
        pins: exact versions to use: ``((skill name, version), ...)`` or a mapping (None = no
            pins).
    """

    library: str
    ensemble_m: float | None = 0.01
    min_tier: str = "sim"
    pins: tuple[tuple[str, str], ...] | Mapping[str, str] | None = ()

    def __post_init__(self) -> None:
        # a mapping (e.g. from the Hydra config) becomes sorted pairs: hashable, picklable
        pins = self.pins.items() if isinstance(self.pins, Mapping) else (self.pins or ())
        object.__setattr__(self, "pins", tuple(sorted((str(k), str(v)) for k, v in pins)))
        tier_rank(self.min_tier)

    def __call__(self, task_path: str | os.PathLike | None = None) -> SkillSet:
        """Load and verify every skill at its resolved version (the same library for every
        task).

        Raises:
            FileNotFoundError / ValueError: as :meth:`SkillLibrary.skill_set` (a skill with no
                version at ``min_tier`` is a :class:`TrustTierError` naming it).
        """
        return SkillLibrary(self.library, ensemble_m=self.ensemble_m, min_tier=self.min_tier,
                            pins=dict(self.pins)).skill_set()


def task_conditioning(task_path: str | os.PathLike) -> tuple[str, ...]:
    """Entities a monolithic task policy is conditioned on: the task's ``obj_of_interest``
    (at most :data:`~robot_skills.domain.verbs.MAX_SKILL_ARGS`).

    Raises:
        robot_skills.tasks.bddl.BddlParseError / OSError: on an unreadable task file.
    """
    from robot_skills.tasks.bddl import load_bddl

    return tuple(load_bddl(task_path).obj_of_interest[:MAX_SKILL_ARGS])


class _BoundTaskPolicy:
    """A whole-task policy with its conditioning entities bound (the runner resets with ``()``)."""

    def __init__(self, policy: LearnedSkill, args: tuple[str, ...]) -> None:
        self.policy, self.args, self.name = policy, args, policy.name

    def reset(self, args: Any, world: Any) -> None:
        self.policy.reset(self.args, world)

    def act(self, obs: Any) -> Any:
        return self.policy.act(obs)


@dataclass(frozen=True)
class TaskPolicies:
    """The monolithic baseline: one whole-task policy per task file (``skills=monolithic``).

    Args:
        library: directory of task policies (``<run_dir>/task_policies``), one entry per task
            file stem.
    """

    library: str

    def __call__(self, task_path: str | os.PathLike) -> Any:
        """The policy for ``task_path``, conditioned on the task's objects of interest.

        Raises:
            KeyError: if the library has no policy for this task. ValueError: refused on load.
        """
        policy = SkillLibrary(self.library).get(Path(task_path).stem)
        return _BoundTaskPolicy(policy, task_conditioning(task_path))


@dataclass(frozen=True)
class VisuomotorSkills:
    """The image-based skills of a visuomotor policy directory as a :class:`SkillSet`
    (``eval.policy=visuomotor``; written by
    :func:`robot_skills.training.visuomotor.train_visuomotor`).

    Every skill runs the same :class:`~robot_skills.policies.vision.VisuomotorBC` (one network,
    conditioned on the skill id and its argument entities) and reads the cameras it was trained
    with (the world must render them: ``world.cameras=[...]``), never object poses. A picklable
    factory the benchmark runner calls per episode.

    Args:
        library: the policy directory (``<run_dir>/skills_visuomotor``).
        ensemble_m: ACT temporal-ensembling coefficient (None = open-loop chunks).
    """

    library: str
    ensemble_m: float | None = 0.01

    def __call__(self, task_path: str | os.PathLike | None = None) -> SkillSet:
        """Load and verify the policy; one skill per contract it carries.

        Raises:
            FileNotFoundError: no policy directory. ValueError: a tampered or malformed policy
                (names the file), or a malformed contract.
        """
        from robot_skills.policies.vision import VisuomotorSkill, load_visuomotor

        model, stats, entities, manifest = load_visuomotor(self.library)
        specs = {n: contract_to_spec(c, f"{self.library}: contract {n}")
                 for n, c in manifest["contracts"].items()}
        policies = {n: VisuomotorSkill(n, model, stats, entities, specs[n], self.ensemble_m)
                    for n in specs}
        return SkillSet(policies, specs)
