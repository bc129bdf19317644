"""Ground predicate atoms and the symbolic problem handed to planners.

An atom is a tuple of lower-case strings, predicate first: ``("on", "akita_black_bowl_1", "plate_1")``.
Predicates come from LIBERO's BDDL dialect (``On In Open Close Turnon Turnoff``, lower-cased) plus
the planner's own ``holding ?obj`` and ``handempty``. ``accessible ?x`` is derived (an axiom): true
when ``x`` is not openable, or is open.

Entity tags (affordances) say which skills may take an entity as which parameter:

* ``graspable`` — can be picked (bowls, boxes, bottles, cans…).
* ``surface`` — something can be placed *on* it (plate, bowl, stove cook region, cabinet top…).
* ``container`` — something can be placed *in* it (drawer region, basket region).
* ``openable`` — has an open/closed state (drawer regions).
* ``switchable`` — has an on/off state (stove).
* ``pushable`` — can be pushed across the table (plate).
* ``table_region`` — a region of the table top (a push/place target).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Atom = tuple[str, ...]

BDDL_PREDICATES = ("on", "in", "open", "close", "turnon", "turnoff")
"""Predicates that may appear in a task file's ``:init`` and ``:goal`` (lower-cased)."""
PLANNER_PREDICATES = ("holding", "handempty", "accessible")
"""Predicates the planner adds on top of the task file's."""

ENTITY_TAGS = (
    "graspable", "surface", "container", "openable", "switchable", "pushable", "table_region",
)


def atom(*parts: str) -> Atom:
    """Build an atom, lower-casing the predicate name. ``atom("On", "a", "b") == ("on", "a", "b")``."""
    if not parts:
        raise ValueError("an atom needs at least a predicate name")
    return (parts[0].lower(), *parts[1:])


def format_atom(a: Atom) -> str:
    """``("on", "a", "b") -> "(On a b)"``, the BDDL spelling, for messages and reports."""
    return "(" + " ".join([a[0].capitalize(), *a[1:]]) + ")"


def with_derived(state: frozenset[Atom], entities: dict[str, frozenset[str]]) -> frozenset[Atom]:
    """Return ``state`` plus the derived ``accessible`` atoms (recomputed, never stored)."""
    base = {a for a in state if a[0] != "accessible"}
    for name, tags in entities.items():
        if "openable" not in tags or ("open", name) in base:
            base.add(("accessible", name))
    return frozenset(base)


@dataclass(frozen=True)
class SymbolicProblem:
    """A planning problem: typed entities, the current predicate state and goal atoms.

    Attributes:
        entities: entity name -> affordance tags (see module docstring).
        state: atoms true now (``holding``/``handempty`` included).
        goal: atoms that must all hold at the end (a conjunction, as BDDL's ``(And …)``).
    """

    entities: dict[str, frozenset[str]]
    state: frozenset[Atom]
    goal: frozenset[Atom] = field(default_factory=frozenset)
