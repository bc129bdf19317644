"""Symbolic task planning over the skill domain (STRIPS-style forward search).

Each :class:`~robot_skills.domain.verbs.SkillSpec` is a STRIPS operator (Fikes & Nilsson, 1971):
typed parameters, preconditions, add and delete effects (delete effects may hold ``*`` wildcards,
e.g. ``"on ?obj *"``). :class:`SymbolicPlanner` grounds every operator over the entities whose
affordance tags match the parameter types (distinct arguments), then runs A* over sets of ground
atoms with the goal-count heuristic (number of goal atoms not yet true), breaking ties toward fewer
unmet goals. The derived predicate ``accessible`` is recomputed in every state
(:func:`derived_state`), as PDDL axioms are.

Goal atoms follow BDDL semantics: ``("on", x, y)`` is satisfied by the state atom ``("on", x, y)``.
When no plan exists :class:`NoPlanError` says which goal atoms cannot be achieved and why.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from robot_skills.domain.predicates import Atom, SymbolicProblem, format_atom, with_derived
from robot_skills.domain.verbs import SKILL_SPECS, SkillSpec, ground, matches, parse_predicate

__all__ = [
    "derived_state", "SkillCall", "Plan", "NoPlanError", "GroundSkill", "SymbolicPlanner",
    "ground_call", "missing_preconditions", "apply_effects", "simulate_plan",
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
    pre_pos, pre_neg = [], []
    for text in spec.preconditions:
        positive, tmpl = parse_predicate(text)
        (pre_pos if positive else pre_neg).append(ground(tmpl, binding))
    add = tuple(ground(parse_predicate(t)[1], binding) for t in spec.add_effects)
    delete = tuple(ground(parse_predicate(t)[1], binding) for t in spec.del_effects)
    return GroundSkill(SkillCall(spec.name, tuple(args)), tuple(pre_pos), tuple(pre_neg), add,
                       delete)


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
    kept = {a for a in state if a[0] != "accessible"
            and not any(matches(p, a) for p in g.delete)}
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


class SymbolicPlanner:
    """A* forward planner over the skills' preconditions and effects.

    Implements :class:`robot_skills.execution.interfaces.Planner`. Built over a library's
    contracts (``SymbolicPlanner(library_specs)``), it plans only with skills the library has.

    Args:
        specs: the skill domain; only these verbs are used (a library may lack some).
        max_depth: longest plan considered, in skill calls (default of :meth:`plan`).
        max_expansions: cap on expanded search nodes (default of :meth:`plan`).

    Raises:
        TypeError: if ``specs`` is not a mapping. ValueError: on a negative ``max_depth``.

    Example:
        >>> plan = SymbolicPlanner(library.contracts).plan(problem)   # doctest: +SKIP
        >>> str(plan)
        '[open(wooden_cabinet_1_top_region), pick(akita_black_bowl_1), place_in(...)]'
    """

    def __init__(self, specs: Mapping[str, SkillSpec] = SKILL_SPECS, max_depth: int = 8,
                 max_expansions: int = 200_000) -> None:
        if not isinstance(specs, Mapping):
            raise TypeError(f"specs must be a mapping name -> SkillSpec, got {type(specs)}")
        if int(max_depth) < 0:
            raise ValueError(f"max_depth must be >= 0, got {max_depth}")
        self.specs: dict[str, SkillSpec] = dict(specs)
        self.max_depth = int(max_depth)
        self.max_expansions = int(max_expansions)

    # ------------------------------------------------------------------ grounding
    def ground_skills(self, problem: SymbolicProblem) -> list[GroundSkill]:
        """Every skill grounded on distinct entities whose tags include the parameter types."""
        out = []
        for spec in self.specs.values():
            candidates = [sorted(n for n, tags in problem.entities.items() if p.type in tags)
                          for p in spec.parameters]
            for args in itertools.product(*candidates):
                if len(set(args)) == len(args):
                    out.append(ground_call(spec, args))
        return out

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
                unachievable goal atoms and the reason (no skill adds the predicate, an entity lacks
                a required tag, a precondition can never hold, or search exhausted at depth N).
            ValueError: on a negative ``max_depth`` or a malformed problem.
        """
        if not isinstance(problem, SymbolicProblem):
            raise ValueError(f"plan() needs a SymbolicProblem, got {type(problem).__name__}")
        max_depth = self.max_depth if max_depth is None else int(max_depth)
        max_expansions = self.max_expansions if max_expansions is None else int(max_expansions)
        if max_depth < 0:
            raise ValueError(f"max_depth must be >= 0, got {max_depth}")
        entities = problem.entities
        goal = frozenset(problem.goal)
        start = frozenset(a for a in problem.state if a[0] != "accessible")

        def unmet(s: frozenset[Atom]) -> int:
            full = derived_state(s, entities)
            return sum(1 for g in goal if g not in full)

        if unmet(start) == 0:
            return Plan([], [start], goal)
        # Unreachable-by-construction goals: fail fast with a precise reason.
        static = self._diagnose_static(problem)
        if static:
            raise self._no_plan(problem, static, None)

        actions = self.ground_skills(problem)
        counter = itertools.count()
        h0 = unmet(start)
        frontier: list = [(h0, h0, next(counter), start)]
        parent: dict[frozenset[Atom], tuple[frozenset[Atom] | None, GroundSkill | None]] = {
            start: (None, None)}
        depth = {start: 0}
        expansions = 0
        best = (0, start, h0)  # (depth, state, unmet goals) of the closest state found
        while frontier:
            _, h, _, state = heapq.heappop(frontier)
            if h < best[2]:
                best = (depth[state], state, h)
            if h == 0:
                return self._extract(parent, state, goal)
            d = depth[state]
            if d >= max_depth:
                continue
            expansions += 1
            if expansions > max_expansions:
                break
            full = derived_state(state, entities)
            for g in actions:
                if not all(_holds(p, full) for p in g.pre_pos):
                    continue
                if any(_holds(p, full) for p in g.pre_neg):
                    continue
                nxt = apply_effects(g, state)
                if nxt in depth and depth[nxt] <= d + 1:
                    continue
                depth[nxt] = d + 1
                parent[nxt] = (state, g)
                hn = unmet(nxt)
                heapq.heappush(frontier, (d + 1 + hn, hn, next(counter), nxt))
        reason = (f"search exhausted at depth {max_depth} after {expansions} expansions"
                  if expansions <= max_expansions
                  else f"search stopped after {max_expansions} expansions (max_expansions)")
        best_full = derived_state(best[1], entities)
        reasons = self._diagnose_relaxed(problem, actions) or {
            g: f"not reached within {max_depth} skill calls (the closest state found, "
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
        out = []
        for spec in self.specs.values():
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

    def _diagnose_static(self, problem: SymbolicProblem) -> dict[Atom, str]:
        """Reasons for goal atoms that no grounding of any skill can ever add."""
        full = derived_state(frozenset(problem.state), problem.entities)
        reasons: dict[Atom, str] = {}
        for g in sorted(problem.goal):
            if g in full:
                continue
            unknown = [x for x in g[1:] if x not in problem.entities]
            if unknown:
                reasons[g] = f"unknown entit{'y' if len(unknown) == 1 else 'ies'} {unknown}"
                continue
            adders = self._adders(g)
            if not adders:
                others = sorted(s.name for s in SKILL_SPECS.values() if s.name not in self.specs
                                and any(parse_predicate(t)[1][0] == g[0] for t in s.add_effects))
                hint = (f" (skill(s) {others} would, but are not in this library)" if others
                        else "")
                reasons[g] = f"no skill in the library adds `{g[0]}`{hint}"
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

    def _diagnose_relaxed(self, problem: SymbolicProblem,
                          actions: list[GroundSkill]) -> dict[Atom, str]:
        """Goal atoms unreachable even when delete effects are ignored (delete relaxation)."""
        reach = set(derived_state(frozenset(problem.state), problem.entities))
        changed = True
        while changed:
            changed = False
            for g in actions:
                if all(_holds(p, reach) for p in g.pre_pos):
                    new = [a for a in g.add if a not in reach]
                    if new:
                        reach.update(new)
                        reach.update(derived_state(frozenset(reach), problem.entities))
                        changed = True
        reasons = {}
        for goal_atom in sorted(problem.goal):
            if goal_atom in reach:
                continue
            blocked = []
            for spec, binding in self._adders(goal_atom):
                cands = [g for g in actions if g.call.skill == spec.name and all(
                    g.call.args[i] == binding[p.name] for i, p in enumerate(spec.parameters)
                    if p.name in binding)]
                for g in cands[:3]:
                    miss = [format_atom(p) for p in g.pre_pos if not _holds(p, reach)]
                    blocked.append(f"{g.call} needs {', '.join(miss)}, which no skill sequence "
                                   "makes true")
            reasons[goal_atom] = "; ".join(blocked) or "no grounded skill can add it"
        return reasons

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
