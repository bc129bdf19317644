"""Skill-centric demonstration data: every grounded skill call a scene affords, from diverse starts.

Task-centric collection (LIBERO, robomimic) records one demonstration per *task*: the only skill
calls in the data are those the suite's goals need, and every call starts where the task's plan
puts it. A library trained on that cannot close a drawer no goal closes, and its ``pick`` has never
started where a ``place_in`` ends. Skill-centric collection instead enumerates, for each *scene*
(the set of objects, fixtures and regions a task file lays out), every grounded call of every verb
on every compatible object and target — the STRIPS grounding of the verbs' contracts over the
scene's affordance tags — and records demonstrations of each call:

* from the scene's initial states (widened initial regions, DART noise: see
  :mod:`robot_skills.data.collect`), and
* from states reached by first running a random chain of valid calls (the *prefix*), so every
  skill also starts where the others end (after a ``place_in``, an ``open``, a ``turn_on``, ...).

One episode pursues a sequence of sub-goals: the prefix calls' goals, then the *target* call's
goal (its positive add effects, :func:`call_goal`). The planner fills in the implicit steps (a
``place_on`` target is preceded by a ``pick``; a ``place_in`` into a closed drawer by an ``open``),
so each episode records several skill segments; a segment's *start kind* is ``initial`` when it is
the episode's first and ``after_<verb>`` otherwise (:func:`start_kind`).

In the spirit of skill-centric data collection for compositional generalisation (e.g. LIBERO's
"knowledge transfer" study, Liu et al. 2023; "skills from play"/chained-skill data as in
Lynch et al., "Learning Latent Plans from Play", CoRL 2019, and chained skill collection in
LiLo-VLA-style planner-over-skills systems).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.domain.predicates import Atom, SymbolicProblem
from robot_skills.domain.verbs import SKILL_SPECS, SkillSpec, ground, parse_predicate
from robot_skills.planning.symbolic import (
    NoPlanError,
    SkillCall,
    SymbolicPlanner,
    derived_state,
)

__all__ = [
    "START_INITIAL", "call_goal", "grounded_calls", "sample_episode_goals", "scene_key",
    "start_kind", "SceneCalls", "coverage", "format_coverage", "scene_calls",
    "skill_centric_jobs", "coverage_from_hdf5", "write_coverage", "scene_label",
]

START_INITIAL = "initial"
"""Start kind of the first skill segment of an episode (the scene's sampled initial state)."""

PREFIX_MAX_DEPTH = 4
"""Longest plan (skill calls) a sampled prefix sub-goal may need."""


def call_goal(call: SkillCall, specs: Mapping[str, SkillSpec] = SKILL_SPECS) -> frozenset[Atom]:
    """The sub-goal that demonstrates ``call``: its positive add effects except ``handempty``.

    ``pick(bowl)`` -> ``{(holding, bowl)}``; ``place_on(bowl, plate)`` -> ``{(on, bowl, plate)}``;
    ``open(drawer)`` -> ``{(open, drawer)}``.

    Raises:
        KeyError: if the call's verb is not in ``specs``.
        ValueError: if the number of arguments differs from the verb's parameters.
    """
    spec = specs[call.skill]
    if len(call.args) != len(spec.parameters):
        raise ValueError(f"{call} has {len(call.args)} argument(s); {spec.name} takes "
                         f"{len(spec.parameters)}")
    binding = {p.name: a for p, a in zip(spec.parameters, call.args)}
    out = set()
    for text in spec.add_effects:
        positive, tmpl = parse_predicate(text)
        if positive and tmpl[0] != "handempty":
            out.add(ground(tmpl, binding))
    return frozenset(out)


def grounded_calls(problem: SymbolicProblem, specs: Mapping[str, SkillSpec] = SKILL_SPECS,
                   planner: SymbolicPlanner | None = None) -> tuple[list[SkillCall],
                                                                    dict[str, str]]:
    """Every grounded call of ``specs`` in ``problem``'s scene whose goal can be planned from
    ``problem.state`` (the affordance tags decide the candidates, the planner their reachability).

    Args:
        problem: the scene's entities (name -> affordance tags) and an initial state; the goal is
            ignored.
        specs: the verbs to ground (default: all the project knows).
        planner: the planner that checks reachability (default: one over ``specs``).

    Returns:
        ``(calls, excluded)``: the plannable calls, sorted by their string (a call whose goal
        already holds, such as closing a closed drawer, is kept: its episodes undo it first); and
        call string -> reason for the grounded calls left out (no goal atom, or no plan).
    """
    planner = planner or SymbolicPlanner(specs)
    calls, excluded = [], {}
    for g in planner.ground_skills(problem):
        call = g.call
        goal = call_goal(call, specs)
        if not goal:
            excluded[str(call)] = "the call has no goal atom to demonstrate"
            continue
        try:
            planner.plan(SymbolicProblem(problem.entities, problem.state, goal))
        except NoPlanError as e:
            excluded[str(call)] = f"no plan: {str(e).splitlines()[0]}"
            continue
        calls.append(call)
    return sorted(calls, key=str), excluded


def _apply_plan(planner: SymbolicPlanner, entities: Mapping[str, frozenset[str]],
                state: frozenset[Atom], goal: frozenset[Atom], max_depth: int
                ) -> frozenset[Atom] | None:
    """The expected state after planning ``goal`` from ``state``; None when there is no plan or
    the goal already holds."""
    if goal <= derived_state(state, entities):
        return None
    try:
        plan = planner.plan(SymbolicProblem(dict(entities), state, goal), max_depth=max_depth,
                            max_expansions=20_000)
    except NoPlanError:
        return None
    return plan.states[-1] if plan.calls else None


def sample_episode_goals(problem: SymbolicProblem, target: SkillCall, rng: np.random.Generator,
                         max_prefix: int, candidates: Sequence[SkillCall],
                         specs: Mapping[str, SkillSpec] = SKILL_SPECS,
                         planner: SymbolicPlanner | None = None) -> list[frozenset[Atom]]:
    """The sub-goals of one skill-centric episode: a random valid prefix, then ``target``'s goal.

    The prefix has ``U{0..max_prefix}`` calls drawn from ``candidates`` (only calls that end with
    the hand empty, i.e. not ``pick``, so the next sub-goal starts from a settled scene), each
    plannable from the state the previous ones leave; the target's goal must not already hold
    after the prefix and must be plannable from there. When no such prefix is found in a few
    draws the episode starts the target from the initial state. A target whose goal already
    holds at the start (``close`` of a closed drawer, ``turn_off`` of a stove that is off) gets at
    least one prefix call, the last one chosen so that it undoes the goal (``open``, ``turn_on``).

    Args:
        problem: entities and the observed initial state.
        target: the call the episode demonstrates.
        rng: seeded generator (the episode's seed: reruns draw the same prefix).
        max_prefix: most prefix calls (0: the target from the initial state only).
        candidates: grounded calls of the scene (see :func:`grounded_calls`).
        specs / planner: the verbs and the planner over them.

    Returns:
        A list of goal-atom sets, the target's goal last.

    Raises:
        ValueError: if the target's goal cannot be planned from the initial state, or holds there
            and no prefix undoes it.
    """
    planner = planner or SymbolicPlanner(specs)
    entities = problem.entities
    start = frozenset(a for a in problem.state if a[0] != "accessible")
    tgoal = call_goal(target, specs)
    depth = PREFIX_MAX_DEPTH + 2
    prefix_pool = [c for c in candidates if c.skill != "pick" and c != target]
    # a target whose goal holds at the start (close a closed drawer) needs a prefix undoing it
    must_undo = tgoal <= derived_state(start, entities)
    if not must_undo and _apply_plan(planner, entities, start, tgoal, depth) is None:
        raise ValueError(f"target {target}: its goal {sorted(tgoal)} cannot be planned from the "
                         "initial state")
    n = int(rng.integers(0, max_prefix + 1)) if max_prefix > 0 else 0
    if must_undo:
        n = max(n, 1)
    for _ in range(3 if not must_undo else 6):
        if n == 0 or not prefix_pool:
            break
        state, goals = start, []
        for k in range(n):
            order = rng.permutation(len(prefix_pool))
            tries = order if (must_undo and k == n - 1) else order[:12]
            for i in tries:
                g = call_goal(prefix_pool[int(i)], specs)
                nxt = _apply_plan(planner, entities, state, g, PREFIX_MAX_DEPTH)
                if nxt is None:
                    continue
                if must_undo and k == n - 1 and tgoal <= derived_state(nxt, entities):
                    continue
                state, goals = nxt, goals + [g]
                break
        if len(goals) == n and _apply_plan(planner, entities, state, tgoal, depth) is not None:
            return goals + [tgoal]
    if must_undo:
        raise ValueError(f"target {target}: its goal {sorted(tgoal)} holds at the start and no "
                         f"prefix of the scene's calls undoes it")
    return [tgoal]


def scene_key(entities: Mapping[str, str]) -> str:
    """A scene's identity: a short hash of its objects/fixtures/regions and their categories.

    Task files that lay out the same entities (e.g. LIBERO-90's KITCHEN_SCENE3 files) share a
    key; ``entities`` maps entity name -> category (e.g. ``BddlTask`` objects and fixtures).
    """
    text = json.dumps(sorted(entities.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def start_kind(previous_skill: str | None) -> str:
    """``"initial"`` for an episode's first segment, else ``"after_<previous verb>"``."""
    return START_INITIAL if previous_skill is None else f"after_{previous_skill}"


@dataclass(frozen=True)
class SceneCalls:
    """The grounded calls of one scene and the task files that lay it out.

    Attributes:
        key: :func:`scene_key`. label: a readable name (the first file's scene prefix or stem).
        task_paths: the scene's task files (initial layouts), sorted.
        calls: the plannable grounded calls. excluded: call string -> why it was left out.
        call_paths: call string -> the task files in which the call is plannable.
        target_kinds: call string -> the kind of its last argument (:func:`target_kind`), when
            the world gave its geometry; a call's motion mode is ``(verb, kind)``.
    """

    key: str
    label: str
    task_paths: tuple[str, ...]
    calls: tuple[SkillCall, ...]
    excluded: Mapping[str, str]
    call_paths: Mapping[str, tuple[str, ...]]
    target_kinds: Mapping[str, str] = field(default_factory=dict)


def target_kind(world_model: Any, entity: str) -> str:
    """How a call's last argument is reached: its region kind (``"drawer"``, ``"enclosure"``,
    ``"table"``...), ``"object"``, or ``"fixture"``; ``""`` without geometry.

    Args:
        world_model: the scene's :class:`~robot_skills.perception.PoseWorldModel`, or None.
        entity: the argument's name.
    """
    if world_model is None:
        return ""
    if entity in world_model.regions:
        return str(world_model.regions[entity].kind)
    return "object" if entity in world_model.objects else "fixture"


def scene_label(stem: str) -> str:
    """The upper-case scene prefix of a LIBERO file stem (``KITCHEN_SCENE3_turn_on...`` ->
    ``KITCHEN_SCENE3``), or the stem when it has none."""
    words = stem.split("_")
    head = []
    for w in words:
        if w and w.upper() == w and not w.isdigit() or (head and w.isdigit()):
            head.append(w)
        else:
            break
    return "_".join(head) if head else stem


def scene_calls(task_paths: Sequence[str | os.PathLike], make_world: Any, seed: int = 0,
                specs: Mapping[str, SkillSpec] = SKILL_SPECS) -> list[SceneCalls]:
    """Group task files into scenes and ground every verb in each.

    Files laying out the same objects and fixtures form one scene, whose calls are the union of
    its files' plannable calls. One world per distinct layout (entities and regions) is built
    (``make_world(path, seed, None)``, reset to ``seed``) to read the affordance tags and the
    initial predicate state.

    Args:
        task_paths: the suite's task files.
        make_world: the world factory (``make_world(task_path, seed, perturbation) -> TaskWorld``).
        seed: the initial-state seed used for the grounding.
        specs: the verbs.

    Returns:
        The scenes, in order of their first file.

    Raises:
        ValueError: no task files. BddlParseError: a task file that does not parse. Whatever
            ``make_world`` raises for a file that cannot be built (with the file named).
    """
    if not task_paths:
        raise ValueError("scene_calls needs at least one task file")
    from robot_skills.tasks.bddl import load_bddl

    planner = SymbolicPlanner(specs)
    groups: dict[str, dict[str, Any]] = {}
    grounded: dict[str, tuple[list[SkillCall], dict[str, str]]] = {}  # per layout signature
    for path in map(str, task_paths):
        task = load_bddl(path)
        cats = {**dict(task.objects), **dict(task.fixtures)}
        key = scene_key(cats)
        # files with the same entities and regions ground the same calls: build one world
        layout = scene_key({**cats, **{r: "region" for r in task.regions}})
        if layout not in grounded:
            try:
                world = make_world(Path(path), seed, None)
            except Exception as e:
                raise type(e)(f"{path}: {e}") from e
            world.robot.connect()
            try:
                world.robot.reset(seed)
                problem = world.symbolic_problem()
                wm = getattr(world, "world_model", None)
            finally:
                world.robot.disconnect()
            calls, excluded = grounded_calls(problem, specs, planner)
            grounded[layout] = calls, excluded, {
                str(c): target_kind(wm, c.args[-1]) for c in calls if c.args}
        calls, excluded, kinds = grounded[layout]
        label = scene_label(Path(path).stem)
        if label == Path(path).stem:  # no scene prefix (libero_goal): name it by its directory
            label = Path(path).parent.name
        g = groups.setdefault(key, {"label": label, "paths": [], "calls": {}, "excluded": {},
                                    "call_paths": {}, "kinds": {}})
        g["kinds"].update(kinds)
        g["paths"].append(path)
        g["calls"].update({str(c): c for c in calls})
        for c in calls:
            g["call_paths"].setdefault(str(c), []).append(path)
        g["excluded"].update(excluded)
    out = []
    for key, g in groups.items():
        excluded = {c: why for c, why in g["excluded"].items() if c not in g["calls"]}
        out.append(SceneCalls(key, g["label"], tuple(sorted(g["paths"])),
                              tuple(g["calls"][c] for c in sorted(g["calls"])), excluded,
                              {c: tuple(p) for c, p in g["call_paths"].items()},
                              {c: k for c, k in g["kinds"].items() if c in g["calls"]}))
    return out


def skill_centric_jobs(scenes: Sequence[SceneCalls], demos_per_call: int, *, seed: int = 1000,
                       region_scale_max: float = 1.0, max_prefix: int = 2,
                       min_per_verb: int = 0, min_per_mode: int = 0) -> list[Any]:
    """The collection episodes of a skill-centric collection: ``demos_per_call`` per grounded
    call of every scene, each on one of the scene's task files (drawn per episode), with a
    distinct seed, a widened-region factor ``U(1, region_scale_max)`` and up to ``max_prefix``
    random calls before the target. A verb with few groundings (a suite with three stoves has six
    ``turn_on``/``turn_off`` calls but hundreds of ``place_on`` ones) gets more episodes per call
    until it has at least ``min_per_verb`` target episodes in all; likewise a motion mode, a verb
    with one kind of target (:attr:`SceneCalls.target_kinds`: ``place_in`` into the microwave's
    cavity is slid in from the front, into a basket lowered from above), gets at least
    ``min_per_mode``.

    Returns:
        :class:`robot_skills.data.collect.CollectJob` list, seeds ``seed, seed + 1, ...``.

    Raises:
        ValueError: ``demos_per_call < 1``, ``max_prefix < 0``, ``min_per_verb < 0``,
            ``min_per_mode < 0`` or ``region_scale_max < 1``.
    """
    from robot_skills.data.collect import CollectJob

    for name, v in (("min_per_verb", min_per_verb), ("min_per_mode", min_per_mode)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if demos_per_call < 1:
        raise ValueError(f"demos_per_call must be >= 1, got {demos_per_call}")
    if max_prefix < 0:
        raise ValueError(f"max_prefix must be >= 0, got {max_prefix}")
    if not region_scale_max >= 1.0:
        raise ValueError(f"region_scale_max must be >= 1, got {region_scale_max}")
    per_verb = Counter(c.skill for sc in scenes for c in sc.calls)
    per_mode = Counter((c.skill, sc.target_kinds.get(str(c), "")) for sc in scenes
                       for c in sc.calls)
    jobs, k = [], 0
    for scene in scenes:
        for call in scene.calls:
            paths = scene.call_paths[str(call)]
            mode = (call.skill, scene.target_kinds.get(str(call), ""))
            n_call = max(demos_per_call, -(-int(min_per_verb) // per_verb[call.skill]),
                         -(-int(min_per_mode) // per_mode[mode]))
            for _ in range(n_call):
                rng = np.random.default_rng([seed + k, 17])
                path = paths[int(rng.integers(len(paths)))]
                cands = tuple(c for c, ps in scene.call_paths.items() if path in ps)
                jobs.append(CollectJob(path, seed + k, float(rng.uniform(1.0, region_scale_max)),
                                       str(call), int(max_prefix), cands))
                k += 1
    return jobs


# ------------------------------------------------------------------------------ coverage


def coverage(segments: Iterable[Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per-skill coverage of demonstration segments.

    Args:
        segments: per demo, its skill segments in order, as ``{"skill", "args", "success"}``
            mappings (``SkillSegment.to_dict``).

    Returns:
        skill -> ``{"segments": n, "calls": distinct grounded calls, "start_kinds": {kind: n},
        "cells": distinct (call, start kind) pairs}``.
    """
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"segments": 0, "calls": set(),
                                                          "start_kinds": Counter(),
                                                          "cells": set()})
    for demo in segments:
        prev = None
        for s in demo:
            c = out[s["skill"]]
            call = f"{s['skill']}({', '.join(s.get('args', ()))})"
            kind = start_kind(prev)
            c["segments"] += 1
            c["calls"].add(call)
            c["start_kinds"][kind] += 1
            c["cells"].add((call, kind))
            prev = s["skill"]
    return {k: {"segments": v["segments"], "calls": len(v["calls"]),
                "start_kinds": dict(sorted(v["start_kinds"].items())), "cells": len(v["cells"])}
            for k, v in sorted(out.items())}


def coverage_from_hdf5(paths: Sequence[str | os.PathLike]) -> dict[str, dict[str, Any]]:
    """:func:`coverage` of the skill segments of every demo in the HDF5 files ``paths``.

    Raises:
        FileNotFoundError / OSError: a file that cannot be read (named). ValueError: malformed
            segments (named by file and demo).
    """
    from robot_skills.data.dataset import read_segments
    from robot_skills.data.hdf5 import DemoReader

    demos = []
    for p in paths:
        with DemoReader(p) as r:
            for name in r.demos:
                demos.append([s.to_dict() for s in read_segments(r, name, p)])
    return coverage(demos)


def format_coverage(cov: Mapping[str, Mapping[str, Any]],
                    success: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """A text table: per skill, segments, grounded calls, start kinds, (call x start kind) cells
    and, when ``success`` is given (skill -> ``{"attempts", "successes"}``), the success rate on
    held-in calls."""
    lines = [f"{'skill':<10} {'segments':>8} {'calls':>6} {'cells':>6}  "
             f"{'held-in success':>15}  start kinds"]
    for skill, c in cov.items():
        rate = ""
        if success is not None and skill in success:
            s = success[skill]
            rate = (f"{s['successes']}/{s['attempts']} "
                    f"({100 * s['successes'] / max(1, s['attempts']):.0f}%)")
        kinds = ", ".join(f"{k} {n}" for k, n in c["start_kinds"].items())
        lines.append(f"{skill:<10} {c['segments']:>8} {c['calls']:>6} {c['cells']:>6}  "
                     f"{rate:>15}  {kinds}")
    return "\n".join(lines)


def write_coverage(path: str | os.PathLike, cov: Mapping[str, Any]) -> Path:
    """Write ``cov`` as JSON atomically; returns the path."""
    from robot_skills.utils.atomic import atomic_write_json

    atomic_write_json(Path(path), dict(cov), sort_keys=False)
    return Path(path)
