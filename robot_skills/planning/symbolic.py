"""Symbolic task planning over the skill domain (STRIPS-style forward search).

Each :class:`~robot_skills.domain.verbs.SkillSpec` is a STRIPS operator (Fikes & Nilsson, 1971):
typed parameters, preconditions, add and delete effects (delete effects may hold ``*`` wildcards,
e.g. ``"on ?obj *"``). :class:`SymbolicPlanner` grounds every operator over the entities whose
affordance tags match the parameter types (distinct arguments). Before any search,
:func:`relevance_analysis` rejects goals no skill sequence can reach — a goal atom no skill of the
library adds (naming the atom and the missing verb), a precondition never made true under the
delete relaxation, a goal atom that holds now but would be deleted for good, two goal atoms that
exclude each other — and keeps only the grounded skills that can contribute to the goal. The
search is A* over sets of ground atoms with a landmark-count estimate
(:func:`_landmark_heuristic`; the goal count, the number of goal atoms not yet true, on request),
breaking ties toward lower estimates; an admissible landmark bound drops nodes that cannot reach
the goal within the depth limit. The derived predicate ``accessible`` is recomputed in every
state (:func:`derived_state`), as PDDL axioms are.

Goal atoms follow BDDL semantics: ``("on", x, y)`` is satisfied by the state atom ``("on", x, y)``.
When no plan exists :class:`NoPlanError` says which goal atoms cannot be achieved and why.
``benchmarks/plan_libero.py`` times it over every goal of LIBERO's 130 task files.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from robot_skills.domain.predicates import Atom, SymbolicProblem, format_atom, with_derived
from robot_skills.domain.verbs import SKILL_SPECS, SkillSpec, ground, matches, parse_predicate

__all__ = [
    "derived_state", "SkillCall", "Plan", "NoPlanError", "GroundSkill", "SymbolicPlanner",
    "ground_call", "missing_preconditions", "apply_effects", "simulate_plan", "ground_skills",
    "static_reasons", "relaxed_reachable", "relevance_analysis", "RelevanceReport", "PlanStats",
]


def derived_state(state: frozenset[Atom] | set[Atom],
                  entities: Mapping[str, frozenset[str]]) -> frozenset[Atom]:
    """``state`` plus its derived ``accessible`` atoms, with doors taken into account.

    :func:`~robot_skills.domain.predicates.with_derived` makes an entity accessible when it is
    not ``openable`` or is ``open`` (a drawer region). A container region of a fixture with a
    door (the microwave's ``microwave_1_heating_region``) is not openable itself: it is
    accessible only while its owner is open (the fixture's top surface is not gated). The owner
    is the openable entity whose name, followed by ``_``, starts the region's name (BDDL names a
    region ``<target>_<region>``).

    Args:
        state: true atoms (``accessible`` ones are dropped and recomputed).
        entities: entity name -> affordance tags.

    Returns:
        The state with the derived ``accessible`` atoms.
    """
    full = set(with_derived(frozenset(state), dict(entities)))
    owners = [e for e, tags in entities.items() if "openable" in tags]
    for name, tags in entities.items():
        if "container" not in tags or ("accessible", name) not in full:
            continue
        for owner in owners:
            if owner != name and name.startswith(owner + "_") and ("open", owner) not in full:
                full.discard(("accessible", name))
                break
    return frozenset(full)


def _deriver(entities: Mapping[str, frozenset[str]]):
    """A fast :func:`derived_state` for a fixed entity set: ``f(state) -> full state``.

    An entity is accessible when every atom of its precomputed need list holds: ``open`` of itself
    when openable, and ``open`` of every door owner of a container region; the rest always are.
    """
    owners = [e for e, tags in entities.items() if "openable" in tags]
    always: list[Atom] = []
    needs: list[tuple[Atom, tuple[Atom, ...]]] = []
    for name, tags in entities.items():
        need = [("open", name)] if "openable" in tags else []
        if "container" in tags:
            need += [("open", o) for o in owners if o != name and name.startswith(o + "_")]
        if need:
            needs.append((("accessible", name), tuple(need)))
        else:
            always.append(("accessible", name))

    def full(state: frozenset[Atom] | set[Atom]) -> frozenset[Atom]:
        out = {a for a in state if a[0] != "accessible"}
        out.update(always)
        for acc, need in needs:
            if all(n in out for n in need):
                out.add(acc)
        return frozenset(out)

    return full


_CALL_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class SkillCall:
    """One step of a plan: a skill verb and its entity arguments, in the skill's parameter order.

    ``str(SkillCall("place_on", ("akita_black_bowl_1", "plate_1")))`` is
    ``"place_on(akita_black_bowl_1, plate_1)"``; :meth:`parse` reads that form back.
    """

    skill: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.skill, str) or not self.skill:
            raise ValueError(f"a skill call needs a non-empty skill name, got {self.skill!r}")
        object.__setattr__(self, "args", tuple(str(a) for a in self.args))

    def __str__(self) -> str:
        return f"{self.skill}({', '.join(self.args)})"

    @classmethod
    def parse(cls, text: str) -> SkillCall:
        """Parse ``"place_on(akita_black_bowl_1, plate_1)"`` (arguments comma- or space-separated).

        Raises:
            ValueError: if ``text`` is not of the form ``verb(arg, ...)``.
        """
        m = _CALL_RE.match(text)
        if m is None:
            raise ValueError(f"cannot parse skill call {text!r}; expected 'verb(arg1, arg2)'")
        args = tuple(a for a in re.split(r"[,\s]+", m.group(2).strip()) if a)
        return cls(m.group(1), args)

    def to_dict(self) -> dict:
        """JSON-able form ``{"skill": ..., "args": [...]}``."""
        return {"skill": self.skill, "args": list(self.args)}

    @classmethod
    def coerce(cls, value: SkillCall | str | Mapping | Sequence) -> SkillCall:
        """Accept a :class:`SkillCall`, its string form, a ``{"skill", "args"}`` mapping or a
        ``(skill, args)`` pair.

        Raises:
            ValueError: on anything else.
        """
        if isinstance(value, SkillCall):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            if "skill" not in value:
                raise ValueError(f"skill call mapping lacks 'skill': {value!r}")
            return cls(str(value["skill"]), tuple(value.get("args", ())))
        if isinstance(value, Sequence) and len(value) == 2 and isinstance(value[0], str):
            return cls(value[0], tuple(value[1]))
        raise ValueError(f"cannot interpret {value!r} as a skill call")


@dataclass
class Plan:
    """A sequence of skill calls and the symbolic states the planner expects along it.

    Attributes:
        calls: the skill calls, in execution order.
        states: expected predicate states (derived ``accessible`` atoms excluded);
            ``states[i]`` holds before ``calls[i]`` and ``states[-1]`` after the last call, so
            ``len(states) == len(calls) + 1``. Empty when the plan was not simulated.
        goal: the goal atoms the plan was made for.
    """

    calls: list[SkillCall] = field(default_factory=list)
    states: list[frozenset[Atom]] = field(default_factory=list)
    goal: frozenset[Atom] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Iterator[SkillCall]:
        return iter(self.calls)

    def __getitem__(self, i: int) -> SkillCall:
        return self.calls[i]

    def __str__(self) -> str:
        return "[" + ", ".join(str(c) for c in self.calls) + "]"

    def to_strings(self) -> list[str]:
        """The calls as ``"verb(arg, ...)"`` strings."""
        return [str(c) for c in self.calls]


class NoPlanError(ValueError):
    """No sequence of skills reaches the goal. ``unreachable`` maps goal atoms to reasons."""

    def __init__(self, message: str, unreachable: Mapping[Atom, str] | None = None) -> None:
        super().__init__(message)
        self.unreachable: dict[Atom, str] = dict(unreachable or {})


@dataclass(frozen=True)
class GroundSkill:
    """A skill operator grounded on concrete arguments.

    Attributes:
        call: the skill call.
        pre_pos / pre_neg: atoms that must / must not hold (patterns may hold ``*``).
        add / delete: atoms made true / patterns of atoms made false.
    """

    call: SkillCall
    pre_pos: tuple[Atom, ...]
    pre_neg: tuple[Atom, ...]
    add: tuple[Atom, ...]
    delete: tuple[Atom, ...]


def ground_call(spec: SkillSpec, args: Sequence[str]) -> GroundSkill:
    """Ground ``spec`` on ``args`` (in parameter order).

    Raises:
        ValueError: if the number of arguments differs from the skill's parameters.
    """
    if len(args) != len(spec.parameters):
        raise ValueError(
            f"{spec.name} takes {len(spec.parameters)} argument(s) "
            f"({', '.join(p.name + ': ' + p.type for p in spec.parameters)}), got {len(args)}")
    binding = {p.name: a for p, a in zip(spec.parameters, args)}
    pos, neg, add, delete = _templates(spec)
    return GroundSkill(SkillCall(spec.name, tuple(args)),
                       tuple(ground(t, binding) for t in pos),
                       tuple(ground(t, binding) for t in neg),
                       tuple(ground(t, binding) for t in add),
                       tuple(ground(t, binding) for t in delete))


@functools.lru_cache(maxsize=256)
def _templates(spec: SkillSpec) -> tuple[tuple[Atom, ...], ...]:
    """``spec``'s parsed (positive preconditions, negative preconditions, adds, deletes)."""
    pre = [parse_predicate(t) for t in spec.preconditions]
    return (tuple(t for positive, t in pre if positive),
            tuple(t for positive, t in pre if not positive),
            tuple(parse_predicate(t)[1] for t in spec.add_effects),
            tuple(parse_predicate(t)[1] for t in spec.del_effects))


def _holds(pattern: Atom, state: frozenset[Atom] | set[Atom]) -> bool:
    if "*" not in pattern:
        return pattern in state
    return any(matches(pattern, a) for a in state)


def missing_preconditions(
    g: GroundSkill, state: frozenset[Atom], entities: Mapping[str, frozenset[str]]
) -> list[str]:
    """Preconditions of ``g`` that fail in ``state`` (derived atoms added first).

    Returns:
        BDDL-spelled atoms, ``"(Holding bowl_1)"`` for a missing atom and ``"not (Open d)"`` for a
        negative precondition that is violated; empty when ``g`` is applicable.
    """
    full = derived_state(state, dict(entities))
    out = [format_atom(a) for a in g.pre_pos if not _holds(a, full)]
    out += ["not " + format_atom(a) for a in g.pre_neg if _holds(a, full)]
    return out


def apply_effects(g: GroundSkill, state: frozenset[Atom]) -> frozenset[Atom]:
    """STRIPS progression: remove atoms matching the delete patterns, then add the add effects.

    Derived ``accessible`` atoms are dropped from the result (they are recomputed on demand).
    """
    exact = {p for p in g.delete if "*" not in p}
    wild = [p for p in g.delete if "*" in p]
    kept = {a for a in state if a[0] != "accessible" and a not in exact
            and not (wild and any(p[0] == a[0] and matches(p, a) for p in wild))}
    kept.update(g.add)
    return frozenset(kept)


def simulate_plan(
    calls: Iterable[SkillCall], problem: SymbolicProblem,
    specs: Mapping[str, SkillSpec] = SKILL_SPECS,
) -> list[frozenset[Atom]]:
    """Expected states along ``calls`` from ``problem.state``, applying effects regardless of
    preconditions (use :func:`robot_skills.planning.validate.validate_plan` to check those).

    Returns:
        ``len(calls) + 1`` states.

    Raises:
        KeyError: for a skill not in ``specs``; ValueError: for a wrong number of arguments.
    """
    states = [frozenset(a for a in problem.state if a[0] != "accessible")]
    for c in calls:
        states.append(apply_effects(ground_call(specs[c.skill], c.args), states[-1]))
    return states


# ---------------------------------------------------------------------------------- relevance


def _unify(p: Atom, q: Atom) -> bool:
    """True when patterns ``p`` and ``q`` (``*`` matching any word in either) can name one atom."""
    return len(p) == len(q) and all(a == b or a == "*" or b == "*" for a, b in zip(p, q))


def _other_verbs(pred: str, specs: Mapping[str, SkillSpec]) -> list[str]:
    """Verbs of the full domain (:data:`SKILL_SPECS`) that add ``pred`` but are not in ``specs``."""
    return sorted(s.name for s in SKILL_SPECS.values() if s.name not in specs
                  and any(parse_predicate(t)[1][0] == pred for t in s.add_effects))


def _missing_verb_note(pred: str, specs: Mapping[str, SkillSpec]) -> str:
    others = _other_verbs(pred, specs)
    return (f"no skill in the library adds `{pred}`"
            + (f" (skill(s) {others} would, but are not in this library)" if others else ""))


def _no_adder_note(a: Atom, specs: Mapping[str, SkillSpec]) -> str:
    """Why nothing adds ``a``: a verb missing from the library, or no usable grounding."""
    if not _adders(a, specs):
        return _missing_verb_note(a[0], specs)
    return (f"no grounded skill of the library adds {format_atom(a)} (the skills adding "
            f"`{a[0]}` cannot take these arguments here, or would undo another goal atom)")


def _adders(a: Atom, specs: Mapping[str, SkillSpec]) -> list[tuple[SkillSpec, dict[str, str]]]:
    """Skills with an add effect that unifies with ``a`` and the implied parameter binding."""
    out = []
    for spec in specs.values():
        for text in spec.add_effects:
            tmpl = parse_predicate(text)[1]
            if len(tmpl) != len(a) or tmpl[0] != a[0]:
                continue
            binding: dict[str, str] = {}
            ok = True
            for t, x in zip(tmpl[1:], a[1:]):
                if t.startswith("?"):
                    if binding.setdefault(t[1:], x) != x:
                        ok = False
                elif t != x and t != "*":
                    ok = False
            if ok:
                out.append((spec, binding))
    return out


def static_reasons(problem: SymbolicProblem,
                   specs: Mapping[str, SkillSpec] = SKILL_SPECS) -> dict[Atom, str]:
    """Goal atoms that no grounding of any skill in ``specs`` can ever add, with the reason.

    Checked per goal atom that does not already hold (derived atoms included), without grounding
    or search: an argument is not an entity of the problem; no skill of the library has an add
    effect with the atom's predicate (the reason names the atom's predicate and the verbs of the
    full domain, :data:`~robot_skills.domain.verbs.SKILL_SPECS`, that would add it, e.g.
    ``"no skill in the library adds `close` (skill(s) ['close'] would, but are not in this
    library)"``); or every skill that could add it needs an argument tag the entity lacks.

    Args:
        problem: entities with tags, current state, goal atoms.
        specs: the library's skill contracts.

    Returns:
        goal atom -> reason, in sorted goal order; empty when no goal atom is ruled out this way.
    """
    full = derived_state(frozenset(problem.state), problem.entities)
    reasons: dict[Atom, str] = {}
    for g in sorted(problem.goal):
        if g in full:
            continue
        unknown = [x for x in g[1:] if x not in problem.entities]
        if unknown:
            reasons[g] = f"unknown entit{'y' if len(unknown) == 1 else 'ies'} {unknown}"
            continue
        adders = _adders(g, specs)
        if not adders:
            reasons[g] = _missing_verb_note(g[0], specs)
            continue
        why = []
        for spec, binding in adders:
            bad = [f"{binding[p.name]} lacks the `{p.type}` tag needed by "
                   f"{spec.name}.{p.name}" for p in spec.parameters
                   if p.name in binding and p.type not in problem.entities[binding[p.name]]]
            if not bad:
                break
            why.extend(bad)
        else:
            reasons[g] = "; ".join(why)
    return reasons


def _derived_support(a: Atom, entities: Mapping[str, frozenset[str]]) -> list[Atom]:
    """Atoms that make the derived atom ``a`` true (see :func:`derived_state`); ``[a]`` otherwise."""
    if a[0] != "accessible" or len(a) != 2:
        return [a]
    name = a[1]
    tags = entities.get(name, frozenset())
    out = [("open", name)] if "openable" in tags else []
    if "container" in tags:
        out += [("open", o) for o, t in entities.items()
                if "openable" in t and o != name and name.startswith(o + "_")]
    return out


def relaxed_reachable(state: frozenset[Atom] | set[Atom], actions: Sequence[GroundSkill],
                      entities: Mapping[str, frozenset[str]]
                      ) -> tuple[frozenset[Atom], list[GroundSkill]]:
    """Delete-relaxed reachability (Bonet & Geffner's h^max fixpoint without costs).

    Every action whose positive preconditions hold in the relaxed state adds its add effects;
    delete effects and negative preconditions are ignored, so the result over-approximates what
    any skill sequence can make true: an atom outside it is unreachable for certain. The derived
    ``accessible`` atoms are recomputed (:func:`derived_state`) as ``open`` atoms appear.

    Args:
        state: the start state.
        actions: the grounded skills available.
        entities: entity name -> affordance tags.

    Returns:
        ``(reach, applicable)``: every atom that may become true (derived ones included) and the
        actions whose positive preconditions may hold, in the order of ``actions``.
    """
    reach = set(derived_state(frozenset(state), entities))
    waiting: dict[Atom, list[int]] = {}
    missing = [0] * len(actions)
    wild: list[int] = []
    ready: list[int] = []
    for i, g in enumerate(actions):
        if any("*" in p for p in g.pre_pos):
            wild.append(i)
            continue
        need = [p for p in set(g.pre_pos) if p not in reach]
        missing[i] = len(need)
        for p in need:
            waiting.setdefault(p, []).append(i)
        if not need:
            ready.append(i)
    done = [False] * len(actions)
    while True:
        while ready:
            i = ready.pop()
            if done[i]:
                continue
            done[i] = True
            new = [a for a in actions[i].add if a not in reach]
            if not new:
                continue
            reach.update(new)
            if any(a[0] == "open" for a in new):
                new += [a for a in derived_state(frozenset(reach), entities) if a not in reach]
                reach.update(new)
            for a in new:
                for j in waiting.pop(a, ()):
                    missing[j] -= 1
                    if missing[j] == 0:
                        ready.append(j)
        more = [i for i in wild if not done[i] and all(_holds(p, reach) for p in actions[i].pre_pos)]
        if not more:
            break
        ready.extend(more)
    return frozenset(reach), [g for g, d in zip(actions, done) if d]


def _goal_mutexes(goal: frozenset[Atom], state: frozenset[Atom] | set[Atom],
                  actions: Sequence[GroundSkill], reach: frozenset[Atom]) -> dict[Atom, str]:
    """Goal atoms that can never hold together, by a verified at-most-one invariant.

    For every entity ``x`` that is the first argument of two or more goal atoms, the candidate
    group is every reachable non-derived fluent (an atom some action adds or deletes) whose first
    argument is ``x`` (``holding x``,
    ``on x *``, ``in x *``; ``open x`` / ``close x``; ``turnon x`` / ``turnoff x``). The group is an
    invariant (at most one of its atoms true; Helmert's, 2009, monotonicity test) when at most one
    holds in ``state`` and every action that adds an atom of the group adds only one and either
    deletes every other atom of the group or requires and deletes one of them. Two goal atoms in a
    verified group cannot both be true in any reachable state, so no plan exists. A group that
    fails the test (e.g. ``push`` of a plate that may sit in a container) proves nothing.

    Returns:
        goal atom -> reason, for the atoms of every conflicting group; empty if none is found.
    """
    firsts: dict[str, list[Atom]] = {}
    for g in goal:
        if len(g) >= 2 and g[0] != "accessible":
            firsts.setdefault(g[1], []).append(g)
    reasons: dict[Atom, str] = {}
    added_any = {a for g in actions for a in g.add}
    for x, atoms in sorted(firsts.items()):
        if len(atoms) < 2 or not all(a in added_any or a in state for a in atoms):
            continue
        # fluents only: an atom no action adds or deletes (a fixture's placement) never changes
        group = {a for a in reach if len(a) >= 2 and a[1] == x and a[0] != "accessible"
                 and (a in added_any or any(matches(d, a) for g in actions for d in g.delete))}
        if sum(1 for a in state if a in group) > 1:
            continue
        ok = True
        for g in actions:
            added = [a for a in g.add if a in group]
            if not added:
                continue
            if len(added) > 1:
                ok = False
                break
            others = [a for a in group if a != added[0]]
            if all(any(matches(d, a) for d in g.delete) for a in others):
                continue
            if any(p in group and p != added[0] and any(matches(d, p) for d in g.delete)
                   for p in g.pre_pos):
                continue
            ok = False
            break
        if ok:
            names = ", ".join(format_atom(a) for a in sorted(atoms))
            for a in sorted(atoms):
                reasons[a] = (f"conflicts with the other goal atom(s) about {x} ({names}): at "
                              f"most one of {x}'s {'/'.join(sorted({b[0] for b in group}))} "
                              "atoms holds in any reachable state (every skill that makes one "
                              "true makes the others false)")
    return dict(sorted(reasons.items()))


@dataclass
class RelevanceReport:
    """What :func:`relevance_analysis` found before any search.

    Attributes:
        relevant: grounded skills that can contribute to the goal, in grounding order; a search
            over these finds a plan whenever one exists over all grounded skills.
        unreachable: goal atom -> why no skill sequence of the library can make it true (empty
            when the analysis found no obstacle; search may still fail at its depth limit).
        stage: where the analysis stopped: ``"satisfied"`` (the goal holds), ``"static"`` (a goal
            atom has no adder, an unknown entity or a missing tag; nothing was grounded),
            ``"relaxed"`` (delete-relaxed reachability failed), ``"mutex"`` (two goal atoms
            exclude each other) or ``"relevance"`` (all checks passed; ``relevant`` is filled).
        n_ground: grounded skills considered (0 at the static stage).
        n_reachable: grounded skills whose preconditions the delete relaxation can reach.
        excluded: grounded skill -> why it can never be part of a plan (it deletes a goal atom that
            holds now and that no skill of the library adds back).
        reachable: atoms the delete relaxation reaches (derived ones included).
    """

    relevant: list[GroundSkill] = field(default_factory=list)
    unreachable: dict[Atom, str] = field(default_factory=dict)
    stage: str = "relevance"
    n_ground: int = 0
    n_reachable: int = 0
    excluded: dict[SkillCall, str] = field(default_factory=dict)
    reachable: frozenset[Atom] = field(default_factory=frozenset)

    @property
    def solvable(self) -> bool:
        """False when some goal atom is proven unreachable (``unreachable`` is not empty)."""
        return not self.unreachable


def _unreachable_reasons(goal_atoms: Iterable[Atom], reach: frozenset[Atom],
                         actions: Sequence[GroundSkill], specs: Mapping[str, SkillSpec],
                         entities: Mapping[str, frozenset[str]]) -> dict[Atom, str]:
    """Why each goal atom outside ``reach`` stays false: the adders and their unreachable
    preconditions."""
    by_skill: dict[str, list[GroundSkill]] = {}
    for g in actions:
        by_skill.setdefault(g.call.skill, []).append(g)
    reasons = {}
    for goal_atom in sorted(goal_atoms):
        if goal_atom in reach:
            continue
        blocked = []
        for spec, binding in _adders(goal_atom, specs):
            cands = [g for g in by_skill.get(spec.name, []) if all(
                g.call.args[i] == binding[p.name] for i, p in enumerate(spec.parameters)
                if p.name in binding)]
            for g in cands[:3]:
                miss = [format_atom(p) for p in g.pre_pos if not _holds(p, reach)]
                if miss:
                    blocked.append(f"{g.call} needs {', '.join(miss)}, which no skill sequence "
                                   "makes true")
        if goal_atom[0] == "accessible" and not blocked:
            blocked = [f"needs {' or '.join(format_atom(a) for a in _derived_support(goal_atom, entities))}"
                       ", which no skill sequence makes true"]
        reasons[goal_atom] = "; ".join(blocked) or "no grounded skill can add it"
    return reasons


def relevance_analysis(problem: SymbolicProblem, specs: Mapping[str, SkillSpec] = SKILL_SPECS,
                       actions: Sequence[GroundSkill] | None = None) -> RelevanceReport:
    """Decide, before any search, whether the goal can be reached and which skills can matter.

    Five sound checks, cheapest first (each can only rule out what no plan could use):

    1. **Static** (:func:`static_reasons`): a goal atom that does not hold and that no skill of the
       library adds — the reason names the atom and the missing verb(s) — or that names an
       unknown entity or one lacking a tag. Nothing is grounded.
    2. **Protected goal atoms**: a goal atom that holds now but that no grounded skill adds can
       never be deleted on the way, so every skill that would delete it is excluded (e.g. without
       ``close``, ``open(d)`` is excluded when ``(Close d)`` is a goal); repeated to a fixpoint.
    3. **Delete relaxation** (:func:`relaxed_reachable`) over the remaining skills: a goal atom
       outside the relaxed reachable set is unreachable. When an exclusion of step 2 caused it,
       the protected atom is reported too, naming the verb that would add it back.
    4. **Mutually exclusive goal atoms**: two goal atoms about one entity in a verified
       at-most-one invariant (``(On bowl plate)`` and ``(On bowl stove)``; ``(Open d)`` and
       ``(Close d)``) cannot hold together (see :func:`_goal_mutexes`).
    5. **Backward relevance** (in the spirit of Nebel, Dimopoulos & Koehler, 1997): a skill is
       relevant if it adds a goal atom or a positive precondition of a relevant skill (the derived
       ``accessible d`` counts as needing ``open d``, or ``open`` of the region's door owner), or
       deletes an atom matching a negative precondition of a relevant skill (``not on * ?obj``)
       that holds now or that a relevant skill adds. Dropping every other skill from a valid plan
       leaves a valid plan (relevant atoms only lose deleters; negative preconditions only lose
       adders), so a search over the relevant skills loses no plan and no shorter plan.

    Args:
        problem: entities with tags, current state, goal atoms.
        specs: the library's skill contracts (only these verbs are used).
        actions: the grounded skills (default: every skill of ``specs`` grounded over the
            problem's entities, as :meth:`SymbolicPlanner.ground_skills`).

    Returns:
        A :class:`RelevanceReport`; ``report.unreachable`` is empty when no check failed.

    Raises:
        ValueError: if ``problem`` is not a :class:`SymbolicProblem`.
    """
    if not isinstance(problem, SymbolicProblem):
        raise ValueError(f"relevance_analysis() needs a SymbolicProblem, got "
                         f"{type(problem).__name__}")
    entities = problem.entities
    goal = frozenset(problem.goal)
    start_full = derived_state(frozenset(problem.state), entities)
    if all(g in start_full for g in goal):
        return RelevanceReport(stage="satisfied", reachable=start_full)
    static = static_reasons(problem, specs)
    if static:
        return RelevanceReport(unreachable=static, stage="static", reachable=start_full)
    if actions is None:
        actions = ground_skills(problem, specs)
    actions = list(actions)

    # 2. protected goal atoms: hold now, no (remaining) skill adds them back
    excluded: dict[SkillCall, str] = {}
    protected: dict[Atom, list[GroundSkill]] = {}
    remaining = actions
    while True:
        added = {a for g in remaining for a in g.add}
        newly = [g for g in sorted(goal) if g in start_full and g not in added
                 and g not in protected]
        if not newly:
            break
        for a in newly:
            protected[a] = []
        kept = []
        for g in remaining:
            hit = [a for a in protected if any(matches(d, a) for d in g.delete)]
            if hit:
                protected[hit[0]].append(g)
                excluded[g.call] = (f"it deletes {format_atom(hit[0])}, a goal atom that holds now "
                                    f"and that nothing adds back: {_no_adder_note(hit[0], specs)}")
            else:
                kept.append(g)
        remaining = kept

    # 3. delete relaxation
    reach, applicable = relaxed_reachable(problem.state, remaining, entities)
    if not goal <= reach:
        reasons = _unreachable_reasons(goal, reach, remaining, specs, entities)
        if excluded:
            full_reach, _ = relaxed_reachable(problem.state, actions, entities)
            if goal <= full_reach or any(g in full_reach for g in reasons):
                culprits = {a: gs for a, gs in protected.items() if gs}
                for a, gs in culprits.items():
                    calls = ", ".join(str(g.call) for g in gs[:3]) + (
                        ", ..." if len(gs) > 3 else "")
                    reasons[a] = (f"holds now, but the rest of the goal needs a skill that "
                                  f"deletes it ({calls}) and {_no_adder_note(a, specs)}")
                for g in list(reasons):
                    if g not in culprits and g in full_reach:
                        reasons[g] += (" without " + " or ".join(
                            f"deleting {format_atom(a)}" for a in culprits))
        return RelevanceReport(unreachable=dict(sorted(reasons.items())), stage="relaxed",
                               n_ground=len(actions), n_reachable=len(applicable),
                               excluded=excluded, reachable=reach)

    # 4. goal atoms that exclude each other (a verified at-most-one invariant)
    mutex = _goal_mutexes(goal, problem.state, applicable, reach)
    if mutex:
        return RelevanceReport(unreachable=mutex, stage="mutex", n_ground=len(actions),
                               n_reachable=len(applicable), excluded=excluded, reachable=reach)

    # 5. backward relevance over the skills the relaxation can apply
    relevant_atoms: set[Atom] = set()
    neg_patterns: set[Atom] = set()
    possibly_true: set[Atom] = set(start_full)
    must_be_false: set[Atom] = set()  # atoms that may hold and that a relevant skill needs false
    is_rel = [False] * len(applicable)
    adders_of: dict[Atom, list[int]] = {}
    for i, g in enumerate(applicable):
        for a in g.add:
            adders_of.setdefault(a, []).append(i)
    todo: list[int] = []

    def want(a: Atom) -> None:
        for b in _derived_support(a, entities):
            if b not in relevant_atoms:
                relevant_atoms.add(b)
                todo.extend(adders_of.get(b, ()))

    false_by_key: dict[tuple[str, str], list[Atom]] = {}

    def deletes_needed(g: GroundSkill) -> bool:
        for d in g.delete:
            if "*" not in d:
                if d in must_be_false:
                    return True
            elif len(d) > 1 and d[1] != "*":
                if any(matches(d, a) for a in false_by_key.get((d[0], d[1]), ())):
                    return True
            elif any(matches(d, a) for a in must_be_false):
                return True
        return False

    for a in goal:
        want(a)
    while True:
        while todo:
            i = todo.pop()
            if is_rel[i]:
                continue
            is_rel[i] = True
            g = applicable[i]
            possibly_true.update(g.add)
            for p in g.pre_pos:
                want(p)
            neg_patterns.update(g.pre_neg)
        # skills that delete an atom some relevant skill needs false (and that may be true)
        by_pred: dict[str, list[Atom]] = {}
        for n in neg_patterns:
            by_pred.setdefault(n[0], []).append(n)
        must_be_false = {a for a in possibly_true
                         if any(matches(n, a) for n in by_pred.get(a[0], ()))}
        false_by_key = {}
        for a in must_be_false:
            if len(a) > 1:
                false_by_key.setdefault((a[0], a[1]), []).append(a)
        todo = [i for i, g in enumerate(applicable) if not is_rel[i] and deletes_needed(g)]
        if not todo:
            break
    relevant = [g for g, r in zip(applicable, is_rel) if r]
    return RelevanceReport(relevant=relevant, stage="relevance", n_ground=len(actions),
                           n_reachable=len(applicable), excluded=excluded, reachable=reach)


def ground_skills(problem: SymbolicProblem,
                  specs: Mapping[str, SkillSpec] = SKILL_SPECS) -> list[GroundSkill]:
    """Every skill of ``specs`` grounded on distinct entities whose tags include the parameter
    types, in ``specs`` order then sorted argument order."""
    out = []
    for spec in specs.values():
        candidates = [sorted(n for n, tags in problem.entities.items() if p.type in tags)
                      for p in spec.parameters]
        for args in itertools.product(*candidates):
            if len(set(args)) == len(args):
                out.append(ground_call(spec, args))
    return out


def _landmark_heuristic(goal: frozenset[Atom], actions: Sequence[GroundSkill],
                        entities: Mapping[str, frozenset[str]]):
    """A landmark-count estimate and an admissible landmark bound over ``actions``.

    An atom's landmarks are the positive preconditions every action adding it shares (a derived
    ``accessible`` atom stands for its single support, e.g. ``open`` of the drawer). In a state,
    the *estimate* (in the spirit of Richter & Westphal's LAMA, 2010) counts the unmet goal atoms
    plus, transitively, the unmet landmarks of every unmet atom counted: ``(In bowl drawer)``
    unmet, the bowl not held and the drawer shut count three (``pick``, ``open``, ``place_in``).
    Cheap (a few set look-ups per state) and far better informed than the goal count in this
    domain, where most goals need a pick or an open first.

    The *bound* is admissible: every counted atom must still be added by some action, so counted
    atoms whose sets of adding actions are pairwise disjoint (chosen greedily, fewest adders
    first) each need a distinct action; a counted atom no action adds makes it infinite (a dead
    end). The search drops a node whose depth plus bound exceeds the depth limit, which loses no
    plan within the limit and makes exhausting the limit fast.

    Returns:
        ``h(full_state) -> (estimate, bound)``; the estimate is 0 exactly when every goal atom
        holds in ``full_state`` (derived atoms included).
    """
    adders: dict[Atom, list[GroundSkill]] = {}
    for g in actions:
        for a in g.add:
            adders.setdefault(a, []).append(g)
    achievers = {a: frozenset(id(g) for g in gs) for a, gs in adders.items()}
    landmarks: dict[Atom, tuple[Atom, ...]] = {}

    def lm(a: Atom) -> tuple[Atom, ...]:
        got = landmarks.get(a)
        if got is None:
            if a[0] == "accessible":
                sup = _derived_support(a, entities)
                got = tuple(sup) if len(sup) == 1 else ()
            else:
                common: set[Atom] | None = None
                for g in adders.get(a, ()):
                    pre = {p for p in g.pre_pos if "*" not in p}
                    common = pre if common is None else common & pre
                got = tuple(sorted(common or ()))
            landmarks[a] = got
        return got

    def h(full: frozenset[Atom]) -> tuple[int, float]:
        counted = [a for a in goal if a not in full]
        seen = set(counted)
        i = 0
        while i < len(counted):
            for b in lm(counted[i]):
                if b not in full and b not in seen:
                    seen.add(b)
                    counted.append(b)
            i += 1
        n = sum(1 for a in counted if a[0] != "accessible" or a in goal)
        used: set[int] = set()
        bound = 0
        for a in sorted((a for a in counted if a[0] != "accessible"),
                        key=lambda a: len(achievers.get(a, ()))):
            ach = achievers.get(a)
            if not ach:
                return n, math.inf
            if used.isdisjoint(ach):
                used.update(ach)
                bound += 1
        return n, bound

    return h


def _static_only(problem: SymbolicProblem, specs: Mapping[str, SkillSpec]) -> bool:
    """True when :func:`relevance_analysis` decides without grounding (goal holds, or a goal
    atom fails the static check), so the planner need not ground first."""
    full = derived_state(frozenset(problem.state), problem.entities)
    return all(g in full for g in problem.goal) or bool(static_reasons(problem, specs))


@dataclass
class PlanStats:
    """Counters of the last :meth:`SymbolicPlanner.plan` call.

    Attributes:
        stage: ``"satisfied"``, ``"static"``, ``"relaxed"``, ``"mutex"`` (failed before search),
            ``"search"`` (a plan was found) or ``"exhausted"`` (search failed).
        expansions: search nodes expanded (0 when the analysis decided).
        generated: successor states generated.
        pruned: successors dropped because depth plus the admissible landmark bound exceeds
            the depth limit.
        n_ground / n_relevant: grounded skills, and those the search used.
        analysis_ms / search_ms: wall time of the relevance analysis and of the search, ms.
    """

    stage: str = ""
    expansions: int = 0
    generated: int = 0
    pruned: int = 0
    n_ground: int = 0
    n_relevant: int = 0
    analysis_ms: float = 0.0
    search_ms: float = 0.0


class SymbolicPlanner:
    """A* forward planner over the skills' preconditions and effects, after a relevance analysis.

    Implements :class:`robot_skills.execution.interfaces.Planner`. Built over a library's
    contracts (``SymbolicPlanner(library_specs)``), it plans only with skills the library has.
    Before searching, :func:`relevance_analysis` rejects goals no skill sequence can reach (a
    missing verb, a tag, a precondition never made true, a goal atom the plan would have to undo
    for good, goal atoms that exclude each other) without expanding a node, and restricts the
    search to the skills that can contribute to the goal. :attr:`last_stats`
    (:class:`PlanStats`) holds the counters of the last call. The grounding of the last entity
    set is kept, so replanning in one scene grounds once.

    Args:
        specs: the skill domain; only these verbs are used (a library may lack some).
        max_depth: longest plan considered, in skill calls (default of :meth:`plan`).
        max_expansions: cap on expanded search nodes (default of :meth:`plan`).
        relevance: prune the grounded skills to the relevant ones before searching (the analysis
            that rejects unreachable goals runs either way); ``False`` searches over every
            grounded skill, for comparison.
        heuristic: ``"landmarks"`` (default; :func:`_landmark_heuristic`) or ``"goal_count"``
            (the number of unmet goal atoms), the A* estimate. Both find plans of the same length
            on LIBERO's 130 goals and their same-scene pairs; the landmark count expands far
            fewer nodes on composite goals.

    Raises:
        TypeError: if ``specs`` is not a mapping. ValueError: on a negative ``max_depth`` or an
            unknown ``heuristic``.

    Example:
        >>> plan = SymbolicPlanner(library.contracts).plan(problem)   # doctest: +SKIP
        >>> str(plan)
        '[open(wooden_cabinet_1_top_region), pick(akita_black_bowl_1), place_in(...)]'
    """

    def __init__(self, specs: Mapping[str, SkillSpec] = SKILL_SPECS, max_depth: int = 8,
                 max_expansions: int = 200_000, relevance: bool = True,
                 heuristic: str = "landmarks") -> None:
        if not isinstance(specs, Mapping):
            raise TypeError(f"specs must be a mapping name -> SkillSpec, got {type(specs)}")
        if int(max_depth) < 0:
            raise ValueError(f"max_depth must be >= 0, got {max_depth}")
        self.specs: dict[str, SkillSpec] = dict(specs)
        self.max_depth = int(max_depth)
        self.max_expansions = int(max_expansions)
        self.relevance = bool(relevance)
        if heuristic not in ("landmarks", "goal_count"):
            raise ValueError(f"heuristic must be 'landmarks' or 'goal_count', got {heuristic!r}")
        self.heuristic = heuristic
        self.last_stats = PlanStats()
        self._grounded: tuple[frozenset, tuple[GroundSkill, ...]] | None = None

    # ------------------------------------------------------------------ grounding
    def ground_skills(self, problem: SymbolicProblem) -> list[GroundSkill]:
        """Every skill grounded on distinct entities whose tags include the parameter types.

        The last entity set's grounding is kept, so replanning in one scene grounds once.
        """
        key = frozenset(problem.entities.items())
        if self._grounded is None or self._grounded[0] != key:
            self._grounded = (key, tuple(ground_skills(problem, self.specs)))
        return list(self._grounded[1])

    def analyse(self, problem: SymbolicProblem) -> RelevanceReport:
        """:func:`relevance_analysis` of ``problem`` over this planner's skills."""
        return relevance_analysis(problem, self.specs, self.ground_skills(problem))

    # ------------------------------------------------------------------ search
    def plan(self, problem: SymbolicProblem, max_depth: int | None = None,
             max_expansions: int | None = None) -> Plan:
        """Find a shortest-found skill sequence from ``problem.state`` to all of ``problem.goal``.

        Args:
            problem: entities with tags, current state, goal atoms (a conjunction).
            max_depth: longest plan considered, in skill calls (None: the planner's).
            max_expansions: cap on expanded search nodes (None: the planner's).

        Returns:
            A :class:`Plan` with expected states; empty when the goal already holds.

        Raises:
            NoPlanError: when no plan of at most ``max_depth`` calls exists; the message names the
                unachievable goal atoms and the reason (no skill adds the predicate, naming the
                verb that would; an entity lacks a required tag; a precondition can never hold; a
                goal atom that holds now would be deleted and no skill adds it back; or search
                exhausted at depth N). The first four are found before any search.
            ValueError: on a negative ``max_depth`` or a malformed problem.
        """
        if not isinstance(problem, SymbolicProblem):
            raise ValueError(f"plan() needs a SymbolicProblem, got {type(problem).__name__}")
        max_depth = self.max_depth if max_depth is None else int(max_depth)
        max_expansions = self.max_expansions if max_expansions is None else int(max_expansions)
        if max_depth < 0:
            raise ValueError(f"max_depth must be >= 0, got {max_depth}")
        goal = frozenset(problem.goal)
        start = frozenset(a for a in problem.state if a[0] != "accessible")
        stats = self.last_stats = PlanStats()
        t0 = time.perf_counter()
        report = relevance_analysis(problem, self.specs,
                                    None if _static_only(problem, self.specs)
                                    else self.ground_skills(problem))
        stats.analysis_ms = (time.perf_counter() - t0) * 1e3
        stats.stage, stats.n_ground = report.stage, report.n_ground
        if report.stage == "satisfied":
            return Plan([], [start], goal)
        if report.unreachable:
            raise self._no_plan(problem, report.unreachable, None)
        actions = report.relevant if self.relevance else self.ground_skills(problem)
        stats.n_relevant = len(actions)
        t1 = time.perf_counter()
        try:
            return self._search(problem, actions, max_depth, max_expansions, stats)
        finally:
            stats.search_ms = (time.perf_counter() - t1) * 1e3

    def _search(self, problem: SymbolicProblem, actions: Sequence[GroundSkill], max_depth: int,
                max_expansions: int, stats: PlanStats) -> Plan:
        entities = problem.entities
        goal = frozenset(problem.goal)
        start = frozenset(a for a in problem.state if a[0] != "accessible")
        landmarks = _landmark_heuristic(goal, actions, entities)

        def evaluate(full: frozenset[Atom]) -> tuple[int, float, int]:
            """(search estimate, admissible bound, unmet goal atoms)."""
            n_unmet = sum(1 for g in goal if g not in full)
            estimate, bound = landmarks(full)
            return (estimate if self.heuristic == "landmarks" else n_unmet), bound, n_unmet

        checks = [(g, frozenset(p for p in g.pre_pos if "*" not in p),
                   tuple(p for p in g.pre_pos if "*" in p),
                   frozenset(p for p in g.pre_neg if "*" not in p),
                   tuple(p for p in g.pre_neg if "*" in p)) for g in actions]
        derive = _deriver(entities)
        counter = itertools.count()
        start_full = derive(start)
        h0, b0, u0 = evaluate(start_full)
        if b0 > max_depth:
            stats.stage = "exhausted"
            need = "no skill sequence" if b0 == math.inf else f"at least {b0} skill calls"
            raise self._no_plan(problem, {
                g: f"not reachable within {max_depth} skill calls ({need} needed)"
                for g in sorted(goal) if g not in start_full},
                f"search exhausted at depth {max_depth} after 0 expansions")
        frontier: list = [(h0, h0, next(counter), start, u0)]
        parent: dict[frozenset[Atom], tuple[frozenset[Atom] | None, GroundSkill | None]] = {
            start: (None, None)}
        depth = {start: 0}
        fulls = {start: start_full}
        expansions = 0
        best = (0, start, u0)  # (depth, state, unmet goals) of the closest state found
        stats.stage = "search"
        while frontier:
            _, h, _, state, u = heapq.heappop(frontier)
            if u < best[2]:
                best = (depth[state], state, u)
            if u == 0:
                stats.expansions = expansions
                return self._extract(parent, state, goal)
            d = depth[state]
            if d >= max_depth:
                continue
            expansions += 1
            if expansions > max_expansions:
                break
            full = fulls[state]
            by_pred: dict[str, list[Atom]] = {}
            for a in full:
                by_pred.setdefault(a[0], []).append(a)
            for g, pos, pos_wild, neg, neg_wild in checks:
                if not pos <= full or not full.isdisjoint(neg):
                    continue
                if pos_wild and not all(any(matches(p, a) for a in by_pred.get(p[0], ()))
                                        for p in pos_wild):
                    continue
                if neg_wild and any(matches(p, a) for p in neg_wild
                                    for a in by_pred.get(p[0], ())):
                    continue
                nxt = apply_effects(g, state)
                stats.generated += 1
                if nxt in depth and depth[nxt] <= d + 1:
                    continue
                nfull = fulls.get(nxt)
                if nfull is None:
                    nfull = fulls[nxt] = derive(nxt)
                hn, bn, un = evaluate(nfull)
                if d + 1 + bn > max_depth:
                    stats.pruned += 1
                    continue
                depth[nxt] = d + 1
                parent[nxt] = (state, g)
                heapq.heappush(frontier, (d + 1 + hn, hn, next(counter), nxt, un))
        stats.stage, stats.expansions = "exhausted", min(expansions, max_expansions)
        reason = (f"search exhausted at depth {max_depth} after {expansions} expansions"
                  if expansions <= max_expansions
                  else f"search stopped after {max_expansions} expansions (max_expansions)")
        best_full = derived_state(best[1], entities)
        reasons = {g: f"not reached within {max_depth} skill calls (the closest state found, "
                      f"{best[0]} call(s) deep, still lacks it)"
                   for g in sorted(goal) if g not in best_full}
        raise self._no_plan(problem, reasons, reason)

    @staticmethod
    def _extract(parent, state, goal) -> Plan:
        calls, states = [], [state]
        while True:
            prev, g = parent[state]
            if prev is None:
                break
            calls.append(g.call)
            states.append(prev)
            state = prev
        return Plan(calls[::-1], states[::-1], goal)

    # ------------------------------------------------------------------ diagnosis
    def _adders(self, a: Atom) -> list[tuple[SkillSpec, dict[str, str]]]:
        """Skills with an add effect that unifies with ``a`` and the implied parameter binding."""
        return _adders(a, self.specs)

    def _diagnose_static(self, problem: SymbolicProblem) -> dict[Atom, str]:
        """Reasons for goal atoms that no grounding of any skill can ever add."""
        return static_reasons(problem, self.specs)

    def _diagnose_relaxed(self, problem: SymbolicProblem,
                          actions: list[GroundSkill]) -> dict[Atom, str]:
        """Goal atoms unreachable even when delete effects are ignored (delete relaxation)."""
        reach, _ = relaxed_reachable(problem.state, actions, problem.entities)
        return _unreachable_reasons(problem.goal, reach, actions, self.specs, problem.entities)

    @staticmethod
    def _no_plan(problem: SymbolicProblem, reasons: Mapping[Atom, str],
                 search: str | None) -> NoPlanError:
        goal = ", ".join(format_atom(g) for g in sorted(problem.goal))
        lines = [f"no plan reaches the goal {goal}"]
        if search:
            lines[0] += f" ({search})"
        for g, why in reasons.items():
            lines.append(f"  {format_atom(g)} cannot be achieved: {why}")
        return NoPlanError("\n".join(lines), reasons)
