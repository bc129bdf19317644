"""A directory of skills sharing one base policy: list, verify, load, expose contracts.

Layout (see :mod:`robot_skills.skills.skill_dir`)::

    <root>/base/{base.safetensors, base.yaml}
    <root>/<skill name>/{skill.yaml, adapter.safetensors, stats.json}

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
    SKILL_YAML,
    STATS_FILE,
    BasePolicy,
    LoadedSkill,
    SkillFormatError,
    contract_to_spec,
    load_base,
    load_skill,
    make_learned_skill,
    read_manifest,
    update_manifest,
)

SKILL_FILES = (SKILL_YAML, ADAPTER_FILE, STATS_FILE)
"""The files every skill directory holds."""


class SkillLibrary:
    """Skills on disk under ``root``; every load is verified against the contracts' hashes.

    Args:
        root: the library directory.
        ensemble_m: temporal-ensembling coefficient given to loaded skills (None = open loop).

    Raises:
        FileNotFoundError: if ``root`` is not a directory.
    """

    def __init__(self, root: str | os.PathLike, ensemble_m: float | None = 0.01) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no skill library at {self.root}")
        self.ensemble_m = ensemble_m
        self._base: tuple[BasePolicy, dict[str, torch.Tensor]] | None = None
        self._cache: dict[str, LearnedSkill] = {}

    def list(self) -> list[str]:
        """Sorted names of the skill directories: every subdirectory (or symlink, even a dangling
        one) of the root except ``base`` and hidden ones (``.work``, temporaries of atomic
        writes). A directory that is not a complete skill is listed too, so loading it fails
        loudly, naming it (see :meth:`incomplete`), instead of the skill silently vanishing.
        """
        return sorted(p.name for p in self.root.iterdir()
                      if (p.is_dir() or p.is_symlink()) and p.name != BASE_DIR
                      and not p.name.startswith("."))

    def incomplete(self) -> dict[str, str]:
        """Skill directories lacking one of ``skill.yaml``, ``adapter.safetensors``,
        ``stats.json`` as a regular file: name -> what is missing. Reads no file."""
        out: dict[str, str] = {}
        for n in self.list():
            d = self.root / n
            if not d.is_dir():
                out[n] = f"{d} is not a directory"
                continue
            missing = [f for f in SKILL_FILES if not (d / f).is_file()]
            if missing:
                out[n] = (f"{d} is not a complete skill: missing {', '.join(missing)} "
                          "(a skill directory holds " + ", ".join(SKILL_FILES) + ")")
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

    def _dir(self, name: str) -> Path:
        if name not in self.list():
            raise KeyError(f"no skill {name!r} in library {self.root}; skills: {self.list()}")
        return self.root / name

    def manifest(self, name: str) -> dict[str, Any]:
        """Parsed, contract-hash-checked ``skill.yaml`` of ``name``.

        Raises:
            KeyError: unknown skill. SkillFormatError / SkillIntegrityError: bad contract, or the
                directory name differs from the contract's name.
        """
        m = read_manifest(self._dir(name))
        if m["name"] != name:
            raise SkillFormatError(f"{self.root / name}: directory name differs from the "
                                   f"contract's name {m['name']!r}")
        return m

    def load(self, name: str) -> LoadedSkill:
        """Verified :class:`LoadedSkill` (every file hashed, base hash checked)."""
        d = self._dir(name)
        m = self.manifest(name)
        base = self.base()[0] if m["adapter"]["kind"] == "lora" else None
        return load_skill(d, base)

    def get(self, name: str) -> LearnedSkill:
        """A ready-to-run :class:`LearnedSkill` (cached per name).

        Raises:
            KeyError: unknown skill. SkillFormatError / SkillIntegrityError: refused on load.
        """
        if name not in self._cache:
            loaded = self.load(name)
            base_state = self.base()[1] if loaded.kind == "lora" else None
            self._cache[name] = make_learned_skill(loaded, base_state, self.ensemble_m)
        return self._cache[name]

    @property
    def contracts(self) -> dict[str, SkillSpec]:
        """Skill name -> :class:`SkillSpec` (parameters, preconditions, effects) for planners.

        Skills whose contract fails to parse or verify are left out (see :meth:`verify_all`).
        """
        out = {}
        for n in self.list():
            try:
                out[n] = contract_to_spec(self.manifest(n), str(self.root / n / SKILL_YAML))
            except (SkillFormatError, ValueError):
                continue
        return out

    def skill_set(self, names: list[str] | None = None) -> SkillSet:
        """Every skill (or ``names``) loaded and verified, with the contracts from its
        ``skill.yaml``: what the executor runs and the planner plans with.

        Raises:
            FileNotFoundError: if the library directory does not exist.
            ValueError: if the library holds no skills, or naming every skill that failed to
                load (tampered file, wrong base hash, malformed contract, NaN weights) and every
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
                                  for n, msg in self.incomplete().items() if n not in names}
        for n in names:
            try:
                policies[n] = self.get(n)
                specs[n] = contract_to_spec(self.manifest(n), str(self.root / n / SKILL_YAML))
            except (ValueError, KeyError, OSError) as e:
                errors[n] = f"{type(e).__name__}: {e}"
        if errors:
            raise ValueError(f"skill library {self.root}: {len(errors)} skill(s) refused: "
                             + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
        return SkillSet(policies, specs)

    def verify_all(self) -> dict[str, str]:
        """Verify every skill fully (contract, file sizes and hashes, base hash, finite weights,
        weights fit the arch). Every directory :meth:`list` names is reported, so an incomplete
        one (e.g. its ``skill.yaml`` deleted) shows up with the missing file named.

        Returns:
            Skill name -> ``"ok"`` or the refusal message. The base is reported under ``"base"``
            when the library has one.
        """
        report: dict[str, str] = {}
        if self.has_base:
            try:
                self._base = None
                self.base()
                report[BASE_DIR] = "ok"
            except ValueError as e:
                report[BASE_DIR] = str(e)
        for n in self.list():
            try:
                loaded = self.load(n)
                base_state = self.base()[1] if loaded.kind == "lora" else None
                make_learned_skill(loaded, base_state, self.ensemble_m)
                report[n] = "ok"
            except (ValueError, KeyError, OSError) as e:
                report[n] = str(e)
        return report

    def set_evaluation(self, name: str, record: Mapping[str, Any],
                       trust_tier: str | None = None) -> dict[str, Any]:
        """Store a sim evaluation record (and optionally a new trust tier) in ``skill.yaml``."""
        m = update_manifest(self._dir(name), evaluation=record, trust_tier=trust_tier)
        self._cache.pop(name, None)
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
    """

    library: str
    ensemble_m: float | None = 0.01

    def __call__(self, task_path: str | os.PathLike | None = None) -> SkillSet:
        """Load and verify every skill (the same library for every task).

        Raises:
            FileNotFoundError / ValueError: as :meth:`SkillLibrary.skill_set`.
        """
        return SkillLibrary(self.library, ensemble_m=self.ensemble_m).skill_set()


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
