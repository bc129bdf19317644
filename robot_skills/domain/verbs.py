"""The skill verbs this project knows: typed parameters, preconditions, effects, termination.

One :class:`SkillSpec` per verb. The same spec drives the scripted expert (``sim.experts``), the
learned skill's ``skill.yaml`` contract, the symbolic planner (STRIPS-style add/delete effects with
``*`` wildcards, in the spirit of PDDL), and the executor's termination test.

Predicate strings are ``"pred ?param ..."``; a leading ``not`` negates. In delete effects a ``*``
matches any entity (``"on ?obj *"`` deletes every ``on`` atom whose first argument is ``?obj``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_skills.domain.predicates import Atom


@dataclass(frozen=True)
class Parameter:
    """A typed skill parameter: ``name`` (without ``?``) and the entity tag it requires."""

    name: str
    type: str


@dataclass(frozen=True)
class SkillSpec:
    """The contract of one skill verb.

    Attributes:
        name: verb, e.g. ``"place_on"``.
        description: one sentence in natural language (offered to language/VLM planners).
        parameters: typed parameters, in call order.
        preconditions: predicate strings that must hold before the call.
        add_effects / del_effects: predicate strings made true / false by a successful call.
        termination: predicate strings whose truth ends the skill successfully (checked in
            simulation from the predicate state, on hardware from perception).
        time_limit_s: wall-clock budget in simulated seconds; exceeded = failure.
        needs_open_gripper_at_end: the skill must finish with the gripper released.
    """

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    preconditions: tuple[str, ...]
    add_effects: tuple[str, ...]
    del_effects: tuple[str, ...]
    termination: tuple[str, ...]
    time_limit_s: float = 15.0
    needs_open_gripper_at_end: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)


def _spec(name, description, params, pre, add, delete, term, time_limit_s=15.0, release=False):
    return SkillSpec(name, description, tuple(Parameter(n, t) for n, t in params), tuple(pre),
                     tuple(add), tuple(delete), tuple(term), time_limit_s, release)


SKILL_SPECS: dict[str, SkillSpec] = {
    s.name: s
    for s in [
        _spec("pick", "Grasp an object and lift it off whatever it rests on.",
              [("obj", "graspable")], ["handempty", "not on * ?obj"], ["holding ?obj"],
              ["handempty", "on ?obj *", "in ?obj *"], ["holding ?obj"], 12.0),
        _spec("place_on", "Put the held object down on top of a surface or object.",
              [("obj", "graspable"), ("target", "surface")], ["holding ?obj"],
              ["on ?obj ?target", "handempty"], ["holding ?obj"], ["on ?obj ?target"], 15.0, True),
        _spec("place_in", "Put the held object inside an open container or drawer.",
              [("obj", "graspable"), ("target", "container")],
              ["holding ?obj", "accessible ?target"], ["in ?obj ?target", "handempty"],
              ["holding ?obj"], ["in ?obj ?target"], 15.0, True),
        _spec("open", "Pull a drawer or a hinged door open by its handle.",
              [("target", "openable")],
              ["handempty", "not open ?target"], ["open ?target"], ["close ?target"],
              ["open ?target"], 12.0, True),
        _spec("close", "Push a drawer or a hinged door shut.", [("target", "openable")],
              ["handempty", "not close ?target"], ["close ?target"], ["open ?target"],
              ["close ?target"], 12.0, True),
        _spec("turn_on", "Turn a stove's knob to switch it on.", [("target", "switchable")],
              ["handempty", "not turnon ?target"], ["turnon ?target"], ["turnoff ?target"],
              ["turnon ?target"], 10.0, True),
        _spec("turn_off", "Turn a stove's knob to switch it off.", [("target", "switchable")],
              ["handempty", "not turnoff ?target"], ["turnoff ?target"], ["turnon ?target"],
              ["turnoff ?target"], 10.0, True),
        _spec("push", "Push an object across the table into a target region.",
              [("obj", "pushable"), ("target", "table_region")], ["handempty"],
              ["on ?obj ?target"], ["on ?obj *"], ["on ?obj ?target"], 15.0, True),
    ]
}
"""Preconditions of open/close and turn_on/turn_off are negative ("not open ?target") so a drawer
left half open — neither Open nor Close in LIBERO's predicates — can still be opened or closed.

``pick`` needs nothing resting on the object (``not on * ?obj``): a stack is built bottom-up, so
"stack the left bowl on the right bowl and place them in the tray" moves the right bowl into the
tray first. ``open``/``close`` take a drawer region or a fixture with a hinged door (the
microwave); ``place_in`` needs its target ``accessible``: a drawer region that is open, or a
region of a fixture whose door is open (see :func:`robot_skills.planning.symbolic.derived_state`).

The verbs all of LIBERO's suites need (libero_goal / spatial / object / 10 / 90): stacking is
``place_on`` onto a graspable object, placing into a caddy compartment, a tray, a shelf level or
the microwave is ``place_in``, turning the stove off is ``turn_off``."""

MAX_SKILL_ARGS = max(len(s.parameters) for s in SKILL_SPECS.values())


def parse_predicate(text: str) -> tuple[bool, tuple[str, ...]]:
    """Parse ``"not on ?obj ?target"`` into ``(False, ("on", "?obj", "?target"))``.

    Raises:
        ValueError: on an empty string.
    """
    words = text.split()
    if not words:
        raise ValueError("empty predicate string")
    if words[0] == "not":
        return False, tuple(words[1:])
    return True, tuple(words)


def ground(template: tuple[str, ...], binding: dict[str, str]) -> Atom:
    """Substitute ``?param`` words of ``template`` from ``binding``; ``*`` is kept as a wildcard.

    Raises:
        KeyError: if a ``?param`` has no binding.
    """
    return tuple(binding[w[1:]] if w.startswith("?") else w for w in template)


def matches(pattern: Atom, a: Atom) -> bool:
    """True if ``a`` equals ``pattern`` where ``*`` in ``pattern`` matches any single word."""
    return len(pattern) == len(a) and all(p == "*" or p == x for p, x in zip(pattern, a))
