"""Where things are in the simulated world. The world frame *is* the robot base frame.

LIBERO's task files give region ranges ``(x_min, y_min, x_max, y_max)`` in the frame of the table
(or floor) they target: origin at the table top's centre, +x away from the robot, +z up. The robot
base (Panda ``link0``) sits at the world origin on the table-top plane; the table's frame is offset
along +x so that every region of the supported suites lies inside the arm's top-down workspace.
"""

from __future__ import annotations

import numpy as np

from robot_skills.robots.panda import CONTROL_HZ, PHYSICS_TIMESTEP  # noqa: F401  (the arm's rates)

TABLE_ORIGIN = np.array([0.63, 0.0, 0.0])
"""Table-frame origin in the world (= robot base) frame, m, of every table but the study table.
Table top surface is at z = 0."""
TABLE_ORIGINS: dict[str, np.ndarray] = {"study_table": np.array([0.43, 0.0, 0.0])}
"""Per-category table-frame origins that depart from :data:`TABLE_ORIGIN`, m. LIBERO's study
scenes put the study table 0.2 m nearer the robot than its kitchen and living-room tables (their
regions lie farther out, e.g. STUDY_SCENE3's mug region ~0.85 m from the base with the common
offset, beyond the Panda's top-down reach)."""


def table_origin(category: str) -> np.ndarray:
    """World position (m, robot base frame) of the table frame of a table/floor ``category``:
    :data:`TABLE_ORIGINS` where it has an entry, else :data:`TABLE_ORIGIN`. Returns a copy, (3,)."""
    return np.asarray(TABLE_ORIGINS.get(category, TABLE_ORIGIN), float).copy()
TABLE_SIZE = np.array([1.2, 1.2])
"""Table top extent (x, y), m; its near edge is just in front of the robot base."""
TABLE_TOP_RANGE = (-float(TABLE_SIZE[0]) / 2, -float(TABLE_SIZE[1]) / 2,
                   float(TABLE_SIZE[0]) / 2, float(TABLE_SIZE[1]) / 2)
"""The table top as a range ``(x_min, y_min, x_max, y_max)`` in the table frame, m (the extent
:data:`TABLE_SIZE` about :data:`TABLE_ORIGIN`). Every range of a region on the table (or LIBERO
"floor", built as the same top) must lie inside it: ``sim.scene.build_scene`` refuses one that
does not, since whatever is placed there would drop to the ground plane."""
MAX_REGION_COORD_M = 10.0
"""Largest magnitude of any region range value a task file may hold, m (the table is 1.2 m
across). Non-finite or larger values (a typo, ``1e300``) are refused by ``sim.scene.build_scene``
before MuJoCo sees them."""
MAX_REGION_YAW_RAD = 2 * float(np.pi)
"""Largest magnitude of a region's ``:yaw_rotation`` bound, rad (a full turn either way)."""
DISTRACTOR_AREA = (-0.40, -0.40, 0.15, 0.40)
"""Where perturbation distractors may stand, ``(x_min, y_min, x_max, y_max)`` table frame, m: the
part of the table in front of the robot within the Panda's top-down reach (the base is 0.63 m
behind the table centre; every object region of the supported LIBERO suites lies inside)."""
