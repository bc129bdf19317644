"""Reader and writer for LIBERO's BDDL task-file dialect.

LIBERO (Liu et al., 2023) describes each task as a PDDL-like problem::

    (define (problem LIBERO_Tabletop_Manipulation)
      (:domain robosuite)
      (:language put the bowl on the plate)
      (:regions (plate_region (:target main_table) (:ranges ((x0 y0 x1 y1))) (:yaw_rotation ((lo hi))))
                (top_region (:target wooden_cabinet_1)))
      (:fixtures main_table - table  wooden_cabinet_1 - wooden_cabinet)
      (:objects akita_black_bowl_1 akita_black_bowl_2 - akita_black_bowl  plate_1 - plate)
      (:obj_of_interest akita_black_bowl_1 plate_1)
      (:init (On akita_black_bowl_1 main_table_plate_region) (Open wooden_cabinet_1_top_region))
      (:goal (And (On akita_black_bowl_1 plate_1))))

A region is referred to in atoms by its *full name* ``<target>_<name>`` (``main_table_plate_region``,
``wooden_cabinet_1_top_region``). Region ranges ``(x_min, y_min, x_max, y_max)`` are in metres in
the frame of the target (for tables: origin at the table-top centre, +x away from the robot);
yaw ranges in radians.

The reader is a small tokenizer plus an s-expression reader; every error is a
:class:`BddlParseError` whose message names the source, the line and column, and the problem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from robot_skills.domain.predicates import BDDL_PREDICATES, Atom
from robot_skills.utils.files import InputFileError, read_bounded

PREDICATE_ARITY: dict[str, int] = {
    "on": 2, "in": 2, "open": 1, "close": 1, "turnon": 1, "turnoff": 1,
}
"""Number of arguments of each BDDL predicate (lower-cased)."""
assert set(PREDICATE_ARITY) == set(BDDL_PREDICATES)

MAX_TASK_FILE_BYTES = 1 << 20
"""Largest task file :func:`load_bddl` reads by default: 1 MiB (LIBERO's are at most ~3 KB)."""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-\.]*$")


class BddlParseError(ValueError):
    """A task file could not be read. The message is ``"<source>:<line>:<col>: <problem>"``."""


@dataclass
class Region:
    """A named region of a BDDL task.

    Attributes:
        name: the name as written in the file, e.g. ``"plate_region"``.
        target: the entity the region belongs to, e.g. ``"main_table"`` or ``"wooden_cabinet_1"``.
        ranges: boxes ``(x_min, y_min, x_max, y_max)`` in m, in the target's frame; empty for
            fixture sub-regions (``wooden_cabinet_1 top_region``) whose geometry the asset defines.
        yaw_rotation: ``(lo, hi)`` yaw intervals in rad for what is placed in the region, or None.
    """

    name: str
    target: str
    ranges: list[tuple[float, float, float, float]] = field(default_factory=list)
    yaw_rotation: list[tuple[float, float]] | None = None

    @property
    def full_name(self) -> str:
        """``f"{target}_{name}"``, the name atoms use (``"main_table_plate_region"``)."""
        return f"{self.target}_{self.name}"


@dataclass
class BddlTask:
    """One parsed task file.

    Attributes:
        source: path of the file, or ``"<string>"``.
        problem_name: the ``(problem …)`` name, e.g. ``"LIBERO_Tabletop_Manipulation"``.
        language: the instruction, words joined by single spaces.
        regions: region full name -> :class:`Region`, in file order.
        fixtures: fixture name -> category (``"main_table" -> "table"``).
        objects: object name -> category (``"plate_1" -> "plate"``).
        obj_of_interest: names (objects, fixtures or region full names) the task is about.
        init: atoms true initially, lower-case predicate first.
        goal: atoms of the goal conjunction.
        domain: the ``(:domain …)`` name (``"robosuite"`` in LIBERO).
    """

    source: str
    problem_name: str
    language: str
    regions: dict[str, Region]
    fixtures: dict[str, str]
    objects: dict[str, str]
    obj_of_interest: list[str]
    init: list[Atom]
    goal: list[Atom]
    domain: str = "robosuite"

    def entity_names(self) -> list[str]:
        """Fixture names then object names, in file order."""
        return [*self.fixtures, *self.objects]

    def categories(self) -> set[str]:
        """Every fixture and object category the task names."""
        return set(self.fixtures.values()) | set(self.objects.values())


# --------------------------------------------------------------------------------------------
# tokenizer and s-expression reader


@dataclass
class _Sym:
    text: str
    line: int
    col: int


@dataclass
class _List:
    items: list
    line: int
    col: int


def _tokenize(text: str, source: str) -> list[_Sym]:
    tokens: list[_Sym] = []
    line, col, i, n = 1, 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line, col, i = line + 1, 1, i + 1
            continue
        if c.isspace():
            i, col = i + 1, col + 1
            continue
        if c == ";":  # comment to end of line
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in "()":
            tokens.append(_Sym(c, line, col))
            i, col = i + 1, col + 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in "();":
            j += 1
        tokens.append(_Sym(text[i:j], line, col))
        col += j - i
        i = j
    return tokens


def _read(tokens: list[_Sym], source: str) -> _List:
    if not tokens:
        raise BddlParseError(f"{source}:1:1: empty task file (expected '(define (problem …) …)')")
    stack: list[_List] = []
    top: _List | None = None
    for k, t in enumerate(tokens):
        if t.text == "(":
            stack.append(_List([], t.line, t.col))
        elif t.text == ")":
            if not stack:
                raise BddlParseError(f"{source}:{t.line}:{t.col}: unbalanced parentheses: "
                                     "unexpected ')' with no matching '('")
            done = stack.pop()
            if stack:
                stack[-1].items.append(done)
            else:
                top = done
                if k + 1 < len(tokens):
                    nxt = tokens[k + 1]
                    raise BddlParseError(
                        f"{source}:{nxt.line}:{nxt.col}: unexpected content {nxt.text!r} after "
                        "the end of the problem definition (unbalanced parentheses?)")
        else:
            if not stack:
                raise BddlParseError(f"{source}:{t.line}:{t.col}: unexpected {t.text!r} outside "
                                     "parentheses (expected '(define …)')")
            stack[-1].items.append(t)
    if stack:
        o = stack[-1]
        last = tokens[-1]
        raise BddlParseError(
            f"{source}:{last.line}:{last.col}: unexpected end of file (truncated file or "
            f"unbalanced parentheses): {len(stack)} '(' not closed, the innermost opened at "
            f"line {o.line} col {o.col}")
    assert top is not None
    return top


# --------------------------------------------------------------------------------------------
# semantic reader


def _where(source: str, node) -> str:
    return f"{source}:{node.line}:{node.col}"


def _sym(node, source: str, what: str) -> str:
    if not isinstance(node, _Sym):
        raise BddlParseError(f"{_where(source, node)}: expected {what}, found a parenthesised list")
    return node.text


def _name(node, source: str, what: str) -> str:
    text = _sym(node, source, what)
    if not _NAME_RE.match(text):
        raise BddlParseError(f"{_where(source, node)}: {text!r} is not a valid {what}")
    return text


def _number(node, source: str, what: str) -> float:
    text = _sym(node, source, what)
    try:
        v = float(text)
    except ValueError:
        raise BddlParseError(f"{_where(source, node)}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise BddlParseError(f"{_where(source, node)}: {what} must be finite, got {text!r}")
    return v


def _keyword(node: _List) -> str | None:
    if node.items and isinstance(node.items[0], _Sym) and node.items[0].text.startswith(":"):
        return node.items[0].text.lower()
    return None


def _typed_names(node: _List, source: str, section: str) -> dict[str, str]:
    """Parse ``a b - cat  c - cat2`` into ``{a: cat, b: cat, c: cat2}``."""
    out: dict[str, str] = {}
    pending: list[_Sym] = []
    items = node.items[1:]
    i = 0
    while i < len(items):
        it = items[i]
        s = _sym(it, source, f"a name in {section}")
        if s == "-":
            if i + 1 >= len(items):
                raise BddlParseError(f"{_where(source, it)}: '-' without a category in {section}")
            if not pending:
                raise BddlParseError(f"{_where(source, it)}: category without names in {section}")
            cat = _name(items[i + 1], source, f"category in {section}")
            for p in pending:
                if p.text in out:
                    raise BddlParseError(f"{_where(source, p)}: {p.text!r} declared twice in "
                                         f"{section}")
                out[p.text] = cat
            pending = []
            i += 2
            continue
        _name(it, source, f"name in {section}")
        pending.append(it)
        i += 1
    if pending:
        p = pending[0]
        raise BddlParseError(f"{_where(source, p)}: {p.text!r} in {section} has no '- category'")
    return out


def _parse_region(node, source: str) -> Region:
    if not isinstance(node, _List) or not node.items:
        raise BddlParseError(f"{_where(source, node)}: a region must be '(name (:target …) …)'")
    name = _name(node.items[0], source, "region name")
    target: str | None = None
    ranges: list[tuple[float, float, float, float]] = []
    yaw: list[tuple[float, float]] | None = None
    for sub in node.items[1:]:
        if not isinstance(sub, _List):
            raise BddlParseError(f"{_where(source, sub)}: unexpected {sub.text!r} in region "
                                 f"{name!r}")
        kw = _keyword(sub)
        if kw == ":target":
            if len(sub.items) != 2:
                raise BddlParseError(f"{_where(source, sub)}: (:target …) of region {name!r} "
                                     "needs exactly one name")
            target = _name(sub.items[1], source, "region target")
        elif kw == ":ranges":
            if len(sub.items) != 2 or not isinstance(sub.items[1], _List):
                raise BddlParseError(f"{_where(source, sub)}: (:ranges ((x_min y_min x_max "
                                     f"y_max) …)) expected in region {name!r}")
            for box in sub.items[1].items:
                if not isinstance(box, _List) or len(box.items) != 4:
                    raise BddlParseError(
                        f"{_where(source, box)}: a range of region {name!r} must be 4 numbers "
                        "(x_min y_min x_max y_max)")
                x0, y0, x1, y1 = (_number(v, source, f"range value of region {name!r}")
                                  for v in box.items)
                if x0 > x1 or y0 > y1:
                    raise BddlParseError(
                        f"{_where(source, box)}: range of region {name!r} has min > max: "
                        f"({x0} {y0} {x1} {y1}) is read as (x_min y_min x_max y_max)")
                ranges.append((x0, y0, x1, y1))
        elif kw == ":yaw_rotation":
            if len(sub.items) != 2 or not isinstance(sub.items[1], _List):
                raise BddlParseError(f"{_where(source, sub)}: (:yaw_rotation ((lo hi) …)) "
                                     f"expected in region {name!r}")
            yaw = []
            for pair in sub.items[1].items:
                if not isinstance(pair, _List) or len(pair.items) != 2:
                    raise BddlParseError(f"{_where(source, pair)}: a yaw range of region "
                                         f"{name!r} must be 2 numbers (lo hi)")
                lo, hi = (_number(v, source, f"yaw value of region {name!r}") for v in pair.items)
                if lo > hi:
                    raise BddlParseError(f"{_where(source, pair)}: yaw range of region {name!r} "
                                         f"has lo > hi: ({lo} {hi})")
                yaw.append((lo, hi))
        else:
            what = kw if kw else "a list"
            raise BddlParseError(f"{_where(source, sub)}: unknown region field {what!r} in region "
                                 f"{name!r} (expected :target, :ranges, :yaw_rotation)")
    if target is None:
        raise BddlParseError(f"{_where(source, node)}: region {name!r} has no (:target …)")
    return Region(name=name, target=target, ranges=ranges, yaw_rotation=yaw)


def _parse_atom(node, source: str, known: set[str], section: str) -> Atom:
    if not isinstance(node, _List) or not node.items:
        raise BddlParseError(f"{_where(source, node)}: expected an atom like '(On a b)' in "
                             f"{section}")
    pred_raw = _sym(node.items[0], source, f"a predicate name in {section}")
    pred = pred_raw.lower()
    if pred not in PREDICATE_ARITY:
        allowed = ", ".join(p.capitalize() for p in BDDL_PREDICATES)
        raise BddlParseError(f"{_where(source, node)}: unknown predicate {pred_raw!r} in {section} "
                             f"(allowed: {allowed})")
    args = [_name(a, source, f"argument of {pred_raw}") for a in node.items[1:]]
    if len(args) != PREDICATE_ARITY[pred]:
        raise BddlParseError(f"{_where(source, node)}: {pred_raw} takes {PREDICATE_ARITY[pred]} "
                             f"argument(s), got {len(args)} in {section}")
    for a, an in zip(args, node.items[1:]):
        if a not in known:
            raise BddlParseError(f"{_where(source, an)}: {pred_raw} names {a!r}, which is not a "
                                 f"declared object, fixture or region (in {section})")
    return (pred, *args)


def parse_bddl(text: str, source: str = "<string>") -> BddlTask:
    """Parse the text of a LIBERO BDDL task file.

    Args:
        text: the file's contents.
        source: name used in error messages and stored as :attr:`BddlTask.source`.

    Returns:
        The :class:`BddlTask`.

    Raises:
        BddlParseError: truncated file, unbalanced parentheses, unknown predicate, wrong number of
            arguments, atoms naming undeclared objects/fixtures/regions, malformed ranges
            (not 4 numbers, or min > max), a missing ``(:goal …)``, duplicate declarations.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_bddl expects the file text as str, got {type(text).__name__}")
    root = _read(_tokenize(text, source), source)
    items = root.items
    if not items or not isinstance(items[0], _Sym) or items[0].text.lower() != "define":
        raise BddlParseError(f"{_where(source, root)}: a task file must start with '(define'")
    problem_name: str | None = None
    domain = "robosuite"
    language = ""
    regions: dict[str, Region] = {}
    fixtures: dict[str, str] = {}
    objects: dict[str, str] = {}
    ooi_nodes: list[_Sym] = []
    init_nodes: list = []
    goal_nodes: list | None = None
    seen: set[str] = set()
    for node in items[1:]:
        if not isinstance(node, _List) or not node.items:
            raise BddlParseError(f"{_where(source, node)}: unexpected {getattr(node, 'text', '()')!r}"
                                 " in (define …)")
        head = _sym(node.items[0], source, "a section name")
        key = head.lower()
        if key in seen:
            raise BddlParseError(f"{_where(source, node)}: section {head!r} appears twice")
        seen.add(key)
        if key == "problem":
            if len(node.items) != 2:
                raise BddlParseError(f"{_where(source, node)}: (problem NAME) needs one name")
            problem_name = _name(node.items[1], source, "problem name")
        elif key == ":domain":
            if len(node.items) != 2:
                raise BddlParseError(f"{_where(source, node)}: (:domain NAME) needs one name")
            domain = _name(node.items[1], source, "domain name")
        elif key == ":language":
            words = [_sym(w, source, "a word of the instruction") for w in node.items[1:]]
            language = " ".join(words)
        elif key == ":regions":
            for r in node.items[1:]:
                reg = _parse_region(r, source)
                if reg.full_name in regions:
                    raise BddlParseError(f"{_where(source, r)}: region {reg.full_name!r} "
                                         "declared twice")
                regions[reg.full_name] = reg
        elif key == ":fixtures":
            fixtures = _typed_names(node, source, "(:fixtures …)")
        elif key == ":objects":
            objects = _typed_names(node, source, "(:objects …)")
        elif key == ":obj_of_interest":
            for n in node.items[1:]:
                _name(n, source, "name in (:obj_of_interest …)")
                ooi_nodes.append(n)
        elif key == ":init":
            init_nodes = node.items[1:]
        elif key == ":goal":
            if len(node.items) != 2:
                raise BddlParseError(f"{_where(source, node)}: (:goal …) must hold one "
                                     "expression, e.g. (And (On a b))")
            g = node.items[1]
            if (isinstance(g, _List) and g.items and isinstance(g.items[0], _Sym)
                    and g.items[0].text.lower() == "and"):
                goal_nodes = g.items[1:]
            else:
                goal_nodes = [g]
        else:
            raise BddlParseError(f"{_where(source, node)}: unknown section {head!r}")
    if problem_name is None:
        raise BddlParseError(f"{_where(source, root)}: missing (problem NAME)")
    if goal_nodes is None:
        raise BddlParseError(f"{_where(source, root)}: missing (:goal …) section")
    both = set(fixtures) & set(objects)
    if both:
        raise BddlParseError(f"{_where(source, root)}: declared both as fixture and object: "
                             f"{sorted(both)}")
    known = set(fixtures) | set(objects) | set(regions)
    for n in ooi_nodes:
        if n.text not in known:
            raise BddlParseError(f"{_where(source, n)}: (:obj_of_interest …) names {n.text!r}, "
                                 "which is not a declared object, fixture or region")
    init = [_parse_atom(a, source, known, "(:init …)") for a in init_nodes]
    goal = [_parse_atom(a, source, known, "(:goal …)") for a in goal_nodes]
    if not goal:
        raise BddlParseError(f"{_where(source, root)}: the (:goal …) conjunction is empty")
    return BddlTask(source=source, problem_name=problem_name, language=language, regions=regions,
                    fixtures=fixtures, objects=objects, obj_of_interest=[n.text for n in ooi_nodes],
                    init=init, goal=goal, domain=domain)


def load_bddl(path: str | Path, max_bytes: int | None = None) -> BddlTask:
    """Read and parse a ``.bddl`` file (UTF-8).

    The file is read with :func:`robot_skills.utils.files.read_bounded`: only a regular file (a
    symlink to one is followed) of at most ``max_bytes`` is read, and a FIFO, device or directory
    is refused without blocking.

    Args:
        path: the task file.
        max_bytes: size limit in bytes; None = :data:`MAX_TASK_FILE_BYTES` (1 MiB; LIBERO's
            largest task file is ~3 KB).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        BddlParseError: see :func:`parse_bddl`; also for a file that is not valid UTF-8, is not a
            regular file, or is larger than the limit (the message names the path and the limit).
    """
    p = Path(path)
    limit = MAX_TASK_FILE_BYTES if max_bytes is None else max_bytes
    try:
        data = read_bounded(p, limit, "task file")
    except InputFileError as e:
        raise BddlParseError(str(e)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BddlParseError(f"{p}: not a UTF-8 text file ({e})") from None
    return parse_bddl(text, source=str(p))


# --------------------------------------------------------------------------------------------
# writer


def _fmt_atom(a: Atom) -> str:
    return "(" + " ".join([a[0].capitalize(), *a[1:]]) + ")"


def _typed_block(d: dict[str, str]) -> list[str]:
    return [f"    {name} - {cat}" for name, cat in d.items()]


def write_bddl(task: BddlTask) -> str:
    """Serialise ``task`` as BDDL text; ``parse_bddl(write_bddl(t), t.source) == t``.

    Floats are written with ``repr`` so they read back exactly.

    Raises:
        ValueError: if the language holds parentheses or ``;`` (they cannot be written back).
    """
    if any(c in task.language for c in "();"):
        raise ValueError(f"the instruction cannot contain '(', ')' or ';': {task.language!r}")
    out = [f"(define (problem {task.problem_name})", f"  (:domain {task.domain})",
           f"  (:language {task.language})", "  (:regions"]
    for reg in task.regions.values():
        out.append(f"    ({reg.name}")
        out.append(f"      (:target {reg.target})")
        if reg.ranges:
            boxes = " ".join("(" + " ".join(repr(float(v)) for v in r) + ")" for r in reg.ranges)
            out.append(f"      (:ranges ({boxes}))")
        if reg.yaw_rotation is not None:
            pairs = " ".join(f"({float(lo)!r} {float(hi)!r})" for lo, hi in reg.yaw_rotation)
            out.append(f"      (:yaw_rotation ({pairs}))")
        out.append("    )")
    out.append("  )")
    out += ["  (:fixtures", *_typed_block(task.fixtures), "  )"]
    out += ["  (:objects", *_typed_block(task.objects), "  )"]
    out += ["  (:obj_of_interest", *[f"    {n}" for n in task.obj_of_interest], "  )"]
    out += ["  (:init", *[f"    {_fmt_atom(a)}" for a in task.init], "  )"]
    out += ["  (:goal", "    (And " + " ".join(_fmt_atom(a) for a in task.goal) + ")", "  )"]
    out.append(")")
    return "\n".join(out) + "\n"
