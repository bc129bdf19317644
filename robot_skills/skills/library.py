"""A directory of skills sharing one base policy: list, verify, load, expose contracts.

Layout (see :mod:`robot_skills.skills.skill_dir`)::

    <root>/base/{base.safetensors, base.yaml}
    <root>/<skill name>/{skill.yaml, adapter.safetensors, stats.json}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robot_skills.domain.verbs import SkillSpec
from robot_skills.policies.learned_skill import LearnedSkill
from robot_skills.skills.skill_dir import (
    BASE_DIR,
    SKILL_YAML,
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
        """Sorted names of the skill directories (those holding a ``skill.yaml``)."""
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and p.name != BASE_DIR and not p.name.startswith(".")
                      and (p / SKILL_YAML).is_file())

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

    def verify_all(self) -> dict[str, str]:
        """Verify every skill fully (contract, file hashes, base hash, weights fit the arch).

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
            except (ValueError, KeyError) as e:
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
