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
* **Per-object shifts** (``object_shifts``) move the init region of named objects (entity name or
  category) on top of ``region_shift``, each by at most :data:`MAX_OBJECT_SHIFT_M` (10 cm) in any
  direction.

With a :class:`PlacementGeometry` (the simulator's footprints, passed in by the world factory)
placement under a perturbation is *resolved* instead of failing: a shifted region whose objects
would overlap a fixture, leave the table, or run into an object region it was clear of moves the
shortest further distance (5 mm grid, at most :data:`MAX_RESOLVE_M`) to free table area, and the
move is written to ``notes``; distractors are placed on a grid of free spots (every fixture and
object footprint kept :attr:`PlacementGeometry.gap_m` apart). Only a layout with no free spot raises
:class:`NotBuildableError`, which the benchmark runner reports as *not built*.

The remaining axes act in the simulator and are carried by the spec (see ``docs/perturbations.md``):
``joint_noise_rad`` (uniform noise on the arm's home pose), ``mass_scale`` / ``friction_scale``
(per-object factors on body mass and sliding friction), ``obs_noise_pos_m`` / ``obs_noise_rot_rad``
(Gaussian noise on the object poses the policy observes, never on the simulator state), and for
camera-based policies ``camera_shift`` / ``camera_rotate`` (the agent-view camera) and
``light_scale`` / ``light_direction``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_skills.tasks.regions import check_shift_scale, shift_scale_ranges
from robot_skills.utils.files import YAMLInputError, load_yaml_text, read_bounded_text

__all__ = ["PerturbationSpec", "load_perturbation_suite", "apply_perturbation",
           "perturbation_rng", "object_init_regions", "PlacementGeometry", "NotBuildableError",
           "MAX_OBJECT_SHIFT_M", "MAX_DISTRACTORS", "RESOLUTION_MARK"]

_KEYS = {"name", "region_shift", "region_scale", "distractors", "swap_instances", "seed",
         "description", "object_shifts", "joint_noise_rad", "mass_scale", "friction_scale",
         "obs_noise_pos_m", "obs_noise_rot_rad", "camera", "camera_shift", "camera_rotate",
         "light_scale", "light_direction"}
MAX_OBJECT_SHIFT_M = 0.10
"""Largest per-object displacement (an ``object_shifts`` entry), m, in any direction
(LIBERO-Plus' object-position axis stays within ~10 cm)."""
MAX_REGION_SHIFT_M = 1.2
"""Largest ``region_shift`` length, m (the table is 1.2 m across: any longer shift leaves it).
Shifts over :data:`MAX_OBJECT_SHIFT_M` are allowed for stress tests; a shift that moves a region
off the table top is refused by the simulator's scene builder, naming the region."""
MAX_DISTRACTORS = 5
"""Most distractor objects a spec may add."""
MAX_JOINT_NOISE_RAD = 0.5
"""Largest half-width of the uniform noise on each home joint angle, rad."""
SCALE_LIMITS = (0.1, 10.0)
"""Allowed range of ``mass_scale`` / ``friction_scale`` factors."""
MAX_OBS_NOISE_POS_M = 0.05
"""Largest standard deviation of the observed-position noise, m."""
MAX_OBS_NOISE_ROT_RAD = 0.5
"""Largest standard deviation of the observed-orientation noise (per rotation-vector axis), rad."""
MAX_CAMERA_SHIFT_M = 0.30
"""Largest camera displacement per axis, m (world frame)."""
MAX_CAMERA_ROTATE_RAD = 0.5
"""Largest camera rotation per axis (camera frame), rad (~29 deg)."""
LIGHT_SCALE_LIMITS = (0.0, 5.0)
"""Allowed range of ``light_scale``."""
MAX_RESOLVE_M = 0.30
"""Furthest a shifted object region is moved on to reach free table area, m."""
RESOLUTION_MARK = "moved a further"
"""Every note of a region moved on by layout resolution contains this text."""
DISTRACTOR_ATTEMPTS = 20
"""Times a set of distractor spots is drawn before the layout is reported not buildable."""
RESOLVE_STEP_M = 0.005
"""Grid step of the free-spot search (resolution and distractors), m."""
_SUPPORT_CATEGORIES = ("table", "floor")
MAX_PERTURBATION_FILE_BYTES = 1 << 20
"""Largest perturbation-suite file read, bytes (1 MiB; the shipped ones are ~1.5 KB)."""
DISTRACTOR_REGION_HALF_SIZE_M = 0.01
"""Half side of a distractor's placement square, m (LIBERO object regions are 2 cm squares)."""


class NotBuildableError(ValueError):
    """The task cannot be laid out under this perturbation (no free spot for a shifted region or
    a distractor): the episode is *not built*, which is neither a success nor a policy failure."""


def _real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _vector(name: str, field_: str, value: Any, n: int, limit: float | None = None) -> tuple:
    """Validate ``n`` finite numbers (each ``|v| <= limit``) and return them as a float tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) and not isinstance(
            value, np.ndarray):
        raise ValueError(f"{name}: {field_} must be {n} finite numbers, got {value!r}")
    vals = list(value)
    if len(vals) != n or not all(_real(v) for v in vals):
        raise ValueError(f"{name}: {field_} must be {n} finite numbers, got {value!r}")
    if limit is not None and any(abs(float(v)) > limit + 1e-12 for v in vals):
        raise ValueError(f"{name}: {field_} = {value!r} is out of range: each value must be at most "
                         f"{limit:g} in magnitude")
    return tuple(float(v) for v in vals)


def _scalar(name: str, field_: str, value: Any, lo: float, hi: float) -> float:
    if not _real(value) or not lo <= float(value) <= hi:
        raise ValueError(f"{name}: {field_} must be a finite number in [{lo:g}, {hi:g}], "
                         f"got {value!r}")
    return float(value)


def _scale_range(name: str, field_: str, value: Any) -> tuple[float, float]:
    lo, hi = SCALE_LIMITS
    if _real(value):
        v = _scalar(name, field_, value, lo, hi)
        return v, v
    pair = _vector(name, field_, value, 2)
    if not (lo <= pair[0] <= pair[1] <= hi):
        raise ValueError(f"{name}: {field_} must be a factor or [low, high] with "
                         f"{lo:g} <= low <= high <= {hi:g}, got {value!r}")
    return pair


@dataclass(frozen=True)
class PerturbationSpec:
    """One perturbation of a task (every axis defaults to "unchanged").

    Layout axes (applied to the parsed task by :func:`apply_perturbation`):

    Attributes:
        name: identifier used in reports.
        region_shift: ``(dx, dy)`` in m added to every object init range (table/floor frame).
        region_scale: factor (> 0) applied to each object init range's size about its centre.
        object_shifts: ``{object name or category: (dx, dy)}`` m, added to that object's init
            region on top of ``region_shift``; each ``|(dx, dy)| <=`` :data:`MAX_OBJECT_SHIFT_M`
            (``region_shift`` is bounded by :data:`MAX_REGION_SHIFT_M`).
        distractors: number of distractor objects to add (0 ..  :data:`MAX_DISTRACTORS`).
        swap_instances: ``False``; ``True`` (swap each graspable object for a random supported
            category with compatible tags); or ``{from_category: to_category}``.
        seed: if set, the perturbation's random choices are fixed per task (a fixed variant, as in
            LIBERO-Plus); if ``None`` they change with every episode seed.
        description: free text.

    Simulator axes (applied by the simulated robot at every reset, seeded by the episode seed):

    Attributes:
        joint_noise_rad: half-width of uniform noise added to each of the 7 home joint angles, rad
            (0 .. :data:`MAX_JOINT_NOISE_RAD`; clipped to the joint limits).
        mass_scale: factor, or ``(low, high)`` drawn uniformly per object, on each object's body
            masses and inertias (in :data:`SCALE_LIMITS`).
        friction_scale: as ``mass_scale``, on the sliding friction of each object's geoms.
        obs_noise_pos_m: standard deviation of Gaussian noise on each *observed* object position,
            m (0 .. :data:`MAX_OBS_NOISE_POS_M`); the simulator state is not changed.
        obs_noise_rot_rad: standard deviation of the Gaussian rotation vector applied to each
            observed object orientation, rad (0 .. :data:`MAX_OBS_NOISE_ROT_RAD`).

    Camera-policy axes (change rendered images only):

    Attributes:
        camera: the scene camera ``camera_shift`` / ``camera_rotate`` move (``"agentview"``).
        camera_shift: ``(dx, dy, dz)`` m added to the camera position, world frame (each at most
            :data:`MAX_CAMERA_SHIFT_M`).
        camera_rotate: ``(rx, ry, rz)`` rad, rotations about the camera's own x (tilt), y (pan) and
            z (roll, the view axis) axes, applied in that order (each at most
            :data:`MAX_CAMERA_ROTATE_RAD`).
        light_scale: factor on the diffuse and specular intensity of every scene light and the
            headlight (in :data:`LIGHT_SCALE_LIMITS`).
        light_direction: ``(x, y, z)`` direction (normalised) of the key light, world frame, or
            ``None`` to keep it.

    Raises:
        ValueError: naming the field, for any value out of range or of the wrong type.
    """

    name: str
    region_shift: tuple[float, float] = (0.0, 0.0)
    region_scale: float = 1.0
    distractors: int = 0
    swap_instances: bool | Mapping[str, str] = False
    seed: int | None = None
    description: str = ""
    object_shifts: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    joint_noise_rad: float = 0.0
    mass_scale: float | tuple[float, float] = (1.0, 1.0)
    friction_scale: float | tuple[float, float] = (1.0, 1.0)
    obs_noise_pos_m: float = 0.0
    obs_noise_rot_rad: float = 0.0
    camera: str = "agentview"
    camera_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_rotate: tuple[float, float, float] = (0.0, 0.0, 0.0)
    light_scale: float = 1.0
    light_direction: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"perturbation needs a non-empty name, got {self.name!r}")
        name = self.name
        try:
            shift, scale = check_shift_scale(self.region_shift, self.region_scale)
        except ValueError as e:
            raise ValueError(f"{self.name}: {e}") from None
        if math.hypot(*shift) > MAX_REGION_SHIFT_M + 1e-12:
            raise ValueError(f"{name}: region_shift {shift} m is out of range: its length "
                             f"{math.hypot(*shift):.3f} m exceeds {MAX_REGION_SHIFT_M:g} m")
        object.__setattr__(self, "region_shift", shift)
        object.__setattr__(self, "region_scale", scale)
        if isinstance(self.distractors, bool) or not isinstance(self.distractors, int) \
                or not 0 <= self.distractors <= MAX_DISTRACTORS:
            raise ValueError(f"{self.name}: distractors must be an integer in "
                             f"[0, {MAX_DISTRACTORS}], got {self.distractors!r}")
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
        shifts = self.object_shifts if self.object_shifts is not None else {}
        if not isinstance(shifts, Mapping):
            raise ValueError(f"{name}: object_shifts must map object names or categories to "
                             f"[dx, dy] in m, got {shifts!r}")
        clean: dict[str, tuple[float, float]] = {}
        for k, v in shifts.items():
            if not isinstance(k, str) or not k:
                raise ValueError(f"{name}: object_shifts keys must be object names or categories, "
                                 f"got {k!r}")
            d = _vector(name, f"object_shifts[{k!r}]", v, 2)
            if math.hypot(*d) > MAX_OBJECT_SHIFT_M + 1e-12:
                raise ValueError(f"{name}: object_shifts[{k!r}] = {list(d)} m is out of range: "
                                 f"its length {math.hypot(*d):.3f} m exceeds "
                                 f"{MAX_OBJECT_SHIFT_M:g} m")
            clean[k] = d
        object.__setattr__(self, "object_shifts", clean)
        object.__setattr__(self, "joint_noise_rad", _scalar(name, "joint_noise_rad",
                                                            self.joint_noise_rad, 0.0,
                                                            MAX_JOINT_NOISE_RAD))
        object.__setattr__(self, "mass_scale", _scale_range(name, "mass_scale", self.mass_scale))
        object.__setattr__(self, "friction_scale", _scale_range(name, "friction_scale",
                                                                self.friction_scale))
        object.__setattr__(self, "obs_noise_pos_m", _scalar(name, "obs_noise_pos_m",
                                                            self.obs_noise_pos_m, 0.0,
                                                            MAX_OBS_NOISE_POS_M))
        object.__setattr__(self, "obs_noise_rot_rad", _scalar(name, "obs_noise_rot_rad",
                                                              self.obs_noise_rot_rad, 0.0,
                                                              MAX_OBS_NOISE_ROT_RAD))
        if not isinstance(self.camera, str) or not self.camera:
            raise ValueError(f"{name}: camera must be a camera name, got {self.camera!r}")
        object.__setattr__(self, "camera_shift", _vector(name, "camera_shift", self.camera_shift,
                                                         3, MAX_CAMERA_SHIFT_M))
        object.__setattr__(self, "camera_rotate", _vector(name, "camera_rotate",
                                                          self.camera_rotate, 3,
                                                          MAX_CAMERA_ROTATE_RAD))
        object.__setattr__(self, "light_scale", _scalar(name, "light_scale", self.light_scale,
                                                        *LIGHT_SCALE_LIMITS))
        if self.light_direction is not None:
            d = np.asarray(_vector(name, "light_direction", self.light_direction, 3))
            norm = float(np.linalg.norm(d))
            if norm < 1e-9:
                raise ValueError(f"{name}: light_direction must be a non-zero vector, "
                                 f"got {self.light_direction!r}")
            object.__setattr__(self, "light_direction", tuple(float(v) for v in d / norm))

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
        """JSON/YAML-able form (every field; :meth:`from_dict` reads it back to an equal spec)."""
        swap = self.swap_instances
        return {"name": self.name, "region_shift": list(self.region_shift),
                "region_scale": self.region_scale, "distractors": self.distractors,
                "swap_instances": dict(swap) if isinstance(swap, Mapping) else swap,
                "seed": self.seed, "description": self.description,
                "object_shifts": {k: list(v) for k, v in self.object_shifts.items()},
                "joint_noise_rad": self.joint_noise_rad, "mass_scale": list(self.mass_scale),
                "friction_scale": list(self.friction_scale),
                "obs_noise_pos_m": self.obs_noise_pos_m,
                "obs_noise_rot_rad": self.obs_noise_rot_rad, "camera": self.camera,
                "camera_shift": list(self.camera_shift),
                "camera_rotate": list(self.camera_rotate), "light_scale": self.light_scale,
                "light_direction": (None if self.light_direction is None
                                    else list(self.light_direction))}

    def changed_axes(self) -> dict[str, Any]:
        """The fields that differ from "unchanged" (``name``, ``seed``, ``description`` aside),
        as in :meth:`to_dict`; used for one-line descriptions in reports."""
        default = PerturbationSpec("_").to_dict()
        return {k: v for k, v in self.to_dict().items()
                if k not in ("name", "seed", "description", "camera") and v != default[k]
                or k == "camera" and self.changes_camera and v != default[k]}

    @property
    def changes_layout(self) -> bool:
        """True when the task's layout changes (shift, scale, per-object shifts, distractors,
        swaps): what :func:`apply_perturbation` does."""
        return (self.region_shift != (0.0, 0.0) or self.region_scale != 1.0
                or bool(self.object_shifts) or self.distractors > 0 or bool(self.swap_instances))

    @property
    def changes_camera(self) -> bool:
        """True when the camera viewpoint or the lighting changes."""
        return (self.camera_shift != (0.0, 0.0, 0.0) or self.camera_rotate != (0.0, 0.0, 0.0)
                or self.light_scale != 1.0 or self.light_direction is not None)

    @property
    def changes_simulation(self) -> bool:
        """True when an axis the simulated robot applies is set (joints, mass, friction,
        observation noise, camera, lighting)."""
        return (self.joint_noise_rad > 0 or self.mass_scale != (1.0, 1.0)
                or self.friction_scale != (1.0, 1.0) or self.obs_noise_pos_m > 0
                or self.obs_noise_rot_rad > 0 or self.changes_camera)

    @property
    def is_identity(self) -> bool:
        """True when applying this spec changes nothing."""
        return not self.changes_layout and not self.changes_simulation


@dataclass(frozen=True)
class PlacementGeometry:
    """Footprints a perturbation keeps apart when it moves or adds objects (from the simulator).

    Attributes:
        object_radius: category -> radius of the object's footprint about its centre, m (the
            half-diagonal of its bounding box, so any yaw fits).
        fixture_footprints: category -> footprint ``(x0, y0, x1, y1)`` in the fixture's own frame
            (drawers shut), m; a fixture stands at the centre of its table region's first range,
            turned by the middle of its ``:yaw_rotation`` (the scene builder's convention).
            Categories not listed count as points.
        table_area: ``(x_min, y_min, x_max, y_max)`` table frame, m: every object footprint must
            stay inside it.
        reach_area: where distractors may go (table frame, m), within the arm's top-down reach.
        gap_m: free space kept between footprints, m.
        distractor_margin_m: distractors are placed within the bounding box of the task's object
            regions grown by this margin (intersected with ``reach_area``), so they are seen
            beside the task objects; if that holds no free spot, anywhere in ``reach_area``.
        open_fixture_footprints: as ``fixture_footprints`` with drawers at their initial open
            position, used for a fixture the task's init opens.
        max_distractor_radius_m: only categories with a footprint radius up to this are drawn as
            distractors (small tabletop objects, as LIBERO-Plus adds; no trays or shelves).
    """

    object_radius: Mapping[str, float]
    fixture_footprints: Mapping[str, tuple[float, float, float, float]]
    table_area: tuple[float, float, float, float]
    reach_area: tuple[float, float, float, float]
    gap_m: float = 0.01
    distractor_margin_m: float = 0.15
    open_fixture_footprints: Mapping[str, tuple[float, float, float, float]] = \
        dataclasses.field(default_factory=dict)
    max_distractor_radius_m: float = 0.08

    def fixture_rects(self, task: Any) -> dict[str, tuple[float, float, float, float]]:
        """Fixture name -> axis-aligned footprint ``(x0, y0, x1, y1)`` (table frame, m) of each
        fixture that stands on a table region of ``task`` (its open-drawer footprint when an
        ``(Open <fixture>_<region>)`` init atom opens one of its drawers)."""
        out = {}
        stands = {a[1]: a[2] for a in task.init if len(a) == 3 and a[0].lower() == "on"
                  and a[1] in task.fixtures and a[2] in task.regions}
        opened = {a[1] for a in task.init if len(a) == 2 and a[0].lower() == "open"}
        for fx, region in stands.items():
            r = task.regions[region]
            if not r.ranges:
                continue
            x0, y0, x1, y1 = (float(v) for v in r.ranges[0])
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            cat = task.fixtures[fx]
            rect = self.fixture_footprints.get(cat, (0.0, 0.0, 0.0, 0.0))
            if any(o.startswith(fx + "_") for o in opened):
                rect = self.open_fixture_footprints.get(cat, rect)
            yaw = 0.0
            if getattr(r, "yaw_rotation", None):
                lo, hi = r.yaw_rotation[0]
                yaw = (float(lo) + float(hi)) / 2
            c, s = math.cos(yaw), math.sin(yaw)
            corners = np.array([(rect[i], rect[j]) for i in (0, 2) for j in (1, 3)])
            xy = corners @ np.array([[c, s], [-s, c]]) + [cx, cy]
            out[fx] = (float(xy[:, 0].min()), float(xy[:, 1].min()),
                       float(xy[:, 0].max()), float(xy[:, 1].max()))
        return out


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

def _distractor_names(cat: str, i: int, objects, task, regions, target: str) -> tuple[str, str]:
    """Unused names for the ``i``-th distractor of category ``cat``: the object ``<cat>_<k>``
    (lowest free ``k`` among the task's objects and fixtures) and its region
    ``distractor_<i+1>_region`` (prefixed with ``x`` until no region of ``target`` has it)."""
    k = 1
    while f"{cat}_{k}" in objects or f"{cat}_{k}" in task.fixtures:
        k += 1
    rname = f"distractor_{i + 1}_region"
    while _full_name(target, rname) in regions:
        rname = "x" + rname
    return f"{cat}_{k}", rname



def _box_gaps(boxes: np.ndarray, offsets: np.ndarray, rect: Sequence[float]) -> np.ndarray:
    """``(N,)`` smallest gap (m) between any of ``boxes`` ``(k, 4)`` moved by each offset
    ``(N, 2)`` and the rectangle ``rect`` (0 where they overlap)."""
    out = np.full(len(offsets), np.inf)
    for b in boxes:
        x0, y0 = b[0] + offsets[:, 0], b[1] + offsets[:, 1]
        x1, y1 = b[2] + offsets[:, 0], b[3] + offsets[:, 1]
        dx = np.maximum.reduce([rect[0] - x1, x0 - rect[2], np.zeros(len(offsets))])
        dy = np.maximum.reduce([rect[1] - y1, y0 - rect[3], np.zeros(len(offsets))])
        out = np.minimum(out, np.hypot(dx, dy))
    return out


def _edge_margin(boxes: np.ndarray, offsets: np.ndarray, area: Sequence[float]) -> np.ndarray:
    """``(N,)`` smallest distance (m) from the moved boxes to the edge of ``area`` (negative when
    a box sticks out)."""
    out = np.full(len(offsets), np.inf)
    for b in boxes:
        out = np.minimum.reduce([out, b[0] + offsets[:, 0] - area[0],
                                 b[1] + offsets[:, 1] - area[1], area[2] - b[2] - offsets[:, 0],
                                 area[3] - b[3] - offsets[:, 1]])
    return out


def _search_offsets(max_m: float, step: float) -> np.ndarray:
    """Grid offsets ``(N, 2)`` within ``max_m``, nearest first (ties by angle): deterministic."""
    k = int(round(max_m / step))
    g = np.arange(-k, k + 1) * step
    xy = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    r = np.hypot(xy[:, 0], xy[:, 1])
    keep = r <= max_m + 1e-12
    xy, r = xy[keep], r[keep]
    order = np.lexsort((np.arctan2(xy[:, 1], xy[:, 0]), np.round(r, 9)))
    return xy[order]


def _resolve_layout(task: Any, spec: PerturbationSpec, regions: dict, objects: dict,
                    moved: list[str], region_objs: Mapping[str, list[str]],
                    geometry: PlacementGeometry, notes: list[str]) -> None:
    """Move each region in ``moved`` (object init regions the spec shifted or whose objects it
    swapped) the shortest further distance that clears fixtures, the table edge and the object
    regions it was clear of before; in place on ``regions``.

    A pair's required gap is ``min(needed, original gap)``: a layout is never asked to be tidier
    than the task file's own (LIBERO's regions are tight; the simulator's sampler resamples
    within them).

    Raises:
        NotBuildableError: no free spot within :data:`MAX_RESOLVE_M`.
    """
    gap = float(geometry.gap_m)
    fixtures = geometry.fixture_rects(task)
    radius = {full: max((float(geometry.object_radius.get(objects[o], 0.0))
                         for o in region_objs[full]), default=0.0) for full in region_objs}
    radius0 = {full: max((float(geometry.object_radius.get(task.objects[o], 0.0))
                          for o in region_objs[full]), default=0.0) for full in region_objs}
    zero = np.zeros((1, 2))
    orig = {full: np.asarray(task.regions[full].ranges, float) for full in region_objs}
    offsets = _search_offsets(MAX_RESOLVE_M, RESOLVE_STEP_M)
    for full in moved:
        boxes = np.asarray(regions[full].ranges, float)
        if _edge_margin(boxes, zero, geometry.table_area)[0] < -1e-9:
            continue  # off the table top: the scene builder refuses it, naming the region
        r = radius[full]
        ok = np.ones(len(offsets), bool)
        ok0 = True
        why: list[str] = []
        need = min(r, float(_edge_margin(orig[full], zero, geometry.table_area)[0]))
        ok &= _edge_margin(boxes, offsets, geometry.table_area) >= need - 1e-9
        if _edge_margin(boxes, zero, geometry.table_area)[0] < need - 1e-9:
            ok0, why = False, why + ["the table edge"]
        for fx, rect in fixtures.items():
            need = min(r + gap, float(_box_gaps(orig[full], zero, rect)[0]))
            ok &= _box_gaps(boxes, offsets, rect) >= need - 1e-9
            if _box_gaps(boxes, zero, rect)[0] < need - 1e-9:
                ok0, why = False, why + [fx]
        for other in region_objs:
            if other == full:
                continue
            before = min(float(_box_gaps(orig[full], zero, b)[0]) for b in orig[other]) \
                - radius0[full] - radius0[other]
            need = min(r + radius[other] + gap, before + r + radius[other])
            cur = np.asarray(regions[other].ranges, float)
            g = np.min([_box_gaps(boxes, offsets, b) for b in cur], axis=0)
            ok &= g >= need - 1e-9
            if float(np.min([_box_gaps(boxes, zero, b)[0] for b in cur])) < need - 1e-9:
                ok0, why = False, why + [f"{'/'.join(region_objs[other])}"]
        if ok0:
            continue
        idx = np.flatnonzero(ok)
        who = "/".join(region_objs[full])
        if not len(idx):
            raise NotBuildableError(
                f"{spec.name}: {getattr(task, 'source', '?')}: the region {full!r} of {who} "
                f"(shifted/swapped by the perturbation) overlaps {', '.join(why)} and there is no "
                f"free table spot within {MAX_RESOLVE_M:g} m")
        d = offsets[idx[0]]
        regions[full] = _replace(regions[full],
                                 ranges=[tuple(float(v) for v in b + [d[0], d[1], d[0], d[1]])
                                         for b in boxes])
        notes.append(f"{spec.name}: {full} ({who}) overlapped {', '.join(why)}; "
                     f"{RESOLUTION_MARK} ({d[0]:+.3f}, {d[1]:+.3f}) m to free table area")


def _place_distractors_geometric(task: Any, spec: PerturbationSpec, rng: np.random.Generator,
                                 regions: dict, objects: dict, init: list, chosen: list[str],
                                 obj_regions: list[str], geometry: PlacementGeometry,
                                 notes: list[str]) -> None:
    """Add distractors on a grid of free spots (see :class:`PlacementGeometry`); in place.

    Spots are drawn one distractor at a time; when an earlier draw leaves no spot for a later
    one, the whole set is drawn again (up to :data:`DISTRACTOR_ATTEMPTS` times, same generator).

    Raises:
        NotBuildableError: no attempt placed them all.
    """
    last: NotBuildableError | None = None
    for _ in range(DISTRACTOR_ATTEMPTS):
        r2, o2, i2 = dict(regions), dict(objects), list(init)
        try:
            _place_distractors_once(task, spec, rng, r2, o2, i2, chosen, obj_regions, geometry)
        except NotBuildableError as e:
            last = e
            continue
        regions.clear()
        regions.update(r2)
        objects.clear()
        objects.update(o2)
        init[:] = i2
        notes.append(f"{spec.name}: distractors {', '.join(chosen)}")
        return
    raise NotBuildableError(f"{last} (in each of {DISTRACTOR_ATTEMPTS} attempts)")


def _place_distractors_once(task: Any, spec: PerturbationSpec, rng: np.random.Generator,
                            regions: dict, objects: dict, init: list, chosen: list[str],
                            obj_regions: list[str], geometry: PlacementGeometry) -> None:
    gap = float(geometry.gap_m)
    target = regions[obj_regions[0]].target
    template = regions[obj_regions[0]]
    fixtures = geometry.fixture_rects(task)
    obj_of_region: dict[str, list[str]] = {}
    for a in init:
        if len(a) == 3 and a[0].lower() == "on" and a[1] in objects and a[2] in regions:
            obj_of_region.setdefault(a[2], []).append(a[1])
    stands = _fixture_stand_regions(task)
    occupied: list[tuple[tuple[float, ...], float]] = []  # (box, radius of what stands in it)
    for full, r in regions.items():
        if r.target != target or full in stands:
            continue
        rad = max((float(geometry.object_radius.get(objects[o], 0.0))
                   for o in obj_of_region.get(full, [])), default=0.0)
        occupied += [(tuple(float(v) for v in b), rad) for b in (r.ranges or [])]
    own = np.asarray([b for full in obj_regions for b in regions[full].ranges], float)
    m = float(geometry.distractor_margin_m)
    near = (max(own[:, 0].min() - m, geometry.reach_area[0]),
            max(own[:, 1].min() - m, geometry.reach_area[1]),
            min(own[:, 2].max() + m, geometry.reach_area[2]),
            min(own[:, 3].max() + m, geometry.reach_area[3]))
    h = DISTRACTOR_REGION_HALF_SIZE_M
    step = 2 * RESOLVE_STEP_M

    def grid(area) -> np.ndarray:
        xs = np.arange(area[0] + h, area[2] - h + 1e-12, step)
        ys = np.arange(area[1] + h, area[3] - h + 1e-12, step)
        if not len(xs) or not len(ys):
            return np.zeros((0, 2))
        return np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)

    unit = np.array([[-h, -h, h, h]])
    for i, cat in enumerate(chosen):
        obj_name, rname = _distractor_names(cat, i, objects, task, regions, target)
        rd = float(geometry.object_radius.get(cat, 0.0))
        for area in (near, geometry.reach_area):
            pts = grid(area)
            if not len(pts):
                continue
            ok = _edge_margin(unit, pts, geometry.table_area) >= rd - 1e-9
            for rect in fixtures.values():
                ok &= _box_gaps(unit, pts, rect) >= rd + gap - 1e-9
            for box, rad in occupied:
                ok &= _box_gaps(unit, pts, box) >= rd + rad + gap - 1e-9
            idx = np.flatnonzero(ok)
            if len(idx):
                break
        else:
            raise NotBuildableError(
                f"{spec.name}: {getattr(task, 'source', '?')}: no free table spot for distractor "
                f"{obj_name} (footprint radius {rd:.3f} m, gap {gap:g} m) after placing {i} of "
                f"{len(chosen)}: fixtures, objects and goal regions cover the reachable table")
        cx, cy = (float(v) for v in pts[idx[int(rng.integers(len(idx)))]])
        rect = (cx - h, cy - h, cx + h, cy + h)
        full = _full_name(target, rname)
        regions[full] = _new_region(template, rname, target, [rect])
        objects[obj_name] = cat
        init.append(("on", obj_name, full))
        occupied.append((rect, rd))


def _region_shifts(task: Any, spec: PerturbationSpec, obj_regions: list[str],
                   region_objs: Mapping[str, list[str]]) -> dict[str, tuple[float, float]]:
    """Region -> total ``(dx, dy)`` (``region_shift`` + the ``object_shifts`` of its objects).

    Raises:
        ValueError: an ``object_shifts`` key naming no task object or category, an object that
            does not start in a table region, or two objects of one region shifted differently.
    """
    per_obj: dict[str, tuple[float, float]] = {}
    for key, d in spec.object_shifts.items():
        hit = [o for o, c in task.objects.items() if o == key or c == key]
        if not hit:
            raise ValueError(f"{spec.name}: object_shifts names {key!r}, which is neither an "
                             f"object nor an object category of the task; objects: "
                             f"{dict(task.objects)}")
        for o in hit:
            if o not in per_obj or o == key:  # an entity name beats its category
                per_obj[o] = d
    where = {o for objs in region_objs.values() for o in objs}
    bad = sorted(o for o in per_obj if o not in where)
    if bad:
        raise ValueError(f"{spec.name}: object_shifts moves {bad}, which do not start in a "
                         f"table/floor region (only objects placed on the table can be shifted)")
    out = {}
    for full in obj_regions:
        ds = {per_obj.get(o, (0.0, 0.0)) for o in region_objs[full]}
        if len(ds) > 1:
            raise ValueError(f"{spec.name}: objects {region_objs[full]} share the region {full!r} "
                             f"but object_shifts moves them differently: {sorted(ds)}")
        (d,) = ds
        out[full] = (spec.region_shift[0] + d[0], spec.region_shift[1] + d[1])
    return out


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
    geometry: PlacementGeometry | None = None,
    notes: list[str] | None = None,
) -> Any:
    """Return a perturbed copy of ``task`` (``task`` itself is not modified).

    Only the layout axes act here (:attr:`PerturbationSpec.changes_layout`); a spec that changes
    nothing of the layout returns ``task`` itself. Order: shifts/scale, swaps, resolution against
    ``geometry`` (when given), distractors.

    Args:
        task: a parsed task (``robot_skills.tasks.bddl.BddlTask`` or any object with the same fields).
        spec: the perturbation; ``None`` or an identity spec returns ``task`` unchanged.
        rng: random generator (see :func:`perturbation_rng`).
        supported_categories: category -> affordance tags the simulator can build.
        object_clearance_m: without ``geometry``: minimum gap between a distractor's region and
            any other object region.
        fixture_clearance_m: without ``geometry``: minimum gap to regions fixtures stand on.
        placement_margin_m: without ``geometry``: distractors are sampled inside the bounding box
            of the object init regions grown by this margin.
        max_tries: without ``geometry``: rejection-sampling attempts per distractor.
        geometry: footprints of objects and fixtures (the simulator's): shifted regions that
            collide are moved to free table area and distractors go on free grid spots (see the
            module doc). ``None`` keeps the footprint-free rules above.
        notes: if given, one line is appended per region moved on and for the distractors added.

    Returns:
        The new task object.

    Raises:
        NotBuildableError: with ``geometry``, a shifted region or a distractor has no free spot
            (the episode is *not built*).
        ValueError: if the task has no table/floor object regions to shift or to place distractors
            beside, too few distractor categories exist, a swap names an unsupported category or an
            incompatible one, an ``object_shifts`` key names nothing in the task, or (without
            ``geometry``) no free spot is found for a distractor.
    """
    if spec is None or not spec.changes_layout:
        return task
    notes = notes if notes is not None else []
    regions = dict(task.regions)
    objects = dict(task.objects)
    init = list(task.init)
    obj_regions = object_init_regions(task)
    region_objs: dict[str, list[str]] = {full: [] for full in obj_regions}
    for a in task.init:
        if len(a) == 3 and a[0].lower() == "on" and a[2] in region_objs \
                and a[1] in task.objects:
            region_objs[a[2]].append(a[1])
    moved: list[str] = []

    # 1. shift / scale object init regions
    if spec.region_shift != (0.0, 0.0) or spec.region_scale != 1.0 or spec.object_shifts:
        if not obj_regions:
            raise ValueError(f"{spec.name}: task has no object init regions on a table/floor "
                             "to shift or scale")
        shifts = _region_shifts(task, spec, obj_regions, region_objs)
        for full in obj_regions:
            if shifts[full] == (0.0, 0.0) and spec.region_scale == 1.0:
                continue
            r = regions[full]
            regions[full] = _replace(r, ranges=shift_scale_ranges(r.ranges, shifts[full],
                                                                  spec.region_scale))
            moved.append(full)

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

    if geometry is not None:
        swapped = [full for full in obj_regions
                   if any(objects[o] != task.objects[o] for o in region_objs[full])]
        todo = moved + [f for f in swapped if f not in moved]
        if todo:
            _resolve_layout(task, spec, regions, objects, todo, region_objs, geometry, notes)

    # 3. distractors
    if spec.distractors:
        present = set(objects.values()) | set(task.fixtures.values())
        options = sorted(c for c, t in supported_categories.items()
                         if "graspable" in t and c not in present)
        if geometry is not None:
            options = [c for c in options if float(geometry.object_radius.get(c, 0.0))
                       <= geometry.max_distractor_radius_m]
        if len(options) < spec.distractors:
            raise ValueError(f"{spec.name}: {spec.distractors} distractor(s) requested but only "
                             f"{len(options)} graspable supported categories are absent from the "
                             f"task: {options}")
        if not obj_regions:
            raise ValueError(f"{spec.name}: task has no object regions on a table/floor to place "
                             "distractors beside")
        if geometry is not None:
            chosen = [options[i] for i in rng.choice(len(options), spec.distractors,
                                                     replace=False)]
            _place_distractors_geometric(task, spec, rng, regions, objects, init, chosen,
                                         obj_regions, geometry, notes)
            return _replace(task, regions=regions, objects=objects, init=init)
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
            obj_name, rname = _distractor_names(cat, i, objects, task, regions, target)
            for _ in range(max_tries):
                cx, cy = (float(v) for v in rng.uniform(lo + h, hi - h))
                rect = (cx - h, cy - h, cx + h, cy + h)
                if all(_rect_gap(rect, other) >= gap for other, gap in occupied):
                    break
            else:
                raise NotBuildableError(f"{spec.name}: no free spot for distractor {obj_name} after "
                                 f"{max_tries} tries (clearance {object_clearance_m} m)")
            region = _new_region(template, rname, target, [rect])
            full = _full_name(target, rname)
            regions[full] = region
            objects[obj_name] = cat
            init.append(("on", obj_name, full))
            occupied.append((rect, object_clearance_m))

    return _replace(task, regions=regions, objects=objects, init=init)
