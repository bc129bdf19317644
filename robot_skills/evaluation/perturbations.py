"""Task perturbations in the spirit of LIBERO-PRO / LIBERO-Plus, applied on top of any task file.

A :class:`PerturbationSpec` comes from a small YAML file (safe loader, no aliases, <= 1 MiB)::

    perturbations:
      - name: shift5cm_2distractors
        region_shift: [0.05, 0.0]   # m, table frame (x, y)
        region_scale: 1.0           # scale of each init range about its centre
        distractors: 2              # extra graspable objects of supported, absent categories
        seed: 0                     # fixes the perturbation's random choices per task
      - name: swap_instances
        swap_instances: true        # or {akita_black_bowl: white_bowl}

:func:`apply_perturbation` works on the parsed task object (``robot_skills.tasks.bddl.BddlTask``) by duck typing —
fields ``regions`` (full name -> region with ``name, target, ranges, yaw_rotation``), ``fixtures``
and ``objects`` (name -> category), ``obj_of_interest``, ``init`` and ``goal`` (atoms) — and returns
a modified copy; this module never imports ``sim``.

* **Region shift/scale** apply only to the *initial placement regions of objects* on a table or
  floor fixture (regions that an ``(On obj region)`` init atom names, with ``obj`` a task object),
  never to fixture regions (drawers, cook regions) nor to regions fixtures stand on. The geometry
  is :func:`robot_skills.tasks.regions.shift_scale_ranges` (shared with the simulator's reset).
* **Distractors** add objects of graspable supported categories absent from the task, each in a
  new small table region placed clear of every existing region, with an ``(On d region)`` init atom.
* **Swapped instances** change the *category* of graspable objects (entity names stay the same, so
  init, goal and obj_of_interest atoms remain valid) to another supported category whose tags
  include all of the old one's.
"""

from __future__ import annotations

import copy
import dataclasses
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.tasks.regions import check_shift_scale, shift_scale_ranges
from robot_skills.utils.files import YAMLInputError, load_yaml_text, read_bounded_text

__all__ = ["PerturbationSpec", "load_perturbation_suite", "apply_perturbation",
           "perturbation_rng", "object_init_regions"]

_KEYS = {"name", "region_shift", "region_scale", "distractors", "swap_instances", "seed",
         "description"}
_SUPPORT_CATEGORIES = ("table", "floor")
MAX_PERTURBATION_FILE_BYTES = 1 << 20
"""Largest perturbation-suite file read, bytes (1 MiB; the shipped ones are ~1.5 KB)."""
DISTRACTOR_REGION_HALF_SIZE_M = 0.01
"""Half side of a distractor's placement square, m (LIBERO object regions are 2 cm squares)."""


@dataclass(frozen=True)
class PerturbationSpec:
    """One perturbation of a task.

    Attributes:
        name: identifier used in reports.
        region_shift: ``(dx, dy)`` in m added to every object init range (table/floor frame).
        region_scale: factor (> 0) applied to each object init range's size about its centre.
        distractors: number of distractor objects to add (>= 0).
        swap_instances: ``False``; ``True`` (swap each graspable object for a random supported
            category with compatible tags); or ``{from_category: to_category}``.
        seed: if set, the perturbation's random choices are fixed per task (a fixed variant, as in
            LIBERO-Plus); if ``None`` they change with every episode seed.
        description: free text.
    """

    name: str
    region_shift: tuple[float, float] = (0.0, 0.0)
    region_scale: float = 1.0
    distractors: int = 0
    swap_instances: bool | Mapping[str, str] = False
    seed: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"perturbation needs a non-empty name, got {self.name!r}")
        try:
            shift, scale = check_shift_scale(self.region_shift, self.region_scale)
        except ValueError as e:
            raise ValueError(f"{self.name}: {e}") from None
        object.__setattr__(self, "region_shift", shift)
        object.__setattr__(self, "region_scale", scale)
        if isinstance(self.distractors, bool) or not isinstance(self.distractors, int) \
                or self.distractors < 0:
            raise ValueError(f"{self.name}: distractors must be an integer >= 0, "
                             f"got {self.distractors!r}")
        swap = self.swap_instances
        if swap is None:
            swap = False
        if isinstance(swap, Mapping):
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in swap.items()):
                raise ValueError(f"{self.name}: swap_instances must map category names to "
                                 f"category names, got {swap!r}")
            swap = dict(swap)
        elif not isinstance(swap, bool):
            raise ValueError(f"{self.name}: swap_instances must be true/false or a mapping "
                             f"{{from_category: to_category}}, got {swap!r}")
        object.__setattr__(self, "swap_instances", swap)
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, int)):
            raise ValueError(f"{self.name}: seed must be an integer or null, got {self.seed!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PerturbationSpec:
        """Build from a mapping (e.g. one YAML entry).

        Raises:
            ValueError: on unknown keys or bad values.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"a perturbation must be a mapping, got {type(d).__name__}: {d!r}")
        unknown = sorted(set(d) - _KEYS)
        if unknown:
            raise ValueError(f"unknown perturbation key(s) {unknown}; allowed: {sorted(_KEYS)}")
        if "name" not in d:
            raise ValueError(f"perturbation lacks a 'name': {dict(d)!r}")
        return cls(**{k: v for k, v in d.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-able form."""
        swap = self.swap_instances
        return {"name": self.name, "region_shift": list(self.region_shift),
                "region_scale": self.region_scale, "distractors": self.distractors,
                "swap_instances": dict(swap) if isinstance(swap, Mapping) else swap,
                "seed": self.seed, "description": self.description}

    @property
    def is_identity(self) -> bool:
        """True when applying this spec changes nothing."""
        return (self.region_shift == (0.0, 0.0) and self.region_scale == 1.0
                and self.distractors == 0 and not self.swap_instances)


def load_perturbation_suite(source: str | Path | Mapping | Sequence) -> list[PerturbationSpec]:
    """Read perturbation specs from a YAML file path, YAML text, or already-parsed data.

    Accepted layouts: a list of spec mappings; a mapping with a ``perturbations`` list; or a single
    spec mapping.

    A file is read with :func:`robot_skills.utils.files.read_bounded_text` (regular files of at
    most :data:`MAX_PERTURBATION_FILE_BYTES` only) and parsed without YAML aliases/anchors
    (:func:`robot_skills.utils.files.load_yaml_text`), so a small alias bomb is refused at once.

    Raises:
        FileNotFoundError: for a ``.yaml``/``.yml`` path that does not exist.
        ValueError: on malformed YAML (including anchors/aliases), bad specs, or duplicate names;
            :class:`robot_skills.utils.files.InputFileError` (a ValueError) for a path that is not
            a regular file or is over the size limit.
    """
    data: Any = source
    where = "<string>"
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source
                                    and source.strip().endswith((".yaml", ".yml"))):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"perturbation suite not found: {path}")
        where = str(path)
        source = read_bounded_text(path, MAX_PERTURBATION_FILE_BYTES, "perturbation suite")
        data = source
    if isinstance(source, str):
        try:
            data = load_yaml_text(source, where)
        except YAMLInputError as e:
            raise ValueError(f"malformed perturbation YAML: {e}") from e
    if isinstance(data, Mapping):
        data = data["perturbations"] if "perturbations" in data else [data]
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise ValueError(f"a perturbation suite is a list of specs, got {type(data).__name__}")
    specs = [PerturbationSpec.from_dict(d) for d in data]
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate perturbation name(s) {dup}")
    return specs


def perturbation_rng(spec: PerturbationSpec, task_key: str,
                     episode_seed: int) -> np.random.Generator:
    """Generator for :func:`apply_perturbation`: fixed per ``(spec.seed, task)`` when ``spec.seed``
    is set, else per ``(task, episode_seed)``."""
    task_hash = zlib.crc32(task_key.encode())
    if spec.seed is not None:
        return np.random.default_rng([spec.seed, task_hash])
    return np.random.default_rng([task_hash, int(episode_seed), 0x5EED])


# ---------------------------------------------------------------------- helpers
def _support_fixtures(task) -> set[str]:
    return {n for n, c in task.fixtures.items()
            if any(c == s or c.endswith("_" + s) for s in _SUPPORT_CATEGORIES)}


def object_init_regions(task) -> list[str]:
    """Full names of regions where task *objects* start (``(On obj region)`` in init) that lie on
    a table/floor fixture — the regions a shift/scale perturbation moves."""
    supports = _support_fixtures(task)
    out = []
    for a in task.init:
        if len(a) == 3 and a[0].lower() == "on" and a[1] in task.objects and a[2] in task.regions:
            if task.regions[a[2]].target in supports and a[2] not in out:
                out.append(a[2])
    return out


def _fixture_stand_regions(task) -> set[str]:
    return {a[2] for a in task.init if len(a) == 3 and a[0].lower() == "on"
            and a[1] in task.fixtures and a[2] in task.regions}


def _replace(obj, **changes):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **changes)
    new = copy.copy(obj)
    for k, v in changes.items():
        setattr(new, k, v)
    return new


def _new_region(template, name: str, target: str, ranges: list):
    changes = {"name": name, "target": target, "ranges": ranges}
    if dataclasses.is_dataclass(template):
        f = {x.name: x for x in dataclasses.fields(template)}.get("yaw_rotation")
        if f is not None:
            if f.default is not dataclasses.MISSING:
                changes["yaw_rotation"] = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                changes["yaw_rotation"] = f.default_factory()  # type: ignore[misc]
            else:
                changes["yaw_rotation"] = None
    elif hasattr(template, "yaw_rotation"):
        changes["yaw_rotation"] = None
    return _replace(template, **changes)


def _rect_gap(a, b) -> float:
    """Distance between axis-aligned rectangles ``(x0, y0, x1, y1)`` (0 when they overlap), m."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return float(np.hypot(dx, dy))


def _full_name(target: str, name: str) -> str:
    return f"{target}_{name}"


def apply_perturbation(
    task: Any,
    spec: PerturbationSpec | None,
    rng: np.random.Generator,
    supported_categories: Mapping[str, frozenset[str]],
    *,
    object_clearance_m: float = 0.08,
    fixture_clearance_m: float = 0.15,
    placement_margin_m: float = 0.10,
    max_tries: int = 5000,
) -> Any:
    """Return a perturbed copy of ``task`` (``task`` itself is not modified).

    Args:
        task: a parsed task (``robot_skills.tasks.bddl.BddlTask`` or any object with the same fields).
        spec: the perturbation; ``None`` or an identity spec returns ``task`` unchanged.
        rng: random generator (see :func:`perturbation_rng`).
        supported_categories: category -> affordance tags the simulator can build.
        object_clearance_m: minimum gap between a distractor's region and any other object region.
        fixture_clearance_m: minimum gap to regions that fixtures stand on (fixtures are large).
        placement_margin_m: distractors are sampled inside the bounding box of the object init
            regions grown by this margin (so they stay within reach).
        max_tries: rejection-sampling attempts per distractor.

    Returns:
        The new task object.

    Raises:
        ValueError: if the task has no table/floor object regions to shift or to place distractors
            beside, too few distractor categories exist, a swap names an unsupported category or an
            incompatible one, or no free spot is found for a distractor.
    """
    if spec is None or spec.is_identity:
        return task
    regions = dict(task.regions)
    objects = dict(task.objects)
    init = list(task.init)
    obj_regions = object_init_regions(task)

    # 1. shift / scale object init regions
    if spec.region_shift != (0.0, 0.0) or spec.region_scale != 1.0:
        if not obj_regions:
            raise ValueError(f"{spec.name}: task has no object init regions on a table/floor "
                             "to shift or scale")
        for full in obj_regions:
            r = regions[full]
            regions[full] = _replace(r, ranges=shift_scale_ranges(r.ranges, spec.region_shift,
                                                                  spec.region_scale))

    # 2. swap instances (names stay, categories change)
    if spec.swap_instances:
        present = set(objects.values()) | set(task.fixtures.values())
        if isinstance(spec.swap_instances, Mapping):
            for src, dst in spec.swap_instances.items():
                if dst not in supported_categories:
                    raise ValueError(f"{spec.name}: cannot swap to unsupported category {dst!r}; "
                                     f"supported: {sorted(supported_categories)}")
                old_tags = supported_categories.get(src, frozenset())
                missing = set(old_tags) - set(supported_categories[dst])
                if missing:
                    raise ValueError(f"{spec.name}: {dst!r} lacks tag(s) {sorted(missing)} that "
                                     f"{src!r} has; swapped instances must keep their affordances")
                for name, cat in objects.items():
                    if cat == src:
                        objects[name] = dst
        else:
            for name in sorted(objects):
                cat = objects[name]
                tags = set(supported_categories.get(cat, frozenset()))
                if "graspable" not in tags:
                    continue
                compatible = sorted(c for c, t in supported_categories.items()
                                    if c != cat and c not in present and tags <= set(t))
                same = [c for c in compatible if set(supported_categories[c]) == tags]
                options = same or compatible  # prefer identical affordances
                if options:
                    objects[name] = options[int(rng.integers(len(options)))]
                    present.add(objects[name])

    # 3. distractors
    if spec.distractors:
        present = set(objects.values()) | set(task.fixtures.values())
        options = sorted(c for c, t in supported_categories.items()
                         if "graspable" in t and c not in present)
        if len(options) < spec.distractors:
            raise ValueError(f"{spec.name}: {spec.distractors} distractor(s) requested but only "
                             f"{len(options)} graspable supported categories are absent from the "
                             f"task: {options}")
        if not obj_regions:
            raise ValueError(f"{spec.name}: task has no object regions on a table/floor to place "
                             "distractors beside")
        target = regions[obj_regions[0]].target
        template = regions[obj_regions[0]]
        own = [tuple(rg) for full in obj_regions if regions[full].target == target
               for rg in regions[full].ranges]
        lo = np.min([[r[0], r[1]] for r in own], axis=0) - placement_margin_m
        hi = np.max([[r[2], r[3]] for r in own], axis=0) + placement_margin_m
        stands = _fixture_stand_regions(task)
        occupied = [(tuple(rg), fixture_clearance_m if full in stands else object_clearance_m)
                    for full, r in regions.items() if r.target == target
                    for rg in (r.ranges or [])]
        chosen = [options[i] for i in rng.choice(len(options), spec.distractors, replace=False)]
        h = DISTRACTOR_REGION_HALF_SIZE_M
        for i, cat in enumerate(chosen):
            k = 1
            while f"{cat}_{k}" in objects or f"{cat}_{k}" in task.fixtures:
                k += 1
            obj_name = f"{cat}_{k}"
            rname = f"distractor_{i + 1}_region"
            while _full_name(target, rname) in regions:
                rname = "x" + rname
            for _ in range(max_tries):
                cx, cy = (float(v) for v in rng.uniform(lo + h, hi - h))
                rect = (cx - h, cy - h, cx + h, cy + h)
                if all(_rect_gap(rect, other) >= gap for other, gap in occupied):
                    break
            else:
                raise ValueError(f"{spec.name}: no free spot for distractor {obj_name} after "
                                 f"{max_tries} tries (clearance {object_clearance_m} m)")
            region = _new_region(template, rname, target, [rect])
            full = _full_name(target, rname)
            regions[full] = region
            objects[obj_name] = cat
            init.append(("on", obj_name, full))
            occupied.append((rect, object_clearance_m))

    return _replace(task, regions=regions, objects=objects, init=init)
